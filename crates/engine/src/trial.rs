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

use desk360::{Desk360Client, ErrorClass, TicketSummary};
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
    let mut picked: BTreeMap<i64, Vec<ListedTicket>> = BTreeMap::new();
    let mut order: Vec<TicketKey> = Vec::new();
    let mut details = Vec::new();

    for key in named {
        if order.contains(key) {
            continue;
        }
        let detail = client.ticket(key.product_id, key.ticket_id).await?;
        picked
            .entry(key.product_id)
            .or_default()
            .push(ListedTicket {
                ticket_id: key.ticket_id,
                updated_at: detail.updated_at.clone().unwrap_or_default(),
            });
        order.push(*key);
        details.push((*key, Ok(detail)));
    }

    if let Some(limit) = limit {
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
            // Compared as instants: naive times in source.timezone, explicit offsets honoured.
            let tz = &ctx.settings.source.timezone;
            let newest = lists
                .iter()
                .enumerate()
                .filter_map(|(i, l)| l.queue.front().map(|t| (i, t)))
                .max_by_key(|(_, t)| {
                    t.updated_at
                        .as_deref()
                        .and_then(desk360::parse_timestamp)
                        .map(|s| s.to_timestamp(tz))
                })
                .map(|(i, _)| i);
            let Some(i) = newest else { break };
            let Some(summary) = lists[i].queue.pop_front() else {
                break;
            };
            let key = TicketKey::new(lists[i].product, summary.id);
            if order.contains(&key) {
                continue;
            }
            picked
                .entry(key.product_id)
                .or_default()
                .push(ListedTicket {
                    ticket_id: summary.id,
                    updated_at: summary.updated_at.clone().unwrap_or_default(),
                });
            order.push(key);
            taken += 1;
        }
    }

    let mut to_fetch: Vec<TicketKey> = Vec::new();
    for (product, listed) in &picked {
        to_fetch.extend(ctx.store.record_selected(*product, listed).await?);
    }
    Progress::add(&ctx.progress.listed, order.len() as u64);
    Progress::add(&ctx.progress.to_extract, to_fetch.len() as u64);

    // Details: those already fetched (named tickets), the rest a few at a time.
    let concurrency = ctx.settings.run.extract_concurrency.max(1);
    let missing: Vec<TicketKey> = to_fetch
        .iter()
        .filter(|k| !details.iter().any(|(d, _)| d == *k))
        .copied()
        .collect();
    let fetched: Vec<_> = futures::stream::iter(missing)
        .map(|key| async move { (key, client.ticket(key.product_id, key.ticket_id).await) })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    details.extend(fetched);

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
            Err(e) => FailureRecord {
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
            },
        };
        ctx.store.record_failure(key, &failure).await?;
        Progress::add(&ctx.progress.extract_failed, 1);
    }
    if !batch.is_empty() {
        ctx.store.save_details(&batch).await?;
        Progress::add(&ctx.progress.extracted, batch.len() as u64);
    }
    ctx.store.set_trial_selection(&order).await?;
    Ok(order)
}
