//! Read-only views for `status`, reports, dry runs and verification: counts, key lists, batches,
//! and paged iteration over stored tickets with flat memory whatever the store's size.

use model::{Ticket, TicketKey};
use sqlx::Row;

use crate::error::Result;
use crate::rows::{attach_messages, key_from_row, ticket_columns, ticket_from_row};
use crate::{
    BatchId, BatchState, BatchSummary, CaseRef, Counts, ProductCounts, Store, TicketState,
};

impl Store {
    /// Totals per ticket state, per derived batch state, messages, notes, attachments and bytes,
    /// overall and per product. Reads the running totals the triggers of migration 0007 keep
    /// (`ticket_totals`, `batch_totals`), never the tickets themselves: the cost does not grow
    /// with the store (`status` stays under a second at 2 M tickets).
    pub async fn counts(&self) -> Result<Counts> {
        let rows = sqlx::query(
            "SELECT product_id, state, tickets AS n, messages, notes, attachments, bytes
             FROM ticket_totals WHERE tickets != 0 ORDER BY product_id, state",
        )
        .fetch_all(&self.read)
        .await?;
        let mut counts = Counts::default();
        for r in &rows {
            let product_id: i64 = r.try_get("product_id")?;
            let state: TicketState = r.try_get::<String, _>("state")?.parse()?;
            let n = to_u64(r.try_get("n")?);
            let messages = to_u64(r.try_get("messages")?);
            let notes = to_u64(r.try_get("notes")?);
            let attachments = to_u64(r.try_get("attachments")?);
            let bytes = to_u64(r.try_get("bytes")?);
            if counts.products.last().map(|p| p.product_id) != Some(product_id) {
                counts.products.push(ProductCounts {
                    product_id,
                    ..ProductCounts::default()
                });
            }
            if let Some(p) = counts.products.last_mut() {
                *p.tickets.entry(state).or_default() += n;
                p.messages += messages;
                p.notes += notes;
                p.attachments += attachments;
                p.attachment_bytes += bytes;
            }
            *counts.tickets.entry(state).or_default() += n;
            counts.messages += messages;
            counts.notes += notes;
            counts.attachments += attachments;
            counts.attachment_bytes += bytes;
        }
        // The rule of the `batch_states` view, applied to each batch's running totals; a batch
        // with no ticket left (an empty last page) is loaded, as in the view.
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT CASE
                 WHEN coalesce(t.failed, 0) > 0 THEN 'failed'
                 WHEN coalesce(t.tickets, 0) = coalesce(t.done, 0) THEN 'loaded'
                 WHEN t.started > 0 THEN 'loading'
                 WHEN t.pending > 0 THEN 'pending'
                 ELSE 'extracted'
             END AS state, count(*)
             FROM batches b LEFT JOIN batch_totals t ON t.batch_id = b.id
             GROUP BY 1",
        )
        .fetch_all(&self.read)
        .await?;
        for (state, n) in rows {
            counts.batches.insert(state.parse()?, to_u64(Some(n)));
        }
        Ok(counts)
    }

    /// The state of one ticket, or `None` if it was never listed.
    pub async fn ticket_state(&self, key: TicketKey) -> Result<Option<TicketState>> {
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM tickets WHERE product_id = ? AND ticket_id = ?")
                .bind(key.product_id)
                .bind(key.ticket_id)
                .fetch_optional(&self.read)
                .await?;
        state.map(|s| s.parse()).transpose()
    }

    /// Every ticket key in `state`, by key.
    pub async fn ticket_keys(&self, state: TicketState) -> Result<Vec<TicketKey>> {
        sqlx::query(
            "SELECT product_id, ticket_id FROM tickets WHERE state = ?
             ORDER BY product_id, ticket_id",
        )
        .bind(state.as_str())
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(key_from_row)
        .collect()
    }

    /// Keys in `state` from `first` to `last` inclusive, by key: lets a walk over
    /// [`Store::tickets_page`] know each page's states with one range query, instead of holding
    /// every key of the store in memory. (`+state` keeps SQLite on the key range: with the
    /// state index it would scan every ticket of the state, 0.4 s a page at 2 M tickets.)
    pub async fn ticket_keys_between(
        &self,
        state: TicketState,
        first: TicketKey,
        last: TicketKey,
    ) -> Result<Vec<TicketKey>> {
        sqlx::query(
            "SELECT product_id, ticket_id FROM tickets
             WHERE (product_id, ticket_id) >= (?, ?) AND (product_id, ticket_id) <= (?, ?)
               AND +state = ?
             ORDER BY product_id, ticket_id",
        )
        .bind(first.product_id)
        .bind(first.ticket_id)
        .bind(last.product_id)
        .bind(last.ticket_id)
        .bind(state.as_str())
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(key_from_row)
        .collect()
    }

    /// Batches with their derived state, by id; only those in `state` when given.
    ///
    /// Failed batches (what `status` shows) are found from the failed tickets' index, not by
    /// deriving every batch's state: a failed ticket makes its batch failed.
    pub async fn batches(&self, state: Option<BatchState>) -> Result<Vec<BatchSummary>> {
        let sql = if state == Some(BatchState::Failed) {
            "SELECT id, product_id, page, ticket_count, 'failed' AS state FROM batches
             WHERE ?1 = 'failed'
               AND id IN (SELECT batch_id FROM tickets WHERE state = 'failed') ORDER BY id"
        } else {
            "SELECT id, product_id, page, ticket_count, state FROM batch_states
             WHERE ?1 IS NULL OR state = ?1 ORDER BY id"
        };
        sqlx::query(sql)
            .bind(state.map(|s| s.as_str()))
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|r| {
                Ok(BatchSummary {
                    id: BatchId(r.try_get("id")?),
                    product_id: r.try_get("product_id")?,
                    page: r.try_get("page")?,
                    ticket_count: r.try_get("ticket_count")?,
                    state: r.try_get::<String, _>("state")?.parse()?,
                })
            })
            .collect()
    }

    /// Up to `limit` tickets whose current detail is stored (any state but pending), with their
    /// messages, ordered by key and starting after `after`: iterate by passing the last key back.
    /// Three indexed range queries per page, so memory stays flat with millions of tickets.
    pub async fn tickets_page(&self, after: Option<TicketKey>, limit: u32) -> Result<Vec<Ticket>> {
        let after = after.unwrap_or(TicketKey::new(i64::MIN, i64::MIN));
        let rows = sqlx::query(concat!(
            "SELECT ",
            ticket_columns!(),
            " FROM tickets
             WHERE (product_id, ticket_id) > (?, ?)
               AND fetched_updated_at IS NOT NULL AND fetched_updated_at = listed_updated_at
             ORDER BY product_id, ticket_id LIMIT ?"
        ))
        .bind(after.product_id)
        .bind(after.ticket_id)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        let mut tickets = rows
            .iter()
            .map(ticket_from_row)
            .collect::<Result<Vec<_>>>()?;
        if let (Some(first), Some(last)) = (tickets.first(), tickets.last()) {
            let (first, last) = (first.key, last.key);
            attach_messages(&self.read, &mut tickets, first, last).await?;
        }
        Ok(tickets)
    }
}

