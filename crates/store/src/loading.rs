//! The loader's side: claiming tickets, the write-intent journal and the Deskie id maps.
//!
//! Exactly-once rests on two rules kept here: an intent is opened (committed) before each write
//! and completed together with its id map in one transaction after it; and there is never more
//! than one open intent per (ticket, step) (a partial unique index enforces it).

use std::sync::Arc;

use model::TicketKey;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use tokio::sync::oneshot;

use crate::error::Result;
use crate::group::{Answer, Head, Op};
use crate::rows::{attach_rows, key_from_row, ticket_columns, ticket_from_row};
use crate::writer::WriteGuard;
use crate::{
    CaseRef, Intent, IntentId, IntentResult, IntentStep, LoadState, Store, StoreError, now,
};

impl Store {
    /// Atomically moves up to `limit` `extracted` tickets to `loading` and returns them, in
    /// listing order. Two callers never get the same ticket.
    ///
    /// Failed-transient tickets are not taken here (that would spin on an outage within one
    /// run): call [`Store::requeue_transient`] at the start of a run to give them another go.
    pub async fn claim_for_load(&self, limit: u32) -> Result<Vec<TicketKey>> {
        self.claim(
            sqlx::query(
                "UPDATE tickets SET state = 'loading'
                 WHERE rowid IN (SELECT rowid FROM tickets WHERE state = 'extracted'
                                 ORDER BY batch_id LIMIT ?)
                 RETURNING product_id, ticket_id, batch_id",
            )
            .bind(i64::from(limit)),
        )
        .await
    }

    /// At startup, hands back every ticket a crashed run held: `loading` becomes `extracted`
    /// (or `pending` when a newer listing arrived that was never fetched). Returns how many.
    pub async fn release_loading(&self) -> Result<u64> {
        let handed = self
            .write_one(sqlx::query(
                "UPDATE tickets SET reload = 0,
                    state = CASE WHEN fetched_updated_at IS listed_updated_at
                                 THEN 'extracted' ELSE 'pending' END
                 WHERE state = 'loading'",
            ))
            .await?;
        if handed > 0 {
            tracing::info!(
                tickets = handed,
                "handed back tickets a stopped run was loading"
            );
        }
        Ok(handed)
    }

    /// At the start of a run, hands skipped tickets back to the loader, which maps them again
    /// with the current configuration: a channel routed from `skip` to a real channel since the
    /// last run is then migrated, and one still mapped to `skip` is marked skipped again (no
    /// request is sent for it). Only tickets whose current detail is stored. Returns how many.
    pub async fn requeue_skipped(&self) -> Result<u64> {
        self.write_one(sqlx::query(
            "UPDATE tickets SET state = 'extracted', skip_reason = NULL
             WHERE state = 'skipped' AND fetched_updated_at IS listed_updated_at",
        ))
        .await
    }

    /// At the start of a run, gives transient failures another go without a flag: failed in
    /// load → `extracted`, failed in extract → `pending`. Returns how many.
    pub async fn requeue_transient(&self) -> Result<u64> {
        let requeued = self
            .write_one(sqlx::query(
                "UPDATE tickets SET
                    state = CASE WHEN failure_stage = 'load'
                                      AND fetched_updated_at IS listed_updated_at
                                 THEN 'extracted' ELSE 'pending' END,
                    failure_stage = NULL, failure_class = NULL
                 WHERE state = 'failed' AND failure_class = 'transient'",
            ))
            .await?;
        if requeued > 0 {
            tracing::info!(tickets = requeued, "re-queued transient failures");
        }
        Ok(requeued)
    }

