//! The organization's Analytics page: pulls per week or month over 3, 6 or 12 months for
//! one or more repositories, as a server-drawn SVG chart with tooltips, a table and a
//! Share link (the view is all in the URL); the CSV reports of each period; and the
//! administrators' switch that gives a namespace analytics. Members (and administrators)
//! only: anyone else is told the namespace does not exist.

use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use wharf_analytics::report::{Granularity, Period};
use wharf_hub::{AnalyticsAccess, HubError, MAX_SERIES_REPOS, SERIES_MONTHS};
use wharf_oci::RepoName;

use super::analytics_chart::{Chart, Dot, HEIGHT, LEFT, WIDTH, chart, coord, period_dates};
use super::web::checked_form_limited;
use super::web_hub::{Ctx, hub_error, message, plain_name, q, see_other, value};
use crate::app::AppState;

/// The CSV reports a period offers, as (file name, label).
const REPORTS: [(&str, &str); 8] = [
    ("summary", "Summary"),
    ("trends", "Trends"),
    ("technographic", "Technographic"),
    ("technographic-companies", "Technographic companies"),
    ("tracked-companies", "Tracked companies"),
    ("raw", "Raw pulls"),
    ("repository-summary", "Repository summary"),
    ("reference-summary", "Tag and digest summary"),
];

/// What the page shows, all from the query string (so a link reopens the same view).
#[derive(Debug, Clone, PartialEq, Eq)]
struct View {
    granularity: Granularity,
    months: u8,
    /// Repository names without the namespace; empty for every repository with pulls.
    repos: Vec<String>,
}

/// A query value, shortened for messages.
fn shown(v: &str) -> String {
    v.chars().take(64).collect()
}

impl View {
    fn parse(namespace: &str, query: &str) -> Result<Self, String> {
        let mut view = Self {
            granularity: Granularity::Weekly,
            months: 3,
            repos: Vec::new(),
        };
        for (k, v) in form_urlencoded::parse(query.as_bytes()).take(4 * MAX_SERIES_REPOS) {
            match k.as_ref() {
                "granularity" => {
                    view.granularity = match v.as_ref() {
                        "weekly" => Granularity::Weekly,
                        "monthly" => Granularity::Monthly,
                        other => {
                            return Err(format!(
                                "granularity {:?} is not offered; choose weekly or monthly",
                                shown(other)
                            ));
                        }
                    }
                }
                "months" => {
                    view.months = v
                        .parse()
                        .ok()
                        .filter(|m| SERIES_MONTHS.contains(m))
                        .ok_or_else(|| {
                            format!("months {:?} is not offered; choose 3, 6 or 12", shown(&v))
                        })?;
                }
                "repo" => {
                    let ok = plain_name(&v)
                        && !v.contains('/')
                        && format!("{namespace}/{v}").parse::<RepoName>().is_ok();
                    if !ok {
                        return Err(format!(
                            "repo {:?} is not a repository name; give the name without the namespace, such as app",
                            shown(&v)
                        ));
                    }
                    if !view.repos.iter().any(|r| r == v.as_ref()) {
                        view.repos.push(v.into_owned());
                    }
                    if view.repos.len() > MAX_SERIES_REPOS {
                        return Err(format!(
                            "more than {MAX_SERIES_REPOS} repositories chosen; choose at most {MAX_SERIES_REPOS}"
                        ));
                    }
                }
                _ => {}
            }
        }
        Ok(view)
    }

    /// The query string that reopens this view.
    fn query(&self) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        s.append_pair("granularity", self.granularity.as_str());
        s.append_pair("months", &self.months.to_string());
        for r in &self.repos {
            s.append_pair("repo", r);
        }
        s.finish()
    }
}

/// Who may look, or the response that tells them no (the missing-namespace page).
async fn access(state: &AppState, ctx: &Ctx, ns: &str) -> Result<AnalyticsAccess, Response> {
    let missing = || {
        message(
            state,
            ctx,
            StatusCode::NOT_FOUND,
            "Not found",
            &format!("There is no user or organization named {ns:?}."),
        )
    };
    if !plain_name(ns) {
        return Err(missing());
    }
    match state.hub.analytics_access(ctx.user.as_ref(), ns).await {
        Ok(a) => Ok(a),
        Err(HubError::NotFound(_)) => Err(missing()),
        Err(e) => Err(hub_error(state, ctx, e)),
    }
}

// ---- the page ----

struct RepoOption {
    name: String,
    selected: bool,
}

struct Download {
    name: String,
    dates: String,
    /// `week=…` or `month=…`, with `&partial=1` for the current period.
    query: String,
    so_far: bool,
}

#[derive(Template)]
#[template(path = "analytics.html")]
struct AnalyticsPage {
    user: Option<String>,
    is_admin: bool,
    csrf: String,
    ns: String,
    enabled: bool,
    program: Option<&'static str>,
    weekly: bool,
    months: u8,
    month_options: [u8; 3],
    options: Vec<RepoOption>,
    chart: Chart,
    table: Vec<Dot>,
    share: String,
    downloads: Vec<Download>,
    reports: [(&'static str, &'static str); 8],
    width: f64,
    height: f64,
    left: String,
}

