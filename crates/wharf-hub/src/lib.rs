//! The hub: accounts, organizations, who may do what, and the tokens the registry accepts.
//! Access decisions are made here and only here; the HTTP layer asks and obeys.

mod access;
mod access_tokens;
mod accounts;
pub mod analytics;
mod analytics_actions;
mod analytics_queue;
mod analytics_reports;
pub use analytics_reports::{PullsInPeriod, ReportChunk, ReportKind};
mod analytics_access;
mod analytics_series;
pub mod content;
pub mod extensions;
mod limits;
mod programs;
mod repos;
mod throttle;
mod tokens;

use std::sync::Arc;
use std::time::Duration;

use wharf_db::Db;

pub use access::{Actions, DECISION_TTL, Principal, User};
pub use access_tokens::{NewAccessToken, TOKEN_PREFIX, TOKEN_SCOPES, scope_cap};
pub use accounts::validate_account_name;
pub use analytics_access::{AnalyticsAccess, MAX_SERIES_REPOS};
pub use analytics_series::{SERIES_MONTHS, SeriesPoint, series_periods};
pub use limits::{Limit, LimitConfig, PullPolicy, Quota, RULE_KINDS};
pub use programs::{Decision, PublisherProfile};
pub use repos::{Badge, PlatformView, RepoView, TagView, Transfer};
pub use throttle::{ACCOUNT_FAILURES, ADDRESS_FAILURES, WINDOW as THROTTLE_WINDOW};
pub use tokens::{Grant, IssuedToken, TokenClaims};
pub use wharf_db::{
    AnalyticsNamespaceRow, ApplicationRow, OrgRole, RateRuleRow, RepoOrder, RepoPatch,
    RepoPermission, TagOrder,
};

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("{0}")]
    InvalidName(String),
    #[error("{0}")]
    InvalidInput(String),
    #[error(
        "the name {0:?} is already taken by a user or an organization (or the email by a user)"
    )]
    NameTaken(String),
    #[error("{0} does not exist")]
    NotFound(String),
    /// Signed in, but without the right to do this.
    #[error("{0}")]
    Forbidden(String),
    /// The request conflicts with the current state (exists already, archived, decided).
    #[error("{0}")]
    Conflict(String),
    /// Too many failed sign-ins for this account or from this address.
    #[error("too many failed sign-in attempts; try again in {0} seconds")]
    Throttled(u64),
    /// Wrong name or password; deliberately says nothing about which.
    #[error("incorrect username or password")]
    BadCredentials,
    #[error("the token is invalid or expired: {0}")]
    BadToken(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<wharf_db::DbError> for HubError {
    fn from(e: wharf_db::DbError) -> Self {
        match e {
            wharf_db::DbError::NameTaken(n) => Self::NameTaken(n),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// Tunables of the hub.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// The `service` registry tokens are issued for (their audience).
    pub service: String,
    /// Lifetime of registry access tokens.
    pub token_ttl: Duration,
    /// Lifetime of refresh tokens (docker's identity token after `docker login`).
    pub refresh_ttl: Duration,
    /// Pull and API rate limits.
    pub limits: LimitConfig,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            service: "wharf".into(),
            token_ttl: Duration::from_secs(300),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            limits: LimitConfig::default(),
        }
    }
}

/// The hub service.
pub struct Hub {
    db: Db,
    config: HubConfig,
    keys: tokens::Keys,
    throttle: throttle::Throttle,
    decisions: access::Decisions,
    pulls: repos::PullCounter,
    limiter: limits::Limiter,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// Opens the hub: loads (or creates, on first start) the token signing key.
    pub async fn open(db: Db, config: HubConfig) -> Result<Arc<Self>, HubError> {
        let keys = tokens::Keys::load(&db).await?;
        Ok(Arc::new(Self {
            db,
            config,
            keys,
            throttle: throttle::Throttle::default(),
            decisions: access::Decisions::default(),
            pulls: repos::PullCounter::default(),
            limiter: limits::Limiter::default(),
        }))
    }

    pub fn config(&self) -> &HubConfig {
        &self.config
    }
}
