//! wharf's metadata database. Only this crate knows SQL. Queries are grouped by aggregate
//! (repositories, blobs, manifests and tags, uploads); callers speak in domain types.
//!
//! Two engines run the same SQL through sqlx's `Any` driver: SQLite, the embedded default
//! (one machine), and PostgreSQL (shared by many stateless nodes). Placeholders are `$N`,
//! which both accept; integers are `BIGINT`/`INTEGER` (i64), times are seconds since the epoch,
//! and the few dialect differences are branches on `Backend` in this file and
//! `group_commit.rs`. Each engine has its own migrations folder.

mod accounts;
mod analytics;
mod analytics_series;
mod blobs;
mod extensions;
mod group_commit;
mod hub;
mod limits;
mod manifests;
mod repos;
mod uploads;

use std::path::Path;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnectionMetadata;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyConnection, AnyPool, ConnectOptions as _, Connection as _, Executor as _};

pub use accounts::{AccessTokenRow, NamespaceKind, NewTokenRow, OrgRole, RepoPermission, UserRow};
pub use analytics::{
    ActionBatch, ActionCounts, ClassifierState, DailyKey, ImageDomainRow, PullActionRow, PullerRow,
    Rollup, TallyBy, UniqueCount, UniqueRow,
};
pub use analytics_series::{AnalyticsNamespaceRow, SeriesTally};
pub use extensions::{ExtensionEventRow, ExtensionTally};
pub use hub::{
    ApplicationRow, ChildRow, NewApplication, PullCount, RepoOrder, RepoPatch, RepoRow,
    SearchQuery, TagOrder, TagRow, Viewer,
};
pub use limits::RateRuleRow;
pub use manifests::{ManifestRecord, NewManifest, PutOutcome, Referrer};
pub use uploads::{UploadProgress, UploadRow};

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
    /// The configured database cannot be used.
    #[error("{0}")]
    Config(String),
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Which engine holds the metadata. The SQL is the same for both except where a method says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default: one file, one machine.
    Sqlite,
    /// Shared by any number of wharf nodes.
    Postgres,
}

/// The metadata database.
#[derive(Debug, Clone)]
pub struct Db {
    read: AnyPool,
    write: AnyPool,
    backend: Backend,
    /// SQLite's group committer; PostgreSQL commits each job in its own transaction.
    commits: Option<tokio::sync::mpsc::Sender<group_commit::Job>>,
}

/// Seconds since the Unix epoch; all stored times use it.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `url` with its password replaced by `***`, for messages and logs: the user-info part
/// (up to the last `@` before any `?` or `#`, so a password may hold `/` or `@`) and any
/// `password=` query parameter.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let (before_query, query) = rest.split_at(end);
    let rest = match before_query.rfind('@') {
        Some(at) => {
            let (userinfo, host) = before_query.split_at(at);
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***{host}"),
                None => before_query.to_owned(),
            }
        }
        None => before_query.to_owned(),
    };
    let query: Vec<String> = query
        .split_inclusive(['?', '&'])
        .map(|part| {
            let lower = part.to_ascii_lowercase();
            let body = lower.trim_start_matches(['?', '&']);
            if body.starts_with("password=") {
                let lead = if part.starts_with('?') {
                    "?"
                } else if part.starts_with('&') {
                    "&"
                } else {
                    ""
                };
                let tail = if part.ends_with('&') { "&" } else { "" };
                format!("{lead}password=***{tail}")
            } else {
                part.to_owned()
            }
        })
        .collect();
    format!("{scheme}://{rest}{}", query.concat())
}

type ConnectFuture<'c> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), sqlx::Error>> + Send + 'c>>;

/// Settings every SQLite connection gets. The writer also sets WAL and `synchronous=FULL`:
/// a committed transaction survives power loss, which is what a 201 promises, and keeps an
/// 8 MiB page cache (with the default 2 MiB, inserts into the analytics rollups' large
/// indexes re-read most pages from the kernel; 64 MiB classified faster, about 41,000 seeded
/// events/s against 36,000, but stayed resident under pull load), and its statement journals
/// in memory (each multi-row insert inside a transaction keeps one, which on disk cost a
/// write per page).
fn sqlite_pragmas(
    conn: &mut AnyConnection,
    _meta: PoolConnectionMetadata,
    writer: bool,
) -> ConnectFuture<'_> {
    Box::pin(async move {
        if writer {
            conn.execute(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA cache_size = -8192; \
                 PRAGMA temp_store = MEMORY;",
            )
            .await?;
        }
        conn.execute("PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;")
            .await
            .map(drop)
    })
}

impl Db {
    /// Opens the database at `location`: a `postgres://` URL, or else a SQLite file path
    /// (`sqlite://PATH` or a plain path).
    pub async fn open(location: &str) -> Result<Self, DbError> {
        if location.starts_with("postgres://") || location.starts_with("postgresql://") {
            Self::open_postgres(location, 16).await
        } else {
            let path = location.strip_prefix("sqlite://").unwrap_or(location);
            Self::open_sqlite(Path::new(path)).await
        }
    }

