//! Pull analytics: capture, storage, classification and reports.
//!
//! Capture never makes a pull wait: the registry hands each pull request to `capture`, which
//! puts it in a bounded queue (`analytics_queue::CaptureQueue`, a shard per thread; when it
//! is full the event is dropped and counted). A writer task drains the queue every
//! `flush_interval` (and whenever a shard is full enough for a batch), parses the user agent, enriches the
//! address from the operator's offline data files, replaces it by its weekly
//! and monthly keyed hashes, and stores the batch in one transaction. What a crash can lose
//! is bounded: the events still queued (at most `queue` of them, about one interval's worth).
//!
//! Classification runs on any node (`classify_pending`): it reads the manifest events since
//! the shared watermark, groups them per client (user, hashed address, tool) and repository,
//! applies the seeds' rules (`wharf_analytics::classify`) and stores the actions (in compact
//! batches, `analytics_actions`) and their rollups while it moves the watermark with a
//! compare-and-swap, so two nodes never store the same actions. Actions still open at the
//! watermark (a HEAD whose GET may still come) are handed to the next run with it, so a run
//! reads only its own span's events. Raw events are deleted after `retention`; the actions
//! and rollups stay, and the reports read them.

use foldhash::{HashMap, HashMapExt as _};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;
use wharf_analytics::agent;
use wharf_analytics::classify::{self, ManifestRequest};
use wharf_analytics::enrich::{EnrichConfig, Enricher};
use wharf_analytics::privacy::{HashSecret, IpHasher};
use wharf_analytics::report::rows::RawPullRow;
use wharf_analytics::report::{Granularity, Period};
use wharf_db::{Db, PullActionRow};
use wharf_oci::Reference;

use crate::analytics_actions::field::*;
pub use crate::analytics_actions::{Row, StoredBatch, field};
use crate::analytics_actions::{RowSet, Strings};
use crate::analytics_queue::{CaptureQueue, Pushed};

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

/// A request that is part of a pull, as the registry saw it (`Analytics::capture` copies
/// what it keeps).
#[derive(Debug, Clone, Copy)]
pub struct PullSeen<'a> {
    pub at_ms: i64,
    /// The full repository name.
    pub repo: &'a str,
    /// The tag or digest the request named.
    pub reference: &'a str,
    /// The digest it resolved to.
    pub digest: &'a str,
    pub head: bool,
    /// A blob download (else a manifest request).
    pub blob: bool,
    /// The signed-in user's name.
    pub user: Option<&'a str>,
    pub ip: Option<IpAddr>,
    pub user_agent: &'a str,
}

/// A captured request as it waits for the writer: 56 bytes and its text in one allocation
/// (the queue holds tens of thousands; one `String` per field cost five allocations and
/// three times the memory written on the path of every pull).
#[derive(Debug, Clone)]
pub(crate) struct RawPull {
    at_ms: i64,
    ip: Option<IpAddr>,
    head: bool,
    blob: bool,
    has_user: bool,
    /// Where the repository, reference, digest and user agent end in `text` (the user's
    /// name is the rest).
    ends: [u16; 4],
    text: Box<str>,
}

impl RawPull {
    fn new(seen: &PullSeen<'_>) -> Self {
        let user = seen.user.unwrap_or_default();
        let parts = [
            clip(seen.repo, MAX_FIELD),
            clip(seen.reference, MAX_FIELD),
            clip(seen.digest, MAX_FIELD),
            clip(seen.user_agent, MAX_USER_AGENT),
            clip(user, MAX_FIELD),
        ];
        let mut text = String::with_capacity(parts.iter().map(|p| p.len()).sum());
        let mut ends = [0u16; 4];
        for (i, part) in parts.iter().enumerate() {
            text.push_str(part);
            if let Some(end) = ends.get_mut(i) {
                // At most 4 × 1,024 + 512 bytes: fits.
                *end = text.len() as u16;
            }
        }
        Self {
            at_ms: seen.at_ms,
            ip: seen.ip,
            head: seen.head,
            blob: seen.blob,
            has_user: seen.user.is_some(),
            ends,
            text: text.into_boxed_str(),
        }
    }

    fn part(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        let end = self.ends.get(i).map_or(self.text.len(), |e| *e as usize);
        &self.text[start..end]
    }

