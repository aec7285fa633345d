use serde_json::json;

use super::*;

fn q(kind: QuestionType) -> Question {
    Question::new("answer", "A question?", kind)
}

fn required(kind: QuestionType) -> Question {
    Question {
        required: true,
        ..q(kind)
    }
}

fn ok(question: &Question, raw: &[&str]) -> AnswerValue {
    let raw: Vec<String> = raw.iter().map(|s| s.to_string()).collect();
    match question.validate(&raw) {
        Ok(v) => v,
        Err(e) => panic!("{:?} refused {raw:?}: {}", question.kind, e.message),
    }
}

fn err(question: &Question, raw: &[&str]) -> String {
    let raw: Vec<String> = raw.iter().map(|s| s.to_string()).collect();
    match question.validate(&raw) {
        Ok(v) => panic!("{:?} accepted {raw:?} as {v:?}", question.kind),
        Err(e) => e.message,
    }
}

fn text(s: &str) -> AnswerValue {
    AnswerValue::Text(s.to_owned())
}

const SKIP: &str = "Please answer, or choose Skip for now.";
const REQUIRED: &str = "Please answer this question.";

#[test]
fn text_is_trimmed_and_kept_verbatim_otherwise() {
    let question = q(QuestionType::Text);
    assert_eq!(ok(&question, &["  Acme Inc.  "]), text("Acme Inc."));
    // Escaping is the template's job: the answer is stored as typed.
    let payload = "<script>alert('x')</script>";
    assert_eq!(ok(&question, &[payload]), text(payload));
    assert_eq!(
        ok(&question, &["O'Brien & \"Sons\""]),
        text("O'Brien & \"Sons\"")
    );
}

#[test]
fn empty_answers_depend_on_required() {
    for raw in [&[][..], &[""], &["   "], &["\u{a0}\t \n"]] {
        assert_eq!(err(&q(QuestionType::Text), raw), SKIP, "{raw:?}");
        assert_eq!(err(&required(QuestionType::Text), raw), REQUIRED, "{raw:?}");
    }
    assert_eq!(err(&q(QuestionType::Number), &[""]), SKIP);
    assert_eq!(err(&q(QuestionType::Date), &[" "]), SKIP);
    assert_eq!(err(&q(QuestionType::Boolean), &[]), SKIP);
}

#[test]
fn lengths_count_characters_not_bytes() {
    let question = Question {
        min_length: Some(3),
        max_length: Some(3),
        ..q(QuestionType::Text)
    };
    assert_eq!(ok(&question, &["Zoë"]), text("Zoë"));
    assert_eq!(ok(&question, &["日本語"]), text("日本語"));
    assert_eq!(err(&question, &["Zo"]), "Enter at least 3 characters.");
    assert_eq!(err(&question, &["Zoës"]), "Enter at most 3 characters.");
    let one = Question {
        min_length: Some(1),
        max_length: Some(1),
        ..q(QuestionType::Text)
    };
    assert_eq!(err(&one, &["ab"]), "Enter at most 1 character.");
}

#[test]
fn every_text_answer_is_bounded_by_a_default_length() {
    let huge = "a".repeat(1 << 20);
    for (kind, limit) in [
        (QuestionType::Text, 200),
        (QuestionType::Textarea, 5000),
        (QuestionType::Email, 254),
        (QuestionType::Url, 2048),
        (QuestionType::Tel, 32),
    ] {
        let question = q(kind);
        assert_eq!(question.max_chars(), Some(limit));
        assert_eq!(
            err(&question, &[&huge]),
            format!("Enter at most {limit} characters."),
            "{kind}"
        );
    }
    assert_eq!(
        ok(&q(QuestionType::Text), &[&"é".repeat(200)]),
        text(&"é".repeat(200))
    );
    // Non-text types refuse a megabyte without trouble too.
    for kind in QuestionType::ALL {
        let _ = q(kind)
            .validate(std::slice::from_ref(&huge))
            .expect_err("1 MB refused");
    }
}

