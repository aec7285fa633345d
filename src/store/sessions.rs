//! Server-side session records (DESIGN §13): what the store keeps of each signed-in session
//! beside the sealed cookie, and the revocations every replica must learn of.
//!
//! The cookie carries the session (its random `sid` included); the record holds what must
//! outlive or overrule the cookie: the refresh and ID tokens (sealed at rest by the caller, the
//! store sees bytes), the OP's session id (back-channel logout names it), the refresh
//! generation and its lease, and the revocation mark. Revocations are also written to an
//! append-only log that each replica polls ([`SessionStore::revocations_since`]) to keep its
//! in-memory view fresh (`crate::session::revoked`): the signed-in hot path reads only that
//! view, never the store.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::error::StoreError;

/// One signed-in session as the store keeps it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The session id the cookie carries (random, 18 bytes, URL-safe base64).
    pub sid: String,
    /// The OP's subject.
    pub sub: String,
    /// The OP's session id (the ID token's `sid` claim), when it sent one: back-channel and
    /// front-channel logout name the session by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_sid: Option<String>,
    /// Created at, seconds since the epoch.
    pub created_at: u64,
    /// The session's absolute end (`session.lifetime` after the login), seconds since the
    /// epoch: the record may be purged after it.
    pub expires_at: u64,
    /// When the session was revoked (logout, back-channel or front-channel logout, a refused
    /// refresh), seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<u64>,
    /// How many refreshes the session has had: the cookie carries the generation it was sealed
    /// at, and a cookie older than the record adopts the record's refreshed claims.
    #[serde(default)]
    pub generation: u64,
    /// Until when (seconds since the epoch) a replica holds the right to refresh this session:
    /// the lease that makes a refresh single-flight across replicas. 0 when none.
    #[serde(default)]
    pub refreshing_until: u64,
    /// The session's tokens (refresh token, ID token), sealed with a key derived from
    /// `session.secret` (`crate::session::at_rest`); opaque to the store.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_base64")]
    pub tokens: Option<Vec<u8>>,
    /// What the last refresh learnt (claims, groups, next refresh time), for a cookie sealed
    /// before it; its shape belongs to the refresh code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refreshed: Option<serde_json::Value>,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("sub", &self.sub)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl SessionRecord {
    /// The record as stored (JSON).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A stored record read back.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

/// Which sessions a revocation ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeTarget {
    /// One session, by the id its cookie carries (logout here, a refused refresh).
    Sid(String),
    /// The sessions the OP knows by this session id (`sid` of a logout token or of a
    /// front-channel logout request).
    OpSid(String),
    /// Every session of this subject signed in at or before the revocation (a logout token
    /// with `sub` and no `sid`): sessions with no record are ended too.
    Subject(String),
}

/// What a revocation ends, as the in-memory views learn it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RevokedKind {
    /// `value` is a session id: that session is over.
    Sid,
    /// `value` is a subject: every session of it issued at or before `at` is over.
    Subject,
}

/// One line of the revocation log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub kind: RevokedKind,
    pub value: String,
    /// When the revocation was made, seconds since the epoch (the revoking replica's clock).
    pub at: u64,
    /// Until when it matters: the end of the longest session it can end (seconds since the
    /// epoch); the log line and the views' entries go after it.
    pub until: u64,
}

/// A record as a revocation at `at` leaves it: marked (an earlier mark kept), its tokens and
/// refresh lease dropped; `None` when it is so already. Every backend revokes with it.
pub(super) fn revoked_record(current: &SessionRecord, at: u64) -> Option<SessionRecord> {
    let mut next = current.clone();
    next.revoked_at = Some(current.revoked_at.unwrap_or(at));
    next.tokens = None;
    next.refreshing_until = 0;
    (next != *current).then_some(next)
}

/// The log lines a revocation of `target` at `at` writes, given the sessions it found: their
/// ids and their records' expiry (`None`: no record). A session id line lasts until its
/// record's expiry, else `until`; an OP session id names only sessions with a record; a subject
/// is one line of its own whatever was found.
pub(super) fn revocation_lines(
    target: &RevokeTarget,
    found: Vec<(String, Option<u64>)>,
    at: u64,
    until: u64,
) -> Vec<Revocation> {
    let sid_line = |value: String, expires_at: Option<u64>| Revocation {
        kind: RevokedKind::Sid,
        value,
        at,
        until: expires_at.unwrap_or(until),
    };
    match target {
        RevokeTarget::Sid(_) => found.into_iter().map(|(s, e)| sid_line(s, e)).collect(),
        RevokeTarget::OpSid(_) => found
            .into_iter()
            .filter(|(_, e)| e.is_some())
            .map(|(s, e)| sid_line(s, e))
            .collect(),
        RevokeTarget::Subject(sub) => vec![Revocation {
            kind: RevokedKind::Subject,
            value: sub.clone(),
            at,
            until,
        }],
    }
}

