//! Before and after the real run: the preflight findings and its probe journal, the trial
//! selection (`run --limit N`, `run --ticket P/T`), and the rollback journal that deletes the
//! cases this store created and hands their tickets back to the loader.
//!
//! The rollback follows the same rule as every write of the loader: an intent is committed (and
//! fsynced) before the DELETE is sent and completed, in one transaction with clearing the
//! ticket's case map, message map and final state, after Deskie confirmed it. An intent still
//! open at the next start is a delete of unknown outcome, settled by reading Deskie first.

use model::TicketKey;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::error::Result;
use crate::listing::{insert_pending, requeue_changed};
use crate::rows::key_from_row;
use crate::{CaseRef, ListedTicket, Store, StoreError, now};

/// Page number of the batch that holds tickets a trial fetched without recording their list
/// page (Desk360 pages start at 1, so it never collides with a listed page).
pub const TRIAL_BATCH_PAGE: i64 = 0;

/// The newest findings of `preflight`, as the engine recorded them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreflightRecord {
    /// When they were recorded (UTC, `YYYY-MM-DDTHH:MM:SS`).
    pub recorded_at: String,
    /// Whether the probe case was written (false for `preflight --no-probe`).
    pub probed: bool,
    /// The engine's findings document (JSON).
    pub findings: String,
}

/// Row id of a preflight probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProbeId(pub i64);

/// A probe case a preflight created (or was about to) and has not cleaned up yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeRecord {
    /// Its row id.
    pub id: ProbeId,
    /// The probe customer's address (under `.invalid`).
    pub address: String,
    /// The value written into `target.source_id_field`.
    pub marker: String,
    /// The Deskie case, once known.
    pub case_id: Option<i64>,
    /// The Deskie user the case created, once known.
    pub user_id: Option<i64>,
}

/// Row id of a rollback intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RollbackId(pub i64);

/// A case delete journaled before it was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackIntent {
    /// Its row id.
    pub id: RollbackId,
    /// The ticket whose case is deleted.
    pub key: TicketKey,
    /// The Deskie case id.
    pub case_id: i64,
}

impl Store {
    /// Records the findings of one preflight (the newest row is the one `run` follows).
    pub async fn record_preflight(&self, probed: bool, findings: &str) -> Result<()> {
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        sqlx::query(
            "INSERT INTO preflight_findings (recorded_at, probed, findings) VALUES (?, ?, ?)",
        )
        .bind(now())
        .bind(probed)
        .bind(findings)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The newest findings recorded by `preflight`, if any; with `probed_only`, the newest of a
    /// preflight that wrote its probe case.
    pub async fn last_preflight(&self, probed_only: bool) -> Result<Option<PreflightRecord>> {
        let row = sqlx::query(
            "SELECT recorded_at, probed, findings FROM preflight_findings
             WHERE probed = 1 OR ? = 0 ORDER BY id DESC LIMIT 1",
        )
        .bind(probed_only)
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| {
            Ok(PreflightRecord {
                recorded_at: r.try_get("recorded_at")?,
                probed: r.try_get("probed")?,
                findings: r.try_get("findings")?,
            })
        })
        .transpose()
    }

