//! Open redirects: every string of the attack corpus (`tests/fixtures/redirect_attacks.txt`,
//! written by `tests/fixtures/gen_redirects.py`) through the one redirect checker, `ReturnTo`,
//! and a sample through the running proxy (logout `rd`, signed-out `state`, question page `rd`,
//! and the login return path of a raw request target, completed at the real OP).

mod support;

use std::path::Path;

use profilegate::redirect::ReturnTo;
use reqwest::StatusCode;
use support::*;
use url::Url;

const ORIGIN: &str = "https://app.example.com";
/// A second origin, with an address and a port, for the numeric-host tricks.
const LOOPBACK_ORIGIN: &str = "http://127.0.0.1:8080";

/// Decodes one corpus line (see gen_redirects.py: `esc:` lines use `\\` and `\xHH`).
fn decode(line: &str) -> String {
    let Some(escaped) = line.strip_prefix("esc:") else {
        return line.to_owned();
    };
    let mut out = String::new();
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                let code = u32::from_str_radix(&hex, 16).expect("\\xHH escape");
                out.push(char::from_u32(code).expect("a character"));
            }
            other => panic!("bad escape {other:?} in {line:?}"),
        }
    }
    out
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(repo().join("tests/fixtures").join(name)).expect("fixture file")
}

fn entries(name: &str) -> Vec<String> {
    let text = fixture(name);
    let body = text
        .strip_suffix('\n')
        .expect("the file ends with a newline");
    // Split on LF only: `str::lines` would also eat a CR that ends an entry.
    body.split('\n').map(decode).collect()
}

fn attacks() -> Vec<String> {
    entries("redirect_attacks.txt")
}

/// Panics unless `location` (and `path` joined on `origin` as a browser would resolve a
/// relative `Location`) names exactly `origin`, with a header-safe value.
fn assert_stays_on(origin: &str, raw: &str, path: &str, location: &str) {
    let base = Url::parse(origin).expect("origin");
    let abs = Url::parse(location).unwrap_or_else(|e| panic!("{raw:?}: {location:?}: {e}"));
    assert_eq!(
        abs.origin(),
        base.origin(),
        "{raw:?} left the origin: {location}"
    );
    let joined = base
        .join(path)
        .unwrap_or_else(|e| panic!("{raw:?}: {path:?}: {e}"));
    assert_eq!(
        joined.origin(),
        base.origin(),
        "{raw:?}: path {path:?} resolves off origin to {joined}"
    );
    let rejoined = base.join(location).expect("absolute joins");
    assert_eq!(rejoined.origin(), base.origin(), "{raw:?}: {location}");
    // Where the browser lands, fed back as a target (apps redirect to their own request path,
    // e.g. to add a trailing slash): `/.//evil.com` lands on `//evil.com`, which is off origin.
    let landed = &abs[url::Position::BeforePath..];
    let again = base
        .join(landed)
        .unwrap_or_else(|e| panic!("{raw:?}: {landed:?}: {e}"));
    assert_eq!(
        again.origin(),
        base.origin(),
        "{raw:?}: the browser lands on {abs}, whose path {landed:?} resolves off origin"
    );
    // Nor may that path turn scheme-relative once an app percent-decodes it (up to thrice).
    let mut decoded = landed.to_owned();
    for _ in 0..3 {
        decoded = percent_encoding::percent_decode_str(&decoded)
            .decode_utf8_lossy()
            .into_owned();
        assert!(
            !decoded.starts_with("//") && !decoded.starts_with("/\\"),
            "{raw:?}: the browser lands on {abs}, whose path decodes to {decoded:?}"
        );
    }
    assert!(
        location.bytes().all(|b| (0x21..0x7f).contains(&b)),
        "{raw:?}: Location must be visible ASCII: {location:?}"
    );
}

/// Asserts the checker's verdict on `raw`; returns true when it was accepted.
fn check_attack(origin: &str, raw: &str) -> bool {
    let Some(rt) = ReturnTo::parse(raw, origin) else {
        return false;
    };
    let path = rt.path();
    assert!(
        path.starts_with('/') && !path.starts_with("//") && !path.starts_with("/\\"),
        "{raw:?} kept as {path:?}"
    );
    assert_stays_on(origin, raw, path, &rt.absolute(origin));
    // Targets travel (login cookie, `rd` of the question page, logout `state`) and are
    // checked again on the way back: the checker must accept its own output unchanged.
    assert_eq!(ReturnTo::parse(path, origin).as_ref(), Some(&rt), "{raw:?}");
    assert_eq!(
        ReturnTo::parse(&rt.absolute(origin), origin).as_ref(),
        Some(&rt),
        "{raw:?}"
    );
    assert_eq!(ReturnTo::from_path(path).as_ref(), Some(&rt), "{raw:?}");
    true
}

