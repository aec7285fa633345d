//! The route-bypass corpus and the readings of a path the invariants are checked against:
//! generated request targets that reach for a protected path from a public one (or the other
//! way), and what a server behind the gate could make of a path it receives.

use std::collections::BTreeSet;

/// The paths the gate must protect; the corpus reaches for each of them.
pub const PROTECTED: [&str; 3] = ["/admin", "/admin/users", "/app/secret"];

/// Ways to write the step from one segment up to its parent and on to the next one.
pub const SEPARATORS: [&str; 9] = [
    "/", "//", "%2F", "%2f", "%252F", "\\", "%5C", "%5c", "%255C",
];
pub const DOT_DOTS: [&str; 8] = [
    "..",
    "%2e%2e",
    "%2E%2E",
    ".%2e",
    "%2e.",
    "..;",
    "%252e%252e",
    "..;x=1",
];
/// Where a climb starts: the public prefixes as configured and as a lax server could read them.
pub const STARTS: [&str; 7] = [
    "/healthz",
    "/static",
    "/static/app.css",
    "/HEALTHZ",
    "/Static",
    "/healthz;",
    "/healthz;x=1",
];
/// What may follow a path: nothing, a query or fragment (bare, escaped, naming a public path).
pub const SUFFIXES: [&str; 12] = [
    "",
    "?",
    "#",
    "%3F",
    "%23",
    "?next=/healthz",
    "?/healthz",
    "#/healthz",
    "%3F/healthz",
    "%23/healthz",
    "?/static/app.css",
    "%3f/../healthz",
];

/// Spellings of one protected path that a lax server could take for it.
pub fn spellings(base: &str) -> Vec<String> {
    let rest = &base[1..];
    let mut out = vec![
        base.to_owned(),
        base.to_uppercase(),
        format!("/{}{}", rest[..1].to_uppercase(), &rest[1..]),
        format!("/%{:02X}{}", rest.as_bytes()[0], &rest[1..]),
        format!("/%{:02x}{}", rest.as_bytes()[0], &rest[1..]),
        format!("/%25{:02X}{}", rest.as_bytes()[0], &rest[1..]),
        format!(
            "/{}%{:02X}",
            &rest[..rest.len() - 1],
            rest.as_bytes()[rest.len() - 1]
        ),
        format!("/{base}"),
        format!("/.{base}"),
        format!("/%2e{base}"),
        format!("/x/..{base}"),
        format!("/x/%2e%2e{base}"),
        format!("{base}/"),
        format!("{base}/."),
        format!("{base};x"),
        format!("{base};x=/healthz"),
        format!("{base}%3Bx"),
        format!("{base}%2F"),
        format!("{base}.json"),
        format!("{base}istrator"),
        base.replace('/', "\\").replacen('\\', "/", 1),
        base.replace('/', "%5C").replacen("%5C", "/", 1),
        base.replace('/', "%2F").replacen("%2F", "/", 1),
    ];
    out.dedup();
    out
}

/// The request targets, without duplicates, in a fixed order.
pub fn corpus() -> Vec<String> {
    let mut targets = BTreeSet::new();
    // Climb from a public prefix to a protected path.
    for start in STARTS {
        for sep in SEPARATORS {
            for up in DOT_DOTS {
                for base in PROTECTED {
                    targets.insert(format!("{start}{sep}{up}{sep}{}", &base[1..]));
                }
            }
        }
    }
    // From a protected path back out to a public one: the rule of the path as written must
    // still apply where a server would not resolve the climb.
    for base in PROTECTED {
        for sep in SEPARATORS {
            for up in DOT_DOTS {
                for public in ["healthz", "static/app.css"] {
                    targets.insert(format!("{base}{sep}{up}{sep}{public}"));
                }
            }
        }
    }
    // The protected path spelled another way, followed by something that names a public one.
    for base in PROTECTED {
        for spelling in spellings(base) {
            for suffix in SUFFIXES {
                targets.insert(format!("{spelling}{suffix}"));
            }
        }
    }
    // A public path whose "query" or "fragment" climbs out of it.
    for public in ["/healthz", "/static/app.css"] {
        for cut in ["?", "#", "%3F", "%3f", "%23", ";", "%3B"] {
            for base in PROTECTED {
                targets.insert(format!("{public}{cut}/..{base}"));
                targets.insert(format!("{public}{cut}/%2e%2e{base}"));
            }
        }
        // And the public paths themselves, which must be served.
        for suffix in SUFFIXES {
            targets.insert(format!("{public}{suffix}"));
        }
    }
    targets.into_iter().collect()
}

/// `%XX` decoded once; bytes that are not UTF-8 are replaced.
pub fn decode_once(path: &str) -> String {
    percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .into_owned()
}

/// `\` read as `/`, `;` parameters dropped, dot segments resolved, empty segments merged,
/// lower-cased: what a lax server makes of an (already decoded) path.
pub fn lax(path: &str) -> String {
    let slashed = path.replace('\\', "/");
    let mut segments: Vec<&str> = Vec::new();
    for segment in slashed.split('/') {
        match segment.split(';').next().unwrap_or("") {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    format!("/{}", segments.join("/")).to_lowercase()
}

/// Every reading of `path` a server behind the gate could make: decoded 0, 1, 2, ... times
/// (until nothing changes), each read laxly. The last one is the contract's lenient reading.
pub fn readings(path: &str) -> Vec<String> {
    let mut out = vec![lax(path)];
    let mut current = path.to_owned();
    for _ in 0..8 {
        let next = decode_once(&current);
        if next == current {
            break;
        }
        out.push(lax(&next));
        current = next;
    }
    out
}

/// The contract's lenient reading: every escape decoded repeatedly, then read laxly.
pub fn lenient(path: &str) -> String {
    readings(path).pop().unwrap_or_default()
}

pub fn is_protected(reading: &str) -> bool {
    reading.starts_with("/admin") || reading.starts_with("/app/")
}

/// The contract's strict reading of a public path: exact case, segment-boundary prefix, and
/// nothing in it that reads two ways.
pub fn strictly_public(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    let ambiguous = path.contains([';', '\\', '#'])
        || ["%2f", "%5c", "%25", "%3b", "%3f", "%23"]
            .iter()
            .any(|escape| lower.contains(escape));
    let under = path == "/healthz" || path.starts_with("/healthz/") || path.starts_with("/static/");
    under && !ambiguous
}

/// The path of a request target (the query cut off).
pub fn path_of(target: &str) -> &str {
    target.split(['?', '#']).next().unwrap_or(target)
}
