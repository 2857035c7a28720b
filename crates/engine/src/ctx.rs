//! The state one run shares between its pipelines (extraction, loading, trial selection): the
//! settings, the store, both limiters, the progress counters, the cancellation tokens and the
//! signals between the two halves. Its own module so the pipelines and the run that starts them
//! depend on it, not on each other.

use std::sync::Arc;

use store::Store;
use throttle::{Limiter, LimiterStats, RetryPolicy};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::progress::Progress;

/// Everything the pipelines share. Cheap to clone pieces out of; one per run.
pub(crate) struct Ctx {
    pub settings: Settings,
    pub store: Store,
    pub progress: Arc<Progress>,
    pub cancel: CancellationToken,
    /// Cancelled when the loader must stop (outage) without stopping extraction.
    pub load_cancel: CancellationToken,
    pub desk360_limiter: Limiter,
    pub deskie_limiter: Limiter,
    /// Woken whenever new tickets are extracted.
    pub extracted: Notify,
    /// Becomes `true` once extraction is over for this run (finished, failed or not needed):
    /// the loader stops when it has nothing left and this says no more will come.
    pub extraction_over: watch::Sender<bool>,
    pub retry: RetryPolicy,
    /// The Desk360 side of `[attachments] mode = "upload"`, set once the clients are built.
    pub files: std::sync::OnceLock<FileClients>,
    /// Set for a trial: the loader claims only the trial selection.
    pub selected_only: std::sync::atomic::AtomicBool,
    /// The newest write intent when this run began: only intents after it count towards the
    /// per-run bound on writes proven absent (`load::MAX_AMBIGUOUS_ATTEMPTS`).
    pub run_intents_after: std::sync::atomic::AtomicI64,
    /// When every write of an earlier process had ended, set by [`crate::Engine::run`] before
    /// loading (`None` until then).
    pub earlier_writes: std::sync::Mutex<Option<EarlierWrites>>,
    /// Limiter counters already written to the request log.
    pub stat_marks: std::sync::Mutex<StatMarks>,
}

impl Ctx {
    /// Says that extraction is over for this run (also on the progress counters): the loader
    /// finishes what is extracted and stops.
    pub fn finish_extraction(&self) {
        Progress::add(&self.progress.extract_done, 1);
        self.extraction_over.send_replace(true);
    }

    /// What this run knows of the end of earlier processes' writes, once [`crate::Engine::run`]
    /// has said.
    pub fn earlier_writes(&self) -> Option<EarlierWrites> {
        *self
            .earlier_writes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Whether extraction is over for this run.
    pub fn extraction_is_over(&self) -> bool {
        *self.extraction_over.borrow()
    }
}

#[derive(Default)]
/// The limiter counters already added to the store's per-minute request log.
pub(crate) struct StatMarks {
    /// Desk360 counters at the last flush.
    pub desk360: LimiterStats,
    /// Deskie counters at the last flush.
    pub deskie: LimiterStats,
}

/// The clients a loader needs to upload files: the Desk360 client (downloads on its API host,
/// with its token) and the limiter of downloads from other storage hosts.
#[derive(Clone)]
pub(crate) struct FileClients {
    /// Downloads on the Desk360 API host, with its token.
    pub desk360: desk360::Desk360Client,
    /// Downloads from other storage hosts (`[attachments] storage_rpm`).
    pub storage: Limiter,
}

/// When every write of an earlier process had ended, as a run learns it when it begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EarlierWrites {
    /// When this run took the store's lock: a live earlier process would still hold it.
    pub locked_at: jiff::Timestamp,
    /// The last run's recorded end (as the latest instant its stamp stands for) when it
    /// stopped cleanly: its loader joins every in-flight write before recording it. `None` for
    /// a killed run (no end) or one that ended with an error.
    pub clean_end: Option<jiff::Timestamp>,
}

impl EarlierWrites {
    /// The latest instant the request of an intent an earlier process opened at `opened` can
    /// have been in flight on our side: the clean end when the intent is older than it (one
    /// opened after it belongs to a later process that recorded no end), never later than the
    /// lock; otherwise the lock.
    pub fn ended_by(&self, opened: Option<jiff::Timestamp>) -> jiff::Timestamp {
        match (self.clean_end, opened) {
            (Some(end), Some(opened)) if opened <= end => end.min(self.locked_at),
            _ => self.locked_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::EarlierWrites;

    fn writes_ended_by(
        locked_at: jiff::Timestamp,
        clean_end: Option<jiff::Timestamp>,
        opened: Option<jiff::Timestamp>,
    ) -> jiff::Timestamp {
        EarlierWrites {
            locked_at,
            clean_end,
        }
        .ended_by(opened)
    }

    fn at(s: &str) -> jiff::Timestamp {
        s.parse().expect("test timestamp")
    }

    #[test]
    fn an_earlier_write_counts_as_in_flight_until_its_process_is_known_to_be_gone() {
        let locked = at("2026-12-03T12:00:00Z");
        let end = at("2026-12-02T18:00:01Z");
        let before_end = at("2026-12-02T17:59:00Z");
        let after_end = at("2026-12-03T11:59:59Z");
        // The last run stopped cleanly after the intent: its loader had joined every write.
        assert_eq!(writes_ended_by(locked, Some(end), Some(before_end)), end);
        // Opened after that end: a later run (killed, no end recorded) sent it.
        assert_eq!(writes_ended_by(locked, Some(end), Some(after_end)), locked);
        // No clean end (killed, or ended with an error), or no readable stamp: the lock.
        assert_eq!(writes_ended_by(locked, None, Some(before_end)), locked);
        assert_eq!(writes_ended_by(locked, Some(end), None), locked);
        // A recorded end is never trusted past the moment the lock was taken.
        let late = at("2026-12-03T12:00:05Z");
        assert_eq!(
            writes_ended_by(locked, Some(late), Some(before_end)),
            locked
        );
    }
}
