//! End-to-end: the documented migration from sled to PostgreSQL, with the CLI —
//! `profilegate users export --config sled.toml | profilegate users import --config pg.toml` —
//! and a proxy on PostgreSQL that then serves the migrated answers upstream. Also the CLI's
//! exit codes and its refusal to open a sled store a running profilegate holds.
//! Needs `PG_TEST_URL` (as tests/replicas.rs; skipped without it unless `PG_TEST_REQUIRED`).

mod support;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::*;

/// Runs `profilegate users …` with `stdin`, without the developer's PROFILEGATE_* variables.
fn cli(config: &std::path::Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_profilegate"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PROFILEGATE_") {
            cmd.env_remove(&name);
        }
    }
    let mut child = cmd
        .arg("users")
        .args(args)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("profilegate users starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("stdin written");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "profilegate users {args:?} did not end in 60 s:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn said(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sled_store_moves_to_postgres_with_export_and_import() {
    let Some(pg) = support::pg::pg_store("migration").await else {
        return;
    };
    // Sled: alice signs in (a real login writes her record); profilegate runs.
    let mut env = TestEnv::spawned().await;
    let sled_config = env.proxy.config_path.clone();
    let browser = env.browser();
    browser.login(&env.proxy.url("/"), "alice").await;
    // Bob too: his session cookie, issued here, will be honoured by the proxy on PostgreSQL
    // (same session secret, same host), as behind a load balancer.
    let bob = Browser::new();
    bob.login(&env.proxy.url("/"), "bob").await;
    let issuer = env.op.issuer.clone();

    // While it runs, the sled store is locked: the CLI says to stop profilegate first.
    let out = cli(&sled_config, &["export"], b"");
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stop profilegate first"),
        "{}",
        said(&out)
    );
    assert!(
        env.proxy
            .signal_and_wait("INT", Duration::from_secs(10))
            .is_some(),
        "profilegate did not stop"
    );

    // Stopped: answers and a skip for bob go in through the CLI (and alice gets an answer).
    let record = |company: &str, logins: u64| {
        json!({"v": 1, "answers": {"company": {"value": {"text": company},
            "answered_at": 1_700_000_000u64, "question_version": 1, "source": "user"}},
            "skips": {"role": {"at": 1_700_000_001u64, "login": 1, "count": 2}},
            "logins": logins, "revision": 2})
    };
    let lines = format!(
        "{}\n{}\n",
        json!({"issuer": issuer, "sub": "bob", "record": record("Bob & Co", 1)}),
        json!({"issuer": issuer, "sub": "alice", "record": record("Alice Ltd", 1)}),
    );
    let out = cli(&sled_config, &["import"], lines.as_bytes());
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let out = cli(&sled_config, &["show", "--sub", "bob"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let shown: Value = serde_json::from_slice(&out.stdout).expect("show prints JSON");
    assert_eq!(shown["record"]["skips"]["role"]["count"], 2);
    let out = cli(&sled_config, &["show", "--sub", "nobody"], b"");
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));

    // The migration: export from sled, import into PostgreSQL (a replica on it is running).
    let pg_proxy = start_proxy_with(free_port(), &issuer, &env.upstream.url(), "", &pg, true).await;
    let exported = cli(&sled_config, &["export"], b"");
    assert_eq!(exported.status.code(), Some(0), "{}", said(&exported));
    assert_eq!(exported.stdout.iter().filter(|b| **b == b'\n').count(), 2);
    let out = cli(&pg_proxy.config_path, &["import"], &exported.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).expect("summary");
    assert_eq!(summary["imported"], 2, "{}", said(&out));
    // Idempotent: the same export again changes nothing.
    let out = cli(&pg_proxy.config_path, &["import"], &exported.stdout);
    let summary: Value = serde_json::from_slice(&out.stdout).expect("summary");
    assert_eq!(
        (summary["imported"].clone(), summary["unchanged"].clone()),
        (json!(0), json!(2))
    );
    // Exported again from PostgreSQL: the same records.
    let again = cli(&pg_proxy.config_path, &["export"], b"");
    let parse = |bytes: &[u8]| -> Vec<Value> {
        let mut v: Vec<Value> = String::from_utf8_lossy(bytes)
            .lines()
            .map(|l| serde_json::from_str(l).expect("line"))
            .collect();
        v.sort_by_key(|l| l["sub"].as_str().unwrap_or_default().to_owned());
        v
    };
    assert_eq!(parse(&again.stdout), parse(&exported.stdout));
    // A bad line: exit 1, its number reported, the rest imported.
    let out = cli(&pg_proxy.config_path, &["import"], b"{\"issuer\":1}\n");
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 1:"),
        "{}",
        said(&out)
    );

    // The proxy on PostgreSQL serves bob's migrated answer upstream.
    let resp = bob.navigate(&pg_proxy.url("/migrated")).await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", pg_proxy.log());
    let seen = env.upstream.last();
    assert_eq!(seen.target, "/migrated");
    assert_eq!(seen.header("x-profile-company"), Some("Bob & Co"));

    // The CLI erases on PostgreSQL while the proxy runs: its next request has no answer.
    let out = cli(&pg_proxy.config_path, &["erase", "--sub", "bob"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("profilegate::audit"),
        "{}",
        said(&out)
    );
    bob.navigate(&pg_proxy.url("/erased")).await;
    assert_eq!(env.upstream.last().header("x-profile-company"), None);
    let out = cli(&pg_proxy.config_path, &["erase", "--sub", "bob"], b"");
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
}

#[test]
fn a_configuration_error_exits_2_and_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.toml");
    let out = cli(&missing, &["export"], b"");
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("missing.toml"),
        "{}",
        said(&out)
    );
    assert!(out.stdout.is_empty(), "nothing exported: {}", said(&out));
}
