//! `[session]`: the secrets that seal cookies (a list, for rotation), the session lifetime,
//! timeouts and cookie name ([`SessionConfig`]), and the code that reads them.

use std::fmt;
use std::time::Duration;

use base64::Engine;

use super::reader::{env_var_name, SectionReader};

#[derive(Clone)]
pub struct SessionConfig {
    /// `session.secret` (one, or a list) or `session.secret_file` (one per line): each at least
    /// 32 random bytes, base64, at most [`MAX_SESSION_SECRETS`], no two alike. The first seals
    /// cookies and tokens; every one opens them (rotation). Required; never empty.
    pub secrets: Vec<Vec<u8>>,
    /// `session.lifetime`. Default `8h`.
    pub lifetime: Duration,
    /// `session.cookie_name`. Default `profilegate_session`.
    pub cookie_name: String,
    /// `session.idle_timeout`: a session with no request for this long is over. Default off
    /// (`None`).
    pub idle_timeout: Option<Duration>,
    /// `session.refresh`: refresh claims and groups at the OP with the refresh token before the
    /// ID token expires. Default `false`.
    pub refresh: bool,
    /// `session.refresh_before`: how long before the ID token's expiry a refresh is made.
    /// Default `60s`.
    pub refresh_before: Duration,
    /// `session.silent_reauth`: an expired session's navigation first tries `prompt=none` at
    /// the OP. Default `false`.
    pub silent_reauth: bool,
}

/// The placeholder secret of the shipped `config.toml` (base64-decoded): a configuration
/// error, so `check` refuses it as `run` would; the operator supplies a secret of their own.
pub const EXAMPLE_SESSION_SECRET: &[u8] = b"REPLACE-ME-with-openssl-rand-base64-32";

/// The most secrets `session.secret` may list: a cookie that does not open with the first is
/// tried with each of the others, so a forged cookie costs one attempt per secret.
pub const MAX_SESSION_SECRETS: usize = 8;

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field(
                "secrets",
                &format_args!("<{} redacted>", self.secrets.len()),
            )
            .field("lifetime", &self.lifetime)
            .field("cookie_name", &self.cookie_name)
            .field("idle_timeout", &self.idle_timeout)
            .field("refresh", &self.refresh)
            .field("refresh_before", &self.refresh_before)
            .field("silent_reauth", &self.silent_reauth)
            .finish()
    }
}

pub(super) fn read_session(mut r: SectionReader<'_>) -> Option<SessionConfig> {
    let secrets = read_secrets(&mut r);
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
    // At least 10 s (not a minute): short enough for end-to-end tests to wait out; anything
    // shorter would end a session between two clicks.
    let idle_timeout = r.duration(
        "idle_timeout",
        Duration::from_secs(10),
        Duration::from_secs(90 * 86_400),
    );
    let refresh = r.boolean("refresh").unwrap_or(false);
    let refresh_before = r
        .duration(
            "refresh_before",
            Duration::ZERO,
            Duration::from_secs(86_400),
        )
        .unwrap_or(Duration::from_secs(60));
    let silent_reauth = r.boolean("silent_reauth").unwrap_or(false);
    r.finish();
    Some(SessionConfig {
        secrets: secrets?,
        lifetime,
        cookie_name,
        idle_timeout,
        refresh,
        refresh_before,
        silent_reauth,
    })
}

/// One configured secret before decoding, with the key its errors name.
struct ListedSecret {
    /// Relative to the section: `secret`, `secret[1]`, `secret_file`.
    key: String,
    /// The line of `secret_file` it is on, when the file lists several.
    line: Option<usize>,
    text: String,
}

impl ListedSecret {
    /// What an error message starts with: the line, for a secret of a file listing several.
    fn at(&self) -> String {
        self.line.map(|n| format!("line {n}: ")).unwrap_or_default()
    }
}

