//! The seeded synthetic Desk360 account both emulators serve and tests assert against.
//!
//! Everything is derived from `(seed, products, tickets)` with one `fastrand::Rng`, so the same
//! input always yields the same account (tests rely on it). The data carries the variety real
//! accounts have and that an importer must survive: 1–30 messages a ticket (most 2–6), notes,
//! agent-opened tickets, null subjects, unicode/emoji HTML, ~100 KB messages, attachments over
//! Deskie's 25 MB limit, every status/priority/channel, tickets without an email, equal
//! timestamps inside a ticket.
//!
//! Every message body carries a unique marker `ref:p<product>t<ticket>m<index>` (index in source
//! order, 0 = first message). It survives HTML-to-text conversion, so the Deskie emulator can
//! tell which source message a write carries (see [`parse_refs`]), which the `reject_*` faults
//! need.
//!
//! After generation the account can change like a live one (a customer replies, an agent writes a
//! note, a status moves): [`Dataset::append_message`], [`Dataset::set_status`] and
//! [`Dataset::set_priority`] advance an account clock past every generated time, stamp the ticket's
//! `updated_at` with it (so an `order=asc` listing shows the ticket last, as Desk360 does) and keep
//! the marker rule for new messages. This is what a delta (switch-over day) run is tested with.
//! [`Dataset::create_ticket`] adds a ticket shaped like a generated one (the churn of a live
//! account), [`Dataset::bulk_set_status`] stamps several tickets with one second (list ties).
//!
//! Attachment files have deterministic pseudo-random content drawn from the seed and the URL's
//! path, produced chunk by chunk ([`Dataset::attachment_chunks`], [`Dataset::attachment_sha256`]),
//! so no file is ever whole in memory and a test can compare checksums end to end.

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Value, json};

/// Host used for attachment URLs by [`generate`]; a running [`crate::Sandbox`] uses its own
/// Desk360 URL instead so the links point at the emulator.
pub const DEFAULT_ATTACHMENT_BASE: &str = "https://files.desk360.invalid";

/// A Desk360 product (tickets are scoped by product).
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    /// Desk360 product id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Logo URL, often null.
    pub logo: Option<String>,
}

/// A Desk360 agent; messages with a non-zero `agent_id` come from one of these.
#[derive(Debug, Clone, PartialEq)]
pub struct Agent {
    /// Desk360 agent id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Login email, what a mapping to Deskie staff usually keys on.
    pub email: String,
    /// Avatar URL, often null.
    pub avatar: Option<String>,
}

/// A Desk360 ticket type.
#[derive(Debug, Clone, PartialEq)]
pub struct Type {
    /// Type id.
    pub id: i64,
    /// Product id (0 = account-wide).
    pub product_id: i64,
    /// Title.
    pub title: String,
}

/// A Desk360 ticket reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Reason {
    /// Reason id.
    pub id: i64,
    /// Product id.
    pub product_id: i64,
    /// Name.
    pub name: String,
}

/// One generated ticket, kept in the exact JSON shapes Desk360 answers with, plus the few fields
/// the list filters need (so filtering does not dig through JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct TicketData {
    /// Product the ticket belongs to.
    pub product_id: i64,
    /// Desk360 ticket id (unique across the account).
    pub ticket_id: i64,
    /// The ticket-detail body (`GET /v1/products/:p/tickets/:t`), messages embedded.
    pub detail: Value,
    /// The list-object body (`GET /v1/products/:p/tickets`): `last_message`, no `messages`.
    pub list: Value,
    /// Naive `YYYY-MM-DD HH:MM:SS` creation time (UTC).
    pub created_at: String,
    /// Naive `YYYY-MM-DD HH:MM:SS` last update (the list's default order key).
    pub updated_at: String,
    /// Desk360 status (0 open, 1 resolved, 2 waiting).
    pub status: i64,
    /// Desk360 priority (0 low … 3 urgent).
    pub priority: i64,
    /// Assigned agent (0 = unassigned).
    pub agent_id: i64,
    /// Ticket type id.
    pub type_id: i64,
    /// Ticket reason id.
    pub reason_id: i64,
}

