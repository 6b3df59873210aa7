//! The organization's Analytics page through the router: who sees it (members and
//! administrators, only for namespaces with analytics), the chart's numbers computed from
//! real pulls, the view kept in the URL, the CSV downloads and the administrators' switch.

mod common;

use axum::http::{Method, StatusCode};
use common::{Resp, TestApp};
use scraper::{Html, Selector};
use wharf_analytics::report::{Granularity, Period};

const CSRF: &str = "analytics-page-csrf-token-0123456789abcdef";
const DOCKER: &str = "docker/27.5.1 go/go1.22.12 git-commit/4c9b3b0 kernel/6.1.0 os/linux arch/amd64 UpstreamClient(Docker-Client/27.5.1 \\(linux\\))";
const CONTAINERD: &str = "containerd/1.7.24+unknown";

/// alice owns acme, mia is a plain member, olga belongs elsewhere, boss administers.
async fn app() -> TestApp {
    let app = TestApp::new().await;
    let hub = &app.state.hub;
    for (name, admin) in [
        ("alice", false),
        ("mia", false),
        ("olga", false),
        ("boss", true),
    ] {
        hub.add_user(name, &format!("{name}@example.com"), "password-1", admin)
            .await
            .unwrap();
    }
    hub.add_org("acme", "alice").await.unwrap();
    hub.set_org_member("acme", "mia", wharf_hub::OrgRole::Member)
        .await
        .unwrap();
    hub.add_org("other", "olga").await.unwrap();
    app
}

async fn cookie(app: &TestApp, name: &str) -> String {
    let hub = &app.state.hub;
    let user = hub.user(name).await.unwrap().unwrap();
    let session = hub.issue_session_token(&user).unwrap().token;
    format!("wharf_csrf={CSRF}; wharf_session={session}")
}

async fn get_as(app: &TestApp, cookie: Option<&str>, uri: &str) -> Resp {
    let headers: Vec<(&str, &str)> = cookie.map(|c| ("cookie", c)).into_iter().collect();
    app.req(Method::GET, uri, &headers, axum::body::Body::empty())
        .await
}

fn text(r: &Resp) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

fn select(html: &str, css: &str) -> Vec<scraper::ElementRef<'static>> {
    // Leaked so the elements can outlive this call; tests only.
    let doc: &'static Html = Box::leak(Box::new(Html::parse_document(html)));
    let sel = Selector::parse(css).unwrap();
    doc.select(&sel).collect()
}

fn attr(e: &scraper::ElementRef<'_>, name: &str) -> String {
    e.value().attr(name).unwrap_or_default().to_owned()
}

async fn enable(app: &TestApp, ns: &str) {
    let boss = cookie(app, "boss").await;
    let body = format!("csrf={CSRF}&namespace={ns}&analytics=enable");
    let r = app
        .req(
            Method::POST,
            "/admin/analytics",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", boss.as_str()),
            ],
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", text(&r));
}

async fn pull(app: &TestApp, ip: &str, ua: &str, method: Method, uri: &str) {
    let headers = [("accept", common::OCI_MANIFEST), ("user-agent", ua)];
    let r = app.req_from(ip, method, uri, &headers).await;
    assert_eq!(r.status, StatusCode::OK, "{uri}");
}

/// Pulls of acme/app (one by tag, one by digest, one version check; three addresses) and
/// acme/web (one by tag), stored and classified.
async fn scenario(app: &TestApp) {
    let (digest, _) = app.push_image("acme/app", "v1", b"app layer").await;
    app.push_image("acme/web", "v1", b"web layer").await;
    let by_tag = "/v2/acme/app/manifests/v1";
    let by_digest = format!("/v2/acme/app/manifests/{digest}");
    pull(app, "192.0.2.1", DOCKER, Method::HEAD, by_tag).await;
    pull(app, "192.0.2.1", DOCKER, Method::GET, &by_digest).await;
    pull(app, "192.0.2.2", DOCKER, Method::HEAD, by_tag).await;
    pull(app, "192.0.2.3", CONTAINERD, Method::GET, &by_digest).await;
    pull(
        app,
        "192.0.2.4",
        "curl/8.5.0",
        Method::GET,
        "/v2/acme/web/manifests/v1",
    )
    .await;
    app.state.analytics.write_pending().await.unwrap();
    let horizon = wharf_hub::analytics::now_ms() + 600_000;
    assert_eq!(
        app.state.analytics.classify_until(horizon).await.unwrap(),
        4
    );
}

