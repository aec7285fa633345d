//! OpenID Connect: discovery, the start of a login (authorization URL with state, nonce and
//! PKCE S256), and the callback's verification (code exchange, ID token, userinfo).
//! Only logins, logouts (the OP's back-channel logout tokens: `logout_token.rs`) and
//! refreshes (`refresh.rs`, once per session and ID-token lifetime) come here; the signed-in
//! hot path never calls the OP otherwise.

mod backchannel;
mod client_auth;
mod jwk;
mod jws;
mod logout_token;
mod refetch;
pub mod refresh;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClaimName, CoreClaimType,
    CoreClientAuthMethod, CoreErrorResponseType, CoreGenderClaim, CoreGrantType,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreSubjectIdentifierType, CoreTokenIntrospectionResponse, CoreTokenResponse,
};
use openidconnect::{
    AuthType, AuthorizationCode, ClaimsVerificationError, Client, ClientId, ClientSecret,
    CsrfToken, EmptyAdditionalClaims, EmptyAdditionalProviderMetadata, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IdTokenVerifier, IssuerUrl, JsonWebKeySet, LogoutProviderMetadata,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata, RedirectUrl,
    Scope, StandardErrorResponse, TokenResponse,
};
use url::Url;

pub use backchannel::{https_connector, BackChannel, BackChannelError};
pub use logout_token::{LogoutToken, LogoutTokenProblem};

use crate::config::{OidcConfig, TokenEndpointAuth};
use crate::session::{now_secs, LoginState};

use client_auth::ClientCredentials;
use jwk::RingJsonWebKey;
use jws::{Jws, KeyProblem, CLOCK_LEEWAY};
use refetch::Refetches;

/// The client built from discovery, with its typestate spelled out once: openidconnect's
/// `CoreClient` with the OP's keys as [`RingJsonWebKey`] (signatures checked by ring).
type OidcClient = Client<
    EmptyAdditionalClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    RingJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    CoreTokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// openidconnect's `ProviderMetadataWithLogout` with the OP's keys as [`RingJsonWebKey`].
type ProviderMetadataWithLogout = ProviderMetadata<
    LogoutProviderMetadata<EmptyAdditionalProviderMetadata>,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    RingJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// Bound on remembered (used) login states.
const MAX_USED_STATES: usize = 100_000;
/// `client_assertion_type` of `private_key_jwt` (RFC 7523 §2.2).
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Why a login could not be started or finished.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The OP did not answer (network, timeout, 5xx).
    #[error("identity provider unreachable: {0}")]
    Unreachable(String),
    /// The OP answered, but what it says does not fit this configuration (another issuer, no
    /// key for an allowed algorithm, no client authentication in common, client refused).
    #[error("identity provider and configuration do not match: {0}")]
    Misconfigured(String),
    /// The OP refused the authorization code (expired, replayed, wrong verifier).
    #[error("identity provider rejected the authorization code: {0}")]
    CodeRejected(String),
    /// The ID token failed verification.
    #[error("ID token rejected: {0}")]
    InvalidToken(String),
    /// The userinfo answer failed verification.
    #[error("userinfo rejected: {0}")]
    InvalidUserinfo(String),
}

/// Who signed in, from the verified ID token completed by userinfo.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub subject: String,
    pub email: Option<String>,
    pub preferred_username: Option<String>,
    pub name: Option<String>,
    /// Every userinfo claim (standard and custom), by name.
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// Every claim of the verified ID token (custom ones included), by name.
    pub id_token_claims: serde_json::Map<String, serde_json::Value>,
    /// The tokens of the login, for the session record.
    pub tokens: LoginTokens,
}

/// The tokens a login (or a refresh) returned, kept sealed in the session record; `Debug`
/// never shows them.
#[derive(Clone, Default, PartialEq)]
pub struct LoginTokens {
    /// The ID token, compact (for `id_token_hint`).
    pub id_token: String,
    /// The refresh token, when the OP issued one.
    pub refresh_token: Option<String>,
    /// The ID token's expiry, seconds since the epoch.
    pub id_token_exp: u64,
}

impl std::fmt::Debug for LoginTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginTokens")
            .field("refresh_token", &self.refresh_token.is_some())
            .field("id_token_exp", &self.id_token_exp)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// The OP's session id (the ID token's `sid` claim), when it sent a usable one.
    pub fn op_sid(&self) -> Option<&str> {
        self.id_token_claims
            .get("sid")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty() && s.len() <= 255 && !s.contains('\0'))
    }
}

