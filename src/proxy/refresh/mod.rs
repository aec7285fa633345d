//! The hot path's refresh step (DESIGN §13): a signed-in request whose session is due
//! (`refresh_at` passed, `session.refresh = true`) has its claims and groups refreshed at the
//! OP before anything reads them, once per session ([`flight`]: single-flight in the process,
//! a lease in the store across replicas), and answers with the re-sealed cookie. A refused
//! refresh revokes the session (the request goes on as anonymous: login for a navigation, 401
//! for an API); a failed one leaves it as it is, tried again later.
//!
//! Called from `Gate::lifecycle` (lifecycle.rs); it calls `Provider::refresh` (oidc/refresh.rs).

pub mod flight;
mod refreshed;

use std::sync::Arc;

use super::gate::Gate;
use super::lifecycle::Lifecycle;
use super::sessions::SignedIn;
use crate::oidc::refresh::RefreshFailure;
use crate::policy::groups_at;
use crate::session::at_rest::SessionTokens;
use crate::session::{now_secs, Session};
use crate::store::{RevokeTarget, SessionStore};
use flight::{Due, EndCall, OpCall, OpOutcome, Outcome, RefreshedSession};

pub use flight::Refreshes;

impl Gate {
    /// `user`'s session refreshed (or adopted from a refresh made elsewhere), ended when the
    /// OP refused, or as it was when the refresh cannot happen now.
    pub(super) async fn refresh_due(&self, user: Arc<SignedIn>) -> Lifecycle {
        if !self.sealer.lifecycle().refresh {
            // Turned off (by a reload) since the cookie was sealed: the session lives on as it is.
            return Lifecycle::Live(user, None);
        }
        let session = &user.session;
        let due = Due {
            sid: &session.sid,
            gen: session.gen,
            exp: session.exp,
        };
        let store: &dyn SessionStore = &*self.store;
        let outcome = self
            .refreshes
            .refresh(
                due,
                store,
                |sealed| -> OpCall<'_> { Box::pin(self.refresh_at_op(session, sealed)) },
                || -> EndCall<'_> {
                    Box::pin(async {
                    let target = RevokeTarget::Sid(session.sid.clone());
                    if let Err(e) = self.revoker.revoke(&target).await {
                        // The flight's outcome still ends the session for every request that
                        // waited on it; later ones find the record revoked or try again.
                        tracing::error!(error = %e, "a refused session could not be revoked in the store");
                    }
                    })
                },
            )
            .await;
        match outcome {
            Outcome::Refreshed(refreshed) => {
                let next = refreshed.apply(session);
                if let Err(why) = self.sealer.fits(&next) {
                    tracing::warn!(sub = %session.sub, reason = %why, "refreshed session kept unchanged");
                    return Lifecycle::Live(user, None);
                }
                let cookie = self.sealer.seal_session(&next);
                Lifecycle::Live(Arc::new(SignedIn::new(next)), Some(cookie))
            }
            Outcome::Ended => Lifecycle::Ended,
            Outcome::Unchanged => Lifecycle::Live(user, None),
        }
    }

    /// The OP call of a flight: opens the record's tokens, refreshes, and returns what the
    /// session keeps of the answer with the new tokens sealed.
    async fn refresh_at_op(&self, session: &Session, sealed: Option<Vec<u8>>) -> OpOutcome {
        let sealer = self.sealer.tokens();
        let Some(tokens) = sealed.and_then(|bytes| sealer.open(&session.sid, &bytes)) else {
            return OpOutcome::Failed("the session record holds no tokens".into(), None);
        };
        let Some(refresh_token) = tokens.refresh_token.as_deref() else {
            return OpOutcome::Failed("the session record holds no refresh token".into(), None);
        };
        let kept = |new: &crate::oidc::LoginTokens| SessionTokens {
            refresh_token: new.refresh_token.clone(),
            id_token: Some(new.id_token.clone())
                .filter(|t| !t.is_empty())
                .or_else(|| tokens.id_token.clone()),
        };
        match self.provider.refresh(refresh_token, &session.sub).await {
            Ok(identity) => {
                let refreshed = RefreshedSession {
                    gen: 0, // the flight sets the generation it writes
                    refresh_at: RefreshedSession::next_refresh_at(
                        identity.tokens.id_token_exp,
                        self.sealer.lifecycle().refresh_before,
                        now_secs(),
                    ),
                    groups: groups_at(
                        &self.policy.groups_claim,
                        &[&identity.id_token_claims, &identity.claims],
                    ),
                    claims: self.session_claims.keep(identity.merged_claims()),
                    email: identity.email,
                    preferred_username: identity.preferred_username,
                    name: identity.name,
                };
                OpOutcome::Refreshed(
                    refreshed,
                    sealer.seal(&session.sid, &kept(&identity.tokens)),
                )
            }
            Err(RefreshFailure { error, .. }) if error.ends_session() => {
                OpOutcome::Refused(error.to_string())
            }
            Err(RefreshFailure { error, rotated }) => OpOutcome::Failed(
                error.to_string(),
                rotated.and_then(|t| sealer.seal(&session.sid, &kept(&t))),
            ),
        }
    }
}
