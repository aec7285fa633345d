//! Sealed cookies: the session (who is signed in) and the login state (state, nonce and PKCE
//! verifier of one login in progress). Both are encrypted and authenticated with AES-256-GCM by
//! the cookie crate's private jar; nothing is kept on the server per anonymous request.
//! A cookie that fails to open, or has expired, reads as absent: never an error.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cookie::{Cookie, CookieJar, Key, SameSite};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::config::{PublicUrl, SessionConfig};
use crate::redirect::ReturnTo;

pub mod at_rest;
pub mod revoked;

/// Cookies longer than this are ignored unread (a sealed session is well under 1 KiB).
const MAX_COOKIE_VALUE: usize = 4096;
/// At most this many cookies of one request are looked at.
const MAX_COOKIES: usize = 64;
/// How many logins in progress (browser tabs) one browser may keep at once.
const MAX_LOGINS_IN_PROGRESS: usize = 3;

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A random URL-safe token of `bytes` random bytes.
pub fn random_token(bytes: usize) -> String {
    use base64::Engine;
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// Constant-time comparison of two tokens.
pub fn tokens_equal(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A signed-in user's session, as sealed in the session cookie.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Session {
    /// Random session id, new at every login.
    pub sid: String,
    /// The OP's subject identifier.
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// CSRF token bound to this session, for state-changing forms of the proxy's own pages.
    pub csrf: String,
    /// Question ids picked at login and not yet answered or skipped, in configured order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<String>,
    /// Which of `pending` must be answered before the user may proceed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required: Vec<String>,
    /// The profile revision this session has seen: a cache holding an older one reloads.
    #[serde(default)]
    pub rev: u64,
    /// The login number (1 for the user's first login) that created this session.
    #[serde(default)]
    pub login: u64,
    /// The claims the policy and the question conditions read (ID token, then userinfo),
    /// kept from the login; the others are not kept.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// The user's groups, read at login from `access.groups_claim`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Preferred languages known at login: `ui_locales`, then the OP's `locale` claim.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locales: Vec<String>,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Expires at, seconds since the epoch.
    pub exp: u64,
    /// When the session's claims are due for a refresh at the OP (seconds since the epoch):
    /// `session.refresh_before` ahead of the ID token's expiry; 0 = never (no refresh token,
    /// or `session.refresh` off).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub refresh_at: u64,
    /// The refresh generation this cookie was sealed at (its record's `generation`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub gen: u64,
    /// The last activity this cookie records (seconds since the epoch), for
    /// `session.idle_timeout`; 0 = the login (`iat`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seen: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Session {
    /// How the pages name the signed-in user: name, else e-mail, else preferred username.
    pub fn display_name(&self) -> Option<&str> {
        [&self.name, &self.email, &self.preferred_username]
            .into_iter()
            .find_map(|v| v.as_deref().map(str::trim).filter(|v| !v.is_empty()))
    }

    /// What the pending questions mean for this request's fate. `known` tells which question
    /// ids the configuration still has (a question removed since the login no longer blocks).
    pub fn pending(&self, known: impl Fn(&str) -> bool) -> crate::pipeline::Pending {
        use crate::pipeline::Pending;
        if self.required.iter().any(|id| known(id)) {
            Pending::Required
        } else if self.pending.iter().any(|id| known(id)) {
            Pending::Optional
        } else {
            Pending::Nothing
        }
    }

    /// Removes `id` from the pending questions (answered or skipped).
    pub fn settle(&mut self, id: &str) {
        self.pending.retain(|p| p != id);
        self.required.retain(|p| p != id);
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("sub", &self.sub)
            .field("iat", &self.iat)
            .field("exp", &self.exp)
            .finish_non_exhaustive()
    }
}

/// One login in progress, sealed in a cookie named after its state.
#[derive(Clone, Serialize, Deserialize)]
pub struct LoginState {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub return_to: String,
    /// `ui_locales` asked for by the navigation that started the login (language tags).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ui_locales: Option<String>,
    pub exp: u64,
    /// A silent login (`prompt=none`, `session.silent_reauth`): an answer that the user must
    /// interact at the OP starts a normal login instead of the "Sign-in cancelled" page.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub silent: bool,
}

impl fmt::Debug for LoginState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginState")
            .field("return_to", &self.return_to)
            .field("exp", &self.exp)
            .finish_non_exhaustive()
    }
}

