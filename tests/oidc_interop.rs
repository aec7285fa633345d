//! Interoperability with OPs that are not the test OP, played by the in-process mock OP (it can
//! be configured the way other OPs behave): issuers with and without a trailing slash and
//! compared exactly, key sets without `kid`s and keys rotated right after start-up, userinfo
//! answered as a signed JWT, the client authentication the OP lists, and the start-up
//! diagnosis (`check --online`) when the OP and the configuration do not match.

mod support;

#[path = "support/mock_op.rs"]
mod mock_op;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use mock_op::{MockOp, OpKeys, Signer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::*;

struct Env {
    op: MockOp,
    upstream: EchoUpstream,
    proxy: Proxy,
}

/// The mock OP at `path` (see [`MockOp::start_at`]) and a proxy configured with `issuer`
/// (the OP's own when `None`) and `oidc_extra` lines in `[oidc]`.
async fn env_with(path: &str, issuer: Option<&str>, oidc_extra: &str, wait_ready: bool) -> Env {
    let op = MockOp::start_at(path).await;
    let upstream = EchoUpstream::start().await;
    let issuer = issuer.map_or_else(|| op.issuer.clone(), str::to_owned);
    let proxy = start_proxy_with(free_port(), &issuer, &upstream.url(), "", "", wait_ready).await;
    let mut env = Env {
        op,
        upstream,
        proxy,
    };
    if !oidc_extra.is_empty() {
        add_to_oidc(&mut env.proxy, oidc_extra).await;
    }
    env
}

/// Adds lines to the proxy's `[oidc]` table and restarts it on the new configuration.
async fn add_to_oidc(proxy: &mut Proxy, lines: &str) {
    let config = std::fs::read_to_string(&proxy.config_path).expect("config");
    let config = config.replacen("[oidc]\n", &format!("[oidc]\n{lines}\n"), 1);
    std::fs::write(&proxy.config_path, config).expect("config written");
    proxy.restart().await;
}

/// One sign-in through the proxy and the mock OP; the callback's answer.
async fn sign_in(env: &Env) -> (Browser, reqwest::Response) {
    let browser = Browser::new();
    let start = browser.navigate(&env.proxy.url("/app")).await;
    assert_eq!(start.status(), StatusCode::FOUND, "{}", env.proxy.log());
    let back = browser
        .client
        .get(location(&start))
        .send()
        .await
        .expect("authorize");
    assert_eq!(back.status(), StatusCode::FOUND, "the mock authorizes");
    let callback = browser.navigate(&location(&back)).await;
    (browser, callback)
}

/// Signs in and asserts the user reached the app as alice, with the userinfo e-mail.
async fn assert_signs_in(env: &Env, case: &str) {
    let (browser, callback) = sign_in(env).await;
    let status = callback.status();
    let body = callback.text().await.unwrap_or_default();
    assert_eq!(
        status,
        StatusCode::FOUND,
        "{case}: {body}\n{}",
        env.proxy.log()
    );
    let page = browser.navigate(&env.proxy.url("/app")).await;
    assert_eq!(page.status(), StatusCode::OK, "{case}");
    let seen = env.upstream.last();
    assert_eq!(seen.header("x-forwarded-user"), Some("alice"), "{case}");
    assert_eq!(
        seen.header("x-forwarded-email"),
        Some("alice@example.com"),
        "{case}: the userinfo claims arrived"
    );
}

/// Signs in and asserts the sign-in was refused with `status` and nobody reached the app.
async fn assert_refused(env: &Env, status: u16, case: &str) -> String {
    let before = env.upstream.count();
    let (_, callback) = sign_in(env).await;
    let got = callback.status().as_u16();
    let body = callback.text().await.unwrap_or_default();
    assert_eq!(got, status, "{case}: {body}");
    assert_eq!(
        env.upstream.count(),
        before,
        "{case}: nothing reached the app"
    );
    body
}

/// `profilegate check --online` on the proxy's configuration: (exit code, stdout + stderr).
fn check_online(proxy: &Proxy) -> (i32, String) {
    let out = support::child::output_within(
        Command::new(binary())
            .args(["check", "--online", "--config"])
            .arg(&proxy.config_path),
        "profilegate check --online",
        support::child::COMMAND_LIMIT,
    )
    .expect("check runs");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuers_are_used_exactly_as_written_with_or_without_a_trailing_slash() {
    // Auth0's issuers end with `/`, Keycloak's and Okta's do not: each form is discovered and
    // compared exactly, and the callback's RFC 9207 `iss` too.
    for path in ["", "/", "/realms/acme", "/realms/acme/"] {
        let env = env_with(path, None, "", true).await;
        assert_eq!(env.op.issuer.ends_with('/'), path.ends_with('/'));
        assert_signs_in(&env, &format!("issuer {}", env.op.issuer)).await;
        let (code, out) = check_online(&env.proxy);
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains(&format!("names issuer {:?}", env.op.issuer)),
            "{out}"
        );

        // The callback names the other spelling: a mix-up, refused before the code is used.
        let other = match env.op.issuer.strip_suffix('/') {
            Some(trimmed) => trimmed.to_owned(),
            None => format!("{}/", env.op.issuer),
        };
        env.op.set_callback_iss(Some(&other));
        let tokens = env.op.token_requests();
        assert_refused(&env, 400, &format!("callback iss {other}")).await;
        assert_eq!(env.op.token_requests(), tokens, "no code exchange");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_that_differs_by_a_slash_is_reported_with_both_strings() {
    for path in ["/", "/realms/acme"] {
        let env = env_with(path, None, "", true).await;
        // Configured with the other spelling.
        let configured = match env.op.issuer.strip_suffix('/') {
            Some(trimmed) => trimmed.to_owned(),
            None => format!("{}/", env.op.issuer),
        };
        let proxy = start_proxy(free_port(), &configured, &env.upstream.url(), "", false).await;
        let log = proxy.log();
        assert!(
            log.contains("OpenID Provider discovery failed")
                && log.contains(&format!("{:?}", env.op.issuer).replace('"', "\\\""))
                && log.contains(&format!("{configured:?}").replace('"', "\\\""))
                && log.contains("trailing slash"),
            "the log names both issuers:\n{log}"
        );
        assert!(!log.contains("not reachable yet"), "{log}");
        let (code, out) = check_online(&proxy);
        assert_eq!(code, 2, "{out}");
        assert!(
            out.contains(&format!("{:?}", env.op.issuer))
                && out.contains(&format!("{configured:?}")),
            "check --online names both issuers:\n{out}"
        );
        // A sign-in cannot start: the page says so, without the details.
        let browser = Browser::new();
        let page = browser.navigate(&proxy.url("/app")).await;
        assert_eq!(page.status(), StatusCode::BAD_GATEWAY);
        let body = page.text().await.unwrap_or_default();
        assert!(!body.contains(&configured), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_set_without_a_key_for_the_allowed_algorithms_is_reported() {
    // The mock signs with EC keys; a proxy that accepts RS256 only cannot use any of them.
    let env = env_with("", None, "", true).await;
    let mut proxy = start_proxy(free_port(), &env.op.issuer, &env.upstream.url(), "", false).await;
    add_to_oidc_no_wait(&mut proxy, "signing_algs = [\"RS256\"]").await;
    let proxy = proxy;
    let log = proxy.log();
    assert!(
        log.contains("no key for an algorithm of oidc.signing_algs (RS256)")
            && log.contains("EC key"),
        "{log}"
    );
    let (code, out) = check_online(&proxy);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("oidc.signing_algs (RS256)"), "{out}");
}

/// Like [`add_to_oidc`], for a proxy that will not become ready.
async fn add_to_oidc_no_wait(proxy: &mut Proxy, lines: &str) {
    let config = std::fs::read_to_string(&proxy.config_path).expect("config");
    let config = config.replacen("[oidc]\n", &format!("[oidc]\n{lines}\n"), 1);
    std::fs::write(&proxy.config_path, config).expect("config written");
    restart_unready(proxy).await;
}

/// Restarts a proxy that will not become ready (its OP cannot be used) and waits for its health.
async fn restart_unready(proxy: &mut Proxy) {
    assert!(
        proxy
            .signal_and_wait("INT", Duration::from_secs(10))
            .is_some(),
        "profilegate did not stop:\n{}",
        proxy.log()
    );
    proxy.spawn(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_without_kid_are_verified_with_each_key_of_their_type() {
    let env = env_with("", None, "", true).await;
    // Three EC keys, none with a kid in the JWKS; the token is signed by the second one.
    env.op.publish_all_without_kids();
    env.op.set_forge(Arc::new(|ctx, keys: &OpKeys| {
        keys.published[1].sign(&json!({"alg": "ES256", "typ": "JWT"}), &ctx.claims("alice"))
    }));
    assert_signs_in(&env, "no kid, second key").await;

    // Signed by a key the OP never published: refused.
    let stranger = mock_op::SigningKey::generate("stranger");
    env.op.set_forge(Arc::new(move |ctx, _: &OpKeys| {
        stranger.sign(&json!({"alg": "ES256", "typ": "JWT"}), &ctx.claims("alice"))
    }));
    assert_refused(&env, 502, "no kid, unknown key").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kids_are_looked_up_at_most_ten_times_a_minute() {
    let env = env_with("", None, "", true).await;
    let before = env.op.jwks_requests();
    for i in 0..12 {
        let kid = format!("unknown-{i}");
        env.op.set_forge(Arc::new(move |ctx, keys: &OpKeys| {
            keys.main()
                .sign(&json!({"alg": "ES256", "kid": kid}), &ctx.claims("alice"))
        }));
        assert_refused(&env, 502, "unknown kid").await;
    }
    assert_eq!(
        env.op.jwks_requests(),
        before + 10,
        "ten re-fetches, then the ceiling"
    );
    assert!(env
        .proxy
        .log()
        .contains("key-set fetches for unknown key ids in the last minute"));
}

fn signer(f: impl Fn(&Value, &OpKeys) -> String + Send + Sync + 'static) -> Option<Signer> {
    Some(Arc::new(f))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_userinfo_is_verified_and_iss_aud_are_checked_only_when_present() {
    let env = env_with("/", None, "", true).await;
    // ES256 (not RS256, the crate's only choice), without iss and aud (Core §5.3.2: SHOULD).
    env.op
        .set_userinfo_signer(signer(|claims, keys| keys.main().es256(claims)));
    assert_signs_in(&env, "signed userinfo without iss/aud").await;

    let issuer = env.op.issuer.clone();
    env.op.set_userinfo_signer(signer(move |claims, keys| {
        let mut c = claims.clone();
        c["iss"] = json!(issuer);
        c["aud"] = json!(["another", mock_op::CLIENT_ID]);
        keys.main().es256(&c)
    }));
    assert_signs_in(&env, "signed userinfo with the exact iss and our aud").await;

    let wrong: Vec<(&str, Option<Signer>)> = vec![
        (
            "iss without the trailing slash",
            signer({
                let iss = env.op.issuer.trim_end_matches('/').to_owned();
                move |claims, keys| {
                    let mut c = claims.clone();
                    c["iss"] = json!(iss);
                    keys.main().es256(&c)
                }
            }),
        ),
        (
            "another audience",
            signer(|claims, keys| {
                let mut c = claims.clone();
                c["aud"] = json!("another-client");
                keys.main().es256(&c)
            }),
        ),
        (
            "another subject",
            signer(|claims, keys| {
                let mut c = claims.clone();
                c["sub"] = json!("mallory");
                keys.main().es256(&c)
            }),
        ),
        (
            "signed by an unpublished key under the real kid",
            signer(|claims, keys| {
                keys.unpublished[1].sign(&json!({"alg": "ES256", "kid": keys.main().kid}), claims)
            }),
        ),
        (
            "alg none",
            signer(|claims, _| {
                format!(
                    "{}.",
                    mock_op::signing_input(&json!({"alg": "none"}), claims)
                )
            }),
        ),
    ];
    for (case, s) in wrong {
        env.op.set_userinfo_signer(s);
        assert_refused(&env, 502, case).await;
    }
    let log = env.proxy.log();
    assert!(log.contains("userinfo rejected"), "{log}");
    assert!(
        !log.contains("ID token rejected"),
        "a userinfo failure is not called an ID token failure:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_authenticates_the_way_the_op_lists_or_as_configured() {
    let op = MockOp::start().await;
    op.set_auth_methods(&[
        "private_key_jwt",
        "client_secret_post",
        "client_secret_basic",
    ]);
    let upstream = EchoUpstream::start().await;
    let proxy = start_proxy(free_port(), &op.issuer, &upstream.url(), "", true).await;
    let mut env = Env {
        op,
        upstream,
        proxy,
    };
    assert_signs_in(&env, "OP lists post before basic").await;
    assert_eq!(env.op.auth_used(), ["client_secret_post"]);
    let (code, out) = check_online(&env.proxy);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("client auth client_secret_post"), "{out}");

    env.op
        .set_auth_methods(&["client_secret_basic", "client_secret_post"]);
    env.proxy.restart().await;
    assert_signs_in(&env, "OP lists basic first").await;
    assert_eq!(env.op.auth_used().last(), Some(&"client_secret_basic"));

    add_to_oidc(
        &mut env.proxy,
        "token_endpoint_auth = \"client_secret_post\"",
    )
    .await;
    assert_signs_in(&env, "configured post").await;
    assert_eq!(env.op.auth_used().last(), Some(&"client_secret_post"));

    // An OP that takes keys only: the start-up log and check say what to configure.
    env.op.set_auth_methods(&["private_key_jwt"]);
    let proxy = start_proxy(free_port(), &env.op.issuer, &env.upstream.url(), "", false).await;
    let log = proxy.log();
    assert!(
        log.contains("accepts none of client_secret_basic, client_secret_post"),
        "{log}"
    );
    let (code, out) = check_online(&proxy);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("oidc.token_endpoint_auth"), "{out}");
}
