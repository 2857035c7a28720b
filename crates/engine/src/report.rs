//! The migration / dry-run report: what a support lead reads before a cut-over and while it runs.
//!
//! [`build`] reads only the store and the settings (no network): it walks every stored ticket
//! page by page (flat memory) through the same pure mapping the loader uses, so the plan it shows
//! is exactly what `run` will send — [`crate::mapping::CasePlan::writes`] per case. From that walk
//! and the store's counters it derives counts, routing, mapping gaps, content warnings, the cost and
//! duration on each side at the configured limits (with the bottleneck), progress and rate of a
//! real run, failures grouped by cause with the command that retries them, and the target account's
//! case caps. The caps are the one thing that can silently destroy data (Deskie deletes the oldest
//! cases above its per-agent cap), so crossing them is a loud WARNING placed first in every format
//! and in [`Report::summary_lines`].
//!
//! Three renderings share the one [`Report`] value: Markdown for humans ([`Report::to_markdown`]),
//! JSON with a stable schema (`schema_version` 1, documented in `docs/report-schema.md`,
//! [`Report::to_json`]) and one self-contained HTML file with inline SVG charts
//! ([`Report::to_html`]). Markdown and HTML walk the same document: `sections` turns the report
//! into sections of typed blocks (`doc`: headings, paragraphs, cards, tables, charts, ticket
//! lists), and each renderer only decides how a kind of block looks (HTML through `maud`
//! templates, escaped by default).
//!
//! Cost at scale: tickets not loaded yet are mapped (their plan is what is left); loaded tickets
//! are counted from their rows (channel, status, priority, hence route) and their writes from the
//! intent journal, so a 2 M-ticket store is reported on without mapping 10 M messages again.
//! Mapping gaps and content warnings are therefore those of the tickets still to send.

mod attachments;
mod collect;
pub use attachments::{AttachmentsSection, FileFailure, FileTotals};
pub(crate) use collect::SOURCE_ID_FIELD_NOTICE;
mod doc;
mod html;
mod longrun;
mod markdown;
mod sections;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::Plan;
use crate::error::Result;
use crate::open::Engine;

pub use longrun::{LongRunSection, VerificationSection, history_sentence};

/// Version of the JSON schema; bumped only for changes that break a reader (new fields do not).
pub const SCHEMA_VERSION: u32 = 1;

/// Longest list of individual items (attachments, empty messages, …) kept in a report; the totals
/// always count everything, so a huge account does not produce a huge report.
pub const LIST_CAP: usize = 1_000;

/// Everything a support lead needs to decide on and to follow a migration. Field order is the
/// JSON order; see `docs/report-schema.md` for every field's meaning.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Always [`SCHEMA_VERSION`], so readers can refuse a schema they do not know.
    pub schema_version: u32,
    /// UTC time the report was built (`YYYY-MM-DDTHH:MM:SSZ`).
    pub generated_at: String,
    /// Where the migration stands, which decides which sections matter.
    pub phase: Phase,
    /// Loud warnings first (caps), then notices; every rendering shows these before anything else.
    pub alerts: Vec<Alert>,
    /// The settings the plan was computed with (no secrets).
    pub settings: SettingsView,
    /// What the store holds.
    pub counts: CountsSection,
    /// Where the tickets go in Deskie, and which cannot go.
    pub routing: Routing,
    /// Desk360 ids with no mapping, and what the default does.
    pub mapping_gaps: MappingGaps,
    /// Lossy content: derived subjects, oversize attachments, empty messages.
    pub content: ContentWarnings,
    /// Files and bytes per way they reached Deskie, every file that could not go and why, the
    /// dry run's link check.
    pub attachments: AttachmentsSection,
    /// Requests and estimated durations on both sides.
    pub cost: Cost,
    /// For a running or finished migration: done / failed / remaining, rates, elapsed, ETA.
    pub progress: Option<ProgressSection>,
    /// Failed tickets grouped by cause, and unread list pages.
    pub failures: Failures,
    /// The target account's case caps against this migration.
    pub caps: Caps,
    /// The latest runs, newest first.
    pub runs: Vec<RunView>,
    /// For a started migration: tickets per hour on each side, ETA, how far the history is
    /// complete.
    pub long_run: Option<LongRunSection>,
    /// The latest `verify`, when one ran.
    pub verification: Option<VerificationSection>,
}

