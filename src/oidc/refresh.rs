//! A session's refresh at the OP (OpenID Connect Core §12): the refresh token is exchanged at
//! the token endpoint (with the client authentication a login uses), the new ID token verified
//! as at a login but with no nonce and the session's subject required (§12.2), and userinfo
//! read with the new access token. Called by the proxy's refresh step (`proxy/refresh/`), once
//! per session and ID-token lifetime, never on an ordinary request.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU16, Ordering};

use openidconnect::core::CoreErrorResponseType;
use openidconnect::{
    AsyncHttpClient, HttpRequest, HttpResponse, Nonce, OAuth2TokenResponse, RefreshToken,
    RequestTokenError, TokenResponse,
};

use super::jws::Jws;
use super::{
    chain, BackChannel, BackChannelError, Identity, LoginTokens, OidcError, Provider, JWT_BEARER,
};
use crate::config::TokenEndpointAuth;
use crate::session::now_secs;

/// Why a refresh did not give new claims. Messages carry no token or secret.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RefreshError {
    /// The OP refused the refresh token (`invalid_grant`: expired, revoked, the user disabled
    /// or signed out at the OP): the session is over.
    #[error("the identity provider refused the refresh token: {0}")]
    Refused(String),
    /// The OP's answer failed verification (ID token signature, issuer, audience, expiry,
    /// another subject): the session is over, nothing it says can be trusted.
    #[error("the refreshed tokens are not valid: {0}")]
    Invalid(String),
    /// The OP refused the client, or the request, rather than the token (`invalid_client`
    /// after a secret rotation, say): the configuration is at fault, not the user; the
    /// session goes on with its claims and the refresh is tried again later.
    #[error("identity provider and configuration do not match: {0}")]
    Misconfigured(String),
    /// The OP did not answer (network, timeout, 5xx, 429): tried again later.
    #[error("identity provider unreachable: {0}")]
    Unreachable(String),
}

impl RefreshError {
    /// Whether the session must end (rather than go on with its current claims).
    pub fn ends_session(&self) -> bool {
        match self {
            RefreshError::Refused(_) | RefreshError::Invalid(_) => true,
            RefreshError::Misconfigured(_) | RefreshError::Unreachable(_) => false,
        }
    }
}

/// A failed refresh, with the tokens to keep when the OP had already rotated the refresh
/// token (the exchange succeeded, the userinfo call after it did not).
#[derive(Debug, Clone)]
pub struct RefreshFailure {
    pub error: RefreshError,
    /// The OP's new tokens, when it issued them before the failure.
    pub rotated: Option<LoginTokens>,
}

impl From<RefreshError> for RefreshFailure {
    fn from(error: RefreshError) -> Self {
        Self {
            error,
            rotated: None,
        }
    }
}

