//! The authorization matrix: every registry endpoint under every method, asked by every kind
//! of caller, with the answer each must get. The matrix is data: an endpoint kind or method
//! without a row fails `every_endpoint_has_a_row`.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine as _;
use tower::ServiceExt;

use super::endpoint::Endpoint;
use crate::{App, AppState, Config};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Let through (whatever the endpoint then says: 2xx, 404, 400, 405…).
    Ok,
    Unauthorized,
    Forbidden,
}
use Answer::{Forbidden as F, Ok as O, Unauthorized as U};

/// Callers, in this order: anonymous, reader (org member), writer (org owner), administrator,
/// outsider (another org's owner), a revoked access token, an expired JWT, a tampered JWT, a
/// JWT that grants only pull on the repository.
const CALLERS: [&str; 9] = [
    "anonymous",
    "reader",
    "writer",
    "admin",
    "outsider",
    "revoked",
    "expired",
    "tampered",
    "pull-only",
];
const READ: [Answer; 9] = [O, O, O, O, O, U, U, U, O];
const WRITE: [Answer; 9] = [U, F, O, O, F, U, U, U, U];
const SIGNED_IN: [Answer; 9] = [U, O, O, O, O, U, U, U, O];
const ADMIN: [Answer; 9] = [U, F, F, O, F, U, U, U, U];

const METHODS: [&str; 6] = ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"];

#[rustfmt::skip]
const MATRIX: &[(&str, &str, [Answer; 9])] = &[
    ("base", "GET", SIGNED_IN), ("base", "HEAD", SIGNED_IN), ("base", "PUT", SIGNED_IN),
    ("base", "POST", SIGNED_IN), ("base", "PATCH", SIGNED_IN), ("base", "DELETE", SIGNED_IN),
    ("catalog", "GET", ADMIN), ("catalog", "HEAD", ADMIN), ("catalog", "PUT", ADMIN),
    ("catalog", "POST", ADMIN), ("catalog", "PATCH", ADMIN), ("catalog", "DELETE", ADMIN),
    ("tags", "GET", READ), ("tags", "HEAD", READ), ("tags", "PUT", READ),
    ("tags", "POST", READ), ("tags", "PATCH", READ), ("tags", "DELETE", READ),
    ("referrers", "GET", READ), ("referrers", "HEAD", READ), ("referrers", "PUT", READ),
    ("referrers", "POST", READ), ("referrers", "PATCH", READ), ("referrers", "DELETE", READ),
    ("manifest", "GET", READ), ("manifest", "HEAD", READ), ("manifest", "PUT", WRITE),
    ("manifest", "POST", WRITE), ("manifest", "PATCH", WRITE), ("manifest", "DELETE", WRITE),
    ("blob", "GET", READ), ("blob", "HEAD", READ), ("blob", "PUT", WRITE),
    ("blob", "POST", WRITE), ("blob", "PATCH", WRITE), ("blob", "DELETE", WRITE),
    ("upload-start", "GET", WRITE), ("upload-start", "HEAD", WRITE), ("upload-start", "PUT", WRITE),
    ("upload-start", "POST", WRITE), ("upload-start", "PATCH", WRITE), ("upload-start", "DELETE", WRITE),
    ("upload", "GET", WRITE), ("upload", "HEAD", WRITE), ("upload", "PUT", WRITE),
    ("upload", "POST", WRITE), ("upload", "PATCH", WRITE), ("upload", "DELETE", WRITE),
];

#[test]
fn every_endpoint_has_a_row() {
    for kind in Endpoint::KINDS {
        for method in METHODS {
            let rows = MATRIX
                .iter()
                .filter(|(k, m, _)| *k == kind && *m == method)
                .count();
            assert_eq!(
                rows, 1,
                "the matrix needs exactly one row for {method} {kind}"
            );
        }
    }
    assert_eq!(MATRIX.len(), Endpoint::KINDS.len() * METHODS.len());
    for (kind, _) in examples(
        "sha256:x",
        "sha256:y",
        "00000000-0000-4000-8000-000000000000",
    ) {
        assert!(Endpoint::KINDS.contains(&kind));
    }
}

