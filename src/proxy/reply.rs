//! What profilegate answers itself ([`Reply`]): redirects, pages, JSON and errors, with the
//! headers every such reply carries (no caching, no framing, a strict content security
//! policy). The last step of every request the proxy does not forward.

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE, LOCATION, SET_COOKIE};
use http::{Response, StatusCode};
use http_body_util::{Either, Full};

use super::forward::TimedBody;
use crate::error::AppError;
use crate::render::{ErrorPage, Pages, SignedIn};

/// What every reply of the proxy's own, and every forwarded response, is sent as.
pub type ProxyBody = Either<TimedBody, Full<Bytes>>;

/// What a route returns: its reply, or an error plus the cookies the error reply must still set.
pub type Handled = Result<Reply, (AppError, Vec<String>)>;

/// The content security policy of the proxy's pages: no script at all.
const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// [`PAGE_CSP`], with `op_origin` (the OP's end-session endpoint's) allowed as a form target
/// too: a sign-out form posts to the proxy, which redirects to the OP to end its session, and
/// browsers apply `form-action` to every redirect of a form submission (Chromium aborts it).
pub fn page_csp(op_origin: Option<&str>) -> String {
    match op_origin {
        Some(op) => PAGE_CSP.replace("form-action 'self'", &format!("form-action 'self' {op}")),
        None => PAGE_CSP.to_owned(),
    }
}

/// `csp` with `frame-ancestors 'none'` replaced by `origins`; `None` when an origin does not
/// fit a header (then the caller falls back to the unframable policy).
fn framable_csp(csp: &str, origins: &[String]) -> Option<HeaderValue> {
    if origins
        .iter()
        .any(|o| o.is_empty() || o.contains([';', ',', ' ', '\'', '\r', '\n']))
    {
        return None;
    }
    let ancestors = format!("frame-ancestors {}", origins.join(" "));
    HeaderValue::try_from(csp.replace("frame-ancestors 'none'", &ancestors)).ok()
}

/// One reply to write.
pub struct Reply {
    pub status: u16,
    pub content_type: Option<&'static str>,
    pub body: Bytes,
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
    /// The origins allowed to embed this page in a frame (`frame-ancestors`), with caching
    /// forbidden to every cache (`no-cache, no-store`, `Pragma`): the front-channel logout
    /// page the OP embeds. Empty for every other page: no one may frame it.
    pub framable_by: Vec<String>,
    /// Further headers: a forward-auth answer's identity, which the edge proxy copies upstream.
    pub headers: http::HeaderMap,
}

impl Reply {
    /// A reply with no body (and no content type).
    pub fn empty(status: u16) -> Self {
        Self {
            status,
            content_type: None,
            body: Bytes::new(),
            location: None,
            set_cookies: Vec::new(),
            framable_by: Vec::new(),
            headers: http::HeaderMap::new(),
        }
    }

    pub fn redirect(status: u16, location: String) -> Self {
        Self {
            status,
            content_type: None,
            body: Bytes::new(),
            location: Some(location),
            set_cookies: Vec::new(),
            framable_by: Vec::new(),
            headers: http::HeaderMap::new(),
        }
    }

