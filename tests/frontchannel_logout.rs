//! OIDC Front-Channel Logout 1.0 (`/.profilegate/frontchannel-logout`) and RP-initiated logout
//! with `id_token_hint`, against the real test OP (`sid_in_id_token`: its ID tokens carry the
//! OP's session id, which the session record keeps).
//!
//! oidc-provider 9 has no front-channel feature (v8 dropped the draft), so the OP's iframe is
//! played two ways: by requests as the iframe sends them (cross-site, no cookie), and by real
//! headless Chromium embedding the route from a page of the OP's origin
//! (`tests/browser/frontchannel.mjs`, which also checks another origin may not frame it).

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::*;

/// The test environment: the OP puts `sid` in its ID tokens.
async fn env() -> TestEnv {
    TestEnv::start_with("", json!({ "sid_in_id_token": true })).await
}

/// The claims of a JWT (its signature is the OP's business here).
fn jwt_claims(jwt: &str) -> Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// True when `browser` is signed in: a navigation to the app reaches the upstream.
async fn signed_in(env: &TestEnv, browser: &Browser) -> bool {
    let resp = browser.navigate(&env.proxy.url("/app")).await;
    match resp.status() {
        StatusCode::OK => true,
        StatusCode::FOUND => {
            assert!(location(&resp).starts_with(&env.op.issuer), "{resp:?}");
            false
        }
        other => panic!("unexpected {other} for a navigation"),
    }
}

