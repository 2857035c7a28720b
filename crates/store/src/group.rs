//! The group commit's requests written set-wise: a batch of completions, loaded marks, file
//! records or intents costs a fixed number of round trips to the write connection's worker
//! thread (two for the first three kinds, one for intents), whatever its size.
//!
//! Why: sqlx runs each statement on the connection's own thread, and each statement is a
//! hand-off there and back. On a 2-core machine those hand-offs (thread wake-ups and switches),
//! not SQLite's work, were the largest part of the engine's CPU per ticket (BENCHMARKS.md,
//! "Local cost"). One statement per request kind, fed the whole batch as one JSON array
//! (`json_each`), replaces one or two statements per request.
//!
//! Exactness: each set statement does for every request exactly what the one-request statements
//! in `loading.rs` do (the same conditions), and what a set statement does not settle (an
//! intent already open, a refused completion, an unknown ticket) is settled afterwards by those
//! one-request statements, in batch order, inside the same transaction. Requests that could see
//! each other's effect are never in one set statement: only the first request of a batch for an
//! intent, a ticket's loaded mark, a (ticket, step) or a ticket's file records goes set-wise,
//! the later ones go one by one after it, as they would have in order (so does a text with a NUL
//! character, which JSON would cut). The one pair that can only be told apart after the
//! set `UPDATE` (a message and a note completion for the same Desk360 message, both open) fails
//! the batch, which the caller then commits request by request.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use model::TicketKey;
use sqlx::Row;

use crate::error::Result;
use crate::{IntentId, IntentResult, IntentStep, StoreError};

/// What a queued request writes.
pub(crate) enum Op {
    /// [`Store::open_intent`].
    Open {
        key: TicketKey,
        step: String,
        payload_hash: String,
    },
    /// [`Store::complete_intent`].
    Complete { id: IntentId, result: IntentResult },
    /// [`Store::mark_loaded`].
    Loaded { key: TicketKey },
    /// [`Store::record_files`].
    Files {
        key: TicketKey,
        files: Vec<crate::FileRecord>,
    },
}

/// A request's answer, before it is sent to its caller.
pub(crate) enum Answer {
    Intent(IntentId),
    Done,
}

/// The completions' `UPDATE`s and the loaded marks' `UPDATE`, as one round trip. Each returns
/// `(kind, intent id, product, ticket)` for what it took.
///
/// Parameters, in order (anonymous, see [`apply`]): now, case completions `[[intent, case
/// id]]`; now, message completions `[[intent, deskie id, "message:S", "note:S", S]]`; now, final
/// completions `[intent]`; now, loaded marks `[[product, ticket]]`. The conditions are those of
/// `complete_op` and `loaded_op`.
pub(crate) const REST_UPDATES: &str = "
UPDATE intents SET state = 'done', result_id = c.value ->> 1, finished_at = ?
FROM json_each(?) AS c
WHERE intents.id = c.value ->> 0 AND intents.state = 'open' AND intents.step = 'create'
  AND NOT EXISTS (SELECT 1 FROM case_map m WHERE m.product_id = intents.product_id
      AND m.ticket_id = intents.ticket_id AND m.case_id != c.value ->> 1)
RETURNING 'case', intents.id, intents.product_id, intents.ticket_id;
UPDATE intents SET state = 'done', result_id = c.value ->> 1, finished_at = ?
FROM json_each(?) AS c
WHERE intents.id = c.value ->> 0 AND intents.state = 'open'
  AND intents.step IN (c.value ->> 2, c.value ->> 3)
  AND NOT EXISTS (SELECT 1 FROM message_map m WHERE m.product_id = intents.product_id
      AND m.ticket_id = intents.ticket_id AND m.source_message_id = c.value ->> 4
      AND m.deskie_message_id != c.value ->> 1)
RETURNING 'message', intents.id, intents.product_id, intents.ticket_id;
UPDATE intents SET state = 'done', result_id = NULL, finished_at = ?
FROM json_each(?) AS c
WHERE intents.id = c.value AND intents.state = 'open' AND intents.step = 'update'
RETURNING 'final', intents.id, intents.product_id, intents.ticket_id;
UPDATE tickets SET state = CASE WHEN reload = 1 THEN 'extracted' ELSE 'loaded' END,
    reload = 0, loaded_at = ?, failure_stage = NULL, failure_class = NULL
FROM json_each(?) AS l
WHERE tickets.product_id = l.value ->> 0 AND tickets.ticket_id = l.value ->> 1
RETURNING 'loaded', 0, tickets.product_id, tickets.ticket_id";

