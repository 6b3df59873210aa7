//! Manifest parsing and validation: OCI image manifest and index, Docker schema 2 manifest and
//! manifest list, artifacts (`artifactType`, empty config), manifests without a `mediaType`
//! field. Schema 1 is refused.

use serde::Deserialize;

use crate::digest::Digest;
use crate::media::{MediaType, essence};

/// The largest manifest wharf accepts (the distribution spec's recommended minimum limit).
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    /// An image manifest (OCI or Docker schema 2): a config and layers.
    Image,
    /// An index (OCI index or Docker manifest list): child manifests.
    Index,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is {0} bytes; wharf accepts manifests of at most {MAX_MANIFEST_BYTES} bytes")]
    TooLarge(usize),
    #[error("manifest is not valid JSON: {0}")]
    Json(String),
    #[error(
        "Docker schema 1 manifests are not supported: push with a client that writes Docker schema 2 or OCI manifests (any docker since 1.10, podman, skopeo, buildah)"
    )]
    Schema1,
    #[error("manifest schemaVersion must be 2, found {0}")]
    SchemaVersion(i64),
    #[error(
        "manifest media type {0:?} is not supported: use an OCI image manifest or index, or a Docker schema 2 manifest or manifest list"
    )]
    UnknownMediaType(String),
    #[error(
        "manifest says mediaType {field:?} but was sent with Content-Type {header:?}; they must agree"
    )]
    MediaTypeMismatch { field: String, header: String },
    #[error("manifest has no media type: send a Content-Type header or a mediaType field")]
    NoMediaType,
    #[error("manifest field {0}")]
    Field(String),
}

/// A content descriptor inside a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: i64,
    #[serde(default)]
    pub urls: Vec<String>,
    #[serde(default)]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub platform: Option<Platform>,
    #[serde(default)]
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

