//! Test harness: a real OpenID Provider (npm oidc-provider, `tests/op/server.js`), an echo
//! upstream that records what it received, and profilegate — all on loopback, on ports chosen
//! at run time. profilegate runs in the test process ([`TestEnv::start`], [`start_gate`]: the
//! gate `profilegate::server::InProcess` builds as the binary does, on `127.0.0.1:0`) or as the
//! binary ([`TestEnv::spawned`], [`start_proxy`]) where the test is about the process: its
//! command line, signals, restarts, several replicas, the admin listener.
#![allow(dead_code)]

#[allow(dead_code)]
pub mod captured_log;
#[allow(dead_code)]
pub mod child;
#[allow(dead_code)]
pub mod headers;
#[allow(dead_code)]
pub mod op_keys;
#[allow(dead_code)]
pub mod questions;
#[allow(dead_code)]
pub mod raw;
#[allow(dead_code)]
pub mod upstream;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use profilegate::server::InProcess;
use reqwest::cookie::Jar;
use reqwest::redirect::Policy;
use reqwest::{Client, Response, StatusCode};
use serde_json::json;
use tracing::instrument::WithSubscriber;

#[allow(unused_imports)]
pub use upstream::{EchoUpstream, Recorded};

use captured_log::CapturedLog;

pub const CLIENT_ID: &str = "profilegate";
pub const CLIENT_SECRET: &str = "test-client-secret";
pub const SESSION_SECRET: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A port free right now on 127.0.0.1, for a server another process binds later (the check's
/// listener is closed before returning). It comes from below the kernel's ephemeral range: the
/// tests' many outgoing connections take ephemeral ports, and one of them could otherwise take a
/// port between this check and the proxy's bind ("Address already in use"). Each port is handed
/// out at most once per test binary.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 10_000;
    // The first ephemeral port (Linux default 32768); outgoing connections stay at or above it.
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .filter(|&low| low > FIRST + 1_000)
        .unwrap_or(32_768);
    let span = ephemeral - FIRST;
    // Each test binary starts somewhere else in the range, then walks it in order.
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7_919) % span,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..span {
        let offset = NEXT.fetch_add(1, Ordering::SeqCst) % span;
        let Ok(port) = u16::try_from(FIRST + offset) else {
            continue;
        };
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on 127.0.0.1 between {FIRST} and {ephemeral}");
}

/// A client for one-off requests in tests: like `Client::new()`, but a server that accepts and
/// never answers fails the request after 20 s instead of hanging the test.
pub fn http_client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

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

/// A running profilegate: the binary as a child process, or the gate in this test process.
pub struct Proxy {
    child: Option<Child>,
    /// The in-process gate and its log; then there is no process and no admin listener
    /// (`admin_port` is configured, not listened on).
    /// (`None` once shut down).
    in_process: Option<(Option<InProcess>, CapturedLog)>,
    pub port: u16,
    pub admin_port: u16,
    pub origin: String,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
}

impl Proxy {
    /// What profilegate logged so far (JSON lines).
    pub fn log(&self) -> String {
        if let Some((_, log)) = &self.in_process {
            return log.text();
        }
        std::fs::read_to_string(self.dir.path().join("profilegate.log")).unwrap_or_default()
    }

    /// Stops an in-process gate as SIGTERM stops the process: no more connections, the
    /// requests in flight finished, every connection closed, the store synced. Its log stays.
    pub async fn shut_down(&mut self) {
        let (running, log) = self
            .in_process
            .as_mut()
            .expect("an in-process gate (a process is stopped with signal_and_wait)");
        let gate = running.take().expect("the gate is running");
        let stopped = tokio::time::timeout(Duration::from_secs(20), gate.shutdown()).await;
        assert!(
            matches!(stopped, Ok(Ok(()))),
            "the in-process gate did not stop cleanly ({stopped:?}):\n{}",
            log.text()
        );
    }

    /// Panics unless this is the binary: `what` needs a process.
    fn expect_process(&self, what: &str) {
        assert!(
            self.in_process.is_none(),
            "{what} needs the profilegate process: start it with TestEnv::spawned or start_proxy"
        );
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }

