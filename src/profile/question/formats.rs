//! The shapes a text-like answer may need: email address, web address, phone number, decimal
//! number, and the characters no answer may hold.

/// Characters refused in answers: control characters (a textarea keeps line feeds and tabs),
/// the Unicode line and paragraph separators, and the bidirectional overrides and isolates
/// that make text display in an order other than the one stored.
pub(super) fn is_forbidden_char(c: char, multiline: bool) -> bool {
    match c {
        '\n' | '\t' => !multiline,
        '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => true,
        _ => c.is_control(),
    }
}

/// A pragmatic email check: one `@`, a local part of 1 to 64 bytes, a domain with a dot and no
/// empty label, no whitespace or characters that need quoting, at most 254 bytes in all.
/// Non-ASCII is allowed (internationalised addresses).
pub(super) fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    value.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|label| !label.is_empty())
        && !value
            .chars()
            .any(|c| c.is_whitespace() || "\"(),:;<>[\\]".contains(c))
}

/// An absolute `http://` or `https://` URL with a host, without whitespace or credentials.
pub(super) fn is_web_url(value: &str) -> bool {
    let lower = value.get(..8).unwrap_or(value).to_ascii_lowercase();
    // The url crate would also read `http:example.com`; a web address spells its slashes.
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return false;
    }
    if value.chars().any(char::is_whitespace) {
        return false;
    }
    match url::Url::parse(value) {
        Ok(u) => {
            matches!(u.scheme(), "http" | "https")
                && u.host_str().is_some_and(|h| !h.is_empty())
                && u.username().is_empty()
                && u.password().is_none()
        }
        Err(_) => false,
    }
}

/// Digits, spaces and `+ - ( ) .`, a `+` only in front, and 4 to 20 digits.
pub(super) fn is_phone(value: &str) -> bool {
    let allowed = value
        .chars()
        .enumerate()
        .all(|(i, c)| c.is_ascii_digit() || " -().".contains(c) || (c == '+' && i == 0));
    let digits = value.chars().filter(char::is_ascii_digit).count();
    allowed && (4..=20).contains(&digits)
}

/// A finite decimal number as an HTML number input sends it: `-12`, `3.5`, `.5`, `1e3`.
/// Rust's own parser would also take `inf`, `NaN` and `infinity`.
pub(super) fn parse_decimal(value: &str) -> Option<f64> {
    let body = value.strip_prefix(['-', '+']).unwrap_or(value);
    let (mantissa, exponent) = match body.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (body, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok =
        digits(whole) && digits(fraction) && !(whole.is_empty() && fraction.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    if !(mantissa_ok && exponent_ok) {
        return None;
    }
    value.parse::<f64>().ok().filter(|n| n.is_finite())
}
