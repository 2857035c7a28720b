//! The load stage: extracted tickets → Deskie cases, exactly once.
//!
//! Many cases are in flight (`run.concurrency`, a semaphore), but the writes of one case are
//! strictly sequential: create, later replies, notes, then the final update if the plan has one.
//! Every write follows the journal rule of DESIGN.md: an intent is committed before the request,
//! and the Deskie id is recorded with the intent's completion in one transaction after it. A write
//! whose outcome is unknown (lost response, 5xx after sending) is reconciled by reading Deskie —
//! the case by its source-id custom field (or user + subject + time), a message by time + content
//! in the case's message list — and only sent again when it is provably absent. Open intents left
//! by a killed process are reconciled the same way before the ticket's next write, which costs one
//! read per intent that was in flight.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use deskie::{Case, CaseQuery, CaseSort, DeskieClient, DeskieError, ErrorClass, MessageInfo};
use model::TicketKey;
use sha2::Digest;
use store::{
    CaseRef, FailureClass, FailureRecord, Intent, IntentResult, IntentStep, LoadState, Stage,
};
use tokio::sync::Semaphore;

use crate::error::{EngineError, Result};
use crate::mapping::{CasePlan, MapContext, Mapped, Step, map_ticket, normalize_body};
use crate::progress::Progress;
use crate::run::Ctx;

/// Attempts of one write whose outcome stayed unknown and was then found absent.
const MAX_AMBIGUOUS_ATTEMPTS: usize = 3;
/// Pause before reading back a write whose answer was lost, so a server that applies or indexes
/// writes a moment after answering has done so before we decide the write is absent.
const RECONCILE_SETTLE: std::time::Duration = std::time::Duration::from_millis(500);

/// How loading one ticket ended.
enum Done {
    Loaded,
    Skipped,
    Failed(FailureClass),
    /// Cancelled between writes: the ticket stays where it is and is picked up again.
    Interrupted,
}

/// Why one write did not go through.
enum WriteError {
    /// Record the ticket as failed with this record.
    Item(FailureRecord),
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
    types: std::collections::BTreeMap<i64, String>,
    reasons: std::collections::BTreeMap<i64, String>,
}

/// Runs the load stage until every extracted ticket is handled and extraction has finished, or
/// until cancelled. Returns a reason when it stopped early on its own (Deskie unavailable).
pub(crate) async fn run(ctx: &Arc<Ctx>, client: DeskieClient) -> Result<Option<String>> {
    let semaphore = Arc::new(Semaphore::new(ctx.settings.run.concurrency));
    let consecutive_transient = Arc::new(AtomicU64::new(0));
    let outage_limit = (ctx.settings.run.concurrency as u64 * 2).max(10);
    let mut tasks = tokio::task::JoinSet::new();
    let mut fatal: Option<EngineError> = None;
    let mut stopped: Option<String> = None;
    let mut lookups = Arc::new(load_lookups(ctx).await?);
    let mut lookups_loaded_with_extract_done = ctx.progress.snapshot().extract_done;

    loop {
        // Reap finished cases.
        while let Some(joined) = tasks.try_join_next() {
            handle_joined(ctx, joined, &consecutive_transient, &mut fatal);
        }
        if fatal.is_some() {
            ctx.cancel.cancel();
        }
        if consecutive_transient.load(Ordering::Relaxed) >= outage_limit && stopped.is_none() {
            let msg = format!(
                "Deskie looks unavailable ({outage_limit} tickets in a row failed with transient errors); loading stopped, run again later to continue"
            );
            tracing::error!("{msg}");
            stopped = Some(msg);
            ctx.load_cancel.cancel();
        }
        if ctx.cancel.is_cancelled() || ctx.load_cancel.is_cancelled() {
            break;
        }
        let free = semaphore.available_permits();
        let extract_done = ctx.progress.snapshot().extract_done;
        if extract_done && !lookups_loaded_with_extract_done {
            // Reference data may have arrived with this run's extraction.
            lookups = Arc::new(load_lookups(ctx).await?);
            lookups_loaded_with_extract_done = true;
        }
        let claimed = if free > 0 && ctx.selected_only.load(Ordering::Relaxed) {
            ctx.store.claim_for_load_selected(free as u32).await?
        } else if free > 0 {
            ctx.store.claim_for_load(free as u32).await?
        } else {
            Vec::new()
        };
        if claimed.is_empty() {
            if extract_done && tasks.is_empty() {
                // Nothing claimed, nothing running, nothing more coming.
                break;
            }
            // Wait for a case to finish or new tickets to be extracted.
            let notified = ctx.extracted.notified();
            tokio::select! {
                _ = ctx.cancel.cancelled() => {}
                _ = ctx.load_cancel.cancelled() => {}
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                    handle_joined(ctx, joined, &consecutive_transient, &mut fatal);
                }
                _ = notified => {}
                _ = tokio::time::sleep(std::time::Duration::from_millis(250)) => {}
            }
            continue;
        }
        for key in claimed {
            let permit = match semaphore.clone().acquire_owned().await {
                Ok(p) => p,
                Err(_) => break,
            };
            let ctx = ctx.clone();
            let client = client.clone();
            let lookups = lookups.clone();
            tasks.spawn(async move {
                let _permit = permit;
                (key, load_one(&ctx, &client, &lookups, key).await)
            });
        }
    }
    // Let in-flight cases finish their current write (they stop between writes when cancelled).
    while let Some(joined) = tasks.join_next().await {
        handle_joined(ctx, joined, &consecutive_transient, &mut fatal);
    }
    match fatal {
        Some(e) => Err(e),
        None => Ok(stopped),
    }
}

