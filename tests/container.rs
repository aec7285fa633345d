//! The container image's runtime, exercised without a container runtime (none is installed
//! here): the profilegate binary in a minimal root file system holding only what it needs, a
//! subset of the Dockerfile's Debian slim runtime stage at the same paths (the binary, the
//! shared libraries `ldd` names and their loader, /etc/passwd and /etc/group with the non-root
//! user 65532, /etc/hosts, /etc/nsswitch.conf, the config at /etc/profilegate/config.toml; no
//! shell, no /proc, no /dev), entered with `chroot` as
//! uid/gid 65532 in a private mount namespace (`unshare --mount`), the root file system mounted
//! read-only and only the store's volume (/var/lib/profilegate) writable.
//!
//! Checked: `--version` and `check` run there (`check` also on examples/compose/profilegate.toml
//! with the admin token its compose.yaml sets); the proxy starts, answers /healthz, discovers the
//! test OP (by name, through the root file system's /etc/hosts), signs a user in, stores their
//! answer on the volume (read back from it after the proxy stopped) and runs as 65532 with no
//! other group; a store path outside the volume fails with "Read-only file system".
//!
//! Needs root (mounts, chroot) and util-linux `unshare`, coreutils `chroot`, glibc `ldd`: without
//! them the tests fail when `CI=true` and otherwise say why they are skipped and pass.
//! `CONTAINER_TEST_BIN=target/release/profilegate` runs them on another build (default: the
//! debug binary cargo built for the tests).

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use support::child::{output_within, COMMAND_LIMIT};
use support::questions::{company, profiling, COMPANY_LABEL};
use support::*;

/// The image's non-root user and group (the Dockerfile's `USER 65532:65532`).
const UID: u32 = 65532;
/// Where the image keeps its configuration and its store (the volume).
const CONFIG: &str = "/etc/profilegate/config.toml";
const VOLUME: &str = "/var/lib/profilegate";
/// How long the proxy may take to answer /healthz, and then /readyz (OP discovery).
const START_LIMIT: Duration = Duration::from_secs(30);

/// Run inside a private mount namespace: the root file system bind-mounted onto itself and
/// made read-only, the store directory bind-mounted writable on the volume's path, a check that
/// even root cannot write to the root file system now, then profilegate as 65532:65532 (and no
/// supplementary group but its own) with that root. `exec` keeps the pid: the test's child is
/// profilegate itself.
const ENTER: &str = r#"
root=$1; store=$2; shift 2
mount --bind "$root" "$root"
mount -o remount,bind,ro "$root"
mount --bind "$store" "$root/var/lib/profilegate"
if touch "$root/etc/written-by-root" 2>/dev/null; then
  echo "container test: the root file system is writable after the read-only remount" >&2
  exit 97
fi
exec chroot --userspec=65532:65532 --groups=65532 "$root" /usr/local/bin/profilegate "$@"
"#;

/// Whether this machine can run the tests; when it cannot, `CI=true` fails and anything else
/// prints why and skips.
fn runnable() -> bool {
    let euid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Uid:"))?.to_owned();
            line.split_whitespace().nth(2)?.parse::<u32>().ok()
        });
    let missing: Vec<&str> = ["unshare", "chroot", "ldd", "mount"]
        .into_iter()
        .filter(|tool| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {tool} >/dev/null")])
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    let why = if euid != Some(0) {
        format!("it needs root (mount namespaces, chroot); effective uid is {euid:?}")
    } else if !missing.is_empty() {
        format!("{} not found on PATH", missing.join(", "))
    } else {
        return true;
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("the container test cannot run: {why} (CI=true: not skipped)");
    }
    eprintln!("container test skipped: {why}");
    false
}

/// The binary under test: `CONTAINER_TEST_BIN` or the debug build cargo made for the tests.
fn binary_under_test() -> PathBuf {
    match std::env::var_os("CONTAINER_TEST_BIN") {
        Some(path) => {
            let path = PathBuf::from(path);
            if path.is_absolute() {
                path
            } else {
                repo().join(path)
            }
        }
        None => binary().to_path_buf(),
    }
}

/// A minimal root file system in a temporary directory, and the store directory mounted on its
/// volume path.
struct Rootfs {
    dir: tempfile::TempDir,
}

