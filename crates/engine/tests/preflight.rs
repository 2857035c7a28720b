//! `preflight` against the sandbox under each reading of the vendor pages: it must report the
//! reading the account follows, leave nothing behind in Deskie, email nobody, and a run afterwards
//! must migrate exactly (its case lookup holds under the reading found, lost answers included).
//! With "Deskie ignores `created_at`" the run refuses before writing anything.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use engine::preflight::{
    DeleteFinding, Findings, NoteAuthorFinding, SearchFinding, TimeFilterFinding,
};
use sandbox::{
    AgentReplyReading, LinkReading, NoteAuthorReading, Readings, SearchReading, TimeFilterReading,
};

/// 90 tickets over 3 products: each product has a second list page, so the `Link` is visible.
fn config(readings: Readings) -> sandbox::SandboxConfig {
    let mut cfg = small(90, 300, 10_000, 20_000);
    cfg.readings = readings;
    cfg
}

async fn preflight(h: &Harness) -> Findings {
    let engine = engine::Engine::open(h.settings.clone()).await.unwrap();
    let report = tokio::time::timeout(
        Duration::from_secs(60),
        engine::preflight::run(&engine, true),
    )
    .await
    .expect("preflight finishes in time")
    .expect("preflight succeeds");
    assert!(report.probed);
    assert!(
        report.deskie_units <= u64::from(engine::preflight::cost(true).deskie_units),
        "spent {} units, stated at most {}",
        report.deskie_units,
        engine::preflight::cost(true).deskie_units
    );
    let (_, recorded) = engine::preflight::recorded(&engine).await.unwrap().unwrap();
    assert_eq!(
        recorded, report.findings,
        "the findings are recorded as found"
    );
    engine.store().close().await;
    report.findings
}

