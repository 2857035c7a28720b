//! `rollback`: deletes from Deskie the cases this store created — only those, the ones in its
//! case map — so a trial can be undone and its tickets migrated again by the next `run`.
//!
//! Every delete is journaled like every write: the intents of a bulk request (≤ 10 cases, page
//! 001 "Bulk permanent delete") are committed before the request; once Deskie confirmed it, the
//! intents are completed in ONE transaction with clearing each ticket's case map, message map and
//! final state, which sends the ticket back to `extracted`. An intent still open at the next start
//! (a kill between sending and recording) is settled by reading the case first: gone → completed
//! without a second DELETE; still there → deleted. A delete whose answer was lost is settled the
//! same way. Requests go through the account's limiter, at the rate limit. The users Deskie
//! created with the cases stay (page 000 offers deleting users, but a customer may have written
//! to the account since; the tool never deletes customers).

use std::collections::HashSet;

use deskie::{DeskieClient, DeskieError, ErrorClass};
use model::TicketKey;
use serde::Serialize;
use store::{CaseRef, RollbackIntent};
use throttle::RetryPolicy;

use crate::Engine;
use crate::clients::build_deskie;
use crate::error::Result;
use crate::preflight::DeleteFinding;

/// What a rollback will do, stated before it starts.
#[derive(Debug, Clone, Serialize)]
pub struct RollbackPlan {
    /// The cases to delete (every case this store created, or those of the tickets named).
    pub cases: Vec<(TicketKey, CaseRef)>,
    /// Deletes an earlier rollback left unconfirmed (settled by one read each first).
    pub open: usize,
    /// Whether each bulk delete is preceded by a trash request (the preflight probe found that a
    /// DELETE alone only trashes a case).
    pub trash_first: bool,
    /// Tickets named with `--ticket` that have no case in this store (nothing to delete).
    pub not_created: Vec<TicketKey>,
}

impl RollbackPlan {
    /// Bulk requests (≤ 10 cases each) the deletes take.
    pub fn requests(&self) -> u64 {
        let bulks = self.cases.len().div_ceil(deskie::BULK_MAX) as u64;
        bulks * if self.trash_first { 2 } else { 1 }
    }

    /// Deskie units at most: 2 per write, 1 per read of an unconfirmed delete.
    pub fn units(&self) -> u64 {
        self.requests() * 2 + self.open as u64
    }
}

/// What a rollback did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RollbackSummary {
    /// Cases deleted by this rollback.
    pub deleted: u64,
    /// Cases an earlier, interrupted rollback had already deleted (found gone when settling).
    pub already_gone: u64,
    /// Cases that could not be deleted, with Deskie's reason; their tickets stay as they were.
    pub failed: Vec<(TicketKey, String)>,
    /// Stopped by a cancellation before every case was handled; run it again to continue.
    pub interrupted: bool,
    /// Deskie units spent.
    pub units: u64,
}

/// The plan for `only` (the tickets named with `--ticket`) or every case this store created.
pub async fn plan(engine: &Engine, only: Option<&[TicketKey]>) -> Result<RollbackPlan> {
    // The case ids of this store mean something only in the Deskie account they were created
    // in: pointed at another account, deleting them would delete someone else's cases.
    crate::identity::TargetPlan::check(engine.store(), engine.settings(), false).await?;
    let cases = engine.store().created_cases(only).await?;
    let open = engine.store().open_rollbacks().await?.len();
    let trash_first = crate::preflight::recorded(engine)
        .await?
        .is_some_and(|(_, f)| f.delete == Some(DeleteFinding::TrashFirst));
    let not_created = only
        .unwrap_or_default()
        .iter()
        .filter(|k| !cases.iter().any(|(c, _)| c == *k))
        .copied()
        .collect();
    Ok(RollbackPlan {
        cases,
        open,
        trash_first,
        not_created,
    })
}

