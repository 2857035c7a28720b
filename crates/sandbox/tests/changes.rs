//! Changing the Desk360 account while the servers run (the switch-over day a delta run is tested
//! with): new messages and notes carry their `ref:` marker and a later time, status and priority
//! changes reach the list and the detail, the changed ticket moves to the end of an `order=asc`
//! listing, earlier snapshots stay as they were, and the reject faults see the new messages.

mod common;

use std::collections::BTreeSet;

use common::{bounded, client, desk360_get, start, start_listing};
use sandbox::{Faults, Sandbox, generate, parse_refs};
use serde_json::{Value, json};

async fn desk360(sb: &Sandbox, path: &str) -> (u16, Value) {
    let resp = desk360_get(sb, &format!("{}/v1/{path}", sb.desk360_url())).await;
    let status = resp.status().as_u16();
    (status, bounded(resp.json()).await.unwrap_or(Value::Null))
}

/// Every ticket id of a product in `order=asc`, following the `page` numbers.
async fn asc_ids(sb: &Sandbox, product: i64) -> Vec<i64> {
    let mut ids = Vec::new();
    for page in 1.. {
        let (s, body) = desk360(
            sb,
            &format!("products/{product}/tickets?order=asc&page={page}"),
        )
        .await;
        assert_eq!(s, 200);
        let items = body.as_array().expect("array").clone();
        ids.extend(items.iter().map(|t| t["id"].as_i64().expect("id")));
        if items.len() < 20 {
            return ids;
        }
    }
    unreachable!()
}

#[test]
fn dataset_changes_keep_markers_ids_and_order() {
    let mut ds = generate(5, 2, 80);
    let before = ds.clone();
    assert_eq!(ds, generate(5, 2, 80), "generation stays deterministic");
    let max_id = ds
        .tickets
        .iter()
        .flat_map(|t| t.messages())
        .map(|m| m["id"].as_i64().expect("id"))
        .max()
        .expect("messages");
    let latest = ds
        .tickets
        .iter()
        .map(|t| t.updated_at.clone())
        .max()
        .expect("tickets");
    let t = ds.tickets[10].clone();
    let n = t.messages().len();

    let reply = ds
        .append_message(t.product_id, t.ticket_id, 0, false, "<p>Any news?</p>")
        .expect("ticket exists");
    let note = ds
        .append_message(t.product_id, t.ticket_id, 72, true, "<p>Internal</p>")
        .expect("ticket exists");
    assert!(
        reply > max_id && note == reply + 1,
        "new ids are fresh and increasing"
    );
    let now = ds
        .ticket(t.product_id, t.ticket_id)
        .expect("ticket")
        .clone();
    let msgs = now.messages();
    assert_eq!(msgs.len(), n + 2);
    assert_eq!(msgs[n]["id"], json!(reply));
    assert_eq!(msgs[n]["agent_id"], json!(0));
    assert_eq!(msgs[n]["type"], json!(0));
    assert_eq!(msgs[n + 1]["agent_id"], json!(72));
    assert_eq!(msgs[n + 1]["type"], json!(6), "a note is Desk360 type 6");
    let html = msgs[n]["message"].as_str().expect("html");
    assert!(html.starts_with("<p>Any news?</p>"));
    assert_eq!(parse_refs(html), vec![(t.product_id, t.ticket_id, n)]);
    assert_eq!(
        parse_refs(msgs[n + 1]["message"].as_str().expect("html")),
        vec![(t.product_id, t.ticket_id, n + 1)]
    );
    // Later than anything generated, increasing, and the same everywhere it appears.
    let (r_at, n_at) = (
        msgs[n]["created_at"].as_str().expect("ts"),
        msgs[n + 1]["created_at"].as_str().expect("ts"),
    );
    assert!(r_at > latest.as_str() && n_at > r_at);
    assert_eq!(now.updated_at, n_at);
    assert_eq!(now.detail["updated_at"], json!(n_at));
    assert_eq!(now.list["updated_at"], json!(n_at));
    assert!(
        now.list["last_message"]
            .as_str()
            .expect("last")
            .starts_with("<p>Any news?</p>"),
        "a reply is the list's last message, a note is not"
    );
    assert_eq!(
        ds.product_tickets_asc(t.product_id)
            .last()
            .map(|x| x.ticket_id),
        Some(t.ticket_id),
        "the changed ticket is last in ascending order"
    );

    let u = ds.tickets[20].clone();
    assert!(ds.set_status(u.product_id, u.ticket_id, 2));
    assert!(ds.set_priority(u.product_id, u.ticket_id, 3));
    let now_u = ds.ticket(u.product_id, u.ticket_id).expect("ticket");
    assert_eq!((now_u.status, now_u.priority), (2, 3));
    assert_eq!(now_u.detail["status"], json!(2));
    assert_eq!(now_u.list["status"], json!(2));
    assert_eq!(now_u.detail["priority"], json!(3));
    assert_eq!(now_u.list["priority"], json!(3));
    assert_eq!(now_u.messages().len(), u.messages().len());
    assert!(now_u.updated_at > now.updated_at);

    // Refusals change nothing.
    let snapshot = ds.clone();
    assert_eq!(ds.append_message(u.product_id, 1, 0, false, "x"), None);
    assert_eq!(
        ds.append_message(u.product_id, u.ticket_id, 0, true, "x"),
        None,
        "a note needs an agent"
    );
    assert!(!ds.set_status(999, u.ticket_id, 1));
    assert!(!ds.set_priority(999, u.ticket_id, 1));
    assert_eq!(ds, snapshot);
    assert_ne!(ds, before);
    // Other tickets are untouched.
    for (a, b) in ds.tickets.iter().zip(&before.tickets) {
        if a.ticket_id != t.ticket_id && a.ticket_id != u.ticket_id {
            assert_eq!(a, b);
        }
    }
}

