//! End-to-end: the ways questions reach users besides the hosted page's defaults — the JSON API
//! for single-page apps and template overrides — against the real OP.

mod support;

use reqwest::StatusCode;
use serde_json::json;
use support::*;

const QUESTIONS: &str = r#"
[profiling]
questions_per_login = 2

[[profiling.questions]]
id = "company"
label = "Which company do you work for?"
type = "text"
required = true
min_length = 2

[[profiling.questions]]
id = "interests"
label = "What are you interested in?"
type = "multiselect"
options = ["api", "security", "billing"]
"#;

async fn signed_in(env: &TestEnv) -> Browser {
    let browser = env.browser();
    browser.login(&env.proxy.url("/spa"), "alice").await;
    browser
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_page_app_answers_through_the_json_api() {
    let env = TestEnv::start_full("", QUESTIONS, json!({})).await;
    let browser = signed_in(&env).await;
    let api = |p: &str| env.proxy.url(&format!("/.profilegate/api/{p}"));

    // Pending questions with their schema, and the CSRF token to send back.
    let pending: serde_json::Value = browser
        .client
        .get(api("pending"))
        .send()
        .await
        .expect("pending")
        .json()
        .await
        .expect("json");
    assert_eq!(pending["pending"][0]["id"], "company");
    assert_eq!(pending["pending"][0]["type"], "text");
    assert_eq!(pending["pending"][0]["required"], true);
    assert_eq!(pending["pending"][0]["min_length"], 2);
    assert_eq!(
        pending["pending"][1]["options"],
        json!(["api", "security", "billing"])
    );
    let csrf = pending["csrf_token"].as_str().expect("token").to_owned();

    let post = |body: serde_json::Value, token: Option<&str>| {
        let mut req = browser.client.post(api("answers")).json(&body);
        if let Some(t) = token {
            req = req.header("X-Profilegate-Csrf", t);
        }
        req.send()
    };

    // No or wrong CSRF header: refused.
    let resp = post(json!({"answers": {"company": "Acme"}}), None)
        .await
        .expect("post");
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = post(json!({"answers": {"company": "Acme"}}), Some("nope"))
        .await
        .expect("post");
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // A form post (what a cross-site page could send) is refused too.
    let resp = browser
        .client
        .post(api("answers"))
        .header("X-Profilegate-Csrf", &csrf)
        .form(&[("company", "Acme")])
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    // Invalid answers: 422 with an error per field, and nothing saved.
    let resp = post(
        json!({"answers": {"company": "A", "interests": ["cooking"]}, "skip": []}),
        Some(&csrf),
    )
    .await
    .expect("post");
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert!(
        body["errors"]["company"]
            .as_str()
            .unwrap_or("")
            .contains("at least 2"),
        "{body}"
    );
    assert!(body["errors"]["interests"].is_string(), "{body}");
    let resp = post(json!({"skip": ["company"]}), Some(&csrf))
        .await
        .expect("post");
    assert_eq!(
        resp.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "a required question cannot be skipped"
    );
    let resp = post(json!({"answers": {"company": {"nested": 1}}}), Some(&csrf))
        .await
        .expect("post");
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let resp = browser
        .client
        .post(api("answers"))
        .header("X-Profilegate-Csrf", &csrf)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let profile: serde_json::Value = browser
        .client
        .get(api("profile"))
        .send()
        .await
        .expect("profile")
        .json()
        .await
        .expect("json");
    assert_eq!(profile["answers"], json!({}), "nothing stored");

    // While the required question is pending, the app's API is blocked.
    let blocked = browser
        .client
        .get(env.proxy.url("/api/data"))
        .send()
        .await
        .expect("get");
    assert_eq!(blocked.status(), StatusCode::FORBIDDEN);

    // Valid: both at once.
    let resp = post(
        json!({"answers": {"company": "Acme", "interests": ["security", "api"]}}),
        Some(&csrf),
    )
    .await
    .expect("post");
    assert_eq!(resp.status(), StatusCode::OK);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["pending"], json!([]));
    assert_eq!(body["profile"]["company"], "Acme");
    assert_eq!(
        body["profile"]["interests"],
        json!(["api", "security"]),
        "kept in configured order"
    );

    let ok = browser
        .client
        .get(env.proxy.url("/api/data"))
        .send()
        .await
        .expect("get");
    assert_eq!(ok.status(), StatusCode::OK);
    let seen = env.upstream.last();
    assert_eq!(seen.header("x-profile-company"), Some("Acme"));
    assert_eq!(seen.header("x-profile-interests"), Some("api,security"));

    let profile: serde_json::Value = browser
        .client
        .get(api("profile"))
        .send()
        .await
        .expect("profile")
        .json()
        .await
        .expect("json");
    assert_eq!(profile["sub"], "alice");
    assert_eq!(profile["answers"]["company"]["value"], "Acme");
    assert_eq!(profile["answers"]["company"]["source"], "user");

    // Anonymous callers get 401 JSON, never a redirect.
    let anon = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for path in ["pending", "profile"] {
        let resp = anon
            .get(api(path))
            .header("accept", "text/html")
            .send()
            .await
            .expect("get");
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_override_replaces_one_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("signed_out.html"),
        "{% extends \"base.html\" %}{% block content %}<h1>See you soon at {{ theme.title }}</h1>{% endblock %}",
    )
    .expect("write");
    let sections = format!(
        "[theme]\ntitle = \"Acme\"\ntemplates_dir = {:?}\n",
        dir.path().display().to_string()
    );
    let env = TestEnv::start_full("", &sections, json!({})).await;
    let page = reqwest::get(env.proxy.url("/.profilegate/signed-out"))
        .await
        .expect("page")
        .text()
        .await
        .expect("text");
    assert!(page.contains("<h1>See you soon at Acme</h1>"), "{page}");
    // Other pages stay built in.
    let missing = reqwest::Client::new()
        .get(env.proxy.url("/.profilegate/nope"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("404");
    assert!(missing.text().await.expect("text").contains("Error 404"));
}
