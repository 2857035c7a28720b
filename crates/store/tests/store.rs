//! Behaviour of the checkpoint store, each test on a fresh temp file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

mod common;

use std::collections::HashSet;

use common::{bounded, fresh, listed, open_intent_ids, raw, ticket};
use model::{Attachment, AttachmentKind, Author, Message, MessageKind, Ticket, TicketKey};
use store::{
    AccountIdentity, BatchState, CaseRef, FailureClass, FailureRecord, IntentId, IntentResult,
    IntentStep, ListedTicket, PageOutcome, RequestStat, RetryFilter, RunKind, RunOutcome, Side,
    Stage, Store, StoreError, TicketState,
};

fn fail(stage: Stage, class: FailureClass, message: &str) -> FailureRecord {
    FailureRecord {
        stage,
        step: "create".into(),
        class,
        code: Some("422".into()),
        message: message.into(),
        request: Some("POST /api/cases.json {..}".into()),
    }
}

/// Records one listing page; most tests arrange their tickets this way before the step under test.
async fn list_page(
    store: &Store,
    product_id: i64,
    page: i64,
    listing: &[ListedTicket],
    next_url: Option<&str>,
) -> PageOutcome {
    bounded(store.record_page(product_id, page, listing, next_url))
        .await
        .unwrap()
}

/// Saves the details of `tickets` (raw JSON `{}`: these tests never read it back).
async fn extracted(store: &Store, tickets: &[Ticket]) {
    let details: Vec<_> = tickets.iter().map(|t| (t.clone(), "{}")).collect();
    bounded(store.save_details(&details)).await.unwrap();
}

/// Opens (or finds) the intent for a step, for the tests where opening is arrangement, not
/// the behaviour under test.
async fn open(store: &Store, key: TicketKey, step: IntentStep, hash: &str) -> IntentId {
    bounded(store.open_intent(key, step, hash)).await.unwrap()
}

/// Completes an intent that must be accepted.
async fn complete(store: &Store, id: IntentId, result: IntentResult) {
    bounded(store.complete_intent(id, result)).await.unwrap();
}

/// The result of a message or note step: Desk360's message `source_id` sent as Deskie's `deskie_id`.
fn sent(source_id: i64, deskie_id: i64) -> IntentResult {
    IntentResult::Message {
        source_id,
        deskie_id,
    }
}

/// A ticket's state, read as the assertions compare it.
async fn state_of(store: &Store, key: TicketKey) -> Option<TicketState> {
    bounded(store.ticket_state(key)).await.unwrap()
}

#[tokio::test]
async fn opens_with_wal_owner_only_and_migrations() {
    let (dir, store) = fresh().await;
    assert_eq!(bounded(store.journal_mode()).await.unwrap(), "wal");
    assert_eq!(bounded(store.integrity_check()).await.unwrap(), vec!["ok"]);
    // a write so the WAL exists
    bounded(store.begin_run(RunKind::Run, "fp")).await.unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for name in ["store.sqlite", "store.sqlite-wal", "store.sqlite-shm"] {
            let p = dir.path().join(name);
            if p.exists() {
                let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{name} mode {mode:o}");
            } else {
                assert_eq!(name, "store.sqlite-shm", "{name} missing");
            }
        }
    }
    assert_eq!(store.path(), dir.path().join("store.sqlite"));
    store.close().await;
    // reopening applies no migration twice
    let again = bounded(Store::open(dir.path().join("store.sqlite")))
        .await
        .unwrap();
    assert_eq!(bounded(again.last_runs(5)).await.unwrap().len(), 1);
}

#[tokio::test]
async fn runs_are_recorded() {
    let (_dir, store) = fresh().await;
    let a = store.begin_run(RunKind::DryRun, "abc").await.unwrap();
    let b = store.begin_run(RunKind::Run, "abc").await.unwrap();
    store.finish_run(a, RunOutcome::Completed).await.unwrap();
    let runs = store.last_runs(10).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].id, b);
    assert_eq!(runs[0].finished_at, None);
    assert_eq!(runs[1].kind, RunKind::DryRun);
    assert_eq!(runs[1].outcome, Some(RunOutcome::Completed));
}

#[tokio::test]
async fn reference_data_round_trips() {
    let (_dir, store) = fresh().await;
    let p = model::Product {
        id: 1,
        name: "App".into(),
    };
    store
        .save_products(&[(p.clone(), "{\"id\":1}")])
        .await
        .unwrap();
    let a = model::Agent {
        id: 74,
        name: "Bob".into(),
        email: None,
    };
    store
        .save_agents(&[(a.clone(), "{}".to_string())])
        .await
        .unwrap();
    let c = model::Category {
        id: 3,
        product_id: Some(1),
        title: "Bug".into(),
    };
    store.save_types(&[(c.clone(), "{}")]).await.unwrap();
    store.save_reasons(&[(c.clone(), "{}")]).await.unwrap();
    assert_eq!(store.products().await.unwrap(), vec![p]);
    assert_eq!(store.agents().await.unwrap(), vec![a]);
    assert_eq!(store.types().await.unwrap(), vec![c.clone()]);
    assert_eq!(store.reasons().await.unwrap(), vec![c]);
    assert_eq!(
        store
            .reference_raw(store::ReferenceTable::Products, 1)
            .await
            .unwrap(),
        "{\"id\":1}"
    );
}

/// A page is recorded set-wise (one read, one insert for its new tickets), except one that lists
/// a ticket twice, which goes ticket by ticket: the second listing sees the first, as it would
/// one after the other. Both answer the same: new and changed tickets to fetch, once each.
#[tokio::test]
async fn a_page_listing_a_ticket_twice_sees_its_first_listing() {
    let (_dir, store) = fresh().await;
    let out = bounded(store.record_page(
        1,
        1,
        &[listed(1, "a"), listed(2, "a"), listed(1, "b")],
        None,
    ))
    .await
    .unwrap();
    assert_eq!(
        out.to_fetch,
        vec![TicketKey::new(1, 1), TicketKey::new(1, 2)]
    );
    assert_eq!(out.changed, 3);
    // the stored listing is the later one: listing it again changes nothing
    let again = bounded(store.record_page(1, 1, &[listed(1, "b"), listed(2, "a")], None))
        .await
        .unwrap();
    assert_eq!(again.changed, 0);
    assert_eq!(again.to_fetch.len(), 2, "both are still pending");
}

