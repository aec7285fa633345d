//! The in-process server of the tests: the gate [`run`](super::run) builds (the same
//! [`build`](super::build)), served with tokio + hyper on a listener the caller bound, on the
//! caller's runtime: no pingora, no signals, no admin listener. Each connection goes to one of
//! `server.threads` workers in turn, each with its own [`Gate`] (and upstream pool), as in `run`,
//! with the same listener protocols (TLS, h2c); `server.http_redirect_listen` is not served.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tracing::instrument::WithSubscriber;

use super::build::{build, gate, Built};
use super::error::StartError;
use crate::config::Config;
use crate::oidc::Provider;
use crate::proxy::Worker;
use crate::store::{ProfileStore, StoreError};

/// A running in-process server. [`InProcess::shutdown`] stops it and syncs the store; dropping
/// it stops accepting and closes the connections (the store is not synced).
///
/// Its log events (start-up, requests) go to the `tracing` subscriber current where
/// [`InProcess::start`] was called, so a test can capture its own server's log.
pub struct InProcess {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    accepting: Option<JoinHandle<()>>,
    store: Arc<dyn ProfileStore>,
    provider: Arc<Provider>,
}

impl InProcess {
    /// Builds the gate from `config` as `run` does and serves it on `listener` (bound by the
    /// caller, on the address `server.listen` names or port 0) from now on.
    pub async fn start(
        config: Config,
        listener: std::net::TcpListener,
    ) -> Result<InProcess, StartError> {
        let listen_error = |reason| StartError::Listen {
            key: "server.listen",
            addr: config.server.listen,
            reason,
        };
        let addr = listener.local_addr().map_err(listen_error)?;
        listener.set_nonblocking(true).map_err(listen_error)?;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(listen_error)?;

        let Built {
            store,
            provider,
            metrics: _,
            parts,
        } = build(&config, false).await?;
        let tls = config
            .server
            .tls
            .as_ref()
            .map(super::tls::listener_config)
            .transpose()?;
        let mut workers = Vec::with_capacity(config.server.threads);
        for _ in 0..config.server.threads.max(1) {
            let worker =
                Worker::new(gate(&config, &parts)?).with_protocols(tls.clone(), config.server.h2c);
            workers.push(Arc::new(worker));
        }
        let (stop, stopped) = watch::channel(false);
        let accepting = tokio::spawn(
            serve(listener, workers, stopped, config.server.shutdown_timeout)
                .with_current_subscriber(),
        );
        Ok(InProcess {
            addr,
            stop,
            accepting: Some(accepting),
            store,
            provider,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What `/readyz` on the admin listener says: the OP discovered and the store answering.
    pub async fn ready(&self) -> bool {
        self.provider.is_ready() && self.store.ready().await
    }

    /// Stops accepting, lets the requests in flight finish (within `server.shutdown_timeout`),
    /// closes every connection and syncs the store, as the process does at SIGTERM.
    pub async fn shutdown(mut self) -> Result<(), StoreError> {
        self.stop.send_replace(true);
        if let Some(accepting) = self.accepting.take() {
            let _ = accepting.await;
        }
        self.store.sync().await
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        // The accept task winds down by itself (while the runtime runs).
        self.stop.send_replace(true);
    }
}

/// The accept loop: each connection to the next worker, until `stopped` changes (or its
/// sender is gone); then the open connections get `grace` to finish and are cut.
async fn serve(
    listener: tokio::net::TcpListener,
    workers: Vec<Arc<Worker>>,
    mut stopped: watch::Receiver<bool>,
    grace: Duration,
) {
    let mut connections = JoinSet::new();
    let mut turn = workers.iter().cycle();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Some(worker) = turn.next().cloned() else { break };
                    let _ = stream.set_nodelay(true);
                    let mut stop = stopped.clone();
                    let shutdown = async move {
                        let _ = stop.changed().await;
                    };
                    connections.spawn(
                        async move { worker.serve_connection(stream, Some(peer.ip()), shutdown).await }
                            .with_current_subscriber(),
                    );
                }
                Err(e) => {
                    // Out of file descriptors, say: try again shortly rather than spin.
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    // Dropping the set aborts whatever is still open.
}
