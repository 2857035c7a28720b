//! Shared harness of the binary's integration tests (`cli`, `trial`, `crash_loop`): running
//! `deskie-import` with a bound and a clean environment, a sandbox on 127.0.0.1:0 with a config
//! file pointing at it, and the checks of Deskie and of `status --json` those suites share.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sandbox::{Sandbox, SandboxConfig};

pub const BIN: &str = env!("CARGO_BIN_EXE_deskie-import");

/// Environment variables that would leak from the developer's shell into a test: the secrets
/// and the log filter.
const CLEARED_VARS: [&str; 5] = [
    "DESK360_TOKEN",
    "DESK360_EMAIL",
    "DESK360_PASSWORD",
    "DESKIE_API_KEY",
    "RUST_LOG",
];

/// The channel mapping that uses every kind of Deskie channel (and skips Facebook).
pub const CHANNELS_BY_KIND: &str = r#"channels = { "default" = "email", "Phone" = "calls", "Web" = "custom:481", "WhatsApp" = "custom:482", "Facebook" = "skip" }"#;

/// Runs the binary with a hard timeout, off the async runtime's worker threads so the in-process
/// sandbox keeps serving. Stdin is empty and no terminal (a rollback without --yes must refuse,
/// not wait).
pub async fn run_bin(list: &[&str], env: &[(&str, &str)], limit: Duration) -> Output {
    let args: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let mut cmd = assert_cmd::Command::new(BIN);
        for v in CLEARED_VARS {
            cmd.env_remove(v);
        }
        cmd.args(&args).timeout(limit).write_stdin("");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    })
    .await
    .unwrap()
}

/// Runs the binary (no extra environment, `limit_secs` at most) and asserts its exit code.
pub async fn run_expecting(code: i32, list: &[&str], limit_secs: u64) -> Output {
    run_expecting_with(code, list, &[], limit_secs).await
}

/// Runs the binary with `env` added and asserts its exit code.
pub async fn run_expecting_with(
    code: i32,
    list: &[&str],
    env: &[(&str, &str)],
    limit_secs: u64,
) -> Output {
    let out = run_bin(list, env, Duration::from_secs(limit_secs)).await;
    assert_eq!(out.status.code(), Some(code), "{list:?}: {}", show(&out));
    out
}

/// Runs the binary and asserts it finished its work: exit 0, or 3 when the seeded account holds
/// tickets without an email, which cannot be routed.
pub async fn run_finishing(list: &[&str], limit_secs: u64) -> Output {
    let out = run_bin(list, &[], Duration::from_secs(limit_secs)).await;
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "{list:?}: {}",
        show(&out)
    );
    out
}

/// `status --json` of the store behind `config`, parsed.
pub async fn status_json(config: &str) -> serde_json::Value {
    let out = run_bin(
        &["status", "--json", "--config", config],
        &[],
        Duration::from_secs(30),
    )
    .await;
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The `(product, ticket)` keys of the failed tickets a `status --json` lists.
pub fn failed_keys(status: &serde_json::Value) -> BTreeSet<(i64, i64)> {
    status["failed_tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["key"]["product_id"].as_i64().unwrap(),
                f["key"]["ticket_id"].as_i64().unwrap(),
            )
        })
        .collect()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        text(&o.stdout),
        text(&o.stderr)
    )
}

/// Starts the binary in the background with a clean environment and piped output.
pub fn spawn_bin(list: &[&str]) -> Child {
    let mut cmd = Command::new(BIN);
    for v in CLEARED_VARS {
        cmd.env_remove(v);
    }
    cmd.args(list)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a child with a bound (killing it past the bound), off the runtime's workers. Its
/// stdout and stderr are drained while it runs: a child that writes more than a pipe buffer
/// (64 KiB, e.g. with `RUST_LOG=debug`) would otherwise block on the write and look hung.
pub async fn wait_child(mut child: Child, limit: Duration) -> Output {
    tokio::task::spawn_blocking(move || {
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        let start = Instant::now();
        let (status, timed_out) = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break (status, false);
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                break (child.wait().unwrap(), true);
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let out = Output {
            status,
            stdout: stdout.join().unwrap(),
            stderr: stderr.join().unwrap(),
        };
        assert!(
            !timed_out,
            "child did not exit in {limit:?}: {}",
            show(&out)
        );
        out
    })
    .await
    .unwrap()
}

/// Reads a child's pipe to its end on a thread of its own.
fn drain(pipe: Option<impl std::io::Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut out);
        }
        out
    })
}

