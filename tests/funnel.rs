//! The question funnel end to end: 50 users sign in at the real test OP and, on the hosted
//! question page, answer, skip and submit invalid answers in known numbers. The figures must
//! be exactly those in `/metrics`, `GET /admin/stats` and the dashboard (read in headless
//! Chromium, which also takes `docs/dashboard.png` when `TEST_UPDATE_DOCS=1`), and in
//! `profilegate stats`; the store's totals survive a restart (sled). On PostgreSQL
//! (`PG_TEST_URL`), two replicas' figures add up in the store.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::funnel::*;
use support::questions::*;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_scripted_users_add_up_in_metrics_admin_json_dashboard_and_cli_and_survive_a_restart()
{
    let started = Instant::now();
    let mut env = TestEnv::spawned_full("", &sections(), json!({})).await;
    run_users(&env.proxy, 0..50).await;
    let want = expected(0..50);
    assert_eq!(want["company"], [50, 50, 0, 10]);
    assert_eq!(want["role"], [50, 25, 25, 5]);

    // /metrics: this process's counters, exactly.
    let metrics = http_client()
        .get(admin(&env.proxy, "/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for (q, [shown, answered, skipped, invalid]) in &want {
        let labels = format!("question=\"{q}\",version=\"1\"");
        for (name, value) in [
            ("profilegate_question_shown_total", shown),
            ("profilegate_question_answered_total", answered),
            ("profilegate_question_skipped_total", skipped),
            ("profilegate_question_invalid_total", invalid),
            // Every hosted-page answer is timed (its form carries the stamp).
            ("profilegate_question_answer_seconds_count", answered),
        ] {
            assert_eq!(
                series(&metrics, name, &labels),
                Some(*value as f64),
                "{name}{{{labels}}} in\n{metrics}"
            );
        }
        let inf = format!("{labels},le=\"+Inf\"");
        assert_eq!(
            series(&metrics, "profilegate_question_answer_seconds_bucket", &inf),
            Some(*answered as f64)
        );
    }
    assert!(
        !metrics.contains("funnel-user") && !metrics.contains("Company "),
        "no user data in the metrics"
    );

    // The admin JSON: the store's totals (this replica's pending figures flushed first).
    let unauthenticated = http_client()
        .get(admin(&env.proxy, "/admin/stats"))
        .send()
        .await
        .expect("stats");
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    let stats_before = stats(&env.proxy).await;
    assert_eq!(figures(&stats_before), as_owned(&want), "{stats_before}");
    let by_id = |s: &Value, id: &str| {
        s["questions"]
            .as_array()
            .and_then(|qs| qs.iter().find(|q| q["question"] == id).cloned())
            .expect("question")
    };
    assert_eq!(by_id(&stats_before, "company")["completion_rate"], 1.0);
    assert_eq!(by_id(&stats_before, "role")["completion_rate"], 0.5);
    assert_eq!(by_id(&stats_before, "company")["timed_answers"], 50);
    assert!(by_id(&stats_before, "company")["median_answer_seconds"].is_f64());

    // The dashboard, as Chromium shows it (JavaScript off): the same figures.
    let report = tokio::task::block_in_place(|| dashboard_in_chromium(&env.proxy));
    assert_eq!(report["status"], 200, "{report}");
    let csp = report["csp"].as_str().unwrap_or_default();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "the hosted pages' CSP: {csp}"
    );
    let cards = report["cards"].as_array().expect("cards");
    assert_eq!(cards.len(), 2, "{report}");
    for card in cards {
        let id = card["question"].as_str().expect("id");
        let json = by_id(&stats_before, id);
        for key in ["shown", "answered", "skipped", "invalid", "timed_answers"] {
            assert_eq!(
                card[key].as_str(),
                Some(json[key].to_string().as_str()),
                "{id} {key}: {card}"
            );
        }
        let rate = json["completion_rate"].as_f64().expect("rate");
        assert_eq!(
            card["completion_rate"].as_str(),
            Some(format!("{:.1} %", rate * 100.0).as_str())
        );
        let median = json["median_answer_seconds"].as_f64().expect("median");
        assert_eq!(
            card["median_answer_seconds"].as_str(),
            Some(format!("{median:.1} s").as_str())
        );
        assert_eq!(card["bars"], 4, "one bar per figure: {card}");
    }

    // A restart: the process's counters start again, the store's totals stay.
    env.proxy.restart().await;
    let metrics = http_client()
        .get(admin(&env.proxy, "/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        !metrics.contains("profilegate_question_shown_total{"),
        "{metrics}"
    );
    let stats_after = stats(&env.proxy).await;
    assert_eq!(stats_after, stats_before, "the totals survive a restart");

    // profilegate stats on the stopped proxy's store: the same figures.
    assert!(
        env.proxy
            .signal_and_wait("TERM", Duration::from_secs(10))
            .is_some(),
        "profilegate did not stop:\n{}",
        env.proxy.log()
    );
    let cli: Value = serde_json::from_str(&cli_stats(&env.proxy, true)).expect("stats --json");
    assert_eq!(cli, stats_before);
    let table = cli_stats(&env.proxy, false);
    let company = table
        .lines()
        .find(|l| l.starts_with("company "))
        .unwrap_or_else(|| panic!("no company row in\n{table}"));
    let cells: Vec<&str> = company.split_whitespace().collect();
    assert_eq!(
        &cells[..6],
        ["company", "1", "50", "50", "0", "10"],
        "{table}"
    );
    assert_eq!(&cells[6..8], ["100.0", "%"], "{table}");
    eprintln!("funnel test took {:.1} s", started.elapsed().as_secs_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgresql_add_up_in_the_store() {
    let Some(store) = support::pg::pg_store("funnel").await else {
        return;
    };
    let sections = format!("{}\n{store}", sections());
    let env = TestEnv::spawned_full("", &sections, json!({})).await;
    let replica_b = start_proxy_with(
        free_port(),
        &env.op.issuer,
        &env.upstream.url(),
        "",
        &sections,
        true,
    )
    .await;
    // The OP knows only A's callback: B's users sign in through A's login and share the
    // session cookie (same session.secret), as behind a load balancer.
    run_users(&env.proxy, 0..10).await;
    let browsers_b = async {
        for i in 10..20 {
            let (bad_company, answer_role, bad_role) = script(i);
            let browser = Browser::new();
            browser
                .login(&env.proxy.url("/"), &format!("funnel-user-{i}"))
                .await;
            // The same cookie on B's origin (another port, same host: cookies ignore ports).
            let html = page(&browser, &replica_b, "company").await;
            let html = if bad_company {
                let refused = post(&browser, &replica_b, &html, Some("A")).await;
                assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
                refused.text().await.expect("page")
            } else {
                html
            };
            let stored = post(&browser, &replica_b, &html, Some("Company B")).await;
            assert_eq!(
                stored.status(),
                StatusCode::SEE_OTHER,
                "{}",
                replica_b.log()
            );
            let html = page(&browser, &replica_b, "role").await;
            if bad_role {
                let refused = post(&browser, &replica_b, &html, Some("Astronaut")).await;
                assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
            }
            let stored = post(&browser, &replica_b, &html, answer_role.then_some("Design")).await;
            assert_eq!(
                stored.status(),
                StatusCode::SEE_OTHER,
                "{}",
                replica_b.log()
            );
        }
    };
    browsers_b.await;
    // B's figures reach the store within its flush interval (about a second); A's own are
    // flushed by the request. Both replicas then report the same totals: the sum.
    let want = as_owned(&expected(0..20));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (a, b) = (
            figures(&stats(&env.proxy).await),
            figures(&stats(&replica_b).await),
        );
        if a == want && b == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the replicas' totals do not add up: A {a:?}, B {b:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_api_counts_pending_as_shown_and_its_answers_untimed() {
    let env = TestEnv::spawned_full("", &sections(), json!({})).await;
    let browser = env.browser();
    browser.login(&env.proxy.url("/"), "api-user").await;
    let api = |path: &str| env.proxy.url(&format!("/.profilegate/api/{path}"));
    let pending: Value = browser
        .client
        .get(api("pending"))
        .header("accept", "application/json")
        .send()
        .await
        .expect("pending")
        .json()
        .await
        .expect("json");
    assert_eq!(
        pending["pending"].as_array().map(Vec::len),
        Some(2),
        "{pending}"
    );
    let csrf = pending["csrf_token"].as_str().expect("csrf").to_owned();
    let post = |body: Value| {
        browser
            .client
            .post(api("answers"))
            .header("accept", "application/json")
            .header("x-profilegate-csrf", &csrf)
            .json(&body)
            .send()
    };
    // An unknown id is refused too, and counted for no question (only configured ones).
    let refused = post(json!({ "answers": { "company": "A", "nosuch": "x" } }))
        .await
        .expect("post");
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let stored = post(json!({ "answers": { "company": "Acme" }, "skip": ["role"] }))
        .await
        .expect("post");
    assert_eq!(stored.status(), StatusCode::OK, "{}", env.proxy.log());

    let metrics = http_client()
        .get(admin(&env.proxy, "/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let company = "question=\"company\",version=\"1\"";
    let role = "question=\"role\",version=\"1\"";
    for (name, labels, value) in [
        ("profilegate_question_shown_total", company, 1.0),
        ("profilegate_question_shown_total", role, 1.0),
        ("profilegate_question_invalid_total", company, 1.0),
        ("profilegate_question_answered_total", company, 1.0),
        ("profilegate_question_skipped_total", role, 1.0),
        ("profilegate_question_answer_seconds_count", company, 0.0),
    ] {
        assert_eq!(
            series(&metrics, name, labels),
            Some(value),
            "{name}{{{labels}}} in\n{metrics}"
        );
    }
    assert!(!metrics.contains("nosuch"), "{metrics}");
    let totals = stats(&env.proxy).await;
    assert_eq!(
        figures(&totals),
        BTreeMap::from([
            ("company".to_owned(), [1, 1, 0, 1]),
            ("role".to_owned(), [1, 0, 1, 0])
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_custom_ui_counts_its_token_as_shown_and_times_answers_from_its_iat() {
    let form = format!("http://127.0.0.1:{}/", free_port());
    let sections = format!(
        "{}\n[admin]\ntoken = \"ops:{TOKEN}\"\n",
        profiling(
            &[
                "questions_per_login = 2",
                r#"ui = "redirect""#,
                &format!("redirect_url = {form:?}"),
            ],
            &[company(), role(&["Engineering", "Design"])],
        )
    );
    let env = TestEnv::spawned_full("", &sections, json!({})).await;
    let browser = env.browser();
    // The callback sends the user to the form with a token: both questions shown.
    let callback = browser.login(&env.proxy.url("/"), "ui-user").await;
    let to_form = location(&callback);
    assert!(to_form.starts_with(&form), "{to_form}");
    let post_back = |to_form: String, fields: Vec<(&'static str, &'static str)>| {
        let token = query(&to_form)["token"].clone();
        let state = headers::jws_claims(&token)["state"]
            .as_str()
            .expect("state")
            .to_owned();
        let mut form = vec![("token", token), ("state", state)];
        form.extend(fields.into_iter().map(|(k, v)| (k, v.to_owned())));
        browser
            .client
            .post(env.proxy.url("/.profilegate/continue"))
            .form(&form)
            .send()
    };
    // Refused: back to the form with a new token (not counted as shown again).
    let refused = post_back(to_form, vec![("company", "A"), ("role", "Design")])
        .await
        .expect("post back");
    assert_eq!(refused.status(), StatusCode::SEE_OTHER);
    let again = location(&refused);
    assert!(again.starts_with(&form), "back to the form: {again}");
    let stored = post_back(again, vec![("company", "Acme"), ("skip", "role")])
        .await
        .expect("post back");
    assert_eq!(
        stored.status(),
        StatusCode::SEE_OTHER,
        "{}",
        env.proxy.log()
    );
    assert!(
        location(&stored).contains("/.profilegate/continue"),
        "stored"
    );

    let metrics = http_client()
        .get(admin(&env.proxy, "/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let company = "question=\"company\",version=\"1\"";
    let role = "question=\"role\",version=\"1\"";
    for (name, labels, value) in [
        ("profilegate_question_shown_total", company, 1.0),
        ("profilegate_question_shown_total", role, 1.0),
        ("profilegate_question_invalid_total", company, 1.0),
        ("profilegate_question_invalid_total", role, 0.0),
        ("profilegate_question_answered_total", company, 1.0),
        ("profilegate_question_skipped_total", role, 1.0),
        // Timed from the token's iat (whole seconds): within the first buckets.
        ("profilegate_question_answer_seconds_count", company, 1.0),
    ] {
        assert_eq!(
            series(&metrics, name, labels),
            Some(value),
            "{name}{{{labels}}} in\n{metrics}"
        );
    }
    let le2 = format!("{company},le=\"2\"");
    assert_eq!(
        series(&metrics, "profilegate_question_answer_seconds_bucket", &le2),
        Some(1.0),
        "{metrics}"
    );
}
