//! The rules every Deskie write that carries content obeys, whatever the resource: the
//! `reject_*` faults, the attachment limits (25 MB a file, 50 MB a request), and synchronous
//! custom channels (plain `content` only).

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::account::{Account, Attachment, Upload};
use super::fields::{get_str, url_list, value_text};
use super::files;
use super::files::{MAX_FILE, MAX_REQUEST};
use super::reply::{Answer, bad};
use crate::config::{Faults, Readings};
use crate::data::parse_refs;
use crate::state::Shared;

/// Applies the `reject_*` faults to the content a write carries.
pub(super) fn check_rejections(
    faults: &Faults,
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
pub(super) fn attachments(
    shared: &Shared,
    st: &mut Account,
    o: &Map<String, Value>,
    uploads: &[Upload],
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
        a.file_id = st.next_file_id();
        if a.upload.is_some() {
            a.link = files::file_url(shared, a.file_id);
        }
    }
    Ok(out)
}

/// Whether a case channel (`custom:<id>`) is a synchronous custom channel under the readings.
pub(super) fn is_sync_channel(readings: &Readings, channel: &str) -> bool {
    channel
        .strip_prefix("custom:")
        .and_then(|id| id.trim().parse::<i64>().ok())
        .is_some_and(|id| readings.sync_custom_channels.contains(&id))
}

/// Recipe 003 §3.1/§3.2: a synchronous custom channel takes plain `content` "(or content for a
/// custom channel of synchronous type)" in place of `content_html`; we read "in place of" as
/// strict: HTML there is refused with a 400 naming `content_html`, and `content` is required.
pub(super) fn check_sync_content(o: &Map<String, Value>) -> Result<(), Answer> {
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
