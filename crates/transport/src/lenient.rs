//! Forgiving readers for fields a vendor sends in more than one shape.
//!
//! Both vendors are PHP services whose samples show ids as numbers and as strings
//! (`"user_id" : "18772600"`), `null` where a value is documented, `"-"` for "not yet", and `[]`
//! where a map or an object is empty. One surprising field must never fail a whole page (a
//! reconciliation read that fails could stall a case forever), so each reader takes any JSON
//! value and keeps what makes sense, falling back to "absent".
//!
//! The value readers ([`int`], [`text`], …) work on a `serde_json::Value`; the `deserialize_with`
//! functions below wrap them for `#[derive(Deserialize)]` fields. Absent fields need
//! `#[serde(default)]` next to them.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Largest float read as an integer: beyond it an `f64` no longer holds every integer.
const MAX_EXACT_FLOAT: f64 = 9.0e15;

/// An integer from a number (integral floats too) or a numeric string (trimmed).
pub fn int(v: &Value) -> Option<i64> {
    let integral = |f: f64| (f.fract() == 0.0 && f.abs() < MAX_EXACT_FLOAT).then_some(f as i64);
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().and_then(integral)),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().and_then(integral))
        }
        _ => None,
    }
}

/// Text from a string, or the printed form of a number or boolean; `null` and structures are
/// `None`.
pub fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
        _ => None,
    }
}

/// Text from anything but `null`: a string as it is, anything else as its JSON text, so
/// nothing sent is lost.
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// A boolean from `true`/`false`, a number (0 is false), or `"true"`/`"1"`/`"yes"` and
/// `"false"`/`"0"`/`"no"` in any case.
pub fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_i64().map(|i| i != 0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// `Option<i64>` from anything; unreadable values become `None`.
pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(int(&Value::deserialize(d)?))
}

/// A non-negative integer (a size); negative or unreadable values become `None`.
pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(int(&Value::deserialize(d)?).and_then(|i| u64::try_from(i).ok()))
}

/// A required id: a number or a numeric string, nothing else.
pub fn req_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let v = Value::deserialize(d)?;
    int(&v).ok_or_else(|| serde::de::Error::custom(format!("expected an id, got {v}")))
}

/// `Option<String>` from a string, number or boolean ([`scalar_text`]).
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(scalar_text(&Value::deserialize(d)?))
}

/// `Option<String>` from anything but `null` ([`text`]): structures kept as JSON text.
pub fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(text(&Value::deserialize(d)?))
}

/// `String` from a string, number or boolean; anything else becomes empty.
pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(scalar_text(&Value::deserialize(d)?).unwrap_or_default())
}

/// `Option<bool>` ([`boolean`]).
pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(boolean(&Value::deserialize(d)?))
}

/// Any JSON but `null`, kept as it is.
pub fn opt_json<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Ok(Some(Value::deserialize(d)?).filter(|v| !v.is_null()))
}

/// A list of ids from an array (or a PHP-style numbered map) of numbers or numeric strings;
/// unreadable entries are skipped, `null` is empty.
pub fn vec_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items.iter().filter_map(int).collect(),
        Value::Object(map) => map.values().filter_map(int).collect(),
        other => int(&other).into_iter().collect(),
    })
}

/// A map of any JSON values; `[]` (PHP's empty map), `null` and scalars become empty.
pub fn map_any<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Value>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Object(map) => map.into_iter().collect(),
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => BTreeMap::new(),
    })
}

/// A list of `T` from an array or a numbered map; entries that do not parse are skipped (an
/// attachment we cannot read must not hide the message it belongs to), `null` is empty.
pub fn vec_lenient<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let items: Vec<Value> = match Value::deserialize(d)? {
        Value::Array(items) => items,
        Value::Object(map) => map.into_iter().map(|(_, v)| v).collect(),
        _ => Vec::new(),
    };
    Ok(items
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect())
}

/// The kind of a JSON value, for messages such as "messages is a string instead of an array".
pub fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars() {
        let v = json!({"a": "12", "b": 3.0, "c": "x", "d": null, "e": 7.5, "f": " 4 ", "g": 1e17});
        let get = |k: &str| v.get(k).and_then(int);
        assert_eq!(get("a"), Some(12));
        assert_eq!(get("b"), Some(3));
        assert_eq!(get("c"), None);
        assert_eq!(get("d"), None);
        assert_eq!(get("e"), None);
        assert_eq!(get("f"), Some(4));
        assert_eq!(get("g"), None);
        assert_eq!(text(&json!(3.0)).as_deref(), Some("3.0"));
        assert_eq!(text(&json!({"k": 1})).as_deref(), Some(r#"{"k":1}"#));
        assert_eq!(text(&Value::Null), None);
        assert_eq!(scalar_text(&json!({"k": 1})), None);
        assert_eq!(scalar_text(&json!(true)).as_deref(), Some("true"));
        assert_eq!(boolean(&json!("1")), Some(true));
        assert_eq!(boolean(&json!(" No ")), Some(false));
        assert_eq!(boolean(&json!(0)), Some(false));
        assert_eq!(boolean(&json!("maybe")), None);
    }

    #[derive(Deserialize)]
    struct Sample {
        #[serde(deserialize_with = "req_i64")]
        id: i64,
        #[serde(default, deserialize_with = "opt_u64")]
        size: Option<u64>,
        #[serde(default, deserialize_with = "vec_i64")]
        labels: Vec<i64>,
        #[serde(default, deserialize_with = "map_any")]
        fields: BTreeMap<String, Value>,
        #[serde(default, deserialize_with = "opt_json")]
        extra: Option<Value>,
    }

    #[test]
    fn field_readers() {
        let s: Sample = serde_json::from_value(json!({
            "id": "7", "size": -3, "labels": {"0": "4", "1": "x", "2": 5}, "fields": [], "extra": null
        }))
        .unwrap();
        assert_eq!((s.id, s.size, s.labels), (7, None, vec![4, 5]));
        assert!(s.fields.is_empty() && s.extra.is_none());
        let s: Sample = serde_json::from_value(json!({"id": 1, "size": "12"})).unwrap();
        assert_eq!(s.size, Some(12));
        assert!(serde_json::from_value::<Sample>(json!({"id": "abc"})).is_err());
    }
}
