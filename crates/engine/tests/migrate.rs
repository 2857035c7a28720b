//! End-to-end: a whole sandbox account migrated by the engine, checked ticket by ticket.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_account_migrates_exactly() {
    let h = start(small(240, 1000, 400, 2000), "").await;
    let summary = run(&h.settings, engine::RunOptions::default()).await;
    assert!(!summary.interrupted);
    let (cases, updates) = assert_exact(&h);
    assert!(cases > 150, "most tickets migrate ({cases})");
    eprintln!(
        "cases {cases}, final updates {updates}, summary {:?}",
        summary.progress
    );
    // Zero 429s with the configured limits equal to the sandbox's.
    let journal = h.sandbox.journal();
    let throttled = journal.iter().filter(|e| e.status == 429).count();
    assert_eq!(throttled, 0, "no 429 expected");
    // A second run writes nothing.
    h.sandbox.clear_journal();
    let again = run(&h.settings, engine::RunOptions::default()).await;
    let writes = h
        .sandbox
        .journal()
        .iter()
        .filter(|e| e.method != "GET")
        .count();
    assert_eq!(
        writes, 0,
        "a finished migration writes nothing again: {:?}",
        again.progress
    );
    assert_exact(&h);
    let _ = Duration::ZERO;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_lost_responses_change_nothing() {
    let mut cfg = small(200, 1000, 400, 2000);
    cfg.faults.server_error_rate = 0.05;
    cfg.faults.drop_after_commit_rate = 0.03;
    let h = start(cfg, "").await;
    let summary = run(&h.settings, engine::RunOptions::default()).await;
    eprintln!("summary {:?} deskie {:?}", summary.progress, summary.deskie);
    // Transient exhaustion is possible in principle; run again until nothing is left.
    let mut rounds = 0;
    while summary_has_transient(&h).await && rounds < 5 {
        run(&h.settings, engine::RunOptions::default()).await;
        rounds += 1;
    }
    let (cases, _) = assert_exact(&h);
    assert!(cases > 150);
    let journal = h.sandbox.journal();
    let dropped = journal
        .iter()
        .filter(|e| e.fault.as_deref() == Some("dropped"))
        .count();
    let errors = journal.iter().filter(|e| e.status >= 500).count();
    eprintln!("dropped {dropped}, 5xx {errors}");
    assert!(dropped > 0 && errors > 0, "faults were injected");
}

async fn summary_has_transient(h: &Harness) -> bool {
    let engine = engine::Engine::open(h.settings.clone()).await.unwrap();
    engine
        .store()
        .failed_tickets()
        .await
        .unwrap()
        .iter()
        .any(|f| {
            f.failure
                .as_ref()
                .is_some_and(|x| x.record.class == store::FailureClass::Transient)
        })
}
