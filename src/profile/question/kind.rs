//! The kinds of question, spelled in lower case in the configuration, and what applies to each.

use std::fmt;
use std::str::FromStr;

/// What kind of input a question asks for. Spelled in lower case in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuestionType {
    Text,
    Textarea,
    Email,
    Url,
    Tel,
    Number,
    Integer,
    Date,
    Select,
    Multiselect,
    Boolean,
    Consent,
}

/// Default and largest `max_length` of a text-like type, in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LengthLimits {
    pub default: usize,
    pub cap: usize,
}

impl QuestionType {
    pub const ALL: [QuestionType; 12] = [
        Self::Text,
        Self::Textarea,
        Self::Email,
        Self::Url,
        Self::Tel,
        Self::Number,
        Self::Integer,
        Self::Date,
        Self::Select,
        Self::Multiselect,
        Self::Boolean,
        Self::Consent,
    ];

    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Textarea => "textarea",
            Self::Email => "email",
            Self::Url => "url",
            Self::Tel => "tel",
            Self::Number => "number",
            Self::Integer => "integer",
            Self::Date => "date",
            Self::Select => "select",
            Self::Multiselect => "multiselect",
            Self::Boolean => "boolean",
            Self::Consent => "consent",
        }
    }

    /// Every type, comma-separated, for messages.
    pub fn all_names() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }

    /// Text-like types: a trimmed string with a length limit, `min_length`/`max_length` and an
    /// optional `pattern`. `None` for the others.
    pub fn length_limits(self) -> Option<LengthLimits> {
        let (default, cap) = match self {
            Self::Text => (200, 2000),
            Self::Textarea => (5000, 20_000),
            // RFC 5321's limit on a forward path.
            Self::Email => (254, 254),
            Self::Url => (2048, 2048),
            Self::Tel => (32, 32),
            Self::Number
            | Self::Integer
            | Self::Date
            | Self::Select
            | Self::Multiselect
            | Self::Boolean
            | Self::Consent => return None,
        };
        Some(LengthLimits { default, cap })
    }

    /// True for the text-like types (`min_length`, `max_length` and `pattern` apply).
    pub fn is_textual(self) -> bool {
        self.length_limits().is_some()
    }

    /// True for `select` and `multiselect`, which need `options`.
    pub fn has_options(self) -> bool {
        matches!(self, Self::Select | Self::Multiselect)
    }

    /// True for the types `min`/`max` apply to: a value range (number, integer), a date range
    /// (date), or how many options may be chosen (multiselect).
    pub fn has_bounds(self) -> bool {
        matches!(
            self,
            Self::Number | Self::Integer | Self::Date | Self::Multiselect
        )
    }

    /// True for the types whose input shows a `placeholder`.
    pub fn has_placeholder(self) -> bool {
        matches!(
            self,
            Self::Text
                | Self::Textarea
                | Self::Email
                | Self::Url
                | Self::Tel
                | Self::Number
                | Self::Integer
                | Self::Select
        )
    }
}

impl fmt::Display for QuestionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a [`QuestionType`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a question type; use one of {types}", types = QuestionType::all_names())]
pub struct UnknownQuestionType(pub String);

impl FromStr for QuestionType {
    type Err = UnknownQuestionType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownQuestionType(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_types_parse_from_their_config_spelling() {
        for t in QuestionType::ALL {
            assert_eq!(t.as_str().parse::<QuestionType>(), Ok(t));
        }
        let e = "color".parse::<QuestionType>().expect_err("unknown");
        assert_eq!(
            e.to_string(),
            "\"color\" is not a question type; use one of text, textarea, email, url, tel, number, \
             integer, date, select, multiselect, boolean, consent"
        );
        assert!("Text".parse::<QuestionType>().is_err());
    }
}