/// What the taken completions and loaded marks record, and the file records, as one round
/// trip: the maps of `record_result`, the load failures `loaded_op` clears, the rows of
/// `insert_files`.
///
/// Parameters: ? now; ? `[[product, ticket, case id, case number, user id]]`; ?
/// `[[product, ticket, source id, deskie id]]`; ? finals `[[product, ticket]]`; ? loaded
/// `[[product, ticket]]`; ? files `[[product, ticket, write kind, write id, mode, url, name,
/// size, outcome, status, reason]]`. `json_each` walks an array in order, so two records of the
/// same file in one batch end as the later one, as one by one.
pub(crate) const REST_INSERTS: &str = "
INSERT INTO case_map (product_id, ticket_id, case_id, case_number, user_id, mapped_at)
SELECT c.value ->> 0, c.value ->> 1, c.value ->> 2, c.value ->> 3, c.value ->> 4, ?
FROM json_each(?) AS c WHERE true
ON CONFLICT (product_id, ticket_id) DO NOTHING;
INSERT INTO message_map (product_id, ticket_id, source_message_id, deskie_message_id, mapped_at)
SELECT m.value ->> 0, m.value ->> 1, m.value ->> 2, m.value ->> 3, ?
FROM json_each(?) AS m WHERE true
ON CONFLICT (product_id, ticket_id, source_message_id) DO NOTHING;
INSERT INTO final_state (product_id, ticket_id, done_at)
SELECT f.value ->> 0, f.value ->> 1, ?
FROM json_each(?) AS f WHERE true
ON CONFLICT (product_id, ticket_id) DO UPDATE SET done_at = excluded.done_at;
DELETE FROM failures WHERE id IN
    (SELECT f.id FROM json_each(?) AS l CROSS JOIN failures f
     WHERE f.product_id = l.value ->> 0 AND f.ticket_id = l.value ->> 1 AND f.stage = 'load');
INSERT INTO attachment_files (product_id, ticket_id, write_kind, write_id, mode, url, name,
    size, outcome, status, reason, recorded_at)
SELECT f.value ->> 0, f.value ->> 1, f.value ->> 2, f.value ->> 3, f.value ->> 4, f.value ->> 5,
    f.value ->> 6, f.value ->> 7, f.value ->> 8, f.value ->> 9, f.value ->> 10, ?
FROM json_each(?) AS f WHERE true
ON CONFLICT (product_id, ticket_id, write_id, mode, url) DO UPDATE SET
    write_kind = excluded.write_kind, name = excluded.name,
    size = coalesce(excluded.size, size), outcome = excluded.outcome,
    status = excluded.status, reason = excluded.reason, recorded_at = excluded.recorded_at";

/// The intents, as one round trip: those of `open_op`'s one-request `INSERT`. Parameters: ?
/// now; ? `[[product, ticket, step, payload hash]]`. Returns what it opened.
pub(crate) const OPENS: &str = "
INSERT INTO intents (product_id, ticket_id, step, payload_hash, state, created_at)
SELECT o.value ->> 0, o.value ->> 1, o.value ->> 2, o.value ->> 3, 'open', ?
FROM json_each(?) AS o
WHERE EXISTS (SELECT 1 FROM tickets t
              WHERE t.product_id = o.value ->> 0 AND t.ticket_id = o.value ->> 1)
ON CONFLICT DO NOTHING
RETURNING id, product_id, ticket_id, step";

/// Writes set-wise what it can of `batch` inside the caller's transaction and answers it in
/// `out` (same indexes). A request left `None` is for the caller to settle one by one, after
/// this and in batch order. An error fails the whole batch (the caller rolls back).
///
/// The statements of one round trip are one query string, which sqlx's SQLite driver runs
/// statement after statement (as it does `BEGIN_DURABLE`). Their parameters are anonymous and
/// bound in text order across the statements: with numbered ones (`?1` in each), the driver
/// counts a statement's unused numbers as anonymous slots and stops binding before the later
/// ones (found the hard way; `the_usual_requests_are_settled_set_wise` would fail).
///
/// `head` is the `BEGIN` of a folded transaction not sent yet (see `writer.rs`): the first set
/// statement that runs carries it in front and takes it, so the transaction costs no round trip
/// of its own. It is left for the caller when no set statement ran.
///
/// With `fold_commit`, the last set statement also carries the `COMMIT` when nothing is left
/// that could write before it: then answers `true` (committed). What may be left then is only
/// intents the set statement did not open (already open, unknown ticket, a second request for
/// the same step, a NUL in a text); the caller settles them in a durable transaction of their
/// own, after everything else of the batch, which keeps "a completion queued before an intent
/// is committed no later than that intent".
pub(crate) async fn apply(
    tx: &mut sqlx::SqliteConnection,
    batch: &[&Op],
    now: &str,
    out: &mut [Option<Result<Answer>>],
    head: &mut Option<Head>,
    fold_commit: bool,
) -> Result<bool> {
    let first = first_of_their_kind(batch);
    let rest = Rest::of(batch, &first);
    let opens = batch
        .iter()
        .zip(&first)
        .any(|(op, &first)| first && matches!(op, Op::Open { .. }));
    let written = rest
        .write(tx, batch, now, out, head, fold_commit && !opens)
        .await?;
    if written.committed {
        return Ok(true);
    }
    let commit = fold_commit && !written.others_left;
    open_intents(tx, batch, &first, now, out, head, commit).await
}

/// What [`Rest::write`] did: whether its last statement committed the transaction, and whether
/// a request other than an intent is left for the one-by-one path.
struct Written {
    committed: bool,
    others_left: bool,
}