/// Where the migration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Nothing stored yet: run `run --dry-run` first.
    Empty,
    /// Extracted (dry run) but nothing sent to Deskie yet.
    Planned,
    /// A real run started and work is left (running, interrupted or stopped).
    InProgress,
    /// Nothing left to do (failures may remain; see `failures`).
    Finished,
}

impl Phase {
    /// Lowercase words for texts.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Empty => "empty",
            Phase::Planned => "planned (dry run)",
            Phase::InProgress => "in progress",
            Phase::Finished => "finished",
        }
    }
}

/// How loud an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Data would be lost or the account blocked: decide before running.
    Warning,
    /// Worth a look; the migration goes on.
    Notice,
}

/// One line a reader must see first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// Warning or notice.
    pub level: Level,
    /// Stable machine-readable code, e.g. `case_retention_cap`.
    pub code: String,
    /// The sentence shown to the reader, with the numbers and the fix.
    pub message: String,
}

/// The settings that shape the plan, so a report read later says what it assumed.
#[derive(Debug, Clone, Serialize)]
pub struct SettingsView {
    /// Desk360 requests per window.
    pub source_rpm: u32,
    /// Desk360 window length in seconds (60 for the real service).
    pub source_window_secs: f64,
    /// Deskie plan.
    pub target_plan: Plan,
    /// Enabled Deskie agents.
    pub target_agents: u32,
    /// Deskie request units per window (writes cost 2).
    pub target_rpm: u32,
    /// Deskie window length in seconds.
    pub target_window_secs: f64,
    /// Cases loaded concurrently.
    pub concurrency: usize,
    /// Zone of Desk360's naive timestamps.
    pub timezone: String,
    /// Custom field that receives the source key, if any.
    pub source_id_field: Option<String>,
}

/// Totals of the store and of the stored tickets.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CountsSection {
    /// Desk360 products in scope.
    pub products: u64,
    /// Tickets listed (any state).
    pub tickets: u64,
    /// Tickets per pipeline state (`pending`, `extracted`, `loading`, `loaded`, `failed`, `skipped`).
    pub tickets_by_state: BTreeMap<String, u64>,
    /// Tickets whose detail is stored (the ones mapped below).
    pub details_stored: u64,
    /// Replies in stored details.
    pub messages: u64,
    /// Internal notes in stored details.
    pub notes: u64,
    /// Attachment references.
    pub attachments: u64,
    /// Sum of the attachment sizes Desk360 gave.
    pub attachment_bytes: u64,
    /// The same per product.
    pub by_product: Vec<ProductLine>,
    /// Stored tickets per Desk360 channel name (`(none)` when absent).
    pub by_channel: BTreeMap<String, u64>,
    /// Stored tickets per Desk360 status (`open`, `resolved`, `waiting`, `code N`, `(none)`).
    pub by_status: BTreeMap<String, u64>,
    /// Stored tickets per Desk360 priority (`low`, `medium`, `high`, `urgent`, `code N`, `(none)`).
    pub by_priority: BTreeMap<String, u64>,
}

/// One product's totals.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProductLine {
    /// Desk360 product id.
    pub product_id: i64,
    /// Its name, when the store has it.
    pub name: Option<String>,
    /// Tickets listed.
    pub tickets: u64,
    /// Replies.
    pub messages: u64,
    /// Notes.
    pub notes: u64,
    /// Attachments.
    pub attachments: u64,
    /// Attachment bytes.
    pub attachment_bytes: u64,
}

/// Where the stored tickets go.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Routing {
    /// Cases per Deskie route (`email`, `calls`, `custom:<id>`).
    pub cases_by_route: BTreeMap<String, u64>,
    /// Tickets not migrated because their Desk360 channel maps to `skip`, per channel.
    pub skipped_by_channel: BTreeMap<String, u64>,
    /// Sum of `skipped_by_channel`.
    pub skipped_total: u64,
    /// Tickets that cannot go through their route.
    pub unroutable_total: u64,
    /// Those tickets grouped by route and reason, every ticket key listed.
    pub unroutable: Vec<UnroutableGroup>,
}