/// `GET /orgs/{namespace}/analytics`: the dashboard.
pub(crate) async fn org_analytics(
    State(state): State<AppState>,
    Path(ns): Path<String>,
    req: Request,
) -> Response {
    let ctx = Ctx::of(&state, req.headers()).await;
    let access = match access(&state, &ctx, &ns).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let view = match View::parse(&ns, req.uri().query().unwrap_or("")) {
        Ok(v) => v,
        Err(m) => return message(&state, &ctx, StatusCode::BAD_REQUEST, "Check the link", &m),
    };
    let (points, periods) = if access.enabled() {
        let points = match state
            .analytics
            .pull_series(&ns, view.granularity, view.months, &view.repos)
            .await
        {
            Ok(p) => p,
            Err(e) => return hub_error(&state, &ctx, e),
        };
        let today = time::OffsetDateTime::now_utc().date();
        let periods =
            wharf_hub::series_periods(today, view.granularity, view.months).unwrap_or_default();
        (points, periods)
    } else {
        (Vec::new(), Vec::new())
    };
    // The chart's repositories: those chosen, else those the series found.
    let mut shown_repos: Vec<String> = if view.repos.is_empty() {
        points.iter().map(|p| p.repo.clone()).collect()
    } else {
        view.repos.clone()
    };
    shown_repos.sort();
    shown_repos.dedup();
    // The choice offers the namespace's repositories the viewer can see, and any with pulls.
    let mut names: Vec<String> = match state
        .hub
        .namespace_repos(
            &match &ctx.user {
                Some(u) => wharf_hub::Principal::User(u.clone()),
                None => wharf_hub::Principal::Anonymous,
            },
            &ns,
            wharf_hub::RepoOrder::LastUpdated,
            0,
            100,
        )
        .await
    {
        Ok((_, repos)) => repos.iter().map(|r| r.short_name().to_owned()).collect(),
        Err(e) => return hub_error(&state, &ctx, e),
    };
    names.extend(shown_repos.iter().cloned());
    names.sort();
    names.dedup();
    let options = names
        .into_iter()
        .map(|name| RepoOption {
            selected: view.repos.contains(&name),
            name,
        })
        .collect();
    let today = time::OffsetDateTime::now_utc().date();
    let downloads = periods
        .iter()
        .rev()
        .map(|p| {
            let key = if p.granularity() == Granularity::Weekly {
                "week"
            } else {
                "month"
            };
            let so_far = !p.is_available(today);
            Download {
                name: p.name(),
                dates: period_dates(p),
                query: format!(
                    "{key}={}{}",
                    p.name(),
                    if so_far { "&partial=1" } else { "" }
                ),
                so_far,
            }
        })
        .collect();
    let chart = chart(&periods, &shown_repos, &points);
    let table = chart
        .lines
        .iter()
        .flat_map(|l| l.dots.iter())
        .map(|d| Dot {
            x: String::new(),
            y: String::new(),
            period: d.period.clone(),
            dates: d.dates.clone(),
            repo: d.repo.clone(),
            pulls: d.pulls,
            version_checks: d.version_checks,
            unique_ips: d.unique_ips,
        })
        .collect();
    let share = format!(
        "{}/orgs/{}/analytics?{}",
        super::hub_api::base_url(&state, req.headers()),
        q(&ns),
        view.query()
    );
    let html = AnalyticsPage {
        user: ctx.name(),
        is_admin: ctx.is_admin(),
        csrf: ctx.csrf.clone(),
        enabled: access.enabled(),
        program: access.program.map(|b| b.label()),
        weekly: view.granularity == Granularity::Weekly,
        months: view.months,
        month_options: SERIES_MONTHS,
        options,
        chart,
        table,
        share,
        downloads,
        reports: REPORTS,
        width: WIDTH,
        height: HEIGHT,
        left: coord(LEFT),
        ns,
    }
    .render();
    ctx.render(&state, StatusCode::OK, html)
}

// ---- CSV downloads ----