/// An example path per kind (reads aim at real content, writes at names that do not exist, so
/// the rows do not change each other's answers).
fn examples(blob: &str, manifest: &str, upload: &str) -> Vec<(&'static str, String)> {
    let v = vec![
        ("/v2/".to_owned(), "/v2/".to_owned()),
        ("/v2/_catalog".into(), "/v2/_catalog".into()),
        (
            "/v2/acme/app/tags/list".into(),
            "/v2/acme/app/tags/list".into(),
        ),
        (
            format!("/v2/acme/app/referrers/{manifest}"),
            format!("/v2/acme/app/referrers/{manifest}"),
        ),
        (
            "/v2/acme/app/manifests/v1".into(),
            "/v2/acme/app/manifests/ghost".into(),
        ),
        (
            format!("/v2/acme/app/blobs/{blob}"),
            format!("/v2/acme/app/blobs/sha256:{}", "0".repeat(64)),
        ),
        (
            "/v2/acme/app/blobs/uploads/".into(),
            "/v2/acme/app/blobs/uploads/".into(),
        ),
        (
            format!("/v2/acme/app/blobs/uploads/{upload}"),
            format!("/v2/acme/app/blobs/uploads/{upload}"),
        ),
    ];
    v.into_iter()
        .map(|(read, write)| {
            let kind = Endpoint::parse(read.strip_prefix("/v2/").unwrap_or(""))
                .map_or("none", |e| e.kind());
            (kind, format!("{read}\n{write}"))
        })
        .collect()
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// Two forgeries of a genuine token: one whose subject is changed to `sub` with the
/// signature kept (tampered), and one properly signed but long expired.
async fn forged(state: &AppState, genuine: &str, sub: &str) -> (String, String) {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = genuine.split('.').collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&engine.decode(parts[1]).unwrap()).unwrap();
    let original_sub = claims["sub"].clone();
    claims["sub"] = sub.into();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        engine.encode(serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );
    let secret = state.registry.db().signing_secret(b"unused").await.unwrap();
    claims["sub"] = original_sub;
    claims["exp"] = 1_000_000_000u64.into();
    claims["nbf"] = 999_999_000u64.into();
    claims["iat"] = 999_999_000u64.into();
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&secret),
    )
    .unwrap();
    (tampered, expired)
}

async fn setup() -> (tempfile::TempDir, AppState, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_owned(),
        auth: true,
        ..Config::default()
    };
    let state = App::open(&config).await.unwrap();
    let hub = &state.hub;
    for (name, admin) in [
        ("alice", false),
        ("bob", false),
        ("boss", true),
        ("carol", false),
    ] {
        hub.add_user(
            name,
            &format!("{name}@example.com"),
            &format!("{name}-password"),
            admin,
        )
        .await
        .unwrap();
    }
    hub.add_org("acme", "alice").await.unwrap();
    hub.set_org_member("acme", "bob", wharf_hub::OrgRole::Member)
        .await
        .unwrap();
    hub.add_org("other", "carol").await.unwrap();
    let (layer, manifest) = push_fixture(&state).await;
    (dir, state, layer, manifest)
}

/// A PNG of `w`×`h` pixels.
pub(crate) fn png(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::RgbImage::from_pixel(w, h, image::Rgb([20, 90, 200]))
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

/// Pushes `acme/app:v1` (again: idempotent), so rows that delete can run one after another.
async fn push_fixture(state: &AppState) -> (String, String) {
    let repo: wharf_oci::RepoName = "acme/app".parse().unwrap();
    let layer = bytes::Bytes::from_static(b"layer bytes");
    let layer_digest = wharf_oci::Digest::sha256_of(&layer);
    let stream: wharf_storage::ByteStream =
        Box::pin(futures_util::stream::iter([Ok(layer.clone())]));
    state
        .registry
        .blob_put_monolithic(&repo, &layer_digest, stream, Some(layer.len() as u64))
        .await
        .unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": wharf_oci::Digest::sha256_of(b"{}"), "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": layer_digest, "size": layer.len()}],
    });
    let put = state
        .registry
        .manifest_put(
            &repo,
            &"v1".parse().unwrap(),
            None,
            serde_json::to_vec(&manifest).unwrap().into(),
        )
        .await
        .unwrap();
    (layer_digest.to_string(), put.digest.to_string())
}

