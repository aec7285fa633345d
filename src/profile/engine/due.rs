//! The `on_paths` questions due now: what would be asked if the user opened one of their
//! paths. Computed off the hot path (per session and profile revision, by the caller); the
//! per-request part is only [`DueOnPath::matches`].

use serde_json::{Map, Value};

use super::configured::{answers_json, is_required, Engine};
use super::timing::{after_skip, AfterSkip};
use crate::policy::Facts;
use crate::store::ProfileRecord;

/// An `on_paths` question that is due: asked when the user opens one of `paths`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueOnPath {
    pub id: String,
    /// Required, or skipped `max_skips` times (soft-required): it cannot be skipped.
    pub required: bool,
    /// The question's `on_paths`: normalized path prefixes.
    pub paths: Vec<String>,
}

impl DueOnPath {
    /// True when the normalized request path `path` is one of the prefixes or below one, on
    /// a segment boundary: `/billing` covers `/billing` and `/billing/invoices`, not
    /// `/billingx` (a prefix ending in `/` covers whatever starts with it).
    pub fn matches(&self, path: &str) -> bool {
        self.paths
            .iter()
            .any(|prefix| match path.strip_prefix(prefix.as_str()) {
                Some(rest) => rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/'),
                None => false,
            })
    }
}

impl Engine {
    /// The `on_paths` questions that would be asked now if the user opened one of their
    /// paths, in configured order: no current answer, `when` true (over `claims`, `groups`
    /// and the record's answers), and not skipped during this session's login `login` — or,
    /// with `ask_again_after`, not skipped less than that long ago. Unlike [`Engine::pick`],
    /// `questions_per_login` does not limit them: each is asked on its own paths.
    pub fn due_on_paths(
        &self,
        record: &ProfileRecord,
        claims: &Map<String, Value>,
        groups: &[String],
        now: u64,
        login: u64,
    ) -> Vec<DueOnPath> {
        let answers = answers_json(&record.answers);
        let facts = Facts {
            claims,
            groups,
            answers: &answers,
            request: None,
        };
        self.open_questions(record, &facts, now, true)
            .filter(|q| match after_skip(q, record.skips.get(&q.id), now) {
                AfterSkip::Ask => true,
                AfterSkip::NotYet => false,
                AfterSkip::AtLogin(skipped_at) => skipped_at < login,
            })
            .map(|q| DueOnPath {
                id: q.id.clone(),
                required: is_required(q, record),
                paths: q.on_paths.clone(),
            })
            .collect()
    }
}