/// What a shown stamp authenticates (domain-separated from anything else the key signs).
fn stamp_message(csrf: &str, question: &str, version: u32, millis: u64) -> String {
    format!("profilegate shown v1\n{csrf}\n{question}\n{version}\n{millis}")
}

/// Seals and opens the proxy's cookies.
pub struct CookieSealer {
    key: Key,
    /// Seals the session's tokens in its record (same secrets, another key).
    tokens: at_rest::TokenSealer,
    session_name: String,
    login_prefix: String,
    secure: bool,
    lifetime: Duration,
    login_timeout: Duration,
    lifecycle: Lifecycle,
}

/// The `[session]` settings of a session's life after the login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    /// `session.idle_timeout`.
    pub idle_timeout: Option<Duration>,
    /// `session.refresh`.
    pub refresh: bool,
    /// `session.refresh_before`.
    pub refresh_before: Duration,
    /// `session.silent_reauth`.
    pub silent_reauth: bool,
}

impl CookieSealer {
    /// Seals with `[session]`'s secret, names and lifetime; cookies are `Secure` when
    /// `public_url` is https; a login state lives `login_timeout` (`oidc.login_timeout`).
    pub fn new(session: &SessionConfig, public_url: &PublicUrl, login_timeout: Duration) -> Self {
        Self {
            // HKDF-expands the configured secret (at least 32 bytes) into the 64-byte key.
            key: Key::derive_from(&session.secret),
            tokens: at_rest::TokenSealer::new(std::slice::from_ref(&session.secret)),
            login_prefix: format!("{}_login_", session.cookie_name),
            session_name: session.cookie_name.clone(),
            secure: public_url.is_https(),
            lifetime: session.lifetime,
            login_timeout,
            lifecycle: Lifecycle {
                idle_timeout: session.idle_timeout,
                refresh: session.refresh,
                refresh_before: session.refresh_before,
                silent_reauth: session.silent_reauth,
            },
        }
    }

