//! The PostgreSQL store: several profilegate replicas share one database.
//!
//! Layout (created when missing, under an advisory lock so replicas starting together agree):
//!
//! - `profilegate_users (issuer text, subject bytea, record json, updated_at timestamptz)`, keyed
//!   by issuer + subject: one row per user, `record` the same versioned JSON the sled store
//!   keeps. The subject is `bytea` because subjects are opaque (a NUL is allowed, and PostgreSQL
//!   text cannot hold one); `convert_from(subject, 'UTF8')` shows it. `record` is `json`, not
//!   `jsonb`, for the same reason: it keeps `\u0000` in answers as written.
//! - `profilegate_meta (name text, value bytea)`: `format` (the layout version, `1`) and
//!   `secret/<name>`.
//!
//! Every write is one transaction that reads the row `FOR UPDATE`, applies the change and writes
//! it back, so concurrent writers of one user (on any replica) never lose each other's changes.
//! A user's first write inserts with `ON CONFLICT DO NOTHING` and retries on the winner's row.
//! Answers, skips and secrets commit synchronously (durable when the call returns). A login's
//! bookkeeping commits with `synchronous_commit = off`: PostgreSQL's WAL writer takes it to disk
//! within a fraction of a second, and [`ProfileStore::sync`] forces it.
//!
//! Connections come from a pool (`deadpool-postgres`). Their I/O runs on a thread of the store's
//! own (a one-thread tokio runtime): the proxy's runtimes come and go (the start-up one is
//! dropped once the store is open, each worker has its own), and a connection made on one of them
//! would die with it.
//!
//! TLS: with `sslmode=require` in the URL the connection uses rustls and verifies the server's
//! certificate and name (what libpq calls `verify-full`) against `store.tls_ca_file`, or the
//! Mozilla roots of `webpki-roots` without it. Any other `sslmode` (the default is `prefer`)
//! connects without TLS: use it on loopback or a private network.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{
    Connect, Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime,
};
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::NoTls;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::record::{self, ProfileRecord, Skip, StoredAnswer};
use super::{ProfileStore, StoreError, UserKey};
use crate::config::postgres::{parse_ca, parse_url};

/// The layout version in `profilegate_meta`.
const FORMAT_VALUE: &[u8] = b"1";
/// Taken (per transaction) while creating the tables: an arbitrary constant of profilegate's.
const SCHEMA_LOCK: i64 = 0x7072_6f66_696c_6567; // "profileg"

const CREATE_META: &str = "CREATE TABLE IF NOT EXISTS profilegate_meta (
    name text PRIMARY KEY,
    value bytea NOT NULL
)";
const CREATE_USERS: &str = "CREATE TABLE IF NOT EXISTS profilegate_users (
    issuer text NOT NULL,
    subject bytea NOT NULL,
    record json NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (issuer, subject)
)";
const SELECT_RECORD: &str =
    "SELECT record::text FROM profilegate_users WHERE issuer = $1 AND subject = $2";
const SELECT_RECORD_FOR_UPDATE: &str =
    "SELECT record::text FROM profilegate_users WHERE issuer = $1 AND subject = $2 FOR UPDATE";
const UPDATE_RECORD: &str =
    "UPDATE profilegate_users SET record = $3::text::json, updated_at = now()
    WHERE issuer = $1 AND subject = $2";
const INSERT_RECORD: &str = "INSERT INTO profilegate_users (issuer, subject, record)
    VALUES ($1, $2, $3::text::json) ON CONFLICT (issuer, subject) DO NOTHING";
const SELECT_META: &str = "SELECT value FROM profilegate_meta WHERE name = $1";
const INSERT_META: &str =
    "INSERT INTO profilegate_meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";

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

/// How a write is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Commit {
    /// Answers and skips: a new revision, committed synchronously.
    Durable,
    /// A login's counters and times: same revision, `synchronous_commit = off`.
    Background,
}

/// The PostgreSQL-backed [`ProfileStore`].
pub struct PgStore {
    pool: Pool,
    /// "database D at host:port as user U", for messages (never the password).
    target: String,
    /// How long a caller waits for a connection ([`PgOptions::timeout`]), for messages.
    timeout: Duration,
    /// Stops the connections' thread when the store is dropped.
    _io: IoThread,
}

