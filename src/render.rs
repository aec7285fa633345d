//! Pages: the minijinja environment (templates embedded in the binary, auto-escaping every
//! `.html` template) and the view models of each page the proxy serves itself.

use minijinja::{context, Environment};
use serde::Serialize;

use crate::config::{CssValue, FooterLink, PublicUrl, ThemeConfig};

pub mod me;

/// The built-in templates, embedded at compile time.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("error.html", include_str!("../templates/error.html")),
    (
        "signed_out.html",
        include_str!("../templates/signed_out.html"),
    ),
    ("logout.html", include_str!("../templates/logout.html")),
    (
        "cancelled.html",
        include_str!("../templates/cancelled.html"),
    ),
    ("question.html", include_str!("../templates/question.html")),
    ("me.html", include_str!("../templates/me.html")),
];

/// Every question type the page knows how to render.
pub const QUESTION_KINDS: [&str; 12] = [
    "text",
    "textarea",
    "email",
    "url",
    "tel",
    "number",
    "integer",
    "date",
    "select",
    "multiselect",
    "boolean",
    "consent",
];

/// How pages look.
#[derive(Debug, Clone)]
pub struct Theme {
    /// The brand line and the end of every tab title.
    pub title: String,
    pub primary_color: CssValue,
    pub logo_url: Option<String>,
    /// Administrator CSS, inlined in a `<style>` element (validated to hold no `</`).
    pub custom_css: Option<String>,
    pub background: CssValue,
    pub font: CssValue,
    pub footer_links: Vec<FooterLink>,
}

impl Default for Theme {
    fn default() -> Self {
        let config = crate::config::ThemeConfig::default();
        Self {
            title: "localhost".into(),
            primary_color: config.primary_color,
            logo_url: None,
            custom_css: None,
            background: config.background,
            font: CssValue::system_font(),
            footer_links: Vec::new(),
        }
    }
}

impl Theme {
    /// The theme of `[theme]`. Untitled pages are named after the site (the host of
    /// `public_url`), not after one step ("Sign-in") of it.
    pub fn from_config(t: &ThemeConfig, public_url: &PublicUrl) -> Theme {
        let title = t.title.clone().unwrap_or_else(|| {
            public_url
                .url()
                .host_str()
                .map_or_else(|| Theme::default().title, str::to_owned)
        });
        Theme {
            title,
            primary_color: t.primary_color.clone(),
            logo_url: t.logo_url.clone(),
            custom_css: t.custom_css.clone(),
            background: t.background.clone(),
            font: t.font.clone().unwrap_or_else(CssValue::system_font),
            footer_links: t.footer_links.clone(),
        }
    }

    /// The theme as templates see it. The CSS values were checked at load against a grammar
    /// that keeps them inside their declaration, so they alone are marked safe: auto-escaping
    /// is HTML escaping and would corrupt them inside `<style>`. Everything else is escaped.
    fn to_value(&self) -> minijinja::Value {
        use minijinja::Value;
        context! {
            title => &self.title,
            primary_color => Value::from_safe_string(self.primary_color.to_string()),
            background => Value::from_safe_string(self.background.to_string()),
            font => Value::from_safe_string(self.font.to_string()),
            logo_url => &self.logo_url,
            custom_css => self.custom_css.clone().map(Value::from_safe_string),
            footer_links => Value::from(minijinja::value::Serde(&self.footer_links)),
        }
    }
}

/// Who is signed in, shown with a sign-out button on the pages after sign-in.
#[derive(Debug, Clone, Serialize)]
pub struct SignedIn<'a> {
    /// The user's name, else e-mail, else preferred username; none when the OP gave none.
    pub who: Option<&'a str>,
    /// The logout route, posted to with `csrf_token` (the session's CSRF token).
    pub logout: &'a str,
    pub csrf_token: &'a str,
    /// "Signed in as" and "Sign out" in the page's language.
    pub signed_in_as: &'static str,
    pub sign_out: &'static str,
}

impl<'a> SignedIn<'a> {
    pub fn new(who: Option<&'a str>, logout: &'a str, csrf_token: &'a str, lang: &str) -> Self {
        let ui = crate::profile::i18n::ui_text(lang);
        Self {
            who,
            logout,
            csrf_token,
            signed_in_as: ui.signed_in_as,
            sign_out: ui.sign_out,
        }
    }
}

