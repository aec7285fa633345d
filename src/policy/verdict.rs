//! The policy as a whole, and what it decides for one session: computed once per session and
//! profile revision from the session's facts, so a signed-in request only matches its route
//! and reads a verdict. Only rules that read `request` are evaluated per request.

use super::access::AccessRule;
use super::expr::{ClaimUse, Facts};
use super::routes::{RouteMatch, RouteTable};

/// `[access]`, `[[routes]]` and where the groups come from.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub access: AccessRule,
    pub routes: RouteTable,
    /// `access.groups_claim`: a dotted path into the claims (default `groups`).
    pub groups_claim: String,
}

/// What a rule decides for a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny,
    /// The rule reads `request`: evaluated at each request.
    PerRequest,
}

impl Verdict {
    fn of(rule: &AccessRule, facts: &Facts<'_>) -> Verdict {
        if rule.is_empty() {
            Verdict::Allow
        } else if rule.uses_request() {
            Verdict::PerRequest
        } else if rule.permits(facts) {
            Verdict::Allow
        } else {
            Verdict::Deny
        }
    }
}

/// The verdicts of `[access]` and of every route's rule for one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionVerdicts {
    access: Verdict,
    routes: Box<[Verdict]>,
}

impl Policy {
    /// Every claim a rule reads (the session keeps these).
    pub fn claims(&self) -> ClaimUse {
        let mut used = self.access.claims();
        for route in self.routes.routes() {
            used.merge(&route.access.claims());
        }
        used
    }

    /// True when a verdict can change with the user's answers.
    pub fn uses_answers(&self) -> bool {
        self.access.uses_answers() || self.routes.routes().iter().any(|r| r.access.uses_answers())
    }

    /// True when nothing restricts anyone (no rule at all: every verdict is `Allow`).
    pub fn is_open(&self) -> bool {
        self.access.is_empty() && self.routes.routes().iter().all(|r| r.access.is_empty())
    }

    /// The session's verdicts, from facts without a request.
    pub fn verdicts(&self, facts: &Facts<'_>) -> SessionVerdicts {
        SessionVerdicts {
            access: Verdict::of(&self.access, facts),
            routes: self
                .routes
                .routes()
                .iter()
                .map(|r| Verdict::of(&r.access, facts))
                .collect(),
        }
    }

    /// The verdict for a request that `matched`, from the session's cached verdicts: `Deny`
    /// when any rule denies, `PerRequest` when one still needs the request.
    pub fn verdict(&self, session: &SessionVerdicts, matched: RouteMatch) -> Verdict {
        let routes = matched
            .rules()
            .map(|i| session.routes.get(i).copied().unwrap_or(Verdict::Deny));
        std::iter::once(session.access)
            .chain(routes)
            .fold(Verdict::Allow, |verdict, next| match (verdict, next) {
                (Verdict::Deny, _) | (_, Verdict::Deny) => Verdict::Deny,
                (Verdict::PerRequest, _) | (_, Verdict::PerRequest) => Verdict::PerRequest,
                (Verdict::Allow, Verdict::Allow) => Verdict::Allow,
            })
    }

    /// Evaluates `[access]` and the matched route's rule with the request in `facts`.
    pub fn permits(&self, matched: RouteMatch, facts: &Facts<'_>) -> bool {
        self.access.permits(facts)
            && matched.rules().all(|i| {
                self.routes
                    .routes()
                    .get(i)
                    .is_some_and(|route| route.access.permits(facts))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::super::expr::{Expr, RequestFacts, Scope};
    use super::super::routes::{PathPattern, QuestionsMode, Route};
    use super::*;
    use serde_json::{json, Map, Value as Json};

    fn policy() -> Policy {
        let admin = Route {
            pattern: PathPattern::Prefix("/admin".into()),
            methods: Vec::new(),
            public: false,
            questions: QuestionsMode::Ask,
            access: AccessRule {
                groups: vec!["admins".into()],
                ..AccessRule::default()
            },
        };
        let reports = Route {
            pattern: PathPattern::Prefix("/reports".into()),
            access: AccessRule {
                allow: Some(
                    Expr::compile(r#"request.method == "GET""#, Scope::Access, &|_| false)
                        .expect("compiles"),
                ),
                ..AccessRule::default()
            },
            ..admin.clone()
        };
        Policy {
            access: AccessRule {
                email_domains: vec!["acme.com".into()],
                ..AccessRule::default()
            },
            routes: RouteTable::new(vec![admin, reports]),
            groups_claim: "groups".into(),
        }
    }

    fn facts<'a>(claims: &'a Map<String, Json>, groups: &'a [String]) -> Facts<'a> {
        static EMPTY: std::sync::LazyLock<Map<String, Json>> = std::sync::LazyLock::new(Map::new);
        Facts {
            claims,
            groups,
            answers: &EMPTY,
            request: None,
        }
    }

    #[test]
    fn verdict_table() {
        let p = policy();
        let staff = json!({"email": "ann@acme.com"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let outsider = json!({"email": "eve@evil.org"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let admins = vec!["admins".to_owned()];
        let nobody: Vec<String> = Vec::new();
        let staff_v = p.verdicts(&facts(&staff, &nobody));
        let admin_v = p.verdicts(&facts(&staff, &admins));
        let outsider_v = p.verdicts(&facts(&outsider, &admins));
        let home = p.routes.matches("GET", "/");
        let admin = p.routes.matches("GET", "/admin/users");
        let reports = p.routes.matches("GET", "/reports");
        let table = [
            (&staff_v, home, Verdict::Allow),
            (&staff_v, admin, Verdict::Deny),
            (&admin_v, admin, Verdict::Allow),
            (&outsider_v, home, Verdict::Deny),
            (&outsider_v, admin, Verdict::Deny),
            (&staff_v, reports, Verdict::PerRequest),
            (&outsider_v, reports, Verdict::Deny),
        ];
        for (i, (v, m, expected)) in table.into_iter().enumerate() {
            assert_eq!(p.verdict(v, m), expected, "row {i}");
        }
        let with_request = |method| Facts {
            request: Some(RequestFacts {
                method,
                path: "/reports",
                host: "app.example",
            }),
            ..facts(&staff, &nobody)
        };
        assert!(p.permits(reports, &with_request("GET")));
        assert!(!p.permits(reports, &with_request("DELETE")));
        assert!(p.claims().reads("email"));
        assert!(!p.uses_answers());
    }
}
