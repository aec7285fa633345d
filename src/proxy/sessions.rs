//! Opened session cookies, kept so that the signed-in hot path does not unseal (base64,
//! AES-GCM, JSON) the same cookie at every request, nor re-encode its identity headers.
//!
//! Keyed by the cookie's exact value: only a value that opened with this proxy's key is ever
//! stored, and the same bytes always open to the same session, so a hit proves what a fresh
//! unsealing would. The expiry is still checked at every request. Bounded like the profile
//! cache (a full shard drops an eighth); a miss costs one unsealing.
//!
//! A session keeps verdicts computed from the user's answers: when the store says a record was
//! erased or replaced ([`ForgetUsers`], registered by [`Sessions::listen`]) the user's opened
//! sessions are dropped, and their next request opens the cookie afresh.

use std::sync::{Arc, Mutex};

use super::prepare::Identity;
use crate::policy::SessionVerdicts;
use crate::profile::DueOnPath;
use crate::session::{CookieSealer, RequestCookies, Session};
use crate::store::{ForgetUsers, ProfileCache, Revisioned, UserChanges, UserKey};

/// Opened session cookies kept per proxy worker: about 1 KiB each (cookie, session, headers),
/// so at most ~0.5 MiB per worker.
const CAPACITY: usize = 512;

/// A signed-in user's session with its identity headers, built once per session cookie.
pub struct SignedIn {
    pub session: Session,
    pub identity: Identity,
    /// What the policy decides for this session, with the profile revision it was computed
    /// at (answers can change a verdict): computed once per session and revision.
    verdicts: Mutex<Option<(u64, Arc<SessionVerdicts>)>>,
    /// The `on_paths` questions due for this session.
    due: Mutex<Option<DueCache>>,
}

/// The due `on_paths` questions of a session, as computed at a profile revision and a time.
struct DueCache {
    revision: u64,
    computed_at: u64,
    due: Arc<[DueOnPath]>,
}

/// How long a session's due `on_paths` questions are reused when nothing changed (a skip's
/// `ask_again_after` running out is noticed within this time).
const DUE_FOR_SECS: u64 = 60;

impl SignedIn {
    pub(super) fn new(session: Session) -> Self {
        let identity = Identity::of(&session);
        Self {
            session,
            identity,
            verdicts: Mutex::new(None),
            due: Mutex::new(None),
        }
    }

    /// The due `on_paths` questions at profile `revision` and time `now`, if still cached.
    pub fn cached_due(&self, revision: u64, now: u64) -> Option<Arc<[DueOnPath]>> {
        let cached = self.due.lock().unwrap_or_else(|p| p.into_inner());
        cached
            .as_ref()
            .filter(|c| c.revision == revision && now < c.computed_at + DUE_FOR_SECS)
            .map(|c| c.due.clone())
    }

    /// Keeps the due `on_paths` questions computed at profile `revision` and time `now`.
    pub fn keep_due(&self, revision: u64, now: u64, due: Vec<DueOnPath>) -> Arc<[DueOnPath]> {
        let due: Arc<[DueOnPath]> = due.into();
        *self.due.lock().unwrap_or_else(|p| p.into_inner()) = Some(DueCache {
            revision,
            computed_at: now,
            due: due.clone(),
        });
        due
    }

    /// The session's verdicts at profile `revision`: the cached ones, or `compute`d and kept.
    pub fn verdicts(
        &self,
        revision: u64,
        compute: impl FnOnce() -> SessionVerdicts,
    ) -> Arc<SessionVerdicts> {
        let mut cached = self.verdicts.lock().unwrap_or_else(|p| p.into_inner());
        match &*cached {
            Some((at, verdicts)) if *at == revision => verdicts.clone(),
            _ => {
                let verdicts = Arc::new(compute());
                *cached = Some((revision, verdicts.clone()));
                verdicts
            }
        }
    }

    /// The session, for handlers that change it (a copy: the cached one stays as it was).
    pub fn into_session(self: Arc<Self>) -> Session {
        Arc::try_unwrap(self).map_or_else(|shared| shared.session.clone(), |s| s.session)
    }
}

impl Revisioned for SignedIn {
    fn revision(&self) -> u64 {
        self.session.rev
    }
}

pub struct Sessions {
    opened: Arc<Opened>,
}

/// The opened sessions by cookie value.
struct Opened(ProfileCache<Box<str>, SignedIn>);

/// One proxy serves one issuer: a subject is forgotten whatever the issuer named (forgetting
/// too much only costs an unsealing).
impl ForgetUsers for Opened {
    fn forget_user(&self, user: &UserKey) {
        self.0
            .retain(|_, signed_in| signed_in.session.sub != user.subject);
    }

    fn forget_everyone(&self) {
        self.0.clear();
    }
}

impl Default for Sessions {
    fn default() -> Self {
        Self::new()
    }
}

impl Sessions {
    pub fn new() -> Self {
        Self {
            opened: Arc::new(Opened(ProfileCache::new(CAPACITY))),
        }
    }

    /// Has `changes` (the store's) drop a user's opened sessions when their record is erased or
    /// replaced.
    pub fn listen(&self, changes: &UserChanges) {
        let opened: Arc<dyn ForgetUsers> = self.opened.clone();
        changes.subscribe(Arc::downgrade(&opened));
    }

