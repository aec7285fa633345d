//! Component tests of the PostgreSQL store against a real PostgreSQL server: the one
//! `tests/run.sh` starts (a temporary cluster on a free loopback port) and names in
//! `PG_TEST_URL`. Each test works in a schema of its own, dropped at its end. Two `PgStore`s on
//! one schema stand for two replicas.
//!
//! Without `PG_TEST_URL` the tests say so and return, unless `PG_TEST_REQUIRED` is set (as
//! `tests/run.sh` sets it): then they fail, so the test command never passes them unseen.

use std::sync::Arc;

use rand::Rng;

use super::{answer, one, run, same_values, user, ISSUER};
use crate::profile::AnswerValue;
use crate::store::*;

/// A schema of its own on the test server, and URLs that put a store in it.
pub(super) struct TestDb {
    base: String,
    schema: String,
}

impl TestDb {
    /// `None` (after saying why) when no server is configured and none is required.
    pub(super) async fn new() -> Option<TestDb> {
        let base = match std::env::var("PG_TEST_URL") {
            Ok(url) if !url.is_empty() => url,
            _ => {
                assert!(
                    std::env::var_os("PG_TEST_REQUIRED").is_none(),
                    "PG_TEST_REQUIRED is set but PG_TEST_URL is not"
                );
                eprintln!(
                    "skipped: PG_TEST_URL is not set (tests/run.sh starts a PostgreSQL server \
                     and sets it)"
                );
                return None;
            }
        };
        let schema = format!("pgtest_{:016x}", rand::thread_rng().gen::<u64>());
        let db = TestDb { base, schema };
        db.sql(&format!("CREATE SCHEMA {}", db.schema)).await;
        Some(db)
    }

    /// The URL of a store that works in this test's schema.
    fn url(&self) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        format!(
            "{}{sep}options=-csearch_path%3D{}&sslmode=disable",
            self.base, self.schema
        )
    }

    pub(super) async fn store(&self) -> PgStore {
        PgStore::open(&self.url(), PgOptions::default())
            .await
            .expect("open the PostgreSQL store")
    }

    /// Runs SQL directly (in this test's schema), outside the store.
    async fn sql(&self, statements: &str) {
        let (client, connection) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .expect("connect to the test server");
        let task = tokio::spawn(connection);
        client
            .batch_execute(statements)
            .await
            .unwrap_or_else(|e| panic!("{statements}: {e}"));
        drop(client);
        let _ = task.await;
    }

    pub(super) async fn drop_schema(self) {
        self.sql(&format!("DROP SCHEMA {} CASCADE", self.schema))
            .await;
    }
}

#[test]
fn every_answer_type_reads_back_exactly_on_another_replica() {
    run(async {
        let Some(db) = TestDb::new().await else {
            return;
        };
        let answers: Vec<(String, StoredAnswer)> = [
            (
                "text",
                AnswerValue::Text("Acme, Inc. — Zürich 🚀 \0 \r\n\"'\\".into()),
            ),
            ("empty", AnswerValue::Text(String::new())),
            ("int_min", AnswerValue::Integer(i64::MIN)),
            ("int_max", AnswerValue::Integer(i64::MAX)),
            ("pi", AnswerValue::Number(std::f64::consts::PI)),
            ("tiny", AnswerValue::Number(5e-324)),
            ("negative_zero", AnswerValue::Number(-0.0)),
            ("yes", AnswerValue::Bool(true)),
            (
                "list",
                AnswerValue::List(vec!["a,b".into(), "ç\0".into(), String::new()]),
            ),
            ("date", AnswerValue::Date("2024-02-29".into())),
        ]
        .into_iter()
        .map(|(id, v)| (id.to_string(), answer(v)))
        .collect();
        let a = db.store().await;
        let u = user("alice");
        let saved = a.save_answers(&u, answers.clone()).await.expect("save");
        assert_eq!(saved.revision, 1);
        // Another replica (its own pool) reads what the first one wrote.
        let b = db.store().await;
        let read = b.load(&u).await.expect("load").expect("stored");
        assert_eq!(read.answers.len(), answers.len());
        for (id, want) in &answers {
            let got = &read.answers[id];
            assert!(same_values(&got.value, &want.value), "{id}: {got:?}");
            assert_eq!(got.question_version, want.question_version);
        }
        assert_eq!(read.revision, 1);
        db.drop_schema().await;
    });
}

