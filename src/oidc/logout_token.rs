//! OpenID Connect Back-Channel Logout 1.0 (§2.4, §2.6): the logout token the OP posts to
//! `/.profilegate/backchannel-logout`, verified before any session ends. The signature is
//! checked with the OP's key set as for ID tokens (an unknown `kid` fetches the set again,
//! `oidc.signing_algs` is the allow-list, `none` never passes); then the claims: `iss` the
//! configured issuer exactly, `aud` naming this client (and `azp`, if present), `iat` present
//! and not in the future, `exp` (when present) not past, the back-channel `events` member, `sub`
//! or `sid`, a `jti`, and no `nonce` ([`check_claims`]; the signature half is
//! `Provider::verify_logout_token`, in `mod.rs`, which owns the key set). The route (`proxy/routes/backchannel.rs`) makes the `jti`
//! one-use across replicas and ends the sessions.

use serde_json::{Map, Value};

use super::jws::{KeyProblem, CLOCK_LEEWAY};

/// The `events` member that makes a JWT a logout token (§2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How long after its `iat` a logout token without `exp` is taken (seconds): an OP posts it at
/// once, and the `jti` mark must outlive every moment the token is accepted.
pub const MAX_LOGOUT_TOKEN_AGE: u64 = 600;
/// Longest `sid`, `sub` and `jti` accepted (bytes).
const MAX_CLAIM_LEN: usize = 255;

/// A verified logout token: which sessions end, and its one-use mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutToken {
    /// The OP's subject, when the token names one.
    pub sub: Option<String>,
    /// The OP's session id, when the token names one.
    pub sid: Option<String>,
    /// The token's id: used once (with the issuer) across replicas.
    pub jti: String,
    /// Until when (seconds since the epoch) the token could still be accepted: how long its
    /// `jti` must stay marked.
    pub accepted_until: u64,
}

/// Why a logout token is refused. The messages name the defect, never a value from the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogoutTokenProblem {
    #[error("the logout token is not a signed JWT (compact JWS)")]
    Malformed,
    #[error("the logout token's algorithm is not allowed (oidc.signing_algs; never none)")]
    DisallowedAlg,
    #[error("no key of the OP's key set verifies the logout token's signature")]
    NoKey,
    #[error("the logout token's signature is not valid")]
    BadSignature,
    #[error("the OP's keys are not available to verify the logout token")]
    KeysUnavailable,
    #[error("the logout token's iss is not the configured issuer")]
    OtherIssuer,
    #[error("the logout token is not addressed to this client (aud)")]
    OtherAudience,
    #[error("the logout token's azp names another client")]
    OtherParty,
    #[error("the logout token has no valid iat")]
    NoIssueTime,
    #[error("the logout token was issued in the future (iat)")]
    IssuedInFuture,
    #[error("the logout token has expired")]
    Expired,
    #[error("the logout token has no events claim (a JSON object)")]
    NoEvents,
    #[error("the logout token's events claim has no back-channel logout event (a JSON object)")]
    NotALogoutEvent,
    #[error("the logout token names neither sub nor sid")]
    NoSubjectOrSession,
    #[error("the logout token's sub or sid is not a usable string")]
    BadSubjectOrSession,
    #[error("the logout token contains a nonce (forbidden: it could be an ID token)")]
    Nonce,
    #[error("the logout token has no usable jti")]
    NoJti,
}

impl From<KeyProblem> for LogoutTokenProblem {
    fn from(problem: KeyProblem) -> Self {
        match problem {
            KeyProblem::Malformed => Self::Malformed,
            KeyProblem::DisallowedAlg(_) => Self::DisallowedAlg,
            KeyProblem::NoKey { .. } | KeyProblem::WrongKeyType(_) => Self::NoKey,
            KeyProblem::BadSignature => Self::BadSignature,
        }
    }
}