/// A change to one session record: given the current record, the next one, or `None` for
/// "nothing to change". It may run several times when writers race.
pub type SessionChange<'a> = dyn Fn(&SessionRecord) -> Option<SessionRecord> + Send + Sync + 'a;

/// The session half of the storage contract. Every backend implements it; the profile half
/// ([`super::ProfileStore`]) requires it.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Creates (or replaces) a session record at login. Like a login's bookkeeping it reaches
    /// the disk with the store's next flush (sled: within 500 ms; PostgreSQL:
    /// `synchronous_commit = off`): a crash in between loses the record, and the session then
    /// lives on without refresh (its cookie still holds), never the other way round.
    async fn put_session(&self, record: &SessionRecord) -> Result<(), StoreError>;

    /// The record of session `sid`, if there is one (expired records may still be returned
    /// until purged; callers check `expires_at` and `revoked_at`).
    async fn session(&self, sid: &str) -> Result<Option<SessionRecord>, StoreError>;

    /// Applies `change` to the record of `sid` atomically against every other writer (on any
    /// replica), durably, returning the record written, or the current one when `change`
    /// returned `None`; `None` when there is no record.
    async fn update_session(
        &self,
        sid: &str,
        change: &SessionChange<'_>,
    ) -> Result<Option<SessionRecord>, StoreError>;

    /// Revokes the sessions `target` names, durably: marks their records (`revoked_at = at`,
    /// tokens dropped) and appends the matching lines to the revocation log, in one transaction
    /// where the backend has them. Returns the lines written (for the caller's own view at
    /// once; other replicas read them from the log). `until` is the end of the longest session
    /// that can be affected (now + `session.lifetime`); a [`RevokeTarget::Sid`] or
    /// [`RevokeTarget::OpSid`] line uses its record's `expires_at` when there is one.
    /// An [`RevokeTarget::OpSid`] naming no record writes nothing and returns no line.
    async fn revoke(
        &self,
        target: &RevokeTarget,
        at: u64,
        until: u64,
    ) -> Result<Vec<Revocation>, StoreError>;

    /// The revocation log's lines logged at or after `since_ms` (milliseconds, by the
    /// store's clock: the database's for PostgreSQL) whose `until` has not passed, and the
    /// store's clock now (milliseconds), from which the caller computes the next `since_ms`
    /// (with an overlap for writers that committed late). `since_ms = 0`: every live line.
    async fn revocations_since(&self, since_ms: u64) -> Result<(Vec<Revocation>, u64), StoreError>;

    /// Marks `key` used until `until` (seconds since the epoch): `true` the first time, `false`
    /// while an earlier mark is still live, on any replica (a logout token's `jti`).
    async fn first_use(&self, key: &str, until: u64) -> Result<bool, StoreError>;

    /// Deletes session records, revocation lines and use marks that ended before `now`
    /// (seconds since the epoch); returns how many went.
    async fn purge_sessions(&self, now: u64) -> Result<u64, StoreError>;
}

/// Implements [`SessionStore`] for `$ty` by handing every call to its field `$field` (test
/// stores that wrap or stand beside a real backend).
#[cfg(test)]
macro_rules! delegate_session_store {
    ($ty:ty, $field:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::SessionStore for $ty {
            async fn put_session(
                &self,
                record: &$crate::store::SessionRecord,
            ) -> Result<(), $crate::store::StoreError> {
                self.$field.put_session(record).await
            }
            async fn session(
                &self,
                sid: &str,
            ) -> Result<Option<$crate::store::SessionRecord>, $crate::store::StoreError> {
                self.$field.session(sid).await
            }
            async fn update_session(
                &self,
                sid: &str,
                change: &$crate::store::SessionChange<'_>,
            ) -> Result<Option<$crate::store::SessionRecord>, $crate::store::StoreError> {
                self.$field.update_session(sid, change).await
            }
            async fn revoke(
                &self,
                target: &$crate::store::RevokeTarget,
                at: u64,
                until: u64,
            ) -> Result<Vec<$crate::store::Revocation>, $crate::store::StoreError> {
                self.$field.revoke(target, at, until).await
            }
            async fn revocations_since(
                &self,
                since_ms: u64,
            ) -> Result<(Vec<$crate::store::Revocation>, u64), $crate::store::StoreError> {
                self.$field.revocations_since(since_ms).await
            }
            async fn first_use(
                &self,
                key: &str,
                until: u64,
            ) -> Result<bool, $crate::store::StoreError> {
                self.$field.first_use(key, until).await
            }
            async fn purge_sessions(&self, now: u64) -> Result<u64, $crate::store::StoreError> {
                self.$field.purge_sessions(now).await
            }
        }
    };
}
#[cfg(test)]
pub(crate) use delegate_session_store;

