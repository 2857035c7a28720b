//! The plain domain model: a help-desk ticket as this program thinks of it.
//!
//! This is the middle of the three type layers. The `desk360` crate parses what the source sends
//! leniently (nulls, naive timestamps, attachment groups); the engine normalises that into these
//! types; the store persists them; the mapping turns them into the strict request types of the
//! `deskie` crate. Nothing here knows about HTTP, SQL or either vendor's field names, so every
//! other crate can depend on it without depending on each other.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

/// A message's or ticket's time exactly as the source gave it: either a naive wall-clock time,
/// to be read in `source.timezone` (Desk360 documents `YYYY-MM-DD HH:MM:SS`), or an instant
/// whose UTC offset the value carried (`2021-01-17 15:58:41+03:00`, `…+0300`, `…Z`), which no
/// configured zone may shift (issue #11.9: dropping it put messages 3–5 h off).
///
/// Stored and serialized as text: a naive time as `2021-01-17T15:58:41` (the form every store
/// written before this type holds, so old rows read back as naive), an exact one as RFC 3339 in
/// UTC (`2021-01-17T12:58:41Z`). It has no order of its own: comparing a naive time with an
/// exact one needs the zone, so sort by [`SourceTime::to_timestamp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceTime {
    /// Wall-clock time without an offset; its zone is `source.timezone`.
    Naive(DateTime),
    /// An instant: the value carried its own offset.
    Exact(Timestamp),
}

impl SourceTime {
    /// Reads a source time leniently: `YYYY-MM-DD HH:MM:SS` with `T` or a space, optional
    /// fractional seconds, a bare date (midnight), each optionally followed (with or without a
    /// space) by `Z`, `±HH:MM`, `±HHMM` or `±HH`. With an offset the result is
    /// [`SourceTime::Exact`]; without, [`SourceTime::Naive`]. `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        // An offset first: jiff would read a civil time out of an offset value and silently
        // drop the offset, the very bug this type exists for.
        if let Some(ts) = parse_exact(s) {
            return Some(SourceTime::Exact(ts));
        }
        if let Ok(dt) = s.parse::<DateTime>() {
            return Some(SourceTime::Naive(dt));
        }
        if let Ok(dt) = DateTime::strptime("%Y-%m-%d %H:%M:%S", s) {
            return Some(SourceTime::Naive(dt));
        }
        s.parse::<jiff::civil::Date>()
            .ok()
            .map(|d| SourceTime::Naive(d.to_datetime(jiff::civil::Time::midnight())))
    }

    /// The instant: an exact time as it is, a naive one read in `tz`. A naive time that falls
    /// in a daylight-saving gap or fold resolves the way clocks do ("compatible": a gap moves
    /// forward by its length, a fold takes the earlier instant), so the same input always
    /// gives the same instant and no ticket fails on a DST night. Only years outside jiff's
    /// range fail; they are read as UTC.
    pub fn to_timestamp(&self, tz: &TimeZone) -> Timestamp {
        match self {
            SourceTime::Exact(ts) => *ts,
            SourceTime::Naive(dt) => match tz.to_ambiguous_timestamp(*dt).compatible() {
                Ok(ts) => ts,
                Err(_) => TimeZone::UTC
                    .to_ambiguous_timestamp(*dt)
                    .compatible()
                    .unwrap_or(Timestamp::UNIX_EPOCH),
            },
        }
    }

    /// Whether the value carried its own offset.
    pub fn is_exact(&self) -> bool {
        matches!(self, SourceTime::Exact(_))
    }
}