/// Nothing of the probe is left in Deskie and nobody was emailed.
fn assert_nothing_left(h: &Harness) {
    let snap = h.sandbox.deskie_snapshot();
    assert!(snap.cases.is_empty(), "probe case left: {:?}", snap.cases);
    assert!(snap.users.is_empty(), "probe user left: {:?}", snap.users);
    assert_eq!(snap.customer_emailed, 0, "the probe emailed someone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_reports_each_reading_and_the_run_follows() {
    let cases: Vec<(
        Readings,
        SearchFinding,
        NoteAuthorFinding,
        TimeFilterFinding,
        &str,
        bool,
    )> = vec![
        (
            Readings::default(),
            SearchFinding::Caret,
            NoteAuthorFinding::Either,
            TimeFilterFinding::UnixSeconds,
            "open",
            true,
        ),
        (
            Readings::pessimistic(),
            SearchFinding::ExactOnly,
            NoteAuthorFinding::NoteStaffIdOnly,
            TimeFilterFinding::Ignored,
            "waiting",
            false,
        ),
        (
            Readings {
                link: LinkReading::KeepsQuery,
                custom_field_search: SearchReading::SubstringOnly,
                time_filter: TimeFilterReading::DateTimeText,
                agent_reply: AgentReplyReading::KeepsStatus,
                note_author: NoteAuthorReading::StaffIdOnly,
                ..Readings::default()
            },
            SearchFinding::SubstringOnly,
            NoteAuthorFinding::StaffIdOnly,
            TimeFilterFinding::Rejected,
            "open",
            true,
        ),
    ];
    for (readings, search, note, time, status, link_keeps) in cases {
        let h = start(config(readings.clone()), "").await;
        let f = preflight(&h).await;
        let label = format!("{readings:?}");
        assert!(f.deskie_ok && f.desk360_ok, "{label}");
        assert_eq!(f.desk360_page_size, Some(20), "{label}");
        assert_eq!(f.link_keeps_query, Some(link_keeps), "{label}");
        assert_eq!(f.source_field_kept, Some(true), "{label}");
        assert_eq!(f.case_created_at_kept, Some(true), "{label}");
        assert_eq!(f.message_created_at_kept, Some(true), "{label}");
        assert_eq!(f.search, Some(search), "{label}");
        assert_eq!(f.note_author, Some(note), "{label}");
        assert_eq!(f.time_filter, Some(time), "{label}");
        assert_eq!(
            f.status_after_agent_reply.as_deref(),
            Some(status),
            "{label}"
        );
        assert_eq!(f.delete, Some(DeleteFinding::Permanent), "{label}");
        assert_eq!(f.probe_cleaned, Some(true), "{label}");
        assert_eq!(f.blocking(), None, "{label}");
        assert_nothing_left(&h);

        // The run follows: its source-key lookup finds a case whose create answer was lost,
        // under the search reading just found, so no case is created twice.
        h.sandbox.set_faults(sandbox::Faults {
            drop_after_commit_rate: 0.15,
            ..sandbox::Faults::default()
        });
        run(&h.settings, engine::RunOptions::default()).await;
        h.sandbox.set_faults(sandbox::Faults::default());
        run(&h.settings, engine::RunOptions::default()).await;
        // Whatever a reply does to the status, every case ends with the source's.
        assert_exact(&h);
        assert_one_case_each(&h);
    }
}

/// Every migrated ticket has exactly one case (no duplicate from a lost create), none stray.
fn assert_one_case_each(h: &Harness) {
    let snap = h.sandbox.deskie_snapshot();
    assert_eq!(snap.customer_emailed, 0);
    let mut cases = 0;
    for ((p, t), mapped) in expected(h) {
        let n = snap.cases_of(p, t).len();
        match mapped {
            engine::mapping::Mapped::Case(_) => {
                assert_eq!(n, 1, "ticket {p}/{t}: {n} cases");
                cases += 1;
            }
            _ => assert_eq!(n, 0, "ticket {p}/{t} must not be migrated"),
        }
    }
    assert_eq!(snap.cases.len(), cases, "no stray cases");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_created_at_blocks_the_run_before_any_write() {
    let readings = Readings {
        ignores_created_at: true,
        ..Readings::default()
    };
    let h = start(config(readings), "").await;
    let f = preflight(&h).await;
    assert_eq!(f.case_created_at_kept, Some(false));
    assert_eq!(f.message_created_at_kept, Some(false));
    let line = f.blocking().expect("blocking finding");
    assert!(line.contains("created_at"), "{line}");
    assert!(!line.contains('\n'));
    assert_nothing_left(&h);

    h.sandbox.clear_journal();
    let engine = engine::Engine::open(h.settings.clone()).await.unwrap();
    let err = engine
        .run(engine::RunOptions::default())
        .await
        .expect_err("the run refuses");
    assert!(matches!(err, engine::EngineError::Refused(_)), "{err}");
    assert!(err.to_string().contains("created_at"), "{err}");
    assert!(
        h.sandbox.journal().is_empty(),
        "the refused run sent requests: {:?}",
        h.sandbox.journal()
    );
    // A dry run still goes (it writes nothing).
    let summary = engine
        .run(engine::RunOptions {
            dry_run: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(summary.counts.messages > 0);
    assert!(h.sandbox.deskie_snapshot().cases.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_probe_writes_nothing_and_a_killed_probe_is_cleaned_next_time() {
    let h = start(config(Readings::default()), "").await;
    let engine = engine::Engine::open(h.settings.clone()).await.unwrap();
    let report = engine::preflight::run(&engine, false).await.unwrap();
    assert!(!report.probed);
    assert!(report.findings.search.is_none());
    assert!(
        h.sandbox.journal().iter().all(|e| e.method == "GET"),
        "--no-probe must only read"
    );
    // A probe journaled and created, then the process died before deleting it.
    let probe = engine
        .store()
        .open_probe("left@probe.invalid", "preflight-left-probe")
        .await
        .unwrap();
    let client = deskie_client(&h, limiter("test", 10_000, Duration::from_secs(1)));
    let mut case = deskie::NewCase::email(
        "left@probe.invalid",
        "left",
        "<p>left</p>",
        "2001-02-03T04:05:06Z".parse().unwrap(),
        Some(100),
    );
    case.custom_fields
        .insert("cf_900".into(), "preflight-left-probe".into());
    let created = client.create_case(&case).await.unwrap();
    engine
        .store()
        .probe_created(probe, created.case_id, created.user_id)
        .await
        .unwrap();
    assert_eq!(h.sandbox.deskie_snapshot().cases.len(), 1);
    engine::preflight::run(&engine, true).await.unwrap();
    assert_nothing_left(&h);
    assert!(engine.store().open_probes().await.unwrap().is_empty());
}
