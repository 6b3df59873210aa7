//! Manifest parsing. Input format: `<content-type>\n<body>`; an empty first line (or no
//! newline at all, in which case the whole input is the body) means no Content-Type header.
//! Invariants on success: the kind matches the media type family, a specific Content-Type
//! agrees with the result, descriptor sizes are non-negative, and negotiation accepts it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wharf_oci::{MAX_MANIFEST_BYTES, ManifestKind, MediaType, accepts, parse_manifest};

fn essence(v: &str) -> String {
    v.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

fuzz_target!(|data: &[u8]| {
    let (ct, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (String::from_utf8_lossy(&data[..i]).into_owned(), &data[i + 1..]),
        None => (String::new(), data),
    };
    let content_type = (!ct.is_empty()).then_some(ct.as_str());

    // Negotiation with the header value used as Accept lines must not panic either.
    let _ = accepts(ct.split('\r'), MediaType::OCI_MANIFEST);

    let Ok(m) = parse_manifest(content_type, body) else {
        return;
    };
    assert!(body.len() <= MAX_MANIFEST_BYTES);
    match m.media_type.as_str() {
        MediaType::OCI_MANIFEST | MediaType::DOCKER_MANIFEST => {
            assert_eq!(m.kind, ManifestKind::Image, "{}", m.media_type);
            assert!(m.config.is_some());
            assert!(m.manifests.is_empty());
            assert!(m.artifact_type.is_some());
        }
        MediaType::OCI_INDEX | MediaType::DOCKER_LIST => {
            assert_eq!(m.kind, ManifestKind::Index, "{}", m.media_type);
            assert!(m.config.is_none());
            assert!(m.layers.is_empty());
        }
        other => panic!("accepted manifest with media type {other:?}"),
    }
    let h = essence(&ct);
    if !h.is_empty() && h != "application/json" && h != "application/octet-stream" {
        assert_eq!(m.media_type, h, "Content-Type and result disagree");
    }
    for d in m.config.iter().chain(&m.layers).chain(&m.manifests).chain(&m.subject) {
        assert!(d.size >= 0);
        assert_eq!(d.digest.to_string().parse().as_ref(), Ok(&d.digest));
    }
    assert!(accepts([m.media_type.as_str()], &m.media_type));
    assert!(accepts(["*/*"], &m.media_type));
});
