//! The Deskie emulator under every reading of its vendor pages (`sandbox::Readings`), and the
//! Deskie behaviour added beside them: bulk update, trash / restore / delete, edited responses,
//! uploaded files, delayed writes, a 429 storm and another consumer spending evenly.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{WHEN, bounded, client, create, email_case, get, post, put, req, send, start};
use sandbox::{
    AgentReplyReading, NoteAuthorReading, Readings, Sandbox, SearchReading, TimeFilterReading,
};
use serde_json::{Value, json};

/// The case ids of a numbered list answer, in answer order.
fn ids(list: &Value) -> Vec<i64> {
    let total = list["total_count"].as_u64().expect("total_count") as usize;
    (0..total)
        .filter_map(|i| list[i.to_string()]["case"]["case_id"].as_i64())
        .collect()
}

/// The case ids a list query answers, sorted.
async fn listed(sb: &Sandbox, query: &str) -> Vec<i64> {
    let (s, b) = get(sb, &format!("cases.json?{query}")).await;
    assert_eq!(s, 200, "{query}: {b}");
    let mut v = ids(&b);
    v.sort_unstable();
    v
}

/// A sandbox with room for every request whose custom channel 7 is synchronous (plain content
/// only): the reading both the channel test and the edit test exercise.
async fn start_with_sync_channel_7() -> Sandbox {
    start(|c| {
        c.deskie_limit = 100_000;
        c.readings.sync_custom_channels = BTreeSet::from([7]);
    })
    .await
}

fn readings(change: impl FnOnce(&mut Readings)) -> Readings {
    let mut r = Readings::default();
    change(&mut r);
    r
}

// ---------------------------------------------------------------------------------------------
// 1. custom_field_search

#[tokio::test]
async fn custom_field_search_follows_each_reading() {
    let sb = start(|c| c.deskie_limit = 100_000).await;
    let mut made = Vec::new();
    for (i, value) in ["desk360:1:4", "desk360:1:42", "DESK360:1:4x", "^odd^"]
        .into_iter()
        .enumerate()
    {
        let mut body = email_case(&format!("s{i}@example.com"), "<p>x</p>");
        body["case"]["custom_fields"] = json!({"cf_900": value});
        made.push(create(&sb, body).await["case_id"].as_i64().expect("id"));
    }
    let [a, b, c, odd] = made[..] else {
        panic!("four cases")
    };
    let q = |v: &str| format!("custom_fields[cf_900]={}", urlencode(v));
    let arr = |vs: &[&str]| {
        vs.iter()
            .map(|v| format!("custom_fields[cf_900][]={}", urlencode(v)))
            .collect::<Vec<_>>()
            .join("&")
    };

    // Default: the caret rules of page 002.
    assert_eq!(sb.readings().custom_field_search, SearchReading::Caret);
    assert_eq!(listed(&sb, &q("^desk360:1:4^")).await, vec![a]);
    assert_eq!(listed(&sb, &q("desk360:1:4")).await, vec![a, b, c]);
    assert_eq!(listed(&sb, &q("^desk360")).await, vec![a, b, c]);
    assert_eq!(listed(&sb, &q(":42^")).await, vec![b]);

    // Exact only: equality, `^` is an ordinary character, case matters.
    sb.set_readings(readings(|r| {
        r.custom_field_search = SearchReading::ExactOnly
    }));
    assert_eq!(listed(&sb, &q("^desk360:1:4^")).await, Vec::<i64>::new());
    assert_eq!(listed(&sb, &q("desk360:1:4")).await, vec![a]);
    assert_eq!(listed(&sb, &q("desk360:1:4X")).await, Vec::<i64>::new());
    assert_eq!(listed(&sb, &q("^odd^")).await, vec![odd]);
    assert_eq!(
        listed(&sb, &arr(&["desk360:1:4", "desk360:1:42"])).await,
        vec![a, b]
    );

    // Substring only: case-insensitive inclusion, `^` ordinary.
    sb.set_readings(readings(|r| {
        r.custom_field_search = SearchReading::SubstringOnly
    }));
    assert_eq!(listed(&sb, &q("^desk360:1:4^")).await, Vec::<i64>::new());
    assert_eq!(listed(&sb, &q("desk360:1:4")).await, vec![a, b, c]);
    assert_eq!(listed(&sb, &q("^odd")).await, vec![odd]);
    assert_eq!(listed(&sb, &arr(&[":42", "4x"])).await, vec![b, c]);
    sb.shutdown().await;
}

/// Percent-encodes everything but unreserved characters (enough for these tests).
fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 2. time_filter

