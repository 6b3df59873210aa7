//! `Endpoint::parse`: which registry operation a `/v2/…` path names. Repository names contain
//! `/`, so the path is read from its end, where the operation's fixed segments are.

use percent_encoding::percent_decode_str;

/// A `/v2/` path, split into the repository name (still unvalidated) and the operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Base,
    Catalog,
    Tags { name: String },
    Manifest { name: String, reference: String },
    Blob { name: String, digest: String },
    UploadStart { name: String },
    Upload { name: String, id: String },
    Referrers { name: String, digest: String },
}

impl Endpoint {
    /// Every kind of endpoint, by name. The authorization matrix test covers each of these
    /// under every method; `kind` below must name every variant.
    #[cfg(test)]
    pub(crate) const KINDS: [&'static str; 8] = [
        "base",
        "catalog",
        "tags",
        "manifest",
        "blob",
        "upload-start",
        "upload",
        "referrers",
    ];

    /// The kind's name (an exhaustive match: a new variant does not compile without one).
    #[cfg(test)]
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Base => "base",
            Self::Catalog => "catalog",
            Self::Tags { .. } => "tags",
            Self::Manifest { .. } => "manifest",
            Self::Blob { .. } => "blob",
            Self::UploadStart { .. } => "upload-start",
            Self::Upload { .. } => "upload",
            Self::Referrers { .. } => "referrers",
        }
    }

    /// Parses the part of the path after `/v2/`. `None` means no registry endpoint matches.
    pub(crate) fn parse(rest: &str) -> Option<Self> {
        if rest.is_empty() {
            return Some(Self::Base);
        }
        let segs: Vec<String> = rest
            .split('/')
            .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
            .collect();
        let n = segs.len();
        let s = |i: usize| segs[i].as_str();
        let name = |upto: usize| -> Option<String> { (upto > 0).then(|| segs[..upto].join("/")) };
        if n == 1 && s(0) == "_catalog" {
            return Some(Self::Catalog);
        }
        if n >= 3 && s(n - 2) == "tags" && s(n - 1) == "list" {
            return Some(Self::Tags { name: name(n - 2)? });
        }
        // …/blobs/uploads/ and …/blobs/uploads
        if n >= 4 && s(n - 3) == "blobs" && s(n - 2) == "uploads" && s(n - 1).is_empty() {
            return Some(Self::UploadStart { name: name(n - 3)? });
        }
        if n >= 3 && s(n - 2) == "blobs" && s(n - 1) == "uploads" {
            return Some(Self::UploadStart { name: name(n - 2)? });
        }
        if n >= 4 && s(n - 3) == "blobs" && s(n - 2) == "uploads" {
            return Some(Self::Upload {
                name: name(n - 3)?,
                id: segs[n - 1].clone(),
            });
        }
        if n >= 3 && !s(n - 1).is_empty() {
            let last = segs[n - 1].clone();
            match s(n - 2) {
                "manifests" => {
                    return Some(Self::Manifest {
                        name: name(n - 2)?,
                        reference: last,
                    });
                }
                "blobs" => {
                    return Some(Self::Blob {
                        name: name(n - 2)?,
                        digest: last,
                    });
                }
                "referrers" => {
                    return Some(Self::Referrers {
                        name: name(n - 2)?,
                        digest: last,
                    });
                }
                _ => {}
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<Endpoint> {
        Endpoint::parse(s)
    }

    #[test]
    fn parses_every_endpoint() {
        assert_eq!(p(""), Some(Endpoint::Base));
        assert_eq!(p("_catalog"), Some(Endpoint::Catalog));
        assert_eq!(
            p("a/b/tags/list"),
            Some(Endpoint::Tags { name: "a/b".into() })
        );
        assert_eq!(
            p("a/manifests/v1"),
            Some(Endpoint::Manifest {
                name: "a".into(),
                reference: "v1".into()
            })
        );
        assert_eq!(
            p("a/b/c/blobs/sha256%3Aab"),
            Some(Endpoint::Blob {
                name: "a/b/c".into(),
                digest: "sha256:ab".into()
            })
        );
        assert_eq!(
            p("a/b/blobs/uploads/"),
            Some(Endpoint::UploadStart { name: "a/b".into() })
        );
        assert_eq!(
            p("a/b/blobs/uploads"),
            Some(Endpoint::UploadStart { name: "a/b".into() })
        );
        assert_eq!(
            p("a/blobs/uploads/123"),
            Some(Endpoint::Upload {
                name: "a".into(),
                id: "123".into()
            })
        );
        assert_eq!(
            p("a/referrers/sha256:x"),
            Some(Endpoint::Referrers {
                name: "a".into(),
                digest: "sha256:x".into()
            })
        );
    }

    #[test]
    fn names_may_contain_operation_words() {
        assert_eq!(
            p("manifests/blobs/manifests/latest"),
            Some(Endpoint::Manifest {
                name: "manifests/blobs".into(),
                reference: "latest".into()
            })
        );
        assert_eq!(
            p("tags/list/tags/list"),
            Some(Endpoint::Tags {
                name: "tags/list".into()
            })
        );
    }

    #[test]
    fn refuses_what_is_not_an_endpoint() {
        for bad in [
            "x",
            "a/b",
            "manifests/v1",
            "blobs/uploads/",
            "a/manifests/",
            "tags/list",
        ] {
            assert_eq!(p(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn encoded_slash_is_decoded_per_segment() {
        assert_eq!(
            p("a%2Fb/manifests/v1"),
            Some(Endpoint::Manifest {
                name: "a/b".into(),
                reference: "v1".into()
            })
        );
    }
}
