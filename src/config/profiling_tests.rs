//! `[profiling]` and `[[profiling.questions]]`: defaults, the shipped example, and every
//! rejection `profilegate check` must explain with the question and key.

use std::time::Duration;

use super::tests::{keys, load, minimal};
use crate::profile::{AnswerValue, QuestionType};

fn with(questions: &str) -> String {
    format!("{}\n[profiling]\n{questions}", minimal())
}

/// The single error a configuration produces, as `key: message`.
fn only_error(text: &str) -> String {
    let err = load(text, &[]).expect_err("invalid");
    assert_eq!(err.0.len(), 1, "{err}");
    err.to_string()
}

const COMPANY_AND_ROLE: &str = r#"
questions_per_login = 2

[[profiling.questions]]
id = "company"
label = "Which company do you work for?"
type = "text"
required = true
min_length = 2
max_length = 100

[[profiling.questions]]
id = "role"
label = "What best describes your role?"
help = "Pick the closest."
placeholder = "Choose one"
type = "select"
options = ["Engineering", "Product", "Design", "Sales", "Other"]
version = 2
"#;

#[test]
fn profiling_defaults_to_one_question_and_none_configured() {
    let c = load(&minimal(), &[]).expect("valid");
    assert_eq!(c.profiling.questions_per_login, 1);
    assert!(c.profiling.questions.is_empty());
}

#[test]
fn the_design_example_questions_load_in_order() {
    let c = load(&with(COMPANY_AND_ROLE), &[]).expect("valid");
    assert_eq!(c.profiling.questions_per_login, 2);
    let [company, role] = &c.profiling.questions[..] else {
        panic!("expected two questions: {:?}", c.profiling.questions);
    };
    assert_eq!(company.id, "company");
    assert_eq!(company.kind, QuestionType::Text);
    assert!(company.required);
    assert_eq!(
        (company.min_length, company.max_length),
        (Some(2), Some(100))
    );
    assert_eq!(company.version, 1);
    assert_eq!(role.kind, QuestionType::Select);
    assert!(!role.required);
    assert_eq!(role.options.len(), 5);
    assert_eq!(role.help.as_deref(), Some("Pick the closest."));
    assert_eq!(role.placeholder.as_deref(), Some("Choose one"));
    assert_eq!(role.version, 2);
    assert_eq!(
        role.validate(&["Design".into()]),
        Ok(AnswerValue::Text("Design".into()))
    );
}

#[test]
fn questions_per_login_can_come_from_the_environment() {
    let env = [("PROFILEGATE_PROFILING_QUESTIONS_PER_LOGIN", "3")];
    let c = load(&with(COMPANY_AND_ROLE), &env).expect("valid");
    assert_eq!(c.profiling.questions_per_login, 3);
    let c = load(&minimal(), &env).expect("valid without a [profiling] section");
    assert_eq!(c.profiling.questions_per_login, 3);

    let err = load(
        &minimal(),
        &[("PROFILEGATE_PROFILING_QUESTIONS_PER_LOGIN", "0")],
    )
    .expect_err("out of range");
    assert_eq!(
        err.to_string(),
        "profiling.questions_per_login (from PROFILEGATE_PROFILING_QUESTIONS_PER_LOGIN): \
         must be between 1 and 20, found 0"
    );
    let text = with("questions_per_login = 21");
    assert_eq!(
        keys(&load(&text, &[]).expect_err("21")),
        ["profiling.questions_per_login"]
    );
}

#[test]
fn an_unknown_type_is_named_with_the_choices() {
    let text = with(
        "[[profiling.questions]]\nid = \"a\"\nlabel = \"A\"\ntype = \"text\"\n\
         [[profiling.questions]]\nid = \"b\"\nlabel = \"B\"\ntype = \"text\"\n\
         [[profiling.questions]]\nid = \"fav\"\nlabel = \"Favourite colour?\"\ntype = \"color\"\n",
    );
    assert_eq!(
        only_error(&text),
        "profiling.questions[2].type: \"color\" is not a question type; use one of text, \
         textarea, email, url, tel, number, integer, date, select, multiselect, boolean, consent"
    );
    let text = with("[[profiling.questions]]\nid = \"a\"\nlabel = \"A\"\n");
    assert!(
        only_error(&text).starts_with("profiling.questions[0].type: is required; use one of text,")
    );
}