#[test]
fn logins_skips_and_answers_count_like_the_sled_store() {
    run(async {
        let Some(db) = TestDb::new().await else {
            return;
        };
        let store = db.store().await;
        let u = user("carol");
        assert!(store.load(&u).await.expect("load").is_none());
        let r1 = store.record_login(&u, 1000).await.expect("login");
        assert_eq!((r1.logins, r1.first_login_at, r1.revision), (1, 1000, 0));
        // A late clock never moves the last login backwards.
        let r2 = store.record_login(&u, 900).await.expect("login");
        assert_eq!(
            (r2.logins, r2.first_login_at, r2.last_login_at),
            (2, 1000, 1000)
        );
        let r3 = store
            .record_skip(&u, "role", Skip::new(11, 2), &|_| false)
            .await
            .expect("skip");
        assert_eq!(r3.revision, 1);
        // The count of skips survives the round trip through PostgreSQL.
        let again = store
            .record_skip(&u, "role", Skip::new(12, 2), &|_| false)
            .await
            .expect("second skip");
        let loaded = store.load(&u).await.expect("load").expect("some");
        assert_eq!(
            loaded.skips["role"],
            Skip {
                at: 12,
                login: 2,
                count: 2
            }
        );
        assert_eq!(loaded, again);
        let r4 = store
            .save_answers(&u, one("role", AnswerValue::Text("Design".into())))
            .await
            .expect("answer");
        assert_eq!(r4.revision, 3);
        assert!(r4.skips.is_empty(), "an answer clears the skip");
        // No change, no new revision: an empty save, and a skip of an answered question.
        assert_eq!(store.save_answers(&u, Vec::new()).await.expect("empty"), r4);
        let late = store
            .record_skip(&u, "role", Skip::new(13, 2), &|_| false)
            .await
            .expect("late skip");
        assert_eq!(late, r4);
        assert_eq!(store.load(&u).await.expect("load"), Some(r4));
        // A number JSON cannot hold is refused before anything is written.
        let err = store
            .save_answers(&u, one("n", AnswerValue::Number(f64::NAN)))
            .await
            .expect_err("NaN");
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        assert_eq!(
            store.load(&u).await.expect("load").expect("some").revision,
            3
        );
        store.sync().await.expect("sync");
        assert!(store.ready().await);
        db.drop_schema().await;
    });
}