/// `s` as an instant when it ends with an offset or `Z`; normalises `+0300`, `+03` and a space
/// before the offset to the RFC 3339 form first.
fn parse_exact(s: &str) -> Option<Timestamp> {
    let (body, offset) = split_offset(s)?;
    let body = body.trim_end();
    let candidate = match offset {
        "Z" | "z" => format!("{body}Z"),
        _ => {
            let sign = &offset[..1];
            let digits: String = offset[1..].chars().filter(|c| *c != ':').collect();
            let (hh, mm) = match digits.len() {
                2 => (&digits[..2], "00"),
                4 => (&digits[..2], &digits[2..]),
                _ => return None,
            };
            format!("{body}{sign}{hh}:{mm}")
        }
    };
    // jiff wants `T` between date and time; Desk360 writes a space.
    let candidate = match candidate.get(10..11) {
        Some(" ") => format!("{}T{}", &candidate[..10], &candidate[11..]),
        _ => candidate,
    };
    candidate.parse::<Timestamp>().ok()
}

/// Splits a trailing `Z` or `±HH[:MM]` offset off a date-time (never the `-` of the date).
fn split_offset(s: &str) -> Option<(&str, &str)> {
    if s.len() <= 10 {
        return None;
    }
    if let Some(body) = s.strip_suffix(['Z', 'z']) {
        return Some((body, &s[body.len()..]));
    }
    // Not a char boundary: not a date followed by a time (found by the property tests).
    let time_part = s.get(10..)?;
    let at = time_part.rfind(['+', '-'])? + 10;
    let offset = &s[at..];
    let valid = offset.len() >= 3 && offset[1..].chars().all(|c| c.is_ascii_digit() || c == ':');
    valid.then(|| (&s[..at], offset))
}

impl fmt::Display for SourceTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceTime::Naive(dt) => write!(f, "{dt}"),
            SourceTime::Exact(ts) => write!(f, "{ts}"),
        }
    }
}

/// The error of [`SourceTime::from_str`]: the text that is not a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadSourceTime(pub String);

impl fmt::Display for BadSourceTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a date-time: {:?}", self.0)
    }
}

impl std::error::Error for BadSourceTime {}

impl FromStr for SourceTime {
    type Err = BadSourceTime;

    /// [`SourceTime::parse`], for the store's text columns and serde.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SourceTime::parse(s).ok_or_else(|| BadSourceTime(s.to_owned()))
    }
}

impl From<DateTime> for SourceTime {
    fn from(dt: DateTime) -> Self {
        SourceTime::Naive(dt)
    }
}

impl From<Timestamp> for SourceTime {
    fn from(ts: Timestamp) -> Self {
        SourceTime::Exact(ts)
    }
}

impl Serialize for SourceTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SourceTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Identifies one Desk360 ticket. Desk360 scopes tickets by product, so the pair is the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TicketKey {
    /// The Desk360 product the ticket belongs to.
    pub product_id: i64,
    /// The Desk360 ticket id.
    pub ticket_id: i64,
}

impl TicketKey {
    /// Builds a key from its two parts.
    pub fn new(product_id: i64, ticket_id: i64) -> Self {
        Self {
            product_id,
            ticket_id,
        }
    }

    /// The value written to Deskie's `source_id_field` custom field, so a case can be found again
    /// when a create's response was lost: `desk360:<product>:<ticket>;`. The `;` terminator
    /// makes it a substring of no other key (`desk360:11:1` is inside `desk360:11:10`, but
    /// `desk360:11:1;` is not inside `desk360:11:10;`), so one plain search finds exactly it
    /// whether Deskie's filter matches exactly, by substring, or by its `^…^` syntax.
    pub fn source_id(&self) -> String {
        format!("desk360:{}:{};", self.product_id, self.ticket_id)
    }

    /// The key as versions before the terminator wrote it (`desk360:<product>:<ticket>`): a
    /// create reconciled after an upgrade may have been sent with it.
    pub fn legacy_source_id(&self) -> String {
        format!("desk360:{}:{}", self.product_id, self.ticket_id)
    }
}

impl fmt::Display for TicketKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.product_id, self.ticket_id)
    }
}

/// Who wrote a message. Desk360 marks customer messages with `agent_id` 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "by", content = "agent_id", rename_all = "snake_case")]
pub enum Author {
    /// The customer who owns the ticket.
    Customer,
    /// A Desk360 agent, by Desk360 agent id.
    Agent(i64),
}

