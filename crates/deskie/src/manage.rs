//! Case and user management: the requests `preflight` and `rollback` need beyond the migration
//! recipe — moving cases to the trash, deleting cases and users permanently, and the two
//! single-field note forms the preflight probe uses to learn which field names a note's author.
//!
//! Pages: 001 "Move a case/cases to the TRASH" (`PUT cases/{ids}/trash.json`), "Delete
//! permanently a case" (`DELETE cases/{ids}.json`, bulk ≤ 10, "available only to the agents with
//! a full access level", answered only "HTTP Status: 200 OK"); 000 "Delete permanently a user"
//! (`DELETE users/{id}.json`). Every request here costs 2 units (writes) and goes through the same
//! limiter and retry classification as the recipe's requests: a DELETE whose answer is lost is
//! [`DeskieError::Ambiguous`]; deleting again is harmless (the case is gone either way), but the
//! caller decides, after reading.

use serde::Serialize;
use serde_json::Value;

use crate::client::{BULK_MAX, DeskieClient, Verb, decode};
use crate::error::{DeskieError, Result};
use crate::responses::{Case, MessageInfo};

/// Which note field the preflight probe names the author in (page 001 shows `note_staff_id` in
/// one block and `staff_id` in the two others; [`crate::NewNote`] always sends both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoteAuthorField {
    /// Only `note_staff_id`.
    NoteStaffId,
    /// Only `staff_id`.
    StaffId,
}

impl NoteAuthorField {
    /// The JSON field name.
    pub fn as_str(self) -> &'static str {
        match self {
            NoteAuthorField::NoteStaffId => "note_staff_id",
            NoteAuthorField::StaffId => "staff_id",
        }
    }
}

/// `{"note": {…}}` with exactly the fields the probe chose.
#[derive(Serialize)]
struct ProbeNoteBody {
    note: serde_json::Map<String, Value>,
}

impl DeskieClient {
    /// Deletes up to 10 cases permanently (`DELETE cases/{id},{id}….json`, cost 2). The page
    /// answers only "200 OK", so success means the request was accepted for every id named.
    /// More than 10 ids (the page's limit) or none is a configuration error, never sent.
    pub async fn delete_cases(&self, case_ids: &[i64]) -> Result<()> {
        let path = bulk_path(case_ids, "")?;
        self.execute(Verb::Delete, &path, &[], None)
            .await
            .map(|_| ())
    }

    /// Moves up to 10 cases to the trash (`PUT cases/{ids}/trash.json` with an empty body, as
    /// the page's curl line sends it; cost 2). Returns the ids the server reports as moved (one
    /// case: the answered case; bulk: `case_success_id`).
    pub async fn trash_cases(&self, case_ids: &[i64]) -> Result<Vec<i64>> {
        let path = bulk_path(case_ids, "/trash")?;
        let value = self.execute(Verb::Put, &path, &[], None).await?;
        if case_ids.len() == 1 && value.get("case").is_some() {
            let case: Case = decode(value, &["case"], Verb::Put, &path)?;
            return Ok(vec![case.case_id]);
        }
        let ids = value
            .get("case_success_id")
            .and_then(Value::as_array)
            .ok_or_else(|| DeskieError::Ambiguous {
                what: format!("PUT {path}"),
                detail: "the bulk trash answer has no case_success_id".into(),
            })?;
        Ok(ids.iter().filter_map(transport::lenient::int).collect())
    }

    /// Deletes a user permanently (`DELETE users/{id}.json`, page 000, cost 2): the preflight
    /// probe's user, which the probe case created. Never used on migrated customers.
    pub async fn delete_user(&self, user_id: i64) -> Result<()> {
        let path = format!("users/{user_id}.json");
        self.execute(Verb::Delete, &path, &[], None)
            .await
            .map(|_| ())
    }

    /// Adds a note naming its author in ONE field only (`POST cases/{id}/note.json`, cost 2):
    /// the preflight probe sends one note per field to learn which one the account reads. The
    /// migration itself always sends both ([`crate::NewNote`]).
    pub async fn add_probe_note(
        &self,
        case_id: i64,
        field: NoteAuthorField,
        staff_id: i64,
        content: &str,
    ) -> Result<MessageInfo> {
        let path = format!("cases/{case_id}/note.json");
        let mut note = serde_json::Map::new();
        note.insert(field.as_str().into(), Value::from(staff_id));
        note.insert("content".into(), Value::from(content));
        let body = ProbeNoteBody { note };
        let value = self.write(Verb::Post, &path, &body).await?;
        decode(value, &["message", "note"], Verb::Post, &path)
    }
}

/// `cases/{id},{id}…{suffix}.json`, after checking the page's bulk limit.
fn bulk_path(case_ids: &[i64], suffix: &str) -> Result<String> {
    if case_ids.is_empty() || case_ids.len() > BULK_MAX {
        return Err(DeskieError::config(format!(
            "a bulk case request takes 1 to {BULK_MAX} cases, not {}",
            case_ids.len()
        )));
    }
    let ids: Vec<String> = case_ids.iter().map(i64::to_string).collect();
    Ok(format!("cases/{}{suffix}.json", ids.join(",")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_paths_follow_the_page() {
        assert_eq!(bulk_path(&[7], "").unwrap(), "cases/7.json");
        assert_eq!(
            bulk_path(&[7, 8, 9], "/trash").unwrap(),
            "cases/7,8,9/trash.json"
        );
        assert!(bulk_path(&[], "").is_err());
        let eleven: Vec<i64> = (1..=11).collect();
        assert!(matches!(
            bulk_path(&eleven, ""),
            Err(DeskieError::Config { .. })
        ));
    }
}
