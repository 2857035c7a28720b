//! What Desk360 sends, read leniently.
//!
//! The pages show nulls where values are expected, numbers that may arrive as strings, naive
//! timestamps, `custom_fields` as `[]`, and attachments either grouped (`images`, `videos`,
//! `files`, `others`) or as a plain array. A surprising field must not fail a whole page, so every
//! type here is built from a `serde_json::Value` by hand: each field takes what it can and
//! becomes `None` otherwise. Only what makes an object unusable is an error (no `id`, a message
//! list that is not a list), and then the error names the object.
//!
//! Every type also implements `Deserialize` through the same lenient path (and `Serialize` with
//! Desk360's field names), so the engine can re-read a stored raw body with
//! [`TicketDetail::from_json`] or `serde_json::from_str`.

use model::AttachmentKind;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::Desk360Error;
use transport::excerpt;

// ---------------------------------------------------------------------------------------------
// Lenient field readers.

/// An integer from a number (integral floats too) or a numeric string.
fn int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>().ok().or_else(|| {
                s.parse::<f64>()
                    .ok()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            })
        }
        _ => None,
    }
}

/// A non-negative integer (sizes).
fn uint(v: Option<&Value>) -> Option<u64> {
    int(v).and_then(|i| u64::try_from(i).ok())
}

/// Text from a string; numbers and booleans as written; objects and arrays as JSON text (so
/// nothing is lost); null and absent as `None`.
fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// A boolean from `true`/`false`, `0`/`1`, or those as strings.
fn boolean(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_i64().map(|i| i != 0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Any JSON except null.
fn json(v: Option<&Value>) -> Option<Value> {
    v.filter(|v| !v.is_null()).cloned()
}

fn as_object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{what} is {} instead of an object", kind_of(v)))
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn required_id(o: &Map<String, Value>, what: &str) -> Result<i64, String> {
    int(o.get("id")).ok_or_else(|| match o.get("id") {
        None => format!("{what} has no id"),
        Some(v) => format!("{what} has an unusable id {v}"),
    })
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

macro_rules! lenient_deserialize {
    ($t:ty) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let v = Value::deserialize(d)?;
                <$t>::from_value(&v).map_err(serde::de::Error::custom)
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Products, agents, types, reasons.

/// A Desk360 product: tickets are listed per product.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProductInfo {
    /// Product id, used in ticket URLs.
    pub id: i64,
    /// Display name.
    pub name: Option<String>,
    /// Logo URL, often null.
    pub logo: Option<String>,
}

impl ProductInfo {
    /// Reads one product; fails only without a usable id.
    pub fn from_value(v: &Value) -> Result<Self, String> {
        let o = as_object(v, "product")?;
        Ok(Self {
            id: required_id(o, "product")?,
            name: text(o.get("name")),
            logo: text(o.get("logo")),
        })
    }
}
lenient_deserialize!(ProductInfo);

/// A Desk360 agent (also the answer of `/v1/me`), to map agents to Deskie staff.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentInfo {
    /// Agent id as used in tickets' and messages' `agent_id`.
    pub id: i64,
    /// Display name.
    pub name: Option<String>,
    /// Login email: the natural key to match a Deskie staff member.
    pub email: Option<String>,
    /// Avatar URL.
    pub avatar: Option<String>,
}

impl AgentInfo {
    /// Reads one agent; fails only without a usable id.
    pub fn from_value(v: &Value) -> Result<Self, String> {
        let o = as_object(v, "agent")?;
        Ok(Self {
            id: required_id(o, "agent")?,
            name: text(o.get("name")),
            email: text(o.get("email")),
            avatar: text(o.get("avatar")),
        })
    }
}
lenient_deserialize!(AgentInfo);

/// A ticket type, to map to Deskie labels or custom fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TypeInfo {
    /// Type id as used in tickets' `type_id`.
    pub id: i64,
    /// Product it belongs to (0: every product).
    pub product_id: Option<i64>,
    /// Title shown to agents.
    pub title: Option<String>,
    /// Longer description.
    pub description: Option<String>,
    /// Whether agents can still pick it.
    pub is_active: Option<bool>,
    /// Whether the account created it (as opposed to Desk360's built-in types).
    pub is_custom: Option<bool>,
    /// Naive timestamp as sent.
    pub created_at: Option<String>,
    /// Naive timestamp as sent.
    pub updated_at: Option<String>,
}

impl TypeInfo {
    /// Reads one type; fails only without a usable id.
    pub fn from_value(v: &Value) -> Result<Self, String> {
        let o = as_object(v, "type")?;
        Ok(Self {
            id: required_id(o, "type")?,
            product_id: int(o.get("product_id")),
            title: text(o.get("title")).or_else(|| text(o.get("name"))),
            description: text(o.get("description")),
            is_active: boolean(o.get("is_active")),
            is_custom: boolean(o.get("is_custom")),
            created_at: text(o.get("created_at")),
            updated_at: text(o.get("updated_at")),
        })
    }
}
lenient_deserialize!(TypeInfo);

/// A ticket reason, to map to Deskie labels or custom fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReasonInfo {
    /// Reason id as used in tickets' `reason_id`.
    pub id: i64,
    /// Product it belongs to.
    pub product_id: Option<i64>,
    /// Title shown to agents. The list endpoint calls it `name`, the create/get endpoints
    /// `title`: both are accepted (`title` wins when both are present).
    pub title: Option<String>,
    /// Whether agents can still pick it.
    pub is_active: Option<bool>,
    /// Naive timestamp as sent.
    pub created_at: Option<String>,
    /// Naive timestamp as sent.
    pub updated_at: Option<String>,
}

