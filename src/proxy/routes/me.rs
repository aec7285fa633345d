//! Self-service (`/.profilegate/me`): what profilegate stores about the signed-in user — every
//! answer (what, when, from whom), skips, sign-ins, the questions still pending — with a change
//! form per answer and "Erase my answers" (GDPR's rights of access, rectification and erasure,
//! without an administrator). The page is here; its JSON (`api/me`) is in `me/api.rs`.
//!
//! A change goes through `profile::apply` with exactly the question page's validation (its form
//! is the question page's template, posted here); an erasure through
//! `ProfileStore::erase_answers`, after which the engine picks the session's questions again.
//! Either one moves the session's revision and refreshes the profile view, so the upstream sees
//! the new headers at the next request. Below `proxy/mod.rs`, like every route.

pub mod api;

use http::Method;

use super::super::gate::Gate;
use super::super::reply::{Handled, Reply};
use super::super::request::{Form, IncomingRequest};
use super::settle;
use crate::error::AppError;
use crate::profile::i18n::{me_text, ui_text, MeText, UiText};
use crate::profile::{apply, AnswerValue, Applied, Question, Respondent, Submission};
use crate::render::me::{MeAnswer, MePage, MeSkip};
use crate::render::{QuestionPage, QuestionView, SignedIn};
use crate::session::{now_secs, tokens_equal, Session};
use crate::store::{AnswerSource, ProfileRecord};

/// Largest body of the page's forms.
const MAX_FORM_BODY: usize = 64 * 1024;
/// Most values accepted for one answer (a multiselect).
const MAX_VALUES: usize = 64;

/// The user's record as stored (empty before anything was), read off the hot path.
async fn record_of(gate: &Gate, user: &Session) -> Result<ProfileRecord, AppError> {
    let key = gate.user_key(&user.sub);
    let record = gate.store.load(&key).await.map_err(AppError::Store)?;
    Ok(record.unwrap_or_default())
}

/// The question `id` when the user may change its answer here: a configured question they
/// answered before, or one pending in their session.
fn changeable<'g>(
    gate: &'g Gate,
    user: &Session,
    record: &ProfileRecord,
    id: &str,
) -> Option<&'g Question> {
    let known = record.answers.contains_key(id) || user.pending.iter().any(|p| p == id);
    gate.engine.question(id).filter(|_| known)
}

/// Validates `values` as the new answer to `q` (the question page's rules) and, when valid,
/// stores it and settles it in the session (new revision, fresh profile view). The session's
/// cookie is the caller's to write.
async fn change(
    gate: &Gate,
    user: &mut Session,
    q: &Question,
    values: Vec<String>,
    lang: &str,
) -> Result<Applied, AppError> {
    let key = gate.user_key(&user.sub);
    // The one question open for this submission, and it cannot be skipped.
    let open = [q.id.clone()];
    let respondent = Respondent {
        key: &key,
        pending: &open,
        required: &open,
        login: user.login,
    };
    let answers = [(q.id.clone(), values)];
    let submission = Submission {
        answers: &answers,
        skips: &[],
        at: now_secs(),
    };
    let applied = apply(&gate.engine, &*gate.store, respondent, submission, lang)
        .await
        .map_err(AppError::Store)?;
    settle(gate, user, &answers, &[], &applied);
    if let Applied::Stored(record) = &applied {
        tracing::info!(sub = %user.sub, question = %q.id, revision = record.revision, "answer changed (self-service)");
    }
    Ok(applied)
}

/// Erases the user's answers and skips, then lets the engine pick this session's questions
/// again from the emptied record (required ones come back as the rules say). Returns the record.
async fn erase(gate: &Gate, user: &mut Session) -> Result<ProfileRecord, AppError> {
    let key = gate.user_key(&user.sub);
    let record = gate
        .store
        .erase_answers(&key)
        .await
        .map_err(AppError::Store)?;
    let picked = gate
        .engine
        .pick(&record, &user.claims, &user.groups, now_secs());
    user.pending = picked.pending;
    user.required = picked.required;
    user.rev = user.rev.max(record.revision);
    gate.enricher
        .update(&user.sub, std::sync::Arc::new(record.clone()));
    tracing::info!(sub = %user.sub, revision = record.revision, pending = ?user.pending, "answers erased (self-service)");
    Ok(record)
}

