use time::macros::{date, datetime};

use super::columns::*;
use super::compute::*;
use super::rows::*;
use super::*;
use crate::agent::Tool;
use crate::classify::{ActionKind, Method};
use crate::enrich::{CloudProvider, IpType};
use crate::privacy::{HashSecret, IpHash};

const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

fn ip_hash(n: u32) -> IpHash {
    let hasher = HashSecret::new([7u8; 32])
        .unwrap()
        .hasher(&"2026-W47".parse().unwrap());
    hasher.hash(std::net::IpAddr::from(n.to_be_bytes()))
}

fn record(repository: &'static str, kind: ActionKind) -> PullRecord<'static> {
    PullRecord {
        time: datetime!(2026-11-18 13:14:15 UTC),
        repository,
        kind,
        method: if kind == ActionKind::VersionCheck {
            Method::Head
        } else {
            Method::Get
        },
        tag: (kind != ActionKind::PullByDigest).then_some("v1"),
        digest: D1,
        country: Some("US".parse().unwrap()),
        cloud: None,
        ip_type: None,
        domain: None,
        tool: Tool::Docker,
        tool_version: Some("24.0.7"),
        ip_hash: ip_hash(1),
        user: None,
    }
}

fn week() -> Period {
    Period::week_of(date!(2026 - 11 - 18))
}

/// Writes rows and reads them back: the header and each row's field count.
fn csv_of<R: Report>(rows: Vec<R>) -> Vec<Vec<String>> {
    let bytes = write_csv(Vec::new(), rows).unwrap();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes.as_slice());
    reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

#[test]
fn headers_are_the_seeds_columns() {
    assert_eq!(
        SUMMARY.join(","),
        "DATE_GRANULARITY,DATE_REFERENCE,PUBLISHER_NAME,LEVEL,REFERENCE,DATA_DOWNLOADS,VERSION_CHECKS,EVENT_COUNT"
    );
    assert_eq!(
        TRENDS.join(","),
        "DATE_GRANULARITY,DATE_REFERENCE,PUBLISHER_NAME,IMAGE_REPOSITORY,NAMESPACE,IP_COUNTRY,CLOUD_SERVICE_PROVIDER,USER_AGENT,TAG,DATA_DOWNLOADS,VERSION_CHECKS,PULLS,UNIQUE_AUTHENTICATED_USERS,UNIQUE_UNAUTHENTICATED_USERS"
    );
    assert_eq!(
        TECHNOGRAPHIC.join(","),
        "DATE_GRANULARITY,DATE_REFERENCE,PUBLISHER_ID,PUBLISHER_NAME,DVPP_IMAGE,PAIRED_IMAGE,USERS,TOTAL_PULLERS,PCT_USERS,DOMAINS,TOTAL_DOMAINS,PCT_DOMAINS"
    );
    assert_eq!(
        TECHNOGRAPHIC_COMPANIES.join(","),
        "DATE_GRANULARITY,DATE_REFERENCE,PUBLISHER_NAME,DOMAIN,DVPP_IMAGE,PAIRED_IMAGE"
    );
    assert_eq!(
        TRACKED_COMPANIES.join(","),
        "DATE_GRANULARITY,DATE_REFERENCE,PUBLISHER_NAME,DOMAIN,IP_COUNTRY,CLOUD_SERVICE_PROVIDER,USER_AGENT,INFERRED_USE_CASE,IMAGE_REPOSITORY,DATA_DOWNLOADS,VERSION_CHECKS,PULLS,UNIQUE_AUTHENTICATED_USERS"
    );
    assert_eq!(
        RAW_PULLS.join(","),
        "Action,Action day,Country,Digest,HTTP method,Host,Namespace,Reference,Repository,Tag,Timestamp,Type,User agent tool,User agent version,Domain,Owner"
    );
    assert_eq!(
        REPOSITORY_SUMMARY.join(","),
        "Namespace,Repository,Unique IP address,Pull by tag,Pull by digest,Version check,Owner"
    );
    assert_eq!(
        REFERENCE_SUMMARY.join(","),
        "Namespace,Repository,Reference,Unique IP address,Pull by tag,Pull by digest,Version check,Owner"
    );
    assert_eq!(
        EXTENSION_CORE_SUMMARY.join(","),
        "Installs,TotalInstalls,Uninstalls,TotalUninstalls,Updates"
    );
    assert_eq!(
        EXTENSION_PREMIUM_SUMMARY.join(","),
        "Installs,UniqueInstalls,Uninstalls,UniqueUninstalls,Usage,UniqueUsers"
    );
    assert_eq!(NULL, r"\N");
}

#[test]
fn every_row_type_fills_its_header() {
    let r = record("acme/app", ActionKind::PullByTag);
    let (tech, companies) = technographic_fixture();
    let tables = [
        csv_of(summary(&week(), &[r])),
        csv_of(trends(&week(), &[r])),
        csv_of(tech),
        csv_of(companies),
        csv_of(tracked_companies(
            &week(),
            &[PullRecord {
                domain: Some("acme.example"),
                ..r
            }],
            |_| true,
        )),
        csv_of(vec![raw_pull(&r)]),
        csv_of(repository_summary(&[r])),
        csv_of(reference_summary(&[r])),
        csv_of(vec![ExtensionCoreRow {
            installs: 1,
            total_installs: 2,
            uninstalls: 3,
            total_uninstalls: 4,
            updates: 5,
        }]),
        csv_of(vec![ExtensionPremiumRow {
            installs: 1,
            unique_installs: 1,
            uninstalls: 0,
            unique_uninstalls: 0,
            usage: 9,
            unique_users: 3,
        }]),
    ];
    for table in tables {
        assert!(table.len() >= 2, "{table:?}");
        for row in &table[1..] {
            assert_eq!(row.len(), table[0].len(), "{table:?}");
        }
    }
}

#[test]
fn summary_levels_and_counts() {
    let records = [
        record("acme/app", ActionKind::PullByTag),
        record("acme/app", ActionKind::VersionCheck),
        PullRecord {
            digest: D2,
            ..record("acme/app", ActionKind::PullByDigest)
        },
        record("acme/other", ActionKind::VersionCheck),
    ];
    let rows = summary(&week(), &records);
    let got: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.level.as_str(),
                r.reference.as_str(),
                r.data_downloads,
                r.version_checks,
                r.event_count,
            )
        })
        .collect();
    let d1 = format!("acme/app@{D1}");
    let d2 = format!("acme/app@{D2}");
    let o1 = format!("acme/other@{D1}");
    assert_eq!(
        got,
        vec![
            ("repository", "acme/app", 2, 1, 3),
            ("repository", "acme/other", 0, 1, 1),
            ("tag", "acme/app:v1", 1, 1, 2),
            ("tag", "acme/other:v1", 0, 1, 1),
            ("digest", d1.as_str(), 1, 1, 2),
            ("digest", d2.as_str(), 1, 0, 1),
            ("digest", o1.as_str(), 0, 1, 1),
        ]
    );
    assert!(rows.iter().all(|r| r.publisher_name == "acme"
        && r.date_granularity == "weekly"
        && r.date_reference == "2026-11-16"));
}

