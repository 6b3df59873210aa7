//! Router tests for the hub's repositories: information rules, archive, tags view, storage,
//! copy and move, logos, programs and search, through the Hub-style JSON API and `/v1/search`.
//! They run on the embedded default and, with `WHARF_TEST_BACKEND=scale`, on PostgreSQL + S3.

mod common;

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use common::*;
use serde_json::{Value, json};

struct Hub {
    app: TestApp,
    alice: String,
    bob: String,
    carol: String,
    boss: String,
}

fn basic(user: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{user}-password"))
    )
}

/// alice owns acme, bob edits in it, dave is a plain member, carol is outside, boss is admin.
async fn hub() -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.auth = true;
    let mut app = TestApp::with_config(dir, cfg).await;
    let h = &app.state.hub;
    for (name, admin) in [
        ("alice", false),
        ("bob", false),
        ("carol", false),
        ("dave", false),
        ("boss", true),
    ] {
        h.add_user(
            name,
            &format!("{name}@example.com"),
            &format!("{name}-password"),
            admin,
        )
        .await
        .unwrap();
    }
    h.add_org("acme", "alice").await.unwrap();
    h.set_org_member("acme", "bob", wharf_hub::OrgRole::Editor)
        .await
        .unwrap();
    h.set_org_member("acme", "dave", wharf_hub::OrgRole::Member)
        .await
        .unwrap();
    let token = |n: &str| {
        let h = h.clone();
        let n = n.to_owned();
        async move {
            let u = h.user(&n).await.unwrap().unwrap();
            h.issue_hub_token(&u).unwrap().token
        }
    };
    let (alice, bob, carol, boss) = (
        token("alice").await,
        token("bob").await,
        token("carol").await,
        token("boss").await,
    );
    app.push_auth = Some(basic("alice"));
    Hub {
        app,
        alice,
        bob,
        carol,
        boss,
    }
}

