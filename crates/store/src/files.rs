//! Attachments (issue #12): the outcome of every file a write carries or leaves out, the journal
//! of the inline-image edits (`inline = "rehost"`), and the dry run's check of `urls`-mode links.
//!
//! A file that went with its write is recorded `attached` *before* the write; whether it is in
//! Deskie is read from the id maps when the outcomes are listed
//! ([`Store::visit_file_outcomes`]), so a kill between the write and any later bookkeeping can
//! neither lose nor double a count. Every method is one short transaction on the single writer,
//! like the rest of the store; [`Store::record_files`] joins the group commit of intents instead.

use futures::TryStreamExt;
use model::TicketKey;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::error::Result;
use crate::rows::key_from_row;
use crate::{Store, now};

/// How a file reaches Deskie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileMode {
    /// A multipart part of its message (`mode = "upload"`).
    Upload,
    /// An `attachment_urls` link to Desk360's storage (`mode = "urls"`).
    Url,
    /// An inline image uploaded with its message (`inline = "rehost"`).
    Inline,
}

impl FileMode {
    /// The column value.
    pub fn as_str(self) -> &'static str {
        match self {
            FileMode::Upload => "upload",
            FileMode::Url => "url",
            FileMode::Inline => "inline",
        }
    }

    fn parse(s: &str) -> FileMode {
        match s {
            "url" => FileMode::Url,
            "inline" => FileMode::Inline,
            _ => FileMode::Upload,
        }
    }
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum FileOutcome {
    /// Sent with its write (in Deskie once the write is: see [`FileRow::written`]).
    Attached,
    /// Over Deskie's 25 MB a file: not sent.
    TooLarge,
    /// The storage refused it (401/403/410: credentials, an expired signature, a closed
    /// account; 404: gone); not sent.
    Refused {
        /// The HTTP status, when there was one.
        status: Option<u16>,
        /// The storage's answer, shortened.
        reason: String,
    },
    /// The download failed otherwise (broke off, timed out); the ticket is tried again.
    Failed {
        /// What went wrong.
        reason: String,
    },
}

impl FileOutcome {
    pub(crate) fn columns(&self) -> (&'static str, Option<i64>, Option<&str>) {
        match self {
            FileOutcome::Attached => ("attached", None, None),
            FileOutcome::TooLarge => ("too_large", None, None),
            FileOutcome::Refused { status, reason } => {
                ("refused", status.map(i64::from), Some(reason.as_str()))
            }
            FileOutcome::Failed { reason } => ("failed", None, Some(reason.as_str())),
        }
    }

    fn from_columns(outcome: &str, status: Option<i64>, reason: Option<String>) -> FileOutcome {
        let reason = reason.unwrap_or_default();
        match outcome {
            "attached" => FileOutcome::Attached,
            "too_large" => FileOutcome::TooLarge,
            "refused" => FileOutcome::Refused {
                status: status.and_then(|s| u16::try_from(s).ok()),
                reason,
            },
            _ => FileOutcome::Failed { reason },
        }
    }
}

/// One file of one write, as the loader records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    /// The write is the case create (the ticket's first message) rather than a message or note.
    pub create: bool,
    /// The write's source id (Desk360 message id, or a follow-up note's synthetic id).
    pub write_id: i64,
    /// How the file goes.
    pub mode: FileMode,
    /// Its Desk360 URL.
    pub url: String,
    /// Its name.
    pub name: String,
    /// Its size in bytes, when known.
    pub size: Option<u64>,
    /// What happened.
    pub outcome: FileOutcome,
}

/// One recorded file with whether its write is in Deskie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    /// The ticket.
    pub key: TicketKey,
    /// The file as recorded.
    pub record: FileRecord,
    /// For an attached file: its write is in Deskie (the case exists for the create, the
    /// message is mapped for a message or note).
    pub written: bool,
}

/// A journaled inline-image edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RehostEdit {
    /// The Desk360 message whose HTML is edited.
    pub source_id: i64,
    /// The Deskie case.
    pub case_id: i64,
    /// The Deskie message.
    pub deskie_message_id: i64,
    /// Whether it is a note (the note edit path).
    pub note: bool,
    /// Desk360 src → URL of the Deskie copy, as JSON.
    pub replace: String,
    /// `open`, `done` or `failed`.
    pub state: String,
    /// Why it was refused, for a failed edit.
    pub reason: Option<String>,
}

/// Inline-image edits over the whole store, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RehostTotals {
    /// Messages whose images point at Deskie's copies.
    pub done: u64,
    /// Edits still to send.
    pub open: u64,
    /// Edits Deskie refused: `(ticket, Desk360 message id, reason)`.
    pub failed: Vec<(TicketKey, i64, String)>,
}

