//! Single-flight refreshes (DESIGN §13): one call to the OP per session and refresh, however
//! many requests of the session arrive at once, on however many workers and replicas.
//!
//! - In this process, [`Refreshes`] (one, shared by every worker's gate) keeps one flight per
//!   session id: the first request due runs the refresh, the others wait for its outcome.
//! - Across replicas, the store's record is the lease: the flight takes it with
//!   `update_session` (`refreshing_until`, only when nobody else holds it and the record's
//!   `generation` is still the cookie's), calls the OP, and writes the sealed tokens, the new
//!   [`RefreshedSession`], `generation + 1`, releasing the lease. A replica that finds the
//!   lease taken polls the record (bounded by [`WAIT_FOR_OTHER`]) until the generation moves,
//!   and adopts what the winner wrote.
//! - A cookie sealed at an older generation than a refresh this process made adopts it from
//!   memory: neither the store nor the OP is asked again.
//! - A temporary failure (OP unreachable, 5xx, a configuration problem) leaves the session as
//!   it is, retried after [`RETRY_AFTER`]; logged once per session.
//!
//! Nothing here knows HTTP or the gate: the OP call and the revocation are handed in.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::session::now_secs;
use crate::store::{SessionRecord, SessionStore};

pub use super::refreshed::{RefreshedSession, MIN_INTERVAL};

/// How long a replica holds the right to refresh a session: longer than the OP calls of one
/// refresh can take (token endpoint, a key-set fetch, userinfo, each bounded by `oidc.timeout`).
pub const LEASE: Duration = Duration::from_secs(30);
/// How long a request waits for another replica's refresh of its session before it goes on
/// with the claims it has.
pub const WAIT_FOR_OTHER: Duration = Duration::from_secs(10);
/// How often a waiting replica reads the record.
const POLL: Duration = Duration::from_millis(100);
/// After a temporary failure, the session's next refresh is tried this much later.
pub const RETRY_AFTER: Duration = Duration::from_secs(30);
/// Entries kept per map before the ended ones are dropped.
const PRUNE_ABOVE: usize = 10_000;

/// What the OP call of a flight returns.
pub enum OpOutcome {
    /// New claims, and the new tokens sealed for the record.
    Refreshed(RefreshedSession, Option<Vec<u8>>),
    /// The OP refused (or its answer failed verification): the session is over.
    Refused(String),
    /// Not now (the OP unreachable, a configuration problem, nothing to refresh with); with the
    /// sealed tokens to keep when the OP had rotated them already.
    Failed(String, Option<Vec<u8>>),
}

/// The OP call of a flight, and the revocation of a refused session, as boxed futures (a
/// generic closure's future borrowing the gate defeats the `Send` proof of the request's).
pub type OpCall<'a> = Pin<Box<dyn Future<Output = OpOutcome> + Send + 'a>>;
pub type EndCall<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// What a due session becomes.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Refreshed (here, or by another replica, or earlier in this process).
    Refreshed(Arc<RefreshedSession>),
    /// The refresh was refused: the session has been revoked.
    Ended,
    /// The session goes on as it is (its refresh failed for now, or is another's).
    Unchanged,
}

/// A session due for a refresh, as its cookie says.
#[derive(Debug, Clone, Copy)]
pub struct Due<'a> {
    pub sid: &'a str,
    /// The generation the cookie was sealed at.
    pub gen: u64,
    /// The session's end (seconds since the epoch).
    pub exp: u64,
}

type Flight = Arc<tokio::sync::OnceCell<Outcome>>;

/// A refresh made or adopted here, and the end of its session (when it can be forgotten).
type Done = (Arc<RefreshedSession>, u64);

