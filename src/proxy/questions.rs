//! The question page (`/.profilegate/profile`): show the next pending question, take an answer
//! or a skip, store it durably, and send the user on; plus the redirects and 403s that point
//! users with pending questions there, and the JWKS of the profile JWT.

use super::Session;
use http::Method;

use super::api::apply;
use super::handlers::{fill_all_params, read_body, Handled};
use super::{Answer, Gate};
use crate::config::QuestionUi;
use crate::error::AppError;
use crate::profile::Question;
use crate::redirect::ReturnTo;
use crate::render::{QuestionPage, QuestionView, SignedIn};
use crate::session::{tokens_equal, Session as UserSession};

// The page's own controls start with `_`, which no question id can (ids are `[a-z][a-z0-9_]*`).

/// Largest body of an answer form.
const MAX_ANSWER_BODY: usize = 64 * 1024;
/// Most values accepted for one field (a multiselect).
const MAX_VALUES: usize = 64;

/// `/.profilegate/profile?rd=<return_to>` on the proxy's origin.
pub fn profile_url(gate: &Gate, return_to: &ReturnTo) -> String {
    let rd: String = url::form_urlencoded::byte_serialize(return_to.path().as_bytes()).collect();
    format!("{}{}?rd={rd}", gate.origin, gate.routes.profile)
}

/// Where a user with pending questions answers them, coming back to `rd`: the hosted page or
/// the custom UI (with a fresh signed token). `None` when nothing is pending.
pub fn questions_location(gate: &Gate, user: &UserSession, rd: &ReturnTo) -> Option<String> {
    next_question(gate, user)?;
    match &gate.ui {
        QuestionUi::Hosted => Some(profile_url(gate, rd)),
        QuestionUi::Redirect {
            url,
            token_lifetime,
        } => super::custom_ui::redirect_url(
            gate,
            url,
            token_lifetime.as_secs(),
            user,
            rd,
            &Default::default(),
            &Default::default(),
        )
        .map_err(|e| tracing::error!(error = %e, "custom UI token"))
        .ok(),
    }
}

/// A browser navigation while questions are pending: to the questions, coming back here.
pub fn ask(gate: &Gate, session: &Session, user: &UserSession) -> Answer {
    let here = session
        .req_header()
        .uri
        .path_and_query()
        .and_then(|pq| ReturnTo::from_path(pq.as_str()))
        .unwrap_or_else(ReturnTo::root);
    let to = questions_location(gate, user, &here).unwrap_or_else(|| profile_url(gate, &here));
    Answer::redirect(303, to)
}

/// An API request while a required question is pending: 403 JSON naming the questions.
pub fn pending_json(gate: &Gate, user: &UserSession) -> Answer {
    let questions: Vec<serde_json::Value> = user
        .required
        .iter()
        .filter_map(|id| gate.engine.question(id))
        .map(|q| serde_json::json!({ "id": q.id, "label": q.label, "required": q.required }))
        .collect();
    Answer::json(
        403,
        &serde_json::json!({
            "error": "profile_incomplete",
            "message": "Answer the pending profile questions first.",
            "pending": questions,
            "questions_url": format!("{}{}", gate.origin, gate.routes.profile),
        }),
    )
}

pub fn jwks(gate: &Gate) -> Answer {
    Answer::json_text(200, gate.enricher.jwks_json().to_owned())
}

fn view<'q>(q: &'q Question, lang: &str) -> QuestionView<'q> {
    let (label, help, placeholder) = q.texts(lang);
    QuestionView {
        id: &q.id,
        label,
        help,
        placeholder,
        kind: q.kind.as_str(),
        input_type: q.input_type(),
        required: q.required,
        options: &q.options,
        constraints: q.html_constraints(),
    }
}

/// The first pending question this configuration still knows.
pub(super) fn next_question<'g>(gate: &'g Gate, user: &UserSession) -> Option<&'g Question> {
    user.pending.iter().find_map(|id| gate.engine.question(id))
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
    user: &UserSession,
    q: &Question,
    values: &[String],
    error: Option<&str>,
    rd: &ReturnTo,
) -> Answer {
    let page = QuestionPage {
        question: view(q, lang),
        values,
        error,
        csrf_token: &user.csrf,
        action: &gate.routes.profile,
        rd: rd.path(),
        step: 1,
        total: user.pending.len(),
        lang,
        ui: crate::profile::i18n::ui_text(lang),
        signed_in: SignedIn::new(user.display_name(), &gate.routes.logout, &user.csrf, lang),
    };
    Answer::html(status, gate.pages.question(&page))
}

/// `GET /.profilegate/profile`: the next pending question, or on to the app.
pub fn show(gate: &Gate, session: &Session, user: &UserSession) -> Answer {
    let [rd] = super::handlers::query_params(session, ["rd"]);
    let rd = return_to(gate, rd.as_deref());
    match (next_question(gate, user), &gate.ui) {
        (Some(q), QuestionUi::Hosted) => {
            let lang = gate.language(session.req_header(), user);
            render(gate, &lang, 200, user, q, &[], None, &rd)
        }
        (Some(_), QuestionUi::Redirect { .. }) => {
            let to =
                questions_location(gate, user, &rd).unwrap_or_else(|| rd.absolute(&gate.origin));
            Answer::redirect(303, to)
        }
        (None, _) => Answer::redirect(303, rd.absolute(&gate.origin)),
    }
}

/// `POST /.profilegate/profile`: validate and store an answer (or a skip), then move on.
pub async fn submit(gate: &Gate, session: &mut Session, mut user: UserSession) -> Handled {
    debug_assert_eq!(session.req_header().method, Method::POST);
    let body = read_body(session, MAX_ANSWER_BODY).await?;
    let fields = fill_all_params(&body);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if !field("_csrf").is_some_and(|t| tokens_equal(t, &user.csrf)) {
        return Err((AppError::CsrfRejected, Vec::new()));
    }
    let rd = return_to(gate, field("_rd"));
    let Some(q) = field("_question")
        .filter(|id| user.pending.iter().any(|p| p == id))
        .and_then(|id| gate.engine.question(id))
    else {
        // A stale form (already answered, or from an older login): show what is pending now.
        return Ok(Answer::redirect(303, profile_url(gate, &rd)));
    };
    let lang = gate.language(session.req_header(), &user);
    let skip = field("_action") == Some("skip");
    let values: Vec<String> = if skip {
        Vec::new()
    } else {
        fields
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
    // The same rules and the same durable write as the JSON API and the custom UI.
    let record = match apply(gate, &mut user, &answers, &skips, &lang)
        .await
        .map_err(|e| (e, Vec::new()))?
    {
        Ok(record) => record,
        Err(errors) => {
            let message = errors.get(&q.id).map(String::as_str);
            return Ok(render(gate, &lang, 422, &user, q, &values, message, &rd));
        }
    };
    tracing::info!(sub = %user.sub, question = %q.id, revision = record.revision, "profile updated");
    let next = if next_question(gate, &user).is_some() {
        profile_url(gate, &rd)
    } else {
        rd.absolute(&gate.origin)
    };
    Ok(Answer::redirect(303, next).with_cookies(vec![gate.sealer.seal_session(&user)]))
}
