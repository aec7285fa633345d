//! The hop-by-hop rules of a reverse proxy (RFC 9110 §7.6.1), applied to the request before
//! it goes upstream and to the upstream's response before it goes back: part of preparing
//! the request, and the one place that knows which headers belong to a single connection.

use http::header::{
    HeaderMap, HeaderName, HeaderValue, CONNECTION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};

/// Whether the request asks to switch protocols (WebSocket): `Connection: upgrade` and an
/// `Upgrade` header.
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(UPGRADE) && connection_has(headers, "upgrade")
}

fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    headers.get_all(CONNECTION).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// Removes the hop-by-hop headers (RFC 9110 §7.6.1): `Connection` and every header it names,
/// `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`, `Transfer-Encoding` (hyper frames the
/// body again) and `Upgrade`. An upgrade keeps `Connection: upgrade` and `Upgrade`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    // One pass over the names first: a usual request or response carries none of these but
    // `Connection: keep-alive`, and then no other header is looked up.
    let mut found = false;
    let mut only_keep_alive = true;
    for (name, value) in headers.iter() {
        if name == CONNECTION {
            found = true;
            only_keep_alive &= value.as_bytes().eq_ignore_ascii_case(b"keep-alive")
                || value.as_bytes().eq_ignore_ascii_case(b"close");
        } else if name == TE
            || name == TRAILER
            || name == TRANSFER_ENCODING
            || name == UPGRADE
            || name.as_str() == "keep-alive"
            || name.as_str() == "proxy-connection"
        {
            found = true;
            only_keep_alive = false;
        }
    }
    if !found {
        if upgrade {
            headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        }
        return;
    }
    if only_keep_alive {
        headers.remove(CONNECTION);
        if upgrade {
            headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        }
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .filter(|n| !(upgrade && n == UPGRADE))
        .collect();
    for name in named {
        headers.remove(name);
    }
    headers.remove(CONNECTION);
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
    for name in [TE, TRAILER, TRANSFER_ENCODING] {
        headers.remove(name);
    }
    if upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(UPGRADE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        map
    }

    fn names(map: &HeaderMap) -> Vec<&str> {
        let mut names: Vec<&str> = map.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn hop_by_hop_headers_and_the_ones_connection_names_are_removed() {
        let mut map = headers(&[
            ("Connection", "keep-alive, X-Secret-Hop"),
            ("Connection", "Foo"),
            ("X-Secret-Hop", "1"),
            ("Foo", "2"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Connection", "keep-alive"),
            ("TE", "trailers"),
            ("Trailer", "X-Sum"),
            ("Transfer-Encoding", "chunked"),
            ("Upgrade", "websocket"),
            ("Accept", "*/*"),
        ]);
        strip_hop_by_hop(&mut map, false);
        assert_eq!(names(&map), ["accept"]);
    }

    #[test]
    fn the_usual_connection_header_costs_no_parsing_and_is_removed() {
        let mut map = headers(&[("Connection", "keep-alive"), ("Host", "a")]);
        strip_hop_by_hop(&mut map, false);
        assert_eq!(names(&map), ["host"]);
        let mut map = headers(&[("Connection", "close"), ("Host", "a")]);
        strip_hop_by_hop(&mut map, false);
        assert_eq!(names(&map), ["host"]);
    }

    #[test]
    fn an_upgrade_keeps_upgrade_and_connection_upgrade_only() {
        let mut map = headers(&[
            ("Connection", "Upgrade, X-Hop"),
            ("Upgrade", "websocket"),
            ("X-Hop", "1"),
            ("Sec-WebSocket-Key", "k"),
        ]);
        assert!(wants_upgrade(&map));
        strip_hop_by_hop(&mut map, true);
        assert_eq!(names(&map), ["connection", "sec-websocket-key", "upgrade"]);
        assert_eq!(map[CONNECTION], "upgrade");
        assert_eq!(map[UPGRADE], "websocket");
    }

    #[test]
    fn an_upgrade_needs_both_headers() {
        assert!(!wants_upgrade(&headers(&[("Upgrade", "websocket")])));
        assert!(!wants_upgrade(&headers(&[("Connection", "upgrade")])));
        assert!(wants_upgrade(&headers(&[
            ("Connection", "keep-alive, Upgrade"),
            ("Upgrade", "websocket"),
        ])));
    }
}
