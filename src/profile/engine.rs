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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{AnswerValue, QuestionType};
    use crate::store::Skip;

    fn q(id: &str, required: bool) -> Question {
        let mut q = Question::new(id, id, QuestionType::Text);
        q.required = required;
        q
    }

    fn engine(per_login: usize) -> Engine {
        Engine::new(
            vec![q("company", true), q("role", false), q("team", false)],
            per_login,
        )
    }

    fn answered(record: &mut ProfileRecord, id: &str, version: u32) {
        record.answers.insert(
            id.into(),
            StoredAnswer {
                value: AnswerValue::Text("x".into()),
                answered_at: 1,
                question_version: version,
                source: AnswerSource::User,
            },
        );
    }

    fn login(n: u64) -> ProfileRecord {
        ProfileRecord {
            logins: n,
            ..ProfileRecord::default()
        }
    }

    #[test]
    fn first_login_asks_the_first_question_in_configured_order() {
        let picked = engine(1).pick(&login(1));
        assert_eq!(picked.pending, ["company"]);
        assert_eq!(picked.required, ["company"]);
        let picked = engine(2).pick(&login(1));
        assert_eq!(picked.pending, ["company", "role"]);
    }

    #[test]
    fn answered_questions_are_not_asked_unless_their_version_rose() {
        let mut r = login(2);
        answered(&mut r, "company", 1);
        assert_eq!(engine(1).pick(&r).pending, ["role"]);
        let mut e = engine(1);
        e.questions[0].version = 2;
        assert_eq!(e.pick(&r).pending, ["company"], "version 2 is asked again");
    }

    #[test]
    fn a_question_skipped_at_the_previous_login_goes_last_then_comes_back() {
        let mut r = login(3);
        answered(&mut r, "company", 1);
        r.skips.insert("role".into(), Skip { at: 1, login: 2 });
        assert_eq!(
            engine(1).pick(&r).pending,
            ["team"],
            "skipped last login: others first"
        );
        assert_eq!(
            engine(2).pick(&r).pending,
            ["role", "team"],
            "shown in configured order"
        );
        answered(&mut r, "team", 1);
        assert_eq!(
            engine(1).pick(&r).pending,
            ["role"],
            "nothing else left: it comes back"
        );
        r.logins = 4;
        r.answers.remove("team");
        assert_eq!(
            engine(1).pick(&r).pending,
            ["role"],
            "skipped two logins ago: normal order"
        );
    }

    #[test]
    fn nothing_left_means_nothing_pending() {
        let mut r = login(5);
        for id in ["company", "role", "team"] {
            answered(&mut r, id, 1);
        }
        assert_eq!(engine(3).pick(&r), Picked::default());
    }

    #[test]
    fn claims_supply_answers_once() {
        let e = engine(1);
        let claims: Map<String, Value> =
            serde_json::from_str(r#"{"company":"Initech","role":"","unrelated":1}"#).expect("json");
        let got = e.claimed_answers(None, &claims, 10);
        assert_eq!(got.len(), 1, "an empty claim supplies nothing");
        assert_eq!(got[0].0, "company");
        assert_eq!(got[0].1.source, AnswerSource::Provider);
        let mut r = login(1);
        r.answers.insert(got[0].0.clone(), got[0].1.clone());
        assert!(
            e.claimed_answers(Some(&r), &claims, 11).is_empty(),
            "unchanged: not saved again"
        );
    }
}
