//! The hub's metadata: repository information, logos, pull counters, search, storage used,
//! tag details and trusted-content program applications.

use sqlx::Row;
use sqlx::any::AnyRow;
use wharf_oci::RepoName;

use crate::{Db, DbError, RepoId, now};

/// Who is looking, for queries that must hide private repositories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    /// Sees public repositories only.
    Anonymous,
    /// Sees public repositories and the private ones the user may read.
    User(i64),
    /// An organization access token: public repositories and its organization's.
    Org(String),
    /// Sees everything.
    Admin,
}

/// A repository with its hub information.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRow {
    pub id: i64,
    pub name: String,
    pub namespace: String,
    pub description: String,
    pub overview: String,
    /// Category slugs.
    pub categories: Vec<String>,
    pub private: bool,
    pub archived: bool,
    /// Digest of the repository's own logo.
    pub logo: Option<String>,
    pub pull_count: i64,
    pub last_pulled_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The namespace's approved program (`open_source`, `verified_publisher`).
    pub program: Option<String>,
    /// Digest of the namespace's logo.
    pub namespace_logo: Option<String>,
    /// Whether any manifest has been pushed.
    pub has_image: bool,
}

const REPO_COLUMNS: &str = "r.id, r.name, r.namespace, r.description, r.overview, r.categories, \
    r.private, r.archived, r.logo, r.pull_count, r.last_pulled_at, r.created_at, \
    COALESCE(r.updated_at, r.created_at), n.program, n.logo, \
    CAST(CASE WHEN EXISTS (SELECT 1 FROM manifests m WHERE m.repo_id = r.id) THEN 1 ELSE 0 END AS BIGINT)";
const TAG_COLUMNS: &str = "t.name, m.id, m.digest, m.media_type, m.payload, t.pushed_at, t.pulled_at \
    FROM tags t JOIN manifests m ON m.id = t.manifest_id";
const REPO_FROM: &str = "repositories r LEFT JOIN namespaces n ON n.name = r.namespace";

fn repo_from(r: &AnyRow) -> Result<RepoRow, sqlx::Error> {
    let categories: String = r.try_get(5)?;
    Ok(RepoRow {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        namespace: r.try_get(2)?,
        description: r.try_get(3)?,
        overview: r.try_get(4)?,
        categories: categories
            .split(',')
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect(),
        private: r.try_get::<i64, _>(6)? != 0,
        archived: r.try_get::<i64, _>(7)? != 0,
        logo: r.try_get(8)?,
        pull_count: r.try_get(9)?,
        last_pulled_at: r.try_get(10)?,
        created_at: r.try_get(11)?,
        updated_at: r.try_get(12)?,
        program: r.try_get(13)?,
        namespace_logo: r.try_get(14)?,
        has_image: r.try_get::<i64, _>(15)? != 0,
    })
}

/// Changes to a repository's information; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct RepoPatch {
    pub description: Option<String>,
    pub overview: Option<String>,
    pub categories: Option<Vec<String>>,
    pub private: Option<bool>,
    pub archived: Option<bool>,
}

/// Orderings of repository lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoOrder {
    Name,
    LastUpdated,
    PullCount,
}

/// A search over repositories.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    /// Lower-case words; each must occur in the name, description or overview.
    pub terms: Vec<String>,
    /// Any of `official`, `verified_publisher`, `open_source`.
    pub badges: Vec<String>,
    /// Any of these category slugs.
    pub categories: Vec<String>,
    pub viewer: Viewer,
    pub offset: u32,
    pub limit: u32,
}

/// A tag with what the tags view shows.
#[derive(Debug, Clone)]
pub struct TagRow {
    pub name: String,
    pub manifest_id: i64,
    pub digest: String,
    pub media_type: String,
    pub payload: Vec<u8>,
    pub pushed_at: i64,
    pub pulled_at: Option<i64>,
}

/// Orderings of the tags view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagOrder {
    Name,
    /// Most recently pushed first.
    Pushed,
}

/// A manifest of an index (one platform), as stored in the same repository.
#[derive(Debug, Clone)]
pub struct ChildRow {
    pub parent_id: i64,
    pub id: i64,
    pub digest: String,
}

