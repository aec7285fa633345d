//! Forward-auth mode (`server.mode = "forward_auth"`): an edge proxy already in the data path
//! (nginx `auth_request`, Caddy `forward_auth`, Traefik `ForwardAuth`) asks `{prefix}/auth`
//! whether a request may pass and who sends it; and `{prefix}/start?rd=`, a browser's way in
//! (sign in, answer what is due, then go to `rd`).
//!
//! Neither has a decision of its own. `Gate::answer` (proxy/mod.rs) calls [`asked`] first,
//! which makes the request's head the original request's (method and target from the edge's
//! headers, or `rd`), and then runs proxy mode's steps unchanged: the edge checks, the path
//! normalisation, the session and its lifecycle, the access rules and routes, the pending
//! questions and `decide`. Only the outcome is written differently: what proxy mode would
//! forward becomes [`pass`] (200 with the identity headers for the edge to copy upstream, or
//! the 303 to `rd`), and a navigation that must sign in or answer a question gets, from nginx's
//! side, [`to_start`] (a 401 whose `Location` nginx's `error_page` redirects to).

use http::header::{HeaderName, HeaderValue};
use http::request::Parts;
use http::{Method, Uri};

use super::super::gate::Gate;
use super::super::prepare::{inject_identity, Identity};
use super::super::reply::Reply;
use super::super::request::Peer;
use crate::enrich::Enriched;
use crate::redirect::ReturnTo;

/// The original request, as nginx sends it to `auth_request` (`proxy_set_header`).
const X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
/// The original request, as Caddy's `forward_auth` and Traefik's `ForwardAuth` send it.
const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Who asks for a decision instead of a request to forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asking {
    /// The edge proxy's auth request. `nginx`: it came with `X-Original-URI`, and a navigation
    /// that must sign in gets a 401 with `Location` (nginx's `auth_request` passes only 2xx,
    /// 401 and 403); otherwise (Caddy, Traefik) proxy mode's redirect, which they pass through.
    Edge { nginx: bool },
    /// A browser at `{prefix}/start?rd=`.
    Start,
}

/// When `head` is a forward-auth question or a `start`, rewrites it into the original
/// request (method and target) and says who asks; `Ok(None)` for every other request. `Err`
/// says why the question is not one to answer.
pub fn asked(gate: &Gate, head: &mut Parts, peer: &Peer) -> Result<Option<Asking>, Refusal> {
    let path = head.uri.path();
    if path == gate.routes.start {
        return start_target(head).map(|()| Some(Asking::Start));
    }
    if path != gate.routes.auth || !gate.forward_auth {
        return Ok(None);
    }
    if !peer.trusted {
        tracing::warn!(
            client = ?peer.ip,
            "a forward-auth question from an address outside server.trusted_proxies was refused"
        );
        return Err(refusal(
            403,
            "forbidden",
            "Only the edge proxy may ask: its address must be in server.trusted_proxies.",
        ));
    }
    let headers = &head.headers;
    if headers.contains_key(X_ORIGINAL_URI) && headers.contains_key(X_FORWARDED_URI) {
        // Each edge sets its own header and passes the client's others on: with both, one was
        // the client's, and reading it would judge another request than the one forwarded.
        return Err(refusal(
            400,
            "bad_request",
            "Both X-Original-URI and X-Forwarded-Uri were sent: one came from the client. The \
             edge must set its own and remove the other (see the README's configurations).",
        ));
    }
    let (uri, method, nginx) = match headers.get(X_ORIGINAL_URI) {
        Some(uri) => (uri, headers.get(X_ORIGINAL_METHOD), true),
        None => match headers.get(X_FORWARDED_URI) {
            Some(uri) => (uri, headers.get(X_FORWARDED_METHOD), false),
            None => {
                return Err(refusal(
                    400,
                    "bad_request",
                    "A forward-auth question names the original request in X-Original-URI \
                     (nginx) or X-Forwarded-Uri (Caddy, Traefik); neither was sent.",
                ))
            }
        },
    };
    let target = uri
        .to_str()
        .ok()
        .filter(|t| t.starts_with('/'))
        .and_then(|t| t.parse::<Uri>().ok());
    let Some(target) = target else {
        return Err(refusal(
            400,
            "bad_request",
            "The original request's URI must be a path (with its query), as the client sent it.",
        ));
    };
    let method = match method {
        None => Method::GET,
        Some(m) => match Method::from_bytes(m.as_bytes()) {
            Ok(m) => m,
            Err(_) => {
                return Err(refusal(
                    400,
                    "bad_request",
                    "The original request's method is not a valid HTTP method.",
                ))
            }
        },
    };
    if let Some(host) = headers.get(X_FORWARDED_HOST) {
        if !is_public_host(gate, host.as_bytes()) {
            return Err(refusal(
                421,
                "misdirected_request",
                "The original request's host is not server.public_url's: profilegate's \
                 cookies and sign-in belong to public_url, so this site cannot be signed in to.",
            ));
        }
    }
    head.method = method;
    head.uri = target;
    Ok(Some(Asking::Edge { nginx }))
}

