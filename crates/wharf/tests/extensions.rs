//! Extension analytics through the router: who may report events for an extension, how bad
//! events are refused (whole requests, nothing stored), and the Extension core and premium
//! summaries computed from the events sent, by hand.

mod common;

use axum::http::{Method, StatusCode};
use common::*;
use serde_json::{Value, json};
use time::{Date, Duration, OffsetDateTime};
use wharf_analytics::report::Period;
use wharf_analytics::report::rows::{ExtensionCoreRow, ExtensionPremiumRow};

struct Setup {
    app: TestApp,
    alice: String,
    bob: String,
    carol: String,
}

/// alice owns acme, bob is a plain member of it, carol is outside; alice pushed acme/ext and
/// acme/tool (public) and acme/secret (private).
async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.auth = true;
    let mut app = TestApp::with_config(dir, cfg).await;
    let h = app.state.hub.clone();
    for name in ["alice", "bob", "carol"] {
        h.add_user(
            name,
            &format!("{name}@example.com"),
            &format!("{name}-password"),
            false,
        )
        .await
        .unwrap();
    }
    h.add_org("acme", "alice").await.unwrap();
    h.set_org_member("acme", "bob", wharf_hub::OrgRole::Member)
        .await
        .unwrap();
    app.push_auth = Some(format!("Basic {}", base64_encode("alice:alice-password")));
    for repo in ["acme/ext", "acme/tool", "acme/secret"] {
        app.push_image(repo, "1.0.0", repo.as_bytes()).await;
    }
    let token = |n: &str| {
        let h = h.clone();
        let n = n.to_owned();
        async move {
            let u = h.user(&n).await.unwrap().unwrap();
            format!("Bearer {}", h.issue_hub_token(&u).unwrap().token)
        }
    };
    let (alice, bob, carol) = (
        token("alice").await,
        token("bob").await,
        token("carol").await,
    );
    let r = app
        .req(
            Method::PATCH,
            "/v2/namespaces/acme/repositories/secret",
            &[
                ("authorization", alice.as_str()),
                ("content-type", "application/json"),
            ],
            r#"{"is_private": true}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", detail(&r));
    Setup {
        app,
        alice,
        bob,
        carol,
    }
}

