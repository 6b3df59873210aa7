//! Manifests, the blobs and child manifests they reference, tags, and referrers.

use std::collections::BTreeSet;

use sqlx::Row;
use wharf_oci::Digest;

use crate::{Db, DbError, RepoId, now};

/// A manifest to record, already parsed and validated.
#[derive(Debug)]
pub struct NewManifest<'a> {
    pub digest: &'a Digest,
    pub media_type: &'a str,
    pub artifact_type: Option<&'a str>,
    pub subject: Option<&'a Digest>,
    pub annotations: Option<String>,
    pub payload: &'a [u8],
    /// Config and layers that must be linked in the repository.
    pub blobs: Vec<String>,
    /// Child manifests that must be in the repository.
    pub children: Vec<String>,
    pub tag: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutOutcome {
    /// False when the same manifest was already in the repository.
    pub created: bool,
}

/// A stored manifest, as served.
#[derive(Debug, Clone)]
pub struct ManifestRecord {
    pub digest: String,
    pub media_type: String,
    pub payload: Vec<u8>,
}

/// A manifest whose `subject` is the asked-for digest.
#[derive(Debug, Clone)]
pub struct Referrer {
    pub digest: String,
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub size: i64,
    pub annotations: Option<String>,
}

/// `$first, $first+1, …` for `n` bound values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Db {
    /// Records a manifest, its references and its tag in one transaction, after checking inside
    /// that transaction that every referenced blob and child manifest is in the repository.
    pub async fn put_manifest(
        &self,
        repo: RepoId,
        m: NewManifest<'_>,
    ) -> Result<PutOutcome, DbError> {
        let now = now();
        let digest = m.digest.to_string();
        let mut tx = self.write.begin().await?;

        let mut missing = Vec::new();
        for (table, column, wanted) in [
            ("repo_blobs", "digest", &m.blobs),
            ("manifests", "digest", &m.children),
        ] {
            let wanted: BTreeSet<&String> = wanted.iter().collect();
            for chunk in wanted.iter().copied().collect::<Vec<_>>().chunks(500) {
                let sql = format!(
                    "SELECT {column} FROM {table} WHERE repo_id = $1 AND {column} IN ({})",
                    placeholders(2, chunk.len())
                );
                let mut q = sqlx::query(&sql).bind(repo.0);
                for d in chunk {
                    q = q.bind(d.as_str());
                }
                let found: BTreeSet<String> = q
                    .fetch_all(&mut *tx)
                    .await?
                    .into_iter()
                    .map(|r| r.get(0))
                    .collect();
                missing.extend(
                    chunk
                        .iter()
                        .filter(|d| !found.contains(d.as_str()))
                        .map(|d| d.to_string()),
                );
            }
        }
        if !missing.is_empty() {
            return Err(DbError::MissingReferences(missing));
        }

        // RETURNING gives the id in the same round trip when the manifest is new.
        let new_id: Option<i64> = sqlx::query(
            "INSERT INTO manifests (repo_id, digest, media_type, artifact_type, subject, annotations, size, payload, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (repo_id, digest) DO NOTHING RETURNING id",
        )
        .bind(repo.0)
        .bind(&digest)
        .bind(m.media_type)
        .bind(m.artifact_type)
        .bind(m.subject.map(|s| s.to_string()))
        .bind(m.annotations.as_deref())
        .bind(m.payload.len() as i64)
        .bind(m.payload)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.get(0));
        let inserted = new_id.is_some();
        let id: i64 = match new_id {
            Some(id) => id,
            None => sqlx::query("SELECT id FROM manifests WHERE repo_id = $1 AND digest = $2")
                .bind(repo.0)
                .bind(&digest)
                .fetch_one(&mut *tx)
                .await?
                .get(0),
        };
        if inserted {
            // One multi-row insert per table (500 rows per statement at most, well under
            // either database's limit on bound parameters).
            for (table, column, refs) in [
                ("manifest_blobs", "(manifest_id, digest)", &m.blobs),
                ("manifest_refs", "(parent_id, child_digest)", &m.children),
            ] {
                let refs: Vec<&String> = refs.iter().collect::<BTreeSet<_>>().into_iter().collect();
                for chunk in refs.chunks(500) {
                    let rows = (0..chunk.len())
                        .map(|i| format!("($1, ${})", i + 2))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let sql = format!(
                        "INSERT INTO {table} {column} VALUES {rows} ON CONFLICT DO NOTHING"
                    );
                    let mut q = sqlx::query(&sql).bind(id);
                    for r in chunk {
                        q = q.bind(r.as_str());
                    }
                    q.execute(&mut *tx).await?;
                }
            }
        }
        if let Some(tag) = m.tag {
            sqlx::query(
                "INSERT INTO tags (repo_id, name, manifest_id, pushed_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (repo_id, name) DO UPDATE SET manifest_id = excluded.manifest_id, pushed_at = excluded.pushed_at",
            )
            .bind(repo.0)
            .bind(tag)
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        if inserted || m.tag.is_some() {
            sqlx::query("UPDATE repositories SET updated_at = $1 WHERE id = $2")
                .bind(now)
                .bind(repo.0)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(PutOutcome { created: inserted })
    }

    pub async fn manifest_by_digest(
        &self,
        repo: RepoId,
        digest: &Digest,
    ) -> Result<Option<ManifestRecord>, DbError> {
        let row = sqlx::query(
            "SELECT digest, media_type, payload FROM manifests WHERE repo_id = $1 AND digest = $2",
        )
        .bind(repo.0)
        .bind(digest.to_string())
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|r| ManifestRecord {
            digest: r.get(0),
            media_type: r.get(1),
            payload: r.get(2),
        }))
    }

    pub async fn manifest_by_tag(
        &self,
        repo: RepoId,
        tag: &str,
    ) -> Result<Option<ManifestRecord>, DbError> {
        let row = sqlx::query(
            "SELECT m.digest, m.media_type, m.payload FROM tags t JOIN manifests m ON m.id = t.manifest_id \
             WHERE t.repo_id = $1 AND t.name = $2",
        )
        .bind(repo.0)
        .bind(tag)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|r| ManifestRecord {
            digest: r.get(0),
            media_type: r.get(1),
            payload: r.get(2),
        }))
    }

    /// Deletes a manifest (and so every tag pointing at it). Returns whether it existed.
    pub async fn delete_manifest(&self, repo: RepoId, digest: &Digest) -> Result<bool, DbError> {
        let r = sqlx::query("DELETE FROM manifests WHERE repo_id = $1 AND digest = $2")
            .bind(repo.0)
            .bind(digest.to_string())
            .execute(&self.write)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Deletes a tag, leaving its manifest. Returns whether it existed.
    pub async fn delete_tag(&self, repo: RepoId, tag: &str) -> Result<bool, DbError> {
        let r = sqlx::query("DELETE FROM tags WHERE repo_id = $1 AND name = $2")
            .bind(repo.0)
            .bind(tag)
            .execute(&self.write)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Tag names in lexical order after `last`, at most `limit`.
    pub async fn tags(
        &self,
        repo: RepoId,
        last: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, DbError> {
        let rows = sqlx::query(
            "SELECT name FROM tags WHERE repo_id = $1 AND name > $2 ORDER BY name LIMIT $3",
        )
        .bind(repo.0)
        .bind(last.unwrap_or(""))
        .bind(limit as i64)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|r| r.get(0)).collect())
    }

    /// Manifests in the repository whose subject is `subject`, optionally of one artifact type.
    pub async fn referrers(
        &self,
        repo: RepoId,
        subject: &Digest,
        artifact_type: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Referrer>, DbError> {
        let rows = sqlx::query(
            "SELECT digest, media_type, artifact_type, size, annotations FROM manifests \
             WHERE repo_id = $1 AND subject = $2 AND ($3 IS NULL OR artifact_type = $4) AND digest > $5 \
             ORDER BY digest LIMIT $6",
        )
        .bind(repo.0)
        .bind(subject.to_string())
        .bind(artifact_type)
        .bind(artifact_type)
        .bind(after.unwrap_or(""))
        .bind(limit as i64)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Referrer {
                digest: r.get(0),
                media_type: r.get(1),
                artifact_type: r.get(2),
                size: r.get(3),
                annotations: r.get(4),
            })
            .collect())
    }
}
