//! What the binary shows about a store without touching the network: counts per state, failed
//! batches and tickets with their causes, recent runs, how far the history is complete. This is
//! the binary's only door to the store (ARCHITECTURE.md: only the engine touches the store); the
//! record types it returns are the store's plain data, re-exported here so the binary never names
//! the `store` crate.

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use store::{
    BatchState, BatchSummary, Counts, FailedTicket, Failure, FailureClass, FailureRecord,
    HistoryMark, ProductCounts, RetryFilter, RunKind, RunOutcome, RunRecord, Stage, TicketState,
    parse_ticket_key,
};

use crate::{Engine, Result};

/// Everything `status` prints, read in one go (a handful of indexed queries, no network).
///
/// Serialized as `status --json` (a contract other tools read: the field names stay).
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The store file.
    pub store: PathBuf,
    /// Tickets per state, batches per state, content totals, per product.
    pub counts: Counts,
    /// Batches whose list page failed (retry with `--batch`).
    pub failed_batches: Vec<BatchSummary>,
    /// Failed tickets with their recorded cause.
    pub failed_tickets: Vec<FailedTicket>,
    /// The most recent runs, newest first.
    pub last_runs: Vec<RunRecord>,
}

impl Status {
    /// What `status` prints: ticket and batch states (overall and per product), content totals,
    /// failed batches and tickets with their cause and the flag that retries them, the last run.
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let states = |m: &std::collections::BTreeMap<TicketState, u64>| {
            TicketState::ALL
                .iter()
                .map(|s| format!("{s} {}", m.get(s).copied().unwrap_or(0)))
                .collect::<Vec<_>>()
                .join(" · ")
        };
        let c = &self.counts;
        let batches = BatchState::ALL
            .iter()
            .map(|s| format!("{s} {}", c.batches.get(s).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join(" · ");
        let _ = writeln!(out, "store: {}", self.store.display());
        let _ = writeln!(out, "tickets: {}", states(&c.tickets));
        let _ = writeln!(out, "batches: {batches}");
        let _ = writeln!(
            out,
            "content: {} messages, {} notes, {} attachments ({} bytes)",
            c.messages, c.notes, c.attachments, c.attachment_bytes
        );
        for p in &c.products {
            let _ = writeln!(out, "  product {}: {}", p.product_id, states(&p.tickets));
        }
        if !self.failed_batches.is_empty() {
            let _ = writeln!(out, "failed batches (retry with --batch ID):");
            for b in &self.failed_batches {
                let _ = writeln!(
                    out,
                    "  batch {} (product {}, page {}, {} tickets)",
                    b.id, b.product_id, b.page, b.ticket_count
                );
            }
        }
        if !self.failed_tickets.is_empty() {
            let _ = writeln!(out, "failed tickets (retry with --ticket product/ticket):");
            for f in &self.failed_tickets {
                let why = f
                    .failure
                    .as_ref()
                    .map_or_else(|| "unknown cause".into(), |x| cause_line(&x.record));
                let _ = writeln!(out, "  {} (batch {}): {why}", f.key, f.batch_id);
            }
        }
        if let Some(last) = self.last_runs.first() {
            let _ = writeln!(
                out,
                "last run: {} started {} — {}",
                last.kind,
                last.started_at,
                last.outcome
                    .map_or("did not finish (resume with `run`)", |o| o.as_str())
            );
        }
        out
    }
}

/// Failed tickets counted by cause kind (`stage step (code)`), most frequent first (ties by
/// name): the end-of-run summary's "top causes".
pub fn top_causes(failed: &[FailedTicket]) -> Vec<(String, u64)> {
    let mut causes: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for f in failed {
        let cause = match &f.failure {
            Some(x) => cause_kind(&x.record),
            None => "unknown cause".to_string(),
        };
        *causes.entry(cause).or_default() += 1;
    }
    let mut top: Vec<(String, u64)> = causes.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    top
}

/// A failure's cause on one line: `class stage step (code): message`, the form `status` and
/// the end-of-run summary share.
pub fn cause_line(record: &FailureRecord) -> String {
    format!(
        "{} {} {}{}: {}",
        record.class,
        record.stage,
        record.step,
        code_suffix(record),
        one_line(&record.message)
    )
}

/// A failure's cause without the ids that make each one unique (`message:123` → `message`), so
/// the same cause on many tickets is counted once in "top causes".
pub fn cause_kind(record: &FailureRecord) -> String {
    format!(
        "{} {}{}: {}",
        record.stage,
        record.step.kind(),
        code_suffix(record),
        one_line(&record.message)
    )
}

fn code_suffix(record: &FailureRecord) -> String {
    record
        .code
        .as_ref()
        .map(|c| format!(" ({c})"))
        .unwrap_or_default()
}

/// A message on one line (whitespace runs, newlines included, become one space), so a list of
/// causes stays one line per entry.
pub fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Parses the `--batch` / `--ticket` selectors of `retry-failed` into the store's filter; none
/// given selects every failed ticket. A ticket is `product/ticket` or a plain Desk360 ticket id.
pub fn retry_filter(
    batches: &[i64],
    tickets: &[String],
) -> std::result::Result<RetryFilter, String> {
    let mut filter = RetryFilter {
        batches: batches.iter().map(|b| store::BatchId(*b)).collect(),
        all: batches.is_empty() && tickets.is_empty(),
        ..RetryFilter::default()
    };
    for t in tickets {
        if let Some(key) = parse_ticket_key(t) {
            filter.tickets.push(key);
        } else if let Ok(id) = t.trim().parse::<i64>() {
            filter.ticket_ids.push(id);
        } else {
            return Err(format!(
                "--ticket `{t}`: use product/ticket (e.g. 3/1045) or a plain Desk360 ticket id"
            ));
        }
    }
    Ok(filter)
}

impl Engine {
    /// The whole `status` view: counts, failed batches and tickets, the last `runs` runs.
    pub async fn status(&self, runs: u32) -> Result<Status> {
        let store = self.store();
        Ok(Status {
            store: store.path().to_path_buf(),
            counts: store.counts().await?,
            failed_batches: store.batches(Some(BatchState::Failed)).await?,
            failed_tickets: store.failed_tickets().await?,
            last_runs: store.last_runs(runs).await?,
        })
    }

