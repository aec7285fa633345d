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
    /// The last JWT signed for this revision: (session id, refresh generation, token, expiry);
    /// a refreshed session (new claims, same id) gets a new one.
    jwt: Mutex<Option<(String, u64, HeaderValue, u64)>>,
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
        if let Some((sid, gen, token, exp)) = slot.as_ref() {
            if *sid == session.sid
                && *gen == session.gen
                && exp.saturating_sub(now) > self.lifetime / 2
            {
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
        *slot = Some((session.sid.clone(), session.gen, value.clone(), exp));
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use async_trait::async_trait;

    use super::*;
    use crate::profile::AnswerValue;
    use crate::store::{
        AnswerSource, Commit, FunnelRow, Imported, RecordChange, SledOptions, SledStore,
        UserChanges,
    };

    const ISSUER: &str = "https://op.example";

    /// The sled store, counting its loads.
    struct Counted {
        inner: SledStore,
        loads: AtomicUsize,
    }

    crate::store::delegate_session_store!(Counted, inner);

    #[async_trait]
    impl ProfileStore for Counted {
        async fn load(&self, user: &UserKey) -> Result<Option<ProfileRecord>, StoreError> {
            self.loads.fetch_add(1, Ordering::SeqCst);
            self.inner.load(user).await
        }
        async fn update_record(
            &self,
            user: &UserKey,
            commit: Commit,
            change: &RecordChange<'_>,
        ) -> Result<ProfileRecord, StoreError> {
            self.inner.update_record(user, commit, change).await
        }
        async fn get_or_create_secret(
            &self,
            name: &str,
            create: &(dyn Fn() -> Vec<u8> + Send + Sync),
        ) -> Result<Vec<u8>, StoreError> {
            self.inner.get_or_create_secret(name, create).await
        }
        async fn ready(&self) -> bool {
            true
        }
        async fn sync(&self) -> Result<(), StoreError> {
            self.inner.sync().await
        }
        async fn erase(&self, user: &UserKey) -> Result<bool, StoreError> {
            self.inner.erase(user).await
        }
        async fn scan(
            &self,
            after: Option<&UserKey>,
            limit: usize,
        ) -> Result<Vec<(UserKey, ProfileRecord)>, StoreError> {
            self.inner.scan(after, limit).await
        }
        async fn import(
            &self,
            user: &UserKey,
            record: &ProfileRecord,
        ) -> Result<Imported, StoreError> {
            self.inner.import(user, record).await
        }
        fn user_changes(&self) -> &UserChanges {
            self.inner.user_changes()
        }
        async fn add_funnel(&self, deltas: &[FunnelRow]) -> Result<(), StoreError> {
            self.inner.add_funnel(deltas).await
        }
        async fn funnel_totals(&self) -> Result<Vec<FunnelRow>, StoreError> {
            self.inner.funnel_totals().await
        }
    }

    fn company(text: &str) -> Vec<(String, StoredAnswer)> {
        vec![(
            "company".into(),
            StoredAnswer {
                value: AnswerValue::Text(text.into()),
                answered_at: 1,
                question_version: 1,
                source: AnswerSource::User,
            },
        )]
    }

    fn company_of(view: &Enriched) -> Option<String> {
        view.answers
            .iter()
            .find(|(id, _)| id == "company")
            .map(|(_, a)| a.value.header_value())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn after_an_erase_the_store_is_the_truth_without_a_reload_per_request() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Counted {
            inner: SledStore::open(dir.path(), SledOptions::default())
                .await
                .expect("store"),
            loads: AtomicUsize::new(0),
        };
        let key = Arc::new(
            SigningKey::from_pkcs8(&SigningKey::generate_pkcs8().expect("key")).expect("key"),
        );
        let enricher = Arc::new(Enricher::new(
            key,
            ISSUER.into(),
            "https://proxy.example".into(),
            "https://app.example".into(),
            300,
            100,
        ));
        let forget: Arc<dyn ForgetUsers> = enricher.clone();
        store.user_changes().subscribe(Arc::downgrade(&forget));
        let user = UserKey::new(ISSUER, "alice");
        for text in ["one", "two", "Acme"] {
            store
                .save_answers(&user, company(text))
                .await
                .expect("save");
        }
        let mut session =
            crate::session::test_sealer("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
                .new_session("alice".into(), None, None, None);
        session.rev = 3;
        let loads = || store.loads.load(Ordering::SeqCst);

        let view = enricher.for_session(&store, &session).await.expect("view");
        assert_eq!(company_of(&view).as_deref(), Some("Acme"));
        enricher.for_session(&store, &session).await.expect("view");
        assert_eq!(loads(), 1, "cached");

        // Erased: forgotten at once; then served from the store's truth, read once.
        assert!(store.erase(&user).await.expect("erase"));
        for _ in 0..10 {
            let view = enricher.for_session(&store, &session).await.expect("view");
            assert_eq!(company_of(&view), None, "no stale answer");
            assert_eq!(view.revision, 0);
        }
        assert_eq!(loads(), 2, "one read, not one per request");

        // Answered again (revision 1, below the cookie's 3): the new answer is served.
        let record = store
            .save_answers(&user, company("New"))
            .await
            .expect("save");
        enricher.update("alice", Arc::new(record));
        let view = enricher.for_session(&store, &session).await.expect("view");
        assert_eq!(company_of(&view).as_deref(), Some("New"));
        enricher.for_session(&store, &session).await.expect("view");
        assert_eq!(loads(), 3);

        // An import replaces the record: forgotten, and the imported answer is served.
        let mut imported = store.load(&user).await.expect("load").expect("record");
        imported.answers = company("Imported").into_iter().collect();
        store.import(&user, &imported).await.expect("import");
        let view = enricher.for_session(&store, &session).await.expect("view");
        assert_eq!(company_of(&view).as_deref(), Some("Imported"));
    }
}