#[test]
fn trends_group_and_count_unique_users() {
    let base = record("acme/app", ActionKind::PullByTag);
    let records = [
        PullRecord {
            user: Some("alice"),
            ..base
        },
        PullRecord {
            user: Some("alice"),
            ..base
        },
        PullRecord {
            user: Some("bob"),
            kind: ActionKind::VersionCheck,
            ..base
        },
        PullRecord {
            ip_hash: ip_hash(2),
            ..base
        },
        PullRecord {
            ip_hash: ip_hash(3),
            ..base
        },
        PullRecord {
            ip_hash: ip_hash(3),
            ..base
        },
        // Another group: by digest (no tag), from AWS, unknown country, containerd.
        PullRecord {
            kind: ActionKind::PullByDigest,
            tag: None,
            cloud: Some(CloudProvider::Aws),
            country: None,
            tool: Tool::Containerd,
            ..base
        },
    ];
    let rows = trends(&week(), &records);
    assert_eq!(rows.len(), 2, "{rows:?}");
    let docker = rows.iter().find(|r| r.user_agent == "docker").unwrap();
    assert_eq!(
        (docker.data_downloads, docker.version_checks, docker.pulls),
        (5, 1, 6)
    );
    assert_eq!(docker.unique_authenticated_users, 2);
    assert_eq!(docker.unique_unauthenticated_users, 2);
    assert_eq!(
        (
            docker.tag.as_str(),
            docker.cloud_service_provider.as_str(),
            docker.ip_country.as_str()
        ),
        ("v1", "no csp", "US")
    );
    assert_eq!(
        (docker.namespace.as_str(), docker.image_repository.as_str()),
        ("acme", "acme/app")
    );
    let ctr = rows.iter().find(|r| r.user_agent == "containerd").unwrap();
    assert_eq!(
        (
            ctr.tag.as_str(),
            ctr.cloud_service_provider.as_str(),
            ctr.ip_country.as_str()
        ),
        (r"\N", "aws", r"\N")
    );
}

