//! The mapping rules: one stored Desk360 ticket → the exact sequence of Deskie writes the
//! migration recipe (`api/003_…`) prescribes. Pure: no I/O, no clock, no store. It never aborts a
//! run: a ticket that cannot be mapped comes back as [`Mapped::Unroutable`] with a reason that
//! names the fix, and anything lossy comes back as a [`Warning`] for the report.
//!
//! Rules (DESIGN.md "Mapping rules"):
//! * The first reply opens the case; if an agent wrote it the case is agent-initiated
//!   (`initiator_id`, and for Email `case_email_id = -1`).
//! * Later replies follow in source order: customer → `user_id` (from the create response),
//!   agent → `staff_id` + `do_not_send_email = true`. Notes go after the replies.
//! * Status and priority are sent with the create. What a later reply does to the status is not
//!   documented (a customer reply may reopen the case, an agent reply may set it `waiting`), so
//!   every case with a reply after the create gets a final status update once its messages are
//!   in; the loader sends these as bulk updates (≤ 10 cases a request), which costs far less than
//!   one read or write per case and holds under every reading.
//! * Null subjects are derived from the first message; naive timestamps are read in
//!   `source.timezone`; attachments go as `attachment_urls` within Deskie's 25 MB / 50 MB limits.

use std::collections::BTreeMap;

use deskie::{CasePriority, CaseStatus, CaseUpdate, Content, NewCase, NewMessage, NewNote};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use model::{Author, Message, MessageKind, Ticket};
use serde::Serialize;

use crate::config::{AttachmentMode, ChannelRoute, InlineMode, MappingSettings};

pub mod files;

/// Deskie's limit for one attached file.
pub const MAX_FILE_BYTES: u64 = 25 * 1024 * 1024;
/// Deskie's limit for all files of one request.
pub const MAX_REQUEST_BYTES: u64 = 50 * 1024 * 1024;
/// Longest derived subject.
const SUBJECT_MAX_CHARS: usize = 120;

/// Names by id (type and reason titles for [`MapContext`], and the like), from stored rows:
/// `key` picks a row's id and name.
pub(crate) fn by_id<T>(rows: Vec<T>, key: impl FnMut(T) -> (i64, String)) -> BTreeMap<i64, String> {
    rows.into_iter().map(key).collect()
}

/// Everything besides the ticket that the mapping reads.
#[derive(Debug, Clone, Copy)]
pub struct MapContext<'a> {
    /// `[mapping]`.
    pub mapping: &'a MappingSettings,
    /// Zone of Desk360's naive timestamps.
    pub timezone: &'a TimeZone,
    /// `target.source_id_field`.
    pub source_id_field: Option<&'a str>,
    /// Desk360 type id → title, for `type_field`.
    pub type_titles: &'a BTreeMap<i64, String>,
    /// Desk360 reason id → title, for `reason_field`.
    pub reason_titles: &'a BTreeMap<i64, String>,
    /// `[attachments] mode`: files as `attachment_urls`, or uploaded with their message.
    pub attachments: AttachmentMode,
    /// `[attachments] inline`: rehost inline images on Desk360 storage (upload mode only).
    pub inline: InlineMode,
    /// `source.base_url`: inline images on its host are on Desk360 storage.
    pub source_base: &'a url::Url,
}

/// Something lossy or defaulted that the report should show; the ticket still migrates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Warning {
    /// A Desk360 agent with no mapping; the default staff id was used.
    UnmappedAgent {
        /// Desk360 agent id.
        agent_id: i64,
    },
    /// A Desk360 type with neither a label mapping nor a `type_field`.
    UnmappedType {
        /// Desk360 type id.
        type_id: i64,
    },
    /// A Desk360 reason with neither a label mapping nor a `reason_field`.
    UnmappedReason {
        /// Desk360 reason id.
        reason_id: i64,
    },
    /// The subject was null or empty and was derived from the first message.
    DerivedSubject {
        /// The subject that will be sent.
        subject: String,
    },
    /// A message had no text; a placeholder was sent.
    EmptyMessage {
        /// Desk360 message id.
        message_id: i64,
    },
    /// An attachment over Deskie's limits; it is not sent.
    AttachmentTooLarge {
        /// Desk360 message id.
        message_id: i64,
        /// File name.
        name: String,
        /// Size in bytes.
        size: u64,
        /// Where it can still be downloaded from.
        url: String,
    },
    /// A status or priority code with no mapping; Deskie's default is kept.
    UnmappedCode {
        /// `status` or `priority`.
        field: &'static str,
        /// The Desk360 code.
        code: i64,
    },
}

