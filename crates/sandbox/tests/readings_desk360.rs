//! The Desk360 emulator under every reading of its vendor page (004) and the live-account
//! behaviours a migration meets: the default list order, the two readings of the `Link` URL,
//! churn while a run lists, `Link` loops, account identity, token expiry and attachment serving.

mod common;

use common::{bounded, client, desk360_detail, desk360_get, start, start_listing, tickets_url};
use sandbox::{LinkReading, Readings, Sandbox};
use serde_json::Value;

/// GET with a given bearer token.
async fn get_with(_sb: &Sandbox, url: &str, token: &str) -> reqwest::Response {
    bounded(client().get(url).bearer_auth(token).send())
        .await
        .expect("request")
}

/// One list page: its ids and its `Link: rel=next` URL, if any.
async fn page(sb: &Sandbox, url: &str) -> (Vec<i64>, Option<String>) {
    let resp = desk360_get(sb, url).await;
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
    let sb = start_listing(150).await;
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

    let base = tickets_url(&sb, product);
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
    let sb = start_listing(400).await;
    let product = sb.dataset().products[0].id;
    let base = tickets_url(&sb, product);
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

// ---------------------------------------------------------------------------------------------
// 3. Churn: the Desk360 account changes while a run lists and fetches it.

/// The first attachment URL of the account (absolute, pointing at the emulator).
fn some_attachment(sb: &Sandbox) -> String {
    let ds = sb.dataset();
    ds.tickets
        .iter()
        .flat_map(|t| t.messages())
        .flat_map(|m| {
            ["images", "videos", "files", "others"]
                .into_iter()
                .flat_map(move |g| m["attachments"][g].as_array().cloned().unwrap_or_default())
        })
        .map(|a| a["url"].as_str().expect("url").to_owned())
        .next()
        .expect("the account has attachments")
}

fn churn_config(c: &mut sandbox::SandboxConfig) {
    c.tickets = 120;
    c.desk360_limit = 10_000;
    c.churn = Some(sandbox::Churn {
        start_after: 5,
        every: 3,
        updates: 3,
        creates: 3,
    });
}

#[tokio::test]
async fn churn_updates_and_creates_tickets_on_schedule_and_they_move_to_page_one() {
    let sb = start(churn_config).await;
    let before = sb.dataset();
    let max_id = before
        .tickets
        .iter()
        .map(|t| t.ticket_id)
        .max()
        .expect("ids");
    let products = format!("{}/v1/products", sb.desk360_url());
    let file = some_attachment(&sb);
    for i in 1..=30u64 {
        assert_eq!(desk360_get(&sb, &products).await.status(), 200);
        // Attachment downloads are not Desk360 API requests: they never count.
        assert_eq!(desk360_get(&sb, &file).await.status(), 200);
        let done = sb.churn_log().len() as u64;
        let due = if i < 8 { 0 } else { ((i - 5) / 3).min(6) };
        assert_eq!(done, due, "after {i} requests");
    }
    let log = sb.churn_log();
    assert_eq!(
        log.iter().map(|e| e.at_request).collect::<Vec<_>>(),
        [8, 11, 14, 17, 20, 23]
    );
    assert!(
        log.windows(2).all(|w| w[0].created != w[1].created),
        "updates and creations alternate: {log:?}"
    );
    assert_eq!(log.iter().filter(|e| e.created).count(), 3);

    // The snapshot taken before is untouched (copy-on-write).
    assert_eq!(before.tickets.len(), 120);
    let now = sb.dataset();
    assert_eq!(now.tickets.len(), 123);
    let newest_before = before
        .tickets
        .iter()
        .map(|t| &t.updated_at)
        .max()
        .expect("ts");
    let mut last_stamp = newest_before.clone();
    let mut next_id = max_id + 1;
    for e in &log {
        let t = now.ticket(e.key.0, e.key.1).expect("changed ticket exists");
        assert!(
            t.updated_at > last_stamp,
            "each change is the newest so far"
        );
        last_stamp = t.updated_at.clone();
        let msgs = t.messages();
        if e.created {
            assert_eq!(t.ticket_id, next_id, "next free id");
            next_id += 1;
            assert!(before.ticket(e.key.0, e.key.1).is_none());
            assert!((1..=3).contains(&msgs.len()));
            // Every field a generated ticket has.
            let generated = &before.tickets[0];
            for (field, _) in generated.detail.as_object().expect("object") {
                assert!(
                    t.detail.get(field).is_some(),
                    "created ticket lacks {field}"
                );
            }
            for (field, _) in generated.list.as_object().expect("object") {
                assert!(
                    t.list.get(field).is_some(),
                    "created list object lacks {field}"
                );
            }
            assert_eq!(t.detail["created_at"], msgs[0]["created_at"]);
        } else {
            let old = before.ticket(e.key.0, e.key.1).expect("existed");
            assert_eq!(msgs.len(), old.messages().len() + 1);
            assert_eq!(msgs[msgs.len() - 1]["type"], 0, "a reply, not a note");
        }
        for (idx, m) in msgs.iter().enumerate() {
            let refs = sandbox::parse_refs(m["message"].as_str().expect("html"));
            assert!(refs.contains(&(e.key.0, e.key.1, idx)), "marker in {m}");
        }
    }
    let ids: Vec<i64> = now
        .tickets
        .iter()
        .flat_map(|t| t.messages())
        .map(|m| m["id"].as_i64().expect("id"))
        .collect();
    let unique: std::collections::BTreeSet<i64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "message ids stay unique");

    // The last change is on page 1 of its product's default order, first.
    let last = log.last().expect("changes").key;
    let (first_page, _) = page(
        &sb,
        &format!("{}/v1/products/{}/tickets", sb.desk360_url(), last.0),
    )
    .await;
    assert_eq!(first_page[0], last.1);
    // …and the new ticket's detail is served.
    let created = log.iter().find(|e| e.created).expect("a creation").key;
    let resp = desk360_detail(&sb, created.0, created.1).await;
    assert_eq!(resp.status(), 200);
    let detail: Value = bounded(resp.json()).await.expect("json");
    assert_eq!(detail, now.ticket(created.0, created.1).expect("t").detail);

    // Nothing more once the counts are done.
    for _ in 0..10 {
        desk360_get(&sb, &products).await;
    }
    assert_eq!(sb.churn_log().len(), 6);
    sb.shutdown().await;

    // The same seed makes the same changes.
    let again = start(churn_config).await;
    for _ in 0..30 {
        desk360_get(&again, &format!("{}/v1/products", again.desk360_url())).await;
    }
    assert_eq!(again.churn_log(), log);
    let a = again.dataset();
    for e in &log {
        let (x, y) = (
            a.ticket(e.key.0, e.key.1).expect("t"),
            now.ticket(e.key.0, e.key.1).expect("t"),
        );
        assert_eq!(x.messages().len(), y.messages().len());
        assert_eq!(x.list["last_message"], y.list["last_message"]);
    }
    again.shutdown().await;
}