/// Tickets that cannot go, for one reason.
#[derive(Debug, Clone, Serialize)]
pub struct UnroutableGroup {
    /// The route tried.
    pub route: String,
    /// What is missing and what to change (from the mapping rules).
    pub reason: String,
    /// How many tickets.
    pub count: u64,
    /// Every ticket, as `product/ticket`.
    pub tickets: Vec<String>,
}

/// Desk360 ids the mapping has no entry for.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MappingGaps {
    /// Agents with no `[mapping.agents]` entry.
    pub agents: Vec<Gap>,
    /// Types with neither a label mapping nor a `type_field`.
    pub types: Vec<Gap>,
    /// Reasons with neither a label mapping nor a `reason_field`.
    pub reasons: Vec<Gap>,
    /// Status codes with no `[mapping.status]` entry.
    pub status_codes: Vec<Gap>,
    /// Priority codes with no `[mapping.priority]` entry.
    pub priority_codes: Vec<Gap>,
    /// What happens to each kind of gap.
    pub defaults: GapDefaults,
}

/// One unmapped id and how many tickets it touches.
#[derive(Debug, Clone, Serialize)]
pub struct Gap {
    /// Desk360 id or code.
    pub id: i64,
    /// Name or title from the store, when known.
    pub name: Option<String>,
    /// Tickets that use it.
    pub tickets: u64,
}

/// What the mapping does with each kind of gap.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GapDefaults {
    /// For agents.
    pub agents: String,
    /// For types.
    pub types: String,
    /// For reasons.
    pub reasons: String,
    /// For status and priority codes.
    pub codes: String,
}

/// Content the mapping changes or cannot send.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ContentWarnings {
    /// Tickets with a null or empty subject; one is derived from the first message.
    pub derived_subjects: u64,
    /// The first few derived subjects, to show what they look like.
    pub derived_subject_examples: Vec<DerivedSubject>,
    /// Attachments over Deskie's limits (not sent).
    pub oversize_attachments_total: u64,
    /// Their total size.
    pub oversize_attachment_bytes: u64,
    /// The first [`LIST_CAP`] of them.
    pub oversize_attachments: Vec<OversizeAttachment>,
    /// Messages with no text (a placeholder is sent).
    pub empty_messages_total: u64,
    /// The first [`LIST_CAP`] of them.
    pub empty_messages: Vec<EmptyMessage>,
    /// Things Desk360 sent that were carried over in a safer form (e.g. a message of an unknown
    /// type kept as an internal note, never published), by ticket.
    pub source_warnings_total: u64,
    /// The first [`LIST_CAP`] of them: `product/ticket: what`.
    pub source_warnings: Vec<String>,
}

/// A subject the mapping made up.
#[derive(Debug, Clone, Serialize)]
pub struct DerivedSubject {
    /// `product/ticket`.
    pub ticket: String,
    /// What will be sent.
    pub subject: String,
}

/// A file Deskie will not take.
#[derive(Debug, Clone, Serialize)]
pub struct OversizeAttachment {
    /// `product/ticket`.
    pub ticket: String,
    /// Desk360 message id.
    pub message_id: i64,
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Where it can still be downloaded (data, never fetched by the report).
    pub url: String,
}

/// A message with no text.
#[derive(Debug, Clone, Serialize)]
pub struct EmptyMessage {
    /// `product/ticket`.
    pub ticket: String,
    /// Desk360 message id.
    pub message_id: i64,
}

/// Requests and durations on both sides.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Cost {
    /// Deskie (target).
    pub deskie: DeskieCost,
    /// Desk360 (source).
    pub desk360: Desk360Cost,
    /// Side that sets the pace of a whole migration from scratch (`deskie` or `desk360`).
    pub bottleneck_total: String,
    /// Estimated duration of a whole migration from scratch: extraction and loading overlap, so
    /// the larger of the two sides.
    pub estimated_total_secs: f64,
    /// Side that sets the pace of what is left.
    pub bottleneck_remaining: String,
    /// Estimated duration of what is left (what `run` will take now).
    pub estimated_remaining_secs: f64,
}

