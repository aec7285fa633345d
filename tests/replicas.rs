//! End-to-end: two profilegate replicas sharing users through the PostgreSQL store, against the
//! real OP and the PostgreSQL server `tests/run.sh` starts (`PG_TEST_URL`; without it the test
//! says so and returns, unless `PG_TEST_REQUIRED` is set, as `tests/run.sh` sets it).
//!
//! Replica A does the logins and takes the answers; replica B serves the same users with the same
//! session cookie (same `session.secret`, as behind a load balancer): it must see what A stored,
//! sign the profile JWT with the same key, and notice when its cached profile is older than the
//! revision a session carries.

mod support;

use reqwest::StatusCode;
use serde_json::json;
use support::questions::*;
use support::*;

fn questions() -> String {
    profiling(
        &["questions_per_login = 1"],
        &[
            Question::new("company", COMPANY_LABEL, "text").with("required", "true"),
            role(&["Engineering", "Design"]),
        ],
    )
}

/// Answers the pending question on proxy `origin`'s question page.
async fn answer(browser: &Browser, proxy: &Proxy, question: &str, value: &str) {
    let page = browser
        .navigate(&proxy.url("/.profilegate/profile?rd=%2F"))
        .await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("page");
    assert!(
        html.contains(&format!("name=\"{question}\"")),
        "{question} is asked:\n{html}"
    );
    let resp = browser
        .client
        .post(proxy.url("/.profilegate/profile"))
        .header("accept", "text/html")
        .form(&[
            (question, value),
            ("_csrf", &form_value(&html, "_csrf")),
            ("_question", question),
            ("_rd", &form_value(&html, "_rd")),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "answer accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_answers_and_the_signing_key_and_notice_a_newer_revision() {
    let Some(store) = support::pg::pg_store("replicas").await else {
        return;
    };
    let sections = format!("{}\n{store}", questions());
    let env = TestEnv::spawned_full("", &sections, json!({})).await;
    let replica_b = start_proxy_with(
        free_port(),
        &env.op.issuer,
        &env.upstream.url(),
        "",
        &sections,
        true,
    )
    .await;

    // Alice signs in at A and answers the first question there.
    let browser = env.browser();
    browser.login(&env.proxy.url("/"), "alice").await;
    answer(&browser, &env.proxy, "company", "Shared Corp").await;

    // B has never seen her: it reads her profile from PostgreSQL.
    let resp = browser.navigate(&replica_b.url("/from-b")).await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", replica_b.log());
    let seen = env.upstream.last();
    assert_eq!(seen.target, "/from-b");
    assert_eq!(seen.header("x-forwarded-user"), Some("alice"));
    assert_eq!(seen.header("x-profile-company"), Some("Shared Corp"));

    // B signs with the key A created and stored: B's token verifies against A's JWKS.
    let token = seen.header("x-profile-jwt").expect("jwt").to_owned();
    if let Err(why) = headers::verify_profile_jwt(
        &env.proxy.url("/.profilegate/jwks.json"),
        &replica_b.origin,
        &env.upstream.url(),
        &token,
    ) {
        panic!("B's JWT did not verify with A's keys: {why}");
    }

    // A second login at A asks the next question; the answer gives a new revision, which the
    // new session carries. B still caches the old revision and must reload.
    let second = Browser::new();
    second.login(&env.proxy.url("/"), "alice").await;
    answer(&second, &env.proxy, "role", "Design").await;
    let resp = second.navigate(&replica_b.url("/again")).await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", replica_b.log());
    let seen = env.upstream.last();
    assert_eq!(seen.target, "/again");
    assert_eq!(seen.header("x-profile-company"), Some("Shared Corp"));
    assert_eq!(
        seen.header("x-profile-role"),
        Some("Design"),
        "B reloaded the newer profile"
    );
    // And the first session, at B, now gets the newer profile too (B's cache has it).
    browser.navigate(&replica_b.url("/third")).await;
    assert_eq!(env.upstream.last().header("x-profile-role"), Some("Design"));
}

/// An erase through replica A's admin API: replica B, which served the user's answers from its
/// cache a moment before, serves none at the next request (PostgreSQL `NOTIFY`, heard by B's
/// `LISTEN`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erase_at_one_replica_is_seen_by_the_other_at_the_next_request() {
    let Some(store) = support::pg::pg_store("replicas").await else {
        return;
    };
    const TOKEN: &str = "replicas-admin-token-0123456789";
    let sections = format!(
        "{}\n{store}\n[admin]\ntoken = \"ops:{TOKEN}\"\n",
        questions()
    );
    let env = TestEnv::spawned_full("", &sections, json!({})).await;
    let replica_b = start_proxy_with(
        free_port(),
        &env.op.issuer,
        &env.upstream.url(),
        "",
        &sections,
        true,
    )
    .await;
    let browser = env.browser();
    browser.login(&env.proxy.url("/"), "alice").await;
    answer(&browser, &env.proxy, "company", "Erased Corp").await;
    // B caches her answers.
    for path in ["/b-1", "/b-2"] {
        let resp = browser.navigate(&replica_b.url(path)).await;
        assert_eq!(resp.status(), StatusCode::OK, "{}", replica_b.log());
        assert_eq!(
            env.upstream.last().header("x-profile-company"),
            Some("Erased Corp")
        );
    }
    let erased = reqwest::Client::new()
        .delete(format!(
            "http://127.0.0.1:{}/admin/user?sub=alice",
            env.proxy.admin_port
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("erase at A");
    assert_eq!(erased.status(), StatusCode::OK, "{}", env.proxy.log());
    let started = std::time::Instant::now();
    let resp = browser.navigate(&replica_b.url("/b-after")).await;
    let took = started.elapsed();
    assert_eq!(resp.status(), StatusCode::OK, "{}", replica_b.log());
    let seen = env.upstream.last();
    assert_eq!(seen.target, "/b-after");
    assert_eq!(
        seen.header("x-profile-company"),
        None,
        "B still served the erased answer:\n{}",
        replica_b.log()
    );
    eprintln!("B's first request after the erase at A answered in {took:?}, without the answer");
}

/// A user erasing their own answers at `/.profilegate/api/me` through replica A, in one
/// session: their other session, whose answers replica B had cached, gets none from B at its
/// next request either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_service_erase_at_one_replica_reaches_the_users_other_session_at_the_other() {
    let Some(store) = support::pg::pg_store("replicas").await else {
        return;
    };
    let sections = format!("{}\n{store}\n", questions());
    let env = TestEnv::spawned_full("", &sections, json!({})).await;
    let replica_b = start_proxy_with(
        free_port(),
        &env.op.issuer,
        &env.upstream.url(),
        "",
        &sections,
        true,
    )
    .await;
    let laptop = env.browser();
    laptop.login(&env.proxy.url("/"), "alice").await;
    answer(&laptop, &env.proxy, "company", "Forget Me Corp").await;
    // B caches her answers for the laptop's session.
    for path in ["/b-1", "/b-2"] {
        let resp = laptop.navigate(&replica_b.url(path)).await;
        assert_eq!(resp.status(), StatusCode::OK, "{}", replica_b.log());
        assert_eq!(
            env.upstream.last().header("x-profile-company"),
            Some("Forget Me Corp")
        );
    }
    // Her phone: a second sign-in, at A, erases her answers.
    let phone = env.browser();
    phone.login(&env.proxy.url("/"), "alice").await;
    let me: serde_json::Value = phone
        .client
        .get(env.proxy.url("/.profilegate/api/me"))
        .send()
        .await
        .expect("api/me")
        .json()
        .await
        .expect("JSON");
    let csrf = me["csrf_token"].as_str().expect("csrf token").to_owned();
    let erased = phone
        .client
        .delete(env.proxy.url("/.profilegate/api/me"))
        .header("x-profilegate-csrf", &csrf)
        .send()
        .await
        .expect("erase");
    assert!(
        erased.status().is_success(),
        "{}\n{}",
        erased.status(),
        env.proxy.log()
    );
    // PostgreSQL's notification is not waited for by a self-service erase: 2 s at most
    // (docs/self-service.md), request by request.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let resp = laptop
            .navigate(&replica_b.url(&format!("/b-after-{attempt}")))
            .await;
        assert_eq!(resp.status(), StatusCode::OK, "{}", replica_b.log());
        let seen = env.upstream.last();
        if seen.header("x-profile-company").is_none() {
            eprintln!("B stopped serving the erased answer at request {attempt}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "B still served the erased answer 2 s later:\n{}",
            replica_b.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
