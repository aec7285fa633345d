//! Who may use `/admin/`: the bearer tokens of `admin.token_file`. A request names its token
//! with `Authorization: Bearer TOKEN`, or, from a browser (the dashboard), with HTTP Basic
//! (any user name, the token as the password). Tokens are compared as SHA-256 digests in
//! constant time, so neither a token's bytes nor its length leak through timing. A
//! configuration reload replaces the tokens ([`AdminAuth::replace`]) for the requests after it.

use std::sync::Arc;

use arc_swap::ArcSwap;
use base64::Engine;
use http::HeaderMap;
use ring::digest::{digest, SHA256};

use super::reply::{json, AdminBody};
use crate::config::AdminConfig;

/// The configured tokens, kept as digests. Clones share the tokens: a reload that replaces
/// them through one clone changes them for all.
#[derive(Clone)]
pub struct AdminAuth {
    tokens: Arc<ArcSwap<Vec<NamedDigest>>>,
}

/// A token's name and the SHA-256 digest of its secret.
type NamedDigest = (String, [u8; 32]);

/// The caller of an admin route: the name of the token it presented (audit lines' "who").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(String);

impl Caller {
    pub fn name(&self) -> &str {
        &self.0
    }

    /// The command line (`profilegate users …`, `profilegate stats`): "who" is the local user.
    pub fn command_line() -> Self {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into());
        Caller(format!("cli:{user}"))
    }
}

/// Each token's name and the digest of its secret.
fn digests(config: &AdminConfig) -> Vec<NamedDigest> {
    config
        .tokens
        .iter()
        .map(|t| (t.name.clone(), sha256(t.secret.expose().as_bytes())))
        .collect()
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, bytes).as_ref());
    out
}

impl AdminAuth {
    /// `None` when no token is configured: the admin API is off.
    pub fn from_config(config: &AdminConfig) -> Option<Self> {
        config.enabled().then(|| AdminAuth {
            tokens: Arc::new(ArcSwap::from_pointee(digests(config))),
        })
    }

    /// Replaces the tokens with `config`'s (a reload). An empty list refuses every request;
    /// the reload does not pass one (turning the API off or on needs a restart).
    pub fn replace(&self, config: &AdminConfig) {
        self.tokens.store(Arc::new(digests(config)));
    }

    /// The caller named by the request's credentials, or the 401 to answer.
    #[allow(clippy::result_large_err)]
    pub fn caller(&self, headers: &HeaderMap) -> Result<Caller, http::Response<AdminBody>> {
        let presented = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(presented_token);
        let Some(presented) = presented else {
            return Err(unauthorized("an admin token is required"));
        };
        let presented = sha256(presented.as_bytes());
        // Every token is compared, the match or not, so the time does not say which matched.
        let mut found = None;
        let tokens = self.tokens.load();
        for (name, token) in tokens.iter() {
            let same = token
                .iter()
                .zip(presented.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
            if same && found.is_none() {
                found = Some(name);
            }
        }
        match found {
            Some(name) => Ok(Caller(name.clone())),
            None => Err(unauthorized("the admin token is not valid")),
        }
    }
}

/// The token of `Bearer TOKEN` or of `Basic base64(user:TOKEN)`.
fn presented_token(value: &str) -> Option<String> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return (!rest.is_empty()).then(|| rest.to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (_, token) = decoded.split_once(':')?;
        return (!token.is_empty()).then(|| token.to_owned());
    }
    None
}

fn unauthorized(message: &str) -> http::Response<AdminBody> {
    let mut response = json(
        401,
        &serde_json::json!({ "error": "unauthorized", "message": message }),
    );
    // Bearer for programs; Basic so a browser asks for the token (as the password) on the
    // dashboard.
    response.headers_mut().append(
        http::header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static("Bearer realm=\"profilegate admin\""),
    );
    response.headers_mut().append(
        http::header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static("Basic realm=\"profilegate admin\", charset=\"UTF-8\""),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AdminToken, Secret};

    fn auth() -> AdminAuth {
        AdminAuth::from_config(&AdminConfig {
            tokens: vec![
                AdminToken {
                    name: "ops".into(),
                    secret: Secret::new("a".repeat(32)),
                },
                AdminToken {
                    name: "ci".into(),
                    secret: Secret::new("b".repeat(40)),
                },
            ],
        })
        .expect("tokens")
    }

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_str(value).expect("header"),
        );
        h
    }

    #[test]
    fn a_configured_token_names_its_caller_by_bearer_or_basic() {
        let auth = auth();
        let bearer = auth.caller(&with(&format!("Bearer {}", "b".repeat(40))));
        assert_eq!(bearer.expect("bearer").name(), "ci");
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("anyone:{}", "a".repeat(32)));
        let basic = auth.caller(&with(&format!("Basic {basic}")));
        assert_eq!(basic.expect("basic").name(), "ops");
    }

    #[test]
    fn a_missing_wrong_or_truncated_token_is_refused_with_401() {
        let auth = auth();
        for headers in [
            HeaderMap::new(),
            with("Bearer "),
            with(&format!("Bearer {}", "a".repeat(31))),
            with(&format!("Bearer {}x", "a".repeat(32))),
            with(&format!("Token {}", "a".repeat(32))),
        ] {
            let refused = auth.caller(&headers).expect_err("refused");
            assert_eq!(refused.status(), 401);
            assert!(refused
                .headers()
                .get_all(http::header::WWW_AUTHENTICATE)
                .iter()
                .any(|v| v.to_str().unwrap_or("").starts_with("Bearer")));
        }
    }

    #[test]
    fn replaced_tokens_apply_to_every_clone() {
        let auth = auth();
        let shared = auth.clone();
        auth.replace(&AdminConfig {
            tokens: vec![AdminToken {
                name: "new".into(),
                secret: Secret::new("c".repeat(32)),
            }],
        });
        let old = shared.caller(&with(&format!("Bearer {}", "a".repeat(32))));
        assert_eq!(old.expect_err("old token").status(), 401);
        let new = shared.caller(&with(&format!("Bearer {}", "c".repeat(32))));
        assert_eq!(new.expect("new token").name(), "new");
    }

    #[test]
    fn no_token_configured_means_the_admin_api_is_off() {
        assert!(AdminAuth::from_config(&AdminConfig::default()).is_none());
    }
}
