//! The keys of a `[[profiling.questions]]` entry that say *when* it is asked: `when` (a CEL
//! condition, compiled here with its answer references checked), `on_paths`,
//! `ask_again_after`, `expires_after` and `max_skips`. Read with the question's other keys by
//! `profiling.rs`; the engine (`profile::engine`) applies them.

use std::time::Duration;

use super::super::reader::SectionReader;
use crate::policy::{normalize, Expr, Scope};
use crate::profile::Question;

/// Shortest and longest `ask_again_after` / `expires_after`.
const SHORTEST_DELAY: Duration = Duration::from_secs(1);
const LONGEST_DELAY: Duration = Duration::from_secs(10 * 366 * 86_400);
/// Most prefixes one question's `on_paths` may list.
const MAX_ON_PATHS: usize = 32;

/// Reads the five keys into `q` (whose `required` is already set). `is_question` knows every
/// configured question id, later ones included: a `when` may name a question asked after it.
pub(super) fn read_conditions(
    r: &mut SectionReader<'_>,
    q: &mut Question,
    is_question: &dyn Fn(&str) -> bool,
) {
    if let Some(source) = r.string("when") {
        match Expr::compile(&source, Scope::Condition, is_question) {
            Ok(expr) => q.when = Some(expr),
            Err(message) => r.error("when", message),
        }
    }
    if let Some(paths) = r.string_list("on_paths") {
        q.on_paths = read_on_paths(r, paths);
    }
    q.ask_again_after = r.duration("ask_again_after", SHORTEST_DELAY, LONGEST_DELAY);
    q.expires_after = r.duration("expires_after", SHORTEST_DELAY, LONGEST_DELAY);
    q.max_skips = r
        .integer_in("max_skips", 1, i64::from(u32::MAX))
        .and_then(|n| u32::try_from(n).ok());
    if q.required {
        for (key, given) in [
            ("max_skips", q.max_skips.is_some()),
            ("ask_again_after", q.ask_again_after.is_some()),
        ] {
            if given {
                r.error(
                    key,
                    "applies only to optional questions: a required question cannot be \
                     skipped (remove the key, or set required = false)",
                );
            }
        }
    }
}

/// `on_paths`: at least one prefix, each an absolute path without query or fragment, kept
/// as the upstream receives it (`policy::normalize`).
fn read_on_paths(r: &mut SectionReader<'_>, paths: Vec<String>) -> Vec<String> {
    if paths.is_empty() {
        r.error(
            "on_paths",
            "must list at least one path such as \"/billing\" (or leave the key out to ask \
             at login)",
        );
        return Vec::new();
    }
    if paths.len() > MAX_ON_PATHS {
        r.error(
            "on_paths",
            format!(
                "lists {} paths; at most {MAX_ON_PATHS} are allowed",
                paths.len()
            ),
        );
    }
    let mut normalized: Vec<String> = Vec::with_capacity(paths.len());
    for (i, path) in paths.iter().enumerate() {
        let key = format!("on_paths[{i}]");
        let problem = if !path.starts_with('/') {
            Some(format!("{path:?} must be a path starting with \"/\""))
        } else if path.contains(['?', '#']) {
            Some(format!(
                "{path:?} must be a path without a query (?) or fragment (#): they never \
                 take part in matching"
            ))
        } else if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Some(format!(
                "{path:?} must not contain spaces or control characters"
            ))
        } else {
            None
        };
        match problem {
            Some(problem) => r.error(&key, problem),
            None => {
                let path = normalize(path).into_owned();
                if !normalized.contains(&path) {
                    normalized.push(path);
                }
            }
        }
    }
    normalized
}