#[test]
fn a_duplicate_id_names_both_questions() {
    let text = with(
        "[[profiling.questions]]\nid = \"company\"\nlabel = \"A\"\ntype = \"text\"\n\
         [[profiling.questions]]\nid = \"company\"\nlabel = \"B\"\ntype = \"textarea\"\n",
    );
    assert_eq!(
        only_error(&text),
        "profiling.questions[1].id: \"company\" is already the id of profiling.questions[0]"
    );
}

#[test]
fn ids_must_become_distinct_header_names() {
    for bad in [
        "Job_Title",
        "job-title",
        "1st",
        "_x",
        "job__title",
        "job_",
        "",
        "zoë",
        &"a".repeat(64),
    ] {
        let text = with(&format!(
            "[[profiling.questions]]\nid = {bad:?}\nlabel = \"L\"\ntype = \"text\"\n"
        ));
        let err = load(&text, &[]).expect_err(bad);
        assert_eq!(keys(&err), ["profiling.questions[0].id"], "{bad}");
    }
    let text = with("[[profiling.questions]]\nid = \"jwt\"\nlabel = \"L\"\ntype = \"text\"\n");
    assert_eq!(
        only_error(&text),
        "profiling.questions[0].id: \"jwt\" is reserved: the header X-Profile-Jwt carries the \
         signed profile"
    );
    let longest = format!("j{}", "_a".repeat(31));
    let text = with(&format!(
        "[[profiling.questions]]\nid = {longest:?}\nlabel = \"L\"\ntype = \"text\"\n"
    ));
    load(&text, &[]).expect("63 characters is fine");
}

/// One question of `kind` with `extra` keys; the key and message of its single error.
fn question_error(kind: &str, extra: &str) -> String {
    only_error(&with(&format!(
        "[[profiling.questions]]\nid = \"q\"\nlabel = \"Q\"\ntype = {kind:?}\n{extra}\n"
    )))
}

#[test]
fn options_belong_to_select_and_multiselect_only() {
    assert_eq!(
        question_error("text", "options = [\"a\"]"),
        "profiling.questions[0].options: applies only to select and multiselect questions, not text"
    );
    assert_eq!(
        question_error("select", ""),
        "profiling.questions[0].options: is required: a select question needs at least one option"
    );
    assert_eq!(
        question_error("multiselect", "options = []"),
        "profiling.questions[0].options: is required: a multiselect question needs at least one option"
    );
    assert_eq!(
        question_error("select", "options = [\"a\", \"b\", \"a\"]"),
        "profiling.questions[0].options[2]: \"a\" is listed twice (also options[0])"
    );
    assert_eq!(
        question_error("select", "options = [\"a\", \" b\"]"),
        "profiling.questions[0].options[1]: \" b\" must not start or end with spaces"
    );
}

#[test]
fn patterns_must_compile_and_suit_the_type() {
    assert_eq!(
        question_error("text", "pattern = \"(abc\""),
        "profiling.questions[0].pattern: \"(abc\" is not a valid regular expression: unclosed group"
    );
    assert_eq!(
        question_error("number", "pattern = \"[0-9]+\""),
        "profiling.questions[0].pattern: applies only to text, textarea, email, url and tel \
         questions, not number"
    );
    assert_eq!(
        question_error("text", "pattern_message = \"Use capitals.\""),
        "profiling.questions[0].pattern_message: is shown when pattern does not match: add a pattern"
    );
}

