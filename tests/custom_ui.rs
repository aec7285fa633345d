//! End-to-end: custom UI mode against the real OP and the example custom UI app
//! (`examples/custom-ui/server.js`): the round trip, and every way a token can be refused.

mod support;

use std::process::{Child, ChildStdin, Command};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use profilegate::jwt::SigningKey;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::headers::jws_claims;
use support::questions::*;
use support::*;

/// The example custom UI app, stopped when dropped.
struct CustomUi {
    child: Child,
    _stdin: ChildStdin,
    port: u16,
}

impl CustomUi {
    fn start(profilegate_origin: &str, port: u16) -> CustomUi {
        let started = child::start_with_ready_line(
            Command::new("node")
                .arg(repo().join("examples/custom-ui/server.js"))
                .arg(port.to_string())
                .arg(profilegate_origin),
            "the custom UI app (examples/custom-ui/server.js)",
            child::READY_LINE_LIMIT,
        );
        let line = started.ready.clone();
        let Some(port) = serde_json::from_str::<Value>(&line)
            .ok()
            .and_then(|ready| u16::try_from(ready["port"].as_u64()?).ok())
        else {
            started.fail(&format!(
                "the custom UI app printed a bad ready line {line:?}"
            ));
        };
        CustomUi {
            child: started.child,
            _stdin: started.stdin,
            port,
        }
    }
}

