//! Paths as the route rules read them. The upstream receives [`normalize`]d paths; a rule that
//! widens access (`public`, `questions = "skip"`) matches only the [`strict`] reading, one that
//! narrows it (`allow` and the simple keys) matches any of the [`lenient_readings`] — whatever any
//! server behind us could make of the path. So no spelling of a path (encoded slashes, dot
//! segments, `;` parameters, case, double slashes, `%2e`) can make a protected path public.

use std::borrow::Cow;

/// The path the upstream receives: escapes of unreserved characters decoded (RFC 3986
/// §6.2.2.2), other escapes' hex digits upper-cased, a `%` that starts no escape written `%25`,
/// dot segments removed (§5.2.4) and empty segments merged. Borrowed when the path is already normal (the common case).
pub fn normalize(path: &str) -> Cow<'_, str> {
    if is_normal(path) {
        return Cow::Borrowed(path);
    }
    let mut decoded = String::with_capacity(path.len());
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match escape_at(bytes, i) {
            Some(byte) if is_unreserved(byte) => {
                decoded.push(byte as char);
                i += 3;
            }
            Some(byte) => {
                decoded.push('%');
                decoded.push_str(&format!("{byte:02X}"));
                i += 3;
            }
            None if bytes[i] == b'%' => {
                // A `%` that starts no escape is a literal `%`, as servers read it: written
                // `%25`, so no decoding here can make it start one (`%%31` is not `%1`).
                decoded.push_str("%25");
                i += 1;
            }
            None => {
                // Copy up to the next `%`: the path is valid UTF-8, and '%' is ASCII.
                let next = path[i + 1..].find('%').map_or(path.len(), |n| i + 1 + n);
                decoded.push_str(&path[i..next]);
                i = next;
            }
        }
    }
    Cow::Owned(remove_dot_segments(&decoded))
}

/// True when [`normalize`] would return `path` unchanged.
fn is_normal(path: &str) -> bool {
    let bytes = path.as_bytes();
    if !bytes.starts_with(b"/") {
        return false;
    }
    let mut segment_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'%' => match escape_at(bytes, i) {
                Some(byte) if is_unreserved(byte) => return false,
                Some(_) if bytes[i + 1..i + 3].iter().any(u8::is_ascii_lowercase) => return false,
                Some(_) => {}
                None => return false,
            },
            b'/' if i > 0 => {
                let segment = &bytes[segment_start + 1..i];
                if segment.is_empty() || segment == b"." || segment == b".." {
                    return false;
                }
                segment_start = i;
            }
            _ => {}
        }
    }
    let last = &bytes[segment_start + 1..];
    last != b"." && last != b".."
}

/// The normalized path when nothing in it could be read two ways, else `None`: no `;`
/// parameters, no backslash, and no escape that decodes to `/`, `\`, `%`, `;`, `?`, `#` or
/// a control byte. Widening rules match only this reading, case-sensitively.
pub fn strict(normalized: &str) -> Option<&str> {
    let bytes = normalized.as_bytes();
    if bytes.iter().any(|&b| b == b';' || b == b'\\') {
        return None;
    }
    let ambiguous = (0..bytes.len()).any(|i| {
        escape_at(bytes, i).is_some_and(|byte| {
            matches!(byte, b'/' | b'\\' | b'%' | b';' | b'?' | b'#' | b'.') || byte < 0x20
        })
    });
    (!ambiguous).then_some(normalized)
}

/// How many times a server behind us might decode a path (double encoding and more).
const DECODING_DEPTHS: usize = 4;

/// Every way a server behind us could read the path: decoded 0 to [`DECODING_DEPTHS`] times,
/// each with `\` read as `/` and `;` parameters dropped from every segment, and each both with
/// dot segments resolved and as it stands. Narrowing rules match if any reading matches,
/// ignoring ASCII case. A path with no `%`, `\` or `;` has one reading: itself.
pub fn lenient_readings(normalized: &str) -> Vec<Cow<'_, str>> {
    let bytes = normalized.as_bytes();
    if !bytes.iter().any(|&b| matches!(b, b'%' | b'\\' | b';')) {
        return vec![Cow::Borrowed(normalized)];
    }
    let mut readings: Vec<Cow<'_, str>> = vec![Cow::Borrowed(normalized)];
    let mut current = normalized.to_owned();
    for depth in 0..=DECODING_DEPTHS {
        if depth > 0 {
            let next = decode_all(&current);
            if next == current {
                break;
            }
            current = next;
        }
        let slashed = current.replace('\\', "/");
        let without_params: Vec<&str> = slashed
            .split('/')
            .map(|segment| segment.split(';').next().unwrap_or(""))
            .collect();
        let plain = without_params.join("/");
        for reading in [remove_dot_segments(&plain), plain] {
            if !readings.iter().any(|r| *r == reading) {
                readings.push(Cow::Owned(reading));
            }
        }
    }
    readings
}

