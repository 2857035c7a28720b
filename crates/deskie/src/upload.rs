//! Writes that carry files: the pages' multipart/form-data forms of "create a case", "add a
//! response" and "add a note" (page 001), streamed, plus the response edit the engine uses to
//! point inline images at Deskie's copies.
//!
//! The files are never held in memory whole: each [`UploadFile`] names a [`FileSource`] that
//! opens a fresh byte stream, and the stream is opened only when the multipart body reaches the
//! file's part, so one request holds at most a chunk of one file at a time. A source is opened
//! again for every attempt (an attempt refused with 429, or whose connection never opened, is
//! sent again under the usual rules of [`crate::DeskieClient`]); a write sent without an answer is
//! [`DeskieError::Ambiguous`] like any other, and the engine reconciles it by reading.
//!
//! Form fields (page 001, "Request in multipart/form-data format" and the curl samples): every
//! field of the JSON body goes under the wrapper, nested with brackets
//! (`case[custom_fields][cf_44]=3`, arrays as `case[labels][]`), files as `case[attachments][i]`
//! counted from 0 as in the curl samples (the JSON-like sample counts from 1; both are distinct
//! keys, which is all the server needs). Booleans are sent as `1` / `0`: the form carries text,
//! and `"false"` would read as true to a PHP-style form parser.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use reqwest::multipart::{Form, Part};
use serde::Serialize;
use serde_json::Value;

use crate::client::{DeskieClient, Verb, decode};
use crate::error::{DeskieError, Result};
use crate::requests::{NewCase, NewMessage, NewNote};
use crate::responses::{Case, MessageInfo};

/// A file's bytes as a stream of chunks.
pub type FileStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// The future that opens a [`FileStream`].
pub type OpenFile = Pin<Box<dyn Future<Output = io::Result<FileStream>> + Send>>;

/// Where an uploaded file's bytes come from. Opened once per attempt, lazily, so a retried
/// request re-reads the file instead of keeping it in memory (e.g. a new download from Desk360).
pub trait FileSource: Send + Sync {
    /// Starts reading the file from its first byte.
    fn open(&self) -> OpenFile;
}

/// One file to send with a write.
#[derive(Clone)]
pub struct UploadFile {
    /// The file name Deskie shows (the part's `filename`).
    pub name: String,
    /// MIME type, when known; otherwise the server guesses from the name.
    pub content_type: Option<String>,
    /// Opens the bytes.
    pub source: Arc<dyn FileSource>,
}

impl std::fmt::Debug for UploadFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadFile")
            .field("name", &self.name)
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}

/// Bound on one multipart write (connect, send every file, answer): files up to 50 MB a request
/// need more than the client's ordinary timeout on a slow link.
pub const UPLOAD_TIMEOUT: Duration = Duration::from_secs(15 * 60);

impl DeskieClient {
    /// Creates a case with files (`POST cases.json` as multipart/form-data, cost 2): the same
    /// answer as [`DeskieClient::create_case`].
    pub async fn create_case_with_files(
        &self,
        case: &NewCase,
        files: &[UploadFile],
    ) -> Result<Case> {
        let path = "cases.json";
        let value = self.multipart_write(path, "case", case, files).await?;
        decode(value, &["case"], Verb::Post, path)
    }

    /// Adds a response with files (`POST cases/{id}/messages.json` as multipart/form-data).
    pub async fn add_message_with_files(
        &self,
        case_id: i64,
        message: &NewMessage,
        files: &[UploadFile],
    ) -> Result<MessageInfo> {
        let path = format!("cases/{case_id}/messages.json");
        let value = self
            .multipart_write(&path, "message", message, files)
            .await?;
        decode(value, &["message", "note"], Verb::Post, &path)
    }

    /// Adds an internal note with files (`POST cases/{id}/note.json` as multipart/form-data).
    pub async fn add_note_with_files(
        &self,
        case_id: i64,
        note: &NewNote,
        files: &[UploadFile],
    ) -> Result<MessageInfo> {
        let path = format!("cases/{case_id}/note.json");
        let value = self.multipart_write(&path, "note", note, files).await?;
        decode(value, &["message", "note"], Verb::Post, &path)
    }

