//! `[profiling]`: how many questions one login may show, and the questions themselves
//! (`[[profiling.questions]]`). Each question is checked here, once, so the engine and the
//! question page can trust every [`Question`] they are given.

mod conditions;

use std::collections::BTreeSet;

use toml::Value;

use self::conditions::read_conditions;
use super::reader::SectionReader;
use crate::profile::{CalendarDate, Pattern, Question, QuestionType};

#[derive(Debug, Clone)]
pub struct ProfilingConfig {
    /// `profiling.questions_per_login`: most questions one login may show, 1 to 20. Default `1`.
    pub questions_per_login: usize,
    /// `[[profiling.questions]]`: the questions, asked in this order. Default none.
    pub questions: Vec<Question>,
    /// `profiling.default_language`: the language of plain (single-language) texts and the
    /// page's fallback. Default `"en"`.
    pub default_language: String,
    /// `profiling.ui`: `"hosted"` (profilegate's own page) or `"redirect"` (the administrator's
    /// custom UI at `profiling.redirect_url`). Default `"hosted"`.
    pub ui: QuestionUi,
}

/// Where pending questions are answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuestionUi {
    Hosted,
    /// A custom UI: the user is sent to `url` with a signed token; its form posts back to
    /// `/.profilegate/continue`.
    Redirect {
        /// `profiling.redirect_url`: the custom form (http or https, no fragment). Required.
        url: url::Url,
        /// `profiling.redirect_token_lifetime`: how long the signed token is valid. Default `10m`.
        token_lifetime: std::time::Duration,
    },
}

impl Default for ProfilingConfig {
    fn default() -> Self {
        Self {
            questions_per_login: 1,
            questions: Vec::new(),
            ui: QuestionUi::Hosted,
            default_language: "en".into(),
        }
    }
}

/// Ids whose header would collide with one the proxy sets itself.
const RESERVED_IDS: &[(&str, &str)] = &[("jwt", "X-Profile-Jwt carries the signed profile")];
/// Most options a select or multiselect may list, and most characters in one.
const MAX_OPTIONS: usize = 100;
const MAX_OPTION_CHARS: usize = 200;
const TEXTUAL: &str = "text, textarea, email, url and tel";
const BOUNDED: &str = "number, integer, date and multiselect";

use crate::profile::i18n::is_language_tag;

/// A text given as a string (the default language) or as a table of language -> string.
/// Returns the default-language text; other languages go into `translations`.
fn localized(
    r: &mut SectionReader<'_>,
    key: &str,
    default_language: &str,
    translations: &mut std::collections::BTreeMap<String, crate::profile::question::Translation>,
    set: impl Fn(&mut crate::profile::question::Translation, String),
) -> Option<String> {
    match r.value(key)? {
        toml::Value::String(s) => Some(s),
        toml::Value::Table(t) => {
            let mut default = None;
            for (lang, text) in t {
                let lang_key = format!("{key}.{lang}");
                match text {
                    toml::Value::String(text) if is_language_tag(&lang) => {
                        let lang = lang.to_ascii_lowercase();
                        if lang == default_language.to_ascii_lowercase() {
                            default = Some(text);
                        } else {
                            set(translations.entry(lang).or_default(), text);
                        }
                    }
                    toml::Value::String(_) => r.error(
                        &lang_key,
                        format!("{lang:?} is not a language tag such as \"en\" or \"pt-BR\""),
                    ),
                    other => r.error(
                        &lang_key,
                        format!("expected a string, found {}", other.type_str()),
                    ),
                }
            }
            if default.is_none() {
                r.error(
                    key,
                    format!("needs a {default_language:?} text (profiling.default_language)"),
                );
            }
            default
        }
        other => {
            r.error(
                key,
                format!(
                    "expected a string or a table of languages, found {}",
                    other.type_str()
                ),
            );
            None
        }
    }
}

