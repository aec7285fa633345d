//! [`RequestCookies`]: the cookies of one request, bounded in count and size, read by the
//! sealer ([`super::CookieSealer`]) and by the proxy when it strips its own cookies.

/// Cookies longer than this are ignored unread (a sealed session is well under 1 KiB).
pub(super) const MAX_COOKIE_VALUE: usize = 4096;
/// At most this many cookies of one request are looked at.
pub(super) const MAX_COOKIES: usize = 64;

/// The cookies of one request, parsed lazily from its `Cookie` headers and bounded in count
/// and size.
pub struct RequestCookies<'a> {
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> RequestCookies<'a> {
    pub fn parse<I: IntoIterator<Item = &'a [u8]>>(headers: I) -> Self {
        let mut pairs = Vec::new();
        for header in headers {
            let Ok(text) = std::str::from_utf8(header) else {
                continue;
            };
            for part in text.split(';') {
                if pairs.len() >= MAX_COOKIES {
                    return Self { pairs };
                }
                let Some((name, value)) = part.split_once('=') else {
                    continue;
                };
                let (name, value) = (name.trim(), value.trim().trim_matches('"'));
                if !name.is_empty() && value.len() <= MAX_COOKIE_VALUE {
                    pairs.push((name, value));
                }
            }
        }
        Self { pairs }
    }

    /// The first cookie called `name`.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        self.pairs.iter().copied()
    }
}
