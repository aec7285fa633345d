//! `POST /admin/reload`: re-reads the configuration file as SIGHUP does and answers what
//! happened as JSON. The reload itself is start-up's (`server::reload`), reached through the
//! [`Reload`] trait so this listener does not import the server that builds it.

use http::Response;

use super::reply::{json, AdminBody};
use super::{audit, AdminContext, Caller};
use crate::config::ConfigError;

/// What re-reads the configuration and swaps the gates (`server::reload::Reloader`).
pub trait Reload: Send + Sync {
    /// Re-reads the configuration file; `trigger` says who asked (logged). Blocks: reads files.
    fn reload(&self, trigger: &str) -> ReloadReport;
}

/// What a reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// The new configuration serves the requests from now on (restart-only keys excepted).
    pub applied: bool,
    /// Why it was not applied: every problem, by key (the running configuration is kept).
    pub errors: Vec<ConfigError>,
    /// Keys whose new value was not applied: they take effect at the next restart.
    pub needs_restart: Vec<&'static str>,
}

impl ReloadReport {
    /// The JSON answer: `{"applied", "errors": [{"key", "message"}], "needs_restart": [keys]}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "applied": self.applied,
            "errors": self
                .errors
                .iter()
                .map(|e| serde_json::json!({ "key": e.key, "message": e.message }))
                .collect::<Vec<_>>(),
            "needs_restart": self.needs_restart,
        })
    }
}

/// `POST /admin/reload`: 200 when applied, 422 when the file is refused (the old configuration
/// stays), each with the report as JSON; one audit line.
pub async fn post(context: &AdminContext, caller: &Caller) -> Response<AdminBody> {
    let Some(reloader) = context.reloader.clone() else {
        audit(caller, "reload", None, "unavailable");
        return json(
            503,
            &serde_json::json!({
                "error": "reload_unavailable",
                "message": "this server cannot reload its configuration",
            }),
        );
    };
    let trigger = format!("admin:{}", caller.name());
    let report = tokio::task::spawn_blocking(move || reloader.reload(&trigger)).await;
    let Ok(report) = report else {
        audit(caller, "reload", None, "failed");
        return json(
            500,
            &serde_json::json!({
                "error": "reload_failed",
                "message": "the reload stopped unexpectedly; the running configuration is kept",
            }),
        );
    };
    let outcome = match (report.applied, report.needs_restart.is_empty()) {
        (false, _) => "refused",
        (true, true) => "applied",
        (true, false) => "applied, some keys need a restart",
    };
    audit(caller, "reload", None, outcome);
    json(if report.applied { 200 } else { 422 }, &report.to_json())
}
