//! The analytics reports, read from the rollups the classifier writes with each run's
//! actions (`pull_daily` counts per day, `pull_uniques` puller sets per week and month), so
//! a report reads rows per group and day instead of every action of the period.

use std::collections::{BTreeSet, HashMap};

use wharf_analytics::enrich::NO_CSP;
use wharf_analytics::report::Period;
use wharf_analytics::report::columns::NULL;
use wharf_analytics::report::compute::{MIN_PAIR_USERS, percent};
use wharf_analytics::report::rows::{
    ReferenceSummaryRow, RepositorySummaryRow, SummaryRow, TechnographicCompanyRow,
    TechnographicRow, TrackedCompanyRow, TrendsRow,
};
use wharf_db::{ActionCounts, PullActionRow, TallyBy, UniqueCount};

use crate::HubError;
use crate::analytics::{Analytics, RAW_PAGE, bounds, datetime, short_name};
use crate::analytics_actions::{DAY_MS, RowSet, decode_actions, group_id, key, rollup};

/// The group keys of tallies, as the rollup writes them.
fn group_keys(tallies: &[(Vec<String>, ActionCounts)]) -> Vec<String> {
    tallies
        .iter()
        .map(|(k, _)| key(&k.iter().map(String::as_str).collect::<Vec<_>>()))
        .collect()
}

fn or(s: &str, null: &str) -> String {
    if s.is_empty() {
        null.to_owned()
    } else {
        s.to_owned()
    }
}

impl Analytics {
    /// A namespace's action counts in a period, grouped as asked.
    async fn tally(
        &self,
        namespace: &str,
        period: &Period,
        by: TallyBy,
    ) -> Result<Vec<(Vec<String>, ActionCounts)>, HubError> {
        let (from, to, _) = bounds(period);
        Ok(self
            .db()
            .tally_actions(namespace, from / DAY_MS, to / DAY_MS, by)
            .await?)
    }

    /// The puller counts of the groups of kind `kind` with keys `keys` in a period, in the
    /// same order (zero for a group nobody is in).
    async fn counts_for(
        &self,
        namespace: &str,
        period: &Period,
        kind: &str,
        keys: &[String],
    ) -> Result<Vec<UniqueCount>, HubError> {
        let name = period.name();
        let grps: Vec<i64> = keys
            .iter()
            .map(|k| group_id(namespace, &name, kind, k))
            .collect();
        let found = self.db().unique_counts(&grps).await?;
        Ok(grps
            .iter()
            .map(|g| found.get(g).copied().unwrap_or_default())
            .collect())
    }

    /// A namespace's action counts in a period grouped as asked, each group with its puller
    /// counts from the sets of kind `kind` (keyed the same way), keeping the groups `keep`
    /// accepts.
    async fn tally_with_pullers(
        &self,
        namespace: &str,
        period: &Period,
        by: TallyBy,
        kind: &str,
        keep: impl Fn(&[String]) -> bool,
    ) -> Result<Vec<(Vec<String>, ActionCounts, UniqueCount)>, HubError> {
        let tallies: Vec<_> = self
            .tally(namespace, period, by)
            .await?
            .into_iter()
            .filter(|(k, _)| keep(k))
            .collect();
        let keys = group_keys(&tallies);
        let uniques = self.counts_for(namespace, period, kind, &keys).await?;
        Ok(tallies
            .into_iter()
            .zip(uniques)
            .map(|((k, c), u)| (k, c, u))
            .collect())
    }

    /// The Summary report of a namespace: per repository, tag and digest.
    pub async fn summary(
        &self,
        namespace: &str,
        period: &Period,
    ) -> Result<Vec<SummaryRow>, HubError> {
        let mut rows = Vec::new();
        for (level, by) in [
            ("repository", TallyBy::Repository),
            ("tag", TallyBy::Tag),
            ("digest", TallyBy::Digest),
        ] {
            for (k, c) in self.tally(namespace, period, by).await? {
                let reference = match level {
                    "repository" => k[0].clone(),
                    "tag" if k[1].is_empty() => continue,
                    "tag" => format!("{}:{}", k[0], k[1]),
                    _ => format!("{}@{}", k[0], k[1]),
                };
                let downloads = c.pulls_by_tag + c.pulls_by_digest;
                rows.push(SummaryRow {
                    date_granularity: period.granularity().to_string(),
                    date_reference: period.date_reference(),
                    publisher_name: namespace.to_owned(),
                    level: level.to_owned(),
                    reference,
                    data_downloads: downloads,
                    version_checks: c.version_checks,
                    event_count: downloads + c.version_checks,
                });
            }
        }
        Ok(rows)
    }

