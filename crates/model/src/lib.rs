//! The plain domain model: a help-desk ticket as this program thinks of it.
//!
//! This is the middle of the three type layers. The `desk360` crate parses what the source sends
//! leniently (nulls, naive timestamps, attachment groups); the engine normalises that into these
//! types; the store persists them; the mapping turns them into the strict request types of the
//! `deskie` crate. Nothing here knows about HTTP, SQL or either vendor's field names, so every
//! other crate can depend on it without depending on each other.

use std::fmt;

use jiff::civil::DateTime;
use serde::{Deserialize, Serialize};

/// Identifies one Desk360 ticket. Desk360 scopes tickets by product, so the pair is the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TicketKey {
    /// The Desk360 product the ticket belongs to.
    pub product_id: i64,
    /// The Desk360 ticket id.
    pub ticket_id: i64,
}

impl TicketKey {
    /// Builds a key from its two parts.
    pub fn new(product_id: i64, ticket_id: i64) -> Self {
        Self {
            product_id,
            ticket_id,
        }
    }

    /// The value written to Deskie's `source_id_field` custom field, so a case can be found again
    /// when a create's response was lost: `desk360:<product>:<ticket>;`. The `;` terminator
    /// makes it a substring of no other key (`desk360:11:1` is inside `desk360:11:10`, but
    /// `desk360:11:1;` is not inside `desk360:11:10;`), so one plain search finds exactly it
    /// whether Deskie's filter matches exactly, by substring, or by its `^…^` syntax.
    pub fn source_id(&self) -> String {
        format!("desk360:{}:{};", self.product_id, self.ticket_id)
    }

    /// The key as versions before the terminator wrote it (`desk360:<product>:<ticket>`): a
    /// create reconciled after an upgrade may have been sent with it.
    pub fn legacy_source_id(&self) -> String {
        format!("desk360:{}:{}", self.product_id, self.ticket_id)
    }
}

impl fmt::Display for TicketKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.product_id, self.ticket_id)
    }
}

/// Who wrote a message. Desk360 marks customer messages with `agent_id` 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "by", content = "agent_id", rename_all = "snake_case")]
pub enum Author {
    /// The customer who owns the ticket.
    Customer,
    /// A Desk360 agent, by Desk360 agent id.
    Agent(i64),
}

impl Author {
    /// Reads Desk360's convention: `0` or absent means the customer.
    pub fn from_desk360_agent_id(agent_id: Option<i64>) -> Self {
        match agent_id {
            Some(id) if id != 0 => Author::Agent(id),
            _ => Author::Customer,
        }
    }
}

/// Whether a message is part of the conversation or an internal note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// A reply visible to the customer (Desk360 `type` other than 6).
    Reply,
    /// An internal note, visible to agents only (Desk360 `type` 6).
    Note,
}

impl MessageKind {
    /// Desk360 message `type` 6 is a note; every other type is part of the conversation.
    pub fn from_desk360_type(kind: i64) -> Self {
        if kind == 6 {
            MessageKind::Note
        } else {
            MessageKind::Reply
        }
    }
}

/// Desk360 groups attachments as images, videos, files and others; the group is kept for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentKind {
    /// From the `images` group.
    Image,
    /// From the `videos` group.
    Video,
    /// From the `files` group.
    File,
    /// From the `others` group.
    Other,
}

impl AttachmentKind {
    /// The lowercase name used in the store and reports.
    pub fn as_str(&self) -> &'static str {
        match self {
            AttachmentKind::Image => "image",
            AttachmentKind::Video => "video",
            AttachmentKind::File => "file",
            AttachmentKind::Other => "other",
        }
    }

    /// Parses [`AttachmentKind::as_str`] back; unknown names are `Other`.
    pub fn parse(s: &str) -> Self {
        match s {
            "image" => AttachmentKind::Image,
            "video" => AttachmentKind::Video,
            "file" => AttachmentKind::File,
            _ => AttachmentKind::Other,
        }
    }
}

/// A file attached to a message. Deskie fetches it from `url` (`attachment_urls`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Where the file can be downloaded.
    pub url: String,
    /// File name as Desk360 shows it.
    pub name: String,
    /// Desk360's attachment group.
    pub kind: AttachmentKind,
    /// Size in bytes when the source says it; needed to respect Deskie's 25 MB / 50 MB limits.
    pub size: Option<u64>,
}