async fn api(
    app: &TestApp,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Resp {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(b) = &bearer {
        headers.push(("authorization", b.as_str()));
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    app.req(method, uri, &headers, body).await
}

async fn raw(app: &TestApp, method: Method, uri: &str, token: &str, body: Vec<u8>) -> Resp {
    let bearer = format!("Bearer {token}");
    app.req(method, uri, &[("authorization", bearer.as_str())], body)
        .await
}

fn detail(r: &Resp) -> String {
    r.json()["detail"].as_str().unwrap_or("").to_owned()
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::RgbImage::from_pixel(w, h, image::Rgb([200, 30, 30]))
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

const REPO: &str = "/v2/namespaces/acme/repositories/web";

#[tokio::test]
async fn repository_information_follows_the_rules() {
    let h = hub().await;
    let app = &h.app;
    let created = api(
        app,
        Method::POST,
        "/v2/namespaces/acme/repositories",
        Some(&h.alice),
        Some(json!({"name": "web", "description": "A web server", "full_description": "# Web\n\nRun it."})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", detail(&created));
    assert_eq!(created.json()["namespace"], "acme");
    let again = api(
        app,
        Method::POST,
        "/v2/namespaces/acme/repositories",
        Some(&h.alice),
        Some(json!({"name": "web"})),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let not_yours = api(
        app,
        Method::POST,
        "/v2/namespaces/acme/repositories",
        Some(&h.carol),
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(not_yours.status, StatusCode::FORBIDDEN);

    // The description: 100 characters fit, 101 do not.
    let ok = api(
        app,
        Method::PATCH,
        REPO,
        Some(&h.alice),
        Some(json!({"description": "d".repeat(100)})),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", detail(&ok));
    let long = api(
        app,
        Method::PATCH,
        REPO,
        Some(&h.alice),
        Some(json!({"description": "d".repeat(101)})),
    )
    .await;
    assert_eq!(long.status, StatusCode::BAD_REQUEST);
    assert!(detail(&long).contains("at most 100"), "{}", detail(&long));

    // Categories: from the list, at most three.
    let cats = api(
        app,
        Method::PATCH,
        REPO,
        Some(&h.alice),
        Some(json!({"categories": ["web-servers", "Networking", "security"]})),
    )
    .await;
    assert_eq!(cats.status, StatusCode::OK, "{}", detail(&cats));
    assert_eq!(
        cats.json()["categories"][1],
        json!({"slug": "networking", "name": "Networking"})
    );
    let four = api(
        app,
        Method::PATCH,
        REPO,
        Some(&h.alice),
        Some(json!({"categories": ["web-servers", "networking", "security", "data-science"]})),
    )
    .await;
    assert_eq!(four.status, StatusCode::BAD_REQUEST);
    assert!(detail(&four).contains("at most 3"), "{}", detail(&four));
    let unknown = api(
        app,
        Method::PATCH,
        REPO,
        Some(&h.alice),
        Some(json!({"categories": ["games"]})),
    )
    .await;
    assert!(
        detail(&unknown).contains("not a category"),
        "{}",
        detail(&unknown)
    );

    // Overviews that could run something are refused; nothing is stored.
    for bad in [
        "<script>alert(1)</script>",
        "[click](javascript:alert(1))",
        "<img src=x onerror=alert(1)>",
    ] {
        let r = api(
            app,
            Method::PATCH,
            REPO,
            Some(&h.alice),
            Some(json!({"full_description": bad})),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let now = api(app, Method::GET, REPO, Some(&h.alice), None)
        .await
        .json();
    assert_eq!(now["full_description"], "# Web\n\nRun it.");
    assert_eq!(now["description"], "d".repeat(100));
    assert_eq!(now["categories"].as_array().unwrap().len(), 3);

    // The overview shows publicly only once there is an image.
    let public = api(app, Method::GET, REPO, None, None).await.json();
    assert_eq!(public["full_description"], Value::Null);
    app.push_image("acme/web", "1.0", b"web layer").await;
    let public = api(app, Method::GET, REPO, None, None).await.json();
    assert_eq!(public["full_description"], "# Web\n\nRun it.");

    // Members read, editors and owners change; outsiders neither.
    let member = api(
        app,
        Method::PATCH,
        REPO,
        Some(&h.carol),
        Some(json!({"description": "x"})),
    )
    .await;
    assert_eq!(member.status, StatusCode::FORBIDDEN);
    let editor = api(
        app,
        Method::PATCH,
        REPO,
        Some(&h.bob),
        Some(json!({"description": "by bob"})),
    )
    .await;
    assert_eq!(editor.status, StatusCode::OK);
    // Older path form, same repository.
    let old = api(app, Method::GET, "/v2/repositories/acme/web/", None, None).await;
    assert_eq!(old.json()["description"], "by bob");

    // A private repository answers an outsider exactly as a missing one.
    api(
        app,
        Method::PATCH,
        REPO,
        Some(&h.alice),
        Some(json!({"is_private": true})),
    )
    .await;
    let hidden = api(app, Method::GET, REPO, Some(&h.carol), None).await;
    let missing = api(
        app,
        Method::GET,
        "/v2/namespaces/acme/repositories/nothing",
        Some(&h.carol),
        None,
    )
    .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    assert_eq!(detail(&hidden).replace("web", "nothing"), detail(&missing));
    let list = api(
        app,
        Method::GET,
        "/v2/namespaces/acme/repositories",
        Some(&h.carol),
        None,
    )
    .await;
    assert_eq!(list.json()["count"], 0);
    let list = api(
        app,
        Method::GET,
        "/v2/namespaces/acme/repositories",
        Some(&h.alice),
        None,
    )
    .await;
    assert_eq!(list.json()["count"], 1);

    // Deleting: members cannot, owners can; the repository is gone for everyone.
    let del = api(app, Method::DELETE, REPO, Some(&h.carol), None).await;
    assert_eq!(del.status, StatusCode::NOT_FOUND);
    let del = api(app, Method::DELETE, REPO, Some(&h.alice), None).await;
    assert_eq!(del.status, StatusCode::ACCEPTED);
    let tags = app
        .req(
            Method::GET,
            "/v2/acme/web/tags/list",
            &[("authorization", &basic("alice"))],
            "",
        )
        .await;
    assert_eq!(tags.status, StatusCode::NOT_FOUND);
    let gone = api(app, Method::GET, REPO, Some(&h.alice), None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_archived_repository_serves_pulls_and_refuses_changes() {
    let h = hub().await;
    let app = &h.app;
    let (digest, manifest) = app.push_image("acme/web", "1.0", b"web layer").await;
    let r = api(
        app,
        Method::PATCH,
        REPO,
        Some(&h.alice),
        Some(json!({"is_archived": true})),
    )
    .await;
    assert_eq!(r.json()["status_description"], "archived");

    let push = app
        .put_manifest("acme/web", "2.0", OCI_MANIFEST, &manifest)
        .await;
    assert_eq!(push.status, StatusCode::FORBIDDEN);
    assert_eq!(push.code(), "DENIED");
    assert!(push.message().contains("archived"), "{}", push.message());
    let upload = app
        .req(
            Method::POST,
            "/v2/acme/web/blobs/uploads/",
            &[("authorization", &basic("alice"))],
            "",
        )
        .await;
    assert_eq!(upload.status, StatusCode::FORBIDDEN);
    let edit = api(
        app,
        Method::PATCH,
        REPO,
        Some(&h.alice),
        Some(json!({"description": "new"})),
    )
    .await;
    assert_eq!(edit.status, StatusCode::CONFLICT);
    assert!(detail(&edit).contains("archived"));
    let del = api(
        app,
        Method::DELETE,
        &format!("{REPO}/tags/1.0"),
        Some(&h.alice),
        None,
    )
    .await;
    assert_eq!(del.status, StatusCode::CONFLICT);

    // Pulls go on.
    let pull = app
        .req(
            Method::GET,
            &format!("/v2/acme/web/manifests/{digest}"),
            &[("authorization", &basic("alice")), ("accept", OCI_MANIFEST)],
            "",
        )
        .await;
    assert_eq!(pull.status, StatusCode::OK);

    let r = api(
        app,
        Method::PATCH,
        REPO,
        Some(&h.alice),
        Some(json!({"is_archived": false, "description": "back"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", detail(&r));
    assert_eq!(r.json()["description"], "back");
    let push = app
        .put_manifest("acme/web", "2.0", OCI_MANIFEST, &manifest)
        .await;
    assert_eq!(push.status, StatusCode::CREATED);
}

#[tokio::test]
async fn tags_show_platforms_sizes_and_pulls_and_storage_counts_shared_blobs_once() {
    let h = hub().await;
    let app = &h.app;
    let (amd, amd_m) = app.push_image("acme/web", "amd", b"shared layer").await;
    // An arm64 image sharing the layer.
    let cfg = br#"{"architecture":"arm64","os":"linux","variant":"v8"}"#;
    let cd = app.push_blob("acme/web", cfg).await;
    let ld = app.push_blob("acme/web", b"shared layer").await;
    let arm_m = image_manifest(&cd, cfg.len(), &ld, 12, None);
    let arm = app
        .put_manifest("acme/web", &digest(&arm_m), OCI_MANIFEST, &arm_m)
        .await;
    assert_eq!(arm.status, StatusCode::CREATED);
    let index = json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": amd, "size": amd_m.len(), "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": OCI_MANIFEST, "digest": digest(&arm_m), "size": arm_m.len(), "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        ],
    });
    let index = serde_json::to_vec(&index).unwrap();
    assert_eq!(
        app.put_manifest("acme/web", "multi", OCI_INDEX, &index)
            .await
            .status,
        StatusCode::CREATED
    );

    let tags = api(
        app,
        Method::GET,
        &format!("{REPO}/tags?ordering=name"),
        None,
        None,
    )
    .await
    .json();
    assert_eq!(tags["count"], 2);
    let names: Vec<&str> = tags["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["amd", "multi"]);
    let amd_tag = &tags["results"][0];
    assert_eq!(amd_tag["images"][0]["architecture"], "amd64");
    assert_eq!(amd_tag["content_type"], "image");
    assert_eq!(tags["results"][1]["content_type"], "index");
    assert_eq!(amd_tag["images"][0]["os"], "linux");
    let amd_cfg_len = format!(
        "{{\"architecture\":\"amd64\",\"os\":\"linux\",\"n\":{}}}",
        12
    )
    .len();
    assert_eq!(amd_tag["full_size"], amd_m.len() + amd_cfg_len + 12);
    let multi = &tags["results"][1];
    let platforms: Vec<(String, Value)> = multi["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["architecture"].as_str().unwrap().to_owned(),
                i["variant"].clone(),
            )
        })
        .collect();
    assert_eq!(
        platforms,
        [
            ("amd64".to_owned(), Value::Null),
            ("arm64".to_owned(), json!("v8"))
        ]
    );
    assert_eq!(
        multi["full_size"],
        index.len() + amd_m.len() + amd_cfg_len + 12 + arm_m.len() + cfg.len() + 12
    );
    assert_eq!(multi["tag_last_pulled"], Value::Null);
    let by_push = api(app, Method::GET, &format!("{REPO}/tags"), None, None)
        .await
        .json();
    assert_eq!(by_push["results"][0]["name"], "multi");

    // A pull is counted and dated once the node flushes its counters.
    let pull = app
        .req(
            Method::GET,
            "/v2/acme/web/manifests/multi",
            &[("accept", OCI_INDEX)],
            "",
        )
        .await;
    assert_eq!(pull.status, StatusCode::OK);
    app.state.hub.flush_pulls().await.unwrap();
    let one = api(app, Method::GET, &format!("{REPO}/tags/multi"), None, None)
        .await
        .json();
    assert!(one["tag_last_pulled"].is_string(), "{one}");
    assert_eq!(
        api(app, Method::GET, REPO, None, None).await.json()["pull_count"],
        1
    );

    // Storage: the shared layer counts once per repository and once per namespace.
    app.push_image("acme/api", "1", b"shared layer").await;
    // Storage is shown to those who push, not to everyone who can pull.
    let anon = api(app, Method::GET, REPO, None, None).await.json();
    assert_eq!(anon["storage_size"], Value::Null);
    let web = api(app, Method::GET, REPO, Some(&h.alice), None)
        .await
        .json()["storage_size"]
        .as_u64()
        .unwrap();
    let api_repo = api(
        app,
        Method::GET,
        "/v2/namespaces/acme/repositories/api",
        Some(&h.alice),
        None,
    )
    .await
    .json()["storage_size"]
        .as_u64()
        .unwrap();
    let ns = api(
        app,
        Method::GET,
        "/v2/namespaces/acme",
        Some(&h.alice),
        None,
    )
    .await
    .json();
    let ns = ns["storage_size"].as_u64().unwrap();
    assert_eq!(
        web,
        (amd_m.len() + amd_cfg_len + 12 + arm_m.len() + cfg.len() + index.len()) as u64
    );
    assert!(
        ns < web + api_repo,
        "the shared layer must count once: {ns} vs {web} + {api_repo}"
    );
    assert_eq!(ns, web + api_repo - 12 - amd_cfg_len as u64);
    // Outsiders do not see a namespace's storage.
    let outside = api(
        app,
        Method::GET,
        "/v2/namespaces/acme",
        Some(&h.carol),
        None,
    )
    .await
    .json();
    assert_eq!(outside["storage_size"], Value::Null);

    // Deleting one image by digest, and tags, with permission checks.
    let by_member = api(
        app,
        Method::DELETE,
        &format!("{REPO}/tags/amd"),
        Some(&h.carol),
        None,
    )
    .await;
    assert_eq!(by_member.status, StatusCode::FORBIDDEN);
    let d = api(
        app,
        Method::DELETE,
        &format!("{REPO}/images/{}", digest(&arm_m)),
        Some(&h.alice),
        None,
    )
    .await;
    assert_eq!(
        d.status,
        StatusCode::NO_CONTENT,
        "{}",
        String::from_utf8_lossy(&d.body)
    );
    let d = api(
        app,
        Method::DELETE,
        &format!("{REPO}/tags/amd"),
        Some(&h.bob),
        None,
    )
    .await;
    assert_eq!(d.status, StatusCode::NO_CONTENT);
    let d = api(
        app,
        Method::DELETE,
        &format!("{REPO}/tags/amd"),
        Some(&h.bob),
        None,
    )
    .await;
    assert_eq!(d.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn images_copy_and_move_between_repositories_with_their_referrers() {
    let h = hub().await;
    let app = &h.app;
    let (subject, subject_m) = app.push_image("acme/web", "1.0", b"layer one").await;
    // A signature-like referrer.
    let empty = app.push_blob("acme/web", b"{}").await;
    let sig_layer = app.push_blob("acme/web", b"signature").await;
    let sig = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.sig",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": sig_layer, "size": 9}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": subject_m.len()},
    });
    let sig = serde_json::to_vec(&sig).unwrap();
    assert_eq!(
        app.put_manifest("acme/web", &digest(&sig), OCI_MANIFEST, &sig)
            .await
            .status,
        StatusCode::CREATED
    );

    let copy = api(
        app,
        Method::POST,
        &format!("{REPO}/copy"),
        Some(&h.alice),
        Some(json!({"reference": "1.0", "target": "acme/mirror"})),
    )
    .await;
    assert_eq!(copy.status, StatusCode::OK, "{}", detail(&copy));
    assert_eq!(copy.json()["digest"], subject);
    let auth = basic("alice");
    let got = app
        .req(
            Method::GET,
            "/v2/acme/mirror/manifests/1.0",
            &[("authorization", &auth), ("accept", OCI_MANIFEST)],
            "",
        )
        .await;
    assert_eq!(got.status, StatusCode::OK);
    let layer = app
        .req(
            Method::GET,
            &format!("/v2/acme/mirror/blobs/{}", digest(b"layer one")),
            &[("authorization", &auth)],
            "",
        )
        .await;
    assert_eq!(&layer.body[..], b"layer one");
    let referrers = app
        .req(
            Method::GET,
            &format!("/v2/acme/mirror/referrers/{subject}"),
            &[("authorization", &auth)],
            "",
        )
        .await;
    assert_eq!(referrers.json()["manifests"][0]["digest"], digest(&sig));
    // The source is untouched by a copy.
    let src = app
        .req(
            Method::GET,
            "/v2/acme/web/manifests/1.0",
            &[("authorization", &auth), ("accept", OCI_MANIFEST)],
            "",
        )
        .await;
    assert_eq!(src.status, StatusCode::OK);

    // Moving to a new tag in another namespace the caller can write: alice's own.
    let mv = api(
        app,
        Method::POST,
        &format!("{REPO}/copy"),
        Some(&h.alice),
        Some(
            json!({"reference": "1.0", "target": "alice/web", "target_tag": "moved", "move": true}),
        ),
    )
    .await;
    assert_eq!(mv.status, StatusCode::OK, "{}", detail(&mv));
    let moved = app
        .req(
            Method::GET,
            "/v2/alice/web/manifests/moved",
            &[("authorization", &auth), ("accept", OCI_MANIFEST)],
            "",
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK);
    let src = app
        .req(
            Method::GET,
            "/v2/acme/web/manifests/1.0",
            &[("authorization", &auth), ("accept", OCI_MANIFEST)],
            "",
        )
        .await;
    assert_eq!(src.status, StatusCode::NOT_FOUND);

    // The target must be writable by the caller.
    let theirs = api(
        app,
        Method::POST,
        "/v2/namespaces/acme/repositories/mirror/copy",
        Some(&h.alice),
        Some(json!({"reference": "1.0", "target": "carol/stolen"})),
    )
    .await;
    assert_eq!(theirs.status, StatusCode::FORBIDDEN);
    assert!(detail(&theirs).contains("writable"), "{}", detail(&theirs));
    let reader = api(
        app,
        Method::POST,
        "/v2/namespaces/acme/repositories/mirror/copy",
        Some(&h.carol),
        Some(json!({"reference": "1.0", "target": "carol/copy"})),
    )
    .await;
    assert_eq!(
        reader.status,
        StatusCode::OK,
        "anyone who can pull a public image may copy it to their own namespace: {}",
        detail(&reader)
    );
    let unknown = api(
        app,
        Method::POST,
        "/v2/namespaces/acme/repositories/mirror/copy",
        Some(&h.alice),
        Some(json!({"reference": "nope", "target": "acme/x"})),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn logos_and_programs() {
    let h = hub().await;
    let app = &h.app;
    app.push_image("acme/web", "1.0", b"web").await;
    let logo = format!("{REPO}/logo");
    // Not in a program yet.
    let r = raw(app, Method::PUT, &logo, &h.alice, png(200, 200)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(detail(&r).contains("program"), "{}", detail(&r));
    let default = app.get(&logo).await;
    assert_eq!(default.header("content-type"), Some("image/svg+xml"));

    // Applying: owners only, with a complete profile and a square logo of at least 512×512.
    let profile = |logo: Vec<u8>| {
        json!({
            "program": "verified_publisher", "legal_name": "Acme Inc.", "website": "https://acme.example",
            "phone": "+1 555 0100", "email": "legal@acme.example",
            "logo": base64::engine::general_purpose::STANDARD.encode(logo),
        })
    };
    let r = api(
        app,
        Method::POST,
        "/v2/orgs/acme/programs",
        Some(&h.bob),
        Some(profile(png(512, 512))),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = api(
        app,
        Method::POST,
        "/v2/orgs/acme/programs",
        Some(&h.alice),
        Some(profile(png(300, 300))),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(detail(&r).contains("512×512"), "{}", detail(&r));
    let mut bad = profile(png(512, 512));
    bad["website"] = "javascript:alert(1)".into();
    let r = api(
        app,
        Method::POST,
        "/v2/orgs/acme/programs",
        Some(&h.alice),
        Some(bad),
    )
    .await;
    assert!(detail(&r).contains("website"), "{}", detail(&r));
    let r = api(
        app,
        Method::POST,
        "/v2/orgs/acme/programs",
        Some(&h.alice),
        Some(profile(png(512, 512))),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", detail(&r));
    let id = r.json()["id"].as_i64().unwrap();
    assert_eq!(r.json()["status"], "pending");
    let twice = api(
        app,
        Method::POST,
        "/v2/orgs/acme/programs",
        Some(&h.alice),
        Some(profile(png(512, 512))),
    )
    .await;
    assert_eq!(twice.status, StatusCode::CONFLICT);

    // Administrators decide.
    let r = api(
        app,
        Method::POST,
        &format!("/v2/admin/program-applications/{id}"),
        Some(&h.alice),
        Some(json!({"decision": "approve"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let pending = api(
        app,
        Method::GET,
        "/v2/admin/program-applications?status=pending",
        Some(&h.boss),
        None,
    )
    .await;
    assert_eq!(pending.json()["count"], 1);
    let r = api(
        app,
        Method::POST,
        &format!("/v2/admin/program-applications/{id}"),
        Some(&h.boss),
        Some(json!({"decision": "approve"})),
    )
    .await;
    assert_eq!(r.json()["status"], "approved");
    assert_eq!(
        api(app, Method::GET, REPO, None, None).await.json()["badge"],
        "verified_publisher"
    );
    // The organization's logo (from its profile) shows until the repository has its own.
    assert_eq!(
        app.get(&logo).await.header("content-type"),
        Some("image/png")
    );

    // Logo rules, each refusal naming the rule.
    let gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;".to_vec();
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"200\" height=\"200\"><script>alert(1)</script></svg>".to_vec();
    let mut six_mb = png(200, 200);
    six_mb.resize(6 * 1000 * 1000, 0);
    for (body, rule) in [
        (png(119, 300), "at least 120×120"),
        (png(1001, 200), "at most 1000×1000"),
        (gif, "GIF"),
        (svg, "not a JPEG or PNG"),
        (six_mb, "at most 5 MB"),
    ] {
        let r = raw(app, Method::PUT, &logo, &h.alice, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{rule}");
        assert!(detail(&r).contains(rule), "{rule}: {}", detail(&r));
    }
    let member = raw(app, Method::PUT, &logo, &h.carol, png(200, 200)).await;
    assert_eq!(member.status, StatusCode::FORBIDDEN);
    let own = png(240, 240);
    let r = raw(app, Method::PUT, &logo, &h.bob, own.clone()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", detail(&r));
    assert_eq!(&app.get(&logo).await.body[..], &own[..]);
    let r = raw(app, Method::DELETE, &logo, &h.alice, vec![]).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_ne!(&app.get(&logo).await.body[..], &own[..]);

    // Revoked: the badge goes, and with it the repository logo.
    raw(app, Method::PUT, &logo, &h.alice, own.clone()).await;
    let r = api(
        app,
        Method::POST,
        &format!("/v2/admin/program-applications/{id}"),
        Some(&h.boss),
        Some(json!({"decision": "revoke"})),
    )
    .await;
    assert_eq!(r.json()["status"], "revoked");
    assert_eq!(
        api(app, Method::GET, REPO, None, None).await.json()["badge"],
        Value::Null
    );
    assert_ne!(&app.get(&logo).await.body[..], &own[..]);
}

#[tokio::test]
async fn search_ranks_filters_and_hides_private_repositories() {
    let h = hub().await;
    let app = &h.app;
    let set = |repo: &'static str, body: Value| {
        let token = h.alice.clone();
        async move {
            let r = api(
                app,
                Method::PATCH,
                &format!("/v2/namespaces/{repo}"),
                Some(&token),
                Some(body),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{}", detail(&r));
        }
    };
    app.push_image("acme/redis", "1", b"r").await;
    app.push_image("acme/cache", "1", b"c").await;
    app.push_image("acme/notes", "1", b"n").await;
    app.push_image("alice/redis-tools", "1", b"t").await;
    app.push_image("acme/secret", "1", b"s").await;
    set(
        "acme/repositories/redis",
        json!({"description": "The redis database", "categories": ["databases-and-storage"]}),
    )
    .await;
    set(
        "acme/repositories/cache",
        json!({"description": "A cache that speaks the redis protocol"}),
    )
    .await;
    set(
        "acme/repositories/notes",
        json!({"full_description": "Works well next to redis."}),
    )
    .await;
    set(
        "acme/repositories/secret",
        json!({"description": "secret redis", "is_private": true}),
    )
    .await;

    let search = |q: &str, token: Option<String>| {
        let q = q.to_owned();
        async move {
            api(
                app,
                Method::GET,
                &format!("/v2/search/repositories?{q}"),
                token.as_deref(),
                None,
            )
            .await
        }
    };
    let r = search("query=redis", None).await;
    let names: Vec<String> = r.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["repo_name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "acme/redis",
            "alice/redis-tools",
            "acme/cache",
            "acme/notes"
        ]
    );
    // Private repositories only for those who may see them.
    let r = search("query=redis", Some(h.alice.clone())).await;
    assert_eq!(r.json()["count"], 5);
    let r = search("query=redis", Some(h.carol.clone())).await;
    assert_eq!(r.json()["count"], 4);
    // Filters.
    let r = search("query=redis&categories=databases-and-storage", None).await;
    assert_eq!(r.json()["results"][0]["repo_name"], "acme/redis");
    assert_eq!(r.json()["count"], 1);
    let r = search("query=redis&badges=verified_publisher", None).await;
    assert_eq!(r.json()["count"], 0);
    let r = search("badges=nonsense", None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Paging.
    let r = search("query=redis&page_size=2", None).await.json();
    assert_eq!(r["results"].as_array().unwrap().len(), 2);
    assert!(r["next"].as_str().unwrap().contains("query=redis"), "{r}");
    // Absolute, as Docker Hub's are.
    assert!(r["next"].as_str().unwrap().starts_with("http://"), "{r}");

    // Programs come before others of equal relevance.
    let alice_user = app.state.hub.user("alice").await.unwrap().unwrap();
    let boss = app.state.hub.user("boss").await.unwrap().unwrap();
    let id = app
        .state
        .hub
        .apply_program(
            &alice_user,
            "acme",
            wharf_hub::Badge::OpenSource,
            wharf_hub::PublisherProfile {
                legal_name: "Acme".into(),
                website: "https://acme.example".into(),
                phone: "+1 555 0100".into(),
                email: "oss@acme.example".into(),
                logo: png(512, 512).into(),
            },
        )
        .await
        .unwrap();
    app.state
        .hub
        .decide_program(&boss, id, wharf_hub::Decision::Approve, "")
        .await
        .unwrap();
    let r = search("badges=open_source", None).await.json();
    assert_eq!(r["count"], 3);
    assert_eq!(r["results"][0]["badge"], "open_source");

    // docker search's endpoint.
    let v1 = app.get("/v1/search?q=redis&n=2").await;
    assert_eq!(v1.status, StatusCode::OK);
    let v1 = v1.json();
    assert_eq!(v1["query"], "redis");
    assert_eq!(v1["num_results"], 4);
    assert_eq!(v1["results"].as_array().unwrap().len(), 2);
    assert_eq!(
        v1["results"][0],
        json!({"name": "acme/redis", "description": "The redis database", "star_count": 0, "is_official": false, "is_automated": false})
    );
    assert_eq!(
        app.get("/v1/search?q=redis&n=101").await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn library_images_are_official_and_only_administrators_push_them() {
    let mut h = hub().await;
    // alice cannot push to library.
    let r = h
        .app
        .req(
            Method::POST,
            "/v2/library/redis/blobs/uploads/",
            &[("authorization", &basic("alice"))],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    h.app.push_auth = Some(basic("boss"));
    h.app.push_image("library/redis", "7", b"redis layer").await;
    let app = &h.app;
    let set = api(
        app,
        Method::PATCH,
        "/v2/namespaces/library/repositories/redis",
        Some(&h.boss),
        Some(json!({"description": "Redis, the official image"})),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{}", detail(&set));
    let repo = api(
        app,
        Method::GET,
        "/v2/namespaces/library/repositories/redis",
        None,
        None,
    )
    .await
    .json();
    assert_eq!(repo["badge"], "official");
    assert_eq!(repo["is_official"], true);
    let r = api(
        app,
        Method::GET,
        "/v2/search/repositories?badges=official",
        None,
        None,
    )
    .await
    .json();
    assert_eq!(r["count"], 1);
    let v1 = app.get("/v1/search?q=redis").await.json();
    assert_eq!(v1["results"][0]["name"], "library/redis");
    assert_eq!(v1["results"][0]["is_official"], true);
}

#[tokio::test]
async fn moving_within_a_repository_never_loses_the_image() {
    let h = hub().await;
    let app = &h.app;
    let (digest, _) = app.push_image("acme/web", "1.0", b"layer").await;
    let copy_path = format!("{REPO}/copy");
    let copy = |body: Value| api(app, Method::POST, &copy_path, Some(&h.alice), Some(body));
    // By digest, or onto the same tag: refused, nothing changes.
    let r =
        copy(json!({"reference": digest, "target": "acme/web", "target_tag": "2.0", "move": true}))
            .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", detail(&r));
    let r =
        copy(json!({"reference": "1.0", "target": "acme/web", "target_tag": "1.0", "move": true}))
            .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // A tag moves to a new tag: the old one goes, the image stays.
    let r = copy(
        json!({"reference": "1.0", "target": "acme/web", "target_tag": "stable", "move": true}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", detail(&r));
    let tags = api(
        app,
        Method::GET,
        &format!("{REPO}/tags?ordering=name"),
        None,
        None,
    )
    .await
    .json();
    let names: Vec<&str> = tags["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["stable"]);
    assert_eq!(tags["results"][0]["digest"], digest);
    // A digest can be copied to a new tag in the same repository.
    let r = copy(json!({"reference": digest, "target": "acme/web", "target_tag": "again"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", detail(&r));
}

#[tokio::test]
async fn limited_tokens_see_and_do_only_what_their_scope_allows() {
    let h = hub().await;
    let app = &h.app;
    app.push_image("alice/secret", "1", b"s").await;
    api(
        app,
        Method::PATCH,
        "/v2/namespaces/alice/repositories/secret",
        Some(&h.alice),
        Some(json!({"is_private": true, "description": "alice's secret"})),
    )
    .await;
    app.push_image("acme/open", "1", b"o").await;
    let hub = &app.state.hub;
    let login = |user: &'static str, secret: String| async move {
        let r = api(
            app,
            Method::POST,
            "/v2/users/login",
            None,
            Some(json!({"username": user, "password": secret})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", detail(&r));
        r.json()["token"].as_str().unwrap().to_owned()
    };
    // An organization token of acme, made by alice, does not see alice's private repositories.
    let org = hub
        .add_org_access_token("alice", "acme", "ci", "read-write", None)
        .await
        .unwrap();
    let org_jwt = login("acme", org.secret).await;
    let r = api(
        app,
        Method::GET,
        "/v2/search/repositories?query=secret",
        Some(&org_jwt),
        None,
    )
    .await
    .json();
    assert_eq!(r["count"], 0, "{r}");
    let r = api(
        app,
        Method::GET,
        "/v2/search/repositories?query=secret",
        Some(&h.alice),
        None,
    )
    .await
    .json();
    assert_eq!(r["count"], 1);
    // A read-only token of an administrator reviews no programs; a read-only token of an
    // owner sets no logo.
    let boss_read = hub
        .add_access_token("boss", "ro", "read", None)
        .await
        .unwrap();
    let boss_jwt = login("boss", boss_read.secret).await;
    let r = api(
        app,
        Method::GET,
        "/v2/admin/program-applications",
        Some(&boss_jwt),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = api(
        app,
        Method::GET,
        "/v2/admin/program-applications",
        Some(&h.boss),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let alice_read = hub
        .add_access_token("alice", "ro", "read", None)
        .await
        .unwrap();
    let alice_jwt = login("alice", alice_read.secret).await;
    let r = raw(
        app,
        Method::PUT,
        "/v2/namespaces/acme/repositories/open/logo",
        &alice_jwt,
        png(200, 200),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let profile = json!({
        "program": "open_source", "legal_name": "Acme", "website": "https://acme.example",
        "phone": "+1 555 0100", "email": "oss@acme.example",
        "logo": base64::engine::general_purpose::STANDARD.encode(png(512, 512)),
    });
    let r = api(
        app,
        Method::POST,
        "/v2/orgs/acme/programs",
        Some(&alice_jwt),
        Some(profile.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Revoking the only program takes the organization's logo and badge away.
    let r = api(
        app,
        Method::POST,
        "/v2/orgs/acme/programs",
        Some(&h.alice),
        Some(profile),
    )
    .await;
    let id = r.json()["id"].as_i64().unwrap();
    api(
        app,
        Method::POST,
        &format!("/v2/admin/program-applications/{id}"),
        Some(&h.boss),
        Some(json!({"decision": "approve"})),
    )
    .await;
    let logo = "/v2/namespaces/acme/repositories/open/logo";
    assert_eq!(
        app.get(logo).await.header("content-type"),
        Some("image/png")
    );
    api(
        app,
        Method::POST,
        &format!("/v2/admin/program-applications/{id}"),
        Some(&h.boss),
        Some(json!({"decision": "revoke"})),
    )
    .await;
    assert_eq!(
        app.get(logo).await.header("content-type"),
        Some("image/svg+xml")
    );
    // Deciding twice: the second is told the application moved on.
    let r = api(
        app,
        Method::POST,
        &format!("/v2/admin/program-applications/{id}"),
        Some(&h.boss),
        Some(json!({"decision": "approve"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}
