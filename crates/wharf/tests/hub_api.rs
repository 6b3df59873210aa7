//! Router tests for the Hub-style JSON API: login, access tokens, organization members.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::*;

async fn app() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.auth = true;
    let app = TestApp::with_config(dir, cfg).await;
    for name in ["alice", "bob", "carol"] {
        app.state
            .hub
            .add_user(
                name,
                &format!("{name}@example.com"),
                &format!("{name}-password"),
                false,
            )
            .await
            .unwrap();
    }
    app.state.hub.add_org("acme", "alice").await.unwrap();
    app.state
        .hub
        .set_org_member("acme", "bob", wharf_hub::OrgRole::Editor)
        .await
        .unwrap();
    app
}

async fn post_json(app: &TestApp, uri: &str, auth: Option<&str>, body: serde_json::Value) -> Resp {
    let bearer = auth.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(b) = &bearer {
        headers.push(("authorization", b.as_str()));
    }
    app.req(Method::POST, uri, &headers, body.to_string()).await
}

async fn login(app: &TestApp, user: &str, password: &str) -> String {
    let r = post_json(
        app,
        "/v2/users/login",
        None,
        serde_json::json!({"username": user, "password": password}),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn login_and_access_tokens() {
    let app = app().await;
    let bad = post_json(
        &app,
        "/v2/users/login",
        None,
        serde_json::json!({"username": "alice", "password": "nope"}),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert_eq!(bad.json()["detail"], bad.json()["message"]);
    let malformed = post_json(
        &app,
        "/v2/users/login",
        None,
        serde_json::json!({"user": "alice"}),
    )
    .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert!(
        malformed.json()["detail"]
            .as_str()
            .unwrap()
            .contains("JSON")
    );

    let jwt = login(&app, "alice", "alice-password").await;
    let created = post_json(
        &app,
        "/v2/access-tokens",
        Some(&jwt),
        serde_json::json!({"token_label": "ci", "scopes": ["repo:read"]}),
    )
    .await;
    assert_eq!(
        created.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let c = created.json();
    let secret = c["token"].as_str().unwrap().to_owned();
    let uuid = c["uuid"].as_str().unwrap().to_owned();
    assert_eq!(c["scopes"], serde_json::json!(["repo:read"]));
    assert_eq!(c["is_active"], true);

    // The token signs in like a password, on the API (as Docker Hub's /v2/auth/token).
    let r = post_json(
        &app,
        "/v2/auth/token",
        None,
        serde_json::json!({"identifier": "alice", "secret": secret}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let token_jwt = r.json()["access_token"].as_str().unwrap().to_owned();
    // …but a read-scoped token may not manage tokens.
    let r = app
        .req(
            Method::GET,
            "/v2/access-tokens",
            &[("authorization", &format!("Bearer {token_jwt}"))],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let auth = format!("Bearer {jwt}");
    let list = app
        .req(
            Method::GET,
            "/v2/access-tokens?page_size=10",
            &[("authorization", &auth)],
            Body::empty(),
        )
        .await;
    let l = list.json();
    assert_eq!(l["count"], 1);
    assert_eq!(l["active_count"], 1);
    assert!(
        l["results"][0].get("token").is_none(),
        "a listing never shows secrets"
    );
    assert!(
        !list
            .body
            .windows(secret.len())
            .any(|w| w == secret.as_bytes())
    );

    // Someone else's token is "not found"; one's own is revoked by PATCH.
    let bob = login(&app, "bob", "bob-password").await;
    let r = app
        .req(
            Method::DELETE,
            &format!("/v2/access-tokens/{uuid}"),
            &[("authorization", &format!("Bearer {bob}"))],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .req(
            Method::PATCH,
            &format!("/v2/access-tokens/{uuid}"),
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            r#"{"is_active": false}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["is_active"], false);
    // A revoked token no longer signs in, and its API token stops working.
    let r = post_json(
        &app,
        "/v2/auth/token",
        None,
        serde_json::json!({"identifier": "alice", "secret": secret}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app
        .req(
            Method::GET,
            "/v2/orgs/acme/members",
            &[("authorization", &format!("Bearer {token_jwt}"))],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn organization_members_are_listed_to_members_only() {
    let app = app().await;
    let alice = login(&app, "alice", "alice-password").await;
    let r = app
        .req(
            Method::GET,
            "/v2/orgs/acme/members",
            &[("authorization", &format!("Bearer {alice}"))],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json()["results"],
        serde_json::json!([{"username": "alice", "role": "owner"}, {"username": "bob", "role": "editor"}])
    );
    let carol = login(&app, "carol", "carol-password").await;
    let hidden = app
        .req(
            Method::GET,
            "/v2/orgs/acme/members",
            &[("authorization", &format!("Bearer {carol}"))],
            Body::empty(),
        )
        .await;
    let missing = app
        .req(
            Method::GET,
            "/v2/orgs/nobody/members",
            &[("authorization", &format!("Bearer {carol}"))],
            Body::empty(),
        )
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    assert_eq!(hidden.status, missing.status);
    let anon = app.get("/v2/orgs/acme/members").await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
    for bad in [
        "Bearer not.a.jwt",
        "Basic YWxpY2U6YWxpY2UtcGFzc3dvcmQ=",
        "Bearer",
    ] {
        let r = app
            .req(
                Method::GET,
                "/v2/orgs/acme/members",
                &[("authorization", bad)],
                Body::empty(),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{bad}");
        assert!(r.json()["detail"].is_string());
    }
}

#[tokio::test]
async fn groups_are_teams() {
    let app = app().await;
    let alice = format!("Bearer {}", login(&app, "alice", "alice-password").await);
    let bob = format!("Bearer {}", login(&app, "bob", "bob-password").await);
    let carol = format!("Bearer {}", login(&app, "carol", "carol-password").await);
    fn with(auth: &str) -> Vec<(&'static str, &str)> {
        vec![
            ("content-type", "application/json"),
            ("authorization", auth),
        ]
    }
    let r = app
        .req(
            Method::POST,
            "/v2/orgs/acme/groups",
            &with(&bob),
            r#"{"name":"devs"}"#,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "editors do not manage groups"
    );
    let r = app
        .req(
            Method::POST,
            "/v2/orgs/acme/groups",
            &with(&alice),
            r#"{"name":"devs"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = app
        .req(
            Method::POST,
            "/v2/orgs/acme/groups",
            &with(&alice),
            r#"{"name":"Bad Name"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = app
        .req(
            Method::POST,
            "/v2/orgs/acme/groups/devs/members",
            &with(&alice),
            r#"{"member":"bob"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .req(
            Method::POST,
            "/v2/orgs/acme/groups/devs/members",
            &with(&alice),
            r#"{"member":"carol"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "carol is not in acme");
    let list = app
        .req(
            Method::GET,
            "/v2/orgs/acme/groups",
            &with(&bob),
            Body::empty(),
        )
        .await;
    assert_eq!(
        list.json()["results"],
        serde_json::json!([{"name": "devs", "member_count": 1}])
    );
    let members = app
        .req(
            Method::GET,
            "/v2/orgs/acme/groups/devs/members",
            &with(&bob),
            Body::empty(),
        )
        .await;
    assert_eq!(
        members.json()["results"],
        serde_json::json!([{"username": "bob"}])
    );
    let hidden = app
        .req(
            Method::GET,
            "/v2/orgs/acme/groups",
            &with(&carol),
            Body::empty(),
        )
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
}

/// Behind a trusted load balancer, sign-in limits apply to the client `X-Forwarded-For`
/// names, not to the balancer; from anyone else the header is ignored.
#[tokio::test]
async fn sign_in_limits_apply_per_forwarded_client_behind_a_trusted_proxy() {
    use tower::ServiceExt as _;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.auth = true;
    cfg.trusted_proxies = Some("127.0.0.1, ::1".into());
    let app = TestApp::with_config(dir, cfg).await;
    let attempt = |peer: &'static str, forwarded: &'static str, n: usize| {
        let router = app.router.clone();
        async move {
            let req = axum::http::Request::builder()
                .method(Method::POST)
                .uri("/v2/users/login")
                .header("content-type", "application/json")
                .header("x-forwarded-for", forwarded)
                .extension(wharf::ClientAddr(peer.parse().unwrap()))
                .body(Body::from(
                    serde_json::json!({"username": format!("nobody{n}"), "password": "wrong"})
                        .to_string(),
                ))
                .unwrap();
            router.oneshot(req).await.unwrap().status()
        }
    };
    // 50 failures per address per 5 minutes; each attempt names another account.
    for n in 0..50 {
        let s = attempt("127.0.0.1:40000", "203.0.113.7", n).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "attempt {n}");
    }
    assert_eq!(
        attempt("127.0.0.1:40000", "198.51.100.1, 203.0.113.7", 50).await,
        StatusCode::TOO_MANY_REQUESTS,
        "the forwarded client is throttled (the rightmost untrusted address counts)"
    );
    assert_eq!(
        attempt("127.0.0.1:40000", "203.0.113.8", 51).await,
        StatusCode::UNAUTHORIZED,
        "another client behind the same balancer is not"
    );
    // A client that is not a trusted proxy cannot pick its address with the header.
    assert_eq!(
        attempt("192.0.2.9:40000", "203.0.113.8", 52).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        attempt("192.0.2.9:40000", "198.51.100.2", 53).await,
        StatusCode::UNAUTHORIZED,
        "its own address has no failures behind it yet"
    );
}
