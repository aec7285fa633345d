//! Header spoofing: every case, `_` and `-` spelling of the identity headers and of the
//! forwarding headers, judged by `proxy::prepare::classify` and sent end to end from an untrusted
//! client through a signed-in session; and untrusted `X-Forwarded-Host`/`-Proto` (or `Host`)
//! never change a `Location` or a cookie attribute.

mod support;

use std::collections::HashSet;

use profilegate::proxy::prepare::{classify, HeaderKind};
use reqwest::StatusCode;
use serde_json::json;
use support::raw::{self, RawResponse};
use support::*;
use url::Url;

/// Headers only the proxy may set: always removed, whoever sends them.
const IDENTITY: &[&str] = &[
    "X-Forwarded-User",
    "X-Forwarded-Email",
    "X-Forwarded-Preferred-Username",
    "X-Forwarded-Groups",
    "X-Forwarded-Access-Token",
    "X-Auth-Request-User",
    "X-Auth-Request-Email",
    "X-Auth-Request-Preferred-Username",
    "X-Remote-User",
    "Remote-User",
    "X-Profile-Company",
    "X-Profile-Job-Title",
    "X-Profile-Jwt",
    "X-Profile-Anything-At-All",
];

/// Headers believed from trusted proxies only.
const FORWARDING: &[&str] = &[
    "X-Forwarded-For",
    "X-Forwarded-Proto",
    "X-Forwarded-Host",
    "X-Forwarded-Port",
    "X-Forwarded-Prefix",
    "Forwarded",
    "X-Real-IP",
];

/// Names with at most this many letters get every case mix; longer ones a fixed sample.
const ALL_CASES_UP_TO: usize = 10;
/// Case mixes per name beyond that.
const CASE_SAMPLE: usize = 256;

/// Deterministic case masks over `n` letters: every one when `n` is small, otherwise lower,
/// upper, both alternations, each single letter flipped either way, and pseudo-random fill.
fn case_masks(n: usize) -> Vec<u64> {
    let full = (1u64 << n) - 1;
    if n <= ALL_CASES_UP_TO {
        return (0..=full).collect();
    }
    let mut masks = vec![
        0,
        full,
        0x5555_5555_5555_5555 & full,
        0xAAAA_AAAA_AAAA_AAAA & full,
    ];
    for i in 0..n {
        masks.push(1 << i);
        masks.push(full ^ (1 << i));
    }
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ n as u64;
    let mut seen: HashSet<u64> = masks.iter().copied().collect();
    while masks.len() < CASE_SAMPLE {
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if seen.insert(x & full) {
            masks.push(x & full);
        }
    }
    masks
}

/// Every sampled case mix of `name` crossed with `_` or `-` at every separator.
fn spellings(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let letters: Vec<usize> = (0..chars.len())
        .filter(|&i| chars[i].is_ascii_alphabetic())
        .collect();
    let seps: Vec<usize> = (0..chars.len()).filter(|&i| chars[i] == '-').collect();
    let mut out = Vec::new();
    for case in case_masks(letters.len()) {
        for sep in 0..(1u64 << seps.len()) {
            let mut c: Vec<char> = chars.iter().map(|c| c.to_ascii_lowercase()).collect();
            for (bit, &i) in letters.iter().enumerate() {
                if case >> bit & 1 == 1 {
                    c[i] = c[i].to_ascii_uppercase();
                }
            }
            for (bit, &i) in seps.iter().enumerate() {
                if sep >> bit & 1 == 1 {
                    c[i] = '_';
                }
            }
            out.push(c.into_iter().collect());
        }
    }
    out
}

fn all_spellings() -> Vec<(String, &'static str)> {
    IDENTITY
        .iter()
        .chain(FORWARDING)
        .flat_map(|name| spellings(name).into_iter().map(move |s| (s, *name)))
        .collect()
}