/// A program application with its publisher profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationRow {
    pub id: i64,
    pub namespace: String,
    pub program: String,
    pub status: String,
    pub legal_name: String,
    pub website: String,
    pub phone: String,
    pub email: String,
    pub logo: String,
    pub applied_by: String,
    pub applied_at: i64,
    pub decided_at: Option<i64>,
    pub note: String,
}

/// A new program application.
#[derive(Debug, Clone)]
pub struct NewApplication<'a> {
    pub namespace: &'a str,
    pub program: &'a str,
    pub legal_name: &'a str,
    pub website: &'a str,
    pub phone: &'a str,
    pub email: &'a str,
    pub logo: &'a str,
    pub applied_by: i64,
}

/// Pulls counted on one node since its last flush.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullCount {
    pub repo: String,
    pub tag: Option<String>,
    pub count: i64,
    pub at: i64,
}

/// A query with numbered placeholders, built piece by piece.
#[derive(Default)]
struct Sql {
    text: String,
    binds: Vec<Bind>,
}

#[derive(Clone)]
enum Bind {
    Int(i64),
    Text(String),
}

impl Sql {
    fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }

    /// Appends a placeholder bound to `b`.
    fn bind(&mut self, b: Bind) -> &mut Self {
        self.binds.push(b);
        let n = self.binds.len();
        self.text.push_str(&format!("${n}"));
        self
    }

    fn int(&mut self, v: i64) -> &mut Self {
        self.bind(Bind::Int(v))
    }

    fn text(&mut self, v: &str) -> &mut Self {
        self.bind(Bind::Text(v.to_owned()))
    }

    fn query(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
        let mut q = sqlx::query(&self.text);
        for b in &self.binds {
            q = match b {
                Bind::Int(v) => q.bind(*v),
                Bind::Text(v) => q.bind(v.as_str()),
            };
        }
        q
    }
}

