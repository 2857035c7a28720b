//! The Desk360 emulator against its vendor page: paging and the Link header, filters, error
//! bodies, per-IP window (invalid requests count), login, source-side faults.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{
    bounded, client, desk360_detail, desk360_get, header, start, start_listing, tickets_url,
};
use sandbox::{Faults, Server};
use serde_json::Value;

/// Follows Link headers from `first`, checking 20 a page and absolute links; returns all ids and
/// the links seen.
async fn walk(sb: &sandbox::Sandbox, first: String) -> (Vec<Value>, Vec<String>) {
    let mut url = first;
    let mut items = Vec::new();
    let mut links = Vec::new();
    loop {
        let resp = desk360_get(sb, &url).await;
        assert_eq!(resp.status(), 200, "{url}");
        let link = resp
            .headers()
            .get("link")
            .map(|v| v.to_str().expect("ascii").to_owned());
        let page: Vec<Value> = bounded(resp.json()).await.expect("json array");
        match link {
            Some(link) => {
                assert_eq!(page.len(), 20, "every page but the last holds 20");
                let inner = link
                    .strip_prefix('<')
                    .and_then(|l| l.strip_suffix(">; rel=next"))
                    .unwrap_or_else(|| panic!("bad link {link}"));
                assert!(
                    inner.starts_with(&sb.desk360_url()),
                    "absolute link: {inner}"
                );
                links.push(inner.to_owned());
                url = inner.to_owned();
                items.extend(page);
            }
            None => {
                assert!(page.len() <= 20);
                items.extend(page);
                return (items, links);
            }
        }
    }
}

#[tokio::test]
async fn pages_of_20_with_absolute_link_on_every_page_but_the_last() {
    let sb = start_listing(300).await;
    let product = sb.dataset().products[0].id;
    let expected: Vec<i64> = sb
        .dataset()
        .product_tickets_asc(product)
        .rev()
        .map(|t| t.ticket_id)
        .collect();
    assert!(expected.len() > 60, "enough tickets for several pages");
    let (items, links) = walk(&sb, tickets_url(&sb, product)).await;
    let ids: Vec<i64> = items
        .iter()
        .map(|t| t["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids, expected, "default order: updated_at descending");
    assert_eq!(links.len(), expected.len().div_ceil(20) - 1);
    // List objects carry last_message and no messages.
    assert!(
        items
            .iter()
            .all(|t| t.get("last_message").is_some() && t.get("messages").is_none())
    );

    // Ascending, filtered: the filter and the order are honoured and kept in every link.
    let url = format!(
        "{}/v1/products/{product}/tickets?order=asc&status=1&start_date=2021-06-01",
        sb.desk360_url()
    );
    let (items, links) = walk(&sb, url).await;
    let expected: Vec<i64> = sb
        .dataset()
        .product_tickets_asc(product)
        .filter(|t| t.status == 1 && &t.created_at[..10] >= "2021-06-01")
        .map(|t| t.ticket_id)
        .collect();
    let ids: Vec<i64> = items
        .iter()
        .map(|t| t["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids, expected);
    assert!(!links.is_empty());
    for l in &links {
        assert!(
            l.contains("order=asc")
                && l.contains("status=1")
                && l.contains("start_date=2021-06-01"),
            "{l}"
        );
    }
    let updated: Vec<&str> = items
        .iter()
        .map(|t| t["updated_at"].as_str().expect("ts"))
        .collect();
    assert!(
        updated.windows(2).all(|w| w[0] <= w[1]),
        "ascending by updated_at"
    );

    // The page's searches: id, email (substring), platform; logs.
    let ds = sb.dataset();
    let t = ds.product_tickets_asc(product).nth(3).expect("ticket");
    let resp = desk360_get(
        &sb,
        &format!(
            "{}/v1/products/{product}/tickets?id={}",
            sb.desk360_url(),
            t.ticket_id
        ),
    )
    .await;
    let found: Vec<Value> = resp.json().await.expect("json");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0], t.list);
    if let Some(email) = t.list["email"].as_str() {
        let local = email.split('@').next().expect("local part").to_uppercase();
        let resp = desk360_get(
            &sb,
            &format!(
                "{}/v1/products/{product}/tickets?email={local}",
                sb.desk360_url()
            ),
        )
        .await;
        let found: Vec<Value> = resp.json().await.expect("json");
        assert!(found.iter().any(|x| x["id"] == t.ticket_id));
    }
    let resp = desk360_get(
        &sb,
        &format!(
            "{}/v1/products/{product}/tickets/{}/logs",
            sb.desk360_url(),
            t.ticket_id
        ),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let logs: Vec<Value> = resp.json().await.expect("json");
    assert_eq!(logs.len(), usize::from(t.status != 0));

    // Past the last page: empty, no link.
    let resp = desk360_get(
        &sb,
        &format!(
            "{}/v1/products/{product}/tickets?page=999",
            sb.desk360_url()
        ),
    )
    .await;
    assert!(resp.headers().get("link").is_none());
    let page: Vec<Value> = resp.json().await.expect("json");
    assert!(page.is_empty());
    sb.shutdown().await;
}

#[tokio::test]
async fn details_embed_messages_and_unknown_ids_are_404() {
    let sb = start(|_| {}).await;
    let t = &sb.dataset().tickets[3];
    let resp = desk360_detail(&sb, t.product_id, t.ticket_id).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body, t.detail);
    let m = &body["messages"][0];
    for key in [
        "id",
        "agent_id",
        "message",
        "attachments",
        "type",
        "created_at",
        "updated_at",
    ] {
        assert!(m.get(key).is_some(), "message has {key}");
    }
    for group in ["images", "videos", "files", "others"] {
        assert!(m["attachments"][group].is_array());
    }

    let resp = desk360_get(
        &sb,
        &format!(
            "{}/v1/products/{}/tickets/999999999",
            sb.desk360_url(),
            t.product_id
        ),
    )
    .await;
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "model_not_found_exception");
    sb.shutdown().await;
}

#[tokio::test]
async fn error_bodies_401_404_405() {
    let sb = start(|_| {}).await;
    let c = client();
    let resp = bounded(c.get(format!("{}/v1/products", sb.desk360_url())).send())
        .await
        .expect("send");
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "authentication_exception");
    assert!(body["error"]["message"].is_string() && body["error"]["doc_url"].is_string());

    let resp = bounded(
        c.get(format!("{}/v1/products", sb.desk360_url()))
            .bearer_auth("wrong")
            .send(),
    )
    .await
    .expect("send");
    assert_eq!(resp.status(), 401);

    let resp = desk360_get(&sb, &format!("{}/v1/nothing-here", sb.desk360_url())).await;
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "not_found_exception");

    let resp = bounded(
        c.delete(format!("{}/v1/products", sb.desk360_url()))
            .bearer_auth(sb.credentials().desk360_token)
            .send(),
    )
    .await
    .expect("send");
    assert_eq!(resp.status(), 405);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "method_not_allowed_exception");

    for path in ["products", "agents", "me", "types", "reasons"] {
        let resp = desk360_get(&sb, &format!("{}/v1/{path}", sb.desk360_url())).await;
        assert_eq!(resp.status(), 200, "{path}");
    }
    sb.shutdown().await;
}

