//! `profilegate stats [--json]`: the question funnel's totals from the configured store, the
//! same figures as `GET /admin/stats` and the dashboard (`admin::funnel`), as a table or JSON.
//! Works on sled with profilegate stopped (sled allows one process), on PostgreSQL any time;
//! figures a running replica has not flushed yet (at most about a second's) are not included.

use std::io::Write;

use crate::admin::funnel::{
    stats_json, totals, QuestionFigures, COMPLETION_RATE_MEANS, MEDIAN_MEANS,
};
use crate::config::Config;
use crate::store::StoreError;

/// Reads the totals from `config`'s store and writes them to `out`.
pub fn run(config: &Config, as_json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let figures = rt.block_on(async {
        let store = crate::store::open(&config.store).await?;
        totals(&*store).await
    });
    let figures = figures.map_err(|e| match e {
        StoreError::Locked { path } => anyhow::anyhow!(
            "the store at {path} is in use (is profilegate running?): stop it first, or read \
             the figures from the running process's GET /admin/stats"
        ),
        other => anyhow::Error::from(other),
    })?;
    if as_json {
        serde_json::to_writer_pretty(&mut *out, &stats_json(&figures))?;
        writeln!(out)?;
    } else {
        write!(out, "{}", table(&figures))?;
    }
    Ok(())
}

/// The figures as an aligned text table, with what the derived columns mean.
pub fn table(figures: &[QuestionFigures]) -> String {
    let header = [
        "question",
        "version",
        "shown",
        "answered",
        "skipped",
        "invalid",
        "completion",
        "median",
    ]
    .map(str::to_owned);
    let rows: Vec<[String; 8]> = figures
        .iter()
        .map(|q| {
            [
                q.question.clone(),
                q.version.to_string(),
                q.shown.to_string(),
                q.answered.to_string(),
                q.skipped.to_string(),
                q.invalid.to_string(),
                q.completion_text(),
                q.median_text(),
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (cell, w))| {
                let pad = " ".repeat(w - cell.chars().count());
                // The id left-aligned, the figures right-aligned.
                if i == 0 {
                    format!("{cell}{pad}")
                } else {
                    format!("{pad}{cell}")
                }
            })
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    if rows.is_empty() {
        text.push_str("(no question has been shown yet)\n");
    }
    text.push_str(&format!(
        "completion = {COMPLETION_RATE_MEANS}; median: {MEDIAN_MEANS}\n"
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{FunnelCounts, FunnelRow};

    #[test]
    fn the_table_aligns_the_figures_the_json_has() {
        let row = FunnelRow {
            question: "company".into(),
            version: 3,
            counts: FunnelCounts {
                shown: 120,
                answered: 90,
                skipped: 20,
                invalid: 7,
                ..FunnelCounts::default()
            },
        };
        let text = table(&[QuestionFigures::from_row(&row)]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "question  version  shown  answered  skipped  invalid  completion  median"
        );
        assert_eq!(
            lines[1],
            "company         3    120        90       20        7      75.0 %       –"
        );
    }
}
