//! Shared by the store benchmark (tests/bench/store.rs) and the memory benchmark's fill helper
//! (tests/bench/memory_fill.rs): copies the first benchmark user's PostgreSQL row under the other
//! users' subjects (`user-00000001` ...) in one `INSERT ... SELECT`, then analyzes the table.

/// Copies the row of `user-00000000` of `issuer` to `user-00000001` .. `user-<users-1>` in the
/// database of `url`; returns how many rows were written (existing ones are left alone).
pub async fn copy_first_user(
    url: &str,
    issuer: &str,
    users: usize,
) -> Result<u64, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let driver = tokio::spawn(connection);
    let total = i32::try_from(users).unwrap_or(i32::MAX);
    let written = client
        .execute(
            "INSERT INTO profilegate_users (issuer, subject, record)
             SELECT issuer, convert_to('user-' || lpad(i::text, 8, '0'), 'UTF8'), record
             FROM profilegate_users, generate_series(1, $1::int - 1) AS i
             WHERE issuer = $2 AND subject = convert_to('user-00000000', 'UTF8')
             ON CONFLICT DO NOTHING",
            &[&total, &issuer],
        )
        .await?;
    client
        .batch_execute("VACUUM ANALYZE profilegate_users")
        .await?;
    drop(client);
    let _ = driver.await;
    Ok(written)
}
