//! The SQLite checkpoint store: the hand-off between extraction (Desk360) and loading (Deskie)
//! and the checkpoint of both.
//!
//! Only the engine calls it. Every method is one short transaction, so the file is consistent
//! after a `kill -9` at any instant: a page of listed tickets, a batch of details, a write intent
//! and its id map are each all there or not at all. All writes go through one connection held
//! behind a fair mutex (`writer.rs`; SQLite allows one writer, and queueing is cheaper than
//! `SQLITE_BUSY` retries); reads use a separate small pool, which WAL lets run alongside the
//! writer, except the loader's per-ticket read, which runs on the write connection (its page
//! cache is never invalidated by another writer, and it costs no pool round trip).
//!
//! # Ticket states
//! - `record_page`: new → `pending`; `updated_at` changed → `pending` (maps and intents kept).
//! - `save_details`: `pending` → `extracted` (a `loading` ticket stays `loading`, flagged to be
//!   loaded again after the current load).
//! - `claim_for_load`: `extracted` → `loading`; `release_loading` (startup): back to `extracted`.
//! - `mark_loaded`: → `loaded`; `mark_skipped`: → `skipped`; `record_failure`: → `failed`.
//! - `retry_failed` (any class) and `requeue_transient` (transient only): `failed` → `extracted`
//!   when it failed while loading, `pending` when it failed while extracting.
//!
//! A batch's state is derived from its tickets (any failed → failed, all loaded/skipped → loaded,
//! some loading/loaded → loading, any pending → pending, else extracted).
//!
//! # How the engine drives it
//! - A writing command first takes [`StoreLock::acquire`] (one writer per store, released by the
//!   kernel however the process ends), then compares the configured accounts with
//!   [`Store::account`] before writing anything (recording them with [`Store::record_account`] on
//!   the first run; [`Store::retarget`] moves the store to another Deskie account on request).
//! - During a run, [`Store::checkpoint`] (`Passive`) at intervals; `Truncate` on a clean stop, so
//!   the `.sqlite` file alone holds everything.
//! - Start of every run: [`Store::begin_run`], [`Store::release_loading`] (tickets a killed run
//!   held), [`Store::requeue_transient`] (failed-transient tickets get another go without a flag),
//!   then [`Store::open_intents`] to reconcile against Deskie before writing anything.
//! - Extraction: [`Store::pending_tickets`] first (listed, never fetched), then per product
//!   [`Store::list_cursor`] → fetch `next_url` (page 1 when `None`, nothing when complete) →
//!   [`Store::record_page`] → fetch `to_fetch` → [`Store::save_details`] for the page, or
//!   [`Store::record_failure`] per ticket / [`Store::record_page_failure`].
//!   A delta run calls [`Store::reset_list_cursor`] first.
//! - Loading: [`Store::claim_for_load`] → [`Store::load_ticket`] → for each write:
//!   [`Store::open_intent`] (committed and fsynced, together with the intents other cases in
//!   flight opened at the same time: group commit), send, [`Store::complete_intent`] (writes the id
//!   map in the same transaction) or [`Store::abandon_intent`] when the write is known not to have
//!   happened → [`Store::mark_loaded`] / [`Store::record_failure`] / [`Store::mark_skipped`].
//!   `complete_intent`, `mark_loaded` and `record_files` join the next group commit instead of a
//!   transaction each (answered once it is committed; see ARCHITECTURE.md, "Durable before sent").
//! - `retry-failed`: [`Store::retry_failed`]; `status`/reports: [`Store::counts`],
//!   [`Store::failed_tickets`], [`Store::failures`], [`Store::batches`], [`Store::tickets_page`],
//!   [`Store::request_stats`].
//!
//! Layout of the code: [`Store::open`] here; one module per concern (`runs`, `reference`,
//! `listing`, `details`, `loading`, `failures`, `files`, `reports`, `stats`, `accounts`, `lock`), each adding methods to
//! [`Store`]. The schema, with a comment on every table, is in `migrations/` at the workspace root.