fn handle_joined(
    ctx: &Ctx,
    joined: std::result::Result<(TicketKey, Result<Done>), tokio::task::JoinError>,
    consecutive_transient: &AtomicU64,
    fatal: &mut Option<EngineError>,
) {
    match joined {
        Ok((_, Ok(Done::Loaded))) => {
            consecutive_transient.store(0, Ordering::Relaxed);
            Progress::add(&ctx.progress.loaded, 1);
        }
        Ok((_, Ok(Done::Skipped))) => Progress::add(&ctx.progress.skipped, 1),
        Ok((_, Ok(Done::Failed(class)))) => {
            Progress::add(&ctx.progress.load_failed, 1);
            if class == FailureClass::Transient {
                consecutive_transient.fetch_add(1, Ordering::Relaxed);
            } else {
                consecutive_transient.store(0, Ordering::Relaxed);
            }
        }
        Ok((_, Ok(Done::Interrupted))) => {}
        Ok((key, Err(e))) => {
            tracing::error!(ticket = %key, error = %e, "loading stopped");
            if fatal.is_none() {
                *fatal = Some(e);
            }
        }
        Err(e) => {
            if fatal.is_none() {
                *fatal = Some(EngineError::Internal(format!("a case task failed: {e}")));
            }
        }
    }
}

async fn load_lookups(ctx: &Ctx) -> Result<Lookups> {
    Ok(Lookups {
        types: ctx
            .store
            .types()
            .await?
            .into_iter()
            .map(|t| (t.id, t.title))
            .collect(),
        reasons: ctx
            .store
            .reasons()
            .await?
            .into_iter()
            .map(|r| (r.id, r.title))
            .collect(),
    })
}

/// Builds the mapping context for this run.
fn map_context<'a>(ctx: &'a Ctx, lookups: &'a Lookups) -> MapContext<'a> {
    MapContext {
        mapping: &ctx.settings.mapping,
        timezone: &ctx.settings.source.timezone,
        source_id_field: ctx.settings.target.source_id_field.as_deref(),
        type_titles: &lookups.types,
        reason_titles: &lookups.reasons,
    }
}

/// Loads one ticket completely, continuing from whatever an earlier attempt left.
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
        Mapped::Case(plan) => plan,
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
                step: "map".into(),
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
        Ok(true) => {
            ctx.store.mark_loaded(key).await?;
            Ok(Done::Loaded)
        }
        Ok(false) => Ok(Done::Interrupted),
        Err(WriteError::Item(record)) => {
            tracing::warn!(ticket = %key, step = %record.step, message = %record.message, "ticket failed");
            let class = record.class;
            ctx.store.record_failure(key, &record).await?;
            Ok(Done::Failed(class))
        }
        Err(WriteError::Fatal(e)) => {
            // Leave the ticket claimed; release_loading hands it back at the end of the run.
            Err(e)
        }
    }
}

