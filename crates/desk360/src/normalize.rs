//! From Desk360's lenient shapes to the plain domain model (`model::Ticket`): timestamps
//! parsed (naive ones kept naive, ones with an offset kept exact), `agent_id` 0 read as the
//! customer, `type` 6 as a note, attachment groups flattened, messages put in write order. Kept
//! here because every rule is a Desk360 convention; the engine calls [`TicketDetail::to_model`]
//! (or [`TicketDetail::to_model_in`]) and never needs to know them.

use jiff::tz::TimeZone;
use model::{Attachment, Author, Message, MessageKind, SourceTime, Ticket, TicketKey};

use crate::models::{MessageDto, TicketDetail};

/// Parses a Desk360 time. Desk360 documents naive `YYYY-MM-DD HH:MM:SS` (also seen with `T`,
/// fractional seconds, or a bare date meaning midnight), read later in `source.timezone`; some
/// accounts send an explicit offset (`+03:00`, `+0300`, `Z`), which is honoured as it is
/// (issue #11.9: dropping it put messages 3–5 h off). See [`SourceTime::parse`].
pub fn parse_timestamp(s: &str) -> Option<SourceTime> {
    SourceTime::parse(s)
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
        Some(s) => parse_timestamp(s)
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
    // Only absent, null, 0 and "0" mean the customer (page 004: "agent_id 0" is the customer);
    // anything else that is not an agent id leaves the author unknown, and a guess could post an
    // agent's reply as the customer's: the ticket fails, naming the message.
    if let Some(raw) = &m.agent_id_unreadable {
        return Err(format!(
            "message {} has an unreadable agent_id {raw:?}: whether the customer or an agent \
             wrote it is unknown, so it is not migrated by a guess",
            m.id
        ));
    }
    // Page 004 shows two message types: 0 a reply, 6 a note. Absent or null is read as a reply
    // (the page's examples always carry it; older bodies without it are conversation). Any
    // other value could be internal: it goes in as a note, never as a public reply.
    let kind = match (m.kind, &m.kind_unreadable) {
        (Some(6), _) => MessageKind::Note,
        (Some(0), _) | (None, None) => MessageKind::Reply,
        (Some(other), _) => {
            warnings.push(format!(
                "message {}: unknown message type {other}; migrated as an internal note, not a \
                 public reply",
                m.id
            ));
            MessageKind::Note
        }
        (None, Some(raw)) => {
            warnings.push(format!(
                "message {}: unknown message type {raw:?}; migrated as an internal note, not a \
                 public reply",
                m.id
            ));
            MessageKind::Note
        }
    };
    Ok(Message {
        id: m.id,
        author: Author::from_desk360_agent_id(m.agent_id),
        kind,
        body: m.message.clone().unwrap_or_default(),
        created_at,
        attachments,
    })
}

impl TicketDetail {
    /// [`TicketDetail::to_model_in`] for a source whose naive times are UTC. Messages are put in
    /// the right order whatever the zone unless a ticket mixes naive and offset-carrying times;
    /// the mapping sorts again in the configured zone before writing.
    pub fn to_model(&self, product_id: i64) -> Result<ModelTicket, String> {
        self.to_model_in(product_id, &TimeZone::UTC)
    }

