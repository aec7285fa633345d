//! The proxy: carries out the [`Decision`] of `pipeline::decide` and nothing more.
//!
//! pingora runs the server (one single-threaded service per worker, each on its own listening
//! socket, signals, graceful shutdown) and hands every accepted connection to [`Worker`], which
//! speaks HTTP/1.1 on it with hyper. [`Gate::serve`], here, takes each request through the
//! steps below, one file each:
//!
//! ```text
//!  step                     what happens here
//!  ─────────────────────    ───────────────────────────────────────────────────────────
//!  connection               pingora accepts, hyper reads the request head (whole head:
//!                           431), upgrades, shutdown                  (worker.rs)
//!  request id               X-Request-Id kept from a trusted proxy or new, scoped for
//!                           the log lines, the access line (traced.rs, request_id.rs)
//!  edge                     header line sizes (431), request target a path, decoded path
//!                           free of control bytes and UTF-8 (400)     (edge.rs)
//!  forward-auth             `{prefix}/auth` (an edge proxy's question) and `{prefix}/start`
//!                           make the head the original request's; the steps below decide
//!                           it as in proxy mode (routes/forward_auth.rs)
//!  request                  the exchange: head, query, bounded bodies (request.rs)
//!  normalize                the path the routes, the decision and the upstream see
//!                           (policy::normalize)
//!  policy                   the matched routes; may this user pass (the session's cached
//!                           verdicts); on_paths questions due here (access.rs)
//!  decide                   open session cookie (sessions.rs), decide(); a state-changing
//!                           route from another origin gets 403 (edge.rs)
//!  deny                     a refused user: the error page (403, sign-out) or JSON
//!  answer here              everything but Forward, one file per route (routes/): login,
//!                           callback (login.rs), logout (logout.rs), the OP's front-channel
//!                           logout (frontchannel.rs), the question page (questions.rs),
//!                           the JSON API (api.rs), the custom UI (custom_ui.rs), the JWKS
//!                           (jwks.rs), self-service (me.rs), the OP's back-channel
//!                           logout (backchannel.rs); forward-auth's 200 with the identity
//!                           instead of forwarding (forward_auth.rs); written as a Reply
//!                           (reply.rs)
//!  prepare                  strip hop-by-hop and identity headers + own cookies, set
//!                           X-Forwarded-*, inject identity, X-Forwarded-Groups,
//!                           X-Profile-*, JWT (prepare/); a public route's anonymous
//!                           request gets nothing injected
//!  forward                  the configured upstream, pooled keep-alive, timeouts
//!                           (forward.rs); bodies stream both ways, upgrades become a
//!                           tunnel (worker.rs)
//!  upstream down            a 502 page or JSON instead of a bare status (reply.rs)
//! ```
//!
//! Imports only go down: this file uses the steps and the routes; the routes use the state
//! ([`Gate`], gate.rs), the request and the reply, never this file.

mod access;
pub mod edge;
mod forward;
mod gate;
mod lifecycle;
pub mod prepare;
mod refresh;
mod reply;
mod request;
mod request_id;
mod routes;
mod sessions;
mod traced;
mod worker;

use std::borrow::Cow;

use http::header::{HeaderName, HeaderValue, ACCEPT, COOKIE};
use http::request::Parts;
use http::{Request, Response, StatusCode};
use http_body_util::Either;
use hyper::body::Incoming;

use crate::enrich::Enriched;
use crate::error::AppError;
use crate::log_format::REQUEST_ID;
use crate::metrics::Metrics;
use crate::pipeline::{decide, is_navigation, Auth, Decision, RequestView, RouteFlags};
use crate::policy::{normalize, strict, RouteMatch};
use crate::session::{now_secs, RequestCookies};
use access::with_due;
use forward::TimedBody;
use lifecycle::Lifecycle;
use prepare::{prepare_upstream_request, strip_hop_by_hop, wants_upgrade};
use request::accepts_html;
use request_id::X_REQUEST_ID;
use routes::forward_auth::{self, Asking};
use routes::{api, backchannel, custom_ui, frontchannel, jwks, login, logout, me, questions};
use traced::AccessNote;

pub use forward::request_uri as upstream_request_uri;
pub use gate::{Gate, GateParts};
pub use refresh::Refreshes;
pub use reply::{page_csp, ProxyBody, Reply};
pub use request::{IncomingRequest, Peer};
pub use sessions::{Sessions, SignedIn};
pub use worker::{GateSlot, Worker};

