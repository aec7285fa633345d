//! The test harness's own promise (issue 14, item 0): a child that gets stuck — a test OP that
//! never prints its ready line, a command that never ends, a test binary past its limit — fails
//! the run within a deadline and shows what the child wrote, instead of hanging CI.
//! The in-process gate of `TestEnv` stops within one too, leaving no listener or connection.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::child::{output_within, start_with_ready_line};
use support::repo;

/// The panic message of `f`, which must panic.
fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
    let err = std::panic::catch_unwind(f).expect_err("the harness gave up on the child");
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn a_server_that_never_prints_its_ready_line_fails_fast_with_its_stderr() {
    // What the deadlocked test OP did: listening, a line on stderr, then nothing.
    let started = Instant::now();
    let message = panic_message(|| {
        start_with_ready_line(
            Command::new("sh").args(["-c", "echo 'stuck in key generation' >&2; exec sleep 60"]),
            "a stuck server",
            Duration::from_secs(1),
        );
    });
    assert!(started.elapsed() < Duration::from_secs(10), "{message}");
    assert!(
        message.contains("a stuck server printed no ready line within 1 s")
            && message.contains("stuck in key generation"),
        "{message}"
    );
}

#[test]
fn a_command_that_never_ends_is_killed_at_its_deadline_with_its_output() {
    let started = Instant::now();
    let message = panic_message(|| {
        let _ = output_within(
            Command::new("sh").args(["-c", "echo 'half done'; echo 'waiting' >&2; exec sleep 60"]),
            "a stuck command",
            Duration::from_secs(1),
        );
    });
    assert!(started.elapsed() < Duration::from_secs(10), "{message}");
    assert!(
        message.contains("a stuck command")
            && message.contains("half done")
            && message.contains("waiting"),
        "{message}"
    );
}

#[test]
fn a_test_binary_past_its_limit_is_stopped_with_everything_it_started() {
    // tests/bounded.sh is the runner of every test binary in tests/run.sh. A "binary" that
    // starts a grandchild and never ends: both are gone within the limit plus the grace.
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("grandchild.pid");
    let script = format!("sleep 60 & echo $! > {}; wait", pid_file.display());
    let started = Instant::now();
    let out = output_within(
        Command::new(repo().join("tests/bounded.sh")).args(["1", "sh", "-c", &script]),
        "tests/bounded.sh",
        Duration::from_secs(40),
    )
    .expect("bash runs");
    assert_eq!(out.status.code(), Some(124), "timeout's exit status");
    assert!(started.elapsed() < Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("TIME LIMIT"), "{stderr}");
    let pid = std::fs::read_to_string(&pid_file).expect("grandchild pid");
    let alive = std::path::Path::new(&format!("/proc/{}", pid.trim())).exists()
        && !std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
            .unwrap_or_default()
            .contains(") Z ");
    assert!(!alive, "the grandchild {pid} outlived the limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_process_gate_refuses_new_connections_and_closes_open_ones_at_shutdown() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // TestEnv's gate runs in the test process: stopped, it leaves no listener and no
    // connection behind (as the process at SIGTERM), and within a deadline.
    let mut env = support::TestEnv::start().await;
    let port = env.proxy.port;
    let mut open = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    open.write_all(b"GET /.profilegate/jwks.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("request");
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), open.read(&mut buf))
            .await
            .expect("an answer in time")
            .expect("read");
        assert!(n > 0, "closed before answering");
        head.extend_from_slice(&buf[..n]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );

    let started = Instant::now();
    env.proxy.shut_down().await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "a stopped gate still accepts"
    );
    // The kept-alive connection ends (the rest of the answer, then end of stream).
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), open.read_to_end(&mut rest))
        .await
        .expect("the open connection was closed")
        .expect("read");
}
