//! Web sign-in and sign-out, checked through CSS selectors on the rendered pages.

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
