//! The running sandbox: binds both emulators, owns their shared state (faults, journal, rate
//! windows, Deskie data) and stops them.
//!
//! State lives behind `std::sync::Mutex`es that are never held across an `.await`; every handler
//! takes what it needs, releases the lock, then awaits (latency, body reading).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Response, StatusCode, header};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::deskie::DeskieState;
use crate::{
    Credentials, Dataset, DeskieSnapshot, Faults, JournalEntry, SandboxConfig, SandboxError,
    Server, SharedDataset,
};

/// Largest request body either emulator reads (a 50 MB multipart request plus slack).
pub(crate) const MAX_BODY: usize = 64 * 1024 * 1024;

/// Locks a mutex, recovering from poisoning (a panicking test handler must not wedge the rest).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
    pub dataset: SharedDataset,
    pub faults: RwLock<Arc<Faults>>,
    pub readings: RwLock<Arc<crate::Readings>>,
    pub journal: Mutex<Vec<JournalEntry>>,
    pub rng: Mutex<fastrand::Rng>,
    pub origin: Instant,
    pub origin_epoch: f64,
    pub desk360_url: String,
    pub deskie_url: String,
    pub desk360: Mutex<crate::desk360::Desk360State>,
    /// Desk360 account changes ([`crate::Churn`] and [`Sandbox::create_ticket`]): held while a
    /// change is drawn and applied, so changes happen in one deterministic sequence.
    pub churn: Mutex<crate::desk360::ChurnState>,
    pub deskie: Mutex<DeskieState>,
}

