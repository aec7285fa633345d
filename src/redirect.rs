//! The one redirect checker: every post-login and post-logout target passes through
//! [`ReturnTo::parse`], which keeps only a same-origin path. The proxy then writes `Location`
//! as its own origin followed by that path, so no target can name another host.

use std::fmt;

/// Longest path + query kept as a return target.
const MAX_RETURN_TO: usize = 2048;

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
        let bytes = path.as_bytes();
        // `//host` and `/\host` are scheme-relative to browsers.
        if bytes.len() > 1 && (bytes[1] == b'/' || bytes[1] == b'\\') {
            return None;
        }
        // Backslashes, controls, spaces and non-ASCII never occur in a well-formed target and
        // are what browser normalisation quirks are made of.
        if bytes.iter().any(|&b| b == b'\\' || b <= b' ' || b >= 0x7f) {
            return None;
        }
        // Percent-encoded slashes, backslashes and controls at the start smuggle the same tricks.
        let lower = path.to_ascii_lowercase();
        if ["/%2f", "/%5c", "/%09", "/%0a", "/%0d", "/%00", "/%25"]
            .iter()
            .any(|p| lower.starts_with(p))
        {
            return None;
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
