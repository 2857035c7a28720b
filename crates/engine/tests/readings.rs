//! End-to-end: the engine is exact under every plausible reading of the vendor pages, not only
//! the one the sandbox started with. Each test runs against the pessimistic combination
//! (`sandbox::Readings::pessimistic`: a `Link` with only `page`, exact-only custom-field search,
//! time filters ignored, an agent reply sets `waiting`, the note author read from
//! `note_staff_id` only), with and without `source_id_field`, with a Desk360 account that keeps
//! changing during the run, a `Link` that loops, and writes applied after the client gave up.
#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use sandbox::{Churn, DelayedApply, JournalEntry, LinkLoop, Server};

/// Desk360 list-page requests (not details) in a journal.
fn list_requests(journal: &[JournalEntry]) -> Vec<String> {
    journal
        .iter()
        .filter(|e| e.server == Server::Desk360)
        .filter(|e| {
            let path = e.path.split('?').next().unwrap_or_default();
            path.starts_with("/v1/products/") && path.ends_with("/tickets")
        })
        .map(|e| e.path.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pessimistic_readings_with_a_source_id_field_and_lost_responses() {
    let mut cfg = pessimistic(small(200, 1000, 400, 2000));
    cfg.faults.drop_after_commit_rate = 0.03;
    cfg.faults.server_error_rate = 0.03;
    // WhatsApp tickets go to a synchronous custom channel (recipe 003 §3.1).
    cfg.readings.sync_custom_channels.insert(482);
    let mut h = start(cfg, "").await;
    h.settings.mapping.sync_channels.insert("482".into());
    let summary = run(&h.settings, engine::RunOptions::default()).await;
    eprintln!("{:?}", summary.progress);
    let mut rounds = 0;
    while summary.failed > 0 && rounds < 3 {
        run(&h.settings, engine::RunOptions::default()).await;
        rounds += 1;
    }
    let (cases, updates) = assert_exact(&h);
    assert!(cases > 120, "most tickets migrate ({cases})");
    assert!(updates > 0, "some cases needed their final status");
    let journal = h.sandbox.journal();
    assert!(
        journal
            .iter()
            .any(|e| e.fault.as_deref() == Some("dropped")),
        "responses were lost"
    );
    // The final updates went out in bulk: fewer requests than cases that needed one.
    let bulk = journal
        .iter()
        .filter(|e| e.server == Server::Deskie && e.method == "PUT" && e.path.contains(','))
        .count();
    assert!(bulk > 0, "final updates are sent in bulk");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pessimistic_readings_without_a_source_id_field_and_lost_responses() {
    let mut cfg = pessimistic(small(150, 1000, 1000, 3000));
    cfg.faults.drop_after_commit_rate = 0.06;
    let mut h = start(cfg, "").await;
    h.settings.target.source_id_field = None;
    let summary = run(&h.settings, engine::RunOptions::default()).await;
    eprintln!("{:?}", summary.progress);
    assert!(
        summary.progress.reconcile_reads > 0,
        "lost answers were reconciled"
    );
    let (cases, _) = assert_exact(&h);
    assert!(cases > 90);
    // No lookup relied on the time filter, whose format the pages do not give.
    let timed = h
        .sandbox
        .journal()
        .iter()
        .filter(|e| e.path.contains("from_time") || e.path.contains("to_time"))
        .count();
    assert_eq!(
        timed, 0,
        "reconciliation never depends on the time-filter format"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desk360_account_that_changes_during_the_run() {
    let mut cfg = pessimistic(small(200, 1000, 1000, 3000));
    // 40 changes (20 updated tickets, 20 new ones) while the first run lists and fetches.
    cfg.churn = Some(Churn {
        start_after: 20,
        every: 3,
        updates: 20,
        creates: 20,
    });
    let h = start(cfg, "").await;
    let first = run(&h.settings, engine::RunOptions::default()).await;
    eprintln!("first run {:?}", first.progress);
    let churned = h.sandbox.churn_log();
    assert_eq!(
        churned.len(),
        40,
        "every change happened during the first run"
    );
    // Everything that existed when the last catch-up started is in Deskie, changes included.
    assert_exact(&h);

    // Switch-over day: a few more changes, then a second run costs only the pages that hold
    // them plus one page per product.
    let ds = h.sandbox.dataset();
    let (p1, p2) = (ds.products[0].id, ds.products[1].id);
    let some: Vec<(i64, i64)> = ds
        .tickets
        .iter()
        .filter(|t| t.product_id == p1)
        .take(3)
        .map(|t| (t.product_id, t.ticket_id))
        .collect();
    drop(ds);
    for (p, t) in &some {
        h.sandbox
            .append_message(*p, *t, 0, false, "<p>one more question</p>")
            .unwrap();
    }
    let created = h.sandbox.create_ticket(p2).unwrap();
    h.sandbox.clear_journal();
    let second = run(&h.settings, engine::RunOptions::default()).await;
    eprintln!("second run {:?}", second.progress);
    assert_exact(&h);
    assert_eq!(
        h.sandbox
            .deskie_snapshot()
            .cases_of(created.0, created.1)
            .len(),
        1
    );
    let journal = h.sandbox.journal();
    let lists = list_requests(&journal);
    let products = h.sandbox.config().products;
    // Two products hold changes on their first page; each changed product needs one more
    // page-1 read to see that nothing else changed.
    let pages_with_changes = 2;
    assert!(
        lists.len() <= pages_with_changes + products,
        "a switch-over run lists only where the changes are: {lists:?}"
    );
    let details: BTreeMap<String, usize> = journal
        .iter()
        .filter(|e| e.server == Server::Desk360 && e.path.matches('/').count() == 5)
        .fold(BTreeMap::new(), |mut m, e| {
            *m.entry(e.path.clone()).or_default() += 1;
            m
        });
    assert_eq!(
        details.len(),
        4,
        "only the changed tickets are fetched: {details:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_that_leads_back_stops_that_product_only() {
    for respell in [false, true] {
        let h = start(pessimistic(small(150, 1000, 2000, 4000)), "").await;
        let looped = h.sandbox.dataset().products[0].id;
        let mut faults = h.sandbox.faults();
        faults.link_loops.push(LinkLoop {
            product_id: looped,
            from_page: 2,
            to_page: 1,
            respell,
        });
        h.sandbox.set_faults(faults);
        let summary = run(&h.settings, engine::RunOptions::default()).await;
        let lists = list_requests(&h.sandbox.journal());
        assert!(
            lists.len() < 20,
            "the loop is not followed forever: {lists:?}"
        );
        let engine = engine::Engine::open(h.settings.clone()).await.unwrap();
        let failures = engine.store().failures().await.unwrap();
        assert!(
            failures
                .iter()
                .any(|f| f.product_id == looped && f.record.code.as_deref() == Some("link_loop")),
            "the loop is a failure naming the product: {failures:?}"
        );
        // The other products are complete.
        let snap = h.sandbox.deskie_snapshot();
        for (key, mapped) in expected(&h) {
            if key.0 != looped && matches!(mapped, engine::mapping::Mapped::Case(_)) {
                assert_eq!(snap.cases_of(key.0, key.1).len(), 1, "{key:?}");
            }
        }
        eprintln!("respell {respell}: {:?}", summary.progress);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_applied_after_the_client_gave_up_is_not_sent_twice() {
    let mut cfg = small(30, 1000, 1000, 3000);
    let ds = sandbox::generate(cfg.seed, cfg.products, cfg.tickets);
    let victims: std::collections::BTreeSet<(i64, i64)> = ds
        .tickets
        .iter()
        .take(8)
        .map(|t| (t.product_id, t.ticket_id))
        .collect();
    cfg.faults.delayed_apply = Some(DelayedApply {
        tickets: victims.clone(),
        share: 0.0,
        delay: Duration::from_millis(1500),
    });
    let mut h = start(cfg, "").await;
    // The client gives up after 0.5 s; the server applies the write at 1.5 s. Reconciling
    // before then would find nothing and create a duplicate.
    h.settings.target.timeout = Duration::from_millis(500);
    h.settings.run.reconcile_settle = Duration::from_secs(3);
    let summary = run(&h.settings, engine::RunOptions::default()).await;
    eprintln!("{:?}", summary.progress);
    let delayed = h
        .sandbox
        .journal()
        .iter()
        .filter(|e| e.fault.as_deref() == Some("delayed"))
        .count();
    assert!(delayed >= 1, "writes were held past the client's timeout");
    let snap = h.sandbox.deskie_snapshot();
    for (p, t) in &victims {
        assert!(snap.cases_of(*p, *t).len() <= 1, "{p}/{t} has no duplicate");
    }
    assert_exact(&h);
}
