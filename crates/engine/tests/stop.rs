//! End-to-end: how a run stops. After Ctrl-C no new request leaves, even from workers that were
//! waiting for rate-limit budget on a slow plan; a `retry_after` longer than the limiter may wait
//! ends the run at once with the time the budget returns, instead of sleeping for a day.
#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use sandbox::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_ctrl_c_on_a_slow_plan_no_request_leaves() {
    // 20 units per 2 s window: ten writes, while eight cases wait for budget.
    let cfg = small(60, 2000, 1000, 20);
    let h = start(cfg, "").await;
    let engine = engine::Engine::open(h.settings.clone()).await.unwrap();
    let cancel = engine.cancel_token();
    let progress = engine.progress();
    let run = tokio::spawn(async move { engine.run(engine::RunOptions::default()).await });
    // Stop once a few writes went through (on observed progress, not a delay).
    tokio::time::timeout(Duration::from_secs(60), async {
        while progress.snapshot().writes < 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("writes start");
    cancel.cancel();
    let stopped_at = Instant::now();
    let summary = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the run stops within seconds of Ctrl-C")
        .unwrap()
        .unwrap();
    let took = stopped_at.elapsed();
    assert!(summary.interrupted);
    assert!(
        took < Duration::from_secs(10),
        "the run ended {took:?} after Ctrl-C"
    );
    // Requests that arrived after Ctrl-C: only those already on the wire when it came (the
    // emulator records arrival), never one that was still waiting for budget.
    let late: Vec<_> = h
        .sandbox
        .journal()
        .into_iter()
        .filter(|e| e.server == Server::Deskie && e.at > stopped_at + Duration::from_millis(200))
        .map(|e| format!("{} {}", e.method, e.path))
        .collect();
    assert!(late.is_empty(), "requests sent after Ctrl-C: {late:?}");
    // And the store is consistent: the next run finishes the migration exactly.
    run_to_end(&h).await;
    assert_exact(&h);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_long_retry_after_ends_the_run_saying_when_to_resume() {
    let mut cfg = small(20, 1000, 1000, 3000);
    cfg.faults.deskie_429_retry_after = Some(Duration::from_secs(86_400));
    let h = start(cfg, "").await;
    let engine = engine::Engine::open(h.settings.clone()).await.unwrap();
    let t = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(60),
        engine.run(engine::RunOptions::default()),
    )
    .await
    .expect("the run does not wait a day");
    let err = result.expect_err("the run stops with an error");
    let message = err.to_string();
    assert!(
        message.contains("run again after"),
        "the error says when the budget returns: {message}"
    );
    assert!(t.elapsed() < Duration::from_secs(30));
}

/// Runs until nothing is left (a stopped run leaves its tickets for the next one).
async fn run_to_end(h: &Harness) {
    for _ in 0..3 {
        let s = run(&h.settings, engine::RunOptions::default()).await;
        if !s.interrupted && s.failed == 0 && s.stopped_reason.is_none() {
            return;
        }
    }
}
