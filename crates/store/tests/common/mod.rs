//! Shared fixtures for the store's tests: temp stores and synthetic tickets.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use jiff::civil::DateTime;
use model::{Attachment, AttachmentKind, Author, Message, MessageKind, Ticket, TicketKey};
use store::{ListedTicket, Store};

/// Every await in the tests is bounded by this.
pub const LIMIT: Duration = Duration::from_secs(60);

/// Runs a future with the test time bound.
pub async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("test step timed out")
}

/// A fresh store in a fresh temp dir (kept alive by the returned guard).
pub async fn fresh() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = bounded(Store::open(dir.path().join("store.sqlite")))
        .await
        .unwrap();
    (dir, store)
}

/// A civil datetime from text.
pub fn at(s: &str) -> DateTime {
    s.parse().unwrap()
}

/// A naive source time from text.
pub fn naive(s: &str) -> model::SourceTime {
    model::SourceTime::Naive(at(s))
}

/// A ticket with `n` messages: every third a note, agents on odd ones, one attachment on even.
pub fn ticket(product_id: i64, ticket_id: i64, n: usize) -> Ticket {
    let messages = (0..n)
        .map(|i| {
            let id = ticket_id * 100 + i as i64;
            Message {
                id,
                author: if i % 2 == 1 {
                    Author::Agent(70 + i as i64)
                } else {
                    Author::Customer
                },
                kind: if i % 3 == 2 {
                    MessageKind::Note
                } else {
                    MessageKind::Reply
                },
                body: format!("<p>message {i} of ticket {ticket_id}</p>"),
                created_at: (at("2024-03-01T10:00:00") + jiff::Span::new().minutes(i as i64))
                    .into(),
                attachments: if i % 2 == 0 {
                    vec![Attachment {
                        url: format!("https://files.example/{ticket_id}/{i}.png"),
                        name: format!("shot-{i}.png"),
                        kind: AttachmentKind::Image,
                        size: Some(1000 + i as u64),
                    }]
                } else {
                    vec![]
                },
            }
        })
        .collect();
    Ticket {
        messages,
        ..ticket_from_ada(
            TicketKey::new(product_id, ticket_id),
            format!("Subject {ticket_id}"),
            naive("2024-03-01T09:59:00"),
        )
    }
}

/// A ticket without messages from Ada Lovelace by email (resolved, high priority, agent 74,
/// type 3): the customer side the tests' tickets and `save_details_bench`'s share, so that both
/// exercise the same columns.
pub fn ticket_from_ada(key: TicketKey, subject: String, created_at: model::SourceTime) -> Ticket {
    Ticket {
        key,
        subject: Some(subject),
        customer_name: Some("Ada Lovelace".into()),
        customer_email: Some(format!("ada{}@example.com", key.ticket_id)),
        customer_phone: None,
        channel: Some("Email".into()),
        platform: Some("Web".into()),
        status: Some(1),
        priority: Some(2),
        agent_id: Some(74),
        type_id: Some(3),
        reason_id: None,
        created_at,
        updated_at: "2024-03-02 08:00:00".into(),
        messages: Vec::new(),
    }
}

/// A listing entry.
pub fn listed(ticket_id: i64, updated_at: &str) -> ListedTicket {
    ListedTicket {
        ticket_id,
        updated_at: updated_at.into(),
    }
}

/// Raw JSON for a ticket (any text: the store keeps it verbatim).
pub fn raw(t: &Ticket) -> String {
    serde_json::to_string(t).unwrap()
}

/// The ids of the intents still open, in id order (`Store::open_intents` reads them that way).
pub async fn open_intent_ids(store: &Store) -> Vec<store::IntentId> {
    store
        .open_intents()
        .await
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect()
}
