//! The run history: one row per invocation, so reports can tell what ran and whether it finished.

use sqlx::Row;

use crate::error::Result;
use crate::{RunId, RunKind, RunOutcome, RunRecord, Store, now};

impl Store {
    /// Records the start of a run; `fingerprint` identifies the effective configuration (no secrets).
    pub async fn begin_run(&self, kind: RunKind, fingerprint: &str) -> Result<RunId> {
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO runs (kind, started_at, config_fingerprint) VALUES (?, ?, ?) RETURNING id",
        )
        .bind(kind.as_str())
        .bind(now())
        .bind(fingerprint)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(RunId(id))
    }

    /// Records how a run ended.
    pub async fn finish_run(&self, id: RunId, outcome: RunOutcome) -> Result<()> {
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        sqlx::query("UPDATE runs SET finished_at = ?, outcome = ? WHERE id = ?")
            .bind(now())
            .bind(outcome.as_str())
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The `n` most recent runs, newest first.
    pub async fn last_runs(&self, n: u32) -> Result<Vec<RunRecord>> {
        let rows = sqlx::query(
            "SELECT id, kind, started_at, finished_at, outcome, config_fingerprint
             FROM runs ORDER BY id DESC LIMIT ?",
        )
        .bind(i64::from(n))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RunRecord {
                    id: RunId(row.try_get("id")?),
                    kind: row.try_get::<String, _>("kind")?.parse()?,
                    started_at: row.try_get("started_at")?,
                    finished_at: row.try_get("finished_at")?,
                    outcome: row
                        .try_get::<Option<String>, _>("outcome")?
                        .map(|o| o.parse())
                        .transpose()?,
                    config_fingerprint: row.try_get("config_fingerprint")?,
                })
            })
            .collect()
    }
}
