//! The Hub-style JSON API for repositories, tags, search, logos and programs, at Docker Hub's
//! paths and with its field names: `/v2/namespaces/{ns}/repositories[/{repo}[/tags[/{tag}]]]`,
//! the older `/v2/repositories/{ns}/{repo}/…` forms, `/v2/search/repositories`, and `/v1/search`
//! for `docker search`. Reading public repositories needs no sign-in; a private repository the
//! caller may not see answers exactly as a missing one.
// Helpers return the finished error `Response` as their `Err`, once per request: its size
// does not matter.
#![allow(clippy::result_large_err)]

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;
use wharf_hub::{
    Badge, Decision, HubError, Principal, PublisherProfile, RepoOrder, RepoPatch, RepoView,
    TagOrder, TagView, Transfer,
};
use wharf_oci::{Reference, RepoName, Tag};

use super::hub_api::{SIGN_IN_FIRST, error, from_hub, iso, json, parse};
use crate::app::AppState;

const DEFAULT_PAGE_SIZE: u32 = 25;
const MAX_PAGE_SIZE: u32 = 100;
/// Largest logo upload accepted on the wire (the rule itself is 5 MB; a bit more is read so
/// that the refusal can say how large the file was).
pub(crate) const MAX_LOGO_BODY: usize = 6 * 1024 * 1024 + 1024;
/// The default logo: a grey cube.
pub(crate) const DEFAULT_LOGO_SVG: &str = include_str!("../../static/default-logo.svg");

/// The caller: anonymous without an Authorization header; a bad token is refused, not
/// silently treated as anonymous.
pub(crate) async fn principal(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Principal, Response> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(Principal::Anonymous);
    };
    let unauthorized = || {
        error(
            StatusCode::UNAUTHORIZED,
            "the Authorization header must be `Bearer <token from POST /v2/users/login>`",
        )
    };
    let value = value.to_str().map_err(|_| unauthorized())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(unauthorized)?;
    if !(scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("jwt")) {
        return Err(unauthorized());
    }
    state
        .hub
        .verify_hub_token(token.trim())
        .await
        .map(Principal::User)
        .map_err(from_hub)
}

/// Query parameters as pairs.
pub(super) fn params(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

pub(super) struct Paging {
    page: u32,
    pub(super) size: u32,
}

impl Paging {
    pub(super) fn from(params: &[(String, String)]) -> Result<Self, Response> {
        let page = match param(params, "page") {
            None => 1,
            Some(p) => p
                .parse::<u32>()
                .ok()
                .filter(|p| *p >= 1 && *p <= 100_000)
                .ok_or_else(|| {
                    error(
                        StatusCode::BAD_REQUEST,
                        "page must be a whole number from 1",
                    )
                })?,
        };
        let size = match param(params, "page_size") {
            None => DEFAULT_PAGE_SIZE,
            Some(s) => s
                .parse::<u32>()
                .ok()
                .filter(|s| (1..=MAX_PAGE_SIZE).contains(s))
                .ok_or_else(|| {
                    error(
                        StatusCode::BAD_REQUEST,
                        &format!("page_size must be from 1 to {MAX_PAGE_SIZE}"),
                    )
                })?,
        };
        Ok(Self { page, size })
    }

    pub(super) fn offset(&self) -> u32 {
        (self.page - 1).saturating_mul(self.size)
    }

    /// `{count, next, previous, results}` with links that keep the other parameters.
    pub(super) fn body(
        &self,
        path: &str,
        params: &[(String, String)],
        count: u64,
        results: Vec<serde_json::Value>,
    ) -> serde_json::Value {
        let link = |page: u32| {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (k, v) in params
                .iter()
                .filter(|(k, _)| k != "page" && k != "page_size")
            {
                q.append_pair(k, v);
            }
            q.append_pair("page", &page.to_string());
            q.append_pair("page_size", &self.size.to_string());
            format!("{path}?{}", q.finish())
        };
        let next =
            (u64::from(self.page) * u64::from(self.size) < count).then(|| link(self.page + 1));
        let previous = (self.page > 1).then(|| link(self.page - 1));
        serde_json::json!({ "count": count, "next": next, "previous": previous, "results": results })
    }
}

fn repo_name(ns: &str, repo: &str) -> Result<RepoName, Response> {
    format!("{ns}/{repo}").parse::<RepoName>().map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            &format!("{ns}/{repo} is not a valid repository name: {e}"),
        )
    })
}

