//! The command-line surface, exactly as DESIGN.md's CLI contract: raw flags only. Turning them
//! into validated settings happens in `commands` (ripgrep style: parse, then validate, then run),
//! so every problem is reported before the first request.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const TOP_HELP: &str = "\
Typical session:
  deskie-import demo                                  # try it: no config, no credentials
  cp config/deskie-import.example.toml deskie-import.toml   # then fill it in
  deskie-import preflight                             # check both accounts, probe Deskie (deleted again)
  deskie-import run --dry-run                         # read everything, write nothing, get a report
  deskie-import run --limit 20                        # a trial; undo it with: deskie-import rollback --all
  deskie-import run                                   # migrate; re-run the same command to resume
  deskie-import retry-failed                          # after fixing what the report says
  deskie-import verify                                # read Deskie back and compare

Secrets may come from the environment instead of the file:
  DESK360_TOKEN, DESK360_EMAIL, DESK360_PASSWORD, DESKIE_API_KEY

Exit codes: 0 all done; 1 fatal error or interrupted (re-run to resume);
            2 usage or configuration error (nothing was sent); 3 finished, some items failed.
Logs: RUST_LOG=debug for more detail (secrets are never logged).";

/// Moves a whole Desk360 help-desk history into Deskie, resumably and exactly once.
#[derive(Debug, Parser)]
#[command(name = "deskie-import", version, about, after_help = TOP_HELP)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,

    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// Options shared by every command (they may appear before or after the command name).
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file (see config/deskie-import.example.toml).
    #[arg(
        long,
        short = 'c',
        global = true,
        value_name = "FILE",
        default_value = "deskie-import.toml"
    )]
    pub config: PathBuf,

    /// No progress bars or lines, logs only for warnings; results and errors are still printed.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,

    /// Log line format: `text` for people, `json` for machines.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Write logs to this file (appended) instead of stderr.
    #[arg(long, global = true, value_name = "FILE")]
    pub log_file: Option<PathBuf>,

    /// Desk360 API token (prefer the environment variable; never pass it on a shared machine).
    #[arg(
        long,
        env = "DESK360_TOKEN",
        hide = true,
        hide_env_values = true,
        global = true
    )]
    pub desk360_token: Option<String>,

    /// Desk360 login email, used with the password when there is no token.
    #[arg(
        long,
        env = "DESK360_EMAIL",
        hide = true,
        hide_env_values = true,
        global = true
    )]
    pub desk360_email: Option<String>,

    /// Desk360 login password.
    #[arg(
        long,
        env = "DESK360_PASSWORD",
        hide = true,
        hide_env_values = true,
        global = true
    )]
    pub desk360_password: Option<String>,

    /// Deskie API key.
    #[arg(
        long,
        env = "DESKIE_API_KEY",
        hide = true,
        hide_env_values = true,
        global = true
    )]
    pub deskie_api_key: Option<String>,
}

/// Log line formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Markdown, for people and tickets.
    Md,
    /// JSON with a stable schema, for machines.
    Json,
    /// One self-contained HTML file with charts.
    Html,
}

/// The commands of DESIGN.md's CLI contract.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Extract from Desk360 and load into Deskie everything not yet loaded; resumes an earlier run.
    #[command(after_help = "\
Examples:
  deskie-import run --dry-run      # extract and plan only: no write to Deskie, prints the report
  deskie-import run                # migrate (re-run the same command after a stop to resume)
  deskie-import run --retry-failed # also re-attempt tickets that failed permanently before
  deskie-import run --retarget     # the store was used with another Deskie account: migrate
                                   # everything again into the one [target] points at now

Ctrl-C stops cleanly (in-flight writes finish or are journaled); a second Ctrl-C exits at once,
still safely. Run the same command again to continue.

A store belongs to one Desk360 and one Deskie account (recorded at its first run): pointed at
another, `run` exits 2 saying which side differs. Another Desk360 account needs a new [store]
path; another Deskie account takes a new store path or `--retarget`.

One process writes a store at a time: a second `run` or `retry-failed` on the same store exits 1
at once, naming the holder; `status` and `report` work alongside.")]
    Run {
        /// Extract and plan only: sends no POST, PUT or DELETE to Deskie (beyond the preflight
        /// probe, which it deletes); prints the report.
        #[arg(long, conflicts_with = "retry_failed")]
        dry_run: bool,
        /// Also re-attempt tickets that failed permanently in an earlier run.
        #[arg(long)]
        retry_failed: bool,
        /// The store was used with another Deskie account: forget every case made there and
        /// migrate everything again into the account [target] now points at (extraction is
        /// kept). Without it, a store of another account is refused with exit 2.
        #[arg(long)]
        retarget: bool,
        /// A trial: migrate only the N most recently updated tickets, then stop and print the
        /// cases created (undo with `rollback --all`).
        #[arg(long, value_name = "N", conflicts_with_all = ["dry_run", "retry_failed"])]
        limit: Option<u64>,
        /// A trial: migrate only this ticket (`product/ticket`); repeat for several.
        #[arg(long = "ticket", value_name = "P/T", conflicts_with_all = ["dry_run", "retry_failed"])]
        tickets: Vec<String>,
    },

    /// Check both accounts and probe how the live Deskie reads the ambiguous points of its pages
    /// (one probe case to an address under .invalid, deleted afterwards); records the findings
    /// `run` follows.
    #[command(after_help = "\
Examples:
  deskie-import preflight              # about 25 Deskie units; prints check · found · what the run does
  deskie-import preflight --no-probe   # read-only checks, nothing written

