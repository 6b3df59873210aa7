//! Classified actions in compact form: each distinct string once, each action as its time and
//! the indexes of its 15 fields. A classifier run builds its actions this way from its events
//! (an action takes most of its fields from its first request, so nothing is copied), rolls
//! them up, and stores them as a few batches (one per namespace and UTC day) instead of a row
//! each. The raw data export decodes the batches.

use std::collections::BTreeMap;

use foldhash::{HashMap, HashMapExt as _, HashSet, HashSetExt as _};

use wharf_analytics::agent::{self, Tool, UseCase};
use wharf_analytics::privacy::excluded_domain;
use wharf_analytics::report::Period;
use wharf_db::{
    ActionBatch, DailyKey, ImageDomainRow, PullActionRow, PullerRow, Rollup, UniqueRow,
};

use crate::HubError;
use crate::analytics::datetime;

/// The fields of an event and of an action, as indexes into their set's strings. An action
/// has its first request's fields, but its tag (empty when it began with a digest) where the
/// request has its reference, and its kind where the request has `manifest` or `blob`.
pub mod field {
    pub const NAMESPACE: usize = 0;
    pub const REPO: usize = 1;
    /// An event's reference; an action's tag.
    pub const REFERENCE: usize = 2;
    pub const TAG: usize = 2;
    pub const DIGEST: usize = 3;
    pub const METHOD: usize = 4;
    /// An event's kind (`manifest` or `blob`); an action's kind (`pull_by_tag`…).
    pub const KIND: usize = 5;
    pub const ACTION: usize = 5;
    pub const USER: usize = 6;
    /// The address's keyed hash for the week, hex.
    pub const IP_WEEK: usize = 7;
    pub const IP_MONTH: usize = 8;
    pub const TOOL: usize = 9;
    pub const TOOL_VERSION: usize = 10;
    pub const COUNTRY: usize = 11;
    pub const CLOUD: usize = 12;
    pub const IP_TYPE: usize = 13;
    pub const DOMAIN: usize = 14;
}

use field::*;

/// An event or an action: its time and its fields.
pub type Row = (i64, [u32; 15]);

/// Events or actions as stored: every distinct string once (`strings`), each row as its time
/// and the indexes of its fields. Requests of one pull repeat most of their fields, and so do
/// the pulls of one client, so a batch is a fraction of its rows' size.
///
/// Encoded as `BINARY` then postcard (variable-length integers: about 21 bytes a row);
/// batches written by earlier versions are JSON, and are read as well.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct StoredBatch {
    pub strings: Vec<String>,
    pub events: Vec<Row>,
}

/// What a binary batch starts with (a JSON batch starts with `{`).
const BINARY: &[u8] = b"\0wb1";

impl StoredBatch {
    /// Reads a stored batch (of `what`: for the error message), checking that every index
    /// names one of its strings.
    pub fn decode(data: &[u8], what: &str) -> Result<Self, HubError> {
        let bad =
            |e: String| HubError::Internal(format!("a stored batch of {what} is unreadable: {e}"));
        let batch: Self = match data.strip_prefix(BINARY) {
            Some(binary) => postcard::from_bytes(binary).map_err(|e| bad(e.to_string()))?,
            None => serde_json::from_slice(data).map_err(|e| bad(e.to_string()))?,
        };
        let n = batch.strings.len();
        if batch
            .events
            .iter()
            .any(|(_, f)| f.iter().any(|&i| i as usize >= n))
        {
            return Err(HubError::Internal(format!(
                "a stored batch of {what} names a string it does not have"
            )));
        }
        Ok(batch)
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        // Strings and integers only: serializing cannot fail.
        postcard::to_extend(self, BINARY.to_vec()).unwrap_or_default()
    }

    /// The text of field `k` of row `i`.
    pub fn field(&self, i: usize, k: usize) -> &str {
        self.events
            .get(i)
            .and_then(|(_, f)| self.strings.get(f[k] as usize))
            .map_or("", String::as_str)
    }
}

/// Strings, each once.
#[derive(Default)]
pub(crate) struct Strings {
    list: Vec<String>,
    index: HashMap<String, u32>,
}

impl Strings {
    pub(crate) fn intern(&mut self, s: &str) -> u32 {
        if let Some(i) = self.index.get(s) {
            return *i;
        }
        let i = self.list.len() as u32;
        self.list.push(s.to_owned());
        self.index.insert(s.to_owned(), i);
        i
    }

