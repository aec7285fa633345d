//! Applying a user's submitted answers and skips: the one operation behind the hosted question
//! page, the JSON API and the custom UI's post-back. Every value is validated against its
//! question with the same rules, and only when all are valid is anything written (durably,
//! through the [`ProfileStore`]). The routes only parse the request and write the reply.

use std::collections::BTreeMap;

use super::engine::{answer_is_current, Engine};
use crate::store::{
    AnswerSource, ProfileRecord, ProfileStore, Skip, StoreError, StoredAnswer, UserKey,
};

/// What went wrong with which answer: id -> message.
pub type FieldErrors = BTreeMap<String, String>;

/// What a user submitted: raw values per question id, and the ids skipped.
pub struct Submission<'a> {
    pub answers: &'a [(String, Vec<String>)],
    pub skips: &'a [String],
    /// When it was submitted (seconds since the epoch): the answers' and skips' time.
    pub at: u64,
}

/// The user a submission is applied for: who, which questions are pending, which login.
pub struct Respondent<'a> {
    pub key: &'a UserKey,
    /// The pending question ids: only these may be answered or skipped.
    pub pending: &'a [String],
    /// The ids of `pending` that must be answered: besides the required questions, optional
    /// ones skipped `max_skips` times (soft-required, as the engine picked them). None of
    /// these may be skipped.
    pub required: &'a [String],
    /// The login the skips belong to.
    pub login: u64,
}

/// The outcome of [`apply`].
#[derive(Debug)]
pub enum Applied {
    /// Every value was valid: the record after the writes (or as stored, when nothing was
    /// written).
    Stored(ProfileRecord),
    /// At least one value was not: nothing was written.
    Invalid(FieldErrors),
}

