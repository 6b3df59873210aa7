//! Web sign-in and sign-out and the administrator's rate limits page, checked through CSS
//! selectors on the rendered pages.

mod common;

use axum::http::{Method, StatusCode};
use common::*;
use scraper::{Html, Selector};

fn select(html: &str, css: &str) -> Vec<String> {
    let doc = Html::parse_document(html);
    let sel = Selector::parse(css).unwrap();
    doc.select(&sel)
        .map(|e| {
            e.value()
                .attr("value")
                .map_or_else(|| e.text().collect(), str::to_owned)
        })
        .collect()
}

fn set_cookies(r: &Resp) -> Vec<String> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn cookie_value(cookies: &[String], name: &str) -> Option<String> {
    cookies.iter().find_map(|c| {
        c.strip_prefix(&format!("{name}="))
            .map(|rest| rest.split(';').next().unwrap_or("").to_owned())
    })
}

#[tokio::test]
async fn sign_in_and_out_with_csrf_protection() {
    let app = TestApp::new().await;
    app.state
        .hub
        .add_user("alice", "alice@example.com", "alice-password", false)
        .await
        .unwrap();

    let form = app.get("/login").await;
    assert_eq!(form.status, StatusCode::OK);
    let html = String::from_utf8_lossy(&form.body).into_owned();
    assert_eq!(select(&html, "form#login input[name=username]").len(), 1);
    assert_eq!(select(&html, "form#login input[type=password]").len(), 1);
    let csrf = select(&html, "form#login input[name=csrf]").pop().unwrap();
    let cookies = set_cookies(&form);
    assert_eq!(
        cookie_value(&cookies, "wharf_csrf").as_deref(),
        Some(csrf.as_str())
    );
    assert!(cookies[0].contains("HttpOnly") && cookies[0].contains("SameSite=Strict"));
    assert!(form.header("content-security-policy").is_some());
    assert_eq!(form.header("x-frame-options"), Some("DENY"));

    let cookie_header = format!("wharf_csrf={csrf}");
    let post = |body: String, cookie: String| {
        let app = &app;
        async move {
            app.req(
                Method::POST,
                "/login",
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("cookie", cookie.as_str()),
                ],
                body,
            )
            .await
        }
    };
    // Without the token, or with another one: refused before the password is even looked at.
    let r = post(
        "username=alice&password=alice-password".into(),
        cookie_header.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = post(
        format!(
            "csrf={}&username=alice&password=alice-password",
            "x".repeat(43)
        ),
        cookie_header.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A wrong password re-renders the form with the message.
    let r = post(
        format!("csrf={csrf}&username=alice&password=wrong"),
        cookie_header.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let html = String::from_utf8_lossy(&r.body).into_owned();
    assert_eq!(
        select(&html, "p.error[role=alert]"),
        ["Incorrect username or password."]
    );
    assert_eq!(select(&html, "input[name=username]"), ["alice"]);

    let r = post(
        format!("csrf={csrf}&username=alice&password=alice-password"),
        cookie_header.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), Some("/"));
    let cookies = set_cookies(&r);
    let session = cookie_value(&cookies, "wharf_session").unwrap();
    assert!(cookies[0].contains("HttpOnly") && cookies[0].contains("SameSite=Lax"));

    let both = format!("{cookie_header}; wharf_session={session}");
    let home = app
        .req(
            Method::GET,
            "/",
            &[("cookie", both.as_str())],
            axum::body::Body::empty(),
        )
        .await;
    let html = String::from_utf8_lossy(&home.body).into_owned();
    assert_eq!(select(&html, "#account .username"), ["alice"]);
    assert_eq!(
        select(&html, "#account form[action='/logout'] input[name=csrf]"),
        std::slice::from_ref(&csrf)
    );
    // Signed in, /login goes home.
    let again = app
        .req(
            Method::GET,
            "/login",
            &[("cookie", both.as_str())],
            axum::body::Body::empty(),
        )
        .await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);

    // Sign-out needs the token too, then clears the session.
    let r = app
        .req(
            Method::POST,
            "/logout",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", both.as_str()),
            ],
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .req(
            Method::POST,
            "/logout",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("cookie", both.as_str()),
            ],
            format!("csrf={csrf}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        set_cookies(&r)
            .iter()
            .any(|c| c.starts_with("wharf_session=;") && c.contains("Max-Age=0"))
    );
    // A forged session cookie is just "not signed in".
    let forged = format!("{cookie_header}; wharf_session=eyJhbGciOiJub25lIn0.e30.");
    let home = app
        .req(
            Method::GET,
            "/",
            &[("cookie", forged.as_str())],
            axum::body::Body::empty(),
        )
        .await;
    let html = String::from_utf8_lossy(&home.body).into_owned();
    assert!(select(&html, "#account .username").is_empty());
    assert_eq!(select(&html, "#account a[href='/login']").len(), 1);
}

