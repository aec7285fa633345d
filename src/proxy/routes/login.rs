//! Signing in and out: starting a login (`/` of an anonymous browser), the OIDC callback, logout
//! and the signed-out page. A completed login counts the login, keeps what the OP already
//! knows and picks this login's questions.

use std::sync::Arc;

use http::Method;
use serde_json::{Map, Value as Json};

use super::super::gate::Gate;
use super::super::reply::{Handled, Reply};
use super::super::request::{accepted_languages, accepts_html, form_fields, IncomingRequest};
use super::next::questions_location;
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::oidc::Provider;
use crate::policy::{groups_at, ClaimUse};
use crate::redirect::ReturnTo;
use crate::session::at_rest::SessionTokens;
use crate::session::{now_secs, tokens_equal, RequestCookies, Session};
use crate::store::{RevokeTarget, SessionRecord};

/// Largest form body accepted by the proxy's own forms.
const MAX_FORM_BODY: usize = 16 * 1024;

/// Anonymous browser navigation: send the user to the OP, remembering where they were going.
pub async fn start(gate: &Gate, request: &mut IncomingRequest) -> Handled {
    let return_to = request
        .head()
        .uri
        .path_and_query()
        .and_then(|pq| ReturnTo::from_path(pq.as_str()))
        .unwrap_or_else(ReturnTo::root);
    let headers = request.cookie_headers();
    let cookies = RequestCookies::parse(headers.iter().map(Vec::as_slice));
    // `?ui_locales=de fr` on the first navigation: passed to the OP and kept for our pages.
    let [ui_locales] = request.query_params(["ui_locales"]);
    let ui_locales = ui_locales.and_then(|raw| {
        let tags: Vec<&str> = raw
            .split(' ')
            .filter(|t| crate::profile::i18n::is_language_tag(t))
            .take(5)
            .collect();
        (!tags.is_empty()).then(|| tags.join(" "))
    });
    let (nonce, verifier, challenge) = Provider::login_secrets();
    let (login, set_cookies) = gate
        .sealer
        .begin_login(&cookies, nonce, verifier, &return_to, ui_locales);
    let url = gate
        .provider
        .authorization_url(
            &login.state,
            &login.nonce,
            challenge,
            login.ui_locales.as_deref(),
        )
        .await
        .map_err(|e| (AppError::from(e), Vec::new()))?;
    Metrics::inc(&gate.metrics.logins_started);
    Ok(Reply::redirect(302, url.to_string()).with_cookies(set_cookies))
}

/// The OP's redirect back: state, issuer, code, ID token, userinfo; then a new session.
pub async fn finish(gate: &Gate, request: &mut IncomingRequest) -> Handled {
    let result = verify_callback(gate, request).await;
    if result.is_err() {
        Metrics::inc(&gate.metrics.logins_failed);
    }
    result
}

async fn verify_callback(gate: &Gate, request: &mut IncomingRequest) -> Handled {
    let headers = request.cookie_headers();
    let cookies = RequestCookies::parse(headers.iter().map(Vec::as_slice));
    let [state, code, error, description, iss] =
        request.query_params(["state", "code", "error", "error_description", "iss"]);
    // A callback naming no login of this browser changes nothing (a forged link cannot cancel
    // the user's real login in progress).
    let state = state.ok_or((AppError::LoginStateInvalid, Vec::new()))?;
    let login = gate
        .sealer
        .open_login(&cookies, &state)
        .ok_or((AppError::LoginStateInvalid, Vec::new()))?;
    // From here on, this login is over whatever happens.
    let clear = vec![gate.sealer.clear_login(&state)];
    let fail = |e: AppError| (e, clear.clone());
    if !gate.provider.consume_state(&state, login.exp) {
        return Err(fail(AppError::LoginStateReplayed));
    }
    if let Some(error) = error {
        // The OP's words go to the log only: anyone can put any text in this link.
        let error = for_log(&error, 64);
        tracing::info!(
            error = %error,
            description = %for_log(description.as_deref().unwrap_or_default(), 300),
            "the identity provider answered the login with an error"
        );
        if CANCELLED.contains(&error.as_str()) {
            // Not a fault, but still a callback that signed nobody in.
            Metrics::inc(&gate.metrics.logins_failed);
            return Ok(cancelled(gate, request, &login).with_cookies(clear));
        }
        return Err(fail(AppError::LoginDenied(error)));
    }
    // RFC 9207: the authorization response names its issuer, compared exactly (§2.4); a
    // mix-up is refused.
    if let Some(iss) = iss {
        if iss != gate.provider.issuer() {
            return Err(fail(AppError::IssuerMismatch(iss)));
        }
    }
    let code = code.ok_or_else(|| fail(AppError::MissingCode))?;
    let identity = gate
        .provider
        .finish_login(&code, &login)
        .await
        .map_err(|e| fail(AppError::Oidc(e)))?;

    let mut user = gate.sealer.new_session(
        identity.subject.clone(),
        identity.email.clone(),
        identity.preferred_username.clone(),
        identity.name.clone(),
    );
    // What the policy and the question conditions read, kept for the session's life.
    user.groups = groups_at(
        &gate.policy.groups_claim,
        &[&identity.id_token_claims, &identity.claims],
    );
    user.claims = kept_claims(identity.merged_claims(), &gate.session_claims);
    // A login: count it, keep what the OP already knows, pick this login's questions.
    let key = gate.user_key(&user.sub);
    let store = &gate.store;
    let now = now_secs();
    let store_failed = |e| fail(AppError::Store(e));
    // The record after counting the login holds the same answers as before it: what the OP
    // claims is compared with those, with no separate read of the record.
    let mut record = store.record_login(&key, now).await.map_err(store_failed)?;
    let claimed = gate
        .engine
        .claimed_answers(Some(&record), &identity.claims, now);
    if !claimed.is_empty() {
        record = store
            .save_answers(&key, claimed)
            .await
            .map_err(store_failed)?;
    }
    let picked = gate.engine.pick(&record, &user.claims, &user.groups, now);
    user.pending = picked.pending;
    user.required = picked.required;
    user.rev = record.revision;
    user.login = record.logins;
    user.locales = login
        .ui_locales
        .iter()
        .flat_map(|l| l.split(' '))
        .map(str::to_owned)
        .chain(
            identity
                .claims
                .get("locale")
                .and_then(|l| l.as_str())
                .filter(|l| crate::profile::i18n::is_language_tag(&l.replace('_', "-")))
                .map(|l| l.replace('_', "-")),
        )
        .collect();
    let lifecycle = gate.sealer.lifecycle();
    let refresh_token = identity
        .tokens
        .refresh_token
        .clone()
        .filter(|_| lifecycle.refresh);
    if refresh_token.is_some() {
        user.refresh_at = identity
            .tokens
            .id_token_exp
            .saturating_sub(lifecycle.refresh_before.as_secs())
            .max(now + 1);
    }
    gate.sealer
        .fits(&user)
        .map_err(|why| fail(AppError::SessionTooLarge(why)))?;
    // The server-side record: what logout, the OP's logout and refresh act on.
    let tokens = SessionTokens {
        refresh_token,
        id_token: Some(identity.tokens.id_token.clone()),
    };
    let session_record = SessionRecord {
        sid: user.sid.clone(),
        sub: user.sub.clone(),
        op_sid: identity.op_sid().map(str::to_owned),
        created_at: user.iat,
        expires_at: user.exp,
        revoked_at: None,
        generation: 0,
        refreshing_until: 0,
        tokens: gate.sealer.tokens().seal(&user.sid, &tokens),
        refreshed: None,
    };
    store
        .put_session(&session_record)
        .await
        .map_err(store_failed)?;
    tracing::info!(sub = %user.sub, login = user.login, pending = ?user.pending, "login completed");
    gate.enricher.update(&user.sub, Arc::new(record));
    Metrics::inc(&gate.metrics.logins_completed);

    // The new session first, the deletions after it: some cookie jars (curl's, as of 7.88)
    // keep a deleted cookie when another Set-Cookie follows the deletion in the same response.
    let mut set_cookies = vec![gate.sealer.seal_session(&user)];
    set_cookies.extend(gate.sealer.clear_logins(&cookies));
    let target = ReturnTo::from_path(&login.return_to).unwrap_or_else(ReturnTo::root);
    let location =
        questions_location(gate, &user, &target).unwrap_or_else(|| target.absolute(&gate.origin));
    Ok(Reply::redirect(302, location).with_cookies(set_cookies))
}