/// Validates `submission` for `respondent`'s pending questions in `lang` and, when every value
/// is valid, stores the answers and then the skips. Nothing is stored when any is invalid.
pub async fn apply(
    engine: &Engine,
    store: &dyn ProfileStore,
    respondent: Respondent<'_>,
    submission: Submission<'_>,
    lang: &str,
) -> Result<Applied, StoreError> {
    let Submission { answers, skips, at } = submission;
    let mut errors = FieldErrors::new();
    let mut valid = Vec::new();
    let pending = |id: &str| respondent.pending.iter().any(|p| p == id);
    for (id, raw) in answers {
        let Some(q) = engine.question(id).filter(|_| pending(id)) else {
            errors.insert(id.clone(), "This question is not pending.".into());
            continue;
        };
        match q.validate_in(raw, lang) {
            Ok(value) => valid.push((
                id.clone(),
                StoredAnswer {
                    value,
                    answered_at: at,
                    question_version: q.version,
                    source: AnswerSource::User,
                },
            )),
            Err(e) => {
                errors.insert(id.clone(), e.message);
            }
        }
    }
    for id in skips {
        match engine.question(id).filter(|_| pending(id)) {
            None => {
                errors.insert(id.clone(), "This question is not pending.".into());
            }
            Some(q) if q.required || respondent.required.contains(id) => {
                errors.insert(id.clone(), "This question must be answered.".into());
            }
            Some(_) if answers.iter().any(|(a, _)| a == id) => {
                errors.insert(id.clone(), "Answer or skip a question, not both.".into());
            }
            Some(_) => {}
        }
    }
    if !errors.is_empty() {
        return Ok(Applied::Invalid(errors));
    }
    let key = respondent.key;
    let mut record = None;
    if !valid.is_empty() {
        record = Some(store.save_answers(key, valid).await?);
    }
    for id in skips {
        let skip = Skip::new(at, respondent.login);
        // A skip stands beside an answer that no longer counts (expired, or to an older
        // version): the question was asked again. A current answer wins over a late skip.
        let outdated = |a: &StoredAnswer| {
            engine
                .question(id)
                .is_some_and(|q| !answer_is_current(q, a, at))
        };
        record = Some(store.record_skip(key, id, skip, &outdated).await?);
    }
    let record = match record {
        Some(r) => r,
        None => store.load(key).await?.unwrap_or_default(),
    };
    Ok(Applied::Stored(record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{AnswerValue, Question, QuestionType};
    use crate::store::{SledOptions, SledStore};

    fn engine() -> Engine {
        let mut company = Question::new("company", "Company", QuestionType::Text);
        company.required = true;
        let age = Question::new("age", "Age", QuestionType::Integer);
        let role = Question::new("role", "Role", QuestionType::Text);
        let team = Question::new("team", "Team", QuestionType::Text);
        Engine::new(vec![company, age, role, team], 3)
    }

    fn key() -> UserKey {
        UserKey {
            issuer: "https://op.example".into(),
            subject: "alice".into(),
        }
    }

    async fn store(dir: &tempfile::TempDir) -> SledStore {
        SledStore::open(&dir.path().join("data"), SledOptions::default())
            .await
            .expect("store")
    }

    fn answer(id: &str, value: &str) -> (String, Vec<String>) {
        (id.to_owned(), vec![value.to_owned()])
    }

    #[tokio::test]
    async fn one_invalid_value_stores_nothing_not_even_the_valid_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(&dir).await;
        let pending = ["company".to_owned(), "age".to_owned()];
        let answers = [answer("company", "Acme"), answer("age", "old")];
        let respondent = Respondent {
            key: &key(),
            pending: &pending,
            required: &[],
            login: 1,
        };
        let submission = Submission {
            answers: &answers,
            skips: &[],
            at: 1_700_000_000,
        };
        let applied = apply(&engine(), &store, respondent, submission, "en")
            .await
            .expect("store up");
        let Applied::Invalid(errors) = applied else {
            panic!("an invalid age is refused: {applied:?}");
        };
        assert_eq!(errors.keys().collect::<Vec<_>>(), ["age"]);
        assert_eq!(store.load(&key()).await.expect("load"), None);
    }

    #[tokio::test]
    async fn valid_answers_and_skips_are_stored_with_the_login_of_the_skip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(&dir).await;
        let pending = ["company".to_owned(), "role".to_owned()];
        let answers = [answer("company", "Acme")];
        let skips = ["role".to_owned()];
        let respondent = Respondent {
            key: &key(),
            pending: &pending,
            required: &[],
            login: 3,
        };
        let submission = Submission {
            answers: &answers,
            skips: &skips,
            at: 1_700_000_000,
        };
        let applied = apply(&engine(), &store, respondent, submission, "en")
            .await
            .expect("store up");
        let Applied::Stored(record) = applied else {
            panic!("valid answers are stored: {applied:?}");
        };
        assert_eq!(
            record.answers["company"].value,
            AnswerValue::Text("Acme".into())
        );
        assert_eq!(record.answers["company"].source, AnswerSource::User);
        assert_eq!(record.skips["role"].login, 3);
        assert_eq!(store.load(&key()).await.expect("load"), Some(record));
    }

    #[tokio::test]
    async fn only_pending_questions_may_be_answered_and_required_ones_not_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(&dir).await;
        let pending = ["company".to_owned(), "role".to_owned()];
        let answers = [answer("team", "Core"), answer("role", "Dev")];
        let skips = ["company".to_owned(), "role".to_owned()];
        let respondent = Respondent {
            key: &key(),
            pending: &pending,
            required: &[],
            login: 1,
        };
        let submission = Submission {
            answers: &answers,
            skips: &skips,
            at: 1_700_000_000,
        };
        let applied = apply(&engine(), &store, respondent, submission, "en")
            .await
            .expect("store up");
        let Applied::Invalid(errors) = applied else {
            panic!("refused: {applied:?}");
        };
        assert_eq!(errors["team"], "This question is not pending.");
        assert_eq!(errors["company"], "This question must be answered.");
        assert_eq!(errors["role"], "Answer or skip a question, not both.");
        assert_eq!(store.load(&key()).await.expect("load"), None);
    }

    #[tokio::test]
    async fn a_soft_required_question_cannot_be_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(&dir).await;
        let pending = ["role".to_owned()];
        let respondent = Respondent {
            key: &key(),
            pending: &pending,
            required: &pending,
            login: 4,
        };
        let skips = ["role".to_owned()];
        let submission = Submission {
            answers: &[],
            skips: &skips,
            at: 1_700_000_000,
        };
        let applied = apply(&engine(), &store, respondent, submission, "en")
            .await
            .expect("store up");
        let Applied::Invalid(errors) = applied else {
            panic!("refused: {applied:?}");
        };
        assert_eq!(errors["role"], "This question must be answered.");
        assert_eq!(store.load(&key()).await.expect("load"), None);
    }

    #[tokio::test]
    async fn skipping_a_question_asked_again_counts_beside_its_expired_answer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(&dir).await;
        let mut role = Question::new("role", "Role", QuestionType::Text);
        role.expires_after = Some(std::time::Duration::from_secs(100));
        let engine = Engine::new(vec![role], 1);
        let answered_at = 1_700_000_000;
        let old = StoredAnswer {
            value: AnswerValue::Text("Dev".into()),
            answered_at,
            question_version: 1,
            source: AnswerSource::User,
        };
        store
            .save_answers(&key(), vec![("role".into(), old.clone())])
            .await
            .expect("saved");
        let pending = ["role".to_owned()];
        let skips = ["role".to_owned()];
        let user = key();
        let skip_at = |at| {
            let respondent = Respondent {
                key: &user,
                pending: &pending,
                required: &[],
                login: 2,
            };
            let submission = Submission {
                answers: &[],
                skips: &skips,
                at,
            };
            (respondent, submission)
        };
        // Still current (another tab answered a moment ago): the late skip changes nothing.
        let (respondent, submission) = skip_at(answered_at + 99);
        let Applied::Stored(record) = apply(&engine, &store, respondent, submission, "en")
            .await
            .expect("store up")
        else {
            panic!("a skip is valid");
        };
        assert!(record.skips.is_empty());
        // Expired: the skip is recorded and counted, the old answer kept.
        for (n, at) in [(1, answered_at + 100), (2, answered_at + 500)] {
            let (respondent, submission) = skip_at(at);
            let Applied::Stored(record) = apply(&engine, &store, respondent, submission, "en")
                .await
                .expect("store up")
            else {
                panic!("a skip is valid");
            };
            assert_eq!(
                (record.skips["role"].at, record.skips["role"].count),
                (at, n)
            );
            assert_eq!(record.answers["role"], old);
        }
    }
}
