//! tests/funnel.rs's script and readers: what each of the scripted users does on the hosted
//! question page, the figures that gives, and how the test reads `/metrics`, `/admin/stats`,
//! the dashboard (headless Chromium, `tests/browser/dashboard.mjs`) and `profilegate stats`.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::questions::*;
use super::*;

pub const TOKEN: &str = "funnel-test-admin-token-0123456789";

pub fn sections() -> String {
    format!(
        "{}\n[admin]\ntoken = \"ops:{TOKEN}\"\n",
        profiling(
            &["questions_per_login = 2"],
            &[company(), role(&["Engineering", "Design"])],
        )
    )
}

/// What user `i` does: (invalid company answers first, role: answer / skip, invalid role first).
pub fn script(i: usize) -> (bool, bool, bool) {
    (i % 5 == 0, i % 2 == 0, i % 10 == 1)
}

/// The figures the script gives for `users` users numbered from `from`:
/// question -> [shown, answered, skipped, invalid].
pub fn expected(users: std::ops::Range<usize>) -> BTreeMap<&'static str, [u64; 4]> {
    let mut company = [0; 4];
    let mut role = [0; 4];
    for i in users {
        let (bad_company, answer_role, bad_role) = script(i);
        company[0] += 1;
        company[1] += 1;
        company[3] += u64::from(bad_company);
        role[0] += 1;
        role[1] += u64::from(answer_role);
        role[2] += u64::from(!answer_role);
        role[3] += u64::from(bad_role);
    }
    BTreeMap::from([("company", company), ("role", role)])
}

/// Posts the question page's form: `value` as the answer, or a skip when `None`.
pub async fn post(
    browser: &Browser,
    proxy: &Proxy,
    html: &str,
    value: Option<&str>,
) -> reqwest::Response {
    let question = form_value(html, "_question");
    let mut form = vec![
        ("_csrf".to_owned(), form_value(html, "_csrf")),
        ("_question".to_owned(), question.clone()),
        ("_rd".to_owned(), form_value(html, "_rd")),
        ("_shown".to_owned(), form_value(html, "_shown")),
    ];
    match value {
        Some(v) => {
            form.push((question, v.to_owned()));
            form.push(("_action".into(), "answer".into()));
        }
        None => form.push(("_action".into(), "skip".into())),
    }
    browser
        .client
        .post(proxy.url("/.profilegate/profile"))
        .header("accept", "text/html")
        .form(&form)
        .send()
        .await
        .expect("post")
}

/// The question page, which must ask `question`.
pub async fn page(browser: &Browser, proxy: &Proxy, question: &str) -> String {
    let resp = browser
        .navigate(&proxy.url("/.profilegate/profile?rd=%2F"))
        .await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", proxy.log());
    let html = resp.text().await.expect("page");
    assert_eq!(form_value(&html, "_question"), question, "{html}");
    html
}

/// User `i` signs in at `proxy` and follows the script.
pub async fn user(proxy: &Proxy, i: usize) {
    let (bad_company, answer_role, bad_role) = script(i);
    let browser = Browser::new();
    browser
        .login(&proxy.url("/"), &format!("funnel-user-{i}"))
        .await;
    let html = page(&browser, proxy, "company").await;
    let html = if bad_company {
        let refused = post(&browser, proxy, &html, Some("A")).await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
        // The re-render keeps the first showing's stamp.
        let again = refused.text().await.expect("page");
        assert_eq!(form_value(&again, "_shown"), form_value(&html, "_shown"));
        again
    } else {
        html
    };
    let stored = post(&browser, proxy, &html, Some(&format!("Company {i}"))).await;
    assert_eq!(stored.status(), StatusCode::SEE_OTHER, "{}", proxy.log());
    let html = page(&browser, proxy, "role").await;
    if bad_role {
        let refused = post(&browser, proxy, &html, Some("Astronaut")).await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let value = answer_role.then_some("Design");
    let stored = post(&browser, proxy, &html, value).await;
    assert_eq!(stored.status(), StatusCode::SEE_OTHER, "{}", proxy.log());
}

/// Users `range` at `proxy`, ten at a time.
pub async fn run_users(proxy: &Proxy, range: std::ops::Range<usize>) {
    let ids: Vec<usize> = range.collect();
    for chunk in ids.chunks(10) {
        join_all(chunk.iter().map(|i| user(proxy, *i))).await;
    }
}

pub fn admin(proxy: &Proxy, path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", proxy.admin_port)
}

pub async fn stats(proxy: &Proxy) -> Value {
    let resp = http_client()
        .get(admin(proxy, "/admin/stats"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("stats");
    assert_eq!(resp.status(), StatusCode::OK, "{}", proxy.log());
    resp.json().await.expect("json")
}

/// `/admin/stats`' figures: question -> [shown, answered, skipped, invalid].
pub fn figures(stats: &Value) -> BTreeMap<String, [u64; 4]> {
    stats["questions"]
        .as_array()
        .expect("questions")
        .iter()
        .map(|q| {
            assert_eq!(q["version"], 1, "{q}");
            let n = |k: &str| q[k].as_u64().unwrap_or_else(|| panic!("{k} in {q}"));
            (
                q["question"].as_str().expect("id").to_owned(),
                [n("shown"), n("answered"), n("skipped"), n("invalid")],
            )
        })
        .collect()
}

pub fn as_owned(expected: &BTreeMap<&'static str, [u64; 4]>) -> BTreeMap<String, [u64; 4]> {
    expected
        .iter()
        .map(|(k, v)| ((*k).to_owned(), *v))
        .collect()
}

/// The value of the series `name{labels}` in a Prometheus text page.
pub fn series(text: &str, name: &str, labels: &str) -> Option<f64> {
    let prefix = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
}

/// `profilegate stats --config FILE [--json]` on the stopped proxy's configuration.
pub fn cli_stats(proxy: &Proxy, json: bool) -> String {
    let mut cmd = Command::new(binary());
    cmd.arg("stats").arg("--config").arg(&proxy.config_path);
    if json {
        cmd.arg("--json");
    }
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PROFILEGATE_") {
            cmd.env_remove(&name);
        }
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .expect("profilegate stats");
    assert!(
        out.status.success(),
        "profilegate stats failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

/// The dashboard in Chromium: the cards' figures as shown.
pub fn dashboard_in_chromium(proxy: &Proxy) -> Value {
    let chromium = std::env::var_os("TEST_CHROMIUM").unwrap_or_else(|| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "Chromium is not installed at {chromium:?}: run ./tests/run.sh or apt-get install chromium"
    );
    let shot = repo().join("target/test-artifacts/funnel/dashboard.png");
    let config = json!({ "url": admin(proxy, "/admin/"), "token": TOKEN, "screenshot": shot });
    let mut child = Command::new("node")
        .arg(repo().join("tests/browser/dashboard.mjs"))
        .arg(config.to_string())
        .env("TEST_CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node starts");
    // dashboard.mjs stops itself after 60 s; this is the backstop.
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    assert!(
        out.status.success(),
        "dashboard.mjs failed ({}): {}\n--- profilegate log ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        proxy.log()
    );
    if std::env::var("TEST_UPDATE_DOCS").is_ok_and(|v| v == "1") {
        std::fs::copy(&shot, repo().join("docs/dashboard.png")).expect("copy to docs/");
        eprintln!("updated docs/dashboard.png");
    }
    serde_json::from_slice(&out.stdout).expect("dashboard.mjs report")
}
