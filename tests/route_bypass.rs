//! End-to-end: no spelling of a request target widens access (issue 17, "Routes"). A generated
//! corpus of request targets — protected paths reached from public prefixes through encoded
//! slashes, backslashes, dot segments, `;` parameters, case, `?`/`#` and their escapes, double
//! slashes and the query — is sent over a raw socket to the real gate (`/healthz` and `/static/`
//! public, `/admin` for the group `admins`), anonymously and as a signed-in non-admin, and what
//! the echo upstream received is checked against every reading a server behind the gate could
//! make of the path.

#[path = "route_bypass/corpus.rs"]
mod corpus;
mod support;

use std::collections::BTreeMap;

use corpus::*;
use reqwest::StatusCode;
use serde_json::json;
use support::raw::{self, RawResponse};
use support::*;

/// The configuration under test: two public prefixes, and `/admin` for admins only.
const ROUTES: &str = r#"
[[routes]]
path = "/healthz"
public = true

[[routes]]
path = "/static/"
public = true

[[routes]]
path = "/admin"
allowed_groups = ["admins"]
"#;

/// `root` is an admin, `staff1` is signed in but not one.
fn op_users() -> serde_json::Value {
    json!({
        "claims": {
            "root": { "groups": ["admins"] },
            "staff1": { "groups": ["staff"] },
        },
        "extra_scope_claims": { "profile": ["groups"] },
    })
}

/// One target's fate at the gate.
struct Sent {
    target: String,
    status: u16,
    /// The target the upstream received, when the request was forwarded.
    upstream: Option<String>,
    /// The spoofed identity headers that reached the upstream.
    spoofed: Vec<String>,
}

/// Sends every target in turn (one connection each) with `headers`, and notes what the
/// upstream received for it.
async fn send_all(env: &TestEnv, targets: &[String], headers: &[(String, String)]) -> Vec<Sent> {
    let mut sent = Vec::with_capacity(targets.len());
    for target in targets {
        let before = env.upstream.count();
        let resp: RawResponse = raw::request(env.proxy.port, "GET", target, headers).await;
        let received = env.upstream.requests();
        assert!(
            received.len() <= before + 1,
            "{target}: the upstream received {} requests for one",
            received.len() - before
        );
        let forwarded = received.get(before);
        sent.push(Sent {
            target: target.clone(),
            status: resp.status,
            upstream: forwarded.map(|r| r.target.clone()),
            spoofed: forwarded
                .map(|r| {
                    [
                        "x-forwarded-user",
                        "x-forwarded-groups",
                        "x-forwarded-email",
                    ]
                    .iter()
                    .flat_map(|name| r.header_values(name))
                    .map(str::to_owned)
                    .collect()
                })
                .unwrap_or_default(),
        });
    }
    sent
}

/// How many targets were forwarded and refused, by status: for a failure message.
fn tally(sent: &[Sent]) -> String {
    let mut forwarded: BTreeMap<u16, usize> = BTreeMap::new();
    let mut refused: BTreeMap<u16, usize> = BTreeMap::new();
    for s in sent {
        let counts = match s.upstream {
            Some(_) => &mut forwarded,
            None => &mut refused,
        };
        *counts.entry(s.status).or_default() += 1;
    }
    format!(
        "{} targets; forwarded by status {forwarded:?}; refused by status {refused:?}",
        sent.len()
    )
}

