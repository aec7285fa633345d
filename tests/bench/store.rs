//! Micro-benchmark of the sled store's lookup (`SledStore::load`, what a login or a
//! profile-cache miss waits on) with 1,000, 100,000 and 1,000,000 users stored, beside the
//! signed-in hot path's pending check (session cookie + profile cache), which never reads the
//! store. The issue-6 target: the pending check stays flat from 1,000 to 1,000,000 users and a
//! store lookup has p99 < 50 µs.
//!
//!   cargo bench --bench store                         # 1,000, 100,000 and 1,000,000 users
//!   BENCH_STORE_USERS=1000,100000 cargo bench --bench store
//!   BENCH_STORE_CACHE_MB=64 cargo bench --bench store # another sled page cache (store.cache_size)
//!   BENCH_STORE_DIR=/tmp/pg-store cargo bench --bench store  # keep the filled stores for reruns
//!   BENCH_STORE_ORDER=key cargo bench --bench store   # write the users in key order (default: random)
//!   tests/bench/store_pg.sh                           # the PostgreSQL store (PgStore::load), on a
//!                                                     # temporary server (BENCH_STORE_BACKEND=postgres)
//!
//! For each size it prints the percentiles of single lookups of random users, timed one by one:
//! all of them, then again leaving out the lookups during which the thread waited for a CPU held
//! by another thread or process (the kernel's scheduler statistics; on a shared machine such a
//! wait lasts milliseconds and says nothing about the store). The lookups are
//!
//! - "cold": the first lookups after opening;
//! - "again": the same users once more (their pages are now cached);
//! - "steady": a long run of lookups of random users among all of them, after as many
//!   unmeasured ones: what a busy proxy whose profile cache misses waits on.
//!
//! Then come the cost of `record_login` for 4,000 random existing users (a read-modify-write, as
//! at every login; sled's background flush takes it to disk: wall time of each, and the whole
//! process's CPU per login, sled's and tokio's threads included), the hot path's pending check at that size and criterion's mean
//! of `load`.
//!
//! The users' records are written once through the store's own API (one user), then copied
//! byte for byte under the other users' keys with sled batches: a million durable writes one by
//! one would take far longer than the measurement. They are written in a random order (subjects
//! from an OP are opaque identifiers, so users reach the store in no key order), or in key order
//! with BENCH_STORE_ORDER=key (sled's best case: compact half-full leaves). The store directory
//! is temporary unless BENCH_STORE_DIR is set.
//!
//! Not a test: `cargo test --all-targets` runs it once with 1,000 users, only to prove it works.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

use profilegate::pipeline::Pending;
use profilegate::profile::AnswerValue;
use profilegate::session::{CookieSealer, RequestCookies};
use profilegate::store::{
    AnswerSource, PgOptions, PgStore, ProfileCache, ProfileRecord, ProfileStore, SledOptions,
    SledStore, StoredAnswer, UserKey,
};

#[path = "config.rs"]
mod bench_config;
#[path = "pg_fill.rs"]
mod pg_fill;

const ISSUER: &str = "http://localhost:9000";
/// Random users looked up cold and again per size (their keys are built before measuring).
const SAMPLE: usize = 4096;
/// Lookups of random users in the steady run: as many unmeasured, then as many measured.
const STEADY: usize = 100_000;
/// Logins measured per size (each one a durable write).
const LOGINS: usize = 4000;
/// The hot path's profile cache holds at most this many users in the benchmark.
const PROFILE_CACHE: usize = profilegate::config::DEFAULT_PROFILE_CACHE_USERS;

fn subject(i: usize) -> String {
    format!("user-{i:08}")
}

/// A small deterministic generator (no dependency needed).
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % n as u64).unwrap_or(0)
    }
}

fn sample_keys(users: usize, seed: u64, count: usize) -> Vec<UserKey> {
    let mut rng = XorShift(seed);
    (0..count)
        .map(|_| UserKey::new(ISSUER, subject(rng.below(users))))
        .collect()
}

fn options() -> SledOptions {
    let mut options = SledOptions::default();
    if let Some(mb) = std::env::var("BENCH_STORE_CACHE_MB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        options.cache_capacity = mb * 1024 * 1024;
    }
    options
}

/// The first user's record, through the store's own API: one login and one answer.
async fn write_first_user(store: &dyn ProfileStore, first: &UserKey) {
    store
        .record_login(first, 1_764_115_200)
        .await
        .expect("login");
    let answer = StoredAnswer {
        value: AnswerValue::Text("Acme Corp".into()),
        answered_at: 1_764_115_200,
        question_version: 1,
        source: AnswerSource::User,
    };
    store
        .save_answers(first, vec![("company".into(), answer)])
        .await
        .expect("answer");
}