    /// Everything needed to continue loading one ticket: its detail (messages in write order),
    /// its case, the messages already written, whether the final step is done, and its open
    /// intents (writes of unknown outcome, to reconcile first).
    ///
    /// One round trip to the write connection's worker in the usual case: three statements in
    /// one query string (the ticket with its case, marks, written messages and abandoned
    /// intents; its messages; their attachments), each row tagged with the statement it comes
    /// from; a second (on the read pool) only when the ticket has open intents.
    ///
    /// On the write connection, not the read pool: the pages it reads were mostly just written
    /// by that connection, so they are in its cache (a read connection re-reads them from the
    /// WAL after every commit: 27 → 7 `pread`s a ticket), and no pool hands it out and pings it
    /// back (half the thread wake-ups a ticket; BENCHMARKS.md, "Local cost"). It waits behind a
    /// group commit at most, which the loader's claims ahead hide.
    pub async fn load_ticket(&self, key: TicketKey) -> Result<LoadState> {
        let rows = sqlx::query(concat!(
            "SELECT 't' AS part, ",
            ticket_columns!(),
            ", case_id, case_number, user_id, done_at IS NOT NULL AS final_done,
               loaded_at IS NOT NULL AS previously_loaded,
               EXISTS (SELECT 1 FROM intents i WHERE i.product_id = tickets.product_id
                       AND i.ticket_id = tickets.ticket_id AND i.state = 'open') AS has_open,
               (SELECT json_group_array(json_array(m.source_message_id, m.deskie_message_id))
                FROM message_map m WHERE m.product_id = tickets.product_id
                  AND m.ticket_id = tickets.ticket_id) AS sent,
               (SELECT json_group_array(json_array(i.id, i.step)) FROM intents i
                WHERE i.product_id = tickets.product_id AND i.ticket_id = tickets.ticket_id
                  AND i.state = 'abandoned') AS abandoned
             FROM tickets LEFT JOIN case_map USING (product_id, ticket_id)
                  LEFT JOIN final_state USING (product_id, ticket_id)
             WHERE product_id = ?1 AND ticket_id = ?2;
             SELECT 'm' AS part, product_id, ticket_id, position, message_id, author_kind,
                    author_agent_id, kind, body, created_at
             FROM messages WHERE product_id = ?1 AND ticket_id = ?2 ORDER BY position;
             SELECT 'a' AS part, product_id, ticket_id, position, idx, url, name, kind, size
             FROM attachments WHERE product_id = ?1 AND ticket_id = ?2 ORDER BY position, idx"
        ))
        .bind(key.product_id)
        .bind(key.ticket_id)
        .fetch_all(&mut *self.write.lock().await?)
        .await?;
        let (mut ticket_rows, mut message_rows, mut attachment_rows) =
            (Vec::new(), Vec::new(), Vec::new());
        for row in rows {
            match row.try_get::<&str, _>("part")? {
                "t" => ticket_rows.push(row),
                "m" => message_rows.push(row),
                _ => attachment_rows.push(row),
            }
        }
        let row = ticket_rows
            .pop()
            .ok_or_else(|| StoreError::NotFound(format!("ticket {key}")))?;
        let mut tickets = vec![ticket_from_row(&row)?];
        let case = match row.try_get::<Option<i64>, _>("case_id")? {
            Some(case_id) => Some(CaseRef {
                case_id,
                case_number: row.try_get("case_number")?,
                user_id: row.try_get("user_id")?,
            }),
            None => None,
        };
        let sent: String = row.try_get("sent")?;
        let sent: Vec<(i64, i64)> = serde_json::from_str(&sent)
            .map_err(|e| StoreError::Corrupt(format!("message map of {key}: {e}")))?;
        let abandoned: String = row.try_get("abandoned")?;
        let abandoned = serde_json::from_str::<Vec<(i64, String)>>(&abandoned)
            .map_err(|e| StoreError::Corrupt(format!("abandoned intents of {key}: {e}")))?
            .into_iter()
            .map(|(id, step)| Ok((IntentId(id), step.parse::<IntentStep>()?)))
            .collect::<Result<Vec<_>>>()?;
        let final_done: bool = row.try_get("final_done")?;
        let previously_loaded: bool = row.try_get("previously_loaded")?;
        let has_open: bool = row.try_get("has_open")?;

        attach_rows(&mut tickets, &message_rows, &attachment_rows)?;
        let ticket = tickets
            .pop()
            .ok_or_else(|| StoreError::NotFound(format!("ticket {key}")))?;

        let open_intents = if has_open {
            sqlx::query(
                "SELECT id, product_id, ticket_id, step, payload_hash, created_at FROM intents
                 WHERE product_id = ? AND ticket_id = ? AND state = 'open' ORDER BY id",
            )
            .bind(key.product_id)
            .bind(key.ticket_id)
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(intent_from_row)
            .collect::<Result<Vec<_>>>()?
        } else {
            Vec::new()
        };

        Ok(LoadState {
            ticket,
            case,
            sent: sent.into_iter().collect(),
            final_done,
            previously_loaded,
            open_intents,
            abandoned,
        })
    }

    /// Journals a write before it is sent, and returns only once the intent is durable (its
    /// commit fsynced). If an open intent already exists for this ticket and step, returns it
    /// instead of opening a second one (reconcile it before writing).
    ///
    /// Group commit: the intents of cases in flight that ask at the same time are made durable
    /// by one transaction and one fsync (see `IntentQueue`). Each caller still gets its id
    /// only after that commit, so "the intent is on disk before its write is sent" holds for
    /// every write. Dropping the future does not abandon the commit it takes part in.
    pub async fn open_intent(
        &self,
        key: TicketKey,
        step: IntentStep,
        payload_hash: &str,
    ) -> Result<IntentId> {
        let (reply, answer) = oneshot::channel();
        let op = Op::Open {
            key,
            step: step.to_string(),
            payload_hash: payload_hash.to_string(),
        };
        self.submit(op, Reply::Intent(reply), answer).await
    }

