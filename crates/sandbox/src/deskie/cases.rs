//! Deskie cases (page 001; recipe 003 for the migration's required fields): create a case
//! through its channel (Email, Calls, WhatsApp, custom), list cases (`deskie/search.rs`), view
//! one. Updates, moves and deletes are case management (`deskie/manage.rs`).

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::account::{Account, Case, FIRST_CASE_ID, Message};
use super::app::App;
use super::fields::{
    PRIORITIES, STATUSES, check_enum, content_of, get_bool, get_int, get_str, incoming_time,
    int_list,
};
use super::payload::{PerRequest, Written};
use super::reply::{Answer, Reply, bad, case_ids, not_found};
use super::rules::{attachments, check_rejections, check_sync_content, is_sync_channel};
use super::search;
use super::shapes::case_json;
use crate::config::Readings;
use crate::data::parse_refs;
use crate::respond::QueryPairs;
use crate::state::lock;

/// `/api/cases.json` (list, create) and `GET /api/cases/{case}` (view).
pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/api/cases.json", get(list).post(create))
        .route("/api/cases/{case}", get(view))
}

async fn list(State(app): State<App>, per: PerRequest, QueryPairs(pairs): QueryPairs) -> Reply {
    let st = lock(&app.account);
    Reply(search::list_cases(&per.readings, &st, &pairs))
}

/// `GET /api/cases/{id}.json`; a bulk segment names no single case (404).
async fn view(State(app): State<App>, Path(segment): Path<String>) -> Reply {
    let ids = match case_ids(&segment) {
        Ok(ids) => ids,
        Err(a) => return Reply(a),
    };
    let mut st = lock(&app.account);
    let case = match ids.as_slice() {
        [id] => st.case_mut(*id),
        _ => None,
    };
    Reply(match case {
        Some(c) => (StatusCode::OK, json!({"case": case_json(c)}), None),
        None => not_found("case"),
    })
}

/// `POST /api/cases.json` (page 001, "Create a case"; recipe 003 §1.1/2.1/3.1).
async fn create(State(app): State<App>, per: PerRequest, Written(payload): Written) -> Reply {
    let mut st = lock(&app.account);
    let Some(c) = payload.value.get("case").and_then(Value::as_object) else {
        return Reply(bad("case", "is required: send {\"case\": {…}}"));
    };
    let fields = match CaseFields::read(&per, c) {
        Ok(f) => f,
        Err(a) => return Reply(a),
    };
    let files = match attachments(&app.shared, &mut st, c, &payload.uploads) {
        Ok(f) => f,
        Err(a) => return Reply(a),
    };
    Reply(store_case(&mut st, c, fields, files))
}

/// Where a new case goes: its channel, the user it belongs to and the recipient shown.
struct Channel {
    /// `email`, `calls`, `whatsapp` or `custom:<channel id>`.
    name: String,
    /// The user's kind (`email`, `phone`, `whatsapp`, `custom`).
    user_kind: &'static str,
    /// The user's key in that kind (address, phone, `<channel>:<custom id>`).
    user_key: String,
    recipient: String,
}

/// A case create's fields, validated.
struct CaseFields {
    channel: Channel,
    initiator: Option<i64>,
    case_email_id: Option<i64>,
    content: String,
    content_html: String,
    subject: String,
    created_at: Timestamp,
    status: String,
    priority: String,
    staff_id: i64,
    group_id: Option<i64>,
    language_id: i64,
}

impl CaseFields {
    /// Validates a `{"case": {…}}` create: rejection faults, the channel's required fields, the
    /// subject, `created_at`, status / priority and ids. The first problem is the 400.
    fn read(per: &PerRequest, c: &Map<String, Value>) -> Result<Self, Answer> {
        check_rejections(&per.faults, c, None)?;
        let (content, content_html) = content_of(c);
        let initiator = get_int(c, "initiator_id")?.filter(|&id| id != 0);
        let case_email_id = get_int(c, "case_email_id")?;
        let channel = channel(
            &per.readings,
            c,
            (&content, &content_html),
            initiator,
            case_email_id,
        )?;
        let subject = get_str(c, "subject")
            .map(str::to_owned)
            .ok_or_else(|| bad("subject", "is required and must not be empty"))?;
        let created_at = incoming_time(&per.readings, c, true)?;
        let status = check_enum(c, "status", &STATUSES)?.unwrap_or_else(|| "open".into());
        let priority = check_enum(c, "priority", &PRIORITIES)?.unwrap_or_else(|| "normal".into());
        let (staff_id, group_id, language_id) = match (
            get_int(c, "staff_id"),
            get_int(c, "group_id"),
            get_int(c, "language_id"),
        ) {
            (Ok(s), Ok(g), Ok(l)) => (s.unwrap_or(0), g, l.unwrap_or(1)),
            (Err(a), _, _) | (_, Err(a), _) | (_, _, Err(a)) => return Err(a),
        };
        Ok(Self {
            channel,
            initiator,
            case_email_id,
            content,
            content_html,
            subject,
            created_at,
            status,
            priority,
            staff_id,
            group_id,
            language_id,
        })
    }
}

