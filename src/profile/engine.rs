//! The profiling engine: at each login, which questions to ask (DESIGN §5). Pure functions of
//! the configured questions, the user's stored record and the OP's claims.

use serde_json::{Map, Value};

use super::question::Question;
use crate::store::{AnswerSource, ProfileRecord, StoredAnswer};

/// The questions picked at one login.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Picked {
    /// Ids to ask, in configured order (questions skipped at the previous login last).
    pub pending: Vec<String>,
    /// The subset of `pending` that must be answered before the user may proceed.
    pub required: Vec<String>,
}

/// Picks what to ask, from the configuration.
pub struct Engine {
    questions: Vec<Question>,
    per_login: usize,
}

impl Engine {
    pub fn new(questions: Vec<Question>, per_login: usize) -> Self {
        Self {
            questions,
            per_login,
        }
    }

    pub fn questions(&self) -> &[Question] {
        &self.questions
    }

    pub fn question(&self, id: &str) -> Option<&Question> {
        self.questions.iter().find(|q| q.id == id)
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
                let unchanged = stored
                    .is_some_and(|s| s.value == value && s.question_version >= q.version);
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

    /// Up to `questions_per_login` unanswered questions, in configured order; an optional
    /// question skipped at the previous login goes after the others, so it comes back later
    /// without blocking the rest. `record` already counts the current login.
    pub fn pick(&self, record: &ProfileRecord) -> Picked {
        let previous_login = record.logins.saturating_sub(1);
        let unanswered = self.questions.iter().filter(|q| {
            record
                .answers
                .get(&q.id)
                .is_none_or(|a| a.question_version < q.version)
        });
        let (fresh, skipped_last_time): (Vec<&Question>, Vec<&Question>) =
            unanswered.partition(|q| {
                q.required
                    || record
                        .skips
                        .get(&q.id)
                        .is_none_or(|s| s.login < previous_login)
            });
        let chosen: Vec<&Question> = fresh
            .into_iter()
            .chain(skipped_last_time)
            .take(self.per_login)
            .collect();
        let mut ordered = chosen.clone();
        // Shown in configured order, whatever the priority that chose them.
        ordered.sort_by_key(|q| self.questions.iter().position(|c| c.id == q.id));
        Picked {
            pending: ordered.iter().map(|q| q.id.clone()).collect(),
            required: ordered
                .iter()
                .filter(|q| q.required)
                .map(|q| q.id.clone())
                .collect(),
        }
    }
}
