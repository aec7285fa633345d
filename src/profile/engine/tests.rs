//! Table tests of the engine, with an explicit `now` as the clock.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::*;
use crate::policy::ClaimUse;
use crate::policy::{Expr, Scope};
use crate::profile::Question;
use crate::profile::{AnswerValue, QuestionType};
use crate::store::Skip;
use crate::store::{AnswerSource, ProfileRecord, StoredAnswer};

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

// ---- on_paths --------------------------------------------------------------------------------

fn billing(required: bool) -> Question {
    let mut billing = q("billing_address", required);
    billing.on_paths = vec!["/billing".into(), "/shop/checkout/".into()];
    billing
}

#[test]
fn on_paths_questions_are_never_picked_at_login_but_are_due_on_their_paths() {
    let e = Engine::new(vec![billing(true), q("role", false)], 5);
    let r = login(1);
    let picked = pick(&e, &r);
    assert_eq!(picked.pending, ["role"]);
    assert!(picked.required.is_empty());
    let due = e.due_on_paths(&r, &Map::new(), &[], NOW, 1);
    assert_eq!(
        due,
        [DueOnPath {
            id: "billing_address".into(),
            required: true,
            paths: vec!["/billing".into(), "/shop/checkout/".into()],
        }]
    );
    for (path, matches) in [
        ("/billing", true),
        ("/billing/invoices/3", true),
        ("/billingx", false),
        ("/Billing", false),
        ("/shop/checkout/pay", true),
        ("/shop/checkout", false),
        ("/", false),
    ] {
        assert_eq!(due[0].matches(path), matches, "{path}");
    }
    let mut answered_now = r.clone();
    answered(&mut answered_now, "billing_address", 1);
    assert!(e
        .due_on_paths(&answered_now, &Map::new(), &[], NOW, 1)
        .is_empty());
}

#[test]
fn on_paths_questions_follow_their_condition() {
    let mut b = billing(false);
    b.when = when(r#""buyers" in groups"#);
    let e = Engine::new(vec![b], 1);
    let r = login(1);
    assert!(e.due_on_paths(&r, &Map::new(), &[], NOW, 1).is_empty());
    let due = e.due_on_paths(&r, &Map::new(), &["buyers".into()], NOW, 1);
    assert_eq!(due.len(), 1);
    assert!(!due[0].required);
}

#[test]
fn an_on_paths_question_skipped_in_this_login_waits_for_the_next_or_its_delay() {
    // (ask_again_after, skipped at, skipped in login, now, this login, due)
    let cases: [(Option<u64>, u64, u64, u64, u64, bool); 6] = [
        (None, NOW - 60, 3, NOW, 3, false),
        (None, NOW - 60, 2, NOW, 3, true),
        (Some(3600), NOW - 60, 3, NOW, 3, false),
        (Some(3600), NOW - 3600, 3, NOW, 3, true),
        (Some(3600), NOW - 60, 2, NOW, 3, false),
        (Some(3600), NOW - 7200, 2, NOW, 3, true),
    ];
    for (wait, at, skipped_login, now, this_login, due) in cases {
        let mut b = billing(false);
        b.ask_again_after = wait.map(Duration::from_secs);
        let e = Engine::new(vec![b], 1);
        let mut r = login(this_login);
        r.skips
            .insert("billing_address".into(), skip(at, skipped_login, 1));
        assert_eq!(
            e.due_on_paths(&r, &Map::new(), &[], now, this_login).len() == 1,
            due,
            "wait {wait:?}, skipped at {at} in login {skipped_login}, now {now}, login {this_login}"
        );
    }
}

// ---- ask_again_after, max_skips, expires_after -----------------------------------------------

#[test]
fn ask_again_after_keeps_a_skipped_question_away_for_that_long() {
    let thirty_days = 30 * DAY;
    // (skipped at, now, picked)
    let cases = [
        (NOW, NOW + DAY, false),
        (NOW, NOW + thirty_days - 1, false),
        (NOW, NOW + thirty_days, true),
        (NOW, NOW + 2 * thirty_days, true),
    ];
    for (at, now, picked) in cases {
        let mut role = q("role", false);
        role.ask_again_after = Some(Duration::from_secs(thirty_days));
        let e = Engine::new(vec![role, q("team", false)], 1);
        // Skipped several logins ago: without the key it would be asked (in normal order).
        let mut r = login(9);
        r.skips.insert("role".into(), skip(at, 2, 1));
        let got = e.pick(&r, &Map::new(), &[], now);
        let expected = if picked { "role" } else { "team" };
        assert_eq!(got.pending, [expected], "skipped at {at}, now {now}");
    }
}

#[test]
fn an_optional_question_skipped_max_skips_times_is_required() {
    // (skips so far, ask_again_after, now, pending, required)
    type Case = (
        u32,
        Option<u64>,
        u64,
        &'static [&'static str],
        &'static [&'static str],
    );
    let cases: [Case; 5] = [
        (1, None, NOW, &["role"], &[]),
        (2, None, NOW, &["role"], &[]),
        (3, None, NOW, &["role"], &["role"]),
        (5, None, NOW, &["role"], &["role"]),
        // The delay after the last skip still applies; then it comes back required.
        (3, Some(DAY), NOW + DAY - 1, &[], &[]),
    ];
    for (count, wait, now, pending, required) in cases {
        let mut role = q("role", false);
        role.max_skips = Some(3);
        role.ask_again_after = wait.map(Duration::from_secs);
        let e = Engine::new(vec![role], 1);
        let mut r = login(5);
        r.skips.insert("role".into(), skip(NOW, 4, count));
        let got = e.pick(&r, &Map::new(), &[], now);
        assert_eq!(got.pending, pending, "{count} skips, wait {wait:?}");
        assert_eq!(got.required, required, "{count} skips, wait {wait:?}");
    }
    // Soft-required goes before the other questions, as required ones do.
    let mut role = q("role", false);
    role.max_skips = Some(1);
    let e = Engine::new(vec![q("team", false), role], 1);
    let mut r = login(5);
    r.skips.insert("role".into(), skip(NOW, 4, 1));
    assert_eq!(
        pick(&e, &r).pending,
        ["team"],
        "not before its turn in order"
    );
    let mut r2 = r.clone();
    answered(&mut r2, "team", 1);
    assert_eq!(pick(&e, &r2).required, ["role"]);
}

