//! One migration run: opens the store and both clients, runs extraction and loading at the same
//! time (the store is the hand-off and the checkpoint of both), flushes request statistics, and
//! stops cleanly on cancellation: no new work is taken, in-flight writes finish or stay journaled
//! as open intents, tickets held by the loader go back to `extracted`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deskie::{CasePriority, CaseStatus};
use serde::Serialize;
use store::{
    CheckpointMode, Counts, RequestStat, RetryFilter, RunKind, RunOutcome, Side, Store, StoreLock,
};
use throttle::LimiterStats;

use crate::clients::{build_desk360, build_deskie, file_clients};
use crate::config::Settings;
use crate::ctx::{Ctx, EarlierWrites};
use crate::error::{EngineError, Result};
use crate::identity::{self, TargetPlan};
use crate::open::Engine;
use crate::progress::ProgressSnapshot;
use crate::{extract, load};

/// What to do in a run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Extract and plan only: no POST, PUT or DELETE to Deskie.
    pub dry_run: bool,
    /// Also re-queue permanent failures matching this filter before loading (`retry-failed`
    /// or `run --retry-failed`).
    pub retry: Option<RetryFilter>,
    /// Load only what is already extracted; do not contact Desk360 (`retry-failed`).
    pub skip_extract: bool,
    /// The configured Deskie account may differ from the store's: forget every case made in the
    /// previous one and migrate everything again into the configured one (`run --retarget`).
    pub retarget: bool,
    /// A trial (`run --limit N`): migrate only the N most recently updated tickets, then stop.
    pub limit: Option<u64>,
    /// A trial (`run --ticket P/T`…): migrate only these tickets (with `limit`, both).
    pub tickets: Vec<model::TicketKey>,
}

impl RunOptions {
    /// Whether this run is a trial (`--limit` or `--ticket`).
    pub fn is_trial(&self) -> bool {
        self.limit.is_some() || !self.tickets.is_empty()
    }
}

/// A case a trial created, for the user to open in Deskie.
#[derive(Debug, Clone, Serialize)]
pub struct TrialCase {
    /// The Desk360 ticket.
    pub ticket: String,
    /// Deskie case id.
    pub case_id: i64,
    /// Deskie case number, as Deskie's web pages show it.
    pub case_number: String,
}

/// What a finished (or interrupted) run did, for the summary the binary prints.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// `run`, `dry-run` or `retry-failed`.
    pub kind: RunKind,
    /// Stopped by Ctrl-C (or another cancellation) before finishing.
    pub interrupted: bool,
    /// Why the loader stopped early, if it did (e.g. Deskie unavailable).
    pub stopped_reason: Option<String>,
    /// Counters of this run.
    pub progress: ProgressSnapshot,
    /// Store totals after the run.
    pub counts: Counts,
    /// Tickets in state failed after the run.
    pub failed: u64,
    /// Wall-clock duration.
    pub elapsed_secs: f64,
    /// Desk360 limiter counters.
    pub desk360: LimiterStatsView,
    /// Deskie limiter counters.
    pub deskie: LimiterStatsView,
    /// For a trial: the cases of the selected tickets (empty otherwise).
    pub trial_cases: Vec<TrialCase>,
}

/// Serializable copy of [`LimiterStats`].
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct LimiterStatsView {
    /// Requests sent.
    pub requests: u64,
    /// Units spent.
    pub units: u64,
    /// 429s seen.
    pub throttled: u64,
    /// Transient retries.
    pub transient_retries: u64,
    /// Limit in force at the end.
    pub limit: u32,
}

impl From<LimiterStats> for LimiterStatsView {
    fn from(s: LimiterStats) -> Self {
        Self {
            requests: s.requests,
            units: s.units,
            throttled: s.throttled,
            transient_retries: s.transient_retries,
            limit: s.limit,
        }
    }
}