    pub fn html(status: u16, body: String) -> Self {
        Self {
            status,
            content_type: Some("text/html; charset=utf-8"),
            body: Bytes::from(body),
            location: None,
            set_cookies: Vec::new(),
            framable_by: Vec::new(),
            headers: http::HeaderMap::new(),
        }
    }

    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self {
            status,
            content_type: Some("application/json"),
            body: Bytes::from(body.to_string()),
            location: None,
            set_cookies: Vec::new(),
            framable_by: Vec::new(),
            headers: http::HeaderMap::new(),
        }
    }

    pub fn json_text(status: u16, body: String) -> Self {
        Self {
            status,
            content_type: Some("application/json"),
            body: Bytes::from(body),
            location: None,
            set_cookies: Vec::new(),
            framable_by: Vec::new(),
            headers: http::HeaderMap::new(),
        }
    }

    pub fn with_cookies(mut self, cookies: Vec<String>) -> Self {
        self.set_cookies.extend(cookies);
        self
    }

    /// The page may be framed by `origins` (and by no one else); see [`Reply::framable_by`].
    pub fn framable_by(mut self, origins: Vec<String>) -> Self {
        self.framable_by = origins;
        self
    }

    /// Adds `cookie` before the reply's own `Set-Cookie` values (a later one for the same
    /// name wins in browsers).
    pub fn with_first_cookie(mut self, cookie: String) -> Self {
        self.set_cookies.insert(0, cookie);
        self
    }

    /// The reply for an error: a page for browsers, JSON for everything else. `signed_in`:
    /// who is signed in, for the page's sign-out button.
    pub fn error(
        err: &AppError,
        wants_html: bool,
        pages: &Pages,
        retry_url: &str,
        signed_in: Option<SignedIn<'_>>,
    ) -> Self {
        let p = err.public();
        if wants_html {
            Self::html(
                p.status,
                pages.error(&ErrorPage {
                    status: p.status,
                    title: p.title,
                    message: p.message,
                    retry_url: p.retry_login.then_some(retry_url),
                    signed_in,
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

impl Reply {
    /// The response to send; `head_only` (a `HEAD` request) keeps the length but not the body.
    /// `csp` is the pages' Content-Security-Policy ([`page_csp`]), sent with HTML.
    pub fn into_response(self, head_only: bool, csp: &str) -> Response<ProxyBody> {
        let len = self.body.len();
        let body = if head_only { Bytes::new() } else { self.body };
        let mut resp = Response::new(Either::Right(Full::new(body)));
        *resp.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = resp.headers_mut();
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(len));
        let framed = !self.framable_by.is_empty();
        if framed {
            // OIDC Front-Channel Logout 1.0 §3: no cache may keep the page.
            headers.insert(
                http::header::CACHE_CONTROL,
                HeaderValue::from_static("no-cache, no-store"),
            );
            headers.insert(http::header::PRAGMA, HeaderValue::from_static("no-cache"));
        } else {
            headers.insert(
                http::header::CACHE_CONTROL,
                HeaderValue::from_static("no-store"),
            );
        }
        headers.insert(
            http::header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        // `same-origin`, not `no-referrer`: other sites still learn nothing, but the pages' own
        // form posts keep their `Origin` (browsers send `Origin: null` under `no-referrer`),
        // which the cross-origin check of state-changing routes requires.
        headers.insert(
            http::header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
        if let Some(ct) = self.content_type {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
            if ct.starts_with("text/html") {
                let csp = match framed {
                    true => framable_csp(csp, &self.framable_by),
                    false => HeaderValue::try_from(csp).ok(),
                };
                let csp = csp.unwrap_or_else(|| HeaderValue::from_static(PAGE_CSP));
                headers.insert(http::header::CONTENT_SECURITY_POLICY, csp);
                // `X-Frame-Options` cannot name an origin: a framable page relies on the CSP.
                if !framed {
                    headers.insert(
                        http::header::X_FRAME_OPTIONS,
                        HeaderValue::from_static("DENY"),
                    );
                }
            }
        }
        if let Some(location) = self.location {
            match HeaderValue::try_from(location) {
                Ok(v) => {
                    headers.insert(LOCATION, v);
                }
                Err(_) => tracing::error!("a redirect target is not a valid header value"),
            }
        }
        for (name, value) in self.headers {
            if let Some(name) = name {
                headers.append(name, value);
            }
        }
        for cookie in self.set_cookies {
            if let Ok(v) = HeaderValue::try_from(cookie) {
                headers.append(SET_COOKIE, v);
            }
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_csp_adds_only_the_ops_origin_to_form_action() {
        assert_eq!(page_csp(None), PAGE_CSP);
        let csp = page_csp(Some("https://idp.example"));
        assert!(
            csp.contains("; form-action 'self' https://idp.example;"),
            "{csp}"
        );
        assert_eq!(
            csp.replace(" https://idp.example", ""),
            PAGE_CSP,
            "nothing else changes"
        );
        assert!(csp.starts_with("default-src 'none';") && !csp.contains("script-src"));
    }

    fn header(resp: &Response<ProxyBody>, name: http::header::HeaderName) -> Option<&str> {
        resp.headers().get(name).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn only_a_framable_page_names_its_frame_ancestors_and_every_other_stays_unframable() {
        use http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, PRAGMA, X_FRAME_OPTIONS};
        let csp = page_csp(Some("https://idp.example"));
        let plain = Reply::html(200, "<p>x</p>".into()).into_response(false, &csp);
        let plain_csp = header(&plain, CONTENT_SECURITY_POLICY).unwrap_or_default();
        assert!(plain_csp.contains("frame-ancestors 'none'"), "{plain_csp}");
        assert_eq!(header(&plain, X_FRAME_OPTIONS), Some("DENY"));
        assert_eq!(header(&plain, CACHE_CONTROL), Some("no-store"));

        let framed = Reply::html(200, "<p>x</p>".into())
            .framable_by(vec![
                "https://idp.example".into(),
                "https://sso.example".into(),
            ])
            .into_response(false, &csp);
        let framed_csp = header(&framed, CONTENT_SECURITY_POLICY).unwrap_or_default();
        assert!(
            framed_csp.contains("; frame-ancestors https://idp.example https://sso.example;"),
            "{framed_csp}"
        );
        assert!(
            !framed_csp.contains("'none'; base-uri") && framed_csp.contains("default-src 'none'")
        );
        assert_eq!(header(&framed, X_FRAME_OPTIONS), None);
        assert_eq!(header(&framed, CACHE_CONTROL), Some("no-cache, no-store"));
        assert_eq!(header(&framed, PRAGMA), Some("no-cache"));

        // An origin that would add a directive falls back to the unframable policy.
        let forged = Reply::html(200, String::new())
            .framable_by(vec!["https://a.example; script-src *".into()])
            .into_response(false, &csp);
        let forged_csp = header(&forged, CONTENT_SECURITY_POLICY).unwrap_or_default();
        assert!(
            forged_csp.contains("frame-ancestors 'none'") && !forged_csp.contains("script-src")
        );
    }
}