mod accounts;
mod details;
mod error;
mod failures;
mod files;
mod group;
mod history;
mod listing;
mod loading;
mod lock;
mod preflight;
mod reference;
mod reports;
mod rows;
mod runs;
mod stats;
mod types;
mod verify;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::ConnectOptions as _;
use sqlx::Sqlite;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use error::{Result, StoreError};
pub use files::{
    FileMode, FileOutcome, FileRecord, FileRow, LinkCheck, RehostEdit, RehostTotals, SampledLink,
};
pub use history::{HistoryMark, Throughput};
pub use loading::PendingCompletion;
pub use lock::StoreLock;
pub use preflight::{
    PreflightRecord, ProbeId, ProbeRecord, RollbackId, RollbackIntent, TRIAL_BATCH_PAGE,
};
pub use reference::ReferenceTable;
pub use reports::{LoadedGroup, LoadedWrites};
pub use types::*;
pub use verify::{
    CaseCheckRow, DuplicateRow, ScopeRow, SeenCase, SeenVia, VerifyFinding, VerifyRunRecord,
};

/// How long a statement waits for a lock held by another connection or process before failing
/// with [`StoreError::Busy`].
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a caller waits for the single write connection (other writers are short
/// transactions, so this only expires when something is badly stuck).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(60);

/// Connections for concurrent reads (reports, `load_ticket` of many cases in flight).
const READ_CONNECTIONS: u32 = 4;

/// The checkpoint store. Cheap to clone: clones share the same connections.
#[derive(Clone, Debug)]
pub struct Store {
    /// The only connection that writes, so writers queue instead of fighting for the lock.
    write: writer::Writer,
    /// Reads only; WAL lets them proceed while the writer commits.
    read: SqlitePool,
    /// The file, for messages and reports.
    path: Arc<PathBuf>,
    /// Write intents waiting for their group commit (see [`Store::open_intent`]).
    intents: Arc<loading::IntentQueue>,
}

impl Store {
    /// Opens (creating it owner-readable only if missing) and migrates the store at `path`.
    ///
    /// Sets WAL, `synchronous = NORMAL` (durable at every checkpoint, consistent at every commit),
    /// a 5 s busy timeout and foreign keys on every connection.
    pub async fn open(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        create_private(&path)?;

        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);

        // The write connection is not pooled (see `writer.rs`: a pool pings a connection each
        // time it takes it back).
        let mut write = options.connect().await?;
        sqlx::migrate!("../../migrations").run(&mut write).await?;
        let write = writer::Writer::new(write);

        // No ping before handing out a connection (sqlx's default): a local file cannot hang
        // up, and each ping is a round trip to the connection's worker thread (strace on a
        // 2 000-ticket run: 190 → 158 futex calls a ticket without them).
        let read = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .test_before_acquire(false)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.read_only(true))
            .await?;

        tracing::debug!(path = %path.display(), "store opened");
        Ok(Store {
            write,
            read,
            path: Arc::new(path),
            intents: Arc::default(),
        })
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes both pools, checkpointing the WAL; dropping the store without it is also safe.
    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }

    /// Copies the WAL's committed pages into the main file (`PRAGMA wal_checkpoint`), so the
    /// `.sqlite` file alone holds the data: someone who copies only it after a crash otherwise
    /// silently gets an older store, which re-sends writes already made (issue #11.11).
    ///
    /// Runs on the single write connection, between transactions (it waits for the current
    /// one), never inside one and so never across an HTTP call.
    pub async fn checkpoint(&self, mode: CheckpointMode) -> Result<CheckpointOutcome> {
        let sql = match mode {
            CheckpointMode::Passive => "PRAGMA wal_checkpoint(PASSIVE)",
            CheckpointMode::Truncate => "PRAGMA wal_checkpoint(TRUNCATE)",
        };
        let mut conn = self.write.lock().await?;
        let (busy, log, done): (i64, i64, i64) = sqlx::query_as(sql).fetch_one(&mut *conn).await?;
        let outcome = CheckpointOutcome {
            complete: busy == 0 && log == done,
            wal_frames: log,
            checkpointed_frames: done,
        };
        tracing::debug!(?mode, ?outcome, "WAL checkpoint");
        Ok(outcome)
    }

    /// Runs `PRAGMA integrity_check` and returns its report (`["ok"]` when healthy).
    pub async fn integrity_check(&self) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as("PRAGMA integrity_check")
            .fetch_all(&self.read)
            .await?;
        Ok(rows.into_iter().map(|(s,)| s).collect())
    }

    /// The journal mode in force (`wal` when opened by [`Store::open`]).
    pub async fn journal_mode(&self) -> Result<String> {
        let mut conn = self.write.lock().await?;
        let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await?;
        Ok(mode)
    }

    /// The write connection, for a transaction ([`writer::WriteGuard::begin`]): every write
    /// waits here for the ones before it.
    async fn writer(&self) -> Result<writer::WriteGuard> {
        self.write.lock().await
    }

    /// Runs one statement in a write transaction of its own and answers how many rows it
    /// changed: the shape of every "hand these tickets back" call.
    async fn write_one(&self, query: SqliteQuery<'_>) -> Result<u64> {
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        let done = query.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Runs one claiming `UPDATE … RETURNING product_id, ticket_id, batch_id` in a write
    /// transaction of its own and answers the claimed tickets in listing (batch) order.
    async fn claim(&self, query: SqliteQuery<'_>) -> Result<Vec<model::TicketKey>> {
        let mut w = self.writer().await?;
        let mut tx = w.begin().await?;
        let rows = query.fetch_all(&mut *tx).await?;
        tx.commit().await?;
        rows::claimed_keys(&rows)
    }
}