/// The channel of a new case and its required fields, per the migration recipe (003 §1.1 Email,
/// §2.1 Calls, WhatsApp, §3.1 custom channels).
fn channel(
    readings: &Readings,
    c: &Map<String, Value>,
    (content, content_html): (&str, &str),
    initiator: Option<i64>,
    case_email_id: Option<i64>,
) -> Result<Channel, Answer> {
    let make = |name: String, user_kind, user_key: String, recipient: String| Channel {
        name,
        user_kind,
        user_key,
        recipient,
    };
    if let Some(e) = get_str(c, "user_email") {
        if content_html.trim().is_empty() {
            return Err(bad("content_html", "is required for the Email channel"));
        }
        if initiator.is_some() && case_email_id != Some(-1) {
            return Err(bad(
                "case_email_id",
                "must be -1 for an agent-initiated case in the Email channel",
            ));
        }
        return Ok(make("email".into(), "email", e.into(), e.into()));
    }
    if let Some(p) = get_str(c, "user_phone") {
        if content.trim().is_empty() {
            return Err(bad("content", "is required for the Calls channel"));
        }
        return Ok(make("calls".into(), "phone", p.into(), p.into()));
    }
    if let Some(p) = get_str(c, "user_whatsapp_phone") {
        if content.trim().is_empty() && content_html.trim().is_empty() {
            return Err(bad("content", "is required for the WhatsApp channel"));
        }
        return Ok(make("whatsapp".into(), "whatsapp", p.into(), p.into()));
    }
    let Some(id) = get_str(c, "user_custom_id") else {
        return Err(bad(
            "user_email",
            "is required for the Email channel (or user_phone for Calls, user_custom_id for a custom channel)",
        ));
    };
    let Some(ch) = get_str(c, "user_custom_channel") else {
        return Err(bad(
            "user_custom_channel",
            "is required with user_custom_id",
        ));
    };
    if is_sync_channel(readings, &format!("custom:{ch}")) {
        check_sync_content(c)?;
    }
    if content.trim().is_empty() && content_html.trim().is_empty() {
        return Err(bad(
            "content_html",
            "is required for a custom channel (or content for a synchronous one)",
        ));
    }
    Ok(make(
        format!("custom:{ch}"),
        "custom",
        format!("{ch}:{id}"),
        id.into(),
    ))
}

/// Stores a validated case with its first message (and its files) and answers it.
fn store_case(
    st: &mut Account,
    c: &Map<String, Value>,
    f: CaseFields,
    files: Vec<super::account::Attachment>,
) -> Answer {
    let custom_fields: BTreeMap<String, Value> = match c.get("custom_fields") {
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => BTreeMap::new(),
    };
    let mut labels = int_list(c.get("labels"));
    labels.dedup();

    let now = Timestamp::now();
    let user_id = st.find_or_create_user(
        f.channel.user_kind,
        &f.channel.user_key,
        get_str(c, "user_full_name"),
        now,
    );
    let blocked = st.user_mut(user_id).is_some_and(|u| !u.active);
    let source_ticket = ["content", "content_html", "subject"]
        .iter()
        .filter_map(|k| c.get(*k).and_then(Value::as_str))
        .flat_map(parse_refs)
        .map(|(p, t, _)| (p, t))
        .next();
    let case_id = FIRST_CASE_ID + st.cases.len() as i64;
    let first = Message {
        message_id: st.next_message_id(),
        user_id: if f.initiator.is_some() { 0 } else { user_id },
        staff_id: f.initiator.unwrap_or(0),
        content: f.content,
        content_html: f.content_html,
        note: false,
        created_at: f.created_at,
        attachments: files,
        customer_emailed: f.initiator.is_some() && !get_bool(c, "do_not_send_email"),
    };
    let case = Case {
        case_id,
        case_number: format!("{:03}-{:06}", case_id % 1000, (case_id * 7919) % 1_000_000),
        user_id,
        channel: f.channel.name,
        subject: f.subject,
        status: f.status,
        priority: f.priority,
        staff_id: f.staff_id,
        group_id: f.group_id,
        initiator_id: f.initiator,
        case_email_id: f.case_email_id,
        custom_fields,
        labels,
        language_id: f.language_id,
        recipient: f.channel.recipient,
        created_at: f.created_at,
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
