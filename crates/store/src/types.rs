//! The values the store takes and returns: ids, states, records. Plain data, no SQL.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use model::{Ticket, TicketKey};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// Implements `as_str`, `Display` and `FromStr` for a unit enum stored as text, so the SQL CHECK
/// constraints and the Rust names cannot drift apart silently.
macro_rules! text_enum {
    ($ty:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            /// The text stored in the database and shown in reports.
            pub fn as_str(&self) -> &'static str {
                match self { $($ty::$variant => $text),+ }
            }

            /// Every value, in declaration order (for reports that list all states).
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = StoreError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($ty::$variant),)+
                    other => Err(StoreError::Corrupt(format!(
                        concat!("unknown ", stringify!($ty), " {:?}"), other
                    ))),
                }
            }
        }
    };
}

/// Row id of a run, returned by `begin_run` and passed back to `finish_run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunId(pub i64);

/// What an invocation was asked to do; reports group runs by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunKind {
    /// Extract and load everything not yet loaded.
    Run,
    /// Extract and plan only; nothing written to Deskie.
    DryRun,
    /// Re-attempt failed tickets only.
    RetryFailed,
    /// Read Deskie back and compare.
    Verify,
}
text_enum!(RunKind { Run => "run", DryRun => "dry-run", RetryFailed => "retry-failed", Verify => "verify" });

/// How a run ended, written by the engine when it finishes; a run killed before that has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunOutcome {
    /// Everything it was asked to do is done (a later run is a delta run).
    Completed,
    /// A trial of selected tickets finished; not a completed migration.
    Trial,
    /// Stopped by Ctrl-C (or another cancellation).
    Interrupted,
    /// The loader stopped early for a reason the summary states (e.g. Deskie unavailable).
    Stopped,
    /// Ended with an error.
    Error,
}
text_enum!(RunOutcome { Completed => "completed", Trial => "trial", Interrupted => "interrupted", Stopped => "stopped", Error => "error" });

/// One row of the run history, so a report can say what ran and whether it finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Its id.
    pub id: RunId,
    /// What was asked.
    pub kind: RunKind,
    /// UTC civil time it began.
    pub started_at: String,
    /// UTC civil time it ended; `None` while running or when the process was killed.
    pub finished_at: Option<String>,
    /// How it ended; `None` while running or when the process was killed.
    pub outcome: Option<RunOutcome>,
    /// Hash of the effective configuration, to see when the mapping changed between runs.
    pub config_fingerprint: String,
}

/// Where a product's ticket listing stands: the extractor resumes from `next_url`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListCursor {
    /// The Desk360 product.
    pub product_id: i64,
    /// The next page's URL exactly as the server's `Link: rel=next` gave it; `None` once complete.
    pub next_url: Option<String>,
    /// The page number `next_url` refers to (1-based).
    pub next_page: i64,
    /// True once the listing (a full pass or a catch-up) finished.
    pub complete: bool,
    /// What the current (or last) listing is.
    pub mode: ListMode,
    /// A catch-up stops after the first page holding a ticket updated before this (Desk360's
    /// `updated_at` text); `None`: every page is read.
    pub stop_at: Option<String>,
    /// The newest `updated_at` on page 1 when the current listing started; it becomes `mark`
    /// when the listing completes.
    pub top: Option<String>,
    /// High-water mark of the last complete listing: every ticket updated up to it was listed.
    pub mark: Option<String>,
}

/// Which kind of listing a cursor follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ListMode {
    /// Every page, from page 1 to the last.
    Full,
    /// From page 1 down to the previous listing's high-water mark.
    CatchUp,
}

impl ListMode {
    fn as_str(self) -> &'static str {
        match self {
            ListMode::Full => "full",
            ListMode::CatchUp => "catchup",
        }
    }

    pub(crate) fn parse(s: &str) -> Self {
        if s == "catchup" {
            ListMode::CatchUp
        } else {
            ListMode::Full
        }
    }

    pub(crate) fn db(self) -> &'static str {
        self.as_str()
    }
}

/// Where the cursor goes after a recorded page: written in the page's transaction, so a kill
/// never leaves a page recorded without its cursor or the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CursorUpdate<'a> {
    /// The next page's URL; `None` when this listing is finished.
    pub next_url: Option<&'a str>,
    /// The listing kind.
    pub mode: ListMode,
    /// See [`ListCursor::stop_at`].
    pub stop_at: Option<&'a str>,
    /// See [`ListCursor::top`].
    pub top: Option<&'a str>,
    /// See [`ListCursor::mark`]; written as given (the new mark when finishing).
    pub mark: Option<&'a str>,
}