/// Starts a write transaction with the store's usual durability (WAL, `synchronous = NORMAL`),
/// in one round trip to the connection's worker: a durable commit ([`BEGIN_DURABLE`]) leaves
/// `FULL` behind on the single write connection, and every other write transaction sets
/// `NORMAL` back as it begins (SQLite runs both statements of the string, and the pragma cannot
/// change inside a transaction).
pub(crate) const BEGIN_NORMAL: &str = "PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE";

/// Starts a write transaction whose commit is fsynced (`synchronous = FULL`): the group commit
/// of write intents, which must be on disk before their writes are sent.
pub(crate) const BEGIN_DURABLE: &str = "PRAGMA synchronous = FULL; BEGIN IMMEDIATE";

/// A statement with its arguments bound, ready to run.
pub(crate) type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments>;

/// How a WAL checkpoint treats the work around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointMode {
    /// During a run: copies what it can without waiting for readers or blocking the writer
    /// (SQLite's `PASSIVE`), so the pipeline never stalls on it; pages a reader still needs stay
    /// in the WAL until the next one.
    Passive,
    /// On a clean stop: waits for readers (busy timeout), copies everything and truncates the
    /// `-wal` file to zero bytes (SQLite's `TRUNCATE`), so the `.sqlite` file alone is the store.
    Truncate,
}

/// What a checkpoint achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointOutcome {
    /// Every frame of the WAL is in the main file now.
    pub complete: bool,
    /// Frames in the WAL before the checkpoint (0 after a `Truncate`).
    pub wal_frames: i64,
    /// Frames copied into the main file.
    pub checkpointed_frames: i64,
}

/// Creates the store file readable and writable by its owner only, before SQLite opens it
/// (SQLite gives its -wal and -shm files the database file's permissions).
fn create_private(path: &Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path).map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display()))
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file.metadata()?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format_args!("{:o}", mode & 0o777),
                "the store holds customer data but is readable by other users; consider chmod 600"
            );
        }
    }
    #[cfg(not(unix))]
    drop(file);
    Ok(())
}

/// The current UTC time as the store writes it: `YYYY-MM-DDTHH:MM:SS`.
fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

/// Reads a time the store wrote (an intent's `created_at`, a run's `started_at`, …): UTC civil
/// time in whole seconds, so this is the earliest instant it can stand for. `None` for text the
/// store did not write.
pub fn stamp_time(stamp: &str) -> Option<jiff::Timestamp> {
    let civil = stamp.parse::<jiff::civil::DateTime>().ok()?;
    jiff::tz::TimeZone::UTC.to_timestamp(civil).ok()
}

/// The latest instant a store time can stand for: `12:00:07` was written before `12:00:08`.
/// What must not happen before an event (e.g. a read that proves a write absent) counts from here.
pub fn stamp_time_latest(stamp: &str) -> Option<jiff::Timestamp> {
    stamp_time(stamp)?
        .checked_add(jiff::SignedDuration::from_secs(1))
        .ok()
}
