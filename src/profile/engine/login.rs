//! The login's pick: which questions a completed login asks (DESIGN §5).

use serde_json::{Map, Value};

use super::configured::{answers_json, is_required, Engine};
use super::timing::{after_skip, AfterSkip};
use crate::policy::Facts;
use crate::profile::Question;
use crate::store::ProfileRecord;

/// The questions picked at one login.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Picked {
    /// Ids to ask, in configured order (questions skipped at the previous login last).
    pub pending: Vec<String>,
    /// The subset of `pending` that must be answered before the user may proceed: required
    /// questions, and optional ones skipped `max_skips` times (soft-required).
    pub required: Vec<String>,
}

impl Engine {
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
}
