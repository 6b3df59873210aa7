//! The analytics API in the shape of Docker's DVP Data API, under
//! `/api/publisher/analytics/v1`, so scripts written for Docker Hub's work with a changed base
//! URL: the namespaces a caller may see, pull counts per period, and report exports by year,
//! week or month with download links.
//!
//! Callers sign in as for the rest of the JSON API (`Authorization: Bearer` with a token from
//! `POST /v2/users/login` or `POST /v2/auth/token`). A namespace's analytics are visible to
//! its members (and to the user whose namespace it is, and to administrators); to anyone else
//! the namespace answers 404, as a missing one would. Download links carry their own
//! signature and expire after [`LINK_TTL_SECS`], so `curl` can fetch them without the token.

// Handlers answer refusals as ready responses, once per request.
#![allow(clippy::result_large_err)]

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use time::Date;
use wharf_analytics::report::{Granularity, Period};
use wharf_hub::{HubError, PullsInPeriod, ReportKind, User};

use super::hub_api::{error, from_hub, json};
use crate::app::AppState;

/// Where the API lives.
pub(crate) const BASE: &str = "/api/publisher/analytics/v1";
/// How long a download link works.
pub(crate) const LINK_TTL_SECS: i64 = 3600;
/// At most this many repositories per `GET /repos/pulls`.
const MAX_REPOS: usize = 50;

/// Every endpoint, as (method, path pattern) below [`BASE`]; the authorization matrix test
/// has a row for each.
#[cfg(test)]
pub(crate) const ENDPOINTS: &[(&str, &str)] = &[
    ("GET", "/namespaces"),
    ("GET", "/namespaces/{ns}"),
    ("GET", "/namespaces/{ns}/pulls"),
    ("GET", "/namespaces/{ns}/repos/{repo}/pulls"),
    ("GET", "/repos/pulls"),
    ("GET", "/namespaces/{ns}/pulls/exports/years"),
    (
        "GET",
        "/namespaces/{ns}/pulls/exports/years/{year}/{timespantype}",
    ),
    (
        "GET",
        "/namespaces/{ns}/pulls/exports/years/{year}/{timespantype}/{timespan}",
    ),
    (
        "GET",
        "/namespaces/{ns}/pulls/exports/years/{year}/{timespantype}/{timespan}/{dataview}",
    ),
    ("GET", "/downloads/{ns}/{period}/{dataview}"),
    ("GET", "/downloads/{ns}/{period}/{dataview}/{extension}"),
];

pub(crate) async fn dispatch(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
) -> Response {
    let quota =
        match super::limits::check_api(&state, req.headers(), super::client_ip(&state, &req)).await
        {
            Ok(q) => q,
            Err(refused) => return refused,
        };
    let mut resp = route(&state, req).await;
    if let Some(q) = quota {
        super::limits::set_api_headers(&mut resp, &q);
    }
    resp
}

async fn route(state: &AppState, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let Some(rest) = path.strip_prefix(BASE) else {
        return error(StatusCode::NOT_FOUND, "no such API endpoint");
    };
    let segs: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    if req.method() != Method::GET {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "the analytics API only answers GET",
        );
    }
    let headers = req.headers().clone();
    match segs.as_slice() {
        ["downloads", ns, period, view] => {
            return download(state, ns, period, view, None, &query).await;
        }
        ["downloads", ns, period, view, extension] => {
            return download(state, ns, period, view, Some(extension), &query).await;
        }
        _ => {}
    }
    let user = match super::hub_repos::principal(state, &headers).await {
        Ok(wharf_hub::Principal::User(u)) => u,
        Ok(wharf_hub::Principal::Anonymous) => {
            return error(StatusCode::UNAUTHORIZED, super::hub_api::SIGN_IN_FIRST);
        }
        Err(r) => return r,
    };
    let today = time::OffsetDateTime::now_utc().date();
    let result = match segs.as_slice() {
        ["namespaces"] => namespaces(state, &user).await,
        [ns, ..] if !matches!(*ns, "namespaces" | "repos") => {
            Err(error(StatusCode::NOT_FOUND, "no such API endpoint"))
        }
        ["namespaces", ns, rest @ ..] => match visible(state, &user, ns).await {
            Err(r) => Err(r),
            Ok(()) => match rest {
                [] => metadata(state, ns).await,
                ["pulls"] => pulls(state, ns, None, &query, today).await,
                ["repos", repo, "pulls"] => {
                    pulls(state, ns, Some(&format!("{ns}/{repo}")), &query, today).await
                }
                ["pulls", "exports", "years"] => years(state, ns, today).await,
                ["pulls", "exports", "years", year, kind] => {
                    timespans(state, ns, year, kind, today).await
                }
                ["pulls", "exports", "years", year, kind, n] => {
                    exported_period(year, kind, n, today)
                        .map(|(p, _)| json(StatusCode::OK, timespan_json(&p)))
                }
                ["pulls", "exports", "years", year, kind, n, view] => {
                    data_view(state, &headers, ns, year, kind, n, view, today).await
                }
                _ => Err(error(StatusCode::NOT_FOUND, "no such API endpoint")),
            },
        },
        ["repos", "pulls"] => repos_pulls(state, &user, &query, today).await,
        _ => Err(error(StatusCode::NOT_FOUND, "no such API endpoint")),
    };
    result.unwrap_or_else(|r| r)
}

