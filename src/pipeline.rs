//! The request pipeline: one pure function, [`decide`], says what happens to a request.
//! The proxy layer (`proxy.rs`) only carries the decision out; no other path reaches the
//! upstream.
//!
//! ```text
//!  request ──► parse cookies, open session ──► decide(view, auth, routes)
//!                                                   │
//!   under /.profilegate/ ───────────────────────────┤
//!     jwks.json ────────► Jwks          public keys of the profile JWT (anyone)
//!     callback ─────────► FinishLogin   verify state, code, ID token; new session; pick
//!                                       this login's questions; 302 back (or to profile)
//!     profile  GET ─────► ShowQuestion  the next pending question (signed in)
//!     profile  POST ────► SubmitAnswer  CSRF; validate (422) or store durably; 303 on
//!     api/pending GET ──► ApiPending    JSON: pending questions with their schema
//!     api/answers POST ─► ApiAnswers    JSON: CSRF header; validate all (422) or store all
//!     api/profile GET ──► ApiProfile    JSON: the user's own answers
//!     me GET ───────────► ShowMe        the user's own stored data (signed in)
//!     me POST ──────────► SubmitMe      CSRF; change one answer (422) or erase the answers
//!     api/me GET ───────► ApiMe         JSON: the user's own stored data
//!     api/me PUT, POST ─► ApiMeChange   JSON: CSRF header; change one answer (400)
//!     api/me DELETE ────► ApiMeErase    JSON: CSRF header; erase the answers
//!     continue POST ────► Continue      custom UI post-back: token, state (one use), answers
//!     continue GET ─────► Continue      back on our origin: session brought up to date
//!     logout ───────────► Logout        clear session; RP-initiated logout at the OP
//!     frontchannel-logout GET ► FrontchannelLogout  the OP's iframe: revoke by the OP's
//!                                       iss + sid (or the cookie's session); a framable page
//!     backchannel-logout POST ► BackchannelLogout  the OP's logout token (no cookie, no
//!                                       Origin): verify, end the sessions it names everywhere
//!     signed-out ───────► SignedOut     "you have signed out" page
//!     anything else ────► NotFound      404 page
//!                                                   │
//!   a public route ([[routes]] public = true) ──────┤
//!     signed in, allowed ► Forward       with identity, never a question
//!     anyone else ───────► ForwardPublic identity headers stripped, nothing injected
//!                                                   │
//!   anonymous ──────────────────────────────────────┤
//!     browser navigation ► StartLogin   302 to the OP with state, nonce, PKCE S256
//!     API / XHR / other ─► Unauthenticated  401 JSON, never a redirect
//!                                                   │
//!   signed in, a rule says no ([access], route) ────┤
//!     anything ──────────► Deny          403 page (sign-out) or JSON; never upstream
//!                                                   │
//!   signed in, question pending, route asks ────────┤
//!     browser navigation ► AskQuestions      303 to the question page
//!     other, required ───► QuestionsPending  403 JSON naming the questions
//!     other, optional ───► Forward
//!                                                   │
//!   signed in ──────────► Forward       strip identity headers + own cookies, inject
//!                                       identity + answers + profile JWT, proxy
//! ```

use http::Method;

/// What `decide` needs to know of a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a Method,
    /// The request target's path, exactly as it will be forwarded.
    pub path: &'a str,
    /// True for a top-level browser navigation (HTML accepted, not XHR/fetch).
    pub is_navigation: bool,
    /// What `[[routes]]` say about the path (nothing for reserved paths).
    pub route: RouteFlags,
}

/// The widening effects of the matched route (`policy::RouteMatch`), as `decide` reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RouteFlags {
    /// No session needed, no questions.
    pub public: bool,
    /// Pending questions do not block.
    pub skip_questions: bool,
}

/// Whether the request carries a valid session, and what it still has to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    Anonymous,
    SignedIn(Pending),
    /// Signed in, but `[access]` or the route's rule refuses this user here.
    Denied,
}

/// The questions a session still has to settle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pending {
    Nothing,
    /// Only optional questions: browsers are asked, APIs pass.
    Optional,
    /// At least one required question: nothing reaches the upstream until it is answered.
    Required,
}

