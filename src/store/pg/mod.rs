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
//! - `profilegate_funnel (question text, version integer, counters bigint…, answer_buckets
//!   bigint[])`: the question funnel's totals, one row per question version, added to with an
//!   upsert (`UPDATE … SET n = n + $1`), so replicas' batches add up.
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

mod connect;
mod listen;
mod sessions;
mod sql;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Pool, PoolError};

use self::connect::{Connected, IoThread};
use self::sql::{
    ADD_FUNNEL, CREATE_FUNNEL, CREATE_META, CREATE_SESSIONS, CREATE_USERS, DELETE_RECORD,
    FORMAT_VALUE, INSERT_META, INSERT_RECORD, NOTIFY, SCAN_AFTER, SCAN_FIRST, SCHEMA_LOCK,
    SELECT_FUNNEL, SELECT_META, SELECT_RECORD, SELECT_RECORD_FOR_UPDATE, UPDATE_RECORD,
};
use super::admin::Imported;
use super::api::{erase_answers_change, import_change, Commit, ProfileStore, RecordChange};
use super::changes::{UserChange, UserChanges};
use super::error::StoreError;
use super::funnel::{FunnelCounts, FunnelRow, ANSWER_BUCKETS};
use super::key::UserKey;
use super::record::{self, ProfileRecord};

pub use self::connect::{PgOptions, PgTls};

/// The PostgreSQL-backed [`ProfileStore`].
pub struct PgStore {
    pool: Pool,
    /// "database D at host:port as user U", for messages (never the password).
    target: String,
    /// How long a caller waits for a connection ([`PgOptions::timeout`]), for messages.
    timeout: Duration,
    /// The caches to tell about erases and imports, here and (through `LISTEN`) elsewhere.
    changes: Arc<UserChanges>,
    /// Writers waiting for their notification to come back (`listen.rs`).
    echoes: Arc<listen::Echoes>,
    /// Stops the connections' thread when the store is dropped.
    _io: IoThread,
}

