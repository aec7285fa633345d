//! One HTTP/1.1 connection served by hyper until it ends or the server shuts down (then the
//! request in flight finishes and the connection closes): the loop of the admin listener
//! (`admin`) and of the http → https redirect listener (`server::https_redirect`). The proxy's
//! workers have their own, with upgrades, TLS and HTTP/2 (`proxy::worker`).

use std::error::Error as StdError;

use hyper::body::Incoming;
use hyper::server::conn::http1::Builder;
use hyper::service::HttpService;
use hyper_util::rt::TokioIo;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;

/// Serves `service` on `stream` with `http`'s settings; `what` names the listener in the debug
/// line a failed connection leaves (a client hanging up is routine, not an error).
pub async fn serve_until_shutdown<S>(
    http: &Builder,
    stream: Stream,
    service: S,
    shutdown: &ShutdownWatch,
    what: &'static str,
) where
    S: HttpService<Incoming>,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    S::ResBody: 'static,
    <S::ResBody as http_body::Body>::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let conn = http.serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    let mut shutdown = shutdown.clone();
    let ended = tokio::select! {
        ended = conn.as_mut() => ended,
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(error = %e, listener = what, "connection ended");
    }
}