impl Identity {
    /// The claims policies read: the ID token's, then userinfo's for names it lacks.
    pub fn merged_claims(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut merged = self.id_token_claims.clone();
        for (name, value) in &self.claims {
            merged.entry(name.clone()).or_insert_with(|| value.clone());
        }
        merged
    }
}

/// What discovery found, plus the client built from it.
struct Discovered {
    metadata: ProviderMetadataWithLogout,
    client: OidcClient,
    end_session: Option<Url>,
    /// How the client authenticates at the token endpoint.
    auth: TokenEndpointAuth,
}

/// What `profilegate check --online` reports of a discovered OP.
#[derive(Debug, Clone)]
pub struct DiscoverySummary {
    pub issuer: String,
    pub token_endpoint_auth: &'static str,
    /// The algorithms of `oidc.signing_algs` that a key of the OP's set can verify.
    pub usable_algs: Vec<String>,
    pub end_session: bool,
}

/// The OpenID Provider as profilegate sees it.
pub struct Provider {
    issuer: String,
    client_id: String,
    credentials: ClientCredentials,
    redirect_url: RedirectUrl,
    scopes: Vec<Scope>,
    algs: Vec<CoreJwsSigningAlgorithm>,
    http: BackChannel,
    discovered: RwLock<Option<Arc<Discovered>>>,
    discovering: tokio::sync::Mutex<()>,
    refetches: Mutex<Refetches>,
    used_states: Mutex<HashMap<String, u64>>,
}

