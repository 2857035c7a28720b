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

mod data;
mod desk360;
mod deskie;
mod server;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use data::{
    Agent, DEFAULT_ATTACHMENT_BASE, Dataset, Product, Reason, TicketData, Type, generate,
    generate_with_base, parse_refs,
};
pub use server::Sandbox;

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

/// How the sandbox behaves: data size, rate windows, latency and the initial faults.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Seed of the generator and of every random draw (jitter, fault shares).
    pub seed: u64,
    /// Number of Desk360 products.
    pub products: usize,
    /// Total tickets across products.
    pub tickets: usize,
    /// Fixed rate-limit window of BOTH servers (60 s in production; shorten it in tests).
    pub window: Duration,
    /// Desk360 requests per window, per client IP (Business plan: 100).
    pub desk360_limit: u32,
    /// Deskie request units per window for the whole account (GET 1, writes 2; Standard: 750).
    pub deskie_limit: u32,
    /// Base latency added to every answer.
    pub latency: Duration,
    /// Uniform +/- jitter on top of `latency`.
    pub jitter: Duration,
    /// Faults active from the start (change them later with [`Sandbox::set_faults`]).
    pub faults: Faults,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            products: 3,
            tickets: 300,
            window: Duration::from_secs(60),
            desk360_limit: 100,
            deskie_limit: 750,
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            faults: Faults::default(),
        }
    }
}

/// Faults to inject; all off by default. Shares are probabilities in `0.0..=1.0`, drawn per request.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Share of requests (both servers) answered 500/502/503 WITHOUT applying anything. 500 carries
    /// the vendor's JSON error body; 502/503 carry a proxy's HTML page (not JSON), as in production.
    pub server_error_rate: f64,
    /// Share of successful Deskie writes that are applied and then answered by a dropped
    /// connection (no status): the lost-response trap.
    pub drop_after_commit_rate: f64,
    /// Deskie outage: every Deskie request answers 503 with a proxy's HTML page.
    pub deskie_down: bool,
    /// `(product_id, ticket_id)`: every Deskie write carrying content of that ticket (or updating
    /// a case created from it) answers 400.
    pub reject_tickets: BTreeSet<(i64, i64)>,
    /// `(product_id, ticket_id, message index in source order, 0 = first)`: only writes carrying
    /// that message answer 400.
    pub reject_messages: BTreeSet<(i64, i64, usize)>,
    /// Desk360 ticket details answered 200 with a body that is not JSON.
    pub malformed_tickets: BTreeSet<(i64, i64)>,
    /// Desk360 ticket details answered 200 with the JSON body cut in half.
    pub truncated_tickets: BTreeSet<(i64, i64)>,
    /// Share of each Deskie window spent by "another user" of the account at the window start.
    pub other_consumer_share: f64,
}

/// Credentials both emulators accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Desk360 bearer token.
    pub desk360_token: String,
    /// Desk360 login email (for `/v1/login`).
    pub desk360_email: String,
    /// Desk360 login password (for `/v1/login`).
    pub desk360_password: String,
    /// Deskie basic-auth user (an agent's email).
    pub deskie_staff_email: String,
    /// Deskie basic-auth password (the API key).
    pub deskie_api_key: String,
}

/// Which emulator a journal entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Server {
    /// The Desk360 (source) emulator.
    Desk360,
    /// The Deskie (target) emulator.
    Deskie,
}

/// One request as the emulator saw it: what tests count (requests, units, 429s, faults).
#[derive(Debug, Clone)]
pub struct JournalEntry {
    /// When the request arrived.
    pub at: Instant,
    /// Which emulator answered.
    pub server: Server,
    /// HTTP method.
    pub method: String,
    /// Path with query string.
    pub path: String,
    /// Rate-limit units the request was worth (Desk360 1; Deskie GET 1, writes 2), whether or not
    /// it was charged.
    pub cost: u32,
    /// Status answered; 0 when the connection was dropped without an answer.
    pub status: u16,
    /// The fault or refusal behind the answer: `"5xx"`, `"down"`, `"dropped"`, `"rejected"`,
    /// `"rate_limited"`, `"malformed"`, `"truncated"`, `"too_many_attempts"`; `None` for a normal
    /// answer (including ordinary 4xx).
    pub fault: Option<String>,
}

