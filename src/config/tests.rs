use std::path::Path;

use super::*;

const SECRET: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // 32 bytes

fn minimal() -> String {
    format!(
        r#"
[upstream]
url = "http://127.0.0.1:3000"
[oidc]
issuer = "https://idp.example.com/realms/acme"
client_id = "profilegate"
client_secret = "change-me"
[session]
secret = "{SECRET}"
"#
    )
}

fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
    Config::from_toml(text, env, Path::new("/etc/profilegate"))
}

fn keys(err: &ConfigErrors) -> Vec<&str> {
    err.0.iter().map(|e| e.key.as_str()).collect()
}

#[test]
fn minimal_config_gets_documented_defaults() {
    let c = load(&minimal(), &[]).expect("valid");
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.server.public_url.origin(), "http://127.0.0.1:8080");
    assert_eq!(c.server.admin_listen.to_string(), "127.0.0.1:9091");
    assert!(c.server.trusted_proxies.is_empty());
    assert_eq!(c.server.prefix, "/.profilegate");
    assert_eq!(c.oidc.scopes, ["openid", "email", "profile"]);
    assert_eq!(c.session.lifetime, Duration::from_secs(8 * 3600));
    assert_eq!(c.session.secret.len(), 32);
    match c.store {
        StoreConfig::Sled { path } => {
            assert_eq!(path, Path::new("/etc/profilegate/data/profilegate"))
        }
        other => panic!("expected sled, got {other:?}"),
    }
    assert_eq!(c.upstream.port, 3000);
    assert!(!c.upstream.tls);
}

#[test]
fn every_error_is_reported_at_once_with_its_key() {
    let text = r#"
[server]
listen = "nowhere"
publik_url = "x"
[upstream]
url = "ftp://example.com"
[oidc]
issuer = 42
client_id = "x"
scopes = ["email"]
[session]
secret = "c2hvcnQ="
lifetime = "forever"
[store]
backend = "mysql"
[colors]
x = 1
"#;
    let err = load(text, &[]).expect_err("invalid");
    let k = keys(&err);
    for expected in [
        "server.listen",
        "server.publik_url",
        "upstream.url",
        "oidc.issuer",
        "oidc.client_secret",
        "oidc.scopes",
        "session.secret",
        "session.lifetime",
        "store.backend",
        "colors",
    ] {
        assert!(k.contains(&expected), "missing {expected} in {k:?}");
    }
}

#[test]
fn missing_required_keys_are_named() {
    let err = load("", &[]).expect_err("invalid");
    let k = keys(&err);
    for expected in [
        "upstream.url",
        "oidc.issuer",
        "oidc.client_id",
        "oidc.client_secret",
        "session.secret",
    ] {
        assert!(k.contains(&expected), "missing {expected} in {k:?}");
    }
}

#[test]
fn environment_overrides_any_key_and_is_named_in_errors() {
    let env = [
        ("PROFILEGATE_OIDC_CLIENT_SECRET", "from-env"),
        (
            "PROFILEGATE_SERVER_TRUSTED_PROXIES",
            "10.0.0.0/8, 192.168.1.1",
        ),
        ("PROFILEGATE_SERVER_THREADS", "3"),
        ("HOME", "/root"),
    ];
    let c = load(&minimal(), &env).expect("valid");
    assert_eq!(c.oidc.client_secret.expose(), "from-env");
    assert_eq!(c.server.trusted_proxies.len(), 2);
    assert_eq!(c.server.threads, 3);

    let err = load(&minimal(), &[("PROFILEGATE_SERVER_THREADS", "many")]).expect_err("invalid");
    assert_eq!(
        keys(&err),
        ["server.threads (from PROFILEGATE_SERVER_THREADS)"]
    );

    let err = load(&minimal(), &[("PROFILEGATE_OIDC_CLIENT_SECRT", "x")]).expect_err("invalid");
    assert_eq!(
        keys(&err),
        ["oidc.client_secrt (from PROFILEGATE_OIDC_CLIENT_SECRT)"]
    );

    let err = load(&minimal(), &[("PROFILEGATE_NOPE_X", "x")]).expect_err("invalid");
    assert_eq!(keys(&err), ["PROFILEGATE_NOPE_X"]);
}

