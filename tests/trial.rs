//! CLI tests of the commands around the real run: `preflight`, a trial (`run --limit`), `rollback`
//! with and without confirmation, the refusal after a blocking finding, and the shipping helpers
//! (`completions`, `man`).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{
    CHANNELS_BY_KIND, ConfigSpec, at_most_one_case_each, deskie_writes, path_arg, run_expecting,
    run_finishing, show, text, write_config,
};
use sandbox::{Readings, Sandbox, SandboxConfig};

async fn start(readings: Readings) -> (Sandbox, tempfile::TempDir, PathBuf) {
    let sandbox = Sandbox::start(SandboxConfig {
        seed: 5,
        products: 2,
        tickets: 60,
        window: Duration::from_secs(1),
        desk360_limit: 400,
        deskie_limit: 3000,
        readings,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = path_arg(&dir.path().join("store.sqlite"));
    let spec = ConfigSpec {
        api_key: None,
        token: None,
        mapping: CHANNELS_BY_KIND,
        store: &store,
        rest: "",
    };
    let path = write_config(&dir.path().join("deskie-import.toml"), &sandbox, &spec);
    (sandbox, dir, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_trial_rollback_then_run_once() {
    let (s, _dir, config) = start(Readings::default()).await;
    let c = path_arg(&config);

    let out = run_expecting(0, &["preflight", "--config", &c], 120).await;
    let stdout = text(&out.stdout);
    let first = stdout.lines().next().unwrap_or_default();
    assert!(
        first.contains("Deskie units"),
        "the cost comes first: {stdout}"
    );
    for check in [
        "created_at",
        "custom-field filter",
        "note author field",
        "permanent delete",
    ] {
        assert!(stdout.contains(check), "table row {check}: {stdout}");
    }
    assert!(stdout.contains("auto-replies"), "the checklist: {stdout}");
    let snap = s.deskie_snapshot();
    assert!(snap.cases.is_empty() && snap.users.is_empty() && snap.customer_emailed == 0);

    let out = run_finishing(&["run", "--limit", "20", "--quiet", "--config", &c], 120).await;
    let stdout = text(&out.stdout);
    assert!(stdout.contains("trial:"), "{}", show(&out));
    let cases = s.deskie_snapshot().cases;
    assert!(!cases.is_empty() && cases.len() <= 20);
    for case in &cases {
        assert!(
            stdout.contains(&format!("case {} (id {})", case.case_number, case.case_id)),
            "case {} listed: {stdout}",
            case.case_id
        );
    }

    let out = run_expecting(2, &["rollback", "--all", "--config", &c], 120).await;
    assert!(text(&out.stderr).contains("--yes"), "{}", show(&out));
    assert_eq!(
        s.deskie_snapshot().cases.len(),
        cases.len(),
        "nothing deleted"
    );

    let out = run_expecting(0, &["rollback", "--all", "--yes", "--config", &c], 120).await;
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("rollback:"), "cost first: {stdout}");
    assert!(
        stdout.contains("customers Deskie created with them stay"),
        "{stdout}"
    );
    assert!(s.deskie_snapshot().cases.is_empty(), "0 cases from us left");

    run_finishing(&["run", "--quiet", "--config", &c], 120).await;
    assert_eq!(s.deskie_snapshot().customer_emailed, 0);
    at_most_one_case_each(&s);
    run_expecting(0, &["verify", "--config", &c], 120).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_created_at_makes_run_refuse_with_exit_2() {
    let (s, _dir, config) = start(Readings {
        ignores_created_at: true,
        ..Readings::default()
    })
    .await;
    let c = path_arg(&config);
    let out = run_expecting(2, &["preflight", "--config", &c], 120).await;
    assert!(text(&out.stdout).contains("BLOCKING"), "{}", show(&out));
    let snap = s.deskie_snapshot();
    assert!(
        snap.cases.is_empty() && snap.users.is_empty(),
        "probe deleted"
    );

    s.clear_journal();
    let out = run_expecting(2, &["run", "--config", &c], 120).await;
    let stderr = text(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("created_at"), "{stderr}");
    assert_eq!(
        deskie_writes(&s),
        0,
        "nothing written beyond the deleted probe"
    );
    assert!(s.deskie_snapshot().cases.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_and_man_page_are_generated() {
    for shell in ["bash", "zsh", "fish"] {
        let out = run_expecting(0, &["completions", shell], 120).await;
        let script = text(&out.stdout);
        assert!(script.contains("deskie-import"), "{shell}");
        assert!(
            script.contains("rollback") && script.contains("preflight"),
            "{shell}"
        );
    }
    let out = run_expecting(0, &["man"], 120).await;
    let page = text(&out.stdout);
    assert!(page.contains(".TH deskie-import"), "{page}");
    assert!(page.contains("rollback"), "subcommands listed");
}