#[test]
fn the_attack_corpus_has_at_least_a_thousand_entries() {
    let all = attacks();
    assert!(all.len() >= 1000, "only {} attack strings", all.len());
    let unique: std::collections::HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "duplicate attack strings");
}

#[test]
fn committed_fixtures_equal_the_generator_output() {
    let script = repo().join("tests/fixtures/gen_redirects.py");
    for (which, file) in [
        ("attacks", "redirect_attacks.txt"),
        ("legit", "redirect_legit.txt"),
    ] {
        let out = match child::output_within(
            std::process::Command::new("python3")
                .arg(&script)
                .args(["--print", which]),
            "python3 tests/fixtures/gen_redirects.py",
            child::COMMAND_LIMIT,
        ) {
            Ok(out) => out,
            Err(e) => {
                eprintln!("python3 not available ({e}): generator comparison skipped");
                return;
            }
        };
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stdout == fixture(file).as_bytes(),
            "{file} differs from the generator's output: run python3 {}",
            Path::new("tests/fixtures/gen_redirects.py").display()
        );
    }
}

#[test]
fn every_attack_is_rejected_or_kept_on_our_origin() {
    for origin in [ORIGIN, LOOPBACK_ORIGIN] {
        let own_host = origin.split("://").nth(1).expect("host");
        let mut rejected = 0;
        let mut kept = 0;
        for raw in attacks() {
            // The corpus names app.example.com; for the second origin, aim the tricks at it.
            let raw = raw
                .replace(ORIGIN, origin)
                .replace("app.example.com", own_host);
            if check_attack(origin, &raw) {
                kept += 1;
            } else {
                rejected += 1;
            }
        }
        eprintln!("{origin}: {rejected} rejected, {kept} kept as same-origin paths");
        assert!(
            rejected > kept,
            "most of the corpus must be refused outright"
        );
    }
}

#[test]
fn off_origin_hosts_never_survive() {
    // Stronger than "stays on origin" for the scheme-relative families: these must be refused.
    for raw in attacks() {
        let lower = raw.to_ascii_lowercase();
        let scheme_relative = ["//", "/\\", "\\\\", "\\/", "/%2f", "/%5c", "%2f", "%5c"]
            .iter()
            .any(|p| lower.starts_with(p));
        let foreign_scheme = lower.starts_with("javascript:")
            || lower.starts_with("data:")
            || lower.starts_with("vbscript:");
        if scheme_relative || foreign_scheme {
            assert_eq!(ReturnTo::parse(&raw, ORIGIN), None, "{raw:?}");
        }
    }
}

#[test]
fn legitimate_targets_pass_unchanged() {
    let all = entries("redirect_legit.txt");
    assert!(all.len() >= 20);
    for raw in all {
        let rt = ReturnTo::parse(&raw, ORIGIN).unwrap_or_else(|| panic!("{raw:?} was refused"));
        let expected = match raw.strip_prefix(ORIGIN) {
            Some("") => format!("{ORIGIN}/"),
            Some(_) => raw.clone(),
            None => format!("{ORIGIN}{raw}"),
        };
        assert_eq!(rt.absolute(ORIGIN), expected, "{raw:?}");
        if raw.starts_with('/') {
            assert_eq!(rt.path(), raw);
        }
        assert_stays_on(ORIGIN, &raw, rt.path(), &rt.absolute(ORIGIN));
    }
}