#[tokio::test]
async fn changes_reach_the_running_desk360_emulator() {
    let sb = start_listing(150).await;
    let old = sb.dataset();
    let product = old.products[0].id;
    let ids = asc_ids(&sb, product).await;
    assert!(ids.len() > 40, "several pages");
    // A ticket from the first page (so it moves the farthest).
    let t = old.ticket(product, ids[1]).expect("ticket").clone();
    let n = t.messages().len();

    let new_id = sb
        .append_message(product, t.ticket_id, 74, false, "<p>Done, closing.</p>")
        .expect("ticket exists");
    assert!(sb.set_ticket_status(product, t.ticket_id, 1));
    assert!(sb.set_ticket_priority(product, t.ticket_id, 2));
    assert_eq!(sb.append_message(product, 1, 0, false, "x"), None);
    assert!(!sb.set_ticket_status(product, 1, 1));

    // The snapshot taken before is unchanged; a new one has the change.
    assert_eq!(
        old.ticket(product, t.ticket_id)
            .expect("t")
            .messages()
            .len(),
        n
    );
    let now = sb.dataset();
    let changed = now.ticket(product, t.ticket_id).expect("ticket");
    assert_eq!(changed.messages().len(), n + 1);
    assert_eq!((changed.status, changed.priority), (1, 2));

    // Detail over HTTP.
    let (s, detail) = desk360(&sb, &format!("products/{product}/tickets/{}", t.ticket_id)).await;
    assert_eq!(s, 200);
    let msgs = detail["messages"].as_array().expect("messages");
    assert_eq!(msgs.len(), n + 1);
    assert_eq!(msgs[n]["id"], json!(new_id));
    assert_eq!(msgs[n]["agent_id"], json!(74));
    assert_eq!(detail["status"], json!(1));
    assert_eq!(detail["priority"], json!(2));
    assert_eq!(detail["updated_at"], json!(changed.updated_at));
    assert_eq!(
        parse_refs(msgs[n]["message"].as_str().expect("html")),
        vec![(product, t.ticket_id, n)]
    );

    // Listing: the changed ticket moved to the end of the ascending order, nothing else moved.
    let after = asc_ids(&sb, product).await;
    assert_eq!(after.last(), Some(&t.ticket_id));
    let mut expect: Vec<i64> = ids.iter().copied().filter(|&i| i != t.ticket_id).collect();
    expect.push(t.ticket_id);
    assert_eq!(after, expect);
    let (_, desc) = desk360(&sb, &format!("products/{product}/tickets")).await;
    assert_eq!(desc[0]["id"], json!(t.ticket_id), "newest first by default");
    assert_eq!(desc[0]["status"], json!(1));
    assert_eq!(desc[0]["priority"], json!(2));
    // Filters use the new status.
    let (_, resolved) = desk360(
        &sb,
        &format!("products/{product}/tickets?status=1&id={}", t.ticket_id),
    )
    .await;
    assert_eq!(resolved.as_array().map(Vec::len), Some(1));
    sb.shutdown().await;
}

#[tokio::test]
async fn reject_faults_see_appended_messages() {
    let sb = start(|c| c.deskie_limit = 100_000).await;
    let t = sb.dataset().tickets[5].clone();
    let n = t.messages().len();
    sb.append_message(t.product_id, t.ticket_id, 0, false, "<p>Hello again</p>")
        .expect("ticket exists");
    let html = sb
        .dataset()
        .ticket(t.product_id, t.ticket_id)
        .expect("t")
        .messages()[n]["message"]
        .as_str()
        .expect("html")
        .to_owned();
    sb.set_faults(Faults {
        reject_messages: BTreeSet::from([(t.product_id, t.ticket_id, n)]),
        ..Faults::default()
    });
    let creds = sb.credentials();
    let post = |body: Value| {
        client()
            .post(format!("{}/api/cases.json", sb.deskie_url()))
            .basic_auth(&creds.deskie_staff_email, Some(&creds.deskie_api_key))
            .json(&body)
            .send()
    };
    let case = |content: &str| {
        json!({"case": {"user_email": "again@example.com", "subject": "Help",
            "content_html": content, "created_at": "Mon, 05 May 2014 00:15:17 +0300"}})
    };
    let resp = bounded(post(case(&html))).await.expect("send");
    assert_eq!(resp.status(), 400, "the new message's marker is rejected");
    let first = t.messages()[0]["message"]
        .as_str()
        .expect("html")
        .to_owned();
    let resp = bounded(post(case(&first))).await.expect("send");
    assert_eq!(resp.status(), 200, "the ticket's other messages are not");
    assert_eq!(
        sb.deskie_snapshot()
            .cases_of(t.product_id, t.ticket_id)
            .len(),
        1
    );
    sb.shutdown().await;
}
