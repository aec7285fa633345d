//! The self-service page's own words (`/.profilegate/me`), in the languages of
//! [`super::UI_LANGUAGES`] (English when there is no translation). Below `i18n`; the page's
//! route (`proxy/routes/me.rs`) and template (`templates/me.html`) read them.

/// Every text of the self-service page.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct MeText {
    /// The page's heading and tab title.
    pub title: &'static str,
    pub intro: &'static str,
    pub answers: &'static str,
    /// When there is no answer and nothing pending.
    pub no_answers: &'static str,
    /// Before an answer's time.
    pub answered: &'static str,
    /// An answer's source: given by the user, or taken from the sign-in provider's claims.
    pub by_you: &'static str,
    pub by_provider: &'static str,
    /// A question asked but not answered yet.
    pub pending: &'static str,
    pub answer_now: &'static str,
    /// An answer to a question no longer configured: kept, shown, not editable.
    pub not_asked: &'static str,
    pub change: &'static str,
    pub change_title: &'static str,
    pub save: &'static str,
    pub cancel: &'static str,
    pub saved: &'static str,
    pub skips: &'static str,
    pub skipped: &'static str,
    /// After a skip count ("3 times").
    pub times: &'static str,
    pub sign_ins: &'static str,
    pub login_count: &'static str,
    pub first_login: &'static str,
    pub last_login: &'static str,
    pub erase: &'static str,
    pub erase_help: &'static str,
    pub erase_confirm: &'static str,
    pub erase_yes: &'static str,
    pub erased: &'static str,
    pub nothing_stored: &'static str,
}

pub fn me_text(lang: &str) -> MeText {
    match lang.split('-').next().unwrap_or("en") {
        "de" => MeText {
            title: "Ihre gespeicherten Daten",
            intro: "Das speichert diese Website über Sie, und woher es stammt.",
            answers: "Ihre Antworten",
            no_answers: "Sie haben noch keine Frage beantwortet.",
            answered: "Beantwortet",
            by_you: "von Ihnen",
            by_provider: "von Ihrem Anmeldedienst",
            pending: "Noch nicht beantwortet",
            answer_now: "Jetzt beantworten",
            not_asked: "wird nicht mehr gefragt",
            change: "Ändern",
            change_title: "Antwort ändern",
            save: "Speichern",
            cancel: "Abbrechen",
            saved: "Ihre Antwort wurde gespeichert.",
            skips: "Übersprungene Fragen",
            skipped: "Übersprungen",
            times: "Mal",
            sign_ins: "Anmeldungen",
            login_count: "Anzahl der Anmeldungen",
            first_login: "Erste Anmeldung",
            last_login: "Letzte Anmeldung",
            erase: "Meine Antworten löschen",
            erase_help: "Löscht alle Antworten und übersprungenen Fragen. Pflichtfragen werden erneut gestellt.",
            erase_confirm: "Alle Ihre Antworten löschen? Das kann nicht rückgängig gemacht werden.",
            erase_yes: "Ja, löschen",
            erased: "Ihre Antworten wurden gelöscht.",
            nothing_stored: "Über Sie ist noch nichts gespeichert.",
        },
        "fr" => MeText {
            title: "Vos données enregistrées",
            intro: "Ce que ce site enregistre à votre sujet, et d'où cela provient.",
            answers: "Vos réponses",
            no_answers: "Vous n'avez encore répondu à aucune question.",
            answered: "Répondu le",
            by_you: "par vous",
            by_provider: "par votre fournisseur d'identité",
            pending: "Pas encore répondu",
            answer_now: "Répondre maintenant",
            not_asked: "n'est plus demandé",
            change: "Modifier",
            change_title: "Modifier votre réponse",
            save: "Enregistrer",
            cancel: "Annuler",
            saved: "Votre réponse a été enregistrée.",
            skips: "Questions passées",
            skipped: "Passée le",
            times: "fois",
            sign_ins: "Connexions",
            login_count: "Nombre de connexions",
            first_login: "Première connexion",
            last_login: "Dernière connexion",
            erase: "Effacer mes réponses",
            erase_help: "Efface toutes les réponses et questions passées. Les questions obligatoires seront posées à nouveau.",
            erase_confirm: "Effacer toutes vos réponses ? Cette action est irréversible.",
            erase_yes: "Oui, les effacer",
            erased: "Vos réponses ont été effacées.",
            nothing_stored: "Rien n'est encore enregistré à votre sujet.",
        },
        "es" => MeText {
            title: "Sus datos guardados",
            intro: "Lo que este sitio guarda sobre usted, y de dónde procede.",
            answers: "Sus respuestas",
            no_answers: "Todavía no ha respondido ninguna pregunta.",
            answered: "Respondida el",
            by_you: "por usted",
            by_provider: "por su proveedor de identidad",
            pending: "Aún sin responder",
            answer_now: "Responder ahora",
            not_asked: "ya no se pregunta",
            change: "Cambiar",
            change_title: "Cambiar su respuesta",
            save: "Guardar",
            cancel: "Cancelar",
            saved: "Su respuesta se ha guardado.",
            skips: "Preguntas omitidas",
            skipped: "Omitida el",
            times: "veces",
            sign_ins: "Inicios de sesión",
            login_count: "Número de inicios de sesión",
            first_login: "Primer inicio de sesión",
            last_login: "Último inicio de sesión",
            erase: "Borrar mis respuestas",
            erase_help: "Borra todas las respuestas y preguntas omitidas. Las preguntas obligatorias se volverán a hacer.",
            erase_confirm: "¿Borrar todas sus respuestas? No se puede deshacer.",
            erase_yes: "Sí, borrarlas",
            erased: "Sus respuestas se han borrado.",
            nothing_stored: "Todavía no se guarda nada sobre usted.",
        },
        _ => MeText {
            title: "Your stored data",
            intro: "What this site stores about you, and where it came from.",
            answers: "Your answers",
            no_answers: "You have not answered any question yet.",
            answered: "Answered",
            by_you: "by you",
            by_provider: "by your sign-in provider",
            pending: "Not answered yet",
            answer_now: "Answer now",
            not_asked: "no longer asked",
            change: "Change",
            change_title: "Change your answer",
            save: "Save",
            cancel: "Cancel",
            saved: "Your answer was saved.",
            skips: "Skipped questions",
            skipped: "Skipped",
            times: "times",
            sign_ins: "Sign-ins",
            login_count: "Number of sign-ins",
            first_login: "First sign-in",
            last_login: "Latest sign-in",
            erase: "Erase my answers",
            erase_help: "Removes every answer and skipped question. Required questions will be asked again.",
            erase_confirm: "Erase all your answers? This cannot be undone.",
            erase_yes: "Yes, erase them",
            erased: "Your answers were erased.",
            nothing_stored: "Nothing is stored about you yet.",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ui_language_has_its_own_self_service_words() {
        let english = me_text("en");
        for lang in super::super::UI_LANGUAGES.iter().filter(|l| **l != "en") {
            let t = me_text(lang);
            assert_ne!(t.title, english.title, "{lang}");
            assert_ne!(t.erase, english.erase, "{lang}");
            assert_ne!(t.erase_confirm, english.erase_confirm, "{lang}");
            assert_ne!(t.saved, english.saved, "{lang}");
        }
        assert_eq!(me_text("de-CH").change, "Ändern");
        assert_eq!(me_text("ja").title, english.title);
    }
}
