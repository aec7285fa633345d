//! Helper of the memory benchmark (tests/bench/memory.sh): fills the sled store of a profilegate
//! configuration with many signed-in users and prints session cookies for some of them.
//!
//!   cargo run --release --example bench-memory-fill -- CONFIG USERS COOKIES COOKIE_FILE
//!
//! User `user-00000000` is written through the store's own API (a login, then an answer to
//! every configured question that is a plain text field, `Bench Corp`); its record is then copied
//! byte for byte under `user-00000001` .. `user-<USERS-1>`: with sled batches (a million durable
//! writes one by one would take far too long), or, with `store.backend = "postgres"`, with one
//! `INSERT ... SELECT` in the database. A sled store that already holds USERS users from an
//! earlier run is kept as is.
//!
//! FILL_ORDER (environment) is the order the users are written in a sled store: `random` (the default) or
//! `key`. Subjects from an OP are opaque identifiers (UUIDs, hashes), so users reach the store in
//! no particular key order; that leaves sled's leaves fuller but made of more fragments, and its
//! bookkeeping larger than the same users written in key order (`key`, the best case for sled:
//! each split leaves a compact half-full leaf behind).
//!
//! COOKIE_FILE gets one `Cookie` header value per line (`<name>=<sealed session>`) for COOKIES
//! different users spread over the whole store: sessions sealed with the configuration's
//! `session.secret`, exactly as the proxy seals them at login, with nothing pending and the
//! profile revision of the stored record, so the proxy forwards their requests.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use profilegate::config::{Config, ProcessEnv, StoreBackend};
use profilegate::profile::{AnswerValue, QuestionType};
use profilegate::session::CookieSealer;
use profilegate::store::{AnswerSource, StoredAnswer, UserKey};

#[path = "pg_fill.rs"]
mod pg_fill;

const BATCH: usize = 10_000;

fn subject(i: usize) -> String {
    format!("user-{i:08}")
}

/// Fisher-Yates with a fixed xorshift seed: every run writes the same order.
fn shuffle(items: &mut [usize]) {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let j = usize::try_from(state % (i as u64 + 1)).unwrap_or(0);
        items.swap(i, j);
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [config, users, cookies, out] = args.as_slice() else {
        anyhow::bail!("usage: bench-memory-fill CONFIG USERS COOKIES COOKIE_FILE");
    };
    let users: usize = users.parse()?;
    let cookies: usize = cookies.parse()?;
    anyhow::ensure!(users >= 1, "USERS must be at least 1");
    let config = Config::load(&PathBuf::from(config), &ProcessEnv)?;
    // The store key's issuer is the configured one without a trailing slash, as the proxy's.
    let issuer = config.oidc.issuer.as_str().trim_end_matches('/').to_owned();
    let user = |i: usize| UserKey::new(issuer.clone(), subject(i));

    let order = std::env::var("FILL_ORDER").unwrap_or_else(|_| "random".to_owned());
    anyhow::ensure!(
        order == "random" || order == "key",
        "FILL_ORDER must be \"random\" or \"key\", not {order:?}"
    );
    let filled = format!("{users} {order}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let store = rt.block_on(profilegate::store::open(&config.store))?;
    let record = rt.block_on(async {
        let first = user(0);
        let mut record = store.load(&first).await?;
        if record.is_none() {
            store.record_login(&first, 1_764_115_200).await?;
            let answers: Vec<(String, StoredAnswer)> = config
                .profiling
                .questions
                .iter()
                .filter(|q| q.kind == QuestionType::Text)
                .map(|q| {
                    let answer = StoredAnswer {
                        value: AnswerValue::Text("Bench Corp".into()),
                        answered_at: 1_764_115_200,
                        question_version: q.version,
                        source: AnswerSource::User,
                    };
                    (q.id.clone(), answer)
                })
                .collect();
            record = Some(store.save_answers(&first, answers).await?);
        }
        anyhow::Ok(record.unwrap_or_default())
    })?;
    drop(store);

    match &config.store.backend {
        StoreBackend::Sled { path, .. } => fill_sled(path, &filled, users, &order, &user)?,
        StoreBackend::Postgres { url, .. } => {
            rt.block_on(fill_postgres(url.expose(), &issuer, users))?
        }
    }
    seal_cookies(&config, &record, users, cookies, out)
}

/// Copies the first user's record under the other users' keys with sled batches, in `order`.
fn fill_sled(
    path: &std::path::Path,
    filled: &str,
    users: usize,
    order: &str,
    user: &dyn Fn(usize) -> UserKey,
) -> anyhow::Result<()> {
    let marker = path.join("bench-users");
    let found = std::fs::read_to_string(&marker).unwrap_or_default();
    if found == filled {
        eprintln!(
            "fill: {} already holds {users} users (written in {order} order)",
            path.display()
        );
    } else if !found.is_empty() {
        anyhow::bail!(
            "{} holds a benchmark store of {found:?} users; this run wants {filled:?} (use \
             another STORE_DIR, or remove it)",
            path.display()
        );
    } else {
        let started = Instant::now();
        let db = sled::open(path)?;
        let tree = db.open_tree("users")?;
        let bytes = tree
            .get(user(0).storage_key())?
            .ok_or_else(|| anyhow::anyhow!("the first user's record is missing"))?;
        let mut rest: Vec<usize> = (1..users).collect();
        if order == "random" {
            shuffle(&mut rest);
        }
        let mut i = 1;
        for chunk in rest.chunks(BATCH) {
            let mut batch = sled::Batch::default();
            for &j in chunk {
                batch.insert(user(j).storage_key(), bytes.clone());
            }
            tree.apply_batch(batch)?;
            i += chunk.len();
            if i % 100_000 < BATCH || i >= users {
                eprintln!(
                    "fill: {} of {users} users written ({:.0} s)",
                    i.min(users),
                    started.elapsed().as_secs_f64()
                );
            }
        }
        db.flush()?;
        drop(tree);
        drop(db);
        std::fs::write(&marker, filled)?;
        eprintln!(
            "fill: {users} users in {order} order in {} ({:.0} s)",
            path.display(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Copies the first user's row under the other users' subjects with one `INSERT ... SELECT`
/// (PostgreSQL's B-tree does not care in which order users arrive). The server is the
/// benchmark's own, fresh each run.
async fn fill_postgres(url: &str, issuer: &str, users: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    let written = pg_fill::copy_first_user(url, issuer, users).await?;
    eprintln!(
        "fill: {written} users copied in PostgreSQL ({users} in all, {:.0} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Sessions of COOKIES users spread evenly over the store, one `Cookie` header value per line.
fn seal_cookies(
    config: &Config,
    record: &profilegate::store::ProfileRecord,
    users: usize,
    cookies: usize,
    out: &str,
) -> anyhow::Result<()> {
    let sealer = CookieSealer::new(
        &config.session,
        &config.server.public_url,
        config.oidc.login_timeout,
    );
    let mut file = std::io::BufWriter::new(std::fs::File::create(out)?);
    let step = (users / cookies.max(1)).max(1);
    for n in 0..cookies.min(users) {
        let mut session = sealer.new_session(subject(n * step), None, None, None);
        session.rev = record.revision;
        session.login = record.logins;
        let sealed = cookie::Cookie::parse(sealer.seal_session(&session))?;
        writeln!(file, "{}={}", sealed.name(), sealed.value())?;
    }
    file.flush()?;
    eprintln!("fill: {} session cookies in {out}", cookies.min(users));
    Ok(())
}