pub(crate) fn categories_json(slugs: &[String]) -> serde_json::Value {
    slugs
        .iter()
        .map(|s| {
            serde_json::json!({
                "slug": s,
                "name": wharf_hub::content::category_name(s).unwrap_or(s),
            })
        })
        .collect()
}

/// A repository in Docker Hub's shape, with wharf's additions (badge, categories, archive,
/// logo, storage).
pub(crate) fn repo_json(v: &RepoView, storage: Option<u64>) -> serde_json::Value {
    let r = &v.row;
    // The overview shows publicly once the repository has an image; writers see it always.
    let overview = (r.has_image || v.actions.push).then(|| r.overview.clone());
    serde_json::json!({
        "user": r.namespace,
        "name": v.short_name(),
        "namespace": r.namespace,
        "repository_type": "image",
        "status": 1,
        "status_description": if r.archived { "archived" } else { "active" },
        "description": r.description,
        "is_private": r.private,
        "is_archived": r.archived,
        "is_automated": false,
        "can_edit": v.may_manage(),
        "star_count": 0,
        "pull_count": r.pull_count,
        "last_updated": iso(Some(r.updated_at)),
        "last_modified": iso(Some(r.updated_at)),
        "date_registered": iso(Some(r.created_at)),
        "collaborator_count": 0,
        "affiliation": null,
        "hub_user": r.namespace,
        "has_starred": false,
        "full_description": overview,
        "permissions": {
            "read": v.actions.pull,
            "write": v.actions.push,
            "admin": v.actions.delete,
        },
        "categories": categories_json(&r.categories),
        "badge": v.badge.map(Badge::slug),
        "is_official": v.badge == Some(Badge::Official),
        "logo_url": format!("/v2/namespaces/{}/repositories/{}/logo", r.namespace, v.short_name()),
        "storage_size": storage,
        "media_types": [],
        "content_types": if r.has_image { vec!["image"] } else { vec![] },
    })
}

pub(crate) fn tag_json(t: &TagView, repo_id: i64) -> serde_json::Value {
    let images: Vec<serde_json::Value> = t
        .images
        .iter()
        .map(|i| {
            serde_json::json!({
                "architecture": i.architecture,
                "features": "",
                "variant": i.variant,
                "digest": i.digest,
                "os": i.os,
                "os_features": "",
                "os_version": null,
                "size": i.size,
                "status": "active",
                "last_pulled": iso(t.pulled_at),
                "last_pushed": iso(Some(t.pushed_at)),
            })
        })
        .collect();
    serde_json::json!({
        "creator": null,
        "id": null,
        "images": images,
        "last_updated": iso(Some(t.pushed_at)),
        "last_updater": null,
        "last_updater_username": null,
        "name": t.name,
        "repository": repo_id,
        "full_size": t.size,
        "v2": true,
        "tag_status": "active",
        "tag_last_pulled": iso(t.pulled_at),
        "tag_last_pushed": iso(Some(t.pushed_at)),
        "media_type": t.media_type,
        "content_type": t.content_type,
        "digest": t.digest,
    })
}