/// Deskie requests of the plan.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeskieCost {
    /// Cases the migration creates (done and to do).
    pub cases: u64,
    /// Writes of every case plan (create + later messages + notes + final updates).
    pub writes_total: u64,
    /// Writes of the tickets already loaded.
    pub writes_done: u64,
    /// Writes of the extracted tickets not loaded yet (exact; for failed tickets an upper bound,
    /// as part of their case may be written).
    pub writes_remaining: u64,
    /// Writes estimated for listed tickets whose detail is not stored yet (average per case).
    pub writes_estimated_unextracted: u64,
    /// Reads the next run sends: one credentials check, plus at most one per open write intent
    /// to reconcile.
    pub reads_planned: u64,
    /// Units of the whole plan: writes × 2 + one credentials read.
    pub units_total: u64,
    /// Units still to spend: remaining and estimated writes × 2 + planned reads.
    pub units_remaining: u64,
    /// Units allowed per window.
    pub units_per_window: u32,
    /// Window length in seconds.
    pub window_secs: f64,
    /// The limit per minute.
    pub units_per_minute: f64,
    /// `units_total` at the limit.
    pub estimated_total_secs: f64,
    /// `units_remaining` at the limit.
    pub estimated_remaining_secs: f64,
}

/// Desk360 requests of the plan.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Desk360Cost {
    /// Products in scope.
    pub products: u64,
    /// List pages: ⌈tickets / 20⌉ per product, at least one.
    pub list_pages: u64,
    /// One detail per ticket.
    pub details: u64,
    /// Products, agents, types, reasons (+ login when configured).
    pub reference_calls: u64,
    /// Sum of the above.
    pub requests_total: u64,
    /// Details not fetched yet, plus at least one page per product whose listing is unfinished.
    pub requests_remaining: u64,
    /// Whether every product's listing is complete (otherwise totals grow as listing goes on).
    pub listing_complete: bool,
    /// Requests allowed per window.
    pub requests_per_window: u32,
    /// Window length in seconds.
    pub window_secs: f64,
    /// The limit per minute.
    pub requests_per_minute: f64,
    /// `requests_total` at the limit.
    pub estimated_total_secs: f64,
    /// `requests_remaining` at the limit.
    pub estimated_remaining_secs: f64,
}

/// Progress of a real migration.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProgressSection {
    /// Tickets loaded.
    pub done: u64,
    /// Tickets failed.
    pub failed: u64,
    /// Tickets skipped on purpose.
    pub skipped: u64,
    /// Tickets still to load (pending, extracted or loading).
    pub remaining: u64,
    /// Wall-clock time of the real runs (`run`, `retry-failed`) so far.
    pub elapsed_secs: f64,
    /// Time left at the configured limits (`cost.estimated_remaining_secs`).
    pub eta_secs: f64,
    /// Time left at the Deskie rate observed so far, when there is one.
    pub eta_observed_secs: Option<f64>,
    /// Deskie rate.
    pub deskie: RateView,
    /// Desk360 rate.
    pub desk360: RateView,
}

/// Observed request rate of one side against its limit.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RateView {
    /// Requests sent.
    pub requests: u64,
    /// Units spent.
    pub units: u64,
    /// 429 answers seen.
    pub throttled: u64,
    /// Transient errors seen (5xx, timeouts, resets).
    pub transient: u64,
    /// Limit per minute.
    pub limit_per_minute: f64,
    /// Units per minute over the runs' elapsed time, when measurable.
    pub avg_units_per_minute: Option<f64>,
    /// Busiest minute.
    pub peak_units_per_minute: u64,
    /// `avg_units_per_minute / limit_per_minute`.
    pub utilisation: Option<f64>,
    /// Minute by minute.
    pub series: Vec<RatePoint>,
}

/// One minute of requests.
#[derive(Debug, Clone, Serialize)]
pub struct RatePoint {
    /// Unix seconds of the minute's start.
    pub minute_epoch: i64,
    /// Requests.
    pub requests: u64,
    /// Units.
    pub units: u64,
    /// 429s.
    pub throttled: u64,
}

