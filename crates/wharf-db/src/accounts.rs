//! Users, organizations, memberships and token signing keys.

use sqlx::Row;

use crate::{Db, DbError, now};

/// A user as the access layer needs it. The password hash stays in this crate's callers only
/// for verification.
#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub password_hash: String,
    pub is_admin: bool,
}

/// A role in an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgRole {
    Owner,
    Editor,
    Member,
}

impl OrgRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Editor => "editor",
            Self::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(Self::Owner),
            "editor" => Some(Self::Editor),
            "member" => Some(Self::Member),
            _ => None,
        }
    }
}

/// What kind of account owns a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceKind {
    User,
    Org,
}

/// Takes `name` in the one namespace space users and organizations share; the primary key
/// decides, so two concurrent claims cannot both win.
async fn claim_namespace(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    name: &str,
    kind: &str,
    now: i64,
) -> Result<(), DbError> {
    let claimed = sqlx::query("INSERT INTO namespaces (name, kind, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .bind(kind)
        .bind(now)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if claimed == 1 {
        Ok(())
    } else {
        Err(DbError::NameTaken(name.to_owned()))
    }
}

fn user_from(r: sqlx::any::AnyRow) -> UserRow {
    UserRow {
        id: r.get(0),
        name: r.get(1),
        email: r.get(2),
        password_hash: r.get(3),
        is_admin: r.get::<i64, _>(4) != 0,
    }
}

impl Db {
    /// Creates a user and their namespace in one transaction. Returns `NameTaken` when the
    /// name or email is in use.
    pub async fn create_user(
        &self,
        name: &str,
        email: &str,
        password_hash: &str,
        is_admin: bool,
    ) -> Result<i64, DbError> {
        let now = now();
        let mut tx = self.write.begin().await?;
        let email_taken = sqlx::query("SELECT 1 FROM users WHERE email = $1")
            .bind(email)
            .fetch_optional(&mut *tx)
            .await?;
        if email_taken.is_some() {
            return Err(DbError::NameTaken(name.to_owned()));
        }
        claim_namespace(&mut tx, name, "user", now).await?;
        // A concurrent sign-up with the same email passes the check above and loses here.
        let id = sqlx::query("INSERT INTO users (name, email, password_hash, is_admin, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id")
            .bind(name)
            .bind(email)
            .bind(password_hash)
            .bind(is_admin as i64)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(d) if d.is_unique_violation() => {
                    DbError::NameTaken(name.to_owned())
                }
                _ => DbError::Sqlx(e),
            })?
            .try_get(0)?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn user_by_name(&self, name: &str) -> Result<Option<UserRow>, DbError> {
        let row = sqlx::query(
            "SELECT id, name, email, password_hash, is_admin FROM users WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(user_from))
    }

    /// Creates an organization owned by `owner` (a user id).
    pub async fn create_org(&self, name: &str, owner: i64) -> Result<i64, DbError> {
        let now = now();
        let mut tx = self.write.begin().await?;
        claim_namespace(&mut tx, name, "org", now).await?;
        let id: i64 =
            sqlx::query("INSERT INTO orgs (name, created_at) VALUES ($1, $2) RETURNING id")
                .bind(name)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?
                .get(0);
        sqlx::query("INSERT INTO org_members (org_id, user_id, role) VALUES ($1, $2, 'owner')")
            .bind(id)
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Adds a user to an organization or changes their role. False when the org is unknown.
    pub async fn set_org_member(
        &self,
        org: &str,
        user: i64,
        role: OrgRole,
    ) -> Result<bool, DbError> {
        let r = sqlx::query(
            "INSERT INTO org_members (org_id, user_id, role) SELECT id, $1, $2 FROM orgs WHERE name = $3 \
             ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role",
        )
        .bind(user)
        .bind(role.as_str())
        .bind(org)
        .execute(&self.write)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    /// The kind of account that owns `namespace`, if any.
    pub async fn namespace_kind(&self, namespace: &str) -> Result<Option<NamespaceKind>, DbError> {
        let row = sqlx::query("SELECT kind FROM namespaces WHERE name = $1")
            .bind(namespace)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| {
            if r.get::<String, _>(0) == "org" {
                NamespaceKind::Org
            } else {
                NamespaceKind::User
            }
        }))
    }

    /// The user's role in the organization named `org`, if a member.
    /// The organizations a user belongs to, with their role, by name.
    pub async fn orgs_of_user(&self, user: i64) -> Result<Vec<(String, OrgRole)>, DbError> {
        let rows = sqlx::query(
            "SELECT o.name, m.role FROM org_members m JOIN orgs o ON o.id = m.org_id WHERE m.user_id = $1 ORDER BY o.name LIMIT 1000",
        )
        .bind(user)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| OrgRole::parse(&r.get::<String, _>(1)).map(|role| (r.get(0), role)))
            .collect())
    }

    pub async fn org_role(&self, org: &str, user: i64) -> Result<Option<OrgRole>, DbError> {
        let row = sqlx::query(
            "SELECT m.role FROM org_members m JOIN orgs o ON o.id = m.org_id WHERE o.name = $1 AND m.user_id = $2",
        )
        .bind(org)
        .bind(user)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.and_then(|r| OrgRole::parse(&r.get::<String, _>(0))))
    }

    /// Whether the repository named `name` is private (false when it does not exist yet).
    pub async fn repo_is_private(&self, name: &str) -> Result<bool, DbError> {
        let row = sqlx::query("SELECT private FROM repositories WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.is_some_and(|r| r.get::<i64, _>(0) != 0))
    }

    /// The token signing secret, created on first use. Safe when several nodes race: the
    /// first insert wins and everyone reads it back.
    pub async fn signing_secret(&self, fresh: &[u8]) -> Result<Vec<u8>, DbError> {
        sqlx::query("INSERT INTO signing_keys (id, secret, created_at) VALUES ('registry', $1, $2) ON CONFLICT (id) DO NOTHING")
            .bind(fresh)
            .bind(now())
            .execute(&self.write)
            .await?;
        let row = sqlx::query("SELECT secret FROM signing_keys WHERE id = 'registry'")
            .fetch_one(&self.write)
            .await?;
        Ok(row.get(0))
    }
}