fn read_ui(r: &mut SectionReader<'_>) -> Option<QuestionUi> {
    let kind = r.string("ui").unwrap_or_else(|| "hosted".into());
    let url = r.string("redirect_url");
    let lifetime = r.duration(
        "redirect_token_lifetime",
        std::time::Duration::from_secs(30),
        std::time::Duration::from_secs(3600),
    );
    match kind.as_str() {
        "hosted" => {
            if url.is_some() {
                r.error("redirect_url", "applies only with ui = \"redirect\"");
            }
            Some(QuestionUi::Hosted)
        }
        "redirect" => {
            let Some(raw) = url else {
                r.error(
                    "redirect_url",
                    "is required with ui = \"redirect\": the custom form's URL",
                );
                return None;
            };
            if let Some(message) = super::hints::missing_scheme(&raw) {
                r.error("redirect_url", message);
                return None;
            }
            match url::Url::parse(raw.trim()) {
                Ok(u)
                    if matches!(u.scheme(), "http" | "https")
                        && u.host_str().is_some()
                        && u.fragment().is_none() =>
                {
                    Some(QuestionUi::Redirect {
                        url: u,
                        token_lifetime: lifetime.unwrap_or(std::time::Duration::from_secs(600)),
                    })
                }
                _ => {
                    r.error(
                        "redirect_url",
                        format!("{raw:?} is not an http:// or https:// URL without a fragment"),
                    );
                    None
                }
            }
        }
        other => {
            r.error(
                "ui",
                format!("{other:?} is not a question UI; use \"hosted\" or \"redirect\""),
            );
            None
        }
    }
}

pub(super) fn read_profiling(mut r: SectionReader<'_>) -> Option<ProfilingConfig> {
    let questions_per_login = r
        .integer_in("questions_per_login", 1, 20)
        .map_or(1, |n| n as usize);
    let ui = read_ui(&mut r);
    let default_language = r.string("default_language").unwrap_or_else(|| "en".into());
    if !is_language_tag(&default_language) {
        r.error(
            "default_language",
            format!("{default_language:?} is not a language tag such as \"en\" or \"pt-BR\""),
        );
    }
    let tables = r.table_array("questions").unwrap_or_default();
    // Every id, before any question is read: a `when` may name a question asked after it.
    let ids: BTreeSet<String> = tables
        .iter()
        .filter_map(|t| Some(t.get("id")?.as_str()?.to_owned()))
        .collect();
    let is_question = |id: &str| ids.contains(id);
    let mut questions = Vec::with_capacity(tables.len());
    let mut seen: Vec<(String, String)> = Vec::new(); // (id, dotted name of its entry)
    let mut all_valid = true;
    for (i, table) in tables.into_iter().enumerate() {
        let entry = format!("{}[{i}]", r.key("questions"));
        let mut q = r.nested(entry.clone(), table);
        let (id, question) = read_question(&mut q, &default_language, &is_question);
        if let Some(id) = id {
            // With the id rules below, distinct ids give distinct header names, so a duplicate
            // id is the only way two questions could share a header.
            if let Some((_, first)) = seen.iter().find(|(seen_id, _)| *seen_id == id) {
                q.error("id", format!("{id:?} is already the id of {first}"));
            } else {
                seen.push((id, entry));
            }
        }
        q.finish();
        match question {
            Some(question) => questions.push(question),
            None => all_valid = false,
        }
    }
    r.finish();
    all_valid.then_some(ProfilingConfig {
        default_language: default_language.to_ascii_lowercase(),
        questions_per_login,
        questions,
        ui: ui?,
    })
}

/// Why `id` cannot name a question, if it cannot.
fn id_problem(id: &str) -> Option<String> {
    let shape_ok = id.len() <= 63
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !id.contains("__")
        && !id.ends_with('_');
    if !shape_ok {
        return Some(format!(
            "{id:?} is not a valid id: use 1 to 63 lower-case letters, digits and single \
             underscores, starting with a letter and not ending with an underscore \
             (it becomes the header X-Profile-<Id>)"
        ));
    }
    RESERVED_IDS
        .iter()
        .find(|(reserved, _)| *reserved == id)
        .map(|(_, why)| format!("{id:?} is reserved: the header {why}"))
}