    /// A stamp of the moment (`millis` since the epoch) `question` at `version` was shown to
    /// the session whose CSRF token is `csrf`: `<millis>.<HMAC-SHA256, base64url>`, keyed with
    /// the session key's signing half. The question page carries it in a hidden field, so the
    /// time to answer is measured from a time only this proxy (or a replica with the same
    /// secret) can have written, for that session and question.
    pub fn shown_stamp(&self, csrf: &str, question: &str, version: u32, millis: u64) -> String {
        use base64::Engine;
        let tag = ring::hmac::sign(
            &self.stamp_key(),
            stamp_message(csrf, question, version, millis).as_bytes(),
        );
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref());
        format!("{millis}.{tag}")
    }

    /// The time of a [`CookieSealer::shown_stamp`] made for this session and question, or
    /// `None` when it is not one (forged, another session's or question's, malformed).
    pub fn open_shown_stamp(
        &self,
        stamp: &str,
        csrf: &str,
        question: &str,
        version: u32,
    ) -> Option<u64> {
        use base64::Engine;
        let (millis, tag) = stamp.split_once('.')?;
        let millis: u64 = millis.parse().ok()?;
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(tag)
            .ok()?;
        let message = stamp_message(csrf, question, version, millis);
        ring::hmac::verify(&self.stamp_key(), message.as_bytes(), &tag).ok()?;
        Some(millis)
    }

    fn stamp_key(&self) -> ring::hmac::Key {
        ring::hmac::Key::new(ring::hmac::HMAC_SHA256, self.key.signing())
    }

    /// Seals and opens the tokens kept in session records.
    pub fn tokens(&self) -> &at_rest::TokenSealer {
        &self.tokens
    }

    /// The settings of a session's life after the login.
    pub fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }

    /// `session.lifetime`.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    pub fn session_cookie_name(&self) -> &str {
        &self.session_name
    }

    /// True for every cookie name the proxy owns (never forwarded upstream).
    pub fn is_own_cookie(&self, name: &str) -> bool {
        name == self.session_name || name.starts_with(&self.login_prefix)
    }

    /// A new session for a user who has just signed in.
    pub fn new_session(
        &self,
        sub: String,
        email: Option<String>,
        preferred_username: Option<String>,
        name: Option<String>,
    ) -> Session {
        let now = now_secs();
        Session {
            sid: random_token(18),
            sub,
            email,
            preferred_username,
            name,
            csrf: random_token(24),
            pending: Vec::new(),
            required: Vec::new(),
            rev: 0,
            login: 0,
            claims: serde_json::Map::new(),
            groups: Vec::new(),
            locales: Vec::new(),
            iat: now,
            exp: now + self.lifetime.as_secs(),
            refresh_at: 0,
            gen: 0,
            seen: 0,
        }
    }

    /// Whether `session` fits in one cookie once sealed (browsers keep at most 4096 bytes of
    /// name and value); the reason when it does not.
    pub fn fits(&self, session: &Session) -> Result<(), String> {
        let json = serde_json::to_string(session).unwrap_or_default().len();
        // AES-GCM adds a 12-byte nonce and a 16-byte tag; then standard base64.
        let sealed = (json + 28).div_ceil(3) * 4;
        let cookie = self.session_name.len() + 1 + sealed;
        match cookie <= MAX_COOKIE_VALUE {
            true => Ok(()),
            false => Err(format!(
                "the sealed session cookie would be {cookie} bytes (limit {MAX_COOKIE_VALUE}); \
                 {} groups and {} claims kept: narrow access.groups_claim or the claims your \
                 expressions read",
                session.groups.len(),
                session.claims.len()
            )),
        }
    }

    /// The `Set-Cookie` value carrying `session`.
    pub fn seal_session(&self, session: &Session) -> String {
        let json = serde_json::to_string(session).unwrap_or_default();
        let max_age = session.exp.saturating_sub(now_secs());
        self.sealed_cookie(&self.session_name, json, max_age)
    }

    /// The session carried by the request's cookies, if any is valid and unexpired.
    pub fn open_session(&self, cookies: &RequestCookies<'_>) -> Option<Session> {
        self.open_session_value(cookies.get(&self.session_name)?, now_secs())
    }

    /// The session sealed in a session cookie's `value`, if it opens and is unexpired at `now`.
    pub fn open_session_value(&self, value: &str, now: u64) -> Option<Session> {
        let plain = self.open(&self.session_name, value)?;
        let session: Session = serde_json::from_str(&plain).ok()?;
        (session.exp > now).then_some(session)
    }

    /// A `Set-Cookie` value that deletes the session cookie.
    pub fn clear_session(&self) -> String {
        self.expired_cookie(&self.session_name)
    }

    /// Starts a login: the state to send to the OP and the `Set-Cookie` values to answer with
    /// (the new login cookie, plus deletions of the oldest logins beyond the limit).
    pub fn begin_login(
        &self,
        cookies: &RequestCookies<'_>,
        nonce: String,
        pkce_verifier: String,
        return_to: &ReturnTo,
        ui_locales: Option<String>,
    ) -> (LoginState, Vec<String>) {
        self.begin(cookies, nonce, pkce_verifier, return_to, ui_locales, false)
    }

    /// [`CookieSealer::begin_login`] for a silent login (`prompt=none`): its state says so.
    pub fn begin_silent_login(
        &self,
        cookies: &RequestCookies<'_>,
        nonce: String,
        pkce_verifier: String,
        return_to: &ReturnTo,
        ui_locales: Option<String>,
    ) -> (LoginState, Vec<String>) {
        self.begin(cookies, nonce, pkce_verifier, return_to, ui_locales, true)
    }

    fn begin(
        &self,
        cookies: &RequestCookies<'_>,
        nonce: String,
        pkce_verifier: String,
        return_to: &ReturnTo,
        ui_locales: Option<String>,
        silent: bool,
    ) -> (LoginState, Vec<String>) {
        let state = LoginState {
            state: random_token(24),
            nonce,
            pkce_verifier,
            return_to: return_to.path().to_owned(),
            ui_locales,
            exp: now_secs() + self.login_timeout.as_secs(),
            silent,
        };
        // The new login cookie first, the deletions after it (see `clear_logins` at the callback).
        let json = serde_json::to_string(&state).unwrap_or_default();
        let mut set_cookies = vec![self.sealed_cookie(
            &self.login_cookie_name(&state.state),
            json,
            self.login_timeout.as_secs(),
        )];
        let mut open: Vec<(u64, &str)> = cookies
            .iter()
            .filter(|(name, _)| name.starts_with(&self.login_prefix))
            .map(|(name, value)| {
                let exp = self
                    .open(name, value)
                    .and_then(|p| serde_json::from_str::<LoginState>(&p).ok())
                    .map_or(0, |s| s.exp);
                (exp, name)
            })
            .collect();
        open.sort_unstable();
        let excess = (open.len() + 1).saturating_sub(MAX_LOGINS_IN_PROGRESS);
        for (_, name) in open.into_iter().take(excess) {
            set_cookies.push(self.expired_cookie(name));
        }
        (state, set_cookies)
    }

    /// The login in progress that `state` names, if its cookie is present, valid and unexpired.
    pub fn open_login(&self, cookies: &RequestCookies<'_>, state: &str) -> Option<LoginState> {
        let name = self.login_cookie_name(state);
        let plain = self.open(&name, cookies.get(&name)?)?;
        let login: LoginState = serde_json::from_str(&plain).ok()?;
        (tokens_equal(&login.state, state) && login.exp > now_secs()).then_some(login)
    }

    /// `Set-Cookie` values deleting every login cookie the request carries.
    pub fn clear_logins(&self, cookies: &RequestCookies<'_>) -> Vec<String> {
        cookies
            .iter()
            .filter(|(name, _)| name.starts_with(&self.login_prefix))
            .map(|(name, _)| self.expired_cookie(name))
            .collect()
    }

    /// A `Set-Cookie` value deleting the login cookie of `state`.
    pub fn clear_login(&self, state: &str) -> String {
        self.expired_cookie(&self.login_cookie_name(state))
    }

    fn login_cookie_name(&self, state: &str) -> String {
        // The state is URL-safe base64; its first characters name the cookie.
        let short: String = state
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(12)
            .collect();
        format!("{}{short}", self.login_prefix)
    }

    fn sealed_cookie(&self, name: &str, plain: String, max_age: u64) -> String {
        let mut jar = CookieJar::new();
        jar.private_mut(&self.key)
            .add(Cookie::new(name.to_owned(), plain));
        let value = jar
            .get(name)
            .map(|c| c.value().to_owned())
            .unwrap_or_default();
        self.cookie(name, value, max_age)
    }

    fn expired_cookie(&self, name: &str) -> String {
        self.cookie(name, String::new(), 0)
    }

    fn cookie(&self, name: &str, value: String, max_age: u64) -> String {
        // The sealed value is standard base64, whose characters are all valid cookie octets, so
        // it is written and read without percent-encoding (no encoded()/split_parse mismatch).
        Cookie::build((name.to_owned(), value))
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .max_age(cookie::time::Duration::seconds(
                max_age.min(i64::MAX as u64) as i64,
            ))
            .build()
            .to_string()
    }

    fn open(&self, name: &str, value: &str) -> Option<String> {
        let mut jar = CookieJar::new();
        jar.add_original(Cookie::new(name.to_owned(), value.to_owned()));
        jar.private(&self.key)
            .get(name)
            .map(|c| c.value().to_owned())
    }
}

