//! Hints added to configuration errors for the mistakes a newcomer makes most: a misspelt key
//! (`did you mean`) and a URL written without its scheme (`localhost:3000`).

use std::net::IpAddr;

/// The closest of `known` to `word`, when it is close enough to be a typo: at most two edits
/// (insert, delete, substitute, swap two neighbours), and fewer for short words, so `x` does not
/// suggest `tls`.
pub(super) fn did_you_mean<'a>(
    word: &str,
    known: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    let limit = match word.chars().count() {
        0..=2 => 0,
        3..=5 => 1,
        _ => 2,
    };
    known
        .into_iter()
        .map(|k| (edit_distance(&word, &k.to_ascii_lowercase()), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// `unknown key` with a suggestion when one of `known` is close.
pub(super) fn unknown(what: &str, word: &str, known: &[&str]) -> String {
    match did_you_mean(word, known.iter().copied()) {
        Some(close) => format!("{what}; did you mean `{close}`?"),
        None => what.to_owned(),
    }
}

/// Optimal string alignment distance (Damerau–Levenshtein without repeated edits of a
/// substring): a swapped pair of letters, the commonest typo, counts as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows of the dynamic-programming table: two back (for swaps), one back, current.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut current = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            current[j] = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                current[j] = current[j].min(before[j - 2] + 1);
            }
        }
        before = std::mem::replace(&mut previous, current);
    }
    previous[b.len()]
}

/// When `raw` is a host and port (or a host and path) written without `http://` or
/// `https://`, the message that says so and shows the fixed value; `None` otherwise.
///
/// `localhost:3000` parses as a URL whose scheme is `localhost`, and `127.0.0.1:3000` or
/// `idp.example.com/realms/x` do not parse at all: both deserve better than "not a valid URL".
pub(super) fn missing_scheme(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() || raw.contains("://") {
        return None;
    }
    let authority = raw.split(['/', '?', '#']).next().unwrap_or(raw);
    let host = match authority.rsplit_once(':') {
        // `[::1]:3000`, `localhost:3000`
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        Some(_) if authority.starts_with('[') && authority.ends_with(']') => authority,
        // `mailto:x`, `localhost:abc`: a scheme of some other kind, or no host at all.
        Some(_) => return None,
        None => authority,
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let is_ip = bare.parse::<IpAddr>().is_ok();
    let is_name = !bare.is_empty()
        && bare
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        && (bare.contains('.') || bare.eq_ignore_ascii_case("localhost") || authority != host);
    if !is_ip && !is_name {
        return None;
    }
    // Plain http where it is usual (this machine, a private address, a one-label name such as
    // a container's or a Kubernetes service's), https elsewhere.
    let local = (!is_ip && !bare.contains('.'))
        || bare.parse::<IpAddr>().is_ok_and(|ip| match ip {
            IpAddr::V4(v4) => v4.is_loopback() || v4.is_private(),
            IpAddr::V6(v6) => v6.is_loopback(),
        });
    let scheme = if local { "http" } else { "https" };
    Some(format!("the scheme is missing: write {scheme}://{raw}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_close_key_is_suggested_and_a_distant_one_is_not() {
        let oidc = [
            "issuer",
            "client_id",
            "client_secret",
            "client_secret_file",
            "scopes",
        ];
        for (typed, expected) in [
            ("client_secert", Some("client_secret")), // swapped letters: one edit
            ("clientsecret", Some("client_secret")),  // one missing character
            ("client-secret", Some("client_secret")), // one wrong character
            ("Client_Secret", Some("client_secret")), // case is not an edit
            ("clinet_secrte", Some("client_secret")), // two swaps
            ("issuer_url", None),                     // four characters added
            ("scope", Some("scopes")),
            ("secret", None),
            ("x", None),
            ("colour", None),
        ] {
            assert_eq!(did_you_mean(typed, oidc), expected, "{typed}");
        }
    }

    #[test]
    fn short_words_only_get_one_edit() {
        let upstream = ["url", "tls", "connect_timeout"];
        assert_eq!(did_you_mean("uri", upstream), Some("url"));
        assert_eq!(did_you_mean("ur", upstream), None);
        assert_eq!(did_you_mean("tsl", upstream), Some("tls"));
        assert_eq!(did_you_mean("abc", upstream), None);
    }

    #[test]
    fn unknown_names_the_suggestion_in_backquotes() {
        assert_eq!(
            unknown("unknown key", "client_secert", &["client_secret"]),
            "unknown key; did you mean `client_secret`?"
        );
        assert_eq!(
            unknown("unknown section", "sesion", &["server", "session"]),
            "unknown section; did you mean `session`?"
        );
        assert_eq!(unknown("unknown key", "colour", &["listen"]), "unknown key");
    }

    #[test]
    fn edit_distance_counts_a_swap_as_one() {
        for (a, b, d) in [
            ("", "", 0),
            ("abc", "", 3),
            ("", "abc", 3),
            ("abc", "abc", 0),
            ("abc", "acb", 1),
            ("abc", "abd", 1),
            ("abc", "abcd", 1),
            ("kitten", "sitting", 3),
            ("ca", "abc", 3), // optimal string alignment, not full Damerau–Levenshtein
        ] {
            assert_eq!(edit_distance(a, b), d, "{a:?} {b:?}");
        }
    }

    #[test]
    fn a_host_and_port_without_scheme_is_named_with_the_fix() {
        for (raw, expected) in [
            (
                "localhost:3000",
                Some("the scheme is missing: write http://localhost:3000"),
            ),
            (
                "127.0.0.1:3000",
                Some("the scheme is missing: write http://127.0.0.1:3000"),
            ),
            (
                "[::1]:8080",
                Some("the scheme is missing: write http://[::1]:8080"),
            ),
            (
                "10.0.0.5:8080",
                Some("the scheme is missing: write http://10.0.0.5:8080"),
            ),
            (
                "idp.example.com/realms/acme",
                Some("the scheme is missing: write https://idp.example.com/realms/acme"),
            ),
            (
                "app.internal:8443",
                Some("the scheme is missing: write https://app.internal:8443"),
            ),
            (
                "localhost",
                Some("the scheme is missing: write http://localhost"),
            ),
            (
                "app:3000",
                Some("the scheme is missing: write http://app:3000"),
            ),
            ("http://localhost:3000", None),
            ("ftp://example.com", None),
            ("mailto:someone", None),
            ("not a url", None),
            ("", None),
            ("just-a-word", None),
        ] {
            assert_eq!(missing_scheme(raw).as_deref(), expected, "{raw}");
        }
    }
}