    pub(crate) fn get(&self, i: u32) -> &str {
        self.list.get(i as usize).map_or("", String::as_str)
    }

    pub(crate) fn into_list(self) -> Vec<String> {
        self.list
    }
}

/// Rows with their strings: a classifier run's events, or its actions.
#[derive(Default)]
pub(crate) struct RowSet {
    pub(crate) strings: Strings,
    pub(crate) rows: Vec<Row>,
}

impl RowSet {
    /// Adds the rows of a stored batch for which `keep` holds, interning their strings.
    pub(crate) fn extend(
        &mut self,
        batch: StoredBatch,
        mut keep: impl FnMut(&Row, &[String]) -> bool,
    ) {
        let mut map: Vec<Option<u32>> = vec![None; batch.strings.len()];
        for row in batch.events {
            if !keep(&row, &batch.strings) {
                continue;
            }
            let mut ids = [0u32; 15];
            for (slot, local) in ids.iter_mut().zip(row.1) {
                let local = local as usize;
                *slot =
                    *map[local].get_or_insert_with(|| self.strings.intern(&batch.strings[local]));
            }
            self.rows.push((row.0, ids));
        }
    }

    /// The rows as one stored batch, holding only the strings they use.
    pub(crate) fn stored(&self, rows: impl Iterator<Item = Row>) -> StoredBatch {
        let mut local: HashMap<u32, u32> = HashMap::new();
        let mut strings = Vec::new();
        let events = rows
            .map(|(at, ids)| {
                let mut out = [0u32; 15];
                for (slot, id) in out.iter_mut().zip(ids) {
                    *slot = *local.entry(id).or_insert_with(|| {
                        strings.push(self.strings.get(id).to_owned());
                        (strings.len() - 1) as u32
                    });
                }
                (at, out)
            })
            .collect();
        StoredBatch { strings, events }
    }

    /// Actions given as rows (imported history, tests).
    pub(crate) fn from_actions(actions: &[PullActionRow]) -> Self {
        let mut set = Self::default();
        for a in actions {
            let mut f = |s: &str| set.strings.intern(s);
            let ids = [
                f(&a.namespace),
                f(&a.repo),
                f(&a.tag),
                f(&a.digest),
                f(&a.method),
                f(&a.action),
                f(&a.user_name),
                f(&hex::encode(&a.ip_week)),
                f(&hex::encode(&a.ip_month)),
                f(&a.tool),
                f(&a.tool_version),
                f(&a.country),
                f(&a.cloud),
                f(&a.ip_type),
                f(&a.domain),
            ];
            set.rows.push((a.at_ms, ids));
        }
        set
    }

    /// The actions as batches to store, one per namespace and UTC day, each in time order.
    pub(crate) fn action_batches(&self) -> Vec<ActionBatch> {
        let mut groups: BTreeMap<(u32, i64), Vec<Row>> = BTreeMap::new();
        for row in &self.rows {
            groups
                .entry((row.1[NAMESPACE], row.0.div_euclid(DAY_MS)))
                .or_default()
                .push(*row);
        }
        groups
            .into_iter()
            .map(|((ns, day), mut rows)| {
                rows.sort_by_key(|r| r.0);
                ActionBatch {
                    namespace: self.strings.get(ns).to_owned(),
                    day,
                    actions: rows.len() as i64,
                    data: self.stored(rows.into_iter()).encode(),
                }
            })
            .collect()
    }
}

/// The actions of a stored batch, as rows.
pub(crate) fn decode_actions(data: &[u8]) -> Result<Vec<PullActionRow>, HubError> {
    let batch = StoredBatch::decode(data, "actions")?;
    let s = |f: &[u32; 15], k: usize| batch.strings[f[k] as usize].clone();
    let bytes =
        |f: &[u32; 15], k: usize| hex::decode(&batch.strings[f[k] as usize]).unwrap_or_default();
    Ok(batch
        .events
        .iter()
        .map(|(at_ms, f)| PullActionRow {
            at_ms: *at_ms,
            namespace: s(f, NAMESPACE),
            repo: s(f, REPO),
            tag: s(f, TAG),
            digest: s(f, DIGEST),
            action: s(f, ACTION),
            method: s(f, METHOD),
            user_name: s(f, USER),
            ip_week: bytes(f, IP_WEEK),
            ip_month: bytes(f, IP_MONTH),
            tool: s(f, TOOL),
            tool_version: s(f, TOOL_VERSION),
            country: s(f, COUNTRY),
            cloud: s(f, CLOUD),
            ip_type: s(f, IP_TYPE),
            domain: s(f, DOMAIN),
        })
        .collect())
}

