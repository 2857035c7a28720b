//! The Desk360 emulator's state, given to every handler and layer: the shared sandbox state plus
//! the account's own (per-IP windows, the token and login failures, churn).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use super::auth::Auth;
use super::churn::{self, ChurnState};
use crate::config::ChurnEvent;
use crate::state::{Shared, Window, lock};

/// The Desk360 emulator's state: the shared sandbox state plus the account's own (per-IP
/// windows, the token and login failures, churn). The routers' state is an `Arc` of it.
pub(crate) struct Desk360 {
    pub(super) shared: Arc<Shared>,
    /// Per-IP fixed rate windows (page 004: 100 requests a minute per IP on Business).
    pub(super) windows: Mutex<HashMap<IpAddr, Window>>,
    pub(super) auth: Mutex<Auth>,
    /// Desk360 account changes ([`crate::Churn`] and [`crate::Sandbox::create_ticket`]): held
    /// while a change is drawn and applied, so changes happen in one deterministic sequence.
    pub(super) churn: Mutex<ChurnState>,
}

/// What every Desk360 handler and layer is given.
pub(super) type App = Arc<Desk360>;

impl Desk360 {
    /// The emulator at start: the static token of [`crate::Credentials`] issued when the sandbox
    /// started, no window used, no churn yet.
    pub fn new(shared: Arc<Shared>) -> Self {
        let auth = Auth::new(&shared.credentials.desk360_token, shared.origin);
        let churn = ChurnState::new(shared.config.seed);
        Self {
            shared,
            windows: Mutex::new(HashMap::new()),
            auth: Mutex::new(auth),
            churn: Mutex::new(churn),
        }
    }

    /// [`crate::Sandbox::expire_desk360_token`]: the token in force stops working now.
    pub fn expire_token(&self) {
        lock(&self.auth).expire();
    }

    /// [`crate::Sandbox::desk360_token`]: the token accepted now, if any.
    pub fn current_token(&self) -> Option<String> {
        lock(&self.auth).current(self.shared.config.desk360_token_ttl)
    }

    /// [`crate::Sandbox::create_ticket`]: one ticket created by hand, drawn from the churn
    /// generator so by-hand creations are deterministic too.
    pub fn create_ticket(&self, product_id: i64) -> Option<(i64, i64)> {
        churn::create_ticket(&mut lock(&self.churn), &self.shared, product_id)
    }

    /// [`crate::Sandbox::churn_log`]: every change churn made so far.
    pub fn churn_log(&self) -> Vec<ChurnEvent> {
        lock(&self.churn).log.clone()
    }
}
