//! Strict request types: what we send to Deskie, field for field as the migration recipe names it.
//!
//! These types are `Serialize` only and every optional field is skipped when absent, so the JSON
//! sent is exactly the recipe's set of fields for the case at hand (tests snapshot each form).
//! Sending a field the recipe does not list for a channel can change Deskie's behaviour (an
//! `initiator_id` makes the case agent-initiated; a missing `do_not_send_email` emails the
//! customer), so nothing is sent "just in case". Timestamps are sent in Deskie's own RFC 2822
//! form, in UTC (see [`crate::format_timestamp`]).

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;

use crate::time::{serialize_opt_ts, serialize_ts};

/// A case status as Deskie names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// Open: waits for an agent.
    Open,
    /// Waiting: waits for the customer.
    Waiting,
    /// Closed.
    Closed,
}

impl CaseStatus {
    /// Every status, in workflow order: lets a configuration error list the accepted names.
    pub const ALL: [CaseStatus; 3] = [CaseStatus::Open, CaseStatus::Waiting, CaseStatus::Closed];

    /// Deskie's name for the status.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Open => "open",
            CaseStatus::Waiting => "waiting",
            CaseStatus::Closed => "closed",
        }
    }

    /// Reads Deskie's name (case-insensitive), e.g. from a case read back for verification.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }
}

/// A case priority as Deskie names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CasePriority {
    /// Low.
    Low,
    /// Normal (Deskie's default).
    Normal,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl CasePriority {
    /// Every priority, lowest first: lets a configuration error list the accepted names.
    pub const ALL: [CasePriority; 4] = [
        CasePriority::Low,
        CasePriority::Normal,
        CasePriority::High,
        CasePriority::Critical,
    ];

    /// Deskie's name for the priority.
    pub fn as_str(self) -> &'static str {
        match self {
            CasePriority::Low => "low",
            CasePriority::Normal => "normal",
            CasePriority::High => "high",
            CasePriority::Critical => "critical",
        }
    }

    /// Reads Deskie's name (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|priority| priority.as_str() == s)
    }
}

/// The body of a message in the form its channel takes: Email and asynchronous custom channels
/// use `content_html`, Calls and synchronous custom channels plain `content`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Sent as `content_html`.
    Html(String),
    /// Sent as `content`.
    Text(String),
}

impl Content {
    fn split(self) -> (Option<String>, Option<String>) {
        match self {
            Content::Html(h) => (Some(h), None),
            Content::Text(t) => (None, Some(t)),
        }
    }
}

/// Creates a case (`POST cases.json`), which also creates its user: the recipe's section 1.1
/// (Email: `user_email`), 2.1 (Calls: `user_phone`) or 3.1 (custom channel: `user_custom_id`).
/// For an agent-initiated case set `initiator_id`, and for Email also `case_email_id = -1`; the
/// constructors ([`NewCase::email`], [`NewCase::call`], [`NewCase::custom`]) also set
/// `do_not_send_email = true` then, so the customer is not emailed the agent's first message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewCase {
    /// The customer's email: Email channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_email: Option<String>,
    /// The customer's phone: Calls channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_phone: Option<String>,
    /// The customer's id in a custom channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_custom_id: Option<String>,
    /// Which custom channel the `user_custom_id` belongs to, when the account has several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_custom_channel: Option<String>,
    /// The customer's display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_full_name: Option<String>,
    /// Never empty: the engine derives one when the source has none.
    pub subject: String,
    /// The first message as HTML (Email, asynchronous custom channels).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_html: Option<String>,
    /// The first message as plain text (Calls, synchronous custom channels).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// The original time of the first message, so the history keeps its dates.
    #[serde(serialize_with = "serialize_ts")]
    pub created_at: Timestamp,
    /// The staff id of the agent who opened the conversation (agent-initiated cases only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initiator_id: Option<i64>,
    /// `-1` for an agent-initiated Email case, as the recipe requires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_email_id: Option<i64>,
    /// The responsible agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staff_id: Option<i64>,
    /// The responsible group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<i64>,
    /// Status at creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<CaseStatus>,
    /// Priority at creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<CasePriority>,
    /// Custom fields by Deskie id (`cf_25`), including the source-id field used to find the case
    /// again after a lost response.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_fields: BTreeMap<String, String>,
    /// Label ids.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<i64>,
    /// Links Deskie downloads the first message's attachments from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachment_urls: Vec<String>,
    /// Keeps Deskie from emailing anyone about the imported case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub do_not_send_email: Option<bool>,
}