fn base64_encode(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn detail(r: &Resp) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

fn events_path(repo: &str) -> String {
    let (ns, name) = repo.split_once('/').unwrap();
    format!("/api/publisher/analytics/v1/extensions/{ns}/{name}/events")
}

async fn post_raw(app: &TestApp, repo: &str, auth: Option<&str>, body: impl Into<Vec<u8>>) -> Resp {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(a) = auth {
        headers.push(("authorization", a));
    }
    app.req(Method::POST, &events_path(repo), &headers, body.into())
        .await
}

async fn post(app: &TestApp, repo: &str, auth: Option<&str>, events: Value) -> Resp {
    post_raw(
        app,
        repo,
        auth,
        serde_json::to_vec(&json!({ "events": events })).unwrap(),
    )
    .await
}

/// A signed-in JSON API token for `username` with `secret` (a password or an access token).
async fn login(app: &TestApp, username: &str, secret: &str) -> String {
    let r = app
        .req(
            Method::POST,
            "/v2/users/login",
            &[("content-type", "application/json")],
            serde_json::to_vec(&json!({"username": username, "password": secret})).unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", detail(&r));
    format!("Bearer {}", r.json()["token"].as_str().unwrap())
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        t.date(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Noon UTC of `date`, as RFC 3339.
fn noon(date: Date) -> String {
    format!("{date}T12:00:00Z")
}

fn ev(kind: &str, user: &str, timestamp: &str) -> Value {
    json!({"type": kind, "user": user, "timestamp": timestamp})
}

async fn stored(app: &TestApp, repo: &str) -> u64 {
    app.state
        .registry
        .db()
        .count_extension_events(repo)
        .await
        .unwrap()
}

#[tokio::test]
async fn reporting_events_needs_push_access_to_the_extension() {
    let s = setup().await;
    let app = &s.app;
    let one = json!([ev("install", "user-1", &rfc3339(now()))]);

    let r = post(app, "acme/ext", None, one.clone()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", detail(&r));
    assert!(r.json()["detail"].as_str().unwrap().contains("sign in"));
    let r = post(app, "acme/ext", Some("Bearer not-a-token"), one.clone()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // A member reads acme's repositories but may not push: 403.
    let r = post(app, "acme/ext", Some(&s.bob), one.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", detail(&r));
    assert!(r.json()["detail"].as_str().unwrap().contains("push"));
    // An outsider sees the public extension (403) but not the private one (404, as missing).
    let r = post(app, "acme/ext", Some(&s.carol), one.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let secret = post(app, "acme/secret", Some(&s.carol), one.clone()).await;
    let missing = post(app, "acme/nothing", Some(&s.carol), one.clone()).await;
    assert_eq!(secret.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        secret.json()["detail"]
            .as_str()
            .unwrap()
            .replace("secret", "X"),
        missing.json()["detail"]
            .as_str()
            .unwrap()
            .replace("nothing", "X"),
    );
    let r = post(app, "acme/nothing", Some(&s.alice), one.clone()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = post(app, "acme/Bad..Name", Some(&s.alice), one.clone()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", detail(&r));
    assert_eq!(stored(app, "acme/ext").await, 0);

    // The owner, signed in with a password.
    let r = post(app, "acme/ext", Some(&s.alice), one.clone()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", detail(&r));
    assert_eq!(r.json(), json!({"accepted": 1}));
    // A personal access token: read-write may, read may not.
    let hub = &app.state.hub;
    let rw = hub
        .add_access_token("alice", "collector", "read-write", None)
        .await
        .unwrap();
    let ro = hub
        .add_access_token("alice", "reader", "read", None)
        .await
        .unwrap();
    let rw = login(app, "alice", &rw.secret).await;
    let ro = login(app, "alice", &ro.secret).await;
    let two = json!([
        ev("open", "user-1", &rfc3339(now())),
        ev("update", "user-2", &rfc3339(now())),
    ]);
    let r = post(app, "acme/ext", Some(&rw), two.clone()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", detail(&r));
    assert_eq!(r.json()["accepted"], 2);
    let r = post(app, "acme/ext", Some(&ro), two.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", detail(&r));
    // An organization access token acts in its organization.
    let org = hub
        .add_org_access_token("alice", "acme", "collector", "read-write", None)
        .await
        .unwrap();
    let org = login(app, "acme", &org.secret).await;
    let r = post(app, "acme/ext", Some(&org), one.clone()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", detail(&r));
    assert_eq!(stored(app, "acme/ext").await, 4);
    assert_eq!(stored(app, "acme/secret").await, 0);
}

#[tokio::test]
async fn bad_events_refuse_the_whole_request_naming_the_event_and_field() {
    let s = setup().await;
    let app = &s.app;
    let t = rfc3339(now());
    let good = ev("install", "user-1", &t);
    let cases: Vec<(Value, &str)> = vec![
        (
            json!([good, good, ev("installed", "u", &t)]),
            "events[2].type",
        ),
        (
            json!([good, {"user": "u", "timestamp": t}]),
            "events[1].type",
        ),
        (json!([ev("install", "", &t)]), "events[0].user"),
        (
            json!([good, {"type": "open", "timestamp": t}]),
            "events[1].user",
        ),
        (
            json!([good, good, good, ev("open", "u", "2026-13-01T00:00:00Z")]),
            "events[3].timestamp",
        ),
        (
            json!([ev("open", "u", &rfc3339(now() + Duration::days(2)))]),
            "events[0].timestamp",
        ),
        (
            json!([good, ev("open", "u", &rfc3339(now() - Duration::days(91)))]),
            "events[1].timestamp",
        ),
        (
            json!([{"type": "open", "user": "u", "timestamp": t, "version": 12}]),
            "events[0].version",
        ),
        (json!([]), "events:"),
        (Value::Array(vec![good.clone(); 1001]), "at most 1000"),
    ];
    for (events, needle) in cases {
        let r = post(app, "acme/ext", Some(&s.alice), events.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{events}: {}",
            detail(&r)
        );
        let message = r.json()["detail"].as_str().unwrap().to_owned();
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    }
    for body in [&b"not json"[..], b"{}", br#"{"events": {}}"#] {
        let r = post_raw(app, "acme/ext", Some(&s.alice), body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", detail(&r));
        assert!(
            detail(&r).contains("not the expected JSON"),
            "{}",
            detail(&r)
        );
    }
    // More than 1 MiB.
    let big = format!(
        r#"{{"events": [{{"type": "open", "user": "{}", "timestamp": "{t}"}}]}}"#,
        "x".repeat(1024 * 1024)
    );
    let r = post_raw(app, "acme/ext", Some(&s.alice), big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", detail(&r));
    // 1000 events is the limit, not over it.
    let r = post(
        app,
        "acme/ext",
        Some(&s.alice),
        Value::Array(vec![good.clone(); 1000]),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", detail(&r));
    assert_eq!(stored(app, "acme/ext").await, 1000);
}

#[tokio::test]
async fn user_ids_are_not_stored_in_the_clear() {
    let s = setup().await;
    let app = &s.app;
    let id = "desktop-user-7f3e9a1c";
    let r = post(
        app,
        "acme/ext",
        Some(&s.alice),
        json!([ev("install", id, &rfc3339(now()))]),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", detail(&r));
    if std::env::var("WHARF_TEST_BACKEND").as_deref() == Ok("scale") {
        return; // the database is elsewhere; the hashing has its own unit test
    }
    let mut bytes = Vec::new();
    for f in ["wharf.db", "wharf.db-wal"] {
        if let Ok(b) = std::fs::read(app.dir.path().join(f)) {
            bytes.extend(b);
        }
    }
    assert!(!bytes.is_empty());
    assert!(
        !bytes.windows(id.len()).any(|w| w == id.as_bytes()),
        "the user id is in the database file"
    );
}

fn core(
    installs: u64,
    total_installs: u64,
    uninstalls: u64,
    total_uninstalls: u64,
    updates: u64,
) -> ExtensionCoreRow {
    ExtensionCoreRow {
        installs,
        total_installs,
        uninstalls,
        total_uninstalls,
        updates,
    }
}

fn premium(
    installs: u64,
    unique_installs: u64,
    uninstalls: u64,
    unique_uninstalls: u64,
    usage: u64,
    unique_users: u64,
) -> ExtensionPremiumRow {
    ExtensionPremiumRow {
        installs,
        unique_installs,
        uninstalls,
        unique_uninstalls,
        usage,
        unique_users,
    }
}

async fn core_of(app: &TestApp, period: &Period) -> Vec<(String, ExtensionCoreRow)> {
    app.state
        .extensions
        .extension_core_summary("acme", period)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.repository, e.row))
        .collect()
}

async fn premium_of(app: &TestApp, period: &Period) -> Vec<(String, ExtensionPremiumRow)> {
    app.state
        .extensions
        .extension_premium_summary("acme", period)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.repository, e.row))
        .collect()
}

#[tokio::test]
async fn summaries_count_a_week_and_a_month_of_events_by_hand() {
    let s = setup().await;
    let app = &s.app;
    // M is last month, W the week (Monday to Sunday) holding its 10th (so within M), PM the
    // month before M (its 20th is at most ~71 days ago: within the 90 days accepted).
    let today = now().date();
    let month = Period::month_of(today).previous();
    let day = |n: u8| month.start().replace_day(n).unwrap();
    let week = Period::week_of(day(10));
    assert!(month.contains(week.start()) && month.contains(week.last_day()));
    let before = noon(month.previous().start().replace_day(20).unwrap());
    let first = noon(day(1));
    let monday = noon(week.start());
    let wednesday = noon(week.start() + Duration::days(2));
    let late = noon(day(25));
    // The first instant after M (at most now).
    let after = format!("{}T00:00:00Z", month.end());
    let events = json!([
        // Before M.
        ev("install", "u1", &before),
        ev("install", "u2", &before),
        ev("uninstall", "u2", &before),
        // M, before W.
        ev("install", "u3", &first),
        ev("open", "u3", &first),
        // W.
        ev("install", "u1", &monday),
        ev("install", "u1", &monday),
        ev("install", "u2", &monday),
        ev("uninstall", "u1", &monday),
        {"type": "update", "user": "u2", "timestamp": monday, "version": "1.1.0"},
        ev("open", "u1", &monday),
        ev("open", "u1", &monday),
        ev("open", "u2", &monday),
        ev("uninstall", "u2", &wednesday),
        ev("update", "u1", &wednesday),
        ev("open", "u3", &wednesday),
        // M, after W.
        ev("install", "u2", &late),
        ev("open", "u2", &late),
        // After M.
        ev("install", "u5", &after),
        ev("uninstall", "u1", &after),
        ev("open", "u1", &after),
    ]);
    let r = post(app, "acme/ext", Some(&s.alice), events).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", detail(&r));
    assert_eq!(r.json()["accepted"], 21);
    let r = post(
        app,
        "acme/tool",
        Some(&s.alice),
        json!([ev("install", "u1", &monday)]),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", detail(&r));

    // W: installs u1 u1 u2; all-time installs by its end 2 + 1 + 3; uninstalls u1 u2, all
    // time 1 + 2; updates 2; openings u1 u1 u2 u3.
    assert_eq!(
        core_of(app, &week).await,
        vec![
            ("ext".to_owned(), core(3, 6, 2, 3, 2)),
            ("tool".to_owned(), core(1, 1, 0, 0, 0)),
        ]
    );
    assert_eq!(
        premium_of(app, &week).await,
        vec![
            ("ext".to_owned(), premium(3, 2, 2, 2, 4, 3)),
            ("tool".to_owned(), premium(1, 1, 0, 0, 0, 0)),
        ]
    );
    // The week after W has no events; the totals carry over.
    assert_eq!(
        core_of(app, &week.next()).await,
        vec![
            ("ext".to_owned(), core(0, 6, 0, 3, 0)),
            ("tool".to_owned(), core(0, 1, 0, 0, 0)),
        ]
    );
    // M: installs u3, u1 u1 u2, u2; all time 2 + 5; uninstalls u1 u2, all time 1 + 2;
    // openings u3, u1 u1 u2 u3, u2 by three users (u3 and u2 open in two different weeks of
    // M: one user each for the month).
    assert_eq!(
        core_of(app, &month).await,
        vec![
            ("ext".to_owned(), core(5, 7, 2, 3, 2)),
            ("tool".to_owned(), core(1, 1, 0, 0, 0)),
        ]
    );
    assert_eq!(
        premium_of(app, &month).await,
        vec![
            ("ext".to_owned(), premium(5, 3, 2, 2, 6, 3)),
            ("tool".to_owned(), premium(1, 1, 0, 0, 0, 0)),
        ]
    );
    // The month before M: only what happened then; acme/tool had nothing yet.
    assert_eq!(
        premium_of(app, &month.previous()).await,
        vec![("ext".to_owned(), premium(2, 2, 1, 1, 0, 0))]
    );
    // Another namespace has no extensions.
    assert!(
        app.state
            .extensions
            .extension_core_summary("other", &month)
            .await
            .unwrap()
            .is_empty()
    );
}

/// The analytics API hands out one signed link per extension for a past week's extension
/// summaries, each downloading that extension's row without a token.
#[tokio::test]
async fn extension_summaries_download_through_the_analytics_api() {
    let s = setup().await;
    let app = &s.app;
    let last_week = Period::week_of(now().date()).previous();
    let monday = last_week.start();
    let r = post(
        app,
        "acme/ext",
        Some(&s.alice),
        json!([
            ev("install", "u1", &noon(monday)),
            ev("install", "u2", &noon(monday)),
            ev("uninstall", "u1", &noon(monday)),
            ev("open", "u2", &noon(monday))
        ]),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", detail(&r));
    // acme needs analytics for the API to answer.
    let boss = app.state.hub.user("alice").await.unwrap().unwrap();
    let admin = wharf_hub::User {
        is_admin: true,
        ..boss
    };
    app.state
        .hub
        .enable_analytics(&admin, "acme")
        .await
        .unwrap();
    let (year, week, _) = monday.to_iso_week_date();
    let view = |v: &str| {
        format!(
            "/api/publisher/analytics/v1/namespaces/acme/pulls/exports/years/{year}/weeks/{week}/{v}"
        )
    };
    let meta = app
        .req(
            Method::GET,
            "/api/publisher/analytics/v1/namespaces/acme",
            &[("authorization", s.bob.as_str())],
            "",
        )
        .await;
    assert_eq!(meta.status, StatusCode::OK, "{}", detail(&meta));
    assert_eq!(meta.json()["extensionPublisher"], true);
    for (v, header, row) in [
        (
            "extension-core",
            "Installs,TotalInstalls,Uninstalls,TotalUninstalls,Updates",
            "2,2,1,1,0",
        ),
        (
            "extension-premium",
            "Installs,UniqueInstalls,Uninstalls,UniqueUninstalls,Usage,UniqueUsers",
            "2,2,1,1,1,1",
        ),
    ] {
        let r = app
            .req(
                Method::GET,
                &view(v),
                &[("authorization", s.bob.as_str())],
                "",
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", detail(&r));
        let links = r.json()["data"].as_array().unwrap().clone();
        assert_eq!(links.len(), 1, "one extension has events: {links:?}");
        let url = links[0]["url"].as_str().unwrap();
        let path = &url[url.find("/api/").unwrap()..];
        assert!(path.contains(&format!("/{v}/ext?")), "{path}");
        let csv = app.req(Method::GET, path, &[], "").await;
        assert_eq!(csv.status, StatusCode::OK, "{}", detail(&csv));
        assert_eq!(
            String::from_utf8_lossy(&csv.body),
            format!("{header}\n{row}\n")
        );
        // The signature covers the extension: another one's file is refused.
        let other = path.replace("/ext?", "/tool?");
        assert_eq!(
            app.req(Method::GET, &other, &[], "").await.status,
            StatusCode::FORBIDDEN
        );
    }
    // Outsiders learn nothing.
    let r = app
        .req(
            Method::GET,
            &view("extension-core"),
            &[("authorization", s.carol.as_str())],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