/// An access token to record.
#[derive(Debug, Clone, Copy)]
pub struct NewTokenRow<'a> {
    pub id: &'a str,
    pub user_id: i64,
    pub label: &'a str,
    pub scope: &'a str,
    pub secret_hash: &'a str,
    pub expires_at: Option<i64>,
    /// For an organization access token, the organization's name.
    pub org: Option<&'a str>,
}

/// A personal access token's row (never the secret).
#[derive(Debug, Clone)]
pub struct AccessTokenRow {
    pub id: String,
    pub user_id: i64,
    pub label: String,
    pub scope: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The organization an organization access token belongs to.
    pub org: Option<String>,
}

fn token_from(r: sqlx::any::AnyRow) -> AccessTokenRow {
    AccessTokenRow {
        id: r.get(0),
        user_id: r.get(1),
        label: r.get(2),
        scope: r.get(3),
        created_at: r.get(4),
        expires_at: r.get(5),
        last_used_at: r.get(6),
        revoked_at: r.get(7),
        org: r.get(8),
    }
}

const TOKEN_COLUMNS: &str = "id, user_id, label, scope, created_at, expires_at, last_used_at, revoked_at, \
     (SELECT name FROM orgs WHERE orgs.id = access_tokens.org_id)";

impl Db {
    pub async fn create_access_token(&self, t: NewTokenRow<'_>) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO access_tokens (id, user_id, label, scope, secret_hash, created_at, expires_at, org_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, (SELECT id FROM orgs WHERE name = $8))",
        )
        .bind(t.id)
        .bind(t.user_id)
        .bind(t.label)
        .bind(t.scope)
        .bind(t.secret_hash)
        .bind(now())
        .bind(t.expires_at)
        .bind(t.org)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// The token with this secret hash, with its user.
    pub async fn access_token_by_hash(
        &self,
        secret_hash: &str,
    ) -> Result<Option<(AccessTokenRow, UserRow)>, DbError> {
        let sql = "SELECT t.id, t.user_id, t.label, t.scope, t.created_at, t.expires_at, t.last_used_at, t.revoked_at, \
             (SELECT name FROM orgs WHERE orgs.id = t.org_id), \
             u.id, u.name, u.email, u.password_hash, u.is_admin \
             FROM access_tokens t JOIN users u ON u.id = t.user_id WHERE t.secret_hash = $1";
        let row = sqlx::query(sql)
            .bind(secret_hash)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| {
            let user = UserRow {
                id: r.get(9),
                name: r.get(10),
                email: r.get(11),
                password_hash: r.get(12),
                is_admin: r.get::<i64, _>(13) != 0,
            };
            (token_from(r), user)
        }))
    }

    pub async fn access_token(&self, id: &str) -> Result<Option<AccessTokenRow>, DbError> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM access_tokens WHERE id = $1");
        Ok(sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.read)
            .await?
            .map(token_from))
    }

    /// An organization's tokens, newest first, at most `limit`.
    pub async fn access_tokens_of_org(
        &self,
        org: &str,
        limit: u32,
    ) -> Result<Vec<AccessTokenRow>, DbError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM access_tokens WHERE org_id = (SELECT id FROM orgs WHERE name = $1) \
             ORDER BY created_at DESC, id LIMIT $2"
        );
        Ok(sqlx::query(&sql)
            .bind(org)
            .bind(limit as i64)
            .fetch_all(&self.read)
            .await?
            .into_iter()
            .map(token_from)
            .collect())
    }

    /// A user's own tokens (not organization tokens), newest first, at most `limit`.
    pub async fn access_tokens_of(
        &self,
        user_id: i64,
        limit: u32,
    ) -> Result<Vec<AccessTokenRow>, DbError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM access_tokens WHERE user_id = $1 AND org_id IS NULL ORDER BY created_at DESC, id LIMIT $2"
        );
        Ok(sqlx::query(&sql)
            .bind(user_id)
            .bind(limit as i64)
            .fetch_all(&self.read)
            .await?
            .into_iter()
            .map(token_from)
            .collect())
    }

    /// Revokes a token. False when it does not exist or was already revoked.
    pub async fn revoke_access_token(&self, id: &str) -> Result<bool, DbError> {
        let r = sqlx::query(
            "UPDATE access_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now())
        .bind(id)
        .execute(&self.write)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Records a use of the token, at most once a minute (so using a token is not a write per
    /// request).
    pub async fn touch_access_token(&self, id: &str) -> Result<(), DbError> {
        let now = now();
        self.execute_relaxed(
            sqlx::query("UPDATE access_tokens SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)")
                .bind(now)
                .bind(id)
                .bind(now - 60),
        )
        .await?;
        Ok(())
    }
}

impl Db {
    /// Makes a repository private or public, creating it when missing.
    pub async fn set_repo_private(
        &self,
        name: &wharf_oci::RepoName,
        private: bool,
    ) -> Result<(), DbError> {
        self.ensure_repo(name).await?;
        sqlx::query("UPDATE repositories SET private = $1 WHERE name = $2")
            .bind(private as i64)
            .bind(name.as_str())
            .execute(&self.write)
            .await?;
        Ok(())
    }
}

impl Db {
    /// Members of an organization with their roles, by name, at most `limit` after `offset`.
    pub async fn org_members(
        &self,
        org: &str,
        offset: u32,
        limit: u32,
    ) -> Result<Vec<(String, OrgRole)>, DbError> {
        let rows = sqlx::query(
            "SELECT u.name, m.role FROM org_members m JOIN orgs o ON o.id = m.org_id JOIN users u ON u.id = m.user_id \
             WHERE o.name = $1 ORDER BY u.name LIMIT $2 OFFSET $3",
        )
        .bind(org)
        .bind(limit as i64)
        .bind(offset as i64)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| OrgRole::parse(&r.get::<String, _>(1)).map(|role| (r.get(0), role)))
            .collect())
    }

    pub async fn org_member_count(&self, org: &str) -> Result<u64, DbError> {
        let row = sqlx::query(
            "SELECT COUNT(*) FROM org_members m JOIN orgs o ON o.id = m.org_id WHERE o.name = $1",
        )
        .bind(org)
        .fetch_one(&self.read)
        .await?;
        Ok(row.get::<i64, _>(0) as u64)
    }
}

