//! The store's one error type: each variant says how the caller should handle it.

use std::io;

/// What went wrong in the store, grouped by what the caller should do about it.
///
/// `Busy` and `Io` are transient (retry the same call after a short pause, or stop cleanly);
/// `Corrupt`, `Migrate` and `Database` are fatal for the run (the message carries a hint for the
/// user); `NotFound` and `InvalidState` are caller mistakes about one item (log it, fail that item).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database stayed locked longer than the busy timeout, or no connection was free in time:
    /// usually another deskie-import is using the same store file. Transient.
    #[error("the store is busy ({0}); is another deskie-import running on the same store file?")]
    Busy(String),
    /// Reading or writing the file failed (disk full, permissions, unplugged drive). Transient
    /// when the cause is fixed; the store itself stays consistent.
    #[error("I/O error on the store file: {0}")]
    Io(#[from] io::Error),
    /// The file is not a valid store or holds data this program cannot have written. Fatal.
    #[error(
        "the store is corrupt: {0}; restore a copy or point [store] path at a new file (a new \
         store re-extracts everything and cannot know which cases already exist in Deskie)"
    )]
    Corrupt(String),
    /// The schema could not be brought up to date. Fatal.
    #[error(
        "cannot apply the store's schema migrations: {0}; was this file written by a newer deskie-import?"
    )]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// The ticket, intent or row the call refers to does not exist.
    #[error("not found in the store: {0}")]
    NotFound(String),
    /// The call contradicts what the store already holds (e.g. completing an intent that is no
    /// longer open, or mapping a ticket to a second case). The item must not be written further.
    #[error("refused by the store: {0}")]
    InvalidState(String),
    /// Another process holds the store's write lock (see [`crate::StoreLock`]): only one
    /// process may write a store. Fatal for this command; nothing was written.
    #[error(
        "the store {store} is in use by another deskie-import ({holder}); only one process may \
         write a store: wait for it to finish or stop it, then run this command again"
    )]
    Locked {
        /// The store file.
        store: String,
        /// Who holds it, as the holder wrote it: pid, host and start time.
        holder: String,
    },
    /// Any other SQLite or driver error: a bug or an unexpected environment. Fatal.
    #[error("store database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl StoreError {
    /// True when retrying the same call later may succeed without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Busy(_) | StoreError::Io(_))
    }
}

/// SQLite primary result codes we classify (the driver reports extended codes as text).
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;
const SQLITE_IOERR: i64 = 10;
const SQLITE_CORRUPT: i64 = 11;
const SQLITE_FULL: i64 = 13;
const SQLITE_CANTOPEN: i64 = 14;
const SQLITE_NOTADB: i64 = 26;

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut => {
                StoreError::Busy("no store connection free in time".into())
            }
            sqlx::Error::Io(e) => StoreError::Io(e),
            sqlx::Error::Migrate(e) => StoreError::Migrate(*e),
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                StoreError::Corrupt(error.to_string())
            }
            sqlx::Error::Database(ref db) => {
                let code = db
                    .code()
                    .and_then(|c| c.parse::<i64>().ok())
                    .map(|c| c & 0xff)
                    .unwrap_or(0);
                match code {
                    SQLITE_BUSY | SQLITE_LOCKED => StoreError::Busy(db.message().to_owned()),
                    SQLITE_IOERR | SQLITE_FULL | SQLITE_CANTOPEN => {
                        StoreError::Io(io::Error::other(db.message().to_owned()))
                    }
                    SQLITE_CORRUPT | SQLITE_NOTADB => StoreError::Corrupt(db.message().to_owned()),
                    _ => StoreError::Database(error),
                }
            }
            other => StoreError::Database(other),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(error)
    }
}

/// Shorthand used throughout the crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