impl Provider {
    /// Exchanges `refresh_token` at the OP and returns who the user is now: the verified ID
    /// token's claims (when the OP sent one; Core §12.2 lets it omit it), the userinfo claims
    /// read with the new access token, and the tokens to keep (the rotated refresh token, or
    /// `refresh_token` again when the OP did not rotate it; the new ID token, or an empty one
    /// when none came). `expected_sub` is the session's subject: an ID token for another is
    /// refused.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        expected_sub: &str,
    ) -> Result<Identity, RefreshFailure> {
        let d = self.discovered().await.map_err(from_oidc)?;
        let token = RefreshToken::new(refresh_token.to_owned());
        let mut exchange = d
            .client
            .exchange_refresh_token(&token)
            .map_err(|e| RefreshError::Misconfigured(format!("no token endpoint: {e}")))?;
        if let Some(assertion) = self
            .client_assertion(&d)
            .map_err(RefreshError::Misconfigured)?
        {
            exchange = exchange
                .add_extra_param("client_assertion_type", JWT_BEARER)
                .add_extra_param("client_assertion", assertion);
        }
        // The token endpoint's HTTP status, which the crate's error does not keep: a 5xx with
        // an error body is the OP's trouble, not a refusal.
        let caller = StatusKept {
            http: &self.http,
            status: AtomicU16::new(0),
        };
        let response = exchange.request_async(&caller).await;
        let status = caller.status.load(Ordering::Relaxed);
        let response = response.map_err(|e| classify(e, status, d.auth))?;

        let mut tokens = LoginTokens {
            id_token: String::new(),
            refresh_token: Some(
                response
                    .refresh_token()
                    .map_or_else(|| refresh_token.to_owned(), |t| t.secret().clone()),
            ),
            id_token_exp: 0,
        };
        let mut identity = Identity {
            subject: expected_sub.to_owned(),
            email: None,
            preferred_username: None,
            name: None,
            claims: serde_json::Map::new(),
            id_token_claims: serde_json::Map::new(),
            tokens: LoginTokens::default(),
        };
        if let Some(id_token) = response.id_token() {
            let compact = id_token.to_string();
            let invalid = |why: String| RefreshFailure {
                error: RefreshError::Invalid(why),
                rotated: Some(tokens.clone()),
            };
            let (d, key) = self
                .signing_key(d.clone(), &compact)
                .await
                .map_err(|p| invalid(p.to_string()))?;
            let verifier = self.id_token_verifier(&d, &key);
            // Core §12.2: no nonce is expected (the refresh carries none); iss, aud, exp and
            // the signature as at a login.
            let no_nonce = |_: Option<&Nonce>| -> Result<(), String> { Ok(()) };
            let claims = id_token
                .claims(&verifier, no_nonce)
                .map_err(|e| invalid(chain(&e)))?;
            self.check_azp(claims.authorized_party()).map_err(invalid)?;
            // Core §12.2: the subject must be the session's.
            if claims.subject().as_str() != expected_sub {
                return Err(invalid(
                    "the refreshed ID token names another subject".into(),
                ));
            }
            identity.email = claims.email().map(|e| e.as_str().to_owned());
            identity.preferred_username =
                claims.preferred_username().map(|u| u.as_str().to_owned());
            identity.name = claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_owned());
            identity.id_token_claims = Jws::parse(&compact, &self.algs)
                .and_then(|jws| jws.claims())
                .unwrap_or_default();
            tokens.id_token_exp = u64::try_from(claims.expiration().timestamp()).unwrap_or(0);
            tokens.id_token = compact;
        } else if let Some(lifetime) = response.expires_in() {
            // No new ID token: the access token's lifetime paces the next refresh.
            tokens.id_token_exp = now_secs().saturating_add(lifetime.as_secs());
        }
        let info = self
            .userinfo(d, response.access_token().secret(), expected_sub)
            .await
            .map_err(|e| RefreshFailure {
                error: match e {
                    OidcError::Unreachable(why) => RefreshError::Unreachable(why),
                    other => RefreshError::Invalid(other.to_string()),
                },
                rotated: Some(tokens.clone()),
            })?;
        if let Some(info) = info {
            let text = |name: &str| info.get(name).and_then(|v| v.as_str()).map(str::to_owned);
            identity.email = identity.email.or_else(|| text("email"));
            identity.preferred_username = identity
                .preferred_username
                .or_else(|| text("preferred_username"));
            identity.name = identity.name.or_else(|| text("name"));
            identity.claims = info;
        }
        identity.tokens = tokens;
        Ok(identity)
    }
}

/// The back channel, keeping the HTTP status of the last answer.
struct StatusKept<'a> {
    http: &'a BackChannel,
    status: AtomicU16,
}

impl<'c> AsyncHttpClient<'c> for StatusKept<'_> {
    type Error = BackChannelError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BackChannelError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let response = self.http.send(request).await;
            if let Ok(r) = &response {
                self.status.store(r.status().as_u16(), Ordering::Relaxed);
            }
            response
        })
    }
}

