//! The application: one `App` holding every service, shared as `AppState(Arc<App>)`.

use std::ops::Deref;
use std::sync::Arc;

use anyhow::Context as _;
use wharf_db::Db;
use wharf_hub::{Hub, HubConfig};
use wharf_registry::{Registry, RegistryConfig};
use wharf_storage::{BlobStore, FsStore};

use crate::config::Config;

#[derive(Debug)]
pub struct App {
    pub registry: Arc<Registry>,
    pub hub: Arc<Hub>,
    /// Whether requests are authorized against accounts (`auth` in the config).
    pub auth: bool,
    /// Whether this server speaks HTTPS (for the token realm).
    pub tls: bool,
    pub public_url: Option<String>,
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
    /// Opens the data directory: database (with migrations) and blob store.
    pub async fn open(config: &Config) -> anyhow::Result<AppState> {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!(
                "data_dir {}: cannot create it; choose a writable directory with --data-dir",
                config.data_dir.display()
            )
        })?;
        let db_path = config.data_dir.join("wharf.db");
        let db = Db::open_sqlite(&db_path)
            .await
            .with_context(|| format!("database {}: cannot open it", db_path.display()))?;
        let store = FsStore::open(config.data_dir.join("storage")).with_context(|| {
            format!(
                "data_dir {}: cannot prepare blob storage in it",
                config.data_dir.display()
            )
        })?;
        let hub = Hub::open(
            db.clone(),
            HubConfig {
                token_ttl: std::time::Duration::from_secs(config.token_ttl_secs),
                ..HubConfig::default()
            },
        )
        .await
        .context("cannot prepare the token signing key")?;
        let registry = Registry::new(
            db,
            BlobStore::Fs(store),
            RegistryConfig {
                max_blob_bytes: config.max_blob_bytes,
                manifest_cache_ttl: std::time::Duration::from_secs(config.manifest_cache_ttl_secs),
                upload_expiry: std::time::Duration::from_secs(config.upload_expiry_secs),
            },
        );
        Ok(AppState(Arc::new(App {
            registry,
            hub,
            auth: config.auth,
            tls: config.tls_cert.is_some(),
            public_url: config.public_url.clone(),
        })))
    }

    /// The HTTP router for this app.
    pub fn router(state: AppState) -> axum::Router {
        crate::http::router(state)
    }
}