    /// Journals a probe case before it is created (fsynced, like every write intent).
    pub async fn open_probe(&self, address: &str, marker: &str) -> Result<ProbeId> {
        // Fsynced (FULL, set by the BEGIN; the next write transaction sets NORMAL back).
        let mut w = self.writer().await?;
        let mut tx = w.begin_durable().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO preflight_probes (address, marker, state, created_at)
             VALUES (?, ?, 'open', ?) RETURNING id",
        )
        .bind(address)
        .bind(marker)
        .bind(now())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ProbeId(id))
    }

    /// Records the probe case and user Deskie answered with.
    pub async fn probe_created(
        &self,
        id: ProbeId,
        case_id: i64,
        user_id: Option<i64>,
    ) -> Result<()> {
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        sqlx::query("UPDATE preflight_probes SET case_id = ?, user_id = ? WHERE id = ?")
            .bind(case_id)
            .bind(user_id)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks a probe cleaned up: its case and user are gone from Deskie (or never existed).
    pub async fn probe_cleaned(&self, id: ProbeId) -> Result<()> {
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        sqlx::query("UPDATE preflight_probes SET state = 'cleaned', finished_at = ? WHERE id = ?")
            .bind(now())
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Probes an earlier preflight left behind (killed before it deleted them), oldest first.
    pub async fn open_probes(&self) -> Result<Vec<ProbeRecord>> {
        let rows = sqlx::query(
            "SELECT id, address, marker, case_id, user_id FROM preflight_probes
             WHERE state = 'open' ORDER BY id",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ProbeRecord {
                    id: ProbeId(r.try_get("id")?),
                    address: r.try_get("address")?,
                    marker: r.try_get("marker")?,
                    case_id: r.try_get("case_id")?,
                    user_id: r.try_get("user_id")?,
                })
            })
            .collect()
    }

    /// Records tickets a trial picked without recording their list page (newest first across
    /// products, or named with `--ticket`), in batch page [`TRIAL_BATCH_PAGE`] of their product,
    /// in one transaction. A new ticket becomes `pending`; one already stored with the same
    /// `updated_at` keeps its state; one whose `updated_at` changed goes back to `pending` (its
    /// case and maps kept, its final-state mark cleared), as a list page would do. Returns the
    /// tickets whose detail must be fetched (new, changed or still pending). The list cursor is
    /// not touched: the next full run lists from where it stood and finds these unchanged.
    pub async fn record_selected(
        &self,
        product_id: i64,
        listed: &[ListedTicket],
    ) -> Result<Vec<TicketKey>> {
        let stamp = now();
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        let batch_id: i64 = sqlx::query_scalar(
            "INSERT INTO batches (product_id, page, ticket_count, listed_at) VALUES (?, ?, 0, ?)
             ON CONFLICT (product_id, page) DO UPDATE SET listed_at = excluded.listed_at
             RETURNING id",
        )
        .bind(product_id)
        .bind(TRIAL_BATCH_PAGE)
        .bind(&stamp)
        .fetch_one(&mut *tx)
        .await?;
        let mut to_fetch = Vec::new();
        for item in listed {
            let key = TicketKey::new(product_id, item.ticket_id);
            let existing: Option<(String, String)> = sqlx::query_as(
                "SELECT state, listed_updated_at FROM tickets
                 WHERE product_id = ? AND ticket_id = ?",
            )
            .bind(product_id)
            .bind(item.ticket_id)
            .fetch_optional(&mut *tx)
            .await?;
            let fetch = match existing {
                None => {
                    insert_pending(&mut tx, product_id, batch_id, item, &stamp).await?;
                    true
                }
                Some((state, listed_at)) if listed_at == item.updated_at => state == "pending",
                Some((state, _)) if state == "loading" => {
                    return Err(StoreError::InvalidState(format!(
                        "ticket {key} is being loaded by another run"
                    )));
                }
                Some(_) => {
                    requeue_changed(&mut tx, product_id, None, item, &stamp).await?;
                    true
                }
            };
            if fetch && !to_fetch.contains(&key) {
                to_fetch.push(key);
            }
        }
        sqlx::query(
            "UPDATE batches SET ticket_count =
                (SELECT count(*) FROM tickets WHERE batch_id = ?) WHERE id = ?",
        )
        .bind(batch_id)
        .bind(batch_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(to_fetch)
    }

    /// Replaces the trial selection with `keys` (every key must be a stored ticket).
    pub async fn set_trial_selection(&self, keys: &[TicketKey]) -> Result<()> {
        let stamp = now();
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        sqlx::query("DELETE FROM trial_selection")
            .execute(&mut *tx)
            .await?;
        for key in keys {
            let exists: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM tickets WHERE product_id = ? AND ticket_id = ?)",
            )
            .bind(key.product_id)
            .bind(key.ticket_id)
            .fetch_one(&mut *tx)
            .await?;
            if !exists {
                return Err(StoreError::NotFound(format!("ticket {key}")));
            }
            sqlx::query(
                "INSERT OR IGNORE INTO trial_selection (product_id, ticket_id, selected_at)
                 VALUES (?, ?, ?)",
            )
            .bind(key.product_id)
            .bind(key.ticket_id)
            .bind(&stamp)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The tickets of the current trial selection, in key order.
    pub async fn trial_selection(&self) -> Result<Vec<TicketKey>> {
        let rows = sqlx::query(
            "SELECT product_id, ticket_id FROM trial_selection ORDER BY product_id, ticket_id",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// [`Store::claim_for_load`] restricted to the trial selection: atomically moves up to
    /// `limit` selected `extracted` tickets to `loading`.
    pub async fn claim_for_load_selected(&self, limit: u32) -> Result<Vec<TicketKey>> {
        self.claim(
            sqlx::query(
                "UPDATE tickets SET state = 'loading'
                 WHERE rowid IN (SELECT t.rowid FROM tickets t
                                 JOIN trial_selection s
                                   ON s.product_id = t.product_id AND s.ticket_id = t.ticket_id
                                 WHERE t.state = 'extracted'
                                 ORDER BY t.batch_id LIMIT ?)
                 RETURNING product_id, ticket_id, batch_id",
            )
            .bind(i64::from(limit)),
        )
        .await
    }

    /// The cases this store created, with their tickets: every one (`None`) or those of the
    /// given tickets, in key order. This is the only list a rollback deletes from.
    pub async fn created_cases(
        &self,
        only: Option<&[TicketKey]>,
    ) -> Result<Vec<(TicketKey, CaseRef)>> {
        let rows = sqlx::query(
            "SELECT product_id, ticket_id, case_id, case_number, user_id FROM case_map
             ORDER BY product_id, ticket_id",
        )
        .fetch_all(&self.read)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let key = key_from_row(r)?;
            if only.is_some_and(|keys| !keys.contains(&key)) {
                continue;
            }
            out.push((
                key,
                CaseRef {
                    case_id: r.try_get("case_id")?,
                    case_number: r.try_get("case_number")?,
                    user_id: r.try_get("user_id")?,
                },
            ));
        }
        Ok(out)
    }

    /// Journals the deletes of `cases` (a bulk request's worth) before they are sent, in one
    /// fsynced transaction. A ticket whose delete is already open keeps that intent.
    pub async fn open_rollback(&self, cases: &[(TicketKey, i64)]) -> Result<Vec<RollbackIntent>> {
        // Fsynced (FULL, set by the BEGIN; the next write transaction sets NORMAL back).
        let mut w = self.writer().await?;
        let mut tx = w.begin_durable().await?;
        let stamp = now();
        let mut out = Vec::new();
        for (key, case_id) in cases {
            let existing: Option<(i64, i64)> = sqlx::query_as(
                "SELECT id, case_id FROM rollback_intents
                 WHERE product_id = ? AND ticket_id = ? AND state = 'open'",
            )
            .bind(key.product_id)
            .bind(key.ticket_id)
            .fetch_optional(&mut *tx)
            .await?;
            let (id, case_id) = match existing {
                Some(found) => found,
                None => {
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO rollback_intents (product_id, ticket_id, case_id, state,
                                                       created_at)
                         VALUES (?, ?, ?, 'open', ?) RETURNING id",
                    )
                    .bind(key.product_id)
                    .bind(key.ticket_id)
                    .bind(case_id)
                    .bind(&stamp)
                    .fetch_one(&mut *tx)
                    .await?;
                    (id, *case_id)
                }
            };
            out.push(RollbackIntent {
                id: RollbackId(id),
                key: *key,
                case_id,
            });
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Completes deletes Deskie confirmed, in ONE transaction: each intent is done, and its
    /// ticket loses its case map, message map and final-state mark, its load failure and its
    /// open load intents (their case is gone), and goes back to `extracted` (`pending` when a
    /// newer listing was never fetched) as if it had never been loaded, so the next `run`
    /// migrates it again. An intent that is no longer open is left as it is.
    pub async fn complete_rollback(&self, intents: &[RollbackIntent]) -> Result<()> {
        let stamp = now();
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        for intent in intents {
            let key = intent.key;
            let done = sqlx::query(
                "UPDATE rollback_intents SET state = 'done', finished_at = ?
                 WHERE id = ? AND state = 'open'",
            )
            .bind(&stamp)
            .bind(intent.id.0)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                continue;
            }
            let mapped: Option<i64> = sqlx::query_scalar(
                "SELECT case_id FROM case_map WHERE product_id = ? AND ticket_id = ?",
            )
            .bind(key.product_id)
            .bind(key.ticket_id)
            .fetch_optional(&mut *tx)
            .await?;
            if mapped.is_some_and(|c| c != intent.case_id) {
                return Err(StoreError::InvalidState(format!(
                    "ticket {key} is mapped to another case than the deleted case {}",
                    intent.case_id
                )));
            }
            for statement in [
                "DELETE FROM case_map WHERE product_id = ? AND ticket_id = ?",
                "DELETE FROM message_map WHERE product_id = ? AND ticket_id = ?",
                "DELETE FROM final_state WHERE product_id = ? AND ticket_id = ?",
            ] {
                sqlx::query(statement)
                    .bind(key.product_id)
                    .bind(key.ticket_id)
                    .execute(&mut *tx)
                    .await?;
            }
            crate::rows::on_ticket(
                &mut tx,
                key,
                sqlx::query(
                    "UPDATE intents SET state = 'abandoned', finished_at = ?
                 WHERE product_id = ? AND ticket_id = ? AND state = 'open'",
                )
                .bind(&stamp),
            )
            .await?;
            crate::rows::forget_failures(&mut tx, key, crate::Stage::Load).await?;
            crate::rows::on_ticket(
                &mut tx,
                key,
                sqlx::query(
                    "UPDATE tickets SET
                    state = CASE WHEN fetched_updated_at IS listed_updated_at
                                 THEN 'extracted' ELSE 'pending' END,
                    reload = 0, loaded_at = NULL, failure_stage = NULL, failure_class = NULL,
                    skip_reason = NULL
                 WHERE product_id = ? AND ticket_id = ?",
                ),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Closes delete intents known not to have happened (Deskie refused them), leaving their
    /// tickets as they are.
    pub async fn abandon_rollback(&self, intents: &[RollbackIntent]) -> Result<()> {
        let stamp = now();
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        for intent in intents {
            sqlx::query(
                "UPDATE rollback_intents SET state = 'abandoned', finished_at = ?
                 WHERE id = ? AND state = 'open'",
            )
            .bind(&stamp)
            .bind(intent.id.0)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes an earlier rollback left open (killed between journaling and confirming), oldest
    /// first: each is settled by reading Deskie before anything else is deleted.
    pub async fn open_rollbacks(&self) -> Result<Vec<RollbackIntent>> {
        let rows = sqlx::query(
            "SELECT id, product_id, ticket_id, case_id FROM rollback_intents
             WHERE state = 'open' ORDER BY id",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RollbackIntent {
                    id: RollbackId(r.try_get("id")?),
                    key: key_from_row(r)?,
                    case_id: r.try_get("case_id")?,
                })
            })
            .collect()
    }
}
