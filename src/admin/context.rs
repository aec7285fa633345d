//! What every admin route works with ([`AdminContext`], one per process) and the audit line
//! each admin action logs ([`audit`]). Below `mod.rs` (which dispatches) and the route files
//! (which use it), so neither imports the other in a circle.

use std::sync::Arc;

use super::auth::{AdminAuth, Caller};
use super::reloader::Reload;
use crate::metrics::Metrics;
use crate::oidc::Provider;
use crate::store::{ProfileStore, UserKey};

/// What the admin routes work with (one per process, shared by every admin connection).
pub struct AdminContext {
    pub provider: Arc<Provider>,
    pub store: Arc<dyn ProfileStore>,
    pub metrics: Arc<Metrics>,
    /// The tokens of `admin.token_file`; `None`: the admin API is off.
    pub auth: Option<AdminAuth>,
    /// What `POST /admin/reload` (and SIGHUP) calls; `None` where nothing can be reloaded.
    pub reloader: Option<Arc<dyn Reload>>,
}

impl AdminContext {
    /// The store's key of `subject` at `issuer` (the configured OP's when `None`).
    pub fn user_key(&self, issuer: Option<&str>, subject: &str) -> UserKey {
        UserKey::new(issuer.unwrap_or(self.provider.issuer()), subject)
    }
}

/// Logs one admin action: who (the token's name), what, and which user when there is one.
/// Every admin action that reads or changes user data, or the configuration, calls it once.
pub fn audit(who: &Caller, action: &str, user: Option<&UserKey>, outcome: &str) {
    match user {
        Some(user) => tracing::info!(
            target: "profilegate::audit",
            who = who.name(),
            action,
            issuer = user.issuer.as_str(),
            sub = user.subject.as_str(),
            outcome,
            "admin action"
        ),
        None => tracing::info!(
            target: "profilegate::audit",
            who = who.name(),
            action,
            outcome,
            "admin action"
        ),
    }
}