impl TicketData {
    /// The embedded messages of the detail body, in source order.
    pub fn messages(&self) -> &[Value] {
        self.detail
            .get("messages")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

/// The whole generated Desk360 account: the source of truth for tests.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Products, in id order.
    pub products: Vec<Product>,
    /// Agents (about 8; a test mapping usually names only some of them).
    pub agents: Vec<Agent>,
    /// Ticket types.
    pub types: Vec<Type>,
    /// Ticket reasons.
    pub reasons: Vec<Reason>,
    /// Every ticket, in generation (id) order.
    pub tickets: Vec<TicketData>,
    index: HashMap<(i64, i64), usize>,
    /// Per product: ticket indices sorted ascending by (updated_at, id).
    by_product: BTreeMap<i64, Vec<usize>>,
    /// Attachment URL path (from `/attachments/`) → declared size in bytes.
    attachment_sizes: HashMap<String, u64>,
    /// Attachment file name → its URL path (names are unique in the account: they carry the
    /// message id), so the Deskie emulator can recognise a generated file uploaded back to it.
    attachment_names: HashMap<String, String>,
    /// Scheme and host of attachment URLs (tickets created later use it too).
    attachment_base: String,
    /// The generator's seed: attachment bytes are drawn from it and the URL path.
    seed: u64,
    /// The account's "now" in epoch seconds: the latest time it has seen (generated or changed).
    /// Every change advances it, so a changed ticket is the most recently updated one.
    clock: i64,
    /// The id the next appended message gets: above every generated id, so ids stay unique and
    /// increasing within a ticket.
    next_message_id: i64,
}

impl Dataset {
    /// The ticket `(product, id)`, if it exists — the usual way tests find the source of truth.
    pub fn ticket(&self, product_id: i64, ticket_id: i64) -> Option<&TicketData> {
        self.index
            .get(&(product_id, ticket_id))
            .map(|&i| &self.tickets[i])
    }

    /// Tickets of one product in Desk360's ascending list order (updated_at, then id).
    pub fn product_tickets_asc(
        &self,
        product_id: i64,
    ) -> impl DoubleEndedIterator<Item = &TicketData> {
        self.by_product
            .get(&product_id)
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .map(|&i| &self.tickets[i])
    }

    /// Declared size of an attachment, found by the path of its URL (any host), so the Deskie
    /// emulator can apply the 25 MB / 50 MB limits to `attachment_urls`.
    pub fn attachment_size(&self, url: &str) -> Option<u64> {
        self.attachment_path(url).map(|(_, size)| size)
    }

    /// The path of an attachment URL (any host, query and fragment dropped) when the account has
    /// such a file, with its size.
    pub(crate) fn attachment_path<'a>(&self, url: &'a str) -> Option<(&'a str, u64)> {
        let at = url.find("/attachments/")?;
        let path = url[at..].split(['?', '#']).next().unwrap_or_default();
        self.attachment_sizes.get(path).map(|&size| (path, size))
    }

    /// The content of an attachment, in the 64 KiB chunks the emulator streams it in (the file
    /// is never whole in memory): deterministic pseudo-random bytes drawn from the seed and the
    /// URL's path, so a test can follow a file end to end. `None` for an unknown URL.
    pub fn attachment_chunks(&self, url: &str) -> Option<impl Iterator<Item = Vec<u8>> + use<>> {
        let (path, size) = self.attachment_path(url)?;
        Some(file_chunks(self.seed, path, size))
    }

    /// SHA-256 (lowercase hex) of an attachment's content as the emulator serves it, found by the
    /// URL's path like [`Dataset::attachment_size`]; computed on demand by streaming the chunks
    /// (about a tenth of a second for a 45 MB file). `None` for an unknown URL.
    pub fn attachment_sha256(&self, url: &str) -> Option<String> {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        for chunk in self.attachment_chunks(url)? {
            hasher.update(&chunk);
        }
        Some(
            hasher
                .finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        )
    }

    /// The URL path of the account's attachment named `name` when `bytes` are exactly its
    /// content (compared chunk by chunk, nothing hashed or kept): how the Deskie emulator keeps
    /// an uploaded copy of a generated file as a reference instead of its bytes, so that its
    /// memory stays flat on a large account (a migrated attachment is uploaded back unchanged).
    pub(crate) fn generated_file(&self, name: &str, bytes: &[u8]) -> Option<&str> {
        let path = self.attachment_names.get(name)?;
        let &size = self.attachment_sizes.get(path)?;
        if size != bytes.len() as u64 {
            return None;
        }
        let mut rest = bytes;
        for chunk in file_chunks(self.seed, path, size) {
            let (head, tail) = rest.split_at(chunk.len());
            if head != chunk.as_slice() {
                return None;
            }
            rest = tail;
        }
        Some(path)
    }

