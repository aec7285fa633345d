//! Configuration: the TOML file (plus `PROFILEGATE_<SECTION>_<KEY>` environment overrides) is
//! read once at start-up into a validated [`Config`]. Every error is collected and reported at
//! once with its key; nothing downstream re-checks what this module guarantees.
//!
//! One file per section (`server.rs`, `upstream.rs`, `oidc.rs`, `session.rs`, `store.rs`,
//! `log.rs`, `profiling.rs`, `theme.rs`) holds its validated type and the code that reads it
//! through a `reader::SectionReader`; this file keeps [`Config`], loading, the environment
//! overrides and the all-errors-at-once orchestration.

mod access;
mod admin;
mod error;
mod hints;
mod log;
mod oidc;
pub mod postgres;
mod profiling;
mod reader;
mod secret;
mod server;
mod session;
mod store;
mod theme;
mod tls;
mod upstream;

use std::collections::BTreeSet;
use std::path::Path;

use toml::{Table, Value};

use self::reader::{EnvKeys, SectionReader};

pub use self::admin::{AdminConfig, AdminToken, MIN_ADMIN_TOKEN_CHARS};
pub use self::error::{ConfigError, ConfigErrors};
pub use self::log::{LogConfig, LogFormat};
pub use self::oidc::{OidcConfig, TokenEndpointAuth, SUPPORTED_SIGNING_ALGS};
pub use self::profiling::{ProfilingConfig, QuestionUi};
pub use self::secret::Secret;
pub use self::server::{
    PublicUrl, ServerConfig, ServerMode, DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_REQUEST_HEAD_BYTES,
};
pub use self::session::{SessionConfig, EXAMPLE_SESSION_SECRET};
pub use self::store::{
    StoreBackend, StoreConfig, DEFAULT_PROFILE_CACHE_USERS, DEFAULT_STORE_CACHE_SIZE,
};
pub use self::theme::{CssValue, FooterLink, ThemeConfig, TEMPLATE_NAMES};
pub use self::tls::{TlsFileError, TlsFiles};
pub use self::upstream::UpstreamConfig;

/// The sections a configuration file may have.
const SECTIONS: &[&str] = &[
    "server",
    "access",
    "routes",
    "upstream",
    "oidc",
    "session",
    "store",
    "log",
    "profiling",
    "theme",
    "admin",
];

/// Where environment overrides come from: the process environment in production, a map in tests.
pub trait EnvSource {
    /// All `(name, value)` pairs whose name starts with `PROFILEGATE_`.
    fn profilegate_vars(&self) -> Vec<(String, String)>;
}

/// The real process environment.
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn profilegate_vars(&self) -> Vec<(String, String)> {
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| k.starts_with("PROFILEGATE_"))
            .collect()
    }
}

