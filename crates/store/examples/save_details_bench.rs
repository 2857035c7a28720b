//! Measures `save_details` throughput: 10 000 tickets (or the number given as first argument) × 5 messages (plus attachments), saved in
//! batches of one list page (20), as the extractor does, then read back with `tickets_page`.
//!
//! Run: `cargo run -p store --example save_details_bench` (dependencies, SQLite included, are
//! built optimised in the dev profile).

use std::time::Instant;

use jiff::civil::DateTime;
use model::{Attachment, AttachmentKind, Author, Message, MessageKind, Ticket, TicketKey};
use store::{CaseRef, IntentResult, IntentStep, ListedTicket, Store};

/// The tests' fixtures: the bench's tickets share their customer side (`ticket_from_ada`).
#[path = "../tests/common/mod.rs"]
mod common;

const MESSAGES: i64 = 5;
const PAGE: i64 = 20;

fn ticket(id: i64, created: DateTime) -> Ticket {
    Ticket {
        messages: (0..MESSAGES)
            .map(|i| Message {
                id: id * 10 + i,
                author: if i % 2 == 0 {
                    Author::Customer
                } else {
                    Author::Agent(74)
                },
                kind: if i == MESSAGES - 1 {
                    MessageKind::Note
                } else {
                    MessageKind::Reply
                },
                body: format!("<p>{}</p>", "Lorem ipsum dolor sit amet. ".repeat(20)),
                created_at: created.into(),
                attachments: if i == 0 {
                    vec![Attachment {
                        url: format!("https://files.example/{id}.png"),
                        name: "screenshot.png".into(),
                        kind: AttachmentKind::Image,
                        size: Some(123_456),
                    }]
                } else {
                    vec![]
                },
            })
            .collect(),
        ..common::ticket_from_ada(
            TicketKey::new(1, id),
            format!("Subject of ticket {id}"),
            created.into(),
        )
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // optional first argument: number of tickets (default 10 000, rounded to whole pages)
    let tickets: i64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000);
    let tickets = tickets / PAGE * PAGE;
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path().join("bench.sqlite")).await?;
    let created: DateTime = "2024-03-01T10:00:00".parse()?;

    let start = Instant::now();
    for page in 0..tickets / PAGE {
        let listed: Vec<_> = (page * PAGE..(page + 1) * PAGE)
            .map(|id| ListedTicket {
                ticket_id: id,
                updated_at: "2024-03-02 08:00:00".into(),
            })
            .collect();
        store.record_page(1, page + 1, &listed, None).await?;
    }
    let listing = start.elapsed();

    let raw = "{\"id\":1,\"subject\":\"x\",\"messages\":[]}";
    let start = Instant::now();
    for page in 0..tickets / PAGE {
        let batch: Vec<_> = (page * PAGE..(page + 1) * PAGE)
            .map(|id| (ticket(id, created), raw))
            .collect();
        store.save_details(&batch).await?;
    }
    let saving = start.elapsed();

    let start = Instant::now();
    let mut after = None;
    let mut read = 0;
    loop {
        let page = store.tickets_page(after, 500).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.key);
        read += page.len();
    }
    let reading = start.elapsed();

    // the loader's journal: open (fsynced) + complete per write, 2 000 writes
    let start = Instant::now();
    let mut writes = 0;
    for key in store.claim_for_load(400).await? {
        for step in [
            IntentStep::Create,
            IntentStep::Message(1),
            IntentStep::Message(2),
            IntentStep::Note(3),
            IntentStep::Update,
        ] {
            let id = store.open_intent(key, step, "hash").await?;
            let result = match step {
                IntentStep::Create => IntentResult::Case(CaseRef {
                    case_id: key.ticket_id,
                    case_number: key.ticket_id.to_string(),
                    user_id: 1,
                }),
                IntentStep::Message(s) | IntentStep::Note(s) => IntentResult::Message {
                    source_id: s,
                    deskie_id: s,
                },
                IntentStep::Update => IntentResult::Final,
            };
            store.complete_intent(id, result).await?;
            writes += 1;
        }
        store.mark_loaded(key).await?;
    }
    let journaling = start.elapsed();

    let start = Instant::now();
    let counts = store.counts().await?;
    let counting = start.elapsed();
    println!(
        "counts: {} tickets, {} messages, {} notes in {:.3}s",
        counts.tickets.values().sum::<u64>(),
        counts.messages,
        counts.notes,
        counting.as_secs_f64()
    );

    let rows = tickets * (1 + MESSAGES + 1); // ticket + messages + one attachment each
    println!(
        "record_page: {tickets} tickets in {} pages: {:.2}s ({:.0} tickets/s)",
        tickets / PAGE,
        listing.as_secs_f64(),
        tickets as f64 / listing.as_secs_f64()
    );
    println!(
        "save_details: {tickets} tickets x {MESSAGES} messages in batches of {PAGE}: {:.2}s \
         ({:.0} tickets/s, {:.0} rows/s)",
        saving.as_secs_f64(),
        tickets as f64 / saving.as_secs_f64(),
        rows as f64 / saving.as_secs_f64()
    );
    println!(
        "tickets_page: {read} tickets read back in pages of 500: {:.2}s ({:.0} tickets/s)",
        reading.as_secs_f64(),
        read as f64 / reading.as_secs_f64()
    );
    println!(
        "intents: {writes} writes journaled (open fsynced + complete with id map): {:.2}s \
         ({:.0} writes/s)",
        journaling.as_secs_f64(),
        writes as f64 / journaling.as_secs_f64()
    );
    store.close().await;
    Ok(())
}
