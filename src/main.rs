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
    let runtime = match runtime_for(&cli.command).enable_all().build() {
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

/// The async runtime a command runs on. The migration's own work is a small share of one core
/// (a few milliseconds a ticket, against rate limits of tens of requests a second), and almost
/// all of it is waiting: on one thread, a reply from the store's SQLite thread or a socket wakes
/// that thread only, where a multi-threaded runtime also wakes and parks its other workers,
/// which cost more CPU than the work itself (about a third fewer context switches a ticket,
/// BENCHMARKS.md "Local cost"). The commands that host the emulators (`demo`, `sandbox`) serve
/// requests as fast as they come, so they get a worker per core.
fn runtime_for(command: &cli::Command) -> tokio::runtime::Builder {
    match command {
        cli::Command::Demo { .. } | cli::Command::Sandbox { .. } => {
            tokio::runtime::Builder::new_multi_thread()
        }
        _ => tokio::runtime::Builder::new_current_thread(),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;
    use tokio::runtime::RuntimeFlavor;

    use super::*;

    fn flavor(args: &[&str]) -> RuntimeFlavor {
        let cli = cli::Cli::try_parse_from(args).expect("valid arguments");
        let runtime = runtime_for(&cli.command)
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.handle().runtime_flavor()
    }

    /// The migration's commands run on one thread; the ones that host the emulators get a
    /// worker per core.
    #[test]
    fn the_migration_runs_on_one_thread_and_the_emulators_on_many() {
        for args in [
            &["deskie-import", "run"][..],
            &["deskie-import", "verify"],
            &["deskie-import", "status"],
        ] {
            assert_eq!(flavor(args), RuntimeFlavor::CurrentThread, "{args:?}");
        }
        for args in [
            &["deskie-import", "demo"][..],
            &["deskie-import", "sandbox"],
        ] {
            assert_eq!(flavor(args), RuntimeFlavor::MultiThread, "{args:?}");
        }
    }
}
