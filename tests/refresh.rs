//! Refresh (issue 19 item 2) against the real test OP (`tests/op/server.js` with
//! `refresh_tokens`, short ID tokens, and its test controls to change a user's claims, count
//! refresh-token grants and revoke a user's grants): claims and groups are refreshed when the
//! ID token nears expiry, once for 20 concurrent requests, and the upstream sees them (headers
//! and a new profile JWT); a refused refresh ends the session; an unreachable OP does not.

mod support;

use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::*;

/// The OP's ID tokens live this long; the proxy refreshes `REFRESH_BEFORE` ahead of expiry,
/// so a session is due `ID_TOKEN_TTL - REFRESH_BEFORE` seconds after its login.
const ID_TOKEN_TTL: u64 = 6;
const REFRESH_BEFORE: u64 = 4;

/// The `[session]` table of a refreshing proxy.
fn refreshing_session() -> String {
    format!(
        "[session]\nsecret = \"{SESSION_SECRET}\"\nrefresh = true\nrefresh_before = \
         \"{REFRESH_BEFORE}s\"\n"
    )
}

async fn refreshing_env() -> TestEnv {
    refreshing_env_with("").await
}

/// A refreshing proxy with `sections` too (a `[store]`), the OP issuing refresh tokens.
async fn refreshing_env_with(sections: &str) -> TestEnv {
    TestEnv::start_full(
        "",
        &format!("{}\n{sections}", refreshing_session()),
        json!({
            "refresh_tokens": true,
            "id_token_ttl": ID_TOKEN_TTL,
            "skip_consent": true,
            "extra_scope_claims": {"profile": ["groups"]},
            "claims": {"alice": {"groups": ["readers"]}, "bob": {"groups": ["readers"]}},
        }),
    )
    .await
}

/// Signs `login` in and returns the browser.
async fn signed_in(env: &TestEnv, login: &str) -> Browser {
    let browser = env.browser();
    let done = browser.login(&env.proxy.url("/"), login).await;
    assert_eq!(
        done.status(),
        StatusCode::FOUND,
        "callback\n{}",
        env.proxy.log()
    );
    browser
}

/// An API request (JSON, not a navigation) of `browser` to `path`.
async fn api(browser: &Browser, env: &TestEnv, path: &str) -> reqwest::Response {
    browser
        .client
        .get(env.proxy.url(path))
        .header("accept", "application/json")
        .send()
        .await
        .expect("request")
}

/// What the upstream received for the request to `target` (the last one).
fn seen_at(env: &TestEnv, target: &str) -> Recorded {
    env.upstream
        .seen
        .lock()
        .expect("lock")
        .iter()
        .rev()
        .find(|r| r.target == target)
        .cloned()
        .unwrap_or_else(|| panic!("the upstream never saw {target}"))
}