/// One write after the create, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A customer reply; the `user_id` comes from the create response.
    Customer {
        /// Desk360 message id.
        source_id: i64,
        /// Body in the channel's form.
        body: Content,
        /// Original time.
        created_at: Timestamp,
        /// Files.
        attachment_urls: Vec<String>,
    },
    /// An agent reply, complete (`staff_id`, `do_not_send_email = true`).
    Agent {
        /// Desk360 message id.
        source_id: i64,
        /// The request.
        message: NewMessage,
    },
    /// An internal note.
    Note {
        /// Desk360 message id.
        source_id: i64,
        /// The request.
        note: NewNote,
    },
}

impl Step {
    /// The Desk360 message id this write carries.
    pub fn source_id(&self) -> i64 {
        match self {
            Step::Customer { source_id, .. }
            | Step::Agent { source_id, .. }
            | Step::Note { source_id, .. } => *source_id,
        }
    }

    /// The intent step name in the store: `message:<id>` or `note:<id>`.
    pub fn intent_name(&self) -> String {
        match self {
            Step::Note { source_id, .. } => format!("note:{source_id}"),
            other => format!("message:{}", other.source_id()),
        }
    }

    /// The request to send, given the case's user id.
    pub fn message_for(&self, user_id: i64) -> Option<NewMessage> {
        match self {
            Step::Customer {
                body,
                created_at,
                attachment_urls,
                ..
            } => {
                let mut m = NewMessage::from_customer(user_id, body.clone(), *created_at);
                m.attachment_urls = attachment_urls.clone();
                Some(m)
            }
            Step::Agent { message, .. } => Some(message.clone()),
            Step::Note { .. } => None,
        }
    }

    /// The original time of the message.
    pub fn created_at(&self) -> Timestamp {
        match self {
            Step::Customer { created_at, .. } => *created_at,
            Step::Agent { message, .. } => message.created_at,
            Step::Note { note, .. } => note.created_at.unwrap_or(Timestamp::UNIX_EPOCH),
        }
    }

    /// The text Deskie will store, used to recognise the message when reconciling.
    pub fn content(&self) -> &str {
        match self {
            Step::Customer { body, .. } => content_text(body),
            Step::Agent { message, .. } => message
                .content_html
                .as_deref()
                .or(message.content.as_deref())
                .unwrap_or(""),
            Step::Note { note, .. } => &note.content,
        }
    }

    /// True for notes.
    pub fn is_note(&self) -> bool {
        matches!(self, Step::Note { .. })
    }
}

fn content_text(c: &Content) -> &str {
    match c {
        Content::Html(s) | Content::Text(s) => s,
    }
}

/// The whole plan for one ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct CasePlan {
    /// Where it goes.
    pub route: ChannelRoute,
    /// The create request (first reply).
    pub create: NewCase,
    /// The Desk360 message that opens the case.
    pub first_message_id: i64,
    /// Later replies in order, then notes.
    pub steps: Vec<Step>,
    /// The final status update, when a reply after the create may have changed the status.
    pub final_update: Option<CaseUpdate>,
    /// `mode = "upload"`: the files each write sends as multipart parts, by the write's source
    /// id (the first message's id for the create, a follow-up note's synthetic id for it).
    /// Empty in the urls mode.
    pub uploads: BTreeMap<i64, Vec<model::Attachment>>,
    /// `inline = "rehost"`: per write (source id as in `uploads`), the inline images uploaded
    /// with it as `(src, file name)`; once written, the message is edited so each `src` points
    /// at the Deskie copy (one extra write each, counted by [`CasePlan::writes`]).
    pub rehost: BTreeMap<i64, Vec<(String, String)>>,
}

impl CasePlan {
    /// Deskie writes this plan sends on its own (each costs 2 units): the create, every reply
    /// and note, and the final update counted whole (the loader shares it with up to nine other
    /// cases in a bulk update, which the report's estimate counts per request).
    pub fn writes(&self) -> usize {
        1 + self.steps.len() + usize::from(self.final_update.is_some()) + self.rehost.len()
    }
}

