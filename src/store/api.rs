//! The storage contract, [`ProfileStore`]: what the login callback, the answer handlers and the
//! profile cache's misses call. A backend implements one write primitive,
//! [`ProfileStore::update_record`] (an atomic read-modify-write of one [`ProfileRecord`]); the
//! three write operations (login, answers, skip) are written once here on top of it, with the
//! pure changes of [`super::record`], so every backend counts revisions alike.

use async_trait::async_trait;

use super::admin::Imported;
use super::changes::UserChanges;
use super::error::StoreError;
use super::funnel::FunnelRow;
use super::key::UserKey;
use super::record::{self, ProfileRecord, Skip, StoredAnswer};
use super::sessions::SessionStore;

/// How a write reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Answers and skips: a new revision, durable before the caller hears of it (sled: flushed;
    /// PostgreSQL: committed synchronously).
    Durable,
    /// A login's counters and times: same revision, taken to disk shortly after by the store's
    /// next flush (sled: its background flush or the next durable write; PostgreSQL:
    /// `synchronous_commit = off`).
    Background,
}

/// A change to one user's record: given the latest version (`None` before the first write),
/// the next one, or `None` for "nothing to change". It may run several times when writers race.
pub type RecordChange<'a> =
    dyn Fn(Option<&ProfileRecord>) -> Option<ProfileRecord> + Send + Sync + 'a;

/// Whether a stored answer no longer counts (expired, or given to an older version of its
/// question): a skip may then be recorded beside it.
pub type OutdatedAnswer<'a> = dyn Fn(&StoredAnswer) -> bool + Send + Sync + 'a;

/// The storage contract. Every write applies to the latest version of the record: concurrent
/// writers of one user never lose each other's changes. Answers, skips and secrets are durable
/// when the call returns; a login's bookkeeping reaches the disk shortly after (see
/// [`ProfileStore::record_login`]).
#[async_trait]
pub trait ProfileStore: SessionStore + Send + Sync {
    /// The user's record, or `None` before their first login.
    async fn load(&self, user: &UserKey) -> Result<Option<ProfileRecord>, StoreError>;

    /// The one write primitive of a backend: applies `change` to the latest version of the
    /// user's record atomically against every other writer of that record (on any replica) and
    /// stores the result as `commit` says, returning it. When `change` returns `None` nothing is
    /// written and the current record (or an empty one) is returned. `change` sets everything,
    /// the revision included; it may run more than once.
    async fn update_record(
        &self,
        user: &UserKey,
        commit: Commit,
        change: &RecordChange<'_>,
    ) -> Result<ProfileRecord, StoreError>;

    /// Counts a login at `at` (seconds since the epoch): creates the record at the first one,
    /// adds one to `logins`, sets `first_login_at` (first time only) and `last_login_at`
    /// (never moved backwards by a replica with a late clock). The revision does not change (the
    /// upstream sees nothing of a login), and the call does not wait for the disk: the change is
    /// written at once and made durable by the store's next flush (sled: within 500 ms, or with
    /// the next answer or skip of anyone). A crash in between loses the count of that login,
    /// never an answer; it spares every login a synchronous flush.
    async fn record_login(&self, user: &UserKey, at: u64) -> Result<ProfileRecord, StoreError> {
        self.update_record(user, Commit::Background, &|current| {
            revised(current, Commit::Background, record::with_login(current, at))
        })
        .await
    }

    /// Stores answers (replacing earlier answers to the same ids) and clears skips of those ids.
    /// Creates the record if needed. An empty list changes nothing.
    async fn save_answers(
        &self,
        user: &UserKey,
        answers: Vec<(String, StoredAnswer)>,
    ) -> Result<ProfileRecord, StoreError> {
        record::check_storable(&answers)?;
        self.update_record(user, Commit::Durable, &|current| {
            revised(
                current,
                Commit::Durable,
                record::with_answers(current, &answers),
            )
        })
        .await
    }

