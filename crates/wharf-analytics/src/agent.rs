//! User agents: which tool (and version) sent a pull request, and the usage environment a tool
//! implies. Feeds the raw data's `User agent tool` / `User agent version` columns, the
//! `USER_AGENT` report column, and `INFERRED_USE_CASE` of the Tracked companies report
//! ("Local development tools used on cloud infrastructure are reclassified as CI/CD, and CI/CD
//! tools used on cloud infrastructure are reclassified as production").
//!
//! Parsing runs for every pull event: it walks the `product/version` tokens once, borrows the
//! version from the input and allocates nothing.

use std::fmt;

/// A client tool, as reported in the `User agent tool` and `USER_AGENT` columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tool {
    /// The Docker engine (`docker/…`), or the Docker CLI talking to a registry itself
    /// (`Docker-Client/…`, e.g. `docker manifest inspect`).
    Docker,
    /// BuildKit, standalone or inside the engine (`buildkit/v0.12.5`).
    Buildkit,
    DockerScout,
    /// containerd, its `ctr` client and its CRI plugin (Kubernetes nodes on containerd).
    Containerd,
    /// podman and other programs on containers/image that keep its default agent
    /// (`containers/5.23.1 (github.com/containers/image)`).
    Podman,
    Skopeo,
    Buildah,
    CriO,
    Kubelet,
    /// The oras CLI and the oras-go library's default agent.
    Oras,
    Helm,
    Crane,
    /// go-containerregistry's default agent (ko and others built on it).
    GoContainerRegistry,
    Kaniko,
    Regclient,
    Curl,
    Wget,
    GoHttpClient,
    PythonRequests,
    PythonUrllib,
    Aiohttp,
    NodeFetch,
    Undici,
    Axios,
    Unknown,
}

/// The usage environment of the Tracked companies report's `INFERRED_USE_CASE` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UseCase {
    LocalDev,
    CiCd,
    Prod,
    Unknown,
}

/// A parsed user agent: the tool and, when it said one, its version (borrowed from the header,
/// a leading `v` removed so `containerd/v1.6.20` and `containerd/1.6.20` agree). A product
/// "version" that does not start with a digit (`regclient/regctl`) is no version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserAgent<'a> {
    pub tool: Tool,
    pub version: Option<&'a str>,
}

/// Product names (compared ASCII case-insensitively) and the tool each one means. A user agent
/// names its tool by the first product found here; unlisted products (`Python/3.11`, `go/…`,
/// `kernel/…`) are skipped.
const PRODUCTS: &[(&str, Tool)] = &[
    ("docker", Tool::Docker),
    ("docker-client", Tool::Docker),
    ("buildkit", Tool::Buildkit),
    ("docker-scout", Tool::DockerScout),
    ("containerd", Tool::Containerd),
    ("containers", Tool::Podman),
    ("podman", Tool::Podman),
    ("skopeo", Tool::Skopeo),
    ("buildah", Tool::Buildah),
    ("cri-o", Tool::CriO),
    ("kubelet", Tool::Kubelet),
    ("oras", Tool::Oras),
    ("oras-go", Tool::Oras),
    ("helm", Tool::Helm),
    ("crane", Tool::Crane),
    ("go-containerregistry", Tool::GoContainerRegistry),
    ("kaniko", Tool::Kaniko),
    ("regclient", Tool::Regclient),
    ("regctl", Tool::Regclient),
    ("curl", Tool::Curl),
    ("wget", Tool::Wget),
    ("go-http-client", Tool::GoHttpClient),
    ("python-requests", Tool::PythonRequests),
    ("python-urllib", Tool::PythonUrllib),
    ("aiohttp", Tool::Aiohttp),
    ("node-fetch", Tool::NodeFetch),
    ("undici", Tool::Undici),
    ("axios", Tool::Axios),
];

impl Tool {
    /// The tool a report name ([`Tool::as_str`]) stands for; unknown names are
    /// [`Tool::Unknown`].
    pub fn from_name(name: &str) -> Self {
        PRODUCTS
            .iter()
            .map(|&(_, tool)| tool)
            .find(|tool| tool.as_str() == name)
            .unwrap_or(Self::Unknown)
    }

