//! Privacy: "Individual IP addresses are never shared", only unique counts. An IP address is
//! kept as a keyed hash whose key changes every period (HMAC-SHA-256 of a server secret and
//! the period's name, e.g. `2026-W47`), so addresses can be counted within a period but hashes
//! of different periods cannot be joined, and without the secret a hash cannot be reversed by
//! trying all addresses. Also the domain exclusions of the Technographic reports ("Personal,
//! disposable, and university email domains are excluded"), in [`domains`]. Extension users
//! are kept the same way, as period-keyed hashes ([`UserHasher`]).

pub mod domains;
mod users;

use std::fmt;
use std::net::IpAddr;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::report::period::Period;

pub use domains::{ExclusionReason, excluded_domain};
pub use users::UserHasher;

type HmacSha256 = Hmac<Sha256>;

/// The shortest secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 16;

/// The server's hashing secret. Its `Debug` never shows the bytes.
#[derive(Clone)]
pub struct HashSecret(Box<[u8]>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error(
        "the IP hashing secret is {0} bytes; use at least {MIN_SECRET_LEN} random bytes (e.g. 64 hex digits from `openssl rand -hex 32`)"
    )]
    TooShort(usize),
    #[error(
        "the IP hashing secret is not hexadecimal; write it as hex digits (e.g. from `openssl rand -hex 32`)"
    )]
    NotHex,
}

impl HashSecret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, SecretError> {
        let bytes = bytes.into();
        if bytes.len() < MIN_SECRET_LEN {
            return Err(SecretError::TooShort(bytes.len()));
        }
        Ok(Self(bytes.into_boxed_slice()))
    }

    /// From hex digits, as a config file or environment variable holds it.
    pub fn from_hex(hex: &str) -> Result<Self, SecretError> {
        let bytes = hex::decode(hex.trim()).map_err(|_| SecretError::NotHex)?;
        Self::new(bytes)
    }

    /// The hasher for one period: its key is HMAC-SHA-256(secret, "wharf ip v1 " + name).
    pub fn hasher(&self, period: &Period) -> IpHasher {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(b"wharf ip v1 ");
        mac.update(period.name().as_bytes());
        let key = mac.finalize().into_bytes();
        IpHasher {
            mac: HmacSha256::new_from_slice(&key).expect("HMAC takes keys of any length"),
        }
    }
}

impl fmt::Debug for HashSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HashSecret(<redacted>)")
    }
}

/// Hashes addresses with one period's key.
#[derive(Clone)]
pub struct IpHasher {
    mac: HmacSha256,
}

impl fmt::Debug for IpHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IpHasher(<redacted>)")
    }
}

impl IpHasher {
    /// The address's hash: 16 bytes of HMAC-SHA-256 over its 16-byte IPv6 form (IPv4 as
    /// `::ffff:a.b.c.d`, so an IPv4 address and its mapped form hash the same).
    pub fn hash(&self, ip: IpAddr) -> IpHash {
        let octets = match ip.to_canonical() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => v6.octets(),
        };
        let mut mac = self.mac.clone();
        mac.update(&octets);
        let digest = mac.finalize().into_bytes();
        let mut out = [0; IpHash::LEN];
        out.copy_from_slice(&digest[..IpHash::LEN]);
        IpHash(out)
    }
}

/// A period-keyed hash of an IP address: what is stored and counted instead of the address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpHash([u8; IpHash::LEN]);

impl IpHash {
    pub const LEN: usize = 16;

    pub fn from_bytes(bytes: [u8; Self::LEN]) -> Self {
        Self(bytes)
    }

    /// From a stored column; `None` unless exactly 16 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    pub fn as_bytes(&self) -> &[u8; Self::LEN] {
        &self.0
    }
}