    /// Sends `signal` (INT or TERM) and returns how long the process took to exit.
    pub fn signal_and_wait(&mut self, signal: &str, limit: Duration) -> Option<Duration> {
        self.expect_process("a signal");
        let child = self.child.as_mut()?;
        let started = Instant::now();
        Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .expect("kill runs");
        while started.elapsed() < limit {
            if let Ok(Some(_)) = child.try_wait() {
                self.child = None;
                return Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Writes a configuration and starts profilegate; waits until it is ready (or has started
/// when `wait_ready` is false, for an OP that cannot be discovered).
pub async fn start_proxy(
    port: u16,
    issuer: &str,
    upstream: &str,
    extra_toml: &str,
    wait_ready: bool,
) -> Proxy {
    start_proxy_with(port, issuer, upstream, extra_toml, "", wait_ready).await
}

/// Like [`start_proxy`], with `sections` (whole TOML tables) appended to the configuration.
pub async fn start_proxy_with(
    port: u16,
    issuer: &str,
    upstream: &str,
    extra_toml: &str,
    sections: &str,
    wait_ready: bool,
) -> Proxy {
    start_proxy_full(port, issuer, upstream, extra_toml, "", sections, wait_ready).await
}

/// Like [`start_proxy_with`], with `extra_upstream` appended to the `[upstream]` table.
pub async fn start_proxy_full(
    port: u16,
    issuer: &str,
    upstream: &str,
    extra_toml: &str,
    extra_upstream: &str,
    sections: &str,
    wait_ready: bool,
) -> Proxy {
    let mut proxy = configured(port, issuer, upstream, extra_toml, extra_upstream, sections);
    proxy.spawn(wait_ready).await;
    proxy
}

/// A listener for an in-process gate on `127.0.0.1:0`, and its port: bound before the OP
/// starts, which must know the callback URL.
pub fn bind_gate() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the gate's listener");
    let port = listener.local_addr().expect("gate address").port();
    (listener, port)
}

/// [`start_proxy`] in this process: the gate served on `listener` (see [`bind_gate`]).
pub async fn start_gate(
    listener: TcpListener,
    issuer: &str,
    upstream: &str,
    extra_toml: &str,
    wait_ready: bool,
) -> Proxy {
    start_gate_full(listener, issuer, upstream, extra_toml, "", "", wait_ready).await
}

/// [`start_proxy_full`] in this process: the gate served on `listener` (see [`bind_gate`]).
pub async fn start_gate_full(
    listener: TcpListener,
    issuer: &str,
    upstream: &str,
    extra_toml: &str,
    extra_upstream: &str,
    sections: &str,
    wait_ready: bool,
) -> Proxy {
    let port = listener.local_addr().expect("gate address").port();
    let mut proxy = configured(port, issuer, upstream, extra_toml, extra_upstream, sections);
    // As the binary reads it, but with no PROFILEGATE_* overrides (the spawned binary gets
    // none either).
    let no_env: &[(&str, &str)] = &[];
    let config = profilegate::config::Config::load(&proxy.config_path, no_env)
        .unwrap_or_else(|errors| panic!("the test configuration is refused: {errors:?}"));
    captured_log::route_log_records();
    let log = CapturedLog::default();
    let dispatch = log.dispatch(&config.log.level);
    // What the binary logs before start-up (src/main.rs).
    tracing::dispatcher::with_default(&dispatch, || {
        for warning in config.warnings() {
            tracing::warn!("{warning}");
        }
    });
    let started = InProcess::start(config, listener)
        .with_subscriber(dispatch)
        .await;
    let gate = started.unwrap_or_else(|e| {
        panic!(
            "the in-process gate did not start: {:#}\n{}",
            anyhow::Error::from(e),
            log.text()
        )
    });
    if wait_ready {
        // Discovery ran at start: ready now, or not until a login retries it (as /readyz).
        let deadline = Instant::now() + Duration::from_secs(30);
        while !gate.ready().await {
            assert!(
                Instant::now() < deadline,
                "the in-process gate did not become ready in 30 s:\n{}",
                log.text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    proxy.in_process = Some((Some(gate), log));
    proxy
}

/// Writes the configuration of a proxy on `port` (admin listener, store and log in a new
/// temporary directory) and returns it, not started.
fn configured(
    port: u16,
    issuer: &str,
    upstream: &str,
    extra_toml: &str,
    extra_upstream: &str,
    sections: &str,
) -> Proxy {
    let admin_port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let origin = format!("http://127.0.0.1:{port}");
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
public_url = "{origin}"
admin_listen = "127.0.0.1:{admin_port}"
threads = 2
{extra_server}

[upstream]
url = "{upstream}"
{extra_upstream}

[oidc]
issuer = "{issuer}"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
timeout = "3s"

[session]
secret = "{SESSION_SECRET}"

{store}

[log]
level = "info"
format = "json"

{sections}
"#,
        extra_server = extra_toml,
        // A `[store]` table among `sections` replaces the default one (sled in the temporary
        // directory).
        store = if sections.contains("[store]") {
            String::new()
        } else {
            format!("[store]\npath = \"{}\"", dir.path().join("data").display())
        },
    );
    let config_path = dir.path().join("profilegate.toml");
    std::fs::File::create(&config_path)
        .and_then(|mut f| f.write_all(config.as_bytes()))
        .expect("config written");
    Proxy {
        child: None,
        in_process: None,
        port,
        admin_port,
        origin,
        dir,
        config_path,
    }
}

impl Proxy {
    /// Starts the process on the existing configuration and waits until it answers.
    pub async fn spawn(&mut self, wait_ready: bool) {
        self.expect_process("spawning");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("profilegate.log"))
            .expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_profilegate"));
        // The configuration file is the whole truth: a developer's own PROFILEGATE_* exports
        // must not reach the proxy under test.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("PROFILEGATE_") {
                cmd.env_remove(&name);
            }
        }
        let child = cmd
            .arg("--config")
            .arg(&self.config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("profilegate starts");
        self.child = Some(child);
        let admin = format!(
            "http://127.0.0.1:{}/{}",
            self.admin_port,
            if wait_ready { "readyz" } else { "healthz" }
        );
        // Each probe has its own timeout: a listener that accepts and never answers must not
        // hold the loop past its deadline.
        let client = Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client.get(&admin).send().await {
                if r.status() == StatusCode::OK {
                    return;
                }
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                panic!(
                    "profilegate exited ({status}) before it was ready:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "profilegate did not become ready in 30 s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the process (SIGINT) and starts it again on the same configuration and store.
    pub async fn restart(&mut self) {
        self.expect_process("a restart");
        assert!(
            self.signal_and_wait("INT", Duration::from_secs(10))
                .is_some(),
            "profilegate did not stop:\n{}",
            self.log()
        );
        self.spawn(true).await;
    }
}

/// OP + echo upstream + profilegate (in this process unless [`TestEnv::spawned`]).
pub struct TestEnv {
    pub op: TestOp,
    pub upstream: EchoUpstream,
    pub proxy: Proxy,
}

impl TestEnv {
    /// The gate in this process (see [`start_gate`]).
    pub async fn start() -> TestEnv {
        Self::start_with("", json!({})).await
    }

    /// `extra_server` is appended to the `[server]` table; `op_extra` merges into the OP config.
    pub async fn start_with(extra_server: &str, op_extra: serde_json::Value) -> TestEnv {
        Self::start_full(extra_server, "", op_extra).await
    }

    /// `sections` are whole TOML tables appended to the configuration.
    pub async fn start_full(
        extra_server: &str,
        sections: &str,
        op_extra: serde_json::Value,
    ) -> TestEnv {
        Self::start_upstream_full(extra_server, "", sections, op_extra).await
    }

    /// [`TestEnv::start_full`] with `extra_upstream` appended to the `[upstream]` table.
    pub async fn start_upstream_full(
        extra_server: &str,
        extra_upstream: &str,
        sections: &str,
        op_extra: serde_json::Value,
    ) -> TestEnv {
        let (listener, port) = bind_gate();
        Self::assemble(port, op_extra, |issuer, upstream| async move {
            start_gate_full(
                listener,
                &issuer,
                &upstream,
                extra_server,
                extra_upstream,
                sections,
                true,
            )
            .await
        })
        .await
    }

    /// The profilegate binary as a child process, for a test about the process (signals,
    /// restarts, the admin listener, a second process on the same configuration).
    pub async fn spawned() -> TestEnv {
        Self::spawned_full("", "", json!({})).await
    }

    /// [`TestEnv::start_full`] with the binary as a child process.
    pub async fn spawned_full(
        extra_server: &str,
        sections: &str,
        op_extra: serde_json::Value,
    ) -> TestEnv {
        let port = free_port();
        Self::assemble(port, op_extra, |issuer, upstream| async move {
            start_proxy_with(port, &issuer, &upstream, extra_server, sections, true).await
        })
        .await
    }

    /// The OP for a proxy on `port`, the echo upstream, then the proxy `start` makes from the
    /// OP's issuer and the upstream's URL.
    async fn assemble<F>(
        port: u16,
        op_extra: serde_json::Value,
        start: impl FnOnce(String, String) -> F,
    ) -> TestEnv
    where
        F: std::future::Future<Output = Proxy>,
    {
        let op = TestOp::start(port, op_extra);
        let upstream = EchoUpstream::start().await;
        let proxy = start(op.issuer.clone(), upstream.url()).await;
        TestEnv {
            op,
            upstream,
            proxy,
        }
    }

    /// A browser-like client: its own cookie jar, no automatic redirects.
    pub fn browser(&self) -> Browser {
        Browser::new()
    }
}

/// A client that behaves like a browser: keeps cookies per host, follows nothing by itself.
pub struct Browser {
    pub jar: Arc<Jar>,
    pub client: Client,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        let jar = Arc::new(Jar::default());
        let client = Client::builder()
            .redirect(Policy::none())
            .cookie_provider(jar.clone())
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client");
        Self { jar, client }
    }

    /// A top-level navigation (Accept: text/html).
    pub async fn navigate(&self, url: &str) -> Response {
        self.client
            .get(url)
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .send()
            .await
            .expect("request")
    }

    /// The cookies this browser would send to `url`.
    pub fn cookies_for(&self, url: &str) -> String {
        use reqwest::cookie::CookieStore;
        self.jar
            .cookies(&url.parse().expect("url"))
            .map(|v| v.to_str().unwrap_or_default().to_owned())
            .unwrap_or_default()
    }

    /// Signs in as `login` at the OP, starting from a navigation to `url` on the proxy.
    /// Returns the callback URL the OP redirected to (not yet visited).
    pub async fn sign_in_at_op(&self, url: &str, login: &str) -> String {
        let first = self.navigate(url).await;
        assert_eq!(
            first.status(),
            StatusCode::FOUND,
            "navigation should redirect to the OP"
        );
        self.sign_in_from(location(&first), login).await
    }

    /// Signs in as `login` at the OP, starting from its authorization URL `op_url` (the
    /// proxy's login cookie must already be in this browser's jar). Returns the callback URL
    /// the OP redirected to (not yet visited).
    pub async fn sign_in_from(&self, op_url: String, login: &str) -> String {
        let mut next = op_url;
        for _ in 0..20 {
            if next.contains("/.profilegate/callback") {
                return next;
            }
            let resp = self.client.get(&next).send().await.expect("OP request");
            if resp.status().is_redirection() {
                next = absolute(&next, &location(&resp));
                continue;
            }
            assert_eq!(resp.status(), StatusCode::OK, "OP page {next}");
            let page = resp.text().await.expect("OP page body");
            let form: Vec<(&str, &str)> = if page.contains("name=\"password\"") {
                vec![("prompt", "login"), ("login", login), ("password", "any")]
            } else {
                vec![("prompt", "consent")]
            };
            let posted = self
                .client
                .post(&next)
                .form(&form)
                .send()
                .await
                .expect("OP form");
            assert!(
                posted.status().is_redirection(),
                "OP form answered {}",
                posted.status()
            );
            next = absolute(&next, &location(&posted));
        }
        panic!("the OP never redirected back to the proxy");
    }

    /// A complete login: navigation to `url`, OP sign-in, callback. Returns the callback's answer.
    pub async fn login(&self, url: &str, login: &str) -> Response {
        let callback = self.sign_in_at_op(url, login).await;
        self.navigate(&callback).await
    }
}

/// The `Location` header of a response.
/// The value of the form field `name` in a page (a hidden input's, say), with the entities
/// minijinja's escaping produces decoded as a browser would.
pub fn form_value(html: &str, name: &str) -> String {
    html.split(&format!("name=\"{name}\" value=\""))
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no {name} in the page:\n{html}"))
        .replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

pub fn location(resp: &Response) -> String {
    resp.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no Location in a {} answer", resp.status()))
        .to_owned()
}

/// Resolves a possibly relative `Location` against the URL it came from.
pub fn absolute(base: &str, loc: &str) -> String {
    url::Url::parse(base)
        .and_then(|b| b.join(loc))
        .map(|u| u.to_string())
        .unwrap_or_else(|_| loc.to_owned())
}

/// The `Set-Cookie` headers of a response.
pub fn set_cookies(resp: &Response) -> Vec<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect()
}

/// Query parameters of a URL.
pub fn query(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url)
        .expect("url")
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_profilegate"))
}
