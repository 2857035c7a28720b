//! Extraction against the sandbox: completeness under 429s and 5xx, malformed bodies as ticket
//! failures, and the limiter following the server's headers when the configured RPM is wrong.
#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

mod common;

use std::time::Duration;

use common::*;

/// Dry runs extract only; the store must then equal the generator's data ticket by ticket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_account_is_extracted_despite_429s_and_5xx() {
    let mut cfg = small(520, 1000, 150, 2000);
    cfg.faults.server_error_rate = 0.05;
    let h = start(cfg, "").await;
    // Configure twice the server's limit: the first window may see 429s, the headers fix the rest.
    let mut settings = h.settings.clone();
    settings.source.rpm = 300;
    let engine = engine::Engine::open(settings).await.unwrap();
    let summary = tokio::time::timeout(
        Duration::from_secs(120),
        engine.run(engine::RunOptions {
            dry_run: true,
            ..Default::default()
        }),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(summary.progress.extract_failed, 0, "{:?}", summary.progress);

    // Equal to the generator's data.
    let ds = h.sandbox.dataset();
    let mut stored = Vec::new();
    let mut after = None;
    loop {
        let page = engine.store().tickets_page(after, 100).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.key);
        stored.extend(page);
    }
    assert_eq!(stored.len(), ds.tickets.len());
    for t in &stored {
        let data = ds
            .ticket(t.key.product_id, t.key.ticket_id)
            .expect("known ticket");
        let d = desk360::TicketDetail::from_json(&data.detail.to_string(), "t").unwrap();
        let want = d.to_model(t.key.product_id).unwrap().ticket;
        assert_eq!(t, &want, "ticket {} differs from the source", t.key);
    }

    // 429s only while the limiter learned the real limit: none after the first two windows.
    let journal = h.sandbox.journal();
    let desk: Vec<_> = journal
        .iter()
        .filter(|e| e.server == sandbox::Server::Desk360)
        .collect();
    let start = desk[0].at;
    let late_429 = desk
        .iter()
        .filter(|e| e.status == 429 && e.at.duration_since(start) > Duration::from_millis(2100))
        .count();
    let all_429 = desk.iter().filter(|e| e.status == 429).count();
    eprintln!(
        "desk360 requests {}, 429s {all_429}, after 2 windows {late_429}",
        desk.len()
    );
    assert_eq!(late_429, 0);
    // Dry run: not a single write to Deskie.
    assert!(
        journal
            .iter()
            .filter(|e| e.server == sandbox::Server::Deskie)
            .all(|e| e.method == "GET")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_details_fail_only_their_ticket() {
    let cfg = small(100, 1000, 1000, 2000);
    let probe = sandbox::generate(cfg.seed, cfg.products, cfg.tickets);
    let bad: Vec<(i64, i64)> = probe
        .tickets
        .iter()
        .step_by(17)
        .map(|t| (t.product_id, t.ticket_id))
        .collect();
    let mut cfg = cfg;
    let (malformed, truncated) = bad.split_at(bad.len() / 2);
    cfg.faults.malformed_tickets = malformed.iter().copied().collect();
    cfg.faults.truncated_tickets = truncated.iter().copied().collect();
    let h = start(cfg, "").await;
    let summary = run(&h.settings, engine::RunOptions::default()).await;
    assert_eq!(summary.progress.extract_failed as usize, bad.len());
    let engine = engine::Engine::open(h.settings.clone()).await.unwrap();
    let failed = engine.store().failed_tickets().await.unwrap();
    for (p, t) in &bad {
        let f = failed
            .iter()
            .find(|f| f.key == model::TicketKey::new(*p, *t))
            .expect("bad ticket recorded as failed");
        let msg = &f.failure.as_ref().unwrap().record.message;
        assert!(
            msg.contains(&format!("{p}/{t}")),
            "failure names the ticket: {msg}"
        );
        assert!(msg.contains("malformed"), "failure names the cause: {msg}");
    }
    // Everything else migrated.
    let snap = h.sandbox.deskie_snapshot();
    assert!(snap.cases.len() > 70);
}