/// Session records in memory, for unit tests of what reads and writes them (the backends'
/// own tests run against sled and PostgreSQL).
#[cfg(test)]
#[derive(Default)]
pub(crate) struct MemorySessions {
    records: std::sync::Mutex<std::collections::HashMap<String, SessionRecord>>,
    log: std::sync::Mutex<Vec<(u64, Revocation)>>,
    used: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

#[cfg(test)]
#[async_trait]
impl SessionStore for MemorySessions {
    async fn put_session(&self, record: &SessionRecord) -> Result<(), StoreError> {
        let mut records = self.records.lock().expect("lock");
        records.insert(record.sid.clone(), record.clone());
        Ok(())
    }

    async fn session(&self, sid: &str) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.records.lock().expect("lock").get(sid).cloned())
    }

    async fn update_session(
        &self,
        sid: &str,
        change: &SessionChange<'_>,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let mut records = self.records.lock().expect("lock");
        let Some(current) = records.get(sid) else {
            return Ok(None);
        };
        match change(current) {
            Some(next) => {
                records.insert(sid.to_owned(), next.clone());
                Ok(Some(next))
            }
            None => Ok(Some(current.clone())),
        }
    }

    async fn revoke(
        &self,
        target: &RevokeTarget,
        at: u64,
        until: u64,
    ) -> Result<Vec<Revocation>, StoreError> {
        let mut records = self.records.lock().expect("lock");
        let named = |r: &SessionRecord| match target {
            RevokeTarget::Sid(sid) => r.sid == *sid,
            RevokeTarget::OpSid(op) => r.op_sid.as_deref() == Some(op),
            RevokeTarget::Subject(sub) => r.sub == *sub,
        };
        let mut found = Vec::new();
        for record in records.values_mut().filter(|r| named(r)) {
            if let Some(next) = revoked_record(record, at) {
                *record = next;
            }
            found.push((record.sid.clone(), Some(record.expires_at)));
        }
        if let (RevokeTarget::Sid(sid), true) = (target, found.is_empty()) {
            found.push((sid.clone(), None));
        }
        let lines = revocation_lines(target, found, at, until);
        let now = crate::session::now_millis();
        let mut log = self.log.lock().expect("lock");
        log.extend(lines.iter().map(|l| (now, l.clone())));
        Ok(lines)
    }

    async fn revocations_since(&self, since_ms: u64) -> Result<(Vec<Revocation>, u64), StoreError> {
        let log = self.log.lock().expect("lock");
        let now = crate::session::now_millis();
        let lines = log
            .iter()
            .filter(|(logged, l)| *logged >= since_ms && l.until > now / 1000)
            .map(|(_, l)| l.clone())
            .collect();
        Ok((lines, now))
    }

    async fn first_use(&self, key: &str, until: u64) -> Result<bool, StoreError> {
        let now = crate::session::now_secs();
        let mut used = self.used.lock().expect("lock");
        match used.get(key) {
            Some(&end) if end > now => Ok(false),
            _ => {
                used.insert(key.to_owned(), until);
                Ok(true)
            }
        }
    }

    async fn purge_sessions(&self, now: u64) -> Result<u64, StoreError> {
        let mut records = self.records.lock().expect("lock");
        let before = records.len();
        records.retain(|_, r| r.expires_at > now);
        Ok((before - records.len()) as u64)
    }
}

/// `Option<Vec<u8>>` as standard base64 in JSON (sealed bytes, not a number array).
mod opt_base64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(bytes) => {
                s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
            }
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| {
            base64::engine::general_purpose::STANDARD
                .decode(t)
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_its_debug_shows_no_token() {
        let record = SessionRecord {
            sid: "s1".into(),
            sub: "alice".into(),
            op_sid: Some("op-1".into()),
            created_at: 10,
            expires_at: 20,
            revoked_at: None,
            generation: 2,
            refreshing_until: 0,
            tokens: Some(vec![1, 2, 3, 255]),
            refreshed: None,
        };
        let bytes = record.encode();
        assert_eq!(SessionRecord::decode(&bytes).expect("decodes"), record);
        let debug = format!("{record:?}");
        assert!(
            !debug.contains("op-1") && !debug.contains("tokens"),
            "{debug}"
        );
    }
}
