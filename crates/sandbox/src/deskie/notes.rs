//! Internal notes on a Deskie case (page 001, "Add a note", "Edit a note", "Delete a note"):
//! added on their own path with the author read under [`crate::NoteAuthorReading`], edited and
//! deleted like messages (`deskie/messages.rs`) but reaching only notes.

use axum::Router;
use axum::routing::put;
use serde_json::Value;

use super::account::Account;
use super::app::App;
use super::fields::get_int;
use super::messages::{Adding, Author, adding, append, compose, delete, edit};
use super::reply::{Answer, bad, not_found};
use super::rules::{check_rejections, check_sync_content, is_sync_channel};
use crate::config::NoteAuthorReading;

/// `POST /api/cases/{case}/note.json` and `/api/cases/{case}/note/{message}` (edit, delete).
pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/api/cases/{case}/note.json", adding(add_note))
        .route(
            "/api/cases/{case}/note/{message}",
            put(edit::<true>).delete(delete::<true>),
        )
}

/// `POST /api/cases/{id}/note.json` (page 001, "Add a note").
fn add_note(req: Adding<'_>, st: &mut Account) -> Answer {
    // The page shows two payloads: {"note": {"note_staff_id"|"staff_id", content}} in the request
    // block and {"message": {content, note_staff_id}} in the curl sample. Accept both.
    let Some(n) = req
        .payload
        .get("note")
        .and_then(Value::as_object)
        .or_else(|| req.payload.get("message").and_then(Value::as_object))
    else {
        return bad("note", "is required: send {\"note\": {…}}");
    };
    let (origin, sync) = match st.case_mut(req.id) {
        Some(c) => (c.source_ticket, is_sync_channel(req.readings, &c.channel)),
        None => return not_found("case"),
    };
    if let Err(a) = check_rejections(req.faults, n, origin) {
        return a;
    }
    if sync && let Err(a) = check_sync_content(n) {
        return a;
    }
    // Page 001 names the author `note_staff_id` in the request block and the curl sample, and
    // `staff_id` in both attachment forms; the reading in force says which one counts. JSON
    // (`note` / `message` wrappers) and multipart (`note[…]`) arrive here as the same object.
    let staff_id = match req.readings.note_author {
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
    let author = Author {
        user_id: 0,
        staff_id,
        note: true,
        customer_emailed: false,
    };
    match compose(req.shared, req.readings, st, n, req.uploads, author) {
        Ok(msg) => append(st, req.id, msg, |_| {}),
        Err(a) => a,
    }
}
