//! A question's `pattern`: a regular expression the whole answer must match, and when it can
//! be handed to browsers too.

use regex::{Regex, RegexBuilder};

/// A regular expression an answer must match as a whole.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    whole: Regex,
}

/// Why a `pattern` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("is not a valid regular expression: {0}")]
    Invalid(String),
    #[error("cannot be anchored to the whole answer (a trailing (?x) comment?)")]
    Unanchorable,
}

impl Pattern {
    /// Compiles `source` so that it must match the whole answer, as HTML's `pattern` does.
    /// The `regex` crate matches in linear time: no pattern can stall the server.
    pub fn new(source: &str) -> Result<Self, PatternError> {
        let build = |s: &str| RegexBuilder::new(s).size_limit(1 << 20).build();
        // Compiled alone first: an unbalanced source such as `a)|(b` would otherwise escape
        // the anchoring group below.
        build(source).map_err(|e| PatternError::Invalid(regex_error_summary(&e)))?;
        let whole = build(&format!("^(?:{source})$")).map_err(|_| PatternError::Unanchorable)?;
        Ok(Self {
            source: source.to_owned(),
            whole,
        })
    }

    /// The expression as configured.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when `value` as a whole matches.
    pub fn matches(&self, value: &str) -> bool {
        self.whole.is_match(value)
    }

    /// The source for an HTML `pattern` attribute, when a browser would read it the same way.
    /// Rust's `\w`, `\d`, `\s` and `\b` are Unicode-aware where JavaScript's are ASCII-only,
    /// and `(?...)` groups other than `(?:` do not exist there; such a pattern is left to the
    /// server alone rather than letting the browser refuse answers the server accepts.
    pub fn html_source(&self) -> Option<&str> {
        let s = &self.source;
        let rust_only = ["\\w", "\\W", "\\d", "\\D", "\\s", "\\S", "\\b", "\\B"]
            .iter()
            .any(|e| s.contains(e))
            || s.match_indices("(?")
                .any(|(i, _)| !s[i..].starts_with("(?:"));
        (!rust_only).then_some(s.as_str())
    }
}

/// The last line of the regex crate's multi-line error, e.g. `unclosed group`.
fn regex_error_summary(e: &regex::Error) -> String {
    let text = e.to_string();
    let last = text.lines().rev().find(|l| !l.trim().is_empty());
    last.unwrap_or(&text)
        .trim()
        .trim_start_matches("error: ")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_that_could_escape_anchoring_or_do_not_compile_are_refused() {
        assert!(matches!(
            Pattern::new("a)|(b"),
            Err(PatternError::Invalid(_))
        ));
        match Pattern::new("(abc") {
            Err(PatternError::Invalid(m)) => assert_eq!(m, "unclosed group"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            Pattern::new("(?x)abc # note").map(|_| ()),
            Err(PatternError::Unanchorable)
        );
    }

    #[test]
    fn html_pattern_is_given_only_where_browsers_agree() {
        let html = |s: &str| {
            Pattern::new(s)
                .expect("pattern")
                .html_source()
                .map(str::to_owned)
        };
        assert_eq!(
            html("[A-Z]{2}[0-9]{3}").as_deref(),
            Some("[A-Z]{2}[0-9]{3}")
        );
        assert_eq!(html("(?:ab)+").as_deref(), Some("(?:ab)+"));
        assert_eq!(html(r"\w+"), None);
        assert_eq!(html(r"\d{3}"), None);
        assert_eq!(html("(?i)abc"), None);
    }
}
