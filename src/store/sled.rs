//! The embedded store on sled 0.34: one directory, one process.
//!
//! Layout: tree `users` maps [`UserKey::storage_key`] to the record's versioned JSON; tree
//! `meta` holds `format` (the layout version, `1`) and `secret/<name>` (raw bytes); tree
//! `funnel` maps `<question>/<version>` to that question version's funnel totals (JSON of
//! [`FunnelCounts`]), each batch added with an atomic update and flushed; the session records'
//! trees are described at [`SessionTrees`].
//! Writes are compare-and-swap loops over the record (so concurrent writers of one user both
//! land) followed by a flush (so no answer is acknowledged before it is on disk). A login's
//! bookkeeping is the exception: sled's background flush (every 500 ms) takes it to disk.
//!
//! Flushing is a group commit: one blocking `Db::flush` at a time, on tokio's blocking pool,
//! covers every write finished before it started; writers that finish meanwhile share the next
//! one. sled's own `flush_async` is not used: in 0.34.7 concurrent calls deadlock, the flushes
//! filling sled's I/O pool while the buffer writes they wait for queue behind them
//! (spacejam/sled#1308; seen here with 32 concurrent writers).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::admin::Imported;
use super::api::{import_change, Commit, ProfileStore, RecordChange};
use super::changes::{UserChange, UserChanges};
use super::error::StoreError;
use super::funnel::{FunnelCounts, FunnelRow};
use super::key::UserKey;
use super::record::{self, ProfileRecord};

mod sessions;

const USERS_TREE: &str = "users";
const META_TREE: &str = "meta";
const FUNNEL_TREE: &str = "funnel";
const FORMAT_KEY: &[u8] = b"format";
const FORMAT_VALUE: &[u8] = b"1";
const SECRET_PREFIX: &[u8] = b"secret/";

/// Tuning of the sled store. The defaults suit production.
#[derive(Debug, Clone)]
pub struct SledOptions {
    /// sled's page cache, in bytes (`store.cache_size`). Default 16 MiB: a million records
    /// (about 300 MB) cannot all be in memory under the issue-6 budget of 64 MB, and the hot path
    /// reads the profile cache; a lookup of a page not cached reads it from the file (the OS page
    /// cache): about 10 µs, with a tail of about 100 µs from sled's evictions. sled counts pages
    /// at their on-disk size, and in memory they take more, so it is a target, not a hard limit.
    /// sled's own bookkeeping of every page (about 50 bytes per stored user) comes on top.
    pub cache_capacity: u64,
    /// How long opening waits for the directory lock before giving up. Default 2 s: long enough
    /// for a process (or an earlier handle in this process) that is just closing to let go.
    pub lock_wait: Duration,
}

impl Default for SledOptions {
    fn default() -> Self {
        SledOptions {
            cache_capacity: crate::config::DEFAULT_STORE_CACHE_SIZE,
            lock_wait: Duration::from_secs(2),
        }
    }
}

/// The sled-backed [`ProfileStore`].
pub struct SledStore {
    path: PathBuf,
    db: sled::Db,
    users: sled::Tree,
    meta: sled::Tree,
    funnel: sled::Tree,
    /// Session records, their indexes, the revocation log and use-once marks.
    session_trees: SessionTrees,
    /// Set by a failed flush, cleared by a good one; `ready()` reports it.
    flush_failed: AtomicBool,
    /// Tickets taken by callers that need durability, in order.
    tickets: AtomicU64,
    /// The highest ticket known to be on disk; held while a flush runs.
    flushed: tokio::sync::Mutex<u64>,
    /// The caches to tell about erases and imports (one process per directory: no one else).
    changes: UserChanges,
}