/// A per-repository permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RepoPermission {
    Read,
    Write,
    Admin,
}

impl RepoPermission {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

impl Db {
    /// Creates a team in an organization. False when the organization is unknown.
    pub async fn create_team(&self, org: &str, team: &str) -> Result<bool, DbError> {
        let r = sqlx::query("INSERT INTO teams (org_id, name, created_at) SELECT id, $1, $2 FROM orgs WHERE name = $3 ON CONFLICT DO NOTHING")
            .bind(team)
            .bind(now())
            .bind(org)
            .execute(&self.write)
            .await?;
        if r.rows_affected() == 0 && self.team_id(org, team).await?.is_some() {
            return Err(DbError::NameTaken(format!("{org}/{team}")));
        }
        Ok(r.rows_affected() > 0)
    }

    pub async fn team_id(&self, org: &str, team: &str) -> Result<Option<i64>, DbError> {
        let row = sqlx::query("SELECT t.id FROM teams t JOIN orgs o ON o.id = t.org_id WHERE o.name = $1 AND t.name = $2")
            .bind(org)
            .bind(team)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    pub async fn add_team_member(&self, team_id: i64, user_id: i64) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO team_members (team_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(team_id)
        .bind(user_id)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Grants (or changes) a permission on a repository, creating the repository if missing.
    pub async fn grant_repo_permission(
        &self,
        repo: &wharf_oci::RepoName,
        team: bool,
        grantee_id: i64,
        permission: RepoPermission,
    ) -> Result<(), DbError> {
        let repo_id = self.ensure_repo(repo).await?;
        sqlx::query(
            "INSERT INTO repo_permissions (repo_id, grantee_kind, grantee_id, permission) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (repo_id, grantee_kind, grantee_id) DO UPDATE SET permission = excluded.permission",
        )
        .bind(repo_id.0)
        .bind(if team { "team" } else { "user" })
        .bind(grantee_id)
        .bind(permission.as_str())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// The strongest permission `user_id` holds on repository `repo`, directly or via a team.
    pub async fn repo_permission(
        &self,
        repo: &str,
        user_id: i64,
    ) -> Result<Option<RepoPermission>, DbError> {
        let rows = sqlx::query(
            "SELECT p.permission FROM repo_permissions p JOIN repositories r ON r.id = p.repo_id \
             WHERE r.name = $1 AND ((p.grantee_kind = 'user' AND p.grantee_id = $2) \
             OR (p.grantee_kind = 'team' AND p.grantee_id IN (SELECT team_id FROM team_members WHERE user_id = $3)))",
        )
        .bind(repo)
        .bind(user_id)
        .bind(user_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| RepoPermission::parse(&r.get::<String, _>(0)))
            .max())
    }
}

impl Db {
    /// An organization's teams with their member counts, by name.
    pub async fn teams(
        &self,
        org: &str,
        offset: u32,
        limit: u32,
    ) -> Result<(u64, Vec<(String, u64)>), DbError> {
        let count: i64 = sqlx::query(
            "SELECT COUNT(*) FROM teams t JOIN orgs o ON o.id = t.org_id WHERE o.name = $1",
        )
        .bind(org)
        .fetch_one(&self.read)
        .await?
        .get(0);
        let rows = sqlx::query(
            "SELECT t.name, (SELECT COUNT(*) FROM team_members m WHERE m.team_id = t.id) \
             FROM teams t JOIN orgs o ON o.id = t.org_id WHERE o.name = $1 ORDER BY t.name LIMIT $2 OFFSET $3",
        )
        .bind(org)
        .bind(limit as i64)
        .bind(offset as i64)
        .fetch_all(&self.read)
        .await?;
        Ok((
            count as u64,
            rows.into_iter()
                .map(|r| (r.get(0), r.get::<i64, _>(1) as u64))
                .collect(),
        ))
    }

    /// A team's members, by name.
    pub async fn team_members(
        &self,
        team_id: i64,
        offset: u32,
        limit: u32,
    ) -> Result<(u64, Vec<String>), DbError> {
        let count: i64 = sqlx::query("SELECT COUNT(*) FROM team_members WHERE team_id = $1")
            .bind(team_id)
            .fetch_one(&self.read)
            .await?
            .get(0);
        let rows = sqlx::query(
            "SELECT u.name FROM team_members m JOIN users u ON u.id = m.user_id WHERE m.team_id = $1 ORDER BY u.name LIMIT $2 OFFSET $3",
        )
        .bind(team_id)
        .bind(limit as i64)
        .bind(offset as i64)
        .fetch_all(&self.read)
        .await?;
        Ok((count as u64, rows.into_iter().map(|r| r.get(0)).collect()))
    }
}
