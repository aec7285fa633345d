//! `[admin]`: who may use the admin API on the admin listener ([`AdminConfig`]): the bearer
//! tokens of `admin.token_file`, each with the name that audit lines give as "who".

use std::fmt;

use super::reader::SectionReader;
use super::secret::Secret;

/// The shortest token accepted: 128 bits of base64 or hex is 22–32 characters.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 24;

/// `[admin]`. Without `token_file` (or `token`) the admin API is off.
#[derive(Clone, Default)]
pub struct AdminConfig {
    /// The tokens of `admin.token_file` (or `admin.token`, or `PROFILEGATE_ADMIN_TOKEN`): one per
    /// line, `NAME:TOKEN` or a bare `TOKEN` (named `admin`); `#` starts a comment line.
    pub tokens: Vec<AdminToken>,
}

/// One admin bearer token and the name audit lines log for it.
#[derive(Clone)]
pub struct AdminToken {
    pub name: String,
    pub secret: Secret,
}

impl AdminConfig {
    /// Whether the admin API is on (some token is configured).
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }
}

impl fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.tokens.iter().map(|t| t.name.as_str()).collect();
        f.debug_struct("AdminConfig")
            .field("tokens", &format_args!("{names:?} (secrets redacted)"))
            .finish()
    }
}

pub(super) fn read_admin(mut r: SectionReader<'_>) -> Option<AdminConfig> {
    let text = r.secret("token");
    let mut tokens: Vec<AdminToken> = Vec::new();
    let mut ok = true;
    if let Some(text) = text {
        for (n, line) in text.expose().lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, token) = match line.split_once(':') {
                Some((name, token)) => (name.trim(), token.trim()),
                None => ("admin", line),
            };
            let problem = if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.@".contains(&b))
            {
                Some("the name before ':' must be letters, digits, _ - . or @".to_owned())
            } else if token.chars().count() < MIN_ADMIN_TOKEN_CHARS {
                Some(format!(
                    "the token of {name:?} has {} characters; at least {MIN_ADMIN_TOKEN_CHARS} \
                     are needed (openssl rand -base64 32)",
                    token.chars().count()
                ))
            } else if tokens.iter().any(|t| t.name == name) {
                Some(format!("the name {name:?} is given twice"))
            } else {
                None
            };
            match problem {
                // The line number only: the line holds a secret.
                Some(why) => {
                    r.error("token_file", format!("line {}: {why}", n + 1));
                    ok = false;
                }
                None => tokens.push(AdminToken {
                    name: name.to_owned(),
                    secret: Secret::new(token.to_owned()),
                }),
            }
        }
        if ok && tokens.is_empty() {
            r.error("token_file", "holds no token (one `NAME:TOKEN` per line)");
            ok = false;
        }
    }
    r.finish();
    ok.then_some(AdminConfig { tokens })
}