#[tokio::test]
async fn every_request_counts_and_429_comes_exactly_when_the_window_is_spent() {
    let sb = start(|c| c.desk360_limit = 5).await;
    let c = client();
    let url = sb.desk360_url();
    // Mix valid and invalid requests: all count.
    let requests = [
        c.get(format!("{url}/v1/products"))
            .bearer_auth(sb.credentials().desk360_token),
        c.get(format!("{url}/v1/products")),
        c.get(format!("{url}/v1/nope"))
            .bearer_auth(sb.credentials().desk360_token),
        c.post(format!("{url}/v1/agents"))
            .bearer_auth(sb.credentials().desk360_token),
        c.get(format!("{url}/v1/agents"))
            .bearer_auth(sb.credentials().desk360_token),
    ];
    let mut reset = None;
    for (i, req) in requests.into_iter().enumerate() {
        let resp = bounded(req.send()).await.expect("send");
        assert_ne!(resp.status(), 429, "request {i}");
        assert_eq!(header(&resp, "x-ratelimit-limit"), "5");
        assert_eq!(header(&resp, "x-ratelimit-remaining"), (4 - i).to_string());
        let r: u64 = header(&resp, "x-ratelimit-reset")
            .parse()
            .expect("integer epoch seconds");
        reset.get_or_insert(r);
        assert_eq!(Some(r), reset, "same window, same reset");
        assert!(resp.headers().get("retry-after").is_none());
    }
    let resp = desk360_get(&sb, &format!("{url}/v1/products")).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(header(&resp, "x-ratelimit-remaining"), "0");
    let retry: u64 = header(&resp, "retry-after")
        .parse()
        .expect("integer seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "too_many_requests_exception");
    let journal = sb.journal();
    assert_eq!(journal.len(), 6);
    assert!(
        journal
            .iter()
            .all(|e| e.server == Server::Desk360 && e.cost == 1)
    );
    assert_eq!(journal[5].fault.as_deref(), Some("rate_limited"));
    sb.shutdown().await;
}

#[tokio::test]
async fn short_windows_send_millisecond_headers_and_refresh() {
    let sb = start(|c| {
        c.desk360_limit = 2;
        c.window = Duration::from_millis(400);
    })
    .await;
    let url = format!("{}/v1/products", sb.desk360_url());
    // Requests may straddle a window boundary; retry the sequence until it fits one window.
    let mut seen_429 = false;
    for _ in 0..20 {
        let a = desk360_get(&sb, &url).await;
        let b = desk360_get(&sb, &url).await;
        let c = desk360_get(&sb, &url).await;
        if a.status() == 200 && b.status() == 200 && c.status() == 429 {
            let retry = header(&c, "retry-after");
            assert!(retry.contains('.'), "millisecond precision: {retry}");
            let secs: f64 = retry.parse().expect("seconds");
            assert!(secs > 0.0 && secs <= 0.4, "{secs}");
            assert!(header(&c, "x-ratelimit-reset").contains('.'));
            bounded(tokio::time::sleep(Duration::from_secs_f64(secs + 0.02))).await;
            assert_eq!(
                desk360_get(&sb, &url).await.status(),
                200,
                "window refreshed"
            );
            seen_429 = true;
            break;
        }
        bounded(tokio::time::sleep(Duration::from_millis(450))).await;
    }
    assert!(seen_429);
    sb.shutdown().await;
}

#[tokio::test]
async fn login_by_get_and_post_and_too_many_attempts() {
    let sb = start(|_| {}).await;
    let c = client();
    let creds = sb.credentials();
    let url = format!("{}/v1/login", sb.desk360_url());
    let good =
        serde_json::json!({"email": creds.desk360_email, "password": creds.desk360_password});
    for req in [c.post(&url), c.get(&url)] {
        let resp = bounded(req.json(&good).send()).await.expect("send");
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["access_token"], creds.desk360_token.as_str());
        assert_eq!(body["token_type"], "Bearer");
    }
    let bad = serde_json::json!({"email": creds.desk360_email, "password": "nope"});
    for _ in 0..5 {
        let resp = bounded(c.post(&url).json(&bad).send()).await.expect("send");
        assert_eq!(resp.status(), 401);
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["error"]["code"], "invalid_credentials");
    }
    let resp = bounded(c.post(&url).json(&good).send())
        .await
        .expect("send");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "too_many_attempts");
    sb.shutdown().await;
}

