//! `/v2/admin/analytics/namespaces`: which namespaces have analytics. GET lists them
//! (paged; those an administrator enabled and those in a program), `PUT …/{namespace}`
//! enables a namespace's analytics, `DELETE …/{namespace}` takes them away. Administrators only.

use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use wharf_hub::{Badge, HubError, User};

use super::hub_api::{error, from_hub, iso, json};
use super::hub_repos::{Paging, params};
use crate::app::AppState;

fn namespace_json(r: &wharf_hub::AnalyticsNamespaceRow) -> serde_json::Value {
    serde_json::json!({
        "namespace": r.namespace,
        "enabled_by_admin": r.enabled_by.is_some(),
        "enabled_by": r.enabled_by,
        "enabled_at": r.enabled_at.map_or(serde_json::Value::Null, |t| iso(Some(t))),
        "program": r.program.as_deref().and_then(Badge::parse).map(Badge::slug),
    })
}

pub(crate) async fn admin_analytics(
    state: &AppState,
    user: &User,
    method: Method,
    rest: &[&str],
    query: &str,
) -> Response {
    if !user.acts_as_admin() {
        return from_hub(HubError::Forbidden(
            "only administrators (signed in with their password or an admin-scope token) choose which namespaces have analytics".into(),
        ));
    }
    let params = params(query);
    match (method, rest) {
        (Method::GET, []) => {
            let paging = match Paging::from(&params) {
                Ok(p) => p,
                Err(r) => return r,
            };
            match state
                .hub
                .analytics_namespaces(user, paging.offset(), paging.size)
                .await
            {
                Ok((count, rows)) => json(
                    StatusCode::OK,
                    paging.body(
                        "/v2/admin/analytics/namespaces",
                        &params,
                        count,
                        rows.iter().map(namespace_json).collect(),
                    ),
                ),
                Err(e) => from_hub(e),
            }
        }
        (Method::PUT, [ns]) => {
            let ns = percent_encoding::percent_decode_str(ns).decode_utf8_lossy();
            match state.hub.enable_analytics(user, &ns).await {
                Ok(()) => json(
                    StatusCode::OK,
                    serde_json::json!({ "namespace": ns, "enabled_by_admin": true }),
                ),
                Err(e) => from_hub(e),
            }
        }
        (Method::DELETE, [ns]) => {
            let ns = percent_encoding::percent_decode_str(ns).decode_utf8_lossy();
            match state.hub.disable_analytics(user, &ns).await {
                Ok(()) => StatusCode::NO_CONTENT.into_response(),
                Err(e) => from_hub(e),
            }
        }
        _ => error(StatusCode::NOT_FOUND, "no such API endpoint"),
    }
}
