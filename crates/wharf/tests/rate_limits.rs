//! Pull rate limits: Docker Hub's headers, the 429 answer, what counts, exemptions, and
//! counters shared across restarts and nodes. The JSON API's own limit.

mod common;

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use common::{Resp, TestApp};
use wharf::Config;

fn limited(dir: &std::path::Path, anonymous: u64, authenticated: u64) -> Config {
    Config {
        auth: true,
        rate_limits: true,
        anonymous_pull_limit: anonymous,
        authenticated_pull_limit: authenticated,
        api_request_limit: 5,
        ..common::config(dir)
    }
}

async fn app(anonymous: u64, authenticated: u64) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let cfg = limited(dir.path(), anonymous, authenticated);
    let mut app = TestApp::with_config(dir, cfg).await;
    let hub = &app.state.hub;
    for (name, admin) in [("alice", false), ("bob", false), ("boss", true)] {
        hub.add_user(name, &format!("{name}@example.com"), "password-1", admin)
            .await
            .unwrap();
    }
    hub.add_org("acme", "alice").await.unwrap();
    app.push_auth = Some(basic("alice"));
    app.push_image("alice/app", "v1", b"alice layer").await;
    app.push_image("acme/app", "v1", b"acme layer").await;
    app
}

fn basic(user: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:password-1"));
    format!("Basic {b64}")
}

/// A manifest-accepting request from `ip`, signed in with `auth` if given.
async fn from(app: &TestApp, ip: &str, method: Method, uri: &str, auth: Option<&str>) -> Resp {
    let mut headers = vec![("accept", common::OCI_MANIFEST)];
    if let Some(a) = auth {
        headers.push(("authorization", a));
    }
    app.req_from(ip, method, uri, &headers).await
}

async fn pull(app: &TestApp, ip: &str, auth: Option<&str>) -> Resp {
    from(app, ip, Method::GET, "/v2/alice/app/manifests/v1", auth).await
}

#[tokio::test]
async fn anonymous_pulls_count_per_address_and_stop_at_the_limit() {
    let app = app(3, 10).await;
    for left in [2, 1, 0] {
        let r = pull(&app, "192.0.2.1", None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("ratelimit-limit"), Some("3;w=21600"));
        assert_eq!(
            r.header("ratelimit-remaining"),
            Some(format!("{left};w=21600").as_str())
        );
        assert_eq!(r.header("docker-ratelimit-source"), Some("192.0.2.1"));
        // A HEAD (a version check) shows the quota and never uses it.
        let h = from(
            &app,
            "192.0.2.1",
            Method::HEAD,
            "/v2/alice/app/manifests/v1",
            None,
        )
        .await;
        assert_eq!(h.status, StatusCode::OK);
        assert_eq!(
            h.header("ratelimit-remaining"),
            Some(format!("{left};w=21600").as_str())
        );
    }
    let r = pull(&app, "192.0.2.1", None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.code(), "TOOMANYREQUESTS");
    let msg = r.message();
    assert!(
        msg.contains("pull rate limit of 3 pulls per 6 hours")
            && msg.contains("docker login for 10 pulls"),
        "{msg}"
    );
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=21_600).contains(&retry), "{retry}");
    assert_eq!(r.header("ratelimit-remaining"), Some("0;w=21600"));
    // HEAD still answers when the quota is used up.
    let h = from(
        &app,
        "192.0.2.1",
        Method::HEAD,
        "/v2/alice/app/manifests/v1",
        None,
    )
    .await;
    assert_eq!(h.status, StatusCode::OK);
    // Another address has its own quota; an IPv6 client counts by its /64.
    let r = pull(&app, "192.0.2.2", None).await;
    assert_eq!(r.header("ratelimit-remaining"), Some("2;w=21600"));
    pull(&app, "2001:db8:1:2::1", None).await;
    let r = pull(&app, "2001:db8:1:2:ffff::9", None).await;
    assert_eq!(r.header("ratelimit-remaining"), Some("1;w=21600"));
    assert_eq!(
        r.header("docker-ratelimit-source"),
        Some("2001:db8:1:2::/64")
    );
    // Signing in gives the user's own quota.
    let r = pull(&app, "192.0.2.1", Some(&basic("bob"))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("ratelimit-limit"), Some("10;w=21600"));
}

