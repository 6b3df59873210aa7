//! Pull analytics: batches of raw pull events, the actions classified from them, and the
//! aggregates the reports are made of. Addresses are stored only as keyed hashes (`ip_week`, `ip_month`).

use sqlx::Row as _;

use crate::{Backend, Db, DbError};

/// Actions per INSERT statement (16 parameters each; SQLite allows 32,766).
const EVENT_BATCH: usize = 500;

/// One classified action: a version check, a pull by tag or a pull by digest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PullActionRow {
    pub at_ms: i64,
    pub namespace: String,
    pub repo: String,
    /// The tag the action started with; empty when by digest.
    pub tag: String,
    pub digest: String,
    /// `version_check`, `pull_by_tag` or `pull_by_digest`.
    pub action: String,
    /// The first request's method.
    pub method: String,
    pub user_name: String,
    pub ip_week: Vec<u8>,
    pub ip_month: Vec<u8>,
    pub tool: String,
    pub tool_version: String,
    pub country: String,
    pub cloud: String,
    pub ip_type: String,
    pub domain: String,
}

/// Counts of one group of actions in a period.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ActionTally {
    /// The group's key columns, in the order asked for.
    pub key: Vec<String>,
    pub pulls_by_tag: u64,
    pub pulls_by_digest: u64,
    pub version_checks: u64,
    pub unique_ips: u64,
    pub unique_users: u64,
    /// Unique addresses of anonymous actions.
    pub unique_anonymous_ips: u64,
}

/// What the report aggregates group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TallyBy {
    Repository,
    Tag,
    Digest,
    /// Repository and reference (the tag when pulled by tag, else the digest).
    Reference,
    /// Repository, country, cloud, tool, tag: the Trends report's rows.
    Trends,
}

impl TallyBy {
    fn columns(self) -> &'static [&'static str] {
        match self {
            Self::Repository => &["repo"],
            Self::Tag => &["repo", "tag"],
            Self::Digest => &["repo", "digest"],
            Self::Reference => &["repo", "CASE WHEN tag <> '' THEN tag ELSE digest END"],
            Self::Trends => &["repo", "country", "cloud", "tool", "tag"],
        }
    }
}

const WATERMARK: &str = "classified_until_ms";

impl Db {
    /// Stores one batch of events (`data`, encoded by the caller) that happened between
    /// `first_ms` and `last_ms`. Not acknowledged to anyone, so written without waiting for
    /// a disk flush (a power cut can lose the last batches; a process crash cannot).
    pub async fn insert_event_batch(
        &self,
        first_ms: i64,
        last_ms: i64,
        events: i64,
        data: &[u8],
    ) -> Result<(), DbError> {
        self.execute_relaxed(
            sqlx::query(
                "INSERT INTO pull_event_batches (first_ms, last_ms, events, data) VALUES ($1, $2, $3, $4)",
            )
            .bind(first_ms)
            .bind(last_ms)
            .bind(events)
            .bind(data),
        )
        .await?;
        Ok(())
    }

