//! Internal notes on a Deskie case (page 001, "Add a note", "Edit a note", "Delete a note"):
//! added on their own path with the author read under [`crate::NoteAuthorReading`], edited and
//! deleted like messages (`deskie/messages.rs`) but reaching only notes.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{post, put};
use jiff::Timestamp;
use serde_json::{Value, json};

use super::account::{Account, Message};
use super::app::App;
use super::fields::{content_of, get_int, incoming_time};
use super::messages::{delete, edit};
use super::payload::{Payload, PerRequest, Written};
use super::reply::{Answer, Reply, bad, id_of, not_found};
use super::rules::{attachments, check_rejections, check_sync_content, is_sync_channel};
use super::shapes::message_json;
use crate::config::NoteAuthorReading;
use crate::state::{Shared, lock};

/// `POST /api/cases/{case}/note.json` and `/api/cases/{case}/note/{message}` (edit, delete).
pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/api/cases/{case}/note.json", post(add))
        .route(
            "/api/cases/{case}/note/{message}",
            put(edit::<true>).delete(delete::<true>),
        )
}

async fn add(
    State(app): State<App>,
    per: PerRequest,
    Path(case): Path<String>,
    Written(payload): Written,
) -> Reply {
    let Some(id) = id_of(&case) else {
        return Reply(not_found("case"));
    };
    let mut st = lock(&app.account);
    Reply(add_note(&app.shared, &per, &mut st, id, &payload))
}

/// `POST /api/cases/{id}/note.json` (page 001, "Add a note").
fn add_note(
    shared: &Shared,
    per: &PerRequest,
    st: &mut Account,
    id: i64,
    written: &Payload,
) -> Answer {
    let (faults, readings) = (&*per.faults, &*per.readings);
    let (payload, uploads) = (&written.value, written.uploads.as_slice());
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
            Ok(s) => s
                .filter(|&s| s != 0)
                .unwrap_or(crate::config::DESKIE_API_STAFF_ID),
            Err(a) => return a,
        },
        NoteAuthorReading::StaffIdOnly => match get_int(n, "staff_id") {
            Ok(s) => s
                .filter(|&s| s != 0)
                .unwrap_or(crate::config::DESKIE_API_STAFF_ID),
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
    let msg = Message {
        message_id: st.next_message_id(),
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