impl Engine {
    /// Runs extraction and loading (or only extraction for a dry run) until done or cancelled.
    ///
    /// Holds the store's write lock throughout: the engine's own (see [`Engine::open_writer`]),
    /// or one taken here for the run's duration.
    pub async fn run(&self, options: RunOptions) -> Result<RunSummary> {
        let _lock = match self.writer {
            Some(_) => None,
            None => Some(StoreLock::acquire(self.ctx.store.path())?),
        };
        let ctx = self.ctx.clone();
        let started = Instant::now();
        // With the lock held, no earlier process is alive: its writes ended by now at the latest.
        let locked_at = jiff::Timestamp::now();
        // A preflight finding with no fallback stops every run that would write.
        if !options.dry_run
            && let Some((at, findings)) = crate::preflight::recorded(self).await?
            && let Some(line) = findings.blocking()
        {
            return Err(EngineError::Refused(format!(
                "{line} (preflight of {at} UTC; run `deskie-import preflight` again once fixed)"
            )));
        }
        ctx.selected_only
            .store(options.is_trial(), std::sync::atomic::Ordering::Relaxed);
        // Both accounts are checked against the store before anything is written.
        let clients = self.prepare(&options).await?;
        // After `prepare` (a re-target forgets the old target's intents): only intents opened
        // from here on count towards this run's bound on writes proven absent.
        let first = ctx.store.last_intent_id().await?;
        ctx.run_intents_after
            .store(first.0, std::sync::atomic::Ordering::Relaxed);
        let earlier = earlier_writes(&ctx, locked_at).await?;
        *ctx.earlier_writes.lock().unwrap_or_else(|p| p.into_inner()) = Some(earlier);
        let kind = if options.dry_run {
            RunKind::DryRun
        } else if options.skip_extract {
            RunKind::RetryFailed
        } else {
            RunKind::Run
        };
        let run_id = ctx
            .store
            .begin_run(kind, &fingerprint(&ctx.settings))
            .await?;

        if ctx.settings.target.source_id_field.is_none() {
            tracing::warn!("{}", crate::report::SOURCE_ID_FIELD_NOTICE);
        }
        // Whatever a crashed run held goes back in line; transient failures get another go.
        ctx.store.release_loading().await?;
        if !options.dry_run {
            ctx.store.requeue_transient().await?;
            // Re-mapped with today's configuration: a channel no longer mapped to skip migrates.
            ctx.store.requeue_skipped().await?;
        }
        if let Some(filter) = &options.retry {
            let n = ctx.store.retry_failed(filter).await?;
            tracing::info!(tickets = n, "failed tickets queued again");
        }

        let stats_task = tokio::spawn(flush_stats(ctx.clone()));
        let checkpoint_task = tokio::spawn(checkpoints(ctx.store.clone()));
        let result = self.run_inner(&options, clients).await;
        ctx.load_cancel.cancel();
        stats_task.abort();
        checkpoint_task.abort();
        let _ = stats_task.await;
        let _ = checkpoint_task.await;
        flush_once(&ctx, true).await;
        // Tickets a cancelled loader still held go back in line.
        ctx.store.release_loading().await?;

        let interrupted = ctx.cancel.is_cancelled();
        let stopped_reason = match &result {
            Ok(reason) => reason.clone(),
            Err(e) => Some(e.to_string()),
        };
        let outcome = match (&result, interrupted) {
            (Err(_), _) => RunOutcome::Error,
            (Ok(_), true) => RunOutcome::Interrupted,
            (Ok(Some(_)), false) => RunOutcome::Stopped,
            // A completed trial is not a completed migration (the next run is no delta run).
            (Ok(None), false) if options.is_trial() => RunOutcome::Trial,
            (Ok(None), false) => RunOutcome::Completed,
        };
        ctx.store.finish_run(run_id, outcome).await?;
        // A clean stop leaves the whole store in the .sqlite file (an empty -wal).
        if let Err(e) = ctx.store.checkpoint(CheckpointMode::Truncate).await {
            tracing::warn!(error = %e, "could not checkpoint the store's WAL at the end of the run");
        }
        result?;

        let counts = ctx.store.counts().await?;
        let failed = counts
            .tickets
            .get(&store::TicketState::Failed)
            .copied()
            .unwrap_or(0);
        let mut trial_cases = Vec::new();
        if options.is_trial() {
            let selection = ctx.store.trial_selection().await?;
            for (key, case) in ctx.store.created_cases(Some(&selection)).await? {
                trial_cases.push(TrialCase {
                    ticket: key.to_string(),
                    case_id: case.case_id,
                    case_number: case.case_number,
                });
            }
        }
        Ok(RunSummary {
            kind,
            interrupted,
            stopped_reason,
            progress: ctx.progress.snapshot(),
            counts,
            failed,
            elapsed_secs: started.elapsed().as_secs_f64(),
            desk360: ctx.desk360_limiter.stats().into(),
            deskie: ctx.deskie_limiter.stats().into(),
            trial_cases,
        })
    }

