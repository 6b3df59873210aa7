//! The analytics dashboard's series: pulls, version checks and unique addresses per week or
//! month and per repository, over the last 3, 6 or 12 months up to the current period.

use std::collections::HashMap;

use time::Date;
use wharf_analytics::report::{Granularity, Period};
use wharf_db::SeriesTally;

use crate::HubError;
use crate::analytics::{Analytics, bounds};
use crate::analytics_access::MAX_SERIES_REPOS;

/// The ranges the dashboard offers, in months.
pub const SERIES_MONTHS: [u8; 3] = [3, 6, 12];

/// One repository's numbers in one period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesPoint {
    pub period: Period,
    /// The repository's name without the namespace.
    pub repo: String,
    /// Pulls by tag plus pulls by digest.
    pub pulls: u64,
    pub pulls_by_tag: u64,
    pub pulls_by_digest: u64,
    pub version_checks: u64,
    /// Unique addresses in the period (weekly or monthly hashes, as the period is).
    pub unique_ips: u64,
}

impl Analytics {
    /// The series of `namespace` for the dashboard, as of today: every period of the last
    /// `months` months (3, 6 or 12) ending with the current, unfinished one, for each of
    /// `repos` (names without the namespace; at most 50), or for every repository with
    /// actions in the range (the 50 most pulled) when `repos` is empty. Periods without
    /// actions count zero. Ordered by period, then repository.
    pub async fn pull_series(
        &self,
        namespace: &str,
        granularity: Granularity,
        months: u8,
        repos: &[String],
    ) -> Result<Vec<SeriesPoint>, HubError> {
        let today = time::OffsetDateTime::now_utc().date();
        self.pull_series_on(today, namespace, granularity, months, repos)
            .await
    }

    /// [`Analytics::pull_series`] as of `today`.
    pub async fn pull_series_on(
        &self,
        today: Date,
        namespace: &str,
        granularity: Granularity,
        months: u8,
        repos: &[String],
    ) -> Result<Vec<SeriesPoint>, HubError> {
        let periods = series_periods(today, granularity, months)?;
        if repos.len() > MAX_SERIES_REPOS {
            return Err(HubError::InvalidInput(format!(
                "{} repositories asked for; choose at most {MAX_SERIES_REPOS}",
                repos.len()
            )));
        }
        let full: Vec<String> = repos.iter().map(|r| format!("{namespace}/{r}")).collect();
        let mut edges: Vec<i64> = periods.iter().map(|p| bounds(p).0).collect();
        if let Some(last) = periods.last() {
            edges.push(bounds(last).1);
        }
        let mut tallies = self.db().action_series(namespace, &edges, &full).await?;
        let grps: Vec<i64> = tallies
            .iter()
            .map(|t| {
                let period = periods.get(t.period).map(Period::name).unwrap_or_default();
                crate::analytics_actions::group_id(namespace, &period, "repo", &t.repo)
            })
            .collect();
        let uniques = self.db().unique_counts(&grps).await?;
        for (t, g) in tallies.iter_mut().zip(&grps) {
            t.unique_ips = uniques.get(g).map_or(0, |u| u.addresses);
        }
        let mut names: Vec<String> = if repos.is_empty() {
            // The most pulled first, to keep the 50 that matter; then by name.
            let mut sums: HashMap<&str, u64> = HashMap::new();
            for t in &tallies {
                *sums.entry(short_name(&t.repo)).or_default() +=
                    t.pulls_by_tag + t.pulls_by_digest + t.version_checks;
            }
            let mut totals: Vec<(String, u64)> =
                sums.into_iter().map(|(n, c)| (n.to_owned(), c)).collect();
            totals.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            totals
                .into_iter()
                .take(MAX_SERIES_REPOS)
                .map(|(n, _)| n)
                .collect()
        } else {
            repos.to_vec()
        };
        names.sort();
        names.dedup();
        let by_key: HashMap<(usize, &str), &SeriesTally> = tallies
            .iter()
            .map(|t| ((t.period, short_name(&t.repo)), t))
            .collect();
        let mut points = Vec::with_capacity(periods.len() * names.len());
        for (i, period) in periods.iter().enumerate() {
            for name in &names {
                let t = by_key.get(&(i, name.as_str()));
                let (tag, digest, checks, ips) = t.map_or((0, 0, 0, 0), |t| {
                    (
                        t.pulls_by_tag,
                        t.pulls_by_digest,
                        t.version_checks,
                        t.unique_ips,
                    )
                });
                points.push(SeriesPoint {
                    period: *period,
                    repo: name.clone(),
                    pulls: tag + digest,
                    pulls_by_tag: tag,
                    pulls_by_digest: digest,
                    version_checks: checks,
                    unique_ips: ips,
                });
            }
        }
        Ok(points)
    }
}

/// The periods of the last `months` months ending with the one holding `today`, oldest first.
pub fn series_periods(
    today: Date,
    granularity: Granularity,
    months: u8,
) -> Result<Vec<Period>, HubError> {
    if !SERIES_MONTHS.contains(&months) {
        return Err(HubError::InvalidInput(format!(
            "range {months} is not offered; choose 3, 6 or 12 months"
        )));
    }
    // As of the day after the current period, the current period is the latest one.
    let current = Period::containing(granularity, today);
    Ok(Period::recent(granularity, current.end(), months))
}

