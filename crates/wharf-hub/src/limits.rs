//! Pull rate limits and the JSON API's request limits.
//!
//! A pull is a manifest GET; HEAD requests show the quota without using it. Anonymous pulls
//! count per IPv4 address or IPv6 /64, signed-in pulls per user. Windows are fixed: they
//! start at multiples of their length since the epoch, so every node agrees on them.
//!
//! Counting never waits on the database: each node counts in memory and, every
//! `sync_interval` (the `sync_rate_limits` job), adds what it counted to the shared counter
//! rows and reads back the totals, which include every other node's pulls. A node asks the
//! database only the first time it sees a key in a window (one read per client per window
//! per node, not per pull). So two nodes disagree by at most the pulls the other made since
//! its last sync (about one interval), and a crash loses at most one interval's counts.
//!
//! Exempt, with no limit and no headers: namespaces in the Verified Publisher or Sponsored
//! Open Source programs (decided by `Hub::program_of`, the one place for program perks), and
//! the users, organizations and address ranges an administrator exempts. An administrator can
//! also give a user, an organization (its members and tokens) or a range a limit of its own.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicI64, AtomicU8};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ipnet::IpNet;
use wharf_db::RateRuleRow;

use crate::repos::Badge;
use crate::{Hub, HubError, Principal, User};

/// Rate limit settings.
#[derive(Debug, Clone)]
pub struct LimitConfig {
    /// Whether pulls and API requests are limited at all.
    pub enabled: bool,
    /// Pulls per window for anonymous clients (per IPv4 address or IPv6 /64).
    pub anonymous: u64,
    /// Pulls per window for signed-in users.
    pub authenticated: u64,
    /// Length of a pull window.
    pub window: Duration,
    /// JSON API requests per API window, per user or address.
    pub api_requests: u64,
    pub api_window: Duration,
    /// How often a node adds its counts to the shared counters and reads the totals back.
    pub sync_interval: Duration,
}

impl Default for LimitConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            anonymous: 100,
            authenticated: 200,
            window: Duration::from_secs(6 * 3600),
            api_requests: 600,
            api_window: Duration::from_secs(60),
            sync_interval: Duration::from_secs(1),
        }
    }
}

/// How a pull is limited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullPolicy {
    /// No limit and no headers.
    Exempt,
    Limited(Limit),
}

/// One client's limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    /// The shared counter's key.
    key: Key,
    /// What `docker-ratelimit-source` says: the address (or /64) or the user id.
    pub source: String,
    pub limit: u64,
    pub anonymous: bool,
}

/// Who a counter counts: an IPv4 address, an IPv6 /64, or a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Client {
    V4(u32),
    V6Net(u64),
    User(i64),
    Unknown,
}

impl Client {
    fn of(ip: Option<IpAddr>) -> Self {
        match ip.map(|ip| ip.to_canonical()) {
            Some(IpAddr::V4(v4)) => Self::V4(v4.to_bits()),
            Some(IpAddr::V6(v6)) => Self::V6Net((v6.to_bits() >> 64) as u64),
            None => Self::Unknown,
        }
    }

    /// `docker-ratelimit-source`: the address, the /64, or the user id.
    fn source(self) -> String {
        match self {
            Self::V4(a) => std::net::Ipv4Addr::from_bits(a).to_string(),
            Self::V6Net(n) => format!("{}/64", std::net::Ipv6Addr::from_bits(u128::from(n) << 64)),
            Self::User(id) => id.to_string(),
            Self::Unknown => "unknown".into(),
        }
    }
}

/// A counter: pulls, or the JSON API's requests, of one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    api: bool,
    client: Client,
}

impl Key {
    /// The counter's name in the shared table: `ip:192.0.2.1`, `ip:2001:db8::/64`,
    /// `user:42`, with `api:` in front for the JSON API.
    fn name(self) -> String {
        let client = match self.client {
            Client::User(id) => format!("user:{id}"),
            other => format!("ip:{}", other.source()),
        };
        if self.api {
            format!("api:{client}")
        } else {
            client
        }
    }
}

