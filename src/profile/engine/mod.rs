//! The profiling engine (DESIGN §5): which questions to ask — at each login ([`Engine::pick`])
//! and, for `on_paths` questions, when the user opens one of their paths
//! ([`Engine::due_on_paths`]). Pure functions of the configured questions, the user's stored
//! record, the session's claims and groups, and the time `now` passed in (the tests' clock).
//!
//! ```text
//!  timing.rs      when an answer still counts and when a skipped question may come back
//!  configured.rs  the engine, open questions, soft-required, answers as facts, OP claims
//!  login.rs       the login's pick
//!  due.rs         the on_paths questions due now
//! ```
//!
//! This file only declares and re-exports.

mod configured;
mod due;
mod login;
#[cfg(test)]
mod tests;
mod timing;

pub use configured::{answers_json, Engine};
pub use due::DueOnPath;
pub use login::Picked;
pub use timing::answer_is_current;
