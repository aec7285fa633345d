//! The single flight and the store lease, with two "replicas" (two [`Refreshes`]) over one
//! store and an OP call that counts itself.

use std::sync::atomic::AtomicUsize;

use super::*;
use crate::store::MemorySessions;
use serde_json::Map;

const SID: &str = "session-1";

fn record(store_gen: u64) -> SessionRecord {
    SessionRecord {
        sid: SID.into(),
        sub: "alice".into(),
        op_sid: None,
        created_at: now_secs(),
        expires_at: now_secs() + 3600,
        revoked_at: None,
        generation: store_gen,
        refreshing_until: 0,
        tokens: Some(b"old tokens".to_vec()),
        refreshed: None,
    }
}

fn due(gen: u64) -> Due<'static> {
    Due {
        sid: SID,
        gen,
        exp: now_secs() + 3600,
    }
}

fn learnt(name: &str) -> RefreshedSession {
    RefreshedSession {
        gen: 0,
        refresh_at: now_secs() + 600,
        email: None,
        preferred_username: None,
        name: Some(name.into()),
        claims: Map::new(),
        groups: vec!["staff".into()],
    }
}

/// An OP call that counts itself, takes `delay` and answers `answer`.
async fn op_call(
    calls: &AtomicUsize,
    delay: Duration,
    seen: Option<Vec<u8>>,
    answer: OpOutcome,
) -> OpOutcome {
    calls.fetch_add(1, Ordering::SeqCst);
    assert_eq!(
        seen.as_deref(),
        Some(&b"old tokens"[..]),
        "the record's tokens"
    );
    tokio::time::sleep(delay).await;
    answer
}

/// An OP call a test says must not happen.
async fn never_op(why: &'static str) -> OpOutcome {
    panic!("{why}")
}

/// A revocation a test says must not happen.
async fn never_end(why: &'static str) {
    panic!("{why}")
}

fn refreshed_name(outcome: &Outcome) -> Option<(u64, String)> {
    match outcome {
        Outcome::Refreshed(r) => Some((r.gen, r.name.clone().unwrap_or_default())),
        Outcome::Ended | Outcome::Unchanged => None,
    }
}

#[tokio::test]
async fn twenty_concurrent_requests_of_one_session_make_one_op_call() {
    let store = MemorySessions::default();
    store.put_session(&record(0)).await.expect("put");
    let refreshes = Refreshes::new();
    let calls = AtomicUsize::new(0);
    let requests = (0..20).map(|_| {
        refreshes.refresh(
            due(0),
            &store,
            |sealed| {
                op_call(
                    &calls,
                    Duration::from_millis(200),
                    sealed,
                    OpOutcome::Refreshed(learnt("Alice Two"), Some(b"new tokens".to_vec())),
                )
            },
            || never_end("not refused"),
        )
    });
    let outcomes = futures_util::future::join_all(requests).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1, "one OP call");
    for outcome in &outcomes {
        assert_eq!(refreshed_name(outcome), Some((1, "Alice Two".into())));
    }
    let stored = store.session(SID).await.expect("read").expect("record");
    assert_eq!(stored.generation, 1);
    assert_eq!(stored.refreshing_until, 0, "lease released");
    assert_eq!(stored.tokens.as_deref(), Some(&b"new tokens"[..]));
    let kept: RefreshedSession =
        serde_json::from_value(stored.refreshed.expect("refreshed")).expect("readable");
    assert_eq!(kept.gen, 1);
    assert_eq!(kept.groups, vec!["staff".to_owned()]);

    // A cookie sealed before the refresh adopts it from memory: the record is gone and the OP
    // is not called, yet the outcome is the refresh.
    store.purge_sessions(u64::MAX).await.expect("purge");
    let again = refreshes
        .refresh(
            due(0),
            &store,
            |_| never_op("no second OP call"),
            || never_end("not refused"),
        )
        .await;
    assert_eq!(refreshed_name(&again), Some((1, "Alice Two".into())));
}

#[tokio::test]
async fn two_replicas_over_one_store_make_one_op_call_and_the_loser_adopts() {
    two_replicas_over(&MemorySessions::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_over_one_sled_store_make_one_op_call_and_the_loser_adopts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::store::SledStore::open(dir.path(), crate::store::SledOptions::default())
        .await
        .expect("sled opens");
    two_replicas_over(&store).await;
}

async fn two_replicas_over(store: &dyn SessionStore) {
    store.put_session(&record(0)).await.expect("put");
    let (a, b) = (Refreshes::new(), Refreshes::new());
    let calls = AtomicUsize::new(0);
    let on = |replica: &'static str| {
        let calls = &calls;
        move |sealed| {
            op_call(
                calls,
                Duration::from_millis(400),
                sealed,
                OpOutcome::Refreshed(learnt(replica), None),
            )
        }
    };
    let first = a.refresh(due(0), store, on("A"), || never_end("not refused"));
    let second = async {
        // B arrives while A holds the lease.
        tokio::time::sleep(Duration::from_millis(100)).await;
        b.refresh(due(0), store, on("B"), || never_end("not refused"))
            .await
    };
    let (first, second) = tokio::join!(first, second);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one OP call for both replicas"
    );
    assert_eq!(refreshed_name(&first), Some((1, "A".into())));
    assert_eq!(
        refreshed_name(&second),
        Some((1, "A".into())),
        "B adopted A's refresh"
    );
    // The old tokens stay when the OP did not rotate them.
    let stored = store.session(SID).await.expect("read").expect("record");
    assert_eq!(stored.tokens.as_deref(), Some(&b"old tokens"[..]));
    // A replica that comes later with an old cookie adopts from the record without the OP.
    let c = Refreshes::new();
    let late = c
        .refresh(
            due(0),
            store,
            |_| never_op("no OP call"),
            || never_end("not refused"),
        )
        .await;
    assert_eq!(refreshed_name(&late), Some((1, "A".into())));
}