/// One ticket as the list page shows it: enough to decide whether its detail must be fetched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedTicket {
    /// The Desk360 ticket id (the product comes with the page).
    pub ticket_id: i64,
    /// Desk360's `updated_at` exactly as listed; compared as text, never parsed.
    pub updated_at: String,
}

/// Row id of a batch (one list page of one product).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BatchId(pub i64);

impl fmt::Display for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What `record_page` decided: the batch the page became and which details to fetch now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageOutcome {
    /// The batch for (product, page).
    pub batch_id: BatchId,
    /// Tickets of the page whose detail is not stored or is stale, in page order.
    pub to_fetch: Vec<TicketKey>,
    /// Tickets of the page that were not stored before or whose `updated_at` changed: what a
    /// catch-up counts to decide whether another one is needed.
    pub changed: usize,
}

/// Where a ticket is in the pipeline (see the migration for the meaning of each state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketState {
    /// Listed; detail not fetched yet (or the source changed since).
    Pending,
    /// Detail stored; waiting for the loader.
    Extracted,
    /// Claimed by a loader.
    Loading,
    /// Completely written to Deskie.
    Loaded,
    /// Failed; see its failure.
    Failed,
    /// Deliberately not migrated.
    Skipped,
}
text_enum!(TicketState {
    Pending => "pending", Extracted => "extracted", Loading => "loading",
    Loaded => "loaded", Failed => "failed", Skipped => "skipped",
});

/// A batch's state, derived from its tickets so it can never disagree with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchState {
    /// Some ticket still needs its detail and none is being loaded.
    Pending,
    /// Every detail stored, nothing loaded yet.
    Extracted,
    /// Partly loaded.
    Loading,
    /// Every ticket loaded or skipped.
    Loaded,
    /// At least one ticket failed.
    Failed,
}
text_enum!(BatchState {
    Pending => "pending", Extracted => "extracted", Loading => "loading",
    Loaded => "loaded", Failed => "failed",
});

/// A batch with its derived state, for `status` and `retry-failed --batch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchSummary {
    /// Its id (what `--batch` takes).
    pub id: BatchId,
    /// The Desk360 product.
    pub product_id: i64,
    /// The list page.
    pub page: i64,
    /// How many tickets the page listed.
    pub ticket_count: i64,
    /// Derived from its tickets.
    pub state: BatchState,
}

/// Which half of the migration an error happened in; decides where a retry restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Reading from Desk360: a retry re-fetches the detail.
    Extract,
    /// Writing to Deskie: a retry continues the case from the id maps.
    Load,
}
text_enum!(Stage { Extract => "extract", Load => "load" });

/// Whether a failure may go away by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// Refused for a reason that needs a fix (400, 404, 422, mapping rule): retried only on request.
    Permanent,
    /// Timeouts, 5xx, 429 after the retry bound: the next `run` retries them without a flag.
    Transient,
}
text_enum!(FailureClass { Permanent => "permanent", Transient => "transient" });

/// What was being done when a ticket or page failed: stored as text (`list`, `detail`, `map`,
/// `create`, `message:<id>`, `note:<id>`, `update`, `attachment "<name>"`…) that
/// [`FailureStep`]'s `Display` writes and `FromStr` reads back, so stores written before the
/// type existed still read (a text it does not know is kept as [`FailureStep::Other`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum FailureStep {
    /// Reading a page of a product's ticket list.
    List,
    /// An entry of a list page that could not be read.
    ListEntry,
    /// Reading a ticket's details.
    Detail,
    /// Mapping a ticket to Deskie's requests (a configuration or data problem).
    Map,
    /// A journaled write: creating the case, adding a reply or a note, the final update.
    Write(IntentStep),
    /// Finding, after a lost answer, whether the case was created.
    CreateReconcile,
    /// Reading the case to check its final status and priority.
    UpdateCheck,
    /// Preparing a message's attachments as a whole.
    Attachments,
    /// Moving the attachment with this file name.
    Attachment(String),
    /// A step this version does not name (written by another version): kept as it was.
    Other(String),
}

