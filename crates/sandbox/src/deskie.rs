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
//! - `deskie/app.rs` (the emulator's state), `deskie/account.rs` (the data), `deskie/reply.rs`
//!   (answers, ids in paths), `deskie/shapes.rs` (answer JSON), `deskie/fields.rs` (lenient
//!   fields, times), `deskie/rules.rs` (rejections, attachment limits, sync channels).
//!
//! Vendor paths end in `.json` after an id (`cases/2000.json`, bulk `cases/2000,2001.json`),
//! which axum's path patterns cannot express (a parameter must fill its whole segment): those
//! routes capture the whole segment (`/api/cases/{case}`) and `deskie/reply.rs` reads the ids
//! out of it; a segment without `.json` where the vendor requires it is an unknown path.
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
//!   path a 404 `{"errors": {"path": "not found"}}`; both are charged like any request. `HEAD`
//!   is answered wherever `GET` is (axum's method routing), without a body, and costs 1.
//!
//! Where the pages are ambiguous, every plausible reading is offered ([`crate::Readings`], read
//! once per request): how `custom_fields[cf_N]` matches, the `from_time` / `to_time` format,
//! what an agent reply does to the status, which note field names the author (a note without it
//! is the API agent's, [`crate::config::DESKIE_API_STAFF_ID`]), synchronous custom channels (plain
//! `content` only), and whether `created_at` is kept.
//!
//! Faults beyond the plain ones: `delayed_apply` holds a write longer than the client waits, then
//! applies it in its own task (so a closed connection cannot cancel it) and journals it as
//! `"delayed"`; `deskie_429_retry_after` refuses every request with that `retry_after` and
//! `api_calls_left: 0`, uncharged; `other_consumer_spread` spends the other user's share evenly
//! over the window instead of at its start.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;

use reply::{unknown_path, wrong_method};

mod account;
mod app;
mod cases;
mod fields;
mod files;
mod gate;
mod manage;
mod messages;
mod notes;
mod payload;
mod reply;
mod rules;
mod search;
mod shapes;
mod users;

pub(crate) use app::Deskie;

/// The Deskie emulator's routes, layers and fallbacks, ready to serve.
pub(crate) fn router(app: std::sync::Arc<Deskie>) -> Router {
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
