//! The Deskie emulator against its vendor pages: weighted window and headers, the migration
//! recipe's 400s, customer_emailed, reopening, `^exact^` search, both note forms, faults
//! (drop-after-commit, 5xx, rejection, outage), attachments, multipart.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{WHEN, bounded, client, create, email_case, get, header, post, req, send, start};
use sandbox::Faults;
use serde_json::{Value, json};

#[tokio::test]
async fn weighted_window_429_exactly_when_a_request_would_pass_and_headers_after_each() {
    let sb = start(|c| c.deskie_limit = 7).await;
    let steps: [(reqwest::Method, u16, u32); 7] = [
        (reqwest::Method::GET, 200, 6),
        (reqwest::Method::POST, 200, 4),
        (reqwest::Method::POST, 200, 2),
        (reqwest::Method::POST, 200, 0),
        (reqwest::Method::GET, 429, 0),
        (reqwest::Method::POST, 429, 0),
        (reqwest::Method::GET, 429, 0),
    ];
    for (i, (method, status, left)) in steps.into_iter().enumerate() {
        let rb = req(&sb, method.clone(), "cases.json");
        let rb = if method == reqwest::Method::POST {
            rb.json(&email_case(&format!("u{i}@example.com"), "<p>x</p>"))
        } else {
            rb
        };
        let resp = bounded(rb.send()).await.expect("send");
        assert_eq!(resp.status().as_u16(), status, "step {i}");
        assert_eq!(header(&resp, "rate_limit_per_minute"), "7");
        assert_eq!(
            header(&resp, "api_calls_left"),
            left.to_string(),
            "step {i}"
        );
        let retry: u64 = header(&resp, "retry_after")
            .parse()
            .expect("integer seconds");
        assert!(retry <= 60);
    }
    // A write (2) refused when 1 unit is left, while a read (1) still fits.
    let sb2 = start(|c| c.deskie_limit = 3).await;
    let (s, _) = post(&sb2, "cases.json", email_case("a@example.com", "<p>a</p>")).await;
    assert_eq!(s, 200);
    let (s, _) = post(&sb2, "cases.json", email_case("b@example.com", "<p>b</p>")).await;
    assert_eq!(s, 429, "2 units would pass the window with 1 left");
    let (s, _) = get(&sb2, "cases.json").await;
    assert_eq!(
        s, 200,
        "the refused write consumed nothing; a read still fits"
    );
    assert_eq!(sb2.deskie_snapshot().cases.len(), 1);
    let costs: Vec<u32> = sb.journal().iter().map(|e| e.cost).collect();
    assert_eq!(costs, vec![1, 2, 2, 2, 1, 2, 1]);
    sb.shutdown().await;
    sb2.shutdown().await;
}

