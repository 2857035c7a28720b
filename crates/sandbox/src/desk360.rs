//! The Desk360 emulator (vendor page 004): bearer auth and `/v1/login`, products, agents, me,
//! types, reasons, the paged ticket list with its `Link` header, ticket details with embedded
//! messages, the per-IP fixed-window limit and the documented error bodies.
//!
//! One axum `Router` per resource, merged by [`router`]:
//! - `desk360/login.rs` — `/v1/login`; `desk360/auth.rs` — the account's token (expiry, a new
//!   one at the next login) and the login-failure windows;
//! - `desk360/account.rs` — `/v1/products`, `/v1/agents`, `/v1/me`, `/v1/types`, `/v1/reasons`;
//! - `desk360/tickets.rs` — the ticket list (`Link` header), details and status logs;
//! - `desk360/files.rs` — the attachment files (public, behind the token, or signed);
//! - `desk360/churn.rs` — changes to the account while a run lists it ([`crate::Churn`]);
//! - `desk360/gate.rs` — what every API request goes through once: the journal, churn, latency,
//!   the per-IP window, server-error faults, the rate headers; and the token check;
//! - `desk360/app.rs` — the emulator's state; `desk360/answers.rs` — the documented errors.
//!
//! Every request counts toward the caller's window, invalid ones too (401, 404, 405…), exactly as
//! the page warns: the metering layer wraps the routes, the 404 fallback and the 405 answers. The
//! token is checked before the route is known, so a wrong token on an unknown path is a 401; 404
//! (`not_found_exception`) and 405 (`method_not_allowed_exception`) carry the documented bodies.
//! `HEAD` is answered wherever `GET` is (axum's method routing, and what Laravel, behind the real
//! API, does), without a body.
//!
//! It also plays a live account: the readings of the page's open points ([`crate::Readings`],
//! read per request), churn while a run lists ([`crate::Churn`]), `Link` loops, token expiry and
//! a new token at the next login, and attachment files (deterministic bytes; public, behind the
//! token or signed and expiring). Each choice names its page section where it is made.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;

use crate::state::MAX_BODY;
use answers::{unknown_route, wrong_method};

mod account;
mod answers;
mod app;
mod auth;
mod churn;
mod files;
mod gate;
mod login;
mod tickets;

pub(crate) use app::Desk360;

/// The Desk360 emulator's routes, layers and fallbacks, ready to serve.
pub(crate) fn router(app: std::sync::Arc<Desk360>) -> Router {
    // Behind the token: every route but the login, the unknown paths and wrong methods included
    // (the token is checked before the route is known, as the hand-written routing did).
    let api = Router::new()
        .merge(account::routes())
        .merge(tickets::routes())
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(from_fn_with_state(app.clone(), gate::require_token));
    let login = login::routes().method_not_allowed_fallback(wrong_method);
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
