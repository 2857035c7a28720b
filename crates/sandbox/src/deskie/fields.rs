//! Reading a Deskie write's fields leniently (multipart sends every value as a string; JSON may
//! send numbers as strings too), the enumerations Deskie checks, and its timestamps: answered in
//! RFC 2822 in the account's offset, accepted in RFC 2822 or RFC 3339.

use jiff::Timestamp;
use jiff::tz::{Offset, TimeZone};
use serde_json::{Map, Value};

use super::reply::{Answer, bad};
use crate::config::Readings;

/// The account's time-zone offset, used for every timestamp Deskie answers with.
pub(super) const ACCOUNT_OFFSET_HOURS: i8 = 3;

/// A non-blank string field.
pub(super) fn get_str<'a>(o: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    o.get(k)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

/// An integer field (a number or a numeric string); blank or absent is `None`.
pub(super) fn get_int(o: &Map<String, Value>, k: &str) -> Result<Option<i64>, Answer> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| bad(k, "must be an integer")),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| bad(k, "must be an integer")),
        Some(_) => Err(bad(k, "must be an integer")),
    }
}

/// A boolean field (`true`, `1`, `"on"`, `"yes"`…); absent is `false`.
pub(super) fn get_bool(o: &Map<String, Value>, k: &str) -> bool {
    match o.get(k) {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        Some(Value::String(s)) => matches!(s.trim(), "true" | "1" | "on" | "yes"),
        _ => false,
    }
}

/// A value as text (`null` is empty).
pub(super) fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A list of integers sent as an array, a map (`x[0]=…`) or a single value.
pub(super) fn int_list(v: Option<&Value>) -> Vec<i64> {
    let one = |v: &Value| match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(one).collect(),
        Some(Value::Object(m)) => m.values().filter_map(one).collect(),
        Some(other) => one(other).into_iter().collect(),
        None => Vec::new(),
    }
}

/// A list of URLs sent as an array, a map or a single string.
pub(super) fn url_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::Object(m)) => m
            .values()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// The case statuses Deskie knows (page 001).
pub(super) const STATUSES: [&str; 3] = ["open", "waiting", "closed"];
/// The case priorities Deskie knows (page 001).
pub(super) const PRIORITIES: [&str; 4] = ["low", "normal", "high", "critical"];

/// A field that must be one of `allowed` when present (400 naming the choices otherwise).
pub(super) fn check_enum(
    o: &Map<String, Value>,
    k: &str,
    allowed: &[&str],
) -> Result<Option<String>, Answer> {
    match get_str(o, k) {
        None => Ok(None),
        Some(s) if allowed.contains(&s) => Ok(Some(s.to_owned())),
        Some(_) => Err(bad(k, format!("must be one of {}", allowed.join(", ")))),
    }
}

/// The `content` and `content_html` of a write (empty when absent).
pub(super) fn content_of(o: &Map<String, Value>) -> (String, String) {
    (
        o.get("content").map(value_text).unwrap_or_default(),
        o.get("content_html").map(value_text).unwrap_or_default(),
    )
}

/// A time as Deskie answers it.
pub(super) fn fmt_time(ts: Timestamp) -> String {
    let tz = TimeZone::fixed(Offset::constant(ACCOUNT_OFFSET_HOURS));
    // PHP's `date('r')` form, as the pages show it: zero-padded day (`Mon, 05 May 2014 …`).
    ts.to_zoned_datetime(tz)
        .strftime("%a, %d %b %Y %H:%M:%S %z")
        .to_string()
}

/// The `created_at` a write stores: the one sent (required on cases and responses by the recipe,
/// optional on notes: absent means now), or the server's now under `ignores_created_at`, which
/// neither requires nor reads the field (a reading `preflight` must detect).
pub(super) fn incoming_time(
    readings: &Readings,
    o: &Map<String, Value>,
    required: bool,
) -> Result<Timestamp, Answer> {
    if readings.ignores_created_at {
        return Ok(Timestamp::now());
    }
    match get_str(o, "created_at") {
        None if required => Err(bad("created_at", "is required")),
        None => Ok(Timestamp::now()),
        Some(raw) => parse_time(raw).ok_or_else(|| {
            bad(
                "created_at",
                format!(
                    "cannot parse {raw:?}: use RFC 2822 (Mon, 05 May 2014 00:15:17 +0300) or RFC 3339"
                ),
            )
        }),
    }
}

/// Parses an incoming `created_at`: RFC 2822 or RFC 3339 (with an offset); anything else fails.
pub(super) fn parse_time(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if let Ok(z) = jiff::fmt::rfc2822::parse(s) {
        return Some(z.timestamp());
    }
    s.parse::<Timestamp>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let t = parse_time("Mon, 05 May 2014 00:15:17 +0300").expect("rfc2822");
        assert_eq!(t.to_string(), "2014-05-04T21:15:17Z");
        assert_eq!(fmt_time(t), "Mon, 05 May 2014 00:15:17 +0300");
        assert!(parse_time("2014-05-04T21:15:17Z").is_some());
        assert!(parse_time("2014-05-04T21:15:17+02:00").is_some());
        assert!(parse_time("2014-05-04 21:15:17").is_none());
        assert!(parse_time("yesterday").is_none());
    }
}
