//! The JSON API for single-page apps, same origin only: `GET api/pending` (the pending
//! questions with their schema and the CSRF token), `POST api/answers` (answers and skips,
//! validated with exactly the hosted page's rules; the `X-Profilegate-Csrf` header must carry
//! the token) and `GET api/profile` (the user's own answers).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Session;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::handlers::{read_body, Handled};
use super::{Answer, Gate};
use crate::error::AppError;
use crate::profile::schema::{raw_values, schema};
use crate::session::{now_secs, tokens_equal, Session as UserSession};
use crate::store::{AnswerSource, ProfileRecord, Skip, StoredAnswer};

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

fn pending_schemas(gate: &Gate, user: &UserSession) -> Vec<Value> {
    user.pending
        .iter()
        .filter_map(|id| gate.engine.question(id))
        .map(schema)
        .collect()
}

/// `GET api/pending`.
pub fn pending(gate: &Gate, user: &UserSession) -> Answer {
    Answer::json(
        200,
        &json!({
            "pending": pending_schemas(gate, user),
            "csrf_token": user.csrf,
            "csrf_header": "X-Profilegate-Csrf",
        }),
    )
}

/// `GET api/profile`.
pub async fn profile(gate: &Gate, user: &UserSession) -> Handled {
    let enriched = gate
        .enricher
        .for_session(user)
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
    Ok(Answer::json(
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

/// What went wrong with which answer: id -> message.
pub type FieldErrors = BTreeMap<String, String>;

/// Validates `answers` and `skips` for `user`'s pending questions with the hosted page's rules
/// and, when every one is valid, stores them all durably. Nothing is stored when any is invalid.
pub async fn apply(
    gate: &Gate,
    user: &mut UserSession,
    answers: &[(String, Vec<String>)],
    skips: &[String],
    lang: &str,
) -> Result<Result<ProfileRecord, FieldErrors>, AppError> {
    let mut errors = FieldErrors::new();
    let mut valid = Vec::new();
    let pending = |id: &str| user.pending.iter().any(|p| p == id);
    for (id, raw) in answers {
        let Some(q) = gate.engine.question(id).filter(|_| pending(id)) else {
            errors.insert(id.clone(), "This question is not pending.".into());
            continue;
        };
        match q.validate_in(raw, lang) {
            Ok(value) => valid.push((
                id.clone(),
                StoredAnswer {
                    value,
                    answered_at: now_secs(),
                    question_version: q.version,
                    source: AnswerSource::User,
                },
            )),
            Err(e) => {
                errors.insert(id.clone(), e.message);
            }
        }
    }
    for id in skips {
        match gate.engine.question(id).filter(|_| pending(id)) {
            None => {
                errors.insert(id.clone(), "This question is not pending.".into());
            }
            Some(q) if q.required => {
                errors.insert(id.clone(), "This question must be answered.".into());
            }
            Some(_) if answers.iter().any(|(a, _)| a == id) => {
                errors.insert(id.clone(), "Answer or skip a question, not both.".into());
            }
            Some(_) => {}
        }
    }
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    let key = gate.enricher.user_key(&user.sub);
    let store = gate.enricher.store();
    let mut record = None;
    if !valid.is_empty() {
        record = Some(store.save_answers(&key, valid).await?);
    }
    for id in skips {
        let skip = Skip {
            at: now_secs(),
            login: user.login,
        };
        record = Some(store.record_skip(&key, id, skip).await?);
    }
    let record = match record {
        Some(r) => r,
        None => store.load(&key).await?.unwrap_or_default(),
    };
    for (id, _) in answers {
        user.settle(id);
    }
    for id in skips {
        user.settle(id);
    }
    user.rev = user.rev.max(record.revision);
    gate.enricher.update(&user.sub, Arc::new(record.clone()));
    Ok(Ok(record))
}

/// `POST api/answers`.
pub async fn answers(gate: &Gate, session: &mut Session, mut user: UserSession) -> Handled {
    let req = session.req_header();
    let csrf_ok = req
        .headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| tokens_equal(t, &user.csrf));
    if !csrf_ok {
        return Err((AppError::CsrfRejected, Vec::new()));
    }
    let json_body = req
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !json_body {
        return Err((
            AppError::BadRequest("content type is not application/json".into()),
            Vec::new(),
        ));
    }
    let body = read_body(session, MAX_JSON_BODY).await?;
    let request: AnswersRequest = serde_json::from_slice(&body)
        .map_err(|e| (AppError::BadRequest(format!("JSON: {e}")), Vec::new()))?;
    let mut raw = Vec::with_capacity(request.answers.len());
    let mut errors = FieldErrors::new();
    for (id, value) in request.answers.iter().take(64) {
        match raw_values(value) {
            Ok(values) => raw.push((id.clone(), values)),
            Err(msg) => {
                errors.insert(id.clone(), msg.to_owned());
            }
        }
    }
    let outcome = if errors.is_empty() {
        let lang = gate.language(session.req_header(), &user);
        apply(gate, &mut user, &raw, &request.skip, &lang)
            .await
            .map_err(|e| (e, Vec::new()))?
    } else {
        Err(errors)
    };
    match outcome {
        Err(errors) => Ok(Answer::json(
            422,
            &json!({
                "error": "invalid_answers",
                "message": "Some answers are not valid; nothing was saved.",
                "errors": errors,
            }),
        )),
        Ok(record) => {
            tracing::info!(sub = %user.sub, revision = record.revision, "profile updated (API)");
            let body = json!({
                "pending": pending_schemas(gate, &user),
                "profile": record.answers.iter().map(|(id, a)| (id.clone(), a.value.to_json())).collect::<Map<String, Value>>(),
            });
            Ok(Answer::json(200, &body).with_cookies(vec![gate.sealer.seal_session(&user)]))
        }
    }
}
