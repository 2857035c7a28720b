//! The store's single write connection, held directly rather than in a one-connection pool.
//!
//! Why not a pool of one: sqlx pings every connection it takes back into a pool
//! (`PoolConnection::return_to_pool`), a round trip to the connection's worker thread after
//! every write transaction, on top of the pool's own bookkeeping. A write is two or three such
//! round trips in all, so the ping was a large share of what a write cost (BENCHMARKS.md,
//! "Local cost"). A connection behind a fair mutex queues writers the same way, first come
//! first served, without it.
//!
//! Two kinds of transaction run on it:
//! - sqlx's own ([`WriteGuard::begin`], [`WriteGuard::begin_durable`]), which roll back when
//!   dropped unfinished, like before;
//! - the group commit's *folded* transaction ([`WriteGuard::folded`]), whose `BEGIN` rides at the
//!   head of its first statement's string and, in the usual case, its `COMMIT` at the tail of its
//!   last one, so that a group costs two round trips fewer (`group.rs`, `loading.rs::ops_tx`).
//!   sqlx does not know about it, so the writer remembers it is open and the next holder rolls it
//!   back first if its owner never finished it (a panic, or a runtime shut down mid-commit).

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::{Connection as _, Sqlite, SqliteConnection, Transaction};
use tokio::sync::{Mutex, OwnedMappedMutexGuard, OwnedMutexGuard};

use crate::error::{Result, StoreError};
use crate::{ACQUIRE_TIMEOUT, BEGIN_DURABLE, BEGIN_NORMAL};

/// The write connection, shared by every clone of the store: the connection (gone once the
/// store is closed) and whether a folded transaction was left open on it (read and written only
/// by the holder of the connection's mutex).
#[derive(Clone, Debug)]
pub(crate) struct Writer {
    conn: Arc<Mutex<Option<SqliteConnection>>>,
    folded_open: Arc<AtomicBool>,
}

impl Writer {
    /// Holds `conn`, already migrated, as the store's only writer.
    pub(crate) fn new(conn: SqliteConnection) -> Writer {
        Writer {
            conn: Arc::new(Mutex::new(Some(conn))),
            folded_open: Arc::default(),
        }
    }

    /// Waits for the connection (callers queue in arrival order). A folded transaction its last
    /// holder left open is rolled back first, so every holder starts outside a transaction.
    pub(crate) async fn lock(&self) -> Result<WriteGuard> {
        let slot = tokio::time::timeout(ACQUIRE_TIMEOUT, Arc::clone(&self.conn).lock_owned())
            .await
            .map_err(|_| {
                StoreError::Busy("the store's write connection was not free in time".into())
            })?;
        let mut conn = OwnedMutexGuard::try_map(slot, Option::as_mut)
            .map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))?;
        if self.folded_open.load(Ordering::Relaxed) {
            tracing::warn!("rolling back a group commit its writer left unfinished");
            rollback(&mut conn).await?;
            self.folded_open.store(false, Ordering::Relaxed);
        }
        Ok(WriteGuard {
            conn,
            folded_open: Arc::clone(&self.folded_open),
        })
    }

    /// Closes the connection (SQLite checkpoints the WAL when its last connection closes).
    /// Later writes fail as on a closed pool.
    pub(crate) async fn close(&self) {
        let conn = self.conn.lock().await.take();
        if let Some(conn) = conn
            && let Err(e) = conn.close().await
        {
            tracing::debug!(error = %e, "closing the write connection");
        }
    }
}

/// The write connection, held: other writers wait until it is dropped.
pub(crate) struct WriteGuard {
    conn: OwnedMappedMutexGuard<Option<SqliteConnection>, SqliteConnection>,
    folded_open: Arc<AtomicBool>,
}

impl Deref for WriteGuard {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.conn
    }
}

impl DerefMut for WriteGuard {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }
}