/// The whole Deskie state, for assertions.
#[derive(Debug, Clone, Default)]
pub struct DeskieSnapshot {
    /// Every case, in creation order.
    pub cases: Vec<CaseSnapshot>,
    /// Every user, in creation order.
    pub users: Vec<UserSnapshot>,
    /// Number of messages recorded as emailed to the customer (should be 0 after an import).
    pub customer_emailed: usize,
}

impl DeskieSnapshot {
    /// Every case whose content carries markers of the source ticket `(product, ticket)`.
    pub fn cases_of(&self, product_id: i64, ticket_id: i64) -> Vec<&CaseSnapshot> {
        self.cases
            .iter()
            .filter(|c| c.source_ticket == Some((product_id, ticket_id)))
            .collect()
    }
}

/// One Deskie case with its messages.
#[derive(Debug, Clone)]
pub struct CaseSnapshot {
    /// Deskie case id.
    pub case_id: i64,
    /// Deskie case number (`"664-245651"` style).
    pub case_number: String,
    /// The user the case belongs to.
    pub user_id: i64,
    /// `"email"`, `"calls"`, `"whatsapp"` or `"custom:<channel id>"`.
    pub channel: String,
    /// Subject.
    pub subject: String,
    /// `open`, `waiting` or `closed`.
    pub status: String,
    /// `low`, `normal`, `high` or `critical`.
    pub priority: String,
    /// Responsible agent (0 = none).
    pub staff_id: i64,
    /// Group, if any.
    pub group_id: Option<i64>,
    /// The agent who initiated the case, if agent-initiated.
    pub initiator_id: Option<i64>,
    /// `case_email_id` as sent (must be -1 for agent-initiated Email cases).
    pub case_email_id: Option<i64>,
    /// Custom fields as stored.
    pub custom_fields: BTreeMap<String, serde_json::Value>,
    /// Labels.
    pub labels: Vec<i64>,
    /// Creation time, RFC 3339 UTC.
    pub created_at: String,
    /// Messages in Deskie order (created_at, then arrival), notes included.
    pub messages: Vec<MessageSnapshot>,
    /// The source ticket whose `ref:` marker the creating write carried, if any.
    pub source_ticket: Option<(i64, i64)>,
}

/// One Deskie message or note.
#[derive(Debug, Clone)]
pub struct MessageSnapshot {
    /// Deskie message id.
    pub message_id: i64,
    /// Customer author (0 for agent messages and notes).
    pub user_id: i64,
    /// Agent author (0 for customer messages).
    pub staff_id: i64,
    /// Plain content as sent.
    pub content: String,
    /// HTML content as sent.
    pub content_html: String,
    /// Whether this is an internal note.
    pub note: bool,
    /// Creation time, RFC 3339 UTC.
    pub created_at: String,
    /// `attachment_urls` sent, plus `multipart:<file name>` for uploaded files.
    pub attachment_urls: Vec<String>,
    /// Whether the real service would have emailed the customer (agent message or agent-initiated
    /// case sent without `do_not_send_email = true`).
    pub customer_emailed: bool,
}

/// One Deskie user (created by the cases).
#[derive(Debug, Clone)]
pub struct UserSnapshot {
    /// Deskie user id.
    pub user_id: i64,
    /// `"email"`, `"phone"`, `"whatsapp"` or `"custom"`.
    pub kind: String,
    /// Email, for email users.
    pub email: Option<String>,
    /// Phone, for phone / WhatsApp users.
    pub phone: Option<String>,
    /// Custom id, for custom-channel users.
    pub custom_id: Option<String>,
    /// Full name, if one was sent.
    pub full_name: Option<String>,
}

/// The dataset the emulators serve: a snapshot is taken per request (an `Arc` clone), and a test's
/// change replaces it copy-on-write, so a request in flight never sees half a change.
pub(crate) type SharedDataset = std::sync::RwLock<Arc<Dataset>>;