#[test]
fn control_characters_are_refused_but_textarea_keeps_lines_and_tabs() {
    let line = q(QuestionType::Text);
    for bad in [
        "a\nb",
        "a\rb",
        "a\tb",
        "a\u{0}b",
        "a\u{7f}b",
        "a\u{85}b",
        "a\u{2028}b",
        "a\u{202e}b",
    ] {
        assert_eq!(
            err(&line, &[bad]),
            "Remove line breaks, tabs and other control characters from your answer.",
            "{bad:?}"
        );
    }
    let area = q(QuestionType::Textarea);
    assert_eq!(
        ok(&area, &["one\r\ntwo\rthree\n\tfour"]),
        text("one\ntwo\nthree\n\tfour")
    );
    assert_eq!(ok(&area, &["\r\n  body \r\n"]), text("body"));
    assert_eq!(
        err(&area, &["a\u{1b}[31mb"]),
        "Remove invisible control characters from your answer."
    );
    // CR LF counts as one character after normalisation.
    let short = Question {
        max_length: Some(3),
        ..q(QuestionType::Textarea)
    };
    assert_eq!(ok(&short, &["a\r\nb"]), text("a\nb"));
}

#[test]
fn pattern_must_match_the_whole_answer() {
    let question = Question {
        pattern: Some(Pattern::new("[A-Z]{2}[0-9]{3}").expect("pattern")),
        ..q(QuestionType::Text)
    };
    assert_eq!(ok(&question, &[" AB123 "]), text("AB123"));
    assert_eq!(
        err(&question, &["xAB123"]),
        "Enter a value in the expected format."
    );
    assert_eq!(
        err(&question, &["AB1234"]),
        "Enter a value in the expected format."
    );
    let alternation = Question {
        pattern: Some(Pattern::new("a|ab").expect("pattern")),
        pattern_message: Some("Enter a or ab.".into()),
        ..q(QuestionType::Text)
    };
    assert_eq!(ok(&alternation, &["ab"]), text("ab"));
    assert_eq!(err(&alternation, &["abc"]), "Enter a or ab.");
}

#[test]
fn email_addresses_are_checked_pragmatically() {
    let question = q(QuestionType::Email);
    for good in [
        "a@b.co",
        "first.last+tag@example.com",
        "zoë@exämple.de",
        "x@sub.domain.org",
    ] {
        assert_eq!(ok(&question, &[good]), text(good));
    }
    for bad in [
        "plain",
        "@example.com",
        "a@b",
        "a@@b.com",
        "a@b@c.com",
        "a b@c.com",
        "a@b..com",
        "a@.com",
        "a@b.com.",
        "<a@b.com>",
        "a,b@c.com",
    ] {
        assert_eq!(
            err(&question, &[bad]),
            "Enter a valid email address, such as name@example.com.",
            "{bad}"
        );
    }
    let long_local = format!("{}@example.com", "a".repeat(65));
    assert!(question.validate(&[long_local]).is_err());
}

#[test]
fn urls_must_be_http_or_https_web_addresses() {
    let question = q(QuestionType::Url);
    for good in [
        "https://example.com",
        "http://example.com/a?b=c#d",
        "HTTPS://Example.com/x",
    ] {
        assert_eq!(ok(&question, &[good]), text(good));
    }
    for bad in [
        "javascript:alert(1)",
        "ftp://example.com",
        "example.com",
        "http:example.com",
        "https://",
        "https://exa mple.com",
        "https://user:pw@example.com",
        "data:text/html,<script>",
    ] {
        assert_eq!(
            err(&question, &[bad]),
            "Enter a web address starting with http:// or https://.",
            "{bad}"
        );
    }
}

#[test]
fn phone_numbers_allow_common_punctuation_and_4_to_20_digits() {
    let question = q(QuestionType::Tel);
    for good in [
        "+44 20 7946 0958",
        "(555) 123-4567",
        "1234",
        "030.1234.5678",
    ] {
        assert_eq!(ok(&question, &[good]), text(good));
    }
    for bad in [
        "123",
        "123456789012345678901",
        "12+34",
        "555-CALL-NOW",
        "++4412345",
        "١٢٣٤٥",
    ] {
        assert_eq!(
            err(&question, &[bad]),
            "Enter a valid phone number (4 to 20 digits).",
            "{bad}"
        );
    }
}

