use std::path::Path;
use std::time::Duration;

use super::*;

pub(super) const SECRET: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // 32 bytes

pub(super) fn minimal() -> String {
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

pub(super) fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
    Config::from_toml(text, env, Path::new("/etc/profilegate"))
}

pub(super) fn keys(err: &ConfigErrors) -> Vec<&str> {
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
    assert_eq!(c.session.secrets.len(), 1);
    assert_eq!(c.session.secrets[0].len(), 32);
    match c.store.backend {
        StoreBackend::Sled { path, cache_size } => {
            assert_eq!(path, Path::new("/etc/profilegate/data/profilegate"));
            assert_eq!(cache_size, 16 * 1024 * 1024);
        }
        other => panic!("expected sled, got {other:?}"),
    }
    assert_eq!(c.store.profile_cache_users, 10_000);
    assert_eq!(c.upstream.port, 3000);
    assert!(!c.upstream.tls);
    assert!(!c.upstream.preserve_header_case, "Title-Case by default");
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
    assert_eq!(
        c.oidc.client_secret.as_ref().map(|s| s.expose()),
        Some("from-env")
    );
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
fn a_secret_file_that_never_ends_is_refused() {
    // /dev/zero reports a size of 0 and never ends: the read itself must be bounded.
    if !Path::new("/dev/zero").exists() {
        return;
    }
    let text = minimal().replace(
        "client_secret = \"change-me\"",
        "client_secret_file = \"/dev/zero\"",
    );
    let err = load(&text, &[]).expect_err("refused");
    assert_eq!(keys(&err), ["oidc.client_secret_file"]);
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
    assert_eq!(
        c.oidc.client_secret.as_ref().map(|s| s.expose()),
        Some("file-secret")
    );

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
fn upstream_header_case_is_title_or_preserve() {
    let with = |v: &str| load(&minimal(), &[("PROFILEGATE_UPSTREAM_HEADER_CASE", v)]);
    assert!(!with("title").expect("valid").upstream.preserve_header_case);
    assert!(
        with("preserve")
            .expect("valid")
            .upstream
            .preserve_header_case
    );
    let err = with("lower").expect_err("invalid");
    assert_eq!(
        keys(&err),
        ["upstream.header_case (from PROFILEGATE_UPSTREAM_HEADER_CASE)"]
    );
    assert!(
        err.to_string().contains("\"title\" or \"preserve\""),
        "{err}"
    );
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

#[test]
fn a_postgres_url_is_checked_without_repeating_it() {
    let with = |url: &str, extra: &str| {
        format!(
            "{}\n[store]\nbackend = \"postgres\"\nurl = \"{url}\"\n{extra}\n",
            minimal()
        )
    };
    // An option the client does not know, a bad value, a bad port: named, the URL not repeated.
    for url in [
        "postgres://u:s3cret@db.internal/app?sslmode=sometimes",
        "postgres://u:s3cret@db.internal:notaport/app",
        "postgres://u:s3cret@db.internal/app?bogus=1",
    ] {
        let err = load(&with(url, ""), &[]).expect_err(url);
        assert_eq!(keys(&err), ["store.url"], "{url}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }
    for url in [
        "postgres://u:s3cret@db.internal/app?sslmode=disable",
        "postgres://u:s3cret@db.internal/app?sslmode=require",
        "postgresql://u@127.0.0.1:5433/app?options=-csearch_path%3Dpg&application_name=x",
    ] {
        load(&with(url, ""), &[]).unwrap_or_else(|e| panic!("{url}: {e}"));
    }
}

#[test]
fn the_postgres_ca_file_is_read_at_load_and_needs_sslmode_require() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    // A real self-signed certificate (P-256), as `openssl req -x509` writes it.
    std::fs::write(&ca, TEST_CA_PEM).expect("write");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").expect("write");
    let with = |url: &str, file: &std::path::Path| {
        format!(
            "{}\n[store]\nbackend = \"postgres\"\nurl = \"{url}\"\ntls_ca_file = \"{}\"\n",
            minimal(),
            file.display()
        )
    };
    let require = "postgres://u:p@db.internal/app?sslmode=require";
    let c = load(&with(require, &ca), &[]).expect("valid");
    match &c.store.backend {
        StoreBackend::Postgres { tls_ca_pem, .. } => {
            assert_eq!(tls_ca_pem.as_deref(), Some(TEST_CA_PEM.as_bytes()));
        }
        other => panic!("expected postgres, got {other:?}"),
    }
    // Without sslmode=require the file would be ignored: an error says so.
    let err = load(&with("postgres://u:p@db.internal/app", &ca), &[]).expect_err("no TLS");
    assert_eq!(keys(&err), ["store.tls_ca_file"]);
    assert!(err.to_string().contains("sslmode=require"), "{err}");
    let err = load(&with(require, &garbage), &[]).expect_err("garbage");
    assert_eq!(keys(&err), ["store.tls_ca_file"]);
    assert!(err.to_string().contains("no PEM certificate"), "{err}");
    let err = load(&with(require, &dir.path().join("missing.pem")), &[]).expect_err("missing");
    assert_eq!(keys(&err), ["store.tls_ca_file"]);
    // sled has no use for it.
    let sled = format!(
        "{}\n[store]\npath = \"x\"\ntls_ca_file = \"{}\"\n",
        minimal(),
        ca.display()
    );
    let err = load(&sled, &[]).expect_err("sled");
    assert_eq!(keys(&err), ["store.tls_ca_file"]);
}

const TEST_CA_PEM: &str = concat!(
    "-----BEGIN CERTIFICATE-----\n",
    "MIIBojCCAUegAwIBAgIUHmdBCVVCiIATY+r5xImKiqsgrucwCgYIKoZIzj0EAwIw\n",
    "JTEjMCEGA1UEAwwacHJvZmlsZWdhdGUgY29uZmlnIHRlc3QgQ0EwIBcNMjYxMTI2\n",
    "MTQzODM3WhgPMjEyNjExMDIxNDM4MzdaMCUxIzAhBgNVBAMMGnByb2ZpbGVnYXRl\n",
    "IGNvbmZpZyB0ZXN0IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEl7imTbiT\n",
    "D9BzmoO34v9zFYiLoEW/RTnzv1Sk1k9cD5KVNuR3xqVnI87GKbefU3Nfp2wL9Hg7\n",
    "nUzsKZ6b2eHThaNTMFEwHQYDVR0OBBYEFE3RZvRusIvvaorMkWm6iuNUxKBxMB8G\n",
    "A1UdIwQYMBaAFE3RZvRusIvvaorMkWm6iuNUxKBxMA8GA1UdEwEB/wQFMAMBAf8w\n",
    "CgYIKoZIzj0EAwIDSQAwRgIhANvJX0nDOmVgOgDcwCuumsGZwtgyy1p1Yq88cyc7\n",
    "wavvAiEAqVk1z9Sv8hUPYAibWaU+7+bhQjrHXcT9ck/tbx791Ik=\n",
    "-----END CERTIFICATE-----\n",
);

#[test]
fn store_cache_sizes_take_units_and_are_bounded() {
    let with = |lines: &str| format!("{}\n[store]\n{lines}\n", minimal());
    let sled_cache = |c: &Config| match c.store.backend {
        StoreBackend::Sled { cache_size, .. } => cache_size,
        ref other => panic!("expected sled, got {other:?}"),
    };
    for (raw, bytes) in [
        ("\"16MiB\"", 16 << 20),
        ("\"1536 KiB\"", 1536 << 10),
        ("\"2GiB\"", 2 << 30),
        ("\"3145728\"", 3 << 20),
        ("1048576", 1 << 20),
    ] {
        let c = load(&with(&format!("cache_size = {raw}")), &[]).expect(raw);
        assert_eq!(sled_cache(&c), bytes, "{raw}");
    }
    let c = load(&with("profile_cache_users = 0"), &[]).expect("cache off");
    assert_eq!(c.store.profile_cache_users, 0);

    let env = [
        ("PROFILEGATE_STORE_CACHE_SIZE", "8MiB"),
        ("PROFILEGATE_STORE_PROFILE_CACHE_USERS", "2500"),
    ];
    let c = load(&minimal(), &env).expect("from the environment");
    assert_eq!(sled_cache(&c), 8 << 20);
    assert_eq!(c.store.profile_cache_users, 2500);

    for (line, key) in [
        ("cache_size = \"16MB\"", "store.cache_size"),
        ("cache_size = \"lots\"", "store.cache_size"),
        ("cache_size = \"512KiB\"", "store.cache_size"),
        ("cache_size = -1", "store.cache_size"),
        ("cache_size = \"99999999999999999999\"", "store.cache_size"),
        ("cache_size = true", "store.cache_size"),
        ("profile_cache_users = -1", "store.profile_cache_users"),
        (
            "profile_cache_users = \"many\"",
            "store.profile_cache_users",
        ),
    ] {
        let err = load(&with(line), &[]).expect_err(line);
        assert_eq!(keys(&err), [key], "{line}");
    }
    let err = load(&with("cache_size = \"512KiB\""), &[]).expect_err("too small");
    assert!(
        err.to_string().contains("between 1 MiB and 64 GiB"),
        "{err}"
    );

    let err = load(
        &with(
            "backend = \"postgres\"\nurl = \"postgres://u:p@127.0.0.1/db\"\ncache_size = \"8MiB\"",
        ),
        &[],
    )
    .expect_err("sled only");
    assert_eq!(keys(&err), ["store.cache_size"]);
}

#[test]
fn theme_defaults_match_the_built_in_pages() {
    let c = load(&minimal(), &[]).expect("valid");
    assert_eq!(c.theme, ThemeConfig::default());
    assert_eq!(
        c.theme.title, None,
        "untitled: the pages take the public URL's host"
    );
    assert_eq!(c.theme.primary_color, "#3451b2");
    assert_eq!(
        (c.theme.logo_url.as_deref(), c.theme.custom_css.as_deref()),
        (None, None)
    );
}

#[test]
fn theme_values_are_held_to_shapes_safe_in_html_and_css() {
    let text = format!(
        "{}\n[theme]\ntitle = \"Acme <Sign-in>\"\nlogo_url = \"/static/logo.svg\"\n\
         primary_color = \"RebeccaPurple\"\ncustom_css = \"body {{ margin: 0 }}\"\n",
        minimal()
    );
    let c = load(&text, &[]).expect("valid");
    assert_eq!(c.theme.title.as_deref(), Some("Acme <Sign-in>"));
    assert_eq!(c.theme.logo_url.as_deref(), Some("/static/logo.svg"));
    assert_eq!(c.theme.custom_css.as_deref(), Some("body { margin: 0 }"));

    for color in ["#abc", "#A1B2C3", "teal"] {
        let text = format!("{}\n[theme]\nprimary_color = {color:?}\n", minimal());
        load(&text, &[]).expect(color);
    }
    for color in ["red;}", "#12345", "#ggg", "url(x)", "", "rgb(0,0,0)"] {
        let text = format!("{}\n[theme]\nprimary_color = {color:?}\n", minimal());
        let err = load(&text, &[]).expect_err(color);
        assert_eq!(keys(&err), ["theme.primary_color"], "{color}");
    }
    let big_data_logo = format!("data:image/png;base64,{}", "A".repeat(32 * 1024));
    for logo in [
        "https://cdn.example.com/logo.png",
        "/logo.png",
        "data:image/png;base64,iVBORw0KGgo=",
        "data:image/svg+xml;base64,PHN2Zy8+",
    ] {
        let text = format!("{}\n[theme]\nlogo_url = {logo:?}\n", minimal());
        load(&text, &[]).expect(logo);
    }
    for logo in [
        "javascript:alert(1)",
        "//evil.example/x.png",
        "logo.png",
        // The pages' CSP (img-src 'self' https: data:) would block it.
        "http://x/l.png",
        "data:text/html;base64,PHNjcmlwdD4=",
        "data:image/png,raw",
        "data:image/png;base64,",
        "data:image/png;base64,AA==A",
        "data:image/png;base64,AA\"A",
        "data:image/svg+xml;base64,PHN2Zy8+)",
        "data:image/svg+xml;utf8,<svg/>",
        big_data_logo.as_str(),
        "/a b.png",
        "/x.png\")",
    ] {
        let text = format!("{}\n[theme]\nlogo_url = {logo:?}\n", minimal());
        let err = load(&text, &[]).expect_err(logo);
        assert_eq!(keys(&err), ["theme.logo_url"], "{logo}");
    }
    let text = format!("{}\n[theme]\ntitle = \" \"\n", minimal());
    assert_eq!(keys(&load(&text, &[]).expect_err("empty")), ["theme.title"]);
}

#[test]
fn custom_css_cannot_close_its_style_element() {
    let text = format!(
        "{}\n[theme]\ncustom_css = \"a{{}}</style><script>alert(1)</script>\"\n",
        minimal()
    );
    let err = load(&text, &[]).expect_err("invalid");
    assert_eq!(
        err.to_string(),
        "theme.custom_css: must not contain \"</\": the CSS is inlined in a <style> element, \
         which it would close"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let css = dir.path().join("theme.css");
    std::fs::write(&css, ".card { border-radius: 4px }\n").expect("write");
    let text = format!(
        "{}\n[theme]\ncustom_css_file = {:?}\n",
        minimal(),
        css.display().to_string()
    );
    let c = load(&text, &[]).expect("valid");
    assert_eq!(
        c.theme.custom_css.as_deref(),
        Some(".card { border-radius: 4px }")
    );

    std::fs::write(&css, "p{}</STYLE>").expect("write");
    assert_eq!(
        keys(&load(&text, &[]).expect_err("</")),
        ["theme.custom_css_file"]
    );
    std::fs::write(&css, "a".repeat(64 * 1024 + 1)).expect("write");
    let err = load(&text, &[]).expect_err("too big");
    assert_eq!(keys(&err), ["theme.custom_css_file"]);
    assert!(err.to_string().contains("at most 65536"), "{err}");

    let both = format!(
        "{}\n[theme]\ncustom_css = \"a{{}}\"\ncustom_css_file = \"x.css\"\n",
        minimal()
    );
    assert_eq!(
        keys(&load(&both, &[]).expect_err("both")),
        ["theme.custom_css"]
    );
}

const TEST_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgTESTKEYMATERIAL\n-----END PRIVATE KEY-----\n";

#[test]
fn upstream_jwt_key_is_read_at_load_and_stays_redacted() {
    let c = load(&minimal(), &[]).expect("valid");
    assert!(c.upstream.jwt_key_pem.is_none());
    assert_eq!(c.upstream.jwt_lifetime, Duration::from_secs(300));

    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("jwt.pem");
    std::fs::write(&key, TEST_PEM).expect("write");
    let text = minimal().replace(
        "url = \"http://127.0.0.1:3000\"",
        &format!(
            "url = \"http://127.0.0.1:3000\"\njwt_key_file = {:?}\njwt_lifetime = \"1m\"",
            key.display().to_string()
        ),
    );
    let c = load(&text, &[]).expect("valid");
    let pem = c.upstream.jwt_key_pem.as_ref().expect("key");
    assert!(pem.expose().starts_with("-----BEGIN PRIVATE KEY-----"));
    assert_eq!(c.upstream.jwt_lifetime, Duration::from_secs(60));
    let debug = format!("{c:?}");
    assert!(!debug.contains("TESTKEYMATERIAL"), "{debug}");

    std::fs::write(
        &key,
        "-----BEGIN EC PRIVATE KEY-----\nxx\n-----END EC PRIVATE KEY-----\n",
    )
    .expect("write");
    let err = load(&text, &[]).expect_err("SEC1 is not PKCS#8");
    assert_eq!(keys(&err), ["upstream.jwt_key_file"]);
    assert!(err.to_string().contains("openssl pkcs8 -topk8"), "{err}");
    assert!(!err.to_string().contains("xx"), "{err}");

    for lifetime in ["10s", "2h"] {
        let env = [("PROFILEGATE_UPSTREAM_JWT_LIFETIME", lifetime)];
        let err = load(&minimal(), &env).expect_err(lifetime);
        assert_eq!(
            keys(&err),
            ["upstream.jwt_lifetime (from PROFILEGATE_UPSTREAM_JWT_LIFETIME)"]
        );
    }
    let missing = minimal().replace(
        "url = \"http://127.0.0.1:3000\"",
        "url = \"http://127.0.0.1:3000\"\njwt_key_file = \"/does/not/exist.pem\"",
    );
    assert_eq!(
        keys(&load(&missing, &[]).expect_err("missing")),
        ["upstream.jwt_key_file"]
    );
}

#[test]
fn theme_extras_are_read_and_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("error.html"), "{% extends \"base.html\" %}").expect("write");
    let text = format!(
        "{}\n[theme]\nbackground = \"#101820\"\nfont = '\"Inter\", sans-serif'\ntemplates_dir = {:?}\n[[theme.footer_links]]\nlabel = \"Privacy\"\nurl = \"https://acme.example/privacy\"\n",
        minimal(),
        dir.path().display().to_string()
    );
    let c = load(&text, &[]).expect("valid");
    assert_eq!(c.theme.background, "#101820");
    assert_eq!(c.theme.font.as_deref(), Some("\"Inter\", sans-serif"));
    assert_eq!(c.theme.footer_links.len(), 1);
    assert_eq!(c.theme.templates.len(), 1);
    assert_eq!(c.theme.templates[0].0, "error.html");

    std::fs::write(dir.path().join("eror.html"), "x").expect("write");
    let bad = format!(
        "{}\n[theme]\nbackground = \"red;}}\"\nfont = \"x; }} body {{ display: none\"\ntemplates_dir = {:?}\n[[theme.footer_links]]\nlabel = \"x\"\nurl = \"javascript:alert(1)\"\n",
        minimal(),
        dir.path().display().to_string()
    );
    let err = load(&bad, &[]).expect_err("invalid");
    let k = keys(&err);
    for expected in [
        "theme.background",
        "theme.font",
        "theme.templates_dir",
        "theme.footer_links[0].url",
    ] {
        assert!(k.contains(&expected), "missing {expected} in {k:?}");
    }
}

/// `minimal()` with `[oidc]`'s issuer and secret lines replaced by `oidc`.
fn with_oidc(oidc: &str) -> String {
    minimal()
        .replace(
            "issuer = \"https://idp.example.com/realms/acme\"\nclient_id = \"profilegate\"\nclient_secret = \"change-me\"\n",
            &format!("client_id = \"profilegate\"\n{oidc}\n"),
        )
}

#[test]
fn the_issuer_is_kept_exactly_as_written() {
    for issuer in [
        "https://x",
        "https://x/",
        "https://idp.example.com/realms/acme",
        "https://idp.example.com/realms/acme/",
    ] {
        let text = with_oidc(&format!("issuer = \"{issuer}\"\nclient_secret = \"s\""));
        let c = load(&text, &[]).expect("valid");
        assert_eq!(c.oidc.issuer, issuer, "no slash added or removed");
    }
    for (issuer, why) in [
        ("https://x/?tenant=1", "query"),
        ("https://x/#top", "fragment"),
        (" https://x", "spaces"),
        ("ftp://x", "http:// or https://"),
    ] {
        let text = with_oidc(&format!("issuer = \"{issuer}\"\nclient_secret = \"s\""));
        let err = load(&text, &[]).expect_err(issuer);
        assert_eq!(keys(&err), ["oidc.issuer"], "{issuer}");
        assert!(
            err.0[0].message.contains(why),
            "{issuer}: {}",
            err.0[0].message
        );
    }
}

#[test]
fn client_authentication_keys_are_checked_together() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("client.pem");
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n",
    )
    .expect("key file");
    let key = key.display().to_string();
    let issuer = "issuer = \"https://x/\"";
    // Defaults: no method (discovery decides), a secret.
    let c = load(&with_oidc(&format!("{issuer}\nclient_secret = \"s\"")), &[]).expect("valid");
    assert_eq!(c.oidc.token_endpoint_auth, None);
    for (method, want) in [
        ("client_secret_basic", TokenEndpointAuth::ClientSecretBasic),
        ("client_secret_post", TokenEndpointAuth::ClientSecretPost),
    ] {
        let text = with_oidc(&format!(
            "{issuer}\nclient_secret = \"s\"\ntoken_endpoint_auth = \"{method}\""
        ));
        assert_eq!(
            load(&text, &[]).expect(method).oidc.token_endpoint_auth,
            Some(want)
        );
    }
    // private_key_jwt: a key file and no secret.
    let text = with_oidc(&format!(
        "{issuer}\ntoken_endpoint_auth = \"private_key_jwt\"\nclient_key_file = {key:?}\nclient_key_id = \"k1\""
    ));
    let c = load(&text, &[]).expect("private_key_jwt");
    assert!(c.oidc.client_secret.is_none() && c.oidc.client_key_pem.is_some());
    assert_eq!(c.oidc.client_key_id.as_deref(), Some("k1"));

    for (oidc, key_named) in [
        (
            format!("{issuer}\nclient_secret = \"s\"\ntoken_endpoint_auth = \"client_secret_jwt\""),
            "oidc.token_endpoint_auth",
        ),
        (
            format!("{issuer}\ntoken_endpoint_auth = \"private_key_jwt\""),
            "oidc.client_key_file",
        ),
        (
            format!("{issuer}\nclient_secret = \"s\"\nclient_key_file = {key:?}"),
            "oidc.client_key_file",
        ),
        (
            format!("{issuer}\ntoken_endpoint_auth = \"client_secret_post\""),
            "oidc.client_secret",
        ),
        (
            format!(
                "{issuer}\ntoken_endpoint_auth = \"private_key_jwt\"\nclient_key = \"not a key\""
            ),
            "oidc.client_key",
        ),
    ] {
        let err = load(&with_oidc(&oidc), &[]).expect_err(&oidc);
        assert!(keys(&err).contains(&key_named), "{oidc}: {:?}", keys(&err));
    }
}

#[test]
fn header_limits_default_to_16_and_64_kib_take_units_and_are_bounded() {
    let c = load(&minimal(), &[]).expect("valid");
    assert_eq!(c.server.max_header_bytes, 16 * 1024);
    assert_eq!(c.server.max_request_head_bytes, 64 * 1024);

    let with = |lines: &str| format!("[server]\n{lines}\n{}", minimal());
    let c = load(
        &with("max_header_bytes = \"8KiB\"\nmax_request_head_bytes = 32768"),
        &[],
    )
    .expect("valid");
    assert_eq!(c.server.max_header_bytes, 8 * 1024);
    assert_eq!(c.server.max_request_head_bytes, 32 * 1024);
    let env = [
        ("PROFILEGATE_SERVER_MAX_HEADER_BYTES", "32KiB"),
        ("PROFILEGATE_SERVER_MAX_REQUEST_HEAD_BYTES", "1MiB"),
    ];
    let c = load(&minimal(), &env).expect("from the environment");
    assert_eq!(c.server.max_header_bytes, 32 * 1024);
    assert_eq!(c.server.max_request_head_bytes, 1 << 20);

    for (lines, key, says) in [
        (
            "max_header_bytes = 512",
            "server.max_header_bytes",
            "between 1 KiB and 1 MiB",
        ),
        (
            "max_header_bytes = \"2MiB\"",
            "server.max_header_bytes",
            "between 1 KiB and 1 MiB",
        ),
        (
            "max_header_bytes = \"16KB\"",
            "server.max_header_bytes",
            "not a size",
        ),
        (
            "max_request_head_bytes = 4096",
            "server.max_request_head_bytes",
            "between 8 KiB and 1 MiB",
        ),
        (
            "max_request_head_bytes = \"2MiB\"",
            "server.max_request_head_bytes",
            "between 8 KiB and 1 MiB",
        ),
        (
            "max_header_bytes = \"128KiB\"",
            "server.max_header_bytes",
            "must not exceed server.max_request_head_bytes",
        ),
    ] {
        let err = load(&with(lines), &[]).expect_err(lines);
        assert_eq!(keys(&err), [key], "{lines}");
        assert!(err.to_string().contains(says), "{lines}: {err}");
    }
}

#[test]
fn admin_tokens_come_from_a_file_of_named_lines_and_are_off_by_default() {
    assert!(!load(&minimal(), &[]).expect("valid").admin.enabled());
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("admin-tokens");
    let long = "t".repeat(32);
    std::fs::write(
        &file,
        format!("# operators\nops:{long}\n\n{}\n", "u".repeat(30)),
    )
    .expect("write");
    let text = format!(
        "{}\n[admin]\ntoken_file = {:?}\n",
        minimal(),
        file.display().to_string()
    );
    let c = load(&text, &[]).expect("valid");
    let names: Vec<&str> = c.admin.tokens.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["ops", "admin"]);
    assert!(
        !format!("{:?}", c.admin).contains(&long),
        "Debug hides tokens"
    );

    std::fs::write(&file, format!("ops:short\nops:{long}\nops:{long}\n")).expect("write");
    let err = load(&text, &[]).expect_err("bad lines");
    let messages: Vec<String> = err.0.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        keys(&err),
        ["admin.token_file", "admin.token_file"],
        "{messages:?}"
    );
    assert!(messages[0].contains("line 1") && messages[0].contains("at least 24"));
    assert!(messages[1].contains("line 3") && messages[1].contains("twice"));
    assert!(
        messages.iter().all(|m| !m.contains(&long)),
        "no token in errors"
    );
}

