//! The extract stage: Desk360 list pages → batches → ticket details → the store.
//!
//! Listing follows each product's pages in Desk360's documented default order (newest update
//! first) by the server's `Link: rel=next`, and records every page (batch + tickets + cursor) in
//! one transaction, so after a kill it resumes at the first page not recorded. A full pass is
//! followed by catch-ups from page 1 down to the high-water mark until one finds nothing new:
//! a ticket updated or created while the run lists is still migrated by the same run, and a later
//! run (switch-over day) costs the pages that hold changes, not the size of the account. A `Link`
//! that leads back to a page already read stops that product with a failure naming the page.
//! Details are fetched by a few concurrent fetchers fed through a bounded channel (so listing
//! never runs far ahead of fetching), and saved by one writer in batched transactions. A ticket
//! already stored with the same `updated_at` is not fetched again. A detail that fails
//! (malformed body, 404, retries exhausted) becomes that ticket's failure and the run goes on.

use std::collections::HashMap;
use std::sync::Arc;

use desk360::{Desk360Client, ErrorClass};
use jiff::Timestamp;
use model::{Agent, Category, Product, TicketKey};
use store::{
    CursorUpdate, FailureClass, FailureRecord, FailureStep, ListMode, ListedTicket, RunKind, Stage,
};
use tokio::sync::{Mutex, mpsc};

use crate::ctx::Ctx;
use crate::error::{Result, failure_of};
use crate::progress::Progress;

/// Details saved per transaction at most.
const SAVE_BATCH: usize = 32;

enum Fetched {
    /// The ticket, its raw JSON, and what normalization carried over in a safer form.
    Ok(Box<model::Ticket>, String, Vec<String>),
    Failed(TicketKey, FailureRecord),
}

/// What the extract stage lists before fetching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listing {
    /// Every product: a full pass where none completed yet, then catch-ups down to the mark.
    All,
    /// No listing: only fetch the details of tickets already listed and still `pending`
    /// (`retry-failed` after an extraction failure).
    PendingOnly,
}