impl Descriptor {
    /// Foreign and non-distributable layers are fetched from their `urls`, not from wharf.
    pub fn is_foreign(&self) -> bool {
        self.media_type == MediaType::DOCKER_FOREIGN_LAYER
            || self
                .media_type
                .starts_with(MediaType::OCI_NONDISTRIBUTABLE_PREFIX)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
}

/// A manifest that passed validation, with what the registry needs to store and link it.
#[derive(Debug, Clone)]
pub struct ParsedManifest {
    pub media_type: String,
    pub kind: ManifestKind,
    pub config: Option<Descriptor>,
    pub layers: Vec<Descriptor>,
    pub manifests: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    /// `artifactType`, or for image manifests without one, the config's media type
    /// (what the referrers API reports).
    pub artifact_type: Option<String>,
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<Descriptor>,
    layers: Option<Vec<Descriptor>>,
    manifests: Option<Vec<Descriptor>>,
    subject: Option<Descriptor>,
    annotations: Option<serde_json::Map<String, serde_json::Value>>,
    // schema 1 markers
    fs_layers: Option<serde_json::Value>,
    signatures: Option<serde_json::Value>,
}

fn known(mt: &str) -> Option<ManifestKind> {
    match mt {
        MediaType::OCI_MANIFEST | MediaType::DOCKER_MANIFEST => Some(ManifestKind::Image),
        MediaType::OCI_INDEX | MediaType::DOCKER_LIST => Some(ManifestKind::Index),
        _ => None,
    }
}

fn is_schema1(mt: &str) -> bool {
    mt == MediaType::DOCKER_SCHEMA1 || mt == MediaType::DOCKER_SCHEMA1_SIGNED
}

/// Parses and validates a manifest body. `content_type` is the request's `Content-Type`.
pub fn parse_manifest(
    content_type: Option<&str>,
    bytes: &[u8],
) -> Result<ParsedManifest, ManifestError> {
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::TooLarge(bytes.len()));
    }
    let header = content_type.map(essence).filter(|h| {
        // Generic types say nothing about which manifest this is.
        !h.is_empty() && h != "application/json" && h != "application/octet-stream"
    });
    if header.as_deref().is_some_and(is_schema1) {
        return Err(ManifestError::Schema1);
    }
    let raw: Raw = serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
    if raw.fs_layers.is_some() || raw.signatures.is_some() || raw.schema_version == Some(1) {
        return Err(ManifestError::Schema1);
    }
    match raw.schema_version {
        Some(2) => {}
        Some(v) => return Err(ManifestError::SchemaVersion(v)),
        None => {
            return Err(ManifestError::Field(
                "schemaVersion is missing; it must be 2".into(),
            ));
        }
    }
    let field = raw.media_type.as_deref().map(essence);
    if field.as_deref().is_some_and(is_schema1) {
        return Err(ManifestError::Schema1);
    }
    let media_type = match (field, header) {
        (Some(f), Some(h)) if f != h => {
            return Err(ManifestError::MediaTypeMismatch {
                field: f,
                header: h,
            });
        }
        (Some(f), _) => f,
        (None, Some(h)) => h,
        (None, None) => {
            if raw.manifests.is_some() {
                MediaType::OCI_INDEX.to_owned()
            } else if raw.config.is_some() {
                MediaType::OCI_MANIFEST.to_owned()
            } else {
                return Err(ManifestError::NoMediaType);
            }
        }
    };
    let kind = known(&media_type)
        .ok_or_else(|| ManifestError::UnknownMediaType(media_type.chars().take(200).collect()))?;
    let parsed = match kind {
        ManifestKind::Image => {
            let config = raw.config.ok_or_else(|| {
                ManifestError::Field(
                    "config is missing; an image manifest needs a config descriptor".into(),
                )
            })?;
            let layers = raw.layers.ok_or_else(|| {
                ManifestError::Field("layers is missing; an image manifest needs a layers array (it may be empty for artifacts)".into())
            })?;
            if raw.manifests.is_some() {
                return Err(ManifestError::Field(
                    "manifests is not allowed in an image manifest".into(),
                ));
            }
            let artifact_type = raw
                .artifact_type
                .clone()
                .or_else(|| Some(config.media_type.clone()));
            ParsedManifest {
                media_type,
                kind,
                config: Some(config),
                layers,
                manifests: Vec::new(),
                subject: raw.subject,
                artifact_type,
                annotations: raw.annotations,
            }
        }
        ManifestKind::Index => {
            let manifests = raw.manifests.ok_or_else(|| {
                ManifestError::Field(
                    "manifests is missing; an index needs a manifests array".into(),
                )
            })?;
            if raw.layers.is_some() || raw.config.is_some() {
                return Err(ManifestError::Field(
                    "config and layers are not allowed in an index".into(),
                ));
            }
            ParsedManifest {
                media_type,
                kind,
                config: None,
                layers: Vec::new(),
                manifests,
                subject: raw.subject,
                artifact_type: raw.artifact_type,
                annotations: raw.annotations,
            }
        }
    };
    // Stored and served as text on every database: a media type, not arbitrary bytes.
    if let Some(t) = &parsed.artifact_type
        && (t.is_empty() || t.len() > 255 || t.chars().any(|c| c.is_control() || c == ' '))
    {
        return Err(ManifestError::Field(format!(
            "artifactType (or the config's mediaType) {:?} is not a media type such as application/vnd.example+json",
            t.chars().take(100).collect::<String>()
        )));
    }
    for d in parsed
        .config
        .iter()
        .chain(&parsed.layers)
        .chain(&parsed.manifests)
        .chain(&parsed.subject)
    {
        if d.size < 0 {
            return Err(ManifestError::Field(format!(
                "descriptor {} has a negative size",
                d.digest
            )));
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

    fn image(extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,{extra}"config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{D}","size":2}},"layers":[{{"mediaType":"application/x","digest":"{D}","size":2}}]}}"#
        )
    }

    #[test]
    fn media_type_from_header_when_field_missing() {
        let m = parse_manifest(Some(MediaType::OCI_MANIFEST), image("").as_bytes()).unwrap();
        assert_eq!(m.media_type, MediaType::OCI_MANIFEST);
        assert_eq!(m.kind, ManifestKind::Image);
        assert_eq!(m.artifact_type.as_deref(), Some(MediaType::OCI_EMPTY));
        let m = parse_manifest(None, image("").as_bytes()).unwrap();
        assert_eq!(m.media_type, MediaType::OCI_MANIFEST);
    }

    #[test]
    fn field_and_header_must_agree() {
        let body = image(&format!(r#""mediaType":"{}","#, MediaType::DOCKER_MANIFEST));
        assert!(parse_manifest(Some(MediaType::DOCKER_MANIFEST), body.as_bytes()).is_ok());
        assert!(matches!(
            parse_manifest(Some(MediaType::OCI_MANIFEST), body.as_bytes()),
            Err(ManifestError::MediaTypeMismatch { .. })
        ));
        assert!(parse_manifest(Some("application/json"), body.as_bytes()).is_ok());
    }

    #[test]
    fn artifact_type_and_subject() {
        let body = image(&format!(
            r#""artifactType":"application/vnd.example","subject":{{"mediaType":"{}","digest":"{D}","size":9}},"#,
            MediaType::OCI_MANIFEST
        ));
        let m = parse_manifest(Some(MediaType::OCI_MANIFEST), body.as_bytes()).unwrap();
        assert_eq!(m.artifact_type.as_deref(), Some("application/vnd.example"));
        assert_eq!(m.subject.unwrap().digest.to_string(), D);
    }

    #[test]
    fn refusals() {
        assert_eq!(
            parse_manifest(Some(MediaType::DOCKER_SCHEMA1_SIGNED), b"{}").unwrap_err(),
            ManifestError::Schema1
        );
        assert_eq!(
            parse_manifest(None, br#"{"schemaVersion":1,"fsLayers":[]}"#).unwrap_err(),
            ManifestError::Schema1
        );
        assert!(matches!(
            parse_manifest(None, b"{not json").unwrap_err(),
            ManifestError::Json(_)
        ));
        assert!(matches!(
            parse_manifest(Some("application/vnd.unknown+json"), image("").as_bytes()).unwrap_err(),
            ManifestError::UnknownMediaType(_)
        ));
        let big = vec![b' '; MAX_MANIFEST_BYTES + 1];
        assert!(matches!(
            parse_manifest(None, &big),
            Err(ManifestError::TooLarge(_))
        ));
        let nul = image(r#""artifactType":"application/x\u0000y","#);
        assert!(matches!(
            parse_manifest(None, nul.as_bytes()),
            Err(ManifestError::Field(_))
        ));
        let bad_digest = image("").replace(D, "sha256:abc");
        assert!(matches!(
            parse_manifest(None, bad_digest.as_bytes()),
            Err(ManifestError::Json(_))
        ));
        assert!(matches!(
            parse_manifest(Some(MediaType::OCI_INDEX), image("").as_bytes()),
            Err(ManifestError::Field(_))
        ));
    }

    #[test]
    fn index_with_platforms() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{}","digest":"{D}","size":5,"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}}]}}"#,
            MediaType::DOCKER_LIST,
            MediaType::DOCKER_MANIFEST
        );
        let m = parse_manifest(None, body.as_bytes()).unwrap();
        assert_eq!(m.kind, ManifestKind::Index);
        assert_eq!(
            m.manifests[0].platform.as_ref().unwrap().variant.as_deref(),
            Some("v8")
        );
    }
}
