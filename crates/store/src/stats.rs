//! Request counters per API side and minute, for the report's rate chart.

use sqlx::Row;

use crate::error::Result;
use crate::{RequestStat, Side, Store};

impl Store {
    /// Adds a flush of counters in ONE transaction (rows for the same side and minute add up).
    pub async fn add_request_stats(&self, stats: &[RequestStat]) -> Result<()> {
        if stats.is_empty() {
            return Ok(());
        }
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        for s in stats {
            sqlx::query(
                "INSERT INTO request_log (side, minute, requests, units, throttled, transient)
                 VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (side, minute) DO UPDATE SET
                    requests = requests + excluded.requests, units = units + excluded.units,
                    throttled = throttled + excluded.throttled,
                    transient = transient + excluded.transient",
            )
            .bind(s.side.as_str())
            .bind(s.minute_epoch.div_euclid(60) * 60)
            .bind(sat(s.requests))
            .bind(sat(s.units))
            .bind(sat(s.throttled))
            .bind(sat(s.transient))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The counters of one side, minute by minute in time order.
    pub async fn request_stats(&self, side: Side) -> Result<Vec<RequestStat>> {
        sqlx::query(
            "SELECT minute, requests, units, throttled, transient FROM request_log
             WHERE side = ? ORDER BY minute",
        )
        .bind(side.as_str())
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(|r| {
            Ok(RequestStat {
                side,
                minute_epoch: r.try_get("minute")?,
                requests: unsat(r.try_get("requests")?),
                units: unsat(r.try_get("units")?),
                throttled: unsat(r.try_get("throttled")?),
                transient: unsat(r.try_get("transient")?),
            })
        })
        .collect()
    }
}

fn sat(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn unsat(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
