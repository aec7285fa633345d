//! A session's life after the login, end to end against the real OP (DESIGN §13, issue 19):
//! `session.secret` rotation across restarts of the binary (a new secret put first signs nobody
//! out; dropping the old one ends only what it alone sealed), `session.idle_timeout` (an idle
//! session is sent to login, an active one outlives the timeout), `session.lifetime` (a
//! cookie's `exp` ends it whatever the activity), and logout ending every copy of the cookie,
//! in one process (sled) and across two replicas on PostgreSQL (see tests/support/pg.rs).

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use profilegate::config::Config;
use profilegate::session::{now_secs, CookieSealer, RequestCookies, Session};
use reqwest::{Response, StatusCode};
use serde_json::json;
use support::questions::*;
use support::*;

/// The secret of the test proxies before the rotation (theirs by default).
const OLD: &str = SESSION_SECRET;
/// The secret the rotation brings in.
const NEW: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
/// The session cookie's name.
const COOKIE: &str = "profilegate_session";

/// A sealer with these session secrets (the first seals), to read and write what the proxies'
/// cookies hold.
fn sealer(secrets: &[&str]) -> CookieSealer {
    let text = format!(
        r#"
[upstream]
url = "http://127.0.0.1:3000"
[oidc]
issuer = "http://127.0.0.1:1"
client_id = "c"
client_secret = "s"
[session]
secret = {secrets:?}
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

/// The session in a `name=value` cookie pair, if `secrets` open it.
fn open_with(secrets: &[&str], pair: &str) -> Option<Session> {
    sealer(secrets).open_session(&RequestCookies::parse([pair.as_bytes()]))
}

/// The session cookie (`name=value`) `browser` holds for `proxy`.
fn session_pair(browser: &Browser, proxy: &Proxy) -> String {
    browser
        .cookies_for(&proxy.url("/"))
        .split("; ")
        .find(|pair| pair.starts_with(&format!("{COOKIE}=")))
        .unwrap_or_else(|| panic!("no session cookie in the jar"))
        .to_owned()
}

/// The session cookie (`name=value`) a response sets, if it sets one (not a deletion).
fn set_session_pair(resp: &Response) -> Option<String> {
    set_cookies(resp)
        .into_iter()
        .find(|c| c.starts_with(&format!("{COOKIE}=")) && !c.contains("Max-Age=0"))
        .and_then(|c| c.split(';').next().map(str::to_owned))
}

/// A request to `proxy` carrying only `pair` as its cookies: a navigation or an API call.
async fn with_cookie(proxy: &Proxy, path: &str, pair: &str, navigation: bool) -> Response {
    let accept = match navigation {
        true => "text/html,application/xhtml+xml,*/*;q=0.8",
        false => "application/json",
    };
    Browser::new()
        .client
        .get(proxy.url(path))
        .header("accept", accept)
        .header("cookie", pair)
        .send()
        .await
        .expect("request")
}

/// `pair` is refused as a session at `proxy`: an API call gets 401, a navigation is sent to the
/// OP to sign in. A cookie that opens but whose session has ended (`ended`: revoked, idle) is
/// deleted too; one that does not open (expired, sealed with a dropped secret) reads as absent.
async fn assert_sent_to_login(op: &TestOp, proxy: &Proxy, pair: &str, ended: bool, why: &str) {
    let api = with_cookie(proxy, "/api/data", pair, false).await;
    assert_eq!(
        api.status(),
        StatusCode::UNAUTHORIZED,
        "{why}: the API call\n{}",
        proxy.log()
    );
    let deleted = set_cookies(&api)
        .iter()
        .any(|c| c.starts_with(&format!("{COOKIE}=;")) && c.contains("Max-Age=0"));
    assert_eq!(
        deleted,
        ended,
        "{why}: the cookie deleted: {:?}",
        set_cookies(&api)
    );
    let nav = with_cookie(proxy, "/page", pair, true).await;
    assert_eq!(nav.status(), StatusCode::FOUND, "{why}: the navigation");
    assert!(
        location(&nav).starts_with(&op.issuer),
        "{why}: the navigation goes to the OP, not {}",
        location(&nav)
    );
}

/// `pair` is a live session of `sub` at `proxy`: an API call reaches the upstream as `sub`.
async fn assert_signed_in(env: &TestEnv, proxy: &Proxy, pair: &str, sub: &str, why: &str) {
    let path = format!("/api/{}", random_path());
    let resp = with_cookie(proxy, &path, pair, false).await;
    assert_eq!(resp.status(), StatusCode::OK, "{why}\n{}", proxy.log());
    let seen = env.upstream.last();
    assert_eq!(seen.target, path, "{why}");
    assert_eq!(seen.header("x-forwarded-user"), Some(sub), "{why}");
}

fn random_path() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!("r{}", N.fetch_add(1, Ordering::Relaxed))
}

/// Rewrites the running binary's `[session] secret` to `secret` (TOML) and restarts it.
async fn restart_with_secret(proxy: &mut Proxy, secret: &str) {
    let text = std::fs::read_to_string(&proxy.config_path).expect("config");
    let line = text
        .lines()
        .find(|l| l.starts_with("secret = "))
        .expect("a secret line")
        .to_owned();
    let text = text.replace(&line, &format!("secret = {secret}"));
    std::fs::write(&proxy.config_path, text).expect("config written");
    proxy.restart().await;
}

/// Answers the pending company question on the question page (a route that seals the session
/// again); returns the session cookie the answer set.
async fn answer_company(browser: &Browser, proxy: &Proxy) -> String {
    let page = browser
        .navigate(&proxy.url("/.profilegate/profile?rd=%2F"))
        .await;
    assert_eq!(page.status(), StatusCode::OK, "{}", proxy.log());
    let html = page.text().await.expect("page");
    assert!(html.contains("name=\"company\""), "asked:\n{html}");
    let resp = browser
        .client
        .post(proxy.url("/.profilegate/profile"))
        .header("accept", "text/html")
        .form(&[
            ("company", "Rotated Corp"),
            ("_csrf", &form_value(&html, "_csrf")),
            ("_question", "company"),
            ("_rd", &form_value(&html, "_rd")),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "answer accepted");
    set_session_pair(&resp).expect("the answer seals the session again")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_put_first_then_the_old_one_dropped_signs_nobody_out_but_old_copies() {
    let sections = profiling(&[], &[company()]);
    let mut env = TestEnv::spawned_full("", &sections, json!({})).await;
    // Signed in under [old]; the question is pending.
    let browser = env.browser();
    browser.login(&env.proxy.url("/"), "alice").await;
    let under_old = session_pair(&browser, &env.proxy);
    assert!(open_with(&[OLD], &under_old).is_some());

    // [new, old]: the same cookie goes on without a login, and what is sealed again is
    // sealed with the new secret alone.
    restart_with_secret(&mut env.proxy, &format!("[\"{NEW}\", \"{OLD}\"]")).await;
    let resealed = answer_company(&browser, &env.proxy).await;
    assert_ne!(resealed, under_old);
    let session = open_with(&[NEW], &resealed).expect("sealed with the new secret");
    assert_eq!(session.sub, "alice");
    assert!(
        session.pending.is_empty(),
        "the answer is in the new cookie"
    );
    assert!(
        open_with(&[OLD], &resealed).is_none(),
        "not with the old one"
    );
    assert_signed_in(
        &env,
        &env.proxy,
        &resealed,
        "alice",
        "re-sealed, [new, old]",
    )
    .await;
    // A cookie never re-sealed still works too (this user's copy from before the answer).
    let resp = with_cookie(&env.proxy, "/.profilegate/profile", &under_old, true).await;
    assert_eq!(resp.status(), StatusCode::OK, "old cookie under [new, old]");

    // [new]: the cookie sealed under [new, old] goes on; one sealed only with the old secret
    // is sent to login.
    restart_with_secret(&mut env.proxy, &format!("\"{NEW}\"")).await;
    assert_signed_in(&env, &env.proxy, &resealed, "alice", "re-sealed, [new]").await;
    let resp = browser.navigate(&env.proxy.url("/after")).await;
    assert_eq!(resp.status(), StatusCode::OK, "the browser's cookie, [new]");
    assert_sent_to_login(
        &env.op,
        &env.proxy,
        &under_old,
        false,
        "old-only cookie, [new]",
    )
    .await;

    // The session's record: its tokens were sealed at sign-in with the old secret; [new, old]
    // opens them, [new] alone does not.
    assert!(
        env.proxy
            .signal_and_wait("INT", Duration::from_secs(10))
            .is_some(),
        "profilegate did not stop:\n{}",
        env.proxy.log()
    );
    let no_env: &[(&str, &str)] = &[];
    let config = Config::load(&env.proxy.config_path, no_env).expect("config");
    let store = profilegate::store::open(&config.store)
        .await
        .expect("the stopped proxy's store");
    let record = store
        .session(&session.sid)
        .await
        .expect("read")
        .expect("the session's record");
    let sealed = record.tokens.expect("tokens sealed in the record");
    let tokens = sealer(&[NEW, OLD])
        .tokens()
        .open(&session.sid, &sealed)
        .expect("[new, old] opens the tokens sealed under [old]");
    assert!(tokens.id_token.is_some_and(|t| t.split('.').count() == 3));
    assert!(sealer(&[NEW])
        .tokens()
        .open(&session.sid, &sealed)
        .is_none());
    assert!(sealer(&[OLD])
        .tokens()
        .open(&session.sid, &sealed)
        .is_some());
}

/// The `[session]` table of an idle-timeout test.
fn idle_sections(idle: &str) -> String {
    format!("[session]\nsecret = \"{OLD}\"\nidle_timeout = \"{idle}\"\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_idle_longer_than_the_timeout_is_sent_to_login() {
    let env = TestEnv::start_full("", &idle_sections("10s"), json!({})).await;
    let browser = env.browser();
    browser.login(&env.proxy.url("/"), "alice").await;
    let pair = session_pair(&browser, &env.proxy);
    assert_signed_in(&env, &env.proxy, &pair, "alice", "just signed in").await;
    // The request above was activity (at most a second after the login): 11 s from it.
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_sent_to_login(&env.op, &env.proxy, &pair, true, "idle 11 s, timeout 10 s").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_session_outlives_the_idle_timeout_and_keeps_its_expiry() {
    let env = TestEnv::start_full("", &idle_sections("10s"), json!({})).await;
    let browser = env.browser();
    browser.login(&env.proxy.url("/"), "alice").await;
    let first = open_with(&[OLD], &session_pair(&browser, &env.proxy)).expect("opens");
    let started = Instant::now();
    let (mut requests, mut renewals) = (0, 0);
    // A request a second for 16 s: each renewal's cookie (every ~2.5 s) replaces the last.
    while started.elapsed() < Duration::from_secs(16) {
        let resp = browser
            .client
            .get(env.proxy.url("/api/active"))
            .header("accept", "application/json")
            .send()
            .await
            .expect("request");
        requests += 1;
        assert_eq!(
            resp.status(),
            StatusCode::OK,
            "active for {:?}\n{}",
            started.elapsed(),
            env.proxy.log()
        );
        if let Some(pair) = set_session_pair(&resp) {
            renewals += 1;
            let renewed = open_with(&[OLD], &pair).expect("the renewal opens");
            assert!(renewed.seen >= now_secs() - 1, "seen is now: {renewed:?}");
            assert_eq!(
                renewed.exp, first.exp,
                "activity never extends the lifetime"
            );
            assert_eq!(renewed.sid, first.sid, "the same session");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    eprintln!("{renewals} renewals in {requests} requests over 16 s");
    // 16 s at one renewal per 2 s or so, and not one per request.
    assert!(
        renewals >= 4 && renewals <= requests / 2 + 1,
        "{renewals} renewals in {requests} requests over 16 s"
    );
    assert_eq!(
        env.upstream.last().header("x-forwarded-user"),
        Some("alice")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_at_its_expiry_whatever_its_activity() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    browser.login(&env.proxy.url("/"), "alice").await;
    // The proxy's own session, sealed again with the test's secret to expire 3 s from now:
    // `session.lifetime`'s minimum (60 s) is not waited out.
    let sealer = sealer(&[OLD]);
    let mut session = open_with(&[OLD], &session_pair(&browser, &env.proxy)).expect("opens");
    session.exp = now_secs() + 3;
    let set = sealer.seal_session(&session);
    let pair = set.split(';').next().expect("pair").to_owned();
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1500) {
        assert_signed_in(&env, &env.proxy, &pair, "alice", "before its expiry").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_sent_to_login(&env.op, &env.proxy, &pair, false, "past its expiry").await;
}

/// Signs `browser` out at `proxy` (a same-origin GET of the logout route).
async fn log_out(browser: &Browser, proxy: &Proxy) {
    let resp = browser.navigate(&proxy.url("/.profilegate/logout")).await;
    assert_eq!(resp.status(), StatusCode::FOUND, "{}", proxy.log());
    assert!(
        set_cookies(&resp)
            .iter()
            .any(|c| c.starts_with(&format!("{COOKIE}=;"))),
        "logout deletes the cookie"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_logout_a_copy_of_the_cookie_is_refused() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    browser.login(&env.proxy.url("/"), "alice").await;
    let copy = session_pair(&browser, &env.proxy);
    let bob = Browser::new();
    bob.login(&env.proxy.url("/"), "bob").await;
    let bobs = session_pair(&bob, &env.proxy);
    assert_signed_in(&env, &env.proxy, &copy, "alice", "the copy before logout").await;
    log_out(&browser, &env.proxy).await;
    assert_sent_to_login(&env.op, &env.proxy, &copy, true, "the copy after logout").await;
    assert_signed_in(&env, &env.proxy, &bobs, "bob", "another user's session").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_at_one_replica_ends_the_copy_at_the_other_within_two_seconds() {
    let Some(store) = support::pg::pg_store("session_lifecycle").await else {
        return;
    };
    let env = TestEnv::spawned_full("", &store, json!({})).await;
    let replica_b = start_proxy_with(
        free_port(),
        &env.op.issuer,
        &env.upstream.url(),
        "",
        &store,
        true,
    )
    .await;
    let browser = env.browser();
    browser.login(&env.proxy.url("/"), "alice").await;
    let copy = session_pair(&browser, &env.proxy);
    let bob = Browser::new();
    bob.login(&env.proxy.url("/"), "bob").await;
    let bobs = session_pair(&bob, &env.proxy);
    // B serves the copy (and caches it opened) before the logout.
    assert_signed_in(&env, &replica_b, &copy, "alice", "the copy at B").await;
    log_out(&browser, &env.proxy).await;
    let logged_out = Instant::now();
    let deadline = logged_out + Duration::from_secs(2);
    loop {
        let resp = with_cookie(&replica_b, "/api/poll", &copy, false).await;
        if resp.status() == StatusCode::UNAUTHORIZED {
            eprintln!(
                "B refused the copy {:?} after the logout at A",
                logged_out.elapsed()
            );
            break;
        }
        assert_eq!(resp.status(), StatusCode::OK, "{}", replica_b.log());
        assert!(
            Instant::now() < deadline,
            "B still accepted the copy 2 s after the logout at A:\n{}",
            replica_b.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_sent_to_login(&env.op, &replica_b, &copy, true, "the copy at B").await;
    assert_sent_to_login(&env.op, &env.proxy, &copy, true, "the copy at A").await;
    assert_signed_in(&env, &replica_b, &bobs, "bob", "bob at B").await;
    assert_signed_in(&env, &env.proxy, &bobs, "bob", "bob at A").await;
}
