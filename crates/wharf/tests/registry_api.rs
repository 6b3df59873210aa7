//! Router tests for the `/v2/` registry API: every endpoint, with good and bad input.

mod common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use common::*;

#[tokio::test]
async fn ping_answers_with_api_version() {
    let app = TestApp::new().await;
    for uri in ["/v2/", "/v2"] {
        let r = app.get(uri).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            r.header("docker-distribution-api-version"),
            Some("registry/2.0")
        );
    }
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
}

#[tokio::test]
async fn monolithic_push_then_head_get_and_ranges() {
    let app = TestApp::new().await;
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let d = app.push_blob("me/app", &data).await;
    let head = app
        .req(
            Method::HEAD,
            &format!("/v2/me/app/blobs/{d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.header("content-length"), Some("100000"));
    assert_eq!(head.header("docker-content-digest"), Some(d.as_str()));
    let get = app.get(&format!("/v2/me/app/blobs/{d}")).await;
    assert_eq!(get.body.as_ref(), data.as_slice());
    let part = app
        .req(
            Method::GET,
            &format!("/v2/me/app/blobs/{d}"),
            &[("range", "bytes=10-19")],
            Body::empty(),
        )
        .await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.header("content-range"), Some("bytes 10-19/100000"));
    assert_eq!(part.body.as_ref(), &data[10..20]);
    let tail = app
        .req(
            Method::GET,
            &format!("/v2/me/app/blobs/{d}"),
            &[("range", "bytes=-5")],
            Body::empty(),
        )
        .await;
    assert_eq!(tail.body.as_ref(), &data[99_995..]);
    let bad = app
        .req(
            Method::GET,
            &format!("/v2/me/app/blobs/{d}"),
            &[("range", "bytes=200000-")],
            Body::empty(),
        )
        .await;
    assert_eq!(bad.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(bad.header("content-range"), Some("bytes */100000"));
}

#[tokio::test]
async fn chunked_upload_with_content_range_status_and_out_of_order_chunks() {
    let app = TestApp::new().await;
    let data = vec![7u8; 300_000];
    let start = app
        .req(
            Method::POST,
            "/v2/me/chunked/blobs/uploads/",
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(start.status, StatusCode::ACCEPTED);
    assert_eq!(start.header("range"), Some("0-0"));
    let loc = start.header("location").unwrap().to_owned();
    assert!(start.header("docker-upload-uuid").is_some());

    let r = app
        .req(
            Method::PATCH,
            &loc,
            &[("content-range", "0-99999")],
            data[..100_000].to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.header("range"), Some("0-99999"));

    // Out of order (a gap) and overlapping chunks are refused with 416 and the current range.
    for cr in ["150000-199999", "50000-99999"] {
        let r = app
            .req(
                Method::PATCH,
                &loc,
                &[("content-range", cr)],
                vec![1u8; 50_000],
            )
            .await;
        assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE, "{cr}");
        assert_eq!(r.code(), "BLOB_UPLOAD_INVALID");
        assert_eq!(r.header("range"), Some("0-99999"));
        assert!(r.message().contains("100000"), "{}", r.message());
    }
    // A Content-Range that disagrees with the body length stores nothing.
    let r = app
        .req(
            Method::PATCH,
            &loc,
            &[("content-range", "100000-100009")],
            vec![7u8; 5],
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "BLOB_UPLOAD_INVALID");

    let status = app.get(&loc).await;
    assert_eq!(status.status, StatusCode::NO_CONTENT);
    assert_eq!(status.header("range"), Some("0-99999"));

    // A chunk without Content-Range (streamed), then the rest with the final PUT.
    let r = app
        .req(Method::PATCH, &loc, &[], data[100_000..200_000].to_vec())
        .await;
    assert_eq!(r.header("range"), Some("0-199999"));
    let d = digest(&data);
    let done = app
        .req(
            Method::PUT,
            &format!("{loc}?digest={d}"),
            &[],
            data[200_000..].to_vec(),
        )
        .await;
    assert_eq!(
        done.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&done.body)
    );
    assert_eq!(done.header("docker-content-digest"), Some(d.as_str()));
    assert_eq!(
        app.get(&format!("/v2/me/chunked/blobs/{d}"))
            .await
            .body
            .as_ref(),
        data.as_slice()
    );
    // The session is gone once finished.
    assert_eq!(app.get(&loc).await.code(), "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn wrong_digest_stores_nothing() {
    let app = TestApp::new().await;
    let wrong = digest(b"something else");
    let r = app
        .req(
            Method::POST,
            &format!("/v2/me/app/blobs/uploads/?digest={wrong}"),
            &[],
            b"content".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "DIGEST_INVALID");
    assert!(r.message().contains(&digest(b"content")), "{}", r.message());
    let head = app
        .req(
            Method::HEAD,
            &format!("/v2/me/app/blobs/{wrong}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(head.status, StatusCode::NOT_FOUND);
    let real = app
        .req(
            Method::HEAD,
            &format!("/v2/me/app/blobs/{}", digest(b"content")),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(real.status, StatusCode::NOT_FOUND);

    for bad in [
        "sha256:abc",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "nonsense",
    ] {
        let r = app
            .req(
                Method::POST,
                &format!("/v2/me/app/blobs/uploads/?digest={bad}"),
                &[],
                b"x".to_vec(),
            )
            .await;
        assert_eq!(r.code(), "DIGEST_INVALID", "{bad}");
        let r = app.get(&format!("/v2/me/app/blobs/{bad}")).await;
        assert_eq!(r.code(), "DIGEST_INVALID", "{bad}");
    }
    let start = app
        .req(
            Method::POST,
            "/v2/me/app/blobs/uploads/",
            &[],
            Body::empty(),
        )
        .await;
    let loc = start.header("location").unwrap();
    let r = app.req(Method::PUT, loc, &[], b"x".to_vec()).await;
    assert_eq!(r.code(), "DIGEST_INVALID");
    assert!(r.message().contains("?digest="));
}

#[tokio::test]
async fn a_body_that_breaks_off_advances_nothing() {
    let app = TestApp::new().await;
    let start = app
        .req(
            Method::POST,
            "/v2/me/app/blobs/uploads/",
            &[],
            Body::empty(),
        )
        .await;
    let loc = start.header("location").unwrap().to_owned();
    let stream = futures_util::stream::iter(vec![
        Ok::<_, std::io::Error>(bytes::Bytes::from(vec![1u8; 1000])),
        Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "client went away",
        )),
    ]);
    let r = app
        .req(Method::PATCH, &loc, &[], Body::from_stream(stream))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "BLOB_UPLOAD_INVALID");
    assert_eq!(app.get(&loc).await.header("range"), Some("0-0"));
    // The session goes on from where it really stands.
    let r = app
        .req(
            Method::PATCH,
            &loc,
            &[("content-range", "0-2")],
            b"abc".to_vec(),
        )
        .await;
    assert_eq!(r.header("range"), Some("0-2"));
    let r = app
        .req(
            Method::PUT,
            &format!("{loc}?digest={}", digest(b"abc")),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn unknown_and_cancelled_uploads() {
    let app = TestApp::new().await;
    for id in [
        "123e4567-e89b-12d3-a456-426614174000",
        "not-an-id",
        "..%2F..%2Fetc",
    ] {
        let r = app.get(&format!("/v2/me/app/blobs/uploads/{id}")).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{id}");
        assert_eq!(r.code(), "BLOB_UPLOAD_UNKNOWN");
    }
    let start = app
        .req(
            Method::POST,
            "/v2/me/app/blobs/uploads/",
            &[],
            Body::empty(),
        )
        .await;
    let loc = start.header("location").unwrap().to_owned();
    // A session belongs to its repository.
    let other = loc.replace("/me/app/", "/me/other/");
    assert_eq!(app.get(&other).await.code(), "BLOB_UPLOAD_UNKNOWN");
    let r = app.req(Method::DELETE, &loc, &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&loc).await.code(), "BLOB_UPLOAD_UNKNOWN");
    let r = app.req(Method::PATCH, &loc, &[], b"late".to_vec()).await;
    assert_eq!(r.code(), "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn blobs_are_visible_only_where_pushed_or_mounted() {
    let app = TestApp::new().await;
    let d = app.push_blob("team/a", b"shared layer").await;
    let other = app
        .req(
            Method::HEAD,
            &format!("/v2/team/b/blobs/{d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get(&format!("/v2/team/b/blobs/{d}")).await.code(),
        "BLOB_UNKNOWN"
    );

    // Mount from a repository that lacks it: an ordinary session instead.
    let r = app
        .req(
            Method::POST,
            &format!("/v2/team/b/blobs/uploads/?mount={d}&from=team/c"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    // Mount from the repository that has it (ctr sends the query unencoded).
    let r = app
        .req(
            Method::POST,
            &format!("/v2/team/b/blobs/uploads/?mount={d}&from=team/a"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
    assert_eq!(
        r.header("location"),
        Some(format!("/v2/team/b/blobs/{d}").as_str())
    );
    assert_eq!(
        app.get(&format!("/v2/team/b/blobs/{d}"))
            .await
            .body
            .as_ref(),
        b"shared layer"
    );

    // Deleting from one repository leaves the other's.
    let r = app
        .req(
            Method::DELETE,
            &format!("/v2/team/a/blobs/{d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(
        app.get(&format!("/v2/team/a/blobs/{d}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("/v2/team/b/blobs/{d}")).await.status,
        StatusCode::OK
    );
    let again = app
        .req(
            Method::DELETE,
            &format!("/v2/team/a/blobs/{d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(again.code(), "BLOB_UNKNOWN");
}

#[tokio::test]
async fn manifest_push_pull_negotiation_and_delete() {
    let app = TestApp::new().await;
    let (d, body) = app.push_image("me/app", "v1", b"layer-one").await;
    assert_eq!(d, digest(&body));
    for reference in ["v1", d.as_str()] {
        let r = app
            .req(
                Method::GET,
                &format!("/v2/me/app/manifests/{reference}"),
                &[("accept", DOCKER_MANIFEST), ("accept", OCI_MANIFEST)],
                Body::empty(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body.as_ref(), body.as_slice());
        assert_eq!(r.header("content-type"), Some(OCI_MANIFEST));
        assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
        let h = app
            .req(
                Method::HEAD,
                &format!("/v2/me/app/manifests/{reference}"),
                &[],
                Body::empty(),
            )
            .await;
        assert_eq!(h.status, StatusCode::OK);
        assert_eq!(
            h.header("content-length"),
            Some(body.len().to_string().as_str())
        );
        assert!(h.body.is_empty());
    }
    // Only the schema 1 type accepted: not served.
    let r = app
        .req(
            Method::GET,
            "/v2/me/app/manifests/v1",
            &[(
                "accept",
                "application/vnd.docker.distribution.manifest.v1+prettyjws",
            )],
            Body::empty(),
        )
        .await;
    assert_eq!(r.code(), "MANIFEST_UNKNOWN");

    // Deleting the tag leaves the manifest; deleting the digest removes it.
    let r = app
        .req(
            Method::DELETE,
            "/v2/me/app/manifests/v1",
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(
        app.get("/v2/me/app/manifests/v1").await.code(),
        "MANIFEST_UNKNOWN"
    );
    assert_eq!(
        app.get(&format!("/v2/me/app/manifests/{d}")).await.status,
        StatusCode::OK
    );
    let r = app
        .req(
            Method::DELETE,
            &format!("/v2/me/app/manifests/{d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(
        app.get(&format!("/v2/me/app/manifests/{d}")).await.code(),
        "MANIFEST_UNKNOWN"
    );
    let r = app
        .req(
            Method::DELETE,
            &format!("/v2/me/app/manifests/{d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(r.code(), "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn manifest_put_by_digest_and_helm_style_without_media_type() {
    let app = TestApp::new().await;
    let cd = app.push_blob("charts/demo", b"{\"name\":\"demo\"}").await;
    let ld = app.push_blob("charts/demo", b"chart tarball").await;
    let m = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json", "digest": cd, "size": 15},
        "layers": [{"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip", "digest": ld, "size": 13}],
    }))
    .unwrap();
    let d = digest(&m);
    let r = app.put_manifest("charts/demo", &d, OCI_MANIFEST, &m).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = app
        .put_manifest("charts/demo", "0.1.0", OCI_MANIFEST, &m)
        .await;
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
    let got = app.get("/v2/charts/demo/manifests/0.1.0").await;
    assert_eq!(got.header("content-type"), Some(OCI_MANIFEST));
    // PUT by a digest that does not match the body.
    let wrong = digest(b"other");
    let r = app
        .put_manifest("charts/demo", &wrong, OCI_MANIFEST, &m)
        .await;
    assert_eq!(r.code(), "DIGEST_INVALID");
    assert_eq!(
        app.get(&format!("/v2/charts/demo/manifests/{wrong}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn bad_manifests_are_refused_and_change_nothing() {
    let app = TestApp::new().await;
    let (d, _) = app.push_image("me/app", "v1", b"layer").await;
    let missing = digest(b"never pushed");
    let cases: Vec<(&str, Vec<u8>, &str, u16)> = vec![
        (OCI_MANIFEST, b"{not json".to_vec(), "MANIFEST_INVALID", 400),
        (OCI_MANIFEST, b"[]".to_vec(), "MANIFEST_INVALID", 400),
        (
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            br#"{"schemaVersion":1,"fsLayers":[]}"#.to_vec(),
            "MANIFEST_INVALID",
            400,
        ),
        (
            "application/vnd.example.unknown+json",
            image_manifest(&d, 1, &d, 1, None),
            "MANIFEST_INVALID",
            400,
        ),
        (
            OCI_MANIFEST,
            image_manifest(&missing, 5, &missing, 5, None),
            "MANIFEST_BLOB_UNKNOWN",
            400,
        ),
        (
            OCI_MANIFEST,
            vec![b' '; 4 * 1024 * 1024 + 1],
            "MANIFEST_INVALID",
            413,
        ),
    ];
    for (ct, body, code, status) in cases {
        let r = app.put_manifest("me/app", "v1", ct, &body).await;
        assert_eq!(
            r.status.as_u16(),
            status,
            "{code}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.code(), code);
        assert!(!r.message().is_empty());
        // v1 still names the original manifest.
        let still = app.get("/v2/me/app/manifests/v1").await;
        assert_eq!(still.header("docker-content-digest"), Some(d.as_str()));
    }
    let schema1 = app
        .put_manifest(
            "me/app",
            "v2",
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            b"{}",
        )
        .await;
    assert!(
        schema1.message().contains("schema 1"),
        "{}",
        schema1.message()
    );
    // An index naming a child that is not in the repository.
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": missing, "size": 10}],
    }))
    .unwrap();
    let r = app.put_manifest("me/app", "multi", OCI_INDEX, &index).await;
    assert_eq!(r.code(), "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(r.json()["errors"][0]["detail"]["missing"][0], missing);
}

#[tokio::test]
async fn index_of_pushed_children() {
    let app = TestApp::new().await;
    let (amd, amd_body) = app.push_image("me/multi", "amd64", b"amd64 layer").await;
    let (arm, arm_body) = app.push_image("me/multi", "arm64", b"arm64 layer").await;
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": amd, "size": amd_body.len(), "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": arm, "size": arm_body.len(), "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
        ],
    }))
    .unwrap();
    let r = app
        .put_manifest(
            "me/multi",
            "v1",
            "application/vnd.docker.distribution.manifest.list.v2+json",
            &index,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let got = app.get("/v2/me/multi/manifests/v1").await;
    assert_eq!(
        got.header("content-type"),
        Some("application/vnd.docker.distribution.manifest.list.v2+json")
    );
    assert_eq!(got.body.as_ref(), index.as_slice());
}

#[tokio::test]
async fn tag_list_and_catalog_paginate_with_link() {
    let app = TestApp::new().await;
    let (_, m) = app.push_image("me/paged", "seed", b"layer").await;
    let mut tags: Vec<String> = (0..25).map(|i| format!("t{i:02}")).collect();
    for t in &tags {
        assert_eq!(
            app.put_manifest("me/paged", t, OCI_MANIFEST, &m)
                .await
                .status,
            StatusCode::CREATED
        );
    }
    tags.push("seed".into());
    tags.sort();
    let mut seen = Vec::new();
    let mut uri = "/v2/me/paged/tags/list?n=10".to_owned();
    loop {
        let r = app.get(&uri).await;
        assert_eq!(r.status, StatusCode::OK);
        let j = r.json();
        assert_eq!(j["name"], "me/paged");
        seen.extend(
            j["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_owned()),
        );
        match r.header("link") {
            Some(link) => {
                assert!(link.ends_with("rel=\"next\""), "{link}");
                uri = link[1..link.find('>').unwrap()].to_owned();
            }
            None => break,
        }
    }
    assert_eq!(seen, tags);
    let r = app.get("/v2/me/paged/tags/list?n=5&last=t20").await;
    assert_eq!(
        r.json()["tags"],
        serde_json::json!(["t21", "t22", "t23", "t24"])
    );
    assert_eq!(
        app.get("/v2/me/paged/tags/list?n=0").await.json()["tags"],
        serde_json::json!([])
    );
    assert_eq!(
        app.get("/v2/me/none/tags/list").await.code(),
        "NAME_UNKNOWN"
    );

    for r in ["a/one", "b/two", "c/three"] {
        app.push_blob(r, b"x").await;
    }
    let first = app.get("/v2/_catalog?n=2").await;
    assert_eq!(
        first.json()["repositories"],
        serde_json::json!(["a/one", "b/two"])
    );
    assert_eq!(
        first.header("link"),
        Some("</v2/_catalog?n=2&last=b%2Ftwo>; rel=\"next\"")
    );
    let rest = app.get("/v2/_catalog?n=2&last=b%2Ftwo").await;
    assert_eq!(
        rest.json()["repositories"],
        serde_json::json!(["c/three", "me/paged"])
    );
}

#[tokio::test]
async fn referrers_with_artifact_type_filter_and_subject_header() {
    let app = TestApp::new().await;
    let (subject, subject_body) = app.push_image("me/app", "v1", b"image layer").await;
    let empty = app.push_blob("me/app", b"{}").await;
    let sig = app.push_blob("me/app", b"signature").await;
    let mut referrers = Vec::new();
    for (i, at) in [
        "application/vnd.example.sig",
        "application/vnd.example.sbom",
    ]
    .iter()
    .enumerate()
    {
        let m = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": at,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [{"mediaType": "application/octet-stream", "digest": sig, "size": 9}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": subject_body.len()},
            "annotations": {"n": i.to_string()},
        }))
        .unwrap();
        let d = digest(&m);
        let r = app.put_manifest("me/app", &d, OCI_MANIFEST, &m).await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(r.header("oci-subject"), Some(subject.as_str()));
        referrers.push(d);
    }
    let all = app.get(&format!("/v2/me/app/referrers/{subject}")).await;
    assert_eq!(all.header("content-type"), Some(OCI_INDEX));
    let j = all.json();
    assert_eq!(j["schemaVersion"], 2);
    assert_eq!(j["manifests"].as_array().unwrap().len(), 2);
    let filtered = app
        .get(&format!(
            "/v2/me/app/referrers/{subject}?artifactType=application/vnd.example.sbom"
        ))
        .await;
    assert_eq!(filtered.header("oci-filters-applied"), Some("artifactType"));
    let j = filtered.json();
    assert_eq!(j["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(j["manifests"][0]["digest"], referrers[1]);
    assert_eq!(
        j["manifests"][0]["artifactType"],
        "application/vnd.example.sbom"
    );
    assert_eq!(j["manifests"][0]["annotations"]["n"], "1");
    let none = app
        .get(&format!("/v2/me/app/referrers/{}", digest(b"nothing")))
        .await;
    assert_eq!(none.status, StatusCode::OK);
    assert_eq!(none.json()["manifests"], serde_json::json!([]));
}

#[tokio::test]
async fn artifact_with_empty_config_needs_no_config_upload() {
    let app = TestApp::new().await;
    let layer = app.push_blob("me/art", b"payload").await;
    let m = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.thing",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest(b"{}"), "size": 2},
        "layers": [{"mediaType": "text/plain", "digest": layer, "size": 7}],
    }))
    .unwrap();
    assert_eq!(
        app.put_manifest("me/art", "v1", OCI_MANIFEST, &m)
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        app.get(&format!("/v2/me/art/blobs/{}", digest(b"{}")))
            .await
            .body
            .as_ref(),
        b"{}"
    );
}

#[tokio::test]
async fn invalid_names_and_references() {
    let app = TestApp::new().await;
    let long = format!("/v2/me/{}/tags/list", "a".repeat(300));
    for uri in [
        "/v2/Me/app/tags/list",
        "/v2/me/../app/tags/list",
        "/v2/me/a..b/tags/list",
        long.as_str(),
        "/v2/me//app/tags/list",
    ] {
        let r = app.get(uri).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(r.code(), "NAME_INVALID", "{uri}");
    }
    for reference in ["..", ".hidden", "-x", &"a".repeat(129)] {
        let r = app.get(&format!("/v2/me/app/manifests/{reference}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{reference}");
    }
    let r = app.get("/v2/me/app/nothing-here").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .req(Method::PATCH, "/v2/me/app/manifests/v1", &[], Body::empty())
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn official_images_are_library_repositories() {
    let app = TestApp::new().await;
    let (d, _) = app.push_image("nginx", "latest", b"layer").await;
    let r = app.get("/v2/library/nginx/manifests/latest").await;
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
    assert_eq!(
        app.get("/v2/_catalog").await.json()["repositories"],
        serde_json::json!(["library/nginx"])
    );
}

#[tokio::test]
async fn upload_sessions_survive_a_restart() {
    let app = TestApp::new().await;
    let start = app
        .req(
            Method::POST,
            "/v2/me/app/blobs/uploads/",
            &[],
            Body::empty(),
        )
        .await;
    let loc = start.header("location").unwrap().to_owned();
    app.req(
        Method::PATCH,
        &loc,
        &[("content-range", "0-4")],
        b"hello".to_vec(),
    )
    .await;
    let app = app.restart().await;
    assert_eq!(app.get(&loc).await.header("range"), Some("0-4"));
    let r = app
        .req(
            Method::PATCH,
            &loc,
            &[("content-range", "5-10")],
            b" world".to_vec(),
        )
        .await;
    assert_eq!(r.header("range"), Some("0-10"));
    let d = digest(b"hello world");
    let r = app
        .req(
            Method::PUT,
            &format!("{loc}?digest={d}"),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(
        app.get(&format!("/v2/me/app/blobs/{d}"))
            .await
            .body
            .as_ref(),
        b"hello world"
    );
}

#[tokio::test]
async fn abandoned_uploads_are_swept() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.upload_expiry_secs = 0;
    let app = TestApp::with_config(dir, cfg).await;
    let start = app
        .req(
            Method::POST,
            "/v2/me/app/blobs/uploads/",
            &[],
            Body::empty(),
        )
        .await;
    let loc = start.header("location").unwrap().to_owned();
    app.req(Method::PATCH, &loc, &[], b"partial".to_vec()).await;
    // Leftover bytes with no session at all are removed too.
    let store = app.state.registry.store();
    let stray: wharf_oci::UploadId = "123e4567-e89b-12d3-a456-426614174000".parse().unwrap();
    let body: wharf_storage::ByteStream = Box::pin(futures_util::stream::iter([Ok(
        bytes::Bytes::from_static(b"stray"),
    )]));
    store
        .upload_append(&stray, 0, None, body, None, 1 << 20, None, false)
        .await
        .unwrap();
    assert_eq!(store.upload_ids().await.unwrap().len(), 2);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let removed = app.state.registry.sweep_uploads().await.unwrap();
    assert_eq!(removed, 1);
    assert_eq!(app.get(&loc).await.code(), "BLOB_UPLOAD_UNKNOWN");
    assert!(
        store.upload_ids().await.unwrap().is_empty(),
        "no upload bytes are left in storage"
    );
}

#[tokio::test]
async fn many_clients_pushing_the_same_blob_all_succeed() {
    let app = std::sync::Arc::new(TestApp::new().await);
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let d = digest(&data);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let app = app.clone();
        let data = data.clone();
        let d = d.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                app.req(
                    Method::POST,
                    &format!("/v2/me/same/blobs/uploads/?digest={d}"),
                    &[],
                    data,
                )
                .await
                .status
            } else {
                let s = app
                    .req(
                        Method::POST,
                        "/v2/me/same/blobs/uploads/",
                        &[],
                        Body::empty(),
                    )
                    .await;
                let loc = s.header("location").unwrap().to_owned();
                app.req(Method::PATCH, &loc, &[], data).await;
                app.req(
                    Method::PUT,
                    &format!("{loc}?digest={d}"),
                    &[],
                    Body::empty(),
                )
                .await
                .status
            }
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::CREATED);
    }
    assert_eq!(
        app.get(&format!("/v2/me/same/blobs/{d}"))
            .await
            .body
            .as_ref(),
        data.as_slice()
    );
}

/// A finish the store must verify itself (a digest algorithm other than the streamed
/// SHA-256) that fails ends the session, and nothing an attempt assembled is ever trusted
/// later: a blob already stored keeps its bytes.
#[tokio::test]
async fn a_failed_verified_finish_ends_the_session_and_stored_blobs_keep_their_bytes() {
    use sha2::Digest as _;
    let app = TestApp::new().await;
    // Larger than one S3 part (8 MiB), so the scale-out run assembles a multipart upload.
    let content: Vec<u8> = (0..(8u32 << 20) + 100).map(|i| (i % 253) as u8).collect();
    let d = app.push_blob("me/app", &content).await;

    let start = app
        .req(
            Method::POST,
            "/v2/me/app/blobs/uploads/",
            &[],
            Body::empty(),
        )
        .await;
    let loc = start.header("location").unwrap().to_owned();
    let first = content[..8 << 20].to_vec();
    let r = app.req(Method::PATCH, &loc, &[], first).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let sha512 = format!("sha512:{}", hex::encode(sha2::Sha512::digest(b"not it")));
    let r = app
        .req(
            Method::PUT,
            &format!("{loc}?digest={sha512}"),
            &[],
            vec![0u8; 100],
        )
        .await;
    assert_eq!(r.code(), "DIGEST_INVALID", "{}", r.message());
    // The session is over: finishing it "correctly" now cannot reuse what was assembled.
    let r = app
        .req(
            Method::PUT,
            &format!("{loc}?digest={d}"),
            &[],
            content[8 << 20..].to_vec(),
        )
        .await;
    assert_eq!(r.code(), "BLOB_UPLOAD_UNKNOWN", "{}", r.message());
    let got = app.get(&format!("/v2/me/app/blobs/{d}")).await;
    assert_eq!(got.status, StatusCode::OK);
    assert!(
        got.body.as_ref() == content.as_slice(),
        "the stored blob kept its bytes"
    );
}