impl NewCase {
    /// A case with only a subject and a date; set the channel's fields and the body next.
    pub fn new(subject: impl Into<String>, created_at: Timestamp) -> Self {
        Self {
            user_email: None,
            user_phone: None,
            user_custom_id: None,
            user_custom_channel: None,
            user_full_name: None,
            subject: subject.into(),
            content_html: None,
            content: None,
            created_at,
            initiator_id: None,
            case_email_id: None,
            staff_id: None,
            group_id: None,
            status: None,
            priority: None,
            custom_fields: BTreeMap::new(),
            labels: Vec::new(),
            attachment_urls: Vec::new(),
            do_not_send_email: None,
        }
    }

    /// Recipe 1.1: an Email case. `initiator` is the staff id when an agent opened the
    /// conversation; then `case_email_id = -1` is set as the recipe requires.
    pub fn email(
        user_email: impl Into<String>,
        subject: impl Into<String>,
        content_html: impl Into<String>,
        created_at: Timestamp,
        initiator: Option<i64>,
    ) -> Self {
        let mut case = Self::new(subject, created_at);
        case.user_email = Some(user_email.into());
        case.content_html = Some(content_html.into());
        if initiator.is_some() {
            case.case_email_id = Some(-1);
        }
        case.set_initiator(initiator);
        case
    }

    /// Marks the case agent-initiated (or not). An agent-opened case is an outgoing
    /// conversation, which Deskie would deliver to the customer: `do_not_send_email = true` is
    /// added because an import must never email a customer (the recipe lists the field only for
    /// agent messages; it is the same safeguard for the agent's first message).
    fn set_initiator(&mut self, initiator: Option<i64>) {
        self.initiator_id = initiator;
        if initiator.is_some() {
            self.do_not_send_email = Some(true);
        }
    }

    /// Recipe 2.1: a Calls case, with a plain-text body.
    pub fn call(
        user_phone: impl Into<String>,
        subject: impl Into<String>,
        content: impl Into<String>,
        created_at: Timestamp,
        initiator: Option<i64>,
    ) -> Self {
        let mut case = Self::new(subject, created_at);
        case.user_phone = Some(user_phone.into());
        case.content = Some(content.into());
        case.set_initiator(initiator);
        case
    }

    /// Recipe 3.1: a custom-channel case; `body` is HTML for asynchronous channels, text for
    /// synchronous ones.
    pub fn custom(
        user_custom_id: impl Into<String>,
        subject: impl Into<String>,
        body: Content,
        created_at: Timestamp,
        initiator: Option<i64>,
    ) -> Self {
        let mut case = Self::new(subject, created_at);
        case.user_custom_id = Some(user_custom_id.into());
        (case.content_html, case.content) = body.split();
        case.set_initiator(initiator);
        case
    }
}

/// Adds a response to a case (`POST cases/{id}/messages.json`): recipe 1.2 / 2.2 / 3.2.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewMessage {
    /// The body as HTML (Email, asynchronous custom channels).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_html: Option<String>,
    /// The body as plain text (Calls, synchronous custom channels).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// The original time of the message.
    #[serde(serialize_with = "serialize_ts")]
    pub created_at: Timestamp,
    /// The case's user (from the create response): a customer message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<i64>,
    /// The agent's staff id: an agent message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staff_id: Option<i64>,
    /// `true` on every agent message: an import must never email a customer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub do_not_send_email: Option<bool>,
    /// Links Deskie downloads the message's attachments from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachment_urls: Vec<String>,
}

impl NewMessage {
    /// A customer's message: body, `created_at`, `user_id` (recipe x.2 a).
    pub fn from_customer(user_id: i64, body: Content, created_at: Timestamp) -> Self {
        Self::by(Some(user_id), None, body, created_at)
    }

    /// An agent's message: body, `created_at`, `staff_id` and always `do_not_send_email = true`
    /// (recipe 1.2 b; sent on every channel, since an import must never email a customer).
    pub fn from_agent(staff_id: i64, body: Content, created_at: Timestamp) -> Self {
        Self::by(None, Some(staff_id), body, created_at)
    }

    /// A message by the customer (`user_id`) or an agent (`staff_id`, with
    /// `do_not_send_email = true`).
    fn by(
        user_id: Option<i64>,
        staff_id: Option<i64>,
        body: Content,
        created_at: Timestamp,
    ) -> Self {
        let (content_html, content) = body.split();
        Self {
            content_html,
            content,
            created_at,
            user_id,
            staff_id,
            do_not_send_email: staff_id.map(|_| true),
            attachment_urls: Vec::new(),
        }
    }
}