/// A client's quota after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Whether the request may go ahead (and was counted, when it counts).
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    /// The window's length in seconds.
    pub window_secs: u64,
    /// Seconds until the window ends and the quota is full again.
    pub reset_in: u64,
    /// When the window ends, in seconds since the epoch.
    pub reset_at: i64,
}

/// Kinds of rules an administrator can set.
pub const RULE_KINDS: &[&str] = &["user", "org", "range"];

/// Entries idle this long are forgotten (and re-read from the database when seen again).
const IDLE: i64 = 30;
/// How long a namespace's program or a user's limit is remembered on a node, in seconds.
const POLICY_TTL: i64 = 5;
const MAX_KEYS: usize = 200_000;

/// One counter on this node. A new window replaces the entry.
#[derive(Debug)]
struct Entry {
    window_start: i64,
    window_len: i64,
    /// The shared total as of the last sync.
    base: AtomicI64,
    /// Counted here since the last sync.
    pending: AtomicI64,
    /// When it was last used, in seconds since the epoch.
    last_used: AtomicI64,
}

impl Entry {
    fn new(window_start: i64, window_len: i64, base: i64, now: i64) -> Arc<Self> {
        Arc::new(Self {
            window_start,
            window_len,
            base: AtomicI64::new(base),
            pending: AtomicI64::new(0),
            last_used: AtomicI64::new(now),
        })
    }
}

/// Rules as the administrator set them, kept in memory and reloaded every sync.
#[derive(Debug, Default)]
struct Rules {
    users: HashMap<String, Option<u64>>,
    orgs: HashMap<String, Option<u64>>,
    ranges: Vec<(IpNet, Option<u64>)>,
}

impl Rules {
    fn from_rows(rows: &[RateRuleRow]) -> Self {
        let mut rules = Self::default();
        for r in rows {
            let pulls = r.pulls.map(|p| p.max(0) as u64);
            match r.kind.as_str() {
                "user" => {
                    rules.users.insert(r.subject.clone(), pulls);
                }
                "org" => {
                    rules.orgs.insert(r.subject.clone(), pulls);
                }
                "range" => {
                    if let Ok(net) = r.subject.parse::<IpNet>() {
                        rules.ranges.push((net, pulls));
                    }
                }
                _ => {}
            }
        }
        // The narrowest range decides.
        rules
            .ranges
            .sort_by_key(|(net, _)| std::cmp::Reverse(net.prefix_len()));
        rules
    }

    fn range_rule(&self, ip: IpAddr) -> Option<Option<u64>> {
        self.ranges
            .iter()
            .find(|(net, _)| net.contains(&ip))
            .map(|(_, p)| *p)
    }
}

/// A signed-in user's limit: `None` when exempt.
#[derive(Debug, Clone, Copy)]
struct UserLimit {
    id: i64,
    limit: Option<u64>,
}

/// One window's keys in a sync: counts to add, and keys only to refresh.
type SyncWork = (Vec<(Key, i64)>, Vec<Key>);

/// (`rules_state` starts at 0: not loaded yet.)
const RULES_NONE: u8 = 1;
const RULES_SOME: u8 = 2;

/// Counters and caches of one node. The hot path takes only read locks and atomics.
#[derive(Debug, Default)]
pub(crate) struct Limiter {
    entries: RwLock<HashMap<Key, Arc<Entry>>>,
    /// `RULES_*`: whether the rules were loaded, and whether there are any (most servers
    /// have none, and then the hot path does not look at them).
    rules_state: AtomicU8,
    rules: RwLock<Arc<Rules>>,
    exempt_namespaces: RwLock<HashMap<String, (i64, bool)>>,
    users: RwLock<HashMap<String, (i64, UserLimit)>>,
}