/// Runs the whole extract stage until every product is listed and every listed ticket fetched,
/// or the run is cancelled.
pub(crate) async fn run(ctx: &Arc<Ctx>, client: Desk360Client, listing: Listing) -> Result<()> {
    if listing == Listing::All {
        let delta = previous_run_completed(ctx).await?;
        if delta || ctx.store.products().await?.is_empty() {
            refresh_reference(ctx, &client).await?;
        }
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

    let list_result = list_all(ctx, &client, &products, &key_tx, listing).await;
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

/// Whether the latest real run (or dry run) before this one completed: this run is then a delta
/// run (switch-over day) and refreshes the reference data. `retry-failed` does not count.
async fn previous_run_completed(ctx: &Ctx) -> Result<bool> {
    let runs = ctx.store.last_runs(50).await?;
    // The newest run is the one that just began.
    let last_real = runs
        .iter()
        .skip(1)
        .find(|r| matches!(r.kind, RunKind::Run | RunKind::DryRun));
    Ok(last_real
        .is_some_and(|r| r.kind == RunKind::Run && r.outcome == Some(store::RunOutcome::Completed)))
}

pub(crate) async fn refresh_reference(ctx: &Ctx, client: &Desk360Client) -> Result<()> {
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
    let types = with_raw(client.types().await?, |t| {
        category("type", t.id, t.product_id, &t.title)
    });
    ctx.store.save_types(&types).await?;
    let reasons = with_raw(client.reasons().await?, |r| {
        category("reason", r.id, r.product_id, &r.title)
    });
    ctx.store.save_reasons(&reasons).await?;
    Ok(())
}

/// A ticket type or reason as stored; an untitled one is named by its `kind` and id.
fn category(kind: &str, id: i64, product_id: Option<i64>, title: &Option<String>) -> Category {
    Category {
        id,
        product_id,
        title: title.clone().unwrap_or_else(|| format!("{kind} {id}")),
    }
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

/// Queues what an earlier run listed but did not fetch, then lists every product: first each
/// product's unfinished listing (a full pass, or whatever a killed run left), then rounds of
/// catch-ups from page 1 down to the high-water marks. A round includes every product the first
/// time and, after that, the products whose catch-up found something new, until a round finds
/// nothing: the run then holds everything that existed when its last catch-up started.
async fn list_all(
    ctx: &Ctx,
    client: &Desk360Client,
    products: &[i64],
    keys: &mpsc::Sender<TicketKey>,
    listing: Listing,
) -> Result<()> {
    let mut queue = KeyQueue {
        keys,
        queued: HashMap::new(),
    };
    let pending = ctx.store.pending_tickets(u32::MAX).await?;
    Progress::add(&ctx.progress.to_extract, pending.len() as u64);
    for key in pending {
        if !queue.send(ctx, key, None).await {
            return Ok(());
        }
    }
    if listing == Listing::PendingOnly {
        return Ok(());
    }
    // Products whose listing stopped on a failure are left out of the rounds.
    let mut active: Vec<i64> = Vec::new();
    for &product in products {
        if ctx.cancel.is_cancelled() {
            return Ok(());
        }
        match finish_listing(ctx, client, product, &mut queue).await? {
            Some(_) => active.push(product),
            None => tracing::warn!(product, "listing stopped; the next run resumes it"),
        }
    }
    for round in 0..MAX_CATCHUPS {
        let mut changed_products = Vec::new();
        for &product in &active {
            if ctx.cancel.is_cancelled() {
                return Ok(());
            }
            start_catch_up(ctx, client, product).await?;
            if let Some(changed) = finish_listing(ctx, client, product, &mut queue).await?
                && changed > 0
            {
                changed_products.push(product);
            }
        }
        if changed_products.is_empty() {
            return Ok(());
        }
        tracing::info!(round, products = ?changed_products, "Desk360 changed during the listing; catching up again");
        active = changed_products;
    }
    tracing::warn!(
        catchups = MAX_CATCHUPS,
        "Desk360 keeps changing faster than the catch-ups; the next run continues from the stored marks"
    );
    Ok(())
}

/// Keys sent to the fetchers in this run, so a ticket listed twice (a catch-up, a shifted page)
/// is fetched once while it waits.
struct KeyQueue<'a> {
    keys: &'a mpsc::Sender<TicketKey>,
    /// Key → the listed `updated_at` it was queued for (`None`: queued from the store).
    queued: HashMap<TicketKey, Option<String>>,
}

impl KeyQueue<'_> {
    /// Sends a key unless it was already queued for the same `updated_at`. `false` when the run
    /// stops.
    async fn send(&mut self, ctx: &Ctx, key: TicketKey, updated_at: Option<&str>) -> bool {
        match self.queued.get(&key) {
            Some(None) => return true,
            Some(Some(u)) if Some(u.as_str()) == updated_at => return true,
            _ => {}
        }
        self.queued.insert(key, updated_at.map(str::to_string));
        tokio::select! {
            _ = ctx.cancel.cancelled() => false,
            r = self.keys.send(key) => r.is_ok(),
        }
    }
}

/// How far below the previous listing's high-water mark a catch-up keeps reading. Desk360
/// stamps `updated_at` in whole seconds when it writes a ticket; a write that commits a little
/// after its stamp (a slow transaction) can show a time just below a mark taken meanwhile. Two
/// minutes is far beyond any such delay and costs at most a page more per catch-up.
const CATCHUP_MARGIN_SECS: i64 = 120;
/// Catch-up rounds per run at most: a help desk busy enough to change tickets faster than we
/// list them would otherwise keep one run listing forever; the next run goes on from the marks.
const MAX_CATCHUPS: usize = 20;

/// Where one product's listing goes next.
struct ListingState {
    url: String,
    page: i64,
    mode: ListMode,
    stop_at: Option<String>,
    top: Option<String>,
    mark: Option<String>,
}

/// Turns a product's completed cursor into a catch-up from page 1 down to its mark (a product
/// never listed, or whose listing is unfinished, is left as it is).
async fn start_catch_up(ctx: &Ctx, client: &Desk360Client, product: i64) -> Result<()> {
    let Some(c) = ctx.store.list_cursor(product).await? else {
        return Ok(());
    };
    if !c.complete {
        return Ok(());
    }
    let first = client.first_page_url(product);
    ctx.store
        .start_listing(
            product,
            &CursorUpdate {
                next_url: Some(&first),
                mode: ListMode::CatchUp,
                // No mark (a listing of an earlier version): read every page once more.
                stop_at: c.mark.as_deref(),
                top: None,
                mark: c.mark.as_deref(),
            },
        )
        .await?;
    Ok(())
}

/// Lists one product exactly, whatever the server's `Link` carries, until its current listing
/// is complete. Returns how many tickets were new or changed, or `None` when the listing stopped
/// (cancelled, or a page failed and was recorded).
///
/// Pages are read in Desk360's documented default order, newest update first, with no query
/// parameter of ours (so a `Link` that keeps our parameters and one that carries only `page`
/// lead to the same pages). A ticket updated or created during a pass moves to page 1 and only
/// shifts later pages down: a ticket may be listed twice, never skipped. A catch-up reads from
/// page 1 down to the previous listing's high-water mark (the newest `updated_at` on page 1 when
/// it started, minus [`CATCHUP_MARGIN_SECS`]).
async fn finish_listing(
    ctx: &Ctx,
    client: &Desk360Client,
    product: i64,
    queue: &mut KeyQueue<'_>,
) -> Result<Option<usize>> {
    let cursor = ctx.store.list_cursor(product).await?;
    let first = client.first_page_url(product);
    let state = match cursor {
        None => ListingState {
            url: first,
            page: 1,
            mode: ListMode::Full,
            stop_at: None,
            top: None,
            mark: None,
        },
        // A cursor of an earlier version that listed oldest first (`order=asc`): its later
        // pages would be read in another order; start a pass in the default order instead.
        Some(c) if !c.complete && c.next_url.as_deref().is_some_and(is_ascending_url) => {
            ListingState {
                url: first,
                page: 1,
                mode: ListMode::Full,
                stop_at: None,
                top: None,
                mark: c.mark,
            }
        }
        Some(c) if !c.complete => ListingState {
            url: c.next_url.unwrap_or(first),
            page: c.next_page,
            mode: c.mode,
            stop_at: c.stop_at,
            top: c.top,
            mark: c.mark,
        },
        Some(_) => return Ok(Some(0)),
    };
    Ok(
        match follow_listing(ctx, client, product, queue, state).await? {
            Followed::Stopped => None,
            Followed::Finished { changed } => Some(changed),
        },
    )
}

/// How following one listing ended.
enum Followed {
    /// Cancelled, or a page failed (recorded; the next run resumes at the stored cursor).
    Stopped,
    /// The listing reached its end; `changed` tickets were new or updated.
    Finished { changed: usize },
}

/// Follows one listing (a full pass or a catch-up) page by page from `state`.
async fn follow_listing(
    ctx: &Ctx,
    client: &Desk360Client,
    product: i64,
    queue: &mut KeyQueue<'_>,
    mut state: ListingState,
) -> Result<Followed> {
    let mut changed = 0usize;
    // Pages read in this listing by what they hold, to stop a `Link` that leads back.
    let mut seen_pages: HashMap<u64, i64> = HashMap::new();
    // Whether every page so far was newest-first, as the page documents; if not, a catch-up
    // cannot stop early and reads every page.
    let mut ordered = true;
    loop {
        let url = state.url.clone();
        let page = state.page;
        let Some(listing) = fetch_page(ctx, client, product, &url, page).await? else {
            return Ok(Followed::Stopped);
        };

        let fingerprint = page_fingerprint(&listing.tickets);
        let leads_back = listing
            .next
            .as_deref()
            .and_then(page_param)
            .is_some_and(|next| next <= page_param(&url).unwrap_or(page));
        if let Some(&earlier) = seen_pages
            .get(&fingerprint)
            .filter(|_| !listing.tickets.is_empty())
        {
            return link_loop(ctx, product, page, &url, Some(earlier)).await;
        }
        seen_pages.insert(fingerprint, page);

        let tz = &ctx.settings.source.timezone;
        let times: Vec<Option<Timestamp>> = listing
            .tickets
            .iter()
            .map(|t| t.updated_at.as_deref().and_then(|u| listed_time(u, tz)))
            .collect();
        if ordered && !newest_first(&times) {
            ordered = false;
            tracing::warn!(
                product,
                page,
                "Desk360 list page is not newest-first as documented; catch-ups read every page"
            );
        }
        if page == 1 || state.top.is_none() {
            let newest = listing
                .tickets
                .iter()
                .filter_map(|t| t.updated_at.clone())
                .max_by_key(|u| listed_time(u, tz));
            state.top = newest.or(state.top.take());
        }
        let below_stop = ordered && reached_stop(&state, &times, tz);
        let finished = listing.next.is_none() || below_stop;
        if leads_back && !finished {
            return link_loop(ctx, product, page, &url, None).await;
        }
        let Some(n) = record_page(ctx, product, queue, &state, &listing, finished).await? else {
            return Ok(Followed::Stopped);
        };
        changed += n;
        if finished {
            return Ok(Followed::Finished { changed });
        }
        match listing.next {
            Some(next) => {
                state.url = next;
                state.page += 1;
            }
            None => return Ok(Followed::Finished { changed }),
        }
    }
}

/// Reads one list page. `None` when the run is stopping, or when the page failed: the failure
/// is recorded and the next run resumes from the stored cursor. A fatal error (credentials)
/// ends the run.
async fn fetch_page(
    ctx: &Ctx,
    client: &Desk360Client,
    product: i64,
    url: &str,
    page: i64,
) -> Result<Option<desk360::TicketPage>> {
    if ctx.cancel.is_cancelled() {
        return Ok(None);
    }
    let result = tokio::select! {
        _ = ctx.cancel.cancelled() => return Ok(None),
        r = client.ticket_page(url) => r,
    };
    match result {
        Ok(p) => Ok(Some(p)),
        // Nothing was sent: the run is stopping.
        Err(e) if e.class() == ErrorClass::Cancelled => Ok(None),
        Err(e) if e.class() == ErrorClass::Fatal => Err(e.into()),
        Err(e) => {
            // Without this page there is no next link: stop this product; the next run
            // resumes from the stored cursor.
            tracing::warn!(product, page, error = %e, "list page failed; the next run resumes here");
            ctx.store
                .record_page_failure(
                    product,
                    page,
                    &failure_of(
                        &e,
                        Stage::Extract,
                        FailureStep::List,
                        Some(format!("GET {url}")),
                    ),
                )
                .await?;
            Ok(None)
        }
    }
}

/// Whether a page's update times run newest first (unreadable times are not compared).
fn newest_first(times: &[Option<Timestamp>]) -> bool {
    !times
        .windows(2)
        .any(|w| matches!(w, [Some(a), Some(b)] if a < b))
}

/// A catch-up is done once a page reaches below its stop mark (minus the margin).
fn reached_stop(
    state: &ListingState,
    times: &[Option<Timestamp>],
    tz: &jiff::tz::TimeZone,
) -> bool {
    state.mode == ListMode::CatchUp
        && state
            .stop_at
            .as_deref()
            .and_then(|u| listed_time(u, tz))
            .is_some_and(|stop| {
                let limit = stop
                    .checked_sub(jiff::SignedDuration::from_secs(CATCHUP_MARGIN_SECS))
                    .unwrap_or(stop);
                times
                    .last()
                    .copied()
                    .flatten()
                    .is_some_and(|oldest| oldest < limit)
            })
}

/// Stores a page's tickets with the cursor that follows it (the listing's new mark when it is
/// the last), records its unreadable entries, and queues the tickets to fetch. Returns how many
/// tickets were new or updated; `None` when the run stops while queueing.
async fn record_page(
    ctx: &Ctx,
    product: i64,
    queue: &mut KeyQueue<'_>,
    state: &ListingState,
    listing: &desk360::TicketPage,
    finished: bool,
) -> Result<Option<usize>> {
    let tz = &ctx.settings.source.timezone;
    let new_mark = if finished {
        newer_of(state.top.as_deref(), state.mark.as_deref(), tz)
    } else {
        state.mark.clone()
    };
    let listed: Vec<ListedTicket> = listing
        .tickets
        .iter()
        .map(|t| ListedTicket {
            ticket_id: t.id,
            updated_at: t.updated_at.clone().unwrap_or_default(),
        })
        .collect();
    let cursor = CursorUpdate {
        next_url: if finished {
            None
        } else {
            listing.next.as_deref()
        },
        mode: state.mode,
        stop_at: state.stop_at.as_deref(),
        top: state.top.as_deref(),
        mark: new_mark.as_deref(),
    };
    let outcome = ctx
        .store
        .record_listing_page(product, state.page, &listed, &cursor)
        .await?;
    if !listing.invalid.is_empty() {
        record_unreadable_entries(ctx, product, state.page, &state.url, &listing.invalid).await?;
    }
    Progress::add(&ctx.progress.pages, 1);
    Progress::add(&ctx.progress.listed, outcome.changed as u64);
    Progress::add(&ctx.progress.to_extract, outcome.to_fetch.len() as u64);
    for key in outcome.to_fetch {
        let updated = listed
            .iter()
            .find(|t| t.ticket_id == key.ticket_id)
            .map(|t| t.updated_at.as_str());
        if !queue.send(ctx, key, updated).await {
            return Ok(None);
        }
    }
    Ok(Some(outcome.changed))
}

/// Stops a product whose `Link` leads back to a page already read: recorded as a failure of
/// that page that names it, so the run ends with something to look at instead of listing forever.
async fn link_loop(
    ctx: &Ctx,
    product: i64,
    page: i64,
    url: &str,
    same_as: Option<i64>,
) -> Result<Followed> {
    let message = match same_as {
        Some(earlier) => format!(
            "Desk360's list of product {product} loops: page {page} ({url}) holds exactly the tickets of page {earlier} already read in this pass; listing of this product stopped. Check the product's ticket list in Desk360 and run again"
        ),
        None => format!(
            "Desk360's list of product {product} loops: the Link of page {page} ({url}) leads back to an earlier page; listing of this product stopped. Run again later"
        ),
    };
    tracing::error!(product, page, "{message}");
    let record = page_failure(FailureStep::List, "link_loop", message, url);
    ctx.store
        .record_page_failure(product, page, &record)
        .await?;
    Ok(Followed::Stopped)
}

/// A list entry Desk360 sent that could not be read (no usable id): counted in the report as a
/// failure of the page, never dropped with only a log line.
async fn record_unreadable_entries(
    ctx: &Ctx,
    product: i64,
    page: i64,
    url: &str,
    invalid: &[desk360::InvalidEntry],
) -> Result<()> {
    let details: Vec<String> = invalid
        .iter()
        .map(|e| format!("{} ({})", e.detail, e.excerpt))
        .collect();
    let message = format!(
        "{} entr{} of product {product}'s ticket list could not be read and cannot be migrated: {}",
        invalid.len(),
        if invalid.len() == 1 { "y" } else { "ies" },
        details.join("; ")
    );
    let record = page_failure(FailureStep::ListEntry, "unreadable_entry", message, url);
    ctx.store
        .record_page_failure(product, page, &record)
        .await?;
    Progress::add(&ctx.progress.extract_failed, invalid.len() as u64);
    Ok(())
}

/// A permanent failure of the list page at `url`: the page stays in the report with its own
/// code until the listing is fixed and run again.
fn page_failure(step: FailureStep, code: &str, message: String, url: &str) -> FailureRecord {
    FailureRecord {
        stage: Stage::Extract,
        step,
        class: FailureClass::Permanent,
        code: Some(code.into()),
        message,
        request: Some(format!("GET {url}")),
    }
}

/// What a page holds, to recognise the same page under another URL.
fn page_fingerprint(tickets: &[desk360::TicketSummary]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for t in tickets {
        t.id.hash(&mut h);
        t.updated_at.hash(&mut h);
    }
    h.finish()
}

/// The `page` query parameter of a list URL, when it has one.
fn page_param(url: &str) -> Option<i64> {
    let parsed = url::Url::parse(url).ok()?;
    parsed
        .query_pairs()
        .find(|(k, _)| k == "page")
        .and_then(|(_, v)| v.trim().parse().ok())
}

/// Whether a stored cursor URL lists oldest first (written by an earlier version).
fn is_ascending_url(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| {
        u.query_pairs()
            .any(|(k, v)| k == "order" && v.eq_ignore_ascii_case("asc"))
    })
}