impl Provider {
    /// A provider not yet discovered, from `[oidc]`. `redirect_uri` is the callback route's
    /// absolute URL (the public origin and the callback path), as registered at the OP.
    pub fn new(config: &OidcConfig, redirect_uri: String) -> Result<Self, String> {
        let redirect_url = RedirectUrl::new(redirect_uri).map_err(|e| e.to_string())?;
        let algs = config
            .signing_algs
            .iter()
            .map(|a| {
                serde_json::from_value(serde_json::Value::String(a.clone()))
                    .map_err(|_| format!("unsupported algorithm {a}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            issuer: config.issuer.clone(),
            client_id: config.client_id.clone(),
            credentials: ClientCredentials::new(config)?,
            redirect_url,
            scopes: config
                .scopes
                .iter()
                .map(|s| Scope::new(s.clone()))
                .collect(),
            algs,
            http: BackChannel::new(config.timeout),
            discovered: RwLock::new(None),
            discovering: tokio::sync::Mutex::new(()),
            refetches: Mutex::new(Refetches::default()),
            used_states: Mutex::new(HashMap::new()),
        })
    }

    /// The configured issuer, exactly as written.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// True once discovery has succeeded.
    pub fn is_ready(&self) -> bool {
        self.discovered.read().map(|d| d.is_some()).unwrap_or(false)
    }

    /// Runs discovery with `http` (a client of the current runtime) and keeps the result.
    /// Used at start-up on a runtime that is dropped afterwards, and by `check --online`.
    pub async fn discover_with(&self, http: &BackChannel) -> Result<DiscoverySummary, OidcError> {
        let found = self.fetch_discovery(http).await?;
        let summary = DiscoverySummary {
            issuer: found.metadata.issuer().to_string(),
            token_endpoint_auth: found.auth.name(),
            usable_algs: self
                .algs
                .iter()
                .filter(|alg| {
                    found
                        .metadata
                        .jwks()
                        .keys()
                        .iter()
                        .any(|k| k.compatible_with(alg))
                })
                .map(alg_name)
                .collect(),
            end_session: found.end_session.is_some(),
        };
        if let Ok(mut slot) = self.discovered.write() {
            *slot = Some(Arc::new(found));
        }
        Ok(summary)
    }

    /// Discovery (§4 of OpenID Connect Discovery) and the OP's key set, each problem named.
    async fn fetch_discovery(&self, http: &BackChannel) -> Result<Discovered, OidcError> {
        let issuer = IssuerUrl::new(self.issuer.clone())
            .map_err(|e| OidcError::Misconfigured(format!("oidc.issuer: {e}")))?;
        let url = issuer
            .join(".well-known/openid-configuration")
            .map_err(|e| OidcError::Misconfigured(format!("oidc.issuer: {e}")))?;
        let request = http::Request::get(url.as_str())
            .header(http::header::ACCEPT, "application/json")
            .body(Vec::new())
            .map_err(|e| OidcError::Misconfigured(format!("discovery URL {url}: {e}")))?;
        let response = http
            .send(request)
            .await
            .map_err(|e| OidcError::Unreachable(format!("discovery at {url}: {e}")))?;
        let status = response.status();
        if status.is_server_error() {
            return Err(OidcError::Unreachable(format!(
                "discovery at {url} answered HTTP {status}"
            )));
        }
        if !status.is_success() {
            return Err(OidcError::Misconfigured(format!(
                "discovery at {url} answered HTTP {status}: is oidc.issuer {:?} the OP's issuer?",
                self.issuer
            )));
        }
        let metadata: ProviderMetadataWithLogout = serde_json::from_slice(response.body())
            .map_err(|e| {
                OidcError::Misconfigured(format!(
                    "discovery at {url} is not OpenID Provider metadata: {e}"
                ))
            })?;
        check_issuer(metadata.issuer().as_str(), &self.issuer)?;
        let jwks = JsonWebKeySet::<RingJsonWebKey>::fetch_async(metadata.jwks_uri(), http)
            .await
            .map_err(|e| self.jwks_error(&e, metadata.jwks_uri().as_str()))?;
        if !self
            .algs
            .iter()
            .any(|alg| jwks.keys().iter().any(|k| k.compatible_with(alg)))
        {
            let found: Vec<String> = jwks.keys().iter().map(describe_key).collect();
            return Err(OidcError::Misconfigured(format!(
                "the OP's key set ({}) has no key for an algorithm of oidc.signing_algs ({}); it \
                 holds {}",
                metadata.jwks_uri().as_str(),
                self.algs
                    .iter()
                    .map(alg_name)
                    .collect::<Vec<_>>()
                    .join(", "),
                if found.is_empty() {
                    "no usable key".to_owned()
                } else {
                    found.join(", ")
                }
            )));
        }
        let auth = self
            .credentials
            .method(metadata.token_endpoint_auth_methods_supported())
            .map_err(OidcError::Misconfigured)?;
        let metadata = metadata.set_jwks(jwks);
        let end_session = metadata
            .additional_metadata()
            .end_session_endpoint
            .as_ref()
            .map(|u| u.url().clone());
        Ok(self.discovered_from(metadata, end_session, auth))
    }

    fn jwks_error<E: std::error::Error + 'static>(
        &self,
        e: &openidconnect::DiscoveryError<E>,
        uri: &str,
    ) -> OidcError {
        match e {
            openidconnect::DiscoveryError::Request(r) => {
                OidcError::Unreachable(format!("key set at {uri}: {}", chain(r)))
            }
            openidconnect::DiscoveryError::Response(status, _, _) if status.is_server_error() => {
                OidcError::Unreachable(format!("key set at {uri}: HTTP {status}"))
            }
            other => OidcError::Misconfigured(format!("key set at {uri}: {}", chain(other))),
        }
    }

    fn discovered_from(
        &self,
        metadata: ProviderMetadataWithLogout,
        end_session: Option<Url>,
        auth: TokenEndpointAuth,
    ) -> Discovered {
        let client = OidcClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(self.client_id.clone()),
            self.credentials
                .secret(auth)
                .map(|s| ClientSecret::new(s.to_owned())),
        )
        .set_redirect_uri(self.redirect_url.clone())
        .set_auth_type(match auth {
            TokenEndpointAuth::ClientSecretBasic => AuthType::BasicAuth,
            TokenEndpointAuth::ClientSecretPost | TokenEndpointAuth::PrivateKeyJwt => {
                AuthType::RequestBody
            }
        });
        Discovered {
            metadata,
            client,
            end_session,
            auth,
        }
    }

    /// The discovered provider, discovering now (once, for all waiters) if start-up could not.
    async fn discovered(&self) -> Result<Arc<Discovered>, OidcError> {
        if let Some(d) = self.current() {
            return Ok(d);
        }
        let _guard = self.discovering.lock().await;
        if let Some(d) = self.current() {
            return Ok(d);
        }
        let found = Arc::new(self.fetch_discovery(&self.http).await?);
        if let Ok(mut slot) = self.discovered.write() {
            *slot = Some(found.clone());
        }
        tracing::info!(issuer = %self.issuer, "OpenID Provider discovered");
        Ok(found)
    }

