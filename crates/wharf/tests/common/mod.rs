//! Shared helpers for the router tests: an app on a temporary data directory and a request
//! helper that drives the router with `oneshot`.
//!
//! With `WHARF_TEST_BACKEND=scale` (and `WHARF_TEST_PG_URL`, `WHARF_TEST_S3_*`, as
//! `scripts/test.sh` sets them) every app runs on a fresh PostgreSQL database and a fresh
//! prefix of the S3 bucket instead, so the same tests cover the scale-out backends.
#![allow(dead_code, unreachable_pub)]

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use sha2::Digest as _;
use tower::ServiceExt;
use wharf::{App, AppState, Config};

pub struct TestApp {
    pub dir: tempfile::TempDir,
    pub state: AppState,
    pub router: axum::Router,
    /// The scale-out database and storage this app uses, kept for `restart`.
    shared: Option<(String, String)>,
    /// `Authorization` sent with the push helpers (`push_blob`, `put_manifest`).
    pub push_auth: Option<String>,
}

/// A fresh PostgreSQL database and S3 prefix when `WHARF_TEST_BACKEND=scale`.
async fn scale_backends() -> Option<(String, String)> {
    use sqlx::Connection as _;
    if std::env::var("WHARF_TEST_BACKEND").as_deref() != Ok("scale") {
        return None;
    }
    let var =
        |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("WHARF_TEST_BACKEND=scale needs {k}"));
    let base = var("WHARF_TEST_PG_URL");
    let name = format!("wharf_t_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&base).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    let storage = format!(
        "s3://{}/{name}?endpoint={}&region={}",
        var("WHARF_TEST_S3_BUCKET"),
        var("WHARF_TEST_S3_ENDPOINT"),
        var("WHARF_TEST_S3_REGION"),
    );
    Some((format!("{prefix}/{name}"), storage))
}

fn use_shared(cfg: &mut Config, shared: &(String, String)) {
    cfg.database = Some(shared.0.clone());
    cfg.storage = Some(shared.1.clone());
    cfg.s3_access_key_id = std::env::var("WHARF_TEST_S3_ACCESS_KEY").ok();
    cfg.s3_secret_access_key = std::env::var("WHARF_TEST_S3_SECRET_KEY").ok();
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The first OCI error code in the body.
    pub fn code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    pub fn message(&self) -> String {
        self.json()["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }
}

pub fn config(dir: &std::path::Path) -> Config {
    Config {
        data_dir: dir.to_owned(),
        // These tests exercise the registry; authorization has its own tests.
        auth: false,
        ..Config::default()
    }
}

impl TestApp {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        Self::with_config(dir, cfg).await
    }

    pub async fn with_config(dir: tempfile::TempDir, mut cfg: Config) -> Self {
        let shared = match cfg.database {
            None => scale_backends().await,
            Some(_) => None,
        };
        if let Some(s) = &shared {
            use_shared(&mut cfg, s);
        }
        let state = App::open(&cfg).await.unwrap();
        let router = App::router(state.clone());
        Self {
            dir,
            state,
            router,
            shared,
            push_auth: None,
        }
    }

    /// The database URL: PostgreSQL in the scale-out run, else the SQLite file.
    pub fn database_url(&self) -> String {
        match &self.shared {
            Some((db, _)) => db.clone(),
            None => format!("sqlite://{}", self.dir.path().join("wharf.db").display()),
        }
    }

    /// Another node on the same database and blobs (the same data directory, or the same
    /// PostgreSQL database and S3 prefix), with its own configuration otherwise.
    pub async fn another_node(&self, mut cfg: Config) -> Self {
        cfg.data_dir = self.dir.path().to_owned();
        if let Some(s) = &self.shared {
            use_shared(&mut cfg, s);
        }
        let state = App::open(&cfg).await.unwrap();
        let router = App::router(state.clone());
        Self {
            dir: tempfile::tempdir().unwrap(),
            state,
            router,
            shared: self.shared.clone(),
            push_auth: self.push_auth.clone(),
        }
    }

    /// Closes this app and opens a new one on the same data (a restart).
    pub async fn restart(self) -> Self {
        let cfg = config(self.dir.path());
        self.restart_with(cfg).await
    }

    /// A restart with this configuration (its data directory and backends are this app's).
    pub async fn restart_with(self, mut cfg: Config) -> Self {
        self.state.registry.db().close().await;
        cfg.data_dir = self.dir.path().to_owned();
        if let Some(s) = &self.shared {
            use_shared(&mut cfg, s);
        }
        let state = App::open(&cfg).await.unwrap();
        let router = App::router(state.clone());
        Self {
            dir: self.dir,
            state,
            router,
            shared: self.shared,
            push_auth: self.push_auth,
        }
    }

    pub async fn req(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Resp {
        self.send(Request::builder().method(method).uri(uri), headers, body)
            .await
    }

    /// A bodiless request from `ip`, tagged with the client address as the accept loop
    /// tags every request.
    pub async fn req_from(
        &self,
        ip: &str,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
    ) -> Resp {
        let addr = std::net::SocketAddr::new(ip.parse().unwrap(), 40000);
        let b = Request::builder()
            .method(method)
            .uri(uri)
            .extension(wharf::ClientAddr(addr));
        self.send(b, headers, Body::empty()).await
    }

    async fn send(
        &self,
        mut b: axum::http::request::Builder,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Resp {
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let resp = self
            .router
            .clone()
            .oneshot(b.body(body.into()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, uri: &str) -> Resp {
        self.req(Method::GET, uri, &[], Body::empty()).await
    }

    /// Pushes a blob monolithically; returns its digest.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let d = digest(data);
        let r = self
            .req(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
                &self.auth_headers(),
                data.to_vec(),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        d
    }

    /// Pushes a config and one layer and an OCI image manifest referencing them.
    pub async fn push_image(&self, repo: &str, tag: &str, layer: &[u8]) -> (String, Vec<u8>) {
        let cfg = format!(
            "{{\"architecture\":\"amd64\",\"os\":\"linux\",\"n\":{}}}",
            layer.len()
        )
        .into_bytes();
        let cd = self.push_blob(repo, &cfg).await;
        let ld = self.push_blob(repo, layer).await;
        let m = image_manifest(&cd, cfg.len(), &ld, layer.len(), None);
        let r = self.put_manifest(repo, tag, OCI_MANIFEST, &m).await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        (r.header("docker-content-digest").unwrap().to_owned(), m)
    }

    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        content_type: &str,
        body: &[u8],
    ) -> Resp {
        let mut headers = self.auth_headers();
        headers.push(("content-type", content_type));
        self.req(
            Method::PUT,
            &format!("/v2/{repo}/manifests/{reference}"),
            &headers,
            body.to_vec(),
        )
        .await
    }

    fn auth_headers(&self) -> Vec<(&str, &str)> {
        self.push_auth
            .as_deref()
            .map(|a| ("authorization", a))
            .into_iter()
            .collect()
    }
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

pub fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

pub fn image_manifest(
    config: &str,
    config_size: usize,
    layer: &str,
    layer_size: usize,
    extra: Option<serde_json::Value>,
) -> Vec<u8> {
    let mut m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_size}],
    });
    if let Some(serde_json::Value::Object(extra)) = extra {
        for (k, v) in extra {
            m[k] = v;
        }
    }
    serde_json::to_vec(&m).unwrap()
}
