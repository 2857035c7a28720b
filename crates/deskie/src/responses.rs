//! Lenient response types: what Deskie answers, read forgivingly.
//!
//! Every field but the primary id is optional and read with the helpers of `lenient` (ids as
//! numbers or strings, `"-"` placeholders, PHP's `[]` for an empty map); fields we do not model
//! are kept in `extra`, so nothing Deskie sends is lost and nothing surprising fails a page.
//! Lists come in Deskie's numbered-object shape, read by [`Numbered`].

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::requests::{CasePriority, CaseStatus};
use crate::time::parse_timestamp;
use transport::lenient::{self, kind_of};

/// A case as Deskie returns it from create, view, update and list.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Case {
    /// Deskie's id of the case, used in every later request about it.
    #[serde(deserialize_with = "lenient::req_i64")]
    pub case_id: i64,
    /// The human-facing number (`"664-245651"`), kept for the report.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub case_number: Option<String>,
    /// Subject.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub subject: Option<String>,
    /// The case's user, created with the case: customer messages are sent with this id.
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub user_id: Option<i64>,
    /// Responsible agent (0 or absent: none).
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub staff_id: Option<i64>,
    /// Responsible group.
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub group_id: Option<i64>,
    /// Status as Deskie names it; see [`Case::status_value`].
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub status: Option<String>,
    /// Priority as Deskie names it; see [`Case::priority_value`].
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub priority: Option<String>,
    /// Channel (`email`, `calls`, `web`, …).
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub channel: Option<String>,
    /// Creation time as Deskie prints it (RFC 2822); see [`Case::created_at_ts`].
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub created_at: Option<String>,
    /// Last change, as printed by Deskie.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub updated_at: Option<String>,
    /// Custom fields by id, values of any JSON type.
    #[serde(default, deserialize_with = "lenient::map_any")]
    pub custom_fields: BTreeMap<String, Value>,
    /// Label ids.
    #[serde(default, deserialize_with = "lenient::vec_i64")]
    pub labels: Vec<i64>,
    /// In the trash.
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub deleted: Option<bool>,
    /// Marked as spam.
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub spam: Option<bool>,
    /// Every other field Deskie sent, unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Case {
    /// The status, when it is one of Deskie's three.
    pub fn status_value(&self) -> Option<CaseStatus> {
        self.status.as_deref().and_then(CaseStatus::parse)
    }

    /// The priority, when it is one of Deskie's four.
    pub fn priority_value(&self) -> Option<CasePriority> {
        self.priority.as_deref().and_then(CasePriority::parse)
    }

    /// The creation time as an instant, for matching a case found by user + subject + time.
    pub fn created_at_ts(&self) -> Option<Timestamp> {
        self.created_at.as_deref().and_then(parse_timestamp)
    }

    /// The time of the case's last change as an instant: the documented default sort of the
    /// case list (`updated_at_desc`) orders by it, which a lookup without a source-id field uses.
    pub fn updated_at_ts(&self) -> Option<Timestamp> {
        self.updated_at.as_deref().and_then(parse_timestamp)
    }

    /// A custom field's value as text (numbers printed), for exact-match checks.
    pub fn custom_field_text(&self, field: &str) -> Option<String> {
        self.custom_fields.get(field).and_then(lenient::scalar_text)
    }
}

/// A file attached to a message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Attachment {
    /// Deskie's file id.
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub file_id: Option<i64>,
    /// File name.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub file_name: Option<String>,
    /// Size in bytes.
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub file_size: Option<i64>,
    /// MIME type.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub mime_type: Option<String>,
    /// Download link (needs auth once the file is 30 days old).
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub url: Option<String>,
}

/// A message (response or note) as Deskie returns it from add, edit and list.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MessageInfo {
    /// Deskie's id of the message.
    #[serde(deserialize_with = "lenient::req_i64")]
    pub message_id: i64,
    /// Author when a customer wrote it (0 otherwise).
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub user_id: Option<i64>,
    /// Author when an agent wrote it (0 otherwise).
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub staff_id: Option<i64>,
    /// Plain-text body (may be empty when the HTML one is set).
    #[serde(default, deserialize_with = "lenient::string")]
    pub content: String,
    /// HTML body (may be empty when the plain one is set).
    #[serde(default, deserialize_with = "lenient::string")]
    pub content_html: String,
    /// True for an internal note.
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub note: Option<bool>,
    /// Creation time as Deskie prints it (RFC 2822); see [`MessageInfo::created_at_ts`].
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub created_at: Option<String>,
    /// When it was (or will be) sent, as printed by Deskie.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub sent_at: Option<String>,
    /// Attached files.
    #[serde(default, deserialize_with = "lenient::vec_lenient")]
    pub attachments: Vec<Attachment>,
    /// Every other field Deskie sent, unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl MessageInfo {
    /// The creation time as an instant, for matching a message we may have written.
    pub fn created_at_ts(&self) -> Option<Timestamp> {
        self.created_at.as_deref().and_then(parse_timestamp)
    }

    /// Whether this is an internal note.
    pub fn is_note(&self) -> bool {
        self.note.unwrap_or(false)
    }

    /// The body that is set: the HTML one if present, else the plain one.
    pub fn body(&self) -> &str {
        if self.content_html.is_empty() {
            &self.content
        } else {
            &self.content_html
        }
    }
}

