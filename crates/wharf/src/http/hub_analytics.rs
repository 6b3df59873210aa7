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

/// `/v2/orgs/{org}/analytics/tracked-domains`: the company domains an organization follows in
/// its Tracked companies report. GET lists them (members); `PUT …/{domain}` follows one and
/// `DELETE …/{domain}` stops (owners and editors). Outsiders get 404, as for a missing
/// organization.
pub(crate) async fn tracked_domains(
    state: &AppState,
    user: &User,
    method: Method,
    org: &str,
    rest: &[&str],
) -> Response {
    let hidden = || from_hub(HubError::NotFound(format!("organization {org:?}")));
    if user.org_token.as_deref().is_some_and(|o| o != org) {
        return hidden();
    }
    match state.hub.analytics_access(Some(user), org).await {
        Ok(a) if a.kind == "organization" => {}
        Ok(_) => {
            return error(
                StatusCode::NOT_FOUND,
                "tracked companies belong to organizations; this namespace is a user",
            );
        }
        Err(e) => return from_hub(e),
    }
    let list = |state: &AppState| {
        let org = org.to_owned();
        let analytics = state.analytics.clone();
        async move {
            match analytics.tracked_domains(&org).await {
                Ok(domains) => json(
                    StatusCode::OK,
                    serde_json::json!({ "count": domains.len(), "results": domains }),
                ),
                Err(e) => from_hub(e),
            }
        }
    };
    if method == Method::GET && rest.is_empty() {
        return list(state).await;
    }
    let [domain] = rest else {
        return error(StatusCode::NOT_FOUND, "no such API endpoint");
    };
    if !matches!(method, Method::PUT | Method::DELETE) {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "a tracked domain is followed with PUT and dropped with DELETE",
        );
    }
    let may_change = user.acts_as_admin()
        || matches!(
            state.hub.org_role_of(org, user).await,
            Ok(Some(wharf_db::OrgRole::Owner | wharf_db::OrgRole::Editor))
        );
    if !may_change || !user.cap.push {
        return from_hub(HubError::Forbidden(
            "only the organization's owners and editors choose its tracked companies".into(),
        ));
    }
    let domain = percent_encoding::percent_decode_str(domain).decode_utf8_lossy();
    let result = if method == Method::PUT {
        state.analytics.track_domain(org, &domain).await.map(|_| ())
    } else {
        match state.analytics.untrack_domain(org, &domain).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(HubError::NotFound(format!(
                "{org} does not track {:?}",
                domain.chars().take(64).collect::<String>()
            ))),
            Err(e) => Err(e),
        }
    };
    match result {
        Ok(()) if method == Method::PUT => list(state).await,
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => from_hub(e),
    }
}
