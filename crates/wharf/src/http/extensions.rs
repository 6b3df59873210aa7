//! `POST /api/publisher/analytics/v1/extensions/{ns}/{repo}/events`: the operator's collector
//! reports what Docker Desktop saw of an extension (installs, uninstalls, updates, openings).
//! The caller signs in as for the JSON API and must be able to push to the repository;
//! errors are the JSON API's `{detail, message}`.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use http_body_util::BodyExt;
use wharf_hub::extensions::ExtensionEventIn;
use wharf_oci::RepoName;

use super::hub_api::{SIGN_IN_FIRST, error, from_hub, json, parse};
use crate::app::AppState;

/// Largest request body accepted (1 MiB).
pub(crate) const MAX_EVENTS_BODY: usize = 1024 * 1024;

#[derive(serde::Deserialize)]
struct Batch {
    events: Vec<ExtensionEventIn>,
}

pub(crate) async fn ingest(
    State(state): State<AppState>,
    Path((ns, repo)): Path<(String, String)>,
    req: Request,
) -> Response {
    let ip = super::client_ip(&state, &req);
    let quota = match super::limits::check_api(&state, req.headers(), ip).await {
        Ok(q) => q,
        Err(refused) => return refused,
    };
    let mut resp = answer(&state, &ns, &repo, req).await;
    if let Some(q) = quota {
        super::limits::set_api_headers(&mut resp, &q);
    }
    resp
}

async fn answer(state: &AppState, ns: &str, repo: &str, req: Request) -> Response {
    let who = match super::hub_repos::principal(state, req.headers()).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if who.user().is_none() {
        return error(StatusCode::UNAUTHORIZED, SIGN_IN_FIRST);
    }
    let name: RepoName = match format!("{ns}/{repo}").parse() {
        Ok(n) => n,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("{ns}/{repo} is not a valid repository name: {e}"),
            );
        }
    };
    let access = match state.extensions.authorize(&state.hub, &who, &name).await {
        Ok(a) => a,
        Err(e) => return from_hub(e),
    };
    let body = match http_body_util::Limited::new(req.into_body(), MAX_EVENTS_BODY)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!(
                    "this request's body is limited to {MAX_EVENTS_BODY} bytes; send the events in several requests"
                ),
            );
        }
    };
    let batch: Batch = match parse(&body) {
        Ok(b) => b,
        Err(m) => return error(StatusCode::BAD_REQUEST, &m),
    };
    match state.extensions.ingest(&access, &batch.events).await {
        Ok(n) => json(StatusCode::ACCEPTED, serde_json::json!({ "accepted": n })),
        Err(e) => from_hub(e),
    }
}
