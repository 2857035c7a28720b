//! What Desk360 sends, read leniently with serde derive.
//!
//! The pages show nulls where values are expected, numbers that may arrive as strings, naive
//! timestamps, `custom_fields` as `[]`, and attachments either grouped (`images`, `videos`,
//! `files`, `others`) or as a plain array. A surprising field must not fail a whole page, so
//! every field is read with a `transport::lenient` helper: it takes what it can and becomes
//! `None` otherwise. A field Desk360 sends under several names (a reason's `title` or `name`,
//! an attachment's `url` or `path`…) is read from the object's remaining fields (`flatten`), the
//! first name present winning. Only what makes an object unusable is an error (not an object, no
//! `id`, a message list that is not a list), and then the error names the object: the
//! `from_value` readers check that first, so their messages say "message has no id" rather than
//! serde's wording.
//!
//! Every type also implements `Deserialize` (and `Serialize` with Desk360's field names), so the
//! engine can re-read a stored raw body with [`TicketDetail::from_json`] or `serde_json`.

use std::collections::BTreeMap;

use model::AttachmentKind;
use serde::de::DeserializeOwned;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use transport::excerpt;
use transport::lenient::{self, kind_of};

use crate::error::Desk360Error;

// ---------------------------------------------------------------------------------------------
// Object checks and fields sent under several names.

fn as_object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{what} is {} instead of an object", kind_of(v)))
}

fn required_id(o: &Map<String, Value>, what: &str) -> Result<i64, String> {
    o.get("id")
        .and_then(lenient::int)
        .ok_or_else(|| match o.get("id") {
            None => format!("{what} has no id"),
            Some(v) => format!("{what} has an unusable id {v}"),
        })
}

/// Reads one object named `what` (`ticket`, `message`…): an object with a usable id, whose
/// fields the derived `Deserialize` then reads.
fn read_object<T: DeserializeOwned>(v: &Value, what: &str) -> Result<T, String> {
    required_id(as_object(v, what)?, what)?;
    T::deserialize(v).map_err(|e| e.to_string())
}

/// The fields of an object that its type does not name: where the readers below find a value
/// sent under one of several names.
type Rest = BTreeMap<String, Value>;

/// The first of `names` present as text (`blank`: whether an empty or blank text counts).
fn first_text(rest: &Rest, names: &[&str], blank: bool) -> Option<String> {
    names.iter().find_map(|name| {
        rest.get(*name)
            .and_then(lenient::text)
            .filter(|s| blank || !s.trim().is_empty())
    })
}

/// Writes a field read by one of the readers below back under its main name.
fn entry<S: Serializer, T: Serialize>(name: &str, value: &T, s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(1))?;
    map.serialize_entry(name, value)?;
    map.end()
}

/// A type's or reason's title: the list endpoint calls it `name`, the create/get endpoints
/// `title`; `title` wins when both are present.
fn title_or_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(first_text(&Rest::deserialize(d)?, &["title", "name"], true))
}

fn title_entry<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    entry("title", v, s)
}

/// A ticket's phone, as `phone` or `phone_number`.
fn phone<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(first_text(
        &Rest::deserialize(d)?,
        &["phone", "phone_number"],
        true,
    ))
}

fn phone_entry<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    entry("phone", v, s)
}

// Desk360 documents the attachment groups but not their entries (page 004): the names seen in
// its answers and SDKs are tried in turn, the first present (and not blank) wins.

fn file_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let names = ["url", "path", "file_url", "link", "src"];
    Ok(first_text(&Rest::deserialize(d)?, &names, false))
}

fn url_entry<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    entry("url", v, s)
}

fn file_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let names = ["name", "file_name", "filename", "original_name", "title"];
    Ok(first_text(&Rest::deserialize(d)?, &names, false))
}

fn name_entry<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    entry("name", v, s)
}

fn file_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let rest = Rest::deserialize(d)?;
    Ok(["size", "file_size", "filesize", "bytes"]
        .iter()
        .find_map(|name| rest.get(*name).and_then(lenient::int))
        .and_then(|i| u64::try_from(i).ok()))
}

fn size_entry<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    entry("size", v, s)
}

fn content_type<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let names = ["contentType", "content_type"];
    Ok(first_text(&Rest::deserialize(d)?, &names, true))
}

