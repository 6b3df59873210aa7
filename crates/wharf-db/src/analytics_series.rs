//! The analytics dashboard's data: a namespace's actions counted per period and repository
//! in one grouped query, and the namespaces an administrator gave analytics to.

use sqlx::Row as _;

use crate::{Db, DbError};

/// Counts of one repository's actions in one period of a series.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeriesTally {
    /// Which period: the index of the first boundary the action came before.
    pub period: usize,
    pub repo: String,
    pub pulls_by_tag: u64,
    pub pulls_by_digest: u64,
    pub version_checks: u64,
    pub unique_ips: u64,
}

/// A namespace with analytics: given by an administrator, or by its program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyticsNamespaceRow {
    pub namespace: String,
    /// Who enabled it and when (seconds); None when only its program gives it analytics.
    pub enabled_by: Option<String>,
    pub enabled_at: Option<i64>,
    /// The namespace's approved program, if any.
    pub program: Option<String>,
}

impl Db {
    /// A namespace's actions in `[bounds[0], bounds[last])` counted per period (between
    /// consecutive `bounds`, in milliseconds at midnight UTC) and repository; only `repos`
    /// (full names) when not empty. One query on the daily rollup, bucketed by period;
    /// `unique_ips` is left at 0 for the caller to fill from the puller sets.
    pub async fn action_series(
        &self,
        namespace: &str,
        bounds: &[i64],
        repos: &[String],
    ) -> Result<Vec<SeriesTally>, DbError> {
        const DAY_MS: i64 = 86_400_000;
        if bounds.len() < 2 {
            return Ok(Vec::new());
        }
        let days: Vec<i64> = bounds.iter().map(|b| b.div_euclid(DAY_MS)).collect();
        // $1 namespace, $2 from, $3 to, then the inner boundaries, then the repositories.
        let mut param = 3;
        let mut next = || {
            param += 1;
            format!("${param}")
        };
        let mut bucket = String::from("CASE");
        let inner = &days[1..days.len() - 1];
        for (i, _) in inner.iter().enumerate() {
            bucket.push_str(&format!(" WHEN day < {} THEN {i}", next()));
        }
        bucket.push_str(&format!(" ELSE {} END", inner.len()));
        let repo_filter = if repos.is_empty() {
            String::new()
        } else {
            let list = repos.iter().map(|_| next()).collect::<Vec<_>>().join(", ");
            format!(" AND repo IN ({list})")
        };
        let sql = format!(
            "SELECT CAST(bucket AS BIGINT), repo, CAST(SUM(pulls_by_tag) AS BIGINT), \
             CAST(SUM(pulls_by_digest) AS BIGINT), CAST(SUM(version_checks) AS BIGINT) \
             FROM (SELECT {bucket} AS bucket, repo, pulls_by_tag, pulls_by_digest, version_checks \
             FROM pull_daily WHERE namespace = $1 AND day >= $2 AND day < $3{repo_filter}) t \
             GROUP BY bucket, repo ORDER BY bucket, repo"
        );
        let mut q = sqlx::query(&sql)
            .bind(namespace)
            .bind(days[0])
            .bind(days[days.len() - 1]);
        for b in inner {
            q = q.bind(*b);
        }
        for r in repos {
            q = q.bind(r.as_str());
        }
        let rows = q.fetch_all(&self.read).await?;
        rows.iter()
            .map(|r| {
                let count = |i: usize| r.try_get::<i64, _>(i).map(|v| v.max(0) as u64);
                Ok(SeriesTally {
                    period: usize::try_from(r.try_get::<i64, _>(0)?).unwrap_or(0),
                    repo: r.try_get(1)?,
                    pulls_by_tag: count(2)?,
                    pulls_by_digest: count(3)?,
                    version_checks: count(4)?,
                    unique_ips: 0,
                })
            })
            .collect()
    }

    /// Whether an administrator gave the namespace analytics.
    pub async fn analytics_enabled(&self, namespace: &str) -> Result<bool, DbError> {
        let row: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(1 AS BIGINT) FROM namespace_analytics WHERE namespace = $1",
        )
        .bind(namespace)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.is_some())
    }

    /// Gives the namespace analytics (again: the first administrator and time stay).
    pub async fn enable_analytics(&self, namespace: &str, by: &str) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO namespace_analytics (namespace, enabled_by, enabled_at) VALUES ($1, $2, $3) \
             ON CONFLICT (namespace) DO NOTHING",
        )
        .bind(namespace)
        .bind(by)
        .bind(crate::now())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Takes the administrator's analytics away; false when it was not enabled.
    pub async fn disable_analytics(&self, namespace: &str) -> Result<bool, DbError> {
        Ok(
            sqlx::query("DELETE FROM namespace_analytics WHERE namespace = $1")
                .bind(namespace)
                .execute(&self.write)
                .await?
                .rows_affected()
                > 0,
        )
    }

    /// One page of the namespaces with analytics (enabled by an administrator or in a
    /// program), by name, and how many there are.
    pub async fn analytics_namespace_page(
        &self,
        offset: i64,
        limit: i64,
    ) -> Result<(u64, Vec<AnalyticsNamespaceRow>), DbError> {
        const FROM: &str = "FROM namespaces n LEFT JOIN namespace_analytics a ON a.namespace = n.name \
             WHERE a.namespace IS NOT NULL OR n.program IS NOT NULL";
        let count: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) {FROM}"))
            .fetch_one(&self.read)
            .await?;
        let rows = sqlx::query(&format!(
            "SELECT n.name, a.enabled_by, a.enabled_at, n.program {FROM} ORDER BY n.name LIMIT $1 OFFSET $2"
        ))
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.read)
        .await?;
        let rows = rows
            .iter()
            .map(|r| {
                Ok(AnalyticsNamespaceRow {
                    namespace: r.try_get(0)?,
                    enabled_by: r.try_get(1)?,
                    enabled_at: r.try_get(2)?,
                    program: r.try_get(3)?,
                })
            })
            .collect::<Result<Vec<_>, DbError>>()?;
        Ok((count.max(0) as u64, rows))
    }
}
