//! When a question applies (`[[profiling.questions]]`): `when` chaining two logins, `on_paths`
//! asking mid-session, and the timing keys (`ask_again_after`, `expires_after`, `max_skips`)
//! against a store whose answers and skips are dated in the past.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::policy::*;
use crate::support::questions::*;
use crate::support::*;

const TEAM_SIZE_LABEL: &str = "How many people are on your team?";
const ROLE_LABEL: &str = "What best describes your role?";

/// A login of `login` in a new browser starting at `path`: the browser, and where the callback
/// sent it.
async fn login(env: &TestEnv, login: &str, path: &str) -> (Browser, String) {
    let browser = Browser::new();
    let callback = browser.login(&env.proxy.url(path), login).await;
    assert_eq!(
        callback.status(),
        StatusCode::FOUND,
        "{login}'s callback; OP: {}",
        env.op.stderr()
    );
    let next = location(&callback);
    (browser, next)
}

/// Asserts that the callback sent `login` to the question page (coming from `path`).
fn assert_asked(env: &TestEnv, login: &str, next: &str, path: &str) {
    let rd: String = url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
    assert_eq!(
        next,
        env.proxy.url(&format!("/.profilegate/profile?rd={rd}")),
        "{login}: a question at this login"
    );
}

/// Asserts that the callback sent `login` straight back to `path`: nothing to ask.
fn assert_not_asked(env: &TestEnv, login: &str, next: &str, path: &str) {
    assert_eq!(
        next,
        env.proxy.url(path),
        "{login}: nothing asked at this login"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_question_is_asked_at_the_next_login_only_after_a_qualifying_answer() {
    let sections = profiling(
        &["questions_per_login = 1"],
        &[
            role(&["Engineering", "Product", "Sales"]),
            Question::new("team_size", TEAM_SIZE_LABEL, "integer")
                .with("required", "false")
                .with("when", r#"'answers.role == "Engineering"'"#),
        ],
    );
    let env = TestEnv::start_full("", &sections, json!({})).await;

    // alice, login 1: the role. Engineering.
    let (alice, next) = login(&env, "alice", "/").await;
    assert_asked(&env, "alice", &next, "/");
    let page = question_page(&alice, &env, "/").await;
    assert!(page.contains(ROLE_LABEL), "{}", excerpt(&page));
    assert!(!page.contains(TEAM_SIZE_LABEL), "one question per login");
    let done = answer(&alice, &env, "/", "role", &[("role", "Engineering")]).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);

    // alice, login 2: the team size, because of that answer.
    let (alice, next) = login(&env, "alice", "/two").await;
    assert_asked(&env, "alice", &next, "/two");
    let page = question_page(&alice, &env, "/two").await;
    assert!(page.contains(TEAM_SIZE_LABEL), "{}", excerpt(&page));
    let done = answer(&alice, &env, "/two", "team_size", &[("team_size", "12")]).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    alice.navigate(&env.proxy.url("/two")).await;
    let seen = env.upstream.last();
    assert_eq!(seen.header("x-profile-role"), Some("Engineering"));
    assert_eq!(seen.header("x-profile-team-size"), Some("12"));

    // bob answers Sales: the team size is never asked, at this login or the next ones.
    let (bob, next) = login(&env, "bob", "/").await;
    assert_asked(&env, "bob", &next, "/");
    answer(&bob, &env, "/", "role", &[("role", "Sales")]).await;
    for n in 2..=3 {
        let (bob, next) = login(&env, "bob", "/later").await;
        assert_not_asked(&env, &format!("bob (login {n})"), &next, "/later");
        let page = bob
            .navigate(&env.proxy.url("/.profilegate/profile?rd=%2Flater"))
            .await;
        assert_eq!(
            page.status(),
            StatusCode::SEE_OTHER,
            "nothing pending for bob"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_on_paths_question_is_asked_when_the_user_opens_the_path() {
    let sections = profiling(
        &[],
        &[
            Question::new("billing_address", "Where do we send the invoices?", "text")
                .with("required", "true")
                .with("on_paths", r#"["/billing"]"#),
        ],
    );
    let env = TestEnv::start_full("", &sections, json!({})).await;

    // Not asked at login, nor on other paths.
    let (alice, next) = login(&env, "alice", "/app").await;
    assert_not_asked(&env, "alice", &next, "/app");
    let before = env.upstream.count();
    assert_eq!(
        alice.navigate(&env.proxy.url("/app")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        alice.navigate(&env.proxy.url("/billingx")).await.status(),
        StatusCode::OK,
        "/billingx is not under /billing"
    );
    assert_eq!(env.upstream.count(), before + 2);

    // Opening /billing: the question, then back to /billing with the answer upstream.
    let nav = alice.navigate(&env.proxy.url("/billing")).await;
    assert_eq!(
        nav.status(),
        StatusCode::SEE_OTHER,
        "the question is asked at /billing; instead the upstream received {:?}",
        env.upstream.requests().get(before + 2).map(|r| &r.target)
    );
    assert_eq!(
        location(&nav),
        env.proxy.url("/.profilegate/profile?rd=%2Fbilling")
    );
    assert_eq!(
        env.upstream.count(),
        before + 2,
        "/billing waits for the answer"
    );
    let page = question_page(&alice, &env, "/billing").await;
    assert!(
        page.contains("Where do we send the invoices?"),
        "{}",
        excerpt(&page)
    );
    let done = answer(
        &alice,
        &env,
        "/billing",
        "billing_address",
        &[("billing_address", "1 Main St")],
    )
    .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&done), env.proxy.url("/billing"));
    let resp = alice.navigate(&env.proxy.url("/billing")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let seen = env.upstream.last();
    assert_eq!(seen.target, "/billing");
    assert_eq!(seen.header("x-profile-billing-address"), Some("1 Main St"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skipped_question_returns_only_after_ask_again_after() {
    let sections = profiling(
        &[],
        &[role(&["Engineering", "Sales"]).with("ask_again_after", r#""30d""#)],
    );
    let env = start_seeded(
        &sections,
        json!({}),
        vec![
            (
                "alice",
                vec![Seed::Skip {
                    id: "role",
                    ago: 31 * DAY,
                }],
            ),
            (
                "bob",
                vec![Seed::Skip {
                    id: "role",
                    ago: DAY,
                }],
            ),
        ],
    )
    .await;

    let (alice, next) = login(&env, "alice", "/").await;
    assert_asked(&env, "alice (skipped 31 days ago)", &next, "/");
    assert!(question_page(&alice, &env, "/").await.contains(ROLE_LABEL));

    let (bob, next) = login(&env, "bob", "/").await;
    assert_not_asked(&env, "bob (skipped yesterday)", &next, "/");
    assert_eq!(
        bob.navigate(&env.proxy.url("/")).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_answer_is_asked_again_with_its_old_value() {
    let sections = profiling(&[], &[company().with("expires_after", r#""365d""#)]);
    let env = start_seeded(
        &sections,
        json!({}),
        vec![
            (
                "alice",
                vec![Seed::Answer {
                    id: "company",
                    value: json!({ "text": "OldCo" }),
                    ago: 400 * DAY,
                }],
            ),
            (
                "bob",
                vec![Seed::Answer {
                    id: "company",
                    value: json!({ "text": "NewCo" }),
                    ago: 10 * DAY,
                }],
            ),
        ],
    )
    .await;

    let (alice, next) = login(&env, "alice", "/").await;
    assert_asked(&env, "alice (answered 400 days ago)", &next, "/");
    let page = question_page(&alice, &env, "/").await;
    assert!(page.contains(COMPANY_LABEL), "{}", excerpt(&page));
    assert!(
        page.contains("value=\"OldCo\""),
        "the old answer is pre-filled:\n{page}"
    );
    let done = answer(&alice, &env, "/", "company", &[("company", "OldCo")]).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER, "confirmed");
    alice.navigate(&env.proxy.url("/")).await;
    assert_eq!(
        env.upstream.last().header("x-profile-company"),
        Some("OldCo")
    );
    let (_, next) = login(&env, "alice", "/").await;
    assert_not_asked(&env, "alice (confirmed just now)", &next, "/");

    let (bob, next) = login(&env, "bob", "/").await;
    assert_not_asked(&env, "bob (answered 10 days ago)", &next, "/");
    bob.navigate(&env.proxy.url("/")).await;
    assert_eq!(
        env.upstream.last().header("x-profile-company"),
        Some("NewCo")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_max_skips_an_optional_question_is_required() {
    let sections = profiling(
        &["questions_per_login = 1"],
        &[role(&["Engineering", "Sales"]).with("max_skips", "1")],
    );
    let env = TestEnv::start_full("", &sections, json!({})).await;

    let (first, next) = login(&env, "alice", "/").await;
    assert_asked(&env, "alice (login 1)", &next, "/");
    let page = question_page(&first, &env, "/").await;
    assert!(page.contains("Skip for now"), "optional at first:\n{page}");
    let skipped = answer(&first, &env, "/", "role", &[("_action", "skip")]).await;
    assert_eq!(skipped.status(), StatusCode::SEE_OTHER);

    // Login 2: skipped once, now required: no Skip button, and API calls wait.
    let (second, next) = login(&env, "alice", "/").await;
    assert_asked(&env, "alice (login 2)", &next, "/");
    let page = question_page(&second, &env, "/").await;
    assert!(page.contains(ROLE_LABEL), "{}", excerpt(&page));
    assert!(!page.contains("Skip for now"), "required now:\n{page}");
    let before = env.upstream.count();
    let api = second
        .client
        .get(env.proxy.url("/app/data"))
        .header("accept", "application/json")
        .send()
        .await
        .expect("api");
    assert_eq!(api.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = api.json().await.unwrap_or_default();
    assert_eq!(body["error"], "profile_incomplete", "{body}");
    assert_eq!(body["pending"][0]["id"], "role", "{body}");
    assert_eq!(env.upstream.count(), before);
}