#[tokio::test]
async fn other_consumer_spends_part_of_each_short_window() {
    let sb = start(|c| {
        c.deskie_limit = 10;
        c.window = Duration::from_millis(500);
        c.faults.other_consumer_share = 0.5;
    })
    .await;
    let (_, _, h) = send(req(&sb, reqwest::Method::GET, "cases.json")).await;
    let left: u32 = h["api_calls_left"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("int");
    assert!(left == 4, "10 - 5 (other) - 1 = 4, got {left}");
    let retry = h["retry_after"].to_str().expect("ascii").to_owned();
    assert!(
        retry.contains('.'),
        "millisecond precision for short windows: {retry}"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn recipe_violations_are_400_with_the_field_named() {
    let sb = start(|c| c.deskie_limit = 100_000).await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"case": {"subject": "s", "content_html": "x", "created_at": WHEN}}),
            "user_email",
        ),
        (
            json!({"case": {"user_email": "a@x.io", "subject": "s", "content": "plain only", "created_at": WHEN}}),
            "content_html",
        ),
        (
            json!({"case": {"user_email": "a@x.io", "subject": "", "content_html": "x", "created_at": WHEN}}),
            "subject",
        ),
        (
            json!({"case": {"user_email": "a@x.io", "content_html": "x", "created_at": WHEN}}),
            "subject",
        ),
        (
            json!({"case": {"user_email": "a@x.io", "subject": "s", "content_html": "x"}}),
            "created_at",
        ),
        (
            json!({"case": {"user_email": "a@x.io", "subject": "s", "content_html": "x", "created_at": "2021-01-02 03:04:05"}}),
            "created_at",
        ),
        (
            json!({"case": {"user_email": "a@x.io", "subject": "s", "content_html": "x", "created_at": WHEN, "initiator_id": 101}}),
            "case_email_id",
        ),
        (
            json!({"case": {"user_phone": "+100", "subject": "s", "content_html": "x", "created_at": WHEN}}),
            "content",
        ),
        (
            json!({"case": {"user_custom_id": "c1", "subject": "s", "content": "x", "created_at": WHEN}}),
            "user_custom_channel",
        ),
        (
            json!({"case": {"user_email": "a@x.io", "subject": "s", "content_html": "x", "created_at": WHEN, "status": "pending"}}),
            "status",
        ),
        (json!({"nope": {}}), "case"),
    ];
    for (body, field) in cases {
        let (s, b) = post(&sb, "cases.json", body.clone()).await;
        assert_eq!(s, 400, "{body}");
        assert!(b["errors"][field].is_string(), "{body} -> {b}");
    }
    assert!(sb.deskie_snapshot().cases.is_empty());

    // Valid forms of each channel.
    let email = create(&sb, email_case("cust@example.com", "<p>hi</p>")).await;
    let agent = create(
        &sb,
        json!({"case": {"user_email": "cust@example.com", "subject": "s", "content_html": "<p>o</p>",
            "created_at": "2014-05-04T21:15:17Z", "initiator_id": 101, "case_email_id": -1, "do_not_send_email": true}}),
    )
    .await;
    assert_eq!(agent["user_id"], email["user_id"], "existing user reused");
    create(&sb, json!({"case": {"user_phone": "+90 555", "subject": "call", "content": "rang", "created_at": WHEN}})).await;
    create(&sb, json!({"case": {"user_custom_id": "c1", "user_custom_channel": "481", "subject": "s", "content": "x", "created_at": WHEN}})).await;
    let snap = sb.deskie_snapshot();
    let channels: Vec<&str> = snap.cases.iter().map(|c| c.channel.as_str()).collect();
    assert_eq!(channels, vec!["email", "email", "calls", "custom:481"]);
    assert_eq!(snap.users.len(), 3);
    assert_eq!(snap.cases[1].initiator_id, Some(101));
    assert_eq!(snap.cases[1].messages[0].staff_id, 101);
    assert_eq!(snap.cases[0].created_at, "2014-05-04T21:15:17Z");
    assert_eq!(email["created_at"], WHEN, "answered as the pages show it");
    assert_eq!(email["status"], "open");

    // Responses and notes.
    let id = email["case_id"].as_i64().expect("id");
    let user = email["user_id"].as_i64().expect("user");
    let msgs = format!("cases/{id}/messages.json");
    let bad: Vec<(Value, &str)> = vec![
        (
            json!({"message": {"content_html": "x", "created_at": WHEN}}),
            "user_id",
        ),
        (
            json!({"message": {"user_id": user + 1, "content_html": "x", "created_at": WHEN}}),
            "user_id",
        ),
        (
            json!({"message": {"user_id": user, "created_at": WHEN}}),
            "content_html",
        ),
        (
            json!({"message": {"user_id": user, "content_html": "x"}}),
            "created_at",
        ),
        (
            json!({"message": {"staff_id": 7, "content_html": "x", "created_at": "yesterday"}}),
            "created_at",
        ),
    ];
    for (body, field) in bad {
        let (s, b) = post(&sb, &msgs, body.clone()).await;
        assert_eq!(s, 400, "{body}");
        assert!(b["errors"][field].is_string(), "{body} -> {b}");
    }
    let (s, b) = post(
        &sb,
        &format!("cases/{id}/note.json"),
        json!({"note": {"content": "x"}}),
    )
    .await;
    assert_eq!(s, 400);
    assert!(b["errors"]["staff_id"].is_string());
    let (s, b) = post(
        &sb,
        &format!("cases/{id}/note.json"),
        json!({"note": {"staff_id": 3}}),
    )
    .await;
    assert_eq!(s, 400);
    assert!(b["errors"]["content"].is_string());
    let (s, _) = post(
        &sb,
        "cases/99999/messages.json",
        json!({"message": {"staff_id": 1, "content": "x", "created_at": WHEN}}),
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = get(&sb, "cases/99999.json").await;
    assert_eq!(s, 404);
    sb.shutdown().await;
}

