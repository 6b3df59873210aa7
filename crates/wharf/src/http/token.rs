//! The token endpoint of Docker's registry token authentication: `GET /token` (basic auth,
//! `account`, `scope`, `offline_token`) and the OAuth2 `POST /token` form (`grant_type`
//! `password` or `refresh_token`), as docker, podman, skopeo and containerd send them.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use wharf_hub::{Actions, Grant, HubError, Principal, User};
use wharf_oci::{ErrorCode, RepoName};

use super::auth::decode_basic;
use super::error::error_body;
use crate::app::AppState;

/// Largest form body accepted.
const MAX_FORM: usize = 64 * 1024;
/// Most scopes one token request may ask for.
const MAX_SCOPES: usize = 32;

pub(crate) async fn token(State(state): State<AppState>, req: Request) -> Response {
    match issue(&state, req).await {
        Ok(r) => r,
        Err(r) => r,
    }
}

fn unauthorized(message: &str) -> Response {
    let mut r = error_body(ErrorCode::Unauthorized, message, serde_json::Value::Null);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Basic realm=\"wharf\""),
    );
    r
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "token request failed");
    (StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n").into_response()
}

async fn issue(state: &AppState, req: Request) -> Result<Response, Response> {
    let method = req.method().clone();
    let headers = req.headers().clone();
    let client = super::client_ip(state, &req);
    let mut params: Vec<(String, String)> = req
        .uri()
        .query()
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .take(64)
                .collect()
        })
        .unwrap_or_default();
    if method == Method::POST {
        let body = http_body_util::Limited::new(req.into_body(), MAX_FORM)
            .collect()
            .await
            .map_err(|_| {
                error_body(
                    ErrorCode::Unsupported,
                    "the token request form is too large or unreadable",
                    serde_json::Value::Null,
                )
            })?
            .to_bytes();
        params.extend(form_urlencoded::parse(&body).into_owned().take(64));
    } else if method != Method::GET {
        return Err(error_body(
            ErrorCode::MethodNotAllowed,
            "use GET or POST on /token",
            serde_json::Value::Null,
        ));
    }
    let get = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };

    // Who is asking.
    let mut refresh_wanted =
        get("offline_token") == Some("true") || get("access_type") == Some("offline");
    let user: Option<User> = match get("grant_type") {
        Some("password") => {
            let (u, p) = (get("username").unwrap_or(""), get("password").unwrap_or(""));
            Some(password_user(state, u, p, client).await?)
        }
        Some("refresh_token") => {
            let t = get("refresh_token").unwrap_or("");
            let u = state
                .hub
                .verify_refresh_token(t)
                .await
                .map_err(|e| match e {
                    HubError::BadToken(_) => unauthorized(
                        "the refresh token is invalid or expired; run `docker login` again",
                    ),
                    other => internal(other),
                })?;
            refresh_wanted = false; // the client keeps the one it has
            Some(u)
        }
        Some(other) => {
            return Err(error_body(
                ErrorCode::Unsupported,
                &format!(
                    "grant_type {:?} is not supported; use password or refresh_token",
                    other.chars().take(40).collect::<String>()
                ),
                serde_json::Value::Null,
            ));
        }
        None => basic_user(state, &headers, client).await?,
    };
    if let (Some(u), Some(account)) = (&user, get("account"))
        && !account.is_empty()
        && account != u.name
        && Some(account) != u.org_token.as_deref()
    {
        return Err(unauthorized(
            "the account parameter does not match the credentials",
        ));
    }

    // What it may have: the intersection of what was asked and what the principal may do.
    let principal = user.clone().map_or(Principal::Anonymous, Principal::User);
    let mut grants: Vec<Grant> = Vec::new();
    let scopes: Vec<&str> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' '))
        .filter(|s| !s.is_empty())
        .collect();
    if scopes.len() > MAX_SCOPES {
        return Err(error_body(
            ErrorCode::Denied,
            &format!("at most {MAX_SCOPES} scopes per token request"),
            serde_json::Value::Null,
        ));
    }
    for scope in scopes {
        let mut parts = scope.splitn(3, ':');
        let (kind, name, actions) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        match kind {
            "repository" => {
                let repo: RepoName = name.parse().map_err(|e: wharf_oci::NameError| {
                    error_body(
                        ErrorCode::Denied,
                        &format!(
                            "scope {:?} names an invalid repository: {e}",
                            scope.chars().take(120).collect::<String>()
                        ),
                        serde_json::Value::Null,
                    )
                })?;
                let asked = Actions::parse(actions);
                let may = state
                    .hub
                    .actions_for(&principal, &repo)
                    .await
                    .map_err(internal)?;
                let granted = asked.intersect(may);
                grants.push(Grant {
                    kind: "repository".into(),
                    name: repo.as_str().to_owned(),
                    actions: granted.names().into_iter().map(str::to_owned).collect(),
                });
            }
            "registry" if name == "catalog" && user.as_ref().is_some_and(|u| u.is_admin) => {
                grants.push(Grant {
                    kind: "registry".into(),
                    name: "catalog".into(),
                    actions: vec!["*".into()],
                });
            }
            _ => {} // unknown scope types grant nothing
        }
    }
    let issued = state
        .hub
        .issue_access_token(user.as_ref(), grants)
        .map_err(internal)?;
    let mut body = serde_json::json!({
        "token": issued.token,
        "access_token": issued.token,
        "expires_in": issued.expires_in,
        "issued_at": rfc3339(issued.issued_at),
    });
    if let (true, Some(u)) = (refresh_wanted, &user) {
        let refresh = state.hub.issue_refresh_token(u).map_err(internal)?;
        body["refresh_token"] = refresh.token.into();
    }
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response())
}

async fn password_user(
    state: &AppState,
    name: &str,
    password: &str,
    client: Option<std::net::IpAddr>,
) -> Result<User, Response> {
    match state
        .hub
        .authenticate_password(name, password, client)
        .await
    {
        Ok(u) => Ok(u),
        Err(HubError::Throttled(wait)) => Err(super::error::throttled(wait)),
        Err(HubError::BadCredentials) => Err(unauthorized("incorrect username or password")),
        Err(e) => Err(internal(e)),
    }
}

async fn basic_user(
    state: &AppState,
    headers: &HeaderMap,
    client: Option<std::net::IpAddr>,
) -> Result<Option<User>, Response> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .map_err(|_| unauthorized("the Authorization header is not valid text"))?;
    let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(unauthorized("the token endpoint takes Basic credentials"));
    }
    let (u, p) = decode_basic(rest)
        .ok_or_else(|| unauthorized("the Basic credentials are not base64 of `user:password`"))?;
    password_user(state, &u, &p, client).await.map(Some)
}

/// Formats seconds since the epoch as an RFC 3339 UTC time.
pub(crate) fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_dates() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