impl Store {
    /// Up to `limit` tickets that have a Deskie case, with it, ordered by key after `after`:
    /// what `verify` walks to read every case back (message ids come from `load_ticket`).
    pub async fn cases_page(
        &self,
        after: Option<TicketKey>,
        limit: u32,
    ) -> Result<Vec<(TicketKey, CaseRef)>> {
        let after = after.unwrap_or(TicketKey::new(i64::MIN, i64::MIN));
        sqlx::query(
            "SELECT product_id, ticket_id, case_id, case_number, user_id FROM case_map
             WHERE (product_id, ticket_id) > (?, ?) ORDER BY product_id, ticket_id LIMIT ?",
        )
        .bind(after.product_id)
        .bind(after.ticket_id)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(|r| {
            Ok((
                key_from_row(r)?,
                CaseRef {
                    case_id: r.try_get("case_id")?,
                    case_number: r.try_get("case_number")?,
                    user_id: r.try_get("user_id")?,
                },
            ))
        })
        .collect()
    }

    /// Skipped tickets grouped by reason, most frequent first, for the report.
    pub async fn skip_reasons(&self) -> Result<Vec<(String, u64)>> {
        let rows: Vec<(Option<String>, i64)> = sqlx::query_as(
            "SELECT skip_reason, count(*) AS n FROM tickets WHERE state = 'skipped'
             GROUP BY skip_reason ORDER BY n DESC, skip_reason",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(reason, n)| (reason.unwrap_or_default(), to_u64(Some(n))))
            .collect())
    }
}

/// SQLite counts are never negative; a NULL sum (no rows) decodes as 0 via `Option`.
fn to_u64(n: Option<i64>) -> u64 {
    n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0)
}
