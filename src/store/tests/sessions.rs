//! The session half of the store ([`SessionStore`]) on both backends: one sled store (both
//! handles the same), and two PostgreSQL stores on one schema standing for two replicas.

use std::sync::Arc;

use super::pg::TestDb;
use super::run;
use crate::session::now_secs;
use crate::store::*;

fn record(sid: &str, sub: &str, op_sid: Option<&str>, expires_at: u64) -> SessionRecord {
    SessionRecord {
        sid: sid.into(),
        sub: sub.into(),
        op_sid: op_sid.map(str::to_owned),
        created_at: now_secs(),
        expires_at,
        revoked_at: None,
        generation: 0,
        refreshing_until: 0,
        tokens: Some(vec![0, 1, 2, 254, 255]),
        refreshed: None,
    }
}

/// What every backend must do; `a` and `b` are two handles on one store (two replicas).
async fn sessions_behave(a: Arc<dyn ProfileStore>, b: Arc<dyn ProfileStore>) {
    let now = now_secs();
    let later = now + 3600;
    // Records round-trip through the other replica, tokens byte for byte.
    let alice1 = record("s-alice-1", "alice", Some("op-1"), later);
    a.put_session(&alice1).await.expect("put");
    assert_eq!(
        b.session("s-alice-1").await.expect("read"),
        Some(alice1.clone())
    );
    assert_eq!(b.session("nobody").await.expect("read"), None);
    // A subject with a NUL and non-ASCII, an OP sid shared by two of our sessions.
    let odd = "zoë\u{0}x";
    a.put_session(&record("s-odd", odd, Some("op-2"), later))
        .await
        .expect("put");
    a.put_session(&record("s-alice-2", "alice", Some("op-2"), later))
        .await
        .expect("put");
    a.put_session(&record("s-bob", "bob", None, later))
        .await
        .expect("put");

    // Concurrent read-modify-writes from both replicas all land.
    let mut writers = Vec::new();
    for i in 0..20 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        writers.push(tokio::spawn(async move {
            store
                .update_session("s-bob", &|r| {
                    let mut next = r.clone();
                    next.generation += 1;
                    Some(next)
                })
                .await
                .expect("update")
        }));
    }
    for w in writers {
        w.await.expect("task");
    }
    let bob = a.session("s-bob").await.expect("read").expect("bob");
    assert_eq!(bob.generation, 20);
    // A change that declines writes nothing; no record: None.
    let same = b.update_session("s-bob", &|_| None).await.expect("update");
    assert_eq!(same, Some(bob));
    assert_eq!(
        b.update_session("nobody", &|r| Some(r.clone()))
            .await
            .expect("update"),
        None
    );

    // The log so far is empty; the clock the poll continues from is the store's.
    let (lines, clock) = b.revocations_since(0).await.expect("log");
    assert!(lines.is_empty(), "{lines:?}");

    // By our sid: the record is marked and loses its tokens; one line, until its expiry.
    let revoked = a
        .revoke(&RevokeTarget::Sid("s-alice-1".into()), now, now + 10)
        .await
        .expect("revoke");
    assert_eq!(
        revoked,
        vec![Revocation {
            kind: RevokedKind::Sid,
            value: "s-alice-1".into(),
            at: now,
            until: later
        }]
    );
    let marked = b.session("s-alice-1").await.expect("read").expect("record");
    assert_eq!(
        (marked.revoked_at, marked.tokens.clone()),
        (Some(now), None)
    );
    // By the OP's sid: both of our sessions it names.
    let mut by_op = a
        .revoke(&RevokeTarget::OpSid("op-2".into()), now, now + 10)
        .await
        .expect("revoke");
    by_op.sort_by(|x, y| x.value.cmp(&y.value));
    let values: Vec<&str> = by_op.iter().map(|l| l.value.as_str()).collect();
    assert_eq!(values, ["s-alice-2", "s-odd"]);
    assert!(b
        .revoke(&RevokeTarget::OpSid("op-unknown".into()), now, now + 10)
        .await
        .expect("revoke")
        .is_empty());
    // By subject: one line for the subject (sessions without a record end too), records marked.
    let by_sub = b
        .revoke(&RevokeTarget::Subject(odd.into()), now, now + 7200)
        .await
        .expect("revoke");
    assert_eq!(
        by_sub,
        vec![Revocation {
            kind: RevokedKind::Subject,
            value: odd.into(),
            at: now,
            until: now + 7200
        }]
    );
    // The other replica's poll reads every line from where it left off.
    let (lines, _) = a
        .revocations_since(clock.saturating_sub(10_000))
        .await
        .expect("log");
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(lines.contains(&by_sub[0]) && lines.contains(&revoked[0]));
    let (none, _) = a.revocations_since(u64::MAX / 2).await.expect("log");
    assert!(none.is_empty());
    assert!(b
        .session("s-bob")
        .await
        .expect("read")
        .expect("bob")
        .revoked_at
        .is_none());

    // Use-once marks are shared by the replicas.
    assert!(a.first_use("jti\nx", later).await.expect("use"));
    assert!(!b.first_use("jti\nx", later).await.expect("use"));
    assert!(b.first_use("jti\ny", later).await.expect("use"));
    // A mark whose time has passed can be used again.
    assert!(a.first_use("jti\nold", now - 1).await.expect("use"));
    assert!(b.first_use("jti\nold", later).await.expect("use"));

    // Purge: ended records, lines and marks go; live ones stay.
    a.put_session(&record("s-ended", "carol", Some("op-3"), now - 5))
        .await
        .expect("put");
    a.revoke(&RevokeTarget::Sid("s-gone".into()), now, now - 1)
        .await
        .expect("revoke");
    let purged = b.purge_sessions(now).await.expect("purge");
    assert!(purged >= 2, "purged {purged}");
    assert_eq!(a.session("s-ended").await.expect("read"), None);
    assert!(a.session("s-bob").await.expect("read").is_some());
    assert!(a
        .revoke(&RevokeTarget::OpSid("op-3".into()), now, now + 10)
        .await
        .expect("revoke")
        .is_empty());
    let (live, _) = b.revocations_since(0).await.expect("log");
    assert!(live.iter().all(|l| l.value != "s-gone"), "{live:?}");
    assert!(
        !a.first_use("jti\nx", later).await.expect("use"),
        "a live mark survived the purge"
    );
}

#[test]
fn sled_keeps_session_records_revocations_and_use_marks() {
    run(async {
        let dir = tempfile::tempdir().expect("dir");
        let store: Arc<dyn ProfileStore> = Arc::new(super::open_at(dir.path()).await);
        sessions_behave(store.clone(), store).await;
    });
}

#[test]
fn postgres_replicas_share_session_records_revocations_and_use_marks() {
    run(async {
        let Some(db) = TestDb::new().await else {
            return;
        };
        let a: Arc<dyn ProfileStore> = Arc::new(db.store().await);
        let b: Arc<dyn ProfileStore> = Arc::new(db.store().await);
        sessions_behave(a.clone(), b.clone()).await;
        drop((a, b));
        db.drop_schema().await;
    });
}
