//! Every header the upstream receives is prepared here, between the decision and `forward`:
//! hop-by-hop headers go ([`hop_by_hop`]), every client-sent identity header is removed in
//! every spelling (case, `_` for `-`) together with the proxy's own cookies, untrusted
//! `X-Forwarded-*` are replaced, and only then are the signed-in identity, the `X-Profile-*`
//! answers and the profile JWT injected.

mod hop_by_hop;

use http::header::{HeaderMap, HeaderName, HeaderValue, COOKIE};

pub use hop_by_hop::{strip_hop_by_hop, wants_upgrade};

use super::request::Peer;
use crate::enrich::Enriched;
use crate::profile::encode_header_value;
use crate::session::{CookieSealer, Session};

pub const X_FORWARDED_USER: &str = "x-forwarded-user";
pub const X_FORWARDED_EMAIL: &str = "x-forwarded-email";
pub const X_FORWARDED_PREFERRED_USERNAME: &str = "x-forwarded-preferred-username";
pub const X_PROFILE_JWT: &str = "x-profile-jwt";
pub const X_FORWARDED_GROUPS: &str = "x-forwarded-groups";

/// Identity header names (normalised: lower case, `-`) that only the proxy may set.
const IDENTITY_HEADERS: &[&str] = &[
    X_FORWARDED_USER,
    X_FORWARDED_EMAIL,
    X_FORWARDED_PREFERRED_USERNAME,
    X_FORWARDED_GROUPS,
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
    X_FORWARDED_FOR,
    X_FORWARDED_PROTO,
    X_FORWARDED_HOST,
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
    let bytes = name.as_bytes();
    // Every identity and forwarding name starts with `x`, `r` or `f`: most request headers
    // (`host`, `accept*`, `cookie`, `user-agent`, `sec-*`) are settled by their first byte.
    if !matches!(
        bytes.first().map(u8::to_ascii_lowercase),
        Some(b'x' | b'r' | b'f')
    ) {
        return HeaderKind::Other;
    }
    let mut buf = [0u8; 64];
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

/// The identity headers of one session, encoded once (the proxy keeps them with the opened
/// session, so the hot path only clones reference-counted values).
#[derive(Debug, Clone)]
pub struct Identity {
    user: Option<HeaderValue>,
    email: Option<HeaderValue>,
    preferred_username: Option<HeaderValue>,
    /// The groups, comma-joined, each encoded like an answer (so `,` inside one is `%2C`).
    groups: Option<HeaderValue>,
}

impl Identity {
    pub fn of(session: &Session) -> Self {
        let value = |v: &str| HeaderValue::from_str(&encode_header_value(v)).ok();
        Self {
            user: value(&session.sub),
            email: session.email.as_deref().and_then(value),
            preferred_username: session.preferred_username.as_deref().and_then(value),
            groups: (!session.groups.is_empty())
                .then(|| {
                    let items: Vec<String> = session
                        .groups
                        .iter()
                        .map(|g| encode_header_value(g).replace(',', "%2C"))
                        .collect();
                    HeaderValue::from_str(&items.join(",")).ok()
                })
                .flatten(),
        }
    }

    /// The `X-Forwarded-User` value.
    pub fn user_value(&self) -> Option<&[u8]> {
        self.user.as_ref().map(HeaderValue::as_bytes)
    }
}

/// Rewrites the headers of the request to the upstream: strip first, then inject.
pub fn prepare_upstream_request(
    headers: &mut HeaderMap,
    peer: &Peer,
    identity: Option<&Identity>,
    profile: Option<(&Enriched, Option<HeaderValue>)>,
    sealer: &CookieSealer,
    public_scheme: &'static str,
) {
    // 1. Strip identity headers in every spelling, and forwarding headers not to be believed.
    //    (No allocation when there is nothing to strip, the usual case.)
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| match classify(name.as_str()) {
            HeaderKind::Identity | HeaderKind::ForwardingVariant => true,
            HeaderKind::Forwarding => !peer.trusted,
            HeaderKind::Other => false,
        })
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(&name);
    }
    strip_own_cookies(headers, sealer);

    // 2. Forwarding headers: appended to a trusted chain, otherwise set from the connection.
    //    From an untrusted peer step 1 removed them all: nothing to look up.
    let host = headers.get(http::header::HOST).cloned();
    if let Some(ip) = peer.ip {
        let chain = peer
            .trusted
            .then(|| headers.get(X_FORWARDED_FOR))
            .flatten()
            .and_then(|v| v.to_str().ok())
            .filter(|chain| !chain.trim().is_empty());
        let value = match chain {
            Some(chain) => HeaderValue::from_str(&format!("{chain}, {ip}")).ok(),
            None => peer.ip_value.clone(),
        };
        if let Some(value) = value {
            headers.insert(name(X_FORWARDED_FOR), value);
        }
    }
    if !(peer.trusted && headers.contains_key(X_FORWARDED_PROTO)) {
        headers.insert(
            name(X_FORWARDED_PROTO),
            HeaderValue::from_static(public_scheme),
        );
    }
    if !(peer.trusted && headers.contains_key(X_FORWARDED_HOST)) {
        if let Some(host) = host {
            headers.insert(name(X_FORWARDED_HOST), host);
        }
    }

    // 3. Inject the identity.
    inject_identity(headers, identity, profile);
}