/// Fails with every violation (the first 40 in full) and the tally.
fn assert_none(what: &str, violations: &[String], sent: &[Sent]) {
    assert!(
        violations.is_empty(),
        "{what}: {} violations ({})\n{}",
        violations.len(),
        tally(sent),
        violations
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

async fn env() -> TestEnv {
    TestEnv::start_full("", ROUTES, op_users()).await
}

/// The session cookie of `login`, signed in through the OP.
async fn session_cookie(env: &TestEnv, login: &str) -> String {
    let browser = env.browser();
    let callback = browser.login(&env.proxy.url("/app/home"), login).await;
    assert_eq!(
        callback.status(),
        StatusCode::FOUND,
        "{login}'s callback; OP: {}",
        env.op.stderr()
    );
    browser.cookies_for(&env.proxy.origin)
}

#[test]
fn the_corpus_has_at_least_500_targets_and_reaches_every_protected_path() {
    let targets = corpus();
    assert!(targets.len() >= 500, "only {} targets", targets.len());
    for base in PROTECTED {
        let reaching = targets
            .iter()
            .filter(|t| lenient(path_of(t)).starts_with(base))
            .count();
        assert!(reaching >= 100, "only {reaching} targets reach {base}");
    }
    // The oracle itself: the readings the invariants rely on.
    assert_eq!(lenient("/healthz/..;/admin"), "/admin");
    assert_eq!(lenient("/static%252F..%252Fadmin"), "/admin");
    assert_eq!(lenient("/HEALTHZ\\..\\App/Secret"), "/app/secret");
    assert!(strictly_public("/healthz"));
    assert!(strictly_public("/static/app.css"));
    assert!(!strictly_public("/healthzx"));
    assert!(!strictly_public("/HEALTHZ"));
    assert!(!strictly_public("/static"));
    assert!(!strictly_public("/healthz;x/../admin"));
    assert!(!strictly_public("/static/%2e%2e%2Fadmin"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_target_of_the_corpus_reaches_a_protected_path_anonymously() {
    let env = env().await;
    let targets = corpus();
    assert!(targets.len() >= 500, "only {} targets", targets.len());
    // A client that claims to be someone: the claim must never reach the upstream.
    let spoof = vec![
        ("X-Forwarded-User".to_owned(), "root".to_owned()),
        ("X-Forwarded-Groups".to_owned(), "admins".to_owned()),
        (
            "X-Forwarded-Email".to_owned(),
            "root@example.com".to_owned(),
        ),
    ];
    let sent = send_all(&env, &targets, &spoof).await;
    let mut violations = Vec::new();
    for s in &sent {
        let Some(received) = &s.upstream else {
            continue;
        };
        let path = path_of(received);
        let protected: Vec<String> = readings(path)
            .into_iter()
            .filter(|r| is_protected(r))
            .collect();
        if !strictly_public(path) || !protected.is_empty() {
            violations.push(format!(
                "{:?} -> {} and the upstream received {received:?} (not strictly public, or read as {protected:?})",
                s.target, s.status
            ));
        }
        if !s.spoofed.is_empty() {
            violations.push(format!(
                "{:?} -> {}: the client's identity headers reached the upstream: {:?}",
                s.target, s.status, s.spoofed
            ));
        }
    }
    assert_none("anonymous", &violations, &sent);
    // Not everything was refused: the public paths in the corpus were served.
    let served = sent.iter().filter(|s| s.upstream.is_some()).count();
    assert!(
        served > 0,
        "nothing was forwarded, not even /healthz ({})",
        tally(&sent)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_target_of_the_corpus_reaches_admin_as_a_signed_in_non_admin() {
    let env = env().await;
    let cookie = session_cookie(&env, "staff1").await;
    let headers = vec![("Cookie".to_owned(), cookie)];
    let targets = corpus();
    let sent = send_all(&env, &targets, &headers).await;
    let mut violations = Vec::new();
    for s in &sent {
        let Some(received) = &s.upstream else {
            continue;
        };
        let reading = lenient(path_of(received));
        if reading.starts_with("/admin") {
            violations.push(format!(
                "{:?} -> {} and the upstream received {received:?} (read leniently as {reading:?})",
                s.target, s.status
            ));
        }
    }
    assert_none("signed in as staff1 (not in admins)", &violations, &sent);
    // The session works: the user's own paths are served.
    let served = sent
        .iter()
        .filter(|s| {
            s.upstream
                .as_deref()
                .is_some_and(|t| t.starts_with("/app/"))
        })
        .count();
    assert!(
        served > 0,
        "no /app/ path was forwarded for a signed-in user ({})",
        tally(&sent)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_paths_are_served_and_an_admin_reaches_admin() {
    let env = env().await;
    // Anonymous: the public paths reach the upstream as they are, with no identity.
    for target in [
        "/healthz",
        "/healthz/live",
        "/static/app.css",
        "/healthz?probe=1",
    ] {
        let before = env.upstream.count();
        let resp = raw::request(env.proxy.port, "GET", target, &[]).await;
        let received = env.upstream.requests();
        assert_eq!(
            (resp.status, received.len()),
            (200, before + 1),
            "{target}: anonymous, public: {resp:?}"
        );
        let seen = &received[before];
        assert_eq!(seen.target, target, "{target}: what the upstream received");
        assert_eq!(seen.header("x-forwarded-user"), None, "{target}: {seen:?}");
    }
    // Anonymous: the protected paths are not served.
    for target in ["/admin", "/app/secret", "/static", "/healthzx"] {
        let before = env.upstream.count();
        let resp = raw::request(env.proxy.port, "GET", target, &[]).await;
        assert!(
            resp.status == 401 || resp.status == 302,
            "{target}: anonymous: {resp:?}"
        );
        assert_eq!(
            env.upstream.count(),
            before,
            "{target}: forwarded anonymously"
        );
    }

    // The admin reaches /admin and below; the non-admin gets 403 there.
    let admin = vec![("Cookie".to_owned(), session_cookie(&env, "root").await)];
    let staff = vec![("Cookie".to_owned(), session_cookie(&env, "staff1").await)];
    for target in ["/admin", "/admin/users", "/ADMIN/users"] {
        let before = env.upstream.count();
        let resp = raw::request(env.proxy.port, "GET", target, &admin).await;
        assert_eq!(resp.status, 200, "{target} as root: {resp:?}");
        assert_eq!(env.upstream.count(), before + 1, "{target} as root");
        assert_eq!(env.upstream.last().header("x-forwarded-user"), Some("root"));
        let resp = raw::request(env.proxy.port, "GET", target, &staff).await;
        assert_eq!(
            resp.status,
            403,
            "{target} as staff1: {resp:?} {}",
            String::from_utf8_lossy(&resp.body)
        );
        assert_eq!(env.upstream.count(), before + 1, "{target} as staff1");
    }
}

/// [`ROUTES`] as the configuration compiles it (the gate's own loading, minus the listeners).
fn route_table() -> profilegate::policy::RouteTable {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("profilegate.toml");
    let toml = format!(
        "[upstream]\nurl = \"http://127.0.0.1:3000\"\n\
         [oidc]\nissuer = \"http://127.0.0.1:9\"\nclient_id = \"{CLIENT_ID}\"\n\
         client_secret = \"{CLIENT_SECRET}\"\n\
         [session]\nsecret = \"{SESSION_SECRET}\"\n\
         [store]\npath = \"data\"\n{ROUTES}"
    );
    std::fs::write(&path, toml).expect("write the configuration");
    let no_env: &[(&str, &str)] = &[];
    let config = profilegate::config::Config::load(&path, no_env)
        .unwrap_or_else(|errors| panic!("the routes are refused: {errors:?}"));
    config.policy.routes
}

/// The same corpus through the policy alone (`policy::normalize`, `policy::RouteTable`), as
/// the gate applies it: which targets the upstream would receive, and in what form. Runs
/// without the OP, so a failure here points at the policy rather than the gate's wiring.
#[test]
fn the_route_table_alone_keeps_both_invariants_for_every_target() {
    use profilegate::policy::normalize;
    let table = route_table();
    let mut anonymous = Vec::new();
    let mut staff = Vec::new();
    for target in corpus() {
        let path = path_of(&target);
        let received = normalize(path);
        let matched = table.matches("GET", &received);
        if matched.public {
            let protected: Vec<String> = readings(&received)
                .into_iter()
                .filter(|r| is_protected(r))
                .collect();
            if !strictly_public(&received) || !protected.is_empty() {
                anonymous.push(format!("{target:?} public as {received:?} ({protected:?})"));
            }
        }
        let admin_rule = matched.rules().any(|i| i == 2);
        if !admin_rule && lenient(&received).starts_with("/admin") {
            staff.push(format!(
                "{target:?} -> {received:?}: read leniently as {:?}, and the /admin rule does not apply",
                lenient(&received)
            ));
        }
    }
    assert!(
        anonymous.is_empty() && staff.is_empty(),
        "anonymous: {} violations\n{}\nnon-admin: {} violations\n{}",
        anonymous.len(),
        anonymous.join("\n"),
        staff.len(),
        staff.join("\n")
    );
}

/// A server behind the gate decodes a path once (most do), or not at all, before it routes it:
/// `/admin/%252e%252e/healthz` is, to it, the segment `%2e%2e` under `/admin/` (an app's
/// `/admin/*` handler or admin router runs), and `/admin%2F..%2Fhealthz` starts with `/admin`.
/// Only the fully decoded reading resolves either to `/healthz`. The `/admin` rule must apply
/// whenever any of these readings is under `/admin`, not only the last one.
#[test]
fn every_decoding_of_a_path_under_admin_stays_under_the_admin_rule() {
    use profilegate::policy::normalize;
    let table = route_table();
    let mut escaped = Vec::new();
    for target in corpus() {
        let received = normalize(path_of(&target));
        let admin_rule = table.matches("GET", &received).rules().any(|i| i == 2);
        let under_admin: Vec<String> = readings(&received)
            .into_iter()
            .filter(|r| r.starts_with("/admin"))
            .collect();
        if !admin_rule && !under_admin.is_empty() {
            escaped.push(format!(
                "{target:?}: the upstream would receive {received:?}, read as {under_admin:?} \
                 (decoded 0, 1, ... times), and the /admin rule does not apply"
            ));
        }
    }
    assert!(
        escaped.is_empty(),
        "{} targets escape the /admin rule for a non-admin; the first 20:\n{}",
        escaped.len(),
        escaped[..escaped.len().min(20)].join("\n")
    );
}
