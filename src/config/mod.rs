//! Configuration: the TOML file (plus `PROFILEGATE_<SECTION>_<KEY>` environment overrides) is
//! read once at start-up into a validated [`Config`]. Every error is collected and reported at
//! once with its key; nothing downstream re-checks what this module guarantees.

mod hints;
pub mod postgres;
mod profiling;
mod reader;
mod theme;

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use ipnet::IpNet;
use toml::{Table, Value};
use url::Url;

use reader::{EnvKeys, SectionReader};

pub use profiling::{ProfilingConfig, QuestionUi};
pub use theme::{CssValue, FooterLink, ThemeConfig, TEMPLATE_NAMES};

/// The sections a configuration file may have.
const SECTIONS: &[&str] = &[
    "server",
    "upstream",
    "oidc",
    "session",
    "store",
    "log",
    "profiling",
    "theme",
];

/// A value that must never be printed: its `Debug` and `Display` are redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// One configuration problem, with the key it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Every problem found in one configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

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
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `server.listen`: public listener. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// `server.public_url`: the origin users see. Default `http://<listen>` when `listen` names
    /// a specific address.
    pub public_url: PublicUrl,
    /// `server.admin_listen`: health, readiness and metrics. Default `127.0.0.1:9091`.
    pub admin_listen: SocketAddr,
    /// `server.trusted_proxies`: CIDRs whose `X-Forwarded-*` headers are believed. Default none.
    pub trusted_proxies: Vec<IpNet>,
    /// `server.threads`: worker threads of the proxy. Default: the number of CPUs.
    pub threads: usize,
    /// `server.prefix`: where the proxy's own routes live. Default `/.profilegate`.
    pub prefix: String,
    /// `server.shutdown_timeout`: how long in-flight requests may finish at SIGTERM. Default `5s`.
    pub shutdown_timeout: Duration,
    /// `server.max_header_bytes`: longest request header line, counted as `name: value`
    /// (no CRLF); longer gets 431 before the session cookie is read. Default `16KiB`
    /// (1 KiB to 1 MiB, at most `max_request_head_bytes`).
    pub max_header_bytes: usize,
    /// `server.max_request_head_bytes`: largest request head (request line and all header
    /// lines, as received); larger gets 431 from the HTTP parser. Default `64KiB` (8 KiB to
    /// 1 MiB).
    pub max_request_head_bytes: usize,
}

/// Default of `server.max_header_bytes`.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;
/// Default of `server.max_request_head_bytes`.
pub const DEFAULT_MAX_REQUEST_HEAD_BYTES: usize = 64 * 1024;

/// The public origin, `scheme://host[:port]`, with no path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    url: Url,
    origin: String,
}

impl PublicUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if let Some(message) = hints::missing_scheme(raw) {
            return Err(message);
        }
        let url = Url::parse(raw).map_err(|e| format!("not a valid URL ({e})"))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err("must start with http:// or https://".into());
        }
        if url.host_str().is_none() {
            return Err("must name a host".into());
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err("must be an origin only (scheme, host, port), without a path".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not contain a user name or password".into());
        }
        let origin = url.origin().ascii_serialization();
        Ok(Self { url, origin })
    }
    /// `scheme://host[:port]`, without a trailing slash.
    pub fn origin(&self) -> &str {
        &self.origin
    }
    pub fn is_https(&self) -> bool {
        self.url.scheme() == "https"
    }
    pub fn url(&self) -> &Url {
        &self.url
    }
}

#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// `upstream.url`: the application behind the proxy. Required.
    pub url: Url,
    pub host: String,
    pub port: u16,
    pub tls: bool,
    /// `upstream.connect_timeout`. Default `5s`.
    pub connect_timeout: Duration,
    /// `upstream.read_timeout`: longest wait for the upstream's response head, and between reads
    /// of its body. Default `60s`.
    pub read_timeout: Duration,
    /// `upstream.header_case`: `"title"` (default) writes header names to the app and to the
    /// client in Title-Case (`X-Forwarded-User`); `"preserve"` keeps the spelling each side sent
    /// (the proxy's own headers then go lower-case), at some CPU per request.
    pub preserve_header_case: bool,
    /// `upstream.jwt_key_file` (or `upstream.jwt_key` inline): the PKCS#8 PEM private key
    /// (EC P-256) that signs `X-Profile-Jwt`; only its PEM label is checked here. Default none.
    pub jwt_key_pem: Option<Secret>,
    /// `upstream.jwt_lifetime`: how long an `X-Profile-Jwt` is valid, 30s to 1h. Default `5m`.
    pub jwt_lifetime: Duration,
}