impl WriteGuard {
    /// A write transaction that takes the write lock at once (`BEGIN IMMEDIATE`), so
    /// read-then-write logic inside it cannot be invalidated by another writer, e.g. another
    /// process on the same file. Committed with the store's usual `synchronous = NORMAL`.
    pub(crate) async fn begin(&mut self) -> Result<Transaction<'_, Sqlite>> {
        Ok(self.deref_mut().begin_with(BEGIN_NORMAL).await?)
    }

    /// Like [`WriteGuard::begin`], but its commit is fsynced (`synchronous = FULL`).
    pub(crate) async fn begin_durable(&mut self) -> Result<Transaction<'_, Sqlite>> {
        Ok(self.deref_mut().begin_with(BEGIN_DURABLE).await?)
    }

    /// Starts a folded transaction: the caller sends `BEGIN` itself at the head of its first
    /// statement (see `group::Head`) and must end it with
    /// [`Folded::commit`] or [`Folded::rollback`]. Dropped unfinished, the next holder of the
    /// connection rolls it back.
    pub(crate) fn folded(&mut self) -> Folded<'_> {
        self.folded_open.store(true, Ordering::Relaxed);
        Folded { guard: self }
    }
}

/// A transaction begun by the head of its first statement (see [`WriteGuard::folded`]).
pub(crate) struct Folded<'a> {
    guard: &'a mut WriteGuard,
}

impl Folded<'_> {
    /// The connection, for the transaction's statements.
    pub(crate) fn conn(&mut self) -> &mut SqliteConnection {
        self.guard
    }

    /// Commits. A failed `COMMIT` is rolled back (by SQLite, or by the next holder), so nothing
    /// of the transaction is kept.
    pub(crate) async fn commit(self) -> Result<()> {
        sqlx::raw_sql("COMMIT").execute(&mut **self.guard).await?;
        self.guard.folded_open.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// Ends a transaction whose last statement carried its own `COMMIT`.
    pub(crate) fn committed(self) {
        self.guard.folded_open.store(false, Ordering::Relaxed);
    }

    /// Rolls back; also when the `BEGIN` itself never ran (SQLite's "no transaction is
    /// active" is not an error here).
    pub(crate) async fn rollback(self) -> Result<()> {
        rollback(self.guard).await?;
        self.guard.folded_open.store(false, Ordering::Relaxed);
        Ok(())
    }
}

/// `ROLLBACK`, where "no transaction is active" (the `BEGIN` never ran, or the `COMMIT` did
/// before its caller was dropped) is not an error.
async fn rollback(conn: &mut SqliteConnection) -> Result<()> {
    match sqlx::raw_sql("ROLLBACK").execute(conn).await {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.message().contains("no transaction is active") => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
impl Writer {
    /// The integer `sql` answers on the write connection (e.g. `PRAGMA synchronous`, which is
    /// the connection's own): for the store's unit tests.
    #[allow(clippy::unwrap_used)]
    pub(crate) async fn scalar(&self, sql: &'static str) -> i64 {
        let mut conn = self.lock().await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut *conn).await.unwrap()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::Store;

    async fn products(store: &Store) -> i64 {
        store.write.scalar("SELECT count(*) FROM products").await
    }

    /// A folded transaction dropped unfinished (a panic, or a runtime shut down mid-commit) is
    /// rolled back by the next holder, which starts outside any transaction: nothing of it is
    /// kept and writing goes on.
    #[tokio::test]
    async fn a_folded_transaction_left_open_is_rolled_back_by_the_next_holder() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("s.sqlite")).await.unwrap();
        {
            let mut conn = store.write.lock().await.unwrap();
            let mut tx = conn.folded();
            sqlx::raw_sql(
                "PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE; \
                 INSERT INTO products (id, name, raw) VALUES (1, 'a', '{}')",
            )
            .execute(tx.conn())
            .await
            .unwrap();
            // Dropped without commit or rollback.
        }
        assert_eq!(products(&store).await, 0);
        let mut conn = store.write.lock().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        sqlx::query("INSERT INTO products (id, name, raw) VALUES (2, 'b', '{}')")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        drop(conn);
        assert_eq!(products(&store).await, 1);
    }

    /// Rolling back a folded transaction whose `BEGIN` never ran (its first statement failed
    /// before it) is not an error, and a closed store refuses writes instead of hanging.
    #[tokio::test]
    async fn a_rollback_without_a_transaction_is_quiet_and_a_closed_writer_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("s.sqlite")).await.unwrap();
        let mut conn = store.write.lock().await.unwrap();
        conn.folded().rollback().await.unwrap();
        drop(conn);
        store.close().await;
        let refused = store.write.lock().await.map(|_| ()).unwrap_err();
        assert!(matches!(refused, StoreError::Database(_)), "{refused}");
    }
}