    /// Opens (creating if missing) the SQLite database at `path` and runs the embedded
    /// migrations. One writer connection (SQLite serialises writers anyway, and a single
    /// connection avoids busy retries) and a pool of readers, in WAL mode.
    pub async fn open_sqlite(path: &Path) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let url = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .to_url_lossy();
        let opts = AnyConnectOptions::from_url(&url)?;
        let write = AnyPoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(|conn, meta| sqlite_pragmas(conn, meta, true))
            .connect_with(opts.clone())
            .await?;
        SQLITE_MIGRATIONS.run(&write).await?;
        let readers = std::thread::available_parallelism().map_or(4, |n| n.get().max(4)) as u32;
        let mut read_url = url.clone();
        read_url.query_pairs_mut().clear().append_pair("mode", "ro");
        let read = AnyPoolOptions::new()
            .max_connections(readers)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(|conn, meta| sqlite_pragmas(conn, meta, false))
            .connect_with(AnyConnectOptions::from_url(&read_url)?)
            .await?;
        let commits = group_commit::start(write.clone());
        Ok(Self {
            read,
            write,
            backend: Backend::Sqlite,
            commits: Some(commits),
        })
    }

    /// Connects to PostgreSQL at `url` and runs the embedded migrations. Several nodes may
    /// start at once: the migrations run under an advisory lock, one node at a time.
    pub async fn open_postgres(url: &str, max_connections: u32) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let opts = AnyConnectOptions::from_url(&url.parse().map_err(|e| {
            DbError::Config(format!(
                "database URL {} is not a valid URL: {e}",
                redact_url(url)
            ))
        })?)?;
        // One direct connection first: an unreachable server or a wrong password fails at
        // once with the server's reason, instead of after the pool's retries.
        let probe =
            tokio::time::timeout(Duration::from_secs(10), AnyConnection::connect_with(&opts))
                .await
                .map_err(|_| {
                    DbError::Config(format!("{}: no answer within 10 s", redact_url(url)))
                })??;
        probe.close().await?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(2))
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await?;
        POSTGRES_MIGRATIONS.run(&pool).await?;
        Ok(Self {
            read: pool.clone(),
            write: pool,
            backend: Backend::Postgres,
            commits: None,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs a write whose durability nothing acknowledges yet (a new upload session, upload
    /// progress, a repository created on first push) without waiting for a disk flush. A
    /// process crash cannot lose it; power loss can roll it back, and the next durable commit
    /// makes it durable too, because the log is written in order. Anything wharf answers 201
    /// for is committed durably (SQLite `synchronous=FULL`, PostgreSQL `synchronous_commit`).
    pub(crate) async fn execute_relaxed<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<sqlx::any::AnyQueryResult, DbError> {
        match self.backend {
            Backend::Sqlite => {
                let mut relaxed = Relaxed::acquire(&self.write).await?;
                let result = query.execute(relaxed.conn()).await;
                relaxed.restore().await?;
                Ok(result?)
            }
            Backend::Postgres => {
                let mut tx = self.write.begin().await?;
                tx.execute("SET LOCAL synchronous_commit = off").await?;
                let result = query.execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(result)
            }
        }
    }

    /// Verifies the database answers and accepts writes (for `wharf check`): writes and
    /// deletes one row in a transaction that is rolled back.
    pub async fn check_writable(&self) -> Result<(), DbError> {
        let mut tx = self.write.begin().await?;
        sqlx::query("INSERT INTO signing_keys (id, secret, created_at) VALUES ($1, $2, $3)")
            .bind("wharf-check")
            .bind(vec![0u8])
            .bind(now())
            .execute(&mut *tx)
            .await?;
        tx.rollback().await?;
        Ok(())
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

/// SQLite's write connection with durability relaxed (`synchronous = NORMAL`: no disk flush
/// per commit). It goes back to the pool only once restored to `FULL`; dropped on the way (a
/// request cancelled because its client went away, a failed reset) it is closed instead, so
/// a relaxed connection never serves a write that wharf acknowledges.
pub(crate) struct Relaxed {
    conn: Option<sqlx::pool::PoolConnection<sqlx::Any>>,
}

impl Relaxed {
    pub(crate) async fn acquire(pool: &AnyPool) -> Result<Self, DbError> {
        let mut relaxed = Self {
            conn: Some(pool.acquire().await?),
        };
        relaxed
            .conn()
            .execute("PRAGMA synchronous = NORMAL")
            .await?;
        Ok(relaxed)
    }

    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        match self.conn.as_mut() {
            Some(conn) => conn,
            None => {
                unreachable!("a relaxed connection is only taken by restore, which consumes it")
            }
        }
    }

    /// Restores full durability and hands the connection back to the pool.
    pub(crate) async fn restore(mut self) -> Result<(), DbError> {
        self.conn().execute("PRAGMA synchronous = FULL").await?;
        drop(self.conn.take());
        Ok(())
    }
}

impl Drop for Relaxed {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            drop(conn.detach());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Db, Relaxed, redact_url};

    #[test]
    fn passwords_never_survive_redaction() {
        assert_eq!(
            redact_url("postgres://u:p@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(
            redact_url("postgres://u:ab/c@d@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact_url("postgres://h/db?user=u&password=s3cret&sslmode=require"),
            "postgres://h/db?user=u&password=***&sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://h/db?password=x"),
            "postgres://h/db?password=***"
        );
    }

    async fn synchronous(db: &Db) -> i64 {
        sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&db.write)
            .await
            .unwrap()
    }

    /// A relaxed write cut short (its future dropped, as when a client goes away) never
    /// leaves the pool's write connection without disk flushes.
    #[tokio::test]
    async fn a_relaxed_connection_dropped_half_way_is_closed_not_reused() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("wharf.db")).await.unwrap();
        assert_eq!(synchronous(&db).await, 2, "FULL");
        let mut relaxed = Relaxed::acquire(&db.write).await.unwrap();
        let mode: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(relaxed.conn())
            .await
            .unwrap();
        assert_eq!(mode, 1, "NORMAL while relaxed");
        drop(relaxed);
        assert_eq!(synchronous(&db).await, 2);
        // Restored, it goes back to the pool as it came.
        let relaxed = Relaxed::acquire(&db.write).await.unwrap();
        relaxed.restore().await.unwrap();
        assert_eq!(synchronous(&db).await, 2);
    }
}
