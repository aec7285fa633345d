//! The log of one in-process gate: a `tracing` subscriber of its own, formatted as the binary
//! formats `log.format = "json"` (one flattened JSON object a line), writing into memory. The
//! server carries it into every task it spawns (`InProcess::start`), so concurrently running
//! tests never see each other's lines.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing::Dispatch;
use tracing_subscriber::fmt::MakeWriter;

/// Sends the `log` crate's records (dependencies') to the current `tracing` subscriber, as
/// the binary's `init_logging` does, so a gate's captured log has them too. Outside a gate
/// they go to a global subscriber that keeps nothing. Once per test binary.
pub fn route_log_records() {
    use tracing_subscriber::util::SubscriberInitExt;
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Fails only when a test set a global subscriber already: then that one has them.
        let _ = tracing_subscriber::registry().try_init();
    });
}

/// What one gate has logged so far.
#[derive(Clone, Default)]
pub struct CapturedLog(Arc<Mutex<Vec<u8>>>);

impl CapturedLog {
    /// A subscriber writing here, with `level` as `log.level` (an `EnvFilter` directive).
    pub fn dispatch(&self, level: &str) -> Dispatch {
        let filter = tracing_subscriber::EnvFilter::try_new(level)
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        // The same builder as `init_logging` in src/main.rs for the JSON format.
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(self.clone())
            .with_ansi(false)
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(profilegate::log_format::json())
            .finish();
        Dispatch::new(subscriber)
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Write for CapturedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut log) = self.0.lock() {
            log.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for CapturedLog {
    type Writer = CapturedLog;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
