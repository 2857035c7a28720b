//! Failures that can be understood and re-run (issue 7), and sharing the Deskie budget with
//! another consumer of the account.
#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use engine::mapping::Mapped;
use store::{FailureClass, RetryFilter, TicketState};

fn migratable(h: &Harness) -> Vec<(i64, i64)> {
    expected(h)
        .into_iter()
        .filter(|(_, m)| matches!(m, Mapped::Case(_)))
        .map(|(k, _)| k)
        .collect()
}

/// The cause is fixed (no more faults): a run of `retry-failed` with `filter`, on a cleared
/// journal, extraction skipped.
async fn retry_after_the_fix(h: &Harness, filter: RetryFilter) -> engine::RunSummary {
    h.sandbox.set_faults(sandbox::Faults::default());
    h.sandbox.clear_journal();
    let options = engine::RunOptions {
        retry: Some(filter),
        skip_extract: true,
        ..Default::default()
    };
    run(&h.settings, options).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_tickets_fail_with_the_api_message_and_retry_exactly() {
    let h = start(pessimistic(small(160, 1000, 1000, 3000)), "").await;
    let candidates = migratable(&h);
    // About 5 % of the tickets are refused by Deskie.
    let rejected: BTreeSet<(i64, i64)> = candidates.iter().step_by(20).copied().collect();
    let mut faults = sandbox::Faults::default();
    faults.reject_tickets = rejected.clone();
    h.sandbox.set_faults(faults);

    let summary = run(&h.settings, engine::RunOptions::default()).await;
    let engine = engine::Engine::open(h.settings.clone()).await.unwrap();
    let failed = engine.store().failed_tickets().await.unwrap();
    let load_failed: BTreeSet<(i64, i64)> = failed
        .iter()
        .filter(|f| f.failure.as_ref().is_some_and(|x| x.record.step != "map"))
        .map(|f| (f.key.product_id, f.key.ticket_id))
        .collect();
    assert_eq!(load_failed, rejected, "exactly the rejected tickets failed");
    for f in &failed {
        let rec = &f.failure.as_ref().unwrap().record;
        if rec.step != "map" {
            assert_eq!(rec.class, FailureClass::Permanent);
            assert_eq!(rec.code.as_deref(), Some("400"));
            assert!(!rec.message.is_empty(), "the API's own message is kept");
        }
    }
    assert!(summary.failed as usize >= rejected.len());

    // A plain run does not retry permanent failures.
    h.sandbox.clear_journal();
    run(&h.settings, engine::RunOptions::default()).await;
    assert!(
        h.sandbox.journal().iter().all(|e| e.method == "GET"),
        "run without --retry-failed writes nothing"
    );

    // Switch the rejection off and retry the failed tickets only.
    retry_after_the_fix(
        &h,
        RetryFilter {
            all: true,
            ..RetryFilter::default()
        },
    )
    .await;
    let snap = h.sandbox.deskie_snapshot();
    let written_cases: BTreeSet<i64> = h
        .sandbox
        .journal()
        .iter()
        .filter(|e| e.method != "GET")
        .filter_map(|e| case_id_of(&e.path))
        .collect();
    let rejected_case_ids: BTreeSet<i64> = rejected
        .iter()
        .flat_map(|(p, t)| snap.cases_of(*p, *t))
        .map(|c| c.case_id)
        .collect();
    assert!(
        written_cases.is_subset(&rejected_case_ids),
        "writes only for the retried tickets"
    );
    assert_exact(&h);
}

/// `cases/123/messages.json` → 123; `cases.json` (a create) → None.
fn case_id_of(path: &str) -> Option<i64> {
    let p = path.split('?').next()?;
    let rest = p.split("/cases/").nth(1)?;
    rest.split(['/', '.']).next()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_failing_on_its_third_message_continues_in_the_same_case() {
    let h = start(pessimistic(small(60, 1000, 1000, 3000)), "").await;
    // A ticket with at least 4 replies, the 3rd of which is refused.
    let expected = expected(&h);
    let (&(p, t), _) = expected
        .iter()
        .find(|(_, m)| match m {
            Mapped::Case(plan) => plan.steps.iter().filter(|s| !s.is_note()).count() >= 3,
            _ => false,
        })
        .expect("a long ticket");
    let ds = h.sandbox.dataset();
    let data = ds.ticket(p, t).unwrap();
    // Index (in source order) of the 3rd reply.
    let replies: Vec<usize> = data
        .messages()
        .iter()
        .enumerate()
        .filter(|(_, m)| m["type"].as_i64() != Some(6))
        .map(|(i, _)| i)
        .collect();
    let third = replies[2];
    let mut faults = sandbox::Faults::default();
    faults.reject_messages.insert((p, t, third));
    h.sandbox.set_faults(faults);
    run(&h.settings, engine::RunOptions::default()).await;

    let engine = engine::Engine::open(h.settings.clone()).await.unwrap();
    assert_eq!(
        engine
            .store()
            .ticket_state(model::TicketKey::new(p, t))
            .await
            .unwrap(),
        Some(TicketState::Failed)
    );
    let before = h.sandbox.deskie_snapshot();
    let case = before.cases_of(p, t);
    assert_eq!(case.len(), 1);
    let case_id = case[0].case_id;
    let had = case[0].messages.len();
    assert_eq!(
        had, 2,
        "the create and the 2nd reply are in; the 3rd was refused"
    );

    retry_after_the_fix(
        &h,
        RetryFilter {
            tickets: vec![model::TicketKey::new(p, t)],
            ..RetryFilter::default()
        },
    )
    .await;
    let journal = h.sandbox.journal();
    assert!(
        journal
            .iter()
            .filter(|e| e.method == "POST")
            .all(|e| e.path.contains(&format!("/cases/{case_id}/"))),
        "no second case: every write goes to case {case_id}"
    );
    assert_exact(&h);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_marks_tickets_failed_transient_and_run_picks_them_up() {
    let mut h = start(small(60, 1000, 1000, 3000), "").await;
    h.settings.run.max_retries = 1;
    // Extract first (the outage is on the Deskie side only).
    let _ = dry_run(&h.settings).await;
    let mut faults = sandbox::Faults::default();
    faults.deskie_down = true;
    h.sandbox.set_faults(faults);
    let engine = engine::Engine::open(h.settings.clone()).await.unwrap();
    // Credentials cannot be checked while Deskie is down: the run stops with an error,
    // writing nothing.
    let r = tokio::time::timeout(Duration::from_secs(60), engine.run(Default::default()))
        .await
        .unwrap();
    assert!(r.is_err(), "a run cannot start while Deskie is down");

    // Deskie goes down in the middle of loading.
    h.sandbox.set_faults(sandbox::Faults::default());
    let engine = engine::Engine::open(h.settings.clone()).await.unwrap();
    let progress = engine.progress();
    let sb = &h.sandbox;
    let run_fut = engine.run(Default::default());
    tokio::pin!(run_fut);
    // Let the first case be written, then take Deskie down.
    let mut switched = false;
    let result = loop {
        tokio::select! {
            r = &mut run_fut => break r,
            _ = tokio::time::sleep(Duration::from_millis(5)) => {
                if !switched && sb.journal().iter().any(|e| e.method == "POST" && e.status == 200) {
                    let mut f = sandbox::Faults::default();
                    f.deskie_down = true;
                    sb.set_faults(f);
                    switched = true;
                }
            }
        }
    };
    let summary = result.unwrap();
    assert!(switched);
    assert!(
        summary.stopped_reason.is_some(),
        "the loader stops on an outage: {summary:?}"
    );
    let failed = engine.store().failed_tickets().await.unwrap();
    assert!(!failed.is_empty());
    assert!(failed.iter().all(|f| {
        f.failure
            .as_ref()
            .is_some_and(|x| x.record.class == FailureClass::Transient || x.record.step == "map")
    }));
    let _ = progress;

    // Deskie is back: a plain run picks the transient failures up without a flag.
    h.sandbox.set_faults(sandbox::Faults::default());
    run(&h.settings, engine::RunOptions::default()).await;
    assert_exact(&h);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_consumer_spending_40_percent_does_not_cause_a_storm() {
    // Loading is rate-bound: 2 s windows of 120 units, 40 % spent by someone else.
    let mut cfg = small(60, 2000, 2000, 120);
    cfg.faults.other_consumer_share = 0.4;
    let h = start(cfg, "").await;
    let summary = run(&h.settings, engine::RunOptions::default()).await;
    assert_exact(&h);
    let journal = h.sandbox.journal();
    let deskie: Vec<_> = journal
        .iter()
        .filter(|e| e.server == sandbox::Server::Deskie)
        .collect();
    let first = deskie[0].at;
    let last = deskie[deskie.len() - 1].at;
    let windows = (last.duration_since(first).as_secs_f64() / 2.0).ceil() as usize + 1;
    let throttled = deskie.iter().filter(|e| e.status == 429).count();
    eprintln!(
        "windows {windows}, 429s {throttled}, summary {:?}",
        summary.deskie
    );
    assert!(
        throttled <= windows,
        "at most one 429 per window: {throttled} in {windows}"
    );
}

/// Three earlier runs each journaled a ticket's create and were killed before it reached
/// Deskie (each intent later proven absent and abandoned). That history says nothing about the
/// server: the next run must still create the case, not give up on it for good. (The per-run
/// bound on writes proven absent counts only the run's own intents.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_abandoned_by_earlier_runs_do_not_stop_the_next_run() {
    let h = start(small(60, 1000, 400, 2000), "").await;
    dry_run(&h.settings).await;
    let migratable: Vec<(i64, i64)> = migratable(&h).into_iter().take(2).collect();
    assert_eq!(migratable.len(), 2);
    let store = store::Store::open(&h.settings.store_path).await.unwrap();
    for &(p, t) in &migratable {
        let key = model::TicketKey::new(p, t);
        for _ in 0..5 {
            let id = store
                .open_intent(key, store::IntentStep::Create, "killed")
                .await
                .unwrap();
            store.abandon_intent(id).await.unwrap();
        }
    }
    store.close().await;

    let summary = run(&h.settings, engine::RunOptions::default()).await;
    assert!(!summary.interrupted);
    assert_exact(&h);
    for &(p, t) in &migratable {
        assert_eq!(
            h.sandbox.deskie_snapshot().cases_of(p, t).len(),
            1,
            "{p}/{t}"
        );
    }
}

/// A killed run opened a case create long before it died: the request may have waited for
/// budget or streamed files until the very end, and a server finishes what it received after
/// the client is gone. The next run must look for that create only a settle time after it took
/// the store's lock, however old the intent's stamp: looking earlier could miss a create still
/// landing and send a second one. (Counting from the stamp, this run would look at once.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_write_of_a_killed_run_is_looked_for_a_settle_time_after_the_restart() {
    let mut h = start(small(60, 1000, 400, 2000), "").await;
    let settle = Duration::from_millis(1500);
    h.settings.run.reconcile_settle = settle;
    dry_run(&h.settings).await;
    let (p, t) = migratable(&h)[0];
    let key = model::TicketKey::new(p, t);
    let store = store::Store::open(&h.settings.store_path).await.unwrap();
    // A run that never recorded its end, and the create it was sending when killed.
    store
        .begin_run(store::RunKind::Run, "killed")
        .await
        .unwrap();
    store
        .open_intent(key, store::IntentStep::Create, "killed")
        .await
        .unwrap();
    store.close().await;
    // Older than the settle time when the next run starts (its stamp has whole seconds).
    tokio::time::sleep(settle + Duration::from_millis(1100)).await;

    h.sandbox.clear_journal();
    let started = std::time::Instant::now();
    let summary = run(&h.settings, engine::RunOptions::default()).await;
    assert!(!summary.interrupted);
    let lookups: Vec<_> = h
        .sandbox
        .journal()
        .into_iter()
        .filter(|e| {
            e.server == sandbox::Server::Deskie
                && e.method == "GET"
                && e.path.contains("cf_900")
                && e.path.contains(&format!("{p}%3A{t}"))
        })
        .collect();
    assert!(!lookups.is_empty(), "the open create was looked for");
    for e in &lookups {
        let after = e.at.saturating_duration_since(started);
        assert!(
            after >= settle,
            "looked for {after:?} after the restart, before the settle time {settle:?}: {}",
            e.path
        );
    }
    assert_exact(&h);
    assert_eq!(h.sandbox.deskie_snapshot().cases_of(p, t).len(), 1);
}
