//! The PostgreSQL store's session records ([`SessionStore`]):
//!
//! - `profilegate_sessions (sid text, sub bytea, op_sid bytea, expires_at bigint, record json)`:
//!   one row per session, `record` the JSON of [`SessionRecord`]; indexed by subject and OP
//!   session id (the logout routes name sessions by them) and by expiry (the purge).
//! - `profilegate_revocations (id bigserial, logged_ms bigint, until bigint, line json)`: the
//!   revocation log, `logged_ms` the database's clock when the line was written. Every replica
//!   polls it once a second (`crate::session::revoked`), so a revocation reaches every replica
//!   within about a second, whatever happened to any connection meanwhile.
//! - `profilegate_used_once (key bytea, until bigint)`: keys used once (a logout token's `jti`).
//!
//! A revocation marks the records and appends its lines in one synchronous transaction.

use async_trait::async_trait;

use super::PgStore;
use crate::store::error::StoreError;
use crate::store::sessions::{
    revocation_lines, revoked_record, Revocation, RevokeTarget, SessionChange, SessionRecord,
    SessionStore,
};

const UPSERT_SESSION: &str =
    "INSERT INTO profilegate_sessions (sid, sub, op_sid, expires_at, record)
    VALUES ($1, $2, $3, $4, $5::text::json)
    ON CONFLICT (sid) DO UPDATE SET sub = excluded.sub, op_sid = excluded.op_sid,
        expires_at = excluded.expires_at, record = excluded.record";
const SELECT_SESSION: &str = "SELECT record::text FROM profilegate_sessions WHERE sid = $1";
const SELECT_SESSION_FOR_UPDATE: &str =
    "SELECT record::text FROM profilegate_sessions WHERE sid = $1 FOR UPDATE";
const UPDATE_SESSION: &str =
    "UPDATE profilegate_sessions SET record = $2::text::json, expires_at = $3 WHERE sid = $1";
const SIDS_OF_SUB: &str = "SELECT sid FROM profilegate_sessions WHERE sub = $1";
const SIDS_OF_OP_SID: &str = "SELECT sid FROM profilegate_sessions WHERE op_sid = $1";
const APPEND_LINE: &str =
    "INSERT INTO profilegate_revocations (until, line) VALUES ($1, $2::text::json)";
const LINES_SINCE: &str = "SELECT line::text FROM profilegate_revocations
    WHERE logged_ms >= $1 AND until > $2 ORDER BY id";
const CLOCK_MS: &str = "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint";
const USE_ONCE: &str = "INSERT INTO profilegate_used_once AS u (key, until) VALUES ($1, $2)
    ON CONFLICT (key) DO UPDATE SET until = excluded.until WHERE u.until <= $3
    RETURNING 1";
const PURGE: [&str; 3] = [
    "DELETE FROM profilegate_sessions WHERE expires_at <= $1",
    "DELETE FROM profilegate_revocations WHERE until <= $1",
    "DELETE FROM profilegate_used_once WHERE until <= $1",
];

/// Seconds or milliseconds as PostgreSQL's `bigint` (times far beyond 2262 saturate).
fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn json_text(record: &SessionRecord) -> String {
    String::from_utf8(record.encode()).unwrap_or_default()
}

impl PgStore {
    fn decode_session(&self, sid: &str, text: &str) -> Result<SessionRecord, StoreError> {
        SessionRecord::decode(text.as_bytes()).map_err(|cause| StoreError::Corrupt {
            what: format!("session record {sid} in {}", self.target),
            cause,
        })
    }
}

