//! Rate limits on the wire: Docker Hub's pull headers on manifest GET and HEAD, the JSON
//! API's `X-RateLimit-*` headers, and the `429` answers with `Retry-After`.

use axum::http::{HeaderName, HeaderValue, header};
use axum::response::Response;
use wharf_hub::{Limit, Principal, Quota};
use wharf_oci::ErrorCode;

use super::error::error_body;
use crate::app::AppState;

/// `ratelimit-limit: 100;w=21600`, `ratelimit-remaining: 76;w=21600` and
/// `docker-ratelimit-source`, as Docker Hub sends them.
pub(crate) fn set_pull_headers(resp: &mut Response, limit: &Limit, quota: &Quota) {
    const LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
    const REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
    const SOURCE: HeaderName = HeaderName::from_static("docker-ratelimit-source");
    let h = resp.headers_mut();
    let w = quota.window_secs;
    for (name, value) in [
        (LIMIT, format!("{};w={w}", quota.limit)),
        (REMAINING, format!("{};w={w}", quota.remaining)),
        (SOURCE, limit.source.clone()),
    ] {
        if let Ok(v) = HeaderValue::try_from(value) {
            h.insert(name, v);
        }
    }
}

/// `429 TOOMANYREQUESTS` for a pull over the limit: the message says the limit, the window
/// and how to get more; `Retry-After` says when the window ends.
pub(crate) fn pull_refused(limit: &Limit, quota: &Quota, authenticated_limit: u64) -> Response {
    let window = duration(quota.window_secs);
    let wait = duration_short(quota.reset_in);
    let message = if limit.anonymous {
        let more = if authenticated_limit > limit.limit {
            format!(
                "Sign in with docker login for {authenticated_limit} pulls per {window}, or try again in {wait}"
            )
        } else {
            format!("Try again in {wait}, or ask the registry's administrator for a higher limit")
        };
        format!(
            "You have reached your pull rate limit of {} pulls per {window} as an anonymous user from {}. {more}.",
            limit.limit, limit.source
        )
    } else {
        format!(
            "You have reached your pull rate limit of {} pulls per {window}. Try again in {wait}, or ask the registry's administrator for a higher limit.",
            limit.limit
        )
    };
    let mut resp = error_body(
        ErrorCode::TooManyRequests,
        &message,
        serde_json::json!({ "limit": quota.limit, "window": quota.window_secs, "retry_after": quota.reset_in }),
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(quota.reset_in));
    set_pull_headers(&mut resp, limit, quota);
    resp
}

/// Counts a JSON API request against its client's limit (the signed-in user, else the
/// address). `Err` is the `429` to answer; `Ok(None)` when limits are off or the client is
/// exempt.
pub(crate) async fn check_api(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    ip: Option<std::net::IpAddr>,
) -> Result<Option<Quota>, Response> {
    if !state.hub.limits_enabled() {
        return Ok(None);
    }
    let who = super::hub_repos::principal(state, headers)
        .await
        .unwrap_or(Principal::Anonymous);
    match state.hub.take_api_request(&who, ip).await {
        Some(q) if !q.allowed => Err(api_refused(&q)),
        other => Ok(other),
    }
}

/// `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (the window's end, in
/// seconds since the epoch) on a JSON API answer.
pub(crate) fn set_api_headers(resp: &mut Response, quota: &Quota) {
    let h = resp.headers_mut();
    h.insert("x-ratelimit-limit", HeaderValue::from(quota.limit));
    h.insert("x-ratelimit-remaining", HeaderValue::from(quota.remaining));
    h.insert("x-ratelimit-reset", HeaderValue::from(quota.reset_at));
}

/// `429` on the JSON API, in its `{detail, message}` error shape, with `Retry-After`.
pub(crate) fn api_refused(quota: &Quota) -> Response {
    let message = format!(
        "too many requests: at most {} per {} for each user or address; try again in {}",
        quota.limit,
        duration(quota.window_secs),
        duration_short(quota.reset_in)
    );
    let mut resp = super::hub_api::error(axum::http::StatusCode::TOO_MANY_REQUESTS, &message);
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(quota.reset_in));
    set_api_headers(&mut resp, quota);
    resp
}

/// A window length in words: "6 hours", "1 minute", "90 seconds".
fn duration(secs: u64) -> String {
    let (n, unit) = match secs {
        s if s % 86_400 == 0 => (s / 86_400, "day"),
        s if s % 3600 == 0 => (s / 3600, "hour"),
        s if s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    if n == 1 {
        format!("{n} {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// A wait, short: "5h 59m", "3m 20s", "42s".
fn duration_short(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s}s"),
        _ => format!("{h}h {m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_waits_read_as_words() {
        assert_eq!(duration(21_600), "6 hours");
        assert_eq!(duration(3600), "1 hour");
        assert_eq!(duration(60), "1 minute");
        assert_eq!(duration(90), "90 seconds");
        assert_eq!(duration(86_400 * 2), "2 days");
        assert_eq!(duration_short(21_540), "5h 59m");
        assert_eq!(duration_short(200), "3m 20s");
        assert_eq!(duration_short(42), "42s");
    }
}
