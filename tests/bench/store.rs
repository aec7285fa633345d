//! Criterion micro-benchmark of the sled store's lookup (`SledStore::load`, what a login or a
//! profile-cache miss waits on) with 1,000 and with 1,000,000 users stored, plus the latency
//! percentiles of single lookups at random users (the issue-6 target is p99 < 50 µs, flat from
//! 1,000 to 1,000,000 users).
//!
//!   cargo bench --bench store                       # 1,000 and 1,000,000 users
//!   BENCH_STORE_USERS=1000,100000 cargo bench --bench store
//!
//! The users' records are written once through the store's own API (one user), then copied
//! byte for byte under the other users' keys with sled batches: a million durable writes one by
//! one would take far longer than the measurement. The store directory is temporary.
//!
//! Not a test: `cargo test --all-targets` runs it once with 1,000 users, only to prove it works.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

use profilegate::profile::AnswerValue;
use profilegate::store::{
    AnswerSource, ProfileStore, SledOptions, SledStore, StoredAnswer, UserKey,
};

const ISSUER: &str = "http://localhost:9000";
/// Random users looked up per size (their keys are built before measuring).
const SAMPLE: usize = 4096;

fn subject(i: usize) -> String {
    format!("user-{i:08}")
}

/// A small deterministic generator (no dependency needed): the users looked up.
fn sample_keys(users: usize) -> Vec<UserKey> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..SAMPLE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let i = usize::try_from(x % users as u64).unwrap_or(0);
            UserKey::new(ISSUER, subject(i))
        })
        .collect()
}

/// A store in `dir` holding `users` users, each with one answer and one login.
fn populate(rt: &tokio::runtime::Runtime, dir: &Path, users: usize) -> SledStore {
    let first = UserKey::new(ISSUER, subject(0));
    rt.block_on(async {
        let store = SledStore::open(dir, SledOptions::default())
            .await
            .expect("store");
        store
            .record_login(&first, 1_764_115_200)
            .await
            .expect("login");
        let answer = StoredAnswer {
            value: AnswerValue::Text("Acme Corp".into()),
            answered_at: 1_764_115_200,
            question_version: 1,
            source: AnswerSource::User,
        };
        store
            .save_answers(&first, vec![("company".into(), answer)])
            .await
            .expect("answer");
    });
    // The store is closed now; copy its record under every other user's key.
    {
        let db = sled::open(dir).expect("sled");
        let tree = db.open_tree("users").expect("users tree");
        let bytes = tree
            .get(first.storage_key())
            .expect("read")
            .expect("the first user's record");
        let mut i = 1;
        while i < users {
            let mut batch = sled::Batch::default();
            for j in i..(i + 10_000).min(users) {
                batch.insert(
                    UserKey::new(ISSUER, subject(j)).storage_key(),
                    bytes.clone(),
                );
            }
            tree.apply_batch(batch).expect("batch");
            i += 10_000;
        }
        db.flush().expect("flush");
    }
    rt.block_on(SledStore::open(dir, SledOptions::default()))
        .expect("store reopened")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn sizes(bench_mode: bool) -> Vec<usize> {
    if !bench_mode {
        return vec![1_000];
    }
    std::env::var("BENCH_STORE_USERS")
        .ok()
        .map(|s| {
            s.split(',')
                .filter_map(|n| n.trim().replace('_', "").parse().ok())
                .collect()
        })
        .filter(|v: &Vec<usize>| !v.is_empty())
        .unwrap_or_else(|| vec![1_000, 1_000_000])
}

fn store_load(c: &mut Criterion) {
    // criterion runs each benchmark once, without `--bench`, under `cargo test`.
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("store");
    for users in sizes(bench_mode) {
        let dir = tempfile::tempdir().expect("tempdir");
        let started = Instant::now();
        let store = populate(&rt, &dir.path().join("data"), users);
        let keys = sample_keys(users);
        if bench_mode {
            eprintln!(
                "store: {users} users written in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            // Single lookups at random users, timed one by one (two passes: the second is
            // what a warm store does).
            for pass in ["first pass", "second pass"] {
                let mut times: Vec<Duration> = keys
                    .iter()
                    .map(|k| {
                        let t = Instant::now();
                        let found = rt.block_on(store.load(k)).expect("load");
                        let elapsed = t.elapsed();
                        assert!(found.is_some());
                        elapsed
                    })
                    .collect();
                times.sort_unstable();
                eprintln!(
                    "store: load with {users} users, {} random users, {pass}: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
                    times.len(),
                    percentile(&times, 0.50).as_secs_f64() * 1e6,
                    percentile(&times, 0.99).as_secs_f64() * 1e6,
                    times[times.len() - 1].as_secs_f64() * 1e6,
                );
            }
        }
        let mut next = 0;
        group.bench_with_input(BenchmarkId::new("load", users), &users, |b, _| {
            b.to_async(&rt).iter(|| {
                next = (next + 1) % keys.len();
                let key = &keys[next];
                let store = &store;
                async move { black_box(store.load(key).await.expect("load")) }
            })
        });
        drop(store);
    }
    group.finish();
}

criterion_group!(benches, store_load);
criterion_main!(benches);
