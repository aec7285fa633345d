//! What a signed-in user's requests carry upstream besides identity: an `X-Profile-<Id>` header
//! per answer and the signed `X-Profile-Jwt`. Both are built once per user and profile
//! revision and kept in memory, so the hot path neither waits on the store nor signs anything
//! while nothing changes. The store itself is its caller's: a cache miss loads through the
//! store passed in.
//!
//! An erase or an import changes a record behind the cache: the store tells the [`Enricher`]
//! ([`ForgetUsers`]) and it drops the user's view. After an erase the store holds less than
//! the session cookie knows (no record, while the cookie carries the revision it had): the
//! store is then the truth, and the view loaded from it serves that session for a short while
//! ([`BELOW_SESSION_FOR_SECS`]) instead of a reload at every request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use http::header::{HeaderName, HeaderValue};

use crate::jwt::SigningKey;
use crate::profile::header_name;
use crate::session::{now_secs, Session};
use crate::store::{
    ForgetUsers, ProfileCache, ProfileRecord, ProfileStore, Revisioned, StoreError, StoredAnswer,
    UserKey,
};

/// How long a view loaded for a session whose revision is above the store's (the record was
/// erased, or replaced by an import, after the cookie was issued) serves that session before
/// the store is read again: the store is the truth, and a new answer on another replica (which
/// the cookie's old revision cannot reveal) is seen within this time.
pub const BELOW_SESSION_FOR_SECS: u64 = 5;

impl Revisioned for Enriched {
    fn revision(&self) -> u64 {
        self.revision
    }
}

/// One user's upstream additions at one profile revision.
pub struct Enriched {
    pub revision: u64,
    /// The answers by question id, in id order (for the JWT and `api/profile`). A boxed slice,
    /// not the whole record: one slot per answer instead of a `BTreeMap` leaf with room for
    /// eleven (about 800 bytes less per cached user with one answer).
    pub answers: Box<[(String, StoredAnswer)]>,
    /// `X-Profile-*` headers (validated lower-case names).
    pub headers: Box<[(HeaderName, HeaderValue)]>,
    /// The last JWT signed for this revision: (session id, token, expiry).
    jwt: Mutex<Option<(String, HeaderValue, u64)>>,
    /// Loaded for a session whose revision was above the store's: (that revision, until when
    /// it serves sessions up to it). `None` for a view at least as new as what asked for it.
    below_session: Option<(u64, u64)>,
}

impl Enriched {
    /// Whether this view may serve a session at `revision` now.
    fn serves(&self, revision: u64) -> bool {
        self.revision >= revision
            || self
                .below_session
                .is_some_and(|(up_to, until)| revision <= up_to && now_secs() < until)
    }
}

/// Builds and caches [`Enriched`] views.
pub struct Enricher {
    /// Signs the profile JWT.
    key: Arc<SigningKey>,
    issuer: String,
    token_issuer: String,
    audience: String,
    lifetime: u64,
    /// Keyed by subject: one proxy serves one issuer.
    cache: ProfileCache<String, Enriched>,
    /// Goes up at every forget: a view loaded while it changed may predate the erase and is not
    /// kept.
    forgets: AtomicU64,
}

impl Enricher {
    /// `issuer` is the OP's (part of the store key); `token_issuer` is the proxy's public
    /// origin (the JWT's `iss`); `audience` the upstream's origin (the JWT's `aud`).
    /// `cached_users` bounds the in-memory views (`store.profile_cache_users`); beyond it an
    /// arbitrary eighth is dropped (they reload on demand).
    pub fn new(
        key: Arc<SigningKey>,
        issuer: String,
        token_issuer: String,
        audience: String,
        lifetime_secs: u64,
        cached_users: usize,
    ) -> Self {
        Self {
            key,
            issuer,
            token_issuer,
            audience,
            lifetime: lifetime_secs,
            cache: ProfileCache::new(cached_users),
            forgets: AtomicU64::new(0),
        }
    }

    pub fn user_key(&self, subject: &str) -> UserKey {
        UserKey {
            issuer: self.issuer.clone(),
            subject: subject.to_owned(),
        }
    }