/// The claims of a logout token whose signature was verified (§2.4, §2.6 steps 3 to 6).
pub fn check_claims(
    claims: &Map<String, Value>,
    issuer: &str,
    client_id: &str,
    now: u64,
) -> Result<LogoutToken, LogoutTokenProblem> {
    use LogoutTokenProblem as P;
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(P::OtherIssuer);
    }
    match claims.get("aud") {
        Some(Value::String(aud)) if aud == client_id => {}
        Some(Value::Array(auds)) if auds.iter().any(|a| a.as_str() == Some(client_id)) => {}
        _ => return Err(P::OtherAudience),
    }
    if let Some(azp) = claims.get("azp") {
        if azp.as_str() != Some(client_id) {
            return Err(P::OtherParty);
        }
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_u64)
        .ok_or(P::NoIssueTime)?;
    if iat > now + CLOCK_LEEWAY {
        return Err(P::IssuedInFuture);
    }
    let accepted_until = match claims.get("exp") {
        Some(exp) => {
            let exp = exp.as_u64().ok_or(P::Expired)?;
            if exp + CLOCK_LEEWAY < now {
                return Err(P::Expired);
            }
            exp + CLOCK_LEEWAY
        }
        None => {
            if iat + MAX_LOGOUT_TOKEN_AGE + CLOCK_LEEWAY < now {
                return Err(P::Expired);
            }
            iat + MAX_LOGOUT_TOKEN_AGE + CLOCK_LEEWAY
        }
    };
    let events = claims
        .get("events")
        .and_then(Value::as_object)
        .ok_or(P::NoEvents)?;
    if !events
        .get(BACKCHANNEL_LOGOUT_EVENT)
        .is_some_and(Value::is_object)
    {
        return Err(P::NotALogoutEvent);
    }
    if claims.contains_key("nonce") {
        return Err(P::Nonce);
    }
    let text = |name: &str| -> Result<Option<String>, LogoutTokenProblem> {
        match claims.get(name) {
            None => Ok(None),
            Some(Value::String(s)) if usable(s) => Ok(Some(s.clone())),
            Some(_) => Err(P::BadSubjectOrSession),
        }
    };
    let (sub, sid) = (text("sub")?, text("sid")?);
    if sub.is_none() && sid.is_none() {
        return Err(P::NoSubjectOrSession);
    }
    let jti = match claims.get("jti") {
        Some(Value::String(jti)) if usable(jti) => jti.clone(),
        _ => return Err(P::NoJti),
    };
    Ok(LogoutToken {
        sub,
        sid,
        jti,
        accepted_until,
    })
}