/// A thread running a one-thread tokio runtime on which every connection is made and driven.
struct IoThread {
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

impl PgStore {
    /// Connects to the database of `url` and creates profilegate's tables when missing.
    pub async fn open(url: &str, options: PgOptions) -> Result<PgStore, StoreError> {
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
        let store = PgStore {
            pool,
            target,
            timeout: options.timeout,
            _io: io,
        };
        store.create_tables().await?;
        tracing::info!(store = %store.target, "PostgreSQL store ready");
        Ok(store)
    }

    /// What this store is connected to, for logs (no password).
    pub fn target(&self) -> &str {
        &self.target
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| self.pool_error(e))
    }

    async fn create_tables(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let encoding: String = client
            .query_one("SHOW server_encoding", &[])
            .await
            .map_err(|e| self.pg_error(e))?
            .get(0);
        if encoding != "UTF8" {
            return Err(StoreError::NotSupported(format!(
                "{} uses the encoding {encoding}; profilegate needs a UTF8 database (CREATE \
                 DATABASE ... ENCODING 'UTF8')",
                self.target
            )));
        }
        let tx = client.transaction().await.map_err(|e| self.pg_error(e))?;
        // "relation ... already exists, skipping" notices would reach the log at every start.
        tx.batch_execute("SET LOCAL client_min_messages TO warning")
            .await
            .map_err(|e| self.pg_error(e))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
            .await
            .map_err(|e| self.pg_error(e))?;
        for statement in [CREATE_META, CREATE_USERS] {
            tx.batch_execute(statement)
                .await
                .map_err(|e| self.pg_error(e))?;
        }
        tx.execute(INSERT_META, &[&"format", &FORMAT_VALUE])
            .await
            .map_err(|e| self.pg_error(e))?;
        let format: Vec<u8> = tx
            .query_one(SELECT_META, &[&"format"])
            .await
            .map_err(|e| self.pg_error(e))?
            .get(0);
        tx.commit().await.map_err(|e| self.pg_error(e))?;
        if format != FORMAT_VALUE {
            let found: String = String::from_utf8_lossy(&format).chars().take(16).collect();
            return Err(StoreError::NotSupported(format!(
                "the store in {} has layout {found:?}; this profilegate reads layout \"1\"",
                self.target
            )));
        }
        Ok(())
    }

    /// Applies `change` to the latest version of the user's record in one transaction; a
    /// [`Commit::Durable`] change gets a new revision. `None` from `change` means "no change".
    async fn update(
        &self,
        user: &UserKey,
        commit: Commit,
        change: impl Fn(Option<&ProfileRecord>) -> Option<ProfileRecord> + Send,
    ) -> Result<ProfileRecord, StoreError> {
        let issuer = user.issuer.as_str();
        let subject = user.subject.as_bytes();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.pg_error(e))?;
        if commit == Commit::Background {
            tx.batch_execute("SET LOCAL synchronous_commit TO off")
                .await
                .map_err(|e| self.pg_error(e))?;
        }
        let select = tx
            .prepare_cached(SELECT_RECORD_FOR_UPDATE)
            .await
            .map_err(|e| self.pg_error(e))?;
        let updated = loop {
            let row = tx
                .query_opt(&select, &[&issuer, &subject])
                .await
                .map_err(|e| self.pg_error(e))?;
            let current = match &row {
                Some(row) => Some(self.decode(user, row.get::<_, &str>(0))?),
                None => None,
            };
            let Some(mut next) = change(current.as_ref()) else {
                // Nothing to write; dropping the transaction rolls it back.
                return Ok(current.unwrap_or_default());
            };
            next.revision =
                current.as_ref().map_or(0, |r| r.revision) + u64::from(commit == Commit::Durable);
            let json = encode_text(&next)?;
            if current.is_some() {
                tx.execute(UPDATE_RECORD, &[&issuer, &subject, &json])
                    .await
                    .map_err(|e| self.pg_error(e))?;
                break next;
            }
            let inserted = tx
                .execute(INSERT_RECORD, &[&issuer, &subject, &json])
                .await
                .map_err(|e| self.pg_error(e))?;
            if inserted == 1 {
                break next;
            }
            // Another writer created the record first (and has committed): redo on its row.
        };
        tx.commit().await.map_err(|e| self.pg_error(e))?;
        Ok(updated)
    }

    fn decode(&self, user: &UserKey, text: &str) -> Result<ProfileRecord, StoreError> {
        record::decode(text.as_bytes()).map_err(|cause| StoreError::Corrupt {
            what: format!("profile record of {user} in {}", self.target),
            cause,
        })
    }

    fn pg_error(&self, e: tokio_postgres::Error) -> StoreError {
        // A server error's message names what failed, never a password or a stored value
        // (profilegate passes values as parameters, and the server does not quote them back
        // in the message; the DETAIL part, which may, is left out).
        let cause = match e.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => {
                // The client's own message is short ("error performing TLS handshake"); the
                // causes under it say why ("invalid peer certificate: UnknownIssuer").
                let mut text = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    text.push_str(": ");
                    text.push_str(&cause.to_string());
                    source = cause.source();
                }
                text
            }
        };
        StoreError::Unavailable(format!("{}: {cause}", self.target))
    }

    fn pool_error(&self, e: PoolError) -> StoreError {
        match e {
            PoolError::Backend(e) => self.pg_error(e),
            PoolError::Timeout(_) => StoreError::Unavailable(format!(
                "{}: no connection within {:.1} s",
                self.target,
                self.timeout.as_secs_f64()
            )),
            other => StoreError::Unavailable(format!("{}: {other}", self.target)),
        }
    }
}