impl Author {
    /// Reads Desk360's convention: `0` or absent means the customer.
    pub fn from_desk360_agent_id(agent_id: Option<i64>) -> Self {
        match agent_id {
            Some(id) if id != 0 => Author::Agent(id),
            _ => Author::Customer,
        }
    }
}

/// Whether a message is part of the conversation or an internal note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// A reply visible to the customer (Desk360 `type` other than 6).
    Reply,
    /// An internal note, visible to agents only (Desk360 `type` 6).
    Note,
}

impl MessageKind {
    /// Desk360 message `type` 0 is a reply, 6 a note (the two page 004 shows). Any other type
    /// might be internal, so it is a note: nothing is made public by a guess (issue #11.10).
    pub fn from_desk360_type(kind: i64) -> Self {
        if kind == 0 {
            MessageKind::Reply
        } else {
            MessageKind::Note
        }
    }
}

/// Desk360 groups attachments as images, videos, files and others; the group is kept for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentKind {
    /// From the `images` group.
    Image,
    /// From the `videos` group.
    Video,
    /// From the `files` group.
    File,
    /// From the `others` group.
    Other,
}

impl AttachmentKind {
    /// The lowercase name used in the store and reports.
    pub fn as_str(&self) -> &'static str {
        match self {
            AttachmentKind::Image => "image",
            AttachmentKind::Video => "video",
            AttachmentKind::File => "file",
            AttachmentKind::Other => "other",
        }
    }

    /// Parses [`AttachmentKind::as_str`] back; unknown names are `Other`.
    pub fn parse(s: &str) -> Self {
        match s {
            "image" => AttachmentKind::Image,
            "video" => AttachmentKind::Video,
            "file" => AttachmentKind::File,
            _ => AttachmentKind::Other,
        }
    }
}

/// A file attached to a message. Deskie fetches it from `url` (`attachment_urls`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Where the file can be downloaded.
    pub url: String,
    /// File name as Desk360 shows it.
    pub name: String,
    /// Desk360's attachment group.
    pub kind: AttachmentKind,
    /// Size in bytes when the source says it; needed to respect Deskie's 25 MB / 50 MB limits.
    pub size: Option<u64>,
}

/// One message of a ticket, in the order Desk360 lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Desk360 message id; breaks ties between equal timestamps.
    pub id: i64,
    /// Who wrote it.
    pub author: Author,
    /// Reply or internal note.
    pub kind: MessageKind,
    /// HTML body as Desk360 stores it (may be empty).
    pub body: String,
    /// Desk360's time; a naive one is converted with `source.timezone` only when mapping.
    pub created_at: SourceTime,
    /// Files attached to it.
    pub attachments: Vec<Attachment>,
}

/// A Desk360 ticket with everything needed to recreate it in Deskie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// Product + ticket id.
    pub key: TicketKey,
    /// Subject; Desk360 often leaves it null, the mapping then derives one.
    pub subject: Option<String>,
    /// Customer's display name.
    pub customer_name: Option<String>,
    /// Customer's email, required for the Email channel.
    pub customer_email: Option<String>,
    /// Customer's phone when the source carries one, required for the Calls channel.
    pub customer_phone: Option<String>,
    /// Desk360 channel name (e.g. "Email", "Application"); routes the ticket to a Deskie channel.
    pub channel: Option<String>,
    /// Desk360 platform (e.g. "Android"); informational.
    pub platform: Option<String>,
    /// Desk360 status code (0 open, 1 resolved, 2 waiting).
    pub status: Option<i64>,
    /// Desk360 priority code (0 low, 1 medium, 2 high, 3 urgent).
    pub priority: Option<i64>,
    /// Assigned Desk360 agent, if any.
    pub agent_id: Option<i64>,
    /// Desk360 ticket type, if any.
    pub type_id: Option<i64>,
    /// Desk360 ticket reason, if any.
    pub reason_id: Option<i64>,
    /// When the ticket was opened, as Desk360 gave it.
    pub created_at: SourceTime,
    /// Desk360's `updated_at` exactly as sent; a ticket whose value is unchanged is not re-fetched.
    pub updated_at: String,
    /// Messages and notes sorted by (instant, id): the order they are written to Deskie.
    pub messages: Vec<Message>,
}

