//! The engine as configured — the questions, `questions_per_login`, the claims their
//! conditions read — and what the login's pick and the on_paths questions share: which
//! questions are open (no current answer, `when` true), soft-required, the answers as facts,
//! and answers the OP supplies as claims.

use serde_json::{Map, Value};

use super::timing::answer_is_current;
use crate::policy::{ClaimUse, Facts};
use crate::profile::Question;
use crate::store::{AnswerSource, ProfileRecord, StoredAnswer};

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
    pub(super) questions: Vec<Question>,
    pub(super) per_login: usize,
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

    /// The questions with (`on_paths = true`) or without `on_paths` that have no current
    /// answer and whose `when` holds, in configured order.
    pub(super) fn open_questions<'e>(
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
pub(super) fn is_required(q: &Question, record: &ProfileRecord) -> bool {
    q.required
        || q.max_skips
            .zip(record.skips.get(&q.id))
            .is_some_and(|(max, skip)| skip.count >= max)
}
