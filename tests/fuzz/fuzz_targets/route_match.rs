//! The route table over any path: normalizing is stable, a path is public only when it is
//! plainly under a public prefix, and whatever any server could read as `/admin` (decoded up to
//! five times, `\` as `/`, `;` parameters dropped, dot segments resolved or not, any case) is
//! never public, never skips questions and always gets the admin rule. The oracle below is
//! written independently of `src/policy/path.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode_str;
use profilegate::policy::{normalize, AccessRule, PathPattern, QuestionsMode, Route, RouteTable};

fn route(path: &str, public: bool, questions: QuestionsMode, groups: &[&str]) -> Route {
    Route {
        pattern: PathPattern::Prefix(path.into()),
        methods: Vec::new(),
        public,
        questions,
        access: AccessRule {
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..AccessRule::default()
        },
    }
}

/// `.` and `..` resolved, empty segments dropped (the oracle's own, simple version).
fn resolve(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

/// Every reading a server behind the proxy could make of `path` (decoded 0 to 4 times),
/// lower-cased.
fn readings(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = path.to_owned();
    for _ in 0..5 {
        let plain: Vec<&str> = current
            .split(['/', '\\'])
            .map(|s| s.split(';').next().unwrap_or(""))
            .collect();
        let plain = plain.join("/");
        out.push(resolve(&plain).to_ascii_lowercase());
        out.push(plain.to_ascii_lowercase());
        current = percent_decode_str(&current)
            .decode_utf8_lossy()
            .into_owned();
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    // A request target's path: visible ASCII, no query or fragment.
    if raw.len() > 256
        || !raw
            .bytes()
            .all(|b| (0x21..0x7f).contains(&b) && b != b'?' && b != b'#')
    {
        return;
    }
    let path = format!("/{raw}");
    let table = RouteTable::new(vec![
        route("/healthz", true, QuestionsMode::Ask, &[]),
        route("/static/", true, QuestionsMode::Ask, &[]),
        route("/admin", false, QuestionsMode::Ask, &["admins"]),
        route("/api/", false, QuestionsMode::Skip, &[]),
    ]);
    let normal = normalize(&path);
    assert_eq!(
        normalize(&normal),
        normal,
        "{path:?}: normalize is not stable"
    );
    let matched = table.matches("GET", &normal);
    let admin = readings(&normal).iter().any(|r| r.starts_with("/admin"));
    if admin {
        assert!(
            !matched.public,
            "{path:?} -> {normal:?} is public yet reads as /admin"
        );
        assert!(
            !matched.skip_questions,
            "{path:?} -> {normal:?} skips questions yet reads as /admin"
        );
        assert!(
            matched.rules & (1 << 2) != 0,
            "{path:?} -> {normal:?} escapes the /admin rule"
        );
    }
    if matched.public {
        let plain = normal.as_ref();
        assert!(
            plain == "/healthz" || plain.starts_with("/healthz/") || plain.starts_with("/static/"),
            "{path:?} -> {normal:?} is public but not plainly under a public prefix"
        );
        let lower = plain.to_ascii_lowercase();
        for ambiguous in [";", "\\", "%2f", "%5c", "%25", "%3b"] {
            assert!(
                !lower.contains(ambiguous),
                "{path:?} -> {normal:?} is public with {ambiguous}"
            );
        }
    }
});
