//! Two report sections for days-long migrations: **long run** (tickets per hour on each side
//! while it was active, the ETA in days and hours, and the source time back to which the
//! migrated history is complete — Desk360 lists newest first, so the recent months can be used
//! before the archive finishes) and **verification** (the latest `verify`: its scope, stated
//! cost, reads spent and findings). Both come from the store only.

use std::collections::BTreeMap;

use serde::Serialize;
use store::Store;

use super::doc::{Block, Section, Table, Tone, code, text};
use super::{LIST_CAP, fmt_duration};
use crate::error::Result;
use crate::verify::{VerifyPlan, finding_line};

/// Throughput and how far the history is complete.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LongRunSection {
    /// Tickets whose detail is stored.
    pub extracted: u64,
    /// Tickets loaded.
    pub loaded: u64,
    /// Tickets still to extract (listed, detail not stored).
    pub to_extract: u64,
    /// Tickets still to load (pending, extracted or loading).
    pub to_load: u64,
    /// Hours in which Desk360 requests were sent (pauses do not count).
    pub extract_active_hours: f64,
    /// Hours in which Deskie requests were sent.
    pub load_active_hours: f64,
    /// Tickets extracted per active hour.
    pub extract_tickets_per_hour: Option<f64>,
    /// Tickets loaded per active hour.
    pub load_tickets_per_hour: Option<f64>,
    /// Time left at those rates: the slower side sets it (`None` until both are measurable).
    pub eta_secs: Option<f64>,
    /// The same as text, in days and hours when long (`3 d 04 h`).
    pub eta_text: Option<String>,
    /// Every ticket updated (Desk360 time) after this is migrated.
    pub history_complete_after: Option<String>,
    /// Every listed ticket is done.
    pub history_complete: bool,
    /// Permanently failed tickets, listed under failures, not holding the mark back.
    pub history_failed_excluded: u64,
    /// The mark per product.
    pub history_by_product: BTreeMap<i64, Option<String>>,
}

/// The latest `verify`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerificationSection {
    /// Its id in the store.
    pub verify_id: i64,
    /// Scope: `sample=N;seed=S;product=P;since=D`.
    pub scope: String,
    /// UTC start.
    pub started_at: String,
    /// UTC end; `None`: interrupted or running (the same command resumes it).
    pub finished_at: Option<String>,
    /// The cost it stated before it started.
    pub plan: VerifyPlan,
    /// Case-list pages read.
    pub list_reads: u64,
    /// Cases read one by one.
    pub case_reads: u64,
    /// Message pages read.
    pub message_reads: u64,
    /// Findings by kind.
    pub findings_by_kind: BTreeMap<String, u64>,
    /// The first [`LIST_CAP`] findings, one line each.
    pub findings: Vec<String>,
}

/// Tickets per hour of `done` over `minutes` active minutes.
fn per_hour(done: u64, minutes: u64) -> Option<f64> {
    (minutes > 0 && done > 0).then(|| done as f64 * 60.0 / minutes as f64)
}

/// The long-run section, from the store's counters and request log.
pub(super) async fn long_run(store: &Store, counts: &store::Counts) -> Result<LongRunSection> {
    let t = store.throughput().await?;
    let mark = store.history_mark().await?;
    let state = |s: store::TicketState| counts.tickets.get(&s).copied().unwrap_or(0);
    let to_extract = state(store::TicketState::Pending);
    let to_load =
        to_extract + state(store::TicketState::Extracted) + state(store::TicketState::Loading);
    let extract_rate = per_hour(t.extracted, t.desk360_minutes);
    let load_rate = per_hour(t.loaded, t.deskie_minutes);
    let eta_secs = match (extract_rate, load_rate) {
        _ if to_load == 0 => Some(0.0),
        (e, Some(l)) => {
            let extract = match e {
                Some(e) => to_extract as f64 / e * 3600.0,
                None if to_extract == 0 => 0.0,
                None => return Ok(section(t, mark, to_extract, to_load, e, Some(l), None)),
            };
            Some(extract.max(to_load as f64 / l * 3600.0))
        }
        _ => None,
    };
    Ok(section(
        t,
        mark,
        to_extract,
        to_load,
        extract_rate,
        load_rate,
        eta_secs,
    ))
}

fn section(
    t: store::Throughput,
    mark: store::HistoryMark,
    to_extract: u64,
    to_load: u64,
    extract_rate: Option<f64>,
    load_rate: Option<f64>,
    eta_secs: Option<f64>,
) -> LongRunSection {
    LongRunSection {
        extracted: t.extracted,
        loaded: t.loaded,
        to_extract,
        to_load,
        extract_active_hours: t.desk360_minutes as f64 / 60.0,
        load_active_hours: t.deskie_minutes as f64 / 60.0,
        extract_tickets_per_hour: extract_rate,
        load_tickets_per_hour: load_rate,
        eta_secs,
        eta_text: eta_secs.map(fmt_duration),
        history_complete_after: mark.complete_after,
        history_complete: mark.everything,
        history_failed_excluded: mark.failed_excluded,
        history_by_product: mark.by_product.into_iter().collect(),
    }
}