/// Seconds since the epoch as `2026-12-02 20:11 UTC` (days to a civil date: H. Hinnant's
/// algorithm).
fn utc(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// A time that is set (0 means "never").
fn when(secs: u64) -> Option<String> {
    (secs > 0).then(|| utc(secs))
}

/// An answer as the user reads it: Yes/No in their language, a list comma-separated.
fn readable(value: &AnswerValue, ui: &UiText) -> String {
    match value {
        AnswerValue::Bool(true) => ui.yes.to_owned(),
        AnswerValue::Bool(false) => ui.no.to_owned(),
        AnswerValue::List(items) => items.join(", "),
        other => other.form_values().join(", "),
    }
}

fn source_text(source: AnswerSource, text: &MeText) -> &'static str {
    match source {
        AnswerSource::User => text.by_you,
        AnswerSource::Provider => text.by_provider,
    }
}

/// The page's rows: the configured questions answered or pending, in configured order, then
/// answers to questions no longer configured.
fn rows(gate: &Gate, user: &Session, record: &ProfileRecord, lang: &str) -> Vec<MeAnswer> {
    let (text, ui) = (me_text(lang), ui_text(lang));
    let me = &gate.routes.me;
    let mut rows: Vec<MeAnswer> = gate
        .engine
        .questions()
        .iter()
        .filter_map(|q| {
            let stored = record.answers.get(&q.id);
            let pending = user.pending.contains(&q.id);
            if stored.is_none() && !pending {
                return None;
            }
            Some(MeAnswer {
                id: q.id.clone(),
                label: q.texts(lang).0.to_owned(),
                value: stored.map(|a| readable(&a.value, &ui)),
                answered_at: stored.map(|a| utc(a.answered_at)),
                source: stored.map(|a| source_text(a.source, &text)),
                pending,
                retired: false,
                change_url: Some(format!("{me}?change={}", q.id)),
            })
        })
        .collect();
    rows.extend(
        record
            .answers
            .iter()
            .filter(|(id, _)| gate.engine.question(id).is_none())
            .map(|(id, a)| MeAnswer {
                id: id.clone(),
                label: id.clone(),
                value: Some(readable(&a.value, &ui)),
                answered_at: Some(utc(a.answered_at)),
                source: Some(source_text(a.source, &text)),
                pending: false,
                retired: true,
                change_url: None,
            }),
    );
    rows
}

fn page(
    gate: &Gate,
    user: &Session,
    record: &ProfileRecord,
    lang: &str,
    confirm_erase: bool,
    notice: Option<&'static str>,
) -> Reply {
    let text = me_text(lang);
    let skips = record
        .skips
        .iter()
        .map(|(id, skip)| MeSkip {
            label: gate
                .engine
                .question(id)
                .map_or_else(|| id.clone(), |q| q.texts(lang).0.to_owned()),
            at: utc(skip.at),
            count: skip.count,
        })
        .collect();
    let page = MePage {
        lang,
        text,
        answers: rows(gate, user, record, lang),
        skips,
        logins: record.logins,
        first_login: when(record.first_login_at),
        last_login: when(record.last_login_at),
        action: &gate.routes.me,
        csrf_token: &user.csrf,
        questions_url: gate.routes.profile.clone(),
        can_erase: !record.answers.is_empty() || !record.skips.is_empty(),
        confirm_erase,
        notice,
        signed_in: SignedIn::new(user.display_name(), &gate.routes.logout, &user.csrf, lang),
    };
    Reply::html(200, gate.pages.me(&page))
}

/// The change form of `q`: the question page's form with the user's `values`, posting here,
/// with a way back.
fn change_form(
    gate: &Gate,
    user: &Session,
    q: &Question,
    values: &[String],
    error: Option<&str>,
    lang: &str,
) -> String {
    let (label, help, placeholder) = q.texts(lang);
    let page = QuestionPage {
        question: QuestionView {
            id: &q.id,
            label,
            help,
            placeholder,
            kind: q.kind.as_str(),
            input_type: q.input_type(),
            // A change gives a value: no "Skip for now" (erasing is the way to remove them).
            required: true,
            options: &q.options,
            constraints: q.html_constraints(),
        },
        values,
        error,
        csrf_token: &user.csrf,
        // Not a showing of the question: changes on this page are not funnel events.
        shown: "",
        action: &gate.routes.me,
        rd: &gate.routes.me,
        step: 1,
        total: 1,
        lang,
        ui: ui_text(lang),
        signed_in: SignedIn::new(user.display_name(), &gate.routes.logout, &user.csrf, lang),
    };
    gate.pages
        .question_with_back(&page, (&gate.routes.me, me_text(lang).cancel))
}

