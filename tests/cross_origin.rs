//! Cross-origin protection of every state-changing route profilegate answers itself (answer
//! and skip posts, the JSON API's answers and skips, logout by POST, the custom UI's post-back
//! to `/continue`): each route, each combination of `Origin` and `Sec-Fetch-Site`. A refusal is
//! a 403 that stores nothing; an allowed request (no header at all included: older clients)
//! still needs its token, and succeeds with it.

mod support;

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use support::headers::jws_claims;
use support::questions::*;
use support::*;

fn question() -> String {
    profiling(
        &[],
        &[Question::new("company", COMPANY_LABEL, "text").with("required", "false")],
    )
}

/// `Origin` and `Sec-Fetch-Site` of one request; `PUBLIC` and `UI` stand for the proxy's and
/// the custom UI's origins.
type Combo = (Option<&'static str>, Option<&'static str>);
const PUBLIC: &str = "<public>";
const UI: &str = "<ui>";

/// Refused on the routes that only the proxy's own origin may post to.
const REFUSED: &[Combo] = &[
    (Some("https://evil.example"), None),
    (Some("https://evil.example"), Some("cross-site")),
    (Some("null"), None),
    (Some("null"), Some("same-origin")),
    (Some(UI), None),
    (None, Some("cross-site")),
    (None, Some("same-site")),
    (Some(PUBLIC), Some("cross-site")),
    (Some(PUBLIC), Some("same-site")),
];
/// Allowed there (the token still decides).
const ALLOWED: &[Combo] = &[
    (None, None),
    (Some(PUBLIC), None),
    (Some(PUBLIC), Some("same-origin")),
    (None, Some("same-origin")),
    (None, Some("none")),
];
/// Refused on the custom UI's post-back: only the custom UI's origin may post there.
const CONTINUE_REFUSED: &[Combo] = &[
    (Some("https://evil.example"), Some("cross-site")),
    (Some("null"), Some("cross-site")),
    (Some(PUBLIC), Some("same-origin")),
    (Some(PUBLIC), None),
    (None, Some("cross-site")),
    (None, Some("same-site")),
];
/// Allowed there: a custom UI on another site is `cross-site` by nature, so `Origin` decides.
const CONTINUE_ALLOWED: &[Combo] = &[
    (Some(UI), Some("cross-site")),
    (Some(UI), Some("same-site")),
    (Some(UI), None),
    (None, None),
    (None, Some("same-origin")),
];

/// The state-changing routes of the hosted page and the JSON API.
#[derive(Debug, Clone, Copy)]
enum Route {
    Answer,
    Skip,
    ApiAnswers,
    ApiSkip,
    Logout,
}

struct Signed {
    cookie: String,
    csrf: String,
}

async fn sign_in(env: &TestEnv, login: &str) -> Signed {
    let browser = env.browser();
    browser.login(&env.proxy.url("/"), login).await;
    let cookie = browser.cookies_for(&env.proxy.url("/"));
    let pending = api_get(env, &cookie, "/.profilegate/api/pending").await;
    assert_eq!(pending["pending"][0]["id"], "company", "{pending}");
    Signed {
        cookie,
        csrf: pending["csrf_token"].as_str().expect("csrf").to_owned(),
    }
}

async fn api_get(env: &TestEnv, cookie: &str, path: &str) -> Value {
    let resp = Client::new()
        .get(env.proxy.url(path))
        .header("cookie", cookie)
        .header("accept", "application/json")
        .send()
        .await
        .expect("api");
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    resp.json().await.expect("json")
}

fn with_headers(
    mut req: reqwest::RequestBuilder,
    (origin, site): Combo,
    public: &str,
    ui: &str,
) -> reqwest::RequestBuilder {
    let name = |o: &str| match o {
        PUBLIC => public.to_owned(),
        UI => ui.to_owned(),
        other => other.to_owned(),
    };
    if let Some(o) = origin {
        req = req.header("origin", name(o));
    }
    if let Some(s) = site {
        req = req.header("sec-fetch-site", s);
    }
    req
}

/// Sends `route`'s request, valid in every other way, with `combo`'s headers.
async fn send(env: &TestEnv, user: &Signed, route: Route, combo: Combo) -> reqwest::Response {
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let url = |p: &str| env.proxy.url(p);
    let req = match route {
        Route::Answer | Route::Skip => {
            let mut form = vec![
                ("_csrf", user.csrf.as_str()),
                ("_question", "company"),
                ("company", "Acme"),
            ];
            if matches!(route, Route::Skip) {
                form.push(("_action", "skip"));
            }
            client
                .post(url("/.profilegate/profile"))
                .header("accept", "text/html")
                .form(&form)
        }
        Route::ApiAnswers | Route::ApiSkip => {
            let body = match route {
                Route::ApiSkip => json!({ "skip": ["company"] }),
                _ => json!({ "answers": { "company": "Acme" } }),
            };
            client
                .post(url("/.profilegate/api/answers"))
                .header("accept", "application/json")
                .header("x-profilegate-csrf", &user.csrf)
                .json(&body)
        }
        Route::Logout => client
            .post(url("/.profilegate/logout"))
            .header("accept", "text/html")
            .form(&[("csrf_token", user.csrf.as_str())]),
    };
    with_headers(
        req.header("cookie", &user.cookie),
        combo,
        &env.proxy.origin,
        "http://forms.invalid",
    )
    .send()
    .await
    .expect("request")
}

