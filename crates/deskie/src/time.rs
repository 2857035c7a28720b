//! Timestamps in the form Deskie speaks.
//!
//! Deskie returns RFC 2822 dates (`"Mon, 05 May 2014 00:15:17 +0300"`). We send `created_at` in
//! the same form, in UTC, so what we send and what we read back are comparable byte for byte after
//! normalisation, which the engine's reconciliation relies on (it matches a message it may have
//! written by `created_at` + content).

use jiff::Timestamp;

/// Formats a timestamp the way Deskie itself prints dates, in UTC with a zero-padded day:
/// `"Mon, 05 May 2014 00:15:17 +0000"`. Sub-second precision is dropped (Deskie keeps seconds).
pub fn format_timestamp(ts: Timestamp) -> String {
    // `Timestamp::strftime` formats in UTC. jiff's own RFC 2822 printer writes the day without
    // padding and `-0000` for a bare timestamp; the explicit pattern matches Deskie's samples.
    ts.strftime("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

/// Parses a date as Deskie returns it (RFC 2822, any offset) or as RFC 3339, so reconciliation
/// can compare instants rather than strings. Placeholders such as `"-"` (Deskie's "never") and
/// anything unreadable yield `None`.
pub fn parse_timestamp(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if s.is_empty() || s == "-" {
        return None;
    }
    if let Ok(ts) = jiff::fmt::rfc2822::DateTimeParser::new().parse_timestamp(s) {
        return Some(ts);
    }
    if let Ok(ts) = s.parse::<Timestamp>() {
        return Some(ts);
    }
    // Unix seconds, as some list parameters and changelog fields use.
    s.parse::<i64>()
        .ok()
        .and_then(|secs| Timestamp::from_second(secs).ok())
}

/// Serializes a request timestamp with [`format_timestamp`].
pub(crate) fn serialize_ts<S: serde::Serializer>(ts: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_timestamp(*ts))
}

/// Serializes an optional request timestamp with [`format_timestamp`]; pair it with
/// `skip_serializing_if = "Option::is_none"`.
pub(crate) fn serialize_opt_ts<S: serde::Serializer>(
    ts: &Option<Timestamp>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match ts {
        Some(ts) => s.serialize_str(&format_timestamp(*ts)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_deskie() {
        let ts: Timestamp = "2014-05-04T21:15:17Z".parse().unwrap();
        assert_eq!(format_timestamp(ts), "Sun, 04 May 2014 21:15:17 +0000");
        let ts: Timestamp = "2014-05-05T00:15:17.987Z".parse().unwrap();
        assert_eq!(format_timestamp(ts), "Mon, 05 May 2014 00:15:17 +0000");
    }

    #[test]
    fn parses_deskie_and_rfc3339() {
        let a = parse_timestamp("Mon, 05 May 2014 00:15:17 +0300").unwrap();
        let b = parse_timestamp("2014-05-04T21:15:17Z").unwrap();
        assert_eq!(a, b);
        assert_eq!(parse_timestamp(&format_timestamp(a)), Some(a));
        assert_eq!(parse_timestamp("Mon, 5 May 2014 00:15:17 +0300"), Some(a));
        assert_eq!(parse_timestamp("1399238117"), Some(a));
        assert_eq!(parse_timestamp("-"), None);
        assert_eq!(parse_timestamp(""), None);
        assert_eq!(parse_timestamp("yesterday"), None);
    }
}
