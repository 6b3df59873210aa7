//! Pull analytics through the router: capture of manifest and blob requests, the privacy of
//! addresses, enrichment from the operator's files, classification into actions by the
//! seeds' rules, and the Summary and Trends reports.

mod common;

use axum::http::{Method, StatusCode};
use common::{Resp, TestApp};
use wharf::Config;
use wharf_analytics::report::Period;

async fn app_with(cfg: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut c = common::config(dir.path());
    cfg(&mut c);
    TestApp::with_config(dir, c).await
}

/// A manifest-accepting request from `ip` with user agent `ua`.
async fn from(app: &TestApp, ip: &str, ua: &str, method: Method, uri: &str) -> Resp {
    let headers = [("accept", common::OCI_MANIFEST), ("user-agent", ua)];
    app.req_from(ip, method, uri, &headers).await
}

const DOCKER: &str = "docker/27.5.1 go/go1.22.12 git-commit/4c9b3b0 kernel/6.1.0 os/linux arch/amd64 UpstreamClient(Docker-Client/27.5.1 \\(linux\\))";
const CONTAINERD: &str = "containerd/1.7.24+unknown";

/// Stores what was captured and classifies everything up to now.
async fn settle(app: &TestApp) -> u64 {
    app.state.analytics.write_pending().await.unwrap();
    let horizon = wharf_hub::analytics::now_ms() + 600_000;
    app.state.analytics.classify_until(horizon).await.unwrap()
}

fn this_week() -> Period {
    Period::week_of(time::OffsetDateTime::now_utc().date())
}

