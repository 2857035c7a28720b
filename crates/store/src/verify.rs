//! What `verify` keeps in the store: its runs (scope, stated cost, where the case-list walk
//! stands, requests spent), what it saw of every Deskie case, which tickets' messages are checked,
//! and its findings. Each step is one transaction, so a killed `verify` started again with the same
//! scope resumes at the first page or ticket it had not recorded (schema: `0005_verify.sql`).
//!
//! The case-level comparisons are SQL joins between `case_map` and `verify_seen`, streamed in
//! pages of tickets, so checking 2 M cases keeps memory flat.

use std::collections::{BTreeMap, HashSet};

use model::TicketKey;
use serde::Serialize;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::error::Result;
use crate::rows::key_from_row;
use crate::{Store, TicketState, now};

/// One verification as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyRunRecord {
    /// Row id.
    pub id: i64,
    /// Canonical text of the scope; a run with the same scope resumes this one.
    pub scope: String,
    /// UTC civil time it started.
    pub started_at: String,
    /// UTC civil time it finished; `None` while running or after a kill.
    pub finished_at: Option<String>,
    /// The next case-list page to read.
    pub next_page: i64,
    /// Whether the case-list walk is over.
    pub list_done: bool,
    /// Whether the case-level findings are written.
    pub cases_done: bool,
    /// Case-list pages read.
    pub list_reads: u64,
    /// Cases read one by one (not shown by the walk).
    pub case_reads: u64,
    /// Message-list pages read.
    pub message_reads: u64,
    /// The cost stated before it started (JSON, written by the engine).
    pub plan: String,
}

/// How a case was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SeenVia {
    /// In the plain case list.
    List,
    /// Read by its id because the list did not show it.
    View,
}

/// What a verification saw of one Deskie case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeenCase {
    /// Deskie case id.
    pub case_id: i64,
    /// List or direct read.
    pub via: SeenVia,
    /// `false`: a direct read answered 404 (deleted permanently).
    pub found: bool,
    /// Deskie status text.
    pub status: Option<String>,
    /// Deskie priority text.
    pub priority: Option<String>,
    /// The ticket named by the case's source key custom field.
    pub source: Option<TicketKey>,
    /// The case's user.
    pub user_id: Option<i64>,
    /// Subject.
    pub subject: Option<String>,
    /// Creation time exactly as Deskie wrote it.
    pub created_at: Option<String>,
    /// In the trash.
    pub deleted: bool,
    /// Marked as spam.
    pub spam: bool,
}

/// A stored case with its ticket's source values and what the verification saw of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseCheckRow {
    /// The ticket.
    pub key: TicketKey,
    /// Its pipeline state.
    pub state: TicketState,
    /// Desk360 status code.
    pub status: Option<i64>,
    /// Desk360 priority code.
    pub priority: Option<i64>,
    /// The case the store maps it to.
    pub case_id: i64,
    /// Its number.
    pub case_number: String,
    /// What the verification saw of that case, if anything yet.
    pub seen: Option<SeenCase>,
}

/// A case that claims to be a ticket's besides the one the store maps it to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateRow {
    /// The ticket.
    pub key: TicketKey,
    /// The case the store maps it to.
    pub case_id: i64,
    /// The other case.
    pub other_case_id: i64,
}

/// A ticket in the scope of message-level checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeRow {
    /// The ticket.
    pub key: TicketKey,
    /// Desk360 `updated_at` of the stored detail (naive source time).
    pub updated_at: Option<String>,
    /// Replies + notes stored.
    pub messages: u64,
}

/// One problem a verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyFinding {
    /// `missing_case`, `trashed_case`, `duplicated_case`, `status`, `priority`,
    /// `missing_message`, `duplicated_message`, `out_of_order`, `unexpected_message`.
    pub kind: String,
    /// The ticket, when the finding is about one.
    pub key: Option<TicketKey>,
    /// The Deskie case.
    pub case_id: Option<i64>,
    /// The sentence shown to the reader.
    pub detail: String,
}