/// Reads one `[[profiling.questions]]` entry: its id (when it is valid, for the duplicate
/// check) and the question (when the whole entry is valid).
fn read_question(
    r: &mut SectionReader<'_>,
    default_language: &str,
    is_question: &dyn Fn(&str) -> bool,
) -> (Option<String>, Option<Question>) {
    let errors_before = r.error_count();
    let id = r
        .required_string("id")
        .and_then(|id| match id_problem(&id) {
            Some(problem) => {
                r.error("id", problem);
                None
            }
            None => Some(id),
        });
    let mut translations = std::collections::BTreeMap::new();
    let label = localized(r, "label", default_language, &mut translations, |t, v| {
        t.label = Some(v)
    });
    match label.as_deref() {
        None if !r.has_error_for("label") => r.error("label", "is required"),
        Some(l) if l.trim().is_empty() => r.error("label", "must not be empty"),
        _ => {}
    }
    let help = localized(r, "help", default_language, &mut translations, |t, v| {
        t.help = Some(v)
    })
    .filter(|h| !h.trim().is_empty());
    let placeholder = localized(
        r,
        "placeholder",
        default_language,
        &mut translations,
        |t, v| t.placeholder = Some(v),
    );
    if !r.has("type") {
        r.error(
            "type",
            format!("is required; use one of {}", QuestionType::all_names()),
        );
    }
    let kind = r.string("type").and_then(|t| {
        t.parse::<QuestionType>()
            .map_err(|e| r.error("type", e.to_string()))
            .ok()
    });
    let required = r.boolean("required").unwrap_or(false);
    let version = r
        .integer_in("version", 1, i64::from(u32::MAX))
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(1);
    // Read every key before judging them by type, so none is reported as unknown.
    let min_length = r.integer("min_length");
    let max_length = r.integer("max_length");
    let pattern = r.string("pattern");
    let pattern_message = localized(
        r,
        "pattern_message",
        default_language,
        &mut translations,
        |t, v| t.pattern_message = Some(v),
    );
    let options = r.string_list("options");
    let min = r.value("min");
    let max = r.value("max");

    let Some(kind) = kind else {
        // The condition keys are still read and checked, so none is reported as unknown.
        let mut unread = Question::new("", "", QuestionType::Text);
        unread.required = required;
        read_conditions(r, &mut unread, is_question);
        return (id, None);
    };
    // A missing label or id is already reported; the rest is still checked, so every error
    // shows at once.
    let mut question = Question::new(
        id.clone().unwrap_or_default(),
        label.unwrap_or_default(),
        kind,
    );
    question.help = help;
    question.translations = translations;
    question.required = required;
    question.version = version;
    if placeholder.is_some() && !kind.has_placeholder() {
        r.error("placeholder", format!("does not apply to {kind} questions"));
    }
    question.placeholder = placeholder;
    read_lengths(r, &mut question, min_length, max_length);
    read_pattern(r, &mut question, pattern, pattern_message);
    read_options(r, &mut question, options);
    read_bounds(r, &mut question, min, max);
    read_conditions(r, &mut question, is_question);
    let valid = r.error_count() == errors_before;
    (id, valid.then_some(question))
}

fn read_lengths(r: &mut SectionReader<'_>, q: &mut Question, min: Option<i64>, max: Option<i64>) {
    let kind = q.kind;
    let Some(limits) = kind.length_limits() else {
        for (key, given) in [("min_length", min), ("max_length", max)] {
            if given.is_some() {
                r.error(
                    key,
                    format!("applies only to {TEXTUAL} questions, not {kind}"),
                );
            }
        }
        return;
    };
    let mut in_range = |key: &str, value: Option<i64>| -> Option<usize> {
        let value = value?;
        match usize::try_from(value) {
            Ok(n) if n <= limits.cap => Some(n),
            _ => {
                r.error(
                    key,
                    format!(
                        "must be between 0 and {} for {kind} questions, found {value}",
                        limits.cap
                    ),
                );
                None
            }
        }
    };
    q.min_length = in_range("min_length", min);
    q.max_length = in_range("max_length", max);
    if let Some(min) = q.min_length {
        let max = q.max_length.unwrap_or(limits.default);
        if min > max {
            let which = if q.max_length.is_some() {
                format!("max_length ({max})")
            } else {
                format!("the default max_length of {kind} questions ({max})")
            };
            r.error("min_length", format!("is larger than {which}"));
        }
    }
}

fn read_pattern(
    r: &mut SectionReader<'_>,
    q: &mut Question,
    pattern: Option<String>,
    message: Option<String>,
) {
    if message.is_some() && pattern.is_none() {
        r.error(
            "pattern_message",
            "is shown when pattern does not match: add a pattern",
        );
    }
    q.pattern_message = message;
    let Some(source) = pattern else { return };
    if !q.kind.is_textual() {
        let kind = q.kind;
        r.error(
            "pattern",
            format!("applies only to {TEXTUAL} questions, not {kind}"),
        );
        return;
    }
    match Pattern::new(&source) {
        Ok(p) => q.pattern = Some(p),
        Err(e) => r.error("pattern", format!("{source:?} {e}")),
    }
}

