//! HTTP/2, end to end with the binary: `curl --http2` over TLS (ALPN) reaches an HTTP/1.1
//! upstream with the identity headers; h2c with prior knowledge only with `server.h2c`;
//! `upstream.http2` forwards over HTTP/2 to an h2c upstream; a WebSocket over TLS and HTTP/1.1
//! still echoes.

mod support;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use reqwest::StatusCode;
use support::tls::{curl, tls_browser, tls_env, TestCerts, PUBLIC};
use support::*;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn curl_http2_over_tls_reaches_an_http1_upstream_with_the_identity_headers() {
    let certs = TestCerts::make();
    let env = tls_env(&certs, "").await;
    let browser = tls_browser(&certs);
    browser.login(&env.proxy.url("/app"), "alice").await;
    let cookie = browser.cookies_for(&env.proxy.url("/"));
    assert!(!cookie.is_empty(), "signed in:\n{}", env.proxy.log());

    let ca = certs.ca();
    let ca = ca.to_str().expect("path");
    let url = env.proxy.url("/app/h2?q=1");
    let (code, out, stderr) = curl(&[
        "--http2",
        "--cacert",
        ca,
        "-H",
        &format!("Cookie: {cookie}"),
        "-H",
        "Accept: text/html",
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-w",
        "version=%{http_version} status=%{http_code}",
        &url,
    ])
    .await;
    assert_eq!(code, Some(0), "{stderr}\n{}", env.proxy.log());
    assert!(
        out.ends_with("version=2 status=200"),
        "{out}\n{}",
        env.proxy.log()
    );
    // No connection-specific header on an HTTP/2 response (RFC 9113 §8.2.2).
    let head = out.to_ascii_lowercase();
    for name in [
        "connection:",
        "keep-alive:",
        "transfer-encoding:",
        "upgrade:",
    ] {
        assert!(
            !head.contains(name),
            "{name} in the HTTP/2 response:\n{out}"
        );
    }
    // The echo upstream speaks HTTP/1.1 only: it recorded the request, so it came as HTTP/1.1,
    // in origin form, with the client's :authority as Host and the identity.
    let seen = env.upstream.last();
    assert_eq!(seen.target, "/app/h2?q=1");
    assert_eq!(
        seen.header("host"),
        Some(format!("127.0.0.1:{}", env.proxy.port).as_str())
    );
    assert_eq!(seen.header("x-forwarded-user"), Some("alice"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));

    // A browser sends one `cookie` field per cookie over HTTP/2; the HTTP/1.1 upstream gets one
    // line (RFC 9113 §8.2.3).
    let (code, out, stderr) = curl(&[
        "--http2",
        "--cacert",
        ca,
        "-H",
        "Cookie: a=1",
        "-H",
        "Cookie: b=2",
        "-o",
        "/dev/null",
        "-w",
        "%{http_version} %{http_code}",
        &env.proxy.url("/pub/cookies"),
    ])
    .await;
    assert_eq!((code, out.as_str()), (Some(0), "2 200"), "{stderr}");
    let seen = env.upstream.last();
    assert_eq!(seen.target, "/pub/cookies");
    assert_eq!(seen.header_values("cookie"), ["a=1; b=2"]);

    // A request body streams through from an HTTP/2 client.
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let body_file = env.proxy.dir.path().join("body.bin");
    std::fs::write(&body_file, &body).expect("body written");
    let (code, out, stderr) = curl(&[
        "--http2",
        "--cacert",
        ca,
        "-H",
        &format!("Cookie: {cookie}"),
        "--data-binary",
        &format!("@{}", body_file.display()),
        "-o",
        "/dev/null",
        "-w",
        "%{http_version} %{http_code}",
        &env.proxy.url("/app/upload"),
    ])
    .await;
    assert_eq!((code, out.as_str()), (Some(0), "2 200"), "{stderr}");
    let seen = env.upstream.last();
    assert_eq!(seen.target, "/app/upload");
    assert_eq!(seen.body_len, body.len());
    assert_eq!(seen.body_sum, support::upstream::checksum(&body));
}

/// A plain-HTTP profilegate (the binary, no OP needed for the public route) with
/// `extra_server` and `extra_upstream`.
async fn plain_proxy(upstream: &str, extra_server: &str, extra_upstream: &str) -> Proxy {
    start_proxy_full(
        free_port(),
        "http://127.0.0.1:1",
        upstream,
        extra_server,
        extra_upstream,
        PUBLIC,
        false,
    )
    .await
}

