//! The Deskie emulator (vendor pages 000–003): basic auth, cases (create / list / view / update,
//! single and bulk, trash / spam / restore, permanent delete), messages (list / add / edit /
//! delete), notes, users (list / view / delete / block / restore), uploaded files served back,
//! the per-account weighted window, and the migration recipe's required fields enforced with 400s.
//! Case and user management lives in `deskie/manage.rs`, uploaded files in `deskie/files.rs`.
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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{Method, Response, StatusCode};
use base64::Engine as _;
use jiff::Timestamp;
use jiff::tz::{Offset, TimeZone};
use serde_json::{Map, Value, json};

use crate::server::{
    Shared, Window, dropped_response, entry_for, json_response, lock, proxy_error_page, set_header,
};
use crate::{
    AgentReplyReading, CaseSnapshot, DeskieSnapshot, FileSnapshot, MessageSnapshot,
    NoteAuthorReading, Readings, SearchReading, Server, TimeFilterReading, UserSnapshot,
    parse_refs,
};

mod files;
mod manage;

const MAX_FILE: u64 = 25 * 1024 * 1024;
const MAX_REQUEST: u64 = 50 * 1024 * 1024;
/// The account's time-zone offset, used for every timestamp Deskie answers with.
const ACCOUNT_OFFSET_HOURS: i8 = 3;

#[derive(Debug, Clone)]
struct Attachment {
    /// Unique in the account; answered as `file_id`.
    file_id: i64,
    name: String,
    size: u64,
    /// As recorded in the snapshot's `attachment_urls`: the URL sent, or `multipart:<name>`.
    url: String,
    /// The URL answered: the URL sent, or where the emulator serves the uploaded bytes.
    link: String,
    /// The uploaded file (multipart writes only).
    upload: Option<files::Upload>,
}

#[derive(Debug, Clone)]
struct Message {
    message_id: i64,
    user_id: i64,
    staff_id: i64,
    content: String,
    content_html: String,
    note: bool,
    created_at: Timestamp,
    attachments: Vec<Attachment>,
    customer_emailed: bool,
}

#[derive(Debug, Clone)]
struct Case {
    case_id: i64,
    case_number: String,
    user_id: i64,
    channel: String,
    subject: String,
    status: String,
    priority: String,
    staff_id: i64,
    group_id: Option<i64>,
    initiator_id: Option<i64>,
    case_email_id: Option<i64>,
    custom_fields: BTreeMap<String, Value>,
    labels: Vec<i64>,
    language_id: i64,
    recipient: String,
    created_at: Timestamp,
    updated_at: Timestamp,
    messages: Vec<Message>,
    source_ticket: Option<(i64, i64)>,
    /// In the trash (`deleted` in the answers).
    trashed: bool,
    /// In the spam filter.
    spam: bool,
    /// Deleted permanently: kept only so ids stay positions; invisible everywhere.
    purged: bool,
}

#[derive(Debug, Clone)]
struct User {
    user_id: i64,
    kind: String,
    email: Option<String>,
    phone: Option<String>,
    custom_id: Option<String>,
    full_name: Option<String>,
    created_at: Timestamp,
    updated_at: Timestamp,
    /// In the "Deleted" list (page 000, "Delete a user"); restorable.
    deleted: bool,
    /// `false` once blocked.
    active: bool,
    /// Deleted permanently: invisible everywhere.
    purged: bool,
}

/// The Deskie account: its rate window and its data.
#[derive(Debug)]
pub(crate) struct DeskieState {
    window: Window,
    cases: Vec<Case>,
    users: Vec<User>,
    users_by_key: HashMap<(String, String), usize>,
    next_message_id: i64,
    /// Uploaded file id → (case id, message id), to serve it.
    file_index: HashMap<i64, (i64, i64)>,
    next_file_id: i64,
    /// Tickets whose first write carrying content was already held by `delayed_apply`.
    delayed_tickets: BTreeSet<(i64, i64)>,
}

const FIRST_CASE_ID: i64 = 2000;
const FIRST_USER_ID: i64 = 100;

impl DeskieState {
    pub(crate) fn new() -> Self {
        Self {
            window: Window {
                index: u64::MAX,
                used: 0,
            },
            cases: Vec::new(),
            users: Vec::new(),
            users_by_key: HashMap::new(),
            next_message_id: 200_000,
            file_index: HashMap::new(),
            next_file_id: 300_000,
            delayed_tickets: BTreeSet::new(),
        }
    }

    /// A case that exists (not permanently deleted).
    fn case_mut(&mut self, id: i64) -> Option<&mut Case> {
        let i = usize::try_from(id.checked_sub(FIRST_CASE_ID)?).ok()?;
        self.cases.get_mut(i).filter(|c| !c.purged)
    }

    /// Records where the uploaded files of a message just stored live, so they can be served.
    fn index_files(&mut self, case_id: i64, message: &Message) {
        for a in message.attachments.iter().filter(|a| a.upload.is_some()) {
            self.file_index
                .insert(a.file_id, (case_id, message.message_id));
        }
    }

    /// A user that exists (not permanently deleted).
    fn user_mut(&mut self, id: i64) -> Option<&mut User> {
        let i = usize::try_from(id.checked_sub(FIRST_USER_ID)?).ok()?;
        self.users.get_mut(i).filter(|u| !u.purged)
    }

    pub(crate) fn snapshot(&self) -> DeskieSnapshot {
        let cases: Vec<CaseSnapshot> = self
            .cases
            .iter()
            .filter(|c| !c.purged)
            .map(|c| CaseSnapshot {
                case_id: c.case_id,
                case_number: c.case_number.clone(),
                user_id: c.user_id,
                channel: c.channel.clone(),
                subject: c.subject.clone(),
                status: c.status.clone(),
                priority: c.priority.clone(),
                staff_id: c.staff_id,
                group_id: c.group_id,
                initiator_id: c.initiator_id,
                case_email_id: c.case_email_id,
                custom_fields: c.custom_fields.clone(),
                labels: c.labels.clone(),
                created_at: c.created_at.to_string(),
                messages: ordered(&c.messages)
                    .into_iter()
                    .map(|m| MessageSnapshot {
                        message_id: m.message_id,
                        user_id: m.user_id,
                        staff_id: m.staff_id,
                        content: m.content.clone(),
                        content_html: m.content_html.clone(),
                        note: m.note,
                        created_at: m.created_at.to_string(),
                        attachment_urls: m.attachments.iter().map(|a| a.url.clone()).collect(),
                        files: m
                            .attachments
                            .iter()
                            .filter_map(|a| {
                                a.upload.as_ref().map(|u| FileSnapshot {
                                    name: u.name.clone(),
                                    size: u.size,
                                    sha256: u.sha256.clone(),
                                    url: a.link.clone(),
                                })
                            })
                            .collect(),
                        customer_emailed: m.customer_emailed,
                    })
                    .collect(),
                source_ticket: c.source_ticket,
                deleted: c.trashed,
                spam: c.spam,
            })
            .collect();
        let customer_emailed = cases
            .iter()
            .flat_map(|c| &c.messages)
            .filter(|m| m.customer_emailed)
            .count();
        DeskieSnapshot {
            cases,
            users: self
                .users
                .iter()
                .filter(|u| !u.purged)
                .map(|u| UserSnapshot {
                    user_id: u.user_id,
                    kind: u.kind.clone(),
                    email: u.email.clone(),
                    phone: u.phone.clone(),
                    custom_id: u.custom_id.clone(),
                    full_name: u.full_name.clone(),
                    deleted: u.deleted,
                    active: u.active,
                })
                .collect(),
            customer_emailed,
        }
    }
}