impl FailureStep {
    /// The step without its message id (`message:123` → `message`), to group failures by what
    /// was being done.
    pub fn kind(&self) -> String {
        match self {
            FailureStep::Write(IntentStep::Message(_)) => "message".to_owned(),
            FailureStep::Write(IntentStep::Note(_)) => "note".to_owned(),
            FailureStep::Other(text) => text.split(':').next().unwrap_or(text).trim().to_owned(),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for FailureStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureStep::List => f.write_str("list"),
            FailureStep::ListEntry => f.write_str("list entry"),
            FailureStep::Detail => f.write_str("detail"),
            FailureStep::Map => f.write_str("map"),
            FailureStep::Write(step) => step.fmt(f),
            FailureStep::CreateReconcile => f.write_str("create (reconcile)"),
            FailureStep::UpdateCheck => f.write_str("update (check)"),
            FailureStep::Attachments => f.write_str("attachments"),
            FailureStep::Attachment(name) => write!(f, "attachment {name:?}"),
            FailureStep::Other(text) => f.write_str(text),
        }
    }
}

impl FromStr for FailureStep {
    type Err = std::convert::Infallible;

    /// Reads what [`Display`](fmt::Display) writes; any other text is [`FailureStep::Other`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "list" => FailureStep::List,
            "list entry" => FailureStep::ListEntry,
            "detail" => FailureStep::Detail,
            "map" => FailureStep::Map,
            "create (reconcile)" => FailureStep::CreateReconcile,
            "update (check)" => FailureStep::UpdateCheck,
            "attachments" => FailureStep::Attachments,
            _ => match s.parse::<IntentStep>() {
                Ok(step) => FailureStep::Write(step),
                Err(_) => s
                    .strip_prefix("attachment ")
                    .and_then(|q| serde_json::from_str::<String>(q).ok())
                    .filter(|name| format!("attachment {name:?}") == s)
                    .map_or_else(|| FailureStep::Other(s.to_owned()), FailureStep::Attachment),
            },
        })
    }
}

impl From<String> for FailureStep {
    fn from(s: String) -> Self {
        match s.parse() {
            Ok(step) => step,
            Err(never) => match never {},
        }
    }
}

impl From<&str> for FailureStep {
    fn from(s: &str) -> Self {
        Self::from(s.to_owned())
    }
}

impl From<FailureStep> for String {
    fn from(step: FailureStep) -> Self {
        step.to_string()
    }
}

impl From<IntentStep> for FailureStep {
    fn from(step: IntentStep) -> Self {
        FailureStep::Write(step)
    }
}

impl PartialEq<str> for FailureStep {
    /// Compares with a stored text, read as a step.
    fn eq(&self, other: &str) -> bool {
        matches!(other.parse::<Self>(), Ok(step) if step == *self)
    }
}

impl PartialEq<&str> for FailureStep {
    fn eq(&self, other: &&str) -> bool {
        self == *other
    }
}

/// What the caller knows about a failure; the store adds the attempt count and times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// Extract or load.
    pub stage: Stage,
    /// What was being done.
    pub step: FailureStep,
    /// Permanent or transient.
    pub class: FailureClass,
    /// HTTP status or the API's error code, when there is one.
    pub code: Option<String>,
    /// The API's own message (or the mapping rule that refused), shown to the user verbatim.
    pub message: String,
    /// The request that caused it, already redacted by the caller (the store never sees secrets).
    pub request: Option<String>,
}

/// A stored failure: of a ticket, or of a list page when `key` is `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The failing ticket; `None` for a list page failure.
    pub key: Option<TicketKey>,
    /// The Desk360 product.
    pub product_id: i64,
    /// The list page, for page failures.
    pub page: Option<i64>,
    /// The last failure's details.
    pub record: FailureRecord,
    /// How many times this ticket (or page) failed in this stage.
    pub attempts: i64,
    /// UTC civil time of the first failure.
    pub first_seen: String,
    /// UTC civil time of the latest failure.
    pub last_seen: String,
}

/// A ticket in state failed, with where it sits and why, for reports and `retry-failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedTicket {
    /// The ticket.
    pub key: TicketKey,
    /// Its batch.
    pub batch_id: BatchId,
    /// The list page of that batch.
    pub page: i64,
    /// The failure (absent only if the ticket was marked failed by an older version).
    pub failure: Option<Failure>,
}

/// Which failed tickets `retry_failed` re-queues; the union of the given selectors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryFilter {
    /// Every failed ticket of these batches.
    pub batches: Vec<BatchId>,
    /// These tickets.
    pub tickets: Vec<TicketKey>,
    /// Tickets with these ids in any product (what a user types after `--ticket`).
    pub ticket_ids: Vec<i64>,
    /// Every failed ticket.
    pub all: bool,
}