    /// The name written in reports: lowercase, stable, matching the seeds' examples
    /// (`docker`, `containerd`, `docker-scout`, `node-fetch`, `regclient`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Buildkit => "buildkit",
            Self::DockerScout => "docker-scout",
            Self::Containerd => "containerd",
            Self::Podman => "podman",
            Self::Skopeo => "skopeo",
            Self::Buildah => "buildah",
            Self::CriO => "cri-o",
            Self::Kubelet => "kubelet",
            Self::Oras => "oras",
            Self::Helm => "helm",
            Self::Crane => "crane",
            Self::GoContainerRegistry => "go-containerregistry",
            Self::Kaniko => "kaniko",
            Self::Regclient => "regclient",
            Self::Curl => "curl",
            Self::Wget => "wget",
            Self::GoHttpClient => "go-http-client",
            Self::PythonRequests => "python-requests",
            Self::PythonUrllib => "python-urllib",
            Self::Aiohttp => "aiohttp",
            Self::NodeFetch => "node-fetch",
            Self::Undici => "undici",
            Self::Axios => "axios",
            Self::Unknown => "unknown",
        }
    }

    /// The environment the tool itself points to, before the cloud reclassification. After the
    /// seeds' examples: Local Dev is "Docker Desktop, direct `docker` commands"; CI/CD is
    /// "containerd, build tools, registry mirroring"; Prod is "Kubernetes, container
    /// orchestration platforms". Generic HTTP libraries and scripts say nothing: Unknown.
    pub fn use_case(self) -> UseCase {
        match self {
            Self::Docker | Self::DockerScout | Self::Podman => UseCase::LocalDev,
            Self::Containerd
            | Self::Buildkit
            | Self::Buildah
            | Self::Kaniko
            | Self::Skopeo
            | Self::Crane
            | Self::GoContainerRegistry
            | Self::Regclient
            | Self::Oras
            | Self::Helm => UseCase::CiCd,
            Self::CriO | Self::Kubelet => UseCase::Prod,
            Self::Curl
            | Self::Wget
            | Self::GoHttpClient
            | Self::PythonRequests
            | Self::PythonUrllib
            | Self::Aiohttp
            | Self::NodeFetch
            | Self::Undici
            | Self::Axios
            | Self::Unknown => UseCase::Unknown,
        }
    }
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl UseCase {
    /// The value written in `INFERRED_USE_CASE`, exactly as the seeds spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LocalDev => "Local Dev",
            Self::CiCd => "CI/CD",
            Self::Prod => "Prod",
            Self::Unknown => "Unknown",
        }
    }
}

impl fmt::Display for UseCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `INFERRED_USE_CASE` for a tool, given whether the request came from a cloud provider's
/// network: on a cloud, Local Dev becomes CI/CD and CI/CD becomes Prod; Prod and Unknown stay.
pub fn inferred_use_case(tool: Tool, on_cloud: bool) -> UseCase {
    match (tool.use_case(), on_cloud) {
        (UseCase::LocalDev, true) => UseCase::CiCd,
        (UseCase::CiCd, true) => UseCase::Prod,
        (use_case, _) => use_case,
    }
}

/// Parses a `User-Agent` header value. Never fails: what is not recognised is
/// [`Tool::Unknown`] with no version.
pub fn parse(header: &str) -> UserAgent<'_> {
    for (name, version) in products(header) {
        if let Some(tool) = lookup(name) {
            return UserAgent {
                tool,
                version: clean_version(name, version),
            };
        }
    }
    UserAgent {
        tool: Tool::Unknown,
        version: None,
    }
}

fn lookup(name: &str) -> Option<Tool> {
    PRODUCTS
        .iter()
        .find(|(product, _)| product.eq_ignore_ascii_case(name))
        .map(|&(_, tool)| tool)
}

fn clean_version<'a>(product: &str, version: &'a str) -> Option<&'a str> {
    // `containers/5.23.1` is containers/image's version, not podman's: do not report it as one.
    if product.eq_ignore_ascii_case("containers") {
        return None;
    }
    let version = version.strip_prefix(['v', 'V']).unwrap_or(version);
    version
        .starts_with(|c: char| c.is_ascii_digit())
        .then_some(version)
}