    /// The request's session if its cookie opens and has not expired at `now` (seconds).
    pub fn open(
        &self,
        sealer: &CookieSealer,
        cookies: &RequestCookies<'_>,
        now: u64,
    ) -> Option<Arc<SignedIn>> {
        let value = cookies.get(sealer.session_cookie_name())?;
        if let Some(hit) = self.opened.0.get(value, 0) {
            return (hit.session.exp > now).then_some(hit);
        }
        let session = sealer.open_session_value(value, now)?;
        Some(
            self.opened
                .0
                .put(value.into(), Arc::new(SignedIn::new(session))),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::now_secs;

    fn sealer(secret: &str) -> CookieSealer {
        crate::session::test_sealer(secret)
    }

    const SECRET: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    const OTHER_SECRET: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

    /// `name=value` of the session cookie `sealer` issues for `sub`.
    fn cookie_for(sealer: &CookieSealer, sub: &str) -> String {
        let session =
            sealer.new_session(sub.into(), Some(format!("{sub}@example.com")), None, None);
        let set = sealer.seal_session(&session);
        set.split(';').next().expect("name=value").to_owned()
    }

    fn open(sessions: &Sessions, sealer: &CookieSealer, cookie: &str, now: u64) -> Option<String> {
        let cookies = RequestCookies::parse([cookie.as_bytes()]);
        sessions
            .open(sealer, &cookies, now)
            .map(|s| s.session.sub.clone())
    }

    #[test]
    fn a_cached_session_is_the_same_session_and_expires_on_time() {
        let sealer = sealer(SECRET);
        let sessions = Sessions::new();
        let cookie = cookie_for(&sealer, "alice");
        let now = now_secs();
        assert_eq!(
            open(&sessions, &sealer, &cookie, now).as_deref(),
            Some("alice")
        );
        // The second time comes from the cache, with the same identity.
        let cookies = RequestCookies::parse([cookie.as_bytes()]);
        let first = sessions.open(&sealer, &cookies, now).expect("cached");
        let again = sessions.open(&sealer, &cookies, now).expect("cached");
        assert!(Arc::ptr_eq(&first, &again));
        // Past its expiry the cached session no longer counts.
        let exp = first.session.exp;
        assert_eq!(open(&sessions, &sealer, &cookie, exp), None);
        assert_eq!(open(&sessions, &sealer, &cookie, exp + 3600), None);
    }

    #[test]
    fn tampered_or_foreign_cookies_never_open_even_after_a_valid_one() {
        let sealer = sealer(SECRET);
        let sessions = Sessions::new();
        let cookie = cookie_for(&sealer, "alice");
        let now = now_secs();
        assert!(open(&sessions, &sealer, &cookie, now).is_some());
        let (name, value) = cookie.split_once('=').expect("pair");
        let mut bytes = value.as_bytes().to_vec();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = format!("{name}={}", String::from_utf8(bytes).expect("ascii"));
        assert_eq!(open(&sessions, &sealer, &tampered, now), None);
        // A cookie sealed with another key does not open here, cached or not.
        let foreign = cookie_for(&sealer_other(), "mallory");
        assert_eq!(open(&sessions, &sealer, &foreign, now), None);
        // And a session cached by one proxy is unknown to another with another key.
        let other = sealer_other();
        assert_eq!(open(&Sessions::new(), &other, &cookie, now), None);
    }

    fn sealer_other() -> CookieSealer {
        sealer(OTHER_SECRET)
    }

    #[test]
    fn identity_headers_are_built_from_the_session() {
        let sealer = sealer(SECRET);
        let sessions = Sessions::new();
        let cookie = cookie_for(&sealer, "zoë");
        let cookies = RequestCookies::parse([cookie.as_bytes()]);
        let opened = sessions.open(&sealer, &cookies, now_secs()).expect("opens");
        assert_eq!(opened.identity.user_value(), Some(&b"zo%C3%AB"[..]));
    }

    #[test]
    fn an_erased_users_sessions_are_opened_afresh_and_others_stay() {
        let sealer = sealer(SECRET);
        let sessions = Sessions::new();
        let changes = UserChanges::new();
        sessions.listen(&changes);
        let now = now_secs();
        let open_arc = |cookie: &str| {
            let cookies = RequestCookies::parse([cookie.as_bytes()]);
            sessions.open(&sealer, &cookies, now).expect("opens")
        };
        let alice = cookie_for(&sealer, "alice");
        let bob = cookie_for(&sealer, "bob");
        let (alice_before, bob_before) = (open_arc(&alice), open_arc(&bob));
        changes.publish(&crate::store::UserChange::User(UserKey::new(
            "https://op.example",
            "alice",
        )));
        assert!(!Arc::ptr_eq(&alice_before, &open_arc(&alice)), "forgotten");
        assert!(Arc::ptr_eq(&bob_before, &open_arc(&bob)), "kept");
        changes.publish(&crate::store::UserChange::Everyone);
        assert!(!Arc::ptr_eq(&bob_before, &open_arc(&bob)));
    }
}
