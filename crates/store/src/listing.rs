//! The ticket listing: list cursors, batches and the `pending` tickets the extractor must fetch.
//!
//! `record_page` is the only place a ticket enters the store, and where a delta run notices that
//! a ticket changed at the source (its listed `updated_at` differs from the stored one).

use std::collections::{HashMap, HashSet};

use model::TicketKey;
use sqlx::Row;

use crate::error::Result;
use crate::rows::key_from_row;
use crate::{BatchId, CursorUpdate, ListCursor, ListMode, ListedTicket, PageOutcome, Store, now};

impl Store {
    /// Where the listing of `product_id` stands; `None` when it never started (fetch page 1).
    pub async fn list_cursor(&self, product_id: i64) -> Result<Option<ListCursor>> {
        let row = sqlx::query(
            "SELECT product_id, next_url, next_page, complete, mode, stop_at, top, mark
             FROM list_cursors WHERE product_id = ?",
        )
        .bind(product_id)
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| {
            Ok(ListCursor {
                product_id: r.try_get("product_id")?,
                next_url: r.try_get("next_url")?,
                next_page: r.try_get("next_page")?,
                complete: r.try_get("complete")?,
                mode: ListMode::parse(&r.try_get::<String, _>("mode")?),
                stop_at: r.try_get("stop_at")?,
                top: r.try_get("top")?,
                mark: r.try_get("mark")?,
            })
        })
        .transpose()
    }

    /// Forgets where the listing of `product_id` stood, so the next run lists it again from the
    /// first page: what a delta run does. Stored tickets, maps and intents are untouched.
    pub async fn reset_list_cursor(&self, product_id: i64) -> Result<()> {
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        sqlx::query("DELETE FROM list_cursors WHERE product_id = ?")
            .bind(product_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Starts a new listing of a product (a catch-up from page 1) without recording a page: the
    /// cursor points at `cursor.next_url` (page 1) and is no longer complete, so a kill before
    /// its first page resumes the same listing.
    pub async fn start_listing(&self, product_id: i64, cursor: &CursorUpdate<'_>) -> Result<()> {
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        write_cursor(&mut tx, product_id, 1, cursor, &now()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records one list page in one transaction: upserts its batch, inserts new tickets as
    /// `pending`, sends tickets whose `updated_at` changed back to `pending` (keeping their case,
    /// message map and intents so loading continues the same case, and clearing the final-state
    /// mark since status may have changed), and advances the cursor to `next_url` (or marks the
    /// listing complete when `None`).
    ///
    /// `to_fetch` lists the page's tickets whose detail must be fetched now: new, changed, or
    /// still pending. A ticket with the same `updated_at` keeps its state and batch. A changed
    /// ticket a loader currently holds stays `loading` (so no second loader takes it) but is in
    /// `to_fetch`; its new detail is loaded again after the current load (see `save_details`).
    pub async fn record_page(
        &self,
        product_id: i64,
        page: i64,
        listed: &[ListedTicket],
        next_url: Option<&str>,
    ) -> Result<PageOutcome> {
        let cursor = CursorUpdate {
            next_url,
            mode: ListMode::Full,
            stop_at: None,
            top: None,
            mark: None,
        };
        self.record_listing_page(product_id, page, listed, &cursor)
            .await
    }

    /// [`Store::record_page`] with the whole cursor state: the listing by high-water mark
    /// (full pass, then catch-ups) records where it goes next, and when it finishes (`next_url`
    /// `None`) the cursor is marked complete with the given `mark`.
    pub async fn record_listing_page(
        &self,
        product_id: i64,
        page: i64,
        listed: &[ListedTicket],
        cursor: &CursorUpdate<'_>,
    ) -> Result<PageOutcome> {
        let now = now();
        let count = i64::try_from(listed.len()).unwrap_or(i64::MAX);
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        let batch_id: i64 = sqlx::query_scalar(
            "INSERT INTO batches (product_id, page, ticket_count, listed_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (product_id, page)
             DO UPDATE SET ticket_count = excluded.ticket_count, listed_at = excluded.listed_at
             RETURNING id",
        )
        .bind(product_id)
        .bind(page)
        .bind(count)
        .bind(&now)
        .fetch_one(&mut *tx)
        .await?;

        let mut to_fetch: Vec<TicketKey> = Vec::new();
        let mut changed = 0usize;
        let mut seen = HashSet::new();
        // One after the other, a ticket listed twice on a page sees its first listing; set-wise
        // it would not, so such a page (and one whose text JSON would cut) goes ticket by ticket.
        let set_wise = listed.iter().all(|item| {
            seen.insert(item.ticket_id) && crate::group::survives_json_text(&item.updated_at)
        });
        let stored = if set_wise {
            Some(stored_listings(&mut tx, product_id, listed).await?)
        } else {
            None
        };
        let mut new_ones = Vec::new();
        for item in listed {
            let key = TicketKey::new(product_id, item.ticket_id);
            let (fetch, was_changed) = match &stored {
                Some(stored) => match stored.get(&item.ticket_id) {
                    None => {
                        new_ones.push((item.ticket_id, item.updated_at.as_str()));
                        (true, true)
                    }
                    Some(existing) => {
                        relist(&mut tx, product_id, batch_id, item, existing, &now).await?
                    }
                },
                None => record_listed_ticket(&mut tx, product_id, batch_id, item, &now).await?,
            };
            changed += usize::from(was_changed);
            if fetch && !to_fetch.contains(&key) {
                to_fetch.push(key);
            }
        }
        if !new_ones.is_empty() {
            insert_pending_set(&mut tx, product_id, batch_id, &new_ones, &now).await?;
        }

        write_cursor(&mut tx, product_id, page.saturating_add(1), cursor, &now).await?;
        sqlx::query(
            "DELETE FROM failures
             WHERE ticket_id IS NULL AND product_id = ? AND page = ? AND stage = 'extract'",
        )
        .bind(product_id)
        .bind(page)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(PageOutcome {
            batch_id: BatchId(batch_id),
            to_fetch,
            changed,
        })
    }

    /// Up to `limit` tickets listed but not fetched, in listing order: what a resumed extraction
    /// fetches before listing further.
    pub async fn pending_tickets(&self, limit: u32) -> Result<Vec<TicketKey>> {
        let rows = sqlx::query(
            "SELECT product_id, ticket_id FROM tickets WHERE state = 'pending'
             ORDER BY batch_id, product_id, ticket_id LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(key_from_row).collect()
    }
}

/// Upserts a product's cursor inside the caller's transaction: where the listing goes next
/// (`next_page` is the page `cursor.next_url` refers to), complete when there is no next URL.
async fn write_cursor(
    tx: &mut sqlx::SqliteConnection,
    product_id: i64,
    next_page: i64,
    cursor: &CursorUpdate<'_>,
    now: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO list_cursors (product_id, next_url, next_page, complete, updated_at,
                                   mode, stop_at, top, mark)
         VALUES (?1, ?2, ?3, ?2 IS NULL, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (product_id) DO UPDATE
         SET next_url = excluded.next_url, next_page = excluded.next_page,
             complete = excluded.complete, updated_at = excluded.updated_at,
             mode = excluded.mode, stop_at = excluded.stop_at, top = excluded.top,
             mark = excluded.mark",
    )
    .bind(product_id)
    .bind(cursor.next_url)
    .bind(next_page)
    .bind(now)
    .bind(cursor.mode.db())
    .bind(cursor.stop_at)
    .bind(cursor.top)
    .bind(cursor.mark)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Records one ticket of a list page: a new ticket is stored `pending`; a listed update of a
/// ticket being loaded only moves its listed mark (the loader re-reads it); any other update puts
/// the ticket back to `pending` and forgets its final mark. Answers whether the ticket must be
/// fetched and whether its listed update time changed.
async fn record_listed_ticket(
    tx: &mut sqlx::SqliteConnection,
    product_id: i64,
    batch_id: i64,
    item: &ListedTicket,
    now: &str,
) -> Result<(bool, bool)> {
    let existing = sqlx::query(
        "SELECT state, listed_updated_at, fetched_updated_at FROM tickets
         WHERE product_id = ? AND ticket_id = ?",
    )
    .bind(product_id)
    .bind(item.ticket_id)
    .fetch_optional(&mut *tx)
    .await?;
    match existing {
        None => {
            insert_pending(tx, product_id, batch_id, item, now).await?;
            Ok((true, true))
        }
        Some(row) => {
            let existing = Stored {
                state: row.try_get("state")?,
                listed_at: row.try_get("listed_updated_at")?,
                fetched: row.try_get("fetched_updated_at")?,
            };
            relist(tx, product_id, batch_id, item, &existing, now).await
        }
    }
}

/// What the store holds of a listed ticket, for [`relist`].
struct Stored {
    state: String,
    listed_at: String,
    fetched: Option<String>,
}

/// What the store holds of a page's tickets. `CROSS JOIN` keeps the page as the outer loop
/// whatever the planner estimates, so each ticket is looked up by key (SQLite 3.40's planner
/// put the product's tickets outside instead: a scan a page, growing with the store).
pub(crate) const STORED_LISTINGS: &str =
    "SELECT t.ticket_id, t.state, t.listed_updated_at, t.fetched_updated_at
     FROM json_each(?) AS j CROSS JOIN tickets t ON t.product_id = ? AND t.ticket_id = j.value";

/// The stored tickets of a page, by ticket id: one read for the whole page (a statement is a
/// round trip to sqlx's SQLite thread; see `group.rs`).
async fn stored_listings(
    tx: &mut sqlx::SqliteConnection,
    product_id: i64,
    listed: &[ListedTicket],
) -> Result<HashMap<i64, Stored>> {
    let ids: Vec<i64> = listed.iter().map(|item| item.ticket_id).collect();
    let ids = crate::group::json(&ids)?;
    let rows: Vec<(i64, String, String, Option<String>)> = sqlx::query_as(STORED_LISTINGS)
        .bind(ids)
        .bind(product_id)
        .fetch_all(&mut *tx)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, state, listed_at, fetched)| {
            (
                id,
                Stored {
                    state,
                    listed_at,
                    fetched,
                },
            )
        })
        .collect())
}

/// [`record_listed_ticket`] for a ticket the store holds.
async fn relist(
    tx: &mut sqlx::SqliteConnection,
    product_id: i64,
    batch_id: i64,
    item: &ListedTicket,
    existing: &Stored,
    now: &str,
) -> Result<(bool, bool)> {
    let changed = existing.listed_at != item.updated_at;
    let fetch = if !changed {
        existing.state == "pending"
            || (existing.state == "loading"
                && existing.fetched.as_deref() != Some(item.updated_at.as_str()))
    } else if existing.state == "loading" {
        sqlx::query(
            "UPDATE tickets SET listed_updated_at = ?, batch_id = ?, listed_at = ?
             WHERE product_id = ? AND ticket_id = ?",
        )
        .bind(&item.updated_at)
        .bind(batch_id)
        .bind(now)
        .bind(product_id)
        .bind(item.ticket_id)
        .execute(&mut *tx)
        .await?;
        true
    } else {
        requeue_changed(tx, product_id, Some(batch_id), item, now).await?;
        true
    };
    Ok((fetch, changed))
}

/// Stores a page's new tickets as `pending` in `batch_id`, in one statement: what
/// [`insert_pending`] does for each, in listing order (`json_each` walks the array in order).
async fn insert_pending_set(
    tx: &mut sqlx::SqliteConnection,
    product_id: i64,
    batch_id: i64,
    new_ones: &[(i64, &str)],
    now: &str,
) -> Result<()> {
    let rows = crate::group::json(&new_ones)?;
    sqlx::query(
        "INSERT INTO tickets (product_id, ticket_id, batch_id, state,
                              listed_updated_at, listed_at)
         SELECT ?, j.value ->> 0, ?, 'pending', j.value ->> 1, ? FROM json_each(?) AS j",
    )
    .bind(product_id)
    .bind(batch_id)
    .bind(now)
    .bind(rows)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Stores a newly listed ticket as `pending` in `batch_id`.
pub(crate) async fn insert_pending(
    tx: &mut sqlx::SqliteConnection,
    product_id: i64,
    batch_id: i64,
    item: &ListedTicket,
    now: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO tickets (product_id, ticket_id, batch_id, state,
                              listed_updated_at, listed_at)
         VALUES (?, ?, ?, 'pending', ?, ?)",
    )
    .bind(product_id)
    .bind(item.ticket_id)
    .bind(batch_id)
    .bind(&item.updated_at)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Puts a stored ticket whose `updated_at` changed back to `pending` (moved to `batch_id` when
/// given), clearing its failure and skip marks and its final-state mark; its case and id maps
/// are kept, so the next load continues the same case.
pub(crate) async fn requeue_changed(
    tx: &mut sqlx::SqliteConnection,
    product_id: i64,
    batch_id: Option<i64>,
    item: &ListedTicket,
    now: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE tickets SET state = 'pending', listed_updated_at = ?,
                batch_id = coalesce(?, batch_id), listed_at = ?, reload = 0,
                failure_stage = NULL, failure_class = NULL, skip_reason = NULL
         WHERE product_id = ? AND ticket_id = ?",
    )
    .bind(&item.updated_at)
    .bind(batch_id)
    .bind(now)
    .bind(product_id)
    .bind(item.ticket_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM final_state WHERE product_id = ? AND ticket_id = ?")
        .bind(product_id)
        .bind(item.ticket_id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}
