//! The extract stage: Desk360 list pages → batches → ticket details → the store.
//!
//! The lister follows each product's `Link: rel=next` chain from the cursor the store kept, and
//! records every page (batch + tickets + next URL) in one transaction, so after a kill it resumes
//! at the first page not recorded and never lists a page twice within one pass. Details are
//! fetched by a few concurrent fetchers fed through a bounded channel (so listing never runs far
//! ahead of fetching), and saved by one writer in batched transactions. A ticket already stored
//! with the same `updated_at` is not fetched again, which also makes a later delta run cheap.
//! A detail that fails (malformed body, 404, retries exhausted) becomes that ticket's failure and
//! the run goes on.

use std::sync::Arc;

use desk360::{Desk360Client, Desk360Error, ErrorClass};
use model::{Agent, Category, Product, TicketKey};
use store::{FailureClass, FailureRecord, ListedTicket, RunKind, Stage};
use tokio::sync::{Mutex, mpsc};

use crate::error::Result;
use crate::progress::Progress;
use crate::run::Ctx;

/// Details saved per transaction at most.
const SAVE_BATCH: usize = 32;

enum Fetched {
    Ok(Box<model::Ticket>, String),
    Failed(TicketKey, FailureRecord),
}

/// Runs the whole extract stage until every product is listed and every listed ticket fetched,
/// or the run is cancelled.
pub(crate) async fn run(ctx: &Arc<Ctx>, client: Desk360Client) -> Result<()> {
    let fresh = start_new_pass(ctx).await?;
    if fresh || ctx.store.products().await?.is_empty() {
        refresh_reference(ctx, &client).await?;
    }
    let products: Vec<i64> = if ctx.settings.source.products.is_empty() {
        ctx.store.products().await?.iter().map(|p| p.id).collect()
    } else {
        ctx.settings.source.products.clone()
    };

    let concurrency = ctx.settings.run.extract_concurrency;
    let (key_tx, key_rx) = mpsc::channel::<TicketKey>(concurrency * 8);
    let (done_tx, done_rx) = mpsc::channel::<Fetched>(SAVE_BATCH * 2);
    let key_rx = Arc::new(Mutex::new(key_rx));

    let writer = tokio::spawn(writer(ctx.clone(), done_rx));
    let mut fetchers = Vec::new();
    for _ in 0..concurrency {
        fetchers.push(tokio::spawn(fetcher(
            ctx.clone(),
            client.clone(),
            key_rx.clone(),
            done_tx.clone(),
        )));
    }
    drop(done_tx);

    let list_result = list_all(ctx, &client, &products, &key_tx).await;
    drop(key_tx);
    for f in fetchers {
        if let Err(e) = f.await {
            tracing::error!(error = %e, "a detail fetcher stopped unexpectedly");
        }
    }
    match writer.await {
        Ok(r) => r?,
        Err(e) => return Err(crate::EngineError::Internal(format!("detail writer: {e}"))),
    }
    list_result
}

/// A new listing pass starts when the latest run or dry run before this one was a real run that
/// completed: that is a delta run (switch-over day), which must look at every page again for
/// changed tickets. Otherwise — an interrupted run, or a dry run's listing that the real run
/// reuses — the cursors are resumed and nothing is listed twice. `retry-failed` does not count.
async fn start_new_pass(ctx: &Ctx) -> Result<bool> {
    let runs = ctx.store.last_runs(50).await?;
    // The newest run is the one that just began.
    let last_real = runs
        .iter()
        .skip(1)
        .find(|r| matches!(r.kind, RunKind::Run | RunKind::DryRun));
    let previous_completed = last_real
        .is_some_and(|r| r.kind == RunKind::Run && r.outcome.as_deref() == Some("completed"));
    let products = ctx.store.products().await?;
    if !previous_completed || products.is_empty() {
        return Ok(false);
    }
    for p in &products {
        ctx.store.reset_list_cursor(p.id).await?;
    }
    tracing::info!("previous run completed: starting a delta pass over every list page");
    Ok(true)
}

