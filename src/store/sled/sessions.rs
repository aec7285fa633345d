//! The sled store's session records ([`SessionStore`]) over the trees of `SessionTrees` (in
//! the parent, which describes them).

use async_trait::async_trait;
use rand::RngCore;

use super::SledStore;
use crate::session::now_millis;
use crate::store::error::StoreError;
use crate::store::sessions::{
    revocation_lines, revoked_record, Revocation, RevokeTarget, SessionChange, SessionRecord,
    SessionStore,
};

fn index_key(value: &str, sid: &str) -> Vec<u8> {
    [value.as_bytes(), b"\0", sid.as_bytes()].concat()
}

fn index_prefix(value: &str) -> Vec<u8> {
    [value.as_bytes(), b"\0"].concat()
}

impl SledStore {
    fn decode_session(&self, sid: &str, bytes: &[u8]) -> Result<SessionRecord, StoreError> {
        SessionRecord::decode(bytes).map_err(|cause| StoreError::Corrupt {
            what: format!("session record {sid} in {}", self.path.display()),
            cause,
        })
    }

    /// The session ids an index lists for `value`.
    fn indexed(&self, index: &sled::Tree, value: &str) -> Result<Vec<String>, StoreError> {
        let prefix = index_prefix(value);
        index
            .scan_prefix(&prefix)
            .keys()
            .map(|key| {
                let key = key.map_err(|e| self.sled_error(e))?;
                Ok(String::from_utf8_lossy(&key[prefix.len()..]).into_owned())
            })
            .collect()
    }

    /// Marks the record of `sid` revoked at `at` (tokens dropped); its `expires_at`, or `None`
    /// when there is no record.
    fn mark_revoked(&self, sid: &str, at: u64) -> Result<Option<u64>, StoreError> {
        let marked = self.update_session_now(sid, &|current| revoked_record(current, at))?;
        Ok(marked.map(|r| r.expires_at))
    }

    fn update_session_now(
        &self,
        sid: &str,
        change: &SessionChange<'_>,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let trees = &self.session_trees;
        loop {
            let Some(old) = trees.records.get(sid).map_err(|e| self.sled_error(e))? else {
                return Ok(None);
            };
            let current = self.decode_session(sid, &old)?;
            let Some(next) = change(&current) else {
                return Ok(Some(current));
            };
            let swapped = trees
                .records
                .compare_and_swap(sid, Some(old), Some(next.encode()))
                .map_err(|e| self.sled_error(e))?;
            if swapped.is_ok() {
                return Ok(Some(next));
            }
        }
    }
}

#[async_trait]
impl SessionStore for SledStore {
    async fn put_session(&self, record: &SessionRecord) -> Result<(), StoreError> {
        let trees = &self.session_trees;
        let sid = &record.sid;
        trees
            .by_sub
            .insert(index_key(&record.sub, sid), &[])
            .map_err(|e| self.sled_error(e))?;
        if let Some(op_sid) = &record.op_sid {
            trees
                .by_op_sid
                .insert(index_key(op_sid, sid), &[])
                .map_err(|e| self.sled_error(e))?;
        }
        trees
            .records
            .insert(sid.as_bytes(), record.encode())
            .map_err(|e| self.sled_error(e))?;
        Ok(())
    }

    async fn session(&self, sid: &str) -> Result<Option<SessionRecord>, StoreError> {
        let found = self
            .session_trees
            .records
            .get(sid)
            .map_err(|e| self.sled_error(e))?;
        found.map(|b| self.decode_session(sid, &b)).transpose()
    }

    async fn update_session(
        &self,
        sid: &str,
        change: &SessionChange<'_>,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let written = self.update_session_now(sid, change)?;
        self.flush().await?;
        Ok(written)
    }

