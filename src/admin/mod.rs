//! The admin listener (`server.admin_listen`, never the public port). Open to anyone who can
//! reach it: `/healthz` (the process answers), `/readyz` (the OP has been discovered and the
//! store answers) and `/metrics` (Prometheus text). Behind a bearer token of `admin.token_file`
//! (`auth.rs`): everything under `/admin/` — the dashboard, the user records, export and import,
//! the funnel totals and reload. Each admin action is logged as an audit line (`audit`).
//!
//! pingora accepts the connections; hyper speaks HTTP/1.1 on them, as on the proxy's workers,
//! so a response can be streamed (`GET /admin/export`) and a request body read as it arrives
//! (`POST /admin/import`).

mod auth;
mod context;
pub mod dashboard;
pub mod funnel;
pub mod import;
mod reload;
mod reloader;
mod reply;
mod users;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::{Method, Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioTimer;
use pingora::apps::ServerApp;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;

pub use self::auth::{AdminAuth, Caller};
pub use self::context::{audit, AdminContext};
pub use self::reloader::{Reload, ReloadReport};
pub use self::reply::{empty, html, json, plain, AdminBody};

/// The admin listener's service.
pub struct Admin {
    context: Arc<AdminContext>,
    http: hyper::server::conn::http1::Builder,
}

impl Admin {
    pub fn new(context: AdminContext) -> Self {
        if context.auth.is_none() {
            tracing::warn!(
                "the admin API is off (no admin.token_file): /admin/ answers 404; \
                 /healthz, /readyz and /metrics are served"
            );
        }
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(30));
        Self {
            context: Arc::new(context),
            http,
        }
    }

    /// The shared context (the routes' state).
    pub fn context(&self) -> &Arc<AdminContext> {
        &self.context
    }
}

/// Answers one admin-listener request.
pub async fn route(context: &AdminContext, request: Request<Incoming>) -> Response<AdminBody> {
    let path = request.uri().path().to_owned();
    match (request.method(), path.as_str()) {
        (&Method::GET | &Method::HEAD, "/healthz") => plain(200, "ok\n"),
        (&Method::GET | &Method::HEAD, "/readyz") => {
            if !context.provider.is_ready() {
                plain(
                    503,
                    "not ready: the OpenID Provider has not been discovered yet\n",
                )
            } else if !context.store.ready().await {
                plain(503, "not ready: the profile store does not answer\n")
            } else {
                plain(200, "ready\n")
            }
        }
        (&Method::GET | &Method::HEAD, "/metrics") => {
            reply::text(200, "text/plain; version=0.0.4", context.metrics.render())
        }
        (_, p) if p == "/admin" || p.starts_with("/admin/") => admin_route(context, request).await,
        _ => plain(404, "not found\n"),
    }
}

/// `/admin/…`: authenticated, then dispatched.
async fn admin_route(context: &AdminContext, request: Request<Incoming>) -> Response<AdminBody> {
    let Some(auth) = &context.auth else {
        return json(
            404,
            &serde_json::json!({
                "error": "admin_disabled",
                "message": "the admin API is off: set admin.token_file in the configuration",
            }),
        );
    };
    let caller = match auth.caller(request.headers()) {
        Ok(caller) => caller,
        Err(refused) => return refused,
    };
    let path = request.uri().path().to_owned();
    match (request.method().clone(), path.as_str()) {
        (_, "/admin") => reply::redirect("/admin/"),
        (Method::GET | Method::HEAD, "/admin/") => dashboard::show(context, &caller, request).await,
        (Method::GET | Method::HEAD, "/admin/stats") => {
            funnel::stats(context, &caller, request).await
        }
        (Method::POST, "/admin/reload") => reload::post(context, &caller).await,
        (Method::GET | Method::HEAD, "/admin/user") => users::show(context, &caller, request).await,
        (Method::DELETE, "/admin/user") => users::erase(context, &caller, request).await,
        (Method::GET, "/admin/export") => users::export(context, &caller, request).await,
        (Method::POST, "/admin/import") => users::import(context, &caller, request).await,
        _ => json(
            404,
            &serde_json::json!({
                "error": "not_found",
                "message": "no such admin route",
            }),
        ),
    }
}

#[async_trait]
impl ServerApp for Admin {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let context = self.context.clone();
        let service = hyper::service::service_fn(move |request| {
            let context = context.clone();
            async move { Ok::<_, Infallible>(route(&context, request).await) }
        });
        crate::http1::serve_until_shutdown(&self.http, stream, service, shutdown, "admin").await;
        None
    }
}