    /// Records that question `id` was skipped, counting the skips since its last answer
    /// ([`Skip::count`]). Ignored (the record is returned unchanged) when the question already
    /// has an answer that `outdated` does not call outdated: an answer from another tab wins
    /// over a late skip, while a skip of a question asked again beside its expired answer
    /// counts (the old answer stays).
    async fn record_skip(
        &self,
        user: &UserKey,
        id: &str,
        skip: Skip,
        outdated: &OutdatedAnswer<'_>,
    ) -> Result<ProfileRecord, StoreError> {
        self.update_record(user, Commit::Durable, &|current| {
            revised(
                current,
                Commit::Durable,
                record::with_skip(current, id, skip, outdated),
            )
        })
        .await
    }

    /// The secret named `name`, created with `create` the first time and kept from then on.
    /// When callers race, the first write wins and every caller gets the same bytes. An empty
    /// secret from `create` is refused ([`StoreError::Invalid`]) rather than kept for good.
    async fn get_or_create_secret(
        &self,
        name: &str,
        create: &(dyn Fn() -> Vec<u8> + Send + Sync),
    ) -> Result<Vec<u8>, StoreError>;

    /// Whether the store can serve requests (for `/readyz`).
    async fn ready(&self) -> bool;

    /// Returns once every write made before the call is durable (logins included): called when
    /// profilegate stops.
    async fn sync(&self) -> Result<(), StoreError>;

    // ---- Question funnel (issue 18, D): totals per question id and version -----------------

    /// Adds each row's figures to the stored totals of its question and version (creating the
    /// row), atomically against every other writer (on any replica), durable when it returns.
    /// Called in batches (about once a second) by `metrics::funnel`, never per request.
    async fn add_funnel(&self, deltas: &[FunnelRow]) -> Result<(), StoreError>;

    /// Every stored funnel row, sorted by question id, then version.
    async fn funnel_totals(&self) -> Result<Vec<FunnelRow>, StoreError>;

    // ---- self-service (`/.profilegate/me`) ---------------------------------------------------

    /// Erases the user's answers and skips (their own request, at `/.profilegate/me`): a new,
    /// durable revision. The login count and times stay (the engine's rules read them).
    /// Nothing is written when there is nothing to erase. Like an admin erase, it reaches every
    /// cache of the user ([`ProfileStore::user_changes`]; PostgreSQL: every replica's, by
    /// `NOTIFY`): the user's other sessions, elsewhere, must not keep serving the answers.
    async fn erase_answers(&self, user: &UserKey) -> Result<ProfileRecord, StoreError> {
        let erased = self
            .update_record(user, Commit::Durable, &erase_answers_change)
            .await?;
        self.user_changes()
            .publish(&super::changes::UserChange::User(user.clone()));
        Ok(erased)
    }

    // ---- administration: erase, export, import (issue 18, E; `store/admin.rs`) ---------------

    /// Erases the user's record (answers, skips, counts: the row or entry is deleted), durably,
    /// and has every cache of the user forgotten (this process's before the call returns, other
    /// replicas' through the store). Returns whether there was a record.
    async fn erase(&self, user: &UserKey) -> Result<bool, StoreError>;

    /// Up to `limit` records in key order, starting after `after` (from the first with `None`):
    /// keyset pages for an export that never holds more than one page.
    async fn scan(
        &self,
        after: Option<&UserKey>,
        limit: usize,
    ) -> Result<Vec<(UserKey, ProfileRecord)>, StoreError>;

    /// Writes an imported record (checked by [`super::admin::parse_line`]) through the write
    /// primitive: nothing is written when the stored record already holds the same content, so
    /// importing a line twice leaves the same state. When something was written, every cache of
    /// the user forgets it, as after [`ProfileStore::erase`] (on other replicas within
    /// milliseconds, without waiting for them). Like a login, the write reaches the disk with
    /// the store's next flush ([`Commit::Background`]): an importer calls
    /// [`ProfileStore::sync`] once at the end, instead of a flush per line.
    async fn import(&self, user: &UserKey, record: &ProfileRecord) -> Result<Imported, StoreError>;

