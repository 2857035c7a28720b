//! The vendor pages' sample bodies (copied into `fixtures/`) and surprising variants of them
//! parse into the lenient response types.

// Tests may unwrap: a panic is the failure report (the helpers below are test code too).
#![allow(clippy::unwrap_used)]

use deskie::responses::{CaseWrapper, MessageWrapper, NoWrapper};
use deskie::{Case, MessageInfo, Numbered, UserInfo, parse_timestamp};
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn case_of(v: Value) -> Case {
    serde_json::from_value(v["case"].clone()).unwrap()
}

#[test]
fn page_samples_of_single_cases_parse() {
    for name in ["create_case", "view_case", "update_case"] {
        let case = case_of(fixture(name));
        assert_eq!(case.case_id, 2000, "{name}");
        assert_eq!(case.case_number.as_deref(), Some("664-245651"));
        assert_eq!(case.user_id, Some(123));
        assert_eq!(case.staff_id, Some(22));
        assert_eq!(case.labels[..2], [101, 102]);
        assert_eq!(
            case.custom_field_text("cf_25").as_deref(),
            Some("some text")
        );
        assert_eq!(
            case.created_at_ts(),
            parse_timestamp("2014-05-04T21:15:17Z"),
            "{name}"
        );
    }
    let view = case_of(fixture("view_case"));
    assert_eq!(view.status_value(), Some(deskie::CaseStatus::Closed));
    assert_eq!(view.priority_value(), Some(deskie::CasePriority::Normal));
    // Fields we do not model are kept.
    assert_eq!(view.extra["closed_at"], json!("-"));
    assert_eq!(view.extra["locked_labels"], json!([104, 105]));
    assert_eq!(view.extra["rated_staff_id"], json!(193));
}

#[test]
fn page_sample_of_case_list_parses_in_order() {
    let list: Numbered<Case, CaseWrapper> = serde_json::from_value(fixture("list_cases")).unwrap();
    let ids: Vec<i64> = list.items.iter().map(|c| c.case_id).collect();
    assert_eq!(ids, [2000, 2001, 2002, 2003]);
    assert_eq!(list.total_count, Some(17));
    // closing_speed is a number or "-": kept as is, never fails the page.
    assert_eq!(list.items[2].extra["closing_speed"], json!("-"));
    assert_eq!(
        list.items[3].priority_value(),
        Some(deskie::CasePriority::Critical)
    );
}

#[test]
fn page_samples_of_messages_parse() {
    let list: Numbered<MessageInfo, MessageWrapper> =
        serde_json::from_value(fixture("messages")).unwrap();
    assert_eq!(list.total_count, Some(17));
    assert_eq!(list.items.len(), 2);
    let (first, second) = (&list.items[0], &list.items[1]);
    assert_eq!(first.message_id, 2000);
    assert_eq!(first.user_id, Some(123));
    assert_eq!(first.body(), "Test response of the user");
    assert!(!first.is_note());
    assert_eq!(second.staff_id, Some(41087));
    assert_eq!(second.attachments.len(), 1);
    assert_eq!(second.attachments[0].file_size, Some(40863));
    assert_eq!(
        second.attachments[0].mime_type.as_deref(),
        Some("image/jpeg")
    );
    assert_eq!(
        second.created_at_ts(),
        parse_timestamp("2023-05-15T06:28:43Z")
    );

    for name in [
        "add_message",
        "add_message_attachments",
        "add_note",
        "add_note_attachments",
    ] {
        let m: MessageInfo = serde_json::from_value(fixture(name)["message"].clone()).unwrap();
        assert_eq!(m.message_id, 2001, "{name}");
        assert_eq!(m.is_note(), name.contains("note"), "{name}");
    }
}

#[test]
fn page_sample_of_user_parses() {
    let user: UserInfo = serde_json::from_value(fixture("view_user")["user"].clone()).unwrap();
    assert_eq!(user.user_id, 200);
    assert_eq!(user.kind.as_deref(), Some("email"));
    assert_eq!(user.custom_fields["cf_23"], json!(true));
    assert_eq!(user.extra["linked_users"], json!([123, 456]));
}

#[test]
fn surprising_values_do_not_fail() {
    let case: Case = serde_json::from_value(json!({
        "case_id": "2000",
        "user_id": "123",
        "staff_id": null,
        "group_id": "",
        "subject": 42,
        "status": "open",
        "custom_fields": [],
        "labels": ["101", 102, "x"],
        "deleted": "0",
        "spam": 1,
        "created_at": null,
        "brand_new_field": {"nested": true}
    }))
    .unwrap();
    assert_eq!(case.case_id, 2000);
    assert_eq!(case.user_id, Some(123));
    assert_eq!(case.staff_id, None);
    assert_eq!(case.group_id, None);
    assert_eq!(case.subject.as_deref(), Some("42"));
    assert!(case.custom_fields.is_empty());
    assert_eq!(case.labels, [101, 102]);
    assert_eq!(case.deleted, Some(false));
    assert_eq!(case.spam, Some(true));
    assert_eq!(case.created_at_ts(), None);
    assert_eq!(case.extra["brand_new_field"], json!({"nested": true}));

    let m: MessageInfo = serde_json::from_value(json!({
        "message_id": 7,
        "content": null,
        "content_html": "<p>x</p>",
        "note": "true",
        "attachments": {"0": {"file_id": "5", "url": "u"}, "1": "garbage"}
    }))
    .unwrap();
    assert!(m.is_note());
    assert_eq!(m.content, "");
    assert_eq!(m.attachments.len(), 1);
    assert_eq!(m.attachments[0].file_id, Some(5));

    // Without its id a case is useless: that is an error, not a silent default.
    assert!(serde_json::from_value::<Case>(json!({"subject": "x"})).is_err());
}

#[test]
fn numbered_lists_take_numeric_keys_in_numeric_order() {
    let v = json!({
        "10": {"case": {"case_id": 10}},
        "2": {"case": {"case_id": 2}},
        "0": {"case": {"case_id": 0}},
        "9": {"case_id": 9},
        "total_count": "11",
        "page": 1,
        "status": "ok"
    });
    let list: Numbered<Case, CaseWrapper> = serde_json::from_value(v).unwrap();
    let ids: Vec<i64> = list.items.iter().map(|c| c.case_id).collect();
    assert_eq!(ids, [0, 2, 9, 10]);
    assert_eq!(list.total_count, Some(11));

    // An array, an empty array, an empty object and null are all empty-or-plain lists.
    let list: Numbered<Case, CaseWrapper> =
        serde_json::from_value(json!([{"case": {"case_id": 1}}, {"case_id": 2}])).unwrap();
    assert_eq!(list.items.len(), 2);
    for empty in [json!([]), json!({"total_count": 0}), Value::Null] {
        let list: Numbered<Case, CaseWrapper> = serde_json::from_value(empty).unwrap();
        assert!(list.items.is_empty());
    }

    // Unwrapped items.
    let list: Numbered<i64, NoWrapper> = serde_json::from_value(json!({"1": 5, "0": 4})).unwrap();
    assert_eq!(list.items, [4, 5]);

    // A broken item fails the list and names the item.
    let err = serde_json::from_value::<Numbered<Case, CaseWrapper>>(
        json!({"0": {"case": {"case_id": 1}}, "1": {"case": {"subject": "no id"}}}),
    )
    .unwrap_err();
    assert!(err.to_string().contains("item \"1\""), "{err}");
    assert!(serde_json::from_value::<Numbered<Case, CaseWrapper>>(json!("nope")).is_err());
}
