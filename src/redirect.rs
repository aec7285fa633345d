//! The one redirect checker: every post-login and post-logout target passes through
//! [`ReturnTo::parse`], which keeps only a same-origin path. The proxy then writes `Location`
//! as its own origin followed by that path, so no target can name another host.

use std::borrow::Cow;
use std::fmt;

use percent_encoding::percent_decode_str;
use url::{Position, Url};

/// Longest path + query kept as a return target.
const MAX_RETURN_TO: usize = 2048;
/// How many rounds of percent-decoding a target must survive (applications decode once,
/// some twice; the third is margin).
const MAX_DECODINGS: usize = 3;

/// True when `path` is `/` alone or `/` followed by something that is neither another slash
/// (`//host` and `/\host` are scheme-relative to browsers), nor whitespace or a control (which
/// browsers drop), nor the percent-encoding of one of those.
fn starts_safely(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return false;
    }
    if let Some(&b) = bytes.get(1) {
        if b == b'/' || b == b'\\' || b <= b' ' || b == 0x7f {
            return false;
        }
    }
    let lower = path.get(..4).unwrap_or(path).to_ascii_lowercase();
    !["/%2f", "/%5c", "/%09", "/%0a", "/%0d", "/%00", "/%25"]
        .iter()
        .any(|p| lower.starts_with(p))
}

/// The path, query and fragment a browser requests for `path` on our origin (WHATWG parsing:
/// dot segments, `%2e` included, resolved), or `None` if it would leave the origin.
fn landed(path: &str) -> Option<String> {
    let base = Url::parse("http://return-to.invalid/").ok()?;
    let url = base.join(path).ok()?;
    (url.origin() == base.origin()).then(|| url[Position::BeforePath..].to_owned())
}

/// A same-origin path (with its query), starting with exactly one `/`.
#[derive(Clone, PartialEq, Eq)]
pub struct ReturnTo(String);

impl fmt::Debug for ReturnTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReturnTo({:?})", self.0)
    }
}

impl ReturnTo {
    /// `/`, the target when nothing better is known.
    pub fn root() -> Self {
        Self("/".into())
    }

    /// Accepts `raw` when it is a path of this origin, or an absolute URL whose origin is
    /// exactly `origin` (`scheme://host[:port]`); anything else is `None`.
    pub fn parse(raw: &str, origin: &str) -> Option<Self> {
        let path = match raw.strip_prefix(origin) {
            // An absolute URL of our own origin: what follows must start the path.
            Some("") => "/",
            Some(rest) if rest.starts_with('/') => rest,
            Some(_) => return None,
            None => raw,
        };
        Self::from_path(path)
    }

    /// Accepts a request target's path and query as a return target.
    pub fn from_path(path: &str) -> Option<Self> {
        if path.len() > MAX_RETURN_TO || !path.starts_with('/') {
            return None;
        }
        // Backslashes, controls, spaces and non-ASCII never occur in a well-formed target and
        // are what browser normalisation quirks are made of.
        if path.bytes().any(|b| b == b'\\' || b <= b' ' || b >= 0x7f) {
            return None;
        }
        // The target must start safely as written, where the browser lands (dot segments
        // resolved: `/.//evil.com` lands on `//evil.com`), and once an application
        // percent-decodes it (`/%2f%2fevil.com`, `/%%32%66/evil.com`), several times over.
        let mut form = Cow::Borrowed(path);
        for _ in 0..=MAX_DECODINGS {
            if !starts_safely(&form) || !landed(&form).is_some_and(|l| starts_safely(&l)) {
                return None;
            }
            let decoded = percent_decode_str(&form).decode_utf8_lossy();
            if decoded == form {
                break;
            }
            form = Cow::Owned(decoded.into_owned());
        }
        Some(Self(path.to_owned()))
    }

    /// Like [`ReturnTo::parse`], falling back to `/` for a rejected target.
    pub fn parse_or_root(raw: Option<&str>, origin: &str) -> Self {
        raw.and_then(|r| Self::parse(r, origin))
            .unwrap_or_else(Self::root)
    }

    pub fn path(&self) -> &str {
        &self.0
    }

    /// The absolute URL to write in `Location`: always the proxy's own origin.
    pub fn absolute(&self, origin: &str) -> String {
        format!("{origin}{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "https://app.example.com";

    #[test]
    fn same_origin_targets_pass() {
        for (raw, path) in [
            ("/", "/"),
            ("/dashboard?tab=1", "/dashboard?tab=1"),
            ("https://app.example.com", "/"),
            ("https://app.example.com/x/y?z#f", "/x/y?z#f"),
            ("/a//b", "/a//b"),
            ("/%2e%2e/", "/%2e%2e/"),
        ] {
            assert_eq!(
                ReturnTo::parse(raw, ORIGIN).map(|r| r.0),
                Some(path.to_owned()),
                "{raw}"
            );
        }
    }

    #[test]
    fn off_origin_and_tricky_targets_are_rejected() {
        for raw in [
            "//evil.com",
            "/\\evil.com",
            "\\\\evil.com",
            "https://evil.com",
            "https://app.example.com.evil.com/",
            "https://app.example.com@evil.com/",
            "https://app.example.com:444/",
            "http://app.example.com/",
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "data:text/html,<script>",
            "http:evil.com",
            "evil.com",
            "/%2f%2fevil.com",
            "/%5cevil.com",
            "/\tevil",
            "/x\r\nSet-Cookie: a=b",
            // Dot segments that land on `//evil.com`, and encodings that decode to it.
            "/.//evil.com",
            "/..//evil.com",
            "/x/../..//evil.com",
            "/x/%2e%2e//evil.com",
            "https://app.example.com/.//evil.com",
            "/x/../%2f%2fevil.com",
            "/%2e/%5cevil.com",
            "/%%32%66/evil.com",
            "/x/..%5c..%5c/evil.com",
            "/ünïcode",
            "",
        ] {
            assert_eq!(ReturnTo::parse(raw, ORIGIN), None, "{raw:?}");
        }
    }

    #[test]
    fn location_is_always_on_our_origin() {
        let r = ReturnTo::parse("/next", ORIGIN).expect("valid");
        assert_eq!(r.absolute(ORIGIN), "https://app.example.com/next");
        assert_eq!(
            ReturnTo::parse_or_root(Some("//evil"), ORIGIN).absolute(ORIGIN),
            "https://app.example.com/"
        );
    }
}