#[tokio::test]
async fn customer_emailed_reopen_and_both_note_forms() {
    let sb = start(|c| c.deskie_limit = 100_000).await;
    let case = create(
        &sb,
        json!({"case": {"user_email": "c@example.com", "subject": "s", "content_html": "<p>1</p>",
            "created_at": WHEN, "status": "closed"}}),
    )
    .await;
    assert_eq!(case["status"], "closed");
    let id = case["case_id"].as_i64().expect("id");
    let user = case["user_id"].as_i64().expect("user");
    let msgs = format!("cases/{id}/messages.json");

    let (s, _) = post(&sb, &msgs, json!({"message": {"staff_id": 5, "content_html": "<p>2</p>", "created_at": "Mon, 05 May 2014 00:16:00 +0300", "do_not_send_email": true}})).await;
    assert_eq!(s, 200);
    let (s, _) = post(&sb, &msgs, json!({"message": {"staff_id": 5, "content_html": "<p>3</p>", "created_at": "Mon, 05 May 2014 00:17:00 +0300"}})).await;
    assert_eq!(s, 200);
    assert_eq!(
        sb.deskie_snapshot().cases[0].status,
        "closed",
        "agent messages do not reopen"
    );
    let (s, m) = post(&sb, &msgs, json!({"message": {"user_id": user, "content_html": "<p>4</p>", "created_at": "Mon, 05 May 2014 00:18:00 +0300"}})).await;
    assert_eq!(s, 200);
    assert_eq!(m["message"]["user_id"], user);
    let (_, c) = get(&sb, &format!("cases/{id}.json")).await;
    assert_eq!(
        c["case"]["status"], "open",
        "a customer message reopens a closed case"
    );

    // Both documented note payloads (and staff_id inside "note").
    for body in [
        json!({"note": {"note_staff_id": 5, "content": "n1", "created_at": "Mon, 05 May 2014 00:19:00 +0300"}}),
        json!({"message": {"note_staff_id": 5, "content": "n2"}}),
        json!({"note": {"staff_id": "5", "content": "n3"}}),
    ] {
        let (s, b) = post(&sb, &format!("cases/{id}/note.json"), body).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["message"]["note"], true);
    }
    let snap = sb.deskie_snapshot();
    assert_eq!(
        snap.customer_emailed, 1,
        "only the message sent without do_not_send_email"
    );
    let case = &snap.cases[0];
    let contents: Vec<String> = case
        .messages
        .iter()
        .map(|m| {
            if m.content_html.is_empty() {
                m.content.clone()
            } else {
                m.content_html.clone()
            }
        })
        .collect();
    assert_eq!(
        contents[..5],
        ["<p>1</p>", "<p>2</p>", "<p>3</p>", "<p>4</p>", "n1"]
    );
    assert_eq!(case.messages.iter().filter(|m| m.note).count(), 3);
    assert!(case.messages[2].customer_emailed);

    // Messages list: numbered object, total_count, paging.
    let (_, list) = get(&sb, &msgs).await;
    assert_eq!(list["total_count"], 7);
    assert_eq!(list["0"]["message"]["content_html"], "<p>1</p>");
    let (_, page) = get(&sb, &format!("{msgs}?page=2&limit=2")).await;
    assert_eq!(page["0"]["message"]["content_html"], "<p>3</p>");
    assert!(page.get("2").is_none());

    // Agent-initiated case without do_not_send_email: the customer would have been emailed.
    create(
        &sb,
        json!({"case": {"user_email": "d@example.com", "subject": "s", "content_html": "<p>o</p>",
            "created_at": WHEN, "initiator_id": 9, "case_email_id": -1}}),
    )
    .await;
    assert_eq!(sb.deskie_snapshot().customer_emailed, 2);
    sb.shutdown().await;
}

