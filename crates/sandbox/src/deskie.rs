//! The Deskie emulator (vendor pages 000–003): basic auth, cases (create / list / view / update,
//! single and bulk, trash / spam / restore, permanent delete), messages (list / add / edit /
//! delete), notes, users (list / view / delete / block / restore), uploaded files served back,
//! the per-account weighted window, and the migration recipe's required fields enforced with 400s.
//!
//! One axum `Router` per resource, merged by [`router`]:
//! - `deskie/cases.rs` — create, list (filters in `deskie/search.rs`), view;
//! - `deskie/manage.rs` — update (single and bulk), trash / spam / restore, permanent delete;
//! - `deskie/messages.rs` — a case's messages: list, add, edit, delete;
//! - `deskie/notes.rs` — internal notes: add, edit, delete;
//! - `deskie/users.rs` — list, view, delete (disable), block, restore, permanent delete;
//! - `deskie/files.rs` — uploaded files read from multipart writes and served back;
//! - `deskie/gate.rs` — what every API request goes through once (auth, the weighted window,
//!   outage / 429 / 5xx / lost-response / delayed-apply faults, the journal, the rate headers),
//!   with `deskie/payload.rs` reading the write's body for it;
//! - `deskie/account.rs` (the data), `deskie/shapes.rs` (answer JSON), `deskie/fields.rs`
//!   (lenient fields, times), `deskie/rules.rs` (rejections, attachment limits, sync channels).
//!
//! Vendor paths end in `.json` after an id (`cases/2000.json`, bulk `cases/2000,2001.json`),
//! which axum's path patterns cannot express (a parameter must fill its whole segment): those
//! routes capture the whole segment (`/api/cases/{case}`) and [`case_ids`] / [`id_of`] read the
//! ids out of it; a segment without `.json` where the vendor requires it is an unknown path.
//!
//! Choices where the pages are silent (the importer must not depend on anything else):
//! - Error bodies are `{"errors": {"<field>": "<message>"}}` for every 4xx we produce.
//! - Unauthenticated requests (401) and outage answers (503 `deskie_down`) are not charged to the
//!   account budget (the caller is not identified / the service is down) but still carry the
//!   rate headers. 429s are not charged. Server-error faults (5xx) are charged: they happened
//!   behind the limiter.
//! - The recipe's `created_at` is required on case creation and on responses, optional on notes;
//!   accepted forms: RFC 2822 (what Deskie itself returns) and RFC 3339 with an offset. A naive
//!   `YYYY-MM-DD HH:MM:SS` (Desk360's form) is a 400: the zone would be a guess.
//! - Answers carry timestamps in RFC 2822 in the account offset +03:00.
//! - A customer message added to a `closed` or `waiting` case reopens it (`open`).
//! - `limit` above 100 is clamped to 100; `page` above 500 is a 400.
//! - A known path with a method it does not serve is a 405 `{"errors": {"method": …}}`; an unknown
//!   path a 404 `{"errors": {"path": "not found"}}`; both are charged like any request.
//!
//! Where the pages are ambiguous, every plausible reading is offered ([`crate::Readings`], read
//! once per request): how `custom_fields[cf_N]` matches, the `from_time` / `to_time` format,
//! what an agent reply does to the status, which note field names the author (a note without it
//! is the API agent's, [`crate::DESKIE_API_STAFF_ID`]), synchronous custom channels (plain
//! `content` only), and whether `created_at` is kept.
//!
//! Faults beyond the plain ones: `delayed_apply` holds a write longer than the client waits, then
//! applies it in its own task (so a closed connection cannot cancel it) and journals it as
//! `"delayed"`; `deskie_429_retry_after` refuses every request with that `retry_after` and
//! `api_calls_left: 0`, uncharged; `other_consumer_spread` spends the other user's share evenly
//! over the window instead of at its start.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{Response, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::DeskieSnapshot;
use crate::respond::{Faulted, json_response};
use crate::state::{Shared, Window, lock};

mod account;
mod cases;
mod fields;
mod files;
mod gate;
mod manage;
mod messages;
mod notes;
mod payload;
mod rules;
mod search;
mod shapes;
mod users;

