//! What a sandbox is started with and what a test may switch while it runs: data size, rate
//! windows, latency, the faults to inject, the readings of the vendor pages' open points, churn of
//! the Desk360 account, attachment serving and the credentials both emulators accept.
//!
//! Plain data only: the emulators read these (`state.rs` holds the ones that change at run time).

use std::collections::BTreeSet;
use std::time::Duration;

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
    /// Faults active from the start (change them later with [`crate::Sandbox::set_faults`]).
    pub faults: Faults,
    /// How the emulators read the points the vendor pages leave open (change them later with
    /// `Sandbox::set_readings`). The default is the reading the project started from.
    pub readings: Readings,
    /// Changes made to the Desk360 account while a run lists and fetches it; `None`: none.
    pub churn: Option<Churn>,
    /// Name of the Desk360 account (company) served: it shows in `/v1/me` and `/v1/agents/me`,
    /// so two sandboxes with the same product ids are still two different accounts.
    pub desk360_account: String,
    /// Desk360 tokens stop working this long after they were issued (a login issues a new one);
    /// `None`: tokens never expire.
    pub desk360_token_ttl: Option<Duration>,
    /// How attachment files are served (public, behind the token, signed and expiring, large).
    pub attachments: AttachmentSetup,
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
            readings: Readings::default(),
            churn: None,
            desk360_account: "acme".into(),
            desk360_token_ttl: None,
            attachments: AttachmentSetup::default(),
        }
    }
}

/// How the emulators read each point the vendor pages leave open. Each field names its page;
/// the defaults are the reading the project was first written against, [`Readings::pessimistic`]
/// the combination the important engine suites must also pass under.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Readings {
    /// What the Desk360 `Link: rel=next` URL carries (page 004, "Pagination": the only example
    /// is `…/tickets?page=2`, for a request without other parameters).
    pub link: LinkReading,
    /// How Deskie matches `custom_fields[cf_N]=…` in the case list (page 002: "the search option
    /// is used in many methods", `^…^` for exact; page 001 shows the filter without saying).
    pub custom_field_search: SearchReading,
    /// The format Deskie's `from_time` / `to_time` case-list filters take (page 001: the
    /// parameter table was lost; only "taking into account the creation time" is said).
    pub time_filter: TimeFilterReading,
    /// What an agent reply does to the case status (not said anywhere; recipe 003 §1.3/2.3/3.3
    /// only says to check the case after all messages and edit it if needed).
    pub agent_reply: AgentReplyReading,
    /// Which field of a note names its author (page 001 shows `note_staff_id` in one block and
    /// `staff_id` in the two others).
    pub note_author: NoteAuthorReading,
    /// Custom channel ids that are *synchronous*: their case create and messages take plain
    /// `content` and refuse `content_html` (recipe 003 §3.1, §3.2).
    pub sync_custom_channels: BTreeSet<i64>,
    /// Deskie ignores `created_at` on cases and messages and stamps the time of the request
    /// (a reading `preflight` must detect: every message would carry today's date).
    pub ignores_created_at: bool,
}

impl Readings {
    /// The combination every important engine suite must pass under: `Link` with only `page`,
    /// exact-only custom-field search, time filters ignored, an agent reply sets `waiting`, the
    /// note author read from `note_staff_id` only.
    pub fn pessimistic() -> Self {
        Self {
            link: LinkReading::PageOnly,
            custom_field_search: SearchReading::ExactOnly,
            time_filter: TimeFilterReading::Ignored,
            agent_reply: AgentReplyReading::SetsWaiting,
            note_author: NoteAuthorReading::NoteStaffIdOnly,
            sync_custom_channels: BTreeSet::new(),
            ignores_created_at: false,
        }
    }
}

/// What the Desk360 `Link` next URL carries (page 004, "Pagination").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LinkReading {
    /// Every query parameter of the request, with `page` advanced.
    #[default]
    KeepsQuery,
    /// Only `page=N`: the next page is served with the default order and no filter.
    PageOnly,
}

/// How Deskie's `custom_fields[cf_N]` case filter matches (page 002, "search").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SearchReading {
    /// `^x^` exact, `^x` prefix, `x^` suffix, anything else a case-insensitive substring.
    #[default]
    Caret,
    /// The value must equal the stored value exactly; `^` is an ordinary character.
    ExactOnly,
    /// Case-insensitive substring; `^` is an ordinary character.
    SubstringOnly,
}

/// The format Deskie's `from_time` / `to_time` filters take (page 001, table lost).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TimeFilterReading {
    /// Unix seconds.
    #[default]
    UnixSeconds,
    /// `YYYY-MM-DD HH:MM:SS` in the account's zone; anything else answers 400 naming the field.
    DateTimeText,
    /// The parameters are accepted and ignored: the list is not filtered by time.
    Ignored,
}

