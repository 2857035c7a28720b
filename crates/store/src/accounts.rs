//! The two accounts a store belongs to: recorded at the first run, compared by the engine before
//! every writing command, and deliberately replaced for the target by `run --retarget`, which
//! forgets everything written to the previous target so it is migrated again into the new one.

use sqlx::Row;

use crate::error::Result;
use crate::{AccountIdentity, RetargetSummary, Side, Store, now};

impl Store {
    /// The account recorded for `side`; `None` until the first run recorded it.
    pub async fn account(&self, side: Side) -> Result<Option<AccountIdentity>> {
        let row = sqlx::query("SELECT base_url, account FROM accounts WHERE side = ?")
            .bind(side.as_str())
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| {
            Ok(AccountIdentity {
                side,
                base_url: r.try_get("base_url")?,
                account: r.try_get("account")?,
            })
        })
        .transpose()
    }

    /// Records the account of one side, replacing what was recorded (the engine calls it only
    /// when nothing was, or when the account is known to be the same, e.g. an updated
    /// `/v1/me` of the same Desk360 account).
    pub async fn record_account(&self, identity: &AccountIdentity) -> Result<()> {
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        upsert_account(&mut tx, identity).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Points the store at another Deskie account, in ONE transaction: forgets every case and
    /// message id map, final-state mark, write intent and load failure of the previous target,
    /// hands every ticket that was loading, loaded, skipped or failed while loading back to the
    /// loader (`extracted`, or `pending` when its stored detail is stale), and records `target`.
    /// Extraction is kept: nothing is fetched from Desk360 again.
    ///
    /// Refused with `InvalidState` for a source identity: a store never changes its source.
    pub async fn retarget(&self, target: &AccountIdentity) -> Result<RetargetSummary> {
        if target.side != Side::Deskie {
            return Err(crate::StoreError::InvalidState(
                "only the Deskie side of a store can be re-targeted".into(),
            ));
        }
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        let cases = sqlx::query("DELETE FROM case_map")
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let messages = sqlx::query("DELETE FROM message_map")
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM final_state")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM intents").execute(&mut *tx).await?;
        sqlx::query("DELETE FROM failures WHERE stage = 'load'")
            .execute(&mut *tx)
            .await?;
        let tickets = sqlx::query(
            "UPDATE tickets SET
                state = CASE WHEN fetched_updated_at IS listed_updated_at
                             THEN 'extracted' ELSE 'pending' END,
                reload = 0, loaded_at = NULL, skip_reason = NULL,
                failure_stage = NULL, failure_class = NULL
             WHERE state IN ('loading', 'loaded', 'skipped')
                OR (state = 'failed' AND failure_stage = 'load')",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        upsert_account(&mut tx, target).await?;
        tx.commit().await?;
        tracing::info!(
            cases,
            messages,
            tickets,
            target = %target.account,
            "store re-targeted: the previous target's id maps are forgotten"
        );
        Ok(RetargetSummary {
            cases_forgotten: cases,
            messages_forgotten: messages,
            tickets_requeued: tickets,
        })
    }
}

/// Records `identity` as the account of its side, replacing the one recorded before.
async fn upsert_account(tx: &mut sqlx::SqliteConnection, identity: &AccountIdentity) -> Result<()> {
    sqlx::query(
        "INSERT INTO accounts (side, base_url, account, recorded_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (side) DO UPDATE SET base_url = excluded.base_url,
             account = excluded.account, recorded_at = excluded.recorded_at",
    )
    .bind(identity.side.as_str())
    .bind(&identity.base_url)
    .bind(&identity.account)
    .bind(now())
    .execute(&mut *tx)
    .await?;
    Ok(())
}