#[test]
fn an_expired_answer_counts_as_unanswered() {
    let year = 365 * DAY;
    // (answered at, now, asked again)
    let cases = [
        (NOW, NOW + year - 1, false),
        (NOW, NOW + year, true),
        (NOW, NOW + 2 * year, true),
        (NOW, NOW, false),
    ];
    for (at, now, asked) in cases {
        let mut company = q("company", true);
        company.expires_after = Some(Duration::from_secs(year));
        let e = Engine::new(vec![company.clone()], 1);
        let mut r = login(4);
        r.answers.insert(
            "company".into(),
            answer(AnswerValue::Text("Acme".into()), at, 1),
        );
        let got = e.pick(&r, &Map::new(), &[], now);
        assert_eq!(!got.pending.is_empty(), asked, "answered {at}, now {now}");
        assert_eq!(
            answer_is_current(&company, &r.answers["company"], now),
            !asked
        );
    }
    // Without the key, answers never expire.
    let e = Engine::new(vec![q("company", true)], 1);
    let mut r = login(4);
    answered(&mut r, "company", 1);
    assert!(e.pick(&r, &Map::new(), &[], u64::MAX).pending.is_empty());
}

#[test]
fn a_skip_beside_an_expired_answer_follows_the_skip_rules() {
    let mut role = q("role", false);
    role.expires_after = Some(Duration::from_secs(DAY));
    role.ask_again_after = Some(Duration::from_secs(7 * DAY));
    let e = Engine::new(vec![role], 1);
    let mut r = login(3);
    r.answers.insert(
        "role".into(),
        answer(AnswerValue::Text("Dev".into()), NOW - 10 * DAY, 1),
    );
    r.skips.insert("role".into(), skip(NOW - DAY, 2, 1));
    assert!(pick(&e, &r).pending.is_empty(), "skipped a day ago");
    let later = e.pick(&r, &Map::new(), &[], NOW + 6 * DAY);
    assert_eq!(later.pending, ["role"], "a week after the skip");
}