/// `session.secret`: a string or an array of strings in the file; from
/// `PROFILEGATE_SESSION_SECRET`, secrets separated by commas or whitespace (base64 has
/// neither); from `session.secret_file`, one secret per non-empty line. Every secret is checked,
/// every error named by its key and index; `None` after any error.
fn read_secrets(r: &mut SectionReader<'_>) -> Option<Vec<Vec<u8>>> {
    const HOW: &str = "at least 32 random bytes, base64 (openssl rand -base64 32)";
    let (inline, file) = (r.has("secret"), r.has("secret_file"));
    let listed: Vec<ListedSecret> = match (inline, file) {
        (false, false) => {
            r.error("secret", format!("is required: {HOW}"));
            return None;
        }
        (true, true) => {
            r.value("secret");
            r.value("secret_file");
            r.error("secret", "give either secret or secret_file, not both");
            return None;
        }
        (true, false) => inline_secrets(r)?,
        (false, true) => {
            let text = r.secret("secret")?;
            let lines: Vec<(usize, &str)> = text
                .expose()
                .lines()
                .enumerate()
                .map(|(n, line)| (n + 1, line.trim()))
                .filter(|(_, line)| !line.is_empty())
                .collect();
            let many = lines.len() > 1;
            lines
                .into_iter()
                .map(|(n, line)| ListedSecret {
                    key: "secret_file".into(),
                    line: many.then_some(n),
                    text: line.to_owned(),
                })
                .collect()
        }
    };
    if listed.is_empty() {
        r.error(
            "secret",
            format!("lists no secret: give at least one, {HOW}"),
        );
        return None;
    }
    if listed.len() > MAX_SESSION_SECRETS {
        r.error(
            "secret",
            format!(
                "lists {} secrets; at most {MAX_SESSION_SECRETS} are allowed (drop the oldest \
                 once their sessions have ended)",
                listed.len()
            ),
        );
        return None;
    }
    let errors = r.error_count();
    let mut secrets: Vec<(Vec<u8>, &ListedSecret)> = Vec::with_capacity(listed.len());
    for entry in &listed {
        let Some(bytes) = decode_secret(r, entry) else {
            continue;
        };
        if let Some((_, earlier)) = secrets.iter().find(|(known, _)| *known == bytes) {
            let earlier = match earlier.line {
                Some(n) => format!("line {n}"),
                None => r.key(&earlier.key),
            };
            r.error(
                &entry.key,
                format!(
                    "{}is the same secret as {earlier}: list each secret once",
                    entry.at()
                ),
            );
            continue;
        }
        secrets.push((bytes, entry));
    }
    let secrets = secrets.into_iter().map(|(bytes, _)| bytes).collect();
    (r.error_count() == errors).then_some(secrets)
}

/// The secrets `session.secret` gives inline: one string, a string list from the environment,
/// or a TOML array.
fn inline_secrets(r: &mut SectionReader<'_>) -> Option<Vec<ListedSecret>> {
    let from_env = r.set_by_env("secret");
    let listed = |key: String, text: String| ListedSecret {
        key,
        line: None,
        text,
    };
    match r.value("secret")? {
        toml::Value::String(text) if from_env => {
            let parts: Vec<&str> = text
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|part| !part.is_empty())
                .collect();
            let many = parts.len() > 1;
            let env = env_var_name(&r.key("secret"));
            Some(
                parts
                    .into_iter()
                    .enumerate()
                    .map(|(i, part)| {
                        let key = match many {
                            true => format!("secret[{i}] (from {env})"),
                            false => "secret".to_owned(),
                        };
                        listed(key, part.to_owned())
                    })
                    .collect(),
            )
        }
        toml::Value::String(text) => Some(vec![listed("secret".into(), text)]),
        toml::Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            let mut typed = true;
            for (i, item) in items.into_iter().enumerate() {
                match item {
                    toml::Value::String(text) => out.push(listed(format!("secret[{i}]"), text)),
                    other => {
                        typed = false;
                        r.error(
                            &format!("secret[{i}]"),
                            format!("expected a string, found {}", other.type_str()),
                        );
                    }
                }
            }
            typed.then_some(out)
        }
        other => {
            r.error(
                "secret",
                format!(
                    "expected a string or a list of strings, found {}",
                    other.type_str()
                ),
            );
            None
        }
    }
}

/// One secret's bytes, or `None` after reporting why it is refused.
fn decode_secret(r: &mut SectionReader<'_>, entry: &ListedSecret) -> Option<Vec<u8>> {
    let raw = entry.text.trim();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .or_else(|_| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw.trim_end_matches('='))
        });
    let at = entry.at();
    match decoded {
        Ok(bytes) if bytes == EXAMPLE_SESSION_SECRET => {
            r.error(
                &entry.key,
                format!(
                    "{at}is the example placeholder from config.toml, which anyone can read: \
                     generate your own with `openssl rand -base64 32` (or use secret_file or \
                     PROFILEGATE_SESSION_SECRET)"
                ),
            );
            None
        }
        Ok(bytes) if bytes.len() >= 32 => Some(bytes),
        Ok(bytes) => {
            r.error(
                &entry.key,
                format!(
                    "{at}decodes to {} bytes; at least 32 are needed (openssl rand -base64 32)",
                    bytes.len()
                ),
            );
            None
        }
        Err(_) => {
            r.error(
                &entry.key,
                format!("{at}is not base64; generate one with: openssl rand -base64 32"),
            );
            None
        }
    }
}
