//! Extension analytics: Docker Desktop reports installs, uninstalls, updates and openings of
//! a Docker Extension (an image repository) to the operator's collector, which forwards them
//! here (`ingest`) with a credential that may push to the repository. Each event is checked
//! (kind, user, time) and the whole request is stored or refused at once. The user's opaque
//! id is replaced by its weekly and monthly keyed hashes (`wharf_analytics::privacy`), so the
//! Extension core and premium summaries can count unique users within a period and nothing
//! identifies anyone.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use wharf_analytics::privacy::HashSecret;
use wharf_analytics::report::rows::{ExtensionCoreRow, ExtensionPremiumRow};
use wharf_analytics::report::{Granularity, Period, write_csv};
use wharf_db::{Db, ExtensionEventRow, ExtensionTally};
use wharf_oci::RepoName;

use crate::{Hub, HubError, Principal};

/// Events one request may carry at most.
pub const MAX_EVENTS: usize = 1000;
/// Events may be dated this far ahead of the server's clock (clocks of desktops drift).
pub const MAX_FUTURE: Duration = Duration::from_secs(86_400);
/// Longest user id and version accepted, in bytes.
const MAX_USER: usize = 256;
const MAX_VERSION: usize = 128;

/// What happened to an extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtensionEventKind {
    Install,
    Uninstall,
    Update,
    /// The extension's tab was opened ("Usage" in the premium summary).
    Open,
}

impl ExtensionEventKind {
    pub const ALL: [Self; 4] = [Self::Install, Self::Uninstall, Self::Update, Self::Open];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Install => "install",
            Self::Uninstall => "uninstall",
            Self::Update => "update",
            Self::Open => "open",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One event as the collector sends it. Every field is kept as raw JSON so that a wrong
/// type is refused with the event's index and field, not a bare JSON error.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ExtensionEventIn {
    #[serde(default, rename = "type")]
    pub kind: Option<serde_json::Value>,
    #[serde(default)]
    pub user: Option<serde_json::Value>,
    #[serde(default)]
    pub timestamp: Option<serde_json::Value>,
    #[serde(default)]
    pub version: Option<serde_json::Value>,
}

/// A checked event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionEvent {
    pub kind: ExtensionEventKind,
    pub user: String,
    pub at_ms: i64,
    pub version: Option<String>,
}

impl ExtensionEvent {
    /// Checks event number `index` of a request received at `now_ms`: a known type, a
    /// non-empty user, an RFC 3339 time at most a day ahead and not older than `oldest_ms`.
    pub fn check(
        index: usize,
        input: &ExtensionEventIn,
        now_ms: i64,
        oldest_ms: i64,
    ) -> Result<Self, HubError> {
        let bad = |field: &str, why: String| {
            HubError::InvalidInput(format!("events[{index}].{field}: {why}"))
        };
        let text =
            |field: &str, v: &Option<serde_json::Value>| -> Result<Option<String>, HubError> {
                match v {
                    None | Some(serde_json::Value::Null) => Ok(None),
                    Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
                    Some(other) => Err(bad(field, format!("must be a string, not {other}"))),
                }
            };
        let kinds = "use install, uninstall, update or open";
        let kind = match text("type", &input.kind)? {
            None => return Err(bad("type", format!("missing; {kinds}"))),
            Some(k) => ExtensionEventKind::parse(&k)
                .ok_or_else(|| bad("type", format!("{k:?} is not an extension event; {kinds}")))?,
        };
        let user = text("user", &input.user)?.unwrap_or_default();
        if user.trim().is_empty() {
            return Err(bad(
                "user",
                "missing or empty; send the user's opaque id (it is stored only as a keyed hash)"
                    .into(),
            ));
        }
        if user.len() > MAX_USER {
            return Err(bad(
                "user",
                format!("{} bytes long; at most {MAX_USER}", user.len()),
            ));
        }
        let Some(stamp) = text("timestamp", &input.timestamp)? else {
            return Err(bad(
                "timestamp",
                "missing; send when it happened in RFC 3339, e.g. 2026-11-18T11:06:40Z".into(),
            ));
        };
        let at = OffsetDateTime::parse(&stamp, &Rfc3339).map_err(|e| {
            bad(
                "timestamp",
                format!("{stamp:?} is not an RFC 3339 time such as 2026-11-18T11:06:40Z ({e})"),
            )
        })?;
        let at_ms = i64::try_from(at.unix_timestamp_nanos() / 1_000_000)
            .map_err(|_| bad("timestamp", format!("{stamp:?} is out of range")))?;
        if at_ms > now_ms + MAX_FUTURE.as_millis() as i64 {
            return Err(bad(
                "timestamp",
                format!("{stamp:?} is more than a day ahead of the server's clock"),
            ));
        }
        if at_ms < oldest_ms {
            return Err(bad(
                "timestamp",
                format!(
                    "{stamp:?} is older than the {} days events are accepted for (analytics_retention_days)",
                    (now_ms - oldest_ms) / 86_400_000
                ),
            ));
        }
        let version = text("version", &input.version)?.filter(|v| !v.is_empty());
        if let Some(v) = &version
            && (v.len() > MAX_VERSION || v.chars().any(char::is_control))
        {
            return Err(bad(
                "version",
                format!("must be at most {MAX_VERSION} bytes without control characters"),
            ));
        }
        Ok(Self {
            kind,
            user,
            at_ms,
            version,
        })
    }
}

