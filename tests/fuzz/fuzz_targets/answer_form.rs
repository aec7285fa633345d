//! Form decoding and answer validation (`Question::validate`) for every question type, as the
//! question page does it: a urlencoded body, the values sent under the question's id. Whatever
//! is accepted respects the question's constraints, makes a header value of printable ASCII,
//! and validates to itself again when shown back in the form; nothing panics.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use profilegate::profile::{AnswerValue, CalendarDate, Pattern, Question, QuestionType};

/// Limits of the question page (src/proxy/routes/questions.rs and src/proxy/request.rs).
const MAX_FIELDS: usize = 256;
const MAX_VALUES: usize = 64;

const OPTIONS: [&str; 5] = ["Engineering", "Product", "Sales, EMEA", "Zoë", "100%"];

fn questions() -> &'static [Question] {
    static QUESTIONS: OnceLock<Vec<Question>> = OnceLock::new();
    QUESTIONS.get_or_init(|| {
        let mut all = Vec::new();
        for required in [true, false] {
            for kind in QuestionType::ALL {
                let id = format!("q_{}", kind.as_str());
                let mut q = Question::new(id, "Label", kind);
                q.required = required;
                match kind {
                    QuestionType::Select | QuestionType::Multiselect => {
                        q.options = OPTIONS.iter().map(|s| s.to_string()).collect();
                        if kind == QuestionType::Multiselect && required {
                            q.min_choices = Some(1);
                            q.max_choices = Some(3);
                        }
                    }
                    QuestionType::Number | QuestionType::Integer => {
                        q.min = Some(-1000.5);
                        q.max = Some(1e9);
                    }
                    QuestionType::Date => {
                        q.min_date = CalendarDate::new(1900, 1, 1);
                        q.max_date = CalendarDate::new(2100, 12, 31);
                    }
                    QuestionType::Text if required => {
                        q.min_length = Some(2);
                        q.max_length = Some(40);
                        q.pattern = Pattern::new("[A-Za-z0-9 .,'-]+").ok();
                    }
                    _ => {}
                }
                all.push(q);
            }
        }
        all
    })
}

fn check(q: &Question, values: &[String]) {
    let Ok(value) = q.validate(values) else {
        return;
    };
    let header = value.header_value();
    assert!(
        header.bytes().all(|b| (0x20..0x7f).contains(&b)),
        "{:?}: header value {header:?} is not printable ASCII",
        q.kind
    );
    match (&value, q.kind) {
        (AnswerValue::Text(s), QuestionType::Select) => assert!(q.options.contains(s)),
        (AnswerValue::Text(s), _) => {
            let max = q.max_chars().expect("text-like");
            assert!(s.chars().count() <= max, "{:?}: {} chars", q.kind, s.len());
            assert!(!s.is_empty() && s.trim() == s);
        }
        (AnswerValue::List(items), QuestionType::Multiselect) => {
            assert!(items.iter().all(|i| q.options.contains(i)), "{items:?}");
            assert!(items.len() <= q.options.len(), "{items:?}");
        }
        (AnswerValue::Integer(i), QuestionType::Integer) => {
            assert!((-1000.5..=1e9).contains(&(*i as f64)), "{i}");
        }
        (AnswerValue::Number(n), QuestionType::Number) => {
            assert!(n.is_finite() && (-1000.5..=1e9).contains(n), "{n}");
        }
        (AnswerValue::Date(d), QuestionType::Date) => {
            assert!(
                d.len() == 10 && ("1900-01-01"..="2100-12-31").contains(&d.as_str()),
                "{d}"
            );
        }
        (AnswerValue::Bool(_), QuestionType::Boolean | QuestionType::Consent) => {}
        (other, kind) => panic!("{kind:?} produced {other:?}"),
    }
    // Shown back in the form (a 422 re-render, or the page of a later login) and sent again,
    // an accepted answer is accepted as itself.
    assert_eq!(
        q.validate(&value.form_values()).as_ref(),
        Ok(&value),
        "{:?}: the answer does not survive a round trip through the form",
        q.kind
    );
}

fuzz_target!(|data: &[u8]| {
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(data)
        .take(MAX_FIELDS)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    // Whatever the names, every value also reaches each question, so the fuzzer need not
    // guess the field names to exercise validation.
    let every: Vec<String> = fields
        .iter()
        .map(|(_, v)| v.clone())
        .take(MAX_VALUES)
        .collect();
    for q in questions() {
        let named: Vec<String> = fields
            .iter()
            .filter(|(k, _)| *k == q.id)
            .map(|(_, v)| v.clone())
            .take(MAX_VALUES)
            .collect();
        check(q, &named);
        check(q, &every);
        if let Some(first) = every.first() {
            check(q, std::slice::from_ref(first));
        }
    }
});
