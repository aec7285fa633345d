//! Signing in: starting a login (`/` of an anonymous browser; silently with `prompt=none` when
//! `session.silent_reauth` and the session cookie went dead) and the OIDC callback. A completed
//! login counts the login, keeps what the OP already knows and picks this login's questions.
//! Signing out is `logout.rs`.

use std::sync::Arc;

use serde_json::{Map, Value as Json};

use super::super::gate::Gate;
use super::super::reply::{Handled, Reply};
use super::super::request::{accepted_languages, accepts_html, IncomingRequest};
use super::next::questions_location;
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::oidc::Provider;
use crate::policy::{groups_at, ClaimUse};
use crate::redirect::ReturnTo;
use crate::session::at_rest::SessionTokens;
use crate::session::{now_secs, RequestCookies};
use crate::store::SessionRecord;

/// Anonymous browser navigation: send the user to the OP, remembering where they were going.
/// `silent` (`session.silent_reauth`, a navigation whose session cookie no longer gives a live
/// session): ask the OP with `prompt=none` first; the callback falls back to a normal login.
pub async fn start(gate: &Gate, request: &mut IncomingRequest, silent: bool) -> Handled {
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
    let mut reply = to_the_op(gate, &cookies, &return_to, ui_locales, silent).await?;
    if silent {
        // The dead cookie goes with this answer: the next navigation carries a new session or
        // none, so a silent attempt is made at most once for it (no loop).
        reply = reply.with_first_cookie(gate.sealer.clear_session());
    }
    Ok(reply)
}

/// A new login for `return_to`: its state sealed in a cookie, and the 302 to the OP.
async fn to_the_op(
    gate: &Gate,
    cookies: &RequestCookies<'_>,
    return_to: &ReturnTo,
    ui_locales: Option<String>,
    silent: bool,
) -> Handled {
    let (nonce, verifier, challenge) = Provider::login_secrets();
    let sealer = &gate.sealer;
    let (login, set_cookies) = match silent {
        true => sealer.begin_silent_login(cookies, nonce, verifier, return_to, ui_locales),
        false => sealer.begin_login(cookies, nonce, verifier, return_to, ui_locales),
    };
    let url = gate
        .provider
        .authorization_url(
            &login.state,
            &login.nonce,
            challenge,
            login.ui_locales.as_deref(),
            silent,
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
        if login.silent && INTERACTION_NEEDED.contains(&error.as_str()) {
            // The silent attempt found no OP session it may use without the user: a normal
            // login for the same target, at once (never the "Sign-in cancelled" page).
            let target = ReturnTo::from_path(&login.return_to).unwrap_or_else(ReturnTo::root);
            let reply = to_the_op(gate, &cookies, &target, login.ui_locales.clone(), false)
                .await
                .map_err(|(e, _)| fail(e))?;
            return Ok(reply.with_cookies(clear));
        }
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

/// The OP's answers to `prompt=none` that mean "the user must interact here" (Core §3.1.2.6):
/// a silent login that gets one falls back to a normal login.
const INTERACTION_NEEDED: [&str; 4] = [
    "login_required",
    "interaction_required",
    "consent_required",
    "account_selection_required",
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