/// One extension's row of a summary: the repository (without its namespace) and the row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerExtension<R> {
    pub repository: String,
    pub row: R,
}

/// One extension's summary file (see `Extensions::summary_files`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionFile {
    /// The repository without its namespace.
    pub repository: String,
    pub csv: Vec<u8>,
    /// False for the all-zeros file of an extension without events.
    pub had_events: bool,
}

fn core_row(t: &ExtensionTally) -> ExtensionCoreRow {
    ExtensionCoreRow {
        installs: t.installs,
        total_installs: t.total_installs,
        uninstalls: t.uninstalls,
        total_uninstalls: t.total_uninstalls,
        updates: t.updates,
    }
}

fn premium_row(t: &ExtensionTally) -> ExtensionPremiumRow {
    ExtensionPremiumRow {
        installs: t.installs,
        unique_installs: t.unique_installs,
        uninstalls: t.uninstalls,
        unique_uninstalls: t.unique_uninstalls,
        usage: t.opens,
        unique_users: t.unique_openers,
    }
}

/// Proof that the caller may report events for a repository (from `Extensions::authorize`).
#[derive(Debug, Clone)]
pub struct ReportAccess {
    repo: RepoName,
}

/// The extension analytics service.
pub struct Extensions {
    db: Db,
    secret: HashSecret,
    /// Events older than this are refused (the raw pull events' retention).
    retention: Duration,
}

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extensions")
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl Extensions {
    /// Opens the service: the user-hashing secret is shared by every node through the
    /// database (created on first use), apart from the pull analytics' address secret.
    pub async fn open(db: Db, retention: Duration) -> Result<Arc<Self>, HubError> {
        let fresh: [u8; 32] = rand::random();
        let secret = db
            .named_secret("analytics-extension-user-hash", &fresh)
            .await?;
        let secret = HashSecret::new(secret).map_err(|e| {
            HubError::Internal(format!("the extension analytics secret is unusable: {e}"))
        })?;
        Ok(Arc::new(Self {
            db,
            secret,
            retention,
        }))
    }

    /// Whether `who` may report events for `repo`: it must be able to push to it (a
    /// repository it may not see answers as missing).
    pub async fn authorize(
        &self,
        hub: &Hub,
        who: &Principal,
        repo: &RepoName,
    ) -> Result<ReportAccess, HubError> {
        let view = hub.repo_view(who, repo).await?;
        if !view.actions.push {
            return Err(HubError::Forbidden(format!(
                "reporting extension events for {repo} needs write (push) access to it"
            )));
        }
        Ok(ReportAccess { repo: repo.clone() })
    }

    /// Stores a collector's events for the repository `access` names, all or none; returns
    /// how many.
    pub async fn ingest(
        &self,
        access: &ReportAccess,
        events: &[ExtensionEventIn],
    ) -> Result<usize, HubError> {
        let repo = &access.repo;
        if events.is_empty() {
            return Err(HubError::InvalidInput(
                "events: the list is empty; send at least one event".into(),
            ));
        }
        if events.len() > MAX_EVENTS {
            return Err(HubError::InvalidInput(format!(
                "events: {} events in one request; send at most {MAX_EVENTS} per request",
                events.len()
            )));
        }
        let now_ms = now_ms();
        let oldest_ms = now_ms.saturating_sub(self.retention.as_millis() as i64);
        let checked = events
            .iter()
            .enumerate()
            .map(|(i, e)| ExtensionEvent::check(i, e, now_ms, oldest_ms))
            .collect::<Result<Vec<_>, _>>()?;
        let rows: Vec<ExtensionEventRow> = checked
            .into_iter()
            .map(|e| {
                let date = datetime(e.at_ms).date();
                let hash = |period: Period| {
                    self.secret
                        .user_hasher(&period)
                        .hash(repo.as_str(), &e.user)
                        .to_vec()
                };
                ExtensionEventRow {
                    at_ms: e.at_ms,
                    namespace: repo.namespace().to_owned(),
                    repo: repo.as_str().to_owned(),
                    kind: e.kind.as_str().to_owned(),
                    version: e.version.unwrap_or_default(),
                    user_week: hash(Period::week_of(date)),
                    user_month: hash(Period::month_of(date)),
                }
            })
            .collect();
        self.db.insert_extension_events(&rows).await?;
        Ok(rows.len())
    }

    /// The Extension core summary of each extension of `namespace` with events before the
    /// period's end: installs, uninstalls and updates in the period, and the all-time
    /// installs and uninstalls up to its end.
    pub async fn extension_core_summary(
        &self,
        namespace: &str,
        period: &Period,
    ) -> Result<Vec<PerExtension<ExtensionCoreRow>>, HubError> {
        Ok(self
            .tally(namespace, period)
            .await?
            .iter()
            .map(|t| PerExtension {
                repository: short_name(&t.repo),
                row: core_row(t),
            })
            .collect())
    }

    /// The Extension premium summary of each extension of `namespace` with events before
    /// the period's end: installs, uninstalls and openings of its tab in the period, each
    /// with its number of unique users.
    pub async fn extension_premium_summary(
        &self,
        namespace: &str,
        period: &Period,
    ) -> Result<Vec<PerExtension<ExtensionPremiumRow>>, HubError> {
        Ok(self
            .tally(namespace, period)
            .await?
            .iter()
            .map(|t| PerExtension {
                repository: short_name(&t.repo),
                row: premium_row(t),
            })
            .collect())
    }

    /// The summary files of `report` (`extension-core` or `extension-premium`): the seeds'
    /// columns carry no extension name, so each extension has its own file, its header and
    /// its one row. Every extension with events before the period's end, or only `only`
    /// (a repository without its namespace; all zeros when it had no events).
    pub async fn summary_files(
        &self,
        namespace: &str,
        report: &str,
        period: &Period,
        only: Option<&str>,
    ) -> Result<Vec<ExtensionFile>, HubError> {
        let mut tallies: Vec<(ExtensionTally, bool)> = self
            .tally(namespace, period)
            .await?
            .into_iter()
            .map(|t| (t, true))
            .collect();
        if let Some(only) = only {
            let full = format!("{namespace}/{only}");
            tallies = match tallies.into_iter().find(|(t, _)| t.repo == full) {
                Some(found) => vec![found],
                None => vec![(
                    ExtensionTally {
                        repo: full,
                        ..Default::default()
                    },
                    false,
                )],
            };
        }
        let csv = |e: csv::Error| HubError::Internal(format!("writing a report: {e}"));
        tallies
            .into_iter()
            .map(|(t, had_events)| {
                let bytes = if report == "extension-core" {
                    write_csv(Vec::new(), [core_row(&t)])
                } else {
                    write_csv(Vec::new(), [premium_row(&t)])
                }
                .map_err(csv)?;
                Ok(ExtensionFile {
                    repository: short_name(&t.repo),
                    csv: bytes,
                    had_events,
                })
            })
            .collect()
    }

    async fn tally(
        &self,
        namespace: &str,
        period: &Period,
    ) -> Result<Vec<ExtensionTally>, HubError> {
        let ms = |d: time::Date| d.midnight().assume_utc().unix_timestamp() * 1000;
        Ok(self
            .db
            .tally_extension_events(
                namespace,
                ms(period.start()),
                ms(period.end()),
                period.granularity() == Granularity::Monthly,
            )
            .await?)
    }
}

