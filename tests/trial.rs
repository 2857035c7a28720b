//! CLI tests of the commands around the real run: `preflight`, a trial (`run --limit`), `rollback`
//! with and without confirmation, the refusal after a blocking finding, and the shipping helpers
//! (`completions`, `man`).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use sandbox::{Readings, Sandbox, SandboxConfig};

const BIN: &str = env!("CARGO_BIN_EXE_deskie-import");

async fn run_bin(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let mut cmd = assert_cmd::Command::new(BIN);
        for v in [
            "DESK360_TOKEN",
            "DESK360_EMAIL",
            "DESK360_PASSWORD",
            "DESKIE_API_KEY",
            "RUST_LOG",
        ] {
            cmd.env_remove(v);
        }
        // No terminal on stdin: a rollback without --yes must refuse, not wait.
        cmd.args(&args)
            .timeout(Duration::from_secs(120))
            .write_stdin("");
        cmd.output().unwrap()
    })
    .await
    .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        text(&o.stdout),
        text(&o.stderr)
    )
}

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
    let c = sandbox.credentials();
    let text = format!(
        r#"[source]
base_url = "{d}"
token = "{token}"
rpm = 400
window_secs = 1
timeout_secs = 5
[target]
base_url = "{k}"
staff_email = "{email}"
api_key = "{key}"
plan = "pro"
agents = 1000
rpm = 3000
window_secs = 1
timeout_secs = 5
source_id_field = "cf_900"
[mapping]
default_staff_id = 100
channels = {{ "default" = "email", "Phone" = "calls", "Web" = "custom:481", "WhatsApp" = "custom:482", "Facebook" = "skip" }}
[store]
path = "{store}"
"#,
        d = sandbox.desk360_url(),
        k = sandbox.deskie_url(),
        token = c.desk360_token,
        email = c.deskie_staff_email,
        key = c.deskie_api_key,
        store = dir.path().join("store.sqlite").display(),
    );
    let path = dir.path().join("deskie-import.toml");
    std::fs::write(&path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The file holds secrets: readable by its owner only (else the binary warns).
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    (sandbox, dir, path)
}

fn deskie_writes(s: &Sandbox) -> usize {
    s.journal()
        .iter()
        .filter(|e| e.server == sandbox::Server::Deskie && e.method != "GET")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_trial_rollback_then_run_once() {
    let (s, _dir, config) = start(Readings::default()).await;
    let c = config.display().to_string();

    let out = run_bin(&["preflight", "--config", &c]).await;
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
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

    let out = run_bin(&["run", "--limit", "20", "--quiet", "--config", &c]).await;
    assert!(matches!(out.status.code(), Some(0 | 3)), "{}", show(&out));
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

    let out = run_bin(&["rollback", "--all", "--config", &c]).await;
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(text(&out.stderr).contains("--yes"), "{}", show(&out));
    assert_eq!(
        s.deskie_snapshot().cases.len(),
        cases.len(),
        "nothing deleted"
    );

    let out = run_bin(&["rollback", "--all", "--yes", "--config", &c]).await;
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("rollback:"), "cost first: {stdout}");
    assert!(
        stdout.contains("customers Deskie created with them stay"),
        "{stdout}"
    );
    assert!(s.deskie_snapshot().cases.is_empty(), "0 cases from us left");

    let out = run_bin(&["run", "--quiet", "--config", &c]).await;
    assert!(matches!(out.status.code(), Some(0 | 3)), "{}", show(&out));
    let snap = s.deskie_snapshot();
    assert_eq!(snap.customer_emailed, 0);
    for t in &s.dataset().tickets {
        let n = snap.cases_of(t.product_id, t.ticket_id).len();
        assert!(
            n <= 1,
            "ticket {}/{} has {n} cases",
            t.product_id,
            t.ticket_id
        );
    }
    let out = run_bin(&["verify", "--config", &c]).await;
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_created_at_makes_run_refuse_with_exit_2() {
    let (s, _dir, config) = start(Readings {
        ignores_created_at: true,
        ..Readings::default()
    })
    .await;
    let c = config.display().to_string();
    let out = run_bin(&["preflight", "--config", &c]).await;
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(text(&out.stdout).contains("BLOCKING"), "{}", show(&out));
    let snap = s.deskie_snapshot();
    assert!(
        snap.cases.is_empty() && snap.users.is_empty(),
        "probe deleted"
    );

    s.clear_journal();
    let out = run_bin(&["run", "--config", &c]).await;
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
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
        let out = run_bin(&["completions", shell]).await;
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        let script = text(&out.stdout);
        assert!(script.contains("deskie-import"), "{shell}");
        assert!(
            script.contains("rollback") && script.contains("preflight"),
            "{shell}"
        );
    }
    let out = run_bin(&["man"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let page = text(&out.stdout);
    assert!(page.contains(".TH deskie-import"), "{page}");
    assert!(page.contains("rollback"), "subcommands listed");
}
