//! End-to-end against a second, independently written OpenID Provider: Glewlwyd, a C daemon from
//! Debian's `glewlwyd` package (the first real OP is npm `oidc-provider`). A login through
//! Glewlwyd's own endpoints, a required question, what the upstream receives, and RP-initiated
//! logout; with an RS256 or ES256 key, an issuer with a trailing slash (and the diagnosis when
//! profilegate is configured without it), and a client secret holding `+`, `/` and `=`, which
//! Glewlwyd refuses over HTTP Basic (it does not URL-decode it) and accepts with
//! `oidc.token_endpoint_auth = "client_secret_post"`.
//!
//! Glewlwyd runs in the foreground on a free loopback port, with its own configuration
//! (`tests/glewlwyd/glewlwyd.conf`), a fresh SQLite database from the package's schema and a
//! signing key made for this run; the OIDC plugin, the client and the user are registered through
//! its admin REST API (`tests/glewlwyd/*.json`). Its login page is a JavaScript app, so the test
//! signs in the way that page does: `POST /api/auth/` (password), `PUT /api/auth/grant/<client>`
//! (consent), then the authorization URL again with `g_continue`.
//!
//! Without the package the test says so and returns, unless `GLEWLWYD_TEST_REQUIRED` is set (as
//! `tests/run.sh`, which installs the package, sets it): then a missing or broken Glewlwyd fails.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::cookie::Jar;
use reqwest::redirect::Policy;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use support::questions::*;
use support::*;

/// The package's SQLite schema (the same tables as /usr/share/doc/glewlwyd/database/
/// init.sqlite3.sql.gz, outside /usr/share/doc, which slim images strip). It creates the
/// `admin` user with the password `password`, a database user backend and a database client
/// backend.
const SCHEMA: &str = "/usr/share/dbconfig-common/data/glewlwyd/install/sqlite3";
const ADMIN: (&str, &str) = ("admin", "password");
const USER: (&str, &str) = ("alice", "Looking-Glass-1871");
const USER_EMAIL: &str = "alice@example.org";
/// How long Glewlwyd may take to answer on its port.
const START_DEADLINE: Duration = Duration::from_secs(20);

fn questions() -> String {
    profiling(&["questions_per_login = 1"], &[company()])
}

/// What the test needs on the machine; the first one missing, if any.
fn missing_prerequisite() -> Option<String> {
    let on_path = |name: &str| {
        std::env::var_os("PATH")
            .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(name).is_file()))
    };
    for program in ["glewlwyd", "sqlite3", "openssl"] {
        if !on_path(program) {
            return Some(format!("`{program}` is not installed"));
        }
    }
    (!Path::new(SCHEMA).is_file()).then(|| format!("{SCHEMA} is missing"))
}

/// The ID-token signature Glewlwyd is set up with: a key made for this run. Glewlwyd can also
/// sign with an HMAC secret (HS*), which profilegate refuses.
#[derive(Clone, Copy, Debug)]
enum Signing {
    Rs256,
    Es256,
}

impl Signing {
    /// `openssl genpkey` arguments for the private key.
    fn genpkey(self) -> [&'static str; 4] {
        match self {
            Signing::Rs256 => ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            Signing::Es256 => ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        }
    }

    /// The OIDC plugin's `jwt-type` (with `jwt-key-size` 256).
    fn jwt_type(self) -> &'static str {
        match self {
            Signing::Rs256 => "rsa",
            Signing::Es256 => "ecdsa",
        }
    }

    fn alg(self) -> &'static str {
        match self {
            Signing::Rs256 => "RS256",
            Signing::Es256 => "ES256",
        }
    }
}

/// How the OIDC plugin spells its issuer (its `iss` parameter, free text in Glewlwyd).
#[derive(Clone, Copy, Debug)]
enum IssuerForm {
    /// Where the plugin serves: `<base>/api/oidc`.
    AsServed,
    /// The same with a trailing slash, `<base>/api/oidc/`, as Auth0 or Authentik write theirs.
    TrailingSlash,
}

