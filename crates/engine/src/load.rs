//! The load stage: extracted tickets → Deskie cases, exactly once.
//!
//! Many cases are in flight (`run.concurrency`, a semaphore), but the writes of one case are
//! strictly sequential: create, later replies, notes, then the final status update. Every write
//! follows the journal rule of DESIGN.md: an intent is committed before the request, and the
//! Deskie id is recorded with the intent's completion in one transaction after it.
//!
//! A write whose outcome is unknown (lost response, timeout, 5xx after sending) is never settled
//! at once: a slow server or a proxy may still apply it. The ticket is *parked* with its intent
//! open, the others go on, and after `run.reconcile_settle` (longer than any request can live)
//! Deskie is read: the case by its source key (a lookup that holds under every reading of the
//! search page) or, without a source-id field, among the most recently changed cases (the
//! documented default sort); a message by time + content in the case's message list. Only a read
//! that proves absence lets the write be sent again; when absence cannot be proven the ticket
//! stops with a failure naming what to check. Intents a killed process left open are settled the
//! same way, counting the settle time from when they were opened.
//!
//! The final status is not certain once a reply was added (a customer reply may reopen a case,
//! an agent reply may set it `waiting`; the pages do not say), so each such case ends with a
//! status update, grouped with other cases that need the same values into the documented bulk
//! update (≤ 10 cases a request). A case is `loaded` once its update is confirmed.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deskie::{
    BULK_MAX, Case, CaseLookup, CaseQuery, CaseUpdate, DeskieClient, DeskieError, ErrorClass,
    MessageInfo,
};
use jiff::Timestamp;
use model::TicketKey;
use sha2::Digest;
use store::{
    CaseRef, FailureClass, FailureRecord, FailureStep, Intent, IntentId, IntentResult, IntentStep,
    LoadState, Stage,
};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::attachments::Desk360File;
use crate::ctx::Ctx;
use crate::error::{EngineError, Result, failure_of};
use crate::mapping::{CasePlan, MapContext, Mapped, Step, map_ticket, normalize_body};
use crate::progress::Progress;

/// Times a write may be found absent after its answer was lost and be sent again, before the
/// ticket is failed (transient: the next run tries again).
const MAX_AMBIGUOUS_ATTEMPTS: u32 = 3;
/// Pages of the most recently changed cases a lookup without a source-id field reads at most.
const RECENT_PAGES: u32 = 5;
/// Clock difference tolerated between this machine and Deskie when deciding that a case changed
/// before our request was sent (so it cannot be the case we created).
const CLOCK_SKEW: Duration = Duration::from_secs(600);
/// An idempotent write (the final update) whose answer was lost is simply sent again this often.
const MAX_UPDATE_ATTEMPTS: usize = 3;

/// How loading one ticket ended, or where it waits.
enum Done {
    Loaded,
    Skipped,
    Failed(FailureClass),
    /// Cancelled between writes: the ticket stays where it is and is picked up again.
    Interrupted,
    /// A write's outcome is unknown; look for it once it can no longer land.
    Parked(Instant),
    /// Every message is in; the final status update joins a bulk request.
    AwaitingFinal(FinalItem),
}

/// One case waiting for its final update.
#[derive(Debug, Clone)]
struct FinalItem {
    key: TicketKey,
    case_id: i64,
    update: CaseUpdate,
}

/// What a finished task hands back to the loader loop.
enum TaskOut {
    /// One ticket's load.
    Case(TicketKey, Result<Done>),
    /// A bulk final update and what it did to each of its tickets.
    Finals(Vec<(TicketKey, Result<Done>)>),
}

/// Why one write did not go through.
enum WriteError {
    /// Record the ticket as failed with this record.
    Item(FailureRecord),
    /// The outcome is unknown; the intent stays open until this instant, then it is reconciled.
    Park(Instant),
    /// Cancelled before the request was sent; the intent was abandoned.
    Cancelled,
    /// Stop the whole run (credentials refused, store failure).
    Fatal(EngineError),
}

impl From<store::StoreError> for WriteError {
    fn from(e: store::StoreError) -> Self {
        WriteError::Fatal(e.into())
    }
}

/// Shared lookups the mapping needs, loaded once per run.
struct Lookups {
    types: BTreeMap<i64, String>,
    reasons: BTreeMap<i64, String>,
}

/// The loader's own state between iterations.
struct Loop {
    consecutive_transient: AtomicU64,
    fatal: Option<EngineError>,
    /// Tickets whose write outcome is unknown, with when to look for it.
    parked: Vec<(Instant, TicketKey)>,
    /// Cases waiting for their final update, grouped by the update's payload.
    finals: BTreeMap<String, Vec<FinalItem>>,
}

/// Runs the load stage until every extracted ticket is handled and extraction has finished, or
/// until cancelled. Returns a reason when it stopped early on its own (Deskie unavailable).
pub(crate) async fn run(ctx: &Arc<Ctx>, client: DeskieClient) -> Result<Option<String>> {
    let semaphore = Arc::new(Semaphore::new(ctx.settings.run.concurrency));
    let outage_limit = (ctx.settings.run.concurrency as u64 * 2).max(10);
    let mut tasks: tokio::task::JoinSet<TaskOut> = tokio::task::JoinSet::new();
    let mut st = Loop {
        consecutive_transient: AtomicU64::new(0),
        fatal: None,
        parked: Vec::new(),
        finals: BTreeMap::new(),
    };
    let mut stopped: Option<String> = None;
    // Claimed tickets not started yet, in listing order.
    let mut ready: VecDeque<TicketKey> = VecDeque::new();
    let mut lookups = Arc::new(load_lookups(ctx).await?);
    let mut lookups_loaded_with_extract_done = ctx.extraction_is_over();
    let mut extraction = ctx.extraction_over.subscribe();

    loop {
        while let Some(joined) = tasks.try_join_next() {
            handle_joined(ctx, joined, &mut st);
        }
        if st.fatal.is_some() {
            ctx.cancel.cancel();
        }
        if st.consecutive_transient.load(Ordering::Relaxed) >= outage_limit && stopped.is_none() {
            let msg = format!(
                "Deskie looks unavailable ({outage_limit} tickets in a row failed with transient errors); loading stopped, run again later to continue"
            );
            tracing::error!("{msg}");
            stopped = Some(msg);
            ctx.load_cancel.cancel();
        }
        if stopping(ctx) {
            break;
        }
        // Full groups of final updates go out at once.
        flush_finals_where(ctx, &client, &mut tasks, &mut st, |items| {
            items.len() >= BULK_MAX
        });

        let extract_done = ctx.extraction_is_over();
        if extract_done && !lookups_loaded_with_extract_done {
            // Reference data may have arrived with this run's extraction.
            lookups = Arc::new(load_lookups(ctx).await?);
            lookups_loaded_with_extract_done = true;
        }

        // Parked tickets whose settle time is over come back first.
        let now = Instant::now();
        let mut due: Vec<TicketKey> = Vec::new();
        st.parked.retain(|(at, key)| {
            if *at <= now {
                due.push(*key);
                false
            } else {
                true
            }
        });
        let free = semaphore.available_permits().saturating_sub(due.len());
        claim_ahead(ctx, &mut ready, free).await?;
        let start = free.min(ready.len());
        if start == 0 && due.is_empty() {
            if extract_done && tasks.is_empty() && ready.is_empty() {
                if !st.finals.is_empty() {
                    // Nothing else will join the partial groups: send them.
                    flush_finals_where(ctx, &client, &mut tasks, &mut st, |_| true);
                    continue;
                }
                if st.parked.is_empty() {
                    // Nothing claimed, running, parked or waiting: done.
                    break;
                }
            }
            let next_parked = st.parked.iter().map(|(at, _)| *at).min();
            let notified = ctx.extracted.notified();
            tokio::select! {
                _ = ctx.cancel.cancelled() => {}
                _ = ctx.load_cancel.cancelled() => {}
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                    handle_joined(ctx, joined, &mut st);
                }
                _ = notified => {}
                _ = extraction.changed(), if !extract_done => {}
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = sleep_until_opt(next_parked) => {}
            }
            continue;
        }
        for key in due.into_iter().chain(ready.drain(..start)) {
            let permit = tokio::select! {
                _ = ctx.cancel.cancelled() => break,
                _ = ctx.load_cancel.cancelled() => break,
                p = semaphore.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let ctx = ctx.clone();
            let client = client.clone();
            let lookups = lookups.clone();
            tasks.spawn(async move {
                let _permit = permit;
                TaskOut::Case(key, load_one(&ctx, &client, &lookups, key).await)
            });
        }
    }
    // Let in-flight cases finish their current write (they stop between writes when cancelled).
    // Parked tickets and unsent final updates stay `loading` and go back in line at the end of
    // the run; their open intents are reconciled by the next run.
    while let Some(joined) = tasks.join_next().await {
        handle_joined(ctx, joined, &mut st);
    }
    match st.fatal {
        Some(e) => Err(e),
        None => Ok(stopped),
    }
}