    /// Adds files of the given sizes to the first message of a ticket (in its `files` group, in
    /// the generator's shape `{url, name, type, size}`), e.g. files over Deskie's 25 MB a file and
    /// 50 MB a request. The ticket's `updated_at` does not move: this is how the account looked
    /// from the start. Returns `false` for an unknown ticket or one without messages.
    pub fn add_large_attachments(
        &mut self,
        product_id: i64,
        ticket_id: i64,
        sizes: &[u64],
    ) -> bool {
        let Some(&i) = self.index.get(&(product_id, ticket_id)) else {
            return false;
        };
        let Some(first) = self.tickets[i]
            .detail
            .get_mut("messages")
            .and_then(Value::as_array_mut)
            .and_then(|m| m.first_mut())
        else {
            return false;
        };
        let message_id = first["id"].as_i64().unwrap_or_default();
        let mut added = Vec::with_capacity(sizes.len());
        for (k, &size) in sizes.iter().enumerate() {
            let file = format!("large-{message_id}-{k}.bin");
            let path = format!("/attachments/{product_id}/{ticket_id}/{message_id}/{file}");
            added.push(json!({
                "url": format!("{}{path}", self.attachment_base),
                "name": file,
                "type": "file",
                "size": size,
            }));
            self.attachment_names.insert(file, path.clone());
            self.attachment_sizes.insert(path, size);
        }
        match first
            .get_mut("attachments")
            .and_then(|a| a.get_mut("files"))
            .and_then(Value::as_array_mut)
        {
            Some(files) => files.extend(added),
            None => first["attachments"]["files"] = Value::Array(added),
        }
        true
    }

    /// Total number of messages (notes included) across all tickets.
    pub fn message_count(&self) -> usize {
        self.tickets.iter().map(|t| t.messages().len()).sum()
    }

    /// Adds a message to the end of a ticket, as if it were written now: a customer reply
    /// (`agent_id == 0`), an agent reply (`agent_id` of an agent, `note == false`) or an internal
    /// note (`note == true`, Desk360 message type 6). The body is `body_html` followed by the
    /// message's `ref:p<product>t<ticket>m<index>` marker paragraph, so the Deskie emulator (and
    /// the `reject_*` faults) recognise it like a generated one. The ticket's `updated_at` becomes
    /// the new message's time, later than anything else in the account; its status is left alone
    /// (change it with [`Dataset::set_status`]). Replies also become the list's `last_message`.
    ///
    /// Returns the new Desk360 message id, or `None` when the ticket does not exist or a note has
    /// no agent (Desk360 notes are always an agent's).
    pub fn append_message(
        &mut self,
        product_id: i64,
        ticket_id: i64,
        agent_id: i64,
        note: bool,
        body_html: &str,
    ) -> Option<i64> {
        let i = *self.index.get(&(product_id, ticket_id))?;
        if note && agent_id == 0 {
            return None;
        }
        let ts = self.touch(i);
        let message_id = self.next_message_id;
        self.next_message_id += 1;
        let t = &mut self.tickets[i];
        let idx = t.messages().len();
        let html = format!("{body_html}<p>ref:p{product_id}t{ticket_id}m{idx}</p>");
        if !note {
            t.list["last_message"] = Value::String(html.chars().take(200).collect());
        }
        let message = json!({
            "id": message_id,
            "agent_id": agent_id,
            "message": html,
            "attachments": {"images": [], "videos": [], "files": [], "others": []},
            "type": if note { 6 } else { 0 },
            "created_at": ts,
            "updated_at": ts,
        });
        match t.detail.get_mut("messages").and_then(Value::as_array_mut) {
            Some(list) => list.push(message),
            None => t.detail["messages"] = Value::Array(vec![message]),
        }
        Some(message_id)
    }

    /// Changes a ticket's status (0 open, 1 resolved, 2 waiting) now: the detail, the list object
    /// and the filter field all follow, and `updated_at` moves like for a new message. Returns
    /// `false` when the ticket does not exist.
    pub fn set_status(&mut self, product_id: i64, ticket_id: i64, status: i64) -> bool {
        self.change_code(product_id, ticket_id, Code::Status, status)
    }

    /// Creates a new ticket in `product_id` as if a customer (or an agent) opened it now, the way
    /// a live account grows while a migration runs. It is shaped like a generated ticket (every
    /// field, 1–3 messages minutes apart, maybe attachments, `ref:` markers in every body so
    /// [`parse_refs`] recognises it), drawn from `seed`. Its id is the next free one: above every
    /// ticket id of the account, so ids stay unique account-wide as generated ones are; its
    /// `updated_at` is the newest of the account (the clock advances to its last message).
    ///
    /// Returns `(product_id, ticket_id)`, or `None` for an unknown product.
    pub fn create_ticket(&mut self, product_id: i64, seed: u64) -> Option<(i64, i64)> {
        if !self.products.iter().any(|p| p.id == product_id) {
            return None;
        }
        let ticket_id = self
            .tickets
            .iter()
            .map(|t| t.ticket_id)
            .max()
            .unwrap_or(999)
            + 1;
        let n = self.tickets.len();
        let live = Live {
            now: self.clock + 60,
            first_message_id: self.next_message_id,
        };
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut sizes = HashMap::new();
        let t = gen_ticket(
            &mut rng,
            n,
            product_id,
            ticket_id,
            &self.agents,
            &self.attachment_base,
            &mut sizes,
            Some(live),
        );
        self.next_message_id += t.messages().len() as i64;
        self.clock = naive_secs(&t.updated_at).unwrap_or(live.now).max(live.now);
        self.attachment_names.extend(names_of(sizes.keys()));
        self.attachment_sizes.extend(sizes);
        self.index.insert((product_id, ticket_id), n);
        self.tickets.push(t);
        // Newest update and highest id: it belongs at the end of the ascending order.
        self.by_product.entry(product_id).or_default().push(n);
        Some((product_id, ticket_id))
    }