/// Messages in Deskie order: by created_at, then arrival.
fn ordered(messages: &[Message]) -> Vec<&Message> {
    let mut v: Vec<&Message> = messages.iter().collect();
    v.sort_by_key(|m| (m.created_at, m.message_id));
    v
}

fn fmt_time(ts: Timestamp) -> String {
    let tz = TimeZone::fixed(Offset::constant(ACCOUNT_OFFSET_HOURS));
    // PHP's `date('r')` form, as the pages show it: zero-padded day (`Mon, 05 May 2014 …`).
    ts.to_zoned_datetime(tz)
        .strftime("%a, %d %b %Y %H:%M:%S %z")
        .to_string()
}

/// The `created_at` a write stores: the one sent (required on cases and responses by the recipe,
/// optional on notes: absent means now), or the server's now under `ignores_created_at`, which
/// neither requires nor reads the field (a reading `preflight` must detect).
fn incoming_time(
    readings: &Readings,
    o: &Map<String, Value>,
    required: bool,
) -> Result<Timestamp, Answer> {
    if readings.ignores_created_at {
        return Ok(Timestamp::now());
    }
    match get_str(o, "created_at") {
        None if required => Err(bad("created_at", "is required")),
        None => Ok(Timestamp::now()),
        Some(raw) => parse_time(raw).ok_or_else(|| {
            bad(
                "created_at",
                format!(
                    "cannot parse {raw:?}: use RFC 2822 (Mon, 05 May 2014 00:15:17 +0300) or RFC 3339"
                ),
            )
        }),
    }
}

/// Parses an incoming `created_at`: RFC 2822 or RFC 3339 (with an offset); anything else fails.
fn parse_time(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if let Ok(z) = jiff::fmt::rfc2822::parse(s) {
        return Some(z.timestamp());
    }
    s.parse::<Timestamp>().ok()
}

// ---------------------------------------------------------------------------------------------
// Request plumbing

type Answer = (StatusCode, Value, Option<&'static str>);

fn err(status: StatusCode, field: &str, message: impl Into<String>) -> Answer {
    (status, json!({"errors": {field: message.into()}}), None)
}

fn bad(field: &str, message: impl Into<String>) -> Answer {
    err(StatusCode::BAD_REQUEST, field, message)
}

fn not_found(what: &str) -> Answer {
    err(StatusCode::NOT_FOUND, what, "not found")
}

/// Entry point of every Deskie request.
pub(crate) async fn entry(State(shared): State<Arc<Shared>>, req: Request) -> Response<Body> {
    let is_write = matches!(*req.method(), Method::POST | Method::PUT | Method::DELETE);
    let cost = if is_write { 2 } else { 1 };
    let mut journal = entry_for(Server::Deskie, &req, cost);
    shared.delay().await;
    let faults = shared.faults();
    // One reading per request: a switch made while the request runs applies to the next one.
    let readings = shared.readings();
    let limit = shared.config.deskie_limit;

    let authorized = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .is_some_and(|pair| {
            pair == format!(
                "{}:{}",
                shared.credentials.deskie_staff_email, shared.credentials.deskie_api_key
            )
        });

    // Files are fetched outside the API: not charged, not rate limited (deskie/files.rs).
    if req.method() == Method::GET && req.uri().path().starts_with("/files/") {
        return files::serve(&shared, &req, authorized);
    }

    // Charge the window (or refuse) before anything is applied.
    let (index, left) = shared.window_now();
    let storm = faults.deskie_429_retry_after;
    let charge = authorized && !faults.deskie_down && storm.is_none();
    let (allowed, left_units) = {
        let other_share = faults.other_consumer_share.clamp(0.0, 1.0) * f64::from(limit);
        let mut st = lock(&shared.deskie);
        if st.window.index != index {
            // The other user spends its share at the window start, or (spread) evenly over it:
            // then `used` counts only our own units and the other's are added as time passes.
            let at_start = if faults.other_consumer_spread {
                0.0
            } else {
                other_share.floor()
            };
            st.window = Window {
                index,
                used: at_start as u32,
            };
        }
        let other_now = if faults.other_consumer_spread {
            let window = shared.config.window.as_secs_f64().max(1e-9);
            let elapsed = (1.0 - left.as_secs_f64() / window).clamp(0.0, 1.0);
            (other_share * elapsed).floor() as u32
        } else {
            0
        };
        let fits = st
            .window
            .used
            .saturating_add(other_now)
            .saturating_add(cost)
            <= limit;
        if charge && fits {
            st.window.used += cost;
        }
        let left_units = if storm.is_some() {
            0
        } else {
            limit.saturating_sub(st.window.used.saturating_add(other_now))
        };
        (fits || !charge, left_units)
    };

    let mut dropped = false;
    let mut journaled = false;
    let (status, body, fault) = if faults.deskie_down {
        // An outage looks like the proxy's page, not like an API answer.
        (StatusCode::SERVICE_UNAVAILABLE, Value::Null, Some("down"))
    } else if storm.is_some() {
        // A 429 storm: everything is refused, nothing is charged.
        (
            StatusCode::TOO_MANY_REQUESTS,
            json!({"errors": {"rate_limit": "429 Too Many Requests"}}),
            Some("rate_limited"),
        )
    } else if !authorized {
        (
            StatusCode::UNAUTHORIZED,
            json!({"errors": {"authorization": "invalid staff_email or api_key"}}),
            None,
        )
    } else if !allowed {
        (
            StatusCode::TOO_MANY_REQUESTS,
            json!({"errors": {"rate_limit": "429 Too Many Requests"}}),
            Some("rate_limited"),
        )
    } else if shared.chance(faults.server_error_rate) {
        let status = shared.pick_5xx();
        let body = if status == StatusCode::INTERNAL_SERVER_ERROR {
            json!({"errors": {"server": "internal error"}})
        } else {
            Value::Null // 502/503: the proxy's HTML page
        };
        (status, body, Some("5xx"))
    } else {
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let query = req.uri().query().unwrap_or("").to_owned();
        let payload = if method == Method::GET {
            Ok((Value::Null, Vec::new()))
        } else {
            read_payload(req).await
        };
        let delay = match &payload {
            Ok((payload, _)) if is_write => delayed(&shared, &faults, payload),
            _ => None,
        };
        match (payload, delay) {
            (Err(a), _) => a,
            (Ok((payload, uploads)), Some(delay)) => {
                // Held past the client's timeout, then applied, then answered (to a socket the
                // client has probably closed): the work runs in its own task so that a dropped
                // connection cannot cancel it, and it journals itself.
                journaled = true;
                let task = {
                    let shared = shared.clone();
                    let (faults, readings) = (faults.clone(), readings.clone());
                    let mut journal = journal.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        let answer = {
                            let mut st = lock(&shared.deskie);
                            let request = Incoming {
                                method: &method,
                                path: &path,
                                query: &query,
                                payload,
                                uploads: &uploads,
                            };
                            dispatch(&shared, &faults, &readings, &mut st, request)
                        };
                        journal.status = answer.0.as_u16();
                        journal.fault = Some("delayed".into());
                        shared.record(journal);
                        answer
                    })
                };
                match task.await {
                    Ok((status, body, _)) => (status, body, Some("delayed")),
                    Err(_) => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        json!({"errors": {"server": "internal error"}}),
                        Some("delayed"),
                    ),
                }
            }
            (Ok((payload, uploads)), None) => {
                let answer = {
                    let mut st = lock(&shared.deskie);
                    let request = Incoming {
                        method: &method,
                        path: &path,
                        query: &query,
                        payload,
                        uploads: &uploads,
                    };
                    dispatch(&shared, &faults, &readings, &mut st, request)
                };
                if is_write && answer.0.is_success() && shared.chance(faults.drop_after_commit_rate)
                {
                    dropped = true;
                }
                answer
            }
        }
    };

    let mut resp = if dropped {
        dropped_response()
    } else if body.is_null() && status.is_server_error() {
        proxy_error_page(status)
    } else {
        json_response(status, &body)
    };
    set_header(&mut resp, "rate_limit_per_minute", &limit.to_string());
    set_header(&mut resp, "api_calls_left", &left_units.to_string());
    set_header(
        &mut resp,
        "retry_after",
        &shared.fmt_secs(storm.unwrap_or(left)),
    );
    if !journaled {
        journal.status = if dropped { 0 } else { status.as_u16() };
        journal.fault = if dropped {
            Some("dropped".into())
        } else {
            fault.map(str::to_owned)
        };
        shared.record(journal);
    }
    resp
}

