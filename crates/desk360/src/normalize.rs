//! From Desk360's lenient shapes to the plain domain model (`model::Ticket`): naive timestamps
//! parsed, `agent_id` 0 read as the customer, `type` 6 as a note, attachment groups flattened,
//! messages put in write order. Kept here because every rule is a Desk360 convention; the engine
//! calls [`TicketDetail::to_model`] and never needs to know them.

use jiff::civil::DateTime;
use model::{Attachment, Author, Message, MessageKind, Ticket, TicketKey};

use crate::models::{MessageDto, TicketDetail};

/// Parses Desk360's naive `YYYY-MM-DD HH:MM:SS` (also with `T`, fractional seconds, or a bare
/// date meaning midnight). A value with a UTC offset is refused rather than silently shifted:
/// Desk360 documents naive times, converted later with `source.timezone`.
pub fn parse_naive_timestamp(s: &str) -> Option<DateTime> {
    let s = s.trim();
    if let Ok(dt) = s.parse::<DateTime>() {
        return Some(dt);
    }
    if let Ok(dt) = DateTime::strptime("%Y-%m-%d %H:%M:%S", s) {
        return Some(dt);
    }
    s.parse::<jiff::civil::Date>()
        .ok()
        .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
}

/// A ticket in the domain model, with what could not be carried over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelTicket {
    /// The normalized ticket, messages sorted by (created_at, id).
    pub ticket: Ticket,
    /// Things left out, one readable line each (e.g. an attachment without a URL): the engine
    /// puts them in the report so nothing is dropped silently.
    pub warnings: Vec<String>,
}

fn message_to_model(m: &MessageDto, warnings: &mut Vec<String>) -> Result<Message, String> {
    let created_at = match m.created_at.as_deref() {
        Some(s) => parse_naive_timestamp(s)
            .ok_or_else(|| format!("message {} has an unreadable created_at {s:?}", m.id))?,
        None => return Err(format!("message {} has no created_at", m.id)),
    };
    let mut attachments = Vec::with_capacity(m.attachments.len());
    for (kind, a) in m.attachments.iter() {
        match a.url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) => attachments.push(Attachment {
                url: url.to_owned(),
                name: a
                    .name
                    .clone()
                    .unwrap_or_else(|| url.rsplit('/').next().unwrap_or(url).to_owned()),
                kind,
                size: a.size,
            }),
            None => warnings.push(format!(
                "message {}: {} attachment {:?} has no URL and cannot be migrated",
                m.id,
                kind.as_str(),
                a.name.as_deref().unwrap_or("(unnamed)")
            )),
        }
    }
    Ok(Message {
        id: m.id,
        author: Author::from_desk360_agent_id(m.agent_id),
        kind: MessageKind::from_desk360_type(m.kind.unwrap_or(0)),
        body: m.message.clone().unwrap_or_default(),
        created_at,
        attachments,
    })
}

impl TicketDetail {
    /// Converts to the domain model. Fails (with a reason naming the message) only when a
    /// message or the ticket has no readable time, which would make its order unknowable. A
    /// ticket without `created_at` takes its earliest message's.
    pub fn to_model(&self, product_id: i64) -> Result<ModelTicket, String> {
        let mut warnings = Vec::new();
        let messages = self
            .messages
            .iter()
            .map(|m| message_to_model(m, &mut warnings))
            .collect::<Result<Vec<_>, _>>()?;
        let created_at = match self.created_at.as_deref() {
            Some(s) => parse_naive_timestamp(s)
                .ok_or_else(|| format!("ticket has an unreadable created_at {s:?}"))?,
            None => messages
                .iter()
                .map(|m| m.created_at)
                .min()
                .ok_or("ticket has no created_at and no messages")?,
        };
        let blank = |s: &Option<String>| s.clone().filter(|v| !v.trim().is_empty());
        let mut ticket = Ticket {
            key: TicketKey::new(product_id, self.id),
            subject: blank(&self.subject),
            customer_name: blank(&self.name),
            customer_email: blank(&self.email),
            customer_phone: blank(&self.phone),
            channel: blank(&self.channel),
            platform: blank(&self.platform),
            status: self.status,
            priority: self.priority,
            agent_id: self.agent_id.filter(|a| *a != 0),
            type_id: self.type_id.filter(|t| *t != 0),
            reason_id: self.reason_id.filter(|r| *r != 0),
            created_at,
            updated_at: self.updated_at.clone().unwrap_or_default(),
            messages,
        };
        ticket.sort_messages();
        Ok(ModelTicket { ticket, warnings })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naive_timestamps() {
        let want: DateTime = "2020-04-02T11:19:26".parse().unwrap();
        assert_eq!(parse_naive_timestamp("2020-04-02 11:19:26"), Some(want));
        assert_eq!(parse_naive_timestamp("2020-04-02T11:19:26"), Some(want));
        assert_eq!(
            parse_naive_timestamp("2020-04-02"),
            Some("2020-04-02T00:00:00".parse().unwrap())
        );
        assert!(parse_naive_timestamp("2020-04-02 11:19:26.5").is_some());
        assert_eq!(parse_naive_timestamp("yesterday"), None);
        assert_eq!(parse_naive_timestamp("2020-04-02T11:19:26Z"), None);
    }

    #[test]
    fn detail_to_model() {
        let raw = r#"{"id": 42, "agent_id": 0, "subject": "  ", "email": "c@x.test", "phone": "+1 555",
            "status": "2", "created_at": null, "updated_at": "2021-01-17 15:58:41",
            "messages": [
              {"id": 9, "agent_id": 74, "type": 6, "message": "internal", "created_at": "2020-04-02 11:20:00"},
              {"id": 8, "agent_id": 0, "type": 0, "message": null, "created_at": "2020-04-02 11:19:26",
               "attachments": {"images": [{"url": "https://x/a.png", "size": 10}], "files": [{"name": "lost.pdf"}]}},
              {"id": 7, "agent_id": 74, "type": 0, "message": "hi", "created_at": "2020-04-02 11:19:26"}
            ]}"#;
        let d = TicketDetail::from_json(raw, "ticket 1/42").unwrap();
        let m = d.to_model(1).unwrap();
        let t = &m.ticket;
        assert_eq!(t.key, TicketKey::new(1, 42));
        assert_eq!(t.subject, None);
        assert_eq!(t.customer_phone.as_deref(), Some("+1 555"));
        assert_eq!(t.agent_id, None);
        assert_eq!(t.status, Some(2));
        assert_eq!(t.created_at, "2020-04-02T11:19:26".parse().unwrap());
        assert_eq!(
            t.messages.iter().map(|m| m.id).collect::<Vec<_>>(),
            vec![7, 8, 9]
        );
        assert_eq!(t.messages[0].author, Author::Agent(74));
        assert_eq!(t.messages[1].author, Author::Customer);
        assert_eq!(t.messages[1].body, "");
        assert_eq!(t.messages[1].attachments.len(), 1);
        assert_eq!(t.messages[1].attachments[0].name, "a.png");
        assert_eq!(t.messages[1].attachments[0].size, Some(10));
        assert_eq!(t.messages[2].kind, MessageKind::Note);
        assert_eq!(m.warnings.len(), 1);
        assert!(m.warnings[0].contains("lost.pdf"), "{:?}", m.warnings);

        let bad = TicketDetail::from_json(r#"{"id": 1, "messages": [{"id": 3}]}"#, "t").unwrap();
        assert_eq!(bad.to_model(1).unwrap_err(), "message 3 has no created_at");
    }
}
