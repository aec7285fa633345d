//! The admin listener (`server.admin_listen`, never the public port): `/healthz` (the process
//! answers), `/readyz` (the OP has been discovered and the store answers) and `/metrics`
//! (Prometheus text).

use std::sync::Arc;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::metrics::Metrics;
use crate::oidc::Provider;
use crate::store::ProfileStore;

pub struct Admin {
    pub provider: Arc<Provider>,
    pub store: Arc<dyn ProfileStore>,
    pub metrics: Arc<Metrics>,
}

fn plain(status: u16, content_type: &str, body: String) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("content-length", body.len())
        .header("cache-control", "no-store")
        .body(body.into_bytes())
        .unwrap_or_else(|_| Response::new(Vec::new()))
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        match session.req_header().uri.path() {
            "/healthz" => plain(200, "text/plain", "ok\n".into()),
            "/readyz" if !self.provider.is_ready() => plain(
                503,
                "text/plain",
                "not ready: the OpenID Provider has not been discovered yet\n".into(),
            ),
            "/readyz" if !self.store.ready().await => plain(
                503,
                "text/plain",
                "not ready: the profile store does not answer\n".into(),
            ),
            "/readyz" => plain(200, "text/plain", "ready\n".into()),
            "/metrics" => plain(200, "text/plain; version=0.0.4", self.metrics.render()),
            _ => plain(404, "text/plain", "not found\n".into()),
        }
    }
}
