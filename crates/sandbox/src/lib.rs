//! In-process emulators of the Desk360 (source) and Deskie (target) APIs, seeded with a
//! synthetic Desk360 account and able to inject the faults a real migration meets.
//!
//! The whole project is tested against these servers, so they follow the vendor pages in
//! `shared/api/` — including the unpleasant parts (per-IP and per-account fixed windows, writes
//! costing 2, the migration recipe's required fields, lost responses, reopened cases). The crate
//! depends on no other project crate: it is an independent reading of the vendor pages, so a
//! misunderstanding in the clients is not silently mirrored here.
//!
//! Choices the pages leave open (documented where they are implemented):
//! - Deskie's error body is undocumented: we answer `{"errors": {field: message}}` everywhere.
//! - Time headers (`Retry-After`, `retry_after`, `X-RateLimit-Reset`) are integer seconds
//!   (rounded up) for windows of 60 s or more, like the vendors; for shorter (test) windows they
//!   carry milliseconds (`0.250`) so short-window tests can be exact.
//! - Deskie answers timestamps in RFC 2822 in the account's offset (+03:00, as the pages' examples);
//!   snapshots give RFC 3339 UTC (`2021-03-04T05:06:07Z`) for easy assertions.
//!
//! Module map: `server.rs` starts and stops the sandbox (the only module that knows both
//! emulators); `desk360.rs` and `deskie.rs` (each split by resource into axum `Router`s, with one
//! gate middleware for the cross-cutting behaviour) emulate the vendors; `state.rs` is what both
//! share (configuration, dataset, faults and readings in force, windows' clock, journal);
//! `respond.rs` the answers both build; `config.rs`, `snapshot.rs` and `error.rs` the public
//! types; `data.rs` the seeded generator.

mod config;
mod data;
mod desk360;
mod deskie;
mod error;
mod respond;
mod server;
mod snapshot;
mod state;

pub use config::{
    AgentReplyReading, AttachmentSetup, Churn, ChurnEvent, Credentials, DESKIE_API_STAFF_ID,
    DelayedApply, Faults, LinkLoop, LinkReading, NoteAuthorReading, Readings, SandboxConfig,
    SearchReading, TimeFilterReading,
};
pub use data::{
    Agent, DEFAULT_ATTACHMENT_BASE, Dataset, Product, Reason, TicketData, Type, generate,
    generate_with_base, parse_refs,
};
pub use error::SandboxError;
pub use server::Sandbox;
pub use snapshot::{CaseSnapshot, DeskieSnapshot, FileSnapshot, MessageSnapshot, UserSnapshot};
pub use state::{JournalEntry, Server};