    fn repo(&self) -> &str {
        self.part(0)
    }

    fn reference(&self) -> &str {
        self.part(1)
    }

    fn digest(&self) -> &str {
        self.part(2)
    }

    fn user_agent(&self) -> &str {
        self.part(3)
    }

    fn user(&self) -> Option<&str> {
        self.has_user.then(|| self.part(4))
    }
}

/// `s` cut to at most `max` bytes, at a character boundary.
fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
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

/// A batch of events being built: interned strings and the events as indexes (the fields
/// of `analytics_actions::field`).
struct BatchBuilder {
    strings: Strings,
    events: Vec<Row>,
    /// (address, user agent hash, day) → (user agent, interned client fields).
    clients: HashMap<(IpAddr, u64, i64), (String, [u32; 8])>,
    hasher: foldhash::fast::RandomState,
    first: i64,
    last: i64,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self {
            strings: Strings::default(),
            events: Vec::with_capacity(BATCH),
            clients: HashMap::new(),
            hasher: foldhash::fast::RandomState::default(),
            first: i64::MAX,
            last: i64::MIN,
        }
    }
}

/// What a classifier run hands to the next: the first request of each action still open at
/// the watermark (its `KIND` field says `open`, or `open-followed` for a HEAD already followed
/// by its GET), as a stored batch.
const OPEN: &str = "open";
const OPEN_FOLLOWED: &str = "open-followed";

/// How much of the queue a writer run stores.
#[derive(Clone, Copy)]
enum Drain {
    /// Only full batches: a partial one waits for the next run.
    Full,
    /// What was queued when the run began, then only full batches (under a steady load,
    /// draining until empty would store every few dozen events as they trickle in, each
    /// a database round trip).
    Queued,
    /// Until the queue is empty (on shutdown, and for `write_pending`).
    Empty,
}

/// Events stored per batch at most (the writer stores a full batch at once, without
/// waiting for its interval).
const BATCH: usize = 4_096;

/// Longest user agent kept.
const MAX_USER_AGENT: usize = 512;
/// Longest repository name, reference, digest or user name kept (the registry's own limits
/// are lower).
const MAX_FIELD: usize = 1_024;
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
/// The longest span one classifier run covers, when its events are few (a catch-up over quiet
/// hours goes fast).
const CLASSIFY_SPAN_MAX_MS: i64 = 65_536 * 1_000;
/// About how many events one run may hold. A run holds its events and its actions in memory
/// (about 150 bytes per event, with the sorting and the rollup), and writes its rollups in one
/// transaction that other writers wait for. At 16,384 a run's peak stays near 3 MB.
const CLASSIFY_RUN_EVENTS: u64 = 16_384;
/// Batches looked at to size a run: more than a run can take, so that the cap decides.
const CLASSIFY_SIZING_BATCHES: i64 = 256;

/// Where a classifier run that begins at `start` ends, given the end time and event count of
/// the batches that end at or after `start` (in that order): after as many whole batches as
/// fit in `cap` events (at least one, so that every run makes progress), or at `horizon` when
/// all of them fit.
fn run_end(start: i64, horizon: i64, batches: &[(i64, u64)], cap: u64, listed_all: bool) -> i64 {
    let mut to = None;
    let mut held = 0u64;
    for (i, &(last_ms, events)) in batches.iter().enumerate() {
        held += events;
        if held > cap && i > 0 {
            break;
        }
        to = Some(last_ms.saturating_add(1));
    }
    let end = match to {
        // Every batch fits and there are no more: everything up to the horizon.
        Some(_) if listed_all && held <= cap => horizon,
        Some(t) => t.max(start.saturating_add(1)),
        None => horizon,
    };
    end.min(horizon)
        .min(start.saturating_add(CLASSIFY_SPAN_MAX_MS))
}

#[derive(Debug, Default)]
struct Counters {
    written: AtomicU64,
    write_failures: AtomicU64,
    actions: AtomicU64,
}