fn stopping(ctx: &Ctx) -> bool {
    ctx.cancel.is_cancelled() || ctx.load_cancel.is_cancelled()
}

/// Writes what is missing of the plan. `Ok(false)`: interrupted between writes.
async fn load_plan(
    ctx: &Ctx,
    client: &DeskieClient,
    key: TicketKey,
    state: &mut LoadState,
    plan: &CasePlan,
) -> std::result::Result<bool, WriteError> {
    // First settle whatever a killed process left in flight.
    if !state.open_intents.is_empty() {
        let open = std::mem::take(&mut state.open_intents);
        for intent in &open {
            reconcile_open(ctx, client, state, plan, intent).await?;
        }
        *state = ctx.store.load_ticket(key).await?;
    }

    let case = match &state.case {
        Some(c) => c.clone(),
        None => {
            if stopping(ctx) {
                return Ok(false);
            }
            let c = create_case(ctx, client, key, plan).await?;
            state.case = Some(c.clone());
            c
        }
    };

    let mut wrote_customer = false;
    for step in &plan.steps {
        if state.sent.contains_key(&step.source_id()) {
            continue;
        }
        wrote_customer |= matches!(step, Step::Customer { .. });
        if stopping(ctx) {
            return Ok(false);
        }
        let deskie_id = write_step(ctx, client, key, &case, step, state).await?;
        state.sent.insert(step.source_id(), deskie_id);
    }

    // A case loaded in an earlier pass whose ticket changed since (delta run): the create's
    // status and priority no longer say anything; compare with Deskie (one read) unless an
    // update is planned anyway.
    // A customer message written in this pass may have reopened the case: the planned update is
    // needed. Otherwise, for an earlier-loaded case, one read says whether anything differs.
    let delta_update;
    let final_update = match &plan.final_update {
        Some(u) if !state.previously_loaded || wrote_customer => Some(u),
        _ if state.previously_loaded && !state.final_done => {
            if stopping(ctx) {
                return Ok(false);
            }
            delta_update = delta_final_update(client, &case, plan).await?;
            delta_update.as_ref()
        }
        _ => None,
    };
    if let Some(update) = final_update
        && !state.final_done
    {
        if stopping(ctx) {
            return Ok(false);
        }
        let hash = payload_hash(update);
        let intent = ctx
            .store
            .open_intent(key, IntentStep::Update, &hash)
            .await?;
        // A PUT of the same values is idempotent: an unknown outcome is simply sent again.
        let mut attempts = 0;
        loop {
            attempts += 1;
            match client.update_case(case.case_id, update).await {
                Ok(_) => {
                    ctx.store
                        .complete_intent(intent, IntentResult::Final)
                        .await?;
                    Progress::add(&ctx.progress.writes, 1);
                    break;
                }
                Err(e)
                    if e.class() == ErrorClass::Ambiguous && attempts < MAX_AMBIGUOUS_ATTEMPTS =>
                {
                    continue;
                }
                Err(e) => {
                    ctx.store.abandon_intent(intent).await?;
                    return Err(item_error(e, "update", Some(json_of(update))));
                }
            }
        }
    }
    Ok(true)
}