/// The Authorization header each caller sends.
async fn credentials(state: &AppState) -> Vec<Option<String>> {
    let hub = &state.hub;
    let revoked = hub
        .add_access_token("alice", "to revoke", "admin", None)
        .await
        .unwrap();
    hub.revoke_access_token(&revoked.token.id).await.unwrap();
    let alice = hub.user("alice").await.unwrap().unwrap();
    let full = hub
        .issue_access_token(
            Some(&alice),
            vec![wharf_hub::Grant {
                kind: "repository".into(),
                name: "acme/app".into(),
                actions: vec!["pull".into(), "push".into(), "delete".into()],
            }],
        )
        .unwrap()
        .token;
    let pull_only = hub
        .issue_access_token(
            Some(&alice),
            vec![wharf_hub::Grant {
                kind: "repository".into(),
                name: "acme/app".into(),
                actions: vec!["pull".into()],
            }],
        )
        .unwrap()
        .token;
    let (tampered, expired) = forged(state, &full, "boss").await;
    vec![
        None,
        Some(basic("bob", "bob-password")),
        Some(basic("alice", "alice-password")),
        Some(basic("boss", "boss-password")),
        Some(basic("carol", "carol-password")),
        Some(basic("alice", &revoked.secret)),
        Some(format!("Bearer {expired}")),
        Some(format!("Bearer {tampered}")),
        Some(format!("Bearer {pull_only}")),
    ]
}