impl EnvSource for [(&str, &str)] {
    fn profilegate_vars(&self) -> Vec<(String, String)> {
        self.iter()
            .filter(|(k, _)| k.starts_with("PROFILEGATE_"))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub upstream: UpstreamConfig,
    pub oidc: OidcConfig,
    pub session: SessionConfig,
    pub store: StoreConfig,
    pub log: LogConfig,
    pub profiling: ProfilingConfig,
    pub theme: ThemeConfig,
    /// `[access]` and `[[routes]]`, compiled.
    pub policy: crate::policy::Policy,
    /// `[admin]`: the admin API's tokens.
    pub admin: AdminConfig,
}

impl Config {
    /// Reads and validates the file at `path` with overrides from `env`.
    pub fn load(path: &Path, env: &(impl EnvSource + ?Sized)) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError::new(
                path.display().to_string(),
                format!("cannot read the configuration file: {e}"),
            )])
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::from_toml(&text, env, base)
    }

    /// Parses and validates configuration text. Relative paths are resolved against `base_dir`.
    pub fn from_toml(
        text: &str,
        env: &(impl EnvSource + ?Sized),
        base_dir: &Path,
    ) -> Result<Config, ConfigErrors> {
        let mut root: Table = text.parse().map_err(|e: toml::de::Error| {
            // The message only: toml's own rendering quotes the offending line, which may hold a secret.
            let at = e
                .span()
                .map(|s| {
                    let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                    format!("line {line}")
                })
                .unwrap_or_else(|| "file".into());
            ConfigErrors(vec![ConfigError::new(
                at,
                format!("invalid TOML: {}", e.message()),
            )])
        })?;
        let mut errors = Vec::new();
        let env_keys = apply_env(&mut root, env, &mut errors);

        for key in root.keys() {
            if !SECTIONS.contains(&key.as_str()) {
                errors.push(ConfigError::new(
                    key.clone(),
                    hints::unknown("unknown section", key, SECTIONS),
                ));
            }
        }
        let routes = root.remove("routes");
        let mut section = |name: &str, errors: &mut Vec<ConfigError>| -> Table {
            match root.remove(name) {
                None => Table::new(),
                Some(Value::Table(t)) => t,
                Some(other) => {
                    errors.push(ConfigError::new(
                        name,
                        format!("expected a table ([{name}]), found {}", other.type_str()),
                    ));
                    Table::new()
                }
            }
        };

        let t = section("server", &mut errors);
        let server = server::read_server(SectionReader::new(
            "server",
            t,
            &env_keys,
            base_dir,
            &mut errors,
        ));
        let t = section("upstream", &mut errors);
        // forward_auth mode forwards nothing: `upstream.url` then defaults to `public_url` (the
        // edge's origin, where the application is reached), the profile JWT's audience.
        let default_upstream = server
            .as_ref()
            .filter(|s| s.mode == ServerMode::ForwardAuth)
            .map(|s| s.public_url.url().clone());
        let upstream = upstream::read_upstream(
            SectionReader::new("upstream", t, &env_keys, base_dir, &mut errors),
            default_upstream,
        );
        let t = section("oidc", &mut errors);
        let oidc = oidc::read_oidc(SectionReader::new(
            "oidc",
            t,
            &env_keys,
            base_dir,
            &mut errors,
        ));
        let t = section("session", &mut errors);
        let session = session::read_session(SectionReader::new(
            "session",
            t,
            &env_keys,
            base_dir,
            &mut errors,
        ));
        let t = section("store", &mut errors);
        let store = store::read_store(SectionReader::new(
            "store",
            t,
            &env_keys,
            base_dir,
            &mut errors,
        ));
        let t = section("log", &mut errors);
        let log = log::read_log(SectionReader::new(
            "log",
            t,
            &env_keys,
            base_dir,
            &mut errors,
        ));
        let t = section("profiling", &mut errors);
        let profiling = profiling::read_profiling(SectionReader::new(
            "profiling",
            t,
            &env_keys,
            base_dir,
            &mut errors,
        ));
        // After [profiling]: `allow` may read answers, so it must know the question ids.
        let t = section("access", &mut errors);
        let ids: Option<Vec<String>> = profiling
            .as_ref()
            .map(|p| p.questions.iter().map(|q| q.id.clone()).collect());
        let is_question = |id: &str| ids.as_ref().is_none_or(|ids| ids.iter().any(|q| q == id));
        let policy = access::read_policy(
            SectionReader::new("access", t, &env_keys, base_dir, &mut errors),
            routes,
            &is_question,
        );
        let t = section("theme", &mut errors);
        let theme = theme::read_theme(SectionReader::new(
            "theme",
            t,
            &env_keys,
            base_dir,
            &mut errors,
        ));
        let t = section("admin", &mut errors);
        let admin = admin::read_admin(SectionReader::new(
            "admin",
            t,
            &env_keys,
            base_dir,
            &mut errors,
        ));

        match (
            server, upstream, oidc, session, store, log, profiling, theme, policy, admin,
        ) {
            (
                Some(server),
                Some(upstream),
                Some(oidc),
                Some(session),
                Some(store),
                Some(log),
                Some(profiling),
                Some(theme),
                Some(policy),
                Some(admin),
            ) if errors.is_empty() => Ok(Config {
                server,
                upstream,
                oidc,
                session,
                store,
                log,
                profiling,
                theme,
                policy,
                admin,
            }),
            _ => Err(ConfigErrors(errors)),
        }
    }
}

/// Folds `PROFILEGATE_<SECTION>_<KEY>` variables into the raw table; returns the dotted keys set.
fn apply_env(
    root: &mut Table,
    env: &(impl EnvSource + ?Sized),
    errors: &mut Vec<ConfigError>,
) -> EnvKeys {
    let mut keys = BTreeSet::new();
    let mut vars = env.profilegate_vars();
    vars.sort();
    for (name, value) in vars {
        let rest = &name["PROFILEGATE_".len()..];
        let Some((section, key)) = rest.split_once('_') else {
            errors.push(ConfigError::new(
                name.clone(),
                "expected PROFILEGATE_<SECTION>_<KEY>",
            ));
            continue;
        };
        let section = section.to_ascii_lowercase();
        let key = key.to_ascii_lowercase();
        if section == "routes" {
            errors.push(ConfigError::new(
                name.clone(),
                "[[routes]] cannot be set from the environment: write them in the file",
            ));
            continue;
        }
        if !SECTIONS.contains(&section.as_str()) || key.is_empty() {
            errors.push(ConfigError::new(
                name.clone(),
                format!("unknown section {section:?} in environment variable"),
            ));
            continue;
        }
        let entry = root
            .entry(section.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        if let Value::Table(t) = entry {
            // An inline value replaces a *_file form given in the file, and the reverse.
            let sibling = match key.strip_suffix("_file") {
                Some(base) => base.to_owned(),
                None => format!("{key}_file"),
            };
            t.remove(&sibling);
            t.insert(key.clone(), Value::String(value));
            keys.insert(format!("{section}.{key}"));
        }
    }
    keys
}

impl Config {
    /// Problems that stop neither `check` nor `run` but deserve a word (anything `run` refuses
    /// is an error of [`Config::load`] instead, so `check` and `run` agree).
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.server.public_url.is_https() {
            out.push("server.public_url is not https: session cookies are not marked Secure (fine on loopback, not in production)".into());
            if self.server.tls.is_some() {
                out.push("server.tls_cert_file is set but server.public_url is http://: users and the OP's redirects will use plain HTTP; give the https:// URL".into());
            }
        }
        if self.session.refresh && !self.oidc.scopes.iter().any(|s| s == "offline_access") {
            out.push("session.refresh is on but oidc.scopes lacks \"offline_access\": many OPs issue no refresh token without it, and a session with none is never refreshed (add the scope unless your OP issues refresh tokens by default)".into());
        }
        out
    }
}

#[cfg(test)]
mod access_tests;
#[cfg(test)]
mod profiling_tests;
#[cfg(test)]
mod session_tests;
#[cfg(test)]
mod tests;
