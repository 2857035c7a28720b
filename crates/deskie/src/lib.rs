//! Client for the Deskie (target) API: exactly the requests the migration recipe needs.
//!
//! The importer writes every Desk360 ticket into Deskie as one case, the way Deskie's own
//! migration recipe says (`shared/api/003_*`): create the case through its channel, add each later
//! message as a customer or agent response (agents always with `do_not_send_email = true`), add
//! notes, then fix the final status/priority. It also reads cases and messages back, because
//! Deskie has no idempotency keys and the engine reconciles every uncertain write by reading first.
//!
//! The crate has three layers:
//! * [`requests`]: strict, `Serialize`-only request types whose JSON is exactly the recipe's
//!   field names, wrapped as the pages show (`{"case":{…}}`, `{"message":{…}}`, `{"note":{…}}`).
//! * [`responses`]: lenient response types (numbers as strings, nulls, PHP's `[]` for an empty
//!   map, unknown fields kept; read with `transport::lenient`) and the numbered-object list shape `{"0":{…},"total_count":N}`.
//! * [`DeskieClient`]: basic auth, weighted rate limiting through [`throttle`] (GET 1, writes 2,
//!   fed by `rate_limit_per_minute` / `api_calls_left` / `retry_after`), and a retry
//!   classification that never sends a write twice when its outcome is unknown
//!   ([`DeskieError::Ambiguous`]).
//!
//! It depends on no other project crate except `throttle` and `transport` (the HTTP plumbing
//! shared with the Desk360 client: error classes, retry safety, client builder, lenient serde
//! helpers), so it can be tested on its own.

mod client;
mod error;
mod manage;
mod plan;
pub mod requests;
pub mod responses;
mod time;
mod upload;

pub use client::{BULK_MAX, CaseLookup, DeskieClient, DeskieConfig, LOOKUP_MAX_PAGES};
pub use error::{DeskieError, ErrorClass, Result};
pub use manage::NoteAuthorField;
pub use plan::Plan;
pub use requests::{
    CasePriority, CaseQuery, CaseSort, CaseStatus, CaseUpdate, Content, NewCase, NewMessage,
    NewNote,
};
pub use responses::{Attachment, Case, CaseList, MessageInfo, MessageList, Numbered, UserInfo};
pub use time::{format_timestamp, parse_timestamp};
pub use upload::{FileSource, FileStream, OpenFile, UPLOAD_TIMEOUT, UploadFile};
