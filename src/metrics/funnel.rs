//! The question funnel as this process counts it: per question id and version, shown,
//! answered, skipped, invalid, and the time from shown to answered. The routes count with one
//! relaxed atomic add ([`FunnelMetrics::shown`] etc.); `/metrics` renders the process's counters
//! (`profilegate_question_*`); [`FunnelMetrics::flush`] adds what is new since the last flush
//! to the store's totals (`store::funnel`), in one batch — about once a second from a thread of
//! its own (`super::spawn_funnel_flusher`), before `/admin/stats` answers, and when profilegate
//! stops.
//!
//! Labels are only `question` and `version`, and only configured questions are counted (the
//! routes count the engine's questions, never an id from a request), so the series are bounded
//! by the configuration.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::store::funnel::{
    answer_bucket, FunnelCounts, FunnelRow, ANSWER_BUCKETS, ANSWER_SECONDS_BOUNDS,
};
use crate::store::{ProfileStore, StoreError};

/// How often the flusher thread adds this process's new figures to the store.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// One question version's counters.
#[derive(Debug, Default)]
struct Counters {
    shown: AtomicU64,
    answered: AtomicU64,
    skipped: AtomicU64,
    invalid: AtomicU64,
    answer_buckets: [AtomicU64; ANSWER_BUCKETS],
    answer_count: AtomicU64,
    answer_millis_sum: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> FunnelCounts {
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        let mut answer_buckets = [0; ANSWER_BUCKETS];
        for (out, n) in answer_buckets.iter_mut().zip(&self.answer_buckets) {
            *out = load(n);
        }
        FunnelCounts {
            shown: load(&self.shown),
            answered: load(&self.answered),
            skipped: load(&self.skipped),
            invalid: load(&self.invalid),
            answer_buckets,
            answer_count: load(&self.answer_count),
            answer_millis_sum: load(&self.answer_millis_sum),
        }
    }
}

/// The funnel counters of this process (part of [`super::Metrics`]; kept across a reload).
#[derive(Debug, Default)]
pub struct FunnelMetrics {
    /// By question id, then version. Read-locked to count; write-locked only the first time a
    /// question version is counted.
    questions: RwLock<BTreeMap<String, BTreeMap<u32, Arc<Counters>>>>,
    /// What of each version's counters the store already has; held while a flush runs.
    flushed: tokio::sync::Mutex<BTreeMap<(String, u32), FunnelCounts>>,
}

