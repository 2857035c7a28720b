//! Read-only views for `status`, reports, dry runs and verification: counts, key lists, batches,
//! and paged iteration over stored tickets with flat memory whatever the store's size.

use model::{Ticket, TicketKey};
use sqlx::Row;

use crate::error::Result;
use crate::failures::failure_from_row;
use crate::rows::{
    MessageScope, attach_messages_of, key_from_row, ticket_columns, ticket_from_row,
};
use crate::{
    BatchId, BatchState, BatchSummary, CaseRef, Counts, Failure, ProductCounts, Store, TicketState,
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
        self.ticket_page(after, limit, MessageScope::All).await
    }
}

/// The tickets that are NOT "loaded with their current detail stored", as `o`: the journal
/// queries of [`Store::loaded_writes`] count every done write and take away these tickets' few
/// (one scan of the journal, then index look-ups for the ~10 % not loaded), instead of looking
/// up every loaded ticket's intents one by one (30 s at 2 M tickets).
macro_rules! not_loaded_join {
    ($table:literal) => {
        concat!(
            "(SELECT product_id, ticket_id FROM tickets
              WHERE NOT (state = 'loaded' AND fetched_updated_at IS NOT NULL
                         AND fetched_updated_at = listed_updated_at)) o
             CROSS JOIN ",
            $table,
            " x ON x.product_id = o.product_id AND x.ticket_id = o.ticket_id"
        )
    };
}

/// Loaded tickets with a current stored detail that share a Desk360 channel, status and
/// priority: what the report needs of a loaded ticket besides its writes (the route follows from
/// the channel), read without its messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedGroup {
    /// Desk360 channel name, as stored.
    pub channel: Option<String>,
    /// Desk360 status code.
    pub status: Option<i64>,
    /// Desk360 priority code.
    pub priority: Option<i64>,
    /// Tickets in the group.
    pub tickets: u64,
}

/// The Deskie writes the journal holds for loaded tickets: the report's "writes done" come from
/// here instead of mapping every loaded ticket again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadedWrites {
    /// Done intents other than final updates (create, messages, notes), plus inline-image edits
    /// sent (done or refused).
    pub singles: u64,
    /// Final updates as bulk requests: the done update intents grouped by payload, each group
    /// `⌈n / bulk_max⌉` requests (the loader sends ≤ `bulk_max` cases with the same values at once).
    pub bulk_updates: u64,
}

impl LoadedWrites {
    /// Every write of the loaded tickets.
    pub fn total(&self) -> u64 {
        self.singles + self.bulk_updates
    }
}

