//! What every Desk360 API request goes through once, as two axum middlewares:
//! - [`meter`] wraps every API route, the 404 fallback and the 405 answers: the journal entry,
//!   a churn step, latency, the per-IP fixed window (page 004, "Rate limiting": every request
//!   counts, invalid ones too), the server-error fault, and the `X-RateLimit-*` headers;
//! - [`require_token`] wraps everything but `/v1/login`: the bearer token check.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Response, StatusCode};
use axum::middleware::Next;
use axum::response::IntoResponse;

use super::answers::{error, unauthenticated};
use super::app::App;
use super::auth::TokenCheck;
use super::churn;
use crate::respond::{Faulted, fault_of, proxy_error_page, set_header};
use crate::state::Server;
use crate::state::{Window, entry_for, lock};

/// The client's address, put in the request's extensions by [`meter`] for the handlers that
/// need it (the login's failure window).
#[derive(Debug, Clone, Copy)]
pub(super) struct ClientIp(pub IpAddr);

/// The client's address, from axum's connect info (loopback if somehow missing).
fn peer(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// Journals, meters and fault-injects one API request (see the module notes).
pub(super) async fn meter(State(app): State<App>, mut req: Request, next: Next) -> Response<Body> {
    let shared = &app.shared;
    let mut journal = entry_for(Server::Desk360, &req, 1);
    let ip = peer(&req);
    req.extensions_mut().insert(ClientIp(ip));
    churn::tick(&mut lock(&app.churn), shared);
    shared.delay().await;

    // Every request counts, whatever happens next.
    let (index, left) = shared.window_now();
    journal.window = Some(index);
    let limit = shared.config.desk360_limit;
    let (allowed, remaining) = {
        let mut windows = lock(&app.windows);
        let w = windows.entry(ip).or_default();
        if w.index != index {
            *w = Window { index, used: 0 };
        }
        w.used = w.used.saturating_add(1);
        (w.used <= limit, limit.saturating_sub(w.used))
    };
    let mut resp = if !allowed {
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests_exception",
            "Too Many Attempts.",
        );
        set_header(&mut r, "retry-after", &shared.fmt_secs(left));
        Faulted(r, Some("rate_limited")).into_response()
    } else if shared.chance(shared.faults().server_error_rate) {
        Faulted(server_error(shared.pick_5xx()), Some("5xx")).into_response()
    } else {
        next.run(req).await
    };
    set_header(&mut resp, "x-ratelimit-limit", &limit.to_string());
    set_header(&mut resp, "x-ratelimit-remaining", &remaining.to_string());
    set_header(
        &mut resp,
        "x-ratelimit-reset",
        &shared.fmt_window_end_epoch(index),
    );
    journal.status = resp.status().as_u16();
    journal.fault = fault_of(&resp).map(str::to_owned);
    shared.record(journal);
    resp
}

/// A server-error fault: 500 with the documented JSON body, 502/503 with a proxy's HTML page.
fn server_error(status: StatusCode) -> Response<Body> {
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        error(status, "internal_server_error", "Server Error")
    } else {
        proxy_error_page(status)
    }
}

/// Lets a request with the account's valid token through. An expired token gets exactly the
/// answer of an invalid one (page 004 has no other code for it); only the journal tells them
/// apart (`token_expired`).
pub(super) async fn require_token(
    State(app): State<App>,
    req: Request,
    next: Next,
) -> Response<Body> {
    match check_token(&app, req.headers()) {
        TokenCheck::Valid => next.run(req).await,
        TokenCheck::Expired => Faulted(unauthenticated(), Some("token_expired")).into_response(),
        TokenCheck::Invalid => unauthenticated(),
    }
}

/// Checks the `Authorization: Bearer …` header of a request against the account's token.
pub(super) fn check_token(app: &App, headers: &HeaderMap) -> TokenCheck {
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    lock(&app.auth).check(presented, app.shared.config.desk360_token_ttl)
}