/// Sets the identity headers of a signed-in user (`X-Forwarded-User`, …, `X-Profile-*`,
/// `X-Profile-Jwt`) in `headers`: those of the request to the upstream, or of a forward-auth
/// answer the edge proxy copies upstream.
pub fn inject_identity(
    headers: &mut HeaderMap,
    identity: Option<&Identity>,
    profile: Option<(&Enriched, Option<HeaderValue>)>,
) {
    if let Some(identity) = identity {
        for (header, value) in [
            (X_FORWARDED_USER, &identity.user),
            (X_FORWARDED_EMAIL, &identity.email),
            (X_FORWARDED_PREFERRED_USERNAME, &identity.preferred_username),
            (X_FORWARDED_GROUPS, &identity.groups),
        ] {
            if let Some(value) = value {
                headers.insert(name(header), value.clone());
            }
        }
    }
    if let Some((enriched, jwt)) = profile {
        for (header, value) in enriched.headers.iter() {
            headers.insert(header.clone(), value.clone());
        }
        if let Some(token) = jwt {
            headers.insert(name(X_PROFILE_JWT), token);
        }
    }
}

const X_FORWARDED_FOR: &str = "x-forwarded-for";
const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
const X_FORWARDED_HOST: &str = "x-forwarded-host";

/// A header name from a constant of this module (all valid lower-case names).
fn name(header: &'static str) -> HeaderName {
    HeaderName::from_static(header)
}

/// Removes the proxy's own cookies from every `Cookie` header, keeping the application's.
fn strip_own_cookies(headers: &mut HeaderMap, sealer: &CookieSealer) {
    let mut any_own = false;
    let mut kept: Vec<&str> = Vec::new();
    for value in headers.get_all(COOKIE) {
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
    headers.remove(COOKIE);
    if !joined.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&joined) {
            headers.insert(COOKIE, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_guarded_name_passes_the_first_byte_filter_of_classify() {
        for name in IDENTITY_HEADERS
            .iter()
            .chain(IDENTITY_PREFIXES)
            .chain(FORWARDING_HEADERS)
        {
            assert!(
                matches!(name.as_bytes()[0], b'x' | b'r' | b'f'),
                "{name}: classify() would call it Other without looking"
            );
            assert_ne!(classify(name), HeaderKind::Other, "{name}");
            assert_ne!(
                classify(&name.to_ascii_uppercase()),
                HeaderKind::Other,
                "{name}"
            );
        }
    }

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
}
