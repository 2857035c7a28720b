//! Conversions between database rows and the model's types, shared by every reading module.

use std::collections::HashMap;

use model::{
    Attachment, AttachmentKind, Author, Message, MessageKind, SourceTime, Ticket, TicketKey,
};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

use crate::error::{Result, StoreError};

/// The ticket columns `ticket_from_row` reads, as a literal for `concat!` (queries stay `&'static`).
macro_rules! ticket_columns {
    () => {
        "product_id, ticket_id, subject, customer_name, customer_email, customer_phone, channel, \
         platform, status, priority, agent_id, type_id, reason_id, created_at, detail_updated_at"
    };
}
pub(crate) use ticket_columns;

/// Parses a source time the store wrote: naive `2024-03-01T10:00:00` (every row written before
/// offsets were kept) or exact `2024-03-01T07:00:00Z`.
pub(crate) fn parse_datetime(s: &str) -> Result<SourceTime> {
    s.parse::<SourceTime>()
        .map_err(|e| StoreError::Corrupt(format!("bad datetime {s:?} in the store: {e}")))
}

/// Reads a ticket's key from a row with `product_id`, `ticket_id` columns.
pub(crate) fn key_from_row(row: &SqliteRow) -> Result<TicketKey> {
    Ok(TicketKey::new(
        row.try_get("product_id")?,
        row.try_get("ticket_id")?,
    ))
}

/// Rebuilds a ticket (without messages) from a row selected with `ticket_columns!()`.
pub(crate) fn ticket_from_row(row: &SqliteRow) -> Result<Ticket> {
    let created_at: Option<String> = row.try_get("created_at")?;
    let key = key_from_row(row)?;
    let created_at = created_at
        .ok_or_else(|| StoreError::NotFound(format!("ticket {key} has no stored detail")))?;
    Ok(Ticket {
        key,
        subject: row.try_get("subject")?,
        customer_name: row.try_get("customer_name")?,
        customer_email: row.try_get("customer_email")?,
        customer_phone: row.try_get("customer_phone")?,
        channel: row.try_get("channel")?,
        platform: row.try_get("platform")?,
        status: row.try_get("status")?,
        priority: row.try_get("priority")?,
        agent_id: row.try_get("agent_id")?,
        type_id: row.try_get("type_id")?,
        reason_id: row.try_get("reason_id")?,
        created_at: parse_datetime(&created_at)?,
        updated_at: row
            .try_get::<Option<String>, _>("detail_updated_at")?
            .unwrap_or_default(),
        messages: Vec::new(),
    })
}

/// Text stored for an author: (`author_kind`, `author_agent_id`).
pub(crate) fn author_columns(author: &Author) -> (&'static str, Option<i64>) {
    match author {
        Author::Customer => ("customer", None),
        Author::Agent(id) => ("agent", Some(*id)),
    }
}

/// Text stored for a message kind.
pub(crate) fn kind_column(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Reply => "reply",
        MessageKind::Note => "note",
    }
}

fn message_from_row(row: &SqliteRow) -> Result<(TicketKey, i64, Message)> {
    let author = match row.try_get::<String, _>("author_kind")?.as_str() {
        "customer" => Author::Customer,
        "agent" => Author::Agent(
            row.try_get::<Option<i64>, _>("author_agent_id")?
                .ok_or_else(|| {
                    StoreError::Corrupt("agent message without author_agent_id".into())
                })?,
        ),
        other => {
            return Err(StoreError::Corrupt(format!(
                "unknown author kind {other:?}"
            )));
        }
    };
    let kind = match row.try_get::<String, _>("kind")?.as_str() {
        "reply" => MessageKind::Reply,
        "note" => MessageKind::Note,
        other => {
            return Err(StoreError::Corrupt(format!(
                "unknown message kind {other:?}"
            )));
        }
    };
    let created_at: String = row.try_get("created_at")?;
    Ok((
        key_from_row(row)?,
        row.try_get("position")?,
        Message {
            id: row.try_get("message_id")?,
            author,
            kind,
            body: row.try_get("body")?,
            created_at: parse_datetime(&created_at)?,
            attachments: Vec::new(),
        },
    ))
}

fn attachment_from_row(row: &SqliteRow) -> Result<(TicketKey, i64, Attachment)> {
    let size: Option<i64> = row.try_get("size")?;
    let kind: String = row.try_get("kind")?;
    Ok((
        key_from_row(row)?,
        row.try_get("position")?,
        Attachment {
            url: row.try_get("url")?,
            name: row.try_get("name")?,
            kind: AttachmentKind::parse(&kind),
            size: size.and_then(|s| u64::try_from(s).ok()),
        },
    ))
}

/// Which tickets of a key range [`attach_messages_of`] reads the messages of.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum MessageScope {
    /// Every ticket of the range.
    All,
    /// Only tickets not loaded: the report's walk skips loaded tickets, whose messages are most
    /// of the store, so reading them and dropping them would cost as much as mapping them.
    NotLoaded,
}