#[test]
fn classify_knows_every_spelling_of_every_identity_and_forwarding_header() {
    let mut per_name = Vec::new();
    for name in IDENTITY {
        let all = spellings(name);
        assert!(all.len() >= 200, "{name}: only {} spellings", all.len());
        for s in &all {
            assert_eq!(classify(s), HeaderKind::Identity, "{s}");
        }
        per_name.push((name, all.len()));
    }
    for name in FORWARDING {
        let all = spellings(name);
        assert!(all.len() >= 200, "{name}: only {} spellings", all.len());
        for s in &all {
            let expected = if s.contains('_') {
                HeaderKind::ForwardingVariant
            } else {
                HeaderKind::Forwarding
            };
            assert_eq!(classify(s), expected, "{s}");
        }
        per_name.push((name, all.len()));
    }
    let total: usize = per_name.iter().map(|(_, n)| n).sum();
    eprintln!("{total} spellings classified: {per_name:?}");
    // Near misses stay ordinary headers.
    for other in [
        "Accept",
        "X-Forwarded",
        "X-Profile",
        "X-Profiles",
        "X-Profilex-Company",
        "X-Forwarded-Users",
        "Forwarded-For",
        "X-Real",
    ] {
        assert_eq!(classify(other), HeaderKind::Other, "{other}");
    }
}