/// Whether the `delayed_apply` fault holds this write, and for how long: the first write
/// carrying content (a `ref:` marker in `content`, `content_html` or `subject`) of each listed
/// ticket, then a drawn share of the other writes.
fn delayed(shared: &Shared, faults: &crate::Faults, payload: &Value) -> Option<Duration> {
    let d = faults.delayed_apply.as_ref()?;
    let tickets: Vec<(i64, i64)> = payload
        .as_object()
        .into_iter()
        .flat_map(|root| root.values())
        .filter_map(Value::as_object)
        .flat_map(|o| {
            ["content", "content_html", "subject"]
                .into_iter()
                .filter_map(|k| o.get(k).and_then(Value::as_str))
                .collect::<Vec<_>>()
        })
        .flat_map(parse_refs)
        .map(|(p, t, _)| (p, t))
        .filter(|key| d.tickets.contains(key))
        .collect();
    if !tickets.is_empty() {
        let mut st = lock(&shared.deskie);
        let mut first = false;
        for key in tickets {
            first |= st.delayed_tickets.insert(key);
        }
        if first {
            return Some(d.delay);
        }
        drop(st);
    }
    shared.chance(d.share).then_some(d.delay)
}

/// Reads a write's body: JSON, or multipart form fields `case[field]`, `message[...]`,
/// `note[...]` (nested into the same JSON shape) and files, returned beside it in part order.
async fn read_payload(req: Request) -> Result<(Value, Vec<files::Upload>), Answer> {
    let is_multipart = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("multipart/form-data"));
    if is_multipart {
        let mut mp = Multipart::from_request(req, &())
            .await
            .map_err(|e| bad("body", format!("invalid multipart body: {e}")))?;
        let mut root = Value::Object(Map::new());
        let mut uploads = Vec::new();
        let mut kept = 0u64;
        loop {
            let field = match mp.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => return Err(bad("body", format!("invalid multipart body: {e}"))),
            };
            let name = field.name().unwrap_or_default().to_owned();
            if let Some(file_name) = field.file_name().map(str::to_owned) {
                uploads.push(files::read_upload(field, file_name, &mut kept).await?);
            } else {
                let text = field
                    .text()
                    .await
                    .map_err(|e| bad("body", format!("invalid multipart body: {e}")))?;
                insert_path(&mut root, &bracket_path(&name), Value::String(text));
            }
        }
        return Ok((root, uploads));
    }
    let bytes = axum::body::to_bytes(req.into_body(), crate::server::MAX_BODY)
        .await
        .map_err(|e| bad("body", format!("unreadable body: {e}")))?;
    if bytes.is_empty() {
        return Ok((json!({}), Vec::new()));
    }
    serde_json::from_slice(&bytes)
        .map(|v| (v, Vec::new()))
        .map_err(|e| bad("body", format!("invalid JSON: {e}")))
}

/// `case[custom_fields][cf_1]` → `["case", "custom_fields", "cf_1"]`; `x[]` ends with `""`.
fn bracket_path(name: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let (head, mut rest) = match name.find('[') {
        Some(i) => (&name[..i], &name[i..]),
        None => (name, ""),
    };
    parts.push(head.to_owned());
    while let Some(stripped) = rest.strip_prefix('[') {
        match stripped.find(']') {
            Some(end) => {
                parts.push(stripped[..end].to_owned());
                rest = &stripped[end + 1..];
            }
            None => break,
        }
    }
    parts
}

fn insert_path(root: &mut Value, parts: &[String], value: Value) {
    let Some((first, rest)) = parts.split_first() else {
        return;
    };
    if first.is_empty() {
        if !root.is_array() {
            *root = json!([]);
        }
        if let Value::Array(a) = root {
            if rest.is_empty() {
                a.push(value);
            } else {
                let mut child = json!({});
                insert_path(&mut child, rest, value);
                a.push(child);
            }
        }
        return;
    }
    if !root.is_object() {
        *root = json!({});
    }
    if let Value::Object(m) = root {
        if rest.is_empty() {
            m.insert(first.clone(), value);
        } else {
            let child = m.entry(first.clone()).or_insert(Value::Null);
            insert_path(child, rest, value);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Field helpers (lenient: multipart sends every value as a string)

fn get_str<'a>(o: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    o.get(k)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

fn get_int(o: &Map<String, Value>, k: &str) -> Result<Option<i64>, Answer> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| bad(k, "must be an integer")),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| bad(k, "must be an integer")),
        Some(_) => Err(bad(k, "must be an integer")),
    }
}

fn get_bool(o: &Map<String, Value>, k: &str) -> bool {
    match o.get(k) {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        Some(Value::String(s)) => matches!(s.trim(), "true" | "1" | "on" | "yes"),
        _ => false,
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn int_list(v: Option<&Value>) -> Vec<i64> {
    let one = |v: &Value| match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(one).collect(),
        Some(Value::Object(m)) => m.values().filter_map(one).collect(),
        Some(other) => one(other).into_iter().collect(),
        None => Vec::new(),
    }
}

fn url_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::Object(m)) => m
            .values()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

const STATUSES: [&str; 3] = ["open", "waiting", "closed"];
const PRIORITIES: [&str; 4] = ["low", "normal", "high", "critical"];

fn check_enum(o: &Map<String, Value>, k: &str, allowed: &[&str]) -> Result<Option<String>, Answer> {
    match get_str(o, k) {
        None => Ok(None),
        Some(s) if allowed.contains(&s) => Ok(Some(s.to_owned())),
        Some(_) => Err(bad(k, format!("must be one of {}", allowed.join(", ")))),
    }
}

/// Applies the `reject_*` faults to the content a write carries.
fn check_rejections(
    faults: &crate::Faults,
    o: &Map<String, Value>,
    case_origin: Option<(i64, i64)>,
) -> Result<(), Answer> {
    let rejected = |p: i64, t: i64| {
        (
            StatusCode::BAD_REQUEST,
            json!({"errors": {"content": format!("rejected by the service (sandbox fault for ticket {p}/{t})")}}),
            Some("rejected"),
        )
    };
    if let Some((p, t)) = case_origin
        && faults.reject_tickets.contains(&(p, t))
    {
        return Err(rejected(p, t));
    }
    if faults.reject_tickets.is_empty() && faults.reject_messages.is_empty() {
        return Ok(());
    }
    for key in ["content", "content_html", "subject"] {
        if let Some(text) = o.get(key).and_then(Value::as_str) {
            for (p, t, m) in parse_refs(text) {
                if faults.reject_tickets.contains(&(p, t))
                    || faults.reject_messages.contains(&(p, t, m))
                {
                    return Err(rejected(p, t));
                }
            }
        }
    }
    Ok(())
}

