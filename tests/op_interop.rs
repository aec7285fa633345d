//! profilegate against the real test OP (oidc-provider, OpenID Certified) configured the way
//! other deployments configure theirs: a signing key rotated right after profilegate started
//! (the OpenID Foundation's RP test `rp-key-rotation-op-sign-key`), userinfo answered as a
//! signed JWT, and clients registered for `client_secret_post` or `private_key_jwt`.

mod support;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use reqwest::StatusCode;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};
use support::*;

/// The default client of [`TestOp::start`], with `extra` metadata merged in.
fn client(port: u16, extra: Value) -> Value {
    let public = format!("http://127.0.0.1:{port}");
    let mut c = json!({
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uris": [format!("{public}/.profilegate/callback")],
        "post_logout_redirect_uris": [format!("{public}/.profilegate/signed-out")],
    });
    if let (Some(c), Some(e)) = (c.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            c.insert(k.clone(), v.clone());
        }
    }
    c
}

/// Signs in as alice at `/app` and asserts the upstream received her, e-mail included (read
/// from userinfo: the OP's ID token carries only `sub`).
async fn assert_signs_in(proxy: &Proxy, op: &TestOp, upstream: &EchoUpstream, case: &str) {
    let browser = Browser::new();
    let done = browser.login(&proxy.url("/app"), "alice").await;
    let status = done.status();
    let body = done.text().await.unwrap_or_default();
    assert_eq!(
        status,
        StatusCode::FOUND,
        "{case}: {body}\nproxy log:\n{}\nOP:\n{}",
        proxy.log(),
        op.stderr()
    );
    let page = browser.navigate(&proxy.url("/app")).await;
    assert_eq!(page.status(), StatusCode::OK, "{case}");
    let seen = upstream.last();
    assert_eq!(seen.header("x-forwarded-user"), Some("alice"), "{case}");
    assert_eq!(
        seen.header("x-forwarded-email"),
        Some("alice@example.com"),
        "{case}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotated_right_after_start_up_signs_in_with_no_wait() {
    let env = TestEnv::start().await;
    // profilegate has discovered the OP (and its key set); the OP rotates at once.
    let kid = env.op.rotate_signing_key().await;
    assert_signs_in(&env.proxy, &env.op, &env.upstream, "rotated key").await;
    let log = env.proxy.log();
    assert!(
        log.contains("JWKS re-fetched for an unknown key id") && log.contains(&kid),
        "the new kid was looked up:\n{log}"
    );
    // A second rotation, again with no wait: a new kid is looked up whenever the last fetch was.
    let second = env.op.rotate_signing_key().await;
    assert_ne!(second, kid);
    assert_signs_in(&env.proxy, &env.op, &env.upstream, "rotated twice").await;
    assert!(env.proxy.log().contains(&second));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_userinfo_from_the_op_is_verified_and_used() {
    let (listener, port) = bind_gate();
    let op = TestOp::start(
        port,
        json!({
            "jwt_userinfo": true,
            "clients": [client(port, json!({ "userinfo_signed_response_alg": "RS256" }))],
        }),
    );
    let upstream = EchoUpstream::start().await;
    let proxy = start_gate(listener, &op.issuer, &upstream.url(), "", true).await;
    assert_signs_in(&proxy, &op, &upstream, "signed userinfo").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_registered_for_client_secret_post_works_once_configured() {
    let port = free_port();
    let op = TestOp::start(
        port,
        json!({
            "clients": [client(port, json!({ "token_endpoint_auth_method": "client_secret_post" }))],
        }),
    );
    let upstream = EchoUpstream::start().await;
    // The OP lists client_secret_basic first, so that is profilegate's default: refused, and
    // the log says what to change.
    let mut proxy = start_proxy(port, &op.issuer, &upstream.url(), "", true).await;
    let browser = Browser::new();
    let refused = browser.login(&proxy.url("/app"), "alice").await;
    assert_eq!(refused.status(), StatusCode::BAD_GATEWAY);
    let log = proxy.log();
    assert!(
        log.contains("invalid_client") && log.contains("token_endpoint_auth client_secret_basic"),
        "{log}"
    );
    assert_eq!(upstream.count(), 0);

    let config = std::fs::read_to_string(&proxy.config_path).expect("config");
    let config = config.replacen(
        "[oidc]\n",
        "[oidc]\ntoken_endpoint_auth = \"client_secret_post\"\n",
        1,
    );
    std::fs::write(&proxy.config_path, config).expect("config");
    proxy.restart().await;
    assert_signs_in(&proxy, &op, &upstream, "client_secret_post").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_registered_for_private_key_jwt_signs_in_without_a_secret() {
    let rng = SystemRandom::new();
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("P-256 key");
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .expect("pair");
    let point = pair.public_key().as_ref();
    let public = json!({
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": "profilegate-1",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    });
    let port = free_port();
    let mut registered = client(
        port,
        json!({
            "token_endpoint_auth_method": "private_key_jwt",
            "token_endpoint_auth_signing_alg": "ES256",
            "jwks": { "keys": [public] },
        }),
    );
    registered
        .as_object_mut()
        .map(|c| c.remove("client_secret"));
    let op = TestOp::start(port, json!({ "clients": [registered] }));
    let upstream = EchoUpstream::start().await;
    let mut proxy = start_proxy(port, &op.issuer, &upstream.url(), "", true).await;

    let key_file = proxy.dir.path().join("client-key.pem");
    std::fs::write(
        &key_file,
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(pkcs8.as_ref())
        ),
    )
    .expect("key file");
    let config = std::fs::read_to_string(&proxy.config_path).expect("config");
    let config = config
        .replacen(
            "[oidc]\n",
            &format!(
                "[oidc]\ntoken_endpoint_auth = \"private_key_jwt\"\nclient_key_file = {:?}\nclient_key_id = \"profilegate-1\"\n",
                key_file.display().to_string()
            ),
            1,
        )
        .replace(&format!("client_secret = \"{CLIENT_SECRET}\"\n"), "");
    assert!(!config.contains("client_secret"), "no secret configured");
    std::fs::write(&proxy.config_path, config).expect("config");
    proxy.restart().await;
    assert_signs_in(&proxy, &op, &upstream, "private_key_jwt").await;
    assert!(
        proxy
            .log()
            .contains("\"token_endpoint_auth\":\"private_key_jwt\""),
        "{}",
        proxy.log()
    );
}