    async fn revoke(
        &self,
        target: &RevokeTarget,
        at: u64,
        until: u64,
    ) -> Result<Vec<Revocation>, StoreError> {
        let trees = &self.session_trees;
        let sids = match target {
            RevokeTarget::Sid(sid) => vec![sid.clone()],
            RevokeTarget::OpSid(op_sid) => self.indexed(&trees.by_op_sid, op_sid)?,
            RevokeTarget::Subject(sub) => self.indexed(&trees.by_sub, sub)?,
        };
        let mut found = Vec::new();
        for sid in sids {
            let expires_at = self.mark_revoked(&sid, at)?;
            found.push((sid, expires_at));
        }
        let lines = revocation_lines(target, found, at, until);
        for line in &lines {
            let mut key = now_millis().to_be_bytes().to_vec();
            let mut salt = [0u8; 8];
            rand::thread_rng().fill_bytes(&mut salt);
            key.extend_from_slice(&salt);
            let value = serde_json::to_vec(line).unwrap_or_default();
            trees
                .log
                .insert(key, value)
                .map_err(|e| self.sled_error(e))?;
        }
        self.flush().await?;
        Ok(lines)
    }

    async fn revocations_since(&self, since_ms: u64) -> Result<(Vec<Revocation>, u64), StoreError> {
        let now_ms = now_millis();
        let now = now_ms / 1000;
        let mut lines = Vec::new();
        for entry in self.session_trees.log.range(since_ms.to_be_bytes()..) {
            let (_, value) = entry.map_err(|e| self.sled_error(e))?;
            let line: Revocation =
                serde_json::from_slice(&value).map_err(|e| StoreError::Corrupt {
                    what: format!("revocation log of {}", self.path.display()),
                    cause: e.to_string(),
                })?;
            if line.until > now {
                lines.push(line);
            }
        }
        Ok((lines, now_ms))
    }

    async fn first_use(&self, key: &str, until: u64) -> Result<bool, StoreError> {
        let now = now_millis() / 1000;
        let used = &self.session_trees.used_once;
        loop {
            let old = used.get(key).map_err(|e| self.sled_error(e))?;
            let live = old
                .as_deref()
                .is_some_and(|v| <[u8; 8]>::try_from(v).is_ok_and(|b| u64::from_be_bytes(b) > now));
            if live {
                return Ok(false);
            }
            let swapped = used
                .compare_and_swap(key, old, Some(&until.to_be_bytes()[..]))
                .map_err(|e| self.sled_error(e))?;
            if swapped.is_ok() {
                self.flush().await?;
                return Ok(true);
            }
        }
    }

    async fn purge_sessions(&self, now: u64) -> Result<u64, StoreError> {
        let trees = &self.session_trees;
        let mut purged = 0;
        for entry in trees.records.iter() {
            let (sid, value) = entry.map_err(|e| self.sled_error(e))?;
            let sid = String::from_utf8_lossy(&sid).into_owned();
            let Ok(record) = SessionRecord::decode(&value) else {
                continue; // left for an operator to look at; never deleted unread
            };
            if record.expires_at > now {
                continue;
            }
            trees.records.remove(&sid).map_err(|e| self.sled_error(e))?;
            trees
                .by_sub
                .remove(index_key(&record.sub, &sid))
                .map_err(|e| self.sled_error(e))?;
            if let Some(op_sid) = &record.op_sid {
                trees
                    .by_op_sid
                    .remove(index_key(op_sid, &sid))
                    .map_err(|e| self.sled_error(e))?;
            }
            purged += 1;
        }
        for entry in trees.log.iter() {
            let (key, value) = entry.map_err(|e| self.sled_error(e))?;
            let ended = serde_json::from_slice::<Revocation>(&value).is_ok_and(|l| l.until <= now);
            if ended {
                trees.log.remove(key).map_err(|e| self.sled_error(e))?;
                purged += 1;
            }
        }
        for entry in trees.used_once.iter() {
            let (key, value) = entry.map_err(|e| self.sled_error(e))?;
            let ended = <[u8; 8]>::try_from(&*value).is_ok_and(|b| u64::from_be_bytes(b) <= now);
            if ended {
                trees
                    .used_once
                    .remove(key)
                    .map_err(|e| self.sled_error(e))?;
                purged += 1;
            }
        }
        if purged > 0 {
            self.flush().await?;
        }
        Ok(purged)
    }
}
