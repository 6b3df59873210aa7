//! The application: one `App` holding every service, shared as `AppState(Arc<App>)`.

use std::ops::Deref;
use std::sync::Arc;

use anyhow::Context as _;
use wharf_db::Db;
use wharf_registry::{Registry, RegistryConfig};
use wharf_storage::{BlobStore, FsStore};

use crate::config::Config;

#[derive(Debug)]
pub struct App {
    pub registry: Arc<Registry>,
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
        let registry = Registry::new(
            db,
            BlobStore::Fs(store),
            RegistryConfig {
                max_blob_bytes: config.max_blob_bytes,
                manifest_cache_ttl: std::time::Duration::from_secs(config.manifest_cache_ttl_secs),
                upload_expiry: std::time::Duration::from_secs(config.upload_expiry_secs),
            },
        );
        Ok(AppState(Arc::new(App { registry })))
    }

    /// The HTTP router for this app.
    pub fn router(state: AppState) -> axum::Router {
        crate::http::router(state)
    }
}