fn content_type_entry<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    entry("contentType", v, s)
}

/// Lists come as a bare array; some Laravel-style endpoints wrap them as `{"data": […]}`.
pub(crate) fn list_items(v: Value) -> Result<Vec<Value>, String> {
    match v {
        Value::Array(items) => Ok(items),
        Value::Object(mut o) => match o.remove("data") {
            Some(Value::Array(items)) => Ok(items),
            _ => Err("expected a JSON array (or an object with a \"data\" array)".to_owned()),
        },
        other => Err(format!("expected a JSON array, got {}", kind_of(&other))),
    }
}

/// A single object may also come wrapped as `{"data": {…}}`.
fn unwrap_data(v: Value) -> Value {
    match v {
        Value::Object(mut o)
            if !o.contains_key("id") && o.get("data").is_some_and(Value::is_object) =>
        {
            o.remove("data").unwrap_or(Value::Null)
        }
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// Products, agents, types, reasons.

/// A Desk360 product: tickets are listed per product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductInfo {
    /// Product id, used in ticket URLs.
    #[serde(deserialize_with = "lenient::req_i64")]
    pub id: i64,
    /// Display name.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub name: Option<String>,
    /// Logo URL, often null.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub logo: Option<String>,
}

impl ProductInfo {
    /// Reads one product; fails only without a usable id.
    pub fn from_value(v: &Value) -> Result<Self, String> {
        read_object(v, "product")
    }
}

/// A Desk360 agent (also the answer of `/v1/me`), to map agents to Deskie staff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// Agent id as used in tickets' and messages' `agent_id`.
    #[serde(deserialize_with = "lenient::req_i64")]
    pub id: i64,
    /// Display name.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub name: Option<String>,
    /// Login email: the natural key to match a Deskie staff member.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub email: Option<String>,
    /// Avatar URL.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub avatar: Option<String>,
}

impl AgentInfo {
    /// Reads one agent; fails only without a usable id.
    pub fn from_value(v: &Value) -> Result<Self, String> {
        read_object(v, "agent")
    }
}

/// A ticket type, to map to Deskie labels or custom fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TypeInfo {
    /// Type id as used in tickets' `type_id`.
    #[serde(deserialize_with = "lenient::req_i64")]
    pub id: i64,
    /// Product it belongs to (0: every product).
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub product_id: Option<i64>,
    /// Title shown to agents (`title`, or `name`).
    #[serde(
        flatten,
        deserialize_with = "title_or_name",
        serialize_with = "title_entry"
    )]
    pub title: Option<String>,
    /// Longer description.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub description: Option<String>,
    /// Whether agents can still pick it.
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub is_active: Option<bool>,
    /// Whether the account created it (as opposed to Desk360's built-in types).
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub is_custom: Option<bool>,
    /// Naive timestamp as sent.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub created_at: Option<String>,
    /// Naive timestamp as sent.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub updated_at: Option<String>,
}

impl TypeInfo {
    /// Reads one type; fails only without a usable id.
    pub fn from_value(v: &Value) -> Result<Self, String> {
        read_object(v, "type")
    }
}

/// A ticket reason, to map to Deskie labels or custom fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReasonInfo {
    /// Reason id as used in tickets' `reason_id`.
    #[serde(deserialize_with = "lenient::req_i64")]
    pub id: i64,
    /// Product it belongs to.
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub product_id: Option<i64>,
    /// Title shown to agents. The list endpoint calls it `name`, the create/get endpoints
    /// `title`: both are accepted (`title` wins when both are present).
    #[serde(
        flatten,
        deserialize_with = "title_or_name",
        serialize_with = "title_entry"
    )]
    pub title: Option<String>,
    /// Whether agents can still pick it.
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub is_active: Option<bool>,
    /// Naive timestamp as sent.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub created_at: Option<String>,
    /// Naive timestamp as sent.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub updated_at: Option<String>,
}

impl ReasonInfo {
    /// Reads one reason; fails only without a usable id.
    pub fn from_value(v: &Value) -> Result<Self, String> {
        read_object(v, "reason")
    }
}

// ---------------------------------------------------------------------------------------------
// Tickets.

