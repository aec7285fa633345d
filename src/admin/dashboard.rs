//! `GET /admin/`: the question funnel as one server-rendered page — per question version an SVG
//! bar chart (shown, answered, skipped, invalid), the completion rate and the median time to
//! answer, the same figures as `GET /admin/stats` (`funnel.rs`). minijinja with the template
//! embedded in the binary (`templates/admin/dashboard.html`, not overridable), auto-escaped,
//! no JavaScript, served with the hosted pages' Content-Security-Policy.

use std::sync::OnceLock;

use http::{Request, Response};
use hyper::body::Incoming;
use minijinja::{context, Environment};
use serde::Serialize;

use super::auth::Caller;
use super::context::{audit, AdminContext};
use super::funnel::{flushed_totals, QuestionFigures, COMPLETION_RATE_MEANS, MEDIAN_MEANS};
use super::reply::{html, json, AdminBody};

const TEMPLATE: &str = "dashboard.html";
/// Width of the chart's label column and of its longest bar, in pixels.
const BAR_X: u32 = 80;
const BAR_MAX: f64 = 280.0;
const CHART_WIDTH: u32 = 400;
const ROW: u32 = 28;

/// One bar of a question's chart.
#[derive(Serialize)]
struct Bar {
    label: &'static str,
    value: u64,
    width: u32,
    y: u32,
    color: &'static str,
}

/// One question's card.
#[derive(Serialize)]
struct Card {
    question: String,
    version: u32,
    shown: u64,
    answered: u64,
    skipped: u64,
    invalid: u64,
    timed_answers: u64,
    completion: String,
    median: String,
    bars: Vec<Bar>,
}

impl Card {
    fn new(q: &QuestionFigures) -> Self {
        let series = [
            ("shown", q.shown, "#5b6b8c"),
            ("answered", q.answered, "#2f9e6e"),
            ("skipped", q.skipped, "#d9a441"),
            ("invalid", q.invalid, "#d0574f"),
        ];
        let most = series.iter().map(|(_, n, _)| *n).max().unwrap_or(0).max(1) as f64;
        let bars = series
            .iter()
            .enumerate()
            .map(|(i, (label, value, color))| Bar {
                label,
                value: *value,
                // A zero still shows as a hairline.
                width: ((*value as f64 / most) * BAR_MAX).round().max(1.0) as u32,
                y: i as u32 * ROW,
                color,
            })
            .collect();
        Card {
            question: q.question.clone(),
            version: q.version,
            shown: q.shown,
            answered: q.answered,
            skipped: q.skipped,
            invalid: q.invalid,
            timed_answers: q.timed_answers,
            completion: q.completion_text(),
            median: q.median_text(),
            bars,
        }
    }
}

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // Embedded and tested: it parses (see the tests below), or the build's tests fail.
        if let Err(e) = env.add_template(
            TEMPLATE,
            include_str!("../../templates/admin/dashboard.html"),
        ) {
            tracing::error!(error = %e, "the dashboard template does not parse");
        }
        env
    })
}

/// The page for `figures`.
pub fn page(figures: &[QuestionFigures]) -> Result<String, minijinja::Error> {
    let questions: Vec<Card> = figures.iter().map(Card::new).collect();
    environment().get_template(TEMPLATE)?.render(context! {
        questions => minijinja::value::Serde(&questions),
        completion_means => COMPLETION_RATE_MEANS,
        median_means => MEDIAN_MEANS,
        bar_x => BAR_X,
        chart_width => CHART_WIDTH,
        chart_height => ROW * 4,
    })
}

/// `GET /admin/`.
pub async fn show(
    context: &AdminContext,
    caller: &Caller,
    _request: Request<Incoming>,
) -> Response<AdminBody> {
    let figures = match flushed_totals(context).await {
        Ok(figures) => figures,
        Err(refused) => {
            audit(caller, "dashboard", None, "store_unavailable");
            return refused;
        }
    };
    match page(&figures) {
        Ok(body) => {
            audit(caller, "dashboard", None, "ok");
            html(200, body, &crate::proxy::page_csp(None))
        }
        Err(e) => {
            tracing::error!(error = %e, "the dashboard could not be rendered");
            audit(caller, "dashboard", None, "error");
            json(
                500,
                &serde_json::json!({
                    "error": "render_failed",
                    "message": "the dashboard could not be rendered",
                }),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{FunnelCounts, FunnelRow};

    #[test]
    fn the_page_shows_each_question_version_with_its_figures_and_escapes_ids() {
        let mut counts = FunnelCounts {
            shown: 8,
            answered: 5,
            skipped: 2,
            invalid: 3,
            ..FunnelCounts::default()
        };
        counts.time_answer(4_000);
        let rows = [
            FunnelRow {
                question: "company".into(),
                version: 2,
                counts,
            },
            FunnelRow {
                question: "<b>x</b>".into(),
                version: 1,
                counts: FunnelCounts::default(),
            },
        ];
        let figures: Vec<QuestionFigures> = rows.iter().map(QuestionFigures::from_row).collect();
        let html = page(&figures).expect("renders");
        for shown in [
            r#"data-question="company" data-version="2""#,
            r#"<td data-figure="shown">8</td>"#,
            r#"<td data-figure="answered">5</td>"#,
            r#"<td data-figure="skipped">2</td>"#,
            r#"<td data-figure="invalid">3</td>"#,
            r#"<strong data-figure="completion_rate">62.5 %</strong>"#,
            r#"<strong data-figure="median_answer_seconds">3.5 s</strong>"#,
            // shown is the longest bar; answered 5/8 of it.
            r#"width="280" height="20""#,
            r#"width="175" height="20""#,
        ] {
            assert!(html.contains(shown), "{shown} in\n{html}");
        }
        assert!(!html.contains("<b>x</b>"), "escaped");
        assert!(!html.contains("<script"), "no JavaScript");
        let empty = page(&[]).expect("renders");
        assert!(empty.contains("No question has been shown yet."));
    }
}
