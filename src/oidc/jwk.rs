//! The OP's public keys as openidconnect sees them, with signatures checked by ring.
//!
//! openidconnect's own [`CoreJsonWebKey`] verifies RSA signatures with the pure-Rust `rsa`
//! crate, which takes about a quarter of a millisecond per ID token: the largest single cost of
//! a login. [`RingJsonWebKey`] is the same key (parsed, checked and serialized by the crate's
//! type) with the public key decoded once, when the JWKS is read, and RS256/384/512 and
//! ES256/384 signatures checked by ring. Every other algorithm, and RSA moduli outside the
//! 2048–4096 bits both libraries accept, go to the crate's implementation unchanged. The key
//! selection and every claim check stay the crate's; only the signature primitive changes.

use openidconnect::core::{CoreJsonWebKey, CoreJwsSigningAlgorithm};
use openidconnect::{
    JsonWebKey, JsonWebKeyAlgorithm, JsonWebKeyId, JsonWebKeyUse, JwsSigningAlgorithm,
    SignatureVerificationError,
};
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The RSA moduli sizes, in bits, that both ring and the `rsa` crate verify: outside this
/// range the crate decides, as before.
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=4096;

/// A JWK from the OP's key set: the crate's key plus its public key ready for ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingJsonWebKey {
    core: CoreJsonWebKey,
    public: Option<PublicKey>,
}

/// A public key decoded for ring.
#[derive(Clone, Debug, PartialEq, Eq)]
enum PublicKey {
    /// Modulus and exponent, big-endian, without leading zero bytes.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// An uncompressed point (`04 || x || y`) on P-256.
    P256(Vec<u8>),
    /// An uncompressed point (`04 || x || y`) on P-384.
    P384(Vec<u8>),
}

impl RingJsonWebKey {
    fn new(core: CoreJsonWebKey) -> Self {
        let public = decode_public(&core);
        Self { core, public }
    }

    /// True when this key may verify `alg` signatures (use, type and `alg` member allow it).
    pub fn compatible_with(&self, alg: &CoreJwsSigningAlgorithm) -> bool {
        check_compatible(&self.core, alg).is_ok()
    }
}

/// The key's public parts, read back from its JSON form (the crate keeps its fields private).
fn decode_public(core: &CoreJsonWebKey) -> Option<PublicKey> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let json = serde_json::to_value(core).ok()?;
    let field = |name: &str| -> Option<Vec<u8>> {
        let text = json.get(name)?.as_str()?;
        URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()
    };
    match json.get("kty")?.as_str()? {
        "RSA" => {
            let n = strip_zeros(field("n")?);
            let e = strip_zeros(field("e")?);
            let bits = n.len() * 8 - n.first()?.leading_zeros() as usize;
            (RSA_BITS.contains(&bits) && !e.is_empty()).then_some(PublicKey::Rsa { n, e })
        }
        "EC" => {
            let (x, y) = (field("x")?, field("y")?);
            let (size, key): (usize, fn(Vec<u8>) -> PublicKey) = match json.get("crv")?.as_str()? {
                "P-256" => (32, PublicKey::P256),
                "P-384" => (48, PublicKey::P384),
                _ => return None,
            };
            if x.len() != size || y.len() != size {
                return None;
            }
            let mut point = Vec::with_capacity(1 + 2 * size);
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            Some(key(point))
        }
        _ => None,
    }
}

fn strip_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.drain(..zeros);
    bytes
}

/// The checks openidconnect makes before it verifies with a key (its `check_key_compatibility`,
/// which is private): a signing key, of the algorithm's type, allowed that algorithm.
fn check_compatible(
    key: &CoreJsonWebKey,
    alg: &CoreJwsSigningAlgorithm,
) -> Result<(), SignatureVerificationError> {
    let refuse = |why: &str| Err(SignatureVerificationError::InvalidKey(why.to_owned()));
    if key.key_use().is_some_and(|u| !u.allows_signature()) {
        return refuse("key usage not permitted for digital signatures");
    }
    if alg.key_type().as_ref() != Some(key.key_type()) {
        return refuse("key type does not match signature algorithm");
    }
    match key.signing_alg() {
        JsonWebKeyAlgorithm::Unspecified => Ok(()),
        JsonWebKeyAlgorithm::Algorithm(a) if a == alg => Ok(()),
        JsonWebKeyAlgorithm::Algorithm(_) => refuse("incompatible key algorithm"),
        JsonWebKeyAlgorithm::Unsupported => refuse("key algorithm is not a signing algorithm"),
    }
}

impl JsonWebKey for RingJsonWebKey {
    type KeyUse = <CoreJsonWebKey as JsonWebKey>::KeyUse;
    type SigningAlgorithm = CoreJwsSigningAlgorithm;

    fn key_id(&self) -> Option<&JsonWebKeyId> {
        self.core.key_id()
    }

    fn key_type(&self) -> &<CoreJwsSigningAlgorithm as JwsSigningAlgorithm>::KeyType {
        self.core.key_type()
    }

    fn key_use(&self) -> Option<&Self::KeyUse> {
        self.core.key_use()
    }

    fn signing_alg(&self) -> JsonWebKeyAlgorithm<&CoreJwsSigningAlgorithm> {
        self.core.signing_alg()
    }

    fn new_symmetric(key: Vec<u8>) -> Self {
        Self::new(CoreJsonWebKey::new_symmetric(key))
    }