impl ReasonInfo {
    /// Reads one reason; fails only without a usable id.
    pub fn from_value(v: &Value) -> Result<Self, String> {
        let o = as_object(v, "reason")?;
        Ok(Self {
            id: required_id(o, "reason")?,
            product_id: int(o.get("product_id")),
            title: text(o.get("title")).or_else(|| text(o.get("name"))),
            is_active: boolean(o.get("is_active")),
            created_at: text(o.get("created_at")),
            updated_at: text(o.get("updated_at")),
        })
    }
}
lenient_deserialize!(ReasonInfo);

// ---------------------------------------------------------------------------------------------
// Tickets.

/// One entry of a ticket list page: enough to decide whether the details must be fetched
/// (`updated_at` unchanged → already stored).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TicketSummary {
    /// Ticket id within its product.
    pub id: i64,
    /// Reason id, if any.
    pub reason_id: Option<i64>,
    /// Type id, if any.
    pub type_id: Option<i64>,
    /// Assigned agent (0 or null: unassigned).
    pub agent_id: Option<i64>,
    /// Customer's name.
    pub name: Option<String>,
    /// Customer's email.
    pub email: Option<String>,
    /// Subject; often null.
    pub subject: Option<String>,
    /// Excerpt of the last message.
    pub last_message: Option<String>,
    /// Desk360 channel, e.g. "Application", "Email".
    pub channel: Option<String>,
    /// Platform, e.g. "Android".
    pub platform: Option<String>,
    /// Status code (1 resolved, 2 waiting, 0 before either).
    pub status: Option<i64>,
    /// Priority code (0 low … 3 urgent).
    pub priority: Option<i64>,
    /// Naive timestamp as sent.
    pub created_at: Option<String>,
    /// Naive timestamp as sent; compared verbatim with the stored one.
    pub updated_at: Option<String>,
}

impl TicketSummary {
    /// Reads one list entry; fails only without a usable id.
    pub fn from_value(v: &Value) -> Result<Self, String> {
        let o = as_object(v, "ticket")?;
        Ok(Self {
            id: required_id(o, "ticket")?,
            reason_id: int(o.get("reason_id")),
            type_id: int(o.get("type_id")),
            agent_id: int(o.get("agent_id")),
            name: text(o.get("name")),
            email: text(o.get("email")),
            subject: text(o.get("subject")),
            last_message: text(o.get("last_message")),
            channel: text(o.get("channel")),
            platform: text(o.get("platform")),
            status: int(o.get("status")),
            priority: int(o.get("priority")),
            created_at: text(o.get("created_at")),
            updated_at: text(o.get("updated_at")),
        })
    }
}
lenient_deserialize!(TicketSummary);

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachmentDto {
    /// Download URL (missing ones are kept so the engine can report them).
    pub url: Option<String>,
    /// File name.
    pub name: Option<String>,
    /// Desk360's `type` ("image", "file", …).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Size in bytes, when sent (needed for Deskie's 25 MB / 50 MB limits).
    pub size: Option<u64>,
    /// Whether the file is stored on Desk360's S3.
    pub aws: Option<bool>,
    /// MIME type, when sent (`contentType`).
    #[serde(rename = "contentType")]
    pub content_type: Option<String>,
}

