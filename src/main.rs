//! The `deskie-import` binary: the command line of DESIGN.md over the engine. It is the only
//! part of the project that prints to stdout (results: summaries, reports, status) and stderr
//! (progress, logs, the one-line error). Exit codes: 0 all done, 1 fatal or interrupted,
//! 2 usage or configuration error (before any request), 3 finished with failed items.

mod cli;
mod commands;
mod demo;
mod exit;
mod logging;
mod preflight_cmd;
mod progress;
mod runner;
mod signals;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    // clap prints usage errors itself and exits 2 (help and version exit 0).
    let cli = cli::Cli::parse();
    let ui = progress::Ui::new(cli.global.quiet);
    if let Err(e) = logging::init(
        cli.global.log_format,
        cli.global.log_file.as_deref(),
        cli.global.quiet,
        ui.bars(),
    ) {
        eprintln!("error: {}", exit::chain_line(&e));
        return ExitCode::from(exit::USAGE);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FATAL);
        }
    };
    let result = runtime.block_on(commands::dispatch(cli.command, cli.global, ui));
    // Do not wait for stray blocking tasks (e.g. a sandbox generator) at exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            tracing::debug!(code = e.code, "command failed");
            eprintln!("error: {}", e.line());
            ExitCode::from(e.code)
        }
    }
}