/// The `BEGIN` a folded group-commit transaction starts with: the store's usual one, or the
/// fsynced one of a group that opens intents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Head {
    /// [`crate::BEGIN_NORMAL`].
    Normal,
    /// [`crate::BEGIN_DURABLE`].
    Durable,
}

impl Head {
    /// The `BEGIN` alone, for a transaction whose requests all go one by one.
    pub(crate) fn begin(self) -> &'static str {
        match self {
            Head::Normal => crate::BEGIN_NORMAL,
            Head::Durable => crate::BEGIN_DURABLE,
        }
    }
}

/// The set statements.
#[derive(Clone, Copy)]
enum Set {
    RestUpdates,
    RestInserts,
    Opens,
}

impl Set {
    fn plain(self) -> &'static str {
        match self {
            Set::RestUpdates => REST_UPDATES,
            Set::RestInserts => REST_INSERTS,
            Set::Opens => OPENS,
        }
    }

    /// The statement to send: with `head`'s `BEGIN` in front when it is the transaction's first
    /// (taking it), and with `COMMIT` after it when `commit`. The strings are fixed, so sqlx
    /// prepares each once.
    fn sql(self, head: &mut Option<Head>, commit: bool) -> &'static str {
        // [no head, Normal, Durable][set][without, with COMMIT]
        static FOLDED: LazyLock<[[[String; 2]; 3]; 3]> = LazyLock::new(|| {
            [None, Some(Head::Normal), Some(Head::Durable)].map(|head| {
                [Set::RestUpdates, Set::RestInserts, Set::Opens].map(|set| {
                    let begin = head.map(|h| format!("{}; ", h.begin())).unwrap_or_default();
                    [
                        format!("{begin}{}", set.plain()),
                        format!("{begin}{}; COMMIT", set.plain()),
                    ]
                })
            })
        });
        let h = match head.take() {
            None => 0,
            Some(Head::Normal) => 1,
            Some(Head::Durable) => 2,
        };
        FOLDED[h][self as usize][usize::from(commit)].as_str()
    }
}

/// Which requests go set-wise: the first of the batch for what they change, when their text
/// survives JSON. A later request for the same intent, loaded mark, (ticket, step) or ticket's
/// file records must see the first one's effect, so it is settled one by one after it; so is a
/// request with a NUL character in a text (SQLite's `->>` ends a JSON string there), and then
/// every later one for the same thing, to keep their order.
fn first_of_their_kind(batch: &[&Op]) -> Vec<bool> {
    #[derive(PartialEq, Eq, Hash)]
    enum Target<'a> {
        Intent(i64),
        Loaded(TicketKey),
        Open(TicketKey, &'a str),
        Files(TicketKey),
    }
    let mut seen = HashSet::new();
    batch
        .iter()
        .map(|op| {
            let target = match op {
                Op::Complete { id, .. } => Target::Intent(id.0),
                Op::Loaded { key } => Target::Loaded(*key),
                Op::Open { key, step, .. } => Target::Open(*key, step),
                Op::Files { key, .. } => Target::Files(*key),
            };
            seen.insert(target) && survives_json(op)
        })
        .collect()
}

/// Whether every text of `op` reads back whole from a JSON parameter (see
/// [`first_of_their_kind`]).
fn survives_json(op: &Op) -> bool {
    let whole = survives_json_text;
    match op {
        Op::Open {
            step, payload_hash, ..
        } => whole(step) && whole(payload_hash),
        Op::Complete {
            result: IntentResult::Case(case),
            ..
        } => whole(&case.case_number),
        Op::Complete { .. } | Op::Loaded { .. } => true,
        Op::Files { files, .. } => files
            .iter()
            .all(|f| whole(&f.url) && whole(&f.name) && f.outcome.columns().2.is_none_or(whole)),
    }
}

/// The batch's completions and loaded marks that go set-wise, by kind (indexes into the batch),
/// and every file record.
#[derive(Default)]
struct Rest {
    cases: Vec<usize>,
    messages: Vec<usize>,
    finals: Vec<usize>,
    loaded: Vec<usize>,
    files: Vec<usize>,
}

impl Rest {
    fn of(batch: &[&Op], first: &[bool]) -> Rest {
        let mut rest = Rest::default();
        for (i, op) in batch.iter().enumerate() {
            if !first[i] {
                continue;
            }
            match op {
                Op::Complete { result, .. } => match result {
                    IntentResult::Case(_) => rest.cases.push(i),
                    IntentResult::Message { .. } => rest.messages.push(i),
                    IntentResult::Final => rest.finals.push(i),
                },
                Op::Loaded { .. } => rest.loaded.push(i),
                Op::Files { .. } => rest.files.push(i),
                Op::Open { .. } => {}
            }
        }
        rest
    }

    fn has_updates(&self) -> bool {
        !(self.cases.is_empty()
            && self.messages.is_empty()
            && self.finals.is_empty()
            && self.loaded.is_empty())
    }

