//! Time in the engine: whether a stored answer still answers its question (`version`,
//! `expires_after`), and when a skipped optional question may be asked again
//! (`ask_again_after`, else the next login). Times are seconds since the Unix epoch.

use crate::profile::Question;
use crate::store::{Skip, StoredAnswer};

/// True when `answer` still answers `q` at `now`: given to the question's current version,
/// and younger than its `expires_after` (`answered_at + expires_after > now`). An answer
/// that is not current is asked again (its old value pre-filled) and kept until replaced.
pub fn answer_is_current(q: &Question, answer: &StoredAnswer, now: u64) -> bool {
    answer.question_version >= q.version
        && q.expires_after.is_none_or(|ttl| {
            answer
                .answered_at
                .checked_add(ttl.as_secs())
                .is_none_or(|expiry| expiry > now)
        })
}

/// When a question may be asked, as far as its latest skip says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AfterSkip {
    /// Not skipped, a required question, or `ask_again_after` has passed since the skip.
    Ask,
    /// Skipped less than `ask_again_after` ago.
    NotYet,
    /// Skipped at this login number, and no `ask_again_after`: the caller's rule decides
    /// (at login: asked at a later login; on a path: not again in the same login).
    AtLogin(u64),
}

pub(super) fn after_skip(q: &Question, skip: Option<&Skip>, now: u64) -> AfterSkip {
    let Some(skip) = skip.filter(|_| !q.required) else {
        return AfterSkip::Ask;
    };
    match q.ask_again_after {
        Some(wait) if skip.at.saturating_add(wait.as_secs()) > now => AfterSkip::NotYet,
        Some(_) => AfterSkip::Ask,
        None => AfterSkip::AtLogin(skip.login),
    }
}
