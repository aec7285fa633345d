//! End-to-end: the login gate against a real OpenID Provider (npm oidc-provider), through real
//! sockets, asserting what the upstream received.

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::json;
use support::*;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_navigation_redirects_to_the_op_with_pkce_state_and_nonce() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    let resp = browser.navigate(&env.proxy.url("/reports?year=2026")).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let loc = location(&resp);
    assert!(
        loc.starts_with(&format!("{}/auth?", env.op.issuer)),
        "{loc}"
    );
    let q = query(&loc);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(
        q["code_challenge"].len(),
        43,
        "S256 challenge is 43 base64url chars"
    );
    assert!(q["state"].len() >= 32, "state has enough entropy");
    assert!(q["nonce"].len() >= 16, "nonce present");
    assert_eq!(q["redirect_uri"], env.proxy.url("/.profilegate/callback"));
    let scopes: Vec<&str> = q["scope"].split(' ').collect();
    assert!(
        scopes.contains(&"openid") && scopes.contains(&"email"),
        "{scopes:?}"
    );

    let login_cookie = set_cookies(&resp).join("\n");
    assert!(
        login_cookie.contains("HttpOnly") && login_cookie.contains("SameSite=Lax"),
        "{login_cookie}"
    );
    assert!(
        !login_cookie.contains(&q["state"]),
        "the state itself is sealed, not in clear"
    );

    // Two navigations get two different states and challenges.
    let again = location(&browser.navigate(&env.proxy.url("/")).await);
    assert_ne!(query(&again)["state"], q["state"]);
    assert_ne!(query(&again)["code_challenge"], q["code_challenge"]);
    assert_eq!(env.upstream.count(), 0, "nothing reached the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_requests_without_a_session_get_401_json_never_a_redirect() {
    let env = TestEnv::start().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let url = env.proxy.url("/api/items");
    let requests = [
        client.get(&url).header("accept", "application/json"),
        client.get(&url),
        client
            .get(&url)
            .header("accept", "text/html")
            .header("x-requested-with", "XMLHttpRequest"),
        client
            .get(&url)
            .header("accept", "text/html")
            .header("sec-fetch-mode", "cors"),
        client.post(&url).header("accept", "text/html").body("x=1"),
    ];
    for req in requests {
        let resp = req.send().await.expect("response");
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert!(resp.headers().get("location").is_none());
        assert_eq!(resp.headers()["content-type"], "application/json");
        let body: serde_json::Value = resp.json().await.expect("json");
        assert_eq!(body["error"], "unauthenticated");
    }
    assert_eq!(env.upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_login_lands_on_the_asked_url_and_the_upstream_sees_the_true_identity() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    let asked = env.proxy.url("/reports/q3?year=2026&sort=desc");
    let callback = browser.login(&asked, "alice").await;
    assert_eq!(callback.status(), StatusCode::FOUND);
    assert_eq!(location(&callback), asked, "back where the user started");
    let cookies = set_cookies(&callback).join("\n");
    assert!(cookies.starts_with("profilegate_session="), "{cookies}");
    // The login cookie is deleted after the session is set (curl's cookie jar ignores a
    // deletion that another Set-Cookie follows).
    assert!(
        cookies.lines().last().is_some_and(|c| c
            .starts_with("profilegate_session_login_")
            && c.contains("Max-Age=0")),
        "{cookies}"
    );
    assert!(cookies.contains("HttpOnly"), "{cookies}");
    assert!(
        !cookies.contains("Secure"),
        "plain-http public_url: no Secure flag"
    );

    let page = browser.navigate(&asked).await;
    assert_eq!(page.status(), StatusCode::OK);
    let seen = env.upstream.last();
    assert_eq!(seen.target, "/reports/q3?year=2026&sort=desc");
    assert_eq!(seen.header("x-forwarded-user"), Some("alice"));
    assert_eq!(
        seen.header("x-forwarded-email"),
        Some("alice@example.com"),
        "email comes from userinfo"
    );
    assert_eq!(seen.header("x-forwarded-preferred-username"), Some("alice"));
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(
        seen.header("x-forwarded-host"),
        Some(format!("127.0.0.1:{}", env.proxy.port).as_str())
    );

    // A second user in another browser gets their own identity.
    let bob = Browser::new();
    bob.login(&env.proxy.url("/"), "bob").await;
    bob.navigate(&env.proxy.url("/whoami")).await;
    assert_eq!(env.upstream.last().header("x-forwarded-user"), Some("bob"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofed_identity_headers_and_the_proxy_cookies_never_reach_the_upstream() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    browser.login(&env.proxy.url("/"), "alice").await;
    let session_cookie = browser.cookies_for(&env.proxy.url("/"));
    assert!(session_cookie.contains("profilegate_session="));

    let resp = browser
        .client
        .get(env.proxy.url("/spoof"))
        .header("accept", "text/html")
        .header("X-Forwarded-User", "mallory")
        .header("x_forwarded_user", "mallory")
        .header("X_FORWARDED_USER", "mallory")
        .header("x-forwarded-email", "mallory@evil.example")
        .header("X-Forwarded-Preferred-Username", "mallory")
        .header("X-Profile-Company", "Evil Corp")
        .header("x_profile_role", "admin")
        .header("X-Profile-Jwt", "forged.jwt.value")
        .header("X-Forwarded-For", "6.6.6.6")
        .header("X-Forwarded-Host", "evil.example")
        .header("X-Forwarded-Proto", "https")
        .header("X_Forwarded_For", "6.6.6.6")
        .header("Forwarded", "for=6.6.6.6;host=evil.example")
        .header("X-Real-IP", "6.6.6.6")
        .header(
            "cookie",
            format!("theme=dark; {session_cookie}; profilegate_session_login_abc=forged; lang=en"),
        )
        .send()
        .await
        .expect("response");
    assert_eq!(resp.status(), StatusCode::OK);
    let seen = env.upstream.last();
    headers::assert_alice_forwarded(&seen, env.proxy.port);
    assert_eq!(
        seen.header_values("x-forwarded-preferred-username"),
        ["alice"]
    );
    for (name, value) in &seen.headers {
        let n = name.to_ascii_lowercase().replace('_', "-");
        assert!(
            !value.contains("mallory") && !value.contains("6.6.6.6") && !value.contains("evil"),
            "spoofed value reached the upstream: {name}: {value}"
        );
        assert!(
            !n.starts_with("x-profile-") || n == "x-profile-jwt",
            "{name} reached the upstream"
        );
        assert!(
            n != "forwarded" && n != "x-real-ip",
            "{name} reached the upstream"
        );
    }
    let jwt = seen.header_values("x-profile-jwt");
    assert_eq!(jwt.len(), 1, "exactly the proxy's own profile JWT");
    assert_ne!(jwt[0], "forged.jwt.value");
    let cookie = seen.header_values("cookie").join("; ");
    assert!(
        cookie.contains("theme=dark") && cookie.contains("lang=en"),
        "app cookies kept: {cookie}"
    );
    assert!(
        !cookie.contains("profilegate"),
        "proxy cookies stripped: {cookie}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_from_a_trusted_proxy_are_kept_and_extended() {
    let env = TestEnv::start_with("trusted_proxies = [\"127.0.0.0/8\"]", json!({})).await;
    let browser = env.browser();
    browser.login(&env.proxy.url("/"), "alice").await;
    browser
        .client
        .get(env.proxy.url("/via-lb"))
        .header("X-Forwarded-For", "203.0.113.7")
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", "app.example.com")
        .header("X-Forwarded-User", "mallory")
        .send()
        .await
        .expect("response");
    let seen = env.upstream.last();
    assert_eq!(
        seen.header("x-forwarded-for"),
        Some("203.0.113.7, 127.0.0.1")
    );
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
    assert_eq!(seen.header("x-forwarded-host"), Some("app.example.com"));
    assert_eq!(
        seen.header_values("x-forwarded-user"),
        ["alice"],
        "identity is never trusted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_session_cookie_leads_to_a_new_login() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    browser.login(&env.proxy.url("/"), "alice").await;
    let jar = browser.cookies_for(&env.proxy.url("/"));
    let value = jar
        .split("; ")
        .find_map(|c| c.strip_prefix("profilegate_session="))
        .expect("session cookie")
        .to_owned();
    let mut bytes = value.clone().into_bytes();
    let i = bytes.len() / 2;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).expect("ascii");

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let before = env.upstream.count();
    for cookie in [
        format!("profilegate_session={tampered}"),
        format!("profilegate_session={}", &value[..value.len() - 4]),
        "profilegate_session=garbage".to_owned(),
        format!("profilegate_session={}", "A".repeat(5000)),
    ] {
        let resp = client
            .get(env.proxy.url("/private"))
            .header("accept", "text/html")
            .header("cookie", cookie)
            .send()
            .await
            .expect("response");
        assert_eq!(
            resp.status(),
            StatusCode::FOUND,
            "a bad cookie is anonymous, never an error"
        );
        assert!(
            location(&resp).starts_with(&env.op.issuer),
            "sent to the OP to sign in"
        );
    }
    // The untouched cookie still works.
    let ok = client
        .get(env.proxy.url("/private"))
        .header("cookie", format!("profilegate_session={value}"))
        .send()
        .await
        .expect("response");
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(env.upstream.count(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_replayed_state_gets_400_and_no_session() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    let callback = browser
        .sign_in_at_op(&env.proxy.url("/start"), "alice")
        .await;
    let state = query(&callback)["state"].clone();

    // Wrong state, missing state: 400 page, no session cookie.
    for url in [
        callback.replace(
            &format!("state={state}"),
            "state=forged-state-value-0123456789",
        ),
        callback.replace(&format!("state={state}"), ""),
    ] {
        let resp = browser.navigate(&url).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{url}");
        assert!(
            !set_cookies(&resp)
                .iter()
                .any(|c| c.starts_with("profilegate_session=") && !c.contains("Max-Age=0")),
            "no session on a failed callback"
        );
        let html = resp.text().await.expect("page");
        assert!(html.contains("Sign-in link"), "{html}");
        assert!(
            !html.contains(&state) && !html.contains("code="),
            "nothing internal shown"
        );
    }

    // The same callback from a browser without the login cookie: 400.
    let stranger = Browser::new();
    let resp = stranger.navigate(&callback).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    // The real callback works once; replaying it (even with the login cookie) does not.
    let login_cookie = browser.cookies_for(&env.proxy.url("/.profilegate/callback"));
    let ok = browser.navigate(&callback).await;
    assert_eq!(ok.status(), StatusCode::FOUND);
    let replay = http_client()
        .get(&callback)
        .header("accept", "text/html")
        .header("cookie", login_cookie)
        .send()
        .await
        .expect("response");
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert!(!set_cookies(&replay)
        .iter()
        .any(|c| c.starts_with("profilegate_session=") && !c.contains("Max-Age=0")));
    assert_eq!(env.upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_naming_another_issuer_is_refused() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    let callback = browser.sign_in_at_op(&env.proxy.url("/"), "alice").await;
    let iss = query(&callback)["iss"].clone();
    let forged = callback.replace(
        &url::form_urlencoded::byte_serialize(iss.as_bytes()).collect::<String>(),
        "https%3A%2F%2Fevil.example",
    );
    assert_ne!(forged, callback);
    let resp = browser.navigate(&forged).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session_at_the_op_and_never_redirects_off_origin() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    browser.login(&env.proxy.url("/"), "alice").await;

    let resp = browser
        .navigate(
            &env.proxy
                .url("/.profilegate/logout?rd=https%3A%2F%2Fevil.example%2F"),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert!(set_cookies(&resp)
        .iter()
        .any(|c| c.starts_with("profilegate_session=;") && c.contains("Max-Age=0")));
    let loc = location(&resp);
    assert!(
        loc.starts_with(&format!("{}/session/end?", env.op.issuer)),
        "RP-initiated logout: {loc}"
    );
    let q = query(&loc);
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(
        q["post_logout_redirect_uri"],
        env.proxy.url("/.profilegate/signed-out")
    );
    assert!(
        !q.contains_key("state"),
        "an off-origin rd is dropped, not passed on"
    );
    assert!(!loc.contains("evil"));

    // The OP accepts the request (it shows its confirmation page).
    let op_page = browser
        .client
        .get(&loc)
        .send()
        .await
        .expect("OP end_session");
    assert_eq!(op_page.status(), StatusCode::OK);

    // Signed out: the next navigation starts a new login.
    let after = browser.navigate(&env.proxy.url("/")).await;
    assert_eq!(after.status(), StatusCode::FOUND);
    assert!(location(&after).starts_with(&env.op.issuer));

    // The signed-out page only ever redirects on-origin.
    for evil in [
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "javascript:alert(1)",
    ] {
        let url = format!(
            "{}?state={}",
            env.proxy.url("/.profilegate/signed-out"),
            url::form_urlencoded::byte_serialize(evil.as_bytes()).collect::<String>()
        );
        let resp = browser.navigate(&url).await;
        assert_eq!(
            resp.status(),
            StatusCode::OK,
            "{evil}: page, not a redirect"
        );
        assert!(resp.text().await.expect("page").contains("signed out"));
    }
    let home = browser
        .navigate(&format!(
            "{}?state=%2Fhome",
            env.proxy.url("/.profilegate/signed-out")
        ))
        .await;
    assert_eq!(location(&home), env.proxy.url("/home"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_from_another_site_needs_confirmation_with_a_csrf_token() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    browser.login(&env.proxy.url("/"), "alice").await;
    let logout = env.proxy.url("/.profilegate/logout");

    let confirm = browser
        .client
        .get(&logout)
        .header("accept", "text/html")
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .expect("response");
    assert_eq!(confirm.status(), StatusCode::OK);
    assert!(
        set_cookies(&confirm).is_empty(),
        "nothing changes before confirmation"
    );
    let page = confirm.text().await.expect("page");
    let token = page
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("csrf token in the form")
        .to_owned();

    let forged = browser
        .client
        .post(&logout)
        .form(&[("csrf_token", "wrong")])
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let missing = browser.client.post(&logout).send().await.expect("post");
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    // Still signed in.
    assert_eq!(
        browser.navigate(&env.proxy.url("/still")).await.status(),
        StatusCode::OK
    );

    let ok = browser
        .client
        .post(&logout)
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(ok.status(), StatusCode::FOUND);
    assert_eq!(
        browser.navigate(&env.proxy.url("/gone")).await.status(),
        StatusCode::FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_echo_works_through_the_proxy() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    browser.login(&env.proxy.url("/"), "alice").await;
    let cookie = browser.cookies_for(&env.proxy.url("/"));

    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://127.0.0.1:{}/ws",
            env.proxy.port
        ))
        .expect("request");
    request
        .headers_mut()
        .insert("cookie", cookie.parse().expect("header"));
    let (mut ws, resp) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket upgrade");
    assert_eq!(resp.status(), 101);
    ws.send(Message::text("hello through profilegate"))
        .await
        .expect("send");
    let echoed = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("echo in time");
    assert_eq!(
        echoed
            .expect("message")
            .expect("ok")
            .into_text()
            .expect("text"),
        "hello through profilegate"
    );
    ws.close(None).await.ok();
    assert_eq!(
        env.upstream.last().header("x-forwarded-user"),
        Some("alice")
    );

    // Without a session the upgrade is refused.
    let anon =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/ws", env.proxy.port)).await;
    assert!(anon.is_err(), "anonymous WebSocket must not be upgraded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_and_response_bodies_stream_through_intact() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    browser.login(&env.proxy.url("/"), "alice").await;
    let body: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let expected = support::upstream::checksum(&body);
    let resp = browser
        .client
        .post(env.proxy.url("/upload"))
        .body(body)
        .send()
        .await
        .expect("response");
    assert_eq!(resp.status(), StatusCode::OK);
    let echoed: Recorded = resp.json().await.expect("json");
    assert_eq!(echoed.body_len, 8 * 1024 * 1024);
    assert_eq!(echoed.body_sum, expected);
    assert_eq!(echoed.method, "POST");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_op_gives_a_502_page() {
    let port = free_port();
    let dead = free_port();
    let upstream = EchoUpstream::start().await;
    let proxy = start_proxy(
        port,
        &format!("http://localhost:{dead}"),
        &upstream.url(),
        "",
        false,
    )
    .await;
    let ready = reqwest::get(format!("http://127.0.0.1:{}/readyz", proxy.admin_port))
        .await
        .expect("readyz");
    assert_eq!(
        ready.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "not ready without discovery"
    );

    let resp = Browser::new().navigate(&proxy.url("/")).await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .starts_with("text/html"));
    let html = resp.text().await.expect("page");
    assert!(html.contains("Identity provider unavailable"), "{html}");
    assert!(!html.contains(&dead.to_string()), "nothing internal shown");
    assert_eq!(upstream.count(), 0);
}

/// The proxy's own 502 page for an upstream it could not use.
async fn assert_app_unavailable_page(resp: reqwest::Response) {
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    assert!(resp
        .text()
        .await
        .expect("page")
        .contains("Application unavailable"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_upstream_gives_a_502_page_for_signed_in_users() {
    let (listener, port) = bind_gate();
    let op = TestOp::start(port, json!({}));
    let dead = free_port();
    let proxy = start_gate(
        listener,
        &op.issuer,
        &format!("http://127.0.0.1:{dead}"),
        "",
        true,
    )
    .await;
    let browser = Browser::new();
    browser.login(&proxy.url("/"), "alice").await;
    let resp = browser.navigate(&proxy.url("/orders/42")).await;
    assert_app_unavailable_page(resp).await;
    // The cause is logged with the path, for the operator.
    let log = proxy.log();
    assert!(
        log.lines()
            .any(|l| l.contains("\"status\":502") && l.contains("/orders/42")),
        "{log}"
    );
}

/// An upstream that reads each request head, then answers according to the path: `/stall`
/// never answers, `/stall-body` sends a head and 10 of 100 body bytes, then nothing.
async fn stalling_upstream() -> (u16, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                if head.starts_with(b"GET /stall-body ") {
                    let _ = conn
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
                        .await;
                }
                // Hold the connection open without another byte.
                tokio::time::sleep(Duration::from_secs(30)).await;
            });
        }
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_stops_answering_is_cut_off_after_the_read_timeout() {
    let (listener, port) = bind_gate();
    let op = TestOp::start(port, json!({}));
    let (upstream, task) = stalling_upstream().await;
    let proxy = start_gate_full(
        listener,
        &op.issuer,
        &format!("http://127.0.0.1:{upstream}"),
        "",
        r#"read_timeout = "1s""#,
        "",
        true,
    )
    .await;
    let browser = Browser::new();
    browser.login(&proxy.url("/stall"), "alice").await;

    // No response head in time: a 502 page, after about the timeout.
    let started = std::time::Instant::now();
    let resp = browser.navigate(&proxy.url("/stall")).await;
    assert_app_unavailable_page(resp).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "cut off after {took:?}");

    // A body that stops halfway: the client gets the head, then the connection ends short of
    // the announced length instead of hanging.
    let resp = browser.navigate(&proxy.url("/stall-body")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body = tokio::time::timeout(Duration::from_secs(10), resp.bytes())
        .await
        .expect("the body ends in time");
    assert!(body.is_err(), "a short body is an error, not a success");
    task.abort();
}

/// An upstream that records each request head as it came off the wire and answers `200 ok`
/// with a header of mixed case (`x-APP-thing: 1`).
async fn recording_upstream() -> (
    u16,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    tokio::task::JoinHandle<()>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = heads.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head: Vec<u8> = buf.drain(..end + 4).collect();
                        seen.lock()
                            .expect("heads")
                            .push(String::from_utf8_lossy(&head).into_owned());
                        let answer =
                            b"HTTP/1.1 200 OK\r\nx-APP-thing: 1\r\nContent-Length: 2\r\n\r\nok";
                        if conn.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    (port, heads, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_names_are_title_case_by_default_and_kept_as_sent_with_header_case_preserve() {
    // (upstream.header_case, the client's header on the app's side, the proxy's own header
    // there, the app's response header on the client's side)
    let cases = [
        (
            "",
            "X-Client-Thing: 1",
            "X-Forwarded-User: alice",
            "X-App-Thing",
        ),
        (
            r#"header_case = "preserve""#,
            "x-CLIENT-thing: 1",
            "x-forwarded-user: alice",
            "x-APP-thing",
        ),
    ];
    for (setting, client_header, own_header, app_header) in cases {
        let (listener, port) = bind_gate();
        let op = TestOp::start(port, json!({}));
        let (upstream, heads, task) = recording_upstream().await;
        let proxy = start_gate_full(
            listener,
            &op.issuer,
            &format!("http://127.0.0.1:{upstream}"),
            "",
            setting,
            "",
            true,
        )
        .await;
        let browser = Browser::new();
        browser.login(&proxy.url("/case"), "alice").await;
        let cookie = browser.cookies_for(&proxy.url("/"));
        let resp = raw::request(
            proxy.port,
            "GET",
            "/case",
            &[
                ("Cookie".to_owned(), cookie),
                ("x-CLIENT-thing".to_owned(), "1".to_owned()),
            ],
        )
        .await;
        assert_eq!(resp.status, 200, "{setting}: {resp:?}");
        assert!(
            resp.headers.iter().any(|(name, _)| name == app_header),
            "{setting}: the client sees {app_header}: {:?}",
            resp.headers
        );
        let head = heads
            .lock()
            .expect("heads")
            .last()
            .cloned()
            .expect("a request");
        for line in [client_header, own_header] {
            assert!(
                head.contains(&format!("\r\n{line}\r\n")),
                "{setting}: the app sees {line:?} in\n{head}"
            );
        }
        task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_and_sigint_stop_the_proxy_within_seconds() {
    for signal in ["TERM", "INT"] {
        let mut env = TestEnv::spawned().await;
        let took = env.proxy.signal_and_wait(signal, Duration::from_secs(10));
        assert!(
            took.is_some(),
            "SIG{signal} did not stop profilegate:\n{}",
            env.proxy.log()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints_are_not_on_the_public_port() {
    let env = TestEnv::spawned().await;
    let admin = format!("http://127.0.0.1:{}", env.proxy.admin_port);
    assert_eq!(
        reqwest::get(format!("{admin}/healthz"))
            .await
            .expect("healthz")
            .status(),
        200
    );
    assert_eq!(
        reqwest::get(format!("{admin}/readyz"))
            .await
            .expect("readyz")
            .status(),
        200
    );
    let metrics = reqwest::get(format!("{admin}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("profilegate_logins_completed_total"),
        "{metrics}"
    );
    // On the public port these are ordinary (anonymous) requests: 401, never the admin answer.
    for path in ["/healthz", "/readyz", "/metrics"] {
        let resp = reqwest::get(env.proxy.url(path)).await.expect("public");
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_reserved_routes_get_404_and_never_reach_the_upstream() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    browser.login(&env.proxy.url("/"), "alice").await;
    let resp = browser.navigate(&env.proxy.url("/.profilegate/nope")).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = browser
        .client
        .put(env.proxy.url("/.profilegate/logout"))
        .send()
        .await
        .expect("put");
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(env.upstream.count(), 0);
}

/// A signed-in user who meets an error page can still see who they are and sign out; an
/// anonymous visitor's error page has no such line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_page_names_the_signed_in_user_and_offers_a_sign_out_post() {
    let env = TestEnv::start().await;
    let anonymous = env
        .browser()
        .navigate(&env.proxy.url("/.profilegate/nope"))
        .await;
    assert_eq!(anonymous.status(), StatusCode::NOT_FOUND);
    let html = anonymous.text().await.expect("page");
    assert!(
        !html.contains("Signed in as") && !html.contains("Sign out"),
        "{html}"
    );

    let browser = env.browser();
    browser.login(&env.proxy.url("/"), "alice").await;
    let resp = browser.navigate(&env.proxy.url("/.profilegate/nope")).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let html = resp.text().await.expect("page");
    assert!(
        html.contains("Signed in as <strong>Alice</strong>"),
        "{html}"
    );
    let form = html
        .split("<form method=\"post\" action=\"")
        .nth(1)
        .expect("a sign-out form");
    assert!(
        form.starts_with("&#x2f;.profilegate&#x2f;logout\">"),
        "{form}"
    );
    let token = form
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF token");
    assert!(token.len() >= 16, "{token}");

    // The form works: its token signs the user out.
    let out = browser
        .client
        .post(env.proxy.url("/.profilegate/logout"))
        .header("origin", env.proxy.url("").trim_end_matches('/'))
        .form(&[("csrf_token", token)])
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), StatusCode::FOUND);
    assert!(set_cookies(&out)
        .iter()
        .any(|c| c.starts_with("profilegate_session=;") && c.contains("Max-Age=0")));
    assert_eq!(env.upstream.count(), 0);
}

/// Every proxy worker (`server.threads`, 2 in the tests) accepts on its own listening socket
/// (SO_REUSEPORT), so the kernel spreads new connections over the workers. With one shared
/// socket the first worker to wake took every connection queued at that moment, and a client
/// opening its connections at once could keep one worker busy and the other idle.
#[tokio::test]
async fn every_worker_listens_on_its_own_socket() {
    let env = TestEnv::spawned().await;
    let port = format!(":{:04X} ", env.proxy.port);
    let listening = || {
        let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
        table
            .lines()
            .skip(1)
            .filter(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                fields.len() > 3 && format!("{} ", fields[1]).ends_with(&port) && fields[3] == "0A"
            })
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while listening() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(listening(), 2, "listening sockets on the proxy's port");
}

/// The proxy's workers share their port (SO_REUSEPORT): a second instance started by mistake
/// must be refused instead of silently taking half of the connections.
#[tokio::test]
async fn a_second_instance_cannot_take_the_port_of_a_running_one() {
    let env = TestEnv::spawned().await;
    let store = tempfile::tempdir().expect("tempdir");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_profilegate"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PROFILEGATE_") {
            cmd.env_remove(&name);
        }
    }
    let mut child = cmd
        .arg("--config")
        .arg(&env.proxy.config_path)
        .env(
            "PROFILEGATE_SERVER_ADMIN_LISTEN",
            format!("127.0.0.1:{}", free_port()),
        )
        .env("PROFILEGATE_STORE_PATH", store.path().join("data"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("profilegate runs");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("a second instance started on the port of a running one");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr read");
    assert!(
        stderr.contains("cannot listen on") && stderr.contains("server.listen"),
        "{stderr}"
    );
    // Every new connection still reaches the first instance.
    for _ in 0..20 {
        let client = http_client();
        let r = client
            .get(format!("{}/.profilegate/jwks.json", env.proxy.origin))
            .send()
            .await
            .expect("answered");
        assert_eq!(r.status(), StatusCode::OK);
    }
}
