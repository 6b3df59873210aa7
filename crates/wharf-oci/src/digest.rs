//! Content digests (`algorithm:hex`) and the streaming hashers that produce them.

use std::fmt;
use std::str::FromStr;

/// A digest algorithm wharf can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DigestAlgorithm {
    Sha256,
    Sha512,
}

impl DigestAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Self::Sha256 => 64,
            Self::Sha512 => 128,
        }
    }
}

/// A validated digest such as `sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: DigestAlgorithm,
    hex: String,
}

/// Why a string is not a digest wharf accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error(
        "digest {0:?} is malformed: expected `algorithm:hex`, for example `sha256:` followed by 64 lowercase hex characters"
    )]
    Malformed(String),
    #[error("digest algorithm {0:?} is not supported: use sha256 or sha512")]
    UnsupportedAlgorithm(String),
    #[error(
        "digest {digest:?} has an encoded part of the wrong form: {algorithm} needs {len} lowercase hex characters"
    )]
    BadEncoding {
        digest: String,
        algorithm: &'static str,
        len: usize,
    },
}

impl Digest {
    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The encoded (hex) part.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The SHA-256 digest of `bytes`.
    pub fn sha256_of(bytes: &[u8]) -> Self {
        let mut h = Hasher::new(DigestAlgorithm::Sha256);
        h.update(bytes);
        h.finish()
    }

    /// The digest of `bytes` with the same algorithm as `self`.
    pub fn same_algorithm_of(&self, bytes: &[u8]) -> Self {
        let mut h = Hasher::new(self.algorithm);
        h.update(bytes);
        h.finish()
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (alg, enc) = s
            .split_once(':')
            .ok_or_else(|| DigestError::Malformed(truncate(s)))?;
        let alg_ok = !alg.is_empty()
            && alg.split(['+', '.', '_', '-']).all(|c| {
                !c.is_empty()
                    && c.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
        let enc_ok = !enc.is_empty()
            && enc
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'));
        if !alg_ok || !enc_ok {
            return Err(DigestError::Malformed(truncate(s)));
        }
        let algorithm = match alg {
            "sha256" => DigestAlgorithm::Sha256,
            "sha512" => DigestAlgorithm::Sha512,
            other => return Err(DigestError::UnsupportedAlgorithm(truncate(other))),
        };
        if enc.len() != algorithm.hex_len()
            || !enc
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(DigestError::BadEncoding {
                digest: truncate(s),
                algorithm: algorithm.as_str(),
                len: algorithm.hex_len(),
            });
        }
        Ok(Self {
            algorithm,
            hex: enc.to_owned(),
        })
    }
}

/// Keeps error messages bounded when a client sends something huge.
fn truncate(s: &str) -> String {
    if s.len() <= 160 {
        s.to_owned()
    } else {
        let mut end = 160;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A streaming hasher for one digest algorithm. SHA-256 uses the CPU's SHA extensions when
/// present. Its running state can be saved and restored (`save`/`restore`), so an upload can be
/// continued on another node, or after a restart, without re-reading what was already hashed.
#[derive(Clone)]
pub struct Hasher(Inner);

#[derive(Clone)]
enum Inner {
    Sha256(crate::sha::Sha256),
    Sha512(crate::sha::Sha512),
}

impl Hasher {
    pub fn new(algorithm: DigestAlgorithm) -> Self {
        match algorithm {
            DigestAlgorithm::Sha256 => Self(Inner::Sha256(crate::sha::Sha256::new())),
            DigestAlgorithm::Sha512 => Self(Inner::Sha512(crate::sha::Sha512::new())),
        }
    }

    pub fn algorithm(&self) -> DigestAlgorithm {
        match &self.0 {
            Inner::Sha256(_) => DigestAlgorithm::Sha256,
            Inner::Sha512(_) => DigestAlgorithm::Sha512,
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.0 {
            Inner::Sha256(h) => h.update(bytes),
            Inner::Sha512(h) => h.update(bytes),
        }
    }

    pub fn finish(self) -> Digest {
        let (algorithm, hex) = match self.0 {
            Inner::Sha256(h) => (DigestAlgorithm::Sha256, hex::encode(h.finish())),
            Inner::Sha512(h) => (DigestAlgorithm::Sha512, hex::encode(h.finish())),
        };
        Digest { algorithm, hex }
    }

    /// The running state as bytes (a few hundred at most), for `restore`.
    pub fn save(&self) -> Vec<u8> {
        match &self.0 {
            Inner::Sha256(h) => h.save(),
            Inner::Sha512(h) => h.save(),
        }
    }

    /// A hasher from `save`d bytes; `None` when they are not a valid saved state.
    pub fn restore(saved: &[u8]) -> Option<Self> {
        match *saved.first()? {
            crate::sha::Sha256::TAG => {
                crate::sha::Sha256::restore(saved).map(|h| Self(Inner::Sha256(h)))
            }
            crate::sha::Sha512::TAG => {
                crate::sha::Sha512::restore(saved).map(|h| Self(Inner::Sha512(h)))
            }
            _ => None,
        }
    }
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hasher({})", self.algorithm().as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_sha256() {
        let s = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
        let d: Digest = s.parse().unwrap();
        assert_eq!(d.to_string(), s);
        assert_eq!(d.algorithm(), DigestAlgorithm::Sha256);
        assert_eq!(Digest::sha256_of(b"foo"), d);
    }

    #[test]
    fn refuses_bad_digests() {
        for bad in [
            "",
            "sha256",
            "sha256:",
            ":abc",
            "sha256:ABC",
            "sha256:2C26B46B68FFC68FF99B453C1D30413413422D706483BFA0F98A5E886266E7AE",
            "sha256:2c26",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "sha256:../../etc/passwd",
            "SHA256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn sha512_round_trips() {
        let mut h = Hasher::new(DigestAlgorithm::Sha512);
        h.update(b"foo");
        let d = h.finish();
        assert_eq!(d.hex().len(), 128);
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".{0,200}") {
            let _ = s.parse::<Digest>();
        }
    }
}
