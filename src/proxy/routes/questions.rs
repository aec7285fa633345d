//! The question page (`/.profilegate/profile`): show the next pending question, take an answer
//! or a skip, store it durably, and send the user on; plus the redirects and 403s that point
//! users with pending questions there. Validating and storing is `profile::apply`'s.

use std::sync::Arc;

use http::Method;

use super::super::gate::Gate;
use super::super::reply::{Handled, Reply};
use super::super::request::{Form, IncomingRequest};
use super::next::{next_question, profile_url, questions_location};
use super::{apply_for, count_funnel};
use crate::config::QuestionUi;
use crate::enrich::Enriched;
use crate::error::AppError;
use crate::profile::{Applied, Question};
use crate::redirect::ReturnTo;
use crate::render::{QuestionPage, QuestionView, SignedIn};
use crate::session::{now_millis, tokens_equal, Session};
use crate::store::StoredAnswer;

// The page's own controls start with `_`, which no question id can (ids are `[a-z][a-z0-9_]*`).

/// Largest body of an answer form.
const MAX_ANSWER_BODY: usize = 64 * 1024;
/// Most values accepted for one field (a multiselect).
const MAX_VALUES: usize = 64;

/// A browser navigation while questions are pending: to the questions, coming back here.
pub fn ask(gate: &Gate, request: &IncomingRequest, user: &Session) -> Reply {
    let here = request
        .head()
        .uri
        .path_and_query()
        .and_then(|pq| ReturnTo::from_path(pq.as_str()))
        .unwrap_or_else(ReturnTo::root);
    let to = questions_location(gate, user, &here).unwrap_or_else(|| profile_url(gate, &here));
    Reply::redirect(303, to)
}

/// An API request while a required question is pending: 403 JSON naming the questions.
pub fn pending_json(gate: &Gate, user: &Session) -> Reply {
    let questions: Vec<serde_json::Value> = user
        .required
        .iter()
        .filter_map(|id| gate.engine.question(id))
        // Every one listed is required (soft-required ones included).
        .map(|q| serde_json::json!({ "id": q.id, "label": q.label, "required": true }))
        .collect();
    Reply::json(
        403,
        &serde_json::json!({
            "error": "profile_incomplete",
            "message": "Answer the pending profile questions first.",
            "pending": questions,
            "questions_url": format!("{}{}", gate.origin, gate.routes.profile),
        }),
    )
}

/// The question as the page shows it; `required` also when the engine made an optional
/// question required (skipped `max_skips` times): then it has no "Skip for now".
fn view<'q>(q: &'q Question, lang: &str, required: bool) -> QuestionView<'q> {
    let (label, help, placeholder) = q.texts(lang);
    QuestionView {
        id: &q.id,
        label,
        help,
        placeholder,
        kind: q.kind.as_str(),
        input_type: q.input_type(),
        required,
        options: &q.options,
        constraints: q.html_constraints(),
    }
}

fn return_to(gate: &Gate, rd: Option<&str>) -> ReturnTo {
    let rt = ReturnTo::parse_or_root(rd, &gate.origin);
    // Never come back to the question page itself.
    if gate
        .routes
        .is_reserved(rt.path().split('?').next().unwrap_or("/"))
    {
        ReturnTo::root()
    } else {
        rt
    }
}

#[allow(clippy::too_many_arguments)]
fn render(
    gate: &Gate,
    lang: &str,
    status: u16,
    user: &Session,
    q: &Question,
    values: &[String],
    error: Option<&str>,
    shown: &str,
    rd: &ReturnTo,
) -> Reply {
    let page = QuestionPage {
        question: view(q, lang, q.required || user.required.contains(&q.id)),
        values,
        error,
        csrf_token: &user.csrf,
        shown,
        action: &gate.routes.profile,
        rd: rd.path(),
        step: 1,
        total: user.pending.len(),
        lang,
        ui: crate::profile::i18n::ui_text(lang),
        signed_in: SignedIn::new(user.display_name(), &gate.routes.logout, &user.csrf, lang),
    };
    Reply::html(status, gate.pages.question(&page))
}

/// The user's stored answers (the profile view, loaded on a miss), for pre-filling questions
/// asked again. Off the hot path: only the question page and `api/pending` read it.
pub(super) async fn stored_answers(gate: &Gate, user: &Session) -> Result<Arc<Enriched>, AppError> {
    gate.enricher
        .for_session(&*gate.store, user)
        .await
        .map_err(AppError::Store)
}

/// The stored answer to question `id`, if the user gave one before: a question asked again
/// (its answer expired, or its version rose) shows it for confirmation.
pub(super) fn previous_answer<'a>(
    answers: &'a [(String, StoredAnswer)],
    id: &str,
) -> Option<&'a StoredAnswer> {
    answers.iter().find(|(a, _)| a == id).map(|(_, a)| a)
}