    /// Appends a seeded message to a seeded ticket, as a live account sees: a customer's follow-up
    /// or an agent's reply (never a note), a phrase like the generated ones. Returns the ticket's
    /// key, or `None` when the account has no ticket.
    pub fn append_random_message(&mut self, seed: u64) -> Option<(i64, i64)> {
        if self.tickets.is_empty() {
            return None;
        }
        let mut rng = fastrand::Rng::with_seed(seed);
        let t = &self.tickets[rng.usize(..self.tickets.len())];
        let key = (t.product_id, t.ticket_id);
        let agent_id = if rng.bool() {
            0
        } else if t.agent_id != 0 {
            t.agent_id
        } else {
            self.agents[rng.usize(..self.agents.len())].id
        };
        let phrase = PHRASES[rng.usize(..PHRASES.len())];
        self.append_message(key.0, key.1, agent_id, false, &format!("<p>{phrase}</p>"))?;
        Some(key)
    }

    /// Changes the status of several tickets in ONE account second, like an agent's bulk action in
    /// the Desk360 panel: they all get the same `updated_at`, which is how the list meets ties
    /// (Desk360 times have one-second resolution). Unknown keys are skipped; returns how many
    /// tickets changed.
    pub fn bulk_set_status(&mut self, keys: &[(i64, i64)], status: i64) -> usize {
        let found: Vec<usize> = keys
            .iter()
            .filter_map(|k| self.index.get(k).copied())
            .collect();
        if found.is_empty() {
            return 0;
        }
        self.clock += 60;
        let ts = naive(self.clock);
        for &i in &found {
            self.set_code(i, Code::Status, status);
            self.stamp(i, &ts);
        }
        found.len()
    }

    /// Changes a ticket's priority (0 low … 3 urgent) now, like [`Dataset::set_status`].
    pub fn set_priority(&mut self, product_id: i64, ticket_id: i64, priority: i64) -> bool {
        self.change_code(product_id, ticket_id, Code::Priority, priority)
    }

    /// Changes a coded field of a ticket now ([`Dataset::set_status`], [`Dataset::set_priority`]);
    /// `false` when the ticket does not exist.
    fn change_code(&mut self, product_id: i64, ticket_id: i64, code: Code, value: i64) -> bool {
        let Some(&i) = self.index.get(&(product_id, ticket_id)) else {
            return false;
        };
        self.touch(i);
        self.set_code(i, code, value);
        true
    }

    /// Sets a coded field of ticket `i` in all three places it is kept: the typed field, the
    /// detail and the list object, which every reader of the dataset must see alike.
    fn set_code(&mut self, i: usize, code: Code, value: i64) {
        let t = &mut self.tickets[i];
        let (name, typed) = match code {
            Code::Status => ("status", &mut t.status),
            Code::Priority => ("priority", &mut t.priority),
        };
        *typed = value;
        t.detail[name] = json!(value);
        t.list[name] = json!(value);
    }

    /// Advances the account clock by a minute, stamps ticket `i`'s `updated_at` with it (detail,
    /// list and field) and moves the ticket to its new place in the product's list order.
    /// Returns the new naive timestamp.
    fn touch(&mut self, i: usize) -> String {
        self.clock += 60;
        let ts = naive(self.clock);
        self.stamp(i, &ts);
        ts
    }

    /// Sets ticket `i`'s `updated_at` (detail, list and field) and moves the ticket to its new
    /// place in the product's list order.
    fn stamp(&mut self, i: usize, ts: &str) {
        let t = &mut self.tickets[i];
        t.updated_at = ts.to_owned();
        t.detail["updated_at"] = Value::String(ts.to_owned());
        t.list["updated_at"] = Value::String(ts.to_owned());
        let product_id = t.product_id;
        let tickets = &self.tickets;
        if let Some(list) = self.by_product.get_mut(&product_id) {
            list.sort_by(|&a, &b| {
                (&tickets[a].updated_at, tickets[a].ticket_id)
                    .cmp(&(&tickets[b].updated_at, tickets[b].ticket_id))
            });
        }
    }
}

/// A ticket field Desk360 sends as a code, which a live change can set.
#[derive(Debug, Clone, Copy)]
enum Code {
    /// `status` (0 open, 1 resolved, 2 waiting).
    Status,
    /// `priority` (0 low … 3 urgent).
    Priority,
}

