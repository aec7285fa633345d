//! A question's public schema, as JSON: what the JSON API and the custom-UI token tell a form
//! built outside profilegate, so it can render the question and apply the same rules.

use serde_json::{json, Map, Value};

use super::Question;

/// The JSON schema of one question (only the keys that apply to it).
pub fn schema(q: &Question) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), json!(q.id));
    out.insert("label".into(), json!(q.label));
    out.insert("type".into(), json!(q.kind.as_str()));
    out.insert("required".into(), json!(q.required));
    let optional = [
        ("help", q.help.as_ref().map(|h| json!(h))),
        ("placeholder", q.placeholder.as_ref().map(|p| json!(p))),
        ("min_length", q.min_length.map(|v| json!(v))),
        ("max_length", q.max_chars().map(|v| json!(v))),
        ("pattern", q.pattern.as_ref().map(|p| json!(p.source()))),
        (
            "pattern_message",
            q.pattern_message.as_ref().map(|m| json!(m)),
        ),
        ("min", q.min.map(|v| json!(v))),
        ("max", q.max.map(|v| json!(v))),
        ("min", q.min_date.as_ref().map(|d| json!(d.to_string()))),
        ("max", q.max_date.as_ref().map(|d| json!(d.to_string()))),
        ("min", q.min_choices.map(|v| json!(v))),
        ("max", q.max_choices.map(|v| json!(v))),
        ("version", Some(json!(q.version))),
    ];
    for (key, value) in optional {
        if let Some(v) = value {
            out.insert(key.into(), v);
        }
    }
    if !q.options.is_empty() {
        out.insert("options".into(), json!(q.options));
    }
    Value::Object(out)
}

/// Turns a JSON answer into the raw form values `Question::validate` takes: a string, a number
/// or a boolean is one value, an array of those is several, `null` is none.
pub fn raw_values(value: &Value) -> Result<Vec<String>, &'static str> {
    fn scalar(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .take(64)
            .map(|i| scalar(i).ok_or("List items must be text, numbers or booleans."))
            .collect(),
        other => scalar(other)
            .map(|s| vec![s])
            .ok_or("Give text, a number, a boolean or a list."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::QuestionType;

    #[test]
    fn schema_lists_what_applies() {
        let mut q = Question::new("role", "Role?", QuestionType::Select);
        q.options = vec!["a".into(), "b".into()];
        q.required = true;
        let s = schema(&q);
        assert_eq!(s["type"], "select");
        assert_eq!(s["options"], json!(["a", "b"]));
        assert_eq!(s["required"], true);
        assert!(s.get("pattern").is_none());
    }

    #[test]
    fn json_values_become_form_values() {
        assert_eq!(raw_values(&json!("x")), Ok(vec!["x".to_owned()]));
        assert_eq!(raw_values(&json!(12)), Ok(vec!["12".to_owned()]));
        assert_eq!(raw_values(&json!(true)), Ok(vec!["true".to_owned()]));
        assert_eq!(
            raw_values(&json!(["a", "b"])),
            Ok(vec!["a".to_owned(), "b".to_owned()])
        );
        assert_eq!(raw_values(&json!(null)), Ok(vec![]));
        assert!(raw_values(&json!({"a": 1})).is_err());
        assert!(raw_values(&json!([{"a": 1}])).is_err());
    }
}