/// Logs `browser` in as `login`, then out through the proxy (which sends it to the OP's
/// end-session endpoint without the browser confirming there, so the OP session lives on);
/// returns the end-session URL. Then logs in again: the new session belongs to the same OP
/// session, whose `sid` the returned URL's `id_token_hint` names.
async fn login_and_learn_op_sid(env: &TestEnv, browser: &Browser, login: &str) -> String {
    let done = browser.login(&env.proxy.url("/app"), login).await;
    assert_eq!(done.status(), StatusCode::FOUND, "callback");
    let out = browser
        .navigate(&env.proxy.url("/.profilegate/logout"))
        .await;
    assert_eq!(out.status(), StatusCode::FOUND);
    let end_session = location(&out);
    let again = browser.login(&env.proxy.url("/app"), login).await;
    assert_eq!(again.status(), StatusCode::FOUND, "second callback");
    assert!(signed_in(env, browser).await);
    end_session
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rp_initiated_logout_sends_the_login_id_token_as_hint_and_the_op_accepts_it() {
    let env = env().await;
    let browser = env.browser();
    browser.login(&env.proxy.url("/"), "alice").await;

    let resp = browser
        .navigate(&env.proxy.url("/.profilegate/logout?rd=%2Fbye"))
        .await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let loc = location(&resp);
    assert!(
        loc.starts_with(&format!("{}/session/end?", env.op.issuer)),
        "{loc}"
    );
    let q = query(&loc);
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["state"], "/bye");
    let hint = q.get("id_token_hint").expect("id_token_hint sent");
    let claims = jwt_claims(hint);
    assert_eq!(claims["iss"], env.op.issuer.as_str());
    assert_eq!(claims["aud"], CLIENT_ID);
    assert_eq!(claims["sub"], "alice");
    assert!(
        claims["nonce"].is_string(),
        "the login's ID token: {claims}"
    );
    assert!(claims["sid"].is_string(), "{claims}");

    // The OP takes the hint: its logout page, no error.
    let op_page = browser.client.get(&loc).send().await.expect("end_session");
    let status = op_page.status();
    let body = op_page.text().await.expect("OP page");
    assert_eq!(status, StatusCode::OK, "{body}\n{}", env.op.stderr());
    assert!(!body.contains("test OP error"), "{body}");

    // A hint the OP did not issue is refused there: the check above could fail.
    let mut forged = url::Url::parse(&loc).expect("url");
    let tampered = {
        use base64::Engine as _;
        let mut other = claims.clone();
        other["sub"] = json!("mallory");
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(other.to_string());
        let parts: Vec<&str> = hint.split('.').collect();
        format!("{}.{payload}.{}", parts[0], parts[2])
    };
    let pairs: Vec<(String, String)> = forged
        .query_pairs()
        .map(|(k, v)| match k.as_ref() {
            "id_token_hint" => (k.into_owned(), tampered.clone()),
            _ => (k.into_owned(), v.into_owned()),
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    let refused = browser
        .client
        .get(forged.as_str())
        .send()
        .await
        .expect("end_session");
    let refused_status = refused.status();
    let refused_body = refused.text().await.expect("OP page");
    assert!(
        refused_status == StatusCode::BAD_REQUEST
            && refused_body.contains("could not validate id_token_hint"),
        "{refused_status} {refused_body}"
    );

    // The proxy session is over whatever the OP does next.
    assert!(!signed_in(&env, &browser).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn front_channel_logout_by_iss_and_sid_ends_only_that_op_sessions_sessions() {
    let env = env().await;
    let alice = env.browser();
    let end_session = login_and_learn_op_sid(&env, &alice, "alice").await;
    let op_sid = jwt_claims(&query(&end_session)["id_token_hint"])["sid"]
        .as_str()
        .expect("sid")
        .to_owned();
    let bob = env.browser();
    bob.login(&env.proxy.url("/"), "bob").await;
    assert!(signed_in(&env, &bob).await);

    // As the OP's iframe asks: cross-site, no cookie.
    let iframe = http_client();
    let front = |iss: Option<&str>, sid: Option<&str>| {
        let mut url =
            url::Url::parse(&env.proxy.url("/.profilegate/frontchannel-logout")).expect("url");
        if let Some(iss) = iss {
            url.query_pairs_mut().append_pair("iss", iss);
        }
        if let Some(sid) = sid {
            url.query_pairs_mut().append_pair("sid", sid);
        }
        iframe
            .get(url.as_str())
            .header("accept", "text/html")
            .header("sec-fetch-dest", "iframe")
            .header("sec-fetch-site", "cross-site")
            .header("sec-fetch-mode", "navigate")
            .send()
    };
    let issuer = env.op.issuer.as_str();

    // Defects: 400, nothing ended.
    let other_issuer = format!("{issuer}/other");
    for (iss, sid) in [
        (Some(other_issuer.as_str()), Some(op_sid.as_str())),
        (Some(issuer), None),
        (None, Some(op_sid.as_str())),
        (Some(issuer), Some("")),
    ] {
        let resp = front(iss, sid).await.expect("request");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{iss:?} {sid:?}");
        assert!(signed_in(&env, &alice).await, "{iss:?} {sid:?}");
    }

    // Neither iss nor sid, and no cookie (the iframe's request): the page, nothing ended.
    let resp = front(None, None).await.expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.expect("page").contains("Signed out."));
    assert!(signed_in(&env, &alice).await && signed_in(&env, &bob).await);

    // A sid the proxy does not know: the page, nothing ended.
    let resp = front(Some(issuer), Some("not-a-known-sid"))
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(signed_in(&env, &alice).await && signed_in(&env, &bob).await);

    // The OP's sid: alice's session ends at once, bob's lives on.
    let resp = front(Some(issuer), Some(&op_sid)).await.expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    let headers = resp.headers().clone();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let op_origin = url::Url::parse(issuer)
        .expect("issuer")
        .origin()
        .ascii_serialization();
    let csp = header("content-security-policy");
    assert!(
        csp.contains(&format!("frame-ancestors {op_origin}")),
        "{csp}"
    );
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    assert_eq!(
        header("x-frame-options"),
        "",
        "XFO would forbid the OP's frame"
    );
    assert_eq!(header("cache-control"), "no-cache, no-store");
    assert_eq!(header("pragma"), "no-cache");
    assert!(headers.get_all("set-cookie").iter().any(|c| c
        .to_str()
        .unwrap_or_default()
        .starts_with("profilegate_session=;")));
    assert!(resp.text().await.expect("page").contains("Signed out."));
    assert!(!signed_in(&env, &alice).await, "alice's session ended");
    assert!(signed_in(&env, &bob).await, "bob's session untouched");

    // Every other page of the proxy still refuses every frame.
    let other = iframe
        .get(env.proxy.url("/.profilegate/signed-out"))
        .send()
        .await
        .expect("page");
    let csp = other
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(
        other.headers().get("x-frame-options").map(|v| v.as_bytes()),
        Some(&b"DENY"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn front_channel_logout_without_sid_ends_the_cookies_session_but_not_from_a_foreign_link() {
    let env = env().await;
    let bob = env.browser();
    bob.login(&env.proxy.url("/"), "bob").await;
    let url = env.proxy.url("/.profilegate/frontchannel-logout");
    let request = |dest: &'static str| {
        bob.client
            .get(&url)
            .header("accept", "text/html")
            .header("sec-fetch-site", "cross-site")
            .header("sec-fetch-dest", dest)
            .send()
    };

    // A link on another site (a top-level navigation) signs no one out.
    let resp = request("document").await.expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(set_cookies(&resp).is_empty(), "{:?}", set_cookies(&resp));
    assert!(signed_in(&env, &bob).await);

    // The OP's iframe, when the browser sends the cookie (spec §2): that session ends.
    let resp = request("iframe").await.expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(!signed_in(&env, &bob).await);

    // Other methods are not the route.
    let post = http_client().post(&url).send().await.expect("post");
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_lets_the_ops_page_frame_the_logout_and_the_session_dies() {
    assert!(
        chromium().exists(),
        "Chromium is not installed at {}: `apt-get install chromium` or set TEST_CHROMIUM",
        chromium().display()
    );
    assert!(
        repo()
            .join("tests/browser/node_modules/playwright-core")
            .exists(),
        "playwright-core is not installed: run `npm ci` in tests/browser"
    );
    let env =
        TestEnv::start_with("", json!({ "sid_in_id_token": true, "skip_consent": true })).await;
    let config = json!({
        "proxy": env.proxy.url(""),
        "app_url": env.proxy.url("/app"),
        "issuer": env.op.issuer,
        "login": "carol",
        "artifacts": repo().join("target/test-artifacts/browser"),
    });
    // frontchannel.mjs stops itself after 90 s; this is the backstop.
    let run = tokio::task::block_in_place(|| {
        run_browser_script("frontchannel.mjs", &config, Duration::from_secs(150))
    });
    let (stdout, stderr) = (&run.stdout, &run.stderr);
    assert!(
        run.succeeded(),
        "the Chromium flow failed ({:?}):\n{stderr}\n--- profilegate ---\n{}\n--- OP ---\n{}",
        run.status,
        env.proxy.log(),
        env.op.stderr()
    );
    let report: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("no report ({e}): {stdout:?}\n{stderr}"));
    eprintln!("Chromium: {report}\n{stderr}");
    assert_eq!(report["before"], 200, "{report}");
    assert_eq!(report["framed_text"], "Signed out.", "{report}");
    assert_eq!(report["after"], 302, "{report}");
    assert!(
        report["after_location"]
            .as_str()
            .is_some_and(|l| l.starts_with(&env.op.issuer)),
        "{report}"
    );
    assert_eq!(report["foreign_frame_blocked"], true, "{report}");
}