#[test]
fn secrets_can_come_from_files_and_not_from_both() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("client_secret");
    std::fs::write(&file, "file-secret\n").expect("write");
    let text = minimal().replace(
        "client_secret = \"change-me\"",
        &format!("client_secret_file = {:?}", file.display().to_string()),
    );
    let c = load(&text, &[]).expect("valid");
    assert_eq!(c.oidc.client_secret.expose(), "file-secret");

    let both = minimal().replace(
        "client_secret = \"change-me\"",
        "client_secret = \"a\"\nclient_secret_file = \"/x\"",
    );
    let err = load(&both, &[]).expect_err("invalid");
    assert_eq!(keys(&err), ["oidc.client_secret"]);

    let missing = minimal().replace(
        "client_secret = \"change-me\"",
        "client_secret_file = \"/does/not/exist\"",
    );
    let err = load(&missing, &[]).expect_err("invalid");
    assert_eq!(keys(&err), ["oidc.client_secret_file"]);
}

#[test]
fn secrets_never_appear_in_debug_or_errors() {
    let c = load(&minimal(), &[]).expect("valid");
    let debug = format!("{c:?}");
    assert!(!debug.contains("change-me"), "{debug}");
    assert!(!debug.contains(SECRET), "{debug}");

    // A TOML syntax error on the secret's line must not echo the line.
    let broken = minimal().replace(
        "client_secret = \"change-me\"",
        "client_secret = \"change-me",
    );
    let err = load(&broken, &[]).expect_err("invalid");
    assert!(!err.to_string().contains("change-me"), "{err}");
}

#[test]
fn public_url_must_be_an_origin() {
    for bad in [
        "ftp://x",
        "http://x/app",
        "http://u:p@x",
        "not a url",
        "http://x?a=b",
    ] {
        let text = format!("[server]\npublic_url = {bad:?}\n{}", minimal());
        let err = load(&text, &[]).expect_err(bad);
        assert_eq!(keys(&err), ["server.public_url"], "{bad}");
    }
    let text = format!("[server]\nlisten = \"0.0.0.0:8080\"\n{}", minimal());
    let err = load(&text, &[]).expect_err("unspecified listen needs public_url");
    assert_eq!(keys(&err), ["server.public_url"]);
}

#[test]
fn admin_listener_cannot_share_the_public_port() {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:8080\"\nadmin_listen = \"127.0.0.1:8080\"\n{}",
        minimal()
    );
    let err = load(&text, &[]).expect_err("invalid");
    assert_eq!(keys(&err), ["server.admin_listen"]);
}

#[test]
fn none_and_hmac_algorithms_are_refused() {
    for alg in ["none", "HS256"] {
        let text = minimal().replace(
            "client_id = \"profilegate\"",
            &format!("client_id = \"profilegate\"\nsigning_algs = [{alg:?}]"),
        );
        let err = load(&text, &[]).expect_err(alg);
        assert_eq!(keys(&err), ["oidc.signing_algs"]);
    }
}

#[test]
fn postgres_store_needs_a_url() {
    let text = format!("{}\n[store]\nbackend = \"postgres\"\n", minimal());
    let err = load(&text, &[]).expect_err("invalid");
    assert_eq!(keys(&err), ["store.url"]);
    let text = format!(
        "{}\n[store]\nbackend = \"postgres\"\nurl = \"postgres://u:p@127.0.0.1/db\"\n",
        minimal()
    );
    let c = load(&text, &[]).expect("valid");
    assert!(!format!("{c:?}").contains("u:p@"));
}