async fn refresh_reference(ctx: &Ctx, client: &Desk360Client) -> Result<()> {
    let products = with_raw(client.products().await?, |p| Product {
        id: p.id,
        name: p
            .name
            .clone()
            .unwrap_or_else(|| format!("product {}", p.id)),
    });
    ctx.store.save_products(&products).await?;
    let agents = with_raw(client.agents().await?, |a| Agent {
        id: a.id,
        name: a.name.clone().unwrap_or_else(|| format!("agent {}", a.id)),
        email: a.email.clone(),
    });
    ctx.store.save_agents(&agents).await?;
    let types = with_raw(client.types().await?, |t| Category {
        id: t.id,
        product_id: t.product_id,
        title: t.title.clone().unwrap_or_else(|| format!("type {}", t.id)),
    });
    ctx.store.save_types(&types).await?;
    let reasons = with_raw(client.reasons().await?, |r| Category {
        id: r.id,
        product_id: r.product_id,
        title: r
            .title
            .clone()
            .unwrap_or_else(|| format!("reason {}", r.id)),
    });
    ctx.store.save_reasons(&reasons).await?;
    Ok(())
}

/// Pairs each reference item's domain form with its JSON, which the store keeps.
fn with_raw<T: serde::Serialize, M>(items: Vec<T>, to_model: impl Fn(&T) -> M) -> Vec<(M, String)> {
    items
        .iter()
        .map(|item| {
            (
                to_model(item),
                serde_json::to_string(item).unwrap_or_default(),
            )
        })
        .collect()
}

/// Queues what an earlier run listed but did not fetch, then follows every product's pages.
async fn list_all(
    ctx: &Ctx,
    client: &Desk360Client,
    products: &[i64],
    keys: &mpsc::Sender<TicketKey>,
) -> Result<()> {
    let pending = ctx.store.pending_tickets(u32::MAX).await?;
    Progress::add(&ctx.progress.to_extract, pending.len() as u64);
    for key in pending {
        tokio::select! {
            _ = ctx.cancel.cancelled() => return Ok(()),
            r = keys.send(key) => if r.is_err() { return Ok(()) },
        }
    }
    for &product in products {
        let cursor = ctx.store.list_cursor(product).await?;
        let (mut url, mut page) = match cursor {
            Some(c) if c.complete => continue,
            Some(c) => match c.next_url {
                Some(u) => (u, c.next_page),
                None => (client.first_page_url(product), 1),
            },
            None => (client.first_page_url(product), 1),
        };
        loop {
            if ctx.cancel.is_cancelled() {
                return Ok(());
            }
            let result = tokio::select! {
                _ = ctx.cancel.cancelled() => return Ok(()),
                r = client.ticket_page(&url) => r,
            };
            let listing = match result {
                Ok(p) => p,
                Err(e) => {
                    if e.class() == ErrorClass::Fatal {
                        return Err(e.into());
                    }
                    // Without this page there is no next link: stop this product; the next
                    // run resumes from the stored cursor.
                    tracing::warn!(product, page, error = %e, "list page failed; the next run resumes here");
                    ctx.store
                        .record_page_failure(
                            product,
                            page,
                            &FailureRecord {
                                stage: Stage::Extract,
                                step: "list".into(),
                                class: class_of(&e),
                                code: e
                                    .api_code()
                                    .map(str::to_string)
                                    .or(e.status().map(|s| s.to_string())),
                                message: e.to_string(),
                                request: Some(format!("GET {url}")),
                            },
                        )
                        .await?;
                    break;
                }
            };
            let listed: Vec<ListedTicket> = listing
                .tickets
                .iter()
                .map(|t| ListedTicket {
                    ticket_id: t.id,
                    updated_at: t.updated_at.clone().unwrap_or_default(),
                })
                .collect();
            let outcome = ctx
                .store
                .record_page(product, page, &listed, listing.next.as_deref())
                .await?;
            Progress::add(&ctx.progress.pages, 1);
            Progress::add(&ctx.progress.listed, listed.len() as u64);
            Progress::add(&ctx.progress.to_extract, outcome.to_fetch.len() as u64);
            for key in outcome.to_fetch {
                tokio::select! {
                    _ = ctx.cancel.cancelled() => return Ok(()),
                    r = keys.send(key) => if r.is_err() { return Ok(()) },
                }
            }
            match listing.next {
                Some(next) => {
                    url = next;
                    page += 1;
                }
                None => break,
            }
        }
    }
    Ok(())
}

