//! The trial's extraction (`run --limit N`, `run --ticket P/T`): picks the tickets, stores their
//! details, and records them as the trial selection the loader claims from.
//!
//! `--limit N` reads each product's list pages lazily, newest update first (Desk360's documented
//! default order, page 004), merging the products by `updated_at`, and stops as soon as it has N
//! tickets: page 1 of each product, and a further page of a product only when all of its earlier
//! ones were taken. `--ticket P/T` fetches the named tickets' details directly, without listing.
//! Neither moves the list cursors: the next full run lists as it would have, and finds the trial's
//! tickets already stored with the same `updated_at` (nothing fetched twice).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use desk360::{Desk360Client, Desk360Error, ErrorClass, TicketDetail, TicketSummary};
use futures::StreamExt;
use model::TicketKey;
use store::{FailureClass, FailureRecord, ListedTicket, Stage};

use crate::ctx::Ctx;
use crate::error::{EngineError, Result};
use crate::progress::Progress;

/// One product's list, read page by page as the merge needs it.
struct ProductList {
    product: i64,
    queue: VecDeque<TicketSummary>,
    next: Option<String>,
}

/// A fetched ticket detail, or why it could not be fetched.
type Fetched = (TicketKey, std::result::Result<TicketDetail, Desk360Error>);

/// The tickets picked so far: per product as listed (for the store), and in the order picked.
#[derive(Default)]
struct Picked {
    by_product: BTreeMap<i64, Vec<ListedTicket>>,
    order: Vec<TicketKey>,
}

impl Picked {
    /// Adds a ticket unless it is already picked; true when it was added.
    fn add(&mut self, key: TicketKey, updated_at: Option<String>) -> bool {
        if self.order.contains(&key) {
            return false;
        }
        self.by_product
            .entry(key.product_id)
            .or_default()
            .push(ListedTicket {
                ticket_id: key.ticket_id,
                updated_at: updated_at.unwrap_or_default(),
            });
        self.order.push(key);
        true
    }
}

/// Extracts the trial's tickets and records them as the selection; returns them.
pub(crate) async fn select(
    ctx: &Arc<Ctx>,
    client: &Desk360Client,
    limit: Option<u64>,
    named: &[TicketKey],
) -> Result<Vec<TicketKey>> {
    if ctx.store.products().await?.is_empty() {
        crate::extract::refresh_reference(ctx, client).await?;
    }
    let mut picked = Picked::default();
    let mut details = pick_named(client, named, &mut picked).await?;
    if let Some(limit) = limit {
        pick_newest(ctx, client, limit, &mut picked).await?;
    }

    let mut to_fetch: Vec<TicketKey> = Vec::new();
    for (product, listed) in &picked.by_product {
        to_fetch.extend(ctx.store.record_selected(*product, listed).await?);
    }
    Progress::add(&ctx.progress.listed, picked.order.len() as u64);
    Progress::add(&ctx.progress.to_extract, to_fetch.len() as u64);

    details.extend(fetch_missing(ctx, client, &to_fetch, &details).await);
    store_details(ctx, &to_fetch, details).await?;
    ctx.store.set_trial_selection(&picked.order).await?;
    Ok(picked.order)
}

/// `--ticket P/T`: each named ticket's detail fetched directly (its `updated_at` is what the
/// store records), in the order named, duplicates once.
async fn pick_named(
    client: &Desk360Client,
    named: &[TicketKey],
    picked: &mut Picked,
) -> Result<Vec<Fetched>> {
    let mut details = Vec::new();
    for key in named {
        if picked.order.contains(key) {
            continue;
        }
        let detail = client.ticket(key.product_id, key.ticket_id).await?;
        picked.add(*key, detail.summary.updated_at.clone());
        details.push((*key, Ok(detail)));
    }
    Ok(details)
}

/// `--limit N`: the N most recently updated tickets across the products, reading each
/// product's pages only as far as the merge needs.
async fn pick_newest(
    ctx: &Arc<Ctx>,
    client: &Desk360Client,
    limit: u64,
    picked: &mut Picked,
) -> Result<()> {
    let mut lists = first_pages(ctx, client).await?;
    let mut taken: u64 = 0;
    while taken < limit {
        // Refill a product whose page is used up, only now that another ticket is needed.
        for list in &mut lists {
            if list.queue.is_empty()
                && let Some(next) = list.next.take()
            {
                let page = client.ticket_page(&next).await?;
                Progress::add(&ctx.progress.pages, 1);
                list.queue = page.tickets.into();
                list.next = page.next;
            }
        }
        let Some(i) = newest_front(&lists, &ctx.settings.source.timezone) else {
            break;
        };
        let Some(summary) = lists[i].queue.pop_front() else {
            break;
        };
        let key = TicketKey::new(lists[i].product, summary.id);
        if picked.add(key, summary.updated_at) {
            taken += 1;
        }
    }
    Ok(())
}

