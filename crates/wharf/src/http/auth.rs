//! Authorization of registry requests, in one place: who is asking (anonymous, a registry
//! token, or basic credentials), what the endpoint needs, and the answer when it is not
//! allowed (a `401` with a `Bearer` challenge that sends docker to `/token`, or `403 DENIED`).

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use wharf_hub::{Actions, HubError, Principal, TokenClaims};
use wharf_oci::{ErrorCode, RepoName};

use super::endpoint::Endpoint;
use crate::app::AppState;

/// The credentials a request carries.
#[derive(Debug)]
pub(crate) enum Caller {
    Anonymous,
    /// A registry token from `/token`: its grants are what it may do.
    Token(TokenClaims),
    /// Basic credentials checked against the account.
    Basic(wharf_hub::User),
}

impl Caller {
    /// The signed-in user's name; None for anonymous callers.
    pub(crate) fn user_name(&self) -> Option<&str> {
        match self {
            Self::Anonymous => None,
            Self::Token(claims) => Some(claims.sub.as_str()).filter(|s| !s.is_empty()),
            Self::Basic(user) => Some(user.name.as_str()),
        }
    }
}

/// What an endpoint needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Need {
    /// `/v2/`: any valid credentials (so `docker login` can tell good from bad ones).
    SignedIn,
    /// The catalog lists every repository: administrators only.
    Catalog,
    Repo(RepoName, Actions),
}

/// The needs of a request. `None` for paths whose repository name is invalid: those are
/// answered by the router with NAME_INVALID, which reveals nothing.
pub(crate) fn need(method: &axum::http::Method, endpoint: &Endpoint) -> Option<Need> {
    use Endpoint as E;
    use axum::http::Method as M;
    let repo = |name: &str, a: Actions| name.parse::<RepoName>().ok().map(|n| Need::Repo(n, a));
    match endpoint {
        E::Base => Some(Need::SignedIn),
        E::Catalog => Some(Need::Catalog),
        E::Tags { name } | E::Referrers { name, .. } => repo(name, Actions::PULL),
        E::Manifest { name, .. } | E::Blob { name, .. } => match *method {
            M::GET | M::HEAD => repo(name, Actions::PULL),
            M::DELETE => repo(name, Actions::DELETE),
            _ => repo(name, Actions::PUSH),
        },
        E::UploadStart { name } | E::Upload { name, .. } => repo(name, Actions::PUSH),
    }
}

/// Why a request was refused.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// No or invalid credentials, or a token without the needed scope: a `401` challenge.
    Challenge {
        need: Need,
        error: Option<&'static str>,
        message: String,
    },
    /// Valid basic credentials without the right: `403 DENIED`.
    Denied(String),
    /// Too many failed sign-ins: `429 TOOMANYREQUESTS` with `Retry-After`.
    Throttled(u64),
    Internal(String),
}

impl From<HubError> for Refusal {
    fn from(e: HubError) -> Self {
        Self::Internal(e.to_string())
    }
}

/// Reads the `Authorization` header.
pub(crate) async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    client: Option<std::net::IpAddr>,
) -> Result<Caller, Refusal> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(Caller::Anonymous);
    };
    let bad = |message: &str| Refusal::Challenge {
        need: Need::SignedIn,
        error: Some("invalid_token"),
        message: message.to_owned(),
    };
    let value = value
        .to_str()
        .map_err(|_| bad("the Authorization header is not valid text"))?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        match state.hub.verify_access_token(rest) {
            Ok(claims) => Ok(Caller::Token(claims)),
            Err(HubError::BadToken(_)) => Err(bad(
                "the bearer token is invalid or expired; get a new one from the token endpoint",
            )),
            Err(e) => Err(e.into()),
        }
    } else if scheme.eq_ignore_ascii_case("basic") {
        let (user, password) = decode_basic(rest)
            .ok_or_else(|| bad("the Basic credentials are not base64 of `user:password`"))?;
        match state
            .hub
            .authenticate_password(&user, &password, client)
            .await
        {
            Ok(u) => Ok(Caller::Basic(u)),
            Err(HubError::Throttled(wait)) => Err(Refusal::Throttled(wait)),
            Err(HubError::BadCredentials) => Err(Refusal::Challenge {
                need: Need::SignedIn,
                error: None,
                message: "incorrect username or password".into(),
            }),
            Err(e) => Err(e.into()),
        }
    } else {
        Err(bad(
            "the Authorization header must be `Bearer <token>` or `Basic <credentials>`",
        ))
    }
}

