//! The application: one `App` holding every service, shared as `AppState(Arc<App>)`.

use std::ops::Deref;
use std::sync::Arc;

use anyhow::Context as _;
use wharf_db::Db;
use wharf_hub::{Hub, HubConfig};
use wharf_registry::{Registry, RegistryConfig};
use wharf_storage::{BlobStore, FsStore, S3Store};

use crate::config::Config;

#[derive(Debug)]
pub struct App {
    pub registry: Arc<Registry>,
    pub hub: Arc<Hub>,
    pub analytics: Arc<wharf_hub::analytics::Analytics>,
    /// Extension analytics: events from the operator's collector and their summaries.
    pub extensions: Arc<wharf_hub::extensions::Extensions>,
    /// Whether requests are authorized against accounts (`auth` in the config).
    pub auth: bool,
    /// Whether this server speaks HTTPS (for the token realm).
    pub tls: bool,
    pub public_url: Option<String>,
    /// Load balancers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

#[derive(Debug, Clone)]
pub struct AppState(pub Arc<App>);

impl Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}

impl App {
    /// Opens the metadata database (running its migrations) and the blob store that the
    /// configuration names: SQLite and a directory under `data_dir` by default, or
    /// PostgreSQL and an S3 bucket shared with other nodes.
    pub async fn open(config: &Config) -> anyhow::Result<AppState> {
        let (db, store) = open_backends(config).await?;
        let hub = Hub::open(
            db.clone(),
            HubConfig {
                token_ttl: std::time::Duration::from_secs(config.token_ttl_secs),
                limits: config.limits(),
                ..HubConfig::default()
            },
        )
        .await
        .context("cannot prepare the token signing key")?;
        let analytics = wharf_hub::analytics::Analytics::open(db.clone(), config.analytics())
            .await
            .context("cannot start pull analytics (check the analytics_* settings)")?;
        let extensions =
            wharf_hub::extensions::Extensions::open(db.clone(), config.analytics().retention)
                .await
                .context("cannot start extension analytics")?;
        let registry = Registry::new(
            db,
            store,
            RegistryConfig {
                max_blob_bytes: config.max_blob_bytes,
                manifest_cache_ttl: config.manifest_cache_ttl(),
                upload_expiry: std::time::Duration::from_secs(config.upload_expiry_secs),
            },
        );
        Ok(AppState(Arc::new(App {
            registry,
            hub,
            analytics,
            extensions,
            auth: config.auth,
            tls: config.tls_cert.is_some(),
            public_url: config.public_url.clone(),
            trusted_proxies: config.trusted_proxies()?,
        })))
    }

    /// The HTTP router for this app.
    pub fn router(state: AppState) -> axum::Router {
        crate::http::router(state)
    }
}

/// The database and blob store the configuration names, opened and ready.
pub async fn open_backends(config: &Config) -> anyhow::Result<(Db, BlobStore)> {
    let uses_data_dir = config.database.is_none() || config.storage.is_none();
    if uses_data_dir {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!(
                "data_dir {}: cannot create it; choose a writable directory with --data-dir",
                config.data_dir.display()
            )
        })?;
    }
    let db = match &config.database {
        None => {
            let path = config.data_dir.join("wharf.db");
            Db::open_sqlite(&path)
                .await
                .with_context(|| format!("database {}: cannot open it", path.display()))?
        }
        Some(url) if url.starts_with("sqlite://") => Db::open(url)
            .await
            .with_context(|| format!("database {url}: cannot open it"))?,
        Some(url) => Db::open_postgres(url, config.database_max_connections)
            .await
            .with_context(|| {
                format!(
                    "database {}: cannot connect or prepare it (check --database / WHARF_DATABASE, that the server is up and the user may create tables)",
                    wharf_db::redact_url(url)
                )
            })?,
    };
    if config.shared_database()
        && !config
            .storage
            .as_deref()
            .is_some_and(|s| s.starts_with("s3://"))
    {
        tracing::warn!(
            "the database is PostgreSQL but blobs are in a local directory: other nodes cannot serve them; use --storage s3://… for several nodes"
        );
    }
    let store = match (config.s3_config()?, &config.storage) {
        (Some(s3), Some(url)) => BlobStore::S3(
            S3Store::open(s3).with_context(|| format!("storage {url}: cannot configure it"))?,
        ),
        (None, Some(dir)) => BlobStore::Fs(
            FsStore::open(dir)
                .with_context(|| format!("storage {dir}: cannot prepare blob storage in it"))?,
        ),
        (_, None) => BlobStore::Fs(FsStore::open(config.data_dir.join("storage")).with_context(
            || {
                format!(
                    "data_dir {}: cannot prepare blob storage in it",
                    config.data_dir.display()
                )
            },
        )?),
    };
    Ok((db, store))
}
