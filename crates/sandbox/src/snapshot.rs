//! The Deskie account as tests see it: cases with their messages and files, and users, copied out
//! of the emulator's state (`deskie/account.rs`) so assertions never hold a lock.

use std::collections::BTreeMap;

/// The whole Deskie state, for assertions.
#[derive(Debug, Clone, Default)]
pub struct DeskieSnapshot {
    /// Every case, in creation order.
    pub cases: Vec<CaseSnapshot>,
    /// Every user, in creation order.
    pub users: Vec<UserSnapshot>,
    /// Number of messages recorded as emailed to the customer (should be 0 after an import).
    pub customer_emailed: usize,
}

impl DeskieSnapshot {
    /// Every case whose content carries markers of the source ticket `(product, ticket)`.
    pub fn cases_of(&self, product_id: i64, ticket_id: i64) -> Vec<&CaseSnapshot> {
        self.cases
            .iter()
            .filter(|c| c.source_ticket == Some((product_id, ticket_id)))
            .collect()
    }
}

/// One Deskie case with its messages.
#[derive(Debug, Clone)]
pub struct CaseSnapshot {
    /// Deskie case id.
    pub case_id: i64,
    /// Deskie case number (`"664-245651"` style).
    pub case_number: String,
    /// The user the case belongs to.
    pub user_id: i64,
    /// `"email"`, `"calls"`, `"whatsapp"` or `"custom:<channel id>"`.
    pub channel: String,
    /// Subject.
    pub subject: String,
    /// `open`, `waiting` or `closed`.
    pub status: String,
    /// `low`, `normal`, `high` or `critical`.
    pub priority: String,
    /// Responsible agent (0 = none).
    pub staff_id: i64,
    /// Group, if any.
    pub group_id: Option<i64>,
    /// The agent who initiated the case, if agent-initiated.
    pub initiator_id: Option<i64>,
    /// `case_email_id` as sent (must be -1 for agent-initiated Email cases).
    pub case_email_id: Option<i64>,
    /// Custom fields as stored.
    pub custom_fields: BTreeMap<String, serde_json::Value>,
    /// Labels.
    pub labels: Vec<i64>,
    /// Creation time, RFC 3339 UTC.
    pub created_at: String,
    /// Messages in Deskie order (created_at, then arrival), notes included.
    pub messages: Vec<MessageSnapshot>,
    /// The source ticket whose `ref:` marker the creating write carried, if any.
    pub source_ticket: Option<(i64, i64)>,
    /// In the trash (`PUT …/trash.json`; `restore.json` brings it back). A permanently deleted
    /// case is not in the snapshot at all.
    pub deleted: bool,
    /// Marked as spam (`PUT …/spam.json`, or created for a blocked user).
    pub spam: bool,
}

/// One Deskie message or note.
#[derive(Debug, Clone)]
pub struct MessageSnapshot {
    /// Deskie message id.
    pub message_id: i64,
    /// Customer author (0 for agent messages and notes).
    pub user_id: i64,
    /// Agent author (0 for customer messages).
    pub staff_id: i64,
    /// Plain content as sent.
    pub content: String,
    /// HTML content as sent.
    pub content_html: String,
    /// Whether this is an internal note.
    pub note: bool,
    /// Creation time, RFC 3339 UTC.
    pub created_at: String,
    /// `attachment_urls` sent, plus `multipart:<file name>` for uploaded files.
    pub attachment_urls: Vec<String>,
    /// The files uploaded with this message (multipart writes; a case create's go to its first
    /// message), in part order.
    pub files: Vec<FileSnapshot>,
    /// Whether the real service would have emailed the customer (agent message or agent-initiated
    /// case sent without `do_not_send_email = true`).
    pub customer_emailed: bool,
}

/// One file uploaded to Deskie, for end-to-end checks of attachment migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSnapshot {
    /// The part's file name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Lower-case hex SHA-256 of the bytes received.
    pub sha256: String,
    /// Where the Deskie emulator serves the bytes (the `url` its answers give for the file).
    pub url: String,
}

/// One Deskie user (created by the cases).
#[derive(Debug, Clone)]
pub struct UserSnapshot {
    /// Deskie user id.
    pub user_id: i64,
    /// `"email"`, `"phone"`, `"whatsapp"` or `"custom"`.
    pub kind: String,
    /// Email, for email users.
    pub email: Option<String>,
    /// Phone, for phone / WhatsApp users.
    pub phone: Option<String>,
    /// Custom id, for custom-channel users.
    pub custom_id: Option<String>,
    /// Full name, if one was sent.
    pub full_name: Option<String>,
    /// In the "Deleted" list (`PUT …/disable.json`, page 000 "Delete a user"); a permanently
    /// deleted user is not in the snapshot at all.
    pub deleted: bool,
    /// `false` once blocked (`PUT …/block.json`); `restore.json` sets it back.
    pub active: bool,
}