#[test]
fn numbers_are_finite_decimals_within_bounds() {
    let question = Question {
        min: Some(0.5),
        max: Some(10.0),
        ..q(QuestionType::Number)
    };
    assert_eq!(ok(&question, &["0.5"]), AnswerValue::Number(0.5));
    assert_eq!(ok(&question, &["10"]), AnswerValue::Number(10.0));
    assert_eq!(ok(&question, &[" 3.25 "]), AnswerValue::Number(3.25));
    assert_eq!(ok(&question, &["1e1"]), AnswerValue::Number(10.0));
    assert_eq!(ok(&question, &[".75"]), AnswerValue::Number(0.75));
    assert_eq!(err(&question, &["0.49"]), "Enter a number of at least 0.5.");
    assert_eq!(err(&question, &["10.01"]), "Enter a number of at most 10.");
    for bad in [
        "NaN",
        "inf",
        "-infinity",
        "1e400",
        "3,5",
        "0x10",
        "1e",
        "-",
        ".",
        "5 kg",
        "１",
    ] {
        assert_eq!(
            err(&q(QuestionType::Number), &[bad]),
            "Enter a number, such as 42 or 3.5.",
            "{bad}"
        );
    }
}

#[test]
fn integers_are_whole_and_compared_exactly() {
    let question = Question {
        min: Some(1.0),
        max: Some(120.0),
        ..q(QuestionType::Integer)
    };
    assert_eq!(ok(&question, &["1"]), AnswerValue::Integer(1));
    assert_eq!(ok(&question, &["+120"]), AnswerValue::Integer(120));
    assert_eq!(err(&question, &["0"]), "Enter a number of at least 1.");
    assert_eq!(err(&question, &["121"]), "Enter a number of at most 120.");
    for bad in ["1.0", "1e2", "12a", "9223372036854775808", "--1"] {
        assert_eq!(
            err(&question, &[bad]),
            "Enter a whole number, such as 42.",
            "{bad}"
        );
    }
    let unbounded = q(QuestionType::Integer);
    assert_eq!(
        ok(&unbounded, &["-9223372036854775808"]),
        AnswerValue::Integer(i64::MIN)
    );
    // 2^53 + 1 is not representable as f64; the bound must still hold exactly.
    let big = Question {
        max: Some(9_007_199_254_740_992.0),
        ..q(QuestionType::Integer)
    };
    assert!(big.validate(&["9007199254740993".into()]).is_err());
}

#[test]
fn dates_are_real_calendar_days_within_bounds() {
    let question = Question {
        min_date: "1900-01-01".parse().ok(),
        max_date: "2024-12-31".parse().ok(),
        ..q(QuestionType::Date)
    };
    assert_eq!(
        ok(&question, &["2024-02-29"]),
        AnswerValue::Date("2024-02-29".into())
    );
    assert_eq!(
        ok(&question, &["1900-01-01"]),
        AnswerValue::Date("1900-01-01".into())
    );
    assert_eq!(
        err(&question, &["2023-02-29"]),
        "Enter a date that exists in the calendar."
    );
    assert_eq!(
        err(&question, &["1899-12-31"]),
        "Enter a date on or after 1900-01-01."
    );
    assert_eq!(
        err(&question, &["2025-01-01"]),
        "Enter a date on or before 2024-12-31."
    );
    assert_eq!(
        err(&question, &["31/12/2000"]),
        "Enter a date as YYYY-MM-DD."
    );
}

fn roles() -> Vec<String> {
    ["Engineering", "Product", "Design"]
        .map(String::from)
        .to_vec()
}

#[test]
fn select_accepts_only_its_options() {
    let question = Question {
        options: roles(),
        ..required(QuestionType::Select)
    };
    assert_eq!(ok(&question, &["Product"]), text("Product"));
    assert_eq!(err(&question, &["product"]), "Choose one of the options.");
    assert_eq!(err(&question, &["<script>"]), "Choose one of the options.");
    assert_eq!(err(&question, &[""]), "Choose one of the options.");
    assert_eq!(
        err(&question, &["Product", "Design"]),
        "Give only one answer."
    );
}

