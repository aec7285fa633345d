//! HTML hints for the question page: which control renders a question and the attributes that
//! mirror the server's rules. Values are plain strings; the template escapes them.

use super::{Pattern, Question, QuestionType};

impl Question {
    /// How the page renders the question: an `<input type>` value, or `textarea` / `select`
    /// for those elements. Multiselect is a group of checkboxes, boolean a Yes/No radio pair,
    /// consent one checkbox (each sends `true` when chosen).
    pub fn input_type(&self) -> &'static str {
        match self.kind {
            QuestionType::Text => "text",
            QuestionType::Textarea => "textarea",
            QuestionType::Email => "email",
            QuestionType::Url => "url",
            QuestionType::Tel => "tel",
            QuestionType::Number | QuestionType::Integer => "number",
            QuestionType::Date => "date",
            QuestionType::Select => "select",
            QuestionType::Multiselect | QuestionType::Consent => "checkbox",
            QuestionType::Boolean => "radio",
        }
    }

    /// HTML attributes matching the server's rules, as plain (unescaped) strings: `required`
    /// (empty value; not on a multiselect, where it would demand every box), `minlength`,
    /// `maxlength`, `pattern`, `min`, `max`, `step`. The server stays the authority: browsers
    /// count `maxlength` in UTF-16 units, so they may stop early but never let more through.
    pub fn html_constraints(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.required && self.kind != QuestionType::Multiselect {
            out.push(("required", String::new()));
        }
        match self.kind {
            QuestionType::Text
            | QuestionType::Textarea
            | QuestionType::Email
            | QuestionType::Url
            | QuestionType::Tel => {
                if let Some(min) = self.min_length.filter(|m| *m > 0) {
                    out.push(("minlength", min.to_string()));
                }
                if let Some(max) = self.max_chars() {
                    out.push(("maxlength", max.to_string()));
                }
                // <textarea> has no pattern attribute.
                let html_pattern = self.pattern.as_ref().and_then(Pattern::html_source);
                if let (Some(source), false) = (html_pattern, self.kind == QuestionType::Textarea) {
                    out.push(("pattern", source.to_owned()));
                }
            }
            QuestionType::Number | QuestionType::Integer => {
                let integer = self.kind == QuestionType::Integer;
                if let Some(min) = self.min {
                    out.push(("min", (if integer { min.ceil() } else { min }).to_string()));
                }
                if let Some(max) = self.max {
                    out.push(("max", (if integer { max.floor() } else { max }).to_string()));
                }
                out.push(("step", if integer { "1" } else { "any" }.to_owned()));
            }
            QuestionType::Date => {
                if let Some(min) = self.min_date {
                    out.push(("min", min.to_string()));
                }
                if let Some(max) = self.max_date {
                    out.push(("max", max.to_string()));
                }
            }
            QuestionType::Select
            | QuestionType::Multiselect
            | QuestionType::Boolean
            | QuestionType::Consent => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(kind: QuestionType) -> Question {
        Question::new("answer", "A question?", kind)
    }

    fn required(kind: QuestionType) -> Question {
        Question {
            required: true,
            ..q(kind)
        }
    }

    #[test]
    fn html_hints_match_the_server_rules() {
        let company = Question {
            min_length: Some(2),
            max_length: Some(100),
            pattern: Some(Pattern::new("[A-Za-z ]+").expect("pattern")),
            ..required(QuestionType::Text)
        };
        assert_eq!(company.input_type(), "text");
        assert_eq!(
            company.html_constraints(),
            vec![
                ("required", String::new()),
                ("minlength", "2".into()),
                ("maxlength", "100".into()),
                ("pattern", "[A-Za-z ]+".into()),
            ]
        );
        let notes = Question {
            pattern: Some(Pattern::new("[a-z]+").expect("pattern")),
            ..q(QuestionType::Textarea)
        };
        assert_eq!(notes.html_constraints(), vec![("maxlength", "5000".into())]);
        let age = Question {
            min: Some(18.0),
            max: Some(120.0),
            ..q(QuestionType::Integer)
        };
        assert_eq!(age.input_type(), "number");
        assert_eq!(
            age.html_constraints(),
            vec![
                ("min", "18".into()),
                ("max", "120".into()),
                ("step", "1".into())
            ]
        );
        let ratio = Question {
            max: Some(0.5),
            ..q(QuestionType::Number)
        };
        assert_eq!(
            ratio.html_constraints(),
            vec![("max", "0.5".into()), ("step", "any".into())]
        );
        let born = Question {
            min_date: "1900-01-01".parse().ok(),
            ..q(QuestionType::Date)
        };
        assert_eq!(born.input_type(), "date");
        assert_eq!(born.html_constraints(), vec![("min", "1900-01-01".into())]);
        assert!(required(QuestionType::Multiselect)
            .html_constraints()
            .is_empty());
        assert_eq!(required(QuestionType::Multiselect).input_type(), "checkbox");
        assert_eq!(required(QuestionType::Boolean).input_type(), "radio");
        assert_eq!(
            required(QuestionType::Consent).html_constraints(),
            vec![("required", String::new())]
        );
    }
}
