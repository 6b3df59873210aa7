//! Pull analytics: batches of raw pull events, the actions classified from them, and the
//! aggregates the reports are made of. Addresses are stored only as keyed hashes (`ip_week`, `ip_month`).

use sqlx::{Executor as _, Row as _};

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

/// A batch of one classifier run's actions of one namespace and one UTC day, encoded by the
/// caller (`data`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ActionBatch {
    pub namespace: String,
    /// Days since 1970-01-01.
    pub day: i64,
    pub actions: i64,
    pub data: Vec<u8>,
}

/// Where classification stands: the watermark, and what the last run carried over it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClassifierState {
    /// Events before this time (milliseconds since the epoch) are classified; None before
    /// the first run.
    pub until_ms: Option<i64>,
    /// The actions still open at the watermark, encoded by the classifier; None when the run
    /// that moved the watermark left none (or predates carrying them).
    pub carry: Option<Vec<u8>>,
}

/// One day's counts of one group of actions, as the `pull_daily` rollup keeps them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct DailyKey {
    pub namespace: String,
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    pub repo: String,
    pub tag: String,
    pub digest: String,
    pub country: String,
    pub cloud: String,
    pub tool: String,
    pub use_case: String,
    pub domain: String,
}

/// Action counts of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ActionCounts {
    pub pulls_by_tag: u64,
    pub pulls_by_digest: u64,
    pub version_checks: u64,
}

impl ActionCounts {
    /// Counts one action of kind `action` (`pull_by_tag`, `pull_by_digest`, `version_check`).
    pub fn add(&mut self, action: &str) {
        match action {
            "pull_by_tag" => self.pulls_by_tag += 1,
            "pull_by_digest" => self.pulls_by_digest += 1,
            _ => self.version_checks += 1,
        }
    }
}

/// One member of a period's puller set of one group, both as 64-bit hashes (migration 0011).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UniqueRow {
    pub grp: i64,
    /// Odd for an account, even for an address.
    pub who: i64,
}

/// Who pulled an image in a period (Technographic).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PullerRow {
    pub period: String,
    pub who: i64,
    pub namespace: String,
    /// The full repository name.
    pub repo: String,
}

/// A company domain that pulled an image in a period (Technographic).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageDomainRow {
    pub namespace: String,
    pub period: String,
    pub repo: String,
    pub domain: String,
}

/// What one classifier run adds to the rollups, deduplicated: stored with its actions.
#[derive(Debug, Default)]
pub struct Rollup {
    pub daily: std::collections::HashMap<DailyKey, ActionCounts>,
    pub uniques: std::collections::HashSet<UniqueRow>,
    pub pullers: std::collections::HashSet<PullerRow>,
    pub domains: std::collections::HashSet<ImageDomainRow>,
}

/// How many members a group of a period's puller set has: accounts and addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UniqueCount {
    pub accounts: u64,
    pub addresses: u64,
    /// Every member, whatever it is (company domains of the `domain` kind included).
    pub total: u64,
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
    /// Domain, country, cloud, tool, use case, repository: the Tracked companies rows.
    Tracked,
}