/// Why rendering failed: only at start-up for a broken template.
#[derive(Debug, thiserror::Error)]
#[error("template {name}: {source}")]
pub struct RenderError {
    name: String,
    #[source]
    source: minijinja::Error,
}

/// A question as the page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct QuestionView<'a> {
    pub id: &'a str,
    pub label: &'a str,
    pub help: Option<&'a str>,
    pub placeholder: Option<&'a str>,
    /// The configured type: text, textarea, email, ..., consent.
    pub kind: &'a str,
    /// The `<input type>` for single-input kinds.
    pub input_type: &'a str,
    pub required: bool,
    pub options: &'a [String],
    /// HTML constraint attributes matching the server-side rules.
    pub constraints: Vec<(&'static str, String)>,
}

/// What the question page shows.
#[derive(Debug, Clone, Serialize)]
pub struct QuestionPage<'a> {
    pub question: QuestionView<'a>,
    /// The user's input, kept when the answer is refused.
    pub values: &'a [String],
    pub error: Option<&'a str>,
    pub csrf_token: &'a str,
    /// When the question was first shown, MAC'd (`CookieSealer::shown_stamp`): the `_shown`
    /// field, for the funnel's time to answer. Empty: no field.
    pub shown: &'a str,
    pub action: &'a str,
    pub rd: &'a str,
    pub step: usize,
    pub total: usize,
    /// The page's language (`<html lang>`), and its own words in it.
    pub lang: &'a str,
    pub ui: crate::profile::i18n::UiText,
    /// Who is signed in, and the sign-out button.
    pub signed_in: SignedIn<'a>,
}

/// What the "Sign-in cancelled" page shows.
#[derive(Debug, Clone, Serialize)]
pub struct CancelledPage<'a> {
    /// The page's language (`<html lang>`), and its words in it.
    pub lang: &'a str,
    pub text: crate::profile::i18n::CancelledText,
    /// Where a fresh login starts: the address the user first asked for.
    pub retry_url: &'a str,
}

/// Renders the proxy's own pages.
pub struct Pages {
    env: Environment<'static>,
    theme: Theme,
}

/// What an error page shows.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorPage<'a> {
    pub status: u16,
    pub title: &'a str,
    pub message: &'a str,
    pub retry_url: Option<&'a str>,
    /// Who is signed in, when the user is: the sign-out button stays reachable on errors.
    pub signed_in: Option<SignedIn<'a>>,
}

impl Pages {
    /// Loads the templates and renders each once with sample data, so a broken template fails
    /// at start-up (and in `profilegate check`), not in front of a user.
    pub fn new(theme: Theme, overrides: &[(String, String)]) -> Result<Self, RenderError> {
        let mut env = Environment::new();
        // Auto-escape follows the name's extension: every page is .html, so every value is escaped.
        for (name, source) in TEMPLATES {
            let source = overrides
                .iter()
                .find(|(n, _)| n == name)
                .map_or(*source, |(_, text)| text.as_str());
            env.add_template_owned(name.to_string(), source.to_owned())
                .map_err(|source| RenderError {
                    name: (*name).to_owned(),
                    source,
                })?;
        }
        let pages = Self { env, theme };
        pages.self_test()?;
        Ok(pages)
    }