/// Fills the store in `dir` with `users` users, each with one answer and one login, unless a
/// kept store with that many users is already there.
fn populate(rt: &tokio::runtime::Runtime, dir: &Path, users: usize, order: &str) {
    let done = dir.join("bench-users");
    let filled = format!("{users} {order}");
    match std::fs::read_to_string(&done) {
        Ok(found) if found == filled => return,
        Ok(found) => panic!(
            "{} holds a benchmark store of {found:?} users; this run wants {filled:?} (use another \
             BENCH_STORE_DIR, or remove it)",
            dir.display()
        ),
        Err(_) => {}
    }
    let first = UserKey::new(ISSUER, subject(0));
    rt.block_on(async {
        let store = SledStore::open(dir, SledOptions::default())
            .await
            .expect("store");
        write_first_user(&store, &first).await;
    });
    // The store is closed now; copy its record under every other user's key.
    let db = sled::open(dir).expect("sled");
    let tree = db.open_tree("users").expect("users tree");
    let bytes = tree
        .get(first.storage_key())
        .expect("read")
        .expect("the first user's record");
    let mut rest: Vec<usize> = (1..users).collect();
    if order == "random" {
        // Fisher-Yates with the benchmark's fixed generator: every run writes the same order.
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for i in (1..rest.len()).rev() {
            rest.swap(i, rng.below(i + 1));
        }
    }
    for chunk in rest.chunks(10_000) {
        let mut batch = sled::Batch::default();
        for &j in chunk {
            batch.insert(
                UserKey::new(ISSUER, subject(j)).storage_key(),
                bytes.clone(),
            );
        }
        tree.apply_batch(batch).expect("batch");
    }
    db.flush().expect("flush");
    drop(tree);
    drop(db);
    std::fs::write(done, filled).expect("marker");
}

/// The URL of the benchmark's PostgreSQL schema for `users` users (`bench_<users>`).
fn postgres_url(base: &str, users: usize) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-csearch_path%3Dbench_{users}&sslmode=disable")
}

/// Fills schema `bench_<users>` of the PostgreSQL server at `base` with `users` users (the first
/// through the store's API, the others as copies of its row), unless it holds them already.
fn populate_postgres(rt: &tokio::runtime::Runtime, base: &str, users: usize) {
    rt.block_on(async {
        let (client, connection) = tokio_postgres::connect(base, tokio_postgres::NoTls)
            .await
            .expect("connect to BENCH_STORE_PG_URL");
        let driver = tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS bench_{users}"))
            .await
            .expect("schema");
        drop(client);
        let _ = driver.await;
        let url = postgres_url(base, users);
        let store = PgStore::open(&url, PgOptions::default())
            .await
            .expect("store");
        let first = UserKey::new(ISSUER, subject(0));
        if store.load(&first).await.expect("load").is_none() {
            write_first_user(&store, &first).await;
        }
        drop(store);
        pg_fill::copy_first_user(&url, ISSUER, users)
            .await
            .expect("copies");
    });
}

/// Where the benchmark keeps its users.
enum Backend {
    Sled(SledOptions),
    /// The server's URL (BENCH_STORE_PG_URL).
    Postgres(String),
}

fn open_store(
    rt: &tokio::runtime::Runtime,
    backend: &Backend,
    dir: &Path,
    users: usize,
) -> Box<dyn ProfileStore> {
    match backend {
        Backend::Sled(options) => Box::new(
            rt.block_on(SledStore::open(dir, options.clone()))
                .expect("store"),
        ),
        Backend::Postgres(base) => Box::new(
            rt.block_on(PgStore::open(
                &postgres_url(base, users),
                PgOptions::default(),
            ))
            .expect("store"),
        ),
    }
}