/// Decodes `base64(user:password)`.
pub(crate) fn decode_basic(value: &str) -> Option<(String, String)> {
    if value.len() > 4096 {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

/// What the caller may do to `repo`.
pub(crate) async fn allowed(
    state: &AppState,
    caller: &Caller,
    repo: &RepoName,
) -> Result<Actions, Refusal> {
    Ok(match caller {
        Caller::Token(claims) => claims.actions_on(repo.as_str()),
        Caller::Basic(u) => {
            state
                .hub
                .actions_for(&Principal::User(u.clone()), repo)
                .await?
        }
        Caller::Anonymous => state.hub.actions_for(&Principal::Anonymous, repo).await?,
    })
}

/// Checks `need` for `caller`.
pub(crate) async fn check(state: &AppState, caller: &Caller, need: Need) -> Result<(), Refusal> {
    match &need {
        Need::SignedIn => match caller {
            Caller::Anonymous => Err(Refusal::Challenge {
                need,
                error: None,
                message: "authentication required: sign in with `docker login`".into(),
            }),
            _ => Ok(()),
        },
        Need::Catalog => {
            let ok = match caller {
                Caller::Token(c) => c.has_catalog(),
                Caller::Basic(u) => u.is_admin,
                Caller::Anonymous => false,
            };
            if ok {
                Ok(())
            } else {
                refuse(
                    caller,
                    need,
                    "listing the catalog is for administrators".into(),
                )
            }
        }
        Need::Repo(repo, needed) => {
            let has = allowed(state, caller, repo).await?;
            if has.covers(*needed) {
                Ok(())
            } else {
                let message = format!(
                    "{} access to repository {repo} is required, and the request does not have it; the repository may not exist, or sign in with an account that may {}",
                    needed.names().join(","),
                    needed.names().join(" and "),
                );
                refuse(caller, need.clone(), message)
            }
        }
    }
}

fn refuse(caller: &Caller, need: Need, message: String) -> Result<(), Refusal> {
    Err(match caller {
        Caller::Basic(_) => Refusal::Denied(message),
        Caller::Token(_) => Refusal::Challenge {
            need,
            error: Some("insufficient_scope"),
            message,
        },
        Caller::Anonymous => Refusal::Challenge {
            need,
            error: None,
            message,
        },
    })
}

/// The token endpoint's URL as clients reach this server.
fn realm(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(base) = &state.public_url {
        return format!("{}/token", base.trim_end_matches('/'));
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.len() < 256 && !h.contains(['"', ' ', '/', '\\']))
        .unwrap_or("localhost");
    let scheme = if state.tls { "https" } else { "http" };
    format!("{scheme}://{host}/token")
}

/// The response for a refusal.
pub(crate) fn refusal_response(
    state: &AppState,
    headers: &HeaderMap,
    refusal: Refusal,
) -> Response {
    match refusal {
        Refusal::Challenge {
            need,
            error,
            message,
        } => {
            let mut challenge = format!(
                "Bearer realm=\"{}\",service=\"{}\"",
                realm(state, headers),
                state.hub.config().service
            );
            match &need {
                Need::Repo(repo, actions) => {
                    challenge.push_str(&format!(
                        ",scope=\"repository:{repo}:{}\"",
                        actions.names().join(",")
                    ));
                }
                Need::Catalog => challenge.push_str(",scope=\"registry:catalog:*\""),
                Need::SignedIn => {}
            }
            if let Some(e) = error {
                challenge.push_str(&format!(",error=\"{e}\""));
            }
            let mut resp = super::error::error_body(
                ErrorCode::Unauthorized,
                &message,
                serde_json::Value::Null,
            );
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            resp
        }
        Refusal::Throttled(wait) => super::error::throttled(wait),
        Refusal::Denied(message) => {
            super::error::error_body(ErrorCode::Denied, &message, serde_json::Value::Null)
        }
        Refusal::Internal(e) => {
            tracing::error!(error = %e, "authorization failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n").into_response()
        }
    }
}