/// The attachments of a write: `attachment_urls` (sizes known from the dataset for sandbox URLs)
/// then the uploaded files, each with a new file id; refused with a 400 naming the file when one
/// passes 25 MB or the request's files pass 50 MB (page 001, "Create a case with attachments").
fn attachments(
    shared: &Shared,
    st: &mut DeskieState,
    o: &Map<String, Value>,
    uploads: &[files::Upload],
) -> Result<Vec<Attachment>, Answer> {
    let mut out = Vec::new();
    for url in url_list(o.get("attachment_urls")) {
        let size = shared.dataset().attachment_size(&url);
        let name = url.rsplit('/').next().unwrap_or_default().to_owned();
        out.push(Attachment {
            file_id: 0,
            name,
            size: size.unwrap_or(0),
            link: url.clone(),
            url,
            upload: None,
        });
    }
    for u in uploads {
        out.push(Attachment {
            file_id: 0,
            url: format!("multipart:{}", u.name),
            link: String::new(),
            name: u.name.clone(),
            size: u.size,
            upload: Some(u.clone()),
        });
    }
    for a in &out {
        if a.size > MAX_FILE {
            return Err(bad(
                "attachments",
                format!(
                    "{} is {} bytes; the maximum size of a single file is 25MB",
                    a.name, a.size
                ),
            ));
        }
    }
    let mut total = 0u64;
    for a in &out {
        total += a.size;
        if total > MAX_REQUEST {
            return Err(bad(
                "attachments",
                format!(
                    "{} brings the total size of all files to {total} bytes; it should not exceed 50MB",
                    a.name
                ),
            ));
        }
    }
    for a in &mut out {
        a.file_id = st.next_file_id;
        st.next_file_id += 1;
        if a.upload.is_some() {
            a.link = files::file_url(shared, a.file_id);
        }
    }
    Ok(out)
}

/// Whether a case channel (`custom:<id>`) is a synchronous custom channel under the readings.
fn is_sync_channel(readings: &Readings, channel: &str) -> bool {
    channel
        .strip_prefix("custom:")
        .and_then(|id| id.trim().parse::<i64>().ok())
        .is_some_and(|id| readings.sync_custom_channels.contains(&id))
}

/// Recipe 003 §3.1/§3.2: a synchronous custom channel takes plain `content` "(or content for a
/// custom channel of synchronous type)" in place of `content_html`; we read "in place of" as
/// strict: HTML there is refused with a 400 naming `content_html`, and `content` is required.
fn check_sync_content(o: &Map<String, Value>) -> Result<(), Answer> {
    if o.get("content_html")
        .map(value_text)
        .is_some_and(|h| !h.trim().is_empty())
    {
        return Err(bad(
            "content_html",
            "is not accepted by a synchronous custom channel: send plain content",
        ));
    }
    if get_str(o, "content").is_none() {
        return Err(bad(
            "content",
            "is required for a synchronous custom channel",
        ));
    }
    Ok(())
}

fn content_of(o: &Map<String, Value>) -> (String, String) {
    (
        o.get("content").map(value_text).unwrap_or_default(),
        o.get("content_html").map(value_text).unwrap_or_default(),
    )
}

// ---------------------------------------------------------------------------------------------
// Routing

/// One request as the handlers see it, once its body is read.
struct Incoming<'a> {
    method: &'a Method,
    path: &'a str,
    query: &'a str,
    payload: Value,
    uploads: &'a [files::Upload],
}

fn dispatch(
    shared: &Shared,
    faults: &crate::Faults,
    readings: &Readings,
    st: &mut DeskieState,
    request: Incoming<'_>,
) -> Answer {
    let Incoming {
        method,
        path,
        query,
        payload,
        uploads,
    } = request;
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let id_of = |s: &str| s.strip_suffix(".json").unwrap_or(s).parse::<i64>().ok();
    let wrong_method = || {
        err(
            StatusCode::METHOD_NOT_ALLOWED,
            "method",
            "not allowed for this path",
        )
    };
    match segments.as_slice() {
        ["api", "cases.json"] => match *method {
            Method::GET => list_cases(readings, st, query),
            Method::POST => create_case(shared, faults, readings, st, payload, uploads),
            _ => wrong_method(),
        },
        ["api", "cases", ids] if ids.ends_with(".json") => {
            let Some(ids) = manage::parse_ids(ids) else {
                return not_found("case");
            };
            match (method.clone(), ids.as_slice()) {
                (Method::GET, [id]) => match st.case_mut(*id) {
                    Some(c) => (StatusCode::OK, json!({"case": case_json(c)}), None),
                    None => not_found("case"),
                },
                (Method::GET, _) => not_found("case"),
                (Method::PUT, [id]) => manage::update_case(faults, st, *id, &payload),
                (Method::PUT, ids) => manage::update_cases(faults, st, ids, &payload),
                (Method::DELETE, ids) => manage::delete_cases(faults, st, ids),
                _ => wrong_method(),
            }
        }
        [
            "api",
            "cases",
            ids,
            action @ ("trash.json" | "spam.json" | "restore.json"),
        ] => {
            let Some(ids) = manage::parse_ids(ids) else {
                return not_found("case");
            };
            let to = match *action {
                "trash.json" => manage::Move::Trash,
                "spam.json" => manage::Move::Spam,
                _ => manage::Move::Restore,
            };
            match *method {
                Method::PUT => manage::move_cases(faults, st, &ids, to),
                _ => wrong_method(),
            }
        }
        ["api", "cases", id, "messages.json"] => {
            let Some(id) = id_of(id) else {
                return not_found("case");
            };
            match *method {
                Method::GET => list_messages(st, id, query),
                Method::POST => add_message(shared, faults, readings, st, id, payload, uploads),
                _ => wrong_method(),
            }
        }
        ["api", "cases", id, "note.json"] => {
            let Some(id) = id_of(id) else {
                return not_found("case");
            };
            match *method {
                Method::POST => add_note(shared, faults, readings, st, id, payload, uploads),
                _ => wrong_method(),
            }
        }
        ["api", "cases", id, kind @ ("messages" | "note"), message_id] => {
            let (Some(id), Some(message_id)) = (id_of(id), id_of(message_id)) else {
                return not_found("message");
            };
            let notes_only = *kind == "note";
            match *method {
                Method::PUT if faults.edits_unavailable => {
                    (StatusCode::SERVICE_UNAVAILABLE, Value::Null, Some("down"))
                }
                Method::PUT => {
                    edit_message(faults, readings, st, id, message_id, notes_only, &payload)
                }
                Method::DELETE => delete_message(faults, st, id, message_id, notes_only),
                _ => wrong_method(),
            }
        }
        ["api", "users.json"] => match *method {
            Method::GET => list_users(st, query),
            _ => wrong_method(),
        },
        ["api", "users", id] if id.ends_with(".json") => {
            let Some(id) = id_of(id) else {
                return not_found("user");
            };
            match *method {
                Method::GET => match st.user_mut(id) {
                    Some(u) => (StatusCode::OK, json!({"user": user_json(u)}), None),
                    None => not_found("user"),
                },
                Method::DELETE => manage::delete_user(st, id),
                _ => wrong_method(),
            }
        }
        [
            "api",
            "users",
            id,
            action @ ("disable.json" | "block.json" | "restore.json"),
        ] => {
            let Some(id) = id_of(id) else {
                return not_found("user");
            };
            let action = match *action {
                "disable.json" => manage::UserAction::Disable,
                "block.json" => manage::UserAction::Block,
                _ => manage::UserAction::Restore,
            };
            match *method {
                Method::PUT => manage::act_on_user(st, id, action),
                _ => wrong_method(),
            }
        }
        _ => not_found("path"),
    }
}

// ---------------------------------------------------------------------------------------------
// JSON shapes