/// A client secret with `+`, `/` and `=`, which an HTTP Basic header carries URL-encoded
/// (RFC 6749 §2.3.1) and Glewlwyd does not decode.
const AWKWARD_SECRET: &str = "q+7/Vw=Kd3+/xZ==";

/// What a test sets Glewlwyd up with; `Setup::DEFAULT` with fields changed.
#[derive(Clone, Copy, Debug)]
struct Setup {
    signing: Signing,
    issuer: IssuerForm,
    /// The client's secret at Glewlwyd (and in profilegate's configuration).
    secret: &'static str,
}

impl Setup {
    const DEFAULT: Setup = Setup {
        signing: Signing::Rs256,
        issuer: IssuerForm::AsServed,
        secret: CLIENT_SECRET,
    };
}

/// A Glewlwyd daemon with the OIDC plugin, the proxy's client and one user; killed when dropped.
struct Glewlwyd {
    child: Child,
    dir: tempfile::TempDir,
    /// `http://localhost:<port>`.
    base: String,
    /// Where the OIDC plugin serves its discovery and endpoints: `<base>/api/oidc`.
    plugin: String,
    /// The plugin's issuer: [`Glewlwyd::plugin`], with a trailing slash for
    /// [`IssuerForm::TrailingSlash`].
    issuer: String,
    /// How long the start and the registrations took.
    setup: Duration,
}

impl Glewlwyd {
    /// Starts Glewlwyd for a proxy whose public origin is `proxy_origin`.
    async fn start(proxy_origin: &str, setup: Setup) -> Glewlwyd {
        let started = Instant::now();
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let base = format!("http://localhost:{port}");
        let database = dir.path().join("glewlwyd.db");
        run(Command::new("sqlite3")
            .arg(&database)
            .stdin(std::fs::File::open(SCHEMA).expect("schema")));
        let key = dir.path().join("key.pem");
        let public = dir.path().join("public.pem");
        run(Command::new("openssl")
            .arg("genpkey")
            .args(setup.signing.genpkey())
            .arg("-out")
            .arg(&key));
        run(Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&key)
            .arg("-out")
            .arg(&public));

        let config = template("glewlwyd.conf")
            .replace("{port}", &port.to_string())
            .replace("{external_url}", &base)
            .replace("{database}", &database.display().to_string());
        let config_path = dir.path().join("glewlwyd.conf");
        std::fs::File::create(&config_path)
            .and_then(|mut f| f.write_all(config.as_bytes()))
            .expect("config written");
        let log = std::fs::File::create(dir.path().join("glewlwyd.log")).expect("log file");
        let child = Command::new("glewlwyd")
            .arg(format!("--config-file={}", config_path.display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("glewlwyd starts");
        let plugin = format!("{base}/api/oidc");
        let issuer = match setup.issuer {
            IssuerForm::AsServed => plugin.clone(),
            IssuerForm::TrailingSlash => format!("{plugin}/"),
        };
        let mut op = Glewlwyd {
            child,
            dir,
            base,
            plugin,
            issuer,
            setup: Duration::ZERO,
        };
        op.wait_until_listening().await;
        op.register(
            proxy_origin,
            setup,
            &std::fs::read_to_string(&key).expect("key"),
            &std::fs::read_to_string(&public).expect("public key"),
        )
        .await;
        op.setup = started.elapsed();
        op
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("glewlwyd.log")).unwrap_or_default()
    }

    fn api(&self, path: &str) -> String {
        format!("{}/api{path}", self.base)
    }