#[tokio::test]
async fn a_refused_refresh_ends_the_session_once() {
    let store = MemorySessions::default();
    store.put_session(&record(0)).await.expect("put");
    let refreshes = Refreshes::new();
    let (calls, ends) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let requests = (0..5).map(|_| {
        refreshes.refresh(
            due(0),
            &store,
            |sealed| {
                op_call(
                    &calls,
                    Duration::from_millis(100),
                    sealed,
                    OpOutcome::Refused("invalid_grant".into()),
                )
            },
            || async {
                ends.fetch_add(1, Ordering::SeqCst);
            },
        )
    });
    let outcomes = futures_util::future::join_all(requests).await;
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Ended)));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(ends.load(Ordering::SeqCst), 1, "revoked once");
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_session_releases_the_lease_and_backs_off() {
    let store = MemorySessions::default();
    store.put_session(&record(0)).await.expect("put");
    let refreshes = Refreshes::new();
    let calls = AtomicUsize::new(0);
    let outcome = refreshes
        .refresh(
            due(0),
            &store,
            |sealed| {
                op_call(
                    &calls,
                    Duration::ZERO,
                    sealed,
                    OpOutcome::Failed("unreachable".into(), Some(b"rotated".to_vec())),
                )
            },
            || never_end("not refused"),
        )
        .await;
    assert!(matches!(outcome, Outcome::Unchanged));
    let stored = store.session(SID).await.expect("read").expect("record");
    assert_eq!(stored.refreshing_until, 0, "lease released");
    assert_eq!(stored.generation, 0);
    assert_eq!(
        stored.tokens.as_deref(),
        Some(&b"rotated"[..]),
        "a rotated refresh token is kept"
    );
    // Backing off: the next request does not call the OP.
    let next = refreshes
        .refresh(
            due(0),
            &store,
            |_| never_op("no OP call while backing off"),
            || never_end("not refused"),
        )
        .await;
    assert!(matches!(next, Outcome::Unchanged));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_revoked_or_missing_record_is_never_refreshed() {
    let store = MemorySessions::default();
    let mut revoked = record(0);
    revoked.revoked_at = Some(now_secs());
    store.put_session(&revoked).await.expect("put");
    let outcome = Refreshes::new()
        .refresh(
            due(0),
            &store,
            |_| never_op("no OP call for a revoked session"),
            || never_end("already revoked"),
        )
        .await;
    assert!(matches!(outcome, Outcome::Ended));
    let empty = MemorySessions::default();
    let outcome = Refreshes::new()
        .refresh(
            due(0),
            &empty,
            |_| never_op("no OP call without a record"),
            || never_end("not refused"),
        )
        .await;
    assert!(matches!(outcome, Outcome::Unchanged));
}

#[test]
fn the_next_refresh_is_before_expiry_but_never_too_soon() {
    let now = 1_000_000;
    let before = Duration::from_secs(60);
    assert_eq!(
        RefreshedSession::next_refresh_at(now + 3600, before, now),
        now + 3540
    );
    assert_eq!(
        RefreshedSession::next_refresh_at(now + 30, before, now),
        now + MIN_INTERVAL.as_secs()
    );
    assert_eq!(RefreshedSession::next_refresh_at(0, before, now), now + 300);
}

#[tokio::test]
async fn a_flight_dropped_with_its_request_leaves_no_lease_to_wait_for() {
    let store = MemorySessions::default();
    store.put_session(&record(0)).await.expect("put");
    let refreshes = Refreshes::new();
    // The client goes away while the OP call is under way: the request's future is dropped.
    let abandoned = tokio::time::timeout(
        Duration::from_millis(100),
        refreshes.refresh(
            due(0),
            &store,
            |_| std::future::pending::<OpOutcome>(),
            || never_end("not refused"),
        ),
    )
    .await;
    assert!(abandoned.is_err(), "the first flight never finished");
    let held = store.session(SID).await.expect("read").expect("record");
    assert!(
        held.refreshing_until > now_secs(),
        "its lease is still taken"
    );
    // The session's next request here takes the orphaned lease over at once.
    let calls = AtomicUsize::new(0);
    let started = tokio::time::Instant::now();
    let outcome = refreshes
        .refresh(
            due(0),
            &store,
            |sealed| {
                op_call(
                    &calls,
                    Duration::ZERO,
                    sealed,
                    OpOutcome::Refreshed(learnt("Alice Two"), None),
                )
            },
            || never_end("not refused"),
        )
        .await;
    assert_eq!(refreshed_name(&outcome), Some((1, "Alice Two".into())));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "no wait for the orphaned lease: {:?}",
        started.elapsed()
    );
    let stored = store.session(SID).await.expect("read").expect("record");
    assert_eq!(stored.refreshing_until, 0, "released after the refresh");
}
