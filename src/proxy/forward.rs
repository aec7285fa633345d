//! The hot path's way to the upstream, after `prepare`: one pool of HTTP/1.1 keep-alive
//! connections per worker, hyper's client connection on each, the upstream's timeouts, and
//! its response body ([`TimedBody`]) on the way back. Requests go as HTTP/1.1 whatever the
//! client spoke; with `upstream.http2` they go over one multiplexed HTTP/2 connection per
//! worker instead (h2c for `http://`, ALPN `h2` for `https://`), but for upgrades (WebSockets),
//! which stay on HTTP/1.1.
//!
//! A connection stays in the pool while it carries a response (hyper's `SendRequest` says when
//! it can take the next request), so a request never waits behind another's body: it takes an
//! idle connection or opens one. A connection the upstream closed while idle is noticed by
//! hyper without any I/O and dropped; a request that could not be written on a reused
//! connection is sent again on a new one.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HOST, UPGRADE};
use http::uri::{Authority, PathAndQuery};
use http::{Request, Response, Uri, Version};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::client::conn::http2;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tower_service::Service;

use crate::config::UpstreamConfig;

/// Idle connections older than this are closed rather than reused (the usual upstream closes
/// its own after 60–75 s; reusing one at that moment would race its close).
const IDLE_TIMEOUT: Duration = Duration::from_secs(55);
/// Most connections one worker keeps (busy and idle together).
const MAX_POOLED: usize = 1024;
/// Most header lines in a request or an upstream response: hyper's default, and Apache's
/// (`LimitRequestFields`). Up to 100 hyper parses into arrays on the stack; a larger limit puts
/// two arrays of that many entries on the heap for every message it reads (about 1,000
/// instructions per proxied request, and allocator work beyond that).
pub const MAX_HEADERS: usize = 100;

