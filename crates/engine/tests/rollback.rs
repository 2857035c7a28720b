//! A trial (`run --limit N`), its rollback, and the full run after it: the rollback leaves Deskie
//! with no case of ours (deleted for good, not in the trash) and the store ready, the next run
//! migrates everything exactly once, and a rollback interrupted between sending its deletes and
//! recording them deletes each case exactly once when it is run again.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use engine::TicketState;

fn config() -> sandbox::SandboxConfig {
    small(90, 300, 10_000, 20_000)
}

/// How many times each case id was named in a DELETE of a case (single or bulk).
fn deletes_per_case(h: &Harness) -> HashMap<i64, usize> {
    let mut counts = HashMap::new();
    for e in h.sandbox.journal() {
        if e.server != sandbox::Server::Deskie || e.method != "DELETE" {
            continue;
        }
        let Some(ids) = e
            .path
            .strip_prefix("/api/cases/")
            .and_then(|p| p.split(".json").next())
        else {
            continue;
        };
        for id in ids.split(',') {
            *counts.entry(id.parse::<i64>().unwrap()).or_default() += 1;
        }
    }
    counts
}

fn is_list_page(e: &sandbox::JournalEntry) -> bool {
    e.server == sandbox::Server::Desk360
        && (e.path.contains("/tickets?") || e.path.ends_with("/tickets"))
}

async fn trial(h: &Harness, limit: u64) -> engine::RunSummary {
    run(
        &h.settings,
        engine::RunOptions {
            limit: Some(limit),
            ..Default::default()
        },
    )
    .await
}