fn encode_text(record: &ProfileRecord) -> Result<String, StoreError> {
    String::from_utf8(record::encode(record)?)
        .map_err(|_| StoreError::Invalid("a profile record did not encode as UTF-8".into()))
}

#[async_trait]
impl ProfileStore for PgStore {
    async fn load(&self, user: &UserKey) -> Result<Option<ProfileRecord>, StoreError> {
        let client = self.client().await?;
        // Prepared once per connection: one round trip per lookup instead of two.
        let statement = client
            .prepare_cached(SELECT_RECORD)
            .await
            .map_err(|e| self.pg_error(e))?;
        let row = client
            .query_opt(
                &statement,
                &[&user.issuer.as_str(), &user.subject.as_bytes()],
            )
            .await
            .map_err(|e| self.pg_error(e))?;
        row.map(|row| self.decode(user, row.get::<_, &str>(0)))
            .transpose()
    }

    async fn record_login(&self, user: &UserKey, at: u64) -> Result<ProfileRecord, StoreError> {
        self.update(user, Commit::Background, |current| {
            record::with_login(current, at)
        })
        .await
    }

    async fn save_answers(
        &self,
        user: &UserKey,
        answers: Vec<(String, StoredAnswer)>,
    ) -> Result<ProfileRecord, StoreError> {
        record::check_storable(&answers)?;
        self.update(user, Commit::Durable, |current| {
            record::with_answers(current, &answers)
        })
        .await
    }

    async fn record_skip(
        &self,
        user: &UserKey,
        id: &str,
        skip: Skip,
    ) -> Result<ProfileRecord, StoreError> {
        self.update(user, Commit::Durable, |current| {
            record::with_skip(current, id, skip)
        })
        .await
    }

    async fn get_or_create_secret(
        &self,
        name: &str,
        create: &(dyn Fn() -> Vec<u8> + Send + Sync),
    ) -> Result<Vec<u8>, StoreError> {
        let key = format!("secret/{name}");
        let client = self.client().await?;
        loop {
            if let Some(row) = client
                .query_opt(SELECT_META, &[&key])
                .await
                .map_err(|e| self.pg_error(e))?
            {
                return Ok(row.get(0));
            }
            let fresh = create();
            if fresh.is_empty() {
                // Kept forever once stored: an empty one (a failed generator) would stick.
                return Err(StoreError::Invalid(format!(
                    "the new secret {name:?} is empty; it was not stored"
                )));
            }
            // Autocommit, synchronous: durable before anyone is handed it.
            let inserted = client
                .execute(INSERT_META, &[&key, &fresh])
                .await
                .map_err(|e| self.pg_error(e))?;
            if inserted == 1 {
                return Ok(fresh);
            }
            // Someone else stored one first: read theirs.
        }
    }

    async fn ready(&self) -> bool {
        let Ok(client) = self.client().await else {
            return false;
        };
        matches!(
            client.query_opt(SELECT_META, &[&"format"]).await,
            Ok(Some(_))
        )
    }

    async fn sync(&self) -> Result<(), StoreError> {
        // A synchronous commit that writes WAL (a transaction id is assigned) waits for the WAL
        // to be flushed up to its own commit, which covers every login committed before it.
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.pg_error(e))?;
        tx.batch_execute("SET LOCAL synchronous_commit TO on; SELECT txid_current()")
            .await
            .map_err(|e| self.pg_error(e))?;
        tx.commit().await.map_err(|e| self.pg_error(e))
    }
}