/// Routes `/v2/namespaces/…`, `/v2/repositories/…` and `/v2/search/…`; `segs` starts after `/v2/`.
pub(crate) async fn dispatch(
    state: &AppState,
    segs: &[&str],
    method: Method,
    headers: &HeaderMap,
    query: &str,
    body: Bytes,
) -> Response {
    let who = match principal(state, headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if method != Method::GET && who.user().is_none() {
        return error(StatusCode::UNAUTHORIZED, SIGN_IN_FIRST);
    }
    let params = params(query);
    // The older `/v2/repositories/{ns}/{repo}/…` forms are the newer ones renamed.
    let mut owned: Vec<&str> = Vec::with_capacity(segs.len() + 1);
    match segs {
        ["repositories"] => owned.push("repositories"),
        ["repositories", ns, rest @ ..] => {
            owned.extend(["namespaces", ns, "repositories"]);
            owned.extend(rest.iter().copied());
        }
        _ => owned.extend(segs.iter().copied()),
    }
    match (method, owned.as_slice()) {
        (Method::GET, ["search", "repositories"]) => search_api(state, &who, &params).await,
        (Method::POST, ["repositories"]) => {
            #[derive(Deserialize)]
            struct Ns {
                namespace: String,
            }
            match parse::<Ns>(&body) {
                Ok(ns) => create(state, &who, &ns.namespace, &body).await,
                Err(m) => error(StatusCode::BAD_REQUEST, &m),
            }
        }
        (Method::GET, ["namespaces", ns]) => namespace(state, &who, ns).await,
        (Method::GET, ["namespaces", ns, "logo"]) => namespace_logo(state, ns).await,
        (Method::GET, ["namespaces", ns, "repositories"]) => list(state, &who, ns, &params).await,
        (Method::POST, ["namespaces", ns, "repositories"]) => create(state, &who, ns, &body).await,
        (m, ["namespaces", ns, "repositories", repo, rest @ ..]) => {
            let name = match repo_name(ns, repo) {
                Ok(n) => n,
                Err(r) => return r,
            };
            repository(state, &who, m, &name, rest, &params, headers, body).await
        }
        _ => error(StatusCode::NOT_FOUND, "no such API endpoint"),
    }
}

#[allow(clippy::too_many_arguments)]
async fn repository(
    state: &AppState,
    who: &Principal,
    method: Method,
    name: &RepoName,
    rest: &[&str],
    params: &[(String, String)],
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let hub = &state.hub;
    match (method, rest) {
        (Method::GET, []) => match hub.repo_view(who, name).await {
            Ok(v) => {
                // Storage is for those who push to the repository.
                let storage = if v.actions.push {
                    hub.repo_storage(&state.registry, name).await.ok()
                } else {
                    None
                };
                json(StatusCode::OK, repo_json(&v, storage))
            }
            Err(e) => from_hub(e),
        },
        (Method::PATCH, []) => {
            let patch = match parse::<PatchBody>(&body) {
                Ok(p) => p,
                Err(m) => return error(StatusCode::BAD_REQUEST, &m),
            };
            let patch = RepoPatch {
                description: patch.description,
                overview: patch.full_description,
                categories: patch.categories.map(|c| {
                    c.into_iter()
                        .map(|c| match c {
                            CategoryIn::Slug(s) => s,
                            CategoryIn::Object { slug, name } => slug.or(name).unwrap_or_default(),
                        })
                        .collect()
                }),
                private: patch.is_private,
                archived: patch.is_archived,
            };
            match hub.update_repo(who, name, patch).await {
                Ok(v) => json(StatusCode::OK, repo_json(&v, None)),
                Err(e) => from_hub(e),
            }
        }
        (Method::DELETE, []) => match hub.delete_repo(&state.registry, who, name).await {
            Ok(()) => StatusCode::ACCEPTED.into_response(),
            Err(e) => from_hub(e),
        },
        (Method::GET, ["tags"]) => {
            let view = match hub.repo_view(who, name).await {
                Ok(v) => v,
                Err(e) => return from_hub(e),
            };
            let paging = match Paging::from(params) {
                Ok(p) => p,
                Err(r) => return r,
            };
            let order = match param(params, "ordering") {
                None | Some("last_updated") | Some("-last_updated") => TagOrder::Pushed,
                Some("name") => TagOrder::Name,
                Some(o) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        &format!("ordering {o:?} is not supported; use last_updated or name"),
                    );
                }
            };
            match hub
                .tags_view(&state.registry, &view, order, paging.offset(), paging.size)
                .await
            {
                Ok((count, tags)) => {
                    let results = tags.iter().map(|t| tag_json(t, view.row.id)).collect();
                    let path = format!(
                        "/v2/namespaces/{}/repositories/{}/tags",
                        view.row.namespace,
                        view.short_name()
                    );
                    json(StatusCode::OK, paging.body(&path, params, count, results))
                }
                Err(e) => from_hub(e),
            }
        }
        (Method::GET, ["tags", tag]) => {
            let view = match hub.repo_view(who, name).await {
                Ok(v) => v,
                Err(e) => return from_hub(e),
            };
            if tag.parse::<Tag>().is_err() {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("{tag:?} is not a valid tag"),
                );
            }
            match hub.tag_view(&state.registry, &view, tag).await {
                Ok(Some(t)) => json(StatusCode::OK, tag_json(&t, view.row.id)),
                Ok(None) => error(
                    StatusCode::NOT_FOUND,
                    &format!("tag {tag} does not exist in {name}"),
                ),
                Err(e) => from_hub(e),
            }
        }
        (Method::DELETE, ["tags", tag]) => {
            let Ok(t) = tag.parse::<Tag>() else {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("{tag:?} is not a valid tag"),
                );
            };
            delete_refs(state, who, name, &[Reference::Tag(t)]).await
        }
        (Method::DELETE, ["images", digest]) => {
            let Ok(d) = digest.parse() else {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("{digest:?} is not a valid digest"),
                );
            };
            delete_refs(state, who, name, &[Reference::Digest(d)]).await
        }
        (Method::POST, ["copy"]) => transfer(state, who, name, &body).await,
        (Method::GET, ["logo"]) => repo_logo(state, who, name).await,
        (Method::PUT, ["logo"]) => {
            let _ = headers;
            match hub.set_repo_logo(who, name, Some(body)).await {
                Ok(()) => StatusCode::NO_CONTENT.into_response(),
                Err(e) => from_hub(e),
            }
        }
        (Method::DELETE, ["logo"]) => match hub.set_repo_logo(who, name, None).await {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(e) => from_hub(e),
        },
        _ => error(StatusCode::NOT_FOUND, "no such API endpoint"),
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum CategoryIn {
    Slug(String),
    Object {
        slug: Option<String>,
        name: Option<String>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    description: Option<String>,
    full_description: Option<String>,
    categories: Option<Vec<CategoryIn>>,
    is_private: Option<bool>,
    is_archived: Option<bool>,
}

#[derive(Deserialize)]
struct CreateBody {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    full_description: String,
    #[serde(default)]
    is_private: bool,
}

async fn create(state: &AppState, who: &Principal, ns: &str, body: &[u8]) -> Response {
    if who.user().is_none() {
        return error(StatusCode::UNAUTHORIZED, SIGN_IN_FIRST);
    }
    match state.hub.may_create_in(who, ns).await {
        Ok(true) => {}
        Ok(false) => {
            return error(
                StatusCode::FORBIDDEN,
                &format!("you cannot create repositories in the namespace {ns}"),
            );
        }
        Err(e) => return from_hub(e),
    }
    let c: CreateBody = match parse(body) {
        Ok(c) => c,
        Err(m) => return error(StatusCode::BAD_REQUEST, &m),
    };
    let name = match repo_name(ns, &c.name) {
        Ok(n) => n,
        Err(r) => return r,
    };
    match state
        .hub
        .create_repo(
            who,
            &name,
            &c.description,
            &c.full_description,
            c.is_private,
        )
        .await
    {
        Ok(v) => json(StatusCode::CREATED, repo_json(&v, Some(0))),
        Err(e) => from_hub(e),
    }
}

async fn list(
    state: &AppState,
    who: &Principal,
    ns: &str,
    params: &[(String, String)],
) -> Response {
    let paging = match Paging::from(params) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let order = match param(params, "ordering") {
        None | Some("last_updated") | Some("-last_updated") => RepoOrder::LastUpdated,
        Some("name") => RepoOrder::Name,
        Some("pull_count") | Some("-pull_count") => RepoOrder::PullCount,
        Some(o) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("ordering {o:?} is not supported; use last_updated, name or pull_count"),
            );
        }
    };
    match state
        .hub
        .namespace_repos(who, ns, order, paging.offset(), paging.size)
        .await
    {
        Ok((count, repos)) => {
            let results = repos.iter().map(|v| repo_json(v, None)).collect();
            let path = format!("/v2/namespaces/{ns}/repositories");
            json(StatusCode::OK, paging.body(&path, params, count, results))
        }
        Err(e) => from_hub(e),
    }
}

