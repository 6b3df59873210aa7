//! Pull analytics: capture, storage, classification and reports.
//!
//! Capture never makes a pull wait: the registry hands each pull request to `capture`, which
//! puts it in a bounded queue (`try_send`; when the queue is full the event is dropped and
//! counted). A writer task drains the queue every `flush_interval`, parses the user agent,
//! enriches the address from the operator's offline data files, replaces it by its weekly
//! and monthly keyed hashes, and stores the batch in one transaction. What a crash can lose
//! is bounded: the events still queued (at most `queue` of them, about one interval's worth).
//!
//! Classification runs on any node (`classify_pending`): it reads the manifest events since
//! the shared watermark, groups them per client (user, hashed address, tool) and repository,
//! applies the seeds' rules (`wharf_analytics::classify`) and stores the actions while it
//! moves the watermark with a compare-and-swap, so two nodes never store the same actions.
//! Raw events are deleted after `retention`; the actions stay, and the reports read them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::mpsc;
use wharf_analytics::agent;
use wharf_analytics::classify::{self, ManifestRequest};
use wharf_analytics::enrich::{EnrichConfig, Enricher};
use wharf_analytics::privacy::{HashSecret, IpHasher};
use wharf_analytics::report::rows::RawPullRow;
use wharf_analytics::report::{Granularity, Period};
use wharf_db::{Db, PullActionRow};

use crate::HubError;

/// Analytics settings.
#[derive(Debug, Clone)]
pub struct AnalyticsConfig {
    /// Whether pulls are recorded at all.
    pub enabled: bool,
    /// Events waiting for the writer at most; more are dropped (and counted).
    pub queue: usize,
    /// How often the writer stores what was captured.
    pub flush_interval: Duration,
    /// How long raw events are kept (the classified actions stay).
    pub retention: Duration,
    /// Offline data for country, cloud provider, IP type and domain.
    pub enrich: EnrichConfig,
    /// Requests of one client on one repository this close together form one action.
    pub window: Duration,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            queue: 65_536,
            flush_interval: Duration::from_secs(1),
            retention: Duration::from_secs(90 * 86_400),
            enrich: EnrichConfig::default(),
            window: Duration::from_secs(60),
        }
    }
}

/// A request that is part of a pull, as the registry saw it.
#[derive(Debug, Clone)]
pub struct RawPull {
    pub at_ms: i64,
    /// The full repository name.
    pub repo: String,
    /// The tag or digest the request named.
    pub reference: String,
    /// The digest it resolved to.
    pub digest: String,
    pub head: bool,
    /// A blob download (else a manifest request).
    pub blob: bool,
    /// The signed-in user's name.
    pub user: Option<String>,
    pub ip: Option<IpAddr>,
    pub user_agent: String,
}

/// What `Analytics::seed` generates.
#[derive(Debug, Clone)]
pub struct SeedPlan {
    pub namespace: String,
    /// Events to store (about; the last sequence may go over by two).
    pub events: u64,
    pub days: u32,
    pub repos: u32,
    pub clients: u32,
    pub end_ms: i64,
    /// The random generator's seed: the same plan stores the same events.
    pub seed: u64,
}

/// One request of a pull as stored (in a batch's JSON): what was asked, by whom, with what,
/// from where. The address is only there as its weekly and monthly keyed hashes (hex).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct PullEvent {
    pub at_ms: i64,
    pub namespace: String,
    pub repo: String,
    pub reference: String,
    pub digest: String,
    /// `GET` or `HEAD`.
    pub method: String,
    /// `manifest` or `blob`.
    pub kind: String,
    /// The signed-in user; empty when anonymous.
    pub user_name: String,
    pub ip_week: String,
    pub ip_month: String,
    pub tool: String,
    pub tool_version: String,
    pub country: String,
    pub cloud: String,
    pub ip_type: String,
    pub domain: String,
}

/// A batch as stored: every distinct string once (`strings`), each event as its time and
/// the indexes of its 15 string fields in `PullEvent` order. Requests of one pull repeat
/// most of their fields, so a batch is a fraction of the events' size.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredBatch {
    strings: Vec<String>,
    events: Vec<(i64, [u32; 15])>,
}

