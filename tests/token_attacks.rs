//! Token attacks, against an in-process mock OP (the one place a mock belongs: a real OP will
//! not forge tokens). Each forged, expired, mis-addressed or replayed answer must end in a clear
//! error page — 4xx/5xx, a readable title, no token and no stack trace in the body — and no
//! session cookie; the good token (the control case) must sign the user in.

mod support;

#[path = "support/mock_op.rs"]
mod mock_op;

use std::sync::Arc;

use mock_op::{hs256, Forge, MockOp, OpKeys, TokenContext};
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::*;

struct MockEnv {
    op: MockOp,
    upstream: EchoUpstream,
    proxy: Proxy,
}

async fn mock_env() -> MockEnv {
    let op = MockOp::start().await;
    let upstream = EchoUpstream::start().await;
    let proxy = start_gate(bind_gate().0, &op.issuer, &upstream.url(), "", true).await;
    MockEnv {
        op,
        upstream,
        proxy,
    }
}

fn forge(f: impl Fn(&TokenContext, &OpKeys) -> String + Send + Sync + 'static) -> Forge {
    Arc::new(f)
}

/// Valid claims for alice with `edit` applied.
fn claims_with(ctx: &TokenContext, edit: impl Fn(&mut Value)) -> Value {
    let mut c = ctx.claims("alice");
    edit(&mut c);
    c
}

/// One login through the proxy: navigation, the mock's /authorize, the callback.
struct Attempt {
    browser: Browser,
    callback: String,
    /// The login cookie as it was before the callback (for replays).
    login_cookie: String,
    status: StatusCode,
    content_type: String,
    set_cookies: Vec<String>,
    location: Option<String>,
    body: String,
}

async fn begin(env: &MockEnv) -> (Browser, String) {
    let browser = Browser::new();
    let start = browser.navigate(&env.proxy.url("/app")).await;
    assert_eq!(start.status(), StatusCode::FOUND);
    let authorize = location(&start);
    assert!(authorize.starts_with(&format!("{}/authorize?", env.op.issuer)));
    let back = browser
        .client
        .get(&authorize)
        .send()
        .await
        .expect("authorize");
    assert_eq!(back.status(), StatusCode::FOUND, "the mock authorizes");
    let callback = location(&back);
    assert!(callback.starts_with(&env.proxy.url("/.profilegate/callback?")));
    (browser, callback)
}

async fn finish(browser: Browser, callback: String) -> Attempt {
    let login_cookie = browser.cookies_for(&callback);
    let resp = browser.navigate(&callback).await;
    let status = resp.status();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let set_cookies = set_cookies(&resp);
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = resp.text().await.expect("body");
    Attempt {
        browser,
        callback,
        login_cookie,
        status,
        content_type,
        set_cookies,
        location,
        body,
    }
}

async fn attempt(env: &MockEnv, f: Forge) -> Attempt {
    env.op.set_forge(f);
    let (browser, callback) = begin(env).await;
    finish(browser, callback).await
}

fn gives_session(set_cookies: &[String]) -> bool {
    set_cookies
        .iter()
        .any(|c| c.starts_with("profilegate_session=") && !c.starts_with("profilegate_session=;"))
}