async fn namespace(state: &AppState, who: &Principal, ns: &str) -> Response {
    let hub = &state.hub;
    let kind = match hub.namespace_kind(ns).await {
        Ok(Some(k)) => k,
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                &format!("namespace {ns:?} does not exist"),
            );
        }
        Err(e) => return from_hub(e),
    };
    let badge = hub.program_of(ns).await.ok().flatten();
    // Storage is for those who can see inside the namespace.
    let member = match who.user() {
        Some(u) => u.is_admin || u.name == ns || hub.is_org_member(ns, u).await.unwrap_or(false),
        None => false,
    };
    let storage = if member {
        hub.namespace_storage(ns).await.ok()
    } else {
        None
    };
    json(
        StatusCode::OK,
        serde_json::json!({
            "name": ns,
            "type": kind,
            "badge": badge.map(Badge::slug),
            "logo_url": format!("/v2/namespaces/{ns}/logo"),
            "storage_size": storage,
        }),
    )
}

async fn delete_refs(
    state: &AppState,
    who: &Principal,
    name: &RepoName,
    refs: &[Reference],
) -> Response {
    match state
        .hub
        .delete_references(&state.registry, who, name, refs)
        .await
    {
        Ok(missing) if missing.is_empty() => StatusCode::NO_CONTENT.into_response(),
        Ok(missing) => error(
            StatusCode::NOT_FOUND,
            &format!("{} does not exist in {name}", missing.join(", ")),
        ),
        Err(e) => from_hub(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    /// A tag or digest in this repository.
    reference: String,
    /// The target repository, `namespace/name`.
    target: String,
    /// The tag to give it there (default: the same tag; none for a digest).
    #[serde(default)]
    target_tag: Option<String>,
    /// Move instead of copy: the source reference is deleted afterwards.
    #[serde(default, rename = "move")]
    move_: bool,
}

async fn transfer(state: &AppState, who: &Principal, from: &RepoName, body: &[u8]) -> Response {
    let t: TransferBody = match parse(body) {
        Ok(t) => t,
        Err(m) => return error(StatusCode::BAD_REQUEST, &m),
    };
    let Ok(reference) = t.reference.parse::<Reference>() else {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("{:?} is not a tag or digest", t.reference),
        );
    };
    let to = match t.target.parse::<RepoName>() {
        Ok(n) => n,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("target {:?} is not a valid repository name: {e}", t.target),
            );
        }
    };
    let tag = match t.target_tag.as_deref().map(str::parse::<Tag>) {
        None => None,
        Some(Ok(tag)) => Some(tag),
        Some(Err(_)) => {
            return error(StatusCode::BAD_REQUEST, "target_tag is not a valid tag");
        }
    };
    let mode = if t.move_ {
        Transfer::Move
    } else {
        Transfer::Copy
    };
    match state
        .hub
        .transfer_image(
            &state.registry,
            who,
            from,
            &reference,
            &to,
            tag.as_ref(),
            mode,
        )
        .await
    {
        Ok(digest) => json(
            StatusCode::OK,
            serde_json::json!({ "digest": digest.to_string(), "target": to.as_str(), "moved": t.move_ }),
        ),
        Err(e) => from_hub(e),
    }
}

