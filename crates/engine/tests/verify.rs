//! `verify` that fits the budget: on a migrated account it states its cost first, checks every
//! case (exists, not duplicated, status, priority) at a fraction of a read per case from the
//! plain case list, checks the messages of a reproducible sample, finds each planted defect,
//! and resumes after being stopped.
//!
//! A 10 000-ticket migration is too slow for CI; the migrated state is built by migrating 1 000
//! tickets against the sandbox with generous limits. The cost figures scale: the case list costs
//! one read per 100 cases up to 50 000 cases.
#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use deskie::{CaseStatus, CaseUpdate};
use engine::mapping::Mapped;
use engine::verify::{self, VerifyOptions};
use model::TicketKey;
use sandbox::{Readings, Server};

/// Deskie requests of the journal, by kind: (case-list pages, single-case reads, message pages).
fn deskie_reads(h: &Harness) -> (usize, usize, usize) {
    let mut out = (0, 0, 0);
    for e in h.sandbox.journal() {
        if e.server != Server::Deskie || e.method != "GET" {
            continue;
        }
        let path = e.path.split('?').next().unwrap_or("");
        if path == "/api/cases.json" {
            out.0 += 1;
        } else if path.ends_with("/messages.json") {
            out.2 += 1;
        } else if path.starts_with("/api/cases/") {
            out.1 += 1;
        }
    }
    out
}

async fn delete(h: &Harness, path: &str) {
    let creds = h.sandbox.credentials();
    let url = format!("{}/api/{path}", h.sandbox.deskie_url());
    let status = reqwest::Client::new()
        .delete(&url)
        .basic_auth(&creds.deskie_staff_email, Some(&creds.deskie_api_key))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "DELETE {path}: {status}");
}

async fn verify_with(engine: &engine::Engine, options: &VerifyOptions) -> verify::VerifyReport {
    tokio::time::timeout(Duration::from_secs(120), verify::run(engine, options))
        .await
        .expect("verify finishes in time")
        .expect("verify succeeds")
}

