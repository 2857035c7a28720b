//! The report's "Attachments" section (issue #12): files and bytes per way they reached Deskie
//! (uploaded, linked as a Desk360 URL, inline images rehosted), every file that could not go
//! with the reason and what to do, and the dry run's check of `urls`-mode links. Built from the
//! store's per-file outcomes ([`store::Store::visit_file_outcomes`]), the inline-image edit
//! journal, the unreadable attachment entries kept with the tickets' source warnings, and the
//! latest link check; shown by both renderings through [`doc_section`].

use serde::Serialize;
use store::{FileMode, FileOutcome, Store};

use super::doc::{Block, Section, Table, Tone, text};
use super::{Alert, LIST_CAP, Level, fmt_bytes};
use crate::config::{AttachmentMode, InlineMode, Settings};
use crate::error::Result;

/// What happened to the attachments.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AttachmentsSection {
    /// `[attachments] mode`: `upload` or `urls`.
    pub mode: String,
    /// `[attachments] inline`: `rehost` or `keep`.
    pub inline: String,
    /// Files sent as multipart parts with their message, now in Deskie.
    pub uploaded: FileTotals,
    /// Files sent as `attachment_urls` to Desk360 storage, now linked from Deskie.
    pub linked: FileTotals,
    /// Inline images uploaded with their message (`inline = "rehost"`), now in Deskie.
    pub inline_uploaded: FileTotals,
    /// Messages whose inline images were re-pointed at the Deskie copies.
    pub rehosted_messages: u64,
    /// Re-pointing edits still to send (the next run sends them).
    pub rehost_edits_open: u64,
    /// Files that go with a write not in Deskie yet.
    pub pending: FileTotals,
    /// Files that could not go, in all.
    pub failures_total: u64,
    /// The first [`LIST_CAP`] of them.
    pub failures: Vec<FileFailure>,
    /// The latest dry-run check of `urls`-mode links, when one ran.
    pub link_check: Option<store::LinkCheck>,
}

/// A count of files and their bytes (sizes Desk360 or the download gave).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FileTotals {
    /// Files.
    pub files: u64,
    /// Bytes.
    pub bytes: u64,
}

impl FileTotals {
    fn add(&mut self, size: Option<u64>) {
        self.files += 1;
        self.bytes += size.unwrap_or(0);
    }
}

/// One file that did not reach Deskie (or an inline image left pointing at Desk360).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileFailure {
    /// `product/ticket`.
    pub ticket: String,
    /// The file's name (or what identifies it).
    pub file: String,
    /// Why.
    pub reason: String,
    /// What to do about it.
    pub fix: String,
    /// Where it can still be downloaded, when known (data, never fetched by the report).
    pub url: Option<String>,
}

/// The sentence of the content warnings about files over Deskie's limits, saying what the
/// configured mode does with them.
pub(super) fn oversize_sentence(mode: &str, files: u64, bytes: u64) -> String {
    let what = if mode == "urls" {
        "exceed Deskie's limits (25 MB a file, 50 MB a request) and are not linked: Deskie will not have them"
    } else {
        "exceed Deskie's 25 MB a file and are not uploaded: Deskie will not have them (files over 50 MB a message together are not dropped, they go in follow-up notes)"
    };
    format!(
        "{files} attachments ({}) {what}; download each from its Desk360 URL below and attach it in Deskie by hand before the Desk360 account closes.",
        fmt_bytes(bytes)
    )
}

