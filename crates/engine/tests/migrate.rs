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