#[async_trait]
impl SessionStore for PgStore {
    async fn put_session(&self, record: &SessionRecord) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.pg_error(e))?;
        tx.batch_execute("SET LOCAL synchronous_commit TO off")
            .await
            .map_err(|e| self.pg_error(e))?;
        let op_sid = record.op_sid.as_deref().map(str::as_bytes);
        tx.execute(
            UPSERT_SESSION,
            &[
                &record.sid,
                &record.sub.as_bytes(),
                &op_sid,
                &int(record.expires_at),
                &json_text(record),
            ],
        )
        .await
        .map_err(|e| self.pg_error(e))?;
        tx.commit().await.map_err(|e| self.pg_error(e))
    }

    async fn session(&self, sid: &str) -> Result<Option<SessionRecord>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(SELECT_SESSION, &[&sid])
            .await
            .map_err(|e| self.pg_error(e))?;
        row.map(|row| self.decode_session(sid, row.get::<_, &str>(0)))
            .transpose()
    }

    async fn update_session(
        &self,
        sid: &str,
        change: &SessionChange<'_>,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.pg_error(e))?;
        let Some(row) = tx
            .query_opt(SELECT_SESSION_FOR_UPDATE, &[&sid])
            .await
            .map_err(|e| self.pg_error(e))?
        else {
            return Ok(None);
        };
        let current = self.decode_session(sid, row.get::<_, &str>(0))?;
        let Some(next) = change(&current) else {
            return Ok(Some(current));
        };
        tx.execute(
            UPDATE_SESSION,
            &[&sid, &json_text(&next), &int(next.expires_at)],
        )
        .await
        .map_err(|e| self.pg_error(e))?;
        tx.commit().await.map_err(|e| self.pg_error(e))?;
        Ok(Some(next))
    }

    async fn revoke(
        &self,
        target: &RevokeTarget,
        at: u64,
        until: u64,
    ) -> Result<Vec<Revocation>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.pg_error(e))?;
        let sids: Vec<String> = match target {
            RevokeTarget::Sid(sid) => vec![sid.clone()],
            RevokeTarget::OpSid(op_sid) => tx
                .query(SIDS_OF_OP_SID, &[&op_sid.as_bytes()])
                .await
                .map_err(|e| self.pg_error(e))?
                .iter()
                .map(|r| r.get(0))
                .collect(),
            RevokeTarget::Subject(sub) => tx
                .query(SIDS_OF_SUB, &[&sub.as_bytes()])
                .await
                .map_err(|e| self.pg_error(e))?
                .iter()
                .map(|r| r.get(0))
                .collect(),
        };
        // One order for every revoker: two revocations naming the same sessions never wait
        // for each other's row locks in a circle.
        let mut sids = sids;
        sids.sort_unstable();
        sids.dedup();
        let mut found = Vec::new();
        for sid in sids {
            let row = tx
                .query_opt(SELECT_SESSION_FOR_UPDATE, &[&sid])
                .await
                .map_err(|e| self.pg_error(e))?;
            let expires_at = match row {
                Some(row) => {
                    let current = self.decode_session(&sid, row.get::<_, &str>(0))?;
                    if let Some(next) = revoked_record(&current, at) {
                        tx.execute(
                            UPDATE_SESSION,
                            &[&sid, &json_text(&next), &int(next.expires_at)],
                        )
                        .await
                        .map_err(|e| self.pg_error(e))?;
                    }
                    Some(current.expires_at)
                }
                None => None,
            };
            found.push((sid, expires_at));
        }
        let lines = revocation_lines(target, found, at, until);
        for line in &lines {
            let json = serde_json::to_string(line).unwrap_or_default();
            tx.execute(APPEND_LINE, &[&int(line.until), &json])
                .await
                .map_err(|e| self.pg_error(e))?;
        }
        tx.commit().await.map_err(|e| self.pg_error(e))?;
        Ok(lines)
    }

    async fn revocations_since(&self, since_ms: u64) -> Result<(Vec<Revocation>, u64), StoreError> {
        let client = self.client().await?;
        // The clock first: a line logged while the query runs is read again by the next poll.
        let now_ms: i64 = client
            .query_one(CLOCK_MS, &[])
            .await
            .map_err(|e| self.pg_error(e))?
            .get(0);
        let rows = client
            .query(LINES_SINCE, &[&int(since_ms), &(now_ms / 1000)])
            .await
            .map_err(|e| self.pg_error(e))?;
        let lines = rows
            .iter()
            .map(|row| {
                serde_json::from_str::<Revocation>(row.get::<_, &str>(0)).map_err(|e| {
                    StoreError::Corrupt {
                        what: format!("revocation log of {}", self.target),
                        cause: e.to_string(),
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((lines, u64::try_from(now_ms).unwrap_or(0)))
    }

    async fn first_use(&self, key: &str, until: u64) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let now = crate::session::now_secs();
        let row = client
            .query_opt(USE_ONCE, &[&key.as_bytes(), &int(until), &int(now)])
            .await
            .map_err(|e| self.pg_error(e))?;
        Ok(row.is_some())
    }

    async fn purge_sessions(&self, now: u64) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let mut purged = 0;
        for statement in PURGE {
            purged += client
                .execute(statement, &[&int(now)])
                .await
                .map_err(|e| self.pg_error(e))?;
        }
        Ok(purged)
    }
}