type Answer = Result<Response, Response>;

fn hub(e: HubError) -> Response {
    from_hub(e)
}

/// Whether `user` may see `ns`'s analytics: its members, the user it belongs to, and
/// administrators, when the namespace has analytics (an administrator enabled them or it is
/// in a trusted-content program); an organization access token only for its own
/// organization. Anyone else gets the 404 a missing namespace gets.
async fn visible(state: &AppState, user: &User, ns: &str) -> Result<(), Response> {
    let hidden = || {
        error(
            StatusCode::NOT_FOUND,
            &format!(
                "namespace {ns:?} does not exist or you may not see its analytics",
                ns = ns.chars().take(64).collect::<String>()
            ),
        )
    };
    if user.org_token.as_deref().is_some_and(|o| o != ns) {
        return Err(hidden());
    }
    match state.hub.analytics_access(Some(user), ns).await {
        Ok(access) if access.enabled() => Ok(()),
        Ok(_) => Err(error(
            StatusCode::NOT_FOUND,
            &format!(
                "namespace {ns:?} has no analytics; an administrator can enable them \
                 (PUT /v2/admin/analytics/namespaces/{ns}); trusted-content program \
                 members always have them"
            ),
        )),
        Err(HubError::NotFound(_)) => Err(hidden()),
        Err(e) => Err(hub(e)),
    }
}

async fn namespaces(state: &AppState, user: &User) -> Answer {
    let mut names = state.hub.member_namespaces(user).await.map_err(hub)?;
    if let Some(org) = &user.org_token {
        names.retain(|n| n == org);
        if names.is_empty() {
            names.push(org.clone());
        }
    }
    names.sort();
    names.dedup();
    let mut with_analytics = Vec::with_capacity(names.len());
    for name in names {
        if let Ok(access) = state.hub.analytics_access(Some(user), &name).await
            && access.enabled()
        {
            with_analytics.push(name);
        }
    }
    let names = with_analytics;
    Ok(json(
        StatusCode::OK,
        serde_json::json!({ "namespaces": names }),
    ))
}

async fn metadata(state: &AppState, ns: &str) -> Answer {
    let program = state.hub.program_of(ns).await.map_err(hub)?;
    // Whether any extension of the namespace has events (the all-time totals list every one).
    let today = time::OffsetDateTime::now_utc().date();
    let extension_publisher = !state
        .extensions
        .extension_core_summary(ns, &Period::containing(Granularity::Monthly, today))
        .await
        .map_err(hub)?
        .is_empty();
    let views: Vec<&str> = ReportKind::ALL.iter().map(|k| k.name()).collect();
    Ok(json(
        StatusCode::OK,
        serde_json::json!({
            "namespace": ns,
            "publisherType": program.map_or("none", |b| b.slug()),
            "extensionPublisher": extension_publisher,
            "extraRepos": null,
            "datasets": [
                { "name": "pulls", "timespans": ["months", "weeks"], "views": views },
                { "name": "extensions", "timespans": ["months", "weeks"], "views": EXTENSION_VIEWS },
            ],
        }),
    ))
}

/// `timespan` (`months` or `weeks`, default months) and `period` (`last-2-months`,
/// `last-3-months`, `last-6-months`, `last-12-months`, default last-2-months): the complete
/// weeks or months of that range, then the current one so far.
fn periods_asked(query: &str, today: Date) -> Result<(Vec<Period>, Option<String>), Response> {
    let mut granularity = Granularity::Monthly;
    let mut months = 2u8;
    let mut group = None;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "timespan" => {
                granularity = match v.as_ref() {
                    "months" => Granularity::Monthly,
                    "weeks" => Granularity::Weekly,
                    other => {
                        return Err(bad(&format!(
                            "timespan {:?} is not one of months, weeks",
                            short(other)
                        )));
                    }
                }
            }
            "period" => {
                months = match v.as_ref() {
                    "last-2-months" => 2,
                    "last-3-months" => 3,
                    "last-6-months" => 6,
                    "last-12-months" => 12,
                    other => {
                        return Err(bad(&format!(
                            "period {:?} is not one of last-2-months, last-3-months, \
                             last-6-months, last-12-months",
                            short(other)
                        )));
                    }
                }
            }
            "group" => group = Some(v.into_owned()),
            _ => {}
        }
    }
    let mut periods = Period::recent(granularity, today, months);
    periods.push(Period::containing(granularity, today));
    Ok((periods, group))
}