/// Builds the section from the store.
pub(super) async fn section(store: &Store, settings: &Settings) -> Result<AttachmentsSection> {
    let mut s = AttachmentsSection {
        mode: match settings.attachments.mode {
            AttachmentMode::Upload => "upload",
            AttachmentMode::Urls => "urls",
        }
        .to_owned(),
        inline: match settings.attachments.inline {
            InlineMode::Rehost => "rehost",
            InlineMode::Keep => "keep",
        }
        .to_owned(),
        link_check: store.last_link_check().await?,
        ..AttachmentsSection::default()
    };
    store
        .visit_file_outcomes(|row| {
            let f = &row.record;
            if f.outcome == FileOutcome::Attached {
                let totals = match (row.written, f.mode) {
                    (false, _) => &mut s.pending,
                    (true, FileMode::Upload) => &mut s.uploaded,
                    (true, FileMode::Url) => &mut s.linked,
                    (true, FileMode::Inline) => &mut s.inline_uploaded,
                };
                totals.add(f.size);
                return;
            }
            let (reason, fix) = failure_text(&f.outcome, f.size);
            push(
                &mut s,
                FileFailure {
                    ticket: row.key.to_string(),
                    file: f.name.clone(),
                    reason,
                    fix,
                    url: Some(f.url.clone()),
                },
            );
        })
        .await?;
    for (key, lines) in store.source_warnings().await? {
        for line in lines.iter().filter(|l| is_unreadable_entry(l)) {
            push(
                &mut s,
                FileFailure {
                    ticket: key.to_string(),
                    file: "(an attachment entry)".into(),
                    reason: line.clone(),
                    fix: "Desk360's ticket gave no address for this file: download it from the ticket in the Desk360 panel and attach it in Deskie by hand".into(),
                    url: None,
                },
            );
        }
    }
    let edits = store.rehost_totals().await?;
    s.rehosted_messages = edits.done;
    s.rehost_edits_open = edits.open;
    for (key, message, reason) in edits.failed {
        push(
            &mut s,
            FileFailure {
                ticket: key.to_string(),
                file: format!("inline images of Desk360 message {message}"),
                reason,
                fix: "the message still shows them from Desk360 storage: edit it in Deskie and insert the attached copies before the Desk360 account closes".into(),
                url: None,
            },
        );
    }
    Ok(s)
}

fn push(s: &mut AttachmentsSection, f: FileFailure) {
    s.failures_total += 1;
    if s.failures.len() < LIST_CAP {
        s.failures.push(f);
    }
}

/// Whether a source-warning line is an attachment entry Desk360 sent without a usable address
/// (written by `desk360::normalize`).
fn is_unreadable_entry(line: &str) -> bool {
    line.contains("attachment") && line.contains("has no URL")
}

/// The reason and the fix for a file that did not go.
fn failure_text(outcome: &FileOutcome, size: Option<u64>) -> (String, String) {
    let by_hand = "download it from its Desk360 URL and attach it in Deskie by hand";
    match outcome {
        FileOutcome::Attached => (String::new(), String::new()),
        FileOutcome::TooLarge => (
            format!(
                "over Deskie's 25 MB a file ({})",
                size.map_or_else(|| "size unknown".to_owned(), fmt_bytes)
            ),
            format!("{by_hand} (or share it through a link)"),
        ),
        FileOutcome::Refused { status, reason } => {
            let fix = match status {
                Some(401) => "the storage wants Desk360 credentials the configured user does not have: give that user access and run `deskie-import retry-failed`, or download it in the Desk360 panel and attach it by hand".to_owned(),
                Some(403) | Some(410) => format!("the link is refused or expired: {by_hand} after opening the ticket in the Desk360 panel (which signs a fresh link)"),
                Some(404) => "Desk360 no longer has the file: nothing can bring it over".to_owned(),
                _ => by_hand.to_owned(),
            };
            let status = status.map_or_else(String::new, |s| format!(" (HTTP {s})"));
            (format!("refused by its storage{status}: {reason}"), fix)
        }
        FileOutcome::Failed { reason } => (
            reason.clone(),
            "transient: `deskie-import run` (or `retry-failed`) tries the ticket again".into(),
        ),
    }
}

/// The alerts this section raises: the link check's warning, and a notice for files that did
/// not go.
pub(super) fn alerts(s: &AttachmentsSection) -> Vec<Alert> {
    let mut out = Vec::new();
    if let Some(check) = &s.link_check
        && let Some(message) = crate::attachments::link_warning(check)
    {
        out.push(Alert {
            level: Level::Warning,
            code: "attachment_links_not_public".into(),
            message,
        });
    }
    if s.failures_total > 0 {
        out.push(Alert {
            level: Level::Notice,
            code: "attachment_failures".into(),
            message: format!(
                "{} attachments could not be migrated (see Attachments for each file, why, and what to do)",
                s.failures_total
            ),
        });
    }
    out
}

/// One line per way files went, for both renderings: (label, files, bytes).
fn lines(s: &AttachmentsSection) -> Vec<(&'static str, FileTotals)> {
    vec![
        ("uploaded with their message", s.uploaded),
        ("linked as their Desk360 URL", s.linked),
        ("inline images uploaded (rehost)", s.inline_uploaded),
        ("waiting for their message to be written", s.pending),
    ]
}