#[cfg(test)]
impl PullEvent {
    fn fields(&self) -> [&str; 15] {
        [
            &self.namespace,
            &self.repo,
            &self.reference,
            &self.digest,
            &self.method,
            &self.kind,
            &self.user_name,
            &self.ip_week,
            &self.ip_month,
            &self.tool,
            &self.tool_version,
            &self.country,
            &self.cloud,
            &self.ip_type,
            &self.domain,
        ]
    }
}

#[cfg(test)]
fn encode_batch(events: &[PullEvent]) -> Result<Vec<u8>, HubError> {
    let mut index: HashMap<&str, u32> = HashMap::new();
    let mut strings: Vec<String> = Vec::new();
    let mut rows = Vec::with_capacity(events.len());
    for e in events {
        let mut ids = [0u32; 15];
        for (slot, field) in ids.iter_mut().zip(e.fields()) {
            *slot = *index.entry(field).or_insert_with(|| {
                strings.push(field.to_owned());
                (strings.len() - 1) as u32
            });
        }
        rows.push((e.at_ms, ids));
    }
    serde_json::to_vec(&StoredBatch {
        strings,
        events: rows,
    })
    .map_err(|e| HubError::Internal(format!("encoding pull events: {e}")))
}

#[cfg(test)]
fn decode_batch(data: &[u8]) -> Result<Vec<PullEvent>, HubError> {
    let bad = |what: String| {
        HubError::Internal(format!(
            "a stored batch of pull events is unreadable: {what}"
        ))
    };
    let batch: StoredBatch = serde_json::from_slice(data).map_err(|e| bad(e.to_string()))?;
    let s = |i: u32| {
        batch
            .strings
            .get(i as usize)
            .cloned()
            .ok_or_else(|| bad(format!("string {i} is missing")))
    };
    batch
        .events
        .iter()
        .map(|(at_ms, f)| {
            Ok(PullEvent {
                at_ms: *at_ms,
                namespace: s(f[0])?,
                repo: s(f[1])?,
                reference: s(f[2])?,
                digest: s(f[3])?,
                method: s(f[4])?,
                kind: s(f[5])?,
                user_name: s(f[6])?,
                ip_week: s(f[7])?,
                ip_month: s(f[8])?,
                tool: s(f[9])?,
                tool_version: s(f[10])?,
                country: s(f[11])?,
                cloud: s(f[12])?,
                ip_type: s(f[13])?,
                domain: s(f[14])?,
            })
        })
        .collect()
}

/// A batch being built: interned strings and the events as indexes.
struct BatchBuilder {
    strings: Vec<String>,
    index: HashMap<String, u32>,
    events: Vec<(i64, [u32; 15])>,
    /// (address, user agent hash, day) → (user agent, interned client fields).
    clients: HashMap<(IpAddr, u64, i64), (String, [u32; 8])>,
    hasher: std::collections::hash_map::RandomState,
    first: i64,
    last: i64,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self {
            strings: Vec::new(),
            index: HashMap::new(),
            events: Vec::with_capacity(BATCH),
            clients: HashMap::new(),
            hasher: std::collections::hash_map::RandomState::new(),
            first: i64::MAX,
            last: i64::MIN,
        }
    }
}

impl BatchBuilder {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(i) = self.index.get(s) {
            return *i;
        }
        let i = self.strings.len() as u32;
        self.strings.push(s.to_owned());
        self.index.insert(s.to_owned(), i);
        i
    }
}

/// Events in memory for classification: each distinct string once, each event as its time
/// and the indexes of its fields (in `PullEvent` order).
#[derive(Default)]
struct EventSet {
    strings: Vec<String>,
    events: Vec<(i64, [u32; 15])>,
}

/// Events stored per batch at most (the writer stores a full batch at once, without
/// waiting for its interval).
const BATCH: usize = 4_096;

/// Longest user agent kept.
const MAX_USER_AGENT: usize = 512;
/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Classification trails the clock by this much, so that events other nodes are still
/// writing (one flush interval behind) are in place before their actions are decided.
const CLASSIFY_LAG_MS: i64 = 15_000;
/// The shortest span a classifier run covers when catching up (after downtime, or seeded
/// history), however busy it was.
const CLASSIFY_SPAN_MS: i64 = 60_000;
/// The longest span one classifier run covers, when its events are few.
const CLASSIFY_SPAN_MAX_MS: i64 = 64 * CLASSIFY_SPAN_MS;
/// About how many events one run may hold (a run holds its events, about 70 bytes each, and
/// its actions, about 1.2 KB each, in memory, and writes them in one transaction that other
/// writers wait for); spans halve down to a minute to stay under.
const CLASSIFY_RUN_EVENTS: u64 = 25_000;