#[tokio::test]
async fn record_page_new_same_and_changed() {
    let (_dir, store) = fresh().await;
    assert_eq!(store.list_cursor(1).await.unwrap(), None);

    // page 1: two new tickets, both to fetch; cursor advances to the server's URL
    let out = store
        .record_page(
            1,
            1,
            &[listed(10, "t1"), listed(11, "t1")],
            Some("https://x/v1/tickets?page=2&x=1"),
        )
        .await
        .unwrap();
    assert_eq!(
        out.to_fetch,
        vec![TicketKey::new(1, 10), TicketKey::new(1, 11)]
    );
    let cursor = store.list_cursor(1).await.unwrap().unwrap();
    assert_eq!(
        cursor.next_url.as_deref(),
        Some("https://x/v1/tickets?page=2&x=1")
    );
    assert_eq!(cursor.next_page, 2);
    assert!(!cursor.complete);
    assert_eq!(store.pending_tickets(10).await.unwrap().len(), 2);

    // fetch 10 only; relisting the same page: 10 (same updated_at, extracted) is not refetched,
    // 11 (still pending) is
    extracted(&store, &[ticket(1, 10, 3)]).await;
    let again = list_page(
        &store,
        1,
        1,
        &[listed(10, "t1"), listed(11, "t1")],
        Some("u2"),
    )
    .await;
    assert_eq!(again.batch_id, out.batch_id);
    assert_eq!(again.to_fetch, vec![TicketKey::new(1, 11)]);
    assert_eq!(
        state_of(&store, TicketKey::new(1, 10)).await,
        Some(TicketState::Extracted)
    );

    // load 10 into a case with one message and the final step
    let key = TicketKey::new(1, 10);
    assert_eq!(store.claim_for_load(5).await.unwrap(), vec![key]);
    let create = open(&store, key, IntentStep::Create, "h1").await;
    let case = CaseRef {
        case_id: 500,
        case_number: "664-245651".into(),
        user_id: 900,
    };
    complete(&store, create, IntentResult::Case(case.clone())).await;
    let m = open(&store, key, IntentStep::Message(1001), "h2").await;
    complete(&store, m, sent(1001, 7001)).await;
    let left_open = open(&store, key, IntentStep::Note(1002), "h3").await;
    let fin = open(&store, key, IntentStep::Update, "h4").await;
    complete(&store, fin, IntentResult::Final).await;
    store.mark_loaded(key).await.unwrap();

    // last page: 10 changed at the source -> pending again, maps and intents kept, final cleared
    let delta = list_page(&store, 1, 2, &[listed(10, "t2")], None).await;
    assert_ne!(delta.batch_id, out.batch_id);
    assert_eq!(delta.to_fetch, vec![key]);
    assert_eq!(state_of(&store, key).await, Some(TicketState::Pending));
    let cursor = store.list_cursor(1).await.unwrap().unwrap();
    assert!(cursor.complete);
    assert_eq!(cursor.next_url, None);

    let mut changed = ticket(1, 10, 4);
    changed.updated_at = "t2".into();
    extracted(&store, std::slice::from_ref(&changed)).await;
    let state = store.load_ticket(key).await.unwrap();
    assert_eq!(state.ticket, changed);
    assert_eq!(state.case, Some(case));
    assert_eq!(state.sent.get(&1001), Some(&7001));
    assert!(
        !state.final_done,
        "a changed ticket must re-check its final status"
    );
    assert_eq!(state.open_intents.len(), 1);
    assert_eq!(state.open_intents[0].id, left_open);
    assert_eq!(state.open_intents[0].step, IntentStep::Note(1002));

    // reset for a delta run: listing starts over
    store.reset_list_cursor(1).await.unwrap();
    assert_eq!(store.list_cursor(1).await.unwrap(), None);
}

#[tokio::test]
async fn save_details_round_trips_exactly() {
    let (_dir, store) = fresh().await;
    let mut t = ticket(2, 42, 6);
    t.subject = None;
    t.customer_name = Some("Zoë Ñúñez 山田 🚀".into());
    t.customer_phone = Some("+90 555 000 00 00".into());
    t.reason_id = Some(9);
    t.messages[0].body = "é".repeat(50_000); // 100 KB of UTF-8
    t.messages[1].author = Author::Agent(0);
    t.messages[2].attachments = vec![
        Attachment {
            url: "https://files.example/a b.pdf?sig=x&y=1".into(),
            name: "déjà vu.pdf".into(),
            kind: AttachmentKind::File,
            size: None,
        },
        Attachment {
            url: "https://files.example/v.mp4".into(),
            name: "v.mp4".into(),
            kind: AttachmentKind::Video,
            size: Some(26_000_000),
        },
    ];
    // equal timestamps keep the given order (write order is decided before saving)
    t.messages.push(Message {
        id: 1,
        author: Author::Customer,
        kind: MessageKind::Note,
        body: String::new(),
        created_at: t.messages[5].created_at,
        attachments: vec![],
    });
    list_page(&store, 2, 1, &[listed(42, &t.updated_at)], None).await;
    store.save_details(&[(t.clone(), raw(&t))]).await.unwrap();

    assert_eq!(store.ticket_raw(t.key).await.unwrap(), Some(raw(&t)));
    let loaded = store.load_ticket(t.key).await.unwrap();
    assert_eq!(loaded.ticket, t);
    assert_eq!(loaded.case, None);
    assert!(loaded.sent.is_empty());

    let page = store.tickets_page(None, 10).await.unwrap();
    assert_eq!(page, vec![t.clone()]);

    // saving again replaces messages instead of appending
    let mut shorter = t.clone();
    shorter.messages.truncate(2);
    extracted(&store, std::slice::from_ref(&shorter)).await;
    assert_eq!(store.load_ticket(t.key).await.unwrap().ticket, shorter);

    // details for a ticket never listed are refused, and nothing of the batch is saved
    let stray = ticket(2, 43, 1);
    let err = store
        .save_details(&[(t.clone(), "{}".to_string()), (stray, "{}".to_string())])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    assert_eq!(store.load_ticket(t.key).await.unwrap().ticket, shorter);
}

