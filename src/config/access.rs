//! `[access]` (who may pass at all) and `[[routes]]` (rules per path), read into the
//! compiled [`Policy`]: every expression is compiled here, so `check` reports a syntax error,
//! an unknown variable or an answer no question gives with its key (`routes[2].allow: ...`).

use toml::Value;

use super::reader::SectionReader;
use crate::policy::{
    normalize, AccessRule, Expr, PathPattern, Policy, QuestionsMode, Route, RouteTable, Scope,
};

/// The keys an access rule has, in `[access]` and in every route.
const RULE_KEYS: &str =
    "allowed_email_domains, allowed_emails, allowed_groups, require_email_verified, allow";

/// Reads `[access]` and the raw `routes` array into the policy. `is_question` tells which
/// answer ids exist (for `answers.x` in `allow`).
pub(super) fn read_policy(
    mut access: SectionReader<'_>,
    routes: Option<Value>,
    is_question: &dyn Fn(&str) -> bool,
) -> Option<Policy> {
    let errors_before = access.error_count();
    let groups_claim = access
        .string("groups_claim")
        .unwrap_or_else(|| "groups".into());
    if groups_claim.trim().is_empty() || groups_claim.split('.').any(str::is_empty) {
        access.error(
            "groups_claim",
            format!("{groups_claim:?} is not a claim path: use a claim name or dotted path such as \"realm_access.roles\""),
        );
    }
    let rule = read_rule(&mut access, is_question);
    let routes = read_routes(&mut access, routes, is_question);
    let clean = access.error_count() == errors_before;
    access.finish();
    clean.then_some(())?;
    Some(Policy {
        access: rule?,
        routes: routes?,
        groups_claim,
    })
}

/// The simple keys and `allow` of one rule.
fn read_rule(r: &mut SectionReader<'_>, is_question: &dyn Fn(&str) -> bool) -> Option<AccessRule> {
    let before = r.error_count();
    let lower = |list: Option<Vec<String>>| -> Vec<String> {
        list.unwrap_or_default()
            .into_iter()
            .map(|s| s.trim().to_ascii_lowercase())
            .collect()
    };
    let email_domains = lower(r.string_list("allowed_email_domains"));
    for (i, domain) in email_domains.iter().enumerate() {
        if domain.is_empty()
            || domain.contains('@')
            || domain.starts_with('.')
            || domain.contains('*')
        {
            r.error(
                &format!("allowed_email_domains[{i}]"),
                format!("{domain:?} is not a domain: write it as \"acme.com\" (exact, no wildcards; list each subdomain)"),
            );
        }
    }
    let emails = lower(r.string_list("allowed_emails"));
    for (i, email) in emails.iter().enumerate() {
        if email.split('@').count() != 2 || email.starts_with('@') || email.ends_with('@') {
            r.error(
                &format!("allowed_emails[{i}]"),
                format!("{email:?} is not an e-mail address"),
            );
        }
    }
    let groups = r.string_list("allowed_groups").unwrap_or_default();
    if groups.iter().any(|g| g.is_empty()) {
        r.error("allowed_groups", "a group name is empty");
    }
    let require_email_verified = r.boolean("require_email_verified").unwrap_or(false);
    let allow = r.string("allow").and_then(|source| {
        match Expr::compile(&source, Scope::Access, is_question) {
            Ok(expr) => Some(expr),
            Err(message) => {
                r.error("allow", message);
                None
            }
        }
    });
    (r.error_count() == before).then_some(AccessRule {
        email_domains,
        emails,
        groups,
        require_email_verified,
        allow,
    })
}

