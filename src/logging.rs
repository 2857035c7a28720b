//! Log setup: `tracing` lines to stderr (through the progress bars' writer, so a log line never
//! tears a bar) or to `--log-file`, as text or JSON. Our crates log at info by default, everything
//! else at warn (only warnings with `--quiet`); `RUST_LOG` replaces that filter entirely when set.

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Mutex;

use anyhow::Context as _;
use indicatif::MultiProgress;
use tracing_indicatif::writer::IndicatifWriter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::cli::LogFormat;

/// Our crates at info, the rest (HTTP stack, SQL, emulators) at warn.
const DEFAULT_FILTER: &str =
    "warn,deskie_import=info,engine=info,store=info,desk360=info,deskie=info,throttle=info";

/// With `--quiet`: only warnings and errors.
const QUIET_FILTER: &str = "warn";

/// Installs the global subscriber. Fails (exit 2) only if the log file cannot be opened or
/// `RUST_LOG` is not a filter.
pub fn init(
    format: LogFormat,
    log_file: Option<&Path>,
    quiet: bool,
    bars: &MultiProgress,
) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => EnvFilter::try_new(v.trim()).with_context(|| {
            format!("RUST_LOG `{v}` is not a valid filter (e.g. RUST_LOG=debug)")
        })?,
        _ if quiet => EnvFilter::new(QUIET_FILTER),
        _ => EnvFilter::new(DEFAULT_FILTER),
    };
    let (writer, ansi) = match log_file {
        Some(path) => {
            let mut options = OpenOptions::new();
            options.create(true).append(true);
            // Log lines can name customers (ticket keys, emails in API messages): owner only.
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let file = options.open(path).with_context(|| {
                format!(
                    "--log-file {}: cannot open for writing; choose a writable path",
                    path.display()
                )
            })?;
            (BoxMakeWriter::new(Mutex::new(file)), false)
        }
        None => {
            let writer: IndicatifWriter = IndicatifWriter::new(bars.clone());
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
            (BoxMakeWriter::new(writer), ansi)
        }
    };
    let layer = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_ansi(ansi)
            .with_target(true)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(writer)
            .with_current_span(false)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init()
        .context("a logger is already installed")?;
    Ok(())
}