    /// The caches to tell when a record changes behind their back (erase, import).
    fn user_changes(&self) -> &UserChanges;
}

/// The import as a change for [`ProfileStore::update_record`], noting in `outcome` what it did
/// (the change may run more than once; the last run is what was written).
pub(super) fn import_change<'a>(
    record: &'a ProfileRecord,
    outcome: &'a std::sync::Mutex<Imported>,
) -> impl Fn(Option<&ProfileRecord>) -> Option<ProfileRecord> + Send + Sync + 'a {
    move |current| {
        let next = super::admin::imported(current, record);
        let what = match (current, &next) {
            (_, None) => Imported::Unchanged,
            (None, Some(_)) => Imported::Created,
            (Some(_), Some(_)) => Imported::Replaced,
        };
        *outcome
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = what;
        next
    }
}

/// The change of [`ProfileStore::erase_answers`]: no answers, no skips, the next revision.
pub(super) fn erase_answers_change(current: Option<&ProfileRecord>) -> Option<ProfileRecord> {
    revised(current, Commit::Durable, record::without_answers(current))
}

/// Gives a changed record its revision: the current one plus one for a [`Commit::Durable`]
/// change (what the upstream sees, or the questions depend on, changed), unchanged for a login.
fn revised(
    current: Option<&ProfileRecord>,
    commit: Commit,
    next: Option<ProfileRecord>,
) -> Option<ProfileRecord> {
    let mut next = next?;
    next.revision = current.map_or(0, |r| r.revision) + u64::from(commit == Commit::Durable);
    Some(next)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;
    use crate::profile::AnswerValue;
    use crate::store::record::AnswerSource;

    /// A backend with nothing but the primitive (a map under a lock), to show that the three
    /// operations need no more than that.
    #[derive(Default)]
    struct MapStore {
        records: Mutex<HashMap<UserKey, ProfileRecord>>,
        commits: Mutex<Vec<Commit>>,
        changes: UserChanges,
        funnel: Mutex<Vec<FunnelRow>>,
        sessions: super::super::sessions::MemorySessions,
    }

    super::super::sessions::delegate_session_store!(MapStore, sessions);

    #[async_trait]
    impl ProfileStore for MapStore {
        async fn load(&self, user: &UserKey) -> Result<Option<ProfileRecord>, StoreError> {
            Ok(self.records.lock().expect("lock").get(user).cloned())
        }

        async fn update_record(
            &self,
            user: &UserKey,
            commit: Commit,
            change: &RecordChange<'_>,
        ) -> Result<ProfileRecord, StoreError> {
            let mut records = self.records.lock().expect("lock");
            let current = records.get(user);
            let Some(next) = change(current) else {
                return Ok(current.cloned().unwrap_or_default());
            };
            records.insert(user.clone(), next.clone());
            self.commits.lock().expect("lock").push(commit);
            Ok(next)
        }

        async fn get_or_create_secret(
            &self,
            _name: &str,
            create: &(dyn Fn() -> Vec<u8> + Send + Sync),
        ) -> Result<Vec<u8>, StoreError> {
            Ok(create())
        }

        async fn ready(&self) -> bool {
            true
        }

        async fn sync(&self) -> Result<(), StoreError> {
            Ok(())
        }

        async fn add_funnel(&self, deltas: &[FunnelRow]) -> Result<(), StoreError> {
            crate::store::funnel::merge_rows(&mut self.funnel.lock().expect("lock"), deltas);
            Ok(())
        }

        async fn funnel_totals(&self) -> Result<Vec<FunnelRow>, StoreError> {
            Ok(self.funnel.lock().expect("lock").clone())
        }

        async fn erase(&self, user: &UserKey) -> Result<bool, StoreError> {
            Ok(self.records.lock().expect("lock").remove(user).is_some())
        }

        async fn scan(
            &self,
            after: Option<&UserKey>,
            limit: usize,
        ) -> Result<Vec<(UserKey, ProfileRecord)>, StoreError> {
            let records = self.records.lock().expect("lock");
            let mut all: Vec<_> = records
                .iter()
                .filter(|(k, _)| after.is_none_or(|a| *k > a))
                .map(|(k, r)| (k.clone(), r.clone()))
                .collect();
            all.sort_by(|a, b| a.0.cmp(&b.0));
            all.truncate(limit);
            Ok(all)
        }

        async fn import(
            &self,
            user: &UserKey,
            record: &ProfileRecord,
        ) -> Result<Imported, StoreError> {
            let outcome = Mutex::new(Imported::Unchanged);
            let change = import_change(record, &outcome);
            self.update_record(user, Commit::Background, &change)
                .await?;
            let imported = *outcome.lock().expect("lock");
            Ok(imported)
        }

        fn user_changes(&self) -> &UserChanges {
            &self.changes
        }
    }

    fn answer(value: AnswerValue) -> StoredAnswer {
        StoredAnswer {
            value,
            answered_at: 1,
            question_version: 1,
            source: AnswerSource::User,
        }
    }

    #[tokio::test]
    async fn the_operations_count_revisions_and_choose_the_commit_on_any_primitive() {
        let store = MapStore::default();
        let u = UserKey::new("https://op.example", "alice");
        let login = store.record_login(&u, 10).await.expect("login");
        assert_eq!(
            (login.logins, login.revision),
            (1, 0),
            "a login keeps the revision"
        );
        let answered = store
            .save_answers(&u, vec![("a".into(), answer(AnswerValue::Bool(true)))])
            .await
            .expect("answers");
        assert_eq!(answered.revision, 1);
        let skipped = store
            .record_skip(&u, "b", Skip::new(11, 1), &|_| false)
            .await
            .expect("skip");
        assert_eq!(skipped.revision, 2);
        // No change, no write: an empty answer list and a skip of an answered question.
        assert_eq!(
            store
                .save_answers(&u, Vec::new())
                .await
                .expect("none")
                .revision,
            2
        );
        let late = store
            .record_skip(&u, "a", Skip::new(12, 1), &|_| false)
            .await
            .expect("late skip");
        assert_eq!((late.revision, late.skips.len()), (2, 1));
        assert_eq!(
            *store.commits.lock().expect("lock"),
            [Commit::Background, Commit::Durable, Commit::Durable]
        );
        let refused = store
            .save_answers(
                &u,
                vec![("n".into(), answer(AnswerValue::Number(f64::NAN)))],
            )
            .await;
        assert!(matches!(refused, Err(StoreError::Invalid(_))));
    }

    #[tokio::test]
    async fn erasing_answers_clears_answers_and_skips_in_a_new_revision_and_keeps_the_logins() {
        let store = MapStore::default();
        let u = UserKey::new("https://op.example", "alice");
        let nobody = store.erase_answers(&u).await.expect("nothing to erase");
        assert_eq!(nobody, ProfileRecord::default());
        store.record_login(&u, 10).await.expect("login");
        store
            .save_answers(&u, vec![("a".into(), answer(AnswerValue::Bool(true)))])
            .await
            .expect("answers");
        store
            .record_skip(&u, "b", Skip::new(11, 1), &|_| false)
            .await
            .expect("skip");
        let erased = store.erase_answers(&u).await.expect("erase");
        assert!(erased.answers.is_empty() && erased.skips.is_empty());
        assert_eq!(
            (erased.revision, erased.logins, erased.first_login_at),
            (3, 1, 10)
        );
        assert_eq!(store.load(&u).await.expect("load"), Some(erased));
        // Nothing left to erase: no new revision, no write.
        let again = store.erase_answers(&u).await.expect("again");
        assert_eq!(again.revision, 3);
        assert_eq!(store.commits.lock().expect("lock").len(), 4);
    }
}