async fn assert_rolled_back(engine: &engine::Engine, h: &Harness, keys: &[model::TicketKey]) {
    let snap = h.sandbox.deskie_snapshot();
    assert!(
        snap.cases.is_empty(),
        "cases left (trashed counts as left): {:?}",
        snap.cases
            .iter()
            .map(|c| (c.case_id, c.deleted))
            .collect::<Vec<_>>()
    );
    assert!(engine.store().created_cases(None).await.unwrap().is_empty());
    assert!(engine.store().open_rollbacks().await.unwrap().is_empty());
    for key in keys {
        assert_eq!(
            engine.store().ticket_state(*key).await.unwrap(),
            Some(TicketState::Extracted),
            "{key} is loadable again"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trial_of_20_then_rollback_then_run_migrates_everything_once() {
    let h = start(config(), "").await;
    let summary = trial(&h, 20).await;
    assert!(!summary.interrupted);
    let snap = h.sandbox.deskie_snapshot();
    assert!(!snap.cases.is_empty());
    assert_eq!(snap.cases.len(), summary.trial_cases.len());
    assert!(summary.trial_cases.len() <= 20);

    let engine = engine::Engine::open(h.settings.clone()).await.unwrap();
    let selection = engine.store().trial_selection().await.unwrap();
    assert_eq!(selection.len(), 20, "20 tickets selected");
    // Newest first across products: nothing listed is newer than the oldest selected one.
    let ds = h.sandbox.dataset();
    let updated = |p: i64, t: i64| {
        ds.tickets
            .iter()
            .find(|x| x.product_id == p && x.ticket_id == t)
            .and_then(|x| x.detail["updated_at"].as_str().map(str::to_string))
            .unwrap()
    };
    let oldest_selected = selection
        .iter()
        .map(|k| updated(k.product_id, k.ticket_id))
        .min()
        .unwrap();
    let newer_unselected = ds.tickets.iter().filter(|x| {
        !selection.contains(&model::TicketKey::new(x.product_id, x.ticket_id))
            && x.detail["updated_at"].as_str().unwrap() > oldest_selected.as_str()
    });
    assert_eq!(
        newer_unselected.count(),
        0,
        "the trial takes the newest tickets"
    );
    // Only as far as needed: page 1 of each product, and at most a page 2 here and there.
    let list_pages = h
        .sandbox
        .journal()
        .iter()
        .filter(|e| is_list_page(e))
        .count();
    assert!(
        list_pages <= 6,
        "a trial of 20 read {list_pages} list pages"
    );

    let plan = engine::rollback::plan(&engine, None).await.unwrap();
    assert_eq!(plan.cases.len(), summary.trial_cases.len());
    assert_eq!(plan.units(), plan.cases.len().div_ceil(10) as u64 * 2);
    let done = tokio::time::timeout(
        Duration::from_secs(60),
        engine::rollback::run(&engine, &plan),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(done.deleted as usize, plan.cases.len());
    assert!(done.failed.is_empty());
    assert!(done.units <= plan.units());
    let created: Vec<_> = summary
        .trial_cases
        .iter()
        .map(|c| store::parse_ticket_key(&c.ticket).unwrap())
        .collect();
    assert_rolled_back(&engine, &h, &created).await;
    assert!(deletes_per_case(&h).values().all(|&n| n == 1));
    engine.store().close().await;

    run(&h.settings, engine::RunOptions::default()).await;
    assert_exact(&h);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_interrupted_after_sending_deletes_each_case_once() {
    let h = start(config(), "").await;
    let summary = trial(&h, 30).await;
    let engine = engine::Engine::open(h.settings.clone()).await.unwrap();
    let cases = engine.store().created_cases(None).await.unwrap();
    assert!(cases.len() > 20, "{} cases", cases.len());

    // What a rollback killed at the worst moment leaves: the first bulk delete journaled, sent
    // and applied by Deskie, not recorded; the second journaled and never sent.
    let first: Vec<_> = cases[..10].iter().map(|(k, c)| (*k, c.case_id)).collect();
    let second: Vec<_> = cases[10..20].iter().map(|(k, c)| (*k, c.case_id)).collect();
    engine.store().open_rollback(&first).await.unwrap();
    engine.store().open_rollback(&second).await.unwrap();
    let client = deskie_client(
        &h,
        limiter("killed rollback", 10_000, Duration::from_secs(1)),
    );
    let ids: Vec<i64> = first.iter().map(|(_, c)| *c).collect();
    client.delete_cases(&ids).await.unwrap();

    let plan = engine::rollback::plan(&engine, None).await.unwrap();
    assert_eq!(plan.open, 20);
    let done = engine::rollback::run(&engine, &plan).await.unwrap();
    assert_eq!(done.already_gone, 10);
    assert_eq!(done.deleted as usize, cases.len() - 10);
    let per_case = deletes_per_case(&h);
    for (_, case) in &cases {
        assert_eq!(
            per_case.get(&case.case_id),
            Some(&1),
            "case {}",
            case.case_id
        );
    }
    let keys: Vec<_> = cases.iter().map(|(k, _)| *k).collect();
    assert_rolled_back(&engine, &h, &keys).await;

    // Run again: nothing left to do, nothing deleted twice.
    let again = engine::rollback::plan(&engine, None).await.unwrap();
    assert!(again.cases.is_empty() && again.open == 0);
    assert_eq!(summary.trial_cases.len(), cases.len());
    engine.store().close().await;

    run(&h.settings, engine::RunOptions::default()).await;
    assert_exact(&h);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_of_named_tickets_only_and_trial_by_ticket() {
    let h = start(config(), "").await;
    let ds = h.sandbox.dataset();
    let picks: Vec<model::TicketKey> = ds
        .tickets
        .iter()
        .rev()
        .take(3)
        .map(|t| model::TicketKey::new(t.product_id, t.ticket_id))
        .collect();
    let summary = run(
        &h.settings,
        engine::RunOptions {
            tickets: picks.clone(),
            ..Default::default()
        },
    )
    .await;
    // Named tickets are fetched directly: no list page is read.
    assert!(
        !h.sandbox.journal().iter().any(is_list_page),
        "a trial by ticket lists nothing"
    );
    let engine = engine::Engine::open(h.settings.clone()).await.unwrap();
    let cases = engine.store().created_cases(None).await.unwrap();
    assert_eq!(cases.len(), summary.trial_cases.len());
    assert!(cases.iter().all(|(k, _)| picks.contains(k)));
    let keep = cases[0].0;
    let rest: Vec<_> = cases.iter().skip(1).map(|(k, _)| *k).collect();
    let plan = engine::rollback::plan(&engine, Some(&rest)).await.unwrap();
    engine::rollback::run(&engine, &plan).await.unwrap();
    assert_eq!(engine.store().created_cases(None).await.unwrap().len(), 1);
    assert_eq!(h.sandbox.deskie_snapshot().cases.len(), 1);
    assert_eq!(
        engine.store().ticket_state(keep).await.unwrap(),
        Some(TicketState::Loaded)
    );
}