fn case_json(c: &Case) -> Value {
    let closed = c.status == "closed";
    json!({
        "case_id": c.case_id,
        "case_number": c.case_number,
        "subject": c.subject,
        "user_id": c.user_id,
        "staff_id": c.staff_id,
        "group_id": c.group_id.unwrap_or(0),
        "status": c.status,
        "priority": c.priority,
        "channel": c.channel,
        "recipient": c.recipient,
        "recipient_cc": "",
        "recipient_bcc": "",
        "deleted": c.trashed,
        "spam": c.spam,
        "created_at": fmt_time(c.created_at),
        "updated_at": fmt_time(c.updated_at),
        "closed_at": if closed { fmt_time(c.updated_at) } else { "-".to_owned() },
        "language_id": c.language_id,
        "custom_fields": c.custom_fields,
        "labels": c.labels,
        "locked_labels": [],
        "closing_speed": if closed { json!(0) } else { json!("-") },
    })
}

fn message_json(m: &Message) -> Value {
    json!({
        "message_id": m.message_id,
        "user_id": m.user_id,
        "staff_id": m.staff_id,
        "content": m.content,
        "content_html": m.content_html,
        "attachments": m.attachments.iter().map(|a| json!({
            "file_id": a.file_id,
            "file_name": a.name,
            "file_size": a.size,
            "mime_type": a.upload.as_ref().map_or("application/octet-stream", |u| u.mime.as_str()),
            "url": a.link,
        })).collect::<Vec<_>>(),
        "note": m.note,
        "sent_via_rule": false,
        "created_at": fmt_time(m.created_at),
        "sent_at": fmt_time(m.created_at),
    })
}

fn user_json(u: &User) -> Value {
    let mut v = json!({
        "user_id": u.user_id,
        "user_full_name": u.full_name.clone().unwrap_or_default(),
        "company_name": "",
        "company_position": "",
        "thumbnail": "",
        "confirmed": false,
        "active": u.active,
        "deleted": u.deleted,
        "created_at": fmt_time(u.created_at),
        "updated_at": fmt_time(u.updated_at),
        "type": u.kind,
        "language_id": 1,
        "custom_fields": {},
    });
    if let Value::Object(m) = &mut v {
        if let Some(e) = &u.email {
            m.insert("user_email".into(), json!(e));
        }
        if let Some(p) = &u.phone {
            m.insert("user_phone".into(), json!(p));
        }
        if let Some(c) = &u.custom_id {
            m.insert("user_custom_id".into(), json!(c));
        }
    }
    v
}

/// The documented list shape: `{"0": {"case": …}, "1": …, "total_count": N}`.
fn numbered(key: &str, items: Vec<Value>, total: usize) -> Value {
    let mut m = Map::new();
    for (i, item) in items.into_iter().enumerate() {
        m.insert(i.to_string(), json!({ key: item }));
    }
    m.insert("total_count".into(), json!(total));
    Value::Object(m)
}

/// `page` and `limit` with Deskie's bounds (limit ≤ 100, page ≤ 500).
fn paging(pairs: &[(String, String)]) -> Result<(Option<usize>, Option<usize>), Answer> {
    let mut page = None;
    let mut limit = None;
    for (k, v) in pairs {
        match k.as_str() {
            "page" => match v.parse::<usize>() {
                Ok(p) if (1..=500).contains(&p) => page = Some(p),
                Ok(p) if p > 500 => return Err(bad("page", "the maximum value of page is 500")),
                _ => return Err(bad("page", "must be a positive integer")),
            },
            "limit" => match v.parse::<usize>() {
                Ok(l) if l >= 1 => limit = Some(l.min(100)),
                _ => return Err(bad("limit", "must be a positive integer")),
            },
            _ => {}
        }
    }
    Ok((page, limit))
}

// ---------------------------------------------------------------------------------------------
// Cases

fn find_or_create_user(
    st: &mut DeskieState,
    kind: &str,
    key: &str,
    full_name: Option<&str>,
    now: Timestamp,
) -> i64 {
    let map_key = (kind.to_owned(), key.to_lowercase());
    if let Some(&i) = st.users_by_key.get(&map_key) {
        return st.users[i].user_id;
    }
    let user_id = FIRST_USER_ID + st.users.len() as i64;
    let mut u = User {
        user_id,
        kind: kind.to_owned(),
        email: None,
        phone: None,
        custom_id: None,
        full_name: full_name.map(str::to_owned),
        created_at: now,
        updated_at: now,
        deleted: false,
        active: true,
        purged: false,
    };
    match kind {
        "email" => u.email = Some(key.to_owned()),
        "phone" | "whatsapp" => u.phone = Some(key.to_owned()),
        _ => u.custom_id = Some(key.to_owned()),
    }
    st.users_by_key.insert(map_key, st.users.len());
    st.users.push(u);
    user_id
}

fn create_case(
    shared: &Shared,
    faults: &crate::Faults,
    readings: &Readings,
    st: &mut DeskieState,
    payload: Value,
    uploads: &[files::Upload],
) -> Answer {
    let Some(c) = payload.get("case").and_then(Value::as_object) else {
        return bad("case", "is required: send {\"case\": {…}}");
    };
    if let Err(a) = check_rejections(faults, c, None) {
        return a;
    }
    let email = get_str(c, "user_email");
    let phone = get_str(c, "user_phone");
    let whatsapp = get_str(c, "user_whatsapp_phone");
    let custom_id = get_str(c, "user_custom_id");
    let (content, content_html) = content_of(c);
    let initiator = match get_int(c, "initiator_id") {
        Ok(v) => v.filter(|&id| id != 0),
        Err(a) => return a,
    };
    let case_email_id = match get_int(c, "case_email_id") {
        Ok(v) => v,
        Err(a) => return a,
    };
    // Channel and its required fields, per the migration recipe.
    let (channel, user_kind, user_key, recipient) = if let Some(e) = email {
        if content_html.trim().is_empty() {
            return bad("content_html", "is required for the Email channel");
        }
        if initiator.is_some() && case_email_id != Some(-1) {
            return bad(
                "case_email_id",
                "must be -1 for an agent-initiated case in the Email channel",
            );
        }
        ("email".to_owned(), "email", e.to_owned(), e.to_owned())
    } else if let Some(p) = phone {
        if content.trim().is_empty() {
            return bad("content", "is required for the Calls channel");
        }
        ("calls".to_owned(), "phone", p.to_owned(), p.to_owned())
    } else if let Some(p) = whatsapp {
        if content.trim().is_empty() && content_html.trim().is_empty() {
            return bad("content", "is required for the WhatsApp channel");
        }
        (
            "whatsapp".to_owned(),
            "whatsapp",
            p.to_owned(),
            p.to_owned(),
        )
    } else if let Some(id) = custom_id {
        let Some(ch) = get_str(c, "user_custom_channel") else {
            return bad("user_custom_channel", "is required with user_custom_id");
        };
        if is_sync_channel(readings, &format!("custom:{ch}"))
            && let Err(a) = check_sync_content(c)
        {
            return a;
        }
        if content.trim().is_empty() && content_html.trim().is_empty() {
            return bad(
                "content_html",
                "is required for a custom channel (or content for a synchronous one)",
            );
        }
        (
            format!("custom:{ch}"),
            "custom",
            format!("{ch}:{id}"),
            id.to_owned(),
        )
    } else {
        return bad(
            "user_email",
            "is required for the Email channel (or user_phone for Calls, user_custom_id for a custom channel)",
        );
    };
    let subject = match get_str(c, "subject") {
        Some(s) => s.to_owned(),
        None => return bad("subject", "is required and must not be empty"),
    };
    let created_at = match incoming_time(readings, c, true) {
        Ok(t) => t,
        Err(a) => return a,
    };
    let status = match check_enum(c, "status", &STATUSES) {
        Ok(s) => s.unwrap_or_else(|| "open".into()),
        Err(a) => return a,
    };
    let priority = match check_enum(c, "priority", &PRIORITIES) {
        Ok(p) => p.unwrap_or_else(|| "normal".into()),
        Err(a) => return a,
    };
    let (staff_id, group_id, language_id) = match (
        get_int(c, "staff_id"),
        get_int(c, "group_id"),
        get_int(c, "language_id"),
    ) {
        (Ok(s), Ok(g), Ok(l)) => (s.unwrap_or(0), g, l.unwrap_or(1)),
        (Err(a), _, _) | (_, Err(a), _) | (_, _, Err(a)) => return a,
    };
    let files = match attachments(shared, st, c, uploads) {
        Ok(f) => f,
        Err(a) => return a,
    };
    let custom_fields: BTreeMap<String, Value> = match c.get("custom_fields") {
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => BTreeMap::new(),
    };
    let mut labels = int_list(c.get("labels"));
    labels.dedup();

    let now = Timestamp::now();
    let user_id = find_or_create_user(st, user_kind, &user_key, get_str(c, "user_full_name"), now);
    let blocked = st.user_mut(user_id).is_some_and(|u| !u.active);
    let source_ticket = ["content", "content_html", "subject"]
        .iter()
        .filter_map(|k| c.get(*k).and_then(Value::as_str))
        .flat_map(parse_refs)
        .map(|(p, t, _)| (p, t))
        .next();
    let case_id = FIRST_CASE_ID + st.cases.len() as i64;
    let message_id = st.next_message_id;
    st.next_message_id += 1;
    let first = Message {
        message_id,
        user_id: if initiator.is_some() { 0 } else { user_id },
        staff_id: initiator.unwrap_or(0),
        content,
        content_html,
        note: false,
        created_at,
        attachments: files,
        customer_emailed: initiator.is_some() && !get_bool(c, "do_not_send_email"),
    };
    let case = Case {
        case_id,
        case_number: format!("{:03}-{:06}", case_id % 1000, (case_id * 7919) % 1_000_000),
        user_id,
        channel,
        subject,
        status,
        priority,
        staff_id,
        group_id,
        initiator_id: initiator,
        case_email_id,
        custom_fields,
        labels,
        language_id,
        recipient,
        created_at,
        updated_at: now,
        messages: vec![first],
        source_ticket,
        trashed: false,
        // Page 000, "Block a user": new cases from a blocked user are marked as spam.
        spam: blocked,
        purged: false,
    };
    let body = json!({"case": case_json(&case)});
    if let Some(first) = case.messages.first() {
        st.index_files(case_id, first);
    }
    st.cases.push(case);
    (StatusCode::OK, body, None)
}

