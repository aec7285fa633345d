//! Which language a page speaks: the first of `ui_locales` (asked for at sign-in), the OP's
//! `locale` claim, the browser's `Accept-Language`, and the configured default that the
//! questions are available in.

use std::collections::BTreeSet;

mod me;
pub use me::{me_text, MeText};

/// `en`, `de`, `pt-BR`: a primary tag of 2-3 letters and optional subtags.
pub fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary_ok = parts
        .next()
        .is_some_and(|p| (2..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphabetic()));
    primary_ok
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The languages the configured questions have texts in (the default included).
pub fn available(default: &str, questions: &[super::Question]) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = questions
        .iter()
        .flat_map(|q| q.translations.keys().cloned())
        .collect();
    out.insert(default.to_ascii_lowercase());
    out
}

/// `Accept-Language` as language tags, most preferred first (q=0 dropped).
pub fn accept_language(header: &str) -> Vec<String> {
    let mut tags: Vec<(f32, usize, String)> = header
        .split(',')
        .take(20)
        .enumerate()
        .filter_map(|(i, part)| {
            let mut pieces = part.split(';');
            let tag = pieces.next()?.trim().to_ascii_lowercase();
            let q = pieces
                .find_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|v| v.parse::<f32>().ok())
                })
                .unwrap_or(1.0);
            (!tag.is_empty() && tag != "*" && q > 0.0 && tag.len() <= 35).then_some((q, i, tag))
        })
        .collect();
    tags.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    tags.into_iter().map(|(_, _, t)| t).collect()
}

/// The first candidate (exactly, or by its primary subtag) that is available; else `default`.
pub fn choose<'a>(
    candidates: impl IntoIterator<Item = &'a str>,
    available: &BTreeSet<String>,
    default: &str,
) -> String {
    for c in candidates {
        let c = c.to_ascii_lowercase();
        if available.contains(&c) {
            return c;
        }
        if let Some(primary) = c.split(['-', '_']).next() {
            if available.contains(primary) {
                return primary.to_owned();
            }
        }
    }
    default.to_ascii_lowercase()
}

/// The page's own words in a language (English when there is no translation).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct UiText {
    pub continue_: &'static str,
    pub skip: &'static str,
    pub choose: &'static str,
    pub yes: &'static str,
    pub no: &'static str,
    pub question: &'static str,
    pub of: &'static str,
    /// Before the user's name on the pages after sign-in.
    pub signed_in_as: &'static str,
    pub sign_out: &'static str,
    /// Before the tab title of a page whose answer was refused.
    pub error: &'static str,
}

pub fn ui_text(lang: &str) -> UiText {
    match lang.split('-').next().unwrap_or("en") {
        "de" => UiText {
            continue_: "Weiter",
            skip: "Jetzt überspringen",
            choose: "Bitte wählen…",
            yes: "Ja",
            no: "Nein",
            question: "Frage",
            of: "von",
            signed_in_as: "Angemeldet als",
            sign_out: "Abmelden",
            error: "Fehler",
        },
        "fr" => UiText {
            continue_: "Continuer",
            skip: "Passer pour l'instant",
            choose: "Choisir…",
            yes: "Oui",
            no: "Non",
            question: "Question",
            of: "sur",
            signed_in_as: "Connecté en tant que",
            sign_out: "Se déconnecter",
            error: "Erreur",
        },
        "es" => UiText {
            continue_: "Continuar",
            skip: "Omitir por ahora",
            choose: "Elegir…",
            yes: "Sí",
            no: "No",
            question: "Pregunta",
            of: "de",
            signed_in_as: "Sesión iniciada como",
            sign_out: "Cerrar sesión",
            error: "Error",
        },
        _ => UiText {
            continue_: "Continue",
            skip: "Skip for now",
            choose: "Choose…",
            yes: "Yes",
            no: "No",
            question: "Question",
            of: "of",
            signed_in_as: "Signed in as",
            sign_out: "Sign out",
            error: "Error",
        },
    }
}

/// The "Sign-in cancelled" page's words (the OP answered `access_denied`, `consent_required`,
/// `login_required` or `interaction_required`).
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct CancelledText {
    pub title: &'static str,
    pub message: &'static str,
    pub retry: &'static str,
}

/// The languages the proxy's own words are written in.
pub const UI_LANGUAGES: [&str; 4] = ["en", "de", "fr", "es"];

pub fn cancelled_text(lang: &str) -> CancelledText {
    match lang.split('-').next().unwrap_or("en") {
        "de" => CancelledText {
            title: "Anmeldung abgebrochen",
            message: "Sie wurden nicht angemeldet: Die Anmeldung wurde beim Identitätsanbieter abgebrochen oder nicht abgeschlossen.",
            retry: "Erneut versuchen",
        },
        "fr" => CancelledText {
            title: "Connexion annulée",
            message: "Vous n'êtes pas connecté : la connexion a été annulée ou n'a pas été terminée auprès du fournisseur d'identité.",
            retry: "Réessayer",
        },
        "es" => CancelledText {
            title: "Inicio de sesión cancelado",
            message: "No ha iniciado sesión: el inicio de sesión se canceló o no se completó en el proveedor de identidad.",
            retry: "Intentar de nuevo",
        },
        _ => CancelledText {
            title: "Sign-in cancelled",
            message: "You were not signed in: the sign-in was cancelled or not completed at the identity provider.",
            retry: "Try again",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn langs(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn accept_language_is_ordered_by_quality() {
        assert_eq!(
            accept_language("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5"),
            ["fr-ch", "fr", "en", "de"]
        );
        assert_eq!(accept_language("de;q=0, en"), ["en"]);
        assert!(accept_language("").is_empty());
    }

    #[test]
    fn the_first_available_language_wins() {
        let available = langs(&["en", "de", "pt-br"]);
        assert_eq!(choose(["fr", "de-AT"], &available, "en"), "de");
        assert_eq!(choose(["pt-BR"], &available, "en"), "pt-br");
        assert_eq!(choose(["ja"], &available, "en"), "en");
        assert_eq!(choose([], &available, "en"), "en");
    }

    #[test]
    fn every_ui_language_has_its_own_signed_in_and_error_words() {
        let english = ui_text("en");
        assert_eq!(
            (english.signed_in_as, english.sign_out, english.error),
            ("Signed in as", "Sign out", "Error")
        );
        for lang in UI_LANGUAGES.iter().filter(|l| **l != "en") {
            let t = ui_text(lang);
            assert_ne!(t.signed_in_as, english.signed_in_as, "{lang}");
            assert_ne!(t.sign_out, english.sign_out, "{lang}");
            assert!(!t.error.is_empty(), "{lang}");
        }
        assert_eq!(ui_text("fr").error, "Erreur");
        assert_eq!(ui_text("de-CH").sign_out, "Abmelden");
    }

    #[test]
    fn every_ui_language_has_its_own_cancelled_page_words() {
        let english = cancelled_text("en");
        for lang in UI_LANGUAGES.iter().filter(|l| **l != "en") {
            let t = cancelled_text(lang);
            assert_ne!(t.title, english.title, "{lang}");
            assert_ne!(t.message, english.message, "{lang}");
            assert_ne!(t.retry, english.retry, "{lang}");
        }
        assert_eq!(cancelled_text("de-AT").retry, "Erneut versuchen");
        assert_eq!(cancelled_text("ja").title, english.title);
    }
}
