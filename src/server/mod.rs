//! Start-up: builds the pingora server (public proxy + admin listener, and the http → https
//! redirect listener with `server.http_redirect_listen`) from a validated [`Config`], with
//! the TLS settings of `server.tls_cert_file` (tls.rs) for the workers, discovers the OP
//! before serving, and runs until SIGINT, SIGTERM or SIGQUIT;
//! SIGHUP (and `POST /admin/reload`) reloads the configuration file (`reload.rs`). The store is
//! synced before the process ends.

use std::path::Path;
use std::sync::Arc;

use pingora::listeners::TcpSocketOptions;
use pingora::server::configuration::ServerConf;
use pingora::server::{ListenFds, RunArgs, RuntimeOpts, Server, ShutdownWatch};
use pingora::services::listening::Service;

use crate::admin::{Admin, AdminAuth, AdminContext};
use crate::config::Config;
use crate::jwt::SigningKey;
use crate::oidc::{BackChannel, DiscoverySummary, Provider};
use crate::pipeline::Routes;
use crate::proxy::Worker;
use crate::render::{Pages, Theme};

mod build;
mod error;
mod https_redirect;
mod in_process;
mod reload;
mod tls;

use build::{build, callback_url, gate, Built};
pub use error::StartError;
use https_redirect::HttpsRedirect;
pub use in_process::InProcess;
use reload::Reloader;

/// Everything `profilegate check` can verify without contacting anything: every step of
/// [`run`] that depends on the configuration alone (templates, the JWT key, the OIDC settings,
/// the upstream's request URI; the example session secret is refused by [`Config::load`]).
/// What depends on the machine at that moment (a listening port taken, the store's directory
/// locked or unwritable, the database or the OP unreachable) is left to start-up, which
/// names it: a check that passes on one machine would say nothing about another.
pub fn check(config: &Config) -> Result<(), StartError> {
    Pages::new(
        Theme::from_config(&config.theme, &config.server.public_url),
        &config.theme.templates,
    )?;
    if let Some(pem) = &config.upstream.jwt_key_pem {
        SigningKey::from_pem(pem.expose())?;
    }
    let routes = Routes::new(&config.server.prefix);
    Provider::new(&config.oidc, callback_url(config, &routes)).map_err(StartError::Oidc)?;
    crate::proxy::upstream_request_uri(&config.upstream)?;
    Ok(())
}

/// `check --online`: discovery against the configured OP, as start-up runs it.
pub fn check_online(config: &Config) -> Result<DiscoverySummary, StartError> {
    let routes = Routes::new(&config.server.prefix);
    let provider =
        Provider::new(&config.oidc, callback_url(config, &routes)).map_err(StartError::Oidc)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(StartError::Runtime)?;
    rt.block_on(provider.discover_with(&BackChannel::new(config.oidc.timeout)))
        .map_err(StartError::Discovery)
}

