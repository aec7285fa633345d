//! One user's stored record, its on-disk form (versioned JSON) and the pure changes the store
//! applies to it. Backends only add atomicity and durability around these functions.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::StoreError;
use crate::profile::AnswerValue;

/// The format version written into every record (`"v"`). A reader refuses records with a higher
/// version rather than rewrite them and drop what it does not understand. Within one version,
/// fields may be added: missing ones read as their defaults and unknown ones are ignored.
pub const RECORD_FORMAT: u32 = 1;

/// Everything kept about one user. Times are seconds since the Unix epoch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProfileRecord {
    /// Question id -> its answer.
    pub answers: BTreeMap<String, StoredAnswer>,
    /// Question id -> its latest skip. Cleared when the question is answered.
    pub skips: BTreeMap<String, Skip>,
    /// Completed logins.
    pub logins: u64,
    /// Time of the first login (0 until there is one).
    pub first_login_at: u64,
    /// Time of the latest login.
    pub last_login_at: u64,
    /// Goes up by one at every change of what the upstream sees (answers) or the questions
    /// depend on (skips); 0 means "never changed that way". A login (the counters and times
    /// above) leaves it as it is. Caches and sessions compare it to notice that what they hold
    /// is stale.
    pub revision: u64,
}

/// One stored answer.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredAnswer {
    pub value: AnswerValue,
    #[serde(default)]
    pub answered_at: u64,
    /// The question's configured version when it was answered, so a changed question can be
    /// asked again.
    #[serde(default)]
    pub question_version: u32,
    #[serde(default)]
    pub source: AnswerSource,
}

/// Answers are personal data: `Debug` shows the value's type, never the value.
impl fmt::Debug for StoredAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.value {
            AnswerValue::Text(_) => "text",
            AnswerValue::Integer(_) => "integer",
            AnswerValue::Number(_) => "number",
            AnswerValue::Bool(_) => "bool",
            AnswerValue::List(_) => "list",
            AnswerValue::Date(_) => "date",
        };
        f.debug_struct("StoredAnswer")
            .field("value", &format_args!("<{kind}, redacted>"))
            .field("answered_at", &self.answered_at)
            .field("question_version", &self.question_version)
            .field("source", &self.source)
            .finish()
    }
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnswerSource {
    /// Given by the user on a profile form.
    #[default]
    User,
    /// Taken from a claim of the OpenID Provider.
    Provider,
}

/// A skipped optional question: its latest skip, and how many there were since it was last
/// answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Skip {
    /// When it was skipped (the latest time).
    pub at: u64,
    /// The login number (`ProfileRecord::logins`) at which it was skipped (the latest time).
    pub login: u64,
    /// How many times it was skipped since it was last answered; set by [`with_skip`] (the
    /// value a caller passes is ignored). A record written before skips were counted reads
    /// as 1.
    #[serde(default = "one_skip")]
    pub count: u32,
}

impl Skip {
    /// A skip at `at` during login `login` (counted when stored).
    pub fn new(at: u64, login: u64) -> Self {
        Self {
            at,
            login,
            count: 0,
        }
    }
}

fn one_skip() -> u32 {
    1
}

// ---- pure changes: `None` means "nothing to change" --------------------------------------------
// The caller sets the new revision (old + 1 for answers and skips, unchanged for a login), so
// every backend counts alike.

pub(super) fn with_login(current: Option<&ProfileRecord>, at: u64) -> Option<ProfileRecord> {
    let mut next = current.cloned().unwrap_or_default();
    if next.logins == 0 {
        next.first_login_at = at;
    }
    next.logins = next.logins.saturating_add(1);
    next.last_login_at = next.last_login_at.max(at);
    Some(next)
}

pub(super) fn with_answers(
    current: Option<&ProfileRecord>,
    answers: &[(String, StoredAnswer)],
) -> Option<ProfileRecord> {
    if answers.is_empty() {
        return None;
    }
    let mut next = current.cloned().unwrap_or_default();
    for (id, answer) in answers {
        next.skips.remove(id);
        next.answers.insert(id.clone(), answer.clone());
    }
    Some(next)
}

/// Records a skip of `id`, one more than the skips before it. Refused (`None`) when the
/// question has an answer that `outdated` does not call outdated (expired, or given to an
/// older version): an answer from another tab wins over a late skip, while a skip of a
/// question asked again beside its old answer counts.
pub(super) fn with_skip(
    current: Option<&ProfileRecord>,
    id: &str,
    skip: Skip,
    outdated: &dyn Fn(&StoredAnswer) -> bool,
) -> Option<ProfileRecord> {
    if current
        .and_then(|r| r.answers.get(id))
        .is_some_and(|a| !outdated(a))
    {
        return None;
    }
    let mut next = current.cloned().unwrap_or_default();
    let before = next.skips.get(id).map_or(0, |s| s.count);
    next.skips.insert(
        id.to_string(),
        Skip {
            count: before.saturating_add(1),
            ..skip
        },
    );
    Some(next)
}

