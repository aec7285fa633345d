//! Signed tokens from the OP (ID tokens, signed userinfo) before the crate's claim checks:
//! which of the OP's keys signed a compact JWS. A `kid` names the key; without one, every key
//! of the algorithm's type is tried in turn (OpenID Connect Core §10.1 lets an OP omit the `kid`
//! when the choice is unambiguous, and some omit it anyway). Signed userinfo is verified here
//! completely, since the crate's userinfo verifier accepts RS256 only and insists on `iss`/`aud`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::CoreJwsSigningAlgorithm;
use openidconnect::{JsonWebKey, JsonWebKeySet};

use super::jwk::RingJsonWebKey;

/// How far in the future an ID token's `iat` may lie, and how long past its `exp` a signed
/// userinfo answer is still taken (clock skew).
pub const CLOCK_LEEWAY: u64 = 60;

/// Why no key of the OP verifies a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyProblem {
    #[error("not a signed JWT (compact JWS)")]
    Malformed,
    #[error("algorithm {0} is not allowed (oidc.signing_algs)")]
    DisallowedAlg(String),
    /// No key of the set has this id (or, without an id, the algorithm's type): the OP may
    /// have rotated its keys, so the set is worth fetching again.
    #[error("no key {} for {alg} in the OP's key set", kid.as_deref().map(|k| format!("with id {k:?}")).unwrap_or_else(|| "that verifies the signature (the token has no kid)".into()))]
    NoKey { kid: Option<String>, alg: String },
    #[error("the key named by the token's kid is not a key for {0}")]
    WrongKeyType(String),
    #[error("bad signature")]
    BadSignature,
}

impl KeyProblem {
    /// True when fetching the OP's key set again might help.
    pub fn wants_refetch(&self) -> bool {
        matches!(self, Self::NoKey { .. })
    }

    /// The key id to count the re-fetch against (`""` for a token without one).
    pub fn kid(&self) -> &str {
        match self {
            Self::NoKey { kid: Some(k), .. } => k,
            _ => "",
        }
    }
}

/// A compact JWS split into its parts, the header read.
pub struct Jws<'a> {
    pub alg: CoreJwsSigningAlgorithm,
    alg_name: String,
    pub kid: Option<String>,
    signing_input: &'a str,
    payload: &'a str,
    signature: Vec<u8>,
}

impl<'a> Jws<'a> {
    /// Splits `token` and reads its header; `algs` are the algorithms allowed to sign it.
    pub fn parse(token: &'a str, algs: &[CoreJwsSigningAlgorithm]) -> Result<Self, KeyProblem> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(KeyProblem::Malformed);
        };
        let header: serde_json::Value = URL_SAFE_NO_PAD
            .decode(header)
            .ok()
            .and_then(|raw| serde_json::from_slice(&raw).ok())
            .ok_or(KeyProblem::Malformed)?;
        // A `crit` header names extensions this verifier does not understand (RFC 7515 §4.1.11).
        if header.get("crit").is_some() {
            return Err(KeyProblem::Malformed);
        }
        let alg_name = header
            .get("alg")
            .and_then(|a| a.as_str())
            .ok_or(KeyProblem::Malformed)?
            .to_owned();
        let alg: CoreJwsSigningAlgorithm =
            serde_json::from_value(serde_json::Value::String(alg_name.clone()))
                .map_err(|_| KeyProblem::DisallowedAlg(alg_name.clone()))?;
        if !algs.contains(&alg) {
            return Err(KeyProblem::DisallowedAlg(alg_name));
        }
        let kid = match header.get("kid") {
            None => None,
            Some(serde_json::Value::String(k)) => Some(k.clone()),
            Some(_) => return Err(KeyProblem::Malformed),
        };
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| KeyProblem::Malformed)?;
        let signing_input =
            &token[..token.len() - token.rsplit('.').next().map_or(0, str::len) - 1];
        Ok(Self {
            alg,
            alg_name,
            kid,
            signing_input,
            payload,
            signature,
        })
    }

    /// The key of `jwks` that signed this token: the one with its `kid`, or, without a `kid`,
    /// the first key of the algorithm's type whose signature check passes.
    pub fn signing_key<'k>(
        &self,
        jwks: &'k JsonWebKeySet<RingJsonWebKey>,
    ) -> Result<&'k RingJsonWebKey, KeyProblem> {
        let named: Vec<&RingJsonWebKey> = jwks
            .keys()
            .iter()
            .filter(|key| match &self.kid {
                Some(kid) => key.key_id().is_some_and(|id| id.as_str() == kid),
                None => true,
            })
            .collect();
        let known_kid = self.kid.is_some() && !named.is_empty();
        let candidates: Vec<&RingJsonWebKey> = named
            .into_iter()
            .filter(|key| key.compatible_with(&self.alg))
            .collect();
        if candidates.is_empty() {
            // A kid the set has, for another algorithm: a forgery, not a rotation.
            if known_kid {
                return Err(KeyProblem::WrongKeyType(self.alg_name.clone()));
            }
            return Err(KeyProblem::NoKey {
                kid: self.kid.clone(),
                alg: self.alg_name.clone(),
            });
        }
        candidates
            .into_iter()
            .find(|key| {
                key.verify_signature(&self.alg, self.signing_input.as_bytes(), &self.signature)
                    .is_ok()
            })
            .ok_or_else(|| match &self.kid {
                // The key its kid names did not sign it: forged.
                Some(_) => KeyProblem::BadSignature,
                // Without a kid, none of the keys of its type: perhaps a key the OP has just
                // rotated in, as for an unknown kid.
                None => KeyProblem::NoKey {
                    kid: None,
                    alg: self.alg_name.clone(),
                },
            })
    }

    /// The payload, once [`Self::signing_key`] has found the key that signed it.
    pub fn claims(&self) -> Result<serde_json::Map<String, serde_json::Value>, KeyProblem> {
        URL_SAFE_NO_PAD
            .decode(self.payload)
            .ok()
            .and_then(|raw| serde_json::from_slice(&raw).ok())
            .ok_or(KeyProblem::Malformed)
    }
}

