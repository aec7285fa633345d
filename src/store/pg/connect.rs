//! Connecting the PostgreSQL store: options, the pool (`deadpool-postgres`), the I/O thread the
//! connections live on, and TLS (rustls for `sslmode=require`). [`super::PgStore::open`] calls
//! [`pool`] and then creates the tables.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Connect, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::task::JoinHandle;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::NoTls;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::postgres::{parse_ca, parse_url};
use crate::store::error::StoreError;

/// TLS settings of the PostgreSQL store.
#[derive(Debug, Clone, Default)]
pub struct PgTls {
    /// PEM certificates that may sign the server's (`store.tls_ca_file`); `None`: the Mozilla
    /// roots.
    pub ca_pem: Option<Vec<u8>>,
}

/// Tuning of the PostgreSQL store. The defaults suit production.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connections kept open at most. Default 8: writes are short transactions, and the hot path
    /// reads the profile cache, not the database.
    pub pool_size: usize,
    /// How long connecting (and waiting for a free connection) may take. Default 5 s.
    pub timeout: Duration,
    /// Used when the URL says `sslmode=require`.
    pub tls: PgTls,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            pool_size: 8,
            timeout: Duration::from_secs(5),
            tls: PgTls::default(),
        }
    }
}

/// A thread running a one-thread tokio runtime on which every connection is made and driven.
pub(super) struct IoThread {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl IoThread {
    fn start() -> Result<IoThread, StoreError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot start the PostgreSQL I/O runtime: {e}"))
            })?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("profilegate-postgres".into())
            // Runs until the store is dropped; the runtime (and its connections) go with it.
            .spawn(move || {
                let _ = runtime.block_on(stopped);
            })
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot start the PostgreSQL I/O thread: {e}"))
            })?;
        Ok(IoThread {
            handle,
            stop: Some(stop),
        })
    }
}

impl Drop for IoThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// deadpool's connector, with the connection made and driven on the [`IoThread`].
struct ConnectOnIoThread {
    io: tokio::runtime::Handle,
    /// `None`: no TLS.
    tls: Option<MakeRustlsConnect>,
}

/// Drives a connection until it ends, logging why it ended if it failed.
async fn drive<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Err(e) = connection.await {
        tracing::warn!(error = %e, "PostgreSQL connection lost");
    }
}

type ConnectFuture<'a> = Pin<
    Box<
        dyn Future<Output = Result<(tokio_postgres::Client, JoinHandle<()>), tokio_postgres::Error>>
            + Send
            + 'a,
    >,
>;

impl Connect for ConnectOnIoThread {
    fn connect(&self, pg_config: &tokio_postgres::Config) -> ConnectFuture<'_> {
        let pg_config = pg_config.clone();
        let io = self.io.clone();
        let tls = self.tls.clone();
        Box::pin(async move {
            let made = io.spawn(async move {
                Ok(match tls {
                    Some(tls) => {
                        let (client, connection) = pg_config.connect(tls).await?;
                        (client, tokio::spawn(drive(connection)))
                    }
                    None => {
                        let (client, connection) = pg_config.connect(NoTls).await?;
                        (client, tokio::spawn(drive(connection)))
                    }
                })
            });
            match made.await {
                Ok(result) => result,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Only when the store is being dropped: nobody is left to connect for.
                Err(_) => panic!("the PostgreSQL I/O thread stopped while connecting"),
            }
        })
    }
}

/// The rustls connector for `sslmode=require`.
fn tls_connector(tls: &PgTls) -> Result<MakeRustlsConnect, String> {
    let mut roots = rustls::RootCertStore::empty();
    match &tls.ca_pem {
        Some(pem) => {
            roots.add_parsable_certificates(parse_ca(pem)?);
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS setup: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

fn describe(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "?".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "PostgreSQL database {} at {host}:{port} as user {}",
        config.get_dbname().unwrap_or("(default)"),
        config.get_user().unwrap_or("(default)")
    )
}

/// A pool ready to hand out connections, and what it is connected to.
pub(super) struct Connected {
    pub(super) pool: Pool,
    /// "database D at host:port as user U", for messages (never the password).
    pub(super) target: String,
    /// The thread the connections live on; stops when dropped.
    pub(super) io: IoThread,
    /// What a connection of its own (the `LISTEN` one, outside the pool) is made with.
    pub(super) direct: DirectConnect,
}

/// Makes one connection outside the pool, driven by its caller (who reads its notifications).
#[derive(Clone)]
pub(super) struct DirectConnect {
    config: tokio_postgres::Config,
    tls: Option<MakeRustlsConnect>,
}

impl DirectConnect {
    /// Connects; the caller must poll the connection (it carries the notifications).
    pub(super) async fn connect(
        &self,
    ) -> Result<(tokio_postgres::Client, Pin<Box<dyn MessageSource>>), tokio_postgres::Error> {
        match &self.tls {
            Some(tls) => {
                let (client, connection) = self.config.connect(tls.clone()).await?;
                Ok((client, Box::pin(connection)))
            }
            None => {
                let (client, connection) = self.config.connect(NoTls).await?;
                Ok((client, Box::pin(connection)))
            }
        }
    }
}

/// A connection seen only as the messages it delivers (notifications among them).
pub(super) trait MessageSource: Send {
    fn poll_message(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<tokio_postgres::AsyncMessage, tokio_postgres::Error>>>;
}

impl<S, T> MessageSource for tokio_postgres::Connection<S, T>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    fn poll_message(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<tokio_postgres::AsyncMessage, tokio_postgres::Error>>> {
        tokio_postgres::Connection::poll_message(self.get_mut(), cx)
    }
}

impl IoThread {
    /// The runtime the connections (and the `LISTEN` task) run on.
    pub(super) fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }
}

/// Builds the pool for `url` (nothing is connected yet: the first `get` connects).
pub(super) fn pool(url: &str, options: &PgOptions) -> Result<Connected, StoreError> {
    let mut config =
        parse_url(url).map_err(|e| StoreError::Unavailable(format!("store.url {e}")))?;
    let target = describe(&config);
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(options.timeout);
    }
    if config.get_application_name().is_none() {
        config.application_name("profilegate");
    }
    let tls = match config.get_ssl_mode() {
        SslMode::Require => Some(
            tls_connector(&options.tls)
                .map_err(|e| StoreError::Unavailable(format!("{target}: {e}")))?,
        ),
        _ => {
            tracing::warn!(
                store = %target,
                "the connection to PostgreSQL is not encrypted (add sslmode=require to \
                 store.url for TLS)"
            );
            None
        }
    };
    let io = IoThread::start()?;
    let direct = DirectConnect {
        config: config.clone(),
        tls: tls.clone(),
    };
    let manager = Manager::from_connect(
        config,
        ConnectOnIoThread {
            io: io.handle.clone(),
            tls,
        },
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(options.pool_size.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(options.timeout))
        .create_timeout(Some(options.timeout))
        .recycle_timeout(Some(options.timeout))
        .build()
        .map_err(|e| StoreError::Unavailable(format!("{target}: {e}")))?;
    Ok(Connected {
        pool,
        target,
        io,
        direct,
    })
}