impl SledStore {
    /// Opens (creating if needed, parents included) the store in directory `path`.
    pub async fn open(path: &Path, options: SledOptions) -> Result<SledStore, StoreError> {
        let path = path.to_path_buf();
        // Opening replays sled's log: disk-bound work, kept off the async workers.
        tokio::task::spawn_blocking(move || open_blocking(path, &options))
            .await
            .map_err(|e| StoreError::Unavailable(format!("opening the store failed: {e}")))?
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn decode(&self, user: &UserKey, bytes: &[u8]) -> Result<ProfileRecord, StoreError> {
        record::decode(bytes).map_err(|cause| StoreError::Corrupt {
            what: format!("profile record of {user} in {}", self.path.display()),
            cause,
        })
    }

    /// Returns once everything written before the call is on disk.
    async fn flush(&self) -> Result<(), StoreError> {
        // A ticket is taken after our write: a flush that starts after we took it covers it.
        let ticket = self.tickets.fetch_add(1, Ordering::SeqCst) + 1;
        let mut flushed = self.flushed.lock().await;
        if *flushed >= ticket {
            return Ok(()); // a flush that started after our write has finished
        }
        let covers = self.tickets.load(Ordering::SeqCst);
        let db = self.db.clone();
        let result = match tokio::task::spawn_blocking(move || db.flush()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(format!("the flush task failed: {e}")),
        };
        match result {
            Ok(()) => {
                *flushed = covers;
                self.flush_failed.store(false, Ordering::Relaxed);
                Ok(())
            }
            Err(cause) => {
                self.flush_failed.store(true, Ordering::Relaxed);
                Err(StoreError::Unavailable(format!(
                    "could not write the store at {} to disk: {cause}",
                    self.path.display()
                )))
            }
        }
    }

    fn sled_error(&self, e: sled::Error) -> StoreError {
        match e {
            sled::Error::Corruption { .. } => StoreError::Corrupt {
                what: format!("sled files in {}", self.path.display()),
                cause: e.to_string(),
            },
            other => StoreError::Unavailable(format!("store at {}: {other}", self.path.display())),
        }
    }

    #[cfg(test)]
    pub(super) fn users_tree(&self) -> &sled::Tree {
        &self.users
    }
}

fn open_blocking(path: PathBuf, options: &SledOptions) -> Result<SledStore, StoreError> {
    std::fs::create_dir_all(&path).map_err(|e| {
        StoreError::Unavailable(format!(
            "cannot create the store directory {}: {e}",
            path.display()
        ))
    })?;
    // `mode` is left alone: sled 0.34.7 stores it but never reads it. The cache capacity is
    // also capped by sled itself at a cgroup memory limit, when there is one.
    let config = sled::Config::new()
        .path(&path)
        .cache_capacity(options.cache_capacity)
        // sled's background flush: it takes logins (written without a flush of their own) and
        // sled's internal writes (ids, tree roots) to disk within half a second.
        .flush_every_ms(Some(500));

    // sled takes an exclusive flock on `<path>/db`. A handle that was just dropped may keep it
    // for a few milliseconds (sled's threads let go of the file lazily), so wait a little.
    let deadline = Instant::now() + options.lock_wait;
    let mut pause = Duration::from_millis(5);
    let db = loop {
        match config.open() {
            Ok(db) => break db,
            Err(e) if is_lock_error(&e) => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(StoreError::Locked {
                        path: path.display().to_string(),
                    });
                }
                std::thread::sleep(pause.min(deadline - now));
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(e) => return Err(open_error(&path, e)),
        }
    };

    let users = db.open_tree(USERS_TREE).map_err(|e| open_error(&path, e))?;
    let meta = db.open_tree(META_TREE).map_err(|e| open_error(&path, e))?;
    let funnel = db
        .open_tree(FUNNEL_TREE)
        .map_err(|e| open_error(&path, e))?;
    let session_trees = SessionTrees::open(&db).map_err(|e| open_error(&path, e))?;
    match meta
        .compare_and_swap(FORMAT_KEY, None::<&[u8]>, Some(FORMAT_VALUE))
        .map_err(|e| open_error(&path, e))?
    {
        Ok(()) => {
            db.flush().map_err(|e| open_error(&path, e))?;
        }
        Err(existing) if existing.current.as_deref() == Some(FORMAT_VALUE) => {}
        Err(existing) => {
            let found = existing.current.map(|v| {
                String::from_utf8_lossy(&v)
                    .chars()
                    .take(16)
                    .collect::<String>()
            });
            return Err(StoreError::NotSupported(format!(
                "the store at {} has layout {:?}; this profilegate reads layout \"1\"",
                path.display(),
                found.unwrap_or_default()
            )));
        }
    }

    Ok(SledStore {
        path,
        db,
        users,
        meta,
        funnel,
        session_trees,
        flush_failed: AtomicBool::new(false),
        tickets: AtomicU64::new(0),
        flushed: tokio::sync::Mutex::new(0),
        changes: UserChanges::new(),
    })
}

/// sled 0.34.7 reports a held lock as an `Other` I/O error with this text (config.rs,
/// `try_lock`); the store tests pin it.
fn is_lock_error(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
}

