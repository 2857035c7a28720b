//! The one error type of the crate: why a sandbox could not start.

/// Why the sandbox could not start. Both are fatal for the test or command that asked for it.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A listener on `127.0.0.1:0` could not be bound (fatal: the machine refuses local sockets).
    #[error("cannot bind the {server} emulator on 127.0.0.1: {source}")]
    Bind {
        /// Which emulator.
        server: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The dataset generator task panicked or was cancelled (fatal: a bug in the generator).
    #[error("dataset generation failed: {0}")]
    Generate(String),
}
