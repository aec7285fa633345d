//! The signed profile JWT (`X-Profile-Jwt`): ES256 with a key from `upstream.jwt_key_file` or,
//! when none is configured, one generated once and kept in the store. Its public key is served
//! as a JWKS at `/.profilegate/jwks.json` so the upstream can verify what it receives.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

/// Why a signing key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not a PEM private key (expected -----BEGIN PRIVATE KEY-----, PKCS#8)")]
    NotPem,
    #[error("not a PKCS#8 EC P-256 private key ({0}); create one with: openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256")]
    Unsupported(String),
    #[error("cannot generate a key: {0}")]
    Generate(String),
}

/// Why a token presented back to profilegate was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("not signed by this proxy's key (algorithm or key id)")]
    WrongKey,
    #[error("bad signature")]
    BadSignature,
}

/// The DER bytes of a PEM `PRIVATE KEY` (PKCS#8) block; `None` when there is none.
pub fn pkcs8_der(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN PRIVATE KEY-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .map(str::trim)
        .collect();
    if body.is_empty() {
        return None;
    }
    STANDARD.decode(body).ok()
}

/// The proxy's signing key with its key id and public JWK.
pub struct SigningKey {
    pair: EcdsaKeyPair,
    public: Vec<u8>,
    rng: SystemRandom,
    kid: String,
    jwks: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh PKCS#8 document for a new P-256 key (to be kept in the store).
    pub fn generate_pkcs8() -> Result<Vec<u8>, KeyError> {
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map(|doc| doc.as_ref().to_vec())
            .map_err(|e| KeyError::Generate(e.to_string()))
    }

    /// Parses a PEM `PRIVATE KEY` (PKCS#8).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        Self::from_pkcs8(&pkcs8_der(pem).ok_or(KeyError::NotPem)?)
    }

    pub fn from_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
            .map_err(|e| KeyError::Unsupported(e.to_string()))?;
        // Uncompressed SEC1 point: 0x04 || x (32 bytes) || y (32 bytes).
        let point = pair.public_key().as_ref();
        let (x, y) = (
            URL_SAFE_NO_PAD.encode(&point[1..33]),
            URL_SAFE_NO_PAD.encode(&point[33..65]),
        );
        // RFC 7638 thumbprint: SHA-256 of the required members in lexicographic order.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA256,
            canonical.as_bytes(),
        ));
        let jwks = serde_json::json!({
            "keys": [{ "kty": "EC", "crv": "P-256", "x": x, "y": y, "use": "sig", "alg": "ES256", "kid": kid }]
        })
        .to_string();
        let public = point.to_vec();
        Ok(Self {
            pair,
            public,
            rng,
            kid,
            jwks,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWKS document served at `/.profilegate/jwks.json`.
    pub fn jwks_json(&self) -> &str {
        &self.jwks
    }

    /// Signs `claims` as a compact JWS (ES256).
    pub fn sign(&self, claims: &serde_json::Value) -> Result<String, KeyError> {
        let header = serde_json::json!({ "alg": "ES256", "typ": "JWT", "kid": self.kid });
        let mut token = URL_SAFE_NO_PAD.encode(header.to_string());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let sig = self
            .pair
            .sign(&self.rng, token.as_bytes())
            .map_err(|e| KeyError::Generate(e.to_string()))?;
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(sig.as_ref()));
        Ok(token)
    }
}

impl SigningKey {
    /// Verifies a compact JWS signed with this key (ES256, this `kid`) and returns its claims.
    /// Expiry, audience and the rest are the caller's to check.
    pub fn verify(&self, token: &str) -> Result<serde_json::Value, TokenError> {
        use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
        if token.len() > 64 * 1024 {
            return Err(TokenError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let decode = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| TokenError::Malformed)
        };
        let header: serde_json::Value =
            serde_json::from_slice(&decode(h)?).map_err(|_| TokenError::Malformed)?;
        if header["alg"] != "ES256" || header["kid"] != self.kid.as_str() {
            return Err(TokenError::WrongKey);
        }
        let signed_len = h.len() + 1 + p.len();
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.public)
            .verify(&token.as_bytes()[..signed_len], &decode(sig)?)
            .map_err(|_| TokenError::BadSignature)?;
        serde_json::from_slice(&decode(p)?).map_err(|_| TokenError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};

    #[test]
    fn signed_tokens_verify_with_the_published_key() {
        let key = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8().expect("gen")).expect("key");
        let token = key
            .sign(&serde_json::json!({ "sub": "alice" }))
            .expect("sign");
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("b64")).expect("json");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], key.kid());

        let jwks: serde_json::Value = serde_json::from_str(key.jwks_json()).expect("jwks");
        let jwk = &jwks["keys"][0];
        let mut point = vec![4u8];
        point.extend(
            URL_SAFE_NO_PAD
                .decode(jwk["x"].as_str().expect("x"))
                .expect("x"),
        );
        point.extend(
            URL_SAFE_NO_PAD
                .decode(jwk["y"].as_str().expect("y"))
                .expect("y"),
        );
        let signed = format!("{}.{}", parts[0], parts[1]);
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).expect("sig");
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
            .verify(signed.as_bytes(), &sig)
            .expect("signature verifies");
        let mut tampered = signed.into_bytes();
        tampered[5] ^= 1;
        assert!(UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
            .verify(&tampered, &sig)
            .is_err());
    }

    #[test]
    fn verify_accepts_own_tokens_only() {
        let key = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8().expect("gen")).expect("key");
        let other =
            SigningKey::from_pkcs8(&SigningKey::generate_pkcs8().expect("gen")).expect("key");
        let token = key
            .sign(&serde_json::json!({ "state": "s" }))
            .expect("sign");
        assert_eq!(key.verify(&token).expect("valid")["state"], "s");
        assert_eq!(other.verify(&token), Err(TokenError::WrongKey));
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(r#"{"state":"evil"}"#);
        assert_eq!(key.verify(&parts.join(".")), Err(TokenError::BadSignature));
        let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
        let unsigned = format!("{none_header}.{}.", parts[1]);
        assert_eq!(key.verify(&unsigned), Err(TokenError::WrongKey));
        assert_eq!(key.verify("a.b"), Err(TokenError::Malformed));
    }

    #[test]
    fn pem_keys_are_read_and_garbage_is_refused() {
        let der = SigningKey::generate_pkcs8().expect("gen");
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(&der)
        );
        let a = SigningKey::from_pem(&pem).expect("pem");
        let b = SigningKey::from_pkcs8(&der).expect("der");
        assert_eq!(a.kid(), b.kid(), "same key, same kid");
        assert!(matches!(
            SigningKey::from_pem("hello"),
            Err(KeyError::NotPem)
        ));
        let bad = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----";
        assert!(matches!(
            SigningKey::from_pem(bad),
            Err(KeyError::Unsupported(_))
        ));
    }
}
