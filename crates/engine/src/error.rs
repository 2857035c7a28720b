//! The engine's error: what stops a whole run. Per-ticket problems never come here; they are
//! recorded in the store as that ticket's failure and the run goes on.

use crate::config::ConfigError;

/// A reason the run (or command) cannot go on. The binary maps these to exit codes: `Config`
/// and `WrongAccount` to 2, everything else to 1.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The configuration is invalid; nothing was sent.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The checkpoint store failed; the run stops with the store consistent.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// Desk360 refused something the whole run needs (credentials, the product list).
    #[error("Desk360: {0}")]
    Source(#[from] desk360::Desk360Error),
    /// Deskie refused something the whole run needs (credentials).
    #[error("Deskie: {0}")]
    Target(#[from] deskie::DeskieError),
    /// The store belongs to another Desk360 or Deskie account than the configuration points at
    /// (the message says which side and what to do); nothing was written. The binary exits 2.
    #[error("{0}")]
    WrongAccount(String),
    /// A preflight finding with no fallback forbids the run (exit 2: nothing was written); the
    /// line names the finding and the fix.
    #[error("{0}")]
    Refused(String),
    /// A task of the run panicked or was aborted: a bug; the store stays consistent.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Results of the engine.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
