//! Group commit for the writes of a push. Every finished upload ends in one durable transaction,
//! and on SQLite each durable commit costs an fsync on the single writer connection. Commits
//! that arrive while one is in flight are gathered and written in one transaction, each inside
//! its own savepoint (so one job's failure undoes only that job), and share one fsync. New
//! upload sessions ride along: each is one statement (atomic by itself), so a batch of them
//! costs one round trip each instead of three (a relaxed commit of its own).
//! PostgreSQL has many writers and its own group commit, so there each job is applied in its
//! own transaction (`Db::commit_blob`, `Db::upload_create`).

use sqlx::{AnyConnection, AnyPool};
use tokio::sync::{mpsc, oneshot};

use crate::{DbError, RepoId, now};

/// Most jobs written in one transaction.
const MAX_BATCH: usize = 128;

#[derive(Debug)]
pub(crate) struct BlobCommit {
    pub(crate) repo: RepoId,
    pub(crate) digest: String,
    pub(crate) size: u64,
    pub(crate) upload: Option<(String, u64)>,
    pub(crate) reply: oneshot::Sender<Result<(), DbError>>,
}

/// A new upload session's row.
#[derive(Debug)]
pub(crate) struct UploadCreate {
    pub(crate) id: String,
    pub(crate) repo: RepoId,
    pub(crate) store_state: Option<String>,
    pub(crate) reply: oneshot::Sender<Result<(), DbError>>,
}

#[derive(Debug)]
pub(crate) enum Job {
    Blob(BlobCommit),
    Upload(UploadCreate),
}

impl Job {
    fn reply(self, result: Result<(), DbError>) {
        let _ = match self {
            Job::Blob(j) => j.reply.send(result),
            Job::Upload(j) => j.reply.send(result),
        };
    }
}

/// Hands a job to the committer and waits for its outcome.
pub(crate) async fn submit(
    commits: &mpsc::Sender<Job>,
    job: Job,
    answer: oneshot::Receiver<Result<(), DbError>>,
) -> Result<(), DbError> {
    let closed = || DbError::Commit("the database is shutting down".into());
    commits.send(job).await.map_err(|_| closed())?;
    answer.await.map_err(|_| closed())?
}

/// Starts the committer task; it ends when every sender is dropped.
pub(crate) fn start(write: AnyPool) -> mpsc::Sender<Job> {
    let (tx, mut rx) = mpsc::channel::<Job>(1024);
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while let Some(first) = rx.recv().await {
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            write_batch(&write, &mut batch).await;
        }
    });
    tx
}

async fn write_batch(write: &AnyPool, batch: &mut Vec<Job>) {
    let mut results: Vec<Result<(), DbError>> = Vec::with_capacity(batch.len());
    let outcome: Result<(), sqlx::Error> = async {
        let mut conn = write.acquire().await?;
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        let written = write_jobs(&mut conn, batch, &mut results).await;
        let committed = match written {
            Ok(()) => sqlx::query("COMMIT").execute(&mut *conn).await.map(drop),
            Err(e) => Err(e),
        };
        if let Err(e) = committed {
            // Never hand a connection back inside an open transaction.
            if sqlx::query("ROLLBACK").execute(&mut *conn).await.is_err() {
                drop(conn.detach());
            }
            return Err(e);
        }
        Ok(())
    }
    .await;
    match outcome {
        Ok(()) => {
            for (job, r) in batch.drain(..).zip(results) {
                job.reply(r);
            }
        }
        Err(e) => {
            // Nothing of the batch is committed: every job fails alike.
            let msg = e.to_string();
            for job in batch.drain(..) {
                job.reply(Err(DbError::Commit(msg.clone())));
            }
        }
    }
}

async fn write_jobs(
    conn: &mut AnyConnection,
    batch: &[Job],
    results: &mut Vec<Result<(), DbError>>,
) -> Result<(), sqlx::Error> {
    for job in batch {
        let job = match job {
            Job::Blob(job) => job,
            Job::Upload(job) => {
                // One statement: a failure undoes only itself, no savepoint needed.
                results.push(create_upload(&mut *conn, job).await);
                continue;
            }
        };
        sqlx::query("SAVEPOINT job").execute(&mut *conn).await?;
        let r = apply(conn, job).await;
        if r.is_err() {
            sqlx::query("ROLLBACK TO job").execute(&mut *conn).await?;
        }
        sqlx::query("RELEASE job").execute(&mut *conn).await?;
        results.push(r);
    }
    Ok(())
}

async fn create_upload(conn: &mut AnyConnection, job: &UploadCreate) -> Result<(), DbError> {
    insert_upload(&job.id, job.repo, job.store_state.as_deref())
        .execute(conn)
        .await?;
    Ok(())
}

/// The statement that records a new upload session at offset 0.
pub(crate) fn insert_upload<'q>(
    id: &'q str,
    repo: RepoId,
    store_state: Option<&'q str>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let now = now();
    sqlx::query("INSERT INTO uploads (id, repo_id, offset_bytes, started_at, updated_at, store_state) VALUES ($1, $2, 0, $3, $4, $5)")
        .bind(id)
        .bind(repo.0)
        .bind(now)
        .bind(now)
        .bind(store_state)
}

pub(crate) async fn apply(conn: &mut AnyConnection, job: &BlobCommit) -> Result<(), DbError> {
    let now = now();
    sqlx::query("INSERT INTO blobs (digest, size, created_at) VALUES ($1, $2, $3) ON CONFLICT (digest) DO NOTHING")
        .bind(&job.digest)
        .bind(job.size as i64)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    sqlx::query("INSERT INTO repo_blobs (repo_id, digest, linked_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
        .bind(job.repo.0)
        .bind(&job.digest)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    if let Some((id, offset)) = &job.upload {
        let ended = sqlx::query("DELETE FROM uploads WHERE id = $1 AND offset_bytes = $2")
            .bind(id)
            .bind(*offset as i64)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        if ended != 1 {
            return Err(DbError::UploadMoved(id.clone()));
        }
    }
    Ok(())
}