/// `[[routes]]`, in order.
fn read_routes(
    access: &mut SectionReader<'_>,
    raw: Option<Value>,
    is_question: &dyn Fn(&str) -> bool,
) -> Option<RouteTable> {
    let Some(raw) = raw else {
        return Some(RouteTable::default());
    };
    let tables = match raw {
        Value::Array(items) => items,
        other => {
            access.report_at(
                "routes",
                format!(
                    "expected an array of tables ([[routes]]), found {}",
                    other.type_str()
                ),
            );
            return None;
        }
    };
    if tables.len() > crate::policy::MAX_ROUTES {
        access.report_at(
            "routes",
            format!(
                "{} routes; at most {} are supported",
                tables.len(),
                crate::policy::MAX_ROUTES
            ),
        );
        return None;
    }
    let before = access.error_count();
    let mut routes = Vec::with_capacity(tables.len());
    for (i, item) in tables.into_iter().enumerate() {
        let name = format!("routes[{i}]");
        let Value::Table(table) = item else {
            access.report_at(&name, "expected a table ([[routes]])");
            continue;
        };
        let mut r = access.nested(name, table);
        if let Some(route) = read_route(&mut r, is_question) {
            routes.push(route);
        }
        r.finish();
    }
    (access.error_count() == before).then(|| RouteTable::new(routes))
}

fn read_route(r: &mut SectionReader<'_>, is_question: &dyn Fn(&str) -> bool) -> Option<Route> {
    let before = r.error_count();
    let pattern = match (r.string("path"), r.string("path_regex")) {
        (Some(_), Some(_)) => {
            r.error("path_regex", "give either path or path_regex, not both");
            None
        }
        (None, None) => {
            r.error(
                "path",
                "is required (a path prefix such as \"/healthz\"), or give path_regex",
            );
            None
        }
        (Some(path), None) => prefix(r, path),
        (None, Some(source)) => match PathPattern::regex(&source) {
            Ok(pattern) => Some(pattern),
            Err(e) => {
                r.error("path_regex", format!("not a valid regular expression: {e}"));
                None
            }
        },
    };
    let methods: Vec<String> = r.string_list("methods").unwrap_or_default();
    for (i, method) in methods.iter().enumerate() {
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
            r.error(
                &format!("methods[{i}]"),
                format!("{method:?} is not a method name: write it in capitals, as \"GET\""),
            );
        }
    }
    let public = r.boolean("public").unwrap_or(false);
    let questions_given = r.string("questions");
    let questions = match questions_given.as_deref() {
        None | Some("ask") => QuestionsMode::Ask,
        Some("skip") => QuestionsMode::Skip,
        Some(other) => {
            r.error(
                "questions",
                format!("{other:?}: expected \"ask\" or \"skip\""),
            );
            QuestionsMode::Ask
        }
    };
    let access = read_rule(r, is_question);
    if public && access.as_ref().is_some_and(|a| !a.is_empty()) {
        r.error(
            "public",
            format!("a public route needs no session, so it cannot also restrict who passes ({RULE_KEYS})"),
        );
    }
    if public && questions == QuestionsMode::Ask && questions_given.is_some() {
        r.error(
            "questions",
            "a public route never asks questions: remove questions = \"ask\"",
        );
    }
    (r.error_count() == before).then_some(Route {
        pattern: pattern?,
        methods,
        public,
        questions,
        access: access?,
    })
}

/// A `path` prefix: absolute, without query or fragment, already in normal form (what the
/// upstream receives), so the rule reads as it matches.
fn prefix(r: &mut SectionReader<'_>, path: String) -> Option<PathPattern> {
    let problem = if !path.starts_with('/') {
        Some("must start with /".to_owned())
    } else if path.contains(['?', '#']) {
        Some("matches the path only, never the query: remove ? and #".to_owned())
    } else if path.contains([';', '\\']) || path.bytes().any(|b| b < 0x20 || b == 0x7f) {
        Some("must not contain ;, \\ or control characters".to_owned())
    } else if normalize(&path) != path {
        Some(format!(
            "is not in normal form: write it as {:?}",
            normalize(&path)
        ))
    } else {
        None
    };
    match problem {
        Some(problem) => {
            r.error("path", format!("{path:?} {problem}"));
            None
        }
        None => Some(PathPattern::Prefix(path)),
    }
}
