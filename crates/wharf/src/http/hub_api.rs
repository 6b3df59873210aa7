//! The Hub-style JSON API for accounts, at Docker Hub's paths and with its field names, so
//! scripts written for Docker Hub work with a changed base URL: `POST /v2/users/login`,
//! `POST /v2/auth/token`, `/v2/access-tokens[/{uuid}]`, `GET /v2/orgs/{org}/members`.
//! Errors are `{detail, message}`. Told apart from the registry by the first path segment,
//! which is a reserved namespace name.

use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde::Deserialize;
use wharf_hub::{HubError, User};

use crate::app::AppState;

/// Every JSON API endpoint, as (method, path pattern). The authorization matrix test has a
/// row for each; keep this list and `dispatch` together (and the router in `mod.rs`, for
/// the endpoints outside `/v2/`).
#[cfg(test)]
pub(crate) const ENDPOINTS: &[(&str, &str)] = &[
    ("POST", "/v2/users/login"),
    ("POST", "/v2/auth/token"),
    ("GET", "/v2/access-tokens"),
    ("POST", "/v2/access-tokens"),
    ("GET", "/v2/access-tokens/{uuid}"),
    ("PATCH", "/v2/access-tokens/{uuid}"),
    ("DELETE", "/v2/access-tokens/{uuid}"),
    ("GET", "/v2/orgs/{org}/members"),
    ("GET", "/v2/orgs/{org}/groups"),
    ("POST", "/v2/orgs/{org}/groups"),
    ("GET", "/v2/orgs/{org}/groups/{group}/members"),
    ("POST", "/v2/orgs/{org}/groups/{group}/members"),
    ("GET", "/v2/orgs/{org}/programs"),
    ("GET", "/v2/orgs/{org}/analytics/tracked-domains"),
    ("PUT", "/v2/orgs/{org}/analytics/tracked-domains/{domain}"),
    (
        "DELETE",
        "/v2/orgs/{org}/analytics/tracked-domains/{domain}",
    ),
    ("POST", "/v2/orgs/{org}/programs"),
    ("GET", "/v2/admin/program-applications"),
    ("POST", "/v2/admin/program-applications/{id}"),
    ("GET", "/v2/admin/analytics/namespaces"),
    ("PUT", "/v2/admin/analytics/namespaces/{namespace}"),
    ("DELETE", "/v2/admin/analytics/namespaces/{namespace}"),
    ("GET", "/v2/admin/rate-limits"),
    ("POST", "/v2/admin/rate-limits"),
    ("DELETE", "/v2/admin/rate-limits/{kind}/{subject}"),
    ("GET", "/v2/logos/{logo}"),
    ("GET", "/v2/search/repositories"),
    ("GET", "/v2/namespaces/{ns}"),
    ("GET", "/v2/namespaces/{ns}/logo"),
    ("GET", "/v2/namespaces/{ns}/repositories"),
    ("POST", "/v2/namespaces/{ns}/repositories"),
    ("GET", "/v2/namespaces/{ns}/repositories/{repo}"),
    ("PATCH", "/v2/namespaces/{ns}/repositories/{repo}"),
    ("DELETE", "/v2/namespaces/{ns}/repositories/{repo}"),
    ("GET", "/v2/namespaces/{ns}/repositories/{repo}/tags"),
    ("GET", "/v2/namespaces/{ns}/repositories/{repo}/tags/{tag}"),
    (
        "DELETE",
        "/v2/namespaces/{ns}/repositories/{repo}/tags/{tag}",
    ),
    (
        "DELETE",
        "/v2/namespaces/{ns}/repositories/{repo}/images/{digest}",
    ),
    ("POST", "/v2/namespaces/{ns}/repositories/{repo}/copy"),
    ("GET", "/v2/namespaces/{ns}/repositories/{repo}/logo"),
    ("PUT", "/v2/namespaces/{ns}/repositories/{repo}/logo"),
    ("DELETE", "/v2/namespaces/{ns}/repositories/{repo}/logo"),
    ("POST", "/v2/repositories"),
    ("GET", "/v2/repositories/{ns}"),
    ("GET", "/v2/repositories/{ns}/{repo}"),
    ("PATCH", "/v2/repositories/{ns}/{repo}"),
    ("DELETE", "/v2/repositories/{ns}/{repo}"),
    ("GET", "/v2/repositories/{ns}/{repo}/tags"),
    ("GET", "/v2/repositories/{ns}/{repo}/tags/{tag}"),
    ("DELETE", "/v2/repositories/{ns}/{repo}/tags/{tag}"),
    (
        "POST",
        "/api/publisher/analytics/v1/extensions/{ns}/{repo}/events",
    ),
];