/// The `name/version` products of a user agent (RFC 9110 §10.1.5), in order; a bare word is a
/// product without version. Comments in parentheses are skipped, with what they hold: the
/// engine's `UpstreamClient(Docker-Client/…)` comes after its own `docker/…` product anyway.
fn products(header: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = header;
    std::iter::from_fn(move || {
        loop {
            rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == ')');
            if rest.is_empty() {
                return None;
            }
            if rest.starts_with('(') {
                rest = skip_comment(rest);
                continue;
            }
            let end = rest
                .find(|c: char| c.is_ascii_whitespace() || c == '(' || c == ')')
                .unwrap_or(rest.len());
            let token = &rest[..end];
            rest = &rest[end..];
            return Some(match token.split_once('/') {
                Some((name, version)) => (name, version),
                None => (token, ""),
            });
        }
    })
}

/// Skips a parenthesised comment, nesting and `\`-escapes allowed.
fn skip_comment(s: &str) -> &str {
    let mut depth = 0usize;
    let mut escaped = false;
    for (i, b) in s.bytes().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' => escaped = true,
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return &s[i + 1..];
                }
            }
            _ => {}
        }
    }
    ""
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real user agents: from our own captures (shared/notes/clients.md) where noted, otherwise
    /// as the tools' sources build them.
    const CASES: &[(&str, Tool, Option<&str>)] = &[
        (
            r"docker/24.0.7 go/go1.20.10 git-commit/311b9ff kernel/6.5.0-14-generic os/linux arch/amd64 UpstreamClient(Docker-Client/24.0.7 \(linux\))",
            Tool::Docker,
            Some("24.0.7"),
        ),
        // Debian's engine under CLI 28 (captured).
        (
            r"docker/20.10.24+dfsg1 go/go1.19.8 git-commit/5d6db84 kernel/6.1.0 os/linux arch/amd64 UpstreamClient(Docker-Client/28.2.2 \(linux\))",
            Tool::Docker,
            Some("20.10.24+dfsg1"),
        ),
        // Docker Desktop on a Mac.
        (
            r"docker/27.3.1 go/go1.22.7 git-commit/41ca978 kernel/6.10.11-linuxkit os/linux arch/arm64 UpstreamClient(Docker-Client/27.3.1 \(darwin\))",
            Tool::Docker,
            Some("27.3.1"),
        ),
        // `docker manifest inspect` (captured).
        ("Docker-Client/28.2.2 (linux)", Tool::Docker, Some("28.2.2")),
        ("buildkit/v0.12.5", Tool::Buildkit, Some("0.12.5")),
        ("buildkit/v0.13-dev", Tool::Buildkit, Some("0.13-dev")),
        ("docker-scout/v1.15.0", Tool::DockerScout, Some("1.15.0")),
        ("containerd/1.7.13", Tool::Containerd, Some("1.7.13")),
        ("containerd/v1.6.20", Tool::Containerd, Some("1.6.20")),
        // ctr from Debian (captured).
        (
            "containerd/1.6.20~ds1",
            Tool::Containerd,
            Some("1.6.20~ds1"),
        ),
        // podman 4.3.1 (captured): the version is containers/image's, so none is reported.
        (
            "containers/5.23.1 (github.com/containers/image)",
            Tool::Podman,
            None,
        ),
        (
            "containers/5.29.2 (github.com/containers/image)",
            Tool::Podman,
            None,
        ),
        ("podman/4.9.3", Tool::Podman, Some("4.9.3")),
        ("skopeo/1.9.3", Tool::Skopeo, Some("1.9.3")),
        ("Buildah/1.28.2", Tool::Buildah, Some("1.28.2")),
        (
            "cri-o/1.28.1 go/go1.20.10 os/linux arch/amd64",
            Tool::CriO,
            Some("1.28.1"),
        ),
        (
            "kubelet/v1.28.2 (linux/amd64) kubernetes/89a4ea3",
            Tool::Kubelet,
            Some("1.28.2"),
        ),
        ("oras/1.1.0", Tool::Oras, Some("1.1.0")),
        ("oras-go", Tool::Oras, None),
        ("Helm/3.14.0", Tool::Helm, Some("3.14.0")),
        // Helm SDK v4 via helm-python-sdk (captured).
        ("Helm/4.2", Tool::Helm, Some("4.2")),
        (
            "crane/v0.19.0 go-containerregistry/v0.19.0",
            Tool::Crane,
            Some("0.19.0"),
        ),
        (
            "ko/v0.15.1 go-containerregistry/v0.19.0",
            Tool::GoContainerRegistry,
            Some("0.19.0"),
        ),
        ("kaniko/v1.19.2", Tool::Kaniko, Some("1.19.2")),
        ("regclient/regctl (v0.5.6)", Tool::Regclient, None),
        ("curl/8.4.0", Tool::Curl, Some("8.4.0")),
        ("Wget/1.21.3", Tool::Wget, Some("1.21.3")),
        // crane built from Debian's source (captured): only Go's default.
        ("Go-http-client/1.1", Tool::GoHttpClient, Some("1.1")),
        ("Go-http-client/2.0", Tool::GoHttpClient, Some("2.0")),
        // oras-py (captured).
        (
            "python-requests/2.31.0",
            Tool::PythonRequests,
            Some("2.31.0"),
        ),
        ("Python-urllib/3.11", Tool::PythonUrllib, Some("3.11")),
        ("Python/3.11 aiohttp/3.9.1", Tool::Aiohttp, Some("3.9.1")),
        (
            "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
            Tool::NodeFetch,
            Some("1.0"),
        ),
        ("node-fetch", Tool::NodeFetch, None),
        ("undici", Tool::Undici, None),
        ("axios/1.6.2", Tool::Axios, Some("1.6.2")),
        ("", Tool::Unknown, None),
        (
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0",
            Tool::Unknown,
            None,
        ),
        ("(unbalanced comment", Tool::Unknown, None),
        ("/", Tool::Unknown, None),
        ("curl/", Tool::Curl, None),
        ("containerd/vnext", Tool::Containerd, None),
    ];

    #[test]
    fn real_user_agents() {
        for &(header, tool, version) in CASES {
            let ua = parse(header);
            assert_eq!(ua.tool, tool, "tool of {header:?}");
            assert_eq!(ua.version, version, "version of {header:?}");
        }
    }

    #[test]
    fn tool_names_round_trip_through_the_product_table() {
        for &(_, tool) in PRODUCTS {
            assert_ne!(tool.as_str(), "unknown");
        }
        // Every tool except Unknown can be produced by some product name.
        let tools = [
            Tool::Docker,
            Tool::Buildkit,
            Tool::DockerScout,
            Tool::Containerd,
            Tool::Podman,
            Tool::Skopeo,
            Tool::Buildah,
            Tool::CriO,
            Tool::Kubelet,
            Tool::Oras,
            Tool::Helm,
            Tool::Crane,
            Tool::GoContainerRegistry,
            Tool::Kaniko,
            Tool::Regclient,
            Tool::Curl,
            Tool::Wget,
            Tool::GoHttpClient,
            Tool::PythonRequests,
            Tool::PythonUrllib,
            Tool::Aiohttp,
            Tool::NodeFetch,
            Tool::Undici,
            Tool::Axios,
        ];
        for tool in tools {
            assert!(
                PRODUCTS.iter().any(|&(_, t)| t == tool),
                "{tool} has no product name"
            );
            assert_eq!(Tool::from_name(tool.as_str()), tool);
        }
        assert_eq!(Tool::from_name("no-such-tool"), Tool::Unknown);
    }

    #[test]
    fn use_case_before_and_after_cloud_reclassification() {
        let cases = [
            (Tool::Docker, UseCase::LocalDev, UseCase::CiCd),
            (Tool::Podman, UseCase::LocalDev, UseCase::CiCd),
            (Tool::Containerd, UseCase::CiCd, UseCase::Prod),
            (Tool::Buildkit, UseCase::CiCd, UseCase::Prod),
            (Tool::Skopeo, UseCase::CiCd, UseCase::Prod),
            (Tool::CriO, UseCase::Prod, UseCase::Prod),
            (Tool::Kubelet, UseCase::Prod, UseCase::Prod),
            (Tool::Curl, UseCase::Unknown, UseCase::Unknown),
            (Tool::Unknown, UseCase::Unknown, UseCase::Unknown),
        ];
        for (tool, off_cloud, on_cloud) in cases {
            assert_eq!(
                inferred_use_case(tool, false),
                off_cloud,
                "{tool} off cloud"
            );
            assert_eq!(inferred_use_case(tool, true), on_cloud, "{tool} on cloud");
        }
    }

    #[test]
    fn use_case_names_are_the_seeds() {
        assert_eq!(UseCase::LocalDev.to_string(), "Local Dev");
        assert_eq!(UseCase::CiCd.to_string(), "CI/CD");
        assert_eq!(UseCase::Prod.to_string(), "Prod");
        assert_eq!(UseCase::Unknown.to_string(), "Unknown");
    }
}
