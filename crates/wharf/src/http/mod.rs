//! HTTP: the router, the registry API and the mapping of errors to responses.

mod analytics_chart;
mod auth;
mod dvp;
mod endpoint;
mod error;
mod extensions;
mod hub_analytics;
mod hub_api;
mod hub_repos;
mod limits;
mod registry;
mod token;
mod web;
mod web_analytics;
mod web_hub;

#[cfg(test)]
mod authz_matrix;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};

use crate::app::AppState;

/// The client's address, from the socket (added to every request by the accept loop).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub std::net::SocketAddr);

/// The client's IP, when the request came through the accept loop. Behind a load balancer
/// listed in `trusted_proxies`, the address it recorded in `X-Forwarded-For` (the rightmost
/// one that is not itself a trusted proxy), so per-address sign-in limits apply per client.
pub(crate) fn client_ip(
    state: &AppState,
    req: &axum::extract::Request,
) -> Option<std::net::IpAddr> {
    let peer = req.extensions().get::<ClientAddr>()?.0.ip().to_canonical();
    if !state.trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<std::net::IpAddr>().ok())
        .map(|a| a.to_canonical())
        .collect::<Vec<_>>();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|a| !state.trusted_proxies.contains(a))
            .unwrap_or(peer),
    )
}

/// `/metrics`: counters in Prometheus' text format (totals only, nothing about anyone).
async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.analytics.metrics(),
    )
        .into_response()
}

/// Every route wharf serves.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(web_hub::home))
        .route("/search", get(web_hub::home))
        .route("/new", get(web_hub::new_repo).post(web_hub::new_repo_post))
        .route("/r/{ns}/{repo}", get(web_hub::repo_general))
        .route("/r/{ns}/{repo}/tags", get(web_hub::repo_tags))
        .route("/r/{ns}/{repo}/copy", post(web_hub::repo_copy))
        .route(
            "/r/{ns}/{repo}/tags/delete",
            post(web_hub::repo_tags_delete),
        )
        .route(
            "/r/{ns}/{repo}/settings",
            get(web_hub::repo_settings).post(web_hub::repo_settings_post),
        )
        .route(
            "/r/{ns}/{repo}/logo",
            get(web_hub::repo_logo).post(web_hub::repo_logo_post),
        )
        .route("/u/{ns}", get(web_hub::namespace))
        .route("/u/{ns}/logo", get(web_hub::namespace_logo))
        .route(
            "/orgs/{org}/programs",
            get(web_hub::programs).post(web_hub::programs_post),
        )
        .route("/orgs/{org}/analytics", get(web_analytics::org_analytics))
        .route(
            "/orgs/{org}/analytics/reports/{file}",
            get(web_analytics::org_analytics_report),
        )
        .route("/logos/{digest}", get(web_hub::stored_logo))
        .route("/admin", get(web_hub::admin))
        .route("/admin/applications/{id}", post(web_hub::admin_decide))
        .route(
            "/admin/analytics",
            post(web_analytics::admin_analytics_post),
        )
        .route(
            "/admin/rate-limits",
            get(web_hub::admin_rate_limits).post(web_hub::admin_rate_limits_post),
        )
        .route(
            "/admin/rate-limits/delete",
            post(web_hub::admin_rate_limits_delete),
        )
        .route(
            "/settings/tokens",
            get(web_hub::tokens).post(web_hub::tokens_post),
        )
        .route("/static/{file}", get(web_hub::static_file))
        .route("/login", get(web::login_form).post(web::login))
        .route("/logout", axum::routing::post(web::logout))
        .route("/healthz", get(healthz))
        .route("/token", get(token::token).post(token::token))
        .route("/v1/search", get(hub_repos::v1_search))
        .route("/metrics", get(metrics))
        .route(&format!("{}/{{*rest}}", dvp::BASE), any(dvp::dispatch))
        .route(
            "/api/publisher/analytics/v1/extensions/{ns}/{repo}/events",
            post(extensions::ingest),
        )
        .route("/v2", any(registry::dispatch))
        .route("/v2/", any(registry::dispatch))
        .route("/v2/{*rest}", any(registry::dispatch))
        .layer(axum::middleware::map_response(api_version_header))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        // A bug must cost one request a 500, never the connection or the process.
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .with_state(state)
}

async fn api_version_header(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    resp
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.registry.db().ping().await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
    }
}