fn from_oidc(e: OidcError) -> RefreshFailure {
    match e {
        OidcError::Unreachable(why) => RefreshError::Unreachable(why),
        other => RefreshError::Misconfigured(other.to_string()),
    }
    .into()
}

/// What the token endpoint's error means for the session. Only `invalid_grant` (RFC 6749
/// §5.2: the refresh token is invalid, expired, revoked) ends it; a 5xx or 429 is the OP's
/// trouble; any other error names the client or the request, a configuration matter.
fn classify<RE: std::error::Error + 'static>(
    e: RequestTokenError<RE, openidconnect::StandardErrorResponse<CoreErrorResponseType>>,
    status: u16,
    auth: TokenEndpointAuth,
) -> RefreshFailure {
    let temporary = status >= 500 || status == 429;
    match e {
        RequestTokenError::ServerResponse(r) if temporary => {
            RefreshError::Unreachable(format!("token endpoint: HTTP {status} {}", r.error()))
        }
        RequestTokenError::ServerResponse(r)
            if matches!(r.error(), CoreErrorResponseType::InvalidGrant) =>
        {
            RefreshError::Refused(r.error().to_string())
        }
        RequestTokenError::ServerResponse(r) => RefreshError::Misconfigured(format!(
            "the OP answered the refresh with {} (token_endpoint_auth {}): check the client's \
             registration (grant type refresh_token, authentication method, secret or key)",
            r.error(),
            auth.name()
        )),
        RequestTokenError::Request(r) => RefreshError::Unreachable(chain(&r)),
        RequestTokenError::Parse(p, _) if temporary || status == 0 => {
            RefreshError::Unreachable(format!("token endpoint: HTTP {status}: {p}"))
        }
        RequestTokenError::Parse(p, _) if status == 200 => {
            RefreshError::Invalid(format!("unreadable token response: {p}"))
        }
        RequestTokenError::Parse(_, _) => RefreshError::Misconfigured(format!(
            "the token endpoint answered the refresh with HTTP {status} and no OAuth error"
        )),
        RequestTokenError::Other(o) if temporary => {
            RefreshError::Unreachable(format!("token endpoint: HTTP {status}: {o}"))
        }
        RequestTokenError::Other(o) => RefreshError::Misconfigured(o),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use openidconnect::StandardErrorResponse;

    type Error = RequestTokenError<std::io::Error, StandardErrorResponse<CoreErrorResponseType>>;

    fn server(code: CoreErrorResponseType) -> Error {
        RequestTokenError::ServerResponse(StandardErrorResponse::new(code, None, None))
    }

    #[test]
    fn only_invalid_grant_and_bad_answers_end_the_session() {
        let auth = TokenEndpointAuth::ClientSecretBasic;
        let refused = classify(server(CoreErrorResponseType::InvalidGrant), 400, auth);
        assert!(matches!(refused.error, RefreshError::Refused(_)));
        assert!(refused.error.ends_session());
        for code in [
            CoreErrorResponseType::InvalidClient,
            CoreErrorResponseType::UnauthorizedClient,
            CoreErrorResponseType::InvalidRequest,
        ] {
            let e = classify(server(code), 401, auth).error;
            assert!(matches!(e, RefreshError::Misconfigured(_)), "{e}");
            assert!(!e.ends_session());
        }
        // A 5xx (or 429) with an OAuth error body is the OP's trouble, even invalid_grant.
        for status in [500, 503, 429] {
            let e = classify(server(CoreErrorResponseType::InvalidGrant), status, auth).error;
            assert!(matches!(e, RefreshError::Unreachable(_)), "{status}: {e}");
        }
        let down: Error = RequestTokenError::Request(std::io::Error::other("connection refused"));
        assert!(matches!(
            classify(down, 0, auth).error,
            RefreshError::Unreachable(_)
        ));
        let empty: Error = RequestTokenError::Other("server returned empty error response".into());
        assert!(matches!(
            classify(empty, 502, auth).error,
            RefreshError::Unreachable(_)
        ));
    }
}
