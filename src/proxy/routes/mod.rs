//! The routes profilegate answers itself, one file each, each taking the `Gate` state, the
//! `IncomingRequest` and the signed-in user it needs, and returning a `Reply` (`Handled`):
//! login and callback (`login`), logout and the signed-out page (`logout`), the hosted question
//! page (`questions`), the JSON API (`api`), the custom UI (`custom_ui`), the JWKS (`jwks`), the
//! self-service page and its JSON (`me`), the OP's front- and back-channel logout
//! (`frontchannel`, `backchannel`), forward-auth's answers to an edge proxy and the browser's
//! way in (`forward_auth`). Where a user with pending questions goes next (`next`) and
//! the custom UI's signed token (`ui_token`) are shared by several of them.
//!
//! Below `proxy/mod.rs` (which dispatches to them): they never import it.

pub mod api;
pub mod backchannel;
pub mod custom_ui;
pub mod forward_auth;
pub mod frontchannel;
pub mod jwks;
pub mod login;
pub mod logout;
pub mod me;
mod next;
pub mod questions;
mod ui_token;

use std::sync::Arc;

use super::gate::Gate;
use crate::error::AppError;
use crate::profile::{apply, Applied, Respondent, Submission};
use crate::session::{now_millis, now_secs, Session};

/// Applies `user`'s submitted answers and skips (`profile::apply`: validate, then store) and,
/// when they were stored, settles them in the session and refreshes the profile view. The
/// session's cookie is the caller's to write.
async fn apply_for(
    gate: &Gate,
    user: &mut Session,
    answers: &[(String, Vec<String>)],
    skips: &[String],
    lang: &str,
) -> Result<Applied, AppError> {
    let key = gate.user_key(&user.sub);
    let respondent = Respondent {
        key: &key,
        pending: &user.pending,
        required: &user.required,
        login: user.login,
    };
    let applied = apply(
        &gate.engine,
        &*gate.store,
        respondent,
        Submission {
            answers,
            skips,
            at: now_secs(),
        },
        lang,
    )
    .await?;
    settle(gate, user, answers, skips, &applied);
    Ok(applied)
}

/// When `applied` was stored: settles the answered and skipped questions in the session, moves
/// its revision (the cookie the caller writes carries it) and refreshes the profile view, so
/// the upstream sees the new answers at the next request.
fn settle(
    gate: &Gate,
    user: &mut Session,
    answers: &[(String, Vec<String>)],
    skips: &[String],
    applied: &Applied,
) {
    if let Applied::Stored(record) = applied {
        for (id, _) in answers {
            user.settle(id);
        }
        for id in skips {
            user.settle(id);
        }
        user.rev = user.rev.max(record.revision);
        gate.enricher.update(&user.sub, Arc::new(record.clone()));
    }
}

/// Counts a submission's outcome in the question funnel (`metrics::funnel`): each stored answer
/// (timed from `shown_at`, milliseconds since the epoch, when known) and skip, or each question
/// a refused submission had an error for. Only questions of the configuration are counted.
fn count_funnel(
    gate: &Gate,
    applied: &Applied,
    answers: &[(String, Vec<String>)],
    skips: &[String],
    shown_at: Option<u64>,
) {
    let funnel = &gate.metrics.funnel;
    match applied {
        Applied::Stored(_) => {
            let elapsed = shown_at.map(|at| now_millis().saturating_sub(at));
            for q in answers
                .iter()
                .filter_map(|(id, _)| gate.engine.question(id))
            {
                funnel.answered(&q.id, q.version, elapsed);
            }
            for q in skips.iter().filter_map(|id| gate.engine.question(id)) {
                funnel.skipped(&q.id, q.version);
            }
        }
        Applied::Invalid(errors) => {
            for q in errors.keys().filter_map(|id| gate.engine.question(id)) {
                funnel.invalid(&q.id, q.version);
            }
        }
    }
}