/// The CSRF token the rate limit tests' forms carry (any 43 characters match a cookie).
const CSRF: &str = "rate-limit-page-csrf-token-0123456789abcdef";

/// An app with sign-in on: alice owns acme, boss is an administrator.
async fn hub_app(rate_limits: bool) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.auth = true;
    cfg.rate_limits = rate_limits;
    let app = TestApp::with_config(dir, cfg).await;
    for (name, admin) in [("alice", false), ("boss", true)] {
        app.state
            .hub
            .add_user(name, &format!("{name}@example.com"), "password-1", admin)
            .await
            .unwrap();
    }
    app.state.hub.add_org("acme", "alice").await.unwrap();
    app
}

/// The cookies of a browser signed in as `name`.
async fn session_cookie(app: &TestApp, name: &str) -> String {
    let hub = &app.state.hub;
    let user = hub.user(name).await.unwrap().unwrap();
    let session = hub.issue_session_token(&user).unwrap().token;
    format!("wharf_csrf={CSRF}; wharf_session={session}")
}

async fn page_as(app: &TestApp, cookie: &str, uri: &str) -> (StatusCode, String) {
    let r = app
        .req(
            Method::GET,
            uri,
            &[("cookie", cookie)],
            axum::body::Body::empty(),
        )
        .await;
    (r.status, String::from_utf8_lossy(&r.body).into_owned())
}

async fn post_form(app: &TestApp, cookie: &str, uri: &str, form: &[(&str, &str)]) -> Resp {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    app.req(
        Method::POST,
        uri,
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("cookie", cookie),
        ],
        body,
    )
    .await
}

fn html_of(r: &Resp) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