/// One entry of a ticket list page: enough to decide whether the details must be fetched
/// (`updated_at` unchanged → already stored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketSummary {
    /// Ticket id within its product.
    #[serde(deserialize_with = "lenient::req_i64")]
    pub id: i64,
    /// Reason id, if any.
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub reason_id: Option<i64>,
    /// Type id, if any.
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub type_id: Option<i64>,
    /// Assigned agent (0 or null: unassigned).
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub agent_id: Option<i64>,
    /// Customer's name.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub name: Option<String>,
    /// Customer's email.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub email: Option<String>,
    /// Subject; often null.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub subject: Option<String>,
    /// Excerpt of the last message.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub last_message: Option<String>,
    /// Desk360 channel, e.g. "Application", "Email".
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub channel: Option<String>,
    /// Platform, e.g. "Android".
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub platform: Option<String>,
    /// Status code (1 resolved, 2 waiting, 0 before either).
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub status: Option<i64>,
    /// Priority code (0 low … 3 urgent).
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub priority: Option<i64>,
    /// Naive timestamp as sent.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub created_at: Option<String>,
    /// Naive timestamp as sent; compared verbatim with the stored one.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub updated_at: Option<String>,
}

impl TicketSummary {
    /// Reads one list entry; fails only without a usable id.
    pub fn from_value(v: &Value) -> Result<Self, String> {
        read_object(v, "ticket")
    }
}

/// A list entry that could not be read (not an object, no id). Reported, never silently
/// dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvalidEntry {
    /// Why it was refused.
    pub detail: String,
    /// The first ~200 characters of the entry's JSON.
    pub excerpt: String,
}

/// One page of a product's ticket list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TicketPage {
    /// The readable entries, in the server's order.
    pub tickets: Vec<TicketSummary>,
    /// Entries that could not be read; the engine reports them.
    pub invalid: Vec<InvalidEntry>,
    /// The `Link: <…>; rel=next` URL exactly as the server gave it (resolved only if relative),
    /// already checked to be on the configured host; `None` on the last page.
    pub next: Option<String>,
}

/// One attachment reference. Deskie downloads it from `url`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentDto {
    /// Download URL (missing ones are kept so the engine can report them).
    #[serde(flatten, deserialize_with = "file_url", serialize_with = "url_entry")]
    pub url: Option<String>,
    /// File name.
    #[serde(flatten, deserialize_with = "file_name", serialize_with = "name_entry")]
    pub name: Option<String>,
    /// Desk360's `type` ("image", "file", …).
    #[serde(rename = "type", default, deserialize_with = "lenient::opt_text")]
    pub kind: Option<String>,
    /// Size in bytes, when sent (needed for Deskie's 25 MB / 50 MB limits).
    #[serde(flatten, deserialize_with = "file_size", serialize_with = "size_entry")]
    pub size: Option<u64>,
    /// Whether the file is stored on Desk360's S3.
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub aws: Option<bool>,
    /// MIME type, when sent (`contentType`, or `content_type`).
    #[serde(
        flatten,
        deserialize_with = "content_type",
        serialize_with = "content_type_entry"
    )]
    pub content_type: Option<String>,
}

impl AttachmentDto {
    /// One entry of an attachment group: an object, or a bare URL string; anything else is an
    /// entry without a URL (kept, so the normalisation reports it).
    fn from_value(v: &Value) -> Self {
        match v {
            Value::String(s) => Self {
                url: Some(s.clone()),
                ..Self::default()
            },
            Value::Object(_) => Self::deserialize(v).unwrap_or_default(),
            _ => Self::default(),
        }
    }
}

/// A message's attachments in Desk360's four groups.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Attachments {
    /// `images` group.
    pub images: Vec<AttachmentDto>,
    /// `videos` group.
    pub videos: Vec<AttachmentDto>,
    /// `files` group.
    pub files: Vec<AttachmentDto>,
    /// `others` group (and any group name this client does not know).
    pub others: Vec<AttachmentDto>,
}

impl<'de> Deserialize<'de> for Attachments {
    /// The grouped object, a plain array (grouped by each item's `type`), or null: the shape
    /// decides, so it is read from the value.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::from_value(Some(&Value::deserialize(d)?)))
    }
}

