//! End-to-end: the admin API's user routes on a spawned profilegate (sled store) — off without
//! a token (and said so at start), 401 with a wrong one; import (bad lines reported by number,
//! idempotent), show, export (streamed NDJSON), erase (the upstream sees no answer at the next
//! request, a new login recreates the record); an audit line per action.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::*;

const TOKEN: &str = "abcdefghijklmnopqrstuvwxyz0123456789";

fn admin(proxy: &Proxy, path_and_query: &str) -> String {
    format!("http://127.0.0.1:{}{path_and_query}", proxy.admin_port)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

fn line(issuer: &str, sub: &str, company: &str, revision: u64) -> String {
    json!({
        "issuer": issuer,
        "sub": sub,
        "record": {"v": 1, "answers": {"company": {"value": {"text": company},
            "answered_at": 1_700_000_000u64, "question_version": 1, "source": "user"}},
            "logins": 2, "revision": revision}
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_the_admin_api_is_off_and_says_so() {
    let env = TestEnv::spawned().await;
    let resp = client()
        .get(admin(&env.proxy, "/admin/user?sub=alice"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("admin");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"], "admin_disabled");
    assert!(
        env.proxy.log().contains("the admin API is off"),
        "{}",
        env.proxy.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_imported_shown_exported_and_erased_with_an_audit_line_each() {
    let sections = format!("[admin]\ntoken = \"ops:{TOKEN}\"\n");
    let env = TestEnv::spawned_full("", &sections, json!({})).await;
    let proxy = &env.proxy;
    let issuer = env.op.issuer.clone();
    let http = client();

    // No token, a wrong one: 401 with a JSON body.
    for token in [None, Some("wrong-token-wrong-token-wrong")] {
        let mut req = http.get(admin(proxy, "/admin/user?sub=alice"));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.expect("admin");
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert!(resp.json::<Value>().await.expect("json")["error"].is_string());
    }

    // Import: two good lines, a bad one, one of a newer format, a blank one.
    let body = [
        line(&issuer, "alice", "Imported Corp", 3),
        "{not json SECRET".to_owned(),
        line(&issuer, "bob", "Bob & Co", 1),
        json!({"issuer": issuer, "sub": "carol", "record": {"v": 2}}).to_string(),
        String::new(),
    ]
    .join("\n");
    let import = |body: String| {
        http.post(admin(proxy, "/admin/import"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
    };
    let resp = import(body.clone()).await.expect("import");
    assert_eq!(resp.status(), StatusCode::OK);
    let summary: Value = resp.json().await.expect("json");
    assert_eq!(summary["imported"], 2, "{summary}");
    assert_eq!(summary["unchanged"], 0, "{summary}");
    assert_eq!(summary["rejected_count"], 2, "{summary}");
    assert_eq!(summary["rejected"][0]["line"], 2, "{summary}");
    assert_eq!(summary["rejected"][1]["line"], 4, "{summary}");
    assert!(summary["rejected"][1]["error"]
        .as_str()
        .is_some_and(|e| e.contains("format 2")));
    assert!(!summary.to_string().contains("SECRET"), "{summary}");
    // Idempotent: the same lines again write nothing.
    let again: Value = import(body)
        .await
        .expect("import")
        .json()
        .await
        .expect("json");
    assert_eq!(
        (again["imported"].clone(), again["unchanged"].clone()),
        (json!(0), json!(2))
    );

    // Show: the record as the export line's JSON; unknown: 404 JSON; no sub: 400 JSON.
    let get = |query: &str| {
        http.get(admin(proxy, &format!("/admin/user?{query}")))
            .bearer_auth(TOKEN)
            .send()
    };
    let resp = get("sub=alice").await.expect("show");
    assert_eq!(resp.status(), StatusCode::OK);
    let shown: Value = resp.json().await.expect("json");
    assert_eq!(shown["sub"], "alice");
    assert_eq!(shown["issuer"], issuer.as_str());
    assert_eq!(
        shown["record"]["answers"]["company"]["value"]["text"],
        "Imported Corp"
    );
    assert_eq!(shown["record"]["revision"], 3);
    let resp = get("sub=nobody").await.expect("show");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        resp.json::<Value>().await.expect("json")["error"],
        "not_found"
    );
    let resp = get("issuer=x").await.expect("show");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<Value>().await.expect("json")["error"],
        "bad_request"
    );

    // Alice signs in: the upstream sees her imported answer.
    let browser = env.browser();
    browser.login(&proxy.url("/"), "alice").await;
    let resp = browser.navigate(&proxy.url("/before")).await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", proxy.log());
    assert_eq!(
        env.upstream.last().header("x-profile-company"),
        Some("Imported Corp")
    );

    // Export: every record, one NDJSON line each, streamed (chunked), readable by import.
    let many: String = (0..2500)
        .map(|n| line(&issuer, &format!("user-{n:05}"), "Many", 1) + "\n")
        .collect();
    let summary: Value = import(many)
        .await
        .expect("import")
        .json()
        .await
        .expect("json");
    assert_eq!(summary["imported"], 2500, "{summary}");
    let resp = http
        .get(admin(proxy, "/admin/export"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("export");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/x-ndjson")
    );
    assert!(
        resp.headers().get("content-length").is_none(),
        "streamed, not whole"
    );
    let text = resp.text().await.expect("body");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 2502, "alice, bob and the 2500");
    assert!(lines.iter().all(|l| l["record"]["v"] == 1));
    let alice = lines
        .iter()
        .find(|l| l["sub"] == "alice")
        .expect("alice exported");
    assert_eq!(alice["record"]["logins"], 3, "the login counted");

    // Erase: the next request carries none of her answers; a new login recreates the record.
    let resp = http
        .delete(admin(proxy, "/admin/user?sub=alice"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("erase");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.expect("json")["erased"], true);
    let resp = browser.navigate(&proxy.url("/after")).await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", proxy.log());
    let seen = env.upstream.last();
    assert_eq!(seen.target, "/after");
    assert_eq!(seen.header("x-profile-company"), None, "erased");
    assert_eq!(
        get("sub=alice").await.expect("show").status(),
        StatusCode::NOT_FOUND
    );
    let resp = http
        .delete(admin(proxy, "/admin/user?sub=alice"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("erase");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // Again and again: the store is the truth (no answer comes back from a cache).
    for n in 0..3 {
        browser.navigate(&proxy.url(&format!("/after-{n}"))).await;
        assert_eq!(env.upstream.last().header("x-profile-company"), None);
    }
    let second = env.browser();
    second.login(&proxy.url("/"), "alice").await;
    let shown: Value = get("sub=alice")
        .await
        .expect("show")
        .json()
        .await
        .expect("json");
    assert_eq!(shown["record"]["logins"], 1, "a new record: {shown}");
    assert_eq!(shown["record"]["answers"], json!({}));

    // One audit line per action, naming the token and the user.
    let log = proxy.log();
    let audits: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["target"] == "profilegate::audit")
        .collect();
    let count = |action: &str| audits.iter().filter(|a| a["action"] == action).count();
    assert_eq!(
        count("users.import"),
        3,
        "one per import, not per line:\n{log}"
    );
    assert_eq!(count("users.export"), 1, "{log}");
    assert_eq!(count("user.erase"), 2, "{log}");
    assert!(count("user.show") >= 4, "{log}");
    let erase = audits
        .iter()
        .find(|a| a["action"] == "user.erase")
        .expect("erase audited");
    assert_eq!(erase["who"], "ops");
    assert_eq!(erase["sub"], "alice");
    assert_eq!(erase["outcome"], "erased");
}
