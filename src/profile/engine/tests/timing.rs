//! `on_paths`, `ask_again_after`, `max_skips` and `expires_after`, at explicit times.

use std::time::Duration;

use serde_json::Map;

use super::*;

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