#[tokio::test]
async fn malformed_truncated_and_5xx_faults() {
    let sb = start(|_| {}).await;
    let a = &sb.dataset().tickets[0];
    let b = &sb.dataset().tickets[1];
    sb.set_faults(Faults {
        malformed_tickets: BTreeSet::from([(a.product_id, a.ticket_id)]),
        truncated_tickets: BTreeSet::from([(b.product_id, b.ticket_id)]),
        ..Faults::default()
    });
    for t in [a, b] {
        let resp = desk360_detail(&sb, t.product_id, t.ticket_id).await;
        assert_eq!(resp.status(), 200);
        let text = resp.text().await.expect("body");
        assert!(
            serde_json::from_str::<Value>(&text).is_err(),
            "invalid JSON served"
        );
    }
    let faults: Vec<_> = sb.journal().iter().map(|e| e.fault.clone()).collect();
    assert_eq!(
        faults,
        vec![Some("malformed".into()), Some("truncated".into())]
    );

    sb.set_faults(Faults {
        server_error_rate: 1.0,
        ..Faults::default()
    });
    let resp = desk360_get(&sb, &format!("{}/v1/products", sb.desk360_url())).await;
    assert!(resp.status().is_server_error());
    assert!(resp.headers().get("x-ratelimit-remaining").is_some());
    sb.shutdown().await;
}

#[tokio::test]
async fn latency_and_jitter_are_added_to_every_answer() {
    let sb = start(|c| {
        c.latency = Duration::from_millis(60);
        c.jitter = Duration::from_millis(20);
    })
    .await;
    for _ in 0..5 {
        let t0 = std::time::Instant::now();
        let resp = desk360_get(&sb, &format!("{}/v1/products", sb.desk360_url())).await;
        assert_eq!(resp.status(), 200);
        let took = t0.elapsed();
        assert!(took >= Duration::from_millis(39), "{took:?}");
    }
    let journal = sb.journal();
    assert!(
        journal.windows(2).all(|w| w[0].at <= w[1].at),
        "arrival order"
    );
    sb.shutdown().await;
}
