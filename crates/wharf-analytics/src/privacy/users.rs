//! User identifiers of extension events, kept only as keyed hashes: HMAC-SHA-256 with a key
//! per period (`wharf extension user v1 ` + the period's name, derived from the server secret)
//! over the extension's repository and the user's opaque id. Unique users can be counted
//! within a week or a month; the hashes of two periods, or of two extensions, cannot be
//! joined, and without the secret an id cannot be found by trying candidates.

use std::fmt;

use hmac::{KeyInit, Mac};

use super::{HashSecret, HmacSha256};
use crate::report::period::Period;

impl HashSecret {
    /// The hasher of extension users for one period.
    pub fn user_hasher(&self, period: &Period) -> UserHasher {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(b"wharf extension user v1 ");
        mac.update(period.name().as_bytes());
        let key = mac.finalize().into_bytes();
        UserHasher {
            mac: HmacSha256::new_from_slice(&key).expect("HMAC takes keys of any length"),
        }
    }
}

/// Hashes user ids with one period's key.
#[derive(Clone)]
pub struct UserHasher {
    mac: HmacSha256,
}

impl fmt::Debug for UserHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserHasher(<redacted>)")
    }
}

impl UserHasher {
    /// 16 bytes of HMAC over the repository, a NUL (which neither contains) and the user id.
    pub fn hash(&self, repository: &str, user: &str) -> [u8; 16] {
        let mut mac = self.mac.clone();
        mac.update(repository.as_bytes());
        mac.update(&[0]);
        mac.update(user.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = [0; 16];
        out.copy_from_slice(&digest[..16]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn a_user_hashes_alike_within_a_period_and_apart_across_periods_and_extensions() {
        let secret = HashSecret::new(vec![7u8; 32]).unwrap();
        let week = secret.user_hasher(&Period::week_of(date!(2026 - 11 - 18)));
        let same_week = secret.user_hasher(&Period::week_of(date!(2026 - 11 - 22)));
        let next_week = secret.user_hasher(&Period::week_of(date!(2026 - 11 - 23)));
        let month = secret.user_hasher(&Period::month_of(date!(2026 - 11 - 18)));
        let h = week.hash("acme/ext", "user-1");
        assert_eq!(h, same_week.hash("acme/ext", "user-1"));
        assert_ne!(h, week.hash("acme/ext", "user-2"));
        assert_ne!(h, week.hash("acme/other", "user-1"));
        assert_ne!(h, next_week.hash("acme/ext", "user-1"));
        assert_ne!(h, month.hash("acme/ext", "user-1"));
        let other = HashSecret::new(vec![8u8; 32]).unwrap();
        assert_ne!(
            h,
            other
                .user_hasher(&Period::week_of(date!(2026 - 11 - 18)))
                .hash("acme/ext", "user-1")
        );
        assert!(!format!("{week:?}").contains("user"));
    }
}