/// What an agent reply (not a note) does to a case's status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AgentReplyReading {
    /// The status stays as it is.
    #[default]
    KeepsStatus,
    /// The case becomes `waiting` (waiting for the customer), as many help desks do.
    SetsWaiting,
}

/// Which note field Deskie reads the author from (page 001, "Add a note").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NoteAuthorReading {
    /// `note_staff_id` or `staff_id`, whichever is present.
    #[default]
    EitherField,
    /// Only `note_staff_id`; a note without it is credited to the API agent.
    NoteStaffIdOnly,
    /// Only `staff_id`; a note without it is credited to the API agent.
    StaffIdOnly,
}

/// Desk360 changes while a run is going on: after `start_after` Desk360 requests, one change
/// every `every` requests — `updates` existing tickets get a new message (their `updated_at`
/// becomes the newest in the account) and `creates` new tickets appear — drawn from the seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Churn {
    /// Desk360 requests (any) before the first change.
    pub start_after: u64,
    /// Desk360 requests between two changes (at least 1).
    pub every: u64,
    /// Existing tickets changed (a new customer or agent message each).
    pub updates: u32,
    /// New tickets created (1–3 messages each).
    pub creates: u32,
}

/// One change [`Churn`] made, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChurnEvent {
    /// `(product_id, ticket_id)`.
    pub key: (i64, i64),
    /// `true` for a new ticket, `false` for an update of an existing one.
    pub created: bool,
    /// How many Desk360 requests had arrived when it was made.
    pub at_request: u64,
}

/// How the Desk360 emulator serves attachment files. Files' bytes are deterministic (from the
/// seed and the URL), so a test can compare sizes and SHA-256 checksums end to end.
#[derive(Debug, Clone, PartialEq)]
pub struct AttachmentSetup {
    /// Share of attachments served only with the Desk360 bearer token (401 without it).
    pub behind_token_share: f64,
    /// Share of attachments whose URLs are signed and expire (`?expires=…&signature=…`,
    /// 403 once expired).
    pub signed_share: f64,
    /// Lifetime of a signed URL from the moment the ticket detail is served.
    pub signed_ttl: Duration,
    /// Extra large files: `(product_id, ticket_id, sizes in bytes)` added to that ticket's first
    /// message (e.g. 30 MB + 20 MB + 10 MB to exceed 25 MB a file and 50 MB a request).
    pub large: Vec<(i64, i64, Vec<u64>)>,
}

impl Default for AttachmentSetup {
    fn default() -> Self {
        Self {
            behind_token_share: 0.0,
            signed_share: 0.0,
            signed_ttl: Duration::from_secs(3600),
            large: Vec::new(),
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
    /// The other user spends its share evenly over the window instead of all at its start.
    pub other_consumer_spread: bool,
    /// `Link` faults of the Desk360 list: a page whose `Link` leads back to a page already read.
    pub link_loops: Vec<LinkLoop>,
    /// Deskie writes held past the client's timeout and applied only afterwards.
    pub delayed_apply: Option<DelayedApply>,
    /// While set, every Deskie request answers 429 with this `retry_after`.
    pub deskie_429_retry_after: Option<Duration>,
    /// Every response / note edit answers 503 (proxy page) without applying anything, while
    /// every other request works: a run stopped or killed between a message write and its edit.
    pub edits_unavailable: bool,
}

/// A Desk360 list page whose `Link: rel=next` points back to an earlier page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkLoop {
    /// The product whose list is affected.
    pub product_id: i64,
    /// The page whose `Link` is wrong.
    pub from_page: u32,
    /// The page it leads to (≤ `from_page`: a cycle).
    pub to_page: u32,
    /// Spell the URL differently from the one the client already followed (query parameters in
    /// another order, `localhost` for `127.0.0.1`), so a URL comparison does not see the loop.
    pub respell: bool,
}

/// Deskie writes the server applies only after the client gave up: the request is held for
/// `delay` (longer than the client's timeout), then applied, then answered to a closed socket.
#[derive(Debug, Clone, PartialEq)]
pub struct DelayedApply {
    /// The first write carrying content of each of these `(product_id, ticket_id)`.
    pub tickets: BTreeSet<(i64, i64)>,
    /// Share of all other writes, drawn per request.
    pub share: f64,
    /// How long the request is held before it is applied.
    pub delay: Duration,
}

/// Deskie staff id of the API agent, the agent behind the basic-auth `staff_email` of
/// [`Credentials`]. Deskie acts "on behalf of the employee" whose email authenticates (page 002,
/// "Access to data"), so under a [`NoteAuthorReading`] that does not find its author field a note
/// is credited to this agent instead of being refused. Fixed, so tests can assert it.
pub const DESKIE_API_STAFF_ID: i64 = 1;

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
