//! The self-service JSON (`/.profilegate/api/me`), same origin only, with the JSON API's
//! conventions (`api.rs`): `GET` what profilegate stores about the user; `PUT` or `POST`
//! `{"id": …, "value": …}` changes one answer (validated like every answer; 400 with the
//! message); `DELETE` erases the answers. The changes need the session's CSRF token in the
//! `X-Profilegate-Csrf` header and answer with the new state and the re-sealed session cookie.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::super::super::gate::Gate;
use super::super::super::reply::{Handled, Reply};
use super::super::super::request::IncomingRequest;
use super::super::api::{csrf_ok, json_body};
use super::{change, changeable, erase, record_of};
use crate::error::AppError;
use crate::profile::schema::raw_values;
use crate::profile::Applied;
use crate::session::Session;
use crate::store::{AnswerSource, ProfileRecord};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeRequest {
    id: String,
    #[serde(default)]
    value: Value,
}

/// Everything stored about the user, in the language's labels: answers (value, time, source),
/// skips, sign-ins, the pending questions; and the CSRF token the changes need.
fn state(gate: &Gate, user: &Session, record: &ProfileRecord, lang: &str) -> Value {
    let label = |id: &str| gate.engine.question(id).map(|q| q.texts(lang).0.to_owned());
    let answers: Map<String, Value> = record
        .answers
        .iter()
        .map(|(id, a)| {
            let source = match a.source {
                AnswerSource::User => "user",
                AnswerSource::Provider => "provider",
            };
            let answer = json!({
                "label": label(id),
                "value": a.value.to_json(),
                "answered_at": a.answered_at,
                "source": source,
                "question_version": a.question_version,
                "changeable": changeable(gate, user, record, id).is_some(),
            });
            (id.clone(), answer)
        })
        .collect();
    let skips: Map<String, Value> = record
        .skips
        .iter()
        .map(|(id, s)| {
            let skip =
                json!({ "label": label(id), "at": s.at, "count": s.count, "login": s.login });
            (id.clone(), skip)
        })
        .collect();
    let pending: Vec<Value> = user
        .pending
        .iter()
        .filter_map(|id| gate.engine.question(id))
        .map(|q| {
            json!({
                "id": q.id,
                "label": q.texts(lang).0,
                "required": q.required || user.required.contains(&q.id),
            })
        })
        .collect();
    let key = gate.user_key(&user.sub);
    json!({
        "issuer": key.issuer,
        "sub": key.subject,
        "email": user.email,
        "preferred_username": user.preferred_username,
        "name": user.name,
        "answers": answers,
        "skips": skips,
        "pending": pending,
        "logins": record.logins,
        "first_login_at": record.first_login_at,
        "last_login_at": record.last_login_at,
        "revision": record.revision,
        "csrf_token": user.csrf,
        "csrf_header": "X-Profilegate-Csrf",
    })
}

/// `GET api/me`.
pub async fn get(gate: &Gate, request: &IncomingRequest, user: &Session) -> Handled {
    let lang = gate.language(request.head(), user);
    let record = record_of(gate, user).await.map_err(|e| (e, Vec::new()))?;
    Ok(Reply::json(200, &state(gate, user, &record, &lang)))
}

/// `PUT` / `POST api/me`: `{"id": "company", "value": "Acme"}`.
pub async fn update(gate: &Gate, request: &mut IncomingRequest, mut user: Session) -> Handled {
    if !csrf_ok(request, &user) {
        return Err((AppError::CsrfRejected, Vec::new()));
    }
    let posted: ChangeRequest = json_body(request).await?;
    let lang = gate.language(request.head(), &user);
    let record = record_of(gate, &user).await.map_err(|e| (e, Vec::new()))?;
    let invalid = |message: &str| {
        Reply::json(
            400,
            &json!({
                "error": "invalid_answer",
                "message": message,
                "errors": { posted.id.as_str(): message },
            }),
        )
    };
    let Some(q) = changeable(gate, &user, &record, &posted.id) else {
        return Ok(invalid(
            "No such question to change: answer a pending question or one answered before.",
        ));
    };
    let values = match raw_values(&posted.value) {
        Ok(values) => values,
        Err(message) => return Ok(invalid(message)),
    };
    match change(gate, &mut user, q, values, &lang)
        .await
        .map_err(|e| (e, Vec::new()))?
    {
        Applied::Stored(record) => {
            let body = state(gate, &user, &record, &lang);
            Ok(Reply::json(200, &body).with_cookies(vec![gate.sealer.seal_session(&user)]))
        }
        Applied::Invalid(errors) => {
            let message = errors
                .get(&q.id)
                .map_or("Not a valid answer.", String::as_str);
            Ok(invalid(message))
        }
    }
}

/// `DELETE api/me`: erases the answers and skips; the state after it (the pending questions
/// picked again).
pub async fn delete(gate: &Gate, request: &IncomingRequest, mut user: Session) -> Handled {
    if !csrf_ok(request, &user) {
        return Err((AppError::CsrfRejected, Vec::new()));
    }
    let lang = gate.language(request.head(), &user);
    let record = erase(gate, &mut user).await.map_err(|e| (e, Vec::new()))?;
    let body = state(gate, &user, &record, &lang);
    Ok(Reply::json(200, &body).with_cookies(vec![gate.sealer.seal_session(&user)]))
}
