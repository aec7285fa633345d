//! End-to-end: progressive profiling against the real OP — what is asked at each login, how
//! answers are validated, stored and sent upstream (headers and a verifiable JWT).

mod support;

use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use support::questions::*;
use support::*;

fn questions() -> String {
    profiling(
        &["questions_per_login = 1"],
        &[
            company()
                .with("help", r#""We use it to tailor your workspace.""#)
                .with("max_length", "100"),
            role(&["Engineering", "Product", "Design", "Sales", "Other"]),
            Question::new("team_size", "How many people are on your team?", "integer")
                .with("min", "1")
                .with("max", "10000")
                .with("required", "false"),
        ],
    )
}

async fn env() -> TestEnv {
    TestEnv::start_full("", &questions(), json!({})).await
}

/// [`env`] with profilegate as a process, for the tests that stop or restart it.
async fn spawned_env() -> TestEnv {
    TestEnv::spawned_full("", &questions(), json!({})).await
}

/// The question page's CSRF token and the hidden `rd`.
fn form_fields(html: &str) -> (String, String) {
    (form_value(html, "_csrf"), form_value(html, "_rd"))
}

async fn question_page(browser: &Browser, env: &TestEnv) -> String {
    question_page_rd(browser, env, "/").await
}

/// The question page, reached as after a login that started at `rd`.
async fn question_page_rd(browser: &Browser, env: &TestEnv, rd: &str) -> String {
    let rd: String = url::form_urlencoded::byte_serialize(rd.as_bytes()).collect();
    let resp = browser
        .navigate(&env.proxy.url(&format!("/.profilegate/profile?rd={rd}")))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.text().await.expect("page")
}

/// Posts the question page's form (reached with `rd=/`).
async fn answer(
    browser: &Browser,
    env: &TestEnv,
    question: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    answer_rd(browser, env, "/", question, fields).await
}

/// Posts the question page's form, reached as after a login that started at `rd`.
async fn answer_rd(
    browser: &Browser,
    env: &TestEnv,
    rd: &str,
    question: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let page = question_page_rd(browser, env, rd).await;
    let (csrf, rd) = form_fields(&page);
    // The test's fields come first: the proxy reads the first value of each name.
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    form.extend_from_slice(&[("_csrf", &csrf), ("_question", question), ("_rd", &rd)]);
    browser
        .client
        .post(env.proxy.url("/.profilegate/profile"))
        .header("accept", "text/html")
        .form(&form)
        .send()
        .await
        .expect("post")
}

fn verify_jwt(env: &TestEnv, token: &str) -> serde_json::Value {
    headers::verify_profile_jwt(
        &env.proxy.url("/.profilegate/jwks.json"),
        &env.proxy.origin,
        &env.upstream.url(),
        token,
    )
    .unwrap_or_else(|why| panic!("JWT did not verify: {why}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_login_asks_only_the_first_question_and_blocks_the_upstream() {
    let env = env().await;
    let browser = env.browser();
    let callback = browser.login(&env.proxy.url("/app?tab=2"), "alice").await;
    assert_eq!(callback.status(), StatusCode::FOUND);
    assert_eq!(
        location(&callback),
        env.proxy.url("/.profilegate/profile?rd=%2Fapp%3Ftab%3D2"),
        "straight to the question page, remembering where the user was going"
    );

    let page = question_page(&browser, &env).await;
    assert!(page.contains("Which company do you work for?"), "{page}");
    assert!(page.contains("We use it to tailor your workspace."));
    assert!(
        !page.contains("What best describes your role?"),
        "one question per login"
    );
    assert!(
        page.contains("minlength=\"2\"") && page.contains("maxlength=\"100\""),
        "HTML constraints"
    );
    assert!(
        !page.contains("Skip for now"),
        "a required question cannot be skipped"
    );

    // Every upstream path waits: navigations go to the page, API calls get 403 JSON.
    let nav = browser.navigate(&env.proxy.url("/other")).await;
    assert_eq!(nav.status(), StatusCode::SEE_OTHER);
    assert!(location(&nav).contains("/.profilegate/profile?rd=%2Fother"));
    let api = browser
        .client
        .post(env.proxy.url("/api/save"))
        .header("accept", "application/json")
        .body("{}")
        .send()
        .await
        .expect("api");
    assert_eq!(api.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = api.json().await.expect("json");
    assert_eq!(body["error"], "profile_incomplete");
    assert_eq!(body["pending"][0]["id"], "company");
    assert_eq!(
        env.upstream.count(),
        0,
        "the upstream is not reached while a required question is pending"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_validated_stored_and_sent_upstream_as_headers_and_a_verifiable_jwt() {
    let env = env().await;
    let browser = env.browser();
    browser.login(&env.proxy.url("/app"), "alice").await;

    // Invalid: 422, the message, and the user's input kept.
    let bad = answer(&browser, &env, "company", &[("company", "A")]).await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = bad.text().await.expect("page");
    assert!(html.contains("value=\"A\""), "input kept: {html}");
    assert!(html.contains("role=\"alert\""), "message shown");
    assert!(
        html.contains("aria-invalid=\"true\""),
        "error linked to the field"
    );

    // A missing or wrong CSRF token is refused and stores nothing.
    for token in [None, Some("forged")] {
        let mut form = vec![
            ("_question", "company"),
            ("company", "Evil Corp"),
            ("_rd", "/app"),
        ];
        if let Some(t) = token {
            form.push(("_csrf", t));
        }
        let resp = browser
            .client
            .post(env.proxy.url("/.profilegate/profile"))
            .form(&form)
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    }
    assert!(
        question_page(&browser, &env)
            .await
            .contains("Which company"),
        "still pending"
    );

    // Valid: 303 back to where the user was going; the upstream sees the answer.
    let ok = answer_rd(
        &browser,
        &env,
        "/app",
        "company",
        &[("company", "  Acme Corp  ")],
    )
    .await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&ok), env.proxy.url("/app"));
    let resp = browser.navigate(&env.proxy.url("/app")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let seen = env.upstream.last();
    assert_eq!(seen.header("x-profile-company"), Some("Acme Corp"));
    assert_eq!(seen.header("x-forwarded-user"), Some("alice"));

    let token = seen
        .header("x-profile-jwt")
        .expect("X-Profile-Jwt")
        .to_owned();
    let verified = verify_jwt(&env, &token);
    let payload = &verified["payload"];
    assert_eq!(payload["sub"], "alice");
    assert_eq!(payload["email"], "alice@example.com");
    assert_eq!(payload["profile"]["company"], "Acme Corp");
    let lifetime = payload["exp"].as_u64().unwrap_or(0) - payload["iat"].as_u64().unwrap_or(0);
    assert!(lifetime > 0 && lifetime <= 3600, "short-lived: {lifetime}s");
    assert_eq!(verified["header"]["alg"], "ES256");

    // The JWT is cached: the next request carries the same token (no signature per request).
    browser.navigate(&env.proxy.url("/again")).await;
    assert_eq!(
        env.upstream.last().header("x-profile-jwt"),
        Some(token.as_str())
    );

    // A forged token does not verify.
    let mut forged = token.clone().into_bytes();
    let i = forged.len() - 5;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    let out = child::output_within(
        Command::new("node")
            .arg(repo().join("tests/op/verify-jwt.mjs"))
            .arg(env.proxy.url("/.profilegate/jwks.json"))
            .arg(&env.proxy.origin)
            .arg(env.upstream.url())
            .arg(String::from_utf8(forged).expect("ascii")),
        "node tests/op/verify-jwt.mjs",
        child::COMMAND_LIMIT,
    )
    .expect("node");
    assert!(!out.status.success(), "a tampered JWT must not verify");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_logins_ask_the_next_question_and_a_skipped_one_comes_back() {
    let env = env().await;
    let alice = env.browser();
    alice.login(&env.proxy.url("/"), "alice").await;
    answer(&alice, &env, "company", &[("company", "Acme")]).await;

    // Login 2 (a new browser): the next question, optional, which can be skipped.
    let second = Browser::new();
    let cb = second.login(&env.proxy.url("/two"), "alice").await;
    assert!(
        location(&cb).contains("/.profilegate/profile"),
        "a question at login 2"
    );
    let page = question_page(&second, &env).await;
    assert!(page.contains("What best describes your role?"), "{page}");
    assert!(page.contains("Skip for now"));
    assert!(page.contains("<option value=\"Engineering\""));
    let skipped = answer_rd(&second, &env, "/two", "role", &[("_action", "skip")]).await;
    assert_eq!(skipped.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&skipped), env.proxy.url("/two"));
    assert_eq!(
        second.navigate(&env.proxy.url("/two")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        env.upstream.last().header("x-profile-company"),
        Some("Acme")
    );
    assert_eq!(env.upstream.last().header("x-profile-role"), None);

    // Login 3: the skipped question went to the back; the next unanswered one comes first.
    let third = Browser::new();
    third.login(&env.proxy.url("/"), "alice").await;
    assert!(question_page(&third, &env)
        .await
        .contains("How many people are on your team?"));
    let ok = answer(&third, &env, "team_size", &[("team_size", "12")]).await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);

    // Login 4: the skipped question comes back, and is answered.
    let fourth = Browser::new();
    fourth.login(&env.proxy.url("/"), "alice").await;
    assert!(question_page(&fourth, &env)
        .await
        .contains("What best describes your role?"));
    let bad = answer(&fourth, &env, "role", &[("role", "Astronaut")]).await;
    assert_eq!(
        bad.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "only configured options"
    );
    answer(&fourth, &env, "role", &[("role", "Product")]).await;
    fourth.navigate(&env.proxy.url("/done")).await;
    let seen = env.upstream.last();
    assert_eq!(seen.header("x-profile-role"), Some("Product"));
    assert_eq!(seen.header("x-profile-team-size"), Some("12"));

    // Login 5: nothing left to ask.
    let fifth = Browser::new();
    let cb = fifth.login(&env.proxy.url("/five"), "alice").await;
    assert_eq!(location(&cb), env.proxy.url("/five"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_new_is_asked_between_logins() {
    let env = env().await;
    let browser = env.browser();
    browser.login(&env.proxy.url("/"), "alice").await;
    answer(&browser, &env, "company", &[("company", "Acme")]).await;
    // Same session: role and team_size are unanswered, but they wait for a later login.
    for path in ["/a", "/b", "/c"] {
        assert_eq!(
            browser.navigate(&env.proxy.url(path)).await.status(),
            StatusCode::OK
        );
    }
    let page = browser
        .navigate(&env.proxy.url("/.profilegate/profile?rd=%2Fx"))
        .await;
    assert_eq!(
        page.status(),
        StatusCode::SEE_OTHER,
        "nothing pending: on to the app"
    );
    assert_eq!(location(&page), env.proxy.url("/x"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_survive_a_proxy_restart() {
    let mut env = spawned_env().await;
    let browser = env.browser();
    browser.login(&env.proxy.url("/"), "alice").await;
    answer(&browser, &env, "company", &[("company", "Durable Ltd")]).await;
    env.proxy.restart().await;
    // The same session cookie still works (same secret); the answer comes from the store.
    let resp = browser.navigate(&env.proxy.url("/after-restart")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        env.upstream.last().header("x-profile-company"),
        Some("Durable Ltd")
    );
    // And a new login does not ask it again.
    let again = Browser::new();
    let cb = again.login(&env.proxy.url("/"), "alice").await;
    let page = again
        .navigate(&location(&cb))
        .await
        .text()
        .await
        .expect("page");
    assert!(
        !page.contains("Which company"),
        "answered before the restart"
    );
}

/// A login is written without waiting for the disk (sled's background flush takes it there);
/// a proxy stopped right after it still leaves it in the store: the store is synced at shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_is_in_the_store_after_the_proxy_stops_right_after_it() {
    let mut env = spawned_env().await;
    let browser = env.browser();
    browser.login(&env.proxy.url("/"), "alice").await;
    assert!(
        env.proxy
            .signal_and_wait("INT", Duration::from_secs(10))
            .is_some(),
        "profilegate did not stop:\n{}",
        env.proxy.log()
    );
    let store = profilegate::store::SledStore::open(
        &env.proxy.dir.path().join("data"),
        profilegate::store::SledOptions::default(),
    )
    .await
    .expect("the store opens once the proxy is gone");
    let record = profilegate::store::ProfileStore::load(
        &store,
        &profilegate::store::UserKey::new(env.op.issuer.trim_end_matches('/'), "alice"),
    )
    .await
    .expect("load")
    .expect("the user's record");
    assert_eq!(record.logins, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_and_script_payloads_never_reach_a_header_or_a_page_unescaped() {
    let env = env().await;
    let browser = env.browser();
    browser.login(&env.proxy.url("/"), "alice").await;

    let crlf = "Acme\r\nX-Evil: injected";
    let resp = answer(&browser, &env, "company", &[("company", crlf)]).await;
    assert_eq!(
        resp.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "control characters are refused"
    );

    let script = "<script>alert(1)</script>";
    let resp = answer(
        &browser,
        &env,
        "company",
        &[(
            "company",
            &format!("\"><img src=x onerror=alert(1)>{script}"),
        )],
    )
    .await;
    // Accepted as text (it is someone's answer) ...
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    browser.navigate(&env.proxy.url("/x")).await;
    let seen = env.upstream.last();
    let header = seen.header("x-profile-company").expect("header").to_owned();
    assert!(!header.contains('\r') && !header.contains('\n'));
    assert_eq!(
        header, "\"><img src=x onerror=alert(1)><script>alert(1)</script>",
        "printable ASCII passes verbatim"
    );
    assert!(seen.header("x-evil").is_none());

    // Non-ASCII and % are percent-encoded; decoding is exact.
    let fresh = Browser::new();
    let env2 = TestEnv::start_full("", &questions(), json!({})).await;
    fresh.login(&env2.proxy.url("/"), "bob").await;
    answer(
        &fresh,
        &env2,
        "company",
        &[("company", "Zoë & 100% Ünïcode")],
    )
    .await;
    fresh.navigate(&env2.proxy.url("/y")).await;
    let value = env2
        .upstream
        .last()
        .header("x-profile-company")
        .expect("header")
        .to_owned();
    assert_eq!(value, "Zo%C3%AB & 100%25 %C3%9Cn%C3%AFcode");
    let decoded = percent_encoding::percent_decode_str(&value)
        .decode_utf8()
        .expect("utf8");
    assert_eq!(decoded, "Zoë & 100% Ünïcode");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_is_escaped_on_the_question_page() {
    let env = env().await;
    let browser = env.browser();
    browser.login(&env.proxy.url("/"), "alice").await;
    let payload = "\"><script>alert(1)</script>";
    let resp = answer(
        &browser,
        &env,
        "company",
        &[("company", "x"), ("_rd", payload)],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = resp.text().await.expect("page");
    assert!(!html.contains("<script>alert(1)"), "{html}");
    let page = browser
        .navigate(&format!(
            "{}?rd={}",
            env.proxy.url("/.profilegate/profile"),
            url::form_urlencoded::byte_serialize(payload.as_bytes()).collect::<String>()
        ))
        .await
        .text()
        .await
        .expect("page");
    assert!(!page.contains("<script>alert(1)"), "{page}");
    assert!(
        page.contains("name=\"_rd\" value=\"&#x2f;\""),
        "an invalid rd falls back to /: {page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_the_op_already_supplies_is_not_asked_and_still_reaches_the_upstream() {
    let op_extra = json!({
        "claims": { "carol": { "company": "Initech" } },
        "extra_scope_claims": { "profile": ["company"] },
    });
    let env = TestEnv::start_full("", &questions(), op_extra).await;
    let browser = env.browser();
    let cb = browser.login(&env.proxy.url("/start"), "carol").await;
    let loc = location(&cb);
    assert!(
        loc.contains("/.profilegate/profile"),
        "role is still asked: {loc}"
    );
    let page = question_page(&browser, &env).await;
    assert!(!page.contains("Which company"), "company comes from the OP");
    assert!(page.contains("What best describes your role?"));
    answer(&browser, &env, "role", &[("_action", "skip")]).await;
    browser.navigate(&env.proxy.url("/start")).await;
    assert_eq!(
        env.upstream.last().header("x-profile-company"),
        Some("Initech")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jwks_is_public_and_json() {
    let env = env().await;
    let resp = reqwest::get(env.proxy.url("/.profilegate/jwks.json"))
        .await
        .expect("jwks");
    assert_eq!(resp.status(), StatusCode::OK);
    let jwks: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(jwks["keys"][0]["kty"], "EC");
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
    assert!(jwks["keys"][0].get("d").is_none(), "never the private part");
}