#[test]
fn lengths_and_bounds_must_suit_the_type_and_be_ordered() {
    assert_eq!(
        question_error("text", "min = 1"),
        "profiling.questions[0].min: applies only to number, integer, date and multiselect \
         questions, not text"
    );
    assert_eq!(
        question_error("number", "max_length = 10"),
        "profiling.questions[0].max_length: applies only to text, textarea, email, url and tel \
         questions, not number"
    );
    assert_eq!(
        question_error("number", "min = 10\nmax = 1.5"),
        "profiling.questions[0].min: is larger than max (1.5)"
    );
    assert_eq!(
        question_error("text", "min_length = 10\nmax_length = 5"),
        "profiling.questions[0].min_length: is larger than max_length (5)"
    );
    assert_eq!(
        question_error("text", "min_length = 300"),
        "profiling.questions[0].min_length: is larger than the default max_length of text \
         questions (200)"
    );
    assert_eq!(
        question_error("email", "max_length = 300"),
        "profiling.questions[0].max_length: must be between 0 and 254 for email questions, \
         found 300"
    );
    assert_eq!(
        question_error("integer", "min = 1.5"),
        "profiling.questions[0].min: must be a whole number for an integer question"
    );
    assert_eq!(
        question_error("date", "min = \"2024-02-30\""),
        "profiling.questions[0].min: \"2024-02-30\": that day does not exist in the calendar"
    );
    assert_eq!(
        question_error("date", "min = 2024-01-01\nmax = \"2023-12-31\""),
        "profiling.questions[0].min: is later than max (2023-12-31)"
    );
    assert_eq!(
        question_error("multiselect", "options = [\"a\", \"b\"]\nmax = 3"),
        "profiling.questions[0].max: must be between 0 and the number of options (2), found 3"
    );
}

#[test]
fn typed_bounds_are_kept() {
    let text = with(
        "[[profiling.questions]]\nid = \"born\"\nlabel = \"Born?\"\ntype = \"date\"\n\
         min = 1900-01-01\nmax = \"2010-12-31\"\n\
         [[profiling.questions]]\nid = \"teams\"\nlabel = \"Teams?\"\ntype = \"multiselect\"\n\
         options = [\"a\", \"b\", \"c\"]\nmin = 1\nmax = 2\n\
         [[profiling.questions]]\nid = \"age\"\nlabel = \"Age?\"\ntype = \"integer\"\nmin = 18\n",
    );
    let c = load(&text, &[]).expect("valid");
    let [born, teams, age] = &c.profiling.questions[..] else {
        panic!("three questions");
    };
    assert_eq!(
        born.min_date.map(|d| d.to_string()).as_deref(),
        Some("1900-01-01")
    );
    assert_eq!(
        born.max_date.map(|d| d.to_string()).as_deref(),
        Some("2010-12-31")
    );
    assert_eq!((teams.min_choices, teams.max_choices), (Some(1), Some(2)));
    assert_eq!((age.min, age.max), (Some(18.0), None));
}

#[test]
fn empty_labels_and_unknown_keys_are_refused() {
    assert_eq!(
        only_error(&with(
            "[[profiling.questions]]\nid = \"q\"\nlabel = \"  \"\ntype = \"text\"\n"
        )),
        "profiling.questions[0].label: must not be empty"
    );
    assert_eq!(
        question_error("text", "colour = \"red\""),
        "profiling.questions[0].colour: unknown key"
    );
    assert_eq!(
        only_error(&with("questions_per_logon = 2")),
        "profiling.questions_per_logon: unknown key; did you mean `questions_per_login`?"
    );
    assert_eq!(
        question_error("boolean", "placeholder = \"Yes?\""),
        "profiling.questions[0].placeholder: does not apply to boolean questions"
    );
    assert_eq!(
        question_error("text", "required = \"yes\""),
        "profiling.questions[0].required: expected true or false, found string"
    );
}

