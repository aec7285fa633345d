//! The PostgreSQL server of the end-to-end tests (`PG_TEST_URL`, started by tests/run.sh): a
//! schema of the test's own and the `[store]` table that uses it.

/// A fresh schema `<name>_<pid>_<n>` on the test server (one per call: tests of one binary run
/// at once, and a shared schema would be dropped under another test's feet) and the `[store]` section that uses it;
/// `None` (the test says it is skipped and returns) without `PG_TEST_URL`, unless
/// `PG_TEST_REQUIRED` is set (tests/run.sh sets it), which makes that a failure.
pub async fn pg_store(name: &str) -> Option<String> {
    let base = match std::env::var("PG_TEST_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            assert!(
                std::env::var_os("PG_TEST_REQUIRED").is_none(),
                "PG_TEST_REQUIRED is set but PG_TEST_URL is not"
            );
            eprintln!(
                "skipped: PG_TEST_URL is not set (tests/run.sh starts PostgreSQL and sets it)"
            );
            return None;
        }
    };
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let schema = format!("{name}_{}_{n}", std::process::id());
    let (client, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .expect("connect to the test server");
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ))
        .await
        .expect("schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!(
        "[store]\nbackend = \"postgres\"\nurl = \"{base}{sep}options=-csearch_path%3D{schema}&sslmode=disable\"\n"
    ))
}
