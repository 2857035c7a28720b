//! The report's store queries at scale: loaded tickets are counted from their rows and the
//! intent journal (never mapped again), the tickets not loaded come back with their messages.

mod common;

use common::{bounded, fresh, listed, ticket};
use model::TicketKey;
use store::{IntentResult, IntentStep, LoadedGroup, LoadedWrites, Store};

/// Opens and completes one intent of `step` for `key`.
async fn done(store: &Store, key: TicketKey, step: IntentStep, hash: &str) {
    let id = store
        .open_intent(key, step, hash)
        .await
        .expect("intent opens");
    let result = match step {
        IntentStep::Create => IntentResult::Case(store::CaseRef {
            case_id: 1000 + key.ticket_id,
            case_number: format!("1-{}", key.ticket_id),
            user_id: 5,
        }),
        IntentStep::Message(s) | IntentStep::Note(s) => IntentResult::Message {
            source_id: s,
            deskie_id: 9000 + s,
        },
        IntentStep::Update => IntentResult::Final,
    };
    store
        .complete_intent(id, result)
        .await
        .expect("intent completes");
}

/// Twelve tickets: 1–10 loaded (1–5 on channel Chat), 11 written in part but not loaded
/// (a failed load), 12 extracted only.
async fn store_with_a_partial_migration() -> (tempfile::TempDir, Store) {
    let (dir, store) = fresh().await;
    let listing: Vec<_> = (1..=12).map(|i| listed(i, "u")).collect();
    store
        .record_page(1, 1, &listing, None)
        .await
        .expect("page recorded");
    let details: Vec<(model::Ticket, &str)> = (1..=12)
        .map(|i| {
            let mut t = ticket(1, i, 4);
            if i <= 5 {
                t.channel = Some("Chat".into());
            }
            (t, "{}")
        })
        .collect();
    store.save_details(&details).await.expect("details saved");
    for i in 1..=11 {
        let key = TicketKey::new(1, i);
        done(&store, key, IntentStep::Create, "c").await;
        done(&store, key, IntentStep::Message(i * 100 + 1), "m").await;
        // Ten loaded cases share one final payload (one bulk request); ticket 11's would make
        // eleven (two requests) if it were counted.
        done(&store, key, IntentStep::Update, "final-a").await;
        if i <= 10 {
            store.mark_loaded(key).await.expect("marked loaded");
        }
    }
    // An abandoned write never happened; an open one is counted apart (to reconcile).
    let key = TicketKey::new(1, 3);
    let gone = store
        .open_intent(key, IntentStep::Note(302), "n")
        .await
        .expect("intent opens");
    store.abandon_intent(gone).await.expect("intent abandoned");
    store
        .open_intent(key, IntentStep::Message(303), "m")
        .await
        .expect("intent opens");
    (dir, store)
}

#[tokio::test]
async fn loaded_writes_come_from_the_journal_of_loaded_tickets_only() {
    bounded(async {
        let (_dir, store) = store_with_a_partial_migration().await;
        let writes = store.loaded_writes(10).await.unwrap();
        assert_eq!(
            writes,
            LoadedWrites {
                singles: 20,
                bulk_updates: 1
            },
            "10 creates + 10 messages, one bulk update; ticket 11 and the abandoned or open \
             intents are not writes done"
        );
        assert_eq!(writes.total(), 21);
        // Smaller bulk requests: ⌈10 / 4⌉.
        assert_eq!(store.loaded_writes(4).await.unwrap().bulk_updates, 3);
        assert_eq!(store.open_intent_count().await.unwrap(), 1);
    })
    .await;
}

#[tokio::test]
async fn loaded_tickets_are_grouped_by_channel_status_and_priority() {
    bounded(async {
        let (_dir, store) = store_with_a_partial_migration().await;
        let mut groups = store.loaded_ticket_groups().await.unwrap();
        groups.sort_by(|a, b| a.channel.cmp(&b.channel));
        let group = |channel: &str| LoadedGroup {
            channel: Some(channel.into()),
            status: Some(1),
            priority: Some(2),
            tickets: 5,
        };
        assert_eq!(groups, vec![group("Chat"), group("Email")]);
    })
    .await;
}

#[tokio::test]
async fn the_unloaded_walk_returns_only_tickets_not_loaded_with_their_messages() {
    bounded(async {
        let (_dir, store) = store_with_a_partial_migration().await;
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store.unloaded_tickets_page(after, 1).await.unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.key);
            for t in &page {
                assert_eq!(t.messages.len(), 4, "{}", t.key);
                assert_eq!(t.messages[0].attachments.len(), 1, "{}", t.key);
                assert_eq!(t, &ticket(1, t.key.ticket_id, 4));
            }
            seen.extend(page.into_iter().map(|t| t.key.ticket_id));
        }
        assert_eq!(seen, vec![11, 12]);
    })
    .await;
}