fn add(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl FunnelMetrics {
    fn counters(&self, question: &str, version: u32) -> Arc<Counters> {
        {
            let questions = self.questions.read().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = questions.get(question).and_then(|v| v.get(&version)) {
                return c.clone();
            }
        }
        let mut questions = self.questions.write().unwrap_or_else(|e| e.into_inner());
        questions
            .entry(question.to_owned())
            .or_default()
            .entry(version)
            .or_default()
            .clone()
    }

    /// The question was put in front of a user.
    pub fn shown(&self, question: &str, version: u32) {
        add(&self.counters(question, version).shown);
    }

    /// An answer was stored; `millis` since it was shown, when known.
    pub fn answered(&self, question: &str, version: u32, millis: Option<u64>) {
        let c = self.counters(question, version);
        add(&c.answered);
        if let Some(millis) = millis {
            add(&c.answer_buckets[answer_bucket(millis)]);
            c.answer_millis_sum.fetch_add(millis, Ordering::Relaxed);
            add(&c.answer_count);
        }
    }

    /// A skip was stored.
    pub fn skipped(&self, question: &str, version: u32) {
        add(&self.counters(question, version).skipped);
    }

    /// A submission was refused by validation with an error for this question.
    pub fn invalid(&self, question: &str, version: u32) {
        add(&self.counters(question, version).invalid);
    }

    /// This process's counters since it started, sorted by question and version.
    pub fn snapshot(&self) -> Vec<FunnelRow> {
        let questions = self.questions.read().unwrap_or_else(|e| e.into_inner());
        questions
            .iter()
            .flat_map(|(question, versions)| {
                versions.iter().map(|(version, c)| FunnelRow {
                    question: question.clone(),
                    version: *version,
                    counts: c.snapshot(),
                })
            })
            .collect()
    }

    /// Adds to the store what was counted since the last successful flush (one batch; nothing
    /// when nothing is new). On failure the figures stay pending for the next flush.
    pub async fn flush(&self, store: &dyn ProfileStore) -> Result<(), StoreError> {
        let mut flushed = self.flushed.lock().await;
        let now = self.snapshot();
        let deltas: Vec<FunnelRow> = now
            .iter()
            .filter_map(|row| {
                let key = (row.question.clone(), row.version);
                let delta = match flushed.get(&key) {
                    Some(before) => row.counts.since(before),
                    None => row.counts.clone(),
                };
                (!delta.is_zero()).then(|| FunnelRow {
                    counts: delta,
                    ..row.clone()
                })
            })
            .collect();
        if deltas.is_empty() {
            return Ok(());
        }
        store.add_funnel(&deltas).await?;
        for row in now {
            flushed.insert((row.question, row.version), row.counts);
        }
        Ok(())
    }

    /// The `profilegate_question_*` families in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let rows = self.snapshot();
        let counters: [(&str, &str, Figure); 4] = [
            (
                "profilegate_question_shown_total",
                "Times a question was shown (hosted page GET, api/pending, custom UI token).",
                |c| c.shown,
            ),
            (
                "profilegate_question_answered_total",
                "Answers stored.",
                |c| c.answered,
            ),
            ("profilegate_question_skipped_total", "Skips stored.", |c| {
                c.skipped
            }),
            (
                "profilegate_question_invalid_total",
                "Submissions refused by validation, per question with an error.",
                |c| c.invalid,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            for row in &rows {
                let labels = labels(row);
                let _ = writeln!(out, "{name}{{{labels}}} {}", value(&row.counts));
            }
        }
        let name = "profilegate_question_answer_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time from a question shown to its answer stored (answers whose \
             showing is known)."
        );
        let _ = writeln!(out, "# TYPE {name} histogram");
        for row in &rows {
            let labels = labels(row);
            let c = &row.counts;
            let mut cumulative = 0;
            for (i, n) in c.answer_buckets.iter().enumerate() {
                cumulative += n;
                let le = ANSWER_SECONDS_BOUNDS
                    .get(i)
                    .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
            }
            let sum = c.answer_millis_sum as f64 / 1000.0;
            let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
            let _ = writeln!(out, "{name}_count{{{labels}}} {}", c.answer_count);
        }
    }
}

/// Reads one figure of a question version's counts.
type Figure = fn(&FunnelCounts) -> u64;

/// `question="…",version="…"`, the id escaped as the text format wants (ids are
/// `[a-z][a-z0-9_]*`, so nothing needs it today).
fn labels(row: &FunnelRow) -> String {
    let id = row
        .question
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("question=\"{id}\",version=\"{}\"", row.version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_format_has_one_series_per_question_version_and_a_cumulative_histogram() {
        let funnel = FunnelMetrics::default();
        funnel.shown("company", 1);
        funnel.shown("company", 1);
        funnel.answered("company", 1, Some(1500));
        funnel.answered("company", 1, None);
        funnel.invalid("role", 2);
        let mut text = String::new();
        funnel.render(&mut text);
        for line in [
            "profilegate_question_shown_total{question=\"company\",version=\"1\"} 2",
            "profilegate_question_answered_total{question=\"company\",version=\"1\"} 2",
            "profilegate_question_invalid_total{question=\"role\",version=\"2\"} 1",
            "profilegate_question_answer_seconds_bucket{question=\"company\",version=\"1\",le=\"1\"} 0",
            "profilegate_question_answer_seconds_bucket{question=\"company\",version=\"1\",le=\"2\"} 1",
            "profilegate_question_answer_seconds_bucket{question=\"company\",version=\"1\",le=\"+Inf\"} 1",
            "profilegate_question_answer_seconds_sum{question=\"company\",version=\"1\"} 1.5",
            "profilegate_question_answer_seconds_count{question=\"company\",version=\"1\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
