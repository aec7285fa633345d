//! Self-service's JSON (`/.profilegate/api/me`) end to end against the real OP: the same rules
//! as the page (CSRF header, validation as `400` JSON, erasure), cross-origin refusals of every
//! change on the page and the JSON, and an answer the OP supplies shown as the provider's in the
//! user's language. The page itself is tested in `tests/me.rs`.

mod support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::questions::*;
use support::self_service::*;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_api_changes_and_erases_with_the_same_rules() {
    let env = env().await;
    let alice = signed_in(
        &env,
        "alice",
        json!({ "company": "Acme Corp", "role": "Sales", "team_size": 5 }),
        &[],
    )
    .await;
    let me = api_me(&alice, &env).await;
    let csrf = me["csrf_token"].as_str().expect("csrf").to_owned();
    assert_eq!(me["csrf_header"], "X-Profilegate-Csrf");
    let url = env.proxy.url("/.profilegate/api/me");
    let send = |method: reqwest::Method, token: Option<&str>, body: Option<Value>| {
        let mut req = alice.client.request(method, &url);
        if let Some(t) = token {
            req = req.header("x-profilegate-csrf", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send()
    };

    // CSRF header missing or wrong: 403, for a change and an erasure.
    for method in [
        reqwest::Method::PUT,
        reqwest::Method::POST,
        reqwest::Method::DELETE,
    ] {
        for token in [None, Some("forged")] {
            let body = json!({ "id": "company", "value": "Evil Corp" });
            let resp = send(method.clone(), token, Some(body)).await.expect("send");
            assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{method} {token:?}");
            let err: Value = resp.json().await.expect("json");
            assert_eq!(err["error"], "csrf_rejected");
        }
    }
    // Invalid values: 400 JSON naming the question, nothing stored.
    for (body, what) in [
        (json!({ "id": "company", "value": "A" }), "too short"),
        (json!({ "id": "team_size", "value": 0 }), "below min"),
        (json!({ "id": "role", "value": "Pirate" }), "not an option"),
        (json!({ "id": "company", "value": { "x": 1 } }), "an object"),
        (json!({ "id": "nope", "value": "x" }), "no such question"),
    ] {
        let id = body["id"].as_str().expect("id").to_owned();
        let resp = send(reqwest::Method::PUT, Some(&csrf), Some(body))
            .await
            .expect("put");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{what}");
        let err: Value = resp.json().await.expect("json");
        assert_eq!(err["error"], "invalid_answer", "{what}: {err}");
        assert!(err["errors"][&id].is_string(), "{what}: {err}");
    }
    let wrong_type = alice
        .client
        .put(&url)
        .header("x-profilegate-csrf", &csrf)
        .header("content-type", "text/plain")
        .body(r#"{"id":"company","value":"Globex"}"#)
        .send()
        .await
        .expect("put");
    assert_eq!(wrong_type.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        api_me(&alice, &env).await["answers"]["company"]["value"],
        "Acme Corp"
    );

    // PUT and POST change one answer: the new state, the session re-sealed, the upstream told.
    let body = json!({ "id": "company", "value": "Globex" });
    let resp = send(reqwest::Method::PUT, Some(&csrf), Some(body))
        .await
        .expect("put");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(set_cookies(&resp)
        .iter()
        .any(|c| c.starts_with("profilegate_session=")));
    let state: Value = resp.json().await.expect("json");
    assert_eq!(state["answers"]["company"]["value"], "Globex");
    let body = json!({ "id": "team_size", "value": "7" });
    let resp = send(reqwest::Method::POST, Some(&csrf), Some(body))
        .await
        .expect("post");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(app_call(&alice, &env).await.status(), StatusCode::OK);
    let seen = env.upstream.last();
    assert_eq!(seen.header("x-profile-company"), Some("Globex"));
    assert_eq!(seen.header("x-profile-team-size"), Some("7"));

    // DELETE erases: the state after it names the required question pending again.
    let resp = send(reqwest::Method::DELETE, Some(&csrf), None)
        .await
        .expect("delete");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(set_cookies(&resp)
        .iter()
        .any(|c| c.starts_with("profilegate_session=")));
    let state: Value = resp.json().await.expect("json");
    assert_eq!(state["answers"], json!({}));
    assert_eq!(state["pending"][0]["id"], "company");
    assert_eq!(state["pending"][0]["required"], true);
    let blocked = app_call(&alice, &env).await;
    assert_eq!(blocked.status(), StatusCode::FORBIDDEN);
    let body: Value = blocked.json().await.expect("json");
    assert_eq!(body["error"], "profile_incomplete");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_origin_changes_and_erasures_are_refused_and_change_nothing() {
    let env = env().await;
    let alice = signed_in(&env, "alice", json!({ "company": "Acme Corp" }), &[]).await;
    let csrf = csrf_of(&alice, &env).await;
    let origin = env.proxy.origin.clone();
    let refused: &[(Option<&str>, Option<&str>)] = &[
        (Some("https://evil.example"), None),
        (Some("null"), None),
        (None, Some("cross-site")),
        (None, Some("same-site")),
        (Some(origin.as_str()), Some("cross-site")),
    ];
    let api = env.proxy.url("/.profilegate/api/me");
    for &(from, site) in refused {
        let mut requests = vec![
            alice
                .client
                .post(env.proxy.url("/.profilegate/me"))
                .header("accept", "text/html")
                .form(&[("_csrf", csrf.as_str()), ("_action", "erase")]),
            alice
                .client
                .post(env.proxy.url("/.profilegate/me"))
                .header("accept", "text/html")
                .form(&[
                    ("_csrf", csrf.as_str()),
                    ("_question", "company"),
                    ("company", "Evil Corp"),
                ]),
            alice
                .client
                .put(&api)
                .header("x-profilegate-csrf", &csrf)
                .json(&json!({ "id": "company", "value": "Evil Corp" })),
            alice
                .client
                .delete(&api)
                .header("x-profilegate-csrf", &csrf),
        ];
        for (i, mut req) in requests.drain(..).enumerate() {
            if let Some(o) = from {
                req = req.header("origin", o);
            }
            if let Some(s) = site {
                req = req.header("sec-fetch-site", s);
            }
            let resp = req.send().await.expect("request");
            let what = format!("request {i} from {from:?} {site:?}");
            assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{what}");
            let body = resp.text().await.expect("body");
            assert!(
                body.contains("came from another site") || body.contains("cross_origin_request"),
                "{what}: {body}"
            );
        }
    }
    assert_eq!(
        api_me(&alice, &env).await["answers"]["company"]["value"],
        "Acme Corp"
    );
    // From the proxy's own origin, the same change passes.
    let ok = alice
        .client
        .post(env.proxy.url("/.profilegate/me"))
        .header("origin", &origin)
        .header("sec-fetch-site", "same-origin")
        .form(&[
            ("_csrf", csrf.as_str()),
            ("_question", "company"),
            ("company", "Globex"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        api_me(&alice, &env).await["answers"]["company"]["value"],
        "Globex"
    );
}

/// An answer the OP supplies as a claim is shown as the provider's, in the user's language (the
/// OP's `locale` claim); a change makes it the user's until the claim replaces it at the next
/// sign-in, as docs/self-service.md says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_providers_answer_is_shown_as_such_in_the_users_language() {
    let sections = profiling(
        &[],
        &[Question::new("company", "", "text")
            .with("label", r#"{ en = "Your company?", de = "Ihre Firma?" }"#)
            .with("required", "true")],
    )
    .replace("label = \"\"\n", "");
    let op = json!({
        "claims": { "carol": { "company": "Initrode", "locale": "de" } },
        "extra_scope_claims": { "profile": ["company"] },
    });
    let env = TestEnv::start_full("", &sections, op).await;
    let carol = env.browser();
    carol.login(&env.proxy.url("/app"), "carol").await;

    let (status, html) = me_page(&carol, &env, "").await;
    assert_eq!(status, StatusCode::OK);
    for shown in [
        "<html lang=\"de\">",
        "Ihre gespeicherten Daten",
        "Ihre Firma?",
        "Initrode",
        "von Ihrem Anmeldedienst",
        "Meine Antworten löschen",
    ] {
        assert!(html.contains(shown), "{shown:?} missing:\n{html}");
    }
    let me = api_me(&carol, &env).await;
    assert_eq!(me["answers"]["company"]["source"], "provider");
    assert_eq!(me["answers"]["company"]["label"], "Ihre Firma?");

    // Changed here: the user's answer now; the claim replaces it at the next sign-in.
    let csrf = me["csrf_token"].as_str().expect("csrf").to_owned();
    let resp = carol
        .client
        .put(env.proxy.url("/.profilegate/api/me"))
        .header("x-profilegate-csrf", &csrf)
        .json(&json!({ "id": "company", "value": "Initech" }))
        .send()
        .await
        .expect("put");
    assert_eq!(resp.status(), StatusCode::OK);
    let state: Value = resp.json().await.expect("json");
    assert_eq!(state["answers"]["company"]["source"], "user");
    assert_eq!(state["answers"]["company"]["value"], "Initech");
    let again = env.browser();
    again.login(&env.proxy.url("/app"), "carol").await;
    let me = api_me(&again, &env).await;
    assert_eq!(me["answers"]["company"]["value"], "Initrode");
    assert_eq!(me["answers"]["company"]["source"], "provider");
    assert_eq!(me["logins"], 2);
}