/// A listed `updated_at` as an instant (naive values in `source.timezone`, explicit offsets
/// honoured), so marks compare correctly whatever form Desk360 sends.
fn listed_time(s: &str, tz: &jiff::tz::TimeZone) -> Option<Timestamp> {
    desk360::parse_timestamp(s).map(|t| t.to_timestamp(tz))
}

/// The later of two Desk360 `updated_at` texts (an unreadable one loses).
fn newer_of(a: Option<&str>, b: Option<&str>, tz: &jiff::tz::TimeZone) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => {
            if listed_time(a, tz) >= listed_time(b, tz) {
                Some(a.to_string())
            } else {
                Some(b.to_string())
            }
        }
        (a, b) => a.or(b).map(str::to_string),
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
            Ok(detail) => match detail.to_model_in(key.product_id, &ctx.settings.source.timezone) {
                Ok(m) => Fetched::Ok(Box::new(m.ticket), detail.raw, m.warnings),
                Err(msg) => Fetched::Failed(
                    key,
                    FailureRecord {
                        stage: Stage::Extract,
                        step: FailureStep::Detail,
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
            // Nothing was sent: the run is stopping; the ticket stays pending.
            Err(e) if e.class() == ErrorClass::Cancelled => return,
            Err(e) if e.class() == ErrorClass::Fatal => {
                tracing::error!(error = %e, "Desk360 refused the run; stopping");
                ctx.cancel.cancel();
                return;
            }
            Err(e) => {
                tracing::warn!(ticket = %key, error = %e, "ticket detail failed");
                Fetched::Failed(
                    key,
                    failure_of(
                        &e,
                        Stage::Extract,
                        FailureStep::Detail,
                        Some(format!(
                            "GET v1/products/{}/tickets/{}",
                            key.product_id, key.ticket_id
                        )),
                    ),
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
    let mut notes: Vec<(TicketKey, Vec<String>)> = Vec::new();
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
                Fetched::Ok(t, raw, warnings) => {
                    if !warnings.is_empty() {
                        notes.push((t.key, warnings));
                    }
                    batch.push((*t, raw));
                }
                Fetched::Failed(key, failure) => {
                    ctx.store.record_failure(key, &failure).await?;
                    Progress::add(&ctx.progress.extract_failed, 1);
                }
            }
        }
        if !batch.is_empty() {
            ctx.store.save_details(&batch).await?;
            // What normalization carried over in a safer form (an unknown message type kept as
            // an internal note): counted in the report, never only a log line.
            for (key, warnings) in notes.drain(..) {
                for w in &warnings {
                    tracing::warn!(ticket = %key, warning = %w, "ticket detail");
                }
                ctx.store.record_source_warnings(key, &warnings).await?;
            }
            Progress::add(&ctx.progress.extracted, batch.len() as u64);
            batch.clear();
            ctx.extracted.notify_waiters();
        }
    }
    Ok(())
}
