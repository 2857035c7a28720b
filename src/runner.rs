//! One engine run watched from the terminal: progress bars (or plain lines), Ctrl-C handling, the
//! summary printed at the end and the exit code it means. Shared by `run`, `retry-failed`, the
//! trial and the demo, so every way of running the engine reports the same way.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use engine::{Engine, RunOptions, RunSummary, TicketState, report, verify};
use tokio_util::sync::CancellationToken;

use crate::exit::{CliError, FAILED, FATAL, OK};
use crate::progress::{self, Baseline, Ui};
use crate::signals::Interrupts;

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
    if let Ok(counts) = engine.counts().await {
        let n = |s: TicketState| counts.tickets.get(&s).copied().unwrap_or(0);
        b.to_load = n(TicketState::Extracted) + n(TicketState::Loading);
    }
    if let Ok(failed) = engine.failed_tickets().await {
        let requeued = failed.iter().filter(|f| {
            let transient = f
                .failure
                .as_ref()
                .is_some_and(|x| x.record.class == engine::status::FailureClass::Transient);
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
                if let Ok(mark) = engine.history_mark().await {
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
    let left = if summary.kind == engine::status::RunKind::DryRun {
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
        let pages = match engine.unread_pages().await {
            Ok(n) => n,
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
pub async fn watch_signals(mut interrupts: Interrupts, cancel: CancellationToken, ui: Ui) {
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
    let top = match engine.failed_tickets().await {
        Ok(list) => engine::status::top_causes(&list),
        Err(_) => Vec::new(),
    };
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