/// The analytics service of one node.
pub struct Analytics {
    db: Db,
    config: AnalyticsConfig,
    /// Captured events waiting for the writer (none when analytics is off).
    queue: Option<CaptureQueue<RawPull>>,
    enricher: Enricher,
    secret: HashSecret,
    /// Signs the download links of exported reports.
    download_key: Vec<u8>,
    counters: Counters,
    /// Wakes the writer when a batch is full.
    full: tokio::sync::Notify,
    /// The classifier's thread, started on first use.
    background: Mutex<Option<std::sync::mpsc::Sender<Job>>>,
}

impl std::fmt::Debug for Analytics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analytics")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Work for the classifier's thread.
type Job = Box<dyn FnOnce() + Send>;

/// The classifier's thread: one of its own, at the lowest CPU priority, so that under a load
/// that keeps every core busy, serving pulls comes first and classification catches up when
/// the load drops (events wait in the database meanwhile; nothing is lost).
fn start_background() -> Result<std::sync::mpsc::Sender<Job>, HubError> {
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("wharf-classifier".into())
        .spawn(move || {
            // On Linux the nice value is per thread: this one only.
            if let Err(e) = rustix::process::setpriority_process(None, 19) {
                tracing::debug!(error = %e, "the classifier runs at normal priority");
            }
            while let Ok(job) = rx.recv() {
                job();
            }
        })
        .map_err(|e| HubError::Internal(format!("starting the classifier's thread: {e}")))?;
    Ok(tx)
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
        let queue = config
            .enabled
            .then(|| CaptureQueue::new(config.queue.max(1), BATCH));
        let analytics = Arc::new(Self {
            db,
            config,
            queue,
            enricher,
            secret,
            download_key,
            counters: Counters::default(),
            full: tokio::sync::Notify::new(),
            background: Mutex::new(None),
        });
        analytics.move_legacy_actions().await?;
        Ok(analytics)
    }

    /// Runs `f` on the classifier's thread.
    async fn in_background<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HubError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        {
            let mut guard = self.background.lock().unwrap_or_else(|p| p.into_inner());
            let unsent = match guard.as_ref() {
                Some(sender) => sender.send(job).err().map(|back| back.0),
                None => Some(job),
            };
            // Not started yet, or stopped by a panic: start it (again).
            if let Some(job) = unsent {
                let sender = start_background()?;
                sender.send(job).map_err(|_| {
                    HubError::Internal("the classifier's thread stopped at once".into())
                })?;
                *guard = Some(sender);
            }
        }
        rx.await
            .map_err(|_| HubError::Internal("the classifier stopped".into()))
    }

    /// Moves the actions earlier versions of wharf stored one per row into batches.
    async fn move_legacy_actions(&self) -> Result<(), HubError> {
        loop {
            let rows = self.db.legacy_actions(10_000).await?;
            let Some(&(last, _)) = rows.last() else {
                return Ok(());
            };
            let actions: Vec<PullActionRow> = rows.into_iter().map(|(_, a)| a).collect();
            let batches = RowSet::from_actions(&actions).action_batches();
            // False when another node moved some of them first: read again.
            self.db
                .replace_legacy_actions(last, actions.len() as u64, &batches)
                .await?;
        }
    }

    pub fn enabled(&self) -> bool {
        self.queue.is_some()
    }

    /// Records a request of a pull; never waits. A full queue drops the event (counted in
    /// `wharf_analytics_events_dropped_total`).
    pub fn capture(&self, pull: PullSeen<'_>) {
        let Some(queue) = &self.queue else { return };
        if queue.push(RawPull::new(&pull)) == Pushed::Full {
            self.full.notify_one();
        }
    }

    /// Stores what was captured every `flush_interval`, and once more on shutdown.
    pub async fn run_writer(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        if !self.enabled() {
            return;
        }
        let mut tick = tokio::time::interval(self.config.flush_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            // A full queue is written a full batch at a time, and what is left waits for the
            // interval: storing every few dozen events as they trickle in would cost a
            // database round trip each (and a busy node serves tens of thousands a second).
            let (stop, drain) = tokio::select! {
                _ = tick.tick() => (false, Drain::Queued),
                _ = self.full.notified() => (false, Drain::Full),
                _ = shutdown.changed() => (true, Drain::Empty),
            };
            if let Err(e) = self.write_queued(drain).await {
                tracing::warn!(error = %e, "storing pull events failed; they are dropped");
            }
            if stop {
                return;
            }
        }
    }

    /// Stores every queued event now, a batch at a time; returns how many. Building and
    /// encoding a batch (a millisecond or two of CPU) happens off the threads that serve
    /// requests, so the connections of a busy worker do not wait for it.
    pub async fn write_pending(self: &Arc<Self>) -> Result<usize, HubError> {
        self.write_queued(Drain::Empty).await
    }

    /// Stores queued events a batch at a time, as `drain` says; returns how many.
    async fn write_queued(self: &Arc<Self>, drain: Drain) -> Result<usize, HubError> {
        let mut hashers = Hashers::default();
        let mut written = 0;
        let Some(queue) = &self.queue else {
            return Ok(0);
        };
        // Events taken from the queue and not yet stored.
        let mut taken = match drain {
            Drain::Full => Vec::new(),
            Drain::Queued | Drain::Empty => queue.take(1),
        };
        loop {
            if taken.len() < BATCH {
                taken.extend(match drain {
                    Drain::Full | Drain::Queued => queue.take_full(),
                    Drain::Empty => queue.take(1),
                });
            }
            if taken.len() < queue.kick_at() && matches!(drain, Drain::Full) && !taken.is_empty() {
                // Too few to store on their own: they wait for the next run.
                queue.put_back(std::mem::take(&mut taken));
            }
            let raw = if taken.len() > BATCH {
                let rest = taken.split_off(BATCH);
                std::mem::replace(&mut taken, rest)
            } else {
                std::mem::take(&mut taken)
            };
            if raw.is_empty() {
                return Ok(written);
            }
            let n = raw.len();
            let this = Arc::clone(self);
            let mut lent = std::mem::take(&mut hashers);
            let built = tokio::task::spawn_blocking(move || {
                let mut batch = BatchBuilder::default();
                let mut previous = None;
                for r in &raw {
                    this.add_to_batch(&mut batch, r, previous, &mut lent);
                    previous = Some(r);
                }
                (Self::encode_built(batch), lent)
            })
            .await
            .map_err(|e| HubError::Internal(format!("the analytics writer stopped: {e}")));
            let stored = match built {
                Ok((encoded, kept)) => {
                    hashers = kept;
                    self.store_encoded(encoded).await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = stored {
                // This batch is lost (and counted); what was taken after it waits for the
                // next run.
                self.counters.write_failures.fetch_add(n as u64, Relaxed);
                queue.put_back(taken);
                return Err(e);
            }
            self.counters.written.fetch_add(n as u64, Relaxed);
            written += n;
        }
    }

    /// Adds a captured request to a batch: the fields its client shares with its other
    /// requests (hashed address, user agent, enrichment) are worked out and interned once
    /// per batch; nothing is copied for strings the batch already holds, and the fields a
    /// request shares with the one before it (`previous`, the batch's last event: the
    /// requests of one pull, or a client repeating itself) are not even looked up.
    fn add_to_batch(
        &self,
        batch: &mut BatchBuilder,
        r: &RawPull,
        previous: Option<&RawPull>,
        hashers: &mut Hashers,
    ) {
        let day = r.at_ms.div_euclid(86_400_000);
        let last = previous.zip(batch.events.last().map(|(_, ids)| *ids));
        let mut ids = [0u32; 15];
        match last {
            Some((p, last))
                if p.ip == r.ip
                    && p.at_ms.div_euclid(86_400_000) == day
                    && p.user_agent() == r.user_agent() =>
            {
                ids[IP_WEEK..].copy_from_slice(&last[IP_WEEK..]);
            }
            _ => ids[IP_WEEK..].copy_from_slice(&self.client_ids(batch, r, day, hashers)),
        }
        let same = |k: usize, equal: fn(&RawPull, &RawPull) -> bool| {
            last.filter(|(p, _)| equal(p, r)).map(|(_, ids)| ids[k])
        };
        let strings = &mut batch.strings;
        ids[NAMESPACE] = same(NAMESPACE, |p, r| p.repo() == r.repo())
            .unwrap_or_else(|| strings.intern(r.repo().split_once('/').map_or("", |(ns, _)| ns)));
        ids[REPO] =
            same(REPO, |p, r| p.repo() == r.repo()).unwrap_or_else(|| strings.intern(r.repo()));
        ids[REFERENCE] = same(REFERENCE, |p, r| p.reference() == r.reference())
            .unwrap_or_else(|| strings.intern(r.reference()));
        ids[DIGEST] = same(DIGEST, |p, r| p.digest() == r.digest())
            .unwrap_or_else(|| strings.intern(r.digest()));
        ids[METHOD] = same(METHOD, |p, r| p.head == r.head)
            .unwrap_or_else(|| strings.intern(if r.head { "HEAD" } else { "GET" }));
        ids[KIND] = same(KIND, |p, r| p.blob == r.blob)
            .unwrap_or_else(|| strings.intern(if r.blob { "blob" } else { "manifest" }));
        ids[USER] = same(USER, |p, r| p.user() == r.user())
            .unwrap_or_else(|| strings.intern(r.user().unwrap_or_default()));
        batch.first = batch.first.min(r.at_ms);
        batch.last = batch.last.max(r.at_ms);
        batch.events.push((r.at_ms, ids));
    }

    /// The interned client fields of a request (hashed address, parsed user agent,
    /// enrichment), worked out once per batch, address, user agent and day.
    fn client_ids(
        &self,
        batch: &mut BatchBuilder,
        r: &RawPull,
        day: i64,
        hashers: &mut Hashers,
    ) -> [u32; 8] {
        let ip =
            r.ip.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
                .to_canonical();
        let ua_hash = std::hash::BuildHasher::hash_one(&batch.hasher, r.user_agent());
        if let Some((ua, ids)) = batch.clients.get(&(ip, ua_hash, day))
            && **ua == *r.user_agent()
        {
            return *ids;
        }
        let c = self.client_fields(ip, r.user_agent(), datetime(r.at_ms).date(), hashers);
        let ids = [
            batch.strings.intern(&c.ip_week),
            batch.strings.intern(&c.ip_month),
            batch.strings.intern(&c.tool),
            batch.strings.intern(&c.tool_version),
            batch.strings.intern(&c.country),
            batch.strings.intern(&c.cloud),
            batch.strings.intern(&c.ip_type),
            batch.strings.intern(&c.domain),
        ];
        batch
            .clients
            .insert((ip, ua_hash, day), (r.user_agent().to_owned(), ids));
        ids
    }

    /// Stores a built batch as one row.
    async fn store_built(&self, batch: BatchBuilder) -> Result<(), HubError> {
        self.store_encoded(Self::encode_built(batch)).await
    }

    /// A built batch as stored: its first and last times, its size and its encoding.
    fn encode_built(batch: BatchBuilder) -> Option<(i64, i64, i64, Vec<u8>)> {
        if batch.events.is_empty() {
            return None;
        }
        let (first, last, n) = (batch.first, batch.last, batch.events.len() as i64);
        let data = StoredBatch {
            strings: batch.strings.into_list(),
            events: batch.events,
        }
        .encode();
        Some((first, last, n, data))
    }

    async fn store_encoded(&self, batch: Option<(i64, i64, i64, Vec<u8>)>) -> Result<(), HubError> {
        if let Some((first, last, n, data)) = batch {
            self.db.insert_event_batch(first, last, n, &data).await?;
        }
        Ok(())
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
        let mut stored = 0;
        loop {
            let state = self.db.classifier_state().await?;
            let start = match state.until_ms {
                Some(w) => w,
                None => match self.db.oldest_pull_event().await? {
                    Some(oldest) => oldest,
                    None => return Ok(stored),
                },
            };
            if horizon_ms <= start {
                return Ok(stored);
            }
            // A span whose events fit in one run's memory.
            let ends = self.db.batch_ends(start, CLASSIFY_SIZING_BATCHES).await?;
            let listed_all = (ends.len() as i64) < CLASSIFY_SIZING_BATCHES;
            let to = run_end(start, horizon_ms, &ends, CLASSIFY_RUN_EVENTS, listed_all);
            let batches = self.db.event_batches(start, to).await?;
            let carry = state.carry;
            // Decoding, classifying and rolling up are CPU work: on the classifier's thread,
            // which yields to serving.
            let window = self.config.window;
            let (actions, rollup, carry, n) = self
                .in_background(move || {
                    let mut events = RowSet::default();
                    if let Some(carry) = carry.filter(|c| !c.is_empty()) {
                        events.extend(StoredBatch::decode(&carry, "open actions")?, |_, _| true);
                    }
                    for data in batches {
                        events.extend(StoredBatch::decode(&data, "pull events")?, |(at, f), s| {
                            (start..to).contains(at) && s[f[KIND] as usize] == "manifest"
                        });
                    }
                    let (actions, carry) = Self::actions(window, events, to);
                    let rollup = crate::analytics_actions::rollup(&actions);
                    let n = actions.rows.len() as u64;
                    Ok::<_, HubError>((actions.action_batches(), rollup, carry.encode(), n))
                })
                .await??;
            // A task of its own: a caller that stops waiting (shutdown) never cuts a commit
            // in half (it relaxes the connection's durability and restores it after).
            let db = self.db.clone();
            let from = state.until_ms;
            let committed = tokio::spawn(async move {
                db.commit_actions(from, to, &actions, &rollup, &carry).await
            })
            .await
            .map_err(|e| {
                HubError::Internal(format!("storing classified actions stopped: {e}"))
            })??;
            if !committed {
                // Another node classified this span first.
                continue;
            }
            self.counters.actions.fetch_add(n, Relaxed);
            stored += n;
        }
    }

    /// Classifies events (the manifest requests of a span, and the first requests of the
    /// actions the last run left open) into the actions they make up, and the actions still
    /// open at `to`, which the next run continues.
    fn actions(window: Duration, events: RowSet, to: i64) -> (RowSet, StoredBatch) {
        let window = time::Duration::try_from(window).unwrap_or(classify::DEFAULT_WINDOW);
        let RowSet {
            mut strings,
            rows: mut events,
        } = events;
        // Per client (user, hashed address, tool and version) and repository, in time order
        // (the open actions, being older, first; requests of the same millisecond in the
        // order they were stored).
        events.sort_by_key(|(at, f)| (f[USER], f[IP_WEEK], f[TOOL], f[TOOL_VERSION], f[REPO], *at));
        let ids = |s: &mut Strings| {
            [
                s.intern(""),
                s.intern(OPEN),
                s.intern(OPEN_FOLLOWED),
                s.intern(classify::ActionKind::VersionCheck.as_str()),
                s.intern(classify::ActionKind::PullByTag.as_str()),
                s.intern(classify::ActionKind::PullByDigest.as_str()),
            ]
        };
        let [empty, open, open_followed, version_check, by_tag, by_digest] = ids(&mut strings);
        let mut parsed: HashMap<u32, Option<Reference>> = HashMap::new();
        let mut parse = |id: u32, strings: &Strings| {
            parsed
                .entry(id)
                .or_insert_with(|| strings.get(id).parse().ok())
                .clone()
        };
        let mut actions = Vec::new();
        let mut carry = Vec::new();
        let same_group = |a: &[u32; 15], b: &[u32; 15]| {
            [USER, IP_WEEK, TOOL, TOOL_VERSION, REPO]
                .iter()
                .all(|&k| a[k] == b[k])
        };
        let to_time = datetime(to);
        let mut group_start = 0;
        for i in 1..=events.len() {
            if i < events.len() && same_group(&events[group_start].1, &events[i].1) {
                continue;
            }
            let group = &events[group_start..i];
            group_start = i;
            let mut classifier = classify::Classifier::new(window);
            // The group's event at each position pushed to the classifier.
            let mut pushed: Vec<usize> = Vec::with_capacity(group.len());
            let mut resumed: Option<usize> = None;
            let mut found = Vec::new();
            for (j, (at, f)) in group.iter().enumerate() {
                let (Some(reference), Some(Reference::Digest(digest))) =
                    (parse(f[REFERENCE], &strings), parse(f[DIGEST], &strings))
                else {
                    continue;
                };
                let method = if strings.get(f[METHOD]) == "HEAD" {
                    classify::Method::Head
                } else {
                    classify::Method::Get
                };
                if f[KIND] == open || f[KIND] == open_followed {
                    resumed = Some(j);
                    found.extend(classifier.resume(classify::OpenAction {
                        time: datetime(*at),
                        method,
                        reference,
                        digest,
                        followed: f[KIND] == open_followed,
                    }));
                    continue;
                }
                pushed.push(j);
                found.extend(classifier.push(&ManifestRequest {
                    time: datetime(*at),
                    method,
                    reference,
                    digest,
                }));
            }
            let first_event = |a: &classify::Action| {
                if a.resumed {
                    resumed
                } else {
                    pushed.get(a.events.start).copied()
                }
            };
            match classifier.take_open(to_time) {
                Ok(None) => {}
                Ok(Some((still_open, first))) => {
                    let j = match first {
                        Some(position) => pushed.get(position).copied(),
                        None => resumed,
                    };
                    if let Some(j) = j {
                        let (at, mut f) = group[j];
                        f[KIND] = if still_open.followed {
                            open_followed
                        } else {
                            open
                        };
                        carry.push((at, f));
                    }
                }
                Err(ended) => found.push(ended),
            }
            for action in found {
                let Some(j) = first_event(&action) else {
                    continue;
                };
                let (at, mut f) = group[j];
                if action.tag().is_none() {
                    f[TAG] = empty;
                }
                f[ACTION] = match action.kind {
                    classify::ActionKind::VersionCheck => version_check,
                    classify::ActionKind::PullByTag => by_tag,
                    classify::ActionKind::PullByDigest => by_digest,
                };
                actions.push((at, f));
            }
        }
        let set = RowSet {
            strings,
            rows: actions,
        };
        let carry = set.stored(carry.into_iter());
        (set, carry)
    }

    /// Deletes raw events older than the retention period.
    pub async fn prune(&self) -> Result<u64, HubError> {
        let before = now_ms() - self.config.retention.as_millis() as i64;
        Ok(self.db.prune_pull_events(before).await?)
    }

    /// Events waiting for the writer.
    fn queued(&self) -> usize {
        self.queue.as_ref().map_or(0, CaptureQueue::len)
    }

    /// Counters in Prometheus' text format.
    pub fn metrics(&self) -> String {
        let c = &self.counters;
        let queued = self.queued();
        let (captured, dropped) = self.queue.as_ref().map_or((0, 0), CaptureQueue::counts);
        let mut out = String::new();
        for (name, help, kind, value) in [
            (
                "wharf_analytics_events_captured_total",
                "Pull events put in the queue.",
                "counter",
                captured,
            ),
            (
                "wharf_analytics_events_dropped_total",
                "Pull events dropped because the queue was full.",
                "counter",
                dropped,
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
        let day = crate::analytics_actions::DAY_MS;
        Ok(self
            .db
            .count_actions(namespace, from / day, to / day)
            .await?)
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
                let raw = RawPull::new(&PullSeen {
                    at_ms: at + offset,
                    repo: &repo_name,
                    reference: &reference,
                    digest: &resolved,
                    head,
                    blob: false,
                    user: user.as_deref(),
                    ip: Some(ip),
                    user_agent: agent,
                });
                self.add_to_batch(&mut batch, &raw, None, &mut hashers);
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

/// Batches of actions read per page of a raw-data export.
pub(crate) const RAW_PAGE: i64 = 16;

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
pub(crate) mod tests {
    use super::*;

    fn capture(a: &Analytics, i: usize) {
        let digest = format!("sha256:{i:064x}");
        a.capture(PullSeen {
            at_ms: now_ms(),
            repo: "acme/app",
            reference: "v1",
            digest: &digest,
            head: false,
            blob: false,
            user: None,
            ip: Some(IpAddr::V4(std::net::Ipv4Addr::new(
                192,
                0,
                2,
                (i % 200) as u8,
            ))),
            user_agent: "docker/27.5.1 go/go1.22.10",
        });
    }

    #[test]
    fn a_captured_request_keeps_every_field_and_cuts_overlong_ones_at_a_character() {
        let agent = format!("docker/27.5.1{}", "é".repeat(400));
        let seen = PullSeen {
            at_ms: 7,
            repo: "acme/app",
            reference: "v1",
            digest: "sha256:abc",
            head: true,
            blob: false,
            user: Some("alice"),
            ip: None,
            user_agent: &agent,
        };
        let r = RawPull::new(&seen);
        assert_eq!(
            (r.repo(), r.reference(), r.digest(), r.user()),
            ("acme/app", "v1", "sha256:abc", Some("alice"))
        );
        assert!((r.at_ms, r.head, r.blob) == (7, true, false));
        assert_eq!(
            r.user_agent().len(),
            511,
            "cut before the é that would cross 512"
        );
        assert!(agent.starts_with(r.user_agent()));
        let anonymous = RawPull::new(&PullSeen {
            user: None,
            user_agent: "",
            ..seen
        });
        assert_eq!((anonymous.user(), anonymous.user_agent()), (None, ""));
        assert_eq!(anonymous.digest(), "sha256:abc");
    }

    /// Analytics with its default settings on a fresh SQLite database (kept while the
    /// directory is).
    pub(crate) async fn open() -> (tempfile::TempDir, Arc<Analytics>) {
        let dir = tempfile::tempdir().unwrap();
        let db = wharf_db::Db::open_sqlite(&dir.path().join("wharf.db"))
            .await
            .unwrap();
        let a = Analytics::open(db, AnalyticsConfig::default())
            .await
            .unwrap();
        (dir, a)
    }

    /// Stored batches and the events in them.
    async fn stored(a: &Analytics) -> (usize, u64) {
        let batches = a.db.event_batches(0, i64::MAX).await.unwrap();
        let ends = a.db.batch_ends(0, i64::MAX).await.unwrap();
        assert_eq!(ends.len(), batches.len());
        (batches.len(), ends.iter().map(|(_, n)| n).sum())
    }

    #[test]
    fn a_classifier_run_takes_whole_batches_up_to_its_cap() {
        let batches = [(100, 10), (150, 10), (200, 10), (300, 10)];
        // Everything fits and nothing more is stored: up to the horizon.
        assert_eq!(run_end(50, 1_000, &batches, 40, true), 1_000);
        // Three batches fit in 30 events: the run ends just after the third.
        assert_eq!(run_end(50, 1_000, &batches, 30, true), 201);
        assert_eq!(run_end(50, 1_000, &batches, 35, true), 201);
        // One batch over the cap still makes a run (progress).
        assert_eq!(run_end(50, 1_000, &[(120, 500), (130, 1)], 30, true), 121);
        // More batches than were listed: the run ends after the last one listed.
        assert_eq!(run_end(50, 1_000, &batches, 1_000, false), 301);
        // The horizon bounds every run; no batches at all means up to the horizon.
        assert_eq!(run_end(50, 160, &batches, 30, true), 160);
        assert_eq!(run_end(50, 1_000, &[], 30, true), 1_000);
        // A quiet stretch is still cut at the longest span.
        assert_eq!(
            run_end(0, i64::MAX, &batches, 1_000, true),
            CLASSIFY_SPAN_MAX_MS
        );
    }

    #[tokio::test]
    async fn the_writer_stores_full_batches_and_leaves_a_trickle_for_its_interval() {
        let (_dir, a) = open().await;
        for i in 0..BATCH + 10 {
            capture(&a, i);
        }
        // A kick stores whole batches only: the 10 left over wait.
        assert_eq!(a.write_queued(Drain::Full).await.unwrap(), BATCH);
        assert_eq!(a.queued(), 10);
        assert_eq!(a.write_queued(Drain::Full).await.unwrap(), 0);
        assert_eq!(stored(&a).await, (1, BATCH as u64));
        // The interval stores what was queued when it began, as one batch.
        for i in 0..5 {
            capture(&a, i);
        }
        assert_eq!(a.write_queued(Drain::Queued).await.unwrap(), 15);
        assert_eq!(a.queued(), 0);
        assert_eq!(stored(&a).await, (2, BATCH as u64 + 15));
    }

    #[tokio::test]
    async fn a_batch_the_database_refuses_is_counted_lost_and_the_rest_waits() {
        let (_dir, a) = open().await;
        for i in 0..BATCH + 5 {
            capture(&a, i);
        }
        a.db.close().await;
        assert!(a.write_pending().await.is_err());
        assert_eq!(a.queued(), 5, "taken after the refused batch, so kept");
        let metrics = a.metrics();
        assert!(
            metrics.contains(&format!("wharf_analytics_events_lost_total {BATCH}")),
            "{metrics}"
        );
    }
}
