//! The proxy: carries out the [`Decision`] of `pipeline::decide` and nothing more.
//!
//! pingora runs the server (one single-threaded service per worker, each on its own listening
//! socket, signals, graceful shutdown) and hands every accepted connection to [`Worker`], which
//! speaks HTTP/1.1 on it with hyper. Per request:
//!
//! ```text
//!  step                     what happens here
//!  ─────────────────────    ───────────────────────────────────────────────────────────
//!  edge                     header line sizes (431; the whole head: hyper, 431), request
//!                           target a path, decoded path free of control bytes and UTF-8
//!                           (400)                                      (edge.rs)
//!  decide                   open session cookie, decide(); a state-changing route from
//!                           another origin gets 403 (edge.rs); answer everything but
//!                           Forward (login redirect, callback, logout, pages, 401/404/405)
//!  prepare                  strip hop-by-hop and identity headers + own cookies, set
//!                           X-Forwarded-*, inject identity            (upstream.rs)
//!  forward                  the configured upstream, pooled keep-alive (forward.rs);
//!                           bodies stream both ways, upgrades become a tunnel
//!  upstream down            a 502 page or JSON instead of a bare status
//! ```

mod api;
mod custom_ui;
pub mod edge;
mod exchange;
mod forward;
mod handlers;
mod questions;
mod respond;
mod sessions;

use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::header::{HeaderName, ACCEPT, COOKIE};
use http::request::Parts;
use http::{Request, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use ipnet::IpNet;
use pingora::apps::ServerApp;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncRead, AsyncWrite};

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

pub use exchange::Session;
pub use forward::request_uri as upstream_request_uri;
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
    upstream: forward::Upstream,
    read_timeout: Duration,
    metrics: Arc<Metrics>,
    /// Session cookies already opened (the hot path's unsealing cache).
    sessions: Sessions,
    /// `server.max_header_bytes`: the longest header line answered (431 beyond).
    max_header_bytes: usize,
    /// `server.max_request_head_bytes`: hyper's limit on the whole request head.
    max_request_head_bytes: usize,
    /// The origin the custom UI posts back to `/continue` from (`profiling.redirect_url`'s);
    /// the public origin when the hosted page is used.
    continue_origin: String,
}

/// What every answer of the proxy's own, and every forwarded response, is sent as.
pub type ProxyBody = Either<forward::TimedBody, Full<Bytes>>;

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
    /// Fails only when `upstream.url` does not make a request URI (see [`forward::Upstream::new`]).
    pub fn new(config: &Config, parts: GateParts) -> Result<Self, http::uri::InvalidUri> {
        let GateParts {
            provider,
            pages,
            engine,
            enricher,
            metrics,
        } = parts;
        Ok(Self {
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
            upstream: forward::Upstream::new(&config.upstream)?,
            read_timeout: config.upstream.read_timeout,
            metrics,
            sessions: Sessions::new(),
            max_header_bytes: config.server.max_header_bytes,
            max_request_head_bytes: config.server.max_request_head_bytes,
            continue_origin: match &config.profiling.ui {
                QuestionUi::Redirect { url, .. } => url.origin().ascii_serialization(),
                QuestionUi::Hosted => config.server.public_url.origin().to_owned(),
            },
        })
    }

    /// The language of a page for `user`: `ui_locales` and the `locale` claim (kept in the
    /// session), then `Accept-Language`, then the configured default.
    fn language(&self, req: &Parts, user: &UserSession) -> String {
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

    /// The pages' Content-Security-Policy: their sign-out forms end at the OP's end-session
    /// endpoint, whose origin is known from discovery.
    fn page_csp(&self) -> String {
        respond::page_csp(self.provider.end_session_origin().as_deref())
    }

    fn retry_url(&self) -> String {
        format!("{}/", self.origin)
    }
}

/// Header names the decision reads, parsed once (a `&str` lookup parses the name every time).
const X_REQUESTED_WITH: HeaderName = HeaderName::from_static("x-requested-with");
const SEC_FETCH_MODE: HeaderName = HeaderName::from_static("sec-fetch-mode");

fn header<'a>(req: &'a Parts, name: &HeaderName) -> Option<&'a [u8]> {
    req.headers.get(name).map(|v| v.as_bytes())
}

/// True when the client would rather read a page than JSON (given its `Accept` header).
fn accepts_html(accept: Option<&[u8]>) -> bool {
    accept.is_some_and(|a| a.windows(9).any(|w| w.eq_ignore_ascii_case(b"text/html")))
}