#[test]
fn concurrent_writers_on_two_replicas_all_land_even_on_a_new_user() {
    run(async {
        let Some(db) = TestDb::new().await else {
            return;
        };
        let replicas: [Arc<dyn ProfileStore>; 2] =
            [Arc::new(db.store().await), Arc::new(db.store().await)];
        // A user nobody has written yet: the first writes race to create the row.
        let u = user("dave");
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let store = Arc::clone(&replicas[i % 2]);
                let u = u.clone();
                tokio::spawn(async move {
                    store
                        .save_answers(&u, one(&format!("q{i}"), AnswerValue::Integer(i as i64)))
                        .await
                        .expect("save");
                    store.record_login(&u, 100 + i as u64).await.expect("login");
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
        let record = replicas[0].load(&u).await.expect("load").expect("some");
        assert_eq!(record.answers.len(), 32, "no answer lost");
        assert_eq!(record.logins, 32, "no login lost");
        assert_eq!(
            record.revision, 32,
            "one revision per answer; none for a login"
        );
        assert_eq!(record.last_login_at, 131);
        db.drop_schema().await;
    });
}

#[test]
fn unusual_subjects_and_issuers_are_distinct_users() {
    run(async {
        let Some(db) = TestDb::new().await else {
            return;
        };
        let store = db.store().await;
        let keys = [
            UserKey::new(ISSUER, ""),
            UserKey::new(ISSUER, "\0"),
            UserKey::new(ISSUER, "a\0b"),
            UserKey::new(ISSUER, "a"),
            UserKey::new(ISSUER, "A"),
            UserKey::new(ISSUER, "ç"),
            UserKey::new(ISSUER, "c\u{327}"),
            UserKey::new(ISSUER, "x".repeat(10_000)),
            UserKey::new("https://other.example", "a"),
        ];
        for (i, k) in keys.iter().enumerate() {
            store
                .save_answers(k, one("n", AnswerValue::Integer(i as i64)))
                .await
                .expect("save");
        }
        for (i, k) in keys.iter().enumerate() {
            let r = store.load(k).await.expect("load").expect("stored");
            assert_eq!(r.answers["n"].value, AnswerValue::Integer(i as i64), "{k}");
        }
        db.drop_schema().await;
    });
}

#[test]
fn a_corrupt_record_is_an_error_and_is_left_as_it_was() {
    run(async {
        let Some(db) = TestDb::new().await else {
            return;
        };
        let store = db.store().await;
        let u = user("mallory");
        store.record_login(&u, 1).await.expect("login");
        let broken =
            r#"{"v":1,"answers":{"company":{"value":{"text":"secret answer"}}},"logins":"many"}"#;
        db.sql(&format!(
            "UPDATE profilegate_users SET record = '{broken}' WHERE subject = convert_to('mallory', 'UTF8')"
        ))
        .await;
        let err = store.load(&u).await.expect_err("corrupt");
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(!err.to_string().contains("secret answer"), "{err}");
        let err = store
            .save_answers(&u, one("company", AnswerValue::Text("x".into())))
            .await
            .expect_err("no write over a record it cannot read");
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        db.sql(&format!(
            "DO $$ BEGIN IF (SELECT record::text FROM profilegate_users) <> '{broken}' THEN \
             RAISE EXCEPTION 'the corrupt record was changed'; END IF; END $$"
        ))
        .await;
        // A record from a newer profilegate is refused, not rewritten.
        db.sql("UPDATE profilegate_users SET record = '{\"v\":9}'")
            .await;
        let err = store.load(&u).await.expect_err("newer format");
        assert!(err.to_string().contains("format 9"), "{err}");
        db.drop_schema().await;
    });
}

#[test]
fn a_secret_is_created_once_whoever_races_and_every_replica_gets_it() {
    run(async {
        let Some(db) = TestDb::new().await else {
            return;
        };
        let replicas: [Arc<dyn ProfileStore>; 2] =
            [Arc::new(db.store().await), Arc::new(db.store().await)];
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let store = Arc::clone(&replicas[i % 2]);
                tokio::spawn(async move {
                    store
                        .get_or_create_secret("jwt-key", &|| {
                            rand::thread_rng().gen::<[u8; 32]>().to_vec()
                        })
                        .await
                        .expect("secret")
                })
            })
            .collect();
        let mut seen = Vec::new();
        for task in tasks {
            seen.push(task.await.expect("task"));
        }
        assert!(
            seen.iter().all(|s| s == &seen[0] && s.len() == 32),
            "one secret"
        );
        let err = replicas[0]
            .get_or_create_secret("other", &Vec::new)
            .await
            .expect_err("empty");
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        // A new replica started later gets the same one.
        let later = db.store().await;
        let again = later
            .get_or_create_secret("jwt-key", &|| vec![1])
            .await
            .expect("secret");
        assert_eq!(again, seen[0]);
        db.drop_schema().await;
    });
}

#[test]
fn another_layout_is_refused_and_errors_never_show_the_password() {
    run(async {
        let Some(db) = TestDb::new().await else {
            return;
        };
        drop(db.store().await);
        db.sql("UPDATE profilegate_meta SET value = '\\x32' WHERE name = 'format'")
            .await;
        let err = PgStore::open(&db.url(), PgOptions::default())
            .await
            .err()
            .expect("layout 2");
        assert!(matches!(err, StoreError::NotSupported(_)), "{err}");
        assert!(err.to_string().contains("layout \"2\""), "{err}");

        // A wrong password: refused by the server, said plainly, the password not repeated.
        let wrong = db
            .url()
            .replacen("://profilegate:", "://profilegate:wrong-Pa55word-", 1);
        assert_ne!(
            wrong,
            db.url(),
            "the test URL names user profilegate with a password"
        );
        let err = PgStore::open(&wrong, PgOptions::default())
            .await
            .err()
            .expect("wrong password");
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
        let text = err.to_string();
        assert!(text.contains("password authentication failed"), "{text}");
        assert!(!text.contains("wrong-Pa55word"), "{text}");
        db.drop_schema().await;
    });
}

/// A TCP relay between the store and the server that can cut every connection and refuse new
/// ones, as a database outage or a network partition would.
struct Relay {
    port: u16,
    up: Arc<std::sync::atomic::AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
}

impl Relay {
    async fn start(target: String) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let (flag, cuts) = (Arc::clone(&up), cut.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !flag.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: the connection is closed at once
                }
                let target = target.clone();
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Relay { port, up, cut }
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, std::sync::atomic::Ordering::SeqCst);
        if !up {
            self.cut.send_modify(|n| *n += 1);
        }
    }
}

