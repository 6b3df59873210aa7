//! Report rows computed in memory from a period's classified, enriched pulls (one
//! [`PullRecord`] per action). The database-backed job loads the records and writes the rows.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use time::OffsetDateTime;

use super::columns::NULL;
use super::period::{Period, format_date};
use super::rows::*;
use crate::agent::{Tool, inferred_use_case};
use crate::classify::{ActionKind, Method};
use crate::enrich::{CloudProvider, CountryCode, IpType, NO_CSP};
use crate::privacy::{IpHash, excluded_domain};

/// The technographic reports only list image pairs with at least this many unique users.
pub const MIN_PAIR_USERS: usize = 10;

/// One classified pull action with what was learned about its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PullRecord<'a> {
    pub time: OffsetDateTime,
    /// The full repository name, `namespace/name`.
    pub repository: &'a str,
    pub kind: ActionKind,
    /// The first request's method.
    pub method: Method,
    pub tag: Option<&'a str>,
    pub digest: &'a str,
    pub country: Option<CountryCode>,
    pub cloud: Option<CloudProvider>,
    pub ip_type: Option<IpType>,
    pub domain: Option<&'a str>,
    pub tool: Tool,
    pub tool_version: Option<&'a str>,
    /// The client address, hashed with the period's key.
    pub ip_hash: IpHash,
    /// The authenticated account, if any.
    pub user: Option<&'a str>,
}

impl<'a> PullRecord<'a> {
    /// The namespace (organization) owning the repository: `PUBLISHER_NAME`, `Owner`.
    pub fn namespace(&self) -> &'a str {
        self.repository
            .split_once('/')
            .map_or(self.repository, |(ns, _)| ns)
    }

    /// The repository name within its namespace (the raw data's `Repository`).
    pub fn name(&self) -> &'a str {
        self.repository
            .split_once('/')
            .map_or(self.repository, |(_, name)| name)
    }

    /// Who pulled: the account if signed in, else the hashed address.
    fn puller(&self) -> Puller<'a> {
        match self.user {
            Some(user) => Puller::Account(user),
            None => Puller::Address(self.ip_hash),
        }
    }

    /// The company domain, if the address belongs to a business whose domain is not a
    /// personal, disposable or university one.
    fn company_domain(&self) -> Option<&'a str> {
        let domain = self.domain.filter(|d| !d.is_empty())?;
        (self.ip_type == Some(IpType::Business) && excluded_domain(domain).is_none())
            .then_some(domain)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Puller<'a> {
    Account(&'a str),
    Address(IpHash),
}

/// Download/check counts and unique pullers of a group of pulls.
#[derive(Debug, Default)]
struct Tally<'a> {
    downloads: u64,
    checks: u64,
    by_tag: u64,
    by_digest: u64,
    accounts: HashSet<&'a str>,
    anonymous: HashSet<IpHash>,
    addresses: HashSet<IpHash>,
}

impl<'a> Tally<'a> {
    fn add(&mut self, record: &PullRecord<'a>) {
        match record.kind {
            ActionKind::VersionCheck => self.checks += 1,
            ActionKind::PullByTag => self.by_tag += 1,
            ActionKind::PullByDigest => self.by_digest += 1,
        }
        if record.kind.is_download() {
            self.downloads += 1;
        }
        match record.user {
            Some(user) => {
                self.accounts.insert(user);
            }
            None => {
                self.anonymous.insert(record.ip_hash);
            }
        }
        self.addresses.insert(record.ip_hash);
    }
}

fn len(set: &HashSet<impl std::hash::Hash + Eq>) -> u64 {
    set.len() as u64
}

fn country(record: &PullRecord<'_>) -> String {
    record
        .country
        .map_or_else(|| NULL.to_owned(), |c| c.to_string())
}

