//! The company-domain filter of the Technographic and Technographic companies reports:
//! "Personal, disposable, and university email domains are excluded from the company domain
//! analysis." The lists ship in `data/` (sources and licences in each file's header; rebuilt
//! with `data/update-lists.py`) and are embedded in the binary.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

/// Why a domain is not a company's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExclusionReason {
    /// A personal (free webmail) provider such as `gmail.com`.
    Personal,
    /// A disposable email service.
    Disposable,
    /// A university, college or school.
    University,
}

impl ExclusionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Personal => "personal",
            Self::Disposable => "disposable",
            Self::University => "university",
        }
    }
}

impl fmt::Display for ExclusionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

struct Lists {
    /// Matched with subdomains.
    disposable: HashSet<&'static str>,
    /// Matched exactly: the list holds a few public suffixes (`net.ua`) whose subdomains are
    /// companies.
    personal: HashSet<&'static str>,
    /// Matched with subdomains.
    universities: HashSet<&'static str>,
    /// Registry suffixes under which every domain is academic (`ac.jp`, `k12.ny.us`).
    academic_suffixes: HashSet<&'static str>,
}

static LISTS: LazyLock<Lists> = LazyLock::new(|| Lists {
    disposable: parse(include_str!("../../data/disposable.txt")),
    personal: parse(include_str!("../../data/personal.txt")),
    universities: parse(include_str!("../../data/universities.txt")),
    academic_suffixes: parse(include_str!("../../data/academic-suffixes.txt")),
});

fn parse(text: &'static str) -> HashSet<&'static str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
}

/// Whether a domain (from an email address or an IP's domain) is excluded from the company
/// analysis, and why. Case, surrounding space and a trailing dot do not matter. Checked in
/// this order: disposable, personal, university (`.edu`, `.edu.xx`, `.ac.xx`, the academic
/// registry suffixes, or a listed university domain).
pub fn excluded_domain(domain: &str) -> Option<ExclusionReason> {
    let domain = normalize(domain);
    if domain.is_empty() {
        return None;
    }
    let lists = &*LISTS;
    if parents(&domain).any(|d| lists.disposable.contains(d)) {
        return Some(ExclusionReason::Disposable);
    }
    if lists.personal.contains(&*domain) {
        return Some(ExclusionReason::Personal);
    }
    if is_academic(&domain, lists) {
        return Some(ExclusionReason::University);
    }
    None
}

fn normalize(domain: &str) -> Cow<'_, str> {
    let domain = domain.trim().trim_end_matches('.');
    if domain.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(domain.to_ascii_lowercase())
    } else {
        Cow::Borrowed(domain)
    }
}

/// The domain and each parent with at least two labels: `a.b.example.com`, `b.example.com`,
/// `example.com`.
fn parents(domain: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(domain), |d| d.split_once('.').map(|(_, rest)| rest))
        .filter(|d| d.contains('.'))
}

fn is_academic(domain: &str, lists: &Lists) -> bool {
    let mut labels = domain.rsplit('.');
    let last = labels.next().unwrap_or("");
    let second = labels.next();
    let has_third = labels.next().is_some();
    if last == "edu" && second.is_some() {
        return true;
    }
    if has_third && last.len() == 2 && matches!(second, Some("edu" | "ac")) {
        return true;
    }
    parents(domain).any(|d| {
        lists.universities.contains(d)
            || (d.len() < domain.len() && lists.academic_suffixes.contains(d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ExclusionReason::*;

    #[test]
    fn table() {
        let cases: &[(&str, Option<ExclusionReason>)] = &[
            ("gmail.com", Some(Personal)),
            ("GMail.COM.", Some(Personal)),
            (" yahoo.com ", Some(Personal)),
            ("outlook.com", Some(Personal)),
            ("icloud.com", Some(Personal)),
            ("proton.me", Some(Personal)),
            ("web.de", Some(Personal)),
            ("mailinator.com", Some(Disposable)),
            ("0815.ru", Some(Disposable)),
            ("eu.mailinator.com", Some(Disposable)),
            ("mit.edu", Some(University)),
            ("cs.stanford.edu", Some(University)),
            ("ox.ac.uk", Some(University)),
            ("cam.ac.uk", Some(University)),
            ("unimelb.edu.au", Some(University)),
            ("tsinghua.edu.cn", Some(University)),
            ("u-tokyo.ac.jp", Some(University)),
            ("ethz.ch", Some(University)),
            ("inf.ethz.ch", Some(University)),
            ("tum.de", Some(University)),
            ("school.k12.ny.us", Some(University)),
            ("docker.com", None),
            ("example.com", None),
            ("acme.co.uk", None),
            // Exact match only for personal providers: net.ua's subdomains are companies.
            ("acme.net.ua", None),
            ("net.ua", Some(Personal)),
            // Suffixes alone are not domains of anyone.
            ("ac.uk", None),
            ("edu", None),
            ("k12.ny.us", None),
            ("", None),
            (".", None),
            ("localhost", None),
        ];
        for &(domain, expected) in cases {
            assert_eq!(excluded_domain(domain), expected, "{domain:?}");
        }
    }

    #[test]
    fn lists_are_loaded_and_clean() {
        let lists = &*LISTS;
        assert!(lists.disposable.len() > 5_000);
        assert!(lists.personal.len() > 1_000);
        assert!(lists.universities.len() > 10_000);
        assert!(lists.academic_suffixes.len() > 50);
        for set in [
            &lists.disposable,
            &lists.personal,
            &lists.universities,
            &lists.academic_suffixes,
        ] {
            for d in set {
                assert!(
                    d.contains('.') && !d.contains(char::is_whitespace) && *d == d.to_lowercase(),
                    "{d:?}"
                );
            }
        }
        // The personal list leaves out what the disposable one holds.
        assert!(lists.personal.is_disjoint(&lists.disposable));
    }

    #[test]
    fn parents_stop_at_two_labels() {
        let all: Vec<_> = parents("a.b.example.com").collect();
        assert_eq!(all, ["a.b.example.com", "b.example.com", "example.com"]);
        assert_eq!(parents("com").count(), 0);
    }
}