#[test]
fn tracked_companies_infer_use_case_with_cloud_reclassification() {
    let base = PullRecord {
        domain: Some("bigcorp.example"),
        ip_type: Some(IpType::Business),
        ..record("acme/app", ActionKind::PullByTag)
    };
    let records = [
        base,
        PullRecord {
            cloud: Some(CloudProvider::Gcp),
            ..base
        },
        PullRecord {
            tool: Tool::Containerd,
            ..base
        },
        PullRecord {
            tool: Tool::Containerd,
            cloud: Some(CloudProvider::Azure),
            ..base
        },
        PullRecord {
            tool: Tool::CriO,
            ..base
        },
        PullRecord {
            tool: Tool::Curl,
            cloud: Some(CloudProvider::Aws),
            ..base
        },
        PullRecord {
            domain: Some("untracked.example"),
            ..base
        },
    ];
    let rows = tracked_companies(&week(), &records, |d| d == "bigcorp.example");
    let mut got: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.user_agent.as_str(),
                r.cloud_service_provider.as_str(),
                r.inferred_use_case.as_str(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("containerd", "azure", "Prod"),
            ("containerd", "no csp", "CI/CD"),
            ("cri-o", "no csp", "Prod"),
            ("curl", "aws", "Unknown"),
            ("docker", "gcp", "CI/CD"),
            ("docker", "no csp", "Local Dev"),
        ]
    );
    assert!(
        rows.iter()
            .all(|r| r.domain == "bigcorp.example" && r.pulls == 1)
    );
}

/// acme/app is the DVP image. 12 users pull it and redis, 9 pull it and postgres; domains
/// include a personal and a university one, and a business domain seen only through an ISP.
fn technographic_fixture() -> (Vec<TechnographicRow>, Vec<TechnographicCompanyRow>) {
    let mut records = Vec::new();
    let domains = ["one.example", "two.example", "gmail.com", "mit.edu"];
    for i in 0..20u32 {
        let base = PullRecord {
            ip_hash: ip_hash(100 + i),
            domain: Some(domains[i as usize % 4]),
            ip_type: Some(IpType::Business),
            ..record("acme/app", ActionKind::PullByTag)
        };
        records.push(base);
        if i < 12 {
            records.push(PullRecord {
                repository: "library/redis",
                ..base
            });
        }
        if i < 9 {
            records.push(PullRecord {
                repository: "library/postgres",
                ..base
            });
        }
    }
    // A pull from an ISP address naming a domain: not a company.
    records.push(PullRecord {
        ip_hash: ip_hash(999),
        domain: Some("three.example"),
        ip_type: Some(IpType::Isp),
        ..record("acme/app", ActionKind::PullByTag)
    });
    technographic(&week(), "pub-42", "acme", &["acme/app"], &records)
}

