//! A Deskie write's body, read once by the gate (`deskie/gate.rs`) before the route's handler
//! runs — the `delayed_apply` fault must see the content of a write before deciding to hold it —
//! and handed to the handler through the request's extensions: [`Written`] takes it out, and
//! [`PerRequest`] gives the faults and readings read once for the request.
//!
//! JSON bodies are read whole (up to `MAX_BODY`); multipart form fields `case[field]`,
//! `message[...]`, `note[...]` are nested into the same JSON shape and the files are read chunk
//! by chunk beside it (`deskie/files.rs`), in part order.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Multipart, Request};
use axum::http::request::Parts;
use serde_json::{Map, Value, json};

use super::account::Upload;
use super::files;
use super::reply::{Answer, bad};
use crate::config::{Faults, Readings};
use crate::state::MAX_BODY;

/// A write's body: its JSON (or multipart fields in the same shape) and its uploaded files.
#[derive(Debug, Clone, Default)]
pub(super) struct Payload {
    /// The JSON body; `Null` for a request without one (a GET).
    pub value: Value,
    /// The uploaded files, in part order.
    pub uploads: Vec<Upload>,
}

/// Extractor of the body the gate read ([`Payload`]; empty for a GET).
pub(super) struct Written(pub Payload);

impl<S: Send + Sync> FromRequestParts<S> for Written {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Written(
            parts.extensions.remove::<Payload>().unwrap_or_default(),
        ))
    }
}

/// The faults and readings in force when the request arrived, read once by the gate: a switch
/// made while the request runs applies to the next one.
#[derive(Debug, Clone)]
pub(super) struct PerRequest {
    pub faults: Arc<Faults>,
    pub readings: Arc<Readings>,
}

impl<S: Send + Sync> FromRequestParts<S> for PerRequest {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<PerRequest>()
            .cloned()
            .unwrap_or_else(|| PerRequest {
                faults: Arc::new(Faults::default()),
                readings: Arc::new(Readings::default()),
            }))
    }
}

/// Reads a write's body: JSON, or multipart form fields `case[field]`, `message[...]`,
/// `note[...]` (nested into the same JSON shape) and files, returned beside it in part order.
pub(super) async fn read_payload(req: Request) -> Result<Payload, Answer> {
    let is_multipart = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("multipart/form-data"));
    if is_multipart {
        let mut mp = Multipart::from_request(req, &())
            .await
            .map_err(|e| bad("body", format!("invalid multipart body: {e}")))?;
        let mut root = Value::Object(Map::new());
        let mut uploads = Vec::new();
        let mut kept = 0u64;
        loop {
            let field = match mp.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => return Err(bad("body", format!("invalid multipart body: {e}"))),
            };
            let name = field.name().unwrap_or_default().to_owned();
            if let Some(file_name) = field.file_name().map(str::to_owned) {
                uploads.push(files::read_upload(field, file_name, &mut kept).await?);
            } else {
                let text = field
                    .text()
                    .await
                    .map_err(|e| bad("body", format!("invalid multipart body: {e}")))?;
                insert_path(&mut root, &bracket_path(&name), Value::String(text));
            }
        }
        return Ok(Payload {
            value: root,
            uploads,
        });
    }
    let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY)
        .await
        .map_err(|e| bad("body", format!("unreadable body: {e}")))?;
    if bytes.is_empty() {
        return Ok(Payload {
            value: json!({}),
            uploads: Vec::new(),
        });
    }
    serde_json::from_slice(&bytes)
        .map(|value| Payload {
            value,
            uploads: Vec::new(),
        })
        .map_err(|e| bad("body", format!("invalid JSON: {e}")))
}

/// `case[custom_fields][cf_1]` → `["case", "custom_fields", "cf_1"]`; `x[]` ends with `""`.
fn bracket_path(name: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let (head, mut rest) = match name.find('[') {
        Some(i) => (&name[..i], &name[i..]),
        None => (name, ""),
    };
    parts.push(head.to_owned());
    while let Some(stripped) = rest.strip_prefix('[') {
        match stripped.find(']') {
            Some(end) => {
                parts.push(stripped[..end].to_owned());
                rest = &stripped[end + 1..];
            }
            None => break,
        }
    }
    parts
}

/// Puts `value` at `parts` in `root`, creating objects (and arrays for `[]`) on the way.
fn insert_path(root: &mut Value, parts: &[String], value: Value) {
    let Some((first, rest)) = parts.split_first() else {
        return;
    };
    if first.is_empty() {
        if !root.is_array() {
            *root = json!([]);
        }
        if let Value::Array(a) = root {
            if rest.is_empty() {
                a.push(value);
            } else {
                let mut child = json!({});
                insert_path(&mut child, rest, value);
                a.push(child);
            }
        }
        return;
    }
    if !root.is_object() {
        *root = json!({});
    }
    if let Value::Object(m) = root {
        if rest.is_empty() {
            m.insert(first.clone(), value);
        } else {
            let child = m.entry(first.clone()).or_insert(Value::Null);
            insert_path(child, rest, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bracket_paths() {
        assert_eq!(
            bracket_path("case[custom_fields][cf_1]"),
            vec!["case", "custom_fields", "cf_1"]
        );
        let mut root = json!({});
        insert_path(
            &mut root,
            &bracket_path("case[attachment_urls][]"),
            json!("a"),
        );
        insert_path(
            &mut root,
            &bracket_path("case[attachment_urls][]"),
            json!("b"),
        );
        insert_path(&mut root, &bracket_path("case[subject]"), json!("s"));
        assert_eq!(
            root,
            json!({"case": {"attachment_urls": ["a", "b"], "subject": "s"}})
        );
    }
}
