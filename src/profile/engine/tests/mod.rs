//! Table tests of the engine, with an explicit `now` as the clock: the login's pick and `when`
//! here; `on_paths` and the timing keys in `timing.rs`.

mod timing;

use serde_json::{json, Map, Value};

use super::*;
use crate::policy::{ClaimUse, Expr, Scope};
use crate::profile::{AnswerValue, Question, QuestionType};
use crate::store::{AnswerSource, ProfileRecord, Skip, StoredAnswer};

const NOW: u64 = 1_800_000_000;
const DAY: u64 = 86_400;

fn q(id: &str, required: bool) -> Question {
    let mut q = Question::new(id, id, QuestionType::Text);
    q.required = required;
    q
}

fn when(source: &str) -> Option<Expr> {
    Some(Expr::compile(source, Scope::Condition, &|_| true).expect("compiles"))
}

fn engine(per_login: usize) -> Engine {
    Engine::new(
        vec![q("company", true), q("role", false), q("team", false)],
        per_login,
    )
}

fn answer(value: AnswerValue, answered_at: u64, version: u32) -> StoredAnswer {
    StoredAnswer {
        value,
        answered_at,
        question_version: version,
        source: AnswerSource::User,
    }
}

fn answered(record: &mut ProfileRecord, id: &str, version: u32) {
    record
        .answers
        .insert(id.into(), answer(AnswerValue::Text("x".into()), 1, version));
}

fn login(n: u64) -> ProfileRecord {
    ProfileRecord {
        logins: n,
        ..ProfileRecord::default()
    }
}

fn skip(at: u64, login: u64, count: u32) -> Skip {
    Skip { at, login, count }
}

/// `pick` with no claims, no groups, at `NOW`.
fn pick(e: &Engine, r: &ProfileRecord) -> Picked {
    e.pick(r, &Map::new(), &[], NOW)
}

fn claims(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("claims are an object: {other}"),
    }
}

// ---- the login's pick, as before conditions -------------------------------------------------

#[test]
fn first_login_asks_the_first_question_in_configured_order() {
    let picked = pick(&engine(1), &login(1));
    assert_eq!(picked.pending, ["company"]);
    assert_eq!(picked.required, ["company"]);
    let picked = pick(&engine(2), &login(1));
    assert_eq!(picked.pending, ["company", "role"]);
}

#[test]
fn answered_questions_are_not_asked_unless_their_version_rose() {
    let mut r = login(2);
    answered(&mut r, "company", 1);
    assert_eq!(pick(&engine(1), &r).pending, ["role"]);
    let mut e = engine(1);
    e.questions[0].version = 2;
    assert_eq!(
        pick(&e, &r).pending,
        ["company"],
        "version 2 is asked again"
    );
}

#[test]
fn a_question_skipped_at_the_previous_login_goes_last_then_comes_back() {
    let mut r = login(3);
    answered(&mut r, "company", 1);
    r.skips.insert("role".into(), skip(1, 2, 1));
    assert_eq!(
        pick(&engine(1), &r).pending,
        ["team"],
        "skipped last login: others first"
    );
    assert_eq!(
        pick(&engine(2), &r).pending,
        ["role", "team"],
        "shown in configured order"
    );
    answered(&mut r, "team", 1);
    assert_eq!(
        pick(&engine(1), &r).pending,
        ["role"],
        "nothing else left: it comes back"
    );
    r.logins = 4;
    r.answers.remove("team");
    assert_eq!(
        pick(&engine(1), &r).pending,
        ["role"],
        "skipped two logins ago: normal order"
    );
}

#[test]
fn nothing_left_means_nothing_pending() {
    let mut r = login(5);
    for id in ["company", "role", "team"] {
        answered(&mut r, id, 1);
    }
    assert_eq!(pick(&engine(3), &r), Picked::default());
}

