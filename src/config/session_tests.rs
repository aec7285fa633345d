//! `[session]`: the secret list (rotation) and the lifecycle keys.

use std::time::Duration;

use super::tests::{keys, load, minimal, SECRET};

const NEW: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
const THIRD: &str = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=";
const SHORT: &str = "c2hvcnQ=";

/// `minimal()` with its `secret` line replaced by `line`.
fn with_secret(line: &str) -> String {
    minimal().replace(&format!("secret = \"{SECRET}\""), line)
}

fn decoded(b64: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64")
}

#[test]
fn one_secret_or_a_list_the_first_first() {
    let c = load(&minimal(), &[]).expect("valid");
    assert_eq!(c.session.secrets, [decoded(SECRET)]);
    let c = load(
        &with_secret(&format!("secret = [\"{NEW}\", \"{SECRET}\"]")),
        &[],
    )
    .expect("valid");
    assert_eq!(c.session.secrets, [decoded(NEW), decoded(SECRET)]);
    let debug = format!("{:?}", c.session);
    assert!(debug.contains("<2 redacted>"), "{debug}");
    assert!(!debug.contains(&format!("{:?}", decoded(NEW))), "{debug}");
}

#[test]
fn every_listed_secret_is_checked_and_named_by_its_index() {
    let err = load(
        &with_secret(&format!(
            "secret = [\"{NEW}\", \"{SHORT}\", \"not base64!\", 7, \"{SECRET}\"]"
        )),
        &[],
    )
    .expect_err("invalid");
    // A list with a wrong type is reported for the type alone.
    assert_eq!(keys(&err), ["session.secret[3]"]);

    let err = load(
        &with_secret(&format!(
            "secret = [\"{NEW}\", \"{SHORT}\", \"not base64!\", \"{NEW}\", \"UkVQTEFDRS1NRS13aXRoLW9wZW5zc2wtcmFuZC1iYXNlNjQtMzI=\"]"
        )),
        &[],
    )
    .expect_err("invalid");
    assert_eq!(
        keys(&err),
        [
            "session.secret[1]",
            "session.secret[2]",
            "session.secret[3]",
            "session.secret[4]"
        ]
    );
    let text = err.to_string();
    assert!(text.contains("decodes to 5 bytes"), "{text}");
    assert!(text.contains("is not base64"), "{text}");
    assert!(
        text.contains("is the same secret as session.secret[0]"),
        "{text}"
    );
    assert!(text.contains("example placeholder"), "{text}");
    assert!(!text.contains(NEW), "no secret in errors: {text}");

    let err = load(&with_secret("secret = []"), &[]).expect_err("invalid");
    assert_eq!(keys(&err), ["session.secret"]);
    let err = load(&with_secret("secret = 42"), &[]).expect_err("invalid");
    assert_eq!(keys(&err), ["session.secret"]);
    let nine: Vec<String> = (0..9)
        .map(|i| format!("\"{}\"", "A".repeat(43) + &i.to_string()))
        .collect();
    let err = load(
        &with_secret(&format!("secret = [{}]", nine.join(", "))),
        &[],
    )
    .expect_err("invalid");
    assert_eq!(keys(&err), ["session.secret"]);
    assert!(err.to_string().contains("at most 8"), "{err}");
}

#[test]
fn the_environment_lists_secrets_separated_by_commas_or_spaces() {
    let env = [(
        "PROFILEGATE_SESSION_SECRET",
        &*format!(" {NEW}, {SECRET}\n{THIRD} "),
    )];
    let c = load(&minimal(), &env).expect("valid");
    assert_eq!(
        c.session.secrets,
        [decoded(NEW), decoded(SECRET), decoded(THIRD)]
    );
    let env = [("PROFILEGATE_SESSION_SECRET", &*format!("{NEW},{SHORT}"))];
    let err = load(&minimal(), &env).expect_err("invalid");
    assert_eq!(
        keys(&err),
        ["session.secret[1] (from PROFILEGATE_SESSION_SECRET)"]
    );
    let env = [("PROFILEGATE_SESSION_SECRET", SHORT)];
    let err = load(&minimal(), &env).expect_err("invalid");
    assert_eq!(
        keys(&err),
        ["session.secret (from PROFILEGATE_SESSION_SECRET)"]
    );
}

#[test]
fn a_secret_file_lists_one_secret_per_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("session_secret");
    std::fs::write(&file, format!("{NEW}\n\n  {SECRET}  \r\n")).expect("write");
    let line = format!("secret_file = {:?}", file.display().to_string());
    let c = load(&with_secret(&line), &[]).expect("valid");
    assert_eq!(c.session.secrets, [decoded(NEW), decoded(SECRET)]);

    std::fs::write(&file, format!("{NEW}\n{SHORT}\n{NEW}\n")).expect("write");
    let err = load(&with_secret(&line), &[]).expect_err("invalid");
    assert_eq!(
        keys(&err),
        ["session.secret_file", "session.secret_file"],
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("line 2: decodes to 5 bytes"), "{text}");
    assert!(
        text.contains("line 3: is the same secret as line 1"),
        "{text}"
    );
    std::fs::write(&file, "\n \n").expect("write");
    let err = load(&with_secret(&line), &[]).expect_err("invalid");
    assert_eq!(keys(&err), ["session.secret"], "{err}");
    // Inline and file at once: refused, as for every other secret.
    let both = format!("secret = \"{NEW}\"\n{line}");
    let err = load(&with_secret(&both), &[]).expect_err("invalid");
    assert_eq!(keys(&err), ["session.secret"], "{err}");
}

#[test]
fn the_idle_timeout_is_off_by_default_and_bounded() {
    let c = load(&minimal(), &[]).expect("valid");
    assert_eq!(c.session.idle_timeout, None);
    let c = load(&format!("{}idle_timeout = \"30m\"\n", minimal()), &[]).expect("valid");
    assert_eq!(c.session.idle_timeout, Some(Duration::from_secs(1800)));
    let c = load(&format!("{}idle_timeout = \"10s\"\n", minimal()), &[]).expect("valid");
    assert_eq!(c.session.idle_timeout, Some(Duration::from_secs(10)));
    for bad in ["9s", "91d", "soon"] {
        let text = format!("{}idle_timeout = \"{bad}\"\n", minimal());
        let err = load(&text, &[]).expect_err("invalid");
        assert_eq!(keys(&err), ["session.idle_timeout"], "{bad}");
    }
}