    /// Builds both clients and checks that the store belongs to the accounts they reach
    /// (identity.rs): the target by its host before any request, the source by `/v1/me`. The
    /// first run records both (after the credentials were accepted); `retarget` moves the store
    /// to another Deskie account. Nothing is written to the store before this passes.
    async fn prepare(&self, options: &RunOptions) -> Result<Clients> {
        let ctx = &self.ctx;
        let target = TargetPlan::check(&ctx.store, &ctx.settings, options.retarget).await?;
        // The Deskie client first: with bad credentials nothing should be read either.
        let deskie = build_deskie(&ctx.settings, ctx.deskie_limiter.clone(), ctx.retry)?;
        deskie.check_credentials().await?;
        // `retry-failed` lists nothing, but tickets whose extraction failed go back to `pending`
        // and their details are fetched again: it needs the Desk360 client too.
        let extraction_failed = options.retry.is_some()
            && ctx.store.failed_tickets().await?.iter().any(|f| {
                f.failure
                    .as_ref()
                    .is_some_and(|x| x.record.stage == store::Stage::Extract)
            });
        // (Uploading files builds its own client on first need: see `file_clients`.)
        let desk360 = if options.skip_extract
            && !extraction_failed
            && ctx.store.pending_tickets(1).await?.is_empty()
        {
            None
        } else {
            Some(build_desk360(&ctx.settings, ctx.desk360_limiter.clone(), ctx.retry).await?)
        };
        let source = identity::check_source(&ctx.store, &ctx.settings, desk360.as_ref()).await?;
        target.apply(&ctx.store).await?;
        if let Some(source) = source {
            ctx.store.record_account(&source).await?;
        }
        Ok(Clients { deskie, desk360 })
    }

    async fn run_inner(&self, options: &RunOptions, clients: Clients) -> Result<Option<String>> {
        let ctx = self.ctx.clone();
        let Clients { deskie, desk360 } = clients;
        if let Some(d) = &desk360 {
            let _ = ctx.files.set(file_clients(&ctx, d.clone()));
        }
        if options.is_trial() {
            // A trial lists only as far as its selection needs, then loads only that.
            let desk360 = match desk360 {
                Some(d) => d,
                None => {
                    build_desk360(&ctx.settings, ctx.desk360_limiter.clone(), ctx.retry).await?
                }
            };
            crate::trial::select(&ctx, &desk360, options.limit, &options.tickets).await?;
            ctx.finish_extraction();
            let result = if options.dry_run {
                Ok(None)
            } else {
                load::run(&ctx, deskie).await
            };
            if result.is_err() {
                ctx.cancel.cancel();
            }
            return result;
        }
        let listing = if !options.skip_extract {
            Some(extract::Listing::All)
        } else if !ctx.store.pending_tickets(1).await?.is_empty() {
            Some(extract::Listing::PendingOnly)
        } else {
            None
        };
        let extract_task = if let (Some(desk360), Some(listing)) = (desk360, listing) {
            let ctx2 = ctx.clone();
            Some(tokio::spawn(async move {
                let r = extract::run(&ctx2, desk360, listing).await;
                ctx2.finish_extraction();
                r
            }))
        } else {
            ctx.finish_extraction();
            None
        };

        let load_result = if options.dry_run {
            Ok(None)
        } else {
            load::run(&ctx, deskie).await
        };
        let extract_result = match extract_task {
            Some(t) => match t.await {
                Ok(r) => r,
                Err(e) => Err(EngineError::Internal(format!(
                    "extraction task failed: {e}"
                ))),
            },
            None => Ok(()),
        };
        if load_result.is_err() || extract_result.is_err() {
            // Stop the other half too.
            ctx.cancel.cancel();
        }
        extract_result?;
        if options.dry_run
            && ctx.settings.attachments.mode == crate::config::AttachmentMode::Urls
            && !ctx.cancel.is_cancelled()
            && let Some(files) = ctx.files.get()
        {
            crate::attachments::check_links(&ctx, files).await?;
        }
        load_result
    }
}

