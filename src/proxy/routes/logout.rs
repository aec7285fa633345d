//! Signing out: `/.profilegate/logout` (a POST with the session's CSRF token, or a GET that a
//! foreign site must confirm) revokes the session record everywhere, clears the cookie and sends
//! the browser to the OP's end-session endpoint with the login's ID token as `id_token_hint`
//! (RP-Initiated Logout 1.0); then the signed-out page. The OP's own calls (front- and
//! back-channel logout) have files of their own.

use http::Method;

use super::super::gate::Gate;
use super::super::reply::{Handled, Reply};
use super::super::request::{form_fields, IncomingRequest};
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::redirect::ReturnTo;
use crate::session::{tokens_equal, RequestCookies, Session};
use crate::store::RevokeTarget;

/// Largest form body accepted by the proxy's own forms.
const MAX_FORM_BODY: usize = 16 * 1024;

/// Ends the session. A POST must carry the session's CSRF token; a GET from another site is
/// asked to confirm, so a cross-site link or image cannot sign the user out.
pub async fn logout(gate: &Gate, request: &mut IncomingRequest, user: Option<Session>) -> Handled {
    let rd = if request.head().method == Method::POST {
        let body = request
            .read_body(MAX_FORM_BODY)
            .await
            .map_err(|e| (e, Vec::new()))?;
        let mut fields: [Option<String>; 2] = [None, None];
        form_fields(&body, &["csrf_token", "rd"], &mut fields);
        let [csrf, rd] = fields;
        if let Some(u) = &user {
            if !csrf.is_some_and(|c| tokens_equal(&c, &u.csrf)) {
                return Err((AppError::CsrfRejected, Vec::new()));
            }
        }
        rd
    } else {
        let [rd] = request.query_params(["rd"]);
        let site = request
            .head()
            .headers
            .get("sec-fetch-site")
            .map(|v| v.as_bytes().to_ascii_lowercase());
        let foreign = matches!(site.as_deref(), Some(b"cross-site") | Some(b"same-site"));
        if let (Some(u), true) = (&user, foreign) {
            let who = u.preferred_username.as_deref().or(u.email.as_deref());
            return Ok(Reply::html(
                200,
                gate.pages.logout_confirm(&gate.routes.logout, &u.csrf, who),
            ));
        }
        rd
    };

    let target = rd.and_then(|r| ReturnTo::parse(&r, &gate.origin));
    let headers = request.cookie_headers();
    let cookies = RequestCookies::parse(headers.iter().map(Vec::as_slice));
    let mut set_cookies = gate.sealer.clear_logins(&cookies);
    set_cookies.push(gate.sealer.clear_session());

    let signed_out = format!("{}{}", gate.origin, gate.routes.signed_out);
    let op_logout = match &user {
        Some(u) if gate.provider.has_end_session() => {
            // Before the revocation, which drops the record's tokens.
            let hint = id_token_of(gate, &u.sid).await;
            gate.provider.end_session_url(
                &signed_out,
                target.as_ref().map(ReturnTo::path),
                hint.as_deref(),
            )
        }
        Some(_) | None => None,
    };
    if let Some(u) = &user {
        // The record is revoked everywhere: a copy of the cookie is dead from now on (on other
        // replicas within about a second).
        if let Err(e) = gate.revoker.revoke(&RevokeTarget::Sid(u.sid.clone())).await {
            return Err((AppError::Store(e), Vec::new()));
        }
        tracing::info!(sub = %u.sub, "logout");
        Metrics::inc(&gate.metrics.logouts);
    }
    let location = match (op_logout, target) {
        (Some(op), _) => op.to_string(),
        (None, Some(t)) => t.absolute(&gate.origin),
        (None, None) => signed_out,
    };
    Ok(Reply::redirect(302, location).with_cookies(set_cookies))
}

/// The ID token the OP issued at the login of session `sid`, from its record, for the OP's
/// end-session endpoint (`id_token_hint`). `None` when the record or its tokens cannot be read:
/// the logout goes on without the hint (the OP may then ask the user to confirm).
async fn id_token_of(gate: &Gate, sid: &str) -> Option<String> {
    let record = match gate.store.session(sid).await {
        Ok(record) => record?,
        Err(e) => {
            tracing::warn!(error = %e, "logout: the session record could not be read; no id_token_hint");
            return None;
        }
    };
    let sealed = record.tokens?;
    gate.sealer.tokens().open(sid, &sealed)?.id_token
}

/// After logout: back to where the user asked (same origin only), or the signed-out page.
pub fn signed_out(gate: &Gate, request: &IncomingRequest) -> Reply {
    let [state] = request.query_params(["state"]);
    match state.and_then(|s| ReturnTo::parse(&s, &gate.origin)) {
        Some(target) => Reply::redirect(302, target.absolute(&gate.origin)),
        None => Reply::html(200, gate.pages.signed_out(&format!("{}/", gate.origin))),
    }
}
