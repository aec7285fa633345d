//! Signals to the profilegate process: SIGHUP reloads the configuration and never ends the
//! process (its default action would, unlogged; tests/reload.rs tests the reload itself);
//! SIGINT, SIGTERM and SIGQUIT stop it, each after syncing the store. No OP is needed: the proxy serves its admin port without one.

mod support;

use std::time::{Duration, Instant};

use support::*;

/// A proxy whose OP and upstream are not there (discovery is retried at the first login).
async fn proxy_without_op() -> Proxy {
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    start_proxy(free_port(), &nowhere, &nowhere, "", false).await
}

/// Waits up to `limit` for `needle` in the proxy's log.
fn wait_for_log(proxy: &Proxy, needle: &str, limit: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if proxy.log().contains(needle) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    proxy.log().contains(needle)
}

#[tokio::test]
async fn sighup_reloads_and_keeps_the_process_running() {
    let mut proxy = proxy_without_op().await;
    assert!(
        proxy
            .signal_and_wait("HUP", Duration::from_secs(1))
            .is_none(),
        "SIGHUP stopped profilegate:\n{}",
        proxy.log()
    );
    assert!(
        wait_for_log(&proxy, "configuration reloaded", Duration::from_secs(5)),
        "{}",
        proxy.log()
    );
    let health = http_client()
        .get(format!("http://127.0.0.1:{}/healthz", proxy.admin_port))
        .send()
        .await
        .unwrap_or_else(|e| panic!("admin port after SIGHUP: {e}\n{}", proxy.log()));
    assert_eq!(health.status(), 200, "{}", proxy.log());
    // A second one too: the handler stays installed.
    assert!(proxy
        .signal_and_wait("HUP", Duration::from_secs(1))
        .is_none());
    assert!(
        proxy
            .signal_and_wait("TERM", Duration::from_secs(15))
            .is_some(),
        "{}",
        proxy.log()
    );
    assert!(proxy.log().contains("store synced"), "{}", proxy.log());
}

/// Stops the proxy with `signal` and asserts the store was synced before it ended.
async fn stops_after_syncing_the_store(signal: &str, limit: Duration) {
    let mut proxy = proxy_without_op().await;
    assert!(
        proxy.signal_and_wait(signal, limit).is_some(),
        "SIG{signal} did not stop profilegate in {limit:?}:\n{}",
        proxy.log()
    );
    let log = proxy.log();
    let synced = log
        .find("store synced")
        .unwrap_or_else(|| panic!("no \"store synced\" after SIG{signal}:\n{log}"));
    let stopped = log.find("profilegate stopped").unwrap_or(usize::MAX);
    assert!(synced < stopped, "{log}");
}

#[tokio::test]
async fn sigint_syncs_the_store_before_the_process_ends() {
    stops_after_syncing_the_store("INT", Duration::from_secs(10)).await;
}

#[tokio::test]
async fn sigterm_syncs_the_store_before_the_process_ends() {
    stops_after_syncing_the_store("TERM", Duration::from_secs(15)).await;
}

#[tokio::test]
async fn sigquit_syncs_the_store_before_the_process_ends() {
    // pingora's graceful upgrade: it tries to hand its listening sockets to a new process
    // first, finds none, and then stops like SIGTERM.
    stops_after_syncing_the_store("QUIT", Duration::from_secs(30)).await;
}