#[test]
fn an_outage_is_reported_as_unavailable_and_the_store_recovers_after_it() {
    run(async {
        let Some(db) = TestDb::new().await else {
            return;
        };
        let direct = url::Url::parse(&db.url()).expect("test URL");
        let target = format!(
            "{}:{}",
            direct.host_str().expect("host"),
            direct.port().unwrap_or(5432)
        );
        let relay = Relay::start(target).await;
        let mut through = direct.clone();
        through.set_port(Some(relay.port)).expect("port");
        let store = PgStore::open(
            through.as_str(),
            PgOptions {
                pool_size: 2,
                timeout: std::time::Duration::from_secs(2),
                ..PgOptions::default()
            },
        )
        .await
        .expect("open through the relay");
        let u = user("olive");
        store
            .save_answers(&u, one("company", AnswerValue::Text("Before".into())))
            .await
            .expect("save");
        assert!(store.ready().await);

        relay.set_up(false);
        assert!(!store.ready().await, "not ready while the database is away");
        let err = store.load(&u).await.expect_err("no database");
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
        let err = store
            .save_answers(&u, one("company", AnswerValue::Text("During".into())))
            .await
            .expect_err("no database");
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
        assert!(err.to_string().contains("PostgreSQL database"), "{err}");

        relay.set_up(true);
        // The pool drops the dead connections and makes new ones.
        let mut recovered = false;
        for _ in 0..20 {
            if store.ready().await {
                recovered = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(recovered, "ready again once the database is back");
        let record = store.load(&u).await.expect("load").expect("stored");
        assert_eq!(
            record.answers["company"].value,
            AnswerValue::Text("Before".into()),
            "the answer from before the outage is there, the refused one is not"
        );
        db.drop_schema().await;
    });
}

/// The test server's CA (`PG_TEST_CA`, from tests/pg_server.sh), or `None` after saying why.
fn test_ca() -> Option<Vec<u8>> {
    match std::env::var("PG_TEST_CA") {
        Ok(path) if !path.is_empty() => Some(std::fs::read(&path).expect("PG_TEST_CA readable")),
        _ => {
            assert!(
                std::env::var_os("PG_TEST_REQUIRED").is_none(),
                "PG_TEST_REQUIRED is set but PG_TEST_CA is not"
            );
            eprintln!("skipped: PG_TEST_CA is not set (tests/run.sh sets it)");
            None
        }
    }
}

#[test]
fn with_sslmode_require_the_connection_is_tls_and_the_server_certificate_is_verified() {
    run(async {
        let Some(db) = TestDb::new().await else {
            return;
        };
        let Some(ca) = test_ca() else { return };
        let name = format!("{}_tls", db.schema);
        let url = db.url().replace("sslmode=disable", "sslmode=require")
            + &format!("&application_name={name}");
        let tls = |ca_pem: Option<Vec<u8>>| PgOptions {
            tls: PgTls { ca_pem },
            ..PgOptions::default()
        };
        let store = PgStore::open(&url, tls(Some(ca)))
            .await
            .expect("TLS with the server's CA");
        let u = user("tess");
        store
            .save_answers(&u, one("company", AnswerValue::Text("Encrypted".into())))
            .await
            .expect("save over TLS");
        // The server says the store's (pooled, still open) connections are encrypted.
        db.sql(&format!(
            "DO $$ BEGIN IF NOT (SELECT count(*) > 0 AND bool_and(s.ssl) FROM pg_stat_ssl s \
             JOIN pg_stat_activity a USING (pid) WHERE a.application_name = '{name}') THEN \
             RAISE EXCEPTION 'the store connection is not TLS'; END IF; END $$"
        ))
        .await;
        drop(store);
        // Without the CA (the Mozilla roots), the self-signed test CA is refused: no silent
        // fallback to an unverified or plain connection.
        let err = PgStore::open(&url, tls(None))
            .await
            .err()
            .expect("an unknown CA is refused");
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
        assert!(err.to_string().contains("certificate"), "{err}");
        db.drop_schema().await;
    });
}

// ---- self-service (`/.profilegate/me`) -----------------------------------------------------------

#[test]
fn erased_answers_are_erased_for_every_replica() {
    run(async {
        let Some(db) = TestDb::new().await else {
            return;
        };
        let (a, b) = (db.store().await, db.store().await);
        let u = user("alice");
        a.save_answers(&u, one("company", AnswerValue::Text("Acme".into())))
            .await
            .expect("save");
        a.record_skip(&u, "role", Skip::new(1001, 1), &|_| false)
            .await
            .expect("skip");
        let erased = b
            .erase_answers(&u)
            .await
            .expect("erase on the other replica");
        assert_eq!(erased.revision, 3);
        let read = a.load(&u).await.expect("load").expect("kept");
        assert!(read.answers.is_empty() && read.skips.is_empty(), "{read:?}");
        assert_eq!(read.revision, 3);
        db.drop_schema().await;
    });
}
