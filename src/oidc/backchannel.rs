//! The back channel to the OP: a hyper + rustls client that never follows redirects, bounds
//! every request in time and every response in size. openidconnect calls it through its
//! `AsyncHttpClient` trait (implemented for any `Fn(HttpRequest) -> Future`).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::future::Future;
use std::pin::Pin;

use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};

/// Largest response accepted from the OP (discovery, JWKS, token, userinfo).
const MAX_RESPONSE: usize = 1024 * 1024;

/// Why a back-channel request failed. Messages carry no token or secret.
#[derive(Debug, thiserror::Error)]
pub enum BackChannelError {
    #[error("request to the identity provider timed out after {0:?}")]
    Timeout(Duration),
    #[error("cannot reach the identity provider: {0}")]
    Connect(String),
    #[error("identity provider response too large or unreadable: {0}")]
    Body(String),
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// An HTTP client for the OP. Build one per runtime: pooled connections belong to the runtime
/// that opened them.
#[derive(Clone)]
pub struct BackChannel {
    client: HttpsClient,
    timeout: Duration,
}

/// A connector for `http://` and `https://` (rustls with ring, the webpki roots): no Nagle
/// delay, `connect_timeout` to connect. HTTP/1.1 for the back channel and the upstream pool;
/// with `http2` (`upstream.http2`) HTTP/2 only: h2c with prior knowledge for `http://`, ALPN
/// `h2` for `https://`.
pub fn https_connector(
    connect_timeout: Duration,
    http2: bool,
) -> hyper_rustls::HttpsConnector<HttpConnector> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .unwrap_or_else(|_| {
            // ring supports the default protocol versions; this branch cannot be taken.
            hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots()
        })
        .https_or_http();
    match http2 {
        true => builder.enable_http2().wrap_connector(http),
        false => builder.enable_http1().wrap_connector(http),
    }
}

impl BackChannel {
    pub fn new(timeout: Duration) -> Self {
        let https = https_connector(timeout, false);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(4)
            .build(https);
        Self { client, timeout }
    }

    /// Sends one request. Redirects are returned as they are, never followed.
    pub async fn send(&self, request: HttpRequest) -> Result<HttpResponse, BackChannelError> {
        let (parts, body) = request.into_parts();
        let request = http::Request::from_parts(parts, Full::new(Bytes::from(body)));
        let work = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| BackChannelError::Connect(error_chain(&e)))?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| BackChannelError::Body(e.to_string()))?
                .to_bytes();
            Ok(http::Response::from_parts(parts, body.to_vec()))
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| BackChannelError::Timeout(self.timeout))?
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl<'c> AsyncHttpClient<'c> for BackChannel {
    type Error = BackChannelError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BackChannelError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}