impl Attachments {
    /// Reads the grouped object, a plain array (grouped by each item's `type`), or null.
    fn from_value(v: Option<&Value>) -> Self {
        let mut out = Self::default();
        let items = |v: &Value| -> Vec<AttachmentDto> {
            match v {
                Value::Array(a) => a.iter().map(AttachmentDto::from_value).collect(),
                Value::Null => Vec::new(),
                other => vec![AttachmentDto::from_value(other)],
            }
        };
        match v {
            Some(Value::Object(groups)) => {
                for (name, list) in groups {
                    let list = items(list);
                    match name.as_str() {
                        "images" => out.images.extend(list),
                        "videos" => out.videos.extend(list),
                        "files" => out.files.extend(list),
                        _ => out.others.extend(list),
                    }
                }
            }
            Some(Value::Array(list)) => {
                for item in list.iter().map(AttachmentDto::from_value) {
                    match item.kind.as_deref().map(str::to_ascii_lowercase).as_deref() {
                        Some("image" | "images") => out.images.push(item),
                        Some("video" | "videos") => out.videos.push(item),
                        Some("file" | "files") => out.files.push(item),
                        _ => out.others.push(item),
                    }
                }
            }
            _ => {}
        }
        out
    }

    /// Every attachment with its group, in group order (images, videos, files, others).
    pub fn iter(&self) -> impl Iterator<Item = (AttachmentKind, &AttachmentDto)> {
        let tag = |k: AttachmentKind| move |a| (k, a);
        self.images
            .iter()
            .map(tag(AttachmentKind::Image))
            .chain(self.videos.iter().map(tag(AttachmentKind::Video)))
            .chain(self.files.iter().map(tag(AttachmentKind::File)))
            .chain(self.others.iter().map(tag(AttachmentKind::Other)))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
            && self.videos.is_empty()
            && self.files.is_empty()
            && self.others.is_empty()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.images.len() + self.videos.len() + self.files.len() + self.others.len()
    }
}

/// A field that was sent but cannot be read as an integer: its JSON text, for the error or
/// warning that names it. Null and absent are not unreadable.
fn unreadable_int(v: Option<&Value>) -> Option<String> {
    match v {
        None | Some(Value::Null) => None,
        Some(v) if lenient::int(v).is_some() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    }
}

/// An integer field that may be unreadable, read from the message's remaining fields: the
/// value, and the text as sent when it was neither null nor an integer.
fn int_or_raw(rest: &Rest, name: &str) -> (Option<i64>, Option<String>) {
    let v = rest.get(name);
    (v.and_then(lenient::int), unreadable_int(v))
}

/// A message's `agent_id` and `type`, each with its unreadable text (see [`MessageDto`]).
#[derive(Default)]
struct AuthorAndKind {
    agent_id: (Option<i64>, Option<String>),
    kind: (Option<i64>, Option<String>),
}

impl<'de> Deserialize<'de> for AuthorAndKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let rest = Rest::deserialize(d)?;
        Ok(Self {
            agent_id: int_or_raw(&rest, "agent_id"),
            kind: int_or_raw(&rest, "type"),
        })
    }
}

/// What a message is read as, before its `agent_id` and `type` are split into value and
/// unreadable text.
#[derive(Deserialize)]
struct MessageFields {
    #[serde(deserialize_with = "lenient::req_i64")]
    id: i64,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    message: Option<String>,
    #[serde(default)]
    attachments: Attachments,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    created_at: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    updated_at: Option<String>,
    #[serde(flatten)]
    author_and_kind: AuthorAndKind,
}

