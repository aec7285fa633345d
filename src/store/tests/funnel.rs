//! The funnel totals on both backends: concurrent batches (from two replicas on PostgreSQL)
//! add up exactly, the histogram bucket by bucket, and survive reopening.

use std::sync::Arc;

use super::pg::TestDb;
use super::{open_at, run};
use crate::store::funnel::answer_bucket;
use crate::store::*;

/// One batch as a replica flushes it: each question shown twice, answered once in 1.5 s, and
/// `role` also skipped and refused.
fn batch() -> Vec<FunnelRow> {
    let mut company = FunnelCounts {
        shown: 2,
        answered: 1,
        ..FunnelCounts::default()
    };
    company.time_answer(1_500);
    let role = FunnelCounts {
        shown: 2,
        skipped: 1,
        invalid: 1,
        ..FunnelCounts::default()
    };
    vec![
        FunnelRow {
            question: "role".into(),
            version: 3,
            counts: role,
        },
        FunnelRow {
            question: "company".into(),
            version: 1,
            counts: company,
        },
    ]
}

/// Adds `batches` batches concurrently, spread over `stores`, and checks the totals.
async fn batches_add_up(stores: &[Arc<dyn ProfileStore>], batches: u64) {
    let tasks: Vec<_> = (0..batches)
        .map(|i| {
            let store = Arc::clone(&stores[i as usize % stores.len()]);
            tokio::spawn(async move { store.add_funnel(&batch()).await.expect("add") })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    for store in stores {
        let totals = store.funnel_totals().await.expect("totals");
        let ids: Vec<(&str, u32)> = totals
            .iter()
            .map(|r| (r.question.as_str(), r.version))
            .collect();
        assert_eq!(
            ids,
            [("company", 1), ("role", 3)],
            "sorted by id, then version"
        );
        let company = &totals[0].counts;
        assert_eq!(
            (company.shown, company.answered, company.answer_count),
            (2 * batches, batches, batches)
        );
        assert_eq!(company.answer_buckets[answer_bucket(1_500)], batches);
        assert_eq!(company.answer_buckets.iter().sum::<u64>(), batches);
        assert_eq!(company.answer_millis_sum, 1_500 * batches);
        let role = &totals[1].counts;
        assert_eq!(
            (role.shown, role.answered, role.skipped, role.invalid),
            (2 * batches, 0, batches, batches)
        );
    }
}

#[test]
fn sled_adds_concurrent_batches_exactly_and_keeps_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    run(async {
        let store: Arc<dyn ProfileStore> = Arc::new(open_at(dir.path()).await);
        assert!(store.funnel_totals().await.expect("totals").is_empty());
        store.add_funnel(&[]).await.expect("an empty batch");
        batches_add_up(&[store], 24).await;
    });
    run(async {
        let reopened: Arc<dyn ProfileStore> = Arc::new(open_at(dir.path()).await);
        let totals = reopened.funnel_totals().await.expect("totals");
        assert_eq!(totals[0].counts.shown, 48, "kept across reopening");
    });
}

#[test]
fn two_postgres_replicas_add_concurrent_batches_exactly() {
    run(async {
        let Some(db) = TestDb::new().await else {
            return;
        };
        let a: Arc<dyn ProfileStore> = Arc::new(db.store().await);
        let b: Arc<dyn ProfileStore> = Arc::new(db.store().await);
        batches_add_up(&[a, b], 24).await;
        db.drop_schema().await;
    });
}