/// The mapping's verdict for one ticket.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapped {
    /// Migrate it.
    Case(Box<CasePlan>),
    /// Its channel is mapped to `skip`.
    Skipped {
        /// The Desk360 channel.
        channel: String,
    },
    /// It cannot go through its channel; the reason names the fix.
    Unroutable {
        /// Route tried.
        route: ChannelRoute,
        /// What is missing and what to change.
        reason: String,
    },
}

/// Maps one ticket. Returns the verdict and the warnings collected on the way.
pub fn map_ticket(ticket: &Ticket, cx: &MapContext<'_>) -> (Mapped, Vec<Warning>) {
    let mut warnings = Vec::new();
    let mapped = match plan_case(ticket, cx, &mut warnings) {
        Ok(plan) => {
            dedup_warnings(&mut warnings);
            Mapped::Case(Box::new(plan))
        }
        Err(verdict) => verdict,
    };
    (mapped, warnings)
}

/// The case plan for a ticket that migrates; any other verdict (skipped, unroutable) as `Err`.
fn plan_case(
    ticket: &Ticket,
    cx: &MapContext<'_>,
    warnings: &mut Vec<Warning>,
) -> Result<CasePlan, Mapped> {
    let channel_name = ticket
        .channel
        .clone()
        .unwrap_or_else(|| "(none)".to_string());
    let route = cx.mapping.route(ticket.channel.as_deref()).clone();
    if route == ChannelRoute::Skip {
        return Err(Mapped::Skipped {
            channel: channel_name,
        });
    }
    let messages = messages_in_order(ticket, cx.timezone);
    let first = match opening_reply(&messages) {
        Ok(first) => first,
        Err(reason) => return Err(Mapped::Unroutable { route, reason }),
    };
    let bodies = Bodies::for_route(&route, cx.mapping);
    let subject = subject_for(ticket, first, warnings);
    let created_at = to_timestamp(first.created_at, cx.timezone);
    let initiator = match first.author {
        Author::Agent(a) => Some(staff_for(a, cx.mapping, warnings)),
        Author::Customer => None,
    };
    let first_body = bodies.content(first, warnings);
    let opening = Opening {
        subject,
        body: first_body,
        created_at,
        initiator,
    };
    let mut create = new_case(&route, ticket, &channel_name, opening)?;
    let status = case_fields(&mut create, ticket, cx.mapping, warnings);
    let mut files = FilePlanner::new(cx, bodies.plain);
    let mut steps = Vec::new();
    if files.upload {
        steps = files.follow_ups(first, warnings);
    } else {
        create.attachment_urls = attachment_urls(first, warnings);
    }
    if let Some(field) = cx.source_id_field {
        create
            .custom_fields
            .insert(field.to_string(), ticket.key.source_id());
    }
    labels_and_fields(ticket, cx, &mut create, warnings);

    // Later replies in order, then notes.
    let reply_after_create =
        reply_steps(&messages, first, &bodies, &mut files, &mut steps, warnings);
    note_steps(&messages, &mut files, &mut steps, warnings);

    // The priority is certain from the create; only the status may have moved with a reply.
    // An unmapped status keeps Deskie's default for a new case (`open`, the create sends none);
    // a reply must not leave it at whatever the reply made of it either.
    let final_update = reply_after_create.then(|| CaseUpdate {
        status: Some(status.unwrap_or(CaseStatus::Open)),
        ..CaseUpdate::default()
    });
    Ok(CasePlan {
        route,
        create,
        first_message_id: first.id,
        steps,
        final_update,
        uploads: files.uploads,
        rehost: files.rehost,
    })
}

/// The ticket's messages by instant (naive times read in the source zone), ties by id.
fn messages_in_order<'t>(ticket: &'t Ticket, tz: &TimeZone) -> Vec<&'t Message> {
    let mut messages: Vec<&Message> = ticket.messages.iter().collect();
    messages.sort_by_cached_key(|m| (to_timestamp(m.created_at, tz), m.id));
    messages
}

/// The first reply, which opens the case; without one, the reason nothing can be created.
fn opening_reply<'t>(messages: &[&'t Message]) -> Result<&'t Message, String> {
    match messages.iter().find(|m| m.kind == MessageKind::Reply) {
        Some(first) => Ok(first),
        None if messages.is_empty() => Err("the ticket has no messages in Desk360, so there is nothing to open a case with; check the ticket in Desk360 (it may have been emptied)".to_string()),
        None => Err("the ticket has only internal notes, and Deskie opens a case with a customer-visible message; nothing can be created without exposing a note".to_string()),
    }
}

