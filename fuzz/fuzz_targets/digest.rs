//! Digest parsing from arbitrary (lossily decoded) text. An accepted digest prints back
//! verbatim and re-parses to an equal digest, and its hex part is path-safe.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wharf_oci::{Digest, DigestAlgorithm};

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let s = s.as_ref();
    if let Ok(d) = s.parse::<Digest>() {
        let printed = d.to_string();
        assert_eq!(printed, s, "digest does not print back verbatim");
        let again: Digest = printed.parse().expect("printed digest does not re-parse");
        assert_eq!(again, d);
        let want = match d.algorithm() {
            DigestAlgorithm::Sha256 => 64,
            DigestAlgorithm::Sha512 => 128,
        };
        assert_eq!(d.hex().len(), want);
        assert!(d.hex().bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        // Hashing with the same algorithm yields a digest of the same shape.
        let h = d.same_algorithm_of(data);
        assert_eq!(h.algorithm(), d.algorithm());
        assert_eq!(h.to_string().parse::<Digest>().as_ref(), Ok(&h));
    }
});