    fn verify_signature(
        &self,
        alg: &CoreJwsSigningAlgorithm,
        message: &[u8],
        sig: &[u8],
    ) -> Result<(), SignatureVerificationError> {
        use CoreJwsSigningAlgorithm as A;
        let bad = || SignatureVerificationError::CryptoError("bad signature".to_owned());
        match (alg, &self.public) {
            (
                A::RsaSsaPkcs1V15Sha256 | A::RsaSsaPkcs1V15Sha384 | A::RsaSsaPkcs1V15Sha512,
                Some(PublicKey::Rsa { n, e }),
            ) => {
                check_compatible(&self.core, alg)?;
                let params = match alg {
                    A::RsaSsaPkcs1V15Sha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                    A::RsaSsaPkcs1V15Sha384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    _ => &signature::RSA_PKCS1_2048_8192_SHA512,
                };
                RsaPublicKeyComponents { n, e }
                    .verify(params, message, sig)
                    .map_err(|_| bad())
            }
            (A::EcdsaP256Sha256, Some(PublicKey::P256(point)))
            | (A::EcdsaP384Sha384, Some(PublicKey::P384(point))) => {
                check_compatible(&self.core, alg)?;
                let params = match alg {
                    A::EcdsaP256Sha256 => &signature::ECDSA_P256_SHA256_FIXED,
                    _ => &signature::ECDSA_P384_SHA384_FIXED,
                };
                UnparsedPublicKey::new(params, point)
                    .verify(message, sig)
                    .map_err(|_| bad())
            }
            // Anything else (HMAC, PSS, EdDSA, a curve that does not match, odd key sizes):
            // exactly what openidconnect does.
            _ => self.core.verify_signature(alg, message, sig),
        }
    }

    fn hash_bytes(&self, bytes: &[u8], alg: &CoreJwsSigningAlgorithm) -> Result<Vec<u8>, String> {
        self.core.hash_bytes(bytes, alg)
    }
}

impl Serialize for RingJsonWebKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.core.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RingJsonWebKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        CoreJsonWebKey::deserialize(deserializer).map(Self::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair};

    fn p256_pair() -> (EcdsaKeyPair, RingJsonWebKey) {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("key");
        let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("pair");
        let point = pair.public_key().as_ref();
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "kid": "k1",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..]),
        });
        (pair, serde_json::from_value(jwk).expect("jwk"))
    }

    #[test]
    fn ec_key_is_decoded_for_ring_and_verifies_only_its_signatures() {
        let (pair, key) = p256_pair();
        assert!(matches!(key.public, Some(PublicKey::P256(_))));
        let rng = SystemRandom::new();
        let sig = pair.sign(&rng, b"message").expect("sign");
        let es256 = CoreJwsSigningAlgorithm::EcdsaP256Sha256;
        assert!(key
            .verify_signature(&es256, b"message", sig.as_ref())
            .is_ok());
        assert!(key
            .verify_signature(&es256, b"massage", sig.as_ref())
            .is_err());
        // The wrong algorithm for this key is refused, as by the crate.
        let rs256 = CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256;
        assert!(key
            .verify_signature(&rs256, b"message", sig.as_ref())
            .is_err());
    }

    #[test]
    fn a_key_for_encryption_is_refused_for_signatures() {
        let (pair, key) = p256_pair();
        let mut json = serde_json::to_value(&key).expect("json");
        json["use"] = "enc".into();
        let key: RingJsonWebKey = serde_json::from_value(json).expect("jwk");
        let sig = pair.sign(&SystemRandom::new(), b"m").expect("sign");
        let es256 = CoreJwsSigningAlgorithm::EcdsaP256Sha256;
        assert!(matches!(
            key.verify_signature(&es256, b"m", sig.as_ref()),
            Err(SignatureVerificationError::InvalidKey(_))
        ));
    }

    #[test]
    fn a_key_bound_to_another_algorithm_is_refused() {
        let (pair, key) = p256_pair();
        let mut json = serde_json::to_value(&key).expect("json");
        json["alg"] = "ES384".into();
        let key: RingJsonWebKey = serde_json::from_value(json).expect("jwk");
        let sig = pair.sign(&SystemRandom::new(), b"m").expect("sign");
        let es256 = CoreJwsSigningAlgorithm::EcdsaP256Sha256;
        assert!(key.verify_signature(&es256, b"m", sig.as_ref()).is_err());
    }

    #[test]
    fn small_rsa_keys_are_left_to_the_crate() {
        // A 1024-bit modulus: ring refuses it, so the crate's implementation decides.
        let n = URL_SAFE_NO_PAD.encode([0xc5u8; 128]);
        let jwk = serde_json::json!({ "kty": "RSA", "n": n, "e": "AQAB" });
        let key: RingJsonWebKey = serde_json::from_value(jwk).expect("jwk");
        assert_eq!(key.public, None);
        let n = URL_SAFE_NO_PAD.encode([[0u8].as_slice(), &[0xc5u8; 256]].concat());
        let jwk = serde_json::json!({ "kty": "RSA", "n": n, "e": "AQAB" });
        let key: RingJsonWebKey = serde_json::from_value(jwk).expect("jwk");
        match key.public {
            Some(PublicKey::Rsa { n, e }) => assert_eq!((n.len(), e), (256, vec![1, 0, 1])),
            other => panic!("not decoded: {other:?}"),
        }
    }
}
