//! Request ids and the access log (issue 18, item 6): `X-Request-Id` is kept from a trusted
//! proxy when sane and generated otherwise, reaches the upstream (replacing the client's),
//! comes back on every answer of the proxy, and is on every log line of its request; with
//! `log.access = true` each request gets one `profilegate::access` line, without its query.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::questions::{company, profiling};
use support::*;

/// A public prefix (forwarded without a session) and the access log.
const PUBLIC_AND_ACCESS: &str = r#"
[[routes]]
path = "/pub/"
public = true

[log]
level = "info"
format = "json"
access = true
"#;

/// The same without `log.access`.
const PUBLIC_ONLY: &str = r#"
[[routes]]
path = "/pub/"
public = true
"#;

const TRUSTED: &str = "trusted_proxies = [\"127.0.0.0/8\"]";

/// The log's JSON lines.
fn lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The request id a log line carries: its top-level field.
fn line_id(line: &Value) -> Option<&str> {
    line["request_id"].as_str()
}

/// Every line of the log names `request_id` at most once (JSON readers keep one of two).
fn assert_no_duplicate_ids(log: &str) {
    for line in log.lines() {
        assert!(
            line.matches("\"request_id\"").count() <= 1,
            "a duplicate request_id: {line}"
        );
    }
}

/// The access lines of the log.
fn access_lines(log: &str) -> Vec<Value> {
    lines(log)
        .into_iter()
        .filter(|l| l["target"] == "profilegate::access")
        .collect()
}

/// The `X-Request-Id` of a response (exactly one).
fn response_id(resp: &reqwest::Response) -> String {
    let values: Vec<_> = resp.headers().get_all("x-request-id").iter().collect();
    assert_eq!(
        values.len(),
        1,
        "one X-Request-Id on a {} answer: {values:?}",
        resp.status()
    );
    values[0].to_str().expect("ASCII").to_owned()
}

