//! A Deskie case's messages (page 001): list them (notes included), add a response (customer or
//! agent), edit one, delete one. Notes are added on their own path (`deskie/notes.rs`) and
//! edited / deleted through the functions here.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{MethodRouter, get, post, put};
use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::account::{Account, Case, Message, Upload, ordered};
use super::app::App;
use super::fields::{content_of, get_bool, get_int, incoming_time, value_text};
use super::payload::{PerRequest, Written};
use super::reply::{Answer, Reply, bad, id_of, not_found};
use super::rules::{attachments, check_rejections, check_sync_content, is_sync_channel};
use super::shapes::{message_json, numbered, paging};
use crate::config::{AgentReplyReading, Faults, Readings};
use crate::respond::QueryPairs;
use crate::state::{Shared, lock};

/// `/api/cases/{case}/messages.json` (list, add) and `/api/cases/{case}/messages/{message}`
/// (edit, delete).
pub(super) fn routes() -> Router<App> {
    Router::new()
        .route(
            "/api/cases/{case}/messages.json",
            get(list).merge(adding(add_message)),
        )
        .route(
            "/api/cases/{case}/messages/{message}",
            put(edit::<false>).delete(delete::<false>),
        )
}

async fn list(
    State(app): State<App>,
    Path(case): Path<String>,
    QueryPairs(pairs): QueryPairs,
) -> Reply {
    let Some(id) = id_of(&case) else {
        return Reply(not_found("case"));
    };
    let mut st = lock(&app.account);
    Reply(list_messages(&mut st, id, &pairs))
}

/// A `POST` that adds a response or a note to a case, as [`adding`] reads it.
#[derive(Clone, Copy)]
pub(super) struct Adding<'a> {
    /// The servers' shared state.
    pub shared: &'a Shared,
    /// The faults in force for this request.
    pub faults: &'a Faults,
    /// The readings in force for this request.
    pub readings: &'a Readings,
    /// The case the path names.
    pub id: i64,
    /// The JSON body (or the multipart form's fields).
    pub payload: &'a Value,
    /// The uploaded files, in part order.
    pub uploads: &'a [Upload],
}

