//! `[access]` and `[[routes]]`: what loads, and every error named by its key.

use super::tests::{keys, load, minimal};
use crate::policy::QuestionsMode;

const QUESTION: &str = r#"
[[profiling.questions]]
id = "role"
label = "Role?"
type = "text"
"#;

#[test]
fn access_and_routes_load() {
    let text = format!(
        r#"{}{QUESTION}
[access]
allowed_email_domains = ["Acme.com"]
allowed_emails = ["guest@partner.org"]
allowed_groups = ["staff"]
groups_claim = "realm_access.roles"
require_email_verified = true
allow = 'claims.acr == "mfa" || answers.role == "Engineering"'

[[routes]]
path = "/healthz"
methods = ["GET", "HEAD"]
public = true

[[routes]]
path_regex = "/static/.*"
public = true

[[routes]]
path = "/admin"
allowed_groups = ["admins"]

[[routes]]
path = "/api/"
questions = "skip"
"#,
        minimal()
    );
    let c = load(&text, &[]).expect("valid");
    let p = &c.policy;
    assert_eq!(p.groups_claim, "realm_access.roles");
    assert_eq!(p.access.email_domains, ["acme.com"]);
    assert!(p.access.require_email_verified);
    assert!(p.uses_answers());
    assert!(p.claims().reads("acr") && p.claims().reads("email"));
    let routes = p.routes.routes();
    assert_eq!(routes.len(), 4);
    assert!(routes[0].public && routes[1].public);
    assert_eq!(routes[2].access.groups, ["admins"]);
    assert_eq!(routes[3].questions, QuestionsMode::Skip);
    assert!(p.routes.matches("GET", "/healthz").public);
    assert!(!p.routes.matches("POST", "/healthz").public);
}

#[test]
fn no_policy_is_open() {
    let c = load(&minimal(), &[]).expect("valid");
    assert!(c.policy.is_open());
    assert!(c.policy.routes.is_empty());
    assert_eq!(c.policy.groups_claim, "groups");
}

#[test]
fn every_policy_error_is_named_by_its_key() {
    let text = format!(
        r#"{}{QUESTION}
[access]
allowed_email_domains = ["*.acme.com"]
allowed_emails = ["nobody"]
groups_claim = "a..b"
allow = 'claims.acr =='
colour = "blue"

[[routes]]
path = "/ok"

[[routes]]
path = "healthz"
public = true

[[routes]]
path = "/admin"
allow = 'answers.team == "x"'

[[routes]]
path = "/x"
allow = 'user.admin'

[[routes]]
path = "/a/../b"
methods = ["get"]
questions = "sometimes"

[[routes]]
path_regex = "(unclosed"

[[routes]]
public = true
allowed_groups = ["x"]
path = "/p"

[[routes]]
path = "/q?x=1"
frobnicate = 1
"#,
        minimal()
    );
    let err = load(&text, &[]).expect_err("invalid");
    let got = keys(&err);
    for key in [
        "access.allowed_email_domains[0]",
        "access.allowed_emails[0]",
        "access.groups_claim",
        "access.allow",
        "access.colour",
        "routes[1].path",
        "routes[2].allow",
        "routes[3].allow",
        "routes[4].path",
        "routes[4].methods[0]",
        "routes[4].questions",
        "routes[5].path_regex",
        "routes[6].public",
        "routes[7].path",
        "routes[7].frobnicate",
    ] {
        assert!(got.contains(&key), "missing {key} in {got:?}");
    }
    assert!(!got.iter().any(|k| k.starts_with("routes[0]")), "{got:?}");
    let message = |key: &str| {
        err.0
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.message.clone())
            .unwrap_or_default()
    };
    assert!(message("routes[2].allow").contains("no question has the id `team`"));
    assert!(message("routes[3].allow").contains("unknown variable `user`"));
    assert!(message("access.allow").contains("not a valid expression"));
    assert!(message("routes[4].path").contains("\"/b\""));
}

#[test]
fn routes_cannot_come_from_the_environment() {
    let err = load(&minimal(), &[("PROFILEGATE_ROUTES_PATH", "/x")]).expect_err("refused");
    assert_eq!(keys(&err), ["PROFILEGATE_ROUTES_PATH"]);
    let c = load(
        &minimal(),
        &[("PROFILEGATE_ACCESS_ALLOWED_GROUPS", "staff, admins")],
    )
    .expect("valid");
    assert_eq!(c.policy.access.groups, ["staff", "admins"]);
}
