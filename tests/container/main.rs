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

mod rootfs;
#[path = "../support/mod.rs"]
mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use rootfs::{Rootfs, Running, CONFIG, UID, VOLUME};
use serde_json::json;
use support::questions::{company, profiling, COMPANY_LABEL};
use support::*;

/// How long the proxy may take to answer /healthz, and then /readyz (OP discovery).
const START_LIMIT: Duration = Duration::from_secs(30);

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