/// Header names the decision reads, parsed once (a `&str` lookup parses the name every time).
const X_REQUESTED_WITH: HeaderName = HeaderName::from_static("x-requested-with");
const SEC_FETCH_MODE: HeaderName = HeaderName::from_static("sec-fetch-mode");

fn header<'a>(req: &'a Parts, name: &HeaderName) -> Option<&'a [u8]> {
    req.headers.get(name).map(|v| v.as_bytes())
}

impl Gate {
    /// Answers one request: forwards it or answers it here (within `serve`'s frame, traced.rs;
    /// `note` is what the access line learns on the way).
    async fn answer(
        &self,
        req: Request<Incoming>,
        client: &Peer,
        request_id: &HeaderValue,
        note: &mut AccessNote,
    ) -> Response<ProxyBody> {
        let (mut head, body) = req.into_parts();
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
        // Forward-auth's question (or a browser's `start`): from here on the head is the
        // original request's, and proxy mode's steps decide it.
        let asking = match forward_auth::asked(self, &mut head, client) {
            Ok(asking) => asking,
            Err(refused) => {
                let reply = refused.reply();
                log_request(&head, reply.status);
                return reply.into_response(head.method == http::Method::HEAD, &self.page_csp());
            }
        };
        if let Err(bad) = edge::check_path(head.uri.path()) {
            let err = AppError::BadRequest(bad.reason().into());
            return self.refuse(&head, err, head.uri.path());
        }
        // The path as the upstream will receive it, and as the routes and `decide` read it.
        if let Cow::Owned(normal) = normalize(head.uri.path()) {
            match with_path(&head.uri, &normal) {
                Some(uri) => head.uri = uri,
                None => {
                    let err = AppError::BadRequest("the path cannot be normalized".into());
                    return self.refuse(&head, err, head.uri.path());
                }
            }
        }
        match asking {
            // The edge sends `{prefix}/…` to profilegate itself: let it through, untouched; but
            // only a path nothing could read two ways (a widening rule, as `public` routes):
            // `{prefix}/..%2fapp` is the app's path to nginx and Caddy.
            Some(_)
                if self.routes.is_reserved(head.uri.path())
                    && strict(head.uri.path()).is_none() =>
            {
                let err = AppError::BadRequest("an ambiguous path under the prefix".into());
                return self.refuse(&head, err, head.uri.path());
            }
            Some(asking) if self.routes.is_reserved(head.uri.path()) => {
                let reply = forward_auth::pass(self, asking, &head, None);
                log_request(&head, reply.status);
                return reply.into_response(false, &self.page_csp());
            }
            // forward_auth mode forwards nothing: only the reserved routes answer.
            None if self.forward_auth && !self.routes.is_reserved(head.uri.path()) => {
                return self.refuse(&head, AppError::NotFound, head.uri.path());
            }
            _ => {}
        }
        let mut request = IncomingRequest::new(head, body);
        // A `Set-Cookie` the session's lifecycle adds to whatever the response is.
        let mut renewed = None;
        // A session cookie came but gave no live session (expired, idle, revoked, unreadable).
        let dead_cookie: bool;
        let (decision, user, wants_html, due_here) = {
            let req = request.head();
            let cookies =
                RequestCookies::parse(req.headers.get_all(COOKIE).iter().map(|v| v.as_bytes()));
            let now = now_secs();
            let user = match self.sessions.open(&self.sealer, &cookies, now) {
                Some(user) => match self.lifecycle(user, now).await {
                    Lifecycle::Live(user, cookie) => {
                        renewed = cookie;
                        Some(user)
                    }
                    Lifecycle::Ended => {
                        renewed = Some(self.sealer.clear_session());
                        None
                    }
                },
                None => None,
            };
            dead_cookie =
                user.is_none() && cookies.get(self.sealer.session_cookie_name()).is_some();
            let accept = header(req, &ACCEPT);
            let path = req.uri.path();
            let reserved = self.routes.is_reserved(path);
            let matched = match reserved {
                true => RouteMatch::default(),
                false => self.policy.routes.matches(req.method.as_str(), path),
            };
            let view = RequestView {
                method: &req.method,
                path,
                is_navigation: is_navigation(
                    &req.method,
                    accept,
                    header(req, &X_REQUESTED_WITH),
                    header(req, &SEC_FETCH_MODE),
                ),
                route: RouteFlags {
                    public: matched.public,
                    skip_questions: matched.skip_questions,
                },
            };
            let pending = |u: &SignedIn| u.session.pending(|id| self.engine.question(id).is_some());
            let mut due_here = Vec::new();
            let auth = match &user {
                Some(u) if reserved => Auth::SignedIn(pending(u)),
                Some(u) => match self.permits(u, req, matched).await {
                    Ok(true) if self.on_paths && !matched.public && !matched.skip_questions => {
                        match self.due_here(u, path).await {
                            Ok(due) => due_here = due,
                            Err(e) => return self.refuse(req, AppError::Store(e), path),
                        }
                        Auth::SignedIn(with_due(pending(u), &due_here))
                    }
                    Ok(true) => Auth::SignedIn(pending(u)),
                    Ok(false) => Auth::Denied,
                    Err(e) => return self.refuse(req, AppError::Store(e), path),
                },
                None => Auth::Anonymous,
            };
            (
                decide(&view, auth, &self.routes),
                user,
                accepts_html(accept),
                due_here,
            )
        };

        if let Some(allowed) = self.state_changing(decision) {
            let req = request.head();
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

        let asked_by_edge = matches!(asking, Some(Asking::Edge { .. }));
        note.outcome = traced::outcome(decision, asked_by_edge);
        if self.access_log {
            note.sub = user.as_ref().map(|u| u.session.sub.clone());
            if asked_by_edge {
                note.original = Some(request.head().uri.path().to_owned());
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
        let reply = match (decision, user) {
            (Decision::Forward, Some(user)) => {
                match self.enricher.for_session(&*self.store, &user.session).await {
                    Ok(profile) => match asking {
                        // Forward-auth: the edge forwards; it gets what to attach.
                        Some(asking) => {
                            Metrics::inc(&self.metrics.forwarded);
                            let jwt = self.enricher.jwt(&profile, &user.session);
                            let signed_in = Some((&user.identity, &*profile, jwt));
                            Ok(forward_auth::pass(self, asking, request.head(), signed_in))
                        }
                        None => {
                            Metrics::inc(&self.metrics.forwarded);
                            let signed_in = Some((&*user, &*profile));
                            let mut resp = self
                                .forward(request, client, signed_in, wants_html, request_id, note)
                                .await;
                            if let Some(cookie) =
                                renewed.and_then(|c| HeaderValue::try_from(c).ok())
                            {
                                resp.headers_mut().append(http::header::SET_COOKIE, cookie);
                            }
                            return resp;
                        }
                    },
                    Err(e) => Err((AppError::Store(e), Vec::new())),
                }
            }
            // nginx passes on only 2xx, 401 and 403: a 401 whose Location its error_page follows.
            (Decision::StartLogin | Decision::AskQuestions, _)
                if asking == Some(Asking::Edge { nginx: true }) =>
            {
                Ok(forward_auth::to_start(self, request.head()))
            }
            (Decision::ForwardPublic, _) => {
                Metrics::inc(&self.metrics.forwarded_public);
                match asking {
                    Some(asking) => Ok(forward_auth::pass(self, asking, request.head(), None)),
                    None => {
                        return self
                            .forward(request, client, None, wants_html, request_id, note)
                            .await
                    }
                }
            }
            (Decision::Deny, _) => {
                Metrics::inc(&self.metrics.denied);
                let req = request.head();
                let matched = self
                    .policy
                    .routes
                    .matches(req.method.as_str(), req.uri.path());
                let routes: Vec<String> = matched.rules().map(|i| format!("routes[{i}]")).collect();
                let why = match routes.is_empty() {
                    true => "[access]".to_owned(),
                    false => format!("[access] and {}", routes.join(", ")),
                };
                Err((AppError::AccessDenied(why), Vec::new()))
            }
            (Decision::AskQuestions, Some(user)) if !due_here.is_empty() => {
                let session = self.ask_just_in_time(user, &due_here);
                Ok(questions::ask(self, &request, &session)
                    .with_cookies(vec![self.sealer.seal_session(&session)]))
            }
            (Decision::AskQuestions, Some(user)) => {
                Ok(questions::ask(self, &request, &user.session))
            }
            (Decision::QuestionsPending, Some(user)) if !due_here.is_empty() => {
                let session = self.ask_just_in_time(user, &due_here);
                Ok(questions::pending_json(self, &session)
                    .with_cookies(vec![self.sealer.seal_session(&session)]))
            }
            (Decision::QuestionsPending, Some(user)) => {
                Ok(questions::pending_json(self, &user.session))
            }
            (Decision::ShowQuestion, Some(user)) => {
                questions::show(self, &request, &user.session).await
            }
            (Decision::SubmitAnswer, Some(user)) => {
                questions::submit(self, &mut request, user.into_session()).await
            }
            (Decision::Jwks, _) => Ok(jwks::keys(self)),
            (Decision::ApiPending, Some(user)) => api::pending(self, &user.session).await,
            (Decision::ApiProfile, Some(user)) => api::profile(self, &user.session).await,
            (Decision::ApiAnswers, Some(user)) => {
                api::answers(self, &mut request, user.into_session()).await
            }
            (Decision::ShowMe, Some(user)) => me::show(self, &request, &user.session).await,
            (Decision::SubmitMe, Some(user)) => {
                me::submit(self, &mut request, user.into_session()).await
            }
            (Decision::ApiMe, Some(user)) => me::api::get(self, &request, &user.session).await,
            (Decision::ApiMeChange, Some(user)) => {
                me::api::update(self, &mut request, user.into_session()).await
            }
            (Decision::ApiMeErase, Some(user)) => {
                me::api::delete(self, &request, user.into_session()).await
            }
            (Decision::Continue, user) => {
                custom_ui::handle(self, &mut request, user.map(SignedIn::into_session)).await
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
                | Decision::ShowMe
                | Decision::SubmitMe
                | Decision::ApiMe
                | Decision::ApiMeChange
                | Decision::ApiMeErase
                | Decision::AskQuestions,
                None,
            )
            | (Decision::Unauthenticated, _) => {
                Metrics::inc(&self.metrics.unauthenticated);
                Ok(Reply::json(
                    401,
                    &serde_json::json!({
                        "error": "unauthenticated",
                        "message": "Sign in first: open this site in a browser to sign in.",
                    }),
                ))
            }
            (Decision::StartLogin, _) => {
                // `session.silent_reauth`: a navigation whose session went dead tries
                // `prompt=none` first; the dead cookie is then deleted by the login's answer.
                let silent = dead_cookie && self.sealer.lifecycle().silent_reauth;
                if silent {
                    renewed = None;
                }
                login::start(self, &mut request, silent).await
            }
            (Decision::FinishLogin, _) => login::finish(self, &mut request).await,
            (Decision::Logout, user) => {
                logout::logout(self, &mut request, user.map(SignedIn::into_session)).await
            }
            (Decision::SignedOut, _) => Ok(logout::signed_out(self, &request)),
            (Decision::FrontchannelLogout, user) => {
                frontchannel::logout(self, &request, user.map(SignedIn::into_session)).await
            }
            (Decision::BackchannelLogout, _) => Ok(backchannel::logout(self, &mut request).await),
            (Decision::NotFound, _) => Err((AppError::NotFound, Vec::new())),
            (Decision::MethodNotAllowed, _) => Err((AppError::MethodNotAllowed, Vec::new())),
        };
        let req = request.head();
        let reply = match renewed {
            // Before the route's own cookies: a new session sealed by the route wins.
            Some(cookie) => reply.map(|r| r.with_first_cookie(cookie)),
            None => reply,
        };
        let reply = reply.unwrap_or_else(|(err, cookies)| {
            err.log(req.uri.path());
            let signed_in = account.as_ref().map(|(who, csrf)| {
                crate::render::SignedIn::new(who.as_deref(), &self.routes.logout, csrf, "en")
            });
            Reply::error(&err, wants_html, &self.pages, &self.retry_url(), signed_in)
                .with_cookies(cookies)
        });
        log_request(req, reply.status);
        reply.into_response(req.method == http::Method::HEAD, &self.page_csp())
    }

    /// The origins allowed to send `decision`'s request when it changes state: the routes that
    /// act on a POST (answers, skips, the API's answers, logout, the custom UI's post-back).
    /// Every new state-changing route is listed here; the match has no catch-all on purpose.
    fn state_changing(&self, decision: Decision) -> Option<edge::AllowedOrigin<'_>> {
        match decision {
            Decision::SubmitAnswer
            | Decision::ApiAnswers
            | Decision::Logout
            | Decision::SubmitMe
            | Decision::ApiMeChange
            | Decision::ApiMeErase => Some(edge::AllowedOrigin::Public(&self.origin)),
            Decision::Continue => Some(edge::AllowedOrigin::CustomUi(&self.continue_origin)),
            Decision::StartLogin
            | Decision::ForwardPublic
            | Decision::Deny
            | Decision::Unauthenticated
            | Decision::FinishLogin
            | Decision::SignedOut
            // The OP's iframe, from the OP's origin by design: it only ends sessions.
            | Decision::FrontchannelLogout
            // Server to server: no cookie, no Origin; the signed logout token is the proof.
            | Decision::BackchannelLogout
            | Decision::Forward
            | Decision::AskQuestions
            | Decision::QuestionsPending
            | Decision::ShowQuestion
            | Decision::Jwks
            | Decision::ApiPending
            | Decision::ApiProfile
            | Decision::ShowMe
            | Decision::ApiMe
            | Decision::NotFound
            | Decision::MethodNotAllowed => None,
        }
    }

    /// A reply given before any route ran: the error page or JSON, logged with `target`.
    fn refuse(&self, head: &Parts, err: AppError, target: &str) -> Response<ProxyBody> {
        err.log(target);
        let reply = Reply::error(
            &err,
            accepts_html(header(head, &ACCEPT)),
            &self.pages,
            &self.retry_url(),
            None,
        );
        log_request(head, reply.status);
        reply.into_response(head.method == http::Method::HEAD, &self.page_csp())
    }

    /// The hot path: the signed-in request, its head rewritten, to the upstream; or, without
    /// `signed_in`, a public route's request with every identity header stripped.
    async fn forward(
        &self,
        request: IncomingRequest,
        client: &Peer,
        signed_in: Option<(&SignedIn, &Enriched)>,
        wants_html: bool,
        request_id: &HeaderValue,
        note: &mut AccessNote,
    ) -> Response<ProxyBody> {
        let (mut head, body) = request.into_parts();
        let upgrade = wants_upgrade(&head.headers);
        strip_hop_by_hop(&mut head.headers, upgrade);
        prepare_upstream_request(
            &mut head.headers,
            client,
            signed_in.map(|(user, _)| &user.identity),
            signed_in.map(|(user, profile)| (profile, self.enricher.jwt(profile, &user.session))),
            &self.sealer,
            self.public_scheme,
        );
        // The request's id, never one an untrusted client sent (traced.rs).
        head.headers.insert(X_REQUEST_ID, request_id.clone());
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
                        // The tunnel's lines keep the request's id.
                        let tunnel = worker::tunnel(downstream, upstream, uri.path().to_owned());
                        tokio::spawn(REQUEST_ID.scope(request_id.clone(), tunnel));
                    }
                    _ => strip_hop_by_hop(resp.headers_mut(), false),
                }
                if tracing::enabled!(tracing::Level::DEBUG) {
                    tracing::debug!(method = %method, path = uri.path(), status = resp.status().as_u16(), "request");
                }
                let timeout = self.read_timeout;
                resp.map(|body| Either::Left(TimedBody::new(body, timeout)))
            }
            Err(e) => {
                Metrics::inc(&self.metrics.upstream_errors);
                note.outcome = "upstream_unavailable";
                let err = AppError::UpstreamUnavailable(e.to_string());
                err.log(uri.path());
                let account = signed_in.map(|(user, _)| {
                    crate::render::SignedIn::new(
                        user.session.display_name(),
                        &self.routes.logout,
                        &user.session.csrf,
                        "en",
                    )
                });
                Reply::error(&err, wants_html, &self.pages, &self.retry_url(), account)
                    .into_response(method == http::Method::HEAD, &self.page_csp())
            }
        }
    }
}

/// `uri` with its path replaced by `path` (the query kept).
fn with_path(uri: &http::Uri, path: &str) -> Option<http::Uri> {
    let target = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(target.parse().ok()?);
    http::Uri::from_parts(parts).ok()
}

fn log_request(req: &Parts, status: u16) {
    if tracing::enabled!(tracing::Level::DEBUG) {
        tracing::debug!(method = %req.method, path = req.uri.path(), status, "request");
    }
}
