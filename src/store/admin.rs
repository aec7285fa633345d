//! What the administrator's operations on whole records share across backends: the NDJSON line
//! of an export (and of an import), its validation, and the pure change an import applies.
//! The backends' `erase`, `scan` and `import` (end of [`super::ProfileStore`]) add atomicity,
//! durability and the notification of the other replicas.
//!
//! An export line is `{"issuer":…,"sub":…,"record":{"v":1,…}}`: the record in exactly the
//! versioned JSON the store keeps, so `export | import` moves a store from one backend to
//! another without losing a field.

use serde::Deserialize;

use super::error::StoreError;
use super::key::UserKey;
use super::record::{self, ProfileRecord};

/// What an import did to one user's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    /// There was no record; the imported one was written.
    Created,
    /// The record differed and was replaced.
    Replaced,
    /// The stored record already held exactly this (its revision aside): nothing written.
    Unchanged,
}

impl Imported {
    /// Whether anything was written (and the caches must forget the user).
    pub fn wrote(self) -> bool {
        self != Imported::Unchanged
    }
}

/// The import of `incoming` over `current`: `None` when the content (everything but the
/// revision) is the same, so importing a line twice writes once. A written record keeps the
/// imported revision, raised above the current one when it would not go up: revisions never go
/// back, so no cache or session can mistake the new content for what it already holds.
pub(super) fn imported(
    current: Option<&ProfileRecord>,
    incoming: &ProfileRecord,
) -> Option<ProfileRecord> {
    let Some(current) = current else {
        return Some(incoming.clone());
    };
    let same = ProfileRecord {
        revision: current.revision,
        ..incoming.clone()
    };
    if same == *current {
        return None;
    }
    Some(ProfileRecord {
        revision: incoming.revision.max(current.revision.saturating_add(1)),
        ..incoming.clone()
    })
}

/// One export line (with its `\n`).
pub fn export_line(user: &UserKey, record: &ProfileRecord) -> Result<Vec<u8>, StoreError> {
    let stored = record::encode(record)?;
    let head = serde_json::to_vec(&serde_json::json!({
        "issuer": user.issuer,
        "sub": user.subject,
    }))
    .map_err(|e| StoreError::Invalid(format!("cannot encode a user key: {e}")))?;
    // `{"issuer":…,"sub":…` + `,"record":` + the stored form + `}`.
    let mut line = Vec::with_capacity(head.len() + stored.len() + 12);
    line.extend_from_slice(&head[..head.len() - 1]);
    line.extend_from_slice(b",\"record\":");
    line.extend_from_slice(&stored);
    line.extend_from_slice(b"}\n");
    Ok(line)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineOnWire {
    issuer: String,
    sub: String,
    record: serde_json::Value,
}

/// Reads and checks one import line: the user's key and their record. The error says what is
/// wrong without quoting the line (it may hold answers).
pub fn parse_line(line: &[u8]) -> Result<(UserKey, ProfileRecord), String> {
    let wire: LineOnWire = serde_json::from_slice(line).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => format!(
                "expected {{\"issuer\":…,\"sub\":…,\"record\":{{…}}}} (column {})",
                e.column()
            ),
            Category::Eof => "truncated JSON".to_owned(),
            _ => format!("not valid JSON (column {})", e.column()),
        }
    })?;
    if wire.issuer.is_empty() {
        return Err("\"issuer\" is empty".into());
    }
    if wire.sub.is_empty() {
        return Err("\"sub\" is empty".into());
    }
    if !wire.record.is_object() {
        return Err("\"record\" is not an object".into());
    }
    let bytes = serde_json::to_vec(&wire.record).map_err(|_| "record: cannot be re-encoded")?;
    let record = record::decode(&bytes).map_err(|why| format!("record: {why}"))?;
    let answers: Vec<_> = record
        .answers
        .iter()
        .map(|(id, a)| (id.clone(), a.clone()))
        .collect();
    record::check_storable(&answers).map_err(|e| format!("record: {e}"))?;
    if answers.iter().any(|(id, _)| id.is_empty()) || record.skips.keys().any(String::is_empty) {
        return Err("record: a question id is empty".into());
    }
    Ok((UserKey::new(wire.issuer, wire.sub), record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::AnswerValue;
    use crate::store::{AnswerSource, StoredAnswer};

    fn record(text: &str, revision: u64) -> ProfileRecord {
        let mut r = ProfileRecord {
            revision,
            logins: 2,
            ..ProfileRecord::default()
        };
        r.answers.insert(
            "company".into(),
            StoredAnswer {
                value: AnswerValue::Text(text.into()),
                answered_at: 5,
                question_version: 1,
                source: AnswerSource::User,
            },
        );
        r
    }

    #[test]
    fn an_export_line_reads_back_as_the_same_user_and_record() {
        let user = UserKey::new("https://op.example", "zoë\u{0}\n\"x");
        let line = export_line(&user, &record("Acme \"∑\"", 3)).expect("line");
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
        let json: serde_json::Value = serde_json::from_slice(&line).expect("json");
        assert_eq!(json["record"]["v"], 1);
        assert_eq!(json["sub"], "zoë\u{0}\n\"x");
        let (key, back) = parse_line(&line).expect("parse");
        assert_eq!(key, user);
        assert_eq!(back, record("Acme \"∑\"", 3));
    }

    #[test]
    fn bad_lines_say_why_without_quoting_them() {
        let cases: [(&[u8], &str); 7] = [
            (b"SECRET", "not valid JSON"),
            (br#"{"issuer":"i","sub":"s"}"#, "expected"),
            (br#"{"issuer":"","sub":"s","record":{}}"#, "issuer"),
            (br#"{"issuer":"i","sub":"","record":{}}"#, "sub"),
            (br#"{"issuer":"i","sub":"s","record":{"v":2}}"#, "format 2"),
            (
                br#"{"issuer":"i","sub":"s","record":{"answers":{"a":{"value":{"integer":"SECRET"}}}}}"#,
                "record",
            ),
            (br#"{"issuer":"i","sub":"s","record":"SECRET"}"#, "not an object"),
        ];
        for (line, expected) in cases {
            let why = parse_line(line).expect_err("refused");
            assert!(why.contains(expected), "{why}");
            assert!(!why.contains("SECRET"), "{why}");
        }
    }

    #[test]
    fn importing_the_same_content_twice_writes_once_and_revisions_never_go_back() {
        let first = imported(None, &record("Acme", 4)).expect("created");
        assert_eq!(first.revision, 4);
        assert!(imported(Some(&first), &record("Acme", 4)).is_none());
        assert!(
            imported(Some(&first), &record("Acme", 1)).is_none(),
            "revision aside"
        );
        let changed = imported(Some(&first), &record("Other", 2)).expect("replaced");
        assert_eq!(changed.revision, 5, "above the current one");
        let ahead = imported(Some(&changed), &record("Third", 9)).expect("replaced");
        assert_eq!(ahead.revision, 9);
    }
}
