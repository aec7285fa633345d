//! `GET /admin/stats`: the question funnel's totals from the store (every replica's, this
//! one's pending figures flushed first) as JSON. The figures per question version — shown,
//! answered, skipped, invalid, completion rate, median time to answer — are computed once here
//! ([`QuestionFigures`]) for the JSON, the dashboard (`dashboard.rs`) and `profilegate stats`.

use http::{Request, Response};
use hyper::body::Incoming;
use serde::Serialize;
use serde_json::json;

use super::auth::Caller;
use super::context::{audit, AdminContext};
use super::reply::{json, AdminBody};
use crate::store::funnel::{FunnelRow, ANSWER_SECONDS_BOUNDS};
use crate::store::{ProfileStore, StoreError};

/// What the completion rate and the median are, said alike in the JSON and on the dashboard.
pub const COMPLETION_RATE_MEANS: &str = "answered / shown";
pub const MEDIAN_MEANS: &str =
    "estimated from the answer-time histogram's buckets (linear within the bucket); \
     only answers whose showing is known are timed";

/// One question version's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuestionFigures {
    pub question: String,
    pub version: u32,
    pub shown: u64,
    pub answered: u64,
    pub skipped: u64,
    pub invalid: u64,
    /// `answered / shown`; `None` (JSON `null`) before it was shown.
    pub completion_rate: Option<f64>,
    /// Seconds, estimated from the histogram; `None` without timed answers.
    pub median_answer_seconds: Option<f64>,
    /// How many answers were timed.
    pub timed_answers: u64,
    /// The answer-time histogram, cumulative, as `[upper bound in seconds or "+Inf", count]`.
    pub answer_seconds_buckets: Vec<(String, u64)>,
}

impl QuestionFigures {
    pub fn from_row(row: &FunnelRow) -> Self {
        let c = &row.counts;
        let mut cumulative = 0;
        let answer_seconds_buckets = c
            .answer_buckets
            .iter()
            .enumerate()
            .map(|(i, n)| {
                cumulative += n;
                let le = ANSWER_SECONDS_BOUNDS
                    .get(i)
                    .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
                (le, cumulative)
            })
            .collect();
        QuestionFigures {
            question: row.question.clone(),
            version: row.version,
            shown: c.shown,
            answered: c.answered,
            skipped: c.skipped,
            invalid: c.invalid,
            completion_rate: c.completion_rate(),
            median_answer_seconds: c.median_answer_seconds(),
            timed_answers: c.answer_count,
            answer_seconds_buckets,
        }
    }

    /// The completion rate as the dashboard and the CLI's table show it: `62.5 %`, or `–`.
    pub fn completion_text(&self) -> String {
        self.completion_rate
            .map_or_else(|| "–".to_owned(), |r| format!("{:.1} %", r * 100.0))
    }

    /// The median as the dashboard and the CLI's table show it: `3.5 s`, or `–`.
    pub fn median_text(&self) -> String {
        self.median_answer_seconds
            .map_or_else(|| "–".to_owned(), |s| format!("{s:.1} s"))
    }
}

/// The store's totals after adding this process's pending figures (when `context` counts).
pub async fn totals(store: &dyn ProfileStore) -> Result<Vec<QuestionFigures>, StoreError> {
    Ok(store
        .funnel_totals()
        .await?
        .iter()
        .map(QuestionFigures::from_row)
        .collect())
}

/// The JSON of `GET /admin/stats` and `profilegate stats --json`.
pub fn stats_json(figures: &[QuestionFigures]) -> serde_json::Value {
    json!({
        "questions": figures,
        "completion_rate": COMPLETION_RATE_MEANS,
        "median_answer_seconds": MEDIAN_MEANS,
    })
}

/// This replica's pending figures added to the store, then the store's totals; or the error
/// response (503 JSON) when the store cannot give them.
pub(super) async fn flushed_totals(
    context: &AdminContext,
) -> Result<Vec<QuestionFigures>, Response<AdminBody>> {
    let unavailable = |e: StoreError| {
        tracing::warn!(error = %e, "funnel totals unavailable");
        json(
            503,
            &json!({
                "error": "store_unavailable",
                "message": format!("the funnel totals could not be read: {e}"),
            }),
        )
    };
    context
        .metrics
        .funnel
        .flush(&*context.store)
        .await
        .map_err(unavailable)?;
    totals(&*context.store).await.map_err(unavailable)
}

/// `GET /admin/stats`.
pub async fn stats(
    context: &AdminContext,
    caller: &Caller,
    _request: Request<Incoming>,
) -> Response<AdminBody> {
    match flushed_totals(context).await {
        Ok(figures) => {
            audit(caller, "stats", None, "ok");
            json(200, &stats_json(&figures))
        }
        Err(refused) => {
            audit(caller, "stats", None, "store_unavailable");
            refused
        }
    }
}