/// How message bodies are sent in the routed channel.
struct Bodies {
    /// Calls and synchronous custom channels take plain `content` (recipe 003 §2, §3.1, §3.2).
    plain: bool,
}

impl Bodies {
    fn for_route(route: &ChannelRoute, mapping: &MappingSettings) -> Self {
        let plain = match route {
            ChannelRoute::Calls => true,
            ChannelRoute::Custom(id) => mapping.sync_channels.contains(id),
            _ => false,
        };
        Bodies { plain }
    }

    /// The message's HTML, or a placeholder (with a warning) when it has no text.
    fn html(m: &Message, w: &mut Vec<Warning>) -> String {
        if m.body.trim().is_empty() {
            w.push(Warning::EmptyMessage { message_id: m.id });
            "(no text)".to_string()
        } else {
            m.body.clone()
        }
    }

    /// The message's body in the channel's form.
    fn content(&self, m: &Message, w: &mut Vec<Warning>) -> Content {
        let html = Self::html(m, w);
        if self.plain {
            Content::Text(html_to_text(&html))
        } else {
            Content::Html(html)
        }
    }
}

/// The ticket's subject, or one derived from the first message (with a warning).
fn subject_for(ticket: &Ticket, first: &Message, warnings: &mut Vec<Warning>) -> String {
    match ticket
        .subject
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(s) => s.to_string(),
        None => {
            let derived = derive_subject(&first.body, ticket.key.ticket_id);
            warnings.push(Warning::DerivedSubject {
                subject: derived.clone(),
            });
            derived
        }
    }
}

/// What the create request carries from the first reply.
struct Opening {
    subject: String,
    body: Content,
    created_at: Timestamp,
    initiator: Option<i64>,
}

/// The create request for the route, or why the ticket cannot go through it: each channel needs
/// its own customer identifier (email, phone, or either for a custom channel).
fn new_case(
    route: &ChannelRoute,
    ticket: &Ticket,
    channel_name: &str,
    o: Opening,
) -> Result<NewCase, Mapped> {
    let email = ticket
        .customer_email
        .as_deref()
        .map(str::trim)
        .filter(|e| e.contains('@'));
    let phone = ticket
        .customer_phone
        .as_deref()
        .map(str::trim)
        .filter(|p| p.chars().filter(char::is_ascii_digit).count() >= 5);
    let unroutable = |reason: String| Mapped::Unroutable {
        route: route.clone(),
        reason,
    };
    match route {
        ChannelRoute::Email => {
            let email = email.ok_or_else(|| unroutable(format!(
                "no customer email for the Email channel (Desk360 channel `{channel_name}`); route `{channel_name}` to calls, custom:<id> or skip in [mapping.channels], or add the email in Desk360"
            )))?;
            Ok(NewCase::email(
                email,
                o.subject,
                content_text(&o.body),
                o.created_at,
                o.initiator,
            ))
        }
        ChannelRoute::Calls => {
            let phone = phone.ok_or_else(|| unroutable(format!(
                "no customer phone for the Calls channel (Desk360 channel `{channel_name}`); route `{channel_name}` to email, custom:<id> or skip in [mapping.channels]"
            )))?;
            Ok(NewCase::call(
                phone,
                o.subject,
                content_text(&o.body),
                o.created_at,
                o.initiator,
            ))
        }
        ChannelRoute::Custom(id) => {
            let user = email.or(phone).ok_or_else(|| unroutable(format!(
                "no customer email or phone to identify the user in custom channel {id} (Desk360 channel `{channel_name}`); route `{channel_name}` elsewhere or skip it in [mapping.channels]"
            )))?;
            let mut c = NewCase::custom(user, o.subject, o.body, o.created_at, o.initiator);
            c.user_custom_channel = Some(id.clone());
            Ok(c)
        }
        ChannelRoute::Skip => Err(Mapped::Skipped {
            channel: channel_name.to_string(),
        }),
    }
}

/// The create's case fields: customer name, responsible agent, group, status, priority, and no
/// email to the customer. Returns the mapped status, which the final update repeats.
fn case_fields(
    create: &mut NewCase,
    ticket: &Ticket,
    mapping: &MappingSettings,
    warnings: &mut Vec<Warning>,
) -> Option<CaseStatus> {
    create.user_full_name = ticket
        .customer_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    create.staff_id = ticket
        .agent_id
        .filter(|a| *a != 0)
        .map(|a| staff_for(a, mapping, warnings));
    create.group_id = mapping.group_id;
    let status = map_status(ticket.status, mapping, warnings);
    create.status = status;
    create.priority = map_priority(ticket.priority, mapping, warnings);
    create.do_not_send_email = Some(true);
    status
}