pub(crate) const DAY_MS: i64 = 86_400_000;

/// Separates the parts of a group's key.
const KEY_SEP: char = '\u{1f}';

/// Joins a rollup key's parts.
pub(crate) fn key(parts: &[&str]) -> String {
    let mut k = String::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(KEY_SEP);
        }
        k.push_str(p);
    }
    k
}

fn hash64(parts: &[&[u8]]) -> i64 {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    let d = h.finalize();
    i64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// The id of a group of a period's puller sets (`pull_uniques.grp`): a hash of the
/// namespace, the period's name, the kind of group and its key. Stable across nodes and
/// versions (SHA-256), so every node adds to and reads the same groups.
pub(crate) fn group_id(namespace: &str, period: &str, kind: &str, key: &str) -> i64 {
    hash64(&[
        namespace.as_bytes(),
        period.as_bytes(),
        kind.as_bytes(),
        key.as_bytes(),
    ])
}

/// A member of a puller set (`pull_uniques.who`): an account (odd: a hash of its name) or
/// an address (even: 8 bytes of its hash with the period's key).
fn account_id(user: &str) -> i64 {
    hash64(&[user.as_bytes()]) | 1
}

fn address_id(ip_hash_hex: &str) -> i64 {
    let mut b = [0u8; 8];
    let bytes = hex::decode(ip_hash_hex).unwrap_or_default();
    for (d, s) in b.iter_mut().zip(&bytes) {
        *d = *s;
    }
    i64::from_be_bytes(b) & !1
}

/// The kinds of puller-set groups, with the parts of their keys.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    /// The namespace.
    Ns,
    /// The repository.
    Repo,
    /// Repository and reference (the tag, else the digest).
    Ref,
    /// Repository, country, cloud, tool, tag: a Trends row.
    Trend,
    /// Domain, country, cloud, tool, use case, repository: a Tracked companies row.
    Track,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Ns => "ns",
            Self::Repo => "repo",
            Self::Ref => "ref",
            Self::Trend => "trend",
            Self::Track => "track",
        }
    }
}

/// A use case where a key holds string indexes (counted down from the top).
fn use_case_id(u: UseCase) -> u32 {
    u32::MAX - u as u32
}