fn open_error(path: &Path, e: sled::Error) -> StoreError {
    match e {
        sled::Error::Io(io) if io.kind() == std::io::ErrorKind::PermissionDenied => {
            StoreError::Unavailable(format!(
                "the store directory {} is not writable: {io}",
                path.display()
            ))
        }
        sled::Error::Corruption { .. } => StoreError::Corrupt {
            what: format!("sled files in {}", path.display()),
            cause: e.to_string(),
        },
        other => StoreError::Unavailable(format!(
            "cannot open the store at {}: {other}",
            path.display()
        )),
    }
}

/// The trees of the session records (`sled/sessions.rs` implements [`super::SessionStore`]
/// over them): `sessions` maps a session id to its record's JSON; `sessions_by_sub` and
/// `sessions_by_op_sid` map `<sub or OP sid>\0<sid>` to nothing (indexes, checked against the
/// record when read); `revocations` is the revocation log, keyed by `<logged at, ms,
/// big-endian><8 random bytes>`; `used_once` maps a key to the big-endian second until which it
/// stays used.
struct SessionTrees {
    records: sled::Tree,
    by_sub: sled::Tree,
    by_op_sid: sled::Tree,
    log: sled::Tree,
    used_once: sled::Tree,
}

impl SessionTrees {
    fn open(db: &sled::Db) -> sled::Result<Self> {
        Ok(Self {
            records: db.open_tree("sessions")?,
            by_sub: db.open_tree("sessions_by_sub")?,
            by_op_sid: db.open_tree("sessions_by_op_sid")?,
            log: db.open_tree("revocations")?,
            used_once: db.open_tree("used_once")?,
        })
    }
}

fn secret_key(name: &str) -> Vec<u8> {
    [SECRET_PREFIX, name.as_bytes()].concat()
}

#[async_trait]
impl ProfileStore for SledStore {
    async fn load(&self, user: &UserKey) -> Result<Option<ProfileRecord>, StoreError> {
        let bytes = self
            .users
            .get(user.storage_key())
            .map_err(|e| self.sled_error(e))?;
        bytes.map(|b| self.decode(user, &b)).transpose()
    }

    /// A compare-and-swap loop over the record (a writer that lost the race redoes its change
    /// on the winner's version), then, for a [`Commit::Durable`] change, a flush.
    async fn update_record(
        &self,
        user: &UserKey,
        commit: Commit,
        change: &RecordChange<'_>,
    ) -> Result<ProfileRecord, StoreError> {
        let key = user.storage_key();
        let updated = loop {
            let old = self.users.get(&key).map_err(|e| self.sled_error(e))?;
            let current = old
                .as_deref()
                .map(|bytes| self.decode(user, bytes))
                .transpose()?;
            let Some(next) = change(current.as_ref()) else {
                return Ok(current.unwrap_or_default());
            };
            let bytes = record::encode(&next)?;
            match self.users.compare_and_swap(&key, old, Some(bytes)) {
                Ok(Ok(())) => break next,
                // Another writer changed the record since we read it: redo on its version.
                Ok(Err(_conflict)) => continue,
                Err(e) => return Err(self.sled_error(e)),
            }
        };
        if commit == Commit::Durable {
            self.flush().await?;
        }
        Ok(updated)
    }

    async fn get_or_create_secret(
        &self,
        name: &str,
        create: &(dyn Fn() -> Vec<u8> + Send + Sync),
    ) -> Result<Vec<u8>, StoreError> {
        let key = secret_key(name);
        let secret = loop {
            if let Some(existing) = self.meta.get(&key).map_err(|e| self.sled_error(e))? {
                break existing.to_vec();
            }
            let fresh = create();
            if fresh.is_empty() {
                // Kept forever once stored: an empty one (a failed generator) would stick.
                return Err(StoreError::Invalid(format!(
                    "the new secret {name:?} is empty; it was not stored"
                )));
            }
            match self
                .meta
                .compare_and_swap(&key, None::<&[u8]>, Some(fresh.as_slice()))
                .map_err(|e| self.sled_error(e))?
            {
                Ok(()) => break fresh,
                // Someone else stored one first: theirs is the secret.
                Err(conflict) => match conflict.current {
                    Some(theirs) => break theirs.to_vec(),
                    None => continue,
                },
            }
        };
        // Also on the read path: the winner's write may not be on disk yet, and a secret handed
        // out must survive a crash (a signing key that changes invalidates what it signed).
        self.flush().await?;
        Ok(secret)
    }

    async fn sync(&self) -> Result<(), StoreError> {
        self.flush().await
    }

