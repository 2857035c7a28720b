//! The Deskie emulator's state, given to every handler and layer: the shared sandbox state, the
//! account's weighted window, the `delayed_apply` bookkeeping and the account's data.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use base64::Engine as _;

use super::account::Account;
use crate::snapshot::DeskieSnapshot;
use crate::state::{Shared, Window, lock};

/// The Deskie emulator's state: the shared sandbox state, the account's weighted window, the
/// `delayed_apply` bookkeeping and the account's data. The routers' state is an `Arc` of it.
pub(crate) struct Deskie {
    pub(super) shared: Arc<Shared>,
    /// The account's fixed window (page 002: a budget per account, GET 1, writes 2).
    pub(super) window: Mutex<Window>,
    /// Tickets whose first write carrying content was already held by `delayed_apply`.
    pub(super) delayed_tickets: Mutex<BTreeSet<(i64, i64)>>,
    pub(super) account: Mutex<Account>,
}

/// What every Deskie handler and layer is given.
pub(super) type App = Arc<Deskie>;

impl Deskie {
    /// An empty account with a fresh window.
    pub fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            window: Mutex::new(Window {
                index: u64::MAX,
                used: 0,
            }),
            delayed_tickets: Mutex::new(BTreeSet::new()),
            account: Mutex::new(Account::new()),
        }
    }

    /// [`crate::Sandbox::deskie_snapshot`]: the full account.
    pub fn snapshot(&self) -> DeskieSnapshot {
        lock(&self.account).snapshot()
    }

    /// Whether the request carries the account's basic auth (`staff_email:api_key`).
    pub(super) fn authorized(&self, headers: &HeaderMap) -> bool {
        let shared = &self.shared;
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .ok()
            })
            .and_then(|b| String::from_utf8(b).ok())
            .is_some_and(|pair| {
                pair == format!(
                    "{}:{}",
                    shared.credentials.deskie_staff_email, shared.credentials.deskie_api_key
                )
            })
    }
}