/// A batch of details is written set-wise (JSON parameters), except when a text holds a NUL
/// character, which JSON would cut: then ticket by ticket. Both keep every text whole, the last
/// detail of a ticket given twice wins, and a ticket's other rows (raw, messages, attachments,
/// the extract failure) follow it.
#[tokio::test]
async fn save_details_keeps_every_text_and_the_last_detail_of_a_ticket() {
    let (_dir, store) = fresh().await;
    let listed_tickets: Vec<_> = (1..=3).map(|t| listed(t, "u")).collect();
    bounded(store.record_page(1, 1, &listed_tickets, None))
        .await
        .unwrap();
    let failure = fail(Stage::Extract, FailureClass::Transient, "timeout");
    bounded(store.record_failure(TicketKey::new(1, 3), &failure))
        .await
        .unwrap();
    let mut first = ticket(1, 1, 4);
    first.subject = Some("first".into());
    let mut second = ticket(1, 1, 2);
    second.subject = Some("second \u{1} \"quoted\" \\ \u{2028}".into());
    let mut nul = ticket(1, 2, 3);
    nul.messages[0].body = "before\0after".into();
    let plain = ticket(1, 3, 3);
    for batch in [
        vec![(first.clone(), raw(&first)), (second.clone(), raw(&second))],
        vec![(nul.clone(), raw(&nul)), (plain.clone(), raw(&plain))],
    ] {
        bounded(store.save_details(&batch)).await.unwrap();
    }
    for t in [&second, &nul, &plain] {
        assert_eq!(bounded(store.load_ticket(t.key)).await.unwrap().ticket, *t);
        assert_eq!(
            bounded(store.ticket_raw(t.key)).await.unwrap(),
            Some(raw(t))
        );
    }
    assert!(bounded(store.failures()).await.unwrap().is_empty());
}

/// A deferred completion is committed by the caller's next request, in the same transaction
/// or an earlier one: once that request is answered the completion is recorded, and `settle`
/// answers without a commit of its own. Left alone, `settle` commits it; a refused one is told
/// by `settle`, as `complete_intent` tells it.
#[tokio::test]
async fn a_deferred_completion_rides_with_the_next_request() {
    let (_dir, store) = fresh().await;
    let key = TicketKey::new(1, 5);
    list_page(&store, 1, 1, &[listed(5, "u")], None).await;
    extracted(&store, &[ticket(1, 5, 3)]).await;
    let case = CaseRef {
        case_id: 77,
        case_number: "1-77".into(),
        user_id: 8,
    };

    let create = open(&store, key, IntentStep::Create, "h").await;
    let pending = store.complete_intent_deferred(create, IntentResult::Case(case.clone()));
    // Queued only: nothing is committed until a request asks for a commit.
    assert_eq!(store.open_intents().await.unwrap().len(), 1);
    assert_eq!(store.load_ticket(key).await.unwrap().case, None);
    let message = open(&store, key, IntentStep::Message(501), "hm").await;
    assert_eq!(
        store.load_ticket(key).await.unwrap().case,
        Some(case.clone())
    );
    // Already answered: a zero timeout would elapse if `settle` had to commit it itself.
    tokio::time::timeout(std::time::Duration::ZERO, store.settle(pending))
        .await
        .expect("answered by the commit of the next request")
        .unwrap();
    assert_eq!(open_intent_ids(&store).await, vec![message]);

    // Nobody else commits: `settle` does.
    let pending = store.complete_intent_deferred(message, sent(501, 9001));
    bounded(store.settle(pending)).await.unwrap();
    assert!(store.open_intents().await.unwrap().is_empty());

    // A second case for the ticket is refused, and `settle` says so.
    let again = open(&store, key, IntentStep::Create, "h").await;
    let pending = store.complete_intent_deferred(
        again,
        IntentResult::Case(CaseRef {
            case_id: 78,
            ..case
        }),
    );
    let err = bounded(store.settle(pending)).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidState(_)), "{err}");
}