#[tokio::test]
async fn tickets_created_by_hand_are_new_and_newest() {
    let sb = start(|c| c.tickets = 60).await;
    let product = sb.dataset().products[1].id;
    let max_id = sb
        .dataset()
        .tickets
        .iter()
        .map(|t| t.ticket_id)
        .max()
        .expect("ids");
    let key = sb.create_ticket(product).expect("known product");
    assert_eq!(key, (product, max_id + 1));
    let second = sb.create_ticket(product).expect("known product");
    assert_eq!(second, (product, max_id + 2));
    assert_eq!(sb.create_ticket(999_999), None, "unknown product");
    let ds = sb.dataset();
    let asc: Vec<i64> = ds
        .product_tickets_asc(product)
        .map(|t| t.ticket_id)
        .collect();
    assert_eq!(asc[asc.len() - 2..], [key.1, second.1]);
    assert!(sb.churn_log().is_empty(), "by-hand changes are not churn");
    sb.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 4. `Faults.link_loops`: a page whose `Link` leads back to a page already read.

#[tokio::test]
async fn link_loops_lead_back_under_both_link_readings_and_can_be_respelled() {
    let sb = start_listing(300).await;
    let product = sb.dataset().products[0].id;
    let other = sb.dataset().products[1].id;
    let base = tickets_url(&sb, product);
    let desc = expected_desc(&sb, product);
    assert!(desc.len() > 60, "more than three pages");
    sb.set_faults(sandbox::Faults {
        link_loops: vec![
            sandbox::LinkLoop {
                product_id: product,
                from_page: 3,
                to_page: 2,
                respell: false,
            },
            sandbox::LinkLoop {
                product_id: other,
                from_page: 2,
                to_page: 1,
                respell: true,
            },
        ],
        ..sandbox::Faults::default()
    });

    for reading in [LinkReading::KeepsQuery, LinkReading::PageOnly] {
        sb.set_readings(Readings {
            link: reading,
            ..Readings::default()
        });
        // Plain loop: page 3 points at exactly the URL the client followed for page 2.
        let (p1, to2) = page(&sb, &format!("{base}?order=desc")).await;
        let to2 = to2.expect("page 2");
        let (p2, to3) = page(&sb, &to2).await;
        let (p3, back) = page(&sb, &to3.expect("page 3")).await;
        assert_eq!([p1, p2, p3].concat(), desc[..60], "{reading:?}");
        assert_eq!(back.as_deref(), Some(to2.as_str()), "{reading:?}");

        // Respelled loop: another spelling of page 1's URL, which serves page 1 again.
        let first = format!(
            "{}/v1/products/{other}/tickets?order=desc&page=1",
            sb.desk360_url()
        );
        let (o1, to2) = page(&sb, &first).await;
        let (_, back) = page(&sb, &to2.expect("page 2")).await;
        let back = back.expect("a looping link");
        assert_ne!(back, first, "spelled differently");
        assert!(back.starts_with("http://localhost:"), "{back}");
        assert!(back.contains("page=1"), "{back}");
        if reading == LinkReading::KeepsQuery {
            assert!(
                back.contains("?page=1&order=desc"),
                "parameters reordered: {back}"
            );
        }
        let (again, _) = page(&sb, &back).await;
        assert_eq!(again, o1, "the same server, the same page");
    }
    let loops = sb
        .journal()
        .iter()
        .filter(|e| e.fault.as_deref() == Some("link_loop"))
        .count();
    assert_eq!(loops, 4, "two loops under each reading");

    // Faults off: page 3 links to page 4 again.
    sb.set_faults(sandbox::Faults::default());
    sb.set_readings(Readings::default());
    let (_, next) = page(&sb, &format!("{base}?page=3")).await;
    assert!(next.expect("page 4").ends_with("page=4"));
    sb.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 5. Account identity in `/v1/me` and `/v1/agents/me` (page 004, "Get Current Agent").

async fn me(sb: &Sandbox, path: &str) -> Value {
    let resp = desk360_get(sb, &format!("{}/v1/{path}", sb.desk360_url())).await;
    assert_eq!(resp.status(), 200, "{path}");
    bounded(resp.json()).await.expect("json")
}

#[tokio::test]
async fn the_current_agent_names_the_account() {
    let acme = start(|_| {}).await;
    let globex = start(|c| c.desk360_account = "globex".into()).await;
    let a = me(&acme, "me").await;
    assert_eq!(
        me(&acme, "agents/me").await,
        a,
        "both spellings of the page"
    );
    let first = &acme.dataset().agents[0];
    // The default account answers the generated agent as it always did.
    assert_eq!(a["id"], first.id);
    assert_eq!(a["name"], first.name.as_str());
    assert_eq!(a["email"], "jane@acme.example");
    let g = me(&globex, "me").await;
    assert_eq!(me(&globex, "agents/me").await, g);
    assert_eq!(g["email"], "jane@globex.example");
    assert_ne!(a, g, "two accounts can be told apart");
    assert_eq!(acme.credentials().desk360_email, "admin@acme.example");
    assert_eq!(globex.credentials().desk360_email, "admin@globex.example");
    acme.shutdown().await;
    globex.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 6. Token expiry: an expired token answers what an invalid one does (page 004 error table).

async fn login(sb: &Sandbox, post: bool) -> String {
    let c = sb.credentials();
    let url = format!("{}/v1/login", sb.desk360_url());
    let req = if post {
        client()
            .post(&url)
            .json(&serde_json::json!({"email": c.desk360_email, "password": c.desk360_password}))
    } else {
        client().get(&url).query(&[
            ("email", &c.desk360_email),
            ("password", &c.desk360_password),
        ])
    };
    let resp = bounded(req.send()).await.expect("login");
    assert_eq!(resp.status(), 200);
    let body: Value = bounded(resp.json()).await.expect("json");
    assert_eq!(body["token_type"], "Bearer");
    body["access_token"].as_str().expect("token").to_owned()
}

/// Status and error code of `/v1/products` with `token`.
async fn products_with(sb: &Sandbox, token: &str) -> (u16, Value) {
    let resp = get_with(sb, &format!("{}/v1/products", sb.desk360_url()), token).await;
    let status = resp.status().as_u16();
    (status, bounded(resp.json()).await.expect("json"))
}

fn unauthenticated(body: &Value) -> bool {
    body["error"]["code"] == "authentication_exception"
        && body["error"]["message"].is_string()
        && body["error"]["doc_url"].is_string()
}

#[tokio::test]
async fn an_expired_token_is_refused_like_an_invalid_one_and_a_login_issues_a_new_one() {
    let sb = start(|_| {}).await;
    let fixed = sb.credentials().desk360_token;
    assert_eq!(
        login(&sb, false).await,
        fixed,
        "the token in force is returned"
    );
    assert_eq!(products_with(&sb, &fixed).await.0, 200);

    sb.expire_desk360_token();
    assert_eq!(sb.desk360_token(), None);
    let (status, expired) = products_with(&sb, &fixed).await;
    let (wrong_status, wrong) = products_with(&sb, "never-issued").await;
    assert_eq!((status, wrong_status), (401, 401));
    assert!(unauthenticated(&expired));
    assert_eq!(expired, wrong, "the same documented body");
    let faults: Vec<Option<String>> = sb
        .journal()
        .iter()
        .filter(|e| e.status == 401)
        .map(|e| e.fault.clone())
        .collect();
    assert_eq!(faults, [Some("token_expired".to_owned()), None]);

    // A login (GET) generates a new token; it works, the old one stays refused.
    let second = login(&sb, false).await;
    assert_ne!(second, fixed);
    assert_eq!(sb.desk360_token().as_deref(), Some(second.as_str()));
    assert_eq!(products_with(&sb, &second).await.0, 200);
    assert_eq!(products_with(&sb, &fixed).await.0, 401);
    assert_eq!(
        login(&sb, true).await,
        second,
        "already created: the same one"
    );

    // And again by POST.
    sb.expire_desk360_token();
    let third = login(&sb, true).await;
    assert!(third != second && third != fixed);
    assert_eq!(products_with(&sb, &third).await.0, 200);
    assert_eq!(products_with(&sb, &second).await.0, 401);
    sb.shutdown().await;
}

#[tokio::test]
async fn tokens_expire_after_their_ttl() {
    let ttl = std::time::Duration::from_secs(2);
    let sb = start(|c| c.desk360_token_ttl = Some(ttl)).await;
    let fixed = sb.credentials().desk360_token;
    assert_eq!(products_with(&sb, &fixed).await.0, 200);
    tokio::time::sleep(ttl + std::time::Duration::from_millis(100)).await;
    let (status, body) = products_with(&sb, &fixed).await;
    assert_eq!(status, 401);
    assert!(unauthenticated(&body));
    let fresh = login(&sb, true).await;
    assert_ne!(fresh, fixed);
    assert_eq!(products_with(&sb, &fresh).await.0, 200);
    let expired = sb
        .journal()
        .iter()
        .filter(|e| e.fault.as_deref() == Some("token_expired"))
        .count();
    assert_eq!(expired, 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn without_a_ttl_the_static_token_never_expires() {
    let sb = start(|_| {}).await;
    let fixed = sb.credentials().desk360_token;
    assert_eq!(sb.desk360_token().as_deref(), Some(fixed.as_str()));
    assert_eq!(products_with(&sb, &fixed).await.0, 200);
    assert_eq!(login(&sb, true).await, fixed);
    sb.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// 7. Attachments: deterministic bytes, behind the token, signed and expiring, large files.

/// Every attachment entry `{url, name, type, size}` of a ticket detail body.
fn attachments_of(detail: &Value) -> Vec<Value> {
    detail["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .flat_map(|m| {
            ["images", "videos", "files", "others"]
                .into_iter()
                .flat_map(move |g| m["attachments"][g].as_array().cloned().unwrap_or_default())
        })
        .collect()
}

/// A ticket detail as served.
async fn detail(sb: &Sandbox, product: i64, ticket: i64) -> Value {
    let resp = desk360_detail(sb, product, ticket).await;
    assert_eq!(resp.status(), 200);
    bounded(resp.json()).await.expect("json")
}

/// Downloads a file (optionally with the token): status, bytes and their SHA-256 hex.
async fn download(url: &str, token: Option<&str>) -> (u16, Vec<u8>, String) {
    use sha2::Digest;
    let mut req = client().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = bounded(req.send()).await.expect("download");
    let status = resp.status().as_u16();
    let bytes = bounded(resp.bytes()).await.expect("body").to_vec();
    let sha = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    (status, bytes, sha)
}

/// The first generated ticket that has files.
fn first_with_files(ds: &sandbox::Dataset) -> &sandbox::TicketData {
    ds.tickets
        .iter()
        .find(|t| !attachments_of(&t.detail).is_empty())
        .expect("a ticket with files")
}

#[tokio::test]
async fn attachment_bytes_are_deterministic_and_match_their_checksum() {
    let sb = start(|_| {}).await;
    let ds = sb.dataset();
    let t = first_with_files(&ds);
    for a in attachments_of(&t.detail) {
        let url = a["url"].as_str().expect("url");
        let (status, bytes, sha) = download(url, None).await;
        assert_eq!(status, 200, "public by default");
        assert_eq!(Some(bytes.len() as u64), a["size"].as_u64());
        assert_eq!(ds.attachment_size(url), a["size"].as_u64());
        assert_eq!(ds.attachment_sha256(url), Some(sha.clone()));
        assert!(bytes.iter().any(|&b| b != 0), "not zeros");
        assert_eq!(
            download(url, None).await.2,
            sha,
            "the same bytes every time"
        );
        let streamed: Vec<u8> = ds
            .attachment_chunks(url)
            .expect("known")
            .flatten()
            .collect();
        assert_eq!(streamed, bytes);
    }
    assert_eq!(ds.attachment_sha256("/attachments/nope"), None);
    // The content follows the seed.
    let other = sandbox::generate(43, 3, 120);
    let (mine, theirs) = (
        ds.attachment_sha256(&some_attachment(&sb)),
        other.attachment_sha256(&some_attachment(&sb)),
    );
    assert!(mine.is_some());
    assert_ne!(mine, theirs);
    sb.shutdown().await;
}

#[tokio::test]
async fn files_behind_the_token_need_a_valid_bearer_token() {
    let sb = start(|c| {
        c.attachments.behind_token_share = 1.0;
    })
    .await;
    let url = some_attachment(&sb);
    let token = sb.credentials().desk360_token;
    let resp = bounded(client().get(&url).send()).await.expect("request");
    assert_eq!(resp.status(), 401);
    let body: Value = bounded(resp.json()).await.expect("json");
    assert!(unauthenticated(&body));
    assert_eq!(download(&url, Some("wrong")).await.0, 401);
    let (status, _, sha) = download(&url, Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(sb.dataset().attachment_sha256(&url), Some(sha));
    sb.expire_desk360_token();
    assert_eq!(
        download(&url, Some(&token)).await.0,
        401,
        "an expired token"
    );
    let fresh = login(&sb, true).await;
    assert_eq!(download(&url, Some(&fresh)).await.0, 200);
    // Downloads stay outside the rate limit and the request count.
    assert!(
        sb.journal()
            .iter()
            .filter(|e| e.path.starts_with("/attachments/"))
            .all(|e| e.cost == 0)
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn signed_urls_work_until_they_expire_and_refuse_tampering() {
    let ttl = std::time::Duration::from_secs(1);
    let sb = start(|c| {
        c.attachments.signed_share = 1.0;
        c.attachments.signed_ttl = ttl;
    })
    .await;
    let ds = sb.dataset();
    let t = first_with_files(&ds);
    let served = detail(&sb, t.product_id, t.ticket_id).await;
    let stored = attachments_of(&t.detail);
    let signed = attachments_of(&served);
    assert_eq!(signed.len(), stored.len());
    for (s, plain) in signed.iter().zip(&stored) {
        let url = s["url"].as_str().expect("url");
        let plain_url = plain["url"].as_str().expect("url");
        // The same entry shape; only the URL carries the signature.
        assert_eq!(s["name"], plain["name"]);
        assert_eq!(s["size"], plain["size"]);
        assert_eq!(s["type"], plain["type"]);
        let (base, query) = url.split_once('?').expect("a query");
        assert_eq!(base, plain_url);
        let params: Vec<&str> = query.split('&').collect();
        assert!(params[0].starts_with("expires=") && params[1].starts_with("signature="));
        assert!(
            params[1]["signature=".len()..]
                .chars()
                .all(|c| c.is_ascii_hexdigit())
        );
        assert_eq!(ds.attachment_size(url), plain["size"].as_u64());
        let (status, _, sha) = download(url, None).await;
        assert_eq!(status, 200);
        assert_eq!(ds.attachment_sha256(url), Some(sha));
        assert_eq!(download(plain_url, None).await.0, 403, "unsigned");
        let tampered = url.replace("expires=", "expires=9");
        assert_eq!(download(&tampered, None).await.0, 403, "tampered");
    }
    // Past the ttl (expiry is in whole epoch seconds, rounded up): refused.
    tokio::time::sleep(ttl + std::time::Duration::from_millis(1100)).await;
    let url = signed[0]["url"].as_str().expect("url");
    let resp = bounded(client().get(url).send()).await.expect("request");
    assert_eq!(resp.status(), 403);
    let body = bounded(resp.text()).await.expect("text");
    assert!(
        body.contains("AccessDenied") && body.contains("expired"),
        "{body}"
    );
    assert!(
        sb.journal()
            .iter()
            .any(|e| e.fault.as_deref() == Some("url_expired"))
    );
    // A fresh detail signs again.
    let again = detail(&sb, t.product_id, t.ticket_id).await;
    let url = attachments_of(&again)[0]["url"]
        .as_str()
        .expect("url")
        .to_owned();
    assert_eq!(download(&url, None).await.0, 200);
    sb.shutdown().await;
}

#[tokio::test]
async fn shares_split_the_files_between_public_token_and_signed() {
    let sb = start(|c| {
        c.tickets = 300;
        c.desk360_limit = 10_000;
        c.attachments.behind_token_share = 0.3;
        c.attachments.signed_share = 0.3;
    })
    .await;
    let ds = sb.dataset();
    let (mut public, mut token, mut signed) = (0, 0, 0);
    for t in ds
        .tickets
        .iter()
        .filter(|t| !attachments_of(&t.detail).is_empty())
    {
        for a in attachments_of(&detail(&sb, t.product_id, t.ticket_id).await) {
            let url = a["url"].as_str().expect("url");
            if url.contains("signature=") {
                signed += 1;
                continue;
            }
            let resp = bounded(client().head(url).send()).await.expect("head");
            match resp.status().as_u16() {
                200 => public += 1,
                401 => token += 1,
                other => panic!("{other} for {url}"),
            }
        }
    }
    assert!(
        public > 0 && token > 0 && signed > 0,
        "{public} {token} {signed}"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn large_files_are_added_to_the_first_message_and_streamed() {
    let (product, ticket) = {
        let ds = sandbox::generate(42, 3, 120);
        let t = &ds.tickets[5];
        (t.product_id, t.ticket_id)
    };
    let sizes = vec![30_000_000u64, 20_000_000, 65_537];
    let sb = start(|c| c.attachments.large = vec![(product, ticket, sizes.clone())]).await;
    let ds = sb.dataset();
    let t = ds.ticket(product, ticket).expect("ticket");
    let files = t.messages()[0]["attachments"]["files"]
        .as_array()
        .expect("files")
        .clone();
    let large: Vec<&Value> = files
        .iter()
        .filter(|f| f["name"].as_str().is_some_and(|n| n.starts_with("large-")))
        .collect();
    assert_eq!(
        large
            .iter()
            .map(|f| f["size"].as_u64().expect("size"))
            .collect::<Vec<_>>(),
        sizes
    );
    for f in &large {
        assert_eq!(f["type"], "file");
        assert!(
            f["url"]
                .as_str()
                .expect("url")
                .starts_with(&sb.desk360_url())
        );
    }
    assert_eq!(
        detail(&sb, product, ticket).await,
        t.detail,
        "served as stored"
    );
    let head = bounded(client().head(large[0]["url"].as_str().expect("url")).send())
        .await
        .expect("head");
    assert_eq!(head.headers()["content-length"], "30000000");
    for f in [large[0], large[2]] {
        let url = f["url"].as_str().expect("url");
        let (status, bytes, sha) = download(url, None).await;
        assert_eq!(status, 200);
        assert_eq!(Some(bytes.len() as u64), f["size"].as_u64());
        assert_eq!(ds.attachment_sha256(url), Some(sha));
    }
    sb.shutdown().await;
}