#[test]
fn claims_supply_answers_once() {
    let e = engine(1);
    let claims: Map<String, Value> =
        serde_json::from_str(r#"{"company":"Initech","role":"","unrelated":1}"#).expect("json");
    let got = e.claimed_answers(None, &claims, 10);
    assert_eq!(got.len(), 1, "an empty claim supplies nothing");
    assert_eq!(got[0].0, "company");
    assert_eq!(got[0].1.source, AnswerSource::Provider);
    let mut r = login(1);
    r.answers.insert(got[0].0.clone(), got[0].1.clone());
    assert!(
        e.claimed_answers(Some(&r), &claims, 11).is_empty(),
        "unchanged: not saved again"
    );
}

// ---- when ------------------------------------------------------------------------------------

#[test]
fn when_decides_over_claims_and_groups_and_an_unevaluable_condition_is_false() {
    let cases: [(&str, Value, &[&str], bool); 9] = [
        (
            r#"!claims.email.endsWith("@acme.com")"#,
            json!({"email": "bob@other.org"}),
            &[],
            true,
        ),
        (
            r#"!claims.email.endsWith("@acme.com")"#,
            json!({"email": "ann@acme.com"}),
            &[],
            false,
        ),
        // A missing claim cannot be evaluated: false, never an error.
        (
            r#"!claims.email.endsWith("@acme.com")"#,
            json!({}),
            &[],
            false,
        ),
        // A type mismatch neither.
        (
            r#"claims.email.endsWith("@acme.com")"#,
            json!({"email": 3}),
            &[],
            false,
        ),
        (r#""staff" in groups"#, json!({}), &["staff", "dev"], true),
        (r#""staff" in groups"#, json!({}), &["dev"], false),
        (
            r#"claims.email_verified"#,
            json!({"email_verified": true}),
            &[],
            true,
        ),
        // Not a boolean: false.
        (
            r#"claims.email_verified"#,
            json!({"email_verified": "yes"}),
            &[],
            false,
        ),
        (r#"has(claims.tenant)"#, json!({"tenant": "t1"}), &[], true),
    ];
    for (source, claim_values, groups, asked) in cases {
        let mut company = q("company", false);
        company.when = when(source);
        let e = Engine::new(vec![company], 1);
        let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
        let picked = e.pick(&login(1), &claims(claim_values.clone()), &groups, NOW);
        assert_eq!(
            picked.pending == ["company"],
            asked,
            "{source} over {claim_values} and {groups:?}: {picked:?}"
        );
    }
}

#[test]
fn conditions_chain_over_answers_across_logins() {
    let mut role = Question::new("role", "Role", QuestionType::Select);
    role.options = vec!["Engineering".into(), "Sales".into()];
    let mut team_size = Question::new("team_size", "Team size", QuestionType::Integer);
    team_size.when = when(r#"answers.role == "Engineering""#);
    let e = Engine::new(vec![role, team_size], 2);
    // First login: role is not answered, so the condition is false (not an error).
    assert_eq!(pick(&e, &login(1)).pending, ["role"]);
    for (role, then) in [("Engineering", vec!["team_size"]), ("Sales", vec![])] {
        let mut second = login(2);
        second.answers.insert(
            "role".into(),
            answer(AnswerValue::Text(role.into()), NOW - DAY, 1),
        );
        assert_eq!(pick(&e, &second).pending, then, "role {role}");
    }
}

#[test]
fn the_engine_names_the_claims_its_conditions_read() {
    let mut a = q("a", false);
    a.when = when(r#"claims.email.endsWith("@acme.com")"#);
    let mut b = q("b", false);
    b.when = when(r#"claims.department == "R&D" && "staff" in groups"#);
    let c = q("c", false);
    let e = Engine::new(vec![a, b, c], 1);
    let uses = e.claims();
    assert!(uses.reads("email") && uses.reads("department"), "{uses:?}");
    assert!(!uses.reads("name"), "{uses:?}");
    assert_eq!(engine(1).claims(), ClaimUse::None);
}

#[test]
fn answers_are_facts_as_the_jwt_carries_them() {
    let mut r = login(1);
    r.answers
        .insert("size".into(), answer(AnswerValue::Integer(12), 1, 1));
    r.answers.insert(
        "langs".into(),
        answer(AnswerValue::List(vec!["de".into(), "en".into()]), 1, 1),
    );
    assert_eq!(
        Value::Object(answers_json(&r.answers)),
        json!({"size": 12, "langs": ["de", "en"]})
    );
}
