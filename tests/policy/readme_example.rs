//! The README's "Protect a legacy app" configuration, taken from the README as written and run
//! against the test OP: public `/healthz` and `/static/`, `/admin` for the `admins` group,
//! `acme.com` staff only, and a second question only for engineers.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::policy::*;
use crate::support::*;

/// The first ```toml block under the README heading "### Protect a legacy app", without its
/// `[upstream]` table (the test harness writes that one).
fn readme_example() -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let section = readme
        .split("### Protect a legacy app")
        .nth(1)
        .expect("the README has a \"### Protect a legacy app\" section");
    let block = section
        .split("```toml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a ```toml block in that section");
    let mut toml = String::new();
    let mut in_upstream = false;
    for line in block.lines() {
        if line.starts_with('[') {
            in_upstream = line.trim() == "[upstream]";
        }
        if !in_upstream {
            toml.push_str(line);
            toml.push('\n');
        }
    }
    assert!(
        toml.contains("[[routes]]") && toml.contains("when ="),
        "not the legacy-app example:\n{toml}"
    );
    toml
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_legacy_app_example_does_what_the_readme_says() {
    let users = op_users(
        json!({
            "eng": { "email": "eng@acme.com", "realm_access": { "roles": ["admins"] } },
            "sam": { "email": "sam@acme.com", "realm_access": { "roles": ["staff"] } },
        }),
        &["realm_access"],
    );
    let env = TestEnv::start_full("", &readme_example(), users).await;

    // Public without a session; /admin and the app are not.
    for path in ["/healthz", "/static/app.css"] {
        let before = env.upstream.count();
        let resp = http_client()
            .get(env.proxy.url(path))
            .send()
            .await
            .expect("get");
        assert_eq!(resp.status(), StatusCode::OK, "anonymous {path}");
        assert_eq!(env.upstream.count(), before + 1, "anonymous {path}");
    }
    let before = env.upstream.count();
    for path in ["/admin", "/app", "/healthz/..;/admin"] {
        let resp = raw::request(env.proxy.port, "GET", path, &[]).await;
        assert_eq!(resp.status, 401, "anonymous {path}: {resp:?}");
    }
    assert_eq!(env.upstream.count(), before);

    // eng: the role at login 1 (Engineering), /admin, then the team size at login 2.
    let eng = Browser::new();
    let callback = eng.login(&env.proxy.url("/admin"), "eng").await;
    assert!(
        location(&callback).contains("/.profilegate/profile"),
        "the role is asked first: {}",
        location(&callback)
    );
    let done = answer(&eng, &env, "/admin", "role", &[("role", "Engineering")]).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let resp = eng.navigate(&env.proxy.url("/admin")).await;
    assert_eq!(resp.status(), StatusCode::OK, "an admin at /admin");
    assert_eq!(
        env.upstream.last().header("x-profile-role"),
        Some("Engineering")
    );
    let eng = Browser::new();
    let callback = eng.login(&env.proxy.url("/app"), "eng").await;
    assert!(location(&callback).contains("/.profilegate/profile"));
    let page = question_page(&eng, &env, "/app").await;
    assert!(
        page.contains("How many people are on your team?"),
        "{}",
        excerpt(&page)
    );

    // sam: Sales, no /admin, never the team size.
    let sam = Browser::new();
    sam.login(&env.proxy.url("/app"), "sam").await;
    answer(&sam, &env, "/app", "role", &[("role", "Sales")]).await;
    assert_eq!(
        sam.navigate(&env.proxy.url("/app")).await.status(),
        StatusCode::OK
    );
    assert_denied(&env, &sam, "/admin", &["admins", "realm_access"]).await;
    let sam = Browser::new();
    let callback = sam.login(&env.proxy.url("/app"), "sam").await;
    assert_eq!(
        location(&callback),
        env.proxy.url("/app"),
        "nothing more for sam"
    );

    // bob@example.com: not staff.
    let bob = Browser::new();
    bob.login(&env.proxy.url("/app"), "bob").await;
    assert_denied(&env, &bob, "/app", &["acme.com"]).await;
}
