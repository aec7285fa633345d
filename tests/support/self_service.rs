//! The self-service tests' fixtures (`tests/me.rs`, `tests/me_api.rs`): the questions, a user
//! who answered them, and the page's and the JSON's requests.

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::questions::*;
use super::*;

pub const ROLE_LABEL: &str = "What best describes your role?";

/// Company (required), role (optional select) and team size (optional integer), all three
/// asked at the first sign-in.
pub fn questions() -> String {
    profiling(
        &["questions_per_login = 3"],
        &[
            company(),
            role(&["Engineering", "Sales"]),
            Question::new("team_size", "How many people are on your team?", "integer")
                .with("min", "1")
                .with("required", "false"),
        ],
    )
}

pub async fn env() -> TestEnv {
    TestEnv::start_full("", &questions(), json!({})).await
}

/// A browser signed in as `login` that answered `answers` and skipped `skip` (JSON API).
pub async fn signed_in(env: &TestEnv, login: &str, answers: Value, skip: &[&str]) -> Browser {
    let browser = env.browser();
    browser.login(&env.proxy.url("/app"), login).await;
    let csrf = csrf_of(&browser, env).await;
    let resp = browser
        .client
        .post(env.proxy.url("/.profilegate/api/answers"))
        .header("x-profilegate-csrf", &csrf)
        .json(&json!({ "answers": answers, "skip": skip }))
        .send()
        .await
        .expect("api/answers");
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    browser
}

pub async fn api_me(browser: &Browser, env: &TestEnv) -> Value {
    let resp = browser
        .client
        .get(env.proxy.url("/.profilegate/api/me"))
        .header("accept", "application/json")
        .send()
        .await
        .expect("api/me");
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.expect("json")
}

pub async fn csrf_of(browser: &Browser, env: &TestEnv) -> String {
    let pending: Value = browser
        .client
        .get(env.proxy.url("/.profilegate/api/pending"))
        .send()
        .await
        .expect("api/pending")
        .json()
        .await
        .expect("json");
    pending["csrf_token"].as_str().expect("csrf").to_owned()
}

/// `GET /.profilegate/me{query}` as a navigation: status and HTML.
pub async fn me_page(browser: &Browser, env: &TestEnv, query: &str) -> (StatusCode, String) {
    let resp = browser
        .navigate(&env.proxy.url(&format!("/.profilegate/me{query}")))
        .await;
    (resp.status(), slashes(resp.text().await.expect("html")))
}

/// The page's HTML with the slashes minijinja escapes (`&#x2f;`) read back.
pub fn slashes(html: String) -> String {
    html.replace("&#x2f;", "/")
}

pub async fn post_me(browser: &Browser, env: &TestEnv, form: &[(&str, &str)]) -> reqwest::Response {
    browser
        .client
        .post(env.proxy.url("/.profilegate/me"))
        .header("accept", "text/html")
        .form(form)
        .send()
        .await
        .expect("post")
}

/// An API call to the app (not a navigation): forwarded while only optional questions wait.
pub async fn app_call(browser: &Browser, env: &TestEnv) -> reqwest::Response {
    browser
        .client
        .get(env.proxy.url("/app/data"))
        .header("accept", "application/json")
        .send()
        .await
        .expect("app")
}