#[test]
fn every_question_error_is_reported_at_once() {
    let text = with(
        "[[profiling.questions]]\nid = \"Bad Id\"\nlabel = \"\"\ntype = \"select\"\n\
         pattern = \"x\"\n\
         [[profiling.questions]]\nid = \"ok\"\nlabel = \"Fine\"\ntype = \"colour\"\nmin = 1\n\
         [[profiling.questions]]\nid = \"ok\"\nlabel = \"Again\"\ntype = \"number\"\nmin = 5\nmax = 1\n",
    );
    let err = load(&text, &[]).expect_err("invalid");
    assert_eq!(
        keys(&err),
        [
            "profiling.questions[0].id",
            "profiling.questions[0].label",
            "profiling.questions[0].pattern",
            "profiling.questions[0].options",
            "profiling.questions[1].type",
            "profiling.questions[2].min",
            "profiling.questions[2].id",
        ]
    );
}

#[test]
fn texts_may_be_given_per_language() {
    let text = with(
        "default_language = \"en\"\n[[profiling.questions]]\nid = \"company\"\nlabel = { en = \"Company?\", de = \"Firma?\" }\nhelp = { en = \"Where you work.\", fr = \"Où vous travaillez.\" }\ntype = \"text\"\n",
    );
    let c = load(&text, &[]).expect("valid");
    let q = &c.profiling.questions[0];
    assert_eq!(q.label, "Company?");
    assert_eq!(q.texts("de").0, "Firma?");
    assert_eq!(
        q.texts("de").1,
        Some("Where you work."),
        "falls back per text"
    );
    assert_eq!(q.texts("fr").1, Some("Où vous travaillez."));
    assert_eq!(q.texts("ja").0, "Company?");

    let bad = with(
        "[[profiling.questions]]\nid = \"company\"\nlabel = { de = \"Firma?\", \"not a tag!\" = \"x\" }\ntype = \"text\"\n",
    );
    let err = load(&bad, &[]).expect_err("invalid");
    let k = keys(&err);
    assert!(
        k.contains(&"profiling.questions[0].label"),
        "needs an en text: {k:?}"
    );
    assert!(k.iter().any(|k| k.contains("not a tag!")), "{k:?}");
}

// ---- when, on_paths, ask_again_after, expires_after, max_skips --------------------------------

/// Two questions, `role` then `team_size`, with `extra` keys on the second.
fn conditioned(extra: &str) -> String {
    with(&format!(
        "[[profiling.questions]]\nid = \"role\"\nlabel = \"Role\"\ntype = \"select\"\n\
         options = [\"Engineering\", \"Sales\"]\n\
         [[profiling.questions]]\nid = \"team_size\"\nlabel = \"Team size\"\ntype = \"integer\"\n\
         {extra}\n"
    ))
}

#[test]
fn condition_and_timing_keys_load_into_the_question() {
    let c = load(
        &conditioned(
            "when = 'answers.role == \"Engineering\" && claims.email.endsWith(\"@acme.com\")'\n\
             on_paths = [\"/billing\", \"/shop/%7Euser/./cart\", \"/billing\"]\n\
             ask_again_after = \"30d\"\nexpires_after = \"365d\"\nmax_skips = 3",
        ),
        &[],
    )
    .expect("valid");
    let [role, team] = &c.profiling.questions[..] else {
        panic!("two questions: {:?}", c.profiling.questions);
    };
    assert!(role.when.is_none() && role.on_paths.is_empty());
    assert_eq!(
        (role.ask_again_after, role.expires_after, role.max_skips),
        (None, None, None)
    );
    let when = team.when.as_ref().expect("when");
    assert_eq!(
        when.source(),
        "answers.role == \"Engineering\" && claims.email.endsWith(\"@acme.com\")"
    );
    assert_eq!(when.answer_ids().collect::<Vec<_>>(), ["role"]);
    assert!(when.claims().reads("email"));
    assert_eq!(
        team.on_paths,
        ["/billing", "/shop/~user/cart"],
        "normalized, once each"
    );
    assert_eq!(team.ask_again_after, Some(Duration::from_secs(30 * 86_400)));
    assert_eq!(team.expires_after, Some(Duration::from_secs(365 * 86_400)));
    assert_eq!(team.max_skips, Some(3));
}

