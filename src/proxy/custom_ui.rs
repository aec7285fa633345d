//! Custom UI mode (`[profiling] ui = "redirect"`): instead of the hosted page, the user is sent
//! to the administrator's form with a short-lived token signed by the proxy (who, which
//! questions with their schema, a one-use state, where to post back). The form posts the answers
//! to `/.profilegate/continue`, which checks signature, expiry, audience and state (one use),
//! validates with exactly the hosted page's rules, stores, and continues to the app.
//!
//! The post-back comes from another site, so the `SameSite=Lax` session cookie is not sent with
//! it: the token alone says who answers. The proxy then redirects (303) to
//! `GET /.profilegate/continue`, a top-level navigation that does carry the cookie, and brings
//! the session's pending list up to date from the store.

use std::collections::BTreeMap;

use super::Session;
use http::Method;
use serde_json::{json, Value};
use url::Url;

use super::api::{apply, FieldErrors};
use super::handlers::{fill_all_params, query_params, read_body, Handled};
use super::{Answer, Gate};
use crate::error::AppError;
use crate::profile::schema::schema;
use crate::redirect::ReturnTo;
use crate::session::{now_secs, random_token, Session as UserSession};
use crate::store::ProfileRecord;

/// The `typ` of a custom-UI token (never accepted as anything else, nor anything else as it).
const TOKEN_TYPE: &str = "profilegate/questions";
/// Largest body of a custom UI's post-back.
const MAX_CONTINUE_BODY: usize = 64 * 1024;

/// The custom form's URL with a fresh token for `user`'s pending questions.
pub fn redirect_url(
    gate: &Gate,
    form: &Url,
    lifetime: u64,
    user: &UserSession,
    rd: &ReturnTo,
    errors: &FieldErrors,
    values: &BTreeMap<String, Vec<String>>,
) -> Result<String, AppError> {
    let now = now_secs();
    let questions: Vec<Value> = user
        .pending
        .iter()
        .filter_map(|id| gate.engine.question(id))
        .map(schema)
        .collect();
    let claims = json!({
        "typ": TOKEN_TYPE,
        "iss": gate.origin,
        "aud": form.origin().ascii_serialization(),
        "sub": user.sub,
        "login": user.login,
        "questions": questions,
        "errors": errors,
        "values": values,
        "state": random_token(18),
        "continue_url": format!("{}{}", gate.origin, gate.routes.continue_),
        "rd": rd.path(),
        "iat": now,
        "exp": now + lifetime,
    });
    let token = gate
        .enricher
        .key()
        .sign(&claims)
        .map_err(|e| AppError::BadRequest(format!("token signing failed: {e}")))?;
    let mut url = form.clone();
    url.query_pairs_mut().append_pair("token", &token);
    Ok(url.to_string())
}

/// `POST` (from the custom form) or `GET` (the same browser, back on our origin).
pub async fn handle(gate: &Gate, session: &mut Session, user: Option<UserSession>) -> Handled {
    if session.req_header().method == Method::POST {
        post_back(gate, session).await
    } else {
        Ok(come_back(gate, session, user).await)
    }
}

fn reject(why: &str) -> (AppError, Vec<String>) {
    (AppError::ContinueRejected(why.to_owned()), Vec::new())
}

