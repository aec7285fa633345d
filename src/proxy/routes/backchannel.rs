//! `POST /.profilegate/backchannel-logout`: OpenID Connect Back-Channel Logout 1.0 (§2.5, §2.8).
//! The OP posts a logout token (a form field) server to server, with no cookie and no
//! `Origin`; it is verified (`oidc::logout_token`), its `jti` is marked used in the store (one
//! use across replicas), and the sessions it names end on every replica (`Revoker`: the store's
//! revocation log, polled by each replica every second). Answers: 200 with an empty body, or
//! 400 with a JSON `error`/`error_description` that names the defect (never the token).

use super::super::gate::Gate;
use super::super::reply::Reply;
use super::super::request::{Form, IncomingRequest};
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::oidc::LogoutToken;
use crate::session::now_secs;
use crate::store::RevokeTarget;

/// Largest request body accepted: a logout token is a few kilobytes at most.
const MAX_LOGOUT_REQUEST: usize = 16 * 1024;

/// Verifies the posted logout token and ends the sessions it names.
pub async fn logout(gate: &Gate, request: &mut IncomingRequest) -> Reply {
    let token = match logout_token(request).await {
        Ok(token) => token,
        Err(why) => return refuse(gate, &why),
    };
    let verified = match gate.provider.verify_logout_token(&token, now_secs()).await {
        Ok(verified) => verified,
        Err(problem) => return refuse(gate, &problem.to_string()),
    };
    let LogoutToken {
        sub,
        sid,
        jti,
        accepted_until,
    } = verified;
    // One use, on every replica: a replayed token (a copy of one seen here or elsewhere) is
    // refused. Marked before anything ends, so a replay can never end a later session.
    let mark = format!("logout-jti\n{}\n{jti}", gate.provider.issuer());
    match gate.store.first_use(&mark, accepted_until).await {
        Ok(true) => {}
        Ok(false) => return refuse(gate, "the logout token was already used (jti)"),
        Err(e) => return failed(gate, &e.to_string()),
    }
    let target = match (&sid, &sub) {
        (Some(sid), _) => RevokeTarget::OpSid(sid.clone()),
        (None, Some(sub)) => RevokeTarget::Subject(sub.clone()),
        // `check_claims` guarantees one of them.
        (None, None) => return refuse(gate, "the logout token names neither sub nor sid"),
    };
    match gate.revoker.revoke(&target).await {
        Ok(lines) => {
            Metrics::inc(&gate.metrics.backchannel_logouts.ok);
            match &target {
                RevokeTarget::Subject(sub) => {
                    tracing::info!(sub = %sub, sessions = "all of the subject", "back-channel logout")
                }
                _ => tracing::info!(
                    sid = sid.as_deref().unwrap_or_default(),
                    sub = sub.as_deref().unwrap_or_default(),
                    sessions = lines,
                    "back-channel logout"
                ),
            }
            Reply::empty(200)
        }
        Err(e) => failed(gate, &e.to_string()),
    }
}

/// The `logout_token` of an `application/x-www-form-urlencoded` body (exactly one).
async fn logout_token(request: &mut IncomingRequest) -> Result<String, String> {
    let form_type = request
        .head()
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| {
            essence
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return Err("the request must be an application/x-www-form-urlencoded form".into());
    }
    let body = request
        .read_body(MAX_LOGOUT_REQUEST)
        .await
        .map_err(|e| match e {
            AppError::BodyTooLarge => {
                format!("the request body is larger than {MAX_LOGOUT_REQUEST} bytes")
            }
            _ => "the request body could not be read".to_owned(),
        })?;
    let form = Form::parse(&body);
    let mut tokens = form
        .pairs()
        .iter()
        .filter(|(name, _)| name == "logout_token");
    match (tokens.next(), tokens.next()) {
        (Some((_, token)), None) if !token.is_empty() => Ok(token.clone()),
        (Some(_), Some(_)) => Err("the request carries more than one logout_token".into()),
        _ => Err("the request has no logout_token".into()),
    }
}

/// 400 for a defective request or token (Back-Channel Logout §2.8), the defect named.
fn refuse(gate: &Gate, why: &str) -> Reply {
    Metrics::inc(&gate.metrics.backchannel_logouts.refused);
    tracing::warn!(reason = why, "back-channel logout refused");
    Reply::json(
        400,
        &serde_json::json!({ "error": "invalid_request", "error_description": why }),
    )
}

/// 400 as well (the spec's answer when "the logout failed"), for a store that could not record
/// the logout: the OP learns that the sessions did not end.
fn failed(gate: &Gate, cause: &str) -> Reply {
    Metrics::inc(&gate.metrics.backchannel_logouts.failed);
    tracing::error!(
        error = cause,
        "back-channel logout failed: the sessions could not be ended"
    );
    Reply::json(
        400,
        &serde_json::json!({
            "error": "server_error",
            "error_description": "the sessions could not be ended now (the store is unavailable)",
        }),
    )
}
