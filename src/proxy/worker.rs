//! One proxy worker: pingora's `ServerApp` hands it each accepted connection and hyper speaks
//! HTTP/1.1 on it (header limits, timeouts, graceful shutdown, upgrades), passing every
//! request to `Gate::serve`. An upgraded connection (a WebSocket) becomes a [`tunnel`].
//!
//! The gate sits behind an atomic pointer ([`GateSlot`]): a configuration reload stores a new
//! one, each request loads the current one when it starts and keeps it until it ends, so
//! requests in flight finish on the gate they began with.

use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use hyper_util::rt::{TokioIo, TokioTimer};
use pingora::apps::ServerApp;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncRead, AsyncWrite};

use super::forward::MAX_HEADERS;
use super::gate::Gate;
use super::request::Peer;

/// A worker's current gate, replaced whole by a reload (`server::reload`).
pub type GateSlot = Arc<ArcSwap<Gate>>;

/// One proxy worker: pingora hands it each accepted connection, hyper serves HTTP/1.1 on it.
pub struct Worker {
    gate: GateSlot,
    http: hyper::server::conn::http1::Builder,
}

/// hyper's read buffer, in bytes (as pingora-proxy allowed): it bounds the request head, whose
/// own limit is `server.max_request_head_bytes` (hyper's `max_header_size`, at most this).
const MAX_HEAD: usize = 1024 * 1024;

impl Worker {
    /// A worker over `gate`. The HTTP settings read here (`server.max_request_head_bytes`,
    /// `upstream.header_case`) stay as they are until a restart; see [`Worker::gate_slot`].
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
            gate: Arc::new(ArcSwap::from_pointee(gate)),
            http,
        }
    }

    /// Where this worker's gate is kept: a reload stores a new gate there, which every request
    /// that starts afterwards uses.
    pub fn gate_slot(&self) -> GateSlot {
        self.gate.clone()
    }

    /// Serves HTTP/1.1 on one client connection from `client` until it ends; once `shutdown`
    /// completes, the request in flight is finished and the connection closed.
    pub async fn serve_connection<S>(
        self: &Arc<Self>,
        stream: S,
        client: Option<IpAddr>,
        shutdown: impl Future<Output = ()>,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let slot = self.gate.clone();
        // `server.trusted_proxies` as it is when the connection opens.
        let peer = Arc::new(Peer::new(client, &slot.load().trusted));
        let service = hyper::service::service_fn(move |req| {
            // The gate current when the request starts, kept until it ends (a reload meanwhile
            // does not change it under the request).
            let (gate, peer) = (slot.load_full(), peer.clone());
            async move { Ok::<_, Infallible>(gate.serve(req, &peer).await) }
        });
        let conn = self
            .http
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let mut conn = std::pin::pin!(conn);
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
            // A dropped sender means shutdown too.
            let _ = shutdown.changed().await;
        })
        .await;
        None
    }
}

/// Joins the client's and the upstream's upgraded connections (a WebSocket) until either ends.
pub(super) async fn tunnel(
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