/// What a run's actions add to the rollups: counts per day and group, and the members of
/// each week's and month's puller sets. Everything derived from a string (hashes, use cases,
/// period names) is worked out once per distinct string, not per action.
pub(crate) fn rollup(set: &RowSet) -> Rollup {
    let s = |i: u32| set.strings.get(i);
    let mut r = Rollup::default();
    let mut periods: Vec<String> = Vec::new();
    let mut days: HashMap<i64, (u32, u32)> = HashMap::new();
    let mut use_cases: HashMap<(u32, u32), UseCase> = HashMap::new();
    let mut companies: HashMap<u32, bool> = HashMap::new();
    let mut addresses: HashMap<u32, i64> = HashMap::new();
    let mut accounts: HashMap<u32, i64> = HashMap::new();
    let mut groups: HashMap<(u32, Kind, [u32; 6]), i64> = HashMap::new();
    let mut daily: HashMap<(i64, [u32; 8], UseCase), wharf_db::ActionCounts> = HashMap::new();
    let mut pullers: HashSet<(u32, i64, u32, u32)> = HashSet::new();
    let mut domains: HashSet<(u32, u32, u32, u32)> = HashSet::new();
    // What the previous action added to the puller sets: the same client pulling the same
    // thing again (consecutive, as a run sorts them) adds nothing new.
    let mut previous: Option<(i64, [u32; 15])> = None;
    for (at_ms, f) in &set.rows {
        let day = at_ms.div_euclid(DAY_MS);
        let (week, month) = *days.entry(day).or_insert_with(|| {
            let date = datetime(*at_ms).date();
            periods.push(Period::week_of(date).name());
            periods.push(Period::month_of(date).name());
            (periods.len() as u32 - 2, periods.len() as u32 - 1)
        });
        let use_case = *use_cases.entry((f[TOOL], f[CLOUD])).or_insert_with(|| {
            agent::inferred_use_case(Tool::from_name(s(f[TOOL])), !s(f[CLOUD]).is_empty())
        });
        daily
            .entry((
                day,
                [
                    f[NAMESPACE],
                    f[REPO],
                    f[TAG],
                    f[DIGEST],
                    f[COUNTRY],
                    f[CLOUD],
                    f[TOOL],
                    f[DOMAIN],
                ],
                use_case,
            ))
            .or_default()
            .add(s(f[ACTION]));
        let mut same = *f;
        for k in [ACTION, METHOD, TOOL_VERSION] {
            same[k] = 0;
        }
        if previous.replace((day, same)) == Some((day, same)) {
            continue;
        }
        let reference = if s(f[TAG]).is_empty() {
            f[DIGEST]
        } else {
            f[TAG]
        };
        let company = *companies.entry(f[DOMAIN]).or_insert_with(|| {
            let domain = s(f[DOMAIN]);
            s(f[IP_TYPE]) == "business" && !domain.is_empty() && excluded_domain(domain).is_none()
        });
        let user = s(f[USER]);
        for (period, ip) in [(week, f[IP_WEEK]), (month, f[IP_MONTH])] {
            let address = *addresses.entry(ip).or_insert_with(|| address_id(s(ip)));
            let who = if user.is_empty() {
                address
            } else {
                *accounts.entry(f[USER]).or_insert_with(|| account_id(user))
            };
            let mut add = |kind: Kind, parts: &[u32], who: i64| {
                let mut k = [u32::MAX; 6];
                k[..parts.len()].copy_from_slice(parts);
                let grp = *groups.entry((period, kind, k)).or_insert_with(|| {
                    let texts: Vec<&str> = parts
                        .iter()
                        .map(|&p| match p {
                            p if p == use_case_id(use_case) => use_case.as_str(),
                            p => s(p),
                        })
                        .collect();
                    group_id(
                        s(f[NAMESPACE]),
                        &periods[period as usize],
                        kind.name(),
                        &key(&texts),
                    )
                });
                r.uniques.insert(UniqueRow { grp, who });
            };
            add(Kind::Ns, &[f[NAMESPACE]], address);
            add(Kind::Repo, &[f[REPO]], address);
            add(Kind::Ref, &[f[REPO], reference], address);
            add(
                Kind::Trend,
                &[f[REPO], f[COUNTRY], f[CLOUD], f[TOOL], f[TAG]],
                who,
            );
            if !s(f[DOMAIN]).is_empty() && !user.is_empty() {
                add(
                    Kind::Track,
                    &[
                        f[DOMAIN],
                        f[COUNTRY],
                        f[CLOUD],
                        f[TOOL],
                        use_case_id(use_case),
                        f[REPO],
                    ],
                    who,
                );
            }
            pullers.insert((period, who, f[NAMESPACE], f[REPO]));
            if company {
                domains.insert((f[NAMESPACE], period, f[REPO], f[DOMAIN]));
            }
        }
    }
    r.daily = daily
        .into_iter()
        .map(|((day, k, use_case), counts)| {
            (
                DailyKey {
                    namespace: s(k[0]).to_owned(),
                    day,
                    repo: s(k[1]).to_owned(),
                    tag: s(k[2]).to_owned(),
                    digest: s(k[3]).to_owned(),
                    country: s(k[4]).to_owned(),
                    cloud: s(k[5]).to_owned(),
                    tool: s(k[6]).to_owned(),
                    use_case: use_case.as_str().to_owned(),
                    domain: s(k[7]).to_owned(),
                },
                counts,
            )
        })
        .collect();
    r.pullers = pullers
        .into_iter()
        .map(|(period, who, ns, repo)| PullerRow {
            period: periods[period as usize].clone(),
            who,
            namespace: s(ns).to_owned(),
            repo: s(repo).to_owned(),
        })
        .collect();
    r.domains = domains
        .into_iter()
        .map(|(ns, period, repo, domain)| ImageDomainRow {
            namespace: s(ns).to_owned(),
            period: periods[period as usize].clone(),
            repo: s(repo).to_owned(),
            domain: s(domain).to_owned(),
        })
        .collect();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(at_ms: i64, ns: &str, tag: &str, user: &str) -> PullActionRow {
        PullActionRow {
            at_ms,
            namespace: ns.into(),
            repo: format!("{ns}/app"),
            tag: tag.into(),
            digest: format!("sha256:{}", "a".repeat(64)),
            action: "pull_by_tag".into(),
            method: "GET".into(),
            user_name: user.into(),
            ip_week: vec![1; 16],
            ip_month: vec![2; 16],
            tool: "docker".into(),
            tool_version: "27.5.1".into(),
            country: "DE".into(),
            ..PullActionRow::default()
        }
    }

    #[test]
    fn batches_split_by_namespace_and_day_and_read_back_the_same_actions() {
        let actions = vec![
            action(DAY_MS + 5, "acme", "v1", ""),
            action(DAY_MS + 1, "acme", "v2", "alice"),
            action(2 * DAY_MS, "acme", "v1", ""),
            action(DAY_MS + 3, "other", "", "bob"),
        ];
        let batches = RowSet::from_actions(&actions).action_batches();
        let summary: Vec<_> = batches
            .iter()
            .map(|b| (b.namespace.as_str(), b.day, b.actions))
            .collect();
        assert_eq!(summary, [("acme", 1, 2), ("acme", 2, 1), ("other", 1, 1)]);
        let mut back: Vec<PullActionRow> = batches
            .iter()
            .flat_map(|b| decode_actions(&b.data).unwrap())
            .collect();
        assert_eq!(back[0], actions[1], "a batch is in time order");
        back.sort_by_key(|a| (a.namespace.clone(), a.at_ms));
        let mut expected = actions.clone();
        expected.sort_by_key(|a| (a.namespace.clone(), a.at_ms));
        assert_eq!(back, expected);
        // Each string once per batch, and about 21 bytes per row besides.
        let data = &batches[0].data;
        let needle = "a".repeat(64);
        let count = data.windows(64).filter(|w| *w == needle.as_bytes()).count();
        assert_eq!(count, 1);
        let strings: usize = StoredBatch::decode(data, "actions")
            .unwrap()
            .strings
            .iter()
            .map(|s| s.len() + 1)
            .sum();
        assert!(data.len() - strings < 2 * 32, "{} bytes", data.len());
        // Batches of earlier versions (JSON) are read too; broken ones are refused.
        let json = br#"{"strings":["acme","acme/app","v1","sha256:x","GET","pull_by_tag",""],
            "events":[[1,[0,1,2,3,4,5,6,6,6,6,6,6,6,6,6]]]}"#;
        let old = decode_actions(json).unwrap();
        assert_eq!(
            (old[0].repo.as_str(), old[0].action.as_str()),
            ("acme/app", "pull_by_tag")
        );
        assert!(
            decode_actions(br#"{"strings":[],"events":[[1,[0,0,0,0,0,0,0,0,0,0,0,0,0,0,9]]]}"#)
                .is_err()
        );
        assert!(decode_actions(b"not json").is_err());
        assert!(
            decode_actions(&data[..data.len() - 3]).is_err(),
            "a cut batch is refused"
        );
    }

    /// The cached rollup agrees with working every group out from the action's own strings.
    #[test]
    fn rollup_groups_match_their_keys() {
        let actions = vec![
            action(DAY_MS, "acme", "v1", ""),
            action(DAY_MS + 1, "acme", "", "alice"),
            action(DAY_MS + 2, "acme", "v1", "alice"),
        ];
        let r = rollup(&RowSet::from_actions(&actions));
        let date = datetime(DAY_MS).date();
        let week = Period::week_of(date).name();
        let address = address_id(&hex::encode([1u8; 16]));
        let alice = account_id("alice");
        let digest = format!("sha256:{}", "a".repeat(64));
        for (kind, k, who) in [
            ("ns", "acme".to_owned(), address),
            ("repo", "acme/app".to_owned(), address),
            ("ref", key(&["acme/app", "v1"]), address),
            ("ref", key(&["acme/app", &digest]), address),
            (
                "trend",
                key(&["acme/app", "DE", "", "docker", "v1"]),
                address,
            ),
            ("trend", key(&["acme/app", "DE", "", "docker", "v1"]), alice),
            ("trend", key(&["acme/app", "DE", "", "docker", ""]), alice),
        ] {
            let row = UniqueRow {
                grp: group_id("acme", &week, kind, &k),
                who,
            };
            assert!(r.uniques.contains(&row), "{kind} {k:?}");
        }
        let total: u64 = r
            .daily
            .values()
            .map(|c| c.pulls_by_tag + c.pulls_by_digest + c.version_checks)
            .sum();
        assert_eq!(total, 3);
        assert_eq!(
            r.pullers.len(),
            4,
            "an address and an account, week and month"
        );
    }
}