impl Ticket {
    /// Sorts messages into the order they must be written: by instant (naive times read in
    /// `tz`, the source's zone), equal instants by Desk360 id. The zone matters only when a
    /// ticket mixes naive and offset-carrying times.
    pub fn sort_messages(&mut self, tz: &TimeZone) {
        self.messages
            .sort_by_cached_key(|m| (m.created_at.to_timestamp(tz), m.id));
    }

    /// Replies (not notes), in write order.
    pub fn replies(&self) -> impl Iterator<Item = &Message> {
        self.messages
            .iter()
            .filter(|m| m.kind == MessageKind::Reply)
    }

    /// Notes, in write order.
    pub fn notes(&self) -> impl Iterator<Item = &Message> {
        self.messages.iter().filter(|m| m.kind == MessageKind::Note)
    }
}

/// A Desk360 agent, used to report mapping gaps by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    /// Desk360 agent id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Login email, when known.
    pub email: Option<String>,
}

/// A Desk360 ticket type or reason: an id and a title, optionally scoped to a product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    /// Desk360 id.
    pub id: i64,
    /// Product it belongs to (0 or absent: all products).
    pub product_id: Option<i64>,
    /// Title shown to agents.
    pub title: String,
}

/// A Desk360 product: the unit tickets are listed by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// Desk360 product id.
    pub id: i64,
    /// Display name.
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_id_is_stable() {
        assert_eq!(TicketKey::new(3, 42).source_id(), "desk360:3:42;");
        assert_eq!(TicketKey::new(3, 42).legacy_source_id(), "desk360:3:42");
    }

    #[test]
    fn agent_zero_is_customer() {
        assert_eq!(Author::from_desk360_agent_id(Some(0)), Author::Customer);
        assert_eq!(Author::from_desk360_agent_id(None), Author::Customer);
        assert_eq!(Author::from_desk360_agent_id(Some(7)), Author::Agent(7));
    }

    #[test]
    fn only_type_0_is_a_public_reply() {
        assert_eq!(MessageKind::from_desk360_type(0), MessageKind::Reply);
        assert_eq!(MessageKind::from_desk360_type(6), MessageKind::Note);
        assert_eq!(MessageKind::from_desk360_type(3), MessageKind::Note);
    }

    #[test]
    fn messages_sort_by_time_then_id() {
        let at = |s: &str| s.parse::<SourceTime>().unwrap();
        let msg = |id, t: &str| Message {
            id,
            author: Author::Customer,
            kind: MessageKind::Reply,
            body: String::new(),
            created_at: at(t),
            attachments: vec![],
        };
        let mut t = Ticket {
            key: TicketKey::new(1, 1),
            subject: None,
            customer_name: None,
            customer_email: None,
            customer_phone: None,
            channel: None,
            platform: None,
            status: None,
            priority: None,
            agent_id: None,
            type_id: None,
            reason_id: None,
            created_at: at("2020-01-01T00:00:00"),
            updated_at: String::new(),
            messages: vec![
                msg(3, "2020-01-01T00:00:05"),
                msg(2, "2020-01-01T00:00:01"),
                msg(1, "2020-01-01T00:00:01"),
            ],
        };
        t.sort_messages(&TimeZone::UTC);
        let ids: Vec<_> = t.messages.iter().map(|m| m.id).collect();
        assert_eq!(ids, vec![1, 2, 3]);

        // Mixed kinds sort by instant in the source zone: 10:30 naive in Istanbul (UTC+3) is
        // 07:30Z, before 08:00Z, though its wall clock reads later.
        t.messages = vec![
            msg(4, "2020-01-01 10:30:00"),
            msg(5, "2020-01-01 11:00:00+03:00"),
            msg(6, "2020-01-01T08:00:00Z"),
        ];
        let istanbul = TimeZone::get("Europe/Istanbul").unwrap();
        t.sort_messages(&istanbul);
        let ids: Vec<_> = t.messages.iter().map(|m| m.id).collect();
        assert_eq!(ids, vec![4, 5, 6]);
        t.sort_messages(&TimeZone::UTC);
        let ids: Vec<_> = t.messages.iter().map(|m| m.id).collect();
        assert_eq!(ids, vec![5, 6, 4]);
    }

    #[test]
    fn explicit_offsets_are_honoured_in_every_spelling() {
        let want: Timestamp = "2021-01-17T12:58:41Z".parse().unwrap();
        for s in [
            "2021-01-17 15:58:41+03:00",
            "2021-01-17 15:58:41+0300",
            "2021-01-17 15:58:41+03",
            "2021-01-17T15:58:41+03:00",
            "2021-01-17 15:58:41 +03:00",
            "2021-01-17 12:58:41Z",
            "2021-01-17T12:58:41Z",
            "2021-01-17 07:58:41-05:00",
            " 2021-01-17T07:58:41-0500 ",
        ] {
            assert_eq!(SourceTime::parse(s), Some(SourceTime::Exact(want)), "{s:?}");
        }
        let ist = TimeZone::get("Europe/Istanbul").unwrap();
        let exact = SourceTime::parse("2021-01-17 15:58:41+03:00").unwrap();
        assert_eq!(exact.to_timestamp(&ist), want);
        assert_eq!(exact.to_timestamp(&TimeZone::UTC), want);
    }

    #[test]
    fn naive_values_stay_naive() {
        let want: DateTime = "2020-04-02T11:19:26".parse().unwrap();
        for s in ["2020-04-02 11:19:26", "2020-04-02T11:19:26"] {
            assert_eq!(SourceTime::parse(s), Some(SourceTime::Naive(want)), "{s:?}");
        }
        assert_eq!(
            SourceTime::parse("2020-04-02"),
            Some(SourceTime::Naive("2020-04-02T00:00:00".parse().unwrap()))
        );
        assert!(matches!(
            SourceTime::parse("2020-04-02 11:19:26.5"),
            Some(SourceTime::Naive(_))
        ));
        assert_eq!(SourceTime::parse("yesterday"), None);
        assert_eq!(SourceTime::parse(""), None);
        assert_eq!(SourceTime::parse("2020-04-02 11:19:26+3:00x"), None);
        let ist = TimeZone::get("Europe/Istanbul").unwrap();
        assert_eq!(
            SourceTime::Naive(want).to_timestamp(&ist),
            "2020-04-02T08:19:26Z".parse::<Timestamp>().unwrap()
        );
    }

    #[test]
    fn the_stored_forms_round_trip_and_old_rows_read_as_naive() {
        // What a store written before this type holds (`DateTime`'s Display and serde form).
        let old = "2024-03-01T10:00:00";
        let t: SourceTime = old.parse().unwrap();
        assert_eq!(t, SourceTime::Naive(old.parse().unwrap()));
        assert_eq!(t.to_string(), old);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, format!("\"{old}\""));
        let old_json = serde_json::to_string(&old.parse::<DateTime>().unwrap()).unwrap();
        assert_eq!(serde_json::from_str::<SourceTime>(&old_json).unwrap(), t);

        let exact = SourceTime::parse("2021-01-17 15:58:41.25+03:00").unwrap();
        assert_eq!(exact.to_string(), "2021-01-17T12:58:41.25Z");
        assert_eq!(exact.to_string().parse::<SourceTime>().unwrap(), exact);
        let json = serde_json::to_string(&exact).unwrap();
        assert_eq!(serde_json::from_str::<SourceTime>(&json).unwrap(), exact);
        assert!(serde_json::from_str::<SourceTime>("\"soon\"").is_err());
    }
}

