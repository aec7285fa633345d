//! Who may pass: the simple keys (`allowed_email_domains`, `allowed_emails`,
//! `allowed_groups`, `require_email_verified`) and `allow`, compiled into one rule. Used for
//! `[access]` and for a route's own rule; every configured part must hold.

use serde_json::{Map, Value as Json};

use super::expr::{ClaimUse, Expr, Facts};

/// One access rule. An empty rule lets everyone through.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccessRule {
    /// Lower-case domains; with `emails`, the e-mail must match one of either list.
    pub email_domains: Vec<String>,
    /// Lower-case addresses.
    pub emails: Vec<String>,
    /// The user must be in at least one of these groups (exact, case-sensitive).
    pub groups: Vec<String>,
    /// `email_verified` must be `true`.
    pub require_email_verified: bool,
    /// A CEL expression that must evaluate to `true`.
    pub allow: Option<Expr>,
}

impl AccessRule {
    /// True when the rule restricts nothing.
    pub fn is_empty(&self) -> bool {
        self.email_domains.is_empty()
            && self.emails.is_empty()
            && self.groups.is_empty()
            && !self.require_email_verified
            && self.allow.is_none()
    }

    /// True when the verdict can differ between two requests of one session.
    pub fn uses_request(&self) -> bool {
        self.allow.as_ref().is_some_and(Expr::uses_request)
    }

    /// True when the verdict can change with the user's answers.
    pub fn uses_answers(&self) -> bool {
        self.allow.as_ref().is_some_and(Expr::uses_answers)
    }

    /// The claims the rule reads (kept in the session for it).
    pub fn claims(&self) -> ClaimUse {
        let mut names = std::collections::BTreeSet::new();
        if !self.email_domains.is_empty() || !self.emails.is_empty() {
            names.extend(["email".to_owned(), "email_verified".to_owned()]);
        }
        if self.require_email_verified {
            names.insert("email_verified".to_owned());
        }
        let mut used = match names.is_empty() {
            true => ClaimUse::None,
            false => ClaimUse::Names(names),
        };
        if let Some(allow) = &self.allow {
            used.merge(allow.claims());
        }
        used
    }

    /// True when `facts` satisfy every configured part of the rule.
    pub fn permits(&self, facts: &Facts<'_>) -> bool {
        let verified = facts.claims.get("email_verified");
        if self.require_email_verified && !is_true(verified) {
            return false;
        }
        if !self.email_domains.is_empty() || !self.emails.is_empty() {
            // An address the OP says is unverified names nobody.
            let email = match (facts.claims.get("email"), verified) {
                (_, Some(v)) if is_false(v) => None,
                (Some(Json::String(email)), _) => Some(email.to_ascii_lowercase()),
                _ => None,
            };
            let Some(email) = email else {
                return false;
            };
            let domain = email.rsplit_once('@').map(|(_, d)| d);
            let listed = self.emails.contains(&email)
                || domain.is_some_and(|d| self.email_domains.iter().any(|a| a == d));
            if !listed {
                return false;
            }
        }
        if !self.groups.is_empty() && !self.groups.iter().any(|g| facts.groups.contains(g)) {
            return false;
        }
        self.allow.as_ref().is_none_or(|allow| allow.eval(facts))
    }
}

/// `true`, or the string `"true"` some OPs send.
fn is_true(value: Option<&Json>) -> bool {
    matches!(value, Some(Json::Bool(true))) || matches!(value, Some(Json::String(s)) if s == "true")
}

fn is_false(value: &Json) -> bool {
    matches!(value, Json::Bool(false)) || matches!(value, Json::String(s) if s == "false")
}