/// Page 1 of every product migrated (the configured ones, or all the account has).
async fn first_pages(ctx: &Arc<Ctx>, client: &Desk360Client) -> Result<Vec<ProductList>> {
    let products: Vec<i64> = if ctx.settings.source.products.is_empty() {
        ctx.store.products().await?.iter().map(|p| p.id).collect()
    } else {
        ctx.settings.source.products.clone()
    };
    let mut lists: Vec<ProductList> = Vec::new();
    for product in products {
        let page = client.ticket_page(&client.first_page_url(product)).await?;
        Progress::add(&ctx.progress.pages, 1);
        lists.push(ProductList {
            product,
            queue: page.tickets.into(),
            next: page.next,
        });
    }
    Ok(lists)
}

/// The list whose next ticket was updated last. Compared as instants: naive times in
/// `source.timezone`, explicit offsets honoured.
fn newest_front(lists: &[ProductList], tz: &jiff::tz::TimeZone) -> Option<usize> {
    lists
        .iter()
        .enumerate()
        .filter_map(|(i, l)| l.queue.front().map(|t| (i, t)))
        .max_by_key(|(_, t)| {
            t.updated_at
                .as_deref()
                .and_then(desk360::parse_timestamp)
                .map(|s| s.to_timestamp(tz))
        })
        .map(|(i, _)| i)
}

/// The details still to fetch (not fetched with a named ticket), a few at a time.
async fn fetch_missing(
    ctx: &Arc<Ctx>,
    client: &Desk360Client,
    to_fetch: &[TicketKey],
    fetched: &[Fetched],
) -> Vec<Fetched> {
    let concurrency = ctx.settings.run.extract_concurrency.max(1);
    let missing: Vec<TicketKey> = to_fetch
        .iter()
        .filter(|k| !fetched.iter().any(|(d, _)| d == *k))
        .copied()
        .collect();
    futures::stream::iter(missing)
        .map(|key| async move { (key, client.ticket(key.product_id, key.ticket_id).await) })
        .buffer_unordered(concurrency)
        .collect()
        .await
}

/// Stores the details the store asked for, and a failure for each that could not be fetched
/// or read; a fatal error (credentials) stops the trial.
async fn store_details(
    ctx: &Arc<Ctx>,
    to_fetch: &[TicketKey],
    details: Vec<Fetched>,
) -> Result<()> {
    let mut batch = Vec::new();
    for (key, result) in details {
        if !to_fetch.contains(&key) {
            continue;
        }
        let failure = match result.map(|d| (d.to_model(key.product_id), d.raw)) {
            Ok((Ok(m), raw)) => {
                batch.push((m.ticket, raw));
                continue;
            }
            Ok((Err(msg), _)) => FailureRecord {
                stage: Stage::Extract,
                step: "detail".into(),
                class: FailureClass::Permanent,
                code: Some("malformed".into()),
                message: format!("ticket {key}: {msg}"),
                request: None,
            },
            Err(e) if e.class() == ErrorClass::Fatal => return Err(EngineError::Source(e)),
            Err(e) => fetch_failure(key, &e),
        };
        ctx.store.record_failure(key, &failure).await?;
        Progress::add(&ctx.progress.extract_failed, 1);
    }
    if !batch.is_empty() {
        ctx.store.save_details(&batch).await?;
        Progress::add(&ctx.progress.extracted, batch.len() as u64);
    }
    Ok(())
}

/// A detail that could not be fetched, classed for `retry-failed`.
fn fetch_failure(key: TicketKey, e: &Desk360Error) -> FailureRecord {
    FailureRecord {
        stage: Stage::Extract,
        step: "detail".into(),
        class: match e.class() {
            ErrorClass::Transient | ErrorClass::RateLimited | ErrorClass::Ambiguous => {
                FailureClass::Transient
            }
            _ => FailureClass::Permanent,
        },
        code: e.status().map(|s| s.to_string()),
        message: e.to_string(),
        request: Some(format!(
            "GET v1/products/{}/tickets/{}",
            key.product_id, key.ticket_id
        )),
    }
}
