//! The questions an administrator configured (`[[profiling.questions]]`): their model, checked
//! once at config load, and the server-side validation that turns what a form sent for one
//! question into a typed [`AnswerValue`]. The question page takes its HTML hints from here too.

mod formats;
mod html;
mod kind;
mod pattern;
#[cfg(test)]
mod tests;

use std::time::Duration;

use super::answer::{header_name, AnswerValue};
use super::date::{CalendarDate, DateError};

use crate::policy::Expr;

pub use kind::{LengthLimits, QuestionType, UnknownQuestionType};
pub use pattern::{Pattern, PatternError};

/// Why an answer was refused. `message` is plain English shown next to the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValidationError {
    pub message: String,
}

impl ValidationError {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// "1 character", "2 characters".
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// One configured question. Built and checked once at config load (`config::profiling`).
#[derive(Debug, Clone)]
pub struct Question {
    /// `id`: key in the user's metadata, name of the form input, and header `X-Profile-<Id>`.
    /// Required.
    pub id: String,
    /// `label`: the question as shown to the user. Required.
    pub label: String,
    /// `help`: a line of help under the question. Default none.
    pub help: Option<String>,
    /// `placeholder`: shown inside an empty input (text-like, number, integer; the empty choice
    /// of a select). Default none.
    pub placeholder: Option<String>,
    /// `type`. Required.
    pub kind: QuestionType,
    /// `required`: required questions block the user until answered; optional ones can be
    /// skipped. Default `false`.
    pub required: bool,
    /// `min_length`: fewest characters (text-like types only). Default none.
    pub min_length: Option<usize>,
    /// `max_length`: most characters (text-like types only). Default: the type's
    /// ([`QuestionType::length_limits`]: text 200, textarea 5000, email 254, url 2048, tel 32),
    /// applied by [`Question::max_chars`], so an answer is always bounded.
    pub max_length: Option<usize>,
    /// `pattern`: an expression the whole answer must match (text-like types only). Default none.
    pub pattern: Option<Pattern>,
    /// `pattern_message`: shown when `pattern` does not match. Default
    /// "Enter a value in the expected format."
    pub pattern_message: Option<String>,
    /// `min`: smallest value (number, integer). Default none.
    pub min: Option<f64>,
    /// `max`: largest value (number, integer). Default none.
    pub max: Option<f64>,
    /// `min` of a date question: earliest date. Default none.
    pub min_date: Option<CalendarDate>,
    /// `max` of a date question: latest date. Default none.
    pub max_date: Option<CalendarDate>,
    /// `options`: the choices (select, multiselect; required there), in display order.
    pub options: Vec<String>,
    /// `min` of a multiselect: fewest options to choose. Default none (an answer has at least one).
    pub min_choices: Option<usize>,
    /// `max` of a multiselect: most options to choose. Default none (all).
    pub max_choices: Option<usize>,
    /// `version`: raising it makes the question be asked again of users who answered an
    /// older version. Default `1`.
    pub version: u32,
    /// Texts in other languages, from `label = { en = "...", de = "..." }` (and the same for
    /// `help`, `placeholder`, `pattern_message`). The plain fields hold the default language.
    pub translations: std::collections::BTreeMap<String, Translation>,
    /// `when`: a CEL expression over `claims`, `groups` and `answers`; the question is asked
    /// only while it is true (false when it cannot be evaluated). Default: always.
    pub when: Option<Expr>,
    /// `on_paths`: normalized path prefixes; the question is never asked at login, only when
    /// the user opens one of them. Default none (asked at login).
    pub on_paths: Vec<String>,
    /// `ask_again_after`: a skip keeps this optional question away this long. Default: it
    /// returns at the next login.
    pub ask_again_after: Option<Duration>,
    /// `expires_after`: an answer this old is asked again, its old value pre-filled. Default:
    /// answers never expire.
    pub expires_after: Option<Duration>,
    /// `max_skips`: after this many skips the optional question is asked as required.
    /// Default: it can be skipped for ever.
    pub max_skips: Option<u32>,
}

/// A question's texts in one language; missing ones fall back to the default language.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Translation {
    pub label: Option<String>,
    pub help: Option<String>,
    pub placeholder: Option<String>,
    pub pattern_message: Option<String>,
}

