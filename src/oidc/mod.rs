//! OpenID Connect: discovery, the start of a login (authorization URL with state, nonce and
//! PKCE S256), and the callback's verification (code exchange, ID token, userinfo).
//! Only logins and logouts come here; the signed-in hot path never calls the OP.

mod backchannel;
mod jwk;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClaimName, CoreClaimType,
    CoreClientAuthMethod, CoreErrorResponseType, CoreGenderClaim, CoreGrantType,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreSubjectIdentifierType, CoreTokenIntrospectionResponse, CoreTokenResponse,
};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, Client, ClientId, ClientSecret, CsrfToken,
    EmptyAdditionalClaims, EmptyAdditionalProviderMetadata, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, JsonWebKeySet, LogoutProviderMetadata, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata, RedirectUrl, Scope,
    SignatureVerificationError, StandardErrorResponse, TokenResponse,
};
use url::Url;

pub use backchannel::{https_connector, BackChannel, BackChannelError};

use crate::config::Config;
use crate::session::{now_secs, LoginState};

use jwk::RingJsonWebKey;

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

/// Shortest wait between two JWKS re-fetches triggered by unknown key ids.
const JWKS_REFRESH_INTERVAL: Duration = Duration::from_secs(10);
/// How far in the future an ID token's `iat` may lie (clock skew).
const IAT_LEEWAY: u64 = 60;
/// Bound on remembered (used) login states.
const MAX_USED_STATES: usize = 100_000;

/// Why a login could not be started or finished.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The OP did not answer (network, timeout, 5xx, unreadable discovery).
    #[error("identity provider unreachable: {0}")]
    Unreachable(String),
    /// The OP refused the authorization code (expired, replayed, wrong verifier).
    #[error("identity provider rejected the authorization code: {0}")]
    CodeRejected(String),
    /// The ID token (or userinfo) failed verification.
    #[error("ID token rejected: {0}")]
    InvalidToken(String),
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
}

/// Custom claims of a userinfo answer, kept whatever their names.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ExtraClaims {
    #[serde(flatten)]
    pub claims: serde_json::Map<String, serde_json::Value>,
}

impl openidconnect::AdditionalClaims for ExtraClaims {}

/// What discovery found, plus the client built from it.
struct Discovered {
    metadata: ProviderMetadataWithLogout,
    client: OidcClient,
    end_session: Option<Url>,
    jwks_fetched_at: Instant,
}

/// The OpenID Provider as profilegate sees it.
pub struct Provider {
    issuer: String,
    client_id: String,
    client_secret: String,
    redirect_url: RedirectUrl,
    scopes: Vec<Scope>,
    algs: Vec<CoreJwsSigningAlgorithm>,
    http: BackChannel,
    discovered: RwLock<Option<Arc<Discovered>>>,
    discovering: tokio::sync::Mutex<()>,
    used_states: Mutex<HashMap<String, u64>>,
}