/// Fills in the messages and attachments of the tickets of `scope` among `tickets`, which must be
/// sorted by key and lie within `first..=last`: two key-range scans, so a page of tickets costs
/// three queries in all (the other tickets' messages are never touched).
pub(crate) async fn attach_messages_of(
    pool: &SqlitePool,
    tickets: &mut [Ticket],
    first: TicketKey,
    last: TicketKey,
    scope: MessageScope,
) -> Result<()> {
    let messages_sql = match scope {
        MessageScope::All => {
            "SELECT product_id, ticket_id, position, message_id, author_kind, author_agent_id, \
                    kind, body, created_at
             FROM messages
             WHERE (product_id, ticket_id) >= (?1, ?2) AND (product_id, ticket_id) <= (?3, ?4)
             ORDER BY product_id, ticket_id, position"
        }
        // CROSS JOIN keeps the tickets as the outer loop: the messages are read by key.
        MessageScope::NotLoaded => {
            "SELECT m.product_id AS product_id, m.ticket_id AS ticket_id, m.position AS position, \
                    m.message_id AS message_id, m.author_kind AS author_kind, \
                    m.author_agent_id AS author_agent_id, m.kind AS kind, m.body AS body, \
                    m.created_at AS created_at
             FROM tickets t CROSS JOIN messages m
               ON m.product_id = t.product_id AND m.ticket_id = t.ticket_id
             WHERE (t.product_id, t.ticket_id) >= (?1, ?2) AND (t.product_id, t.ticket_id) <= (?3, ?4)
               AND t.state != 'loaded'
             ORDER BY m.product_id, m.ticket_id, m.position"
        }
    };
    let message_rows = key_range_rows(pool, messages_sql, first, last).await?;
    let attachments_sql = match scope {
        MessageScope::All => {
            "SELECT product_id, ticket_id, position, idx, url, name, kind, size
             FROM attachments
             WHERE (product_id, ticket_id) >= (?1, ?2) AND (product_id, ticket_id) <= (?3, ?4)
             ORDER BY product_id, ticket_id, position, idx"
        }
        MessageScope::NotLoaded => {
            "SELECT a.product_id AS product_id, a.ticket_id AS ticket_id, a.position AS position, \
                    a.idx AS idx, a.url AS url, a.name AS name, a.kind AS kind, a.size AS size
             FROM tickets t CROSS JOIN attachments a
               ON a.product_id = t.product_id AND a.ticket_id = t.ticket_id
             WHERE (t.product_id, t.ticket_id) >= (?1, ?2) AND (t.product_id, t.ticket_id) <= (?3, ?4)
               AND t.state != 'loaded'
             ORDER BY a.product_id, a.ticket_id, a.position, a.idx"
        }
    };
    let attachment_rows = key_range_rows(pool, attachments_sql, first, last).await?;
    attach_rows(tickets, &message_rows, &attachment_rows)
}

/// Fills in the messages of `tickets` from message rows (in position order) and their
/// attachments from attachment rows (in position and index order); rows of other tickets are
/// passed over.
pub(crate) fn attach_rows(
    tickets: &mut [Ticket],
    message_rows: &[SqliteRow],
    attachment_rows: &[SqliteRow],
) -> Result<()> {
    let index: HashMap<TicketKey, usize> = tickets
        .iter()
        .enumerate()
        .map(|(i, t)| (t.key, i))
        .collect();
    // position -> index in ticket.messages, per ticket
    let mut positions: HashMap<(TicketKey, i64), (usize, usize)> = HashMap::new();
    for row in message_rows {
        let (key, position, message) = message_from_row(row)?;
        if let Some(&i) = index.get(&key) {
            positions.insert((key, position), (i, tickets[i].messages.len()));
            tickets[i].messages.push(message);
        }
    }
    for row in attachment_rows {
        let (key, position, attachment) = attachment_from_row(row)?;
        if let Some(&(t, m)) = positions.get(&(key, position)) {
            tickets[t].messages[m].attachments.push(attachment);
        }
    }
    Ok(())
}

/// The tickets an `UPDATE … RETURNING product_id, ticket_id, batch_id` claimed, in batch order
/// (`RETURNING` gives no order), so loading follows the listing.
pub(crate) fn claimed_keys(rows: &[sqlx::sqlite::SqliteRow]) -> Result<Vec<TicketKey>> {
    let mut claimed = rows
        .iter()
        .map(|r| Ok((r.try_get::<i64, _>("batch_id")?, key_from_row(r)?)))
        .collect::<Result<Vec<_>>>()?;
    claimed.sort_unstable();
    Ok(claimed.into_iter().map(|(_, k)| k).collect())
}

/// Runs a statement about one ticket whose last two parameters (`… WHERE product_id = ? AND
/// ticket_id = ?`) are still to bind: binds `key` there and answers how many rows it changed.
pub(crate) async fn on_ticket(
    conn: &mut sqlx::SqliteConnection,
    key: TicketKey,
    query: crate::SqliteQuery<'_>,
) -> Result<u64> {
    let done = query
        .bind(key.product_id)
        .bind(key.ticket_id)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

/// Forgets a ticket's failures in `stage`: once the stage has succeeded (a detail saved) or is
/// handed back to run again, its old failure must no longer be reported or counted.
pub(crate) async fn forget_failures(
    conn: &mut sqlx::SqliteConnection,
    key: TicketKey,
    stage: crate::Stage,
) -> Result<u64> {
    on_ticket(
        conn,
        key,
        sqlx::query("DELETE FROM failures WHERE stage = ? AND product_id = ? AND ticket_id = ?")
            .bind(stage.as_str()),
    )
    .await
}

/// [`on_ticket`] for an `UPDATE tickets`: `NotFound` when the store has no such ticket.
pub(crate) async fn update_ticket(
    conn: &mut sqlx::SqliteConnection,
    key: TicketKey,
    query: crate::SqliteQuery<'_>,
) -> Result<()> {
    if on_ticket(conn, key, query).await? == 0 {
        return Err(StoreError::NotFound(format!("ticket {key}")));
    }
    Ok(())
}

/// The rows of a query whose four parameters are the first and the last key of a range.
async fn key_range_rows(
    pool: &sqlx::SqlitePool,
    sql: &'static str,
    first: TicketKey,
    last: TicketKey,
) -> Result<Vec<SqliteRow>> {
    Ok(sqlx::query(sql)
        .bind(first.product_id)
        .bind(first.ticket_id)
        .bind(last.product_id)
        .bind(last.ticket_id)
        .fetch_all(pool)
        .await?)
}