fn csp(record: &PullRecord<'_>) -> &'static str {
    record.cloud.map_or(NO_CSP, CloudProvider::as_str)
}

/// Summary report rows: per repository, per `repository:tag` and per `repository@digest`.
pub fn summary(period: &Period, records: &[PullRecord<'_>]) -> Vec<SummaryRow> {
    let mut groups: BTreeMap<(&str, u8, String), Tally<'_>> = BTreeMap::new();
    for r in records {
        let ns = r.namespace();
        groups
            .entry((ns, 0, r.repository.to_owned()))
            .or_default()
            .add(r);
        if let Some(tag) = r.tag {
            groups
                .entry((ns, 1, format!("{}:{tag}", r.repository)))
                .or_default()
                .add(r);
        }
        groups
            .entry((ns, 2, format!("{}@{}", r.repository, r.digest)))
            .or_default()
            .add(r);
    }
    groups
        .into_iter()
        .map(|((publisher, level, reference), t)| SummaryRow {
            date_granularity: period.granularity().to_string(),
            date_reference: period.date_reference(),
            publisher_name: publisher.to_owned(),
            level: ["repository", "tag", "digest"][usize::from(level)].to_owned(),
            reference,
            data_downloads: t.downloads,
            version_checks: t.checks,
            event_count: t.downloads + t.checks,
        })
        .collect()
}

/// Trends report rows: per repository, country, cloud provider, user agent and tag.
pub fn trends(period: &Period, records: &[PullRecord<'_>]) -> Vec<TrendsRow> {
    let mut groups: BTreeMap<_, Tally<'_>> = BTreeMap::new();
    for r in records {
        let key = (
            r.repository,
            country(r),
            csp(r),
            r.tool.as_str(),
            r.tag.unwrap_or(NULL),
        );
        groups.entry(key).or_default().add(r);
    }
    groups
        .into_iter()
        .map(|((repository, ip_country, csp, tool, tag), t)| {
            let namespace = repository.split_once('/').map_or(repository, |(ns, _)| ns);
            TrendsRow {
                date_granularity: period.granularity().to_string(),
                date_reference: period.date_reference(),
                publisher_name: namespace.to_owned(),
                image_repository: repository.to_owned(),
                namespace: namespace.to_owned(),
                ip_country,
                cloud_service_provider: csp.to_owned(),
                user_agent: tool.to_owned(),
                tag: tag.to_owned(),
                data_downloads: t.downloads,
                version_checks: t.checks,
                pulls: t.downloads + t.checks,
                unique_authenticated_users: len(&t.accounts),
                unique_unauthenticated_users: len(&t.anonymous),
            }
        })
        .collect()
}

/// Tracked companies report rows for the pulls whose domain is tracked, per domain, country,
/// cloud provider, user agent, inferred use case and repository.
pub fn tracked_companies(
    period: &Period,
    records: &[PullRecord<'_>],
    is_tracked: impl Fn(&str) -> bool,
) -> Vec<TrackedCompanyRow> {
    let mut groups: BTreeMap<_, Tally<'_>> = BTreeMap::new();
    for r in records {
        let Some(domain) = r.domain.filter(|d| is_tracked(d)) else {
            continue;
        };
        let use_case = inferred_use_case(r.tool, r.cloud.is_some());
        let key = (
            r.namespace(),
            domain,
            country(r),
            csp(r),
            r.tool.as_str(),
            use_case.as_str(),
            r.repository,
        );
        groups.entry(key).or_default().add(r);
    }
    groups
        .into_iter()
        .map(
            |((publisher, domain, ip_country, csp, tool, use_case, repository), t)| {
                TrackedCompanyRow {
                    date_granularity: period.granularity().to_string(),
                    date_reference: period.date_reference(),
                    publisher_name: publisher.to_owned(),
                    domain: domain.to_owned(),
                    ip_country,
                    cloud_service_provider: csp.to_owned(),
                    user_agent: tool.to_owned(),
                    inferred_use_case: use_case.to_owned(),
                    image_repository: repository.to_owned(),
                    data_downloads: t.downloads,
                    version_checks: t.checks,
                    pulls: t.downloads + t.checks,
                    unique_authenticated_users: len(&t.accounts),
                }
            },
        )
        .collect()
}

/// `part` of `whole` as a percentage with two decimals (0 when `whole` is 0).
pub fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    (part as f64 * 10_000.0 / whole as f64).round() / 100.0
}

/// Technographic and Technographic companies rows for a publisher's DVP images. `records`
/// holds the period's pulls of every image (the paired images are other publishers' too).
/// A pair is listed when at least [`MIN_PAIR_USERS`] users pulled both images; domains count
/// only business addresses with a company domain (not personal, disposable or university).
pub fn technographic(
    period: &Period,
    publisher_id: &str,
    publisher_name: &str,
    dvp_images: &[&str],
    records: &[PullRecord<'_>],
) -> (Vec<TechnographicRow>, Vec<TechnographicCompanyRow>) {
    let mut users: HashMap<&str, HashSet<Puller<'_>>> = HashMap::new();
    let mut domains: HashMap<&str, HashSet<&str>> = HashMap::new();
    for r in records {
        users.entry(r.repository).or_default().insert(r.puller());
        if let Some(domain) = r.company_domain() {
            domains.entry(r.repository).or_default().insert(domain);
        }
    }
    let empty_users = HashSet::new();
    let empty_domains = HashSet::new();
    let images: BTreeSet<&str> = users.keys().copied().collect();
    let mut pairs = Vec::new();
    let mut companies = Vec::new();
    for &dvp in dvp_images {
        let dvp_users = users.get(dvp).unwrap_or(&empty_users);
        let dvp_domains = domains.get(dvp).unwrap_or(&empty_domains);
        for &paired in images.iter().filter(|&&image| image != dvp) {
            let both = users[paired].intersection(dvp_users).count();
            if both < MIN_PAIR_USERS {
                continue;
            }
            let paired_domains = domains.get(paired).unwrap_or(&empty_domains);
            let shared: BTreeSet<&str> =
                dvp_domains.intersection(paired_domains).copied().collect();
            pairs.push(TechnographicRow {
                date_granularity: period.granularity().to_string(),
                date_reference: period.date_reference(),
                publisher_id: publisher_id.to_owned(),
                publisher_name: publisher_name.to_owned(),
                dvpp_image: dvp.to_owned(),
                paired_image: paired.to_owned(),
                users: both as u64,
                total_pullers: dvp_users.len() as u64,
                pct_users: percent(both, dvp_users.len()),
                domains: shared.len() as u64,
                total_domains: dvp_domains.len() as u64,
                pct_domains: percent(shared.len(), dvp_domains.len()),
            });
            companies.extend(shared.into_iter().map(|domain| TechnographicCompanyRow {
                date_granularity: period.granularity().to_string(),
                date_reference: period.date_reference(),
                publisher_name: publisher_name.to_owned(),
                domain: domain.to_owned(),
                dvpp_image: dvp.to_owned(),
                paired_image: paired.to_owned(),
            }));
        }
    }
    (pairs, companies)
}

/// One raw data row. Unknown values are empty; `Timestamp` is UTC `YYYY-MM-DD HH:MM:SS`.
pub fn raw_pull(record: &PullRecord<'_>) -> RawPullRow {
    let t = record.time.to_offset(time::UtcOffset::UTC);
    RawPullRow {
        action: record.kind.as_str().to_owned(),
        action_day: format_date(t.date()),
        country: record.country.map(|c| c.to_string()).unwrap_or_default(),
        digest: record.digest.to_owned(),
        http_method: record.method.as_str().to_owned(),
        host: record
            .cloud
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default(),
        namespace: record.namespace().to_owned(),
        reference: record.tag.unwrap_or(record.digest).to_owned(),
        repository: record.name().to_owned(),
        tag: record.tag.unwrap_or_default().to_owned(),
        timestamp: format!(
            "{} {:02}:{:02}:{:02}",
            format_date(t.date()),
            t.hour(),
            t.minute(),
            t.second()
        ),
        ip_type: record
            .ip_type
            .map(|t| t.as_str().to_owned())
            .unwrap_or_default(),
        user_agent_tool: record.tool.as_str().to_owned(),
        user_agent_version: record.tool_version.unwrap_or_default().to_owned(),
        domain: record.domain.unwrap_or_default().to_owned(),
        owner: record.namespace().to_owned(),
    }
}

/// Image pulls summary data, repository level.
pub fn repository_summary(records: &[PullRecord<'_>]) -> Vec<RepositorySummaryRow> {
    let mut groups: BTreeMap<&str, Tally<'_>> = BTreeMap::new();
    for r in records {
        groups.entry(r.repository).or_default().add(r);
    }
    groups
        .into_iter()
        .map(|(repository, t)| {
            let (namespace, name) = repository
                .split_once('/')
                .unwrap_or((repository, repository));
            RepositorySummaryRow {
                namespace: namespace.to_owned(),
                repository: name.to_owned(),
                unique_ip_addresses: len(&t.addresses),
                pull_by_tag: t.by_tag,
                pull_by_digest: t.by_digest,
                version_check: t.checks,
                owner: namespace.to_owned(),
            }
        })
        .collect()
}

/// Image pulls summary data, tag or digest level: per tag for pulls that named one, per
/// digest for the others.
pub fn reference_summary(records: &[PullRecord<'_>]) -> Vec<ReferenceSummaryRow> {
    let mut groups: BTreeMap<(&str, &str), Tally<'_>> = BTreeMap::new();
    for r in records {
        let reference = r.tag.unwrap_or(r.digest);
        groups.entry((r.repository, reference)).or_default().add(r);
    }
    groups
        .into_iter()
        .map(|((repository, reference), t)| {
            let (namespace, name) = repository
                .split_once('/')
                .unwrap_or((repository, repository));
            ReferenceSummaryRow {
                namespace: namespace.to_owned(),
                repository: name.to_owned(),
                reference: reference.to_owned(),
                unique_ip_addresses: len(&t.addresses),
                pull_by_tag: t.by_tag,
                pull_by_digest: t.by_digest,
                version_check: t.checks,
                owner: namespace.to_owned(),
            }
        })
        .collect()
}
