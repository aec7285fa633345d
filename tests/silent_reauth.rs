//! `session.silent_reauth`: a navigation whose session cookie no longer gives a live session
//! (here: expired, sealed by the test with the proxies' secret; revoked) asks the real test OP
//! with `prompt=none` first. With the OP session alive the user is back without any OP page;
//! without it the OP's `login_required` starts a normal login (its form), never the
//! "Sign-in cancelled" page; a normal login keeps its behaviour, and no cookie means no
//! silent attempt.

mod support;

use std::path::Path;

use profilegate::config::Config;
use profilegate::session::{now_secs, CookieSealer, RequestCookies, Session};
use reqwest::StatusCode;
use serde_json::json;
use support::*;

/// `[session]` with the tests' secret and `silent_reauth`.
fn session_section(silent: bool) -> String {
    format!("[session]\nsecret = \"{SESSION_SECRET}\"\nsilent_reauth = {silent}\n")
}

/// A sealer with the test proxies' session secret.
fn sealer() -> CookieSealer {
    let text = format!(
        "[upstream]\nurl = \"http://127.0.0.1:3000\"\n[oidc]\nissuer = \"http://127.0.0.1:1\"\n\
         client_id = \"c\"\nclient_secret = \"s\"\n[session]\nsecret = \"{SESSION_SECRET}\"\n"
    );
    let env: &[(&str, &str)] = &[];
    let config = Config::from_toml(&text, env, Path::new(".")).expect("config");
    CookieSealer::new(
        &config.session,
        &config.server.public_url,
        config.oidc.login_timeout,
    )
}

/// Replaces `browser`'s session cookie by one for `sub` that expired a minute ago (what a
/// browser whose clock or cookie store kept it past `session.lifetime` would send).
fn expire_session(env: &TestEnv, browser: &Browser, sub: &str) {
    let sealer = sealer();
    let cookies = browser.cookies_for(&env.proxy.url("/"));
    let mut session: Session = sealer
        .open_session(&RequestCookies::parse([cookies.as_bytes()]))
        .unwrap_or_else(|| sealer.new_session(sub.into(), None, None, None));
    assert_eq!(session.sub, sub);
    session.iat = now_secs() - 3600;
    session.exp = now_secs() - 60;
    let set = sealer.seal_session(&session);
    let value = set.split(';').next().expect("name=value");
    assert!(sealer
        .open_session(&RequestCookies::parse([value.as_bytes()]))
        .is_none());
    let url = env.proxy.url("/").parse().expect("url");
    browser
        .jar
        .add_cookie_str(&format!("{value}; Path=/"), &url);
}

/// The first answer to a navigation to `path`: a 302 to the OP's authorization endpoint.
/// Returns its URL.
async fn login_redirect(env: &TestEnv, browser: &Browser, path: &str) -> (String, Vec<String>) {
    let resp = browser.navigate(&env.proxy.url(path)).await;
    assert_eq!(resp.status(), StatusCode::FOUND, "{path}");
    let loc = location(&resp);
    assert!(
        loc.starts_with(&format!("{}/auth?", env.op.issuer)),
        "{loc}"
    );
    (loc, set_cookies(&resp))
}

