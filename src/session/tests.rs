//! Unit tests of the sealed cookies: sessions, logins, shown stamps, rotation of secrets.

use super::request_cookies::MAX_COOKIES;
use super::*;

fn sealer() -> CookieSealer {
    test_sealer("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
}

fn value_of(set_cookie: &str) -> (String, String) {
    let c = Cookie::parse(set_cookie.to_owned()).expect("cookie");
    (c.name().to_owned(), c.value().to_owned())
}

#[test]
fn a_shown_stamp_opens_only_for_its_session_question_and_version() {
    let s = sealer();
    let stamp = s.shown_stamp("csrf1", "company", 2, 1_700_000_000_123);
    assert_eq!(
        s.open_shown_stamp(&stamp, "csrf1", "company", 2),
        Some(1_700_000_000_123)
    );
    assert_eq!(s.open_shown_stamp(&stamp, "csrf2", "company", 2), None);
    assert_eq!(s.open_shown_stamp(&stamp, "csrf1", "role", 2), None);
    assert_eq!(s.open_shown_stamp(&stamp, "csrf1", "company", 3), None);
    // An earlier time with the same tag: refused (the client cannot move the clock).
    let (_, tag) = stamp.split_once('.').expect("stamp");
    let moved = format!("1600000000000.{tag}");
    assert_eq!(s.open_shown_stamp(&moved, "csrf1", "company", 2), None);
    assert_eq!(s.open_shown_stamp("garbage", "csrf1", "company", 2), None);
    let other = test_sealer("ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=");
    assert_eq!(other.open_shown_stamp(&stamp, "csrf1", "company", 2), None);
}

#[test]
fn sealed_session_round_trips_and_hides_its_content() {
    let s = sealer();
    let session = s.new_session("alice".into(), Some("a@example.com".into()), None, None);
    let set = s.seal_session(&session);
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    assert!(!set.contains("alice"), "{set}");
    let (name, value) = value_of(&set);
    let header = format!("other=1; {name}={value}");
    let cookies = RequestCookies::parse([header.as_bytes()]);
    assert_eq!(s.open_session(&cookies), Some(session));
}

#[test]
fn tampered_or_foreign_cookie_reads_as_anonymous() {
    let s = sealer();
    let session = s.new_session("alice".into(), None, None, None);
    let (name, value) = value_of(&s.seal_session(&session));
    let mut bytes = value.into_bytes();
    let mid = bytes.len() / 2;
    bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
    let header = format!("{name}={}", String::from_utf8(bytes).expect("utf8"));
    assert_eq!(
        s.open_session(&RequestCookies::parse([header.as_bytes()])),
        None
    );
    let garbage = format!("{name}=not-base64!!");
    assert_eq!(
        s.open_session(&RequestCookies::parse([garbage.as_bytes()])),
        None
    );
}

#[test]
fn expired_session_reads_as_anonymous() {
    let s = sealer();
    let mut session = s.new_session("alice".into(), None, None, None);
    session.exp = now_secs() - 1;
    let json = serde_json::to_string(&session).expect("json");
    let (name, value) = value_of(&s.sealed_cookie("profilegate_session", json, 60));
    let header = format!("{name}={value}");
    assert_eq!(
        s.open_session(&RequestCookies::parse([header.as_bytes()])),
        None
    );
}

#[test]
fn login_state_opens_only_for_its_own_state() {
    let s = sealer();
    let none = RequestCookies::parse(std::iter::empty());
    let rt = ReturnTo::root();
    let (login, set) = s.begin_login(&none, "n".into(), "v".into(), &rt, None);
    let (name, value) = value_of(set.first().expect("cookie"));
    let header = format!("{name}={value}");
    let cookies = RequestCookies::parse([header.as_bytes()]);
    assert!(s.open_login(&cookies, &login.state).is_some());
    let mut other = login.state.clone();
    other.push('x');
    assert!(s.open_login(&cookies, &other).is_none());
}

#[test]
fn a_silent_login_state_says_so_and_an_older_one_reads_as_not_silent() {
    let s = sealer();
    let none = RequestCookies::parse(std::iter::empty());
    let rt = ReturnTo::root();
    for silent in [false, true] {
        let (login, set) = match silent {
            true => s.begin_silent_login(&none, "n".into(), "v".into(), &rt, None),
            false => s.begin_login(&none, "n".into(), "v".into(), &rt, None),
        };
        let (name, value) = value_of(set.first().expect("cookie"));
        let header = format!("{name}={value}");
        let cookies = RequestCookies::parse([header.as_bytes()]);
        let opened = s.open_login(&cookies, &login.state).expect("opens");
        assert_eq!((login.silent, opened.silent), (silent, silent));
    }
    // A login state sealed before the field existed is a normal login.
    let old: LoginState = serde_json::from_str(
        r#"{"state":"s","nonce":"n","pkce_verifier":"v","return_to":"/","exp":1}"#,
    )
    .expect("old state");
    assert!(!old.silent);
}

#[test]
fn logins_in_progress_are_capped() {
    let s = sealer();
    let mut header = String::new();
    for _ in 0..5 {
        let cookies = RequestCookies::parse([header.as_bytes()]);
        let (_, set) = s.begin_login(&cookies, "n".into(), "v".into(), &ReturnTo::root(), None);
        let (name, value) = value_of(set.first().expect("cookie"));
        header.push_str(&format!("{name}={value}; "));
        assert!(set.len() <= MAX_LOGINS_IN_PROGRESS, "{set:?}");
    }
    let cookies = RequestCookies::parse([header.as_bytes()]);
    let (_, set) = s.begin_login(&cookies, "n".into(), "v".into(), &ReturnTo::root(), None);
    // 5 present + 1 new, at most 3 kept: the new cookie, then 3 deletions.
    assert_eq!(set.len(), 4);
    assert!(!set[0].contains("Max-Age=0"), "{set:?}");
    assert!(set[1..].iter().all(|c| c.contains("Max-Age=0")), "{set:?}");
}

#[test]
fn cookie_parsing_is_bounded() {
    let long = format!("a={}", "x".repeat(MAX_COOKIE_VALUE + 1));
    assert_eq!(RequestCookies::parse([long.as_bytes()]).get("a"), None);
    let many: String = (0..500).map(|i| format!("c{i}=v; ")).collect();
    assert_eq!(
        RequestCookies::parse([many.as_bytes()]).iter().count(),
        MAX_COOKIES
    );
}

const OLD: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const NEW: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

/// `name=value` of a `Set-Cookie`, as a request's `Cookie` header sends it back.
fn sent(set_cookie: &str) -> String {
    let (name, value) = value_of(set_cookie);
    format!("{name}={value}")
}

fn opens(s: &CookieSealer, header: &str) -> Option<Session> {
    s.open_session(&RequestCookies::parse([header.as_bytes()]))
}

#[test]
fn a_new_secret_put_first_opens_old_cookies_and_seals_with_the_new_one() {
    let before = test_sealer_of(&[OLD]);
    let during = test_sealer_of(&[NEW, OLD]);
    let after = test_sealer_of(&[NEW]);
    let session = before.new_session("alice".into(), None, None, None);
    let old_cookie = sent(&before.seal_session(&session));
    // Adding the new secret first signs nobody out...
    assert_eq!(opens(&during, &old_cookie), Some(session.clone()));
    // ...and what is sealed from then on is sealed with the new secret only.
    let resealed = sent(&during.seal_session(&session));
    assert_eq!(opens(&after, &resealed), Some(session.clone()));
    assert_eq!(opens(&before, &resealed), None, "not sealed with the old");
    assert_eq!(opens(&during, &resealed), Some(session));
    // Dropping the old secret ends what only it sealed.
    assert_eq!(opens(&after, &old_cookie), None);
}

#[test]
fn logins_in_progress_and_shown_stamps_survive_a_rotation() {
    let before = test_sealer_of(&[OLD]);
    let during = test_sealer_of(&[NEW, OLD]);
    let after = test_sealer_of(&[NEW]);
    let none = RequestCookies::parse(std::iter::empty());
    let (login, set) = before.begin_login(&none, "n".into(), "v".into(), &ReturnTo::root(), None);
    let header = sent(set.first().expect("login cookie"));
    let cookies = RequestCookies::parse([header.as_bytes()]);
    assert!(during.open_login(&cookies, &login.state).is_some());
    assert!(after.open_login(&cookies, &login.state).is_none());

    let old_stamp = before.shown_stamp("csrf", "company", 1, 1_700_000_000_000);
    assert_eq!(
        during.open_shown_stamp(&old_stamp, "csrf", "company", 1),
        Some(1_700_000_000_000)
    );
    assert_eq!(
        after.open_shown_stamp(&old_stamp, "csrf", "company", 1),
        None
    );
    let new_stamp = during.shown_stamp("csrf", "company", 1, 1_700_000_000_001);
    assert_eq!(
        after.open_shown_stamp(&new_stamp, "csrf", "company", 1),
        Some(1_700_000_000_001)
    );
    assert_eq!(
        before.open_shown_stamp(&new_stamp, "csrf", "company", 1),
        None
    );
}

#[test]
fn the_tokens_at_rest_rotate_with_the_cookies() {
    let tokens = at_rest::SessionTokens {
        refresh_token: Some("rt".into()),
        id_token: None,
    };
    let before = test_sealer_of(&[OLD]);
    let during = test_sealer_of(&[NEW, OLD]);
    let after = test_sealer_of(&[NEW]);
    let sealed = before.tokens().seal("sid", &tokens).expect("sealed");
    assert_eq!(during.tokens().open("sid", &sealed), Some(tokens.clone()));
    assert_eq!(after.tokens().open("sid", &sealed), None);
    let resealed = during.tokens().seal("sid", &tokens).expect("sealed");
    assert_eq!(after.tokens().open("sid", &resealed), Some(tokens));
}
