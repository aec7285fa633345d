//! One proxy worker: pingora's `ServerApp` hands it each accepted connection and hyper speaks
//! HTTP/1.1 on it (header limits, timeouts, graceful shutdown, upgrades), or HTTP/2 when the
//! client asked for it (ALPN `h2` over TLS, or the h2c preface with `server.h2c`: [`http2`]),
//! passing every request to `Gate::serve`. With `server.tls_cert_file` the worker first runs
//! the TLS handshake (rustls, the settings of `server::tls`) within [`TLS_HANDSHAKE`]. An
//! upgraded connection (a WebSocket, HTTP/1.1 only) becomes a [`tunnel`].
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
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use pingora::apps::ServerApp;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncRead, AsyncWrite};

use super::forward::MAX_HEADERS;
use super::gate::Gate;
use super::request::Peer;

mod http2;

/// Longest a client may take to finish the TLS handshake after connecting.
pub const TLS_HANDSHAKE: Duration = Duration::from_secs(10);

/// Longest wait for the request head (HTTP/1.1), or the h2c preface.
const HEAD_READ: Duration = Duration::from_secs(30);

/// A worker's current gate, replaced whole by a reload (`server::reload`).
pub type GateSlot = Arc<ArcSwap<Gate>>;

/// One proxy worker: pingora hands it each accepted connection, hyper serves HTTP/1.1 on it.
pub struct Worker {
    gate: GateSlot,
    http: hyper::server::conn::http1::Builder,
    h2: hyper::server::conn::http2::Builder<TokioExecutor>,
    /// `server.tls_cert_file`: the handshake every connection starts with.
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// `server.h2c`: a plain connection that starts with the HTTP/2 preface speaks HTTP/2.
    h2c: bool,
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
            .header_read_timeout(HEAD_READ)
            .max_headers(MAX_HEADERS)
            .max_buf_size(MAX_HEAD)
            // Request line plus header lines as received; beyond, hyper answers a bare 431
            // (no body) and closes the connection.
            .max_header_size(gate.max_request_head_bytes);
        let mut h2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new())
            // The decoded header list (HPACK): the same bound as an HTTP/1.1 head.
            .max_header_list_size(u32::try_from(gate.max_request_head_bytes).unwrap_or(u32::MAX))
            .max_concurrent_streams(128)
            // Pings find a client that vanished without closing (HTTP/1.1 has its head timeout).
            .keep_alive_interval(Some(Duration::from_secs(60)))
            .keep_alive_timeout(Duration::from_secs(20));
        Self {
            gate: Arc::new(ArcSwap::from_pointee(gate)),
            http,
            h2,
            tls: None,
            h2c: false,
        }
    }

    /// The listener's protocols: TLS with `tls` (ALPN chooses HTTP/2 or HTTP/1.1), else plain
    /// HTTP/1.1, and HTTP/2 with prior knowledge too when `h2c`.
    pub fn with_protocols(mut self, tls: Option<Arc<rustls::ServerConfig>>, h2c: bool) -> Self {
        self.tls = tls.map(tokio_rustls::TlsAcceptor::from);
        self.h2c = h2c;
        self
    }

    /// Where this worker's gate is kept: a reload stores a new gate there, which every request
    /// that starts afterwards uses.
    pub fn gate_slot(&self) -> GateSlot {
        self.gate.clone()
    }

    /// Serves one client connection from `client` until it ends: the TLS handshake first when
    /// configured, then HTTP/1.1 or HTTP/2. Once `shutdown` completes, the requests in flight
    /// are finished and the connection closed.
    pub async fn serve_connection<S>(
        self: &Arc<Self>,
        stream: S,
        client: Option<IpAddr>,
        shutdown: impl Future<Output = ()>,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        if let Some(acceptor) = &self.tls {
            let stream = match tokio::time::timeout(TLS_HANDSHAKE, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => stream,
                // A scanner, an old client (TLS 1.1) or an untrusted certificate: routine.
                Ok(Err(e)) => return tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => return tracing::debug!("TLS handshake timed out"),
            };
            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
            return self.serve_http(stream, client, h2, shutdown).await;
        }
        if self.h2c {
            let (stream, h2) = match tokio::time::timeout(HEAD_READ, http2::detect(stream)).await {
                Ok(Ok(detected)) => detected,
                Ok(Err(e)) => return tracing::debug!(error = %e, "client connection ended"),
                Err(_) => return tracing::debug!("no request within the head timeout"),
            };
            return self.serve_http(stream, client, h2, shutdown).await;
        }
        self.serve_http(stream, client, false, shutdown).await
    }

    /// HTTP/2 (`h2`) or HTTP/1.1 on an established connection.
    async fn serve_http<S>(
        &self,
        stream: S,
        client: Option<IpAddr>,
        h2: bool,
        shutdown: impl Future<Output = ()>,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let slot = self.gate.clone();
        // `server.trusted_proxies` as it is when the connection opens.
        let peer = Arc::new(Peer::new(client, &slot.load().trusted));
        let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
            // The gate current when the request starts, kept until it ends (a reload meanwhile
            // does not change it under the request).
            let (gate, peer) = (slot.load_full(), peer.clone());
            async move {
                // HTTP/2 names the target as `:scheme` and `:authority`: origin form + Host,
                // as the gate (and an HTTP/1.1 upstream) expect.
                let req = match req.version() == http::Version::HTTP_2 {
                    true => http2::origin_form(req),
                    false => req,
                };
                Ok::<_, Infallible>(gate.serve(req, &peer).await)
            }
        });
        let io = TokioIo::new(stream);
        let ended = if h2 {
            until_shutdown(self.h2.serve_connection(io, service), shutdown).await
        } else {
            let conn = self.http.serve_connection(io, service).with_upgrades();
            until_shutdown(conn, shutdown).await
        };
        if let Err(e) = ended {
            // A client hanging up or sending garbage is routine: debug, not error.
            tracing::debug!(error = %e, "client connection ended");
        }
    }
}

/// A hyper connection of either version, which can be told to finish and close.
trait GracefulConnection: Future<Output = Result<(), hyper::Error>> {
    fn begin_shutdown(self: std::pin::Pin<&mut Self>);
}

impl<I, S, B> GracefulConnection for hyper::server::conn::http1::UpgradeableConnection<I, S>
where
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: http_body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn begin_shutdown(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I, S, B> GracefulConnection for hyper::server::conn::http2::Connection<I, S, TokioExecutor>
where
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    B: http_body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    TokioExecutor: hyper::rt::bounds::Http2ServerConnExec<S::Future, B>,
{
    fn begin_shutdown(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// Runs `conn` to its end; once `shutdown` completes, finishes the requests in flight and
/// closes.
async fn until_shutdown<C: GracefulConnection>(
    conn: C,
    shutdown: impl Future<Output = ()>,
) -> Result<(), hyper::Error> {
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        ended = conn.as_mut() => ended,
        () = shutdown => {
            conn.as_mut().begin_shutdown();
            conn.await
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