#[test]
fn multiselect_keeps_configured_order_and_bounds_the_count() {
    let question = Question {
        options: roles(),
        min_choices: Some(2),
        max_choices: Some(2),
        ..q(QuestionType::Multiselect)
    };
    assert_eq!(
        ok(&question, &["Design", "Engineering"]),
        AnswerValue::List(vec!["Engineering".into(), "Design".into()])
    );
    assert_eq!(err(&question, &["Design"]), "Choose at least 2 options.");
    assert_eq!(
        err(&question, &["Design", "Product", "Engineering"]),
        "Choose at most 2 options."
    );
    assert_eq!(
        err(&question, &["Design", "Design"]),
        "Choose each option only once."
    );
    assert_eq!(
        err(&question, &["Design", "Sales"]),
        "Choose only from the options shown."
    );
    assert_eq!(err(&question, &[]), SKIP);
    let many: Vec<String> = std::iter::repeat_n("Design".to_owned(), 100_000).collect();
    assert!(question.validate(&many).is_err());
    let needed = Question {
        options: roles(),
        ..required(QuestionType::Multiselect)
    };
    assert_eq!(err(&needed, &[""]), "Choose at least one option.");
}

#[test]
fn boolean_needs_a_choice_even_when_optional() {
    let question = q(QuestionType::Boolean);
    assert_eq!(ok(&question, &["true"]), AnswerValue::Bool(true));
    assert_eq!(ok(&question, &["false"]), AnswerValue::Bool(false));
    assert_eq!(err(&question, &[]), SKIP);
    assert_eq!(
        err(&required(QuestionType::Boolean), &[]),
        "Choose Yes or No."
    );
    assert_eq!(err(&question, &["yes"]), "Choose Yes or No.");
}

#[test]
fn consent_absent_means_unchecked() {
    let optional = q(QuestionType::Consent);
    assert_eq!(ok(&optional, &[]), AnswerValue::Bool(false));
    assert_eq!(ok(&optional, &["true"]), AnswerValue::Bool(true));
    assert_eq!(ok(&optional, &["on"]), AnswerValue::Bool(true));
    let needed = required(QuestionType::Consent);
    assert_eq!(err(&needed, &[]), "Check this box to continue.");
    assert_eq!(err(&needed, &["false"]), "Check this box to continue.");
    assert_eq!(ok(&needed, &["true"]), AnswerValue::Bool(true));
    assert_eq!(err(&needed, &["maybe"]), "Check or uncheck this box.");
}

#[test]
fn claims_the_op_supplies_become_answers_when_valid() {
    let company = Question {
        min_length: Some(2),
        ..required(QuestionType::Text)
    };
    assert_eq!(company.accepts_claim(&json!(" Acme ")), Some(text("Acme")));
    assert_eq!(company.accepts_claim(&json!("A")), None);
    assert_eq!(company.accepts_claim(&json!(null)), None);
    assert_eq!(company.accepts_claim(&json!({"name": "Acme"})), None);
    assert_eq!(company.accepts_claim(&json!(42)), Some(text("42")));
    assert_eq!(
        q(QuestionType::Integer).accepts_claim(&json!(42)),
        Some(AnswerValue::Integer(42))
    );
    assert_eq!(
        q(QuestionType::Number).accepts_claim(&json!(2.5)),
        Some(AnswerValue::Number(2.5))
    );
    assert_eq!(
        required(QuestionType::Consent).accepts_claim(&json!(true)),
        Some(AnswerValue::Bool(true))
    );
    assert_eq!(
        required(QuestionType::Consent).accepts_claim(&json!(false)),
        None
    );
    let teams = Question {
        options: roles(),
        ..q(QuestionType::Multiselect)
    };
    assert_eq!(
        teams.accepts_claim(&json!(["Design", "Product"])),
        Some(AnswerValue::List(vec!["Product".into(), "Design".into()]))
    );
    assert_eq!(teams.accepts_claim(&json!(["Design", 1])), None);
    assert_eq!(teams.accepts_claim(&json!([])), None);
    // OIDC's birthdate may omit the year as 0000: not a full date, so the user is asked.
    assert_eq!(
        q(QuestionType::Date).accepts_claim(&json!("0000-04-01")),
        None
    );
}
