//! Files uploaded to the Deskie emulator in multipart writes: read chunk by chunk with their
//! SHA-256, kept in memory with their message (a generated Desk360 attachment uploaded back
//! unchanged is kept as a reference to the dataset, see [`share_generated`]), and served back at the attachment URL the answers
//! give (page 001 shows `"url": "https://[domain].deskie.io/some_path_here/345"` for every
//! attachment of a message, so an engine can point an inline `<img src>` at it).
//!
//! Choices where the pages are silent:
//! - The URL is `{deskie_url}/files/{file_id}`; `file_id` is unique in the account.
//! - Page 001 ("View messages"): links of fresh messages work without authorization, those of
//!   messages created more than 30 days ago need the API's basic auth. We follow it by the
//!   message's `created_at` (an import's old messages need the auth; 401 without it).
//! - Fetching a file is not an API method: it is not charged to the account budget and is
//!   journaled with cost 0. An outage (`deskie_down`) answers 503 there too.
//! - A file whose message or case was deleted is no longer served (404).
//! - Bytes past a limit (25 MB a file, 50 MB a request) are read and counted but not kept: the
//!   write is refused with a 400 naming the file anyway.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::multipart::Field;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, Response, StatusCode, header};
use axum::routing::get;
use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};

use super::account::{Account, Content, Upload};
use super::app::App;
use super::reply::{Answer, bad};
use crate::respond::{json_response, proxy_error_page};
use crate::state::Server;
use crate::state::{Shared, entry_for, lock};

/// `GET /files/{file}`: outside the API gate (see the module notes).
pub(super) fn routes() -> Router<App> {
    Router::new().route("/files/{file}", get(serve))
}

/// Page 001: "The maximum size of a single file is 25MB".
pub(super) const MAX_FILE: u64 = 25 * 1024 * 1024;
/// Page 001: "the total size of all files … should not exceed 50MB".
pub(super) const MAX_REQUEST: u64 = 50 * 1024 * 1024;

/// Page 001: links of messages older than this need the API's authentication.
const FRESH: SignedDuration = SignedDuration::from_hours(30 * 24);

/// Reads one file part, chunk by chunk; `kept` is the running size of the request's files.
pub(super) async fn read_upload(
    mut field: Field<'_>,
    name: String,
    kept: &mut u64,
) -> Result<Upload, Answer> {
    let mime = field
        .content_type()
        .map(str::to_owned)
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    let mut hasher = Sha256::new();
    let mut data = Vec::new();
    let mut size: u64 = 0;
    let mut keep = true;
    loop {
        let chunk = match field.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => return Err(bad("body", format!("invalid multipart body: {e}"))),
        };
        hasher.update(&chunk);
        size += chunk.len() as u64;
        keep = keep && size <= MAX_FILE && *kept + size <= MAX_REQUEST;
        if keep {
            data.extend_from_slice(&chunk);
        } else {
            data = Vec::new();
        }
    }
    if keep {
        *kept += size;
    }
    let sha256 = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(Upload {
        name,
        size,
        sha256,
        mime,
        content: Content::Kept(Bytes::from(data)),
    })
}

/// Keeps the uploads that are generated attachments of the Desk360 dataset, byte for byte, as a
/// reference to it instead of their bytes (see [`Content::Generated`]).
pub(super) fn share_generated(shared: &Shared, uploads: &mut [Upload]) {
    let dataset = shared.dataset();
    for u in uploads {
        let Content::Kept(bytes) = &u.content else {
            continue;
        };
        if let Some(path) = dataset.generated_file(&u.name, bytes) {
            u.content = Content::Generated(path.to_owned());
        }
    }
}

/// The URL a stored file is served at.
pub(super) fn file_url(shared: &Shared, file_id: i64) -> String {
    format!("{}/files/{file_id}", shared.deskie_url)
}

/// Serves `GET /files/{file_id}` (see the module notes for auth, charging and journaling): the
/// latency and the journal entry (cost 0) are its own, not the API gate's.
async fn serve(State(app): State<App>, Path(file): Path<String>, req: Request) -> Response<Body> {
    let shared = &app.shared;
    let mut journal = entry_for(Server::Deskie, &req, 0);
    shared.delay().await;
    let authorized = app.authorized(req.headers());
    let resp = if shared.faults().deskie_down {
        proxy_error_page(StatusCode::SERVICE_UNAVAILABLE)
    } else {
        let found = file.parse::<i64>().ok().and_then(|id| {
            let mut st = lock(&app.account);
            find(&mut st, id)
        });
        match found {
            None => json_response(
                StatusCode::NOT_FOUND,
                &serde_json::json!({"errors": {"file": "not found"}}),
            ),
            Some((created_at, _, _)) if !authorized && Timestamp::now() - FRESH > created_at => {
                json_response(
                    StatusCode::UNAUTHORIZED,
                    &serde_json::json!({"errors": {"authorization": "files of messages older than 30 days need the API authentication"}}),
                )
            }
            Some((_, mime, content)) => {
                let body = match content {
                    Content::Kept(bytes) => Body::from(bytes),
                    Content::Generated(path) => {
                        let size = shared.dataset().attachment_size(&path).unwrap_or(0);
                        let chunks = crate::data::file_chunks(shared.config.seed, &path, size);
                        Body::from_stream(futures::stream::iter(
                            chunks.map(|c| Ok::<_, std::io::Error>(Bytes::from(c))),
                        ))
                    }
                };
                let mut resp = Response::new(body);
                let ct = HeaderValue::from_str(&mime)
                    .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
                resp.headers_mut().insert(header::CONTENT_TYPE, ct);
                resp
            }
        }
    };
    journal.status = resp.status().as_u16();
    shared.record(journal);
    resp
}

/// The message time, content type and content of a stored file that still exists.
fn find(st: &mut Account, file_id: i64) -> Option<(Timestamp, String, Content)> {
    let &(case_id, message_id) = st.file_index.get(&file_id)?;
    let case = st.case_mut(case_id)?;
    let message = case.messages.iter().find(|m| m.message_id == message_id)?;
    let a = message.attachments.iter().find(|a| a.file_id == file_id)?;
    let upload = a.upload.as_ref()?;
    Some((
        message.created_at,
        upload.mime.clone(),
        upload.content.clone(),
    ))
}
