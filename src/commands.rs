//! The commands: each turns raw flags into validated settings (exit 2 before any request when
//! they are wrong), drives the engine, prints results on stdout and returns the exit code.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use engine::config::{self, SecretOverrides, Settings};
use engine::{Engine, RetryFilter, RunOptions, report, verify};
use secrecy::SecretString;

use crate::cli::{Command, GlobalArgs, ReportFormat};
use crate::exit::{CliError, FATAL, OK};
use crate::progress::Ui;
use crate::runner::{execute, print_verify, watch_signals};
use crate::signals::Interrupts;

/// Runs one command to its exit code.
pub async fn dispatch(command: Command, global: GlobalArgs, ui: Ui) -> Result<u8, CliError> {
    match command {
        Command::Run {
            dry_run,
            retry_failed,
            retarget,
            limit,
            tickets,
        } => {
            let flags = RunFlags {
                dry_run,
                retry_failed,
                retarget,
                limit,
            };
            run(&global, flags, &tickets, &ui).await
        }
        Command::Preflight { no_probe } => {
            let engine = open_writer(&global).await?;
            crate::preflight_cmd::preflight(&engine, !no_probe).await
        }
        Command::Rollback { all, tickets, yes } => {
            let keys = ticket_keys(&tickets)?;
            debug_assert!(all || !keys.is_empty());
            let engine = open_writer(&global).await?;
            crate::preflight_cmd::rollback(&engine, &keys, yes).await
        }
        Command::Completions { shell } => crate::preflight_cmd::completions(shell),
        Command::Man => crate::preflight_cmd::man(),
        Command::RetryFailed { batches, tickets } => {
            retry_failed(&global, &batches, &tickets, &ui).await
        }
        Command::Status { json } => status(&global, json).await,
        Command::Report { format, out } => report_cmd(&global, format, out).await,
        Command::Verify {
            sample,
            seed,
            product,
            since,
        } => verify_cmd(&global, sample, seed, product, since, &ui).await,
        Command::Demo {
            tickets,
            latency_ms,
            seed,
        } => crate::demo::demo(tickets, latency_ms, seed, &ui).await,
        Command::Sandbox {
            tickets,
            seed,
            latency_ms,
            products,
            window_secs,
            desk360_limit,
            deskie_limit,
        } => {
            if !(window_secs.is_finite() && window_secs > 0.0 && window_secs <= 3600.0) {
                return Err(CliError::usage(anyhow::anyhow!(
                    "--window-secs must be between 0 and 3600, got {window_secs}"
                )));
            }
            let limits = crate::demo::Limits {
                window: Duration::from_secs_f64(window_secs),
                desk360: desk360_limit.max(1),
                deskie: deskie_limit.max(1),
            };
            crate::demo::serve(tickets, seed, latency_ms, products, limits).await
        }
    }
}

/// The `run` command's flags besides `--ticket`.
struct RunFlags {
    dry_run: bool,
    retry_failed: bool,
    retarget: bool,
    limit: Option<u64>,
}

/// `run` (and `run --dry-run`): the preflight warning first on a dry run, then the engine.
async fn run(
    global: &GlobalArgs,
    flags: RunFlags,
    tickets: &[String],
    ui: &Ui,
) -> Result<u8, CliError> {
    let RunFlags {
        dry_run,
        retry_failed,
        retarget,
        limit,
    } = flags;
    let trial = ticket_keys(tickets)?;
    let engine = open_writer(global).await?;
    if dry_run {
        // DESIGN.md: a dry run runs the preflight first (its probe is deleted again). A
        // blocking finding does not stop a dry run (it writes nothing); `run` refuses.
        if let Some(line) = crate::preflight_cmd::preflight_report(&engine, true).await? {
            ui.note(&format!("warning: {line}; `run` will refuse until fixed"));
        }
    }
    let options = RunOptions {
        dry_run,
        retry: retry_failed.then(|| RetryFilter {
            all: true,
            ..RetryFilter::default()
        }),
        skip_extract: false,
        retarget,
        limit,
        tickets: trial,
    };
    let mut resume = format!("deskie-import run --config {}", global.config.display());
    if let Some(n) = limit {
        resume.push_str(&format!(" --limit {n}"));
    }
    for t in tickets {
        resume.push_str(&format!(" --ticket {t}"));
    }
    let code = execute(&engine, options, ui, Some(&global.config), &resume).await?;
    if dry_run {
        crate::preflight_cmd::print_checklist();
    }
    Ok(code)
}