fn assert_refused_as(resp_status: StatusCode, body: &str, html: bool, what: &str) {
    assert_eq!(resp_status, StatusCode::FORBIDDEN, "{what}: {body}");
    if html {
        assert!(body.contains("Request refused"), "{what}: {body}");
        assert!(body.contains("came from another site"), "{what}: {body}");
    } else {
        let json: Value = serde_json::from_str(body).expect("JSON refusal");
        assert_eq!(json["error"], "cross_origin_request", "{what}: {json}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changing_routes_refuse_other_origins_and_store_nothing() {
    let env = TestEnv::start_full("", &question(), json!({})).await;
    for (i, route) in [
        Route::Answer,
        Route::Skip,
        Route::ApiAnswers,
        Route::ApiSkip,
        Route::Logout,
    ]
    .into_iter()
    .enumerate()
    {
        let user = sign_in(&env, &format!("user{i}")).await;
        for &combo in REFUSED {
            let what = format!("{route:?} {combo:?}");
            let resp = send(&env, &user, route, combo).await;
            let (status, cookies) = (resp.status(), set_cookies(&resp));
            let body = resp.text().await.expect("body");
            let html = matches!(route, Route::Answer | Route::Skip | Route::Logout);
            assert_refused_as(status, &body, html, &what);
            assert!(cookies.is_empty(), "{what}: nothing set: {cookies:?}");
            // Nothing stored: no answer, the question still pending, the session still valid.
            let profile = api_get(&env, &user.cookie, "/.profilegate/api/profile").await;
            assert_eq!(profile["answers"], json!({}), "{what}");
            let pending = api_get(&env, &user.cookie, "/.profilegate/api/pending").await;
            assert_eq!(pending["pending"][0]["id"], "company", "{what}");
        }
        assert!(
            env.proxy.log().contains("cross-origin request refused"),
            "refusals are logged"
        );
        // The same requests from the proxy's own origin, or from a client that sends neither
        // header, do what they always did. The cookie the user signed in with may be sent again
        // after an answer or a skip; a logout revokes the session, so each logout signs in anew
        // and its cookie is dead afterwards.
        let mut user = user;
        for &combo in ALLOWED {
            let what = format!("{route:?} {combo:?}");
            let resp = send(&env, &user, route, combo).await;
            let (status, cookies) = (resp.status(), set_cookies(&resp));
            let body = resp.text().await.expect("body");
            let expected = match route {
                Route::Answer | Route::Skip => StatusCode::SEE_OTHER,
                Route::ApiAnswers | Route::ApiSkip => StatusCode::OK,
                Route::Logout => StatusCode::FOUND,
            };
            assert_eq!(status, expected, "{what}: {body}");
            assert!(!cookies.is_empty(), "{what}: the session changes");
            if matches!(route, Route::Logout) {
                let after = Client::new()
                    .get(env.proxy.url("/.profilegate/api/profile"))
                    .header("cookie", &user.cookie)
                    .header("accept", "application/json")
                    .send()
                    .await
                    .expect("api");
                assert_eq!(after.status(), StatusCode::UNAUTHORIZED, "{what}: revoked");
                user = sign_in(&env, &format!("user{i}")).await;
            }
        }
        let profile = api_get(&env, &user.cookie, "/.profilegate/api/profile").await;
        match route {
            Route::Answer | Route::ApiAnswers => {
                assert_eq!(profile["answers"]["company"]["value"], "Acme", "{route:?}")
            }
            Route::Skip | Route::ApiSkip | Route::Logout => {
                assert_eq!(profile["answers"], json!({}), "{route:?}")
            }
        }
    }
    // The tokens still decide: an allowed origin with a wrong token is refused as before.
    let user = sign_in(&env, "mallory").await;
    let wrong = Signed {
        cookie: user.cookie.clone(),
        csrf: "wrong".into(),
    };
    for route in [Route::Answer, Route::ApiAnswers, Route::Logout] {
        let resp = send(&env, &wrong, route, (Some(PUBLIC), Some("same-origin"))).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{route:?}");
        assert!(set_cookies(&resp).is_empty(), "{route:?}");
    }
    let profile = api_get(&env, &user.cookie, "/.profilegate/api/profile").await;
    assert_eq!(profile["answers"], json!({}));
    assert_eq!(env.upstream.count(), 0, "nothing was forwarded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn safe_requests_are_never_refused_for_their_origin() {
    let env = TestEnv::start_full("", &question(), json!({})).await;
    let user = sign_in(&env, "alice").await;
    // A cross-site GET of the question page, of the API and of logout changes nothing and is
    // answered as before (logout by GET from another site asks for confirmation).
    for (path, status) in [
        ("/.profilegate/profile", StatusCode::OK),
        ("/.profilegate/api/pending", StatusCode::OK),
        ("/.profilegate/logout", StatusCode::OK),
    ] {
        let resp = Client::new()
            .get(env.proxy.url(path))
            .header("cookie", &user.cookie)
            .header("accept", "text/html")
            .header("origin", "https://evil.example")
            .header("sec-fetch-site", "cross-site")
            .send()
            .await
            .expect("get");
        assert_eq!(resp.status(), status, "{path}");
        assert!(set_cookies(&resp).is_empty(), "{path}");
    }
    // Two `Origin` headers have no single answer: refused.
    let resp = Client::new()
        .post(env.proxy.url("/.profilegate/api/answers"))
        .header("cookie", &user.cookie)
        .header("x-profilegate-csrf", &user.csrf)
        .header("origin", &env.proxy.origin)
        .header("origin", "https://evil.example")
        .json(&json!({ "answers": { "company": "Acme" } }))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let profile = api_get(&env, &user.cookie, "/.profilegate/api/profile").await;
    assert_eq!(profile["answers"], json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_custom_ui_post_back_is_allowed_from_the_custom_uis_origin_only() {
    // No custom UI has to run: the test reads the token from the redirect to it.
    let ui_port = free_port();
    let ui_origin = format!("http://127.0.0.1:{ui_port}");
    let sections = question().replace(
        "[profiling]\n",
        &format!("[profiling]\nui = \"redirect\"\nredirect_url = \"{ui_origin}/form\"\n"),
    );
    let env = TestEnv::start_full("", &sections, json!({})).await;
    let browser = env.browser();
    let cb = browser.login(&env.proxy.url("/"), "alice").await;
    assert!(location(&cb).starts_with(&ui_origin), "{}", location(&cb));
    let cookie = browser.cookies_for(&env.proxy.url("/"));
    let continue_url = env.proxy.url("/.profilegate/continue");

    // A fresh token for the user's pending questions, as the custom UI receives it.
    let fresh_token = || async {
        let resp = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
            .get(env.proxy.url("/.profilegate/profile"))
            .header("cookie", &cookie)
            .header("accept", "text/html")
            .send()
            .await
            .expect("profile");
        let to_ui = location(&resp);
        assert!(to_ui.starts_with(&ui_origin), "{to_ui}");
        let token = query(&to_ui)["token"].clone();
        let claims = jws_claims(&token);
        (token, claims["state"].as_str().expect("state").to_owned())
    };
    let post = |token: String, state: String, combo: Combo| {
        let req = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
            .post(&continue_url)
            .header("accept", "text/html")
            .form(&[
                ("token", token.as_str()),
                ("state", state.as_str()),
                ("company", "Acme"),
            ]);
        let req = with_headers(req, combo, &env.proxy.origin, &ui_origin);
        async move { req.send().await.expect("post") }
    };

    let (token, state) = fresh_token().await;
    for &combo in CONTINUE_REFUSED {
        let resp = post(token.clone(), state.clone(), combo).await;
        let (status, cookies) = (resp.status(), set_cookies(&resp));
        let body = resp.text().await.expect("body");
        assert_refused_as(status, &body, true, &format!("{combo:?}"));
        assert!(cookies.is_empty(), "{combo:?}");
        let profile = api_get(&env, &cookie, "/.profilegate/api/profile").await;
        assert_eq!(profile["answers"], json!({}), "{combo:?}: nothing stored");
    }
    // The refusals did not use up the token's one-use state: the real post-back still works.
    for (i, &combo) in CONTINUE_ALLOWED.iter().enumerate() {
        let (token, state) = if i == 0 {
            (token.clone(), state.clone())
        } else {
            fresh_token().await
        };
        let resp = post(token, state, combo).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{combo:?}");
        assert!(
            location(&resp).starts_with(&format!("{continue_url}?rd=")),
            "{combo:?}: {}",
            location(&resp)
        );
        let profile = api_get(&env, &cookie, "/.profilegate/api/profile").await;
        assert_eq!(profile["answers"]["company"]["value"], "Acme", "{combo:?}");
    }
}