impl Gate {
    /// Answers one request: forwards it or answers it here.
    pub async fn serve(&self, req: Request<Incoming>, client: &Peer) -> Response<ProxyBody> {
        let (head, body) = req.into_parts();
        // The edge, before anything reads the request: header sizes (before the session cookie
        // is parsed), then the request target (before the decision).
        if let Some(longest) = edge::oversized_header_line(&head.headers, self.max_header_bytes) {
            return self.refuse(
                &head,
                AppError::HeaderTooLarge {
                    longest,
                    limit: self.max_header_bytes,
                },
                head.uri.path(),
            );
        }
        if head.uri.scheme().is_some() || head.uri.authority().is_some() {
            // Absolute or authority form (a forward-proxy request, CONNECT): the upstream must
            // never see a foreign authority, and the decision only knows paths.
            let err = AppError::BadRequest("the request target must be a path".into());
            return self.refuse(&head, err, &head.uri.to_string());
        }
        if let Err(bad) = edge::check_path(head.uri.path()) {
            let err = AppError::BadRequest(bad.reason().into());
            return self.refuse(&head, err, head.uri.path());
        }
        let mut session = Session::new(head, body);
        let (decision, user, wants_html) = {
            let req = session.req_header();
            let cookies =
                RequestCookies::parse(req.headers.get_all(COOKIE).iter().map(|v| v.as_bytes()));
            let user = self.sessions.open(&self.sealer, &cookies, now_secs());
            let accept = header(req, &ACCEPT);
            let view = RequestView {
                method: &req.method,
                path: req.uri.path(),
                is_navigation: is_navigation(
                    &req.method,
                    accept,
                    header(req, &X_REQUESTED_WITH),
                    header(req, &SEC_FETCH_MODE),
                ),
            };
            let auth = match &user {
                Some(u) => {
                    Auth::SignedIn(u.session.pending(|id| self.engine.question(id).is_some()))
                }
                None => Auth::Anonymous,
            };
            (
                decide(&view, auth, &self.routes),
                user,
                accepts_html(accept),
            )
        };

        if let Some(allowed) = self.state_changing(decision) {
            let req = session.req_header();
            let checked = edge::single(&req.headers, &edge::ORIGIN).and_then(|origin| {
                let site = edge::single(&req.headers, &edge::SEC_FETCH_SITE)?;
                edge::check_origin(&req.method, origin, site, allowed)
            });
            if let Err(why) = checked {
                // Refused before the route runs: nothing is read, stored or set.
                let err = AppError::CrossOrigin(why.to_string());
                return self.refuse(req, err, req.uri.path());
            }
        }

        // Who is signed in, for an error page's sign-out button; copied only off the hot path
        // (a forwarded request renders no page of ours, or its own error below).
        let account = user
            .as_ref()
            .filter(|_| decision != Decision::Forward)
            .map(|u| {
                let who = u.session.display_name().map(str::to_owned);
                (who, u.session.csrf.clone())
            });
        let answer = match (decision, user) {
            (Decision::Forward, Some(user)) => match self.enricher.for_session(&user.session).await
            {
                Ok(profile) => {
                    Metrics::inc(&self.metrics.forwarded);
                    return self
                        .forward(session, client, &user, &profile, wants_html)
                        .await;
                }
                Err(e) => Err((AppError::Store(e), Vec::new())),
            },
            (Decision::AskQuestions, Some(user)) => {
                Ok(questions::ask(self, &session, &user.session))
            }
            (Decision::QuestionsPending, Some(user)) => {
                Ok(questions::pending_json(self, &user.session))
            }
            (Decision::ShowQuestion, Some(user)) => {
                Ok(questions::show(self, &session, &user.session))
            }
            (Decision::SubmitAnswer, Some(user)) => {
                questions::submit(self, &mut session, user.into_session()).await
            }
            (Decision::Jwks, _) => Ok(questions::jwks(self)),
            (Decision::ApiPending, Some(user)) => Ok(api::pending(self, &user.session)),
            (Decision::ApiProfile, Some(user)) => api::profile(self, &user.session).await,
            (Decision::ApiAnswers, Some(user)) => {
                api::answers(self, &mut session, user.into_session()).await
            }
            (Decision::Continue, user) => {
                custom_ui::handle(self, &mut session, user.map(SignedIn::into_session)).await
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
            (Decision::StartLogin, _) => handlers::start_login(self, &mut session).await,
            (Decision::FinishLogin, _) => handlers::finish_login(self, &mut session).await,
            (Decision::Logout, user) => {
                handlers::logout(self, &mut session, user.map(SignedIn::into_session)).await
            }
            (Decision::SignedOut, _) => Ok(handlers::signed_out(self, &session)),
            (Decision::NotFound, _) => Err((AppError::NotFound, Vec::new())),
            (Decision::MethodNotAllowed, _) => Err((AppError::MethodNotAllowed, Vec::new())),
        };
        let req = session.req_header();
        let answer = answer.unwrap_or_else(|(err, cookies)| {
            err.log(req.uri.path());
            let signed_in = account.as_ref().map(|(who, csrf)| {
                crate::render::SignedIn::new(who.as_deref(), &self.routes.logout, csrf, "en")
            });
            Answer::error(&err, wants_html, &self.pages, &self.retry_url(), signed_in)
                .with_cookies(cookies)
        });
        log_request(req, answer.status);
        answer.into_response(req.method == http::Method::HEAD, &self.page_csp())
    }

    /// The origins allowed to send `decision`'s request when it changes state: the routes that
    /// act on a POST (answers, skips, the API's answers, logout, the custom UI's post-back).
    /// Every new state-changing route is listed here; the match has no catch-all on purpose.
    fn state_changing(&self, decision: Decision) -> Option<edge::AllowedOrigin<'_>> {
        match decision {
            Decision::SubmitAnswer | Decision::ApiAnswers | Decision::Logout => {
                Some(edge::AllowedOrigin::Public(&self.origin))
            }
            Decision::Continue => Some(edge::AllowedOrigin::CustomUi(&self.continue_origin)),
            Decision::StartLogin
            | Decision::Unauthenticated
            | Decision::FinishLogin
            | Decision::SignedOut
            | Decision::Forward
            | Decision::AskQuestions
            | Decision::QuestionsPending
            | Decision::ShowQuestion
            | Decision::Jwks
            | Decision::ApiPending
            | Decision::ApiProfile
            | Decision::NotFound
            | Decision::MethodNotAllowed => None,
        }
    }