#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// `oidc.issuer`: the OpenID Provider's issuer, used exactly as written (a trailing `/` or
    /// not) for discovery and every comparison (OpenID Connect Discovery §4.3). Required.
    pub issuer: String,
    /// `oidc.client_id`. Required.
    pub client_id: String,
    /// `oidc.client_secret` or `oidc.client_secret_file`. Required, except with
    /// `token_endpoint_auth = "private_key_jwt"`.
    pub client_secret: Option<Secret>,
    /// `oidc.token_endpoint_auth`: how the client authenticates at the token endpoint. Default:
    /// the first of `client_secret_basic`, `client_secret_post` that the OP's discovery lists
    /// (`client_secret_basic` when it lists none).
    pub token_endpoint_auth: Option<TokenEndpointAuth>,
    /// `oidc.client_key_file` (or `oidc.client_key`): the PKCS#8 PEM private key (RSA or EC
    /// P-256) that signs `private_key_jwt` assertions. Default none.
    pub client_key_pem: Option<Secret>,
    /// `oidc.client_key_id`: the `kid` of that key as registered at the OP. Default none.
    pub client_key_id: Option<String>,
    /// `oidc.scopes`. Default `["openid", "email", "profile"]`.
    pub scopes: Vec<String>,
    /// `oidc.timeout`: limit of one back-channel request to the OP. Default `10s`.
    pub timeout: Duration,
    /// `oidc.login_timeout`: how long a started login may take. Default `10m`.
    pub login_timeout: Duration,
    /// `oidc.signing_algs`: algorithms accepted for ID tokens and signed userinfo. Default
    /// RS256, PS256, ES256, EdDSA.
    pub signing_algs: Vec<String>,
}

/// Client authentication at the token endpoint (`oidc.token_endpoint_auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenEndpointAuth {
    /// HTTP Basic with the URL-encoded id and secret (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A JWT signed with `oidc.client_key_file` (RFC 7523, OpenID Connect Core §9).
    PrivateKeyJwt,
}

impl TokenEndpointAuth {
    /// The method's name in OAuth metadata (`token_endpoint_auth_methods_supported`).
    pub fn name(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }

    /// The method named `name`, if profilegate supports it.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::ClientSecretBasic,
            Self::ClientSecretPost,
            Self::PrivateKeyJwt,
        ]
        .into_iter()
        .find(|m| m.name() == name)
    }
}

#[derive(Clone)]
pub struct SessionConfig {
    /// `session.secret` or `session.secret_file`: at least 32 random bytes, base64. Required.
    pub secret: Vec<u8>,
    /// `session.lifetime`. Default `8h`.
    pub lifetime: Duration,
    /// `session.cookie_name`. Default `profilegate_session`.
    pub cookie_name: String,
}

/// The placeholder secret of the shipped `config.toml` (base64-decoded): a configuration
/// error, so `check` refuses it as `run` would; the operator supplies a secret of their own.
pub const EXAMPLE_SESSION_SECRET: &[u8] = b"REPLACE-ME-with-openssl-rand-base64-32";

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field("secret", &"<redacted>")
            .field("lifetime", &self.lifetime)
            .field("cookie_name", &self.cookie_name)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `store.backend` and what it needs.
    pub backend: StoreBackend,
    /// `store.profile_cache_users`: how many users' profiles (with their `X-Profile-*` headers
    /// and last JWT, under 1 KiB each) the signed-in hot path keeps in memory; a miss reads the
    /// store. 0 turns the cache off. Default 10,000.
    pub profile_cache_users: usize,
}

