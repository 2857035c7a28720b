//! End-to-end tests of the `deskie-import` binary against the sandbox started in this test
//! process on 127.0.0.1:0: every command, every exit code from a real situation, secrets from the
//! environment, redaction, Ctrl-C during a run and the resume after it. Every wait is bounded.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use common::{
    CHANNELS_BY_KIND, ConfigSpec, at_most_one_case_each, deskie_writes, failed_keys, not_skipped,
    path_arg, private, run_bin, run_expecting, run_expecting_with, run_finishing, show, signal,
    spawn_bin, start_sandbox, status_json, text, wait_child, write_config,
};
use sandbox::{Faults, Sandbox, SandboxConfig};

/// Sandbox limits and window used by most tests: short windows, limits equal in the config.
fn sandbox_config(tickets: usize, latency_ms: u64) -> SandboxConfig {
    SandboxConfig {
        seed: 11,
        products: 2,
        tickets,
        window: Duration::from_secs(1),
        desk360_limit: 400,
        deskie_limit: 3000,
        latency: Duration::from_millis(latency_ms),
        jitter: Duration::from_millis(latency_ms / 2),
        ..SandboxConfig::default()
    }
}

/// The `[run]` section of every config here.
const RUN: &str = "[run]
concurrency = 8
max_retries = 2
reconcile_settle_secs = 0.5
";

struct Setup {
    sandbox: Sandbox,
    dir: tempfile::TempDir,
}

