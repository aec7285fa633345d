//! The self-service page's view model (`/.profilegate/me`, `templates/me.html`) and its
//! rendering, plus the question page's form with a way back (the page's change form). Part of
//! `render` (which renders `me.html` once at start-up with sample data, like every template);
//! the route that fills it is `proxy/routes/me.rs`.

use minijinja::context;
use serde::Serialize;

use super::{Pages, QuestionPage, SignedIn};

/// One row of the self-service page's answers: a stored answer, or a question still pending.
#[derive(Debug, Clone, Serialize)]
pub struct MeAnswer {
    pub id: String,
    /// The question's label in the page's language (the id when it is no longer configured).
    pub label: String,
    /// The answer as the user reads it (none while pending).
    pub value: Option<String>,
    /// When it was answered, as UTC (`2026-12-02 20:11 UTC`).
    pub answered_at: Option<String>,
    /// Who gave it, in the page's language ("by you", "by your sign-in provider").
    pub source: Option<&'static str>,
    /// Asked but not answered (or its answer no longer counts).
    pub pending: bool,
    /// Stored for a question that is no longer configured: shown, not editable.
    pub retired: bool,
    /// Where its change form is (none when it cannot be changed here).
    pub change_url: Option<String>,
}

/// One skipped question on the self-service page.
#[derive(Debug, Clone, Serialize)]
pub struct MeSkip {
    pub label: String,
    /// The latest skip, as UTC.
    pub at: String,
    pub count: u32,
}

/// What the self-service page (`/.profilegate/me`) shows.
#[derive(Debug, Clone, Serialize)]
pub struct MePage<'a> {
    /// The page's language (`<html lang>`), and its words in it.
    pub lang: &'a str,
    pub text: crate::profile::i18n::MeText,
    pub answers: Vec<MeAnswer>,
    pub skips: Vec<MeSkip>,
    pub logins: u64,
    pub first_login: Option<String>,
    pub last_login: Option<String>,
    /// The page's own route, where its forms post (with `csrf_token`).
    pub action: &'a str,
    pub csrf_token: &'a str,
    /// The question page, for the pending questions.
    pub questions_url: String,
    /// There are answers or skips to erase.
    pub can_erase: bool,
    /// The confirmation step of "Erase my answers".
    pub confirm_erase: bool,
    /// The outcome of the last change ("saved", "erased"), said once.
    pub notice: Option<&'static str>,
    pub signed_in: SignedIn<'a>,
}

impl Pages {
    /// The question page's form, posted to `page.action`, with a link `back` (`(url, label)`):
    /// the self-service page's change form, validated and re-rendered like the question page.
    pub fn question_with_back(&self, page: &QuestionPage<'_>, back: (&str, &str)) -> String {
        let title = match page.error {
            Some(_) => format!("{} — {}", page.ui.error, page.question.label),
            None => page.question.label.to_owned(),
        };
        let (url, label) = back;
        self.render(
            "question.html",
            context! { ..context! { lang => page.lang, back => context! { url => url, label => label } },
            ..self.base(&title), ..minijinja::Value::from(minijinja::value::Serde(page)) },
        )
    }

    /// The self-service page.
    pub fn me(&self, page: &MePage<'_>) -> String {
        self.render("me.html", self.me_context(page))
    }

    fn me_context(&self, page: &MePage<'_>) -> minijinja::Value {
        context! { ..context! { lang => page.lang }, ..self.base(page.text.title),
        ..minijinja::Value::from(minijinja::value::Serde(page)) }
    }
}

/// The self-service page with one row of each kind, for the start-up self-test.
#[cfg(test)]
fn sample_me_page(confirm_erase: bool) -> MePage<'static> {
    let row = |pending: bool, retired: bool| MeAnswer {
        id: "q".into(),
        label: "Label".into(),
        value: (!pending).then(|| "Value".into()),
        answered_at: (!pending).then(|| "2026-01-01 00:00 UTC".into()),
        source: (!pending).then_some("by you"),
        pending,
        retired,
        change_url: (!retired).then(|| "/".into()),
    };
    MePage {
        lang: "en",
        text: crate::profile::i18n::me_text("en"),
        answers: vec![row(false, false), row(true, false), row(false, true)],
        skips: vec![MeSkip {
            label: "Label".into(),
            at: "2026-01-01 00:00 UTC".into(),
            count: 2,
        }],
        logins: 3,
        first_login: Some("2026-01-01 00:00 UTC".into()),
        last_login: Some("2026-01-02 00:00 UTC".into()),
        action: "/",
        csrf_token: "x",
        questions_url: "/".into(),
        can_erase: true,
        confirm_erase,
        notice: Some("Saved."),
        signed_in: SignedIn::new(Some("u"), "/", "x", "en"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::Theme;

    const HOSTILE: &str = "<script>alert(1)</script>\"'><img src=x onerror=alert(1)>";

    #[test]
    fn the_self_service_page_escapes_everything_and_speaks_its_language() {
        let pages = Pages::new(Theme::default(), &[]).expect("templates");
        let mut page = sample_me_page(true);
        page.lang = "de";
        page.text = crate::profile::i18n::me_text("de");
        page.answers[0].label = HOSTILE.into();
        page.answers[0].value = Some(HOSTILE.into());
        page.answers[0].change_url = Some(HOSTILE.into());
        page.skips[0].label = HOSTILE.into();
        page.csrf_token = HOSTILE;
        let html = pages.me(&page);
        assert!(
            !html.contains("<script>alert") && !html.contains("<img src=x"),
            "{html}"
        );
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(html.contains("<html lang=\"de\">"), "{html}");
        assert!(
            html.contains("Alle Ihre Antworten löschen?"),
            "the confirmation: {html}"
        );
        assert!(!html.contains("<script"), "no script at all");
    }

    #[test]
    fn a_broken_override_of_the_page_is_refused_at_start_up() {
        // Inside the answers' loop: the start-up self-test renders rows, not an empty page.
        let broken = "{% for a in answers %}{{ a.label + 1 }}{% endfor %}";
        let overrides = [("me.html".to_owned(), broken.to_owned())];
        let refused = Pages::new(Theme::default(), &overrides);
        assert!(refused.is_err(), "a broken me.html was accepted");
        let fine = [("me.html".to_owned(), "{{ text.title }}".to_owned())];
        assert!(Pages::new(Theme::default(), &fine).is_ok());
    }
}