/// `LIKE` pattern for `s` anywhere, with `\` escaping the wildcards.
fn contains_pattern(s: &str) -> String {
    let mut p = String::from("%");
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// Appends the condition that `viewer` may see repository `r`.
fn visible(sql: &mut Sql, viewer: &Viewer) {
    match viewer {
        Viewer::Admin => {
            sql.push("1 = 1");
        }
        Viewer::Anonymous => {
            sql.push("r.private = 0");
        }
        Viewer::Org(org) => {
            sql.push("(r.private = 0 OR r.namespace = ")
                .text(org)
                .push(")");
        }
        Viewer::User(id) => {
            let id = *id;
            sql.push("(r.private = 0 OR r.namespace = (SELECT name FROM users WHERE id = ")
                .int(id)
                .push(") OR r.namespace IN (SELECT o.name FROM orgs o JOIN org_members m ON m.org_id = o.id WHERE m.user_id = ")
                .int(id)
                .push(") OR r.id IN (SELECT repo_id FROM repo_permissions WHERE grantee_kind = 'user' AND grantee_id = ")
                .int(id)
                .push(") OR r.id IN (SELECT p.repo_id FROM repo_permissions p JOIN team_members t ON p.grantee_kind = 'team' AND p.grantee_id = t.team_id WHERE t.user_id = ")
                .int(id)
                .push("))");
        }
    }
}

impl Db {
    /// A repository with its hub information.
    pub async fn repo_row(&self, name: &str) -> Result<Option<RepoRow>, DbError> {
        let sql = format!("SELECT {REPO_COLUMNS} FROM {REPO_FROM} WHERE r.name = $1");
        let row = sqlx::query(&sql)
            .bind(name)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| repo_from(&r)).transpose()?)
    }

    /// Creates a repository explicitly. False when it already exists.
    pub async fn create_repo(
        &self,
        name: &RepoName,
        description: &str,
        overview: &str,
        private: bool,
    ) -> Result<bool, DbError> {
        let now = now();
        let done = sqlx::query(
            "INSERT INTO repositories (name, namespace, created_at, updated_at, description, overview, private) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name.as_str())
        .bind(name.namespace())
        .bind(now)
        .bind(now)
        .bind(description)
        .bind(overview)
        .bind(private as i64)
        .execute(&self.write)
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    /// Applies a patch. False when the repository does not exist.
    pub async fn update_repo(&self, name: &str, p: &RepoPatch) -> Result<bool, DbError> {
        let mut sql = Sql::default();
        sql.push("UPDATE repositories SET updated_at = ").int(now());
        if let Some(d) = &p.description {
            sql.push(", description = ").text(d);
        }
        if let Some(o) = &p.overview {
            sql.push(", overview = ").text(o);
        }
        if let Some(c) = &p.categories {
            sql.push(", categories = ").text(&c.join(","));
        }
        if let Some(v) = p.private {
            sql.push(", private = ").int(v as i64);
        }
        if let Some(a) = p.archived {
            sql.push(", archived = ").int(a as i64);
        }
        sql.push(" WHERE name = ").text(name);
        Ok(sql.query().execute(&self.write).await?.rows_affected() == 1)
    }

    /// Deletes a repository with its manifests, tags, links, uploads and grants. Blobs stay
    /// in storage until garbage collection. False when it did not exist.
    pub async fn delete_repo(&self, name: &str) -> Result<bool, DbError> {
        let mut tx = self.write.begin().await?;
        let Some(row) = sqlx::query("SELECT id FROM repositories WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(false);
        };
        let id: i64 = row.get(0);
        // Children before parents, so that neither engine depends on cascade order.
        for sql in [
            "DELETE FROM tags WHERE repo_id = $1",
            "DELETE FROM manifest_blobs WHERE manifest_id IN (SELECT id FROM manifests WHERE repo_id = $1)",
            "DELETE FROM manifest_refs WHERE parent_id IN (SELECT id FROM manifests WHERE repo_id = $1)",
            "DELETE FROM manifests WHERE repo_id = $1",
            "DELETE FROM repo_blobs WHERE repo_id = $1",
            "DELETE FROM uploads WHERE repo_id = $1",
            "DELETE FROM repo_permissions WHERE repo_id = $1",
            "DELETE FROM repositories WHERE id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Whether a repository is archived (false when it does not exist).
    pub async fn repo_archived(&self, name: &str) -> Result<bool, DbError> {
        let row = sqlx::query("SELECT archived FROM repositories WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.is_some_and(|r| r.get::<i64, _>(0) != 0))
    }

    /// A namespace's repositories that `viewer` may see, one page, and how many there are.
    pub async fn namespace_repos(
        &self,
        namespace: &str,
        viewer: Viewer,
        order: RepoOrder,
        offset: u32,
        limit: u32,
    ) -> Result<(u64, Vec<RepoRow>), DbError> {
        let mut filter = Sql::default();
        filter
            .push(" WHERE r.namespace = ")
            .text(namespace)
            .push(" AND ");
        visible(&mut filter, &viewer);
        let order = match order {
            RepoOrder::Name => "r.name",
            RepoOrder::LastUpdated => "COALESCE(r.updated_at, r.created_at) DESC, r.name",
            RepoOrder::PullCount => "r.pull_count DESC, r.name",
        };
        self.repo_page(
            filter,
            |page| {
                page.push(order);
            },
            offset,
            limit,
        )
        .await
    }

    /// One page of repositories matching `filter` (a `WHERE` clause), ordered by what
    /// `order` appends (its placeholders numbered after the filter's), and how many match.
    async fn repo_page(
        &self,
        filter: Sql,
        order: impl FnOnce(&mut Sql),
        offset: u32,
        limit: u32,
    ) -> Result<(u64, Vec<RepoRow>), DbError> {
        let count_sql = Sql {
            text: format!("SELECT COUNT(*) FROM {REPO_FROM}{}", filter.text),
            binds: filter.binds.clone(),
        };
        let count: i64 = count_sql.query().fetch_one(&self.read).await?.get(0);
        let mut page = Sql {
            text: format!(
                "SELECT {REPO_COLUMNS} FROM {REPO_FROM}{} ORDER BY ",
                filter.text
            ),
            binds: filter.binds,
        };
        order(&mut page);
        page.push(" LIMIT ")
            .int(limit as i64)
            .push(" OFFSET ")
            .int(offset as i64);
        let rows = page.query().fetch_all(&self.read).await?;
        let repos = rows.iter().map(repo_from).collect::<Result<_, _>>()?;
        Ok((count as u64, repos))
    }

    /// Full-text search ranked by relevance, then trusted programs, then pulls.
    pub async fn search_repos(&self, q: &SearchQuery) -> Result<(u64, Vec<RepoRow>), DbError> {
        let mut filter = Sql::default();
        filter.push(" WHERE ");
        visible(&mut filter, &q.viewer);
        for term in &q.terms {
            let like = contains_pattern(term);
            filter
                .push(" AND (r.name LIKE ")
                .text(&like)
                .push(" ESCAPE '\\' OR LOWER(r.description) LIKE ")
                .text(&like)
                .push(" ESCAPE '\\' OR LOWER(r.overview) LIKE ")
                .text(&like)
                .push(" ESCAPE '\\')");
        }
        if !q.badges.is_empty() {
            filter.push(" AND (");
            for (i, b) in q.badges.iter().enumerate() {
                if i > 0 {
                    filter.push(" OR ");
                }
                if b == "official" {
                    filter.push("r.namespace = 'library'");
                } else {
                    filter.push("n.program = ").text(b);
                }
            }
            filter.push(")");
        }
        if !q.categories.is_empty() {
            filter.push(" AND (");
            for (i, c) in q.categories.iter().enumerate() {
                if i > 0 {
                    filter.push(" OR ");
                }
                filter
                    .push("(',' || r.categories || ',') LIKE ")
                    .text(&format!("%,{c},%"));
            }
            filter.push(")");
        }
        // Relevance: a name that is the word scores most, then a name containing it, then the
        // description, then the overview; ties go to trusted programs, then pulls.
        let order = |page: &mut Sql| {
            if !q.terms.is_empty() {
                page.push("(0");
            }
            for term in &q.terms {
                let like = contains_pattern(term);
                page.push(" + CASE WHEN r.name = ")
                    .text(term)
                    .push(" THEN 100 WHEN r.name LIKE ")
                    .text(&format!("%/{}", &like[1..like.len() - 1]))
                    .push(" ESCAPE '\\' THEN 100 WHEN r.name LIKE ")
                    .text(&like)
                    .push(" ESCAPE '\\' THEN 40 ELSE 0 END + CASE WHEN LOWER(r.description) LIKE ")
                    .text(&like)
                    .push(" ESCAPE '\\' THEN 20 ELSE 0 END + CASE WHEN LOWER(r.overview) LIKE ")
                    .text(&like)
                    .push(" ESCAPE '\\' THEN 5 ELSE 0 END");
            }
            if !q.terms.is_empty() {
                page.push(") DESC, ");
            }
            page.push(
                "CASE WHEN r.namespace = 'library' THEN 3 WHEN n.program = 'verified_publisher' THEN 2 \
                 WHEN n.program = 'open_source' THEN 1 ELSE 0 END DESC, r.pull_count DESC, r.name",
            );
        };
        self.repo_page(filter, order, q.offset, q.limit).await
    }

    /// Bytes a repository uses: its blobs and manifests, each blob once.
    pub async fn repo_storage(&self, repo: RepoId) -> Result<u64, DbError> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE((SELECT SUM(b.size) FROM repo_blobs rb JOIN blobs b ON b.digest = rb.digest WHERE rb.repo_id = $1), 0) \
             + COALESCE((SELECT SUM(size) FROM manifests WHERE repo_id = $2), 0) AS BIGINT)",
        )
        .bind(repo.0)
        .bind(repo.0)
        .fetch_one(&self.read)
        .await?;
        Ok(row.get::<i64, _>(0).max(0) as u64)
    }

    /// Bytes a namespace uses: a blob shared by several of its repositories counts once.
    pub async fn namespace_storage(&self, namespace: &str) -> Result<u64, DbError> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE((SELECT SUM(b.size) FROM blobs b WHERE b.digest IN \
               (SELECT rb.digest FROM repo_blobs rb JOIN repositories r ON r.id = rb.repo_id WHERE r.namespace = $1)), 0) \
             + COALESCE((SELECT SUM(m.size) FROM manifests m JOIN repositories r ON r.id = m.repo_id WHERE r.namespace = $2), 0) AS BIGINT)",
        )
        .bind(namespace)
        .bind(namespace)
        .fetch_one(&self.read)
        .await?;
        Ok(row.get::<i64, _>(0).max(0) as u64)
    }

    /// One page of a repository's tags with their manifests, and how many tags there are.
    pub async fn tag_rows(
        &self,
        repo: RepoId,
        order: TagOrder,
        offset: u32,
        limit: u32,
    ) -> Result<(u64, Vec<TagRow>), DbError> {
        let count: i64 = sqlx::query("SELECT COUNT(*) FROM tags WHERE repo_id = $1")
            .bind(repo.0)
            .fetch_one(&self.read)
            .await?
            .get(0);
        let order = match order {
            TagOrder::Name => "t.name",
            TagOrder::Pushed => "t.pushed_at DESC, t.manifest_id DESC, t.name",
        };
        let sql = format!(
            "SELECT {TAG_COLUMNS} WHERE t.repo_id = $1 ORDER BY {order} LIMIT $2 OFFSET $3"
        );
        let rows = sqlx::query(&sql)
            .bind(repo.0)
            .bind(limit as i64)
            .bind(offset as i64)
            .fetch_all(&self.read)
            .await?;
        let tags = rows.iter().map(tag_from).collect();
        Ok((count as u64, tags))
    }

    /// One tag with its manifest.
    pub async fn tag_row(&self, repo: RepoId, tag: &str) -> Result<Option<TagRow>, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {TAG_COLUMNS} WHERE t.repo_id = $1 AND t.name = $2"
        ))
        .bind(repo.0)
        .bind(tag)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.as_ref().map(tag_from))
    }

    /// The manifests of these indexes that the repository holds.
    pub async fn index_children(
        &self,
        repo: RepoId,
        parents: &[i64],
    ) -> Result<Vec<ChildRow>, DbError> {
        if parents.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::default();
        sql.push("SELECT r.parent_id, c.id, c.digest FROM manifest_refs r JOIN manifests c ON c.digest = r.child_digest AND c.repo_id = ")
            .int(repo.0)
            .push(" WHERE r.parent_id IN (");
        for (i, p) in parents.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.int(*p);
        }
        sql.push(")");
        let rows = sql.query().fetch_all(&self.read).await?;
        Ok(rows
            .into_iter()
            .map(|r| ChildRow {
                parent_id: r.get(0),
                id: r.get(1),
                digest: r.get(2),
            })
            .collect())
    }

    /// Total size of each manifest: itself plus the blobs it references.
    pub async fn manifest_sizes(&self, ids: &[i64]) -> Result<Vec<(i64, u64)>, DbError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::default();
        sql.push("SELECT m.id, CAST(m.size + COALESCE(SUM(b.size), 0) AS BIGINT) FROM manifests m \
                  LEFT JOIN manifest_blobs mb ON mb.manifest_id = m.id LEFT JOIN blobs b ON b.digest = mb.digest \
                  WHERE m.id IN (");
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.int(*id);
        }
        sql.push(") GROUP BY m.id, m.size");
        let rows = sql.query().fetch_all(&self.read).await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get::<i64, _>(0), r.get::<i64, _>(1).max(0) as u64))
            .collect())
    }

    /// Links into `to` every blob that manifest `digest` of `from` references.
    pub async fn link_manifest_blobs(
        &self,
        from: RepoId,
        to: RepoId,
        digest: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO repo_blobs (repo_id, digest, linked_at) \
             SELECT $1, mb.digest, $2 FROM manifest_blobs mb JOIN manifests m ON m.id = mb.manifest_id \
             JOIN repo_blobs src ON src.repo_id = m.repo_id AND src.digest = mb.digest \
             WHERE m.repo_id = $3 AND m.digest = $4 ON CONFLICT DO NOTHING",
        )
        .bind(to.0)
        .bind(now())
        .bind(from.0)
        .bind(digest)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Adds pulls counted on a node: repository counters and last-pulled times.
    pub async fn record_pulls(&self, pulls: &[PullCount]) -> Result<(), DbError> {
        let mut tx = self.write.begin().await?;
        for p in pulls {
            if p.count > 0 {
                sqlx::query(
                    "UPDATE repositories SET pull_count = pull_count + $1, \
                     last_pulled_at = CASE WHEN last_pulled_at IS NULL OR last_pulled_at < $2 THEN $3 ELSE last_pulled_at END \
                     WHERE name = $4",
                )
                .bind(p.count)
                .bind(p.at)
                .bind(p.at)
                .bind(&p.repo)
                .execute(&mut *tx)
                .await?;
            }
            if let Some(tag) = &p.tag {
                sqlx::query(
                    "UPDATE tags SET pulled_at = $1 WHERE name = $2 AND (pulled_at IS NULL OR pulled_at < $3) \
                     AND repo_id = (SELECT id FROM repositories WHERE name = $4)",
                )
                .bind(p.at)
                .bind(tag)
                .bind(p.at)
                .bind(&p.repo)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    // ---- logos ----

    /// Stores a logo (idempotent: logos are content-addressed).
    pub async fn put_logo(
        &self,
        digest: &str,
        media_type: &str,
        data: &[u8],
    ) -> Result<(), DbError> {
        sqlx::query("INSERT INTO logos (digest, media_type, data, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (digest) DO NOTHING")
            .bind(digest)
            .bind(media_type)
            .bind(data)
            .bind(now())
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// A logo's media type and bytes.
    pub async fn logo(&self, digest: &str) -> Result<Option<(String, Vec<u8>)>, DbError> {
        let row = sqlx::query("SELECT media_type, data FROM logos WHERE digest = $1")
            .bind(digest)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    /// Sets or clears a repository's logo.
    pub async fn set_repo_logo(&self, name: &str, digest: Option<&str>) -> Result<bool, DbError> {
        let done = sqlx::query("UPDATE repositories SET logo = $1 WHERE name = $2")
            .bind(digest)
            .bind(name)
            .execute(&self.write)
            .await?
            .rows_affected();
        Ok(done == 1)
    }

    /// A namespace's program and logo.
    pub async fn namespace_program(
        &self,
        namespace: &str,
    ) -> Result<(Option<String>, Option<String>), DbError> {
        let row = sqlx::query("SELECT program, logo FROM namespaces WHERE name = $1")
            .bind(namespace)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))).unwrap_or((None, None)))
    }

    // ---- programs ----

    /// Whether the namespace has an application pending for the program.
    pub async fn has_pending_application(
        &self,
        namespace: &str,
        program: &str,
    ) -> Result<bool, DbError> {
        let row = sqlx::query(
            "SELECT 1 FROM program_applications WHERE namespace = $1 AND program = $2 AND status = 'pending'",
        )
        .bind(namespace)
        .bind(program)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.is_some())
    }

    /// Records an application. `None` when the namespace already has one pending for the
    /// same program (a unique index decides between concurrent applications).
    pub async fn create_application(&self, a: &NewApplication<'_>) -> Result<Option<i64>, DbError> {
        let mut tx = self.write.begin().await?;
        let pending = sqlx::query(
            "SELECT 1 FROM program_applications WHERE namespace = $1 AND program = $2 AND status = 'pending'",
        )
        .bind(a.namespace)
        .bind(a.program)
        .fetch_optional(&mut *tx)
        .await?;
        if pending.is_some() {
            return Ok(None);
        }
        let id = sqlx::query(
            "INSERT INTO program_applications (namespace, program, status, legal_name, website, phone, email, logo, applied_by, applied_at) \
             VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(a.namespace)
        .bind(a.program)
        .bind(a.legal_name)
        .bind(a.website)
        .bind(a.phone)
        .bind(a.email)
        .bind(a.logo)
        .bind(a.applied_by)
        .bind(now())
        .fetch_one(&mut *tx)
        .await;
        let id: i64 = match id {
            Ok(r) => r.get(0),
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        tx.commit().await?;
        Ok(Some(id))
    }

    /// Applications, newest first: of one namespace, or with one status, or all.
    pub async fn applications(
        &self,
        namespace: Option<&str>,
        status: Option<&str>,
        offset: u32,
        limit: u32,
    ) -> Result<(u64, Vec<ApplicationRow>), DbError> {
        let mut filter = Sql::default();
        filter.push(" WHERE 1 = 1");
        if let Some(ns) = namespace {
            filter.push(" AND a.namespace = ").text(ns);
        }
        if let Some(s) = status {
            filter.push(" AND a.status = ").text(s);
        }
        let count_sql = Sql {
            text: format!("SELECT COUNT(*) FROM program_applications a{}", filter.text),
            binds: filter.binds.clone(),
        };
        let count: i64 = count_sql.query().fetch_one(&self.read).await?.get(0);
        filter.text = format!(
            "SELECT a.id, a.namespace, a.program, a.status, a.legal_name, a.website, a.phone, a.email, a.logo, \
             u.name, a.applied_at, a.decided_at, a.note FROM program_applications a JOIN users u ON u.id = a.applied_by{} \
             ORDER BY a.id DESC LIMIT ",
            filter.text
        );
        filter.int(limit as i64).push(" OFFSET ").int(offset as i64);
        let rows = filter.query().fetch_all(&self.read).await?;
        Ok((count as u64, rows.iter().map(application_from).collect()))
    }

    pub async fn application(&self, id: i64) -> Result<Option<ApplicationRow>, DbError> {
        let row = sqlx::query(
            "SELECT a.id, a.namespace, a.program, a.status, a.legal_name, a.website, a.phone, a.email, a.logo, \
             u.name, a.applied_at, a.decided_at, a.note FROM program_applications a JOIN users u ON u.id = a.applied_by \
             WHERE a.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.as_ref().map(application_from))
    }

    /// Moves an application from one of `from` statuses to `to`, and sets the namespace's
    /// program accordingly, in one transaction. False when the application was not in a
    /// status it can move from.
    pub async fn decide_application(
        &self,
        id: i64,
        from: &[&str],
        to: &str,
        by: i64,
        note: &str,
    ) -> Result<bool, DbError> {
        let mut tx = self.write.begin().await?;
        // The status check and the change are one statement: of two administrators deciding
        // at once, one wins and the other is told the application moved.
        let mut update = Sql::default();
        update
            .push("UPDATE program_applications SET status = ")
            .text(to)
            .push(", decided_by = ")
            .int(by)
            .push(", decided_at = ")
            .int(now())
            .push(", note = ")
            .text(note)
            .push(" WHERE id = ")
            .int(id)
            .push(" AND status IN (");
        for (i, f) in from.iter().enumerate() {
            if i > 0 {
                update.push(", ");
            }
            update.text(f);
        }
        update.push(")");
        if update.query().execute(&mut *tx).await?.rows_affected() != 1 {
            return Ok(false);
        }
        let namespace: String =
            sqlx::query("SELECT namespace FROM program_applications WHERE id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?
                .get(0);
        // The namespace holds its best approved program (verified publisher first) and that
        // application's logo; with none left, neither.
        let best = sqlx::query(
            "SELECT program, logo FROM program_applications WHERE namespace = $1 AND status = 'approved' \
             ORDER BY CASE WHEN program = 'verified_publisher' THEN 0 ELSE 1 END, id DESC LIMIT 1",
        )
        .bind(&namespace)
        .fetch_optional(&mut *tx)
        .await?;
        let (program, logo): (Option<String>, Option<String>) = match best {
            Some(r) => (Some(r.get(0)), Some(r.get(1))),
            None => (None, None),
        };
        sqlx::query("UPDATE namespaces SET program = $1, logo = $2 WHERE name = $3")
            .bind(program)
            .bind(logo)
            .bind(&namespace)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }
}

fn tag_from(r: &AnyRow) -> TagRow {
    TagRow {
        name: r.get(0),
        manifest_id: r.get(1),
        digest: r.get(2),
        media_type: r.get(3),
        payload: r.get(4),
        pushed_at: r.get(5),
        pulled_at: r.get(6),
    }
}

fn application_from(r: &AnyRow) -> ApplicationRow {
    ApplicationRow {
        id: r.get(0),
        namespace: r.get(1),
        program: r.get(2),
        status: r.get(3),
        legal_name: r.get(4),
        website: r.get(5),
        phone: r.get(6),
        email: r.get(7),
        logo: r.get(8),
        applied_by: r.get(9),
        applied_at: r.get(10),
        decided_at: r.get(11),
        note: r.get(12),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(contains_pattern("a_b%c\\"), "%a\\_b\\%c\\\\%");
    }
}