fn short_name(repo: &str) -> &str {
    repo.split_once('/').map_or(repo, |(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn the_range_ends_with_the_current_period() {
        let months = series_periods(date!(2026 - 11 - 18), Granularity::Monthly, 3).unwrap();
        let names: Vec<_> = months.iter().map(Period::name).collect();
        assert_eq!(names, ["2026-09", "2026-10", "2026-11"]);
        let weeks = series_periods(date!(2026 - 11 - 18), Granularity::Weekly, 3).unwrap();
        assert_eq!(weeks.last().unwrap().name(), "2026-W47");
        assert!((13..=14).contains(&weeks.len()), "{}", weeks.len());
        assert_eq!(
            series_periods(date!(2026 - 11 - 18), Granularity::Monthly, 12)
                .unwrap()
                .len(),
            12
        );
        assert!(series_periods(date!(2026 - 11 - 18), Granularity::Monthly, 4).is_err());
    }
}

#[cfg(test)]
mod store_tests {
    use super::*;
    use crate::analytics::AnalyticsConfig;
    use time::macros::{date, datetime};
    use wharf_db::{Db, PullActionRow};

    #[tokio::test]
    async fn actions_count_in_their_own_week_and_month_at_the_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("wharf.db")).await.unwrap();
        let a = Analytics::open(db.clone(), AnalyticsConfig::default())
            .await
            .unwrap();
        let action = |at: time::PrimitiveDateTime, ns: &str, repo: &str, action: &str, ip: u8| {
            PullActionRow {
                at_ms: (at.assume_utc().unix_timestamp_nanos() / 1_000_000) as i64,
                namespace: ns.into(),
                repo: format!("{ns}/{repo}"),
                action: action.into(),
                ip_week: vec![ip],
                ip_month: vec![ip],
                ..PullActionRow::default()
            }
        };
        let rows = [
            // The last millisecond of Sunday (week 46) and the first of Monday (week 47).
            action(
                datetime!(2026-11-15 23:59:59.999),
                "acme",
                "app",
                "pull_by_tag",
                1,
            ),
            action(
                datetime!(2026-11-16 00:00),
                "acme",
                "app",
                "pull_by_digest",
                2,
            ),
            action(
                datetime!(2026-11-16 01:00),
                "acme",
                "app",
                "version_check",
                2,
            ),
            // The last minute of October.
            action(datetime!(2026-10-31 23:59), "acme", "web", "pull_by_tag", 3),
            // Another namespace: never counted; the week after the weekly range (still in
            // November).
            action(
                datetime!(2026-11-17 12:00),
                "other",
                "app",
                "pull_by_tag",
                4,
            ),
            action(datetime!(2026-11-23 00:00), "acme", "app", "pull_by_tag", 5),
        ];
        assert!(a.import_actions(&rows).await.unwrap());
        let today = date!(2026 - 11 - 18);
        let weekly = a
            .pull_series_on(today, "acme", Granularity::Weekly, 3, &[])
            .await
            .unwrap();
        let at = |points: &[SeriesPoint], period: &str, repo: &str| {
            points
                .iter()
                .find(|p| p.period.name() == period && p.repo == repo)
                .map(|p| (p.pulls, p.version_checks, p.unique_ips))
                .unwrap_or_else(|| panic!("no {period} {repo}"))
        };
        assert_eq!(at(&weekly, "2026-W47", "app"), (1, 1, 1));
        assert_eq!(at(&weekly, "2026-W46", "app"), (1, 0, 1));
        assert_eq!(at(&weekly, "2026-W44", "web"), (1, 0, 1));
        assert_eq!(at(&weekly, "2026-W45", "web"), (0, 0, 0));
        assert_eq!(weekly.iter().map(|p| p.pulls).sum::<u64>(), 3);
        assert_eq!(weekly.last().unwrap().period.name(), "2026-W47");

        let monthly = a
            .pull_series_on(today, "acme", Granularity::Monthly, 3, &[])
            .await
            .unwrap();
        assert_eq!(monthly.len(), 6, "3 months × 2 repositories");
        assert_eq!(at(&monthly, "2026-11", "app"), (3, 1, 3));
        assert_eq!(at(&monthly, "2026-10", "web"), (1, 0, 1));
        assert_eq!(at(&monthly, "2026-09", "app"), (0, 0, 0));

        let web_only = a
            .pull_series_on(today, "acme", Granularity::Monthly, 6, &["web".into()])
            .await
            .unwrap();
        assert_eq!(web_only.len(), 6);
        assert!(web_only.iter().all(|p| p.repo == "web"));

        let too_many: Vec<String> = (0..=MAX_SERIES_REPOS).map(|i| format!("r{i}")).collect();
        assert!(matches!(
            a.pull_series_on(today, "acme", Granularity::Weekly, 3, &too_many)
                .await,
            Err(HubError::InvalidInput(_))
        ));
        assert!(matches!(
            a.pull_series_on(today, "acme", Granularity::Weekly, 2, &[])
                .await,
            Err(HubError::InvalidInput(_))
        ));
    }
}
