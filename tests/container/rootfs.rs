//! The minimal root file system the container tests run profilegate in, and profilegate
//! running there (tests/container/main.rs says what is checked): built in a temporary
//! directory, entered with `unshare --mount` + `chroot` as uid/gid 65532, read-only but for the
//! store's volume.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::support::child::{output_within, COMMAND_LIMIT};

/// The image's non-root user and group (the Dockerfile's `USER 65532:65532`).
pub const UID: u32 = 65532;
/// Where the image keeps its configuration and its store (the volume).
pub const CONFIG: &str = "/etc/profilegate/config.toml";
pub const VOLUME: &str = "/var/lib/profilegate";

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

/// A minimal root file system in a temporary directory, and the store directory mounted on its
/// volume path.
pub struct Rootfs {
    pub dir: tempfile::TempDir,
}

impl Rootfs {
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// The binary, its shared libraries and loader (as `ldd` names them), the user and group,
    /// name resolution files, `config` at [`CONFIG`]; the store directory owned by 65532.
    pub fn build(binary: &Path, config: &str) -> Rootfs {
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
    pub fn command(&self, args: &[&str]) -> Command {
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
    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
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
pub struct Running {
    child: Child,
    log: PathBuf,
}

impl Running {
    pub fn start(rootfs: &Rootfs) -> Running {
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

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails the test with `why` and everything the proxy wrote.
    pub fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let status = self.child.wait();
        panic!("{why} ({status:?}); profilegate's output:\n{}", self.log());
    }

    /// Waits until `url` answers 200, failing (with the log) past `limit` or when the proxy exits.
    pub async fn wait_for_200(&mut self, url: &str, limit: Duration) {
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
    pub fn credentials(&mut self) -> Vec<String> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_else(|e| self.fail(&format!("/proc status of profilegate: {e}")));
        status
            .lines()
            .filter(|l| l.starts_with("Uid:") || l.starts_with("Gid:") || l.starts_with("Groups:"))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    }

    /// SIGINT (profilegate syncs its store and exits); fails past 10 s.
    pub fn stop(&mut self) {
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
