//! The key a user's record is stored under ([`UserKey`]: issuer + subject), its byte form and
//! its escaped display for messages. At the bottom of the store: every other part uses it.

use std::fmt;

/// The key of a user's record: the OP's issuer and the subject it gave the user.
///
/// Subjects are opaque: any string, NUL and non-ASCII included, is a distinct user.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserKey {
    pub issuer: String,
    pub subject: String,
}

impl UserKey {
    pub fn new(issuer: impl Into<String>, subject: impl Into<String>) -> Self {
        UserKey {
            issuer: issuer.into(),
            subject: subject.into(),
        }
    }

    /// The bytes the record is stored under: the issuer's length (4 bytes, big-endian), the
    /// issuer, then the subject. The explicit length makes the split unambiguous whatever bytes
    /// either part holds, and keeps one issuer's users next to each other for scans.
    pub fn storage_key(&self) -> Vec<u8> {
        let issuer = self.issuer.as_bytes();
        // An issuer is a URL from the configuration; 4 GiB would not fit in memory anyway.
        let len = u32::try_from(issuer.len()).unwrap_or(u32::MAX);
        let mut key = Vec::with_capacity(4 + issuer.len() + self.subject.len());
        key.extend_from_slice(&len.to_be_bytes());
        key.extend_from_slice(issuer);
        key.extend_from_slice(self.subject.as_bytes());
        key
    }

    /// The inverse of [`UserKey::storage_key`]; `None` for bytes it cannot have produced.
    pub fn from_storage_key(key: &[u8]) -> Option<UserKey> {
        let (len, rest) = key.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
        if rest.len() < len {
            return None;
        }
        let (issuer, subject) = rest.split_at(len);
        Some(UserKey {
            issuer: String::from_utf8(issuer.to_vec()).ok()?,
            subject: String::from_utf8(subject.to_vec()).ok()?,
        })
    }
}

/// A short, escaped description for error messages and logs: control characters are escaped and
/// long parts shortened, so a hostile subject cannot forge log lines or flood them.
impl fmt::Display for UserKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "subject {} of issuer {}",
            shorten(&self.subject),
            shorten(&self.issuer)
        )
    }
}

fn shorten(s: &str) -> String {
    const MAX_CHARS: usize = 64;
    let mut out: String = s.chars().take(MAX_CHARS).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    format!("{out:?}")
}
