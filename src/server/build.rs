//! What start-up builds before anything is served (templates, OIDC client, store, profile-JWT
//! key, discovery, the gate's parts), shared by `run` (pingora) and `InProcess` (the tests'
//! server) so both serve the same gate.

use std::net::TcpListener;
use std::sync::Arc;

use super::error::StartError;
use crate::config::{Config, UpstreamConfig};
use crate::enrich::Enricher;
use crate::jwt::SigningKey;
use crate::metrics::Metrics;
use crate::oidc::{BackChannel, OidcError, Provider};
use crate::pipeline::Routes;
use crate::profile::Engine;
use crate::proxy::{Gate, GateParts, Refreshes};
use crate::render::{Pages, Theme};
use crate::session::revoked::RevokedSessions;
use crate::store::ProfileStore;

/// Name of the generated profile-JWT key in the store.
const JWT_KEY_NAME: &str = "profile-jwt-es256-pkcs8";

/// The OIDC callback's absolute URL, as registered at the OP: the public origin and the
/// callback route.
pub(super) fn callback_url(config: &Config, routes: &Routes) -> String {
    format!("{}{}", config.server.public_url.origin(), routes.callback)
}

/// The profile-JWT signing key: configured, or generated once and kept in the store.
async fn signing_key(
    upstream: &UpstreamConfig,
    store: &dyn ProfileStore,
) -> Result<SigningKey, StartError> {
    if let Some(pem) = &upstream.jwt_key_pem {
        return Ok(SigningKey::from_pem(pem.expose())?);
    }
    let generate = || SigningKey::generate_pkcs8().unwrap_or_default();
    let der = store.get_or_create_secret(JWT_KEY_NAME, &generate).await?;
    Ok(SigningKey::from_pkcs8(&der)?)
}

/// What start-up builds before anything is served, shared by [`run`] (pingora) and
/// [`InProcess`] (the tests' server), so both serve the same gate.
pub(super) struct Built {
    pub(super) store: Arc<dyn ProfileStore>,
    pub(super) provider: Arc<Provider>,
    pub(super) metrics: Arc<Metrics>,
    /// What every worker's [`Gate`] is built from.
    pub(super) parts: GateParts,
}

/// Builds the templates, the OIDC client, the store, the profile-JWT key, runs discovery
/// (logged; a failure is not fatal) and makes the gate's parts. With `check_ports`, first
/// fails when a configured port is taken (pingora would only log it); the in-process server
/// passes `false`, its caller has bound the listener already.
pub(super) async fn build(config: &Config, check_ports: bool) -> Result<Built, StartError> {
    let routes = Routes::new(&config.server.prefix);
    let pages = pages(config)?;
    let provider = Arc::new(
        Provider::new(&config.oidc, callback_url(config, &routes)).map_err(StartError::Oidc)?,
    );
    let metrics = Arc::new(Metrics::default());

    // Fail early and clearly when a port is taken (pingora would only log it).
    if check_ports {
        let redirect = config
            .server
            .http_redirect_listen
            .map(|addr| ("server.http_redirect_listen", addr));
        for (key, addr) in [
            ("server.listen", config.server.listen),
            ("server.admin_listen", config.server.admin_listen),
        ]
        .into_iter()
        .chain(redirect)
        {
            TcpListener::bind(addr).map_err(|reason| StartError::Listen { key, addr, reason })?;
        }
    }

    let store = crate::store::open(&config.store).await?;
    let key = signing_key(&config.upstream, store.as_ref()).await?;
    tracing::info!(kid = key.kid(), "profile JWT signing key ready");
    let http = BackChannel::new(config.oidc.timeout);
    match provider.discover_with(&http).await {
        Ok(found) => tracing::info!(
            issuer = %found.issuer,
            token_endpoint_auth = found.token_endpoint_auth,
            "OpenID Provider discovered"
        ),
        Err(e @ OidcError::Unreachable(_)) => tracing::warn!(
            issuer = %provider.issuer(),
            error = %e,
            "OpenID Provider not reachable yet; discovery will be retried at the first login"
        ),
        Err(e) => tracing::error!(
            issuer = %provider.issuer(),
            error = %e,
            "OpenID Provider discovery failed: sign-ins cannot work until the configuration or the OP is fixed (retried at each login)"
        ),
    }

    let key = Arc::new(key);
    let parts = GateParts {
        provider: provider.clone(),
        pages,
        engine: engine(config),
        enricher: enricher(config, &key, &provider),
        store: store.clone(),
        key,
        metrics: metrics.clone(),
        policy: Arc::new(config.policy.clone()),
        revoked: Arc::new(RevokedSessions::new()),
        refreshes: Arc::new(Refreshes::new()),
    };
    // Sessions revoked before this start are refused from the first request on; a thread keeps
    // the view fresh from then on (it stops when the store is dropped).
    let since_ms = crate::session::revoked::load(&parts.revoked, &*store).await?;
    crate::session::revoked::spawn_poller(&parts.revoked, &store, since_ms)
        .map_err(StartError::Runtime)?;
    Ok(Built {
        store,
        provider,
        metrics,
        parts,
    })
}

/// The templates and the theme.
fn pages(config: &Config) -> Result<Arc<Pages>, StartError> {
    Ok(Arc::new(Pages::new(
        Theme::from_config(&config.theme, &config.server.public_url),
        &config.theme.templates,
    )?))
}

/// The questions.
fn engine(config: &Config) -> Arc<Engine> {
    Arc::new(Engine::new(
        config.profiling.questions.clone(),
        config.profiling.questions_per_login,
    ))
}

/// The profile views and JWTs (with an empty cache).
fn enricher(config: &Config, key: &Arc<SigningKey>, provider: &Provider) -> Arc<Enricher> {
    Arc::new(Enricher::new(
        key.clone(),
        provider.issuer().to_owned(),
        config.server.public_url.origin().to_owned(),
        config.upstream.url.origin().ascii_serialization(),
        config.upstream.jwt_lifetime.as_secs(),
        config.store.profile_cache_users,
    ))
}

/// The parts a reload makes anew from `config` — templates and theme, questions, the profile
/// cache (empty), the policy — with everything else carried over from `running`: the OIDC
/// client, the store, the signing key, the metrics, and whatever else the parts hold.
pub(super) fn reloaded_parts(
    config: &Config,
    running: &GateParts,
) -> Result<GateParts, StartError> {
    Ok(GateParts {
        pages: pages(config)?,
        engine: engine(config),
        enricher: enricher(config, &running.key, &running.provider),
        policy: Arc::new(config.policy.clone()),
        ..running.clone()
    })
}

/// One worker's gate: its own cookie sealer and upstream pool over the shared parts.
pub(super) fn gate(config: &Config, parts: &GateParts) -> Result<Gate, StartError> {
    let sealer = crate::session::CookieSealer::new(
        &config.session,
        &config.server.public_url,
        config.oidc.login_timeout,
    );
    Ok(Gate::new(
        &config.server,
        &config.upstream,
        &config.profiling,
        &config.log,
        sealer,
        parts.clone(),
    )?)
}