/// The claims of the profile JWT the upstream received.
fn jwt_claims(seen: &Recorded) -> Value {
    let token = seen.header("x-profile-jwt").expect("a profile JWT");
    let payload = token.split('.').nth(1).expect("a JWS");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// Waits until the session signed in at `since` is due for its refresh.
async fn until_due(since: Instant) {
    let due = Duration::from_secs(ID_TOKEN_TTL - REFRESH_BEFORE + 1);
    if let Some(left) = due.checked_sub(since.elapsed()) {
        tokio::time::sleep(left).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_requests_refresh_once_and_the_upstream_sees_the_new_claims() {
    let env = refreshing_env().await;
    let signed_in_at = Instant::now();
    let alice = signed_in(&env, "alice").await;
    let before = api(&alice, &env, "/before").await;
    assert_eq!(before.status(), StatusCode::OK);
    let old = seen_at(&env, "/before");
    assert_eq!(old.header("x-forwarded-groups"), Some("readers"));
    let old_jwt = old.header("x-profile-jwt").expect("JWT").to_owned();
    assert_eq!(jwt_claims(&old)["name"], "Alice");

    // The user changes at the OP; the proxy learns it at the refresh, not before.
    env.op
        .set_claims("alice", json!({"name": "Alice Two", "groups": ["staff"]}))
        .await;
    assert_eq!(env.op.refresh_grants().await, 0);
    until_due(signed_in_at).await;

    let requests = (0..20).map(|i| {
        let path = format!("/concurrent/{i}");
        let alice = &alice;
        let env = &env;
        async move { (api(alice, env, &path).await.status(), path) }
    });
    let started = Instant::now();
    let answers = futures_util::future::join_all(requests).await;
    // A figure for the docs: 20 requests that waited on one refresh (token + userinfo).
    eprintln!(
        "20 concurrent requests with one refresh at the OP: {:?}",
        started.elapsed()
    );
    for (status, path) in answers {
        assert_eq!(status, StatusCode::OK, "{path}\n{}", env.proxy.log());
        let seen = seen_at(&env, &path);
        assert_eq!(
            seen.header("x-forwarded-groups"),
            Some("staff"),
            "{path} waited for the refresh"
        );
    }
    assert_eq!(
        env.op.refresh_grants().await,
        1,
        "exactly one refresh at the OP for 20 concurrent requests\n{}",
        env.proxy.log()
    );

    // The next request carries the re-sealed cookie: refreshed claims, a new JWT, no refresh.
    let after = api(&alice, &env, "/after").await;
    assert_eq!(after.status(), StatusCode::OK);
    let new = seen_at(&env, "/after");
    assert_eq!(new.header("x-forwarded-groups"), Some("staff"));
    let new_jwt = new.header("x-profile-jwt").expect("JWT");
    assert_ne!(new_jwt, old_jwt, "the profile JWT is re-issued");
    assert_eq!(jwt_claims(&new)["name"], "Alice Two");
    assert_eq!(env.op.refresh_grants().await, 1, "no second refresh");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_refresh_ends_the_session_for_apis_and_navigations() {
    let env = refreshing_env().await;
    let signed_in_at = Instant::now();
    let alice = signed_in(&env, "alice").await;
    let bob = signed_in(&env, "bob").await;
    assert_eq!(api(&alice, &env, "/ok").await.status(), StatusCode::OK);
    assert!(
        env.op.revoke_grants("alice").await >= 1,
        "alice had a grant"
    );
    until_due(signed_in_at).await;

    let refused = api(&alice, &env, "/api/after-revoke").await;
    assert_eq!(
        refused.status(),
        StatusCode::UNAUTHORIZED,
        "the API request is anonymous now\n{}",
        env.proxy.log()
    );
    assert!(
        set_cookies(&refused)
            .iter()
            .any(|c| c.starts_with("profilegate_session=") && c.contains("Max-Age=0")),
        "the cookie is cleared: {:?}",
        set_cookies(&refused)
    );
    // The cleared cookie is gone from the jar; a navigation goes to the OP to sign in.
    let navigation = alice.navigate(&env.proxy.url("/page")).await;
    assert_eq!(navigation.status(), StatusCode::FOUND);
    assert!(
        location(&navigation).starts_with(&env.op.issuer),
        "to login: {}",
        location(&navigation)
    );
    // Another user's session is untouched (refreshed normally).
    assert_eq!(api(&bob, &env, "/bob").await.status(), StatusCode::OK);
    assert_eq!(
        seen_at(&env, "/bob").header("x-forwarded-user"),
        Some("bob")
    );
    assert!(
        env.proxy.log().contains("refused by the identity provider"),
        "the refusal is logged:\n{}",
        env.proxy.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_op_leaves_the_session_as_it_is() {
    let mut env = refreshing_env().await;
    let signed_in_at = Instant::now();
    let alice = signed_in(&env, "alice").await;
    assert_eq!(api(&alice, &env, "/ok").await.status(), StatusCode::OK);
    env.op.stop();
    until_due(signed_in_at).await;

    for path in ["/api/op-down", "/api/op-down-again"] {
        let resp = api(&alice, &env, path).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}\n{}", env.proxy.log());
        let seen = seen_at(&env, path);
        assert_eq!(seen.header("x-forwarded-user"), Some("alice"));
        assert_eq!(seen.header("x-forwarded-groups"), Some("readers"));
    }
    let page = alice.navigate(&env.proxy.url("/page")).await;
    assert_eq!(page.status(), StatusCode::OK, "no error page, no login");
    let log = env.proxy.log();
    assert_eq!(
        log.matches("session refresh failed;").count(),
        1,
        "logged once per session:\n{log}"
    );
}

/// Two replicas on one PostgreSQL store (the same `session.secret`, as behind a load
/// balancer): 10 requests at each, all due at once, make one refresh at the OP; the replica
/// that lost the store's lease adopts the winner's claims.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_refresh_a_session_once_through_the_store() {
    let Some(store) = support::pg::pg_store("refresh").await else {
        return;
    };
    let env = refreshing_env_with(&store).await;
    let (listener, _) = bind_gate();
    let sections = format!("{}\n{store}", refreshing_session());
    let replica_b = start_gate_full(
        listener,
        &env.op.issuer,
        &env.upstream.url(),
        "",
        "",
        &sections,
        true,
    )
    .await;
    let signed_in_at = Instant::now();
    let alice = signed_in(&env, "alice").await;
    // The cookie (host 127.0.0.1, any port) goes to both replicas.
    let b_path = replica_b.url("/b-before");
    let at_b = alice
        .client
        .get(&b_path)
        .header("accept", "application/json")
        .send()
        .await
        .expect("request");
    assert_eq!(at_b.status(), StatusCode::OK, "{}", replica_b.log());
    assert_eq!(
        seen_at(&env, "/b-before").header("x-forwarded-groups"),
        Some("readers")
    );
    env.op
        .set_claims("alice", json!({"groups": ["staff"]}))
        .await;
    until_due(signed_in_at).await;

    let requests = (0..20).map(|i| {
        let (origin, replica) = if i % 2 == 0 {
            (env.proxy.origin.clone(), "a")
        } else {
            (replica_b.origin.clone(), "b")
        };
        let path = format!("/{replica}/{i}");
        let alice = &alice;
        async move {
            let status = alice
                .client
                .get(format!("{origin}{path}"))
                .header("accept", "application/json")
                .send()
                .await
                .expect("request")
                .status();
            (status, path)
        }
    });
    for (status, path) in futures_util::future::join_all(requests).await {
        assert_eq!(
            status,
            StatusCode::OK,
            "{path}\nA:\n{}\nB:\n{}",
            env.proxy.log(),
            replica_b.log()
        );
        assert_eq!(
            seen_at(&env, &path).header("x-forwarded-groups"),
            Some("staff"),
            "{path} forwarded the refreshed groups"
        );
    }
    assert_eq!(
        env.op.refresh_grants().await,
        1,
        "one refresh for both replicas\nA:\n{}\nB:\n{}",
        env.proxy.log(),
        replica_b.log()
    );
}

// ---------------------------------------------------------------- the mock OP misbehaving

#[path = "support/mock_op.rs"]
mod mock_op;

use mock_op::{MockOp, OpKeys, TokenContext};

/// The mock OP's ID tokens live 300 s: with this `refresh_before`, a session is due 2 s after
/// its login.
const MOCK_REFRESH_BEFORE: &str = "298s";

struct MockEnv {
    op: MockOp,
    upstream: EchoUpstream,
    proxy: Proxy,
}

async fn mock_env() -> MockEnv {
    let op = MockOp::start().await;
    let upstream = EchoUpstream::start().await;
    let sections = format!(
        "[session]\nsecret = \"{SESSION_SECRET}\"\nrefresh = true\nrefresh_before = \
         \"{MOCK_REFRESH_BEFORE}\"\n"
    );
    let proxy = start_gate_full(
        bind_gate().0,
        &op.issuer,
        &upstream.url(),
        "",
        "",
        &sections,
        true,
    )
    .await;
    MockEnv {
        op,
        upstream,
        proxy,
    }
}

/// A browser signed in at the mock OP (always alice).
async fn mock_login(env: &MockEnv) -> Browser {
    let browser = Browser::new();
    let start = browser.navigate(&env.proxy.url("/app")).await;
    assert_eq!(start.status(), StatusCode::FOUND);
    let back = browser
        .client
        .get(location(&start))
        .send()
        .await
        .expect("authorize");
    let done = browser.navigate(&location(&back)).await;
    assert_eq!(
        done.status(),
        StatusCode::FOUND,
        "login\n{}",
        env.proxy.log()
    );
    browser
}

async fn mock_api(browser: &Browser, env: &MockEnv, path: &str) -> StatusCode {
    browser
        .client
        .get(env.proxy.url(path))
        .header("accept", "application/json")
        .send()
        .await
        .expect("request")
        .status()
}

/// What `f` makes of a valid refresh's claims, signed with the OP's key.
fn forged(f: fn(&TokenContext, &mut Value)) -> mock_op::Forge {
    std::sync::Arc::new(move |ctx: &TokenContext, keys: &OpKeys| {
        let mut claims = ctx.claims("alice");
        f(ctx, &mut claims);
        keys.main().es256(&claims)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refreshed_id_token_that_fails_verification_ends_the_session() {
    let env = mock_env().await;
    let cases: [(&str, mock_op::Forge); 5] = [
        (
            "another subject",
            forged(|_, c| c["sub"] = json!("mallory")),
        ),
        (
            "another audience",
            forged(|_, c| c["aud"] = json!("other-client")),
        ),
        (
            "another issuer",
            forged(|_, c| c["iss"] = json!("https://evil.example")),
        ),
        ("expired", forged(|ctx, c| c["exp"] = json!(ctx.now - 600))),
        (
            "a key the OP never published",
            std::sync::Arc::new(|ctx: &TokenContext, keys: &OpKeys| {
                keys.unpublished[1].es256(&ctx.claims("alice"))
            }),
        ),
    ];
    let signed_in_at = Instant::now();
    let mut browsers = Vec::new();
    for _ in &cases {
        browsers.push(mock_login(&env).await);
    }
    for browser in &browsers {
        assert_eq!(mock_api(browser, &env, "/before").await, StatusCode::OK);
    }
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(signed_in_at.elapsed())).await;
    for ((what, forge), browser) in cases.into_iter().zip(&browsers) {
        env.op.set_refresh_forge(Some(forge));
        let before = env.op.refresh_requests();
        assert_eq!(
            mock_api(browser, &env, "/after").await,
            StatusCode::UNAUTHORIZED,
            "{what}: the session ends\n{}",
            env.proxy.log()
        );
        assert_eq!(
            env.op.refresh_requests(),
            before + 1,
            "{what}: refreshed once"
        );
    }
    // A valid refresh (no nonce, same subject) goes on.
    env.op.set_refresh_forge(None);
    let fine = mock_login(&env).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = env.op.refresh_requests();
    assert_eq!(mock_api(&fine, &env, "/fine").await, StatusCode::OK);
    assert_eq!(env.op.refresh_requests(), before + 1);
    assert_eq!(
        env.upstream.last().header("x-forwarded-user"),
        Some("alice")
    );
    for token in env.op.issued() {
        assert!(!env.proxy.log().contains(&token), "a token is in the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_invalid_grant_ends_a_session_other_refresh_errors_leave_it() {
    let env = mock_env().await;
    let cases: [((u16, &'static str), StatusCode); 5] = [
        ((503, "server_error"), StatusCode::OK),
        ((429, "slow_down"), StatusCode::OK),
        ((401, "invalid_client"), StatusCode::OK),
        ((400, "unauthorized_client"), StatusCode::OK),
        ((400, "invalid_grant"), StatusCode::UNAUTHORIZED),
    ];
    let signed_in_at = Instant::now();
    let mut browsers = Vec::new();
    for _ in &cases {
        browsers.push(mock_login(&env).await);
    }
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(signed_in_at.elapsed())).await;
    for ((error, expected), browser) in cases.into_iter().zip(&browsers) {
        env.op.set_refresh_error(Some(error));
        let before = env.op.refresh_requests();
        assert_eq!(
            mock_api(browser, &env, "/after").await,
            expected,
            "{error:?}\n{}",
            env.proxy.log()
        );
        assert_eq!(env.op.refresh_requests(), before + 1, "{error:?}");
        // Kept sessions back off: the next request does not ask the OP again.
        if expected == StatusCode::OK {
            assert_eq!(mock_api(browser, &env, "/again").await, StatusCode::OK);
            assert_eq!(
                env.op.refresh_requests(),
                before + 1,
                "{error:?}: backed off"
            );
        }
    }
}