/// Sends `signal` (`"-INT"`, `"-KILL"`) to a process.
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Starts a sandbox, bounded by 30 s.
pub async fn start_sandbox(cfg: SandboxConfig) -> Sandbox {
    tokio::time::timeout(Duration::from_secs(30), Sandbox::start(cfg))
        .await
        .unwrap()
        .unwrap()
}

/// What a test's config file says beyond the sandbox's URLs, limits and credentials.
pub struct ConfigSpec<'a> {
    /// The `api_key` line: `Some(key)` replaces the sandbox's key, `Some("")` leaves the key out
    /// of the file.
    pub api_key: Option<&'a str>,
    /// Replaces the sandbox's Desk360 token.
    pub token: Option<&'a str>,
    /// The `[mapping]` lines after `default_staff_id`.
    pub mapping: &'a str,
    /// `[store] path`.
    pub store: &'a str,
    /// Further sections (`[run]`, `[attachments]`), as written.
    pub rest: &'a str,
}

/// Writes a config for `sandbox` at `path`, rate limits and window equal to the sandbox's, and
/// makes it owner-readable: it holds the sandbox's secrets, as README asks of real configs.
pub fn write_config(path: &Path, sandbox: &Sandbox, spec: &ConfigSpec<'_>) -> PathBuf {
    let c = sandbox.credentials();
    let key_line = match spec.api_key {
        Some("") => String::new(),
        Some(k) => format!("api_key = \"{k}\""),
        None => format!("api_key = \"{}\"", c.deskie_api_key),
    };
    let token = spec.token.map(str::to_string).unwrap_or(c.desk360_token);
    let (desk360_url, deskie_url) = (sandbox.desk360_url(), sandbox.deskie_url());
    let limits = sandbox.config();
    let (desk360_rpm, deskie_rpm) = (limits.desk360_limit, limits.deskie_limit);
    let w = limits.window.as_secs_f64();
    let staff_email = c.deskie_staff_email;
    let ConfigSpec {
        mapping,
        store,
        rest,
        ..
    } = spec;
    let text = format!(
        r#"[source]
base_url = "{desk360_url}"
token = "{token}"
rpm = {desk360_rpm}
window_secs = {w}
timeout_secs = 5
[target]
base_url = "{deskie_url}"
staff_email = "{staff_email}"
{key_line}
plan = "pro"
agents = 1000
rpm = {deskie_rpm}
window_secs = {w}
timeout_secs = 5
source_id_field = "cf_900"
[mapping]
default_staff_id = 100
{mapping}
[store]
path = "{store}"
{rest}"#
    );
    std::fs::write(path, text).unwrap();
    private(path);
    path.to_path_buf()
}

/// `chmod 600`.
pub fn private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

pub fn path_arg(p: &Path) -> String {
    p.display().to_string()
}

/// Requests to Deskie other than reads, in the sandbox's journal.
pub fn deskie_writes(sb: &Sandbox) -> usize {
    sb.journal()
        .iter()
        .filter(|e| e.server == sandbox::Server::Deskie && e.method != "GET")
        .count()
}

/// Asserts that every source ticket has at most one case in Deskie; returns how many have one.
pub fn at_most_one_case_each(sb: &Sandbox) -> BTreeSet<(i64, i64)> {
    let snap = sb.deskie_snapshot();
    let mut seen = BTreeSet::new();
    for t in &sb.dataset().tickets {
        let n = snap.cases_of(t.product_id, t.ticket_id).len();
        assert!(
            n <= 1,
            "ticket {}/{} has {n} cases",
            t.product_id,
            t.ticket_id
        );
        if n == 1 {
            seen.insert((t.product_id, t.ticket_id));
        }
    }
    seen
}

/// Whether a generated ticket becomes a case at all: Facebook is mapped to `skip`.
pub fn not_skipped(t: &sandbox::TicketData) -> bool {
    t.detail["channel"].as_str() != Some("Facebook")
}