#[tokio::test]
async fn time_filter_follows_each_reading() {
    let sb = start(|c| c.deskie_limit = 100_000).await;
    let mut made = Vec::new();
    for (i, at) in [
        WHEN,
        "Thu, 02 Jan 2020 10:00:00 +0300",
        "2022-06-01T00:00:00Z",
    ]
    .into_iter()
    .enumerate()
    {
        let mut body = email_case(&format!("t{i}@example.com"), "<p>x</p>");
        body["case"]["created_at"] = json!(at);
        made.push(create(&sb, body).await["case_id"].as_i64().expect("id"));
    }
    let [a, b, c] = made[..] else {
        panic!("three cases")
    };
    // 2020-01-02 10:00:00 +03:00 = 07:00:00 UTC.
    let b_unix = 1_577_948_400_i64;

    // Default: Unix seconds, bounds inclusive.
    assert_eq!(
        listed(&sb, &format!("from_time={b_unix}")).await,
        vec![b, c]
    );
    assert_eq!(
        listed(&sb, &format!("to_time={}", b_unix - 1)).await,
        vec![a]
    );

    // Text in the account's offset (+03:00); anything else is a 400 naming the field.
    sb.set_readings(readings(|r| {
        r.time_filter = TimeFilterReading::DateTimeText
    }));
    let text = |field: &str, v: &str| format!("{field}={}", urlencode(v));
    assert_eq!(
        listed(&sb, &text("from_time", "2020-01-02 10:00:00")).await,
        vec![b, c]
    );
    assert_eq!(
        listed(&sb, &text("to_time", "2020-01-02 09:59:59")).await,
        vec![a]
    );
    assert_eq!(
        listed(
            &sb,
            &format!(
                "{}&{}",
                text("from_time", "2020-01-02 10:00:00"),
                text("to_time", "2020-01-02 10:00:00")
            )
        )
        .await,
        vec![b]
    );
    for (field, bad) in [
        ("from_time", b_unix.to_string()),
        ("to_time", "2020-01-02T10:00:00Z".to_owned()),
        ("from_time", "2020-1-2 10:00:00".to_owned()),
    ] {
        let (s, body) = get(&sb, &format!("cases.json?{}", text(field, &bad))).await;
        assert_eq!(s, 400, "{field}={bad}: {body}");
        assert!(body["errors"][field].is_string(), "{body}");
    }

    // Ignored: accepted whatever it holds, not applied.
    sb.set_readings(readings(|r| r.time_filter = TimeFilterReading::Ignored));
    assert_eq!(
        listed(&sb, &format!("from_time={b_unix}&to_time=yesterday")).await,
        vec![a, b, c]
    );
    sb.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 3. agent_reply

/// Closes a case by hand (a status update), as an agent would before the next reply.
async fn close(sb: &Sandbox, id: i64) {
    let (s, b) = put(
        sb,
        &format!("cases/{id}.json"),
        json!({"case": {"status": "closed"}}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test]
async fn agent_reply_sets_waiting_only_under_that_reading() {
    let sb = start(|c| c.deskie_limit = 100_000).await;
    let case = create(&sb, email_case("r@example.com", "<p>x</p>")).await;
    let id = case["case_id"].as_i64().expect("id");
    let user = case["user_id"].as_i64().expect("user");
    let agent = json!({"message": {"staff_id": 7, "content_html": "<p>a</p>", "created_at": WHEN, "do_not_send_email": true}});
    let customer =
        json!({"message": {"user_id": user, "content_html": "<p>c</p>", "created_at": WHEN}});
    let note = json!({"note": {"staff_id": 7, "content": "n"}});
    let status = |sb: &Sandbox| sb.deskie_snapshot().cases[0].status.clone();
    let path = format!("cases/{id}/messages.json");

    // Default: an agent reply keeps the status.
    let (s, _) = post(&sb, &path, agent.clone()).await;
    assert_eq!(s, 200);
    assert_eq!(status(&sb), "open");

    sb.set_readings(readings(|r| r.agent_reply = AgentReplyReading::SetsWaiting));
    let (s, _) = post(&sb, &path, agent.clone()).await;
    assert_eq!(s, 200);
    assert_eq!(status(&sb), "waiting", "an agent reply sets waiting");
    let (s, _) = post(&sb, &path, customer.clone()).await;
    assert_eq!(s, 200);
    assert_eq!(status(&sb), "open", "a customer reply still reopens");
    let (s, _) = post(&sb, &format!("cases/{id}/note.json"), note).await;
    assert_eq!(s, 200);
    assert_eq!(status(&sb), "open", "a note does not count as a reply");
    close(&sb, id).await;
    let (s, _) = post(&sb, &path, agent).await;
    assert_eq!(s, 200);
    assert_eq!(
        status(&sb),
        "waiting",
        "even a closed case waits after a reply"
    );
    close(&sb, id).await;
    let (s, _) = post(&sb, &path, customer).await;
    assert_eq!(s, 200);
    assert_eq!(status(&sb), "open", "a customer reopens a closed case");
    sb.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 4. note_author

/// A multipart/form-data body (reqwest's multipart feature is off in the workspace): text fields,
/// then files `(field name, file name, bytes)`. Returns the content type and the body.
fn multipart(fields: &[(&str, &str)], files: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "sandbox-boundary-h2";
    let mut form = Vec::new();
    for (name, value) in fields {
        form.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    for (name, file, bytes) in files {
        form.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
        );
        form.extend_from_slice(bytes);
        form.extend_from_slice(b"\r\n");
    }
    form.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), form)
}

async fn post_multipart(
    sb: &Sandbox,
    path: &str,
    fields: &[(&str, &str)],
    files: &[(&str, &str, &[u8])],
) -> (u16, Value) {
    let (ct, body) = multipart(fields, files);
    let (s, b, _) = send(
        req(sb, reqwest::Method::POST, path)
            .header("content-type", ct)
            .body(body),
    )
    .await;
    (s, b)
}

/// Adds a note in one of the page's forms and answers the author Deskie recorded (or the status).
async fn note_author(sb: &Sandbox, case: i64, form: &str, field: Option<&str>) -> Result<i64, u16> {
    let path = format!("cases/{case}/note.json");
    let (s, b) = match form {
        "multipart" => {
            let key = field.map(|f| format!("note[{f}]"));
            let mut fields = vec![("note[content]", "n")];
            if let Some(k) = &key {
                fields.push((k.as_str(), "55"));
            }
            post_multipart(sb, &path, &fields, &[]).await
        }
        wrapper => {
            let mut inner = json!({"content": "n"});
            if let Some(f) = field {
                inner[f] = json!(55);
            }
            post(sb, &path, json!({ wrapper: inner })).await
        }
    };
    if s != 200 {
        return Err(s);
    }
    Ok(b["message"]["staff_id"].as_i64().expect("staff_id"))
}

#[tokio::test]
async fn note_author_follows_each_reading_in_every_form() {
    let sb = start(|c| c.deskie_limit = 100_000).await;
    let id = create(&sb, email_case("n@example.com", "<p>x</p>")).await["case_id"]
        .as_i64()
        .expect("id");
    let api = sandbox::DESKIE_API_STAFF_ID;
    let cases: [(NoteAuthorReading, [Result<i64, u16>; 3]); 3] = [
        // (reading, [note_staff_id only, staff_id only, neither])
        (NoteAuthorReading::EitherField, [Ok(55), Ok(55), Err(400)]),
        (
            NoteAuthorReading::NoteStaffIdOnly,
            [Ok(55), Ok(api), Ok(api)],
        ),
        (NoteAuthorReading::StaffIdOnly, [Ok(api), Ok(55), Ok(api)]),
    ];
    for (reading, expected) in cases {
        sb.set_readings(readings(|r| r.note_author = reading));
        for form in ["note", "message", "multipart"] {
            for (field, want) in [Some("note_staff_id"), Some("staff_id"), None]
                .into_iter()
                .zip(expected)
            {
                let got = note_author(&sb, id, form, field).await;
                assert_eq!(got, want, "{reading:?}, {form} form, field {field:?}");
            }
        }
    }
    // What was answered is what is stored.
    let snap = sb.deskie_snapshot();
    let stored: Vec<i64> = snap.cases[0]
        .messages
        .iter()
        .filter(|m| m.note)
        .map(|m| m.staff_id)
        .collect();
    assert_eq!(stored.len(), 3 * 2 + 3 * 3 + 3 * 3);
    assert_eq!(stored.iter().filter(|&&s| s == api).count(), 3 * 4);
    sb.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 5. sync_custom_channels

#[tokio::test]
async fn synchronous_custom_channels_take_plain_content_only() {
    let sb = start_with_sync_channel_7().await;
    let custom = |channel: i64, user: &str, content: Value| {
        let mut case = json!({"user_custom_id": user, "user_custom_channel": channel.to_string(), "subject": "S", "created_at": WHEN});
        for (k, v) in content.as_object().expect("object") {
            case[k] = v.clone();
        }
        json!({ "case": case })
    };
    // Synchronous channel 7: HTML is refused naming the field, plain content is required.
    let (s, b) = post(
        &sb,
        "cases.json",
        custom(7, "u1", json!({"content_html": "<p>x</p>"})),
    )
    .await;
    assert_eq!(s, 400);
    assert!(b["errors"]["content_html"].is_string(), "{b}");
    let (s, b) = post(
        &sb,
        "cases.json",
        custom(7, "u1", json!({"content": "x", "content_html": "<p>x</p>"})),
    )
    .await;
    assert_eq!(s, 400);
    assert!(b["errors"]["content_html"].is_string(), "{b}");
    let sync = create(&sb, custom(7, "u1", json!({"content": "x"}))).await;
    // Another custom channel is unchanged: HTML is fine.
    let other = create(&sb, custom(8, "u2", json!({"content_html": "<p>x</p>"}))).await;

    let (sync_id, sync_user) = (
        sync["case_id"].as_i64().expect("id"),
        sync["user_id"].clone(),
    );
    let msg = |content: Value, who: Value| {
        let mut m = json!({"created_at": WHEN});
        for (k, v) in content
            .as_object()
            .expect("object")
            .iter()
            .chain(who.as_object().expect("object"))
        {
            m[k] = v.clone();
        }
        json!({ "message": m })
    };
    let path = format!("cases/{sync_id}/messages.json");
    for who in [json!({"user_id": sync_user}), json!({"staff_id": 3})] {
        let (s, b) = post(
            &sb,
            &path,
            msg(json!({"content_html": "<p>r</p>"}), who.clone()),
        )
        .await;
        assert_eq!(s, 400, "{who}");
        assert!(b["errors"]["content_html"].is_string(), "{b}");
        let (s, b) = post(&sb, &path, msg(json!({"content": "r"}), who.clone())).await;
        assert_eq!(s, 200, "{who}: {b}");
    }
    let note = format!("cases/{sync_id}/note.json");
    let (s, b) = post(
        &sb,
        &note,
        json!({"note": {"staff_id": 3, "content_html": "<p>n</p>"}}),
    )
    .await;
    assert_eq!(s, 400);
    assert!(b["errors"]["content_html"].is_string(), "{b}");
    let (s, _) = post(&sb, &note, json!({"note": {"staff_id": 3, "content": "n"}})).await;
    assert_eq!(s, 200);
    let (s, _) = post(
        &sb,
        &format!("cases/{}/messages.json", other["case_id"]),
        msg(json!({"content_html": "<p>r</p>"}), json!({"staff_id": 3})),
    )
    .await;
    assert_eq!(s, 200, "an ordinary custom channel keeps taking HTML");
    // Email is unchanged too.
    create(&sb, email_case("e@example.com", "<p>x</p>")).await;
    assert_eq!(sb.deskie_snapshot().cases[0].messages.len(), 4);
    sb.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 6. ignores_created_at

#[tokio::test]
async fn ignores_created_at_stores_and_answers_the_servers_now() {
    let sb = start(|c| c.deskie_limit = 100_000).await;
    // Default: kept as sent.
    let kept = create(&sb, email_case("k@example.com", "<p>x</p>")).await;
    assert_eq!(kept["created_at"], WHEN);

    sb.set_readings(readings(|r| r.ignores_created_at = true));
    let before = jiff::Timestamp::now();
    let case = create(&sb, email_case("i@example.com", "<p>x</p>")).await;
    let id = case["case_id"].as_i64().expect("id");
    // Neither required nor read.
    let (s, b) = post(
        &sb,
        &format!("cases/{id}/messages.json"),
        json!({"message": {"staff_id": 3, "content_html": "<p>a</p>", "created_at": "not a time"}}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b2) = post(
        &sb,
        &format!("cases/{id}/messages.json"),
        json!({"message": {"user_id": case["user_id"], "content_html": "<p>c</p>"}}),
    )
    .await;
    assert_eq!(s, 200, "{b2}");
    let (s, b3) = post(
        &sb,
        &format!("cases/{id}/note.json"),
        json!({"note": {"staff_id": 3, "content": "n", "created_at": WHEN}}),
    )
    .await;
    assert_eq!(s, 200, "{b3}");
    let after = jiff::Timestamp::now();
    for answered in [
        &case["created_at"],
        &b["message"]["created_at"],
        &b3["message"]["created_at"],
    ] {
        assert_ne!(answered, WHEN, "the answer carries the server's time");
    }
    let snap = sb.deskie_snapshot();
    let stored = &snap.cases[1];
    let in_run = |t: &str| {
        let t: jiff::Timestamp = t.parse().expect("rfc3339");
        // Second precision is enough: the stored time lies within this test's own run.
        t >= before - jiff::SignedDuration::from_secs(1)
            && t <= after + jiff::SignedDuration::from_secs(1)
    };
    assert!(in_run(&stored.created_at), "{}", stored.created_at);
    assert_eq!(stored.messages.len(), 4);
    for m in &stored.messages {
        assert!(in_run(&m.created_at), "{}", m.created_at);
    }
    assert_eq!(snap.cases[0].created_at, "2014-05-04T21:15:17Z");
    sb.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 7. Bulk update

/// Creates `n` email cases whose first message carries `ref:p1t<i>m0`; answers their ids.
async fn cases_with_refs(sb: &Sandbox, n: i64) -> Vec<i64> {
    let mut ids = Vec::new();
    for i in 1..=n {
        let body = email_case(
            &format!("b{i}@example.com"),
            &format!("<p>ref:p1t{i}m0</p>"),
        );
        ids.push(create(sb, body).await["case_id"].as_i64().expect("id"));
    }
    ids
}

fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

#[tokio::test]
async fn bulk_update_answers_the_ids_it_updated() {
    let sb = start(|c| c.deskie_limit = 100_000).await;
    let ids = cases_with_refs(&sb, 11).await;
    let closed = json!({"case": {"status": "closed", "add_labels": [5]}});

    // Unknown ids are left out; a repeated id counts once.
    let (s, b) = put(
        &sb,
        &format!("cases/{},{},99999,{}.json", ids[0], ids[1], ids[0]),
        closed.clone(),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b, json!({"case_success_id": [ids[0], ids[1]]}));
    let snap = sb.deskie_snapshot();
    assert_eq!(snap.cases[0].status, "closed");
    assert_eq!(snap.cases[1].labels, vec![5]);
    assert_eq!(snap.cases[2].status, "open");

    // More than 10 cases: 400, nothing applied.
    let (s, b) = put(
        &sb,
        &format!("cases/{}.json", id_list(&ids)),
        closed.clone(),
    )
    .await;
    assert_eq!(s, 400);
    assert!(b["errors"]["case_id"].is_string(), "{b}");
    assert_eq!(sb.deskie_snapshot().cases[10].status, "open");
    // An invalid field: 400 for the whole request.
    let (s, b) = put(
        &sb,
        &format!("cases/{}.json", id_list(&ids[2..4])),
        json!({"case": {"status": "done"}}),
    )
    .await;
    assert_eq!(s, 400);
    assert!(b["errors"]["status"].is_string(), "{b}");
    assert_eq!(sb.deskie_snapshot().cases[2].status, "open");

    // A rejected ticket's case is left out, the others are updated; the journal says why.
    let mut faults = sb.faults();
    faults.reject_tickets = BTreeSet::from([(1, 4)]);
    sb.set_faults(faults);
    sb.clear_journal();
    let (s, b) = put(
        &sb,
        &format!("cases/{}.json", id_list(&ids[2..5])),
        json!({"case": {"priority": "high"}}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b, json!({"case_success_id": [ids[2], ids[4]]}));
    let journal = sb.journal();
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0].cost, 2, "a bulk update costs 2 like any write");
    assert_eq!(journal[0].fault.as_deref(), Some("rejected"));
    let snap = sb.deskie_snapshot();
    let priorities: Vec<&str> = snap.cases[2..5]
        .iter()
        .map(|c| c.priority.as_str())
        .collect();
    assert_eq!(priorities, ["high", "normal", "high"]);
    sb.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 8. Trash, spam, restore, delete; users disable, block, restore, delete

async fn delete(sb: &Sandbox, path: &str) -> (u16, Value) {
    let (s, b, _) = send(req(sb, reqwest::Method::DELETE, path)).await;
    (s, b)
}

#[tokio::test]
async fn trash_restore_and_permanent_delete_of_cases() {
    let sb = start(|c| c.deskie_limit = 100_000).await;
    let ids = cases_with_refs(&sb, 5).await;

    // Single trash answers the case, marked deleted; it stays in the default list.
    let (s, b) = put(&sb, &format!("cases/{}/trash.json", ids[0]), json!({})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["case"]["deleted"], true);
    assert!(sb.deskie_snapshot().cases[0].deleted);
    assert_eq!(listed(&sb, "").await, ids);
    let (_, view) = get(&sb, &format!("cases/{}.json", ids[0])).await;
    assert_eq!(view["case"]["deleted"], true);

    // Bulk trash / restore answer the ids; unknown ones left out.
    for (path, answered) in [
        (
            format!("cases/{},{},424242/trash.json", ids[1], ids[2]),
            [ids[1], ids[2]],
        ),
        (
            format!("cases/{},{}/restore.json", ids[0], ids[1]),
            [ids[0], ids[1]],
        ),
    ] {
        let (s, b) = put(&sb, &path, json!({})).await;
        assert_eq!(s, 200, "{path}");
        assert_eq!(b, json!({"case_success_id": answered}), "{path}");
    }
    let trashed: Vec<bool> = sb
        .deskie_snapshot()
        .cases
        .iter()
        .map(|c| c.deleted)
        .collect();
    assert_eq!(trashed, [false, false, true, false, false]);
    let (s, b) = put(&sb, &format!("cases/{}/spam.json", ids[3]), json!({})).await;
    assert_eq!((s, &b["case"]["spam"]), (200, &json!(true)));
    let (s, b) = put(&sb, &format!("cases/{}/restore.json", ids[3]), json!({})).await;
    assert_eq!((s, &b["case"]["spam"]), (200, &json!(false)));
    let (s, _) = put(&sb, "cases/424242/trash.json", json!({})).await;
    assert_eq!(s, 404);
    let eleven: Vec<i64> = (0..11).map(|i| 5000 + i).collect();
    let (s, b) = put(
        &sb,
        &format!("cases/{}/trash.json", id_list(&eleven)),
        json!({}),
    )
    .await;
    assert_eq!(s, 400, "{b}");

    // Permanent delete needs no trash first; the case is gone from views, lists and snapshot.
    let (s, _) = delete(&sb, &format!("cases/{}.json", ids[4])).await;
    assert_eq!(s, 200);
    let (s, _) = get(&sb, &format!("cases/{}.json", ids[4])).await;
    assert_eq!(s, 404);
    let (s, _) = delete(&sb, &format!("cases/{}.json", ids[4])).await;
    assert_eq!(s, 404, "already gone");
    let (s, _) = post(
        &sb,
        &format!("cases/{}/messages.json", ids[4]),
        json!({"message": {"staff_id": 3, "content_html": "<p>x</p>", "created_at": WHEN}}),
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = delete(&sb, &format!("cases/{},{}.json", ids[2], ids[3])).await;
    assert_eq!(s, 200);
    assert_eq!(listed(&sb, "").await, ids[..2].to_vec());
    let snap = sb.deskie_snapshot();
    let left: Vec<i64> = snap.cases.iter().map(|c| c.case_id).collect();
    assert_eq!(left, ids[..2].to_vec());
    // New cases keep fresh ids.
    let next = create(&sb, email_case("new@example.com", "<p>n</p>")).await;
    assert!(next["case_id"].as_i64().expect("id") > ids[4]);
    sb.shutdown().await;
}

#[tokio::test]
async fn users_disable_block_restore_and_delete() {
    let sb = start(|c| c.deskie_limit = 100_000).await;
    let first = create(&sb, email_case("u@example.com", "<p>x</p>")).await;
    let user = first["user_id"].as_i64().expect("user");

    let (s, b) = put(&sb, &format!("users/{user}/disable.json"), json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(
        (&b["user"]["deleted"], &b["user"]["active"]),
        (&json!(true), &json!(true))
    );
    assert!(sb.deskie_snapshot().users[0].deleted);
    let (s, b) = put(&sb, &format!("users/{user}/restore.json"), json!({})).await;
    assert_eq!((s, &b["user"]["deleted"]), (200, &json!(false)));
    let (s, b) = put(&sb, &format!("users/{user}/block.json"), json!({})).await;
    assert_eq!((s, &b["user"]["active"]), (200, &json!(false)));
    assert!(!sb.deskie_snapshot().users[0].active);
    // Page 000: new cases from a blocked user are marked as spam.
    let blocked_case = create(&sb, email_case("u@example.com", "<p>again</p>")).await;
    assert_eq!(blocked_case["spam"], true);
    assert_eq!(blocked_case["user_id"], user);
    let (s, _) = put(&sb, &format!("users/{user}/restore.json"), json!({})).await;
    assert_eq!(s, 200);
    assert!(sb.deskie_snapshot().users[0].active);

    // Permanent delete: gone from views, lists and the snapshot; the cases stay.
    let (s, _) = delete(&sb, &format!("users/{user}.json")).await;
    assert_eq!(s, 200);
    let (s, _) = get(&sb, &format!("users/{user}.json")).await;
    assert_eq!(s, 404);
    let (s, _) = put(&sb, &format!("users/{user}/restore.json"), json!({})).await;
    assert_eq!(s, 404);
    let (_, list) = get(&sb, "users.json").await;
    assert_eq!(list["total_count"], 0);
    let snap = sb.deskie_snapshot();
    assert!(snap.users.is_empty());
    assert_eq!(snap.cases.len(), 2);
    // The same address later creates a new user.
    let again = create(&sb, email_case("u@example.com", "<p>back</p>")).await;
    assert_ne!(again["user_id"], user);
    assert_eq!(again["spam"], false);
    sb.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 9. Edit (and delete) a response or a note

#[tokio::test]
async fn edit_a_response_and_a_note() {
    let sb = start_with_sync_channel_7().await;
    let case = create(&sb, email_case("ed@example.com", "<p>first</p>")).await;
    let id = case["case_id"].as_i64().expect("id");
    let (_, reply) = post(
        &sb,
        &format!("cases/{id}/messages.json"),
        json!({"message": {"staff_id": 3, "content_html": "<p>old</p>", "created_at": WHEN, "do_not_send_email": true}}),
    )
    .await;
    let reply_id = reply["message"]["message_id"].as_i64().expect("message id");
    let (_, note) = post(
        &sb,
        &format!("cases/{id}/note.json"),
        json!({"note": {"staff_id": 3, "content": "old note"}}),
    )
    .await;
    let note_id = note["message"]["message_id"].as_i64().expect("note id");

    let (s, b) = put(
        &sb,
        &format!("cases/{id}/messages/{reply_id}.json"),
        json!({"message": {"content_html": "<p>new</p>"}}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["message"]["content_html"], "<p>new</p>");
    assert_eq!(b["message"]["message_id"], reply_id);
    let snap = sb.deskie_snapshot();
    let stored = snap.cases[0]
        .messages
        .iter()
        .find(|m| m.message_id == reply_id)
        .expect("edited reply");
    assert_eq!(stored.content_html, "<p>new</p>");
    assert_eq!(
        snap.cases[0].messages.len(),
        3,
        "edited in place, not added"
    );

    // A note through its own path (note wrapper) and through the messages path (the page's
    // sample); a reply is not a note.
    let (s, b) = put(
        &sb,
        &format!("cases/{id}/note/{note_id}.json"),
        json!({"note": {"content": "note v2"}}),
    )
    .await;
    assert_eq!((s, &b["message"]["content"]), (200, &json!("note v2")));
    let (s, b) = put(
        &sb,
        &format!("cases/{id}/messages/{note_id}.json"),
        json!({"message": {"content": "note v3"}}),
    )
    .await;
    assert_eq!((s, &b["message"]["note"]), (200, &json!(true)));
    // Refused: a reply edited as a note, an empty content, an unknown message.
    for (path, body, want) in [
        (
            format!("cases/{id}/note/{reply_id}.json"),
            json!({"note": {"content": "x"}}),
            404,
        ),
        (
            format!("cases/{id}/messages/{reply_id}.json"),
            json!({"message": {"content": ""}}),
            400,
        ),
        (
            format!("cases/{id}/messages/999.json"),
            json!({"message": {"content": "x"}}),
            404,
        ),
    ] {
        let (s, b) = put(&sb, &path, body).await;
        assert_eq!(s, want, "{path}: {b}");
    }

    // A synchronous custom channel keeps refusing HTML on edits.
    let sync = create(
        &sb,
        json!({"case": {"user_custom_id": "c1", "user_custom_channel": "7", "subject": "S", "content": "hi", "created_at": WHEN}}),
    )
    .await;
    let sync_id = sync["case_id"].as_i64().expect("id");
    let (_, list) = get(&sb, &format!("cases/{sync_id}/messages.json")).await;
    let first = list["0"]["message"]["message_id"].as_i64().expect("first");
    let (s, b) = put(
        &sb,
        &format!("cases/{sync_id}/messages/{first}.json"),
        json!({"message": {"content_html": "<p>x</p>"}}),
    )
    .await;
    assert_eq!(s, 400);
    assert!(b["errors"]["content_html"].is_string(), "{b}");

    // Delete a note, then a response.
    let (s, _) = delete(&sb, &format!("cases/{id}/note/{note_id}.json")).await;
    assert_eq!(s, 200);
    let (s, _) = delete(&sb, &format!("cases/{id}/messages/{reply_id}.json")).await;
    assert_eq!(s, 200);
    assert_eq!(sb.deskie_snapshot().cases[0].messages.len(), 1);
    sb.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 10. Uploaded files recorded and served

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn fetch(url: &str, auth: Option<&Sandbox>) -> (u16, Vec<u8>) {
    let mut rb = client().get(url);
    if let Some(sb) = auth {
        let creds = sb.credentials();
        rb = rb.basic_auth(creds.deskie_staff_email, Some(creds.deskie_api_key));
    }
    let resp = bounded(rb.send()).await.expect("send");
    let status = resp.status().as_u16();
    let bytes = bounded(resp.bytes()).await.expect("body").to_vec();
    (status, bytes)
}

/// The text fields of a multipart case the upload tests create, with its first message's HTML.
fn files_case(content_html: &str) -> [(&'static str, &str); 4] {
    [
        ("case[user_email]", "files@example.com"),
        ("case[subject]", "Files"),
        ("case[content_html]", content_html),
        ("case[created_at]", WHEN),
    ]
}

#[tokio::test]
async fn uploaded_files_are_recorded_and_served() {
    let sb = start(|c| c.deskie_limit = 100_000).await;
    let png: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
    let pdf: Vec<u8> = (0..1234u32).map(|i| (i % 13) as u8).collect();
    let (s, b) = post_multipart(
        &sb,
        "cases.json",
        &files_case("<p>see <img src=\"x\"></p>"),
        &[
            ("case[attachments][0]", "shot.png", &png),
            ("case[attachments][1]", "doc.pdf", &pdf),
        ],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let id = b["case"]["case_id"].as_i64().expect("id");

    // The snapshot records name, size and SHA-256 on the first message; URLs as before.
    let snap = sb.deskie_snapshot();
    let first = &snap.cases[0].messages[0];
    assert_eq!(
        first.attachment_urls,
        ["multipart:shot.png", "multipart:doc.pdf"]
    );
    let recorded: Vec<(&str, u64, &str)> = first
        .files
        .iter()
        .map(|f| (f.name.as_str(), f.size, f.sha256.as_str()))
        .collect();
    let (png_sha, pdf_sha) = (sha256_hex(&png), sha256_hex(&pdf));
    assert_eq!(
        recorded,
        [
            ("shot.png", 5000, png_sha.as_str()),
            ("doc.pdf", 1234, pdf_sha.as_str())
        ]
    );

    // The messages list answers each file with a URL on the Deskie server serving the bytes;
    // a message older than 30 days needs the API's authentication (page 001).
    let (_, list) = get(&sb, &format!("cases/{id}/messages.json")).await;
    let answered = list["0"]["message"]["attachments"].clone();
    assert_eq!(answered[0]["file_name"], "shot.png");
    assert_eq!(answered[0]["file_size"], 5000);
    assert_ne!(answered[0]["file_id"], answered[1]["file_id"]);
    let url = answered[0]["url"].as_str().expect("url").to_owned();
    assert!(url.starts_with(&sb.deskie_url()), "{url}");
    assert_eq!(url, first.files[0].url);
    sb.clear_journal();
    assert_eq!(fetch(&url, Some(&sb)).await, (200, png.clone()));
    assert_eq!(fetch(&url, None).await.0, 401);
    let journal = sb.journal();
    assert_eq!(journal.len(), 2);
    assert!(
        journal.iter().all(|e| e.cost == 0),
        "file fetches are not charged"
    );

    // A fresh response's files work without authorization; notes take files too.
    let now = jiff::Timestamp::now().to_string();
    let user = b["case"]["user_id"].to_string();
    let (s, m) = post_multipart(
        &sb,
        &format!("cases/{id}/messages.json"),
        &[
            ("message[user_id]", &user),
            ("message[content_html]", "<p>more</p>"),
            ("message[created_at]", &now),
        ],
        &[("message[attachments][0]", "more.png", &pdf)],
    )
    .await;
    assert_eq!(s, 200, "{m}");
    let fresh = m["message"]["attachments"][0]["url"].as_str().expect("url");
    assert_eq!(fetch(fresh, None).await, (200, pdf.clone()));
    let (s, n) = post_multipart(
        &sb,
        &format!("cases/{id}/note.json"),
        &[("note[staff_id]", "3"), ("note[content]", "docs")],
        &[("note[attachments][0]", "n.bin", &png)],
    )
    .await;
    assert_eq!(s, 200, "{n}");
    let snap = sb.deskie_snapshot();
    let note = snap.cases[0]
        .messages
        .iter()
        .find(|m| m.note)
        .expect("note");
    assert_eq!(note.files[0].sha256, png_sha);

    // Deleted with its case: no longer served.
    let (s, _) = delete(&sb, &format!("cases/{id}.json")).await;
    assert_eq!(s, 200);
    assert_eq!(fetch(&url, Some(&sb)).await.0, 404);
    sb.shutdown().await;
}

/// A Desk360 attachment uploaded back unchanged is kept as a reference to the dataset (its bytes
/// are not held; see `Dataset::generated_file`): it must still be served byte for byte, and a
/// file with the same name but other bytes must be served as uploaded.
#[tokio::test]
async fn a_generated_file_uploaded_back_is_served_unchanged() {
    let sb = start(|c| c.deskie_limit = 100_000).await;
    let ds = sb.dataset();
    let url = ds
        .tickets
        .iter()
        .flat_map(|t| t.messages().iter())
        .flat_map(|m| ["images", "videos", "files", "others"].map(|g| m["attachments"][g].clone()))
        .filter_map(|g| g.as_array().cloned())
        .flatten()
        .filter(|a| a["size"].as_u64().is_some_and(|s| s < 2_000_000))
        .find_map(|a| a["url"].as_str().map(str::to_owned))
        .expect("a generated file under 2 MB");
    let name = url.rsplit('/').next().expect("name").to_owned();
    let original: Vec<u8> = ds
        .attachment_chunks(&url)
        .expect("known")
        .flatten()
        .collect();
    let mut changed = original.clone();
    changed[0] ^= 0xff;
    let (s, b) = post_multipart(
        &sb,
        "cases.json",
        &files_case("<p>see</p>"),
        &[
            ("case[attachments][0]", &name, &original),
            ("case[attachments][1]", &name, &changed),
        ],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let snap = sb.deskie_snapshot();
    let files = &snap.cases[0].messages[0].files;
    assert_eq!(files[0].sha256, sha256_hex(&original));
    assert_eq!(files[1].sha256, sha256_hex(&changed));
    assert_eq!(fetch(&files[0].url, Some(&sb)).await, (200, original));
    assert_eq!(fetch(&files[1].url, Some(&sb)).await, (200, changed));
    sb.shutdown().await;
}

#[tokio::test]
async fn upload_limits_name_the_file() {
    let sb = start(|c| c.deskie_limit = 100_000).await;
    let fields = [
        ("case[user_email]", "big@example.com"),
        ("case[subject]", "Big"),
        ("case[content_html]", "<p>big</p>"),
        ("case[created_at]", WHEN),
    ];
    let mb = 1024 * 1024;
    let over = vec![1u8; 25 * mb + 1];
    let small = vec![2u8; 10];
    let (s, b) = post_multipart(
        &sb,
        "cases.json",
        &fields,
        &[
            ("case[attachments][0]", "ok.txt", &small),
            ("case[attachments][1]", "huge.bin", &over),
        ],
    )
    .await;
    assert_eq!(s, 400);
    let why = b["errors"]["attachments"].as_str().expect("message");
    assert!(why.contains("huge.bin"), "{why}");
    let twenty = vec![3u8; 20 * mb];
    let (s, b) = post_multipart(
        &sb,
        "cases.json",
        &fields,
        &[
            ("case[attachments][0]", "one.bin", &twenty),
            ("case[attachments][1]", "two.bin", &twenty),
            ("case[attachments][2]", "three.bin", &twenty),
        ],
    )
    .await;
    assert_eq!(s, 400);
    let why = b["errors"]["attachments"].as_str().expect("message");
    assert!(why.contains("three.bin") && why.contains("50MB"), "{why}");
    assert!(sb.deskie_snapshot().cases.is_empty());
    // Exactly at the limits is fine.
    let at = vec![4u8; 25 * mb];
    let (s, b) = post_multipart(
        &sb,
        "cases.json",
        &fields,
        &[
            ("case[attachments][0]", "a.bin", &at),
            ("case[attachments][1]", "b.bin", &at),
        ],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let snap = sb.deskie_snapshot();
    assert_eq!(snap.cases[0].messages[0].files[1].size, 25 * mb as u64);
    sb.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 11. Faults: delayed writes, a 429 storm, another consumer spending evenly

#[tokio::test]
async fn delayed_apply_holds_the_write_past_the_client_timeout_then_applies_it() {
    let sb = start(|c| {
        c.deskie_limit = 100_000;
        c.faults.delayed_apply = Some(sandbox::DelayedApply {
            tickets: BTreeSet::from([(1, 1)]),
            share: 0.0,
            delay: Duration::from_millis(1500),
        });
    })
    .await;
    let creds = sb.credentials();
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .expect("client");
    let body = email_case("late@example.com", "<p>ref:p1t1m0</p>");
    let sent = bounded(
        impatient
            .post(format!("{}/api/cases.json", sb.deskie_url()))
            .basic_auth(&creds.deskie_staff_email, Some(&creds.deskie_api_key))
            .json(&body)
            .send(),
    )
    .await;
    assert!(
        sent.as_ref().is_err_and(reqwest::Error::is_timeout),
        "{sent:?}"
    );
    assert!(sb.deskie_snapshot().cases.is_empty(), "not applied yet");
    // Applied after the client gave up.
    bounded(async {
        while sb.deskie_snapshot().cases.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let journal = sb.journal();
    assert_eq!(journal.len(), 1);
    assert_eq!(
        (journal[0].status, journal[0].fault.as_deref()),
        (200, Some("delayed"))
    );
    // Only the first write carrying that ticket's content is held.
    let case = sb.deskie_snapshot().cases[0].case_id;
    let (s, _) = post(
        &sb,
        &format!("cases/{case}/messages.json"),
        json!({"message": {"staff_id": 3, "content_html": "<p>ref:p1t1m1</p>", "created_at": WHEN}}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(sb.journal()[1].fault, None);

    // `share`: other writes, drawn per request (1.0: every one); reads are never held.
    sb.set_faults(sandbox::Faults {
        delayed_apply: Some(sandbox::DelayedApply {
            tickets: BTreeSet::new(),
            share: 1.0,
            delay: Duration::from_millis(100),
        }),
        ..sandbox::Faults::default()
    });
    sb.clear_journal();
    let (s, b) = post(
        &sb,
        "cases.json",
        email_case("other@example.com", "<p>x</p>"),
    )
    .await;
    assert_eq!(s, 200, "a patient client gets the answer: {b}");
    let (s, _) = get(&sb, "cases.json").await;
    assert_eq!(s, 200);
    let faults: Vec<Option<String>> = sb.journal().into_iter().map(|e| e.fault).collect();
    assert_eq!(faults, [Some("delayed".to_owned()), None]);
    assert_eq!(sb.deskie_snapshot().cases.len(), 2);
    sb.shutdown().await;
}

#[tokio::test]
async fn a_429_storm_refuses_everything_with_its_retry_after() {
    let sb = start(|c| c.deskie_limit = 100).await;
    sb.set_faults(sandbox::Faults {
        deskie_429_retry_after: Some(Duration::from_secs(7)),
        ..sandbox::Faults::default()
    });
    for method in [reqwest::Method::GET, reqwest::Method::POST] {
        let rb =
            req(&sb, method.clone(), "cases.json").json(&email_case("s@example.com", "<p>x</p>"));
        let (s, b, h) = send(rb).await;
        assert_eq!(s, 429, "{method}: {b}");
        assert_eq!(h["retry_after"], "7");
        assert_eq!(h["api_calls_left"], "0");
    }
    assert!(sb.deskie_snapshot().cases.is_empty());
    assert!(
        sb.journal()
            .iter()
            .all(|e| e.status == 429 && e.fault.as_deref() == Some("rate_limited"))
    );
    // Nothing was charged: once the storm is over the whole budget is there.
    sb.set_faults(sandbox::Faults::default());
    let (s, _, h) = send(req(&sb, reqwest::Method::GET, "cases.json")).await;
    assert_eq!(s, 200);
    assert_eq!(h["api_calls_left"], "99");
    sb.shutdown().await;
}

#[tokio::test]
async fn another_consumer_spending_evenly_drains_the_window_as_time_passes() {
    let left = |h: &reqwest::header::HeaderMap| -> i64 {
        h["api_calls_left"]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("int")
    };
    // At the window start (default): half the budget is gone at once.
    let at_start = start(|c| {
        c.deskie_limit = 6000;
        c.faults.other_consumer_share = 0.5;
    })
    .await;
    let (_, _, h) = send(req(&at_start, reqwest::Method::GET, "cases.json")).await;
    assert_eq!(left(&h), 6000 - 3000 - 1);
    at_start.shutdown().await;

    // Spread: little is gone at first, and the budget drops faster than our own spend.
    let spread = start(|c| {
        c.deskie_limit = 6000;
        c.faults.other_consumer_share = 0.5;
        c.faults.other_consumer_spread = true;
    })
    .await;
    let (_, _, h) = send(req(&spread, reqwest::Method::GET, "cases.json")).await;
    let first = left(&h);
    assert!(
        first > 6000 - 3000 - 1,
        "the share is not spent at the start: {first}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, _, h) = send(req(&spread, reqwest::Method::GET, "cases.json")).await;
    let second = left(&h);
    // Our own spend between the two answers is 1 unit; 300 ms of a 60 s window is 15 units of
    // the other's 3000 (a window boundary cannot fall here: both requests are in the first one).
    assert!(
        first - second > 1,
        "the other consumer spent meanwhile: {first} → {second}"
    );
    spread.shutdown().await;
}