/// A key set holding just `key`: the crate's ID-token verifier then checks the claims with the
/// key found here (and the signature once more, with the same primitive).
pub fn only(key: &RingJsonWebKey) -> JsonWebKeySet<RingJsonWebKey> {
    JsonWebKeySet::new(vec![key.clone()])
}

/// Why a userinfo answer's claims are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserinfoProblem {
    #[error("signed userinfo: {0}")]
    Key(#[from] KeyProblem),
    #[error("userinfo has no sub")]
    NoSubject,
    #[error("userinfo is for another subject than the ID token")]
    OtherSubject,
    #[error("signed userinfo names issuer {found:?}, not the configured {expected:?}")]
    OtherIssuer { found: String, expected: String },
    #[error("signed userinfo is addressed to another client (aud)")]
    OtherAudience,
    #[error("signed userinfo has expired")]
    Expired,
}

/// Checks the claims of a userinfo answer (Core §5.3.2, §5.3.4): `sub` equals the ID token's;
/// for a signed answer, `iss` and `aud` when present (SHOULD, not MUST) name the issuer and
/// this client exactly, and an `exp`, when present, is not past.
pub fn check_userinfo(
    claims: &serde_json::Map<String, serde_json::Value>,
    signed: bool,
    subject: &str,
    issuer: &str,
    client_id: &str,
    now: u64,
) -> Result<(), UserinfoProblem> {
    match claims.get("sub").and_then(|s| s.as_str()) {
        None => return Err(UserinfoProblem::NoSubject),
        Some(sub) if sub != subject => return Err(UserinfoProblem::OtherSubject),
        Some(_) => {}
    }
    if !signed {
        return Ok(());
    }
    if let Some(iss) = claims.get("iss") {
        if iss.as_str() != Some(issuer) {
            return Err(UserinfoProblem::OtherIssuer {
                found: iss.as_str().map_or_else(|| iss.to_string(), str::to_owned),
                expected: issuer.to_owned(),
            });
        }
    }
    match claims.get("aud") {
        None => {}
        Some(serde_json::Value::String(aud)) if aud == client_id => {}
        Some(serde_json::Value::Array(auds))
            if auds.iter().any(|a| a.as_str() == Some(client_id)) => {}
        Some(_) => return Err(UserinfoProblem::OtherAudience),
    }
    if let Some(exp) = claims.get("exp") {
        if exp.as_u64().is_none_or(|exp| exp + CLOCK_LEEWAY < now) {
            return Err(UserinfoProblem::Expired);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    use serde_json::json;

    struct Key {
        pair: EcdsaKeyPair,
        kid: Option<&'static str>,
    }

    impl Key {
        fn new(kid: Option<&'static str>) -> Self {
            let rng = SystemRandom::new();
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                    .expect("pair");
            Self { pair, kid }
        }

        fn jwk(&self) -> serde_json::Value {
            let p = self.pair.public_key().as_ref();
            let mut jwk = json!({
                "kty": "EC", "crv": "P-256", "use": "sig",
                "x": URL_SAFE_NO_PAD.encode(&p[1..33]), "y": URL_SAFE_NO_PAD.encode(&p[33..]),
            });
            if let Some(kid) = self.kid {
                jwk["kid"] = json!(kid);
            }
            jwk
        }

        fn sign(&self, header: serde_json::Value, claims: serde_json::Value) -> String {
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let sig = self
                .pair
                .sign(&SystemRandom::new(), input.as_bytes())
                .expect("sign");
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
        }
    }

    fn set(keys: &[&Key]) -> JsonWebKeySet<RingJsonWebKey> {
        serde_json::from_value(json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() }))
            .expect("jwks")
    }

    const ES256: CoreJwsSigningAlgorithm = CoreJwsSigningAlgorithm::EcdsaP256Sha256;

    fn kid_of(key: &RingJsonWebKey) -> Option<&str> {
        key.key_id().map(|k| k.as_str())
    }

    #[test]
    fn the_kid_names_the_key() {
        let (a, b) = (Key::new(Some("a")), Key::new(Some("b")));
        let jwks = set(&[&a, &b]);
        let token = b.sign(json!({"alg": "ES256", "kid": "b"}), json!({"sub": "x"}));
        let jws = Jws::parse(&token, &[ES256]).expect("parse");
        assert_eq!(kid_of(jws.signing_key(&jwks).expect("key")), Some("b"));
        assert_eq!(jws.claims().expect("claims")["sub"], "x");
    }

    #[test]
    fn without_a_kid_each_key_of_the_type_is_tried() {
        let (a, b) = (Key::new(Some("a")), Key::new(None));
        let jwks = set(&[&a, &b]);
        let token = b.sign(json!({"alg": "ES256"}), json!({"sub": "x"}));
        let jws = Jws::parse(&token, &[ES256]).expect("parse");
        let key = jws.signing_key(&jwks).expect("the second key verifies");
        assert_eq!(kid_of(key), None);
        // Signed by neither: maybe a key rotated in since, so worth one look at the OP.
        let stranger = Key::new(None).sign(json!({"alg": "ES256"}), json!({"sub": "x"}));
        let jws = Jws::parse(&stranger, &[ES256]).expect("parse");
        let problem = jws.signing_key(&jwks).expect_err("no key");
        assert!(problem.wants_refetch());
        assert_eq!(problem.kid(), "");
    }

    #[test]
    fn an_unknown_kid_asks_for_a_refetch_and_a_wrong_signature_does_not() {
        let a = Key::new(Some("a"));
        let jwks = set(&[&a]);
        let token = Key::new(Some("new")).sign(json!({"alg": "ES256", "kid": "new"}), json!({}));
        let problem = Jws::parse(&token, &[ES256])
            .and_then(|j| j.signing_key(&jwks).map(|_| ()))
            .expect_err("unknown");
        assert!(problem.wants_refetch());
        assert_eq!(problem.kid(), "new");
        // The known kid with another key's signature: forged, nothing to fetch.
        let forged = Key::new(Some("a")).sign(json!({"alg": "ES256", "kid": "a"}), json!({}));
        let problem = Jws::parse(&forged, &[ES256])
            .and_then(|j| j.signing_key(&jwks).map(|_| ()))
            .expect_err("forged");
        assert_eq!(problem, KeyProblem::BadSignature);
        assert!(!problem.wants_refetch());
        // The known kid over another algorithm's type: forged too.
        let rs256 = CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256;
        let token = a.sign(json!({"alg": "RS256", "kid": "a"}), json!({}));
        let problem = Jws::parse(&token, &[rs256])
            .and_then(|j| j.signing_key(&jwks).map(|_| ()))
            .expect_err("wrong type");
        assert_eq!(problem, KeyProblem::WrongKeyType("RS256".into()));
        assert!(!problem.wants_refetch());
    }

    #[test]
    fn disallowed_and_malformed_headers_are_refused() {
        let a = Key::new(Some("a"));
        for (token, want) in [
            (
                a.sign(json!({"alg": "ES256"}), json!({})),
                KeyProblem::DisallowedAlg("ES256".into()),
            ),
            (
                a.sign(json!({"alg": "none"}), json!({})),
                KeyProblem::DisallowedAlg("none".into()),
            ),
            (
                a.sign(json!({"alg": "HS256"}), json!({})),
                KeyProblem::DisallowedAlg("HS256".into()),
            ),
            (
                a.sign(json!({"alg": "ES256", "crit": ["x"]}), json!({})),
                KeyProblem::Malformed,
            ),
            ("a.b".to_owned(), KeyProblem::Malformed),
            ("a.b.c.d".to_owned(), KeyProblem::Malformed),
        ] {
            let algs = [CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256];
            assert_eq!(Jws::parse(&token, &algs).err(), Some(want), "{token}");
        }
    }

    #[test]
    fn userinfo_claims_are_checked_as_core_5_3_says() {
        let ok = |c: serde_json::Value, signed| {
            check_userinfo(
                c.as_object().expect("object"),
                signed,
                "alice",
                "https://op.example/",
                "client",
                1_000,
            )
        };
        assert_eq!(ok(json!({"sub": "alice"}), false), Ok(()));
        assert_eq!(
            ok(json!({"sub": "alice"}), true),
            Ok(()),
            "iss/aud may be absent"
        );
        assert_eq!(
            ok(
                json!({"sub": "alice", "iss": "https://op.example/", "aud": ["x", "client"]}),
                true
            ),
            Ok(())
        );
        assert_eq!(
            ok(json!({"sub": "bob"}), false),
            Err(UserinfoProblem::OtherSubject)
        );
        assert_eq!(ok(json!({}), true), Err(UserinfoProblem::NoSubject));
        assert!(matches!(
            ok(json!({"sub": "alice", "iss": "https://op.example"}), true),
            Err(UserinfoProblem::OtherIssuer { .. })
        ));
        assert_eq!(
            ok(json!({"sub": "alice", "aud": "other"}), true),
            Err(UserinfoProblem::OtherAudience)
        );
        assert_eq!(
            ok(json!({"sub": "alice", "exp": 10}), true),
            Err(UserinfoProblem::Expired)
        );
    }
}