/// `{prefix}/start?rd=/path`: the head becomes a GET of `rd` (`/` without it). A target that
/// is not a path of this origin is refused.
fn start_target(head: &mut Parts) -> Result<(), Refusal> {
    let rd = head.uri.query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "rd")
            .map(|(_, v)| v.into_owned())
    });
    let target = match rd {
        None => Some(ReturnTo::root()),
        Some(rd) => ReturnTo::from_path(&rd),
    };
    let Some(uri) = target.and_then(|t| t.path().parse::<Uri>().ok()) else {
        return Err(refusal(
            400,
            "bad_request",
            "rd must be a path of this site, such as /account?tab=1.",
        ));
    };
    head.method = Method::GET;
    head.uri = uri;
    Ok(())
}

/// True when `host` (an `X-Forwarded-Host`) is `public_url`'s host and port.
fn is_public_host(gate: &Gate, host: &[u8]) -> bool {
    let host = String::from_utf8_lossy(host).trim().to_ascii_lowercase();
    if host == gate.authority {
        return true;
    }
    // A default port spelled out (`example.com:443` for `https://example.com`).
    let default_port = match gate.public_scheme {
        "https" => ":443",
        _ => ":80",
    };
    host.strip_suffix(default_port) == Some(gate.authority.as_str())
}

/// What proxy mode would forward: for the edge, 200 with the identity headers to copy
/// upstream (none for an anonymous request on a public route); for `start`, 303 to the target.
pub fn pass(
    gate: &Gate,
    asking: Asking,
    original: &Parts,
    signed_in: Option<(&Identity, &Enriched, Option<HeaderValue>)>,
) -> Reply {
    match asking {
        Asking::Start => {
            let target = original.uri.path_and_query().map_or("/", |pq| pq.as_str());
            Reply::redirect(303, format!("{}{target}", gate.origin))
        }
        Asking::Edge { .. } => {
            let mut reply = Reply::empty(200);
            if let Some((identity, profile, jwt)) = signed_in {
                inject_identity(&mut reply.headers, Some(identity), Some((profile, jwt)));
            }
            reply
        }
    }
}

/// nginx's answer for a navigation that must sign in or answer a question: 401 (all that
/// `auth_request` passes besides 2xx and 403) with `Location` naming `{prefix}/start` for the
/// original target, where the README's `error_page 401` sends the browser.
pub fn to_start(gate: &Gate, original: &Parts) -> Reply {
    let target = original
        .uri
        .path_and_query()
        .and_then(|pq| ReturnTo::from_path(pq.as_str()))
        .unwrap_or_else(ReturnTo::root);
    let rd: String = url::form_urlencoded::byte_serialize(target.path().as_bytes()).collect();
    let mut reply = Reply::json(
        401,
        &serde_json::json!({
            "error": "unauthenticated",
            "message": "Sign in first: open this site in a browser to sign in.",
        }),
    );
    reply.location = Some(format!("{}{}?rd={rd}", gate.origin, gate.routes.start));
    reply
}

/// A question refused before any decision: its status and what the edge's operator reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    code: &'static str,
    message: &'static str,
}

impl Refusal {
    /// The JSON reply.
    pub fn reply(self) -> Reply {
        Reply::json(
            self.status,
            &serde_json::json!({ "error": self.code, "message": self.message }),
        )
    }
}

fn refusal(status: u16, code: &'static str, message: &'static str) -> Refusal {
    Refusal {
        status,
        code,
        message,
    }
}