/// The session cookie of a browser signed in as alice.
async fn signed_in(env: &TestEnv) -> String {
    let browser = env.browser();
    let done = browser.login(&env.proxy.url("/"), "alice").await;
    assert_eq!(done.status(), StatusCode::FOUND);
    browser.cookies_for(&env.proxy.url("/"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_spelling_of_a_spoofed_header_reaches_the_upstream() {
    let env = TestEnv::start().await;
    let cookie = signed_in(&env).await;
    let spoofs = all_spellings();
    // profilegate reads at most 100 header lines per request (proxy::MAX_HEADERS): 90 spoofs
    // per request, beside Accept, Cookie, Host and Connection.
    let mut sent = 0;
    for (batch, chunk) in spoofs.chunks(90).enumerate() {
        let mut headers: Vec<(String, String)> = vec![
            ("Accept".into(), "text/html".into()),
            ("Cookie".into(), cookie.clone()),
        ];
        for (i, (spelling, _)) in chunk.iter().enumerate() {
            headers.push((spelling.clone(), format!("spoofed{batch}x{i}")));
        }
        let before = env.upstream.count();
        let resp = raw::request(env.proxy.port, "GET", &format!("/batch/{batch}"), &headers).await;
        assert_eq!(resp.status, 200, "batch {batch}: {resp:?}");
        assert_eq!(env.upstream.count(), before + 1);
        let seen = env.upstream.last();
        assert_eq!(seen.target, format!("/batch/{batch}"));
        for (name, value) in &seen.headers {
            assert!(
                !value.contains("spoofed"),
                "batch {batch}: {name}: {value} reached the upstream"
            );
            let n = name.to_ascii_lowercase().replace('_', "-");
            assert!(
                ![
                    "forwarded",
                    "x-real-ip",
                    "x-forwarded-port",
                    "x-forwarded-prefix"
                ]
                .contains(&n.as_str()),
                "batch {batch}: {name} reached the upstream from an untrusted client"
            );
        }
        headers::assert_alice_forwarded(&seen, env.proxy.port);
        assert_eq!(seen.header_values("x-profile-jwt").len(), 1);
        sent += chunk.len();
    }
    eprintln!(
        "{sent} spoofed headers in {} requests; none reached the upstream",
        spoofs.len().div_ceil(200)
    );
}

/// Spoofed forwarding headers (and `Host`) that must not move a redirect or a cookie.
fn forwarding_spoofs(cookie: Option<&str>, host: bool) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = [
        ("Accept", "text/html"),
        ("X-Forwarded-Host", "evil.example"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Port", "443"),
        ("X-Forwarded-Prefix", "/evil"),
        ("X_Forwarded_Host", "evil.example"),
        ("x-forwarded-proto", "https"),
        ("Forwarded", "for=6.6.6.6;host=evil.example;proto=https"),
        ("X-Real-IP", "6.6.6.6"),
        ("X-Original-URL", "//evil.example/"),
        ("X-Rewrite-URL", "//evil.example/"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    if host {
        h.push(("Host".into(), "evil.example".into()));
    }
    if let Some(c) = cookie {
        h.push(("Cookie".into(), c.to_owned()));
    }
    h
}

/// Cookie attributes must come from `public_url` alone: plain http, so never `Secure`, and no
/// `Domain` ever.
fn assert_plain_cookies(what: &str, resp: &RawResponse) {
    for c in resp.header_values("set-cookie") {
        let lower = c.to_ascii_lowercase();
        assert!(!lower.contains("secure"), "{what}: {c}");
        assert!(!lower.contains("domain"), "{what}: {c}");
        assert!(
            lower.contains("path=/;") || lower.ends_with("path=/"),
            "{what}: {c}"
        );
        assert!(!c.contains("evil"), "{what}: {c}");
    }
}

fn assert_on(origin: &str, what: &str, location: &str) {
    let loc = Url::parse(location).unwrap_or_else(|e| panic!("{what}: {location:?}: {e}"));
    let base = Url::parse(origin).expect("origin");
    assert_eq!(loc.origin(), base.origin(), "{what}: {location}");
}

async fn forwarded_headers_never_move_redirects_or_cookies(env: TestEnv) {
    let origin = env.proxy.origin.clone();
    let port = env.proxy.port;
    let callback_uri = env.proxy.url("/.profilegate/callback");
    for host in [false, true] {
        // 1. Login redirect: redirect_uri from public_url; login cookie attributes unchanged.
        let start = raw::request(port, "GET", "/start", &forwarding_spoofs(None, host)).await;
        assert_eq!(start.status, 302, "{start:?}");
        let op_url = start.header("location").expect("Location").to_owned();
        assert!(op_url.starts_with(&env.op.issuer), "{op_url}");
        assert_eq!(query(&op_url)["redirect_uri"], callback_uri);
        assert_plain_cookies("login redirect", &start);

        // 2. Callback: Location on our origin, session cookie attributes unchanged.
        let browser = Browser::new();
        let proxy_url: Url = env.proxy.url("/").parse().expect("url");
        for c in start.header_values("set-cookie") {
            browser.jar.add_cookie_str(c, &proxy_url);
        }
        let callback = browser.sign_in_from(op_url, "alice").await;
        let target = &callback[origin.len()..];
        let login_cookie = browser.cookies_for(&callback);
        let done = raw::request(
            port,
            "GET",
            target,
            &forwarding_spoofs(Some(&login_cookie), host),
        )
        .await;
        assert_eq!(done.status, 302, "{done:?}");
        let loc = done.header("location").expect("Location");
        assert_eq!(loc, env.proxy.url("/start"));
        assert_plain_cookies("callback", &done);
        let session = done
            .header_values("set-cookie")
            .into_iter()
            .find(|c| c.starts_with("profilegate_session=") && !c.contains("Max-Age=0"))
            .expect("a session cookie")
            .split(';')
            .next()
            .expect("pair")
            .to_owned();

        // 3. The question page and signed-out redirects.
        let profile = raw::request(
            port,
            "GET",
            "/.profilegate/profile?rd=%2Fhome",
            &forwarding_spoofs(Some(&session), host),
        )
        .await;
        assert_eq!(profile.status, 303, "{profile:?}");
        assert_eq!(
            profile.header("location"),
            Some(env.proxy.url("/home").as_str())
        );
        let signed_out = raw::request(
            port,
            "GET",
            "/.profilegate/signed-out?state=%2Fhome",
            &forwarding_spoofs(None, host),
        )
        .await;
        assert_eq!(
            signed_out.header("location"),
            Some(env.proxy.url("/home").as_str())
        );

        // 4. Logout: the OP gets our own post-logout URI; the cookie is cleared as it was set.
        let logout = raw::request(
            port,
            "GET",
            "/.profilegate/logout",
            &forwarding_spoofs(Some(&session), host),
        )
        .await;
        assert_eq!(logout.status, 302, "{logout:?}");
        let loc = logout.header("location").expect("Location");
        assert!(loc.starts_with(&env.op.issuer), "{loc}");
        assert_eq!(
            query(loc)["post_logout_redirect_uri"],
            env.proxy.url("/.profilegate/signed-out")
        );
        assert_plain_cookies("logout", &logout);
        // And an anonymous logout goes to our own signed-out page.
        let anon = raw::request(
            port,
            "GET",
            "/.profilegate/logout",
            &forwarding_spoofs(None, host),
        )
        .await;
        assert_on(
            &origin,
            "anonymous logout",
            anon.header("location").expect("Location"),
        );
        assert_eq!(
            anon.header("location"),
            Some(env.proxy.url("/.profilegate/signed-out").as_str())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_forwarded_host_and_proto_never_change_locations_or_cookies() {
    forwarded_headers_never_move_redirects_or_cookies(TestEnv::start().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn even_trusted_forwarded_host_and_proto_never_change_locations_or_cookies() {
    let env = TestEnv::start_with("trusted_proxies = [\"127.0.0.0/8\"]", json!({})).await;
    forwarded_headers_never_move_redirects_or_cookies(env).await;
}
