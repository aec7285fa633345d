//! `[[routes]]`: rules over the normalized path (never the query) and the method, first match
//! wins. The strict reading of the path (see `path.rs`) finds the first match as written; the
//! lenient reading finds every rule a server behind us might think the path belongs to. Every
//! one of those up to the first match applies its access rule, and the first match's widening
//! effects (`public`, `questions = "skip"`) hold only when no other rule could claim the path.

use regex::Regex;

use super::access::AccessRule;
use super::path::{lenient_readings, starts_with_ignore_case, strict, under_segment};

/// Whether a route's requests wait for pending questions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QuestionsMode {
    #[default]
    Ask,
    Skip,
}

/// Which paths a route covers.
#[derive(Debug, Clone)]
pub enum PathPattern {
    /// `path`: a prefix, normalized at load.
    Prefix(String),
    /// `path_regex`: the whole path must match; `lenient` is the same pattern ignoring case.
    Regex { strict: Regex, lenient: Regex },
}

impl PathPattern {
    /// A regex rule from `source`, anchored at both ends.
    pub fn regex(source: &str) -> Result<Self, regex::Error> {
        let anchored = format!("^(?:{source})$");
        Ok(PathPattern::Regex {
            strict: regex::RegexBuilder::new(&anchored)
                .size_limit(1 << 20)
                .build()?,
            lenient: regex::RegexBuilder::new(&anchored)
                .case_insensitive(true)
                .size_limit(1 << 20)
                .build()?,
        })
    }

    fn matches_strict(&self, path: &str) -> bool {
        match self {
            PathPattern::Prefix(prefix) => under_segment(path, prefix),
            PathPattern::Regex { strict, .. } => strict.is_match(path),
        }
    }

    fn matches_lenient(&self, path: &str) -> bool {
        match self {
            PathPattern::Prefix(prefix) => starts_with_ignore_case(path, prefix),
            PathPattern::Regex { lenient, .. } => lenient.is_match(path),
        }
    }
}

/// One `[[routes]]` entry.
#[derive(Debug, Clone)]
pub struct Route {
    pub pattern: PathPattern,
    /// Upper-case method names; empty for every method.
    pub methods: Vec<String>,
    /// No session needed, no questions; identity headers are still stripped.
    pub public: bool,
    pub questions: QuestionsMode,
    /// Who may pass here, on top of `[access]`.
    pub access: AccessRule,
}

impl Route {
    fn method_strict(&self, method: &str) -> bool {
        self.methods.is_empty() || self.methods.iter().any(|m| m == method)
    }

    fn method_lenient(&self, method: &str) -> bool {
        self.methods.is_empty() || self.methods.iter().any(|m| m.eq_ignore_ascii_case(method))
    }
}

/// At most this many routes (the rules a request matches are kept in one 128-bit set).
pub const MAX_ROUTES: usize = 128;

/// What the routes say about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RouteMatch {
    /// The routes whose access rules apply (bit `i` for route `i`).
    pub rules: u128,
    /// A public route: forwarded without a session.
    pub public: bool,
    /// Pending questions do not block this request.
    pub skip_questions: bool,
}

/// The configured routes, in order.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteMatch {
    /// The indexes of the routes whose access rules apply.
    pub fn rules(&self) -> impl Iterator<Item = usize> + '_ {
        let mut left = self.rules;
        std::iter::from_fn(move || {
            let i = (left != 0).then(|| left.trailing_zeros() as usize)?;
            left &= left - 1;
            Some(i)
        })
    }
}