fn short(s: &str) -> String {
    s.chars().take(64).collect()
}

fn bad(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, message)
}

fn rfc3339(date: Date) -> String {
    format!(
        "{}T00:00:00Z",
        wharf_analytics::report::period::format_date(date)
    )
}

fn pull_json(p: &PullsInPeriod, ns: &str, with_ns: bool) -> serde_json::Value {
    let mut v = serde_json::json!({
        "start": rfc3339(p.period.start()),
        "end": rfc3339(p.period.end()),
        "pullCount": p.pulls,
        "ipCount": p.unique_ips,
    });
    if let Some(repo) = &p.repo {
        v["repo"] = repo
            .split_once('/')
            .map_or(repo.as_str(), |(_, r)| r)
            .into();
    }
    if with_ns {
        v["namespace"] = ns.into();
    }
    v
}

/// `GET /namespaces/{ns}/pulls` (`repo` None) and `/namespaces/{ns}/repos/{repo}/pulls`.
async fn pulls(state: &AppState, ns: &str, repo: Option<&str>, query: &str, today: Date) -> Answer {
    let (periods, group) = periods_asked(query, today)?;
    let by_repo = match (repo, group.as_deref()) {
        (Some(_), _) | (None, Some("repo")) => true,
        (None, None | Some("namespace")) => false,
        (None, Some(other)) => {
            return Err(bad(&format!(
                "group {:?} is not one of repo, namespace",
                short(other)
            )));
        }
    };
    let only = repo.map(|r| vec![r.to_owned()]);
    let rows = state
        .analytics
        .pulls_over(ns, &periods, by_repo, only.as_deref())
        .await
        .map_err(hub)?;
    let pulls: Vec<_> = rows.iter().map(|p| pull_json(p, ns, !by_repo)).collect();
    Ok(json(
        StatusCode::OK,
        serde_json::json!({ "pulls": if pulls.is_empty() { serde_json::Value::Null } else { pulls.into() } }),
    ))
}

