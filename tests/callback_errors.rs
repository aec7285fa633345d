//! OP errors on the callback: `access_denied`, `consent_required`, `login_required` and
//! `interaction_required` show "Sign-in cancelled" with a way to try again; other codes the
//! generic page. The OP's `error_description` goes to the log only, never into a page.

mod support;

use reqwest::StatusCode;
use support::*;

/// Starts a login at `path` in `browser`; returns the state the proxy sent to the OP.
async fn start_login(env: &TestEnv, browser: &Browser, path: &str) -> (String, String) {
    let first = browser.navigate(&env.proxy.url(path)).await;
    assert_eq!(first.status(), StatusCode::FOUND);
    let op_url = location(&first);
    (query(&op_url)["state"].clone(), op_url)
}

/// The `href` of the page's button, decoded as a browser would.
fn button_href(html: &str) -> String {
    html.split("class=\"button\" href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no button in:\n{html}"))
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborting_at_the_op_shows_sign_in_cancelled_with_a_way_to_try_again() {
    let env = TestEnv::start().await;
    let browser = env.browser();
    let (_, op_url) = start_login(&env, &browser, "/reports?year=2026").await;

    // The OP's own "abort" link (oidc-provider's dev interactions): it answers access_denied.
    let mut next = op_url;
    let callback = loop {
        let resp = browser.client.get(&next).send().await.expect("OP");
        assert!(resp.status().is_redirection(), "{next}: {}", resp.status());
        let to = absolute(&next, &location(&resp));
        if to.contains("/.profilegate/callback") {
            break to;
        }
        next = match to.split_once("/interaction/") {
            Some((base, uid)) if !uid.contains('/') => format!("{base}/interaction/{uid}/abort"),
            _ => to,
        };
    };
    assert_eq!(query(&callback)["error"], "access_denied", "{callback}");

    let resp = browser
        .client
        .get(&callback)
        .header("accept", "text/html")
        .header("accept-language", "de-CH, de;q=0.9, en;q=0.5")
        .send()
        .await
        .expect("callback");
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let cookies = set_cookies(&resp);
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("profilegate_session_login_") && c.contains("Max-Age=0")),
        "the login is over: {cookies:?}"
    );
    assert!(
        !cookies
            .iter()
            .any(|c| c.starts_with("profilegate_session=") && !c.contains("Max-Age=0")),
        "no session: {cookies:?}"
    );
    let page = resp.text().await.expect("page");
    assert!(page.contains("<html lang=\"de\">"), "{page}");
    assert!(page.contains("Anmeldung abgebrochen"), "{page}");
    assert!(page.contains("Erneut versuchen"), "{page}");
    assert!(
        !page.contains("aborted"),
        "the OP's description stays out of the page"
    );
    let again = button_href(&page);
    assert_eq!(again, env.proxy.url("/reports?year=2026"));
    assert!(env.proxy.log().contains("End-User aborted interaction"));

    // "Try again" starts a fresh login that comes back where the user was going.
    let retry = browser.navigate(&again).await;
    assert_eq!(retry.status(), StatusCode::FOUND);
    let callback = browser.sign_in_from(location(&retry), "alice").await;
    let done = browser.navigate(&callback).await;
    assert_eq!(location(&done), env.proxy.url("/reports?year=2026"));
    assert_eq!(env.upstream.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_op_error_gets_its_page_and_the_description_only_reaches_the_log() {
    let env = TestEnv::start().await;
    let callback = env.proxy.url("/.profilegate/callback");
    let cases = [
        ("access_denied", true),
        ("consent_required", true),
        ("login_required", true),
        ("interaction_required", true),
        ("server_error", false),
        ("temporarily_unavailable", false),
        ("invalid_scope", false),
        ("unauthorized_client", false),
        ("<b>made-up</b>", false),
    ];
    for (code, cancelled) in cases {
        let browser = env.browser();
        let (state, _) = start_login(&env, &browser, "/docs").await;
        let marker = format!("desc-marker-{}", code.len());
        let description = format!("<script>alert(1)</script> {marker}");
        let url = url::Url::parse_with_params(
            &callback,
            [
                ("error", code),
                ("error_description", &description),
                ("state", &state),
            ],
        )
        .expect("url");
        let resp = browser.navigate(url.as_str()).await;
        let status = resp.status();
        let cookies = set_cookies(&resp);
        let page = resp.text().await.expect("page");
        assert!(!page.contains(&marker), "{code}: description in the page");
        assert!(!page.contains("<script>"), "{code}");
        assert!(
            !page.contains("made-up"),
            "{code}: the code is not shown either"
        );
        assert!(
            cookies
                .iter()
                .any(|c| c.starts_with("profilegate_session_login_") && c.contains("Max-Age=0")),
            "{code}: the login cookie is cleared"
        );
        if cancelled {
            assert_eq!(status, StatusCode::FORBIDDEN, "{code}");
            assert!(page.contains("Sign-in cancelled"), "{code}: {page}");
            assert!(page.contains("Try again"), "{code}: {page}");
            assert_eq!(button_href(&page), env.proxy.url("/docs"), "{code}");
        } else {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{code}");
            assert!(
                page.contains("Sign-in could not be completed"),
                "{code}: {page}"
            );
            assert!(!page.contains("Sign-in cancelled"), "{code}");
        }
        assert!(
            env.proxy.log().contains(&marker),
            "{code}: description logged"
        );
        // The state is used up either way.
        let replay = browser.navigate(url.as_str()).await;
        assert_eq!(replay.status(), StatusCode::BAD_REQUEST, "{code}");
    }

    // A cancellation for a state this browser never started changes nothing and says so.
    let resp = env
        .browser()
        .navigate(&format!("{callback}?error=access_denied&state=forged"))
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(!resp
        .text()
        .await
        .expect("page")
        .contains("Sign-in cancelled"));

    // The language asked for at sign-in (ui_locales) wins; JSON for a client that wants JSON.
    let browser = env.browser();
    let (state, _) = start_login(&env, &browser, "/?ui_locales=fr").await;
    let resp = browser
        .navigate(&format!("{callback}?error=login_required&state={state}"))
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let page = resp.text().await.expect("page");
    assert!(
        page.contains("Connexion annulée") && page.contains("Réessayer"),
        "{page}"
    );
    let browser = env.browser();
    let (state, _) = start_login(&env, &browser, "/").await;
    let resp = browser
        .client
        .get(format!("{callback}?error=consent_required&state={state}"))
        .header("accept", "application/json")
        .send()
        .await
        .expect("callback");
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let json: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(json["error"], "login_cancelled");
    assert_eq!(json["retry_url"], env.proxy.url("/"));

    // A huge description is cut in the log; control characters never reach it raw.
    let browser = env.browser();
    let (state, _) = start_login(&env, &browser, "/").await;
    let url = url::Url::parse_with_params(
        &callback,
        [
            ("error", "access_denied"),
            (
                "error_description",
                &format!("line\r\nforged {}", "z".repeat(5000)),
            ),
            ("state", &state),
        ],
    )
    .expect("url");
    assert_eq!(
        browser.navigate(url.as_str()).await.status(),
        StatusCode::FORBIDDEN
    );
    let log = env.proxy.log();
    assert!(log.contains(&"z".repeat(250)), "the start is logged");
    assert!(!log.contains(&"z".repeat(301)), "cut at 300 characters");
    assert!(!log.contains("line\r\nforged") && !log.contains("line\nforged"));
    assert_eq!(env.upstream.count(), 0);
}
