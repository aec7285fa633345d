//! The metadata store: one [`ProfileRecord`] per user (keyed by issuer + subject) holding the
//! answers, skips and login counts, behind the [`ProfileStore`] trait. The login callback and the
//! answer handlers write through it; the signed-in hot path reads the [`ProfileCache`] instead
//! and only falls back to [`ProfileStore::load`] on a miss or a stale revision.
//!
//! sled is the embedded default ([`SledStore`]); PostgreSQL ([`PgStore`]) serves several
//! replicas sharing users.
//! Every write returns only once durable, and every read-modify-write is atomic against
//! concurrent writers of the same record.

mod cache;
mod pg_store;
mod record;
mod sled_store;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{StoreBackend, StoreConfig};

pub use cache::{ProfileCache, Revisioned};
pub use pg_store::{PgOptions, PgStore, PgTls};
pub use record::{AnswerSource, ProfileRecord, Skip, StoredAnswer, RECORD_FORMAT};
pub use sled_store::{SledOptions, SledStore};

/// The key of a user's record: the OP's issuer and the subject it gave the user.
///
/// Subjects are opaque: any string, NUL and non-ASCII included, is a distinct user.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserKey {
    pub issuer: String,
    pub subject: String,
}

impl UserKey {
    pub fn new(issuer: impl Into<String>, subject: impl Into<String>) -> Self {
        UserKey {
            issuer: issuer.into(),
            subject: subject.into(),
        }
    }

    /// The bytes the record is stored under: the issuer's length (4 bytes, big-endian), the
    /// issuer, then the subject. The explicit length makes the split unambiguous whatever bytes
    /// either part holds, and keeps one issuer's users next to each other for scans.
    pub fn storage_key(&self) -> Vec<u8> {
        let issuer = self.issuer.as_bytes();
        // An issuer is a URL from the configuration; 4 GiB would not fit in memory anyway.
        let len = u32::try_from(issuer.len()).unwrap_or(u32::MAX);
        let mut key = Vec::with_capacity(4 + issuer.len() + self.subject.len());
        key.extend_from_slice(&len.to_be_bytes());
        key.extend_from_slice(issuer);
        key.extend_from_slice(self.subject.as_bytes());
        key
    }

    /// The inverse of [`UserKey::storage_key`]; `None` for bytes it cannot have produced.
    pub fn from_storage_key(key: &[u8]) -> Option<UserKey> {
        let (len, rest) = key.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
        if rest.len() < len {
            return None;
        }
        let (issuer, subject) = rest.split_at(len);
        Some(UserKey {
            issuer: String::from_utf8(issuer.to_vec()).ok()?,
            subject: String::from_utf8(subject.to_vec()).ok()?,
        })
    }
}

/// A short, escaped description for error messages and logs: control characters are escaped and
/// long parts shortened, so a hostile subject cannot forge log lines or flood them.
impl fmt::Display for UserKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "subject {} of issuer {}",
            shorten(&self.subject),
            shorten(&self.issuer)
        )
    }
}

fn shorten(s: &str) -> String {
    const MAX_CHARS: usize = 64;
    let mut out: String = s.chars().take(MAX_CHARS).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    format!("{out:?}")
}

/// What can go wrong in the store. Messages name records and causes, never answer values.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be used right now: an I/O error, a directory that cannot be created or
    /// written, a failed flush. The write it interrupted may or may not have been kept.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Another process holds the store's lock (sled allows one process per directory).
    #[error("store at {path} is locked by another profilegate process")]
    Locked { path: String },
    /// A stored record cannot be read back. Nothing was overwritten.
    #[error("corrupt record ({what}): {cause}")]
    Corrupt { what: String, cause: String },
    /// The configured backend, or a feature of it, does not exist in this version.
    #[error("not supported: {0}")]
    NotSupported(String),
    /// A value the store refuses to keep because it could not be read back as written
    /// (for example a number that is not finite).
    #[error("invalid value: {0}")]
    Invalid(String),
}

/// The storage contract. Every write applies to the latest version of the record: concurrent
/// writers of one user never lose each other's changes. Answers, skips and secrets are durable
/// when the call returns; a login's bookkeeping reaches the disk shortly after (see
/// [`ProfileStore::record_login`]).
#[async_trait]
pub trait ProfileStore: Send + Sync {
    /// The user's record, or `None` before their first login.
    async fn load(&self, user: &UserKey) -> Result<Option<ProfileRecord>, StoreError>;

    /// Counts a login at `at` (seconds since the epoch): creates the record at the first one,
    /// adds one to `logins`, sets `first_login_at` (first time only) and `last_login_at`
    /// (never moved backwards by a replica with a late clock). The revision does not change (the
    /// upstream sees nothing of a login), and the call does not wait for the disk: the change is
    /// written at once and made durable by the store's next flush (sled: within 500 ms, or with
    /// the next answer or skip of anyone). A crash in between loses the count of that login,
    /// never an answer; it spares every login a synchronous flush.
    async fn record_login(&self, user: &UserKey, at: u64) -> Result<ProfileRecord, StoreError>;

    /// Stores answers (replacing earlier answers to the same ids) and clears skips of those ids.
    /// Creates the record if needed. An empty list changes nothing.
    async fn save_answers(
        &self,
        user: &UserKey,
        answers: Vec<(String, StoredAnswer)>,
    ) -> Result<ProfileRecord, StoreError>;

    /// Records that question `id` was skipped. Ignored (the record is returned unchanged) when
    /// the question already has an answer: an answer from another tab wins over a late skip.
    async fn record_skip(
        &self,
        user: &UserKey,
        id: &str,
        skip: Skip,
    ) -> Result<ProfileRecord, StoreError>;

    /// The secret named `name`, created with `create` the first time and kept from then on.
    /// When callers race, the first write wins and every caller gets the same bytes. An empty
    /// secret from `create` is refused ([`StoreError::Invalid`]) rather than kept for good.
    async fn get_or_create_secret(
        &self,
        name: &str,
        create: &(dyn Fn() -> Vec<u8> + Send + Sync),
    ) -> Result<Vec<u8>, StoreError>;

    /// Whether the store can serve requests (for `/readyz`).
    async fn ready(&self) -> bool;

    /// Returns once every write made before the call is durable (logins included): called when
    /// profilegate stops.
    async fn sync(&self) -> Result<(), StoreError>;
}

/// Opens the configured store.
pub async fn open(config: &StoreConfig) -> Result<Arc<dyn ProfileStore>, StoreError> {
    match &config.backend {
        StoreBackend::Sled { path, cache_size } => {
            let options = SledOptions {
                cache_capacity: *cache_size,
                ..SledOptions::default()
            };
            let store = SledStore::open(path, options).await?;
            Ok(Arc::new(store))
        }
        StoreBackend::Postgres { url, tls_ca_pem } => {
            let options = PgOptions {
                tls: PgTls {
                    ca_pem: tls_ca_pem.clone(),
                },
                ..PgOptions::default()
            };
            let store = PgStore::open(url.expose(), options).await?;
            Ok(Arc::new(store))
        }
    }
}