fn class_of(e: &Desk360Error) -> FailureClass {
    match e.class() {
        ErrorClass::RateLimited | ErrorClass::Transient | ErrorClass::Ambiguous => {
            FailureClass::Transient
        }
        _ => FailureClass::Permanent,
    }
}

async fn fetcher(
    ctx: Arc<Ctx>,
    client: Desk360Client,
    keys: Arc<Mutex<mpsc::Receiver<TicketKey>>>,
    done: mpsc::Sender<Fetched>,
) {
    loop {
        let key = {
            let mut rx = keys.lock().await;
            tokio::select! {
                _ = ctx.cancel.cancelled() => return,
                k = rx.recv() => k,
            }
        };
        let Some(key) = key else { return };
        let result = tokio::select! {
            _ = ctx.cancel.cancelled() => return,
            r = client.ticket(key.product_id, key.ticket_id) => r,
        };
        let item = match result {
            Ok(detail) => match detail.to_model(key.product_id) {
                Ok(m) => {
                    for w in &m.warnings {
                        tracing::warn!(ticket = %key, warning = %w, "ticket detail");
                    }
                    Fetched::Ok(Box::new(m.ticket), detail.raw)
                }
                Err(msg) => Fetched::Failed(
                    key,
                    FailureRecord {
                        stage: Stage::Extract,
                        step: "detail".into(),
                        class: FailureClass::Permanent,
                        code: Some("malformed".into()),
                        message: format!("ticket {key}: {msg}"),
                        request: Some(format!(
                            "GET v1/products/{}/tickets/{}",
                            key.product_id, key.ticket_id
                        )),
                    },
                ),
            },
            Err(e) if e.class() == ErrorClass::Fatal => {
                tracing::error!(error = %e, "Desk360 refused the run; stopping");
                ctx.cancel.cancel();
                return;
            }
            Err(e) => {
                tracing::warn!(ticket = %key, error = %e, "ticket detail failed");
                Fetched::Failed(
                    key,
                    FailureRecord {
                        stage: Stage::Extract,
                        step: "detail".into(),
                        class: class_of(&e),
                        code: e
                            .api_code()
                            .map(str::to_string)
                            .or(e.status().map(|s| s.to_string())),
                        message: e.to_string(),
                        request: Some(format!(
                            "GET v1/products/{}/tickets/{}",
                            key.product_id, key.ticket_id
                        )),
                    },
                )
            }
        };
        if done.send(item).await.is_err() {
            return;
        }
    }
}

/// The single writer of details: batches them into few transactions.
async fn writer(ctx: Arc<Ctx>, mut rx: mpsc::Receiver<Fetched>) -> Result<()> {
    let mut batch: Vec<(model::Ticket, String)> = Vec::with_capacity(SAVE_BATCH);
    loop {
        let first = rx.recv().await;
        let Some(first) = first else { break };
        // Take whatever else is already waiting, without waiting for more: a fetched detail is
        // committed at once, so a kill loses (and later re-fetches) as few as possible.
        let mut items = vec![first];
        while items.len() < SAVE_BATCH {
            match rx.try_recv() {
                Ok(item) => items.push(item),
                Err(_) => break,
            }
        }
        for item in items {
            match item {
                Fetched::Ok(t, raw) => batch.push((*t, raw)),
                Fetched::Failed(key, failure) => {
                    ctx.store.record_failure(key, &failure).await?;
                    Progress::add(&ctx.progress.extract_failed, 1);
                }
            }
        }
        if !batch.is_empty() {
            ctx.store.save_details(&batch).await?;
            Progress::add(&ctx.progress.extracted, batch.len() as u64);
            batch.clear();
            ctx.extracted.notify_waiters();
        }
    }
    Ok(())
}