fn percentile<T: Copy>(sorted: &[T], p: f64) -> T {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// One timed operation: its wall time, and how long this thread waited meanwhile for a CPU that
/// another thread or process held (the kernel's scheduler statistics).
#[derive(Clone, Copy)]
struct Timing {
    wall: Duration,
    waited: Duration,
}

/// Nanoseconds this thread has spent waiting on a run queue (`/proc/thread-self/schedstat`).
fn run_delay() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn timed(op: impl FnOnce()) -> Timing {
    let before = run_delay();
    let t = Instant::now();
    op();
    let wall = t.elapsed();
    Timing {
        wall,
        waited: Duration::from_nanos(run_delay().saturating_sub(before)),
    }
}

fn report(what: &str, timings: Vec<Timing>) {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let line = |mut times: Vec<Duration>| {
        times.sort_unstable();
        format!(
            "p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs",
            us(percentile(&times, 0.50)),
            us(percentile(&times, 0.90)),
            us(percentile(&times, 0.99)),
            us(percentile(&times, 0.999)),
            us(times[times.len() - 1]),
        )
    };
    let undisturbed: Vec<Duration> = timings
        .iter()
        .filter(|t| t.waited.is_zero())
        .map(|t| t.wall)
        .collect();
    let waited = timings.len() - undisturbed.len();
    eprintln!(
        "store: {what}: n {}\n    all:              {}\n    never descheduled: {} ({} of {} waited for a CPU, {:.2} %)",
        timings.len(),
        line(timings.iter().map(|t| t.wall).collect()),
        if undisturbed.is_empty() {
            "none".to_owned()
        } else {
            line(undisturbed)
        },
        waited,
        timings.len(),
        waited as f64 * 100.0 / timings.len() as f64,
    );
}

fn timed_loads(
    rt: &tokio::runtime::Runtime,
    store: &dyn ProfileStore,
    keys: &[UserKey],
) -> Vec<Timing> {
    keys.iter()
        .map(|k| {
            timed(|| {
                let found = rt.block_on(store.load(k)).expect("load");
                assert!(found.is_some());
            })
        })
        .collect()
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU seconds (user + system) of this whole process so far: sled's own threads and tokio's
/// blocking pool (where the flush runs) included. `/proc/self/stat` counts in clock ticks.
fn process_cpu_secs() -> f64 {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // The fields after the command name, which is in parentheses and may hold spaces.
            let rest = s.get(s.rfind(')')? + 2..)?.to_owned();
            let f: Vec<u64> = rest
                .split_whitespace()
                .map(|v| v.parse().unwrap_or(0))
                .collect();
            Some(f.get(11)? + f.get(12)?)
        })
        .unwrap_or(0);
    ticks as f64 / 100.0
}

/// `record_login` of existing users (a read-modify-write, as at every login): the wall time of
/// each, and the process's CPU per login over all of them (sled's background flush included).
fn login_cost(rt: &tokio::runtime::Runtime, store: &dyn ProfileStore, users: usize) {
    let keys = sample_keys(users, 0x6A09_E667_F3BC_C908, LOGINS);
    let cpu = process_cpu_secs();
    let started = Instant::now();
    let timings: Vec<Timing> = keys
        .iter()
        .map(|k| {
            timed(|| {
                rt.block_on(store.record_login(k, 1_764_200_000))
                    .expect("login");
            })
        })
        .collect();
    let wall = started.elapsed().as_secs_f64();
    let cpu = process_cpu_secs() - cpu;
    report(
        &format!("{users} users, record_login of existing users"),
        timings,
    );
    eprintln!(
        "store: record_login: {:.0} µs of process CPU per login ({LOGINS} logins, {:.2} s CPU in {:.2} s)",
        cpu * 1e6 / LOGINS as f64,
        cpu,
        wall
    );
}

/// The signed-in pending check of the hot path with `users` users signed in: unseal the session
/// cookie, check its pending questions, find the user's profile in the profile cache (holding
/// as many of them as it can). No store access.
fn pending_check(users: usize) {
    let config = bench_config::load();
    let sealer = CookieSealer::new(
        &config.session,
        &config.server.public_url,
        config.oidc.login_timeout,
    );
    let cache: ProfileCache<String, ProfileRecord> = ProfileCache::new(PROFILE_CACHE);
    let record = Arc::new(ProfileRecord {
        revision: 2,
        ..ProfileRecord::default()
    });
    // Fill it as a busy proxy would: a full shard drops an eighth of its entries.
    for i in 0..users.min(2 * cache.capacity()) {
        cache.put(subject(i), record.clone());
    }
    let cached = cache.len();
    // Sessions of users the cache holds: sealed once, outside the measurement.
    let mut rng = XorShift(0xD1B5_4A32_D192_ED03);
    let mut cookies = Vec::with_capacity(SAMPLE);
    while cookies.len() < SAMPLE {
        let sub = subject(rng.below(users.min(2 * cache.capacity())));
        if cache.get(sub.as_str(), 2).is_none() {
            continue;
        }
        let mut session = sealer.new_session(sub, None, None, None);
        session.rev = 2;
        let sealed = cookie::Cookie::parse(sealer.seal_session(&session)).expect("cookie");
        cookies.push(format!("{}={}", sealed.name(), sealed.value()));
    }
    let mut times = Vec::with_capacity(cookies.len() * 4);
    for _ in 0..4 {
        for header in &cookies {
            let mut ok = false;
            times.push(timed(|| {
                let cookies = RequestCookies::parse([header.as_bytes()]);
                let session = sealer.open_session(&cookies).expect("session");
                let pending = session.pending(|_| true);
                let hit = cache.get(session.sub.as_str(), session.rev);
                ok = matches!(pending, Pending::Nothing) && hit.is_some();
            }));
            assert!(ok);
        }
    }
    report(
        &format!("hot-path pending check (cookie, session, profile cache holding {cached} users), {users} users stored"),
        times,
    );
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
        .unwrap_or_else(|| vec![1_000, 100_000, 1_000_000])
}

