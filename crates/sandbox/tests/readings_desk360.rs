//! The Desk360 emulator under every reading of its vendor page (004) and the live-account
//! behaviours a migration meets: the default list order, the two readings of the `Link` URL,
//! churn while a run lists, `Link` loops, account identity, token expiry and attachment serving.

mod common;

use common::{bounded, client, start};
use sandbox::{LinkReading, Readings, Sandbox};
use serde_json::Value;

/// GET with the static bearer token.
async fn get(sb: &Sandbox, url: &str) -> reqwest::Response {
    get_with(sb, url, &sb.credentials().desk360_token).await
}

/// GET with a given bearer token.
async fn get_with(_sb: &Sandbox, url: &str, token: &str) -> reqwest::Response {
    bounded(client().get(url).bearer_auth(token).send())
        .await
        .expect("request")
}

/// One list page: its ids and its `Link: rel=next` URL, if any.
async fn page(sb: &Sandbox, url: &str) -> (Vec<i64>, Option<String>) {
    let resp = get(sb, url).await;
    assert_eq!(resp.status(), 200, "{url}");
    let link = resp.headers().get("link").map(|v| {
        let v = v.to_str().expect("ascii");
        v.strip_prefix('<')
            .and_then(|l| l.strip_suffix(">; rel=next"))
            .unwrap_or_else(|| panic!("bad link {v}"))
            .to_owned()
    });
    let items: Vec<Value> = bounded(resp.json()).await.expect("json array");
    let ids = items
        .iter()
        .map(|t| t["id"].as_i64().expect("id"))
        .collect();
    (ids, link)
}

/// Every id of a list, following `Link` from `first` (bounded to 100 pages).
async fn walk(sb: &Sandbox, first: String) -> Vec<i64> {
    let mut url = Some(first);
    let mut ids = Vec::new();
    for _ in 0..100 {
        let Some(u) = url.take() else {
            return ids;
        };
        let (page_ids, next) = page(sb, &u).await;
        ids.extend(page_ids);
        url = next;
    }
    panic!("more than 100 pages: a Link loop?");
}

/// Ids of a product as the dataset orders them, newest update first (ties: id descending).
fn expected_desc(sb: &Sandbox, product: i64) -> Vec<i64> {
    let ds = sb.dataset();
    let mut v: Vec<(String, i64)> = ds
        .tickets
        .iter()
        .filter(|t| t.product_id == product)
        .map(|t| (t.updated_at.clone(), t.ticket_id))
        .collect();
    v.sort_by(|a, b| b.cmp(a));
    v.into_iter().map(|(_, id)| id).collect()
}

// ---------------------------------------------------------------------------------------------
// 1. Default list order (page 004: "Sort by updated date order (default descending)").

#[tokio::test]
async fn default_order_is_newest_update_first_with_ties_by_id_descending() {
    let sb = start(|c| {
        c.tickets = 150;
        c.desk360_limit = 10_000;
    })
    .await;
    let product = sb.dataset().products[0].id;
    // Five tickets resolved in one bulk action share one `updated_at`: the newest of the account.
    let tied: Vec<(i64, i64)> = sb
        .dataset()
        .product_tickets_asc(product)
        .step_by(7)
        .take(5)
        .map(|t| (product, t.ticket_id))
        .collect();
    assert_eq!(sb.bulk_set_ticket_status(&tied, 1), 5);
    let ds = sb.dataset();
    let stamps: Vec<&str> = tied
        .iter()
        .map(|k| ds.ticket(k.0, k.1).expect("ticket").updated_at.as_str())
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] == w[1]), "one shared second");

    let base = format!("{}/v1/products/{product}/tickets", sb.desk360_url());
    let desc = walk(&sb, base.clone()).await;
    assert_eq!(desc, expected_desc(&sb, product));
    let mut tied_ids: Vec<i64> = tied.iter().map(|k| k.1).collect();
    tied_ids.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(desc[..5], tied_ids[..], "ties: id descending, on page 1");
    // `order=desc` (or anything not `asc`) is the default too.
    assert_eq!(walk(&sb, format!("{base}?order=desc")).await, desc);

    let asc = walk(&sb, format!("{base}?order=asc")).await;
    let mut reversed = desc.clone();
    reversed.reverse();
    assert_eq!(
        asc, reversed,
        "asc is exactly the reverse, ties id ascending"
    );
    sb.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 2. `Readings.link` (page 004 "Pagination": the only example is `…/tickets?page=2`).

#[tokio::test]
async fn link_page_only_drops_order_and_filters_and_the_next_page_is_served_by_default() {
    let sb = start(|c| {
        c.tickets = 400;
        c.desk360_limit = 10_000;
    })
    .await;
    let product = sb.dataset().products[0].id;
    let base = format!("{}/v1/products/{product}/tickets", sb.desk360_url());
    let first = format!("{base}?order=asc&status=1");
    let ds = sb.dataset();
    let asc_resolved: Vec<i64> = ds
        .product_tickets_asc(product)
        .filter(|t| t.status == 1)
        .map(|t| t.ticket_id)
        .collect();
    assert!(
        asc_resolved.len() > 40,
        "at least three pages of resolved tickets"
    );

    // Today's reading: the link keeps every parameter.
    let (ids, link) = page(&sb, &first).await;
    assert_eq!(ids, asc_resolved[..20]);
    let link = link.expect("a next page");
    assert!(link.contains("order=asc") && link.contains("status=1") && link.contains("page=2"));
    assert_eq!(page(&sb, &link).await.0, asc_resolved[20..40]);

    // Switched at run time: the next link carries `page` only.
    sb.set_readings(Readings {
        link: LinkReading::PageOnly,
        ..Readings::default()
    });
    assert_eq!(sb.readings().link, LinkReading::PageOnly);
    let (ids, link) = page(&sb, &first).await;
    assert_eq!(
        ids,
        asc_resolved[..20],
        "the first page still honours the query"
    );
    let link = link.expect("a next page");
    assert_eq!(link, format!("{base}?page=2"));
    // …and the server serves page 2 of the DEFAULT listing: descending, unfiltered.
    let (ids, link) = page(&sb, &link).await;
    let desc = expected_desc(&sb, product);
    assert_eq!(ids, desc[20..40]);
    assert_eq!(link.as_deref(), Some(format!("{base}?page=3").as_str()));

    // Back to the default reading.
    sb.set_readings(Readings::default());
    let (_, link) = page(&sb, &first).await;
    assert!(link.expect("next").contains("order=asc"));
    sb.shutdown().await;
}