/// The cookies of one request, parsed lazily from its `Cookie` headers and bounded in count
/// and size.
pub struct RequestCookies<'a> {
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> RequestCookies<'a> {
    pub fn parse<I: IntoIterator<Item = &'a [u8]>>(headers: I) -> Self {
        let mut pairs = Vec::new();
        for header in headers {
            let Ok(text) = std::str::from_utf8(header) else {
                continue;
            };
            for part in text.split(';') {
                if pairs.len() >= MAX_COOKIES {
                    return Self { pairs };
                }
                let Some((name, value)) = part.split_once('=') else {
                    continue;
                };
                let (name, value) = (name.trim(), value.trim().trim_matches('"'));
                if !name.is_empty() && value.len() <= MAX_COOKIE_VALUE {
                    pairs.push((name, value));
                }
            }
        }
        Self { pairs }
    }

    /// The first cookie called `name`.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        self.pairs.iter().copied()
    }
}

/// A sealer for unit tests, from a minimal configuration with this session secret.
#[cfg(test)]
pub(crate) fn test_sealer(secret: &str) -> CookieSealer {
    let text = format!(
        r#"
[upstream]
url = "http://127.0.0.1:3000"
[oidc]
issuer = "http://127.0.0.1:1"
client_id = "c"
client_secret = "s"
[session]
secret = "{secret}"
"#
    );
    let env: &[(&str, &str)] = &[];
    let config =
        crate::config::Config::from_toml(&text, env, std::path::Path::new(".")).expect("config");
    CookieSealer::new(
        &config.session,
        &config.server.public_url,
        config.oidc.login_timeout,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> CookieSealer {
        test_sealer("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
    }

    fn value_of(set_cookie: &str) -> (String, String) {
        let c = Cookie::parse(set_cookie.to_owned()).expect("cookie");
        (c.name().to_owned(), c.value().to_owned())
    }

    #[test]
    fn a_shown_stamp_opens_only_for_its_session_question_and_version() {
        let s = sealer();
        let stamp = s.shown_stamp("csrf1", "company", 2, 1_700_000_000_123);
        assert_eq!(
            s.open_shown_stamp(&stamp, "csrf1", "company", 2),
            Some(1_700_000_000_123)
        );
        assert_eq!(s.open_shown_stamp(&stamp, "csrf2", "company", 2), None);
        assert_eq!(s.open_shown_stamp(&stamp, "csrf1", "role", 2), None);
        assert_eq!(s.open_shown_stamp(&stamp, "csrf1", "company", 3), None);
        // An earlier time with the same tag: refused (the client cannot move the clock).
        let (_, tag) = stamp.split_once('.').expect("stamp");
        let moved = format!("1600000000000.{tag}");
        assert_eq!(s.open_shown_stamp(&moved, "csrf1", "company", 2), None);
        assert_eq!(s.open_shown_stamp("garbage", "csrf1", "company", 2), None);
        let other = test_sealer("ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=");
        assert_eq!(other.open_shown_stamp(&stamp, "csrf1", "company", 2), None);
    }

    #[test]
    fn sealed_session_round_trips_and_hides_its_content() {
        let s = sealer();
        let session = s.new_session("alice".into(), Some("a@example.com".into()), None, None);
        let set = s.seal_session(&session);
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Lax"),
            "{set}"
        );
        assert!(!set.contains("alice"), "{set}");
        let (name, value) = value_of(&set);
        let header = format!("other=1; {name}={value}");
        let cookies = RequestCookies::parse([header.as_bytes()]);
        assert_eq!(s.open_session(&cookies), Some(session));
    }

    #[test]
    fn tampered_or_foreign_cookie_reads_as_anonymous() {
        let s = sealer();
        let session = s.new_session("alice".into(), None, None, None);
        let (name, value) = value_of(&s.seal_session(&session));
        let mut bytes = value.into_bytes();
        let mid = bytes.len() / 2;
        bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
        let header = format!("{name}={}", String::from_utf8(bytes).expect("utf8"));
        assert_eq!(
            s.open_session(&RequestCookies::parse([header.as_bytes()])),
            None
        );
        let garbage = format!("{name}=not-base64!!");
        assert_eq!(
            s.open_session(&RequestCookies::parse([garbage.as_bytes()])),
            None
        );
    }

    #[test]
    fn expired_session_reads_as_anonymous() {
        let s = sealer();
        let mut session = s.new_session("alice".into(), None, None, None);
        session.exp = now_secs() - 1;
        let json = serde_json::to_string(&session).expect("json");
        let (name, value) = value_of(&s.sealed_cookie("profilegate_session", json, 60));
        let header = format!("{name}={value}");
        assert_eq!(
            s.open_session(&RequestCookies::parse([header.as_bytes()])),
            None
        );
    }

    #[test]
    fn login_state_opens_only_for_its_own_state() {
        let s = sealer();
        let none = RequestCookies::parse(std::iter::empty());
        let rt = ReturnTo::root();
        let (login, set) = s.begin_login(&none, "n".into(), "v".into(), &rt, None);
        let (name, value) = value_of(set.first().expect("cookie"));
        let header = format!("{name}={value}");
        let cookies = RequestCookies::parse([header.as_bytes()]);
        assert!(s.open_login(&cookies, &login.state).is_some());
        let mut other = login.state.clone();
        other.push('x');
        assert!(s.open_login(&cookies, &other).is_none());
    }

    #[test]
    fn a_silent_login_state_says_so_and_an_older_one_reads_as_not_silent() {
        let s = sealer();
        let none = RequestCookies::parse(std::iter::empty());
        let rt = ReturnTo::root();
        for silent in [false, true] {
            let (login, set) = match silent {
                true => s.begin_silent_login(&none, "n".into(), "v".into(), &rt, None),
                false => s.begin_login(&none, "n".into(), "v".into(), &rt, None),
            };
            let (name, value) = value_of(set.first().expect("cookie"));
            let header = format!("{name}={value}");
            let cookies = RequestCookies::parse([header.as_bytes()]);
            let opened = s.open_login(&cookies, &login.state).expect("opens");
            assert_eq!((login.silent, opened.silent), (silent, silent));
        }
        // A login state sealed before the field existed is a normal login.
        let old: LoginState = serde_json::from_str(
            r#"{"state":"s","nonce":"n","pkce_verifier":"v","return_to":"/","exp":1}"#,
        )
        .expect("old state");
        assert!(!old.silent);
    }

    #[test]
    fn logins_in_progress_are_capped() {
        let s = sealer();
        let mut header = String::new();
        for _ in 0..5 {
            let cookies = RequestCookies::parse([header.as_bytes()]);
            let (_, set) = s.begin_login(&cookies, "n".into(), "v".into(), &ReturnTo::root(), None);
            let (name, value) = value_of(set.first().expect("cookie"));
            header.push_str(&format!("{name}={value}; "));
            assert!(set.len() <= MAX_LOGINS_IN_PROGRESS, "{set:?}");
        }
        let cookies = RequestCookies::parse([header.as_bytes()]);
        let (_, set) = s.begin_login(&cookies, "n".into(), "v".into(), &ReturnTo::root(), None);
        // 5 present + 1 new, at most 3 kept: the new cookie, then 3 deletions.
        assert_eq!(set.len(), 4);
        assert!(!set[0].contains("Max-Age=0"), "{set:?}");
        assert!(set[1..].iter().all(|c| c.contains("Max-Age=0")), "{set:?}");
    }

    #[test]
    fn cookie_parsing_is_bounded() {
        let long = format!("a={}", "x".repeat(MAX_COOKIE_VALUE + 1));
        assert_eq!(RequestCookies::parse([long.as_bytes()]).get("a"), None);
        let many: String = (0..500).map(|i| format!("c{i}=v; ")).collect();
        assert_eq!(
            RequestCookies::parse([many.as_bytes()]).iter().count(),
            MAX_COOKIES
        );
    }
}