#[tokio::test]
async fn failed_pulls_and_blob_downloads_do_not_count() {
    let app = app(2, 10).await;
    let r = from(
        &app,
        "192.0.2.1",
        Method::GET,
        "/v2/alice/app/manifests/nope",
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = pull(&app, "192.0.2.1", None).await;
    assert_eq!(r.header("ratelimit-remaining"), Some("1;w=21600"));
    let manifest = r.json();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let b = from(
        &app,
        "192.0.2.1",
        Method::GET,
        &format!("/v2/alice/app/blobs/{layer}"),
        None,
    )
    .await;
    assert_eq!(b.status, StatusCode::OK);
    assert!(b.header("ratelimit-limit").is_none());
    let r = pull(&app, "192.0.2.1", None).await;
    assert_eq!(r.header("ratelimit-remaining"), Some("0;w=21600"));
}

#[tokio::test]
async fn signed_in_users_count_per_user_with_overrides_and_exemptions() {
    let app = app(2, 3).await;
    let hub = &app.state.hub;
    let boss = hub.user("boss").await.unwrap().unwrap();
    let alice_id = hub.user("alice").await.unwrap().unwrap().id.to_string();
    // Per user, whatever the address.
    pull(&app, "192.0.2.1", Some(&basic("alice"))).await;
    let r = pull(&app, "192.0.2.9", Some(&basic("alice"))).await;
    assert_eq!(r.header("ratelimit-remaining"), Some("1;w=21600"));
    assert_eq!(r.header("docker-ratelimit-source"), Some(alice_id.as_str()));
    pull(&app, "192.0.2.9", Some(&basic("alice"))).await;
    let r = pull(&app, "192.0.2.9", Some(&basic("alice"))).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.message().contains("administrator"), "{}", r.message());
    // An organization's limit applies to its members.
    hub.set_rate_rule(&boss, "org", "acme", Some(50), "partner")
        .await
        .unwrap();
    let r = pull(&app, "192.0.2.9", Some(&basic("alice"))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("ratelimit-limit"), Some("50;w=21600"));
    // A user's own rule wins; an exemption means no limit and no headers at all.
    hub.set_rate_rule(&boss, "user", "alice", None, "")
        .await
        .unwrap();
    let r = pull(&app, "192.0.2.9", Some(&basic("alice"))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("ratelimit-limit").is_none() && r.header("docker-ratelimit-source").is_none());
    // An exempt range exempts everyone in it, anonymous or not; the narrowest range decides.
    hub.set_rate_rule(&boss, "range", "198.51.100.0/24", None, "office")
        .await
        .unwrap();
    hub.set_rate_rule(&boss, "range", "198.51.100.128/25", Some(7), "lab")
        .await
        .unwrap();
    for _ in 0..3 {
        let r = pull(&app, "198.51.100.4", None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.header("ratelimit-limit").is_none());
    }
    let r = pull(&app, "198.51.100.200", None).await;
    assert_eq!(r.header("ratelimit-limit"), Some("7;w=21600"));
    // Only administrators set rules, and they say what was wrong.
    let alice = hub.user("alice").await.unwrap().unwrap();
    assert!(matches!(
        hub.set_rate_rule(&alice, "user", "alice", None, "").await,
        Err(wharf_hub::HubError::Forbidden(_))
    ));
    let e = hub
        .set_rate_rule(&boss, "range", "10.0.0.0/40", None, "")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("CIDR"), "{e}");
    assert!(matches!(
        hub.set_rate_rule(&boss, "org", "alice", None, "").await,
        Err(wharf_hub::HubError::NotFound(_))
    ));
}

