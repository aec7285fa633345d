//! The test OP: `tests/op/server.js` (npm oidc-provider) as a child process, with one client
//! registered for the proxy under test.

use std::process::{Child, ChildStdin, Command};

use reqwest::StatusCode;
use serde_json::json;

use super::{child, http_client, op_keys, repo, CLIENT_ID, CLIENT_SECRET};

/// The test OP, stopped when dropped (its stdin closes, and it is killed too).
pub struct TestOp {
    child: Child,
    _stdin: ChildStdin,
    stderr: child::StderrFile,
    pub issuer: String,
}

impl TestOp {
    /// Starts the OP with one client registered for a proxy on `proxy_port`. It signs with the
    /// run's shared RSA key and has its test controls on ([`TestOp::rotate_signing_key`]);
    /// `extra` merges into its configuration (see `tests/op/server.js`) and wins.
    pub fn start(proxy_port: u16, extra: serde_json::Value) -> TestOp {
        let public = format!("http://127.0.0.1:{proxy_port}");
        let mut config = json!({
            "host": "localhost",
            "port": 0,
            "test_controls": true,
            "clients": [{
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [format!("{public}/.profilegate/callback")],
                "post_logout_redirect_uris": [format!("{public}/.profilegate/signed-out")],
            }],
        });
        // Keys made once per run (the OP generating its own at every start is what hung).
        for (key, which) in [
            ("signing_key_file", op_keys::OpKey::Signing),
            ("rotation_key_file", op_keys::OpKey::Rotation),
        ] {
            if let Some(path) = op_keys::op_key_file(which) {
                config[key] = json!(path);
            }
        }
        if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                c.insert(k.clone(), v.clone());
            }
        }
        let op_dir = repo().join("tests/op");
        assert!(
            op_dir.join("node_modules/oidc-provider").exists(),
            "the test OP is not installed: run `npm ci` in tests/op (the README's test command does)"
        );
        let started = child::start_with_ready_line(
            Command::new("node")
                .arg(op_dir.join("server.js"))
                .arg(config.to_string()),
            "the test OP (tests/op/server.js)",
            child::READY_LINE_LIMIT,
        );
        let line = started.ready.clone();
        let Some(issuer) = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|ready| Some(ready["issuer"].as_str()?.to_owned()))
        else {
            started.fail(&format!("the test OP printed a bad ready line {line:?}"));
        };
        TestOp {
            child: started.child,
            _stdin: started.stdin,
            stderr: started.stderr,
            issuer,
        }
    }

    /// What the OP wrote to stderr so far (oidc-provider's notices, `test-op:` error lines):
    /// worth adding to a failing assertion's message.
    pub fn stderr(&self) -> String {
        self.stderr.read()
    }

    /// From now on the OP signs with a new RSA key (a new `kid`, first in its JWKS; the old
    /// keys stay listed after it). Returns the new key's `kid`.
    pub async fn rotate_signing_key(&self) -> String {
        let resp = http_client()
            .post(format!("{}/__test/rotate-signing-key", self.issuer))
            .send()
            .await
            .unwrap_or_else(|e| panic!("key rotation request: {e}\n{}", self.stderr()));
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        match body["kid"].as_str() {
            Some(kid) if status == StatusCode::OK => kid.to_owned(),
            _ => panic!(
                "the OP did not rotate its key ({status} {body}); is \"test_controls\" off?\n{}",
                self.stderr()
            ),
        }
    }

    /// POSTs `body` to the test control `path` (`/__test/...`, "test_controls" on) and returns
    /// its JSON answer; panics with the OP's stderr unless it answers 200.
    pub async fn control(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let resp = http_client()
            .post(format!("{}{path}", self.issuer))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("test control {path}: {e}\n{}", self.stderr()));
        let status = resp.status();
        let answer: serde_json::Value = resp.json().await.unwrap_or_default();
        assert_eq!(
            status,
            StatusCode::OK,
            "test control {path} answered {answer}\n{}",
            self.stderr()
        );
        answer
    }

    /// From now on `login`'s claims include `claims` (a null removes one): the next userinfo
    /// answer (a refresh's too) carries them.
    pub async fn set_claims(&self, login: &str, claims: serde_json::Value) {
        self.control(
            "/__test/set-claims",
            json!({"login": login, "claims": claims}),
        )
        .await;
    }

    /// How many refresh_token grant requests the OP's token endpoint has received.
    pub async fn refresh_grants(&self) -> u64 {
        let answer = self.control("/__test/refresh-grants", json!({})).await;
        answer["count"].as_u64().expect("a count")
    }

    /// Destroys every grant of `login` at the OP: its refresh tokens are refused from now on.
    /// Returns how many grants went.
    pub async fn revoke_grants(&self, login: &str) -> u64 {
        let answer = self
            .control("/__test/revoke-grants", json!({"login": login}))
            .await;
        answer["revoked"].as_u64().expect("a number")
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TestOp {
    fn drop(&mut self) {
        self.stop();
    }
}
