//! The Deskie account the emulator keeps: cases with their messages, notes and attachments,
//! users, and the id counters; and the copy of it tests assert on ([`crate::DeskieSnapshot`]).

use std::collections::{BTreeMap, HashMap};

use axum::body::Bytes;
use jiff::Timestamp;
use serde_json::Value;

use crate::snapshot::{CaseSnapshot, DeskieSnapshot, FileSnapshot, MessageSnapshot, UserSnapshot};

/// One file of a multipart write, as read (`deskie/files.rs`) and kept with its message.
#[derive(Debug, Clone)]
pub(super) struct Upload {
    /// The part's file name.
    pub name: String,
    /// Its size in bytes (all of it, kept or not).
    pub size: u64,
    /// Lower-case hex SHA-256 of all its bytes.
    pub sha256: String,
    /// The part's content type (`application/octet-stream` when absent).
    pub mime: String,
    /// What the emulator keeps of the content.
    pub content: Content,
}

/// The content of an upload as kept: its bytes, or — for a file the Desk360 emulator generated,
/// uploaded back unchanged — where to generate them again (a large migration against the sandbox
/// would otherwise hold every attachment of the account in memory).
#[derive(Debug, Clone)]
pub(super) enum Content {
    /// The bytes, when within the limits (empty otherwise: the write is refused anyway).
    Kept(Bytes),
    /// Exactly the content of the dataset's attachment at this URL path.
    Generated(String),
}

/// One file of a message: sent as a URL (`attachment_urls`) or uploaded (multipart).
#[derive(Debug, Clone)]
pub(super) struct Attachment {
    /// Unique in the account; answered as `file_id`.
    pub file_id: i64,
    pub name: String,
    pub size: u64,
    /// As recorded in the snapshot's `attachment_urls`: the URL sent, or `multipart:<name>`.
    pub url: String,
    /// The URL answered: the URL sent, or where the emulator serves the uploaded bytes.
    pub link: String,
    /// The uploaded file (multipart writes only).
    pub upload: Option<Upload>,
}

/// One message or note of a case.
#[derive(Debug, Clone)]
pub(super) struct Message {
    pub message_id: i64,
    pub user_id: i64,
    pub staff_id: i64,
    pub content: String,
    pub content_html: String,
    pub note: bool,
    pub created_at: Timestamp,
    pub attachments: Vec<Attachment>,
    pub customer_emailed: bool,
}

/// One case with its messages, in the account's words (status and priority as Deskie spells them).
#[derive(Debug, Clone)]
pub(super) struct Case {
    pub case_id: i64,
    pub case_number: String,
    pub user_id: i64,
    pub channel: String,
    pub subject: String,
    pub status: String,
    pub priority: String,
    pub staff_id: i64,
    pub group_id: Option<i64>,
    pub initiator_id: Option<i64>,
    pub case_email_id: Option<i64>,
    pub custom_fields: BTreeMap<String, Value>,
    pub labels: Vec<i64>,
    pub language_id: i64,
    pub recipient: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub messages: Vec<Message>,
    pub source_ticket: Option<(i64, i64)>,
    /// In the trash (`deleted` in the answers).
    pub trashed: bool,
    /// In the spam filter.
    pub spam: bool,
    /// Deleted permanently: kept only so ids stay positions; invisible everywhere.
    pub purged: bool,
}

/// One customer of the account (created by the cases sent for them).
#[derive(Debug, Clone)]
pub(super) struct User {
    pub user_id: i64,
    pub kind: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub custom_id: Option<String>,
    pub full_name: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// In the "Deleted" list (page 000, "Delete a user"); restorable.
    pub deleted: bool,
    /// `false` once blocked.
    pub active: bool,
    /// Deleted permanently: invisible everywhere.
    pub purged: bool,
}

/// The Deskie account's data.
#[derive(Debug)]
pub(super) struct Account {
    pub cases: Vec<Case>,
    pub users: Vec<User>,
    /// (kind, lower-case key) → index in `users`: one user per address.
    pub users_by_key: HashMap<(String, String), usize>,
    next_message_id: i64,
    /// Uploaded file id → (case id, message id), to serve it.
    pub file_index: HashMap<i64, (i64, i64)>,
    next_file_id: i64,
}

/// Ids are positions: case `FIRST_CASE_ID + i` is `cases[i]`.
pub(super) const FIRST_CASE_ID: i64 = 2000;
/// Ids are positions: user `FIRST_USER_ID + i` is `users[i]`.
pub(super) const FIRST_USER_ID: i64 = 100;

impl Account {
    /// An empty account.
    pub fn new() -> Self {
        Self {
            cases: Vec::new(),
            users: Vec::new(),
            users_by_key: HashMap::new(),
            next_message_id: 200_000,
            file_index: HashMap::new(),
            next_file_id: 300_000,
        }
    }

