//! The revoked sessions, in memory (DESIGN §13): what the signed-in hot path reads to refuse a
//! revoked session without a store round trip.
//!
//! Every revocation goes to the store (`SessionStore::revoke`, durable) and to this process's
//! view at once ([`Revoker::revoke`]); the other replicas learn it from the store's revocation
//! log, which a thread of each process polls every [`POLL_EVERY`] ([`spawn_poller`]). A poll
//! reads the lines logged since the previous poll's start minus [`POLL_OVERLAP`] (a writer that
//! committed late is read again; applying a line twice changes nothing), so a revocation on one
//! replica is refused on every other within about a second. Polling, not PostgreSQL's
//! `LISTEN/NOTIFY`: a poll cannot miss a line while a connection is being re-made, needs no
//! connection of its own, and costs one indexed query a second per replica; its latency (≤ 1 s)
//! fits the 2 s bound.
//!
//! A line names a session id (that session is over) or a subject (every session of it signed in
//! at or before the revocation is over, records or not). Lines leave the view when the longest
//! session they can end would have ended anyway.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use super::{now_secs, Session};
use crate::store::{ProfileStore, Revocation, RevokeTarget, RevokedKind, StoreError};

/// How often each process reads the store's revocation log.
pub const POLL_EVERY: Duration = Duration::from_secs(1);
/// How far back each poll reads beyond the previous poll's start.
pub const POLL_OVERLAP: Duration = Duration::from_secs(10);
/// How often ended session records, log lines and use marks are deleted from the store.
const PURGE_EVERY: Duration = Duration::from_secs(600);

#[derive(Default)]
struct Lines {
    /// Revoked session ids and until when they matter.
    sids: HashMap<Box<str>, u64>,
    /// Subjects whose sessions signed in at or before `at` are revoked: `(at, until)`.
    subjects: HashMap<Box<str>, (u64, u64)>,
}

/// This process's view of the revoked sessions.
#[derive(Default)]
pub struct RevokedSessions {
    /// False while the view is empty: the hot path then takes no lock at all.
    any: AtomicBool,
    lines: RwLock<Lines>,
}

impl RevokedSessions {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `session` has been revoked (as far as this process knows).
    pub fn is_revoked(&self, session: &Session) -> bool {
        if !self.any.load(Ordering::Acquire) {
            return false;
        }
        let lines = self.lines.read().unwrap_or_else(|p| p.into_inner());
        lines.sids.contains_key(session.sid.as_str())
            || lines
                .subjects
                .get(session.sub.as_str())
                .is_some_and(|&(at, _)| session.iat <= at)
    }

    /// Takes in lines of the revocation log (read from the store, or just written here).
    pub fn apply(&self, revocations: &[Revocation]) {
        if revocations.is_empty() {
            return;
        }
        let mut lines = self.lines.write().unwrap_or_else(|p| p.into_inner());
        for line in revocations {
            let value: Box<str> = line.value.as_str().into();
            match line.kind {
                RevokedKind::Sid => {
                    let until = lines.sids.entry(value).or_insert(0);
                    *until = (*until).max(line.until);
                }
                RevokedKind::Subject => {
                    let entry = lines.subjects.entry(value).or_insert((0, 0));
                    *entry = (entry.0.max(line.at), entry.1.max(line.until));
                }
            }
        }
        self.any.store(true, Ordering::Release);
    }

    /// Drops the lines that can no longer end any session at `now` (seconds).
    pub fn prune(&self, now: u64) {
        let mut lines = self.lines.write().unwrap_or_else(|p| p.into_inner());
        lines.sids.retain(|_, until| *until > now);
        lines.subjects.retain(|_, (_, until)| *until > now);
        let any = !lines.sids.is_empty() || !lines.subjects.is_empty();
        self.any.store(any, Ordering::Release);
    }

