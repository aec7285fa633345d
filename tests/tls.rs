//! The TLS listener, end to end with the binary: HTTPS through profilegate to the echo
//! upstream, a full login at the test OP over https, TLS 1.1 refused, certificate rotation
//! without a restart (a new connection sees the new certificate, an open one keeps working, a
//! broken new pair keeps the old one), the http → https redirect listener, and
//! `profilegate check` naming bad TLS files by key.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use reqwest::StatusCode;
use support::tls::{curl, served_certificate, tls_browser, tls_env, TestCerts};
use support::*;

#[tokio::test]
async fn https_reaches_the_upstream_with_tls_1_2_and_1_3_only() {
    let certs = TestCerts::make();
    let env = tls_env(&certs, "").await;
    let client = certs.reqwest();
    let resp = client
        .get(env.proxy.url("/pub/hello?x=1"))
        .send()
        .await
        .expect("HTTPS request");
    assert_eq!(resp.status(), StatusCode::OK, "{}", env.proxy.log());
    let seen = env.upstream.last();
    assert_eq!(seen.target, "/pub/hello?x=1");
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));

    let ca = certs.ca();
    let ca = ca.to_str().expect("path");
    let url = env.proxy.url("/pub/versions");
    let (code, _, stderr) = curl(&["--cacert", ca, "--tlsv1.1", "--tls-max", "1.1", &url]).await;
    assert_ne!(code, Some(0), "TLS 1.1 must be refused: {stderr}");
    for version in ["1.2", "1.3"] {
        let (code, out, stderr) = curl(&[
            "--cacert",
            ca,
            &format!("--tlsv{version}"),
            "--tls-max",
            version,
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &url,
        ])
        .await;
        assert_eq!(
            (code, out.as_str()),
            (Some(0), "200"),
            "TLS {version}: {stderr}\n{}",
            env.proxy.log()
        );
    }
    // Plain HTTP on the TLS port is no request at all.
    let plain = format!("http://127.0.0.1:{}/pub/plain", env.proxy.port);
    let answered = http_client().get(&plain).send().await;
    assert!(
        answered.as_ref().map_or(true, |r| !r.status().is_success()),
        "plain HTTP on the TLS listener was served: {answered:?}"
    );
}

#[tokio::test]
async fn full_login_over_https_sets_secure_cookies_and_identity_reaches_the_upstream() {
    let certs = TestCerts::make();
    let env = tls_env(&certs, "").await;
    let browser = tls_browser(&certs);
    let callback_url = browser.sign_in_at_op(&env.proxy.url("/app"), "alice").await;
    assert!(
        callback_url.starts_with(&env.proxy.url("/.profilegate/callback")),
        "the OP sends the browser back to the https origin: {callback_url}"
    );
    let callback = browser.navigate(&callback_url).await;
    assert!(
        callback.status().is_redirection(),
        "callback answered {}:\n{}",
        callback.status(),
        env.proxy.log()
    );
    let cookies = set_cookies(&callback);
    assert!(
        !cookies.is_empty() && cookies.iter().all(|c| c.contains("Secure")),
        "every cookie over https is Secure: {cookies:?}"
    );
    let app = browser.navigate(&env.proxy.url("/app")).await;
    assert_eq!(app.status(), StatusCode::OK, "{}", env.proxy.log());
    let seen = env.upstream.last();
    assert_eq!(seen.target, "/app");
    assert_eq!(seen.header("x-forwarded-user"), Some("alice"));
}

/// Sends `GET /pub/<path>` on an open HTTP/1.1 connection and returns the status.
async fn get_on(
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    path: &str,
) -> u16 {
    let req = hyper::Request::get(format!("/pub/{path}"))
        .header("host", "127.0.0.1")
        .body(Empty::new())
        .expect("request");
    let resp = tokio::time::timeout(Duration::from_secs(10), sender.send_request(req))
        .await
        .expect("answered within 10 s")
        .expect("request on the open connection");
    resp.status().as_u16()
}

