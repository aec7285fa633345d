//! Counters for the admin listener's `/metrics`, in the Prometheus text format.
//! Relaxed atomics: one uncontended add per event, nothing on the hot path beyond that.
//! The question funnel's counters, with their batched writes to the store, are `funnel.rs`'s.

pub mod funnel;

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::store::ProfileStore;

#[derive(Debug, Default)]
pub struct Metrics {
    pub forwarded: AtomicU64,
    pub forwarded_public: AtomicU64,
    pub denied: AtomicU64,
    pub unauthenticated: AtomicU64,
    pub logins_started: AtomicU64,
    pub logins_completed: AtomicU64,
    pub logins_failed: AtomicU64,
    pub logouts: AtomicU64,
    pub upstream_errors: AtomicU64,
    /// The OP's back-channel logouts, by outcome (`profilegate_backchannel_logouts_total`).
    pub backchannel_logouts: BackchannelLogouts,
    /// The question funnel (`profilegate_question_*`).
    pub funnel: funnel::FunnelMetrics,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let rows: [(&str, &str, &AtomicU64); 9] = [
            (
                "profilegate_forwarded_total",
                "Requests forwarded upstream for a signed-in user.",
                &self.forwarded,
            ),
            (
                "profilegate_forwarded_public_total",
                "Requests forwarded upstream on a public route without a signed-in user.",
                &self.forwarded_public,
            ),
            (
                "profilegate_denied_total",
                "Requests of signed-in users refused by [access] or a route's rule (403).",
                &self.denied,
            ),
            (
                "profilegate_unauthenticated_total",
                "Anonymous API requests answered 401.",
                &self.unauthenticated,
            ),
            (
                "profilegate_logins_started_total",
                "Redirects to the OpenID Provider.",
                &self.logins_started,
            ),
            (
                "profilegate_logins_completed_total",
                "Callbacks that created a session.",
                &self.logins_completed,
            ),
            (
                "profilegate_logins_failed_total",
                "Callbacks refused.",
                &self.logins_failed,
            ),
            (
                "profilegate_logouts_total",
                "Sessions ended by logout.",
                &self.logouts,
            ),
            (
                "profilegate_upstream_errors_total",
                "Requests the upstream could not serve.",
                &self.upstream_errors,
            ),
        ];
        let mut out = String::new();
        for (name, help, value) in rows {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        self.backchannel_logouts.render(&mut out);
        self.funnel.render(&mut out);
        out
    }
}

/// Back-channel logout requests by outcome: sessions ended (`ok`), a logout token refused
/// (`refused`), or a valid one whose sessions could not be ended (`failed`, the store).
#[derive(Debug, Default)]
pub struct BackchannelLogouts {
    pub ok: AtomicU64,
    pub refused: AtomicU64,
    pub failed: AtomicU64,
}

impl BackchannelLogouts {
    fn render(&self, out: &mut String) {
        const NAME: &str = "profilegate_backchannel_logouts_total";
        let _ = writeln!(
            out,
            "# HELP {NAME} Logout tokens the OP posted (back-channel logout), by outcome."
        );
        let _ = writeln!(out, "# TYPE {NAME} counter");
        for (outcome, value) in [
            ("ok", &self.ok),
            ("refused", &self.refused),
            ("failed", &self.failed),
        ] {
            let n = value.load(Ordering::Relaxed);
            let _ = writeln!(out, "{NAME}{{outcome=\"{outcome}\"}} {n}");
        }
    }
}

/// Starts the thread that flushes `metrics`' funnel to `store` every [`funnel::FLUSH_EVERY`] (its own
/// one-thread runtime; it lives as long as the process). A failed flush is logged and retried.
pub fn spawn_funnel_flusher(
    metrics: Arc<Metrics>,
    store: Arc<dyn ProfileStore>,
) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("funnel-flush".into())
        .spawn(move || {
            rt.block_on(async {
                let mut tick = tokio::time::interval(funnel::FLUSH_EVERY);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut failing = false;
                loop {
                    tick.tick().await;
                    match metrics.funnel.flush(&*store).await {
                        Ok(()) => failing = false,
                        Err(e) if !failing => {
                            failing = true;
                            tracing::warn!(error = %e, "funnel totals not written to the store; retrying");
                        }
                        Err(_) => {}
                    }
                }
            })
        })?;
    Ok(())
}
