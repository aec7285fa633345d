//! Where a user with pending questions goes next: the hosted question page, or the custom UI
//! with a fresh signed token. Used after a login, by the question page and by the custom UI's
//! return.

use super::super::gate::Gate;
use super::ui_token;
use crate::config::QuestionUi;
use crate::profile::Question;
use crate::redirect::ReturnTo;
use crate::session::Session;

/// `/.profilegate/profile?rd=<return_to>` on the proxy's origin.
pub fn profile_url(gate: &Gate, return_to: &ReturnTo) -> String {
    let rd: String = url::form_urlencoded::byte_serialize(return_to.path().as_bytes()).collect();
    format!("{}{}?rd={rd}", gate.origin, gate.routes.profile)
}

/// Where a user with pending questions answers them, coming back to `rd`: the hosted page or
/// the custom UI (with a fresh signed token). `None` when nothing is pending.
pub fn questions_location(gate: &Gate, user: &Session, rd: &ReturnTo) -> Option<String> {
    next_question(gate, user)?;
    match &gate.ui {
        QuestionUi::Hosted => Some(profile_url(gate, rd)),
        QuestionUi::Redirect {
            url,
            token_lifetime,
        } => {
            // The funnel: a token's questions count as shown when it is issued (a refused
            // post-back's new token is not counted again).
            for q in user
                .pending
                .iter()
                .filter_map(|id| gate.engine.question(id))
            {
                gate.metrics.funnel.shown(&q.id, q.version);
            }
            ui_token::redirect_url(
                gate,
                url,
                token_lifetime.as_secs(),
                user,
                rd,
                &Default::default(),
                &Default::default(),
            )
            .map_err(|e| tracing::error!(error = %e, "custom UI token"))
            .ok()
        }
    }
}

/// The first pending question this configuration still knows.
pub fn next_question<'g>(gate: &'g Gate, user: &Session) -> Option<&'g Question> {
    user.pending.iter().find_map(|id| gate.engine.question(id))
}
