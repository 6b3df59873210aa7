//! Users and organizations: names, passwords, memberships.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::access::User;
use crate::{Hub, HubError, OrgRole};

/// Names the Hub-style API and the registry need for themselves.
const RESERVED: &[&str] = &[
    "library",
    "repositories",
    "namespaces",
    "users",
    "orgs",
    "auth",
    "access-tokens",
    "search",
    "logos",
    "token",
    "v1",
    "v2",
    "api",
    "admin",
    "root",
    "wharf",
    "login",
    "logout",
    "signup",
    "settings",
    "healthz",
    "static",
    "_catalog",
    "explore",
    "groups",
    "teams",
];

const MIN_PASSWORD: usize = 8;
const MAX_PASSWORD: usize = 1024;

/// Checks a user or organization name: one component of the repository-name grammar, 2 to 64
/// characters, not reserved.
pub fn validate_account_name(name: &str) -> Result<(), HubError> {
    let probe = format!("{name}/x");
    let ok = (2..=64).contains(&name.len())
        && !name.contains('/')
        && probe.parse::<wharf_oci::RepoName>().is_ok();
    if !ok {
        return Err(HubError::InvalidName(format!(
            "name {:?} is invalid: use 2 to 64 lowercase letters and digits, separated by '.', '_', '__' or '-'",
            name.chars().take(80).collect::<String>()
        )));
    }
    if RESERVED.contains(&name) {
        return Err(HubError::InvalidName(format!(
            "name {name:?} is reserved; choose another"
        )));
    }
    Ok(())
}

fn hash_password(password: &str) -> Result<String, HubError> {
    if password.chars().count() < MIN_PASSWORD || password.len() > MAX_PASSWORD {
        return Err(HubError::InvalidInput(format!(
            "password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long"
        )));
    }
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HubError::Internal(format!("hashing a password failed: {e}")))
}

/// A hash to verify against when the user does not exist, so both cases take as long.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("not a real password").unwrap_or_default())
}

impl Hub {
    /// Creates a user (their name becomes their namespace).
    pub async fn add_user(
        &self,
        name: &str,
        email: &str,
        password: &str,
        admin: bool,
    ) -> Result<User, HubError> {
        validate_account_name(name)?;
        let email = email.trim();
        if email.len() > 254
            || email.chars().any(|c| c.is_control() || c.is_whitespace())
            || !email.contains('@')
            || email.starts_with('@')
            || email.ends_with('@')
        {
            return Err(HubError::InvalidInput(format!(
                "email {email:?} is not an email address"
            )));
        }
        let password = password.to_owned();
        let hash = tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|e| HubError::Internal(e.to_string()))??;
        let id = self.db.create_user(name, email, &hash, admin).await?;
        Ok(User::password(id, name.to_owned(), admin))
    }

    /// Creates an organization owned by the user `owner`.
    pub async fn add_org(&self, name: &str, owner: &str) -> Result<(), HubError> {
        validate_account_name(name)?;
        let owner = self
            .db
            .user_by_name(owner)
            .await?
            .ok_or_else(|| HubError::NotFound(format!("user {owner:?}")))?;
        self.db.create_org(name, owner.id).await?;
        Ok(())
    }

    /// Adds `user` to `org` with `role`, or changes their role.
    pub async fn set_org_member(
        &self,
        org: &str,
        user: &str,
        role: OrgRole,
    ) -> Result<(), HubError> {
        let u = self
            .db
            .user_by_name(user)
            .await?
            .ok_or_else(|| HubError::NotFound(format!("user {user:?}")))?;
        if self.db.set_org_member(org, u.id, role).await? {
            self.decisions.clear();
            Ok(())
        } else {
            Err(HubError::NotFound(format!("organization {org:?}")))
        }
    }

    /// Checks a name and a password or access token. Unknown users cost the same time as
    /// wrong passwords.
    pub async fn authenticate_password(
        &self,
        name: &str,
        password: &str,
        client: Option<std::net::IpAddr>,
    ) -> Result<User, HubError> {
        if let Some(wait) = self.throttle.blocked(name, client) {
            return Err(HubError::Throttled(wait));
        }
        let result = self.check_secret(name, password).await;
        match &result {
            Ok(_) => self.throttle.succeeded(name),
            Err(HubError::BadCredentials) => self.throttle.failed(name, client),
            Err(_) => {}
        }
        result
    }

    async fn check_secret(&self, name: &str, password: &str) -> Result<User, HubError> {
        // No stored name holds a control character (and PostgreSQL refuses NUL in text).
        if name.chars().any(char::is_control) {
            return Err(HubError::BadCredentials);
        }
        if password.starts_with(crate::TOKEN_PREFIX) {
            return self.authenticate_token(name, password).await;
        }
        if name.len() > 64 || password.len() > MAX_PASSWORD {
            return Err(HubError::BadCredentials);
        }
        let row = self.db.user_by_name(name).await?;
        let hash = row
            .as_ref()
            .map_or_else(|| dummy_hash().to_owned(), |u| u.password_hash.clone());
        let password = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|h| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &h)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .map_err(|e| HubError::Internal(e.to_string()))?;
        match (row, ok) {
            (Some(u), true) => Ok(User::password(u.id, u.name, u.is_admin)),
            _ => Err(HubError::BadCredentials),
        }
    }

    /// An organization's members and roles, visible to its members and administrators.
    pub async fn org_members(
        &self,
        viewer: &User,
        org: &str,
        offset: u32,
        limit: u32,
    ) -> Result<(u64, Vec<(String, OrgRole)>), HubError> {
        let member = self.db.org_role(org, viewer.id).await?.is_some();
        if !member && !viewer.is_admin {
            // Outsiders cannot tell a private member list from a missing organization.
            return Err(HubError::NotFound(format!("organization {org:?}")));
        }
        let count = self.db.org_member_count(org).await?;
        Ok((count, self.db.org_members(org, offset, limit).await?))
    }

    /// The user named `name`, as a principal (for tokens whose subject is a user name).
    pub async fn user(&self, name: &str) -> Result<Option<User>, HubError> {
        Ok(self
            .db
            .user_by_name(name)
            .await?
            .map(|u| User::password(u.id, u.name, u.is_admin)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names() {
        for ok in ["alice", "my-org", "a1", "team.x"] {
            assert!(validate_account_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "Alice",
            "a/b",
            "-x",
            "library",
            "repositories",
            "v2",
            "a..b",
            &"a".repeat(65),
        ] {
            assert!(validate_account_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        let parsed = PasswordHash::new(&h).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"wrong", &parsed)
                .is_err()
        );
        assert!(hash_password("short").is_err());
    }
}