/// The default of `store.profile_cache_users`.
pub const DEFAULT_PROFILE_CACHE_USERS: usize = 10_000;
/// The default of `store.cache_size`: sled's page cache.
pub const DEFAULT_STORE_CACHE_SIZE: u64 = 16 * 1024 * 1024;

#[derive(Debug, Clone)]
pub enum StoreBackend {
    /// `store.backend = "sled"` (default) with `store.path` (default `data/profilegate`) and
    /// `store.cache_size` (sled's page cache in bytes, 1 MiB to 64 GiB; default 16 MiB).
    Sled { path: PathBuf, cache_size: u64 },
    /// `store.backend = "postgres"` with `store.url` (or `store.url_file`) and, for
    /// `sslmode=require`, `store.tls_ca_file` (read at load: the PEM of the certificates that may
    /// sign the server's; without it, the Mozilla roots of `webpki-roots`).
    Postgres {
        url: Secret,
        tls_ca_pem: Option<Vec<u8>>,
    },
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    /// `log.level`: a filter such as `info` or `profilegate=debug,info`. Default `info`.
    pub level: String,
    /// `log.format`: `json` (default) or `text`.
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
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
        let server = read_server(SectionReader::new(
            "server",
            t,
            &env_keys,
            base_dir,
            &mut errors,
        ));
        let t = section("upstream", &mut errors);
        let upstream = read_upstream(SectionReader::new(
            "upstream",
            t,
            &env_keys,
            base_dir,
            &mut errors,
        ));
        let t = section("oidc", &mut errors);
        let oidc = read_oidc(SectionReader::new(
            "oidc",
            t,
            &env_keys,
            base_dir,
            &mut errors,
        ));
        let t = section("session", &mut errors);
        let session = read_session(SectionReader::new(
            "session",
            t,
            &env_keys,
            base_dir,
            &mut errors,
        ));
        let t = section("store", &mut errors);
        let store = read_store(SectionReader::new(
            "store",
            t,
            &env_keys,
            base_dir,
            &mut errors,
        ));
        let t = section("log", &mut errors);
        let log = read_log(SectionReader::new(
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
        let t = section("theme", &mut errors);
        let theme = theme::read_theme(SectionReader::new(
            "theme",
            t,
            &env_keys,
            base_dir,
            &mut errors,
        ));

        match (
            server, upstream, oidc, session, store, log, profiling, theme,
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
            ) if errors.is_empty() => Ok(Config {
                server,
                upstream,
                oidc,
                session,
                store,
                log,
                profiling,
                theme,
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

fn read_server(mut r: SectionReader<'_>) -> Option<ServerConfig> {
    let listen = socket_addr(&mut r, "listen", "127.0.0.1:8080");
    let admin_listen = socket_addr(&mut r, "admin_listen", "127.0.0.1:9091");
    let public_url = match r.string("public_url") {
        Some(raw) => match PublicUrl::parse(raw.trim()) {
            Ok(u) => Some(u),
            Err(msg) => {
                r.error("public_url", msg);
                None
            }
        },
        None => match listen {
            Some(addr) if !addr.ip().is_unspecified() => {
                PublicUrl::parse(&format!("http://{addr}")).ok()
            }
            Some(_) => {
                r.error(
                    "public_url",
                    "is required when server.listen is 0.0.0.0 or [::]: give the URL users open",
                );
                None
            }
            None => None,
        },
    };
    let mut trusted_proxies = Vec::new();
    for (i, raw) in r
        .string_list("trusted_proxies")
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let parsed = raw
            .parse::<IpNet>()
            .or_else(|_| raw.parse::<IpAddr>().map(IpNet::from));
        match parsed {
            Ok(net) => trusted_proxies.push(net),
            Err(_) => r.error(
                &format!("trusted_proxies[{i}]"),
                format!("{raw:?} is not an IP address or CIDR such as 10.0.0.0/8"),
            ),
        }
    }
    let default_threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let threads = r
        .integer_in("threads", 1, 256)
        .map_or(default_threads, |t| t as usize);
    let prefix = r.string("prefix").unwrap_or_else(|| "/.profilegate".into());
    let prefix_ok = prefix.starts_with('/')
        && prefix.len() > 1
        && !prefix.ends_with('/')
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-~".contains(&b));
    if !prefix_ok {
        r.error(
            "prefix",
            "must start with / and not end with it, using letters, digits, . _ - ~ and /",
        );
    }
    let shutdown_timeout = r
        .duration("shutdown_timeout", Duration::ZERO, Duration::from_secs(600))
        .unwrap_or(Duration::from_secs(5));
    // The head limit is hyper's `max_header_size`; hyper's read buffer (1 MiB) bounds it.
    let max_request_head_bytes = r
        .byte_size("max_request_head_bytes", 8 << 10, 1 << 20)
        .map_or(DEFAULT_MAX_REQUEST_HEAD_BYTES, |b| b as usize);
    let max_header_bytes = r
        .byte_size("max_header_bytes", 1 << 10, 1 << 20)
        .map_or(DEFAULT_MAX_HEADER_BYTES, |b| b as usize);
    if max_header_bytes > max_request_head_bytes {
        r.error(
            "max_header_bytes",
            format!(
                "must not exceed server.max_request_head_bytes ({max_request_head_bytes} bytes): one line is part of the head, found {max_header_bytes} bytes"
            ),
        );
    }
    if let (Some(l), Some(a)) = (listen, admin_listen) {
        if l == a {
            r.error(
                "admin_listen",
                "must differ from server.listen: admin is never on the public port",
            );
        }
    }
    r.finish();
    Some(ServerConfig {
        listen: listen?,
        public_url: public_url?,
        admin_listen: admin_listen?,
        trusted_proxies,
        threads,
        prefix,
        shutdown_timeout,
        max_header_bytes,
        max_request_head_bytes,
    })
}

fn socket_addr(r: &mut SectionReader<'_>, key: &str, default: &str) -> Option<SocketAddr> {
    let raw = r.string(key).unwrap_or_else(|| default.to_owned());
    match raw.trim().parse() {
        Ok(a) => Some(a),
        Err(_) => {
            r.error(
                key,
                format!("{raw:?} is not an address such as 127.0.0.1:8080"),
            );
            None
        }
    }
}

fn http_url(r: &mut SectionReader<'_>, key: &str, raw: &str) -> Option<Url> {
    if let Some(message) = hints::missing_scheme(raw) {
        r.error(key, message);
        return None;
    }
    match Url::parse(raw.trim()) {
        Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host_str().is_some() => {
            Some(u)
        }
        Ok(_) => {
            r.error(key, "must be an http:// or https:// URL with a host");
            None
        }
        Err(e) => {
            r.error(key, format!("not a valid URL ({e})"));
            None
        }
    }
}

fn read_upstream(mut r: SectionReader<'_>) -> Option<UpstreamConfig> {
    let url = r.required_string("url");
    let url = url.and_then(|raw| http_url(&mut r, "url", &raw));
    if let Some(u) = &url {
        if u.path() != "/" || u.query().is_some() {
            r.error(
                "url",
                "must not have a path or query: requests keep their own path",
            );
        }
    }
    let connect_timeout = r
        .duration(
            "connect_timeout",
            Duration::from_millis(10),
            Duration::from_secs(300),
        )
        .unwrap_or(Duration::from_secs(5));
    let read_timeout = r
        .duration(
            "read_timeout",
            Duration::from_millis(10),
            Duration::from_secs(86_400),
        )
        .unwrap_or(Duration::from_secs(60));
    let preserve_header_case = match r.string("header_case").as_deref() {
        None | Some("title") => false,
        Some("preserve") => true,
        Some(other) => {
            r.error(
                "header_case",
                format!("{other:?} is not a header spelling; use \"title\" or \"preserve\""),
            );
            false
        }
    };
    let jwt_key_pem = read_jwt_key(&mut r);
    let jwt_lifetime = r
        .duration(
            "jwt_lifetime",
            Duration::from_secs(30),
            Duration::from_secs(3600),
        )
        .unwrap_or(Duration::from_secs(300));
    r.finish();
    let url = url?;
    let host = url
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url.port_or_known_default()?;
    Some(UpstreamConfig {
        tls: url.scheme() == "https",
        host,
        port,
        url,
        connect_timeout,
        read_timeout,
        preserve_header_case,
        jwt_key_pem,
        jwt_lifetime,
    })
}

/// `upstream.jwt_key_file` / `upstream.jwt_key`: read now so a wrong path fails `check`; the
/// key itself is parsed by the signer.
fn read_jwt_key(r: &mut SectionReader<'_>) -> Option<Secret> {
    let key = if r.has("jwt_key_file") {
        "jwt_key_file"
    } else {
        "jwt_key"
    };
    let pem = r.secret("jwt_key")?;
    if pem.expose().contains("-----BEGIN PRIVATE KEY-----") {
        return Some(pem);
    }
    r.error(
        key,
        "is not a PKCS#8 PEM private key (-----BEGIN PRIVATE KEY-----); convert an EC key with \
         `openssl pkcs8 -topk8 -nocrypt -in ec.pem -out key.pem`",
    );
    None
}

/// ID-token algorithms profilegate can verify; `none` and the HMAC family are never accepted.
pub const SUPPORTED_SIGNING_ALGS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

fn read_oidc(mut r: SectionReader<'_>) -> Option<OidcConfig> {
    let issuer = r.required_string("issuer");
    let issuer = issuer.and_then(|raw| issuer_url(&mut r, raw));
    let client_id = r.required_string("client_id");
    let token_endpoint_auth = r.string("token_endpoint_auth").and_then(|name| {
        let method = TokenEndpointAuth::from_name(&name);
        if method.is_none() {
            r.error(
                "token_endpoint_auth",
                format!(
                    "{name:?} is not supported; choose client_secret_basic, client_secret_post \
                     or private_key_jwt (or leave it out to follow the OP's discovery)"
                ),
            );
        }
        method
    });
    let key_auth = token_endpoint_auth == Some(TokenEndpointAuth::PrivateKeyJwt);
    let has_secret = r.has_secret("client_secret");
    let client_secret = r.secret("client_secret");
    if !has_secret && !key_auth {
        r.error(
            "client_secret",
            "is required (or client_secret_file, or PROFILEGATE_OIDC_CLIENT_SECRET), unless \
             token_endpoint_auth = \"private_key_jwt\"",
        );
    }
    let client_key_given = r.has_secret("client_key");
    let client_key_pem = read_client_key(&mut r);
    if key_auth && !client_key_given {
        r.error(
            "client_key_file",
            "is required with token_endpoint_auth = \"private_key_jwt\" (a PKCS#8 PEM key)",
        );
    }
    if client_key_given && !key_auth {
        r.error(
            "client_key_file",
            "is only used with token_endpoint_auth = \"private_key_jwt\"; set that too, or \
             remove the key",
        );
    }
    let client_key_id = r.string("client_key_id");
    let scopes = r
        .string_list("scopes")
        .unwrap_or_else(|| vec!["openid".into(), "email".into(), "profile".into()]);
    if !scopes.iter().any(|s| s == "openid") {
        r.error("scopes", "must include \"openid\"");
    }
    if let Some(bad) = scopes
        .iter()
        .find(|s| s.is_empty() || s.bytes().any(|b| b <= b' ' || b == b'"' || b == b'\\'))
    {
        r.error("scopes", format!("{bad:?} is not a valid scope"));
    }
    let timeout = r
        .duration(
            "timeout",
            Duration::from_millis(100),
            Duration::from_secs(120),
        )
        .unwrap_or(Duration::from_secs(10));
    let login_timeout = r
        .duration(
            "login_timeout",
            Duration::from_secs(30),
            Duration::from_secs(3600),
        )
        .unwrap_or(Duration::from_secs(600));
    let signing_algs = r.string_list("signing_algs").unwrap_or_else(|| {
        ["RS256", "PS256", "ES256", "EdDSA"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    });
    for alg in &signing_algs {
        if !SUPPORTED_SIGNING_ALGS.contains(&alg.as_str()) {
            r.error(
                "signing_algs",
                format!(
                    "{alg:?} is not accepted; choose from {}",
                    SUPPORTED_SIGNING_ALGS.join(", ")
                ),
            );
        }
    }
    if signing_algs.is_empty() {
        r.error("signing_algs", "must name at least one algorithm");
    }
    r.finish();
    Some(OidcConfig {
        issuer: issuer?,
        client_id: client_id?,
        client_secret,
        token_endpoint_auth,
        client_key_pem,
        client_key_id,
        scopes,
        timeout,
        login_timeout,
        signing_algs,
    })
}

/// `oidc.issuer`: an http(s) URL with a host and without query or fragment (Discovery §2),
/// kept exactly as written: `Url` would add a `/` to an empty path, and the OP's metadata must
/// name the very same string.
fn issuer_url(r: &mut SectionReader<'_>, raw: String) -> Option<String> {
    let url = http_url(r, "issuer", &raw)?;
    if url.query().is_some() || url.fragment().is_some() {
        r.error("issuer", "must not have a query or a fragment");
        return None;
    }
    if raw != raw.trim() {
        r.error(
            "issuer",
            "has spaces around it: the issuer is compared exactly",
        );
        return None;
    }
    Some(raw)
}

/// `oidc.client_key_file` / `oidc.client_key`: read now so a wrong path fails `check`; the key
/// itself is parsed when the provider is built (its type decides the assertion's algorithm).
fn read_client_key(r: &mut SectionReader<'_>) -> Option<Secret> {
    let key = if r.has("client_key_file") {
        "client_key_file"
    } else {
        "client_key"
    };
    let pem = r.secret("client_key")?;
    if pem.expose().contains("-----BEGIN PRIVATE KEY-----") {
        return Some(pem);
    }
    r.error(
        key,
        "is not a PKCS#8 PEM private key (-----BEGIN PRIVATE KEY-----); convert one with \
         `openssl pkcs8 -topk8 -nocrypt -in key.pem -out client-key.pem`",
    );
    None
}

fn read_session(mut r: SectionReader<'_>) -> Option<SessionConfig> {
    let has_secret = r.has_secret("secret");
    let secret = r.secret("secret");
    if !has_secret {
        r.error(
            "secret",
            "is required: at least 32 random bytes, base64 (openssl rand -base64 32)",
        );
    }
    let secret = secret.and_then(|s| {
        let raw = s.expose().trim();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(raw)
            .or_else(|_| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw.trim_end_matches('='))
            });
        match decoded {
            Ok(bytes) if bytes == EXAMPLE_SESSION_SECRET => {
                r.error(
                    "secret",
                    "is the example placeholder from config.toml, which anyone can read: \
                     generate your own with `openssl rand -base64 32` (or use secret_file or \
                     PROFILEGATE_SESSION_SECRET)",
                );
                None
            }
            Ok(bytes) if bytes.len() >= 32 => Some(bytes),
            Ok(bytes) => {
                r.error(
                    "secret",
                    format!(
                        "decodes to {} bytes; at least 32 are needed (openssl rand -base64 32)",
                        bytes.len()
                    ),
                );
                None
            }
            Err(_) => {
                r.error(
                    "secret",
                    "is not base64; generate one with: openssl rand -base64 32",
                );
                None
            }
        }
    });
    let lifetime = r
        .duration(
            "lifetime",
            Duration::from_secs(60),
            Duration::from_secs(90 * 86_400),
        )
        .unwrap_or(Duration::from_secs(8 * 3600));
    let cookie_name = r
        .string("cookie_name")
        .unwrap_or_else(|| "profilegate_session".into());
    if cookie_name.is_empty()
        || !cookie_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b))
    {
        r.error("cookie_name", "must use only letters, digits, _ and -");
    }
    r.finish();
    Some(SessionConfig {
        secret: secret?,
        lifetime,
        cookie_name,
    })
}

fn read_store(mut r: SectionReader<'_>) -> Option<StoreConfig> {
    let backend = r.string("backend").unwrap_or_else(|| "sled".into());
    let profile_cache_users = r
        .integer_in("profile_cache_users", 0, 10_000_000)
        .map_or(DEFAULT_PROFILE_CACHE_USERS, |n| n as usize);
    let store = match backend.as_str() {
        "sled" => {
            let path = r
                .string("path")
                .unwrap_or_else(|| "data/profilegate".into());
            let cache_size = r
                .byte_size("cache_size", 1 << 20, 64 << 30)
                .unwrap_or(DEFAULT_STORE_CACHE_SIZE);
            if r.has_secret("url") {
                r.error("url", "is for backend = \"postgres\"; sled uses store.path");
                r.secret("url");
            }
            if r.has("tls_ca_file") {
                r.error("tls_ca_file", "is for backend = \"postgres\"");
                r.value("tls_ca_file");
            }
            Some(StoreBackend::Sled {
                path: r.path_from(path),
                cache_size,
            })
        }
        "postgres" => {
            for key in ["path", "cache_size"] {
                if r.has(key) {
                    r.error(key, "is for backend = \"sled\"; postgres uses store.url");
                    r.value(key);
                }
            }
            let tls_ca_pem = r.string("tls_ca_file").and_then(|raw| {
                let path = r.path_from(raw);
                match std::fs::read(&path) {
                    Ok(pem) => match postgres::parse_ca(&pem) {
                        Ok(_) => Some(pem),
                        Err(why) => {
                            r.error("tls_ca_file", format!("{}: {why}", path.display()));
                            None
                        }
                    },
                    Err(e) => {
                        r.error(
                            "tls_ca_file",
                            format!("cannot read {}: {e}", path.display()),
                        );
                        None
                    }
                }
            });
            let has_url = r.has_secret("url");
            let url = r.secret("url");
            if !has_url {
                r.error(
                    "url",
                    "is required for backend = \"postgres\" (or url_file)",
                );
            }
            match url {
                Some(u)
                    if u.expose().starts_with("postgres://")
                        || u.expose().starts_with("postgresql://") =>
                {
                    match postgres::parse_url(u.expose()) {
                        Ok(pg)
                            if tls_ca_pem.is_some()
                                && pg.get_ssl_mode()
                                    != tokio_postgres::config::SslMode::Require =>
                        {
                            r.error(
                                "tls_ca_file",
                                "is only used with TLS: add sslmode=require to store.url",
                            );
                            None
                        }
                        Ok(_) => Some(StoreBackend::Postgres { url: u, tls_ca_pem }),
                        Err(why) => {
                            r.error("url", &why);
                            None
                        }
                    }
                }
                Some(_) => {
                    r.error("url", "must start with postgres:// or postgresql://");
                    None
                }
                None => None,
            }
        }
        other => {
            r.error(
                "backend",
                format!("{other:?} is not a store; use \"sled\" or \"postgres\""),
            );
            r.string("path");
            r.value("cache_size");
            r.secret("url");
            None
        }
    };
    r.finish();
    Some(StoreConfig {
        backend: store?,
        profile_cache_users,
    })
}

fn read_log(mut r: SectionReader<'_>) -> Option<LogConfig> {
    let level = r.string("level").unwrap_or_else(|| "info".into());
    if tracing_subscriber::EnvFilter::try_new(&level).is_err() {
        r.error(
            "level",
            format!("{level:?} is not a log filter such as \"info\" or \"profilegate=debug\""),
        );
    }
    let format = match r.string("format").as_deref() {
        None | Some("json") => LogFormat::Json,
        Some("text") => LogFormat::Text,
        Some(other) => {
            r.error(
                "format",
                format!("{other:?} is not a log format; use \"json\" or \"text\""),
            );
            LogFormat::Json
        }
    };
    r.finish();
    Some(LogConfig { level, format })
}

impl Config {
    /// Problems that stop neither `check` nor `run` but deserve a word (anything `run` refuses
    /// is an error of [`Config::load`] instead, so `check` and `run` agree).
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.server.public_url.is_https() {
            out.push("server.public_url is not https: session cookies are not marked Secure (fine on loopback, not in production)".into());
        }
        out
    }
}

#[cfg(test)]
mod profiling_tests;
#[cfg(test)]
mod tests;
