//! The administrator's operations (erase, scan, import) on both backends, and the notification
//! that reaches the other replica's caches.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{answer, one, run, user};
use crate::profile::AnswerValue;
use crate::store::*;

/// Remembers what the store told it.
#[derive(Default)]
struct Heard(Mutex<Vec<(UserChange, Instant)>>);

impl ForgetUsers for Heard {
    fn forget_user(&self, user: &UserKey) {
        let mut heard = self.0.lock().expect("lock");
        heard.push((UserChange::User(user.clone()), Instant::now()));
    }
    fn forget_everyone(&self) {
        let mut heard = self.0.lock().expect("lock");
        heard.push((UserChange::Everyone, Instant::now()));
    }
}

impl Heard {
    fn heard(&self, user: &UserKey) -> Option<Instant> {
        let heard = self.0.lock().expect("lock");
        heard
            .iter()
            .find(|(c, _)| *c == UserChange::User(user.clone()))
            .map(|(_, at)| *at)
    }
}

fn listen(store: &dyn ProfileStore) -> Arc<Heard> {
    let heard = Arc::new(Heard::default());
    let as_dyn: Arc<dyn ForgetUsers> = heard.clone();
    store.user_changes().subscribe(Arc::downgrade(&as_dyn));
    // The store holds it weakly: keep the strong one alive through the `Arc<Heard>`.
    std::mem::forget(as_dyn);
    heard
}

/// What both backends must do alike.
pub(super) async fn erase_scan_and_import(store: &dyn ProfileStore) {
    let heard = listen(store);
    let alice = user("alice");
    store.record_login(&alice, 10).await.expect("login");
    store
        .save_answers(&alice, one("company", AnswerValue::Text("Acme".into())))
        .await
        .expect("answer");
    store
        .record_skip(&alice, "role", Skip::new(11, 1), &|_| false)
        .await
        .expect("skip");
    assert!(store.erase(&alice).await.expect("erase"), "there was one");
    assert!(heard.heard(&alice).is_some(), "told before erase returned");
    assert!(store.load(&alice).await.expect("load").is_none(), "gone");
    assert!(!store.erase(&alice).await.expect("erase again"));
    // A login after the erase starts a new record.
    let again = store.record_login(&alice, 20).await.expect("login");
    assert_eq!(
        (again.logins, again.first_login_at, again.answers.len()),
        (1, 20, 0)
    );

    // Import: created, then unchanged (no write, no revision bump), then replaced above.
    let bob = user("bob");
    let mut record = ProfileRecord {
        logins: 3,
        revision: 7,
        ..ProfileRecord::default()
    };
    record.answers.insert(
        "company".into(),
        answer(AnswerValue::Text("Bob & Co".into())),
    );
    assert_eq!(
        store.import(&bob, &record).await.expect("import"),
        Imported::Created
    );
    assert_eq!(
        store.import(&bob, &record).await.expect("import"),
        Imported::Unchanged
    );
    assert_eq!(store.load(&bob).await.expect("load"), Some(record.clone()));
    record.logins = 4;
    record.revision = 2;
    assert_eq!(
        store.import(&bob, &record).await.expect("import"),
        Imported::Replaced
    );
    let stored = store.load(&bob).await.expect("load").expect("stored");
    assert_eq!(
        (stored.logins, stored.revision),
        (4, 8),
        "revisions never go back"
    );
    assert!(heard.heard(&bob).is_some());

    // Scan: every record once, in pages, whatever the page size.
    for n in 0..2345 {
        store
            .import(&user(&format!("user-{n:05}")), &record)
            .await
            .expect("import");
    }
    let mut seen = Vec::new();
    let mut after: Option<UserKey> = None;
    let mut pages = 0;
    loop {
        let page = store.scan(after.as_ref(), 1000).await.expect("scan");
        assert!(page.len() <= 1000);
        if page.is_empty() {
            break;
        }
        pages += 1;
        after = page.last().map(|(k, _)| k.clone());
        seen.extend(page.into_iter().map(|(k, _)| k));
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 2345 + 2);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no record twice");
    assert!(seen.contains(&alice) && seen.contains(&bob));
}

#[test]
fn sled_erases_scans_and_imports() {
    let dir = tempfile::tempdir().expect("tempdir");
    run(async {
        let store = super::open_at(dir.path()).await;
        erase_scan_and_import(&store).await;
    });
}

/// Two PostgreSQL stores on one schema stand for two replicas: an erase or an import on one
/// reaches the other's caches through `LISTEN`; the delay is printed.
#[test]
fn postgres_erases_scans_imports_and_tells_the_other_replica() {
    run(async {
        let Some(db) = super::pg::TestDb::new().await else {
            return;
        };
        let a = db.store().await;
        erase_scan_and_import(&a).await;
        let b = db.store().await;
        let heard_b = listen(&b);
        // B's LISTEN connection is made in the background: wait until it hears at all.
        let warm = user("warm-up");
        let deadline = Instant::now() + Duration::from_secs(10);
        while heard_b.heard(&warm).is_none() {
            assert!(Instant::now() < deadline, "replica B never listened");
            a.record_login(&warm, 1).await.expect("login");
            a.erase(&warm).await.expect("erase");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let carol = user("carol");
        let mut delays = Vec::new();
        for round in 0..20 {
            a.save_answers(
                &carol,
                one("company", AnswerValue::Text(format!("C{round}"))),
            )
            .await
            .expect("answer");
            heard_b.0.lock().expect("lock").clear();
            let erased_at = Instant::now();
            assert!(a.erase(&carol).await.expect("erase"));
            let deadline = Instant::now() + Duration::from_secs(5);
            let heard = loop {
                if let Some(at) = heard_b.heard(&carol) {
                    break at;
                }
                assert!(
                    Instant::now() < deadline,
                    "replica B never heard of the erase"
                );
                tokio::time::sleep(Duration::from_micros(200)).await;
            };
            delays.push(heard.saturating_duration_since(erased_at));
        }
        delays.sort();
        eprintln!(
            "erase on A -> B's caches told: median {:?}, max {:?} (from the call on A)",
            delays[delays.len() / 2],
            delays[delays.len() - 1]
        );
        db.drop_schema().await;
    });
}
