//! The `profilegate` command line: every shipped configuration passes `check`; a broken one is
//! explained key by key, with a hint for a misspelt key or a URL without scheme; what `run`
//! refuses for its configuration (the example secret), `check` refuses too; text logs have no
//! colour when they do not go to a terminal.

mod support;

use std::process::Command;

use support::child::{output_within, COMMAND_LIMIT};
use support::{binary, repo};

/// Runs profilegate to its end, for at most [`COMMAND_LIMIT`].
fn run(cmd: &mut Command) -> std::process::Output {
    output_within(cmd, "profilegate", COMMAND_LIMIT).expect("profilegate runs")
}

fn check(config: &std::path::Path, env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(binary());
    cmd.arg("check").arg("--config").arg(config);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

#[test]
fn version_names_the_package_version_and_the_git_commit() {
    let out = run(Command::new(binary()).arg("--version"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let line = stdout.trim();
    let expected_start = format!("profilegate {} (commit ", env!("CARGO_PKG_VERSION"));
    let commit = line
        .strip_prefix(&expected_start)
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("unexpected --version output: {line:?}"));
    // Built in a git checkout (the test command's fresh clone): the commit of this tree.
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(repo())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    match head {
        Some(head) => assert_eq!(commit, head, "{line:?}"),
        None => assert_eq!(commit, "unknown", "{line:?}"),
    }
}

#[test]
fn the_shipped_config_passes_check_once_the_operator_supplies_a_session_secret() {
    let out = check(
        &repo().join("config.toml"),
        &[("PROFILEGATE_SESSION_SECRET", support::SESSION_SECRET)],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("configuration OK"), "{stdout}");
}

#[test]
fn check_refuses_the_shipped_example_session_secret_as_run_does() {
    // `run` refuses the placeholder, so `check` must too: an operator who saw "OK" would
    // otherwise only learn at start-up.
    let out = check(&repo().join("config.toml"), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("session.secret: is the example placeholder"),
        "{stderr}"
    );
    assert!(stderr.contains("openssl rand -base64 32"), "{stderr}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("configuration OK"),
        "{stderr}"
    );
}

#[test]
fn every_example_config_passes_check() {
    let mut found = 0;
    let mut stack = vec![repo().join("examples")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("examples dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "toml") {
                found += 1;
                // Secrets are mounted files in production; the environment stands in for them here.
                let out = check(
                    &path,
                    &[
                        ("PROFILEGATE_OIDC_CLIENT_SECRET", "x"),
                        ("PROFILEGATE_SESSION_SECRET", support::SESSION_SECRET),
                    ],
                );
                assert!(
                    out.status.success(),
                    "{}: {}",
                    path.display(),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
    assert!(found > 0, "no example configuration found");
}

#[test]
fn check_reports_every_error_with_its_key_and_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = \"x\"\ncolour = 1\n[oidc]\nissuer = \"ftp://x\"\nclient_secret = \"top-secret-value\"\n[session]\nsecret = \"short\"\n",
    )
    .expect("write");
    let out = check(&path, &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for key in [
        "server.listen",
        "server.colour: unknown key",
        "upstream.url: is required",
        "oidc.issuer",
        "oidc.client_id: is required",
        "session.secret",
    ] {
        assert!(stderr.contains(key), "missing {key:?} in:\n{stderr}");
    }
    assert!(
        !stderr.contains("top-secret-value"),
        "a secret leaked:\n{stderr}"
    );
}

#[test]
fn environment_overrides_apply_to_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("env.toml");
    std::fs::write(
        &path,
        "[upstream]\nurl = \"http://127.0.0.1:3000\"\n[oidc]\nissuer = \"https://idp.example.com\"\nclient_id = \"c\"\n",
    )
    .expect("write");
    let out = check(&path, &[]);
    assert_eq!(out.status.code(), Some(2));
    let out = check(
        &path,
        &[
            ("PROFILEGATE_OIDC_CLIENT_SECRET", "from-env"),
            ("PROFILEGATE_SESSION_SECRET", support::SESSION_SECRET),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = check(&path, &[("PROFILEGATE_SERVER_THREADS", "lots")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("server.threads (from PROFILEGATE_SERVER_THREADS)"),
        "{stderr}"
    );
}

#[test]
fn run_refuses_the_example_session_secret() {
    let out = run(Command::new(binary())
        .arg("--config")
        .arg(repo().join("config.toml"))
        .env("PROFILEGATE_SERVER_LISTEN", "127.0.0.1:0")
        .env("PROFILEGATE_SERVER_ADMIN_LISTEN", "127.0.0.1:1"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("example placeholder"), "{stderr}");
}

#[test]
fn a_taken_port_is_reported_clearly() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let out = run(Command::new(binary())
        .arg("--config")
        .arg(repo().join("config.toml"))
        .env("PROFILEGATE_SESSION_SECRET", support::SESSION_SECRET)
        .env("PROFILEGATE_SERVER_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "PROFILEGATE_SERVER_PUBLIC_URL",
            format!("http://127.0.0.1:{port}"),
        )
        .env(
            "PROFILEGATE_SERVER_ADMIN_LISTEN",
            format!("127.0.0.1:{}", support::free_port()),
        ));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot listen on") && stderr.contains("server.listen"),
        "{stderr}"
    );
}

#[test]
fn a_broken_template_override_fails_check_not_a_user() {
    let dir = tempfile::tempdir().expect("tempdir");
    let templates = dir.path().join("templates");
    std::fs::create_dir(&templates).expect("mkdir");
    std::fs::write(templates.join("question.html"), "{% if %}broken").expect("write");
    let config = dir.path().join("config.toml");
    let base = std::fs::read_to_string(repo().join("config.toml")).expect("config");
    assert!(
        base.contains("\n[theme]\n"),
        "the shipped config has a [theme] table"
    );
    let text = base.replace("\n[theme]\n", "\n[theme]\ntemplates_dir = \"templates\"\n");
    std::fs::write(&config, text).expect("write");
    let out = check(
        &config,
        &[("PROFILEGATE_SESSION_SECRET", support::SESSION_SECRET)],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("question.html"), "{stderr}");
}

#[test]
fn a_misspelt_key_or_section_gets_a_did_you_mean() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("typo.toml");
    std::fs::write(
        &path,
        "[upstream]\nurl = \"http://127.0.0.1:3000\"\n[oidc]\nissuer = \"https://idp.example.com\"\nclient_id = \"c\"\nclient_secert = \"s\"\n[sesion]\nsecret = \"x\"\n",
    )
    .expect("write");
    let out = check(&path, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for expected in [
        "oidc.client_secert: unknown key; did you mean `client_secret`?",
        "sesion: unknown section; did you mean `session`?",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    // From the environment too, named by its variable.
    let out = check(
        &repo().join("examples/minimal/profilegate.toml"),
        &[
            ("PROFILEGATE_OIDC_CLIENT_SECRET", "x"),
            ("PROFILEGATE_SESSION_SECRET", support::SESSION_SECRET),
            ("PROFILEGATE_OIDC_CLIENT_SECRT", "x"),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let expected = "oidc.client_secrt (from PROFILEGATE_OIDC_CLIENT_SECRT): unknown key; did you mean `client_secret`?";
    assert!(
        stderr.contains(expected),
        "missing {expected:?} in:\n{stderr}"
    );
}

#[test]
fn a_url_without_scheme_is_explained_with_the_fix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("scheme.toml");
    std::fs::write(
        &path,
        "[server]\npublic_url = \"localhost:8080\"\n[upstream]\nurl = \"localhost:3000\"\n[oidc]\nissuer = \"idp.example.com/realms/acme\"\nclient_id = \"c\"\nclient_secret = \"s\"\n",
    )
    .expect("write");
    let out = check(
        &path,
        &[("PROFILEGATE_SESSION_SECRET", support::SESSION_SECRET)],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for expected in [
        "server.public_url: the scheme is missing: write http://localhost:8080",
        "upstream.url: the scheme is missing: write http://localhost:3000",
        "oidc.issuer: the scheme is missing: write https://idp.example.com/realms/acme",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}

/// Starts profilegate with `log.format = format` on a taken port, so it logs why it cannot
/// start and exits; returns its stderr (a pipe, not a terminal).
fn start_up_failure_log(format: &str) -> String {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let out = run(Command::new(binary())
        .arg("--config")
        .arg(repo().join("config.toml"))
        // NO_COLOR would hide colour by itself; without it only the terminal test decides.
        .env_remove("NO_COLOR")
        .env("PROFILEGATE_LOG_FORMAT", format)
        .env("PROFILEGATE_SESSION_SECRET", support::SESSION_SECRET)
        .env("PROFILEGATE_SERVER_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "PROFILEGATE_SERVER_PUBLIC_URL",
            format!("http://127.0.0.1:{port}"),
        )
        .env(
            "PROFILEGATE_SERVER_ADMIN_LISTEN",
            format!("127.0.0.1:{}", support::free_port()),
        ));
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn text_logs_to_a_pipe_have_no_colour_codes() {
    let stderr = start_up_failure_log("text");
    assert!(
        stderr.contains("ERROR") && stderr.contains("profilegate could not start"),
        "{stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "escape codes in:\n{stderr:?}");
}

#[test]
fn json_logs_have_no_colour_codes() {
    let stderr = start_up_failure_log("json");
    assert!(
        stderr.contains(r#""message":"profilegate could not start""#),
        "{stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "escape codes in:\n{stderr:?}");
}

#[test]
fn the_readme_minimal_configuration_is_the_example_file_and_passes_check_with_its_two_secret_files()
{
    let file = repo().join("examples/minimal/profilegate.toml");
    let toml = std::fs::read_to_string(&file).expect("examples/minimal/profilegate.toml");
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let minimal = readme
        .split_once("## Minimal configuration\n")
        .map(|(_, rest)| rest)
        .expect("a \"Minimal configuration\" section in the README");
    let block = minimal
        .split_once("```toml\n")
        .and_then(|(_, rest)| rest.split_once("```\n"))
        .map(|(block, _)| block)
        .expect("a toml block in the section");
    assert_eq!(
        block,
        toml,
        "the README's block differs from {}",
        file.display()
    );
    assert!(
        readme.find("## Minimal configuration") < readme.find("## Configuration"),
        "the minimal configuration comes before the full reference"
    );
    // As the README's steps leave it: the file and the two secret files beside it.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("profilegate.toml");
    std::fs::write(&config, &toml).expect("write");
    std::fs::write(dir.path().join("client-secret"), "secret-from-the-op\n").expect("write");
    std::fs::write(
        dir.path().join("session-secret"),
        format!("{}\n", support::SESSION_SECRET),
    )
    .expect("write");
    let out = check(&config, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("upstream    http://localhost:3000/"),
        "{stdout}"
    );
    let lines = toml.lines().filter(|l| !l.trim().is_empty()).count();
    assert!(lines <= 10, "the minimal configuration has {lines} lines");
}