    /// Queues `op` for the next group commit and waits for its answer: either a committer
    /// already running takes it into its next batch and answers, or this caller becomes the
    /// committer of everything waiting. Dropping the future does not abandon the commit it
    /// takes part in.
    pub(crate) async fn submit<T>(
        &self,
        op: Op,
        reply: Reply,
        answer: oneshot::Receiver<Result<T>>,
    ) -> Result<T> {
        self.intents.push(Queued { op, reply });
        self.answered(answer).await
    }

    /// The answer to a queued request: from the commit of whoever takes it, or from this
    /// caller's own commit of everything waiting when no committer is running.
    async fn answered<T>(&self, mut answer: oneshot::Receiver<Result<T>>) -> Result<T> {
        let committer = tokio::select! {
            biased;
            answered = &mut answer => return answered.map_err(|_| lost_request())?,
            guard = self.intents.committer.clone().lock_owned() => guard,
        };
        match answer.try_recv() {
            Ok(answered) => return answered,
            Err(oneshot::error::TryRecvError::Closed) => return Err(lost_request()),
            Err(oneshot::error::TryRecvError::Empty) => {}
        }
        let batch = self.intents.take();
        // A committer answers every request of its batch before it lets go of the lock, so an
        // unanswered request is still waiting and the batch holds at least this one.
        let store = self.clone();
        // Spawned so that the commit and the answers to the other callers of the batch happen
        // even when this caller's future is dropped.
        let commit = tokio::spawn(async move {
            store.commit_batch(batch).await;
            drop(committer);
        });
        if let Err(e) = commit.await {
            tracing::error!(error = %e, "the group commit task failed");
        }
        answer.await.map_err(|_| lost_request())?
    }

    /// Commits `batch` as one transaction and answers each request. A batch that opens an
    /// intent is fsynced (`synchronous = FULL`), and its completions, loaded marks and file
    /// records ride in the same commit (one transaction is two round trips to the write
    /// connection's worker fewer than two, and the fsync is paid for the intents anyway); a
    /// batch without intents keeps the store's `NORMAL`. Within one case requests never overlap
    /// (each caller waits for its answer), so requests of one batch never depend on each other
    /// except as `ops_tx` orders them.
    ///
    /// When the batch as a whole fails (a database error), each request is retried alone so
    /// that one bad request cannot fail the others and each caller gets its own error.
    async fn commit_batch(&self, batch: Vec<Queued>) {
        if batch.is_empty() {
            return;
        }
        let ops: Vec<&Op> = batch.iter().map(|q| &q.op).collect();
        match self.commit_ops(&ops).await {
            Ok(results) => {
                for (queued, result) in batch.into_iter().zip(results) {
                    queued.reply.send(result);
                }
            }
            Err(e) if batch.len() == 1 => {
                if let Some(queued) = batch.into_iter().next() {
                    queued.reply.send(Err(e));
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, requests = batch.len(), "group commit failed; committing its requests one by one");
                for queued in batch {
                    let result = self
                        .commit_ops(&[&queued.op])
                        .await
                        .and_then(|mut r| r.pop().unwrap_or_else(|| Err(lost_request())));
                    queued.reply.send(result);
                }
            }
        }
    }

    /// One transaction applying every op of `batch` in order. A batch that opens an intent is
    /// committed with `synchronous = FULL`; one of completions only keeps the store's NORMAL
    /// (a completion lost to a power cut is reconciled: its intent is still open).
    /// The outer error fails the whole batch (nothing of it was committed); an inner error is
    /// one request's own (detected by reading, before it wrote anything) and leaves the others
    /// committed.
    pub(crate) async fn commit_ops(&self, batch: &[&Op]) -> Result<Vec<Result<Answer>>> {
        // The intent must be on disk before the write it journals is sent: with the store's
        // usual synchronous=NORMAL a power cut could roll back this commit after Deskie received
        // the write, and the restart would send it again. So this commit is fsynced (FULL, set
        // by the BEGIN itself, see `BEGIN_DURABLE`), once for every intent that was ready.
        // The WAL is a log: a commit that is durable makes every earlier commit durable too, so
        // the completions committed before an intent are on disk when that intent is.
        let head = if batch.iter().any(|op| matches!(op, Op::Open { .. })) {
            Head::Durable
        } else {
            Head::Normal
        };
        let mut conn = self.write.lock().await?;
        ops_tx(&mut conn, head, batch).await
    }

    /// Records the result of a journaled write and its id map in ONE transaction: the case
    /// (`create`), the message id (`message:`/`note:`) or the final mark (`update`).
    ///
    /// Completing an intent that is already done with the same result is a no-op (a retried
    /// call); an abandoned intent, a result that does not fit the step, or a map that already
    /// points elsewhere (a second case for one ticket) is refused with `InvalidState`.
    ///
    /// Committed with the next group commit (see [`Store::open_intent`]) instead of a
    /// transaction of its own; returns once that commit is done, so the caller's next step sees
    /// it and the id map is never behind what the caller goes on to do.
    pub async fn complete_intent(&self, id: IntentId, result: IntentResult) -> Result<()> {
        let pending = self.complete_intent_deferred(id, result);
        self.settle(pending).await
    }

