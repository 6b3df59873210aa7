//! Upload sessions. The row is the session: its offset, the running hash of the bytes so far,
//! and the storage backend's own state (an S3 multipart upload's parts, for example), so any
//! node can continue a session another node began. Advancing it is a compare-and-swap on the
//! offset, so two requests racing on one session cannot both win.

use sqlx::Row;
use wharf_oci::UploadId;

use crate::{Db, DbError, RepoId, now};

#[derive(Debug, Clone)]
pub struct UploadRow {
    pub repo: RepoId,
    pub offset: u64,
    pub started_at: i64,
    /// The saved hasher state after `offset` bytes (`wharf_oci::Hasher::save`).
    pub hash_state: Option<Vec<u8>>,
    /// What the blob store needs to continue the upload; opaque here.
    pub store_state: Option<String>,
}

/// A session's new position, recorded after an append.
#[derive(Debug, Clone, Copy)]
pub struct UploadProgress<'a> {
    pub offset: u64,
    pub hash_state: Option<&'a [u8]>,
    pub store_state: Option<&'a str>,
}

impl Db {
    /// Records a new upload session. On SQLite it rides the group committer with the pushes'
    /// blob commits; on PostgreSQL it is one relaxed commit (a session that a crash loses is
    /// only restarted by its client).
    pub async fn upload_create(
        &self,
        id: &UploadId,
        repo: RepoId,
        store_state: Option<&str>,
    ) -> Result<(), DbError> {
        let Some(commits) = &self.commits else {
            self.execute_relaxed(crate::group_commit::insert_upload(
                id.as_str(),
                repo,
                store_state,
            ))
            .await?;
            return Ok(());
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = crate::group_commit::UploadCreate {
            id: id.to_string(),
            repo,
            store_state: store_state.map(str::to_owned),
            reply,
        };
        crate::group_commit::submit(commits, crate::group_commit::Job::Upload(job), answer).await
    }

    pub async fn upload_get(&self, id: &UploadId) -> Result<Option<UploadRow>, DbError> {
        // A reader sees every transaction committed before it began, so a PATCH sees the
        // offset the previous PATCH committed, on this node or any other.
        let row = sqlx::query(
            "SELECT repo_id, offset_bytes, started_at, hash_state, store_state FROM uploads WHERE id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| {
            Ok(UploadRow {
                repo: RepoId(r.try_get(0)?),
                offset: r.try_get::<i64, _>(1)? as u64,
                started_at: r.try_get(2)?,
                hash_state: r.try_get(3)?,
                store_state: r.try_get(4)?,
            })
        })
        .transpose()
    }

    /// Moves the session from offset `from` to `to`; false if another request moved it first.
    /// Durable: the caller then drops storage the previous state referenced.
    pub async fn upload_advance(
        &self,
        id: &UploadId,
        from: u64,
        to: UploadProgress<'_>,
    ) -> Result<bool, DbError> {
        let r = sqlx::query(
            "UPDATE uploads SET offset_bytes = $1, hash_state = $2, store_state = $3, updated_at = $4 \
             WHERE id = $5 AND offset_bytes = $6",
        )
        .bind(to.offset as i64)
        .bind(to.hash_state)
        .bind(to.store_state)
        .bind(now())
        .bind(id.as_str())
        .bind(from as i64)
        .execute(&self.write)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Ends a session, or with `idle_before` only one still idle since then (a request on
    /// another node may have just moved it); returns its storage state when it was ended, so
    /// the caller can release what storage holds for it.
    pub async fn upload_delete(
        &self,
        id: &UploadId,
        idle_before: Option<i64>,
    ) -> Result<Option<Option<String>>, DbError> {
        let row = sqlx::query(
            "DELETE FROM uploads WHERE id = $1 AND ($2 IS NULL OR updated_at < $2) RETURNING store_state",
        )
        .bind(id.as_str())
        .bind(idle_before)
        .fetch_optional(&self.write)
        .await?;
        row.map(|r| Ok(r.try_get(0)?)).transpose()
    }

    /// Sessions not touched since `before` (seconds since the epoch), at most `limit`.
    pub async fn uploads_idle_since(
        &self,
        before: i64,
        limit: u32,
    ) -> Result<Vec<UploadId>, DbError> {
        let rows = sqlx::query(
            "SELECT id FROM uploads WHERE updated_at < $1 ORDER BY updated_at LIMIT $2",
        )
        .bind(before)
        .bind(limit as i64)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| r.try_get::<String, _>(0).ok()?.parse().ok())
            .collect())
    }

    pub async fn upload_exists(&self, id: &UploadId) -> Result<bool, DbError> {
        let row = sqlx::query("SELECT 1 FROM uploads WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.read)
            .await?;
        Ok(row.is_some())
    }
}