/// Size of the chunks attachment files are produced and streamed in.
pub(crate) const FILE_CHUNK: u64 = 64 * 1024;

/// A stable 64-bit hash of `(seed, salt, text)` (FNV-1a then a SplitMix64 finish): the same on
/// every platform and Rust version, unlike `std`'s hasher, so files and shares never change.
pub(crate) fn stable_hash(seed: u64, salt: u64, text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed
        .to_le_bytes()
        .iter()
        .chain(salt.to_le_bytes().iter())
        .chain(text.as_bytes())
    {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// File name → URL path for attachment paths (`/attachments/…/{name}`).
fn names_of<'a>(paths: impl Iterator<Item = &'a String>) -> HashMap<String, String> {
    paths
        .map(|p| {
            (
                p.rsplit('/').next().unwrap_or_default().to_owned(),
                p.clone(),
            )
        })
        .collect()
}

/// The chunks of a file of `size` bytes at `path`: each drawn from its own generator, so any
/// chunk can be produced without the ones before it.
pub(crate) fn file_chunks(
    seed: u64,
    path: &str,
    size: u64,
) -> impl Iterator<Item = Vec<u8>> + Send + 'static + use<> {
    let base = stable_hash(seed, 0xf11e, path);
    (0..size.div_ceil(FILE_CHUNK)).map(move |i| {
        let len = FILE_CHUNK.min(size - i * FILE_CHUNK) as usize;
        let mut chunk = vec![0u8; len];
        fastrand::Rng::with_seed(base ^ (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .fill(&mut chunk);
        chunk
    })
}

/// Generates the account deterministically: same `(seed, products, tickets)`, same output.
/// Attachment URLs use [`DEFAULT_ATTACHMENT_BASE`].
pub fn generate(seed: u64, products: usize, tickets: usize) -> Dataset {
    generate_with_base(seed, products, tickets, DEFAULT_ATTACHMENT_BASE)
}

const CHANNELS: [(&str, u32); 7] = [
    ("Email", 40),
    ("Application", 15),
    ("Api", 8),
    ("Phone", 12),
    ("Web", 15),
    ("WhatsApp", 5),
    ("Facebook", 5),
];

const FIRST_NAMES: [&str; 12] = [
    "John",
    "Ayşe",
    "Mehmet",
    "Zoë",
    "François",
    "Jürgen",
    "Sofía",
    "Łukasz",
    "Emily",
    "Kenji",
    "Olga",
    "Chidi",
];
const LAST_NAMES: [&str; 10] = [
    "Doe", "Yılmaz", "Müller", "O'Brien", "García", "Nowak", "Smith", "Tanaka", "Ivanova", "Okafor",
];

const PHRASES: [&str; 14] = [
    "Hello, I cannot log in to my account since yesterday.",
    "Merhaba, uygulama açılmıyor — lütfen yardım edin! 🙏",
    "The invoice shows the wrong amount &amp; the wrong VAT number.",
    "Thanks a lot, that fixed it 👍🏽",
    "Could you check order <b>#A-1042</b>? It never arrived 📦",
    "こんにちは、パスワードをリセットできません。",
    "مرحبا، لدي مشكلة في الدفع",
    "Ich habe eine Frage zur Rechnung (Größe: 3 × 4 m²).",
    "We have escalated this to our engineers 🚀, expect an update soon.",
    "Please try clearing the cache and restart the app.<br>Steps: 1) Settings 2) Storage",
    "Привет! Приложение вылетает при запуске 😡",
    "Can I get a refund? I was charged twice 💳💳",
    "Internal: customer is on the legacy plan, do not offer the discount.",
    "Emoji test: 😀😃😄😁 🇹🇷 👨‍👩‍👧‍👦 and a zero-width joiner.",
];

const AGENT_NAMES: [(i64, &str, &str); 8] = [
    (72, "Jane Doe", "jane@acme.example"),
    (74, "Richard Miller", "richard@acme.example"),
    (75, "Elif Şahin", "elif@acme.example"),
    (80, "Tom Becker", "tom@acme.example"),
    (81, "Ana Lima", "ana@acme.example"),
    (90, "Former Agent", "former@acme.example"),
    (91, "Night Shift", "night@acme.example"),
    (95, "Bot Integration", "bot@acme.example"),
];

/// Seconds of 2021-01-01T00:00:00Z: generated tickets are created over the three years after it.
const BASE_TIME: i64 = 1_609_459_200;

fn naive(secs: i64) -> String {
    let ts = Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH);
    TimeZone::UTC
        .to_datetime(ts)
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// Epoch seconds of a naive UTC `YYYY-MM-DD HH:MM:SS` time (the generator's own format).
fn naive_secs(s: &str) -> Option<i64> {
    let dt = jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", s).ok()?;
    Some(TimeZone::UTC.to_timestamp(dt).ok()?.as_second())
}

fn pick_weighted<'a>(rng: &mut fastrand::Rng, items: &[(&'a str, u32)]) -> &'a str {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut r = rng.u32(0..total);
    for (item, w) in items {
        if r < *w {
            return item;
        }
        r -= w;
    }
    items[0].0
}

