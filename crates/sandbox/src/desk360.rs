//! The Desk360 emulator (vendor page 004): bearer auth and `/v1/login`, products, agents, me,
//! types, reasons, the paged ticket list with its `Link` header, ticket details with embedded
//! messages, the per-IP fixed-window limit and the documented error bodies.
//!
//! One axum `Router` per resource, merged by [`router`]:
//! - `desk360/auth.rs` — `/v1/login`, the account's token (expiry, a new one at the next login);
//! - `desk360/account.rs` — `/v1/products`, `/v1/agents`, `/v1/me`, `/v1/types`, `/v1/reasons`;
//! - `desk360/tickets.rs` — the ticket list (`Link` header), details and status logs;
//! - `desk360/files.rs` — the attachment files (public, behind the token, or signed);
//! - `desk360/churn.rs` — changes to the account while a run lists it ([`crate::Churn`]);
//! - `desk360/gate.rs` — what every API request goes through once: the journal, churn, latency,
//!   the per-IP window, server-error faults, the rate headers; and the token check.
//!
//! Every request counts toward the caller's window, invalid ones too (401, 404, 405…), exactly as
//! the page warns: the metering layer wraps the routes, the 404 fallback and the 405 answers. The
//! token is checked before the route is known, so a wrong token on an unknown path is a 401; 404
//! (`not_found_exception`) and 405 (`method_not_allowed_exception`) carry the documented bodies.
//!
//! It also plays a live account: the readings of the page's open points ([`crate::Readings`],
//! read per request), churn while a run lists ([`crate::Churn`]), `Link` loops, token expiry and
//! a new token at the next login, and attachment files (deterministic bytes; public, behind the
//! token or signed and expiring). Each choice names its page section where it is made.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{Response, StatusCode};
use axum::middleware::from_fn_with_state;
use serde_json::json;

use crate::ChurnEvent;
use crate::respond::{Faulted, json_response};
use crate::state::{MAX_BODY, Shared, Window, lock};

mod account;
mod auth;
mod churn;
mod files;
mod gate;
mod tickets;

const DOC_URL: &str = "https://docs.desk360.com/api";

/// The Desk360 emulator's state: the shared sandbox state plus the account's own (per-IP
/// windows, the token and login failures, churn). The routers' state is an `Arc` of it.
pub(crate) struct Desk360 {
    shared: Arc<Shared>,
    /// Per-IP fixed rate windows (page 004: 100 requests a minute per IP on Business).
    windows: Mutex<HashMap<IpAddr, Window>>,
    auth: Mutex<auth::Auth>,
    /// Desk360 account changes ([`crate::Churn`] and [`crate::Sandbox::create_ticket`]): held
    /// while a change is drawn and applied, so changes happen in one deterministic sequence.
    churn: Mutex<churn::ChurnState>,
}

/// What every Desk360 handler and layer is given.
type App = Arc<Desk360>;

impl Desk360 {
    /// The emulator at start: the static token of [`crate::Credentials`] issued when the sandbox
    /// started, no window used, no churn yet.
    pub fn new(shared: Arc<Shared>) -> Self {
        let auth = auth::Auth::new(&shared.credentials.desk360_token, shared.origin);
        let churn = churn::ChurnState::new(shared.config.seed);
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
        churn::create_ticket(self, product_id)
    }

    /// [`crate::Sandbox::churn_log`]: every change churn made so far.
    pub fn churn_log(&self) -> Vec<ChurnEvent> {
        lock(&self.churn).log.clone()
    }
}

/// The Desk360 emulator's routes, layers and fallbacks, ready to serve.
pub(crate) fn router(app: App) -> Router {
    // Behind the token: every route but the login, the unknown paths and wrong methods included
    // (the token is checked before the route is known, as the hand-written routing did).
    let api = Router::new()
        .merge(account::routes())
        .merge(tickets::routes())
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(from_fn_with_state(app.clone(), gate::require_token));
    let login = auth::routes().method_not_allowed_fallback(wrong_method);
    // Files are served like a CDN: not metered, not counted by churn (`desk360/files.rs`).
    let attachments = files::routes()
        .method_not_allowed_fallback(wrong_method)
        .layer(from_fn_with_state(app.clone(), files::journal));
    api.merge(login)
        .layer(from_fn_with_state(app.clone(), gate::meter))
        .merge(attachments)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(app)
}

/// A documented error body (page 004, "Errors"): `{"error": {code, message, doc_url}}`.
fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json_response(
        status,
        &json!({"error": {"code": code, "message": message, "doc_url": DOC_URL}}),
    )
}

/// The documented answer to a missing, wrong or expired token (page 004, error table: 401,
/// `authentication_exception`).
fn unauthenticated() -> Response<Body> {
    error(
        StatusCode::UNAUTHORIZED,
        "authentication_exception",
        "Unauthenticated. The token is missing or invalid.",
    )
}

/// A path no route serves (page 004: `not_found_exception`).
async fn unknown_route() -> Response<Body> {
    error(
        StatusCode::NOT_FOUND,
        "not_found_exception",
        "The requested URL was not found. Check the endpoint for a typo.",
    )
}

/// A known path with a method it does not serve (page 004: `method_not_allowed_exception`).
/// Creating tickets/types/reasons exists in the API but never matters to a migration: the
/// emulator serves reads only, and a POST to a list is reported as a wrong method.
async fn wrong_method() -> Response<Body> {
    method_not_allowed()
}

fn method_not_allowed() -> Response<Body> {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed_exception",
        "The method is not supported for this route.",
    )
}

/// An unknown product or ticket (page 004: `model_not_found_exception`).
fn model_not_found() -> Faulted {
    Faulted(
        error(
            StatusCode::NOT_FOUND,
            "model_not_found_exception",
            "No query results for model.",
        ),
        None,
    )
}

/// A parameter the API refuses (page 004: 400 `failed_validation`).
fn validation(message: &str) -> Faulted {
    Faulted(
        error(StatusCode::BAD_REQUEST, "failed_validation", message),
        None,
    )
}
