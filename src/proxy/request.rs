//! The incoming exchange: who sent it ([`Peer`], one per connection), its head, its query and
//! its body read on demand and bounded. Built by `Gate::serve` after the edge checks; the
//! routes read it, the hot path takes it apart to forward it.

use std::net::IpAddr;

use bytes::Bytes;
use http::header::{HeaderValue, COOKIE};
use http::request::Parts;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use ipnet::IpNet;

use crate::error::AppError;

/// A request the proxy answers itself (or, on the hot path, forwards:
/// [`IncomingRequest::into_parts`]).
pub struct IncomingRequest {
    head: Parts,
    body: Incoming,
}

impl IncomingRequest {
    pub fn new(head: Parts, body: Incoming) -> Self {
        Self { head, body }
    }

    /// The request line and headers.
    pub fn head(&self) -> &Parts {
        &self.head
    }

    /// The next chunk of the request body; `None` at its end. Trailers are skipped.
    pub async fn read_body_chunk(&mut self) -> Result<Option<Bytes>, hyper::Error> {
        while let Some(frame) = self.body.frame().await {
            if let Ok(data) = frame?.into_data() {
                return Ok(Some(data));
            }
        }
        Ok(None)
    }

    /// Reads the request body, of at most `limit` bytes.
    pub async fn read_body(&mut self, limit: usize) -> Result<Vec<u8>, AppError> {
        let mut body = Vec::new();
        loop {
            match self.read_body_chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > limit {
                        return Err(AppError::BodyTooLarge);
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(body),
                Err(e) => return Err(AppError::BadRequest(e.to_string())),
            }
        }
    }

    /// The request's `Cookie` headers, copied so the request can be read from afterwards.
    pub fn cookie_headers(&self) -> Vec<Vec<u8>> {
        self.head
            .headers
            .get_all(COOKIE)
            .iter()
            .map(|v| v.as_bytes().to_vec())
            .collect()
    }

    /// The first value of each query parameter named in `names`, in that order.
    pub fn query_params<const N: usize>(&self, names: [&str; N]) -> [Option<String>; N] {
        let mut out: [Option<String>; N] = std::array::from_fn(|_| None);
        if let Some(q) = self.head.uri.query() {
            form_fields(q.as_bytes(), &names, &mut out);
        }
        out
    }

    pub fn into_parts(self) -> (Parts, Incoming) {
        (self.head, self.body)
    }
}

/// The first value of each field named in `names` of a form (or query) `raw`, into `out`.
pub fn form_fields<const N: usize>(raw: &[u8], names: &[&str; N], out: &mut [Option<String>; N]) {
    for (k, v) in url::form_urlencoded::parse(raw) {
        if let Some(i) = names.iter().position(|n| *n == k) {
            if out[i].is_none() {
                out[i] = Some(v.into_owned());
            }
        }
    }
}

/// A posted form (`application/x-www-form-urlencoded`), decoded: its first 256 `name=value`
/// pairs in order (a name may repeat).
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(raw: &[u8]) -> Self {
        Form(
            url::form_urlencoded::parse(raw)
                .take(256)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every pair, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

/// The languages of the request's `Accept-Language`, best first (none without the header).
pub fn accepted_languages(head: &Parts) -> Vec<String> {
    head.headers
        .get("accept-language")
        .and_then(|v| v.to_str().ok())
        .map(crate::profile::i18n::accept_language)
        .unwrap_or_default()
}

/// True when the client would rather read a page than JSON (given its `Accept` header).
pub fn accepts_html(accept: Option<&[u8]>) -> bool {
    accept.is_some_and(|a| a.windows(9).any(|w| w.eq_ignore_ascii_case(b"text/html")))
}

/// Who sent the request, as far as the proxy can tell (one per client connection).
#[derive(Debug, Clone)]
pub struct Peer {
    pub ip: Option<IpAddr>,
    pub trusted: bool,
    /// `ip` as a header value, formatted once per connection.
    pub(super) ip_value: Option<HeaderValue>,
}

impl Peer {
    pub fn new(ip: Option<IpAddr>, trusted_proxies: &[IpNet]) -> Self {
        let trusted = ip.is_some_and(|ip| trusted_proxies.iter().any(|net| net.contains(&ip)));
        Self {
            ip,
            trusted,
            ip_value: ip.and_then(ip_header_value),
        }
    }
}

/// The client address as a header value, formatted without a temporary `String`.
fn ip_header_value(ip: IpAddr) -> Option<HeaderValue> {
    use std::io::Write;
    let mut buf = [0u8; 48]; // the longest IPv6 text is 45 bytes
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    write!(cursor, "{ip}").ok()?;
    let len = usize::try_from(cursor.position()).ok()?;
    HeaderValue::from_bytes(&buf[..len]).ok()
}