/// The claims of `all` that `used` names (see [`ClaimUse::keep`]).
fn kept_claims(all: Map<String, Json>, used: &ClaimUse) -> Map<String, Json> {
    used.keep(all)
}

/// The OP's `error` codes that mean "the user did not (or could not) sign in there" rather
/// than a fault: the user is shown "Sign-in cancelled" and a way to try again.
const CANCELLED: [&str; 4] = [
    "access_denied",
    "consent_required",
    "login_required",
    "interaction_required",
];

/// The "Sign-in cancelled" page (403: the OP refused to sign the user in), in the language the
/// login asked for (`ui_locales`) or the browser's, with a link back to where the user was
/// going, which starts a fresh login. JSON for a client that does not read HTML.
fn cancelled(gate: &Gate, request: &IncomingRequest, login: &crate::session::LoginState) -> Reply {
    let req = request.head();
    let accept = accepted_languages(req);
    let languages = crate::profile::i18n::UI_LANGUAGES
        .iter()
        .map(|l| (*l).to_owned())
        .collect();
    let lang = crate::profile::i18n::choose(
        login
            .ui_locales
            .iter()
            .flat_map(|l| l.split(' '))
            .chain(accept.iter().map(String::as_str)),
        &languages,
        &gate.default_language,
    );
    let text = crate::profile::i18n::cancelled_text(&lang);
    let retry = ReturnTo::from_path(&login.return_to)
        .unwrap_or_else(ReturnTo::root)
        .absolute(&gate.origin);
    if accepts_html(req.headers.get(http::header::ACCEPT).map(|v| v.as_bytes())) {
        Reply::html(
            403,
            gate.pages.cancelled(&crate::render::CancelledPage {
                lang: &lang,
                text,
                retry_url: &retry,
            }),
        )
    } else {
        Reply::json(
            403,
            &serde_json::json!({
                "error": "login_cancelled",
                "message": text.message,
                "retry_url": retry,
            }),
        )
    }
}

/// Text from a request for one log line: at most `max` characters, control characters escaped.
fn for_log(raw: &str, max: usize) -> String {
    raw.chars()
        .take(max)
        .flat_map(char::escape_debug)
        .collect::<String>()
}

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
    let op_logout = user.as_ref().and_then(|_| {
        gate.provider
            .end_session_url(&signed_out, target.as_ref().map(ReturnTo::path))
    });
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

/// After logout: back to where the user asked (same origin only), or the signed-out page.
pub fn signed_out(gate: &Gate, request: &IncomingRequest) -> Reply {
    let [state] = request.query_params(["state"]);
    match state.and_then(|s| ReturnTo::parse(&s, &gate.origin)) {
        Some(target) => Reply::redirect(302, target.absolute(&gate.origin)),
        None => Reply::html(200, gate.pages.signed_out(&format!("{}/", gate.origin))),
    }
}
