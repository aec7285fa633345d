//! Self-service end to end against the real OP: `/.profilegate/me` shows a signed-in user what
//! profilegate stores about them (and nobody else's), changes an answer with the question
//! page's rules and erases the answers (the upstream stops receiving them, required questions
//! are asked again); and the page in headless Chromium (screenshot `docs/me-page.png` with
//! `TEST_UPDATE_DOCS=1`). The JSON twin, cross-origin refusals and the OP's answers are in
//! `tests/me_api.rs`.

mod support;

use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use support::questions::*;
use support::self_service::*;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_the_users_own_answers_skips_and_sign_ins_and_nobody_elses() {
    let env = env().await;
    let alice = signed_in(
        &env,
        "alice",
        json!({ "company": "Acme Corp", "team_size": 12 }),
        &["role"],
    )
    .await;
    let bob = signed_in(&env, "bob", json!({ "company": "Bobco Industries" }), &[]).await;

    let (status, html) = me_page(&alice, &env, "").await;
    assert_eq!(status, StatusCode::OK);
    for shown in [
        COMPANY_LABEL,
        "Acme Corp",
        "How many people are on your team?",
        "12",
        "by you",
        ROLE_LABEL,
        "Skipped",
        "<dt>Number of sign-ins</dt><dd>1</dd>",
        "Signed in as",
        r#"href="/.profilegate/me?change=company""#,
        "Erase my answers",
    ] {
        assert!(html.contains(shown), "{shown:?} missing:\n{html}");
    }
    assert!(
        !html.contains("Bobco"),
        "another user's answer shown:\n{html}"
    );
    assert!(!html.contains("<script"), "no script");
    // Bob's page: his answer, his pending optional questions, nothing of Alice's.
    let (_, bobs) = me_page(&bob, &env, "").await;
    assert!(
        bobs.contains("Bobco Industries") && !bobs.contains("Acme"),
        "{bobs}"
    );
    assert!(
        bobs.contains("Not answered yet"),
        "bob's pending questions: {bobs}"
    );

    // The same as JSON, with the user's identity.
    let me = api_me(&alice, &env).await;
    assert_eq!(me["sub"], "alice");
    assert_eq!(me["issuer"], env.op.issuer.as_str());
    assert_eq!(me["answers"]["company"]["value"], "Acme Corp");
    assert_eq!(me["answers"]["company"]["label"], COMPANY_LABEL);
    assert_eq!(me["answers"]["company"]["source"], "user");
    assert_eq!(me["answers"]["company"]["changeable"], true);
    assert_eq!(me["answers"]["team_size"]["value"], 12);
    assert!(
        me["answers"]["company"]["answered_at"]
            .as_u64()
            .unwrap_or(0)
            > 1_700_000_000
    );
    assert_eq!(me["skips"]["role"]["count"], 1);
    assert_eq!(me["logins"], 1);
    assert!(me["first_login_at"].as_u64().unwrap_or(0) > 1_700_000_000);
    assert_eq!(me["pending"], json!([]));
    assert_eq!(
        api_me(&bob, &env).await["answers"]["company"]["value"],
        "Bobco Industries"
    );

    // Anonymous: a navigation signs in first, anything else is a 401 JSON.
    let anonymous = Browser::new();
    let nav = anonymous.navigate(&env.proxy.url("/.profilegate/me")).await;
    assert_eq!(nav.status(), StatusCode::FOUND);
    assert!(
        location(&nav).starts_with(&env.op.issuer),
        "{}",
        location(&nav)
    );
    for (method, path) in [
        (reqwest::Method::GET, "/.profilegate/api/me"),
        (reqwest::Method::DELETE, "/.profilegate/api/me"),
        (reqwest::Method::POST, "/.profilegate/me"),
    ] {
        let resp = Client::new()
            .request(method.clone(), env.proxy.url(path))
            .header("accept", "application/json")
            .send()
            .await
            .expect("anonymous");
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["error"], "unauthenticated");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_is_validated_like_the_question_page_and_reaches_the_upstream() {
    let env = env().await;
    let alice = signed_in(
        &env,
        "alice",
        json!({ "company": "Acme Corp", "role": "Sales", "team_size": 3 }),
        &[],
    )
    .await;
    assert_eq!(app_call(&alice, &env).await.status(), StatusCode::OK);
    assert_eq!(
        env.upstream.last().header("x-profile-company"),
        Some("Acme Corp")
    );

    // The change form: the question page's form, filled in, posting to the self-service page.
    let (status, form) = me_page(&alice, &env, "?change=company").await;
    assert_eq!(status, StatusCode::OK);
    assert!(form.contains(r#"value="Acme Corp""#), "{form}");
    assert!(form.contains(r#"action="/.profilegate/me""#), "{form}");
    assert!(
        form.contains(r#"minlength="2""#),
        "the question's constraints: {form}"
    );
    assert!(
        !form.contains("Skip for now"),
        "a change gives a value: {form}"
    );
    assert!(
        form.contains(r#"href="/.profilegate/me">Cancel</a>"#),
        "{form}"
    );
    let csrf = form_value(&form, "_csrf");

    // Invalid: 422 with the question page's message and the input kept; nothing stored.
    let bad = post_me(
        &alice,
        &env,
        &[
            ("company", "A "),
            ("_csrf", &csrf),
            ("_question", "company"),
        ],
    )
    .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = bad.text().await.expect("html");
    assert!(html.contains("Enter at least 2 characters."), "{html}");
    assert!(html.contains(r#"value="A ""#), "input kept: {html}");
    assert!(html.contains(r#"role="alert""#) && html.contains(r#"aria-invalid="true""#));
    // A select takes only its options.
    let bad = post_me(
        &alice,
        &env,
        &[("role", "Pirate"), ("_csrf", &csrf), ("_question", "role")],
    )
    .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // A question that does not exist: back to the page, nothing stored.
    let stale = post_me(
        &alice,
        &env,
        &[("nope", "x"), ("_csrf", &csrf), ("_question", "nope")],
    )
    .await;
    assert_eq!(stale.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        api_me(&alice, &env).await["answers"]["company"]["value"],
        "Acme Corp"
    );
    let revision = api_me(&alice, &env).await["revision"]
        .as_u64()
        .expect("revision");

    // A missing or wrong CSRF token: 403, nothing stored.
    for token in [None, Some("forged"), Some(csrf.to_uppercase().as_str())] {
        let mut fields = vec![("company", "Evil Corp"), ("_question", "company")];
        if let Some(t) = token {
            fields.push(("_csrf", t));
        }
        let resp = post_me(&alice, &env, &fields).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "token {token:?}");
    }
    assert_eq!(
        api_me(&alice, &env).await["answers"]["company"]["value"],
        "Acme Corp"
    );

    // Valid: 303 back to the page, the session re-sealed, the upstream sees the new value.
    let ok = post_me(
        &alice,
        &env,
        &[
            ("company", "  Globex  "),
            ("_csrf", &csrf),
            ("_question", "company"),
        ],
    )
    .await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&ok), env.proxy.url("/.profilegate/me?done=saved"));
    assert!(
        set_cookies(&ok)
            .iter()
            .any(|c| c.starts_with("profilegate_session=")),
        "the session's revision moves: {:?}",
        set_cookies(&ok)
    );
    let (_, html) = me_page(&alice, &env, "?done=saved").await;
    assert!(
        html.contains("Your answer was saved.") && html.contains("Globex"),
        "{html}"
    );
    let me = api_me(&alice, &env).await;
    assert_eq!(me["answers"]["company"]["value"], "Globex");
    assert_eq!(me["revision"].as_u64(), Some(revision + 1));
    assert_eq!(app_call(&alice, &env).await.status(), StatusCode::OK);
    let seen = env.upstream.last();
    assert_eq!(seen.header("x-profile-company"), Some("Globex"));
    assert_eq!(
        seen.header("x-profile-role"),
        Some("Sales"),
        "the others stay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_clears_the_answers_the_upstream_stops_receiving_them_and_questions_come_back() {
    let env = env().await;
    let alice = signed_in(
        &env,
        "alice",
        json!({ "company": "Acme Corp", "team_size": 40 }),
        &["role"],
    )
    .await;
    let bob = signed_in(&env, "bob", json!({ "company": "Bobco Industries" }), &[]).await;
    assert_eq!(app_call(&alice, &env).await.status(), StatusCode::OK);
    assert_eq!(
        env.upstream.last().header("x-profile-team-size"),
        Some("40")
    );

    // The confirmation step, then the erasure (CSRF first: a wrong token erases nothing).
    let (status, confirm) = me_page(&alice, &env, "?erase=confirm").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        confirm.contains("Erase all your answers? This cannot be undone."),
        "{confirm}"
    );
    assert!(
        confirm.contains(r#"name="_action" value="erase""#),
        "{confirm}"
    );
    let csrf = form_value(&confirm, "_csrf");
    for token in ["", "forged"] {
        let resp = post_me(&alice, &env, &[("_csrf", token), ("_action", "erase")]).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(
        api_me(&alice, &env).await["answers"]["company"]["value"],
        "Acme Corp"
    );
    let erased = post_me(&alice, &env, &[("_csrf", &csrf), ("_action", "erase")]).await;
    assert_eq!(erased.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&erased),
        env.proxy.url("/.profilegate/me?done=erased")
    );

    let (_, html) = me_page(&alice, &env, "?done=erased").await;
    assert!(html.contains("Your answers were erased."), "{html}");
    assert!(
        !html.contains("Acme Corp") && !html.contains("Skipped"),
        "{html}"
    );
    assert!(html.contains("Not answered yet"), "asked again: {html}");
    let me = api_me(&alice, &env).await;
    assert_eq!(me["answers"], json!({}));
    assert_eq!(me["skips"], json!({}));
    assert_eq!(me["logins"], 1, "the sign-ins stay");
    assert_eq!(
        me["pending"][0],
        json!({ "id": "company", "label": COMPANY_LABEL, "required": true })
    );

    // The required question is asked again: navigations go to it, API calls wait for it.
    let count = env.upstream.count();
    let nav = alice.navigate(&env.proxy.url("/app")).await;
    assert_eq!(nav.status(), StatusCode::SEE_OTHER);
    assert!(
        location(&nav).contains("/.profilegate/profile"),
        "{}",
        location(&nav)
    );
    let api = app_call(&alice, &env).await;
    assert_eq!(api.status(), StatusCode::FORBIDDEN);
    assert_eq!(env.upstream.count(), count, "nothing reached the upstream");

    // Answered again: the upstream receives the new answer and none of the erased ones.
    let csrf = csrf_of(&alice, &env).await;
    let resp = alice
        .client
        .post(env.proxy.url("/.profilegate/api/answers"))
        .header("x-profilegate-csrf", &csrf)
        .json(&json!({ "answers": { "company": "Initech" } }))
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(app_call(&alice, &env).await.status(), StatusCode::OK);
    let seen = env.upstream.last();
    assert_eq!(seen.header("x-profile-company"), Some("Initech"));
    assert_eq!(
        seen.header("x-profile-team-size"),
        None,
        "the erased answer is gone"
    );
    // Bob's answers are his own.
    assert_eq!(
        api_me(&bob, &env).await["answers"]["company"]["value"],
        "Bobco Industries"
    );
}

/// The page in headless Chromium with JavaScript off (tests/browser/me.mjs): view, a refused
/// then a saved change, the erasure's confirmation and result. Screenshots go to
/// `target/test-artifacts/browser/me-*.png`; `TEST_UPDATE_DOCS=1` copies the page to
/// `docs/me-page.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_views_changes_and_erases_without_javascript() {
    let chromium = chromium();
    assert!(
        std::path::Path::new(&chromium).exists(),
        "Chromium is not installed at {chromium:?}: run ./tests/run.sh, or apt-get install chromium"
    );
    assert!(
        repo()
            .join("tests/browser/node_modules/playwright-core")
            .exists(),
        "playwright-core is not installed: run `npm ci` in tests/browser (./tests/run.sh does)"
    );
    let sections = format!("{}\n[theme]\ntitle = \"Acme Workspace\"\n", questions());
    let env = TestEnv::start_full("", &sections, json!({})).await;
    let artifacts = repo().join("target/test-artifacts/browser");
    let config = json!({
        "start_url": env.proxy.url("/dashboard"),
        "login": "alice",
        "answers": { "company": "Acme Corp", "team_size": 12 },
        "skip": ["role"],
        "company_label": COMPANY_LABEL,
        "too_short": "A",
        "error": "Enter at least 2 characters.",
        "changed": "Globex Corporation",
        "artifacts": artifacts,
        "name": "me",
    });
    let report = tokio::task::block_in_place(|| {
        // me.mjs stops itself after 120 s; this is the backstop.
        let run = run_browser_script("me.mjs", &config, Duration::from_secs(180));
        let (stdout, stderr) = (&run.stdout, &run.stderr);
        assert!(
            run.succeeded(),
            "the browser check failed ({:?}):\n{stderr}\n--- profilegate log ---\n{}",
            run.status,
            env.proxy.log()
        );
        serde_json::from_str::<Value>(stdout.trim())
            .unwrap_or_else(|e| panic!("me.mjs printed no report ({e}): {stdout:?}\n{stderr}"))
    });
    let shots: Vec<&str> = report["screenshots"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(shots.len(), 5, "{report}");
    for shot in &shots {
        let size = std::fs::metadata(shot).map(|m| m.len()).unwrap_or(0);
        assert!(size > 1000, "{shot} is missing or empty");
    }
    if std::env::var("TEST_UPDATE_DOCS").is_ok_and(|v| v == "1") {
        let page = report["docs"].as_str().expect("the page's screenshot");
        std::fs::copy(page, repo().join("docs/me-page.png")).expect("copy to docs/");
        eprintln!("updated docs/me-page.png");
    }
    // The flow never reached the app: the questions first, and again after the erasure.
    assert_eq!(
        env.upstream.count(),
        0,
        "{:?}",
        env.upstream.requests().len()
    );
}