/// Deskie's search rules: `^exact^`, `^prefix`, `suffix^`, otherwise substring (case-insensitive).
fn search_matches(pattern: &str, value: &str) -> bool {
    let value = value.to_lowercase();
    let p = pattern.to_lowercase();
    match (p.strip_prefix('^'), p.strip_suffix('^')) {
        (Some(_), Some(_)) if p.len() >= 2 => value == p[1..p.len() - 1],
        (Some(rest), _) => value.starts_with(rest),
        (_, Some(rest)) => value.ends_with(rest),
        _ => value.contains(&p),
    }
}

/// Whether a `custom_fields[cf_N]=pattern` filter (string or array form) matches a stored value,
/// under the reading in force. Page 002 ("search"): "the search option is used in many methods",
/// `^…^` for exact; page 001 shows the filter (both forms) without saying how it matches, so each
/// plausible reading is offered.
fn custom_field_matches(reading: SearchReading, pattern: &str, stored: &str) -> bool {
    match reading {
        // Page 002's rules: `^x^` exact, `^x` prefix, `x^` suffix, otherwise substring.
        SearchReading::Caret => search_matches(pattern, stored),
        // The filter is an equality test; `^` is an ordinary character (case-sensitive).
        SearchReading::ExactOnly => pattern == stored,
        // Always a case-insensitive substring; `^` is an ordinary character.
        SearchReading::SubstringOnly => stored.to_lowercase().contains(&pattern.to_lowercase()),
    }
}

/// Reads a `from_time` / `to_time` value under the reading in force; `Ok(None)`: not applied.
/// Page 001 lost its parameter table: it only says the two bound the list "taking into account
/// the creation time", so each plausible format is offered.
fn time_filter(
    reading: TimeFilterReading,
    field: &str,
    value: &str,
) -> Result<Option<Timestamp>, Answer> {
    match reading {
        // Unix seconds; the parser stays as lenient as it always was (RFC 2822 / 3339 and civil
        // forms are accepted too), so the default behaves exactly as before the readings existed.
        TimeFilterReading::UnixSeconds => parse_filter_time(value)
            .map(Some)
            .ok_or_else(|| bad(field, "cannot parse the time")),
        // `YYYY-MM-DD HH:MM:SS` in the account's offset, nothing else (not even Unix seconds).
        TimeFilterReading::DateTimeText => datetime_text(value).map(Some).ok_or_else(|| {
            bad(
                field,
                format!("cannot parse {value:?}: expected YYYY-MM-DD HH:MM:SS"),
            )
        }),
        // Accepted whatever it holds, and not applied.
        TimeFilterReading::Ignored => Ok(None),
    }
}

/// Strictly `YYYY-MM-DD HH:MM:SS` (zero-padded, 19 characters), read in the account's offset.
fn datetime_text(value: &str) -> Option<Timestamp> {
    let shape_ok = value.len() == 19
        && value.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b' ',
            13 | 16 => b == b':',
            _ => b.is_ascii_digit(),
        });
    if !shape_ok {
        return None;
    }
    let dt = jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", value).ok()?;
    TimeZone::fixed(Offset::constant(ACCOUNT_OFFSET_HOURS))
        .to_timestamp(dt)
        .ok()
}

fn parse_filter_time(s: &str) -> Option<Timestamp> {
    if let Some(t) = parse_time(s) {
        return Some(t);
    }
    if let Ok(secs) = s.trim().parse::<i64>() {
        return Timestamp::from_second(secs).ok();
    }
    let tz = TimeZone::fixed(Offset::constant(ACCOUNT_OFFSET_HOURS));
    if let Ok(dt) = s.trim().parse::<jiff::civil::DateTime>() {
        return tz.to_timestamp(dt).ok();
    }
    if let Ok(d) = s.trim().parse::<jiff::civil::Date>() {
        return tz
            .to_timestamp(d.to_datetime(jiff::civil::Time::midnight()))
            .ok();
    }
    None
}

