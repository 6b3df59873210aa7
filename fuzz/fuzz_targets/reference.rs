//! Repository names, tags, references and upload ids from arbitrary (lossily decoded) text.
//! Beyond "never panics": whatever is accepted must be path-safe and must print back to
//! something that parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wharf_oci::{Reference, RepoName, Tag, UploadId};

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let s = s.as_ref();

    if let Ok(name) = s.parse::<RepoName>() {
        let n = name.as_str();
        assert!(n.len() <= 255, "accepted name of {} bytes", n.len());
        assert!(n.contains('/'), "name {n:?} was not normalised to namespace/name");
        for c in n.split('/') {
            assert!(!c.is_empty() && c != "." && c != "..", "unsafe component in {n:?}");
            assert!(
                c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)),
                "bad byte in {n:?}"
            );
        }
        assert_eq!(name.to_string(), n);
        assert_eq!(n.parse::<RepoName>().as_ref(), Ok(&name), "name does not re-parse");
        assert_eq!(name.namespace(), n.split('/').next().unwrap());
    }

    if let Ok(tag) = s.parse::<Tag>() {
        let t = tag.as_str();
        assert!(!t.is_empty() && t.len() <= 128);
        assert!(!t.starts_with('.') && !t.starts_with('-'));
        assert!(!t.contains('/') && !t.contains(':'));
        assert_eq!(tag.to_string().parse::<Tag>().as_ref(), Ok(&tag));
    }

    if let Ok(r) = s.parse::<Reference>() {
        assert_eq!(r.to_string(), s, "reference does not print back verbatim");
        assert_eq!(r.to_string().parse::<Reference>().as_ref(), Ok(&r));
        match &r {
            Reference::Tag(t) => assert_eq!(s.parse::<Tag>().as_ref(), Ok(t)),
            Reference::Digest(d) => assert_eq!(d.to_string(), s),
        }
    }

    if let Ok(id) = s.parse::<UploadId>() {
        let i = id.as_str();
        assert_eq!(i.len(), 36);
        assert!(!i.contains('/') && !i.contains('.'));
        assert_eq!(id.to_string(), i);
        assert!(UploadId::from_uuid_string(i.to_owned()).is_ok());
    }
});