impl Setup {
    async fn start(cfg: SandboxConfig) -> Setup {
        Setup {
            sandbox: start_sandbox(cfg).await,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A config for the sandbox; `api_key` / `token` replace the right ones when given
    /// (`Some("")` leaves the key out of the file).
    fn config_with(&self, name: &str, api_key: Option<&str>, token: Option<&str>) -> PathBuf {
        // Two agents, every kind of channel.
        let mapping = format!("agents = {{ \"1\" = 101, \"2\" = 102 }}\n{CHANNELS_BY_KIND}");
        let spec = ConfigSpec {
            api_key,
            token,
            mapping: &mapping,
            store: "store.sqlite",
            rest: RUN,
        };
        write_config(&self.dir.path().join(name), &self.sandbox, &spec)
    }

    fn config(&self) -> PathBuf {
        self.config_with("deskie-import.toml", None, None)
    }

    /// The default config with `replacements` made, written (owner-readable) as `name`.
    fn config_variant(&self, name: &str, replacements: &[(&str, &str)]) -> String {
        let mut body = std::fs::read_to_string(self.config()).unwrap();
        for (from, to) in replacements {
            body = body.replace(from, to);
        }
        let path = self.dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        private(&path);
        path_arg(&path)
    }

    /// Every source ticket has at most one case; nobody was emailed.
    fn assert_no_duplicates(&self) -> usize {
        let snap = self.sandbox.deskie_snapshot();
        assert_eq!(snap.customer_emailed, 0, "no customer may be emailed");
        let seen = at_most_one_case_each(&self.sandbox);
        assert_eq!(snap.cases.len(), seen.len(), "no stray cases");
        seen.len()
    }

    /// Tickets that become a case (not skipped): the channel is not Facebook.
    fn migratable(&self) -> Vec<(i64, i64)> {
        self.sandbox
            .dataset()
            .tickets
            .iter()
            .filter(|t| not_skipped(t))
            .map(|t| (t.product_id, t.ticket_id))
            .collect()
    }

    /// Starts `run` in the background and waits (60 s at most) until it has sent `posts` POSTs
    /// to Deskie.
    async fn spawn_loading_run(&self, c: &str, posts: usize) -> Child {
        let child = spawn_bin(&["run", "--config", c]);
        let started = wait_until(Duration::from_secs(60), || {
            self.sandbox
                .journal()
                .iter()
                .filter(|e| e.server == sandbox::Server::Deskie && e.method == "POST")
                .count()
                >= posts
        })
        .await;
        assert!(started, "loading started");
        child
    }

    /// A run to the end; returns how many tickets have their case (one each).
    async fn run_to_the_end(&self, c: &str, limit_secs: u64) -> usize {
        run_finishing(&["run", "--config", c], limit_secs).await;
        self.assert_no_duplicates()
    }
}

/// The config's text without its secret lines (`token`, `api_key`), as when they come from the
/// environment.
fn without_secrets(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with("token =") && !l.starts_with("api_key ="))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The only stderr line a refused command prints, after asserting there is one.
fn one_line_error(out: &Output) -> String {
    let err = text(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "one line: {}", show(out));
    err
}

/// Waits for `cond` with a bound, polling.
async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_and_usage_errors() {
    let out = run_expecting(0, &["--help"], 20).await;
    let help = text(&out.stdout);
    for cmd in [
        "run",
        "retry-failed",
        "status",
        "report",
        "verify",
        "demo",
        "sandbox",
        "Exit codes",
        "DESKIE_API_KEY",
    ] {
        assert!(help.contains(cmd), "help names {cmd}:\n{help}");
    }
    let out = run_expecting(0, &["run", "--help"], 20).await;
    assert!(text(&out.stdout).contains("--dry-run"));
    assert!(text(&out.stdout).contains("Examples:"));
    // clap's own usage errors exit 2.
    for bad in [
        vec!["run", "--bogus"],
        vec!["report", "--format", "pdf"],
        vec!["frobnicate"],
        vec!["run", "--dry-run", "--retry-failed"],
    ] {
        run_expecting(2, &bad, 20).await;
    }
    // A bad --ticket is a usage error too (before the config is even read).
    let bad_ticket = [
        "retry-failed",
        "--ticket",
        "abc",
        "--config",
        "/nonexistent.toml",
    ];
    let out = run_expecting(2, &bad_ticket, 20).await;
    assert!(text(&out.stderr).contains("--ticket"), "{}", show(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_errors_exit_2_before_any_request() {
    let s = Setup::start(sandbox_config(20, 0)).await;
    let good = s.config();
    let good_text = std::fs::read_to_string(&good).unwrap();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "missing.toml",
            good_text.replace(
                &format!("api_key = \"{}\"\n", s.sandbox.credentials().deskie_api_key),
                "",
            ),
            "target.api_key",
        ),
        (
            "unknown.toml",
            good_text.replace("concurrency = 8", "concurency = 8"),
            "concurency",
        ),
        (
            "invalid.toml",
            good_text.replace("plan = \"pro\"", "plan = \"platinum\""),
            "target.plan",
        ),
        (
            "status.toml",
            good_text.replace(
                "default_staff_id = 100",
                "default_staff_id = 100\nstatus = { \"1\" = \"done\" }",
            ),
            "mapping.status.1",
        ),
        (
            "http.toml",
            good_text.replace("http://127.0.0.1", "http://example.com"),
            "plain http",
        ),
    ];
    for (name, body, needle) in &cases {
        let path = s.dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        for cmd in ["run", "status"] {
            let out = run_expecting(2, &[cmd, "--config", &path_arg(&path)], 30).await;
            let err = text(&out.stderr);
            assert!(
                err.contains(needle),
                "{name}: names {needle}: {}",
                show(&out)
            );
            let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
            assert_eq!(lines.len(), 1, "one error line: {err}");
            assert_eq!(
                err.trim().lines().count(),
                1,
                "nothing but the error line: {err}"
            );
        }
    }
    // A missing config file says where to start from.
    let missing = path_arg(&s.dir.path().join("nope.toml"));
    let out = run_expecting(2, &["run", "--config", &missing], 30).await;
    assert!(text(&out.stderr).contains("deskie-import.example.toml"));
    assert!(
        s.sandbox.journal().is_empty(),
        "no request may be sent: {:?}",
        s.sandbox.journal()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_tickets_exit_3_then_retry_failed_exits_0() {
    let s = Setup::start(sandbox_config(60, 0)).await;
    let rejected: BTreeSet<(i64, i64)> = s
        .sandbox
        .dataset()
        .tickets
        .iter()
        .filter(|t| t.detail["channel"].as_str() == Some("Email"))
        .take(3)
        .map(|t| (t.product_id, t.ticket_id))
        .collect();
    s.sandbox.set_faults(Faults {
        reject_tickets: rejected.clone(),
        ..Faults::default()
    });
    // The API key comes from the environment only.
    let config = s.config_with("env.toml", Some(""), None);
    let key = s.sandbox.credentials().deskie_api_key;
    let env = [("DESKIE_API_KEY", key.as_str())];
    let c = path_arg(&config);

    let out = run_expecting_with(3, &["run", "--config", &c], &env, 90).await;
    let stdout = text(&out.stdout);
    assert!(stdout.contains("3 tickets failed"), "{}", show(&out));
    assert!(
        stdout.contains("deskie-import retry-failed"),
        "{}",
        show(&out)
    );

    // status --json lists exactly the rejected tickets, with the API's message.
    let out = run_expecting_with(0, &["status", "--json", "--config", &c], &env, 30).await;
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(failed_keys(&status), rejected, "{status:#}");
    assert_eq!(status["counts"]["tickets"]["failed"], 3, "{status:#}");
    let out = run_expecting_with(0, &["status", "--config", &c], &env, 30).await;
    assert!(
        text(&out.stdout).contains("failed tickets"),
        "{}",
        show(&out)
    );

    // The cause is fixed: only those tickets are written again.
    s.sandbox.set_faults(Faults::default());
    s.sandbox.clear_journal();
    run_expecting_with(0, &["retry-failed", "--config", &c], &env, 90).await;
    let writes = deskie_writes(&s.sandbox);
    assert!(
        writes >= rejected.len(),
        "retry wrote the rejected tickets ({writes})"
    );
    assert!(
        s.sandbox
            .journal()
            .iter()
            // Upload mode (the default, #12) downloads the retried messages' files again:
            // Desk360 storage, not its API.
            .all(|e| e.server == sandbox::Server::Deskie || e.path.starts_with("/attachments/")),
        "retry-failed does not read the Desk360 API"
    );
    let cases = s.assert_no_duplicates();
    assert_eq!(
        cases,
        s.migratable().len(),
        "every migratable ticket has its case"
    );

    // Report and verify on the finished migration.
    let report = path_arg(&s.dir.path().join("report.json"));
    let json_report = [
        "report", "--format", "json", "--out", &report, "--config", &c,
    ];
    run_expecting_with(0, &json_report, &env, 30).await;
    let _: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    for format in ["md", "html"] {
        let list = ["report", "--format", format, "--config", &c];
        let out = run_expecting_with(0, &list, &env, 30).await;
        assert!(!out.stdout.is_empty());
    }
    let out = run_expecting_with(0, &["verify", "--config", &c], &env, 60).await;
    assert!(text(&out.stdout).contains("verify:"), "{}", show(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_exit_1_and_secrets_never_leak() {
    let s = Setup::start(sandbox_config(20, 0)).await;
    let deskie_secret = "SeCrEt-deskie-key-5f1e9a";
    let desk360_secret = "SeCrEt-desk360-token-77c2b0";
    let log = path_arg(&s.dir.path().join("log.jsonl"));
    for (name, key, token) in [
        ("bad-key.toml", Some(deskie_secret), None),
        ("bad-token.toml", None, Some(desk360_secret)),
    ] {
        let config = path_arg(&s.config_with(name, key, token));
        let list = [
            "run",
            "--config",
            &config,
            "--log-format",
            "json",
            "--log-file",
            &log,
        ];
        let out = run_expecting_with(1, &list, &[("RUST_LOG", "debug")], 60).await;
        let err = one_line_error(&out);
        assert!(err.starts_with("error: "), "{name}: {}", show(&out));
        for secret in [deskie_secret, desk360_secret] {
            assert!(
                !text(&out.stdout).contains(secret),
                "{name}: secret in stdout"
            );
            assert!(!err.contains(secret), "{name}: secret in stderr");
        }
    }
    // The same with text logs on stderr at trace level for our crates.
    let config = path_arg(&s.config_with("bad-key2.toml", Some(deskie_secret), None));
    let list = ["run", "--config", &config];
    let out = run_expecting_with(1, &list, &[("RUST_LOG", "trace")], 60).await;
    assert!(
        !text(&out.stderr).contains(deskie_secret),
        "secret in trace logs"
    );
    assert!(!text(&out.stdout).contains(deskie_secret));

    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.lines().count() > 3,
        "debug logs were written: {logged}"
    );
    for line in logged.lines() {
        let _: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
    assert!(!logged.contains(deskie_secret), "secret in the log file");
    assert!(!logged.contains(desk360_secret), "secret in the log file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_run_stops_cleanly_and_run_resumes_exactly_once() {
    // Slow enough that the run is in the middle of loading when interrupted.
    let mut cfg = sandbox_config(120, 15);
    cfg.deskie_limit = 400;
    let s = Setup::start(cfg).await;
    let c = path_arg(&s.config());
    let child = s.spawn_loading_run(&c, 20).await;
    signal(child.id(), "-INT");
    let out = wait_child(child, Duration::from_secs(60)).await;
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = text(&out.stderr);
    assert!(
        err.contains("stopping: finishing in-flight writes"),
        "{}",
        show(&out)
    );
    assert!(
        err.contains(&format!("Continue with: deskie-import run --config {c}")),
        "{}",
        show(&out)
    );
    let before = s.assert_no_duplicates();
    assert!(
        before < s.migratable().len(),
        "the run was interrupted before the end ({before})"
    );

    // 0 or 3: the seeded account holds a few tickets without an email, which cannot be routed.
    let cases = s.run_to_the_end(&c, 120).await;
    let status = status_json(&c).await;
    let loaded = status["counts"]["tickets"]["loaded"].as_u64().unwrap() as usize;
    assert_eq!(
        cases, loaded,
        "every loaded ticket has exactly one case: {status:#}"
    );
    let unfinished: u64 = ["pending", "extracted", "loading"]
        .iter()
        .map(|k| status["counts"]["tickets"][k].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        unfinished, 0,
        "the resumed run finished everything: {status:#}"
    );
    run_expecting(0, &["verify", "--config", &c], 60).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_ctrl_c_quits_at_once_and_run_still_finishes_exactly_once() {
    // A latency well above the gap between the two signals, so the second one lands while the
    // in-flight writes are finishing.
    let mut cfg = sandbox_config(100, 80);
    cfg.deskie_limit = 400;
    let s = Setup::start(cfg).await;
    let c = path_arg(&s.config());
    let child = s.spawn_loading_run(&c, 20).await;
    let pid = child.id();
    signal(pid, "-INT");
    // The second one as soon as the first was acknowledged.
    tokio::time::sleep(Duration::from_millis(30)).await;
    signal(pid, "-INT");
    let out = wait_child(child, Duration::from_secs(30)).await;
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    // If the clean stop won the race the process says so instead; both are safe.
    let err = text(&out.stderr);
    assert!(
        err.contains("quitting now") || err.contains("interrupted: stopped cleanly"),
        "{}",
        show(&out)
    );
    eprintln!(
        "second Ctrl-C exited at once: {}",
        err.contains("quitting now")
    );
    s.assert_no_duplicates();

    s.run_to_the_end(&c, 120).await;
    run_expecting(0, &["verify", "--config", &c], 60).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_writes_nothing_to_deskie() {
    let s = Setup::start(sandbox_config(40, 0)).await;
    let c = path_arg(&s.config());
    let out = run_expecting(0, &["run", "--dry-run", "--quiet", "--config", &c], 60).await;
    assert!(text(&out.stdout).contains("dry-run"), "{}", show(&out));
    assert!(
        out.stderr.is_empty(),
        "--quiet: nothing on stderr: {}",
        show(&out)
    );
    // DESIGN.md: a dry run runs the preflight first; its probe case is the only thing written
    // (one case, its replies and notes, then its deletion) and nothing of it is left.
    let writes = deskie_writes(&s.sandbox);
    assert!(
        writes <= engine_probe_writes(),
        "a dry run writes only the preflight probe ({writes} writes)"
    );
    let snap = s.sandbox.deskie_snapshot();
    assert!(
        snap.cases.is_empty() && snap.users.is_empty(),
        "the probe is deleted"
    );
    assert_eq!(snap.customer_emailed, 0);
}

/// The preflight probe's writes at most: create, agent and customer reply, two notes, trash and
/// delete twice, user delete.
fn engine_probe_writes() -> usize {
    10
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_completes_and_prints_the_summary() {
    let out = run_expecting(0, &["demo", "--tickets", "60", "--latency-ms", "2"], 120).await;
    let stdout = text(&out.stdout);
    assert!(stdout.contains("run: finished"), "{}", show(&out));
    assert!(stdout.contains("verify:"), "{}", show(&out));
    assert!(
        stdout.contains("customers emailed during the import: 0"),
        "{}",
        show(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_serves_until_ctrl_c() {
    let mut child = spawn_bin(&["sandbox", "--tickets", "20", "--seed", "5"]);
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                let done = line.contains("serving until Ctrl-C");
                lines.push(line);
                if done {
                    break;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => break,
        }
    }
    let all = lines.join("\n");
    assert!(all.contains("serving until Ctrl-C"), "{all}");
    assert!(all.contains("Deskie emulator: http://127.0.0.1:"), "{all}");
    assert!(
        all.contains("[target]") && all.contains("api_key = \"sandbox-deskie-key-5\""),
        "{all}"
    );
    // The printed URL answers.
    let url = lines
        .iter()
        .find_map(|l| l.strip_prefix("Deskie emulator: "))
        .unwrap()
        .to_string();
    let addr = url.trim_start_matches("http://").to_string();
    let connected =
        tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
            .await
            .unwrap();
    assert!(connected.is_ok());
    signal(child.id(), "-INT");
    let out = wait_child(child, Duration::from_secs(30)).await;
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
}

#[test]
fn example_config_parses_and_documents_every_key() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/deskie-import.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    // With the secrets left out of the file and given as overrides, as from the environment.
    let settings = engine::config::parse(
        &without_secrets(&text),
        &path,
        engine::config::SecretOverrides {
            desk360_token: Some(secrecy::SecretString::from("t")),
            deskie_api_key: Some(secrecy::SecretString::from("k")),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(settings.target.rpm, 100, "standard plan, 20 agents");
    assert_eq!(settings.run.concurrency, 8);
    // As written (placeholders included), it parses too.
    engine::config::parse(&text, &path, engine::config::SecretOverrides::default()).unwrap();
    // Every key of the contract is mentioned (commented or not).
    for key in [
        "base_url",
        "token",
        "email",
        "password",
        "rpm",
        "products",
        "timezone",
        "window_secs",
        "timeout_secs",
        "staff_email",
        "api_key",
        "plan",
        "agents",
        "source_id_field",
        "default_staff_id",
        "status",
        "priority",
        "channels",
        "types",
        "reasons",
        "type_field",
        "reason_field",
        "group_id",
        "path",
        "concurrency",
        "extract_concurrency",
        "max_retries",
    ] {
        let mentioned = text.lines().any(|l| {
            let l = l.trim_start_matches(['#', ' ']);
            l.starts_with(&format!("{key} ="))
        });
        assert!(mentioned, "example documents `{key}`");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_writer_per_store_a_second_exits_1_naming_the_holder() {
    // Slow enough that the first run is still loading while the others try.
    let mut cfg = sandbox_config(120, 20);
    cfg.deskie_limit = 400;
    let s = Setup::start(cfg).await;
    let c = path_arg(&s.config());
    let child = s.spawn_loading_run(&c, 1).await;
    let pid = child.id();

    for second in [
        vec!["run", "--config", &c],
        vec!["run", "--dry-run", "--config", &c],
        vec!["retry-failed", "--config", &c],
    ] {
        let out = run_expecting(1, &second, 30).await;
        let err = one_line_error(&out);
        assert!(
            err.contains(&format!("pid {pid}")) && err.contains("in use by another deskie-import"),
            "{second:?} names the holder: {err}"
        );
    }
    // Readers work alongside.
    for reader in [
        vec!["status", "--config", &c],
        vec!["report", "--config", &c],
    ] {
        run_expecting(0, &reader, 30).await;
    }
    // kill -9: the kernel releases the lock, the next run takes it and finishes exactly once.
    signal(pid, "-KILL");
    let _ = wait_child(child, Duration::from_secs(30)).await;
    s.run_to_the_end(&c, 120).await;
    run_expecting(0, &["verify", "--config", &c], 60).await;
}

/// Asserts a run was refused with exit 2 and one line naming the side that differs and the fix.
fn refused(out: &Output, side: &str, hint: &str) {
    assert_eq!(out.status.code(), Some(2), "{}", show(out));
    let err = one_line_error(out);
    assert!(
        err.contains(&format!("the {side}")) && err.contains(hint),
        "names the side and the fix: {}",
        show(out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_belongs_to_one_source_and_one_target_account() {
    // Two sandboxes with the same seed: the same data and credentials, other ports (until the
    // sandbox's `desk360_account` shows in `/v1/me`, a Desk360 sandbox differs by its URL).
    let a = Setup::start(sandbox_config(40, 0)).await;
    let b = Setup::start(sandbox_config(40, 0)).await;
    let c = path_arg(&a.config());
    let (a_deskie, b_deskie) = (a.sandbox.deskie_url(), b.sandbox.deskie_url());
    let t = a.config_variant("other-target.toml", &[(&a_deskie, &b_deskie)]);
    let (a_desk360, b_desk360) = (a.sandbox.desk360_url(), b.sandbox.desk360_url());
    let src = a.config_variant("other-source.toml", &[(&a_desk360, &b_desk360)]);
    let limit = Duration::from_secs(60);

    // A dry run records both accounts.
    run_expecting(0, &["run", "--dry-run", "--config", &c], 60).await;
    // Another Deskie: refused before any request reaches it.
    let out = run_bin(&["run", "--config", &t], &[], limit).await;
    refused(&out, "Deskie target differs", "--retarget");
    assert!(
        b.sandbox.journal().is_empty(),
        "nothing sent to the other Deskie"
    );

    // The real run into A.
    let loaded_in_a = a.run_to_the_end(&c, 90).await;
    assert_eq!(loaded_in_a, a.migratable().len());

    // Another Desk360 (same product ids): refused, nothing written to A's Deskie.
    a.sandbox.clear_journal();
    let out = run_bin(&["run", "--config", &src], &[], limit).await;
    refused(&out, "Desk360 source differs", "[store] path");
    assert_eq!(
        deskie_writes(&a.sandbox),
        0,
        "nothing written for another source"
    );
    // retry-failed compares too.
    let out = run_bin(&["retry-failed", "--config", &t], &[], limit).await;
    refused(&out, "Deskie target differs", "--retarget");
    assert!(
        b.sandbox.journal().is_empty(),
        "nothing sent to the other Deskie"
    );

    // Deliberately re-targeted: everything is migrated again into B, exactly once, and A is
    // left alone.
    run_finishing(&["run", "--retarget", "--config", &t], 90).await;
    assert_eq!(b.assert_no_duplicates(), b.migratable().len());
    assert_eq!(
        deskie_writes(&a.sandbox),
        0,
        "the old target is not touched"
    );
    // From now on the store belongs to B: A is refused, B verifies.
    let out = run_bin(&["run", "--config", &c], &[], limit).await;
    refused(&out, "Deskie target differs", "--retarget");
    run_expecting(0, &["verify", "--config", &t], 60).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_failed_after_an_extraction_failure_exits_0_only_when_it_is_loaded() {
    let s = Setup::start(sandbox_config(40, 0)).await;
    // Every channel routes without needing an email or a phone, so the only failure is ours.
    let c = s.config_variant(
        "routable.toml",
        &[
            ("\"default\" = \"email\"", "\"default\" = \"custom:481\""),
            ("\"Phone\" = \"calls\"", "\"Phone\" = \"custom:481\""),
        ],
    );
    let broken = *s.migratable().first().unwrap();
    let has_case = |s: &Setup| {
        !s.sandbox
            .deskie_snapshot()
            .cases_of(broken.0, broken.1)
            .is_empty()
    };
    // Its details cannot be read (a body that is not JSON, like a 404 page), later they can.
    s.sandbox.set_faults(Faults {
        malformed_tickets: [broken].into_iter().collect(),
        ..Faults::default()
    });
    run_expecting(3, &["run", "--config", &c], 90).await;
    assert!(!has_case(&s));
    let status = status_json(&c).await;
    let failed = status["failed_tickets"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{status:#}");
    assert_eq!(
        failed[0]["failure"]["record"]["stage"], "extract",
        "{status:#}"
    );

    s.sandbox.set_faults(Faults::default());
    // retry-failed fetches the details of a ticket whose extraction failed, then loads it:
    // exit 0, and the ticket is in Deskie.
    let out = run_expecting(0, &["retry-failed", "--config", &c], 90).await;
    assert!(
        has_case(&s),
        "exit 0 but the ticket is missing: {}",
        show(&out)
    );
    run_expecting(0, &["run", "--config", &c], 90).await;
    assert!(has_case(&s));
    assert_eq!(s.assert_no_duplicates(), s.migratable().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_clean_stop_the_sqlite_file_alone_holds_the_store() {
    let s = Setup::start(sandbox_config(40, 0)).await;
    let cases = s.run_to_the_end(&path_arg(&s.config()), 90).await;
    let wal = s.dir.path().join("store.sqlite-wal");
    let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal_len, 0, "the -wal is empty or absent after a clean stop");
    // Copy only the .sqlite file (beside a copy of the config, whose store path is relative):
    // it has every case.
    let copy_dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        s.dir.path().join("store.sqlite"),
        copy_dir.path().join("store.sqlite"),
    )
    .unwrap();
    let copied_config = copy_dir.path().join("deskie-import.toml");
    std::fs::copy(s.config(), &copied_config).unwrap();
    private(&copied_config);
    let copied = path_arg(&copied_config);
    let out = run_expecting(0, &["status", "--json", "--config", &copied], 30).await;
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        status["store"]
            .as_str()
            .unwrap()
            .starts_with(&copy_dir.path().display().to_string()),
        "the copy was read: {status}"
    );
    let loaded = status["counts"]["tickets"]["loaded"].as_u64().unwrap_or(0);
    assert_eq!(
        loaded as usize, cases,
        "every case is in the copied .sqlite: {status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readable_config_holding_secrets_gets_one_warning() {
    use std::os::unix::fs::PermissionsExt;
    let s = Setup::start(sandbox_config(10, 0)).await;
    let config = s.config();
    let c = path_arg(&config);
    let warnings = |out: &Output| {
        text(&out.stderr)
            .lines()
            .filter(|l| l.starts_with("warning:"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run_expecting(0, &["status", "--config", &c], 30).await;
    let w = warnings(&out);
    assert_eq!(w.len(), 1, "warned once: {}", show(&out));
    assert!(
        w[0].contains(&c)
            && w[0].contains(&format!("chmod 600 {c}"))
            && w[0].contains("source.token")
            && w[0].contains("target.api_key")
            && w[0].contains("DESKIE_API_KEY"),
        "names the file, the keys and the fix: {}",
        w[0]
    );
    assert!(
        !w[0].contains(&s.sandbox.credentials().deskie_api_key),
        "never the secret itself"
    );
    // Owner-only: no warning.
    private(&config);
    let out = run_bin(&["status", "--config", &c], &[], Duration::from_secs(30)).await;
    assert!(warnings(&out).is_empty(), "{}", show(&out));
    // Readable, but the secrets are in the environment: nothing to protect in the file.
    let no_secrets = s.dir.path().join("no-secrets.toml");
    let text_without = without_secrets(&std::fs::read_to_string(&config).unwrap());
    std::fs::write(&no_secrets, text_without).unwrap();
    std::fs::set_permissions(&no_secrets, std::fs::Permissions::from_mode(0o644)).unwrap();
    let creds = s.sandbox.credentials();
    let env = [
        ("DESKIE_API_KEY", creds.deskie_api_key.as_str()),
        ("DESK360_TOKEN", creds.desk360_token.as_str()),
    ];
    let list = ["status", "--config", &path_arg(&no_secrets)];
    let out = run_expecting_with(0, &list, &env, 30).await;
    assert!(warnings(&out).is_empty(), "{}", show(&out));
}