/// The record without answers and skips (the user erased them); `None` when it has neither.
pub(super) fn without_answers(current: Option<&ProfileRecord>) -> Option<ProfileRecord> {
    let current = current.filter(|r| !r.answers.is_empty() || !r.skips.is_empty())?;
    Some(ProfileRecord {
        answers: BTreeMap::new(),
        skips: BTreeMap::new(),
        ..current.clone()
    })
}

/// Refuses values that would not read back as written: JSON has no NaN or infinity (serde_json
/// would write `null`, and the record would then fail to load).
pub(super) fn check_storable(answers: &[(String, StoredAnswer)]) -> Result<(), StoreError> {
    for (id, answer) in answers {
        if let AnswerValue::Number(n) = answer.value {
            if !n.is_finite() {
                return Err(StoreError::Invalid(format!(
                    "answer to {id:?} is a number that is not finite"
                )));
            }
        }
    }
    Ok(())
}

// ---- on-disk form ------------------------------------------------------------------------------

#[derive(Serialize)]
struct RecordOnDisk<'a> {
    v: u32,
    #[serde(flatten)]
    record: &'a ProfileRecord,
}

#[derive(Deserialize)]
struct FormatProbe {
    #[serde(default = "first_format")]
    v: u32,
}

fn first_format() -> u32 {
    1
}

/// The record as stored: `{"v":1,"answers":{..},"skips":{..},"logins":..,..}`.
pub(super) fn encode(record: &ProfileRecord) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(&RecordOnDisk {
        v: RECORD_FORMAT,
        record,
    })
    .map_err(|e| StoreError::Invalid(format!("cannot encode a profile record: {e}")))
}