    /// A case that exists (not permanently deleted).
    pub fn case_mut(&mut self, id: i64) -> Option<&mut Case> {
        let i = usize::try_from(id.checked_sub(FIRST_CASE_ID)?).ok()?;
        self.cases.get_mut(i).filter(|c| !c.purged)
    }

    /// Records where the uploaded files of a message just stored live, so they can be served.
    pub fn index_files(&mut self, case_id: i64, message: &Message) {
        for a in message.attachments.iter().filter(|a| a.upload.is_some()) {
            self.file_index
                .insert(a.file_id, (case_id, message.message_id));
        }
    }

    /// A user that exists (not permanently deleted).
    pub fn user_mut(&mut self, id: i64) -> Option<&mut User> {
        let i = usize::try_from(id.checked_sub(FIRST_USER_ID)?).ok()?;
        self.users.get_mut(i).filter(|u| !u.purged)
    }

    /// The user behind an address (`kind`, `key` compared case-insensitively), created on first
    /// use as a case create does.
    pub fn find_or_create_user(
        &mut self,
        kind: &str,
        key: &str,
        full_name: Option<&str>,
        now: Timestamp,
    ) -> i64 {
        let map_key = (kind.to_owned(), key.to_lowercase());
        if let Some(&i) = self.users_by_key.get(&map_key) {
            return self.users[i].user_id;
        }
        let user_id = FIRST_USER_ID + self.users.len() as i64;
        let mut u = User {
            user_id,
            kind: kind.to_owned(),
            email: None,
            phone: None,
            custom_id: None,
            full_name: full_name.map(str::to_owned),
            created_at: now,
            updated_at: now,
            deleted: false,
            active: true,
            purged: false,
        };
        match kind {
            "email" => u.email = Some(key.to_owned()),
            "phone" | "whatsapp" => u.phone = Some(key.to_owned()),
            _ => u.custom_id = Some(key.to_owned()),
        }
        self.users_by_key.insert(map_key, self.users.len());
        self.users.push(u);
        user_id
    }

    /// A new message id (unique in the account).
    pub fn next_message_id(&mut self) -> i64 {
        let id = self.next_message_id;
        self.next_message_id += 1;
        id
    }

    /// A new file id (unique in the account).
    pub fn next_file_id(&mut self) -> i64 {
        let id = self.next_file_id;
        self.next_file_id += 1;
        id
    }

    pub fn snapshot(&self) -> DeskieSnapshot {
        let cases: Vec<CaseSnapshot> = self
            .cases
            .iter()
            .filter(|c| !c.purged)
            .map(|c| CaseSnapshot {
                case_id: c.case_id,
                case_number: c.case_number.clone(),
                user_id: c.user_id,
                channel: c.channel.clone(),
                subject: c.subject.clone(),
                status: c.status.clone(),
                priority: c.priority.clone(),
                staff_id: c.staff_id,
                group_id: c.group_id,
                initiator_id: c.initiator_id,
                case_email_id: c.case_email_id,
                custom_fields: c.custom_fields.clone(),
                labels: c.labels.clone(),
                created_at: c.created_at.to_string(),
                messages: ordered(&c.messages)
                    .into_iter()
                    .map(|m| MessageSnapshot {
                        message_id: m.message_id,
                        user_id: m.user_id,
                        staff_id: m.staff_id,
                        content: m.content.clone(),
                        content_html: m.content_html.clone(),
                        note: m.note,
                        created_at: m.created_at.to_string(),
                        attachment_urls: m.attachments.iter().map(|a| a.url.clone()).collect(),
                        files: m
                            .attachments
                            .iter()
                            .filter_map(|a| {
                                a.upload.as_ref().map(|u| FileSnapshot {
                                    name: u.name.clone(),
                                    size: u.size,
                                    sha256: u.sha256.clone(),
                                    url: a.link.clone(),
                                })
                            })
                            .collect(),
                        customer_emailed: m.customer_emailed,
                    })
                    .collect(),
                source_ticket: c.source_ticket,
                deleted: c.trashed,
                spam: c.spam,
            })
            .collect();
        let customer_emailed = cases
            .iter()
            .flat_map(|c| &c.messages)
            .filter(|m| m.customer_emailed)
            .count();
        DeskieSnapshot {
            cases,
            users: self
                .users
                .iter()
                .filter(|u| !u.purged)
                .map(|u| UserSnapshot {
                    user_id: u.user_id,
                    kind: u.kind.clone(),
                    email: u.email.clone(),
                    phone: u.phone.clone(),
                    custom_id: u.custom_id.clone(),
                    full_name: u.full_name.clone(),
                    deleted: u.deleted,
                    active: u.active,
                })
                .collect(),
            customer_emailed,
        }
    }
}

/// Messages in Deskie order: by created_at, then arrival.
pub(super) fn ordered(messages: &[Message]) -> Vec<&Message> {
    let mut v: Vec<&Message> = messages.iter().collect();
    v.sort_by_key(|m| (m.created_at, m.message_id));
    v
}