#[tokio::test]
async fn intent_lifecycle() {
    let (dir, store) = fresh().await;
    let key = TicketKey::new(1, 5);
    list_page(&store, 1, 1, &[listed(5, "u")], None).await;
    extracted(&store, &[ticket(1, 5, 3)]).await;

    // never two open intents for one step
    let a = open(&store, key, IntentStep::Create, "h").await;
    let b = open(&store, key, IntentStep::Create, "h").await;
    assert_eq!(a, b);
    assert_eq!(store.open_intents().await.unwrap().len(), 1);

    // a result that does not fit the step is refused and changes nothing
    let err = store
        .complete_intent(a, IntentResult::Final)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidState(_)), "{err}");

    // abandoned intents don't count: a new one can be opened
    store.abandon_intent(a).await.unwrap();
    assert!(store.open_intents().await.unwrap().is_empty());
    let c = open(&store, key, IntentStep::Create, "h").await;
    assert_ne!(a, c);
    let err = store
        .complete_intent(
            a,
            IntentResult::Case(CaseRef {
                case_id: 1,
                case_number: "1".into(),
                user_id: 1,
            }),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidState(_)), "{err}");

    // completing writes the map in the same transaction; repeating it is harmless
    let case = CaseRef {
        case_id: 77,
        case_number: "1-77".into(),
        user_id: 8,
    };
    complete(&store, c, IntentResult::Case(case.clone())).await;
    complete(&store, c, IntentResult::Case(case.clone())).await;
    // a second case for the same ticket is refused
    let d = open(&store, key, IntentStep::Create, "h").await;
    let err = store
        .complete_intent(
            d,
            IntentResult::Case(CaseRef {
                case_id: 78,
                ..case.clone()
            }),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidState(_)), "{err}");
    store.abandon_intent(d).await.unwrap();

    // a message intent left open, then a "crash": drop the store without finishing
    let m = open(&store, key, IntentStep::Message(501), "hm").await;
    let n = open(&store, key, IntentStep::Note(502), "hn").await;
    complete(&store, n, sent(502, 9002)).await;
    let wrong = open(&store, key, IntentStep::Message(503), "x").await;
    let err = store
        .complete_intent(wrong, sent(999, 1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidState(_)), "{err}");
    store.abandon_intent(wrong).await.unwrap();
    drop(store);

    let store = bounded(Store::open(dir.path().join("store.sqlite")))
        .await
        .unwrap();
    let state = store.load_ticket(key).await.unwrap();
    assert_eq!(state.case, Some(case));
    assert_eq!(state.sent.len(), 1);
    assert_eq!(state.sent[&502], 9002);
    assert_eq!(state.open_intents.len(), 1);
    assert_eq!(state.open_intents[0].id, m);
    assert_eq!(state.open_intents[0].step, IntentStep::Message(501));
    assert_eq!(state.open_intents[0].payload_hash, "hm");
    // reconciled: found in Deskie
    complete(&store, m, sent(501, 9001)).await;
    assert!(store.open_intents().await.unwrap().is_empty());
    assert_eq!(store.load_ticket(key).await.unwrap().sent.len(), 2);

    assert!(matches!(
        store
            .abandon_intent(store::IntentId(12345))
            .await
            .unwrap_err(),
        StoreError::NotFound(_)
    ));
    assert!(matches!(
        store
            .open_intent(TicketKey::new(9, 9), IntentStep::Create, "h")
            .await
            .unwrap_err(),
        StoreError::NotFound(_)
    ));
    // the write connection is still usable (the failed transaction was rolled back)
    let u = open(&store, key, IntentStep::Update, "hu").await;
    complete(&store, u, IntentResult::Final).await;
    assert!(store.load_ticket(key).await.unwrap().final_done);
}

/// Group commit: intents asked for at the same time by many cases in flight are committed
/// together, yet each caller gets its own intent, a repeated (ticket, step) gets the same one,
/// and a request for an unknown ticket fails alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_intents_are_committed_together_each_answered() {
    let (dir, store) = fresh().await;
    let listed_tickets: Vec<_> = (1..=40).map(|t| listed(t, "u")).collect();
    bounded(store.record_page(1, 1, &listed_tickets, None))
        .await
        .unwrap();
    let details: Vec<_> = (1..=40).map(|t| (ticket(1, t, 2), "{}")).collect();
    bounded(store.save_details(&details)).await.unwrap();

    let mut tasks = tokio::task::JoinSet::new();
    for t in 1..=40i64 {
        for copy in 0..2 {
            let store = store.clone();
            tasks.spawn(async move {
                let id = store
                    .open_intent(TicketKey::new(1, t), IntentStep::Create, "h")
                    .await;
                (t, copy, id)
            });
        }
    }
    // an unknown ticket among them fails alone
    let stray = store.clone();
    tasks.spawn(async move {
        let r = stray
            .open_intent(TicketKey::new(9, 9), IntentStep::Create, "h")
            .await;
        (-1, 0, r)
    });
    let mut by_ticket: std::collections::HashMap<i64, Vec<store::IntentId>> = Default::default();
    while let Some(done) = bounded(tasks.join_next()).await {
        let (t, _copy, id) = done.unwrap();
        if t < 0 {
            assert!(matches!(id.unwrap_err(), StoreError::NotFound(_)));
        } else {
            by_ticket.entry(t).or_default().push(id.unwrap());
        }
    }
    assert_eq!(by_ticket.len(), 40);
    let mut distinct = HashSet::new();
    for (t, ids) in &by_ticket {
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[0], ids[1], "ticket {t}: one open intent per step");
        assert!(distinct.insert(ids[0]), "ticket {t} shares an intent");
    }
    assert_eq!(bounded(store.open_intents()).await.unwrap().len(), 40);

    // every answered intent is committed: a second connection to the file sees all of them
    let again = bounded(Store::open(dir.path().join("store.sqlite")))
        .await
        .unwrap();
    let seen: HashSet<_> = bounded(again.open_intents())
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(seen, distinct);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_never_share_a_ticket() {
    let (_dir, store) = fresh().await;
    let total = 400;
    for page in 0..(total / 20) {
        let listed: Vec<_> = (0..20).map(|i| listed(page * 20 + i, "u")).collect();
        store.record_page(1, page + 1, &listed, None).await.unwrap();
        let details: Vec<_> = (0..20)
            .map(|i| (ticket(1, page * 20 + i, 1), "{}"))
            .collect();
        store.save_details(&details).await.unwrap();
    }
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = store.claim_for_load(7).await.unwrap();
                if got.is_empty() {
                    break mine;
                }
                mine.extend(got);
                tokio::task::yield_now().await;
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(bounded(t).await.unwrap());
    }
    let unique: HashSet<_> = all.iter().copied().collect();
    assert_eq!(all.len(), total as usize, "every ticket claimed");
    assert_eq!(unique.len(), all.len(), "no ticket claimed twice");
    assert_eq!(
        store.ticket_keys(TicketState::Loading).await.unwrap().len(),
        total as usize
    );

    // a crash leaves them loading; startup hands them back
    assert_eq!(store.release_loading().await.unwrap(), total as u64);
    assert_eq!(
        store
            .ticket_keys(TicketState::Extracted)
            .await
            .unwrap()
            .len(),
        total as usize
    );
}

