//! What reloads the configuration, as the admin listener sees it: the [`Reload`] trait (which
//! `server::reload::Reloader` implements, so the admin listener does not import the server that
//! builds it) and the [`ReloadReport`] it returns. Below the context and the reload route.

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
