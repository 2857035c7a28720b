//! Forgiving field deserializers for Deskie's responses.
//!
//! Deskie's samples show ids both as numbers and as strings (`"user_id" : "18772600"`), `"-"` for
//! "not yet", and, being a PHP service, may send `[]` where a map is empty. One surprising field
//! must never fail a whole page (a reconciliation read that fails could stall a case forever), so
//! each helper reads any JSON value and keeps what makes sense, falling back to "absent".

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// An integer from a number, a numeric string or an integral float.
pub(crate) fn value_to_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => {
            let t = s.trim();
            t.parse::<i64>().ok().or_else(|| {
                t.parse::<f64>()
                    .ok()
                    .filter(|f| f.fract() == 0.0)
                    .map(|f| f as i64)
            })
        }
        _ => None,
    }
}

/// Text from a string, or the printed form of a number or boolean.
pub(crate) fn value_to_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
        _ => None,
    }
}

/// `Option<i64>` from anything; unreadable values become `None`.
pub(crate) fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(value_to_i64(&Value::deserialize(d)?))
}

/// A required id: a number or a numeric string, nothing else.
pub(crate) fn req_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let v = Value::deserialize(d)?;
    value_to_i64(&v).ok_or_else(|| serde::de::Error::custom(format!("expected an id, got {v}")))
}

/// `Option<String>` from a string, number or boolean; `null` and structures become `None`.
pub(crate) fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(value_to_string(&Value::deserialize(d)?))
}

/// `String` from a string, number or boolean; anything else becomes empty.
pub(crate) fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(value_to_string(&Value::deserialize(d)?).unwrap_or_default())
}

/// `Option<bool>` from `true`/`false`, `0`/`1`, or their string forms.
pub(crate) fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Bool(b) => Some(b),
        Value::Number(n) => n.as_i64().map(|n| n != 0),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" | "" => Some(false),
            _ => None,
        },
        _ => None,
    })
}

/// A list of ids from an array (or a PHP-style numbered map) of numbers or numeric strings;
/// unreadable entries are skipped, `null` is empty.
pub(crate) fn vec_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items.iter().filter_map(value_to_i64).collect(),
        Value::Object(map) => map.values().filter_map(value_to_i64).collect(),
        other => value_to_i64(&other).into_iter().collect(),
    })
}

/// A map of any JSON values; `[]` (PHP's empty map), `null` and scalars become empty.
pub(crate) fn map_any<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Value>, D::Error> {
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
pub(crate) fn vec_lenient<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
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