#[tokio::test]
async fn list_filter_with_exact_search_sort_and_update() {
    let sb = start(|c| c.deskie_limit = 100_000).await;
    for (i, src) in ["desk360:11:1", "desk360:11:12", "desk360:22:1"]
        .iter()
        .enumerate()
    {
        create(
            &sb,
            json!({"case": {"user_email": format!("u{i}@example.com"), "subject": "s", "content_html": "x",
                "created_at": format!("2020-01-0{}T00:00:00Z", i + 1), "custom_fields": {"cf_900": src}}}),
        )
        .await;
    }
    let (s, exact) = get(&sb, "cases.json?custom_fields[cf_900]=%5Edesk360:11:1%5E").await;
    assert_eq!(s, 200);
    assert_eq!(exact["total_count"], 1);
    assert_eq!(
        exact["0"]["case"]["custom_fields"]["cf_900"],
        "desk360:11:1"
    );
    let (_, sub) = get(&sb, "cases.json?custom_fields[cf_900]=desk360:11:1").await;
    assert_eq!(
        sub["total_count"], 2,
        "without ^…^ it is a substring search"
    );
    let (_, suffix) = get(&sb, "cases.json?custom_fields[cf_900]=:1%5E").await;
    assert_eq!(suffix["total_count"], 2);
    let (_, asc) = get(&sb, "cases.json?sort=created_at_asc&limit=2&page=2").await;
    assert_eq!(asc["total_count"], 3);
    assert_eq!(asc["0"]["case"]["custom_fields"]["cf_900"], "desk360:22:1");
    assert!(asc.get("1").is_none());
    let (_, ranged) = get(
        &sb,
        "cases.json?from_time=2020-01-02T00:00:00Z&to_time=2020-01-02T23:00:00Z",
    )
    .await;
    assert_eq!(ranged["total_count"], 1);
    let (s, _) = get(&sb, "cases.json?page=501").await;
    assert_eq!(s, 400);

    let id = exact["0"]["case"]["case_id"].as_i64().expect("id");
    let (s, b, _) = send(req(&sb, reqwest::Method::PUT, &format!("cases/{id}.json")).json(
        &json!({"case": {"status": "waiting", "priority": "critical", "staff_id": 4, "add_labels": [7, 8], "custom_fields": {"cf_1": "v"}}}),
    ))
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["case"]["status"], "waiting");
    assert_eq!(b["case"]["priority"], "critical");
    assert_eq!(b["case"]["labels"], json!([7, 8]));
    assert_eq!(b["case"]["custom_fields"]["cf_900"], "desk360:11:1");
    let (s, _, _) = send(
        req(&sb, reqwest::Method::PUT, &format!("cases/{id}.json"))
            .json(&json!({"case": {"priority": "urgent"}})),
    )
    .await;
    assert_eq!(s, 400);

    let (_, users) = get(&sb, "users.json").await;
    assert_eq!(users["total_count"], 3);
    let uid = users["0"]["user"]["user_id"].as_i64().expect("uid");
    let (s, u) = get(&sb, &format!("users/{uid}.json")).await;
    assert_eq!(s, 200);
    assert_eq!(u["user"]["user_id"], uid);
    sb.shutdown().await;
}