/// Follows the OP's redirects from `url` by hand until the proxy's callback, failing if the OP
/// shows any page on the way.
async fn through_the_op_without_a_page(env: &TestEnv, browser: &Browser, url: String) -> String {
    let mut next = url;
    for _ in 0..10 {
        if next.contains("/.profilegate/callback") {
            return next;
        }
        let resp = browser.client.get(&next).send().await.expect("OP");
        assert!(
            resp.status().is_redirection(),
            "the OP showed a page ({}) at {next}:\n{}",
            resp.status(),
            env.op.stderr()
        );
        next = absolute(&next, &location(&resp));
    }
    panic!("the OP never came back to the proxy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_with_a_live_op_session_comes_back_signed_in_without_any_op_page() {
    let env = TestEnv::start_full("", &session_section(true), json!({})).await;
    let browser = env.browser();
    browser.login(&env.proxy.url("/"), "alice").await;
    expire_session(&env, &browser, "alice");

    let started = std::time::Instant::now();
    let (op_url, cookies) = login_redirect(&env, &browser, "/reports?q=1").await;
    assert_eq!(query(&op_url)["prompt"], "none", "{op_url}");
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("profilegate_session=;") && c.contains("Max-Age=0")),
        "the dead cookie is deleted at once: {cookies:?}"
    );
    let callback = through_the_op_without_a_page(&env, &browser, op_url).await;
    assert!(!callback.contains("error="), "{callback}");
    let done = browser.navigate(&callback).await;
    assert_eq!(done.status(), StatusCode::FOUND);
    assert_eq!(location(&done), env.proxy.url("/reports?q=1"));
    let page = browser.navigate(&env.proxy.url("/reports?q=1")).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(
        env.upstream.last().header("x-forwarded-user"),
        Some("alice")
    );
    eprintln!(
        "silent re-authentication: from the navigation to the app's answer in {:?} (loopback, \
         real OP)",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_op_session_the_silent_attempt_falls_back_to_the_ops_login_form() {
    let env = TestEnv::start_full("", &session_section(true), json!({})).await;
    // A browser with alice's expired cookie and no session at the OP.
    let browser = env.browser();
    expire_session(&env, &browser, "alice");

    let (op_url, _) = login_redirect(&env, &browser, "/app").await;
    assert_eq!(query(&op_url)["prompt"], "none");
    let callback = through_the_op_without_a_page(&env, &browser, op_url).await;
    assert_eq!(query(&callback)["error"], "login_required", "{callback}");

    // The callback starts a normal login for the same target: straight to the OP.
    let resp = browser.navigate(&callback).await;
    assert_eq!(resp.status(), StatusCode::FOUND, "not the cancelled page");
    let normal = location(&resp);
    assert!(
        normal.starts_with(&format!("{}/auth?", env.op.issuer)),
        "{normal}"
    );
    assert!(!query(&normal).contains_key("prompt"), "{normal}");
    let cookies = set_cookies(&resp);
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("profilegate_session_login_") && !c.contains("Max-Age=0")),
        "a new login state: {cookies:?}"
    );

    // No loop: the dead cookie went with the silent attempt, so a new navigation (the user
    // gave up at the OP's form) starts a normal login, not another silent one.
    assert!(
        !browser
            .cookies_for(&env.proxy.url("/"))
            .contains("profilegate_session="),
        "{}",
        browser.cookies_for(&env.proxy.url("/"))
    );
    let (again, _) = login_redirect(&env, &browser, "/app").await;
    assert!(!query(&again).contains_key("prompt"), "{again}");

    // The OP shows its login form; signing in lands on the asked page.
    let form = browser.client.get(&normal).send().await.expect("OP");
    assert_eq!(form.status(), StatusCode::SEE_OTHER);
    let interaction = absolute(&normal, &location(&form));
    let page = browser
        .client
        .get(&interaction)
        .send()
        .await
        .expect("OP page");
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page
        .text()
        .await
        .expect("form")
        .contains("name=\"password\""));
    let callback = browser.sign_in_from(normal, "alice").await;
    let done = browser.navigate(&callback).await;
    assert_eq!(done.status(), StatusCode::FOUND);
    assert_eq!(location(&done), env.proxy.url("/app"));
    assert_eq!(
        browser.navigate(&env.proxy.url("/app")).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_session_is_also_renewed_silently_and_no_cookie_or_the_setting_off_means_a_normal_login(
) {
    let env = TestEnv::start_full("", &session_section(true), json!({})).await;
    let browser = env.browser();
    browser.login(&env.proxy.url("/"), "alice").await;
    // A copy of the cookie, revoked by a logout in which the OP session lives on.
    let copy = browser.cookies_for(&env.proxy.url("/"));
    let out = browser
        .navigate(&env.proxy.url("/.profilegate/logout"))
        .await;
    assert_eq!(out.status(), StatusCode::FOUND);
    let url = env.proxy.url("/").parse().expect("url");
    for pair in copy.split("; ") {
        browser.jar.add_cookie_str(&format!("{pair}; Path=/"), &url);
    }
    let (op_url, _) = login_redirect(&env, &browser, "/app").await;
    assert_eq!(query(&op_url)["prompt"], "none");
    let callback = through_the_op_without_a_page(&env, &browser, op_url).await;
    let done = browser.navigate(&callback).await;
    assert_eq!(location(&done), env.proxy.url("/app"));
    assert_eq!(
        browser.navigate(&env.proxy.url("/app")).await.status(),
        StatusCode::OK
    );

    // No session cookie at all: a normal login.
    let fresh = env.browser();
    let (op_url, _) = login_redirect(&env, &fresh, "/app").await;
    assert!(!query(&op_url).contains_key("prompt"), "{op_url}");
    // A normal login's login_required is still "Sign-in cancelled".
    let state = query(&op_url)["state"].clone();
    let cancelled = fresh
        .navigate(&format!(
            "{}?error=login_required&state={state}",
            env.proxy.url("/.profilegate/callback")
        ))
        .await;
    assert_eq!(cancelled.status(), StatusCode::FORBIDDEN);
    assert!(cancelled
        .text()
        .await
        .expect("page")
        .contains("Sign-in cancelled"));

    // silent_reauth off: a dead cookie leads to a normal login.
    let off = TestEnv::start_full("", &session_section(false), json!({})).await;
    let browser = off.browser();
    browser.login(&off.proxy.url("/"), "alice").await;
    expire_session(&off, &browser, "alice");
    let (op_url, _) = login_redirect(&off, &browser, "/app").await;
    assert!(!query(&op_url).contains_key("prompt"), "{op_url}");
}