fn is_generated(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The access line of the request `id` (exactly one).
fn access_line_of(log: &str, id: &str) -> Value {
    let found: Vec<Value> = access_lines(log)
        .into_iter()
        .filter(|l| l["request_id"] == id)
        .collect();
    assert_eq!(found.len(), 1, "one access line for {id}:\n{log}");
    found.into_iter().next().expect("one line")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxys_id_reaches_the_upstream_comes_back_and_is_logged() {
    let env = TestEnv::start_full(TRUSTED, PUBLIC_AND_ACCESS, json!({})).await;
    let client = http_client();
    let id = "lb-1.example:8080/42_a+b=c@d";
    let resp = client
        .get(env.proxy.url("/pub/page?code=SECRET-CODE-1&x=1"))
        .header("x-request-id", id)
        .header("x-forwarded-for", "198.51.100.7")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(response_id(&resp), id);
    assert_eq!(env.upstream.last().header_values("x-request-id"), vec![id]);

    let log = env.proxy.log();
    assert_no_duplicate_ids(&log);
    let line = access_line_of(&log, id);
    assert_eq!(line_id(&line), Some(id), "{line}");
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["path"], "/pub/page", "never the query: {line}");
    assert_eq!(line["status"], 200);
    assert_eq!(line["outcome"], "public");
    assert_eq!(line["client"], "198.51.100.7", "as the trusted proxy says");
    assert!(
        line["duration_ms"].as_f64().is_some_and(|ms| ms >= 0.0),
        "{line}"
    );
    assert!(line["bytes"].as_u64().is_some_and(|b| b > 0), "{line}");
    assert!(
        line.get("sub").is_none_or(Value::is_null),
        "anonymous: {line}"
    );
    assert!(
        !log.contains("SECRET-CODE-1"),
        "no query in the log:\n{log}"
    );

    // From the same trusted proxy, an id that is not sane is replaced.
    let too_long = "a".repeat(129);
    for bad in ["two words", "quote\"d", "a,b", "", too_long.as_str()] {
        let resp = client
            .get(env.proxy.url("/pub/page"))
            .header("x-request-id", bad)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), StatusCode::OK);
        let got = response_id(&resp);
        assert!(is_generated(&got), "{bad:?} replaced by a new id: {got}");
        assert_eq!(env.upstream.last().header_values("x-request-id"), vec![got]);
    }
    // Two ids are not one: replaced too.
    let resp = client
        .get(env.proxy.url("/pub/page"))
        .header("x-request-id", "first")
        .header("x-request-id", "second")
        .send()
        .await
        .expect("request");
    let got = response_id(&resp);
    assert!(is_generated(&got), "{got}");
    assert_eq!(env.upstream.last().header_values("x-request-id"), vec![got]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_clients_id_is_replaced_everywhere() {
    let env = TestEnv::start_full("", PUBLIC_AND_ACCESS, json!({})).await;
    let resp = http_client()
        .get(env.proxy.url("/pub/page"))
        .header("x-request-id", "client-chosen")
        .header("x-forwarded-for", "198.51.100.7")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    let id = response_id(&resp);
    assert!(is_generated(&id), "{id}");
    assert_eq!(
        env.upstream.last().header_values("x-request-id"),
        vec![id.as_str()]
    );
    let log = env.proxy.log();
    assert!(!log.contains("client-chosen"), "{log}");
    let line = access_line_of(&log, &id);
    assert_eq!(
        line["client"], "127.0.0.1",
        "the peer, not its claim: {line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_ids_are_unique_over_many_requests() {
    let env = TestEnv::start_full("", PUBLIC_ONLY, json!({})).await;
    let client = http_client();
    let mut ids = HashSet::new();
    for round in 0..50 {
        let requests = (0..20).map(|i| {
            client
                .get(env.proxy.url(&format!("/pub/{round}/{i}")))
                .send()
        });
        for resp in futures_util::future::join_all(requests).await {
            let resp = resp.expect("request");
            assert_eq!(resp.status(), StatusCode::OK);
            let id = response_id(&resp);
            assert!(is_generated(&id), "{id}");
            assert!(ids.insert(id.clone()), "{id} given twice");
        }
    }
    assert_eq!(ids.len(), 1000);
    let upstream: HashSet<String> = env
        .upstream
        .requests()
        .iter()
        .filter_map(|r| r.header("x-request-id").map(str::to_owned))
        .collect();
    assert_eq!(upstream, ids, "the upstream saw the ids the clients got");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_of_the_proxy_carries_an_id_and_its_access_line() {
    let sections = format!("{PUBLIC_AND_ACCESS}{}", profiling(&[], &[company()]));
    let env = TestEnv::start_full("", &sections, json!({})).await;
    let client = http_client();
    let mut seen = Vec::new();

    // A navigation without a session: the redirect to the OP.
    let browser = env.browser();
    let resp = browser
        .navigate(&env.proxy.url("/private?token=SECRET-2"))
        .await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    seen.push((response_id(&resp), 302, "login"));
    let op_url = location(&resp);

    // An API call without a session: 401 JSON.
    let resp = client
        .get(env.proxy.url("/private"))
        .header("accept", "application/json")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    seen.push((response_id(&resp), 401, "unauthenticated"));

    // Refused at the edge: a control byte in the path.
    let resp = client
        .get(env.proxy.url("/pub/a%00b"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    seen.push((response_id(&resp), 400, "refused"));

    // An unknown route of the proxy's own: 404.
    let resp = client
        .get(env.proxy.url("/.profilegate/no-such-page"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    seen.push((response_id(&resp), 404, "not_found"));

    // A state-changing request from another origin: 403 JSON.
    let resp = client
        .post(env.proxy.url("/.profilegate/logout"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    seen.push((response_id(&resp), 403, "refused"));

    // Signed in, with a required question: the callback's redirect, then the question page.
    let callback = browser.sign_in_from(op_url, "alice").await;
    let resp = browser.navigate(&callback).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    seen.push((response_id(&resp), 302, "login"));
    // To the page the user wanted, which asks the question first (redirects on the way).
    let mut next = absolute(&callback, &location(&resp));
    let mut redirects = 0;
    let resp = loop {
        let resp = browser.navigate(&next).await;
        if resp.status() != StatusCode::FOUND {
            break resp;
        }
        redirects += 1;
        assert!(redirects < 4, "redirected on and on: {next}");
        seen.push((response_id(&resp), 302, "question"));
        next = absolute(&next, &location(&resp));
    };
    assert_eq!(resp.status(), StatusCode::OK, "{next}");
    let question_id = response_id(&resp);
    seen.push((question_id.clone(), 200, "question"));
    assert!(resp.text().await.expect("page").contains("company"));

    let mut ids = HashSet::new();
    let log = env.proxy.log();
    for (id, status, outcome) in &seen {
        assert!(is_generated(id), "{id}");
        assert!(ids.insert(id.clone()), "{id} twice");
        let line = access_line_of(&log, id);
        assert_eq!(line["status"], *status, "{line}");
        assert_eq!(line["outcome"], *outcome, "{line}");
    }
    let question = access_line_of(&log, &question_id);
    assert_eq!(question["sub"], "alice", "the signed-in user: {question}");
    assert!(!log.contains("SECRET-2"), "no query in the log:\n{log}");
    assert!(!log.contains("code="), "no query in the log:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_upstream_answers_502_with_an_id() {
    let (listener, _port) = bind_gate();
    // Nothing listens on a port just freed.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let mut proxy = start_gate_full(
        listener,
        "http://127.0.0.1:9/unused",
        &dead,
        "",
        "",
        PUBLIC_AND_ACCESS,
        false,
    )
    .await;
    let resp = http_client()
        .get(proxy.url("/pub/page"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    let id = response_id(&resp);
    assert!(is_generated(&id), "{id}");
    let log = proxy.log();
    let line = access_line_of(&log, &id);
    assert_eq!(line["outcome"], "upstream_unavailable", "{line}");
    let failed: Vec<Value> = lines(&log)
        .into_iter()
        .filter(|l| l["message"] == "request failed")
        .collect();
    assert_eq!(failed.len(), 1, "{log}");
    assert_eq!(line_id(&failed[0]), Some(id.as_str()), "{log}");
    proxy.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_lines_appear_only_with_log_access() {
    let env = TestEnv::start_full("", PUBLIC_ONLY, json!({})).await;
    for path in ["/pub/a?code=x", "/private", "/.profilegate/no-such-page"] {
        let resp = http_client()
            .get(env.proxy.url(path))
            .send()
            .await
            .expect("request");
        response_id(&resp);
    }
    let log = env.proxy.log();
    assert!(access_lines(&log).is_empty(), "{log}");
    // The 404 is still logged ("request refused"), with its id.
    let refused: Vec<Value> = lines(&log)
        .into_iter()
        .filter(|l| l["message"] == "request refused")
        .collect();
    assert!(!refused.is_empty(), "{log}");
    assert!(
        refused.iter().all(|l| line_id(l).is_some_and(is_generated)),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_line_of_a_failing_callback_has_its_id() {
    let env = TestEnv::start_full("", PUBLIC_AND_ACCESS, json!({})).await;
    let callback = env.proxy.url("/.profilegate/callback");
    for (case, params) in [
        (
            "the OP's error",
            vec![
                ("error", "server_error"),
                ("error_description", "marker-op-description"),
            ],
        ),
        ("a code the OP never issued", vec![("code", "forged-code")]),
    ] {
        let browser = env.browser();
        let first = browser.navigate(&env.proxy.url("/docs")).await;
        assert_eq!(first.status(), StatusCode::FOUND);
        let state = query(&location(&first))["state"].clone();
        let mut params = params;
        params.push(("state", &state));
        let url = url::Url::parse_with_params(&callback, &params).expect("url");

        let before = env.proxy.log().len();
        let resp = browser.navigate(url.as_str()).await;
        assert!(
            resp.status().is_client_error() || resp.status().is_server_error(),
            "{case}"
        );
        let id = response_id(&resp);
        // Lines of this request only (the gate logs nothing else meanwhile).
        let log = env.proxy.log();
        let new = lines(&log[before..]);
        assert!(
            new.len() >= 2,
            "{case}: the failure and the access line:\n{log}"
        );
        for line in &new {
            assert_eq!(line_id(line), Some(id.as_str()), "{case}: {line}");
        }
        assert_no_duplicate_ids(&log);
        assert!(
            new.iter()
                .any(|l| l["target"] != "profilegate::access" && l["level"] != "DEBUG"),
            "{case}: the failure itself is logged:\n{log}"
        );
        access_line_of(&log, &id);
    }
    assert!(env.proxy.log().contains("marker-op-description"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_upgrade_has_an_id_and_one_access_line() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let env = TestEnv::start_full("", PUBLIC_AND_ACCESS, json!({})).await;
    let (mut ws, resp) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/pub/ws", env.proxy.port))
            .await
            .expect("websocket upgrade");
    assert_eq!(resp.status(), 101);
    let id = resp
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("X-Request-Id on the 101")
        .to_owned();
    assert!(is_generated(&id), "{id}");
    for i in 0..3 {
        ws.send(Message::text(format!("hello {i}")))
            .await
            .expect("send");
        let echoed = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("echo in time");
        assert!(echoed.is_some());
    }
    ws.close(None).await.ok();
    let line = access_line_of(&env.proxy.log(), &id);
    assert_eq!(line["status"], 101);
    assert_eq!(line["path"], "/pub/ws");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binarys_json_log_has_the_id_on_every_line_of_a_request() {
    // The process, as deployed: its log is written by main.rs's init_logging.
    let env = TestEnv::spawned_full("", PUBLIC_AND_ACCESS, json!({})).await;
    let startup = env.proxy.log();
    let resp = http_client()
        .get(env.proxy.url("/.profilegate/no-such-page?state=SECRET-3"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let id = response_id(&resp);
    assert!(is_generated(&id), "{id}");
    // The access line is written before the response: it is in the file by now.
    let log = env.proxy.log();
    let of_request: Vec<Value> = lines(&log)
        .into_iter()
        .filter(|l| l.to_string().contains(&id))
        .collect();
    assert_eq!(of_request.len(), 2, "refused and access:\n{log}");
    for line in &of_request {
        assert_eq!(line_id(line), Some(id.as_str()), "{line}");
        assert!(line.get("span").is_none(), "no request span: {line}");
    }
    assert_no_duplicate_ids(&log);
    // Lines outside a request (start-up) have no id.
    let outside: Vec<Value> = lines(&startup)
        .into_iter()
        .filter(|l| l["target"] != "profilegate::access")
        .collect();
    assert!(!outside.is_empty(), "start-up lines:\n{startup}");
    assert!(
        outside.iter().all(|l| l.get("request_id").is_none()),
        "{startup}"
    );
    assert_eq!(of_request[0]["message"], "request refused");
    assert_eq!(of_request[1]["target"], "profilegate::access");
    assert_eq!(of_request[1]["path"], "/.profilegate/no-such-page");
    assert!(!log.contains("SECRET-3"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_lines_are_kept_when_the_level_drops_info() {
    let sections = r#"
[[routes]]
path = "/pub/"
public = true

[log]
level = "warn"
access = true
"#;
    let env = TestEnv::start_full("", sections, json!({})).await;
    let resp = http_client()
        .get(env.proxy.url("/.profilegate/no-such-page"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let id = response_id(&resp);
    let log = env.proxy.log();
    let line = access_line_of(&log, &id);
    assert_eq!(line["status"], 404);
    assert_eq!(line_id(&line), Some(id.as_str()), "{line}");
    assert!(
        !log.contains("request refused"),
        "the info line of the 404 is filtered out:\n{log}"
    );
}
