//! `[oidc]`: the OpenID Provider, the client's credentials, scopes, timeouts and accepted
//! algorithms ([`OidcConfig`]), and the code that reads them.

use std::time::Duration;

use super::reader::{http_url, SectionReader};
use super::secret::Secret;

#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// `oidc.issuer`: the OpenID Provider's issuer, used exactly as written (a trailing `/` or
    /// not) for discovery and every comparison (OpenID Connect Discovery §4.3). Required.
    pub issuer: String,
    /// `oidc.client_id`. Required.
    pub client_id: String,
    /// `oidc.client_secret` or `oidc.client_secret_file`. Required, except with
    /// `token_endpoint_auth = "private_key_jwt"`.
    pub client_secret: Option<Secret>,
    /// `oidc.token_endpoint_auth`: how the client authenticates at the token endpoint. Default:
    /// the first of `client_secret_basic`, `client_secret_post` that the OP's discovery lists
    /// (`client_secret_basic` when it lists none).
    pub token_endpoint_auth: Option<TokenEndpointAuth>,
    /// `oidc.client_key_file` (or `oidc.client_key`): the PKCS#8 PEM private key (RSA or EC
    /// P-256) that signs `private_key_jwt` assertions. Default none.
    pub client_key_pem: Option<Secret>,
    /// `oidc.client_key_id`: the `kid` of that key as registered at the OP. Default none.
    pub client_key_id: Option<String>,
    /// `oidc.scopes`. Default `["openid", "email", "profile"]`.
    pub scopes: Vec<String>,
    /// `oidc.timeout`: limit of one back-channel request to the OP. Default `10s`.
    pub timeout: Duration,
    /// `oidc.login_timeout`: how long a started login may take. Default `10m`.
    pub login_timeout: Duration,
    /// `oidc.signing_algs`: algorithms accepted for ID tokens and signed userinfo. Default
    /// RS256, PS256, ES256, EdDSA.
    pub signing_algs: Vec<String>,
}

/// Client authentication at the token endpoint (`oidc.token_endpoint_auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenEndpointAuth {
    /// HTTP Basic with the URL-encoded id and secret (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A JWT signed with `oidc.client_key_file` (RFC 7523, OpenID Connect Core §9).
    PrivateKeyJwt,
}

impl TokenEndpointAuth {
    /// The method's name in OAuth metadata (`token_endpoint_auth_methods_supported`).
    pub fn name(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }

    /// The method named `name`, if profilegate supports it.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::ClientSecretBasic,
            Self::ClientSecretPost,
            Self::PrivateKeyJwt,
        ]
        .into_iter()
        .find(|m| m.name() == name)
    }
}

/// ID-token algorithms profilegate can verify; `none` and the HMAC family are never accepted.
pub const SUPPORTED_SIGNING_ALGS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

pub(super) fn read_oidc(mut r: SectionReader<'_>) -> Option<OidcConfig> {
    let issuer = r.required_string("issuer");
    let issuer = issuer.and_then(|raw| issuer_url(&mut r, raw));
    let client_id = r.required_string("client_id");
    let token_endpoint_auth = r.string("token_endpoint_auth").and_then(|name| {
        let method = TokenEndpointAuth::from_name(&name);
        if method.is_none() {
            r.error(
                "token_endpoint_auth",
                format!(
                    "{name:?} is not supported; choose client_secret_basic, client_secret_post \
                     or private_key_jwt (or leave it out to follow the OP's discovery)"
                ),
            );
        }
        method
    });
    let key_auth = token_endpoint_auth == Some(TokenEndpointAuth::PrivateKeyJwt);
    let has_secret = r.has_secret("client_secret");
    let client_secret = r.secret("client_secret");
    if !has_secret && !key_auth {
        r.error(
            "client_secret",
            "is required (or client_secret_file, or PROFILEGATE_OIDC_CLIENT_SECRET), unless \
             token_endpoint_auth = \"private_key_jwt\"",
        );
    }
    let client_key_given = r.has_secret("client_key");
    let client_key_pem = read_client_key(&mut r);
    if key_auth && !client_key_given {
        r.error(
            "client_key_file",
            "is required with token_endpoint_auth = \"private_key_jwt\" (a PKCS#8 PEM key)",
        );
    }
    if client_key_given && !key_auth {
        r.error(
            "client_key_file",
            "is only used with token_endpoint_auth = \"private_key_jwt\"; set that too, or \
             remove the key",
        );
    }
    let client_key_id = r.string("client_key_id");
    let scopes = r
        .string_list("scopes")
        .unwrap_or_else(|| vec!["openid".into(), "email".into(), "profile".into()]);
    if !scopes.iter().any(|s| s == "openid") {
        r.error("scopes", "must include \"openid\"");
    }
    if let Some(bad) = scopes
        .iter()
        .find(|s| s.is_empty() || s.bytes().any(|b| b <= b' ' || b == b'"' || b == b'\\'))
    {
        r.error("scopes", format!("{bad:?} is not a valid scope"));
    }
    let timeout = r
        .duration(
            "timeout",
            Duration::from_millis(100),
            Duration::from_secs(120),
        )
        .unwrap_or(Duration::from_secs(10));
    let login_timeout = r
        .duration(
            "login_timeout",
            Duration::from_secs(30),
            Duration::from_secs(3600),
        )
        .unwrap_or(Duration::from_secs(600));
    let signing_algs = r.string_list("signing_algs").unwrap_or_else(|| {
        ["RS256", "PS256", "ES256", "EdDSA"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    });
    for alg in &signing_algs {
        if !SUPPORTED_SIGNING_ALGS.contains(&alg.as_str()) {
            r.error(
                "signing_algs",
                format!(
                    "{alg:?} is not accepted; choose from {}",
                    SUPPORTED_SIGNING_ALGS.join(", ")
                ),
            );
        }
    }
    if signing_algs.is_empty() {
        r.error("signing_algs", "must name at least one algorithm");
    }
    r.finish();
    Some(OidcConfig {
        issuer: issuer?,
        client_id: client_id?,
        client_secret,
        token_endpoint_auth,
        client_key_pem,
        client_key_id,
        scopes,
        timeout,
        login_timeout,
        signing_algs,
    })
}

/// `oidc.issuer`: an http(s) URL with a host and without query or fragment (Discovery §2),
/// kept exactly as written: `Url` would add a `/` to an empty path, and the OP's metadata must
/// name the very same string.
fn issuer_url(r: &mut SectionReader<'_>, raw: String) -> Option<String> {
    let url = http_url(r, "issuer", &raw)?;
    if url.query().is_some() || url.fragment().is_some() {
        r.error("issuer", "must not have a query or a fragment");
        return None;
    }
    if raw != raw.trim() {
        r.error(
            "issuer",
            "has spaces around it: the issuer is compared exactly",
        );
        return None;
    }
    Some(raw)
}

/// `oidc.client_key_file` / `oidc.client_key`: read now so a wrong path fails `check`; the key
/// itself is parsed when the provider is built (its type decides the assertion's algorithm).
fn read_client_key(r: &mut SectionReader<'_>) -> Option<Secret> {
    let key = if r.has("client_key_file") {
        "client_key_file"
    } else {
        "client_key"
    };
    let pem = r.secret("client_key")?;
    if pem.expose().contains("-----BEGIN PRIVATE KEY-----") {
        return Some(pem);
    }
    r.error(
        key,
        "is not a PKCS#8 PEM private key (-----BEGIN PRIVATE KEY-----); convert one with \
         `openssl pkcs8 -topk8 -nocrypt -in key.pem -out client-key.pem`",
    );
    None
}