/// Adds an internal note (`POST cases/{id}/note.json`).
///
/// The pages show three payload forms: `{"note":{"note_staff_id",…}}` (the JSON sample),
/// `{"message":{"content","note_staff_id"}}` (its curl line) and `{"note":{"staff_id",…,
/// "attachment_urls"}}` (the attachments section, its curl line and its multipart form
/// `note[staff_id]`). We send the last: it is the only form documented consistently three times
/// and the only one that carries `attachment_urls`, which notes with attachments need.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewNote {
    /// The agent the note is from.
    pub staff_id: i64,
    /// The same agent again under the name the page's first block and curl line use
    /// (`note_staff_id`): a server that reads only one of the two documented fields still
    /// credits the note to its author instead of the API agent. Set by [`NewNote::new`].
    pub note_staff_id: i64,
    /// The note's text.
    pub content: String,
    /// The original time of the note, when known.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_opt_ts"
    )]
    pub created_at: Option<Timestamp>,
    /// Links Deskie downloads the note's attachments from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachment_urls: Vec<String>,
}

impl NewNote {
    /// A note by `staff_id`, naming its author in both documented fields.
    pub fn new(staff_id: i64, content: impl Into<String>, created_at: Option<Timestamp>) -> Self {
        Self {
            staff_id,
            note_staff_id: staff_id,
            content: content.into(),
            created_at,
            attachment_urls: Vec::new(),
        }
    }
}

/// Changes a case (`PUT cases/{id}.json`), e.g. to set the final status/priority once all
/// messages are in. Only the fields set are sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CaseUpdate {
    /// New status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<CaseStatus>,
    /// New priority.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<CasePriority>,
    /// New responsible agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staff_id: Option<i64>,
    /// New responsible group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<i64>,
    /// New subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Custom fields to set.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_fields: BTreeMap<String, String>,
    /// Label ids to add (existing labels stay).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub add_labels: Vec<i64>,
}

impl CaseUpdate {
    /// True when nothing would change: the engine then skips the request (it costs 2).
    pub fn is_empty(&self) -> bool {
        self == &CaseUpdate::default()
    }
}

/// Sort orders of the case list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaseSort {
    /// Oldest created first.
    CreatedAtAsc,
    /// Newest created first.
    CreatedAtDesc,
    /// Least recently changed first.
    UpdatedAtAsc,
    /// Most recently changed first (Deskie's default).
    UpdatedAtDesc,
}

impl CaseSort {
    /// Deskie's parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseSort::CreatedAtAsc => "created_at_asc",
            CaseSort::CreatedAtDesc => "created_at_desc",
            CaseSort::UpdatedAtAsc => "updated_at_asc",
            CaseSort::UpdatedAtDesc => "updated_at_desc",
        }
    }
}

/// Filters and paging of `GET cases.json`, used to find cases again during reconciliation and
/// verification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseQuery {
    /// Page number, from 1 (Deskie allows at most 500).
    pub page: Option<u32>,
    /// Cases per page (Deskie allows at most 100; larger values are clamped).
    pub limit: Option<u32>,
    /// Custom-field filters, `custom_fields[cf_25]=value`. Deskie matches substrings: wrap the
    /// value in `^…^` for an exact match.
    pub custom_fields: BTreeMap<String, String>,
    /// Cases created at or after this instant (sent as Unix seconds).
    pub from_time: Option<Timestamp>,
    /// Cases created at or before this instant (sent as Unix seconds).
    pub to_time: Option<Timestamp>,
    /// Sort order.
    pub sort: Option<CaseSort>,
    /// Only this user's cases.
    pub user_id: Option<i64>,
    /// Only cases in this status.
    pub status: Option<CaseStatus>,
}

impl CaseQuery {
    /// The query-string pairs, in a stable order.
    ///
    /// The pages' parameter tables were not preserved, so the form of `from_time` / `to_time` is
    /// an assumption: Unix seconds, the form Deskie's sibling products accept.
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        if let Some(page) = self.page {
            pairs.push(("page".to_string(), page.max(1).to_string()));
        }
        if let Some(limit) = self.limit {
            pairs.push(("limit".to_string(), limit.clamp(1, 100).to_string()));
        }
        for (field, value) in &self.custom_fields {
            pairs.push((format!("custom_fields[{field}]"), value.clone()));
        }
        if let Some(t) = self.from_time {
            pairs.push(("from_time".to_string(), t.as_second().to_string()));
        }
        if let Some(t) = self.to_time {
            pairs.push(("to_time".to_string(), t.as_second().to_string()));
        }
        if let Some(sort) = self.sort {
            pairs.push(("sort".to_string(), sort.as_str().to_string()));
        }
        if let Some(user_id) = self.user_id {
            pairs.push(("user_id".to_string(), user_id.to_string()));
        }
        if let Some(status) = self.status {
            pairs.push(("status".to_string(), status.as_str().to_string()));
        }
        pairs
    }
}

