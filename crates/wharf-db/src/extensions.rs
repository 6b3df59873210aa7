//! Extension analytics: the install, uninstall, update and open events of Docker Extensions,
//! and the per-extension counts the summaries are made of. Users are stored only as keyed
//! hashes (`user_week`, `user_month`).

use sqlx::Row as _;

use crate::{Backend, Db, DbError};

/// Events per INSERT statement (7 parameters each).
const INSERT_BATCH: usize = 500;

/// One event as stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtensionEventRow {
    pub at_ms: i64,
    pub namespace: String,
    /// The full repository name (`namespace/name`).
    pub repo: String,
    /// `install`, `uninstall`, `update` or `open`.
    pub kind: String,
    /// Empty when not reported.
    pub version: String,
    pub user_week: Vec<u8>,
    pub user_month: Vec<u8>,
}

/// One extension's counts for a period (`total_*`: everything before the period's end).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtensionTally {
    pub repo: String,
    pub installs: u64,
    pub total_installs: u64,
    pub uninstalls: u64,
    pub total_uninstalls: u64,
    pub updates: u64,
    pub opens: u64,
    pub unique_installs: u64,
    pub unique_uninstalls: u64,
    pub unique_openers: u64,
}

impl Db {
    /// Stores events, all or none (one transaction).
    pub async fn insert_extension_events(
        &self,
        events: &[ExtensionEventRow],
    ) -> Result<(), DbError> {
        let mut tx = self.write.begin().await?;
        for chunk in events.chunks(INSERT_BATCH) {
            let sql = insert_sql(self.backend, chunk.len());
            let mut q = sqlx::query(&sql);
            for e in chunk {
                q = q
                    .bind(e.at_ms)
                    .bind(e.namespace.as_str())
                    .bind(e.repo.as_str())
                    .bind(e.kind.as_str())
                    .bind(e.version.as_str())
                    .bind(e.user_week.as_slice())
                    .bind(e.user_month.as_slice());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Per extension of `namespace` with any event before `to_ms`: the counts of
    /// `[from_ms, to_ms)` and the totals up to `to_ms`. Unique users use the weekly or the
    /// monthly hash (`monthly`), as the period is.
    pub async fn tally_extension_events(
        &self,
        namespace: &str,
        from_ms: i64,
        to_ms: i64,
        monthly: bool,
    ) -> Result<Vec<ExtensionTally>, DbError> {
        let user = if monthly { "user_month" } else { "user_week" };
        let count = |kind: &str, all_time: bool| {
            let when = if all_time { "" } else { " AND at_ms >= $2" };
            format!("CAST(SUM(CASE WHEN kind = '{kind}'{when} THEN 1 ELSE 0 END) AS BIGINT)")
        };
        let unique = |kind: &str| {
            format!(
                "CAST(COUNT(DISTINCT CASE WHEN kind = '{kind}' AND at_ms >= $2 THEN {user} END) AS BIGINT)"
            )
        };
        let sql = format!(
            "SELECT repo, {}, {}, {}, {}, {}, {}, {}, {}, {} FROM extension_events \
             WHERE namespace = $1 AND at_ms < $3 GROUP BY repo ORDER BY repo",
            count("install", false),
            count("install", true),
            count("uninstall", false),
            count("uninstall", true),
            count("update", false),
            count("open", false),
            unique("install"),
            unique("uninstall"),
            unique("open"),
        );
        let rows = sqlx::query(&sql)
            .bind(namespace)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| {
                let n = |i: usize| r.try_get::<i64, _>(i).map(|v| v.max(0) as u64);
                Ok(ExtensionTally {
                    repo: r.try_get(0)?,
                    installs: n(1)?,
                    total_installs: n(2)?,
                    uninstalls: n(3)?,
                    total_uninstalls: n(4)?,
                    updates: n(5)?,
                    opens: n(6)?,
                    unique_installs: n(7)?,
                    unique_uninstalls: n(8)?,
                    unique_openers: n(9)?,
                })
            })
            .collect()
    }

    /// How many events are stored for a repository (all time).
    pub async fn count_extension_events(&self, repo: &str) -> Result<u64, DbError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM extension_events WHERE repo = $1")
            .bind(repo)
            .fetch_one(&self.read)
            .await?;
        Ok(n.max(0) as u64)
    }
}

/// The INSERT of `rows` events. SQLite gets anonymous `?`, PostgreSQL numbered `$N`.
fn insert_sql(backend: Backend, rows: usize) -> String {
    const COLS: usize = 7;
    let mut sql = String::from(
        "INSERT INTO extension_events (at_ms, namespace, repo, kind, version, user_week, user_month) VALUES ",
    );
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..COLS {
            if c > 0 {
                sql.push_str(", ");
            }
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => sql.push_str(&format!("${}", r * COLS + c + 1)),
            }
        }
        sql.push(')');
    }
    sql
}
