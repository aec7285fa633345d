//! OIDC Front-Channel Logout 1.0: `GET /.profilegate/frontchannel-logout?iss=&sid=`, the page
//! the OP embeds in an iframe of its logout page to end the user's sessions here.
//!
//! - `iss` (exactly the configured issuer) and `sid` (the OP's session id, the ID token's `sid`
//!   claim kept in the session record): every session of that OP session is revoked, here and
//!   on every replica (`Revoker`, `RevokeTarget::OpSid`). This is what works from the OP's
//!   iframe: browsers do not send the `SameSite=Lax` session cookie with a cross-site frame.
//! - Neither: the session of the request's cookie, if the browser sent one (spec §2), unless
//!   the request is a top-level navigation from another site (a link), which may not sign
//!   anyone out (as `/.profilegate/logout` asks a foreign GET to confirm).
//! - One without the other, or another issuer: 400, nothing revoked.
//!
//! The answer is a small page without script that only the OP's origins may frame, never
//! cached, and that deletes the session cookie.

use super::super::gate::Gate;
use super::super::reply::{Handled, Reply};
use super::super::request::IncomingRequest;
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::session::Session;
use crate::store::RevokeTarget;

/// What the OP's iframe shows (nothing of the request in it).
const PAGE: &str = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Signed out</title></head><body><p>Signed out.</p></body></html>\n";

/// Ends the sessions the OP names (or the cookie's) and answers the framable page.
pub async fn logout(gate: &Gate, request: &IncomingRequest, user: Option<Session>) -> Handled {
    let [iss, sid] = request.query_params(["iss", "sid"]);
    let target = match (iss, sid) {
        (Some(iss), Some(sid)) if iss == gate.provider.issuer() && !sid.is_empty() => {
            Some(RevokeTarget::OpSid(sid))
        }
        (Some(_), Some(_)) => {
            let why = "the front-channel logout names another issuer, or an empty sid";
            return Err((AppError::BadRequest(why.into()), Vec::new()));
        }
        (Some(_), None) | (None, Some(_)) => {
            let why = "a front-channel logout carries both iss and sid, or neither";
            return Err((AppError::BadRequest(why.into()), Vec::new()));
        }
        (None, None) if foreign_navigation(request) => {
            // A link on another site: the page, and nothing ended.
            return Ok(framable(gate, Reply::html(200, PAGE.to_owned())));
        }
        (None, None) => user.map(|u| RevokeTarget::Sid(u.sid)),
    };
    if let Some(target) = target {
        let ended = gate
            .revoker
            .revoke(&target)
            .await
            .map_err(|e| (AppError::Store(e), Vec::new()))?;
        let by = match target {
            RevokeTarget::OpSid(_) => "the OP's sid",
            RevokeTarget::Sid(_) | RevokeTarget::Subject(_) => "the session cookie",
        };
        tracing::info!(ended, by, "front-channel logout");
        if ended > 0 {
            Metrics::inc(&gate.metrics.logouts);
        }
    }
    let reply = Reply::html(200, PAGE.to_owned()).with_cookies(vec![gate.sealer.clear_session()]);
    Ok(framable(gate, reply))
}

/// `reply`, framable by the OP's origins: its issuer's and its end-session endpoint's (the
/// page that embeds the iframe).
fn framable(gate: &Gate, reply: Reply) -> Reply {
    let mut origins: Vec<String> = url::Url::parse(gate.provider.issuer())
        .ok()
        .map(|u| u.origin())
        .filter(url::Origin::is_tuple)
        .map(|o| o.ascii_serialization())
        .into_iter()
        .collect();
    if let Some(end_session) = gate.provider.end_session_origin() {
        if !origins.contains(&end_session) {
            origins.push(end_session);
        }
    }
    reply.framable_by(origins)
}

/// True for a top-level navigation from another site (a link or a redirect), as the browser's
/// `Sec-Fetch-*` headers say; an iframe's request (`Sec-Fetch-Dest: iframe`) is not one.
fn foreign_navigation(request: &IncomingRequest) -> bool {
    let header = |name: &str| {
        request
            .head()
            .headers
            .get(name)
            .map(|v| v.as_bytes().to_ascii_lowercase())
    };
    let site = header("sec-fetch-site");
    let foreign = matches!(site.as_deref(), Some(b"cross-site") | Some(b"same-site"));
    foreign && header("sec-fetch-dest").as_deref() == Some(b"document")
}