    fn self_test(&self) -> Result<(), RenderError> {
        let page = ErrorPage {
            status: 500,
            title: "t",
            message: "m",
            retry_url: Some("/"),
            signed_in: Some(SignedIn::new(Some("u"), "/", "x", "en")),
        };
        self.try_render(
            "error.html",
            context! { ..self.base("t"), ..context!{
            status => page.status, message => page.message, retry_url => page.retry_url,
            signed_in => minijinja::Value::from(minijinja::value::Serde(&page.signed_in)) } },
        )?;
        self.try_render(
            "signed_out.html",
            context! { ..self.base("t"), ..context!{ sign_in_url => "/" } },
        )?;
        self.try_render(
            "cancelled.html",
            context! { ..self.base("t"), ..context!{ message => "m", retry => "r", retry_url => "/" } },
        )?;
        self.try_render(
            "logout.html",
            context! { ..self.base("t"), ..context!{ action => "/", csrf_token => "x", user => "u" } },
        )?;
        // The self-service page (`me::MePage`, filled by its route) with a row of each kind.
        let row = |pending: bool, retired: bool| {
            context! { id => "q", label => "Label", value => (!pending).then_some("Value"),
            answered_at => (!pending).then_some("2026-01-01 00:00 UTC"),
            source => (!pending).then_some("by you"), pending => pending, retired => retired,
            change_url => (!retired).then_some("/") }
        };
        for confirm_erase in [false, true] {
            let page = context! {
                text => minijinja::Value::from(minijinja::value::Serde(
                    crate::profile::i18n::me_text("en"),
                )),
                answers => vec![row(false, false), row(true, false), row(false, true)],
                skips => vec![context! { label => "Label", at => "2026-01-01 00:00 UTC", count => 2 }],
                logins => 3, first_login => "2026-01-01 00:00 UTC",
                last_login => "2026-01-02 00:00 UTC", action => "/", csrf_token => "x",
                questions_url => "/", can_erase => true, confirm_erase => confirm_erase,
                notice => "Saved.",
                signed_in => minijinja::Value::from(minijinja::value::Serde(
                    SignedIn::new(Some("u"), "/", "x", "en"),
                )),
            };
            self.try_render("me.html", context! { ..self.base("t"), ..page })?;
        }
        let options = ["a".to_owned(), "b".to_owned()];
        for kind in QUESTION_KINDS {
            let page = QuestionPage {
                question: QuestionView {
                    id: "q",
                    label: "Label",
                    help: Some("Help"),
                    placeholder: Some("Placeholder"),
                    kind,
                    input_type: "text",
                    required: kind != "select",
                    options: &options,
                    constraints: vec![("maxlength", "10".into())],
                },
                values: &options,
                error: Some("Error"),
                csrf_token: "x",
                shown: "",
                action: "/",
                rd: "/",
                step: 1,
                total: 2,
                lang: "en",
                ui: crate::profile::i18n::ui_text("en"),
                signed_in: SignedIn::new(Some("u"), "/", "x", "en"),
            };
            self.try_render(
                "question.html",
                context! { ..self.base("t"), ..minijinja::Value::from(minijinja::value::Serde(&page)) },
            )?;
            self.try_render(
                "question.html",
                context! { ..context! { back => context! { url => "/", label => "Cancel" } },
                ..self.base("t"), ..minijinja::Value::from(minijinja::value::Serde(&page)) },
            )?;
        }
        Ok(())
    }

    fn base(&self, title: &str) -> minijinja::Value {
        context! { theme => self.theme.to_value(), title => title, lang => "en" }
    }