/// A claim value usable as a key: not empty, bounded, no NUL or line break (the `jti` mark's
/// key separates its parts with `\n`).
fn usable(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_CLAIM_LEN && !s.contains(['\0', '\n', '\r'])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use LogoutTokenProblem as P;

    const ISS: &str = "https://op.example/";
    const NOW: u64 = 1_000_000;

    fn good() -> Value {
        json!({
            "iss": ISS, "aud": "client", "iat": NOW - 5, "exp": NOW + 120, "jti": "j1",
            "sub": "alice", "sid": "op-sid",
            "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
        })
    }

    fn check(claims: Value) -> Result<LogoutToken, LogoutTokenProblem> {
        check_claims(claims.as_object().expect("object"), ISS, "client", NOW)
    }

    fn with(edit: impl Fn(&mut Map<String, Value>)) -> Value {
        let mut c = good();
        edit(c.as_object_mut().expect("object"));
        c
    }

    #[test]
    fn a_good_logout_token_names_its_sessions_and_how_long_its_jti_lives() {
        let token = check(good()).expect("good");
        assert_eq!(token.sub.as_deref(), Some("alice"));
        assert_eq!(token.sid.as_deref(), Some("op-sid"));
        assert_eq!(token.jti, "j1");
        assert_eq!(token.accepted_until, NOW + 120 + CLOCK_LEEWAY);
        // Without exp: accepted for a bounded time after iat, and marked that long.
        let token = check(with(|c| {
            c.remove("exp");
        }))
        .expect("no exp");
        assert_eq!(
            token.accepted_until,
            NOW - 5 + MAX_LOGOUT_TOKEN_AGE + CLOCK_LEEWAY
        );
        // aud as a list, azp naming us, only sid, only sub.
        assert!(check(with(|c| {
            c.insert("aud".into(), json!(["other", "client"]));
            c.insert("azp".into(), json!("client"));
        }))
        .is_ok());
        assert!(check(with(|c| {
            c.remove("sub");
        }))
        .is_ok());
        assert!(check(with(|c| {
            c.remove("sid");
        }))
        .is_ok());
    }

    #[test]
    fn every_defect_is_refused_with_its_reason() {
        type Edit = fn(&mut Map<String, Value>);
        let table: &[(&str, Edit, LogoutTokenProblem)] = &[
            (
                "other issuer",
                |c| {
                    c.insert("iss".into(), json!("https://op.example"));
                },
                P::OtherIssuer,
            ),
            (
                "no issuer",
                |c| {
                    c.remove("iss");
                },
                P::OtherIssuer,
            ),
            (
                "other audience",
                |c| {
                    c.insert("aud".into(), json!("other"));
                },
                P::OtherAudience,
            ),
            (
                "other audiences",
                |c| {
                    c.insert("aud".into(), json!(["a", "b"]));
                },
                P::OtherAudience,
            ),
            (
                "no audience",
                |c| {
                    c.remove("aud");
                },
                P::OtherAudience,
            ),
            (
                "other azp",
                |c| {
                    c.insert("azp".into(), json!("other"));
                },
                P::OtherParty,
            ),
            (
                "no iat",
                |c| {
                    c.remove("iat");
                },
                P::NoIssueTime,
            ),
            (
                "iat a string",
                |c| {
                    c.insert("iat".into(), json!("1"));
                },
                P::NoIssueTime,
            ),
            (
                "iat in the future",
                |c| {
                    c.insert("iat".into(), json!(NOW + CLOCK_LEEWAY + 1));
                },
                P::IssuedInFuture,
            ),
            (
                "expired",
                |c| {
                    c.insert("exp".into(), json!(NOW - CLOCK_LEEWAY - 1));
                },
                P::Expired,
            ),
            (
                "old, no exp",
                |c| {
                    c.remove("exp");
                    c.insert(
                        "iat".into(),
                        json!(NOW - MAX_LOGOUT_TOKEN_AGE - CLOCK_LEEWAY - 1),
                    );
                },
                P::Expired,
            ),
            (
                "no events",
                |c| {
                    c.remove("events");
                },
                P::NoEvents,
            ),
            (
                "events not an object",
                |c| {
                    c.insert("events".into(), json!([BACKCHANNEL_LOGOUT_EVENT]));
                },
                P::NoEvents,
            ),
            (
                "other event",
                |c| {
                    c.insert("events".into(), json!({"http://example/other": {}}));
                },
                P::NotALogoutEvent,
            ),
            (
                "event not an object",
                |c| {
                    c.insert("events".into(), json!({ BACKCHANNEL_LOGOUT_EVENT: true }));
                },
                P::NotALogoutEvent,
            ),
            (
                "nonce",
                |c| {
                    c.insert("nonce".into(), json!("n"));
                },
                P::Nonce,
            ),
            (
                "neither sub nor sid",
                |c| {
                    c.remove("sub");
                    c.remove("sid");
                },
                P::NoSubjectOrSession,
            ),
            (
                "empty sid",
                |c| {
                    c.insert("sid".into(), json!(""));
                },
                P::BadSubjectOrSession,
            ),
            (
                "sub a number",
                |c| {
                    c.insert("sub".into(), json!(7));
                },
                P::BadSubjectOrSession,
            ),
            (
                "no jti",
                |c| {
                    c.remove("jti");
                },
                P::NoJti,
            ),
            (
                "jti with a line break",
                |c| {
                    c.insert("jti".into(), json!("a\nb"));
                },
                P::NoJti,
            ),
            (
                "jti too long",
                |c| {
                    c.insert("jti".into(), json!("j".repeat(256)));
                },
                P::NoJti,
            ),
        ];
        for (what, edit, want) in table {
            assert_eq!(check(with(*edit)).err().as_ref(), Some(want), "{what}");
        }
    }

    #[test]
    fn messages_never_carry_token_values() {
        let problems = [
            P::from(KeyProblem::NoKey {
                kid: Some("secret-kid".into()),
                alg: "ES256".into(),
            }),
            P::from(KeyProblem::DisallowedAlg("none".into())),
        ];
        for p in problems {
            let text = p.to_string();
            assert!(
                !text.contains("secret-kid") && !text.contains("none\""),
                "{text}"
            );
        }
    }
}