/// `GET /.profilegate/profile`: the next pending question (pre-filled with the user's earlier
/// answer when it is asked again), or on to the app.
pub async fn show(gate: &Gate, request: &IncomingRequest, user: &Session) -> Handled {
    let [rd] = request.query_params(["rd"]);
    let rd = return_to(gate, rd.as_deref());
    Ok(match (next_question(gate, user), &gate.ui) {
        (Some(q), QuestionUi::Hosted) => {
            let lang = gate.language(request.head(), user);
            let stored = stored_answers(gate, user)
                .await
                .map_err(|e| (e, Vec::new()))?;
            // The same path as a refused answer's re-render: the values fill the inputs.
            let values = previous_answer(&stored.answers, &q.id)
                .map(|a| a.value.form_values())
                .unwrap_or_default();
            // The funnel: shown once per GET (a refused answer's re-render is not counted
            // again), and the MAC'd time of it for the answer's time to answer.
            gate.metrics.funnel.shown(&q.id, q.version);
            let shown = gate
                .sealer
                .shown_stamp(&user.csrf, &q.id, q.version, now_millis());
            render(gate, &lang, 200, user, q, &values, None, &shown, &rd)
        }
        (Some(_), QuestionUi::Redirect { .. }) => {
            let to =
                questions_location(gate, user, &rd).unwrap_or_else(|| rd.absolute(&gate.origin));
            Reply::redirect(303, to)
        }
        (None, _) => Reply::redirect(303, rd.absolute(&gate.origin)),
    })
}