impl Question {
    /// The label, help and placeholder in `lang` (falling back to the default language).
    pub fn texts(&self, lang: &str) -> (&str, Option<&str>, Option<&str>) {
        let t = self.translations.get(lang);
        (
            t.and_then(|t| t.label.as_deref()).unwrap_or(&self.label),
            t.and_then(|t| t.help.as_deref()).or(self.help.as_deref()),
            t.and_then(|t| t.placeholder.as_deref())
                .or(self.placeholder.as_deref()),
        )
    }

    /// [`Question::validate`], with the configured `pattern_message` in `lang`.
    pub fn validate_in(&self, raw: &[String], lang: &str) -> Result<AnswerValue, ValidationError> {
        self.validate(raw).map_err(|mut e| {
            let localized = self
                .translations
                .get(lang)
                .and_then(|t| t.pattern_message.as_ref());
            if let (Some(default), Some(local)) = (&self.pattern_message, localized) {
                if &e.message == default {
                    e.message = local.clone();
                }
            }
            e
        })
    }

    /// An optional question of version 1 with no other constraint than its type's defaults.
    pub fn new(id: impl Into<String>, label: impl Into<String>, kind: QuestionType) -> Self {
        Self {
            id: id.into(),
            label: label.into(),
            help: None,
            placeholder: None,
            kind,
            required: false,
            min_length: None,
            max_length: None,
            pattern: None,
            pattern_message: None,
            min: None,
            max: None,
            min_date: None,
            max_date: None,
            options: Vec::new(),
            min_choices: None,
            max_choices: None,
            translations: std::collections::BTreeMap::new(),
            version: 1,
            when: None,
            on_paths: Vec::new(),
            ask_again_after: None,
            expires_after: None,
            max_skips: None,
        }
    }

    /// `X-Profile-<Id>`.
    pub fn header_name(&self) -> String {
        header_name(&self.id)
    }

    /// The effective character limit of a text-like answer: `max_length`, or the type's default,
    /// never above the type's cap. `None` for other types.
    pub fn max_chars(&self) -> Option<usize> {
        let limits = self.kind.length_limits()?;
        Some(self.max_length.unwrap_or(limits.default).min(limits.cap))
    }

    /// Validates what the form sent for this question's input: `raw` holds every value sent
    /// under the name `id` (several for a multiselect, none for an unchecked checkbox).
    ///
    /// Empty answers: a required question says what is missing; an optional one answers
    /// "Please answer, or choose Skip for now." (skipping is a separate action), except a
    /// consent checkbox, where nothing sent means unchecked: `Bool(false)`. A boolean is a pair
    /// of radio buttons, so nothing chosen is not "No": it is an empty answer like any other.
    pub fn validate(&self, raw: &[String]) -> Result<AnswerValue, ValidationError> {
        match self.kind {
            QuestionType::Text
            | QuestionType::Textarea
            | QuestionType::Email
            | QuestionType::Url
            | QuestionType::Tel => {
                let value = self.present(raw)?;
                self.check_text(&value)?;
                Ok(AnswerValue::Text(value))
            }
            QuestionType::Number => self.check_number(&self.present(raw)?),
            QuestionType::Integer => self.check_integer(&self.present(raw)?),
            QuestionType::Date => self.check_date(&self.present(raw)?),
            QuestionType::Select => {
                let value = self.present(raw)?;
                if !self.options.contains(&value) {
                    return Err(ValidationError::new("Choose one of the options."));
                }
                Ok(AnswerValue::Text(value))
            }
            QuestionType::Multiselect => self.check_choices(raw),
            QuestionType::Boolean => match self.present(raw)?.as_str() {
                "true" => Ok(AnswerValue::Bool(true)),
                "false" => Ok(AnswerValue::Bool(false)),
                _ => Err(ValidationError::new("Choose Yes or No.")),
            },
            QuestionType::Consent => match self.single(raw)?.as_deref() {
                // "on" is what a checkbox without a value attribute sends.
                Some("true" | "on") => Ok(AnswerValue::Bool(true)),
                None | Some("false") if !self.required => Ok(AnswerValue::Bool(false)),
                None | Some("false") => Err(self.missing()),
                Some(_) => Err(ValidationError::new("Check or uncheck this box.")),
            },
        }
    }