    /// Queues the completion of `id` (as [`Store::complete_intent`] records it) for the next
    /// group commit, without waiting for that commit: the caller goes on with its next request,
    /// and that request, or any other caller's, carries the completion into the same or an
    /// earlier transaction (the queue is committed in arrival order, so nothing the caller asks
    /// afterwards is committed before it).
    ///
    /// Why: a ticket's writes alternate completion and intent. Waiting for each completion gives
    /// each its own group commit; deferred, the completion of one write rides in the durable
    /// commit of the next write's intent, which saves a transaction (and two thread hand-offs)
    /// a write when few tickets are in flight (BENCHMARKS.md, "Local cost").
    ///
    /// The answer (a refused completion is an error, as for `complete_intent`) is read with
    /// [`Store::settle`], which commits the completion itself when nobody else has. A pending
    /// completion that is never settled is still committed by the next group commit of anyone,
    /// or lost with the process, which leaves its intent open to be reconciled like a write
    /// whose answer never came.
    pub fn complete_intent_deferred(
        &self,
        id: IntentId,
        result: IntentResult,
    ) -> PendingCompletion {
        let (reply, answer) = oneshot::channel();
        self.intents.push(Queued {
            op: Op::Complete { id, result },
            reply: Reply::Done(reply),
        });
        PendingCompletion { answer }
    }

    /// Waits until a deferred completion is committed (committing it when no group commit has
    /// taken it yet) and returns its answer. After a later request of the same caller was
    /// answered, this returns at once.
    pub async fn settle(&self, pending: PendingCompletion) -> Result<()> {
        self.answered(pending.answer).await
    }

    /// Closes an intent whose write is known not to have happened (refused by Deskie, or not
    /// found when reconciling), so the step can be journaled afresh. No-op if already closed.
    pub async fn abandon_intent(&self, id: IntentId) -> Result<()> {
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        let done = sqlx::query(
            "UPDATE intents SET state = 'abandoned', finished_at = ? WHERE id = ? AND state = 'open'",
        )
        .bind(now())
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM intents WHERE id = ?)")
                    .bind(id.0)
                    .fetch_one(&mut *tx)
                    .await?;
            if !exists {
                return Err(StoreError::NotFound(format!("intent {id}")));
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// How many times this write was journaled and then found not to have happened (abandoned)
    /// among the intents opened after `after` (the newest intent id when the run began, see
    /// [`Store::last_intent_id`]): bounds how often one run sends again a write whose answers
    /// keep getting lost. Intents of earlier runs do not count: a write a kill or a stop left
    /// unsent, proven absent later, says nothing about the server, and counting it would keep
    /// the ticket from ever being written.
    pub async fn abandoned_intents(
        &self,
        key: TicketKey,
        step: IntentStep,
        after: IntentId,
    ) -> Result<u32> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM intents
             WHERE product_id = ? AND ticket_id = ? AND step = ? AND state = 'abandoned'
               AND id > ?",
        )
        .bind(key.product_id)
        .bind(key.ticket_id)
        .bind(step.to_string())
        .bind(after.0)
        .fetch_one(&self.read)
        .await?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// The newest intent id so far (0 in a new store): a run notes it when it begins, so it can
    /// tell its own intents from earlier runs' (ids only grow: intents are never deleted).
    pub async fn last_intent_id(&self) -> Result<IntentId> {
        let id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM intents")
            .fetch_one(&self.read)
            .await?;
        Ok(IntentId(id.unwrap_or(0)))
    }

    /// Every open intent in the store, oldest first: the writes to reconcile after a crash.
    pub async fn open_intents(&self) -> Result<Vec<Intent>> {
        sqlx::query(
            "SELECT id, product_id, ticket_id, step, payload_hash, created_at FROM intents
             WHERE state = 'open' ORDER BY id",
        )
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(intent_from_row)
        .collect()
    }

    /// Records the files of one ticket's write (or those it leaves out), replacing what an
    /// earlier attempt of the same write recorded for the same file.
    ///
    /// Committed with the next group commit (see [`Store::open_intent`]); returns once it is.
    pub async fn record_files(&self, key: TicketKey, files: &[crate::FileRecord]) -> Result<()> {
        if files.is_empty() {
            return Ok(());
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        let op = Op::Files {
            key,
            files: files.to_vec(),
        };
        self.submit(op, Reply::Done(reply), answer).await
    }

    /// Marks a ticket completely written to Deskie (clearing a load failure). If a newer detail
    /// arrived during the load, the ticket goes back to `extracted` to load the rest instead.
    ///
    /// Committed with the next group commit, after the completion of the ticket's last write
    /// (a crash never leaves a ticket loaded whose last completion is lost).
    pub async fn mark_loaded(&self, key: TicketKey) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.submit(Op::Loaded { key }, Reply::Done(reply), answer)
            .await
    }