/// How a response or a note is added to a case (`add_message`, `deskie/notes.rs`'s `add_note`).
pub(super) type AddFn = fn(Adding<'_>, &mut Account) -> Answer;

/// The `POST` that adds to the case its path names, with `add`.
pub(super) fn adding(add: AddFn) -> MethodRouter<App> {
    post(
        move |State(app): State<App>,
              per: PerRequest,
              Path(case): Path<String>,
              Written(payload): Written| async move {
            let Some(id) = id_of(&case) else {
                return Reply(not_found("case"));
            };
            let adding = Adding {
                shared: &app.shared,
                faults: &per.faults,
                readings: &per.readings,
                id,
                payload: &payload.value,
                uploads: &payload.uploads,
            };
            Reply(add(adding, &mut lock(&app.account)))
        },
    )
}

/// `PUT` of a response (`NOTES = false`) or of a note (`NOTES = true`, `deskie/notes.rs`).
pub(super) async fn edit<const NOTES: bool>(
    State(app): State<App>,
    per: PerRequest,
    Path((case, message)): Path<(String, String)>,
    Written(payload): Written,
) -> Reply {
    let (Some(id), Some(message_id)) = (id_of(&case), id_of(&message)) else {
        return Reply(not_found("message"));
    };
    let mut st = lock(&app.account);
    Reply(edit_message(
        &per,
        &mut st,
        id,
        message_id,
        NOTES,
        &payload.value,
    ))
}

/// `DELETE` of a response (`NOTES = false`) or of a note (`NOTES = true`).
pub(super) async fn delete<const NOTES: bool>(
    State(app): State<App>,
    per: PerRequest,
    Path((case, message)): Path<(String, String)>,
) -> Reply {
    let (Some(id), Some(message_id)) = (id_of(&case), id_of(&message)) else {
        return Reply(not_found("message"));
    };
    let mut st = lock(&app.account);
    Reply(delete_message(&per.faults, &mut st, id, message_id, NOTES))
}

/// `GET /api/cases/{id}/messages.json` (page 001, "View messages"): notes included, in Deskie
/// order; without `page` / `limit`, the last 100.
fn list_messages(st: &mut Account, id: i64, pairs: &[(String, String)]) -> Answer {
    let (page, limit) = match paging(pairs) {
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

/// `POST /api/cases/{id}/messages.json` (page 001, "Add a response"; recipe 003 §1.2/2.2/3.2).
fn add_message(req: Adding<'_>, st: &mut Account) -> Answer {
    let Some(m) = req.payload.get("message").and_then(Value::as_object) else {
        return bad("message", "is required: send {\"message\": {…}}");
    };
    let (case_user, origin, sync) = match st.case_mut(req.id) {
        Some(c) => (
            c.user_id,
            c.source_ticket,
            is_sync_channel(req.readings, &c.channel),
        ),
        None => return not_found("case"),
    };
    if let Err(a) = check_rejections(req.faults, m, origin) {
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
    let author = Author {
        user_id: if agent { 0 } else { case_user },
        staff_id: staff_id.unwrap_or(0),
        note: false,
        customer_emailed: agent && !get_bool(m, "do_not_send_email"),
    };
    let msg = match compose(req.shared, req.readings, st, m, req.uploads, author) {
        Ok(msg) => msg,
        Err(a) => return a,
    };
    append(st, req.id, msg, |case| {
        if !agent && (case.status == "closed" || case.status == "waiting") {
            // A customer writing again reopens the case, as real help desks do.
            case.status = "open".into();
        }
        if agent && req.readings.agent_reply == AgentReplyReading::SetsWaiting {
            // No page says what an agent reply does to the status (recipe 003 §1.3/2.3/3.3 only
            // says to check the case after all messages); under this reading it waits for the
            // customer, whatever it was. Notes never change the status (they go through add_note).
            case.status = "waiting".into();
        }
    })
}

/// The parts of a new [`Message`] that a response and a note decide differently: who wrote
/// it, whether it is a note, whether the real service would have emailed the customer.
pub(super) struct Author {
    /// The customer author (0 for an agent).
    pub user_id: i64,
    /// The agent author (0 for the customer).
    pub staff_id: i64,
    /// Whether this is an internal note.
    pub note: bool,
    /// Whether the real service would have emailed the customer.
    pub customer_emailed: bool,
}

/// Reads a new response's or note's body, time and files from its object `o`, as both paths
/// read them: an empty body is refused (a response under `content_html`, a note under
/// `content`), and only a response must carry its time.
pub(super) fn compose(
    shared: &Shared,
    readings: &Readings,
    st: &mut Account,
    o: &Map<String, Value>,
    uploads: &[Upload],
    author: Author,
) -> Result<Message, Answer> {
    let (content, content_html) = content_of(o);
    if content.trim().is_empty() && content_html.trim().is_empty() {
        return Err(if author.note {
            bad("content", "is required")
        } else {
            bad("content_html", "is required (or content)")
        });
    }
    let created_at = incoming_time(readings, o, !author.note)?;
    let attachments = attachments(shared, st, o, uploads)?;
    Ok(Message {
        message_id: st.next_message_id(),
        user_id: author.user_id,
        staff_id: author.staff_id,
        content,
        content_html,
        note: author.note,
        created_at,
        attachments,
        customer_emailed: author.customer_emailed,
    })
}

/// Adds a composed message to case `id` after `update` changed the case as the message does,
/// and answers with the message.
pub(super) fn append(
    st: &mut Account,
    id: i64,
    msg: Message,
    update: impl FnOnce(&mut Case),
) -> Answer {
    let body = json!({"message": message_json(&msg)});
    st.index_files(id, &msg);
    let Some(case) = st.case_mut(id) else {
        return not_found("case");
    };
    update(case);
    case.messages.push(msg);
    case.updated_at = Timestamp::now();
    (StatusCode::OK, body, None)
}

/// Finds a message of a case for an edit or a delete: the note paths reach only notes, the
/// messages paths reach both (page 001's "Edit a note" sample itself sends the note to
/// `…/messages/[message_id].json`).
fn message_index(
    st: &mut Account,
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
pub(super) fn edit_message(
    per: &PerRequest,
    st: &mut Account,
    case_id: i64,
    message_id: i64,
    notes_only: bool,
    payload: &Value,
) -> Answer {
    if per.faults.edits_unavailable {
        // Only edits fail: a run stopped between a message write and its edit.
        return (StatusCode::SERVICE_UNAVAILABLE, Value::Null, Some("down"));
    }
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
    if let Err(a) = check_rejections(&per.faults, m, case.source_ticket) {
        return a;
    }
    if is_sync_channel(&per.readings, &case.channel)
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
pub(super) fn delete_message(
    faults: &Faults,
    st: &mut Account,
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
