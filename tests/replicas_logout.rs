//! Issue 19's "done when": two profilegate binaries on one PostgreSQL store, the real test OP.
//! Alice signs in on replica A; Bob has a session on A and another on B. Alice signs out at the
//! OP, whose back-channel logout goes to A only; her next request on B, within 2 s, is sent to
//! login, while Bob's sessions on both replicas are untouched.
//!
//! Needs `PG_TEST_URL` (tests/run.sh starts PostgreSQL); without it the test says so and
//! returns, unless `PG_TEST_REQUIRED` is set.

mod support;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use support::op_logout::backchannel_op;
use support::*;

/// A navigation to `proxy`'s `path` with `cookie` (a copy of a browser's, so the answer's
/// `Set-Cookie` changes no jar): its status and `Location`.
async fn navigate_with(proxy: &Proxy, cookie: &str, path: &str) -> (StatusCode, Option<String>) {
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
        .get(proxy.url(path))
        .header("cookie", cookie)
        .header("accept", "text/html")
        .send()
        .await
        .expect("navigation");
    let loc = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (resp.status(), loc)
}

/// Signs `who` in on `proxy` in `browser`; checks the upstream sees them; their cookie.
async fn signed_in(browser: &Browser, proxy: &Proxy, upstream: &EchoUpstream, who: &str) -> String {
    let done = browser.login(&proxy.url("/"), who).await;
    assert!(
        done.status().is_redirection(),
        "{who} signed in: {}",
        proxy.log()
    );
    let cookie = browser.cookies_for(&proxy.url("/"));
    let (status, _) = navigate_with(proxy, &cookie, "/hello").await;
    assert_eq!(status, StatusCode::OK, "{}", proxy.log());
    assert_eq!(upstream.last().header("x-forwarded-user"), Some(who));
    cookie
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_at_the_op_reaches_the_other_replica_within_two_seconds() {
    let Some(store) = support::pg::pg_store("replicas_logout").await else {
        return;
    };
    let (port_a, port_b) = (free_port(), free_port());
    // One client registration for both replicas; the OP's logout tokens go to A.
    let op = TestOp::start(port_a, backchannel_op(&[port_a, port_b]));
    let upstream = EchoUpstream::start().await;
    let a = start_proxy_with(port_a, &op.issuer, &upstream.url(), "", &store, true).await;
    let b = start_proxy_with(port_b, &op.issuer, &upstream.url(), "", &store, true).await;

    let alice = Browser::new();
    let alices = signed_in(&alice, &a, &upstream, "alice").await;
    // Her cookie works on B too (same session.secret, as behind a load balancer).
    let (status, _) = navigate_with(&b, &alices, "/alice-on-b").await;
    assert_eq!(status, StatusCode::OK, "{}", b.log());
    assert_eq!(upstream.last().header("x-forwarded-user"), Some("alice"));
    let bob_on_a = signed_in(&Browser::new(), &a, &upstream, "bob").await;
    let bob_on_b = signed_in(&Browser::new(), &b, &upstream, "bob").await;
    assert_ne!(bob_on_a, bob_on_b, "two sessions of bob");

    alice.sign_out_at_op(&op.issuer).await;
    // The OP answered the sign-out form after A answered its logout token.
    let signed_out = Instant::now();
    assert!(
        a.log().contains("back-channel logout"),
        "A received the logout token:\n{}\n{}",
        op.stderr(),
        a.log()
    );

    // B learns it from the store: request by request until B sends her to login, 2 s at most.
    let deadline = signed_out + Duration::from_secs(2);
    let mut requests = 0;
    let delay = loop {
        requests += 1;
        let (status, loc) = navigate_with(&b, &alices, &format!("/b-after-{requests}")).await;
        if status == StatusCode::FOUND {
            assert!(
                loc.as_deref().is_some_and(|l| l.starts_with(&op.issuer)),
                "sent to the OP to sign in: {loc:?}"
            );
            break signed_out.elapsed();
        }
        assert_eq!(status, StatusCode::OK, "{}", b.log());
        assert!(
            Instant::now() < deadline,
            "B still served alice 2 s after she signed out at the OP ({requests} requests):\n{}",
            b.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!(
        "replica B sent alice to login {delay:?} after she signed out at the OP (request {requests})"
    );
    assert!(delay <= Duration::from_secs(2));

    // And A at once, and for good on both.
    for (replica, name) in [(&a, "A"), (&b, "B")] {
        let (status, loc) = navigate_with(replica, &alices, "/alice-again").await;
        assert_eq!(status, StatusCode::FOUND, "{name}: {loc:?}");
    }
    // A counted the logout it carried out; B received none.
    for (replica, ok) in [(&a, 1), (&b, 0)] {
        let metrics = http_client()
            .get(format!("http://127.0.0.1:{}/metrics", replica.admin_port))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        for (outcome, n) in [("ok", ok), ("refused", 0), ("failed", 0)] {
            let line =
                format!("profilegate_backchannel_logouts_total{{outcome=\"{outcome}\"}} {n}");
            assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
        }
    }
    // Bob's sessions on both replicas are untouched, each on both replicas.
    for (cookie, which) in [
        (&bob_on_a, "bob's session from A"),
        (&bob_on_b, "bob's from B"),
    ] {
        for (replica, name) in [(&a, "A"), (&b, "B")] {
            let (status, _) = navigate_with(replica, cookie, "/bob-after").await;
            assert_eq!(
                status,
                StatusCode::OK,
                "{which} on {name}: {}",
                replica.log()
            );
            assert_eq!(upstream.last().header("x-forwarded-user"), Some("bob"));
        }
    }
}
