//! Case management on the Deskie emulator (page 001): update a case (single and bulk), move cases
//! to the trash or spam and restore them, delete them permanently. (User management is in
//! `deskie/users.rs`.)
//!
//! Choices where the pages are silent (documented here, the importer must not rely on more):
//! - Bulk forms (`/api/cases/[id],[id],….json`, ≤ 10 ids, page 001) answer
//!   `{"case_success_id": [ids]}` as the page shows; an unknown id, and a case refused by a
//!   `reject_tickets` fault, is left out of the list (the answer is still 200, the journal
//!   records `fault = "rejected"`): the page's answer is built to report partial success.
//!   More than 10 ids is a 400 naming `case_id`; a repeated id counts once.
//! - The payload of a bulk update is validated once for all cases: an invalid field is a 400
//!   for the whole request and nothing is applied.
//! - Permanent delete (page 001, "Delete permanently a case") does not require the case to be
//!   in the trash first (the page says nothing of it); it answers 200 with `{}` (the page shows
//!   only "HTTP Status: 200 OK"), single or bulk. The case then disappears from every answer and
//!   from the snapshot; its uploaded files stop being served.
//! - Trashed and spam cases stay in the default case list with `deleted` / `spam` set: page 001
//!   documents no default filter on them (its list items carry `deleted` and `spam`).
//! - `reject_tickets` applies to every write on a case created from a listed ticket, trash,
//!   restore and delete included.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::put;
use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::account::{Account, Case};
use super::app::App;
use super::fields::{PRIORITIES, STATUSES, check_enum, get_int, get_str, int_list};
use super::payload::{PerRequest, Written};
use super::reply::{Answer, Reply, bad, case_ids, not_found, parse_ids};
use super::rules::check_rejections;
use super::shapes::case_json;
use crate::config::Faults;
use crate::state::lock;

/// `PUT` / `DELETE /api/cases/{case}` (single or bulk) and the moves
/// `PUT /api/cases/{case}/{trash,spam,restore}.json`.
pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/api/cases/{case}", put(update).delete(delete))
        .route("/api/cases/{case}/trash.json", put(trash))
        .route("/api/cases/{case}/spam.json", put(spam))
        .route("/api/cases/{case}/restore.json", put(restore))
}

async fn update(
    State(app): State<App>,
    per: PerRequest,
    Path(segment): Path<String>,
    Written(payload): Written,
) -> Reply {
    let ids = match case_ids(&segment) {
        Ok(ids) => ids,
        Err(a) => return Reply(a),
    };
    let mut st = lock(&app.account);
    Reply(match ids.as_slice() {
        [id] => update_case(&per.faults, &mut st, *id, &payload.value),
        ids => update_cases(&per.faults, &mut st, ids, &payload.value),
    })
}

async fn delete(State(app): State<App>, per: PerRequest, Path(segment): Path<String>) -> Reply {
    let ids = match case_ids(&segment) {
        Ok(ids) => ids,
        Err(a) => return Reply(a),
    };
    let mut st = lock(&app.account);
    Reply(delete_cases(&per.faults, &mut st, &ids))
}

async fn trash(app: State<App>, per: PerRequest, segment: Path<String>) -> Reply {
    move_to(app, per, segment, Move::Trash)
}

async fn spam(app: State<App>, per: PerRequest, segment: Path<String>) -> Reply {
    move_to(app, per, segment, Move::Spam)
}

async fn restore(app: State<App>, per: PerRequest, segment: Path<String>) -> Reply {
    move_to(app, per, segment, Move::Restore)
}

/// The ids of a move's segment (`.json` optional there) and the move.
fn move_to(
    State(app): State<App>,
    per: PerRequest,
    Path(segment): Path<String>,
    to: Move,
) -> Reply {
    let Some(ids) = parse_ids(&segment) else {
        return Reply(not_found("case"));
    };
    let mut st = lock(&app.account);
    Reply(move_cases(&per.faults, &mut st, &ids, to))
}

/// Page 001: "No more than 10 cases in one request" for every bulk form.
const MAX_BULK: usize = 10;

/// Refuses a bulk request over the page's limit of 10 cases.
fn check_bulk(ids: &[i64]) -> Result<(), Answer> {
    if ids.len() > MAX_BULK {
        return Err(bad(
            "case_id",
            format!(
                "no more than {MAX_BULK} cases in one request ({} given)",
                ids.len()
            ),
        ));
    }
    Ok(())
}

/// A validated `{"case": {…}}` update, applied to one or many cases.
struct Changes<'a> {
    fields: &'a Map<String, Value>,
    status: Option<String>,
    priority: Option<String>,
    staff_id: Option<i64>,
    group_id: Option<i64>,
}

fn parse_changes(fields: &Map<String, Value>) -> Result<Changes<'_>, Answer> {
    let status = check_enum(fields, "status", &STATUSES)?;
    let priority = check_enum(fields, "priority", &PRIORITIES)?;
    let staff_id = get_int(fields, "staff_id")?;
    let group_id = get_int(fields, "group_id")?;
    if fields.contains_key("subject") && get_str(fields, "subject").is_none() {
        return Err(bad("subject", "must not be empty"));
    }
    Ok(Changes {
        fields,
        status,
        priority,
        staff_id,
        group_id,
    })
}