async fn post_back(gate: &Gate, session: &mut Session) -> Handled {
    let crate::config::QuestionUi::Redirect {
        url: form,
        token_lifetime,
    } = &gate.ui
    else {
        return Err((AppError::NotFound, Vec::new()));
    };
    let body = read_body(session, MAX_CONTINUE_BODY).await?;
    let fields = fill_all_params(&body);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let token = field("token").ok_or_else(|| reject("no token"))?;
    let claims = gate
        .enricher
        .key()
        .verify(token)
        .map_err(|e| reject(&e.to_string()))?;
    let audience = form.origin().ascii_serialization();
    if claims["typ"] != TOKEN_TYPE {
        return Err(reject("not a questions token"));
    }
    if claims["iss"] != gate.origin.as_str() || claims["aud"] != audience.as_str() {
        return Err(reject("wrong issuer or audience"));
    }
    let exp = claims["exp"].as_u64().unwrap_or(0);
    if exp <= now_secs() {
        return Err(reject("expired"));
    }
    let state = claims["state"].as_str().unwrap_or_default();
    if field("state") != Some(state) || state.is_empty() {
        return Err(reject("state does not match the token"));
    }
    // One use: a replayed post-back is refused.
    if !gate
        .provider
        .consume_state(&format!("continue:{state}"), exp)
    {
        return Err(reject("already used"));
    }
    let ids: Vec<String> = claims["questions"]
        .as_array()
        .map(|qs| {
            qs.iter()
                .filter_map(|q| q["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut user = token_user(gate, &claims, &ids);
    let rd =
        ReturnTo::from_path(claims["rd"].as_str().unwrap_or("/")).unwrap_or_else(ReturnTo::root);

    let skips: Vec<String> = fields
        .iter()
        .filter(|(k, _)| k == "skip")
        .map(|(_, v)| v.clone())
        .filter(|id| ids.contains(id))
        .collect();
    let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in &fields {
        if ids.contains(k) && !skips.contains(k) {
            values.entry(k.clone()).or_default().push(v.clone());
        }
    }
    let answers: Vec<(String, Vec<String>)> = ids
        .iter()
        .filter(|id| !skips.contains(id))
        .map(|id| (id.clone(), values.get(id).cloned().unwrap_or_default()))
        .collect();
    match apply(gate, &mut user, &answers, &skips, &gate.default_language)
        .await
        .map_err(|e| (e, Vec::new()))?
    {
        // Invalid: back to the custom UI with the errors and what the user typed.
        Err(errors) => {
            let back = redirect_url(
                gate,
                form,
                token_lifetime.as_secs(),
                &user,
                &rd,
                &errors,
                &values,
            )
            .map_err(|e| (e, Vec::new()))?;
            Ok(Answer::redirect(303, back))
        }
        Ok(record) => {
            tracing::info!(sub = %user.sub, revision = record.revision, "profile updated (custom UI)");
            let rd_param: String =
                url::form_urlencoded::byte_serialize(rd.path().as_bytes()).collect();
            Ok(Answer::redirect(
                303,
                format!("{}{}?rd={rd_param}", gate.origin, gate.routes.continue_),
            ))
        }
    }
}

/// The session the token speaks for: its subject, login and questions.
fn token_user(gate: &Gate, claims: &Value, ids: &[String]) -> UserSession {
    let now = now_secs();
    UserSession {
        sid: String::new(),
        sub: claims["sub"].as_str().unwrap_or_default().to_owned(),
        email: None,
        preferred_username: None,
        name: None,
        csrf: String::new(),
        pending: ids.to_vec(),
        required: ids
            .iter()
            .filter(|id| gate.engine.question(id).is_some_and(|q| q.required))
            .cloned()
            .collect(),
        rev: 0,
        login: claims["login"].as_u64().unwrap_or(0),
        locales: Vec::new(),
        iat: now,
        exp: now,
    }
}

/// Drops from `user.pending` what the store says is settled: answered at the question's
/// current version, or skipped at this login.
pub fn reconcile(gate: &Gate, user: &mut UserSession, record: &ProfileRecord) {
    let settled: Vec<String> = user
        .pending
        .iter()
        .filter(|id| {
            let answered = record.answers.get(*id).is_some_and(|a| {
                gate.engine
                    .question(id)
                    .is_none_or(|q| a.question_version >= q.version)
            });
            let skipped = record.skips.get(*id).is_some_and(|s| s.login == user.login);
            answered || skipped
        })
        .cloned()
        .collect();
    for id in settled {
        user.settle(&id);
    }
    user.rev = user.rev.max(record.revision);
}

async fn come_back(gate: &Gate, session: &Session, user: Option<UserSession>) -> Answer {
    let [rd] = query_params(session, ["rd"]);
    let rd = ReturnTo::parse_or_root(rd.as_deref(), &gate.origin);
    let Some(mut user) = user else {
        return Answer::redirect(303, rd.absolute(&gate.origin));
    };
    let record = match gate
        .enricher
        .store()
        .load(&gate.enricher.user_key(&user.sub))
        .await
    {
        Ok(r) => r.unwrap_or_default(),
        Err(e) => {
            tracing::warn!(error = %e, "profile store unavailable at continue");
            return Answer::redirect(303, rd.absolute(&gate.origin));
        }
    };
    reconcile(gate, &mut user, &record);
    gate.enricher.update(&user.sub, std::sync::Arc::new(record));
    let cookie = gate.sealer.seal_session(&user);
    let next = super::questions::questions_location(gate, &user, &rd)
        .unwrap_or_else(|| rd.absolute(&gate.origin));
    Answer::redirect(303, next).with_cookies(vec![cookie])
}