    /// Converts to the domain model, ordering messages by instant with naive times read in
    /// `tz` (`source.timezone`). Fails (with a reason naming the message) only when a message
    /// or the ticket has no readable time, which would make its order unknowable. A ticket
    /// without `created_at` takes its earliest message's.
    pub fn to_model_in(&self, product_id: i64, tz: &TimeZone) -> Result<ModelTicket, String> {
        let listed = &self.summary;
        let mut warnings = Vec::new();
        let messages = self
            .messages
            .iter()
            .map(|m| message_to_model(m, &mut warnings))
            .collect::<Result<Vec<_>, _>>()?;
        let created_at = match listed.created_at.as_deref() {
            Some(s) => parse_timestamp(s)
                .ok_or_else(|| format!("ticket has an unreadable created_at {s:?}"))?,
            None => messages
                .iter()
                .map(|m| m.created_at)
                .min_by_key(|t| t.to_timestamp(tz))
                .ok_or("ticket has no created_at and no messages")?,
        };
        let blank = |s: &Option<String>| s.clone().filter(|v| !v.trim().is_empty());
        let mut ticket = Ticket {
            key: TicketKey::new(product_id, listed.id),
            subject: blank(&listed.subject),
            customer_name: blank(&listed.name),
            customer_email: blank(&listed.email),
            customer_phone: blank(&self.phone),
            channel: blank(&listed.channel),
            platform: blank(&listed.platform),
            status: listed.status,
            priority: listed.priority,
            agent_id: listed.agent_id.filter(|a| *a != 0),
            type_id: listed.type_id.filter(|t| *t != 0),
            reason_id: listed.reason_id.filter(|r| *r != 0),
            created_at,
            updated_at: listed.updated_at.clone().unwrap_or_default(),
            messages,
        };
        ticket.sort_messages(tz);
        Ok(ModelTicket { ticket, warnings })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use jiff::Timestamp;
    use jiff::civil::DateTime;

    fn naive(s: &str) -> SourceTime {
        SourceTime::Naive(s.parse::<DateTime>().unwrap())
    }

    #[test]
    fn timestamps_keep_an_explicit_offset() {
        let want = naive("2020-04-02T11:19:26");
        assert_eq!(parse_timestamp("2020-04-02 11:19:26"), Some(want));
        assert_eq!(parse_timestamp("2020-04-02T11:19:26"), Some(want));
        assert_eq!(
            parse_timestamp("2020-04-02"),
            Some(naive("2020-04-02T00:00:00"))
        );
        assert!(parse_timestamp("2020-04-02 11:19:26.5").is_some());
        assert_eq!(parse_timestamp("yesterday"), None);
        let utc: Timestamp = "2021-01-17T12:58:41Z".parse().unwrap();
        for s in [
            "2021-01-17 15:58:41+03:00",
            "2021-01-17 15:58:41+0300",
            "2021-01-17T15:58:41+03:00",
            "2021-01-17 12:58:41Z",
        ] {
            assert_eq!(parse_timestamp(s), Some(SourceTime::Exact(utc)), "{s}");
        }
    }

    #[test]
    fn an_unreadable_agent_id_fails_the_ticket_naming_the_message() {
        for raw_id in [r#""-""#, r#""n/a""#, "true", "7.5", r#""74a""#] {
            let raw = format!(
                r#"{{"id": 5, "messages": [
                  {{"id": 1, "agent_id": 0, "message": "hi", "created_at": "2021-01-17 10:00:00"}},
                  {{"id": 2, "agent_id": {raw_id}, "message": "agent?", "created_at": "2021-01-17 11:00:00"}}
                ]}}"#
            );
            let d = TicketDetail::from_json(&raw, "ticket 1/5").unwrap();
            assert!(!d.messages[1].is_from_customer(), "{raw_id}");
            let err = d.to_model(1).unwrap_err();
            assert!(
                err.contains("message 2") && err.contains("agent_id"),
                "{err}"
            );
            // Serialized and read again, it is still refused.
            let again: TicketDetail =
                serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
            assert!(again.to_model(1).is_err(), "{raw_id} after a round trip");
        }
        // Absent, null, 0 and "0" are the customer; a numeric string is an agent.
        let raw = r#"{"id": 5, "messages": [
              {"id": 1, "message": "a", "created_at": "2021-01-17 10:00:00"},
              {"id": 2, "agent_id": null, "message": "b", "created_at": "2021-01-17 10:01:00"},
              {"id": 3, "agent_id": "0", "message": "c", "created_at": "2021-01-17 10:02:00"},
              {"id": 4, "agent_id": 0, "message": "d", "created_at": "2021-01-17 10:03:00"},
              {"id": 5, "agent_id": "74", "message": "e", "created_at": "2021-01-17 10:04:00"}
            ]}"#;
        let t = TicketDetail::from_json(raw, "t")
            .unwrap()
            .to_model(1)
            .unwrap()
            .ticket;
        let authors: Vec<_> = t.messages.iter().map(|m| m.author).collect();
        assert_eq!(
            authors,
            [
                Author::Customer,
                Author::Customer,
                Author::Customer,
                Author::Customer,
                Author::Agent(74)
            ]
        );
    }

    #[test]
    fn an_unknown_message_type_is_never_a_public_reply() {
        let raw = r#"{"id": 5, "messages": [
              {"id": 1, "agent_id": 0, "type": 0, "message": "hi", "created_at": "2021-01-17 10:00:00"},
              {"id": 2, "agent_id": 74, "type": 3, "message": "system?", "created_at": "2021-01-17 10:01:00"},
              {"id": 3, "agent_id": 74, "type": "whisper", "message": "x", "created_at": "2021-01-17 10:02:00"},
              {"id": 4, "agent_id": 74, "type": 6, "message": "note", "created_at": "2021-01-17 10:03:00"},
              {"id": 5, "agent_id": 74, "message": "reply", "created_at": "2021-01-17 10:04:00"}
            ]}"#;
        let m = TicketDetail::from_json(raw, "t")
            .unwrap()
            .to_model(1)
            .unwrap();
        let kinds: Vec<_> = m.ticket.messages.iter().map(|m| m.kind).collect();
        assert_eq!(
            kinds,
            [
                MessageKind::Reply,
                MessageKind::Note,
                MessageKind::Note,
                MessageKind::Note,
                MessageKind::Reply
            ]
        );
        assert_eq!(m.warnings.len(), 2, "{:?}", m.warnings);
        assert!(
            m.warnings[0].contains("message 2") && m.warnings[0].contains("type 3"),
            "{:?}",
            m.warnings
        );
        assert!(
            m.warnings[1].contains("message 3") && m.warnings[1].contains("whisper"),
            "{:?}",
            m.warnings
        );
    }

    #[test]
    fn offsets_survive_to_the_model_and_order_messages_by_instant() {
        // 15:00+03:00 is 12:00Z; the naive 13:00 in Istanbul is 10:00Z: it comes first.
        let raw = r#"{"id": 5, "created_at": "2021-01-17 15:00:00+03:00", "messages": [
              {"id": 1, "agent_id": 0, "message": "late", "created_at": "2021-01-17 15:00:00+0300"},
              {"id": 2, "agent_id": 0, "message": "early", "created_at": "2021-01-17 13:00:00"}
            ]}"#;
        let d = TicketDetail::from_json(raw, "ticket 1/5").unwrap();
        let ist = TimeZone::get("Europe/Istanbul").unwrap();
        let t = d.to_model_in(1, &ist).unwrap().ticket;
        let noon: Timestamp = "2021-01-17T12:00:00Z".parse().unwrap();
        assert_eq!(t.created_at, SourceTime::Exact(noon));
        assert_eq!(
            t.messages.iter().map(|m| m.id).collect::<Vec<_>>(),
            vec![2, 1]
        );
        assert_eq!(t.messages[1].created_at, SourceTime::Exact(noon));
        assert_eq!(t.messages[1].created_at.to_timestamp(&ist), noon);
        assert_eq!(
            t.messages[0].created_at.to_timestamp(&ist),
            "2021-01-17T10:00:00Z".parse::<Timestamp>().unwrap()
        );
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
        assert_eq!(t.created_at, naive("2020-04-02T11:19:26"));
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