/// The clients of one run, built (and checked) by `Engine::prepare`.
struct Clients {
    deskie: deskie::DeskieClient,
    /// `None` when the run does not read Desk360 (`retry-failed`).
    desk360: Option<desk360::Desk360Client>,
}

/// A short fingerprint of the settings that change what is written, for the run history.
fn fingerprint(s: &Settings) -> String {
    use sha2::Digest;
    // The Deskie names as text, so the fingerprint of an unchanged configuration stays the one
    // earlier versions recorded (they held the names as strings).
    fn names<T: Copy>(m: &BTreeMap<i64, T>, name: fn(T) -> &'static str) -> String {
        let m: BTreeMap<i64, &str> = m.iter().map(|(k, v)| (*k, name(*v))).collect();
        format!("{m:?}")
    }
    let text = format!(
        "{}|{}|{:?}|{}|{}|{:?}|{:?}|{}",
        s.source.base_url,
        s.target.base_url,
        s.mapping.agents,
        names(&s.mapping.status, CaseStatus::as_str),
        names(&s.mapping.priority, CasePriority::as_str),
        s.mapping.channels,
        s.target.source_id_field,
        s.source.timezone_name
    );
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// How often a run copies the WAL into the main file: bounds what a copy of the `.sqlite` file
/// alone (without its `-wal`) would miss after a crash.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(30);

/// Every [`CHECKPOINT_EVERY`], a passive WAL checkpoint: it never waits for readers nor blocks
/// the writer (see `store::CheckpointMode`), and runs between the single writer's transactions.
async fn checkpoints(store: Store) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = store.checkpoint(CheckpointMode::Passive).await {
            tracing::warn!(error = %e, "periodic WAL checkpoint failed; the next one retries");
        }
    }
}

/// Every few seconds, adds the limiters' new requests to the per-minute request log.
async fn flush_stats(ctx: Arc<Ctx>) {
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        flush_once(&ctx, false).await;
    }
}

async fn flush_once(ctx: &Ctx, final_flush: bool) {
    let minute = jiff::Timestamp::now().as_second() / 60 * 60;
    let mut rows = Vec::new();
    {
        let mut guard = ctx.stat_marks.lock().unwrap_or_else(|p| p.into_inner());
        let marks = &mut *guard;
        for (side, now, mark) in [
            (
                Side::Desk360,
                ctx.desk360_limiter.stats(),
                &mut marks.desk360,
            ),
            (Side::Deskie, ctx.deskie_limiter.stats(), &mut marks.deskie),
        ] {
            let row = RequestStat {
                side,
                minute_epoch: minute,
                requests: now.requests - mark.requests,
                units: now.units - mark.units,
                throttled: now.throttled - mark.throttled,
                transient: now.transient_retries - mark.transient_retries,
            };
            if row.requests > 0 || row.throttled > 0 {
                rows.push(row);
            }
            *mark = now;
        }
    }
    if !rows.is_empty()
        && let Err(e) = ctx.store.add_request_stats(&rows).await
    {
        tracing::warn!(error = %e, final_flush, "could not record request statistics");
    }
}

/// When every write of an earlier process had ended: `locked_at`, and the last run's recorded
/// end if it stopped cleanly (see [`EarlierWrites`]).
async fn earlier_writes(ctx: &Ctx, locked_at: jiff::Timestamp) -> Result<EarlierWrites> {
    let last = ctx.store.last_runs(1).await?;
    let clean_end = last.first().and_then(|r| {
        let clean = matches!(
            r.outcome,
            Some(
                RunOutcome::Completed
                    | RunOutcome::Trial
                    | RunOutcome::Interrupted
                    | RunOutcome::Stopped
            )
        );
        let end = store::stamp_time_latest(r.finished_at.as_deref()?)?;
        clean.then_some(end)
    });
    Ok(EarlierWrites {
        locked_at,
        clean_end,
    })
}