fn now_secs() -> i64 {
    wharf_db::now()
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// The source an address is counted as: IPv4 as is, IPv6 by its /64.
#[cfg(test)]
fn address(ip: Option<IpAddr>) -> String {
    Client::of(ip).source()
}

/// A value remembered at `now` (seconds) and still fresh.
fn cached<V: Copy>(map: &RwLock<HashMap<String, (i64, V)>>, key: &str, now: i64) -> Option<V> {
    read(map)
        .get(key)
        .filter(|(at, _)| now - at < POLICY_TTL)
        .map(|(_, v)| *v)
}

fn remember<V>(map: &RwLock<HashMap<String, (i64, V)>>, key: &str, value: V, now: i64) {
    let mut map = write(map);
    if map.len() >= MAX_KEYS {
        map.retain(|_, (at, _)| now - *at < POLICY_TTL);
        if map.len() >= MAX_KEYS {
            map.clear();
        }
    }
    map.insert(key.to_owned(), (now, value));
}

impl Limiter {
    /// Counts one request for `key` if the quota allows it (`take`), or only looks.
    async fn count(
        &self,
        db: &wharf_db::Db,
        key: Key,
        limit: u64,
        window: Duration,
        take: bool,
    ) -> Quota {
        let window_len = window.as_secs().max(1) as i64;
        let now = now_secs();
        let window_start = now - now.rem_euclid(window_len);
        let known = read(&self.entries)
            .get(&key)
            .filter(|e| e.window_start == window_start)
            .map(|e| decide(e, limit, take, now));
        if let Some(q) = known {
            return q;
        }
        // First sight of this key in this window on this node: what the others counted.
        let base = match db.rate_hits(window_start, &[key.name()]).await {
            Ok(rows) => rows.first().map_or(0, |(_, n)| *n),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a rate limit counter; counting from zero on this node");
                0
            }
        };
        let mut map = write(&self.entries);
        if map.len() >= MAX_KEYS && !map.contains_key(&key) {
            map.retain(|_, e| {
                e.pending.load(Relaxed) > 0 || now - e.last_used.load(Relaxed) < IDLE
            });
        }
        let e = map
            .entry(key)
            .or_insert_with(|| Entry::new(window_start, window_len, base, now));
        if e.window_start != window_start {
            // A new window (the old one's unshared counts go with it: they no longer
            // limit anyone).
            *e = Entry::new(window_start, window_len, base, now);
        } else {
            e.base.fetch_max(base, Relaxed);
        }
        decide(e, limit, take, now)
    }

    /// Gives back a counted request (it failed before anything was served).
    fn refund(&self, key: Key) {
        if let Some(e) = read(&self.entries).get(&key) {
            let _ = e
                .pending
                .fetch_update(Relaxed, Relaxed, |p| (p > 0).then_some(p - 1));
        }
    }

    /// Adds this node's counts to the shared counters, reads back the totals of every key it
    /// tracks, forgets idle keys and reloads the administrator's rules.
    async fn sync(&self, db: &wharf_db::Db) -> Result<(), HubError> {
        let now = now_secs();
        // (window start) → (keys with counts to add, keys only to refresh)
        let mut windows: HashMap<i64, SyncWork> = HashMap::new();
        write(&self.entries).retain(|key, e| {
            let current = e.window_start + e.window_len > now;
            let idle = now - e.last_used.load(Relaxed) >= IDLE;
            let pending = e.pending.load(Relaxed);
            let slot = windows.entry(e.window_start).or_default();
            if pending > 0 {
                slot.0.push((*key, pending));
            } else if current && !idle {
                slot.1.push(*key);
            }
            current && (!idle || pending > 0)
        });
        let mut failed = None;
        for (window_start, (adds, refresh)) in windows {
            if !adds.is_empty() {
                let names: Vec<(String, i64)> = adds.iter().map(|(k, n)| (k.name(), *n)).collect();
                match db.add_rate_hits(window_start, &names).await {
                    Ok(totals) => {
                        let totals: HashMap<String, i64> = totals.into_iter().collect();
                        let map = read(&self.entries);
                        for (key, added) in &adds {
                            if let (Some(e), Some(total)) = (map.get(key), totals.get(&key.name()))
                                && e.window_start == window_start
                            {
                                e.pending.fetch_sub(*added, Relaxed);
                                e.base.store(*total, Relaxed);
                            }
                        }
                    }
                    Err(e) => failed = Some(e),
                }
            }
            if !refresh.is_empty() {
                let names: Vec<String> = refresh.iter().map(|k| k.name()).collect();
                match db.rate_hits(window_start, &names).await {
                    Ok(rows) => {
                        let totals: HashMap<String, i64> = rows.into_iter().collect();
                        let map = read(&self.entries);
                        for key in &refresh {
                            if let (Some(e), Some(total)) = (map.get(key), totals.get(&key.name()))
                                && e.window_start == window_start
                            {
                                e.base.fetch_max(*total, Relaxed);
                            }
                        }
                    }
                    Err(e) => failed = Some(e),
                }
            }
        }
        match db.rate_rules().await {
            Ok(rows) => self.set_rules(&rows),
            Err(e) => failed = Some(e),
        }
        match failed {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    fn set_rules(&self, rows: &[RateRuleRow]) {
        let rules = Rules::from_rows(rows);
        let state = if rules.users.is_empty() && rules.orgs.is_empty() && rules.ranges.is_empty() {
            RULES_NONE
        } else {
            RULES_SOME
        };
        *write(&self.rules) = Arc::new(rules);
        self.rules_state.store(state, Release);
    }

    /// The rules (read from the database the first time); None when there are none.
    async fn rules(&self, db: &wharf_db::Db) -> Result<Option<Arc<Rules>>, HubError> {
        match self.rules_state.load(Acquire) {
            RULES_NONE => return Ok(None),
            RULES_SOME => return Ok(Some(read(&self.rules).clone())),
            _ => {}
        }
        self.set_rules(&db.rate_rules().await?);
        Ok((self.rules_state.load(Acquire) == RULES_SOME).then(|| read(&self.rules).clone()))
    }
}

fn decide(e: &Entry, limit: u64, take: bool, now: i64) -> Quota {
    if e.last_used.load(Relaxed) != now {
        e.last_used.store(now, Relaxed);
    }
    let base = e.base.load(Relaxed);
    let used = |pending: i64| (base + pending).max(0) as u64;
    // Looking (HEAD) is always allowed and never counts.
    let (allowed, used) = if take {
        match e
            .pending
            .fetch_update(Relaxed, Relaxed, |p| (used(p) < limit).then_some(p + 1))
        {
            Ok(before) => (true, used(before + 1)),
            Err(now_pending) => (false, used(now_pending)),
        }
    } else {
        (true, used(e.pending.load(Relaxed)))
    };
    let reset_at = e.window_start + e.window_len;
    Quota {
        allowed,
        limit,
        remaining: limit.saturating_sub(used),
        window_secs: e.window_len as u64,
        reset_in: (reset_at - now).max(1) as u64,
        reset_at,
    }
}

impl Hub {
    /// Whether pulls and API requests are limited on this server.
    pub fn limits_enabled(&self) -> bool {
        self.config.limits.enabled
    }

    /// The limits this server was configured with (the defaults rules override).
    pub fn limit_config(&self) -> &LimitConfig {
        &self.config.limits
    }

    /// The default limit of signed-in users (what an anonymous client gets by signing in).
    pub fn authenticated_pull_limit(&self) -> u64 {
        self.config.limits.authenticated
    }

    /// How pulls from `namespace` by this client are limited: `user` is the signed-in user's
    /// name (None for anonymous pulls), `ip` the client's address.
    pub async fn pull_policy(
        &self,
        namespace: &str,
        user: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Result<PullPolicy, HubError> {
        let config = &self.config.limits;
        if !config.enabled {
            return Ok(PullPolicy::Exempt);
        }
        let now = now_secs();
        if self.namespace_exempt(namespace, now).await? {
            return Ok(PullPolicy::Exempt);
        }
        let rules = self.limiter.rules(&self.db).await?;
        let range = match (&rules, ip) {
            (Some(rules), Some(ip)) => rules.range_rule(ip.to_canonical()),
            _ => None,
        };
        if range == Some(None) {
            return Ok(PullPolicy::Exempt);
        }
        if let Some(name) = user.filter(|n| !n.is_empty()) {
            let Some(user) = self.user_limit(name, rules.as_deref(), now).await? else {
                // The account is gone: its token still pulls as the address would.
                return Ok(self.anonymous_limit(ip, range));
            };
            return Ok(match user.limit {
                None => PullPolicy::Exempt,
                Some(limit) => PullPolicy::Limited(Limit {
                    key: Key {
                        api: false,
                        client: Client::User(user.id),
                    },
                    source: user.id.to_string(),
                    limit,
                    anonymous: false,
                }),
            });
        }
        Ok(self.anonymous_limit(ip, range))
    }

    fn anonymous_limit(&self, ip: Option<IpAddr>, range: Option<Option<u64>>) -> PullPolicy {
        let client = Client::of(ip);
        PullPolicy::Limited(Limit {
            key: Key { api: false, client },
            source: client.source(),
            limit: range.flatten().unwrap_or(self.config.limits.anonymous),
            anonymous: true,
        })
    }

    /// Programs whose namespaces pull without limits: Verified Publisher and Sponsored Open
    /// Source (official images are limited, as on Docker Hub).
    async fn namespace_exempt(&self, namespace: &str, now: i64) -> Result<bool, HubError> {
        if let Some(exempt) = cached(&self.limiter.exempt_namespaces, namespace, now) {
            return Ok(exempt);
        }
        let exempt = matches!(
            self.program_of(namespace).await?,
            Some(Badge::VerifiedPublisher | Badge::OpenSource)
        );
        remember(&self.limiter.exempt_namespaces, namespace, exempt, now);
        Ok(exempt)
    }

    /// A user's own rule, else the most generous rule of their organizations, else the
    /// default; exempt when that rule is an exemption. None when there is no such user.
    async fn user_limit(
        &self,
        name: &str,
        rules: Option<&Rules>,
        now: i64,
    ) -> Result<Option<UserLimit>, HubError> {
        if let Some(u) = cached(&self.limiter.users, name, now) {
            return Ok(Some(u));
        }
        let Some(row) = self.db.user_by_name(name).await? else {
            return Ok(None);
        };
        let empty = Rules::default();
        let rules = rules.unwrap_or(&empty);
        let limit = match rules.users.get(name) {
            Some(rule) => *rule,
            None if rules.orgs.is_empty() => Some(self.config.limits.authenticated),
            None => {
                let orgs = self.db.orgs_of_user(row.id).await?;
                let org_rules: Vec<Option<u64>> = orgs
                    .iter()
                    .filter_map(|(org, _)| rules.orgs.get(org).copied())
                    .collect();
                if org_rules.contains(&None) {
                    None
                } else {
                    Some(
                        org_rules
                            .into_iter()
                            .flatten()
                            .max()
                            .unwrap_or(self.config.limits.authenticated),
                    )
                }
            }
        };
        let u = UserLimit { id: row.id, limit };
        remember(&self.limiter.users, name, u, now);
        Ok(Some(u))
    }

    /// Counts one pull (a manifest GET) if the client has quota left.
    pub async fn take_pull(&self, limit: &Limit) -> Quota {
        let window = self.config.limits.window;
        self.limiter
            .count(&self.db, limit.key, limit.limit, window, true)
            .await
    }

    /// The client's quota without using it (a manifest HEAD).
    pub async fn peek_pull(&self, limit: &Limit) -> Quota {
        let window = self.config.limits.window;
        self.limiter
            .count(&self.db, limit.key, limit.limit, window, false)
            .await
    }

    /// Gives back a pull that was counted but not served (the manifest was not found).
    pub fn refund_pull(&self, limit: &Limit) {
        self.limiter.refund(limit.key);
    }

    /// Counts one JSON API request by this client; None when limits are off or the client
    /// is exempt (an exempt user or address range).
    pub async fn take_api_request(&self, who: &Principal, ip: Option<IpAddr>) -> Option<Quota> {
        let config = &self.config.limits;
        if !config.enabled {
            return None;
        }
        let rules = match self.limiter.rules(&self.db).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read rate limit rules");
                return None;
            }
        };
        if let Some(rules) = rules {
            if ip.and_then(|ip| rules.range_rule(ip.to_canonical())) == Some(None) {
                return None;
            }
            if who
                .user()
                .is_some_and(|u| rules.users.get(&u.name) == Some(&None))
            {
                return None;
            }
        }
        let client = match who.user() {
            Some(u) => Client::User(u.id),
            None => Client::of(ip),
        };
        let key = Key { api: true, client };
        Some(
            self.limiter
                .count(&self.db, key, config.api_requests, config.api_window, true)
                .await,
        )
    }

    /// Shares this node's counts with the others and reloads the rules (every
    /// `sync_interval`, from the server's job loop).
    pub async fn sync_rate_limits(&self) -> Result<(), HubError> {
        if !self.config.limits.enabled {
            return Ok(());
        }
        self.limiter.sync(&self.db).await
    }

    /// Deletes counters of windows that ended: pull counters two pull windows back, JSON
    /// API counters two API windows back.
    pub async fn prune_rate_counters(&self) -> Result<u64, HubError> {
        let now = now_secs();
        let back = |w: Duration| now - 2 * (w.as_secs() as i64).max(1);
        Ok(self
            .db
            .prune_rate_counters(
                back(self.config.limits.window),
                back(self.config.limits.api_window),
            )
            .await?)
    }

    /// A page of the administrator's rules and how many there are.
    pub async fn rate_rules(
        &self,
        who: &User,
        offset: u32,
        limit: u32,
    ) -> Result<(u64, Vec<RateRuleRow>), HubError> {
        require_admin(who)?;
        Ok(self
            .db
            .rate_rule_page(i64::from(offset), i64::from(limit))
            .await?)
    }

    /// Sets a rule: `pulls` per window, or `None` to exempt the subject. Users and
    /// organizations must exist; ranges are CIDR blocks (`10.0.0.0/8`, `2001:db8::/32`).
    pub async fn set_rate_rule(
        &self,
        who: &User,
        kind: &str,
        subject: &str,
        pulls: Option<u64>,
        note: &str,
    ) -> Result<RateRuleRow, HubError> {
        require_admin(who)?;
        let subject = self.check_rule_subject(kind, subject).await?;
        if pulls == Some(0) {
            return Err(HubError::InvalidInput(
                "pulls must be at least 1; to block a client, remove its access instead".into(),
            ));
        }
        let pulls = pulls
            .map(|p| {
                i64::try_from(p).map_err(|_| HubError::InvalidInput("pulls is too large".into()))
            })
            .transpose()?;
        if note.chars().count() > 200 {
            return Err(HubError::InvalidInput(
                "note is longer than 200 characters".into(),
            ));
        }
        self.db.set_rate_rule(kind, &subject, pulls, note).await?;
        self.after_rule_change().await?;
        self.db
            .rate_rules()
            .await?
            .into_iter()
            .find(|r| r.kind == kind && r.subject == subject)
            .ok_or_else(|| HubError::Internal("the rule just set is missing".into()))
    }

    /// Removes a rule; NotFound when there was none.
    pub async fn delete_rate_rule(
        &self,
        who: &User,
        kind: &str,
        subject: &str,
    ) -> Result<(), HubError> {
        require_admin(who)?;
        let subject = normalize_subject(kind, subject)?;
        if !self.db.delete_rate_rule(kind, &subject).await? {
            return Err(HubError::NotFound(format!(
                "rate limit rule for {kind} {subject:?}"
            )));
        }
        self.after_rule_change().await
    }

    async fn after_rule_change(&self) -> Result<(), HubError> {
        let rows = self.db.rate_rules().await?;
        self.limiter.set_rules(&rows);
        write(&self.limiter.users).clear();
        Ok(())
    }

    async fn check_rule_subject(&self, kind: &str, subject: &str) -> Result<String, HubError> {
        let subject = normalize_subject(kind, subject)?;
        let wanted = match kind {
            "user" => Some(wharf_db::NamespaceKind::User),
            "org" => Some(wharf_db::NamespaceKind::Org),
            _ => None,
        };
        if let Some(wanted) = wanted
            && self.db.namespace_kind(&subject).await? != Some(wanted)
        {
            return Err(HubError::NotFound(format!("{kind} {subject:?}")));
        }
        Ok(subject)
    }
}

/// Checks a rule's kind and subject; ranges come back in their canonical form
/// (`10.1.2.3/8` becomes `10.0.0.0/8`).
fn normalize_subject(kind: &str, subject: &str) -> Result<String, HubError> {
    match kind {
        "user" | "org" => Ok(subject.to_owned()),
        "range" => {
            let subject = subject.trim();
            let net = match subject.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => subject.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
                    HubError::InvalidInput(format!(
                        "range {subject:?} is not an address or CIDR block such as 10.0.0.0/8 or 2001:db8::/32"
                    ))
                })?,
            };
            Ok(net.trunc().to_string())
        }
        other => Err(HubError::InvalidInput(format!(
            "kind {other:?} is not one of {}",
            RULE_KINDS.join(", ")
        ))),
    }
}

