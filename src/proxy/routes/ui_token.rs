//! The custom UI's token (`[profiling] ui = "redirect"`): signed by the proxy when it sends a
//! user to the administrator's form ([`redirect_url`]), and read back, typed, from the form's
//! post-back to `/.profilegate/continue` ([`QuestionsClaims`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use super::super::gate::Gate;
use crate::error::AppError;
use crate::profile::schema::schema;
use crate::profile::FieldErrors;
use crate::redirect::ReturnTo;
use crate::session::{now_secs, random_token, Session};

/// The `typ` of a custom-UI token (never accepted as anything else, nor anything else as it).
pub const TOKEN_TYPE: &str = "profilegate/questions";

/// The claims a custom-UI token is signed with.
#[derive(Serialize)]
struct IssuedClaims<'a> {
    typ: &'static str,
    iss: &'a str,
    aud: String,
    sub: &'a str,
    login: u64,
    /// Each pending question's schema (`profile::schema`).
    questions: Vec<Value>,
    /// The previous post-back's errors, by question id.
    errors: &'a FieldErrors,
    /// What the user typed in the previous post-back, by question id.
    values: &'a BTreeMap<String, Vec<String>>,
    /// One use: the post-back must repeat it, and it is consumed.
    state: String,
    continue_url: String,
    rd: &'a str,
    iat: u64,
    exp: u64,
}

/// The claims of a posted-back token, as far as the proxy checks and uses them. Every field
/// defaults (to what fails its check): a token of another kind signed with the same key (a
/// profile JWT) reads, and is refused as "not a questions token".
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct QuestionsClaims {
    pub typ: String,
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub login: u64,
    pub questions: Vec<TokenQuestion>,
    pub state: String,
    pub rd: Option<String>,
    /// When the token was issued: when its questions were shown (the funnel's time to answer;
    /// signed, so the form cannot move it).
    pub iat: u64,
    pub exp: u64,
}

/// One question of a token: only its id is read back.
#[derive(Debug, Deserialize)]
pub struct TokenQuestion {
    #[serde(default)]
    pub id: Option<String>,
}

impl QuestionsClaims {
    /// The ids of the questions the token asks.
    pub fn question_ids(&self) -> Vec<String> {
        self.questions.iter().filter_map(|q| q.id.clone()).collect()
    }
}

/// The custom form's URL with a fresh token for `user`'s pending questions.
pub fn redirect_url(
    gate: &Gate,
    form: &Url,
    lifetime: u64,
    user: &Session,
    rd: &ReturnTo,
    errors: &FieldErrors,
    values: &BTreeMap<String, Vec<String>>,
) -> Result<String, AppError> {
    let now = now_secs();
    let claims = IssuedClaims {
        typ: TOKEN_TYPE,
        iss: &gate.origin,
        aud: form.origin().ascii_serialization(),
        sub: &user.sub,
        login: user.login,
        questions: user
            .pending
            .iter()
            .filter_map(|id| gate.engine.question(id))
            .map(schema)
            .collect(),
        errors,
        values,
        state: random_token(18),
        continue_url: format!("{}{}", gate.origin, gate.routes.continue_),
        rd: rd.path(),
        iat: now,
        exp: now + lifetime,
    };
    let signed = serde_json::to_value(&claims)
        .map_err(|e| e.to_string())
        .and_then(|claims| gate.key.sign(&claims).map_err(|e| e.to_string()))
        .map_err(|e| AppError::BadRequest(format!("token signing failed: {e}")))?;
    let mut url = form.clone();
    url.query_pairs_mut().append_pair("token", &signed);
    Ok(url.to_string())
}

/// Why a posted-back token is refused (the `ContinueRejected` reason).
pub type Rejected = String;

/// The claims of `token` when its signature holds, and it is a questions token for this proxy
/// and the form at `form`, not expired at `now`.
pub fn verify(gate: &Gate, token: &str, form: &Url, now: u64) -> Result<QuestionsClaims, Rejected> {
    let claims = gate.key.verify(token).map_err(|e| e.to_string())?;
    check(
        claims,
        &gate.origin,
        &form.origin().ascii_serialization(),
        now,
    )
}

/// The checks of [`verify`] after the signature's, in its order: the kind of token, issuer
/// and audience, expiry.
fn check(
    claims: Value,
    issuer: &str,
    audience: &str,
    now: u64,
) -> Result<QuestionsClaims, Rejected> {
    let claims: QuestionsClaims =
        serde_json::from_value(claims).map_err(|_| "not a questions token".to_owned())?;
    if claims.typ != TOKEN_TYPE {
        return Err("not a questions token".into());
    }
    if claims.iss != issuer || claims.aud != audience {
        return Err("wrong issuer or audience".into());
    }
    if claims.exp <= now {
        return Err("expired".into());
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PROXY: &str = "https://app.example";
    const FORM: &str = "https://forms.example";

    fn claims() -> Value {
        json!({
            "typ": TOKEN_TYPE, "iss": PROXY, "aud": FORM, "sub": "alice", "login": 2,
            "questions": [{ "id": "company", "type": "text" }, { "type": "no id" }],
            "errors": {}, "values": {}, "state": "s1", "continue_url": "x", "rd": "/app",
            "iat": 100, "exp": 200,
        })
    }

    #[test]
    fn a_questions_token_reads_as_typed_claims() {
        let read = check(claims(), PROXY, FORM, 150).expect("valid");
        assert_eq!((read.sub.as_str(), read.login), ("alice", 2));
        assert_eq!(read.question_ids(), ["company"]);
        assert_eq!(
            (read.state.as_str(), read.rd.as_deref()),
            ("s1", Some("/app"))
        );
    }

    #[test]
    fn other_tokens_wrong_parties_and_expired_tokens_are_refused_in_order() {
        // A profile JWT, signed with the same key: another kind of token.
        let profile_jwt = json!({
            "iss": PROXY, "aud": "http://upstream", "sub": "alice", "iat": 1, "exp": 999,
            "idp": "https://op.example", "profile": { "company": "Acme" }, "profile_revision": 3,
        });
        let refused = |claims, now| check(claims, PROXY, FORM, now).map(|_| ()).unwrap_err();
        assert_eq!(refused(profile_jwt, 150), "not a questions token");
        let mut other = claims();
        other["typ"] = json!("profilegate/other");
        assert_eq!(refused(other, 150), "not a questions token");
        let mut foreign = claims();
        foreign["aud"] = json!("https://evil.example");
        assert_eq!(refused(foreign, 150), "wrong issuer or audience");
        let mut forged = claims();
        forged["iss"] = json!("https://evil.example");
        assert_eq!(refused(forged, 150), "wrong issuer or audience");
        assert_eq!(refused(claims(), 200), "expired");
        let mut no_exp = claims();
        no_exp.as_object_mut().expect("object").remove("exp");
        assert_eq!(refused(no_exp, 150), "expired");
    }
}