#[derive(Debug, Default)]
struct Counters {
    captured: AtomicU64,
    dropped: AtomicU64,
    written: AtomicU64,
    write_failures: AtomicU64,
    actions: AtomicU64,
}

/// The analytics service of one node.
pub struct Analytics {
    db: Db,
    config: AnalyticsConfig,
    tx: Option<mpsc::Sender<RawPull>>,
    rx: Mutex<Option<mpsc::Receiver<RawPull>>>,
    enricher: Enricher,
    secret: HashSecret,
    /// Signs the download links of exported reports.
    download_key: Vec<u8>,
    counters: Counters,
    /// Wakes the writer when a batch is full.
    full: tokio::sync::Notify,
    kicked: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Analytics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analytics")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The IP hashers of the periods events fall in, kept while events stay in them.
#[derive(Default)]
struct Hashers {
    by_period: HashMap<String, IpHasher>,
}

/// What one client's requests share: hashed address, parsed user agent, enrichment.
struct ClientFields {
    ip_week: String,
    ip_month: String,
    tool: String,
    tool_version: String,
    country: String,
    cloud: String,
    ip_type: String,
    domain: String,
}

impl Hashers {
    fn hash(&mut self, secret: &HashSecret, period: &Period, ip: IpAddr) -> String {
        let name = period.name();
        if self.by_period.len() > 16 {
            self.by_period.clear();
        }
        self.by_period
            .entry(name)
            .or_insert_with(|| secret.hasher(period))
            .hash(ip)
            .to_string()
    }
}

pub(crate) fn datetime(at_ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

impl Analytics {
    /// Opens the analytics service: the hashing secret (shared by every node, created on
    /// first use) and the enrichment files, whose errors name the file.
    pub async fn open(db: Db, config: AnalyticsConfig) -> Result<Arc<Self>, HubError> {
        let enricher = Enricher::open(&config.enrich)
            .map_err(|e| HubError::InvalidInput(format!("analytics enrichment: {e}")))?;
        let fresh: [u8; 32] = rand::random();
        let secret = db.named_secret("analytics-ip-hash", &fresh).await?;
        let secret = HashSecret::new(secret)
            .map_err(|e| HubError::Internal(format!("the analytics secret is unusable: {e}")))?;
        let fresh: [u8; 32] = rand::random();
        let download_key = db.named_secret("analytics-download-url", &fresh).await?;
        let (tx, rx) = if config.enabled {
            let (tx, rx) = mpsc::channel(config.queue.max(1));
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        Ok(Arc::new(Self {
            db,
            config,
            tx,
            rx: Mutex::new(rx),
            enricher,
            secret,
            download_key,
            counters: Counters::default(),
            full: tokio::sync::Notify::new(),
            kicked: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Records a request of a pull; never waits. A full queue drops the event (counted in
    /// `wharf_analytics_events_dropped_total`).
    pub fn capture(&self, mut pull: RawPull) {
        let Some(tx) = &self.tx else { return };
        if pull.user_agent.len() > MAX_USER_AGENT {
            let mut end = MAX_USER_AGENT;
            while !pull.user_agent.is_char_boundary(end) {
                end -= 1;
            }
            pull.user_agent.truncate(end);
        }
        match tx.try_send(pull) {
            Ok(()) => {
                self.counters.captured.fetch_add(1, Relaxed);
                if tx.max_capacity() - tx.capacity() >= BATCH && !self.kicked.swap(true, Relaxed) {
                    self.full.notify_one();
                }
            }
            Err(_) => {
                self.counters.dropped.fetch_add(1, Relaxed);
            }
        }
    }

    /// Stores what was captured every `flush_interval`, and once more on shutdown.
    pub async fn run_writer(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        if !self.enabled() {
            return;
        }
        loop {
            let stop = tokio::select! {
                _ = tokio::time::sleep(self.config.flush_interval) => false,
                _ = self.full.notified() => false,
                _ = shutdown.changed() => true,
            };
            self.kicked.store(false, Relaxed);
            if let Err(e) = self.write_pending().await {
                tracing::warn!(error = %e, "storing pull events failed; they are dropped");
            }
            if stop {
                return;
            }
        }
    }

    /// Stores every queued event now, a batch at a time; returns how many.
    pub async fn write_pending(&self) -> Result<usize, HubError> {
        let mut hashers = Hashers::default();
        let mut written = 0;
        loop {
            let raw = {
                let mut guard = self.rx.lock().unwrap_or_else(|p| p.into_inner());
                let Some(rx) = guard.as_mut() else {
                    return Ok(0);
                };
                let mut raw = Vec::with_capacity(BATCH.min(rx.len()));
                while raw.len() < BATCH {
                    match rx.try_recv() {
                        Ok(e) => raw.push(e),
                        Err(_) => break,
                    }
                }
                raw
            };
            if raw.is_empty() {
                return Ok(written);
            }
            let n = raw.len();
            let mut batch = BatchBuilder::default();
            for r in &raw {
                self.add_to_batch(&mut batch, r, &mut hashers);
            }
            match self.store_built(batch).await {
                Ok(()) => {
                    self.counters.written.fetch_add(n as u64, Relaxed);
                    written += n;
                }
                Err(e) => {
                    self.counters.write_failures.fetch_add(n as u64, Relaxed);
                    return Err(e);
                }
            }
        }
    }

    /// Adds a captured request to a batch: the fields its client shares with its other
    /// requests (hashed address, user agent, enrichment) are worked out and interned once
    /// per batch; nothing is copied for strings the batch already holds.
    fn add_to_batch(&self, batch: &mut BatchBuilder, r: &RawPull, hashers: &mut Hashers) {
        let ip =
            r.ip.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
                .to_canonical();
        let day = r.at_ms.div_euclid(86_400_000);
        let ua_hash = std::hash::BuildHasher::hash_one(&batch.hasher, &r.user_agent);
        let client = match batch.clients.get(&(ip, ua_hash, day)) {
            Some((ua, ids)) if *ua == r.user_agent => *ids,
            _ => {
                let c = self.client_fields(ip, &r.user_agent, datetime(r.at_ms).date(), hashers);
                let ids = [
                    batch.intern(&c.ip_week),
                    batch.intern(&c.ip_month),
                    batch.intern(&c.tool),
                    batch.intern(&c.tool_version),
                    batch.intern(&c.country),
                    batch.intern(&c.cloud),
                    batch.intern(&c.ip_type),
                    batch.intern(&c.domain),
                ];
                batch
                    .clients
                    .insert((ip, ua_hash, day), (r.user_agent.clone(), ids));
                ids
            }
        };
        let ids = [
            batch.intern(r.repo.split_once('/').map_or("", |(ns, _)| ns)),
            batch.intern(&r.repo),
            batch.intern(&r.reference),
            batch.intern(&r.digest),
            batch.intern(if r.head { "HEAD" } else { "GET" }),
            batch.intern(if r.blob { "blob" } else { "manifest" }),
            batch.intern(r.user.as_deref().unwrap_or_default()),
            client[0],
            client[1],
            client[2],
            client[3],
            client[4],
            client[5],
            client[6],
            client[7],
        ];
        batch.first = batch.first.min(r.at_ms);
        batch.last = batch.last.max(r.at_ms);
        batch.events.push((r.at_ms, ids));
    }

    /// Stores a built batch as one row.
    async fn store_built(&self, batch: BatchBuilder) -> Result<(), HubError> {
        if batch.events.is_empty() {
            return Ok(());
        }
        let (first, last, n) = (batch.first, batch.last, batch.events.len() as i64);
        let data = serde_json::to_vec(&StoredBatch {
            strings: batch.strings,
            events: batch.events,
        })
        .map_err(|e| HubError::Internal(format!("encoding pull events: {e}")))?;
        self.db.insert_event_batch(first, last, n, &data).await?;
        Ok(())
    }

    /// The manifest events in `[from_ms, to_ms)`, grouped by client (user, hashed address,
    /// tool) and repository, each group in time order: the classifier's input. Kept compact
    /// (each distinct string once, an event as its time and 15 indexes: about 70 bytes) so a
    /// busy span fits in memory.
    fn manifest_events(
        batches: Vec<Vec<u8>>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<EventSet, HubError> {
        let mut set = EventSet::default();
        let mut global: HashMap<String, u32> = HashMap::new();
        for data in batches {
            let batch: StoredBatch = serde_json::from_slice(&data).map_err(|e| {
                HubError::Internal(format!("a stored batch of pull events is unreadable: {e}"))
            })?;
            let mut map: Vec<Option<u32>> = vec![None; batch.strings.len()];
            for (at_ms, local) in batch.events {
                if at_ms < from_ms || at_ms >= to_ms {
                    continue;
                }
                if batch.strings.get(local[5] as usize).map(String::as_str) != Some("manifest") {
                    continue;
                }
                let mut ids = [0u32; 15];
                for (slot, l) in ids.iter_mut().zip(local) {
                    let l = l as usize;
                    let Some(text) = batch.strings.get(l) else {
                        return Err(HubError::Internal(
                            "a stored batch of pull events names a string it does not have".into(),
                        ));
                    };
                    *slot = *map[l].get_or_insert_with(|| {
                        *global.entry(text.clone()).or_insert_with(|| {
                            set.strings.push(text.clone());
                            (set.strings.len() - 1) as u32
                        })
                    });
                }
                set.events.push((at_ms, ids));
            }
        }
        set.events
            .sort_unstable_by_key(|(at, f)| (f[6], f[7], f[9], f[10], f[1], *at));
        Ok(set)
    }

    /// The address's hashes for the day's week and month, the parsed user agent and the
    /// enrichment of the address.
    fn client_fields(
        &self,
        ip: IpAddr,
        user_agent: &str,
        date: time::Date,
        hashers: &mut Hashers,
    ) -> ClientFields {
        let ua = agent::parse(user_agent);
        let (country, cloud, ip_type, domain) = match self.enricher.lookup(ip) {
            Ok(e) => (
                e.country.map(|c| c.as_str().to_owned()).unwrap_or_default(),
                e.cloud.map(|c| c.as_str().to_owned()).unwrap_or_default(),
                e.ip_type.map(|t| t.as_str().to_owned()).unwrap_or_default(),
                e.domain.unwrap_or_default().to_owned(),
            ),
            Err(e) => {
                tracing::debug!(error = %e, "enrichment lookup failed");
                Default::default()
            }
        };
        ClientFields {
            ip_week: hashers.hash(&self.secret, &Period::week_of(date), ip),
            ip_month: hashers.hash(&self.secret, &Period::month_of(date), ip),
            tool: ua.tool.as_str().to_owned(),
            tool_version: ua.version.unwrap_or_default().to_owned(),
            country,
            cloud,
            ip_type,
            domain,
        }
    }

    /// Classifies the manifest events up to a little before now into actions. Safe on
    /// several nodes at once: the watermark moves by compare-and-swap and a run that loses
    /// the race stores nothing. Returns how many actions were stored.
    pub async fn classify_pending(&self) -> Result<u64, HubError> {
        let now = now_ms();
        self.classify_until(now - CLASSIFY_LAG_MS).await
    }

    /// Classifies every stored event, the last seconds included. Only when no node is
    /// serving: events arriving later for that time would never be classified.
    pub async fn classify_final(&self) -> Result<u64, HubError> {
        let window_ms = self.config.window.as_millis() as i64;
        self.classify_until(now_ms() + 2 * window_ms).await
    }

    /// Classifies the events before `horizon_ms` (tests and the seeding command use it with
    /// a horizon of their own).
    pub async fn classify_until(&self, horizon_ms: i64) -> Result<u64, HubError> {
        let window_ms = self.config.window.as_millis() as i64;
        let mut stored = 0;
        loop {
            let from = self.db.classified_until().await?;
            let start = match from {
                Some(w) => w,
                None => match self.db.oldest_pull_event().await? {
                    Some(oldest) => oldest,
                    None => return Ok(stored),
                },
            };
            // Actions that start before `to` are complete once every event up to
            // `to + window` is in.
            // The longest span up to CLASSIFY_SPAN_MAX_MS whose events fit in one run's
            // memory (a catch-up over quiet hours goes fast; a burst a minute at a time).
            let end = horizon_ms - window_ms;
            if end <= start {
                return Ok(stored);
            }
            let mut span = CLASSIFY_SPAN_MAX_MS;
            while span > CLASSIFY_SPAN_MS
                && self
                    .db
                    .events_between(
                        start - 2 * window_ms,
                        start.saturating_add(span) + window_ms,
                    )
                    .await?
                    > CLASSIFY_RUN_EVENTS
            {
                span /= 2;
            }
            let to = end.min(start.saturating_add(span));
            // Two windows of context before `start`, so actions that began there keep
            // their followers.
            let (first, last) = (start - 2 * window_ms, to + window_ms);
            let batches = self.db.event_batches(first, last).await?;
            // Parsing, classifying and rolling up are CPU work of up to a few seconds: off
            // the request-serving threads.
            let window = self.config.window;
            let (actions, rollup) = tokio::task::spawn_blocking(move || {
                let events = Self::manifest_events(batches, first, last)?;
                let actions = Self::actions(window, &events, start, to);
                let rollup = crate::analytics_reports::rollup(&actions);
                Ok::<_, HubError>((actions, rollup))
            })
            .await
            .map_err(|e| HubError::Internal(format!("the classifier stopped: {e}")))??;
            let n = actions.len() as u64;
            if !self.db.commit_actions(from, to, &actions, &rollup).await? {
                // Another node classified this span first.
                continue;
            }
            self.counters.actions.fetch_add(n, Relaxed);
            stored += n;
        }
    }

    /// The actions starting in `[from, to)` of events sorted per client and repository.
    fn actions(window: Duration, set: &EventSet, from: i64, to: i64) -> Vec<PullActionRow> {
        let window = time::Duration::try_from(window).unwrap_or(classify::DEFAULT_WINDOW);
        let events = &set.events;
        let text = |id: u32| set.strings[id as usize].as_str();
        let mut out = Vec::new();
        let mut group_start = 0;
        // Same user, hashed address, tool, tool version and repository.
        let same_group =
            |a: &[u32; 15], b: &[u32; 15]| [6, 7, 9, 10, 1].iter().all(|&k| a[k] == b[k]);
        for i in 1..=events.len() {
            if i < events.len() && same_group(&events[group_start].1, &events[i].1) {
                continue;
            }
            let group = &events[group_start..i];
            group_start = i;
            let requests: Vec<(usize, ManifestRequest)> = group
                .iter()
                .enumerate()
                .filter_map(|(j, (at, f))| {
                    Some((
                        j,
                        ManifestRequest {
                            time: datetime(*at),
                            method: if text(f[4]) == "HEAD" {
                                classify::Method::Head
                            } else {
                                classify::Method::Get
                            },
                            reference: text(f[2]).parse().ok()?,
                            digest: text(f[3]).parse().ok()?,
                        },
                    ))
                })
                .collect();
            let only: Vec<ManifestRequest> = requests.iter().map(|(_, r)| r.clone()).collect();
            for action in classify::classify(&only, window) {
                let (at_ms, f) = group[requests[action.events.start].0];
                if at_ms < from || at_ms >= to {
                    continue;
                }
                out.push(PullActionRow {
                    at_ms,
                    namespace: text(f[0]).to_owned(),
                    repo: text(f[1]).to_owned(),
                    tag: action
                        .tag()
                        .map(|t| t.as_str().to_owned())
                        .unwrap_or_default(),
                    digest: action.digest.to_string(),
                    action: action.kind.as_str().to_owned(),
                    method: action.method.as_str().to_owned(),
                    user_name: text(f[6]).to_owned(),
                    ip_week: hex::decode(text(f[7])).unwrap_or_default(),
                    ip_month: hex::decode(text(f[8])).unwrap_or_default(),
                    tool: text(f[9]).to_owned(),
                    tool_version: text(f[10]).to_owned(),
                    country: text(f[11]).to_owned(),
                    cloud: text(f[12]).to_owned(),
                    ip_type: text(f[13]).to_owned(),
                    domain: text(f[14]).to_owned(),
                });
            }
        }
        out
    }

    /// Deletes raw events older than the retention period.
    pub async fn prune(&self) -> Result<u64, HubError> {
        let before = now_ms() - self.config.retention.as_millis() as i64;
        Ok(self.db.prune_pull_events(before).await?)
    }

    /// Counters in Prometheus' text format.
    pub fn metrics(&self) -> String {
        let c = &self.counters;
        let queued = self
            .tx
            .as_ref()
            .map_or(0, |tx| tx.max_capacity() - tx.capacity());
        let mut out = String::new();
        for (name, help, kind, value) in [
            (
                "wharf_analytics_events_captured_total",
                "Pull events put in the queue.",
                "counter",
                c.captured.load(Relaxed),
            ),
            (
                "wharf_analytics_events_dropped_total",
                "Pull events dropped because the queue was full.",
                "counter",
                c.dropped.load(Relaxed),
            ),
            (
                "wharf_analytics_events_written_total",
                "Pull events stored in the database.",
                "counter",
                c.written.load(Relaxed),
            ),
            (
                "wharf_analytics_events_lost_total",
                "Pull events lost because the database refused a batch.",
                "counter",
                c.write_failures.load(Relaxed),
            ),
            (
                "wharf_analytics_actions_total",
                "Actions classified and stored by this node.",
                "counter",
                c.actions.load(Relaxed),
            ),
            (
                "wharf_analytics_queue_events",
                "Pull events waiting for the writer.",
                "gauge",
                queued as u64,
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        }
        out
    }

    /// How many actions a raw-data export of this period has.
    pub async fn count_actions(&self, namespace: &str, period: &Period) -> Result<u64, HubError> {
        let (from, to, _) = bounds(period);
        Ok(self.db.count_actions(namespace, from, to).await?)
    }

    /// Stores `plan.events` synthetic pull events (for benchmarks and demonstrations):
    /// clients with the user agents of docker, containerd, podman, skopeo, kubelet and curl
    /// pulling tags of `plan.repos` repositories by the sequences those clients send
    /// (version checks, HEAD then GET, multi-platform index then manifest), spread over the
    /// `plan.days` days before `plan.end_ms`. `progress` is told how many are stored so far.
    pub async fn seed(&self, plan: &SeedPlan, progress: impl Fn(u64)) -> Result<u64, HubError> {
        use rand::{Rng as _, SeedableRng as _};
        const AGENTS: [&str; 6] = [
            "docker/27.5.1 go/go1.22.12 git-commit/4c9b3b0 kernel/6.1.0 os/linux arch/amd64",
            "containerd/1.7.24",
            "containers/5.34.2 (github.com/containers/image)",
            "skopeo/1.18.0",
            "kubelet/v1.31.4 (linux/amd64) kubernetes/a78aa47",
            "curl/8.11.1",
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(plan.seed);
        let span_ms = i64::from(plan.days.max(1)) * 86_400_000;
        let digest = |repo: u32, tag: u32, child: u32| {
            use sha2::Digest as _;
            let h = sha2::Sha256::digest(format!("{repo}/{tag}/{child}"));
            format!("sha256:{}", hex::encode(h))
        };
        let mut hashers = Hashers::default();
        let mut batch = BatchBuilder::default();
        let mut stored = 0u64;
        // Sequences average 1.7 events; times advance steadily, as pulls arrive.
        let sequences = (plan.events * 10 / 17).max(1);
        let step = (span_ms as f64 / sequences as f64).max(0.001);
        let mut k = 0u64;
        while stored + (batch.events.len() as u64) < plan.events {
            let at = plan.end_ms - span_ms + (k as f64 * step) as i64;
            k += 1;
            let client = rng.random_range(0..plan.clients.max(1));
            let ip = IpAddr::V4(std::net::Ipv4Addr::from_bits(0x0a00_0000 | client));
            let agent = AGENTS[(client as usize) % AGENTS.len()];
            let repo = rng.random_range(0..plan.repos.max(1));
            let tag = rng.random_range(0..4u32);
            let user = (client % 5 == 0).then(|| format!("user{client}"));
            let repo_name = format!("{}/repo{repo}", plan.namespace);
            let tag_name = format!("v{tag}");
            let index = digest(repo, tag, 0);
            let multi_arch = repo % 3 == 0;
            // (offset ms, HEAD?, reference, resolved digest)
            let sequence: Vec<(i64, bool, String, String)> = match rng.random_range(0..10u32) {
                0..=2 => vec![(0, true, tag_name.clone(), index.clone())],
                3..=6 if multi_arch => vec![
                    (0, true, tag_name.clone(), index.clone()),
                    (150, false, index.clone(), index.clone()),
                    (300, false, digest(repo, tag, 1), digest(repo, tag, 1)),
                ],
                3..=6 => vec![
                    (0, true, tag_name.clone(), index.clone()),
                    (150, false, index.clone(), index.clone()),
                ],
                7 | 8 => vec![(0, false, tag_name.clone(), index.clone())],
                _ => vec![(0, false, index.clone(), index.clone())],
            };
            for (offset, head, reference, resolved) in sequence {
                let raw = RawPull {
                    at_ms: at + offset,
                    repo: repo_name.clone(),
                    reference,
                    digest: resolved,
                    head,
                    blob: false,
                    user: user.clone(),
                    ip: Some(ip),
                    user_agent: agent.to_owned(),
                };
                self.add_to_batch(&mut batch, &raw, &mut hashers);
            }
            if batch.events.len() >= BATCH {
                stored += batch.events.len() as u64;
                self.store_built(std::mem::take(&mut batch)).await?;
                progress(stored);
            }
        }
        if !batch.events.is_empty() {
            stored += batch.events.len() as u64;
            self.store_built(batch).await?;
            progress(stored);
        }
        Ok(stored)
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub(crate) fn download_key(&self) -> &[u8] {
        &self.download_key
    }
}

/// Actions read per page of a raw-data export.
pub(crate) const RAW_PAGE: i64 = 10_000;

/// The repository's name without its namespace.
pub(crate) fn short_name(repo: &str) -> &str {
    repo.split_once('/').map_or(repo, |(_, name)| name)
}

/// An action as a row of the raw data export (the seeds' columns).
pub(crate) fn raw_row(a: PullActionRow) -> RawPullRow {
    let t = datetime(a.at_ms);
    let day = wharf_analytics::report::period::format_date(t.date());
    let reference = if a.tag.is_empty() {
        a.digest.clone()
    } else {
        a.tag.clone()
    };
    RawPullRow {
        action: a.action,
        action_day: day.clone(),
        country: a.country,
        digest: a.digest,
        http_method: a.method,
        host: a.cloud,
        namespace: a.namespace.clone(),
        reference,
        repository: short_name(&a.repo).to_owned(),
        tag: a.tag,
        timestamp: format!("{day} {:02}:{:02}:{:02}", t.hour(), t.minute(), t.second()),
        ip_type: a.ip_type,
        user_agent_tool: a.tool,
        user_agent_version: a.tool_version,
        domain: a.domain,
        owner: a.namespace,
    }
}

/// A period as `[from_ms, to_ms)` and whether unique addresses use the monthly hash.
pub fn bounds(period: &Period) -> (i64, i64, bool) {
    let ms = |d: time::Date| d.midnight().assume_utc().unix_timestamp() * 1000;
    (
        ms(period.start()),
        ms(period.end()),
        period.granularity() == Granularity::Monthly,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_stores_each_string_once_and_reads_back_the_same_events() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let event = |at_ms, reference: &str, method: &str| PullEvent {
            at_ms,
            namespace: "acme".into(),
            repo: "acme/app".into(),
            reference: reference.into(),
            digest: digest.clone(),
            method: method.into(),
            kind: "manifest".into(),
            ip_week: "00".repeat(16),
            ip_month: "11".repeat(16),
            tool: "docker".into(),
            tool_version: "27.5.1".into(),
            ..PullEvent::default()
        };
        let events = vec![
            event(1, "v1", "HEAD"),
            event(2, &digest, "GET"),
            event(3, "v1", "HEAD"),
        ];
        let data = encode_batch(&events).unwrap();
        assert_eq!(decode_batch(&data).unwrap(), events);
        let text = String::from_utf8(data.clone()).unwrap();
        assert_eq!(text.matches(&"a".repeat(64)).count(), 1, "{text}");
        let naive = serde_json::to_vec(&events).unwrap();
        assert!(
            data.len() * 2 < naive.len(),
            "{} vs {}",
            data.len(),
            naive.len()
        );
        let broken = br#"{"strings":[],"events":[[1,[0,0,0,0,0,0,0,0,0,0,0,0,0,0,9]]]}"#;
        assert!(decode_batch(broken).is_err());
    }
}
