//! Component tests of the sled store on temporary directories. The crash and lock tests, which
//! need a second process, are in [`process`]; the PostgreSQL store's, against a real server, in
//! [`pg`].

mod admin;
mod funnel;
mod pg;
mod process;
mod sessions;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

use super::*;
use crate::config::{Secret, StoreBackend, StoreConfig};
use crate::profile::AnswerValue;

const ISSUER: &str = "https://op.example/realms/acme";

fn run<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

async fn open_at(dir: &Path) -> SledStore {
    SledStore::open(dir, SledOptions::default())
        .await
        .expect("open store")
}

fn user(subject: &str) -> UserKey {
    UserKey::new(ISSUER, subject)
}

fn answer(value: AnswerValue) -> StoredAnswer {
    StoredAnswer {
        value,
        answered_at: 1_700_000_000,
        question_version: 2,
        source: AnswerSource::User,
    }
}

fn one(id: &str, value: AnswerValue) -> Vec<(String, StoredAnswer)> {
    vec![(id.to_string(), answer(value))]
}

/// Numbers compared bit for bit, so a float that reads back 1 ULP off (or -0.0 as 0.0) fails.
fn same_values(a: &AnswerValue, b: &AnswerValue) -> bool {
    match (a, b) {
        (AnswerValue::Number(x), AnswerValue::Number(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

#[test]
fn every_answer_type_reads_back_exactly_after_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut answers = vec![
        (
            "text",
            AnswerValue::Text("Acme, Inc. — Zürich 🚀 \0 \r\n".into()),
        ),
        ("empty", AnswerValue::Text(String::new())),
        ("int_min", AnswerValue::Integer(i64::MIN)),
        ("int_max", AnswerValue::Integer(i64::MAX)),
        ("yes", AnswerValue::Bool(true)),
        ("no", AnswerValue::Bool(false)),
        (
            "list",
            AnswerValue::List(vec!["a,b".into(), "ç".into(), String::new()]),
        ),
        ("no_items", AnswerValue::List(Vec::new())),
        ("date", AnswerValue::Date("2024-02-29".into())),
    ]
    .into_iter()
    .map(|(id, v)| (id.to_string(), answer(v)))
    .collect::<Vec<_>>();
    let mut rng = rand::thread_rng();
    let special = [
        0.1 + 0.2,
        -0.0,
        1e-300,
        5e-324,
        f64::MAX,
        f64::MIN_POSITIVE,
        1.0 / 3.0,
    ];
    let random = (0..2000)
        .map(|_| f64::from_bits(rng.gen()))
        .filter(|n| n.is_finite());
    for (i, n) in special.into_iter().chain(random).enumerate() {
        answers.push((format!("n{i}"), answer(AnswerValue::Number(n))));
    }
    answers[0].1.source = AnswerSource::Provider;

    let check = |record: &ProfileRecord| {
        assert_eq!(record.answers.len(), answers.len());
        for (id, expected) in &answers {
            let got = &record.answers[id];
            assert!(same_values(&got.value, &expected.value), "answer {id}");
            assert_eq!(
                (got.answered_at, got.question_version, got.source),
                (
                    expected.answered_at,
                    expected.question_version,
                    expected.source
                )
            );
        }
    };
    run(async {
        let store = open_at(dir.path()).await;
        let saved = store
            .save_answers(&user("alice"), answers.clone())
            .await
            .expect("save");
        check(&saved);
        check(
            &store
                .load(&user("alice"))
                .await
                .expect("load")
                .expect("some"),
        );
    });
    run(async {
        let store = open_at(dir.path()).await;
        check(
            &store
                .load(&user("alice"))
                .await
                .expect("load")
                .expect("some"),
        );
    });
}

#[test]
fn logins_are_counted_with_first_and_last_times() {
    let dir = tempfile::tempdir().expect("tempdir");
    run(async {
        let store = open_at(dir.path()).await;
        assert!(store.load(&user("bob")).await.expect("load").is_none());
        let first = store.record_login(&user("bob"), 1000).await.expect("login");
        assert_eq!(
            (first.logins, first.first_login_at, first.last_login_at),
            (1, 1000, 1000)
        );
        let second = store.record_login(&user("bob"), 2000).await.expect("login");
        assert_eq!(
            (second.logins, second.first_login_at, second.last_login_at),
            (2, 1000, 2000)
        );
        assert_eq!(store.load(&user("bob")).await.expect("load"), Some(second));
    });
}

#[test]
fn a_skip_is_kept_until_the_question_is_answered_and_each_change_bumps_the_revision() {
    let dir = tempfile::tempdir().expect("tempdir");
    run(async {
        let store = open_at(dir.path()).await;
        let u = user("carol");
        // A login changes nothing the upstream sees: no new revision.
        let r1 = store.record_login(&u, 10).await.expect("login");
        assert_eq!((r1.logins, r1.revision), (1, 0));
        let r2 = store
            .record_skip(&u, "role", Skip::new(11, 1), &|_| false)
            .await
            .expect("skip");
        assert_eq!(r2.revision, 1);
        assert_eq!(
            r2.skips["role"],
            Skip {
                at: 11,
                login: 1,
                count: 1
            }
        );
        // The count of skips survives the round trip through the store.
        let again = store
            .record_skip(&u, "role", Skip::new(12, 1), &|_| false)
            .await
            .expect("second skip");
        assert_eq!((again.revision, again.skips["role"].count), (2, 2));
        let loaded = store.load(&u).await.expect("load").expect("some");
        assert_eq!(loaded.skips["role"], again.skips["role"]);
        let r2 = again;
        let r3 = store
            .save_answers(&u, one("role", AnswerValue::Text("Design".into())))
            .await
            .expect("answer");
        assert_eq!(r3.revision, r2.revision + 1);
        let r4 = store.record_login(&u, 20).await.expect("second login");
        assert_eq!((r4.logins, r4.revision), (2, r3.revision));
        let r3 = r4;
        assert!(r3.skips.is_empty());
        // No change, no new revision: an empty save, and a skip of an answered question.
        let same = store.save_answers(&u, Vec::new()).await.expect("empty");
        assert_eq!(same, r3);
        let same = store
            .record_skip(&u, "role", Skip::new(12, 1), &|_| false)
            .await
            .expect("late skip");
        assert_eq!(same, r3);
        assert_eq!(store.load(&u).await.expect("load"), Some(r3.clone()));
        // A skip beside an answer the caller calls outdated (expired) is recorded, the answer kept.
        let beside = store
            .record_skip(&u, "role", Skip::new(30, 2), &|_| true)
            .await
            .expect("skip of an expired answer");
        assert_eq!(beside.revision, r3.revision + 1);
        assert_eq!(beside.answers, r3.answers);
        assert_eq!(beside.skips["role"].count, 1);
        assert_eq!(store.load(&u).await.expect("load"), Some(beside));
    });
}

#[test]
fn concurrent_writers_of_one_user_all_land() {
    let dir = tempfile::tempdir().expect("tempdir");
    run(async {
        let store: Arc<dyn ProfileStore> = Arc::new(open_at(dir.path()).await);
        let u = user("dave");
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let (store, u) = (Arc::clone(&store), u.clone());
                tokio::spawn(async move {
                    store
                        .save_answers(&u, one(&format!("q{i}"), AnswerValue::Integer(i)))
                        .await
                        .expect("save");
                    store.record_login(&u, 100 + i as u64).await.expect("login");
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
        let record = store.load(&u).await.expect("load").expect("some");
        assert_eq!(record.answers.len(), 32);
        for i in 0..32 {
            assert_eq!(
                record.answers[&format!("q{i}")].value,
                AnswerValue::Integer(i)
            );
        }
        assert_eq!(record.logins, 32);
        assert_eq!(
            record.revision, 32,
            "one revision per answer; none for a login"
        );
        assert_eq!(record.last_login_at, 131);
    });
}

#[test]
fn everything_survives_closing_and_reopening_many_times() {
    let dir = tempfile::tempdir().expect("tempdir");
    for round in 0..5u64 {
        run(async {
            let store = open_at(dir.path()).await;
            let before = store.load(&user("erin")).await.expect("load");
            assert_eq!(before.as_ref().map_or(0, |r| r.logins), round);
            store
                .record_login(&user("erin"), round)
                .await
                .expect("login");
            // Dropped here: the next round opens the directory again at once.
        });
    }
}

#[test]
fn unusual_subjects_are_distinct_users() {
    let dir = tempfile::tempdir().expect("tempdir");
    let long = "x".repeat(100_000);
    let keys = [
        UserKey::new(ISSUER, ""),
        UserKey::new(ISSUER, "\0"),
        UserKey::new(ISSUER, "a\0b"),
        UserKey::new(ISSUER, "a"),
        UserKey::new(ISSUER, "Ünïcødé 用户 🙂"),
        UserKey::new(ISSUER, long.as_str()),
        // The issuer/subject boundary cannot be moved.
        UserKey::new("ab", "c"),
        UserKey::new("a", "bc"),
        UserKey::new("a\0", "b"),
        UserKey::new("a", "\0b"),
    ];
    for key in &keys {
        assert_eq!(
            UserKey::from_storage_key(&key.storage_key()).as_ref(),
            Some(key)
        );
    }
    run(async {
        let store = open_at(dir.path()).await;
        for (i, key) in keys.iter().enumerate() {
            store
                .save_answers(key, one("i", AnswerValue::Integer(i as i64)))
                .await
                .expect("save");
        }
        for (i, key) in keys.iter().enumerate() {
            let record = store.load(key).await.expect("load").expect("some");
            assert_eq!(
                record.answers["i"].value,
                AnswerValue::Integer(i as i64),
                "{key}"
            );
            assert_eq!(record.revision, 1, "{key}");
        }
    });
    // Descriptions for logs stay short and escaped.
    let shown = UserKey::new("a\nb", long.as_str()).to_string();
    assert!(shown.len() < 200 && !shown.contains('\n'), "{shown}");
}

#[test]
fn a_corrupt_record_is_an_error_and_is_left_as_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    run(async {
        let store = open_at(dir.path()).await;
        let bad: [&[u8]; 3] = [
            b"not json SECRET-ANSWER",
            br#"{"v":1,"answers":{"a":{"value":{"integer":"SECRET-ANSWER"}}}}"#,
            br#"{"v":7,"logins":1}"#,
        ];
        for (i, bytes) in bad.iter().enumerate() {
            let u = user(&format!("mallory{i}"));
            store
                .users_tree()
                .insert(u.storage_key(), *bytes)
                .expect("insert");
            for result in [
                store.load(&u).await.map(|_| ()),
                store.record_login(&u, 1).await.map(|_| ()),
                store
                    .save_answers(&u, one("a", AnswerValue::Bool(true)))
                    .await
                    .map(|_| ()),
            ] {
                let err = result.expect_err("corrupt");
                let message = err.to_string();
                assert!(matches!(err, StoreError::Corrupt { .. }), "{message}");
                assert!(!message.contains("SECRET"), "{message}");
                assert!(message.contains("mallory"), "names the record: {message}");
            }
            let kept = store.users_tree().get(u.storage_key()).expect("get");
            assert_eq!(kept.as_deref(), Some(*bytes), "not overwritten");
        }
    });
}

#[test]
fn non_finite_numbers_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    run(async {
        let store = open_at(dir.path()).await;
        let err = store
            .save_answers(&user("frank"), one("n", AnswerValue::Number(f64::NAN)))
            .await
            .expect_err("refused");
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        assert!(store.load(&user("frank")).await.expect("load").is_none());
    });
}

#[test]
fn a_secret_is_created_once_whoever_races_and_kept_across_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = run(async {
        let store: Arc<dyn ProfileStore> = Arc::new(open_at(dir.path()).await);
        let tasks: Vec<_> = (0..16u8)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    store
                        .get_or_create_secret("jwt-signing-key", &move || vec![i; 32])
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
            seen.iter().all(|s| *s == seen[0]),
            "everyone gets the same bytes"
        );
        let other = store
            .get_or_create_secret("other", &|| b"other".to_vec())
            .await
            .expect("other");
        assert_eq!(other, b"other");
        let err = store
            .get_or_create_secret("empty", &Vec::new)
            .await
            .expect_err("refused");
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        let later = store
            .get_or_create_secret("empty", &|| b"good".to_vec())
            .await
            .expect("a later good one is kept");
        assert_eq!(later, b"good");
        seen.swap_remove(0)
    });
    run(async {
        let store = open_at(dir.path()).await;
        let again = store
            .get_or_create_secret("jwt-signing-key", &|| panic!("must not create again"))
            .await
            .expect("secret");
        assert_eq!(again, first);
    });
}

#[test]
fn a_second_open_in_this_process_reports_the_lock() {
    let dir = tempfile::tempdir().expect("tempdir");
    run(async {
        let _held = open_at(dir.path()).await;
        let options = SledOptions {
            lock_wait: Duration::from_millis(200),
            ..SledOptions::default()
        };
        let err = SledStore::open(dir.path(), options)
            .await
            .err()
            .expect("locked");
        assert!(matches!(err, StoreError::Locked { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "store at {} is locked by another profilegate process",
                dir.path().display()
            )
        );
    });
}

#[test]
fn opening_creates_missing_parents_and_reports_an_unusable_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nested = dir.path().join("a/b/store");
    run(async {
        let store = open_at(&nested).await;
        assert!(store.ready().await);
        assert_eq!(store.path(), nested);

        let file = dir.path().join("a-file");
        std::fs::write(&file, b"x").expect("write");
        let err = SledStore::open(&file.join("store"), SledOptions::default())
            .await
            .err()
            .expect("not a directory");
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
        assert!(
            err.to_string()
                .contains("cannot create the store directory"),
            "{err}"
        );
    });
}

#[test]
fn the_config_opens_sled_and_reports_an_unreachable_postgres_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    run(async {
        let store = open(&StoreConfig {
            backend: StoreBackend::Sled {
                path: dir.path().join("store"),
                cache_size: 1 << 20,
            },
            profile_cache_users: 10,
        })
        .await
        .expect("sled");
        assert!(store.ready().await);
        // Nobody listens on port 1: a clear error at once, naming the database, never the
        // password.
        let err = open(&StoreConfig {
            backend: StoreBackend::Postgres {
                url: Secret::new("postgres://u:hunter2@127.0.0.1:1/db".to_string()),
                tls_ca_pem: None,
            },
            profile_cache_users: 10,
        })
        .await
        .err()
        .expect("nobody listening");
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("PostgreSQL database db at 127.0.0.1:1 as user u"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
    });
}

// ---- self-service (`/.profilegate/me`) -----------------------------------------------------------

#[test]
fn erased_answers_stay_erased_after_reopening_and_other_users_keep_theirs() {
    let dir = tempfile::tempdir().expect("tempdir");
    run(async {
        let store = open_at(dir.path()).await;
        store
            .record_login(&user("alice"), 1000)
            .await
            .expect("login");
        store
            .save_answers(
                &user("alice"),
                one("company", AnswerValue::Text("Acme".into())),
            )
            .await
            .expect("save");
        store
            .record_skip(&user("alice"), "role", Skip::new(1001, 1), &|_| false)
            .await
            .expect("skip");
        store
            .save_answers(
                &user("bob"),
                one("company", AnswerValue::Text("Bobco".into())),
            )
            .await
            .expect("save");
        let erased = store.erase_answers(&user("alice")).await.expect("erase");
        assert!(erased.answers.is_empty() && erased.skips.is_empty());
        assert_eq!((erased.revision, erased.logins), (3, 1));
    });
    run(async {
        let store = open_at(dir.path()).await;
        let alice = store
            .load(&user("alice"))
            .await
            .expect("load")
            .expect("kept");
        assert!(
            alice.answers.is_empty() && alice.skips.is_empty(),
            "{alice:?}"
        );
        assert_eq!(
            (alice.revision, alice.logins, alice.first_login_at),
            (3, 1, 1000)
        );
        let bob = store.load(&user("bob")).await.expect("load").expect("bob");
        assert_eq!(bob.answers.len(), 1);
    });
}
