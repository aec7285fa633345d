//! OpenID Connect Back-Channel Logout 1.0 at `POST /.profilegate/backchannel-logout`: with the
//! real test OP (a user signs out at the OP, which posts its logout token to the proxy) and
//! with logout tokens forged by the in-process mock OP: each defective one is refused with 400
//! and ends nothing; the good one ends the session it names, and only that one.

mod support;

#[path = "support/mock_op.rs"]
mod mock_op;

use std::sync::Arc;

use mock_op::{hs256, MockOp, OpKeys, TokenContext};
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::op_logout::{backchannel_op, BACKCHANNEL_PATH};
use support::*;

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// The session cookie `browser` holds for `proxy` (to replay it as a copied cookie).
fn session_cookie(browser: &Browser, proxy: &Proxy) -> String {
    let cookies = browser.cookies_for(&proxy.url("/"));
    assert!(
        cookies.contains("profilegate_session="),
        "signed in: {cookies}"
    );
    cookies
}

/// What a request with `cookie` gets at `path`: a navigation's status and `Location`.
async fn navigate_with(proxy: &Proxy, cookie: &str, path: &str) -> (StatusCode, Option<String>) {
    let resp = plain_client()
        .get(proxy.url(path))
        .header("cookie", cookie)
        .header("accept", "text/html")
        .send()
        .await
        .expect("navigation");
    let loc = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (resp.status(), loc)
}

/// What an API request with `cookie` gets at `path`.
async fn api_with(proxy: &Proxy, cookie: &str, path: &str) -> StatusCode {
    plain_client()
        .get(proxy.url(path))
        .header("cookie", cookie)
        .header("accept", "application/json")
        .send()
        .await
        .expect("API request")
        .status()
}

fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_at_the_op_ends_that_session_here_and_no_other() {
    let (listener, port) = bind_gate();
    let op = TestOp::start(port, backchannel_op(&[port]));
    let upstream = EchoUpstream::start().await;
    let proxy = start_gate(listener, &op.issuer, &upstream.url(), "", true).await;

    let alice = Browser::new();
    let bob = Browser::new();
    for (browser, who) in [(&alice, "alice"), (&bob, "bob")] {
        let done = browser.login(&proxy.url("/"), who).await;
        assert!(done.status().is_redirection(), "{who} signed in");
        let resp = browser.navigate(&proxy.url("/app")).await;
        assert_eq!(resp.status(), StatusCode::OK, "{}", proxy.log());
        assert_eq!(upstream.last().header("x-forwarded-user"), Some(who));
    }
    let alices = session_cookie(&alice, &proxy);
    let bobs = session_cookie(&bob, &proxy);

    alice.sign_out_at_op(&op.issuer).await;
    assert!(
        op.stderr()
            .contains("test-op: backchannel: logout token for alice"),
        "the OP delivered its logout token:\n{}\n{}",
        op.stderr(),
        proxy.log()
    );

    // Her session is over: an API request with her cookie gets 401, a navigation goes to
    // the OP; the same holds for any copy of the cookie.
    assert_eq!(
        api_with(&proxy, &alices, "/api/data").await,
        StatusCode::UNAUTHORIZED,
        "{}",
        proxy.log()
    );
    let (status, loc) = navigate_with(&proxy, &alices, "/app").await;
    assert_eq!(status, StatusCode::FOUND);
    assert!(
        loc.as_deref().is_some_and(|l| l.starts_with(&op.issuer)),
        "sent to the OP to sign in: {loc:?}"
    );
    let resp = alice.navigate(&proxy.url("/app")).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert!(location(&resp).starts_with(&op.issuer));

    // Bob's session is untouched.
    let (status, _) = navigate_with(&proxy, &bobs, "/bob-after").await;
    assert_eq!(status, StatusCode::OK, "{}", proxy.log());
    let seen = upstream.last();
    assert_eq!(seen.target, "/bob-after");
    assert_eq!(seen.header("x-forwarded-user"), Some("bob"));

    let log = proxy.log();
    assert!(
        log.lines()
            .any(|l| l.contains("back-channel logout") && l.contains("\"sessions\":1")),
        "one info line naming the ended session:\n{log}"
    );
}

struct MockEnv {
    op: MockOp,
    upstream: EchoUpstream,
    proxy: Proxy,
}

/// The mock OP's ID tokens for `sub` carry the OP's session id `op-sid-<sub>`.
fn with_op_sid(sub: &'static str) -> mock_op::Forge {
    Arc::new(move |ctx: &TokenContext, keys: &OpKeys| {
        let mut claims = ctx.claims(sub);
        claims["sid"] = json!(format!("op-sid-{sub}"));
        keys.main().es256(&claims)
    })
}

/// A login through the mock OP as `sub`; the browser holding the session.
async fn mock_login(env: &MockEnv, sub: &'static str) -> Browser {
    env.op.set_forge(with_op_sid(sub));
    env.op.set_userinfo_sub(Some(sub));
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
    assert!(
        done.status().is_redirection(),
        "{sub} signed in: {}",
        env.proxy.log()
    );
    browser
}