fn apply(case: &mut Case, changes: &Changes<'_>) {
    let c = changes.fields;
    if let Some(s) = &changes.status {
        case.status = s.clone();
    }
    if let Some(p) = &changes.priority {
        case.priority = p.clone();
    }
    if let Some(s) = changes.staff_id {
        case.staff_id = s;
    }
    if let Some(g) = changes.group_id {
        case.group_id = Some(g);
    }
    if let Some(s) = get_str(c, "subject") {
        case.subject = s.to_owned();
    }
    if let Some(Value::Object(m)) = c.get("custom_fields") {
        for (k, v) in m {
            case.custom_fields.insert(k.clone(), v.clone());
        }
    }
    if c.contains_key("labels") {
        case.labels = int_list(c.get("labels"));
    }
    for l in int_list(c.get("add_labels")) {
        if !case.labels.contains(&l) {
            case.labels.push(l);
        }
    }
    case.updated_at = Timestamp::now();
}

fn case_fields(payload: &Value) -> Result<&Map<String, Value>, Answer> {
    payload
        .get("case")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("case", "is required: send {\"case\": {…}}"))
}

/// `PUT /api/cases/[id].json`: answers the updated case.
fn update_case(faults: &Faults, st: &mut Account, id: i64, payload: &Value) -> Answer {
    let c = match case_fields(payload) {
        Ok(c) => c,
        Err(a) => return a,
    };
    let origin = match st.case_mut(id) {
        Some(case) => case.source_ticket,
        None => return not_found("case"),
    };
    if let Err(a) = check_rejections(faults, c, origin) {
        return a;
    }
    let changes = match parse_changes(c) {
        Ok(ch) => ch,
        Err(a) => return a,
    };
    let Some(case) = st.case_mut(id) else {
        return not_found("case");
    };
    apply(case, &changes);
    (StatusCode::OK, json!({"case": case_json(case)}), None)
}

/// `PUT /api/cases/[id],[id],….json` (page 001, "Update a case/cases"): the same update on up
/// to 10 cases, answered `{"case_success_id": [ids updated]}`.
fn update_cases(faults: &Faults, st: &mut Account, ids: &[i64], payload: &Value) -> Answer {
    if let Err(a) = check_bulk(ids) {
        return a;
    }
    let c = match case_fields(payload) {
        Ok(c) => c,
        Err(a) => return a,
    };
    let changes = match parse_changes(c) {
        Ok(ch) => ch,
        Err(a) => return a,
    };
    let mut done = Vec::new();
    let mut rejected = false;
    for &id in ids {
        let Some(case) = st.case_mut(id) else {
            continue;
        };
        if check_rejections(faults, c, case.source_ticket).is_err() {
            rejected = true;
            continue;
        }
        apply(case, &changes);
        done.push(id);
    }
    (
        StatusCode::OK,
        json!({"case_success_id": done}),
        rejected.then_some("rejected"),
    )
}

/// Where a case is moved by `trash.json`, `spam.json` and `restore.json` (page 001).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Move {
    /// To the trash (`deleted: true`).
    Trash,
    /// To the spam filter (`spam: true`).
    Spam,
    /// Back from the trash or spam.
    Restore,
}

/// `PUT /api/cases/[id]/{trash,spam,restore}.json`, single (answers the case) or bulk (answers
/// `case_success_id`).
fn move_cases(faults: &Faults, st: &mut Account, ids: &[i64], to: Move) -> Answer {
    if let Err(a) = check_bulk(ids) {
        return a;
    }
    let none = Map::new();
    let mut done = Vec::new();
    let mut refused = None;
    for &id in ids {
        let Some(case) = st.case_mut(id) else {
            continue;
        };
        if let Err(a) = check_rejections(faults, &none, case.source_ticket) {
            refused = Some(a);
            continue;
        }
        match to {
            Move::Trash => case.trashed = true,
            Move::Spam => case.spam = true,
            Move::Restore => {
                case.trashed = false;
                case.spam = false;
            }
        }
        case.updated_at = Timestamp::now();
        done.push(id);
    }
    if let [id] = ids {
        return match (st.case_mut(*id), refused) {
            (_, Some(a)) => a,
            (Some(case), None) => (StatusCode::OK, json!({"case": case_json(case)}), None),
            (None, None) => not_found("case"),
        };
    }
    let fault = refused.map(|_| "rejected");
    (StatusCode::OK, json!({"case_success_id": done}), fault)
}

/// `DELETE /api/cases/[id].json` and its bulk form: the cases are gone for good.
fn delete_cases(faults: &Faults, st: &mut Account, ids: &[i64]) -> Answer {
    if let Err(a) = check_bulk(ids) {
        return a;
    }
    let none = Map::new();
    let mut found = false;
    let mut refused = None;
    for &id in ids {
        let Some(case) = st.case_mut(id) else {
            continue;
        };
        found = true;
        if let Err(a) = check_rejections(faults, &none, case.source_ticket) {
            refused = Some(a);
            continue;
        }
        case.purged = true;
    }
    match (ids, refused) {
        ([_], Some(a)) => a,
        ([_], None) if !found => not_found("case"),
        (_, refused) => (StatusCode::OK, json!({}), refused.map(|_| "rejected")),
    }
}
