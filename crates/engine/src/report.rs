//! The migration / dry-run report. (Being expanded: see the report brief.)

use serde::Serialize;

use crate::error::Result;
use crate::run::Engine;

/// Everything a support lead needs to decide and to follow a migration.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Store totals.
    pub counts: store::Counts,
}

/// Builds the report from the store (no network).
pub async fn build(engine: &Engine) -> Result<Report> {
    Ok(Report {
        counts: engine.store().counts().await?,
    })
}

impl Report {
    /// Markdown rendering.
    pub fn to_markdown(&self) -> String {
        format!("# deskie-import report\n\n```\n{:#?}\n```\n", self.counts)
    }

    /// JSON rendering (stable schema).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Self-contained HTML rendering.
    pub fn to_html(&self) -> String {
        format!(
            "<!doctype html><html><body><pre>{:#?}</pre></body></html>",
            self.counts
        )
    }

    /// The few lines printed after `run` / `run --dry-run`.
    pub fn summary_lines(&self) -> Vec<String> {
        vec![format!("tickets: {:?}", self.counts.tickets)]
    }
}
