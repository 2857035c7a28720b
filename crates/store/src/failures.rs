//! Failures: recording them with the API's own words, listing them, and re-queuing them for
//! `retry-failed`.

use futures::TryStreamExt;
use model::TicketKey;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::error::Result;
use crate::rows::key_from_row;
use crate::{BatchId, FailedTicket, Failure, FailureRecord, RetryFilter, Store, StoreError, now};

impl Store {
    /// Marks a ticket `failed` (keeping the class, so the next run retries transient ones) and
    /// records why; a repeated failure in the same stage increments `attempts` and replaces the
    /// details with the latest.
    pub async fn record_failure(&self, key: TicketKey, failure: &FailureRecord) -> Result<()> {
        let now = now();
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        let query = sqlx::query(
            "UPDATE tickets SET state = 'failed', failure_stage = ?, failure_class = ?, reload = 0
             WHERE product_id = ? AND ticket_id = ?",
        );
        let query = query
            .bind(failure.stage.as_str())
            .bind(failure.class.as_str());
        crate::rows::update_ticket(&mut tx, key, query).await?;
        upsert_failure(
            &mut tx,
            key.product_id,
            FailureOf::Ticket(key.ticket_id),
            failure,
            &now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records that a list page of a product could not be read (the cursor stays where it was, so
    /// the next run asks for the page again); cleared when the page is recorded.
    pub async fn record_page_failure(
        &self,
        product_id: i64,
        page: i64,
        failure: &FailureRecord,
    ) -> Result<()> {
        let now = now();
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        upsert_failure(&mut tx, product_id, FailureOf::Page(page), failure, &now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Re-queues the failed tickets the filter selects: failed in load → `extracted` (the loader
    /// continues the same case from the id maps, which are kept), failed in extract → `pending`.
    /// Loaded and other tickets are untouched. Returns how many were re-queued.
    pub async fn retry_failed(&self, filter: &RetryFilter) -> Result<u64> {
        let batches = json_list(filter.batches.iter().map(|b| b.0));
        let ids = json_list(filter.ticket_ids.iter().copied());
        let keys = serde_json::to_string(
            &filter
                .tickets
                .iter()
                .map(|k| [k.product_id, k.ticket_id])
                .collect::<Vec<_>>(),
        )
        .map_err(|e| StoreError::InvalidState(format!("cannot encode the ticket list: {e}")))?;
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        let done = sqlx::query(
            "UPDATE tickets SET
                state = CASE WHEN failure_stage = 'load' AND fetched_updated_at IS listed_updated_at
                             THEN 'extracted' ELSE 'pending' END,
                failure_stage = NULL, failure_class = NULL
             WHERE state = 'failed' AND (
                 ?1
                 OR batch_id IN (SELECT value FROM json_each(?2))
                 OR ticket_id IN (SELECT value FROM json_each(?3))
                 OR EXISTS (SELECT 1 FROM json_each(?4) j
                            WHERE json_extract(j.value, '$[0]') = tickets.product_id
                              AND json_extract(j.value, '$[1]') = tickets.ticket_id))",
        )
        .bind(filter.all)
        .bind(batches)
        .bind(ids)
        .bind(keys)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Every ticket in state failed, by key, with its batch and latest failure.
    pub async fn failed_tickets(&self) -> Result<Vec<FailedTicket>> {
        let mut all = Vec::new();
        self.visit_failed_tickets(|f| all.push(f)).await?;
        Ok(all)
    }

    /// Hands every failed ticket to `visit`, by key, one row at a time: a long run can leave
    /// tens of thousands (1 % of 2 M tickets), each with the API's message and the redacted
    /// request, and a report that only groups them must not hold them all at once.
    pub async fn visit_failed_tickets(&self, mut visit: impl FnMut(FailedTicket)) -> Result<()> {
        let mut rows = sqlx::query(
            "SELECT t.product_id, t.ticket_id, t.batch_id, b.page AS batch_page,
                    f.page, f.stage, f.step, f.class, f.code, f.message, f.request, f.attempts,
                    f.first_seen, f.last_seen, f.id AS failure_id
             FROM tickets t
             JOIN batches b ON b.id = t.batch_id
             LEFT JOIN failures f ON f.product_id = t.product_id AND f.ticket_id = t.ticket_id
                                 AND f.stage = t.failure_stage
             WHERE t.state = 'failed'
             ORDER BY t.product_id, t.ticket_id",
        )
        .fetch(&self.read);
        while let Some(r) = rows.try_next().await? {
            let failure = match r.try_get::<Option<i64>, _>("failure_id")? {
                Some(_) => Some(failure_from_row(&r)?),
                None => None,
            };
            visit(FailedTicket {
                key: key_from_row(&r)?,
                batch_id: BatchId(r.try_get("batch_id")?),
                page: r.try_get("batch_page")?,
                failure,
            });
        }
        Ok(())
    }

    /// Every current failure: of tickets still failed, and of list pages not yet read, ordered by
    /// product then ticket (page failures first).
    pub async fn failures(&self) -> Result<Vec<Failure>> {
        let rows = sqlx::query(
            "SELECT f.product_id, f.ticket_id, f.page, f.stage, f.step, f.class, f.code,
                    f.message, f.request, f.attempts, f.first_seen, f.last_seen
             FROM failures f
             LEFT JOIN tickets t ON t.product_id = f.product_id AND t.ticket_id = f.ticket_id
             WHERE f.ticket_id IS NULL OR (t.state = 'failed' AND t.failure_stage = f.stage)
             ORDER BY f.product_id, f.ticket_id, f.page",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(failure_from_row).collect()
    }
}

pub(crate) fn failure_from_row(r: &SqliteRow) -> Result<Failure> {
    let product_id: i64 = r.try_get("product_id")?;
    let ticket_id: Option<i64> = r.try_get("ticket_id")?;
    Ok(Failure {
        key: ticket_id.map(|t| TicketKey::new(product_id, t)),
        product_id,
        page: r.try_get("page")?,
        record: FailureRecord {
            stage: r.try_get::<String, _>("stage")?.parse()?,
            step: r.try_get::<String, _>("step")?.into(),
            class: r.try_get::<String, _>("class")?.parse()?,
            code: r.try_get("code")?,
            message: r.try_get("message")?,
            request: r.try_get("request")?,
        },
        attempts: r.try_get("attempts")?,
        first_seen: r.try_get("first_seen")?,
        last_seen: r.try_get("last_seen")?,
    })
}

/// What a failure row is about besides its product.
#[derive(Clone, Copy)]
enum FailureOf {
    Ticket(i64),
    Page(i64),
}

/// Records `failure` (a first one, or a repeat in the same stage: `attempts` + 1, details
/// replaced by the latest).
async fn upsert_failure(
    tx: &mut sqlx::SqliteConnection,
    product_id: i64,
    of: FailureOf,
    failure: &FailureRecord,
    now: &str,
) -> Result<()> {
    // The two kinds differ only in the unique index a repeat meets.
    macro_rules! upsert {
        ($target:literal) => {
            concat!(
                "INSERT INTO failures (product_id, ticket_id, page, stage, step, class, code,
                                       message, request, attempts, first_seen, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, ?10, ?10)
                 ON CONFLICT ",
                $target,
                " DO UPDATE SET step = excluded.step, class = excluded.class,
                     code = excluded.code, message = excluded.message, request = excluded.request,
                     attempts = attempts + 1, last_seen = excluded.last_seen"
            )
        };
    }
    let (ticket_id, page, sql) = match of {
        FailureOf::Ticket(t) => (
            Some(t),
            None,
            upsert!("(product_id, ticket_id, stage) WHERE ticket_id IS NOT NULL"),
        ),
        FailureOf::Page(p) => (
            None,
            Some(p),
            upsert!("(product_id, page, stage) WHERE ticket_id IS NULL"),
        ),
    };
    sqlx::query(sql)
        .bind(product_id)
        .bind(ticket_id)
        .bind(page)
        .bind(failure.stage.as_str())
        .bind(failure.step.to_string())
        .bind(failure.class.as_str())
        .bind(&failure.code)
        .bind(&failure.message)
        .bind(&failure.request)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// A JSON array of integers, for `json_each` (keeps the SQL static whatever the list length).
fn json_list(items: impl Iterator<Item = i64>) -> String {
    let items: Vec<String> = items.map(|i| i.to_string()).collect();
    format!("[{}]", items.join(","))
}