/// Milliseconds since the epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn short_name(repo: &str) -> String {
    repo.split_once('/')
        .map_or(repo, |(_, name)| name)
        .to_owned()
}

fn datetime(at_ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(v: serde_json::Value) -> ExtensionEventIn {
        serde_json::from_value(v).unwrap()
    }

    const NOW: i64 = 1_795_000_000_000;
    const OLDEST: i64 = NOW - 90 * 86_400_000;

    fn check(v: serde_json::Value) -> Result<ExtensionEvent, String> {
        ExtensionEvent::check(4, &event(v), NOW, OLDEST).map_err(|e| e.to_string())
    }

    #[test]
    fn a_good_event_is_read() {
        let e = check(json!({"type": "open", "user": "u1", "timestamp": "2026-11-18T11:06:40.5+01:00", "version": "1.2.0"}))
            .unwrap();
        assert_eq!(e.kind, ExtensionEventKind::Open);
        assert_eq!(e.user, "u1");
        assert_eq!(e.at_ms, NOW + 500 - 3_600_000);
        assert_eq!(e.version.as_deref(), Some("1.2.0"));
    }

    #[test]
    fn bad_events_name_their_index_and_field() {
        let t = "2026-11-18T11:06:40Z";
        for (v, field) in [
            (
                json!({"type": "installed", "user": "u", "timestamp": t}),
                "events[4].type",
            ),
            (json!({"user": "u", "timestamp": t}), "events[4].type"),
            (
                json!({"type": 3, "user": "u", "timestamp": t}),
                "events[4].type",
            ),
            (
                json!({"type": "install", "user": " ", "timestamp": t}),
                "events[4].user",
            ),
            (json!({"type": "install", "timestamp": t}), "events[4].user"),
            (
                json!({"type": "install", "user": "u"}),
                "events[4].timestamp",
            ),
            (
                json!({"type": "install", "user": "u", "timestamp": "yesterday"}),
                "events[4].timestamp",
            ),
            (
                json!({"type": "install", "user": "u", "timestamp": "2027-01-01T00:00:00Z"}),
                "events[4].timestamp",
            ),
            (
                json!({"type": "install", "user": "u", "timestamp": "2020-01-01T00:00:00Z"}),
                "events[4].timestamp",
            ),
            (
                json!({"type": "install", "user": "u", "timestamp": t, "version": 1}),
                "events[4].version",
            ),
        ] {
            let err = check(v.clone()).unwrap_err();
            assert!(err.starts_with(field), "{v}: {err}");
        }
    }
}