/// The `{"case":{…}}` wrapper the pages show around a case payload.
#[derive(Serialize)]
pub(crate) struct CaseBody<'a, T: Serialize> {
    pub(crate) case: &'a T,
}

/// The `{"message":{…}}` wrapper around a response payload.
#[derive(Serialize)]
pub(crate) struct MessageBody<'a> {
    pub(crate) message: &'a NewMessage,
}

/// The `{"note":{…}}` wrapper around a note payload.
#[derive(Serialize)]
pub(crate) struct NoteBody<'a> {
    pub(crate) note: &'a NewNote,
}

#[cfg(test)]
mod tests {
    //! Snapshots of every payload form the recipe names: the JSON sent must have exactly the
    //! recipe's fields for its case, no more.
    use super::*;
    use serde_json::{Value, json};

    fn ts() -> Timestamp {
        "2024-03-05T09:04:05Z".parse().unwrap()
    }

    const TS: &str = "Tue, 05 Mar 2024 09:04:05 +0000";

    fn case_json(case: &NewCase) -> Value {
        serde_json::to_value(CaseBody { case }).unwrap()
    }

    #[test]
    fn email_customer_initiated() {
        let case = NewCase::email("ann@example.com", "Refund", "<p>Hi</p>", ts(), None);
        assert_eq!(
            case_json(&case),
            json!({"case": {
                "user_email": "ann@example.com",
                "subject": "Refund",
                "content_html": "<p>Hi</p>",
                "created_at": TS,
            }})
        );
    }

    #[test]
    fn email_customer_initiated_with_optionals() {
        let mut case = NewCase::email("ann@example.com", "Refund", "<p>Hi</p>", ts(), None);
        case.user_full_name = Some("Ann".into());
        case.staff_id = Some(101);
        case.group_id = Some(7);
        case.status = Some(CaseStatus::Closed);
        case.priority = Some(CasePriority::Critical);
        case.custom_fields
            .insert("cf_900".into(), "desk360:1:42".into());
        case.labels = vec![3, 4];
        case.attachment_urls = vec!["https://files.example/a.pdf".into()];
        assert_eq!(
            case_json(&case),
            json!({"case": {
                "user_email": "ann@example.com",
                "user_full_name": "Ann",
                "subject": "Refund",
                "content_html": "<p>Hi</p>",
                "created_at": TS,
                "staff_id": 101,
                "group_id": 7,
                "status": "closed",
                "priority": "critical",
                "custom_fields": {"cf_900": "desk360:1:42"},
                "labels": [3, 4],
                "attachment_urls": ["https://files.example/a.pdf"],
            }})
        );
    }

    #[test]
    fn email_agent_initiated() {
        let case = NewCase::email(
            "ann@example.com",
            "Your order",
            "<p>Hello</p>",
            ts(),
            Some(101),
        );
        assert_eq!(
            case_json(&case),
            json!({"case": {
                "user_email": "ann@example.com",
                "initiator_id": 101,
                "subject": "Your order",
                "content_html": "<p>Hello</p>",
                "created_at": TS,
                "case_email_id": -1,
                "do_not_send_email": true,
            }})
        );
    }

    #[test]
    fn calls_customer_and_agent_initiated() {
        let case = NewCase::call("+15550100", "Call", "Called about X", ts(), None);
        assert_eq!(
            case_json(&case),
            json!({"case": {
                "user_phone": "+15550100",
                "subject": "Call",
                "content": "Called about X",
                "created_at": TS,
            }})
        );
        let case = NewCase::call("+15550100", "Call", "We called", ts(), Some(101));
        assert_eq!(
            case_json(&case),
            json!({"case": {
                "user_phone": "+15550100",
                "initiator_id": 101,
                "subject": "Call",
                "content": "We called",
                "created_at": TS,
                "do_not_send_email": true,
            }})
        );
    }

    #[test]
    fn custom_channel() {
        let case = NewCase::custom(
            "u-77",
            "Chat",
            Content::Html("<b>hi</b>".into()),
            ts(),
            None,
        );
        assert_eq!(
            case_json(&case),
            json!({"case": {
                "user_custom_id": "u-77",
                "subject": "Chat",
                "content_html": "<b>hi</b>",
                "created_at": TS,
            }})
        );
        let case = NewCase::custom("u-77", "Chat", Content::Text("hi".into()), ts(), Some(5));
        assert_eq!(
            case_json(&case),
            json!({"case": {
                "user_custom_id": "u-77",
                "initiator_id": 5,
                "subject": "Chat",
                "content": "hi",
                "created_at": TS,
                "do_not_send_email": true,
            }})
        );
    }