/// Checks a refused login; returns what is wrong with it, if anything.
async fn refused(env: &MockEnv, a: &Attempt, status: u16, title: &str) -> Result<(), String> {
    let upstream_before = env.upstream.count();
    let mut wrong = Vec::new();
    if a.status.as_u16() != status {
        wrong.push(format!("status {} (expected {status})", a.status));
    }
    if !(400..600).contains(&a.status.as_u16()) {
        wrong.push("not an error status".into());
    }
    if !a.content_type.starts_with("text/html") {
        wrong.push(format!("content-type {:?}", a.content_type));
    }
    let page_title = a
        .body
        .split("<title>")
        .nth(1)
        .and_then(|t| t.split("</title>").next())
        .unwrap_or("");
    if !page_title.starts_with(title) || !a.body.contains(&format!("<h1>{title}</h1>")) {
        wrong.push(format!("title {page_title:?} (expected {title:?})"));
    }
    for issued in env.op.issued() {
        let parts = issued.split('.').filter(|p| p.len() >= 16);
        if a.body.contains(&issued) || parts.clone().any(|p| a.body.contains(p)) {
            wrong.push("a token is in the page".into());
        }
        if env.proxy.log().contains(&issued) {
            wrong.push("a token is in the log".into());
        }
    }
    for leak in ["eyJ", "panicked", "backtrace", ".rs:", "code=", "RUST_"] {
        if a.body.contains(leak) {
            wrong.push(format!("the page shows {leak:?}"));
        }
    }
    if gives_session(&a.set_cookies) {
        wrong.push(format!("a session cookie was set: {:?}", a.set_cookies));
    }
    if a.location.is_some() {
        wrong.push(format!("redirected to {:?}", a.location));
    }
    // Still anonymous: the next navigation starts a new login.
    let next = a.browser.navigate(&env.proxy.url("/app")).await;
    if next.status() != StatusCode::FOUND || !location(&next).starts_with(&env.op.issuer) {
        wrong.push(format!(
            "afterwards the browser is not anonymous ({})",
            next.status()
        ));
    }
    if env.upstream.count() != upstream_before {
        wrong.push("the upstream was reached".into());
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("; "))
    }
}

const NOT_VERIFIED: (u16, &str) = (502, "Sign-in could not be verified");