fn run_from_row(row: &SqliteRow) -> Result<VerifyRunRecord> {
    let n = |c: &str| -> Result<u64> { Ok(row.try_get::<i64, _>(c)?.max(0) as u64) };
    Ok(VerifyRunRecord {
        id: row.try_get("id")?,
        scope: row.try_get("scope")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        next_page: row.try_get("next_page")?,
        list_done: row.try_get::<i64, _>("list_done")? != 0,
        cases_done: row.try_get::<i64, _>("cases_done")? != 0,
        list_reads: n("list_reads")?,
        case_reads: n("case_reads")?,
        message_reads: n("message_reads")?,
        plan: row.try_get("plan")?,
    })
}

fn seen_from_row(row: &SqliteRow, prefix: &str) -> Result<Option<SeenCase>> {
    let col = |c: &str| format!("{prefix}{c}");
    let Some(case_id) = row.try_get::<Option<i64>, _>(col("case_id").as_str())? else {
        return Ok(None);
    };
    let via: String = row.try_get(col("via").as_str())?;
    let src_product: Option<i64> = row.try_get(col("src_product").as_str())?;
    let src_ticket: Option<i64> = row.try_get(col("src_ticket").as_str())?;
    Ok(Some(SeenCase {
        case_id,
        via: if via == "view" {
            SeenVia::View
        } else {
            SeenVia::List
        },
        found: row.try_get::<i64, _>(col("found").as_str())? != 0,
        status: row.try_get(col("status").as_str())?,
        priority: row.try_get(col("priority").as_str())?,
        source: src_product
            .zip(src_ticket)
            .map(|(p, t)| TicketKey::new(p, t)),
        user_id: row.try_get(col("user_id").as_str())?,
        subject: row.try_get(col("subject").as_str())?,
        created_at: row.try_get(col("created_at").as_str())?,
        deleted: row.try_get::<i64, _>(col("deleted").as_str())? != 0,
        spam: row.try_get::<i64, _>(col("spam").as_str())? != 0,
    }))
}

/// The `verify_runs` columns `run_from_row` reads, as a literal for `concat!` (queries stay
/// `&'static`).
macro_rules! run_columns {
    () => {
        "id, scope, started_at, finished_at, next_page, list_done, cases_done, list_reads, \
         case_reads, message_reads, plan"
    };
}