/// Like [`generate`], with attachment URLs under `attachment_base` (e.g. the sandbox's own
/// Desk360 URL).
pub fn generate_with_base(
    seed: u64,
    products: usize,
    tickets: usize,
    attachment_base: &str,
) -> Dataset {
    let products: Vec<Product> = (0..products.max(1))
        .map(|i| {
            let id = 11 * (i as i64 + 1);
            Product {
                id,
                name: format!("YourApplication{}", i + 1),
                logo: (i % 3 == 2).then(|| {
                    format!(
                        "https://desk-360.s3.amazonaws.com/images/application/logo/{id:032x}.jpg"
                    )
                }),
            }
        })
        .collect();
    let agents: Vec<Agent> = AGENT_NAMES
        .iter()
        .enumerate()
        .map(|(i, (id, name, email))| Agent {
            id: *id,
            name: (*name).to_owned(),
            email: (*email).to_owned(),
            avatar: (i % 2 == 1)
                .then(|| format!("https://desk-360.s3.amazonaws.com/images/profile/{id:032x}.jpg")),
        })
        .collect();
    let types = vec![
        Type {
            id: 1,
            product_id: 0,
            title: "Subscription".into(),
        },
        Type {
            id: 2,
            product_id: 0,
            title: "Features".into(),
        },
        Type {
            id: 3,
            product_id: 0,
            title: "Report a problem".into(),
        },
    ];
    let reasons: Vec<Reason> = ["Billing", "Bug", "Question", "Feedback"]
        .iter()
        .enumerate()
        .map(|(i, name)| Reason {
            id: i as i64 + 1,
            product_id: products[i % products.len()].id,
            name: (*name).to_owned(),
        })
        .collect();

    // Every ticket has its own generator seeded from (seed, position), so tickets are independent:
    // the account is built on all cores and stays identical whatever the thread count.
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8)
        .min(tickets.max(1).div_ceil(1000));
    let chunk = tickets.div_ceil(threads.max(1)).max(1);
    let parts: Vec<(Vec<TicketData>, HashMap<String, u64>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..tickets)
            .step_by(chunk)
            .map(|start| {
                let (products, agents) = (&products, &agents);
                scope.spawn(move || {
                    let end = (start + chunk).min(tickets);
                    let mut sizes = HashMap::new();
                    let list = (start..end)
                        .map(|n| {
                            let mut rng = fastrand::Rng::with_seed(
                                seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                                    ^ (n as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03),
                            );
                            let product_id = products[rng.usize(..products.len())].id;
                            // Increasing, unique, with gaps (deleted tickets) like real ids.
                            let ticket_id = 1000 + 3 * n as i64 + rng.i64(0..3);
                            gen_ticket(
                                &mut rng,
                                n,
                                product_id,
                                ticket_id,
                                agents,
                                attachment_base,
                                &mut sizes,
                                None,
                            )
                        })
                        .collect();
                    (list, sizes)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut out = Vec::with_capacity(tickets);
    let mut attachment_sizes = HashMap::new();
    for (list, sizes) in parts {
        out.extend(list);
        attachment_sizes.extend(sizes);
    }

    let mut index = HashMap::with_capacity(out.len());
    let mut by_product: BTreeMap<i64, Vec<usize>> =
        products.iter().map(|p| (p.id, Vec::new())).collect();
    for (i, t) in out.iter().enumerate() {
        index.insert((t.product_id, t.ticket_id), i);
        by_product.entry(t.product_id).or_default().push(i);
    }
    for list in by_product.values_mut() {
        list.sort_by(|&a, &b| {
            (&out[a].updated_at, out[a].ticket_id).cmp(&(&out[b].updated_at, out[b].ticket_id))
        });
    }
    let clock = out
        .iter()
        .map(|t| t.updated_at.as_str())
        .max()
        .and_then(naive_secs)
        .unwrap_or(BASE_TIME);
    // Generated ids are 50 000 + 32 n + index (index < 32): the next free block starts here.
    let next_message_id = 50_000 + 32 * out.len() as i64;
    Dataset {
        products,
        agents,
        types,
        reasons,
        tickets: out,
        index,
        by_product,
        attachment_names: names_of(attachment_sizes.keys()),
        attachment_sizes,
        attachment_base: attachment_base.to_owned(),
        seed,
        clock,
        next_message_id,
    }
}

/// A ticket created while the account is live (not at generation): when, and where its message
/// ids start.
#[derive(Debug, Clone, Copy)]
struct Live {
    /// Epoch seconds of its creation (the first message).
    now: i64,
    /// Id of its first message; the others follow.
    first_message_id: i64,
}

#[allow(clippy::too_many_arguments)]
fn gen_ticket(
    rng: &mut fastrand::Rng,
    n: usize,
    product_id: i64,
    ticket_id: i64,
    agents: &[Agent],
    attachment_base: &str,
    attachment_sizes: &mut HashMap<String, u64>,
    live: Option<Live>,
) -> TicketData {
    let channel = pick_weighted(rng, &CHANNELS);
    let first = FIRST_NAMES[rng.usize(..FIRST_NAMES.len())];
    let last = LAST_NAMES[rng.usize(..LAST_NAMES.len())];
    let name = format!("{first} {last}");
    let no_email = rng.f64() < 0.03;
    let email = (!no_email).then(|| {
        format!(
            "{}.{}{}@example.{}",
            first
                .to_lowercase()
                .replace(|c: char| !c.is_ascii_alphanumeric(), ""),
            last.to_lowercase()
                .replace(|c: char| !c.is_ascii_alphanumeric(), ""),
            n,
            if n.is_multiple_of(4) { "org" } else { "com" }
        )
    });
    let phone = (channel == "Phone" || channel == "WhatsApp").then(|| {
        format!(
            "+90 5{:02} {:03} {:04}",
            rng.u32(30..60),
            rng.u32(0..1000),
            rng.u32(0..10000)
        )
    });
    let status = match rng.u32(0..100) {
        0..25 => 0,
        25..85 => 1,
        _ => 2,
    };
    let priority = rng.i64(0..4);
    let agent_id = if rng.f64() < 0.1 {
        0
    } else {
        agents[rng.usize(..agents.len())].id
    };
    let type_id = rng.i64(1..4);
    let reason_id = rng.i64(1..5);
    let agent_opened = rng.f64() < 0.1;
    let n_messages = match live {
        Some(_) => rng.usize(1..=3),
        None => match rng.u32(0..100) {
            0..8 => 1,
            8..85 => rng.usize(2..=6),
            85..97 => rng.usize(7..=12),
            _ => rng.usize(13..=30),
        },
    };

    // A live ticket is written now, its messages minutes apart; a generated one any time in the
    // three years after BASE_TIME, its messages up to days apart.
    let (created, max_gap) = match live {
        Some(l) => (l.now, 600),
        None => (BASE_TIME + rng.i64(0..3 * 365 * 86_400), 3 * 86_400),
    };
    let mut at = created;
    let mut messages = Vec::with_capacity(n_messages);
    let mut first_text = String::new();
    let mut last_reply = String::new();
    for idx in 0..n_messages {
        if idx > 0 && rng.f64() >= 0.05 {
            at += rng.i64(30..max_gap);
        }
        let (author, kind) = if idx == 0 {
            let a = if agent_opened {
                if agent_id != 0 {
                    agent_id
                } else {
                    agents[0].id
                }
            } else {
                0
            };
            (a, 0)
        } else if rng.f64() < 0.12 {
            (agents[rng.usize(..agents.len())].id, 6)
        } else if rng.bool() {
            (0, 0)
        } else if agent_id != 0 && rng.f64() < 0.8 {
            (agent_id, 0)
        } else {
            (agents[rng.usize(..agents.len())].id, 0)
        };
        let phrase = PHRASES[rng.usize(..PHRASES.len())];
        let marker = format!("ref:p{product_id}t{ticket_id}m{idx}");
        let mut html = format!("<p>{phrase}</p><p>{marker}</p>");
        // "A few" per account: ~3 in 300 tickets, ~50 in 100 000 (memory stays reasonable).
        if idx == 1 && ((n < 1000 && n % 97 == 41) || n % 2003 == 41) {
            // A ~100 KB message: long logs pasted into a ticket happen.
            let para = format!("<p>{phrase} Log line with ünïcödé and emoji 🧾 {marker}.</p>\n");
            while html.len() < 100_000 {
                html.push_str(&para);
            }
        }
        // Unique account-wide (at most 30 messages a ticket), increasing within a ticket.
        let message_id = match live {
            Some(l) => l.first_message_id + idx as i64,
            None => 50_000 + 32 * n as i64 + idx as i64,
        };
        let mut groups = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
        if rng.f64() < 0.08 {
            for k in 0..rng.usize(1..=3) {
                let (group, ext, ty) = match rng.u32(0..4) {
                    0 => (0, "png", "image"),
                    1 => (1, "mp4", "video"),
                    2 => (2, "pdf", "file"),
                    _ => (3, "zip", "other"),
                };
                let size: u64 = match rng.u32(0..100) {
                    0..90 => rng.u64(10_000..5_000_000),
                    90..97 => rng.u64(5_000_000..24_000_000),
                    _ => rng.u64(26_214_401..45_000_000),
                };
                let file = format!("file-{message_id}-{k}.{ext}");
                let path = format!("/attachments/{product_id}/{ticket_id}/{message_id}/{file}");
                attachment_sizes.insert(path.clone(), size);
                groups[group].push(json!({
                    "url": format!("{attachment_base}{path}"),
                    "name": file,
                    "type": ty,
                    "size": size,
                }));
            }
        }
        let [images, videos, files, others] = groups;
        let ts = naive(at);
        if idx == 0 {
            first_text = phrase.to_owned();
        }
        if kind == 0 {
            last_reply = html.chars().take(200).collect();
        }
        messages.push(json!({
            "id": message_id,
            "agent_id": author,
            "message": html,
            "attachments": {"images": images, "videos": videos, "files": files, "others": others},
            "type": kind,
            "created_at": ts,
            "updated_at": ts,
        }));
    }
    let updated = match live {
        Some(_) => at,
        None => at + rng.i64(0..3600),
    };
    let subject = if rng.f64() < 0.2 {
        Value::Null
    } else {
        Value::String(first_text.chars().take(60).collect())
    };
    let created_at = naive(created);
    let updated_at = naive(updated);
    let platform = match channel {
        "Application" => ["Android", "iOS"][rng.usize(..2)],
        "Email" => "Email",
        "Phone" => "Phone",
        "Web" => "Web",
        other => other,
    };
    let country = ["TR", "DE", "US", "JP", "BR", "PL"][rng.usize(..6)];
    let list = json!({
        "id": ticket_id,
        "reason_id": reason_id,
        "type_id": type_id,
        "agent_id": agent_id,
        "name": name,
        "email": email,
        "subject": subject,
        "last_message": last_reply,
        "channel": channel,
        "platform": platform,
        "status": status,
        "priority": priority,
        "created_at": created_at,
        "updated_at": updated_at,
    });
    // The detail says all the list entry says but the excerpt, and more.
    let mut detail = json!({
        "phone": phone,
        "settings": null,
        "country_code": country,
        "star_rating": null,
        "custom_fields": [],
        "messages": messages,
    });
    for (key, value) in list.as_object().into_iter().flatten() {
        if key != "last_message" {
            detail[key] = value.clone();
        }
    }
    TicketData {
        product_id,
        ticket_id,
        detail,
        list,
        created_at,
        updated_at,
        status,
        priority,
        agent_id,
        type_id,
        reason_id,
    }
}

/// Finds every `ref:p<product>t<ticket>m<index>` marker in a text: which source messages (and so
/// which tickets) a Deskie write carries.
pub fn parse_refs(text: &str) -> Vec<(i64, i64, usize)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(pos) = rest.find("ref:p") {
        rest = &rest[pos + 5..];
        if let Some(found) = parse_one_ref(rest)
            && !out.contains(&found)
        {
            out.push(found);
        }
    }
    out
}

fn parse_one_ref(s: &str) -> Option<(i64, i64, usize)> {
    fn digits(s: &str) -> Option<(&str, &str)> {
        let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        (end > 0).then(|| (&s[..end], &s[end..]))
    }
    let (p, s) = digits(s)?;
    let s = s.strip_prefix('t')?;
    let (t, s) = digits(s)?;
    let s = s.strip_prefix('m')?;
    let (m, _) = digits(s)?;
    Some((p.parse().ok()?, t.parse().ok()?, m.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_file_is_recognised_only_when_byte_for_byte_the_same() {
        let ds = generate(7, 2, 200);
        let (path, &size) = ds
            .attachment_sizes
            .iter()
            .min_by_key(|(_, size)| **size)
            .expect("the generator attaches files");
        let name = path.rsplit('/').next().expect("name");
        let bytes: Vec<u8> = file_chunks(ds.seed, path, size).flatten().collect();
        assert_eq!(ds.generated_file(name, &bytes), Some(path.as_str()));
        let mut changed = bytes.clone();
        let last = changed.len() - 1;
        changed[last] ^= 1;
        assert_eq!(ds.generated_file(name, &changed), None, "one byte differs");
        assert_eq!(ds.generated_file(name, &bytes[1..]), None, "shorter");
        assert_eq!(ds.generated_file("other.png", &bytes), None, "another name");
    }

    #[test]
    fn refs_are_found() {
        assert_eq!(
            parse_refs("<p>hi</p><p>ref:p11t1000m3</p> ref:p11t1000m3 ref:p2t5m0"),
            vec![(11, 1000, 3), (2, 5, 0)]
        );
        assert!(parse_refs("ref:pXt1m1 ref:p1t m").is_empty());
    }
}