/// First path segments (after `/v2/`) that belong to the JSON API.
pub(crate) const PREFIXES: &[&str] = &[
    "users",
    "auth",
    "access-tokens",
    "orgs",
    "namespaces",
    "repositories",
    "search",
    "admin",
    "logos",
];
const MAX_BODY: usize = 64 * 1024;
/// The answer to a request that needs a signed-in caller and has none.
pub(crate) const SIGN_IN_FIRST: &str =
    "sign in first: POST /v2/users/login, then send Authorization: Bearer <token>";
/// Program applications carry a logo in base64 (5 MB of image is about 6.7 MB of text).
const MAX_APPLICATION_BODY: usize = 9 * 1024 * 1024;
const DEFAULT_PAGE_SIZE: u32 = 25;
const MAX_PAGE_SIZE: u32 = 100;

/// Whether a `/v2/` path belongs to the JSON API.
pub(crate) fn owns(rest: &str) -> bool {
    PREFIXES.contains(&rest.split('/').next().unwrap_or(""))
}

pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "detail": message, "message": message }).to_string(),
    )
        .into_response()
}

pub(crate) fn json(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

pub(crate) fn from_hub(e: HubError) -> Response {
    match e {
        HubError::BadCredentials | HubError::BadToken(_) => {
            error(StatusCode::UNAUTHORIZED, &e.to_string())
        }
        HubError::Throttled(wait) => {
            let mut r = error(StatusCode::TOO_MANY_REQUESTS, &e.to_string());
            r.headers_mut().insert(header::RETRY_AFTER, wait.into());
            r
        }
        HubError::NotFound(_) => error(StatusCode::NOT_FOUND, &e.to_string()),
        HubError::InvalidName(_) | HubError::InvalidInput(_) => {
            error(StatusCode::BAD_REQUEST, &e.to_string())
        }
        HubError::NameTaken(_) | HubError::Conflict(_) => {
            error(StatusCode::CONFLICT, &e.to_string())
        }
        HubError::Forbidden(_) => error(StatusCode::FORBIDDEN, &e.to_string()),
        HubError::Internal(msg) => {
            tracing::error!(error = %msg, "hub API request failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
        }
    }
}

pub(crate) async fn dispatch(state: &AppState, rest: &str, req: Request) -> Response {
    let quota =
        match super::limits::check_api(state, req.headers(), super::client_ip(state, &req)).await {
            Ok(q) => q,
            Err(refused) => return refused,
        };
    let base = base_url(state, req.headers());
    let is_get = req.method() == Method::GET;
    let resp = route(state, rest, req).await;
    let mut resp = if is_get && resp.status() == StatusCode::OK {
        absolute_links(resp, &base).await
    } else {
        resp
    };
    if let Some(q) = quota {
        super::limits::set_api_headers(&mut resp, &q);
    }
    resp
}

/// This server's address as clients see it: `public_url`, else the scheme and `Host` of the
/// request.
pub(crate) fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(u) = &state.public_url {
        return u.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .unwrap_or("localhost");
    format!("{}://{host}", if state.tls { "https" } else { "http" })
}

/// Docker Hub's `next` and `previous` are absolute URLs; the handlers build paths, made
/// absolute here in one place.
async fn absolute_links(resp: Response, base: &str) -> Response {
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let Ok(bytes) = body.collect().await.map(|b| b.to_bytes()) else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "internal server error");
    };
    let mut value: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(_) => return Response::from_parts(parts, bytes.into()),
    };
    let mut changed = false;
    for key in ["next", "previous"] {
        if let Some(serde_json::Value::String(link)) = value.get_mut(key)
            && link.starts_with('/')
        {
            *link = format!("{base}{link}");
            changed = true;
        }
    }
    if !changed {
        return Response::from_parts(parts, bytes.into());
    }
    let mut parts = parts;
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, value.to_string().into())
}

