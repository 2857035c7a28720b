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