impl From<MessageFields> for MessageDto {
    fn from(m: MessageFields) -> Self {
        let AuthorAndKind { agent_id, kind } = m.author_and_kind;
        Self {
            id: m.id,
            agent_id: agent_id.0,
            agent_id_unreadable: agent_id.1,
            message: m.message,
            attachments: m.attachments,
            kind: kind.0,
            kind_unreadable: kind.1,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// One message (or note) of a ticket.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(from = "MessageFields")]
pub struct MessageDto {
    /// Message id; breaks ties between equal timestamps.
    pub id: i64,
    /// 0 or null: written by the customer; otherwise the agent's id.
    pub agent_id: Option<i64>,
    /// `agent_id` exactly as sent when it was neither null nor an integer (`"-"`, `"n/a"`,
    /// `true`): who wrote the message is then unknown, and guessing "customer" would publish an
    /// agent's reply as the customer's (issue #11.10), so [`TicketDetail::to_model`] refuses it.
    pub agent_id_unreadable: Option<String>,
    /// HTML body; may be null (an attachment-only message).
    pub message: Option<String>,
    /// Attached files.
    pub attachments: Attachments,
    /// Desk360 message `type`: 6 is a note, 0 a reply (the only two page 004 shows).
    pub kind: Option<i64>,
    /// `type` exactly as sent when it was neither null nor an integer: an unknown kind.
    pub kind_unreadable: Option<String>,
    /// Naive timestamp as sent.
    pub created_at: Option<String>,
    /// Naive timestamp as sent.
    pub updated_at: Option<String>,
}

impl Serialize for MessageDto {
    /// Desk360's field names; an unreadable `agent_id` or `type` is written back as it came, so
    /// a serialized message read again is still refused, never turned into the customer's.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("MessageDto", 7)?;
        st.serialize_field("id", &self.id)?;
        match &self.agent_id_unreadable {
            Some(raw) => st.serialize_field("agent_id", raw)?,
            None => st.serialize_field("agent_id", &self.agent_id)?,
        }
        st.serialize_field("message", &self.message)?;
        st.serialize_field("attachments", &self.attachments)?;
        match &self.kind_unreadable {
            Some(raw) => st.serialize_field("type", raw)?,
            None => st.serialize_field("type", &self.kind)?,
        }
        st.serialize_field("created_at", &self.created_at)?;
        st.serialize_field("updated_at", &self.updated_at)?;
        st.end()
    }
}

impl MessageDto {
    /// Reads one message; fails only without a usable id.
    pub fn from_value(v: &Value) -> Result<Self, String> {
        read_object(v, "message")
    }

    /// Whether this is an internal note (`type` 6).
    pub fn is_note(&self) -> bool {
        self.kind == Some(6)
    }

    /// Whether the customer wrote it (`agent_id` 0 or absent, and not an unreadable value).
    pub fn is_from_customer(&self) -> bool {
        self.agent_id_unreadable.is_none() && self.agent_id.is_none_or(|a| a == 0)
    }
}

/// A ticket's messages: an array, `null`, or a numbered object (`{"0": …, "1": …}`, kept in
/// numeric order, as some APIs send); each must be a readable message, named by its position.
fn messages<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<MessageDto>, D::Error> {
    let items: Vec<(u64, Value)> = match Value::deserialize(d)? {
        Value::Null => Vec::new(),
        Value::Array(items) => (0..).zip(items).collect(),
        Value::Object(numbered) if numbered.keys().all(|k| k.parse::<u64>().is_ok()) => {
            let mut items: Vec<(u64, Value)> = numbered
                .into_iter()
                .filter_map(|(k, v)| k.parse::<u64>().ok().map(|n| (n, v)))
                .collect();
            items.sort_by_key(|(n, _)| *n);
            items
        }
        other => {
            return Err(serde::de::Error::custom(format!(
                "messages is {} instead of an array",
                kind_of(&other)
            )));
        }
    };
    items
        .iter()
        .map(|(i, m)| {
            MessageDto::from_value(m)
                .map_err(|e| serde::de::Error::custom(format!("messages[{i}]: {e}")))
        })
        .collect()
}

/// A ticket with its messages, and the body exactly as received (the store keeps it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketDetail {
    /// What the list entry of the ticket also says (id, customer, subject, codes, times),
    /// read from the same fields of the body.
    #[serde(flatten)]
    pub summary: TicketSummary,
    /// Customer's phone (`phone`, or `phone_number`), when the ticket carries one (needed for
    /// Deskie's Calls channel).
    #[serde(flatten, deserialize_with = "phone", serialize_with = "phone_entry")]
    pub phone: Option<String>,
    /// Free-form settings (any JSON).
    #[serde(default, deserialize_with = "lenient::opt_json")]
    pub settings: Option<Value>,
    /// Customer's country code.
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub country_code: Option<String>,
    /// Customer's rating (any JSON; usually a number or null).
    #[serde(default, deserialize_with = "lenient::opt_json")]
    pub star_rating: Option<Value>,
    /// Custom fields (any JSON; `[]` when none).
    #[serde(default, deserialize_with = "lenient::opt_json")]
    pub custom_fields: Option<Value>,
    /// Messages and notes, in the server's order.
    #[serde(default, deserialize_with = "messages")]
    pub messages: Vec<MessageDto>,
    /// The response body exactly as received: set by [`TicketDetail::from_json`], empty when
    /// the detail was read some other way.
    #[serde(skip)]
    pub raw: String,
}

impl TicketDetail {
    /// Reads one ticket detail from a parsed body; `raw` is left empty.
    pub fn from_value(v: &Value) -> Result<Self, String> {
        read_object(v, "ticket")
    }