#[tokio::test]
async fn pulls_become_actions_by_the_seeds_rules_and_fill_the_reports() {
    let app = TestApp::new().await;
    let (digest, manifest) = app.push_image("acme/app", "v1", b"layer one").await;
    let layer =
        serde_json::from_slice::<serde_json::Value>(&manifest).unwrap()["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .to_owned();
    let by_tag = "/v2/acme/app/manifests/v1";
    let by_digest = format!("/v2/acme/app/manifests/{digest}");
    // Client 1 (docker): HEAD by tag then GET by the same digest: one pull by tag; then the
    // layer download (a blob GET: recorded, never an action).
    from(&app, "192.0.2.1", DOCKER, Method::HEAD, by_tag).await;
    from(&app, "192.0.2.1", DOCKER, Method::GET, &by_digest).await;
    let b = from(
        &app,
        "192.0.2.1",
        DOCKER,
        Method::GET,
        &format!("/v2/acme/app/blobs/{layer}"),
    )
    .await;
    assert_eq!(b.status, StatusCode::OK);
    // Client 2 (docker): a HEAD by tag alone: a version check.
    from(&app, "192.0.2.2", DOCKER, Method::HEAD, by_tag).await;
    // Client 3 (containerd): GET by digest: a pull by digest.
    from(&app, "192.0.2.3", CONTAINERD, Method::GET, &by_digest).await;
    // Client 4: GET by tag: a pull by tag.
    from(&app, "2001:db8::1", "curl/8.5.0", Method::GET, by_tag).await;
    // Failed requests are not pulls.
    let missing = from(
        &app,
        "192.0.2.9",
        DOCKER,
        Method::GET,
        "/v2/acme/app/manifests/nope",
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let metrics = app.get("/metrics").await;
    let text = String::from_utf8_lossy(&metrics.body).to_string();
    assert!(
        text.contains("wharf_analytics_events_captured_total 6"),
        "{text}"
    );
    assert_eq!(settle(&app).await, 4);
    let text = String::from_utf8_lossy(&app.get("/metrics").await.body).to_string();
    assert!(
        text.contains("wharf_analytics_events_written_total 6"),
        "{text}"
    );
    assert!(text.contains("wharf_analytics_actions_total 4"), "{text}");

    let week = this_week();
    let summary = app.state.analytics.summary("acme", &week).await.unwrap();
    let row = |level: &str, reference: &str| {
        summary
            .iter()
            .find(|r| r.level == level && r.reference == reference)
            .unwrap_or_else(|| panic!("no {level} row {reference}: {summary:?}"))
            .clone()
    };
    let repo = row("repository", "acme/app");
    assert_eq!(
        (repo.data_downloads, repo.version_checks, repo.event_count),
        (3, 1, 4)
    );
    let tag = row("tag", "acme/app:v1");
    assert_eq!((tag.data_downloads, tag.version_checks), (2, 1));
    let dig = row("digest", &format!("acme/app@{digest}"));
    assert_eq!((dig.data_downloads, dig.version_checks), (3, 1));
    assert!(
        summary
            .iter()
            .all(|r| r.date_granularity == "weekly" && r.publisher_name == "acme")
    );

    let trends = app.state.analytics.trends("acme", &week).await.unwrap();
    let docker_v1: Vec<_> = trends
        .iter()
        .filter(|t| t.user_agent == "docker" && t.tag == "v1")
        .collect();
    assert_eq!(docker_v1.len(), 1, "{trends:?}");
    let t = docker_v1[0];
    assert_eq!((t.data_downloads, t.version_checks, t.pulls), (1, 1, 2));
    assert_eq!(t.unique_unauthenticated_users, 2);
    assert_eq!(
        (t.ip_country.as_str(), t.cloud_service_provider.as_str()),
        ("\\N", "no csp")
    );
    let by_digest_row = trends
        .iter()
        .find(|t| t.user_agent == "containerd")
        .unwrap();
    assert_eq!(
        (by_digest_row.tag.as_str(), by_digest_row.data_downloads),
        ("\\N", 1)
    );
    // Another namespace sees nothing of acme's pulls.
    assert!(
        app.state
            .analytics
            .summary("other", &week)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn no_address_is_stored_and_hashes_change_with_the_period() {
    let app = TestApp::new().await;
    app.push_image("acme/app", "v1", b"layer").await;
    for ip in ["192.0.2.77", "192.0.2.77", "198.51.100.5"] {
        from(&app, ip, DOCKER, Method::GET, "/v2/acme/app/manifests/v1").await;
    }
    settle(&app).await;
    let pool = sqlx_pool(&app).await;
    // Raw events: batches of JSON, addresses only as 16-byte hashes (hex).
    let events = stored_hashes(&pool, "pull_event_batches").await;
    assert_eq!(events.len(), 3);
    let mut weeks: Vec<String> = Vec::new();
    for (week, month) in &events {
        assert_eq!((week.len(), month.len()), (32, 32), "{week} {month}");
        assert_ne!(week, month, "the week's and the month's keys differ");
        weeks.push(week.clone());
    }
    weeks.sort();
    weeks.dedup();
    assert_eq!(weeks.len(), 2, "two addresses, two hashes");
    // Classified actions, stored the same way, keep the hashes and hold no address.
    let actions = stored_hashes(&pool, "pull_action_batches").await;
    assert_eq!(actions.len(), 3);
    for (week, month) in &actions {
        assert_eq!((week.len(), month.len()), (32, 32));
        assert!(weeks.contains(week));
    }
}

/// The week's and month's address hashes of every row of the batches in `table`, checking
/// that no batch holds an address in the clear.
async fn stored_hashes(pool: &sqlx::AnyPool, table: &str) -> Vec<(String, String)> {
    let batches: Vec<(Vec<u8>,)> = sqlx::query_as(&format!("SELECT data FROM {table}"))
        .fetch_all(pool)
        .await
        .unwrap();
    let mut rows = Vec::new();
    for (data,) in &batches {
        for address in [&b"192.0.2"[..], b"198.51"] {
            assert!(!data.windows(address.len()).any(|w| w == address));
        }
        let batch = wharf_hub::analytics::StoredBatch::decode(data, table).unwrap();
        for i in 0..batch.events.len() {
            use wharf_hub::analytics::field::{IP_MONTH, IP_WEEK};
            rows.push((
                batch.field(i, IP_WEEK).to_owned(),
                batch.field(i, IP_MONTH).to_owned(),
            ));
        }
    }
    rows
}

/// The app's own database, read directly.
async fn sqlx_pool(app: &TestApp) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(&app.database_url()).await.unwrap()
}

#[tokio::test]
async fn addresses_are_enriched_from_the_operators_files() {
    let data = tempfile::tempdir().unwrap();
    let aws = data.path().join("ip-ranges.json");
    std::fs::write(
        &aws,
        r#"{"syncToken":"1","createDate":"2026-11-01-00-00-00","prefixes":[{"ip_prefix":"203.0.113.0/24","region":"eu-west-1","service":"EC2","network_border_group":"eu-west-1"}],"ipv6_prefixes":[]}"#,
    )
    .unwrap();
    let app = app_with(|c| c.analytics_aws_ip_ranges = Some(aws.clone())).await;
    app.push_image("acme/app", "v1", b"layer").await;
    from(
        &app,
        "203.0.113.9",
        CONTAINERD,
        Method::GET,
        "/v2/acme/app/manifests/v1",
    )
    .await;
    from(
        &app,
        "192.0.2.9",
        CONTAINERD,
        Method::GET,
        "/v2/acme/app/manifests/v1",
    )
    .await;
    settle(&app).await;
    let trends = app
        .state
        .analytics
        .trends("acme", &this_week())
        .await
        .unwrap();
    let mut csps: Vec<_> = trends
        .iter()
        .map(|t| t.cloud_service_provider.as_str())
        .collect();
    csps.sort();
    assert_eq!(csps, ["aws", "no csp"]);
    // A file that is not what its setting says is named in the error.
    let bad = data.path().join("broken.json");
    std::fs::write(&bad, "not json").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut c = common::config(dir.path());
    c.analytics_gcp_ip_ranges = Some(bad.clone());
    let e = wharf::App::open(&c).await.unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("broken.json"), "{msg}");
}

#[tokio::test]
async fn a_full_queue_drops_events_and_counts_them() {
    let app = app_with(|c| c.analytics_queue = 2).await;
    app.push_image("acme/app", "v1", b"layer").await;
    for _ in 0..5 {
        from(
            &app,
            "192.0.2.1",
            DOCKER,
            Method::GET,
            "/v2/acme/app/manifests/v1",
        )
        .await;
    }
    let text = String::from_utf8_lossy(&app.get("/metrics").await.body).to_string();
    assert!(
        text.contains("wharf_analytics_events_dropped_total 3"),
        "{text}"
    );
    assert!(text.contains("wharf_analytics_queue_events 2"), "{text}");
    assert_eq!(app.state.analytics.write_pending().await.unwrap(), 2);
}

#[tokio::test]
async fn two_nodes_classifying_at_once_store_each_action_once() {
    let app = TestApp::new().await;
    app.push_image("acme/app", "v1", b"layer").await;
    let other = app.another_node(common::config(app.dir.path())).await;
    for i in 0..20 {
        let node = if i % 2 == 0 { &app } else { &other };
        from(
            node,
            &format!("192.0.2.{i}"),
            DOCKER,
            Method::GET,
            "/v2/acme/app/manifests/v1",
        )
        .await;
    }
    app.state.analytics.write_pending().await.unwrap();
    other.state.analytics.write_pending().await.unwrap();
    let horizon = wharf_hub::analytics::now_ms() + 600_000;
    let (a, b) = tokio::join!(
        app.state.analytics.classify_until(horizon),
        other.state.analytics.classify_until(horizon)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 20);
    let summary = app
        .state
        .analytics
        .summary("acme", &this_week())
        .await
        .unwrap();
    let repo = summary.iter().find(|r| r.level == "repository").unwrap();
    assert_eq!(repo.data_downloads, 20);
}

#[tokio::test]
async fn analytics_off_records_nothing() {
    let app = app_with(|c| c.analytics = false).await;
    app.push_image("acme/app", "v1", b"layer").await;
    from(
        &app,
        "192.0.2.1",
        DOCKER,
        Method::GET,
        "/v2/acme/app/manifests/v1",
    )
    .await;
    assert_eq!(app.state.analytics.write_pending().await.unwrap(), 0);
    let text = String::from_utf8_lossy(&app.get("/metrics").await.body).to_string();
    assert!(
        text.contains("wharf_analytics_events_captured_total 0"),
        "{text}"
    );
}

/// Technographic, Tracked companies and the DVP counts on either database (the SQL of their
/// joins and hashed puller sets differs between SQLite and PostgreSQL).
#[tokio::test]
async fn technographic_and_tracked_companies_on_this_backend() {
    let app = TestApp::new().await;
    let a = &app.state.analytics;
    let week = this_week();
    let at = wharf_hub::analytics::now_ms() - 1000;
    let action = |user: u8, repo: &str, domain: &str| wharf_db::PullActionRow {
        at_ms: at,
        namespace: repo.split('/').next().unwrap().into(),
        repo: repo.into(),
        tag: "1.0".into(),
        digest: format!("sha256:{}", "b".repeat(64)),
        action: "pull_by_tag".into(),
        method: "GET".into(),
        user_name: format!("user{user}"),
        ip_week: vec![user; 16],
        ip_month: vec![user; 16],
        tool: "podman".into(),
        tool_version: "5.4.0".into(),
        country: "FR".into(),
        cloud: "aws".into(),
        ip_type: "business".into(),
        domain: domain.into(),
    };
    let mut actions = Vec::new();
    for u in 0..12 {
        actions.push(action(
            u,
            "acme/app",
            if u < 4 { "example.com" } else { "" },
        ));
    }
    for u in 0..11 {
        actions.push(action(
            u,
            "other/db",
            if u < 2 { "example.com" } else { "" },
        ));
    }
    // Eleven of them also pull a private repository of another namespace: never named.
    for u in 0..11 {
        actions.push(action(u, "other/secret", ""));
    }
    for (repo, private) in [
        ("acme/app", false),
        ("other/db", false),
        ("other/secret", true),
    ] {
        let name: wharf_oci::RepoName = repo.parse().unwrap();
        a.db().set_repo_private(&name, private).await.unwrap();
    }
    assert!(a.import_actions(&actions).await.unwrap());
    let (pairs, companies) = a.technographic("acme", &week).await.unwrap();
    assert_eq!(pairs.len(), 1, "{pairs:?}");
    assert_eq!(pairs[0].paired_image, "other/db");
    assert_eq!((pairs[0].users, pairs[0].total_pullers), (11, 12));
    assert_eq!((pairs[0].domains, pairs[0].total_domains), (1, 1));
    assert_eq!(companies[0].domain, "example.com");
    assert!(a.track_domain("acme", "example.com").await.unwrap());
    let tracked = a.tracked_companies("acme", &week).await.unwrap();
    assert_eq!(tracked.len(), 1, "{tracked:?}");
    // podman is a local tool; on a cloud network it counts as CI/CD.
    assert_eq!(tracked[0].inferred_use_case, "CI/CD");
    assert_eq!(
        (tracked[0].pulls, tracked[0].unique_authenticated_users),
        (4, 4)
    );
    let trends = a.trends("acme", &week).await.unwrap();
    assert_eq!(trends.len(), 1);
    assert_eq!(
        (
            trends[0].pulls,
            trends[0].unique_authenticated_users,
            trends[0].unique_unauthenticated_users
        ),
        (12, 12, 0)
    );
    let dvp = a.pulls_over("acme", &[week], false, None).await.unwrap();
    assert_eq!((dvp[0].pulls, dvp[0].unique_ips), (12, 12));
}

/// The raw data export of a namespace for a period, as CSV text.
async fn raw_export(app: &TestApp, namespace: &str, period: &Period) -> String {
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let analytics = app.state.analytics.clone();
    let (ns, p) = (namespace.to_owned(), *period);
    let job = tokio::spawn(async move {
        analytics
            .stream_report(&ns, wharf_hub::ReportKind::Raw, &p, tx)
            .await
    });
    let mut text = String::new();
    while let Some(chunk) = rx.recv().await {
        text.push_str(std::str::from_utf8(&chunk.bytes).unwrap());
    }
    job.await.unwrap().unwrap();
    text
}

/// A pull whose requests fall into two classifier runs is still one action: the first run
/// hands the open action (a HEAD whose GET may still come) to the next.
#[tokio::test]
async fn an_action_split_across_classifier_runs_is_classified_once() {
    let app = TestApp::new().await;
    let (digest, _) = app.push_image("acme/app", "v1", b"layer").await;
    from(
        &app,
        "192.0.2.1",
        DOCKER,
        Method::HEAD,
        "/v2/acme/app/manifests/v1",
    )
    .await;
    app.state.analytics.write_pending().await.unwrap();
    // A run up to just after the HEAD: nothing is decided yet.
    let after_head = wharf_hub::analytics::now_ms() + 1;
    assert_eq!(
        app.state
            .analytics
            .classify_until(after_head)
            .await
            .unwrap(),
        0
    );
    while wharf_hub::analytics::now_ms() <= after_head {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let by_digest = format!("/v2/acme/app/manifests/{digest}");
    from(&app, "192.0.2.1", DOCKER, Method::GET, &by_digest).await;
    // A HEAD by another client, left open, then ended by its window.
    from(
        &app,
        "192.0.2.2",
        DOCKER,
        Method::HEAD,
        "/v2/acme/app/manifests/v1",
    )
    .await;
    assert_eq!(settle(&app).await, 2);
    let raw = raw_export(&app, "acme", &this_week()).await;
    let mut actions: Vec<&str> = raw
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    actions.sort();
    assert_eq!(actions, ["pull_by_tag", "version_check"], "{raw}");
}

/// Actions that earlier versions stored one per row are moved into batches when wharf
/// starts, and export as before.
#[tokio::test]
async fn actions_stored_one_per_row_are_moved_into_batches() {
    let app = TestApp::new().await;
    let pool = sqlx_pool(&app).await;
    let now = wharf_hub::analytics::now_ms();
    let digest = format!("sha256:{}", "c".repeat(64));
    for (i, action) in ["pull_by_tag", "version_check", "pull_by_digest"]
        .iter()
        .enumerate()
    {
        sqlx::query(
            "INSERT INTO pull_actions (at_ms, namespace, repo, tag, digest, action, method, user_name, \
             ip_week, ip_month, tool, tool_version, country, cloud, ip_type, domain) \
             VALUES ($1, 'acme', 'acme/old', $2, $3, $4, 'GET', '', $5, $5, 'docker', '27.5.1', 'DE', '', '', '')",
        )
        .bind(now - i as i64)
        .bind(if *action == "pull_by_digest" { "" } else { "v1" })
        .bind(digest.as_str())
        .bind(*action)
        .bind(vec![7u8; 16])
        .execute(&pool)
        .await
        .unwrap();
    }
    let other = app.another_node(common::config(app.dir.path())).await;
    let left: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM pull_actions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left.0, 0);
    let period = this_week();
    assert_eq!(
        other
            .state
            .analytics
            .count_actions("acme", &period)
            .await
            .unwrap(),
        3
    );
    let raw = raw_export(&other, "acme", &period).await;
    assert_eq!(raw.lines().count(), 4, "{raw}");
    assert!(raw.contains("pull_by_digest,"), "{raw}");
    assert_eq!(raw.matches("old").count(), 3, "{raw}");
    assert!(!raw.contains(&hex::encode([7u8; 16])), "{raw}");
}
