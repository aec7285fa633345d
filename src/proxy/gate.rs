//! The proxy's state, built once per worker at start-up from its configuration sections:
//! everything a request may need. `Gate::serve` (in `mod.rs`) carries a request through it;
//! the routes read it. It imports no route and no step above it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;
use ipnet::IpNet;

use super::forward::Upstream;
use super::refresh::flight::Refreshes;
use super::reply::page_csp;
use super::request::accepted_languages;
use super::sessions::Sessions;
use crate::config::{
    LogConfig, ProfilingConfig, QuestionUi, ServerConfig, ServerMode, UpstreamConfig,
};
use crate::enrich::Enricher;
use crate::jwt::SigningKey;
use crate::metrics::Metrics;
use crate::oidc::Provider;
use crate::pipeline::Routes;
use crate::policy::{ClaimUse, Policy};
use crate::profile::Engine;
use crate::render::Pages;
use crate::session::revoked::{RevokedSessions, Revoker};
use crate::session::{CookieSealer, Session};
use crate::store::{ProfileStore, UserKey};

/// The proxy service: everything a request may need, built once at start-up.
pub struct Gate {
    pub(super) routes: Routes,
    pub(super) origin: String,
    pub(super) public_scheme: &'static str,
    pub(super) sealer: CookieSealer,
    pub(super) provider: Arc<Provider>,
    pub(super) pages: Arc<Pages>,
    pub(super) engine: Arc<Engine>,
    /// The profile views and JWTs (a cache; loads through `store` on a miss).
    pub(super) enricher: Arc<Enricher>,
    /// Where answers, skips and logins are written.
    pub(super) store: Arc<dyn ProfileStore>,
    /// The proxy's signing key: the custom UI's tokens and the JWKS route.
    pub(super) key: Arc<SigningKey>,
    pub(super) ui: QuestionUi,
    pub(super) languages: BTreeSet<String>,
    pub(super) default_language: String,
    pub(super) trusted: Vec<IpNet>,
    pub(super) upstream: Upstream,
    pub(super) read_timeout: Duration,
    pub(super) metrics: Arc<Metrics>,
    /// Session cookies already opened (the hot path's unsealing cache).
    pub(super) sessions: Sessions,
    /// `server.max_header_bytes`: the longest header line answered (431 beyond).
    pub(super) max_header_bytes: usize,
    /// `server.max_request_head_bytes`: hyper's limit on the whole request head.
    pub(super) max_request_head_bytes: usize,
    /// The origin the custom UI posts back to `/continue` from (`profiling.redirect_url`'s);
    /// the public origin when the hosted page is used.
    pub(super) continue_origin: String,
    /// `[access]` and `[[routes]]`.
    pub(super) policy: Arc<Policy>,
    /// The claims a session keeps: those the policy and the question conditions read.
    pub(super) session_claims: ClaimUse,
    /// No rule restricts anyone: the policy is not consulted.
    pub(super) policy_open: bool,
    /// A rule reads answers: its verdicts need the profile.
    pub(super) policy_reads_answers: bool,
    /// Some question is asked just in time (`on_paths`).
    pub(super) on_paths: bool,
    /// `log.access`: one access line per request.
    pub(super) access_log: bool,
    /// Ends sessions (logout, the OP's logout, a refused refresh) here and on every replica;
    /// its view is what the hot path reads.
    pub(super) revoker: Revoker,
    /// The refreshes of this process (single-flight per session across its workers).
    pub(super) refreshes: Arc<Refreshes>,
    /// `server.mode = "forward_auth"`: `{prefix}/auth` answers and nothing is forwarded.
    pub(super) forward_auth: bool,
    /// `public_url`'s `host[:port]` as browsers send it (lower case): the only
    /// `X-Forwarded-Host` a forward-auth question may name.
    pub(super) authority: String,
}