pub(crate) fn image_response(media_type: &str, data: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, media_type.to_owned()),
            // Logos change in place (same URL): revalidate every time.
            (header::CACHE_CONTROL, "no-cache".to_owned()),
            (
                header::HeaderName::from_static("x-content-type-options"),
                "nosniff".to_owned(),
            ),
            (
                header::HeaderName::from_static("content-security-policy"),
                "default-src 'none'; style-src 'unsafe-inline'".to_owned(),
            ),
        ],
        data,
    )
        .into_response()
}

pub(crate) async fn logo_or_default(state: &AppState, digest: Option<&str>) -> Response {
    if let Some(d) = digest
        && let Ok(Some((media_type, data))) = state.hub.logo(d).await
    {
        return image_response(&media_type, data);
    }
    image_response("image/svg+xml", DEFAULT_LOGO_SVG.as_bytes().to_vec())
}

async fn repo_logo(state: &AppState, who: &Principal, name: &RepoName) -> Response {
    match state.hub.repo_view(who, name).await {
        Ok(v) => logo_or_default(state, v.logo()).await,
        Err(e) => from_hub(e),
    }
}

async fn namespace_logo(state: &AppState, ns: &str) -> Response {
    match state.hub.namespace_logo(ns).await {
        Ok(d) => logo_or_default(state, d.as_deref()).await,
        Err(e) => from_hub(e),
    }
}