/// Every `%XX` decoded; bytes that do not form UTF-8 are replaced (they match no rule).
fn decode_all(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match escape_at(bytes, i) {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The byte `%XX` at `i` stands for, if there is one.
fn escape_at(bytes: &[u8], i: usize) -> Option<u8> {
    match (bytes.get(i), bytes.get(i + 1), bytes.get(i + 2)) {
        (Some(b'%'), Some(&h), Some(&l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
            Some(hex(h) << 4 | hex(l))
        }
        _ => None,
    }
}

fn hex(d: u8) -> u8 {
    match d {
        b'0'..=b'9' => d - b'0',
        b'a'..=b'f' => d - b'a' + 10,
        _ => d - b'A' + 10,
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// `.` and `..` segments resolved (never above the root), empty segments merged; always
/// starts with `/`, and keeps a trailing `/` (also the one a final `.` or `..` leaves).
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let mut trailing_slash = path.ends_with('/');
    for segment in path.split('/') {
        match segment {
            "" => {}
            "." => trailing_slash = true,
            ".." => {
                out.pop();
                trailing_slash = true;
            }
            s => {
                out.push(s);
                trailing_slash = false;
            }
        }
    }
    trailing_slash |= path.ends_with('/');
    let mut normalized = String::with_capacity(path.len());
    for segment in &out {
        normalized.push('/');
        normalized.push_str(segment);
    }
    if trailing_slash || out.is_empty() {
        normalized.push('/');
    }
    normalized
}

/// True when `path` is `prefix` or below it: equal, or `prefix` followed by `/` (a prefix that
/// ends with `/` matches what starts with it). Case-sensitive.
pub fn under_segment(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/'),
        None => false,
    }
}

/// True when `path` starts with `prefix`, ignoring ASCII case (no segment boundary: a
/// narrowing rule for `/admin` also covers `/admin.json` and `/administrator`).
pub fn starts_with_ignore_case(path: &str, prefix: &str) -> bool {
    path.len() >= prefix.len()
        && path.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_table() {
        let table = [
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("/a//b", "/a/b"),
            ("//a", "/a"),
            ("/a/./b", "/a/b"),
            ("/a/../b", "/b"),
            ("/../../b", "/b"),
            ("/a/..", "/"),
            ("/a/b/..", "/a/"),
            ("/a/.", "/a/"),
            ("/a/", "/a/"),
            ("/%2e%2e/admin", "/admin"),
            ("/x/%2E%2E/admin", "/admin"),
            ("/%61dmin", "/admin"),
            ("/a%2fb", "/a%2Fb"),
            ("/a%2Fb", "/a%2Fb"),
            ("/a%20b", "/a%20b"),
            ("/healthz/..;/admin", "/healthz/..;/admin"),
            ("/100%", "/100%25"),
            ("/V/=%%%3%31", "/V/=%25%25%2531"),
            ("/%%61", "/%25a"),
        ];
        for (raw, expected) in table {
            assert_eq!(normalize(raw), expected, "{raw}");
            assert_eq!(
                normalize(expected),
                expected,
                "normal form of {raw} is stable"
            );
        }
        assert!(matches!(normalize("/a/b"), Cow::Borrowed(_)));
    }

    #[test]
    fn strict_refuses_what_reads_two_ways() {
        for ambiguous in [
            "/healthz;x",
            "/healthz%2F..%2Fadmin",
            "/healthz%5Cadmin",
            "/a\\b",
            "/healthz%252e",
            "/healthz%3Bx",
            "/healthz%3F",
            "/healthz%23",
        ] {
            assert_eq!(strict(ambiguous), None, "{ambiguous}");
        }
        assert_eq!(strict("/static/a%20b.css"), Some("/static/a%20b.css"));
    }

    #[test]
    fn lenient_readings_include_every_decoding_depth() {
        let table = [
            ("/admin", "/admin"),
            ("/healthz/..;/admin", "/admin"),
            ("/healthz;x=1/../admin", "/admin"),
            ("/healthz%2F..%2Fadmin", "/admin"),
            ("/healthz%252F..%252Fadmin", "/admin"),
            ("/static\\..\\admin", "/admin"),
            ("/admin;jsessionid=1", "/admin"),
            ("/x/%252e%252e/admin", "/admin"),
            // Decoded once, this is still under /admin; decoded twice it climbs out.
            ("/admin/%252e%252e/healthz", "/admin/%2e%2e/healthz"),
            ("/admin/%252e%252e/healthz", "/healthz"),
        ];
        for (normalized, expected) in table {
            let readings = lenient_readings(normalized);
            assert!(
                readings.iter().any(|r| r == expected),
                "{normalized}: {expected} not in {readings:?}"
            );
        }
        assert_eq!(lenient_readings("/plain/path").len(), 1);
    }

    #[test]
    fn prefix_matching() {
        assert!(under_segment("/healthz", "/healthz"));
        assert!(under_segment("/healthz/deep", "/healthz"));
        assert!(!under_segment("/healthzz", "/healthz"));
        assert!(under_segment("/static/x.css", "/static/"));
        assert!(!under_segment("/static", "/static/"));
        assert!(!under_segment("/HEALTHZ", "/healthz"));
        assert!(starts_with_ignore_case("/ADMIN/x", "/admin"));
        assert!(starts_with_ignore_case("/administrator", "/admin"));
        assert!(!starts_with_ignore_case("/adm", "/admin"));
    }
}
