//! Exit codes of DESIGN.md's contract and the one error type of the binary, which carries the
//! code it ends with. Every error is printed as ONE line on stderr that names the fix.

use engine::EngineError;

/// Everything done.
pub const OK: u8 = 0;
/// Any other fatal error, or an interrupted run (re-run to resume).
pub const FATAL: u8 = 1;
/// Usage or configuration error, found before any request.
pub const USAGE: u8 = 2;
/// Finished, but some items failed (listed by `status` and the report).
pub const FAILED: u8 = 3;

/// Why a command stopped, with the exit code that says so.
#[derive(Debug)]
pub struct CliError {
    /// The process exit code.
    pub code: u8,
    /// What went wrong; printed as `error: …` on one line.
    pub error: anyhow::Error,
}

impl CliError {
    /// A usage / configuration problem (exit 2).
    pub fn usage(error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: USAGE,
            error: error.into(),
        }
    }

    /// A fatal problem (exit 1).
    pub fn fatal(error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: FATAL,
            error: error.into(),
        }
    }

    /// The single line printed on stderr.
    pub fn line(&self) -> String {
        chain_line(&self.error)
    }
}

impl From<EngineError> for CliError {
    /// Configuration errors and a store of another account exit 2 (nothing was sent or
    /// written); everything else exits 1.
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Config(c) => CliError::usage(c),
            EngineError::WrongAccount(_) => CliError::usage(e),
            // A preflight finding forbids the run: nothing was sent.
            EngineError::Refused(_) => CliError::usage(e),
            other => CliError::fatal(other),
        }
    }
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> Self {
        CliError::fatal(e)
    }
}

/// The error and its causes on one line, skipping a cause its parent already quotes (many of
/// our errors embed their source in their own message).
pub fn chain_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = one_line(&cause.to_string());
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Joins a possibly multi-line message into one line.
pub fn one_line(s: &str) -> String {
    engine::status::one_line(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_fit_on_one_line() {
        assert_eq!(one_line("a\n  b\tc "), "a b c");
        let e = CliError::usage(anyhow::anyhow!("config key `x`:\n bad"));
        assert_eq!(e.line(), "config key `x`: bad");
        assert_eq!(e.code, USAGE);
        let io = std::io::Error::other("disk full");
        let e = CliError::fatal(anyhow::Error::new(io).context("cannot write x"));
        assert_eq!(e.line(), "cannot write x: disk full");
    }
}