/// Runs a rollback of `plan` until done or until the engine's cancel token fires (checked between
/// bulk requests; a request in flight is finished and recorded first).
pub async fn run(engine: &Engine, plan: &RollbackPlan) -> Result<RollbackSummary> {
    crate::identity::TargetPlan::check(engine.store(), engine.settings(), false).await?;
    let settings = engine.settings();
    let retry = RetryPolicy {
        max_transient_retries: settings.run.max_retries,
        ..RetryPolicy::default()
    };
    let (_, limiter) = engine.limiters();
    let before = limiter.stats().units;
    let deskie = build_deskie(settings, limiter.clone(), retry)?;
    let cancel = engine.cancel_token();
    let mut summary = RollbackSummary::default();

    // First settle what an interrupted rollback left: a read each.
    let mut settled: HashSet<TicketKey> = HashSet::new();
    for intent in engine.store().open_rollbacks().await? {
        match deskie.case(intent.case_id).await {
            Err(DeskieError::NotFound { .. }) => {
                engine
                    .store()
                    .complete_rollback(std::slice::from_ref(&intent))
                    .await?;
                summary.already_gone += 1;
                settled.insert(intent.key);
            }
            // Still there (perhaps in the trash): deleted below with the others.
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
    }

    let todo: Vec<(TicketKey, i64)> = plan
        .cases
        .iter()
        .filter(|(k, _)| !settled.contains(k))
        .map(|(k, c)| (*k, c.case_id))
        .collect();
    for chunk in todo.chunks(deskie::BULK_MAX) {
        if cancel.is_cancelled() {
            summary.interrupted = true;
            break;
        }
        let intents = engine.store().open_rollback(chunk).await?;
        delete_chunk(engine, &deskie, &intents, plan.trash_first, &mut summary).await?;
    }
    summary.units = limiter.stats().units - before;
    Ok(summary)
}

/// Deletes one journaled chunk and records the outcome of each case.
async fn delete_chunk(
    engine: &Engine,
    deskie: &DeskieClient,
    intents: &[RollbackIntent],
    trash_first: bool,
    summary: &mut RollbackSummary,
) -> Result<()> {
    let ids: Vec<i64> = intents.iter().map(|i| i.case_id).collect();
    let result = async {
        if trash_first {
            deskie.trash_cases(&ids).await?;
        }
        deskie.delete_cases(&ids).await
    }
    .await;
    match result {
        Ok(()) => {
            engine.store().complete_rollback(intents).await?;
            summary.deleted += intents.len() as u64;
            Ok(())
        }
        Err(e) if e.class() == ErrorClass::Fatal => Err(e.into()),
        // One case of a bulk request may be what Deskie refuses (or is gone already): each
        // case alone says which. The answer of a lost request is settled by reading.
        Err(e) => {
            tracing::warn!(error = %e, cases = ids.len(), "bulk delete not confirmed; settling case by case");
            for intent in intents {
                settle_one(engine, deskie, intent, trash_first, summary).await?;
            }
            Ok(())
        }
    }
}

/// Deletes one case whose bulk delete was not confirmed: read first (gone → done), then delete
/// it alone; a refusal is recorded and its ticket left as it was.
async fn settle_one(
    engine: &Engine,
    deskie: &DeskieClient,
    intent: &RollbackIntent,
    trash_first: bool,
    summary: &mut RollbackSummary,
) -> Result<()> {
    let store = engine.store();
    match deskie.case(intent.case_id).await {
        Err(DeskieError::NotFound { .. }) => {
            store
                .complete_rollback(std::slice::from_ref(intent))
                .await?;
            summary.deleted += 1;
            return Ok(());
        }
        Ok(_) => {}
        Err(e) if e.class() == ErrorClass::Fatal => return Err(e.into()),
        Err(e) => {
            // Unknown: the intent stays open and the next rollback settles it.
            summary.failed.push((intent.key, e.to_string()));
            return Ok(());
        }
    }
    let single = [intent.case_id];
    let result = async {
        if trash_first {
            deskie.trash_cases(&single).await?;
        }
        deskie.delete_cases(&single).await
    }
    .await;
    match result {
        Ok(()) | Err(DeskieError::NotFound { .. }) => {
            store
                .complete_rollback(std::slice::from_ref(intent))
                .await?;
            summary.deleted += 1;
        }
        Err(e) if e.class() == ErrorClass::Fatal => return Err(e.into()),
        Err(e) if e.class() == ErrorClass::Permanent => {
            store.abandon_rollback(std::slice::from_ref(intent)).await?;
            summary.failed.push((intent.key, e.to_string()));
        }
        // Outcome unknown again: stays open, settled by the next rollback's read.
        Err(e) => summary.failed.push((intent.key, e.to_string())),
    }
    Ok(())
}
