//! Expressions of the Common Expression Language (crate `cel`): compiled once at load with
//! their references checked, evaluated over a user's facts. An expression that cannot be
//! evaluated (a missing claim, a type mismatch) is false, never an error.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, LazyLock};

use cel::common::ast::operators;
use cel::common::ast::{EntryExpr, Expr as Node, IdedExpr, LiteralValue};
use cel::{Context, Env, Program, Value};
use serde_json::{Map, Value as Json};

/// The standard environment plus the string extension (`lowerAscii`, `split`, ...), built once.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| {
    let mut env = Env::stdlib();
    // The extension is part of the crate; adding it to a fresh environment cannot conflict.
    let _ = env.add_extension(cel::extensions::strings);
    Arc::new(env)
});

/// Where an expression is written, which decides the variables it may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `[access].allow` and `[[routes]].allow`: `claims`, `groups`, `answers`, `request`.
    Access,
    /// `[[profiling.questions]].when`: `claims`, `groups`, `answers`.
    Condition,
}

impl Scope {
    fn variables(self) -> &'static [&'static str] {
        match self {
            Scope::Access => &["claims", "groups", "answers", "request"],
            Scope::Condition => &["claims", "groups", "answers"],
        }
    }
}

/// Which claims an expression reads: the named ones, or all of them (`claims` used whole).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ClaimUse {
    #[default]
    None,
    Names(BTreeSet<String>),
    All,
}

impl ClaimUse {
    /// Both uses together.
    pub fn merge(&mut self, other: &ClaimUse) {
        *self = match (std::mem::take(self), other) {
            (ClaimUse::All, _) | (_, ClaimUse::All) => ClaimUse::All,
            (ClaimUse::None, other) => other.clone(),
            (ClaimUse::Names(mut mine), ClaimUse::Names(theirs)) => {
                mine.extend(theirs.iter().cloned());
                ClaimUse::Names(mine)
            }
            (mine, ClaimUse::None) => mine,
        };
    }

    /// The claims of `all` this use names (all but the ID token's one-time values when an
    /// expression reads `claims` whole): what a session keeps of a login's or a refresh's.
    pub fn keep(
        &self,
        all: serde_json::Map<String, serde_json::Value>,
    ) -> serde_json::Map<String, serde_json::Value> {
        match self {
            ClaimUse::None => serde_json::Map::new(),
            ClaimUse::Names(names) => all.into_iter().filter(|(k, _)| names.contains(k)).collect(),
            ClaimUse::All => all
                .into_iter()
                .filter(|(k, _)| !matches!(k.as_str(), "nonce" | "at_hash" | "c_hash"))
                .collect(),
        }
    }

    /// True when a claim named `name` is read.
    pub fn reads(&self, name: &str) -> bool {
        match self {
            ClaimUse::None => false,
            ClaimUse::Names(names) => names.contains(name),
            ClaimUse::All => true,
        }
    }
}

/// What the request adds to the facts, for expressions in [`Scope::Access`].
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    pub method: &'a str,
    /// The normalized path (what the upstream receives), without the query.
    pub path: &'a str,
    pub host: &'a str,
}

/// What an expression is evaluated over.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The ID token's claims, then userinfo's (as kept in the session).
    pub claims: &'a Map<String, Json>,
    pub groups: &'a [String],
    /// Answers by question id (values as the JWT carries them).
    pub answers: &'a Map<String, Json>,
    /// `None` where no request is at hand (at login, for a session's cached verdicts).
    pub request: Option<RequestFacts<'a>>,
}

/// A compiled expression.
#[derive(Clone)]
pub struct Expr {
    source: Arc<str>,
    program: Arc<Program>,
    uses_request: bool,
    uses_answers: bool,
    claims: ClaimUse,
    answers: BTreeSet<String>,
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Expr").field(&self.source).finish()
    }
}

impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Expr {
    /// Compiles `source` for `scope`. Refuses a syntax error, a variable the scope does not
    /// have, and an answer (`answers.x`, `answers["x"]`, `has(answers.x)`) for which
    /// `is_question` says no question exists. The message names what is wrong, not the key.
    pub fn compile(
        source: &str,
        scope: Scope,
        is_question: &dyn Fn(&str) -> bool,
    ) -> Result<Expr, String> {
        if source.trim().is_empty() {
            return Err("the expression is empty".into());
        }
        let program = ENV
            .compile(source)
            .map_err(|e| format!("not a valid expression: {}", one_line(&e.to_string())))?;
        let mut refs = References::default();
        refs.walk(program.expression(), &mut Vec::new());
        let allowed = scope.variables();
        if let Some(unknown) = refs.unknown.iter().find(|v| !allowed.contains(&v.as_str())) {
            let known = allowed.join(", ");
            return Err(match *unknown == "request" {
                true => format!("`request` cannot be used here (the variables are {known})"),
                false => format!("unknown variable `{unknown}` (the variables are {known})"),
            });
        }
        if let Some(missing) = refs.answers.iter().find(|id| !is_question(id)) {
            return Err(format!(
                "`answers.{missing}`: no question has the id `{missing}`"
            ));
        }
        Ok(Expr {
            source: source.into(),
            program: Arc::new(program),
            uses_request: refs.unknown.contains("request"),
            uses_answers: refs.unknown.contains("answers"),
            claims: match (refs.whole_claims, refs.unknown.contains("claims")) {
                (true, _) => ClaimUse::All,
                (false, true) => ClaimUse::Names(refs.claims),
                (false, false) => ClaimUse::None,
            },
            answers: refs.answers,
        })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when the result may change from one request to the next.
    pub fn uses_request(&self) -> bool {
        self.uses_request
    }

    /// True when the result may change when an answer changes.
    pub fn uses_answers(&self) -> bool {
        self.uses_answers
    }

    /// The claims the expression reads.
    pub fn claims(&self) -> &ClaimUse {
        &self.claims
    }

    /// The question ids the expression reads by name.
    pub fn answer_ids(&self) -> impl Iterator<Item = &str> {
        self.answers.iter().map(String::as_str)
    }

    /// True only when the expression evaluates to `true`; any error (a missing claim or
    /// answer, a type mismatch) or a non-boolean result is false.
    pub fn eval(&self, facts: &Facts<'_>) -> bool {
        let mut context = Context::with_env(ENV.clone());
        let request = facts.request.map(|r| {
            Json::Object(Map::from_iter([
                ("method".to_owned(), Json::from(r.method)),
                ("path".to_owned(), Json::from(r.path)),
                ("host".to_owned(), Json::from(r.host)),
            ]))
        });
        let bound = [
            ("claims", cel::to_value(facts.claims)),
            ("groups", cel::to_value(facts.groups)),
            ("answers", cel::to_value(facts.answers)),
        ];
        for (name, value) in bound {
            match value {
                Ok(value) => context.add_variable_from_value(name, value),
                Err(_) => return false,
            }
        }
        if let Some(request) = request {
            match cel::to_value(&request) {
                Ok(value) => context.add_variable_from_value("request", value),
                Err(_) => return false,
            }
        }
        matches!(self.program.execute(&context), Ok(Value::Bool(true)))
    }
}

/// The first line of a parser's message (they can run over several lines with a caret).
fn one_line(message: &str) -> String {
    let lines: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines.join(" ")
}

/// What an expression refers to, found by walking its tree.
#[derive(Default)]
struct References {
    /// Free variables (not bound by a comprehension such as `exists(g, ...)`).
    unknown: BTreeSet<String>,
    /// Claims read by name: `claims.x`, `claims["x"]`.
    claims: BTreeSet<String>,
    /// `claims` used whole (`"x" in claims`, `claims.exists(...)`, passed to a function).
    whole_claims: bool,
    /// Answers read by name.
    answers: BTreeSet<String>,
}

impl References {
    fn walk(&mut self, node: &IdedExpr, bound: &mut Vec<String>) {
        match &node.expr {
            Node::Unspecified | Node::Literal(_) => {}
            Node::Ident(name) => {
                if !bound.contains(name) {
                    self.unknown.insert(name.clone());
                    if name == "claims" {
                        self.whole_claims = true;
                    }
                }
            }
            Node::Select(select) => {
                if let Some(root) = self.named_member(&select.operand, &select.field, bound) {
                    self.unknown.insert(root.to_owned());
                } else {
                    self.walk(&select.operand, bound);
                }
            }
            Node::Call(call) => {
                let indexed = (call.func_name == operators::INDEX
                    || call.func_name == operators::OPT_INDEX)
                    .then(|| match (call.args.first(), call.args.get(1)) {
                        (Some(target), Some(key)) => match &key.expr {
                            Node::Literal(LiteralValue::String(key)) => {
                                self.named_member(target, key.as_ref(), bound)
                            }
                            _ => None,
                        },
                        _ => None,
                    })
                    .flatten();
                if let Some(root) = indexed {
                    self.unknown.insert(root.to_owned());
                    for arg in call.args.iter().skip(2) {
                        self.walk(arg, bound);
                    }
                } else {
                    if let Some(target) = &call.target {
                        self.walk(target, bound);
                    }
                    for arg in &call.args {
                        self.walk(arg, bound);
                    }
                }
            }
            Node::Comprehension(c) => {
                self.walk(&c.iter_range, bound);
                self.walk(&c.accu_init, bound);
                let before = bound.len();
                bound.push(c.iter_var.clone());
                bound.extend(c.iter_var2.clone());
                bound.push(c.accu_var.clone());
                self.walk(&c.loop_cond, bound);
                self.walk(&c.loop_step, bound);
                self.walk(&c.result, bound);
                bound.truncate(before);
            }
            Node::List(list) => {
                for element in &list.elements {
                    self.walk(element, bound);
                }
            }
            Node::Map(map) => {
                for entry in &map.entries {
                    if let EntryExpr::MapEntry(e) = &entry.expr {
                        self.walk(&e.key, bound);
                        self.walk(&e.value, bound);
                    }
                }
            }
            Node::Struct(s) => {
                for entry in &s.entries {
                    match &entry.expr {
                        EntryExpr::StructField(f) => self.walk(&f.value, bound),
                        EntryExpr::MapEntry(e) => {
                            self.walk(&e.key, bound);
                            self.walk(&e.value, bound);
                        }
                    }
                }
            }
        }
    }

    /// For `claims.x` / `answers.x` (and `["x"]`) on the free variable: records the name and
    /// returns the variable. `None` for anything else (walked as usual by the caller).
    fn named_member(
        &mut self,
        operand: &IdedExpr,
        field: &str,
        bound: &[String],
    ) -> Option<&'static str> {
        let Node::Ident(root) = &operand.expr else {
            return None;
        };
        if bound.contains(root) {
            return None;
        }
        match root.as_str() {
            "claims" => {
                self.claims.insert(field.to_owned());
                Some("claims")
            }
            "answers" => {
                self.answers.insert(field.to_owned());
                Some("answers")
            }
            _ => None,
        }
    }
}
