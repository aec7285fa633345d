//! The frame around every request, the first and last thing `Gate::serve` does: the request's
//! id (`request_id.rs`) set on the request the upstream receives and on the response, the
//! id scoped around the request's future (`log_format::REQUEST_ID`, which puts it on every log
//! line of the request), and the access log line (`log.access`). Between the two,
//! `Gate::answer` (mod.rs) answers the request.

use std::net::IpAddr;
use std::time::Instant;

use http::header::HeaderMap;
use http::{Method, Request, Response, Uri};
use http_body::Body;
use hyper::body::Incoming;
use ipnet::IpNet;

use super::gate::Gate;
use super::reply::ProxyBody;
use super::request::Peer;
use super::request_id::{self, X_REQUEST_ID};
use crate::log_format::REQUEST_ID;
use crate::pipeline::Decision;

/// What the access line says about a request beyond its head and response, filled in by
/// `Gate::answer` as it goes.
#[derive(Debug, Default)]
pub struct AccessNote {
    /// How the request was handled ([`outcome`]); `refused` until a decision is taken.
    pub outcome: &'static str,
    /// The signed-in user's `sub` (only copied when the access log is on).
    pub sub: Option<String>,
    /// Forward-auth: the path of the original request the edge asked about (the access line's
    /// `path` is `{prefix}/auth`).
    pub original: Option<String>,
}

/// What the access line needs from the request before `answer` takes it.
struct Started {
    at: Instant,
    method: Method,
    uri: Uri,
    client: Option<String>,
}

impl Gate {
    /// Answers one request: forwards it or answers it here, under its request id.
    pub async fn serve(&self, req: Request<Incoming>, client: &Peer) -> Response<ProxyBody> {
        let id = request_id::choose(req.headers(), client.trusted);
        let started = self.access_log.then(|| Started {
            at: Instant::now(),
            method: req.method().clone(),
            uri: req.uri().clone(),
            client: client_address(client, req.headers(), &self.trusted),
        });
        // Every line logged while the request is served carries its id: the task-local is
        // swapped in and out at each poll (the clone is reference-counted, the bytes shared).
        let mut resp = REQUEST_ID
            .scope(id.clone(), async {
                let mut note = AccessNote {
                    outcome: "refused",
                    sub: None,
                    original: None,
                };
                let resp = self.answer(req, client, &id, &mut note).await;
                if let Some(started) = started {
                    log_access(&started, &resp, &note, &id);
                }
                resp
            })
            .await;
        resp.headers_mut().insert(X_REQUEST_ID, id);
        resp
    }
}

/// The route outcome of a decision, for the access line; `asked_by_edge`: a forward-auth
/// question, where nothing is forwarded by profilegate.
pub fn outcome(decision: Decision, asked_by_edge: bool) -> &'static str {
    match decision {
        Decision::Forward if asked_by_edge => "auth_allowed",
        Decision::ForwardPublic if asked_by_edge => "auth_public",
        Decision::Forward => "forwarded",
        Decision::ForwardPublic => "public",
        Decision::Deny => "denied",
        Decision::Unauthenticated => "unauthenticated",
        Decision::AskQuestions
        | Decision::QuestionsPending
        | Decision::ShowQuestion
        | Decision::SubmitAnswer => "question",
        Decision::StartLogin | Decision::FinishLogin => "login",
        Decision::Logout | Decision::SignedOut | Decision::FrontchannelLogout => "logout",
        Decision::BackchannelLogout => "backchannel_logout",
        Decision::Jwks => "jwks",
        Decision::ApiPending | Decision::ApiProfile | Decision::ApiAnswers => "api",
        Decision::ShowMe
        | Decision::SubmitMe
        | Decision::ApiMe
        | Decision::ApiMeChange
        | Decision::ApiMeErase => "me",
        Decision::Continue => "custom_ui",
        Decision::NotFound => "not_found",
        Decision::MethodNotAllowed => "method_not_allowed",
    }
}

/// The access line: one per request (a WebSocket upgrade once, with its `101`), at `info` with
/// target `profilegate::access`. The path never carries its query string: a query can hold
/// codes and tokens. `duration_ms` runs until the response head is ready (a streamed body
/// continues after it); `bytes` is the body's length when known then.
fn log_access(
    started: &Started,
    resp: &Response<ProxyBody>,
    note: &AccessNote,
    id: &http::HeaderValue,
) {
    tracing::info!(
        target: "profilegate::access",
        request_id = id.to_str().unwrap_or_default(),
        method = started.method.as_str(),
        path = started.uri.path(),
        status = resp.status().as_u16(),
        duration_ms = started.at.elapsed().as_secs_f64() * 1000.0,
        bytes = resp.body().size_hint().exact(),
        sub = note.sub.as_deref(),
        original_path = note.original.as_deref(),
        client = started.client.as_deref(),
        outcome = note.outcome,
        "access"
    );
}

/// The client's address as far as it can be trusted: the connection's peer; behind trusted
/// proxies, the right-most `X-Forwarded-For` entry that is not itself a trusted proxy (the
/// left-most when they all are). An entry that is not an address is shown as it came.
fn client_address(peer: &Peer, headers: &HeaderMap, trusted: &[IpNet]) -> Option<String> {
    let ip = peer.ip?;
    if !peer.trusted {
        return Some(ip.to_string());
    }
    let mut client = ip.to_string();
    let values = headers.get_all("x-forwarded-for");
    let mut entries: Vec<&str> = values
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    while let Some(entry) = entries.pop() {
        client = entry.chars().take(64).collect();
        match entry.parse::<IpAddr>() {
            Ok(addr) if trusted.iter().any(|net| net.contains(&addr)) => continue,
            _ => break,
        }
    }
    Some(client)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().expect("net")).collect()
    }

    #[test]
    fn the_client_address_follows_the_trusted_chain() {
        let trusted = nets(&["10.0.0.0/8"]);
        let table: &[(&str, &[&str], Option<&str>)] = &[
            // An untrusted peer is the client, whatever it claims.
            ("192.0.2.7", &["203.0.113.9"], Some("192.0.2.7")),
            // A trusted proxy without a chain.
            ("10.0.0.1", &[], Some("10.0.0.1")),
            ("10.0.0.1", &["203.0.113.9"], Some("203.0.113.9")),
            // Right to left, skipping trusted proxies: a forged left part is not believed.
            (
                "10.0.0.1",
                &["198.51.100.1, 203.0.113.9, 10.0.0.2"],
                Some("203.0.113.9"),
            ),
            (
                "10.0.0.1",
                &["198.51.100.1", "203.0.113.9"],
                Some("203.0.113.9"),
            ),
            ("10.0.0.1", &["10.0.0.3, 10.0.0.2"], Some("10.0.0.3")),
            ("10.0.0.1", &["unknown"], Some("unknown")),
            ("10.0.0.1", &[" , "], Some("10.0.0.1")),
        ];
        for (peer, xff, expected) in table {
            let peer = Peer::new(Some(peer.parse().expect("ip")), &trusted);
            let mut headers = HeaderMap::new();
            for v in *xff {
                headers.append("x-forwarded-for", HeaderValue::from_static(v));
            }
            assert_eq!(
                client_address(&peer, &headers, &trusted).as_deref(),
                *expected,
                "{peer:?} {xff:?}"
            );
        }
        let unknown = Peer::new(None, &trusted);
        assert_eq!(client_address(&unknown, &HeaderMap::new(), &trusted), None);
    }
}
