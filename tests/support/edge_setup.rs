//! Forward-auth end to end (tests/forward_auth.rs): the OP, the echo app, profilegate in
//! forward-auth mode and an edge proxy in front ([`Setup`]), and the browser's steps through the
//! edge with what each edge makes of profilegate's answers.

use reqwest::{Response, StatusCode};
use serde_json::json;

use super::edge::{Edge, EdgeKind, EdgePorts};
use super::questions::{company, profiling};
use super::*;

/// Headers a client sends to pass for someone else: none may reach the app with its value.
pub const SPOOFED: &[(&str, &str)] = &[
    ("X-Forwarded-User", "mallory"),
    ("X-Forwarded-Email", "mallory@evil.example"),
    ("X-Forwarded-Groups", "admins"),
    ("X-Profile-Company", "Spoofed Corp"),
    ("X_Forwarded_User", "mallory"),
    ("x-forwarded_user", "mallory"),
    ("X-Profile-Other", "forged"),
    ("X-Profile-Jwt", "forged.jwt.value"),
];

/// The OP, the app (echo upstream), profilegate in forward-auth mode and the edge in front.
pub struct Setup {
    pub op: TestOp,
    pub app: EchoUpstream,
    pub gate: Proxy,
    pub edge: Edge,
}

impl Setup {
    /// `extra_sections` (whole TOML tables) are appended to profilegate's configuration.
    pub async fn start(kind: EdgeKind, extra_sections: &str) -> Setup {
        let (listener, gate_port) = bind_gate();
        let app = EchoUpstream::start().await;
        let edge_port = free_port();
        let op = TestOp::start(edge_port, json!({}));
        let public_url = format!("http://127.0.0.1:{edge_port}");
        let sections = format!(
            "{}\n[[routes]]\npath = \"/public/\"\npublic = true\n{extra_sections}",
            profiling(&["questions_per_login = 1"], &[company()])
        );
        let gate = start_gate_behind(
            listener,
            &public_url,
            &op.issuer,
            &app.url(),
            "mode = \"forward_auth\"\ntrusted_proxies = [\"127.0.0.1\"]",
            &sections,
        )
        .await;
        let ports = EdgePorts {
            edge: edge_port,
            gate: gate_port,
            app: app.port,
        };
        let edge = tokio::task::block_in_place(|| Edge::start(kind, ports));
        Setup {
            op,
            app,
            gate,
            edge,
        }
    }

    /// What a failing assertion should show: the edge's and profilegate's logs, the OP's.
    pub fn logs(&self) -> String {
        format!(
            "--- {:?} ---\n{}\n--- profilegate ---\n{}\n--- OP ---\n{}",
            self.edge.kind,
            self.edge.output(),
            self.gate.log(),
            self.op.stderr()
        )
    }

    /// Follows the edge's redirects by hand from a navigation to `url` until one leads to
    /// the OP; returns the chain of edge Locations and the OP's URL.
    pub async fn redirects_to_op(&self, browser: &Browser, url: &str) -> (Vec<String>, String) {
        let mut chain = Vec::new();
        let mut next = url.to_owned();
        for _ in 0..5 {
            let resp = browser.navigate(&next).await;
            assert!(
                resp.status().is_redirection(),
                "{next} answered {} instead of a redirect: {}\n{}",
                resp.status(),
                resp.text().await.unwrap_or_default(),
                self.logs()
            );
            let loc = absolute(&next, &location(&resp));
            if loc.starts_with(&self.op.issuer) {
                return (chain, loc);
            }
            assert!(
                loc.starts_with(&self.edge.origin()),
                "a redirect left the edge for {loc}\n{}",
                self.logs()
            );
            chain.push(loc.clone());
            next = loc;
        }
        panic!(
            "no redirect to the OP from {url}: {chain:?}\n{}",
            self.logs()
        );
    }

    /// Follows the edge's redirects by hand from `url` to the first page that is not one;
    /// returns the URL that answered and the answer.
    pub async fn settle(&self, browser: &Browser, url: &str) -> (String, Response) {
        let mut next = url.to_owned();
        for _ in 0..6 {
            let resp = browser.navigate(&next).await;
            if !resp.status().is_redirection() {
                return (next, resp);
            }
            let loc = absolute(&next, &location(&resp));
            assert!(
                loc.starts_with(&self.edge.origin()),
                "{next} redirected off the edge to {loc}\n{}",
                self.logs()
            );
            next = loc;
        }
        panic!("too many redirects from {url}\n{}", self.logs());
    }

    /// Asserts that `seen` carries none of [`SPOOFED`]'s values, and no Caddy placeholder text.
    pub fn assert_no_spoofed_values(&self, seen: &Recorded) {
        for (name, value) in &seen.headers {
            for (_, spoofed) in SPOOFED {
                assert!(
                    !value.contains(spoofed),
                    "the app received the client's {name}: {value}\n{}",
                    self.logs()
                );
            }
            assert!(
                !value.contains("{http."),
                "the app received an unfilled placeholder in {name}: {value}\n{}",
                self.logs()
            );
            assert!(
                !name.contains('_'),
                "the app received the client's {name}\n{}",
                self.logs()
            );
        }
        assert!(seen.header_values("x-profile-other").is_empty(), "{seen:?}");
    }
}

/// A navigation to `url` with [`SPOOFED`] headers.
pub async fn navigate_spoofed(browser: &Browser, url: &str) -> Response {
    let mut req = browser
        .client
        .get(url)
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8");
    for (name, value) in SPOOFED {
        req = req.header(*name, *value);
    }
    req.send().await.expect("request")
}

/// An API call (`Accept: application/json`) to `url`.
pub async fn api_call(browser: &Browser, url: &str) -> Response {
    browser
        .client
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .expect("request")
}

/// Asserts a 401 JSON answer with `error = "unauthenticated"` and no Location.
pub async fn assert_unauthenticated(resp: Response, setup: &Setup) {
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{}", setup.logs());
    assert!(resp.headers().get("location").is_none());
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let body: serde_json::Value = resp.json().await.expect("JSON body");
    assert_eq!(body["error"], "unauthenticated", "{body}");
}

/// The first sign-in redirect of a navigation: nginx turns profilegate's 401 into a 302 to
/// `{prefix}/start?rd=…`, which sends the browser on to the OP; Caddy passes profilegate's 302
/// to the OP straight through.
pub fn assert_sign_in_chain(setup: &Setup, chain: &[String], original: &str, op_url: &str) {
    match setup.edge.kind {
        EdgeKind::Nginx => {
            assert_eq!(chain.len(), 1, "{chain:?}");
            assert!(
                chain[0].starts_with(&setup.edge.url("/.profilegate/start?")),
                "{chain:?}"
            );
            assert_eq!(query(&chain[0])["rd"], original);
        }
        EdgeKind::Caddy => assert!(chain.is_empty(), "{chain:?}"),
    }
    let op_query = query(op_url);
    assert_eq!(
        op_query["redirect_uri"],
        setup.edge.url("/.profilegate/callback")
    );
    assert_eq!(op_query["client_id"], CLIENT_ID);
}
