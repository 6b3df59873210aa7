//! Rate limits: the counters every node adds its local counts to, and the administrator's
//! rules (own limits and exemptions).

use sqlx::Row as _;

use crate::{Db, DbError, now};

/// Rows per statement when many counters are added or read at once.
const BATCH: usize = 200;

/// An administrator's rule: a limit of its own or (with `pulls: None`) an exemption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateRuleRow {
    /// `user`, `org` or `range`.
    pub kind: String,
    /// A user or organization name, or an address range in CIDR notation.
    pub subject: String,
    /// Pulls per window; `None` exempts the subject from limits.
    pub pulls: Option<i64>,
    pub note: String,
    pub created_at: i64,
}

impl Db {
    /// Adds counts made on one node to the shared counters of a window and returns the new
    /// totals (every node's pulls included).
    pub async fn add_rate_hits(
        &self,
        window_start: i64,
        hits: &[(String, i64)],
    ) -> Result<Vec<(String, i64)>, DbError> {
        let mut totals = Vec::with_capacity(hits.len());
        let mut tx = self.write.begin().await?;
        for chunk in hits.chunks(BATCH) {
            let mut sql =
                String::from("INSERT INTO rate_counters (key, window_start, hits) VALUES ");
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push_str(", ");
                }
                let n = i * 3;
                sql.push_str(&format!("(${}, ${}, ${})", n + 1, n + 2, n + 3));
            }
            sql.push_str(
                " ON CONFLICT (key, window_start) DO UPDATE SET hits = rate_counters.hits + excluded.hits \
                 RETURNING key, hits",
            );
            let mut q = sqlx::query(&sql);
            for (key, n) in chunk {
                q = q.bind(key.as_str()).bind(window_start).bind(*n);
            }
            for row in q.fetch_all(&mut *tx).await? {
                totals.push((row.try_get(0)?, row.try_get(1)?));
            }
        }
        tx.commit().await?;
        Ok(totals)
    }

    /// The shared counts of these keys in a window (keys never counted are left out).
    pub async fn rate_hits(
        &self,
        window_start: i64,
        keys: &[String],
    ) -> Result<Vec<(String, i64)>, DbError> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH) {
            let mut sql = String::from(
                "SELECT key, hits FROM rate_counters WHERE window_start = $1 AND key IN (",
            );
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("${}", i + 2));
            }
            sql.push(')');
            let mut q = sqlx::query(&sql).bind(window_start);
            for key in chunk {
                q = q.bind(key.as_str());
            }
            for row in q.fetch_all(&self.read).await? {
                out.push((row.try_get(0)?, row.try_get(1)?));
            }
        }
        Ok(out)
    }

    /// Forgets pull counters of windows that started before `pulls_before` and JSON API
    /// counters (keys starting `api:`) of windows that started before `api_before`.
    pub async fn prune_rate_counters(
        &self,
        pulls_before: i64,
        api_before: i64,
    ) -> Result<u64, DbError> {
        let pulls = sqlx::query(
            "DELETE FROM rate_counters WHERE window_start < $1 AND key NOT LIKE 'api:%'",
        )
        .bind(pulls_before)
        .execute(&self.write)
        .await?;
        let api =
            sqlx::query("DELETE FROM rate_counters WHERE window_start < $1 AND key LIKE 'api:%'")
                .bind(api_before)
                .execute(&self.write)
                .await?;
        Ok(pulls.rows_affected() + api.rows_affected())
    }

    /// Every rule, by kind then subject (each node keeps them in memory).
    pub async fn rate_rules(&self) -> Result<Vec<RateRuleRow>, DbError> {
        self.rate_rule_page(0, i64::MAX).await.map(|(_, rows)| rows)
    }

    /// One page of the rules, by kind then subject, and how many there are.
    pub async fn rate_rule_page(
        &self,
        offset: i64,
        limit: i64,
    ) -> Result<(u64, Vec<RateRuleRow>), DbError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rate_limit_rules")
            .fetch_one(&self.read)
            .await?;
        let rows = sqlx::query(
            "SELECT kind, subject, pulls, note, created_at FROM rate_limit_rules ORDER BY kind, subject \
             LIMIT $1 OFFSET $2",
        )
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.read)
        .await?;
        let rows = rows
            .iter()
            .map(|r| {
                Ok(RateRuleRow {
                    kind: r.try_get(0)?,
                    subject: r.try_get(1)?,
                    pulls: r.try_get(2)?,
                    note: r.try_get(3)?,
                    created_at: r.try_get(4)?,
                })
            })
            .collect::<Result<Vec<_>, DbError>>()?;
        Ok((count.max(0) as u64, rows))
    }

    /// Sets (or replaces) the rule for a subject.
    pub async fn set_rate_rule(
        &self,
        kind: &str,
        subject: &str,
        pulls: Option<i64>,
        note: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO rate_limit_rules (kind, subject, pulls, note, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (kind, subject) DO UPDATE SET pulls = excluded.pulls, note = excluded.note",
        )
        .bind(kind)
        .bind(subject)
        .bind(pulls)
        .bind(note)
        .bind(now())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Removes a subject's rule; false when it had none.
    pub async fn delete_rate_rule(&self, kind: &str, subject: &str) -> Result<bool, DbError> {
        let done = sqlx::query("DELETE FROM rate_limit_rules WHERE kind = $1 AND subject = $2")
            .bind(kind)
            .bind(subject)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
