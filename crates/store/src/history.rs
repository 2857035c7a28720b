//! Figures of a days-long run: the source time back to which the migrated history is complete,
//! and the tickets per hour each side achieved while it was active.
//!
//! Desk360 lists newest first, so the loader finishes recent tickets first: everything updated
//! after the newest ticket still in the pipeline is already in Deskie, and the team can use the
//! recent months before the archive finishes. The queries are index seeks
//! (`tickets_state_updated`, migration 0005), cheap enough for a progress line.

use serde::Serialize;
use sqlx::Row;

use crate::Store;
use crate::error::Result;

/// How far back the migrated history is complete.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HistoryMark {
    /// Every ticket updated after this Desk360 time (naive, as the list sent it) is migrated
    /// (loaded or skipped on purpose); `None` with `everything` false: nothing can be said yet.
    pub complete_after: Option<String>,
    /// Every listed ticket is done and every product's listing went through once.
    pub everything: bool,
    /// Tickets failed permanently: listed under failures, not counted as holding the mark back.
    pub failed_excluded: u64,
    /// The same mark per product: `(product_id, complete_after)`.
    pub by_product: Vec<(i64, Option<String>)>,
}

/// Tickets and active minutes of each side, for tickets per hour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Throughput {
    /// Tickets whose detail is stored.
    pub extracted: u64,
    /// Tickets loaded.
    pub loaded: u64,
    /// Minutes in which Desk360 requests were sent.
    pub desk360_minutes: u64,
    /// Minutes in which Deskie requests were sent.
    pub deskie_minutes: u64,
}

/// States that hold the mark back: still to do (a transient failure is retried by the next run).
const OPEN_STATES: [&str; 3] = ["pending", "extracted", "loading"];
/// Every state, for the oldest listed ticket of a product.
const ALL_STATES: [&str; 6] = [
    "pending",
    "extracted",
    "loading",
    "loaded",
    "failed",
    "skipped",
];

impl Store {
    /// The source time back to which the migrated history is complete (see [`HistoryMark`]).
    pub async fn history_mark(&self) -> Result<HistoryMark> {
        let cursors = sqlx::query("SELECT product_id, mark FROM list_cursors ORDER BY product_id")
            .fetch_all(&self.read)
            .await?;
        let mut mark = HistoryMark {
            everything: !cursors.is_empty(),
            ..HistoryMark::default()
        };
        let mut overall: Option<String> = None;
        // A product whose listing has not shown a single ticket yet: no mark can be given.
        let mut unknown = false;
        for row in &cursors {
            let product: i64 = row.try_get("product_id")?;
            let listed_once = row.try_get::<Option<String>, _>("mark")?.is_some();
            let mut bound: Option<String> = None;
            let mut raise = |v: Option<String>| {
                if let Some(v) = v
                    && bound.as_ref().is_none_or(|b| v > *b)
                {
                    bound = Some(v);
                }
            };
            for state in OPEN_STATES {
                raise(self.newest_listed(state, product).await?);
            }
            raise(
                sqlx::query_scalar(
                    "SELECT max(listed_updated_at) FROM tickets
                     WHERE state = 'failed' AND product_id = ? AND failure_class = 'transient'",
                )
                .bind(product)
                .fetch_one(&self.read)
                .await?,
            );
            if !listed_once {
                // The first pass has not reached the oldest tickets: nothing older than the
                // oldest listed one is known yet.
                let mut oldest: Option<String> = None;
                for state in ALL_STATES {
                    let v: Option<String> = sqlx::query_scalar(
                        "SELECT min(listed_updated_at) FROM tickets
                         WHERE state = ? AND product_id = ?",
                    )
                    .bind(state)
                    .bind(product)
                    .fetch_one(&self.read)
                    .await?;
                    if let Some(v) = v
                        && oldest.as_ref().is_none_or(|o| v < *o)
                    {
                        oldest = Some(v);
                    }
                }
                match oldest {
                    Some(o) => raise(Some(o)),
                    None => {
                        unknown = true;
                        mark.everything = false;
                        mark.by_product.push((product, None));
                        continue;
                    }
                }
            }
            if bound.is_some() {
                mark.everything = false;
            }
            if let Some(b) = &bound
                && overall.as_ref().is_none_or(|o| b > o)
            {
                overall = Some(b.clone());
            }
            mark.by_product.push((product, bound));
        }
        mark.complete_after = if unknown { None } else { overall };
        let failed: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM tickets WHERE state = 'failed' AND failure_class = 'permanent'",
        )
        .fetch_one(&self.read)
        .await?;
        mark.failed_excluded = failed.max(0) as u64;
        Ok(mark)
    }

    async fn newest_listed(&self, state: &str, product: i64) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT max(listed_updated_at) FROM tickets WHERE state = ? AND product_id = ?",
        )
        .bind(state)
        .bind(product)
        .fetch_one(&self.read)
        .await?)
    }

    /// Tickets done on each side and the minutes each side was active (from the request log),
    /// so pauses (a closed laptop, a night without the process) do not dilute the rates.
    pub async fn throughput(&self) -> Result<Throughput> {
        let row = sqlx::query(
            "SELECT count(extracted_at) AS extracted,
                    coalesce(sum(state = 'loaded'), 0) AS loaded FROM tickets",
        )
        .fetch_one(&self.read)
        .await?;
        let minutes = sqlx::query(
            "SELECT side, count(*) AS n FROM request_log WHERE requests > 0 GROUP BY side",
        )
        .fetch_all(&self.read)
        .await?;
        let mut t = Throughput {
            extracted: row.try_get::<i64, _>("extracted")?.max(0) as u64,
            loaded: row.try_get::<i64, _>("loaded")?.max(0) as u64,
            ..Throughput::default()
        };
        for m in &minutes {
            let side: String = m.try_get("side")?;
            let n = m.try_get::<i64, _>("n")?.max(0) as u64;
            match side.as_str() {
                "desk360" => t.desk360_minutes = n,
                _ => t.deskie_minutes = n,
            }
        }
        Ok(t)
    }
}