/// The verification section, when a `verify` ran.
pub(super) async fn verification(store: &Store) -> Result<Option<VerificationSection>> {
    let Some(v) = store.latest_verify().await? else {
        return Ok(None);
    };
    let findings = store
        .verify_findings(v.id, LIST_CAP as u32)
        .await?
        .iter()
        .map(finding_line)
        .collect();
    Ok(Some(VerificationSection {
        verify_id: v.id,
        scope: v.scope,
        started_at: v.started_at,
        finished_at: v.finished_at,
        plan: serde_json::from_str(&v.plan).unwrap_or_default(),
        list_reads: v.list_reads,
        case_reads: v.case_reads,
        message_reads: v.message_reads,
        findings_by_kind: store.verify_finding_counts(v.id).await?,
        findings,
    }))
}

/// The sentence saying how far the history is complete.
pub fn history_sentence(l: &LongRunSection) -> String {
    if l.history_complete {
        return "every listed ticket is migrated".to_string();
    }
    let failed = if l.history_failed_excluded > 0 {
        format!(
            " (except {} failed tickets, see Failures)",
            l.history_failed_excluded
        )
    } else {
        String::new()
    };
    match &l.history_complete_after {
        Some(t) => format!(
            "every ticket updated after {t} (Desk360 time) is migrated{failed}: the recent history can be used in Deskie while the older tickets follow"
        ),
        None => "not known yet (no product's listing has shown a ticket)".to_string(),
    }
}

fn rate(r: Option<f64>) -> String {
    r.map(|r| format!("{r:.0}")).unwrap_or_else(|| "–".into())
}

/// Both sections, each when there is something to show.
pub(super) fn sections(
    long: Option<&LongRunSection>,
    verification: Option<&VerificationSection>,
) -> Vec<Section> {
    long.map(long_run_section)
        .into_iter()
        .chain(verification.map(verification_section))
        .collect()
}

/// Tickets per hour on each side, the ETA and how far the history is complete.
fn long_run_section(l: &LongRunSection) -> Section {
    let mut t = Table::new(
        &[
            "side",
            "tickets done",
            "still to do",
            "active hours",
            "tickets per hour",
        ],
        &[false, true, true, true, true],
    );
    t.row([
        "extract (Desk360)".to_string(),
        l.extracted.to_string(),
        l.to_extract.to_string(),
        format!("{:.1}", l.extract_active_hours),
        rate(l.extract_tickets_per_hour),
    ]);
    t.row([
        "load (Deskie)".to_string(),
        l.loaded.to_string(),
        l.to_load.to_string(),
        format!("{:.1}", l.load_active_hours),
        rate(l.load_tickets_per_hour),
    ]);
    let mut s = Section::new("Long run");
    s.push(Block::Table(t));
    s.para(
        Tone::Plain,
        format!(
            "ETA at these rates: {}. History complete: {}.",
            l.eta_text.as_deref().unwrap_or("unknown"),
            history_sentence(l)
        ),
    );
    s
}

/// The latest `verify`: scope, stated cost, reads spent, findings.
fn verification_section(v: &VerificationSection) -> Section {
    let mut s = Section::new("Verification");
    s.push(Block::Para(
        Tone::Plain,
        vec![
            text("Latest "),
            code("verify"),
            text(format!(" (#{}, scope ", v.verify_id)),
            code(&v.scope),
            text(format!(
                "), started {}, {}. Stated cost {} reads ({} list pages + {} case reads for {} cases, {} message pages for {} cases); spent {} list pages, {} case reads, {} message pages.",
                v.started_at,
                match &v.finished_at {
                    Some(f) => format!("finished {f}"),
                    None => "not finished (run the same command to continue)".to_string(),
                },
                v.plan.total_reads,
                v.plan.list_pages,
                v.plan.case_reads,
                v.plan.cases,
                v.plan.message_reads,
                v.plan.message_cases,
                v.list_reads,
                v.case_reads,
                v.message_reads
            )),
        ],
    ));
    if v.findings_by_kind.is_empty() {
        s.para(Tone::Good, "No findings: Deskie matches the store.");
        return s;
    }
    let mut t = Table::new(&["finding", "count"], &[false, true]);
    for (kind, n) in &v.findings_by_kind {
        t.row([kind.clone(), n.to_string()]);
    }
    s.push(Block::Table(t));
    s.push(Block::List(
        v.findings.iter().map(|f| vec![text(f)]).collect(),
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_count_active_minutes_only() {
        assert_eq!(per_hour(600, 30), Some(1200.0));
        assert_eq!(per_hour(0, 30), None);
        assert_eq!(per_hour(10, 0), None);
    }

    #[test]
    fn the_history_sentence_names_the_mark_and_the_exclusions() {
        let mut l = LongRunSection {
            history_complete_after: Some("2024-03-01 10:00:00".into()),
            history_failed_excluded: 2,
            ..LongRunSection::default()
        };
        let s = history_sentence(&l);
        assert!(s.contains("after 2024-03-01 10:00:00") && s.contains("except 2 failed"));
        l.history_complete = true;
        assert_eq!(history_sentence(&l), "every listed ticket is migrated");
    }
}
