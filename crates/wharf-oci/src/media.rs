//! Manifest media types and content negotiation over the `Accept` header lines.

/// Manifest media types wharf stores and serves.
pub struct MediaType;

impl MediaType {
    pub const OCI_MANIFEST: &'static str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &'static str = "application/vnd.oci.image.index.v1+json";
    pub const DOCKER_MANIFEST: &'static str =
        "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_LIST: &'static str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_SCHEMA1: &'static str = "application/vnd.docker.distribution.manifest.v1+json";
    pub const DOCKER_SCHEMA1_SIGNED: &'static str =
        "application/vnd.docker.distribution.manifest.v1+prettyjws";
    pub const OCI_EMPTY: &'static str = "application/vnd.oci.empty.v1+json";
    /// Layers that live elsewhere (Windows base layers); their blobs are not in the registry.
    pub const DOCKER_FOREIGN_LAYER: &'static str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    pub const OCI_NONDISTRIBUTABLE_PREFIX: &'static str =
        "application/vnd.oci.image.layer.nondistributable.";
}

/// The media type without parameters, lower-cased: `Application/JSON; charset=utf-8` →
/// `application/json`.
pub(crate) fn essence(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether a client that sent these `Accept` header values (each may hold a comma-separated
/// list) takes a manifest of `media_type`. No `Accept` at all means anything goes.
pub fn accepts<'a>(accept_values: impl IntoIterator<Item = &'a str>, media_type: &str) -> bool {
    let mut any = false;
    for value in accept_values {
        for item in value.split(',') {
            let e = essence(item);
            if e.is_empty() {
                continue;
            }
            any = true;
            if e == media_type || e == "*/*" || e == "application/*" {
                return true;
            }
        }
    }
    !any
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_reads_every_line() {
        let lines = [MediaType::OCI_MANIFEST, MediaType::DOCKER_SCHEMA1_SIGNED];
        assert!(accepts(lines, MediaType::OCI_MANIFEST));
        assert!(!accepts(lines, MediaType::OCI_INDEX));
        assert!(accepts(
            ["application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json"],
            MediaType::OCI_MANIFEST
        ));
        assert!(accepts(["*/*"], MediaType::DOCKER_LIST));
        assert!(accepts(std::iter::empty(), MediaType::DOCKER_LIST));
    }
}
