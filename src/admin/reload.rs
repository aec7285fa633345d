//! `POST /admin/reload`: re-reads the configuration file as SIGHUP does and answers what
//! happened as JSON. The reload itself is start-up's (`server::reload`), reached through the
//! `Reload` trait of `reloader.rs`.

use http::Response;

use super::auth::Caller;
use super::context::{audit, AdminContext};
use super::reply::{json, AdminBody};

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
