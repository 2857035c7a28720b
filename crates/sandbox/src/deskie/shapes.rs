//! The JSON shapes the Deskie API answers with (pages 000 and 001): a case, a message, a user,
//! the numbered list form, and the `page` / `limit` bounds of every list.

use serde_json::{Map, Value, json};

use super::account::{Case, Message, User};
use super::fields::fmt_time;
use super::reply::{Answer, bad};

/// A case as the API answers it (page 001, "View a case").
pub(super) fn case_json(c: &Case) -> Value {
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

/// A message or note as the API answers it (page 001, "View messages").
pub(super) fn message_json(m: &Message) -> Value {
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

/// A user as the API answers it (page 000, "View a user").
pub(super) fn user_json(u: &User) -> Value {
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
pub(super) fn numbered(key: &str, items: Vec<Value>, total: usize) -> Value {
    let mut m = Map::new();
    for (i, item) in items.into_iter().enumerate() {
        m.insert(i.to_string(), json!({ key: item }));
    }
    m.insert("total_count".into(), json!(total));
    Value::Object(m)
}

/// `page` and `limit` with Deskie's bounds (limit ≤ 100, page ≤ 500).
pub(super) fn paging(pairs: &[(String, String)]) -> Result<(Option<usize>, Option<usize>), Answer> {
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
