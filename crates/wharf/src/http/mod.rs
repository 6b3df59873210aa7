//! HTTP: the router, the registry API and the mapping of errors to responses.

mod auth;
mod endpoint;
mod error;
mod hub_api;
mod registry;
mod token;
mod web;

#[cfg(test)]
mod authz_matrix;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};

use crate::app::AppState;

/// The client's address, from the socket (added to every request by the accept loop).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub std::net::SocketAddr);

/// The client's IP, when the request came through the accept loop.
pub(crate) fn client_ip(req: &axum::extract::Request) -> Option<std::net::IpAddr> {
    req.extensions().get::<ClientAddr>().map(|c| c.0.ip())
}

/// Every route wharf serves.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(web::home))
        .route("/login", get(web::login_form).post(web::login))
        .route("/logout", axum::routing::post(web::logout))
        .route("/healthz", get(healthz))
        .route("/token", get(token::token).post(token::token))
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