impl Shared {
    /// The readings in force now (cheap: an `Arc` clone).
    pub fn readings(&self) -> Arc<crate::Readings> {
        self.readings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The dataset as it is now (cheap: an `Arc` clone).
    pub fn dataset(&self) -> Arc<Dataset> {
        self.dataset
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Applies one change to the dataset (copy-on-write: snapshots already handed out keep the
    /// state they were taken with).
    pub fn change_dataset<R>(&self, change: impl FnOnce(&mut Dataset) -> R) -> R {
        let mut guard = self.dataset.write().unwrap_or_else(|e| e.into_inner());
        change(Arc::make_mut(&mut guard))
    }

    pub fn faults(&self) -> Arc<Faults> {
        self.faults
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
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

    pub fn record(&self, entry: JournalEntry) {
        lock(&self.journal).push(entry);
    }
}

/// A response body that fails before its first byte: hyper then aborts the connection without
/// flushing the head, so the client sees a connection error, not a status.
pub(crate) fn dropped_response() -> Response<Body> {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "sandbox fault: response dropped after commit",
        ))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = StatusCode::OK;
    resp
}

/// The HTML page a reverse proxy answers with for 502/503/504 (bodies a client cannot parse as
/// JSON, as in production).
pub(crate) fn proxy_error_page(status: StatusCode) -> Response<Body> {
    let code = status.as_u16();
    let reason = status.canonical_reason().unwrap_or("Error");
    raw_response(
        status,
        "text/html",
        format!(
            "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n<center><h1>{code} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
        )
        .into_bytes(),
    )
}

/// A JSON response.
pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    raw_response(status, "application/json", bytes)
}

/// A response with a given content type and body.
pub(crate) fn raw_response(
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
) -> Response<Body> {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// Sets a header from a string (values we build are always valid header text).
pub(crate) fn set_header(resp: &mut Response<Body>, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

/// Both emulators, running on `127.0.0.1` until [`Sandbox::shutdown`] (or drop).
pub struct Sandbox {
    shared: Arc<Shared>,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Sandbox {
    /// Generates the dataset, binds both servers on `127.0.0.1:0` and starts serving.
    pub async fn start(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        let desk360_listener =
            TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|source| SandboxError::Bind {
                    server: "Desk360",
                    source,
                })?;
        let deskie_listener =
            TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|source| SandboxError::Bind {
                    server: "Deskie",
                    source,
                })?;
        let desk360_addr = desk360_listener
            .local_addr()
            .map_err(|source| SandboxError::Bind {
                server: "Desk360",
                source,
            })?;
        let deskie_addr = deskie_listener
            .local_addr()
            .map_err(|source| SandboxError::Bind {
                server: "Deskie",
                source,
            })?;
        let desk360_url = format!("http://{desk360_addr}");
        let deskie_url = format!("http://{deskie_addr}");

        let (seed, products, tickets) = (config.seed, config.products, config.tickets);
        let base = desk360_url.clone();
        let large = config.attachments.large.clone();
        let dataset: Dataset = tokio::task::spawn_blocking(move || {
            let mut ds = crate::data::generate_with_base(seed, products, tickets, &base);
            for (product_id, ticket_id, sizes) in &large {
                if !ds.add_large_attachments(*product_id, *ticket_id, sizes) {
                    tracing::warn!(
                        product_id,
                        ticket_id,
                        "no such ticket for large attachments"
                    );
                }
            }
            ds
        })
        .await
        .map_err(|e| SandboxError::Generate(e.to_string()))?;

        let credentials = Credentials {
            desk360_token: format!("sandbox-desk360-token-{seed:x}"),
            // The login address is in the account's domain (`admin@acme.example` by default).
            desk360_email: format!("admin@{}.example", config.desk360_account),
            desk360_password: "sandbox-password".into(),
            deskie_staff_email: "importer@acme.example".into(),
            deskie_api_key: format!("sandbox-deskie-key-{seed:x}"),
        };
        let origin_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        let origin = Instant::now();
        let desk360_state = crate::desk360::Desk360State::new(&credentials.desk360_token, origin);
        let shared = Arc::new(Shared {
            faults: RwLock::new(Arc::new(config.faults.clone())),
            readings: RwLock::new(Arc::new(config.readings.clone())),
            rng: Mutex::new(fastrand::Rng::with_seed(config.seed ^ 0x5eed_5a4d_b0c5)),
            config,
            credentials,
            dataset: RwLock::new(Arc::new(dataset)),
            journal: Mutex::new(Vec::new()),
            origin,
            origin_epoch,
            desk360_url,
            deskie_url,
            desk360: Mutex::new(desk360_state),
            churn: Mutex::new(crate::desk360::ChurnState::new(seed)),
            deskie: Mutex::new(DeskieState::new()),
        });

        let cancel = CancellationToken::new();
        let desk360_app = Router::new()
            .fallback(crate::desk360::entry)
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .with_state(shared.clone());
        // No framework limit on Deskie bodies: JSON is read up to MAX_BODY by the handler, and
        // multipart files are streamed and counted (kept only within 25 MB a file, 50 MB a
        // request), so an oversized upload is a 400 naming the file, not a cut connection.
        let deskie_app = Router::new()
            .fallback(crate::deskie::entry)
            .layer(DefaultBodyLimit::disable())
            .with_state(shared.clone());
        let mut tasks = Vec::new();
        for (listener, app) in [
            (desk360_listener, desk360_app),
            (deskie_listener, deskie_app),
        ] {
            let token = cancel.clone();
            tasks.push(tokio::spawn(async move {
                let served = axum::serve(
                    listener,
                    app.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(token.cancelled_owned())
                .await;
                if let Err(error) = served {
                    tracing::warn!(%error, "sandbox server stopped with an error");
                }
            }));
        }
        tracing::info!(desk360 = %shared.desk360_url, deskie = %shared.deskie_url, "sandbox started");
        Ok(Sandbox {
            shared,
            cancel,
            tasks,
        })
    }

    /// Base URL of the Desk360 emulator; requests go to `{url}/v1/…`.
    pub fn desk360_url(&self) -> String {
        self.shared.desk360_url.clone()
    }

    /// Base URL of the Deskie emulator; requests go to `{url}/api/…`.
    pub fn deskie_url(&self) -> String {
        self.shared.deskie_url.clone()
    }

    /// The credentials both emulators accept.
    pub fn credentials(&self) -> Credentials {
        self.shared.credentials.clone()
    }

    /// Makes the Desk360 token in force stop working now, as if its lifetime ran out: requests
    /// carrying it get the documented 401 (journal fault `token_expired`) and the next
    /// `/v1/login` generates a new token (a different string).
    pub fn expire_desk360_token(&self) {
        crate::desk360::expire_token(&self.shared);
    }

    /// The Desk360 token accepted now: the static one of [`Sandbox::credentials`] until it
    /// expires, then the last one a login generated; `None` between an expiry and the next login.
    pub fn desk360_token(&self) -> Option<String> {
        crate::desk360::current_token(&self.shared)
    }

    /// Replaces the active faults (e.g. switch a rejection off before a retry run).
    pub fn set_faults(&self, faults: Faults) {
        *self
            .shared
            .faults
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(faults);
    }

    /// The faults currently active.
    pub fn faults(&self) -> Faults {
        (*self.shared.faults()).clone()
    }

    /// Switches how the emulators read the ambiguous points of the vendor pages while they run
    /// (e.g. a preflight test under each reading).
    pub fn set_readings(&self, readings: crate::Readings) {
        *self
            .shared
            .readings
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::new(readings);
    }

    /// The readings currently in force.
    pub fn readings(&self) -> crate::Readings {
        (*self.shared.readings()).clone()
    }

    /// Every request to either server so far, in arrival order (entries are recorded when the
    /// answer is sent, then ordered by arrival time here).
    pub fn journal(&self) -> Vec<JournalEntry> {
        let mut entries = lock(&self.shared.journal).clone();
        entries.sort_by_key(|e| e.at);
        entries
    }

    /// Forgets the journal (e.g. between phases of a test).
    pub fn clear_journal(&self) {
        lock(&self.shared.journal).clear();
    }

    /// The full Deskie state.
    pub fn deskie_snapshot(&self) -> DeskieSnapshot {
        lock(&self.shared.deskie).snapshot()
    }

    /// The Desk360 account the Desk360 emulator serves now (attachment URLs point at it): the
    /// generated one plus the changes made since with [`Sandbox::append_message`],
    /// [`Sandbox::set_ticket_status`] and [`Sandbox::set_ticket_priority`]. It is a snapshot:
    /// hold it in a `let` while borrowing from it, and ask again after a change.
    pub fn dataset(&self) -> Arc<Dataset> {
        self.shared.dataset()
    }

    /// Adds a message to a ticket while the servers run, as if written in Desk360 now (see
    /// [`Dataset::append_message`]): `agent_id` 0 is the customer, `note` makes it an internal
    /// note. The body gets the message's `ref:` marker; the ticket's `updated_at` becomes the
    /// latest in the account, so an `order=asc` listing returns it last. Returns the new Desk360
    /// message id, or `None` for an unknown ticket or a note without an agent.
    pub fn append_message(
        &self,
        product_id: i64,
        ticket_id: i64,
        agent_id: i64,
        note: bool,
        body_html: &str,
    ) -> Option<i64> {
        self.shared.change_dataset(|ds| {
            ds.append_message(product_id, ticket_id, agent_id, note, body_html)
        })
    }

    /// Changes a ticket's status (0 open, 1 resolved, 2 waiting) while the servers run, moving
    /// its `updated_at` like a new message does. Returns `false` for an unknown ticket.
    pub fn set_ticket_status(&self, product_id: i64, ticket_id: i64, status: i64) -> bool {
        self.shared
            .change_dataset(|ds| ds.set_status(product_id, ticket_id, status))
    }

    /// Creates a new Desk360 ticket in `product_id` while the servers run, shaped like a generated
    /// one (see [`Dataset::create_ticket`]; content drawn from the sandbox seed, in call order):
    /// the newest `updated_at` of the account, so it is on page 1 of the default order and last
    /// in `order=asc`. Returns `(product_id, ticket_id)`, or `None` for an unknown product.
    pub fn create_ticket(&self, product_id: i64) -> Option<(i64, i64)> {
        crate::desk360::create_ticket(&self.shared, product_id)
    }

    /// Every change [`crate::Churn`] has made so far, in order (by-hand changes are not listed).
    pub fn churn_log(&self) -> Vec<crate::ChurnEvent> {
        lock(&self.shared.churn).log.clone()
    }

    /// Changes the status of several tickets in one account second, as an agent's bulk action
    /// does (see [`Dataset::bulk_set_status`]): they share one `updated_at`, so list-order ties
    /// can be tested. Returns how many tickets changed.
    pub fn bulk_set_ticket_status(&self, keys: &[(i64, i64)], status: i64) -> usize {
        self.shared
            .change_dataset(|ds| ds.bulk_set_status(keys, status))
    }

    /// Changes a ticket's priority (0 low … 3 urgent) while the servers run, like
    /// [`Sandbox::set_ticket_status`].
    pub fn set_ticket_priority(&self, product_id: i64, ticket_id: i64, priority: i64) -> bool {
        self.shared
            .change_dataset(|ds| ds.set_priority(product_id, ticket_id, priority))
    }

    /// The configuration the sandbox was started with.
    pub fn config(&self) -> &SandboxConfig {
        &self.shared.config
    }

    /// Stops both servers: open connections are closed gracefully, bounded to 5 s.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        for task in std::mem::take(&mut self.tasks) {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.cancel.cancel();
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("desk360_url", &self.shared.desk360_url)
            .field("deskie_url", &self.shared.deskie_url)
            .finish_non_exhaustive()
    }
}

/// The client's address, from axum's connect info (loopback if somehow missing).
pub(crate) fn peer(req: &axum::extract::Request) -> std::net::IpAddr {
    req.extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
}

/// Builds the journal entry skeleton for a request.
pub(crate) fn entry_for(server: Server, req: &axum::extract::Request, cost: u32) -> JournalEntry {
    JournalEntry {
        at: Instant::now(),
        server,
        method: req.method().to_string(),
        path: req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| req.uri().path().to_owned()),
        cost,
        status: 0,
        fault: None,
    }
}