/// The corpus aimed at the running proxy's origin.
fn attacks_for(proxy: &Proxy) -> Vec<String> {
    let own_host = proxy.origin.trim_start_matches("http://").to_owned();
    attacks()
        .into_iter()
        .map(|raw| {
            raw.replace(ORIGIN, &proxy.origin)
                .replace("app.example.com", &own_host)
        })
        .collect()
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Asserts a proxy answer either is not a redirect or redirects onto `origin`.
fn assert_answer_on_origin(origin: &str, raw: &str, resp: &reqwest::Response) {
    if let Some(loc) = resp.headers().get("location") {
        let loc = loc.to_str().expect("ASCII Location");
        let path = Url::parse(loc)
            .map(|u| u[url::Position::BeforePath..].to_owned())
            .unwrap_or_else(|e| panic!("{raw:?}: Location {loc:?}: {e}"));
        assert_stays_on(origin, raw, &path, loc);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_corpus_through_logout_signed_out_and_the_question_page_stays_on_origin() {
    let env = TestEnv::start().await;
    let origin = env.proxy.origin.clone();
    let anonymous = Browser::new();
    let signed_in = env.browser();
    signed_in.login(&env.proxy.url("/"), "alice").await;
    let corpus = attacks_for(&env.proxy);
    let mut redirected = [0usize; 3];
    for raw in &corpus {
        let e = enc(raw);
        // Logout without a session: the target goes straight into Location.
        let logout = anonymous
            .navigate(&env.proxy.url(&format!("/.profilegate/logout?rd={e}")))
            .await;
        assert_eq!(logout.status(), StatusCode::FOUND, "{raw:?}");
        assert_answer_on_origin(&origin, raw, &logout);
        if location(&logout) != env.proxy.url("/.profilegate/signed-out") {
            redirected[0] += 1;
        }
        // Back from the OP's logout: `state` names where to go.
        let signed_out = anonymous
            .navigate(
                &env.proxy
                    .url(&format!("/.profilegate/signed-out?state={e}")),
            )
            .await;
        assert_answer_on_origin(&origin, raw, &signed_out);
        if signed_out.status() == StatusCode::FOUND {
            redirected[1] += 1;
        } else {
            assert_eq!(signed_out.status(), StatusCode::OK, "{raw:?}");
        }
        // The question page with nothing pending sends the user on to `rd`.
        let profile = signed_in
            .navigate(&env.proxy.url(&format!("/.profilegate/profile?rd={e}")))
            .await;
        assert_eq!(profile.status(), StatusCode::SEE_OTHER, "{raw:?}");
        assert_answer_on_origin(&origin, raw, &profile);
        if location(&profile) != env.proxy.url("/") {
            redirected[2] += 1;
        }
    }
    eprintln!(
        "{} targets: same-origin redirects (logout, signed-out, profile) = {redirected:?}",
        corpus.len()
    );
    assert_eq!(env.upstream.count(), 0, "no target reached the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_in_logout_passes_only_same_origin_targets_to_the_op() {
    let env = TestEnv::start().await;
    // Every 7th target: each logout revokes the session, so each one signs in anew and sends
    // its cookie by hand.
    for raw in attacks_for(&env.proxy).iter().step_by(7) {
        let browser = env.browser();
        browser.login(&env.proxy.url("/"), "alice").await;
        let session = browser.cookies_for(&env.proxy.url("/"));
        let resp = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
            .get(
                env.proxy
                    .url(&format!("/.profilegate/logout?rd={}", enc(raw))),
            )
            .header("accept", "text/html")
            .header("cookie", &session)
            .send()
            .await
            .expect("logout");
        assert_eq!(resp.status(), StatusCode::FOUND);
        let loc = location(&resp);
        assert!(loc.starts_with(&env.op.issuer), "{raw:?}: {loc}");
        let q = query(&loc);
        assert_eq!(
            q["post_logout_redirect_uri"],
            env.proxy.url("/.profilegate/signed-out")
        );
        if let Some(state) = q.get("state") {
            // What comes back as `state` must again be a checked, same-origin path.
            let rt = ReturnTo::parse(state, &env.proxy.origin)
                .unwrap_or_else(|| panic!("{raw:?}: state {state:?} passed on unchecked"));
            assert_stays_on(
                &env.proxy.origin,
                raw,
                rt.path(),
                &rt.absolute(&env.proxy.origin),
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_started_at_a_tricky_request_target_returns_on_origin() {
    let env = TestEnv::start().await;
    let port = env.proxy.port;
    let targets = [
        "//evil.com/x",
        "///evil.com",
        "////evil.com/",
        "/\\evil.com",
        "/%2f%2fevil.com",
        "/%2F/evil.com",
        "/%5cevil.com",
        "/%09/evil.com",
        "/.//evil.com",
        "/..//evil.com",
        "/./\\evil.com",
        "/x/../..//evil.com",
        "http://evil.com/x",
        "https://evil.com//x",
        "/x?next=//evil.com",
        "/@evil.com",
    ];
    let mut completed = 0;
    for target in targets {
        let first = raw::request(
            port,
            "GET",
            target,
            &[("Accept".into(), "text/html".into())],
        )
        .await;
        if first.status != 302 {
            // Refused by the HTTP parser or the proxy: no login, no redirect.
            assert!(
                (400..500).contains(&first.status),
                "{target}: {}",
                first.status
            );
            assert!(first.header("location").is_none(), "{target}");
            continue;
        }
        let op_url = first.header("location").expect("Location").to_owned();
        assert!(op_url.starts_with(&env.op.issuer), "{target}: {op_url}");
        let browser = Browser::new();
        let proxy_url: Url = env.proxy.url("/").parse().expect("url");
        for c in first.header_values("set-cookie") {
            browser.jar.add_cookie_str(c, &proxy_url);
        }
        let callback = browser.sign_in_from(op_url, "alice").await;
        let done = browser.navigate(&callback).await;
        assert_eq!(done.status(), StatusCode::FOUND, "{target}");
        let loc = location(&done);
        let path = Url::parse(&loc).expect("Location")[url::Position::BeforePath..].to_owned();
        assert_stays_on(&env.proxy.origin, target, &path, &loc);
        completed += 1;
    }
    eprintln!(
        "{completed} of {} raw targets led to a completed login, the rest were refused",
        targets.len()
    );
    assert!(
        completed >= targets.len() / 2,
        "only {completed} logins ran"
    );
}
