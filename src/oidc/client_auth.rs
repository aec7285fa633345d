//! How profilegate authenticates at the OP's token endpoint (`oidc.token_endpoint_auth`):
//! `client_secret_basic`, `client_secret_post`, or `private_key_jwt` (RFC 7523 and OpenID
//! Connect Core §9: a short-lived JWT signed with `oidc.client_key_file`, for OPs that want no
//! shared secret). Unset, the method is the first of the two secret methods that the OP's
//! discovery lists, so an OP that mishandles URL-encoded Basic credentials but lists
//! `client_secret_post` first still works.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::CoreClientAuthMethod;
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};

use crate::config::{OidcConfig, TokenEndpointAuth};

/// How long a client assertion is valid.
const ASSERTION_LIFETIME: u64 = 60;

/// The key that signs client assertions.
enum AssertionKey {
    /// ES256.
    Ec(EcdsaKeyPair),
    /// RS256.
    Rsa(RsaKeyPair),
}

/// The client's credentials and its chosen (or to-be-discovered) method.
pub struct ClientCredentials {
    configured: Option<TokenEndpointAuth>,
    secret: Option<String>,
    key: Option<AssertionKey>,
    key_id: Option<String>,
    rng: SystemRandom,
}

impl ClientCredentials {
    /// Reads the credentials of `[oidc]`; fails when `client_key_file` is not an RSA or EC
    /// P-256 PKCS#8 key.
    pub fn new(config: &OidcConfig) -> Result<Self, String> {
        let key = config
            .client_key_pem
            .as_ref()
            .map(|pem| parse_key(pem.expose()))
            .transpose()?;
        Ok(Self {
            configured: config.token_endpoint_auth,
            secret: config.client_secret.as_ref().map(|s| s.expose().to_owned()),
            key,
            key_id: config.client_key_id.clone(),
            rng: SystemRandom::new(),
        })
    }

    /// The client secret, for the methods that send it.
    pub fn secret(&self, method: TokenEndpointAuth) -> Option<&str> {
        match method {
            TokenEndpointAuth::ClientSecretBasic | TokenEndpointAuth::ClientSecretPost => {
                self.secret.as_deref()
            }
            TokenEndpointAuth::PrivateKeyJwt => None,
        }
    }

    /// The method to use with an OP whose discovery lists `supported` (absent: the spec's
    /// default, `client_secret_basic`).
    pub fn method(
        &self,
        supported: Option<&Vec<CoreClientAuthMethod>>,
    ) -> Result<TokenEndpointAuth, String> {
        if let Some(method) = self.configured {
            return Ok(method);
        }
        let Some(listed) = supported else {
            return Ok(TokenEndpointAuth::ClientSecretBasic);
        };
        listed
            .iter()
            .find_map(|m| match m {
                CoreClientAuthMethod::ClientSecretBasic => {
                    Some(TokenEndpointAuth::ClientSecretBasic)
                }
                CoreClientAuthMethod::ClientSecretPost => Some(TokenEndpointAuth::ClientSecretPost),
                _ => None,
            })
            .ok_or_else(|| {
                let names: Vec<String> = listed
                    .iter()
                    .map(|m| {
                        serde_json::to_value(m)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_else(|| "?".into())
                    })
                    .collect();
                format!(
                    "the OP accepts none of client_secret_basic, client_secret_post at its token \
                     endpoint (it lists {}); set oidc.token_endpoint_auth (private_key_jwt with \
                     oidc.client_key_file)",
                    names.join(", ")
                )
            })
    }