/// One message of a ticket, in the order Desk360 lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Desk360 message id; breaks ties between equal timestamps.
    pub id: i64,
    /// Who wrote it.
    pub author: Author,
    /// Reply or internal note.
    pub kind: MessageKind,
    /// HTML body as Desk360 stores it (may be empty).
    pub body: String,
    /// Desk360's naive timestamp; converted with `source.timezone` only when mapping.
    pub created_at: DateTime,
    /// Files attached to it.
    pub attachments: Vec<Attachment>,
}

/// A Desk360 ticket with everything needed to recreate it in Deskie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// Product + ticket id.
    pub key: TicketKey,
    /// Subject; Desk360 often leaves it null, the mapping then derives one.
    pub subject: Option<String>,
    /// Customer's display name.
    pub customer_name: Option<String>,
    /// Customer's email, required for the Email channel.
    pub customer_email: Option<String>,
    /// Customer's phone when the source carries one, required for the Calls channel.
    pub customer_phone: Option<String>,
    /// Desk360 channel name (e.g. "Email", "Application"); routes the ticket to a Deskie channel.
    pub channel: Option<String>,
    /// Desk360 platform (e.g. "Android"); informational.
    pub platform: Option<String>,
    /// Desk360 status code (0 open, 1 resolved, 2 waiting).
    pub status: Option<i64>,
    /// Desk360 priority code (0 low, 1 medium, 2 high, 3 urgent).
    pub priority: Option<i64>,
    /// Assigned Desk360 agent, if any.
    pub agent_id: Option<i64>,
    /// Desk360 ticket type, if any.
    pub type_id: Option<i64>,
    /// Desk360 ticket reason, if any.
    pub reason_id: Option<i64>,
    /// When the ticket was opened (naive, source time zone).
    pub created_at: DateTime,
    /// Desk360's `updated_at` exactly as sent; a ticket whose value is unchanged is not re-fetched.
    pub updated_at: String,
    /// Messages and notes sorted by (created_at, id): the order they are written to Deskie.
    pub messages: Vec<Message>,
}

impl Ticket {
    /// Sorts messages into the order they must be written: by time, equal times by Desk360 id.
    pub fn sort_messages(&mut self) {
        self.messages.sort_by_key(|m| (m.created_at, m.id));
    }

    /// Replies (not notes), in write order.
    pub fn replies(&self) -> impl Iterator<Item = &Message> {
        self.messages
            .iter()
            .filter(|m| m.kind == MessageKind::Reply)
    }

    /// Notes, in write order.
    pub fn notes(&self) -> impl Iterator<Item = &Message> {
        self.messages.iter().filter(|m| m.kind == MessageKind::Note)
    }
}

/// A Desk360 agent, used to report mapping gaps by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    /// Desk360 agent id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Login email, when known.
    pub email: Option<String>,
}

/// A Desk360 ticket type or reason: an id and a title, optionally scoped to a product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    /// Desk360 id.
    pub id: i64,
    /// Product it belongs to (0 or absent: all products).
    pub product_id: Option<i64>,
    /// Title shown to agents.
    pub title: String,
}

/// A Desk360 product: the unit tickets are listed by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// Desk360 product id.
    pub id: i64,
    /// Display name.
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_id_is_stable() {
        assert_eq!(TicketKey::new(3, 42).source_id(), "desk360:3:42;");
        assert_eq!(TicketKey::new(3, 42).legacy_source_id(), "desk360:3:42");
    }

    #[test]
    fn agent_zero_is_customer() {
        assert_eq!(Author::from_desk360_agent_id(Some(0)), Author::Customer);
        assert_eq!(Author::from_desk360_agent_id(None), Author::Customer);
        assert_eq!(Author::from_desk360_agent_id(Some(7)), Author::Agent(7));
    }

    #[test]
    fn messages_sort_by_time_then_id() {
        let at = |s: &str| s.parse::<DateTime>().unwrap();
        let msg = |id, t: &str| Message {
            id,
            author: Author::Customer,
            kind: MessageKind::Reply,
            body: String::new(),
            created_at: at(t),
            attachments: vec![],
        };
        let mut t = Ticket {
            key: TicketKey::new(1, 1),
            subject: None,
            customer_name: None,
            customer_email: None,
            customer_phone: None,
            channel: None,
            platform: None,
            status: None,
            priority: None,
            agent_id: None,
            type_id: None,
            reason_id: None,
            created_at: at("2020-01-01T00:00:00"),
            updated_at: String::new(),
            messages: vec![
                msg(3, "2020-01-01T00:00:05"),
                msg(2, "2020-01-01T00:00:01"),
                msg(1, "2020-01-01T00:00:01"),
            ],
        };
        t.sort_messages();
        let ids: Vec<_> = t.messages.iter().map(|m| m.id).collect();
        assert_eq!(ids, vec![1, 2, 3]);
    }
}