    /// The answer an OpenID claim named like this question gives, if it is a valid answer
    /// (string, number, boolean, or array of strings); the question then need not be asked.
    pub fn accepts_claim(&self, claim: &serde_json::Value) -> Option<AnswerValue> {
        use serde_json::Value;
        let raw = match claim {
            Value::String(s) => vec![s.clone()],
            Value::Bool(b) => vec![b.to_string()],
            Value::Number(n) => vec![n.to_string()],
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()?,
            Value::Null | Value::Object(_) => return None,
        };
        self.validate(&raw).ok()
    }

    /// The message for an empty answer.
    fn missing(&self) -> ValidationError {
        if !self.required {
            return ValidationError::new("Please answer, or choose Skip for now.");
        }
        ValidationError::new(match self.kind {
            QuestionType::Select => "Choose one of the options.",
            QuestionType::Multiselect => "Choose at least one option.",
            QuestionType::Boolean => "Choose Yes or No.",
            QuestionType::Consent => "Check this box to continue.",
            QuestionType::Text
            | QuestionType::Textarea
            | QuestionType::Email
            | QuestionType::Url
            | QuestionType::Tel
            | QuestionType::Number
            | QuestionType::Integer
            | QuestionType::Date => "Please answer this question.",
        })
    }

    /// The one value sent, line breaks normalised (textarea) and trimmed; `None` when nothing
    /// but whitespace was sent.
    fn single(&self, raw: &[String]) -> Result<Option<String>, ValidationError> {
        let value = match raw {
            [] => return Ok(None),
            [value] => value,
            _ => return Err(ValidationError::new("Give only one answer.")),
        };
        let value = if self.kind == QuestionType::Textarea {
            value.replace("\r\n", "\n").replace('\r', "\n")
        } else {
            value.clone()
        };
        let trimmed = value.trim();
        Ok((!trimmed.is_empty()).then(|| trimmed.to_owned()))
    }

    /// Like [`Self::single`], but an empty answer is an error.
    fn present(&self, raw: &[String]) -> Result<String, ValidationError> {
        self.single(raw)?.ok_or_else(|| self.missing())
    }

    fn check_text(&self, value: &str) -> Result<(), ValidationError> {
        let multiline = self.kind == QuestionType::Textarea;
        if value
            .chars()
            .any(|c| formats::is_forbidden_char(c, multiline))
        {
            return Err(ValidationError::new(if multiline {
                "Remove invisible control characters from your answer."
            } else {
                "Remove line breaks, tabs and other control characters from your answer."
            }));
        }
        let chars = value.chars().count();
        if let Some(max) = self.max_chars().filter(|max| chars > *max) {
            return Err(ValidationError::new(format!(
                "Enter at most {}.",
                plural(max, "character")
            )));
        }
        if let Some(min) = self.min_length.filter(|min| chars < *min) {
            return Err(ValidationError::new(format!(
                "Enter at least {}.",
                plural(min, "character")
            )));
        }
        let format_error = match self.kind {
            QuestionType::Email if !formats::is_email(value) => {
                Some("Enter a valid email address, such as name@example.com.")
            }
            QuestionType::Url if !formats::is_web_url(value) => {
                Some("Enter a web address starting with http:// or https://.")
            }
            QuestionType::Tel if !formats::is_phone(value) => {
                Some("Enter a valid phone number (4 to 20 digits).")
            }
            _ => None,
        };
        if let Some(message) = format_error {
            return Err(ValidationError::new(message));
        }
        match &self.pattern {
            Some(pattern) if !pattern.matches(value) => Err(ValidationError::new(
                self.pattern_message
                    .as_deref()
                    .unwrap_or("Enter a value in the expected format."),
            )),
            _ => Ok(()),
        }
    }