/// The forged ID tokens, each with the page it must end on.
fn forged_cases() -> Vec<(&'static str, Forge, (u16, &'static str))> {
    vec![
        (
            "alg none",
            forge(|ctx, _| {
                let c = ctx.claims("alice");
                format!(
                    "{}.",
                    mock_op::signing_input(&json!({"alg": "none", "typ": "JWT"}), &c)
                )
            }),
            NOT_VERIFIED,
        ),
        (
            "alg None, signed",
            forge(|ctx, keys| {
                keys.main().sign(
                    &json!({"alg": "None", "kid": keys.main().kid}),
                    &ctx.claims("alice"),
                )
            }),
            NOT_VERIFIED,
        ),
        (
            "missing alg",
            forge(|ctx, keys| {
                keys.main().sign(
                    &json!({"typ": "JWT", "kid": keys.main().kid}),
                    &ctx.claims("alice"),
                )
            }),
            NOT_VERIFIED,
        ),
        (
            "HS256 signed with the public key bytes",
            forge(|ctx, keys| {
                hs256(
                    keys.main().public_bytes(),
                    &json!({"alg": "HS256", "typ": "JWT", "kid": keys.main().kid}),
                    &ctx.claims("alice"),
                )
            }),
            NOT_VERIFIED,
        ),
        (
            "HS256 signed with the public JWK text",
            forge(|ctx, keys| {
                hs256(
                    keys.main().jwk().to_string().as_bytes(),
                    &json!({"alg": "HS256", "typ": "JWT"}),
                    &ctx.claims("alice"),
                )
            }),
            NOT_VERIFIED,
        ),
        (
            "HS256 signed with the client secret",
            forge(|ctx, _| {
                hs256(
                    support::CLIENT_SECRET.as_bytes(),
                    &json!({"alg": "HS256", "typ": "JWT"}),
                    &ctx.claims("alice"),
                )
            }),
            NOT_VERIFIED,
        ),
        (
            "RS256 in the header over an EC key",
            forge(|ctx, keys| {
                keys.main().sign(
                    &json!({"alg": "RS256", "kid": keys.main().kid}),
                    &ctx.claims("alice"),
                )
            }),
            NOT_VERIFIED,
        ),
        (
            "signature stripped",
            forge(|ctx, keys| {
                let t = keys.main().es256(&ctx.claims("alice"));
                format!("{}.", t.rsplit_once('.').map_or("", |(a, _)| a))
            }),
            NOT_VERIFIED,
        ),
        (
            "payload swapped under a valid signature",
            forge(|ctx, keys| {
                let good = keys.main().es256(&ctx.claims("alice"));
                let evil = keys.main().es256(&ctx.claims("admin"));
                let g: Vec<&str> = good.split('.').collect();
                let e: Vec<&str> = evil.split('.').collect();
                format!("{}.{}.{}", g[0], e[1], g[2])
            }),
            NOT_VERIFIED,
        ),
        (
            "signed by an unpublished key under the real kid",
            forge(|ctx, keys| {
                keys.unpublished[1].sign(
                    &json!({"alg": "ES256", "kid": keys.main().kid}),
                    &ctx.claims("alice"),
                )
            }),
            NOT_VERIFIED,
        ),
        (
            "attacker key embedded in the header (jwk)",
            forge(|ctx, keys| {
                let k = &keys.unpublished[1];
                k.sign(
                    &json!({"alg": "ES256", "kid": k.kid, "jwk": k.jwk()}),
                    &ctx.claims("alice"),
                )
            }),
            NOT_VERIFIED,
        ),
        (
            "critical header extension",
            forge(|ctx, keys| {
                keys.main().sign(
                    &json!({"alg": "ES256", "kid": keys.main().kid, "crit": ["exp"], "exp": 1}),
                    &ctx.claims("alice"),
                )
            }),
            NOT_VERIFIED,
        ),
        (
            "wrong issuer",
            forge(|ctx, keys| {
                keys.main().es256(&claims_with(ctx, |c| {
                    c["iss"] = json!("https://evil.example")
                }))
            }),
            NOT_VERIFIED,
        ),
        (
            "issuer with a trailing slash",
            forge(|ctx, keys| {
                let iss = format!("{}/", ctx.issuer);
                keys.main()
                    .es256(&claims_with(ctx, |c| c["iss"] = json!(iss)))
            }),
            NOT_VERIFIED,
        ),
        (
            "wrong audience",
            forge(|ctx, keys| {
                keys.main()
                    .es256(&claims_with(ctx, |c| c["aud"] = json!("another-client")))
            }),
            NOT_VERIFIED,
        ),
        (
            "audience missing",
            forge(|ctx, keys| {
                keys.main().es256(&claims_with(ctx, |c| {
                    c.as_object_mut().map(|o| o.remove("aud"));
                }))
            }),
            NOT_VERIFIED,
        ),
        (
            "several audiences, no azp",
            forge(|ctx, keys| {
                let aud = json!([ctx.client_id, "another-client"]);
                keys.main()
                    .es256(&claims_with(ctx, |c| c["aud"] = aud.clone()))
            }),
            NOT_VERIFIED,
        ),
        (
            "several audiences, azp another client",
            forge(|ctx, keys| {
                let aud = json!([ctx.client_id, "another-client"]);
                keys.main().es256(&claims_with(ctx, |c| {
                    c["aud"] = aud.clone();
                    c["azp"] = json!("another-client");
                }))
            }),
            NOT_VERIFIED,
        ),
        (
            "our audience, azp another client",
            forge(|ctx, keys| {
                keys.main()
                    .es256(&claims_with(ctx, |c| c["azp"] = json!("another-client")))
            }),
            NOT_VERIFIED,
        ),
        (
            "expired",
            forge(|ctx, keys| {
                let now = ctx.now;
                keys.main().es256(&claims_with(ctx, |c| {
                    c["iat"] = json!(now - 7200);
                    c["exp"] = json!(now - 3600);
                }))
            }),
            NOT_VERIFIED,
        ),
        (
            "expiry missing",
            forge(|ctx, keys| {
                keys.main().es256(&claims_with(ctx, |c| {
                    c.as_object_mut().map(|o| o.remove("exp"));
                }))
            }),
            NOT_VERIFIED,
        ),
        (
            "issued in the future (2 minutes)",
            forge(|ctx, keys| {
                let now = ctx.now;
                keys.main().es256(&claims_with(ctx, |c| {
                    c["iat"] = json!(now + 120);
                    c["exp"] = json!(now + 600);
                }))
            }),
            NOT_VERIFIED,
        ),
        (
            "nonce missing",
            forge(|ctx, keys| {
                keys.main().es256(&claims_with(ctx, |c| {
                    c.as_object_mut().map(|o| o.remove("nonce"));
                }))
            }),
            NOT_VERIFIED,
        ),
        (
            "nonce wrong",
            forge(|ctx, keys| {
                keys.main()
                    .es256(&claims_with(ctx, |c| c["nonce"] = json!("attacker-nonce")))
            }),
            NOT_VERIFIED,
        ),
        (
            "subject missing",
            forge(|ctx, keys| {
                keys.main().es256(&claims_with(ctx, |c| {
                    c.as_object_mut().map(|o| o.remove("sub"));
                }))
            }),
            NOT_VERIFIED,
        ),
        (
            "unknown kid",
            forge(|ctx, keys| keys.unpublished[1].es256(&ctx.claims("alice"))),
            NOT_VERIFIED,
        ),
        ("not a JWT", forge(|_, _| "not-a-jwt".into()), NOT_VERIFIED),
        (
            "huge token (2 MB)",
            forge(|ctx, keys| {
                let pad = "x".repeat(2 * 1024 * 1024);
                keys.main()
                    .es256(&claims_with(ctx, |c| c["padding"] = json!(pad.clone())))
            }),
            (502, "Identity provider unavailable"),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_good_token_signs_in_and_reaches_the_upstream() {
    let env = mock_env().await;
    let a = attempt(
        &env,
        forge(|ctx, keys| keys.main().es256(&ctx.claims("alice"))),
    )
    .await;
    assert_eq!(a.status, StatusCode::FOUND, "{}", a.body);
    assert_eq!(a.location.as_deref(), Some(env.proxy.url("/app").as_str()));
    assert!(gives_session(&a.set_cookies), "{:?}", a.set_cookies);
    let page = a.browser.navigate(&env.proxy.url("/app")).await;
    assert_eq!(page.status(), StatusCode::OK);
    let seen = env.upstream.last();
    assert_eq!(seen.header("x-forwarded-user"), Some("alice"));
    assert_eq!(seen.header("x-forwarded-email"), Some("alice@example.com"));
    assert_eq!(env.op.userinfo_requests(), 1);

    // Within the rules, not a forgery: `azp` naming us, and `iat` a little ahead (clock skew).
    for (name, f) in [
        (
            "azp is our client id",
            forge(|ctx, keys| {
                let id = ctx.client_id.clone();
                keys.main()
                    .es256(&claims_with(ctx, |c| c["azp"] = json!(id)))
            }),
        ),
        (
            "iat 30 s ahead",
            forge(|ctx, keys| {
                let now = ctx.now;
                keys.main()
                    .es256(&claims_with(ctx, |c| c["iat"] = json!(now + 30)))
            }),
        ),
    ] {
        let a = attempt(&env, f).await;
        assert_eq!(a.status, StatusCode::FOUND, "{name}: {}", a.body);
        assert!(gives_session(&a.set_cookies), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_expired_and_misaddressed_id_tokens_are_refused() {
    let env = mock_env().await;
    let cases = forged_cases();
    let mut failures = Vec::new();
    for (name, f, (status, title)) in &cases {
        let a = attempt(&env, f.clone()).await;
        if let Err(e) = refused(&env, &a, *status, title).await {
            failures.push(format!("{name}: {e}"));
        }
    }
    // Discovery, then one re-fetch for the one unknown kid among the cases (no other forgery
    // makes the proxy fetch the key set); the dedicated tests below cover the re-fetch.
    assert_eq!(
        env.op.jwks_requests(),
        2,
        "discovery and one re-fetch for the unknown kid"
    );
    eprintln!(
        "{} forged tokens tried, {} refused as required",
        cases.len(),
        cases.len() - failures.len()
    );
    assert!(
        failures.is_empty(),
        "not refused properly:\n{}",
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userinfo_for_another_subject_is_refused() {
    let env = mock_env().await;
    env.op.set_userinfo_sub(Some("mallory"));
    let a = attempt(
        &env,
        forge(|ctx, keys| keys.main().es256(&ctx.claims("alice"))),
    )
    .await;
    let (status, title) = NOT_VERIFIED;
    refused(&env, &a, status, title).await.expect("refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_authorization_code_is_refused() {
    let env = mock_env().await;
    let good = forge(|ctx, keys| keys.main().es256(&ctx.claims("alice")));
    let first = attempt(&env, good.clone()).await;
    assert_eq!(first.status, StatusCode::FOUND, "{}", first.body);
    let used_code = query(&first.callback)["code"].clone();

    // A new login of another browser, completed with the code already used.
    let (browser, callback) = begin(&env).await;
    let fresh = query(&callback)["code"].clone();
    let replay = callback.replace(&fresh, &used_code);
    assert_ne!(replay, callback);
    let tokens_before = env.op.token_requests();
    let a = finish(browser, replay).await;
    assert_eq!(
        env.op.token_requests(),
        tokens_before + 1,
        "the code went to the OP, which said invalid_grant"
    );
    let upstream_before = env.upstream.count();
    assert_eq!(upstream_before, 0);
    refused(&env, &a, 400, "Sign-in could not be completed")
        .await
        .expect("refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_state_is_refused_before_the_code_is_exchanged() {
    let env = mock_env().await;
    let first = attempt(
        &env,
        forge(|ctx, keys| keys.main().es256(&ctx.claims("alice"))),
    )
    .await;
    assert_eq!(first.status, StatusCode::FOUND, "{}", first.body);
    let tokens_before = env.op.token_requests();
    // The same callback, with the login cookie it came with, in a fresh browser.
    let replay = Browser::new();
    let resp = replay
        .client
        .get(&first.callback)
        .header("accept", "text/html")
        .header("cookie", &first.login_cookie)
        .send()
        .await
        .expect("replay");
    let a = Attempt {
        status: resp.status(),
        content_type: resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
        set_cookies: set_cookies(&resp),
        location: resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: resp.text().await.expect("body"),
        browser: replay,
        callback: first.callback.clone(),
        login_cookie: first.login_cookie.clone(),
    };
    assert_eq!(env.op.token_requests(), tokens_before, "no code exchange");
    refused(&env, &a, 400, "Sign-in link already used")
        .await
        .expect("refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_kid_makes_one_jwks_refetch_and_is_then_refused() {
    // Right after start-up: an unknown kid is looked up whenever the last fetch was.
    let env = mock_env().await;
    let unknown = forge(|ctx, keys| keys.unpublished[1].es256(&ctx.claims("alice")));
    let before = env.op.jwks_requests();
    let a = attempt(&env, unknown.clone()).await;
    assert_eq!(
        env.op.jwks_requests(),
        before + 1,
        "the JWKS was fetched again"
    );
    let (status, title) = NOT_VERIFIED;
    refused(&env, &a, status, title).await.expect("refused");
    // The same unknown kid right away does not make the proxy fetch again (bound per kid).
    let b = attempt(&env, unknown).await;
    assert_eq!(env.op.jwks_requests(), before + 1, "rate-limited per kid");
    refused(&env, &b, status, title).await.expect("refused");
    // Another unknown kid does, at once.
    let other = forge(|ctx, keys| keys.unpublished[0].es256(&ctx.claims("alice")));
    let c = attempt(&env, other).await;
    assert_eq!(env.op.jwks_requests(), before + 2, "a new kid is looked up");
    refused(&env, &c, status, title).await.expect("refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_signing_key_is_fetched_and_accepted() {
    // The OP rotates right after the proxy's discovery; the sign-in follows with no wait.
    let env = mock_env().await;
    env.op.rotate();
    let before = env.op.jwks_requests();
    let a = attempt(
        &env,
        forge(|ctx, keys| keys.main().es256(&ctx.claims("alice"))),
    )
    .await;
    assert_eq!(env.op.jwks_requests(), before + 1);
    assert_eq!(a.status, StatusCode::FOUND, "{}", a.body);
    assert!(gives_session(&a.set_cookies));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_with_a_path_is_discovered_and_signs_in() {
    let op = MockOp::start_at("/realms/acme").await;
    assert!(op.issuer.ends_with("/realms/acme"));
    let upstream = EchoUpstream::start().await;
    let proxy = start_gate(bind_gate().0, &op.issuer, &upstream.url(), "", true).await;
    let env = MockEnv {
        op,
        upstream,
        proxy,
    };
    let a = attempt(
        &env,
        forge(|ctx, keys| keys.main().es256(&ctx.claims("alice"))),
    )
    .await;
    assert_eq!(a.status, StatusCode::FOUND, "{}", a.body);
    assert!(gives_session(&a.set_cookies), "{:?}", a.set_cookies);
    a.browser.navigate(&env.proxy.url("/app")).await;
    assert_eq!(
        env.upstream.last().header("x-forwarded-user"),
        Some("alice")
    );
}