/// The dry run's check of a sample of attachment links without credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkCheck {
    /// When it ran (UTC, `YYYY-MM-DDTHH:MM:SS`; set by the store).
    pub checked_at: String,
    /// Links fetched.
    pub sampled: u64,
    /// Links answered 401/403 (or otherwise refused) without credentials.
    pub not_public: u64,
    /// Links that carry an expiry or a signature in their query.
    pub expiring: u64,
    /// One line per such link: ticket, file, what was seen.
    pub detail: Vec<String>,
}

/// One attachment picked for the link check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampledLink {
    /// The ticket.
    pub key: TicketKey,
    /// File name.
    pub name: String,
    /// Desk360 URL.
    pub url: String,
}

impl Store {
    /// Hands every recorded file to `visit`, by ticket, one row at a time, with whether its
    /// write is in Deskie: a 200 000-ticket account records about 150 000 files, and a report
    /// that only totals them must not hold them all at once (it did: 140 MiB at the end of a
    /// run, against 55 MiB during it).
    pub async fn visit_file_outcomes(&self, mut visit: impl FnMut(FileRow)) -> Result<()> {
        let mut rows = sqlx::query(
            "SELECT f.product_id, f.ticket_id, f.write_kind, f.write_id, f.mode, f.url, f.name,
                    f.size, f.outcome, f.status, f.reason,
                    CASE WHEN f.write_kind = 'create' THEN
                        EXISTS (SELECT 1 FROM case_map c
                                WHERE c.product_id = f.product_id AND c.ticket_id = f.ticket_id)
                    ELSE
                        EXISTS (SELECT 1 FROM message_map m
                                WHERE m.product_id = f.product_id AND m.ticket_id = f.ticket_id
                                  AND m.source_message_id = f.write_id)
                    END AS written
             FROM attachment_files f
             ORDER BY f.product_id, f.ticket_id, f.write_id, f.mode, f.url",
        )
        .fetch(&self.read);
        while let Some(r) = rows.try_next().await? {
            let kind: String = r.try_get("write_kind")?;
            let mode: String = r.try_get("mode")?;
            let outcome: String = r.try_get("outcome")?;
            let size: Option<i64> = r.try_get("size")?;
            visit(FileRow {
                key: key_from_row(&r)?,
                record: FileRecord {
                    create: kind == "create",
                    write_id: r.try_get("write_id")?,
                    mode: FileMode::parse(&mode),
                    url: r.try_get("url")?,
                    name: r.try_get("name")?,
                    size: size.and_then(|s| u64::try_from(s).ok()),
                    outcome: FileOutcome::from_columns(
                        &outcome,
                        r.try_get("status")?,
                        r.try_get("reason")?,
                    ),
                },
                written: r.try_get::<i64, _>("written")? != 0,
            });
        }
        Ok(())
    }

