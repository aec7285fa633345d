//! End to end: profilegate in forward-auth mode behind real edge proxies, Debian's nginx
//! (`auth_request`) and Caddy (`forward_auth`), each running the README's configuration block
//! verbatim (tests/support/edge.rs, tests/support/edge_setup.rs), with the test OP and the echo upstream as the app: a full
//! login with a required question through the edge, the answer and identity arriving upstream,
//! spoofed identity headers removed, anonymous API calls refused with 401, logout.

mod support;

use reqwest::StatusCode;
use support::edge::{Edge, EdgeKind};
use support::edge_setup::*;
use support::questions::COMPANY_LABEL;
use support::raw;
use support::*;

/// Request targets that name `/app/secret` (protected) in a way that begins like
/// profilegate's prefix or the public route `/public/`, sent as written.
const DISGUISED_TARGETS: &[&str] = &[
    "/.profilegate/../app/secret",
    "/.profilegate/%2e%2e/app/secret",
    "/.profilegate/%2E%2E/app/secret",
    "/.profilegate/..%2fapp/secret",
    "/.profilegate/..%2Fapp/secret",
    "/.profilegate/%2e%2e%2fapp/secret",
    "/.profilegate/x/..%2f..%2fapp/secret",
    "/.profilegate%2f..%2fapp/secret",
    "/.profilegate/./../app/secret",
    "/.profilegate//../app/secret",
    "/%2eprofilegate/../app/secret",
    "/public/../app/secret",
    "/public/%2e%2e/app/secret",
    "/public/..%2fapp/secret",
    "/public%2f..%2fapp/secret",
    "/public/..;/app/secret",
    "//public/../app/secret",
    "/public/.%2e/app/secret",
];

/// Signs `browser` in as alice through the edge from a navigation to `original`, answers the
/// required question and arrives at `original`: asserts each step and what the app received.
async fn sign_in_and_answer(setup: &Setup, browser: &Browser, original: &str) -> Recorded {
    // Anonymous navigation: toward the OP; the app sees nothing.
    let (chain, op_url) = setup
        .redirects_to_op(browser, &setup.edge.url(original))
        .await;
    assert_sign_in_chain(setup, &chain, original, &op_url);

    // Sign in at the OP; its callback comes back through the edge.
    let callback = browser.sign_in_from(op_url, "alice").await;
    assert!(
        callback.starts_with(&setup.edge.url("/.profilegate/callback?")),
        "{callback}"
    );
    let (page_url, page) = setup.settle(browser, &callback).await;
    assert_eq!(
        page.status(),
        StatusCode::OK,
        "{page_url}\n{}",
        setup.logs()
    );
    assert!(
        page_url.starts_with(&setup.edge.url("/.profilegate/profile")),
        "the required question comes first: {page_url}"
    );
    let html = page.text().await.expect("question page");
    assert!(html.contains(COMPANY_LABEL), "{html}");
    assert_eq!(
        setup.app.count(),
        0,
        "nothing reached the app before the answer"
    );

    // A navigation before the answer is sent back to the question (nginx through /start).
    let (again_url, again) = setup.settle(browser, &setup.edge.url("/app/other")).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert!(
        again_url.starts_with(&setup.edge.url("/.profilegate/profile")),
        "{again_url}"
    );
    assert_eq!(setup.app.count(), 0);

    // An API call before the answer: 403 (profilegate's JSON through Caddy; nginx's
    // auth_request keeps the status and answers with its own page).
    let api = api_call(browser, &setup.edge.url("/app/api/items")).await;
    assert_eq!(api.status(), StatusCode::FORBIDDEN, "{}", setup.logs());
    if setup.edge.kind == EdgeKind::Caddy {
        let body: serde_json::Value = api.json().await.expect("JSON body");
        assert!(body["error"].is_string(), "{body}");
    }
    assert_eq!(setup.app.count(), 0);

    // Answer; back where the user was going.
    let form = [
        ("company", "Acme Corp"),
        ("_csrf", &form_value(&html, "_csrf")),
        ("_question", "company"),
        ("_rd", &form_value(&html, "_rd")),
    ];
    let answered = browser
        .client
        .post(setup.edge.url("/.profilegate/profile"))
        .header("accept", "text/html")
        .form(&form)
        .send()
        .await
        .expect("answer");
    assert_eq!(answered.status(), StatusCode::SEE_OTHER, "{}", setup.logs());
    let back = absolute(&setup.edge.url("/"), &location(&answered));
    assert_eq!(back, setup.edge.url(original));

    let arrived = browser.navigate(&back).await;
    assert_eq!(arrived.status(), StatusCode::OK, "{}", setup.logs());
    assert_eq!(setup.app.count(), 1);
    let seen = setup.app.last();
    assert_eq!(seen.target, original);
    assert_eq!(seen.header_values("x-forwarded-user"), ["alice"]);
    assert_eq!(
        seen.header_values("x-forwarded-email"),
        ["alice@example.com"]
    );
    assert_eq!(seen.header_values("x-profile-company"), ["Acme Corp"]);
    let jwt = seen
        .header("x-profile-jwt")
        .expect("X-Profile-Jwt")
        .to_owned();
    let claims = headers::jws_claims(&jwt);
    assert_eq!(claims["profile"]["company"], "Acme Corp", "{claims}");
    assert_eq!(claims["sub"], "alice");
    let verified = headers::verify_profile_jwt(
        &setup.edge.url("/.profilegate/jwks.json"),
        &setup.edge.origin(),
        &setup.app.url(),
        &jwt,
    )
    .unwrap_or_else(|why| panic!("the JWT did not verify: {why}\n{claims}"));
    assert_eq!(verified["payload"]["profile"]["company"], "Acme Corp");
    setup.assert_no_spoofed_values(&seen);
    seen
}