impl fmt::Display for IpHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for IpHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IpHash({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use time::macros::date;

    fn secret() -> HashSecret {
        HashSecret::from_hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
            .unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn same_period_same_hash_different_addresses_differ() {
        let week = Period::week_of(date!(2026 - 11 - 18));
        let hasher = secret().hasher(&week);
        assert_eq!(hasher.hash(ip("192.0.2.1")), hasher.hash(ip("192.0.2.1")));
        // Another day of the same week gives the same key.
        let again = secret().hasher(&Period::week_of(date!(2026 - 11 - 22)));
        assert_eq!(hasher.hash(ip("192.0.2.1")), again.hash(ip("192.0.2.1")));
        let hashes: HashSet<IpHash> = (0..=255u8)
            .map(|i| hasher.hash(IpAddr::from([192, 0, 2, i])))
            .collect();
        assert_eq!(hashes.len(), 256);
        assert_ne!(
            hasher.hash(ip("2001:db8::1")),
            hasher.hash(ip("2001:db8::2"))
        );
    }

    #[test]
    fn periods_and_secrets_change_the_hash() {
        let address = ip("198.51.100.7");
        let s = secret();
        let w47 = s
            .hasher(&Period::week_of(date!(2026 - 11 - 18)))
            .hash(address);
        let w48 = s
            .hasher(&Period::week_of(date!(2026 - 11 - 25)))
            .hash(address);
        let nov = s
            .hasher(&Period::month_of(date!(2026 - 11 - 18)))
            .hash(address);
        assert_ne!(w47, w48);
        assert_ne!(w47, nov);
        let other = HashSecret::new(*b"another secret of 32 bytes......").unwrap();
        let w47_other = other
            .hasher(&Period::week_of(date!(2026 - 11 - 18)))
            .hash(address);
        assert_ne!(w47, w47_other);
    }

    #[test]
    fn known_answer() {
        // Pins the construction: HMAC-SHA-256(HMAC-SHA-256(secret, "wharf ip v1 2026-W47"),
        // ::ffff:192.0.2.1) truncated to 16 bytes. Computed independently with Python's hmac.
        let hasher = secret().hasher(&"2026-W47".parse().unwrap());
        assert_eq!(hasher.hash(ip("192.0.2.1")).to_string(), KNOWN_ANSWER,);
    }

    const KNOWN_ANSWER: &str = "a041e7047ab1e535d4d9e6cdb7f36b08";

    #[test]
    fn ipv4_and_its_mapped_form_hash_alike() {
        let hasher = secret().hasher(&"2026-11".parse().unwrap());
        assert_eq!(
            hasher.hash(ip("192.0.2.1")),
            hasher.hash(ip("::ffff:192.0.2.1"))
        );
    }

    #[test]
    fn nothing_prints_the_secret_or_the_address() {
        let s = secret();
        assert_eq!(format!("{s:?}"), "HashSecret(<redacted>)");
        let hasher = s.hasher(&"2026-W47".parse().unwrap());
        assert_eq!(format!("{hasher:?}"), "IpHasher(<redacted>)");
        let shown = format!("{:?}", hasher.hash(ip("192.0.2.1")));
        assert!(!shown.contains("192"), "{shown}");
        assert_eq!(shown.len(), "IpHash()".len() + 32);
    }

    #[test]
    fn secrets_are_checked() {
        assert_eq!(
            HashSecret::new(vec![0; 15]).unwrap_err(),
            SecretError::TooShort(15)
        );
        assert!(HashSecret::new(vec![0; 16]).is_ok());
        assert_eq!(HashSecret::from_hex("zz").unwrap_err(), SecretError::NotHex);
        assert_eq!(
            HashSecret::from_hex("abc").unwrap_err(),
            SecretError::NotHex
        );
        assert!(HashSecret::from_hex(" 00112233445566778899aabbccddeeff\n").is_ok());
        assert!(
            HashSecret::new(vec![0; 3])
                .unwrap_err()
                .to_string()
                .contains("at least 16")
        );
    }

    #[test]
    fn hash_bytes_round_trip() {
        let hash = secret()
            .hasher(&"2026-W47".parse().unwrap())
            .hash(ip("192.0.2.1"));
        assert_eq!(IpHash::from_slice(hash.as_bytes()), Some(hash));
        assert_eq!(IpHash::from_bytes(*hash.as_bytes()), hash);
        assert_eq!(IpHash::from_slice(&[0; 15]), None);
    }
}