    /// The view for `session`: from memory when at least as new as the session's revision,
    /// otherwise loaded from `store` (a restart, another replica, an evicted entry).
    pub async fn for_session(
        &self,
        store: &dyn ProfileStore,
        session: &Session,
    ) -> Result<Arc<Enriched>, StoreError> {
        if let Some(hit) = self.cached(&session.sub, session.rev) {
            return Ok(hit);
        }
        let forgets = self.forgets.load(Ordering::Acquire);
        let record = store
            .load(&self.user_key(&session.sub))
            .await?
            .unwrap_or_default();
        // Below the session's revision: erased (or replaced) since the cookie was issued.
        let below_session = (record.revision < session.rev)
            .then(|| (session.rev, now_secs() + BELOW_SESSION_FOR_SECS));
        let fresh = Arc::new(Self::view(&record, below_session));
        if self.forgets.load(Ordering::Acquire) != forgets {
            // An erase was heard while loading: what was read may be from before it.
            return Ok(fresh);
        }
        Ok(self.cache.put(session.sub.clone(), fresh))
    }

    fn cached(&self, subject: &str, min_revision: u64) -> Option<Arc<Enriched>> {
        if let Some(hit) = self.cache.get(subject, min_revision) {
            return Some(hit);
        }
        self.cache
            .get(subject, 0)
            .filter(|view| view.serves(min_revision))
    }

    /// Replaces the user's view with one built from `record` (after a write).
    pub fn update(&self, subject: &str, record: Arc<ProfileRecord>) -> Arc<Enriched> {
        self.cache
            .put(subject.to_owned(), Arc::new(Self::view(&record, None)))
    }

    fn view(record: &ProfileRecord, below_session: Option<(u64, u64)>) -> Enriched {
        let headers = record
            .answers
            .iter()
            .filter_map(|(id, answer)| {
                let name = HeaderName::from_bytes(header_name(id).as_bytes()).ok()?;
                let value = HeaderValue::from_str(&answer.value.header_value()).ok()?;
                Some((name, value))
            })
            .collect();
        Enriched {
            revision: record.revision,
            answers: record
                .answers
                .iter()
                .map(|(id, answer)| (id.clone(), answer.clone()))
                .collect(),
            headers,
            jwt: Mutex::new(None),
            below_session,
        }
    }

    /// The profile JWT for this session: reused while more than half its lifetime remains.
    pub fn jwt(&self, enriched: &Enriched, session: &Session) -> Option<HeaderValue> {
        let now = now_secs();
        let mut slot = enriched.jwt.lock().ok()?;
        if let Some((sid, token, exp)) = slot.as_ref() {
            if *sid == session.sid && exp.saturating_sub(now) > self.lifetime / 2 {
                return Some(token.clone());
            }
        }
        let exp = now + self.lifetime;
        let profile: serde_json::Map<String, serde_json::Value> = enriched
            .answers
            .iter()
            .map(|(id, a)| (id.clone(), a.value.to_json()))
            .collect();
        let mut claims = serde_json::json!({
            "iss": self.token_issuer,
            "aud": self.audience,
            "sub": session.sub,
            "iat": now,
            "exp": exp,
            "idp": self.issuer,
            "profile": profile,
            "profile_revision": enriched.revision,
        });
        if let Some(obj) = claims.as_object_mut() {
            for (name, value) in [
                ("email", &session.email),
                ("preferred_username", &session.preferred_username),
                ("name", &session.name),
            ] {
                if let Some(v) = value {
                    obj.insert(name.into(), serde_json::Value::String(v.clone()));
                }
            }
        }
        let token = self
            .key
            .sign(&claims)
            .map_err(|e| tracing::error!(error = %e, "profile JWT could not be signed"))
            .ok()?;
        let value = HeaderValue::from_str(&token).ok()?;
        *slot = Some((session.sid.clone(), value.clone(), exp));
        Some(value)
    }
}

/// Told by the store when a record changed behind the cache (an erase, an import).
impl ForgetUsers for Enricher {
    fn forget_user(&self, user: &UserKey) {
        if user.issuer == self.issuer {
            self.forgets.fetch_add(1, Ordering::AcqRel);
            self.cache.remove(user.subject.as_str());
        }
    }

    fn forget_everyone(&self) {
        self.forgets.fetch_add(1, Ordering::AcqRel);
        self.cache.clear();
    }
}
