//! A signed-in request's session, checked against its lifecycle (DESIGN §13) before anything
//! else reads it: revoked (logout, the OP's logout, a refused refresh), idle too long, or due
//! for a refresh at the OP. Nothing here touches the store on the hot path: the revocation view
//! is in memory, the last activity is sealed in the cookie, and a refresh happens once per
//! session and ID-token lifetime.

use std::sync::Arc;
use std::time::Duration;

use super::gate::Gate;
use super::sessions::{Renewal, SignedIn};

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
        // `session.idle_timeout`: over, or on with (now and then) a cookie recording `now`.
        let Some((user, cookie)) = self.idle_check(user, now) else {
            return Lifecycle::Ended;
        };
        // A refresh re-seals the session it is given (the idle check's, `seen` included), so
        // its cookie replaces the idle check's.
        if user.session.refresh_at != 0 && now >= user.session.refresh_at {
            return self.refresh_due(user).await;
        }
        Lifecycle::Live(user, cookie)
    }

    /// `session.idle_timeout`: `None` when `user`'s session has had no request for that long
    /// (its cookie's `seen`, or its login); else the session to go on with and, when its
    /// activity time was due for renewal, the `Set-Cookie` of the same session sealed with
    /// `seen = now`. The re-sealed session is the one handlers get (a route that seals the
    /// session again keeps the new `seen`), and it is kept opened for its cookie's next request.
    fn idle_check(&self, user: Arc<SignedIn>, now: u64) -> Option<(Arc<SignedIn>, Option<String>)> {
        let Some(timeout) = self.sealer.lifecycle().idle_timeout else {
            return Some((user, None));
        };
        let seen = last_activity(&user);
        if now.saturating_sub(seen) >= timeout.as_secs() {
            // Debug: a client that ignores the cookie's deletion repeats this at every request.
            tracing::debug!(sub = %user.session.sub, idle_secs = now.saturating_sub(seen), "session ended: idle past session.idle_timeout");
            return None;
        }
        let every = renew_every(timeout);
        if now < seen + every {
            return Some((user, None));
        }
        // Requests still carrying this cookie share one renewal until it is due in turn.
        let renewal = user.renewal(
            |made| now < last_activity(&made.user) + every,
            || {
                let mut session = user.session.clone();
                session.seen = now;
                // The same `exp`: activity never extends `session.lifetime`.
                let set_cookie = self.sealer.seal_session(&session);
                let renewed = Arc::new(SignedIn::new(session));
                let renewed = match cookie_value(&set_cookie) {
                    Some(value) => self.sessions.keep(value, renewed),
                    None => renewed,
                };
                Renewal {
                    user: renewed,
                    set_cookie,
                }
            },
        );
        Some((renewal.user, Some(renewal.set_cookie)))
    }
}

/// The last activity a session's cookie records: its `seen`, or its login.
fn last_activity(user: &SignedIn) -> u64 {
    match user.session.seen {
        0 => user.session.iat,
        seen => seen,
    }
}

/// How often (seconds) an active session's cookie is sealed again with its activity time: a
/// quarter of `session.idle_timeout`, at most 5 minutes, at least 1 second. The cookie's `seen`
/// lags the last request by less than this, so an idle session ends between
/// `idle_timeout - renew_every` and `idle_timeout` after its last request (at most 25 % or 5
/// minutes early); each active session costs one sealing (microseconds, no store) per interval.
fn renew_every(timeout: Duration) -> u64 {
    (timeout.as_secs() / 4).clamp(1, 300)
}

/// The value of a `Set-Cookie` line (`name=value; attributes`).
fn cookie_value(set_cookie: &str) -> Option<&str> {
    let (_, value) = set_cookie.split(';').next()?.split_once('=')?;
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewals_come_at_a_quarter_of_the_timeout_within_a_second_and_five_minutes() {
        assert_eq!(renew_every(Duration::from_secs(10)), 2);
        assert_eq!(renew_every(Duration::from_secs(3)), 1);
        assert_eq!(renew_every(Duration::from_secs(30 * 60)), 300);
        assert_eq!(renew_every(Duration::from_secs(8 * 3600)), 300);
        assert_eq!(renew_every(Duration::from_secs(600)), 150);
    }

    #[test]
    fn the_cookie_value_is_read_from_its_set_cookie_line() {
        assert_eq!(
            cookie_value("profilegate_session=abc+/=; Path=/; HttpOnly"),
            Some("abc+/=")
        );
        assert_eq!(cookie_value("broken; Path=/"), None);
    }
}
