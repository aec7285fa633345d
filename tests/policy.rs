//! End-to-end: who may pass (`[access]`) and where (`[[routes]]`), against the real test OP
//! with users that differ by e-mail domain, groups claim and verified e-mail; what the upstream
//! received (and that it received nothing for a denied request). The question conditions and
//! timing are in `policy/conditions.rs`; the README's legacy-app example runs in
//! `policy/readme_example.rs`.

mod support;

#[path = "policy/conditions.rs"]
mod conditions;
#[path = "policy/readme_example.rs"]
mod readme_example;

use reqwest::StatusCode;
use serde_json::json;
use support::policy::*;
use support::questions::*;
use support::*;

/// Signs `login` in, starting at `path`, and returns the browser; the callback must send it
/// back to `path` (nothing asked at this login).
async fn signed_in(env: &TestEnv, login: &str, path: &str) -> Browser {
    let browser = env.browser();
    let callback = browser.login(&env.proxy.url(path), login).await;
    assert_eq!(
        callback.status(),
        StatusCode::FOUND,
        "{login}'s callback; OP: {}",
        env.op.stderr()
    );
    assert_eq!(
        location(&callback),
        env.proxy.url(path),
        "{login}'s login returns to {path}"
    );
    browser
}

/// Navigates to `path` and asserts the upstream received it, for `login`.
async fn assert_forwarded(env: &TestEnv, browser: &Browser, login: &str, path: &str) -> Recorded {
    let before = env.upstream.count();
    let resp = browser.navigate(&env.proxy.url(path)).await;
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    assert_eq!(
        (status, env.upstream.count()),
        (StatusCode::OK, before + 1),
        "{login} at {path}: {}",
        excerpt(&body)
    );
    let seen = env.upstream.last();
    assert_eq!(seen.target, path, "{login}: what the upstream received");
    assert_eq!(
        seen.header_values("x-forwarded-user"),
        [login],
        "{login}: {seen:?}"
    );
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_verified_addresses_of_the_allowed_domain_pass() {
    let access = "\n[access]\nallowed_email_domains = [\"acme.com\"]\n";
    let users = op_users(
        json!({
            "alice": { "email": "alice@acme.com" },
            "mallory": { "email": "mallory@acme.com", "email_verified": false },
        }),
        &[],
    );
    let env = TestEnv::start_full("", access, users).await;

    let alice = signed_in(&env, "alice", "/app").await;
    let seen = assert_forwarded(&env, &alice, "alice", "/app").await;
    assert_eq!(seen.header("x-forwarded-email"), Some("alice@acme.com"));

    // bob@example.com: another domain. mallory@acme.com: the OP has not verified it (her page
    // may show her own address, so only bob's is checked for the domain).
    for (login, internals) in [("bob", &["acme.com"][..]), ("mallory", &[][..])] {
        let browser = signed_in(&env, login, "/app").await;
        assert_denied(&env, &browser, "/app", internals).await;
        assert_denied(&env, &browser, "/other/page?x=1", internals).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_read_from_a_nested_keycloak_claim_and_sent_upstream() {
    let access = r#"
[access]
allowed_groups = ["staff"]
groups_claim = "realm_access.roles"
"#;
    let users = op_users(
        json!({
            "carol": { "realm_access": { "roles": ["staff", "Zoë"] } },
            "dave": { "realm_access": { "roles": ["guest"] } },
            // A top-level `groups` claim is not the configured one.
            "erin": { "groups": ["staff"] },
        }),
        &["realm_access", "groups"],
    );
    let env = TestEnv::start_full("", access, users).await;

    let carol = signed_in(&env, "carol", "/app").await;
    let seen = assert_forwarded(&env, &carol, "carol", "/app").await;
    assert_eq!(
        seen.header_values("x-forwarded-groups"),
        ["staff,Zo%C3%AB"],
        "the groups, comma-joined, each encoded as answers are"
    );

    for login in ["dave", "erin"] {
        let browser = signed_in(&env, login, "/app").await;
        assert_denied(&env, &browser, "/app", &["staff"]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_groups_claim_and_a_verified_address_are_both_required() {
    let access = r#"
[access]
allowed_groups = ["staff", "ops"]
require_email_verified = true
"#;
    let users = op_users(
        json!({
            "frank": { "groups": ["staff"] },
            "gina": { "groups": ["staff"], "email_verified": false },
            "hank": { "groups": ["sales"] },
        }),
        &["groups"],
    );
    let env = TestEnv::start_full("", access, users).await;

    let frank = signed_in(&env, "frank", "/app").await;
    // The client's own X-Forwarded-Groups never reaches the upstream.
    let before = env.upstream.count();
    let resp = frank
        .client
        .get(env.proxy.url("/app/data"))
        .header("accept", "text/html")
        .header("x-forwarded-groups", "admins")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(env.upstream.count(), before + 1);
    assert_eq!(
        env.upstream.last().header_values("x-forwarded-groups"),
        ["staff"],
        "only the OP's groups"
    );

    for login in ["gina", "hank"] {
        let browser = signed_in(&env, login, "/app").await;
        assert_denied(&env, &browser, "/app", &["staff", "ops"]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allow_expression_reads_claims_and_the_request_method() {
    let sections = r#"
[access]
allow = 'claims.acr == "mfa"'

[[routes]]
path = "/reports"
allow = 'request.method == "GET" || "writers" in groups'
"#;
    let users = op_users(
        json!({
            "ivan": { "acr": "mfa", "groups": ["readers"] },
            "kate": { "acr": "mfa", "groups": ["writers"] },
            // No acr claim at all: the expression cannot be evaluated, so it is false.
            "judy": { "groups": ["writers"] },
        }),
        &["acr", "groups"],
    );
    let env = TestEnv::start_full("", sections, users).await;

    let ivan = signed_in(&env, "ivan", "/app").await;
    assert_forwarded(&env, &ivan, "ivan", "/app").await;
    assert_forwarded(&env, &ivan, "ivan", "/reports").await;
    // A POST to /reports by a reader: 403 JSON, nothing upstream.
    let before = env.upstream.count();
    let post = ivan
        .client
        .post(env.proxy.url("/reports"))
        .header("accept", "application/json")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("post");
    let status = post.status();
    let body = post.text().await.unwrap_or_default();
    assert_eq!(status, StatusCode::FORBIDDEN, "ivan POST /reports: {body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    assert_eq!(json["error"], "access_denied", "{body}");
    assert_eq!(
        env.upstream.count(),
        before,
        "a denied POST reached the upstream"
    );

    let kate = signed_in(&env, "kate", "/app").await;
    let before = env.upstream.count();
    let post = kate
        .client
        .post(env.proxy.url("/reports"))
        .header("accept", "application/json")
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(post.status(), StatusCode::OK, "a writer may POST /reports");
    assert_eq!(env.upstream.count(), before + 1);
    assert_eq!(env.upstream.last().method, "POST");

    let judy = signed_in(&env, "judy", "/app").await;
    assert_denied(&env, &judy, "/app", &["acr", "mfa"]).await;
    assert_denied(&env, &judy, "/reports", &["acr", "mfa", "writers"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_route_is_reached_without_a_session_while_its_neighbour_is_protected() {
    let sections = format!(
        "{}{}",
        r#"
[[routes]]
path = "/healthz"
public = true
"#,
        profiling(&[], &[company()])
    );
    let env = TestEnv::start_full("", &sections, json!({})).await;

    // No cookie at all, and identity headers the client made up: stripped.
    for path in ["/healthz", "/healthz/ready?verbose=1"] {
        let before = env.upstream.count();
        let resp = http_client()
            .get(env.proxy.url(path))
            .header("x-forwarded-user", "admin")
            .header("x-forwarded-groups", "admins")
            .header("x-forwarded-email", "admin@example.com")
            .send()
            .await
            .expect("anonymous request");
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        assert_eq!(
            (status, env.upstream.count()),
            (StatusCode::OK, before + 1),
            "anonymous {path}: {}",
            excerpt(&body)
        );
        let seen = env.upstream.last();
        assert_eq!(seen.target, path);
        for header in [
            "x-forwarded-user",
            "x-forwarded-groups",
            "x-forwarded-email",
            "x-profile-jwt",
        ] {
            assert_eq!(
                seen.header(header),
                None,
                "anonymous {path}: {header} reached the upstream: {seen:?}"
            );
        }
    }

    // The neighbours are not public: a navigation goes to the OP, an API call gets 401.
    let before = env.upstream.count();
    let browser = env.browser();
    for path in ["/healthzx", "/app", "/HEALTHZ"] {
        let nav = browser.navigate(&env.proxy.url(path)).await;
        assert_eq!(
            nav.status(),
            StatusCode::FOUND,
            "anonymous navigation to {path}"
        );
        assert!(
            location(&nav).starts_with(&env.op.issuer),
            "{path} redirects to the OP: {}",
            location(&nav)
        );
        let api = http_client()
            .get(env.proxy.url(path))
            .header("accept", "application/json")
            .send()
            .await
            .expect("api");
        assert_eq!(
            api.status(),
            StatusCode::UNAUTHORIZED,
            "anonymous API {path}"
        );
    }
    assert_eq!(
        env.upstream.count(),
        before,
        "a protected path was forwarded"
    );

    // Signed in with a required question pending: the public route asks nothing and carries
    // the identity; the neighbour asks.
    let alice = env.browser();
    let callback = alice.login(&env.proxy.url("/app"), "alice").await;
    assert!(location(&callback).contains("/.profilegate/profile"));
    let seen = assert_forwarded(&env, &alice, "alice", "/healthz").await;
    assert_eq!(seen.header("x-forwarded-email"), Some("alice@example.com"));
    let nav = alice.navigate(&env.proxy.url("/app")).await;
    assert_eq!(nav.status(), StatusCode::SEE_OTHER, "the question first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_reach_admin_and_staff_get_403() {
    let routes = r#"
[[routes]]
path = "/admin"
allowed_groups = ["admins"]
"#;
    let users = op_users(
        json!({
            "root": { "groups": ["admins"] },
            "staff1": { "groups": ["staff"] },
        }),
        &["groups"],
    );
    let env = TestEnv::start_full("", routes, users).await;

    let root = signed_in(&env, "root", "/admin").await;
    for path in ["/admin", "/admin/users"] {
        let seen = assert_forwarded(&env, &root, "root", path).await;
        assert_eq!(seen.header_values("x-forwarded-groups"), ["admins"]);
    }

    let staff = signed_in(&env, "staff1", "/app").await;
    assert_forwarded(&env, &staff, "staff1", "/app").await;
    for path in ["/admin", "/admin/users", "/ADMIN", "/administrator"] {
        assert_denied(&env, &staff, path, &["admins"]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_paths_are_never_blocked_by_a_pending_question() {
    let sections = format!(
        "{}{}",
        r#"
[[routes]]
path = "/api/"
questions = "skip"
"#,
        profiling(&[], &[company()])
    );
    let env = TestEnv::start_full("", &sections, json!({})).await;
    let alice = env.browser();
    let callback = alice.login(&env.proxy.url("/app"), "alice").await;
    assert!(
        location(&callback).contains("/.profilegate/profile"),
        "the required question is asked at login: {}",
        location(&callback)
    );

    // The app's API: forwarded, with the identity.
    let before = env.upstream.count();
    let api = alice
        .client
        .get(env.proxy.url("/api/x"))
        .header("accept", "application/json")
        .send()
        .await
        .expect("api");
    let status = api.status();
    let body = api.text().await.unwrap_or_default();
    assert_eq!(
        (status, env.upstream.count()),
        (StatusCode::OK, before + 1),
        "GET /api/x with a required question pending: {}",
        excerpt(&body)
    );
    assert_eq!(env.upstream.last().target, "/api/x");
    assert_eq!(
        env.upstream.last().header("x-forwarded-user"),
        Some("alice")
    );

    // The app's pages still wait for the answer.
    let nav = alice.navigate(&env.proxy.url("/app")).await;
    assert_eq!(nav.status(), StatusCode::SEE_OTHER);
    assert!(location(&nav).contains("/.profilegate/profile?rd=%2Fapp"));
    let other = alice
        .client
        .get(env.proxy.url("/app/data"))
        .header("accept", "application/json")
        .send()
        .await
        .expect("api");
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = other.json().await.unwrap_or_default();
    assert_eq!(body["error"], "profile_incomplete", "{body}");
    assert_eq!(
        env.upstream.count(),
        before + 1,
        "only /api/x was forwarded"
    );
}
