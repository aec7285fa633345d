//! What a refresh learnt, as a session takes it: kept in the store's record (`refreshed`) for
//! cookies sealed before the refresh, applied to the session a request carries, and when the
//! next refresh is due.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::session::Session;

/// The least time between two refreshes of one session (an ID token shorter than
/// `session.refresh_before` must not make every request refresh).
pub const MIN_INTERVAL: Duration = Duration::from_secs(5);
/// When the OP sent no expiry to pace the next refresh by.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);

/// What a refresh learnt, as kept in the record's `refreshed` (for cookies sealed before it)
/// and applied to a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefreshedSession {
    /// The generation this refresh made (the record's, and the new cookies').
    pub gen: u64,
    /// When the next refresh is due (seconds since the epoch).
    pub refresh_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The claims the session keeps (those the policy and the questions read).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub claims: Map<String, Json>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

impl RefreshedSession {
    /// `session` with what the refresh learnt (its id, CSRF token, questions, expiry stay).
    pub fn apply(&self, session: &Session) -> Session {
        let mut next = session.clone();
        next.gen = self.gen;
        next.refresh_at = self.refresh_at;
        next.email.clone_from(&self.email);
        next.preferred_username.clone_from(&self.preferred_username);
        next.name.clone_from(&self.name);
        next.claims.clone_from(&self.claims);
        next.groups.clone_from(&self.groups);
        next
    }

    /// The next refresh time for an ID token expiring at `id_token_exp` (0: unknown), made at
    /// `now`, `before` its expiry.
    pub fn next_refresh_at(id_token_exp: u64, before: Duration, now: u64) -> u64 {
        let floor = now + MIN_INTERVAL.as_secs();
        match id_token_exp {
            0 => now + DEFAULT_INTERVAL.as_secs(),
            exp => exp.saturating_sub(before.as_secs()).max(floor),
        }
    }
}
