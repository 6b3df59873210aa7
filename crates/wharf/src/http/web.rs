//! Web pages: home, sign-in and sign-out. Pages are askama templates rendered on the server.
//! A session is an HttpOnly, SameSite cookie holding a signed session token; every form that
//! changes state carries a CSRF token that must match the `wharf_csrf` cookie (double submit),
//! and that cookie is SameSite=Strict.

use askama::Template;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use http_body_util::BodyExt;
use rand::RngCore;
use wharf_hub::HubError;

use crate::app::AppState;

const SESSION_COOKIE: &str = "wharf_session";
pub(crate) const CSRF_COOKIE: &str = "wharf_csrf";
const MAX_FORM: usize = 16 * 1024;

#[derive(Template)]
#[template(path = "login.html")]
struct Login {
    user: Option<String>,
    is_admin: bool,
    csrf: String,
    username: String,
    error: Option<String>,
}

pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn new_csrf() -> String {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// Compares without stopping at the first difference.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn secure(state: &AppState) -> &'static str {
    if state.tls
        || state
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    {
        "; Secure"
    } else {
        ""
    }
}

/// The page's CSRF token: the cookie's, or a new one to set.
pub(crate) fn csrf_for(headers: &HeaderMap) -> (String, bool) {
    match cookie(headers, CSRF_COOKIE).filter(|c| c.len() == 43) {
        Some(c) => (c.to_owned(), false),
        None => (new_csrf(), true),
    }
}

pub(crate) fn page(
    state: &AppState,
    status: StatusCode,
    html: Result<String, askama::Error>,
    csrf: Option<&str>,
) -> Response {
    let body = match html {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "rendering a page failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n").into_response();
        }
    };
    let mut resp = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response();
    let h = resp.headers_mut();
    h.insert("content-security-policy", HeaderValue::from_static("default-src 'self'; style-src 'self' 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(c) = csrf {
        let v = format!(
            "{CSRF_COOKIE}={c}; Path=/; HttpOnly; SameSite=Strict{}",
            secure(state)
        );
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.append(header::SET_COOKIE, v);
        }
    }
    resp
}

pub(crate) async fn session_user(state: &AppState, headers: &HeaderMap) -> Option<wharf_hub::User> {
    let token = cookie(headers, SESSION_COOKIE)?;
    state.hub.verify_session_token(token).await.ok()
}

fn redirect(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

pub(crate) async fn login_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if session_user(&state, &headers).await.is_some() {
        return redirect("/");
    }
    let (csrf, fresh) = csrf_for(&headers);
    let html = Login {
        user: None,
        is_admin: false,
        csrf: csrf.clone(),
        username: String::new(),
        error: None,
    }
    .render();
    page(&state, StatusCode::OK, html, fresh.then_some(&csrf))
}

/// Reads a form body and checks its CSRF token against the cookie.
async fn checked_form(req: Request) -> Result<(HeaderMap, Vec<(String, String)>), Response> {
    checked_form_limited(req, MAX_FORM).await
}

/// Reads a form body of at most `limit` bytes and checks its CSRF token against the cookie.
pub(crate) async fn checked_form_limited(
    req: Request,
    limit: usize,
) -> Result<(HeaderMap, Vec<(String, String)>), Response> {
    let headers = req.headers().clone();
    let body = http_body_util::Limited::new(req.into_body(), limit)
        .collect()
        .await
        .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "form too large\n").into_response())?
        .to_bytes();
    let form: Vec<(String, String)> = form_urlencoded::parse(&body)
        .into_owned()
        .take(256)
        .collect();
    let sent = form
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    check_csrf(&headers, sent)?;
    Ok((headers, form))
}

/// Checks a form's CSRF token against the cookie (double submit).
#[allow(clippy::result_large_err)] // the refusal, once per request
pub(crate) fn check_csrf(headers: &HeaderMap, sent: &str) -> Result<(), Response> {
    match cookie(headers, CSRF_COOKIE) {
        Some(c) if !sent.is_empty() && same(c, sent) => Ok(()),
        _ => Err((
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "the form's security token is missing or does not match; reload the page and try again\n",
        )
            .into_response()),
    }
}

pub(crate) async fn login(State(state): State<AppState>, req: Request) -> Response {
    let client = super::client_ip(&state, &req);
    let (headers, form) = match checked_form(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let get = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (username, password) = (get("username"), get("password"));
    let (csrf, _) = csrf_for(&headers);
    let fail = |status: StatusCode, message: String| {
        let html = Login {
            user: None,
            is_admin: false,
            csrf: csrf.clone(),
            username: username.chars().take(64).collect(),
            error: Some(message),
        }
        .render();
        page(&state, status, html, None)
    };
    let user = match state
        .hub
        .authenticate_password(&username, &password, client)
        .await
    {
        Ok(u) => u,
        Err(HubError::BadCredentials) => {
            return fail(
                StatusCode::UNAUTHORIZED,
                "Incorrect username or password.".into(),
            );
        }
        Err(e @ HubError::Throttled(_)) => {
            return fail(StatusCode::TOO_MANY_REQUESTS, format!("{e}."));
        }
        Err(e) => {
            tracing::error!(error = %e, "sign-in failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n").into_response();
        }
    };
    let session = match state.hub.issue_session_token(&user) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "issuing a session failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n").into_response();
        }
    };
    let mut resp = redirect("/");
    let v = format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        session.token,
        session.expires_in,
        secure(&state)
    );
    if let Ok(v) = HeaderValue::from_str(&v) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

pub(crate) async fn logout(State(state): State<AppState>, req: Request) -> Response {
    if let Err(r) = checked_form(req).await {
        return r;
    }
    let mut resp = redirect("/login");
    let v = format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
        secure(&state)
    );
    if let Ok(v) = HeaderValue::from_str(&v) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}
