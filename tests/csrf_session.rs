//! CSRF and session invariants, end to end against the real OP: the state-changing endpoints
//! (`POST /.profilegate/profile`, `POST /.profilegate/logout`) refuse a missing, wrong or
//! foreign token; login state is one-shot; every login gets a new session id and CSRF token,
//! and a session cookie planted before a login is replaced; form bodies, headers and cookies
//! are bounded.

mod support;

use std::path::Path;

use profilegate::config::Config;
use profilegate::session::{CookieSealer, RequestCookies, Session};
use reqwest::StatusCode;
use serde_json::json;
use support::questions::*;
use support::raw;
use support::*;

fn question() -> String {
    profiling(&[], &[company()])
}

/// A sealer with the test proxies' session secret, to read what their cookies hold.
fn sealer() -> CookieSealer {
    let text = format!(
        r#"
[upstream]
url = "http://127.0.0.1:3000"
[oidc]
issuer = "http://127.0.0.1:1"
client_id = "c"
client_secret = "s"
[session]
secret = "{SESSION_SECRET}"
"#
    );
    let env: &[(&str, &str)] = &[];
    let config = Config::from_toml(&text, env, Path::new(".")).expect("config");
    CookieSealer::new(
        &config.session,
        &config.server.public_url,
        config.oidc.login_timeout,
    )
}

/// The session sealed in a `Set-Cookie` value or a `Cookie` header.
fn open(cookies: &str) -> Option<Session> {
    let header = cookies.split("; Http").next().unwrap_or(cookies);
    sealer().open_session(&RequestCookies::parse([header.as_bytes()]))
}