/// `GET /repos/pulls?repos=ns/a&repos=ns/b`: pull counts of several repositories, each in
/// a namespace the caller may see.
async fn repos_pulls(state: &AppState, user: &User, query: &str, today: Date) -> Answer {
    let (periods, _) = periods_asked(query, today)?;
    let asked: Vec<String> = form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "repos")
        .flat_map(|(_, v)| {
            v.split(',')
                .map(|s| s.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .filter(|s| !s.is_empty())
        .collect();
    if asked.is_empty() {
        return Err(bad(
            "name the repositories: repos=namespace/name (repeat it, or separate names by commas)",
        ));
    }
    if asked.len() > MAX_REPOS {
        return Err(bad(&format!(
            "at most {MAX_REPOS} repositories per request; {} were asked",
            asked.len()
        )));
    }
    let mut repos = serde_json::Map::new();
    for full in asked {
        let Some((ns, _)) = full.split_once('/') else {
            return Err(bad(&format!("{:?} is not namespace/name", short(&full))));
        };
        visible(state, user, ns).await?;
        let rows = state
            .analytics
            .pulls_over(ns, &periods, true, Some(std::slice::from_ref(&full)))
            .await
            .map_err(hub)?;
        let pulls: Vec<_> = rows.iter().map(|p| pull_json(p, ns, false)).collect();
        repos.insert(
            full,
            serde_json::json!({ "pulls": if pulls.is_empty() { serde_json::Value::Null } else { pulls.into() } }),
        );
    }
    Ok(json(StatusCode::OK, serde_json::json!({ "repos": repos })))
}

/// The complete periods of a granularity in which a namespace has actions, over `[from, to)`.
async fn periods_with_data(
    state: &AppState,
    ns: &str,
    granularity: Granularity,
    from: Date,
    to: Date,
    today: Date,
) -> Result<Vec<Period>, Response> {
    state
        .analytics
        .periods_with_data(ns, granularity, from, to, today)
        .await
        .map_err(hub)
}

async fn years(state: &AppState, ns: &str, today: Date) -> Answer {
    // Weeks belong to the ISO year of their Monday, which may start in December.
    let from = Date::from_calendar_date(2000, time::Month::January, 1).unwrap_or(Date::MIN);
    let mut years: Vec<i32> = Vec::new();
    for g in [Granularity::Monthly, Granularity::Weekly] {
        for p in periods_with_data(state, ns, g, from, today, today).await? {
            let y = period_year(&p);
            if !years.contains(&y) {
                years.push(y);
            }
        }
    }
    years.sort_unstable();
    let years: Vec<_> = years
        .into_iter()
        .map(|y| serde_json::json!({ "year": y }))
        .collect();
    Ok(json(StatusCode::OK, serde_json::json!({ "years": years })))
}

/// The year a period is filed under: the ISO year of a week, the calendar year of a month.
fn period_year(p: &Period) -> i32 {
    match p.granularity() {
        Granularity::Weekly => p.start().to_iso_week_date().0,
        Granularity::Monthly => p.start().year(),
    }
}

fn granularity_of(kind: &str) -> Result<Granularity, Response> {
    match kind {
        "weeks" => Ok(Granularity::Weekly),
        "months" => Ok(Granularity::Monthly),
        other => Err(bad(&format!(
            "timespan type {:?} is not one of weeks, months",
            short(other)
        ))),
    }
}

fn year_of(year: &str) -> Result<i32, Response> {
    year.parse::<i32>()
        .ok()
        .filter(|y| (2000..=9999).contains(y))
        .ok_or_else(|| bad(&format!("year {:?} is not a year like 2026", short(year))))
}

async fn timespans(state: &AppState, ns: &str, year: &str, kind: &str, today: Date) -> Answer {
    let g = granularity_of(kind)?;
    let y = year_of(year)?;
    // Wide enough for ISO weeks that start in the previous December or end in January.
    let from = Date::from_calendar_date(y - 1, time::Month::December, 20).unwrap_or(Date::MIN);
    let to = Date::from_calendar_date(y + 1, time::Month::January, 10).unwrap_or(Date::MAX);
    let list: Vec<_> = periods_with_data(state, ns, g, from, to, today)
        .await?
        .into_iter()
        .filter(|p| period_year(p) == y)
        .map(|p| timespan_json(&p))
        .collect();
    let key = if g == Granularity::Weekly {
        "weeks"
    } else {
        "months"
    };
    Ok(json(StatusCode::OK, serde_json::json!({ key: list })))
}

fn timespan_json(p: &Period) -> serde_json::Value {
    match p.granularity() {
        Granularity::Weekly => serde_json::json!({ "week": p.start().to_iso_week_date().1 }),
        Granularity::Monthly => serde_json::json!({ "month": u8::from(p.start().month()) }),
    }
}

/// The period `years/{year}/{kind}/{n}` names, if it is a real and complete one.
fn exported_period(
    year: &str,
    kind: &str,
    n: &str,
    today: Date,
) -> Result<(Period, Granularity), Response> {
    let g = granularity_of(kind)?;
    let y = year_of(year)?;
    let n: u8 = n
        .parse()
        .map_err(|_| bad(&format!("{kind} number {:?} is not a number", short(n))))?;
    let name = match g {
        Granularity::Weekly => format!("{y:04}-W{n:02}"),
        Granularity::Monthly => format!("{y:04}-{n:02}"),
    };
    let period: Period = name.parse().map_err(|_| {
        bad(&format!(
            "there is no {} {n} in {y}",
            &kind[..kind.len() - 1]
        ))
    })?;
    if !period.is_available(today) {
        return Err(error(
            StatusCode::NOT_FOUND,
            &format!(
                "{} is available from {}, once it has ended",
                period.name(),
                wharf_analytics::report::period::format_date(period.available_from())
            ),
        ));
    }
    Ok((period, g))
}

/// The extension summaries: one file (one row) per extension, as the seeds' columns have no
/// extension name.
const EXTENSION_VIEWS: [&str; 2] = ["extension-core", "extension-premium"];

/// The extensions of a namespace with a row in the summary of a period.
async fn extensions_of(
    state: &AppState,
    ns: &str,
    view: &str,
    period: &Period,
) -> Result<Vec<(String, Vec<u8>)>, Response> {
    Ok(state
        .extensions
        .summary_files(ns, view, period, None)
        .await
        .map_err(hub)?
        .into_iter()
        .map(|f| (f.repository, f.csv))
        .collect())
}

#[allow(clippy::too_many_arguments)]
async fn data_view(
    state: &AppState,
    headers: &HeaderMap,
    ns: &str,
    year: &str,
    kind: &str,
    n: &str,
    view: &str,
    today: Date,
) -> Answer {
    let (period, _) = exported_period(year, kind, n, today)?;
    let base = super::hub_api::base_url(state, headers);
    let expires = time::OffsetDateTime::now_utc().unix_timestamp() + LINK_TTL_SECS;
    let link = |path: String| {
        let signature = state.analytics.sign_download(&path, expires);
        serde_json::json!({ "url": format!("{base}{path}?expires={expires}&signature={signature}") })
    };
    if EXTENSION_VIEWS.contains(&view) {
        let links: Vec<_> = extensions_of(state, ns, view, &period)
            .await?
            .into_iter()
            .map(|(repo, _)| {
                link(format!(
                    "{BASE}/downloads/{ns}/{}/{view}/{repo}",
                    period.name()
                ))
            })
            .collect();
        return Ok(json(StatusCode::OK, serde_json::json!({ "data": links })));
    }
    let Some(report) = ReportKind::from_name(view) else {
        let names: Vec<_> = ReportKind::ALL.iter().map(|k| k.name()).collect();
        return Err(bad(&format!(
            "data view {:?} is not one of {}, {}",
            short(view),
            names.join(", "),
            EXTENSION_VIEWS.join(", ")
        )));
    };
    let path = format!("{BASE}/downloads/{ns}/{}/{}", period.name(), report.name());
    Ok(json(
        StatusCode::OK,
        serde_json::json!({ "data": [link(path)] }),
    ))
}

/// A signed download link: the report streamed as CSV.
async fn download(
    state: &AppState,
    ns: &str,
    period: &str,
    view: &str,
    extension: Option<&str>,
    query: &str,
) -> Response {
    let mut expires = None;
    let mut signature = String::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "expires" => expires = v.parse::<i64>().ok(),
            "signature" => signature = v.into_owned(),
            _ => {}
        }
    }
    let path = match extension {
        Some(e) => format!("{BASE}/downloads/{ns}/{period}/{view}/{e}"),
        None => format!("{BASE}/downloads/{ns}/{period}/{view}"),
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let Some(expires) = expires else {
        return error(
            StatusCode::FORBIDDEN,
            "this download link has no expiry; ask the data view endpoint for a new one",
        );
    };
    if !state
        .analytics
        .verify_download(&path, expires, &signature, now)
    {
        return error(
            StatusCode::FORBIDDEN,
            "this download link is not valid or has expired; ask the data view endpoint for a new one",
        );
    }
    let Ok(period) = period.parse::<Period>() else {
        return error(StatusCode::NOT_FOUND, "no such report");
    };
    if let Some(extension) = extension {
        if !EXTENSION_VIEWS.contains(&view) {
            return error(StatusCode::NOT_FOUND, "no such report");
        }
        let files = match extensions_of(state, ns, view, &period).await {
            Ok(f) => f,
            Err(r) => return r,
        };
        let Some((_, bytes)) = files.into_iter().find(|(r, _)| r == extension) else {
            return error(StatusCode::NOT_FOUND, "no such extension report");
        };
        return (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (header::CACHE_CONTROL, "no-store".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!(
                        "attachment; filename=\"{}\"",
                        safe_file_name(&format!("{extension}.{view}.{}.csv", period.name()))
                    ),
                ),
            ],
            bytes,
        )
            .into_response();
    }
    let Some(report) = ReportKind::from_name(view) else {
        return error(StatusCode::NOT_FOUND, "no such report");
    };
    csv_response(state, ns.to_owned(), report, period)
}

/// A name fit for `Content-Disposition`: ASCII letters, digits, `-`, `_` and `.` only.
fn safe_file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Streams a report as a CSV attachment (also used by the web pages).
pub(crate) fn csv_response(
    state: &AppState,
    ns: String,
    report: ReportKind,
    period: Period,
) -> Response {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<wharf_hub::ReportChunk>(4);
    let analytics = state.analytics.clone();
    let name = format!("{ns}-{}-{}.csv", report.name(), period.name());
    let (body_tx, body_rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let producer = analytics.stream_report(&ns, report, &period, tx);
        let forward = async {
            while let Some(chunk) = rx.recv().await {
                if body_tx.send(Ok(chunk.bytes.into())).await.is_err() {
                    break;
                }
            }
        };
        let (result, ()) = tokio::join!(producer, forward);
        if let Err(e) = result {
            tracing::error!(error = %e, "streaming an analytics report failed");
            let _ = body_tx
                .send(Err(std::io::Error::other(
                    "the report could not be completed",
                )))
                .await;
        }
    });
    let stream = futures_util::stream::unfold(body_rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let name = safe_file_name(&name);
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}