impl Rootfs {
    fn root(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// The binary, its shared libraries and loader (as `ldd` names them), the user and group,
    /// name resolution files, `config` at [`CONFIG`]; the store directory owned by 65532.
    fn build(binary: &Path, config: &str) -> Rootfs {
        let dir = tempfile::tempdir().expect("tempdir");
        let rootfs = Rootfs { dir };
        let root = rootfs.root();
        for sub in ["usr/local/bin", "etc/profilegate", "var/lib/profilegate"] {
            std::fs::create_dir_all(root.join(sub)).expect("rootfs directory");
        }
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        copy_executable(binary, &root.join("usr/local/bin/profilegate"));
        let libraries = shared_libraries(binary);
        assert!(
            libraries
                .iter()
                .any(|l| l.to_string_lossy().contains("libc.so"))
                && libraries
                    .iter()
                    .any(|l| l.to_string_lossy().contains("ld-linux")),
            "ldd named no libc or loader for {}: {libraries:?}",
            binary.display()
        );
        for library in &libraries {
            let inside = root.join(library.strip_prefix("/").expect("absolute"));
            std::fs::create_dir_all(inside.parent().expect("parent")).expect("library directory");
            copy_executable(library, &inside);
        }
        let files = [
            (
                "etc/passwd",
                "root:x:0:0:root:/root:/usr/sbin/nologin\n\
                 profilegate:x:65532:65532:profilegate:/nonexistent:/usr/sbin/nologin\n",
            ),
            ("etc/group", "root:x:0:\nprofilegate:x:65532:\n"),
            ("etc/hosts", "127.0.0.1 localhost\n::1 localhost\n"),
            ("etc/nsswitch.conf", "hosts: files dns\n"),
            ("etc/profilegate/config.toml", config),
        ];
        for (path, text) in files {
            std::fs::write(root.join(path), text).expect("rootfs file");
        }
        std::fs::create_dir(rootfs.store()).expect("store directory");
        std::os::unix::fs::chown(rootfs.store(), Some(UID), Some(UID)).expect("chown store");
        rootfs
    }

    /// `profilegate ARGS` inside: private mount namespace, read-only root, writable volume,
    /// uid/gid 65532, an empty environment but PATH (as a container's).
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-ec",
            ENTER,
            "sh",
        ])
        .arg(self.root())
        .arg(self.store())
        .args(args)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        );
        cmd
    }

    /// Runs `profilegate ARGS` inside to its end (at most [`COMMAND_LIMIT`]), with `env` added
    /// to its environment.
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
        let mut cmd = self.command(args);
        cmd.envs(env.iter().copied());
        let out = output_within(&mut cmd, "profilegate in the rootfs", COMMAND_LIMIT)
            .expect("unshare runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// Copies a file (following symbolic links) with mode 0755.
fn copy_executable(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// The absolute paths `ldd` prints for `binary`: each shared library and the loader.
fn shared_libraries(binary: &Path) -> Vec<PathBuf> {
    let out = output_within(Command::new("ldd").arg(binary), "ldd", COMMAND_LIMIT).expect("ldd");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ldd {} failed: {text}",
        binary.display()
    );
    text.lines()
        .filter_map(|line| {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
            let path = line.split_whitespace().find(|word| word.starts_with('/'))?;
            Some(PathBuf::from(path))
        })
        .collect()
}

/// The proxy running inside the rootfs; killed (and its mount namespace gone) when dropped.
struct Running {
    child: Child,
    log: PathBuf,
}

impl Running {
    fn start(rootfs: &Rootfs) -> Running {
        let log = rootfs.dir.path().join("profilegate.log");
        let file = std::fs::File::create(&log).expect("log file");
        let child = rootfs
            .command(&["--config", CONFIG])
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("unshare starts");
        Running { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails the test with `why` and everything the proxy wrote.
    fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let status = self.child.wait();
        panic!("{why} ({status:?}); profilegate's output:\n{}", self.log());
    }

    /// Waits until `url` answers 200, failing (with the log) past `limit` or when the proxy exits.
    async fn wait_for_200(&mut self, url: &str, limit: Duration) {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        let deadline = Instant::now() + limit;
        let mut last: String;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.fail(&format!(
                    "profilegate exited ({status}) before {url} answered 200"
                ));
            }
            match client.get(url).send().await {
                Ok(resp) if resp.status() == StatusCode::OK => return,
                Ok(resp) => {
                    let status = resp.status();
                    last = format!("{status}: {}", resp.text().await.unwrap_or_default());
                }
                Err(e) => last = e.to_string(),
            }
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "{url} did not answer 200 within {limit:?}; last: {last}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The `Uid:`, `Gid:` and `Groups:` lines of the process's /proc status.
    fn credentials(&mut self) -> Vec<String> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_else(|e| self.fail(&format!("/proc status of profilegate: {e}")));
        status
            .lines()
            .filter(|l| l.starts_with("Uid:") || l.starts_with("Gid:") || l.starts_with("Groups:"))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    }

    /// SIGINT (profilegate syncs its store and exits); fails past 10 s.
    fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-INT", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -INT {pid}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.fail("profilegate did not stop within 10 s of SIGINT");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The proxy's configuration inside the rootfs: the store on the volume.
fn config(proxy_port: u16, admin_port: u16, issuer: &str, upstream: &str, store: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:{proxy_port}\"\npublic_url = \"http://127.0.0.1:{proxy_port}\"\n\
         admin_listen = \"127.0.0.1:{admin_port}\"\n\
         [upstream]\nurl = {upstream:?}\n\
         [oidc]\nissuer = {issuer:?}\nclient_id = {CLIENT_ID:?}\nclient_secret = {CLIENT_SECRET:?}\n\
         [session]\nsecret = {SESSION_SECRET:?}\n\
         [store]\npath = {store:?}\n\
         [log]\nformat = \"json\"\n{}",
        profiling(&["questions_per_login = 1"], &[company()])
    )
}

#[test]
fn version_and_check_run_as_the_non_root_user_on_a_read_only_root() {
    if !runnable() {
        return;
    }
    let nowhere = "http://127.0.0.1:9";
    let rootfs = Rootfs::build(
        &binary_under_test(),
        &config(8080, 9091, nowhere, nowhere, VOLUME),
    );
    let (ok, stdout, stderr) = rootfs.run(&["--version"], &[]);
    assert!(ok, "--version failed:\n{stdout}\n{stderr}");
    let expected = format!("profilegate {} (commit ", env!("CARGO_PKG_VERSION"));
    assert!(
        stdout.starts_with(&expected),
        "unexpected --version output: {stdout:?}"
    );
    let (ok, stdout, stderr) = rootfs.run(&["check", "--config", CONFIG], &[]);
    assert!(ok, "check failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("configuration OK"), "{stdout}\n{stderr}");

    // The compose example's configuration, where and with what its compose.yaml gives it.
    let compose = repo().join("examples/compose");
    let example = std::fs::read_to_string(compose.join("profilegate.toml")).expect("example");
    let token = compose_admin_token(&compose);
    std::fs::write(rootfs.root().join("etc/profilegate/compose.toml"), example).expect("copy");
    let (ok, stdout, stderr) = rootfs.run(
        &["check", "--config", "/etc/profilegate/compose.toml"],
        &[("PROFILEGATE_ADMIN_TOKEN", &token)],
    );
    assert!(
        ok,
        "examples/compose/profilegate.toml fails check:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("configuration OK"), "{stdout}\n{stderr}");
}

/// `PROFILEGATE_ADMIN_TOKEN` as examples/compose/compose.yaml sets it for profilegate.
fn compose_admin_token(dir: &Path) -> String {
    let yaml = std::fs::read_to_string(dir.join("compose.yaml")).expect("compose.yaml");
    let line = yaml
        .lines()
        .find_map(|l| l.trim().strip_prefix("PROFILEGATE_ADMIN_TOKEN:"))
        .expect("PROFILEGATE_ADMIN_TOKEN in compose.yaml");
    line.trim().trim_matches('"').to_owned()
}

#[test]
fn a_store_outside_the_volume_is_read_only() {
    if !runnable() {
        return;
    }
    let nowhere = "http://127.0.0.1:9";
    let elsewhere = "/var/lib/elsewhere";
    let rootfs = Rootfs::build(
        &binary_under_test(),
        &config(free_port(), free_port(), nowhere, nowhere, elsewhere),
    );
    // World-writable: only the read-only mount can refuse the non-root user.
    let dir = rootfs.root().join(elsewhere.trim_start_matches('/'));
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let (ok, stdout, stderr) = rootfs.run(&["--config", CONFIG], &[]);
    assert!(
        !ok,
        "profilegate started with its store on the read-only root:\n{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("Read-only file system"),
        "the failure should be the read-only root:\n{stdout}\n{stderr}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&dir).expect("read_dir").collect();
    assert!(
        leftovers.is_empty(),
        "written on the read-only root: {leftovers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_serves_as_the_non_root_user_and_keeps_its_store_on_the_volume() {
    if !runnable() {
        return;
    }
    let (proxy_port, admin_port) = (free_port(), free_port());
    let op = TestOp::start(proxy_port, json!({}));
    let upstream = EchoUpstream::start().await;
    let rootfs = Rootfs::build(
        &binary_under_test(),
        &config(proxy_port, admin_port, &op.issuer, &upstream.url(), VOLUME),
    );
    let mut proxy = Running::start(&rootfs);
    let admin = format!("http://127.0.0.1:{admin_port}");
    proxy
        .wait_for_200(&format!("{admin}/healthz"), START_LIMIT)
        .await;
    // Ready once the OP is discovered: "localhost" resolved through the rootfs's /etc/hosts.
    proxy
        .wait_for_200(&format!("{admin}/readyz"), START_LIMIT)
        .await;
    let ids = format!("{UID} {UID} {UID} {UID}");
    let expected = [
        format!("Uid: {ids}"),
        format!("Gid: {ids}"),
        format!("Groups: {UID}"),
    ];
    let credentials = proxy.credentials();
    if credentials != expected {
        proxy.fail(&format!("runs as {credentials:?}, not {expected:?}"));
    }

    // A sign-in and an answer, through the proxy in the rootfs.
    let origin = format!("http://127.0.0.1:{proxy_port}");
    let browser = Browser::new();
    browser.login(&format!("{origin}/"), "alice").await;
    let page = browser
        .navigate(&format!("{origin}/.profilegate/profile?rd=%2F"))
        .await
        .text()
        .await
        .expect("question page");
    if !page.contains(COMPANY_LABEL) {
        proxy.fail(&format!("no company question after the sign-in:\n{page}"));
    }
    let form = [
        ("company", "Container Ltd"),
        ("_csrf", &form_value(&page, "_csrf")),
        ("_question", "company"),
        ("_rd", &form_value(&page, "_rd")),
    ];
    let posted = browser
        .client
        .post(format!("{origin}/.profilegate/profile"))
        .header("accept", "text/html")
        .form(&form)
        .send()
        .await
        .expect("answer");
    if !posted.status().is_redirection() {
        let status = posted.status();
        let body = posted.text().await.unwrap_or_default();
        proxy.fail(&format!("the answer was not accepted: {status}\n{body}"));
    }
    let resp = browser.navigate(&format!("{origin}/app")).await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", proxy.log());
    assert_eq!(
        upstream.last().header("x-profile-company"),
        Some("Container Ltd"),
        "{}",
        proxy.log()
    );
    proxy.stop();

    // The answer is on the volume, in files the non-root user wrote.
    let store = rootfs.store();
    let files: Vec<_> = std::fs::read_dir(&store)
        .expect("store")
        .flatten()
        .collect();
    assert!(!files.is_empty(), "nothing written to the volume");
    for file in &files {
        let owner = file.metadata().expect("metadata").uid();
        assert_eq!(
            owner,
            UID,
            "{} is owned by uid {owner}",
            file.path().display()
        );
    }
    let opened =
        profilegate::store::SledStore::open(&store, profilegate::store::SledOptions::default())
            .await
            .expect("the volume's store opens once the proxy is gone");
    let record = profilegate::store::ProfileStore::load(
        &opened,
        &profilegate::store::UserKey::new(op.issuer.trim_end_matches('/'), "alice"),
    )
    .await
    .expect("load")
    .expect("alice's record on the volume");
    let answer = record.answers.get("company").map(|a| json!(a.value));
    assert_eq!(
        answer,
        Some(json!({"text": "Container Ltd"})),
        "{}",
        proxy.log()
    );
}
