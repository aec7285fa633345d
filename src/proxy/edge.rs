//! The proxy's own edge: the checks every request passes before anything else reads it. Sizes
//! of header lines (before the session cookie is parsed), the request target's path (before
//! the decision), and where a state-changing request comes from (before its route runs).
//! Each is a pure function over what the request carries, table-tested below.

use http::header::{HeaderMap, HeaderName};
use http::Method;

/// `Origin` and `Sec-Fetch-Site`, parsed once.
pub const ORIGIN: HeaderName = http::header::ORIGIN;
pub const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// The longest header line of a request when it is longer than `limit`, counted as
/// `name: value` (name, colon, space, value; no CRLF); `None` when every line fits.
///
/// One pass over the lengths hyper already knows: no allocation on the hot path.
pub fn oversized_header_line(headers: &HeaderMap, limit: usize) -> Option<usize> {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + 2 + value.len())
        .filter(|&len| len > limit)
        .max()
}

/// Why a request path is refused before any decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadPath {
    /// A control byte (`%00`–`%1F`, `%7F`, raw or percent-encoded).
    ControlByte,
    /// The percent-decoded path is not UTF-8 (invalid, truncated or overlong sequences).
    NotUtf8,
}

impl BadPath {
    pub fn reason(self) -> &'static str {
        match self {
            BadPath::ControlByte => "the path carries a control character",
            BadPath::NotUtf8 => "the decoded path is not valid UTF-8",
        }
    }
}

/// Checks the request path once percent-decoded: no control bytes, valid UTF-8 (which also
/// refuses overlong encodings such as `%C0%AF`). A `%` not followed by two hex digits stays a
/// literal `%`, as every server decodes it. The query string is not looked at.
pub fn check_path(path: &str) -> Result<(), BadPath> {
    let raw = path.as_bytes();
    if !raw.contains(&b'%') {
        // No escapes: the bytes are the decoded path (and hyper passes ASCII only).
        return match raw.iter().any(|&b| is_control(b)) {
            true => Err(BadPath::ControlByte),
            false => std::str::from_utf8(raw)
                .map(drop)
                .map_err(|_| BadPath::NotUtf8),
        };
    }
    let mut decoded = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let byte = match (raw[i], raw.get(i + 1..i + 3)) {
            (b'%', Some(&[h, l])) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                i += 3;
                hex(h) << 4 | hex(l)
            }
            (b, _) => {
                i += 1;
                b
            }
        };
        if is_control(byte) {
            return Err(BadPath::ControlByte);
        }
        decoded.push(byte);
    }
    std::str::from_utf8(&decoded)
        .map(drop)
        .map_err(|_| BadPath::NotUtf8)
}

fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

fn hex(d: u8) -> u8 {
    match d {
        b'0'..=b'9' => d - b'0',
        b'a'..=b'f' => d - b'a' + 10,
        _ => d - b'A' + 10,
    }
}

/// Which origins may send a state-changing request to a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllowedOrigin<'a> {
    /// The proxy's own pages and the app's same-origin scripts: `server.public_url`'s origin.
    /// A browser that says the request is `same-site` or `cross-site` is refused.
    Public(&'a str),
    /// The custom UI's post-back to `/continue`: `profiling.redirect_url`'s origin. That form
    /// may live on another site, so `Sec-Fetch-Site: cross-site` is expected there and `Origin`
    /// decides; without `Origin`, a browser that says `same-site` or `cross-site` is refused.
    CustomUi(&'a str),
}

/// Why a state-changing request was refused as cross-origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrossOrigin {
    /// `Origin` names another origin (or `null`).
    Origin(String),
    /// `Sec-Fetch-Site` says another site sent it.
    FetchSite(String),
    /// `Origin` or `Sec-Fetch-Site` is repeated: no single answer to check.
    Repeated(HeaderName),
}

impl std::fmt::Display for CrossOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CrossOrigin::Origin(o) => write!(f, "Origin {o:?} is not allowed here"),
            CrossOrigin::FetchSite(s) => write!(f, "Sec-Fetch-Site is {s:?}"),
            CrossOrigin::Repeated(h) => write!(f, "{} is repeated", h.as_str()),
        }
    }
}