    /// An answer given before any route ran: the error page or JSON, logged with `target`.
    fn refuse(&self, head: &Parts, err: AppError, target: &str) -> Response<ProxyBody> {
        err.log(target);
        let answer = Answer::error(
            &err,
            accepts_html(header(head, &ACCEPT)),
            &self.pages,
            &self.retry_url(),
            None,
        );
        log_request(head, answer.status);
        answer.into_response(head.method == http::Method::HEAD, &self.page_csp())
    }

    /// The hot path: the signed-in request, its head rewritten, to the upstream.
    async fn forward(
        &self,
        session: Session,
        client: &Peer,
        user: &SignedIn,
        profile: &Enriched,
        wants_html: bool,
    ) -> Response<ProxyBody> {
        let (mut head, body) = session.into_parts();
        let upgrade = forward::wants_upgrade(&head.headers);
        forward::strip_hop_by_hop(&mut head.headers, upgrade);
        prepare_upstream_request(
            &mut head.headers,
            client,
            Some(&user.identity),
            Some((profile, self.enricher.jwt(profile, &user.session))),
            &self.sealer,
            self.public_scheme,
        );
        let method = head.method.clone();
        // For the logs (a reference-counted copy, not a new string).
        let uri = head.uri.clone();
        let mut req = Request::from_parts(head, body);
        let downstream = upgrade.then(|| hyper::upgrade::on(&mut req));
        match self.upstream.send(req).await {
            Ok(mut resp) => {
                match downstream {
                    Some(downstream) if resp.status() == StatusCode::SWITCHING_PROTOCOLS => {
                        let upstream = hyper::upgrade::on(&mut resp);
                        tokio::spawn(tunnel(downstream, upstream, uri.path().to_owned()));
                    }
                    _ => forward::strip_hop_by_hop(resp.headers_mut(), false),
                }
                if tracing::enabled!(tracing::Level::DEBUG) {
                    tracing::debug!(method = %method, path = uri.path(), status = resp.status().as_u16(), "request");
                }
                let timeout = self.read_timeout;
                resp.map(|body| Either::Left(forward::TimedBody::new(body, timeout)))
            }
            Err(e) => {
                Metrics::inc(&self.metrics.upstream_errors);
                let err = AppError::UpstreamUnavailable(e.to_string());
                err.log(uri.path());
                let signed_in = crate::render::SignedIn::new(
                    user.session.display_name(),
                    &self.routes.logout,
                    &user.session.csrf,
                    "en",
                );
                Answer::error(
                    &err,
                    wants_html,
                    &self.pages,
                    &self.retry_url(),
                    Some(signed_in),
                )
                .into_response(method == http::Method::HEAD, &self.page_csp())
            }
        }
    }
}

