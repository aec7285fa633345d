//! The metadata store: one [`ProfileRecord`] per user (keyed by issuer + subject) holding the
//! answers, skips and login counts, behind the [`ProfileStore`] trait. The login callback and the
//! answer handlers write through it; the signed-in hot path reads the [`ProfileCache`] instead
//! and only falls back to [`ProfileStore::load`] on a miss or a stale revision.
//!
//! sled is the embedded default ([`SledStore`]); PostgreSQL ([`PgStore`]) serves several
//! replicas sharing users.
//! Every write returns only once durable, and every read-modify-write is atomic against
//! concurrent writers of the same record.
//!
//! Layout, bottom up: `key.rs` and `error.rs`; the record and its pure changes (`record.rs`);
//! the trait with the three write operations written once (`api.rs`); the question funnel's
//! stored totals (`funnel.rs`); the backends (`sled.rs`,
//! `pg/`), each with its one write primitive; and the profile cache (`cache.rs`). The
//! administrator's operations (erase, export scan, import) share the NDJSON line and the
//! import's pure change (`admin.rs`) and tell the caches of user data about records changed
//! behind their back (`changes.rs`; across replicas `pg/listen.rs`). This file only declares,
//! re-exports and opens the configured backend.

mod admin;
mod api;
mod cache;
mod changes;
mod error;
pub mod funnel;
mod key;
mod pg;
mod record;
mod sessions;
mod sled;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::config::{StoreBackend, StoreConfig};

pub use self::admin::{export_line, parse_line, Imported};
pub use self::api::{Commit, OutdatedAnswer, ProfileStore, RecordChange};
pub use self::cache::{ProfileCache, Revisioned};
pub use self::changes::{ForgetUsers, UserChange, UserChanges};
pub use self::error::StoreError;
pub use self::funnel::{FunnelCounts, FunnelRow};
pub use self::key::UserKey;
pub use self::pg::{PgOptions, PgStore, PgTls};
pub use self::record::{AnswerSource, ProfileRecord, Skip, StoredAnswer, RECORD_FORMAT};
#[cfg(test)]
pub(crate) use self::sessions::delegate_session_store;
#[cfg(test)]
pub(crate) use self::sessions::MemorySessions;
pub use self::sessions::{
    Revocation, RevokeTarget, RevokedKind, SessionChange, SessionRecord, SessionStore,
};
pub use self::sled::{SledOptions, SledStore};

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