/// The one cross-origin check of state-changing requests. Safe methods (`GET`, `HEAD`,
/// `OPTIONS`) always pass: they change nothing. For the others: an `Origin` header must be the
/// allowed origin (exactly, ASCII case aside; `null` never is); `Sec-Fetch-Site` may be
/// `same-origin` or `none` (see [`AllowedOrigin`] for `/continue`). A request with neither
/// header (an older client, curl) passes: its CSRF token or signed token decides, as before.
pub fn check_origin(
    method: &Method,
    origin: Option<&[u8]>,
    fetch_site: Option<&[u8]>,
    allowed: AllowedOrigin<'_>,
) -> Result<(), CrossOrigin> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let (expected, origin_decides) = match allowed {
        AllowedOrigin::Public(o) => (o, false),
        AllowedOrigin::CustomUi(o) => (o, true),
    };
    if let Some(origin) = origin {
        if !origin.eq_ignore_ascii_case(expected.as_bytes()) {
            return Err(CrossOrigin::Origin(shown(origin)));
        }
        if origin_decides {
            return Ok(());
        }
    }
    match fetch_site {
        None => Ok(()),
        Some(site)
            if site.eq_ignore_ascii_case(b"same-origin") || site.eq_ignore_ascii_case(b"none") =>
        {
            Ok(())
        }
        Some(site) => Err(CrossOrigin::FetchSite(shown(site))),
    }
}

/// The single value of header `name`; refused when it is repeated.
pub fn single<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'a [u8]>, CrossOrigin> {
    let mut values = headers.get_all(name).iter();
    let first = values.next().map(|v| v.as_bytes());
    match values.next() {
        Some(_) => Err(CrossOrigin::Repeated(name.clone())),
        None => Ok(first),
    }
}

