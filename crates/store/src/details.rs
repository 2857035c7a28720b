//! Ticket details: saving a batch of fetched tickets with their messages and attachments.

use model::Ticket;

use sqlx::{QueryBuilder, Sqlite};

use crate::error::Result;
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
        let mut tx = self.begin_write().await?;
        for (ticket, raw) in items {
            let key = ticket.key;
            let notes = ticket.notes().count();
            let replies = ticket.messages.len() - notes;
            let attachments: usize = ticket.messages.iter().map(|m| m.attachments.len()).sum();
            let bytes: u64 = ticket
                .messages
                .iter()
                .flat_map(|m| &m.attachments)
                .filter_map(|a| a.size)
                .fold(0u64, u64::saturating_add);
            let done = sqlx::query(
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
            .bind(to_i64(replies))
            .bind(to_i64(notes))
            .bind(to_i64(attachments))
            .bind(i64::try_from(bytes).unwrap_or(i64::MAX))
            .bind(&now)
            .bind(key.product_id)
            .bind(key.ticket_id)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!(
                    "ticket {key} was never listed; record its page first"
                )));
            }

            sqlx::query(
                "INSERT INTO ticket_raw (product_id, ticket_id, raw) VALUES (?, ?, ?)
                 ON CONFLICT (product_id, ticket_id) DO UPDATE SET raw = excluded.raw",
            )
            .bind(key.product_id)
            .bind(key.ticket_id)
            .bind(raw.as_ref())
            .execute(&mut *tx)
            .await?;

            // attachments go with their messages (ON DELETE CASCADE)
            crate::rows::on_ticket(
                &mut tx,
                key,
                sqlx::query("DELETE FROM messages WHERE product_id = ? AND ticket_id = ?"),
            )
            .await?;
            insert_messages(&mut tx, ticket).await?;
            crate::rows::on_ticket(&mut tx, key, sqlx::query(
                "DELETE FROM failures WHERE product_id = ? AND ticket_id = ? AND stage = 'extract'",
            )).await?;
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
        let mut tx = self.begin_write().await?;
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
/// when it has none): a statement is a round trip to SQLite's thread, and a ticket has several.
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
