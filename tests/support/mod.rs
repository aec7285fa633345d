//! Test harness: a real OpenID Provider (npm oidc-provider, `tests/op/server.js`), an echo
//! upstream that records what it received, and profilegate — all on loopback, on ports chosen
//! at run time. profilegate runs in the test process ([`TestEnv::start`], [`start_gate`]: the
//! gate `profilegate::server::InProcess` builds as the binary does, on `127.0.0.1:0`) or as the
//! binary ([`TestEnv::spawned`], [`start_proxy`]) where the test is about the process: its
//! command line, signals, restarts, several replicas, the admin listener.
#![allow(dead_code)]

#[allow(dead_code)]
pub mod browser;
#[allow(dead_code)]
pub mod captured_log;
#[allow(dead_code)]
pub mod child;
#[allow(dead_code)]
pub mod edge;
#[allow(dead_code)]
pub mod edge_setup;
#[allow(dead_code)]
pub mod funnel;
#[allow(dead_code)]
pub mod headers;
#[allow(dead_code)]
pub mod op;
#[allow(dead_code)]
pub mod op_keys;
#[allow(dead_code)]
pub mod op_logout;
#[allow(dead_code)]
pub mod pg;
#[allow(dead_code)]
pub mod policy;
#[allow(dead_code)]
pub mod proxy;
#[allow(dead_code)]
pub mod questions;
#[allow(dead_code)]
pub mod raw;
#[allow(dead_code)]
pub mod self_service;
#[allow(dead_code)]
pub mod tls;
#[allow(dead_code)]
pub mod upstream;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Client;
use serde_json::json;

pub use browser::*;
pub use op::TestOp;
pub use proxy::*;
#[allow(unused_imports)]
pub use upstream::{EchoUpstream, Recorded};

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

pub fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_profilegate"))
}
