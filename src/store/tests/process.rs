//! Tests that need a second process: an acknowledged write survives the writer's crash, a login
//! reaches the disk shortly after, and a store held by another process is reported readably. The second process is this test binary
//! again, running [`child_process`] in a role chosen by environment variables.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::*;

const CHILD_ROLE: &str = "PROFILEGATE_STORE_TEST_CHILD";
const CHILD_DIR: &str = "PROFILEGATE_STORE_TEST_DIR";

/// Not a test: what the child process does, chosen by environment variables.
#[test]
#[ignore = "run by other tests in a child process"]
fn child_process() {
    let (Ok(role), Some(dir)) = (std::env::var(CHILD_ROLE), std::env::var_os(CHILD_DIR)) else {
        return;
    };
    let dir = PathBuf::from(dir);
    run(async {
        let store = open_at(&dir).await;
        let say = |line: &str| {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{line}").expect("stdout");
            out.flush().expect("flush");
        };
        match role.as_str() {
            "crash-after-ack" => {
                store
                    .save_answers(
                        &user("crash"),
                        one("company", AnswerValue::Text("Acme".into())),
                    )
                    .await
                    .expect("save");
                store
                    .get_or_create_secret("key", &|| b"child".to_vec())
                    .await
                    .expect("secret");
                say("ACKNOWLEDGED");
                // No destructors, no sled shutdown: as if killed.
                std::process::abort();
            }
            "crash-after-logins" => {
                for at in [100, 200] {
                    store.record_login(&user("login"), at).await.expect("login");
                }
                say("LOGGED");
                // Logins are not flushed one by one: sled's background flush (every 500 ms)
                // takes them to disk. Three times that, then die without any shutdown.
                std::thread::sleep(Duration::from_millis(1500));
                std::process::abort();
            }
            "hold-lock" => {
                say("OPEN");
                // Until the parent closes our stdin.
                let _ = std::io::stdin().read_line(&mut String::new());
            }
            other => panic!("unknown child role {other}"),
        }
    });
}

/// A child process running [`child_process`] in `role`, and its output line by line.
struct ChildProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
}

fn spawn_child(role: &str, dir: &Path) -> ChildProcess {
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "store::tests::process::child_process",
            "--exact",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ROLE, role)
        .env(CHILD_DIR, dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    ChildProcess { child, lines }
}

impl ChildProcess {
    /// Waits for a line ending in `marker` (libtest prints `test … ... ` just before it).
    fn wait_for(&mut self, marker: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.trim_end().ends_with(marker) => return,
                Ok(_) => {}
                Err(e) => {
                    let _ = self.child.kill();
                    panic!("child never printed {marker}: {e}");
                }
            }
        }
    }
}

fn wait_for_exit(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("child process did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_acknowledged_answer_survives_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = spawn_child("crash-after-ack", dir.path());
    child.wait_for("ACKNOWLEDGED");
    let status = wait_for_exit(&mut child.child);
    assert!(!status.success(), "the child aborts: {status}");
    run(async {
        let store = open_at(dir.path()).await;
        let record = store
            .load(&user("crash"))
            .await
            .expect("load")
            .expect("kept");
        assert_eq!(
            record.answers["company"].value,
            AnswerValue::Text("Acme".into())
        );
        let key = store
            .get_or_create_secret("key", &|| b"parent".to_vec())
            .await
            .expect("secret");
        assert_eq!(key, b"child");
    });
}

/// A login does not wait for the disk, but it reaches it within sled's flush interval.
#[test]
fn logins_reach_the_disk_shortly_after_even_when_the_process_then_crashes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = spawn_child("crash-after-logins", dir.path());
    child.wait_for("LOGGED");
    let status = wait_for_exit(&mut child.child);
    assert!(!status.success(), "the child aborts: {status}");
    run(async {
        let store = open_at(dir.path()).await;
        let record = store
            .load(&user("login"))
            .await
            .expect("load")
            .expect("kept");
        assert_eq!(
            (record.logins, record.first_login_at, record.last_login_at),
            (2, 100, 200)
        );
    });
}

#[test]
fn a_store_held_by_another_process_is_reported_readably_and_freed_when_it_exits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = spawn_child("hold-lock", dir.path());
    child.wait_for("OPEN");
    run(async {
        let options = SledOptions {
            lock_wait: Duration::from_millis(300),
            ..SledOptions::default()
        };
        let err = SledStore::open(dir.path(), options)
            .await
            .err()
            .expect("locked");
        assert_eq!(
            err.to_string(),
            format!(
                "store at {} is locked by another profilegate process",
                dir.path().display()
            )
        );
    });
    drop(child.child.stdin.take());
    assert!(wait_for_exit(&mut child.child).success());
    run(async {
        let store = open_at(dir.path()).await;
        assert!(store.ready().await);
    });
}