/// Runs the proxy until it is told to stop. `config` was read from `config_path`, which a
/// reload reads again.
pub fn run(config: Config, config_path: &Path) -> Result<(), StartError> {
    // Start-up on a runtime dropped afterwards: its pooled connections (the store's, the
    // discovery's) die with it, and the proxy's runtime builds its own back-channel client.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(StartError::Runtime)?;
    let Built {
        store,
        provider,
        metrics,
        parts,
    } = rt.block_on(build(&config, true))?;
    drop(rt);
    // The question funnel's figures reach the store about once a second (and below, at stop).
    crate::metrics::spawn_funnel_flusher(metrics.clone(), store.clone())
        .map_err(StartError::Runtime)?;

    let conf = ServerConf {
        threads: 1,
        // Each proxy worker is its own service with one single-threaded runtime (below).
        work_stealing: false,
        // No grace period: SIGTERM stops accepting at once, then in-flight requests get
        // `server.shutdown_timeout` to finish (pingora's 300 s default would hold the store lock).
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(config.server.shutdown_timeout.as_secs()),
        // Timeouts of a second or more on tokio's timers (per runtime, woken only when one is
        // due) rather than pingora's "fast" timers, whose clock thread, once started, wakes
        // every 10 ms for good: about 2 ms of CPU per second even when idle, which a sidecar
        // mostly is. docs/performance.md (the hot-path changes) has the figures.
        fast_timeout_to_tokio_threshold_seconds: Some(0),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    // One single-threaded pingora service per worker, each with its own listening socket on
    // the same address (SO_REUSEPORT: the kernel spreads connections over them; see `OwnSocket`)
    // and its own upstream connection pool: nothing of a request crosses threads. pingora
    // accepts the connections; each worker speaks HTTP/1.1 on them with hyper (`Worker`), which
    // costs about half of pingora-proxy's own request handling. docs/performance.md
    // ("pingora-proxy → hyper") has the figures.
    let mut reuse_port = TcpSocketOptions::default();
    reuse_port.so_reuseport = Some(true);
    let listen = config.server.listen.to_string();
    // One rustls configuration (and one certificate watcher) for every worker.
    let tls = config
        .server
        .tls
        .as_ref()
        .map(tls::listener_config)
        .transpose()?;
    let mut slots = Vec::with_capacity(config.server.threads);
    for worker in 0..config.server.threads {
        let worker_app =
            Worker::new(gate(&config, &parts)?).with_protocols(tls.clone(), config.server.h2c);
        slots.push(worker_app.gate_slot());
        let mut proxy = Service::new(format!("profilegate proxy {worker}"), worker_app);
        proxy.add_tcp_with_settings(&listen, reuse_port.clone());
        proxy.threads = Some(1);
        server.add_service(OwnSocket(proxy));
    }

    let auth = AdminAuth::from_config(&config.admin);
    let reloader = Arc::new(Reloader::new(
        config_path.to_owned(),
        config.clone(),
        parts,
        slots,
        auth.clone(),
    ));
    let mut admin = Service::new(
        "profilegate admin".to_owned(),
        Admin::new(AdminContext {
            provider,
            store: store.clone(),
            metrics: metrics.clone(),
            auth,
            reloader: Some(reloader.clone()),
        }),
    );
    admin.add_tcp(&config.server.admin_listen.to_string());
    admin.threads = Some(1);

    server.add_service(admin);
    if let Some(redirect_listen) = config.server.http_redirect_listen {
        let mut redirect = Service::new(
            "profilegate http redirect".to_owned(),
            HttpsRedirect::new(config.server.public_url.origin()),
        );
        redirect.add_tcp(&redirect_listen.to_string());
        redirect.threads = Some(1);
        server.add_service(redirect);
    }
    tracing::info!(
        listen = %config.server.listen,
        admin = %config.server.admin_listen,
        public_url = config.server.public_url.origin(),
        upstream = %config.upstream.url,
        mode = ?config.server.mode,
        threads = config.server.threads,
        tls = config.server.tls.is_some(),
        "profilegate starting"
    );
    reload_on_hangup(reloader)?;
    server.run(RunArgs::default());
    let funnel = &metrics.funnel;
    // Logins are written without waiting for the disk (answers are flushed when they are
    // stored): make the last ones durable before the process ends.
    let stopping = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(StartError::Runtime)?;
    if let Err(e) = stopping.block_on(funnel.flush(&*store)) {
        tracing::error!(error = %e, "the question funnel's last figures were not stored");
    }
    let synced = stopping.block_on(store.sync());
    match synced {
        Ok(()) => tracing::info!("store synced"),
        Err(e) => tracing::error!(error = %e, "the store could not be written to disk at shutdown"),
    }
    tracing::info!("profilegate stopped");
    Ok(())
}

/// SIGHUP reloads the configuration file (see [`Reloader`]).
///
/// pingora handles SIGINT, SIGTERM and SIGQUIT (each stops the server, after which [`run`]
/// syncs the store) but not SIGHUP, whose default action ends the process at once: unlogged,
/// and without the store's last writes. The handler is registered before this returns, so no
/// SIGHUP after start-up can take the default action; its thread lives as long as the process
/// and runs each reload itself (one at a time; a reload reads files).
fn reload_on_hangup(reloader: Arc<Reloader>) -> Result<(), StartError> {
    use crate::admin::Reload;
    use tokio::signal::unix::{signal, SignalKind};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(StartError::Runtime)?;
    let mut hangup = {
        let _entered = rt.enter();
        signal(SignalKind::hangup()).map_err(StartError::Runtime)?
    };
    std::thread::Builder::new()
        .name("sighup".into())
        .spawn(move || {
            rt.block_on(async {
                while hangup.recv().await.is_some() {
                    tracing::info!("SIGHUP received: reloading the configuration");
                    reloader.reload("SIGHUP");
                }
            })
        })
        .map_err(StartError::Runtime)?;
    Ok(())
}

/// A pingora service that binds its own listening socket.
///
/// pingora keeps one table of listening sockets per process, keyed by address (it hands them
/// to a new process in a graceful upgrade, which profilegate does not use), and a second
/// service on an address already in the table takes the same socket instead of binding its
/// own. All workers then wait on one socket, and the first to wake accepts every connection
/// queued at that moment: a client opening 32 connections at once often had them all on one
/// worker while the other stayed idle. Without the table each worker binds its own
/// SO_REUSEPORT socket and the kernel spreads new connections over them. Also used by the
/// benchmark's bare pingora proxy (tests/bench/bare_pingora.rs), so both listen alike.
pub struct OwnSocket<S>(pub S);

#[async_trait::async_trait]
impl<S: pingora::services::Service> pingora::services::Service for OwnSocket<S> {
    async fn start_service(
        &mut self,
        _fds: Option<ListenFds>,
        shutdown: ShutdownWatch,
        listeners_per_fd: usize,
    ) {
        self.0.start_service(None, shutdown, listeners_per_fd).await
    }

    fn name(&self) -> &str {
        self.0.name()
    }

    fn threads(&self) -> Option<usize> {
        self.0.threads()
    }

    fn runtime_opts_override(&self, global: &RuntimeOpts) -> Option<RuntimeOpts> {
        self.0.runtime_opts_override(global)
    }
}