#[test]
fn a_condition_may_name_a_later_question() {
    let text = with(
        "[[profiling.questions]]\nid = \"company\"\nlabel = \"Company\"\ntype = \"text\"\n\
         when = '!has(answers.role) || answers.role != \"Student\"'\n\
         [[profiling.questions]]\nid = \"role\"\nlabel = \"Role\"\ntype = \"text\"\n",
    );
    let c = load(&text, &[]).expect("a later question is fine");
    assert!(c.profiling.questions[0].when.is_some());
}

#[test]
fn bad_condition_and_timing_values_are_named_by_their_key() {
    // (keys on profiling.questions[1], the one error as "key: message" starts with)
    let q = "profiling.questions[1]";
    let cases: &[(&str, String)] = &[
        (
            "when = 'request.path == \"/\"'",
            format!("{q}.when: `request` cannot be used here"),
        ),
        (
            "when = 'user.name == \"x\"'",
            format!("{q}.when: unknown variable `user`"),
        ),
        (
            "when = 'answers.rol == \"Engineering\"'",
            format!("{q}.when: `answers.rol`: no question has the id `rol`"),
        ),
        (
            "when = 'answers.role =='",
            format!("{q}.when: not a valid expression"),
        ),
        ("when = ''", format!("{q}.when: the expression is empty")),
        ("when = true", format!("{q}.when: expected a string")),
        (
            "on_paths = []",
            format!("{q}.on_paths: must list at least one path"),
        ),
        (
            "on_paths = \"/billing\"",
            format!("{q}.on_paths: expected a list of strings"),
        ),
        (
            "on_paths = [\"billing\"]",
            format!("{q}.on_paths[0]: \"billing\" must be a path starting with \"/\""),
        ),
        (
            "on_paths = [\"/a\", \"/billing?x=1\"]",
            format!("{q}.on_paths[1]: \"/billing?x=1\" must be a path without a query"),
        ),
        (
            "on_paths = [\"/billing#top\"]",
            format!("{q}.on_paths[0]: \"/billing#top\" must be a path without a query"),
        ),
        (
            "on_paths = [\"\"]",
            format!("{q}.on_paths[0]: \"\" must be a path starting"),
        ),
        (
            "on_paths = [\"/my bills\"]",
            format!("{q}.on_paths[0]: \"/my bills\" must not contain spaces"),
        ),
        (
            "ask_again_after = \"soon\"",
            format!("{q}.ask_again_after: expected a duration such as"),
        ),
        (
            "ask_again_after = 30",
            format!("{q}.ask_again_after: expected a string"),
        ),
        (
            "expires_after = \"0s\"",
            format!("{q}.expires_after: must be between 1s and"),
        ),
        (
            "expires_after = \"20years\"",
            format!("{q}.expires_after: must be between 1s and"),
        ),
        (
            "max_skips = 0",
            format!("{q}.max_skips: must be between 1 and"),
        ),
        (
            "max_skips = \"3\"",
            format!("{q}.max_skips: expected an integer"),
        ),
        (
            "required = true\nmax_skips = 2",
            format!("{q}.max_skips: applies only to optional questions"),
        ),
        (
            "required = true\nask_again_after = \"1d\"",
            format!("{q}.ask_again_after: applies only to optional questions"),
        ),
        (
            "ask_agian_after = \"1d\"",
            format!("{q}.ask_agian_after: unknown key"),
        ),
    ];
    for (extra, expected) in cases {
        let error = only_error(&conditioned(extra));
        assert!(
            error.starts_with(expected.as_str()),
            "{extra}\n  gave: {error}\n  want: {expected}..."
        );
    }
}

#[test]
fn condition_keys_of_a_question_without_a_type_are_still_checked() {
    let text = conditioned("").replace("type = \"integer\"\n", "max_skips = 0\n");
    let err = load(&text, &[]).expect_err("invalid");
    assert_eq!(
        keys(&err),
        [
            "profiling.questions[1].type",
            "profiling.questions[1].max_skips"
        ]
    );
}
