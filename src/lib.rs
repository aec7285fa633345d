//! profilegate: an OpenID Connect reverse-proxy sidecar with progressive profiling.
//!
//! The request flow is charted in [`pipeline`]; [`proxy`] carries out its decisions (pingora
//! accepts the connections, hyper speaks HTTP/1.1 on them and to the upstream).
#![forbid(unsafe_code)]

pub mod admin;
pub mod cli;
pub mod config;
pub mod enrich;
pub mod error;
pub mod http1;
pub mod jwt;
pub mod log_format;
pub mod metrics;
pub mod oidc;
pub mod pipeline;
pub mod policy;
pub mod profile;
pub mod proxy;
pub mod redirect;
pub mod render;
pub mod server;
pub mod session;
pub mod store;