async fn route(state: &AppState, rest: &str, req: Request) -> Response {
    let segs: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let method = req.method().clone();
    let client = super::client_ip(state, &req);
    let headers = req.headers().clone();
    let query = req.uri().query().unwrap_or("").to_owned();
    let limit = match segs.as_slice() {
        [.., "logo"] => super::hub_repos::MAX_LOGO_BODY,
        ["orgs", _, "programs"] => MAX_APPLICATION_BODY,
        _ => MAX_BODY,
    };
    let body = match read_body(req, limit).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match (method, segs.as_slice()) {
        (m, ["namespaces" | "repositories" | "search", ..]) => {
            super::hub_repos::dispatch(state, &segs, m, &headers, &query, body).await
        }
        (Method::GET, ["logos", digest]) => super::hub_repos::stored_logo(state, digest).await,
        (m, ["orgs", org, "programs"]) => match signed_in(state, &headers).await {
            Ok(user) => super::hub_repos::programs(state, &user, m, org, &body).await,
            Err(r) => r,
        },
        (m, ["admin", "program-applications", rest @ ..]) => match signed_in(state, &headers).await
        {
            Ok(user) => {
                super::hub_repos::admin_applications(state, &user, m, rest, &query, &body).await
            }
            Err(r) => r,
        },
        (m, ["orgs", org, "analytics", "tracked-domains", rest @ ..]) => {
            match signed_in(state, &headers).await {
                Ok(user) => super::hub_analytics::tracked_domains(state, &user, m, org, rest).await,
                Err(r) => r,
            }
        }
        (m, ["admin", "analytics", "namespaces", rest @ ..]) => {
            match signed_in(state, &headers).await {
                Ok(user) => {
                    super::hub_analytics::admin_analytics(state, &user, m, rest, &query).await
                }
                Err(r) => r,
            }
        }
        (m, ["admin", "rate-limits", rest @ ..]) => match signed_in(state, &headers).await {
            Ok(user) => {
                super::hub_repos::admin_rate_limits(state, &user, m, rest, &query, &body).await
            }
            Err(r) => r,
        },
        (Method::POST, ["users", "login"]) => login(state, &body, client).await,
        (Method::POST, ["auth", "token"]) => auth_token(state, &body, client).await,
        (m, ["access-tokens", rest @ ..]) => match signed_in(state, &headers).await {
            Ok(user) => access_tokens(state, &user, m, rest, &query, &body).await,
            Err(r) => r,
        },
        (Method::GET, ["orgs", org, "members"]) => match signed_in(state, &headers).await {
            Ok(user) => members(state, &user, org, &query).await,
            Err(r) => r,
        },
        (m, ["orgs", org, "groups", rest @ ..]) => match signed_in(state, &headers).await {
            Ok(user) => groups(state, &user, m, org, rest, &query, &body).await,
            Err(r) => r,
        },
        _ => error(StatusCode::NOT_FOUND, "no such API endpoint"),
    }
}

async fn read_body(req: Request, limit: usize) -> Result<bytes::Bytes, Response> {
    http_body_util::Limited::new(req.into_body(), limit)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|_| {
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("this request's body is limited to {limit} bytes"),
            )
        })
}

/// Parses a JSON body; the error is the message for a 400.
pub(crate) fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, String> {
    serde_json::from_slice(body)
        .map_err(|e| format!("the request body is not the expected JSON: {e}"))
}

/// The user a JSON API request is signed in as (`Authorization: Bearer <token from login>`).
async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<User, Response> {
    match super::hub_repos::principal(state, headers).await? {
        wharf_hub::Principal::User(u) => Ok(u),
        wharf_hub::Principal::Anonymous => Err(error(StatusCode::UNAUTHORIZED, SIGN_IN_FIRST)),
    }
}

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
}

async fn login(state: &AppState, body: &[u8], client: Option<std::net::IpAddr>) -> Response {
    let l: Login = match parse(body) {
        Ok(l) => l,
        Err(m) => return error(StatusCode::BAD_REQUEST, &m),
    };
    let user = match state
        .hub
        .authenticate_password(&l.username, &l.password, client)
        .await
    {
        Ok(u) => u,
        Err(e) => return from_hub(e),
    };
    match state.hub.issue_hub_token(&user) {
        Ok(t) => json(StatusCode::OK, serde_json::json!({ "token": t.token })),
        Err(e) => from_hub(e),
    }
}

#[derive(Deserialize)]
struct AuthToken {
    identifier: String,
    secret: String,
}

async fn auth_token(state: &AppState, body: &[u8], client: Option<std::net::IpAddr>) -> Response {
    let a: AuthToken = match parse(body) {
        Ok(a) => a,
        Err(m) => return error(StatusCode::BAD_REQUEST, &m),
    };
    let user = match state
        .hub
        .authenticate_password(&a.identifier, &a.secret, client)
        .await
    {
        Ok(u) => u,
        Err(e) => return from_hub(e),
    };
    match state.hub.issue_hub_token(&user) {
        Ok(t) => json(
            StatusCode::OK,
            serde_json::json!({ "access_token": t.token }),
        ),
        Err(e) => from_hub(e),
    }
}

