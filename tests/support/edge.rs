//! Real edge proxies in front of profilegate in forward-auth mode: Debian's nginx
//! (`auth_request`) and Caddy (`forward_auth`), each run on the configuration block the README
//! shows, taken from README.md verbatim with only its addresses replaced, inside a main
//! configuration of the test's own (temporary directory, foreground, current user). Every wait
//! has a deadline and fails with the edge's stderr.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::repo;

/// How long an edge proxy may take to accept connections.
pub const EDGE_READY_LIMIT: Duration = Duration::from_secs(20);

/// The addresses the README's blocks use, which the tests replace with their own ports.
pub const EDGE_PLACEHOLDER: &str = "127.0.0.1:8000";
pub const GATE_PLACEHOLDER: &str = "127.0.0.1:4180";
pub const APP_PLACEHOLDER: &str = "127.0.0.1:3000";

/// The Debian nginx module the README's nginx block needs (`more_clear_input_headers`).
pub const HEADERS_MORE_MODULE: &str =
    "/usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so";

/// Which edge proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdgeKind {
    Nginx,
    Caddy,
}

impl EdgeKind {
    /// The HTML comment in README.md right before the fenced block this edge runs.
    pub fn readme_marker(self) -> &'static str {
        match self {
            EdgeKind::Nginx => "<!-- tested: tests/forward_auth.rs nginx -->",
            EdgeKind::Caddy => "<!-- tested: tests/forward_auth.rs caddy -->",
        }
    }

    /// The fence's info string after the marker.
    fn fence(self) -> &'static str {
        match self {
            EdgeKind::Nginx => "```nginx",
            EdgeKind::Caddy => "```caddyfile",
        }
    }
}

/// The fenced block right after `kind`'s marker in README.md (without the fences).
pub fn readme_block(kind: EdgeKind) -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let marker = kind.readme_marker();
    let after = readme
        .split_once(marker)
        .unwrap_or_else(|| panic!("README.md has no {marker}"))
        .1
        .trim_start();
    let body = after
        .strip_prefix(kind.fence())
        .and_then(|rest| rest.strip_prefix('\n'))
        .unwrap_or_else(|| panic!("{marker} is not followed by a {} fence", kind.fence()));
    let end = body
        .find("\n```")
        .unwrap_or_else(|| panic!("the block after {marker} is not closed"));
    body[..=end].to_owned()
}

/// Ports of one edge setup: the edge, profilegate, the application.
#[derive(Clone, Copy, Debug)]
pub struct EdgePorts {
    pub edge: u16,
    pub gate: u16,
    pub app: u16,
}

/// `block` with the placeholder addresses replaced by `ports` (each must occur: a README edit
/// that drops one would otherwise leave a block pointing nowhere).
pub fn with_ports(block: &str, ports: EdgePorts) -> String {
    let mut out = block.to_owned();
    for (placeholder, port) in [
        (EDGE_PLACEHOLDER, ports.edge),
        (GATE_PLACEHOLDER, ports.gate),
        (APP_PLACEHOLDER, ports.app),
    ] {
        assert!(
            out.contains(placeholder),
            "the README block lost its placeholder {placeholder}:\n{block}"
        );
        out = out.replace(placeholder, &format!("127.0.0.1:{port}"));
    }
    out
}

/// A running edge proxy, stopped when dropped.
pub struct Edge {
    pub kind: EdgeKind,
    pub port: u16,
    child: Option<Child>,
    stderr_path: PathBuf,
    dir: tempfile::TempDir,
}

impl Edge {
    /// Starts `kind` on the README's block for `ports` and waits until `ports.edge` accepts.
    pub fn start(kind: EdgeKind, ports: EdgePorts) -> Edge {
        Self::start_block(kind, &with_ports(&readme_block(kind), ports), ports.edge)
    }

    /// Starts `kind` on `block` (a `server { }` block for nginx, a site block for Caddy) and
    /// waits until `port` accepts; fails with the edge's output if it exits or misses the
    /// deadline.
    pub fn start_block(kind: EdgeKind, block: &str, port: u16) -> Edge {
        let dir = tempfile::tempdir().expect("tempdir for the edge");
        let stderr_path = dir.path().join("stderr");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let mut cmd = match kind {
            EdgeKind::Nginx => nginx_command(dir.path(), block),
            EdgeKind::Caddy => caddy_command(dir.path(), block),
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(stderr.try_clone().expect("stderr file"))
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("{kind:?} could not be started: {e}"));
        let mut edge = Edge {
            kind,
            port,
            child: Some(child),
            stderr_path,
            dir,
        };
        edge.wait_accepting();
        edge
    }

    /// The edge's origin, `http://127.0.0.1:<port>`.
    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin())
    }

    /// What the edge wrote so far (stdout and stderr).
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The configuration directory (the main configuration and the block as run).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn wait_accepting(&mut self) {
        let deadline = Instant::now() + EDGE_READY_LIMIT;
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                panic!(
                    "{:?} exited ({status}) before it accepted connections; its output:\n{}",
                    self.kind,
                    self.output()
                );
            }
            if Instant::now() > deadline {
                self.stop();
                panic!(
                    "{:?} did not accept connections on port {} within {} s; its output:\n{}",
                    self.kind,
                    self.port,
                    EDGE_READY_LIMIT.as_secs(),
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the edge: SIGTERM, then SIGKILL after 5 s; always reaped.
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            super::child::stop_gracefully(child, "-TERM");
        }
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        self.stop();
    }
}

/// nginx in the foreground, one process (no master: no privilege change, no orphaned
/// worker), everything it writes in `dir`, the README's `server { }` block included as is.
fn nginx_command(dir: &Path, block: &str) -> Command {
    std::fs::write(dir.join("profilegate.conf"), block).expect("nginx block written");
    let d = dir.display();
    let main = format!(
        r#"load_module {HEADERS_MORE_MODULE};
daemon off;
master_process off;
pid {d}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    include {d}/profilegate.conf;
}}
"#
    );
    std::fs::write(dir.join("nginx.conf"), main).expect("nginx.conf written");
    assert!(
        Path::new(HEADERS_MORE_MODULE).exists(),
        "{HEADERS_MORE_MODULE} is missing: install libnginx-mod-http-headers-more-filter \
         (tests/run.sh does)"
    );
    // Debian puts nginx in /usr/sbin, which a user's PATH may lack.
    let nginx = std::env::var_os("TEST_NGINX").unwrap_or_else(|| {
        if Path::new("/usr/sbin/nginx").exists() {
            "/usr/sbin/nginx".into()
        } else {
            "nginx".into()
        }
    });
    let mut cmd = Command::new(nginx);
    cmd.arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-e")
        .arg("stderr");
    cmd
}

/// Caddy in the foreground on a Caddyfile of the README's site block after the test's global
/// options (no admin endpoint, no automatic HTTPS), its data and config in `dir`.
fn caddy_command(dir: &Path, block: &str) -> Command {
    let caddyfile = format!("{{\n\tadmin off\n\tauto_https off\n}}\n\n{block}");
    let path = dir.join("Caddyfile");
    std::fs::write(&path, caddyfile).expect("Caddyfile written");
    let mut cmd = Command::new(std::env::var_os("TEST_CADDY").unwrap_or("caddy".into()));
    cmd.arg("run")
        .arg("--config")
        .arg(&path)
        .arg("--adapter")
        .arg("caddyfile")
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("HOME", dir);
    cmd
}
