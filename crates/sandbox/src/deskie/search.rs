//! Searching the Deskie account: the case list's filters (custom fields, status, user, creation
//! time) under the readings of pages 001/002's open points, its sort orders, and Deskie's `^…^`
//! search rules (also used by the user list's email filter).

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::tz::{Offset, TimeZone};

use super::account::{Account, Case};
use super::fields::ACCOUNT_OFFSET_HOURS;
use super::fields::{parse_time, value_text};
use super::reply::{Answer, bad};
use super::shapes::{case_json, numbered, paging};
use crate::config::{Readings, SearchReading, TimeFilterReading};

/// The sort orders of the case list; the first is the default.
const SORTS: [&str; 4] = [
    "updated_at_desc",
    "created_at_asc",
    "created_at_desc",
    "updated_at_asc",
];

/// The case list's filters, read from the query.
struct CaseQuery {
    page: Option<usize>,
    limit: Option<usize>,
    custom_fields: BTreeMap<String, Vec<String>>,
    statuses: Vec<String>,
    user_ids: Vec<i64>,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    sort: String,
}

impl CaseQuery {
    /// Reads the filters, or the 400 naming the first bad one.
    fn parse(readings: &Readings, pairs: &[(String, String)]) -> Result<Self, Answer> {
        let (page, limit) = paging(pairs)?;
        let mut q = CaseQuery {
            page,
            limit,
            custom_fields: BTreeMap::new(),
            statuses: Vec::new(),
            user_ids: Vec::new(),
            from: None,
            to: None,
            sort: SORTS[0].to_owned(),
        };
        for (k, v) in pairs {
            if let Some(rest) = k.strip_prefix("custom_fields[") {
                let field = rest.trim_end_matches("[]").trim_end_matches(']').to_owned();
                q.custom_fields.entry(field).or_default().push(v.clone());
                continue;
            }
            match k.as_str() {
                "status" | "status[]" => q.statuses.extend(v.split(',').map(str::to_owned)),
                "user_id" | "user_id[]" => q
                    .user_ids
                    .extend(v.split(',').filter_map(|x| x.trim().parse::<i64>().ok())),
                "from_time" => q.from = time_filter(readings.time_filter, "from_time", v)?,
                "to_time" => q.to = time_filter(readings.time_filter, "to_time", v)?,
                "sort" if SORTS.contains(&v.as_str()) => q.sort = v.clone(),
                "sort" => {
                    return Err(bad(
                        "sort",
                        "must be one of created_at_asc, created_at_desc, updated_at_desc, updated_at_asc",
                    ));
                }
                _ => {}
            }
        }
        Ok(q)
    }

    fn matches(&self, reading: SearchReading, c: &Case) -> bool {
        self.custom_fields.iter().all(|(field, patterns)| {
            c.custom_fields.get(field).is_some_and(|v| {
                let stored = value_text(v);
                patterns
                    .iter()
                    .any(|p| custom_field_matches(reading, p, &stored))
            })
        }) && (self.statuses.is_empty() || self.statuses.contains(&c.status))
            && (self.user_ids.is_empty() || self.user_ids.contains(&c.user_id))
            && self.from.is_none_or(|f| c.created_at >= f)
            && self.to.is_none_or(|t| c.created_at <= t)
    }
}

/// `GET /api/cases.json` (page 001, "List cases"): the filtered, sorted page of cases.
pub(super) fn list_cases(readings: &Readings, st: &Account, pairs: &[(String, String)]) -> Answer {
    let q = match CaseQuery::parse(readings, pairs) {
        Ok(q) => q,
        Err(a) => return a,
    };
    let mut hits: Vec<&Case> = st
        .cases
        .iter()
        .filter(|c| !c.purged)
        .filter(|c| q.matches(readings.custom_field_search, c))
        .collect();
    match q.sort.as_str() {
        "created_at_asc" => hits.sort_by_key(|c| (c.created_at, c.case_id)),
        "created_at_desc" => hits.sort_by_key(|c| std::cmp::Reverse((c.created_at, c.case_id))),
        "updated_at_asc" => hits.sort_by_key(|c| (c.updated_at, c.case_id)),
        _ => hits.sort_by_key(|c| std::cmp::Reverse((c.updated_at, c.case_id))),
    }
    let total = hits.len();
    let limit = q.limit.unwrap_or(100);
    let page = q.page.unwrap_or(1);
    let items = hits
        .into_iter()
        .skip((page - 1) * limit)
        .take(limit)
        .map(case_json)
        .collect();
    (
        axum::http::StatusCode::OK,
        numbered("case", items, total),
        None,
    )
}