fn badges_of(params: &[(String, String)]) -> Result<Vec<Badge>, Response> {
    let mut out = Vec::new();
    for (k, v) in params {
        if k == "badges" || k == "badge" || k == "image_filter" {
            for b in v.split(',').filter(|b| !b.is_empty()) {
                match Badge::parse(b) {
                    Some(b) => out.push(b),
                    None => {
                        return Err(error(
                            StatusCode::BAD_REQUEST,
                            &format!(
                                "{b:?} is not a badge; use official, verified_publisher or open_source"
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok(out)
}

fn categories_of(params: &[(String, String)]) -> Vec<String> {
    params
        .iter()
        .filter(|(k, _)| k == "categories" || k == "category")
        .flat_map(|(_, v)| v.split(',').filter(|c| !c.is_empty()).map(str::to_owned))
        .collect()
}

async fn search_api(state: &AppState, who: &Principal, params: &[(String, String)]) -> Response {
    let paging = match Paging::from(params) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let badges = match badges_of(params) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let query = param(params, "query").or(param(params, "q")).unwrap_or("");
    match state
        .hub
        .search(
            who,
            query,
            &badges,
            &categories_of(params),
            paging.offset(),
            paging.size,
        )
        .await
    {
        Ok((count, repos)) => {
            let results = repos
                .iter()
                .map(|v| {
                    serde_json::json!({
                        "repo_name": v.name(),
                        "short_description": v.row.description,
                        "star_count": 0,
                        "pull_count": v.row.pull_count,
                        "repo_owner": v.row.namespace,
                        "is_automated": false,
                        "is_official": v.badge == Some(Badge::Official),
                        "badge": v.badge.map(Badge::slug),
                        "categories": categories_json(&v.row.categories),
                        "is_archived": v.row.archived,
                        "last_updated": iso(Some(v.row.updated_at)),
                    })
                })
                .collect();
            json(
                StatusCode::OK,
                paging.body("/v2/search/repositories", params, count, results),
            )
        }
        Err(e) => from_hub(e),
    }
}

/// `GET /v1/search?q=TERM&n=25&page=1`, what `docker search` calls.
pub(crate) async fn v1_search(State(state): State<AppState>, req: Request) -> Response {
    let quota =
        match super::limits::check_api(&state, req.headers(), super::client_ip(&state, &req)).await
        {
            Ok(q) => q,
            Err(refused) => return refused,
        };
    let mut resp = v1_search_answer(&state, req).await;
    if let Some(q) = quota {
        super::limits::set_api_headers(&mut resp, &q);
    }
    resp
}

async fn v1_search_answer(state: &AppState, req: Request) -> Response {
    let state = state.clone();
    let who = match principal(&state, req.headers()).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let params = params(req.uri().query().unwrap_or(""));
    let n = match param(&params, "n") {
        None => 25,
        Some(n) => match n.parse::<u32>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => return error(StatusCode::BAD_REQUEST, "n must be from 1 to 100"),
        },
    };
    let page = match param(&params, "page") {
        None => 1,
        Some(p) => match p.parse::<u32>() {
            Ok(p) if (1..=100_000).contains(&p) => p,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "page must be a whole number from 1",
                );
            }
        },
    };
    let query = param(&params, "q").unwrap_or("");
    // `docker search --filter is-official=true` filters on the client; nothing to do here.
    match state
        .hub
        .search(&who, query, &[], &[], (page - 1) * n, n)
        .await
    {
        Ok((count, repos)) => {
            let results: Vec<serde_json::Value> = repos
                .iter()
                .map(|v| {
                    serde_json::json!({
                        "name": v.name(),
                        "description": v.row.description,
                        "star_count": 0,
                        "is_official": v.badge == Some(Badge::Official),
                        "is_automated": false,
                    })
                })
                .collect();
            json(
                StatusCode::OK,
                serde_json::json!({
                    "query": query,
                    "num_results": count,
                    "num_pages": count.div_ceil(u64::from(n)),
                    "page": page,
                    "page_size": n,
                    "results": results,
                }),
            )
        }
        Err(e) => from_hub(e),
    }
}

// ---- programs ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApplyBody {
    program: String,
    legal_name: String,
    website: String,
    phone: String,
    email: String,
    /// The square logo (JPEG or PNG, at least 512×512), base64.
    logo: String,
}

pub(crate) fn application_json(a: &wharf_hub::ApplicationRow) -> serde_json::Value {
    serde_json::json!({
        "id": a.id,
        "namespace": a.namespace,
        "program": a.program,
        "status": a.status,
        "legal_name": a.legal_name,
        "website": a.website,
        "phone": a.phone,
        "email": a.email,
        "logo_url": format!("/v2/logos/{}", a.logo),
        "applied_by": a.applied_by,
        "applied_at": iso(Some(a.applied_at)),
        "decided_at": iso(a.decided_at),
        "note": a.note,
    })
}

/// `GET|POST /v2/orgs/{org}/programs`.
pub(crate) async fn programs(
    state: &AppState,
    user: &wharf_hub::User,
    method: Method,
    org: &str,
    body: &[u8],
) -> Response {
    match method {
        Method::GET => match state.hub.org_applications(user, org).await {
            Ok(apps) => json(
                StatusCode::OK,
                serde_json::json!({
                    "count": apps.len(),
                    "next": null,
                    "previous": null,
                    "results": apps.iter().map(application_json).collect::<Vec<_>>(),
                }),
            ),
            Err(e) => from_hub(e),
        },
        Method::POST => {
            let hub = &state.hub;
            match hub.is_org_member(org, user).await {
                Ok(false) if !user.is_admin => {
                    return error(
                        StatusCode::NOT_FOUND,
                        &format!("organization {org:?} does not exist"),
                    );
                }
                Err(e) => return from_hub(e),
                _ => {}
            }
            match hub.org_owner(user, org).await {
                Ok(true) => {}
                Ok(false) => {
                    return error(
                        StatusCode::FORBIDDEN,
                        &format!("only owners of {org} can apply to a program"),
                    );
                }
                Err(e) => return from_hub(e),
            }
            let a: ApplyBody = match parse(body) {
                Ok(a) => a,
                Err(m) => return error(StatusCode::BAD_REQUEST, &m),
            };
            let Some(program) = Badge::parse(&a.program) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "program must be verified_publisher or open_source",
                );
            };
            let Ok(logo) = base64::engine::general_purpose::STANDARD.decode(a.logo.trim()) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "logo must be the image file in base64",
                );
            };
            let profile = PublisherProfile {
                legal_name: a.legal_name,
                website: a.website,
                phone: a.phone,
                email: a.email,
                logo: logo.into(),
            };
            match state.hub.apply_program(user, org, program, profile).await {
                Ok(id) => match state.hub.org_applications(user, org).await {
                    Ok(apps) => match apps.iter().find(|a| a.id == id) {
                        Some(a) => json(StatusCode::CREATED, application_json(a)),
                        None => json(StatusCode::CREATED, serde_json::json!({ "id": id })),
                    },
                    Err(e) => from_hub(e),
                },
                Err(e) => from_hub(e),
            }
        }
        _ => error(StatusCode::METHOD_NOT_ALLOWED, "use GET or POST"),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideBody {
    decision: String,
    #[serde(default)]
    note: String,
}

/// `GET /v2/admin/program-applications`, `POST /v2/admin/program-applications/{id}`.
pub(crate) async fn admin_applications(
    state: &AppState,
    user: &wharf_hub::User,
    method: Method,
    rest: &[&str],
    query: &str,
    body: &[u8],
) -> Response {
    let params = params(query);
    match (method, rest) {
        (Method::GET, []) => {
            let paging = match Paging::from(&params) {
                Ok(p) => p,
                Err(r) => return r,
            };
            match state
                .hub
                .all_applications(user, param(&params, "status"), paging.offset(), paging.size)
                .await
            {
                Ok((count, apps)) => json(
                    StatusCode::OK,
                    paging.body(
                        "/v2/admin/program-applications",
                        &params,
                        count,
                        apps.iter().map(application_json).collect(),
                    ),
                ),
                Err(e) => from_hub(e),
            }
        }
        (Method::POST, [id]) => {
            if !user.is_admin {
                return from_hub(HubError::Forbidden(
                    "only administrators decide program applications".into(),
                ));
            }
            let Ok(id) = id.parse::<i64>() else {
                return error(StatusCode::NOT_FOUND, "no such application");
            };
            let d: DecideBody = match parse(body) {
                Ok(d) => d,
                Err(m) => return error(StatusCode::BAD_REQUEST, &m),
            };
            let Some(decision) = Decision::parse(&d.decision) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "decision must be approve, reject or revoke",
                );
            };
            match state.hub.decide_program(user, id, decision, &d.note).await {
                Ok(a) => json(StatusCode::OK, application_json(&a)),
                Err(e) => from_hub(e),
            }
        }
        _ => error(StatusCode::NOT_FOUND, "no such API endpoint"),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RateRuleBody {
    kind: String,
    subject: String,
    /// Pulls per window; absent or null with `exempt: true`.
    #[serde(default)]
    pulls: Option<u64>,
    #[serde(default)]
    exempt: bool,
    #[serde(default)]
    note: String,
}

fn rate_rule_json(r: &wharf_hub::RateRuleRow) -> serde_json::Value {
    serde_json::json!({
        "kind": r.kind,
        "subject": r.subject,
        "pulls": r.pulls,
        "exempt": r.pulls.is_none(),
        "note": r.note,
        "created_at": iso(Some(r.created_at)),
    })
}

/// `/v2/admin/rate-limits`: the administrator's rate limit rules. GET lists them (paged),
/// POST sets one, `DELETE /v2/admin/rate-limits/{kind}/{subject}` removes one (a range's `/`
/// written `%2F`).
pub(crate) async fn admin_rate_limits(
    state: &AppState,
    user: &wharf_hub::User,
    method: Method,
    rest: &[&str],
    query: &str,
    body: &[u8],
) -> Response {
    if !user.acts_as_admin() {
        return from_hub(HubError::Forbidden(
            "only administrators (signed in with their password or an admin-scope token) manage rate limits".into(),
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
                .rate_rules(user, paging.offset(), paging.size)
                .await
            {
                Ok((count, rules)) => json(
                    StatusCode::OK,
                    paging.body(
                        "/v2/admin/rate-limits",
                        &params,
                        count,
                        rules.iter().map(rate_rule_json).collect(),
                    ),
                ),
                Err(e) => from_hub(e),
            }
        }
        (Method::POST, []) => {
            let b: RateRuleBody = match parse(body) {
                Ok(b) => b,
                Err(m) => return error(StatusCode::BAD_REQUEST, &m),
            };
            let pulls = match (b.exempt, b.pulls) {
                (true, None) => None,
                (false, Some(n)) => Some(n),
                _ => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "give either pulls (a limit per window) or exempt: true",
                    );
                }
            };
            match state
                .hub
                .set_rate_rule(user, &b.kind, &b.subject, pulls, &b.note)
                .await
            {
                Ok(r) => json(StatusCode::CREATED, rate_rule_json(&r)),
                Err(e) => from_hub(e),
            }
        }
        (Method::DELETE, [kind, subject]) => {
            let subject = percent_encoding::percent_decode_str(subject).decode_utf8_lossy();
            match state.hub.delete_rate_rule(user, kind, &subject).await {
                Ok(()) => StatusCode::NO_CONTENT.into_response(),
                Err(e) => from_hub(e),
            }
        }
        _ => error(StatusCode::NOT_FOUND, "no such API endpoint"),
    }
}

/// `GET /v2/logos/{digest}`: a stored logo (publisher profiles), public.
pub(crate) async fn stored_logo(state: &AppState, digest: &str) -> Response {
    match state.hub.logo(digest).await {
        Ok(Some((media_type, data))) => image_response(&media_type, data),
        Ok(None) => error(StatusCode::NOT_FOUND, "no such logo"),
        Err(e) => from_hub(e),
    }
}