/// Which period a download is for: `week=2026-W47` or `month=2026-11`, and `partial=1` for
/// one that has not ended. The error names the bad value.
fn download_period(query: &str) -> Result<Period, String> {
    let (mut week, mut month, mut partial) = (None, None, false);
    for (k, v) in form_urlencoded::parse(query.as_bytes()).take(16) {
        match k.as_ref() {
            "week" => week = Some(v.into_owned()),
            "month" => month = Some(v.into_owned()),
            "partial" => partial = v == "1" || v == "true",
            _ => {}
        }
    }
    let (period, want, key): (Period, Granularity, &str) = match (&week, &month) {
        (Some(_), Some(_)) => return Err("give either week or month, not both".into()),
        (None, None) => {
            return Err("give the period: week=2026-W47 (an ISO week) or month=2026-11".into());
        }
        (Some(w), None) => (
            w.parse()
                .map_err(|_| format!("week {:?} is not an ISO week such as 2026-W47", shown(w)))?,
            Granularity::Weekly,
            "week",
        ),
        (None, Some(m)) => (
            m.parse()
                .map_err(|_| format!("month {:?} is not a month such as 2026-11", shown(m)))?,
            Granularity::Monthly,
            "month",
        ),
    };
    if period.granularity() != want {
        return Err(format!(
            "{key} {:?} is not a {key}; write {}",
            shown(week.as_deref().or(month.as_deref()).unwrap_or("")),
            if key == "week" {
                "an ISO week such as 2026-W47"
            } else {
                "a month such as 2026-11"
            }
        ));
    }
    let today = time::OffsetDateTime::now_utc().date();
    if period.start() > today {
        return Err(format!("the {key} {} has not started yet", period.name()));
    }
    if !partial && !period.is_available(today) {
        return Err(format!(
            "the {key} {} is available from {} (when it has ended); add partial=1 for the numbers so far",
            period.name(),
            wharf_analytics::report::period::format_date(period.available_from())
        ));
    }
    Ok(period)
}

/// `GET /orgs/{namespace}/analytics/reports/{report}.csv?week=…|month=…`: one report of one
/// period as a CSV attachment, members only like the page.
pub(crate) async fn org_analytics_report(
    State(state): State<AppState>,
    Path((ns, file)): Path<(String, String)>,
    req: Request,
) -> Response {
    let ctx = Ctx::of(&state, req.headers()).await;
    let access = match access(&state, &ctx, &ns).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let bad = |m: &str| message(&state, &ctx, StatusCode::BAD_REQUEST, "Check the link", m);
    let Some(report) = file
        .strip_suffix(".csv")
        .and_then(|r| REPORTS.iter().find(|(name, _)| *name == r))
        .map(|(name, _)| *name)
    else {
        let names: Vec<String> = REPORTS.iter().map(|(n, _)| format!("{n}.csv")).collect();
        return bad(&format!(
            "report {:?} is not offered; choose one of {}",
            shown(&file),
            names.join(", ")
        ));
    };
    let period = match download_period(req.uri().query().unwrap_or("")) {
        Ok(p) => p,
        Err(m) => return bad(&m),
    };
    if !access.enabled() {
        return message(
            &state,
            &ctx,
            StatusCode::FORBIDDEN,
            "Analytics are not enabled",
            &format!(
                "{ns} has no analytics yet; an administrator can enable them on the Administration page."
            ),
        );
    }
    let Some(kind) = wharf_hub::ReportKind::from_name(report) else {
        return bad(&format!("report {:?} is not offered", shown(&file)));
    };
    super::dvp::csv_response(&state, ns, kind, period)
}

// ---- administration ----

/// `POST /admin/analytics`: an administrator enables or disables a namespace's analytics.
pub(crate) async fn admin_analytics_post(State(state): State<AppState>, req: Request) -> Response {
    let (headers, form) = match checked_form_limited(req, 16 * 1024).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let ctx = Ctx::of(&state, &headers).await;
    let Some(user) = ctx.user.clone() else {
        return see_other("/login");
    };
    let ns = value(&form, "namespace").trim().to_owned();
    if !plain_name(&ns) {
        return message(
            &state,
            &ctx,
            StatusCode::BAD_REQUEST,
            "Check the input",
            "Give the name of the user or organization.",
        );
    }
    let (result, done) = match value(&form, "analytics").as_str() {
        "enable" => (
            state.hub.enable_analytics(&user, &ns).await,
            format!("Analytics enabled for {ns}: its members now see its Analytics page."),
        ),
        "disable" => (
            state.hub.disable_analytics(&user, &ns).await,
            format!("Analytics disabled for {ns} (a program's analytics stay)."),
        ),
        other => {
            return message(
                &state,
                &ctx,
                StatusCode::BAD_REQUEST,
                "Check the input",
                &format!("analytics {:?}: choose enable or disable", shown(other)),
            );
        }
    };
    match result {
        Ok(()) => see_other(&format!("/admin?done={}", q(&done))),
        Err(e) => hub_error(&state, &ctx, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_view_is_read_from_and_written_to_the_query() {
        let v = View::parse(
            "acme",
            "granularity=monthly&months=12&repo=app&repo=web&repo=app",
        )
        .unwrap();
        assert_eq!(v.granularity, Granularity::Monthly);
        assert_eq!(
            (v.months, v.repos.clone()),
            (12, vec!["app".to_owned(), "web".to_owned()])
        );
        assert_eq!(v.query(), "granularity=monthly&months=12&repo=app&repo=web");
        assert_eq!(
            View::parse("acme", "").unwrap().query(),
            "granularity=weekly&months=3"
        );
        assert!(
            View::parse("acme", "repo=a%22%3Cb")
                .unwrap_err()
                .contains(r#"repo "a\"<b""#)
        );
    }
}