impl TallyBy {
    fn columns(self) -> &'static [&'static str] {
        match self {
            Self::Repository => &["repo"],
            Self::Tag => &["repo", "tag"],
            Self::Digest => &["repo", "digest"],
            Self::Reference => &["repo", "CASE WHEN tag <> '' THEN tag ELSE digest END"],
            Self::Trends => &["repo", "country", "cloud", "tool", "tag"],
            Self::Tracked => &["domain", "country", "cloud", "tool", "use_case", "repo"],
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

    /// The end time and event count of the batches that end at or after `from_ms`, in the
    /// order they end, at most `limit` of them (so a classifier run can choose a span whose
    /// events fit in its memory).
    pub async fn batch_ends(&self, from_ms: i64, limit: i64) -> Result<Vec<(i64, u64)>, DbError> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT last_ms, events FROM pull_event_batches WHERE last_ms >= $1 ORDER BY last_ms LIMIT $2",
        )
        .bind(from_ms)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(at, n)| (at, n.max(0) as u64))
            .collect())
    }

    /// When the oldest stored event happened.
    pub async fn oldest_pull_event(&self) -> Result<Option<i64>, DbError> {
        Ok(
            sqlx::query_scalar("SELECT MIN(first_ms) FROM pull_event_batches")
                .fetch_one(&self.read)
                .await?,
        )
    }

    /// The watermark and what was carried over it, read together.
    pub async fn classifier_state(&self) -> Result<ClassifierState, DbError> {
        let row: Option<(i64, Option<i64>, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT s.value, c.until_ms, c.data FROM analytics_state s \
             LEFT JOIN analytics_carry c ON c.name = s.name WHERE s.name = $1",
        )
        .bind(WATERMARK)
        .fetch_optional(&self.read)
        .await?;
        Ok(match row {
            None => ClassifierState::default(),
            Some((until, carried_at, data)) => ClassifierState {
                until_ms: Some(until),
                carry: data.filter(|_| carried_at == Some(until)),
            },
        })
    }

    /// Stores the actions of one classifier run and what they add to the rollups, and moves
    /// the watermark from `from` to `to`, in one transaction. False (and nothing stored) when another node moved the
    /// watermark first.
    pub async fn commit_actions(
        &self,
        from: Option<i64>,
        to: i64,
        actions: &[ActionBatch],
        rollup: &Rollup,
        carry: &[u8],
    ) -> Result<bool, DbError> {
        // Derived data: the raw events stay until the retention, and the watermark moves in
        // the same transaction, so a commit lost to a power cut is simply classified again.
        // No disk flush to wait for.
        if self.backend == Backend::Sqlite {
            let mut relaxed = crate::Relaxed::acquire(&self.write).await?;
            let result = self
                .commit_actions_on(relaxed.conn(), from, to, actions, rollup, carry)
                .await;
            relaxed.restore().await?;
            return result;
        }
        let mut conn = self.write.acquire().await?;
        self.commit_actions_on(&mut conn, from, to, actions, rollup, carry)
            .await
    }

    async fn commit_actions_on(
        &self,
        conn: &mut sqlx::AnyConnection,
        from: Option<i64>,
        to: i64,
        actions: &[ActionBatch],
        rollup: &Rollup,
        carry: &[u8],
    ) -> Result<bool, DbError> {
        use sqlx::Connection as _;
        let mut tx = conn.begin().await?;
        if self.backend == Backend::Postgres {
            tx.execute("SET LOCAL synchronous_commit = off").await?;
        }
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
        sqlx::query(
            "INSERT INTO analytics_carry (name, until_ms, data) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET until_ms = excluded.until_ms, data = excluded.data",
        )
        .bind(WATERMARK)
        .bind(to)
        .bind(carry)
        .execute(&mut *tx)
        .await?;
        insert_action_batches(&mut tx, actions).await?;
        // Each table's rows in its primary key's order: consecutive rows land on the same
        // pages of the index.
        let mut daily: Vec<_> = rollup.daily.iter().collect();
        daily.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for chunk in daily.chunks(EVENT_BATCH) {
            let mut sql = values_sql(
                self.backend,
                "INSERT INTO pull_daily (namespace, day, repo, tag, digest, country, cloud, tool, \
                 use_case, domain, pulls_by_tag, pulls_by_digest, version_checks) VALUES ",
                13,
                chunk.len(),
            );
            sql.push_str(
                " ON CONFLICT (namespace, day, repo, tag, digest, country, cloud, tool, use_case, domain) \
                 DO UPDATE SET pulls_by_tag = pull_daily.pulls_by_tag + excluded.pulls_by_tag, \
                 pulls_by_digest = pull_daily.pulls_by_digest + excluded.pulls_by_digest, \
                 version_checks = pull_daily.version_checks + excluded.version_checks",
            );
            let mut q = sqlx::query(&sql);
            for (k, c) in chunk {
                q = q
                    .bind(k.namespace.as_str())
                    .bind(k.day)
                    .bind(k.repo.as_str())
                    .bind(k.tag.as_str())
                    .bind(k.digest.as_str())
                    .bind(k.country.as_str())
                    .bind(k.cloud.as_str())
                    .bind(k.tool.as_str())
                    .bind(k.use_case.as_str())
                    .bind(k.domain.as_str())
                    .bind(c.pulls_by_tag as i64)
                    .bind(c.pulls_by_digest as i64)
                    .bind(c.version_checks as i64);
            }
            q.execute(&mut *tx).await?;
        }
        let mut uniques: Vec<_> = rollup.uniques.iter().collect();
        uniques.sort_unstable();
        for chunk in uniques.chunks(EVENT_BATCH * 4) {
            let mut sql = values_sql(
                self.backend,
                "INSERT INTO pull_uniques (grp, who) VALUES ",
                2,
                chunk.len(),
            );
            sql.push_str(" ON CONFLICT (grp, who) DO NOTHING");
            let mut q = sqlx::query(&sql);
            for u in chunk {
                q = q.bind(u.grp).bind(u.who);
            }
            q.execute(&mut *tx).await?;
        }
        let mut pullers: Vec<_> = rollup.pullers.iter().collect();
        pullers.sort_unstable();
        for chunk in pullers.chunks(EVENT_BATCH * 2) {
            let mut sql = values_sql(
                self.backend,
                "INSERT INTO pull_pullers (period, who, namespace, repo) VALUES ",
                4,
                chunk.len(),
            );
            sql.push_str(" ON CONFLICT (period, who, namespace, repo) DO NOTHING");
            let mut q = sqlx::query(&sql);
            for p in chunk {
                q = q
                    .bind(p.period.as_str())
                    .bind(p.who)
                    .bind(p.namespace.as_str())
                    .bind(p.repo.as_str());
            }
            q.execute(&mut *tx).await?;
        }
        let mut domains: Vec<_> = rollup.domains.iter().collect();
        domains.sort_unstable();
        for chunk in domains.chunks(EVENT_BATCH * 2) {
            let mut sql = values_sql(
                self.backend,
                "INSERT INTO pull_image_domains (namespace, period, repo, domain) VALUES ",
                4,
                chunk.len(),
            );
            sql.push_str(" ON CONFLICT (namespace, period, repo, domain) DO NOTHING");
            let mut q = sqlx::query(&sql);
            for d in chunk {
                q = q
                    .bind(d.namespace.as_str())
                    .bind(d.period.as_str())
                    .bind(d.repo.as_str())
                    .bind(d.domain.as_str());
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

    /// A namespace's action counts over the days `[from_day, to_day)`, grouped as asked,
    /// ordered by the group's key. Read from the daily rollup.
    pub async fn tally_actions(
        &self,
        namespace: &str,
        from_day: i64,
        to_day: i64,
        by: TallyBy,
    ) -> Result<Vec<(Vec<String>, ActionCounts)>, DbError> {
        let cols = by.columns().join(", ");
        let sql = format!(
            "SELECT {cols}, CAST(SUM(pulls_by_tag) AS BIGINT), CAST(SUM(pulls_by_digest) AS BIGINT), \
             CAST(SUM(version_checks) AS BIGINT) FROM pull_daily \
             WHERE namespace = $1 AND day >= $2 AND day < $3 GROUP BY {cols} ORDER BY {cols}"
        );
        let rows = sqlx::query(&sql)
            .bind(namespace)
            .bind(from_day)
            .bind(to_day)
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
                Ok((
                    key,
                    ActionCounts {
                        pulls_by_tag: count(0)?,
                        pulls_by_digest: count(1)?,
                        version_checks: count(2)?,
                    },
                ))
            })
            .collect()
    }

    /// The days in `[from_day, to_day)` on which a namespace has actions.
    pub async fn active_days(
        &self,
        namespace: &str,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<i64>, DbError> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT day FROM pull_daily WHERE namespace = $1 AND day >= $2 AND day < $3 \
             ORDER BY day",
        )
        .bind(namespace)
        .bind(from_day)
        .bind(to_day)
        .fetch_all(&self.read)
        .await?)
    }

    /// How many accounts and addresses each of the groups `grps` has in its puller set.
    pub async fn unique_counts(
        &self,
        grps: &[i64],
    ) -> Result<std::collections::HashMap<i64, UniqueCount>, DbError> {
        let mut out = std::collections::HashMap::with_capacity(grps.len());
        for chunk in grps.chunks(EVENT_BATCH) {
            let list = (1..=chunk.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT grp, CAST(COUNT(*) AS BIGINT), CAST(SUM(who & 1) AS BIGINT) \
                 FROM pull_uniques WHERE grp IN ({list}) GROUP BY grp"
            );
            let mut q = sqlx::query(&sql);
            for g in chunk {
                q = q.bind(*g);
            }
            for r in q.fetch_all(&self.read).await? {
                let total = r.try_get::<i64, _>(1)?.max(0) as u64;
                let accounts = r.try_get::<i64, _>(2)?.max(0) as u64;
                out.insert(
                    r.try_get::<i64, _>(0)?,
                    UniqueCount {
                        accounts,
                        addresses: total - accounts.min(total),
                        total,
                    },
                );
            }
        }
        Ok(out)
    }

    /// How many pullers each image of a namespace had in a period.
    pub async fn image_pullers(
        &self,
        namespace: &str,
        period: &str,
    ) -> Result<Vec<(String, i64)>, DbError> {
        Ok(sqlx::query_as(
            "SELECT repo, CAST(COUNT(*) AS BIGINT) FROM pull_pullers \
             WHERE namespace = $1 AND period = $2 GROUP BY repo ORDER BY repo",
        )
        .bind(namespace)
        .bind(period)
        .fetch_all(&self.read)
        .await?)
    }

    /// For the images of `namespace`, every public image of any namespace that shares at
    /// least `min_common` pullers in a period: (image, paired image, common pullers).
    /// Another namespace's private repositories are never named (nor a deleted one's).
    pub async fn paired_images(
        &self,
        namespace: &str,
        period: &str,
        min_common: i64,
    ) -> Result<Vec<(String, String, i64)>, DbError> {
        Ok(sqlx::query_as(
            "SELECT a.repo, b.repo, CAST(COUNT(*) AS BIGINT) FROM pull_pullers a \
             JOIN pull_pullers b ON b.period = a.period AND b.who = a.who AND b.repo <> a.repo \
             JOIN repositories r ON r.name = b.repo \
             WHERE a.namespace = $1 AND a.period = $2 AND (r.private = 0 OR b.namespace = $1) \
             GROUP BY a.repo, b.repo HAVING COUNT(*) >= $3 ORDER BY a.repo, b.repo",
        )
        .bind(namespace)
        .bind(period)
        .bind(min_common)
        .fetch_all(&self.read)
        .await?)
    }

    /// The company domains that pulled the images of a namespace in a period, as (image,
    /// domain); only `repo`'s when given.
    pub async fn image_domains(
        &self,
        namespace: &str,
        period: &str,
        repo: Option<&str>,
    ) -> Result<Vec<(String, String)>, DbError> {
        Ok(sqlx::query_as(
            "SELECT repo, domain FROM pull_image_domains WHERE namespace = $1 AND period = $2 \
             AND ($3 = '' OR repo = $3) ORDER BY repo, domain",
        )
        .bind(namespace)
        .bind(period)
        .bind(repo.unwrap_or(""))
        .fetch_all(&self.read)
        .await?)
    }

    /// The company domains `namespace` follows in its Tracked companies report.
    pub async fn tracked_domains(&self, namespace: &str) -> Result<Vec<String>, DbError> {
        Ok(sqlx::query_scalar(
            "SELECT domain FROM analytics_tracked_domains WHERE namespace = $1 ORDER BY domain",
        )
        .bind(namespace)
        .fetch_all(&self.read)
        .await?)
    }

    /// Follows `domain` in `namespace`'s Tracked companies report; false if it already was.
    pub async fn add_tracked_domain(&self, namespace: &str, domain: &str) -> Result<bool, DbError> {
        Ok(sqlx::query(
            "INSERT INTO analytics_tracked_domains (namespace, domain, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (namespace, domain) DO NOTHING",
        )
        .bind(namespace)
        .bind(domain)
        .bind(crate::now())
        .execute(&self.write)
        .await?
        .rows_affected()
            == 1)
    }

    /// Stops following `domain`; false if it was not followed.
    pub async fn remove_tracked_domain(
        &self,
        namespace: &str,
        domain: &str,
    ) -> Result<bool, DbError> {
        Ok(sqlx::query(
            "DELETE FROM analytics_tracked_domains WHERE namespace = $1 AND domain = $2",
        )
        .bind(namespace)
        .bind(domain)
        .execute(&self.write)
        .await?
        .rows_affected()
            == 1)
    }

    /// Up to `limit` of a namespace's batches of actions of the days `[from_day, to_day)`,
    /// after the batch with id `after_id` (0 for the first page), as (id, data): the raw
    /// data export.
    pub async fn action_batches(
        &self,
        namespace: &str,
        from_day: i64,
        to_day: i64,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<(i64, Vec<u8>)>, DbError> {
        Ok(sqlx::query_as(
            "SELECT id, data FROM pull_action_batches \
             WHERE namespace = $1 AND day >= $2 AND day < $3 AND id > $4 ORDER BY id LIMIT $5",
        )
        .bind(namespace)
        .bind(from_day)
        .bind(to_day)
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// How many actions a namespace has in the days `[from_day, to_day)` (for progress bars).
    pub async fn count_actions(
        &self,
        namespace: &str,
        from_day: i64,
        to_day: i64,
    ) -> Result<u64, DbError> {
        let n: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(SUM(actions) AS BIGINT) FROM pull_action_batches \
             WHERE namespace = $1 AND day >= $2 AND day < $3",
        )
        .bind(namespace)
        .bind(from_day)
        .bind(to_day)
        .fetch_one(&self.read)
        .await?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    /// Up to `limit` actions stored one per row by earlier versions of wharf, oldest first,
    /// with their ids (for moving them into batches).
    pub async fn legacy_actions(&self, limit: i64) -> Result<Vec<(i64, PullActionRow)>, DbError> {
        let rows = sqlx::query(
            "SELECT id, at_ms, namespace, repo, tag, digest, action, method, user_name, ip_week, ip_month, \
             tool, tool_version, country, cloud, ip_type, domain FROM pull_actions ORDER BY id LIMIT $1",
        )
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

    /// Replaces the legacy action rows with ids up to `last_id` by their batches, in one
    /// transaction (their rollups exist already). Safe when several nodes do it at once:
    /// only the one that deletes the rows stores the batches.
    pub async fn replace_legacy_actions(
        &self,
        last_id: i64,
        expected: u64,
        batches: &[ActionBatch],
    ) -> Result<bool, DbError> {
        use sqlx::Connection as _;
        let mut conn = self.write.acquire().await?;
        let mut tx = conn.begin().await?;
        let deleted = sqlx::query("DELETE FROM pull_actions WHERE id <= $1")
            .bind(last_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted != expected {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_action_batches(&mut tx, batches).await?;
        tx.commit().await?;
        Ok(true)
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
async fn insert_action_batches(
    conn: &mut sqlx::AnyConnection,
    batches: &[ActionBatch],
) -> Result<(), DbError> {
    for b in batches {
        sqlx::query(
            "INSERT INTO pull_action_batches (namespace, day, actions, data) VALUES ($1, $2, $3, $4)",
        )
        .bind(b.namespace.as_str())
        .bind(b.day)
        .bind(b.actions)
        .bind(b.data.as_slice())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

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
