//! The commands around the real run: `preflight` (also run first by `run --dry-run`), the trial's
//! closing lines (the cases a `run --limit` / `--ticket` created), `rollback`, and shipping
//! helpers (`completions`, `man`) generated from the clap definitions.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::time::Duration;

use anyhow::Context as _;
use clap::CommandFactory as _;
use engine::preflight::{self, Findings};
use engine::{Engine, RunSummary, rollback};
use model::TicketKey;

use crate::cli::Cli;
use crate::exit::{CliError, FAILED, FATAL, OK};
use crate::signals::Interrupts;

/// What to check by hand before the real run: the pages and what migrations go wrong on. Printed
/// by `preflight` and after a dry run, and kept in the README.
pub const CHECKLIST: &[&str] = &[
    "Deskie: turn off auto-replies and the rules that email customers on new cases or replies \
     while the import runs (Settings › Rules); imported cases are new cases to them",
    "Deskie: keep the importing agent (target.staff_email) active, with full access, until the \
     switch-over: a limited agent cannot see every case (resume and verify break), and only full \
     access may delete (rollback)",
    "Deskie plan caps: 6 000 / 12 000 / 24 000 cases kept per agent (Basic / Standard / Pro; the \
     oldest are deleted above that) and a monthly cap of new cases per agent: see the report's \
     plan caps section",
    "Desk360 timestamps carry no zone: set source.timezone to the zone your Desk360 account shows \
     times in, or every message shifts by the offset",
    "Users: Deskie creates a customer with each first case (no separate user import); a rollback \
     deletes cases, not the customers they created",
];

/// Prints the cost, runs the preflight, prints the table and the checklist. Returns the exit
/// code: 0, or 2 when a finding forbids the run.
pub async fn preflight(engine: &Engine, probe: bool) -> Result<u8, CliError> {
    match preflight_report(engine, probe).await? {
        Some(line) => Err(CliError::usage(anyhow::anyhow!(
            "{line}; `run` will refuse until a later preflight finds otherwise"
        ))),
        None => Ok(OK),
    }
}

/// Prints the cost, runs the preflight, prints the table and the checklist; returns the
/// blocking finding, if any, as one line.
pub async fn preflight_report(engine: &Engine, probe: bool) -> Result<Option<String>, CliError> {
    let cost = preflight::cost(probe);
    println!(
        "preflight: at most {} Deskie units ({} writes, to one probe case that is deleted again) and {} Desk360 requests",
        cost.deskie_units, cost.deskie_writes, cost.desk360_requests
    );
    let report = preflight::run(engine, probe).await?;
    print_findings(&report.findings);
    println!(
        "spent: {} Deskie units, {} Desk360 requests; findings recorded in {}",
        report.deskie_units,
        report.desk360_requests,
        engine.store_path().display()
    );
    print_checklist();
    Ok(report.findings.blocking())
}

/// The table: check · what we found · what the run will do.
pub fn print_findings(findings: &Findings) {
    let rows = findings.rows();
    let w0 = rows
        .iter()
        .map(|r| r.check.chars().count())
        .max()
        .unwrap_or(0);
    let w1 = rows
        .iter()
        .map(|r| r.found.chars().count())
        .max()
        .unwrap_or(0);
    println!(
        "{:w0$} · {:w1$} · what the run will do",
        "check", "what we found"
    );
    for r in rows {
        println!(
            "{:w0$} · {:w1$} · {}{}",
            r.check,
            r.found,
            if r.blocking { "BLOCKING: " } else { "" },
            r.action
        );
    }
}

/// The checklist, numbered.
pub fn print_checklist() {
    println!("before the real run, check by hand:");
    for (i, item) in CHECKLIST.iter().enumerate() {
        println!("  {}. {item}", i + 1);
    }
}

/// After a trial: the cases it created, for the user to open in Deskie.
pub fn print_trial(engine: &Engine, summary: &RunSummary) {
    let base = engine
        .settings()
        .target
        .base_url
        .as_str()
        .trim_end_matches('/');
    println!(
        "trial: {} cases created in Deskie ({base}). Deskie's API pages document no web address \
         for a case: open each by its number in Deskie's search.",
        summary.trial_cases.len()
    );
    for c in &summary.trial_cases {
        println!(
            "  ticket {} → case {} (id {})",
            c.ticket, c.case_number, c.case_id
        );
    }
    println!(
        "undo it with: deskie-import rollback --all (deletes only the cases this store created); \
         migrate the rest with: deskie-import run"
    );
}

/// `rollback`: states the cost, asks for confirmation (unless `--yes`), deletes, reports.
pub async fn rollback(engine: &Engine, tickets: &[TicketKey], yes: bool) -> Result<u8, CliError> {
    let only = (!tickets.is_empty()).then_some(tickets);
    let plan = rollback::plan(engine, only).await?;
    for key in &plan.not_created {
        println!("ticket {key}: no case created by this store, nothing to delete");
    }
    if plan.cases.is_empty() && plan.open == 0 {
        println!("rollback: nothing to delete");
        return Ok(OK);
    }
    let rpm = engine.settings().target.rpm.max(1);
    let minutes = plan.units() as f64 / f64::from(rpm);
    println!(
        "rollback: {} cases to delete permanently from Deskie in {} requests, {} units (about {} at {rpm} units a minute){}; \
         the customers Deskie created with them stay",
        plan.cases.len(),
        plan.requests(),
        plan.units(),
        crate::progress::human(Duration::from_secs_f64(minutes * 60.0)),
        if plan.open > 0 {
            format!(", after settling {} unconfirmed deletes", plan.open)
        } else {
            String::new()
        }
    );
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(CliError::usage(anyhow::anyhow!(
                "rollback deletes cases and needs a confirmation: run it on a terminal, or add --yes"
            )));
        }
        print!("delete them? [y/N] ");
        std::io::stdout().flush().ok();
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .context("cannot read the confirmation")?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            println!("rollback: nothing deleted");
            return Ok(OK);
        }
    }
    let cancel = engine.cancel_token();
    let mut interrupts = Interrupts::install().context("cannot listen for Ctrl-C")?;
    let watch = tokio::spawn(async move {
        if interrupts.recv().await {
            cancel.cancel();
        }
    });
    let result = rollback::run(engine, &plan).await;
    watch.abort();
    let done = result?;
    println!(
        "rollback: {} cases deleted ({} found already deleted by an interrupted rollback), {} failed, {} Deskie units; \
         their tickets are back to extracted and the next `run` migrates them again",
        done.deleted,
        done.already_gone,
        done.failed.len(),
        done.units
    );
    for (key, why) in &done.failed {
        println!("  ticket {key}: {}", crate::exit::one_line(why));
    }
    if done.interrupted {
        println!("interrupted: run the same rollback again to continue");
        return Ok(FATAL);
    }
    Ok(if done.failed.is_empty() { OK } else { FAILED })
}

/// `completions <shell>`: the completion script on stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<u8, CliError> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "deskie-import", &mut out);
    write_out(&out)?;
    Ok(OK)
}

/// `man`: the man page (roff) on stdout.
pub fn man() -> Result<u8, CliError> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .context("cannot render the man page")?;
    write_out(&out)?;
    Ok(OK)
}

fn write_out(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("cannot write to stdout"))
        }
        _ => Ok(()),
    }
}
