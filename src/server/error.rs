//! Why start-up failed: one error for `run`, `check` and the in-process server, each variant
//! naming the configuration key or the part that failed.

use std::net::SocketAddr;

use crate::jwt::KeyError;
use crate::oidc::OidcError;
use crate::render::RenderError;
use crate::store::StoreError;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Templates(#[from] RenderError),
    #[error("cannot listen on {addr} ({key}): {reason}")]
    Listen {
        key: &'static str,
        addr: SocketAddr,
        reason: std::io::Error,
    },
    // The cause is the error's source: `{:#}` (as main prints it) shows it once.
    #[error("profile store")]
    Store(#[from] StoreError),
    #[error("upstream.jwt_key_file")]
    JwtKey(#[from] KeyError),
    #[error("OIDC settings: {0}")]
    Oidc(String),
    #[error("OpenID Provider discovery")]
    Discovery(#[source] OidcError),
    #[error("cannot start the start-up runtime: {0}")]
    Runtime(std::io::Error),
    #[error("upstream.url does not make a request URI")]
    UpstreamUri(#[from] http::uri::InvalidUri),
    #[error(transparent)]
    Tls(#[from] crate::config::TlsFileError),
}