/// The session cookie (`name=value`) a login answer set.
fn session_cookie(set: &[String]) -> String {
    set.iter()
        .find(|c| c.starts_with("profilegate_session=") && !c.contains("Max-Age=0"))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no session cookie in {set:?}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_need_this_sessions_csrf_token() {
    let env = TestEnv::start_full("", &question(), json!({})).await;
    let alice = env.browser();
    alice.login(&env.proxy.url("/app"), "alice").await;
    let bob = Browser::new();
    bob.login(&env.proxy.url("/app"), "bob").await;
    let page = |b: &Browser| {
        let url = env.proxy.url("/.profilegate/profile");
        let b = b.client.clone();
        async move {
            let resp = b
                .get(url)
                .header("accept", "text/html")
                .send()
                .await
                .expect("page");
            assert_eq!(resp.status(), StatusCode::OK);
            resp.text().await.expect("html")
        }
    };
    let alice_token = form_value(&page(&alice).await, "_csrf");
    let bob_token = form_value(&page(&bob).await, "_csrf");
    assert_ne!(alice_token, bob_token, "tokens are per session");
    let mut upper = alice_token.clone();
    upper.make_ascii_uppercase();

    let url = env.proxy.url("/.profilegate/profile");
    let fields = |token: Option<&str>| {
        let mut f = vec![
            ("_question".to_owned(), "company".to_owned()),
            ("company".to_owned(), "Evil Corp".to_owned()),
        ];
        if let Some(t) = token {
            f.insert(0, ("_csrf".to_owned(), t.to_owned()));
        }
        f
    };
    let forged: Vec<(&str, Vec<(String, String)>)> = vec![
        ("missing", fields(None)),
        ("empty", fields(Some(""))),
        ("wrong", fields(Some("forged-token"))),
        ("another session's", fields(Some(&bob_token))),
        ("case-changed", fields(Some(&upper))),
        (
            "truncated",
            fields(Some(&alice_token[..alice_token.len() - 1])),
        ),
        ("extended", fields(Some(&format!("{alice_token}x")))),
        ("wrong first, right second", {
            let mut f = fields(Some("forged"));
            f.push(("_csrf".into(), alice_token.clone()));
            f
        }),
    ];
    for (what, form) in &forged {
        let resp = alice
            .client
            .post(&url)
            .header("accept", "text/html")
            .form(form)
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{what} token");
        assert!(set_cookies(&resp).is_empty(), "{what}: nothing changes");
    }
    // The right token in the query string instead of the form does not count.
    let in_query = alice
        .client
        .post(format!("{url}?_csrf={alice_token}"))
        .form(&fields(None))
        .send()
        .await
        .expect("post");
    assert_eq!(in_query.status(), StatusCode::FORBIDDEN);
    // Without a session at all: 401, never a page that could be framed into a form post.
    let anonymous = http_client()
        .post(&url)
        .form(&fields(Some(&alice_token)))
        .send()
        .await
        .expect("post");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // Nothing was stored: the question is still pending; the right token works.
    assert!(page(&alice).await.contains("Which company"));
    let ok = alice
        .client
        .post(&url)
        .form(&fields(Some(&alice_token)))
        .send()
        .await
        .expect("post");
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        alice.navigate(&env.proxy.url("/app")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        env.upstream.last().header("x-profile-company"),
        Some("Evil Corp")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_by_post_needs_this_sessions_csrf_token() {
    let env = TestEnv::start().await;
    let alice = env.browser();
    alice.login(&env.proxy.url("/"), "alice").await;
    let bob = Browser::new();
    bob.login(&env.proxy.url("/"), "bob").await;
    let token_of = |b: &Browser| {
        open(&b.cookies_for(&env.proxy.url("/")))
            .expect("session")
            .csrf
    };
    let (alice_token, bob_token) = (token_of(&alice), token_of(&bob));
    let logout = env.proxy.url("/.profilegate/logout");
    for (what, token) in [
        ("missing", None),
        ("empty", Some(String::new())),
        ("wrong", Some("forged".to_owned())),
        ("another session's", Some(bob_token.clone())),
        ("truncated", Some(alice_token[1..].to_owned())),
    ] {
        let mut req = alice.client.post(&logout).header("accept", "text/html");
        if let Some(t) = token {
            req = req.form(&[("csrf_token", t)]);
        }
        let resp = req.send().await.expect("post");
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{what} token");
        assert!(set_cookies(&resp).is_empty(), "{what}: session kept");
    }
    assert_eq!(
        alice.navigate(&env.proxy.url("/still")).await.status(),
        StatusCode::OK,
        "still signed in"
    );
    let ok = alice
        .client
        .post(&logout)
        .form(&[("csrf_token", alice_token)])
        .send()
        .await
        .expect("post");
    assert_eq!(ok.status(), StatusCode::FOUND);
    assert!(set_cookies(&ok)
        .iter()
        .any(|c| c.starts_with("profilegate_session=;") && c.contains("Max-Age=0")));
    // Bob's session is untouched by Alice's logout.
    assert_eq!(
        bob.navigate(&env.proxy.url("/bob")).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_state_is_one_shot_and_short_lived() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    let first = browser.navigate(&env.proxy.url("/start")).await;
    let login_cookie = set_cookies(&first)
        .into_iter()
        .find(|c| c.starts_with("profilegate_session_login_"))
        .expect("a login cookie");
    assert!(
        login_cookie.contains("Max-Age=600"),
        "lives oidc.login_timeout (10 min): {login_cookie}"
    );
    let callback = browser.sign_in_from(location(&first), "alice").await;
    let state = query(&callback)["state"].clone();
    let cookie_before = browser.cookies_for(&callback);

    // An error answer for this state ends the login: the real code cannot be used after it.
    let cancelled = browser
        .navigate(&format!(
            "{}?error=access_denied&state={state}",
            env.proxy.url("/.profilegate/callback")
        ))
        .await;
    assert_eq!(cancelled.status(), StatusCode::FORBIDDEN);
    assert!(set_cookies(&cancelled)
        .iter()
        .any(|c| c.starts_with("profilegate_session_login_") && c.contains("Max-Age=0")));
    for cookie in [browser.cookies_for(&callback), cookie_before] {
        let resp = http_client()
            .get(&callback)
            .header("accept", "text/html")
            .header("cookie", cookie)
            .send()
            .await
            .expect("callback");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert!(!set_cookies(&resp)
            .iter()
            .any(|c| c.starts_with("profilegate_session=") && !c.contains("Max-Age=0")));
    }
    assert_eq!(env.upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_login_makes_a_new_session_and_replaces_a_planted_cookie() {
    let env = TestEnv::start().await;
    let origin: url::Url = env.proxy.url("/").parse().expect("url");

    // The attacker's own session (a valid cookie they could plant).
    let mallory = Browser::new();
    let done = mallory.login(&env.proxy.url("/"), "mallory").await;
    let planted = session_cookie(&set_cookies(&done));
    let planted_session = open(&planted).expect("opens");

    for plant in [
        planted.clone(),
        "profilegate_session=attacker-chosen-value".to_owned(),
    ] {
        // The victim starts a login; the attacker plants a cookie before the callback.
        let victim = Browser::new();
        let start = victim.navigate(&env.proxy.url("/inbox")).await;
        let callback = victim.sign_in_from(location(&start), "alice").await;
        victim
            .jar
            .add_cookie_str(&format!("{plant}; Path=/"), &origin);
        assert!(victim.cookies_for(&callback).contains(&plant));
        let done = victim.navigate(&callback).await;
        assert_eq!(done.status(), StatusCode::FOUND);
        let issued = session_cookie(&set_cookies(&done));
        assert_ne!(issued, plant, "the planted cookie is replaced");
        let session = open(&issued).expect("a valid session");
        assert_eq!(session.sub, "alice");
        assert_ne!(session.sid, planted_session.sid, "a new session id");
        assert_ne!(session.csrf, planted_session.csrf, "a new CSRF token");
        // The browser now carries the new session only, and is alice.
        let jar = victim.cookies_for(&env.proxy.url("/"));
        assert!(jar.contains(&issued) && !jar.contains(&plant), "{jar}");
        victim.navigate(&env.proxy.url("/inbox")).await;
        assert_eq!(
            env.upstream.last().header("x-forwarded-user"),
            Some("alice")
        );
    }

    // The same user signing in twice gets two different sessions.
    let mut seen = Vec::new();
    for _ in 0..2 {
        let b = Browser::new();
        let done = b.login(&env.proxy.url("/"), "alice").await;
        let s = open(&session_cookie(&set_cookies(&done))).expect("session");
        assert_eq!(s.sub, "alice");
        seen.push(s);
    }
    assert_ne!(seen[0].sid, seen[1].sid);
    assert_ne!(seen[0].csrf, seen[1].csrf);
    assert!(seen.iter().all(|s| s.sid.len() >= 24 && s.csrf.len() >= 32));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_bodies_headers_and_cookies_are_bounded() {
    let env = TestEnv::start_full("", &question(), json!({})).await;
    let alice = env.browser();
    alice.login(&env.proxy.url("/app"), "alice").await;
    let csrf = open(&alice.cookies_for(&env.proxy.url("/")))
        .expect("session")
        .csrf;

    // The proxy's own forms: logout 16 KiB, answers 64 KiB.
    for (path, field, limit) in [
        ("/.profilegate/logout", "csrf_token", 16 * 1024),
        ("/.profilegate/profile", "_csrf", 64 * 1024),
    ] {
        let body = format!(
            "{field}={csrf}&_question=company&company=Acme&pad={}",
            "x".repeat(limit)
        );
        let resp = alice
            .client
            .post(env.proxy.url(path))
            .header("accept", "text/html")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        assert!(set_cookies(&resp).is_empty(), "{path}: nothing changed");
    }
    // An answer beyond its question's length: 422, not stored.
    let long = alice
        .client
        .post(env.proxy.url("/.profilegate/profile"))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("_question", "company"),
            ("company", &"a".repeat(201)),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(long.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(env.upstream.count(), 0, "still pending, nothing forwarded");

    // A request head over every limit (a 1 MiB line: server.max_header_bytes, the head:
    // server.max_request_head_bytes, hyper's 1 MiB buffer) is refused, never forwarded.
    let session = alice.cookies_for(&env.proxy.url("/"));
    let huge = raw::request(
        env.proxy.port,
        "GET",
        "/app",
        &[
            ("Cookie".into(), session.clone()),
            ("X-Padding".into(), "p".repeat(1024 * 1024 + 16)),
        ],
    )
    .await;
    assert!(
        huge.status == 0 || (400..500).contains(&huge.status),
        "status {}",
        huge.status
    );
    assert_eq!(env.upstream.count(), 0);

    // More than 100 header lines (proxy::MAX_HEADERS): 431, never forwarded.
    let mut many = vec![("Cookie".to_owned(), session.clone())];
    many.extend((0..100).map(|i| (format!("X-Line-{i}"), "1".to_owned())));
    let crowded = raw::request(env.proxy.port, "GET", "/app", &many).await;
    assert_eq!(crowded.status, 431, "{crowded:?}");
    assert_eq!(env.upstream.count(), 0);

    // An oversized or overlong cookie reads as no session (a new login), never an error.
    for cookie in [
        format!("profilegate_session={}", "A".repeat(5000)),
        (0..200).map(|i| format!("c{i}=v; ")).collect::<String>() + &session,
    ] {
        let resp = raw::request(
            env.proxy.port,
            "GET",
            "/app",
            &[
                ("Accept".into(), "text/html".into()),
                ("Cookie".into(), cookie),
            ],
        )
        .await;
        assert_eq!(resp.status, 302, "a new login");
        assert!(resp
            .header("location")
            .is_some_and(|l| l.starts_with(&env.op.issuer)));
    }
}
