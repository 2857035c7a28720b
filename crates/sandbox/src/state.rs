//! What both emulators share while they run: the configuration, the dataset, the faults and
//! readings in force (switchable at run time), the seeded random draws, the clock of the fixed
//! rate windows, and the journal of every request.
//!
//! State lives behind `std::sync` locks that are never held across an `.await`; every handler
//! takes what it needs, releases the lock, then awaits (latency, body reading). Each emulator
//! keeps its own account state beside this (`desk360.rs`, `deskie.rs`); nothing here knows them.

use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use axum::extract::OriginalUri;
use axum::http::{Request, StatusCode};

use crate::config::{Credentials, Faults, Readings, SandboxConfig};
use crate::data::Dataset;

/// Largest request body either emulator reads (a 50 MB multipart request plus slack).
pub(crate) const MAX_BODY: usize = 64 * 1024 * 1024;

/// Locks a mutex, recovering from poisoning (a panicking test handler must not wedge the rest).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads an `RwLock<Arc<T>>` snapshot (cheap: an `Arc` clone), recovering from poisoning.
fn current<T>(l: &RwLock<Arc<T>>) -> Arc<T> {
    l.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Replaces an `RwLock<Arc<T>>` snapshot; requests already holding the old one keep it.
fn replace<T>(l: &RwLock<Arc<T>>, value: T) {
    *l.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(value);
}

/// A fixed window counter: `index` is the window number since the sandbox started.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Window {
    pub index: u64,
    pub used: u32,
}

/// Everything both emulators share.
pub(crate) struct Shared {
    pub config: SandboxConfig,
    pub credentials: Credentials,
    /// The dataset the emulators serve: a snapshot is taken per request (an `Arc` clone), and a
    /// test's change replaces it copy-on-write, so a request in flight never sees half a change.
    dataset: RwLock<Arc<Dataset>>,
    faults: RwLock<Arc<Faults>>,
    readings: RwLock<Arc<Readings>>,
    journal: Mutex<Vec<JournalEntry>>,
    rng: Mutex<fastrand::Rng>,
    pub origin: Instant,
    pub origin_epoch: f64,
    pub desk360_url: String,
    pub deskie_url: String,
}

impl Shared {
    /// The shared state of a sandbox about to serve `dataset` at the two URLs.
    pub fn new(
        config: SandboxConfig,
        credentials: Credentials,
        dataset: Dataset,
        desk360_url: String,
        deskie_url: String,
    ) -> Self {
        let origin_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        Self {
            faults: RwLock::new(Arc::new(config.faults.clone())),
            readings: RwLock::new(Arc::new(config.readings.clone())),
            rng: Mutex::new(fastrand::Rng::with_seed(config.seed ^ 0x5eed_5a4d_b0c5)),
            config,
            credentials,
            dataset: RwLock::new(Arc::new(dataset)),
            journal: Mutex::new(Vec::new()),
            origin: Instant::now(),
            origin_epoch,
            desk360_url,
            deskie_url,
        }
    }

    /// The readings in force now (cheap: an `Arc` clone).
    pub fn readings(&self) -> Arc<Readings> {
        current(&self.readings)
    }

    /// Switches the readings; requests already running keep the ones they read.
    pub fn set_readings(&self, readings: Readings) {
        replace(&self.readings, readings);
    }

    /// The faults in force now (cheap: an `Arc` clone).
    pub fn faults(&self) -> Arc<Faults> {
        current(&self.faults)
    }

    /// Switches the faults; requests already running keep the ones they read.
    pub fn set_faults(&self, faults: Faults) {
        replace(&self.faults, faults);
    }

    /// The dataset as it is now (cheap: an `Arc` clone).
    pub fn dataset(&self) -> Arc<Dataset> {
        current(&self.dataset)
    }

    /// Applies one change to the dataset (copy-on-write: snapshots already handed out keep the
    /// state they were taken with).
    pub fn change_dataset<R>(&self, change: impl FnOnce(&mut Dataset) -> R) -> R {
        let mut guard = self.dataset.write().unwrap_or_else(|e| e.into_inner());
        change(Arc::make_mut(&mut guard))
    }

    /// Draws `true` with probability `p` from the seeded generator.
    pub fn chance(&self, p: f64) -> bool {
        p > 0.0 && lock(&self.rng).f64() < p
    }

