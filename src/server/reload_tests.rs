use std::path::Path;

use super::*;

const SECRET: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const OTHER_SECRET: &str = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=";

/// A valid configuration: `server`, `session_secret`, `client_secret` and `extra` vary.
fn config(server: &str, session_secret: &str, client_secret: &str, extra: &str) -> Config {
    let text = format!(
        r#"
[server]
{server}
[upstream]
url = "http://127.0.0.1:3000"
[oidc]
issuer = "https://idp.example.com/realms/acme"
client_id = "profilegate"
client_secret = "{client_secret}"
[session]
secret = "{session_secret}"
{extra}
"#
    );
    let no_env: &[(&str, &str)] = &[];
    Config::from_toml(&text, no_env, Path::new("/etc/profilegate"))
        .unwrap_or_else(|e| panic!("test configuration refused: {e}"))
}

#[test]
fn an_unchanged_configuration_needs_no_restart() {
    let running = config("", SECRET, "change-me", "");
    let (_, needs_restart) = settle(&running, config("", SECRET, "change-me", ""));
    assert!(needs_restart.is_empty(), "{needs_restart:?}");
}

#[test]
fn restart_only_keys_are_reported_and_keep_their_running_value() {
    let running = config("threads = 2", SECRET, "change-me", "");
    let loaded = config(
        "threads = 3\nlisten = \"127.0.0.1:8081\"\npublic_url = \"http://127.0.0.1:8080\"",
        OTHER_SECRET,
        "another-secret",
        "[log]\nlevel = \"debug\"\n[store]\npath = \"/var/lib/other\"",
    );
    let (next, needs_restart) = settle(&running, loaded);
    assert_eq!(
        needs_restart,
        [
            "server.listen",
            "server.threads",
            "oidc.client_secret",
            "session.secret",
            "store.path",
            "log.level",
        ]
    );
    assert_eq!(next.server.threads, 2);
    assert_eq!(next.server.listen, running.server.listen);
    assert_eq!(next.session.secrets, running.session.secrets);
    assert_eq!(next.oidc.client_secret, running.oidc.client_secret);
    assert_eq!(next.log.level, running.log.level);
    assert!(
        matches!(&next.store.backend, StoreBackend::Sled { path, .. } if path.ends_with("data/profilegate")),
        "{:?}",
        next.store.backend
    );
}

#[test]
fn reloadable_keys_are_applied_and_not_reported() {
    let running = config("", SECRET, "change-me", "");
    let loaded = config(
        "trusted_proxies = [\"10.0.0.0/8\"]\nmax_header_bytes = \"8KiB\"",
        SECRET,
        "change-me",
        r#"
[store]
profile_cache_users = 5
[theme]
title = "Other"
[[routes]]
path = "/open"
public = true
[[profiling.questions]]
id = "company"
label = "Your company?"
type = "text"
"#,
    );
    let (next, needs_restart) = settle(&running, loaded);
    assert!(needs_restart.is_empty(), "{needs_restart:?}");
    assert_eq!(next.server.trusted_proxies.len(), 1);
    assert_eq!(next.server.max_header_bytes, 8 * 1024);
    assert_eq!(next.store.profile_cache_users, 5);
    assert_eq!(next.profiling.questions.len(), 1);
}

#[test]
fn a_secret_change_is_reported_by_key_without_its_value() {
    let running = config("", SECRET, "change-me", "");
    let (_, needs_restart) = settle(&running, config("", SECRET, "s3cret-value", ""));
    assert_eq!(needs_restart, ["oidc.client_secret"]);
    let report = ReloadReport {
        applied: true,
        errors: Vec::new(),
        needs_restart,
    };
    let text = report.to_json().to_string();
    assert!(
        !text.contains("s3cret-value") && !text.contains("change-me"),
        "{text}"
    );
}