fn list_cases(readings: &Readings, st: &DeskieState, query: &str) -> Answer {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let (page, limit) = match paging(&pairs) {
        Ok(x) => x,
        Err(a) => return a,
    };
    let mut cf: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut statuses = Vec::new();
    let mut user_ids = Vec::new();
    let mut from = None;
    let mut to = None;
    let mut sort = "updated_at_desc".to_owned();
    for (k, v) in &pairs {
        if let Some(rest) = k.strip_prefix("custom_fields[") {
            let field = rest.trim_end_matches("[]").trim_end_matches(']').to_owned();
            cf.entry(field).or_default().push(v.clone());
            continue;
        }
        match k.as_str() {
            "status" | "status[]" => statuses.extend(v.split(',').map(str::to_owned)),
            "user_id" | "user_id[]" => {
                user_ids.extend(v.split(',').filter_map(|x| x.trim().parse::<i64>().ok()))
            }
            "from_time" => match time_filter(readings.time_filter, "from_time", v) {
                Ok(t) => from = t,
                Err(a) => return a,
            },
            "to_time" => match time_filter(readings.time_filter, "to_time", v) {
                Ok(t) => to = t,
                Err(a) => return a,
            },
            "sort" => {
                if [
                    "created_at_asc",
                    "created_at_desc",
                    "updated_at_desc",
                    "updated_at_asc",
                ]
                .contains(&v.as_str())
                {
                    sort = v.clone();
                } else {
                    return bad(
                        "sort",
                        "must be one of created_at_asc, created_at_desc, updated_at_desc, updated_at_asc",
                    );
                }
            }
            _ => {}
        }
    }
    let mut hits: Vec<&Case> = st
        .cases
        .iter()
        .filter(|c| !c.purged)
        .filter(|c| {
            cf.iter().all(|(field, patterns)| {
                c.custom_fields.get(field).is_some_and(|v| {
                    let stored = value_text(v);
                    patterns
                        .iter()
                        .any(|p| custom_field_matches(readings.custom_field_search, p, &stored))
                })
            }) && (statuses.is_empty() || statuses.contains(&c.status))
                && (user_ids.is_empty() || user_ids.contains(&c.user_id))
                && from.is_none_or(|f| c.created_at >= f)
                && to.is_none_or(|t| c.created_at <= t)
        })
        .collect();
    match sort.as_str() {
        "created_at_asc" => hits.sort_by_key(|c| (c.created_at, c.case_id)),
        "created_at_desc" => hits.sort_by_key(|c| std::cmp::Reverse((c.created_at, c.case_id))),
        "updated_at_asc" => hits.sort_by_key(|c| (c.updated_at, c.case_id)),
        _ => hits.sort_by_key(|c| std::cmp::Reverse((c.updated_at, c.case_id))),
    }
    let total = hits.len();
    let limit = limit.unwrap_or(100);
    let page = page.unwrap_or(1);
    let items = hits
        .into_iter()
        .skip((page - 1) * limit)
        .take(limit)
        .map(case_json)
        .collect();
    (StatusCode::OK, numbered("case", items, total), None)
}

// ---------------------------------------------------------------------------------------------
// Messages and notes

fn list_messages(st: &mut DeskieState, id: i64, query: &str) -> Answer {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let (page, limit) = match paging(&pairs) {
        Ok(x) => x,
        Err(a) => return a,
    };
    let Some(case) = st.case_mut(id) else {
        return not_found("case");
    };
    let all = ordered(&case.messages);
    let total = all.len();
    let items: Vec<Value> = if page.is_none() && limit.is_none() {
        // Documented default: the last 100 messages of the case.
        all[total.saturating_sub(100)..]
            .iter()
            .map(|m| message_json(m))
            .collect()
    } else {
        let limit = limit.unwrap_or(100);
        let page = page.unwrap_or(1);
        all.iter()
            .skip((page - 1) * limit)
            .take(limit)
            .map(|m| message_json(m))
            .collect()
    };
    (StatusCode::OK, numbered("message", items, total), None)
}

#[allow(clippy::too_many_arguments)]
fn add_message(
    shared: &Shared,
    faults: &crate::Faults,
    readings: &Readings,
    st: &mut DeskieState,
    id: i64,
    payload: Value,
    uploads: &[files::Upload],
) -> Answer {
    let Some(m) = payload.get("message").and_then(Value::as_object) else {
        return bad("message", "is required: send {\"message\": {…}}");
    };
    let (case_user, origin, sync) = match st.case_mut(id) {
        Some(c) => (
            c.user_id,
            c.source_ticket,
            is_sync_channel(readings, &c.channel),
        ),
        None => return not_found("case"),
    };
    if let Err(a) = check_rejections(faults, m, origin) {
        return a;
    }
    if sync && let Err(a) = check_sync_content(m) {
        return a;
    }
    let (staff_id, user_id) = match (get_int(m, "staff_id"), get_int(m, "user_id")) {
        (Ok(s), Ok(u)) => (s.filter(|&s| s != 0), u.filter(|&u| u != 0)),
        (Err(a), _) | (_, Err(a)) => return a,
    };
    let agent = match (staff_id, user_id) {
        (Some(_), _) => true,
        (None, Some(u)) if u == case_user => false,
        (None, Some(u)) => {
            return bad(
                "user_id",
                format!("user {u} is not the user of this case (expected {case_user})"),
            );
        }
        (None, None) => {
            return bad(
                "user_id",
                "user_id (customer message) or staff_id (agent message) is required",
            );
        }
    };
    let (content, content_html) = content_of(m);
    if content.trim().is_empty() && content_html.trim().is_empty() {
        return bad("content_html", "is required (or content)");
    }
    let created_at = match incoming_time(readings, m, true) {
        Ok(t) => t,
        Err(a) => return a,
    };
    let files = match attachments(shared, st, m, uploads) {
        Ok(f) => f,
        Err(a) => return a,
    };
    let message_id = st.next_message_id;
    st.next_message_id += 1;
    let msg = Message {
        message_id,
        user_id: if agent { 0 } else { case_user },
        staff_id: staff_id.unwrap_or(0),
        content,
        content_html,
        note: false,
        created_at,
        attachments: files,
        customer_emailed: agent && !get_bool(m, "do_not_send_email"),
    };
    let body = json!({"message": message_json(&msg)});
    st.index_files(id, &msg);
    let Some(case) = st.case_mut(id) else {
        return not_found("case");
    };
    if !agent && (case.status == "closed" || case.status == "waiting") {
        // A customer writing again reopens the case, as real help desks do.
        case.status = "open".into();
    }
    if agent && readings.agent_reply == AgentReplyReading::SetsWaiting {
        // No page says what an agent reply does to the status (recipe 003 §1.3/2.3/3.3 only
        // says to check the case after all messages); under this reading it waits for the
        // customer, whatever it was. Notes never change the status (they go through add_note).
        case.status = "waiting".into();
    }
    case.messages.push(msg);
    case.updated_at = Timestamp::now();
    (StatusCode::OK, body, None)
}

#[allow(clippy::too_many_arguments)]
fn add_note(
    shared: &Shared,
    faults: &crate::Faults,
    readings: &Readings,
    st: &mut DeskieState,
    id: i64,
    payload: Value,
    uploads: &[files::Upload],
) -> Answer {
    // The page shows two payloads: {"note": {"note_staff_id"|"staff_id", content}} in the request
    // block and {"message": {content, note_staff_id}} in the curl sample. Accept both.
    let Some(n) = payload
        .get("note")
        .and_then(Value::as_object)
        .or_else(|| payload.get("message").and_then(Value::as_object))
    else {
        return bad("note", "is required: send {\"note\": {…}}");
    };
    let (origin, sync) = match st.case_mut(id) {
        Some(c) => (c.source_ticket, is_sync_channel(readings, &c.channel)),
        None => return not_found("case"),
    };
    if let Err(a) = check_rejections(faults, n, origin) {
        return a;
    }
    if sync && let Err(a) = check_sync_content(n) {
        return a;
    }
    // Page 001 names the author `note_staff_id` in the request block and the curl sample, and
    // `staff_id` in both attachment forms; the reading in force says which one counts. JSON
    // (`note` / `message` wrappers) and multipart (`note[…]`) arrive here as the same object.
    let staff_id = match readings.note_author {
        NoteAuthorReading::EitherField => {
            match (get_int(n, "staff_id"), get_int(n, "note_staff_id")) {
                (Ok(a), Ok(b)) => match a.or(b).filter(|&s| s != 0) {
                    Some(s) => s,
                    None => {
                        return bad(
                            "staff_id",
                            "is required for a note (staff_id or note_staff_id)",
                        );
                    }
                },
                (Err(a), _) | (_, Err(a)) => return a,
            }
        }
        // Only one field is read (the other is an unknown key, ignored); without it the note is
        // the API agent's own, the agent behind the basic-auth email.
        NoteAuthorReading::NoteStaffIdOnly => match get_int(n, "note_staff_id") {
            Ok(s) => s.filter(|&s| s != 0).unwrap_or(crate::DESKIE_API_STAFF_ID),
            Err(a) => return a,
        },
        NoteAuthorReading::StaffIdOnly => match get_int(n, "staff_id") {
            Ok(s) => s.filter(|&s| s != 0).unwrap_or(crate::DESKIE_API_STAFF_ID),
            Err(a) => return a,
        },
    };
    let (content, content_html) = content_of(n);
    if content.trim().is_empty() && content_html.trim().is_empty() {
        return bad("content", "is required");
    }
    let created_at = match incoming_time(readings, n, false) {
        Ok(t) => t,
        Err(a) => return a,
    };
    let files = match attachments(shared, st, n, uploads) {
        Ok(f) => f,
        Err(a) => return a,
    };
    let message_id = st.next_message_id;
    st.next_message_id += 1;
    let msg = Message {
        message_id,
        user_id: 0,
        staff_id,
        content,
        content_html,
        note: true,
        created_at,
        attachments: files,
        customer_emailed: false,
    };
    let body = json!({"message": message_json(&msg)});
    st.index_files(id, &msg);
    let Some(case) = st.case_mut(id) else {
        return not_found("case");
    };
    case.messages.push(msg);
    case.updated_at = Timestamp::now();
    (StatusCode::OK, body, None)
}