impl AttachmentDto {
    fn from_value(v: &Value) -> Self {
        let o = v.as_object();
        let get = |k: &str| o.and_then(|o| o.get(k));
        match v {
            // A bare URL string is an attachment too.
            Value::String(s) => Self {
                url: Some(s.clone()),
                name: None,
                kind: None,
                size: None,
                aws: None,
                content_type: None,
            },
            // Desk360 documents the groups but not their entries (page 004): the names seen in
            // its answers and SDKs are tried in turn, the first present wins.
            _ => Self {
                url: ["url", "path", "file_url", "link", "src"]
                    .into_iter()
                    .find_map(|k| text(get(k)).filter(|s| !s.trim().is_empty())),
                name: ["name", "file_name", "filename", "original_name", "title"]
                    .into_iter()
                    .find_map(|k| text(get(k)).filter(|s| !s.trim().is_empty())),
                kind: text(get("type")),
                size: ["size", "file_size", "filesize", "bytes"]
                    .into_iter()
                    .find_map(|k| uint(get(k))),
                aws: boolean(get("aws")),
                content_type: text(get("contentType")).or_else(|| text(get("content_type"))),
            },
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
        Some(v) if int(Some(v)).is_some() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    }
}

/// One message (or note) of a ticket.
#[derive(Debug, Clone, PartialEq)]
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
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
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
        let o = as_object(v, "message")?;
        Ok(Self {
            id: required_id(o, "message")?,
            agent_id: int(o.get("agent_id")),
            agent_id_unreadable: unreadable_int(o.get("agent_id")),
            message: text(o.get("message")),
            attachments: Attachments::from_value(o.get("attachments")),
            kind: int(o.get("type")),
            kind_unreadable: unreadable_int(o.get("type")),
            created_at: text(o.get("created_at")),
            updated_at: text(o.get("updated_at")),
        })
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
lenient_deserialize!(MessageDto);

/// A ticket with its messages, and the body exactly as received (the store keeps it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TicketDetail {
    /// Ticket id within its product.
    pub id: i64,
    /// Reason id, if any.
    pub reason_id: Option<i64>,
    /// Type id, if any.
    pub type_id: Option<i64>,
    /// Assigned agent (0 or null: unassigned).
    pub agent_id: Option<i64>,
    /// Customer's name.
    pub name: Option<String>,
    /// Customer's email.
    pub email: Option<String>,
    /// Customer's phone, when the ticket carries one (needed for Deskie's Calls channel).
    pub phone: Option<String>,
    /// Subject; often null.
    pub subject: Option<String>,
    /// Excerpt of the last message.
    pub last_message: Option<String>,
    /// Desk360 channel.
    pub channel: Option<String>,
    /// Platform.
    pub platform: Option<String>,
    /// Status code.
    pub status: Option<i64>,
    /// Priority code.
    pub priority: Option<i64>,
    /// Free-form settings (any JSON).
    pub settings: Option<Value>,
    /// Customer's country code.
    pub country_code: Option<String>,
    /// Customer's rating (any JSON; usually a number or null).
    pub star_rating: Option<Value>,
    /// Custom fields (any JSON; `[]` when none).
    pub custom_fields: Option<Value>,
    /// Naive timestamp as sent.
    pub created_at: Option<String>,
    /// Naive timestamp as sent; compared verbatim on later runs.
    pub updated_at: Option<String>,
    /// Messages and notes, in the server's order.
    pub messages: Vec<MessageDto>,
    /// The response body exactly as received.
    #[serde(skip)]
    pub raw: String,
}

impl TicketDetail {
    /// Reads one ticket detail from a parsed body; `raw` is left empty.
    pub fn from_value(v: &Value) -> Result<Self, String> {
        let o = as_object(v, "ticket")?;
        let messages = match o.get("messages") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, m)| MessageDto::from_value(m).map_err(|e| format!("messages[{i}]: {e}")))
                .collect::<Result<_, _>>()?,
            // Some APIs send a numbered object instead of an array: keep the numeric order.
            Some(Value::Object(numbered)) if numbered.keys().all(|k| k.parse::<u64>().is_ok()) => {
                let mut items: Vec<(u64, &Value)> = numbered
                    .iter()
                    .filter_map(|(k, v)| k.parse::<u64>().ok().map(|n| (n, v)))
                    .collect();
                items.sort_by_key(|(n, _)| *n);
                items
                    .into_iter()
                    .map(|(i, m)| {
                        MessageDto::from_value(m).map_err(|e| format!("messages[{i}]: {e}"))
                    })
                    .collect::<Result<_, _>>()?
            }
            Some(other) => {
                return Err(format!(
                    "messages is {} instead of an array",
                    kind_of(other)
                ));
            }
        };
        Ok(Self {
            id: required_id(o, "ticket")?,
            reason_id: int(o.get("reason_id")),
            type_id: int(o.get("type_id")),
            agent_id: int(o.get("agent_id")),
            name: text(o.get("name")),
            email: text(o.get("email")),
            phone: text(o.get("phone")).or_else(|| text(o.get("phone_number"))),
            subject: text(o.get("subject")),
            last_message: text(o.get("last_message")),
            channel: text(o.get("channel")),
            platform: text(o.get("platform")),
            status: int(o.get("status")),
            priority: int(o.get("priority")),
            settings: json(o.get("settings")),
            country_code: text(o.get("country_code")),
            star_rating: json(o.get("star_rating")),
            custom_fields: json(o.get("custom_fields")),
            created_at: text(o.get("created_at")),
            updated_at: text(o.get("updated_at")),
            messages,
            raw: String::new(),
        })
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

impl<'de> Deserialize<'de> for TicketDetail {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let mut detail = Self::from_value(&v).map_err(serde::de::Error::custom)?;
        detail.raw = v.to_string();
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
        match &err {
            Desk360Error::Malformed {
                what,
                detail,
                excerpt,
            } => {
                assert_eq!(what, "ticket 1/42");
                assert!(detail.contains("not valid JSON"), "{detail}");
                assert_eq!(excerpt, "<html>oops</html>");
            }
            other => panic!("unexpected {other:?}"),
        }
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
        assert_eq!(d.id, 9);
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
        assert_eq!(again.id, 9);
    }
}