#[tokio::test]
async fn a_rotated_certificate_is_served_to_new_connections_without_a_restart() {
    let certs = TestCerts::make();
    let env = tls_env(&certs, "").await;
    let port = env.proxy.port;
    let pid = env.proxy.pid();
    let (leaf1, leaf2) = (certs.der("leaf1"), certs.der("leaf2"));
    assert_ne!(leaf1, leaf2);

    // A connection opened before the rotation.
    let old = certs.connect(port, &[b"http/1.1"]).await;
    assert_eq!(served_certificate(&old), leaf1);
    let (mut old_sender, old_conn) = hyper::client::conn::http1::handshake(TokioIo::new(old))
        .await
        .expect("HTTP/1.1 on the open connection");
    tokio::spawn(old_conn);
    assert_eq!(get_on(&mut old_sender, "before").await, 200);

    let dir = env.proxy.dir.path();
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    certs.install("leaf2", &cert, &key);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let fresh = certs.connect(port, &[b"http/1.1"]).await;
        if served_certificate(&fresh) == leaf2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "new connections still get the old certificate 15 s after the rotation:\n{}",
            env.proxy.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        env.proxy.log().contains("TLS certificate reloaded"),
        "{}",
        env.proxy.log()
    );
    assert_eq!(env.proxy.pid(), pid, "the process was not restarted");
    // The connection opened before still works.
    assert_eq!(get_on(&mut old_sender, "after").await, 200);
    let seen: Vec<String> = env
        .upstream
        .requests()
        .into_iter()
        .map(|r| r.target)
        .collect();
    assert!(seen.contains(&"/pub/after".to_owned()), "{seen:?}");

    // A broken certificate: logged, and the last good one keeps serving.
    std::fs::write(
        &cert,
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .expect("broken certificate written");
    let deadline = Instant::now() + Duration::from_secs(15);
    while !env.proxy.log().contains("TLS certificate not reloaded") {
        assert!(
            Instant::now() < deadline,
            "a broken certificate was not reported within 15 s:\n{}",
            env.proxy.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after_broken = certs.connect(port, &[b"http/1.1"]).await;
    assert_eq!(served_certificate(&after_broken), leaf2);
    // The key of leaf1 with the certificate of leaf2 is refused too (mismatch).
    std::fs::copy(certs.path("leaf2.pem"), &cert).expect("certificate restored");
    std::fs::copy(certs.path("leaf1.key"), &key).expect("other key");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        env.proxy.log().contains("does not match the certificate"),
        "{}",
        env.proxy.log()
    );
    let after_mismatch = certs.connect(port, &[b"http/1.1"]).await;
    assert_eq!(served_certificate(&after_mismatch), leaf2);
    assert!(
        !env.proxy.log().contains("BEGIN PRIVATE KEY"),
        "key material in the log"
    );
}

#[tokio::test]
async fn the_redirect_listener_answers_308_to_the_https_origin() {
    let certs = TestCerts::make();
    let redirect_port = free_port();
    let env = tls_env(
        &certs,
        &format!("http_redirect_listen = \"127.0.0.1:{redirect_port}\""),
    )
    .await;
    let before = env.upstream.count();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    for (method, target) in [("GET", "/a/b?c=d&e=%2F"), ("POST", "/"), ("HEAD", "/x")] {
        let resp = client
            .request(
                method.parse().expect("method"),
                format!("http://127.0.0.1:{redirect_port}{target}"),
            )
            .header("cookie", "profilegate_session=whatever")
            .send()
            .await
            .expect("redirect listener answers");
        assert_eq!(
            resp.status(),
            StatusCode::PERMANENT_REDIRECT,
            "{method} {target}"
        );
        assert_eq!(
            resp.headers()["location"].to_str().expect("location"),
            env.proxy.url(target),
            "{method} {target}"
        );
    }
    assert_eq!(env.upstream.count(), before, "nothing reached the upstream");
}

/// `profilegate check` on a configuration with `server_lines` in `[server]`.
fn check(dir: &std::path::Path, server_lines: &str) -> (Option<i32>, String) {
    let path = dir.join("check.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:8443\"\npublic_url = \"https://127.0.0.1:8443\"\n{server_lines}\n\
             [upstream]\nurl = \"http://127.0.0.1:3000\"\n\
             [oidc]\nissuer = \"https://op.example\"\nclient_id = \"c\"\nclient_secret = \"s\"\n\
             [session]\nsecret = \"{SESSION_SECRET}\"\n[store]\npath = \"{}\"\n",
            dir.join("data").display()
        ),
    )
    .expect("config written");
    let out = support::child::output_within(
        std::process::Command::new(binary())
            .arg("check")
            .arg("--config")
            .arg(&path),
        "profilegate check",
        support::child::COMMAND_LIMIT,
    )
    .expect("check runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn check_names_unreadable_empty_and_mismatched_tls_files_by_key() {
    let certs = TestCerts::make();
    let dir = tempfile::tempdir().expect("tempdir");
    let p = |f: &str| certs.path(f).display().to_string();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").expect("empty file");
    let empty = empty.display().to_string();
    let cases = [
        (
            format!(
                "tls_cert_file = \"{}\"\ntls_key_file = \"{}\"",
                p("leaf1.pem"),
                p("leaf1.key")
            ),
            None,
        ),
        (
            format!(
                "tls_cert_file = \"{}\"\ntls_key_file = \"/nonexistent/k.pem\"",
                p("leaf1.pem")
            ),
            Some("server.tls_key_file: cannot read /nonexistent/k.pem"),
        ),
        (
            format!(
                "tls_cert_file = \"{empty}\"\ntls_key_file = \"{}\"",
                p("leaf1.key")
            ),
            Some("server.tls_cert_file"),
        ),
        (
            format!(
                "tls_cert_file = \"{}\"\ntls_key_file = \"{}\"",
                p("leaf1.pem"),
                p("leaf1.pem")
            ),
            Some("server.tls_key_file"),
        ),
        (
            format!(
                "tls_cert_file = \"{}\"\ntls_key_file = \"{}\"",
                p("leaf1.pem"),
                p("leaf2.key")
            ),
            Some("server.tls_key_file"),
        ),
        (
            format!("tls_cert_file = \"{}\"", p("leaf1.pem")),
            Some("server.tls_key_file: is required with server.tls_cert_file"),
        ),
        (
            "http_redirect_listen = \"127.0.0.1:8080\"".to_owned(),
            Some("server.http_redirect_listen: needs server.tls_cert_file"),
        ),
        (
            format!(
                "tls_cert_file = \"{}\"\ntls_key_file = \"{}\"\nh2c = true",
                p("leaf1.pem"),
                p("leaf1.key")
            ),
            Some("server.h2c"),
        ),
    ];
    for (lines, error) in cases {
        let (code, text) = check(dir.path(), &lines);
        match error {
            None => assert_eq!(code, Some(0), "{lines}:\n{text}"),
            Some(error) => {
                assert_eq!(code, Some(2), "{lines}:\n{text}");
                assert!(
                    text.contains(error),
                    "{lines}: missing {error:?} in:\n{text}"
                );
            }
        }
    }
    // The mismatch says so; the empty certificate file says it holds none.
    let (_, text) = check(
        dir.path(),
        &format!(
            "tls_cert_file = \"{}\"\ntls_key_file = \"{}\"",
            p("leaf1.pem"),
            p("leaf2.key")
        ),
    );
    assert!(text.contains("does not match the certificate"), "{text}");
    let (_, text) = check(
        dir.path(),
        &format!(
            "tls_cert_file = \"{empty}\"\ntls_key_file = \"{}\"",
            p("leaf1.key")
        ),
    );
    assert!(text.contains("holds no certificate"), "{text}");
    assert!(!text.contains("BEGIN PRIVATE KEY"), "{text}");
}

#[test]
fn check_warns_when_tls_is_on_but_public_url_is_http() {
    let certs = TestCerts::make();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("warn.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:8443\"\npublic_url = \"http://127.0.0.1:8443\"\n\
             tls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n\
             [upstream]\nurl = \"http://127.0.0.1:3000\"\n\
             [oidc]\nissuer = \"https://op.example\"\nclient_id = \"c\"\nclient_secret = \"s\"\n\
             [session]\nsecret = \"{SESSION_SECRET}\"\n[store]\npath = \"{}\"\n",
            certs.path("leaf1.pem").display(),
            certs.path("leaf1.key").display(),
            dir.path().join("data").display()
        ),
    )
    .expect("config written");
    let out = support::child::output_within(
        std::process::Command::new(binary())
            .arg("check")
            .arg("--config")
            .arg(&path),
        "profilegate check",
        support::child::COMMAND_LIMIT,
    )
    .expect("check runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("warning: server.tls_cert_file is set but server.public_url is http://"),
        "{stdout}"
    );
}
