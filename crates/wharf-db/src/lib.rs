//! wharf's metadata database. Only this crate knows SQL. Queries are grouped by aggregate
//! (repositories, blobs, manifests and tags, uploads); callers speak in domain types.
//!
//! SQLite is the embedded default: one writer connection (SQLite serialises writers anyway,
//! and a single connection avoids busy retries) and a pool of readers in WAL mode.

mod accounts;
mod blobs;
mod group_commit;
mod manifests;
mod repos;
mod uploads;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub use accounts::{AccessTokenRow, NamespaceKind, NewTokenRow, OrgRole, RepoPermission, UserRow};
pub use manifests::{ManifestRecord, NewManifest, PutOutcome, Referrer};
pub use uploads::UploadRow;

/// A repository's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RepoId(pub i64);

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A manifest names blobs or child manifests the repository does not hold.
    #[error("manifest references content that is not in the repository: {}", .0.join(", "))]
    MissingReferences(Vec<String>),
    /// A user or organization name (or an email) is already in use.
    #[error("the name or email {0:?} is already taken")]
    NameTaken(String),
    /// A group commit failed as a whole.
    #[error("database commit failed: {0}")]
    Commit(String),
    /// An upload session changed (or ended) while a request was finishing it.
    #[error("upload {0} was changed or ended by another request")]
    UploadMoved(String),
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The metadata database.
#[derive(Debug, Clone)]
pub struct Db {
    read: SqlitePool,
    write: SqlitePool,
    commits: tokio::sync::mpsc::Sender<group_commit::BlobCommit>,
}

/// Seconds since the Unix epoch; all stored times use it.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Db {
    /// Opens (creating if missing) the SQLite database at `path` and runs the embedded
    /// migrations.
    pub async fn open_sqlite(path: &Path) -> Result<Self, DbError> {
        let opts = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed transaction survives power loss, which is what a 201 promises.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts.clone())
            .await?;
        SQLITE_MIGRATIONS.run(&write).await?;
        let readers = std::thread::available_parallelism().map_or(4, |n| n.get().max(4)) as u32;
        let read = SqlitePoolOptions::new()
            .max_connections(readers)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts.read_only(true))
            .await?;
        let commits = group_commit::start(write.clone());
        Ok(Self {
            read,
            write,
            commits,
        })
    }

    /// Runs a write whose durability nothing acknowledges yet (a new upload session, upload
    /// progress, a repository created on first push) without waiting for an fsync. A process
    /// crash cannot lose it (the WAL is in the page cache); power loss can roll it back, and
    /// the next durable commit makes it durable too, because the WAL is written in order.
    /// Anything wharf answers 201 for is committed with `synchronous=FULL`.
    pub(crate) async fn execute_relaxed<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    ) -> Result<sqlx::sqlite::SqliteQueryResult, DbError> {
        let mut conn = self.write.acquire().await?;
        sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut *conn)
            .await?;
        let result = query.execute(&mut *conn).await;
        let reset = sqlx::query("PRAGMA synchronous = FULL")
            .execute(&mut *conn)
            .await;
        if reset.is_err() {
            // Never hand a relaxed connection back to the pool.
            drop(conn.detach());
        }
        reset?;
        Ok(result?)
    }

    /// Cheap liveness probe for `/healthz`.
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}