#[test]
fn refresh_without_offline_access_is_a_warning_not_an_error() {
    let text = format!("{}refresh = true\n", minimal());
    let c = load(&text, &[]).expect("valid");
    assert!(c.session.refresh);
    assert!(
        c.warnings().iter().any(|w| w.contains("offline_access")),
        "{:?}",
        c.warnings()
    );
    let with = text.replace(
        "client_secret = \"change-me\"\n",
        "client_secret = \"change-me\"\nscopes = [\"openid\", \"email\", \"offline_access\"]\n",
    );
    let c = load(&with, &[]).expect("valid");
    assert!(!c.warnings().iter().any(|w| w.contains("offline_access")));
    let off = load(&minimal(), &[]).expect("valid");
    assert!(!off.warnings().iter().any(|w| w.contains("offline_access")));
}

#[test]
fn forward_auth_mode_needs_trusted_proxies_and_not_an_upstream() {
    let auth = |extra: &str| {
        minimal().replace(
            "[upstream]\nurl = \"http://127.0.0.1:3000\"\n",
            &format!("[server]\n{extra}\n"),
        )
    };
    let err = load(&auth("mode = \"forward_auth\""), &[]).expect_err("no trusted proxies");
    assert_eq!(keys(&err), ["server.trusted_proxies"]);
    let c = load(
        &auth("mode = \"forward_auth\"\ntrusted_proxies = [\"127.0.0.1\"]"),
        &[],
    )
    .expect("forward_auth without [upstream]");
    assert_eq!(c.server.mode, ServerMode::ForwardAuth);
    // The profile JWT's audience: the edge's origin, where the application is.
    assert_eq!(c.upstream.url.as_str(), c.server.public_url.url().as_str());
    let err = load(&auth("mode = \"sidecar\""), &[]).expect_err("unknown mode");
    assert!(keys(&err).contains(&"server.mode"), "{:?}", keys(&err));
    assert!(keys(&err).contains(&"upstream.url"), "proxy mode needs it");
    assert_eq!(
        load(&minimal(), &[]).expect("valid").server.mode,
        ServerMode::Proxy
    );
}