    /// The two round trips: the `UPDATE`s, then what the taken ones record with the file
    /// records. Answers the taken requests once both are done. With `may_commit` (no intent to
    /// open after), the second also commits when no other request is left.
    async fn write(
        &self,
        tx: &mut sqlx::SqliteConnection,
        batch: &[&Op],
        now: &str,
        out: &mut [Option<Result<Answer>>],
        head: &mut Option<Head>,
        may_commit: bool,
    ) -> Result<Written> {
        let taken = if self.has_updates() {
            self.update(tx, batch, now, head).await?
        } else {
            Taken::default()
        };
        let records = Records::of(self, batch, &taken)?;
        let others_left = batch.iter().enumerate().any(|(i, op)| {
            !matches!(op, Op::Open { .. })
                && !taken.intents.contains_key(&i)
                && !taken.loaded.contains_key(&i)
                && !self.files.contains(&i)
        });
        let committed = may_commit && !others_left && !records.is_empty();
        if !records.is_empty() {
            sqlx::query(Set::RestInserts.sql(head, committed))
                .bind(now)
                .bind(json(&records.cases)?)
                .bind(now)
                .bind(json(&records.messages)?)
                .bind(now)
                .bind(json(&records.finals)?)
                .bind(json(&records.loaded)?)
                .bind(now)
                .bind(json(&records.files)?)
                .execute(&mut *tx)
                .await?;
        }
        for &i in taken.intents.keys().chain(taken.loaded.keys()) {
            out[i] = Some(Ok(Answer::Done));
        }
        for &i in &self.files {
            out[i] = Some(Ok(Answer::Done));
        }
        Ok(Written {
            committed,
            others_left,
        })
    }

    /// Runs [`REST_UPDATES`] and tells which requests it took, with their tickets.
    async fn update(
        &self,
        tx: &mut sqlx::SqliteConnection,
        batch: &[&Op],
        now: &str,
        head: &mut Option<Head>,
    ) -> Result<Taken> {
        let mut cases = Vec::new();
        let mut messages = Vec::new();
        let mut finals = Vec::new();
        let mut loaded = Vec::new();
        // Intent id → batch index, and ticket → batch index for the loaded marks.
        let mut by_intent = HashMap::new();
        let mut by_ticket = HashMap::new();
        for &i in self
            .cases
            .iter()
            .chain(&self.messages)
            .chain(&self.finals)
            .chain(&self.loaded)
        {
            match batch[i] {
                Op::Complete { id, result } => {
                    by_intent.insert(id.0, i);
                    match result {
                        IntentResult::Case(case) => cases.push((id.0, case.case_id)),
                        IntentResult::Message {
                            source_id,
                            deskie_id,
                        } => messages.push((
                            id.0,
                            *deskie_id,
                            IntentStep::Message(*source_id).to_string(),
                            IntentStep::Note(*source_id).to_string(),
                            *source_id,
                        )),
                        IntentResult::Final => finals.push(id.0),
                    }
                }
                Op::Loaded { key } => {
                    by_ticket.insert(*key, i);
                    loaded.push((key.product_id, key.ticket_id));
                }
                Op::Open { .. } | Op::Files { .. } => {}
            }
        }
        let rows = sqlx::query(Set::RestUpdates.sql(head, false))
            .bind(now)
            .bind(json(&cases)?)
            .bind(now)
            .bind(json(&messages)?)
            .bind(now)
            .bind(json(&finals)?)
            .bind(now)
            .bind(json(&loaded)?)
            .fetch_all(&mut *tx)
            .await?;
        let mut taken = Taken::default();
        for row in rows {
            let kind: String = row.try_get(0)?;
            let key = TicketKey::new(row.try_get(2)?, row.try_get(3)?);
            let index = if kind == "loaded" {
                by_ticket.get(&key)
            } else {
                by_intent.get(&row.try_get::<i64, _>(1)?)
            };
            let Some(&i) = index else {
                return Err(StoreError::Corrupt(format!(
                    "the group commit took a request it was not given ({kind} of {key})"
                )));
            };
            if kind == "loaded" {
                taken.loaded.insert(i, key);
            } else {
                taken.intents.insert(i, key);
            }
        }
        taken.check_one_message_each(batch)?;
        Ok(taken)
    }
}

/// The requests the set `UPDATE`s took, by batch index, with their tickets.
#[derive(Default)]
struct Taken {
    intents: HashMap<usize, TicketKey>,
    loaded: HashMap<usize, TicketKey>,
}

impl Taken {
    /// One by one, the second completion for the same Desk360 message (a message and a note
    /// intent, both open) would have been refused because the first one's map points elsewhere;
    /// set-wise both were taken. Fails the batch so the caller commits it request by request.
    fn check_one_message_each(&self, batch: &[&Op]) -> Result<()> {
        let mut seen = HashSet::new();
        for (&i, key) in &self.intents {
            if let Op::Complete {
                result: IntentResult::Message { source_id, .. },
                ..
            } = batch[i]
                && !seen.insert((*key, *source_id))
            {
                return Err(StoreError::InvalidState(format!(
                    "two completions for message {source_id} of {key} in one group commit"
                )));
            }
        }
        Ok(())
    }
}