/// A header value for the log: at most 100 bytes, escaped.
fn shown(raw: &[u8]) -> String {
    let cut = &raw[..raw.len().min(100)];
    String::from_utf8_lossy(cut).escape_debug().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn a_header_line_is_refused_only_beyond_the_limit() {
        let mut headers = HeaderMap::new();
        // "x-pad: " is 7 bytes.
        headers.insert("x-pad", HeaderValue::from_static("0123456789"));
        headers.insert("host", HeaderValue::from_static("a"));
        assert_eq!(
            oversized_header_line(&headers, 17),
            None,
            "exactly the limit"
        );
        assert_eq!(oversized_header_line(&headers, 16), Some(17));
        headers.append("x-pad", HeaderValue::from_static("012345678901"));
        assert_eq!(oversized_header_line(&headers, 17), Some(19), "the longest");
    }

    #[test]
    fn paths_with_control_bytes_or_broken_utf8_are_refused() {
        use BadPath::*;
        let table: &[(&str, Result<(), BadPath>)] = &[
            ("/", Ok(())),
            ("/app/page", Ok(())),
            ("/caf%C3%A9", Ok(())),
            ("/caf%c3%a9/%E2%82%AC", Ok(())),
            ("/%20space%2F%25", Ok(())),
            ("/100%", Ok(())),
            ("/100%zz", Ok(())),
            ("/%4", Ok(())),
            ("/%7E", Ok(())),
            ("/%F0%9F%98%80", Ok(())),
            ("/a%00b", Err(ControlByte)),
            ("/%0a", Err(ControlByte)),
            ("/%0D%0Aset-cookie:x", Err(ControlByte)),
            ("/%1F", Err(ControlByte)),
            ("/%1f", Err(ControlByte)),
            ("/%7f", Err(ControlByte)),
            ("/%09tab", Err(ControlByte)),
            ("/%ff", Err(NotUtf8)),
            ("/%c3", Err(NotUtf8)),
            ("/%c3/", Err(NotUtf8)),
            ("/%c0%af", Err(NotUtf8)),
            ("/%e0%80%af", Err(NotUtf8)),
            ("/%ed%a0%80", Err(NotUtf8)),
            ("/%f8%88%80%80%80", Err(NotUtf8)),
            ("/%E9t%E9", Err(NotUtf8)),
        ];
        for (path, expected) in table {
            assert_eq!(check_path(path), *expected, "{path}");
        }
    }

    #[test]
    fn state_changing_requests_from_another_origin_are_refused() {
        const PUBLIC: &str = "https://app.example.com";
        const UI: &str = "https://forms.example.net";
        let (get, post, head) = (Method::GET, Method::POST, Method::HEAD);
        let public = AllowedOrigin::Public(PUBLIC);
        let ui = AllowedOrigin::CustomUi(UI);
        type Row<'a> = (
            &'a Method,
            Option<&'a str>,
            Option<&'a str>,
            AllowedOrigin<'a>,
            bool,
        );
        let table: &[Row<'_>] = &[
            // Older clients and scripts: no header at all, the token decides.
            (&post, None, None, public, true),
            (&post, None, None, ui, true),
            // The proxy's own pages, posting to themselves.
            (&post, Some(PUBLIC), Some("same-origin"), public, true),
            (&post, Some("HTTPS://APP.example.com"), None, public, true),
            (&post, None, Some("same-origin"), public, true),
            (&post, None, Some("none"), public, true),
            (&post, Some(PUBLIC), Some("none"), public, true),
            // Another origin, another site, or a browser that hides where it came from.
            (&post, Some("https://evil.example"), None, public, false),
            (
                &post,
                Some("https://evil.example"),
                Some("cross-site"),
                public,
                false,
            ),
            (&post, Some("null"), None, public, false),
            (&post, Some("null"), Some("same-origin"), public, false),
            (
                &post,
                Some("https://app.example.com:8443"),
                None,
                public,
                false,
            ),
            (&post, Some("http://app.example.com"), None, public, false),
            (&post, Some(PUBLIC), Some("cross-site"), public, false),
            (&post, Some(PUBLIC), Some("same-site"), public, false),
            (&post, None, Some("cross-site"), public, false),
            (&post, None, Some("same-site"), public, false),
            (&post, None, Some("SAME-SITE"), public, false),
            (&post, None, Some("bogus"), public, false),
            (&post, Some(UI), Some("cross-site"), public, false),
            // The custom UI's post-back: its own origin decides, even from another site.
            (&post, Some(UI), Some("cross-site"), ui, true),
            (&post, Some(UI), Some("same-site"), ui, true),
            (&post, Some(UI), None, ui, true),
            (&post, Some(PUBLIC), Some("same-origin"), ui, false),
            (
                &post,
                Some("https://evil.example"),
                Some("cross-site"),
                ui,
                false,
            ),
            (&post, Some("null"), Some("cross-site"), ui, false),
            (&post, None, Some("cross-site"), ui, false),
            (&post, None, Some("same-site"), ui, false),
            (&post, None, Some("same-origin"), ui, true),
            // Safe methods change nothing.
            (
                &get,
                Some("https://evil.example"),
                Some("cross-site"),
                public,
                true,
            ),
            (&head, Some("null"), Some("same-site"), ui, true),
        ];
        for (method, origin, site, allowed, passes) in table {
            let got = check_origin(
                method,
                origin.map(str::as_bytes),
                site.map(str::as_bytes),
                *allowed,
            );
            assert_eq!(
                got.is_ok(),
                *passes,
                "{method} Origin={origin:?} Sec-Fetch-Site={site:?} {allowed:?}: {got:?}"
            );
        }
    }

    #[test]
    fn a_repeated_header_has_no_single_value() {
        let mut headers = HeaderMap::new();
        assert_eq!(single(&headers, &ORIGIN), Ok(None));
        headers.append(ORIGIN, HeaderValue::from_static("https://a.example"));
        assert_eq!(
            single(&headers, &ORIGIN),
            Ok(Some(&b"https://a.example"[..]))
        );
        headers.append(ORIGIN, HeaderValue::from_static("https://a.example"));
        assert_eq!(
            single(&headers, &ORIGIN),
            Err(CrossOrigin::Repeated(ORIGIN))
        );
    }
}