/// A user (customer) as Deskie returns it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UserInfo {
    /// Deskie's id of the user.
    #[serde(deserialize_with = "lenient::req_i64")]
    pub user_id: i64,
    /// Display name.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub user_full_name: Option<String>,
    /// Email, for email users.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub user_email: Option<String>,
    /// Phone, for phone users.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub user_phone: Option<String>,
    /// Identification type (`email`, `phone`, `facebook`, …).
    #[serde(default, rename = "type", deserialize_with = "lenient::opt_string")]
    pub kind: Option<String>,
    /// Creation time as Deskie prints it.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub created_at: Option<String>,
    /// Custom fields by id.
    #[serde(default, deserialize_with = "lenient::map_any")]
    pub custom_fields: BTreeMap<String, Value>,
    /// Every other field Deskie sent, unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A page of cases from `GET cases.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseList {
    /// The cases, in the order of their numbered keys.
    pub cases: Vec<Case>,
    /// How many cases match the query in total (all pages), when Deskie said.
    pub total_count: Option<u64>,
}

/// A page of messages from `GET cases/{id}/messages.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageList {
    /// The messages, in the order of their numbered keys.
    pub messages: Vec<MessageInfo>,
    /// How many messages the case has in total, when Deskie said.
    pub total_count: Option<u64>,
}

/// Deskie's list shape: `{"0":{"case":{…}},"1":{…},…,"total_count":N}`.
///
/// Takes every key that is a non-negative integer, in numeric order (so `"10"` comes after
/// `"9"`, not after `"1"`), unwraps the entity wrapper named by `W` (`"case"`, `"message"`,
/// `"user"`) when present, and ignores every other key except `total_count`. A plain JSON array
/// of items is accepted too (PHP prints an empty or sequential list that way). An item that does
/// not parse fails the whole list rather than being skipped: a reconciliation read that silently
/// missed an existing case would lead to a duplicate.
#[derive(Debug, Clone, PartialEq)]
pub struct Numbered<T, W = NoWrapper> {
    /// The items, in numeric key order.
    pub items: Vec<T>,
    /// The `total_count` field, when present and readable.
    pub total_count: Option<u64>,
    _wrapper: PhantomData<W>,
}

/// Names the wrapper key of a [`Numbered`] list's items.
pub trait Wrapper {
    /// The key (`"case"`), or `None` for unwrapped items.
    const KEY: Option<&'static str>;
}

/// Items are not wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoWrapper;
impl Wrapper for NoWrapper {
    const KEY: Option<&'static str> = None;
}

/// Items are wrapped as `{"case":{…}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaseWrapper;
impl Wrapper for CaseWrapper {
    const KEY: Option<&'static str> = Some("case");
}

/// Items are wrapped as `{"message":{…}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageWrapper;
impl Wrapper for MessageWrapper {
    const KEY: Option<&'static str> = Some("message");
}

impl<T, W> Numbered<T, W> {
    /// Builds a list from already parsed items.
    pub fn new(items: Vec<T>, total_count: Option<u64>) -> Self {
        Self {
            items,
            total_count,
            _wrapper: PhantomData,
        }
    }
}

impl<T: DeserializeOwned, W: Wrapper> Numbered<T, W> {
    /// Reads a list from an already parsed JSON value; the error names the failing item.
    pub fn from_value(value: Value) -> Result<Self, String> {
        let mut total_count = None;
        let mut indexed: Vec<(u64, Value)> = Vec::new();
        match value {
            Value::Object(map) => {
                for (key, item) in map {
                    if let Ok(index) = key.trim().parse::<u64>() {
                        indexed.push((index, item));
                    } else if key == "total_count" {
                        total_count = lenient::int(&item).and_then(|n| u64::try_from(n).ok());
                    }
                }
            }
            Value::Array(items) => {
                indexed = (0u64..).zip(items).collect();
            }
            Value::Null => {}
            other => {
                return Err(format!(
                    "expected a numbered object or an array, got {}",
                    kind_of(&other)
                ));
            }
        }
        indexed.sort_by_key(|(index, _)| *index);
        let mut items = Vec::with_capacity(indexed.len());
        for (index, item) in indexed {
            let item = unwrap_entity(item, W::KEY);
            let parsed =
                serde_json::from_value::<T>(item).map_err(|e| format!("item \"{index}\": {e}"))?;
            items.push(parsed);
        }
        Ok(Self::new(items, total_count))
    }
}

impl<'de, T: DeserializeOwned, W: Wrapper> Deserialize<'de> for Numbered<T, W> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        Self::from_value(value).map_err(serde::de::Error::custom)
    }
}

/// Takes `{"case":{…}}` apart; a bare object (no wrapper) is accepted as is.
pub(crate) fn unwrap_entity(value: Value, key: Option<&str>) -> Value {
    match (value, key) {
        (Value::Object(mut map), Some(key)) if map.contains_key(key) => {
            map.remove(key).unwrap_or(Value::Null)
        }
        (value, _) => value,
    }
}

/// Parses one wrapped entity (`{"case":{…}}` or a bare object) into `T`. Any of `keys` may wrap
/// it (a note answer is documented as `{"message":…}` but `{"note":…}` is accepted too).
pub(crate) fn parse_entity<T: DeserializeOwned>(value: Value, keys: &[&str]) -> Result<T, String> {
    let mut value = value;
    for key in keys {
        if let Value::Object(map) = &value
            && map.contains_key(*key)
        {
            value = unwrap_entity(value, Some(key));
            break;
        }
    }
    serde_json::from_value(value).map_err(|e| e.to_string())
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.case_number {
            Some(n) => write!(f, "case {} ({n})", self.case_id),
            None => write!(f, "case {}", self.case_id),
        }
    }
}