    /// The batches that may hold events in `[from_ms, to_ms)`.
    pub async fn event_batches(&self, from_ms: i64, to_ms: i64) -> Result<Vec<Vec<u8>>, DbError> {
        Ok(sqlx::query_scalar(
            "SELECT data FROM pull_event_batches WHERE last_ms >= $1 AND first_ms < $2 ORDER BY id",
        )
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.read)
        .await?)
    }

    /// When the oldest stored event happened.
    pub async fn oldest_pull_event(&self) -> Result<Option<i64>, DbError> {
        Ok(
            sqlx::query_scalar("SELECT MIN(first_ms) FROM pull_event_batches")
                .fetch_one(&self.read)
                .await?,
        )
    }

    /// How far events have been classified (milliseconds since the epoch); None before the
    /// first run.
    pub async fn classified_until(&self) -> Result<Option<i64>, DbError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM analytics_state WHERE name = $1")
                .bind(WATERMARK)
                .fetch_optional(&self.read)
                .await?,
        )
    }

    /// Stores the actions of one classifier run and moves the watermark from `from` to
    /// `to`, in one transaction. False (and nothing stored) when another node moved the
    /// watermark first.
    pub async fn commit_actions(
        &self,
        from: Option<i64>,
        to: i64,
        actions: &[PullActionRow],
    ) -> Result<bool, DbError> {
        let mut tx = self.write.begin().await?;
        let moved = match from {
            None => sqlx::query(
                "INSERT INTO analytics_state (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            )
            .bind(WATERMARK)
            .bind(to)
            .execute(&mut *tx)
            .await?
            .rows_affected(),
            Some(from) => sqlx::query(
                "UPDATE analytics_state SET value = $1 WHERE name = $2 AND value = $3",
            )
            .bind(to)
            .bind(WATERMARK)
            .bind(from)
            .execute(&mut *tx)
            .await?
            .rows_affected(),
        };
        if moved != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        for chunk in actions.chunks(EVENT_BATCH) {
            let sql = values_sql(
                self.backend,
                "INSERT INTO pull_actions (at_ms, namespace, repo, tag, digest, action, method, user_name, \
                 ip_week, ip_month, tool, tool_version, country, cloud, ip_type, domain) VALUES ",
                16,
                chunk.len(),
            );
            let mut q = sqlx::query(&sql);
            for a in chunk {
                q = q
                    .bind(a.at_ms)
                    .bind(a.namespace.as_str())
                    .bind(a.repo.as_str())
                    .bind(a.tag.as_str())
                    .bind(a.digest.as_str())
                    .bind(a.action.as_str())
                    .bind(a.method.as_str())
                    .bind(a.user_name.as_str())
                    .bind(a.ip_week.as_slice())
                    .bind(a.ip_month.as_slice())
                    .bind(a.tool.as_str())
                    .bind(a.tool_version.as_str())
                    .bind(a.country.as_str())
                    .bind(a.cloud.as_str())
                    .bind(a.ip_type.as_str())
                    .bind(a.domain.as_str());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes batches of raw events older than `before_ms` (the classified actions stay).
    pub async fn prune_pull_events(&self, before_ms: i64) -> Result<u64, DbError> {
        Ok(
            sqlx::query("DELETE FROM pull_event_batches WHERE last_ms < $1")
                .bind(before_ms)
                .execute(&self.write)
                .await?
                .rows_affected(),
        )
    }

    /// Counts a namespace's actions in `[from_ms, to_ms)`, grouped as asked. Unique
    /// addresses use the weekly or the monthly hash (`monthly`), as the period is.
    pub async fn tally_actions(
        &self,
        namespace: &str,
        from_ms: i64,
        to_ms: i64,
        by: TallyBy,
        monthly: bool,
    ) -> Result<Vec<ActionTally>, DbError> {
        let cols = by.columns().join(", ");
        let ip = if monthly { "ip_month" } else { "ip_week" };
        let sql = format!(
            "SELECT {cols}, \
             CAST(SUM(CASE WHEN action = 'pull_by_tag' THEN 1 ELSE 0 END) AS BIGINT), \
             CAST(SUM(CASE WHEN action = 'pull_by_digest' THEN 1 ELSE 0 END) AS BIGINT), \
             CAST(SUM(CASE WHEN action = 'version_check' THEN 1 ELSE 0 END) AS BIGINT), \
             CAST(COUNT(DISTINCT {ip}) AS BIGINT), \
             CAST(COUNT(DISTINCT CASE WHEN user_name <> '' THEN user_name END) AS BIGINT), \
             CAST(COUNT(DISTINCT CASE WHEN user_name = '' THEN {ip} END) AS BIGINT) \
             FROM pull_actions WHERE namespace = $1 AND at_ms >= $2 AND at_ms < $3 \
             GROUP BY {cols} ORDER BY {cols}"
        );
        let rows = sqlx::query(&sql)
            .bind(namespace)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(&self.read)
            .await?;
        let n = by.columns().len();
        rows.iter()
            .map(|r| {
                let mut key = Vec::with_capacity(n);
                for i in 0..n {
                    key.push(r.try_get::<String, _>(i)?);
                }
                let count = |i: usize| r.try_get::<i64, _>(n + i).map(|v| v.max(0) as u64);
                Ok(ActionTally {
                    key,
                    pulls_by_tag: count(0)?,
                    pulls_by_digest: count(1)?,
                    version_checks: count(2)?,
                    unique_ips: count(3)?,
                    unique_users: count(4)?,
                    unique_anonymous_ips: count(5)?,
                })
            })
            .collect()
    }

    /// One page of a namespace's actions in `[from_ms, to_ms)`, oldest first, after the
    /// action with id `after_id` (0 for the first page): the raw data export.
    pub async fn actions_page(
        &self,
        namespace: &str,
        from_ms: i64,
        to_ms: i64,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<(i64, PullActionRow)>, DbError> {
        let rows = sqlx::query(
            "SELECT id, at_ms, namespace, repo, tag, digest, action, method, user_name, ip_week, ip_month, \
             tool, tool_version, country, cloud, ip_type, domain FROM pull_actions \
             WHERE namespace = $1 AND at_ms >= $2 AND at_ms < $3 AND id > $4 ORDER BY id LIMIT $5",
        )
        .bind(namespace)
        .bind(from_ms)
        .bind(to_ms)
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0)?,
                    PullActionRow {
                        at_ms: r.try_get(1)?,
                        namespace: r.try_get(2)?,
                        repo: r.try_get(3)?,
                        tag: r.try_get(4)?,
                        digest: r.try_get(5)?,
                        action: r.try_get(6)?,
                        method: r.try_get(7)?,
                        user_name: r.try_get(8)?,
                        ip_week: r.try_get(9)?,
                        ip_month: r.try_get(10)?,
                        tool: r.try_get(11)?,
                        tool_version: r.try_get(12)?,
                        country: r.try_get(13)?,
                        cloud: r.try_get(14)?,
                        ip_type: r.try_get(15)?,
                        domain: r.try_get(16)?,
                    },
                ))
            })
            .collect()
    }

    /// How many actions a namespace has in `[from_ms, to_ms)` (for progress bars).
    pub async fn count_actions(
        &self,
        namespace: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<u64, DbError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pull_actions WHERE namespace = $1 AND at_ms >= $2 AND at_ms < $3",
        )
        .bind(namespace)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_one(&self.read)
        .await?;
        Ok(n.max(0) as u64)
    }

    /// A secret created on first use and shared by every node (the first insert wins).
    pub async fn named_secret(&self, id: &str, fresh: &[u8]) -> Result<Vec<u8>, DbError> {
        sqlx::query("INSERT INTO signing_keys (id, secret, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING")
            .bind(id)
            .bind(fresh)
            .bind(crate::now())
            .execute(&self.write)
            .await?;
        Ok(
            sqlx::query_scalar("SELECT secret FROM signing_keys WHERE id = $1")
                .bind(id)
                .fetch_one(&self.write)
                .await?,
        )
    }
}

/// `PREFIX ($1, …, $cols), (…), …` for `rows` rows. SQLite gets anonymous `?` instead:
/// it looks each `$N` up by name, which makes binding thousands of them quadratic.
fn values_sql(backend: Backend, prefix: &str, cols: usize, rows: usize) -> String {
    let mut sql = String::with_capacity(prefix.len() + rows * cols * 6);
    sql.push_str(prefix);
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..cols {
            if c > 0 {
                sql.push_str(", ");
            }
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => {
                    sql.push('$');
                    sql.push_str(&(r * cols + c + 1).to_string());
                }
            }
        }
        sql.push(')');
    }
    sql
}
