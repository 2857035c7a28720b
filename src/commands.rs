//! The commands: each turns raw flags into validated settings (exit 2 before any request when
//! they are wrong), drives the engine, prints results on stdout and returns the exit code.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use engine::config::{self, SecretOverrides, Settings};
use engine::{Engine, RetryFilter, RunOptions, RunSummary, TicketState, report, verify};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::cli::{Command, GlobalArgs, ReportFormat};
use crate::exit::{CliError, FAILED, FATAL, OK};
use crate::progress::{self, Baseline, Ui};
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
            let trial = ticket_keys(&tickets)?;
            let engine = open_writer(&global).await?;
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
            for t in &tickets {
                resume.push_str(&format!(" --ticket {t}"));
            }
            let code = execute(&engine, options, &ui, Some(&global.config), &resume).await?;
            if dry_run {
                crate::preflight_cmd::print_checklist();
            }
            Ok(code)
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
            let filter = retry_filter(&batches, &tickets)?;
            let engine = open_writer(&global).await?;
            let mut resume = format!(
                "deskie-import retry-failed --config {}",
                global.config.display()
            );
            for b in &batches {
                resume.push_str(&format!(" --batch {b}"));
            }
            for t in &tickets {
                resume.push_str(&format!(" --ticket {t}"));
            }
            let options = RunOptions {
                dry_run: false,
                retry: Some(filter),
                skip_extract: true,
                retarget: false,
                ..RunOptions::default()
            };
            execute(&engine, options, &ui, Some(&global.config), &resume).await
        }
        Command::Status { json } => status(&global, json).await,
        Command::Report { format, out } => {
            let engine = open(&global).await?;
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
        Command::Verify {
            sample,
            seed,
            product,
            since,
        } => {
            let since = since
                .map(|d| {
                    verify::parse_since(&d)
                        .map_err(|e| CliError::usage(anyhow::anyhow!("--since: {e}")))
                })
                .transpose()?;
            let options = verify::VerifyOptions {
                sample,
                seed,
                product,
                since,
            };
            let engine = open(&global).await?;
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
            store::parse_ticket_key(t).ok_or_else(|| {
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
    let mut filter = RetryFilter {
        batches: batches.iter().map(|b| store::BatchId(*b)).collect(),
        all: batches.is_empty() && tickets.is_empty(),
        ..RetryFilter::default()
    };
    for t in tickets {
        if let Some(key) = store::parse_ticket_key(t) {
            filter.tickets.push(key);
        } else if let Ok(id) = t.trim().parse::<i64>() {
            filter.ticket_ids.push(id);
        } else {
            return Err(CliError::usage(anyhow::anyhow!(
                "--ticket `{t}`: use product/ticket (e.g. 3/1045) or a plain Desk360 ticket id"
            )));
        }
    }
    Ok(filter)
}

/// What the loader has to do at the start, for the bars' totals.
async fn baseline(engine: &Engine, options: &RunOptions) -> Baseline {
    let settings = engine.settings();
    let mut b = Baseline {
        to_load: 0,
        skip_extract: options.skip_extract,
        dry_run: options.dry_run,
        deskie_window: settings.target.window,
        desk360_window: settings.source.window,
    };
    if options.dry_run {
        return b;
    }
    if let Ok(counts) = engine.store().counts().await {
        let n = |s: TicketState| counts.tickets.get(&s).copied().unwrap_or(0);
        b.to_load = n(TicketState::Extracted) + n(TicketState::Loading);
    }
    if let Ok(failed) = engine.store().failed_tickets().await {
        let requeued = failed.iter().filter(|f| {
            let transient = f
                .failure
                .as_ref()
                .is_some_and(|x| x.record.class == store::FailureClass::Transient);
            let selected = options.retry.as_ref().is_some_and(|r| {
                r.all
                    || r.batches.contains(&f.batch_id)
                    || r.tickets.contains(&f.key)
                    || r.ticket_ids.contains(&f.key.ticket_id)
            });
            transient || selected
        });
        b.to_load += requeued.count() as u64;
    }
    b
}

/// Runs the engine with progress and Ctrl-C handling, prints the summary, returns the exit code.
/// `config` is the path shown in the retry hint after failures (`None`: no hint, e.g. the demo's
/// temporary config).
pub async fn execute(
    engine: &Engine,
    options: RunOptions,
    ui: &Ui,
    config: Option<&Path>,
    resume: &str,
) -> Result<u8, CliError> {
    let baseline = baseline(engine, &options).await;
    let trial = options.is_trial();
    let cancel = engine.cancel_token();
    let interrupts = Interrupts::install().context("cannot listen for Ctrl-C")?;
    let signals = tokio::spawn(watch_signals(interrupts, cancel.clone(), ui.clone()));

    let mut display = ui.start(baseline);
    let progress = engine.progress();
    let run = engine.run(options);
    tokio::pin!(run);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // How far the history is complete: a few index seeks in the store, every 10 s.
    let mut history_tick = tokio::time::interval(Duration::from_secs(10));
    history_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let result = loop {
        tokio::select! {
            r = &mut run => break r,
            _ = history_tick.tick() => {
                if let Ok(mark) = engine.store().history_mark().await {
                    display.set_history(&mark);
                }
            }
            _ = tick.tick() => {
                let (d, k) = engine.limiter_stats();
                display.update(
                    progress.snapshot(),
                    progress::stats(&d.into()),
                    progress::stats(&k.into()),
                );
            }
        }
    };
    display.finish();
    signals.abort();

    let summary = result?;
    print_summary(engine, &summary).await;
    if trial && !summary.interrupted && summary.stopped_reason.is_none() {
        crate::preflight_cmd::print_trial(engine, &summary);
    }
    if summary.interrupted {
        ui.note(&format!(
            "interrupted: stopped cleanly, nothing is lost or duplicated ({} tickets loaded in this run). \
             Continue with: {resume}",
            summary.progress.loaded
        ));
        return Ok(FATAL);
    }
    if let Some(reason) = &summary.stopped_reason {
        return Err(CliError::fatal(anyhow::anyhow!(
            "the run stopped early: {reason}; once that is fixed, continue with: {resume}"
        )));
    }
    // Exit 0 means nothing is left to do: no failed ticket, no unread list page, and no ticket
    // still waiting (e.g. an extraction failure `retry-failed` re-queued but did not fetch).
    let left = if summary.kind == "dry-run" {
        Leftover::default()
    } else {
        Leftover::of(engine, &summary).await
    };
    if summary.failed > 0 || left.any() {
        if summary.failed > 0 {
            print_failures(engine, summary.failed, config).await;
        }
        left.print(config);
        return Ok(FAILED);
    }
    Ok(OK)
}

/// What a finished run left undone besides failed tickets.
#[derive(Debug, Default)]
struct Leftover {
    /// List pages that could not be read (their tickets are unknown yet).
    pages: u64,
    /// Tickets listed but whose details are not stored (`pending`).
    unfetched: u64,
    /// Tickets extracted or held but not loaded.
    unloaded: u64,
}

impl Leftover {
    async fn of(engine: &Engine, summary: &RunSummary) -> Leftover {
        let n = |s: TicketState| summary.counts.tickets.get(&s).copied().unwrap_or(0);
        let pages = match engine.store().failures().await {
            Ok(list) => list.iter().filter(|f| f.key.is_none()).count() as u64,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the list page failures");
                0
            }
        };
        Leftover {
            pages,
            unfetched: n(TicketState::Pending),
            unloaded: n(TicketState::Extracted) + n(TicketState::Loading),
        }
    }

    fn any(&self) -> bool {
        self.pages + self.unfetched + self.unloaded > 0
    }

    fn print(&self, config: Option<&Path>) {
        if !self.any() {
            return;
        }
        let mut parts = Vec::new();
        if self.pages > 0 {
            parts.push(format!("{} list pages could not be read", self.pages));
        }
        if self.unfetched > 0 {
            parts.push(format!(
                "{} tickets still need their details from Desk360",
                self.unfetched
            ));
        }
        if self.unloaded > 0 {
            parts.push(format!("{} tickets are not loaded yet", self.unloaded));
        }
        let hint = match config {
            Some(c) => format!(
                "; finish them with: deskie-import run --config {}",
                c.display()
            ),
            None => String::new(),
        };
        println!("Not finished: {}{hint}", parts.join(", "));
    }
}

/// First Ctrl-C: stop taking work and let in-flight writes finish. Second: exit at once (still
/// safe: every write's intent is journaled before it is sent).
async fn watch_signals(mut interrupts: Interrupts, cancel: CancellationToken, ui: Ui) {
    if !interrupts.recv().await {
        return;
    }
    cancel.cancel();
    ui.note("stopping: finishing in-flight writes… (Ctrl-C again to quit at once, still safe)");
    if interrupts.recv().await {
        ui.note("quitting now: open writes are journaled and will be reconciled on the next run");
        std::process::exit(i32::from(FATAL));
    }
}

/// The lines printed on stdout after a run.
async fn print_summary(engine: &Engine, s: &RunSummary) {
    let p = &s.progress;
    println!(
        "{}: {} in {}",
        s.kind,
        if s.interrupted {
            "interrupted"
        } else if s.stopped_reason.is_some() {
            "stopped"
        } else {
            "finished"
        },
        progress::human(Duration::from_secs_f64(s.elapsed_secs))
    );
    println!(
        "  this run: extracted {} (failed {}), loaded {}, failed {}, skipped {}, writes {}, reconcile reads {}",
        p.extracted,
        p.extract_failed,
        p.loaded,
        p.load_failed,
        p.skipped,
        p.writes,
        p.reconcile_reads
    );
    println!(
        "  Desk360: {} requests, 429s {} · Deskie: {} requests, {} units, 429s {}, retries {}",
        s.desk360.requests,
        s.desk360.throttled,
        s.deskie.requests,
        s.deskie.units,
        s.deskie.throttled,
        s.deskie.transient_retries
    );
    match report::build(engine).await {
        Ok(report) => {
            for line in report.summary_lines() {
                println!("{line}");
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not build the report summary"),
    }
}

/// The last lines after a run with failures: how many, the top causes, the command to retry.
async fn print_failures(engine: &Engine, failed: u64, config: Option<&Path>) {
    let mut causes: BTreeMap<String, u64> = BTreeMap::new();
    if let Ok(list) = engine.store().failed_tickets().await {
        for f in &list {
            let cause = match &f.failure {
                Some(x) => format!(
                    "{} {}{}: {}",
                    x.record.stage,
                    x.record.step.kind(),
                    x.record
                        .code
                        .as_ref()
                        .map(|c| format!(" ({c})"))
                        .unwrap_or_default(),
                    crate::exit::one_line(&x.record.message)
                ),
                None => "unknown cause".to_string(),
            };
            *causes.entry(cause).or_default() += 1;
        }
    }
    let mut top: Vec<(String, u64)> = causes.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    println!("{failed} tickets failed. Top causes:");
    for (cause, n) in top.iter().take(5) {
        println!("  {n} × {cause}");
    }
    if let Some(config) = config {
        println!(
            "See them with: deskie-import status --config {c}; after fixing the cause, retry only them with: \
             deskie-import retry-failed --config {c}",
            c = config.display()
        );
    }
}

/// Prints the verify result; exit 0 when Deskie matches, 3 when problems are listed.
pub fn print_verify(v: &verify::VerifyReport) -> u8 {
    if v.ok() {
        println!(
            "verify: {} cases checked ({} with their messages) with {} reads, Deskie matches the store",
            v.cases_checked, v.checked, v.reads
        );
        OK
    } else {
        println!(
            "verify: {} cases checked ({} with their messages) with {} reads, {} problems (listed in the report too):",
            v.cases_checked,
            v.checked,
            v.reads,
            v.by_kind.values().sum::<u64>()
        );
        for p in &v.problems {
            println!("  {p}");
        }
        FAILED
    }
}

/// `status`: counts from the store, failed batches and tickets with reasons; no network.
async fn status(global: &GlobalArgs, json: bool) -> Result<u8, CliError> {
    let engine = open(global).await?;
    let store = engine.store();
    let counts = store.counts().await.map_err(CliError::fatal)?;
    let failed_batches = store
        .batches(Some(store::BatchState::Failed))
        .await
        .map_err(CliError::fatal)?;
    let failed = store.failed_tickets().await.map_err(CliError::fatal)?;
    let runs = store.last_runs(5).await.map_err(CliError::fatal)?;
    if json {
        let value = serde_json::json!({
            "store": store.path().display().to_string(),
            "counts": counts,
            "failed_batches": failed_batches,
            "failed_tickets": failed,
            "last_runs": runs,
        });
        let text = serde_json::to_string_pretty(&value).context("cannot encode the status")?;
        write_stdout(&format!("{text}\n"))?;
        return Ok(OK);
    }
    println!("store: {}", store.path().display());
    let states = |m: &BTreeMap<TicketState, u64>| {
        TicketState::ALL
            .iter()
            .map(|s| format!("{s} {}", m.get(s).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join(" · ")
    };
    println!("tickets: {}", states(&counts.tickets));
    println!(
        "batches: {}",
        store::BatchState::ALL
            .iter()
            .map(|s| format!("{s} {}", counts.batches.get(s).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join(" · ")
    );
    println!(
        "content: {} messages, {} notes, {} attachments ({} bytes)",
        counts.messages, counts.notes, counts.attachments, counts.attachment_bytes
    );
    for p in &counts.products {
        println!("  product {}: {}", p.product_id, states(&p.tickets));
    }
    if !failed_batches.is_empty() {
        println!("failed batches (retry with --batch ID):");
        for b in &failed_batches {
            println!(
                "  batch {} (product {}, page {}, {} tickets)",
                b.id, b.product_id, b.page, b.ticket_count
            );
        }
    }
    if !failed.is_empty() {
        println!("failed tickets (retry with --ticket product/ticket):");
        for f in &failed {
            let why = f
                .failure
                .as_ref()
                .map(|x| {
                    format!(
                        "{} {} {}{}: {}",
                        x.record.class,
                        x.record.stage,
                        x.record.step,
                        x.record
                            .code
                            .as_ref()
                            .map(|c| format!(" ({c})"))
                            .unwrap_or_default(),
                        crate::exit::one_line(&x.record.message)
                    )
                })
                .unwrap_or_else(|| "unknown cause".into());
            println!("  {} (batch {}): {why}", f.key, f.batch_id);
        }
    }
    if let Some(last) = runs.first() {
        println!(
            "last run: {} started {} — {}",
            last.kind,
            last.started_at,
            last.outcome
                .as_deref()
                .unwrap_or("did not finish (resume with `run`)")
        );
    }
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