/// Failures grouped by cause.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Failures {
    /// Tickets in state failed.
    pub tickets: u64,
    /// Grouped by stage + step + code + message pattern, biggest first.
    pub groups: Vec<FailureGroup>,
    /// List pages not read (extraction resumes there on the next `run`).
    pub pages: Vec<PageFailure>,
}

/// Failed tickets with the same cause.
#[derive(Debug, Clone, Serialize)]
pub struct FailureGroup {
    /// `extract` or `load`.
    pub stage: String,
    /// Step kind: `detail`, `map`, `create`, `message`, `note`, `update`, …
    pub step: String,
    /// HTTP status or API code.
    pub code: Option<String>,
    /// `permanent` or `transient`.
    pub class: String,
    /// The API's own message of the first ticket, verbatim.
    pub message: String,
    /// The message with numbers replaced by `#`, which is what the group shares.
    pub pattern: String,
    /// Tickets in the group.
    pub count: u64,
    /// Every ticket, as `product/ticket`.
    pub tickets: Vec<String>,
    /// Their batches.
    pub batches: Vec<i64>,
    /// The command that retries exactly this group.
    pub retry_command: String,
}

/// A list page that could not be read.
#[derive(Debug, Clone, Serialize)]
pub struct PageFailure {
    /// Desk360 product.
    pub product_id: i64,
    /// Page number.
    pub page: Option<i64>,
    /// HTTP status or API code.
    pub code: Option<String>,
    /// The API's message.
    pub message: String,
    /// Attempts so far.
    pub attempts: i64,
    /// Last failure (UTC).
    pub last_seen: String,
}

/// The Deskie account's case caps against this migration.
#[derive(Debug, Clone, Serialize)]
pub struct Caps {
    /// Deskie plan.
    pub plan: Plan,
    /// Enabled agents.
    pub agents: u32,
    /// Cases this migration creates (done and to do, including an estimate for unextracted tickets).
    pub cases: u64,
    /// Cases kept per agent on the plan.
    pub cases_per_agent: u64,
    /// `agents × cases_per_agent`: above it Deskie deletes the oldest cases.
    pub retention_limit: u64,
    /// Whether the migration alone crosses it.
    pub retention_exceeded: bool,
    /// Cases above it (the oldest would be deleted).
    pub cases_over_retention: u64,
    /// New cases per agent per month on the plan.
    pub new_cases_per_agent_month: u64,
    /// `agents × new_cases_per_agent_month`.
    pub monthly_limit: u64,
    /// `cases / monthly_limit`: months of the whole allowance the import takes.
    pub months_of_allowance: f64,
    /// Whether the migration crosses one month's allowance.
    pub monthly_exceeded: bool,
}

/// One run of the history.
#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    /// Run id.
    pub id: i64,
    /// `run`, `dry-run`, `retry-failed`, `verify`.
    pub kind: String,
    /// UTC start.
    pub started_at: String,
    /// UTC end; absent while running or after a kill.
    pub finished_at: Option<String>,
    /// `completed`, `interrupted`, `stopped`, `error`.
    pub outcome: Option<String>,
    /// Duration when finished.
    pub elapsed_secs: Option<f64>,
}

/// Builds the report from the store and the settings (no network). Memory stays flat in the
/// number of tickets except for the keys of loaded tickets (16 bytes each) and of failed ones.
pub async fn build(engine: &Engine) -> Result<Report> {
    collect::build(engine.store(), engine.settings()).await
}

impl Report {
    /// Markdown rendering, for humans (and issue trackers).
    pub fn to_markdown(&self) -> String {
        markdown::render(&sections::document(self))
    }

    /// JSON rendering with the stable schema of `docs/report-schema.md`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// One self-contained HTML file: inline CSS and SVG, no script, no external resource.
    pub fn to_html(&self) -> String {
        html::render(&sections::document(self))
    }

    /// The alerts at warning level (the caps), which every rendering shows first.
    pub fn warnings(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.iter().filter(|a| a.level == Level::Warning)
    }