/// Docker Hub's scope names for wharf's token scopes.
fn hub_scope(scope: &str) -> &'static str {
    match scope {
        "read" => "repo:read",
        "read-write" => "repo:write",
        "delete" => "repo:delete",
        _ => "repo:admin",
    }
}

fn wharf_scope(hub: &str) -> Option<&'static str> {
    match hub {
        "repo:read" | "read" => Some("read"),
        "repo:write" | "read-write" => Some("read-write"),
        "repo:delete" | "delete" => Some("delete"),
        "repo:admin" | "admin" => Some("admin"),
        _ => None,
    }
}

pub(crate) fn iso(t: Option<i64>) -> serde_json::Value {
    t.map_or(serde_json::Value::Null, |t| {
        super::token::rfc3339(t.max(0) as u64).into()
    })
}

fn token_json(user: &User, t: &wharf_db::AccessTokenRow) -> serde_json::Value {
    serde_json::json!({
        "uuid": t.id,
        "token_label": t.label,
        "scopes": [hub_scope(&t.scope)],
        "creator_ip": null,
        "creator_ua": null,
        "created_at": iso(Some(t.created_at)),
        "last_used": iso(t.last_used_at),
        "generated_by": "manual",
        "is_active": t.revoked_at.is_none(),
        "expires_at": iso(t.expires_at),
        "username": user.name,
    })
}

#[derive(Deserialize)]
struct NewToken {
    token_label: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    expires_in_days: Option<u32>,
}

#[derive(Deserialize)]
struct TokenPatch {
    is_active: Option<bool>,
}

fn page_params(query: &str) -> (u32, u32) {
    let mut page = 1u32;
    let mut size = DEFAULT_PAGE_SIZE;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "page" => page = v.parse().unwrap_or(1).max(1),
            "page_size" => {
                size = v
                    .parse()
                    .unwrap_or(DEFAULT_PAGE_SIZE)
                    .clamp(1, MAX_PAGE_SIZE)
            }
            _ => {}
        }
    }
    (page, size)
}

fn paged(
    path: &str,
    page: u32,
    size: u32,
    count: u64,
    results: Vec<serde_json::Value>,
) -> serde_json::Value {
    let next = (u64::from(page) * u64::from(size) < count)
        .then(|| format!("{path}?page={}&page_size={size}", page + 1));
    let previous = (page > 1).then(|| format!("{path}?page={}&page_size={size}", page - 1));
    serde_json::json!({ "count": count, "next": next, "previous": previous, "results": results })
}

async fn access_tokens(
    state: &AppState,
    user: &User,
    method: Method,
    rest: &[&str],
    query: &str,
    body: &[u8],
) -> Response {
    // Managing tokens needs a password sign-in or an admin-scoped token.
    if user.token_id.is_some() && user.cap != wharf_hub::Actions::ALL {
        return error(
            StatusCode::FORBIDDEN,
            "this access token may not manage access tokens; sign in with a password",
        );
    }
    match (method, rest) {
        (Method::GET, []) => {
            let all = match state.hub.access_tokens(&user.name).await {
                Ok(t) => t,
                Err(e) => return from_hub(e),
            };
            let (page, size) = page_params(query);
            let active = all.iter().filter(|t| t.revoked_at.is_none()).count();
            let start = (page - 1).saturating_mul(size) as usize;
            let results = all
                .iter()
                .skip(start)
                .take(size as usize)
                .map(|t| token_json(user, t))
                .collect();
            let mut body = paged("/v2/access-tokens", page, size, all.len() as u64, results);
            body["active_count"] = active.into();
            json(StatusCode::OK, body)
        }
        (Method::POST, []) => {
            let n: NewToken = match parse(body) {
                Ok(n) => n,
                Err(m) => return error(StatusCode::BAD_REQUEST, &m),
            };
            let scope = match n.scopes.as_slice() {
                [] => Some("read-write"),
                [one] => wharf_scope(one),
                _ => None,
            };
            let Some(scope) = scope else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "scopes must be one of repo:read, repo:write, repo:delete, repo:admin",
                );
            };
            match state
                .hub
                .add_access_token(&user.name, &n.token_label, scope, n.expires_in_days)
                .await
            {
                Ok(new) => {
                    let mut body = token_json(user, &new.token);
                    body["token"] = new.secret.into();
                    json(StatusCode::CREATED, body)
                }
                Err(e) => from_hub(e),
            }
        }
        (Method::GET, [id]) => match state.hub.own_access_token(user, id).await {
            Ok(t) => json(StatusCode::OK, token_json(user, &t)),
            Err(e) => from_hub(e),
        },
        (Method::PATCH, [id]) => {
            let p: TokenPatch = match parse(body) {
                Ok(p) => p,
                Err(m) => return error(StatusCode::BAD_REQUEST, &m),
            };
            if p.is_active == Some(true) {
                return error(
                    StatusCode::BAD_REQUEST,
                    "a revoked token cannot be reactivated; create a new one",
                );
            }
            if p.is_active == Some(false)
                && let Err(e) = state.hub.revoke_own_access_token(user, id).await
            {
                return from_hub(e);
            }
            match state.hub.own_access_token(user, id).await {
                Ok(t) => json(StatusCode::OK, token_json(user, &t)),
                Err(e) => from_hub(e),
            }
        }
        (Method::DELETE, [id]) => match state.hub.revoke_own_access_token(user, id).await {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(e) => from_hub(e),
        },
        _ => error(StatusCode::NOT_FOUND, "no such API endpoint"),
    }
}