#[tokio::test]
async fn drop_after_commit_applies_the_write_and_the_client_sees_a_connection_error() {
    let sb = start(|c| {
        c.deskie_limit = 100_000;
        c.faults.drop_after_commit_rate = 1.0;
    })
    .await;
    let result = bounded(
        req(&sb, reqwest::Method::POST, "cases.json")
            .json(&email_case("lost@example.com", "<p>lost</p>"))
            .send(),
    )
    .await;
    let error = result.expect_err("no response must reach the client");
    assert!(
        error.status().is_none(),
        "a connection error, not a status: {error:?}"
    );
    assert!(!error.is_timeout(), "{error:?}");
    eprintln!("client saw: {error:?}");
    let snap = sb.deskie_snapshot();
    assert_eq!(snap.cases.len(), 1, "the write was applied");
    let journal = sb.journal();
    assert_eq!(journal.len(), 1, "the client did not retry on its own");
    assert_eq!(journal[0].status, 0);
    assert_eq!(journal[0].fault.as_deref(), Some("dropped"));
    // Reads are never dropped.
    let (s, list) = get(&sb, "cases.json").await;
    assert_eq!(s, 200);
    assert_eq!(list["total_count"], 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn server_errors_and_outage_do_not_apply() {
    let sb = start(|c| {
        c.deskie_limit = 100_000;
        c.faults.server_error_rate = 1.0;
    })
    .await;
    for _ in 0..5 {
        let (s, _) = post(&sb, "cases.json", email_case("x@example.com", "<p>x</p>")).await;
        assert!([500, 502, 503].contains(&s), "{s}");
    }
    assert!(sb.deskie_snapshot().cases.is_empty());
    sb.set_faults(Faults {
        deskie_down: true,
        ..Faults::default()
    });
    let (s, _, h) = send(req(&sb, reqwest::Method::GET, "cases.json")).await;
    assert_eq!(s, 503);
    assert!(h.get("api_calls_left").is_some(), "headers on every answer");
    sb.set_faults(Faults::default());
    let (s, _) = post(&sb, "cases.json", email_case("x@example.com", "<p>x</p>")).await;
    assert_eq!(s, 200);
    sb.shutdown().await;
}

#[tokio::test]
async fn rejected_tickets_and_messages_until_switched_off() {
    let sb = start(|c| c.deskie_limit = 100_000).await;
    let t = sb
        .dataset()
        .tickets
        .iter()
        .find(|t| t.messages().len() >= 3)
        .expect("a ticket with 3 messages")
        .clone();
    let body = |i: usize| {
        t.messages()[i]["message"]
            .as_str()
            .expect("html")
            .to_owned()
    };
    sb.set_faults(Faults {
        reject_tickets: BTreeSet::from([(t.product_id, t.ticket_id)]),
        ..Faults::default()
    });
    let (s, b) = post(&sb, "cases.json", email_case("r@example.com", &body(0))).await;
    assert_eq!(s, 400, "{b}");
    assert!(b["errors"].is_object());
    assert_eq!(sb.journal()[0].fault.as_deref(), Some("rejected"));

    sb.set_faults(Faults {
        reject_messages: BTreeSet::from([(t.product_id, t.ticket_id, 2)]),
        ..Faults::default()
    });
    let case = create(&sb, email_case("r@example.com", &body(0))).await;
    let id = case["case_id"].as_i64().expect("id");
    let (s, _) = post(
        &sb,
        &format!("cases/{id}/note.json"),
        json!({"note": {"staff_id": 1, "content": body(1)}}),
    )
    .await;
    assert_eq!(s, 200, "message 1 is not rejected");
    let (s, _) = post(&sb, &format!("cases/{id}/messages.json"), json!({"message": {"staff_id": 1, "content_html": body(2), "created_at": WHEN, "do_not_send_email": true}})).await;
    assert_eq!(s, 400, "message 2 is");
    sb.set_faults(Faults::default());
    let (s, _) = post(&sb, &format!("cases/{id}/messages.json"), json!({"message": {"staff_id": 1, "content_html": body(2), "created_at": WHEN, "do_not_send_email": true}})).await;
    assert_eq!(s, 200, "accepted once switched off");
    assert_eq!(
        sb.deskie_snapshot()
            .cases_of(t.product_id, t.ticket_id)
            .len(),
        1
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn attachment_limits_and_multipart() {
    let sb = start(|c| {
        c.deskie_limit = 100_000;
        c.tickets = 400;
    })
    .await;
    let all: Vec<(String, u64)> = sb
        .dataset()
        .tickets
        .iter()
        .flat_map(|t| t.messages().to_vec())
        .flat_map(|m| {
            ["images", "videos", "files", "others"]
                .iter()
                .flat_map(|g| m["attachments"][*g].as_array().cloned().unwrap_or_default())
                .collect::<Vec<_>>()
        })
        .map(|a| {
            (
                a["url"].as_str().expect("url").to_owned(),
                a["size"].as_u64().expect("size"),
            )
        })
        .collect();
    let big = all
        .iter()
        .find(|(_, s)| *s > 25 * 1024 * 1024)
        .expect("a >25 MB attachment");
    let small = all
        .iter()
        .find(|(_, s)| *s < 1024 * 1024)
        .expect("a small attachment");
    assert!(
        big.0.starts_with(&sb.desk360_url()),
        "attachment URLs point at the Desk360 sandbox"
    );
    let mut body = email_case("att@example.com", "<p>a</p>");
    body["case"]["attachment_urls"] = json!([big.0]);
    let (s, b) = post(&sb, "cases.json", body.clone()).await;
    assert_eq!(s, 400);
    assert!(b["errors"]["attachments"].is_string());
    body["case"]["attachment_urls"] = json!([small.0]);
    let (s, _) = post(&sb, "cases.json", body).await;
    assert_eq!(s, 200);
    assert_eq!(
        sb.deskie_snapshot().cases[0].messages[0].attachment_urls,
        vec![small.0.clone()]
    );

    // reqwest's multipart feature is not enabled in the workspace: build the body by hand.
    let boundary = "sandbox-boundary-7d1";
    let mut form = Vec::new();
    for (name, value) in [
        ("case[user_email]", "mp@example.com"),
        ("case[subject]", "Contract"),
        ("case[content_html]", "<p>docs</p>"),
        ("case[created_at]", WHEN),
        ("case[custom_fields][cf_44]", "3"),
    ] {
        form.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    form.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"case[attachments][0]\"; filename=\"a.pdf\"\r\nContent-Type: application/pdf\r\n\r\n").as_bytes(),
    );
    form.extend_from_slice(&[1u8; 1000]);
    form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let (s, b, _) = send(
        req(&sb, reqwest::Method::POST, "cases.json")
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(form),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["case"]["custom_fields"]["cf_44"], "3");
    let snap = sb.deskie_snapshot();
    assert_eq!(
        snap.cases[1].messages[0].attachment_urls,
        vec!["multipart:a.pdf".to_owned()]
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn unauthenticated_requests_are_401_and_not_charged() {
    let sb = start(|c| c.deskie_limit = 5).await;
    let resp = bounded(
        client()
            .get(format!("{}/api/cases.json", sb.deskie_url()))
            .send(),
    )
    .await
    .expect("send");
    assert_eq!(resp.status(), 401);
    assert_eq!(header(&resp, "api_calls_left"), "5");
    let resp = bounded(
        client()
            .get(format!("{}/api/cases.json", sb.deskie_url()))
            .basic_auth("importer@acme.example", Some("wrong"))
            .send(),
    )
    .await
    .expect("send");
    assert_eq!(resp.status(), 401);
    let (s, _, h) = send(req(&sb, reqwest::Method::GET, "cases.json")).await;
    assert_eq!(s, 200);
    assert_eq!(h["api_calls_left"], "4");
    sb.shutdown().await;
}

#[tokio::test]
async fn concurrent_requests_never_overspend_the_window() {
    let sb = start(|c| c.deskie_limit = 41).await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let rb = req(&sb, reqwest::Method::POST, "cases.json")
            .json(&email_case("same@example.com", &format!("<p>{i}</p>")));
        tasks.push(tokio::spawn(async move {
            rb.send().await.expect("send").status().as_u16()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match bounded(t).await.expect("task") {
            200 => ok += 1,
            429 => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(ok, 20, "41 units hold exactly 20 writes");
    let snap = sb.deskie_snapshot();
    assert_eq!(snap.cases.len(), 20);
    assert_eq!(snap.users.len(), 1, "one user, reused by every case");
    let (s, _) = get(&sb, "cases.json").await;
    assert_eq!(s, 200, "the last unit still serves a read");
    let (s, _) = get(&sb, "cases.json").await;
    assert_eq!(s, 429);
    sb.shutdown().await;
}
