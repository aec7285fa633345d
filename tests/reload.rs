//! Configuration reload without a restart, on the real binary (real OP, echo upstream): SIGHUP
//! and `POST /admin/reload` re-read the file; new requests see the new questions, routes and
//! access rules; an invalid file keeps the running configuration and logs every error by key;
//! a restart-only key is reported and not applied; and under load (wrk), twenty reloads cost
//! no request an error.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::questions::*;
use support::*;

const ADMIN_TOKEN: &str = "reload-test-token-0123456789abcdef";
const NEW_LABEL: &str = "Name the firm that employs you";

/// The appended sections: a public `/open` route (or not), `/team` for `team_email` only, the
/// company question with `label`, and the admin token.
fn sections(open_is_public: bool, team_email: &str, label: &str) -> String {
    let open = if open_is_public {
        "[[routes]]\npath = \"/open\"\npublic = true\n"
    } else {
        ""
    };
    format!(
        "{open}\n[[routes]]\npath = \"/team\"\nquestions = \"skip\"\nallowed_emails = [\"{team_email}\"]\n\
         {}\n[admin]\ntoken = \"{ADMIN_TOKEN}\"\n",
        profiling(
            &[],
            &[Question::new("company", label, "text").with("required", "true")]
        )
    )
}

/// Replaces the configuration file's `from` text by `to` (a rename: a reload never reads half a
/// file).
fn rewrite(proxy: &Proxy, from: &str, to: &str) {
    let text = std::fs::read_to_string(&proxy.config_path).expect("configuration");
    assert!(text.contains(from), "{from} is not in\n{text}");
    let next = proxy.dir.path().join("next.toml");
    std::fs::write(&next, text.replace(from, to)).expect("new configuration written");
    std::fs::rename(&next, &proxy.config_path).expect("configuration replaced");
}

/// How many times the log says `needle`.
fn count(proxy: &Proxy, needle: &str) -> usize {
    proxy.log().matches(needle).count()
}

