//! profilegate under test: the binary as a child process ([`start_proxy`]), or the gate served
//! in the test process ([`start_gate`], `profilegate::server::InProcess`), on one configuration
//! written by [`configured`].

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use profilegate::server::InProcess;
use reqwest::{Client, StatusCode};
use tracing::instrument::WithSubscriber;

use super::captured_log::{self, CapturedLog};
use super::{free_port, CLIENT_ID, CLIENT_SECRET, SESSION_SECRET};

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

    /// The process id of the binary (`None` in process, or once it has stopped).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
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
        if let Some(child) = self.child.take() {
            super::child::stop_gracefully(child, "-INT");
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
    let proxy = configured(port, issuer, upstream, extra_toml, extra_upstream, sections);
    serve_in_process(proxy, listener, wait_ready).await
}

/// An in-process gate behind an edge proxy: served on `listener`, with `public_url` the edge's
/// origin (the OIDC redirect URI and every Location point there).
pub async fn start_gate_behind(
    listener: TcpListener,
    public_url: &str,
    issuer: &str,
    upstream: &str,
    extra_toml: &str,
    sections: &str,
) -> Proxy {
    let port = listener.local_addr().expect("gate address").port();
    let mut proxy = configured(port, issuer, upstream, extra_toml, "", sections);
    proxy.origin = public_url.to_owned();
    let config = std::fs::read_to_string(&proxy.config_path).expect("config");
    let config = config.replacen(
        &format!("public_url = \"http://127.0.0.1:{port}\""),
        &format!("public_url = \"{public_url}\""),
        1,
    );
    std::fs::write(&proxy.config_path, config).expect("config written");
    serve_in_process(proxy, listener, true).await
}

/// Serves `proxy`'s configuration in this process on `listener`.
async fn serve_in_process(mut proxy: Proxy, listener: TcpListener, wait_ready: bool) -> Proxy {
    // As the binary reads it, but with no PROFILEGATE_* overrides (the spawned binary gets
    // none either).
    let no_env: &[(&str, &str)] = &[];
    let config = profilegate::config::Config::load(&proxy.config_path, no_env)
        .unwrap_or_else(|errors| panic!("the test configuration is refused: {errors:?}"));
    captured_log::route_log_records();
    let log = CapturedLog::default();
    let dispatch = log.dispatch(&config.log.filter());
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
pub fn configured(
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

{session}

{store}

{log}

{sections}
"#,
        extra_server = extra_toml,
        // A `[session]` table among `sections` replaces the default one (it must give the
        // secret, `SESSION_SECRET` for the tests' sealers).
        session = if sections.contains("[session]") {
            String::new()
        } else {
            format!("[session]\nsecret = \"{SESSION_SECRET}\"")
        },
        // A `[store]` table among `sections` replaces the default one (sled in the temporary
        // directory).
        store = if sections.contains("[store]") {
            String::new()
        } else {
            format!("[store]\npath = \"{}\"", dir.path().join("data").display())
        },
        // Likewise a `[log]` table (log.access, another level) replaces the default one.
        log = if sections.contains("[log]") {
            ""
        } else {
            "[log]\nlevel = \"info\"\nformat = \"json\""
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
