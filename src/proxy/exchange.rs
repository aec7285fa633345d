//! One request as the proxy's own routes see it: its head, and its body read on demand.

use bytes::Bytes;
use http::request::Parts;
use http_body_util::BodyExt;
use hyper::body::Incoming;

/// A request the proxy answers itself (or, on the hot path, forwards: [`Session::into_parts`]).
pub struct Session {
    head: Parts,
    body: Incoming,
}

impl Session {
    pub fn new(head: Parts, body: Incoming) -> Self {
        Self { head, body }
    }

    /// The request line and headers.
    pub fn req_header(&self) -> &Parts {
        &self.head
    }

    /// The next chunk of the request body; `None` at its end. Trailers are skipped.
    pub async fn read_request_body(&mut self) -> Result<Option<Bytes>, hyper::Error> {
        while let Some(frame) = self.body.frame().await {
            if let Ok(data) = frame?.into_data() {
                return Ok(Some(data));
            }
        }
        Ok(None)
    }

    pub fn into_parts(self) -> (Parts, Incoming) {
        (self.head, self.body)
    }
}