/// `retry-failed`: the selected failed tickets (all by default) go back to the loader.
async fn retry_failed(
    global: &GlobalArgs,
    batches: &[i64],
    tickets: &[String],
    ui: &Ui,
) -> Result<u8, CliError> {
    let filter = retry_filter(batches, tickets)?;
    let engine = open_writer(global).await?;
    let mut resume = format!(
        "deskie-import retry-failed --config {}",
        global.config.display()
    );
    for b in batches {
        resume.push_str(&format!(" --batch {b}"));
    }
    for t in tickets {
        resume.push_str(&format!(" --ticket {t}"));
    }
    let options = RunOptions {
        dry_run: false,
        retry: Some(filter),
        skip_extract: true,
        retarget: false,
        ..RunOptions::default()
    };
    execute(&engine, options, ui, Some(&global.config), &resume).await
}

/// `report`: Markdown, JSON or HTML, to a file or stdout.
async fn report_cmd(
    global: &GlobalArgs,
    format: ReportFormat,
    out: Option<std::path::PathBuf>,
) -> Result<u8, CliError> {
    let engine = open(global).await?;
    let report = report::build(&engine).await?;
    let text = match format {
        ReportFormat::Md => report.to_markdown(),
        ReportFormat::Json => report.to_json(),
        ReportFormat::Html => report.to_html(),
    };
    match out {
        Some(path) => {
            std::fs::write(&path, text).with_context(|| {
                format!(
                    "cannot write the report to {}; choose a writable path",
                    path.display()
                )
            })?;
            println!("report written to {}", path.display());
        }
        None => write_stdout(&text)?,
    }
    Ok(OK)
}

/// `verify`: states its cost, then checks what was migrated (resumable; Ctrl-C keeps what it read).
async fn verify_cmd(
    global: &GlobalArgs,
    sample: Option<usize>,
    seed: u64,
    product: Option<i64>,
    since: Option<String>,
    ui: &Ui,
) -> Result<u8, CliError> {
    let since = since
        .map(|d| {
            verify::parse_since(&d).map_err(|e| CliError::usage(anyhow::anyhow!("--since: {e}")))
        })
        .transpose()?;
    let options = verify::VerifyOptions {
        sample,
        seed,
        product,
        since,
    };
    let engine = open(global).await?;
    let plan = verify::plan(&engine, &options).await?;
    ui.note(&plan.to_text());
    let cancel = engine.cancel_token();
    let interrupts = Interrupts::install().context("cannot listen for Ctrl-C")?;
    let signals = tokio::spawn(watch_signals(interrupts, cancel, ui.clone()));
    let result = verify::run(&engine, &options).await;
    signals.abort();
    let result = result?;
    if !result.complete {
        ui.note(&format!(
            "verify interrupted: what it read is recorded; continue with the same command ({} cases' messages checked so far)",
            result.checked
        ));
        return Ok(FATAL);
    }
    Ok(print_verify(&result))
}

/// Secrets from the environment (or the hidden flags), empty values ignored.
fn overrides(g: &GlobalArgs) -> SecretOverrides {
    let secret = |v: &Option<String>| {
        v.as_ref()
            .filter(|s| !s.trim().is_empty())
            .map(|s| SecretString::from(s.clone()))
    };
    SecretOverrides {
        desk360_token: secret(&g.desk360_token),
        desk360_email: g.desk360_email.clone().filter(|s| !s.trim().is_empty()),
        desk360_password: secret(&g.desk360_password),
        deskie_api_key: secret(&g.deskie_api_key),
    }
}

