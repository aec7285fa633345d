//! What the upstream receives: every client-sent identity header is removed in every spelling
//! (case, `_` for `-`) together with the proxy's own cookies, untrusted `X-Forwarded-*` are
//! replaced, and only then is the signed-in identity injected.

use std::net::IpAddr;

use http::header::{HeaderName, HeaderValue, COOKIE};
use ipnet::IpNet;
use pingora::http::RequestHeader;

use crate::enrich::Enriched;
use crate::session::{CookieSealer, Session};

pub const X_FORWARDED_USER: &str = "x-forwarded-user";
pub const X_FORWARDED_EMAIL: &str = "x-forwarded-email";
pub const X_FORWARDED_PREFERRED_USERNAME: &str = "x-forwarded-preferred-username";
pub const X_PROFILE_JWT: &str = "x-profile-jwt";

/// Identity header names (normalised: lower case, `-`) that only the proxy may set.
const IDENTITY_HEADERS: &[&str] = &[
    X_FORWARDED_USER,
    X_FORWARDED_EMAIL,
    X_FORWARDED_PREFERRED_USERNAME,
    "x-forwarded-groups",
    "x-forwarded-access-token",
    "x-auth-request-user",
    "x-auth-request-email",
    "x-auth-request-preferred-username",
    "x-remote-user",
    "remote-user",
];
/// Identity header families (normalised prefixes).
const IDENTITY_PREFIXES: &[&str] = &["x-profile-"];
/// Forwarding headers, believed only from trusted proxies.
const FORWARDING_HEADERS: &[&str] = &[
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-real-ip",
    "forwarded",
];

/// How a header name is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderKind {
    /// Carries identity: always removed.
    Identity,
    /// A forwarding header in its standard spelling: kept from trusted peers only.
    Forwarding,
    /// A forwarding header in a non-standard spelling (`X_Forwarded_For`): always removed.
    ForwardingVariant,
    Other,
}

/// Classifies a header name, whatever its case and `_`/`-` spelling.
pub fn classify(name: &str) -> HeaderKind {
    let mut buf = [0u8; 64];
    let bytes = name.as_bytes();
    if bytes.len() > buf.len() {
        // Long names can still be identity headers (`x-profile-<long id>`).
        let normalised: String = name
            .chars()
            .map(|c| {
                if c == '_' {
                    '-'
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect();
        return classify_normalised(&normalised, name.contains('_'));
    }
    let mut underscore = false;
    for (i, b) in bytes.iter().enumerate() {
        buf[i] = match b {
            b'_' => {
                underscore = true;
                b'-'
            }
            b => b.to_ascii_lowercase(),
        };
    }
    let normalised = std::str::from_utf8(&buf[..bytes.len()]).unwrap_or("");
    classify_normalised(normalised, underscore)
}

fn classify_normalised(n: &str, underscore: bool) -> HeaderKind {
    if IDENTITY_HEADERS.contains(&n) || IDENTITY_PREFIXES.iter().any(|p| n.starts_with(p)) {
        HeaderKind::Identity
    } else if FORWARDING_HEADERS.contains(&n) {
        if underscore {
            HeaderKind::ForwardingVariant
        } else {
            HeaderKind::Forwarding
        }
    } else {
        HeaderKind::Other
    }
}

/// Encodes a value for a header: printable ASCII (space included) passes except `%`; `%`,
/// controls (so never a raw CR or LF) and non-ASCII bytes are percent-encoded as UTF-8.
pub fn encode_header_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(
                char::from_digit(u32::from(b >> 4), 16).map_or('0', |c| c.to_ascii_uppercase()),
            );
            out.push(
                char::from_digit(u32::from(b & 0xf), 16).map_or('0', |c| c.to_ascii_uppercase()),
            );
        }
    }
    out
}

/// Who sent the request, as far as the proxy can tell.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub ip: Option<IpAddr>,
    pub trusted: bool,
}

impl Peer {
    pub fn new(ip: Option<IpAddr>, trusted_proxies: &[IpNet]) -> Self {
        let trusted = ip.is_some_and(|ip| trusted_proxies.iter().any(|net| net.contains(&ip)));
        Self { ip, trusted }
    }
}

