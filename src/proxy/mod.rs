//! pingora glue: carries out the [`Decision`] of `pipeline::decide` and nothing more.
//!
//! ```text
//!  pingora phase            what happens here
//!  ─────────────────────    ───────────────────────────────────────────────────────────
//!  request_filter           open session cookie, decide(); answer everything but Forward
//!                           (login redirect, callback, logout, pages, 401/404/405)
//!  upstream_peer            the configured upstream (one peer, pooled keep-alive)
//!  upstream_request_filter  strip identity headers + own cookies, set X-Forwarded-*,
//!                           inject identity            (upstream.rs)
//!  (bodies, upgrades)       streamed by pingora in both directions
//!  fail_to_proxy            upstream down: a 502 page or JSON instead of a bare status
//!  logging                  counters and a debug line per request
//! ```

mod api;
mod custom_ui;
mod handlers;
mod questions;
mod respond;
mod sessions;

use std::sync::Arc;

use async_trait::async_trait;
use http::header::COOKIE;
use ipnet::IpNet;
use pingora::http::RequestHeader;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorSource, ErrorType, Result};

use crate::config::{Config, QuestionUi};
use crate::enrich::{Enriched, Enricher};
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::oidc::Provider;
use crate::pipeline::{decide, is_navigation, Auth, Decision, RequestView, Routes};
use crate::profile::Engine;
use crate::render::Pages;
use crate::session::{now_secs, CookieSealer, RequestCookies, Session as UserSession};
use crate::upstream::{prepare_upstream_request, Peer};

pub use respond::Answer;
pub use sessions::{Sessions, SignedIn};

/// The proxy service: everything a request may need, built once at start-up.
pub struct Gate {
    routes: Routes,
    origin: String,
    public_scheme: &'static str,
    sealer: CookieSealer,
    provider: Arc<Provider>,
    pages: Arc<Pages>,
    engine: Arc<Engine>,
    enricher: Arc<Enricher>,
    ui: QuestionUi,
    languages: std::collections::BTreeSet<String>,
    default_language: String,
    trusted: Vec<IpNet>,
    peer: HttpPeer,
    metrics: Arc<Metrics>,
    /// Session cookies already opened (the hot path's unsealing cache).
    sessions: Sessions,
}

/// Per-request state shared by the phases.
pub struct RequestCtx {
    user: Option<Arc<SignedIn>>,
    profile: Option<Arc<Enriched>>,
    peer: Peer,
    wants_html: bool,
}

/// What `Gate` is built from (shared by every worker).
#[derive(Clone)]
pub struct GateParts {
    pub provider: Arc<Provider>,
    pub pages: Arc<Pages>,
    pub engine: Arc<Engine>,
    pub enricher: Arc<Enricher>,
    pub metrics: Arc<Metrics>,
}

impl Gate {
    pub fn new(config: &Config, parts: GateParts) -> Self {
        let GateParts {
            provider,
            pages,
            engine,
            enricher,
            metrics,
        } = parts;
        let up = &config.upstream;
        let mut peer = HttpPeer::new((up.host.as_str(), up.port), up.tls, up.host.clone());
        peer.options.connection_timeout = Some(up.connect_timeout);
        peer.options.read_timeout = Some(up.read_timeout);
        peer.options.idle_timeout = Some(std::time::Duration::from_secs(60));
        Self {
            routes: Routes::new(&config.server.prefix),
            origin: config.server.public_url.origin().to_owned(),
            public_scheme: if config.server.public_url.is_https() {
                "https"
            } else {
                "http"
            },
            sealer: CookieSealer::new(config),
            provider,
            pages,
            engine,
            enricher,
            ui: config.profiling.ui.clone(),
            languages: crate::profile::i18n::available(
                &config.profiling.default_language,
                &config.profiling.questions,
            ),
            default_language: config.profiling.default_language.clone(),
            trusted: config.server.trusted_proxies.clone(),
            peer,
            metrics,
            sessions: Sessions::new(),
        }
    }

    /// The language of a page for `user`: `ui_locales` and the `locale` claim (kept in the
    /// session), then `Accept-Language`, then the configured default.
    fn language(&self, req: &RequestHeader, user: &UserSession) -> String {
        let accept = req
            .headers
            .get("accept-language")
            .and_then(|v| v.to_str().ok())
            .map(crate::profile::i18n::accept_language)
            .unwrap_or_default();
        crate::profile::i18n::choose(
            user.locales.iter().chain(accept.iter()).map(String::as_str),
            &self.languages,
            &self.default_language,
        )
    }

    fn retry_url(&self) -> String {
        format!("{}/", self.origin)
    }
}

fn header<'a>(req: &'a RequestHeader, name: &str) -> Option<&'a [u8]> {
    req.headers.get(name).map(|v| v.as_bytes())
}

/// True for errors that only mean the client closed its connection.
fn client_went_away(e: &Error) -> bool {
    e.esource() == &ErrorSource::Downstream
        && matches!(
            e.etype(),
            ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError
        )
}

/// True when the client would rather read a page than JSON.
fn accepts_html(req: &RequestHeader) -> bool {
    header(req, "accept")
        .is_some_and(|a| a.windows(9).any(|w| w.eq_ignore_ascii_case(b"text/html")))
}