impl Store {
    /// Loaded tickets (with their current detail stored) grouped by channel, status and
    /// priority; one scan of the ticket rows, no message read.
    pub async fn loaded_ticket_groups(&self) -> Result<Vec<LoadedGroup>> {
        // channel, status, priority, tickets
        type Row = (Option<String>, Option<i64>, Option<i64>, i64);
        let rows: Vec<Row> = sqlx::query_as(
            // `+state`: one sequential scan of the rows (1.7 s at 2 M tickets) beats looking up
            // each loaded row through the state index (3 s).
            "SELECT channel, status, priority, count(*) FROM tickets
             WHERE +state = 'loaded'
               AND fetched_updated_at IS NOT NULL AND fetched_updated_at = listed_updated_at
             GROUP BY channel, status, priority",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(channel, status, priority, n)| LoadedGroup {
                channel,
                status,
                priority,
                tickets: to_u64(Some(n)),
            })
            .collect())
    }

    /// The writes the journal records for loaded tickets (see [`LoadedWrites`]); `bulk_max` is
    /// the most cases one bulk final update carries.
    pub async fn loaded_writes(&self, bulk_max: u64) -> Result<LoadedWrites> {
        let intents: Option<i64> = sqlx::query_scalar(concat!(
            "SELECT (SELECT count(*) FROM intents WHERE state = 'done' AND step != 'update')
                  - (SELECT count(*) FROM ",
            not_loaded_join!("intents"),
            " WHERE x.state = 'done' AND x.step != 'update')"
        ))
        .fetch_one(&self.read)
        .await?;
        let edits: Option<i64> = sqlx::query_scalar(concat!(
            "SELECT (SELECT count(*) FROM rehost_edits WHERE state IN ('done', 'failed'))
                  - (SELECT count(*) FROM ",
            not_loaded_join!("rehost_edits"),
            " WHERE x.state IN ('done', 'failed'))"
        ))
        .fetch_one(&self.read)
        .await?;
        let bulk: Option<i64> = sqlx::query_scalar(concat!(
            "SELECT sum((n + ?1 - 1) / ?1) FROM (
                 SELECT sum(w) AS n FROM (
                     SELECT payload_hash, 1 AS w FROM intents
                     WHERE state = 'done' AND step = 'update'
                     UNION ALL
                     SELECT x.payload_hash, -1 FROM ",
            not_loaded_join!("intents"),
            "        WHERE x.state = 'done' AND x.step = 'update')
                 GROUP BY payload_hash)
             WHERE n > 0"
        ))
        .bind(i64::try_from(bulk_max.max(1)).unwrap_or(i64::MAX))
        .fetch_one(&self.read)
        .await?;
        Ok(LoadedWrites {
            singles: to_u64(intents) + to_u64(edits),
            bulk_updates: to_u64(bulk),
        })
    }

    /// The failures of list pages not read yet (no ticket), by product and page: what the
    /// report lists apart from failed tickets, without loading every ticket's failure.
    pub async fn page_failures(&self) -> Result<Vec<Failure>> {
        sqlx::query(
            "SELECT product_id, ticket_id, page, stage, step, class, code, message, request,
                    attempts, first_seen, last_seen
             FROM failures WHERE ticket_id IS NULL ORDER BY product_id, page",
        )
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(failure_from_row)
        .collect()
    }

    /// How many write intents are open (outcome unknown): what the next run reads back first.
    /// Counted on the partial index of open intents, never scanning the journal.
    pub async fn open_intent_count(&self) -> Result<u64> {
        let n: Option<i64> =
            sqlx::query_scalar("SELECT count(*) FROM intents WHERE state = 'open'")
                .fetch_one(&self.read)
                .await?;
        Ok(to_u64(n))
    }

    /// Like [`Store::tickets_page`], but only tickets that are not loaded: the report maps these
    /// (their writes are still to do) and reads loaded ones through
    /// [`Store::loaded_ticket_groups`] and [`Store::loaded_writes`]. Only these tickets' messages
    /// are read.
    pub async fn unloaded_tickets_page(
        &self,
        after: Option<TicketKey>,
        limit: u32,
    ) -> Result<Vec<Ticket>> {
        self.ticket_page(after, limit, MessageScope::NotLoaded)
            .await
    }

    /// One page of fetched tickets of `scope` after `after`, in key order, with their messages.
    async fn ticket_page(
        &self,
        after: Option<TicketKey>,
        limit: u32,
        scope: MessageScope,
    ) -> Result<Vec<Ticket>> {
        let after = after.unwrap_or(TicketKey::new(i64::MIN, i64::MIN));
        let rows = sqlx::query(concat!(
            "SELECT ",
            ticket_columns!(),
            " FROM tickets
             WHERE (product_id, ticket_id) > (?, ?)
               AND fetched_updated_at IS NOT NULL AND fetched_updated_at = listed_updated_at
               AND (? OR +state != 'loaded')
             ORDER BY product_id, ticket_id LIMIT ?"
        ))
        .bind(after.product_id)
        .bind(after.ticket_id)
        .bind(scope == MessageScope::All)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        let mut tickets = rows
            .iter()
            .map(ticket_from_row)
            .collect::<Result<Vec<_>>>()?;
        if let (Some(first), Some(last)) = (tickets.first(), tickets.last()) {
            let (first, last) = (first.key, last.key);
            attach_messages_of(&self.read, &mut tickets, first, last, scope).await?;
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