/// For a changed ticket whose case exists: the update that brings status and priority back to
/// the source's, or `None` when Deskie already matches (one read).
async fn delta_final_update(
    client: &DeskieClient,
    case: &CaseRef,
    plan: &CasePlan,
) -> std::result::Result<Option<deskie::CaseUpdate>, WriteError> {
    let remote = client
        .case(case.case_id)
        .await
        .map_err(|e| item_error(e, "update (check)", None))?;
    let mut update = deskie::CaseUpdate::default();
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

/// Creates the case through the journal; reconciles an unknown outcome by searching for it.
async fn create_case(
    ctx: &Ctx,
    client: &DeskieClient,
    key: TicketKey,
    plan: &CasePlan,
) -> std::result::Result<CaseRef, WriteError> {
    let hash = payload_hash(&plan.create);
    let intent = ctx
        .store
        .open_intent(key, IntentStep::Create, &hash)
        .await?;
    for attempt in 1..=MAX_AMBIGUOUS_ATTEMPTS {
        match client.create_case(&plan.create).await {
            Ok(case) => {
                let r = case_ref(&case);
                ctx.store
                    .complete_intent(intent, IntentResult::Case(r.clone()))
                    .await?;
                Progress::add(&ctx.progress.writes, 1);
                return Ok(r);
            }
            Err(e) if e.class() == ErrorClass::Ambiguous => {
                tracing::warn!(ticket = %key, error = %e, attempt, "case create outcome unknown; looking for it");
                tokio::time::sleep(RECONCILE_SETTLE).await;
                match find_case(ctx, client, key, plan).await {
                    Ok(Some(case)) => {
                        let r = case_ref(&case);
                        ctx.store
                            .complete_intent(intent, IntentResult::Case(r.clone()))
                            .await?;
                        Progress::add(&ctx.progress.writes, 1);
                        return Ok(r);
                    }
                    Ok(None) => continue,
                    Err(read) => {
                        // Leave the intent open: the next attempt reconciles it first.
                        return Err(item_error(read, "create (reconcile)", None));
                    }
                }
            }
            Err(e) => {
                ctx.store.abandon_intent(intent).await?;
                return Err(item_error(e, "create", Some(json_of(&plan.create))));
            }
        }
    }
    ctx.store.abandon_intent(intent).await?;
    Err(WriteError::Item(FailureRecord {
        stage: Stage::Load,
        step: "create".into(),
        class: FailureClass::Transient,
        code: None,
        message: format!(
            "the case create had no usable answer {MAX_AMBIGUOUS_ATTEMPTS} times and was not found in Deskie; will be tried again"
        ),
        request: None,
    }))
}

/// Writes one reply or note through the journal.
async fn write_step(
    ctx: &Ctx,
    client: &DeskieClient,
    key: TicketKey,
    case: &CaseRef,
    step: &Step,
    state: &LoadState,
) -> std::result::Result<i64, WriteError> {
    let step_name = step.intent_name();
    let intent_step = if step.is_note() {
        IntentStep::Note(step.source_id())
    } else {
        IntentStep::Message(step.source_id())
    };
    let message = step.message_for(case.user_id);
    let request_json = match (&message, step) {
        (Some(m), _) => json_of(m),
        (None, Step::Note { note, .. }) => json_of(note),
        (None, _) => String::new(),
    };
    let hash = payload_hash(&request_json);
    let intent = ctx.store.open_intent(key, intent_step, &hash).await?;
    for attempt in 1..=MAX_AMBIGUOUS_ATTEMPTS {
        let result = match (&message, step) {
            (Some(m), _) => client.add_message(case.case_id, m).await,
            (None, Step::Note { note, .. }) => client.add_note(case.case_id, note).await,
            (None, _) => unreachable_step(),
        };
        match result {
            Ok(info) => {
                ctx.store
                    .complete_intent(
                        intent,
                        IntentResult::Message {
                            source_id: step.source_id(),
                            deskie_id: info.message_id,
                        },
                    )
                    .await?;
                Progress::add(&ctx.progress.writes, 1);
                return Ok(info.message_id);
            }
            Err(e) if e.class() == ErrorClass::Ambiguous => {
                tracing::warn!(ticket = %key, step = %step_name, error = %e, attempt, "write outcome unknown; looking for it");
                tokio::time::sleep(RECONCILE_SETTLE).await;
                match find_message(ctx, client, case, step, state).await {
                    Ok(Some(found)) => {
                        ctx.store
                            .complete_intent(
                                intent,
                                IntentResult::Message {
                                    source_id: step.source_id(),
                                    deskie_id: found,
                                },
                            )
                            .await?;
                        Progress::add(&ctx.progress.writes, 1);
                        return Ok(found);
                    }
                    Ok(None) => continue,
                    Err(read) => {
                        return Err(item_error(read, &format!("{step_name} (reconcile)"), None));
                    }
                }
            }
            Err(e) => {
                ctx.store.abandon_intent(intent).await?;
                return Err(item_error(e, &step_name, Some(request_json)));
            }
        }
    }
    ctx.store.abandon_intent(intent).await?;
    Err(WriteError::Item(FailureRecord {
        stage: Stage::Load,
        step: step_name,
        class: FailureClass::Transient,
        code: None,
        message: format!(
            "the write had no usable answer {MAX_AMBIGUOUS_ATTEMPTS} times and was not found in the case; will be tried again"
        ),
        request: None,
    }))
}

fn unreachable_step() -> deskie::Result<MessageInfo> {
    // `message_for` returns a request for every reply step; only notes return None.
    Err(DeskieError::Config {
        message: "internal: a reply step without a request".into(),
    })
}

/// Settles one intent a killed process left open: completes it if Deskie has the write,
/// abandons it (so it is written again) if not.
async fn reconcile_open(
    ctx: &Ctx,
    client: &DeskieClient,
    state: &LoadState,
    plan: &CasePlan,
    intent: &Intent,
) -> std::result::Result<(), WriteError> {
    let key = intent.key;
    match intent.step {
        IntentStep::Create => match find_case(ctx, client, key, plan).await {
            Ok(Some(case)) => {
                ctx.store
                    .complete_intent(intent.id, IntentResult::Case(case_ref(&case)))
                    .await?;
            }
            Ok(None) => ctx.store.abandon_intent(intent.id).await?,
            Err(e) => return Err(item_error(e, "create (reconcile)", None)),
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
                }
                Ok(None) => ctx.store.abandon_intent(intent.id).await?,
                Err(e) => return Err(item_error(e, &step.intent_name(), None)),
            }
        }
        // The update is idempotent: abandon and send it again.
        IntentStep::Update => ctx.store.abandon_intent(intent.id).await?,
    }
    Ok(())
}

