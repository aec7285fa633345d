//! What the tests look for in what the upstream received: the identity headers profilegate
//! injects, and the JWTs (the profile JWT it signs, the custom UI's token, the OP's tokens).

use std::process::Command;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

use super::{child, repo, Recorded};

/// Asserts the identity and forwarding headers the upstream got for alice (signed in at the
/// test OP) through the proxy on `proxy_port`, from a direct (untrusted) client: each exactly
/// once, with profilegate's values.
pub fn assert_alice_forwarded(seen: &Recorded, proxy_port: u16) {
    assert_eq!(seen.header_values("x-forwarded-user"), ["alice"]);
    assert_eq!(
        seen.header_values("x-forwarded-email"),
        ["alice@example.com"]
    );
    assert_eq!(seen.header_values("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(seen.header_values("x-forwarded-proto"), ["http"]);
    assert_eq!(
        seen.header_values("x-forwarded-host"),
        [format!("127.0.0.1:{proxy_port}")]
    );
}

/// A compact JWS's header and payload, decoded and not verified (the tests look at what the
/// signer put there).
pub fn jws_parts(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut decode = || -> Value {
        let part = parts.next().unwrap_or_else(|| panic!("not a JWS: {token}"));
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
    };
    (decode(), decode())
}

/// A compact JWS's payload, decoded and not verified.
pub fn jws_claims(token: &str) -> Value {
    jws_parts(token).1
}

/// Verifies a profile JWT as an upstream would (`tests/op/verify-jwt.mjs`, the `jose`
/// package): signature by a key of `jwks_url`, issuer `issuer`, audience `audience`. The
/// payload, or the verifier's complaint.
pub fn verify_profile_jwt(
    jwks_url: &str,
    issuer: &str,
    audience: &str,
    token: &str,
) -> Result<Value, String> {
    let out = child::output_within(
        Command::new("node")
            .arg(repo().join("tests/op/verify-jwt.mjs"))
            .arg(jwks_url)
            .arg(issuer)
            .arg(audience)
            .arg(token),
        "node tests/op/verify-jwt.mjs",
        child::COMMAND_LIMIT,
    )
    .expect("node runs");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).expect("payload json"))
}
