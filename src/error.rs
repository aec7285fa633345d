//! The one error type of the request path and its one mapping to HTTP: a status, a fixed public
//! message, and the cause for the log. Users never see the cause.

use crate::oidc::OidcError;

/// Everything that can go wrong while the proxy answers a request itself.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("login state missing, expired or not matching")]
    LoginStateInvalid,
    #[error("login state already used")]
    LoginStateReplayed,
    #[error("callback issuer {0:?} is not the configured issuer (compared exactly)")]
    IssuerMismatch(String),
    #[error("the identity provider returned error {0:?}")]
    LoginDenied(String),
    #[error("callback without an authorization code")]
    MissingCode,
    #[error(transparent)]
    Oidc(#[from] OidcError),
    #[error("CSRF token missing or wrong")]
    CsrfRejected,
    #[error("request body too large")]
    BodyTooLarge,
    #[error("custom UI post-back refused: {0}")]
    ContinueRejected(String),
    #[error("malformed request: {0}")]
    BadRequest(String),
    #[error("cross-origin request refused: {0}")]
    CrossOrigin(String),
    #[error("a header line of {longest} bytes is over the limit of {limit}")]
    HeaderTooLarge { longest: usize, limit: usize },
    #[error("profile store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("no such route")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("upstream unavailable: {0}")]
    UpstreamUnavailable(String),
    #[error("access denied by {0}")]
    AccessDenied(String),
    #[error("the session would be too large: {0}")]
    SessionTooLarge(String),
}

/// What the user is told: a status, a title and one sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicError {
    pub status: u16,
    /// Short machine-readable code for JSON answers.
    pub code: &'static str,
    pub title: &'static str,
    pub message: &'static str,
    /// True when signing in again is the way out.
    pub retry_login: bool,
}

impl AppError {
    pub fn public(&self) -> PublicError {
        let p = |status, code, title, message, retry_login| PublicError {
            status,
            code,
            title,
            message,
            retry_login,
        };
        match self {
            AppError::LoginStateInvalid => p(
                400,
                "invalid_login_state",
                "Sign-in link expired",
                "This sign-in attempt is no longer valid: it expired, was already used, or was started in another browser.",
                true,
            ),
            AppError::LoginStateReplayed => p(
                400,
                "invalid_login_state",
                "Sign-in link already used",
                "This sign-in attempt has already been completed once and cannot be used again.",
                true,
            ),
            AppError::IssuerMismatch(_) => p(
                400,
                "issuer_mismatch",
                "Sign-in could not be completed",
                "The answer came from an identity provider this site does not use.",
                true,
            ),
            AppError::LoginDenied(_) => p(
                400,
                "login_failed",
                "Sign-in could not be completed",
                "The identity provider reported a problem with this sign-in.",
                true,
            ),
            AppError::MissingCode => p(
                400,
                "invalid_callback",
                "Sign-in could not be completed",
                "The identity provider's answer was incomplete.",
                true,
            ),
            AppError::Oidc(OidcError::Unreachable(_) | OidcError::Misconfigured(_)) => p(
                502,
                "idp_unreachable",
                "Identity provider unavailable",
                "The identity provider cannot be reached right now. Please try again in a moment.",
                true,
            ),
            AppError::Oidc(OidcError::CodeRejected(_)) => p(
                400,
                "login_failed",
                "Sign-in could not be completed",
                "The identity provider did not accept this sign-in. It may have expired; please sign in again.",
                true,
            ),
            AppError::Oidc(OidcError::InvalidToken(_) | OidcError::InvalidUserinfo(_)) => p(
                502,
                "invalid_id_token",
                "Sign-in could not be verified",
                "The identity provider's answer could not be verified, so you were not signed in.",
                true,
            ),
            AppError::CsrfRejected => p(
                403,
                "csrf_rejected",
                "Request refused",
                "This form has expired or did not come from this site. Please go back and try again.",
                false,
            ),
            AppError::BodyTooLarge => p(
                413,
                "body_too_large",
                "Request too large",
                "The submitted data is too large.",
                false,
            ),
            AppError::ContinueRejected(_) => p(
                400,
                "invalid_continue",
                "This form has expired",
                "This form has expired or was already sent. Please go back to the application and try again.",
                true,
            ),
            AppError::BadRequest(_) => p(
                400,
                "bad_request",
                "Request not understood",
                "The request could not be read.",
                false,
            ),
            AppError::CrossOrigin(_) => p(
                403,
                "cross_origin_request",
                "Request refused",
                "This request came from another site. Please go back to this site and try again there.",
                false,
            ),
            AppError::HeaderTooLarge { .. } => p(
                431,
                "header_too_large",
                "Request headers too large",
                "The request carried a header that is too large. Clearing this site's cookies may help.",
                false,
            ),
            AppError::Store(_) => p(
                503,
                "store_unavailable",
                "Profile temporarily unavailable",
                "Your profile cannot be read or saved right now. Nothing was lost; please try again in a moment.",
                false,
            ),
            AppError::NotFound => p(404, "not_found", "Not found", "There is nothing here.", false),
            AppError::MethodNotAllowed => p(
                405,
                "method_not_allowed",
                "Method not allowed",
                "This address does not accept that kind of request.",
                false,
            ),
            AppError::UpstreamUnavailable(_) => p(
                502,
                "upstream_unavailable",
                "Application unavailable",
                "The application behind this sign-in cannot be reached right now. Please try again in a moment.",
                false,
            ),
            AppError::AccessDenied(_) => p(
                403,
                "access_denied",
                "Access denied",
                "Your account does not have access to this page. If you think it should, ask the site's administrator, or sign in with another account.",
                false,
            ),
            AppError::SessionTooLarge(_) => p(
                500,
                "session_too_large",
                "Sign-in could not be completed",
                "Your account carries more information than this site can keep for a session. Please tell the site's administrator.",
                false,
            ),
        }
    }

    /// Logs the cause (never shown to users) at a level fitting who is at fault.
    pub fn log(&self, path: &str) {
        let status = self.public().status;
        if status >= 500 {
            tracing::warn!(status, path, error = %self, "request failed");
        } else {
            tracing::info!(status, path, error = %self, "request refused");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_contract() {
        assert_eq!(AppError::LoginStateInvalid.public().status, 400);
        assert_eq!(AppError::LoginStateReplayed.public().status, 400);
        assert_eq!(
            AppError::Oidc(OidcError::Unreachable("x".into()))
                .public()
                .status,
            502
        );
        assert_eq!(AppError::NotFound.public().status, 404);
        assert_eq!(AppError::CsrfRejected.public().status, 403);
        assert_eq!(AppError::CrossOrigin("x".into()).public().status, 403);
        assert_eq!(
            AppError::CrossOrigin("x".into()).public().code,
            "cross_origin_request"
        );
        let big = AppError::HeaderTooLarge {
            longest: 20_000,
            limit: 16_384,
        };
        assert_eq!(big.public().status, 431);
    }

    #[test]
    fn public_messages_never_carry_the_cause() {
        let secret = "token-abc-123";
        let e = AppError::Oidc(OidcError::InvalidToken(secret.into()));
        let p = e.public();
        assert!(!p.message.contains(secret) && !p.title.contains(secret));
    }
}