    /// Reads a ticket detail body (as received, or as stored) and keeps it in `raw`. `what`
    /// names the ticket in the error, e.g. `ticket 1/42`.
    pub fn from_json(raw: &str, what: &str) -> Result<Self, Desk360Error> {
        let malformed = |detail: String| Desk360Error::Malformed {
            what: what.to_owned(),
            detail,
            excerpt: excerpt(raw, 200),
        };
        let value: Value =
            serde_json::from_str(raw).map_err(|e| malformed(format!("not valid JSON: {e}")))?;
        let mut detail = Self::from_value(&unwrap_data(value)).map_err(malformed)?;
        detail.raw = raw.to_owned();
        Ok(detail)
    }
}

/// Reads a list body into items, keeping the unreadable ones as [`InvalidEntry`].
pub(crate) fn read_list<T>(
    items: Vec<Value>,
    read: impl Fn(&Value) -> Result<T, String>,
) -> (Vec<T>, Vec<InvalidEntry>) {
    let mut ok = Vec::with_capacity(items.len());
    let mut invalid = Vec::new();
    for item in &items {
        match read(item) {
            Ok(t) => ok.push(t),
            Err(detail) => invalid.push(InvalidEntry {
                detail,
                excerpt: excerpt(&item.to_string(), 200),
            }),
        }
    }
    (ok, invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(v: Option<&Value>) -> Option<i64> {
        v.and_then(lenient::int)
    }

    fn text(v: Option<&Value>) -> Option<String> {
        v.and_then(lenient::text)
    }

    fn boolean(v: Option<&Value>) -> Option<bool> {
        v.and_then(lenient::boolean)
    }

    #[test]
    fn attachment_entries_are_read_under_every_name_desk360_uses() {
        let v = serde_json::json!({
            "images": [{"path": "https://x/a.png", "file_name": "a.png", "file_size": "12"}],
            "files": [{"url": "", "link": "https://x/b.pdf", "filename": "b.pdf", "size": 3}],
            "others": ["https://x/c.bin", {"name": "lost.pdf"}]
        });
        let a = Attachments::from_value(Some(&v));
        assert_eq!(a.images[0].url.as_deref(), Some("https://x/a.png"));
        assert_eq!(a.images[0].name.as_deref(), Some("a.png"));
        assert_eq!(a.images[0].size, Some(12));
        assert_eq!(a.files[0].url.as_deref(), Some("https://x/b.pdf"));
        assert_eq!(a.files[0].name.as_deref(), Some("b.pdf"));
        assert_eq!(a.others[0].url.as_deref(), Some("https://x/c.bin"));
        // Kept without a URL, so the normalisation lists it as unreadable.
        assert_eq!(a.others[1].url, None);
        assert_eq!(a.others[1].name.as_deref(), Some("lost.pdf"));
    }

    #[test]
    fn lenient_scalars() {
        let v = serde_json::json!({"a": "12", "b": 3.0, "c": "x", "d": null, "e": 7.5, "f": " 4 "});
        assert_eq!(int(v.get("a")), Some(12));
        assert_eq!(int(v.get("b")), Some(3));
        assert_eq!(int(v.get("c")), None);
        assert_eq!(int(v.get("d")), None);
        assert_eq!(int(v.get("e")), None);
        assert_eq!(int(v.get("f")), Some(4));
        assert_eq!(int(v.get("missing")), None);
        assert_eq!(text(v.get("b")).as_deref(), Some("3.0"));
        assert_eq!(boolean(Some(&serde_json::json!("1"))), Some(true));
        assert_eq!(boolean(Some(&serde_json::json!(0))), Some(false));
    }

    #[test]
    fn attachments_plain_array_and_groups() {
        let grouped = serde_json::json!({
            "images": [{"url": "https://x/a.png", "name": "a.png", "type": "image", "aws": true}],
            "videos": null,
            "files": [{"url": "https://x/b.pdf", "name": "b.pdf", "type": "file", "size": "2048"}],
            "others": [],
            "stickers": ["https://x/s.webp"]
        });
        let a = Attachments::from_value(Some(&grouped));
        assert_eq!(a.images.len(), 1);
        assert_eq!(a.images[0].aws, Some(true));
        assert_eq!(a.files[0].size, Some(2048));
        assert_eq!(a.others[0].url.as_deref(), Some("https://x/s.webp"));
        assert_eq!(a.len(), 3);
        let kinds: Vec<_> = a.iter().map(|(k, _)| k).collect();
        assert_eq!(
            kinds,
            vec![
                AttachmentKind::Image,
                AttachmentKind::File,
                AttachmentKind::Other
            ]
        );

        let plain = serde_json::json!([
            {"aws": true, "url": "https://x/c.pdf", "name": "c.pdf", "type": "file", "contentType": "application/pdf"},
            {"url": "https://x/d.jpg", "name": "d.jpg", "type": "image"},
            {"url": "https://x/e.bin", "name": "e.bin"}
        ]);
        let a = Attachments::from_value(Some(&plain));
        assert_eq!(a.files[0].content_type.as_deref(), Some("application/pdf"));
        assert_eq!(a.images.len(), 1);
        assert_eq!(a.others.len(), 1);
        assert!(Attachments::from_value(Some(&Value::Null)).is_empty());
        assert!(Attachments::from_value(None).is_empty());
    }

    #[test]
    fn reason_accepts_name_or_title() {
        let r = ReasonInfo::from_value(&serde_json::json!({"id": 1, "name": "Test1"})).unwrap();
        assert_eq!(r.title.as_deref(), Some("Test1"));
        let r = ReasonInfo::from_value(&serde_json::json!({"id": "2", "title": "T", "name": "N"}))
            .unwrap();
        assert_eq!((r.id, r.title.as_deref()), (2, Some("T")));
    }

    #[test]
    fn detail_errors_name_the_problem() {
        let err = TicketDetail::from_json("<html>oops</html>", "ticket 1/42").unwrap_err();
        let Desk360Error::Malformed {
            what,
            detail,
            excerpt,
        } = &err
        else {
            panic!("unexpected {err:?}");
        };
        assert_eq!(what, "ticket 1/42");
        assert!(detail.contains("not valid JSON"), "{detail}");
        assert_eq!(excerpt, "<html>oops</html>");
        let err = TicketDetail::from_json(r#"{"id":1,"messages":[{"agent_id":3}]}"#, "ticket 1/1")
            .unwrap_err();
        assert!(
            err.to_string().contains("messages[0]: message has no id"),
            "{err}"
        );
        let err = TicketDetail::from_json(r#"{"id":1,"messages":"none"}"#, "t").unwrap_err();
        assert!(err.to_string().contains("messages is a string"), "{err}");
        let err = TicketDetail::from_json("[]", "t").unwrap_err();
        assert!(
            err.to_string().contains("an array instead of an object"),
            "{err}"
        );
    }

    #[test]
    fn detail_round_trips_through_serde() {
        let raw = r#"{"data":{"id":"9","subject":null,"messages":{"1":{"id":2,"type":6},"0":{"id":1,"type":"0","agent_id":"0"}}}}"#;
        let d = TicketDetail::from_json(raw, "t").unwrap();
        assert_eq!(d.summary.id, 9);
        assert_eq!(d.raw, raw);
        assert_eq!(
            d.messages.iter().map(|m| m.id).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert!(d.messages[0].is_from_customer() && !d.messages[0].is_note());
        assert!(d.messages[1].is_note());
        let again: TicketDetail =
            serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(again.messages, d.messages);
        assert_eq!(again.summary.id, 9);
    }
}