/// Deskie's search rules: `^exact^`, `^prefix`, `suffix^`, otherwise substring (case-insensitive).
pub(super) fn search_matches(pattern: &str, value: &str) -> bool {
    let value = value.to_lowercase();
    let p = pattern.to_lowercase();
    match (p.strip_prefix('^'), p.strip_suffix('^')) {
        (Some(_), Some(_)) if p.len() >= 2 => value == p[1..p.len() - 1],
        (Some(rest), _) => value.starts_with(rest),
        (_, Some(rest)) => value.ends_with(rest),
        _ => value.contains(&p),
    }
}

/// Whether a `custom_fields[cf_N]=pattern` filter (string or array form) matches a stored value,
/// under the reading in force. Page 002 ("search"): "the search option is used in many methods",
/// `^…^` for exact; page 001 shows the filter (both forms) without saying how it matches, so each
/// plausible reading is offered.
fn custom_field_matches(reading: SearchReading, pattern: &str, stored: &str) -> bool {
    match reading {
        // Page 002's rules: `^x^` exact, `^x` prefix, `x^` suffix, otherwise substring.
        SearchReading::Caret => search_matches(pattern, stored),
        // The filter is an equality test; `^` is an ordinary character (case-sensitive).
        SearchReading::ExactOnly => pattern == stored,
        // Always a case-insensitive substring; `^` is an ordinary character.
        SearchReading::SubstringOnly => stored.to_lowercase().contains(&pattern.to_lowercase()),
    }
}

/// Reads a `from_time` / `to_time` value under the reading in force; `Ok(None)`: not applied.
/// Page 001 lost its parameter table: it only says the two bound the list "taking into account
/// the creation time", so each plausible format is offered.
fn time_filter(
    reading: TimeFilterReading,
    field: &str,
    value: &str,
) -> Result<Option<Timestamp>, Answer> {
    match reading {
        // Unix seconds; the parser stays as lenient as it always was (RFC 2822 / 3339 and civil
        // forms are accepted too), so the default behaves exactly as before the readings existed.
        TimeFilterReading::UnixSeconds => parse_filter_time(value)
            .map(Some)
            .ok_or_else(|| bad(field, "cannot parse the time")),
        // `YYYY-MM-DD HH:MM:SS` in the account's offset, nothing else (not even Unix seconds).
        TimeFilterReading::DateTimeText => datetime_text(value).map(Some).ok_or_else(|| {
            bad(
                field,
                format!("cannot parse {value:?}: expected YYYY-MM-DD HH:MM:SS"),
            )
        }),
        // Accepted whatever it holds, and not applied.
        TimeFilterReading::Ignored => Ok(None),
    }
}

/// Strictly `YYYY-MM-DD HH:MM:SS` (zero-padded, 19 characters), read in the account's offset.
fn datetime_text(value: &str) -> Option<Timestamp> {
    let shape_ok = value.len() == 19
        && value.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b' ',
            13 | 16 => b == b':',
            _ => b.is_ascii_digit(),
        });
    if !shape_ok {
        return None;
    }
    let dt = jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", value).ok()?;
    TimeZone::fixed(Offset::constant(ACCOUNT_OFFSET_HOURS))
        .to_timestamp(dt)
        .ok()
}

fn parse_filter_time(s: &str) -> Option<Timestamp> {
    if let Some(t) = parse_time(s) {
        return Some(t);
    }
    if let Ok(secs) = s.trim().parse::<i64>() {
        return Timestamp::from_second(secs).ok();
    }
    let tz = TimeZone::fixed(Offset::constant(ACCOUNT_OFFSET_HOURS));
    if let Ok(dt) = s.trim().parse::<jiff::civil::DateTime>() {
        return tz.to_timestamp(dt).ok();
    }
    if let Ok(d) = s.trim().parse::<jiff::civil::Date>() {
        return tz
            .to_timestamp(d.to_datetime(jiff::civil::Time::midnight()))
            .ok();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_rules() {
        assert!(search_matches("^desk360:1:4^", "desk360:1:4"));
        assert!(!search_matches("^desk360:1:4^", "desk360:1:42"));
        assert!(search_matches("desk360:1:4", "desk360:1:42"));
        assert!(search_matches("^desk", "desk360:1:42"));
        assert!(!search_matches("^esk", "desk360:1:42"));
        assert!(search_matches(":42^", "desk360:1:42"));
        assert!(!search_matches(":4^", "desk360:1:42"));
    }
}