/// The Deskie case a ticket became, from the create response (or found by reconciliation).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CaseRef {
    /// Deskie case id.
    pub case_id: i64,
    /// Deskie case number, e.g. `664-245651`.
    pub case_number: String,
    /// The Deskie user created with the case; customer replies are sent as this user.
    pub user_id: i64,
}

/// Row id of a write intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IntentId(pub i64);

impl fmt::Display for IntentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Which write of a case an intent journals. Stored as text: `create`, `message:<source id>`,
/// `note:<source id>`, `update`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum IntentStep {
    /// Creating the case (with the first message).
    Create,
    /// Adding the reply with this Desk360 message id.
    Message(i64),
    /// Adding the note with this Desk360 message id.
    Note(i64),
    /// The final status/priority update.
    Update,
}

impl fmt::Display for IntentStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntentStep::Create => f.write_str("create"),
            IntentStep::Message(id) => write!(f, "message:{id}"),
            IntentStep::Note(id) => write!(f, "note:{id}"),
            IntentStep::Update => f.write_str("update"),
        }
    }
}

impl FromStr for IntentStep {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || StoreError::Corrupt(format!("unknown intent step {s:?}"));
        match s {
            "create" => Ok(IntentStep::Create),
            "update" => Ok(IntentStep::Update),
            _ => {
                let (kind, id) = s.split_once(':').ok_or_else(bad)?;
                let id: i64 = id.parse().map_err(|_| bad())?;
                match kind {
                    "message" => Ok(IntentStep::Message(id)),
                    "note" => Ok(IntentStep::Note(id)),
                    _ => Err(bad()),
                }
            }
        }
    }
}

/// An open write intent: a write that was about to be sent, or sent without its result recorded.
/// After a crash each one must be reconciled by reading Deskie before writing again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// Its id, for `complete_intent` / `abandon_intent`.
    pub id: IntentId,
    /// The ticket.
    pub key: TicketKey,
    /// Which write.
    pub step: IntentStep,
    /// Hash of the request payload, to recognise the same write.
    pub payload_hash: String,
    /// UTC civil time it was opened (bounds the created_at window of a reconciliation search).
    pub created_at: String,
}

/// The outcome of a journaled write, recorded together with the id map in one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum IntentResult {
    /// The case was created (or found): for a `create` intent.
    Case(CaseRef),
    /// The message or note was added (or found): for a `message:` / `note:` intent.
    Message {
        /// Desk360 message id.
        source_id: i64,
        /// Deskie message id.
        deskie_id: i64,
    },
    /// The final status/priority is in place: for an `update` intent.
    Final,
}

/// Everything the loader needs to continue a case exactly where it stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadState {
    /// The ticket, messages in write order.
    pub ticket: Ticket,
    /// The case, once created.
    pub case: Option<CaseRef>,
    /// Desk360 message id → Deskie message id, for every reply and note already written.
    pub sent: HashMap<i64, i64>,
    /// Whether the final status/priority step is done.
    pub final_done: bool,
    /// Whether the ticket was completely loaded once before: its source changed since (a delta
    /// run), so the case's status and priority must be checked against the source again.
    pub previously_loaded: bool,
    /// Writes of this ticket whose outcome is unknown: reconcile before anything else.
    pub open_intents: Vec<Intent>,
    /// Every abandoned intent of this ticket (journaled, then known not to have happened), by id
    /// and step: the loader counts those of its own run without a query per write (see
    /// [`Store::abandoned_intents`](crate::Store::abandoned_intents)).
    pub abandoned: Vec<(IntentId, IntentStep)>,
}

/// Totals of one product, for the per-product lines of `status` and the report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductCounts {
    /// The Desk360 product.
    pub product_id: i64,
    /// Tickets per state.
    pub tickets: BTreeMap<TicketState, u64>,
    /// Replies in stored details.
    pub messages: u64,
    /// Notes in stored details.
    pub notes: u64,
    /// Attachment references in stored details.
    pub attachments: u64,
    /// Sum of the attachment sizes the source gave.
    pub attachment_bytes: u64,
}

/// Store-wide totals for `status` and reports, computed without reading message bodies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Tickets per state.
    pub tickets: BTreeMap<TicketState, u64>,
    /// Batches per derived state.
    pub batches: BTreeMap<BatchState, u64>,
    /// Replies in stored details.
    pub messages: u64,
    /// Notes in stored details.
    pub notes: u64,
    /// Attachment references in stored details.
    pub attachments: u64,
    /// Sum of the attachment sizes the source gave.
    pub attachment_bytes: u64,
    /// The same per product, ordered by product id.
    pub products: Vec<ProductCounts>,
}