#[tokio::test]
async fn h2c_prior_knowledge_is_served_only_with_server_h2c() {
    let upstream = EchoUpstream::start().await;
    let without = plain_proxy(&upstream.url(), "", "").await;
    let (code, out, _) = curl(&[
        "--http2-prior-knowledge",
        "-o",
        "/dev/null",
        "-w",
        "%{http_version} %{http_code}",
        &without.url("/pub/h2c"),
    ])
    .await;
    assert!(
        code != Some(0) || !out.starts_with("2 "),
        "h2c was served without server.h2c: {code:?} {out}"
    );
    assert_eq!(upstream.count(), 0, "nothing reached the upstream");

    let with = plain_proxy(&upstream.url(), "h2c = true", "").await;
    let (code, out, stderr) = curl(&[
        "--http2-prior-knowledge",
        "-o",
        "/dev/null",
        "-w",
        "%{http_version} %{http_code}",
        &with.url("/pub/h2c?x=1"),
    ])
    .await;
    assert_eq!(
        (code, out.as_str()),
        (Some(0), "2 200"),
        "{stderr}\n{}",
        with.log()
    );
    assert_eq!(upstream.last().target, "/pub/h2c?x=1");
    // HTTP/1.1 on the same listener still works.
    let (code, out, stderr) = curl(&[
        "--http1.1",
        "-o",
        "/dev/null",
        "-w",
        "%{http_version} %{http_code}",
        &with.url("/pub/h1"),
    ])
    .await;
    assert_eq!((code, out.as_str()), (Some(0), "1.1 200"), "{stderr}");
    assert_eq!(upstream.last().target, "/pub/h1");
}

/// What the h2c upstream saw: version, target (absolute in HTTP/2), body length.
type SeenH2 = Arc<Mutex<Vec<(http::Version, String, usize)>>>;

/// A small upstream speaking HTTP/2 with prior knowledge only (hyper's HTTP/2 server).
async fn h2c_upstream() -> (String, SeenH2) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen: SeenH2 = Arc::default();
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                    let record = record.clone();
                    async move {
                        let (version, target) = (req.version(), req.uri().to_string());
                        let body = req.into_body().collect().await.map(|b| b.to_bytes());
                        let len = body.map(|b| b.len()).unwrap_or_default();
                        record.lock().expect("lock").push((version, target, len));
                        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(
                            b"from h2",
                        ))))
                    }
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, seen)
}

#[tokio::test]
async fn upstream_http2_forwards_over_http2() {
    let (upstream, seen) = h2c_upstream().await;
    let proxy = plain_proxy(&upstream, "", "http2 = true").await;
    let client = http_client();
    let resp = client
        .get(proxy.url("/pub/a?b=1"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::OK, "{}", proxy.log());
    assert_eq!(resp.text().await.expect("body"), "from h2");
    let body = vec![7u8; 200_000];
    let resp = client
        .post(proxy.url("/pub/upload"))
        .body(body.clone())
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::OK, "{}", proxy.log());
    let seen = seen.lock().expect("lock").clone();
    let authority = format!("127.0.0.1:{}", proxy.port);
    assert_eq!(
        seen,
        vec![
            (
                http::Version::HTTP_2,
                format!("http://{authority}/pub/a?b=1"),
                0
            ),
            (
                http::Version::HTTP_2,
                format!("http://{authority}/pub/upload"),
                body.len()
            ),
        ],
        "{}",
        proxy.log()
    );

    // Without upstream.http2 the same upstream is spoken to in HTTP/1.1, which it refuses.
    let h1 = plain_proxy(&upstream, "", "").await;
    let resp = client.get(h1.url("/pub/h1")).send().await.expect("request");
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn a_websocket_over_tls_and_http1_still_echoes() {
    let certs = TestCerts::make();
    let env = tls_env(&certs, "").await;
    let tls = certs.connect(env.proxy.port, &[b"http/1.1"]).await;
    let url = format!("wss://127.0.0.1:{}/pub/ws", env.proxy.port);
    let (mut ws, resp) = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio_tungstenite::client_async(url, tls),
    )
    .await
    .expect("upgraded within 10 s")
    .unwrap_or_else(|e| panic!("WebSocket upgrade failed: {e}\n{}", env.proxy.log()));
    assert_eq!(resp.status(), 101);
    ws.send(Message::text("over tls")).await.expect("send");
    let echoed = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
        .await
        .expect("echo within 10 s")
        .expect("a message")
        .expect("a frame");
    assert_eq!(echoed.into_text().expect("text"), "over tls");
    assert_eq!(env.upstream.last().target, "/pub/ws");
}
