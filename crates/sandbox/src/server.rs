//! The running sandbox: generates the dataset, builds the shared state and both emulators'
//! routers (`desk360.rs`, `deskie.rs`), binds them on `127.0.0.1:0`, and stops them. It is the
//! only module that knows both emulators; they know only the shared state (`state.rs`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{ChurnEvent, Credentials, Faults, Readings, SandboxConfig};
use crate::data::Dataset;
use crate::desk360::{self, Desk360};
use crate::deskie::{self, Deskie};
use crate::error::SandboxError;
use crate::respond::with_clean_paths;
use crate::snapshot::DeskieSnapshot;
use crate::state::{JournalEntry, Shared};

/// Both emulators, running on `127.0.0.1` until [`Sandbox::shutdown`] (or drop).
pub struct Sandbox {
    shared: Arc<Shared>,
    desk360: Arc<Desk360>,
    deskie: Arc<Deskie>,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// Binds a listener on `127.0.0.1:0` for the named emulator and answers it with its address.
async fn bind(server: &'static str) -> Result<(TcpListener, SocketAddr), SandboxError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|source| SandboxError::Bind { server, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| SandboxError::Bind { server, source })?;
    Ok((listener, addr))
}

/// Generates the dataset (off the async threads) with its attachment URLs on `base`, plus the
/// configured large attachments.
async fn generate(config: &SandboxConfig, base: String) -> Result<Dataset, SandboxError> {
    let (seed, products, tickets) = (config.seed, config.products, config.tickets);
    let large = config.attachments.large.clone();
    tokio::task::spawn_blocking(move || {
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
    .map_err(|e| SandboxError::Generate(e.to_string()))
}

/// The credentials of a sandbox started with `config`.
fn credentials(config: &SandboxConfig) -> Credentials {
    let seed = config.seed;
    Credentials {
        desk360_token: format!("sandbox-desk360-token-{seed:x}"),
        // The login address is in the account's domain (`admin@acme.example` by default).
        desk360_email: format!("admin@{}.example", config.desk360_account),
        desk360_password: "sandbox-password".into(),
        deskie_staff_email: "importer@acme.example".into(),
        deskie_api_key: format!("sandbox-deskie-key-{seed:x}"),
    }
}

impl Sandbox {
    /// Generates the dataset, binds both servers on `127.0.0.1:0` and starts serving.
    pub async fn start(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        let (desk360_listener, desk360_addr) = bind("Desk360").await?;
        let (deskie_listener, deskie_addr) = bind("Deskie").await?;
        let desk360_url = format!("http://{desk360_addr}");
        let deskie_url = format!("http://{deskie_addr}");
        let dataset = generate(&config, desk360_url.clone()).await?;
        let credentials = credentials(&config);
        let shared = Arc::new(Shared::new(
            config,
            credentials,
            dataset,
            desk360_url,
            deskie_url,
        ));
        let desk360 = Arc::new(Desk360::new(shared.clone()));
        let deskie = Arc::new(Deskie::new(shared.clone()));

        let cancel = CancellationToken::new();
        let desk360_app = with_clean_paths(desk360::router(desk360.clone()));
        let deskie_app = with_clean_paths(deskie::router(deskie.clone()));
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
            desk360,
            deskie,
            cancel,
            tasks,
        })
    }

    /// When window 0 of both servers began: window `n` spans `origin + n × window` onwards, so
    /// a benchmark can count use per server window ([`JournalEntry::window`]).
    pub fn window_origin(&self) -> std::time::Instant {
        self.shared.origin
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
        self.desk360.expire_token();
    }

    /// The Desk360 token accepted now: the static one of [`Sandbox::credentials`] until it
    /// expires, then the last one a login generated; `None` between an expiry and the next login.
    pub fn desk360_token(&self) -> Option<String> {
        self.desk360.current_token()
    }

    /// Replaces the active faults (e.g. switch a rejection off before a retry run).
    pub fn set_faults(&self, faults: Faults) {
        self.shared.set_faults(faults);
    }

    /// The faults currently active.
    pub fn faults(&self) -> Faults {
        (*self.shared.faults()).clone()
    }

    /// Switches how the emulators read the ambiguous points of the vendor pages while they run
    /// (e.g. a preflight test under each reading).
    pub fn set_readings(&self, readings: Readings) {
        self.shared.set_readings(readings);
    }

    /// The readings currently in force.
    pub fn readings(&self) -> Readings {
        (*self.shared.readings()).clone()
    }

    /// Every request to either server so far, in arrival order (entries are recorded when the
    /// answer is sent, then ordered by arrival time here).
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.shared.journal()
    }

    /// Forgets the journal (e.g. between phases of a test).
    pub fn clear_journal(&self) {
        self.shared.clear_journal();
    }

    /// The full Deskie state.
    pub fn deskie_snapshot(&self) -> DeskieSnapshot {
        self.deskie.snapshot()
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
        self.desk360.create_ticket(product_id)
    }

    /// Every change [`crate::Churn`] has made so far, in order (by-hand changes are not listed).
    pub fn churn_log(&self) -> Vec<ChurnEvent> {
        self.desk360.churn_log()
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
