//! Sign-in throttling: after too many failed attempts for one account, or from one client
//! address (IPv6 by /64), further attempts are refused for the rest of the window, correct
//! passwords included. Counters live in this node's memory: with several nodes, each allows
//! its own budget (the limits below are per node).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed attempts allowed per account per window.
pub const ACCOUNT_FAILURES: u32 = 10;
/// Failed attempts allowed per client address per window.
pub const ADDRESS_FAILURES: u32 = 50;
pub const WINDOW: Duration = Duration::from_secs(300);
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Address(IpAddr),
}

fn address_key(ip: IpAddr) -> Key {
    match ip {
        IpAddr::V4(v4) => Key::Address(IpAddr::V4(v4)),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            Key::Address(IpAddr::V6(std::net::Ipv6Addr::new(
                s[0], s[1], s[2], s[3], 0, 0, 0, 0,
            )))
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Throttle {
    failures: Mutex<HashMap<Key, (Instant, u32)>>,
}

impl Throttle {
    /// Seconds to wait when the account or address has used up its attempts.
    pub(crate) fn blocked(&self, account: &str, ip: Option<IpAddr>) -> Option<u64> {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = None;
        let mut check = |key: Key, limit: u32| {
            if let Some((start, n)) = map.get(&key) {
                let age = start.elapsed();
                if *n >= limit && age < WINDOW {
                    let left = (WINDOW - age).as_secs().max(1);
                    wait = Some(wait.map_or(left, |w: u64| w.max(left)));
                }
            }
        };
        check(Key::Account(account.to_owned()), ACCOUNT_FAILURES);
        if let Some(ip) = ip {
            check(address_key(ip), ADDRESS_FAILURES);
        }
        wait
    }

    pub(crate) fn failed(&self, account: &str, ip: Option<IpAddr>) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_KEYS {
            map.retain(|_, (start, _)| start.elapsed() < WINDOW);
            if map.len() >= MAX_KEYS {
                map.clear();
            }
        }
        let mut bump = |key: Key| {
            let e = map.entry(key).or_insert((Instant::now(), 0));
            if e.0.elapsed() >= WINDOW {
                *e = (Instant::now(), 0);
            }
            e.1 += 1;
        };
        bump(Key::Account(account.to_owned()));
        if let Some(ip) = ip {
            bump(address_key(ip));
        }
    }

    pub(crate) fn succeeded(&self, account: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&Key::Account(account.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_too_many_failures_per_account_and_address() {
        let t = Throttle::default();
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        for _ in 0..ACCOUNT_FAILURES {
            assert!(t.blocked("alice", Some(ip)).is_none());
            t.failed("alice", Some(ip));
        }
        assert!(t.blocked("alice", None).is_some());
        assert!(t.blocked("bob", None).is_none());
        // The same /64 counts together.
        let neighbour: IpAddr = "2001:db8::ffff".parse().unwrap();
        for i in 0..(ADDRESS_FAILURES - ACCOUNT_FAILURES) {
            t.failed(&format!("user{i}"), Some(neighbour));
        }
        assert!(t.blocked("carol", Some(ip)).is_some());
        assert!(
            t.blocked("carol", Some("192.0.2.1".parse().unwrap()))
                .is_none()
        );
        t.succeeded("alice");
        assert!(t.blocked("alice", None).is_none());
    }
}