async fn sign_in_answer_and_arrive(kind: EdgeKind) {
    let setup = Setup::start(kind, "").await;
    let browser = Browser::new();
    let seen = sign_in_and_answer(&setup, &browser, "/app/page?tab=2").await;
    let jwt = seen
        .header("x-profile-jwt")
        .expect("X-Profile-Jwt")
        .to_owned();

    // The same session with every spoofed header: the app gets profilegate's values only.
    let spoofed = navigate_spoofed(&browser, &setup.edge.url("/app/spoofed")).await;
    assert_eq!(spoofed.status(), StatusCode::OK, "{}", setup.logs());
    let seen = setup.app.last();
    assert_eq!(seen.target, "/app/spoofed");
    assert_eq!(seen.header_values("x-forwarded-user"), ["alice"]);
    assert_eq!(seen.header_values("x-profile-company"), ["Acme Corp"]);
    assert_eq!(seen.header_values("x-profile-jwt"), [jwt.as_str()]);
    assert!(seen.header_values("x-forwarded-groups").len() <= 1);
    setup.assert_no_spoofed_values(&seen);

    // An API call with the session passes too.
    let api = api_call(&browser, &setup.edge.url("/app/api/items")).await;
    assert_eq!(api.status(), StatusCode::OK);
    assert_eq!(
        setup.app.last().header_values("x-forwarded-user"),
        ["alice"]
    );

    // Logout through the edge: the session cookie goes, the OP's end-session comes next.
    let count = setup.app.count();
    let logout = browser
        .navigate(&setup.edge.url("/.profilegate/logout"))
        .await;
    assert_eq!(logout.status(), StatusCode::FOUND, "{}", setup.logs());
    assert!(
        location(&logout).starts_with(&format!("{}/session/end?", setup.op.issuer)),
        "{}",
        location(&logout)
    );
    assert!(set_cookies(&logout)
        .iter()
        .any(|c| c.starts_with("profilegate_session=;")));
    let (chain, op_url) = setup
        .redirects_to_op(&browser, &setup.edge.url("/app/after"))
        .await;
    assert_sign_in_chain(&setup, &chain, "/app/after", &op_url);
    assert_unauthenticated(
        api_call(&browser, &setup.edge.url("/app/api/items")).await,
        &setup,
    )
    .await;
    assert_eq!(
        setup.app.count(),
        count,
        "nothing reached the app after logout"
    );
}