    /// The few lines printed after `run` / `run --dry-run`: loud warnings first, then the plan.
    pub fn summary_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .warnings()
            .map(|a| format!("WARNING: {}", a.message))
            .collect();
        let c = &self.counts;
        let state = |s: &str| c.tickets_by_state.get(s).copied().unwrap_or(0);
        lines.push(format!(
            "tickets: {} in {} products ({} to extract, {} to load, {} loaded, {} failed, {} skipped); {} messages, {} notes, {} attachments ({})",
            c.tickets,
            c.products,
            state("pending"),
            state("extracted") + state("loading"),
            state("loaded"),
            state("failed"),
            state("skipped"),
            c.messages,
            c.notes,
            c.attachments,
            fmt_bytes(c.attachment_bytes),
        ));
        let r = &self.routing;
        let routes: Vec<String> = r
            .cases_by_route
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        lines.push(format!(
            "routing: {}; skipped {}; cannot go {}",
            if routes.is_empty() {
                "no cases".to_string()
            } else {
                routes.join(", ")
            },
            r.skipped_total,
            r.unroutable_total
        ));
        let k = &self.cost;
        lines.push(format!(
            "plan: {} cases, {} Deskie writes ({} units) and {} Desk360 requests in all; whole migration ≈ {} (bottleneck: {})",
            k.deskie.cases,
            k.deskie.writes_total,
            k.deskie.units_total,
            k.desk360.requests_total,
            fmt_duration(k.estimated_total_secs),
            k.bottleneck_total,
        ));
        lines.push(format!(
            "left: {} Deskie writes ({} units at {:.0}/min), {} Desk360 requests ({:.0}/min) ≈ {} (bottleneck: {})",
            k.deskie.writes_remaining + k.deskie.writes_estimated_unextracted,
            k.deskie.units_remaining,
            k.deskie.units_per_minute,
            k.desk360.requests_remaining,
            k.desk360.requests_per_minute,
            fmt_duration(k.estimated_remaining_secs),
            k.bottleneck_remaining,
        ));
        if let Some(p) = &self.progress {
            lines.push(format!(
                "progress: {} done, {} failed, {} remaining; elapsed {}, ETA {}; Deskie {} 429s",
                p.done,
                p.failed,
                p.remaining,
                fmt_duration(p.elapsed_secs),
                fmt_duration(p.eta_secs),
                p.deskie.throttled
            ));
        }
        let g = &self.mapping_gaps;
        let t = &self.content;
        lines.push(format!(
            "gaps: {} agents, {} types, {} reasons unmapped; content: {} derived subjects, {} oversize attachments, {} empty messages",
            g.agents.len(),
            g.types.len(),
            g.reasons.len(),
            t.derived_subjects,
            t.oversize_attachments_total,
            t.empty_messages_total
        ));
        if self.failures.tickets > 0 || !self.failures.pages.is_empty() {
            lines.push(format!(
                "failures: {} tickets in {} causes, {} unread list pages (see `deskie-import report`)",
                self.failures.tickets,
                self.failures.groups.len(),
                self.failures.pages.len()
            ));
        }
        lines
    }
}

/// `1 h 02 min`, `3 min 05 s`, `12 s`, `2.3 s` (tenths below ten seconds, for short test windows).
pub fn fmt_duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "unknown".into();
    }
    if secs < 9.95 {
        return format!("{secs:.1} s");
    }
    let s = secs.round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ if s < 86_400 * 2 => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {:02} h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// `1.5 MB` (decimal units, as file managers show them).
pub fn fmt_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < UNITS.len() {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(fmt_duration(12.4), "12 s");
        assert_eq!(fmt_duration(0.04), "0.0 s");
        assert_eq!(fmt_duration(2.26), "2.3 s");
        assert_eq!(fmt_duration(185.0), "3 min 05 s");
        assert_eq!(fmt_duration(3720.0), "1 h 02 min");
        assert_eq!(fmt_duration(3.0 * 86_400.0), "3 d 00 h");
        assert_eq!(fmt_duration(f64::NAN), "unknown");
    }

    #[test]
    fn bytes_read_naturally() {
        assert_eq!(fmt_bytes(999), "999 B");
        assert_eq!(fmt_bytes(26_000_000), "26.0 MB");
    }
}
