//! The admin listener's responses: a body that is either whole or streamed, and the helpers
//! every admin route answers with (never cached, `nosniff`).

use bytes::Bytes;
use http::Response;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};

/// An admin response's body: whole (`Full`) or streamed (`http_body_util::StreamBody`, boxed
/// with `BodyExt::boxed_unsync`). An `Err` item ends a streamed response early (the client sees
/// a truncated chunked body, never a complete-looking one).
pub type AdminBody = UnsyncBoxBody<Bytes, std::io::Error>;

fn whole(bytes: impl Into<Bytes>) -> AdminBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A response with the headers every admin answer has.
pub fn respond(status: u16, content_type: &str, body: AdminBody) -> Response<AdminBody> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("cache-control", "no-store")
        .header("x-content-type-options", "nosniff")
        .body(body)
        .unwrap_or_else(|_| Response::new(empty()))
}

/// An empty body.
pub fn empty() -> AdminBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// `text/plain; charset=utf-8`.
pub fn plain(status: u16, body: impl Into<String>) -> Response<AdminBody> {
    text(status, "text/plain; charset=utf-8", body.into())
}

/// Text of the given type.
pub fn text(status: u16, content_type: &str, body: String) -> Response<AdminBody> {
    respond(status, content_type, whole(body))
}

/// JSON (`application/json`).
pub fn json(status: u16, value: &serde_json::Value) -> Response<AdminBody> {
    let mut body = serde_json::to_vec(value).unwrap_or_default();
    body.push(b'\n');
    respond(status, "application/json", whole(body))
}

/// An HTML page (the dashboard), with the hosted pages' Content-Security-Policy.
pub fn html(status: u16, body: String, csp: &str) -> Response<AdminBody> {
    let mut response = text(status, "text/html; charset=utf-8", body);
    if let Ok(value) = http::HeaderValue::from_str(csp) {
        response
            .headers_mut()
            .insert(http::header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// A 308 to `to` (same listener).
pub fn redirect(to: &str) -> Response<AdminBody> {
    let mut response = respond(308, "text/plain; charset=utf-8", empty());
    if let Ok(value) = http::HeaderValue::from_str(to) {
        response.headers_mut().insert(http::header::LOCATION, value);
    }
    response
}
