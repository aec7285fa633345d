//! End-to-end: the ways questions reach users besides the hosted page's defaults — the JSON API
//! for single-page apps and template overrides — against the real OP.

mod support;

use reqwest::StatusCode;
use serde_json::json;
use support::questions::*;
use support::*;

fn questions() -> String {
    profiling(
        &["questions_per_login = 2"],
        &[
            company(),
            Question::new("interests", "What are you interested in?", "multiselect")
                .with("options", r#"["api", "security", "billing"]"#),
        ],
    )
}

async fn signed_in(env: &TestEnv) -> Browser {
    let browser = env.browser();
    browser.login(&env.proxy.url("/spa"), "alice").await;
    browser
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_page_app_answers_through_the_json_api() {
    let env = TestEnv::start_full("", &questions(), json!({})).await;
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
    // Bounded: a body over 64 KiB gets 413, a deeply nested one 400, never a crash.
    let huge = format!(
        "{{\"answers\":{{\"company\":\"{}\"}}}}",
        "x".repeat(70 * 1024)
    );
    let resp = browser
        .client
        .post(api("answers"))
        .header("X-Profilegate-Csrf", &csrf)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let deep = format!(
        "{{\"answers\":{{\"company\":{}1{}}}}}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let resp = browser
        .client
        .post(api("answers"))
        .header("X-Profilegate-Csrf", &csrf)
        .header("content-type", "application/json")
        .body(deep)
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
    let missing = http_client()
        .get(env.proxy.url("/.profilegate/nope"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("404");
    assert!(missing.text().await.expect("text").contains("Error 404"));
}

const MULTILINGUAL: &str = r#"
[profiling]
default_language = "en"

[[profiling.questions]]
id = "company"
label = { en = "Which company do you work for?", de = "Für welche Firma arbeiten Sie?", fr = "Pour quelle entreprise travaillez-vous ?" }
type = "text"
required = true
"#;

async fn page_in(browser: &Browser, env: &TestEnv, accept_language: Option<&str>) -> String {
    let mut req = browser
        .client
        .get(env.proxy.url("/.profilegate/profile"))
        .header("accept", "text/html");
    if let Some(al) = accept_language {
        req = req.header("accept-language", al);
    }
    req.send().await.expect("page").text().await.expect("text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_speaks_ui_locales_then_the_locale_claim_then_accept_language_then_the_default() {
    let op = json!({
        "claims": { "dora": { "locale": "de-DE" } },
        "extra_scope_claims": { "profile": ["locale"] },
    });
    let env = TestEnv::start_full("", MULTILINGUAL, op).await;

    // No hint at all: the default language.
    let alice = env.browser();
    alice.login(&env.proxy.url("/"), "alice").await;
    let page = page_in(&alice, &env, None).await;
    assert!(
        page.contains("Which company do you work for?") && page.contains("<html lang=\"en\">"),
        "{page}"
    );
    assert!(page.contains(">Continue<"));

    // Accept-Language.
    let page = page_in(&alice, &env, Some("de-CH, de;q=0.9, en;q=0.5")).await;
    assert!(
        page.contains("Für welche Firma arbeiten Sie?") && page.contains("<html lang=\"de\">"),
        "{page}"
    );
    assert!(page.contains(">Weiter<"));
    let page = page_in(&alice, &env, Some("ja, pt;q=0.8")).await;
    assert!(
        page.contains("Which company"),
        "unknown languages fall back to the default"
    );

    // The OP's locale claim beats Accept-Language.
    let dora = Browser::new();
    dora.login(&env.proxy.url("/"), "dora").await;
    let page = page_in(&dora, &env, Some("fr")).await;
    assert!(
        page.contains("Für welche Firma"),
        "locale claim first: {page}"
    );

    // ui_locales on the first navigation is passed to the OP and beats everything else.
    let bob = Browser::new();
    let first = bob.navigate(&env.proxy.url("/app?ui_locales=fr")).await;
    assert_eq!(query(&location(&first))["ui_locales"], "fr");
    let callback = bob.sign_in_from(location(&first), "bob").await;
    bob.navigate(&callback).await;
    let page = page_in(&bob, &env, Some("de")).await;
    assert!(
        page.contains("Pour quelle entreprise travaillez-vous ?"),
        "{page}"
    );
}
