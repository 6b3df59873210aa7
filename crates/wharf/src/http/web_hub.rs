//! The hub's web pages, rendered on the server and usable without JavaScript: search (home),
//! repository pages (General, Tags, Settings), creating repositories, namespace and
//! organization pages, program applications, access tokens and administration. Every form
//! that changes something carries the CSRF token; every action goes through the hub, which
//! decides who may do what.

use askama::Template;
use axum::extract::{Multipart, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use wharf_hub::content::{CATEGORIES, render_markdown};
use wharf_hub::{
    Badge, Decision, HubError, Principal, PublisherProfile, RepoOrder, RepoPatch, RepoView,
    TagOrder, TagView, User,
};
use wharf_oci::{Reference, RepoName, Tag};

use super::web::{check_csrf, checked_form_limited, csrf_for, page, session_user};
use crate::app::AppState;

const PAGE_SIZE: u32 = 20;
/// Overviews are up to 25,000 characters; percent-encoded that is up to ~4× as many bytes.
const MAX_SETTINGS_FORM: usize = 160 * 1024;
const MAX_UPLOAD_FORM: usize = 6 * 1024 * 1024 + 64 * 1024;

/// What every page needs: who is signed in and the CSRF token.
pub(super) struct Ctx {
    pub(super) user: Option<User>,
    pub(super) csrf: String,
    fresh: bool,
}

impl Ctx {
    pub(super) async fn of(state: &AppState, headers: &HeaderMap) -> Self {
        let user = session_user(state, headers).await;
        let (csrf, fresh) = csrf_for(headers);
        Self { user, csrf, fresh }
    }

    fn principal(&self) -> Principal {
        match &self.user {
            Some(u) => Principal::User(u.clone()),
            None => Principal::Anonymous,
        }
    }

    pub(super) fn name(&self) -> Option<String> {
        self.user.as_ref().map(|u| u.name.clone())
    }

    pub(super) fn is_admin(&self) -> bool {
        self.user.as_ref().is_some_and(|u| u.is_admin)
    }

    pub(super) fn render(
        &self,
        state: &AppState,
        status: StatusCode,
        html: Result<String, askama::Error>,
    ) -> Response {
        page(
            state,
            status,
            html,
            self.fresh.then_some(self.csrf.as_str()),
        )
    }
}

/// Names from paths and forms, before they reach the database: printable and short.
pub(super) fn plain_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && !s.chars().any(char::is_control)
}

pub(super) fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