/// Upload mode's files per write: which files go with each message, the follow-up notes for
/// those that do not fit its request, and the inline images to rehost.
struct FilePlanner<'c> {
    cx: &'c MapContext<'c>,
    /// `mode = "upload"`; otherwise files go as `attachment_urls` and nothing is planned here.
    upload: bool,
    /// Plain-text channels show no HTML, so their inline images are not rehosted.
    plain: bool,
    uploads: BTreeMap<i64, Vec<model::Attachment>>,
    rehost: BTreeMap<i64, Vec<(String, String)>>,
}

impl<'c> FilePlanner<'c> {
    fn new(cx: &'c MapContext<'c>, plain: bool) -> Self {
        FilePlanner {
            cx,
            upload: cx.attachments == AttachmentMode::Upload,
            plain,
            uploads: BTreeMap::new(),
            rehost: BTreeMap::new(),
        }
    }

    /// A message's files (as `attachment_urls`, urls mode) and the follow-up notes carrying
    /// what did not fit its request (upload mode), to write right after it.
    fn for_message(&mut self, m: &Message, w: &mut Vec<Warning>) -> (Vec<String>, Vec<Step>) {
        if self.upload {
            (Vec::new(), self.follow_ups(m, w))
        } else {
            (attachment_urls(m, w), Vec::new())
        }
    }

    /// Upload mode: plans the message's files and returns the follow-up notes for those that
    /// did not fit its request.
    fn follow_ups(&mut self, m: &Message, w: &mut Vec<Warning>) -> Vec<Step> {
        let at = to_timestamp(m.created_at, self.cx.timezone);
        // Inline images go first, so they travel with the message whose HTML shows them.
        let mut all = self.inline_images(m);
        all.extend(m.attachments.iter().cloned());
        let plan = files::plan_message_files(m.id, at, &all, w);
        if !plan.with_message.is_empty() {
            self.uploads.insert(m.id, plan.with_message);
        }
        let staff = match m.author {
            Author::Agent(a) => self.cx.mapping.agents.get(&a).copied(),
            Author::Customer => None,
        }
        .unwrap_or(self.cx.mapping.default_staff_id);
        plan.follow_ups
            .into_iter()
            .enumerate()
            .map(|(k, f)| {
                let source_id = files::follow_up_id(m.id, k);
                self.uploads.insert(source_id, f.files);
                Step::Note {
                    source_id,
                    note: NewNote::new(staff, f.content, Some(at)),
                }
            })
            .collect()
    }

    /// `inline = "rehost"`: the message's inline images on Desk360 storage as files to upload,
    /// recorded for the edit that points each `src` at the Deskie copy.
    fn inline_images(&mut self, m: &Message) -> Vec<model::Attachment> {
        if self.cx.inline != InlineMode::Rehost || self.plain {
            return Vec::new();
        }
        let base = self.cx.source_base;
        let images: Vec<model::Attachment> =
            files::inline_images(&m.body, |src| files::is_desk360_storage(src, base))
                .iter()
                .enumerate()
                .map(|(n, src)| files::inline_attachment(src, n))
                .collect();
        if !images.is_empty() {
            self.rehost.insert(
                m.id,
                images
                    .iter()
                    .map(|a| (a.url.clone(), a.name.clone()))
                    .collect(),
            );
        }
        images
    }
}

/// The replies after the first, in order, each followed by its follow-up notes. True when
/// there was any (the status may have moved, so the plan ends with a final update).
fn reply_steps(
    messages: &[&Message],
    first: &Message,
    bodies: &Bodies,
    files: &mut FilePlanner<'_>,
    steps: &mut Vec<Step>,
    warnings: &mut Vec<Warning>,
) -> bool {
    let tz = files.cx.timezone;
    let mapping = files.cx.mapping;
    let mut reply_after_create = false;
    for m in messages
        .iter()
        .filter(|m| m.kind == MessageKind::Reply && m.id != first.id)
    {
        reply_after_create = true;
        let at = to_timestamp(m.created_at, tz);
        let (urls, extra) = files.for_message(m, warnings);
        match m.author {
            Author::Customer => {
                steps.push(Step::Customer {
                    source_id: m.id,
                    body: bodies.content(m, warnings),
                    created_at: at,
                    attachment_urls: urls,
                });
            }
            Author::Agent(a) => {
                let staff = staff_for(a, mapping, warnings);
                let mut message = NewMessage::from_agent(staff, bodies.content(m, warnings), at);
                message.attachment_urls = urls;
                steps.push(Step::Agent {
                    source_id: m.id,
                    message,
                });
            }
        }
        steps.extend(extra);
    }
    reply_after_create
}