async fn anonymous_requests(kind: EdgeKind) {
    let setup = Setup::start(kind, "").await;
    let browser = Browser::new();

    // An API call without a session: 401 JSON, nothing upstream (spoofed identity or not).
    assert_unauthenticated(
        api_call(&browser, &setup.edge.url("/app/api/items")).await,
        &setup,
    )
    .await;
    let mut spoofed_api = browser
        .client
        .get(setup.edge.url("/app/api/items"))
        .header("accept", "application/json");
    for (name, value) in SPOOFED {
        spoofed_api = spoofed_api.header(*name, *value);
    }
    assert_unauthenticated(spoofed_api.send().await.expect("request"), &setup).await;
    // A client naming a public route as "the original request" asks about its own request
    // all the same: the edge sets those headers itself.
    let disguised = browser
        .client
        .get(setup.edge.url("/app/api/items"))
        .header("accept", "application/json")
        .header("x-original-uri", "/public/info")
        .header("x-forwarded-uri", "/public/info")
        .header("x-original-method", "OPTIONS")
        .header("x-forwarded-method", "OPTIONS")
        .send()
        .await
        .expect("request");
    assert_unauthenticated(disguised, &setup).await;
    assert_eq!(setup.app.count(), 0);

    // A navigation without a session: toward the OP, nothing upstream.
    let (chain, op_url) = setup
        .redirects_to_op(&browser, &setup.edge.url("/app/page"))
        .await;
    assert_sign_in_chain(&setup, &chain, "/app/page", &op_url);
    assert_eq!(setup.app.count(), 0);

    // The forward-auth endpoint is the edge's alone.
    let direct = browser
        .client
        .get(setup.edge.url("/.profilegate/auth"))
        .header("x-forwarded-uri", "/app/page")
        .header("x-original-uri", "/app/page")
        .send()
        .await
        .expect("request");
    assert_eq!(direct.status(), StatusCode::NOT_FOUND, "{}", setup.logs());

    // A public route: the app answers, with no identity and none of the client's.
    let public = navigate_spoofed(&browser, &setup.edge.url("/public/info")).await;
    assert_eq!(public.status(), StatusCode::OK, "{}", setup.logs());
    let seen = setup.app.last();
    assert_eq!(seen.target, "/public/info");
    for name in [
        "x-forwarded-user",
        "x-forwarded-email",
        "x-forwarded-groups",
        "x-forwarded-preferred-username",
        "x-profile-company",
        "x-profile-jwt",
    ] {
        assert!(
            seen.header_values(name).is_empty(),
            "{name} reached the app: {seen:?}\n{}",
            setup.logs()
        );
    }
    setup.assert_no_spoofed_values(&seen);
    assert_eq!(setup.app.count(), 1);
}

/// Spellings of a protected path that begin like profilegate's prefix or a public route: the
/// edge and profilegate must agree that they are the protected path (or refuse them); the app
/// never receives one without a session.
async fn disguised_targets(kind: EdgeKind) {
    let setup = Setup::start(kind, "").await;
    let mut reached = Vec::new();
    for target in DISGUISED_TARGETS {
        let before = setup.app.count();
        let headers = [("Accept".to_owned(), "application/json".to_owned())];
        let resp = raw::request(setup.edge.port, "GET", target, &headers).await;
        if setup.app.count() > before {
            reached.push(format!("{target} ({})", resp.status));
        }
    }
    assert!(
        reached.is_empty(),
        "these reached the app without a session: {reached:#?}\napp saw: {:#?}\n{}",
        setup.app.requests(),
        setup.logs()
    );
}