async fn upsert_seen(
    tx: &mut sqlx::SqliteConnection,
    verify_id: i64,
    seen: &SeenCase,
) -> Result<()> {
    sqlx::query(
        "INSERT OR REPLACE INTO verify_seen (verify_id, case_id, via, found, status, priority,
             src_product, src_ticket, user_id, subject, created_at, deleted, spam)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(verify_id)
    .bind(seen.case_id)
    .bind(match seen.via {
        SeenVia::List => "list",
        SeenVia::View => "view",
    })
    .bind(i64::from(seen.found))
    .bind(&seen.status)
    .bind(&seen.priority)
    .bind(seen.source.map(|k| k.product_id))
    .bind(seen.source.map(|k| k.ticket_id))
    .bind(seen.user_id)
    .bind(&seen.subject)
    .bind(&seen.created_at)
    .bind(i64::from(seen.deleted))
    .bind(i64::from(seen.spam))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn insert_findings(
    tx: &mut sqlx::SqliteConnection,
    verify_id: i64,
    findings: &[VerifyFinding],
) -> Result<()> {
    for f in findings {
        sqlx::query(
            "INSERT INTO verify_findings (verify_id, kind, product_id, ticket_id, case_id, detail)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(verify_id)
        .bind(&f.kind)
        .bind(f.key.map(|k| k.product_id))
        .bind(f.key.map(|k| k.ticket_id))
        .bind(f.case_id)
        .bind(&f.detail)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

impl Store {
    /// Starts a verification of `scope` with its stated cost `plan` (JSON).
    pub async fn begin_verify(&self, scope: &str, plan: &str) -> Result<VerifyRunRecord> {
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        let row = sqlx::query(concat!(
            "INSERT INTO verify_runs (scope, started_at, plan) VALUES (?, ?, ?) RETURNING ",
            run_columns!()
        ))
        .bind(scope)
        .bind(now())
        .bind(plan)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        run_from_row(&row)
    }

    /// The latest unfinished verification of exactly this scope: a restart resumes it.
    pub async fn resumable_verify(&self, scope: &str) -> Result<Option<VerifyRunRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            run_columns!(),
            " FROM verify_runs WHERE scope = ? AND finished_at IS NULL ORDER BY id DESC LIMIT 1"
        ))
        .bind(scope)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    /// The latest verification (finished or not), for the report.
    pub async fn latest_verify(&self) -> Result<Option<VerifyRunRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            run_columns!(),
            " FROM verify_runs ORDER BY id DESC LIMIT 1"
        ))
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    /// One verification by id.
    pub async fn verify_run(&self, id: i64) -> Result<Option<VerifyRunRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            run_columns!(),
            " FROM verify_runs WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    /// Records one case-list page: its cases, the next page to read, and whether the walk is over.
    pub async fn record_verify_page(
        &self,
        verify_id: i64,
        cases: &[SeenCase],
        next_page: i64,
        list_done: bool,
    ) -> Result<()> {
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        for seen in cases {
            // A case seen on two pages (it moved while the walk went on) keeps its latest view.
            upsert_seen(&mut tx, verify_id, seen).await?;
        }
        sqlx::query(
            "UPDATE verify_runs SET next_page = ?, list_done = ?, list_reads = list_reads + 1
             WHERE id = ?",
        )
        .bind(next_page)
        .bind(i64::from(list_done))
        .bind(verify_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a case read by its id (or its 404), counting the read.
    pub async fn record_verify_view(&self, verify_id: i64, seen: &SeenCase) -> Result<()> {
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        upsert_seen(&mut tx, verify_id, seen).await?;
        sqlx::query("UPDATE verify_runs SET case_reads = case_reads + 1 WHERE id = ?")
            .bind(verify_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Cases this store created in Deskie.
    pub async fn stored_case_count(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM case_map")
            .fetch_one(&self.read)
            .await?;
        Ok(n.max(0) as u64)
    }

    /// Stored cases the verification has not seen yet (neither in the list nor read), in key
    /// order after `after`, at most `limit`.
    pub async fn verify_unseen_cases(
        &self,
        verify_id: i64,
        after: Option<TicketKey>,
        limit: u32,
    ) -> Result<Vec<(TicketKey, i64)>> {
        let (ap, at) = after.map_or((i64::MIN, i64::MIN), |k| (k.product_id, k.ticket_id));
        let rows = sqlx::query(
            "SELECT m.product_id, m.ticket_id, m.case_id FROM case_map m
             WHERE (m.product_id, m.ticket_id) > (?, ?)
               AND NOT EXISTS (SELECT 1 FROM verify_seen s
                               WHERE s.verify_id = ? AND s.case_id = m.case_id)
             ORDER BY m.product_id, m.ticket_id LIMIT ?",
        )
        .bind(ap)
        .bind(at)
        .bind(verify_id)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok((key_from_row(r)?, r.try_get("case_id")?)))
            .collect()
    }

    /// Stored cases with their ticket's source codes and what the verification saw, in key
    /// order after `after`, at most `limit`.
    pub async fn verify_case_rows(
        &self,
        verify_id: i64,
        after: Option<TicketKey>,
        limit: u32,
    ) -> Result<Vec<CaseCheckRow>> {
        let (ap, at) = after.map_or((i64::MIN, i64::MIN), |k| (k.product_id, k.ticket_id));
        let rows = sqlx::query(
            "SELECT m.product_id, m.ticket_id, m.case_id AS map_case_id, m.case_number,
                    t.state, t.status AS src_status, t.priority AS src_priority,
                    s.case_id AS s_case_id, s.via AS s_via, s.found AS s_found,
                    s.status AS s_status, s.priority AS s_priority,
                    s.src_product AS s_src_product, s.src_ticket AS s_src_ticket,
                    s.user_id AS s_user_id, s.subject AS s_subject,
                    s.created_at AS s_created_at, s.deleted AS s_deleted, s.spam AS s_spam
             FROM case_map m
             JOIN tickets t ON t.product_id = m.product_id AND t.ticket_id = m.ticket_id
             LEFT JOIN verify_seen s ON s.verify_id = ? AND s.case_id = m.case_id
             WHERE (m.product_id, m.ticket_id) > (?, ?)
             ORDER BY m.product_id, m.ticket_id LIMIT ?",
        )
        .bind(verify_id)
        .bind(ap)
        .bind(at)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                let state: String = r.try_get("state")?;
                Ok(CaseCheckRow {
                    key: key_from_row(r)?,
                    state: state
                        .parse()
                        .map_err(|e| crate::StoreError::Corrupt(format!("{e}")))?,
                    status: r.try_get("src_status")?,
                    priority: r.try_get("src_priority")?,
                    case_id: r.try_get("map_case_id")?,
                    case_number: r.try_get("case_number")?,
                    seen: seen_from_row(r, "s_")?,
                })
            })
            .collect()
    }

    /// Cases the verification saw that claim a stored ticket whose case is another one: by the
    /// source key custom field when `by_source_key`, else by the same user, subject and creation
    /// time as the stored case (what a repeated create produces).
    pub async fn verify_duplicates(
        &self,
        verify_id: i64,
        by_source_key: bool,
    ) -> Result<Vec<DuplicateRow>> {
        let sql = if by_source_key {
            "SELECT m.product_id, m.ticket_id, m.case_id, s.case_id AS other
             FROM verify_seen s
             JOIN case_map m ON m.product_id = s.src_product AND m.ticket_id = s.src_ticket
             WHERE s.verify_id = ? AND s.found = 1 AND s.case_id != m.case_id
             ORDER BY m.product_id, m.ticket_id, s.case_id"
        } else {
            "SELECT m.product_id, m.ticket_id, m.case_id, o.case_id AS other
             FROM verify_seen k
             JOIN case_map m ON m.case_id = k.case_id
             JOIN verify_seen o ON o.verify_id = k.verify_id AND o.user_id = k.user_id
                               AND o.created_at = k.created_at AND o.subject IS k.subject
                               AND o.case_id != k.case_id AND o.found = 1
             WHERE k.verify_id = ? AND k.found = 1
               AND NOT EXISTS (SELECT 1 FROM case_map x WHERE x.case_id = o.case_id)
             ORDER BY m.product_id, m.ticket_id, o.case_id"
        };
        let rows = sqlx::query(sql)
            .bind(verify_id)
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(DuplicateRow {
                    key: key_from_row(r)?,
                    case_id: r.try_get("case_id")?,
                    other_case_id: r.try_get("other")?,
                })
            })
            .collect()
    }

    /// Writes the case-level findings and marks that phase done, in one transaction.
    pub async fn finish_verify_cases(
        &self,
        verify_id: i64,
        findings: &[VerifyFinding],
    ) -> Result<()> {
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        // A kill between two calls of an earlier attempt must not double the findings.
        sqlx::query(
            "DELETE FROM verify_findings WHERE verify_id = ? AND kind IN
             ('missing_case', 'trashed_case', 'duplicated_case', 'status', 'priority')",
        )
        .bind(verify_id)
        .execute(&mut *tx)
        .await?;
        insert_findings(&mut tx, verify_id, findings).await?;
        sqlx::query("UPDATE verify_runs SET cases_done = 1 WHERE id = ?")
            .bind(verify_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Tickets with a case in the store, in state loaded or failed, optionally of one product and
    /// updated (source time) at or after `since`, in key order after `after`, at most `limit`.
    pub async fn verify_scope_rows(
        &self,
        product: Option<i64>,
        since: Option<&str>,
        after: Option<TicketKey>,
        limit: u32,
    ) -> Result<Vec<ScopeRow>> {
        let (ap, at) = after.map_or((i64::MIN, i64::MIN), |k| (k.product_id, k.ticket_id));
        // `+t.state`: walk the case map's key range; with the state index SQLite would read and
        // sort every loaded ticket for each page (2 s a page at 2 M tickets).
        let rows = sqlx::query(
            "SELECT t.product_id, t.ticket_id, t.detail_updated_at,
                    t.message_count + t.note_count AS n
             FROM case_map m
             JOIN tickets t ON t.product_id = m.product_id AND t.ticket_id = m.ticket_id
             WHERE (m.product_id, m.ticket_id) > (?, ?)
               AND +t.state IN ('loaded', 'failed')
               AND (? IS NULL OR t.product_id = ?)
               AND (? IS NULL OR t.detail_updated_at >= ?)
             ORDER BY m.product_id, m.ticket_id LIMIT ?",
        )
        .bind(ap)
        .bind(at)
        .bind(product)
        .bind(product)
        .bind(since)
        .bind(since)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ScopeRow {
                    key: key_from_row(r)?,
                    updated_at: r.try_get("detail_updated_at")?,
                    messages: r.try_get::<i64, _>("n")?.max(0) as u64,
                })
            })
            .collect()
    }

    /// Tickets whose message-level check is done in this verification.
    pub async fn verify_done_keys(&self, verify_id: i64) -> Result<HashSet<TicketKey>> {
        let rows = sqlx::query("SELECT product_id, ticket_id FROM verify_done WHERE verify_id = ?")
            .bind(verify_id)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Records one ticket's message-level check: its findings and the reads it cost.
    pub async fn record_verify_ticket(
        &self,
        verify_id: i64,
        key: TicketKey,
        findings: &[VerifyFinding],
        reads: u64,
    ) -> Result<()> {
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        let inserted = sqlx::query(
            "INSERT OR IGNORE INTO verify_done (verify_id, product_id, ticket_id) VALUES (?, ?, ?)",
        )
        .bind(verify_id)
        .bind(key.product_id)
        .bind(key.ticket_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 1 {
            insert_findings(&mut tx, verify_id, findings).await?;
        }
        sqlx::query("UPDATE verify_runs SET message_reads = message_reads + ? WHERE id = ?")
            .bind(reads as i64)
            .bind(verify_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks a verification finished.
    pub async fn finish_verify(&self, verify_id: i64) -> Result<()> {
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        sqlx::query("UPDATE verify_runs SET finished_at = ? WHERE id = ?")
            .bind(now())
            .bind(verify_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Findings of a verification, by kind.
    pub async fn verify_finding_counts(&self, verify_id: i64) -> Result<BTreeMap<String, u64>> {
        let rows = sqlx::query(
            "SELECT kind, count(*) AS n FROM verify_findings WHERE verify_id = ? GROUP BY kind",
        )
        .bind(verify_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("kind")?, r.try_get::<i64, _>("n")?.max(0) as u64)))
            .collect()
    }

    /// The first `limit` findings of a verification, ticket by ticket.
    pub async fn verify_findings(&self, verify_id: i64, limit: u32) -> Result<Vec<VerifyFinding>> {
        let rows = sqlx::query(
            "SELECT kind, product_id, ticket_id, case_id, detail FROM verify_findings
             WHERE verify_id = ? ORDER BY product_id, ticket_id, id LIMIT ?",
        )
        .bind(verify_id)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                let p: Option<i64> = r.try_get("product_id")?;
                let t: Option<i64> = r.try_get("ticket_id")?;
                Ok(VerifyFinding {
                    kind: r.try_get("kind")?,
                    key: p.zip(t).map(|(p, t)| TicketKey::new(p, t)),
                    case_id: r.try_get("case_id")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }
}