impl PgStore {
    /// Connects to the database of `url` and creates profilegate's tables when missing.
    pub async fn open(url: &str, options: PgOptions) -> Result<PgStore, StoreError> {
        let Connected {
            pool,
            target,
            io,
            direct,
        } = connect::pool(url, &options)?;
        let changes = Arc::new(UserChanges::new());
        let store = PgStore {
            pool,
            target,
            timeout: options.timeout,
            changes,
            echoes: Arc::new(listen::Echoes::new()),
            _io: io,
        };
        store.create_tables().await?;
        listen::start(
            store._io.handle(),
            direct,
            Arc::downgrade(&store.changes),
            store.echoes.clone(),
            store.target.clone(),
        );
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
        for statement in [CREATE_META, CREATE_USERS, CREATE_FUNNEL, CREATE_SESSIONS] {
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

    /// [`ProfileStore::update_record`]; with `notify`, a written change also notifies the other
    /// replicas, in the same transaction.
    async fn write_record(
        &self,
        user: &UserKey,
        commit: Commit,
        change: &RecordChange<'_>,
        notify: bool,
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
            let Some(next) = change(current.as_ref()) else {
                // Nothing to write; dropping the transaction rolls it back.
                return Ok(current.unwrap_or_default());
            };
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
        if notify {
            // Not waited for (an admin erase waits, `erase`): the replicas hear it within
            // milliseconds, and waiting for the echo of each imported line would make a
            // migration crawl.
            self.notify_and_commit(tx, user, false).await?;
        } else {
            tx.commit().await.map_err(|e| self.pg_error(e))?;
        }
        Ok(updated)
    }

    /// Notifies the other replicas that `user`'s record changed and commits; with `wait`, then
    /// waits (at most [`listen::ECHO_WAIT`]) until the notification comes back to this
    /// instance's listener, and [`listen::ECHO_GRACE`] more: by then the server has sent it to
    /// every replica's.
    async fn notify_and_commit(
        &self,
        tx: deadpool_postgres::Transaction<'_>,
        user: &UserKey,
        wait: bool,
    ) -> Result<(), StoreError> {
        let (token, heard) = self.echoes.expect();
        let sent = async {
            tx.execute(NOTIFY, &[&listen::CHANNEL, &listen::payload(user, &token)])
                .await?;
            tx.commit().await
        };
        if let Err(e) = sent.await {
            self.echoes.forget(&token);
            return Err(self.pg_error(e));
        }
        if !wait {
            self.echoes.forget(&token);
            return Ok(());
        }
        if tokio::time::timeout(listen::ECHO_WAIT, heard).await.is_ok() {
            tokio::time::sleep(listen::ECHO_GRACE).await;
        } else {
            self.echoes.forget(&token);
            tracing::warn!(store = %self.target,
                "an erase's notification did not come back within 1 s: is the LISTEN connection \
                 down? (the other replicas drop their caches when it is back)");
        }
        Ok(())
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

    /// One transaction: the row is read `FOR UPDATE` (other writers of the user, on any
    /// replica, wait for our commit), changed and written back; a user's first write inserts
    /// and, when another writer inserted first, redoes the change on the winner's row. A
    /// [`Commit::Background`] change commits with `synchronous_commit = off`.
    async fn update_record(
        &self,
        user: &UserKey,
        commit: Commit,
        change: &RecordChange<'_>,
    ) -> Result<ProfileRecord, StoreError> {
        self.write_record(user, commit, change, false).await
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

    // ---- administration (issue 18) ---------------------------------------------------------

    /// One transaction: the row is deleted and the other replicas notified, at commit.
    async fn erase(&self, user: &UserKey) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.pg_error(e))?;
        let deleted = tx
            .execute(
                DELETE_RECORD,
                &[&user.issuer.as_str(), &user.subject.as_bytes()],
            )
            .await
            .map_err(|e| self.pg_error(e))?;
        if deleted > 0 {
            self.notify_and_commit(tx, user, true).await?;
        } else {
            tx.commit().await.map_err(|e| self.pg_error(e))?;
        }
        self.changes.publish(&UserChange::User(user.clone()));
        Ok(deleted > 0)
    }

    async fn scan(
        &self,
        after: Option<&UserKey>,
        limit: usize,
    ) -> Result<Vec<(UserKey, ProfileRecord)>, StoreError> {
        let client = self.client().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = match after {
            None => client.query(SCAN_FIRST, &[&limit]).await,
            Some(after) => {
                client
                    .query(
                        SCAN_AFTER,
                        &[&after.issuer.as_str(), &after.subject.as_bytes(), &limit],
                    )
                    .await
            }
        }
        .map_err(|e| self.pg_error(e))?;
        rows.iter()
            .map(|row| {
                let issuer: String = row.get(0);
                let subject: Vec<u8> = row.get(1);
                let subject = String::from_utf8(subject).map_err(|_| StoreError::Corrupt {
                    what: format!("a subject of issuer {issuer:?} in {}", self.target),
                    cause: "not UTF-8".into(),
                })?;
                let user = UserKey::new(issuer, subject);
                let record = self.decode(&user, row.get::<_, &str>(2))?;
                Ok((user, record))
            })
            .collect()
    }

    async fn import(&self, user: &UserKey, record: &ProfileRecord) -> Result<Imported, StoreError> {
        let outcome = std::sync::Mutex::new(Imported::Unchanged);
        let change = import_change(record, &outcome);
        self.write_record(user, Commit::Background, &change, true)
            .await?;
        let outcome = *outcome
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if outcome.wrote() {
            self.changes.publish(&UserChange::User(user.clone()));
        }
        Ok(outcome)
    }

    fn user_changes(&self) -> &UserChanges {
        &self.changes
    }

    /// As the trait's, with the other replicas notified in the same transaction (not waited
    /// for: the user's own next request is already served from the new revision here).
    async fn erase_answers(&self, user: &UserKey) -> Result<ProfileRecord, StoreError> {
        let erased = self
            .write_record(user, Commit::Durable, &erase_answers_change, true)
            .await?;
        self.changes.publish(&UserChange::User(user.clone()));
        Ok(erased)
    }

    // ---- Question funnel (issue 18, D) ----

    /// One transaction of upserts, in key order (two replicas' batches never deadlock).
    async fn add_funnel(&self, deltas: &[FunnelRow]) -> Result<(), StoreError> {
        if deltas.is_empty() {
            return Ok(());
        }
        let mut sorted: Vec<&FunnelRow> = deltas.iter().collect();
        sorted.sort_by(|a, b| (&a.question, a.version).cmp(&(&b.question, b.version)));
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.pg_error(e))?;
        let add = tx
            .prepare_cached(ADD_FUNNEL)
            .await
            .map_err(|e| self.pg_error(e))?;
        for row in sorted {
            let c = &row.counts;
            let buckets: Vec<i64> = c.answer_buckets.iter().map(|n| to_i64(*n)).collect();
            let version = i32::try_from(row.version).unwrap_or(i32::MAX);
            tx.execute(
                &add,
                &[
                    &row.question,
                    &version,
                    &to_i64(c.shown),
                    &to_i64(c.answered),
                    &to_i64(c.skipped),
                    &to_i64(c.invalid),
                    &to_i64(c.answer_count),
                    &to_i64(c.answer_millis_sum),
                    &buckets,
                ],
            )
            .await
            .map_err(|e| self.pg_error(e))?;
        }
        tx.commit().await.map_err(|e| self.pg_error(e))
    }

    async fn funnel_totals(&self) -> Result<Vec<FunnelRow>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(SELECT_FUNNEL, &[])
            .await
            .map_err(|e| self.pg_error(e))?;
        let count = |row: &tokio_postgres::Row, i: usize| to_u64(row.get::<_, i64>(i));
        Ok(rows
            .iter()
            .map(|row| {
                let mut answer_buckets = [0u64; ANSWER_BUCKETS];
                let stored: Vec<i64> = row.get(8);
                for (bucket, n) in answer_buckets.iter_mut().zip(stored) {
                    *bucket = to_u64(n);
                }
                FunnelRow {
                    question: row.get(0),
                    version: u32::try_from(row.get::<_, i32>(1)).unwrap_or(0),
                    counts: FunnelCounts {
                        shown: count(row, 2),
                        answered: count(row, 3),
                        skipped: count(row, 4),
                        invalid: count(row, 5),
                        answer_count: count(row, 6),
                        answer_millis_sum: count(row, 7),
                        answer_buckets,
                    },
                }
            })
            .collect())
    }
}

/// A counter as PostgreSQL's `bigint` (saturating).
fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A stored `bigint` counter (never negative unless edited by hand: then 0).
fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