/// The proxy's reserved routes, computed once from `server.prefix`.
#[derive(Debug, Clone)]
pub struct Routes {
    pub prefix: String,
    pub callback: String,
    pub logout: String,
    pub signed_out: String,
    pub profile: String,
    pub jwks: String,
    pub api_pending: String,
    pub api_answers: String,
    pub api_profile: String,
    pub continue_: String,
    /// The user's own data: the page and its JSON.
    pub me: String,
    pub api_me: String,
    /// OIDC Front-Channel Logout 1.0: the page the OP embeds to end its sessions here.
    pub frontchannel_logout: String,
    /// Where the OP posts logout tokens (OpenID Connect Back-Channel Logout 1.0).
    pub backchannel_logout: String,
    /// Forward-auth mode: the edge proxy's question "may this request pass?".
    pub auth: String,
    /// A browser's way in: sign in (or answer what is due), then go to `?rd=`.
    pub start: String,
}

impl Routes {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            callback: format!("{prefix}/callback"),
            logout: format!("{prefix}/logout"),
            signed_out: format!("{prefix}/signed-out"),
            profile: format!("{prefix}/profile"),
            jwks: format!("{prefix}/jwks.json"),
            api_pending: format!("{prefix}/api/pending"),
            api_answers: format!("{prefix}/api/answers"),
            api_profile: format!("{prefix}/api/profile"),
            continue_: format!("{prefix}/continue"),
            me: format!("{prefix}/me"),
            api_me: format!("{prefix}/api/me"),
            frontchannel_logout: format!("{prefix}/frontchannel-logout"),
            backchannel_logout: format!("{prefix}/backchannel-logout"),
            auth: format!("{prefix}/auth"),
            start: format!("{prefix}/start"),
        }
    }

    /// True when `path` is under the reserved prefix (the prefix itself included).
    pub fn is_reserved(&self, path: &str) -> bool {
        path.strip_prefix(self.prefix.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

/// What the proxy does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Anonymous browser navigation: redirect to the OP.
    StartLogin,
    /// Anonymous API or XHR request: 401 JSON.
    Unauthenticated,
    /// The OP's redirect back: verify and create a session.
    FinishLogin,
    /// End the session (and at the OP when it supports RP-initiated logout).
    Logout,
    /// The page shown after logout.
    SignedOut,
    /// OIDC Front-Channel Logout: the OP's iframe ends its session here (GET only).
    FrontchannelLogout,
    /// The OP's back-channel logout (POST of a logout token, server to server).
    BackchannelLogout,
    /// Signed in: forward upstream with identity attached.
    Forward,
    /// A public route without an allowed session: forward with identity headers stripped.
    ForwardPublic,
    /// Signed in, refused by a policy rule: 403 page or JSON.
    Deny,
    /// Signed in, a question pending, browser navigation: 303 to the question page.
    AskQuestions,
    /// Signed in, a required question pending, not a navigation: 403 JSON.
    QuestionsPending,
    /// The question page.
    ShowQuestion,
    /// An answer (or a skip) posted from the question page.
    SubmitAnswer,
    /// The public keys of the profile JWT.
    Jwks,
    /// JSON API: the pending questions with their schema.
    ApiPending,
    /// JSON API: answers (and skips) posted by a single-page app.
    ApiAnswers,
    /// JSON API: the user's own answers.
    ApiProfile,
    /// The self-service page: what profilegate stores about the signed-in user.
    ShowMe,
    /// A change of one answer, or the erasure of all, posted from the self-service page.
    SubmitMe,
    /// JSON API: what profilegate stores about the user.
    ApiMe,
    /// JSON API: change one answer.
    ApiMeChange,
    /// JSON API: erase the user's answers.
    ApiMeErase,
    /// The custom UI's post-back (POST, from another site) and the return that follows (GET).
    Continue,
    /// A reserved path with no route.
    NotFound,
    /// A reserved route called with the wrong method.
    MethodNotAllowed,
}

/// Decides what happens to a request. Pure: same inputs, same decision.
pub fn decide(req: &RequestView<'_>, auth: Auth, routes: &Routes) -> Decision {
    if routes.is_reserved(req.path) {
        // The proxy's own routes serve every signed-in user, denied or not (sign-out above all).
        return reserved(req, auth, routes);
    }
    if req.route.public {
        return match auth {
            Auth::SignedIn(_) => Decision::Forward,
            Auth::Anonymous | Auth::Denied => Decision::ForwardPublic,
        };
    }
    match auth {
        Auth::Anonymous if req.is_navigation => Decision::StartLogin,
        Auth::Anonymous => Decision::Unauthenticated,
        Auth::Denied => Decision::Deny,
        Auth::SignedIn(Pending::Nothing) => Decision::Forward,
        Auth::SignedIn(_) if req.route.skip_questions => Decision::Forward,
        Auth::SignedIn(_) if req.is_navigation => Decision::AskQuestions,
        Auth::SignedIn(Pending::Optional) => Decision::Forward,
        Auth::SignedIn(Pending::Required) => Decision::QuestionsPending,
    }
}

fn reserved(req: &RequestView<'_>, auth: Auth, routes: &Routes) -> Decision {
    let get = req.method == Method::GET || req.method == Method::HEAD;
    let post = req.method == Method::POST;
    let path = req.path;
    if path == routes.callback {
        if get {
            Decision::FinishLogin
        } else {
            Decision::MethodNotAllowed
        }
    } else if path == routes.logout {
        if get || post {
            Decision::Logout
        } else {
            Decision::MethodNotAllowed
        }
    } else if path == routes.frontchannel_logout {
        if get {
            Decision::FrontchannelLogout
        } else {
            Decision::MethodNotAllowed
        }
    } else if path == routes.backchannel_logout {
        if post {
            Decision::BackchannelLogout
        } else {
            Decision::MethodNotAllowed
        }
    } else if path == routes.signed_out {
        if get {
            Decision::SignedOut
        } else {
            Decision::MethodNotAllowed
        }
    } else if path == routes.jwks {
        if get {
            Decision::Jwks
        } else {
            Decision::MethodNotAllowed
        }
    } else if path == routes.continue_ {
        if get || post {
            Decision::Continue
        } else {
            Decision::MethodNotAllowed
        }
    } else if path == routes.api_pending || path == routes.api_answers || path == routes.api_profile
    {
        match auth {
            Auth::Anonymous => Decision::Unauthenticated,
            Auth::SignedIn(_) | Auth::Denied if get && path == routes.api_pending => {
                Decision::ApiPending
            }
            Auth::SignedIn(_) | Auth::Denied if get && path == routes.api_profile => {
                Decision::ApiProfile
            }
            Auth::SignedIn(_) | Auth::Denied if post && path == routes.api_answers => {
                Decision::ApiAnswers
            }
            Auth::SignedIn(_) | Auth::Denied => Decision::MethodNotAllowed,
        }
    } else if path == routes.me {
        match auth {
            Auth::Anonymous if get && req.is_navigation => Decision::StartLogin,
            Auth::Anonymous => Decision::Unauthenticated,
            Auth::SignedIn(_) | Auth::Denied if get => Decision::ShowMe,
            Auth::SignedIn(_) | Auth::Denied if post => Decision::SubmitMe,
            Auth::SignedIn(_) | Auth::Denied => Decision::MethodNotAllowed,
        }
    } else if path == routes.api_me {
        match auth {
            Auth::Anonymous => Decision::Unauthenticated,
            Auth::SignedIn(_) | Auth::Denied if get => Decision::ApiMe,
            Auth::SignedIn(_) | Auth::Denied if post || req.method == Method::PUT => {
                Decision::ApiMeChange
            }
            Auth::SignedIn(_) | Auth::Denied if req.method == Method::DELETE => {
                Decision::ApiMeErase
            }
            Auth::SignedIn(_) | Auth::Denied => Decision::MethodNotAllowed,
        }
    } else if path == routes.profile {
        match auth {
            Auth::Anonymous if get && req.is_navigation => Decision::StartLogin,
            Auth::Anonymous => Decision::Unauthenticated,
            Auth::SignedIn(_) | Auth::Denied if get => Decision::ShowQuestion,
            Auth::SignedIn(_) | Auth::Denied if post => Decision::SubmitAnswer,
            Auth::SignedIn(_) | Auth::Denied => Decision::MethodNotAllowed,
        }
    } else {
        Decision::NotFound
    }
}

/// True when the request is a top-level browser navigation: it accepts HTML, is not marked as
/// XHR, and (where the browser says) is a navigation.
pub fn is_navigation(
    method: &Method,
    accept: Option<&[u8]>,
    x_requested_with: Option<&[u8]>,
    sec_fetch_mode: Option<&[u8]>,
) -> bool {
    if method != Method::GET && method != Method::HEAD {
        return false;
    }
    if x_requested_with.is_some_and(|v| v.eq_ignore_ascii_case(b"XMLHttpRequest")) {
        return false;
    }
    if let Some(mode) = sec_fetch_mode {
        if !mode.eq_ignore_ascii_case(b"navigate") {
            return false;
        }
    }
    accept.is_some_and(|a| a.windows(9).any(|w| w.eq_ignore_ascii_case(b"text/html")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Auth::Anonymous;
    use Decision::*;

    #[allow(non_upper_case_globals)]
    const SignedIn: Auth = Auth::SignedIn(Pending::Nothing);
    const REQUIRED: Auth = Auth::SignedIn(Pending::Required);
    const OPTIONAL: Auth = Auth::SignedIn(Pending::Optional);

    fn view<'a>(method: &'a Method, path: &'a str, nav: bool) -> RequestView<'a> {
        RequestView {
            method,
            path,
            is_navigation: nav,
            route: RouteFlags::default(),
        }
    }

    #[test]
    fn policy_table() {
        let routes = Routes::new("/.profilegate");
        let public = RouteFlags {
            public: true,
            skip_questions: true,
        };
        let skip = RouteFlags {
            public: false,
            skip_questions: true,
        };
        let ask = RouteFlags::default();
        let (get, post) = (Method::GET, Method::POST);
        let table: &[(&Method, &str, bool, RouteFlags, Auth, Decision)] = &[
            (&get, "/healthz", false, public, Anonymous, ForwardPublic),
            (&get, "/healthz", true, public, Anonymous, ForwardPublic),
            (&get, "/healthz", true, public, SignedIn, Forward),
            (&get, "/healthz", true, public, REQUIRED, Forward),
            (&get, "/healthz", true, public, Auth::Denied, ForwardPublic),
            (&get, "/app", true, ask, Auth::Denied, Deny),
            (&post, "/api/x", false, ask, Auth::Denied, Deny),
            (&get, "/api/x", false, skip, Auth::Denied, Deny),
            (&get, "/api/x", false, skip, REQUIRED, Forward),
            (&get, "/api/x", true, skip, REQUIRED, Forward),
            (&get, "/api/x", false, skip, Anonymous, Unauthenticated),
            (&get, "/app", true, ask, REQUIRED, AskQuestions),
            // The proxy's own routes serve a denied user: sign-out, the question page.
            (
                &get,
                "/.profilegate/logout",
                true,
                ask,
                Auth::Denied,
                Logout,
            ),
            (
                &get,
                "/.profilegate/profile",
                true,
                ask,
                Auth::Denied,
                ShowQuestion,
            ),
            (
                &get,
                "/.profilegate/api/profile",
                false,
                ask,
                Auth::Denied,
                ApiProfile,
            ),
        ];
        for (method, path, nav, route, auth, expected) in table {
            let view = RequestView {
                route: *route,
                ..view(method, path, *nav)
            };
            let got = decide(&view, *auth, &routes);
            assert_eq!(
                got, *expected,
                "{method} {path} nav={nav} {route:?} {auth:?}"
            );
        }
    }

    #[test]
    fn decision_table() {
        let routes = Routes::new("/.profilegate");
        let (get, post, put) = (Method::GET, Method::POST, Method::PUT);
        let (delete, patch) = (Method::DELETE, Method::PATCH);
        let table: &[(&Method, &str, bool, Auth, Decision)] = &[
            (&get, "/", true, Anonymous, StartLogin),
            (&get, "/app/page?x=1", true, Anonymous, StartLogin),
            (&get, "/api/data", false, Anonymous, Unauthenticated),
            (&post, "/api/data", false, Anonymous, Unauthenticated),
            (&get, "/", true, SignedIn, Forward),
            (&post, "/api/data", false, SignedIn, Forward),
            (&put, "/x", false, SignedIn, Forward),
            (&get, "/.profilegate/callback", true, Anonymous, FinishLogin),
            (&get, "/.profilegate/callback", true, SignedIn, FinishLogin),
            (
                &post,
                "/.profilegate/callback",
                false,
                Anonymous,
                MethodNotAllowed,
            ),
            (&get, "/.profilegate/logout", true, SignedIn, Logout),
            (&post, "/.profilegate/logout", false, SignedIn, Logout),
            (&get, "/.profilegate/logout", true, Anonymous, Logout),
            (
                &put,
                "/.profilegate/logout",
                false,
                SignedIn,
                MethodNotAllowed,
            ),
            (&get, "/.profilegate/signed-out", true, Anonymous, SignedOut),
            // The OP's front-channel iframe: with or without a session, GET only.
            (
                &get,
                "/.profilegate/frontchannel-logout",
                false,
                Anonymous,
                FrontchannelLogout,
            ),
            (
                &get,
                "/.profilegate/frontchannel-logout",
                true,
                SignedIn,
                FrontchannelLogout,
            ),
            (
                &post,
                "/.profilegate/frontchannel-logout",
                false,
                SignedIn,
                MethodNotAllowed,
            ),
            (&get, "/.profilegate/nope", true, SignedIn, NotFound),
            (&get, "/.profilegate", true, SignedIn, NotFound),
            (&get, "/.profilegate/", true, Anonymous, NotFound),
            // Only the exact prefix segment is reserved.
            (&get, "/.profilegatex/callback", true, SignedIn, Forward),
            (&get, "/.profilegatex", false, Anonymous, Unauthenticated),
            // Pending questions.
            (&get, "/app", true, REQUIRED, AskQuestions),
            (&get, "/app", true, OPTIONAL, AskQuestions),
            (&get, "/api/x", false, REQUIRED, QuestionsPending),
            (&post, "/api/x", false, REQUIRED, QuestionsPending),
            (&put, "/api/x", false, OPTIONAL, Forward),
            (&get, "/api/x", false, OPTIONAL, Forward),
            // The question page and the JWKS.
            (&get, "/.profilegate/profile", true, REQUIRED, ShowQuestion),
            (&get, "/.profilegate/profile", true, SignedIn, ShowQuestion),
            (
                &post,
                "/.profilegate/profile",
                false,
                REQUIRED,
                SubmitAnswer,
            ),
            (
                &put,
                "/.profilegate/profile",
                false,
                REQUIRED,
                MethodNotAllowed,
            ),
            (&get, "/.profilegate/profile", true, Anonymous, StartLogin),
            (
                &post,
                "/.profilegate/profile",
                false,
                Anonymous,
                Unauthenticated,
            ),
            (&get, "/.profilegate/jwks.json", false, Anonymous, Jwks),
            (&get, "/.profilegate/jwks.json", false, REQUIRED, Jwks),
            (
                &post,
                "/.profilegate/jwks.json",
                false,
                SignedIn,
                MethodNotAllowed,
            ),
            (&get, "/.profilegate/logout", true, REQUIRED, Logout),
            // The JSON API: signed in only, never a redirect.
            (
                &get,
                "/.profilegate/api/pending",
                false,
                REQUIRED,
                ApiPending,
            ),
            (
                &get,
                "/.profilegate/api/pending",
                true,
                SignedIn,
                ApiPending,
            ),
            (
                &get,
                "/.profilegate/api/profile",
                false,
                OPTIONAL,
                ApiProfile,
            ),
            (
                &post,
                "/.profilegate/api/answers",
                false,
                REQUIRED,
                ApiAnswers,
            ),
            (
                &get,
                "/.profilegate/api/answers",
                false,
                REQUIRED,
                MethodNotAllowed,
            ),
            (
                &get,
                "/.profilegate/api/pending",
                true,
                Anonymous,
                Unauthenticated,
            ),
            (
                &post,
                "/.profilegate/api/answers",
                false,
                Anonymous,
                Unauthenticated,
            ),
            (&get, "/.profilegate/api/other", false, SignedIn, NotFound),
            // Self-service: the page (sign-in first, like the question page) and its JSON.
            (&get, "/.profilegate/me", true, Anonymous, StartLogin),
            (&get, "/.profilegate/me", false, Anonymous, Unauthenticated),
            (&post, "/.profilegate/me", false, Anonymous, Unauthenticated),
            (&get, "/.profilegate/me", true, REQUIRED, ShowMe),
            (&get, "/.profilegate/me", true, Auth::Denied, ShowMe),
            (&post, "/.profilegate/me", false, SignedIn, SubmitMe),
            (&put, "/.profilegate/me", false, SignedIn, MethodNotAllowed),
            (&get, "/.profilegate/me/x", true, SignedIn, NotFound),
            (
                &get,
                "/.profilegate/api/me",
                true,
                Anonymous,
                Unauthenticated,
            ),
            (&get, "/.profilegate/api/me", false, OPTIONAL, ApiMe),
            (&post, "/.profilegate/api/me", false, REQUIRED, ApiMeChange),
            (&put, "/.profilegate/api/me", false, SignedIn, ApiMeChange),
            (
                &delete,
                "/.profilegate/api/me",
                false,
                Auth::Denied,
                ApiMeErase,
            ),
            (
                &delete,
                "/.profilegate/api/me",
                false,
                Anonymous,
                Unauthenticated,
            ),
            (
                &patch,
                "/.profilegate/api/me",
                false,
                SignedIn,
                MethodNotAllowed,
            ),
            // The OP's back-channel logout: POST only, whoever (no cookie) sends it.
            (
                &post,
                "/.profilegate/backchannel-logout",
                false,
                Anonymous,
                BackchannelLogout,
            ),
            (
                &post,
                "/.profilegate/backchannel-logout",
                false,
                SignedIn,
                BackchannelLogout,
            ),
            (
                &get,
                "/.profilegate/backchannel-logout",
                true,
                Anonymous,
                MethodNotAllowed,
            ),
            (
                &put,
                "/.profilegate/backchannel-logout",
                false,
                Anonymous,
                MethodNotAllowed,
            ),
            // The custom UI's post-back carries no session cookie (cross-site POST).
            (&post, "/.profilegate/continue", false, Anonymous, Continue),
            (&get, "/.profilegate/continue", true, REQUIRED, Continue),
            (
                &put,
                "/.profilegate/continue",
                false,
                REQUIRED,
                MethodNotAllowed,
            ),
        ];
        for (method, path, nav, auth, expected) in table {
            let got = decide(&view(method, path, *nav), *auth, &routes);
            assert_eq!(got, *expected, "{method} {path} nav={nav} {auth:?}");
        }
    }

    #[test]
    fn navigation_detection() {
        let html = Some(&b"text/html,application/xhtml+xml"[..]);
        assert!(is_navigation(&Method::GET, html, None, None));
        assert!(is_navigation(&Method::GET, html, None, Some(b"navigate")));
        assert!(!is_navigation(&Method::GET, html, None, Some(b"cors")));
        assert!(!is_navigation(
            &Method::GET,
            html,
            Some(b"XMLHttpRequest"),
            None
        ));
        assert!(!is_navigation(&Method::POST, html, None, None));
        assert!(!is_navigation(
            &Method::GET,
            Some(b"application/json"),
            None,
            None
        ));
        assert!(!is_navigation(&Method::GET, None, None, None));
        assert!(!is_navigation(&Method::GET, Some(b"*/*"), None, None));
    }
}