    /// Picks one of 500/502/503 for a server-error fault.
    pub fn pick_5xx(&self) -> StatusCode {
        match lock(&self.rng).u32(0..3) {
            0 => StatusCode::INTERNAL_SERVER_ERROR,
            1 => StatusCode::BAD_GATEWAY,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Sleeps the configured latency +/- jitter.
    pub async fn delay(&self) {
        let base = self.config.latency.as_secs_f64();
        let jitter = self.config.jitter.as_secs_f64();
        if base == 0.0 && jitter == 0.0 {
            return;
        }
        let j = if jitter > 0.0 {
            (lock(&self.rng).f64() * 2.0 - 1.0) * jitter
        } else {
            0.0
        };
        let d = (base + j).max(0.0);
        if d > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(d)).await;
        }
    }

    /// The current window number and the time left in it.
    pub fn window_now(&self) -> (u64, Duration) {
        let window = self.config.window.max(Duration::from_millis(1));
        let elapsed = self.origin.elapsed();
        let index = (elapsed.as_nanos() / window.as_nanos()) as u64;
        let end = Duration::from_nanos((window.as_nanos() * (u128::from(index) + 1)) as u64);
        (index, end.saturating_sub(elapsed))
    }

    /// Formats a duration for a seconds header: integer (rounded up) for vendor-length windows,
    /// milliseconds for short test windows.
    pub fn fmt_secs(&self, d: Duration) -> String {
        if self.config.window >= Duration::from_secs(60) {
            format!("{}", d.as_secs_f64().ceil() as u64)
        } else {
            format!("{:.3}", d.as_secs_f64())
        }
    }

    /// Unix epoch seconds of the end of window `index` (fractional for short windows).
    pub fn fmt_window_end_epoch(&self, index: u64) -> String {
        let end = self.origin_epoch + self.config.window.as_secs_f64() * (index + 1) as f64;
        if self.config.window >= Duration::from_secs(60) {
            format!("{}", end.ceil() as u64)
        } else {
            format!("{end:.3}")
        }
    }

    /// Adds one answered request to the journal.
    pub fn record(&self, entry: JournalEntry) {
        lock(&self.journal).push(entry);
    }

    /// Every request so far, in arrival order (entries are recorded when the answer is sent).
    pub fn journal(&self) -> Vec<JournalEntry> {
        let mut entries = lock(&self.journal).clone();
        entries.sort_by_key(|e| e.at);
        entries
    }

    /// Forgets the journal.
    pub fn clear_journal(&self) {
        lock(&self.journal).clear();
    }
}

/// Builds the journal entry skeleton for a request: the path is the one the client sent
/// ([`OriginalUri`], before `respond::with_clean_paths` tidies it), with its query string.
pub(crate) fn entry_for<B>(server: Server, req: &Request<B>, cost: u32) -> JournalEntry {
    let uri = req
        .extensions()
        .get::<OriginalUri>()
        .map_or(req.uri(), |o| &o.0);
    JournalEntry {
        at: Instant::now(),
        server,
        method: req.method().to_string(),
        path: uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| uri.path().to_owned()),
        cost,
        status: 0,
        window: None,
        fault: None,
    }
}

/// Which emulator a journal entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Server {
    /// The Desk360 (source) emulator.
    Desk360,
    /// The Deskie (target) emulator.
    Deskie,
}

/// One request as the emulator saw it: what tests count (requests, units, 429s, faults).
#[derive(Debug, Clone)]
pub struct JournalEntry {
    /// When the request arrived.
    pub at: Instant,
    /// Which emulator answered.
    pub server: Server,
    /// HTTP method.
    pub method: String,
    /// Path with query string.
    pub path: String,
    /// Rate-limit units the request was worth (Desk360 1; Deskie GET 1, writes 2), whether or not
    /// it was charged.
    pub cost: u32,
    /// Status answered; 0 when the connection was dropped without an answer.
    pub status: u16,
    /// The rate window (numbered from the sandbox's start, see [`crate::Sandbox::window_origin`])
    /// the request was metered in, after its latency; `None` for what is not metered (files).
    pub window: Option<u64>,
    /// The fault or refusal behind the answer: `"5xx"`, `"down"`, `"dropped"`, `"rejected"`,
    /// `"rate_limited"`, `"malformed"`, `"truncated"`, `"too_many_attempts"`; `None` for a normal
    /// answer (including ordinary 4xx).
    pub fault: Option<String>,
}