    fn current(&self) -> Option<Arc<Discovered>> {
        self.discovered.read().ok().and_then(|d| d.clone())
    }

    /// New nonce and PKCE pair for a login about to start: `(nonce, verifier, challenge)`.
    pub fn login_secrets() -> (String, String, PkceCodeChallenge) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let nonce = Nonce::new_random().secret().clone();
        (nonce, verifier.secret().clone(), challenge)
    }

    /// The OP's authorization URL for a login with this state, nonce and PKCE challenge;
    /// `silent` asks for `prompt=none` (the OP answers at once: signed in, or an error such as
    /// `login_required`, never a page).
    pub async fn authorization_url(
        &self,
        state: &str,
        nonce: &str,
        challenge: PkceCodeChallenge,
        ui_locales: Option<&str>,
        silent: bool,
    ) -> Result<Url, OidcError> {
        let d = self.discovered().await?;
        let state = state.to_owned();
        let nonce = nonce.to_owned();
        let mut request = d
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state),
                move || Nonce::new(nonce),
            )
            .add_scopes(
                self.scopes
                    .iter()
                    .filter(|s| s.as_str() != "openid")
                    .cloned(),
            )
            .set_pkce_challenge(challenge);
        if let Some(locales) = ui_locales {
            request = request.add_extra_param("ui_locales", locales.to_owned());
        }
        if silent {
            request = request.add_prompt(CoreAuthPrompt::None);
        }
        let (url, _, _) = request.url();
        Ok(url)
    }

    /// Marks `state` as used; false when it was used before (a replayed callback).
    pub fn consume_state(&self, state: &str, exp: u64) -> bool {
        let Ok(mut used) = self.used_states.lock() else {
            return false;
        };
        let now = now_secs();
        if used.len() >= MAX_USED_STATES / 2 {
            used.retain(|_, e| *e > now);
        }
        if used.len() >= MAX_USED_STATES {
            // Under a flood, refuse rather than forget: the user simply signs in again.
            return false;
        }
        used.insert(state.to_owned(), exp).is_none()
    }

    /// Exchanges the code, verifies the ID token and completes the claims from userinfo.
    pub async fn finish_login(
        &self,
        code: &str,
        login: &LoginState,
    ) -> Result<Identity, OidcError> {
        let d = self.discovered().await?;
        let caller = &self.http;
        let mut exchange = d
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OidcError::Misconfigured(format!("no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(login.pkce_verifier.clone()));
        if let Some(assertion) = self
            .client_assertion(&d)
            .map_err(OidcError::Misconfigured)?
        {
            exchange = exchange
                .add_extra_param("client_assertion_type", JWT_BEARER)
                .add_extra_param("client_assertion", assertion);
        }
        let token = exchange
            .request_async(caller)
            .await
            .map_err(|e| classify_token_error(e, d.auth))?;
        let id_token = token
            .id_token()
            .ok_or_else(|| OidcError::InvalidToken("the token response has no ID token".into()))?;
        let compact = id_token.to_string();
        let (d, key) = self
            .signing_key(d, &compact)
            .await
            .map_err(|p| OidcError::InvalidToken(p.to_string()))?;
        let verifier = self.id_token_verifier(&d, &key);
        let claims = id_token
            .claims(&verifier, &Nonce::new(login.nonce.clone()))
            .map_err(|e| OidcError::InvalidToken(chain(&e)))?;
        self.check_azp(claims.authorized_party())
            .map_err(OidcError::InvalidToken)?;
        let mut identity = Identity {
            subject: claims.subject().as_str().to_owned(),
            email: claims.email().map(|e| e.as_str().to_owned()),
            preferred_username: claims.preferred_username().map(|u| u.as_str().to_owned()),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_owned()),
            claims: serde_json::Map::new(),
            // Verified above; read again for the claims the crate's typed view leaves out.
            id_token_claims: Jws::parse(&compact, &self.algs)
                .and_then(|jws| jws.claims())
                .unwrap_or_default(),
            tokens: LoginTokens {
                refresh_token: token.refresh_token().map(|t| t.secret().clone()),
                id_token_exp: u64::try_from(claims.expiration().timestamp()).unwrap_or(0),
                id_token: compact,
            },
        };
        if let Some(info) = self
            .userinfo(d, token.access_token().secret(), &identity.subject)
            .await?
        {
            let text = |name: &str| info.get(name).and_then(|v| v.as_str()).map(str::to_owned);
            identity.email = identity.email.or_else(|| text("email"));
            identity.preferred_username = identity
                .preferred_username
                .or_else(|| text("preferred_username"));
            identity.name = identity.name.or_else(|| text("name"));
            identity.claims = info;
        }
        Ok(identity)
    }

    /// How an ID token of the OP is verified, by `key` (the key of the OP's set that signed it):
    /// issuer, audience (this client), the allowed algorithms, expiry, and an `iat` not in the
    /// future beyond the clock leeway. The nonce is the caller's (a login's; none at a refresh).
    fn id_token_verifier<'a>(
        &self,
        d: &Discovered,
        key: &RingJsonWebKey,
    ) -> IdTokenVerifier<'a, RingJsonWebKey> {
        IdTokenVerifier::new_public_client(
            ClientId::new(self.client_id.clone()),
            d.metadata.issuer().clone(),
            jws::only(key),
        )
        .set_allowed_algs(self.algs.clone())
        .set_issue_time_verifier_fn(|iat| {
            if iat.timestamp() > (now_secs() + CLOCK_LEEWAY) as i64 {
                Err("issued in the future".into())
            } else {
                Ok(())
            }
        })
    }

    /// OpenID Connect Core 3.1.3.7, step 5: an ID token's `azp`, when present, must name this
    /// client (the crate leaves it to us; extra audiences it already refuses).
    fn check_azp(&self, azp: Option<&openidconnect::ClientId>) -> Result<(), String> {
        match azp {
            Some(azp) if azp.as_str() != self.client_id => {
                Err(chain(&ClaimsVerificationError::InvalidAudience(
                    "the authorized party (azp) is another client".into(),
                )))
            }
            _ => Ok(()),
        }
    }

    /// The `client_assertion` of a token request (RFC 7523) when the client authenticates
    /// with `private_key_jwt`, for the discovered token endpoint; `None` for the other methods.
    fn client_assertion(&self, d: &Discovered) -> Result<Option<String>, String> {
        if d.auth != TokenEndpointAuth::PrivateKeyJwt {
            return Ok(None);
        }
        let token_endpoint = d
            .metadata
            .token_endpoint()
            .map(|u| u.as_str().to_owned())
            .unwrap_or_default();
        self.credentials
            .assertion(&self.client_id, &token_endpoint, now_secs())
            .map(Some)
    }

    /// The key of the OP's set that signed `token`. An unknown key id (or, for a token without
    /// one, no key of its type) makes one fetch of the key set at once, within the bounds of
    /// [`refetch`]; the provider returned is the one whose set holds the key.
    async fn signing_key(
        &self,
        d: Arc<Discovered>,
        token: &str,
    ) -> Result<(Arc<Discovered>, RingJsonWebKey), KeyProblem> {
        let jws = Jws::parse(token, &self.algs)?;
        match jws.signing_key(d.metadata.jwks()) {
            Ok(key) => {
                let key = key.clone();
                Ok((d, key))
            }
            Err(problem) if problem.wants_refetch() => {
                let fresh = match self.refetch_jwks(&d, problem.kid()).await {
                    Ok(fresh) => fresh,
                    Err(why) => {
                        tracing::warn!(issuer = %self.issuer, kid = problem.kid(), reason = %why, "unknown signing key; the OP's key set was not fetched again");
                        return Err(problem);
                    }
                };
                let key = jws.signing_key(fresh.metadata.jwks())?.clone();
                Ok((fresh, key))
            }
            Err(problem) => Err(problem),
        }
    }

    /// Fetches the OP's key set again for `kid` (single-flight: a caller that waited finds the
    /// set another one fetched).
    async fn refetch_jwks(
        &self,
        seen: &Arc<Discovered>,
        kid: &str,
    ) -> Result<Arc<Discovered>, String> {
        let _guard = self.discovering.lock().await;
        let current = self.current().unwrap_or_else(|| seen.clone());
        if !Arc::ptr_eq(&current, seen) {
            return Ok(current);
        }
        self.refetches
            .lock()
            .map_err(|_| "lock poisoned".to_owned())?
            .allow(kid, Instant::now())
            .map_err(|why| why.to_string())?;
        let jwks =
            JsonWebKeySet::<RingJsonWebKey>::fetch_async(current.metadata.jwks_uri(), &self.http)
                .await
                .map_err(|e| chain(&e))?;
        let metadata = current.metadata.clone().set_jwks(jwks);
        let fresh =
            Arc::new(self.discovered_from(metadata, current.end_session.clone(), current.auth));
        if let Ok(mut slot) = self.discovered.write() {
            *slot = Some(fresh.clone());
        }
        tracing::info!(issuer = %self.issuer, kid, "JWKS re-fetched for an unknown key id");
        Ok(fresh)
    }

    /// The userinfo claims (Core §5.3), as JSON or as a signed JWT (`application/jwt`); `None`
    /// when the OP has no userinfo endpoint.
    async fn userinfo(
        &self,
        d: Arc<Discovered>,
        access_token: &str,
        subject: &str,
    ) -> Result<Option<serde_json::Map<String, serde_json::Value>>, OidcError> {
        let Some(endpoint) = d.metadata.userinfo_endpoint() else {
            return Ok(None);
        };
        let invalid = |why: String| OidcError::InvalidUserinfo(why);
        let request = http::Request::get(endpoint.as_str())
            .header(http::header::ACCEPT, "application/json, application/jwt")
            .header(
                http::header::AUTHORIZATION,
                format!("Bearer {access_token}"),
            )
            .body(Vec::new())
            .map_err(|e| invalid(format!("request: {e}")))?;
        let response = self
            .http
            .send(request)
            .await
            .map_err(|e| OidcError::Unreachable(format!("userinfo: {e}")))?;
        let status = response.status();
        if status.is_server_error() {
            return Err(OidcError::Unreachable(format!(
                "userinfo answered HTTP {status}"
            )));
        }
        if !status.is_success() {
            return Err(invalid(format!("the endpoint answered HTTP {status}")));
        }
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json");
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let (claims, signed) = match essence.as_str() {
            "application/json" => {
                let claims: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_slice(response.body())
                        .map_err(|_| invalid("not a JSON object".into()))?;
                (claims, false)
            }
            "application/jwt" => {
                let token = std::str::from_utf8(response.body())
                    .map_err(|_| invalid("not UTF-8".into()))?
                    .trim();
                let (_, _) = self
                    .signing_key(d, token)
                    .await
                    .map_err(|p| invalid(format!("signed answer: {p}")))?;
                let claims = Jws::parse(token, &self.algs)
                    .and_then(|j| j.claims())
                    .map_err(|p| invalid(format!("signed answer: {p}")))?;
                (claims, true)
            }
            other => return Err(invalid(format!("unexpected content type {other:?}"))),
        };
        jws::check_userinfo(
            &claims,
            signed,
            subject,
            &self.issuer,
            &self.client_id,
            now_secs(),
        )
        .map_err(|p| invalid(p.to_string()))?;
        Ok(Some(claims))
    }

    /// Verifies a logout token the OP posted (Back-Channel Logout 1.0 §2.6) at `now`
    /// (seconds): the signature with the OP's key set, as for ID tokens (an unknown `kid`
    /// fetches it again; never `none`), then the claims ([`logout_token::check_claims`]).
    pub async fn verify_logout_token(
        &self,
        token: &str,
        now: u64,
    ) -> Result<LogoutToken, LogoutTokenProblem> {
        let jws = Jws::parse(token, &self.algs)?;
        if jws.alg == CoreJwsSigningAlgorithm::None {
            return Err(LogoutTokenProblem::DisallowedAlg);
        }
        let discovered = self.discovered().await.map_err(|e| {
            tracing::warn!(error = %e, "the OP's keys are not available to verify a logout token");
            LogoutTokenProblem::KeysUnavailable
        })?;
        // Finds the key (fetching the set again for an unknown kid) and checks the signature.
        self.signing_key(discovered, token).await?;
        let claims = jws.claims()?;
        logout_token::check_claims(&claims, &self.issuer, &self.client_id, now)
    }

    /// The origin of the OP's end-session endpoint, if it has one: where a sign-out form's
    /// redirect goes, so the pages' `form-action` must allow it.
    pub fn end_session_origin(&self) -> Option<String> {
        let origin = self.current()?.end_session.as_ref()?.origin();
        origin.is_tuple().then(|| origin.ascii_serialization())
    }

    /// True when the OP supports RP-initiated logout (an `end_session_endpoint` was discovered).
    pub fn has_end_session(&self) -> bool {
        self.current().is_some_and(|d| d.end_session.is_some())
    }

    /// Where to send the browser to end the OP session, if the OP supports RP-initiated logout.
    /// `id_token_hint`: the ID token the OP issued at this session's login, so it knows whose
    /// session ends and may skip asking (RP-Initiated Logout 1.0 §2).
    pub fn end_session_url(
        &self,
        post_logout_redirect: &str,
        state: Option<&str>,
        id_token_hint: Option<&str>,
    ) -> Option<Url> {
        let d = self.current()?;
        let mut url = d.end_session.clone()?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(hint) = id_token_hint {
                q.append_pair("id_token_hint", hint);
            }
            q.append_pair("client_id", &self.client_id);
            q.append_pair("post_logout_redirect_uri", post_logout_redirect);
            if let Some(s) = state {
                q.append_pair("state", s);
            }
        }
        Some(url)
    }
}