/// A good logout token's claims, for `sid` of the OP (and the subject alice).
fn logout_claims(env: &MockEnv, sid: &str, jti: &str) -> Value {
    let now = profilegate::session::now_secs();
    json!({
        "iss": env.op.issuer,
        "aud": mock_op::CLIENT_ID,
        "iat": now,
        "exp": now + 120,
        "jti": jti,
        "sub": "alice",
        "sid": sid,
        "events": { EVENT: {} },
    })
}

async fn post_token(env: &MockEnv, token: &str) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let resp = plain_client()
        .post(env.proxy.url(BACKCHANNEL_PATH))
        .form(&[("logout_token", token)])
        .send()
        .await
        .expect("back-channel logout");
    let (status, headers) = (resp.status(), resp.headers().clone());
    let body = resp.text().await.expect("body");
    let json = match body.is_empty() {
        true => Value::Null,
        false => serde_json::from_str(&body).unwrap_or_else(|_| json!({ "raw": body })),
    };
    (status, json, headers)
}

/// Whether `browser`'s session still reaches the upstream as `sub`.
async fn still_signed_in(env: &MockEnv, browser: &Browser, sub: &str) -> bool {
    let resp = browser.navigate(&env.proxy.url("/still")).await;
    resp.status() == StatusCode::OK && env.upstream.last().header("x-forwarded-user") == Some(sub)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_logout_tokens_are_refused_and_a_good_one_ends_the_session() {
    let op = MockOp::start().await;
    let upstream = EchoUpstream::start().await;
    let proxy = start_gate(bind_gate().0, &op.issuer, &upstream.url(), "", true).await;
    let env = MockEnv {
        op,
        upstream,
        proxy,
    };
    let alice = mock_login(&env, "alice").await;
    assert!(still_signed_in(&env, &alice, "alice").await);
    let cookie = session_cookie(&alice, &env.proxy);

    type Edit = fn(&mut Value);
    let claims_defects: &[(&str, Edit)] = &[
        ("missing events", |c| {
            c.as_object_mut().map(|o| o.remove("events"));
        }),
        ("events without the back-channel member", |c| {
            c["events"] = json!({ "http://schemas.openid.net/event/other": {} });
        }),
        ("the back-channel event not an object", |c| {
            c["events"] = json!({ EVENT: "yes" });
        }),
        ("nonce present", |c| c["nonce"] = json!("n-1")),
        ("other audience", |c| c["aud"] = json!("another-client")),
        ("other authorized party", |c| {
            c["azp"] = json!("another-client")
        }),
        ("other issuer", |c| c["iss"] = json!("https://op.example")),
        ("neither sub nor sid", |c| {
            let o = c.as_object_mut().expect("object");
            o.remove("sub");
            o.remove("sid");
        }),
        ("expired", |c| {
            c["exp"] = json!(profilegate::session::now_secs() - 3600)
        }),
        ("issued in the future", |c| {
            c["iat"] = json!(profilegate::session::now_secs() + 3600)
        }),
        ("no iat", |c| {
            c.as_object_mut().map(|o| o.remove("iat"));
        }),
        ("no jti", |c| {
            c.as_object_mut().map(|o| o.remove("jti"));
        }),
    ];
    let mut forged: Vec<(String, String)> = Vec::new();
    for (i, (what, edit)) in claims_defects.iter().enumerate() {
        let mut claims = logout_claims(&env, "op-sid-alice", &format!("defect-{i}"));
        edit(&mut claims);
        forged.push((
            what.to_string(),
            env.op.with_keys(|k| k.main().es256(&claims)),
        ));
    }
    let good = logout_claims(&env, "op-sid-alice", "signature-cases");
    let header = |kid: &str| json!({"alg": "ES256", "typ": "logout+jwt", "kid": kid});
    forged.push((
        "wrong signature (a key the OP never published, under its key's kid)".into(),
        env.op
            .with_keys(|k| k.unpublished[1].sign(&header(&k.main().kid), &good)),
    ));
    forged.push((
        "alg none".into(),
        format!(
            "{}.",
            mock_op::signing_input(&json!({"alg": "none", "typ": "JWT"}), &good)
        ),
    ));
    forged.push((
        "HS256 with the client secret".into(),
        hs256(
            mock_op::CLIENT_SECRET.as_bytes(),
            &json!({"alg": "HS256", "typ": "JWT"}),
            &good,
        ),
    ));
    forged.push(("not a JWT".into(), "not-a-jwt".into()));

    for (what, token) in &forged {
        let (status, body, _) = post_token(&env, token).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
        assert_eq!(body["error"], "invalid_request", "{what}: {body}");
        let description = body["error_description"].as_str().unwrap_or_default();
        assert!(!description.is_empty(), "{what}: the defect is named");
        assert!(
            !description.contains(token.as_str()) && !body.to_string().contains("op-sid-alice"),
            "{what}: the answer never echoes the token: {body}"
        );
        assert!(
            still_signed_in(&env, &alice, "alice").await,
            "{what}: the session still works\n{}",
            env.proxy.log()
        );
    }
    eprintln!("{} forged logout tokens refused", forged.len());

    // An unknown key id: the OP's key set is fetched once more (a rotation?), then refused.
    let jwks_before = env.op.jwks_requests();
    let unknown = env
        .op
        .with_keys(|k| k.unpublished[1].sign(&header(&k.unpublished[1].kid), &good));
    let (status, body, _) = post_token(&env, &unknown).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        env.op.jwks_requests(),
        jwks_before + 1,
        "an unknown kid fetches the OP's keys again"
    );
    assert!(still_signed_in(&env, &alice, "alice").await);

    // A good token for an OP session that has none here: 200 (nothing to end), and its jti
    // is spent: the same token again is a replay.
    let elsewhere = env.op.with_keys(|k| {
        k.main()
            .es256(&logout_claims(&env, "op-sid-elsewhere", "jti-once"))
    });
    let (status, body, _) = post_token(&env, &elsewhere).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", env.proxy.log());
    let (status, body, _) = post_token(&env, &elsewhere).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "replayed jti: {body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("already used")),
        "{body}"
    );
    assert!(still_signed_in(&env, &alice, "alice").await);

    // Not a form, two tokens, no token, another method.
    let good_token = env.op.with_keys(|k| k.main().es256(&good));
    let url = env.proxy.url(BACKCHANNEL_PATH);
    let as_json = plain_client()
        .post(&url)
        .json(&json!({ "logout_token": good_token }))
        .send()
        .await
        .expect("post");
    assert_eq!(as_json.status(), StatusCode::BAD_REQUEST);
    let two = plain_client()
        .post(&url)
        .form(&[("logout_token", &good_token), ("logout_token", &good_token)])
        .send()
        .await
        .expect("post");
    assert_eq!(two.status(), StatusCode::BAD_REQUEST);
    let none = plain_client()
        .post(&url)
        .form(&[("other", "x")])
        .send()
        .await
        .expect("post");
    assert_eq!(none.status(), StatusCode::BAD_REQUEST);
    let huge = plain_client()
        .post(&url)
        .form(&[("logout_token", "a".repeat(20 * 1024))])
        .send()
        .await
        .expect("post");
    assert_eq!(huge.status(), StatusCode::BAD_REQUEST);
    let get = plain_client().get(&url).send().await.expect("get");
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(still_signed_in(&env, &alice, "alice").await);

    // Bob signs in too; the good token for alice's OP session ends hers only.
    let bob = mock_login(&env, "bob").await;
    assert!(still_signed_in(&env, &bob, "bob").await);
    let (status, body, headers) = post_token(&env, &good_token).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", env.proxy.log());
    assert_eq!(body, Value::Null, "an empty body");
    assert_eq!(
        headers.get("cache-control").and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    assert_eq!(
        api_with(&env.proxy, &cookie, "/api/data").await,
        StatusCode::UNAUTHORIZED
    );
    let (status, loc) = navigate_with(&env.proxy, &cookie, "/app").await;
    assert_eq!(status, StatusCode::FOUND);
    assert!(
        loc.as_deref()
            .is_some_and(|l| l.starts_with(&format!("{}/authorize", env.op.issuer))),
        "{loc:?}"
    );
    assert!(still_signed_in(&env, &bob, "bob").await, "bob untouched");

    let log = env.proxy.log();
    assert!(
        log.lines()
            .filter(|l| l.contains("back-channel logout refused"))
            .count()
            >= forged.len(),
        "a warning per refused token:\n{log}"
    );
    assert!(
        !log.contains(&good_token),
        "the token never reaches the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_token_with_only_sub_ends_every_session_of_the_subject() {
    let op = MockOp::start().await;
    let upstream = EchoUpstream::start().await;
    let proxy = start_gate(bind_gate().0, &op.issuer, &upstream.url(), "", true).await;
    let env = MockEnv {
        op,
        upstream,
        proxy,
    };
    let laptop = mock_login(&env, "alice").await;
    let phone = mock_login(&env, "alice").await;
    let bob = mock_login(&env, "bob").await;
    let mut claims = logout_claims(&env, "unused", "sub-only");
    claims.as_object_mut().map(|o| o.remove("sid"));
    let token = env.op.with_keys(|k| k.main().es256(&claims));
    let (status, body, _) = post_token(&env, &token).await;
    assert_eq!(status, StatusCode::OK, "{body}\n{}", env.proxy.log());
    for (browser, what) in [(&laptop, "laptop"), (&phone, "phone")] {
        let resp = browser.navigate(&env.proxy.url("/app")).await;
        assert_eq!(
            resp.status(),
            StatusCode::FOUND,
            "alice's {what} session ended"
        );
    }
    assert!(still_signed_in(&env, &bob, "bob").await, "bob untouched");
}
