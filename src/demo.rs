//! `demo` and `sandbox`: the emulators of both APIs started in-process. `demo` migrates a seeded
//! account with a temporary config and store (no credentials needed) and prints the report
//! summary and the verify result; `sandbox` serves the emulators until Ctrl-C so a real config
//! can be pointed at them.

use std::time::Duration;

use anyhow::Context as _;
use engine::{Engine, RunOptions, verify};
use sandbox::{Sandbox, SandboxConfig};

use crate::exit::{CliError, FAILED, OK};
use crate::progress::Ui;
use crate::signals::Interrupts;

/// Rate-limit window of the demo: short, so a realistic-latency migration fits in about a
/// minute; the limits are scaled to it.
const DEMO_WINDOW: Duration = Duration::from_secs(10);
/// Desk360 requests per demo window.
const DEMO_DESK360_LIMIT: u32 = 70;
/// Deskie units per demo window.
const DEMO_DESKIE_LIMIT: u32 = 700;

/// The mapping of the demo (and of the sandbox snippet): every channel kind of the generator.
const MAPPING: &str = r#"[mapping]
default_staff_id = 100
agents = { "72" = 101, "74" = 102, "75" = 103 }
channels = { "default" = "email", "Phone" = "calls", "Web" = "custom:481", "WhatsApp" = "custom:482", "Facebook" = "skip" }
"#;

/// A config text pointing at a running sandbox (credentials included: they are the emulator's).
fn config_text(
    sandbox: &Sandbox,
    window: Duration,
    desk360_rpm: u32,
    deskie_rpm: u32,
    store_path: &str,
    run: &str,
) -> String {
    let creds = sandbox.credentials();
    let w = window.as_secs_f64();
    let target_rate = if window == Duration::from_secs(60) {
        // The real rule: 150 agents on Standard = 750 RPM, what the emulator enforces.
        "plan = \"standard\"\nagents = 150".to_string()
    } else {
        format!("plan = \"pro\"\nagents = 150\nrpm = {deskie_rpm}\nwindow_secs = {w}")
    };
    format!(
        r#"# Points at the deskie-import sandbox (emulated Desk360 and Deskie on this machine).
[source]
base_url = "{d}"
token = "{token}"
rpm = {desk360_rpm}
window_secs = {w}

[target]
base_url = "{k}"
staff_email = "{email}"
api_key = "{key}"
{target_rate}
source_id_field = "cf_900"

{MAPPING}
[store]
path = "{store_path}"
{run}"#,
        d = sandbox.desk360_url(),
        k = sandbox.deskie_url(),
        token = creds.desk360_token,
        email = creds.deskie_staff_email,
        key = creds.deskie_api_key,
    )
}

fn latency_config(latency_ms: u64) -> (Duration, Duration) {
    (
        Duration::from_millis(latency_ms),
        Duration::from_millis(latency_ms / 2),
    )
}