    fn check_number(&self, value: &str) -> Result<AnswerValue, ValidationError> {
        let n = formats::parse_decimal(value)
            .ok_or_else(|| ValidationError::new("Enter a number, such as 42 or 3.5."))?;
        if let Some(min) = self.min.filter(|min| n < *min) {
            return Err(ValidationError::new(format!(
                "Enter a number of at least {min}."
            )));
        }
        if let Some(max) = self.max.filter(|max| n > *max) {
            return Err(ValidationError::new(format!(
                "Enter a number of at most {max}."
            )));
        }
        Ok(AnswerValue::Number(n))
    }

    fn check_integer(&self, value: &str) -> Result<AnswerValue, ValidationError> {
        let n: i64 = value
            .parse()
            .map_err(|_| ValidationError::new("Enter a whole number, such as 42."))?;
        // Compared exactly in i128: `n as f64` would round large values.
        if let Some(min) = self.min.filter(|min| i128::from(n) < min.ceil() as i128) {
            return Err(ValidationError::new(format!(
                "Enter a number of at least {}.",
                min.ceil()
            )));
        }
        if let Some(max) = self.max.filter(|max| i128::from(n) > max.floor() as i128) {
            return Err(ValidationError::new(format!(
                "Enter a number of at most {}.",
                max.floor()
            )));
        }
        Ok(AnswerValue::Integer(n))
    }

    fn check_date(&self, value: &str) -> Result<AnswerValue, ValidationError> {
        let date: CalendarDate = value.parse().map_err(|e| match e {
            DateError::Format => ValidationError::new("Enter a date as YYYY-MM-DD."),
            DateError::NoSuchDay => {
                ValidationError::new("Enter a date that exists in the calendar.")
            }
        })?;
        if let Some(min) = self.min_date.filter(|min| date < *min) {
            return Err(ValidationError::new(format!(
                "Enter a date on or after {min}."
            )));
        }
        if let Some(max) = self.max_date.filter(|max| date > *max) {
            return Err(ValidationError::new(format!(
                "Enter a date on or before {max}."
            )));
        }
        Ok(AnswerValue::Date(date.to_string()))
    }

    fn check_choices(&self, raw: &[String]) -> Result<AnswerValue, ValidationError> {
        // Indices into `options`; the loop ends at the first unknown or repeated value, so it
        // keeps at most `options.len()` of them whatever was sent.
        let mut chosen: Vec<usize> = Vec::new();
        for value in raw.iter().map(|v| v.trim()).filter(|v| !v.is_empty()) {
            let index = self
                .options
                .iter()
                .position(|o| o == value)
                .ok_or_else(|| ValidationError::new("Choose only from the options shown."))?;
            if chosen.contains(&index) {
                return Err(ValidationError::new("Choose each option only once."));
            }
            chosen.push(index);
        }
        if chosen.is_empty() {
            return Err(self.missing());
        }
        if let Some(min) = self.min_choices.filter(|min| chosen.len() < *min) {
            return Err(ValidationError::new(format!(
                "Choose at least {}.",
                plural(min, "option")
            )));
        }
        if let Some(max) = self.max_choices.filter(|max| chosen.len() > *max) {
            return Err(ValidationError::new(format!(
                "Choose at most {}.",
                plural(max, "option")
            )));
        }
        // Stored in the configured order, whatever order the browser sent.
        chosen.sort_unstable();
        Ok(AnswerValue::List(
            chosen
                .into_iter()
                .map(|i| self.options[i].clone())
                .collect(),
        ))
    }
}
