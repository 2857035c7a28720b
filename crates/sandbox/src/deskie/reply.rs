//! What Deskie handlers answer — a status, the `{"errors": {field: message}}` body or a JSON
//! result, and the journal fault — and how they read ids out of vendor path segments.
//!
//! Vendor paths end in `.json` after an id (`cases/2000.json`, bulk `cases/2000,2001.json`),
//! which axum's path patterns cannot express (a parameter must fill its whole segment): those
//! routes capture the whole segment (`/api/cases/{case}`) and [`case_ids`] / [`id_of`] read the
//! ids out of it; a segment without `.json` where the vendor requires it is an unknown path.

use axum::body::Body;
use axum::http::{Response, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::respond::{Faulted, json_response};

/// What a Deskie handler decides: a status, a JSON body, and the journal fault behind it.
pub(super) type Answer = (StatusCode, Value, Option<&'static str>);

/// An [`Answer`] as a response: the JSON body, the fault in the response's extensions for the
/// gate's journal.
pub(super) struct Reply(pub Answer);

impl IntoResponse for Reply {
    fn into_response(self) -> Response<Body> {
        let (status, body, fault) = self.0;
        Faulted(json_response(status, &body), fault).into_response()
    }
}

pub(super) fn err(status: StatusCode, field: &str, message: impl Into<String>) -> Answer {
    (status, json!({"errors": {field: message.into()}}), None)
}

pub(super) fn bad(field: &str, message: impl Into<String>) -> Answer {
    err(StatusCode::BAD_REQUEST, field, message)
}

pub(super) fn not_found(what: &str) -> Answer {
    err(StatusCode::NOT_FOUND, what, "not found")
}

/// Any path no route serves (charged like any request).
pub(super) async fn unknown_path() -> Reply {
    Reply(not_found("path"))
}

/// A known path with a method it does not serve (charged like any request).
pub(super) async fn wrong_method() -> Reply {
    Reply(err(
        StatusCode::METHOD_NOT_ALLOWED,
        "method",
        "not allowed for this path",
    ))
}

/// The id of a path segment, `.json` suffix optional (`2000.json` or `2000`).
pub(super) fn id_of(segment: &str) -> Option<i64> {
    segment
        .strip_suffix(".json")
        .unwrap_or(segment)
        .parse::<i64>()
        .ok()
}

/// The case ids of a `/api/cases/{case}` segment, which must end in `.json` (`2000.json`, or
/// the bulk form `2000,2001.json`): without it the path is unknown (404 `path`); with an id that
/// is not an integer, the case is (404 `case`). Repeated ids count once, first place kept.
pub(super) fn case_ids(segment: &str) -> Result<Vec<i64>, Answer> {
    if !segment.ends_with(".json") {
        return Err(not_found("path"));
    }
    parse_ids(segment).ok_or_else(|| not_found("case"))
}

/// The ids of a case path segment (`2000.json`, `2000,2001.json` or, without `.json`, `2000`):
/// `None` when one of them is not an integer. Repeated ids count once, first place kept.
pub(super) fn parse_ids(segment: &str) -> Option<Vec<i64>> {
    let bare = segment.strip_suffix(".json").unwrap_or(segment);
    let mut ids: Vec<i64> = Vec::new();
    for part in bare.split(',') {
        let id = part.trim().parse::<i64>().ok()?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Some(ids)
}