    /// Tickets per state and content totals.
    pub async fn counts(&self) -> Result<Counts> {
        Ok(self.store().counts().await?)
    }

    /// Failed tickets with their recorded cause, by key.
    pub async fn failed_tickets(&self) -> Result<Vec<FailedTicket>> {
        Ok(self.store().failed_tickets().await?)
    }

    /// List pages that could not be read (their tickets are not known yet).
    pub async fn unread_pages(&self) -> Result<u64> {
        let failures = self.store().failures().await?;
        Ok(failures.iter().filter(|f| f.key.is_none()).count() as u64)
    }

    /// How far the migrated history is complete (a few index seeks).
    pub async fn history_mark(&self) -> Result<HistoryMark> {
        Ok(self.store().history_mark().await?)
    }

    /// The store file this engine works on.
    pub fn store_path(&self) -> &Path {
        self.store().path()
    }

    /// Closes the store's connections (after a run, before its files are removed or copied).
    pub async fn close(&self) {
        self.store().close().await;
    }
}

/// Runs SQLite's `PRAGMA integrity_check` on a store file (`["ok"]` when healthy), e.g. after a
/// crash or before copying a store elsewhere. Opens and closes the file itself, with no settings.
pub async fn check_store_file(path: &Path) -> Result<Vec<String>> {
    let store = store::Store::open(path).await?;
    let report = store.integrity_check().await;
    store.close().await;
    Ok(report?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_selectors_parse_or_name_the_fix() {
        let f = retry_filter(&[4], &["3/1045".into(), "77".into()]).unwrap_or_default();
        assert_eq!(f.batches, vec![store::BatchId(4)]);
        assert_eq!(f.tickets, vec![model::TicketKey::new(3, 1045)]);
        assert_eq!(f.ticket_ids, vec![77]);
        assert!(!f.all);
        assert!(retry_filter(&[], &[]).is_ok_and(|f| f.all));
        let err = retry_filter(&[], &["x/y".into()]).err().unwrap_or_default();
        assert!(err.contains("product/ticket"), "{err}");
    }

    #[test]
    fn a_cause_is_one_line_and_its_kind_drops_the_ids() {
        let record = FailureRecord {
            stage: Stage::Load,
            step: "message:123".into(),
            class: FailureClass::Permanent,
            code: Some("422".into()),
            message: "body is\n  empty".into(),
            request: None,
        };
        assert_eq!(
            cause_line(&record),
            format!(
                "{} load message:123 (422): body is empty",
                FailureClass::Permanent
            )
        );
        assert_eq!(cause_kind(&record), "load message (422): body is empty");
    }

    fn failed(ticket: i64, step: &str, message: &str) -> FailedTicket {
        let key = model::TicketKey::new(1, ticket);
        FailedTicket {
            key,
            batch_id: store::BatchId(1),
            page: 1,
            failure: Some(Failure {
                key: Some(key),
                product_id: 1,
                page: None,
                record: FailureRecord {
                    stage: Stage::Load,
                    step: step.into(),
                    class: FailureClass::Permanent,
                    code: None,
                    message: message.into(),
                    request: None,
                },
                attempts: 1,
                first_seen: "2026-12-01 10:00:00".into(),
                last_seen: "2026-12-01 10:00:00".into(),
            }),
        }
    }

    #[test]
    fn top_causes_group_by_kind_most_frequent_first() {
        let list = vec![
            failed(1, "message:5", "too long"),
            failed(2, "create", "no email"),
            failed(3, "message:9", "too long"),
        ];
        let top = top_causes(&list);
        assert_eq!(top.len(), 2, "{top:?}");
        assert_eq!(top[0], ("load message: too long".to_owned(), 2));
        assert_eq!(top[1].1, 1);
    }

    #[test]
    fn the_status_text_names_each_failed_ticket_with_its_cause_and_the_retry_flag() {
        let status = Status {
            store: PathBuf::from("/tmp/s.sqlite"),
            counts: Counts::default(),
            failed_batches: Vec::new(),
            failed_tickets: vec![failed(7, "create", "no email")],
            last_runs: Vec::new(),
        };
        let text = status.to_text();
        assert!(text.starts_with("store: /tmp/s.sqlite\n"), "{text}");
        assert!(
            text.contains("failed tickets (retry with --ticket product/ticket):"),
            "{text}"
        );
        assert!(text.contains("  1/7 (batch 1): "), "{text}");
        assert!(text.contains("load create: no email"), "{text}");
        assert!(!text.contains("last run"), "{text}");
    }
}