/// The internal notes, in order, each followed by its follow-up notes. A note keeps its HTML
/// whatever the channel: notes are never shown to the customer.
fn note_steps(
    messages: &[&Message],
    files: &mut FilePlanner<'_>,
    steps: &mut Vec<Step>,
    warnings: &mut Vec<Warning>,
) {
    let tz = files.cx.timezone;
    let mapping = files.cx.mapping;
    for m in messages.iter().filter(|m| m.kind == MessageKind::Note) {
        let staff = match m.author {
            Author::Agent(a) => staff_for(a, mapping, warnings),
            Author::Customer => mapping.default_staff_id,
        };
        let (urls, extra) = files.for_message(m, warnings);
        steps.push(Step::Note {
            source_id: m.id,
            note: NewNote {
                attachment_urls: urls,
                ..NewNote::new(
                    staff,
                    Bodies::html(m, warnings),
                    Some(to_timestamp(m.created_at, tz)),
                )
            },
        });
        steps.extend(extra);
    }
}

fn staff_for(agent: i64, mapping: &MappingSettings, warnings: &mut Vec<Warning>) -> i64 {
    match mapping.agents.get(&agent) {
        Some(s) => *s,
        None => {
            warnings.push(Warning::UnmappedAgent { agent_id: agent });
            mapping.default_staff_id
        }
    }
}

fn map_status(code: Option<i64>, m: &MappingSettings, w: &mut Vec<Warning>) -> Option<CaseStatus> {
    let code = code?;
    match m.status.get(&code).copied() {
        Some(s) => Some(s),
        None => {
            w.push(Warning::UnmappedCode {
                field: "status",
                code,
            });
            None
        }
    }
}

fn map_priority(
    code: Option<i64>,
    m: &MappingSettings,
    w: &mut Vec<Warning>,
) -> Option<CasePriority> {
    let code = code?;
    match m.priority.get(&code).copied() {
        Some(p) => Some(p),
        None => {
            w.push(Warning::UnmappedCode {
                field: "priority",
                code,
            });
            None
        }
    }
}

fn labels_and_fields(
    ticket: &Ticket,
    cx: &MapContext<'_>,
    create: &mut NewCase,
    w: &mut Vec<Warning>,
) {
    let m = cx.mapping;
    let by_type = (&m.types, m.type_field.as_ref(), cx.type_titles);
    if let Some(type_id) = label_and_field(create, ticket.type_id, by_type) {
        w.push(Warning::UnmappedType { type_id });
    }
    let by_reason = (&m.reasons, m.reason_field.as_ref(), cx.reason_titles);
    if let Some(reason_id) = label_and_field(create, ticket.reason_id, by_reason) {
        w.push(Warning::UnmappedReason { reason_id });
    }
}

/// Gives the case the label (from `labels`, once) and the custom field (`field` = the title
/// from `titles`) of a type or reason `id` (0 or none: nothing); returns the id when it has
/// neither, for the warning.
fn label_and_field(
    create: &mut NewCase,
    id: Option<i64>,
    (labels, field, titles): (&BTreeMap<i64, i64>, Option<&String>, &BTreeMap<i64, String>),
) -> Option<i64> {
    let id = id.filter(|i| *i != 0)?;
    let label = labels.get(&id);
    if let Some(l) = label
        && !create.labels.contains(l)
    {
        create.labels.push(*l);
    }
    let field = field.zip(titles.get(&id));
    if let Some((f, title)) = field {
        create.custom_fields.insert(f.clone(), title.clone());
    }
    (label.is_none() && field.is_none()).then_some(id)
}