    /// How many lines the view holds (for `/metrics` and tests).
    pub fn len(&self) -> usize {
        let lines = self.lines.read().unwrap_or_else(|p| p.into_inner());
        lines.sids.len() + lines.subjects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Revokes sessions: in the store (durable, for every replica) and in this process's view.
#[derive(Clone)]
pub struct Revoker {
    store: Arc<dyn ProfileStore>,
    view: Arc<RevokedSessions>,
    /// `session.lifetime`: a subject's revocation matters for that long.
    lifetime: Duration,
}

impl Revoker {
    pub fn new(
        store: Arc<dyn ProfileStore>,
        view: Arc<RevokedSessions>,
        lifetime: Duration,
    ) -> Self {
        Self {
            store,
            view,
            lifetime,
        }
    }

    /// The view the hot path reads.
    pub fn view(&self) -> &RevokedSessions {
        &self.view
    }

    /// Ends the sessions `target` names, on every replica; how many log lines it wrote (an OP
    /// session id naming no session here writes none).
    pub async fn revoke(&self, target: &RevokeTarget) -> Result<usize, StoreError> {
        let now = now_secs();
        let until = now + self.lifetime.as_secs();
        let lines = self.store.revoke(target, now, until).await?;
        self.view.apply(&lines);
        Ok(lines.len())
    }
}

/// Fills `view` with every live line of the store's log; the clock to poll from next.
pub async fn load(view: &RevokedSessions, store: &dyn ProfileStore) -> Result<u64, StoreError> {
    let (lines, now_ms) = store.revocations_since(0).await?;
    view.apply(&lines);
    Ok(now_ms)
}

/// Starts the thread that keeps `view` fresh from `store`'s revocation log (every
/// [`POLL_EVERY`], from `since_ms` on) and purges ended records (every [`PURGE_EVERY`]). It
/// holds neither: it stops once either is dropped.
pub fn spawn_poller(
    view: &Arc<RevokedSessions>,
    store: &Arc<dyn ProfileStore>,
    since_ms: u64,
) -> std::io::Result<()> {
    let (view, store): (Weak<RevokedSessions>, Weak<dyn ProfileStore>) =
        (Arc::downgrade(view), Arc::downgrade(store));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("revocations".into())
        .spawn(move || rt.block_on(poll(view, store, since_ms)))?;
    Ok(())
}

async fn poll(view: Weak<RevokedSessions>, store: Weak<dyn ProfileStore>, mut since_ms: u64) {
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    let mut purged_at = std::time::Instant::now() - PURGE_EVERY;
    loop {
        tick.tick().await;
        let (Some(view), Some(store)) = (view.upgrade(), store.upgrade()) else {
            return;
        };
        match store.revocations_since(since_ms).await {
            Ok((lines, now_ms)) => {
                view.apply(&lines);
                since_ms = now_ms.saturating_sub(POLL_OVERLAP.as_millis() as u64);
                if failing {
                    tracing::info!("revocation log readable again");
                }
                failing = false;
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "cannot read the revocation log; sessions revoked on other replicas are not refused here until it is back");
                }
                failing = true;
            }
        }
        view.prune(now_secs());
        if purged_at.elapsed() >= PURGE_EVERY {
            purged_at = std::time::Instant::now();
            match store.purge_sessions(now_secs()).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(purged = n, "ended session records purged"),
                Err(e) => tracing::warn!(error = %e, "ended session records not purged"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(sid: &str, sub: &str, iat: u64) -> Session {
        let mut s = super::super::test_sealer("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
            .new_session(sub.into(), None, None, None);
        s.sid = sid.into();
        s.iat = iat;
        s
    }

    #[test]
    fn sid_and_subject_lines_end_the_right_sessions_and_go_when_they_can_end_none() {
        let view = RevokedSessions::new();
        let (a1, a2, b) = (
            session("a1", "alice", 100),
            session("a2", "alice", 300),
            session("b1", "bob", 100),
        );
        assert!(!view.is_revoked(&a1));
        view.apply(&[Revocation {
            kind: RevokedKind::Sid,
            value: "b1".into(),
            at: 150,
            until: 1000,
        }]);
        assert!(view.is_revoked(&b) && !view.is_revoked(&a1));
        view.apply(&[Revocation {
            kind: RevokedKind::Subject,
            value: "alice".into(),
            at: 200,
            until: 2000,
        }]);
        // Alice's session from before the revocation is over; her later login is not.
        assert!(view.is_revoked(&a1) && !view.is_revoked(&a2));
        view.prune(1000);
        assert!(!view.is_revoked(&b) && view.is_revoked(&a1));
        view.prune(2000);
        assert!(view.is_empty() && !view.is_revoked(&a1));
    }

    #[tokio::test]
    async fn a_revocation_reaches_this_view_at_once_and_another_by_the_log() {
        let dir = tempfile::tempdir().expect("dir");
        let store: Arc<dyn ProfileStore> = Arc::new(
            crate::store::SledStore::open(dir.path(), Default::default())
                .await
                .expect("sled"),
        );
        let here = Arc::new(RevokedSessions::new());
        let elsewhere = RevokedSessions::new();
        let since = load(&elsewhere, &*store).await.expect("load");
        let revoker = Revoker::new(store.clone(), here.clone(), Duration::from_secs(3600));
        let s = session("s1", "alice", now_secs());
        revoker
            .revoke(&RevokeTarget::Sid("s1".into()))
            .await
            .expect("revoke");
        assert!(here.is_revoked(&s));
        assert!(!elsewhere.is_revoked(&s));
        let (lines, _) = store
            .revocations_since(since.saturating_sub(10_000))
            .await
            .expect("log");
        elsewhere.apply(&lines);
        assert!(elsewhere.is_revoked(&s));
        // A fresh process loads every live line.
        let fresh = RevokedSessions::new();
        load(&fresh, &*store).await.expect("load");
        assert!(fresh.is_revoked(&s));
    }
}