#[async_trait]
impl ProxyHttp for Gate {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> Self::CTX {
        RequestCtx {
            user: None,
            profile: None,
            peer: Peer {
                ip: None,
                trusted: false,
            },
            wants_html: false,
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Self::CTX) -> Result<bool> {
        let (decision, user) = {
            let req = session.req_header();
            let cookies =
                RequestCookies::parse(req.headers.get_all(COOKIE).iter().map(|v| v.as_bytes()));
            let user = self.sessions.open(&self.sealer, &cookies, now_secs());
            let view = RequestView {
                method: &req.method,
                path: req.uri.path(),
                is_navigation: is_navigation(
                    &req.method,
                    header(req, "accept"),
                    header(req, "x-requested-with"),
                    header(req, "sec-fetch-mode"),
                ),
            };
            let auth = match &user {
                Some(u) => {
                    Auth::SignedIn(u.session.pending(|id| self.engine.question(id).is_some()))
                }
                None => Auth::Anonymous,
            };
            ctx.wants_html = accepts_html(req);
            (decide(&view, auth, &self.routes), user)
        };
        let ip = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        ctx.peer = Peer::new(ip, &self.trusted);

        let answer = match (decision, user) {
            (Decision::Forward, Some(user)) => match self.enricher.for_session(&user.session).await
            {
                Ok(profile) => {
                    Metrics::inc(&self.metrics.forwarded);
                    ctx.profile = Some(profile);
                    ctx.user = Some(user);
                    return Ok(false);
                }
                Err(e) => Err((AppError::Store(e), Vec::new())),
            },
            (Decision::AskQuestions, Some(user)) => {
                Ok(questions::ask(self, session, &user.session))
            }
            (Decision::QuestionsPending, Some(user)) => {
                Ok(questions::pending_json(self, &user.session))
            }
            (Decision::ShowQuestion, Some(user)) => {
                Ok(questions::show(self, session, &user.session))
            }
            (Decision::SubmitAnswer, Some(user)) => {
                questions::submit(self, session, user.into_session()).await
            }
            (Decision::Jwks, _) => Ok(questions::jwks(self)),
            (Decision::ApiPending, Some(user)) => Ok(api::pending(self, &user.session)),
            (Decision::ApiProfile, Some(user)) => api::profile(self, &user.session).await,
            (Decision::ApiAnswers, Some(user)) => {
                api::answers(self, session, user.into_session()).await
            }
            (Decision::Continue, user) => {
                custom_ui::handle(self, session, user.map(SignedIn::into_session)).await
            }
            // Decisions that need a session are only taken with one.
            (
                Decision::Forward
                | Decision::QuestionsPending
                | Decision::ShowQuestion
                | Decision::SubmitAnswer
                | Decision::ApiPending
                | Decision::ApiProfile
                | Decision::ApiAnswers
                | Decision::AskQuestions,
                None,
            )
            | (Decision::Unauthenticated, _) => {
                Metrics::inc(&self.metrics.unauthenticated);
                Ok(Answer::json(
                    401,
                    &serde_json::json!({
                        "error": "unauthenticated",
                        "message": "Sign in first: open this site in a browser to sign in.",
                    }),
                ))
            }
            (Decision::StartLogin, _) => handlers::start_login(self, session).await,
            (Decision::FinishLogin, _) => handlers::finish_login(self, session).await,
            (Decision::Logout, user) => {
                handlers::logout(self, session, user.map(SignedIn::into_session)).await
            }
            (Decision::SignedOut, _) => Ok(handlers::signed_out(self, session)),
            (Decision::NotFound, _) => Err((AppError::NotFound, Vec::new())),
            (Decision::MethodNotAllowed, _) => Err((AppError::MethodNotAllowed, Vec::new())),
        };
        let answer = answer.unwrap_or_else(|(err, cookies)| {
            err.log(session.req_header().uri.path());
            Answer::error(&err, ctx.wants_html, &self.pages, &self.retry_url())
                .with_cookies(cookies)
        });
        respond::write(session, answer).await
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut Self::CTX,
    ) -> Result<Box<HttpPeer>> {
        Ok(Box::new(self.peer.clone()))
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut Self::CTX,
    ) -> Result<()> {
        let profile = match (&ctx.profile, &ctx.user) {
            (Some(p), Some(u)) => Some((p.as_ref(), self.enricher.jwt(p, &u.session))),
            _ => None,
        };
        prepare_upstream_request(
            upstream_request,
            ctx.peer,
            ctx.user.as_deref().map(|u| &u.identity),
            profile,
            &self.sealer,
            self.public_scheme,
        );
        Ok(())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut Self::CTX,
    ) -> FailToProxy {
        let code = match e.etype() {
            ErrorType::HTTPStatus(code) => *code,
            _ => match e.esource() {
                ErrorSource::Upstream => 502,
                ErrorSource::Downstream if client_went_away(e) => 0,
                ErrorSource::Downstream => 400,
                ErrorSource::Internal | ErrorSource::Unset => 500,
            },
        };
        if code == 502 {
            Metrics::inc(&self.metrics.upstream_errors);
            let err = AppError::UpstreamUnavailable(e.to_string());
            err.log(session.req_header().uri.path());
            let answer = Answer::error(&err, ctx.wants_html, &self.pages, &self.retry_url());
            if let Err(write_err) = respond::write(session, answer).await {
                tracing::debug!(error = %write_err, "could not write the 502 answer");
            }
        } else if code > 0 {
            if let Err(write_err) = session.respond_error(code).await {
                tracing::debug!(error = %write_err, "could not write the error answer");
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    /// A client that hangs up mid-request is routine (a closed tab, a load generator stopping):
    /// it is logged at debug level by `logging`, not at error level by pingora.
    fn suppress_error_log(&self, _session: &Session, _ctx: &Self::CTX, e: &Error) -> bool {
        client_went_away(e)
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, _ctx: &mut Self::CTX) {
        if tracing::enabled!(tracing::Level::DEBUG) {
            let status = session.response_written().map_or(0, |r| r.status.as_u16());
            let req = session.req_header();
            tracing::debug!(method = %req.method, path = req.uri.path(), status, error = e.map(|e| e.to_string()), "request");
        }
    }
}
