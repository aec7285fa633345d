//! What the policy tests (tests/policy.rs) share: test OP users that differ by claims, the
//! checks of a denied request (403 page or JSON, nothing upstream), the question page's form,
//! and a gate whose store was written before it started (answers and skips dated in the past,
//! in place of a clock the tests could move).

use std::time::{SystemTime, UNIX_EPOCH};

use profilegate::store::{
    Commit, ProfileStore, Skip, SledOptions, SledStore, StoredAnswer, UserKey,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{bind_gate, form_value, start_gate_full, Browser, EchoUpstream, TestEnv, TestOp};

/// The test OP's configuration for users whose claims differ: `claims` is login -> claims
/// (they override the OP's `email`, `email_verified`, ...), and `released` names the extra
/// claims the `profile` scope releases (groups, `realm_access`, `acr`, ...).
pub fn op_users(claims: Value, released: &[&str]) -> Value {
    json!({
        "claims": claims,
        "extra_scope_claims": { "profile": released },
    })
}

/// Words a denied user's page must never show: how the rule is written and what it reads.
const INTERNALS: [&str; 10] = [
    "claims",
    "email_verified",
    "realm_access",
    "groups",
    "allowed_",
    "groups_claim",
    "[access]",
    "[[routes]]",
    "expression",
    "request.method",
];

/// Asserts that `browser` is refused at `path`: a navigation gets the 403 page (HTML, a
/// sign-out form, no word of the rule: not "CEL", neither `internals` nor the common ones), an
/// API call gets 403 `{"error":"access_denied"}` naming none of them either, and the upstream
/// receives neither.
pub async fn assert_denied(env: &TestEnv, browser: &Browser, path: &str, internals: &[&str]) {
    let url = env.proxy.url(path);
    let before = env.upstream.count();

    let page = browser.navigate(&url).await;
    let status = page.status();
    let content_type = page
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let html = page.text().await.unwrap_or_default();
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "{path}: a denied navigation ({content_type}): {}",
        excerpt(&html)
    );
    assert!(
        content_type.starts_with("text/html"),
        "{path}: the denied page is {content_type}: {}",
        excerpt(&html)
    );
    let readable = html.replace("&#x2f;", "/").replace("&#x2F;", "/");
    assert!(
        readable.contains("<form") && readable.contains("/.profilegate/logout"),
        "{path}: the denied page offers no sign-out form:\n{html}"
    );
    for internal in INTERNALS.iter().chain(internals).chain(&["cel"]) {
        assert!(
            !mentions(&readable, internal),
            "{path}: the denied page shows {internal:?}:\n{html}"
        );
    }

    let api = browser
        .client
        .get(&url)
        .header("accept", "application/json")
        .send()
        .await
        .expect("API request");
    let status = api.status();
    let body = api.text().await.unwrap_or_default();
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "{path}: a denied API call: {}",
        excerpt(&body)
    );
    let json: Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("{path}: the denied API answer is not JSON ({e}): {body}"));
    assert_eq!(json["error"], "access_denied", "{path}: {body}");
    for internal in INTERNALS.iter().chain(internals) {
        assert!(
            !mentions(&body, internal),
            "{path}: the denied API answer shows {internal:?}: {body}"
        );
    }

    let received = env.upstream.requests();
    assert_eq!(
        received.len(),
        before,
        "{path}: the upstream received denied requests: {:?}",
        &received[before.min(received.len())..]
    );
}

/// True when `text` mentions `needle`, ignoring case: as a whole word when `needle` is one
/// (so `ops` is not found in "Oops"), else anywhere.
fn mentions(text: &str, needle: &str) -> bool {
    let text = text.to_lowercase();
    let needle = needle.to_lowercase();
    if needle.chars().all(|c| c.is_alphanumeric()) {
        text.split(|c: char| !c.is_alphanumeric())
            .any(|word| word == needle)
    } else {
        text.contains(&needle)
    }
}

/// The first 300 characters of a body, for a failure message.
pub fn excerpt(body: &str) -> String {
    body.chars().take(300).collect()
}

/// The question page reached as after a login that started at `rd`.
pub async fn question_page(browser: &Browser, env: &TestEnv, rd: &str) -> String {
    let rd: String = url::form_urlencoded::byte_serialize(rd.as_bytes()).collect();
    let resp = browser
        .navigate(&env.proxy.url(&format!("/.profilegate/profile?rd={rd}")))
        .await;
    let status = resp.status();
    let page = resp.text().await.unwrap_or_default();
    assert_eq!(
        status,
        StatusCode::OK,
        "the question page: {}",
        excerpt(&page)
    );
    page
}

