//! End-to-end in a real browser: Debian's headless Chromium, driven by playwright-core
//! (`tests/browser/flow.mjs`), signs in at the real test OP, answers profilegate's hosted
//! question page (a refused answer, then a valid one) and lands on the app; the echo upstream
//! says what it received. Screenshots of every step go to `target/test-artifacts/browser/`.
//!
//! `TEST_UPDATE_DOCS=1 cargo test --test browser` also refreshes the screenshots in `docs/`
//! (the question page, shown by the README, and the two themes, shown by docs/profiling.md). `TEST_CHROMIUM` points at another Chromium binary. (Not
//! `PROFILEGATE_*`: profilegate reads those as configuration, and the proxy inherits them.)

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use support::questions::*;
use support::*;

/// The `[profiling]` section of every test here: one required text question.
fn questions() -> String {
    profiling(
        &["questions_per_login = 1"],
        &[company()
            .with("help", r#""We use it to set up your workspace.""#)
            .with("placeholder", r#""Acme Inc.""#)
            .with("max_length", "100")],
    )
}

/// The question as flow.mjs checks it.
fn question() -> Value {
    json!({
        "id": "company",
        "label": COMPANY_LABEL,
        "too_short": "A",
        "error": "Enter at least 2 characters.",
        "valid": "Acme Corp",
    })
}

fn artifacts() -> PathBuf {
    repo().join("target/test-artifacts/browser")
}

/// Fails with the fix when the browser or the driver is not installed.
fn require_browser() {
    let chromium = chromium();
    assert!(
        chromium.exists(),
        "Chromium is not installed at {}: run ./tests/run.sh (it installs Debian's `chromium`), \
         or `apt-get install chromium`, or set TEST_CHROMIUM",
        chromium.display()
    );
    assert!(
        repo()
            .join("tests/browser/node_modules/playwright-core")
            .exists(),
        "playwright-core is not installed: run `npm ci` in tests/browser (./tests/run.sh does)"
    );
}

/// Runs flow.mjs with `config`; returns its JSON report, or fails with its message and the
/// proxy's log.
fn run_flow(env: &TestEnv, config: Value) -> Value {
    // flow.mjs stops itself after 120 s; this is the backstop.
    let backstop = Duration::from_secs(180);
    let run = run_browser_script("flow.mjs", &config, backstop);
    let (stdout, stderr) = (&run.stdout, &run.stderr);
    assert!(
        run.succeeded(),
        "the browser flow failed ({}):\n{stderr}\n--- profilegate log ---\n{}",
        run.describe(backstop),
        env.proxy.log()
    );
    let report: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("flow.mjs printed no report ({e}): {stdout:?}\n{stderr}"));
    for shot in report["screenshots"].as_array().into_iter().flatten() {
        eprintln!("screenshot: {}", shot.as_str().unwrap_or_default());
    }
    report
}

fn screenshots(report: &Value) -> Vec<PathBuf> {
    report["screenshots"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(PathBuf::from))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_signs_in_answers_the_hosted_question_and_lands_on_the_app() {
    require_browser();
    let env = TestEnv::start_full(
        "",
        &format!(
            "{}\n[theme]\ntitle = \"Acme Workspace\"\nprimary_color = \"#0b7a75\"\n",
            questions()
        ),
        json!({}),
    )
    .await;
    let start = env.proxy.url("/dashboard?tab=team");
    let config = json!({
        "mode": "flow",
        "start_url": start,
        "login": "alice",
        "question": question(),
        "artifacts": artifacts(),
        "name": "flow",
    });
    let report = tokio::task::block_in_place(|| run_flow(&env, config));

    let shots = screenshots(&report);
    assert_eq!(shots.len(), 7, "one screenshot per step: {shots:?}");
    if std::env::var("TEST_UPDATE_DOCS").is_ok_and(|v| v == "1") {
        // The README's picture of the page (docs/question-page.png): a too-short answer refused (422).
        let shot = shots
            .iter()
            .find(|s| s.ends_with("flow-06-invalid-422.png"))
            .expect("the 422 screenshot was taken");
        std::fs::copy(shot, repo().join("docs/question-page.png")).expect("copy to docs/");
        eprintln!("updated docs/question-page.png");
    }
    for shot in &shots {
        let size = std::fs::metadata(shot).map(|m| m.len()).unwrap_or(0);
        assert!(size > 1000, "{} is missing or empty", shot.display());
    }
    assert_eq!(report["landed"]["url"], start.as_str(), "{report}");

    // What the app received, from the app's side: the request the browser landed on.
    let seen = env
        .upstream
        .requests()
        .into_iter()
        .find(|r| r.target == "/dashboard?tab=team")
        .expect("the upstream saw the page the user first asked for");
    assert_eq!(seen.header("x-forwarded-user"), Some("alice"));
    assert_eq!(seen.header("x-forwarded-email"), Some("alice@example.com"));
    assert_eq!(seen.header("x-profile-company"), Some("Acme Corp"));
    assert!(seen.header("x-profile-jwt").is_some(), "profile JWT sent");
    assert!(
        !seen
            .header("cookie")
            .unwrap_or_default()
            .contains("profilegate"),
        "the proxy's cookies are not forwarded"
    );
    // Nothing reached the app before the answer: only requests after it carry X-Profile-Company.
    for r in env.upstream.requests() {
        assert_eq!(
            r.header("x-profile-company"),
            Some("Acme Corp"),
            "{} reached the upstream without the answer",
            r.target
        );
    }
    // The browser showed the upstream's echo of the same request.
    let shown: Value = serde_json::from_str(report["landed"]["body"].as_str().unwrap_or_default())
        .expect("the app page is the echo upstream's JSON");
    assert_eq!(shown["target"], "/dashboard?tab=team");
}

/// One theme of the hosted page: its `[theme]` section and what flow.mjs must see.
struct Theme {
    name: &'static str,
    toml: String,
    expect: Value,
    /// The screenshot that becomes `docs/<name>.png`: the fresh page or the refused answer.
    docs_shot: &'static str,
}

/// A `data:` URL of an SVG image: a logo that needs no server (the pages' CSP allows `data:`).
fn svg_data_url(svg: &str) -> String {
    use base64::Engine as _;
    format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    )
}

const LIGHT_LOGO: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28" viewBox="0 0 28 28"><rect width="28" height="28" rx="7" fill="#0b7a75"/><path d="M7.5 21 14 6.5 20.5 21h-3.4L14 13.8 10.9 21z" fill="#fff"/></svg>"##;

const DARK_LOGO: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28" viewBox="0 0 28 28"><circle cx="14" cy="14" r="14" fill="#f59e0b"/><rect x="7.5" y="14" width="3.2" height="7" rx="1" fill="#0f172a"/><rect x="12.4" y="8" width="3.2" height="13" rx="1" fill="#0f172a"/><rect x="17.3" y="11" width="3.2" height="10" rx="1" fill="#0f172a"/></svg>"##;

fn themes() -> Vec<Theme> {
    vec![
        Theme {
            name: "theme-light",
            toml: format!(
                r##"
[theme]
title = "Acme Workspace"
primary_color = "#0b7a75"
logo_url = "{}"
"##,
                svg_data_url(LIGHT_LOGO)
            ),
            expect: json!({
                "title": "Acme Workspace",
                "primary_color": "rgb(11, 122, 117)",
                "background": "rgb(244, 245, 247)",
                "font_family": "system-ui, -apple-system, \"Segoe UI\"",
                "logo": true,
            }),
            docs_shot: "theme-light.png",
        },
        Theme {
            name: "theme-dark",
            toml: format!(
                r##"
[theme]
title = "Nightjar Analytics"
primary_color = "#f59e0b"
logo_url = "{}"
custom_css = """{DARK_CSS}"""
"##,
                svg_data_url(DARK_LOGO)
            ),
            expect: json!({
                "title": "Nightjar Analytics",
                "primary_color": "rgb(245, 158, 11)",
                "background": "rgb(15, 23, 42)",
                "logo": true,
            }),
            docs_shot: "theme-dark-422.png",
        },
    ]
}

/// A dark page from `custom_css` alone: colors through the base template's variables.
const DARK_CSS: &str = r#"
:root { --bg: #0f172a; --fg: #e2e8f0; --muted: #94a3b8; --border: #334155; --error: #fca5a5; }
main { background: #1e293b; box-shadow: 0 8px 32px rgba(0,0,0,.45); }
input[type=text] { background: #0f172a; }
.button { color: #1c1917; }
.brand { font-size: 1.05rem; letter-spacing: .02em; }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosted_question_page_takes_the_configured_theme_in_chromium() {
    require_browser();
    let update_docs = std::env::var("TEST_UPDATE_DOCS").is_ok_and(|v| v == "1");
    for theme in themes() {
        let env =
            TestEnv::start_full("", &format!("{}\n{}", questions(), theme.toml), json!({})).await;
        let config = json!({
            "mode": "theme",
            "start_url": env.proxy.url("/dashboard"),
            "login": "alice",
            "question": question(),
            "theme": theme.expect,
            "artifacts": artifacts(),
            "name": theme.name,
        });
        let report = tokio::task::block_in_place(|| run_flow(&env, config));
        let shots = screenshots(&report);
        assert_eq!(shots.len(), 2, "{shots:?}");
        assert_eq!(env.upstream.count(), 0, "the app is not reached");
        if update_docs {
            let shot = shots
                .iter()
                .find(|s| s.ends_with(theme.docs_shot))
                .expect("the docs screenshot was taken");
            let to = Path::new("docs").join(format!("{}.png", theme.name));
            std::fs::copy(shot, repo().join(&to)).expect("copy to docs/");
            eprintln!("updated {}", to.display());
        }
    }
}

/// The question page for a person in a hurry, at a phone's and a laptop's size: the configured
/// font and color, who is signed in and a sign-out that works, "Error —" in the tab title and a
/// red focused field after a 422, a consent question without a repeated title, the card at the
/// top on the phone. Screenshots: `target/test-artifacts/browser/hurry-<W>x<H>-*.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_question_page_serves_a_person_in_a_hurry_on_a_phone_and_a_laptop() {
    require_browser();
    // No title: the pages take the host of public_url. A monospace font no page falls back to.
    let sections = format!(
        r##"{}
[[profiling.questions]]
id = "terms"
label = "I accept the terms."
type = "consent"
required = true

[theme]
primary_color = "#7c3aed"
font = '"DejaVu Sans Mono", monospace'
"##,
        questions().replace("questions_per_login = 1", "questions_per_login = 2")
    );
    let env = TestEnv::start_full("", &sections, json!({})).await;
    let start = env.proxy.url("/dashboard");
    let host = url::Url::parse(&start)
        .expect("proxy URL")
        .host_str()
        .expect("a host")
        .to_owned();
    let config = json!({
        "mode": "hurry",
        "start_url": start,
        "op_issuer": env.op.issuer,
        "question": question(),
        "hurry": {
            "font_family": "\"DejaVu Sans Mono\", monospace",
            "primary_color": "rgb(124, 58, 237)",
            "brand": host,
            "consent_label": "I accept the terms.",
            "viewports": [
                { "width": 390, "height": 844, "login": "alice" },
                { "width": 1280, "height": 800, "login": "bob" },
            ],
        },
        "artifacts": artifacts(),
        "name": "hurry",
    });
    let report = tokio::task::block_in_place(|| run_flow(&env, config));
    assert_eq!(
        report["landed"]["viewports"],
        json!(["hurry-390x844", "hurry-1280x800"]),
        "{report}"
    );
    let shots = screenshots(&report);
    assert_eq!(shots.len(), 8, "four screenshots per viewport: {shots:?}");
    for shot in &shots {
        let size = std::fs::metadata(shot).map(|m| m.len()).unwrap_or(0);
        assert!(size > 1000, "{} is missing or empty", shot.display());
    }
    assert_eq!(
        env.upstream.count(),
        0,
        "the app is not reached: consent was never given"
    );
}
