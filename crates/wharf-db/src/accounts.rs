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

fn user_from(r: sqlx::sqlite::SqliteRow) -> UserRow {
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
        let taken = sqlx::query(
            "SELECT 1 FROM namespaces WHERE name = ? UNION ALL SELECT 1 FROM users WHERE email = ?",
        )
        .bind(name)
        .bind(email)
        .fetch_optional(&mut *tx)
        .await?;
        if taken.is_some() {
            return Err(DbError::NameTaken(name.to_owned()));
        }
        sqlx::query("INSERT INTO namespaces (name, kind, created_at) VALUES (?, 'user', ?)")
            .bind(name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let id = sqlx::query("INSERT INTO users (name, email, password_hash, is_admin, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id")
            .bind(name)
            .bind(email)
            .bind(password_hash)
            .bind(is_admin as i64)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?
            .get(0);
        tx.commit().await?;
        Ok(id)
    }

    pub async fn user_by_name(&self, name: &str) -> Result<Option<UserRow>, DbError> {
        let row = sqlx::query(
            "SELECT id, name, email, password_hash, is_admin FROM users WHERE name = ?",
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
        let taken = sqlx::query("SELECT 1 FROM namespaces WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Err(DbError::NameTaken(name.to_owned()));
        }
        sqlx::query("INSERT INTO namespaces (name, kind, created_at) VALUES (?, 'org', ?)")
            .bind(name)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let id: i64 = sqlx::query("INSERT INTO orgs (name, created_at) VALUES (?, ?) RETURNING id")
            .bind(name)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?
            .get(0);
        sqlx::query("INSERT INTO org_members (org_id, user_id, role) VALUES (?, ?, 'owner')")
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
            "INSERT INTO org_members (org_id, user_id, role) SELECT id, ?, ? FROM orgs WHERE name = ? \
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
        let row = sqlx::query("SELECT kind FROM namespaces WHERE name = ?")
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
    pub async fn org_role(&self, org: &str, user: i64) -> Result<Option<OrgRole>, DbError> {
        let row = sqlx::query(
            "SELECT m.role FROM org_members m JOIN orgs o ON o.id = m.org_id WHERE o.name = ? AND m.user_id = ?",
        )
        .bind(org)
        .bind(user)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.and_then(|r| OrgRole::parse(&r.get::<String, _>(0))))
    }

    /// Whether the repository named `name` is private (false when it does not exist yet).
    pub async fn repo_is_private(&self, name: &str) -> Result<bool, DbError> {
        let row = sqlx::query("SELECT private FROM repositories WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.is_some_and(|r| r.get::<i64, _>(0) != 0))
    }

    /// The token signing secret, created on first use. Safe when several nodes race: the
    /// first insert wins and everyone reads it back.
    pub async fn signing_secret(&self, fresh: &[u8]) -> Result<Vec<u8>, DbError> {
        sqlx::query("INSERT INTO signing_keys (id, secret, created_at) VALUES ('registry', ?, ?) ON CONFLICT (id) DO NOTHING")
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