/// Rewrites the request to the upstream: strip first, then inject.
pub fn prepare_upstream_request(
    req: &mut RequestHeader,
    peer: Peer,
    user: Option<&Session>,
    profile: Option<(&Enriched, Option<HeaderValue>)>,
    sealer: &CookieSealer,
    public_scheme: &str,
) {
    // 1. Strip identity headers in every spelling, and forwarding headers not to be believed.
    let doomed: Vec<HeaderName> = req
        .headers
        .keys()
        .filter(|name| match classify(name.as_str()) {
            HeaderKind::Identity | HeaderKind::ForwardingVariant => true,
            HeaderKind::Forwarding => !peer.trusted,
            HeaderKind::Other => false,
        })
        .cloned()
        .collect();
    for name in doomed {
        req.remove_header(&name);
    }
    strip_own_cookies(req, sealer);

    // 2. Forwarding headers: appended to a trusted chain, otherwise set from the connection.
    let host = req.headers.get(http::header::HOST).cloned();
    if let Some(ip) = peer.ip {
        let xff = match req
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
        {
            Some(chain) if peer.trusted && !chain.trim().is_empty() => format!("{chain}, {ip}"),
            _ => ip.to_string(),
        };
        set(req, "x-forwarded-for", &xff);
    }
    if !req.headers.contains_key("x-forwarded-proto") {
        set(req, "x-forwarded-proto", public_scheme);
    }
    if !req.headers.contains_key("x-forwarded-host") {
        if let Some(host) = host {
            let _ = req.insert_header("x-forwarded-host", host);
        }
    }

    // 3. Inject the identity.
    if let Some(user) = user {
        set(req, X_FORWARDED_USER, &encode_header_value(&user.sub));
        if let Some(email) = &user.email {
            set(req, X_FORWARDED_EMAIL, &encode_header_value(email));
        }
        if let Some(name) = &user.preferred_username {
            set(
                req,
                X_FORWARDED_PREFERRED_USERNAME,
                &encode_header_value(name),
            );
        }
    }
    if let Some((enriched, jwt)) = profile {
        for (name, value) in &enriched.headers {
            let _ = req.insert_header(name.clone(), value.clone());
        }
        if let Some(token) = jwt {
            let _ = req.insert_header(X_PROFILE_JWT, token);
        }
    }
}

fn set(req: &mut RequestHeader, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        let _ = req.insert_header(name, v);
    }
}

/// Removes the proxy's own cookies from every `Cookie` header, keeping the application's.
fn strip_own_cookies(req: &mut RequestHeader, sealer: &CookieSealer) {
    let mut any_own = false;
    let mut kept: Vec<&str> = Vec::new();
    for value in req.headers.get_all(COOKIE) {
        let Ok(text) = value.to_str() else {
            continue;
        };
        for part in text.split(';') {
            let name = part.split_once('=').map_or(part, |(n, _)| n).trim();
            if sealer.is_own_cookie(name) {
                any_own = true;
            } else if !part.trim().is_empty() {
                kept.push(part.trim());
            }
        }
    }
    if !any_own {
        return;
    }
    let joined = kept.join("; ");
    req.remove_header(&COOKIE);
    if !joined.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&joined) {
            let _ = req.insert_header(COOKIE, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_headers_are_recognised_in_every_spelling() {
        for name in [
            "X-Forwarded-User",
            "x-forwarded-user",
            "X_Forwarded_User",
            "x_FORWARDED-user",
            "X-Forwarded-Email",
            "x_forwarded_email",
            "X-Forwarded-Preferred-Username",
            "X-Profile-Company",
            "x_profile_job_title",
            "X-PROFILE-JWT",
        ] {
            assert_eq!(classify(name), HeaderKind::Identity, "{name}");
        }
        assert_eq!(
            classify(&format!("x-profile-{}", "a".repeat(100))),
            HeaderKind::Identity
        );
        assert_eq!(classify("X-Forwarded-For"), HeaderKind::Forwarding);
        assert_eq!(classify("X_Forwarded_For"), HeaderKind::ForwardingVariant);
        assert_eq!(classify("Accept"), HeaderKind::Other);
        assert_eq!(classify("x-profiles"), HeaderKind::Other);
    }

    #[test]
    fn header_values_are_percent_encoded_outside_printable_ascii() {
        assert_eq!(encode_header_value("Acme Inc."), "Acme Inc.");
        assert_eq!(encode_header_value("100%"), "100%25");
        assert_eq!(encode_header_value("a\r\nb"), "a%0D%0Ab");
        assert_eq!(encode_header_value("Zoë"), "Zo%C3%AB");
        assert_eq!(encode_header_value("\u{7f}"), "%7F");
    }
}