/// Reads a stored record. The error is a cause for [`StoreError::Corrupt`] that says what is
/// wrong and where, without quoting the stored bytes (they may hold answers).
pub(super) fn decode(bytes: &[u8]) -> Result<ProfileRecord, String> {
    let probe: FormatProbe = serde_json::from_slice(bytes).map_err(|e| json_cause(&e))?;
    if probe.v > RECORD_FORMAT {
        return Err(format!(
            "written in record format {}, newer than the format {RECORD_FORMAT} this profilegate \
             reads (was it downgraded?)",
            probe.v
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| json_cause(&e))
}

/// serde_json's own messages can quote the offending input (`invalid type: string "…"`).
fn json_cause(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Io => "I/O error",
        Category::Syntax => "not valid JSON",
        Category::Data => "JSON of an unexpected shape",
        Category::Eof => "truncated JSON",
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(value: AnswerValue) -> StoredAnswer {
        StoredAnswer {
            value,
            answered_at: 10,
            question_version: 1,
            source: AnswerSource::User,
        }
    }

    #[test]
    fn first_login_sets_both_times_and_later_ones_only_the_last() {
        let first = with_login(None, 100).expect("change");
        assert_eq!(
            (first.logins, first.first_login_at, first.last_login_at),
            (1, 100, 100)
        );
        let second = with_login(Some(&first), 200).expect("change");
        assert_eq!(
            (second.logins, second.first_login_at, second.last_login_at),
            (2, 100, 200)
        );
        // A replica with a late clock does not move the last login back.
        let late = with_login(Some(&second), 150).expect("change");
        assert_eq!((late.logins, late.last_login_at), (3, 200));
    }

    #[test]
    fn login_after_answers_without_login_sets_first_login() {
        let answered =
            with_answers(None, &[("a".into(), answer(AnswerValue::Bool(true)))]).expect("change");
        assert_eq!(answered.logins, 0);
        let login = with_login(Some(&answered), 50).expect("change");
        assert_eq!((login.logins, login.first_login_at), (1, 50));
    }

    fn current(_: &StoredAnswer) -> bool {
        false
    }

    #[test]
    fn answering_clears_the_skip_and_skipping_an_answer_changes_nothing() {
        let skipped = with_skip(None, "role", Skip::new(5, 1), &current).expect("change");
        assert!(skipped.skips.contains_key("role"));
        let answered = with_answers(
            Some(&skipped),
            &[("role".into(), answer(AnswerValue::Text("x".into())))],
        )
        .expect("change");
        assert!(answered.skips.is_empty());
        assert!(with_skip(Some(&answered), "role", Skip::new(6, 2), &current).is_none());
        assert!(with_answers(Some(&answered), &[]).is_none());
    }

    #[test]
    fn skips_are_counted_until_the_question_is_answered() {
        let once = with_skip(None, "role", Skip::new(5, 1), &current).expect("change");
        assert_eq!(
            once.skips["role"],
            Skip {
                at: 5,
                login: 1,
                count: 1
            }
        );
        let twice = with_skip(Some(&once), "role", Skip::new(9, 3), &current).expect("change");
        assert_eq!(
            twice.skips["role"],
            Skip {
                at: 9,
                login: 3,
                count: 2
            }
        );
        // What the caller passes as the count is not what is stored.
        let forged = Skip {
            count: 40,
            ..Skip::new(10, 4)
        };
        let thrice = with_skip(Some(&twice), "role", forged, &current).expect("change");
        assert_eq!(thrice.skips["role"].count, 3);
        let answered = with_answers(
            Some(&thrice),
            &[("role".into(), answer(AnswerValue::Text("x".into())))],
        )
        .expect("change");
        // Expired (outdated) answer: the skip is recorded beside it and counts from 1 again.
        let outdated = |a: &StoredAnswer| a.answered_at < 100;
        let again = with_skip(Some(&answered), "role", Skip::new(200, 5), &outdated)
            .expect("a skip beside an outdated answer counts");
        assert_eq!(again.skips["role"].count, 1);
        assert!(again.answers.contains_key("role"), "the old answer stays");
    }

    #[test]
    fn a_skip_stored_before_skips_were_counted_reads_as_one() {
        let record = decode(br#"{"v":1,"skips":{"role":{"at":5,"login":2}}}"#).expect("read");
        assert_eq!(
            record.skips["role"],
            Skip {
                at: 5,
                login: 2,
                count: 1
            }
        );
        let next = with_skip(Some(&record), "role", Skip::new(6, 3), &current).expect("change");
        assert_eq!(next.skips["role"].count, 2);
    }

    #[test]
    fn non_finite_numbers_are_refused() {
        for n in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let err = check_storable(&[("n".into(), answer(AnswerValue::Number(n)))])
                .expect_err("refused");
            assert!(matches!(err, StoreError::Invalid(_)));
        }
        check_storable(&[("n".into(), answer(AnswerValue::Number(-0.5)))]).expect("finite");
    }

    #[test]
    fn the_stored_form_is_versioned_json() {
        let mut record = with_answers(
            None,
            &[("company".into(), answer(AnswerValue::Text("Acme".into())))],
        )
        .expect("change");
        record.revision = 3;
        let json: serde_json::Value =
            serde_json::from_slice(&encode(&record).expect("encode")).expect("json");
        assert_eq!(
            json,
            serde_json::json!({
                "v": 1,
                "answers": {"company": {"value": {"text": "Acme"}, "answered_at": 10,
                                        "question_version": 1, "source": "user"}},
                "skips": {},
                "logins": 0, "first_login_at": 0, "last_login_at": 0, "revision": 3
            })
        );
    }

    #[test]
    fn missing_fields_read_as_defaults_and_unknown_ones_are_ignored() {
        let record = decode(br#"{"logins":2,"answers":{"a":{"value":{"bool":true}}},"later":1}"#)
            .expect("read");
        assert_eq!(record.logins, 2);
        assert_eq!(record.revision, 0);
        let a = &record.answers["a"];
        assert_eq!((a.answered_at, a.source), (0, AnswerSource::User));
    }

    #[test]
    fn decode_errors_never_quote_the_stored_bytes() {
        let cases: [&[u8]; 4] = [
            br#"{"v":1,"answers":{"a":{"value":{"integer":"SECRET-ANSWER"}}}}"#,
            br#"{"v":1,"answers":{"a":{"value":{"colour":"SECRET-ANSWER"}}}}"#,
            br#"{"v":1,"answers":"SECRET-ANSWER"#,
            b"SECRET-ANSWER",
        ];
        for bytes in cases {
            let cause = decode(bytes).expect_err("corrupt");
            assert!(!cause.contains("SECRET"), "{cause}");
            assert!(cause.contains("line 1"), "{cause}");
        }
        let newer = decode(br#"{"v":2}"#).expect_err("newer");
        assert!(newer.contains("format 2"), "{newer}");
    }

    #[test]
    fn debug_never_shows_answer_values() {
        let a = answer(AnswerValue::Text("SECRET-ANSWER".into()));
        let shown = format!("{a:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("text"), "{shown}");
    }
}