fn today() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}

#[tokio::test]
async fn only_members_and_administrators_see_the_page_and_others_get_the_missing_page() {
    let app = app().await;
    enable(&app, "acme").await;
    let (mia, alice, boss, olga) = (
        cookie(&app, "mia").await,
        cookie(&app, "alice").await,
        cookie(&app, "boss").await,
        cookie(&app, "olga").await,
    );
    for who in [&mia, &alice, &boss] {
        let r = get_as(&app, Some(who), "/orgs/acme/analytics").await;
        assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
        assert_eq!(select(&text(&r), "svg#chart").len(), 1);
    }
    // The namespace page links to it for members only.
    let page = text(&get_as(&app, Some(&mia), "/u/acme").await);
    assert_eq!(select(&page, "a#analytics-link").len(), 1);
    let page = text(&get_as(&app, Some(&olga), "/u/acme").await);
    assert!(select(&page, "a#analytics-link").is_empty());

    let missing = get_as(&app, Some(&olga), "/orgs/nobody/analytics").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    // The page's main part (the header carries a fresh CSRF token each time).
    let main = |html: String| {
        html.split_once("<main")
            .and_then(|(_, m)| m.split_once("</main>"))
            .map(|(m, _)| m.to_owned())
            .unwrap()
    };
    let missing_text = main(text(&missing).replace("nobody", "acme"));
    for who in [None, Some(olga.as_str())] {
        for uri in [
            "/orgs/acme/analytics",
            "/orgs/acme/analytics/reports/summary.csv?month=2020-01",
        ] {
            let r = get_as(&app, who, uri).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri} as {who:?}");
            if who.is_some() {
                // Exactly the page of a namespace that does not exist.
                assert_eq!(main(text(&r)), missing_text, "{uri}");
            }
            assert!(!text(&r).contains("chart"));
        }
    }
}

#[tokio::test]
async fn a_namespace_without_analytics_says_an_administrator_can_enable_them() {
    let app = app().await;
    let mia = cookie(&app, "mia").await;
    let r = get_as(&app, Some(&mia), "/orgs/acme/analytics").await;
    assert_eq!(r.status, StatusCode::OK);
    let html = text(&r);
    let note = select(&html, "#analytics-disabled");
    assert_eq!(note.len(), 1);
    assert!(
        note[0]
            .text()
            .collect::<String>()
            .contains("An administrator can enable them")
    );
    assert!(select(&html, "svg#chart").is_empty());
    let csv = get_as(
        &app,
        Some(&mia),
        "/orgs/acme/analytics/reports/summary.csv?month=2020-01",
    )
    .await;
    assert_eq!(csv.status, StatusCode::FORBIDDEN);

    // A program gives analytics without an administrator's switch.
    let hub = &app.state.hub;
    let alice = hub.user("alice").await.unwrap().unwrap();
    let boss = hub.user("boss").await.unwrap().unwrap();
    let id = hub
        .apply_program(
            &alice,
            "acme",
            wharf_hub::Badge::OpenSource,
            wharf_hub::PublisherProfile {
                legal_name: "Acme OSS".into(),
                website: "https://acme.example".into(),
                phone: "+1 555 0100".into(),
                email: "oss@acme.example".into(),
                logo: png(512).into(),
            },
        )
        .await
        .unwrap();
    hub.decide_program(&boss, id, wharf_hub::Decision::Approve, "")
        .await
        .unwrap();
    let html = text(&get_as(&app, Some(&mia), "/orgs/acme/analytics").await);
    assert!(select(&html, "#analytics-disabled").is_empty());
    assert_eq!(select(&html, "svg#chart").len(), 1);
}

