//! The JSON API for single-page apps, same origin only: `GET api/pending` (the pending
//! questions with their schema and the CSRF token), `POST api/answers` (answers and skips,
//! validated with exactly the hosted page's rules; the `X-Profilegate-Csrf` header must carry
//! the token) and `GET api/profile` (the user's own answers).

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::super::gate::Gate;
use super::super::reply::{Handled, Reply};
use super::super::request::IncomingRequest;
use super::questions::{previous_answer, stored_answers};
use super::{apply_for, count_funnel};
use crate::error::AppError;
use crate::profile::schema::{raw_values, schema};
use crate::profile::{Applied, FieldErrors};
use crate::session::{tokens_equal, Session};
use crate::store::AnswerSource;

/// Largest JSON body of `POST api/answers`.
const MAX_JSON_BODY: usize = 64 * 1024;
/// The header that must carry the session's CSRF token on `POST api/answers`.
pub const CSRF_HEADER: &str = "x-profilegate-csrf";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswersRequest {
    #[serde(default)]
    answers: Map<String, Value>,
    #[serde(default)]
    skip: Vec<String>,
}

/// The pending questions' schemas, `"required": true` for the session's required ones (soft-
/// required included); one the user answered before (asked again: expired, or a new version)
/// carries the stored value as `"current"`, for the form to pre-fill.
fn pending_schemas(
    gate: &Gate,
    user: &Session,
    stored: &dyn Fn(&str) -> Option<Value>,
) -> Vec<Value> {
    user.pending
        .iter()
        .filter_map(|id| gate.engine.question(id))
        .map(|q| {
            let mut schema = schema(q);
            if let Value::Object(fields) = &mut schema {
                // Soft-required (skipped `max_skips` times): it cannot be skipped any more.
                if user.required.contains(&q.id) {
                    fields.insert("required".into(), Value::Bool(true));
                }
                if let Some(current) = stored(&q.id) {
                    fields.insert("current".into(), current);
                }
            }
            schema
        })
        .collect()
}

/// `GET api/pending`.
pub async fn pending(gate: &Gate, user: &Session) -> Handled {
    let stored = stored_answers(gate, user)
        .await
        .map_err(|e| (e, Vec::new()))?;
    let current = |id: &str| previous_answer(&stored.answers, id).map(|a| a.value.to_json());
    // The funnel: each question listed counts as shown (as the hosted page's GET does).
    for q in user
        .pending
        .iter()
        .filter_map(|id| gate.engine.question(id))
    {
        gate.metrics.funnel.shown(&q.id, q.version);
    }
    Ok(Reply::json(
        200,
        &json!({
            "pending": pending_schemas(gate, user, &current),
            "csrf_token": user.csrf,
            "csrf_header": "X-Profilegate-Csrf",
        }),
    ))
}

/// `GET api/profile`.
pub async fn profile(gate: &Gate, user: &Session) -> Handled {
    let enriched = gate
        .enricher
        .for_session(&*gate.store, user)
        .await
        .map_err(|e| (AppError::Store(e), Vec::new()))?;
    let answers: Map<String, Value> = enriched
        .answers
        .iter()
        .map(|(id, a)| {
            let source = match a.source {
                AnswerSource::User => "user",
                AnswerSource::Provider => "provider",
            };
            (
                id.clone(),
                json!({ "value": a.value.to_json(), "answered_at": a.answered_at, "source": source }),
            )
        })
        .collect();
    Ok(Reply::json(
        200,
        &json!({
            "sub": user.sub,
            "email": user.email,
            "preferred_username": user.preferred_username,
            "answers": answers,
            "pending": user.pending,
        }),
    ))
}

/// Whether a state-changing API request carries the session's CSRF token in [`CSRF_HEADER`].
pub(super) fn csrf_ok(request: &IncomingRequest, user: &Session) -> bool {
    request
        .head()
        .headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| tokens_equal(t, &user.csrf))
}

/// The request's JSON body as `T`: 400 unless it is `application/json`, at most
/// [`MAX_JSON_BODY`] bytes and of `T`'s shape.
pub(super) async fn json_body<T: serde::de::DeserializeOwned>(
    request: &mut IncomingRequest,
) -> Result<T, (AppError, Vec<String>)> {
    let is_json = request
        .head()
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !is_json {
        return Err((
            AppError::BadRequest("content type is not application/json".into()),
            Vec::new(),
        ));
    }
    let body = request
        .read_body(MAX_JSON_BODY)
        .await
        .map_err(|e| (e, Vec::new()))?;
    serde_json::from_slice(&body)
        .map_err(|e| (AppError::BadRequest(format!("JSON: {e}")), Vec::new()))
}

/// `POST api/answers`.
pub async fn answers(gate: &Gate, request: &mut IncomingRequest, mut user: Session) -> Handled {
    if !csrf_ok(request, &user) {
        return Err((AppError::CsrfRejected, Vec::new()));
    }
    let posted: AnswersRequest = json_body(request).await?;
    let mut raw = Vec::with_capacity(posted.answers.len());
    let mut errors = FieldErrors::new();
    for (id, value) in posted.answers.iter().take(64) {
        match raw_values(value) {
            Ok(values) => raw.push((id.clone(), values)),
            Err(msg) => {
                errors.insert(id.clone(), msg.to_owned());
            }
        }
    }
    let outcome = if errors.is_empty() {
        let lang = gate.language(request.head(), &user);
        apply_for(gate, &mut user, &raw, &posted.skip, &lang)
            .await
            .map_err(|e| (e, Vec::new()))?
    } else {
        Applied::Invalid(errors)
    };
    // Not timed: the API has no authenticated time of showing (docs/funnel.md).
    count_funnel(gate, &outcome, &raw, &posted.skip, None);
    match outcome {
        Applied::Invalid(errors) => Ok(Reply::json(
            422,
            &json!({
                "error": "invalid_answers",
                "message": "Some answers are not valid; nothing was saved.",
                "errors": errors,
            }),
        )),
        Applied::Stored(record) => {
            tracing::info!(sub = %user.sub, revision = record.revision, "profile updated (API)");
            let current = |id: &str| record.answers.get(id).map(|a| a.value.to_json());
            let body = json!({
                "pending": pending_schemas(gate, &user, &current),
                "profile": record.answers.iter().map(|(id, a)| (id.clone(), a.value.to_json())).collect::<Map<String, Value>>(),
            });
            Ok(Reply::json(200, &body).with_cookies(vec![gate.sealer.seal_session(&user)]))
        }
    }
}
