//! Cookie unsealing (`CookieSealer::open_session`, `open_login`): arbitrary `Cookie` headers,
//! arbitrary session-cookie values and damaged copies of a real sealed session read as
//! anonymous; nothing but the untouched cookie opens, and nothing panics.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use profilegate::config::Config;
use profilegate::redirect::ReturnTo;
use profilegate::session::{CookieSealer, RequestCookies, Session};

const CONFIG: &str = r#"
[upstream]
url = "http://127.0.0.1:3000"
[oidc]
issuer = "http://127.0.0.1:1"
client_id = "c"
client_secret = "s"
[session]
secret = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
"#;

struct Fixture {
    sealer: CookieSealer,
    session: Session,
    /// The sealed session cookie's value.
    sealed: Vec<u8>,
    /// `name=value` of a real login-state cookie, and its state.
    login_pair: String,
    state: String,
}

/// `name=value` of a `Set-Cookie` line.
fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap_or_default().to_owned()
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let env: &[(&str, &str)] = &[];
        let config = Config::from_toml(CONFIG, env, Path::new(".")).expect("config");
        let sealer = CookieSealer::new(
            &config.session,
            &config.server.public_url,
            config.oidc.login_timeout,
        );
        let session = sealer.new_session(
            "alice".into(),
            Some("alice@example.com".into()),
            Some("alice".into()),
            None,
        );
        let sealed = pair(&sealer.seal_session(&session))
            .split_once('=')
            .map(|(_, v)| v.as_bytes().to_vec())
            .expect("sealed value");
        let none = RequestCookies::parse(std::iter::empty());
        let (login, set) =
            sealer.begin_login(&none, "n".into(), "v".into(), &ReturnTo::root(), None);
        let login_pair = pair(set.last().expect("login cookie"));
        Fixture {
            sealer,
            session,
            sealed,
            login_pair,
            state: login.state,
        }
    })
}

/// Opens the session in `header`; only the fixture's own session may ever come out.
fn open(f: &Fixture, header: &[u8]) {
    let cookies = RequestCookies::parse([header]);
    if let Some(s) = f.sealer.open_session(&cookies) {
        assert!(s == f.session, "a cookie opened as a session never sealed");
    }
    if let Some(l) = f.sealer.open_login(&cookies, &f.state) {
        assert_eq!(l.state, f.state);
    }
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    // 1. The bytes as a whole Cookie header.
    open(f, data);
    // 2. The bytes as the session cookie's value.
    open(
        f,
        &[b"other=1; profilegate_session=".as_slice(), data].concat(),
    );
    // 3. The real sealed value with the bytes written over it at a position they choose.
    if data.len() >= 2 {
        let at = usize::from(u16::from_le_bytes([data[0], data[1]])) % (f.sealed.len() + 1);
        let patch = &data[2..];
        let mut value = f.sealed.clone();
        let end = (at + patch.len()).min(value.len());
        value.splice(at..end, patch.iter().copied());
        open(f, &[b"profilegate_session=".as_slice(), &value].concat());
    }
    // 4. The bytes as the callback's `state`, with the real login cookie present.
    let cookies = RequestCookies::parse([f.login_pair.as_bytes()]);
    let state = String::from_utf8_lossy(data);
    if let Some(l) = f.sealer.open_login(&cookies, &state) {
        assert_eq!(l.state, state, "a login state opened for another state");
    }
});