fn read_options(r: &mut SectionReader<'_>, q: &mut Question, options: Option<Vec<String>>) {
    if !q.kind.has_options() {
        if options.is_some() {
            let kind = q.kind;
            r.error(
                "options",
                format!("applies only to select and multiselect questions, not {kind}"),
            );
        }
        return;
    }
    let options = options.unwrap_or_default();
    if options.is_empty() {
        r.error(
            "options",
            format!(
                "is required: a {} question needs at least one option",
                q.kind
            ),
        );
    }
    if options.len() > MAX_OPTIONS {
        r.error(
            "options",
            format!(
                "lists {} options; at most {MAX_OPTIONS} are allowed",
                options.len()
            ),
        );
    }
    for (i, option) in options.iter().enumerate() {
        let key = format!("options[{i}]");
        let problem = if option.trim().is_empty() {
            Some("must not be empty".to_owned())
        } else if option.trim() != option {
            Some(format!("{option:?} must not start or end with spaces"))
        } else if option.chars().any(char::is_control) {
            Some(format!("{option:?} must not contain control characters"))
        } else if option.chars().count() > MAX_OPTION_CHARS {
            Some(format!("is longer than {MAX_OPTION_CHARS} characters"))
        } else {
            options[..i]
                .iter()
                .position(|o| o == option)
                .map(|first| format!("{option:?} is listed twice (also options[{first}])"))
        };
        if let Some(problem) = problem {
            r.error(&key, problem);
        }
    }
    q.options = options;
}

fn read_bounds(
    r: &mut SectionReader<'_>,
    q: &mut Question,
    min: Option<Value>,
    max: Option<Value>,
) {
    let kind = q.kind;
    if !kind.has_bounds() {
        for (key, given) in [("min", &min), ("max", &max)] {
            if given.is_some() {
                r.error(
                    key,
                    format!("applies only to {BOUNDED} questions, not {kind}"),
                );
            }
        }
        return;
    }
    match kind {
        QuestionType::Number | QuestionType::Integer => {
            q.min = min.and_then(|v| number_bound(r, "min", v, kind));
            q.max = max.and_then(|v| number_bound(r, "max", v, kind));
            if let (Some(lo), Some(hi)) = (q.min, q.max) {
                if lo > hi {
                    r.error("min", format!("is larger than max ({hi})"));
                }
            }
        }
        QuestionType::Date => {
            q.min_date = min.and_then(|v| date_bound(r, "min", v));
            q.max_date = max.and_then(|v| date_bound(r, "max", v));
            if let (Some(lo), Some(hi)) = (q.min_date, q.max_date) {
                if lo > hi {
                    r.error("min", format!("is later than max ({hi})"));
                }
            }
        }
        QuestionType::Multiselect => {
            let count = q.options.len();
            q.min_choices = min.and_then(|v| choice_bound(r, "min", v, count));
            q.max_choices = max.and_then(|v| choice_bound(r, "max", v, count));
            if let (Some(lo), Some(hi)) = (q.min_choices, q.max_choices) {
                if lo > hi {
                    r.error("min", format!("is larger than max ({hi})"));
                }
            }
        }
        QuestionType::Text
        | QuestionType::Textarea
        | QuestionType::Email
        | QuestionType::Url
        | QuestionType::Tel
        | QuestionType::Select
        | QuestionType::Boolean
        | QuestionType::Consent => {}
    }
}

fn number_bound(r: &mut SectionReader<'_>, key: &str, v: Value, kind: QuestionType) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(i as f64),
        Value::Float(f) if kind == QuestionType::Number && f.is_finite() => Some(f),
        Value::Float(_) if kind == QuestionType::Integer => {
            r.error(key, "must be a whole number for an integer question");
            None
        }
        other => {
            r.error(
                key,
                format!("expected a finite number, found {}", other.type_str()),
            );
            None
        }
    }
}

fn date_bound(r: &mut SectionReader<'_>, key: &str, v: Value) -> Option<CalendarDate> {
    let text = match v {
        Value::String(s) => s,
        // A bare TOML date (min = 1900-01-01) is fine too; a time of day is not.
        Value::Datetime(d) if d.time.is_none() && d.offset.is_none() => d.to_string(),
        other => {
            let found = other.type_str();
            r.error(
                key,
                format!("expected a date written \"YYYY-MM-DD\", found {found}"),
            );
            return None;
        }
    };
    match text.parse::<CalendarDate>() {
        Ok(d) => Some(d),
        Err(e) => {
            r.error(key, format!("{text:?}: {e}"));
            None
        }
    }
}

fn choice_bound(r: &mut SectionReader<'_>, key: &str, v: Value, options: usize) -> Option<usize> {
    let Value::Integer(i) = v else {
        let found = v.type_str();
        r.error(
            key,
            format!("expected how many options may be chosen, found {found}"),
        );
        return None;
    };
    match usize::try_from(i) {
        Ok(n) if n <= options => Some(n),
        _ => {
            r.error(
                key,
                format!("must be between 0 and the number of options ({options}), found {i}"),
            );
            None
        }
    }
}