/// Tops `ready` up when it holds fewer tickets than there are `free` slots: a whole
/// `run.concurrency` at a time rather than one per freed slot, since a claim is a transaction of
/// its own. The unstarted ones wait in listing order; a stop leaves them `loading`, and the end of
/// the run (or the next start, after a kill) hands them back.
async fn claim_ahead(ctx: &Ctx, ready: &mut VecDeque<TicketKey>, free: usize) -> Result<()> {
    if free <= ready.len() {
        return Ok(());
    }
    let want = u32::try_from(ctx.settings.run.concurrency.max(free)).unwrap_or(u32::MAX);
    let claimed = if ctx.selected_only.load(Ordering::Relaxed) {
        ctx.store.claim_for_load_selected(want).await?
    } else {
        ctx.store.claim_for_load(want).await?
    };
    ready.extend(claimed);
    Ok(())
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Spawns a bulk final update for every group `due` selects.
fn flush_finals_where(
    ctx: &Arc<Ctx>,
    client: &DeskieClient,
    tasks: &mut tokio::task::JoinSet<TaskOut>,
    st: &mut Loop,
    due: impl Fn(&[FinalItem]) -> bool,
) {
    let keys: Vec<String> = st
        .finals
        .iter()
        .filter(|(_, items)| due(items))
        .map(|(k, _)| k.clone())
        .collect();
    for k in keys {
        let Some(mut items) = st.finals.remove(&k) else {
            continue;
        };
        while !items.is_empty() {
            let rest = items.split_off(items.len().min(BULK_MAX));
            let batch = std::mem::replace(&mut items, rest);
            if batch.len() < BULK_MAX && !due(&batch) {
                // A partial group stays until it fills or the loader drains.
                st.finals.insert(k.clone(), batch);
                break;
            }
            let ctx = ctx.clone();
            let client = client.clone();
            tasks.spawn(async move { TaskOut::Finals(send_finals(&ctx, &client, batch).await) });
        }
    }
}

fn handle_joined(
    ctx: &Ctx,
    joined: std::result::Result<TaskOut, tokio::task::JoinError>,
    st: &mut Loop,
) {
    match joined {
        Ok(TaskOut::Case(key, result)) => handle_done(ctx, key, result, st),
        Ok(TaskOut::Finals(results)) => {
            for (key, result) in results {
                handle_done(ctx, key, result, st);
            }
        }
        Err(e) => {
            if st.fatal.is_none() {
                st.fatal = Some(EngineError::Internal(format!("a case task failed: {e}")));
            }
        }
    }
}

fn handle_done(ctx: &Ctx, key: TicketKey, result: Result<Done>, st: &mut Loop) {
    match result {
        Ok(Done::Loaded) => {
            st.consecutive_transient.store(0, Ordering::Relaxed);
            Progress::add(&ctx.progress.loaded, 1);
        }
        Ok(Done::Skipped) => Progress::add(&ctx.progress.skipped, 1),
        Ok(Done::Failed(class)) => {
            Progress::add(&ctx.progress.load_failed, 1);
            if class == FailureClass::Transient {
                st.consecutive_transient.fetch_add(1, Ordering::Relaxed);
            } else {
                st.consecutive_transient.store(0, Ordering::Relaxed);
            }
        }
        Ok(Done::Interrupted) => {}
        Ok(Done::Parked(at)) => {
            tracing::info!(ticket = %key, wait_secs = at.saturating_duration_since(Instant::now()).as_secs(), "parked until a write of unknown outcome can no longer land");
            st.parked.push((at, key));
        }
        Ok(Done::AwaitingFinal(item)) => {
            let group = serde_json::to_string(&item.update).unwrap_or_default();
            st.finals.entry(group).or_default().push(item);
        }
        Err(e) => {
            tracing::error!(ticket = %key, error = %e, "loading stopped");
            if st.fatal.is_none() {
                st.fatal = Some(e);
            }
        }
    }
}

async fn load_lookups(ctx: &Ctx) -> Result<Lookups> {
    Ok(Lookups {
        types: titles(ctx.store.types().await?),
        reasons: titles(ctx.store.reasons().await?),
    })
}

/// Id → title of a reference table, for the mapping.
fn titles<M: FromIterator<(i64, String)>>(categories: Vec<model::Category>) -> M {
    categories.into_iter().map(|c| (c.id, c.title)).collect()
}

/// Builds the mapping context for this run.
fn map_context<'a>(ctx: &'a Ctx, lookups: &'a Lookups) -> MapContext<'a> {
    MapContext {
        mapping: &ctx.settings.mapping,
        timezone: &ctx.settings.source.timezone,
        source_id_field: ctx.settings.target.source_id_field.as_deref(),
        type_titles: &lookups.types,
        reason_titles: &lookups.reasons,
        attachments: ctx.settings.attachments.mode,
        inline: ctx.settings.attachments.inline,
        source_base: &ctx.settings.source.base_url,
    }
}

/// Loads one ticket as far as it can go now, continuing from whatever an earlier attempt left.
async fn load_one(
    ctx: &Ctx,
    client: &DeskieClient,
    lookups: &Lookups,
    key: TicketKey,
) -> Result<Done> {
    let mut state = ctx.store.load_ticket(key).await?;
    let (mapped, warnings) = map_ticket(&state.ticket, &map_context(ctx, lookups));
    for w in &warnings {
        tracing::debug!(ticket = %key, warning = ?w, "mapping warning");
    }
    let plan = match mapped {
        Mapped::Case(plan) => {
            record_too_large(ctx, key, &plan, &warnings).await?;
            plan
        }
        Mapped::Skipped { channel } => {
            ctx.store
                .mark_skipped(
                    key,
                    &format!("Desk360 channel `{channel}` is mapped to skip"),
                )
                .await?;
            return Ok(Done::Skipped);
        }
        Mapped::Unroutable { route, reason } => {
            if state.case.is_some() {
                // Mapping changed after a case was created: never create a second one.
                tracing::warn!(ticket = %key, "ticket already has a case but no longer maps; leaving it failed");
            }
            let record = FailureRecord {
                stage: Stage::Load,
                step: FailureStep::Map,
                class: FailureClass::Permanent,
                code: Some(format!("route:{}", route.label())),
                message: reason,
                request: None,
            };
            ctx.store.record_failure(key, &record).await?;
            return Ok(Done::Failed(FailureClass::Permanent));
        }
    };

    match load_plan(ctx, client, key, &mut state, &plan).await {
        Ok(Next::Loaded) => {
            ctx.store.mark_loaded(key).await?;
            Ok(Done::Loaded)
        }
        Ok(Next::Final(update)) => match &state.case {
            Some(case) => Ok(Done::AwaitingFinal(FinalItem {
                key,
                case_id: case.case_id,
                update,
            })),
            None => Err(EngineError::Internal(format!(
                "ticket {key}: a final update without a case"
            ))),
        },
        Ok(Next::Interrupted) | Err(WriteError::Cancelled) => Ok(Done::Interrupted),
        Err(WriteError::Park(at)) => Ok(Done::Parked(at)),
        Err(WriteError::Item(record)) => {
            tracing::warn!(ticket = %key, step = %record.step, message = %record.message, "ticket failed");
            let class = record.class;
            ctx.store.record_failure(key, &record).await?;
            Ok(Done::Failed(class))
        }
        // Leave the ticket claimed; release_loading hands it back at the end of the run.
        Err(WriteError::Fatal(e)) => Err(e),
    }
}

fn stopping(ctx: &Ctx) -> bool {
    ctx.cancel.is_cancelled() || ctx.load_cancel.is_cancelled()
}

/// Where a ticket's plan stands after its writes.
enum Next {
    /// Everything is in Deskie.
    Loaded,
    /// Every message is in; the final status update is still to be sent.
    Final(CaseUpdate),
    /// Cancelled between writes.
    Interrupted,
}

/// Writes what is missing of the plan, up to (not including) the final update. Returns once
/// every completion of its writes is committed, whatever the outcome.
async fn load_plan(
    ctx: &Ctx,
    client: &DeskieClient,
    key: TicketKey,
    state: &mut LoadState,
    plan: &CasePlan,
) -> std::result::Result<Next, WriteError> {
    let mut owed = Owed::default();
    let next = write_plan(ctx, client, key, state, plan, &mut owed).await;
    // A completion that cannot be recorded stops the run whatever the plan's outcome was.
    owed.settle(ctx).await?;
    next
}

/// The completion of a ticket's latest write, queued for the next group commit but not yet
/// known to be committed ([`Store::complete_intent_deferred`]): it rides in the commit of the
/// ticket's next request (usually the next write's intent) instead of a commit of its own.
/// Settled before the next write is sent, and before anything that reads what it records.
#[derive(Default)]
struct Owed(Option<store::PendingCompletion>);

impl Owed {
    /// Waits for the owed completion's commit (committing it if nobody has) and its answer.
    async fn settle(&mut self, ctx: &Ctx) -> std::result::Result<(), WriteError> {
        if let Some(pending) = self.0.take() {
            ctx.store.settle(pending).await?;
        }
        Ok(())
    }
}

/// [`load_plan`]'s writes; leaves the completion of the last one owed.
async fn write_plan(
    ctx: &Ctx,
    client: &DeskieClient,
    key: TicketKey,
    state: &mut LoadState,
    plan: &CasePlan,
    owed: &mut Owed,
) -> std::result::Result<Next, WriteError> {
    // First settle whatever is in flight from an earlier attempt or a killed process.
    if !state.open_intents.is_empty() {
        let open = std::mem::take(&mut state.open_intents);
        for intent in &open {
            if let Some(at) = settle_deadline(ctx, intent) {
                return Err(WriteError::Park(at));
            }
        }
        for intent in &open {
            reconcile_open(ctx, client, state, plan, intent).await?;
        }
        *state = ctx.store.load_ticket(key).await?;
    }

    let case = match &state.case {
        Some(c) => c.clone(),
        None => {
            if stopping(ctx) {
                return Ok(Next::Interrupted);
            }
            record_linked(
                ctx,
                state,
                true,
                plan.first_message_id,
                &plan.create.attachment_urls,
            )
            .await?;
            let c = create_case(ctx, client, state, plan, owed).await?;
            state.case = Some(c.clone());
            c
        }
    };

    let mut wrote_reply = false;
    for step in &plan.steps {
        if state.sent.contains_key(&step.source_id()) {
            continue;
        }
        wrote_reply |= !step.is_note();
        if stopping(ctx) {
            return Ok(Next::Interrupted);
        }
        if ctx.settings.attachments.mode == crate::config::AttachmentMode::Urls {
            let urls = match (step.message_for(case.user_id), step) {
                (Some(m), _) => m.attachment_urls,
                (None, Step::Note { note, .. }) => note.attachment_urls.clone(),
                (None, _) => Vec::new(),
            };
            record_linked(ctx, state, false, step.source_id(), &urls).await?;
        }
        let info = write_step(ctx, client, state, plan, &case, step, owed).await?;
        state.sent.insert(step.source_id(), info.message_id);
        let written = Written {
            source_id: step.source_id(),
            info: &info,
            html: step.content(),
            note: step.is_note(),
        };
        if plan.rehost.contains_key(&written.source_id) {
            // The edit's journal names the written message: its completion comes first.
            owed.settle(ctx).await?;
        }
        rehost_written(ctx, client, key, plan, case.case_id, written).await?;
    }
    // Inline-image edits still owed by written messages (the first message's, and any a kill
    // or a stop left between a write and its edit).
    if !plan.rehost.is_empty() {
        owed.settle(ctx).await?;
    }
    settle_rehost(ctx, client, key, state, plan, &case).await?;

    // A reply written in this pass makes the status uncertain again, even when an earlier final
    // update was recorded (a newer detail arrived while the case was loading).
    if state.final_done && !wrote_reply {
        return Ok(Next::Loaded);
    }
    // A case written in an earlier pass whose ticket changed since (delta run): a reply written
    // now needs the update with today's status and priority; otherwise one read says whether
    // the source's status or priority changed. A first pass follows the plan.
    let update = if state.previously_loaded {
        if wrote_reply {
            Some(CaseUpdate {
                status: Some(plan.create.status.unwrap_or(deskie::CaseStatus::Open)),
                priority: plan.create.priority,
                ..CaseUpdate::default()
            })
        } else {
            if stopping(ctx) {
                return Ok(Next::Interrupted);
            }
            delta_final_update(client, &case, plan).await?
        }
    } else {
        plan.final_update.clone()
    };
    Ok(match update {
        Some(u) => Next::Final(u),
        None => Next::Loaded,
    })
}

/// When an open intent's request could still land, the instant after which it cannot; `None`
/// when it may be reconciled now.
///
/// The request left no earlier than the intent was opened, but it may have ended much later: it
/// waits for rate budget, streams its files, and a server finishes what it received after the
/// client is gone. So the settle time counts from the latest instant the request can have been in
/// flight on our side: for an intent of this run, its opening (a write that failed in this run
/// is parked from its failure, see [`journaled`]); for an intent of an earlier process, the end
/// of that process ([`crate::ctx::EarlierWrites::ended_by`]), which may be long after the opening.
fn settle_deadline(ctx: &Ctx, intent: &Intent) -> Option<Instant> {
    // An idempotent update is simply sent again.
    if intent.step == IntentStep::Update {
        return None;
    }
    let settle = ctx.settings.run.reconcile_settle;
    let now = Timestamp::now();
    // The latest instant the stamp stands for: counting from the stamp itself would shorten
    // the settle time by up to a second.
    let opened = store::stamp_time_latest(&intent.created_at);
    let this_run = intent.id.0 > ctx.run_intents_after.load(Ordering::Relaxed);
    let earlier_end = (!this_run)
        .then(|| ctx.earlier_writes())
        .flatten()
        .map(|w| w.ended_by(opened));
    // An opening time that cannot be read counts as now: the full settle time is waited.
    let from = match (opened, earlier_end) {
        (Some(o), Some(e)) => o.max(e),
        (Some(o), None) => o,
        (None, Some(e)) => e,
        (None, None) => now,
    };
    let age = Duration::try_from(now.duration_since(from)).unwrap_or(Duration::ZERO);
    (age < settle).then(|| Instant::now() + (settle - age))
}

/// When an intent was opened, at the earliest (the store keeps whole seconds).
fn intent_opened(intent: &Intent) -> Option<Timestamp> {
    store::stamp_time(&intent.created_at)
}

/// For a changed ticket whose case exists: the update that brings status and priority back to
/// the source's, or `None` when Deskie already matches (one read).
async fn delta_final_update(
    client: &DeskieClient,
    case: &CaseRef,
    plan: &CasePlan,
) -> std::result::Result<Option<CaseUpdate>, WriteError> {
    let remote = client
        .case(case.case_id)
        .await
        .map_err(|e| item_error(e, FailureStep::UpdateCheck, None))?;
    let mut update = CaseUpdate::default();
    if let Some(s) = plan.create.status
        && remote.status_value() != Some(s)
    {
        update.status = Some(s);
    }
    if let Some(p) = plan.create.priority
        && remote.priority_value() != Some(p)
    {
        update.priority = Some(p);
    }
    Ok((!update.is_empty()).then_some(update))
}

/// Sends one bulk final update (≤ 10 cases with the same values), journaled per case; a case
/// the server leaves out of its success list, or a request refused as a whole, is retried alone
/// so its own error is recorded.
async fn send_finals(
    ctx: &Ctx,
    client: &DeskieClient,
    items: Vec<FinalItem>,
) -> Vec<(TicketKey, Result<Done>)> {
    let Some(update) = items.first().map(|i| i.update.clone()) else {
        return Vec::new();
    };
    let hash = payload_hash(&update);
    let mut opened: Vec<(FinalItem, IntentId)> = Vec::with_capacity(items.len());
    let mut out: Vec<(TicketKey, Result<Done>)> = Vec::new();
    // Asked together so the store makes them durable in one group commit.
    let ids = futures::future::join_all(
        items
            .iter()
            .map(|item| ctx.store.open_intent(item.key, IntentStep::Update, &hash)),
    )
    .await;
    for (item, id) in items.into_iter().zip(ids) {
        match id {
            Ok(id) => opened.push((item, id)),
            Err(e) => out.push((item.key, Err(e.into()))),
        }
    }
    if opened.is_empty() {
        return out;
    }
    let ids: Vec<i64> = opened.iter().map(|(i, _)| i.case_id).collect();
    let mut attempt = 0;
    let result = loop {
        attempt += 1;
        let result = if ids.len() == 1 {
            client
                .update_case(ids[0], &update)
                .await
                .map(|c| vec![c.case_id])
        } else {
            client.update_cases(&ids, &update).await
        };
        // The update is idempotent: an unknown outcome is simply sent again.
        match &result {
            Err(e) if e.class() == ErrorClass::Ambiguous && attempt < MAX_UPDATE_ATTEMPTS => {}
            _ => break result,
        }
    };
    let updated: HashSet<i64> = match result {
        Ok(ids) => {
            Progress::add(&ctx.progress.writes, 1);
            ids.into_iter().collect()
        }
        Err(e) if e.class() == ErrorClass::Cancelled => {
            // Nothing was sent: the cases wait for their update in the next run.
            for (item, intent) in opened {
                let r = ctx.store.abandon_intent(intent).await;
                out.push((item.key, r.map(|()| Done::Interrupted).map_err(Into::into)));
            }
            return out;
        }
        Err(e) if e.class() == ErrorClass::Fatal => {
            // The run stops; the open update intents are sent again by the next run.
            let mut fatal = Some(EngineError::from(e));
            for (item, _) in opened {
                out.push((item.key, fatal.take().map_or(Ok(Done::Interrupted), Err)));
            }
            return out;
        }
        Err(e) => {
            tracing::warn!(cases = ids.len(), error = %e, "bulk final update refused; sending each case alone");
            HashSet::new()
        }
    };
    for (item, intent) in opened {
        let done = if updated.contains(&item.case_id) {
            finish_final(ctx, item.key, intent).await
        } else {
            single_final(ctx, client, &item, intent).await
        };
        out.push((item.key, done));
    }
    out
}

/// The final update of one case alone (after a bulk request left it out).
async fn single_final(
    ctx: &Ctx,
    client: &DeskieClient,
    item: &FinalItem,
    intent: IntentId,
) -> Result<Done> {
    let mut last = None;
    for _ in 0..MAX_UPDATE_ATTEMPTS {
        match client.update_case(item.case_id, &item.update).await {
            Ok(_) => {
                Progress::add(&ctx.progress.writes, 1);
                return finish_final(ctx, item.key, intent).await;
            }
            Err(e) if e.class() == ErrorClass::Ambiguous => last = Some(e),
            Err(e) => {
                last = Some(e);
                break;
            }
        }
    }
    let Some(e) = last else {
        return Ok(Done::Interrupted);
    };
    ctx.store.abandon_intent(intent).await?;
    if e.class() == ErrorClass::Cancelled {
        return Ok(Done::Interrupted);
    }
    match item_error(e, IntentStep::Update, Some(json_of(&item.update))) {
        WriteError::Item(record) => {
            tracing::warn!(ticket = %item.key, message = %record.message, "final update failed");
            let class = record.class;
            ctx.store.record_failure(item.key, &record).await?;
            Ok(Done::Failed(class))
        }
        WriteError::Fatal(e) => Err(e),
        WriteError::Park(_) | WriteError::Cancelled => Ok(Done::Interrupted),
    }
}

async fn finish_final(ctx: &Ctx, key: TicketKey, intent: IntentId) -> Result<Done> {
    ctx.store
        .complete_intent(intent, IntentResult::Final)
        .await?;
    ctx.store.mark_loaded(key).await?;
    Ok(Done::Loaded)
}

/// Refuses a write when the run is stopping: after Ctrl-C no new request starts, and what is not
/// sent needs no reconciliation.
fn check_not_stopping(ctx: &Ctx) -> std::result::Result<(), WriteError> {
    if stopping(ctx) {
        Err(WriteError::Cancelled)
    } else {
        Ok(())
    }
}

/// Creates the case through the journal. An unknown outcome parks the ticket (the intent stays
/// open); it is reconciled once the request can no longer land.
async fn create_case(
    ctx: &Ctx,
    client: &DeskieClient,
    state: &LoadState,
    plan: &CasePlan,
    owed: &mut Owed,
) -> std::result::Result<CaseRef, WriteError> {
    let key = state.ticket.key;
    may_journal(ctx, state, IntentStep::Create)?;
    // Files are opened before the intent: a refused file is left out (and reported) here,
    // never halfway through a request.
    let files = upload_parts(ctx, key, plan, plan.first_message_id, true).await?;
    let request = json_of(&plan.create);
    let send = || async {
        if files.is_empty() {
            client.create_case(&plan.create).await
        } else {
            client.create_case_with_files(&plan.create, &files).await
        }
    };
    // Inline images of the first message are re-pointed by `settle_rehost`, which reads the new
    // case's first message (the create's answer is the case, not its message).
    let journal = Journal {
        key,
        step: IntentStep::Create,
        request,
    };
    let case = journaled(ctx, journal, owed, send, |case| {
        IntentResult::Case(case_ref(case))
    })
    .await?;
    Ok(case_ref(&case))
}

/// What one journaled write is: the ticket, the step, and the request as sent (its hash is the
/// intent's, and a refused request is kept with the failure).
struct Journal {
    key: TicketKey,
    step: IntentStep,
    request: String,
}

/// Sends one create / reply / note through the journal: the intent is durable before the request
/// leaves, completed with Deskie's id when it answers, abandoned when the write is known not to
/// have happened (refused, or not sent because the run is stopping). An unknown outcome leaves
/// the intent open and parks the ticket until the request can no longer land
/// (`[run] reconcile_settle`); `reconcile_open` settles it then. The final update is idempotent
/// and bulk, and has its own path (`send_finals`).
///
/// The completion is left `owed`: it is committed with the ticket's next request, and the
/// previous write's owed completion is settled here, after this write's intent was committed
/// (in the same transaction or after it) and before this write is sent.
async fn journaled<T, F, Fut>(
    ctx: &Ctx,
    journal: Journal,
    owed: &mut Owed,
    send: F,
    result_of: impl FnOnce(&T) -> IntentResult,
) -> std::result::Result<T, WriteError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = deskie::Result<T>>,
{
    let Journal { key, step, request } = journal;
    let opened = ctx
        .store
        .open_intent(key, step, &payload_hash(&request))
        .await;
    if let Err(e) = owed.settle(ctx).await {
        // The previous completion was refused: this write is not sent.
        if let Ok(intent) = opened
            && let Err(abandon) = ctx.store.abandon_intent(intent).await
        {
            tracing::warn!(ticket = %key, %step, error = %abandon, "an unsent write's intent stays open; the next run reconciles it");
        }
        return Err(e);
    }
    let intent = opened?;
    match send().await {
        Ok(answer) => {
            owed.0 = Some(
                ctx.store
                    .complete_intent_deferred(intent, result_of(&answer)),
            );
            Progress::add(&ctx.progress.writes, 1);
            Ok(answer)
        }
        Err(e) if e.class() == ErrorClass::Cancelled => {
            // Nothing was sent (the run is stopping): the intent is known not to have happened.
            ctx.store.abandon_intent(intent).await?;
            Err(WriteError::Cancelled)
        }
        Err(e) if e.class() == ErrorClass::Ambiguous => {
            tracing::warn!(ticket = %key, %step, error = %e, "write outcome unknown; parked until it can no longer land");
            Err(WriteError::Park(
                Instant::now() + ctx.settings.run.reconcile_settle,
            ))
        }
        Err(e) => {
            ctx.store.abandon_intent(intent).await?;
            Err(item_error(e, step, Some(request)))
        }
    }
}

/// How often this run journaled `step` of the ticket and then proved it absent: counted in the
/// abandoned intents `load_ticket` read (no query per write). An abandon after that read ends
/// the pass (`journaled` fails the ticket, `reconcile_open` is followed by a fresh read), so
/// the list is current whenever a write is about to be journaled.
fn abandoned_in_this_run(ctx: &Ctx, state: &LoadState, step: IntentStep) -> u32 {
    let after = IntentId(ctx.run_intents_after.load(Ordering::Relaxed));
    let n = state
        .abandoned
        .iter()
        .filter(|(id, s)| *id > after && *s == step)
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Whether `step` may be journaled now: not when the run is stopping, nor when this run already
/// proved it absent [`MAX_AMBIGUOUS_ATTEMPTS`] times (the ticket fails until the next run).
fn may_journal(
    ctx: &Ctx,
    state: &LoadState,
    step: IntentStep,
) -> std::result::Result<(), WriteError> {
    check_not_stopping(ctx)?;
    if abandoned_in_this_run(ctx, state, step) >= MAX_AMBIGUOUS_ATTEMPTS {
        return Err(gave_up(step));
    }
    Ok(())
}

fn gave_up(step: IntentStep) -> WriteError {
    WriteError::Item(FailureRecord {
        stage: Stage::Load,
        step: step.into(),
        class: FailureClass::Transient,
        code: None,
        message: format!(
            "the {step} had no usable answer {MAX_AMBIGUOUS_ATTEMPTS} times in this run and was each time proven absent from Deskie; the next run tries it again"
        ),
        request: None,
    })
}

/// Writes one reply or note through the journal; an unknown outcome parks the ticket. Returns
/// Deskie's answer (the message with the files it stored).
async fn write_step(
    ctx: &Ctx,
    client: &DeskieClient,
    state: &LoadState,
    plan: &CasePlan,
    case: &CaseRef,
    step: &Step,
    owed: &mut Owed,
) -> std::result::Result<MessageInfo, WriteError> {
    let key = state.ticket.key;
    let intent_step = if step.is_note() {
        IntentStep::Note(step.source_id())
    } else {
        IntentStep::Message(step.source_id())
    };
    may_journal(ctx, state, intent_step)?;
    let message = step.message_for(case.user_id);
    let request_json = match (&message, step) {
        (Some(m), _) => json_of(m),
        (None, Step::Note { note, .. }) => json_of(note),
        (None, _) => String::new(),
    };
    let files = upload_parts(ctx, key, plan, step.source_id(), false).await?;
    let send = || async {
        match (&message, step) {
            (Some(m), _) if files.is_empty() => client.add_message(case.case_id, m).await,
            (Some(m), _) => client.add_message_with_files(case.case_id, m, &files).await,
            (None, Step::Note { note, .. }) if files.is_empty() => {
                client.add_note(case.case_id, note).await
            }
            (None, Step::Note { note, .. }) => {
                client.add_note_with_files(case.case_id, note, &files).await
            }
            (None, _) => unreachable_step(),
        }
    };
    let source_id = step.source_id();
    let journal = Journal {
        key,
        step: intent_step,
        request: request_json,
    };
    journaled(ctx, journal, owed, send, |info| IntentResult::Message {
        source_id,
        deskie_id: info.message_id,
    })
    .await
}

/// The files the write of `source_id` uploads (`mode = "upload"`), each download opened ahead
/// of the write. A file its storage refuses or no longer has, or that turns out over Deskie's
/// 25 MB, is left out with a warning naming the ticket and the file (the message still goes);
/// a transient failure fails the ticket transiently (the next run tries again), before any
/// intent is opened. Every file's outcome is recorded for the report (`attached` ones count
/// once their write is in Deskie).
async fn upload_parts(
    ctx: &Ctx,
    key: TicketKey,
    plan: &CasePlan,
    source_id: i64,
    create: bool,
) -> std::result::Result<Vec<deskie::UploadFile>, WriteError> {
    let Some(planned) = plan.uploads.get(&source_id).filter(|f| !f.is_empty()) else {
        return Ok(Vec::new());
    };
    // A run that reads nothing else from Desk360 (`retry-failed`) builds the client on the
    // first file it needs (a token is not checked by a request; a login is one request).
    if ctx.files.get().is_none() {
        match crate::clients::build_desk360(&ctx.settings, ctx.desk360_limiter.clone(), ctx.retry)
            .await
        {
            Ok(d) => {
                let _ = ctx.files.set(crate::clients::file_clients(ctx, d));
            }
            Err(e) => {
                return Err(WriteError::Item(FailureRecord {
                    stage: Stage::Load,
                    step: FailureStep::Attachments,
                    class: FailureClass::Transient,
                    code: None,
                    message: format!("uploading attachments needs the Desk360 client: {e}"),
                    request: None,
                }));
            }
        }
    }
    let Some(clients) = ctx.files.get() else {
        return Err(WriteError::Cancelled);
    };
    let inline = plan.rehost.get(&source_id);
    let mut parts = Vec::with_capacity(planned.len());
    let mut records = Vec::with_capacity(planned.len());
    for (i, a) in planned.iter().enumerate() {
        check_not_stopping(ctx)?;
        let file = Desk360File::new(
            clients.desk360.clone(),
            a.url.clone(),
            a.name.clone(),
            clients.storage.clone(),
        );
        // Inline images come first in a message's files (see `mapping::map_ticket`).
        let mode = if inline.is_some_and(|imgs| {
            i < imgs.len()
                && imgs
                    .iter()
                    .any(|(src, name)| *src == a.url && *name == a.name)
        }) {
            store::FileMode::Inline
        } else {
            store::FileMode::Upload
        };
        let record = |size: Option<u64>, outcome: store::FileOutcome| store::FileRecord {
            create,
            write_id: source_id,
            mode,
            url: a.url.clone(),
            name: a.name.clone(),
            size: size.or(a.size),
            outcome,
        };
        match file.prefetch().await {
            Ok(Some(size)) if size > crate::mapping::MAX_FILE_BYTES => {
                tracing::warn!(ticket = %key, file = %a.name, size, "attachment over Deskie's 25 MB a file; not sent");
                records.push(record(Some(size), store::FileOutcome::TooLarge));
            }
            Ok(size) => {
                parts.push(file.into_upload(None));
                records.push(record(size, store::FileOutcome::Attached));
            }
            Err(e) if e.class() == desk360::ErrorClass::Cancelled => {
                ctx.store.record_files(key, &records).await?;
                return Err(WriteError::Cancelled);
            }
            Err(e) => match refused_status(&e) {
                Some(status) => {
                    tracing::warn!(ticket = %key, file = %a.name, error = %e, "attachment cannot be downloaded; the message goes without it");
                    let reason = e.to_string();
                    records.push(record(None, store::FileOutcome::Refused { status, reason }));
                }
                None => {
                    let message = format!("downloading the attachment failed: {e}");
                    records.push(record(
                        None,
                        store::FileOutcome::Failed {
                            reason: message.clone(),
                        },
                    ));
                    ctx.store.record_files(key, &records).await?;
                    return Err(WriteError::Item(FailureRecord {
                        stage: Stage::Load,
                        step: FailureStep::Attachment(a.name.clone()),
                        class: FailureClass::Transient,
                        code: None,
                        message,
                        request: None,
                    }));
                }
            },
        }
    }
    ctx.store.record_files(key, &records).await?;
    Ok(parts)
}

/// For a download the storage refused for good (the file is left out, the message goes):
/// `Some` with the HTTP status when there is one; `None` for a failure worth another try.
fn refused_status(e: &desk360::Desk360Error) -> Option<Option<u16>> {
    match e {
        desk360::Desk360Error::FileDenied { status, .. }
        | desk360::Desk360Error::Rejected { status, .. } => Some(Some(*status)),
        desk360::Desk360Error::NotFound { .. } => Some(Some(404)),
        desk360::Desk360Error::UnexpectedUrl { .. } => Some(None),
        _ => None,
    }
}

/// `mode = "urls"`: records the files a write links (`attachment_urls`), named from the stored
/// ticket, before the write; they count as linked once the write is in Deskie.
async fn record_linked(
    ctx: &Ctx,
    state: &LoadState,
    create: bool,
    source_id: i64,
    urls: &[String],
) -> std::result::Result<(), WriteError> {
    if urls.is_empty() {
        return Ok(());
    }
    let files = state
        .ticket
        .messages
        .iter()
        .find(|m| m.id == source_id)
        .map(|m| m.attachments.as_slice())
        .unwrap_or_default();
    let records: Vec<store::FileRecord> = urls
        .iter()
        .map(|url| {
            let a = files.iter().find(|a| a.url == *url);
            store::FileRecord {
                create,
                write_id: source_id,
                mode: store::FileMode::Url,
                url: url.clone(),
                name: a.map_or_else(|| url.clone(), |a| a.name.clone()),
                size: a.and_then(|a| a.size),
                outcome: store::FileOutcome::Attached,
            }
        })
        .collect();
    ctx.store.record_files(state.ticket.key, &records).await?;
    Ok(())
}

/// Files the mapping left out as over Deskie's limits, recorded for the report.
async fn record_too_large(
    ctx: &Ctx,
    key: TicketKey,
    plan: &CasePlan,
    warnings: &[crate::mapping::Warning],
) -> Result<()> {
    let mode = match ctx.settings.attachments.mode {
        crate::config::AttachmentMode::Upload => store::FileMode::Upload,
        crate::config::AttachmentMode::Urls => store::FileMode::Url,
    };
    let records: Vec<store::FileRecord> = warnings
        .iter()
        .filter_map(|w| match w {
            crate::mapping::Warning::AttachmentTooLarge {
                message_id,
                name,
                size,
                url,
            } => Some(store::FileRecord {
                create: *message_id == plan.first_message_id,
                write_id: *message_id,
                mode,
                url: url.clone(),
                name: name.clone(),
                size: Some(*size),
                outcome: store::FileOutcome::TooLarge,
            }),
            _ => None,
        })
        .collect();
    ctx.store.record_files(key, &records).await?;
    Ok(())
}

/// A message Deskie has just stored (or was found to hold), as [`rehost_written`] takes it: one
/// value rather than four arguments, so the write loop and the reconciling pass hand over the
/// same thing.
struct Written<'a> {
    /// The Desk360 message id.
    source_id: i64,
    /// Deskie's answer, whose stored files the inline images are matched against by name.
    info: &'a MessageInfo,
    /// The HTML as written, which the edit rewrites.
    html: &'a str,
    /// Whether it is a note (edited through the note path).
    note: bool,
}

/// `inline = "rehost"`: right after message `source_id` was written, journals the edit that
/// points each inline image's `src` at the copy Deskie stored with the message (matched by file
/// name in the write's answer), then sends it. See [`send_edit`] for what an edit's failure does.
async fn rehost_written(
    ctx: &Ctx,
    client: &DeskieClient,
    key: TicketKey,
    plan: &CasePlan,
    case_id: i64,
    written: Written<'_>,
) -> std::result::Result<(), WriteError> {
    let Written {
        source_id,
        info,
        html,
        note,
    } = written;
    let Some(images) = plan.rehost.get(&source_id) else {
        return Ok(());
    };
    let replace = replacements(images, info);
    let edit = store::RehostEdit {
        source_id,
        case_id,
        deskie_message_id: info.message_id,
        note,
        replace: json_of(&replace),
        state: "open".into(),
        reason: None,
    };
    ctx.store.open_rehost_edit(key, &edit).await?;
    send_edit(ctx, client, key, &edit, &replace, html).await
}

/// Each inline image's `src` → the URL of the copy Deskie stored with the message, matched by
/// file name in the write's answer (each stored file used once).
fn replacements(images: &[(String, String)], info: &MessageInfo) -> BTreeMap<String, String> {
    let mut used = HashSet::new();
    let mut replace = BTreeMap::new();
    for (src, name) in images {
        let found = info.attachments.iter().enumerate().find(|(i, a)| {
            !used.contains(i) && a.file_name.as_deref() == Some(name.as_str()) && a.url.is_some()
        });
        if let Some((i, a)) = found {
            used.insert(i);
            replace.insert(src.clone(), a.url.clone().unwrap_or_default());
        }
    }
    replace
}

/// Sends one journaled inline-image edit and closes it. The edit is idempotent, so a lost
/// answer is simply sent again (a few times). Deskie refusing it for good (or no image found in
/// the answer) closes it as failed with the reason (the report lists it; the images keep their
/// Desk360 links) and the ticket goes on. A stop leaves it open (sent by the next load of the
/// ticket); no usable answer fails the ticket transiently, so the next run sends it again — an
/// owed edit is never forgotten.
async fn send_edit(
    ctx: &Ctx,
    client: &DeskieClient,
    key: TicketKey,
    edit: &store::RehostEdit,
    replace: &BTreeMap<String, String>,
    html: &str,
) -> std::result::Result<(), WriteError> {
    let new_html = match crate::mapping::files::rewrite_inline_images(html, replace) {
        Some(h) if !replace.is_empty() && h != html => h,
        _ => {
            tracing::warn!(ticket = %key, message = edit.source_id, "inline images not found in Deskie's answer; they keep their Desk360 links");
            ctx.store
                .finish_rehost_edit(
                    key,
                    edit.source_id,
                    Some(
                        "the inline images were not among the files Deskie stored with the message",
                    ),
                )
                .await?;
            return Ok(());
        }
    };
    let mut last = None;
    for _ in 0..MAX_UPDATE_ATTEMPTS {
        check_not_stopping(ctx)?;
        match client
            .edit_message_html(edit.case_id, edit.deskie_message_id, &new_html, edit.note)
            .await
        {
            Ok(_) => {
                Progress::add(&ctx.progress.writes, 1);
                ctx.store
                    .finish_rehost_edit(key, edit.source_id, None)
                    .await?;
                return Ok(());
            }
            Err(e) if e.class() == ErrorClass::Ambiguous => last = Some(e),
            Err(e) if e.class() == ErrorClass::Permanent => {
                tracing::warn!(ticket = %key, message = edit.source_id, error = %e, "inline images could not be re-pointed; they keep their Desk360 links");
                ctx.store
                    .finish_rehost_edit(key, edit.source_id, Some(&e.to_string()))
                    .await?;
                return Ok(());
            }
            Err(e) => return Err(item_error(e, "inline image edit", None)),
        }
    }
    let last = last.map(|e| e.to_string()).unwrap_or_default();
    Err(WriteError::Item(FailureRecord {
        stage: Stage::Load,
        step: "inline image edit".into(),
        class: FailureClass::Transient,
        code: None,
        message: format!(
            "the edit re-pointing the inline images of Desk360 message {} got no answer {MAX_UPDATE_ATTEMPTS} times ({last}); the next run sends it again",
            edit.source_id
        ),
        request: None,
    }))
}

/// Sends every inline-image edit a written message of this ticket still owes: one journaled
/// open (a kill or a stop came between the write and the edit's answer), or none journaled at
/// all (the first message, or a kill right after a write): then the case's messages are read
/// back once for the copies' URLs. Edits journaled done or failed for the same Deskie message
/// are not sent again.
async fn settle_rehost(
    ctx: &Ctx,
    client: &DeskieClient,
    key: TicketKey,
    state: &LoadState,
    plan: &CasePlan,
    case: &CaseRef,
) -> std::result::Result<(), WriteError> {
    if plan.rehost.is_empty() {
        return Ok(());
    }
    let journal = ctx.store.rehost_edits(key).await?;
    let mut messages: Option<Vec<MessageInfo>> = None;
    for source_id in plan.rehost.keys() {
        // The Deskie message (None: the case's first one), its HTML as sent, note or reply.
        let (deskie_id, html, note) = if *source_id == plan.first_message_id {
            (
                None,
                plan.create.content_html.as_deref().unwrap_or_default(),
                false,
            )
        } else {
            let (Some(step), Some(id)) = (
                plan.steps.iter().find(|s| s.source_id() == *source_id),
                state.sent.get(source_id),
            ) else {
                continue; // not written yet
            };
            (Some(*id), step.content(), step.is_note())
        };
        let journaled = journal.iter().find(|r| {
            r.source_id == *source_id
                && r.case_id == case.case_id
                && deskie_id.is_none_or(|id| id == r.deskie_message_id)
        });
        if let Some(row) = journaled {
            if row.state == "open" {
                let replace: BTreeMap<String, String> =
                    serde_json::from_str(&row.replace).unwrap_or_default();
                send_edit(ctx, client, key, row, &replace, html).await?;
            }
            continue;
        }
        check_not_stopping(ctx)?;
        if messages.is_none() {
            Progress::add(&ctx.progress.reconcile_reads, 1);
            let read = client
                .all_messages(case.case_id)
                .await
                .map_err(|e| item_error(e, "inline image edit (read)", None))?;
            messages = Some(read);
        }
        let found = messages.iter().flatten().find(|m| match deskie_id {
            Some(id) => m.message_id == id,
            None => !m.is_note(),
        });
        match found {
            Some(info) => {
                let written = Written {
                    source_id: *source_id,
                    info,
                    html,
                    note,
                };
                rehost_written(ctx, client, key, plan, case.case_id, written).await?;
            }
            None => {
                tracing::warn!(ticket = %key, message = source_id, "the message to re-point inline images in is not in the case; they keep their Desk360 links");
            }
        }
    }
    Ok(())
}

fn unreachable_step() -> deskie::Result<MessageInfo> {
    // `message_for` returns a request for every reply step; only notes return None.
    Err(DeskieError::Config {
        message: "internal: a reply step without a request".into(),
    })
}

/// Settles one intent whose request can no longer land: completes it if Deskie has the write,
/// abandons it (so it is written again) if a read proves it absent, and fails the ticket with
/// what to check when neither can be proven.
async fn reconcile_open(
    ctx: &Ctx,
    client: &DeskieClient,
    state: &LoadState,
    plan: &CasePlan,
    intent: &Intent,
) -> std::result::Result<(), WriteError> {
    let key = intent.key;
    match intent.step {
        IntentStep::Create => match find_case(ctx, client, key, plan, intent).await {
            Ok(CaseLookup::Found(case)) => {
                ctx.store
                    .complete_intent(intent.id, IntentResult::Case(case_ref(&case)))
                    .await?;
                Progress::add(&ctx.progress.writes, 1);
            }
            Ok(CaseLookup::Absent) => ctx.store.abandon_intent(intent.id).await?,
            Ok(CaseLookup::Several(cases)) => {
                let ids: Vec<String> = cases.iter().map(|c| c.case_id.to_string()).collect();
                return Err(unknown_case(
                    key,
                    plan,
                    &format!("several Deskie cases match it (ids {})", ids.join(", ")),
                ));
            }
            Ok(CaseLookup::Unknown(why)) => return Err(unknown_case(key, plan, &why)),
            Err(e) => return Err(item_error(e, FailureStep::CreateReconcile, None)),
        },
        IntentStep::Message(source_id) | IntentStep::Note(source_id) => {
            let (Some(case), Some(step)) = (
                state.case.as_ref(),
                plan.steps.iter().find(|s| s.source_id() == source_id),
            ) else {
                // No case yet, or the message is no longer in the plan: nothing can exist.
                ctx.store.abandon_intent(intent.id).await?;
                return Ok(());
            };
            match find_message(ctx, client, case, step, state).await {
                Ok(Some(found)) => {
                    ctx.store
                        .complete_intent(
                            intent.id,
                            IntentResult::Message {
                                source_id,
                                deskie_id: found,
                            },
                        )
                        .await?;
                    Progress::add(&ctx.progress.writes, 1);
                }
                Ok(None) => ctx.store.abandon_intent(intent.id).await?,
                Err(e) => return Err(item_error(e, intent.step, None)),
            }
        }
        // The update is idempotent: abandon and send it again.
        IntentStep::Update => ctx.store.abandon_intent(intent.id).await?,
    }
    Ok(())
}

/// The failure of a ticket whose create may or may not have happened: never a blind second
/// create; a person checks Deskie and runs `retry-failed` for it.
fn unknown_case(key: TicketKey, plan: &CasePlan, why: &str) -> WriteError {
    let who = plan
        .create
        .user_email
        .as_deref()
        .or(plan.create.user_phone.as_deref())
        .or(plan.create.user_custom_id.as_deref())
        .unwrap_or("(unknown customer)");
    WriteError::Item(FailureRecord {
        stage: Stage::Load,
        step: FailureStep::CreateReconcile,
        class: FailureClass::Permanent,
        code: Some("outcome_unknown".into()),
        message: format!(
            "the case create for ticket {key} got no answer and Deskie could not prove whether it exists ({why}); look in Deskie for a case of {who} with subject {:?} created {}, delete any duplicate, then run `deskie-import retry-failed --ticket {key}`",
            plan.create.subject,
            deskie::format_timestamp(plan.create.created_at),
        ),
        request: None,
    })
}

/// Looks for the case a create may have made, with a lookup whose meaning holds under every
/// reading of the pages. By the source-key custom field when configured (the key and its
/// older spelling, matched exactly here); otherwise among the most recently changed cases in
/// the documented default order (`updated_at_desc`, page 001), down to cases last changed
/// before the request was sent: the same user, subject and original time.
async fn find_case(
    ctx: &Ctx,
    client: &DeskieClient,
    key: TicketKey,
    plan: &CasePlan,
    intent: &Intent,
) -> deskie::Result<CaseLookup> {
    Progress::add(&ctx.progress.reconcile_reads, 1);
    if let Some(field) = &ctx.settings.target.source_id_field {
        return client
            .lookup_case_by_custom_field(field, &[key.source_id(), key.legacy_source_id()])
            .await;
    }
    let sent_at = intent_opened(intent);
    let mut found: Vec<Case> = Vec::new();
    for page in 1..=RECENT_PAGES {
        let query = CaseQuery {
            limit: Some(100),
            page: Some(page),
            ..CaseQuery::default()
        };
        let list = client.list_cases(&query).await?;
        let count = list.cases.len();
        let mut older_than_request = false;
        for case in list.cases {
            if let (Some(updated), Some(sent)) = (case.updated_at_ts(), sent_at)
                && updated.duration_until(sent)
                    > jiff::SignedDuration::try_from(CLOCK_SKEW).unwrap_or_default()
            {
                older_than_request = true;
            }
            if case_matches(&case, plan) && !found.iter().any(|c| c.case_id == case.case_id) {
                found.push(case);
            }
        }
        let last_page = count < 100 || list.total_count.is_some_and(|t| u64::from(page) * 100 >= t);
        if older_than_request || last_page {
            return Ok(match found.len() {
                0 => CaseLookup::Absent,
                1 => CaseLookup::Found(Box::new(found.remove(0))),
                _ => CaseLookup::Several(found),
            });
        }
    }
    Ok(match found.len() {
        1 => CaseLookup::Found(Box::new(found.remove(0))),
        0 => CaseLookup::Unknown(format!(
            "more than {} cases changed in Deskie since the request was sent",
            RECENT_PAGES * 100
        )),
        _ => CaseLookup::Several(found),
    })
}

/// Same subject, same recipient, and the original creation time when Deskie shows one.
fn case_matches(c: &Case, plan: &CasePlan) -> bool {
    c.subject.as_deref().map(str::trim) == Some(plan.create.subject.trim())
        && c.created_at_ts()
            .is_none_or(|t| t == plan.create.created_at)
        && recipient_matches(c, plan)
}

fn recipient_matches(case: &Case, plan: &CasePlan) -> bool {
    let who = plan
        .create
        .user_email
        .as_deref()
        .or(plan.create.user_phone.as_deref())
        .or(plan.create.user_custom_id.as_deref());
    match (case.extra.get("recipient").and_then(|v| v.as_str()), who) {
        (Some(r), Some(w)) if !r.is_empty() => r.eq_ignore_ascii_case(w),
        _ => true,
    }
}

/// Looks for a reply or note in the case: same kind, same time and same content, not already
/// mapped to another source message. Falls back to content alone when Deskie did not keep the
/// time (notes, on some accounts).
async fn find_message(
    ctx: &Ctx,
    client: &DeskieClient,
    case: &CaseRef,
    step: &Step,
    state: &LoadState,
) -> deskie::Result<Option<i64>> {
    Progress::add(&ctx.progress.reconcile_reads, 1);
    let messages = client.all_messages(case.case_id).await?;
    let taken: HashSet<i64> = state.sent.values().copied().collect();
    let want_at = step.created_at();
    let want = normalize_body(step.content());
    let candidates: Vec<&MessageInfo> = messages
        .iter()
        .filter(|m| !taken.contains(&m.message_id))
        .filter(|m| m.is_note() == step.is_note())
        .filter(|m| normalize_body(m.body()) == want)
        .collect();
    let exact = candidates
        .iter()
        .find(|m| m.created_at_ts().is_some_and(|t| t == want_at));
    Ok(exact.or(candidates.first()).map(|m| m.message_id))
}

fn case_ref(case: &Case) -> CaseRef {
    CaseRef {
        case_id: case.case_id,
        case_number: case.case_number.clone().unwrap_or_default(),
        user_id: case.user_id.unwrap_or(0),
    }
}

fn json_of<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// A short hash of a request payload, journaled with its intent.
fn payload_hash<T: serde::Serialize + ?Sized>(v: &T) -> String {
    let bytes = serde_json::to_vec(v).unwrap_or_default();
    let digest = sha2::Sha256::digest(&bytes);
    digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// Turns a client error into a ticket failure ([`failure_of`]), or a run stop for fatal ones.
fn item_error(e: DeskieError, step: impl Into<FailureStep>, request: Option<String>) -> WriteError {
    match e.class() {
        ErrorClass::Cancelled => WriteError::Cancelled,
        ErrorClass::Fatal => WriteError::Fatal(e.into()),
        _ => WriteError::Item(failure_of(&e, Stage::Load, step, request)),
    }
}