    /// The Trends report of a namespace: per repository, country, cloud, tool and tag.
    pub async fn trends(
        &self,
        namespace: &str,
        period: &Period,
    ) -> Result<Vec<TrendsRow>, HubError> {
        Ok(self
            .tally_with_pullers(namespace, period, TallyBy::Trends, "trend", |_| true)
            .await?
            .into_iter()
            .map(|(k, c, u)| {
                let downloads = c.pulls_by_tag + c.pulls_by_digest;
                TrendsRow {
                    date_granularity: period.granularity().to_string(),
                    date_reference: period.date_reference(),
                    publisher_name: namespace.to_owned(),
                    image_repository: k[0].clone(),
                    namespace: namespace.to_owned(),
                    ip_country: or(&k[1], NULL),
                    cloud_service_provider: or(&k[2], NO_CSP),
                    user_agent: k[3].clone(),
                    tag: or(&k[4], NULL),
                    data_downloads: downloads,
                    version_checks: c.version_checks,
                    pulls: downloads + c.version_checks,
                    unique_authenticated_users: u.accounts,
                    unique_unauthenticated_users: u.addresses,
                }
            })
            .collect())
    }

    /// Image pulls summary data, repository level: unique addresses, pulls by tag and by
    /// digest, version checks.
    pub async fn repository_summary(
        &self,
        namespace: &str,
        period: &Period,
    ) -> Result<Vec<RepositorySummaryRow>, HubError> {
        Ok(self
            .tally_with_pullers(namespace, period, TallyBy::Repository, "repo", |_| true)
            .await?
            .into_iter()
            .map(|(k, c, u)| RepositorySummaryRow {
                namespace: namespace.to_owned(),
                repository: short_name(&k[0]).to_owned(),
                unique_ip_addresses: u.addresses,
                pull_by_tag: c.pulls_by_tag,
                pull_by_digest: c.pulls_by_digest,
                version_check: c.version_checks,
                owner: namespace.to_owned(),
            })
            .collect())
    }

    /// Image pulls summary data, tag or digest level.
    pub async fn reference_summary(
        &self,
        namespace: &str,
        period: &Period,
    ) -> Result<Vec<ReferenceSummaryRow>, HubError> {
        Ok(self
            .tally_with_pullers(namespace, period, TallyBy::Reference, "ref", |_| true)
            .await?
            .into_iter()
            .map(|(k, c, u)| ReferenceSummaryRow {
                namespace: namespace.to_owned(),
                repository: short_name(&k[0]).to_owned(),
                reference: k[1].clone(),
                unique_ip_addresses: u.addresses,
                pull_by_tag: c.pulls_by_tag,
                pull_by_digest: c.pulls_by_digest,
                version_check: c.version_checks,
                owner: namespace.to_owned(),
            })
            .collect())
    }