/// With `session.idle_timeout = "10s"` profilegate re-seals the session cookie every 2 s of
/// activity and puts it on the auth answer's `200`: nginx passes it to the browser (the
/// README's `add_header Set-Cookie`); Caddy 2.6 cannot (what the README says about
/// `idle_timeout` behind Caddy).
async fn renewed_session_cookie(kind: EdgeKind, reaches_the_browser: bool) {
    let session = format!("\n[session]\nsecret = \"{SESSION_SECRET}\"\nidle_timeout = \"10s\"\n");
    let setup = Setup::start(kind, &session).await;
    let browser = Browser::new();
    sign_in_and_answer(&setup, &browser, "/app/start").await;
    let before = browser.cookies_for(&setup.edge.url("/"));
    tokio::time::sleep(std::time::Duration::from_millis(3_100)).await;

    let resp = browser.navigate(&setup.edge.url("/app/later")).await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", setup.logs());
    let renewed: Vec<String> = set_cookies(&resp)
        .into_iter()
        .filter(|c| c.starts_with("profilegate_session="))
        .collect();
    assert_eq!(
        setup.app.last().header_values("x-forwarded-user"),
        ["alice"]
    );
    if reaches_the_browser {
        assert_eq!(
            renewed.len(),
            1,
            "{:?}\n{}",
            set_cookies(&resp),
            setup.logs()
        );
        assert_ne!(browser.cookies_for(&setup.edge.url("/")), before);
        // The renewed cookie is a working session.
        let next = browser.navigate(&setup.edge.url("/app/next")).await;
        assert_eq!(next.status(), StatusCode::OK);
        assert_eq!(
            setup.app.last().header_values("x-forwarded-user"),
            ["alice"]
        );
    } else {
        assert!(renewed.is_empty(), "{renewed:?}");
        assert_eq!(browser.cookies_for(&setup.edge.url("/")), before);
    }
}

/// An edge that cannot start fails the test at once with what it wrote.
fn broken_edge_fails_with_its_output(kind: EdgeKind, block: &str, expected: &str) {
    let started = std::time::Instant::now();
    let failure = std::panic::catch_unwind(|| {
        Edge::start_block(kind, block, free_port());
    })
    .expect_err("a broken configuration must fail the start");
    let message = failure
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(message.contains("exited"), "{message}");
    assert!(message.contains(expected), "{message}");
    assert!(
        started.elapsed() < support::edge::EDGE_READY_LIMIT,
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn an_nginx_that_cannot_start_fails_with_its_output() {
    broken_edge_fails_with_its_output(
        EdgeKind::Nginx,
        "server { listen 127.0.0.1:1; no_such_directive on; }",
        "no_such_directive",
    );
}

#[test]
fn a_caddy_that_cannot_start_fails_with_its_output() {
    broken_edge_fails_with_its_output(
        EdgeKind::Caddy,
        "http://127.0.0.1:1 {\n\tno_such_directive\n}",
        "no_such_directive",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_never_lets_a_disguised_protected_path_through() {
    disguised_targets(EdgeKind::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_never_lets_a_disguised_protected_path_through() {
    disguised_targets(EdgeKind::Caddy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_passes_the_renewed_session_cookie_to_the_browser() {
    renewed_session_cookie(EdgeKind::Nginx, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_2_6_does_not_pass_the_renewed_session_cookie() {
    renewed_session_cookie(EdgeKind::Caddy, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_sign_in_question_and_identity_reach_the_app() {
    sign_in_answer_and_arrive(EdgeKind::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_sign_in_question_and_identity_reach_the_app() {
    sign_in_answer_and_arrive(EdgeKind::Caddy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_refuses_anonymous_api_calls_and_strips_spoofed_identity() {
    anonymous_requests(EdgeKind::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_refuses_anonymous_api_calls_and_strips_spoofed_identity() {
    anonymous_requests(EdgeKind::Caddy).await;
}
