//! The analytics dashboard's series: pulls, version checks and unique addresses per week or
//! month and per repository, over the last 3, 6 or 12 months up to the current period.

use std::collections::HashMap;

use time::Date;
use wharf_analytics::report::rows::RawPullRow;
use wharf_analytics::report::{Granularity, Period};
use wharf_db::SeriesTally;

use crate::HubError;
use crate::analytics::{Analytics, bounds, raw_row};
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
        let tallies = self
            .db()
            .action_series(
                namespace,
                &edges,
                &full,
                granularity == Granularity::Monthly,
            )
            .await?;
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

impl Analytics {
    /// One page of the raw data export of `namespace` for `period`: the rows after the
    /// action `after` (0 for the first page) and where the next page starts, None after the
    /// last. The web download streams page by page, so a slow client holds one page.
    pub async fn raw_pulls_page(
        &self,
        namespace: &str,
        period: &Period,
        after: i64,
    ) -> Result<(Vec<RawPullRow>, Option<i64>), HubError> {
        let (from, to, _) = bounds(period);
        let page = self
            .db()
            .actions_page(namespace, from, to, after, RAW_WEB_PAGE)
            .await?;
        let next = (page.len() as i64 == RAW_WEB_PAGE)
            .then(|| page.last().map(|(id, _)| *id))
            .flatten();
        Ok((page.into_iter().map(|(_, a)| raw_row(a)).collect(), next))
    }
}

/// Actions per page of a streamed raw data download.
const RAW_WEB_PAGE: i64 = 5_000;

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