    /// The Tracked companies report: the pulls from the company domains the namespace
    /// follows, per domain, country, cloud, tool, inferred use case and repository.
    pub async fn tracked_companies(
        &self,
        namespace: &str,
        period: &Period,
    ) -> Result<Vec<TrackedCompanyRow>, HubError> {
        let tracked: BTreeSet<String> = self
            .db()
            .tracked_domains(namespace)
            .await?
            .into_iter()
            .collect();
        if tracked.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .tally_with_pullers(namespace, period, TallyBy::Tracked, "track", |k| {
                tracked.contains(&k[0])
            })
            .await?
            .into_iter()
            .map(|(k, c, u)| {
                let downloads = c.pulls_by_tag + c.pulls_by_digest;
                TrackedCompanyRow {
                    date_granularity: period.granularity().to_string(),
                    date_reference: period.date_reference(),
                    publisher_name: namespace.to_owned(),
                    domain: k[0].clone(),
                    ip_country: or(&k[1], NULL),
                    cloud_service_provider: or(&k[2], NO_CSP),
                    user_agent: k[3].clone(),
                    inferred_use_case: k[4].clone(),
                    image_repository: k[5].clone(),
                    data_downloads: downloads,
                    version_checks: c.version_checks,
                    pulls: downloads + c.version_checks,
                    unique_authenticated_users: u.accounts,
                }
            })
            .collect())
    }

    /// The Technographic and Technographic companies reports: the images of any namespace
    /// pulled by at least [`MIN_PAIR_USERS`] of the same users as one of this namespace's
    /// images, and the company domains (business addresses, not personal, disposable or
    /// university domains) the two share.
    pub async fn technographic(
        &self,
        namespace: &str,
        period: &Period,
    ) -> Result<(Vec<TechnographicRow>, Vec<TechnographicCompanyRow>), HubError> {
        let name = period.name();
        let db = self.db();
        let pullers: HashMap<String, i64> = db
            .image_pullers(namespace, &name)
            .await?
            .into_iter()
            .collect();
        let mut own_domains: HashMap<String, BTreeSet<String>> = HashMap::new();
        for (image, domain) in db.image_domains(namespace, &name, None).await? {
            own_domains.entry(image).or_default().insert(domain);
        }
        let empty = BTreeSet::new();
        let mut pairs = Vec::new();
        let mut companies = Vec::new();
        for (image, paired, users) in db
            .paired_images(namespace, &name, MIN_PAIR_USERS as i64)
            .await?
        {
            let total = pullers.get(&image).copied().unwrap_or(0).max(0) as usize;
            let mine = own_domains.get(&image).unwrap_or(&empty);
            let theirs: BTreeSet<String> = if mine.is_empty() {
                BTreeSet::new()
            } else {
                let their_ns = paired.split_once('/').map_or(paired.as_str(), |(n, _)| n);
                db.image_domains(their_ns, &name, Some(&paired))
                    .await?
                    .into_iter()
                    .map(|(_, d)| d)
                    .collect()
            };
            let shared: Vec<&String> = mine.intersection(&theirs).collect();
            let users = users.max(0) as usize;
            pairs.push(TechnographicRow {
                date_granularity: period.granularity().to_string(),
                date_reference: period.date_reference(),
                publisher_id: namespace.to_owned(),
                publisher_name: namespace.to_owned(),
                dvpp_image: image.clone(),
                paired_image: paired.clone(),
                users: users as u64,
                total_pullers: total as u64,
                pct_users: percent(users, total),
                domains: shared.len() as u64,
                total_domains: mine.len() as u64,
                pct_domains: percent(shared.len(), mine.len()),
            });
            companies.extend(shared.into_iter().map(|d| TechnographicCompanyRow {
                date_granularity: period.granularity().to_string(),
                date_reference: period.date_reference(),
                publisher_name: namespace.to_owned(),
                domain: d.clone(),
                dvpp_image: image.clone(),
                paired_image: paired.clone(),
            }));
        }
        Ok((pairs, companies))
    }

    /// The complete weeks or months (as of `today`) with actions of `namespace` on some day
    /// in `[from, to)`, oldest first: what the exports list.
    pub async fn periods_with_data(
        &self,
        namespace: &str,
        granularity: wharf_analytics::report::Granularity,
        from: time::Date,
        to: time::Date,
        today: time::Date,
    ) -> Result<Vec<Period>, HubError> {
        let day = |d: time::Date| d.midnight().assume_utc().unix_timestamp() * 1000 / DAY_MS;
        let mut out: Vec<Period> = Vec::new();
        for d in self.db().active_days(namespace, day(from), day(to)).await? {
            let p = Period::containing(granularity, datetime(d * DAY_MS).date());
            if p.is_available(today) && out.last() != Some(&p) {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// Stores actions classified elsewhere (another registry's history, a test's fixture)
    /// with their rollups, after everything classified so far: the watermark moves just past
    /// the last of them. False when another node moved the watermark first.
    pub async fn import_actions(&self, actions: &[PullActionRow]) -> Result<bool, HubError> {
        let state = self.db().classifier_state().await?;
        let last = actions.iter().map(|a| a.at_ms + 1).max().unwrap_or(0);
        let to = state.until_ms.unwrap_or(0).max(last);
        let set = RowSet::from_actions(actions);
        Ok(self
            .db()
            .commit_actions(
                state.until_ms,
                to,
                &set.action_batches(),
                &rollup(&set),
                state.carry.as_deref().unwrap_or_default(),
            )
            .await?)
    }

    /// The company domains the namespace follows in its Tracked companies report.
    pub async fn tracked_domains(&self, namespace: &str) -> Result<Vec<String>, HubError> {
        Ok(self.db().tracked_domains(namespace).await?)
    }

    /// Follows a company domain (`example.com`) in the namespace's Tracked companies
    /// report; false when it already was. The domain is checked and lowercased.
    pub async fn track_domain(&self, namespace: &str, domain: &str) -> Result<bool, HubError> {
        let domain = valid_domain(domain)?;
        let followed = self.db().tracked_domains(namespace).await?;
        if followed.contains(&domain) {
            return Ok(false);
        }
        if followed.len() >= MAX_TRACKED_DOMAINS {
            return Err(HubError::InvalidInput(format!(
                "an organization follows at most {MAX_TRACKED_DOMAINS} domains; remove one first"
            )));
        }
        Ok(self.db().add_tracked_domain(namespace, &domain).await?)
    }

    /// Stops following a domain; false when it was not followed.
    pub async fn untrack_domain(&self, namespace: &str, domain: &str) -> Result<bool, HubError> {
        Ok(self
            .db()
            .remove_tracked_domain(namespace, &domain.to_ascii_lowercase())
            .await?)
    }
}

/// The reports a namespace can export, by the name the command line and the API use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    Summary,
    Trends,
    Technographic,
    TechnographicCompanies,
    TrackedCompanies,
    Raw,
    RepositorySummary,
    ReferenceSummary,
}

impl ReportKind {
    pub const ALL: [Self; 8] = [
        Self::Summary,
        Self::Trends,
        Self::Technographic,
        Self::TechnographicCompanies,
        Self::TrackedCompanies,
        Self::Raw,
        Self::RepositorySummary,
        Self::ReferenceSummary,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Summary => "summary",
            Self::Trends => "trends",
            Self::Technographic => "technographic",
            Self::TechnographicCompanies => "technographic-companies",
            Self::TrackedCompanies => "tracked-companies",
            Self::Raw => "raw",
            Self::RepositorySummary => "repository-summary",
            Self::ReferenceSummary => "reference-summary",
        }
    }

    /// The report of that name; `repo-summary` is the DVP Data API's name for the
    /// repository summary.
    pub fn from_name(name: &str) -> Option<Self> {
        if name == "repo-summary" {
            return Some(Self::RepositorySummary);
        }
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// A piece of a report's CSV and how many rows it holds.
#[derive(Debug)]
pub struct ReportChunk {
    pub bytes: Vec<u8>,
    pub rows: u64,
}

/// One interval of the DVP Data API's pull counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullsInPeriod {
    pub period: Period,
    /// The full repository name; None for the namespace as a whole.
    pub repo: Option<String>,
    /// Pulls by tag and by digest (version checks are not downloads).
    pub pulls: u64,
    pub version_checks: u64,
    /// Unique addresses, hashed with the period's key.
    pub unique_ips: u64,
}

fn csv_chunk<R: wharf_analytics::report::Report>(rows: Vec<R>) -> Result<ReportChunk, HubError> {
    let n = rows.len() as u64;
    let bytes = wharf_analytics::report::write_csv(Vec::new(), rows)
        .map_err(|e| HubError::Internal(format!("writing a report: {e}")))?;
    Ok(ReportChunk { bytes, rows: n })
}

impl Analytics {
    /// Writes a report of `namespace` for `period` as CSV into `tx`, a chunk at a time (the
    /// raw data a page of actions at a time, so millions of rows never sit in memory).
    /// Returns the number of rows; stops early, without error, if the receiver went away.
    pub async fn stream_report(
        &self,
        namespace: &str,
        kind: ReportKind,
        period: &Period,
        tx: tokio::sync::mpsc::Sender<ReportChunk>,
    ) -> Result<u64, HubError> {
        let chunk = match kind {
            ReportKind::Summary => csv_chunk(self.summary(namespace, period).await?)?,
            ReportKind::Trends => csv_chunk(self.trends(namespace, period).await?)?,
            ReportKind::Technographic => csv_chunk(self.technographic(namespace, period).await?.0)?,
            ReportKind::TechnographicCompanies => {
                csv_chunk(self.technographic(namespace, period).await?.1)?
            }
            ReportKind::TrackedCompanies => {
                csv_chunk(self.tracked_companies(namespace, period).await?)?
            }
            ReportKind::RepositorySummary => {
                csv_chunk(self.repository_summary(namespace, period).await?)?
            }
            ReportKind::ReferenceSummary => {
                csv_chunk(self.reference_summary(namespace, period).await?)?
            }
            ReportKind::Raw => return self.stream_raw(namespace, period, tx).await,
        };
        let rows = chunk.rows;
        let _ = tx.send(chunk).await;
        Ok(rows)
    }

    async fn stream_raw(
        &self,
        namespace: &str,
        period: &Period,
        tx: tokio::sync::mpsc::Sender<ReportChunk>,
    ) -> Result<u64, HubError> {
        let failed = |e: csv::Error| HubError::Internal(format!("writing a report: {e}"));
        let mut header = csv::Writer::from_writer(Vec::new());
        header
            .write_record(wharf_analytics::report::columns::RAW_PULLS)
            .map_err(failed)?;
        let bytes = header
            .into_inner()
            .map_err(|e| HubError::Internal(format!("writing a report: {e}")))?;
        if tx.send(ReportChunk { bytes, rows: 0 }).await.is_err() {
            return Ok(0);
        }
        let (from, to, _) = bounds(period);
        let mut after = 0;
        let mut n = 0;
        loop {
            let page = self
                .db()
                .action_batches(namespace, from / DAY_MS, to / DAY_MS, after, RAW_PAGE)
                .await?;
            let Some((last, _)) = page.last() else {
                return Ok(n);
            };
            after = *last;
            for (_, data) in page {
                let mut w = csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(Vec::new());
                let mut rows = 0;
                for a in decode_actions(&data)? {
                    if (from..to).contains(&a.at_ms) {
                        w.serialize(crate::analytics::raw_row(a)).map_err(failed)?;
                        rows += 1;
                    }
                }
                let bytes = w
                    .into_inner()
                    .map_err(|e| HubError::Internal(format!("writing a report: {e}")))?;
                n += rows;
                if tx.send(ReportChunk { bytes, rows }).await.is_err() {
                    return Ok(n);
                }
            }
        }
    }

    /// Pull counts of a namespace per period, for the namespace as a whole or per
    /// repository (`by_repo`), restricted to `repos` (full names) when given.
    pub async fn pulls_over(
        &self,
        namespace: &str,
        periods: &[Period],
        by_repo: bool,
        repos: Option<&[String]>,
    ) -> Result<Vec<PullsInPeriod>, HubError> {
        let mut out = Vec::new();
        for period in periods {
            if by_repo {
                let groups = self
                    .tally_with_pullers(namespace, period, TallyBy::Repository, "repo", |k| {
                        repos.is_none_or(|r| r.contains(&k[0]))
                    })
                    .await?;
                for (k, c, u) in groups {
                    out.push(PullsInPeriod {
                        period: *period,
                        unique_ips: u.addresses,
                        repo: Some(k[0].clone()),
                        pulls: c.pulls_by_tag + c.pulls_by_digest,
                        version_checks: c.version_checks,
                    });
                }
            } else {
                let ns_key = [namespace.to_owned()];
                let ns_count = self.counts_for(namespace, period, "ns", &ns_key).await?;
                let mut total = ActionCounts::default();
                for (_, c) in self.tally(namespace, period, TallyBy::Repository).await? {
                    total.pulls_by_tag += c.pulls_by_tag;
                    total.pulls_by_digest += c.pulls_by_digest;
                    total.version_checks += c.version_checks;
                }
                out.push(PullsInPeriod {
                    period: *period,
                    repo: None,
                    pulls: total.pulls_by_tag + total.pulls_by_digest,
                    version_checks: total.version_checks,
                    unique_ips: ns_count[0].addresses,
                });
            }
        }
        Ok(out)
    }

    /// The signature of a report download link: HMAC-SHA-256 over the path and the
    /// expiry time (seconds since the epoch), with a key every node shares.
    pub fn sign_download(&self, path: &str, expires: i64) -> String {
        use hmac::{KeyInit as _, Mac as _};
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(self.download_key())
            .expect("HMAC takes keys of any length");
        mac.update(path.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Whether a download link's signature is right and it has not expired.
    pub fn verify_download(&self, path: &str, expires: i64, signature: &str, now: i64) -> bool {
        let expected = self.sign_download(path, expires);
        expires >= now
            && expected.len() == signature.len()
            && expected
                .bytes()
                .zip(signature.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

/// How many company domains one organization may follow.
pub(crate) const MAX_TRACKED_DOMAINS: usize = 200;

/// A DNS name of at least two labels, letters, digits and hyphens, lowercased.
fn valid_domain(domain: &str) -> Result<String, HubError> {
    let d = domain.trim().to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if d.len() > 253 || d.split('.').count() < 2 || !d.split('.').all(label_ok) {
        return Err(HubError::InvalidInput(format!(
            "{:?} is not a domain name: give one like example.com (letters, digits and \
             hyphens, labels separated by dots)",
            domain.chars().take(64).collect::<String>()
        )));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_checked_and_lowercased() {
        assert_eq!(valid_domain(" Example.COM ").unwrap(), "example.com");
        for bad in [
            "localhost",
            "a..b",
            "-a.com",
            "a_b.com",
            "",
            "x.",
            &"a".repeat(64),
        ] {
            assert!(valid_domain(bad).is_err(), "{bad:?}");
        }
    }

    fn action(user: &str, ip: u8, tag: &str, kind: &str) -> PullActionRow {
        PullActionRow {
            at_ms: 1_763_942_400_000, // 2025-11-24, a Monday
            namespace: "acme".into(),
            repo: "acme/app".into(),
            tag: tag.into(),
            digest: format!("sha256:{}", "a".repeat(64)),
            action: kind.into(),
            method: "GET".into(),
            user_name: user.into(),
            ip_week: vec![ip, 1],
            ip_month: vec![ip, 2],
            tool: "docker".into(),
            tool_version: "27.5.1".into(),
            country: "DE".into(),
            cloud: String::new(),
            ip_type: "business".into(),
            domain: "example.com".into(),
        }
    }

    #[test]
    fn a_rollup_counts_each_group_once_per_day_and_each_puller_once_per_period() {
        let actions = [
            action("", 1, "1.0", "pull_by_tag"),
            action("", 1, "1.0", "pull_by_tag"),
            action("", 2, "1.0", "version_check"),
            action("bob", 1, "", "pull_by_digest"),
        ];
        let r = rollup(&RowSet::from_actions(&actions));
        // Two groups a day: the tag 1.0, and the digest pulled without a tag.
        assert_eq!(r.daily.len(), 2);
        let by_tag = r.daily.iter().find(|(k, _)| k.tag == "1.0").unwrap().1;
        assert_eq!(
            *by_tag,
            ActionCounts {
                pulls_by_tag: 2,
                pulls_by_digest: 0,
                version_checks: 1
            }
        );
        let members = |period: &str, kind: &str, key: &str| {
            let grp = group_id("acme", period, kind, key);
            r.uniques.iter().filter(|u| u.grp == grp).count()
        };
        // Two addresses pulled the repository, in the week and in the month.
        assert_eq!(members("2025-W48", "repo", "acme/app"), 2);
        assert_eq!(members("2025-11", "repo", "acme/app"), 2);
        assert_eq!(members("2025-W48", "ns", "acme"), 2);
        // The tag 1.0 by two addresses; the digest pulled without a tag by bob's address.
        assert_eq!(members("2025-W48", "ref", &key(&["acme/app", "1.0"])), 2);
        // Trends counts bob as an account: odd ids are accounts.
        let trend = group_id(
            "acme",
            "2025-W48",
            "trend",
            &key(&["acme/app", "DE", "", "docker", ""]),
        );
        let bob: Vec<_> = r.uniques.iter().filter(|u| u.grp == trend).collect();
        assert_eq!(bob.len(), 1);
        assert_eq!(bob[0].who & 1, 1);
        // Pullers of the image: two anonymous addresses and bob, per period.
        let week_pullers = r.pullers.iter().filter(|p| p.period == "2025-W48").count();
        assert_eq!(week_pullers, 3);
        assert_eq!(
            r.domains.len(),
            2,
            "example.com in the week and in the month"
        );
        // Only signed-in pullers are tracked.
        let track = group_id(
            "acme",
            "2025-W48",
            "track",
            &key(&["example.com", "DE", "", "docker", "Local Dev", "acme/app"]),
        );
        assert_eq!(r.uniques.iter().filter(|u| u.grp == track).count(), 1);
    }

    /// `n` signed-in users at `domain` (business addresses) pulling `repo` by tag.
    fn pulls(repo: &str, users: std::ops::Range<u8>, domain: &str) -> Vec<PullActionRow> {
        users
            .map(|u| {
                let mut a = action(&format!("user{u}"), u, "1.0", "pull_by_tag");
                a.namespace = repo.split('/').next().unwrap().into();
                a.repo = repo.into();
                a.domain = domain.into();
                a
            })
            .collect()
    }

    async fn store(a: &Analytics, actions: &[PullActionRow]) {
        assert!(a.import_actions(actions).await.unwrap());
    }

    #[tokio::test]
    async fn technographic_and_tracked_companies_come_from_the_rollups() {
        let (_dir, a) = crate::analytics::tests::open().await;
        let week = Period::week_of(datetime(1_763_942_400_000).date());
        // Twelve users pull acme/app; ten of them (three at example.com, two at gmail.com, a
        // personal domain) also pull other/db; one pulls other/cache.
        let mut actions = pulls("acme/app", 0..3, "example.com");
        actions.extend(pulls("acme/app", 3..12, ""));
        actions.extend(pulls("other/db", 0..3, "example.com"));
        actions.extend(pulls("other/db", 3..5, "gmail.com"));
        actions.extend(pulls("other/db", 5..10, ""));
        actions.extend(pulls("other/cache", 0..1, "example.com"));
        for (repo, private) in [
            ("acme/app", false),
            ("other/db", false),
            ("other/cache", true),
        ] {
            let name: wharf_oci::RepoName = repo.parse().unwrap();
            a.db().set_repo_private(&name, private).await.unwrap();
        }
        // Ten users of acme/app also pull other/secret, a private repository: never named.
        actions.extend(pulls("other/secret", 0..10, ""));
        let secret: wharf_oci::RepoName = "other/secret".parse().unwrap();
        a.db().set_repo_private(&secret, true).await.unwrap();
        store(&a, &actions[..20]).await;
        // A second run adds to the same rollups.
        store(&a, &actions[20..]).await;
        let (pairs, companies) = a.technographic("acme", &week).await.unwrap();
        assert_eq!(pairs.len(), 1, "{pairs:?}");
        let p = &pairs[0];
        assert_eq!(
            (p.dvpp_image.as_str(), p.paired_image.as_str()),
            ("acme/app", "other/db")
        );
        assert_eq!((p.users, p.total_pullers, p.pct_users), (10, 12, 83.33));
        assert_eq!((p.domains, p.total_domains, p.pct_domains), (1, 1, 100.0));
        assert_eq!(companies.len(), 1);
        assert_eq!(companies[0].domain, "example.com");
        // other/db's own report pairs it back with acme/app (10 common users of its 10).
        // other's own report may name its own private image: other/db pairs with acme/app
        // and other/secret (10 common users each), other/secret with acme/app and other/db.
        let (theirs, _) = a.technographic("other", &week).await.unwrap();
        let named: Vec<_> = theirs
            .iter()
            .map(|p| (p.dvpp_image.as_str(), p.paired_image.as_str(), p.users))
            .collect();
        assert_eq!(
            named,
            [
                ("other/db", "acme/app", 10),
                ("other/db", "other/secret", 10),
                ("other/secret", "acme/app", 10),
                ("other/secret", "other/db", 10)
            ]
        );

        // Nothing is tracked until the organization says so.
        assert!(
            a.tracked_companies("other", &week)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(a.track_domain("other", "Example.COM").await.unwrap());
        assert!(!a.track_domain("other", "example.com").await.unwrap());
        assert!(a.track_domain("other", "not a domain").await.is_err());
        let tracked = a.tracked_companies("other", &week).await.unwrap();
        assert_eq!(tracked.len(), 2, "{tracked:?}");
        let db = tracked
            .iter()
            .find(|t| t.image_repository == "other/db")
            .unwrap();
        assert_eq!(
            (db.data_downloads, db.pulls, db.unique_authenticated_users),
            (3, 3, 3)
        );
        assert_eq!(db.inferred_use_case, "Local Dev");
        assert_eq!(db.user_agent, "docker");
        assert!(a.untrack_domain("other", "example.com").await.unwrap());
        assert!(
            a.tracked_companies("other", &week)
                .await
                .unwrap()
                .is_empty()
        );

        // The DVP pull counts: downloads and unique addresses per repository and overall.
        let by_repo = a.pulls_over("other", &[week], true, None).await.unwrap();
        let counts: Vec<_> = by_repo
            .iter()
            .map(|p| (p.repo.clone().unwrap(), p.pulls, p.unique_ips))
            .collect();
        assert_eq!(
            counts,
            [
                ("other/cache".into(), 1, 1),
                ("other/db".into(), 10, 10),
                ("other/secret".into(), 10, 10)
            ]
        );
        let whole = a.pulls_over("other", &[week], false, None).await.unwrap();
        assert_eq!((whole[0].pulls, whole[0].unique_ips), (21, 10));
    }

    #[tokio::test]
    async fn reports_stream_as_csv_and_download_links_are_signed() {
        let (_dir, a) = crate::analytics::tests::open().await;
        let week = Period::week_of(datetime(1_763_942_400_000).date());
        store(&a, &pulls("acme/app", 0..3, "")).await;
        for kind in ReportKind::ALL {
            let (tx, mut rx) = tokio::sync::mpsc::channel(8);
            let rows = a.stream_report("acme", kind, &week, tx).await.unwrap();
            let mut text = Vec::new();
            while let Some(c) = rx.recv().await {
                text.extend(c.bytes);
            }
            let text = String::from_utf8(text).unwrap();
            let header = text.lines().next().unwrap_or_default().to_owned();
            assert_eq!(
                text.lines().count() as u64,
                rows + 1,
                "{}: {text}",
                kind.name()
            );
            assert!(header.split(',').count() >= 5, "{}: {header}", kind.name());
            assert_eq!(ReportKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(
            ReportKind::from_name("repo-summary"),
            Some(ReportKind::RepositorySummary)
        );
        let sig = a.sign_download("/x", 100);
        assert!(a.verify_download("/x", 100, &sig, 99));
        assert!(!a.verify_download("/x", 100, &sig, 101), "expired");
        assert!(!a.verify_download("/y", 100, &sig, 99), "another path");
        assert!(!a.verify_download("/x", 101, &sig, 99), "another expiry");
        assert!(!a.verify_download("/x", 100, "00", 99));
    }
}