/// This process's refreshes, shared by every worker.
#[derive(Default)]
pub struct Refreshes {
    /// The refreshes under way, by session id.
    flights: Mutex<HashMap<Box<str>, Flight>>,
    /// The last refresh made or adopted here, by session id, until the session's end.
    done: Mutex<HashMap<Box<str>, Done>>,
    /// Sessions whose refresh failed for now: until when they are left alone.
    backoff: Mutex<HashMap<Box<str>, u64>>,
    /// The leases this process took and has not released, by session id: a flight dropped
    /// with its request (the client went away) leaves one, which the session's next flight
    /// here takes over instead of waiting for it to run out.
    leases: Mutex<HashMap<Box<str>, u64>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Refreshes {
    pub fn new() -> Self {
        Self::default()
    }

    /// Refreshes the session `due` names, once for every caller. `op` is called with the
    /// record's sealed tokens by the one flight that holds the lease; `end` revokes the
    /// session when the OP refused. Returns at once (no store, no OP) when this process has
    /// refreshed the session past the cookie's generation, or is backing off from a failure.
    /// `end` runs only for the OP's refusal (a record found revoked is over already).
    pub async fn refresh<Op, OpFut, End, EndFut>(
        &self,
        due: Due<'_>,
        store: &dyn SessionStore,
        op: Op,
        end: End,
    ) -> Outcome
    where
        Op: FnOnce(Option<Vec<u8>>) -> OpFut,
        OpFut: Future<Output = OpOutcome>,
        End: FnOnce() -> EndFut,
        EndFut: Future<Output = ()>,
    {
        let now = now_secs();
        if let Some(known) = self.known(due.sid, due.gen) {
            return Outcome::Refreshed(known);
        }
        if lock(&self.backoff)
            .get(due.sid)
            .is_some_and(|&until| now < until)
        {
            return Outcome::Unchanged;
        }
        let flight = lock(&self.flights)
            .entry(due.sid.into())
            .or_default()
            .clone();
        let outcome = flight
            .get_or_init(|| async {
                // A flight that finished just before this one started.
                if let Some(known) = self.known(due.sid, due.gen) {
                    return Outcome::Refreshed(known);
                }
                self.lease_and_refresh(due, store, op, end).await
            })
            .await
            .clone();
        {
            let mut flights = lock(&self.flights);
            if flights
                .get(due.sid)
                .is_some_and(|f| Arc::ptr_eq(f, &flight))
            {
                flights.remove(due.sid);
            }
        }
        outcome
    }

    /// The refresh this process made or adopted for `sid` past generation `gen`.
    fn known(&self, sid: &str, gen: u64) -> Option<Arc<RefreshedSession>> {
        lock(&self.done)
            .get(sid)
            .filter(|(r, _)| r.gen > gen)
            .map(|(r, _)| r.clone())
    }

    fn remember(&self, sid: &str, refreshed: &Arc<RefreshedSession>, exp: u64) {
        let now = now_secs();
        let mut done = lock(&self.done);
        if done.len() >= PRUNE_ABOVE {
            done.retain(|_, (_, until)| *until > now);
        }
        done.insert(sid.into(), (refreshed.clone(), exp));
        drop(done);
        lock(&self.backoff).remove(sid);
    }

    /// Leaves `sid` alone until `until`; the first time for this session it is logged as a
    /// warning, later times as debug lines.
    fn back_off(&self, sid: &str, until: u64, why: &str) {
        let now = now_secs();
        let mut backoff = lock(&self.backoff);
        if backoff.len() >= PRUNE_ABOVE {
            backoff.retain(|_, u| *u > now);
        }
        let first = backoff.insert(sid.into(), until).is_none();
        drop(backoff);
        if first {
            tracing::warn!(reason = %why, retry_in_secs = until.saturating_sub(now), "session refresh failed; the session goes on with its current claims");
        } else {
            tracing::debug!(reason = %why, "session refresh failed again");
        }
    }

    /// The cross-replica part: take the record's lease (or find the refresh done or under way
    /// elsewhere), call the OP, write the outcome.
    async fn lease_and_refresh<Op, OpFut, End, EndFut>(
        &self,
        due: Due<'_>,
        store: &dyn SessionStore,
        op: Op,
        end: End,
    ) -> Outcome
    where
        Op: FnOnce(Option<Vec<u8>>) -> OpFut,
        OpFut: Future<Output = OpOutcome>,
        End: FnOnce() -> EndFut,
        EndFut: Future<Output = ()>,
    {
        let now = now_secs();
        let took = AtomicBool::new(false);
        let lease_until = now + LEASE.as_secs();
        // Only one flight per session runs here: a lease this process holds is an orphan.
        let orphan = lock(&self.leases).get(due.sid).copied();
        let taken = store
            .update_session(due.sid, &|r: &SessionRecord| {
                let free = r.revoked_at.is_none()
                    && r.generation <= due.gen
                    && (r.refreshing_until <= now_secs() || Some(r.refreshing_until) == orphan);
                took.store(free, Ordering::SeqCst);
                free.then(|| SessionRecord {
                    refreshing_until: lease_until,
                    ..r.clone()
                })
            })
            .await;
        let record = match taken {
            Ok(Some(record)) => record,
            Ok(None) => {
                // No record (lost in a crash before the store's flush): the session lives on
                // without refresh.
                self.back_off(due.sid, due.exp, "the session has no record in the store");
                return Outcome::Unchanged;
            }
            Err(e) => {
                self.back_off(due.sid, now + RETRY_AFTER.as_secs(), &e.to_string());
                return Outcome::Unchanged;
            }
        };
        if !took.load(Ordering::SeqCst) {
            return self.adopt_or_wait(due, store, record).await;
        }
        {
            let mut leases = lock(&self.leases);
            if leases.len() >= PRUNE_ABOVE {
                leases.retain(|_, until| *until > now);
            }
            leases.insert(due.sid.into(), lease_until);
        }
        let outcome = self.call_and_write(due, store, op, end, record).await;
        lock(&self.leases).remove(due.sid);
        outcome
    }

    /// The lease holder's part: call the OP with the record's tokens, write the outcome and
    /// release the lease.
    async fn call_and_write<Op, OpFut, End, EndFut>(
        &self,
        due: Due<'_>,
        store: &dyn SessionStore,
        op: Op,
        end: End,
        record: SessionRecord,
    ) -> Outcome
    where
        Op: FnOnce(Option<Vec<u8>>) -> OpFut,
        OpFut: Future<Output = OpOutcome>,
        End: FnOnce() -> EndFut,
        EndFut: Future<Output = ()>,
    {
        let now = now_secs();
        match op(record.tokens.clone()).await {
            OpOutcome::Refreshed(mut refreshed, tokens) => {
                refreshed.gen = record.generation.max(due.gen) + 1;
                let written = store
                    .update_session(due.sid, &|r: &SessionRecord| {
                        (r.revoked_at.is_none()).then(|| SessionRecord {
                            generation: refreshed.gen,
                            refreshing_until: 0,
                            tokens: tokens.clone().or_else(|| r.tokens.clone()),
                            refreshed: serde_json::to_value(&refreshed).ok(),
                            ..r.clone()
                        })
                    })
                    .await;
                match written {
                    Ok(Some(r)) if r.revoked_at.is_some() => Outcome::Ended,
                    Ok(Some(_)) => {
                        let refreshed = Arc::new(refreshed);
                        self.remember(due.sid, &refreshed, due.exp);
                        Outcome::Refreshed(refreshed)
                    }
                    Ok(None) => Outcome::Unchanged,
                    Err(e) => {
                        // The new claims are not recorded: not used either (another replica
                        // would refresh again with a refresh token the OP may have rotated).
                        self.back_off(due.sid, now + RETRY_AFTER.as_secs(), &e.to_string());
                        Outcome::Unchanged
                    }
                }
            }
            OpOutcome::Refused(why) => {
                tracing::info!(reason = %why, "session refresh refused by the identity provider; the session ends");
                end().await;
                Outcome::Ended
            }
            OpOutcome::Failed(why, rotated) => {
                let release = store
                    .update_session(due.sid, &|r: &SessionRecord| {
                        Some(SessionRecord {
                            refreshing_until: 0,
                            tokens: rotated.clone().or_else(|| r.tokens.clone()),
                            ..r.clone()
                        })
                    })
                    .await;
                if let Err(e) = release {
                    tracing::warn!(error = %e, "the refresh lease could not be released; it runs out by itself");
                }
                self.back_off(due.sid, now + RETRY_AFTER.as_secs(), &why);
                Outcome::Unchanged
            }
        }
    }

    /// Another replica holds the lease (or has refreshed already): adopt its refresh, waiting
    /// for it at most [`WAIT_FOR_OTHER`].
    async fn adopt_or_wait(
        &self,
        due: Due<'_>,
        store: &dyn SessionStore,
        mut record: SessionRecord,
    ) -> Outcome {
        let deadline = tokio::time::Instant::now() + WAIT_FOR_OTHER;
        loop {
            if record.revoked_at.is_some() {
                return Outcome::Ended;
            }
            if record.generation > due.gen {
                return match record
                    .refreshed
                    .as_ref()
                    .and_then(|j| serde_json::from_value::<RefreshedSession>(j.clone()).ok())
                {
                    Some(refreshed) => {
                        let refreshed = Arc::new(refreshed);
                        self.remember(due.sid, &refreshed, due.exp);
                        Outcome::Refreshed(refreshed)
                    }
                    None => {
                        self.back_off(
                            due.sid,
                            due.exp,
                            "the record's refreshed claims are unreadable",
                        );
                        Outcome::Unchanged
                    }
                };
            }
            if record.refreshing_until <= now_secs() {
                // The other replica gave up (its OP call failed) or died: not this request's
                // turn to try; a later one will.
                self.back_off(
                    due.sid,
                    now_secs() + MIN_INTERVAL.as_secs(),
                    "another replica's refresh did not complete",
                );
                return Outcome::Unchanged;
            }
            if tokio::time::Instant::now() >= deadline {
                self.back_off(
                    due.sid,
                    now_secs() + MIN_INTERVAL.as_secs(),
                    "another replica's refresh took too long",
                );
                return Outcome::Unchanged;
            }
            tokio::time::sleep(POLL).await;
            record = match store.session(due.sid).await {
                Ok(Some(r)) => r,
                Ok(None) | Err(_) => return Outcome::Unchanged,
            };
        }
    }
}

#[cfg(test)]
#[path = "flight_tests.rs"]
mod tests;