impl Drop for CustomUi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Setup {
    env: TestEnv,
    ui: CustomUi,
    key: SigningKey,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    // The proxy signs with a key the test knows, so it can forge tokens for the attack cases.
    let dir = tempfile::tempdir().expect("tempdir");
    let der = SigningKey::generate_pkcs8().expect("key");
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(&der)
    );
    let key_path = dir.path().join("jwt.pem");
    std::fs::write(&key_path, pem).expect("write key");
    let ui_port = free_port();
    let sections = profiling(
        &[
            "questions_per_login = 2",
            r#"ui = "redirect""#,
            &format!(r#"redirect_url = "http://127.0.0.1:{ui_port}/""#),
        ],
        &[
            company(),
            Question::new("role", "Your role?", "select")
                .with("options", r#"["Engineering", "Sales"]"#),
        ],
    );
    let env = start_env(&sections, &key_path).await;
    let ui = CustomUi::start(&env.proxy.origin, ui_port);
    Setup {
        env,
        ui,
        key: SigningKey::from_pkcs8(&der).expect("key"),
        _dir: dir,
    }
}

async fn start_env(sections: &str, key_path: &std::path::Path) -> TestEnv {
    // jwt_key_file belongs to the harness's [upstream] table.
    let jwt_key = format!("jwt_key_file = {:?}", key_path.display().to_string());
    TestEnv::start_upstream_full("", &jwt_key, sections, json!({})).await
}

fn form_value(html: &str, name: &str) -> String {
    html.split(&format!("name=\"{name}\" value=\""))
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no {name} in:\n{html}"))
        .replace("&amp;", "&")
}

fn claims_of(url: &str) -> Value {
    jws_claims(&query(url)["token"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_custom_ui_round_trip_and_every_bad_token_is_refused() {
    let Setup { env, ui, key, _dir } = setup().await;
    let browser = env.browser();
    let cb = browser.login(&env.proxy.url("/reports"), "alice").await;
    let to_ui = location(&cb);
    let ui_origin = format!("http://127.0.0.1:{}", ui.port);
    assert!(
        to_ui.starts_with(&format!("{ui_origin}/?token=")),
        "{to_ui}"
    );
    let claims = claims_of(&to_ui);
    assert_eq!(claims["typ"], "profilegate/questions");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], ui_origin);
    assert_eq!(claims["iss"], env.proxy.origin);
    assert_eq!(claims["questions"][0]["id"], "company");
    assert_eq!(
        claims["questions"][1]["options"],
        json!(["Engineering", "Sales"])
    );
    assert!(claims["exp"].as_u64() > claims["iat"].as_u64());
    assert_eq!(env.upstream.count(), 0);

    // The custom UI verifies the token and renders a form posting back to profilegate.
    let page = browser
        .client
        .get(&to_ui)
        .send()
        .await
        .expect("ui")
        .text()
        .await
        .expect("page");
    assert!(page.contains("Which company do you work for?"), "{page}");
    let continue_url = env.proxy.url("/.profilegate/continue");
    assert!(page.contains(&format!("action=\"{continue_url}\"")));
    let token = form_value(&page, "token");
    let state = form_value(&page, "state");

    // Invalid: back to the custom UI with the errors and the values.
    let resp = browser
        .client
        .post(&continue_url)
        .form(&[
            ("token", token.as_str()),
            ("state", &state),
            ("company", "A"),
            ("role", "Sales"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let back = location(&resp);
    assert!(back.starts_with(&ui_origin), "{back}");
    let again = claims_of(&back);
    assert!(
        again["errors"]["company"]
            .as_str()
            .unwrap_or("")
            .contains("at least 2"),
        "{again}"
    );
    assert_eq!(again["values"]["company"], json!(["A"]));
    assert_ne!(again["state"], claims["state"], "a fresh state");
    let page = browser
        .client
        .get(&back)
        .send()
        .await
        .expect("ui")
        .text()
        .await
        .expect("page");
    assert!(page.contains("at least 2"), "the custom UI shows the error");

    // A replay of the consumed token is refused.
    let replay = browser
        .client
        .post(&continue_url)
        .form(&[
            ("token", token.as_str()),
            ("state", &state),
            ("company", "Acme"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(
        replay.status(),
        StatusCode::BAD_REQUEST,
        "a replayed state is refused"
    );

    // Valid: stored, then back on our origin, then to the app.
    let token = form_value(&page, "token");
    let state = form_value(&page, "state");
    let resp = browser
        .client
        .post(&continue_url)
        .form(&[
            ("token", token.as_str()),
            ("state", &state),
            ("company", "Acme"),
            ("skip", "role"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&resp),
        env.proxy.url("/.profilegate/continue?rd=%2Freports")
    );
    let resp = browser.navigate(&location(&resp)).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), env.proxy.url("/reports"));
    assert_eq!(
        browser.navigate(&env.proxy.url("/reports")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        env.upstream.last().header("x-profile-company"),
        Some("Acme")
    );

    // Forged tokens, each refused with a 400 page and nothing stored.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    let base = json!({
        "typ": "profilegate/questions", "iss": env.proxy.origin, "aud": ui_origin, "sub": "alice",
        "login": 1, "questions": [{"id": "company"}], "state": "s1",
        "continue_url": continue_url, "rd": "/", "iat": now, "exp": now + 300,
    });
    let with = |k: &str, v: Value, state: &str| {
        let mut c = base.clone();
        c[k] = v;
        c["state"] = json!(state);
        (key.sign(&c).expect("sign"), state.to_owned())
    };
    let mut cases = vec![
        ("expired", with("exp", json!(now - 1), "s-exp")),
        (
            "wrong audience",
            with("aud", json!("https://evil.example"), "s-aud"),
        ),
        (
            "wrong issuer",
            with("iss", json!("https://evil.example"), "s-iss"),
        ),
        ("wrong type", with("typ", json!("profile"), "s-typ")),
    ];
    let (good, _) = with("rd", json!("/"), "s-good");
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let mut payload = jws_claims(&good);
    payload["sub"] = json!("mallory");
    parts[1] = URL_SAFE_NO_PAD.encode(payload.to_string());
    cases.push(("tampered", (parts.join("."), "s-good".to_owned())));
    let other = SigningKey::from_pkcs8(&SigningKey::generate_pkcs8().expect("gen")).expect("key");
    let mut forged = base.clone();
    forged["state"] = json!("s-sig");
    cases.push((
        "bad signature",
        (other.sign(&forged).expect("sign"), "s-sig".to_owned()),
    ));
    cases.push((
        "state mismatch",
        (with("rd", json!("/"), "s-real").0, "s-other".to_owned()),
    ));
    for (name, (token, state)) in cases {
        let resp = http_client()
            .post(&continue_url)
            .header("accept", "text/html")
            .form(&[
                ("token", token.as_str()),
                ("state", &state),
                ("company", "Evil Corp"),
            ])
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{name}");
        assert!(
            resp.text()
                .await
                .expect("page")
                .contains("This form has expired"),
            "{name}"
        );
    }
    // The well-formed control token works once (so the cases above could have passed).
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(&continue_url)
        .form(&[
            ("token", good.as_str()),
            ("state", "s-good"),
            ("company", "Control Ltd"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    browser.navigate(&env.proxy.url("/x")).await;
    assert_eq!(
        env.upstream.last().header("x-profile-company"),
        Some("Control Ltd")
    );
}