/// What [`REST_INSERTS`] writes, as the rows its JSON parameters carry.
#[derive(Default)]
struct Records<'a> {
    cases: Vec<(i64, i64, i64, &'a str, i64)>,
    messages: Vec<(i64, i64, i64, i64)>,
    finals: Vec<(i64, i64)>,
    loaded: Vec<(i64, i64)>,
    #[allow(clippy::type_complexity)]
    files: Vec<(
        i64,
        i64,
        &'static str,
        i64,
        &'static str,
        &'a str,
        &'a str,
        Option<i64>,
        &'static str,
        Option<i64>,
        Option<&'a str>,
    )>,
}

impl<'a> Records<'a> {
    fn of(rest: &Rest, batch: &[&'a Op], taken: &Taken) -> Result<Records<'a>> {
        let mut records = Records::default();
        // In batch order, so that what is written does not depend on a hash map's order.
        let mut intents: Vec<(&usize, &TicketKey)> = taken.intents.iter().collect();
        intents.sort_unstable();
        for (&i, key) in intents {
            let (p, t) = (key.product_id, key.ticket_id);
            match batch[i] {
                Op::Complete { result, .. } => match result {
                    IntentResult::Case(case) => records.cases.push((
                        p,
                        t,
                        case.case_id,
                        case.case_number.as_str(),
                        case.user_id,
                    )),
                    IntentResult::Message {
                        source_id,
                        deskie_id,
                    } => records.messages.push((p, t, *source_id, *deskie_id)),
                    IntentResult::Final => records.finals.push((p, t)),
                },
                _ => {
                    return Err(StoreError::Corrupt(
                        "a taken completion is not a completion".into(),
                    ));
                }
            }
        }
        let mut loaded: Vec<(&usize, &TicketKey)> = taken.loaded.iter().collect();
        loaded.sort_unstable();
        records.loaded = loaded
            .into_iter()
            .map(|(_, k)| (k.product_id, k.ticket_id))
            .collect();
        for &i in &rest.files {
            if let Op::Files { key, files } = batch[i] {
                for f in files {
                    let (outcome, status, reason) = f.outcome.columns();
                    records.files.push((
                        key.product_id,
                        key.ticket_id,
                        if f.create { "create" } else { "message" },
                        f.write_id,
                        f.mode.as_str(),
                        &f.url,
                        &f.name,
                        f.size.map(|s| i64::try_from(s).unwrap_or(i64::MAX)),
                        outcome,
                        status,
                        reason,
                    ));
                }
            }
        }
        Ok(records)
    }

    fn is_empty(&self) -> bool {
        self.cases.is_empty()
            && self.messages.is_empty()
            && self.finals.is_empty()
            && self.loaded.is_empty()
            && self.files.is_empty()
    }
}

/// Opens set-wise the batch's first intent for each (ticket, step) and answers those it
/// opened; the others (an intent already open, an unknown ticket, a repeated request) are left
/// for the one-by-one path, which returns the open intent or tells the error. With `commit`,
/// the statement commits the transaction (answers `true` when it ran).
async fn open_intents(
    tx: &mut sqlx::SqliteConnection,
    batch: &[&Op],
    first: &[bool],
    now: &str,
    out: &mut [Option<Result<Answer>>],
    head: &mut Option<Head>,
    commit: bool,
) -> Result<bool> {
    let mut rows = Vec::new();
    let mut by_target = HashMap::new();
    for (i, op) in batch.iter().enumerate() {
        if let Op::Open {
            key,
            step,
            payload_hash,
        } = op
            && first[i]
        {
            by_target.insert((*key, step.as_str()), i);
            rows.push((key.product_id, key.ticket_id, step, payload_hash));
        }
    }
    if rows.is_empty() {
        return Ok(false);
    }
    let opened = sqlx::query(Set::Opens.sql(head, commit))
        .bind(now)
        .bind(json(&rows)?)
        .fetch_all(&mut *tx)
        .await?;
    for row in opened {
        let key = TicketKey::new(row.try_get("product_id")?, row.try_get("ticket_id")?);
        let step: String = row.try_get("step")?;
        let Some(&i) = by_target.get(&(key, step.as_str())) else {
            return Err(StoreError::Corrupt(format!(
                "the group commit opened an intent it was not asked for ({key} {step})"
            )));
        };
        out[i] = Some(Ok(Answer::Intent(IntentId(row.try_get("id")?))));
    }
    Ok(commit)
}

/// Whether `text` reads back whole from a JSON parameter: SQLite's `->>` ends a JSON string at
/// a NUL character, so a request, detail or listing holding one takes the statement-by-statement
/// path instead of the set-wise one.
pub(crate) fn survives_json_text(text: &str) -> bool {
    !text.contains('\0')
}

/// A JSON parameter for `json_each`: the rows a set statement walks (here, in `save_details`
/// and in `record_page`).
pub(crate) fn json<T: serde::Serialize>(rows: &T) -> Result<String> {
    serde_json::to_string(rows)
        .map_err(|e| StoreError::Corrupt(format!("a set statement's JSON parameter: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::{CaseRef, FileMode, FileOutcome, FileRecord, ListedTicket, Store, TicketState};

    /// A store holding tickets 1..=n of product 1, extracted, without messages.
    async fn store_with(n: i64) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("s.sqlite")).await.unwrap();
        let listed: Vec<_> = (1..=n)
            .map(|t| ListedTicket {
                ticket_id: t,
                updated_at: "u".into(),
            })
            .collect();
        store.record_page(1, 1, &listed, None).await.unwrap();
        let details: Vec<_> = (1..=n)
            .map(|t| {
                let ticket = model::Ticket {
                    key: TicketKey::new(1, t),
                    subject: None,
                    customer_name: None,
                    customer_email: None,
                    customer_phone: None,
                    channel: None,
                    platform: None,
                    status: None,
                    priority: None,
                    agent_id: None,
                    type_id: None,
                    reason_id: None,
                    created_at: model::SourceTime::Naive("2024-03-01T10:00:00".parse().unwrap()),
                    updated_at: "u".into(),
                    messages: Vec::new(),
                };
                (ticket, "{}")
            })
            .collect();
        store.save_details(&details).await.unwrap();
        (dir, store)
    }

    /// Runs [`apply`] on `batch` in one committed transaction; returns what it settled.
    async fn applied(store: &Store, batch: &[Op]) -> Result<Vec<Option<Result<Answer>>>> {
        let ops: Vec<&Op> = batch.iter().collect();
        let mut conn = store.write.lock().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        let mut out: Vec<_> = std::iter::repeat_with(|| None).take(ops.len()).collect();
        apply(&mut tx, &ops, &crate::now(), &mut out, &mut None, false).await?;
        tx.commit().await.unwrap();
        Ok(out)
    }

    fn key(t: i64) -> TicketKey {
        TicketKey::new(1, t)
    }

    fn file(url: &str, outcome: FileOutcome) -> FileRecord {
        FileRecord {
            create: false,
            write_id: 7,
            mode: FileMode::Url,
            url: url.into(),
            name: "a.png".into(),
            size: Some(10),
            outcome,
        }
    }

    /// Every kind of request a loader sends in the usual case is settled by the set statements
    /// (none left for the one-by-one path), and what they record is what one by one records: the
    /// maps, the final mark, the loaded state, the file records (the later record of a file
    /// wins).
    #[tokio::test]
    async fn the_usual_requests_are_settled_set_wise() {
        let (_dir, store) = store_with(6).await;
        let create = store
            .open_intent(key(1), IntentStep::Create, "h")
            .await
            .unwrap();
        let message = store
            .open_intent(key(2), IntentStep::Message(201), "h")
            .await
            .unwrap();
        let note = store
            .open_intent(key(2), IntentStep::Note(202), "h")
            .await
            .unwrap();
        let update = store
            .open_intent(key(3), IntentStep::Update, "h")
            .await
            .unwrap();
        store.claim_for_load(6).await.unwrap();
        let case = CaseRef {
            case_id: 900,
            case_number: "1-900".into(),
            user_id: 5,
        };
        let batch = [
            Op::Complete {
                id: create,
                result: IntentResult::Case(case.clone()),
            },
            Op::Complete {
                id: message,
                result: IntentResult::Message {
                    source_id: 201,
                    deskie_id: 9201,
                },
            },
            Op::Complete {
                id: note,
                result: IntentResult::Message {
                    source_id: 202,
                    deskie_id: 9202,
                },
            },
            Op::Complete {
                id: update,
                result: IntentResult::Final,
            },
            Op::Loaded { key: key(4) },
            Op::Files {
                key: key(5),
                files: vec![
                    file("https://f/1", FileOutcome::Failed { reason: "x".into() }),
                    file("https://f/2", FileOutcome::Attached),
                    file("https://f/1", FileOutcome::Attached),
                ],
            },
            Op::Files {
                key: key(6),
                files: vec![file("https://f/3", FileOutcome::TooLarge)],
            },
        ];
        let out = applied(&store, &batch).await.unwrap();
        for (i, answer) in out.iter().enumerate() {
            assert!(
                matches!(answer, Some(Ok(Answer::Done))),
                "request {i} not settled set-wise"
            );
        }
        assert_eq!(store.load_ticket(key(1)).await.unwrap().case, Some(case));
        let two = store.load_ticket(key(2)).await.unwrap();
        assert_eq!(two.sent.get(&201), Some(&9201));
        assert_eq!(two.sent.get(&202), Some(&9202));
        assert!(store.load_ticket(key(3)).await.unwrap().final_done);
        assert!(store.open_intents().await.unwrap().is_empty());
        assert_eq!(
            store
                .counts()
                .await
                .unwrap()
                .tickets
                .get(&TicketState::Loaded),
            Some(&1)
        );
        let mut files = Vec::new();
        store
            .visit_file_outcomes(|row| files.push((row.record.url, row.record.outcome)))
            .await
            .unwrap();
        files.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            files,
            [
                ("https://f/1".to_string(), FileOutcome::Attached),
                ("https://f/2".to_string(), FileOutcome::Attached),
                ("https://f/3".to_string(), FileOutcome::TooLarge),
            ]
        );
    }

    /// Intents: the first request for a (ticket, step) is opened set-wise; a repeated one, one
    /// for a step already open and one for an unknown ticket are left to the one-by-one path
    /// (which answers the open intent or the error), as are later requests for a completed
    /// intent or a ticket already marked in the batch.
    #[tokio::test]
    async fn what_may_see_another_request_is_left_to_the_one_by_one_path() {
        let (_dir, store) = store_with(3).await;
        let open = store
            .open_intent(key(2), IntentStep::Create, "h")
            .await
            .unwrap();
        let open_step = |t: i64, step: IntentStep| Op::Open {
            key: key(t),
            step: step.to_string(),
            payload_hash: "h".into(),
        };
        let batch = [
            open_step(1, IntentStep::Create),
            open_step(1, IntentStep::Create),
            open_step(2, IntentStep::Create),
            open_step(9, IntentStep::Create),
            open_step(1, IntentStep::Message(5)),
        ];
        let out = applied(&store, &batch).await.unwrap();
        assert!(matches!(out[0], Some(Ok(Answer::Intent(_)))));
        assert!(out[1].is_none() && out[2].is_none() && out[3].is_none());
        assert!(matches!(out[4], Some(Ok(Answer::Intent(_)))));

        let final_twice = [
            Op::Complete {
                id: open,
                result: IntentResult::Case(CaseRef {
                    case_id: 1,
                    case_number: "1".into(),
                    user_id: 1,
                }),
            },
            Op::Complete {
                id: open,
                result: IntentResult::Case(CaseRef {
                    case_id: 2,
                    case_number: "2".into(),
                    user_id: 1,
                }),
            },
            Op::Loaded { key: key(3) },
            Op::Loaded { key: key(3) },
            Op::Files {
                key: key(1),
                files: vec![file("https://f/\0nul", FileOutcome::Attached)],
            },
            Op::Files {
                key: key(1),
                files: vec![file("https://f/after", FileOutcome::Attached)],
            },
            Op::Files {
                key: key(2),
                files: vec![file("https://f/1", FileOutcome::Attached)],
            },
            Op::Files {
                key: key(2),
                files: vec![file("https://f/1", FileOutcome::TooLarge)],
            },
        ];
        let out = applied(&store, &final_twice).await.unwrap();
        assert!(matches!(out[0], Some(Ok(Answer::Done))));
        assert!(out[1].is_none());
        assert!(matches!(out[2], Some(Ok(Answer::Done))));
        assert!(out[3].is_none());
        assert!(out[4].is_none(), "a NUL in a text does not go through JSON");
        assert!(out[5].is_none(), "nor what follows it for the same ticket");
        assert!(matches!(out[6], Some(Ok(Answer::Done))));
        assert!(out[7].is_none());
    }

    /// Every set statement walks its JSON array and looks each row up by key: none scans a
    /// table of the store. A scan per batch makes the cost of a ticket grow with the store: the
    /// first version of the failures' `DELETE … WHERE (product_id, ticket_id) IN (json_each)`
    /// scanned every failure once a batch, and CPU a ticket went from 2.2 ms at 5 000 tickets to
    /// 3.4 ms at 20 000. Checked with the SQLite the store is built with, whose planner counts.
    #[tokio::test]
    async fn no_set_statement_scans_a_table() {
        let (_dir, store) = store_with(1).await;
        let statements = [
            ("REST_UPDATES", REST_UPDATES),
            ("REST_INSERTS", REST_INSERTS),
            ("OPENS", OPENS),
            ("SET_TICKETS", crate::details::SET_TICKETS),
            ("SET_CONTENT", crate::details::SET_CONTENT),
            ("STORED_LISTINGS", crate::listing::STORED_LISTINGS),
        ];
        let mut conn = store.write.lock().await.unwrap();
        let mut scans = Vec::new();
        for (name, sql) in statements {
            for statement in sql.split(';').filter(|s| !s.trim().is_empty()) {
                let mut query = sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(
                    format!("EXPLAIN QUERY PLAN {statement}"),
                ));
                for _ in 0..statement.matches('?').count() {
                    query = query.bind("[]");
                }
                for (_, _, _, step) in query.fetch_all(&mut *conn).await.unwrap() {
                    if step.starts_with("SCAN ") && !step.contains("VIRTUAL TABLE") {
                        scans.push(format!("{name}: {step} in {}", statement.trim()));
                    }
                }
            }
        }
        assert!(scans.is_empty(), "{scans:#?}");
    }

    /// A message and a note intent of ticket 1 for its Desk360 message 9, both open.
    async fn message_and_note_of_9(store: &Store) -> (IntentId, IntentId) {
        let mut open = Vec::new();
        for step in [IntentStep::Message(9), IntentStep::Note(9)] {
            open.push(store.open_intent(key(1), step, "h").await.unwrap());
        }
        (open[0], open[1])
    }

    /// The completion of `id` (a write for Desk360 message 9) as Deskie message `deskie_id`.
    fn complete_9(id: IntentId, deskie_id: i64) -> Op {
        Op::Complete {
            id,
            result: IntentResult::Message {
                source_id: 9,
                deskie_id,
            },
        }
    }

    /// A message and a note intent for the same Desk360 message, both open and completed in one
    /// batch with different Deskie ids: one by one, the second would be refused (the first's map
    /// points elsewhere). Set-wise both would be taken, so the batch fails (and is rolled back:
    /// the caller commits its requests one by one).
    #[tokio::test]
    async fn a_message_and_a_note_for_one_message_fail_the_batch() {
        let (_dir, store) = store_with(1).await;
        let (message, note) = message_and_note_of_9(&store).await;
        let batch = [complete_9(message, 1), complete_9(note, 2)];
        let err = applied(&store, &batch).await.map(|_| ()).unwrap_err();
        assert!(matches!(err, StoreError::InvalidState(_)), "{err}");
        assert!(store.load_ticket(key(1)).await.unwrap().sent.is_empty());
        assert_eq!(store.open_intents().await.unwrap().len(), 2);
    }

    /// The folded transaction of a group commit fails as a whole and leaves the connection
    /// outside any transaction: the same pair as above, through the store's own commit (whose
    /// `BEGIN` rode in the first set statement), then each request alone.
    #[tokio::test]
    async fn a_failed_folded_group_is_rolled_back_and_the_connection_reused() {
        let (_dir, store) = store_with(1).await;
        let (message, note) = message_and_note_of_9(&store).await;
        let (a, b) = (complete_9(message, 1), complete_9(note, 2));
        let err = store.commit_ops(&[&a, &b]).await.map(|_| ()).unwrap_err();
        assert!(matches!(err, StoreError::InvalidState(_)), "{err}");
        assert!(store.load_ticket(key(1)).await.unwrap().sent.is_empty());
        assert_eq!(store.open_intents().await.unwrap().len(), 2);
        // Not stuck in the failed transaction: the first request alone commits.
        let answers = store.commit_ops(&[&a]).await.unwrap();
        assert!(matches!(answers.as_slice(), [Ok(Answer::Done)]));
        assert_eq!(store.load_ticket(key(1)).await.unwrap().sent.len(), 1);
    }

    /// The folded heads set the durability a plain `BEGIN_*` would: a group that opens an
    /// intent leaves `FULL` (2) on the write connection, one of completions only `NORMAL` (1).
    /// Were the head's pragma not run (a driver that skipped the first statements of a string),
    /// an intent could be lost to a power cut after its write was sent.
    #[tokio::test]
    async fn the_folded_heads_set_full_for_intents_and_normal_otherwise() {
        async fn synchronous(store: &Store) -> i64 {
            store.write.scalar("PRAGMA synchronous").await
        }
        let (_dir, store) = store_with(1).await;
        let id = store
            .open_intent(key(1), IntentStep::Create, "h")
            .await
            .unwrap();
        assert_eq!(synchronous(&store).await, 2);
        let case = crate::CaseRef {
            case_id: 5,
            case_number: "C-5".into(),
            user_id: 6,
        };
        store
            .complete_intent(id, IntentResult::Case(case))
            .await
            .unwrap();
        assert_eq!(synchronous(&store).await, 1);
        for head in [Head::Normal, Head::Durable] {
            for set in [Set::RestUpdates, Set::RestInserts, Set::Opens] {
                let sql = set.sql(&mut Some(head), false);
                assert!(sql.starts_with(head.begin()), "{sql}");
                assert!(sql.ends_with(set.plain()), "{sql}");
                assert_eq!(set.sql(&mut None, false), set.plain());
                let sql = set.sql(&mut Some(head), true);
                assert!(sql.starts_with(head.begin()), "{sql}");
                assert!(sql.ends_with("; COMMIT"), "{sql}");
            }
        }
    }

    /// When the intents' set statement carries the COMMIT, what it did not open is settled
    /// after it in a durable transaction of its own: a second request for the same step gets
    /// the same intent, and an intent whose text cannot go through JSON (a NUL) is opened
    /// there, whole.
    #[tokio::test]
    async fn intents_left_after_a_folded_commit_are_settled_durably_after_it() {
        let (_dir, store) = store_with(2).await;
        let open = |t, hash: &str| Op::Open {
            key: key(t),
            step: IntentStep::Create.to_string(),
            payload_hash: hash.to_owned(),
        };
        let (a, again, odd) = (open(1, "h"), open(1, "h"), open(2, "x\0y"));
        let answers = store.commit_ops(&[&a, &again, &odd]).await.unwrap();
        let ids: Vec<i64> = answers
            .iter()
            .map(|answer| match answer {
                Ok(Answer::Intent(id)) => id.0,
                other => panic!("not an intent: {:?}", other.as_ref().map(|_| ())),
            })
            .collect();
        assert_eq!(ids[0], ids[1], "one intent for one step");
        let open = store.open_intents().await.unwrap();
        assert_eq!(open.len(), 2);
        let odd = open.iter().find(|i| i.key == key(2)).unwrap();
        assert_eq!((odd.id.0, odd.payload_hash.as_str()), (ids[2], "x\0y"));
        // The last commit was durable, and the connection is outside any transaction.
        assert_eq!(store.write.scalar("PRAGMA synchronous").await, 2);
        let mut conn = store.write.lock().await.unwrap();
        conn.begin().await.unwrap().commit().await.unwrap();
    }
}
