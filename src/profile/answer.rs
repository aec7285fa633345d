//! A typed answer, as validated from a form and kept in the store, and how it is shown to the
//! upstream: a header value (printable ASCII, everything else percent-encoded) and JSON.

use serde::{Deserialize, Serialize};

/// One answer's value. Values keep their type in the store and in the profile JWT.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnswerValue {
    /// text, textarea, email, url, tel, select
    Text(String),
    /// integer
    Integer(i64),
    /// number
    Number(f64),
    /// boolean, consent
    Bool(bool),
    /// multiselect
    List(Vec<String>),
    /// date, as `YYYY-MM-DD`
    Date(String),
}

impl AnswerValue {
    /// The value for an `X-Profile-*` header. Lists are comma-joined with each item encoded
    /// (a `,` inside an item becomes `%2C`), so splitting on `,` then percent-decoding is exact.
    pub fn header_value(&self) -> String {
        match self {
            AnswerValue::Text(s) | AnswerValue::Date(s) => encode_header_value(s),
            AnswerValue::Integer(i) => i.to_string(),
            AnswerValue::Number(n) => n.to_string(),
            AnswerValue::Bool(b) => b.to_string(),
            AnswerValue::List(items) => items
                .iter()
                .map(|i| encode_header_value(i).replace(',', "%2C"))
                .collect::<Vec<_>>()
                .join(","),
        }
    }

    /// The value inside the profile JWT's `profile` object.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            AnswerValue::Text(s) | AnswerValue::Date(s) => serde_json::Value::String(s.clone()),
            AnswerValue::Integer(i) => serde_json::Value::from(*i),
            AnswerValue::Number(n) => serde_json::Value::from(*n),
            AnswerValue::Bool(b) => serde_json::Value::Bool(*b),
            AnswerValue::List(items) => serde_json::Value::from(items.clone()),
        }
    }

    /// The value as the question page shows it back in its input(s).
    pub fn form_values(&self) -> Vec<String> {
        match self {
            AnswerValue::Text(s) | AnswerValue::Date(s) => vec![s.clone()],
            AnswerValue::Integer(i) => vec![i.to_string()],
            AnswerValue::Number(n) => vec![n.to_string()],
            AnswerValue::Bool(b) => vec![b.to_string()],
            AnswerValue::List(items) => items.clone(),
        }
    }
}

/// `job_title` -> `X-Profile-Job-Title`. Ids are validated at start-up (`[a-z][a-z0-9_]*`).
pub fn header_name(id: &str) -> String {
    let mut out = String::with_capacity(10 + id.len());
    out.push_str("X-Profile");
    for part in id.split('_').filter(|p| !p.is_empty()) {
        out.push('-');
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    out
}

/// Encodes a value for a header: printable ASCII (space included) passes except `%`; `%`,
/// controls (so never a raw CR or LF) and non-ASCII bytes are percent-encoded as UTF-8.
pub fn encode_header_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(
                char::from_digit(u32::from(b >> 4), 16).map_or('0', |c| c.to_ascii_uppercase()),
            );
            out.push(
                char::from_digit(u32::from(b & 0xf), 16).map_or('0', |c| c.to_ascii_uppercase()),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_follow_the_contract() {
        assert_eq!(header_name("company"), "X-Profile-Company");
        assert_eq!(header_name("job_title"), "X-Profile-Job-Title");
        assert_eq!(header_name("a2b"), "X-Profile-A2b");
    }

    #[test]
    fn header_values_never_carry_raw_control_characters() {
        assert_eq!(
            AnswerValue::Text("Acme Inc.".into()).header_value(),
            "Acme Inc."
        );
        assert_eq!(
            AnswerValue::Text("a\r\nX-Evil: 1".into()).header_value(),
            "a%0D%0AX-Evil: 1"
        );
        assert_eq!(
            AnswerValue::List(vec!["a,b".into(), "ç".into()]).header_value(),
            "a%2Cb,%C3%A7"
        );
        assert_eq!(AnswerValue::Bool(true).header_value(), "true");
        assert_eq!(AnswerValue::Integer(-3).header_value(), "-3");
    }

    #[test]
    fn answers_keep_their_type_in_json() {
        let v = AnswerValue::List(vec!["x".into()]);
        let stored = serde_json::to_string(&v).expect("json");
        assert_eq!(stored, r#"{"list":["x"]}"#);
        assert_eq!(
            serde_json::from_str::<AnswerValue>(&stored).expect("back"),
            v
        );
        assert_eq!(AnswerValue::Integer(7).to_json(), serde_json::json!(7));
    }

    #[test]
    fn header_values_are_percent_encoded_outside_printable_ascii() {
        assert_eq!(encode_header_value("Acme Inc."), "Acme Inc.");
        assert_eq!(encode_header_value("100%"), "100%25");
        assert_eq!(encode_header_value("a\r\nb"), "a%0D%0Ab");
        assert_eq!(encode_header_value("Zoë"), "Zo%C3%AB");
        assert_eq!(encode_header_value("\u{7f}"), "%7F");
    }
}
