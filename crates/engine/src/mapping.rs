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
    let channel_name = ticket
        .channel
        .clone()
        .unwrap_or_else(|| "(none)".to_string());
    let route = cx.mapping.route(ticket.channel.as_deref()).clone();
    if route == ChannelRoute::Skip {
        return (
            Mapped::Skipped {
                channel: channel_name,
            },
            warnings,
        );
    }

    let mut messages: Vec<&Message> = ticket.messages.iter().collect();
    messages.sort_by_cached_key(|m| (to_timestamp(m.created_at, cx.timezone), m.id));
    let Some(first_pos) = messages.iter().position(|m| m.kind == MessageKind::Reply) else {
        let reason = if messages.is_empty() {
            "the ticket has no messages in Desk360, so there is nothing to open a case with; check the ticket in Desk360 (it may have been emptied)".to_string()
        } else {
            "the ticket has only internal notes, and Deskie opens a case with a customer-visible message; nothing can be created without exposing a note".to_string()
        };
        return (Mapped::Unroutable { route, reason }, warnings);
    };
    let first = messages[first_pos];

    // The customer's identity in the routed channel.
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
    let html_body = |m: &Message, w: &mut Vec<Warning>| -> String {
        if m.body.trim().is_empty() {
            w.push(Warning::EmptyMessage { message_id: m.id });
            "(no text)".to_string()
        } else {
            m.body.clone()
        }
    };
    // Calls and synchronous custom channels take plain `content` (recipe 003 §2, §3.1, §3.2).
    let plain = match &route {
        ChannelRoute::Calls => true,
        ChannelRoute::Custom(id) => cx.mapping.sync_channels.contains(id),
        _ => false,
    };
    let body_for = |m: &Message, w: &mut Vec<Warning>| -> Content {
        let html = html_body(m, w);
        if plain {
            Content::Text(html_to_text(&html))
        } else {
            Content::Html(html)
        }
    };

    let subject = match ticket
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
    };
    let created_at = to_timestamp(first.created_at, cx.timezone);
    let initiator = match first.author {
        Author::Agent(a) => Some(staff_for(a, cx.mapping, &mut warnings)),
        Author::Customer => None,
    };
    let first_body = body_for(first, &mut warnings);
    let mut create = match &route {
        ChannelRoute::Email => {
            let Some(email) = email else {
                return (
                    Mapped::Unroutable {
                        route,
                        reason: format!(
                            "no customer email for the Email channel (Desk360 channel `{channel_name}`); route `{channel_name}` to calls, custom:<id> or skip in [mapping.channels], or add the email in Desk360"
                        ),
                    },
                    warnings,
                );
            };
            NewCase::email(
                email,
                subject,
                content_text(&first_body),
                created_at,
                initiator,
            )
        }
        ChannelRoute::Calls => {
            let Some(phone) = phone else {
                return (
                    Mapped::Unroutable {
                        route,
                        reason: format!(
                            "no customer phone for the Calls channel (Desk360 channel `{channel_name}`); route `{channel_name}` to email, custom:<id> or skip in [mapping.channels]"
                        ),
                    },
                    warnings,
                );
            };
            NewCase::call(
                phone,
                subject,
                content_text(&first_body),
                created_at,
                initiator,
            )
        }
        ChannelRoute::Custom(id) => {
            let Some(user) = email.or(phone) else {
                return (
                    Mapped::Unroutable {
                        route: route.clone(),
                        reason: format!(
                            "no customer email or phone to identify the user in custom channel {id} (Desk360 channel `{channel_name}`); route `{channel_name}` elsewhere or skip it in [mapping.channels]"
                        ),
                    },
                    warnings,
                );
            };
            let mut c = NewCase::custom(user, subject, first_body.clone(), created_at, initiator);
            c.user_custom_channel = Some(id.clone());
            c
        }
        ChannelRoute::Skip => {
            return (
                Mapped::Skipped {
                    channel: channel_name,
                },
                warnings,
            );
        }
    };
    create.user_full_name = ticket
        .customer_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    create.staff_id = ticket
        .agent_id
        .filter(|a| *a != 0)
        .map(|a| staff_for(a, cx.mapping, &mut warnings));
    create.group_id = cx.mapping.group_id;
    let status = map_status(ticket.status, cx.mapping, &mut warnings);
    create.status = status;
    create.priority = map_priority(ticket.priority, cx.mapping, &mut warnings);
    create.do_not_send_email = Some(true);
    let upload = cx.attachments == AttachmentMode::Upload;
    let mut uploads: BTreeMap<i64, Vec<model::Attachment>> = BTreeMap::new();
    let mut rehost: BTreeMap<i64, Vec<(String, String)>> = BTreeMap::new();
    // Follow-up notes carrying the files of a message that did not fit its request (upload
    // mode), written right after that message.
    let mut follow_ups = |m: &Message, w: &mut Vec<Warning>| -> Vec<Step> {
        let at = to_timestamp(m.created_at, cx.timezone);
        // Inline images go first, so they travel with the message whose HTML shows them.
        let mut all = Vec::new();
        if cx.inline == InlineMode::Rehost && !plain {
            let images = files::inline_images(&m.body, |src| {
                files::is_desk360_storage(src, cx.source_base)
            });
            let images: Vec<model::Attachment> = images
                .iter()
                .enumerate()
                .map(|(n, src)| files::inline_attachment(src, n))
                .collect();
            if !images.is_empty() {
                rehost.insert(
                    m.id,
                    images
                        .iter()
                        .map(|a| (a.url.clone(), a.name.clone()))
                        .collect(),
                );
            }
            all.extend(images);
        }
        all.extend(m.attachments.iter().cloned());
        let plan = files::plan_message_files(m.id, at, &all, w);
        if !plan.with_message.is_empty() {
            uploads.insert(m.id, plan.with_message);
        }
        let staff = match m.author {
            Author::Agent(a) => cx.mapping.agents.get(&a).copied(),
            Author::Customer => None,
        }
        .unwrap_or(cx.mapping.default_staff_id);
        plan.follow_ups
            .into_iter()
            .enumerate()
            .map(|(k, f)| {
                let source_id = files::follow_up_id(m.id, k);
                uploads.insert(source_id, f.files);
                Step::Note {
                    source_id,
                    note: NewNote::new(staff, f.content, Some(at)),
                }
            })
            .collect()
    };
    let mut first_follow_ups = Vec::new();
    if upload {
        first_follow_ups = follow_ups(first, &mut warnings);
    } else {
        create.attachment_urls = attachment_urls(first, &mut warnings);
    }
    if let Some(field) = cx.source_id_field {
        create
            .custom_fields
            .insert(field.to_string(), ticket.key.source_id());
    }
    labels_and_fields(ticket, cx, &mut create, &mut warnings);

    // Later replies in order, then notes.
    let mut steps = first_follow_ups;
    let mut reply_after_create = false;
    for m in messages
        .iter()
        .filter(|m| m.kind == MessageKind::Reply && m.id != first.id)
    {
        let at = to_timestamp(m.created_at, cx.timezone);
        let (urls, extra) = if upload {
            (Vec::new(), follow_ups(m, &mut warnings))
        } else {
            (attachment_urls(m, &mut warnings), Vec::new())
        };
        match m.author {
            Author::Customer => {
                reply_after_create = true;
                steps.push(Step::Customer {
                    source_id: m.id,
                    body: body_for(m, &mut warnings),
                    created_at: at,
                    attachment_urls: urls,
                });
            }
            Author::Agent(a) => {
                reply_after_create = true;
                let staff = staff_for(a, cx.mapping, &mut warnings);
                let mut message = NewMessage::from_agent(staff, body_for(m, &mut warnings), at);
                message.attachment_urls = urls;
                steps.push(Step::Agent {
                    source_id: m.id,
                    message,
                });
            }
        }
        steps.extend(extra);
    }
    for m in messages.iter().filter(|m| m.kind == MessageKind::Note) {
        let staff = match m.author {
            Author::Agent(a) => staff_for(a, cx.mapping, &mut warnings),
            Author::Customer => cx.mapping.default_staff_id,
        };
        let (urls, extra) = if upload {
            (Vec::new(), follow_ups(m, &mut warnings))
        } else {
            (attachment_urls(m, &mut warnings), Vec::new())
        };
        steps.push(Step::Note {
            source_id: m.id,
            note: NewNote {
                attachment_urls: urls,
                ..NewNote::new(
                    staff,
                    html_body(m, &mut warnings),
                    Some(to_timestamp(m.created_at, cx.timezone)),
                )
            },
        });
        steps.extend(extra);
    }

    // The priority is certain from the create; only the status may have moved with a reply.
    // An unmapped status keeps Deskie's default for a new case (`open`, the create sends none);
    // a reply must not leave it at whatever the reply made of it either.
    let final_update = reply_after_create.then(|| CaseUpdate {
        status: Some(status.unwrap_or(CaseStatus::Open)),
        ..CaseUpdate::default()
    });

    dedup_warnings(&mut warnings);
    (
        Mapped::Case(Box::new(CasePlan {
            route,
            create,
            first_message_id: first.id,
            steps,
            final_update,
            uploads,
            rehost,
        })),
        warnings,
    )
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
    if let Some(t) = ticket.type_id.filter(|t| *t != 0) {
        let label = m.types.get(&t);
        if let Some(l) = label {
            create.labels.push(*l);
        }
        let field = m.type_field.as_ref().zip(cx.type_titles.get(&t));
        if let Some((f, title)) = field {
            create.custom_fields.insert(f.clone(), title.clone());
        }
        if label.is_none() && field.is_none() {
            w.push(Warning::UnmappedType { type_id: t });
        }
    }
    if let Some(r) = ticket.reason_id.filter(|r| *r != 0) {
        let label = m.reasons.get(&r);
        if let Some(l) = label
            && !create.labels.contains(l)
        {
            create.labels.push(*l);
        }
        let field = m.reason_field.as_ref().zip(cx.reason_titles.get(&r));
        if let Some((f, title)) = field {
            create.custom_fields.insert(f.clone(), title.clone());
        }
        if label.is_none() && field.is_none() {
            w.push(Warning::UnmappedReason { reason_id: r });
        }
    }
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
