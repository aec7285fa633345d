//! The `[profiling]` sections the tests configure, written once: the questions most tests ask
//! (the company, the role, ...) and the section around them.

/// The company question's label, as pages show it.
pub const COMPANY_LABEL: &str = "Which company do you work for?";

/// One `[[profiling.questions]]` table, built key by key (values are TOML, as written).
#[derive(Clone)]
pub struct Question {
    lines: Vec<String>,
}

impl Question {
    /// A question with its `id`, `label` (a plain string) and `type`.
    pub fn new(id: &str, label: &str, kind: &str) -> Self {
        Question {
            lines: vec![
                format!("id = {id:?}"),
                format!("label = {label:?}"),
                format!("type = {kind:?}"),
            ],
        }
    }

    /// Adds `key = value` (`value` is TOML: `"text"`, `2`, `true`, `["a", "b"]`).
    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.lines.push(format!("{key} = {value}"));
        self
    }

    /// The table, with a blank line before it.
    pub fn toml(&self) -> String {
        format!("\n[[profiling.questions]]\n{}\n", self.lines.join("\n"))
    }
}

/// "Which company do you work for?": text, required, at least 2 characters.
pub fn company() -> Question {
    Question::new("company", COMPANY_LABEL, "text")
        .with("required", "true")
        .with("min_length", "2")
}

/// "What best describes your role?": a select of `options`, optional.
pub fn role(options: &[&str]) -> Question {
    Question::new("role", "What best describes your role?", "select")
        .with("options", &format!("{options:?}"))
        .with("required", "false")
}

/// The `[profiling]` table with `settings` (TOML lines, e.g. `questions_per_login = 1`), then
/// `questions`.
pub fn profiling(settings: &[&str], questions: &[Question]) -> String {
    let mut toml = format!("\n[profiling]\n{}\n", settings.join("\n"));
    for question in questions {
        toml.push_str(&question.toml());
    }
    toml
}
