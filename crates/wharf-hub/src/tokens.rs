//! Registry tokens: short-lived JWTs in Docker's token format, and refresh tokens for
//! `docker login`. Signed with a secret wharf creates on first start and keeps in its database,
//! so every node verifies every other node's tokens.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::access::{Actions, User};
use crate::{Hub, HubError};

const ISSUER: &str = "wharf";

pub(crate) struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Keys {
    pub(crate) async fn load(db: &wharf_db::Db) -> Result<Self, HubError> {
        let mut fresh = [0u8; 64];
        rand::rng().fill_bytes(&mut fresh);
        let secret = db.signing_secret(&fresh).await?;
        Ok(Self {
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
        })
    }
}

/// One `access` entry of a registry token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenClaims {
    pub iss: String,
    /// The user name; empty for anonymous tokens.
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub nbf: u64,
    pub iat: u64,
    pub jti: String,
    #[serde(default)]
    pub access: Vec<Grant>,
    /// `access` for registry tokens, `refresh` for refresh tokens.
    #[serde(default)]
    pub typ: String,
    /// The access token a refresh token was issued through (re-checked on every refresh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pat: Option<String>,
}

impl TokenClaims {
    /// The actions this token grants on repository `name`.
    pub fn actions_on(&self, name: &str) -> Actions {
        let mut a = Actions::NONE;
        for g in &self.access {
            if g.kind == "repository" && g.name == name {
                let got = Actions::parse(&g.actions.join(","));
                a = Actions {
                    pull: a.pull || got.pull,
                    push: a.push || got.push,
                    delete: a.delete || got.delete,
                };
            }
        }
        a
    }

    /// Whether the token grants `registry:catalog:*`.
    pub fn has_catalog(&self) -> bool {
        self.access
            .iter()
            .any(|g| g.kind == "registry" && g.name == "catalog")
    }
}

/// A freshly issued token.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub expires_in: u64,
    pub issued_at: u64,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Hub {
    fn sign(
        &self,
        user: Option<&User>,
        access: Vec<Grant>,
        typ: &str,
        ttl: u64,
    ) -> Result<IssuedToken, HubError> {
        let iat = now();
        let claims = TokenClaims {
            iss: ISSUER.into(),
            sub: user.map(|u| u.name.clone()).unwrap_or_default(),
            aud: self.config.service.clone(),
            exp: iat + ttl,
            nbf: iat.saturating_sub(1),
            iat,
            jti: uuid::Uuid::new_v4().to_string(),
            access,
            typ: typ.into(),
            pat: user.and_then(|u| u.token_id.clone()),
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.keys.encoding)
                .map_err(|e| HubError::Internal(format!("signing a token failed: {e}")))?;
        Ok(IssuedToken {
            token,
            expires_in: ttl,
            issued_at: iat,
        })
    }

    /// Issues a registry access token.
    pub fn issue_access_token(
        &self,
        user: Option<&User>,
        access: Vec<Grant>,
    ) -> Result<IssuedToken, HubError> {
        self.sign(user, access, "access", self.config.token_ttl.as_secs())
    }

    /// Issues a refresh token (docker stores it as the identity token after `docker login`).
    pub fn issue_refresh_token(&self, user: &User) -> Result<IssuedToken, HubError> {
        self.sign(
            Some(user),
            Vec::new(),
            "refresh",
            self.config.refresh_ttl.as_secs(),
        )
    }

    fn verify(&self, token: &str, typ: &str) -> Result<TokenClaims, HubError> {
        if token.len() > 16 * 1024 {
            return Err(HubError::BadToken("token is too long".into()));
        }
        // Only HS256 is accepted: `alg: none` and every other algorithm are refused.
        let mut v = Validation::new(Algorithm::HS256);
        v.set_audience(&[&self.config.service]);
        v.set_issuer(&[ISSUER]);
        v.set_required_spec_claims(&["exp", "nbf", "aud", "iss"]);
        v.validate_nbf = true;
        v.leeway = 5;
        let data = jsonwebtoken::decode::<TokenClaims>(token, &self.keys.decoding, &v)
            .map_err(|e| HubError::BadToken(e.to_string()))?;
        if data.claims.typ != typ {
            return Err(HubError::BadToken(format!("this is not a {typ} token")));
        }
        Ok(data.claims)
    }

    /// Issues a token for the Hub-style JSON API (what `POST /v2/users/login` returns).
    pub fn issue_hub_token(&self, user: &User) -> Result<IssuedToken, HubError> {
        self.sign(Some(user), Vec::new(), "hub", 3600)
    }

    /// Verifies a JSON API token and returns its user, re-checking the access token it was
    /// issued through, if any.
    pub async fn verify_hub_token(&self, token: &str) -> Result<User, HubError> {
        self.verify_user_token(token, "hub").await
    }

    /// Issues a web session (the `wharf_session` cookie), valid for 8 hours.
    pub fn issue_session_token(&self, user: &User) -> Result<IssuedToken, HubError> {
        self.sign(Some(user), Vec::new(), "session", 8 * 3600)
    }

    /// Verifies a web session and returns its user.
    pub async fn verify_session_token(&self, token: &str) -> Result<User, HubError> {
        self.verify_user_token(token, "session").await
    }

    /// Verifies a token of kind `typ` whose subject is a user, who must still exist; a token
    /// issued through an access token re-checks it (revoked or expired → refused).
    async fn verify_user_token(&self, token: &str, typ: &str) -> Result<User, HubError> {
        let claims = self.verify(token, typ)?;
        let user = self
            .user(&claims.sub)
            .await?
            .ok_or_else(|| HubError::BadToken("the token's user no longer exists".into()))?;
        match &claims.pat {
            Some(id) => self.recheck_token(user, id).await,
            None => Ok(user),
        }
    }

    /// Verifies a registry access token.
    pub fn verify_access_token(&self, token: &str) -> Result<TokenClaims, HubError> {
        self.verify(token, "access")
    }

    /// Verifies a refresh token and returns its user, who must still exist.
    pub async fn verify_refresh_token(&self, token: &str) -> Result<User, HubError> {
        self.verify_user_token(token, "refresh").await
    }
}
