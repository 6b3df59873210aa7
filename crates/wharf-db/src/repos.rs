//! Repositories: created on first use, listed for the catalog.

use sqlx::Row;
use wharf_oci::RepoName;

use crate::{Db, DbError, RepoId, now};

impl Db {
    /// The repository's id, creating the repository if it does not exist yet.
    pub async fn ensure_repo(&self, name: &RepoName) -> Result<RepoId, DbError> {
        if let Some(id) = self.repo_id(name).await? {
            return Ok(id);
        }
        self.execute_relaxed(
            sqlx::query("INSERT INTO repositories (name, namespace, created_at, updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING")
                .bind(name.as_str())
                .bind(name.namespace())
                .bind(now())
                .bind(now()),
        )
        .await?;
        let row = sqlx::query("SELECT id FROM repositories WHERE name = $1")
            .bind(name.as_str())
            .fetch_one(&self.write)
            .await?;
        Ok(RepoId(row.get(0)))
    }

    pub async fn repo_id(&self, name: &RepoName) -> Result<Option<RepoId>, DbError> {
        let row = sqlx::query("SELECT id FROM repositories WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| RepoId(r.get(0))))
    }

    /// Repository names in lexical order after `last`, at most `limit`.
    pub async fn catalog(&self, last: Option<&str>, limit: u32) -> Result<Vec<String>, DbError> {
        let rows =
            sqlx::query("SELECT name FROM repositories WHERE name > $1 ORDER BY name LIMIT $2")
                .bind(last.unwrap_or(""))
                .bind(limit as i64)
                .fetch_all(&self.read)
                .await?;
        Ok(rows.into_iter().map(|r| r.get(0)).collect())
    }
}
