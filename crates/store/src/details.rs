//! Ticket details: saving a batch of fetched tickets with their messages and attachments.

use std::collections::HashSet;

use model::Ticket;

use sqlx::{QueryBuilder, Sqlite};

use crate::error::Result;
use crate::group::{json, survives_json_text};
use crate::rows::{author_columns, kind_column};
use crate::{Store, StoreError, now};

impl Store {
    /// Saves fetched details in ONE transaction: each ticket's normalized columns and raw JSON,
    /// its messages and attachments (replacing what was stored), its counts; the ticket becomes
    /// `extracted` and its extract failure is cleared.
    ///
    /// A ticket a loader holds (`loading`) keeps that state and is flagged to be loaded again
    /// once the current load finishes (`mark_loaded` then returns it to `extracted`).
    /// Messages are stored in the order given, which must be write order (`Ticket::sort_messages`).
    /// Fails with [`StoreError::NotFound`] (saving nothing) if a ticket was never listed.
    pub async fn save_details<R: AsRef<str>>(&self, items: &[(Ticket, R)]) -> Result<()> {
        let now = now();
        // One after the other, a later detail of the same ticket replaces an earlier one
        // entirely, so only the last of each is written.
        let mut seen = HashSet::new();
        let mut last: Vec<(&Ticket, &str)> = items
            .iter()
            .rev()
            .filter(|(t, _)| seen.insert(t.key))
            .map(|(t, raw)| (t, raw.as_ref()))
            .collect();
        last.reverse();
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        if last.iter().all(|(t, raw)| survives_json(t, raw)) {
            save_set(&mut tx, &last, &now).await?;
        } else {
            for (ticket, raw) in &last {
                save_one(&mut tx, ticket, raw, &now).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records what a ticket's Desk360 detail held that was carried over in a safer form (e.g. a
    /// message of an unknown type kept as an internal note). Call it after `save_details` of the
    /// same detail, which clears what an earlier fetch recorded; an empty list clears it too. The
    /// report counts and lists them.
    pub async fn record_source_warnings(
        &self,
        key: model::TicketKey,
        warnings: &[String],
    ) -> Result<()> {
        let text = (!warnings.is_empty()).then(|| warnings.join("\n"));
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        crate::rows::on_ticket(
            &mut tx,
            key,
            sqlx::query(
                "UPDATE tickets SET source_warnings = ? WHERE product_id = ? AND ticket_id = ?",
            )
            .bind(text),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every ticket with source warnings, by key, with its lines.
    pub async fn source_warnings(&self) -> Result<Vec<(model::TicketKey, Vec<String>)>> {
        let rows: Vec<(i64, i64, String)> = sqlx::query_as(
            "SELECT product_id, ticket_id, source_warnings FROM tickets
             WHERE source_warnings IS NOT NULL ORDER BY product_id, ticket_id",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(p, t, w)| {
                (
                    model::TicketKey::new(p, t),
                    w.lines().map(str::to_string).collect(),
                )
            })
            .collect())
    }
}

/// The ticket's columns `save_details` writes, from its detail: the same for both paths.
struct Columns {
    replies: i64,
    notes: i64,
    attachments: i64,
    bytes: i64,
}

impl Columns {
    fn of(ticket: &Ticket) -> Columns {
        let notes = ticket.notes().count();
        let replies = ticket.messages.len() - notes;
        let attachments: usize = ticket.messages.iter().map(|m| m.attachments.len()).sum();
        let bytes: u64 = ticket
            .messages
            .iter()
            .flat_map(|m| &m.attachments)
            .filter_map(|a| a.size)
            .fold(0u64, u64::saturating_add);
        Columns {
            replies: to_i64(replies),
            notes: to_i64(notes),
            attachments: to_i64(attachments),
            bytes: i64::try_from(bytes).unwrap_or(i64::MAX),
        }
    }
}

/// Whether every text of a detail reads back whole from a JSON parameter
/// ([`survives_json_text`]); a detail that does not is saved statement by statement.
fn survives_json(ticket: &Ticket, raw: &str) -> bool {
    let whole = survives_json_text;
    let some_whole = |s: &Option<String>| s.as_deref().is_none_or(whole);
    whole(raw)
        && whole(&ticket.updated_at)
        && some_whole(&ticket.subject)
        && some_whole(&ticket.customer_name)
        && some_whole(&ticket.customer_email)
        && some_whole(&ticket.customer_phone)
        && some_whole(&ticket.channel)
        && some_whole(&ticket.platform)
        && ticket.messages.iter().all(|m| {
            whole(&m.body)
                && m.attachments
                    .iter()
                    .all(|a| whole(&a.url) && whole(&a.name))
        })
}

/// The tickets' columns, as one round trip (see [`save_set`]). Parameters: now, `[[product,
/// ticket, subject, name, email, phone, channel, platform, status, priority, agent, type,
/// reason, created at, updated at, replies, notes, attachments, bytes]]`. The same `SET` as
/// [`save_one`]'s; returns the tickets it found.
pub(crate) const SET_TICKETS: &str = "
UPDATE tickets SET
    state = CASE WHEN state = 'loading' THEN 'loading' ELSE 'extracted' END,
    reload = CASE WHEN state = 'loading' THEN 1 ELSE 0 END,
    fetched_updated_at = listed_updated_at,
    failure_stage = NULL, failure_class = NULL, skip_reason = NULL,
    source_warnings = NULL,
    subject = d.value ->> 2, customer_name = d.value ->> 3, customer_email = d.value ->> 4,
    customer_phone = d.value ->> 5, channel = d.value ->> 6, platform = d.value ->> 7,
    status = d.value ->> 8, priority = d.value ->> 9, agent_id = d.value ->> 10,
    type_id = d.value ->> 11, reason_id = d.value ->> 12, created_at = d.value ->> 13,
    detail_updated_at = d.value ->> 14, message_count = d.value ->> 15,
    note_count = d.value ->> 16, attachment_count = d.value ->> 17,
    attachment_bytes = d.value ->> 18, extracted_at = ?
FROM json_each(?) AS d
WHERE tickets.product_id = d.value ->> 0 AND tickets.ticket_id = d.value ->> 1
RETURNING tickets.product_id, tickets.ticket_id";

/// Everything else of the details, as one round trip. Parameters, in order (anonymous: see
/// `group.rs` on why): raw `[[product, ticket, raw]]`; keys `[[product, ticket]]`; messages
/// `[[product, ticket, position, id, author kind, agent, kind, body, created at]]`;
/// attachments `[[product, ticket, position, idx, url, name, kind, size]]`; keys again.
pub(crate) const SET_CONTENT: &str = "
INSERT INTO ticket_raw (product_id, ticket_id, raw)
SELECT r.value ->> 0, r.value ->> 1, r.value ->> 2 FROM json_each(?) AS r WHERE true
ON CONFLICT (product_id, ticket_id) DO UPDATE SET raw = excluded.raw;
DELETE FROM messages WHERE rowid IN
    (SELECT m.rowid FROM json_each(?) AS k CROSS JOIN messages m
     WHERE m.product_id = k.value ->> 0 AND m.ticket_id = k.value ->> 1);
INSERT INTO messages (product_id, ticket_id, position, message_id, author_kind,
    author_agent_id, kind, body, created_at)
SELECT m.value ->> 0, m.value ->> 1, m.value ->> 2, m.value ->> 3, m.value ->> 4,
    m.value ->> 5, m.value ->> 6, m.value ->> 7, m.value ->> 8
FROM json_each(?) AS m;
INSERT INTO attachments (product_id, ticket_id, position, idx, url, name, kind, size)
SELECT a.value ->> 0, a.value ->> 1, a.value ->> 2, a.value ->> 3, a.value ->> 4,
    a.value ->> 5, a.value ->> 6, a.value ->> 7
FROM json_each(?) AS a;
DELETE FROM failures WHERE id IN
    (SELECT f.id FROM json_each(?) AS k CROSS JOIN failures f
     WHERE f.product_id = k.value ->> 0 AND f.ticket_id = k.value ->> 1 AND f.stage = 'extract')";

/// Saves the details set-wise: two round trips to the write connection's worker for the whole
/// batch instead of five or six statements a ticket (each statement is a hand-off to sqlx's
/// SQLite thread and back; see `group.rs`). Writes what [`save_one`] writes, ticket by ticket;
/// the keys are distinct (the caller keeps the last detail of each).
async fn save_set(
    tx: &mut sqlx::SqliteConnection,
    items: &[(&Ticket, &str)],
    now: &str,
) -> Result<()> {
    let mut tickets = Vec::with_capacity(items.len());
    let mut raws = Vec::with_capacity(items.len());
    let mut keys = Vec::with_capacity(items.len());
    let mut messages = Vec::new();
    let mut attachments = Vec::new();
    for (ticket, raw) in items {
        let key = ticket.key;
        let (p, t) = (key.product_id, key.ticket_id);
        let c = Columns::of(ticket);
        tickets.push(serde_json::json!([
            p,
            t,
            ticket.subject,
            ticket.customer_name,
            ticket.customer_email,
            ticket.customer_phone,
            ticket.channel,
            ticket.platform,
            ticket.status,
            ticket.priority,
            ticket.agent_id,
            ticket.type_id,
            ticket.reason_id,
            ticket.created_at.to_string(),
            ticket.updated_at,
            c.replies,
            c.notes,
            c.attachments,
            c.bytes,
        ]));
        raws.push((p, t, *raw));
        keys.push((p, t));
        for (position, message) in ticket.messages.iter().enumerate() {
            let (author_kind, author_agent_id) = author_columns(&message.author);
            messages.push(serde_json::json!([
                p,
                t,
                to_i64(position),
                message.id,
                author_kind,
                author_agent_id,
                kind_column(message.kind),
                message.body,
                message.created_at.to_string(),
            ]));
            for (idx, a) in message.attachments.iter().enumerate() {
                attachments.push(serde_json::json!([
                    p,
                    t,
                    to_i64(position),
                    to_i64(idx),
                    a.url,
                    a.name,
                    a.kind.as_str(),
                    a.size.map(|s| i64::try_from(s).unwrap_or(i64::MAX)),
                ]));
            }
        }
    }
    let found: Vec<(i64, i64)> = sqlx::query_as(SET_TICKETS)
        .bind(now)
        .bind(json(&tickets)?)
        .fetch_all(&mut *tx)
        .await?;
    if found.len() != keys.len() {
        let found: HashSet<(i64, i64)> = found.into_iter().collect();
        let missing = keys.iter().find(|k| !found.contains(k)).map_or_else(
            || "a ticket".to_string(),
            |(p, t)| format!("ticket {}", model::TicketKey::new(*p, *t)),
        );
        return Err(StoreError::NotFound(format!(
            "{missing} was never listed; record its page first"
        )));
    }
    let keys = json(&keys)?;
    sqlx::query(SET_CONTENT)
        .bind(json(&raws)?)
        .bind(&keys)
        .bind(json(&messages)?)
        .bind(json(&attachments)?)
        .bind(&keys)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Saves one detail statement by statement: the path for a detail whose text would not survive
/// JSON (see [`survives_json`]).
async fn save_one(
    tx: &mut sqlx::SqliteConnection,
    ticket: &Ticket,
    raw: &str,
    now: &str,
) -> Result<()> {
    let key = ticket.key;
    let c = Columns::of(ticket);
    let update = sqlx::query(
        "UPDATE tickets SET
            state = CASE WHEN state = 'loading' THEN 'loading' ELSE 'extracted' END,
            reload = CASE WHEN state = 'loading' THEN 1 ELSE 0 END,
            fetched_updated_at = listed_updated_at,
            failure_stage = NULL, failure_class = NULL, skip_reason = NULL,
            source_warnings = NULL,
            subject = ?, customer_name = ?, customer_email = ?,
            customer_phone = ?, channel = ?, platform = ?, status = ?, priority = ?,
            agent_id = ?, type_id = ?, reason_id = ?, created_at = ?,
            detail_updated_at = ?, message_count = ?, note_count = ?,
            attachment_count = ?, attachment_bytes = ?, extracted_at = ?
         WHERE product_id = ? AND ticket_id = ?",
    )
    .bind(&ticket.subject)
    .bind(&ticket.customer_name)
    .bind(&ticket.customer_email)
    .bind(&ticket.customer_phone)
    .bind(&ticket.channel)
    .bind(&ticket.platform)
    .bind(ticket.status)
    .bind(ticket.priority)
    .bind(ticket.agent_id)
    .bind(ticket.type_id)
    .bind(ticket.reason_id)
    .bind(ticket.created_at.to_string())
    .bind(&ticket.updated_at)
    .bind(c.replies)
    .bind(c.notes)
    .bind(c.attachments)
    .bind(c.bytes)
    .bind(now);
    if crate::rows::on_ticket(tx, key, update).await? == 0 {
        return Err(StoreError::NotFound(format!(
            "ticket {key} was never listed; record its page first"
        )));
    }

    crate::rows::on_ticket(
        tx,
        key,
        sqlx::query(
            "INSERT INTO ticket_raw (raw, product_id, ticket_id) VALUES (?, ?, ?)
             ON CONFLICT (product_id, ticket_id) DO UPDATE SET raw = excluded.raw",
        )
        .bind(raw),
    )
    .await?;

    // attachments go with their messages (ON DELETE CASCADE)
    crate::rows::on_ticket(
        tx,
        key,
        sqlx::query("DELETE FROM messages WHERE product_id = ? AND ticket_id = ?"),
    )
    .await?;
    insert_messages(tx, ticket).await?;
    crate::rows::forget_failures(tx, key, crate::Stage::Extract).await?;
    Ok(())
}

impl Store {
    /// The detail JSON exactly as Desk360 sent it for `key` (for debugging a mapping and for
    /// reports that quote the source); `None` before its detail was fetched.
    pub async fn ticket_raw(&self, key: model::TicketKey) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT raw FROM ticket_raw WHERE product_id = ? AND ticket_id = ?")
                .bind(key.product_id)
                .bind(key.ticket_id)
                .fetch_optional(&self.read)
                .await?,
        )
    }
}

/// Rows per multi-row `INSERT`: 9 bound values a message row, well under SQLite's limit of
/// 32 766 bound values a statement.
const ROWS_PER_INSERT: usize = 500;

/// Inserts a ticket's messages with one statement, and their attachments with another (none
/// when it has none), for [`save_one`].
async fn insert_messages(tx: &mut sqlx::SqliteConnection, ticket: &Ticket) -> Result<()> {
    let key = ticket.key;
    let messages: Vec<(usize, &model::Message)> = ticket.messages.iter().enumerate().collect();
    for chunk in messages.chunks(ROWS_PER_INSERT) {
        let mut rows = QueryBuilder::<Sqlite>::new(
            "INSERT INTO messages (product_id, ticket_id, position, message_id, author_kind,
                author_agent_id, kind, body, created_at) ",
        );
        rows.push_values(chunk, |mut row, (position, message)| {
            let (author_kind, author_agent_id) = author_columns(&message.author);
            row.push_bind(key.product_id)
                .push_bind(key.ticket_id)
                .push_bind(to_i64(*position))
                .push_bind(message.id)
                .push_bind(author_kind)
                .push_bind(author_agent_id)
                .push_bind(kind_column(message.kind))
                .push_bind(&message.body)
                .push_bind(message.created_at.to_string());
        });
        rows.build().execute(&mut *tx).await?;
    }

    let attachments: Vec<(usize, usize, &model::Attachment)> = ticket
        .messages
        .iter()
        .enumerate()
        .flat_map(|(position, m)| {
            m.attachments
                .iter()
                .enumerate()
                .map(move |(idx, a)| (position, idx, a))
        })
        .collect();
    for chunk in attachments.chunks(ROWS_PER_INSERT) {
        let mut rows = QueryBuilder::<Sqlite>::new(
            "INSERT INTO attachments (product_id, ticket_id, position, idx, url, name, kind, size) ",
        );
        rows.push_values(chunk, |mut row, (position, idx, a)| {
            row.push_bind(key.product_id)
                .push_bind(key.ticket_id)
                .push_bind(to_i64(*position))
                .push_bind(to_i64(*idx))
                .push_bind(&a.url)
                .push_bind(&a.name)
                .push_bind(a.kind.as_str())
                .push_bind(a.size.map(|s| i64::try_from(s).unwrap_or(i64::MAX)));
        });
        rows.build().execute(&mut *tx).await?;
    }
    Ok(())
}

/// Counts and indexes fit in i64 on every platform this runs on; saturate rather than panic.
fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