Exit 2 when a finding forbids the run (e.g. Deskie ignores created_at); `run` then refuses too.")]
    Preflight {
        /// Only the read-only checks: write no probe case.
        #[arg(long)]
        no_probe: bool,
    },

    /// Delete from Deskie the cases this store created (only those), journaled and resumable;
    /// their tickets become loadable again. Customers Deskie created with them stay.
    #[command(after_help = "\
Examples:
  deskie-import run --limit 20         # a trial
  deskie-import rollback --all         # undo it (asks for confirmation on a terminal)
  deskie-import rollback --ticket 3/1045 --yes

Stopped or killed, run the same command again: deletes already sent are checked, never repeated.")]
    Rollback {
        /// Every case this store created.
        #[arg(long, conflicts_with = "tickets", required_unless_present = "tickets")]
        all: bool,
        /// Only the case of this ticket (`product/ticket`); repeat for several.
        #[arg(long = "ticket", value_name = "P/T")]
        tickets: Vec<String>,
        /// Do not ask for confirmation (needed when not on a terminal).
        #[arg(long)]
        yes: bool,
    },

    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "\
Examples:
  deskie-import completions bash > ~/.local/share/bash-completion/completions/deskie-import
  deskie-import completions zsh > \"${fpath[1]}/_deskie-import\"")]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Print the man page (roff), generated from these definitions.
    #[command(after_help = "\
Example:
  deskie-import man > deskie-import.1 && man ./deskie-import.1")]
    Man,

    /// Re-attempt only failed tickets (all of them, or the batches / tickets given), re-reading
    /// the configuration so a fixed mapping applies.
    #[command(after_help = "\
Examples:
  deskie-import retry-failed                      # every failed ticket
  deskie-import retry-failed --batch 12 --batch 13
  deskie-import retry-failed --ticket 3/1045      # product/ticket, or a plain ticket id

`deskie-import status` lists failed batches and tickets with the reason.")]
    RetryFailed {
        /// A failed batch id (as `status` shows it); repeat for several.
        #[arg(long = "batch", value_name = "ID")]
        batches: Vec<i64>,
        /// A failed ticket: `product/ticket` or a plain Desk360 ticket id; repeat for several.
        #[arg(long = "ticket", value_name = "ID")]
        tickets: Vec<String>,
    },

    /// Counts per state from the local store (no network), failed batches and tickets.
    #[command(after_help = "\
Examples:
  deskie-import status
  deskie-import status --json | jq .counts.tickets")]
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },

    /// The migration / dry-run report, built from the local store (no network).
    #[command(after_help = "\
Examples:
  deskie-import report                             # Markdown on stdout
  deskie-import report --format html --out report.html
  deskie-import report --format json | jq .")]
    Report {
        /// Output format.
        #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
        format: ReportFormat,
        /// Write to this file instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },

    /// Read Deskie back and compare it with the store: missing, duplicated, out-of-order.
    ///
    /// Every case is checked (exists, not duplicated, status, priority) from Deskie's case list,
    /// one read per 100 cases; messages are checked for every case, or only for a sample or a
    /// scope. The cost is printed before anything is sent; a stopped verify resumes with the
    /// same command.
    #[command(after_help = "\
Examples:
  deskie-import verify                      # every case, every case's messages
  deskie-import verify --sample 50          # every case; messages of 50 cases drawn from --seed
  deskie-import verify --product 3 --since 2024-01-01
Exit 0 when Deskie matches, 3 when problems are listed (they also go into the report).")]
    Verify {
        /// Check the messages of this many cases only, drawn reproducibly from --seed.
        #[arg(long, value_name = "N")]
        sample: Option<usize>,
        /// Seed of the --sample draw (the same seed draws the same cases).
        #[arg(long, default_value_t = 0, value_name = "S")]
        seed: u64,
        /// Check the messages of this Desk360 product's cases only.
        #[arg(long, value_name = "P")]
        product: Option<i64>,
        /// Check the messages of tickets updated on or after this date (YYYY-MM-DD, Desk360 time).
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
    },

    /// Try it: starts both emulators in-process, migrates a seeded account, prints the report.
    /// Needs no configuration and no credentials.
    #[command(after_help = "\
Example:
  deskie-import demo       # about a minute; shows the progress bars, the report summary and verify")]
    Demo {
        /// Tickets in the seeded account.
        #[arg(long, default_value_t = 300, hide = true)]
        tickets: usize,
        /// Base latency of every emulated request, in milliseconds (jitter is half of it).
        #[arg(long, default_value_t = 100, hide = true)]
        latency_ms: u64,
        /// Seed of the generated account.
        #[arg(long, default_value_t = 42, hide = true)]
        seed: u64,
    },

    /// Serve both emulators until Ctrl-C, printing their URLs, credentials and a config snippet.
    #[command(after_help = "\
Example:
  deskie-import sandbox --tickets 1000 --latency-ms 150 > sandbox.txt &
  # copy the printed snippet into deskie-import.toml, then: deskie-import run")]
    Sandbox {
        /// Tickets in the seeded account.
        #[arg(long, default_value_t = 300)]
        tickets: usize,
        /// Seed of the generated account (same seed, same account).
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Base latency of every request, in milliseconds (jitter is half of it).
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// Desk360 products in the account.
        #[arg(long, default_value_t = 3, hide = true)]
        products: usize,
        /// Rate-limit window of both emulators, in seconds (the vendors' is 60; benchmarks
        /// shorten it).
        #[arg(long, default_value_t = 60.0, hide = true)]
        window_secs: f64,
        /// Desk360 requests per window per client (Business plan: 100).
        #[arg(long, default_value_t = 100, hide = true)]
        desk360_limit: u32,
        /// Deskie units per window for the account (Standard, 150 agents: 750).
        #[arg(long, default_value_t = 750, hide = true)]
        deskie_limit: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