fn store_load(c: &mut Criterion) {
    // criterion runs each benchmark once, without `--bench`, under `cargo test`.
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let kept = std::env::var_os("BENCH_STORE_DIR").filter(|_| bench_mode);
    let options = options();
    let backend = match std::env::var("BENCH_STORE_BACKEND").as_deref() {
        Ok("postgres") => Backend::Postgres(
            std::env::var("BENCH_STORE_PG_URL")
                .expect("BENCH_STORE_BACKEND=postgres needs BENCH_STORE_PG_URL (tests/bench/store_pg.sh sets it)"),
        ),
        Ok("sled") | Err(_) => Backend::Sled(options.clone()),
        Ok(other) => panic!("BENCH_STORE_BACKEND must be sled or postgres, not {other:?}"),
    };
    let order = std::env::var("BENCH_STORE_ORDER").unwrap_or_else(|_| "random".to_owned());
    assert!(
        order == "random" || order == "key",
        "BENCH_STORE_ORDER must be \"random\" or \"key\", not {order:?}"
    );
    let mut group = c.benchmark_group("store");
    for users in sizes(bench_mode) {
        let temp = tempfile::tempdir().expect("tempdir");
        let dir = match &kept {
            Some(root) => Path::new(root).join(format!("users-{users}")),
            None => temp.path().join("data"),
        };
        let started = Instant::now();
        match &backend {
            Backend::Sled(_) => populate(&rt, &dir, users, &order),
            Backend::Postgres(base) => populate_postgres(&rt, base, users),
        }
        let keys = sample_keys(users, 0x9E37_79B9_7F4A_7C15, SAMPLE);
        if bench_mode {
            eprintln!(
                "store: {users} users ({}) ready in {:.1} s",
                match &backend {
                    Backend::Sled(o) => format!(
                        "sled, {order} order, cache {} MiB",
                        o.cache_capacity / (1024 * 1024)
                    ),
                    Backend::Postgres(_) => "PostgreSQL".to_owned(),
                },
                started.elapsed().as_secs_f64(),
            );
            // Cold: the first lookups after opening.
            let store = open_store(&rt, &backend, &dir, users);
            let cold_keys = sample_keys(users, 0x2545_F491_4F6C_DD1D, SAMPLE);
            report(
                &format!("{users} users, cold: first lookups after opening"),
                timed_loads(&rt, store.as_ref(), &cold_keys),
            );
            report(
                &format!("{users} users, again: the same users once more"),
                timed_loads(&rt, store.as_ref(), &cold_keys),
            );
            drop(store);
        }
        let store = open_store(&rt, &backend, &dir, users);
        if bench_mode {
            let steady = sample_keys(users, 0xB5AD_4ECE_DA1C_E2A9, 2 * STEADY);
            let _ = timed_loads(&rt, store.as_ref(), &steady[..STEADY]);
            report(
                &format!("{users} users, steady (random users, after {STEADY} lookups)"),
                timed_loads(&rt, store.as_ref(), &steady[STEADY..]),
            );
            eprintln!("store: process RSS {} MiB", rss_kib() / 1024);
            login_cost(&rt, store.as_ref(), users);
            pending_check(users);
        }
        let mut next = 0;
        group.bench_with_input(BenchmarkId::new("load", users), &users, |b, _| {
            b.to_async(&rt).iter(|| {
                next = (next + 1) % keys.len();
                let key = &keys[next];
                let store = store.as_ref();
                async move { black_box(store.load(key).await.expect("load")) }
            })
        });
        drop(store);
    }
    group.finish();
}

criterion_group!(benches, store_load);
criterion_main!(benches);
