//! The test OP's own features that the end-to-end tests build on (`tests/op/server.js`): key
//! rotation, signed userinfo, and the token endpoint's client authentication methods. The tests
//! talk to the OP directly, as a relying party would, without profilegate in between.

mod support;

use profilegate::jwt::SigningKey;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::headers::jws_parts;
use support::*;

/// The OP's discovery document.
async fn discover(op: &TestOp) -> Value {
    http_client()
        .get(format!("{}/.well-known/openid-configuration", op.issuer))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("discovery JSON")
}

/// The `kid`s of the OP's JWKS, in order.
async fn jwks_kids(op: &TestOp) -> Vec<String> {
    let discovery = discover(op).await;
    let jwks: Value = http_client()
        .get(discovery["jwks_uri"].as_str().expect("jwks_uri"))
        .send()
        .await
        .expect("JWKS")
        .json()
        .await
        .expect("JWKS JSON");
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

/// The redirect URI the default client is registered with (nothing listens there: the sign-in
/// stops at the redirect).
fn redirect_uri(proxy_port: u16) -> String {
    format!("http://127.0.0.1:{proxy_port}/.profilegate/callback")
}

/// The OP's authorization URL for `client_id` (no PKCE: these OPs are started without it).
fn authorization_url(op: &TestOp, client_id: &str, redirect: &str) -> String {
    let mut url = url::Url::parse(&format!("{}/auth", op.issuer)).expect("url");
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid email profile")
        .append_pair("redirect_uri", redirect)
        .append_pair("state", "state-1")
        .append_pair("nonce", "nonce-1");
    url.into()
}

/// Signs in as alice from `op_url` (the authorization URL or a page after it); returns the code.
async fn code_from(browser: &Browser, op_url: String) -> String {
    let callback = browser.sign_in_from(op_url, "alice").await;
    query(&callback)
        .remove("code")
        .unwrap_or_else(|| panic!("no code in {callback}"))
}

/// A token request with the code grant; `auth` adds the client authentication.
async fn token_request(
    op: &TestOp,
    code: &str,
    redirect: &str,
    auth: impl FnOnce(reqwest::RequestBuilder, &mut Vec<(String, String)>) -> reqwest::RequestBuilder,
) -> (StatusCode, Value) {
    let endpoint = discover(op).await["token_endpoint"]
        .as_str()
        .expect("token_endpoint")
        .to_owned();
    let mut form = vec![
        ("grant_type".to_owned(), "authorization_code".to_owned()),
        ("code".to_owned(), code.to_owned()),
        ("redirect_uri".to_owned(), redirect.to_owned()),
    ];
    let request = auth(http_client().post(&endpoint), &mut form);
    let resp = request.form(&form).send().await.expect("token request");
    let status = resp.status();
    (status, resp.json().await.expect("token answer JSON"))
}

fn basic(
    request: reqwest::RequestBuilder,
    _: &mut Vec<(String, String)>,
) -> reqwest::RequestBuilder {
    request.basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_key_rotation_the_op_signs_with_the_new_key_and_still_lists_the_old_one() {
    let port = free_port();
    let op = TestOp::start(port, json!({ "pkce_required": false }));
    let before = jwks_kids(&op).await;
    assert_eq!(before.len(), 1, "{before:?}");

    // A sign-in started before the rotation finishes after it (sessions and interactions live
    // in oidc-provider's process-wide memory adapter, not in the replaced provider).
    let browser = Browser::new();
    let started = browser
        .client
        .get(authorization_url(&op, CLIENT_ID, &redirect_uri(port)))
        .send()
        .await
        .expect("authorization request");
    assert!(started.status().is_redirection(), "{}", op.stderr());
    let interaction = absolute(&op.issuer, &location(&started));

    let kid = op.rotate_signing_key().await;
    assert_ne!(kid, before[0]);
    // Both keys came from the files the harness made once for the run (when openssl is there
    // to make them), not from the OP.
    if support::op_keys::op_key_file(support::op_keys::OpKey::Rotation).is_some() {
        assert!(
            !op.stderr().contains("generating a 2048-bit RSA key"),
            "{}",
            op.stderr()
        );
    }
    assert_eq!(jwks_kids(&op).await, vec![kid.clone(), before[0].clone()]);

    let code = code_from(&browser, interaction).await;
    let (status, tokens) = token_request(&op, &code, &redirect_uri(port), basic).await;
    assert_eq!(status, StatusCode::OK, "{tokens}\n{}", op.stderr());
    let (header, claims) = jws_parts(tokens["id_token"].as_str().expect("id_token"));
    assert_eq!(header["kid"], json!(kid), "the ID token's signing key");
    assert_eq!(header["alg"], "RS256");
    assert_eq!(claims["sub"], "alice");

    // A second rotation adds a third key in front.
    let third = op.rotate_signing_key().await;
    assert_eq!(jwks_kids(&op).await, vec![third, kid, before[0].clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_registered_for_signed_userinfo_gets_a_jwt_from_userinfo() {
    let port = free_port();
    let op = TestOp::start(
        port,
        json!({
            "pkce_required": false,
            "jwt_userinfo": true,
            "clients": [{
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [redirect_uri(port)],
                "userinfo_signed_response_alg": "RS256",
            }],
        }),
    );
    let browser = Browser::new();
    let code = code_from(
        &browser,
        authorization_url(&op, CLIENT_ID, &redirect_uri(port)),
    )
    .await;
    let (status, tokens) = token_request(&op, &code, &redirect_uri(port), basic).await;
    assert_eq!(status, StatusCode::OK, "{tokens}\n{}", op.stderr());
    let userinfo = http_client()
        .get(
            discover(&op).await["userinfo_endpoint"]
                .as_str()
                .expect("userinfo_endpoint"),
        )
        .bearer_auth(tokens["access_token"].as_str().expect("access_token"))
        .send()
        .await
        .expect("userinfo");
    assert_eq!(userinfo.status(), StatusCode::OK, "{}", op.stderr());
    assert_eq!(
        userinfo
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/jwt; charset=utf-8")
    );
    let body = userinfo.text().await.expect("userinfo body");
    let (header, claims) = jws_parts(&body);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], json!(jwks_kids(&op).await[0]));
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["email"], "alice@example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_is_held_to_the_secret_method_it_is_registered_with() {
    let port = free_port();
    let op = TestOp::start(
        port,
        json!({
            "pkce_required": false,
            "clients": [{
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [redirect_uri(port)],
                "token_endpoint_auth_method": "client_secret_post",
            }, {
                "client_id": "basic-client",
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [redirect_uri(port)],
            }],
        }),
    );
    let browser = Browser::new();
    let url = authorization_url(&op, CLIENT_ID, &redirect_uri(port));

    let code = code_from(&browser, url.clone()).await;
    let (status, answer) = token_request(&op, &code, &redirect_uri(port), basic).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(answer["error"], "invalid_client");

    let code = code_from(&browser, url).await;
    let (status, tokens) = token_request(&op, &code, &redirect_uri(port), |r, form| {
        form.push(("client_id".to_owned(), CLIENT_ID.to_owned()));
        form.push(("client_secret".to_owned(), CLIENT_SECRET.to_owned()));
        r
    })
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}\n{}", op.stderr());
    assert!(tokens["id_token"].is_string());

    // And the other way round: a client_secret_basic client may not post its secret.
    let code = code_from(
        &browser,
        authorization_url(&op, "basic-client", &redirect_uri(port)),
    )
    .await;
    let (status, answer) = token_request(&op, &code, &redirect_uri(port), |r, form| {
        form.push(("client_id".to_owned(), "basic-client".to_owned()));
        form.push(("client_secret".to_owned(), CLIENT_SECRET.to_owned()));
        r
    })
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(answer["error"], "invalid_client");
}

/// A client assertion (RFC 7523) for `client_id` at `audience`, signed with `key` (ES256).
fn client_assertion(key: &SigningKey, audience: &str, jti: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    key.sign(&json!({
        "iss": CLIENT_ID, "sub": CLIENT_ID, "aud": audience, "jti": jti,
        "iat": now, "exp": now + 60,
    }))
    .expect("signed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_registered_for_private_key_jwt_must_sign_with_its_registered_key() {
    let key = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8().expect("key")).expect("key");
    let other = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8().expect("key")).expect("key");
    let jwks: Value = serde_json::from_str(key.jwks_json()).expect("JWKS");
    let port = free_port();
    let op = TestOp::start(
        port,
        json!({
            "pkce_required": false,
            "clients": [{
                "client_id": CLIENT_ID,
                "redirect_uris": [redirect_uri(port)],
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks": jwks,
            }],
        }),
    );
    let browser = Browser::new();
    let url = authorization_url(&op, CLIENT_ID, &redirect_uri(port));
    let assertion = |key: &SigningKey, jti: &str| {
        let assertion = client_assertion(key, &op.issuer, jti);
        move |r: reqwest::RequestBuilder, form: &mut Vec<(String, String)>| {
            form.push((
                "client_assertion_type".to_owned(),
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
            ));
            form.push(("client_assertion".to_owned(), assertion));
            r
        }
    };

    // A secret is no authentication for this client; neither is another key's signature.
    let code = code_from(&browser, url.clone()).await;
    let (status, answer) = token_request(&op, &code, &redirect_uri(port), basic).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    let code = code_from(&browser, url.clone()).await;
    let (status, answer) =
        token_request(&op, &code, &redirect_uri(port), assertion(&other, "jti-1")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(answer["error"], "invalid_client");

    let code = code_from(&browser, url).await;
    let (status, tokens) =
        token_request(&op, &code, &redirect_uri(port), assertion(&key, "jti-2")).await;
    assert_eq!(status, StatusCode::OK, "{tokens}\n{}", op.stderr());
    assert!(tokens["id_token"].is_string());
}
