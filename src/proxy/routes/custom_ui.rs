//! Custom UI mode (`[profiling] ui = "redirect"`): instead of the hosted page, the user is sent
//! to the administrator's form with a short-lived token signed by the proxy (who, which
//! questions with their schema, a one-use state, where to post back). The form posts the answers
//! to `/.profilegate/continue`, which checks signature, expiry, audience and state (one use),
//! validates with exactly the hosted page's rules, stores, and continues to the app. The token
//! itself, issued and read back typed, is `ui_token`'s.
//!
//! The post-back comes from another site, so the `SameSite=Lax` session cookie is not sent with
//! it: the token alone says who answers. The proxy then redirects (303) to
//! `GET /.profilegate/continue`, a top-level navigation that does carry the cookie, and brings
//! the session's pending list up to date from the store.

use std::collections::BTreeMap;

use http::Method;

use super::super::gate::Gate;
use super::super::reply::{Handled, Reply};
use super::super::request::{Form, IncomingRequest};
use super::next::questions_location;
use super::ui_token::{self, QuestionsClaims};
use super::{apply_for, count_funnel};
use crate::error::AppError;
use crate::profile::Applied;
use crate::redirect::ReturnTo;
use crate::session::{now_secs, Session};
use crate::store::ProfileRecord;

/// Largest body of a custom UI's post-back.
const MAX_CONTINUE_BODY: usize = 64 * 1024;

/// `POST` (from the custom form) or `GET` (the same browser, back on our origin).
pub async fn handle(gate: &Gate, request: &mut IncomingRequest, user: Option<Session>) -> Handled {
    if request.head().method == Method::POST {
        post_back(gate, request).await
    } else {
        Ok(come_back(gate, request, user).await)
    }
}

fn reject(why: &str) -> (AppError, Vec<String>) {
    (AppError::ContinueRejected(why.to_owned()), Vec::new())
}

async fn post_back(gate: &Gate, request: &mut IncomingRequest) -> Handled {
    let crate::config::QuestionUi::Redirect {
        url: form,
        token_lifetime,
    } = &gate.ui
    else {
        return Err((AppError::NotFound, Vec::new()));
    };
    let body = request
        .read_body(MAX_CONTINUE_BODY)
        .await
        .map_err(|e| (e, Vec::new()))?;
    let posted = Form::parse(&body);
    let field = |name: &str| posted.field(name);
    let token = field("token").ok_or_else(|| reject("no token"))?;
    let claims = ui_token::verify(gate, token, form, now_secs()).map_err(|why| reject(&why))?;
    let exp = claims.exp;
    let state = claims.state.as_str();
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
    let ids = claims.question_ids();
    let mut user = token_user(gate, &claims, &ids);
    let rd =
        ReturnTo::from_path(claims.rd.as_deref().unwrap_or("/")).unwrap_or_else(ReturnTo::root);

    let skips: Vec<String> = posted
        .pairs()
        .iter()
        .filter(|(k, _)| k == "skip")
        .map(|(_, v)| v.clone())
        .filter(|id| ids.contains(id))
        .collect();
    let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in posted.pairs() {
        if ids.contains(k) && !skips.contains(k) {
            values.entry(k.clone()).or_default().push(v.clone());
        }
    }
    let answers: Vec<(String, Vec<String>)> = ids
        .iter()
        .filter(|id| !skips.contains(id))
        .map(|id| (id.clone(), values.get(id).cloned().unwrap_or_default()))
        .collect();
    let applied = apply_for(gate, &mut user, &answers, &skips, &gate.default_language)
        .await
        .map_err(|e| (e, Vec::new()))?;
    // Timed from the token's issue (`iat`), when its questions were shown.
    let shown_at = claims.iat.checked_mul(1000).filter(|at| *at > 0);
    count_funnel(gate, &applied, &answers, &skips, shown_at);
    match applied {
        // Invalid: back to the custom UI with the errors and what the user typed.
        Applied::Invalid(errors) => {
            let back = ui_token::redirect_url(
                gate,
                form,
                token_lifetime.as_secs(),
                &user,
                &rd,
                &errors,
                &values,
            )
            .map_err(|e| (e, Vec::new()))?;
            Ok(Reply::redirect(303, back))
        }
        Applied::Stored(record) => {
            tracing::info!(sub = %user.sub, revision = record.revision, "profile updated (custom UI)");
            let rd_param: String =
                url::form_urlencoded::byte_serialize(rd.path().as_bytes()).collect();
            Ok(Reply::redirect(
                303,
                format!("{}{}?rd={rd_param}", gate.origin, gate.routes.continue_),
            ))
        }
    }
}

/// The session the token speaks for: its subject, login and questions.
fn token_user(gate: &Gate, claims: &QuestionsClaims, ids: &[String]) -> Session {
    let now = now_secs();
    Session {
        sid: String::new(),
        sub: claims.sub.clone(),
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
        login: claims.login,
        claims: serde_json::Map::new(),
        groups: Vec::new(),
        locales: Vec::new(),
        iat: now,
        exp: now,
        refresh_at: 0,
        gen: 0,
        seen: 0,
    }
}

/// Drops from `user.pending` what the store says is settled: answered at the question's
/// current version, or skipped at this login.
pub fn reconcile(gate: &Gate, user: &mut Session, record: &ProfileRecord) {
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

async fn come_back(gate: &Gate, request: &IncomingRequest, user: Option<Session>) -> Reply {
    let [rd] = request.query_params(["rd"]);
    let rd = ReturnTo::parse_or_root(rd.as_deref(), &gate.origin);
    let Some(mut user) = user else {
        return Reply::redirect(303, rd.absolute(&gate.origin));
    };
    let record = match gate.store.load(&gate.user_key(&user.sub)).await {
        Ok(r) => r.unwrap_or_default(),
        Err(e) => {
            tracing::warn!(error = %e, "profile store unavailable at continue");
            return Reply::redirect(303, rd.absolute(&gate.origin));
        }
    };
    reconcile(gate, &mut user, &record);
    gate.enricher.update(&user.sub, std::sync::Arc::new(record));
    let cookie = gate.sealer.seal_session(&user);
    let next = questions_location(gate, &user, &rd).unwrap_or_else(|| rd.absolute(&gate.origin));
    Reply::redirect(303, next).with_cookies(vec![cookie])
}