/// Page 001: "The maximum size of a single file is 25MB".
const MAX_FILE: u64 = 25 * 1024 * 1024;
/// Page 001: "the total size of all files … should not exceed 50MB".
const MAX_REQUEST: u64 = 50 * 1024 * 1024;
/// The account's time-zone offset, used for every timestamp Deskie answers with.
const ACCOUNT_OFFSET_HOURS: i8 = 3;

/// The Deskie emulator's state: the shared sandbox state, the account's weighted window, the
/// `delayed_apply` bookkeeping and the account's data. The routers' state is an `Arc` of it.
pub(crate) struct Deskie {
    shared: Arc<Shared>,
    /// The account's fixed window (page 002: a budget per account, GET 1, writes 2).
    window: Mutex<Window>,
    /// Tickets whose first write carrying content was already held by `delayed_apply`.
    delayed_tickets: Mutex<BTreeSet<(i64, i64)>>,
    account: Mutex<account::Account>,
}

/// What every Deskie handler and layer is given.
type App = Arc<Deskie>;

impl Deskie {
    /// An empty account with a fresh window.
    pub fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            window: Mutex::new(Window {
                index: u64::MAX,
                used: 0,
            }),
            delayed_tickets: Mutex::new(BTreeSet::new()),
            account: Mutex::new(account::Account::new()),
        }
    }

    /// [`crate::Sandbox::deskie_snapshot`]: the full account.
    pub fn snapshot(&self) -> DeskieSnapshot {
        lock(&self.account).snapshot()
    }
}

/// The Deskie emulator's routes, layers and fallbacks, ready to serve.
pub(crate) fn router(app: App) -> Router {
    // Several resources answer on the same path with different methods (`/api/cases/{case}`:
    // view in cases.rs, update / delete in manage.rs): axum merges their method routers.
    let api = Router::new()
        .merge(cases::routes())
        .merge(manage::routes())
        .merge(messages::routes())
        .merge(notes::routes())
        .merge(users::routes())
        .fallback(unknown_path)
        .method_not_allowed_fallback(wrong_method)
        .layer(from_fn_with_state(app.clone(), gate::gate));
    // Files are fetched outside the API: not charged, not rate limited (deskie/files.rs).
    // No framework limit on Deskie bodies: JSON is read up to MAX_BODY by the gate, and
    // multipart files are streamed and counted (kept only within 25 MB a file, 50 MB a
    // request), so an oversized upload is a 400 naming the file, not a cut connection.
    api.merge(files::routes())
        .layer(DefaultBodyLimit::disable())
        .with_state(app)
}

/// What a Deskie handler decides: a status, a JSON body, and the journal fault behind it.
type Answer = (StatusCode, Value, Option<&'static str>);

/// An [`Answer`] as a response: the JSON body, the fault in the response's extensions for the
/// gate's journal.
struct Reply(Answer);

impl IntoResponse for Reply {
    fn into_response(self) -> Response<Body> {
        let (status, body, fault) = self.0;
        Faulted(json_response(status, &body), fault).into_response()
    }
}

fn err(status: StatusCode, field: &str, message: impl Into<String>) -> Answer {
    (status, json!({"errors": {field: message.into()}}), None)
}

fn bad(field: &str, message: impl Into<String>) -> Answer {
    err(StatusCode::BAD_REQUEST, field, message)
}

fn not_found(what: &str) -> Answer {
    err(StatusCode::NOT_FOUND, what, "not found")
}

async fn unknown_path() -> Reply {
    Reply(not_found("path"))
}

async fn wrong_method() -> Reply {
    Reply(err(
        StatusCode::METHOD_NOT_ALLOWED,
        "method",
        "not allowed for this path",
    ))
}

/// The id of a path segment, `.json` suffix optional (`2000.json` or `2000`).
fn id_of(segment: &str) -> Option<i64> {
    segment
        .strip_suffix(".json")
        .unwrap_or(segment)
        .parse::<i64>()
        .ok()
}

/// The case ids of a `/api/cases/{case}` segment, which must end in `.json` (`2000.json`, or
/// the bulk form `2000,2001.json`): without it the path is unknown (404 `path`); with an id that
/// is not an integer, the case is (404 `case`). Repeated ids count once, first place kept.
fn case_ids(segment: &str) -> Result<Vec<i64>, Answer> {
    if !segment.ends_with(".json") {
        return Err(not_found("path"));
    }
    manage::parse_ids(segment).ok_or_else(|| not_found("case"))
}