#[tokio::test]
async fn every_endpoint_answers_every_caller_as_the_matrix_says() {
    let (_dir, state, blob, manifest) = setup().await;
    let creds = credentials(&state).await;
    let router = App::router(state.clone());
    let upload = "00000000-0000-4000-8000-000000000000";
    let paths = examples(&blob, &manifest, upload);
    let mut failures = Vec::new();
    for (kind, method, expected) in MATRIX {
        let both = &paths
            .iter()
            .find(|(k, _)| k == kind)
            .expect("an example per kind")
            .1;
        let (read, write) = both.split_once('\n').unwrap();
        let path = if matches!(*method, "GET" | "HEAD") {
            read
        } else {
            write
        };
        for (i, cred) in creds.iter().enumerate() {
            let mut req = Request::builder()
                .method(Method::from_bytes(method.as_bytes()).unwrap())
                .uri(path);
            if let Some(c) = cred {
                req = req.header("authorization", c);
            }
            let resp = router
                .clone()
                .oneshot(req.body(Body::empty()).unwrap())
                .await
                .unwrap();
            let status = resp.status();
            assert!(
                status != StatusCode::INTERNAL_SERVER_ERROR,
                "{method} {path} as {} gave 500",
                CALLERS[i]
            );
            let got = match status {
                StatusCode::UNAUTHORIZED => U,
                StatusCode::FORBIDDEN => F,
                _ => O,
            };
            if got == U {
                let challenge = resp
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                assert!(
                    challenge.starts_with("Bearer realm="),
                    "{method} {path}: 401 without a challenge"
                );
            }
            if got != expected[i] {
                failures.push(format!(
                    "{method} {path} as {}: expected {:?}, got {status}",
                    CALLERS[i], expected[i]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "authorization matrix mismatches:\n{}",
        failures.join("\n")
    );
}

async fn send(
    router: &axum::Router,
    method: &str,
    path: &str,
    cred: Option<&String>,
) -> (StatusCode, String, String) {
    let mut req = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(path);
    if let Some(c) = cred {
        req = req.header("authorization", c);
    }
    let resp = router
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    (
        status,
        challenge,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[tokio::test]
async fn a_private_repository_answers_exactly_as_a_missing_one() {
    let (_dir, state, blob, manifest) = setup().await;
    let creds = credentials(&state).await;
    // acme/secret holds the same content as acme/app, and is private.
    let secret: wharf_oci::RepoName = "acme/secret".parse().unwrap();
    let app: wharf_oci::RepoName = "acme/app".parse().unwrap();
    let digest: wharf_oci::Digest = blob.parse().unwrap();
    state
        .registry
        .blob_mount(&secret, &app, &digest)
        .await
        .unwrap()
        .unwrap();
    let m = state
        .registry
        .manifest_get(&app, &"v1".parse().unwrap())
        .await
        .unwrap();
    state
        .registry
        .manifest_put(
            &secret,
            &"v1".parse().unwrap(),
            Some(&m.media_type),
            m.payload.clone(),
        )
        .await
        .unwrap();
    state.hub.set_repo_private(&secret, true).await.unwrap();
    let router = App::router(state.clone());

    let reads = [
        ("GET", "tags/list".to_owned()),
        ("GET", "manifests/v1".to_owned()),
        ("HEAD", "manifests/v1".to_owned()),
        ("GET", format!("blobs/{blob}")),
        ("HEAD", format!("blobs/{blob}")),
        ("GET", format!("referrers/{manifest}")),
        ("POST", "blobs/uploads/".to_owned()),
    ];
    // anonymous, outsider, a pull-only token for another repository
    for who in [0usize, 4, 8] {
        for (method, tail) in &reads {
            let hidden = send(
                &router,
                method,
                &format!("/v2/acme/secret/{tail}"),
                creds[who].as_ref(),
            )
            .await;
            let missing = send(
                &router,
                method,
                &format!("/v2/acme/missing/{tail}"),
                creds[who].as_ref(),
            )
            .await;
            let missing = (
                missing.0,
                missing.1.replace("acme/missing", "acme/secret"),
                missing.2.replace("acme/missing", "acme/secret"),
            );
            assert_eq!(hidden, missing, "{method} {tail} as {}", CALLERS[who]);
            assert!(
                hidden.0 == StatusCode::UNAUTHORIZED || hidden.0 == StatusCode::FORBIDDEN,
                "{method} {tail} as {}: {:?}",
                CALLERS[who],
                hidden
            );
        }
    }
    // Members of the organization read it; the writer and the administrator too.
    for who in [1usize, 2, 3] {
        let (status, _, _) = send(
            &router,
            "GET",
            "/v2/acme/secret/manifests/v1",
            creds[who].as_ref(),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "as {}", CALLERS[who]);
    }
}

#[tokio::test]
async fn repeated_wrong_passwords_are_throttled_per_account() {
    let (_dir, state, _, _) = setup().await;
    let router = App::router(state.clone());
    let wrong = Some(basic("alice", "not-her-password"));
    for _ in 0..wharf_hub::ACCOUNT_FAILURES {
        let (status, _, body) = send(&router, "GET", "/v2/", wrong.as_ref()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    // Now even the right password waits, on the registry and on the token endpoint.
    let right = Some(basic("alice", "alice-password"));
    let (status, _, body) = send(&router, "GET", "/v2/", right.as_ref()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(
        body.contains("TOOMANYREQUESTS") && body.contains("try again in"),
        "{body}"
    );
    let (status, _, _) = send(&router, "GET", "/token?service=wharf", right.as_ref()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Other accounts are not affected.
    let (status, _, _) = send(
        &router,
        "GET",
        "/v2/",
        Some(basic("bob", "bob-password")).as_ref(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn teams_and_repository_grants() {
    let (_dir, state, _, _) = setup().await;
    let hub = &state.hub;
    let router = App::router(state.clone());
    let bob = Some(basic("bob", "bob-password"));
    let carol = Some(basic("carol", "carol-password"));
    // bob is a plain member of acme: he may pull but not push.
    let put = |repo: &'static str| format!("/v2/{repo}/manifests/ghost");
    assert_eq!(
        send(&router, "PUT", &put("acme/app"), bob.as_ref()).await.0,
        StatusCode::FORBIDDEN
    );
    // A team with write on acme/app lets him push there, and nowhere else.
    hub.add_team("acme", "devs").await.unwrap();
    hub.add_team_member("acme", "devs", "bob").await.unwrap();
    let app_repo: wharf_oci::RepoName = "acme/app".parse().unwrap();
    hub.grant(&app_repo, "acme/devs", wharf_hub::RepoPermission::Write)
        .await
        .unwrap();
    assert_eq!(
        send(&router, "PUT", &put("acme/app"), bob.as_ref()).await.0,
        StatusCode::BAD_REQUEST,
        "allowed, then the empty body is refused"
    );
    assert_eq!(
        send(&router, "PUT", &put("acme/other"), bob.as_ref())
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        send(&router, "DELETE", &put("acme/app"), bob.as_ref())
            .await
            .0,
        StatusCode::FORBIDDEN,
        "write is not admin"
    );
    // Outsiders cannot join a team; a direct grant works for anyone.
    assert!(hub.add_team_member("acme", "devs", "carol").await.is_err());
    let secret: wharf_oci::RepoName = "acme/secret".parse().unwrap();
    hub.set_repo_private(&secret, true).await.unwrap();
    let tags = "/v2/acme/secret/tags/list";
    assert_eq!(
        send(&router, "GET", tags, carol.as_ref()).await.0,
        StatusCode::FORBIDDEN
    );
    hub.grant(&secret, "carol", wharf_hub::RepoPermission::Read)
        .await
        .unwrap();
    assert_eq!(
        send(&router, "GET", tags, carol.as_ref()).await.0,
        StatusCode::OK
    );
    assert_eq!(
        send(
            &router,
            "PUT",
            "/v2/acme/secret/manifests/ghost",
            carol.as_ref()
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    hub.grant(&secret, "carol", wharf_hub::RepoPermission::Admin)
        .await
        .unwrap();
    assert_eq!(
        send(
            &router,
            "DELETE",
            "/v2/acme/secret/manifests/ghost",
            carol.as_ref()
        )
        .await
        .0,
        StatusCode::NOT_FOUND,
        "allowed; the tag does not exist"
    );
    // Unknown grantees are named.
    let e = hub
        .grant(&secret, "acme/nobody", wharf_hub::RepoPermission::Read)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("acme/nobody"), "{e}");
}

/// Regression: a refusal cached while a repository did not exist yet must not outlive its
/// first push.
#[tokio::test]
async fn a_repository_pushed_after_a_refusal_is_pullable_at_once() {
    let (_dir, state, blob, _) = setup().await;
    let router = App::router(state.clone());
    let (status, _, _) = send(&router, "GET", "/v2/alice/new/tags/list", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let new: wharf_oci::RepoName = "alice/new".parse().unwrap();
    let from: wharf_oci::RepoName = "acme/app".parse().unwrap();
    state
        .registry
        .blob_mount(&new, &from, &blob.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let (status, _, body) =
        send(&router, "GET", &format!("/v2/alice/new/blobs/{blob}"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

// ---- the Hub-style JSON API ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    /// Let through (2xx, or 400 for the deliberately empty bodies).
    Ok,
    Unauthorized,
    Forbidden,
    /// Hidden: answered as if it did not exist.
    NotFound,
}

/// Callers: anonymous, owner of acme (alice), member of acme (bob), outsider (carol), an
/// expired API token, a tampered API token, a registry token (the wrong kind), a revoked
/// access token's API token.
const API_CALLERS: [&str; 8] = [
    "anonymous",
    "owner",
    "member",
    "outsider",
    "expired",
    "tampered",
    "registry-token",
    "revoked",
];
const API_PUBLIC: [Api; 8] = [Api::Ok; 8];
const API_SIGNED_IN: [Api; 8] = [
    Api::Unauthorized,
    Api::Ok,
    Api::Ok,
    Api::Ok,
    Api::Unauthorized,
    Api::Unauthorized,
    Api::Unauthorized,
    Api::Unauthorized,
];
const API_OWN_TOKEN: [Api; 8] = [
    Api::Unauthorized,
    Api::Ok,
    Api::NotFound,
    Api::NotFound,
    Api::Unauthorized,
    Api::Unauthorized,
    Api::Unauthorized,
    Api::Unauthorized,
];
const API_ORG_READ: [Api; 8] = [
    Api::Unauthorized,
    Api::Ok,
    Api::Ok,
    Api::NotFound,
    Api::Unauthorized,
    Api::Unauthorized,
    Api::Unauthorized,
    Api::Unauthorized,
];
const API_ORG_OWNER: [Api; 8] = [
    Api::Unauthorized,
    Api::Ok,
    Api::Forbidden,
    Api::Forbidden,
    Api::Unauthorized,
    Api::Unauthorized,
    Api::Unauthorized,
    Api::Unauthorized,
];

/// Reading public things: anyone, but a bad token is refused rather than ignored.
const API_PUBLIC_READ: [Api; 8] = [
    Api::Ok,
    Api::Ok,
    Api::Ok,
    Api::Ok,
    Api::Unauthorized,
    Api::Unauthorized,
    Api::Unauthorized,
    Api::Unauthorized,
];
/// Owners act; members are refused; outsiders do not learn the organization exists.
const API_ORG_OWNER_HIDDEN: [Api; 8] = [
    Api::Unauthorized,
    Api::Ok,
    Api::Forbidden,
    Api::NotFound,
    Api::Unauthorized,
    Api::Unauthorized,
    Api::Unauthorized,
    Api::Unauthorized,
];
/// Administrators only (none of these callers is one).
const API_ADMIN_ONLY: [Api; 8] = [
    Api::Unauthorized,
    Api::Forbidden,
    Api::Forbidden,
    Api::Forbidden,
    Api::Unauthorized,
    Api::Unauthorized,
    Api::Unauthorized,
    Api::Unauthorized,
];

#[rustfmt::skip]
const API_MATRIX: &[(&str, &str, [Api; 8])] = &[
    ("POST", "/v2/users/login", API_PUBLIC),
    ("POST", "/v2/auth/token", API_PUBLIC),
    ("GET", "/v2/access-tokens", API_SIGNED_IN),
    ("POST", "/v2/access-tokens", API_SIGNED_IN),
    ("GET", "/v2/access-tokens/{uuid}", API_OWN_TOKEN),
    ("PATCH", "/v2/access-tokens/{uuid}", API_OWN_TOKEN),
    ("DELETE", "/v2/access-tokens/{uuid}", API_OWN_TOKEN),
    ("GET", "/v2/orgs/{org}/members", API_ORG_READ),
    ("GET", "/v2/orgs/{org}/groups", API_ORG_READ),
    ("POST", "/v2/orgs/{org}/groups", API_ORG_OWNER),
    ("GET", "/v2/orgs/{org}/groups/{group}/members", API_ORG_READ),
    ("POST", "/v2/orgs/{org}/groups/{group}/members", API_ORG_OWNER),
    ("GET", "/v2/orgs/{org}/programs", API_ORG_READ),
    ("GET", "/v2/orgs/{org}/analytics/tracked-domains", API_ORG_READ),
    ("PUT", "/v2/orgs/{org}/analytics/tracked-domains/{domain}", API_ORG_OWNER_HIDDEN),
    ("DELETE", "/v2/orgs/{org}/analytics/tracked-domains/{domain}", API_ORG_OWNER_HIDDEN),
    ("POST", "/v2/orgs/{org}/programs", API_ORG_OWNER_HIDDEN),
    ("GET", "/v2/admin/program-applications", API_ADMIN_ONLY),
    ("POST", "/v2/admin/program-applications/{id}", API_ADMIN_ONLY),
    ("GET", "/v2/admin/analytics/namespaces", API_ADMIN_ONLY),
    ("PUT", "/v2/admin/analytics/namespaces/{namespace}", API_ADMIN_ONLY),
    ("DELETE", "/v2/admin/analytics/namespaces/{namespace}", API_ADMIN_ONLY),
    ("GET", "/v2/admin/rate-limits", API_ADMIN_ONLY),
    ("POST", "/v2/admin/rate-limits", API_ADMIN_ONLY),
    ("DELETE", "/v2/admin/rate-limits/{kind}/{subject}", API_ADMIN_ONLY),
    ("GET", "/v2/logos/{logo}", API_PUBLIC),
    ("GET", "/v2/search/repositories", API_PUBLIC_READ),
    ("GET", "/v2/namespaces/{ns}", API_PUBLIC_READ),
    ("GET", "/v2/namespaces/{ns}/logo", API_PUBLIC_READ),
    ("GET", "/v2/namespaces/{ns}/repositories", API_PUBLIC_READ),
    ("POST", "/v2/namespaces/{ns}/repositories", API_ORG_OWNER),
    ("GET", "/v2/namespaces/{ns}/repositories/{repo}", API_PUBLIC_READ),
    ("PATCH", "/v2/namespaces/{ns}/repositories/{repo}", API_ORG_OWNER),
    ("DELETE", "/v2/namespaces/{ns}/repositories/{repo}", API_ORG_OWNER),
    ("GET", "/v2/namespaces/{ns}/repositories/{repo}/tags", API_PUBLIC_READ),
    ("GET", "/v2/namespaces/{ns}/repositories/{repo}/tags/{tag}", API_PUBLIC_READ),
    ("DELETE", "/v2/namespaces/{ns}/repositories/{repo}/tags/{tag}", API_ORG_OWNER),
    ("DELETE", "/v2/namespaces/{ns}/repositories/{repo}/images/{digest}", API_ORG_OWNER),
    ("POST", "/v2/namespaces/{ns}/repositories/{repo}/copy", API_SIGNED_IN),
    ("GET", "/v2/namespaces/{ns}/repositories/{repo}/logo", API_PUBLIC_READ),
    ("PUT", "/v2/namespaces/{ns}/repositories/{repo}/logo", API_ORG_OWNER),
    ("DELETE", "/v2/namespaces/{ns}/repositories/{repo}/logo", API_ORG_OWNER),
    ("POST", "/v2/repositories", API_SIGNED_IN),
    ("GET", "/v2/repositories/{ns}", API_PUBLIC_READ),
    ("GET", "/v2/repositories/{ns}/{repo}", API_PUBLIC_READ),
    ("PATCH", "/v2/repositories/{ns}/{repo}", API_ORG_OWNER),
    ("DELETE", "/v2/repositories/{ns}/{repo}", API_ORG_OWNER),
    ("GET", "/v2/repositories/{ns}/{repo}/tags", API_PUBLIC_READ),
    ("GET", "/v2/repositories/{ns}/{repo}/tags/{tag}", API_PUBLIC_READ),
    ("DELETE", "/v2/repositories/{ns}/{repo}/tags/{tag}", API_ORG_OWNER),
    ("GET", "/api/publisher/analytics/v1/namespaces", API_SIGNED_IN),
    ("GET", "/api/publisher/analytics/v1/namespaces/{ns}", API_ORG_READ),
    ("GET", "/api/publisher/analytics/v1/namespaces/{ns}/pulls", API_ORG_READ),
    ("GET", "/api/publisher/analytics/v1/namespaces/{ns}/repos/{repo}/pulls", API_ORG_READ),
    ("GET", "/api/publisher/analytics/v1/repos/pulls", API_ORG_READ),
    ("GET", "/api/publisher/analytics/v1/namespaces/{ns}/pulls/exports/years", API_ORG_READ),
    ("GET", "/api/publisher/analytics/v1/namespaces/{ns}/pulls/exports/years/{year}/{timespantype}", API_ORG_READ),
    ("GET", "/api/publisher/analytics/v1/namespaces/{ns}/pulls/exports/years/{year}/{timespantype}/{timespan}", API_ORG_READ),
    ("GET", "/api/publisher/analytics/v1/namespaces/{ns}/pulls/exports/years/{year}/{timespantype}/{timespan}/{dataview}", API_ORG_READ),
    ("GET", "/api/publisher/analytics/v1/downloads/{ns}/{period}/{dataview}", API_LINK_ONLY),
    ("GET", "/api/publisher/analytics/v1/downloads/{ns}/{period}/{dataview}/{extension}", API_LINK_ONLY),
    ("POST", "/api/publisher/analytics/v1/extensions/{ns}/{repo}/events", API_ORG_OWNER),
];

/// Signed download links: without a valid signature nobody gets in, whatever they send.
const API_LINK_ONLY: [Api; 8] = [Api::Forbidden; 8];

/// Every JSON API endpoint: the Hub-style API and the analytics (DVP) API.
fn api_endpoints() -> Vec<(&'static str, String)> {
    super::hub_api::ENDPOINTS
        .iter()
        .map(|(m, p)| (*m, (*p).to_owned()))
        .chain(
            super::dvp::ENDPOINTS
                .iter()
                .map(|(m, p)| (*m, format!("{}{p}", super::dvp::BASE))),
        )
        .collect()
}

#[test]
fn every_api_endpoint_has_a_row() {
    let endpoints = api_endpoints();
    for (method, path) in &endpoints {
        let rows = API_MATRIX
            .iter()
            .filter(|(m, p, _)| m == method && p == path)
            .count();
        assert_eq!(
            rows, 1,
            "the API matrix needs exactly one row for {method} {path}"
        );
    }
    assert_eq!(API_MATRIX.len(), endpoints.len());
}

#[tokio::test]
async fn every_api_endpoint_answers_every_caller_as_the_matrix_says() {
    let (_dir, state, _, manifest) = setup().await;
    let hub = &state.hub;
    hub.add_team("acme", "devs").await.unwrap();
    // acme is a verified publisher, so that logo rows reach the logo rules.
    let alice_user = hub.user("alice").await.unwrap().unwrap();
    let boss = hub.user("boss").await.unwrap().unwrap();
    let application = hub
        .apply_program(
            &alice_user,
            "acme",
            wharf_hub::Badge::VerifiedPublisher,
            wharf_hub::PublisherProfile {
                legal_name: "Acme Inc.".into(),
                website: "https://acme.example".into(),
                phone: "+1 555 0100".into(),
                email: "legal@acme.example".into(),
                logo: png(512, 512).into(),
            },
        )
        .await
        .unwrap();
    hub.decide_program(&boss, application, wharf_hub::Decision::Approve, "")
        .await
        .unwrap();
    let logo_digest = hub.namespace_logo("acme").await.unwrap().unwrap();
    // A rule for the DELETE rate-limit row to remove.
    hub.set_rate_rule(&boss, "range", "10.0.0.0/8", None, "")
        .await
        .unwrap();
    let router = App::router(state.clone());
    let user = |name: &str| {
        let hub = hub.clone();
        let name = name.to_owned();
        async move { hub.user(&name).await.unwrap().unwrap() }
    };
    let token_of =
        |u: &wharf_hub::User| format!("Bearer {}", hub.issue_hub_token(u).unwrap().token);
    let alice = user("alice").await;
    // A token alice made, for the {uuid} rows (PATCH with `{}` changes nothing; DELETE of it
    // would revoke it, so it runs last).
    let own = hub
        .add_access_token("alice", "matrix", "read", None)
        .await
        .unwrap();
    let revoked = hub
        .add_access_token("alice", "revoked", "admin", None)
        .await
        .unwrap();
    let revoked_user = hub
        .authenticate_password("alice", &revoked.secret, None)
        .await
        .unwrap();
    let revoked_jwt = token_of(&revoked_user);
    hub.revoke_access_token(&revoked.token.id).await.unwrap();
    let good = hub.issue_hub_token(&alice).unwrap().token;
    let (tampered, expired) = forged(&state, &good, "carol").await;
    let (tampered, expired) = (format!("Bearer {tampered}"), format!("Bearer {expired}"));
    let registry_token = format!(
        "Bearer {}",
        hub.issue_access_token(Some(&alice), vec![]).unwrap().token
    );
    let creds: Vec<Option<String>> = vec![
        None,
        Some(token_of(&alice)),
        Some(token_of(&user("bob").await)),
        Some(token_of(&user("carol").await)),
        Some(expired),
        Some(tampered),
        Some(registry_token),
        Some(revoked_jwt),
    ];
    let mut failures = Vec::new();
    let mut rows: Vec<_> = API_MATRIX.iter().collect();
    // Deleting rows last, and the ones that delete the whole repository after the others.
    rows.sort_by_key(|(m, p, _)| (*m == "DELETE", p.ends_with("{repo}")));
    for (method, pattern, expected) in rows {
        push_fixture(&state).await;
        let path = pattern
            .replace("{uuid}", &own.token.id)
            .replace("{namespace}", "acme")
            .replace("{org}", "acme")
            .replace("{group}", "devs")
            .replace("{id}", &application.to_string())
            .replace("{logo}", &logo_digest)
            .replace("{ns}", "acme")
            .replace("{repo}", "app")
            .replace("{tag}", "v1")
            .replace("{digest}", &manifest)
            .replace("{kind}", "range")
            .replace("{subject}", "10.0.0.0%2F8")
            .replace("{domain}", "example.com")
            .replace("{year}", "2020")
            .replace("{timespantype}", "weeks")
            .replace("{timespan}", "10")
            .replace("{dataview}", "summary")
            .replace("{period}", "2020-W10")
            .replace("{extension}", "app");
        let path = if path.ends_with("/repos/pulls") {
            format!("{path}?repos=acme/app")
        } else {
            path
        };
        let body = if *method == "PATCH" { "{}" } else { "" };
        for (i, cred) in creds.iter().enumerate() {
            if *method == "DELETE" {
                push_fixture(&state).await;
            }
            let mut req = Request::builder()
                .method(Method::from_bytes(method.as_bytes()).unwrap())
                .uri(&path)
                .header("content-type", "application/json");
            if let Some(c) = cred {
                req = req.header("authorization", c);
            }
            let resp = router
                .clone()
                .oneshot(req.body(Body::from(body)).unwrap())
                .await
                .unwrap();
            let status = resp.status();
            assert!(
                status != StatusCode::INTERNAL_SERVER_ERROR,
                "{method} {path} as {} gave 500",
                API_CALLERS[i]
            );
            let got = match status {
                StatusCode::UNAUTHORIZED => Api::Unauthorized,
                StatusCode::FORBIDDEN => Api::Forbidden,
                StatusCode::NOT_FOUND => Api::NotFound,
                _ => Api::Ok,
            };
            if got != expected[i] {
                failures.push(format!(
                    "{method} {path} as {}: expected {:?}, got {status}",
                    API_CALLERS[i], expected[i]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "API authorization mismatches:\n{}",
        failures.join("\n")
    );
}