    /// Opens (or re-opens with new inputs) the inline-image edit of message `source_id`:
    /// recorded right after the message write, before the edit is sent.
    pub async fn open_rehost_edit(&self, key: TicketKey, edit: &RehostEdit) -> Result<()> {
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        sqlx::query(
            "INSERT INTO rehost_edits (product_id, ticket_id, source_id, case_id,
                deskie_message_id, note, replace, state, reason, opened_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, 'open', NULL, ?)
             ON CONFLICT (product_id, ticket_id, source_id) DO UPDATE SET
                case_id = excluded.case_id, deskie_message_id = excluded.deskie_message_id,
                note = excluded.note, replace = excluded.replace, state = 'open', reason = NULL,
                opened_at = excluded.opened_at, finished_at = NULL",
        )
        .bind(key.product_id)
        .bind(key.ticket_id)
        .bind(edit.source_id)
        .bind(edit.case_id)
        .bind(edit.deskie_message_id)
        .bind(i64::from(edit.note))
        .bind(&edit.replace)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Closes the inline-image edit of message `source_id`: `done` when Deskie applied it, or
    /// failed with Deskie's `reason` when it refused it (the images keep their Desk360 links).
    pub async fn finish_rehost_edit(
        &self,
        key: TicketKey,
        source_id: i64,
        refused: Option<&str>,
    ) -> Result<()> {
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        sqlx::query(
            "UPDATE rehost_edits SET state = ?, reason = ?, finished_at = ?
             WHERE product_id = ? AND ticket_id = ? AND source_id = ?",
        )
        .bind(if refused.is_some() { "failed" } else { "done" })
        .bind(refused)
        .bind(now())
        .bind(key.product_id)
        .bind(key.ticket_id)
        .bind(source_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The inline-image edits journaled for one ticket, by message.
    pub async fn rehost_edits(&self, key: TicketKey) -> Result<Vec<RehostEdit>> {
        type Row = (i64, i64, i64, i64, String, String, Option<String>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT source_id, case_id, deskie_message_id, note, replace, state, reason
             FROM rehost_edits WHERE product_id = ? AND ticket_id = ? ORDER BY source_id",
        )
        .bind(key.product_id)
        .bind(key.ticket_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(source_id, case_id, deskie_message_id, note, replace, state, reason)| {
                    RehostEdit {
                        source_id,
                        case_id,
                        deskie_message_id,
                        note: note != 0,
                        replace,
                        state,
                        reason,
                    }
                },
            )
            .collect())
    }

    /// Inline-image edits over the whole store.
    pub async fn rehost_totals(&self) -> Result<RehostTotals> {
        let rows: Vec<(i64, i64, i64, String, Option<String>)> = sqlx::query_as(
            "SELECT product_id, ticket_id, source_id, state, reason FROM rehost_edits
             ORDER BY product_id, ticket_id, source_id",
        )
        .fetch_all(&self.read)
        .await?;
        let mut totals = RehostTotals::default();
        for (p, t, source_id, state, reason) in rows {
            match state.as_str() {
                "done" => totals.done += 1,
                "open" => totals.open += 1,
                _ => totals.failed.push((
                    TicketKey::new(p, t),
                    source_id,
                    reason.unwrap_or_default(),
                )),
            }
        }
        Ok(totals)
    }

    /// A deterministic sample of at most `n` attachment links spread over the tickets: the
    /// first file of evenly spaced tickets among those with files, in key order.
    pub async fn attachment_sample(&self, n: u32) -> Result<Vec<SampledLink>> {
        let rows: Vec<(i64, i64, String, String)> = sqlx::query_as(
            "WITH firsts AS (
                SELECT product_id, ticket_id, url, name,
                       ROW_NUMBER() OVER (PARTITION BY product_id, ticket_id
                                          ORDER BY position, idx) AS rn
                FROM attachments),
             numbered AS (
                SELECT product_id, ticket_id, url, name,
                       ROW_NUMBER() OVER (ORDER BY product_id, ticket_id) - 1 AS k,
                       COUNT(*) OVER () AS total
                FROM firsts WHERE rn = 1)
             SELECT product_id, ticket_id, url, name FROM numbered
             WHERE (k * ?1) % total < ?1
             ORDER BY product_id, ticket_id
             LIMIT ?1",
        )
        .bind(i64::from(n))
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(p, t, url, name)| SampledLink {
                key: TicketKey::new(p, t),
                name,
                url,
            })
            .collect())
    }

    /// Records the dry run's link check (the report shows the latest).
    pub async fn record_link_check(&self, check: &LinkCheck) -> Result<()> {
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        sqlx::query(
            "INSERT INTO attachment_link_checks (checked_at, sampled, not_public, expiring, detail)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(now())
        .bind(i64::try_from(check.sampled).unwrap_or(i64::MAX))
        .bind(i64::try_from(check.not_public).unwrap_or(i64::MAX))
        .bind(i64::try_from(check.expiring).unwrap_or(i64::MAX))
        .bind(check.detail.join("\n"))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The latest link check, if a dry run made one.
    pub async fn last_link_check(&self) -> Result<Option<LinkCheck>> {
        let row: Option<(String, i64, i64, i64, String)> = sqlx::query_as(
            "SELECT checked_at, sampled, not_public, expiring, detail
             FROM attachment_link_checks ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&self.read)
        .await?;
        Ok(
            row.map(|(checked_at, sampled, not_public, expiring, detail)| {
                let n = |v: i64| u64::try_from(v).unwrap_or(0);
                LinkCheck {
                    checked_at,
                    sampled: n(sampled),
                    not_public: n(not_public),
                    expiring: n(expiring),
                    detail: detail
                        .lines()
                        .filter(|l| !l.is_empty())
                        .map(str::to_owned)
                        .collect(),
                }
            }),
        )
    }
}

/// The rows of [`Store::record_files`], inside the group commit's transaction.
pub(crate) async fn insert_files(
    tx: &mut sqlx::SqliteConnection,
    key: TicketKey,
    files: &[FileRecord],
    at: &str,
) -> Result<()> {
    for f in files {
        let (outcome, status, reason) = f.outcome.columns();
        sqlx::query(
            "INSERT INTO attachment_files (product_id, ticket_id, write_kind, write_id, mode,
                url, name, size, outcome, status, reason, recorded_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (product_id, ticket_id, write_id, mode, url) DO UPDATE SET
                write_kind = excluded.write_kind, name = excluded.name,
                size = coalesce(excluded.size, size), outcome = excluded.outcome,
                status = excluded.status, reason = excluded.reason,
                recorded_at = excluded.recorded_at",
        )
        .bind(key.product_id)
        .bind(key.ticket_id)
        .bind(if f.create { "create" } else { "message" })
        .bind(f.write_id)
        .bind(f.mode.as_str())
        .bind(&f.url)
        .bind(&f.name)
        .bind(f.size.map(|s| i64::try_from(s).unwrap_or(i64::MAX)))
        .bind(outcome)
        .bind(status)
        .bind(reason)
        .bind(at)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}
