//! End-to-end: a whole sandbox account migrated by the engine, checked ticket by ticket.
#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reads_back_and_finds_tampering() {
    let h = start(small(60, 1000, 1000, 3000), "").await;
    run(&h.settings, engine::RunOptions::default()).await;
    let engine = engine::Engine::open(h.settings.clone()).await.unwrap();
    let report = engine::verify::verify(&engine).await.unwrap();
    eprintln!("{}", report.to_text());
    assert!(report.ok(), "{}", report.to_text());
    assert!(report.checked > 40);
    assert_eq!(report.unexpected, 0);

    // Tamper: write one message of a case a second time, and add one nobody sent.
    let snap = h.sandbox.deskie_snapshot();
    let case = snap
        .cases
        .iter()
        .find(|c| c.messages.len() >= 2 && !c.messages[1].note && c.messages[1].staff_id != 0)
        .expect("a case with an agent reply");
    let dup = &case.messages[1];
    let t = &h.settings.target;
    let client = deskie::DeskieClient::new(
        deskie::DeskieConfig::new(t.base_url.clone(), t.staff_email.clone(), t.api_key.clone()),
        throttle::Limiter::new(throttle::LimiterConfig {
            name: "tamper",
            limit: 1000,
            window: std::time::Duration::from_secs(1),
            ..throttle::LimiterConfig::default()
        }),
    )
    .unwrap();
    let body = if dup.content_html.is_empty() {
        deskie::Content::Text(dup.content.clone())
    } else {
        deskie::Content::Html(dup.content_html.clone())
    };
    let at = deskie::parse_timestamp(&dup.created_at).unwrap();
    client
        .add_message(
            case.case_id,
            &deskie::NewMessage::from_agent(dup.staff_id, body, at),
        )
        .await
        .unwrap();
    client
        .add_message(
            case.case_id,
            &deskie::NewMessage::from_agent(
                dup.staff_id,
                deskie::Content::Html("written later".into()),
                at,
            ),
        )
        .await
        .unwrap();
    let report = engine::verify::verify(&engine).await.unwrap();
    eprintln!("{}", report.to_text());
    assert!(!report.ok());
    assert_eq!(report.duplicated, 1, "{}", report.to_text());
    assert_eq!(report.unexpected, 1, "{}", report.to_text());
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains(&format!("case {}", case.case_id)))
    );
}

/// Without a source-id field, a lost create is found again by time + subject + recipient.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_responses_without_a_source_id_field() {
    let mut cfg = small(120, 1000, 1000, 3000);
    cfg.faults.drop_after_commit_rate = 0.08;
    let mut h = start(cfg, "").await;
    h.settings.target.source_id_field = None;
    let summary = run(&h.settings, engine::RunOptions::default()).await;
    eprintln!("{:?}", summary.progress);
    assert!(summary.progress.reconcile_reads > 0);
    // Compare without the source-id field in the expectation either.
    let snap = h.sandbox.deskie_snapshot();
    assert_eq!(snap.customer_emailed, 0);
    let mut per_ticket = std::collections::BTreeMap::new();
    for c in &snap.cases {
        *per_ticket.entry(c.source_ticket).or_insert(0) += 1;
    }
    assert!(
        per_ticket.values().all(|n| *n == 1),
        "no duplicate case: {per_ticket:?}"
    );
    let total_msgs: usize = snap.cases.iter().map(|c| c.messages.len()).sum();
    let expected_msgs: usize = expected(&h)
        .values()
        .filter_map(|m| match m {
            engine::mapping::Mapped::Case(p) => Some(1 + p.steps.len()),
            _ => None,
        })
        .sum();
    assert_eq!(total_msgs, expected_msgs, "every message once");
}

/// A channel mapped to `skip` and routed to a real channel later migrates on the next run; the
/// tickets already loaded are not touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_unskipped_later_migrates_on_the_next_run() {
    let mut h = start(small(120, 1000, 1000, 3000), "").await;
    run(&h.settings, engine::RunOptions::default()).await;
    let skipped = expected(&h)
        .values()
        .filter(|m| matches!(m, engine::mapping::Mapped::Skipped { .. }))
        .count();
    assert!(skipped > 0, "the seeded account has Facebook tickets");
    let first_cases: std::collections::BTreeSet<i64> = h
        .sandbox
        .deskie_snapshot()
        .cases
        .iter()
        .map(|c| c.case_id)
        .collect();

    h.settings.mapping.channels.insert(
        "facebook".into(),
        engine::config::ChannelRoute::Custom("483".into()),
    );
    h.sandbox.clear_journal();
    run(&h.settings, engine::RunOptions::default()).await;
    let (cases, _) = assert_exact(&h);
    assert!(
        cases > first_cases.len(),
        "the formerly skipped tickets now have cases"
    );
    // Nothing is written to the cases of the first run.
    let writes_to_first = h
        .sandbox
        .journal()
        .iter()
        .filter(|e| e.method != "GET")
        .filter_map(|e| {
            let p = e.path.split('?').next()?;
            p.split("/cases/")
                .nth(1)?
                .split(['/', '.'])
                .next()?
                .parse::<i64>()
                .ok()
        })
        .filter(|id| first_cases.contains(id))
        .count();
    assert_eq!(
        writes_to_first, 0,
        "cases of the first run are not written again"
    );
}
