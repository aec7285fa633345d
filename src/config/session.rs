//! `[session]`: the secret that seals cookies, the session lifetime and cookie name
//! ([`SessionConfig`]), and the code that reads them.

use std::fmt;
use std::time::Duration;

use base64::Engine;

use super::reader::SectionReader;

#[derive(Clone)]
pub struct SessionConfig {
    /// `session.secret` or `session.secret_file`: at least 32 random bytes, base64. Required.
    pub secret: Vec<u8>,
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

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field("secret", &"<redacted>")
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
    let idle_timeout = r.duration(
        "idle_timeout",
        Duration::from_secs(60),
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
        secret: secret?,
        lifetime,
        cookie_name,
        idle_timeout,
        refresh,
        refresh_before,
        silent_reauth,
    })
}