/// Sends SIGHUP and waits until the log has one more `needle` than `before` (10 s at most).
fn hangup_until(proxy: &Proxy, needle: &str, before: usize) {
    let pid = proxy_pid(proxy);
    let sent = Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill -HUP {pid}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(proxy, needle) <= before {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} within 10 s of SIGHUP:\n{}",
            proxy.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The profilegate process's id.
fn proxy_pid(proxy: &Proxy) -> String {
    proxy
        .pid()
        .expect("the proxy runs as a process")
        .to_string()
}

async fn admin_reload(proxy: &Proxy, token: Option<&str>) -> (StatusCode, Value) {
    let mut request = http_client().post(format!(
        "http://127.0.0.1:{}/admin/reload",
        proxy.admin_port
    ));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("admin reload");
    let status = response.status();
    let body = response.json().await.expect("JSON answer");
    (status, body)
}

/// The question page's HTML for `browser`.
async fn question_page(browser: &Browser, proxy: &Proxy) -> String {
    let page = browser
        .navigate(&proxy.url("/.profilegate/profile?rd=%2F"))
        .await;
    assert_eq!(page.status(), StatusCode::OK, "{}", proxy.log());
    page.text().await.expect("question page")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_and_admin_reload_apply_questions_routes_and_rules_and_refuse_bad_files() {
    let before = sections(true, "nobody@example.com", COMPANY_LABEL);
    let env = TestEnv::spawned_full("", &before, json!({})).await;
    let proxy = &env.proxy;
    let anonymous = env.browser();

    // Before: /open is public, /team is not for alice, the question has its first label.
    let open = anonymous.navigate(&proxy.url("/open")).await;
    assert_eq!(open.status(), StatusCode::OK, "{}", proxy.log());
    let alice = env.browser();
    alice.login(&proxy.url("/"), "alice").await;
    assert!(question_page(&alice, proxy).await.contains(COMPANY_LABEL));
    let team = alice.navigate(&proxy.url("/team")).await;
    assert_eq!(team.status(), StatusCode::FORBIDDEN, "{}", proxy.log());

    // SIGHUP with a new label, /open no longer public, /team for alice.
    let after = sections(false, "alice@example.com", NEW_LABEL);
    rewrite(proxy, &before, &after);
    hangup_until(proxy, "configuration reloaded", 0);
    let page = question_page(&alice, proxy).await;
    assert!(
        page.contains(NEW_LABEL) && !page.contains(COMPANY_LABEL),
        "{page}"
    );
    let open = anonymous.navigate(&proxy.url("/open")).await;
    assert_eq!(open.status(), StatusCode::FOUND, "sign-in needed now");
    let team = alice.navigate(&proxy.url("/team")).await;
    assert_eq!(team.status(), StatusCode::OK, "{}", proxy.log());

    // An invalid file: every error logged by key, the running configuration kept.
    let invalid =
        after.replace("path = \"/team\"", "path = \"team\"") + "\n[theme]\nbogus_key = 1\n";
    rewrite(proxy, &after, &invalid);
    let refused = count(proxy, "configuration reload refused");
    hangup_until(proxy, "configuration reload refused", refused);
    let log = proxy.log();
    for key in ["theme.bogus_key", "routes[0].path"] {
        assert!(
            log.contains(&format!("\"key\":\"{key}\"")),
            "{key} not logged:\n{log}"
        );
    }
    assert!(question_page(&alice, proxy).await.contains(NEW_LABEL));
    let team = alice.navigate(&proxy.url("/team")).await;
    assert_eq!(team.status(), StatusCode::OK, "the old rules still apply");
    // The same file through the admin API: 422 and every error by key.
    let (status, report) = admin_reload(proxy, Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{report}");
    assert_eq!(report["applied"], false, "{report}");
    let keys: Vec<&str> = report["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["key"].as_str())
        .collect();
    assert!(
        keys.contains(&"theme.bogus_key") && keys.contains(&"routes[0].path"),
        "{report}"
    );

    // No token: 401, nothing reloaded.
    let (status, _) = admin_reload(proxy, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A restart-only key (server.threads) with a reloadable one (the label back): the label is
    // applied, the key reported and not applied.
    let text = std::fs::read_to_string(&proxy.config_path).expect("configuration");
    let fixed = text
        .replace("threads = 2", "threads = 3")
        .replace("\n[theme]\nbogus_key = 1\n", "")
        .replace("path = \"team\"", "path = \"/team\"")
        .replace(NEW_LABEL, COMPANY_LABEL);
    std::fs::write(proxy.dir.path().join("next.toml"), fixed).expect("write");
    std::fs::rename(proxy.dir.path().join("next.toml"), &proxy.config_path).expect("rename");
    let (status, report) = admin_reload(proxy, Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{report}\n{}", proxy.log());
    assert_eq!(report["applied"], true, "{report}");
    assert_eq!(
        report["needs_restart"],
        json!(["server.threads"]),
        "{report}"
    );
    assert!(question_page(&alice, proxy).await.contains(COMPANY_LABEL));
    let log = proxy.log();
    assert!(
        log.contains("\"key\":\"server.threads\"") && log.contains("needs a restart"),
        "{log}"
    );
    assert!(
        log.contains("\"action\":\"reload\"") && log.contains("profilegate::audit"),
        "no audit line:\n{log}"
    );
    // The proxy still serves on the gates the reload built.
    for _ in 0..4 {
        let resp = alice.navigate(&proxy.url("/team")).await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
}

/// wrk's report: requests done, and the error lines it prints only when there are errors.
struct WrkReport {
    requests: u64,
    non_success: u64,
    socket_errors: u64,
}

fn parse_wrk(output: &str) -> WrkReport {
    // The numbers after the colon, summed ("connect 0, read 2, write 0, timeout 1": 3).
    let number = |line: &str| -> u64 {
        let counts = line.rsplit_once(':').map_or("", |(_, counts)| counts);
        counts
            .split(|c: char| !c.is_ascii_digit())
            .filter(|part| !part.is_empty())
            .map(|part| part.parse::<u64>().unwrap_or(0))
            .sum()
    };
    let requests = output
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count in wrk's report:\n{output}"));
    let non_success = output
        .lines()
        .find(|l| l.contains("Non-2xx or 3xx responses"))
        .map_or(0, number);
    let socket_errors = output
        .lines()
        .find(|l| l.contains("Socket errors"))
        .map_or(0, number);
    WrkReport {
        requests,
        non_success,
        socket_errors,
    }
}

#[test]
fn wrk_reports_are_parsed() {
    let clean = "Running 5s test @ http://127.0.0.1:1/open\n  2 threads and 16 connections\n  \
                 12345 requests in 5.00s, 1.2MB read\nRequests/sec:   2469.00\n";
    let report = parse_wrk(clean);
    assert_eq!(
        (report.requests, report.non_success, report.socket_errors),
        (12345, 0, 0)
    );
    let bad = format!(
        "{clean}  Socket errors: connect 0, read 2, write 0, timeout 1\n  Non-2xx or 3xx responses: 7\n"
    );
    let report = parse_wrk(&bad);
    assert_eq!((report.non_success, report.socket_errors), (7, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_reload_an_admin_erase_still_reaches_the_new_gates_caches() {
    // The company question optional, so alice reaches the upstream with or without an answer.
    let before = sections(true, "nobody@example.com", COMPANY_LABEL)
        .replace("required = true", "required = false");
    let env = TestEnv::spawned_full("", &before, json!({})).await;
    let proxy = &env.proxy;
    let admin = |path: &str| format!("http://127.0.0.1:{}{path}", proxy.admin_port);
    let http = http_client();
    let line = json!({
        "issuer": env.op.issuer,
        "sub": "alice",
        "record": {"v": 1, "answers": {"company": {"value": {"text": "Kept Corp"},
            "answered_at": 1_700_000_000u64, "question_version": 1, "source": "user"}},
            "revision": 1}
    });
    let imported = http
        .post(admin("/admin/import"))
        .bearer_auth(ADMIN_TOKEN)
        .body(line.to_string())
        .send()
        .await
        .expect("import");
    assert_eq!(imported.status(), StatusCode::OK, "{}", proxy.log());

    let alice = env.browser();
    alice.login(&proxy.url("/"), "alice").await;
    let seen = alice.navigate(&proxy.url("/before")).await;
    assert_eq!(seen.status(), StatusCode::OK, "{}", proxy.log());
    assert_eq!(
        env.upstream.last().header("x-profile-company"),
        Some("Kept Corp")
    );

    // Reload: new gates, new caches. They must still hear of an erase.
    let after = before.replace(COMPANY_LABEL, NEW_LABEL);
    rewrite(proxy, &before, &after);
    hangup_until(proxy, "configuration reloaded", 0);
    alice.navigate(&proxy.url("/cached")).await;
    assert_eq!(
        env.upstream.last().header("x-profile-company"),
        Some("Kept Corp"),
        "the new gate caches her profile"
    );
    let erased = http
        .delete(admin("/admin/user?sub=alice"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("erase");
    assert_eq!(erased.status(), StatusCode::OK, "{}", proxy.log());
    let next = alice.navigate(&proxy.url("/after")).await;
    assert_eq!(next.status(), StatusCode::OK, "{}", proxy.log());
    let last = env.upstream.last();
    assert_eq!(last.target, "/after");
    assert_eq!(
        last.header("x-profile-company"),
        None,
        "erased answers are gone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_reloads_under_load_cost_no_request_an_error() {
    let first = sections(true, "nobody@example.com", COMPANY_LABEL);
    let second = sections(true, "alice@example.com", NEW_LABEL);
    let env = TestEnv::spawned_full("", &first, json!({})).await;
    let proxy = &env.proxy;
    let url = proxy.url("/open");
    let warm = env.browser().navigate(&url).await;
    assert_eq!(warm.status(), StatusCode::OK, "{}", proxy.log());

    let seconds = 6;
    let wrk = Command::new("wrk")
        .args([
            "-t2",
            "-c16",
            &format!("-d{seconds}s"),
            "--timeout",
            "10s",
            &url,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("wrk runs (tests/run.sh installs it)");
    // Twenty reloads spread over the run, alternating the two files.
    std::thread::sleep(Duration::from_millis(500));
    let (mut current, mut other) = (first.as_str(), second.as_str());
    for reload in 0..20 {
        rewrite(proxy, current, other);
        hangup_until(proxy, "configuration reloaded", reload);
        std::mem::swap(&mut current, &mut other);
        std::thread::sleep(Duration::from_millis(200));
    }
    let deadline = Instant::now() + Duration::from_secs(seconds + 20);
    let mut wrk = wrk;
    let status = loop {
        if let Some(status) = wrk.try_wait().expect("wrk") {
            break status;
        }
        assert!(Instant::now() < deadline, "wrk did not end");
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = wrk.wait_with_output().expect("wrk output");
    let report_text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        status.success(),
        "wrk failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = parse_wrk(&report_text);
    assert_eq!(
        count(proxy, "configuration reloaded"),
        20,
        "{}",
        proxy.log()
    );
    assert!(report.requests > 100, "{report_text}");
    assert_eq!(report.non_success, 0, "{report_text}\n{}", proxy.log());
    assert_eq!(report.socket_errors, 0, "{report_text}");
    eprintln!("{report_text}");
}