    /// Marks a ticket deliberately not migrated (e.g. its channel maps to `skip`), with why.
    pub async fn mark_skipped(&self, key: TicketKey, reason: &str) -> Result<()> {
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        let query = sqlx::query(
            "UPDATE tickets SET state = 'skipped', skip_reason = ?, reload = 0,
                failure_stage = NULL, failure_class = NULL
             WHERE product_id = ? AND ticket_id = ?",
        );
        crate::rows::update_ticket(&mut tx, key, query.bind(reason)).await?;
        tx.commit().await?;
        Ok(())
    }
}

fn intent_from_row(row: &SqliteRow) -> Result<Intent> {
    Ok(Intent {
        id: IntentId(row.try_get("id")?),
        key: key_from_row(row)?,
        step: row.try_get::<String, _>("step")?.parse()?,
        payload_hash: row.try_get("payload_hash")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Requests waiting for their group commit, and the lock that makes one caller at a time the
/// committer of everything waiting (group commit in front of the store's single writer).
///
/// While a committer's transaction and fsync run, the requests of other cases in flight pile up
/// here; the next committer takes them all. With N cases in flight, about one transaction (and
/// one fsync when it opens intents) serves N requests instead of N, and no caller waits longer
/// than one commit behind the current.
#[derive(Default)]
pub(crate) struct IntentQueue {
    /// Requests not yet taken by a committer, in arrival order.
    waiting: std::sync::Mutex<Vec<Queued>>,
    /// Held by the current committer until every request of its batch is answered.
    committer: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for IntentQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntentQueue").finish_non_exhaustive()
    }
}

impl IntentQueue {
    fn push(&self, request: Queued) {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(request);
    }

    fn take(&self) -> Vec<Queued> {
        std::mem::take(
            &mut *self
                .waiting
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// A completion queued by [`Store::complete_intent_deferred`], not yet known to be committed:
/// [`Store::settle`] gives its answer.
#[must_use = "a deferred completion's answer (it may be refused) is read with `Store::settle`"]
#[derive(Debug)]
pub struct PendingCompletion {
    answer: oneshot::Receiver<Result<()>>,
}

/// One caller's request, waiting for its batch's commit.
struct Queued {
    op: Op,
    reply: Reply,
}

/// Where a request's answer goes.
pub(crate) enum Reply {
    /// An opened intent's id.
    Intent(oneshot::Sender<Result<IntentId>>),
    /// Done, or the request's own error.
    Done(oneshot::Sender<Result<()>>),
}

impl Reply {
    /// Answers the caller (who may have gone: then nobody waits for it).
    fn send(self, result: Result<Answer>) {
        match self {
            Reply::Intent(tx) => {
                let _ = tx.send(result.and_then(|a| match a {
                    Answer::Intent(id) => Ok(id),
                    Answer::Done => Err(lost_request()),
                }));
            }
            Reply::Done(tx) => {
                let _ = tx.send(result.map(|_| ()));
            }
        }
    }
}

/// The answer to a request was lost (its commit task panicked): it may or may not be
/// committed, so the caller must not send the write it journals; the next run reconciles an
/// open intent.
fn lost_request() -> StoreError {
    StoreError::InvalidState(
        "the commit of a write intent did not answer; the write is not sent".into(),
    )
}

/// The transaction of a batch of queued requests, on the write connection prepared for it.
/// What can go set-wise goes in a fixed number of statements (`group.rs`); the rest is settled
/// one request at a time after it, in batch order. Either way every request gets what it would
/// have got one after the other: two requests for the same (ticket, step) in one batch get the
/// same intent, and a completion queued before an intent is committed no later than that intent.
async fn ops_tx(conn: &mut WriteGuard, head: Head, batch: &[&Op]) -> Result<Vec<Result<Answer>>> {
    // Folded: the BEGIN rides in the first statement's string and, in the usual case, the
    // COMMIT in the last one's (two round trips to the connection's worker fewer). Otherwise
    // the COMMIT is a plain statement (sqlx's own waits for an acknowledgement, one more
    // hand-off). Either way the answers go out only once the commit has returned.
    let mut tx = conn.folded();
    match settle(tx.conn(), head, batch).await {
        Ok((out, true)) => {
            tx.commit().await?;
            Ok(out)
        }
        Ok((out, false)) => {
            tx.committed();
            Ok(out)
        }
        Err(e) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::warn!(error = %rollback, "rolling back a failed group commit");
            }
            Err(e)
        }
    }
}

/// The statements of [`ops_tx`]'s transaction, which the first of them begins (`head`) and,
/// when nothing is left for the one-by-one path, the last commits. Answers whether a
/// transaction is still open to commit.
async fn settle(
    conn: &mut sqlx::SqliteConnection,
    head: Head,
    batch: &[&Op],
) -> Result<(Vec<Result<Answer>>, bool)> {
    let mut head = Some(head);
    let now = now();
    let mut out: Vec<Option<Result<Answer>>> =
        std::iter::repeat_with(|| None).take(batch.len()).collect();
    let committed = crate::group::apply(conn, batch, &now, &mut out, &mut head, true).await?;
    let left = out.iter().any(Option::is_none);
    if committed {
        if !left {
            return Ok((finish(out), false));
        }
        // Only intents the set statement did not open are left (`apply` commits early only
        // then); what they write, if anything, is made durable after the rest of the batch.
        sqlx::raw_sql(Head::Durable.begin())
            .execute(&mut *conn)
            .await?;
    } else if let Some(head) = head {
        // Nothing went set-wise: the transaction begins on its own.
        sqlx::raw_sql(head.begin()).execute(&mut *conn).await?;
    }
    for (answer, op) in out.iter_mut().zip(batch) {
        if answer.is_none() {
            *answer = Some(one_op(conn, op, &now).await?);
        }
    }
    Ok((finish(out), true))
}

/// Every request's answer (each was given one; a missing one would be a lost request).
fn finish(out: Vec<Option<Result<Answer>>>) -> Vec<Result<Answer>> {
    out.into_iter()
        .map(|answer| answer.unwrap_or_else(|| Err(lost_request())))
        .collect()
}

/// One request on its own, inside the batch's transaction: what the set statements left (see
/// [`ops_tx`]). The outer error is the database's (fails the batch); the inner one the
/// request's own.
async fn one_op(tx: &mut sqlx::SqliteConnection, op: &Op, now: &str) -> Result<Result<Answer>> {
    Ok(match op {
        Op::Open {
            key,
            step,
            payload_hash,
        } => open_op(tx, *key, step, payload_hash, now)
            .await?
            .map(Answer::Intent),
        Op::Complete { id, result } => complete_op(tx, *id, result, now)
            .await?
            .map(|()| Answer::Done),
        Op::Loaded { key } => loaded_op(tx, *key, now).await?.map(|()| Answer::Done),
        Op::Files { key, files } => {
            crate::files::insert_files(tx, *key, files, now).await?;
            Ok(Answer::Done)
        }
    })
}

/// Opens one intent inside a batch: one statement when it is new (the usual case). The outer
/// error is the database's (fails the batch); the inner one the request's own.
async fn open_op(
    tx: &mut sqlx::SqliteConnection,
    key: TicketKey,
    step: &str,
    payload_hash: &str,
    now: &str,
) -> Result<Result<IntentId>> {
    // Inserts nothing when an open intent for this step exists (the partial unique index) or
    // the ticket does not; both are told apart below.
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO intents (product_id, ticket_id, step, payload_hash, state, created_at)
         SELECT ?1, ?2, ?3, ?4, 'open', ?5
         WHERE EXISTS (SELECT 1 FROM tickets WHERE product_id = ?1 AND ticket_id = ?2)
         ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(key.product_id)
    .bind(key.ticket_id)
    .bind(step)
    .bind(payload_hash)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(id) = id {
        return Ok(Ok(IntentId(id)));
    }
    let existing: Option<(i64, String)> = sqlx::query_as(
        "SELECT id, payload_hash FROM intents
         WHERE product_id = ? AND ticket_id = ? AND step = ? AND state = 'open'",
    )
    .bind(key.product_id)
    .bind(key.ticket_id)
    .bind(step)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(match existing {
        Some((id, hash)) => {
            if hash != payload_hash {
                tracing::debug!(
                    ticket = %key, step = %step, intent = id,
                    "an open intent with another payload exists; returning it for reconciliation"
                );
            }
            Ok(IntentId(id))
        }
        None => Err(StoreError::NotFound(format!("ticket {key}"))),
    })
}

/// Completes one intent inside a batch: two statements in the usual case (the intent open, the
/// result fitting its step, no map pointing elsewhere), checked by the `UPDATE` itself; anything
/// else is diagnosed by reading before writing, so a refused completion writes nothing.
async fn complete_op(
    tx: &mut sqlx::SqliteConnection,
    id: IntentId,
    result: &IntentResult,
    now: &str,
) -> Result<Result<()>> {
    // Each result's UPDATE names the steps it fits and refuses a map that points elsewhere.
    let query = match result {
        IntentResult::Case(case) => sqlx::query(
            "UPDATE intents SET state = 'done', result_id = ?1, finished_at = ?2
             WHERE id = ?3 AND state = 'open' AND step = 'create'
               AND NOT EXISTS (SELECT 1 FROM case_map m WHERE m.product_id = intents.product_id
                   AND m.ticket_id = intents.ticket_id AND m.case_id != ?1)
             RETURNING product_id, ticket_id",
        )
        .bind(case.case_id)
        .bind(now)
        .bind(id.0),
        IntentResult::Message {
            source_id,
            deskie_id,
        } => sqlx::query(
            "UPDATE intents SET state = 'done', result_id = ?1, finished_at = ?2
             WHERE id = ?3 AND state = 'open' AND step IN (?4, ?5)
               AND NOT EXISTS (SELECT 1 FROM message_map m WHERE m.product_id = intents.product_id
                   AND m.ticket_id = intents.ticket_id AND m.source_message_id = ?6
                   AND m.deskie_message_id != ?1)
             RETURNING product_id, ticket_id",
        )
        .bind(*deskie_id)
        .bind(now)
        .bind(id.0)
        .bind(IntentStep::Message(*source_id).to_string())
        .bind(IntentStep::Note(*source_id).to_string())
        .bind(*source_id),
        IntentResult::Final => sqlx::query(
            "UPDATE intents SET state = 'done', result_id = NULL, finished_at = ?1
             WHERE id = ?2 AND state = 'open' AND step = 'update'
             RETURNING product_id, ticket_id",
        )
        .bind(now)
        .bind(id.0),
    };
    match query.fetch_optional(&mut *tx).await? {
        Some(row) => {
            record_result(tx, key_from_row(&row)?, result, now).await?;
            Ok(Ok(()))
        }
        None => refused_completion(tx, id, result, now).await,
    }
}

/// A completion the fast `UPDATE` did not take, diagnosed by reading: the intent missing, a
/// result that does not fit its step, a retried call (done with the same result: a no-op), an
/// intent abandoned or done otherwise, or a map pointing elsewhere. Refusals write nothing.
async fn refused_completion(
    tx: &mut sqlx::SqliteConnection,
    id: IntentId,
    result: &IntentResult,
    now: &str,
) -> Result<Result<()>> {
    let Some(row) = sqlx::query(
        "SELECT id, product_id, ticket_id, step, payload_hash, created_at, state, result_id
         FROM intents WHERE id = ?",
    )
    .bind(id.0)
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(Err(StoreError::NotFound(format!("intent {id}"))));
    };
    let intent = intent_from_row(&row)?;
    let state: String = row.try_get("state")?;
    let key = intent.key;
    let result_id = match result_id_of(id, key, &intent.step, result) {
        Ok(r) => r,
        Err(e) => return Ok(Err(e)),
    };
    match state.as_str() {
        "open" => {}
        "done" if row.try_get::<Option<i64>, _>("result_id")? == result_id => return Ok(Ok(())),
        other => {
            return Ok(Err(StoreError::InvalidState(format!(
                "intent {id} ({key} {}) is {other}, not open",
                intent.step
            ))));
        }
    }
    // Open and fitting: `apply_result` says which map points elsewhere, before writing.
    match apply_result(tx, key, result, now).await {
        Ok(()) => {}
        Err(e @ StoreError::InvalidState(_)) => return Ok(Err(e)),
        Err(e) => return Err(e),
    }
    sqlx::query("UPDATE intents SET state = 'done', result_id = ?, finished_at = ? WHERE id = ?")
        .bind(result_id)
        .bind(now)
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
    Ok(Ok(()))
}

/// Marks a ticket loaded inside a batch (see [`Store::mark_loaded`]).
async fn loaded_op(
    tx: &mut sqlx::SqliteConnection,
    key: TicketKey,
    now: &str,
) -> Result<Result<()>> {
    let done = sqlx::query(
        "UPDATE tickets SET
            state = CASE WHEN reload = 1 THEN 'extracted' ELSE 'loaded' END,
            reload = 0, loaded_at = ?, failure_stage = NULL, failure_class = NULL
         WHERE product_id = ? AND ticket_id = ?",
    )
    .bind(now)
    .bind(key.product_id)
    .bind(key.ticket_id)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(Err(StoreError::NotFound(format!("ticket {key}"))));
    }
    crate::rows::forget_failures(tx, key, crate::Stage::Load).await?;
    Ok(Ok(()))
}

/// The id an intent's result records: the case (create), the Deskie message (message / note),
/// none (the final update). A result that does not fit the step is refused.
fn result_id_of(
    id: IntentId,
    key: TicketKey,
    step: &IntentStep,
    result: &IntentResult,
) -> Result<Option<i64>> {
    Ok(match (step, result) {
        (IntentStep::Create, IntentResult::Case(case)) => Some(case.case_id),
        (
            IntentStep::Message(s) | IntentStep::Note(s),
            IntentResult::Message {
                source_id,
                deskie_id,
            },
        ) if s == source_id => Some(*deskie_id),
        (IntentStep::Update, IntentResult::Final) => None,
        (step, result) => {
            return Err(StoreError::InvalidState(format!(
                "intent {id} ({key} {step}) cannot complete with {result:?}"
            )));
        }
    })
}

/// Checks that a completed write's result does not contradict a map (a map that already points
/// elsewhere is refused with `InvalidState`, before anything is written: one ticket is one
/// case, one Desk360 message one Deskie message), then records it with [`record_result`].
async fn apply_result(
    tx: &mut sqlx::SqliteConnection,
    key: TicketKey,
    result: &IntentResult,
    now: &str,
) -> Result<()> {
    match result {
        IntentResult::Case(case) => {
            let held =
                sqlx::query("SELECT case_id FROM case_map WHERE product_id = ? AND ticket_id = ?");
            let held = held.bind(key.product_id).bind(key.ticket_id);
            if let Some(existing) = held_elsewhere(tx, held, case.case_id).await? {
                return Err(StoreError::InvalidState(format!(
                    "ticket {key} is already case {existing}, refusing case {}",
                    case.case_id
                )));
            }
        }
        IntentResult::Message {
            source_id,
            deskie_id,
        } => {
            let held = sqlx::query(
                "SELECT deskie_message_id FROM message_map
                 WHERE product_id = ? AND ticket_id = ? AND source_message_id = ?",
            );
            let held = held
                .bind(key.product_id)
                .bind(key.ticket_id)
                .bind(source_id);
            if let Some(existing) = held_elsewhere(tx, held, *deskie_id).await? {
                return Err(StoreError::InvalidState(format!(
                    "message {source_id} of {key} is already Deskie message {existing}, \
                     refusing {deskie_id}"
                )));
            }
        }
        IntentResult::Final => {}
    }
    record_result(tx, key, result, now).await
}

/// The id a map holds (the one column `query` selects) when it is another than `wanted`.
async fn held_elsewhere(
    tx: &mut sqlx::SqliteConnection,
    query: crate::SqliteQuery<'_>,
    wanted: i64,
) -> Result<Option<i64>> {
    let held: Option<i64> = match query.fetch_optional(&mut *tx).await? {
        Some(row) => Some(row.try_get(0)?),
        None => None,
    };
    Ok(held.filter(|id| *id != wanted))
}

/// Records a completed write's result inside the completing transaction: the ticket → case map,
/// the message map, or the final mark. The caller has ruled out a map pointing elsewhere; the
/// same map already there is kept as it is.
async fn record_result(
    tx: &mut sqlx::SqliteConnection,
    key: TicketKey,
    result: &IntentResult,
    now: &str,
) -> Result<()> {
    match result {
        IntentResult::Case(case) => {
            sqlx::query(
                "INSERT INTO case_map (product_id, ticket_id, case_id, case_number, user_id,
                                       mapped_at)
                 VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (product_id, ticket_id) DO NOTHING",
            )
            .bind(key.product_id)
            .bind(key.ticket_id)
            .bind(case.case_id)
            .bind(&case.case_number)
            .bind(case.user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        IntentResult::Message {
            source_id,
            deskie_id,
        } => {
            sqlx::query(
                "INSERT INTO message_map (product_id, ticket_id, source_message_id,
                                          deskie_message_id, mapped_at)
                 VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (product_id, ticket_id, source_message_id) DO NOTHING",
            )
            .bind(key.product_id)
            .bind(key.ticket_id)
            .bind(source_id)
            .bind(deskie_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        IntentResult::Final => {
            sqlx::query(
                "INSERT INTO final_state (product_id, ticket_id, done_at) VALUES (?, ?, ?)
                 ON CONFLICT (product_id, ticket_id) DO UPDATE SET done_at = excluded.done_at",
            )
            .bind(key.product_id)
            .bind(key.ticket_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the write connection's `synchronous` inside a transaction begun with `begin`.
    async fn synchronous_under(store: &Store, begin: &'static str) -> i64 {
        let mut conn = store.write.lock().await.expect("write connection");
        let mut tx = sqlx::Connection::begin_with(&mut *conn, begin)
            .await
            .expect("begin");
        let level: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *tx)
            .await
            .expect("pragma");
        tx.commit().await.expect("commit");
        level
    }

    /// The intents' commit is fsynced only because its BEGIN string sets `FULL` (2) first; every
    /// other write transaction sets `NORMAL` (1) back. Were the pragma not run (e.g. a driver
    /// that ran only the last statement of the string), an intent could be lost to a power cut
    /// after its write was sent.
    #[tokio::test]
    async fn the_intents_commit_is_full_and_every_other_write_normal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path().join("s.sqlite"))
            .await
            .expect("open");
        assert_eq!(synchronous_under(&store, crate::BEGIN_DURABLE).await, 2);
        assert_eq!(synchronous_under(&store, crate::BEGIN_NORMAL).await, 1);
        assert_eq!(synchronous_under(&store, crate::BEGIN_DURABLE).await, 2);
        let mut conn = store.write.lock().await.expect("write connection");
        let tx = conn.begin().await.expect("begin");
        tx.commit().await.expect("commit");
        drop(conn);
        assert_eq!(
            store.write.scalar("PRAGMA synchronous").await,
            1,
            "begin_write leaves the store's NORMAL"
        );
    }
}