/// The OP's metadata must name the configured issuer exactly (Discovery §4.3).
fn check_issuer(found: &str, configured: &str) -> Result<(), OidcError> {
    if found == configured {
        return Ok(());
    }
    let hint = if found.trim_end_matches('/') == configured.trim_end_matches('/') {
        " (they differ only in the trailing slash: write oidc.issuer exactly as the OP's \
         metadata does)"
    } else {
        ""
    };
    Err(OidcError::Misconfigured(format!(
        "the OP's metadata names issuer {found:?}, but oidc.issuer is {configured:?}; the two must \
         be the same string{hint}"
    )))
}

fn alg_name(alg: &CoreJwsSigningAlgorithm) -> String {
    serde_json::to_value(alg)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{alg:?}"))
}

/// `kty`/`alg`/`kid` of a key, for a diagnosis.
fn describe_key(key: &RingJsonWebKey) -> String {
    let json = serde_json::to_value(key).unwrap_or_default();
    let field = |n: &str| {
        json.get(n)
            .and_then(|v| v.as_str())
            .unwrap_or("-")
            .to_owned()
    };
    format!(
        "{} key (alg {}, kid {})",
        field("kty"),
        field("alg"),
        field("kid")
    )
}

fn classify_token_error<RE: std::error::Error + 'static>(
    e: openidconnect::RequestTokenError<
        RE,
        openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    >,
    auth: TokenEndpointAuth,
) -> OidcError {
    use openidconnect::RequestTokenError as E;
    match e {
        // `invalid_client` is RFC 6749's answer to failed client authentication; some OPs
        // (Glewlwyd) say `unauthorized_client` for it. Either way no code is at fault: the
        // configuration is, and the log says where to look.
        E::ServerResponse(r)
            if matches!(
                r.error(),
                CoreErrorResponseType::InvalidClient | CoreErrorResponseType::UnauthorizedClient
            ) =>
        {
            OidcError::Misconfigured(format!(
                "the OP refused the client ({}) with token_endpoint_auth {}: check oidc.client_id, \
                 the secret or key, and the authentication method registered for this client at \
                 the OP",
                r.error(),
                auth.name()
            ))
        }
        E::ServerResponse(r) => OidcError::CodeRejected(r.error().to_string()),
        E::Request(r) => OidcError::Unreachable(chain(&r)),
        E::Parse(p, _) => OidcError::InvalidToken(format!("unreadable token response: {p}")),
        E::Other(o) => OidcError::Unreachable(o),
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_are_compared_exactly_and_a_mismatch_names_both() {
        for same in [
            "https://x",
            "https://x/",
            "https://x/realms/a",
            "https://x/realms/a/",
        ] {
            assert!(check_issuer(same, same).is_ok(), "{same}");
        }
        for (found, configured) in [
            ("https://x/", "https://x"),
            ("https://x", "https://x/"),
            ("https://x/realms/a/", "https://x/realms/a"),
            ("https://x/realms/a", "https://x/realms/a/"),
        ] {
            let Err(OidcError::Misconfigured(why)) = check_issuer(found, configured) else {
                panic!("{found} accepted for {configured}");
            };
            assert!(
                why.contains(&format!("{found:?}")) && why.contains(&format!("{configured:?}")),
                "{why}"
            );
            assert!(why.contains("trailing slash"), "{why}");
        }
        let Err(OidcError::Misconfigured(why)) = check_issuer("https://a", "https://b") else {
            panic!("another issuer accepted");
        };
        assert!(!why.contains("trailing slash"), "{why}");
    }
}
