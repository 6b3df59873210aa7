//! Personal access tokens: a random secret shown once, stored as a SHA-256 hash (the secret has
//! 256 bits of entropy, so a slow hash would add nothing), scoped, optionally expiring,
//! revocable, with a last-used time. Usable wherever a password is.

use base64::Engine as _;
use rand::RngCore;
use sha2::Digest as _;
use wharf_db::AccessTokenRow;

use crate::access::{Actions, User};
use crate::{Hub, HubError};

/// Every access token secret starts with this, so wharf can tell one from a password.
pub const TOKEN_PREFIX: &str = "wharf_pat_";

/// The scopes an access token may have.
pub const TOKEN_SCOPES: &[&str] = &["read", "read-write", "delete", "admin"];

/// The registry actions a token scope allows at most.
pub fn scope_cap(scope: &str) -> Actions {
    match scope {
        "read" => Actions::PULL,
        "read-write" => Actions::PUSH,
        "delete" | "admin" => Actions::ALL,
        _ => Actions::NONE,
    }
}

fn hash_secret(secret: &str) -> String {
    hex_lower(&sha2::Sha256::digest(secret.as_bytes()))
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A token just created: its row and the secret, which is never shown again.
#[derive(Debug)]
pub struct NewAccessToken {
    pub token: AccessTokenRow,
    pub secret: String,
}

impl Hub {
    /// Creates an access token for the user `user_name`.
    pub async fn add_access_token(
        &self,
        user_name: &str,
        label: &str,
        scope: &str,
        expires_in_days: Option<u32>,
    ) -> Result<NewAccessToken, HubError> {
        self.add_token(user_name, label, scope, expires_in_days, None)
            .await
    }

    /// Creates an organization access token. Only the organization's owners (and
    /// administrators) may.
    pub async fn add_org_access_token(
        &self,
        creator: &str,
        org: &str,
        label: &str,
        scope: &str,
        expires_in_days: Option<u32>,
    ) -> Result<NewAccessToken, HubError> {
        let user = self
            .user(creator)
            .await?
            .ok_or_else(|| HubError::NotFound(format!("user {creator:?}")))?;
        let owner = self.db.org_role(org, user.id).await? == Some(wharf_db::OrgRole::Owner);
        if !owner && !user.is_admin {
            return Err(HubError::InvalidInput(format!(
                "only owners of {org} may create its access tokens, and {creator} is not one"
            )));
        }
        self.add_token(creator, label, scope, expires_in_days, Some(org))
            .await
    }

    /// An organization's tokens, newest first.
    pub async fn org_access_tokens(&self, org: &str) -> Result<Vec<AccessTokenRow>, HubError> {
        Ok(self.db.access_tokens_of_org(org, 1000).await?)
    }

    async fn add_token(
        &self,
        user_name: &str,
        label: &str,
        scope: &str,
        expires_in_days: Option<u32>,
        org: Option<&str>,
    ) -> Result<NewAccessToken, HubError> {
        if !TOKEN_SCOPES.contains(&scope) {
            return Err(HubError::InvalidInput(format!(
                "scope {scope:?} is not one of {}",
                TOKEN_SCOPES.join(", ")
            )));
        }
        let label = label.trim();
        if label.is_empty() || label.chars().count() > 100 || label.chars().any(char::is_control) {
            return Err(HubError::InvalidInput(
                "a token label is 1 to 100 printable characters".into(),
            ));
        }
        if expires_in_days.is_some_and(|d| d == 0 || d > 3650) {
            return Err(HubError::InvalidInput(
                "expiry must be 1 to 3650 days".into(),
            ));
        }
        let user = self
            .user(user_name)
            .await?
            .ok_or_else(|| HubError::NotFound(format!("user {user_name:?}")))?;
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let secret = format!(
            "{TOKEN_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        );
        let id = uuid::Uuid::new_v4().to_string();
        let expires_at = expires_in_days.map(|d| wharf_db::now() + i64::from(d) * 86_400);
        let hash = hash_secret(&secret);
        self.db
            .create_access_token(wharf_db::NewTokenRow {
                id: &id,
                user_id: user.id,
                label,
                scope,
                secret_hash: &hash,
                expires_at,
                org,
            })
            .await?;
        let token = self
            .db
            .access_token(&id)
            .await?
            .ok_or_else(|| HubError::Internal("token vanished after creation".into()))?;
        Ok(NewAccessToken { token, secret })
    }

    /// The user an access token signs in, when it is valid for `name`.
    pub(crate) async fn authenticate_token(
        &self,
        name: &str,
        secret: &str,
    ) -> Result<User, HubError> {
        if secret.len() > 200 {
            return Err(HubError::BadCredentials);
        }
        let Some((token, user)) = self.db.access_token_by_hash(&hash_secret(secret)).await? else {
            return Err(HubError::BadCredentials);
        };
        let expired = token.expires_at.is_some_and(|t| t <= wharf_db::now());
        // A personal token signs in its user; an organization token signs in as the org.
        let login = token.org.as_deref().unwrap_or(&user.name);
        if token.revoked_at.is_some() || expired || (!name.is_empty() && name != login) {
            return Err(HubError::BadCredentials);
        }
        if let Err(e) = self.db.touch_access_token(&token.id).await {
            tracing::warn!(error = %e, "could not record an access token's use");
        }
        Ok(User {
            id: user.id,
            name: user.name,
            is_admin: user.is_admin,
            cap: scope_cap(&token.scope),
            token_id: Some(token.id),
            org_token: token.org,
        })
    }

    /// Re-checks the access token a refresh token was issued through.
    pub(crate) async fn recheck_token(&self, user: User, token_id: &str) -> Result<User, HubError> {
        let token = self
            .db
            .access_token(token_id)
            .await?
            .ok_or_else(|| HubError::BadToken("its access token no longer exists".into()))?;
        let expired = token.expires_at.is_some_and(|t| t <= wharf_db::now());
        if token.revoked_at.is_some() || expired || token.user_id != user.id {
            return Err(HubError::BadToken(
                "its access token was revoked or has expired".into(),
            ));
        }
        Ok(User {
            cap: scope_cap(&token.scope),
            token_id: Some(token.id),
            org_token: token.org,
            ..user
        })
    }

    /// A user's tokens, newest first.
    pub async fn access_tokens(&self, user_name: &str) -> Result<Vec<AccessTokenRow>, HubError> {
        let user = self
            .user(user_name)
            .await?
            .ok_or_else(|| HubError::NotFound(format!("user {user_name:?}")))?;
        Ok(self.db.access_tokens_of(user.id, 1000).await?)
    }

    /// Revokes one of `owner`'s tokens; someone else's token is "not found".
    pub async fn revoke_own_access_token(&self, owner: &User, id: &str) -> Result<(), HubError> {
        match self.db.access_token(id).await? {
            Some(t) if t.user_id == owner.id => self.revoke_access_token(id).await,
            _ => Err(HubError::NotFound(format!("access token {id:?}"))),
        }
    }

    /// One of `owner`'s tokens.
    pub async fn own_access_token(
        &self,
        owner: &User,
        id: &str,
    ) -> Result<AccessTokenRow, HubError> {
        match self.db.access_token(id).await? {
            Some(t) if t.user_id == owner.id => Ok(t),
            _ => Err(HubError::NotFound(format!("access token {id:?}"))),
        }
    }

    pub async fn revoke_access_token(&self, id: &str) -> Result<(), HubError> {
        if self.db.revoke_access_token(id).await? {
            Ok(())
        } else {
            Err(HubError::NotFound(format!("active access token {id:?}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_cap_actions() {
        assert_eq!(scope_cap("read"), Actions::PULL);
        assert_eq!(scope_cap("read-write"), Actions::PUSH);
        assert_eq!(scope_cap("delete"), Actions::ALL);
        assert_eq!(scope_cap("bogus"), Actions::NONE);
        assert_eq!(hash_secret("x").len(), 64);
    }
}
