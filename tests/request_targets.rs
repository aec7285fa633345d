//! Malformed request targets: absolute form, `%00` and other control bytes, invalid UTF-8,
//! overlong. Each is refused or normalised before any decision, and the path the decision sees
//! is the path the upstream gets; the query string passes byte for byte.

mod support;

use support::raw::request;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn signed_in_cookie(env: &TestEnv) -> String {
    let browser = env.browser();
    browser.login(&env.proxy.url("/"), "alice").await;
    browser.cookies_for(&env.proxy.url("/"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_request_targets_are_refused_or_forwarded_exactly_as_decided() {
    let env = TestEnv::start().await;
    let cookie = signed_in_cookie(&env).await;
    let headers = vec![("Cookie".to_owned(), cookie.clone())];
    let port = env.proxy.port;

    // Absolute form (a forward-proxy request) is refused: the upstream never sees a foreign
    // authority, and a reserved route cannot be reached around the decision.
    let before = env.upstream.count();
    for target in [
        "http://evil.example/abs?q=1",
        "http://evil.example/.profilegate/nope",
    ] {
        let resp = request(port, "GET", target, &headers).await;
        assert_eq!(resp.status, 400, "{target}");
    }
    assert_eq!(env.upstream.count(), before);

    // Dot segments and encoded UTF-8: the upstream gets the normalized path the decision was
    // taken on (dot segments removed, escapes of unreserved characters decoded), the query
    // byte for byte. (A percent-encoded NUL is refused: see the test below.)
    for (target, normalized) in [
        ("/x/%2e%2e/y", "/y"),
        ("/x/../y?a=/../b", "/y?a=/../b"),
        ("/x//y/./z", "/x/y/z"),
        ("/%7euser/%61", "/~user/a"),
        ("/%C3%A9t%C3%A9", "/%C3%A9t%C3%A9"),
        ("/a%2fb", "/a%2Fb"),
        // A `%` that starts no escape is a literal `%`: written `%25`, so that no decoding
        // downstream can join it with what follows (`%%31` would otherwise become `%1`).
        ("/a%zz/%%31", "/a%25zz/%251"),
    ] {
        let resp = request(port, "GET", target, &headers).await;
        assert_eq!(resp.status, 200, "{target}");
        assert_eq!(env.upstream.last().target, normalized, "{target}");
    }
    // A reserved route reached through dot segments is still the proxy's, never forwarded.
    let n = env.upstream.count();
    let resp = request(port, "GET", "/.profilegate/../.profilegate/nope", &headers).await;
    assert_eq!(resp.status, 404);
    assert_eq!(env.upstream.count(), n);

    // Raw NUL and raw invalid UTF-8 are percent-encoded before the decision; the upstream gets
    // exactly that form (never a raw byte).
    for (raw, normalised) in [
        (&b"GET /a\x00b HTTP/1.1\r\n"[..], "/a%00b"),
        (&b"GET /caf\xe9 HTTP/1.1\r\n"[..], "/caf%E9"),
        (&b"GET /\xff\xfe?x=\x01 HTTP/1.1\r\n"[..], "/%FF%FE?x=%01"),
    ] {
        let n = env.upstream.count();
        let status = send_raw(port, raw, &cookie).await;
        if status == 200 {
            assert_eq!(env.upstream.count(), n + 1);
            assert_eq!(env.upstream.last().target, normalised);
        } else {
            assert!((400..500).contains(&status) || status == 0, "{status}");
            assert_eq!(env.upstream.count(), n, "refused, never forwarded");
        }
    }
    // The same bytes inside the reserved prefix are still the proxy's route, never forwarded.
    let n = env.upstream.count();
    let status = send_raw(port, b"GET /.profilegate/no\x00pe HTTP/1.1\r\n", &cookie).await;
    assert!(status == 404 || status == 400 || status == 0, "{status}");
    assert_eq!(env.upstream.count(), n);

    // An overlong target is refused and never forwarded.
    let status = send_raw(
        port,
        format!("GET /{} HTTP/1.1\r\n", "a".repeat(2 * 1024 * 1024)).as_bytes(),
        &cookie,
    )
    .await;
    assert!(status == 0 || (400..500).contains(&status), "{status}");
    assert_eq!(env.upstream.count(), n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_bytes_and_broken_utf8_in_the_path_get_400_and_never_reach_the_upstream() {
    let env = TestEnv::start().await;
    let cookie = signed_in_cookie(&env).await;
    let port = env.proxy.port;
    let anonymous = vec![("Accept".to_owned(), "text/html".to_owned())];
    let signed_in = vec![
        ("Cookie".to_owned(), cookie.clone()),
        ("Accept".to_owned(), "application/json".to_owned()),
    ];
    let refused = [
        "/a%00b",
        "/%00",
        "/%0a",
        "/%0D%0ASet-Cookie:%20x=1",
        "/%1F",
        "/%1f/x",
        "/%7f",
        "/app/%09",
        "/%ff",
        "/%c3",
        "/%c3/",
        "/%c0%af",
        "/%e0%80%af",
        "/%ed%a0%80",
        "/caf%E9",
        "/.profilegate/profile%00",
        "/.profilegate/callback%0a",
        "/.profilegate/api/answers%ff",
    ];
    for (who, headers) in [("anonymous", &anonymous), ("signed in", &signed_in)] {
        for target in refused {
            let n = env.upstream.count();
            let resp = request(port, "GET", target, headers).await;
            let body = String::from_utf8_lossy(&resp.body);
            assert_eq!(resp.status, 400, "{who} {target}: {body}");
            assert!(
                resp.header("location").is_none(),
                "{who} {target}: no login"
            );
            assert!(resp.header("set-cookie").is_none(), "{who} {target}");
            if who == "anonymous" {
                assert!(body.contains("Request not understood"), "{target}: {body}");
            } else {
                let json: serde_json::Value = serde_json::from_slice(&resp.body).expect("JSON");
                assert_eq!(json["error"], "bad_request", "{target}");
            }
            assert_eq!(env.upstream.count(), n, "{who} {target}: never forwarded");
        }
    }
    assert!(env.proxy.log().contains("control character"));
    assert!(env.proxy.log().contains("not valid UTF-8"));

    // Valid paths pass, and the query string is forwarded exactly as it came, whatever it holds.
    for target in [
        "/caf%C3%A9",
        "/caf%C3%A9?q=%00",
        "/search?q=%00%0a%0D%ff&x=%c0%af&%00=%7f",
        "/100%25",
        "/%F0%9F%98%80/%20",
    ] {
        let resp = request(port, "GET", target, &signed_in).await;
        assert_eq!(resp.status, 200, "{target}");
        assert_eq!(env.upstream.last().target, target);
    }
    // Anonymous, the same valid path starts a login as always.
    let resp = request(port, "GET", "/caf%C3%A9?q=%00", &anonymous).await;
    assert_eq!(resp.status, 302);
}

/// Writes a request line made of raw bytes plus the usual headers; returns the status (0 when
/// the proxy closed the connection without an answer).
async fn send_raw(port: u16, request_line: &[u8], cookie: &str) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let mut req = request_line.to_vec();
    req.extend_from_slice(
        format!("Host: 127.0.0.1:{port}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    if stream.write_all(&req).await.is_err() {
        return 0;
    }
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        stream.read_to_end(&mut raw),
    )
    .await;
    String::from_utf8_lossy(&raw)
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}
