//! Live counters of a run, shared between the pipelines (which bump them) and whoever displays
//! progress (the binary polls [`Progress::snapshot`]). Plain atomics: no locks on the hot path,
//! and the engine never prints.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Counters bumped by the pipelines.
#[derive(Debug, Default)]
pub struct Progress {
    /// Tickets known from list pages in this run.
    pub listed: AtomicU64,
    /// List pages fetched in this run.
    pub pages: AtomicU64,
    /// Ticket details stored in this run.
    pub extracted: AtomicU64,
    /// Tickets that failed extraction in this run.
    pub extract_failed: AtomicU64,
    /// Tickets waiting for their detail when the run started or listed since.
    pub to_extract: AtomicU64,
    /// Cases completed in this run.
    pub loaded: AtomicU64,
    /// Tickets that failed loading in this run.
    pub load_failed: AtomicU64,
    /// Tickets skipped (channel mapped to skip) in this run.
    pub skipped: AtomicU64,
    /// Deskie writes confirmed in this run.
    pub writes: AtomicU64,
    /// Reads spent reconciling open intents.
    pub reconcile_reads: AtomicU64,
    /// Whether extraction has finished.
    pub extract_done: AtomicU64,
}

/// A copy of the counters at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ProgressSnapshot {
    /// See [`Progress::listed`].
    pub listed: u64,
    /// See [`Progress::pages`].
    pub pages: u64,
    /// See [`Progress::extracted`].
    pub extracted: u64,
    /// See [`Progress::extract_failed`].
    pub extract_failed: u64,
    /// See [`Progress::to_extract`].
    pub to_extract: u64,
    /// See [`Progress::loaded`].
    pub loaded: u64,
    /// See [`Progress::load_failed`].
    pub load_failed: u64,
    /// See [`Progress::skipped`].
    pub skipped: u64,
    /// See [`Progress::writes`].
    pub writes: u64,
    /// See [`Progress::reconcile_reads`].
    pub reconcile_reads: u64,
    /// Extraction finished.
    pub extract_done: bool,
}

impl Progress {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> ProgressSnapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ProgressSnapshot {
            listed: g(&self.listed),
            pages: g(&self.pages),
            extracted: g(&self.extracted),
            extract_failed: g(&self.extract_failed),
            to_extract: g(&self.to_extract),
            loaded: g(&self.loaded),
            load_failed: g(&self.load_failed),
            skipped: g(&self.skipped),
            writes: g(&self.writes),
            reconcile_reads: g(&self.reconcile_reads),
            extract_done: g(&self.extract_done) != 0,
        }
    }
}