fn require_admin(who: &User) -> Result<(), HubError> {
    if who.acts_as_admin() {
        Ok(())
    } else {
        Err(HubError::Forbidden(
            "only administrators (signed in with their password or an admin-scope token) manage rate limits".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_count_by_their_64() {
        assert_eq!(
            address(Some("2001:db8:1:2:3:4:5:6".parse().unwrap())),
            "2001:db8:1:2::/64"
        );
        assert_eq!(address(Some("192.0.2.7".parse().unwrap())), "192.0.2.7");
        // An IPv4 client on a dual-stack socket is the IPv4 address.
        assert_eq!(
            address(Some("::ffff:192.0.2.7".parse().unwrap())),
            "192.0.2.7"
        );
        assert_eq!(address(None), "unknown");
    }

    #[test]
    fn ranges_are_normalized_and_the_narrowest_rule_wins() {
        assert_eq!(
            normalize_subject("range", "10.1.2.3/8").unwrap(),
            "10.0.0.0/8"
        );
        assert_eq!(
            normalize_subject("range", "192.0.2.9").unwrap(),
            "192.0.2.9/32"
        );
        assert!(normalize_subject("range", "10.0.0.0/33").is_err());
        assert!(normalize_subject("cidr", "10.0.0.0/8").is_err());
        let rows = [("10.0.0.0/8", None), ("10.1.0.0/16", Some(5))].map(|(s, p)| RateRuleRow {
            kind: "range".into(),
            subject: s.into(),
            pulls: p,
            note: String::new(),
            created_at: 0,
        });
        let rules = Rules::from_rows(&rows);
        assert_eq!(rules.range_rule("10.1.2.3".parse().unwrap()), Some(Some(5)));
        assert_eq!(rules.range_rule("10.2.0.1".parse().unwrap()), Some(None));
        assert_eq!(rules.range_rule("192.0.2.1".parse().unwrap()), None);
    }

    #[test]
    fn a_window_allows_the_limit_then_refuses_and_head_only_looks() {
        let e = Entry::new(1000, 100, 0, 1010);
        let q = decide(&e, 2, false, 1010);
        assert_eq!((q.allowed, q.remaining, q.reset_in), (true, 2, 90));
        assert_eq!(decide(&e, 2, true, 1010).remaining, 1);
        let q = decide(&e, 2, true, 1011);
        assert_eq!((q.allowed, q.remaining), (true, 0));
        let q = decide(&e, 2, true, 1012);
        assert_eq!((q.allowed, q.remaining, q.reset_at), (false, 0, 1100));
        // Refused pulls are not counted; other nodes' pulls (the base) are.
        assert_eq!(e.pending.load(Relaxed), 2);
        e.base.store(5, Relaxed);
        e.pending.store(0, Relaxed);
        assert!(!decide(&e, 2, true, 1013).allowed);
        assert!(decide(&e, 10, true, 1013).allowed);
    }

    #[test]
    fn counter_names_in_the_shared_table() {
        let key = |api, ip: &str| Key {
            api,
            client: Client::of(Some(ip.parse().unwrap())),
        };
        assert_eq!(key(false, "192.0.2.1").name(), "ip:192.0.2.1");
        assert_eq!(
            key(true, "2001:db8:1:2::7").name(),
            "api:ip:2001:db8:1:2::/64"
        );
        let user = Key {
            api: false,
            client: Client::User(42),
        };
        assert_eq!(user.name(), "user:42");
    }
}