    /// Replaces a response's or a note's HTML (page 001 "Edit a response",
    /// `PUT cases/{id}/messages/{message_id}.json` with `{"message":{…}}`, and "Edit a note",
    /// `PUT cases/{id}/note/{message_id}.json` with `{"note":{…}}`; cost 2), e.g. to point inline
    /// images at the copies Deskie stored. A response is sent as `content_html`, a note as
    /// `content` (the page's samples show `content`; the field the message was written with is
    /// the one replaced). Idempotent: the
    /// same edit sent twice leaves the same message.
    pub async fn edit_message_html(
        &self,
        case_id: i64,
        message_id: i64,
        content_html: &str,
        note: bool,
    ) -> Result<MessageInfo> {
        let (path, body) = if note {
            (
                format!("cases/{case_id}/note/{message_id}.json"),
                // Notes are written with `content` (see `NewNote`): the same field is replaced.
                serde_json::json!({ "note": { "content": content_html } }),
            )
        } else {
            (
                format!("cases/{case_id}/messages/{message_id}.json"),
                serde_json::json!({ "message": { "content_html": content_html } }),
            )
        };
        let bytes = serde_json::to_vec(&body)
            .map_err(|e| DeskieError::config(format!("cannot serialize the request: {e}")))?;
        let url = self.api_url(&path)?;
        let what = format!("PUT {path}");
        let (limiter, retry) = self.budget();
        let value = transport::call(limiter, retry, Verb::Put.cost(), &what, || {
            let request = self
                .request(Verb::Put, &url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(bytes.clone());
            self.send_classified(Verb::Put, &what, request)
        })
        .await?;
        decode(value, &["message", "note"], Verb::Put, &path)
    }

    /// One multipart POST under the limiter; the form is rebuilt (and the files reopened) for
    /// every attempt.
    async fn multipart_write<B: Serialize>(
        &self,
        path: &str,
        wrapper: &str,
        body: &B,
        files: &[UploadFile],
    ) -> Result<Value> {
        let value = serde_json::to_value(body)
            .map_err(|e| DeskieError::config(format!("cannot serialize the request: {e}")))?;
        let mut fields = Vec::new();
        flatten(wrapper, &value, &mut fields);
        let url = self.api_url(path)?;
        let what = format!("POST {path} (multipart, {} files)", files.len());
        let (limiter, retry) = self.budget();
        transport::call(limiter, retry, Verb::Post.cost(), &what, || {
            let form = build_form(wrapper, &fields, files);
            let request = self
                .request(Verb::Post, &url)
                .timeout(UPLOAD_TIMEOUT)
                .multipart(form);
            self.send_classified(Verb::Post, &what, request)
        })
        .await
    }
}

/// The form of one attempt: text fields first, then each file as a lazily opened stream.
fn build_form(wrapper: &str, fields: &[(String, String)], files: &[UploadFile]) -> Form {
    let mut form = Form::new();
    for (name, value) in fields {
        form = form.text(name.clone(), value.clone());
    }
    for (i, file) in files.iter().enumerate() {
        let part = match &file.content_type {
            // An unparsable type consumes the part: build it again without one.
            Some(mime) => file_part(file)
                .mime_str(mime)
                .unwrap_or_else(|_| file_part(file)),
            None => file_part(file),
        };
        form = form.part(format!("{wrapper}[attachments][{i}]"), part);
    }
    form
}

/// A file's part whose stream is opened when the body reaches it, not when the form is built.
fn file_part(file: &UploadFile) -> Part {
    let source = Arc::clone(&file.source);
    let stream = futures::stream::once(async move { source.open().await }).try_flatten();
    Part::stream(reqwest::Body::wrap_stream(stream)).file_name(file.name.clone())
}

/// The JSON body as form fields under `prefix`: objects nest with `[key]`, arrays with `[]`,
/// booleans as `1`/`0`, nulls left out (the JSON form leaves them out too).
fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Null => {}
        Value::Bool(b) => out.push((prefix.to_owned(), if *b { "1" } else { "0" }.to_owned())),
        Value::Number(n) => out.push((prefix.to_owned(), n.to_string())),
        Value::String(s) => out.push((prefix.to_owned(), s.clone())),
        Value::Array(items) => {
            for item in items {
                flatten(&format!("{prefix}[]"), item, out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                flatten(&format!("{prefix}[{key}]"), item, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_flattens_to_bracketed_fields() {
        let body = serde_json::json!({
            "subject": "Hi",
            "do_not_send_email": true,
            "staff_id": 7,
            "user_full_name": null,
            "custom_fields": {"cf_44": "3"},
            "labels": ["a", "b"],
        });
        let mut out = Vec::new();
        flatten("case", &body, &mut out);
        out.sort();
        assert_eq!(
            out,
            vec![
                ("case[custom_fields][cf_44]".into(), "3".into()),
                ("case[do_not_send_email]".into(), "1".into()),
                ("case[labels][]".into(), "a".into()),
                ("case[labels][]".into(), "b".into()),
                ("case[staff_id]".into(), "7".into()),
                ("case[subject]".into(), "Hi".into()),
            ]
        );
    }
}
