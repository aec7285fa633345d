//! Header limits: `server.max_header_bytes` per header line (default 16 KiB, counted as
//! `name: value`) and `server.max_request_head_bytes` for the whole head (default 64 KiB,
//! request line and header lines as sent). Exactly the limit passes; one byte more gets 431,
//! and the upstream never sees the request.

mod support;

use support::raw::{request, RawResponse};
use support::*;

async fn signed_in_cookie(env: &TestEnv) -> String {
    let browser = env.browser();
    browser.login(&env.proxy.url("/"), "alice").await;
    browser.cookies_for(&env.proxy.url("/"))
}

/// The headers `raw::request` sends around `headers`, plus `headers`, make a head of this many
/// bytes (request line to the empty line).
fn head_len(port: u16, target: &str, headers: &[(String, String)]) -> usize {
    let fixed =
        format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    fixed.len()
        + headers
            .iter()
            .map(|(n, v)| n.len() + 2 + v.len() + 2)
            .sum::<usize>()
}

/// The cookie header plus padding lines of at most `line` bytes each (`name: value`), making a
/// head of exactly `total` bytes.
fn head_of(port: u16, cookie: &str, total: usize, line: usize) -> Vec<(String, String)> {
    let mut headers = vec![
        ("Cookie".to_owned(), cookie.to_owned()),
        ("Accept".to_owned(), "application/json".to_owned()),
    ];
    let mut i = 0;
    loop {
        let have = head_len(port, "/app", &headers);
        let name = format!("X-Pad-{i:02}");
        // One more line costs name + ": " + value + CRLF.
        let overhead = name.len() + 4;
        if have + overhead > total {
            // Spread what is left over the previous line.
            let (_, v) = headers.last_mut().expect("a line");
            let grow = total - have;
            v.push_str(&"p".repeat(grow));
            assert!(v.len() <= line, "the last line grew past {line}");
            break;
        }
        // Lines stay 16 bytes short of the limit, room for the last few bytes of the total.
        let value = (total - have - overhead).min(line - name.len() - 2 - 16);
        headers.push((name, "p".repeat(value)));
        i += 1;
    }
    assert_eq!(head_len(port, "/app", &headers), total);
    headers
}

fn padded(cookie: &str, name: &str, line_len: usize) -> Vec<(String, String)> {
    vec![
        ("Cookie".to_owned(), cookie.to_owned()),
        ("Accept".to_owned(), "application/json".to_owned()),
        (name.to_owned(), "p".repeat(line_len - name.len() - 2)),
    ]
}

fn assert_431_readable(resp: &RawResponse, what: &str) {
    assert_eq!(resp.status, 431, "{what}: {resp:?}");
    let json: serde_json::Value = serde_json::from_slice(&resp.body)
        .unwrap_or_else(|_| panic!("{what}: a JSON body: {resp:?}"));
    assert_eq!(json["error"], "header_too_large", "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_lines_over_16_kib_and_heads_over_64_kib_get_431_by_default() {
    let env = TestEnv::start().await;
    let cookie = signed_in_cookie(&env).await;
    let port = env.proxy.port;

    // One header line: exactly 16 KiB passes, one byte more is refused before anything else.
    let ok = request(port, "GET", "/app", &padded(&cookie, "X-Pad", 16 * 1024)).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(env.upstream.count(), 1);
    let big = request(
        port,
        "GET",
        "/app",
        &padded(&cookie, "X-Pad", 16 * 1024 + 1),
    )
    .await;
    assert_431_readable(&big, "a line of 16 KiB + 1");
    // A browser gets the themed page.
    let mut html = padded(&cookie, "X-Pad", 20_000);
    html[1].1 = "text/html".into();
    let page = request(port, "GET", "/app", &html).await;
    assert_eq!(page.status, 431);
    assert!(String::from_utf8_lossy(&page.body).contains("Request headers too large"));
    assert_eq!(env.upstream.count(), 1, "never forwarded");

    // A Cookie line over the limit: 431 before the cookie is parsed, anonymous or not.
    let huge_cookie = format!("{cookie}; pad={}", "c".repeat(16 * 1024));
    for accept in ["application/json", "text/html"] {
        let resp = request(
            port,
            "GET",
            "/app",
            &[
                ("Cookie".to_owned(), huge_cookie.clone()),
                ("Accept".to_owned(), accept.to_owned()),
            ],
        )
        .await;
        assert_eq!(resp.status, 431, "{accept}: {resp:?}");
        assert!(resp.header("set-cookie").is_none());
        assert!(resp.header("location").is_none(), "no login started");
    }
    assert_eq!(env.upstream.count(), 1);

    // The whole head: exactly 64 KiB passes, one byte more gets hyper's own 431 (no body).
    let ok = request(
        port,
        "GET",
        "/app",
        &head_of(port, &cookie, 64 * 1024, 16 * 1024),
    )
    .await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(env.upstream.count(), 2);
    let big = request(
        port,
        "GET",
        "/app",
        &head_of(port, &cookie, 64 * 1024 + 1, 16 * 1024),
    )
    .await;
    assert_eq!(big.status, 431, "{big:?}");
    assert_eq!(env.upstream.count(), 2, "never forwarded");
}

/// A header line of exactly `line` bytes and a head of exactly `head` bytes pass; one byte more
/// of either gets 431 (the line: a readable JSON body; the head: hyper's own).
async fn assert_limits_hold(port: u16, cookie: &str, line: usize, head: usize) {
    let ok = request(port, "GET", "/app", &padded(cookie, "X-Pad", line)).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    let big = request(port, "GET", "/app", &padded(cookie, "X-Pad", line + 1)).await;
    assert_431_readable(&big, &format!("a line of {line} + 1 bytes"));
    let ok = request(port, "GET", "/app", &head_of(port, cookie, head, line)).await;
    assert_eq!(ok.status, 200, "{ok:?}");
    let big = request(port, "GET", "/app", &head_of(port, cookie, head + 1, line)).await;
    assert_eq!(big.status, 431, "{big:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_header_limits_are_respected_both_ways() {
    // Smaller than the defaults.
    let env = TestEnv::start_with(
        "max_header_bytes = \"4KiB\"\nmax_request_head_bytes = \"16KiB\"",
        serde_json::json!({}),
    )
    .await;
    let cookie = signed_in_cookie(&env).await;
    let port = env.proxy.port;
    assert_limits_hold(port, &cookie, 4096, 16 * 1024).await;
    assert_eq!(env.upstream.count(), 2);
    drop(env);

    // Larger than the defaults: what the defaults refuse passes.
    let env = TestEnv::start_with(
        "max_header_bytes = \"48KiB\"\nmax_request_head_bytes = \"256KiB\"",
        serde_json::json!({}),
    )
    .await;
    let cookie = signed_in_cookie(&env).await;
    let port = env.proxy.port;
    assert_limits_hold(port, &cookie, 48 * 1024, 256 * 1024).await;
    assert_eq!(env.upstream.count(), 2);
}
