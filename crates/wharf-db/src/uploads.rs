//! Upload sessions. The row's offset is the truth; advancing it is a compare-and-swap so two
//! requests racing on one session cannot both win.

use sqlx::Row;
use wharf_oci::UploadId;

use crate::{Db, DbError, RepoId, now};

#[derive(Debug, Clone)]
pub struct UploadRow {
    pub repo: RepoId,
    pub offset: u64,
    pub started_at: i64,
}

impl Db {
    pub async fn upload_create(&self, id: &UploadId, repo: RepoId) -> Result<(), DbError> {
        let now = now();
        self.execute_relaxed(
            sqlx::query("INSERT INTO uploads (id, repo_id, offset_bytes, started_at, updated_at) VALUES (?, ?, 0, ?, ?)")
                .bind(id.as_str())
                .bind(repo.0)
                .bind(now)
                .bind(now),
        )
        .await?;
        Ok(())
    }

    pub async fn upload_get(&self, id: &UploadId) -> Result<Option<UploadRow>, DbError> {
        // A reader sees every transaction committed before it began, so a PATCH sees the
        // offset the previous PATCH committed.
        let row = sqlx::query("SELECT repo_id, offset_bytes, started_at FROM uploads WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| UploadRow {
            repo: RepoId(r.get(0)),
            offset: r.get::<i64, _>(1) as u64,
            started_at: r.get(2),
        }))
    }

    /// Moves the offset from `from` to `to`; false if another request moved it first.
    pub async fn upload_advance(&self, id: &UploadId, from: u64, to: u64) -> Result<bool, DbError> {
        let r = sqlx::query(
            "UPDATE uploads SET offset_bytes = ?, updated_at = ? WHERE id = ? AND offset_bytes = ?",
        )
        .bind(to as i64)
        .bind(now())
        .bind(id.as_str())
        .bind(from as i64)
        .execute(&self.write)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn upload_delete(&self, id: &UploadId) -> Result<bool, DbError> {
        let r = sqlx::query("DELETE FROM uploads WHERE id = ?")
            .bind(id.as_str())
            .execute(&self.write)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Sessions not touched since `before` (seconds since the epoch), at most `limit`.
    pub async fn uploads_idle_since(
        &self,
        before: i64,
        limit: u32,
    ) -> Result<Vec<UploadId>, DbError> {
        let rows =
            sqlx::query("SELECT id FROM uploads WHERE updated_at < ? ORDER BY updated_at LIMIT ?")
                .bind(before)
                .bind(limit as i64)
                .fetch_all(&self.read)
                .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| r.get::<String, _>(0).parse().ok())
            .collect())
    }

    pub async fn upload_exists(&self, id: &UploadId) -> Result<bool, DbError> {
        let row = sqlx::query("SELECT 1 FROM uploads WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.read)
            .await?;
        Ok(row.is_some())
    }
}