/// What the configured mode does, in one sentence.
fn mode_sentence(s: &AttachmentsSection) -> String {
    let files = if s.mode == "urls" {
        "mode = \"urls\": files are sent as links to Desk360 storage, which Deskie fetches; they break once those links need credentials, expire, or the Desk360 account closes"
    } else {
        "mode = \"upload\": every file is downloaded from Desk360 and uploaded with its message, so it stays in Deskie after the Desk360 account closes"
    };
    let inline = if s.inline == "rehost" && s.mode == "upload" {
        "inline images on Desk360 storage are uploaded with their message, which is then edited to show the Deskie copy"
    } else {
        "inline images keep their Desk360 address"
    };
    format!("{files}; {inline}.")
}

/// The section both renderings show.
pub(super) fn doc_section(s: &AttachmentsSection) -> Section {
    let mut sec = Section::new("Attachments");
    sec.para(Tone::Plain, mode_sentence(s));
    let mut t = Table::new(&["files", "count", "bytes"], &[false, true, true]);
    for (label, totals) in lines(s) {
        t.row([
            label.to_string(),
            totals.files.to_string(),
            fmt_bytes(totals.bytes),
        ]);
    }
    sec.push(Block::Table(t));
    sec.para(
        Tone::Plain,
        format!(
            "Messages whose inline images now show the Deskie copy: {} ({} edits still to send).",
            s.rehosted_messages, s.rehost_edits_open
        ),
    );
    if let Some(c) = &s.link_check {
        sec.para(
            Tone::Plain,
            format!(
                "Link check of the dry run ({} UTC): {} links fetched without credentials, {} refused, {} expiring.",
                c.checked_at, c.sampled, c.not_public, c.expiring
            ),
        );
        if !c.detail.is_empty() {
            sec.push(Block::List(
                c.detail.iter().map(|d| vec![text(d)]).collect(),
            ));
        }
    }
    sec.para(
        Tone::Plain,
        format!("{} attachments could not be migrated.", s.failures_total),
    );
    if !s.failures.is_empty() {
        let mut t = Table::new(
            &["ticket", "file", "reason", "what to do"],
            &[false, false, false, false],
        );
        for f in &s.failures {
            t.row([
                f.ticket.clone(),
                f.file.clone(),
                f.reason.clone(),
                f.fix.clone(),
            ]);
        }
        sec.push(Block::Table(t));
    }
    sec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_say_why_and_what_to_do() {
        let (why, fix) = failure_text(
            &FileOutcome::Refused {
                status: Some(401),
                reason: "behind the token".into(),
            },
            None,
        );
        assert!(
            why.contains("HTTP 401") && why.contains("behind the token"),
            "{why}"
        );
        assert!(fix.contains("retry-failed"), "{fix}");
        let (why, fix) = failure_text(&FileOutcome::TooLarge, Some(30_000_000));
        assert!(why.contains("30.0 MB"), "{why}");
        assert!(fix.contains("by hand"), "{fix}");
        assert!(is_unreadable_entry(
            "message 5: file attachment \"a.pdf\" has no URL and cannot be migrated"
        ));
        assert!(!is_unreadable_entry(
            "message 5: unknown type kept as a note"
        ));
    }

    #[test]
    fn the_oversize_sentence_says_what_each_mode_did() {
        let up = oversize_sentence("upload", 2, 60_000_000);
        assert!(
            up.contains("not uploaded") && up.contains("follow-up notes"),
            "{up}"
        );
        assert!(!up.contains("stay at their Desk360 URL"), "{up}");
        let urls = oversize_sentence("urls", 1, 30_000_000);
        assert!(urls.contains("not linked"), "{urls}");
    }

    #[test]
    fn both_renderings_show_totals_and_each_failure() {
        let s = AttachmentsSection {
            mode: "upload".into(),
            inline: "rehost".into(),
            uploaded: FileTotals {
                files: 3,
                bytes: 3_000_000,
            },
            rehosted_messages: 2,
            failures_total: 1,
            failures: vec![FileFailure {
                ticket: "1/2".into(),
                file: "a|b.pdf".into(),
                reason: "refused by its storage (HTTP 403): <expired>".into(),
                fix: "by hand".into(),
                url: None,
            }],
            ..AttachmentsSection::default()
        };
        let md = super::super::markdown::section(&doc_section(&s));
        assert!(
            md.contains("| uploaded with their message | 3 | 3.0 MB |"),
            "{md}"
        );
        assert!(md.contains("| 1/2 | a\\|b.pdf |"), "{md}");
        let h = super::super::html::section(&doc_section(&s)).into_string();
        assert!(h.contains("&lt;expired&gt;"), "{h}");
        assert!(h.contains("<h2>Attachments</h2>"));
    }
}