/// `POST /.profilegate/profile`: validate and store an answer (or a skip), then move on.
pub async fn submit(gate: &Gate, request: &mut IncomingRequest, mut user: Session) -> Handled {
    debug_assert_eq!(request.head().method, Method::POST);
    let body = request
        .read_body(MAX_ANSWER_BODY)
        .await
        .map_err(|e| (e, Vec::new()))?;
    let form = Form::parse(&body);
    let field = |name: &str| form.field(name);
    if !field("_csrf").is_some_and(|t| tokens_equal(t, &user.csrf)) {
        return Err((AppError::CsrfRejected, Vec::new()));
    }
    let rd = return_to(gate, field("_rd"));
    let Some(q) = field("_question")
        .filter(|id| user.pending.iter().any(|p| p == id))
        .and_then(|id| gate.engine.question(id))
    else {
        // A stale form (already answered, or from an older login): show what is pending now.
        return Ok(Reply::redirect(303, profile_url(gate, &rd)));
    };
    let lang = gate.language(request.head(), &user);
    let skip = field("_action") == Some("skip");
    let values: Vec<String> = if skip {
        Vec::new()
    } else {
        form.pairs()
            .iter()
            .filter(|(k, _)| *k == q.id)
            .take(MAX_VALUES)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let (answers, skips) = if skip {
        (Vec::new(), vec![q.id.clone()])
    } else {
        (vec![(q.id.clone(), values.clone())], Vec::new())
    };
    // When the question was shown, if the form carries a stamp this proxy made for this
    // session and question (a template without the field, or a forged one: not timed).
    let stamp = field("_shown");
    let shown_at = stamp.and_then(|stamp| {
        gate.sealer
            .open_shown_stamp(stamp, &user.csrf, &q.id, q.version)
    });
    // A refused answer's re-render keeps the first showing's stamp.
    let shown = stamp.filter(|_| shown_at.is_some()).unwrap_or_default();
    // The same rules and the same durable write as the JSON API and the custom UI.
    let applied = apply_for(gate, &mut user, &answers, &skips, &lang)
        .await
        .map_err(|e| (e, Vec::new()))?;
    count_funnel(gate, &applied, &answers, &skips, shown_at);
    let record = match applied {
        Applied::Stored(record) => record,
        Applied::Invalid(errors) => {
            let message = errors.get(&q.id).map(String::as_str);
            return Ok(render(
                gate, &lang, 422, &user, q, &values, message, shown, &rd,
            ));
        }
    };
    tracing::info!(sub = %user.sub, question = %q.id, revision = record.revision, "profile updated");
    let next = if next_question(gate, &user).is_some() {
        profile_url(gate, &rd)
    } else {
        rd.absolute(&gate.origin)
    };
    Ok(Reply::redirect(303, next).with_cookies(vec![gate.sealer.seal_session(&user)]))
}

#[cfg(test)]
mod tests {
    //! The pre-filled answer of a question asked again, from the store through the profile
    //! view to the page's inputs (the same values path as a refused answer's re-render).

    use super::*;
    use crate::enrich::Enricher;
    use crate::jwt::SigningKey;
    use crate::profile::{AnswerValue, QuestionType};
    use crate::render::{Pages, QuestionPage, Theme};
    use crate::store::{AnswerSource, ProfileStore, SledOptions, SledStore, UserKey};

    fn question(id: &str, kind: QuestionType, options: &[&str]) -> Question {
        let mut q = Question::new(id, id, kind);
        q.options = options.iter().map(|o| (*o).to_owned()).collect();
        q.expires_after = Some(std::time::Duration::from_secs(60));
        q
    }

    fn page_for(pages: &Pages, q: &Question, values: &[String]) -> String {
        page_with(pages, view(q, "en", q.required), values)
    }

    fn page_with(pages: &Pages, question: QuestionView<'_>, values: &[String]) -> String {
        pages.question(&QuestionPage {
            question,
            values,
            error: None,
            csrf_token: "t",
            shown: "",
            action: "/.profilegate/profile",
            rd: "/",
            step: 1,
            total: 1,
            lang: "en",
            ui: crate::profile::i18n::ui_text("en"),
            signed_in: SignedIn::new(Some("Alice"), "/.profilegate/logout", "t", "en"),
        })
    }

    #[tokio::test]
    async fn a_question_asked_again_shows_the_stored_answer_in_its_inputs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SledStore::open(&dir.path().join("data"), SledOptions::default())
            .await
            .expect("store");
        let key = UserKey::new("https://op.example", "alice");
        // (question, stored answer, what its input must show)
        let cases = [
            (
                question("company", QuestionType::Text, &[]),
                AnswerValue::Text("Acme & Co".into()),
                r#"value="Acme &amp; Co""#,
            ),
            (
                question("role", QuestionType::Select, &["Engineering", "Sales"]),
                AnswerValue::Text("Sales".into()),
                r#"<option value="Sales" selected>"#,
            ),
            (
                question("langs", QuestionType::Multiselect, &["de", "en", "fr"]),
                AnswerValue::List(vec!["de".into(), "fr".into()]),
                r#"value="fr" checked"#,
            ),
            (
                question("newsletter", QuestionType::Boolean, &[]),
                AnswerValue::Bool(false),
                r#"value="false" checked"#,
            ),
            (
                question("born", QuestionType::Date, &[]),
                AnswerValue::Date("1990-04-01".into()),
                r#"value="1990-04-01""#,
            ),
            (
                question("team_size", QuestionType::Integer, &[]),
                AnswerValue::Integer(12),
                r#"value="12""#,
            ),
        ];
        let answered_at = 1_000;
        let answers = cases
            .iter()
            .map(|(q, value, _)| {
                let answer = StoredAnswer {
                    value: value.clone(),
                    answered_at,
                    question_version: q.version,
                    source: AnswerSource::User,
                };
                (q.id.clone(), answer)
            })
            .collect();
        store.save_answers(&key, answers).await.expect("saved");
        let der = SigningKey::generate_pkcs8().expect("key");
        let signing = Arc::new(SigningKey::from_pkcs8(&der).expect("key"));
        let enricher = Enricher::new(
            signing,
            "https://op.example".into(),
            "https://app.example".into(),
            "https://upstream.example".into(),
            300,
            10,
        );
        let record = store.load(&key).await.expect("load").expect("record");
        let stored = enricher.update("alice", Arc::new(record));
        let pages = Pages::new(Theme::default(), &[]).expect("templates");
        for (q, value, shown) in &cases {
            let answer = previous_answer(&stored.answers, &q.id).expect("stored");
            assert!(
                !crate::profile::answer_is_current(q, answer, answered_at + 60),
                "{}: expired, so asked again",
                q.id
            );
            assert_eq!(
                answer.value.to_json(),
                value.to_json(),
                "api/pending's current"
            );
            let html = page_for(&pages, q, &answer.value.form_values());
            assert!(html.contains(shown), "{}: {shown} in\n{html}", q.id);
        }
        // A question never answered starts empty.
        let fresh = question("city", QuestionType::Text, &[]);
        assert!(previous_answer(&stored.answers, &fresh.id).is_none());
        let html = page_for(&pages, &fresh, &[]);
        assert!(html.contains(r#"value="""#), "{html}");
    }

    #[test]
    fn a_soft_required_question_offers_no_skip() {
        let pages = Pages::new(Theme::default(), &[]).expect("templates");
        let role = question("role", QuestionType::Text, &[]);
        assert!(page_for(&pages, &role, &[]).contains("Skip for now"));
        let soft = page_with(&pages, view(&role, "en", true), &[]);
        assert!(!soft.contains("Skip for now"), "{soft}");
    }
}