fn log_request(req: &Parts, status: u16) {
    if tracing::enabled!(tracing::Level::DEBUG) {
        tracing::debug!(method = %req.method, path = req.uri.path(), status, "request");
    }
}

/// Joins the client's and the upstream's upgraded connections (a WebSocket) until either ends.
async fn tunnel(
    downstream: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    path: String,
) {
    match tokio::try_join!(downstream, upstream) {
        Ok((client, app)) => {
            let (mut client, mut app) = (TokioIo::new(client), TokioIo::new(app));
            if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut app).await {
                tracing::debug!(path, error = %e, "upgraded connection ended");
            }
        }
        Err(e) => tracing::debug!(path, error = %e, "upgrade did not complete"),
    }
}

/// One proxy worker: pingora hands it each accepted connection, hyper serves HTTP/1.1 on it.
pub struct Worker {
    gate: Arc<Gate>,
    http: hyper::server::conn::http1::Builder,
}

/// Most header lines in a request or an upstream response: hyper's default, and Apache's
/// (`LimitRequestFields`). Up to 100 hyper parses into arrays on the stack; a larger limit puts
/// two arrays of that many entries on the heap for every message it reads (about 1,000
/// instructions per proxied request, and allocator work beyond that).
const MAX_HEADERS: usize = 100;
/// hyper's read buffer, in bytes (as pingora-proxy allowed): it bounds the request head, whose
/// own limit is `server.max_request_head_bytes` (hyper's `max_header_size`, at most this).
const MAX_HEAD: usize = 1024 * 1024;

impl Worker {
    pub fn new(gate: Gate) -> Self {
        let mut http = hyper::server::conn::http1::Builder::new();
        if gate.upstream.preserves_header_case() {
            http.preserve_header_case(true);
        } else {
            http.title_case_headers(true);
        }
        http.timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(30))
            .max_headers(MAX_HEADERS)
            .max_buf_size(MAX_HEAD)
            // Request line plus header lines as received; beyond, hyper answers a bare 431
            // (no body) and closes the connection.
            .max_header_size(gate.max_request_head_bytes);
        Self {
            gate: Arc::new(gate),
            http,
        }
    }
}

impl Worker {
    /// Serves HTTP/1.1 on one accepted connection until the client closes it or `shutdown`
    /// resolves (then the request in flight is finished and the connection closed). `client` is
    /// the peer's address, for `X-Forwarded-For` and the trusted-proxy check. pingora's
    /// [`ServerApp::process_new`] calls it; so does the in-process server of the tests
    /// ([`crate::server::InProcess`]).
    pub async fn serve_connection<S>(
        self: &Arc<Self>,
        stream: S,
        client: Option<IpAddr>,
        shutdown: impl Future<Output = ()>,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let gate = self.gate.clone();
        let peer = Arc::new(Peer::new(client, &gate.trusted));
        let service = hyper::service::service_fn(move |req| {
            let (gate, peer) = (gate.clone(), peer.clone());
            async move { Ok::<_, Infallible>(gate.serve(req, &peer).await) }
        });
        let conn = self
            .http
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let mut conn = std::pin::pin!(conn);
        let shutdown = std::pin::pin!(shutdown);
        let ended = tokio::select! {
            ended = conn.as_mut() => ended,
            () = shutdown => {
                // Finish the request in flight, then close.
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = ended {
            // A client hanging up or sending garbage is routine: debug, not error.
            tracing::debug!(error = %e, "client connection ended");
        }
    }
}

#[async_trait]
impl ServerApp for Worker {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let client = stream
            .get_socket_digest()
            .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).map(|a| a.ip()));
        let mut shutdown = shutdown.clone();
        self.serve_connection(stream, client, async move {
            // A closed channel (the server gone) stops the connection too.
            let _ = shutdown.changed().await;
        })
        .await;
        None
    }
}