/// `demo`: a full migration of a seeded account against the in-process emulators.
pub async fn demo(tickets: usize, latency_ms: u64, seed: u64, ui: &Ui) -> Result<u8, CliError> {
    let (latency, jitter) = latency_config(latency_ms);
    let sandbox = Sandbox::start(SandboxConfig {
        seed,
        products: 3,
        tickets,
        window: DEMO_WINDOW,
        desk360_limit: DEMO_DESK360_LIMIT,
        deskie_limit: DEMO_DESKIE_LIMIT,
        latency,
        jitter,
        ..SandboxConfig::default()
    })
    .await
    .context("cannot start the emulators")?;
    let dir = tempfile::Builder::new()
        .prefix("deskie-import-demo")
        .tempdir()
        .context("cannot create a temporary folder for the demo")?;
    let config_path = dir.path().join("deskie-import.toml");
    let store_path = dir.path().join("demo.sqlite");
    let text = config_text(
        &sandbox,
        DEMO_WINDOW,
        DEMO_DESK360_LIMIT,
        DEMO_DESKIE_LIMIT,
        &store_path.display().to_string(),
        "[run]\nconcurrency = 16\nextract_concurrency = 6\n",
    );
    std::fs::write(&config_path, text).context("cannot write the demo configuration")?;
    println!(
        "demo: emulated Desk360 at {} and Deskie at {}; {tickets} tickets, latency {latency_ms} ms ± {} ms, \
         limits {DEMO_DESK360_LIMIT} requests and {DEMO_DESKIE_LIMIT} units per {} s window",
        sandbox.desk360_url(),
        sandbox.deskie_url(),
        jitter.as_millis(),
        DEMO_WINDOW.as_secs()
    );
    // The emulators' own credentials: secrets from the environment (meant for real accounts)
    // must not override them.
    let settings = engine::config::load(&config_path, engine::config::SecretOverrides::default())
        .map_err(CliError::usage)?;
    let engine = Engine::open(settings).await?;
    let resume = "deskie-import demo".to_string();
    let code = crate::runner::execute(&engine, RunOptions::default(), ui, None, &resume).await?;
    let code = if code == OK || code == FAILED {
        if code == FAILED {
            println!(
                "(the demo account holds tickets that cannot be routed on purpose, e.g. without an \
                 email for the Email channel: a real run exits 3 and names the command to retry them)"
            );
        }
        // The demo succeeded when everything that could be migrated is in Deskie exactly once.
        let v = verify::verify(&engine).await?;
        crate::runner::print_verify(&v)
    } else {
        code
    };
    let snapshot = sandbox.deskie_snapshot();
    println!(
        "Deskie now holds {} cases for {} users; customers emailed during the import: {}",
        snapshot.cases.len(),
        snapshot.users.len(),
        snapshot.customer_emailed
    );
    engine.close().await;
    sandbox.shutdown().await;
    Ok(code)
}

/// Rate limits of the `sandbox` command's emulators.
pub struct Limits {
    /// Window of both emulators.
    pub window: Duration,
    /// Desk360 requests per window.
    pub desk360: u32,
    /// Deskie units per window.
    pub deskie: u32,
}

/// `sandbox`: serves both emulators until Ctrl-C.
pub async fn serve(
    tickets: usize,
    seed: u64,
    latency_ms: u64,
    products: usize,
    limits: Limits,
) -> Result<u8, CliError> {
    let (latency, jitter) = latency_config(latency_ms);
    let sandbox = Sandbox::start(SandboxConfig {
        seed,
        products,
        tickets,
        latency,
        jitter,
        window: limits.window,
        desk360_limit: limits.desk360,
        deskie_limit: limits.deskie,
        ..SandboxConfig::default()
    })
    .await
    .context("cannot start the emulators")?;
    let mut interrupts = Interrupts::install().context("cannot listen for Ctrl-C")?;
    let creds = sandbox.credentials();
    let cfg = sandbox.config();
    println!("Desk360 emulator: {}", sandbox.desk360_url());
    println!("  token: {}", creds.desk360_token);
    println!(
        "  or email/password: {} / {}",
        creds.desk360_email, creds.desk360_password
    );
    println!(
        "  limit: {} requests per {} s per client",
        cfg.desk360_limit,
        cfg.window.as_secs_f64()
    );
    println!("Deskie emulator: {}", sandbox.deskie_url());
    println!("  staff email: {}", creds.deskie_staff_email);
    println!("  api key: {}", creds.deskie_api_key);
    println!(
        "  limit: {} units per {} s for the account (GET 1, writes 2)",
        cfg.deskie_limit,
        cfg.window.as_secs_f64()
    );
    println!(
        "{tickets} tickets in {products} products (seed {seed}), latency {latency_ms} ms ± {} ms",
        jitter.as_millis()
    );
    println!();
    println!("Config snippet (save as deskie-import.toml, then `deskie-import run`):");
    println!("----8<----");
    print!(
        "{}",
        config_text(
            &sandbox,
            cfg.window,
            cfg.desk360_limit,
            cfg.deskie_limit,
            "deskie-import-sandbox.sqlite",
            "",
        )
    );
    println!("----8<----");
    println!("serving until Ctrl-C");
    interrupts.recv().await;
    eprintln!("stopping the emulators");
    sandbox.shutdown().await;
    Ok(OK)
}
