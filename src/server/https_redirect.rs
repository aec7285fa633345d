//! `server.http_redirect_listen`: a plain HTTP listener that sends every request to the TLS
//! listener, `308 Permanent Redirect` to `public_url` with the same path and query. It reads
//! the request head only (bounded, with a deadline), never the body or a cookie.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::header::{HeaderValue, CONNECTION, CONTENT_LENGTH, LOCATION};
use http::{Request, Response, StatusCode};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper_util::rt::TokioTimer;
use pingora::apps::ServerApp;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;

/// Largest request head read, in bytes: a redirect needs the request line only.
const MAX_HEAD: usize = 16 * 1024;

/// The redirect listener's connection handler.
pub struct HttpsRedirect {
    /// `public_url`'s origin, `https://host[:port]`.
    origin: String,
    http: hyper::server::conn::http1::Builder,
}

impl HttpsRedirect {
    pub fn new(origin: &str) -> Self {
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10))
            .max_buf_size(MAX_HEAD)
            .max_header_size(MAX_HEAD);
        Self {
            origin: origin.to_owned(),
            http,
        }
    }
}

/// The 308 for `req`: `origin` + its path and query (an absolute-form target keeps only
/// those, so the redirect never leaves `public_url`).
fn redirect(origin: &str, req: &Request<Incoming>) -> Response<Empty<Bytes>> {
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    // A target must start with / to follow the origin (`*` of OPTIONS, say, goes to `/`).
    let target = if target.starts_with('/') { target } else { "/" };
    let mut resp = Response::new(Empty::new());
    *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
    let location = HeaderValue::try_from(format!("{origin}{target}"))
        .unwrap_or_else(|_| HeaderValue::from_static("/"));
    let headers = resp.headers_mut();
    headers.insert(LOCATION, location);
    headers.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
    // The request body (if any) is never read: close rather than read past it.
    if req.headers().contains_key(CONTENT_LENGTH) || req.headers().contains_key("transfer-encoding")
    {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

#[async_trait]
impl ServerApp for HttpsRedirect {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let this = self.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let resp = redirect(&this.origin, &req);
            async move { Ok::<_, Infallible>(resp) }
        });
        crate::http1::serve_until_shutdown(&self.http, stream, service, shutdown, "https redirect")
            .await;
        None
    }
}