#[tokio::test]
async fn trusted_program_namespaces_pull_without_limits() {
    let app = app(1, 1).await;
    let hub = &app.state.hub;
    let alice = hub.user("alice").await.unwrap().unwrap();
    let boss = hub.user("boss").await.unwrap().unwrap();
    let id = hub
        .apply_program(
            &alice,
            "acme",
            wharf_hub::Badge::OpenSource,
            wharf_hub::PublisherProfile {
                legal_name: "Acme OSS".into(),
                website: "https://acme.example".into(),
                phone: "+1 555 0100".into(),
                email: "oss@acme.example".into(),
                logo: png(512).into(),
            },
        )
        .await
        .unwrap();
    hub.decide_program(&boss, id, wharf_hub::Decision::Approve, "")
        .await
        .unwrap();
    for _ in 0..3 {
        let r = from(
            &app,
            "192.0.2.1",
            Method::GET,
            "/v2/acme/app/manifests/v1",
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        for h in [
            "ratelimit-limit",
            "ratelimit-remaining",
            "docker-ratelimit-source",
        ] {
            assert!(r.header(h).is_none(), "{h} on an exempt image");
        }
    }
    // Other namespaces are still limited for the same client.
    assert_eq!(pull(&app, "192.0.2.1", None).await.status, StatusCode::OK);
    assert_eq!(
        pull(&app, "192.0.2.1", None).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

fn png(side: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::RgbImage::from_pixel(side, side, image::Rgb([20, 90, 200]))
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

#[tokio::test]
async fn counts_survive_a_restart_and_are_shared_between_nodes() {
    let app = app(5, 10).await;
    pull(&app, "192.0.2.1", None).await;
    pull(&app, "192.0.2.1", None).await;
    app.state.hub.sync_rate_limits().await.unwrap();
    let cfg = limited(app.dir.path(), 5, 10);
    let app = app.restart_with(cfg.clone()).await;
    let r = pull(&app, "192.0.2.1", None).await;
    assert_eq!(r.header("ratelimit-remaining"), Some("2;w=21600"));
    // A second node reads the shared count the first time it sees the client…
    let other = app.another_node(cfg).await;
    app.state.hub.sync_rate_limits().await.unwrap();
    let r = pull(&other, "192.0.2.1", None).await;
    assert_eq!(r.header("ratelimit-remaining"), Some("1;w=21600"));
    // …and each node sees the other's pulls after both have synced: at most one sync
    // interval of disagreement.
    let r = pull(&app, "192.0.2.1", None).await;
    assert_eq!(
        r.header("ratelimit-remaining"),
        Some("1;w=21600"),
        "not synced yet"
    );
    other.state.hub.sync_rate_limits().await.unwrap();
    app.state.hub.sync_rate_limits().await.unwrap();
    other.state.hub.sync_rate_limits().await.unwrap();
    for node in [&app, &other] {
        let h = from(
            node,
            "192.0.2.1",
            Method::HEAD,
            "/v2/alice/app/manifests/v1",
            None,
        )
        .await;
        assert_eq!(h.header("ratelimit-remaining"), Some("0;w=21600"));
        assert_eq!(
            pull(node, "192.0.2.1", None).await.status,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
}

#[tokio::test]
async fn the_json_api_has_its_own_limit_with_x_ratelimit_headers() {
    let app = app(100, 100).await;
    let mut remaining = Vec::new();
    for _ in 0..5 {
        let r = from(
            &app,
            "192.0.2.1",
            Method::GET,
            "/v2/search/repositories?query=app",
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("x-ratelimit-limit"), Some("5"));
        let reset: i64 = r.header("x-ratelimit-reset").unwrap().parse().unwrap();
        assert!(reset > wharf_db::now() - 1);
        remaining.push(r.header("x-ratelimit-remaining").unwrap().to_owned());
    }
    assert_eq!(remaining, ["4", "3", "2", "1", "0"]);
    let r = from(&app, "192.0.2.1", Method::GET, "/v1/search?q=app", None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.header("retry-after").is_some());
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("at most 5 per 1 minute")
    );
    // Registry pulls have their own quota.
    assert_eq!(pull(&app, "192.0.2.1", None).await.status, StatusCode::OK);
    // Another client is not affected.
    let r = from(
        &app,
        "192.0.2.2",
        Method::GET,
        "/v2/search/repositories?query=app",
        None,
    )
    .await;
    assert_eq!(r.header("x-ratelimit-remaining"), Some("4"));
}

#[tokio::test]
async fn without_rate_limits_nothing_is_counted_or_shown() {
    let app = TestApp::new().await;
    app.push_image("lib/app", "v1", b"layer").await;
    for _ in 0..3 {
        let r = from(
            &app,
            "192.0.2.1",
            Method::GET,
            "/v2/lib/app/manifests/v1",
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.header("ratelimit-limit").is_none());
    }
    let r = from(
        &app,
        "192.0.2.1",
        Method::GET,
        "/v2/search/repositories",
        None,
    )
    .await;
    assert!(r.header("x-ratelimit-limit").is_none());
}