#[tokio::test]
async fn administrators_add_list_and_remove_rate_limit_rules_on_the_web() {
    let app = hub_app(false).await;
    let boss = session_cookie(&app, "boss").await;
    let add = |form: Vec<(&'static str, &'static str)>| {
        let (app, boss) = (&app, boss.clone());
        async move {
            let mut form = form;
            form.push(("csrf", CSRF));
            post_form(app, &boss, "/admin/rate-limits", &form).await
        }
    };

    // The administration page links to the rate limits page, which says limits are off.
    let (status, html) = page_as(&app, &boss, "/admin").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        select(
            &html,
            "nav[aria-label=Administration] a[href='/admin/rate-limits']"
        ),
        ["Rate limits"]
    );
    let (status, html) = page_as(&app, &boss, "/admin/rate-limits").await;
    assert_eq!(status, StatusCode::OK);
    let state = select(&html, "p.caution#limits-status").pop().unwrap();
    assert!(state.contains("off") && state.contains("kept"), "{state}");
    assert_eq!(select(&html, "#rule-count"), ["0 rules"]);
    assert_eq!(select(&html, "#rule-form input[name=csrf]"), [CSRF]);

    // An exempt range (given as an address inside it) and a user's own limit.
    let r = add(vec![
        ("kind", "range"),
        ("subject", "10.1.2.3/8"),
        ("exempt", "on"),
        ("note", "office network"),
    ])
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", html_of(&r));
    let saved = r.header("location").unwrap().to_owned();
    assert!(saved.starts_with("/admin/rate-limits?done="), "{saved}");
    let (_, html) = page_as(&app, &boss, &saved).await;
    assert_eq!(
        select(&html, "#notice"),
        ["Saved: address range 10.0.0.0/8 is exempt from pull limits."]
    );
    let r = add(vec![
        ("kind", "user"),
        ("subject", "alice"),
        ("pulls", "500"),
    ])
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", html_of(&r));

    let (_, html) = page_as(&app, &boss, "/admin/rate-limits").await;
    assert_eq!(select(&html, "#rule-count"), ["2 rules"]);
    assert_eq!(
        select(&html, "#rules tbody tr td.kind"),
        ["Address range", "User"]
    );
    assert_eq!(
        select(&html, "#rules tbody tr td.subject"),
        ["10.0.0.0/8", "alice"]
    );
    assert_eq!(
        select(&html, "#rules tbody tr td.limit"),
        ["exempt", "500 per 6 hours"]
    );
    assert_eq!(
        select(&html, "#rules tbody tr td.note"),
        ["office network", ""]
    );
    assert_eq!(
        select(
            &html,
            "#rules tr[data-subject='alice'] form[action='/admin/rate-limits/delete'] input[name=csrf]"
        ),
        [CSRF]
    );

    // Mistakes show on the page, with what was typed kept; nothing is saved.
    let r = add(vec![
        ("kind", "range"),
        ("subject", "10.0.0.300/8"),
        ("exempt", "on"),
    ])
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let html = html_of(&r);
    let error = select(&html, "p.error[role=alert]").pop().unwrap();
    assert!(
        error.contains("\"10.0.0.300/8\" is not an address or CIDR block"),
        "{error}"
    );
    assert_eq!(select(&html, "#rule-subject"), ["10.0.0.300/8"]);
    assert_eq!(select(&html, "#rule-kind option[selected]"), ["range"]);
    assert_eq!(select(&html, "#rule-exempt[checked]").len(), 1);
    for (form, wanted) in [
        (
            vec![("kind", "user"), ("subject", "nobody"), ("pulls", "5")],
            "There is no user named \"nobody\"",
        ),
        (
            vec![("kind", "org"), ("subject", "alice"), ("pulls", "5")],
            "There is no organization named \"alice\"",
        ),
        (
            vec![("kind", "user"), ("subject", "alice"), ("pulls", "0")],
            "pulls must be at least 1",
        ),
        (
            vec![("kind", "user"), ("subject", "alice"), ("pulls", "many")],
            "is not a whole number",
        ),
        (
            vec![
                ("kind", "user"),
                ("subject", "alice"),
                ("pulls", "5"),
                ("exempt", "on"),
            ],
            "not both",
        ),
        (vec![("kind", "user"), ("subject", "alice")], "tick exempt"),
        (
            vec![("kind", "group"), ("subject", "alice"), ("exempt", "on")],
            "is not one of",
        ),
    ] {
        let r = add(form).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{wanted}");
        let error = select(&html_of(&r), "p.error[role=alert]").pop().unwrap();
        assert!(error.contains(wanted), "{error}");
    }
    let (count, _) = app
        .state
        .hub
        .rate_rules(&app.state.hub.user("boss").await.unwrap().unwrap(), 0, 10)
        .await
        .unwrap();
    assert_eq!(count, 2);

    // Without the form's token nothing changes.
    let r = post_form(
        &app,
        &boss,
        "/admin/rate-limits/delete",
        &[("kind", "user"), ("subject", "alice")],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = post_form(
        &app,
        &boss,
        "/admin/rate-limits",
        &[("kind", "user"), ("subject", "acme"), ("exempt", "on")],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Remove one; removing it again says it is gone.
    let remove = [("csrf", CSRF), ("kind", "user"), ("subject", "alice")];
    let r = post_form(&app, &boss, "/admin/rate-limits/delete", &remove).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let (_, html) = page_as(&app, &boss, r.header("location").unwrap()).await;
    assert_eq!(
        select(&html, "#notice"),
        ["Removed the rule for user alice."]
    );
    assert_eq!(select(&html, "#rules tbody tr td.subject"), ["10.0.0.0/8"]);
    let r = post_form(&app, &boss, "/admin/rate-limits/delete", &remove).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let error = select(&html_of(&r), "p.error[role=alert]").pop().unwrap();
    assert!(error.contains("removed already"), "{error}");
}

#[tokio::test]
async fn only_administrators_see_or_change_rate_limit_rules() {
    let app = hub_app(false).await;
    let alice = session_cookie(&app, "alice").await;

    // Signed out: the sign-in page, as for the administration page.
    let r = app.get("/admin/rate-limits").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), Some("/login"));

    // Signed in without administration: the same refusal as the administration page's.
    let (status, admin) = page_as(&app, &alice, "/admin").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, html) = page_as(&app, &alice, "/admin/rate-limits").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(select(&html, "h1"), select(&admin, "h1"));
    assert_eq!(select(&html, "h1"), ["Not allowed"]);
    assert!(select(&html, "#rules, #rule-form").is_empty());
    let refusal = select(&html, "p[role=alert]").pop().unwrap();
    assert!(refusal.contains("only administrators"), "{refusal}");
    assert!(select(&html, "a[href='/admin']").is_empty());

    for (uri, form) in [
        (
            "/admin/rate-limits",
            vec![
                ("csrf", CSRF),
                ("kind", "user"),
                ("subject", "alice"),
                ("exempt", "on"),
            ],
        ),
        // A mistake in the form is no way to see the page either.
        (
            "/admin/rate-limits",
            vec![
                ("csrf", CSRF),
                ("kind", "range"),
                ("subject", "nonsense"),
                ("exempt", "on"),
            ],
        ),
        (
            "/admin/rate-limits/delete",
            vec![("csrf", CSRF), ("kind", "user"), ("subject", "alice")],
        ),
    ] {
        let r = post_form(&app, &alice, uri, &form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{uri}");
        assert_eq!(select(&html_of(&r), "h1"), ["Not allowed"]);
    }
    let boss = app.state.hub.user("boss").await.unwrap().unwrap();
    assert_eq!(app.state.hub.rate_rules(&boss, 0, 10).await.unwrap().0, 0);
}