/// Which API a request counter is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The source.
    Desk360,
    /// The target.
    Deskie,
}
text_enum!(Side { Desk360 => "desk360", Deskie => "deskie" });

/// Request counters of one side for one minute; the engine flushes them in batches and the store
/// adds them up, for the report's rate chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestStat {
    /// Which API.
    pub side: Side,
    /// Unix seconds of the start of the minute (any second inside it is rounded down).
    pub minute_epoch: i64,
    /// Requests sent.
    pub requests: u64,
    /// Limiter units spent (Deskie: GET 1, writes 2).
    pub units: u64,
    /// 429 responses.
    pub throttled: u64,
    /// Transient errors (5xx, timeouts, resets).
    pub transient: u64,
}

/// The account one side of a store belongs to, as recorded at its first run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountIdentity {
    /// Source or target.
    pub side: Side,
    /// The base URL the run used.
    pub base_url: String,
    /// What identifies the account: Desk360, the `/v1/me` answer as JSON; Deskie, the account
    /// host (with a non-default port).
    pub account: String,
}

/// What `Store::retarget` forgot and handed back to the loader, for the log and the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetargetSummary {
    /// Ticket → case maps of the previous target.
    pub cases_forgotten: u64,
    /// Message maps of the previous target.
    pub messages_forgotten: u64,
    /// Tickets that will be loaded again.
    pub tickets_requeued: u64,
}

/// Reads a ticket key as users write it: `product/ticket` (as displayed) or `product:ticket`.
pub fn parse_ticket_key(s: &str) -> Option<TicketKey> {
    let (p, t) = s.split_once('/').or_else(|| s.split_once(':'))?;
    Some(TicketKey::new(
        p.trim().parse().ok()?,
        t.trim().parse().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intent_steps_round_trip_as_text() {
        for step in [
            IntentStep::Create,
            IntentStep::Message(42),
            IntentStep::Note(-7),
            IntentStep::Update,
        ] {
            assert_eq!(step.to_string().parse::<IntentStep>().unwrap(), step);
        }
        assert_eq!(IntentStep::Message(42).to_string(), "message:42");
        assert!("message:x".parse::<IntentStep>().is_err());
        assert!("reply:1".parse::<IntentStep>().is_err());
    }

    #[test]
    fn states_round_trip_as_text() {
        for s in TicketState::ALL {
            assert_eq!(s.as_str().parse::<TicketState>().unwrap(), *s);
        }
        for s in BatchState::ALL {
            assert_eq!(s.to_string().parse::<BatchState>().unwrap(), *s);
        }
        assert_eq!(RunKind::DryRun.as_str(), "dry-run");
        assert!(matches!(
            "nope".parse::<Stage>(),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn ticket_keys_parse_as_displayed() {
        let key = TicketKey::new(3, 42);
        assert_eq!(parse_ticket_key(&key.to_string()), Some(key));
        assert_eq!(parse_ticket_key("3:42"), Some(key));
        assert_eq!(parse_ticket_key("42"), None);
    }

    #[test]
    fn failure_steps_round_trip_the_stored_text() {
        for text in [
            "list",
            "list entry",
            "detail",
            "map",
            "create",
            "message:501",
            "note:1002",
            "update",
            "create (reconcile)",
            "update (check)",
            "attachments",
            "attachment \"a:b \\\"c\\\".pdf\"",
            "attachment 'odd",
            "something older",
        ] {
            let step: FailureStep = text.parse().unwrap();
            assert_eq!(step.to_string(), text);
            assert_eq!(step, text);
        }
        assert_eq!(
            FailureStep::from("message:7"),
            FailureStep::Write(IntentStep::Message(7))
        );
        assert_eq!(
            FailureStep::from("attachment \"x:y.pdf\""),
            FailureStep::Attachment("x:y.pdf".into())
        );
        assert_eq!(FailureStep::from("message:7").kind(), "message");
        assert_eq!(FailureStep::from("note:7").kind(), "note");
        assert_eq!(
            FailureStep::from("create (reconcile)").kind(),
            "create (reconcile)"
        );
        assert_eq!(
            FailureStep::Attachment("a:b".into()).kind(),
            "attachment \"a:b\""
        );
        assert_eq!(FailureStep::from("old:9").kind(), "old");
        let json = serde_json::to_string(&FailureStep::Write(IntentStep::Note(3))).unwrap();
        assert_eq!(json, "\"note:3\"");
        assert_eq!(
            serde_json::from_str::<FailureStep>(&json).unwrap(),
            FailureStep::Write(IntentStep::Note(3))
        );
    }
}