#[tokio::test]
async fn failures_retry_and_counts() {
    let (_dir, store) = fresh().await;
    let listed_page: Vec<_> = (1..=4).map(|i| listed(i, "u")).collect();
    let out = store.record_page(3, 1, &listed_page, None).await.unwrap();
    let details: Vec<_> = (1..=3).map(|i| (ticket(3, i, 3), "{}")).collect();
    store.save_details(&details).await.unwrap();
    let k = |i| TicketKey::new(3, i);

    // ticket 4: detail failed (permanent); ticket 1: load failed permanently twice, mid-case
    store
        .record_failure(
            k(4),
            &fail(Stage::Extract, FailureClass::Permanent, "malformed JSON"),
        )
        .await
        .unwrap();
    store.claim_for_load(10).await.unwrap();
    let c = open(&store, k(1), IntentStep::Create, "h").await;
    complete(
        &store,
        c,
        IntentResult::Case(CaseRef {
            case_id: 1,
            case_number: "n".into(),
            user_id: 2,
        }),
    )
    .await;
    store
        .record_failure(
            k(1),
            &fail(Stage::Load, FailureClass::Permanent, "invalid email"),
        )
        .await
        .unwrap();
    store
        .record_failure(
            k(1),
            &fail(Stage::Load, FailureClass::Permanent, "invalid email!"),
        )
        .await
        .unwrap();
    // ticket 2: transient; ticket 3: loaded
    store
        .record_failure(k(2), &fail(Stage::Load, FailureClass::Transient, "502"))
        .await
        .unwrap();
    store.mark_loaded(k(3)).await.unwrap();
    store
        .record_page_failure(
            3,
            2,
            &fail(Stage::Extract, FailureClass::Transient, "timeout"),
        )
        .await
        .unwrap();

    let failed = store.failed_tickets().await.unwrap();
    assert_eq!(
        failed.iter().map(|f| f.key).collect::<Vec<_>>(),
        vec![k(1), k(2), k(4)]
    );
    let f1 = failed[0].failure.as_ref().unwrap();
    assert_eq!(f1.attempts, 2);
    assert_eq!(f1.record.message, "invalid email!");
    assert_eq!(failed[0].batch_id, out.batch_id);
    assert_eq!(
        store.failures().await.unwrap().len(),
        4,
        "3 tickets + 1 page"
    );

    let counts = store.counts().await.unwrap();
    assert_eq!(counts.tickets[&TicketState::Failed], 3);
    assert_eq!(counts.tickets[&TicketState::Loaded], 1);
    assert_eq!(counts.batches[&BatchState::Failed], 1);
    assert_eq!(counts.messages, 3 * 2);
    assert_eq!(counts.notes, 3);
    assert_eq!(counts.attachments, 3 * 2);
    assert_eq!(counts.attachment_bytes, 3 * (1000 + 1002));
    assert_eq!(counts.products.len(), 1);

    // a new run requeues the transient one only
    assert_eq!(store.requeue_transient().await.unwrap(), 1);
    assert_eq!(state_of(&store, k(2)).await, Some(TicketState::Extracted));

    // retry one ticket by key: load failure -> extracted, case kept
    let n = store
        .retry_failed(&RetryFilter {
            tickets: vec![k(1)],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(state_of(&store, k(1)).await, Some(TicketState::Extracted));
    assert_eq!(
        store.load_ticket(k(1)).await.unwrap().case.unwrap().case_id,
        1
    );
    // retry by batch: the extract failure goes back to pending; loaded stays loaded
    let n = store
        .retry_failed(&RetryFilter {
            batches: vec![out.batch_id],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(state_of(&store, k(4)).await, Some(TicketState::Pending));
    assert_eq!(state_of(&store, k(3)).await, Some(TicketState::Loaded));
    assert_eq!(
        store
            .retry_failed(&RetryFilter {
                all: true,
                ..Default::default()
            })
            .await
            .unwrap(),
        0
    );
    // by bare ticket id
    store
        .record_failure(k(2), &fail(Stage::Load, FailureClass::Permanent, "x"))
        .await
        .unwrap();
    assert_eq!(
        store
            .retry_failed(&RetryFilter {
                ticket_ids: vec![2],
                ..Default::default()
            })
            .await
            .unwrap(),
        1
    );
    // the page failure clears when the page is recorded; an empty last page is a loaded batch
    let empty = store.record_page(3, 2, &[], None).await.unwrap();
    assert_eq!(store.failures().await.unwrap().len(), 0);
    let loaded = store.batches(Some(BatchState::Loaded)).await.unwrap();
    assert_eq!(
        loaded.iter().map(|b| b.id).collect::<Vec<_>>(),
        vec![empty.batch_id]
    );
    assert_eq!(store.batches(None).await.unwrap().len(), 2);

    store
        .mark_skipped(k(4), "channel Chat mapped to skip")
        .await
        .unwrap();
    assert_eq!(
        store.ticket_keys(TicketState::Skipped).await.unwrap(),
        vec![k(4)]
    );
    assert_eq!(store::parse_ticket_key("3/4"), Some(k(4)));
    assert_eq!(
        store.skip_reasons().await.unwrap(),
        vec![("channel Chat mapped to skip".to_string(), 1)]
    );
    let cases = store.cases_page(None, 10).await.unwrap();
    assert_eq!(cases.len(), 1);
    assert_eq!((cases[0].0, cases[0].1.case_id), (k(1), 1));
    assert!(store.cases_page(Some(k(1)), 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn changed_while_loading_is_loaded_again() {
    let (_dir, store) = fresh().await;
    let key = TicketKey::new(1, 1);
    list_page(&store, 1, 1, &[listed(1, "v1")], None).await;
    extracted(&store, &[ticket(1, 1, 2)]).await;
    assert_eq!(store.claim_for_load(1).await.unwrap(), vec![key]);
    // the source changes while the loader holds it: fetched again, but no second claim
    let out = list_page(&store, 1, 2, &[listed(1, "v2")], None).await;
    assert_eq!(out.to_fetch, vec![key]);
    assert_eq!(state_of(&store, key).await, Some(TicketState::Loading));
    extracted(&store, &[ticket(1, 1, 3)]).await;
    assert!(store.claim_for_load(5).await.unwrap().is_empty());
    store.mark_loaded(key).await.unwrap();
    assert_eq!(state_of(&store, key).await, Some(TicketState::Extracted));
    assert_eq!(store.claim_for_load(5).await.unwrap(), vec![key]);
    store.mark_loaded(key).await.unwrap();
    assert_eq!(state_of(&store, key).await, Some(TicketState::Loaded));

    // changed while loading, then a crash before the detail came: startup sends it to pending
    list_page(&store, 1, 3, &[listed(1, "v3")], None).await;
    extracted(&store, &[ticket(1, 1, 3)]).await;
    store.claim_for_load(1).await.unwrap();
    list_page(&store, 1, 4, &[listed(1, "v4")], None).await;
    store.release_loading().await.unwrap();
    assert_eq!(state_of(&store, key).await, Some(TicketState::Pending));
    assert_eq!(store.pending_tickets(5).await.unwrap(), vec![key]);
}

#[tokio::test]
async fn tickets_page_iterates_by_key() {
    let (_dir, store) = fresh().await;
    for product in [2, 1] {
        let listed: Vec<_> = (1..=25).map(|i| listed(i, "u")).collect();
        store.record_page(product, 1, &listed, None).await.unwrap();
        let details: Vec<_> = (1..=25)
            .filter(|i| i % 5 != 0) // every fifth stays pending: not iterated
            .map(|i| (ticket(product, i, 2), "{}"))
            .collect();
        store.save_details(&details).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.tickets_page(after, 7).await.unwrap();
        if page.is_empty() {
            break;
        }
        for t in &page {
            assert_eq!(t.messages.len(), 2);
            assert_eq!(t.messages[0].attachments.len(), 1);
        }
        after = page.last().map(|t| t.key);
        seen.extend(page.into_iter().map(|t| t.key));
    }
    assert_eq!(seen.len(), 40);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);
}

#[tokio::test]
async fn request_stats_add_up_per_minute() {
    let (_dir, store) = fresh().await;
    let s = |minute_epoch, requests| RequestStat {
        side: Side::Deskie,
        minute_epoch,
        requests,
        units: requests * 2,
        throttled: 0,
        transient: 1,
    };
    store
        .add_request_stats(&[s(120, 5), s(150, 3), s(180, 1)])
        .await
        .unwrap();
    store.add_request_stats(&[s(121, 1)]).await.unwrap();
    let stats = store.request_stats(Side::Deskie).await.unwrap();
    assert_eq!(stats.len(), 2);
    assert_eq!(
        (
            stats[0].minute_epoch,
            stats[0].requests,
            stats[0].units,
            stats[0].transient
        ),
        (120, 9, 18, 3)
    );
    assert_eq!(stats[1].minute_epoch, 180);
    assert!(store.request_stats(Side::Desk360).await.unwrap().is_empty());
}

#[tokio::test]
async fn not_a_database_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.sqlite");
    std::fs::write(&path, vec![b'x'; 8192]).unwrap();
    let err = bounded(Store::open(&path)).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert!(!err.is_transient());
}

#[tokio::test]
async fn a_second_writer_on_the_file_makes_it_busy_not_broken() {
    use sqlx::Connection;
    let (dir, store) = fresh().await;
    let mut other = sqlx::SqliteConnection::connect_with(
        &sqlx::sqlite::SqliteConnectOptions::new().filename(dir.path().join("store.sqlite")),
    )
    .await
    .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let err = bounded(store.begin_run(RunKind::Run, "fp"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Busy(_)), "{err:?}");
    assert!(err.is_transient());
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(4),
        "waited the busy timeout"
    );
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    // the store carries on once the other writer is gone
    bounded(store.begin_run(RunKind::Run, "fp")).await.unwrap();
}

#[tokio::test]
async fn accounts_are_recorded_and_retarget_forgets_the_old_target_only() {
    let (dir, store) = fresh().await;
    let k = |i| TicketKey::new(1, i);
    assert_eq!(store.account(Side::Deskie).await.unwrap(), None);
    let old = AccountIdentity {
        side: Side::Deskie,
        base_url: "https://old.deskie.io".into(),
        account: "old.deskie.io".into(),
    };
    let source = AccountIdentity {
        side: Side::Desk360,
        base_url: "https://api.desk360.com".into(),
        account: r#"{"id":11}"#.into(),
    };
    store.record_account(&old).await.unwrap();
    store.record_account(&source).await.unwrap();

    // 1 loaded, 2 failed while loading (with a case), 3 failed in extraction, 4 skipped,
    // 5 extracted, 6 with an open intent while loading, 7 pending.
    let page: Vec<_> = (1..=7).map(|i| listed(i, "u")).collect();
    store.record_page(1, 1, &page, None).await.unwrap();
    let details: Vec<_> = [1, 2, 4, 5, 6]
        .iter()
        .map(|&i| (ticket(1, i, 2), "{}"))
        .collect();
    store.save_details(&details).await.unwrap();
    store
        .record_failure(k(3), &fail(Stage::Extract, FailureClass::Permanent, "404"))
        .await
        .unwrap();
    store.claim_for_load(10).await.unwrap();
    for i in [1, 2] {
        let c = open(&store, k(i), IntentStep::Create, "h").await;
        let case = CaseRef {
            case_id: 100 + i,
            case_number: format!("n{i}"),
            user_id: 7,
        };
        complete(&store, c, IntentResult::Case(case)).await;
    }
    let m = open(&store, k(1), IntentStep::Message(101), "h").await;
    complete(&store, m, sent(101, 9)).await;
    let u = open(&store, k(1), IntentStep::Update, "h").await;
    complete(&store, u, IntentResult::Final).await;
    store.mark_loaded(k(1)).await.unwrap();
    store
        .record_failure(k(2), &fail(Stage::Load, FailureClass::Permanent, "400"))
        .await
        .unwrap();
    store.mark_skipped(k(4), "skip").await.unwrap();
    open(&store, k(6), IntentStep::Create, "h").await;
    // 5 goes back to extracted (it was claimed above); 6 stays loading with its open intent
    assert_eq!(store.release_loading().await.unwrap(), 2);
    store.claim_for_load(1).await.unwrap();

    let new = AccountIdentity {
        side: Side::Deskie,
        base_url: "https://new.deskie.io".into(),
        account: "new.deskie.io".into(),
    };
    assert!(matches!(
        store.retarget(&source).await,
        Err(StoreError::InvalidState(_))
    ));
    let summary = store.retarget(&new).await.unwrap();
    assert_eq!(summary.cases_forgotten, 2);
    assert_eq!(summary.messages_forgotten, 1);
    assert_eq!(
        summary.tickets_requeued, 4,
        "loaded, failed in load, skipped, loading"
    );
    assert_eq!(store.account(Side::Deskie).await.unwrap(), Some(new));
    assert_eq!(store.account(Side::Desk360).await.unwrap(), Some(source));
    for i in [1, 2, 4, 5, 6] {
        assert_eq!(
            state_of(&store, k(i)).await,
            Some(TicketState::Extracted),
            "ticket {i}"
        );
        let state = store.load_ticket(k(i)).await.unwrap();
        assert!(state.case.is_none() && state.sent.is_empty() && !state.final_done);
        assert!(state.open_intents.is_empty() && !state.previously_loaded);
    }
    // extraction is kept: the extract failure and the pending ticket stay as they were
    assert_eq!(state_of(&store, k(3)).await, Some(TicketState::Failed));
    assert_eq!(state_of(&store, k(7)).await, Some(TicketState::Pending));
    assert!(store.open_intents().await.unwrap().is_empty());
    assert_eq!(store.failed_tickets().await.unwrap().len(), 1);
    // and it survives a reopen
    store.close().await;
    let store = Store::open(dir.path().join("store.sqlite")).await.unwrap();
    assert_eq!(
        store.account(Side::Deskie).await.unwrap().unwrap().account,
        "new.deskie.io"
    );
}

#[tokio::test]
async fn retry_failed_requeues_extraction_failures_for_the_next_extraction() {
    let (_dir, store) = fresh().await;
    let k = |i| TicketKey::new(2, i);
    let page: Vec<_> = (1..=3).map(|i| listed(i, "u")).collect();
    store.record_page(2, 1, &page, None).await.unwrap();
    extracted(&store, &[ticket(2, 1, 2)]).await;
    // 2: the detail was a 404 (permanent); 3: timed out (transient)
    store
        .record_failure(k(2), &fail(Stage::Extract, FailureClass::Permanent, "404"))
        .await
        .unwrap();
    store
        .record_failure(
            k(3),
            &fail(Stage::Extract, FailureClass::Transient, "timeout"),
        )
        .await
        .unwrap();
    assert!(store.pending_tickets(10).await.unwrap().is_empty());
    // A new run gives the transient one another go without a flag: back to pending.
    assert_eq!(store.requeue_transient().await.unwrap(), 1);
    assert_eq!(store.pending_tickets(10).await.unwrap(), vec![k(3)]);
    // retry-failed: the permanent extraction failure is fetched again too (pending, not
    // extracted: there is no detail to load).
    let n = store
        .retry_failed(&RetryFilter {
            all: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(store.pending_tickets(10).await.unwrap(), vec![k(2), k(3)]);
    assert!(store.failed_tickets().await.unwrap().is_empty());
    assert!(store.claim_for_load(10).await.unwrap() == vec![k(1)]);
    // Fetched now: extracted, and its old failure is gone for good.
    extracted(&store, &[ticket(2, 2, 2), ticket(2, 3, 1)]).await;
    assert_eq!(store.claim_for_load(10).await.unwrap(), vec![k(2), k(3)]);
    assert!(store.failures().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_truncating_checkpoint_leaves_everything_in_the_sqlite_file() {
    let (dir, store) = fresh().await;
    let path = dir.path().join("store.sqlite");
    let wal = dir.path().join("store.sqlite-wal");
    let page: Vec<_> = (1..=20).map(|i| listed(i, "u")).collect();
    store.record_page(5, 1, &page, None).await.unwrap();
    let details: Vec<_> = (1..=20).map(|i| (ticket(5, i, 4), "{}")).collect();
    store.save_details(&details).await.unwrap();
    assert!(
        std::fs::metadata(&wal).unwrap().len() > 0,
        "the commits are in the WAL"
    );
    let passive = store
        .checkpoint(store::CheckpointMode::Passive)
        .await
        .unwrap();
    assert!(passive.complete, "{passive:?}");
    store.mark_skipped(TicketKey::new(5, 1), "x").await.unwrap();
    let done = store
        .checkpoint(store::CheckpointMode::Truncate)
        .await
        .unwrap();
    assert!(done.complete, "{done:?}");
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0, "-wal truncated");

    // Only the .sqlite file, copied elsewhere, holds every commit.
    let copy_dir = tempfile::tempdir().unwrap();
    let copy = copy_dir.path().join("copy.sqlite");
    std::fs::copy(&path, &copy).unwrap();
    let copied = Store::open(&copy).await.unwrap();
    let counts = copied.counts().await.unwrap();
    assert_eq!(counts.tickets[&TicketState::Extracted], 19);
    assert_eq!(counts.tickets[&TicketState::Skipped], 1);
    assert_eq!(copied.integrity_check().await.unwrap(), vec!["ok"]);
}

#[tokio::test]
async fn source_warnings_are_kept_until_the_next_detail_replaces_them() {
    bounded(async {
        let (_dir, store) = fresh().await;
        let page: Vec<_> = (1..=2).map(|i| listed(i, "u")).collect();
        store.record_page(4, 1, &page, None).await.unwrap();
        let (a, b) = (ticket(4, 1, 2), ticket(4, 2, 1));
        store
            .save_details(&[(a.clone(), raw(&a)), (b.clone(), raw(&b))])
            .await
            .unwrap();
        let line = "message 7 has the unknown type 9; kept as an internal note".to_string();
        store
            .record_source_warnings(a.key, std::slice::from_ref(&line))
            .await
            .unwrap();
        assert_eq!(
            store.source_warnings().await.unwrap(),
            vec![(a.key, vec![line])]
        );
        // A new detail of the same ticket replaces them (here: nothing to say any more).
        store.save_details(&[(a.clone(), raw(&a))]).await.unwrap();
        assert!(store.source_warnings().await.unwrap().is_empty());
    })
    .await;
}

/// Completions and loaded marks join the intents' group commit: each caller is answered only
/// once its request is committed (a second connection to the file sees it at once), and a
/// completion refused in a batch (a second, different case
/// for one ticket) fails alone, writes nothing, and leaves the others of its batch committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn completions_join_the_group_commit_and_are_committed_when_answered() {
    let (dir, store) = fresh().await;
    let listed_tickets: Vec<_> = (1..=30).map(|t| listed(t, "u")).collect();
    bounded(store.record_page(1, 1, &listed_tickets, None))
        .await
        .unwrap();
    let details: Vec<_> = (1..=30).map(|t| (ticket(1, t, 2), "{}")).collect();
    bounded(store.save_details(&details)).await.unwrap();
    assert_eq!(bounded(store.claim_for_load(30)).await.unwrap().len(), 30);
    let again = bounded(Store::open(dir.path().join("store.sqlite")))
        .await
        .unwrap();
    let case = |t: i64, n: i64| CaseRef {
        case_id: t * 1000 + n,
        case_number: format!("1-{t}-{n}"),
        user_id: 7,
    };

    let mut tasks = tokio::task::JoinSet::new();
    for t in 1..=30i64 {
        let store = store.clone();
        let again = again.clone();
        tasks.spawn(async move {
            let key = TicketKey::new(1, t);
            let create = open(&store, key, IntentStep::Create, "h").await;
            // Two answers for one create race: exactly one case is recorded.
            let (a, b) = tokio::join!(
                store.complete_intent(create, IntentResult::Case(case(t, 1))),
                store.complete_intent(create, IntentResult::Case(case(t, 2))),
            );
            let won = match (a, b) {
                (Ok(()), Err(StoreError::InvalidState(_))) => case(t, 1),
                (Err(StoreError::InvalidState(_)), Ok(())) => case(t, 2),
                other => panic!("ticket {t}: {other:?}"),
            };
            // Answered means committed: another connection sees it.
            assert_eq!(again.load_ticket(key).await.unwrap().case, Some(won));
            let source_id = t * 100 + 1;
            let message = open(&store, key, IntentStep::Message(source_id), "m").await;
            complete(&store, message, sent(source_id, 5000 + t)).await;
            // The same answer again is a no-op; a result that does not fit the step is refused.
            complete(&store, message, sent(source_id, 5000 + t)).await;
            assert!(matches!(
                store
                    .complete_intent(message, IntentResult::Final)
                    .await
                    .unwrap_err(),
                StoreError::InvalidState(_)
            ));
            store.mark_loaded(key).await.unwrap();
            let seen = again.load_ticket(key).await.unwrap();
            assert_eq!(seen.sent.get(&source_id), Some(&(5000 + t)));
            assert!(seen.open_intents.is_empty());
            t
        });
    }
    let mut done = 0;
    while let Some(t) = bounded(tasks.join_next()).await {
        t.unwrap();
        done += 1;
    }
    assert_eq!(done, 30);
    assert!(matches!(
        bounded(store.mark_loaded(TicketKey::new(9, 9)))
            .await
            .unwrap_err(),
        StoreError::NotFound(_)
    ));
    assert!(matches!(
        bounded(store.complete_intent(store::IntentId(99_999), IntentResult::Final))
            .await
            .unwrap_err(),
        StoreError::NotFound(_)
    ));
    assert!(bounded(again.open_intents()).await.unwrap().is_empty());
    assert_eq!(
        bounded(again.counts())
            .await
            .unwrap()
            .tickets
            .get(&TicketState::Loaded),
        Some(&30)
    );
}

/// `load_ticket` lists the ticket's abandoned intents (id and step), so the loader can count
/// those of its own run without a query per write; open and done ones are not listed.
#[tokio::test]
async fn load_ticket_lists_abandoned_intents() {
    let (_dir, store) = fresh().await;
    bounded(store.record_page(1, 1, &[listed(1, "u"), listed(2, "u")], None))
        .await
        .unwrap();
    let details = vec![(ticket(1, 1, 2), "{}"), (ticket(1, 2, 2), "{}")];
    bounded(store.save_details(&details)).await.unwrap();
    let key = TicketKey::new(1, 1);
    assert!(
        bounded(store.load_ticket(key))
            .await
            .unwrap()
            .abandoned
            .is_empty()
    );
    let first = open(&store, key, IntentStep::Create, "h").await;
    bounded(store.abandon_intent(first)).await.unwrap();
    let second = open(&store, key, IntentStep::Create, "h").await;
    bounded(store.abandon_intent(second)).await.unwrap();
    let note = open(&store, key, IntentStep::Note(7), "n").await;
    bounded(store.abandon_intent(note)).await.unwrap();
    // open and done intents, and another ticket's, are not listed
    open(&store, key, IntentStep::Create, "h").await;
    let other = open(&store, TicketKey::new(1, 2), IntentStep::Create, "h").await;
    bounded(store.abandon_intent(other)).await.unwrap();
    let mut abandoned = bounded(store.load_ticket(key)).await.unwrap().abandoned;
    abandoned.sort();
    assert_eq!(
        abandoned,
        vec![
            (first, IntentStep::Create),
            (second, IntentStep::Create),
            (note, IntentStep::Note(7)),
        ]
    );
    assert_eq!(
        bounded(store.abandoned_intents(key, IntentStep::Create, first))
            .await
            .unwrap(),
        1
    );
}