pub(super) fn q(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

pub(crate) fn date(t: Option<i64>) -> String {
    match t {
        Some(t) => {
            let s = super::token::rfc3339(t.max(0) as u64);
            format!("{} {} UTC", &s[..10], &s[11..16])
        }
        None => "never".into(),
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    user: Option<String>,
    is_admin: bool,
    csrf: String,
    title: String,
    message: String,
}

pub(super) fn message(
    state: &AppState,
    ctx: &Ctx,
    status: StatusCode,
    title: &str,
    message: &str,
) -> Response {
    let html = MessagePage {
        user: ctx.name(),
        is_admin: ctx.is_admin(),
        csrf: ctx.csrf.clone(),
        title: title.into(),
        message: message.into(),
    }
    .render();
    ctx.render(state, status, html)
}

pub(super) fn hub_error(state: &AppState, ctx: &Ctx, e: HubError) -> Response {
    match e {
        HubError::NotFound(what) => message(
            state,
            ctx,
            StatusCode::NOT_FOUND,
            "Not found",
            &format!("{what} does not exist, or you cannot see it. Sign in if it is private."),
        ),
        HubError::Forbidden(m) => message(state, ctx, StatusCode::FORBIDDEN, "Not allowed", &m),
        HubError::Conflict(m) | HubError::NameTaken(m) => {
            message(state, ctx, StatusCode::CONFLICT, "Cannot do that now", &m)
        }
        HubError::InvalidInput(m) | HubError::InvalidName(m) => {
            message(state, ctx, StatusCode::BAD_REQUEST, "Check the input", &m)
        }
        other => {
            tracing::error!(error = %other, "web page failed");
            message(
                state,
                ctx,
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "wharf could not complete this request; try again.",
            )
        }
    }
}

// ---- search (home) ----

/// A repository in a list.
struct RepoItem {
    name: String,
    namespace: String,
    short: String,
    description: String,
    badge: Option<(&'static str, &'static str)>,
    categories: Vec<(String, &'static str)>,
    pulls: i64,
    updated: String,
    archived: bool,
    private: bool,
}

impl RepoItem {
    fn of(v: &RepoView) -> Self {
        Self {
            name: v.name().to_owned(),
            namespace: v.row.namespace.clone(),
            short: v.short_name().to_owned(),
            description: v.row.description.clone(),
            badge: v.badge.map(|b| (b.slug(), b.label())),
            categories: v
                .row
                .categories
                .iter()
                .map(|s| {
                    (
                        s.clone(),
                        wharf_hub::content::category_name(s).unwrap_or(""),
                    )
                })
                .collect(),
            pulls: v.row.pull_count,
            updated: date(Some(v.row.updated_at)),
            archived: v.row.archived,
            private: v.row.private,
        }
    }
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    user: Option<String>,
    is_admin: bool,
    csrf: String,
    query: String,
    badges: Vec<(&'static str, &'static str, bool)>,
    categories: Vec<(&'static str, &'static str, bool)>,
    count: u64,
    results: Vec<RepoItem>,
    prev: Option<String>,
    next: Option<String>,
    error: Option<String>,
}

pub(crate) async fn home(State(state): State<AppState>, req: Request) -> Response {
    let ctx = Ctx::of(&state, req.headers()).await;
    let params: Vec<(String, String)> =
        form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .take(64)
            .collect();
    let query = params
        .iter()
        .find(|(k, _)| k == "q")
        .map(|(_, v)| v.chars().take(200).collect::<String>())
        .unwrap_or_default();
    let chosen_badges: Vec<Badge> = params
        .iter()
        .filter(|(k, _)| k == "badge")
        .filter_map(|(_, v)| Badge::parse(v))
        .collect();
    let chosen_categories: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "category")
        .filter(|(_, v)| wharf_hub::content::category_name(v).is_some())
        .map(|(_, v)| v.clone())
        .collect();
    let page_no: u32 = params
        .iter()
        .find(|(k, _)| k == "page")
        .and_then(|(_, v)| v.parse().ok())
        .filter(|p| (1..=10_000).contains(p))
        .unwrap_or(1);
    let (count, results, error) = match state
        .hub
        .search(
            &ctx.principal(),
            &query,
            &chosen_badges,
            &chosen_categories,
            (page_no - 1) * PAGE_SIZE,
            PAGE_SIZE,
        )
        .await
    {
        Ok((count, views)) => (count, views.iter().map(RepoItem::of).collect(), None),
        Err(HubError::InvalidInput(m)) => (0, Vec::new(), Some(m)),
        Err(e) => return hub_error(&state, &ctx, e),
    };
    let link = |p: u32| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in params.iter().filter(|(k, _)| k != "page") {
            s.append_pair(k, v);
        }
        s.append_pair("page", &p.to_string());
        format!("/search?{}", s.finish())
    };
    let html = HomePage {
        user: ctx.name(),
        is_admin: ctx.is_admin(),
        csrf: ctx.csrf.clone(),
        badges: Badge::ALL
            .iter()
            .map(|b| (b.slug(), b.label(), chosen_badges.contains(b)))
            .collect(),
        categories: CATEGORIES
            .iter()
            .map(|(s, n)| (*s, *n, chosen_categories.iter().any(|c| c == s)))
            .collect(),
        query,
        count,
        results,
        prev: (page_no > 1).then(|| link(page_no - 1)),
        next: (u64::from(page_no) * u64::from(PAGE_SIZE) < count).then(|| link(page_no + 1)),
        error,
    }
    .render();
    ctx.render(&state, StatusCode::OK, html)
}

// ---- repository pages ----

struct TagRowView {
    name: String,
    digest: String,
    short_digest: String,
    size: String,
    kind: String,
    platforms: Vec<String>,
    pushed: String,
    pulled: String,
}

impl TagRowView {
    fn of(t: &TagView) -> Self {
        Self {
            name: t.name.clone(),
            short_digest: t.digest.chars().take(19).collect(),
            digest: t.digest.clone(),
            size: human_size(t.size),
            kind: t.content_type.clone(),
            platforms: t
                .images
                .iter()
                .filter(|i| !i.os.is_empty())
                .map(|i| {
                    let mut p = format!("{}/{}", i.os, i.architecture);
                    if let Some(v) = &i.variant {
                        p.push('/');
                        p.push_str(v);
                    }
                    format!("{p} · {}", human_size(i.size))
                })
                .collect(),
            pushed: date(Some(t.pushed_at)),
            pulled: date(t.pulled_at),
        }
    }
}

#[derive(Template)]
#[template(path = "repo.html")]
struct RepoPage {
    user: Option<String>,
    is_admin: bool,
    csrf: String,
    tab: &'static str,
    repo: RepoItem,
    pull_command: String,
    overview_html: Option<String>,
    may_manage: bool,
    may_delete: bool,
    may_push: bool,
    storage: Option<String>,
    created: String,
    notice: Option<String>,
    error: Option<String>,
    // Tags tab.
    tags: Vec<TagRowView>,
    tag_count: u64,
    sort: &'static str,
    prev: Option<String>,
    next: Option<String>,
    confirm_tags: Vec<String>,
    // Settings tab.
    description: String,
    overview: String,
    preview_html: Option<String>,
    all_categories: Vec<(&'static str, &'static str, bool)>,
    logo_allowed: bool,
    has_own_logo: bool,
}

fn registry_host(state: &AppState, headers: &HeaderMap) -> String {
    let base = super::hub_api::base_url(state, headers);
    base.split_once("://")
        .map_or(base.as_str(), |(_, host)| host)
        .to_owned()
}

fn repo_name(ns: &str, repo: &str) -> Option<RepoName> {
    format!("{ns}/{repo}").parse().ok()
}

#[derive(Default)]
struct Extra {
    notice: Option<String>,
    error: Option<String>,
    confirm_tags: Vec<String>,
    description: Option<String>,
    overview: Option<String>,
    preview: bool,
    categories: Option<Vec<String>>,
    status: StatusCode,
}

#[allow(clippy::too_many_arguments)]
async fn repo_page(
    state: &AppState,
    ctx: &Ctx,
    headers: &HeaderMap,
    ns: &str,
    repo: &str,
    tab: &'static str,
    query: &str,
    extra: Extra,
) -> Response {
    let Some(name) = repo_name(ns, repo) else {
        return message(
            state,
            ctx,
            StatusCode::NOT_FOUND,
            "Not found",
            "That is not a repository name.",
        );
    };
    let who = ctx.principal();
    let view = match state.hub.repo_view(&who, &name).await {
        Ok(v) => v,
        Err(e) => return hub_error(state, ctx, e),
    };
    if tab == "settings" && !view.may_manage() {
        return message(
            state,
            ctx,
            StatusCode::FORBIDDEN,
            "Not allowed",
            &format!("Only owners and editors of {ns} can change the settings of {name}."),
        );
    }
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .take(16)
        .collect();
    let get = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let sort = if get("sort").as_deref() == Some("name") {
        "name"
    } else {
        "pushed"
    };
    let page_no: u32 = get("page")
        .and_then(|p| p.parse().ok())
        .filter(|p| (1..=100_000).contains(p))
        .unwrap_or(1);
    let (mut tags, mut tag_count, mut prev, mut next) = (Vec::new(), 0, None, None);
    if tab == "tags" {
        let order = if sort == "name" {
            TagOrder::Name
        } else {
            TagOrder::Pushed
        };
        match state
            .hub
            .tags_view(
                &state.registry,
                &view,
                order,
                (page_no - 1) * PAGE_SIZE,
                PAGE_SIZE,
            )
            .await
        {
            Ok((count, t)) => {
                tag_count = count;
                tags = t.iter().map(TagRowView::of).collect();
            }
            Err(e) => return hub_error(state, ctx, e),
        }
        let link = |p: u32| format!("/r/{name}/tags?sort={sort}&page={p}");
        prev = (page_no > 1).then(|| link(page_no - 1));
        next = (u64::from(page_no) * u64::from(PAGE_SIZE) < tag_count).then(|| link(page_no + 1));
    }
    let notice = extra
        .notice
        .or_else(|| get("done").map(|d| d.chars().take(200).collect()));
    let storage = if view.actions.push {
        state
            .hub
            .repo_storage(&state.registry, &name)
            .await
            .ok()
            .map(human_size)
    } else {
        None
    };
    let show_overview = view.row.has_image || view.actions.push;
    let overview_html = (show_overview && !view.row.overview.trim().is_empty())
        .then(|| render_markdown(&view.row.overview));
    let overview = extra.overview.unwrap_or_else(|| view.row.overview.clone());
    let preview_html = extra.preview.then(|| render_markdown(&overview));
    let chosen = extra
        .categories
        .unwrap_or_else(|| view.row.categories.clone());
    let html = RepoPage {
        user: ctx.name(),
        is_admin: ctx.is_admin(),
        csrf: ctx.csrf.clone(),
        tab,
        pull_command: format!("docker pull {}/{}", registry_host(state, headers), name),
        overview_html,
        may_manage: view.may_manage(),
        may_delete: view.actions.delete,
        may_push: view.actions.push,
        storage,
        created: date(Some(view.row.created_at)),
        notice,
        error: extra.error,
        tags,
        tag_count,
        sort,
        prev,
        next,
        confirm_tags: extra.confirm_tags,
        description: extra
            .description
            .unwrap_or_else(|| view.row.description.clone()),
        overview,
        preview_html,
        all_categories: CATEGORIES
            .iter()
            .map(|(s, n)| (*s, *n, chosen.iter().any(|c| c == s)))
            .collect(),
        logo_allowed: view.badge.is_some(),
        has_own_logo: view.row.logo.is_some(),
        repo: RepoItem::of(&view),
    }
    .render();
    ctx.render(state, extra.status, html)
}

async fn repo_tab(
    state: &AppState,
    ns: &str,
    repo: &str,
    req: Request,
    tab: &'static str,
) -> Response {
    let ctx = Ctx::of(state, req.headers()).await;
    let query = req.uri().query().unwrap_or("").to_owned();
    repo_page(
        state,
        &ctx,
        req.headers(),
        ns,
        repo,
        tab,
        &query,
        Extra::default(),
    )
    .await
}

pub(crate) async fn repo_general(
    State(state): State<AppState>,
    Path((ns, repo)): Path<(String, String)>,
    req: Request,
) -> Response {
    repo_tab(&state, &ns, &repo, req, "general").await
}

pub(crate) async fn repo_tags(
    State(state): State<AppState>,
    Path((ns, repo)): Path<(String, String)>,
    req: Request,
) -> Response {
    repo_tab(&state, &ns, &repo, req, "tags").await
}

pub(crate) async fn repo_settings(
    State(state): State<AppState>,
    Path((ns, repo)): Path<(String, String)>,
    req: Request,
) -> Response {
    repo_tab(&state, &ns, &repo, req, "settings").await
}

fn values(form: &[(String, String)], key: &str) -> Vec<String> {
    form.iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .collect()
}

pub(super) fn value(form: &[(String, String)], key: &str) -> String {
    form.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// A form posted to a repository page: CSRF-checked, with the page context and the name.
async fn repo_form(
    state: &AppState,
    ns: &str,
    repo: &str,
    req: Request,
    limit: usize,
) -> Result<(HeaderMap, Vec<(String, String)>, Ctx, RepoName), Response> {
    let (headers, form) = checked_form_limited(req, limit).await?;
    let ctx = Ctx::of(state, &headers).await;
    match repo_name(ns, repo) {
        Some(name) => Ok((headers, form, ctx, name)),
        None => Err(message(
            state,
            &ctx,
            StatusCode::NOT_FOUND,
            "Not found",
            "That is not a repository name.",
        )),
    }
}

/// `POST /r/{ns}/{repo}/tags/delete`: without `confirm`, shows the confirmation dialog;
/// with it, deletes the selected tags (or images, by digest).
pub(crate) async fn repo_tags_delete(
    State(state): State<AppState>,
    Path((ns, repo)): Path<(String, String)>,
    req: Request,
) -> Response {
    let (headers, form, ctx, name) =
        match repo_form(&state, &ns, &repo, req, MAX_SETTINGS_FORM).await {
            Ok(f) => f,
            Err(r) => return r,
        };
    let selected: Vec<String> = values(&form, "tag").into_iter().take(100).collect();
    if selected.is_empty() {
        let extra = Extra {
            error: Some("Select at least one tag to delete.".into()),
            status: StatusCode::BAD_REQUEST,
            ..Extra::default()
        };
        return repo_page(&state, &ctx, &headers, &ns, &repo, "tags", "", extra).await;
    }
    let mut refs = Vec::new();
    for s in &selected {
        match s
            .parse::<Tag>()
            .map(Reference::Tag)
            .or_else(|_| s.parse().map(Reference::Digest))
        {
            Ok(r) => refs.push(r),
            Err(_) => {
                return message(
                    &state,
                    &ctx,
                    StatusCode::BAD_REQUEST,
                    "Check the input",
                    &format!("{s:?} is not a tag or digest."),
                );
            }
        }
    }
    if value(&form, "confirm") != "yes" {
        let extra = Extra {
            confirm_tags: selected,
            ..Extra::default()
        };
        return repo_page(&state, &ctx, &headers, &ns, &repo, "tags", "", extra).await;
    }
    match state
        .hub
        .delete_references(&state.registry, &ctx.principal(), &name, &refs)
        .await
    {
        Ok(missing) => {
            let deleted = refs.len() - missing.len();
            let note = if missing.is_empty() {
                format!("Deleted {deleted} tag(s).")
            } else {
                format!(
                    "Deleted {deleted} tag(s); {} no longer existed.",
                    missing.join(", ")
                )
            };
            see_other(&format!("/r/{name}/tags?done={}", q(&note)))
        }
        Err(e) => hub_error(&state, &ctx, e),
    }
}

/// `POST /r/{ns}/{repo}/copy`: copies (or moves) a tag or digest to another repository.
pub(crate) async fn repo_copy(
    State(state): State<AppState>,
    Path((ns, repo)): Path<(String, String)>,
    req: Request,
) -> Response {
    let (headers, form, ctx, from) = match repo_form(&state, &ns, &repo, req, 16 * 1024).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let fail = |m: String| Extra {
        error: Some(m),
        status: StatusCode::BAD_REQUEST,
        ..Extra::default()
    };
    let reference = value(&form, "reference");
    let Ok(reference) = reference.trim().parse::<Reference>() else {
        let extra = fail(format!("{reference:?} is not a tag or digest."));
        return repo_page(&state, &ctx, &headers, &ns, &repo, "tags", "", extra).await;
    };
    let target = value(&form, "target");
    let Ok(to) = target.trim().parse::<RepoName>() else {
        let extra = fail(format!(
            "{target:?} is not a repository name (namespace/name)."
        ));
        return repo_page(&state, &ctx, &headers, &ns, &repo, "tags", "", extra).await;
    };
    let tag = value(&form, "target_tag");
    let tag = match tag.trim() {
        "" => None,
        t => match t.parse::<Tag>() {
            Ok(t) => Some(t),
            Err(_) => {
                let extra = fail(format!("{t:?} is not a valid tag."));
                return repo_page(&state, &ctx, &headers, &ns, &repo, "tags", "", extra).await;
            }
        },
    };
    let mode = if value(&form, "move") == "yes" {
        wharf_hub::Transfer::Move
    } else {
        wharf_hub::Transfer::Copy
    };
    match state
        .hub
        .transfer_image(
            &state.registry,
            &ctx.principal(),
            &from,
            &reference,
            &to,
            tag.as_ref(),
            mode,
        )
        .await
    {
        Ok(digest) => {
            let verb = if mode == wharf_hub::Transfer::Move {
                "Moved"
            } else {
                "Copied"
            };
            see_other(&format!(
                "/r/{to}/tags?done={}",
                q(&format!("{verb} {digest} from {from}."))
            ))
        }
        Err(HubError::InvalidInput(m))
        | Err(HubError::Forbidden(m))
        | Err(HubError::Conflict(m))
        | Err(HubError::NotFound(m)) => {
            repo_page(&state, &ctx, &headers, &ns, &repo, "tags", "", fail(m)).await
        }
        Err(e) => hub_error(&state, &ctx, e),
    }
}

/// `POST /r/{ns}/{repo}/settings` with `action`: `info`, `overview` (with `mode` write,
/// preview or update), `visibility`, `archive`, `unarchive` or `delete`.
pub(crate) async fn repo_settings_post(
    State(state): State<AppState>,
    Path((ns, repo)): Path<(String, String)>,
    req: Request,
) -> Response {
    let (headers, form, ctx, name) =
        match repo_form(&state, &ns, &repo, req, MAX_SETTINGS_FORM).await {
            Ok(f) => f,
            Err(r) => return r,
        };
    let who = ctx.principal();
    let action = value(&form, "action");
    let mut patch = RepoPatch::default();
    let mut extra = Extra::default();
    match action.as_str() {
        "info" => {
            let d = value(&form, "description");
            let c = values(&form, "category");
            extra.description = Some(d.clone());
            extra.categories = Some(c.clone());
            patch.description = Some(d);
            patch.categories = Some(c);
        }
        "overview" => {
            let o = value(&form, "overview").replace("\r\n", "\n");
            extra.overview = Some(o.clone());
            match value(&form, "mode").as_str() {
                "preview" => {
                    extra.preview = true;
                    return repo_page(&state, &ctx, &headers, &ns, &repo, "settings", "", extra)
                        .await;
                }
                "write" => {
                    return repo_page(&state, &ctx, &headers, &ns, &repo, "settings", "", extra)
                        .await;
                }
                _ => patch.overview = Some(o),
            }
        }
        "visibility" => patch.private = Some(value(&form, "visibility") == "private"),
        "archive" => patch.archived = Some(true),
        "unarchive" => patch.archived = Some(false),
        "delete" => {
            if value(&form, "confirm_name") != name.as_str() {
                extra.error = Some(format!("Type {name} to confirm deleting the repository."));
                extra.status = StatusCode::BAD_REQUEST;
                return repo_page(&state, &ctx, &headers, &ns, &repo, "settings", "", extra).await;
            }
            return match state.hub.delete_repo(&state.registry, &who, &name).await {
                Ok(()) => see_other(&format!("/u/{ns}?done={}", q(&format!("Deleted {name}.")))),
                Err(e) => hub_error(&state, &ctx, e),
            };
        }
        other => {
            return message(
                &state,
                &ctx,
                StatusCode::BAD_REQUEST,
                "Check the input",
                &format!("Unknown action {other:?}."),
            );
        }
    }
    match state.hub.update_repo(&who, &name, patch).await {
        Ok(_) => see_other(&format!("/r/{name}/settings?done={}", q("Saved."))),
        Err(HubError::InvalidInput(m)) | Err(HubError::Conflict(m)) => {
            extra.error = Some(m);
            extra.status = StatusCode::BAD_REQUEST;
            repo_page(&state, &ctx, &headers, &ns, &repo, "settings", "", extra).await
        }
        Err(e) => hub_error(&state, &ctx, e),
    }
}

/// Reads a multipart form: its text fields and at most one file (`field`), checking CSRF.
async fn multipart_form(
    headers: &HeaderMap,
    mut mp: Multipart,
    file_field: &str,
) -> Result<(Vec<(String, String)>, Option<bytes::Bytes>), Response> {
    let bad = |m: String| {
        (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            m,
        )
            .into_response()
    };
    let mut fields = Vec::new();
    let mut file = None;
    while let Some(field) = mp
        .next_field()
        .await
        .map_err(|e| bad(format!("the upload could not be read: {e}\n")))?
    {
        let name = field.name().unwrap_or("").to_owned();
        if name == file_field {
            let data = field
                .bytes()
                .await
                .map_err(|e| bad(format!("the file could not be read: {e}\n")))?;
            if !data.is_empty() {
                file = Some(data);
            }
        } else if fields.len() < 32 {
            let text = field
                .text()
                .await
                .map_err(|e| bad(format!("the form could not be read: {e}\n")))?;
            fields.push((name, text.chars().take(2000).collect()));
        }
    }
    let sent = value(&fields, "csrf");
    check_csrf(headers, &sent)?;
    Ok((fields, file))
}

/// `POST /r/{ns}/{repo}/logo` (multipart): `action` upload with `logo`, or clear.
pub(crate) async fn repo_logo_post(
    State(state): State<AppState>,
    Path((ns, repo)): Path<(String, String)>,
    req: Request,
) -> Response {
    let headers = req.headers().clone();
    let ctx = Ctx::of(&state, &headers).await;
    let Some(name) = repo_name(&ns, &repo) else {
        return message(
            &state,
            &ctx,
            StatusCode::NOT_FOUND,
            "Not found",
            "That is not a repository name.",
        );
    };
    let req = req.map(|b| axum::body::Body::new(http_body_util::Limited::new(b, MAX_UPLOAD_FORM)));
    let mp = match <Multipart as axum::extract::FromRequest<()>>::from_request(req, &()).await {
        Ok(m) => m,
        Err(e) => {
            return message(
                &state,
                &ctx,
                StatusCode::BAD_REQUEST,
                "Check the input",
                &format!("The upload must be a multipart form: {e}"),
            );
        }
    };
    let (fields, file) = match multipart_form(&headers, mp, "logo").await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let data = match value(&fields, "action").as_str() {
        "clear" => None,
        _ => match file {
            Some(f) => Some(f),
            None => {
                let extra = Extra {
                    error: Some("Choose a JPEG or PNG file to upload.".into()),
                    status: StatusCode::BAD_REQUEST,
                    ..Extra::default()
                };
                return repo_page(&state, &ctx, &headers, &ns, &repo, "settings", "", extra).await;
            }
        },
    };
    let cleared = data.is_none();
    match state.hub.set_repo_logo(&ctx.principal(), &name, data).await {
        Ok(()) => see_other(&format!(
            "/r/{name}/settings?done={}",
            q(if cleared {
                "Logo cleared."
            } else {
                "Logo updated."
            })
        )),
        Err(HubError::InvalidInput(m))
        | Err(HubError::Forbidden(m))
        | Err(HubError::Conflict(m)) => {
            let extra = Extra {
                error: Some(m),
                status: StatusCode::BAD_REQUEST,
                ..Extra::default()
            };
            repo_page(&state, &ctx, &headers, &ns, &repo, "settings", "", extra).await
        }
        Err(e) => hub_error(&state, &ctx, e),
    }
}

/// `GET /r/{ns}/{repo}/logo`: the repository's logo as the signed-in user may see it.
pub(crate) async fn repo_logo(
    State(state): State<AppState>,
    Path((ns, repo)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let ctx = Ctx::of(&state, &headers).await;
    let Some(name) = repo_name(&ns, &repo) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match state.hub.repo_view(&ctx.principal(), &name).await {
        Ok(v) => super::hub_repos::logo_or_default(&state, v.logo()).await,
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `GET /u/{ns}/logo`.
pub(crate) async fn namespace_logo(
    State(state): State<AppState>,
    Path(ns): Path<String>,
) -> Response {
    if !plain_name(&ns) {
        return StatusCode::NOT_FOUND.into_response();
    }
    match state.hub.namespace_logo(&ns).await {
        Ok(d) => super::hub_repos::logo_or_default(&state, d.as_deref()).await,
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

// ---- creating repositories ----

#[derive(Template)]
#[template(path = "new_repo.html")]
struct NewRepoPage {
    user: Option<String>,
    is_admin: bool,
    csrf: String,
    namespaces: Vec<(String, bool)>,
    name: String,
    description: String,
    private: bool,
    error: Option<String>,
}

async fn new_repo_page(
    state: &AppState,
    ctx: &Ctx,
    user: &User,
    form: &[(String, String)],
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let namespaces = match state.hub.writable_namespaces(user).await {
        Ok(n) => n,
        Err(e) => return hub_error(state, ctx, e),
    };
    let chosen = value(form, "namespace");
    let html = NewRepoPage {
        user: ctx.name(),
        is_admin: ctx.is_admin(),
        csrf: ctx.csrf.clone(),
        namespaces: namespaces
            .into_iter()
            .map(|n| {
                let c = n == chosen;
                (n, c)
            })
            .collect(),
        name: value(form, "name"),
        description: value(form, "description"),
        private: value(form, "visibility") == "private",
        error,
    }
    .render();
    ctx.render(state, status, html)
}

pub(crate) async fn new_repo(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let ctx = Ctx::of(&state, &headers).await;
    let Some(user) = ctx.user.clone() else {
        return see_other("/login");
    };
    new_repo_page(&state, &ctx, &user, &[], None, StatusCode::OK).await
}

pub(crate) async fn new_repo_post(State(state): State<AppState>, req: Request) -> Response {
    let (headers, form) = match checked_form_limited(req, 16 * 1024).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let ctx = Ctx::of(&state, &headers).await;
    let Some(user) = ctx.user.clone() else {
        return see_other("/login");
    };
    let ns = value(&form, "namespace");
    let repo = value(&form, "name");
    let Some(name) = repo_name(&ns, &repo) else {
        let msg = format!(
            "{ns}/{repo} is not a valid repository name: use lower-case letters, digits and . _ - separators."
        );
        return new_repo_page(
            &state,
            &ctx,
            &user,
            &form,
            Some(msg),
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    match state
        .hub
        .create_repo(
            &ctx.principal(),
            &name,
            &value(&form, "description"),
            "",
            value(&form, "visibility") == "private",
        )
        .await
    {
        Ok(_) => see_other(&format!("/r/{name}")),
        Err(HubError::InvalidInput(m))
        | Err(HubError::Conflict(m))
        | Err(HubError::Forbidden(m)) => {
            new_repo_page(&state, &ctx, &user, &form, Some(m), StatusCode::BAD_REQUEST).await
        }
        Err(e) => hub_error(&state, &ctx, e),
    }
}

// ---- namespaces and organizations ----

#[derive(Template)]
#[template(path = "namespace.html")]
struct NamespacePage {
    user: Option<String>,
    is_admin: bool,
    csrf: String,
    ns: String,
    kind: &'static str,
    badge: Option<(&'static str, &'static str)>,
    repos: Vec<RepoItem>,
    count: u64,
    storage: Option<String>,
    members: Vec<(String, &'static str)>,
    teams: Vec<(String, u64)>,
    is_owner: bool,
    /// Whether the viewer may open the Analytics page.
    analytics: bool,
    notice: Option<String>,
    prev: Option<String>,
    next: Option<String>,
}

pub(crate) async fn namespace(
    State(state): State<AppState>,
    Path(ns): Path<String>,
    req: Request,
) -> Response {
    let ctx = Ctx::of(&state, req.headers()).await;
    if !plain_name(&ns) {
        return message(
            &state,
            &ctx,
            StatusCode::NOT_FOUND,
            "Not found",
            "That is not a user or organization name.",
        );
    }
    let hub = &state.hub;
    let kind = match hub.namespace_kind(&ns).await {
        Ok(Some(k)) => k,
        Ok(None) => {
            return message(
                &state,
                &ctx,
                StatusCode::NOT_FOUND,
                "Not found",
                &format!("There is no user or organization named {ns:?}."),
            );
        }
        Err(e) => return hub_error(&state, &ctx, e),
    };
    let params: Vec<(String, String)> =
        form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .take(8)
            .collect();
    let page_no: u32 = params
        .iter()
        .find(|(k, _)| k == "page")
        .and_then(|(_, v)| v.parse().ok())
        .filter(|p| (1..=100_000).contains(p))
        .unwrap_or(1);
    let who = ctx.principal();
    let (count, repos) = match hub
        .namespace_repos(
            &who,
            &ns,
            RepoOrder::LastUpdated,
            (page_no - 1) * PAGE_SIZE,
            PAGE_SIZE,
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return hub_error(&state, &ctx, e),
    };
    let (mut members, mut teams, mut storage, mut is_owner) = (Vec::new(), Vec::new(), None, false);
    // Members (the user themself, administrators) may open the Analytics page.
    let mut analytics = false;
    if let Some(u) = &ctx.user {
        let inside = u.is_admin || u.name == ns || hub.is_org_member(&ns, u).await.unwrap_or(false);
        analytics = inside;
        if inside {
            storage = hub.namespace_storage(&ns).await.ok().map(human_size);
        }
        if kind == "organization" && inside {
            if let Ok((_, m)) = hub.org_members(u, &ns, 0, 100).await {
                members = m.into_iter().map(|(n, r)| (n, r.as_str())).collect();
            }
            if let Ok((_, t)) = hub.teams(u, &ns, 0, 100).await {
                teams = t;
            }
            is_owner = hub.org_owner(u, &ns).await.unwrap_or(false);
        }
    }
    let link = |p: u32| format!("/u/{ns}?page={p}");
    let html = NamespacePage {
        user: ctx.name(),
        is_admin: ctx.is_admin(),
        csrf: ctx.csrf.clone(),
        kind,
        badge: hub
            .program_of(&ns)
            .await
            .ok()
            .flatten()
            .map(|b| (b.slug(), b.label())),
        repos: repos.iter().map(RepoItem::of).collect(),
        count,
        storage,
        members,
        teams,
        is_owner,
        analytics,
        notice: params
            .iter()
            .find(|(k, _)| k == "done")
            .map(|(_, v)| v.chars().take(200).collect()),
        prev: (page_no > 1).then(|| link(page_no - 1)),
        next: (u64::from(page_no) * u64::from(PAGE_SIZE) < count).then(|| link(page_no + 1)),
        ns,
    }
    .render();
    ctx.render(&state, StatusCode::OK, html)
}

// ---- programs ----

struct ApplicationItem {
    id: i64,
    namespace: String,
    program: &'static str,
    status: String,
    legal_name: String,
    website: String,
    phone: String,
    email: String,
    logo: String,
    applied_by: String,
    applied: String,
    decided: String,
    note: String,
}

impl ApplicationItem {
    fn of(a: &wharf_hub::ApplicationRow) -> Self {
        Self {
            id: a.id,
            namespace: a.namespace.clone(),
            program: Badge::parse(&a.program).map_or("?", Badge::label),
            status: a.status.clone(),
            legal_name: a.legal_name.clone(),
            website: a.website.clone(),
            phone: a.phone.clone(),
            email: a.email.clone(),
            logo: a.logo.clone(),
            applied_by: a.applied_by.clone(),
            applied: date(Some(a.applied_at)),
            decided: date(a.decided_at),
            note: a.note.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "programs.html")]
struct ProgramsPage {
    user: Option<String>,
    is_admin: bool,
    csrf: String,
    org: String,
    applications: Vec<ApplicationItem>,
    is_owner: bool,
    form: Vec<(String, String)>,
    error: Option<String>,
    notice: Option<String>,
}

impl ProgramsPage {
    fn field(&self, k: &str) -> String {
        value(&self.form, k)
    }
}

async fn programs_page(
    state: &AppState,
    ctx: &Ctx,
    org: &str,
    form: Vec<(String, String)>,
    error: Option<String>,
    notice: Option<String>,
    status: StatusCode,
) -> Response {
    if !plain_name(org) {
        return message(
            state,
            ctx,
            StatusCode::NOT_FOUND,
            "Not found",
            "That is not an organization name.",
        );
    }
    let Some(user) = &ctx.user else {
        return see_other("/login");
    };
    let applications = match state.hub.org_applications(user, org).await {
        Ok(a) => a,
        Err(e) => return hub_error(state, ctx, e),
    };
    let html = ProgramsPage {
        user: ctx.name(),
        is_admin: ctx.is_admin(),
        csrf: ctx.csrf.clone(),
        org: org.to_owned(),
        applications: applications.iter().map(ApplicationItem::of).collect(),
        is_owner: state.hub.org_owner(user, org).await.unwrap_or(false),
        form,
        error,
        notice,
    }
    .render();
    ctx.render(state, status, html)
}

pub(crate) async fn programs(
    State(state): State<AppState>,
    Path(org): Path<String>,
    req: Request,
) -> Response {
    let ctx = Ctx::of(&state, req.headers()).await;
    let notice = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "done")
        .map(|(_, v)| v.chars().take(200).collect());
    programs_page(&state, &ctx, &org, Vec::new(), None, notice, StatusCode::OK).await
}

pub(crate) async fn programs_post(
    State(state): State<AppState>,
    Path(org): Path<String>,
    req: Request,
) -> Response {
    let headers = req.headers().clone();
    let ctx = Ctx::of(&state, &headers).await;
    let Some(user) = ctx.user.clone() else {
        return see_other("/login");
    };
    if !plain_name(&org) {
        return message(
            &state,
            &ctx,
            StatusCode::NOT_FOUND,
            "Not found",
            "That is not an organization name.",
        );
    }
    let req = req.map(|b| axum::body::Body::new(http_body_util::Limited::new(b, MAX_UPLOAD_FORM)));
    let mp = match <Multipart as axum::extract::FromRequest<()>>::from_request(req, &()).await {
        Ok(m) => m,
        Err(e) => {
            return message(
                &state,
                &ctx,
                StatusCode::BAD_REQUEST,
                "Check the input",
                &format!("The application must be a multipart form: {e}"),
            );
        }
    };
    let (fields, file) = match multipart_form(&headers, mp, "logo").await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(program) = Badge::parse(&value(&fields, "program")).filter(|b| *b != Badge::Official)
    else {
        return programs_page(
            &state,
            &ctx,
            &org,
            fields,
            Some("Choose the Verified Publisher or the Sponsored Open Source program.".into()),
            None,
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    let Some(logo) = file else {
        return programs_page(
            &state,
            &ctx,
            &org,
            fields,
            Some(
                "The publisher profile needs a square logo (JPEG or PNG, at least 512×512).".into(),
            ),
            None,
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    let profile = PublisherProfile {
        legal_name: value(&fields, "legal_name"),
        website: value(&fields, "website"),
        phone: value(&fields, "phone"),
        email: value(&fields, "email"),
        logo,
    };
    match state.hub.apply_program(&user, &org, program, profile).await {
        Ok(_) => see_other(&format!(
            "/orgs/{org}/programs?done={}",
            q("Application sent; an administrator will review it.")
        )),
        Err(HubError::InvalidInput(m))
        | Err(HubError::Conflict(m))
        | Err(HubError::Forbidden(m)) => {
            programs_page(
                &state,
                &ctx,
                &org,
                fields,
                Some(m),
                None,
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(e) => hub_error(&state, &ctx, e),
    }
}

/// `GET /logos/{digest}`: a stored logo (publisher profiles on the review pages).
pub(crate) async fn stored_logo(
    State(state): State<AppState>,
    Path(digest): Path<String>,
) -> Response {
    if !plain_name(&digest) {
        return StatusCode::NOT_FOUND.into_response();
    }
    match state.hub.logo(&digest).await {
        Ok(Some((media_type, data))) => super::hub_repos::image_response(&media_type, data),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    user: Option<String>,
    is_admin: bool,
    csrf: String,
    status: String,
    applications: Vec<ApplicationItem>,
    count: u64,
    notice: Option<String>,
    /// Namespaces with analytics: (name, how: "administrator" or the program's name).
    analytics: Vec<(String, String, bool)>,
    analytics_count: u64,
}

pub(crate) async fn admin(State(state): State<AppState>, req: Request) -> Response {
    let ctx = Ctx::of(&state, req.headers()).await;
    let Some(user) = ctx.user.clone() else {
        return see_other("/login");
    };
    let params: Vec<(String, String)> =
        form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .take(8)
            .collect();
    let status = params
        .iter()
        .find(|(k, _)| k == "status")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "pending".into());
    let filter = (status != "all").then_some(status.as_str());
    let (analytics_count, analytics) = match state.hub.analytics_namespaces(&user, 0, 100).await {
        Ok((n, rows)) => (
            n,
            rows.into_iter()
                .map(|r| {
                    let how = match (&r.enabled_by, r.program.as_deref().and_then(Badge::parse)) {
                        (Some(by), Some(b)) => format!("enabled by {by}; {} program", b.label()),
                        (Some(by), None) => format!("enabled by {by}"),
                        (None, Some(b)) => format!("{} program", b.label()),
                        (None, None) => String::new(),
                    };
                    (r.namespace, how, r.enabled_by.is_some())
                })
                .collect(),
        ),
        Err(e) => return hub_error(&state, &ctx, e),
    };
    match state.hub.all_applications(&user, filter, 0, 100).await {
        Ok((count, apps)) => {
            let html = AdminPage {
                user: ctx.name(),
                is_admin: ctx.is_admin(),
                csrf: ctx.csrf.clone(),
                applications: apps.iter().map(ApplicationItem::of).collect(),
                count,
                notice: params
                    .iter()
                    .find(|(k, _)| k == "done")
                    .map(|(_, v)| v.chars().take(200).collect()),
                status,
                analytics,
                analytics_count,
            }
            .render();
            ctx.render(&state, StatusCode::OK, html)
        }
        Err(e) => hub_error(&state, &ctx, e),
    }
}

pub(crate) async fn admin_decide(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    req: Request,
) -> Response {
    let (headers, form) = match checked_form_limited(req, 16 * 1024).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let ctx = Ctx::of(&state, &headers).await;
    let Some(user) = ctx.user.clone() else {
        return see_other("/login");
    };
    let Some(decision) = Decision::parse(&value(&form, "decision")) else {
        return message(
            &state,
            &ctx,
            StatusCode::BAD_REQUEST,
            "Check the input",
            "Choose approve, reject or revoke.",
        );
    };
    match state
        .hub
        .decide_program(&user, id, decision, &value(&form, "note"))
        .await
    {
        Ok(a) => see_other(&format!(
            "/admin?status=all&done={}",
            q(&format!(
                "Application {} of {} is now {}.",
                a.id, a.namespace, a.status
            ))
        )),
        Err(e) => hub_error(&state, &ctx, e),
    }
}

// ---- rate limits (administration) ----

/// The kinds of subject a rule applies to, as the form offers them.
const RULE_KIND_LABELS: [(&str, &str); 3] = [
    ("user", "User"),
    ("org", "Organization"),
    ("range", "Address range"),
];

fn rule_kind_label(kind: &str) -> &'static str {
    RULE_KIND_LABELS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("Rule", |(_, label)| label)
}

/// A window length as people say it: "6 hours", "1 minute".
fn window_text(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    let (n, unit) = match secs {
        0 => (0, "second"),
        s if s % 86_400 == 0 => (s / 86_400, "day"),
        s if s % 3_600 == 0 => (s / 3_600, "hour"),
        s if s % 60 == 0 => (s / 60, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

struct RateRuleItem {
    kind: String,
    kind_label: &'static str,
    subject: String,
    pulls: Option<i64>,
    note: String,
    created: String,
}

struct KindOption {
    value: &'static str,
    label: &'static str,
    selected: bool,
}

/// The add-or-replace form as it was sent, shown again when it had a mistake.
#[derive(Default)]
struct RuleForm {
    kind: String,
    subject: String,
    pulls: String,
    exempt: bool,
    note: String,
}

impl RuleForm {
    fn of(form: &[(String, String)]) -> Self {
        Self {
            kind: value(form, "kind"),
            subject: value(form, "subject").trim().to_owned(),
            pulls: value(form, "pulls").trim().to_owned(),
            exempt: !value(form, "exempt").is_empty(),
            note: value(form, "note").trim().to_owned(),
        }
    }

    /// The pulls per window, or None for an exemption.
    fn pulls(&self) -> Result<Option<u64>, String> {
        match (self.exempt, self.pulls.is_empty()) {
            (true, true) => Ok(None),
            (false, false) => self.pulls.parse().map(Some).map_err(|_| {
                format!(
                    "Pulls {:?} is not a whole number: give the pulls allowed per window, such as 500.",
                    self.pulls.chars().take(40).collect::<String>()
                )
            }),
            (true, false) => {
                Err("Give either a number of pulls or tick exempt, not both.".into())
            }
            (false, true) => {
                Err("Give the number of pulls allowed per window, or tick exempt for no limit.".into())
            }
        }
    }
}

#[derive(Template)]
#[template(path = "admin_rate_limits.html")]
struct RateLimitsPage {
    user: Option<String>,
    is_admin: bool,
    csrf: String,
    enabled: bool,
    anonymous: u64,
    authenticated: u64,
    window: String,
    rules: Vec<RateRuleItem>,
    count: u64,
    kinds: Vec<KindOption>,
    form: RuleForm,
    error: Option<String>,
    notice: Option<String>,
    prev: Option<String>,
    next: Option<String>,
}

/// The rate limits page: the server's defaults, a page of rules and the rule form.
async fn rate_limits_page(
    state: &AppState,
    ctx: &Ctx,
    page_no: u32,
    form: RuleForm,
    error: Option<String>,
    notice: Option<String>,
    status: StatusCode,
) -> Response {
    let Some(user) = &ctx.user else {
        return see_other("/login");
    };
    let (count, rows) = match state
        .hub
        .rate_rules(user, (page_no - 1) * PAGE_SIZE, PAGE_SIZE)
        .await
    {
        Ok(r) => r,
        Err(e) => return hub_error(state, ctx, e),
    };
    let config = state.hub.limit_config();
    let link = |p: u32| format!("/admin/rate-limits?page={p}");
    let kind = if form.kind.is_empty() {
        "user"
    } else {
        form.kind.as_str()
    };
    let html = RateLimitsPage {
        user: ctx.name(),
        is_admin: ctx.is_admin(),
        csrf: ctx.csrf.clone(),
        enabled: config.enabled,
        anonymous: config.anonymous,
        authenticated: config.authenticated,
        window: window_text(config.window),
        rules: rows
            .into_iter()
            .map(|r| RateRuleItem {
                kind_label: rule_kind_label(&r.kind),
                kind: r.kind,
                subject: r.subject,
                pulls: r.pulls,
                note: r.note,
                created: date(Some(r.created_at)),
            })
            .collect(),
        count,
        kinds: RULE_KIND_LABELS
            .iter()
            .map(|&(value, label)| KindOption {
                value,
                label,
                selected: value == kind,
            })
            .collect(),
        form,
        error,
        notice,
        prev: (page_no > 1).then(|| link(page_no - 1)),
        next: (u64::from(page_no) * u64::from(PAGE_SIZE) < count).then(|| link(page_no + 1)),
    }
    .render();
    ctx.render(state, status, html)
}

/// `GET /admin/rate-limits`: the administrator's pull rate limit rules.
pub(crate) async fn admin_rate_limits(State(state): State<AppState>, req: Request) -> Response {
    let ctx = Ctx::of(&state, req.headers()).await;
    let params: Vec<(String, String)> =
        form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .take(8)
            .collect();
    let page_no: u32 = params
        .iter()
        .find(|(k, _)| k == "page")
        .and_then(|(_, v)| v.parse().ok())
        .filter(|p| (1..=100_000).contains(p))
        .unwrap_or(1);
    let notice = params
        .iter()
        .find(|(k, _)| k == "done")
        .map(|(_, v)| v.chars().take(200).collect());
    rate_limits_page(
        &state,
        &ctx,
        page_no,
        RuleForm::default(),
        None,
        notice,
        StatusCode::OK,
    )
    .await
}

/// `POST /admin/rate-limits`: adds a rule, or replaces the subject's rule.
pub(crate) async fn admin_rate_limits_post(
    State(state): State<AppState>,
    req: Request,
) -> Response {
    let (headers, form) = match checked_form_limited(req, 16 * 1024).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let ctx = Ctx::of(&state, &headers).await;
    let Some(user) = ctx.user.clone() else {
        return see_other("/login");
    };
    let form = RuleForm::of(&form);
    // A mistake in the form shows on the page; the page itself is for administrators only.
    let refuse = |form: RuleForm, error: String| {
        rate_limits_page(
            &state,
            &ctx,
            1,
            form,
            Some(error),
            None,
            StatusCode::BAD_REQUEST,
        )
    };
    if !plain_name(&form.subject) {
        return refuse(
            form,
            "Give the user name, organization name or address range the rule is for.".into(),
        )
        .await;
    }
    let pulls = match form.pulls() {
        Ok(p) => p,
        Err(m) => return refuse(form, m).await,
    };
    match state
        .hub
        .set_rate_rule(&user, &form.kind, &form.subject, pulls, &form.note)
        .await
    {
        Ok(r) => {
            let what = format!("{} {}", rule_kind_label(&r.kind).to_lowercase(), r.subject);
            let done = match r.pulls {
                Some(p) => format!(
                    "Saved: {what} may pull {p} times per {}.",
                    window_text(state.hub.limit_config().window)
                ),
                None => format!("Saved: {what} is exempt from pull limits."),
            };
            see_other(&format!("/admin/rate-limits?done={}", q(&done)))
        }
        Err(HubError::InvalidInput(m)) | Err(HubError::InvalidName(m)) => refuse(form, m).await,
        Err(HubError::NotFound(_)) => {
            let m = format!(
                "There is no {} named {:?}; check the name.",
                if form.kind == "org" {
                    "organization"
                } else {
                    "user"
                },
                form.subject
            );
            refuse(form, m).await
        }
        Err(e) => hub_error(&state, &ctx, e),
    }
}

/// `POST /admin/rate-limits/delete`: removes a rule.
pub(crate) async fn admin_rate_limits_delete(
    State(state): State<AppState>,
    req: Request,
) -> Response {
    let (headers, form) = match checked_form_limited(req, 16 * 1024).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let ctx = Ctx::of(&state, &headers).await;
    let Some(user) = ctx.user.clone() else {
        return see_other("/login");
    };
    let (kind, subject) = (value(&form, "kind"), value(&form, "subject"));
    match state.hub.delete_rate_rule(&user, &kind, &subject).await {
        Ok(()) => see_other(&format!(
            "/admin/rate-limits?done={}",
            q(&format!(
                "Removed the rule for {} {subject}.",
                rule_kind_label(&kind).to_lowercase()
            ))
        )),
        Err(HubError::NotFound(_)) => {
            let m = format!(
                "There is no rule for {} {subject:?}; it may have been removed already.",
                rule_kind_label(&kind).to_lowercase()
            );
            rate_limits_page(
                &state,
                &ctx,
                1,
                RuleForm::default(),
                Some(m),
                None,
                StatusCode::NOT_FOUND,
            )
            .await
        }
        Err(HubError::InvalidInput(m)) => {
            rate_limits_page(
                &state,
                &ctx,
                1,
                RuleForm::default(),
                Some(m),
                None,
                StatusCode::BAD_REQUEST,
            )
            .await
        }
        Err(e) => hub_error(&state, &ctx, e),
    }
}

// ---- access tokens ----

struct TokenItem {
    id: String,
    label: String,
    scope: String,
    created: String,
    last_used: String,
    expires: String,
    active: bool,
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    user: Option<String>,
    is_admin: bool,
    csrf: String,
    tokens: Vec<TokenItem>,
    scopes: &'static [&'static str],
    secret: Option<String>,
    error: Option<String>,
}

async fn tokens_page(
    state: &AppState,
    ctx: &Ctx,
    user: &User,
    secret: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let rows = match state.hub.access_tokens(&user.name).await {
        Ok(r) => r,
        Err(e) => return hub_error(state, ctx, e),
    };
    let now = wharf_db::now();
    let html = TokensPage {
        user: ctx.name(),
        is_admin: ctx.is_admin(),
        csrf: ctx.csrf.clone(),
        tokens: rows
            .iter()
            .map(|t| TokenItem {
                id: t.id.clone(),
                label: t.label.clone(),
                scope: t.scope.clone(),
                created: date(Some(t.created_at)),
                last_used: date(t.last_used_at),
                expires: t.expires_at.map_or("never".into(), |e| date(Some(e))),
                active: t.revoked_at.is_none() && t.expires_at.is_none_or(|e| e > now),
            })
            .collect(),
        scopes: wharf_hub::TOKEN_SCOPES,
        secret,
        error,
    }
    .render();
    // The secret is on this page only: never cache it.
    ctx.render(state, status, html)
}

pub(crate) async fn tokens(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let ctx = Ctx::of(&state, &headers).await;
    let Some(user) = ctx.user.clone() else {
        return see_other("/login");
    };
    if !user.full_authority() {
        return message(
            &state,
            &ctx,
            StatusCode::FORBIDDEN,
            "Not allowed",
            "Signed in with a limited access token: sign in with your password to manage access tokens.",
        );
    }
    tokens_page(&state, &ctx, &user, None, None, StatusCode::OK).await
}

pub(crate) async fn tokens_post(State(state): State<AppState>, req: Request) -> Response {
    let (headers, form) = match checked_form_limited(req, 16 * 1024).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let ctx = Ctx::of(&state, &headers).await;
    let Some(user) = ctx.user.clone() else {
        return see_other("/login");
    };
    if !user.full_authority() {
        return message(
            &state,
            &ctx,
            StatusCode::FORBIDDEN,
            "Not allowed",
            "Signed in with a limited access token: sign in with your password to manage access tokens.",
        );
    }
    if let Some(id) = form
        .iter()
        .find(|(k, _)| k == "revoke")
        .map(|(_, v)| v.clone())
        .filter(|id| plain_name(id))
    {
        return match state.hub.revoke_own_access_token(&user, &id).await {
            Ok(()) => see_other("/settings/tokens"),
            Err(e) => hub_error(&state, &ctx, e),
        };
    }
    let days = match value(&form, "expires_days").as_str() {
        "" | "0" => None,
        d => match d.parse::<u32>() {
            Ok(d) if d <= 3650 => Some(d),
            _ => {
                return tokens_page(
                    &state,
                    &ctx,
                    &user,
                    None,
                    Some("Expiry must be a number of days up to 3650, or never.".into()),
                    StatusCode::BAD_REQUEST,
                )
                .await;
            }
        },
    };
    match state
        .hub
        .add_access_token(
            &user.name,
            &value(&form, "label"),
            &value(&form, "scope"),
            days,
        )
        .await
    {
        Ok(t) => tokens_page(&state, &ctx, &user, Some(t.secret), None, StatusCode::OK).await,
        Err(HubError::InvalidInput(m)) => {
            tokens_page(&state, &ctx, &user, None, Some(m), StatusCode::BAD_REQUEST).await
        }
        Err(e) => hub_error(&state, &ctx, e),
    }
}

/// `GET /static/{file}`: the stylesheet and the default logo, from the binary.
pub(crate) async fn static_file(Path(file): Path<String>) -> Response {
    let (ty, body): (&str, &'static str) = match file.as_str() {
        "wharf.css" => (
            "text/css; charset=utf-8",
            include_str!("../../static/wharf.css"),
        ),
        "default-logo.svg" => ("image/svg+xml", super::hub_repos::DEFAULT_LOGO_SVG),
        "analytics.js" => (
            "text/javascript; charset=utf-8",
            include_str!("../../static/analytics.js"),
        ),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, ty),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}
