//! The engine: everything between the two API clients — configuration, the pure mapping rules,
//! and the extract / load / retry / verify pipelines with their reports. Only this crate touches
//! the store; it never prints (the binary does), it reports through return values, progress
//! counters and `tracing`.

pub mod attachments;
mod clients;
pub mod config;
mod ctx;
mod error;
mod extract;
mod identity;
mod load;
pub mod mapping;
mod open;
pub mod preflight;
pub mod progress;
pub mod report;
pub mod rollback;
mod run;
pub mod status;
mod trial;
pub mod verify;

pub use error::{EngineError, Result};
pub use open::Engine;
pub use progress::{Progress, ProgressSnapshot};
pub use run::{LimiterStatsView, RunOptions, RunSummary, TrialCase};
pub use status::{Counts, HistoryMark, RetryFilter, Status, TicketState};