fn has(report: &verify::VerifyReport, key: TicketKey, what: &str) -> bool {
    let prefix = format!("ticket {key} ");
    report
        .problems
        .iter()
        .any(|p| p.starts_with(&prefix) && p.contains(what))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sampled_verify_costs_a_fraction_of_a_read_per_case_and_finds_every_planted_defect() {
    let h = start(small(1000, 1000, 20_000, 100_000), "").await;
    let summary = run(&h.settings, engine::RunOptions::default()).await;
    assert!(!summary.interrupted);
    let engine = engine::Engine::open(h.settings.clone()).await.unwrap();
    let cases = engine.store().stored_case_count().await.unwrap();
    assert!(cases > 700, "most tickets migrated ({cases})");
    // The walk sends no filter: it holds under the most pessimistic readings of the pages.
    h.sandbox.set_readings(Readings::pessimistic());

    let options = VerifyOptions {
        sample: Some(50),
        seed: 11,
        ..VerifyOptions::default()
    };
    // The cost is stated before anything is sent.
    h.sandbox.clear_journal();
    let plan = verify::plan(&engine, &options).await.unwrap();
    assert!(h.sandbox.journal().is_empty(), "planning sends nothing");
    assert_eq!(plan.cases, cases);
    assert_eq!(plan.list_pages, cases.div_ceil(100));
    assert_eq!(plan.case_reads, 0);
    assert_eq!(plan.message_cases, 50);
    assert!(plan.case_level_reads_per_case < 0.02, "{plan:?}");
    assert!(plan.to_text().contains("verify will read Deskie"));

    // A clean migration verifies clean, at the stated cost.
    let clean = verify_with(&engine, &options).await;
    assert!(clean.complete);
    assert!(
        clean.ok(),
        "a clean migration has no findings: {:#?}",
        clean.problems
    );
    assert_eq!(clean.cases_checked, cases);
    assert_eq!(clean.checked, 50);
    let (lists, singles, messages) = deskie_reads(&h);
    assert_eq!(lists as u64, plan.list_pages, "one list page per 100 cases");
    assert_eq!(singles, 0, "every case was shown by the list");
    assert_eq!(messages as u64, plan.message_reads);
    assert_eq!(clean.reads, plan.total_reads);
    let sampled: BTreeSet<TicketKey> = engine
        .store()
        .verify_done_keys(clean.verify_id)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(sampled.len(), 50);

    // The same seed draws the same sample; another seed another one.
    let again = verify::plan(&engine, &options).await.unwrap();
    assert_eq!(again, plan);

    // Plant one defect of each kind.
    let expected = expected(&h);
    let loaded = engine
        .store()
        .ticket_keys(engine::TicketState::Loaded)
        .await
        .unwrap();
    let store = engine.store().clone();
    let case_of = |key: TicketKey| {
        let store = store.clone();
        async move { store.load_ticket(key).await.unwrap().case.unwrap().case_id }
    };
    let client = deskie_client(&h, limiter("deskie-test", 100_000, Duration::from_secs(1)));
    // A message deleted in a sampled case with at least two messages.
    let mut with_message = None;
    for key in &sampled {
        if !loaded.contains(key) {
            continue;
        }
        let case_id = case_of(*key).await;
        let msgs = client.all_messages(case_id).await.unwrap();
        if let Some(m) = msgs.iter().filter(|m| !m.is_note()).nth(1) {
            with_message = Some((*key, case_id, m.message_id));
            break;
        }
    }
    let (msg_key, msg_case, msg_id) = with_message.expect("a sampled case with two replies");
    delete(&h, &format!("cases/{msg_case}/messages/{msg_id}.json")).await;
    // Three other loaded tickets, outside the sample, for the case-level defects.
    let others: Vec<TicketKey> = loaded
        .iter()
        .copied()
        .filter(|k| !sampled.contains(k))
        .filter(|k| {
            matches!(
                expected.get(&(k.product_id, k.ticket_id)),
                Some(Mapped::Case(_))
            )
        })
        .take(3)
        .collect();
    let (deleted_key, dup_key, status_key) = (others[0], others[1], others[2]);
    let deleted_case = case_of(deleted_key).await;
    delete(&h, &format!("cases/{deleted_case}.json")).await;
    let Some(Mapped::Case(plan_dup)) = expected.get(&(dup_key.product_id, dup_key.ticket_id))
    else {
        unreachable!()
    };
    let duplicate = client.create_case(&plan_dup.create).await.unwrap();
    let status_case = case_of(status_key).await;
    let now = client.case(status_case).await.unwrap().status_value();
    let changed = if now == Some(CaseStatus::Closed) {
        CaseStatus::Waiting
    } else {
        CaseStatus::Closed
    };
    client
        .update_case(
            status_case,
            &CaseUpdate {
                status: Some(changed),
                ..CaseUpdate::default()
            },
        )
        .await
        .unwrap();

    h.sandbox.clear_journal();
    let found = verify_with(&engine, &options).await;
    assert!(found.complete);
    assert!(!found.ok());
    eprintln!("{}", found.to_text());
    assert!(has(&found, deleted_key, "no longer exists"), "deleted case");
    assert!(
        has(
            &found,
            dup_key,
            &format!("another case, {}", duplicate.case_id)
        ),
        "duplicated case"
    );
    assert!(has(&found, status_key, "status is"), "changed status");
    assert!(has(&found, msg_key, "is missing"), "deleted message");
    assert_eq!(found.missing_cases, 1);
    assert_eq!(found.by_kind.get("duplicated_case"), Some(&1));
    assert_eq!(found.by_kind.get("status"), Some(&1));
    assert_eq!(found.by_kind.get("missing_message"), Some(&1));
    assert_eq!(found.checked, 50);
    // Cost: the list pages plus one read of the case the list no longer shows.
    let (lists, singles, messages) = deskie_reads(&h);
    let case_level = (lists + singles) as f64 / cases as f64;
    eprintln!(
        "case level: {lists} list pages + {singles} case reads for {cases} cases = {case_level:.4} reads a case; {messages} message pages for 50 sampled cases"
    );
    assert!(lists as u64 <= cases.div_ceil(100) + 1);
    assert_eq!(singles, 1, "only the deleted case is read by its id");
    assert!(case_level < 0.05, "well under one read per case");
    assert_eq!(messages as u64, found.message_reads);
    assert!(found.message_reads <= 60, "about one page per sampled case");

    // The findings are in the report.
    let report = engine::report::build(&engine).await.unwrap();
    let md = report.to_markdown();
    assert!(md.contains("## Verification"), "{md}");
    assert!(md.contains(&format!("ticket {deleted_key}")));
    let json = report.to_json();
    assert!(json.contains("\"verification\""));
    // A finished migration: the whole history is complete, and both sides have a rate.
    let long = report
        .long_run
        .expect("a started migration has the long-run section");
    assert!(long.history_complete, "{long:?}");
    assert!(long.load_tickets_per_hour.is_some() && long.extract_tickets_per_hour.is_some());
    assert!(md.contains("## Long run") && md.contains("every listed ticket is migrated"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_verify_resumes_without_reading_again_what_it_recorded() {
    let h = start(small(300, 1000, 20_000, 100_000), "").await;
    // After a dry run nothing is loaded: the history is complete only after the newest ticket.
    dry_run(&h.settings).await;
    {
        let engine = engine::Engine::open(h.settings.clone()).await.unwrap();
        let mark = engine.store().history_mark().await.unwrap();
        let newest = h
            .sandbox
            .dataset()
            .tickets
            .iter()
            .filter_map(|t| t.detail["updated_at"].as_str().map(str::to_string))
            .max();
        assert!(!mark.everything);
        assert_eq!(mark.complete_after, newest, "{mark:?}");
    }
    run(&h.settings, engine::RunOptions::default()).await;
    let cases = {
        let engine = engine::Engine::open(h.settings.clone()).await.unwrap();
        engine.store().stored_case_count().await.unwrap()
    };
    let options = VerifyOptions::default(); // every case's messages
    h.sandbox.clear_journal();

    // Stop the first attempt once it has read some message pages.
    let first = engine::Engine::open(h.settings.clone()).await.unwrap();
    let cancel = first.cancel_token();
    let watcher = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while tokio::time::Instant::now() < deadline {
            if deskie_reads(&h).2 >= 40 {
                cancel.cancel();
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    let (stopped, ()) = tokio::join!(verify_with(&first, &options), watcher);
    assert!(!stopped.complete, "the first attempt was stopped");
    assert!(stopped.checked < cases, "{} < {cases}", stopped.checked);
    let (lists_before, _, messages_before) = deskie_reads(&h);
    drop(first);

    let second = engine::Engine::open(h.settings.clone()).await.unwrap();
    let done = verify_with(&second, &options).await;
    assert!(done.complete);
    assert!(done.ok(), "{:#?}", done.problems);
    assert_eq!(
        done.verify_id, stopped.verify_id,
        "the same verification resumed"
    );
    assert_eq!(done.checked, cases, "every case's messages checked once");
    let (lists_after, _, messages_after) = deskie_reads(&h);
    assert_eq!(
        lists_after, lists_before,
        "the case list, read completely before the stop, is not read again"
    );
    // Only the tickets in flight at the stop are read twice.
    let concurrency = h.settings.run.concurrency as u64;
    assert!(
        (messages_after as u64) <= cases + concurrency,
        "{messages_before} then {messages_after} message pages for {cases} cases"
    );
}