/// Why a request could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("cannot connect to the upstream: {0}")]
    Connect(String),
    #[error("the upstream did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the upstream connection failed: {0}")]
    Exchange(#[from] hyper::Error),
    #[error("the request cannot be sent over HTTP/2: {0}")]
    Target(#[from] http::uri::InvalidUriParts),
}

struct Pooled {
    sender: SendRequest<Incoming>,
    /// When the request it carried (or carries) was sent: its idle time is at least
    /// "now − this" minus that exchange, so the idle limit errs on the early side.
    used: Instant,
}

/// `upstream.http2`: the connector (ALPN `h2` only) and the worker's one HTTP/2 connection,
/// made on first use and again once it has closed.
struct Http2Upstream {
    connector: HttpsConnector<HttpConnector>,
    shared: Mutex<Option<http2::SendRequest<Incoming>>>,
}

/// One worker's client for the configured upstream.
pub struct Upstream {
    connector: HttpsConnector<HttpConnector>,
    uri: Uri,
    read_timeout: Duration,
    preserve_header_case: bool,
    pool: Mutex<Vec<Pooled>>,
    /// `upstream.http2`: its connector and connection.
    h2: Option<Http2Upstream>,
}

/// The request URI of `upstream.url` (`scheme://host:port/`), as every forwarded request
/// starts from it. Also called by `profilegate check`, so a URL the config reader accepts but
/// `http` refuses fails `check` rather than start-up.
pub fn request_uri(config: &UpstreamConfig) -> Result<Uri, http::uri::InvalidUri> {
    let scheme = if config.tls { "https" } else { "http" };
    // The host is validated by the config reader; an IPv6 literal needs its brackets.
    let host = if config.host.contains(':') {
        format!("[{}]", config.host)
    } else {
        config.host.clone()
    };
    format!("{scheme}://{host}:{}/", config.port).parse()
}

impl Upstream {
    /// Fails only when `upstream.url` does not make a request URI (the config reader has
    /// already checked it).
    pub fn new(config: &UpstreamConfig) -> Result<Self, http::uri::InvalidUri> {
        let uri = request_uri(config)?;
        Ok(Self {
            connector: crate::oidc::https_connector(config.connect_timeout, false),
            uri,
            read_timeout: config.read_timeout,
            preserve_header_case: config.preserve_header_case,
            pool: Mutex::new(Vec::new()),
            h2: config.http2.then(|| Http2Upstream {
                connector: crate::oidc::https_connector(config.connect_timeout, true),
                shared: Mutex::new(None),
            }),
        })
    }

    /// `upstream.header_case = "preserve"` (otherwise Title-Case), for both sides of a worker.
    pub fn preserves_header_case(&self) -> bool {
        self.preserve_header_case
    }

    /// Sends `req` (its head already prepared) and waits for the response head.
    pub async fn send(&self, req: Request<Incoming>) -> Result<Response<Incoming>, ForwardError> {
        let mut req = req;
        if let Some(h2) = &self.h2 {
            if !req.headers().contains_key(UPGRADE) {
                // Boxed: the HTTP/2 handshake's state is large, and every request's future
                // (which hyper moves once per request) would carry it inline.
                return Box::pin(self.send_h2(h2, req)).await;
            }
        }
        // HTTP/1.1 whatever the client spoke (an HTTP/2 request arrives in origin form with
        // `Host`, worker.rs).
        *req.version_mut() = Version::HTTP_11;
        let now = Instant::now();
        if let Some(mut sender) = self.idle(now) {
            match self.timed(sender.try_send_request(req)).await? {
                Ok(resp) => {
                    self.keep(sender, &resp, now);
                    return Ok(resp);
                }
                // Not written: the connection closed as it was taken. Try a new one.
                Err(mut e) => match e.take_message() {
                    Some(unsent) => req = unsent,
                    None => return Err(ForwardError::Exchange(e.into_error())),
                },
            }
        }
        let mut sender = self.connect().await?;
        let resp = self.timed(sender.send_request(req)).await??;
        self.keep(sender, &resp, now);
        Ok(resp)
    }

    /// `upstream.http2`: `req` on the worker's HTTP/2 connection (opened if there is none). Its
    /// `Host` becomes `:authority` (RFC 9113 §8.3.1).
    async fn send_h2(
        &self,
        h2: &Http2Upstream,
        mut req: Request<Incoming>,
    ) -> Result<Response<Incoming>, ForwardError> {
        *req.version_mut() = Version::HTTP_2;
        let host = req.headers_mut().remove(HOST);
        let authority = host.and_then(|h| Authority::try_from(h.as_bytes()).ok());
        let mut target = std::mem::take(req.uri_mut()).into_parts();
        target.scheme = self.uri.scheme().cloned();
        target.authority = authority.or_else(|| self.uri.authority().cloned());
        if target.path_and_query.is_none() {
            target.path_and_query = Some(PathAndQuery::from_static("/"));
        }
        *req.uri_mut() = Uri::from_parts(target)?;
        let open = h2
            .shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .filter(|s| !s.is_closed())
            .cloned();
        let mut sender = match open {
            Some(sender) => sender,
            None => {
                let sender = self.connect_h2(&h2.connector).await?;
                *h2.shared.lock().unwrap_or_else(|p| p.into_inner()) = Some(sender.clone());
                sender
            }
        };
        self.timed(async move {
            sender.ready().await?;
            sender.send_request(req).await
        })
        .await?
        .map_err(ForwardError::Exchange)
    }

    async fn connect_h2(
        &self,
        connector: &HttpsConnector<HttpConnector>,
    ) -> Result<http2::SendRequest<Incoming>, ForwardError> {
        let io = connector
            .clone()
            .call(self.uri.clone())
            .await
            .map_err(|e| ForwardError::Connect(e.to_string()))?;
        let (sender, conn) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .handshake(io)
            .await
            .map_err(|e| ForwardError::Connect(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "upstream HTTP/2 connection ended");
            }
        });
        Ok(sender)
    }

    /// `f` within `upstream.read_timeout`.
    async fn timed<T>(&self, f: impl Future<Output = T>) -> Result<T, ForwardError> {
        tokio::time::timeout(self.read_timeout, f)
            .await
            .map_err(|_| ForwardError::Timeout(self.read_timeout))
    }

    /// An idle pooled connection, if any; closed and expired ones are dropped on the way.
    fn idle(&self, now: Instant) -> Option<SendRequest<Incoming>> {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        let mut i = pool.len();
        while i > 0 {
            i -= 1;
            let entry = &pool[i];
            if entry.sender.is_closed() {
                pool.swap_remove(i);
            } else if entry.sender.is_ready() {
                if now.saturating_duration_since(entry.used) > IDLE_TIMEOUT {
                    pool.swap_remove(i);
                } else {
                    return Some(pool.swap_remove(i).sender);
                }
            }
        }
        None
    }

    /// Puts a connection (still carrying its response) back into the pool; one that switched
    /// protocols (a WebSocket) belongs to its tunnel and is never reused.
    fn keep(&self, sender: SendRequest<Incoming>, resp: &Response<Incoming>, used: Instant) {
        if resp.status() == http::StatusCode::SWITCHING_PROTOCOLS {
            return;
        }
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < MAX_POOLED {
            pool.push(Pooled { sender, used });
        }
    }

    async fn connect(&self) -> Result<SendRequest<Incoming>, ForwardError> {
        let io = self
            .connector
            .clone()
            .call(self.uri.clone())
            .await
            .map_err(|e| ForwardError::Connect(e.to_string()))?;
        let mut builder = http1::Builder::new();
        if self.preserve_header_case {
            builder.preserve_header_case(true);
        } else {
            builder.title_case_headers(true);
        }
        let (sender, conn) = builder
            .max_headers(MAX_HEADERS)
            .handshake(io)
            .await
            .map_err(|e| ForwardError::Connect(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "upstream connection ended");
            }
        });
        Ok(sender)
    }
}

/// The upstream's response body, with `upstream.read_timeout` between its frames. The timer
/// is only armed when a frame is not ready at once (a small response costs no timer).
pub struct TimedBody {
    inner: Incoming,
    timeout: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl TimedBody {
    pub fn new(inner: Incoming, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            sleep: None,
        }
    }
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.sleep = None;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let timeout = this.timeout;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                ready!(sleep.as_mut().poll(cx));
                this.sleep = None;
                Poll::Ready(Some(Err(ForwardError::Timeout(timeout).to_string().into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