    #[test]
    fn customer_message() {
        let m = NewMessage::from_customer(123, Content::Html("<p>thanks</p>".into()), ts());
        assert_eq!(
            serde_json::to_value(MessageBody { message: &m }).unwrap(),
            json!({"message": {"content_html": "<p>thanks</p>", "created_at": TS, "user_id": 123}})
        );
    }

    #[test]
    fn agent_message_never_emails() {
        let mut m = NewMessage::from_agent(101, Content::Html("<p>done</p>".into()), ts());
        assert_eq!(
            serde_json::to_value(MessageBody { message: &m }).unwrap(),
            json!({"message": {
                "content_html": "<p>done</p>",
                "created_at": TS,
                "staff_id": 101,
                "do_not_send_email": true,
            }})
        );
        m.attachment_urls = vec!["https://files.example/b.png".into()];
        let v = serde_json::to_value(MessageBody { message: &m }).unwrap();
        assert_eq!(
            v["message"]["attachment_urls"],
            json!(["https://files.example/b.png"])
        );
        // Calls: plain content, still never emailing.
        let m = NewMessage::from_agent(101, Content::Text("called back".into()), ts());
        assert_eq!(
            serde_json::to_value(MessageBody { message: &m }).unwrap(),
            json!({"message": {
                "content": "called back",
                "created_at": TS,
                "staff_id": 101,
                "do_not_send_email": true,
            }})
        );
    }

    #[test]
    fn note() {
        let n = NewNote::new(101, "internal", None);
        assert_eq!(
            serde_json::to_value(NoteBody { note: &n }).unwrap(),
            json!({"note": {"staff_id": 101, "note_staff_id": 101, "content": "internal"}})
        );
        let n = NewNote {
            created_at: Some(ts()),
            attachment_urls: vec!["https://files.example/c.txt".into()],
            ..n
        };
        assert_eq!(
            serde_json::to_value(NoteBody { note: &n }).unwrap(),
            json!({"note": {
                "staff_id": 101,
                "note_staff_id": 101,
                "content": "internal",
                "created_at": TS,
                "attachment_urls": ["https://files.example/c.txt"],
            }})
        );
    }

    #[test]
    fn case_update_sends_only_what_is_set() {
        let u = CaseUpdate::default();
        assert!(u.is_empty());
        assert_eq!(
            serde_json::to_value(CaseBody { case: &u }).unwrap(),
            json!({"case": {}})
        );
        let u = CaseUpdate {
            status: Some(CaseStatus::Waiting),
            priority: Some(CasePriority::Low),
            add_labels: vec![9],
            ..CaseUpdate::default()
        };
        assert!(!u.is_empty());
        assert_eq!(
            serde_json::to_value(CaseBody { case: &u }).unwrap(),
            json!({"case": {"status": "waiting", "priority": "low", "add_labels": [9]}})
        );
    }

    #[test]
    fn query_pairs() {
        let mut q = CaseQuery {
            page: Some(0),
            limit: Some(500),
            from_time: Some(ts()),
            sort: Some(CaseSort::CreatedAtAsc),
            user_id: Some(123),
            status: Some(CaseStatus::Open),
            ..CaseQuery::default()
        };
        q.custom_fields
            .insert("cf_900".into(), "^desk360:1:42^".into());
        let pairs = q.to_pairs();
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("page"), Some("1"));
        assert_eq!(get("limit"), Some("100"));
        assert_eq!(get("custom_fields[cf_900]"), Some("^desk360:1:42^"));
        assert_eq!(
            get("from_time"),
            Some(ts().as_second().to_string().as_str())
        );
        assert_eq!(get("sort"), Some("created_at_asc"));
        assert_eq!(get("user_id"), Some("123"));
        assert_eq!(get("status"), Some("open"));
        assert_eq!(get("to_time"), None);
    }

    #[test]
    fn status_and_priority_names_round_trip() {
        for s in [CaseStatus::Open, CaseStatus::Waiting, CaseStatus::Closed] {
            assert_eq!(CaseStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
        }
        for p in [
            CasePriority::Low,
            CasePriority::Normal,
            CasePriority::High,
            CasePriority::Critical,
        ] {
            assert_eq!(CasePriority::parse(p.as_str()), Some(p));
            assert_eq!(serde_json::to_value(p).unwrap(), json!(p.as_str()));
        }
        assert_eq!(CaseStatus::parse("Closed "), Some(CaseStatus::Closed));
        assert_eq!(CaseStatus::parse("archived"), None);
    }
}