    fn try_render(&self, name: &str, ctx: minijinja::Value) -> Result<String, RenderError> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|source| RenderError {
                name: name.to_owned(),
                source,
            })
    }

    fn render(&self, name: &str, ctx: minijinja::Value) -> String {
        self.try_render(name, ctx).unwrap_or_else(|e| {
            // Templates were proven at start-up; this is a last resort that shows nothing internal.
            tracing::error!(error = %e, "template failed to render");
            "<!doctype html><title>Error</title><h1>Something went wrong</h1>".to_owned()
        })
    }

    pub fn error(&self, page: &ErrorPage<'_>) -> String {
        self.render(
            "error.html",
            context! { ..self.base(page.title), ..context! {
                status => page.status,
                message => page.message,
                retry_url => page.retry_url,
                signed_in => minijinja::Value::from(minijinja::value::Serde(&page.signed_in)),
            }},
        )
    }

    pub fn question(&self, page: &QuestionPage<'_>) -> String {
        // A refused answer says so in the tab title too: the tab is what a user in another
        // window sees first.
        let title = match page.error {
            Some(_) => format!("{} — {}", page.ui.error, page.question.label),
            None => page.question.label.to_owned(),
        };
        self.render(
            "question.html",
            context! { ..context! { lang => page.lang }, ..self.base(&title), ..minijinja::Value::from(minijinja::value::Serde(page)) },
        )
    }

    pub fn cancelled(&self, page: &CancelledPage<'_>) -> String {
        self.render(
            "cancelled.html",
            context! { ..context! { lang => page.lang }, ..self.base(page.text.title), ..context! {
                message => page.text.message,
                retry => page.text.retry,
                retry_url => page.retry_url,
            }},
        )
    }

    pub fn signed_out(&self, sign_in_url: &str) -> String {
        self.render(
            "signed_out.html",
            context! { ..self.base("Signed out"), ..context! { sign_in_url => sign_in_url } },
        )
    }

    pub fn logout_confirm(&self, action: &str, csrf_token: &str, user: Option<&str>) -> String {
        self.render(
            "logout.html",
            context! { ..self.base("Sign out"), ..context! {
                action => action, csrf_token => csrf_token, user => user,
            }},
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "<script>alert(1)</script>\"'><img src=x onerror=alert(1)>";

    fn pages() -> Pages {
        Pages::new(
            Theme {
                title: HOSTILE.into(),
                primary_color: CssValue::color("#000").expect("a color"),
                logo_url: Some(HOSTILE.into()),
                footer_links: vec![FooterLink {
                    label: HOSTILE.into(),
                    url: HOSTILE.into(),
                }],
                ..Theme::default()
            },
            &[],
        )
        .expect("templates")
    }

    fn assert_inert(html: &str) {
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }

    #[test]
    fn error_page_escapes_everything() {
        let html = pages().error(&ErrorPage {
            status: 400,
            title: HOSTILE,
            message: HOSTILE,
            retry_url: Some("/\"><script>alert(1)</script>"),
            signed_in: Some(SignedIn::new(Some(HOSTILE), HOSTILE, HOSTILE, "en")),
        });
        assert_inert(&html);
        assert!(html.contains("Error 400"));
    }

    #[test]
    fn every_built_in_template_can_be_overridden() {
        let mut built_in: Vec<&str> = TEMPLATES.iter().map(|(name, _)| *name).collect();
        let mut overridable = crate::config::TEMPLATE_NAMES.to_vec();
        built_in.sort_unstable();
        overridable.sort_unstable();
        assert_eq!(built_in, overridable);
    }

    #[test]
    fn cancelled_page_escapes_everything_and_speaks_its_language() {
        let html = pages().cancelled(&CancelledPage {
            lang: "de",
            text: crate::profile::i18n::cancelled_text("de"),
            retry_url: "/\"><script>alert(1)</script>",
        });
        assert_inert(&html);
        assert!(html.contains("<html lang=\"de\">"), "{html}");
        assert!(html.contains("Anmeldung abgebrochen"), "{html}");
        assert!(html.contains("Erneut versuchen"), "{html}");
    }

    #[test]
    fn question_page_escapes_everything_for_every_type() {
        let p = pages();
        let options = vec![HOSTILE.to_owned(), "b".to_owned()];
        let values = vec![HOSTILE.to_owned()];
        for kind in QUESTION_KINDS {
            let page = QuestionPage {
                question: QuestionView {
                    id: "company",
                    label: HOSTILE,
                    help: Some(HOSTILE),
                    placeholder: Some(HOSTILE),
                    kind,
                    input_type: "text",
                    required: false,
                    options: &options,
                    constraints: vec![("pattern", HOSTILE.to_owned())],
                },
                values: &values,
                error: Some(HOSTILE),
                csrf_token: HOSTILE,
                shown: HOSTILE,
                action: "/.profilegate/profile",
                rd: HOSTILE,
                step: 1,
                total: 2,
                lang: "en",
                ui: crate::profile::i18n::ui_text("en"),
                signed_in: SignedIn::new(Some(HOSTILE), "/.profilegate/logout", HOSTILE, "en"),
            };
            let html = p.question(&page);
            assert_inert(&html);
            assert!(html.contains("name=\"_csrf\""), "{kind}");
            assert!(html.contains("name=\"_shown\""), "{kind}");
            assert!(
                html.contains("Skip for now"),
                "{kind}: optional questions can be skipped"
            );
        }
    }

    #[test]
    fn a_template_override_replaces_one_page_and_a_broken_one_fails_at_start() {
        let custom = vec![(
            "signed_out.html".to_owned(),
            "{% extends \"base.html\" %}{% block content %}<p class=custom>Bye {{ sign_in_url }}</p>{% endblock %}".to_owned(),
        )];
        let p = Pages::new(Theme::default(), &custom).expect("override");
        assert!(p
            .signed_out("/x")
            .contains("<p class=custom>Bye &#x2f;x</p>"));
        assert!(
            p.error(&ErrorPage {
                status: 404,
                title: "t",
                message: "m",
                retry_url: None,
                signed_in: None,
            })
            .contains("Error 404"),
            "others stay built in"
        );
        let broken = vec![("error.html".to_owned(), "{% if %}".to_owned())];
        let err = Pages::new(Theme::default(), &broken)
            .err()
            .expect("broken template refused");
        assert!(err.to_string().contains("error.html"), "{err}");
    }

    /// Every page the proxy renders, with `theme`.
    fn every_page(theme: Theme) -> Vec<(String, String)> {
        let p = Pages::new(theme, &[]).expect("templates");
        let mut out = vec![
            (
                "error".to_owned(),
                p.error(&ErrorPage {
                    status: 403,
                    title: "Forbidden",
                    message: "m",
                    retry_url: Some("/"),
                    signed_in: Some(SignedIn::new(Some("Alice"), "/l", "x", "en")),
                }),
            ),
            ("signed_out".to_owned(), p.signed_out("/")),
            ("logout".to_owned(), p.logout_confirm("/l", "x", Some("u"))),
            (
                "cancelled".to_owned(),
                p.cancelled(&CancelledPage {
                    lang: "en",
                    text: crate::profile::i18n::cancelled_text("en"),
                    retry_url: "/",
                }),
            ),
        ];
        let options = ["a".to_owned(), "b".to_owned()];
        for kind in QUESTION_KINDS {
            for error in [None, Some("Too short")] {
                let sample = sample_question(kind, error);
                let page = QuestionPage {
                    question: QuestionView {
                        options: &options,
                        ..sample.question
                    },
                    ..sample
                };
                out.push((
                    format!("question {kind} error={error:?}"),
                    p.question(&page),
                ));
            }
        }
        out
    }

    /// The built-in `<style>` element of a page.
    fn style(html: &str) -> &str {
        let start = html.find("<style>").expect("a <style>") + "<style>".len();
        let end = start + html[start..].find("</style>").expect("</style>");
        &html[start..end]
    }

    #[test]
    fn theme_css_values_reach_the_style_element_unescaped_on_every_page() {
        let color = |c: &str| CssValue::color(c).expect("a color");
        let font = |f: &str| CssValue::font_family(f).expect("a font list");
        let default = Theme::default();
        // The default theme, then each key set on its own.
        let themes = [
            ("default", default.clone()),
            (
                "title",
                Theme {
                    title: "Acme \"Cloud\" & Co".into(),
                    ..default.clone()
                },
            ),
            (
                "primary_color",
                Theme {
                    primary_color: color("RebeccaPurple"),
                    ..default.clone()
                },
            ),
            (
                "background",
                Theme {
                    background: color("#0f172a80"),
                    ..default.clone()
                },
            ),
            (
                "font",
                Theme {
                    font: font("'Inter Tight', \"DejaVu Sans\", sans-serif"),
                    ..default.clone()
                },
            ),
            (
                "logo_url",
                Theme {
                    logo_url: Some("/logo.svg?a=1&b=2".into()),
                    ..default.clone()
                },
            ),
            (
                "custom_css",
                Theme {
                    custom_css: Some("main > p::after { content: \"&\" }".into()),
                    ..default.clone()
                },
            ),
            (
                "footer_links",
                Theme {
                    footer_links: vec![FooterLink {
                        label: "Privacy & terms".into(),
                        url: "/privacy".into(),
                    }],
                    ..default.clone()
                },
            ),
        ];
        for (key, theme) in themes {
            let expected = theme.clone();
            for (page, html) in every_page(theme) {
                let css = style(&html);
                let at = format!("theme key {key}, page {page}");
                assert!(
                    !css.contains('&'),
                    "{at}: HTML escaping inside <style>:\n{css}"
                );
                assert!(
                    css.contains(&format!("--primary: {};", expected.primary_color)),
                    "{at}:\n{css}"
                );
                assert!(
                    css.contains(&format!("--bg: {};", expected.background)),
                    "{at}:\n{css}"
                );
                assert!(
                    css.contains(&format!("--font: {};", expected.font)),
                    "{at}:\n{css}"
                );
                assert!(css.contains("font: 16px/1.5 var(--font);"), "{at}");
                if let Some(custom) = &expected.custom_css {
                    assert!(
                        html.contains(&format!("<style>{custom}</style>")),
                        "{at}: custom CSS is inlined as it is"
                    );
                }
                // The HTML side still escapes: the title is text, the logo an attribute.
                assert!(
                    html.contains(&format!(
                        "<span>{}</span>",
                        minijinja::HtmlEscape(&expected.title)
                    )),
                    "{at}: brand"
                );
                if let Some(logo) = &expected.logo_url {
                    assert!(
                        html.contains(&format!("src=\"{}\"", minijinja::HtmlEscape(logo))),
                        "{at}: logo"
                    );
                }
                for link in &expected.footer_links {
                    assert!(
                        html.contains(&minijinja::HtmlEscape(&link.label).to_string()),
                        "{at}: footer"
                    );
                }
            }
        }
        // The default font list is real CSS, with its quotes.
        let html = &every_page(Theme::default())[0].1;
        assert!(
            style(html)
                .contains(r#"--font: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;"#),
            "{html}"
        );
    }

    #[test]
    fn the_question_page_names_the_user_and_offers_a_sign_out_post_with_the_csrf_token() {
        let pages = every_page(Theme::default());
        for (page, html) in &pages {
            // Before sign-in (cancelled), after sign-out, and the sign-out page itself: no line.
            let signed_in = page.starts_with("question") || page == "error";
            assert_eq!(
                html.contains("Signed in as <strong>Alice</strong>"),
                signed_in,
                "{page}"
            );
            assert_eq!(
                html.contains(
                    "<form method=\"post\" action=\"&#x2f;l\">\n        <input type=\"hidden\" name=\"csrf_token\" value=\"x\">"
                ),
                signed_in,
                "{page}: {html}"
            );
        }
        let p = Pages::new(Theme::default(), &[]).expect("templates");
        let no_name = p.question(&QuestionPage {
            signed_in: SignedIn::new(None, "/l", "x", "de"),
            ..sample_question("text", None)
        });
        assert!(
            !no_name.contains("Angemeldet als"),
            "no name, no \"signed in as\""
        );
        assert!(no_name.contains(">Abmelden</button>"), "{no_name}");
    }

    fn sample_question(kind: &'static str, error: Option<&'static str>) -> QuestionPage<'static> {
        QuestionPage {
            question: QuestionView {
                id: "q",
                label: "Which company?",
                help: None,
                placeholder: None,
                kind,
                input_type: "text",
                required: true,
                options: &[],
                constraints: Vec::new(),
            },
            values: &[],
            error,
            csrf_token: "x",
            shown: "",
            action: "/",
            rd: "/",
            step: 1,
            total: 1,
            lang: "en",
            ui: crate::profile::i18n::ui_text("en"),
            signed_in: SignedIn::new(Some("Alice"), "/l", "x", "en"),
        }
    }

    #[test]
    fn a_refused_answer_says_error_in_the_tab_title() {
        let p = Pages::new(Theme::default(), &[]).expect("templates");
        let title = |html: &str| {
            let start = html.find("<title>").expect("title") + "<title>".len();
            html[start..start + html[start..].find("</title>").expect("end")].to_owned()
        };
        assert_eq!(
            title(&p.question(&sample_question("text", None))),
            "Which company? · localhost"
        );
        assert_eq!(
            title(&p.question(&sample_question("text", Some("Too short")))),
            "Error — Which company? · localhost"
        );
        let de = p.question(&QuestionPage {
            ui: crate::profile::i18n::ui_text("de"),
            ..sample_question("text", Some("Zu kurz"))
        });
        assert_eq!(title(&de), "Fehler — Which company? · localhost");
    }

    #[test]
    fn a_consent_question_is_its_checkbox_text_and_no_heading_repeats_the_title() {
        let p = Pages::new(
            Theme {
                title: "Acme".into(),
                ..Theme::default()
            },
            &[],
        )
        .expect("templates");
        let html = p.question(&sample_question("consent", None));
        assert_eq!(html.matches(">Acme<").count(), 1, "only the brand: {html}");
        assert!(!html.contains("<h1>"), "{html}");
        assert!(html.contains("Which company?\n  </label>"), "{html}");
    }

    #[test]
    fn signed_out_and_logout_pages_escape_everything() {
        let p = pages();
        assert_inert(&p.signed_out(HOSTILE));
        let html = p.logout_confirm(HOSTILE, HOSTILE, Some(HOSTILE));
        assert_inert(&html);
        assert!(html.contains("name=\"csrf_token\""));
    }
}