    async fn wait_until_listening(&mut self) {
        let client = Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            // Any HTTP answer will do: the API is up.
            if client.get(self.api("/auth/scheme/")).send().await.is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("glewlwyd exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "glewlwyd did not listen within {START_DEADLINE:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Signs in as the schema's administrator and registers, through the admin API, what a
    /// Glewlwyd administrator would set up in its web UI for profilegate.
    async fn register(&self, proxy_origin: &str, setup: Setup, key: &str, public: &str) {
        let admin = session_client();
        self.call(
            &admin,
            "POST",
            "/auth/",
            json!({"username": ADMIN.0, "password": ADMIN.1}),
        )
        .await;
        // The database client backend must know `post_logout_redirect_uris` as a list: its
        // default data format has no such property (end_session reads it), and anything unknown
        // is stored as a single string.
        let mut clients: Value = self
            .call(&admin, "GET", "/mod/client/database", json!(null))
            .await;
        clients["parameters"]["data-format"]["post_logout_redirect_uris"] =
            json!({"multiple": true, "read": true, "write": true});
        if let Some(m) = clients.as_object_mut() {
            m.remove("enabled");
        }
        self.call(&admin, "PUT", "/mod/client/database", clients)
            .await;
        self.call(&admin, "PUT", "/mod/client/database/reset", json!(null))
            .await;
        // Scopes other than `openid` exist only once created; the plugin maps `email` and
        // `profile` to the email and name claims (tests/glewlwyd/oidc-plugin.json).
        for scope in ["email", "profile"] {
            self.call(
                &admin,
                "POST",
                "/scope/",
                json!({
                    "name": scope, "display_name": scope, "description": scope,
                    "password_required": false, "scheme": {},
                }),
            )
            .await;
        }
        let mut plugin = template_json("oidc-plugin.json");
        plugin["parameters"]["iss"] = json!(self.issuer);
        plugin["parameters"]["jwt-type"] = json!(setup.signing.jwt_type());
        plugin["parameters"]["key"] = json!(key);
        plugin["parameters"]["cert"] = json!(public);
        self.call(&admin, "POST", "/mod/plugin/", plugin).await;

        let mut client = template_json("client.json");
        client["client_id"] = json!(CLIENT_ID);
        client["client_secret"] = json!(setup.secret);
        client["redirect_uri"] = json!([format!("{proxy_origin}/.profilegate/callback")]);
        client["post_logout_redirect_uris"] =
            json!([format!("{proxy_origin}/.profilegate/signed-out")]);
        self.call(&admin, "POST", "/client/", client).await;

        let mut user = template_json("user.json");
        user["username"] = json!(USER.0);
        user["password"] = json!(USER.1);
        user["email"] = json!(USER_EMAIL);
        self.call(&admin, "POST", "/user/", user).await;
    }

    /// One admin or user API call that must succeed; its JSON answer (`null` when empty).
    async fn call(&self, client: &Client, method: &str, path: &str, body: Value) -> Value {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = client.request(method.clone(), self.api(path));
        if !body.is_null() {
            request = request.json(&body);
        }
        let resp = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", self.log()));
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert_eq!(
            status,
            StatusCode::OK,
            "{method} {path} answered {status}: {text}\n{}",
            self.log()
        );
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// The `sub` Glewlwyd gave `username` (public subject type), from its own database.
    fn subject_of(&self, username: &str) -> String {
        run(Command::new("sqlite3")
            .arg(self.dir.path().join("glewlwyd.db"))
            .arg(format!(
                "SELECT gposi_sub FROM gpo_subject_identifier \
                 WHERE gposi_plugin_name = 'oidc' AND gposi_username = '{username}'"
            )))
        .trim()
        .to_owned()
    }
}

impl Drop for Glewlwyd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long one local helper command (sqlite3, openssl) may take.
const COMMAND_DEADLINE: Duration = Duration::from_secs(30);

/// Runs a local helper command that must succeed within [`COMMAND_DEADLINE`]; its stdout.
fn run(cmd: &mut Command) -> String {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?} does not start: {e}"));
    let deadline = Instant::now() + COMMAND_DEADLINE;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("killed command");
            panic!(
                "{cmd:?} did not finish within {COMMAND_DEADLINE:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("command output");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn template(name: &str) -> String {
    let path: PathBuf = repo().join("tests/glewlwyd").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn template_json(name: &str) -> Value {
    serde_json::from_str(&template(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A client with its own cookie jar that follows no redirect (the browser's role at the OP).
fn session_client() -> Client {
    Client::builder()
        .redirect(Policy::none())
        .cookie_provider(Arc::new(Jar::default()))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// Whether Glewlwyd can run here. When not, says why and the test returns, unless
/// `GLEWLWYD_TEST_REQUIRED` is set: then it fails.
fn glewlwyd_available() -> bool {
    let Some(missing) = missing_prerequisite() else {
        return true;
    };
    assert!(
        std::env::var_os("GLEWLWYD_TEST_REQUIRED").is_none(),
        "GLEWLWYD_TEST_REQUIRED is set but {missing}"
    );
    eprintln!("skipped: {missing} (tests/run.sh installs the glewlwyd package)");
    false
}

/// Glewlwyd's discovery document, where its plugin serves it, whatever its issuer's spelling.
async fn discovery(op: &Glewlwyd) -> Value {
    session_client()
        .get(format!("{}/.well-known/openid-configuration", op.plugin))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("discovery JSON")
}

/// Starts profilegate on `port` for `op`: its issuer exactly as Glewlwyd spells it, the client
/// secret registered there, and `token_endpoint_auth` when given; waits until it is ready.
async fn start_proxy_for(
    port: u16,
    op: &Glewlwyd,
    setup: Setup,
    upstream: &EchoUpstream,
    token_endpoint_auth: Option<&str>,
) -> Proxy {
    let mut proxy =
        start_proxy_with(port, &op.issuer, &upstream.url(), "", &questions(), true).await;
    if setup.secret == CLIENT_SECRET && token_endpoint_auth.is_none() {
        return proxy;
    }
    // The harness writes the shared test secret; this OP has another one, or another method.
    let written = format!("client_secret = \"{CLIENT_SECRET}\"\n");
    let config = std::fs::read_to_string(&proxy.config_path).expect("config");
    assert!(config.contains(&written), "{config}");
    let mut oidc = format!("client_secret = {:?}\n", setup.secret);
    if let Some(method) = token_endpoint_auth {
        oidc.push_str(&format!("token_endpoint_auth = {method:?}\n"));
    }
    std::fs::write(&proxy.config_path, config.replacen(&written, &oidc, 1)).expect("config");
    proxy.restart().await;
    proxy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_question_and_logout_work_against_glewlwyd_signing_rs256() {
    login_question_and_logout(Setup::DEFAULT, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_question_and_logout_work_against_glewlwyd_signing_es256() {
    let setup = Setup {
        signing: Signing::Es256,
        ..Setup::DEFAULT
    };
    login_question_and_logout(setup, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_question_and_logout_work_against_glewlwyd_with_a_trailing_slash_issuer() {
    // Discovery, the ID token's `iss` and the callback's `iss` all carry Glewlwyd's `.../oidc/`,
    // and profilegate, configured with that same string, compares each exactly.
    let setup = Setup {
        issuer: IssuerForm::TrailingSlash,
        ..Setup::DEFAULT
    };
    login_question_and_logout(setup, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_with_plus_slash_and_equals_works_against_glewlwyd_with_client_secret_post() {
    let setup = Setup {
        secret: AWKWARD_SECRET,
        ..Setup::DEFAULT
    };
    login_question_and_logout(setup, Some("client_secret_post")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glewlwyd_refuses_a_secret_with_plus_slash_and_equals_sent_by_http_basic() {
    if !glewlwyd_available() {
        return;
    }
    let setup = Setup {
        secret: AWKWARD_SECRET,
        ..Setup::DEFAULT
    };
    let port = free_port();
    let op = Glewlwyd::start(&format!("http://127.0.0.1:{port}"), setup).await;
    let upstream = EchoUpstream::start().await;
    // Unset, the method is the first secret method Glewlwyd lists: client_secret_basic, which
    // carries the secret URL-encoded (`q%2B7%2FVw%3DKd3...`, RFC 6749 §2.3.1).
    let proxy = start_proxy_for(port, &op, setup, &upstream, None).await;
    let browser = Browser::new();
    let callback = sign_in_at_glewlwyd(&browser, &proxy, &op).await;
    let refused = browser.navigate(&callback).await;
    // Glewlwyd answers `unauthorized_client` where RFC 6749 §5.2 has `invalid_client`; either
    // way the client's authentication failed, not the code: a 502 page (the site's
    // configuration is at fault) and a log line that names the method in use.
    assert_eq!(
        refused.status(),
        StatusCode::BAD_GATEWAY,
        "{}\n{}",
        proxy.log(),
        op.log()
    );
    let log = proxy.log();
    assert!(
        log.contains("\"token_endpoint_auth\":\"client_secret_basic\""),
        "{log}"
    );
    assert!(
        log.contains("\"path\":\"/.profilegate/callback\"")
            && log.contains(
                "the OP refused the client (unauthorized_client) with token_endpoint_auth client_secret_basic"
            ),
        "{log}"
    );
    // The cause, at Glewlwyd itself: the same secret in a Basic header passes its client
    // authentication when sent raw (it then refuses only the made-up code, with its own
    // `invalid_code` where RFC 6749 has `invalid_grant`) and fails when sent URL-encoded, as
    // RFC 6749 §2.3.1 asks and profilegate does.
    let encoded: String = url::form_urlencoded::byte_serialize(AWKWARD_SECRET.as_bytes()).collect();
    assert_ne!(encoded, AWKWARD_SECRET);
    assert_eq!(
        token_error(&op, &proxy, AWKWARD_SECRET).await,
        "invalid_code",
        "raw secret"
    );
    assert_eq!(
        token_error(&op, &proxy, &encoded).await,
        "unauthorized_client",
        "URL-encoded secret"
    );
    assert!(
        !browser
            .cookies_for(&proxy.url("/"))
            .contains("profilegate_session="),
        "no session"
    );
    assert_eq!(upstream.count(), 0);
}

/// The `error` Glewlwyd's token endpoint answers to a made-up code for the `proxy`'s callback
/// (Glewlwyd checks it among the client's), with the client authenticated by HTTP Basic with
/// `password` as written.
async fn token_error(op: &Glewlwyd, proxy: &Proxy, password: &str) -> String {
    let resp = session_client()
        .post(format!("{}/token", op.plugin))
        .basic_auth(CLIENT_ID, Some(password))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "made-up"),
            ("redirect_uri", &proxy.url("/.profilegate/callback")),
        ])
        .send()
        .await
        .expect("token request");
    let body: Value = resp.json().await.unwrap_or_default();
    body["error"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glewlwyds_trailing_slash_issuer_written_without_it_is_reported_with_both_strings() {
    if !glewlwyd_available() {
        return;
    }
    let setup = Setup {
        issuer: IssuerForm::TrailingSlash,
        ..Setup::DEFAULT
    };
    let port = free_port();
    let op = Glewlwyd::start(&format!("http://127.0.0.1:{port}"), setup).await;
    let upstream = EchoUpstream::start().await;
    let configured = op.issuer.trim_end_matches('/').to_owned();
    assert_ne!(configured, op.issuer);
    // Not ready: discovery fails (it runs before the proxy serves, so the log has it now).
    let proxy = start_proxy_with(port, &configured, &upstream.url(), "", &questions(), false).await;
    // The log is JSON: the quoted issuers inside its error field are escaped.
    let quoted = |issuer: &str| format!("{issuer:?}").replace('"', "\\\"");
    let log = proxy.log();
    assert!(
        log.contains("OpenID Provider discovery failed")
            && log.contains(&quoted(&op.issuer))
            && log.contains(&quoted(&configured))
            && log.contains("trailing slash"),
        "the log names both issuers:\n{log}"
    );
    let out = child::output_within(
        Command::new(binary())
            .args(["check", "--online", "--config"])
            .arg(&proxy.config_path),
        "profilegate check --online",
        child::COMMAND_LIMIT,
    )
    .expect("check runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!("{:?}", op.issuer)) && text.contains(&format!("{configured:?}")),
        "check --online names both issuers:\n{text}"
    );
    // No sign-in starts at Glewlwyd.
    let page = Browser::new().navigate(&proxy.url("/app")).await;
    assert_eq!(page.status(), StatusCode::BAD_GATEWAY);
}

/// Steps 1 to 3 of a login: an anonymous navigation to `/app?tab=2`, Glewlwyd's authorization
/// endpoint, its login (a wrong password refused, then the right one) and consent. Returns the
/// callback URL Glewlwyd sends the browser to (not yet visited).
async fn sign_in_at_glewlwyd(browser: &Browser, proxy: &Proxy, op: &Glewlwyd) -> String {
    // 1. An anonymous navigation goes to Glewlwyd's authorization endpoint (from its discovery).
    let first = browser.navigate(&proxy.url("/app?tab=2")).await;
    assert_eq!(first.status(), StatusCode::FOUND, "{}", proxy.log());
    let authorize = location(&first);
    assert!(
        authorize.starts_with(&format!("{}/auth?", op.plugin)),
        "{authorize}"
    );
    assert_eq!(query(&authorize)["code_challenge_method"], "S256");

    // 2. Glewlwyd sends the browser to its login page, which carries the authorization URL to
    //    come back to.
    let to_login = browser
        .client
        .get(&authorize)
        .send()
        .await
        .expect("authorize");
    assert_eq!(to_login.status(), StatusCode::FOUND, "{}", op.log());
    let login_page = location(&to_login);
    assert!(
        login_page.starts_with(&format!("{}/login.html?", op.base)),
        "{login_page}"
    );
    let resume = query(&login_page)
        .remove("callback_url")
        .expect("the login page's callback_url");

    // 3. What the login page does: the password (a wrong one is refused), the consent, and
    //    back to the authorization URL.
    let wrong = browser
        .client
        .post(op.api("/auth/"))
        .json(&json!({"username": USER.0, "password": "not-the-password"}))
        .send()
        .await
        .expect("auth");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    op.call(
        &browser.client,
        "POST",
        "/auth/",
        json!({"username": USER.0, "password": USER.1}),
    )
    .await;
    op.call(
        &browser.client,
        "PUT",
        &format!("/auth/grant/{CLIENT_ID}"),
        json!({"scope": "openid email profile"}),
    )
    .await;
    let granted = browser
        .client
        .get(format!("{resume}&g_continue"))
        .send()
        .await
        .expect("authorize again");
    assert_eq!(granted.status(), StatusCode::FOUND, "{}", op.log());
    let callback = location(&granted);
    assert!(
        callback.starts_with(&proxy.url("/.profilegate/callback?")),
        "{callback}"
    );
    // RFC 9207: Glewlwyd's issuer exactly as its plugin spells it.
    assert_eq!(query(&callback)["iss"], op.issuer);
    callback
}

/// The whole flow against Glewlwyd set up with `setup`, profilegate configured with
/// `token_endpoint_auth` (unset when `None`).
async fn login_question_and_logout(setup: Setup, token_endpoint_auth: Option<&str>) {
    if !glewlwyd_available() {
        return;
    }
    let port = free_port();
    let op = Glewlwyd::start(&format!("http://127.0.0.1:{port}"), setup).await;
    eprintln!("Glewlwyd ({setup:?}) started and set up in {:?}", op.setup);
    let discovery = discovery(&op).await;
    assert_eq!(discovery["issuer"], op.issuer.as_str());
    assert_eq!(
        discovery["id_token_signing_alg_values_supported"][0],
        setup.signing.alg(),
        "Glewlwyd signs with the key made for this run"
    );
    // Unset, profilegate takes the first secret method Glewlwyd lists.
    assert_eq!(
        discovery["token_endpoint_auth_methods_supported"][0], "client_secret_basic",
        "{discovery}"
    );
    let method = token_endpoint_auth.unwrap_or("client_secret_basic");
    let upstream = EchoUpstream::start().await;
    let proxy = start_proxy_for(port, &op, setup, &upstream, token_endpoint_auth).await;
    assert!(
        proxy
            .log()
            .contains(&format!("\"token_endpoint_auth\":\"{method}\"")),
        "{}",
        proxy.log()
    );
    let browser = Browser::new();
    let callback = sign_in_at_glewlwyd(&browser, &proxy, &op).await;

    // 4. The callback: code exchanged (`method`), the ID token verified (signature, `iss`
    //    exactly), userinfo read; a new session, and the required question before anything else.
    let finished = browser.navigate(&callback).await;
    assert_eq!(
        finished.status(),
        StatusCode::FOUND,
        "callback refused:\n{}\n{}",
        proxy.log(),
        op.log()
    );
    assert_eq!(
        location(&finished),
        proxy.url("/.profilegate/profile?rd=%2Fapp%3Ftab%3D2")
    );
    let page = browser
        .navigate(&proxy.url("/.profilegate/profile?rd=%2Fapp%3Ftab%3D2"))
        .await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("question page");
    assert!(html.contains("Which company do you work for?"), "{html}");
    let blocked = browser.navigate(&proxy.url("/app")).await;
    assert_eq!(blocked.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        upstream.count(),
        0,
        "nothing reaches the upstream before the answer"
    );

    // 5. The answer, posted with the page's CSRF token, and the way on to the app.
    let answered = browser
        .client
        .post(proxy.url("/.profilegate/profile"))
        .header("accept", "text/html")
        .form(&[
            ("company", "Wonderland Ltd"),
            ("_csrf", &form_value(&html, "_csrf")),
            ("_question", "company"),
            ("_rd", &form_value(&html, "_rd")),
        ])
        .send()
        .await
        .expect("answer");
    assert_eq!(answered.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&answered), proxy.url("/app?tab=2"));
    let app = browser.navigate(&proxy.url("/app?tab=2")).await;
    assert_eq!(app.status(), StatusCode::OK);

    // 6. The upstream gets Glewlwyd's identity of the user and the answer.
    let seen = upstream.last();
    assert_eq!(seen.target, "/app?tab=2");
    let sub = op.subject_of(USER.0);
    assert!(
        !sub.is_empty(),
        "Glewlwyd recorded no subject for {}",
        USER.0
    );
    assert_eq!(seen.header("x-forwarded-user"), Some(sub.as_str()));
    assert_eq!(
        seen.header("x-forwarded-email"),
        Some(USER_EMAIL),
        "the email comes from Glewlwyd's userinfo (scope email)"
    );
    assert_eq!(seen.header("x-profile-company"), Some("Wonderland Ltd"));

    // 7. Logout: the session cookie is cleared and the browser goes to Glewlwyd's end_session
    //    endpoint with the post-logout URI registered there.
    let logout = browser.navigate(&proxy.url("/.profilegate/logout")).await;
    assert_eq!(logout.status(), StatusCode::FOUND);
    assert!(
        set_cookies(&logout)
            .iter()
            .any(|c| c.starts_with("profilegate_session=;") && c.contains("Max-Age=0")),
        "{:?}",
        set_cookies(&logout)
    );
    let end_session = location(&logout);
    assert!(
        end_session.starts_with(&format!("{}/end_session?", op.plugin)),
        "{end_session}"
    );
    let q = query(&end_session);
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(
        q["post_logout_redirect_uri"],
        proxy.url("/.profilegate/signed-out")
    );
    // Glewlwyd 2.7 acts on an end_session request only with `id_token_hint`, which profilegate
    // sends (read from the session record): Glewlwyd then redirects the browser on.
    assert!(q.contains_key("id_token_hint"), "{end_session}");
    let at_op = browser
        .client
        .get(&end_session)
        .send()
        .await
        .expect("end_session");
    let status = at_op.status();
    let to = at_op
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(status, StatusCode::FOUND, "{}", op.log());
    // Its sign-out page, which returns to the registered post-logout URI.
    assert!(to.contains("prompt=end_session"), "{to}");
    let back = query(&to);
    assert_eq!(
        back.get("callback_url").map(String::as_str),
        Some(proxy.url("/.profilegate/signed-out").as_str()),
        "{to}"
    );

    // 8. Signed out of the proxy: the next navigation starts a new login at Glewlwyd.
    let after = browser.navigate(&proxy.url("/app")).await;
    assert_eq!(after.status(), StatusCode::FOUND);
    assert!(location(&after).starts_with(&format!("{}/auth?", op.plugin)));
    assert!(
        !browser
            .cookies_for(&proxy.url("/"))
            .contains("profilegate_session="),
        "the session cookie is gone"
    );
}
