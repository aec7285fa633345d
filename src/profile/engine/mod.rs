//! The profiling engine (DESIGN §5): which questions to ask — at each login ([`Engine::pick`])
//! and, for `on_paths` questions, when the user opens one of their paths
//! ([`Engine::due_on_paths`]). Pure functions of the configured questions, the user's stored
//! record, the session's claims and groups, and the time `now` passed in (the tests' clock).
//!
//! ```text
//!  mod.rs    the engine, the login's pick, the answers as facts, answers the OP supplies
//!  timing.rs when an answer still counts and when a skipped question may come back
//!  due.rs    the on_paths questions due now
//! ```

mod due;
#[cfg(test)]
mod tests;
mod timing;

use serde_json::{Map, Value};

use super::question::Question;
use crate::policy::{ClaimUse, Facts};
use crate::store::{AnswerSource, ProfileRecord, StoredAnswer};

pub use due::DueOnPath;
pub use timing::answer_is_current;
use timing::{after_skip, AfterSkip};

/// The questions picked at one login.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Picked {
    /// Ids to ask, in configured order (questions skipped at the previous login last).
    pub pending: Vec<String>,
    /// The subset of `pending` that must be answered before the user may proceed: required
    /// questions, and optional ones skipped `max_skips` times (soft-required).
    pub required: Vec<String>,
}

/// The answers as expressions and access rules see them: question id -> the value as the
/// profile JWT carries it ([`crate::profile::AnswerValue::to_json`]).
pub fn answers_json<'a>(
    answers: impl IntoIterator<Item = (&'a String, &'a StoredAnswer)>,
) -> Map<String, Value> {
    answers
        .into_iter()
        .map(|(id, a)| (id.clone(), a.value.to_json()))
        .collect()
}

/// Picks what to ask, from the configuration.
pub struct Engine {
    questions: Vec<Question>,
    per_login: usize,
    /// The claims every `when` reads, merged.
    claims: ClaimUse,
}

impl Engine {
    pub fn new(questions: Vec<Question>, per_login: usize) -> Self {
        let mut claims = ClaimUse::None;
        for when in questions.iter().filter_map(|q| q.when.as_ref()) {
            claims.merge(when.claims());
        }
        Self {
            questions,
            per_login,
            claims,
        }
    }

    pub fn questions(&self) -> &[Question] {
        &self.questions
    }

    pub fn question(&self, id: &str) -> Option<&Question> {
        self.questions.iter().find(|q| q.id == id)
    }

    /// The claims the questions' `when` expressions read (merged): what a session must keep
    /// for [`Engine::pick`] and [`Engine::due_on_paths`].
    pub fn claims(&self) -> ClaimUse {
        self.claims.clone()
    }

    /// Answers the OP already supplies as claims named like a question, when they validate and
    /// differ from what is stored: they are saved, so the question is not asked and the
    /// upstream still receives the value.
    pub fn claimed_answers(
        &self,
        record: Option<&ProfileRecord>,
        claims: &Map<String, Value>,
        now: u64,
    ) -> Vec<(String, StoredAnswer)> {
        self.questions
            .iter()
            .filter_map(|q| {
                let value = q.accepts_claim(claims.get(&q.id)?)?;
                let stored = record.and_then(|r| r.answers.get(&q.id));
                let unchanged =
                    stored.is_some_and(|s| s.value == value && s.question_version >= q.version);
                (!unchanged).then(|| {
                    (
                        q.id.clone(),
                        StoredAnswer {
                            value,
                            answered_at: now,
                            question_version: q.version,
                            source: AnswerSource::Provider,
                        },
                    )
                })
            })
            .collect()
    }

    /// Up to `questions_per_login` questions to ask at this login, in configured order.
    /// Asked: questions without `on_paths` whose `when` holds (over `claims`, `groups` and the
    /// record's answers) and that have no current answer ([`answer_is_current`]). An optional
    /// question skipped at the previous login goes after the others, so it comes back later
    /// without blocking the rest; with `ask_again_after` it is not asked before that much time
    /// has passed since the skip instead. One skipped `max_skips` times is required. `record`
    /// already counts the current login.
    pub fn pick(
        &self,
        record: &ProfileRecord,
        claims: &Map<String, Value>,
        groups: &[String],
        now: u64,
    ) -> Picked {
        let previous_login = record.logins.saturating_sub(1);
        let answers = answers_json(&record.answers);
        let facts = Facts {
            claims,
            groups,
            answers: &answers,
            request: None,
        };
        let mut fresh = Vec::new();
        let mut skipped_last_time = Vec::new();
        for q in self.open_questions(record, &facts, now, false) {
            let skip = record.skips.get(&q.id);
            let required = is_required(q, record);
            match after_skip(q, skip, now) {
                AfterSkip::NotYet => {}
                AfterSkip::Ask => fresh.push((q, required)),
                // Today's rule, without `ask_again_after`: back at the next login, last.
                AfterSkip::AtLogin(at) if required || at < previous_login => {
                    fresh.push((q, required))
                }
                AfterSkip::AtLogin(_) => skipped_last_time.push((q, required)),
            }
        }
        let mut chosen: Vec<(&Question, bool)> = fresh
            .into_iter()
            .chain(skipped_last_time)
            .take(self.per_login)
            .collect();
        // Shown in configured order, whatever the priority that chose them.
        chosen.sort_by_key(|(q, _)| self.questions.iter().position(|c| c.id == q.id));
        Picked {
            pending: chosen.iter().map(|(q, _)| q.id.clone()).collect(),
            required: chosen
                .iter()
                .filter(|(_, required)| *required)
                .map(|(q, _)| q.id.clone())
                .collect(),
        }
    }

    /// The questions with (`on_paths = true`) or without `on_paths` that have no current
    /// answer and whose `when` holds, in configured order.
    fn open_questions<'e>(
        &'e self,
        record: &'e ProfileRecord,
        facts: &'e Facts<'e>,
        now: u64,
        on_paths: bool,
    ) -> impl Iterator<Item = &'e Question> + 'e {
        self.questions
            .iter()
            .filter(move |q| q.on_paths.is_empty() != on_paths)
            .filter(move |q| {
                record
                    .answers
                    .get(&q.id)
                    .is_none_or(|a| !answer_is_current(q, a, now))
            })
            .filter(|q| q.when.as_ref().is_none_or(|when| when.eval(facts)))
    }
}

/// Required, or optional and skipped `max_skips` times (soft-required).
fn is_required(q: &Question, record: &ProfileRecord) -> bool {
    q.required
        || q.max_skips
            .zip(record.skips.get(&q.id))
            .is_some_and(|(max, skip)| skip.count >= max)
}
