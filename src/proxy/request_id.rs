//! The request id (`X-Request-Id`): which one a request gets, at the entry of `Gate::serve`
//! (traced.rs), before anything else reads the request. A trusted proxy's id is kept when it
//! is sane; every other request gets a new one. The id then travels upstream, back to the
//! client and on every log line of the request (`log_format::REQUEST_ID`).

use std::cell::RefCell;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest id taken from a trusted proxy.
pub const MAX_LEN: usize = 128;

/// The request's id: the `X-Request-Id` a trusted proxy sent when it is one sane value
/// ([`is_sane`]); otherwise a new one ([`generate`]). A repeated header is not one value.
pub fn choose(headers: &HeaderMap, from_trusted_proxy: bool) -> HeaderValue {
    if from_trusted_proxy {
        let mut values = headers.get_all(X_REQUEST_ID).iter();
        if let (Some(value), None) = (values.next(), values.next()) {
            if is_sane(value.as_bytes()) {
                // A reference-counted copy of the request's bytes.
                return value.clone();
            }
        }
    }
    generate()
}

/// 1 to [`MAX_LEN`] characters of `A-Z a-z 0-9 . _ : @ / + = -`: what UUIDs, hex and base64
/// ids, and the usual `host/counter` forms are made of, and nothing a log or header could
/// misread (no spaces, quotes, commas, semicolons or control characters).
pub fn is_sane(value: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&value.len())
        && value.iter().all(|&b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'.' | b'_' | b':' | b'@' | b'/' | b'+' | b'=' | b'-')
        })
}

thread_local! {
    /// One generator per thread (a pingora worker runs on one): seeded once from the
    /// operating system, then no system call per id.
    static IDS: RefCell<StdRng> = RefCell::new(StdRng::from_entropy());
}

/// A new id: 128 random bits as 32 lower-case hex digits. Ids need to be unique, not secret:
/// a per-thread generator (rand's `StdRng`, ChaCha12, output buffered) seeded once from the
/// operating system's randomness is enough; n ids of 128 random bits collide with odds of
/// about n²/2¹²⁹.
pub fn generate() -> HeaderValue {
    let bits = IDS.with(|rng| {
        let mut rng = rng.borrow_mut();
        u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())
    });
    let mut hex = [0u8; 32];
    for (i, digit) in hex.iter_mut().enumerate() {
        let nibble = (bits >> (124 - 4 * i)) as u8 & 0xf;
        *digit = b"0123456789abcdef"[usize::from(nibble)];
    }
    // Hex digits are always a valid header value.
    HeaderValue::from_bytes(&hex).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(X_REQUEST_ID, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn sane_ids_are_short_plain_tokens() {
        let long = "a".repeat(MAX_LEN);
        let too_long = "a".repeat(MAX_LEN + 1);
        let table: &[(&str, bool)] = &[
            ("f47ac10b-58cc-4372-a567-0e02b2c3d479", true),
            ("0123456789abcdef0123456789abcdef", true),
            ("lb-1.example:8080/42", true),
            ("user@host", true),
            ("YWJj+ZGVm/Zw==", true),
            ("a_b.c", true),
            (&long, true),
            ("", false),
            (&too_long, false),
            ("two words", false),
            ("quote\"d", false),
            ("a,b", false),
            ("a;b", false),
            ("tab\there", false),
            ("<script>", false),
            ("ünïcode", false),
            ("percent%20", false),
        ];
        for (value, sane) in table {
            assert_eq!(is_sane(value.as_bytes()), *sane, "{value:?}");
        }
    }

    #[test]
    fn a_trusted_proxys_sane_id_is_kept_and_anything_else_replaced() {
        let kept = choose(&headers(&["trace-1"]), true);
        assert_eq!(kept, "trace-1");
        for (values, trusted) in [
            (&["trace-1"][..], false),
            (&["bad id"][..], true),
            (&["a", "b"][..], true),
            (&[][..], true),
            (&[][..], false),
        ] {
            let id = choose(&headers(values), trusted);
            assert_eq!(id.len(), 32, "{values:?} trusted={trusted}: {id:?}");
            assert!(id.as_bytes().iter().all(u8::is_ascii_hexdigit), "{id:?}");
        }
    }

    #[test]
    fn generated_ids_are_32_hex_digits_and_differ() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let id = generate();
            assert_eq!(id.len(), 32);
            assert!(is_sane(id.as_bytes()));
            assert!(id
                .as_bytes()
                .iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)));
            assert!(seen.insert(id), "a generated id repeated");
        }
    }
}
