//! Blobs and their links to repositories.

use sqlx::Row;
use wharf_oci::Digest;

use crate::{Db, DbError, RepoId, now};

impl Db {
    /// The size of a blob if the repository may serve it.
    pub async fn repo_blob_size(
        &self,
        repo: RepoId,
        digest: &Digest,
    ) -> Result<Option<u64>, DbError> {
        let row = sqlx::query(
            "SELECT b.size FROM repo_blobs rb JOIN blobs b ON b.digest = rb.digest \
             WHERE rb.repo_id = $1 AND rb.digest = $2",
        )
        .bind(repo.0)
        .bind(digest.to_string())
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|r| r.get::<i64, _>(0) as u64))
    }

    /// The size of a blob stored anywhere.
    pub async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, DbError> {
        let row = sqlx::query("SELECT size FROM blobs WHERE digest = $1")
            .bind(digest.to_string())
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| r.get::<i64, _>(0) as u64))
    }

    /// Records a verified blob and links it to the repository; ends the upload session, if
    /// any, in the same transaction. The session must still be at `offset` (what its bytes
    /// were verified against), else nothing is recorded and `UploadMoved` is returned.
    pub async fn commit_blob(
        &self,
        repo: RepoId,
        digest: &Digest,
        size: u64,
        upload: Option<(&wharf_oci::UploadId, u64)>,
    ) -> Result<(), DbError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = crate::group_commit::BlobCommit {
            repo,
            digest: digest.to_string(),
            size,
            upload: upload.map(|(id, offset)| (id.to_string(), offset)),
            reply,
        };
        let Some(commits) = &self.commits else {
            let mut tx = self.write.begin().await?;
            crate::group_commit::apply(&mut tx, &job).await?;
            tx.commit().await?;
            return Ok(());
        };
        crate::group_commit::submit(commits, crate::group_commit::Job::Blob(job), answer).await
    }

    /// Links a blob that `from` holds into `repo` (cross-repository mount). Returns the size,
    /// or `None` when `from` does not hold the blob.
    pub async fn mount_blob(
        &self,
        repo: RepoId,
        from: RepoId,
        digest: &Digest,
    ) -> Result<Option<u64>, DbError> {
        let d = digest.to_string();
        let mut tx = self.write.begin().await?;
        let row = sqlx::query(
            "SELECT b.size FROM repo_blobs rb JOIN blobs b ON b.digest = rb.digest \
             WHERE rb.repo_id = $1 AND rb.digest = $2",
        )
        .bind(from.0)
        .bind(&d)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        sqlx::query("INSERT INTO repo_blobs (repo_id, digest, linked_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(repo.0)
            .bind(&d)
            .bind(now())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(row.get::<i64, _>(0) as u64))
    }

    /// Unlinks a blob from a repository. Returns whether it was linked.
    pub async fn unlink_blob(&self, repo: RepoId, digest: &Digest) -> Result<bool, DbError> {
        let r = sqlx::query("DELETE FROM repo_blobs WHERE repo_id = $1 AND digest = $2")
            .bind(repo.0)
            .bind(digest.to_string())
            .execute(&self.write)
            .await?;
        Ok(r.rows_affected() > 0)
    }
}