    /// A client assertion for `private_key_jwt`: `iss` and `sub` the client id, `aud` the token
    /// endpoint (Core §9), a random `jti`, valid for a minute.
    pub fn assertion(
        &self,
        client_id: &str,
        token_endpoint: &str,
        now: u64,
    ) -> Result<String, String> {
        let key = self
            .key
            .as_ref()
            .ok_or("private_key_jwt needs oidc.client_key_file")?;
        let alg = match key {
            AssertionKey::Ec(_) => "ES256",
            AssertionKey::Rsa(_) => "RS256",
        };
        let mut header = serde_json::json!({ "alg": alg, "typ": "JWT" });
        if let Some(kid) = &self.key_id {
            header["kid"] = kid.as_str().into();
        }
        let claims = serde_json::json!({
            "iss": client_id,
            "sub": client_id,
            "aud": token_endpoint,
            "jti": crate::session::random_token(24),
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
        });
        let mut token = URL_SAFE_NO_PAD.encode(header.to_string());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let signature = match key {
            AssertionKey::Ec(pair) => pair
                .sign(&self.rng, token.as_bytes())
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| "cannot sign the client assertion".to_owned())?,
            AssertionKey::Rsa(pair) => {
                let mut sig = vec![0; pair.public().modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &self.rng, token.as_bytes(), &mut sig)
                    .map_err(|_| "cannot sign the client assertion".to_owned())?;
                sig
            }
        };
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(token)
    }
}

/// A PKCS#8 PEM key: EC P-256 or RSA.
fn parse_key(pem: &str) -> Result<AssertionKey, String> {
    let der = crate::jwt::pkcs8_der(pem)
        .ok_or_else(|| "oidc.client_key_file: not a PEM private key".to_owned())?;
    if let Ok(pair) =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &SystemRandom::new())
    {
        return Ok(AssertionKey::Ec(pair));
    }
    RsaKeyPair::from_pkcs8(&der)
        .map(AssertionKey::Rsa)
        .map_err(|e| {
            format!(
                "oidc.client_key_file: neither an EC P-256 nor an RSA (2048 bits or more) PKCS#8 \
                 key ({e})"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    fn creds(configured: Option<TokenEndpointAuth>) -> ClientCredentials {
        ClientCredentials {
            configured,
            secret: Some("s".into()),
            key: None,
            key_id: None,
            rng: SystemRandom::new(),
        }
    }

    #[test]
    fn the_method_follows_the_op_unless_configured() {
        use CoreClientAuthMethod as M;
        use TokenEndpointAuth as T;
        let c = creds(None);
        assert_eq!(c.method(None), Ok(T::ClientSecretBasic), "spec default");
        let post_first = vec![M::PrivateKeyJwt, M::ClientSecretPost, M::ClientSecretBasic];
        assert_eq!(c.method(Some(&post_first)), Ok(T::ClientSecretPost));
        assert_eq!(
            c.method(Some(&vec![M::ClientSecretBasic, M::ClientSecretPost])),
            Ok(T::ClientSecretBasic)
        );
        let only_keys = vec![M::PrivateKeyJwt];
        let err = c.method(Some(&only_keys)).expect_err("no secret method");
        assert!(err.contains("private_key_jwt"), "{err}");
        let configured = creds(Some(T::ClientSecretPost));
        assert_eq!(configured.method(Some(&only_keys)), Ok(T::ClientSecretPost));
    }

    #[test]
    fn an_ec_assertion_is_signed_and_addressed_to_the_token_endpoint() {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .expect("key");
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(pkcs8.as_ref())
        );
        let mut c = creds(Some(TokenEndpointAuth::PrivateKeyJwt));
        c.key = Some(parse_key(&pem).expect("EC key"));
        c.key_id = Some("k1".into());
        let jwt = c
            .assertion("client", "https://op/token", 1_000)
            .expect("jwt");
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("b64")).expect("json");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], "k1");
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
        assert_eq!(claims["aud"], "https://op/token");
        assert_eq!(
            (claims["iss"].as_str(), claims["sub"].as_str()),
            (Some("client"), Some("client"))
        );
        assert_eq!(claims["exp"], 1_060);
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8.as_ref(),
            &SystemRandom::new(),
        )
        .expect("pair");
        use ring::signature::KeyPair;
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            pair.public_key().as_ref(),
        )
        .verify(
            format!("{}.{}", parts[0], parts[1]).as_bytes(),
            &URL_SAFE_NO_PAD.decode(parts[2]).expect("b64"),
        )
        .expect("signature verifies");
        assert!(parse_key("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----").is_err());
    }
}