#[test]
fn technographic_pairs_threshold_and_domain_exclusion() {
    let (pairs, companies) = technographic_fixture();
    assert_eq!(
        pairs.len(),
        1,
        "postgres has 9 common users, below 10: {pairs:?}"
    );
    let p = &pairs[0];
    assert_eq!(
        (p.dvpp_image.as_str(), p.paired_image.as_str()),
        ("acme/app", "library/redis")
    );
    assert_eq!((p.users, p.total_pullers), (12, 21));
    assert_eq!(p.pct_users, 57.14);
    // Company domains: one.example and two.example (gmail.com, mit.edu excluded; the ISP
    // address's domain is not a company's).
    assert_eq!((p.domains, p.total_domains, p.pct_domains), (2, 2, 100.0));
    assert_eq!(
        (p.publisher_id.as_str(), p.publisher_name.as_str()),
        ("pub-42", "acme")
    );
    let got: Vec<_> = companies
        .iter()
        .map(|c| (c.domain.as_str(), c.paired_image.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("one.example", "library/redis"),
            ("two.example", "library/redis")
        ]
    );
}

#[test]
fn raw_pull_row() {
    let r = PullRecord {
        cloud: Some(CloudProvider::Aws),
        ip_type: Some(IpType::Hosting),
        domain: Some("amazonaws.com"),
        repository: "acme/tools/app",
        ..record("acme/app", ActionKind::VersionCheck)
    };
    let row = raw_pull(&r);
    let table = csv_of(vec![row]);
    assert_eq!(
        table[1],
        [
            "version_check",
            "2026-11-18",
            "US",
            D1,
            "HEAD",
            "aws",
            "acme",
            "v1",
            "tools/app",
            "v1",
            "2026-11-18 13:14:15",
            "hosting",
            "docker",
            "24.0.7",
            "amazonaws.com",
            "acme"
        ]
    );
    let by_digest = raw_pull(&PullRecord {
        country: None,
        tool_version: None,
        ..record("acme/app", ActionKind::PullByDigest)
    });
    assert_eq!(
        (by_digest.reference.as_str(), by_digest.tag.as_str()),
        (D1, "")
    );
    assert_eq!(
        (
            by_digest.country.as_str(),
            by_digest.host.as_str(),
            by_digest.ip_type.as_str()
        ),
        ("", "", "")
    );
}

#[test]
fn legacy_summaries_count_unique_addresses() {
    let base = record("acme/app", ActionKind::PullByTag);
    let records = [
        base,
        PullRecord {
            ip_hash: ip_hash(2),
            ..base
        },
        PullRecord {
            kind: ActionKind::VersionCheck,
            ..base
        },
        PullRecord {
            kind: ActionKind::PullByDigest,
            tag: None,
            ip_hash: ip_hash(3),
            ..base
        },
        // An authenticated pull still has an address.
        PullRecord {
            user: Some("alice"),
            ip_hash: ip_hash(4),
            ..base
        },
    ];
    let repo = repository_summary(&records);
    assert_eq!(
        repo,
        vec![RepositorySummaryRow {
            namespace: "acme".into(),
            repository: "app".into(),
            unique_ip_addresses: 4,
            pull_by_tag: 3,
            pull_by_digest: 1,
            version_check: 1,
            owner: "acme".into(),
        }]
    );
    let refs = reference_summary(&records);
    let got: Vec<_> = refs
        .iter()
        .map(|r| {
            (
                r.reference.as_str(),
                r.unique_ip_addresses,
                r.pull_by_tag,
                r.pull_by_digest,
                r.version_check,
            )
        })
        .collect();
    assert_eq!(got, [(D1, 1, 0, 1, 0), ("v1", 3, 3, 0, 1)]);
}

#[test]
fn csv_output_is_exact() {
    let rows = vec![ExtensionCoreRow {
        installs: 3,
        total_installs: 40,
        uninstalls: 1,
        total_uninstalls: 7,
        updates: 2,
    }];
    let out = String::from_utf8(write_csv(Vec::new(), rows).unwrap()).unwrap();
    assert_eq!(
        out,
        "Installs,TotalInstalls,Uninstalls,TotalUninstalls,Updates\n3,40,1,7,2\n"
    );
    let empty: Vec<SummaryRow> = Vec::new();
    let out = String::from_utf8(write_csv(Vec::new(), empty).unwrap()).unwrap();
    assert_eq!(out.lines().count(), 1);
}