/// What `Gate` is built from besides its configuration (shared by every worker).
#[derive(Clone)]
pub struct GateParts {
    pub provider: Arc<Provider>,
    pub pages: Arc<Pages>,
    pub engine: Arc<Engine>,
    pub enricher: Arc<Enricher>,
    pub store: Arc<dyn ProfileStore>,
    pub key: Arc<SigningKey>,
    pub metrics: Arc<Metrics>,
    pub policy: Arc<Policy>,
    /// The revoked sessions this process knows of (kept fresh from the store).
    pub revoked: Arc<RevokedSessions>,
    /// The session refreshes under way and made in this process (one for every worker).
    pub refreshes: Arc<Refreshes>,
}

impl Gate {
    /// One worker's gate from the `[server]`, `[upstream]`, `[profiling]` and `[log]` sections,
    /// its own cookie sealer and the shared parts. Fails only when `upstream.url` does not make a
    /// request URI (see [`Upstream::new`]).
    pub fn new(
        server: &ServerConfig,
        upstream: &UpstreamConfig,
        profiling: &ProfilingConfig,
        log: &LogConfig,
        sealer: CookieSealer,
        parts: GateParts,
    ) -> Result<Self, http::uri::InvalidUri> {
        let GateParts {
            provider,
            pages,
            engine,
            enricher,
            store,
            key,
            metrics,
            policy,
            revoked,
            refreshes,
        } = parts;
        let mut session_claims = policy.claims();
        session_claims.merge(&engine.claims());
        let on_paths = engine.questions().iter().any(|q| !q.on_paths.is_empty());
        // Erases and imports (here or on another replica) reach the caches of user data; a
        // gate built by a reload subscribes anew, the store's hub outlives it.
        let sessions = Sessions::new();
        sessions.listen(store.user_changes());
        let forget: Arc<dyn crate::store::ForgetUsers> = enricher.clone();
        store.user_changes().subscribe(Arc::downgrade(&forget));
        let revoker = Revoker::new(store.clone(), revoked, sealer.lifetime());
        Ok(Self {
            revoker,
            refreshes,
            routes: Routes::new(&server.prefix),
            origin: server.public_url.origin().to_owned(),
            public_scheme: if server.public_url.is_https() {
                "https"
            } else {
                "http"
            },
            sealer,
            provider,
            pages,
            engine,
            enricher,
            store,
            key,
            ui: profiling.ui.clone(),
            languages: crate::profile::i18n::available(
                &profiling.default_language,
                &profiling.questions,
            ),
            default_language: profiling.default_language.clone(),
            trusted: server.trusted_proxies.clone(),
            upstream: Upstream::new(upstream)?,
            read_timeout: upstream.read_timeout,
            metrics,
            sessions,
            max_header_bytes: server.max_header_bytes,
            max_request_head_bytes: server.max_request_head_bytes,
            continue_origin: match &profiling.ui {
                QuestionUi::Redirect { url, .. } => url.origin().ascii_serialization(),
                QuestionUi::Hosted => server.public_url.origin().to_owned(),
            },
            policy_open: policy.is_open(),
            policy_reads_answers: policy.uses_answers(),
            on_paths,
            policy,
            session_claims,
            access_log: log.access,
            forward_auth: server.mode == ServerMode::ForwardAuth,
            authority: server
                .public_url
                .origin()
                .split_once("://")
                .map_or("", |(_, authority)| authority)
                .to_ascii_lowercase(),
        })
    }

    /// The language of a page for `user`: `ui_locales` and the `locale` claim (kept in the
    /// session), then `Accept-Language`, then the configured default.
    pub(super) fn language(&self, req: &Parts, user: &Session) -> String {
        let accept = accepted_languages(req);
        crate::profile::i18n::choose(
            user.locales.iter().chain(accept.iter()).map(String::as_str),
            &self.languages,
            &self.default_language,
        )
    }

    /// The store's key of the user `subject` (of the configured OP).
    pub(super) fn user_key(&self, subject: &str) -> UserKey {
        self.enricher.user_key(subject)
    }

    /// The pages' Content-Security-Policy: their sign-out forms end at the OP's end-session
    /// endpoint, whose origin is known from discovery.
    pub(super) fn page_csp(&self) -> String {
        page_csp(self.provider.end_session_origin().as_deref())
    }

    pub(super) fn retry_url(&self) -> String {
        format!("{}/", self.origin)
    }
}