/// Posts the question page's form for `question` with `fields` (reached with `rd`).
pub async fn answer(
    browser: &Browser,
    env: &TestEnv,
    rd: &str,
    question: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let page = question_page(browser, env, rd).await;
    let (csrf, rd) = (form_value(&page, "_csrf"), form_value(&page, "_rd"));
    // The test's fields come first: the proxy reads the first value of each name.
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    form.extend_from_slice(&[("_csrf", &csrf), ("_question", question), ("_rd", &rd)]);
    browser
        .client
        .post(env.proxy.url("/.profilegate/profile"))
        .header("accept", "text/html")
        .form(&form)
        .send()
        .await
        .expect("post the answer")
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub const DAY: u64 = 86_400;

/// What a user's stored record holds before the gate starts: one login `ago` seconds back,
/// then these answers and skips, each dated `ago` seconds back.
pub enum Seed {
    /// An answer (`value` as the store writes it: `{"text": "Acme"}`, `{"integer": 12}`).
    Answer {
        id: &'static str,
        value: Value,
        ago: u64,
    },
    /// A skip, at the user's first login.
    Skip { id: &'static str, ago: u64 },
}

/// A [`TestEnv`] whose sled store was written (see [`Seed`]) before the gate opened it.
pub struct SeededEnv {
    pub env: TestEnv,
    /// The store's directory, removed after the gate is gone.
    _store_dir: tempfile::TempDir,
}

impl std::ops::Deref for SeededEnv {
    type Target = TestEnv;
    fn deref(&self) -> &TestEnv {
        &self.env
    }
}

/// The OP, the echo upstream, a sled store holding `seeds` (login -> records) and the gate on
/// that store with `sections`.
pub async fn start_seeded(
    sections: &str,
    op_extra: Value,
    seeds: Vec<(&str, Vec<Seed>)>,
) -> SeededEnv {
    let (listener, port) = bind_gate();
    let op = TestOp::start(port, op_extra);
    let upstream = EchoUpstream::start().await;
    let store_dir = tempfile::tempdir().expect("store dir");
    let path = store_dir.path().join("data");
    write_seeds(&path, op.issuer.trim_end_matches('/'), seeds).await;
    let sections = format!(
        "{sections}\n[store]\npath = {:?}\n",
        path.display().to_string()
    );
    let proxy = start_gate_full(
        listener,
        &op.issuer,
        &upstream.url(),
        "",
        "",
        &sections,
        true,
    )
    .await;
    SeededEnv {
        env: TestEnv {
            op,
            upstream,
            proxy,
        },
        _store_dir: store_dir,
    }
}

/// Writes the records through the store's own API, then closes the store.
async fn write_seeds(path: &std::path::Path, issuer: &str, seeds: Vec<(&str, Vec<Seed>)>) {
    let store = SledStore::open(path, SledOptions::default())
        .await
        .expect("open the store to seed it");
    for (login, records) in seeds {
        let user = UserKey::new(issuer, login);
        let first = records
            .iter()
            .map(|s| match s {
                Seed::Answer { ago, .. } | Seed::Skip { ago, .. } => *ago,
            })
            .max()
            .unwrap_or(0);
        store
            .record_login(&user, now() - first)
            .await
            .expect("seed a login");
        for seed in records {
            let written = match seed {
                Seed::Answer { id, value, ago } => {
                    let answer: StoredAnswer = serde_json::from_value(json!({
                        "value": value,
                        "answered_at": now() - ago,
                        "question_version": 1,
                    }))
                    .expect("a stored answer");
                    store
                        .save_answers(&user, vec![(id.to_owned(), answer)])
                        .await
                }
                Seed::Skip { id, ago } => {
                    // Written through the store's one write primitive: `record_skip` takes
                    // more arguments once skips are counted. One skip, at the first login.
                    let skip = json!({ "at": now() - ago, "login": 1, "count": 1 });
                    store
                        .update_record(&user, Commit::Durable, &|current| {
                            let skip: Skip = serde_json::from_value(skip.clone()).ok()?;
                            let mut next = current.cloned().unwrap_or_default();
                            next.skips.insert(id.to_owned(), skip);
                            next.revision += 1;
                            Some(next)
                        })
                        .await
                }
            };
            written.unwrap_or_else(|e| panic!("seed {login}'s record: {e}"));
        }
    }
    store.sync().await.expect("sync the seeded store");
}