#[tokio::test]
async fn the_rate_limits_page_shows_the_defaults_and_pages_through_rules() {
    let app = hub_app(true).await;
    let boss = session_cookie(&app, "boss").await;
    let (_, html) = page_as(&app, &boss, "/admin/rate-limits").await;
    let state = select(&html, "#limits-status").pop().unwrap();
    assert!(
        state.contains("on")
            && state.contains("100 times per 6 hours")
            && state.contains("200 times per 6 hours"),
        "{state}"
    );
    assert!(select(&html, "p.caution").is_empty());

    let hub = &app.state.hub;
    let admin = hub.user("boss").await.unwrap().unwrap();
    for i in 0..25 {
        hub.set_rate_rule(&admin, "range", &format!("10.0.{i}.0/24"), Some(50), "")
            .await
            .unwrap();
    }
    let (_, html) = page_as(&app, &boss, "/admin/rate-limits").await;
    assert_eq!(select(&html, "#rule-count"), ["25 rules"]);
    assert_eq!(select(&html, "#rules tbody tr").len(), 20);
    assert!(select(&html, ".pager a[rel=prev]").is_empty());
    let next = Html::parse_document(&html)
        .select(&Selector::parse(".pager a[rel=next]").unwrap())
        .next()
        .and_then(|a| a.value().attr("href").map(str::to_owned))
        .unwrap();
    assert_eq!(next, "/admin/rate-limits?page=2");
    let (_, html) = page_as(&app, &boss, &next).await;
    assert_eq!(select(&html, "#rules tbody tr").len(), 5);
    assert_eq!(select(&html, ".pager a[rel=prev]").len(), 1);
    assert!(select(&html, ".pager a[rel=next]").is_empty());
}