/// Reads and validates the configuration (exit 2 on any problem; no request is sent), and
/// warns when the file holds a secret other users can read.
fn settings(g: &GlobalArgs, path: &Path) -> Result<Settings, CliError> {
    let settings = config::load(path, overrides(g)).map_err(CliError::usage)?;
    if let Some(warning) = readable_secrets_warning(path) {
        eprintln!("warning: {warning}");
    }
    Ok(settings)
}

/// The secret keys a configuration file may hold (each also has an environment variable).
const SECRET_KEYS: [(&str, &str); 3] = [
    ("source", "token"),
    ("source", "password"),
    ("target", "api_key"),
];

/// One line when `path` holds a secret (token, password, api_key) and its Unix mode lets the
/// group or others read it (issue #11.12): the file, the keys and the fix. `None` otherwise
/// (and always on systems without Unix modes).
fn readable_secrets_warning(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        if mode & 0o044 == 0 {
            return None;
        }
        let table: toml::Table = std::fs::read_to_string(path).ok()?.parse().ok()?;
        let keys: Vec<String> = SECRET_KEYS
            .iter()
            .filter(|(section, key)| {
                table
                    .get(*section)
                    .and_then(|s| s.get(*key))
                    .and_then(|v| v.as_str())
                    .is_some_and(|v| !v.trim().is_empty())
            })
            .map(|(section, key)| format!("{section}.{key}"))
            .collect();
        if keys.is_empty() {
            return None;
        }
        Some(format!(
            "{f} holds secrets ({k}) and is readable by other users (mode {mode:o}): run \
             `chmod 600 {f}`, or move them to the environment (DESK360_TOKEN, DESK360_PASSWORD, \
             DESKIE_API_KEY) and out of the file",
            f = path.display(),
            k = keys.join(", "),
        ))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

async fn open(g: &GlobalArgs) -> Result<Engine, CliError> {
    let settings = settings(g, &g.config)?;
    Ok(Engine::open(settings).await?)
}

/// `--ticket P/T` values of a trial or a rollback (exit 2 on a malformed one).
fn ticket_keys(tickets: &[String]) -> Result<Vec<model::TicketKey>, CliError> {
    tickets
        .iter()
        .map(|t| {
            engine::status::parse_ticket_key(t).ok_or_else(|| {
                CliError::usage(anyhow::anyhow!(
                    "--ticket `{t}`: use product/ticket, e.g. 3/1045"
                ))
            })
        })
        .collect()
}

/// Opens the store for a writing command: takes its write lock first, so a second writer
/// exits 1 at once naming the holder (`status` and `report` use [`open`] and never wait).
async fn open_writer(g: &GlobalArgs) -> Result<Engine, CliError> {
    let settings = settings(g, &g.config)?;
    Ok(Engine::open_writer(settings).await?)
}

/// `--batch` / `--ticket` into the store's filter; none given = every failed ticket.
fn retry_filter(batches: &[i64], tickets: &[String]) -> Result<RetryFilter, CliError> {
    engine::status::retry_filter(batches, tickets).map_err(|e| CliError::usage(anyhow::anyhow!(e)))
}

/// `status`: counts from the store, failed batches and tickets with reasons; no network.
async fn status(global: &GlobalArgs, json: bool) -> Result<u8, CliError> {
    let engine = open(global).await?;
    let status = engine.status(5).await.map_err(CliError::fatal)?;
    if json {
        let text = serde_json::to_string_pretty(&status).context("cannot encode the status")?;
        write_stdout(&format!("{text}\n"))?;
        return Ok(OK);
    }
    write_stdout(&status.to_text())?;
    Ok(OK)
}

/// Writes a result to stdout. A reader that stops early (`report | head`) closes the pipe: that
/// is not an error worth a panic or a non-zero exit, so a broken pipe ends the output quietly.
fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("cannot write to stdout"))
        }
        _ => Ok(()),
    }
}