#[cfg(test)]
mod properties {
    //! Timestamp conversion: deterministic in every zone, offsets independent of the zone.

    use super::*;
    use jiff::civil::date;
    use proptest::prelude::*;

    fn zones() -> Vec<String> {
        let mut names: Vec<String> = jiff::tz::db()
            .available()
            .map(|n| n.as_str().to_owned())
            .collect();
        names.sort();
        names
    }

    fn civil() -> impl Strategy<Value = DateTime> {
        (1970i16..2100, 1i8..=12, 1i8..=28, 0i8..24, 0i8..60, 0i8..60)
            .prop_map(|(y, mo, d, h, mi, s)| date(y, mo, d).at(h, mi, s, 0))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn naive_times_resolve_deterministically_in_any_zone(dt in civil(), pick in any::<prop::sample::Index>()) {
            let names = zones();
            let name = &names[pick.index(names.len())];
            let tz = TimeZone::get(name).unwrap();
            let t = SourceTime::Naive(dt);
            let ts = t.to_timestamp(&tz);
            prop_assert_eq!(ts, t.to_timestamp(&tz), "deterministic");
            let back = tz.to_datetime(ts);
            let amb = tz.to_ambiguous_timestamp(dt);
            if amb.compatible().is_ok() {
                match amb.offset() {
                    jiff::tz::AmbiguousOffset::Gap { .. } => {
                        // A time the clocks skipped: moved forward by the gap, never back.
                        prop_assert!(back > dt, "{name}: gap {dt} -> {back}");
                    }
                    jiff::tz::AmbiguousOffset::Fold { .. } => {
                        // A time the clocks showed twice: the earlier instant.
                        prop_assert_eq!(back, dt, "{}", name);
                        prop_assert!(ts < amb.later().unwrap(), "{name}: fold takes the earlier");
                    }
                    jiff::tz::AmbiguousOffset::Unambiguous { .. } => {
                        prop_assert_eq!(back, dt, "{}", name);
                    }
                }
            }
            // Stored as text and read back, it is the same naive time.
            prop_assert_eq!(t.to_string().parse::<SourceTime>().unwrap(), t);
        }

        #[test]
        fn explicit_offsets_give_one_instant_whatever_the_zone(
            dt in civil(),
            offset_minutes in (-12 * 60i32..=14 * 60).prop_map(|m| m - m % 15),
            spelling in 0usize..4,
            space in any::<bool>(),
            pick in any::<prop::sample::Index>(),
        ) {
            let sign = if offset_minutes < 0 { '-' } else { '+' };
            let (hh, mm) = (offset_minutes.abs() / 60, offset_minutes.abs() % 60);
            let offset = match spelling {
                0 => format!("{sign}{hh:02}:{mm:02}"),
                1 => format!("{sign}{hh:02}{mm:02}"),
                2 if mm == 0 => format!("{sign}{hh:02}"),
                _ if offset_minutes == 0 => "Z".to_owned(),
                _ => format!("{sign}{hh:02}:{mm:02}"),
            };
            let text = format!(
                "{}{}{offset}",
                dt.strftime("%Y-%m-%d %H:%M:%S"),
                if space { " " } else { "" }
            );
            let parsed = SourceTime::parse(&text);
            prop_assert!(matches!(parsed, Some(SourceTime::Exact(_))), "{text} -> {parsed:?}");
            let parsed = parsed.unwrap();
            let want = TimeZone::fixed(jiff::tz::Offset::from_seconds(offset_minutes * 60).unwrap())
                .to_timestamp(dt)
                .unwrap();
            let names = zones();
            let tz = TimeZone::get(&names[pick.index(names.len())]).unwrap();
            prop_assert_eq!(parsed.to_timestamp(&tz), want, "{}", text);
            prop_assert_eq!(parsed.to_timestamp(&TimeZone::UTC), want);
            prop_assert_eq!(parsed.to_string().parse::<SourceTime>().unwrap(), parsed);
        }

        #[test]
        fn any_text_parses_or_not_without_panicking(s in ".{0,40}") {
            let _ = SourceTime::parse(&s);
        }
    }
}
