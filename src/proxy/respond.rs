//! Writing the proxy's own answers: redirects, pages, JSON and errors, with the headers every
//! such answer carries (no caching, no framing, a strict content security policy).

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;

use crate::error::AppError;
use crate::render::{ErrorPage, Pages};

/// The content security policy of the proxy's pages: no script at all.
const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// One answer to write.
pub struct Answer {
    pub status: u16,
    pub content_type: Option<&'static str>,
    pub body: Bytes,
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
}

impl Answer {
    pub fn redirect(status: u16, location: String) -> Self {
        Self {
            status,
            content_type: None,
            body: Bytes::new(),
            location: Some(location),
            set_cookies: Vec::new(),
        }
    }

    pub fn html(status: u16, body: String) -> Self {
        Self {
            status,
            content_type: Some("text/html; charset=utf-8"),
            body: Bytes::from(body),
            location: None,
            set_cookies: Vec::new(),
        }
    }

    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self {
            status,
            content_type: Some("application/json"),
            body: Bytes::from(body.to_string()),
            location: None,
            set_cookies: Vec::new(),
        }
    }

    pub fn json_text(status: u16, body: String) -> Self {
        Self {
            status,
            content_type: Some("application/json"),
            body: Bytes::from(body),
            location: None,
            set_cookies: Vec::new(),
        }
    }

    pub fn with_cookies(mut self, cookies: Vec<String>) -> Self {
        self.set_cookies.extend(cookies);
        self
    }

    /// The answer for an error: a page for browsers, JSON for everything else.
    pub fn error(err: &AppError, wants_html: bool, pages: &Pages, retry_url: &str) -> Self {
        let p = err.public();
        if wants_html {
            Self::html(
                p.status,
                pages.error(&ErrorPage {
                    status: p.status,
                    title: p.title,
                    message: p.message,
                    retry_url: p.retry_login.then_some(retry_url),
                }),
            )
        } else {
            Self::json(
                p.status,
                &serde_json::json!({ "error": p.code, "message": p.message }),
            )
        }
    }
}

/// Writes `answer` and reports the request as answered (`Ok(true)` for `request_filter`).
pub async fn write(session: &mut Session, answer: Answer) -> Result<bool> {
    let mut header = ResponseHeader::build(answer.status, Some(8))?;
    header.insert_header("content-length", answer.body.len().to_string())?;
    header.insert_header("cache-control", "no-store")?;
    header.insert_header("x-content-type-options", "nosniff")?;
    header.insert_header("referrer-policy", "no-referrer")?;
    if let Some(ct) = answer.content_type {
        header.insert_header("content-type", ct)?;
        if ct.starts_with("text/html") {
            header.insert_header("content-security-policy", PAGE_CSP)?;
            header.insert_header("x-frame-options", "DENY")?;
        }
    }
    if let Some(location) = answer.location {
        header.insert_header("location", location)?;
    }
    for cookie in answer.set_cookies {
        header.append_header("set-cookie", cookie)?;
    }
    let head_only = session.req_header().method == http::Method::HEAD || answer.body.is_empty();
    session
        .write_response_header(Box::new(header), head_only)
        .await?;
    if !head_only {
        session.write_response_body(Some(answer.body), true).await?;
    }
    Ok(true)
}