    async fn ready(&self) -> bool {
        if !matches!(self.meta.get(FORMAT_KEY), Ok(Some(_))) {
            return false;
        }
        // After a failed flush, probe again rather than stay unready forever.
        !self.flush_failed.load(Ordering::Relaxed) || self.flush().await.is_ok()
    }

    // ---- administration (issue 18) ---------------------------------------------------------

    async fn erase(&self, user: &UserKey) -> Result<bool, StoreError> {
        let existed = self
            .users
            .remove(user.storage_key())
            .map_err(|e| self.sled_error(e))?
            .is_some();
        self.flush().await?;
        self.changes.publish(&UserChange::User(user.clone()));
        Ok(existed)
    }

    async fn scan(
        &self,
        after: Option<&UserKey>,
        limit: usize,
    ) -> Result<Vec<(UserKey, ProfileRecord)>, StoreError> {
        use std::ops::Bound;
        let start = match after {
            Some(after) => Bound::Excluded(after.storage_key()),
            None => Bound::Unbounded,
        };
        let mut page = Vec::with_capacity(limit.min(4096));
        for entry in self.users.range::<Vec<u8>, _>((start, Bound::Unbounded)) {
            if page.len() >= limit {
                break;
            }
            let (key, bytes) = entry.map_err(|e| self.sled_error(e))?;
            let user = UserKey::from_storage_key(&key).ok_or_else(|| StoreError::Corrupt {
                what: format!("a user key in {}", self.path.display()),
                cause: "not a key profilegate writes".into(),
            })?;
            let record = self.decode(&user, &bytes)?;
            page.push((user, record));
        }
        Ok(page)
    }

    async fn import(&self, user: &UserKey, record: &ProfileRecord) -> Result<Imported, StoreError> {
        let outcome = std::sync::Mutex::new(Imported::Unchanged);
        let change = import_change(record, &outcome);
        // Made durable by the importer's `sync` at the end, not one flush per line.
        self.update_record(user, Commit::Background, &change)
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

    // ---- Question funnel (issue 18, D) ----

    /// Each row added with sled's atomic read-modify-write of its key, then one flush (a
    /// failed flush is logged, not returned: see below).
    async fn add_funnel(&self, deltas: &[FunnelRow]) -> Result<(), StoreError> {
        for row in deltas {
            let key = format!("{}/{}", row.question, row.version);
            let mut corrupt = None;
            self.funnel
                .update_and_fetch(key.as_bytes(), |old| {
                    let mut total = match old.map(serde_json::from_slice::<FunnelCounts>) {
                        None => FunnelCounts::default(),
                        Some(Ok(total)) => total,
                        Some(Err(e)) => {
                            corrupt = Some(e.to_string());
                            return old.map(<[u8]>::to_vec);
                        }
                    };
                    total.add(&row.counts);
                    serde_json::to_vec(&total).ok()
                })
                .map_err(|e| self.sled_error(e))?;
            if let Some(cause) = corrupt {
                return Err(StoreError::Corrupt {
                    what: format!("funnel totals of {key} in {}", self.path.display()),
                    cause,
                });
            }
        }
        if deltas.is_empty() {
            return Ok(());
        }
        // The rows are in sled now: reporting a failed flush as a failure would make the caller
        // add them again. sled's background flush retries, and `/readyz` reports the failure.
        if let Err(e) = self.flush().await {
            tracing::warn!(error = %e, "funnel totals stored but not yet flushed to disk");
        }
        Ok(())
    }

    async fn funnel_totals(&self) -> Result<Vec<FunnelRow>, StoreError> {
        let mut rows = Vec::new();
        for entry in self.funnel.iter() {
            let (key, value) = entry.map_err(|e| self.sled_error(e))?;
            let key = String::from_utf8_lossy(&key).into_owned();
            let corrupt = |cause: String| StoreError::Corrupt {
                what: format!("funnel totals of {key} in {}", self.path.display()),
                cause,
            };
            let (question, version) = key
                .rsplit_once('/')
                .and_then(|(q, v)| Some((q.to_owned(), v.parse::<u32>().ok()?)))
                .ok_or_else(|| corrupt("not <question>/<version>".into()))?;
            let counts = serde_json::from_slice(&value).map_err(|e| corrupt(e.to_string()))?;
            rows.push(FunnelRow {
                question,
                version,
                counts,
            });
        }
        rows.sort_by(|a, b| (&a.question, a.version).cmp(&(&b.question, b.version)));
        Ok(rows)
    }
}
