//! The request pipeline: one pure function, [`decide`], says what happens to a request.
//! The proxy layer (`proxy.rs`) only carries the decision out; no other path reaches the
//! upstream.
//!
//! ```text
//!  request ──► parse cookies, open session ──► decide(view, auth, routes)
//!                                                   │
//!   under /.profilegate/ ───────────────────────────┤
//!     callback ─────────► FinishLogin   verify state, code, ID token; new session; 302 back
//!     logout ───────────► Logout        clear session; RP-initiated logout at the OP
//!     signed-out ───────► SignedOut     "you have signed out" page
//!     anything else ────► NotFound      404 page
//!                                                   │
//!   anonymous ──────────────────────────────────────┤
//!     browser navigation ► StartLogin   302 to the OP with state, nonce, PKCE S256
//!     API / XHR / other ─► Unauthenticated  401 JSON, never a redirect
//!                                                   │
//!   signed in ──────────► Forward       strip identity headers + own cookies, inject
//!                                       identity, proxy (bodies stream both ways)
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
}

/// Whether the request carries a valid session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    Anonymous,
    SignedIn,
}

/// The proxy's reserved routes, computed once from `server.prefix`.
#[derive(Debug, Clone)]
pub struct Routes {
    pub prefix: String,
    pub callback: String,
    pub logout: String,
    pub signed_out: String,
}

impl Routes {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            callback: format!("{prefix}/callback"),
            logout: format!("{prefix}/logout"),
            signed_out: format!("{prefix}/signed-out"),
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
    /// Signed in: forward upstream with identity attached.
    Forward,
    /// A reserved path with no route.
    NotFound,
    /// A reserved route called with the wrong method.
    MethodNotAllowed,
}

/// Decides what happens to a request. Pure: same inputs, same decision.
pub fn decide(req: &RequestView<'_>, auth: Auth, routes: &Routes) -> Decision {
    if routes.is_reserved(req.path) {
        return reserved(req, routes);
    }
    match auth {
        Auth::SignedIn => Decision::Forward,
        Auth::Anonymous if req.is_navigation => Decision::StartLogin,
        Auth::Anonymous => Decision::Unauthenticated,
    }
}

fn reserved(req: &RequestView<'_>, routes: &Routes) -> Decision {
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
    } else if path == routes.signed_out {
        if get {
            Decision::SignedOut
        } else {
            Decision::MethodNotAllowed
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
    use Auth::{Anonymous, SignedIn};
    use Decision::*;

    fn view<'a>(method: &'a Method, path: &'a str, nav: bool) -> RequestView<'a> {
        RequestView {
            method,
            path,
            is_navigation: nav,
        }
    }

    #[test]
    fn decision_table() {
        let routes = Routes::new("/.profilegate");
        let (get, post, put) = (Method::GET, Method::POST, Method::PUT);
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
            (&get, "/.profilegate/nope", true, SignedIn, NotFound),
            (&get, "/.profilegate", true, SignedIn, NotFound),
            (&get, "/.profilegate/", true, Anonymous, NotFound),
            // Only the exact prefix segment is reserved.
            (&get, "/.profilegatex/callback", true, SignedIn, Forward),
            (&get, "/.profilegatex", false, Anonymous, Unauthenticated),
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