/// The groups found at `path` (dotted, as `realm_access.roles`) in the first of `sources` that
/// has it (the ID token's claims, then userinfo's). A list of strings or numbers, or a single
/// string, is read; anything else is no groups.
pub fn groups_at(path: &str, sources: &[&Map<String, Json>]) -> Vec<String> {
    for claims in sources {
        let mut parts = path.split('.');
        let first = parts.next().unwrap_or_default();
        let mut value = claims.get(first);
        for part in parts {
            value = value.and_then(|v| v.get(part));
        }
        // A claim whose own name has dots (`https://example.com/groups`) is read whole.
        let value = value.or_else(|| claims.get(path));
        match value {
            Some(Json::Array(items)) => {
                return items
                    .iter()
                    .filter_map(|item| match item {
                        Json::String(s) => Some(s.clone()),
                        Json::Number(n) => Some(n.to_string()),
                        _ => None,
                    })
                    .collect();
            }
            Some(Json::String(s)) => return vec![s.clone()],
            _ => {}
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::super::expr::Scope;
    use super::*;
    use serde_json::json;

    fn claims(value: Json) -> Map<String, Json> {
        match value {
            Json::Object(map) => map,
            _ => unreachable!("an object"),
        }
    }

    fn check(rule: &AccessRule, claims_json: Json, groups: &[&str]) -> bool {
        let claims = claims(claims_json);
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        let answers = Map::new();
        rule.permits(&Facts {
            claims: &claims,
            groups: &groups,
            answers: &answers,
            request: None,
        })
    }

    #[test]
    fn simple_keys_table() {
        let domains = AccessRule {
            email_domains: vec!["acme.com".into()],
            emails: vec!["guest@other.org".into()],
            ..AccessRule::default()
        };
        let verified = AccessRule {
            require_email_verified: true,
            ..AccessRule::default()
        };
        let groups = AccessRule {
            groups: vec!["staff".into(), "admins".into()],
            ..AccessRule::default()
        };
        let table: &[(&AccessRule, Json, &[&str], bool)] = &[
            (&AccessRule::default(), json!({}), &[], true),
            (&domains, json!({"email": "ann@acme.com"}), &[], true),
            (&domains, json!({"email": "Ann@ACME.com"}), &[], true),
            (&domains, json!({"email": "ann@evil-acme.com"}), &[], false),
            (
                &domains,
                json!({"email": "ann@acme.com.evil.org"}),
                &[],
                false,
            ),
            (&domains, json!({"email": "ann@sub.acme.com"}), &[], false),
            (&domains, json!({"email": "guest@other.org"}), &[], true),
            (&domains, json!({"email": "other@other.org"}), &[], false),
            (&domains, json!({}), &[], false),
            (&domains, json!({"email": 7}), &[], false),
            (
                &domains,
                json!({"email": "ann@acme.com", "email_verified": false}),
                &[],
                false,
            ),
            (
                &domains,
                json!({"email": "ann@acme.com", "email_verified": true}),
                &[],
                true,
            ),
            (&verified, json!({"email_verified": true}), &[], true),
            (&verified, json!({"email_verified": "true"}), &[], true),
            (&verified, json!({"email_verified": false}), &[], false),
            (&verified, json!({}), &[], false),
            (&groups, json!({}), &["staff"], true),
            (&groups, json!({}), &["admins", "x"], true),
            (&groups, json!({}), &["Staff"], false),
            (&groups, json!({}), &[], false),
        ];
        for (i, (rule, claims, groups, expected)) in table.iter().enumerate() {
            assert_eq!(
                check(rule, claims.clone(), groups),
                *expected,
                "row {i}: {claims}"
            );
        }
    }

    #[test]
    fn allow_is_anded_with_the_keys() {
        let allow = Expr::compile(
            r#""contractors" in groups && claims.acr == "mfa""#,
            Scope::Access,
            &|_| false,
        )
        .expect("compiles");
        let rule = AccessRule {
            email_domains: vec!["acme.com".into()],
            allow: Some(allow),
            ..AccessRule::default()
        };
        let mfa = json!({"email": "a@acme.com", "acr": "mfa"});
        assert!(check(&rule, mfa.clone(), &["contractors"]));
        assert!(!check(&rule, mfa, &["staff"]));
        assert!(!check(
            &rule,
            json!({"email": "a@acme.com"}),
            &["contractors"]
        ));
        assert!(!check(
            &rule,
            json!({"email": "a@x.org", "acr": "mfa"}),
            &["contractors"]
        ));
        assert!(rule.claims().reads("acr") && rule.claims().reads("email"));
    }

    #[test]
    fn groups_by_dotted_path_id_token_first() {
        let id_token = claims(json!({"realm_access": {"roles": ["staff", "admins"]}}));
        let userinfo = claims(json!({"groups": ["from-userinfo"], "roles": "one"}));
        assert_eq!(
            groups_at("realm_access.roles", &[&id_token, &userinfo]),
            ["staff", "admins"]
        );
        assert_eq!(
            groups_at("groups", &[&id_token, &userinfo]),
            ["from-userinfo"]
        );
        assert_eq!(groups_at("roles", &[&id_token, &userinfo]), ["one"]);
        assert!(groups_at("missing.path", &[&id_token, &userinfo]).is_empty());
        let dotted = claims(json!({"https://example.com/groups": [1, "x", {"no": 1}]}));
        assert_eq!(
            groups_at("https://example.com/groups", &[&dotted]),
            ["1", "x"]
        );
    }
}