/// Looks for the case a create may have made. By the source-id custom field when configured
/// (exact match); otherwise among cases created at the same second with the same subject.
async fn find_case(
    ctx: &Ctx,
    client: &DeskieClient,
    key: TicketKey,
    plan: &CasePlan,
) -> deskie::Result<Option<Case>> {
    Progress::add(&ctx.progress.reconcile_reads, 1);
    if let Some(field) = &ctx.settings.target.source_id_field {
        return match client
            .lookup_case_by_custom_field(field, &[key.source_id()])
            .await?
        {
            deskie::CaseLookup::Found(case) => Ok(Some(*case)),
            deskie::CaseLookup::Several(mut cases) => Ok(Some(cases.remove(0))),
            deskie::CaseLookup::Absent | deskie::CaseLookup::Unknown(_) => Ok(None),
        };
    }
    let at = plan.create.created_at;
    let query = CaseQuery {
        limit: Some(100),
        from_time: Some(at - jiff::SignedDuration::from_secs(1)),
        to_time: Some(at + jiff::SignedDuration::from_secs(1)),
        sort: Some(CaseSort::CreatedAtAsc),
        ..CaseQuery::default()
    };
    let list = client.list_cases(&query).await?;
    Ok(list.cases.into_iter().find(|c| {
        c.subject.as_deref().map(str::trim) == Some(plan.create.subject.trim())
            && c.created_at_ts().is_none_or(|t| t == at)
            && recipient_matches(c, plan)
    }))
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

/// Turns a client error into a ticket failure (or a run stop for fatal ones).
fn item_error(e: DeskieError, step: &str, request: Option<String>) -> WriteError {
    if e.class() == ErrorClass::Fatal {
        return WriteError::Fatal(e.into());
    }
    let class = match e.class() {
        ErrorClass::Permanent => FailureClass::Permanent,
        _ => FailureClass::Transient,
    };
    let message = match &e {
        DeskieError::Rejected { message, .. } | DeskieError::NotFound { message, .. }
            if !message.is_empty() =>
        {
            message.clone()
        }
        other => other.to_string(),
    };
    WriteError::Item(FailureRecord {
        stage: Stage::Load,
        step: step.to_string(),
        class,
        code: e.status().map(|s| s.to_string()),
        message,
        request: request.map(|r| truncate(&r, 2000)),
    })
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
