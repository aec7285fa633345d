//! Forward-auth's endpoints without an edge proxy in front: the test client asks
//! `/.profilegate/auth` as nginx and Caddy do (it runs on 127.0.0.1, a trusted proxy) and
//! checks each answer of the contract (README "Forward-auth mode"): 200 with the identity to
//! copy, 401 for APIs, the login and question redirects in each edge's form, the `start`
//! route, and the refusals (untrusted asker, no original URI, another host, a foreign `rd`).
//! tests/forward_auth.rs runs the same through real nginx and Caddy.

mod support;

use reqwest::StatusCode;
use serde_json::json;
use support::policy;
use support::questions::{company, profiling};
use support::*;

const FORWARD_AUTH: &str = "mode = \"forward_auth\"\ntrusted_proxies = [\"127.0.0.1\"]";

async fn env() -> TestEnv {
    let sections = profiling(&[], &[company()]) + "\n[log]\naccess = true\nformat = \"json\"\n";
    TestEnv::start_full(FORWARD_AUTH, &sections, json!({})).await
}

/// Asks `/.profilegate/auth` about `original` (path and query) as Caddy does (`nginx`: as nginx
/// does), with `browser`'s cookies, for a navigation (`accept` text/html) or an API call.
async fn ask(
    env: &TestEnv,
    browser: &Browser,
    original: &str,
    nginx: bool,
    navigation: bool,
) -> reqwest::Response {
    let mut req = browser.client.get(env.proxy.url("/.profilegate/auth"));
    req = match nginx {
        true => req
            .header("x-original-uri", original)
            .header("x-original-method", "GET"),
        false => req
            .header("x-forwarded-uri", original)
            .header("x-forwarded-method", "GET")
            .header("x-forwarded-proto", "http")
            .header("x-forwarded-host", format!("127.0.0.1:{}", env.proxy.port)),
    };
    let accept = match navigation {
        true => "text/html,application/xhtml+xml,*/*;q=0.8",
        false => "application/json",
    };
    req.header("accept", accept)
        .send()
        .await
        .expect("auth request")
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_gets_proxy_modes_decision_in_its_own_form() {
    let env = env().await;
    let browser = env.browser();

    // Anonymous: an API call gets 401 JSON without a redirect, from either edge.
    for nginx in [false, true] {
        let api = ask(&env, &browser, "/api/items", nginx, false).await;
        assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
        assert!(header(&api, "location").is_none());
        let body: serde_json::Value = api.json().await.expect("json");
        assert_eq!(body["error"], "unauthenticated");
    }
    // An anonymous navigation: nginx gets a 401 naming the start route for the original target.
    let nginx = ask(&env, &browser, "/app/page?x=1&y=2", true, true).await;
    assert_eq!(nginx.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&nginx, "location"),
        Some(
            env.proxy
                .url("/.profilegate/start?rd=%2Fapp%2Fpage%3Fx%3D1%26y%3D2")
                .as_str()
        )
    );
    // Caddy and Traefik pass proxy mode's 302 to the OP through, with the login's cookie.
    let caddy = ask(&env, &browser, "/app/page?x=1", false, true).await;
    assert_eq!(caddy.status(), StatusCode::FOUND);
    assert!(
        location(&caddy).starts_with(&env.op.issuer),
        "{}",
        location(&caddy)
    );
    assert!(!set_cookies(&caddy).is_empty(), "the login state's cookie");

    // Sign in from there: the callback goes on to the required question, then the original.
    let callback = browser.sign_in_from(location(&caddy), "alice").await;
    let landed = browser.navigate(&callback).await;
    assert_eq!(landed.status(), StatusCode::FOUND);
    assert_eq!(
        location(&landed),
        env.proxy
            .url("/.profilegate/profile?rd=%2Fapp%2Fpage%3Fx%3D1")
    );

    // A question is due: Caddy gets the 303 to the question page, nginx the 401 to start, and
    // an API call the 403 naming the question; nothing reaches an upstream.
    let due = ask(&env, &browser, "/app/page", false, true).await;
    assert_eq!(due.status(), StatusCode::SEE_OTHER);
    assert!(location(&due).contains("/.profilegate/profile?rd=%2Fapp%2Fpage"));
    let due = ask(&env, &browser, "/app/page", true, true).await;
    assert_eq!(due.status(), StatusCode::UNAUTHORIZED);
    let start = header(&due, "location").expect("Location").to_owned();
    let api = ask(&env, &browser, "/api/items", true, false).await;
    assert_eq!(api.status(), StatusCode::FORBIDDEN);
    // nginx's error_page sends the browser to `start`, which goes on to the question.
    let started = browser.navigate(&start).await;
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    assert!(location(&started).contains("/.profilegate/profile?rd=%2Fapp%2Fpage"));

    // Answered: 200 with the identity, the answer and the JWT for the edge to copy upstream.
    let answered = policy::answer(
        &browser,
        &env,
        "/app/page",
        "company",
        &[("company", "Acme, Inc.")],
    )
    .await;
    assert_eq!(answered.status(), StatusCode::SEE_OTHER);
    for nginx in [false, true] {
        let pass = ask(&env, &browser, "/app/page", nginx, true).await;
        assert_eq!(pass.status(), StatusCode::OK);
        assert_eq!(header(&pass, "x-forwarded-user"), Some("alice"));
        assert_eq!(header(&pass, "x-profile-company"), Some("Acme, Inc."));
        let jwt = header(&pass, "x-profile-jwt").expect("X-Profile-Jwt");
        let claims = headers::verify_profile_jwt(
            &env.proxy.url("/.profilegate/jwks.json"),
            &env.proxy.origin,
            &env.upstream.url(),
            jwt,
        )
        .unwrap_or_else(|why| panic!("the JWT did not verify: {why}"));
        assert_eq!(claims["payload"]["profile"]["company"], "Acme, Inc.");
    }
    // The access line names the original request and what the edge was told.
    let log = env.proxy.log();
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("\"outcome\":\"auth_allowed\""))
        .unwrap_or_else(|| panic!("no auth_allowed access line:\n{log}"));
    assert!(line.contains("\"path\":\"/.profilegate/auth\""), "{line}");
    assert!(line.contains("\"original_path\":\"/app/page\""), "{line}");
    assert!(line.contains("\"sub\":\"alice\""), "{line}");
    // `start` with nothing due goes straight to the target.
    let through = browser
        .navigate(&env.proxy.url("/.profilegate/start?rd=%2Fapp%2Fpage"))
        .await;
    assert_eq!(through.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&through), env.proxy.url("/app/page"));
    assert_eq!(env.upstream.count(), 0, "forward-auth forwards nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn questions_that_are_not_the_edges_are_refused_clearly() {
    let env = env().await;
    let browser = env.browser();
    let auth = env.proxy.url("/.profilegate/auth");
    // No original URI.
    let bare = browser.client.get(&auth).send().await.expect("request");
    assert_eq!(bare.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = bare.json().await.expect("json");
    assert!(body["message"]
        .as_str()
        .unwrap_or("")
        .contains("X-Original-URI"));
    // An original URI that is not a path.
    let absolute = browser
        .client
        .get(&auth)
        .header("x-original-uri", "http://evil.example/")
        .send()
        .await
        .expect("request");
    assert_eq!(absolute.status(), StatusCode::BAD_REQUEST);
    // Another host than public_url's: its cookies could never be ours.
    let other = browser
        .client
        .get(&auth)
        .header("x-forwarded-uri", "/")
        .header("x-forwarded-host", "evil.example")
        .send()
        .await
        .expect("request");
    assert_eq!(other.status(), StatusCode::MISDIRECTED_REQUEST);
    // Both edges' headers: one of them is the client's.
    let both = browser
        .client
        .get(&auth)
        .header("x-forwarded-uri", "/app/secret")
        .header("x-original-uri", "/public/info")
        .send()
        .await
        .expect("request");
    assert_eq!(both.status(), StatusCode::BAD_REQUEST);
    // A path under the prefix that the edge reads as the app's is not let through.
    for disguised in [
        "/.profilegate/..%2fapp/secret",
        "/.profilegate/%2e%2e%2Fapp/secret",
        "/.profilegate/x/..%2f..%2fapp/secret",
    ] {
        let resp = ask(&env, &browser, disguised, true, true).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{disguised}");
    }
    // profilegate's own routes: let through, nothing attached.
    let own = ask(&env, &browser, "/.profilegate/profile", false, true).await;
    assert_eq!(own.status(), StatusCode::OK);
    assert!(header(&own, "x-forwarded-user").is_none());
    // Nothing else is proxied in this mode.
    let direct = browser.navigate(&env.proxy.url("/app/page")).await;
    assert_eq!(direct.status(), StatusCode::NOT_FOUND);
    // `start` keeps to this site.
    for rd in [
        "%2F%2Fevil.example%2F",
        "https%3A%2F%2Fevil.example%2F",
        "%2F%5Cevil.example",
    ] {
        let url = env.proxy.url(&format!("/.profilegate/start?rd={rd}"));
        let resp = browser.navigate(&url).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{rd}");
    }
    assert_eq!(env.upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_trusted_proxies_may_ask_and_proxy_mode_has_no_auth_route() {
    let untrusted = TestEnv::start_with(
        "mode = \"forward_auth\"\ntrusted_proxies = [\"10.1.0.0/16\"]",
        json!({}),
    )
    .await;
    let browser = untrusted.browser();
    let resp = ask(&untrusted, &browser, "/app/page", true, true).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert!(body["message"]
        .as_str()
        .unwrap_or("")
        .contains("trusted_proxies"));

    let proxy_mode = TestEnv::start_with("trusted_proxies = [\"127.0.0.1\"]", json!({})).await;
    let browser = proxy_mode.browser();
    let resp = ask(&proxy_mode, &browser, "/app/page", true, true).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(proxy_mode.upstream.count(), 0);
}