/// Finds a message of a case for an edit or a delete: the note paths reach only notes, the
/// messages paths reach both (page 001's "Edit a note" sample itself sends the note to
/// `…/messages/[message_id].json`).
fn message_index(
    st: &mut DeskieState,
    case_id: i64,
    message_id: i64,
    notes_only: bool,
) -> Result<usize, Answer> {
    let Some(case) = st.case_mut(case_id) else {
        return Err(not_found("case"));
    };
    case.messages
        .iter()
        .position(|m| m.message_id == message_id && (m.note || !notes_only))
        .ok_or_else(|| not_found(if notes_only { "note" } else { "message" }))
}

/// `PUT /api/cases/[id]/messages/[message_id].json` ("Edit a response") and
/// `PUT /api/cases/[id]/note/[message_id].json` ("Edit a note"), page 001: replaces the
/// `content` and/or `content_html` sent (a field not sent keeps its value). Both wrappers are
/// accepted on both paths (`message` in the response form and the note sample, `note` in the
/// note request block). Rejection faults and synchronous channels apply as to a new message.
#[allow(clippy::too_many_arguments)]
fn edit_message(
    faults: &crate::Faults,
    readings: &Readings,
    st: &mut DeskieState,
    case_id: i64,
    message_id: i64,
    notes_only: bool,
    payload: &Value,
) -> Answer {
    let wrappers = if notes_only {
        ["note", "message"]
    } else {
        ["message", "note"]
    };
    let Some(m) = wrappers
        .iter()
        .find_map(|w| payload.get(*w).and_then(Value::as_object))
    else {
        return bad(
            wrappers[0],
            format!("is required: send {{\"{}\": {{…}}}}", wrappers[0]),
        );
    };
    let index = match message_index(st, case_id, message_id, notes_only) {
        Ok(i) => i,
        Err(a) => return a,
    };
    let Some(case) = st.case_mut(case_id) else {
        return not_found("case");
    };
    if let Err(a) = check_rejections(faults, m, case.source_ticket) {
        return a;
    }
    if is_sync_channel(readings, &case.channel)
        && let Err(a) = check_sync_content(m)
    {
        return a;
    }
    let content = m.get("content").map(value_text);
    let content_html = m.get("content_html").map(value_text);
    let any = [&content, &content_html]
        .into_iter()
        .flatten()
        .any(|t| !t.trim().is_empty());
    if !any {
        return bad("content", "is required (or content_html)");
    }
    let Some(msg) = case.messages.get_mut(index) else {
        return not_found("message");
    };
    if let Some(c) = content {
        msg.content = c;
    }
    if let Some(h) = content_html {
        msg.content_html = h;
    }
    let body = json!({"message": message_json(msg)});
    case.updated_at = Timestamp::now();
    (StatusCode::OK, body, None)
}

/// `DELETE /api/cases/[id]/messages/[message_id].json` / `…/note/[message_id].json` (page 001):
/// answers 200 with `{}` (the page shows only the status); the message's files stop being
/// served.
fn delete_message(
    faults: &crate::Faults,
    st: &mut DeskieState,
    case_id: i64,
    message_id: i64,
    notes_only: bool,
) -> Answer {
    let index = match message_index(st, case_id, message_id, notes_only) {
        Ok(i) => i,
        Err(a) => return a,
    };
    let Some(case) = st.case_mut(case_id) else {
        return not_found("case");
    };
    if let Err(a) = check_rejections(faults, &Map::new(), case.source_ticket) {
        return a;
    }
    case.messages.remove(index);
    case.updated_at = Timestamp::now();
    (StatusCode::OK, json!({}), None)
}

// ---------------------------------------------------------------------------------------------
// Users

fn list_users(st: &DeskieState, query: &str) -> Answer {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let (page, limit) = match paging(&pairs) {
        Ok(x) => x,
        Err(a) => return a,
    };
    let email = pairs
        .iter()
        .find(|(k, _)| k == "user_email" || k == "email")
        .map(|(_, v)| v.clone());
    let mut users: Vec<&User> = st
        .users
        .iter()
        .filter(|u| !u.purged)
        .filter(|u| {
            email
                .as_deref()
                .is_none_or(|p| u.email.as_deref().is_some_and(|e| search_matches(p, e)))
        })
        .collect();
    users.sort_by_key(|u| std::cmp::Reverse((u.created_at, u.user_id)));
    let total = users.len();
    let limit = limit.unwrap_or(100);
    let page = page.unwrap_or(1);
    let items = users
        .into_iter()
        .skip((page - 1) * limit)
        .take(limit)
        .map(user_json)
        .collect();
    (StatusCode::OK, numbered("user", items, total), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_rules() {
        assert!(search_matches("^desk360:1:4^", "desk360:1:4"));
        assert!(!search_matches("^desk360:1:4^", "desk360:1:42"));
        assert!(search_matches("desk360:1:4", "desk360:1:42"));
        assert!(search_matches("^desk", "desk360:1:42"));
        assert!(!search_matches("^esk", "desk360:1:42"));
        assert!(search_matches(":42^", "desk360:1:42"));
        assert!(!search_matches(":4^", "desk360:1:42"));
    }

    #[test]
    fn times() {
        let t = parse_time("Mon, 05 May 2014 00:15:17 +0300").expect("rfc2822");
        assert_eq!(t.to_string(), "2014-05-04T21:15:17Z");
        assert_eq!(fmt_time(t), "Mon, 05 May 2014 00:15:17 +0300");
        assert!(parse_time("2014-05-04T21:15:17Z").is_some());
        assert!(parse_time("2014-05-04T21:15:17+02:00").is_some());
        assert!(parse_time("2014-05-04 21:15:17").is_none());
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn bracket_paths() {
        assert_eq!(
            bracket_path("case[custom_fields][cf_1]"),
            vec!["case", "custom_fields", "cf_1"]
        );
        let mut root = json!({});
        insert_path(
            &mut root,
            &bracket_path("case[attachment_urls][]"),
            json!("a"),
        );
        insert_path(
            &mut root,
            &bracket_path("case[attachment_urls][]"),
            json!("b"),
        );
        insert_path(&mut root, &bracket_path("case[subject]"), json!("s"));
        assert_eq!(
            root,
            json!({"case": {"attachment_urls": ["a", "b"], "subject": "s"}})
        );
    }
}
