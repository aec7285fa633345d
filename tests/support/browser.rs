//! A browser-like client (cookies, no automatic redirects, the OP's sign-in forms) and what
//! the tests read from answers and pages.

use std::sync::Arc;
use std::time::Duration;

use reqwest::cookie::Jar;
use reqwest::redirect::Policy;
use reqwest::{Client, Response, StatusCode};

/// A client that behaves like a browser: keeps cookies per host, follows nothing by itself.
pub struct Browser {
    pub jar: Arc<Jar>,
    pub client: Client,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        let jar = Arc::new(Jar::default());
        let client = Client::builder()
            .redirect(Policy::none())
            .cookie_provider(jar.clone())
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client");
        Self { jar, client }
    }

    /// A top-level navigation (Accept: text/html).
    pub async fn navigate(&self, url: &str) -> Response {
        self.client
            .get(url)
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .send()
            .await
            .expect("request")
    }

    /// The cookies this browser would send to `url`.
    pub fn cookies_for(&self, url: &str) -> String {
        use reqwest::cookie::CookieStore;
        self.jar
            .cookies(&url.parse().expect("url"))
            .map(|v| v.to_str().unwrap_or_default().to_owned())
            .unwrap_or_default()
    }

    /// Signs in as `login` at the OP, starting from a navigation to `url` on the proxy.
    /// Returns the callback URL the OP redirected to (not yet visited).
    pub async fn sign_in_at_op(&self, url: &str, login: &str) -> String {
        let first = self.navigate(url).await;
        assert_eq!(
            first.status(),
            StatusCode::FOUND,
            "navigation should redirect to the OP"
        );
        self.sign_in_from(location(&first), login).await
    }

    /// Signs in as `login` at the OP, starting from its authorization URL `op_url` (the
    /// proxy's login cookie must already be in this browser's jar). Returns the callback URL
    /// the OP redirected to (not yet visited).
    pub async fn sign_in_from(&self, op_url: String, login: &str) -> String {
        let mut next = op_url;
        for _ in 0..20 {
            if next.contains("/.profilegate/callback") {
                return next;
            }
            let resp = self.client.get(&next).send().await.expect("OP request");
            if resp.status().is_redirection() {
                next = absolute(&next, &location(&resp));
                continue;
            }
            assert_eq!(resp.status(), StatusCode::OK, "OP page {next}");
            let page = resp.text().await.expect("OP page body");
            let form: Vec<(&str, &str)> = if page.contains("name=\"password\"") {
                vec![("prompt", "login"), ("login", login), ("password", "any")]
            } else {
                vec![("prompt", "consent")]
            };
            let posted = self
                .client
                .post(&next)
                .form(&form)
                .send()
                .await
                .expect("OP form");
            assert!(
                posted.status().is_redirection(),
                "OP form answered {}",
                posted.status()
            );
            next = absolute(&next, &location(&posted));
        }
        panic!("the OP never redirected back to the proxy");
    }

    /// A complete login: navigation to `url`, OP sign-in, callback. Returns the callback's answer.
    pub async fn login(&self, url: &str, login: &str) -> Response {
        let callback = self.sign_in_at_op(url, login).await;
        self.navigate(&callback).await
    }
}

/// The value of the form field `name` in a page (a hidden input's, say), with the entities
/// minijinja's escaping produces decoded as a browser would.
pub fn form_value(html: &str, name: &str) -> String {
    html.split(&format!("name=\"{name}\" value=\""))
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no {name} in the page:\n{html}"))
        .replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The `Location` header of a response.
pub fn location(resp: &Response) -> String {
    resp.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no Location in a {} answer", resp.status()))
        .to_owned()
}

/// Resolves a possibly relative `Location` against the URL it came from.
pub fn absolute(base: &str, loc: &str) -> String {
    url::Url::parse(base)
        .and_then(|b| b.join(loc))
        .map(|u| u.to_string())
        .unwrap_or_else(|_| loc.to_owned())
}

/// The `Set-Cookie` headers of a response.
pub fn set_cookies(resp: &Response) -> Vec<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect()
}

/// Query parameters of a URL.
pub fn query(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url)
        .expect("url")
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Chromium for the browser scripts: `TEST_CHROMIUM`, else Debian's `/usr/bin/chromium`.
pub fn chromium() -> std::path::PathBuf {
    std::env::var_os("TEST_CHROMIUM")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("/usr/bin/chromium"))
}

/// What a browser script left: its exit status (`None`: killed at the backstop), its stdout
/// (the JSON report) and its stderr.
pub struct ScriptRun {
    pub status: Option<std::process::ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl ScriptRun {
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// The status for a failure message.
    pub fn describe(&self, backstop: Duration) -> String {
        self.status
            .map_or(format!("killed after {} s", backstop.as_secs()), |s| {
                s.to_string()
            })
    }
}

/// Runs `tests/browser/<script>` with `config` as its one argument and [`chromium`] in
/// `TEST_CHROMIUM`, its output in files (never blocking it), until it exits or `backstop`
/// passes (then it is killed). The scripts stop themselves earlier; this is the backstop.
/// Blocks the thread: async tests call it inside `tokio::task::block_in_place`.
pub fn run_browser_script(
    script: &str,
    config: &serde_json::Value,
    backstop: Duration,
) -> ScriptRun {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().expect("tempdir");
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = Command::new("node")
        .arg(super::repo().join("tests/browser").join(script))
        .arg(config.to_string())
        .env("TEST_CHROMIUM", chromium())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .spawn()
        .expect("node starts");
    let deadline = std::time::Instant::now() + backstop;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    ScriptRun {
        status,
        stdout: std::fs::read_to_string(&out).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err).unwrap_or_default(),
    }
}