impl RouteTable {
    /// The routes in order; the configuration refuses more than [`MAX_ROUTES`].
    pub fn new(mut routes: Vec<Route>) -> Self {
        routes.truncate(MAX_ROUTES);
        Self { routes }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Matches a request by `method` and its `normalized` path.
    pub fn matches(&self, method: &str, normalized: &str) -> RouteMatch {
        if self.routes.is_empty() {
            return RouteMatch::default();
        }
        let first = strict(normalized).and_then(|exact| {
            self.routes
                .iter()
                .position(|r| r.method_strict(method) && r.pattern.matches_strict(exact))
        });
        let readings = lenient_readings(normalized);
        let last = first.unwrap_or(self.routes.len() - 1);
        let mut rules = 0u128;
        for (i, route) in self.routes.iter().enumerate().take(last + 1) {
            if route.method_lenient(method)
                && readings.iter().any(|r| route.pattern.matches_lenient(r))
            {
                rules |= 1 << i;
            }
        }
        // The first match widens only when it is the one rule the path could belong to.
        let sole = first.filter(|&i| rules == 1 << i).map(|i| &self.routes[i]);
        RouteMatch {
            rules: rules | first.map_or(0, |i| 1 << i),
            public: sole.is_some_and(|r| r.public),
            skip_questions: sole.is_some_and(|r| r.public || r.questions == QuestionsMode::Skip),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(path: &str) -> Route {
        Route {
            pattern: PathPattern::Prefix(path.into()),
            methods: Vec::new(),
            public: false,
            questions: QuestionsMode::Ask,
            access: AccessRule::default(),
        }
    }

    fn public(path: &str) -> Route {
        Route {
            public: true,
            ..prefix(path)
        }
    }

    /// `/healthz` and `/static/` public (GET/HEAD for the health check), `/admin` for admins,
    /// `/api/` never blocked by questions.
    fn table() -> RouteTable {
        let mut health = public("/healthz");
        health.methods = vec!["GET".into(), "HEAD".into()];
        let mut admin = prefix("/admin");
        admin.access.groups = vec!["admins".into()];
        let mut api = prefix("/api/");
        api.questions = QuestionsMode::Skip;
        RouteTable::new(vec![health, public("/static/"), admin, api])
    }

    /// A match applying the rules `bits`, widening as `public` / `skip`.
    fn m(bits: &[usize], public: bool, skip: bool) -> RouteMatch {
        RouteMatch {
            rules: bits.iter().fold(0, |acc, i| acc | 1 << i),
            public,
            skip_questions: skip,
        }
    }

    #[test]
    fn route_table() {
        let t = table();
        let none = m(&[], false, false);
        let cases: &[(&str, &str, RouteMatch)] = &[
            ("GET", "/healthz", m(&[0], true, true)),
            ("HEAD", "/healthz", m(&[0], true, true)),
            ("GET", "/healthz/deep", m(&[0], true, true)),
            ("POST", "/healthz", none),
            ("get", "/healthz", m(&[0], false, false)),
            // Read loosely, `/healthzx` could be the health check's: its (empty) rule applies,
            // but it is not public.
            ("GET", "/healthzx", m(&[0], false, false)),
            ("GET", "/HEALTHZ", m(&[0], false, false)),
            ("GET", "/healthz;x", m(&[0], false, false)),
            ("GET", "/static/app.css", m(&[1], true, true)),
            ("GET", "/static", none),
            ("GET", "/admin", m(&[2], false, false)),
            ("GET", "/ADMIN/users", m(&[2], false, false)),
            ("GET", "/administrator", m(&[2], false, false)),
            ("GET", "/healthz/..;/admin", m(&[0, 2], false, false)),
            ("GET", "/healthz%2F..%2Fadmin", m(&[0, 2], false, false)),
            ("GET", "/static/..%5Cadmin", m(&[1, 2], false, false)),
            ("GET", "/admin;x=/healthz", m(&[2], false, false)),
            // A server that decodes once sees /admin/%2e%2e/healthz: still the admin rule's.
            ("GET", "/admin/%252e%252e/healthz", m(&[0, 2], false, false)),
            ("GET", "/api/x", m(&[3], false, true)),
            ("POST", "/API/x", m(&[3], false, false)),
            ("GET", "/", none),
        ];
        for (method, path, expected) in cases {
            assert_eq!(t.matches(method, path), *expected, "{method} {path}");
        }
    }

    #[test]
    fn a_loose_match_never_hides_a_later_narrowing_rule() {
        let mut admin = prefix("/staticadmin");
        admin.access.groups = vec!["admins".into()];
        let t = RouteTable::new(vec![public("/static"), admin]);
        assert_eq!(t.matches("GET", "/staticadmin"), m(&[0, 1], false, false));
        assert_eq!(t.matches("GET", "/static/x"), m(&[0], true, true));
    }

    #[test]
    fn regex_routes_match_the_whole_path() {
        let mut rule = public("unused");
        rule.pattern = PathPattern::regex(r"/assets/[a-z0-9]+\.(css|js)").expect("valid");
        let t = RouteTable::new(vec![rule]);
        assert!(t.matches("GET", "/assets/app1.css").public);
        assert!(!t.matches("GET", "/assets/app1.css/../../admin").public);
        assert!(!t.matches("GET", "/x/assets/app1.css").public);
        assert!(!t.matches("GET", "/assets/APP.css").public);
        assert_eq!(t.matches("GET", "/assets/APP.css"), m(&[0], false, false));
    }
}