impl Provider {
    /// A provider not yet discovered. `redirect_path` is the callback route.
    pub fn new(config: &Config, redirect_path: &str) -> Result<Self, String> {
        let redirect = format!("{}{}", config.server.public_url.origin(), redirect_path);
        let redirect_url = RedirectUrl::new(redirect).map_err(|e| e.to_string())?;
        let algs = config
            .oidc
            .signing_algs
            .iter()
            .map(|a| {
                serde_json::from_value(serde_json::Value::String(a.clone()))
                    .map_err(|_| format!("unsupported algorithm {a}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            issuer: config.oidc.issuer.as_str().trim_end_matches('/').to_owned(),
            client_id: config.oidc.client_id.clone(),
            client_secret: config.oidc.client_secret.expose().to_owned(),
            redirect_url,
            scopes: config
                .oidc
                .scopes
                .iter()
                .map(|s| Scope::new(s.clone()))
                .collect(),
            algs,
            http: BackChannel::new(config.oidc.timeout),
            discovered: RwLock::new(None),
            discovering: tokio::sync::Mutex::new(()),
            used_states: Mutex::new(HashMap::new()),
        })
    }

    /// The configured issuer, as written (without a trailing slash).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// True once discovery has succeeded.
    pub fn is_ready(&self) -> bool {
        self.discovered.read().map(|d| d.is_some()).unwrap_or(false)
    }

    /// Runs discovery with `http` (a client of the current runtime) and keeps the result.
    /// Used at start-up on a runtime that is dropped afterwards.
    pub async fn discover_with(&self, http: &BackChannel) -> Result<(), OidcError> {
        let found = self.fetch_discovery(http).await?;
        if let Ok(mut slot) = self.discovered.write() {
            *slot = Some(Arc::new(found));
        }
        Ok(())
    }

    async fn fetch_discovery(&self, http: &BackChannel) -> Result<Discovered, OidcError> {
        let issuer = IssuerUrl::new(self.issuer.clone())
            .map_err(|e| OidcError::Unreachable(format!("issuer URL: {e}")))?;
        let metadata = ProviderMetadataWithLogout::discover_async(issuer, http)
            .await
            .map_err(|e| OidcError::Unreachable(format!("discovery failed: {}", chain(&e))))?;
        let end_session = metadata
            .additional_metadata()
            .end_session_endpoint
            .as_ref()
            .map(|u| u.url().clone());
        Ok(self.discovered_from(metadata, end_session))
    }

    fn discovered_from(
        &self,
        metadata: ProviderMetadataWithLogout,
        end_session: Option<Url>,
    ) -> Discovered {
        let client = OidcClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(self.client_id.clone()),
            Some(ClientSecret::new(self.client_secret.clone())),
        )
        .set_redirect_uri(self.redirect_url.clone());
        Discovered {
            metadata,
            client,
            end_session,
            jwks_fetched_at: Instant::now(),
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

    /// The OP's authorization URL for a login with this state, nonce and PKCE challenge.
    pub async fn authorization_url(
        &self,
        state: &str,
        nonce: &str,
        challenge: PkceCodeChallenge,
        ui_locales: Option<&str>,
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
        let token = d
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OidcError::Unreachable(format!("no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(login.pkce_verifier.clone()))
            .request_async(caller)
            .await
            .map_err(classify_token_error)?;
        let id_token = token
            .id_token()
            .ok_or_else(|| OidcError::InvalidToken("the token response has no ID token".into()))?;
        let nonce = Nonce::new(login.nonce.clone());

        let verify = |d: &Discovered| -> Result<Identity, ClaimsVerificationError> {
            let verifier = d
                .client
                .id_token_verifier()
                .set_allowed_algs(self.algs.clone())
                .set_issue_time_verifier_fn(|iat| {
                    if iat.timestamp() > (now_secs() + IAT_LEEWAY) as i64 {
                        Err("issued in the future".into())
                    } else {
                        Ok(())
                    }
                });
            let claims = id_token.claims(&verifier, &nonce)?;
            // OpenID Connect Core 3.1.3.7, step 5: an `azp`, when present, must name this
            // client (the crate leaves it to us; extra audiences it already refuses).
            if claims
                .authorized_party()
                .is_some_and(|azp| azp.as_str() != self.client_id)
            {
                return Err(ClaimsVerificationError::InvalidAudience(
                    "the authorized party (azp) is another client".into(),
                ));
            }
            Ok(Identity {
                subject: claims.subject().as_str().to_owned(),
                email: claims.email().map(|e| e.as_str().to_owned()),
                preferred_username: claims.preferred_username().map(|u| u.as_str().to_owned()),
                name: claims
                    .name()
                    .and_then(|n| n.get(None))
                    .map(|n| n.as_str().to_owned()),
                claims: serde_json::Map::new(),
            })
        };
        let mut identity = match verify(&d) {
            Ok(identity) => identity,
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                // The OP may have rotated its keys: fetch the JWKS again (rate-limited), retry once.
                let fresh = self.refresh_jwks(&d).await?;
                verify(&fresh).map_err(|e| OidcError::InvalidToken(chain(&e)))?
            }
            Err(e) => return Err(OidcError::InvalidToken(chain(&e))),
        };

        if let Ok(request) = d.client.user_info(
            token.access_token().clone(),
            Some(openidconnect::SubjectIdentifier::new(
                identity.subject.clone(),
            )),
        ) {
            let info: openidconnect::UserInfoClaims<
                ExtraClaims,
                openidconnect::core::CoreGenderClaim,
            > = request.request_async(caller).await.map_err(|e| match e {
                openidconnect::UserInfoError::Request(r) => OidcError::Unreachable(chain(&r)),
                other => OidcError::InvalidToken(format!("userinfo: {}", chain(&other))),
            })?;
            identity.email = identity
                .email
                .or_else(|| info.email().map(|e| e.as_str().to_owned()));
            identity.preferred_username = identity
                .preferred_username
                .or_else(|| info.preferred_username().map(|u| u.as_str().to_owned()));
            identity.name = identity.name.or_else(|| {
                info.name()
                    .and_then(|n| n.get(None))
                    .map(|n| n.as_str().to_owned())
            });
            if let Ok(serde_json::Value::Object(all)) = serde_json::to_value(&info) {
                identity.claims = all;
            }
        }
        Ok(identity)
    }

    async fn refresh_jwks(&self, seen: &Arc<Discovered>) -> Result<Arc<Discovered>, OidcError> {
        let _guard = self.discovering.lock().await;
        let current = self.discovered().await?;
        if !Arc::ptr_eq(&current, seen) || current.jwks_fetched_at.elapsed() < JWKS_REFRESH_INTERVAL
        {
            return Ok(current);
        }
        let jwks =
            JsonWebKeySet::<RingJsonWebKey>::fetch_async(current.metadata.jwks_uri(), &self.http)
                .await
                .map_err(|e| OidcError::Unreachable(format!("JWKS: {}", chain(&e))))?;
        let metadata = current.metadata.clone().set_jwks(jwks);
        let fresh = Arc::new(self.discovered_from(metadata, current.end_session.clone()));
        if let Ok(mut slot) = self.discovered.write() {
            *slot = Some(fresh.clone());
        }
        tracing::info!(issuer = %self.issuer, "JWKS re-fetched for an unknown key id");
        Ok(fresh)
    }

    /// Where to send the browser to end the OP session, if the OP supports RP-initiated logout.
    pub fn end_session_url(&self, post_logout_redirect: &str, state: Option<&str>) -> Option<Url> {
        let d = self.current()?;
        let mut url = d.end_session.clone()?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", &self.client_id);
            q.append_pair("post_logout_redirect_uri", post_logout_redirect);
            if let Some(s) = state {
                q.append_pair("state", s);
            }
        }
        Some(url)
    }
}

fn classify_token_error<RE: std::error::Error + 'static>(
    e: openidconnect::RequestTokenError<
        RE,
        openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    >,
) -> OidcError {
    use openidconnect::RequestTokenError as E;
    match e {
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
