//! A signed-in request's session, checked against its lifecycle (DESIGN §13) before anything
//! else reads it: revoked (logout, the OP's logout, a refused refresh), idle too long, or due
//! for a refresh at the OP. Nothing here touches the store on the hot path: the revocation view
//! is in memory, and a refresh happens once per session and ID-token lifetime.

use std::sync::Arc;

use super::gate::Gate;
use super::sessions::SignedIn;

/// What the lifecycle makes of a request's session.
pub(super) enum Lifecycle {
    /// The session goes on; with a `Set-Cookie` value to add to the response when the cookie
    /// was re-sealed (refreshed claims, a new activity time).
    Live(Arc<SignedIn>, Option<String>),
    /// The session is over: the request is treated as anonymous, and the response deletes the
    /// cookie.
    Ended,
}

impl Gate {
    /// The lifecycle's verdict on `user` at `now` (seconds).
    pub(super) async fn lifecycle(&self, user: Arc<SignedIn>, now: u64) -> Lifecycle {
        if self.revoker.view().is_revoked(&user.session) {
            return Lifecycle::Ended;
        }
        if user.session.refresh_at != 0 && now >= user.session.refresh_at {
            return self.refresh_due(user).await;
        }
        Lifecycle::Live(user, None)
    }
}