/// Files within Deskie's limits, in order; the rest become warnings (never silently dropped).
fn attachment_urls(m: &Message, warnings: &mut Vec<Warning>) -> Vec<String> {
    let mut total = 0u64;
    let mut urls = Vec::new();
    for a in &m.attachments {
        let size = a.size.unwrap_or(0);
        if size > MAX_FILE_BYTES || total + size > MAX_REQUEST_BYTES {
            warnings.push(Warning::AttachmentTooLarge {
                message_id: m.id,
                name: a.name.clone(),
                size,
                url: a.url.clone(),
            });
            continue;
        }
        total += size;
        urls.push(a.url.clone());
    }
    urls
}

fn dedup_warnings(w: &mut Vec<Warning>) {
    let mut seen = Vec::with_capacity(w.len());
    w.retain(|x| {
        if seen.contains(x) {
            false
        } else {
            seen.push(x.clone());
            true
        }
    });
}

/// The instant of a Desk360 time: one that carried its own offset as it is, whatever the
/// configured zone; a naive one read in `tz` (`source.timezone`). Naive times that fall in a
/// daylight-saving gap or overlap resolve the way clocks do ("compatible"), so no ticket fails
/// on a DST night ([`model::SourceTime::to_timestamp`]).
pub fn to_timestamp(t: impl Into<model::SourceTime>, tz: &TimeZone) -> Timestamp {
    t.into().to_timestamp(tz)
}

/// The first line of the first message's text, trimmed and shortened; never empty.
pub fn derive_subject(first_body: &str, ticket_id: i64) -> String {
    let text = html_to_text(first_body);
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if line.is_empty() {
        return format!("Desk360 ticket #{ticket_id}");
    }
    let mut s: String = line.chars().take(SUBJECT_MAX_CHARS).collect();
    if line.chars().count() > SUBJECT_MAX_CHARS {
        s = s.trim_end().to_string();
        s.push('…');
    }
    s
}

/// Width handed to the renderer: wide enough that no real paragraph is wrapped, so a line break
/// in the text is one the HTML asked for (block end or `<br>`), never one the renderer chose.
const TEXT_WIDTH: usize = 1_000_000;

/// Turns message HTML into plain text for the Calls channel and derived subjects, with a real
/// HTML5 parser (`html2text`, built on html5ever): entities decoded the way browsers do, block
/// ends and `<br>` become line breaks, and what a reader never sees (`<style>`, `<script>`,
/// `<head>`, comments) is dropped. No decoration (no `*` for bold, `[…]` for links, `#` for
/// headings), spaces collapsed within a line, at most one empty line between blocks.
///
/// A body with no markup at all is plain text (Desk360 stores some messages that way): its line
/// breaks are kept, where HTML would read them as spaces.
pub fn html_to_text(html: &str) -> String {
    let source = if has_markup(html) {
        std::borrow::Cow::Borrowed(html)
    } else {
        std::borrow::Cow::Owned(html.replace("\r\n", "\n").replace('\n', "<br>"))
    };
    let rendered = html2text::config::with_decorator(html2text::render::TrivialDecorator::new())
        .raw_mode(true)
        .allow_width_overflow()
        .string_from_read(source.as_bytes(), TEXT_WIDTH);
    // It only fails when the text cannot fit the width (allowed to overflow here) or the reader
    // fails (a byte slice does not); should it fail anyway, the input is kept as text rather
    // than losing the message.
    let text = rendered.unwrap_or_else(|_| html.to_string());
    tidy_lines(&text)
}

/// True when `s` holds a tag, end tag, comment or declaration: a `<` followed by a letter, `/`,
/// `!` or `?` (as the HTML tokenizer reads it; a `<` before a space or digit is text).
fn has_markup(s: &str) -> bool {
    s.match_indices('<').any(|(i, _)| {
        s[i + 1..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, '/' | '!' | '?'))
    })
}

/// Spaces collapsed within each line, runs of empty lines reduced to one, ends trimmed.
fn tidy_lines(text: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.is_empty() && out.last().is_none_or(String::is_empty) {
            continue;
        }
        out.push(line);
    }
    while out.last().is_some_and(String::is_empty) {
        out.pop();
    }
    out.join("\n")
}

/// A message body as compared when reading Deskie back (reconciliation, `verify`): HTML reduced
/// to text and every run of whitespace (line breaks included) made one space, so a server that
/// re-formats markup, or turns plain text into HTML, still matches.
pub(crate) fn normalize_body(s: &str) -> String {
    let t = s.trim();
    let text = if t.contains('<') || t.contains('&') {
        std::borrow::Cow::Owned(html_to_text(t))
    } else {
        std::borrow::Cow::Borrowed(t)
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