/// `GET /.profilegate/me`: the page; `?change=ID` one answer's change form, `?erase=confirm`
/// the erasure's confirmation step, `?done=saved|erased` the outcome of the last change.
pub async fn show(gate: &Gate, request: &IncomingRequest, user: &Session) -> Handled {
    let [change_id, erase_step, done] = request.query_params(["change", "erase", "done"]);
    let lang = gate.language(request.head(), user);
    let record = record_of(gate, user).await.map_err(|e| (e, Vec::new()))?;
    if let Some(q) = change_id
        .as_deref()
        .and_then(|id| changeable(gate, user, &record, id))
    {
        let values = record
            .answers
            .get(&q.id)
            .map(|a| a.value.form_values())
            .unwrap_or_default();
        let html = change_form(gate, user, q, &values, None, &lang);
        return Ok(Reply::html(200, html));
    }
    let text = me_text(&lang);
    let notice = match done.as_deref() {
        Some("saved") => Some(text.saved),
        Some("erased") => Some(text.erased),
        _ => None,
    };
    let confirm = erase_step.as_deref() == Some("confirm");
    Ok(page(gate, user, &record, &lang, confirm, notice))
}

/// `POST /.profilegate/me`: `_action=erase` erases the answers; otherwise the change form of
/// question `_question`. Both need the session's CSRF token in `_csrf`; both answer 303 back
/// to the page with the session's cookie re-sealed (its new revision), or 422 with the form.
pub async fn submit(gate: &Gate, request: &mut IncomingRequest, mut user: Session) -> Handled {
    debug_assert_eq!(request.head().method, Method::POST);
    let body = request
        .read_body(MAX_FORM_BODY)
        .await
        .map_err(|e| (e, Vec::new()))?;
    let form = Form::parse(&body);
    if !form
        .field("_csrf")
        .is_some_and(|t| tokens_equal(t, &user.csrf))
    {
        return Err((AppError::CsrfRejected, Vec::new()));
    }
    let back = |done: &str| format!("{}{}?done={done}", gate.origin, gate.routes.me);
    if form.field("_action") == Some("erase") {
        erase(gate, &mut user).await.map_err(|e| (e, Vec::new()))?;
        return Ok(Reply::redirect(303, back("erased"))
            .with_cookies(vec![gate.sealer.seal_session(&user)]));
    }
    let lang = gate.language(request.head(), &user);
    let record = record_of(gate, &user).await.map_err(|e| (e, Vec::new()))?;
    let Some(q) = form
        .field("_question")
        .and_then(|id| changeable(gate, &user, &record, id))
    else {
        // A stale form (erased meanwhile, or a question no longer configured): the page as it is.
        return Ok(Reply::redirect(
            303,
            format!("{}{}", gate.origin, gate.routes.me),
        ));
    };
    let values: Vec<String> = form
        .pairs()
        .iter()
        .filter(|(k, _)| *k == q.id)
        .take(MAX_VALUES)
        .map(|(_, v)| v.clone())
        .collect();
    match change(gate, &mut user, q, values.clone(), &lang)
        .await
        .map_err(|e| (e, Vec::new()))?
    {
        Applied::Stored(_) => {
            Ok(Reply::redirect(303, back("saved"))
                .with_cookies(vec![gate.sealer.seal_session(&user)]))
        }
        Applied::Invalid(errors) => {
            let message = errors.get(&q.id).map(String::as_str);
            let html = change_form(gate, &user, q, &values, message, &lang);
            Ok(Reply::html(422, html))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_796_242_273), "2026-12-02 20:11 UTC");
        assert_eq!(utc(4_102_444_799), "2099-12-31 23:59 UTC");
        assert_eq!(when(0), None);
    }

    #[test]
    fn answers_read_as_words_in_the_pages_language() {
        let de = ui_text("de");
        assert_eq!(readable(&AnswerValue::Bool(true), &de), "Ja");
        let list = AnswerValue::List(vec!["de".into(), "fr".into()]);
        assert_eq!(readable(&list, &de), "de, fr");
        assert_eq!(readable(&AnswerValue::Integer(12), &de), "12");
    }
}