async fn members(state: &AppState, user: &User, org: &str, query: &str) -> Response {
    let (page, size) = page_params(query);
    match state
        .hub
        .org_members(user, org, (page - 1).saturating_mul(size), size)
        .await
    {
        Ok((count, members)) => {
            let results = members
                .into_iter()
                .map(|(name, role)| serde_json::json!({ "username": name, "role": role.as_str() }))
                .collect();
            json(
                StatusCode::OK,
                paged(
                    &format!("/v2/orgs/{org}/members"),
                    page,
                    size,
                    count,
                    results,
                ),
            )
        }
        Err(e) => from_hub(e),
    }
}

#[derive(Deserialize)]
struct NewGroup {
    name: String,
}

#[derive(Deserialize)]
struct NewGroupMember {
    member: String,
}

/// Teams, called groups in Docker Hub's API.
async fn groups(
    state: &AppState,
    user: &User,
    method: Method,
    org: &str,
    rest: &[&str],
    query: &str,
    body: &[u8],
) -> Response {
    let (page, size) = page_params(query);
    match (method, rest) {
        (Method::GET, []) => match state
            .hub
            .teams(user, org, (page - 1).saturating_mul(size), size)
            .await
        {
            Ok((count, teams)) => {
                let results = teams
                    .into_iter()
                    .map(|(name, members)| serde_json::json!({ "name": name, "member_count": members }))
                    .collect();
                json(
                    StatusCode::OK,
                    paged(
                        &format!("/v2/orgs/{org}/groups"),
                        page,
                        size,
                        count,
                        results,
                    ),
                )
            }
            Err(e) => from_hub(e),
        },
        (Method::POST, []) => {
            match state.hub.org_owner(user, org).await {
                Ok(true) => {}
                Ok(false) => {
                    return error(
                        StatusCode::FORBIDDEN,
                        &format!("only owners of {org} may create its groups"),
                    );
                }
                Err(e) => return from_hub(e),
            }
            let g: NewGroup = match parse(body) {
                Ok(g) => g,
                Err(m) => return error(StatusCode::BAD_REQUEST, &m),
            };
            match state.hub.add_team(org, &g.name).await {
                Ok(()) => json(
                    StatusCode::CREATED,
                    serde_json::json!({ "name": g.name, "member_count": 0 }),
                ),
                Err(e) => from_hub(e),
            }
        }
        (Method::GET, [team, "members"]) => match state
            .hub
            .team_members(user, org, team, (page - 1).saturating_mul(size), size)
            .await
        {
            Ok((count, names)) => {
                let results = names
                    .into_iter()
                    .map(|n| serde_json::json!({ "username": n }))
                    .collect();
                json(
                    StatusCode::OK,
                    paged(
                        &format!("/v2/orgs/{org}/groups/{team}/members"),
                        page,
                        size,
                        count,
                        results,
                    ),
                )
            }
            Err(e) => from_hub(e),
        },
        (Method::POST, [team, "members"]) => {
            match state.hub.org_owner(user, org).await {
                Ok(true) => {}
                Ok(false) => {
                    return error(
                        StatusCode::FORBIDDEN,
                        &format!("only owners of {org} may change its groups"),
                    );
                }
                Err(e) => return from_hub(e),
            }
            let m: NewGroupMember = match parse(body) {
                Ok(m) => m,
                Err(m) => return error(StatusCode::BAD_REQUEST, &m),
            };
            match state.hub.add_team_member(org, team, &m.member).await {
                Ok(()) => json(StatusCode::OK, serde_json::json!({ "username": m.member })),
                Err(e) => from_hub(e),
            }
        }
        _ => error(StatusCode::NOT_FOUND, "no such API endpoint"),
    }
}