fn png(side: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image::RgbImage::from_pixel(side, side, image::Rgb([20, 90, 200]))
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

#[tokio::test]
async fn the_chart_shows_each_repository_per_period_with_the_pulled_numbers() {
    let app = app().await;
    enable(&app, "acme").await;
    scenario(&app).await;
    let mia = cookie(&app, "mia").await;
    let html = text(&get_as(&app, Some(&mia), "/orgs/acme/analytics").await);
    let weeks = wharf_hub::series_periods(today(), Granularity::Weekly, 3).unwrap();
    let this_week = Period::week_of(today()).name();
    for (repo, pulls, checks, ips) in [("app", 2, 1, 3), ("web", 1, 0, 1)] {
        let points = select(
            &html,
            &format!("svg#chart circle.point[data-repo='{repo}']"),
        );
        assert_eq!(points.len(), weeks.len(), "{repo}");
        let last = points.last().unwrap();
        assert_eq!(attr(last, "data-period"), this_week);
        assert_eq!(attr(last, "data-pulls"), pulls.to_string(), "{repo}");
        assert_eq!(attr(last, "data-version-checks"), checks.to_string());
        assert_eq!(attr(last, "data-unique-ips"), ips.to_string(), "{repo}");
        // Earlier weeks are zero, drawn on the axis.
        assert!(
            points[..points.len() - 1]
                .iter()
                .all(|p| attr(p, "data-pulls") == "0")
        );
        let row = select(
            &html,
            &format!("#series-table tr[data-repo='{repo}'][data-period='{this_week}'] td"),
        );
        let cells: Vec<String> = row.iter().map(|c| c.text().collect()).collect();
        assert_eq!(
            cells[3..],
            [pulls.to_string(), checks.to_string(), ips.to_string()]
        );
    }
    assert_eq!(select(&html, "ul.legend li").len(), 2);
    assert_eq!(select(&html, "#chart-tooltip").len(), 1);
    assert_eq!(select(&html, "script[src='/static/analytics.js']").len(), 1);
    let js = get_as(&app, None, "/static/analytics.js").await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(text(&js).contains("chart-tooltip"));

    // Monthly over 6 months, web only: the view comes back from the URL, Share keeps it.
    let uri = "/orgs/acme/analytics?granularity=monthly&months=6&repo=web";
    let html = text(&get_as(&app, Some(&mia), uri).await);
    assert!(select(&html, "circle.point[data-repo='app']").is_empty());
    let points = select(&html, "circle.point[data-repo='web']");
    assert_eq!(points.len(), 6);
    assert_eq!(attr(points.last().unwrap(), "data-pulls"), "1");
    assert_eq!(
        attr(points.last().unwrap(), "data-period"),
        Period::month_of(today()).name()
    );
    let share = attr(&select(&html, "a#share-link")[0], "href");
    assert!(share.starts_with("http"), "{share}");
    assert!(
        share.ends_with("/orgs/acme/analytics?granularity=monthly&months=6&repo=web"),
        "{share}"
    );
    assert_eq!(
        attr(
            &select(&html, "input[name=granularity][checked]")[0],
            "value"
        ),
        "monthly"
    );
    assert_eq!(
        attr(&select(&html, "input[name=months][checked]")[0], "value"),
        "6"
    );
    let selected: Vec<String> = select(&html, "select#repos option[selected]")
        .iter()
        .map(|o| attr(o, "value"))
        .collect();
    assert_eq!(selected, ["web"]);
    // The download links cover the six months, the current one marked partial.
    let month = Period::month_of(today()).name();
    let link = select(
        &html,
        &format!("#downloads tr[data-period='{month}'] a[data-report='raw']"),
    );
    assert_eq!(
        attr(&link[0], "href"),
        format!("/orgs/acme/analytics/reports/raw.csv?month={month}&partial=1")
    );
    assert_eq!(select(&html, "#downloads tbody tr").len(), 6);
}

#[tokio::test]
async fn bad_parameters_get_a_400_page_naming_the_value() {
    let app = app().await;
    enable(&app, "acme").await;
    let mia = cookie(&app, "mia").await;
    let this_week = Period::week_of(today()).name();
    let too_many: String = (0..51).map(|i| format!("repo=r{i}&")).collect();
    for (uri, named) in [
        ("/orgs/acme/analytics?granularity=daily".to_owned(), "daily"),
        ("/orgs/acme/analytics?months=5".to_owned(), "5"),
        ("/orgs/acme/analytics?months=%ff".to_owned(), "months"),
        ("/orgs/acme/analytics?repo=..%2Fx".to_owned(), "../x"),
        (
            "/orgs/acme/analytics?repo=%3Cscript%3E".to_owned(),
            "<script>",
        ),
        (format!("/orgs/acme/analytics?{too_many}"), "at most 50"),
        (
            "/orgs/acme/analytics/reports/bogus.csv?month=2020-01".to_owned(),
            "bogus.csv",
        ),
        (
            "/orgs/acme/analytics/reports/summary.csv?week=2026-W99".to_owned(),
            "2026-W99",
        ),
        (
            "/orgs/acme/analytics/reports/summary.csv?month=2026-13".to_owned(),
            "2026-13",
        ),
        (
            "/orgs/acme/analytics/reports/summary.csv?week=2026-11".to_owned(),
            "2026-11",
        ),
        (
            "/orgs/acme/analytics/reports/summary.csv".to_owned(),
            "week=",
        ),
        (
            "/orgs/acme/analytics/reports/summary.csv?week=2026-W01&month=2026-01".to_owned(),
            "either week or month",
        ),
        (
            format!("/orgs/acme/analytics/reports/summary.csv?week={this_week}"),
            "partial=1",
        ),
        (
            "/orgs/acme/analytics/reports/summary.csv?month=2999-01&partial=1".to_owned(),
            "not started",
        ),
    ] {
        let r = get_as(&app, Some(&mia), &uri).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", text(&r));
        let html = text(&r);
        assert!(!html.contains("<script>"), "{uri}: not escaped");
        let msg: String = select(&html, "main")[0].text().collect();
        let msg = msg.replace("&quot;", "\"");
        assert!(msg.contains(named), "{uri}: {msg}");
    }
}

#[tokio::test]
async fn csv_downloads_are_the_reports_of_the_period() {
    let app = app().await;
    enable(&app, "acme").await;
    scenario(&app).await;
    let mia = cookie(&app, "mia").await;
    let week = Period::week_of(today()).name();
    let r = get_as(
        &app,
        Some(&mia),
        &format!("/orgs/acme/analytics/reports/repository-summary.csv?week={week}&partial=1"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", text(&r));
    assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(
        r.header("content-disposition"),
        Some(format!("attachment; filename=\"acme-repository-summary-{week}.csv\"").as_str())
    );
    let body = text(&r);
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(
        lines[0],
        wharf_analytics::report::columns::REPOSITORY_SUMMARY.join(",")
    );
    // namespace, repository, unique addresses, by tag, by digest, version checks, owner.
    assert_eq!(
        lines[1..],
        ["acme,app,3,1,1,1,acme", "acme,web,1,1,0,0,acme"]
    );

    let raw = get_as(
        &app,
        Some(&mia),
        &format!("/orgs/acme/analytics/reports/raw.csv?week={week}&partial=1"),
    )
    .await;
    assert_eq!(raw.status, StatusCode::OK);
    assert!(
        raw.header("content-disposition")
            .unwrap()
            .starts_with("attachment;")
    );
    let body = text(&raw);
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(
        lines[0],
        wharf_analytics::report::columns::RAW_PULLS.join(",")
    );
    assert_eq!(lines.len(), 5, "{body}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("version_check,"))
            .count(),
        1
    );
    // A complete period with no pulls is just the header.
    let old = get_as(
        &app,
        Some(&mia),
        "/orgs/acme/analytics/reports/summary.csv?month=2020-01",
    )
    .await;
    assert_eq!(old.status, StatusCode::OK);
    assert_eq!(text(&old).lines().count(), 1);
}

#[tokio::test]
async fn administrators_switch_analytics_per_namespace_through_the_api() {
    let app = app().await;
    let login = |user: &'static str| {
        let app = &app;
        async move {
            let r = app
                .req(
                    Method::POST,
                    "/v2/users/login",
                    &[("content-type", "application/json")],
                    serde_json::json!({"username": user, "password": "password-1"}).to_string(),
                )
                .await;
            format!("Bearer {}", r.json()["token"].as_str().unwrap())
        }
    };
    let (boss, alice) = (login("boss").await, login("alice").await);
    let call = |method: Method, uri: &'static str, auth: String| {
        let app = &app;
        async move {
            app.req(method, uri, &[("authorization", auth.as_str())], "")
                .await
        }
    };
    let r = call(
        Method::PUT,
        "/v2/admin/analytics/namespaces/acme",
        alice.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = call(
        Method::PUT,
        "/v2/admin/analytics/namespaces/nobody",
        boss.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(
        Method::PUT,
        "/v2/admin/analytics/namespaces/acme",
        boss.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let list = call(
        Method::GET,
        "/v2/admin/analytics/namespaces?page_size=10",
        boss.clone(),
    )
    .await;
    assert_eq!(list.status, StatusCode::OK);
    let v = list.json();
    assert_eq!(v["count"], 1);
    assert_eq!(v["results"][0]["namespace"], "acme");
    assert_eq!(v["results"][0]["enabled_by"], "boss");
    assert_eq!(v["results"][0]["program"], serde_json::Value::Null);
    let mia = cookie(&app, "mia").await;
    let html = text(&get_as(&app, Some(&mia), "/orgs/acme/analytics").await);
    assert_eq!(select(&html, "svg#chart").len(), 1);
    // The administration page lists it.
    let admin = text(&get_as(&app, Some(&cookie(&app, "boss").await), "/admin").await);
    assert_eq!(
        select(&admin, "#analytics-namespaces li[data-namespace='acme']").len(),
        1
    );

    let r = call(
        Method::DELETE,
        "/v2/admin/analytics/namespaces/acme",
        boss.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = call(
        Method::DELETE,
        "/v2/admin/analytics/namespaces/acme",
        boss.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let html = text(&get_as(&app, Some(&mia), "/orgs/acme/analytics").await);
    assert_eq!(select(&html, "#analytics-disabled").len(), 1);

    // The same switch on the administration page, each enabled namespace with its button.
    enable(&app, "acme").await;
    let boss_cookie = cookie(&app, "boss").await;
    let admin = text(&get_as(&app, Some(&boss_cookie), "/admin").await);
    let button = select(
        &admin,
        "#analytics-namespaces li[data-namespace='acme'] form button[value=disable]",
    );
    assert_eq!(button.len(), 1);
    let r = app
        .req(
            Method::POST,
            "/admin/analytics",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", boss_cookie.as_str()),
            ],
            format!("csrf={CSRF}&namespace=acme&analytics=disable"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let html = text(&get_as(&app, Some(&mia), "/orgs/acme/analytics").await);
    assert_eq!(select(&html, "#analytics-disabled").len(), 1);
    // Not an administrator: refused.
    let alice = cookie(&app, "alice").await;
    let r = app
        .req(
            Method::POST,
            "/admin/analytics",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", alice.as_str()),
            ],
            format!("csrf={CSRF}&namespace=acme&analytics=enable"),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}
