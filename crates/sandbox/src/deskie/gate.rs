//! What every Deskie API request goes through once, as one axum middleware around every API
//! route, the 404 fallback and the 405 answers: basic auth (page 002, "Access to data"), the
//! account's weighted fixed window (page 002, "Limits": GET 1, writes 2), the refusals and faults
//! decided before anything is applied (outage, 429 storm, 401, 429, 5xx), the body read once
//! (`deskie/payload.rs`), the faults decided around the work (`delayed_apply`, a response lost
//! after commit), the journal, and the rate headers every answer carries.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, Response, StatusCode};
use axum::middleware::Next;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::app::App;
use super::payload::{Payload, PerRequest, read_payload};
use super::reply::Reply;
use crate::config::Faults;
use crate::data::parse_refs;
use crate::respond::{
    Fault, Faulted, dropped_response, fault_of, json_response, proxy_error_page, set_header,
};
use crate::state::Server;
use crate::state::{JournalEntry, Shared, Window, entry_for, lock};

/// Journals, meters and fault-injects one API request (see the module notes).
pub(super) async fn gate(State(app): State<App>, req: Request, next: Next) -> Response<Body> {
    let shared = &app.shared;
    let is_write = matches!(*req.method(), Method::POST | Method::PUT | Method::DELETE);
    let cost = if is_write { 2 } else { 1 };
    let mut journal = entry_for(Server::Deskie, &req, cost);
    shared.delay().await;
    // One reading per request: a switch made while the request runs applies to the next one.
    let per = PerRequest {
        faults: shared.faults(),
        readings: shared.readings(),
    };
    let limit = shared.config.deskie_limit;
    let authorized = app.authorized(req.headers());

    // Charge the window (or refuse) before anything is applied.
    let (index, left) = shared.window_now();
    journal.window = Some(index);
    let storm = per.faults.deskie_429_retry_after;
    let charge = authorized && !per.faults.deskie_down && storm.is_none();
    let (allowed, left_units) = charge_window(&app, &per.faults, (index, left), cost, charge);

    let refused = refusal(shared, &per.faults, authorized, allowed);
    let (mut resp, journaled) = match refused {
        Some(resp) => (resp, false),
        None => serve(&app, per, req, next, is_write, &journal).await,
    };
    set_header(&mut resp, "rate_limit_per_minute", &limit.to_string());
    set_header(&mut resp, "api_calls_left", &left_units.to_string());
    set_header(
        &mut resp,
        "retry_after",
        &shared.fmt_secs(storm.unwrap_or(left)),
    );
    if !journaled {
        let fault = fault_of(&resp);
        journal.status = if fault == Some("dropped") {
            0
        } else {
            resp.status().as_u16()
        };
        journal.fault = fault.map(str::to_owned);
        shared.record(journal);
    }
    resp
}

/// Charges `cost` units to the account's window when `charge` and they fit; answers whether the
/// request may go on and the units left (0 during a 429 storm).
fn charge_window(
    app: &App,
    faults: &Faults,
    (index, left): (u64, Duration),
    cost: u32,
    charge: bool,
) -> (bool, u32) {
    let shared = &app.shared;
    let limit = shared.config.deskie_limit;
    let other_share = faults.other_consumer_share.clamp(0.0, 1.0) * f64::from(limit);
    let mut window = lock(&app.window);
    if window.index != index {
        // The other user spends its share at the window start, or (spread) evenly over it:
        // then `used` counts only our own units and the other's are added as time passes.
        let at_start = if faults.other_consumer_spread {
            0.0
        } else {
            other_share.floor()
        };
        *window = Window {
            index,
            used: at_start as u32,
        };
    }
    let other_now = if faults.other_consumer_spread {
        let length = shared.config.window.as_secs_f64().max(1e-9);
        let elapsed = (1.0 - left.as_secs_f64() / length).clamp(0.0, 1.0);
        (other_share * elapsed).floor() as u32
    } else {
        0
    };
    let fits = window.used.saturating_add(other_now).saturating_add(cost) <= limit;
    if charge && fits {
        window.used += cost;
    }
    let left_units = if faults.deskie_429_retry_after.is_some() {
        0
    } else {
        limit.saturating_sub(window.used.saturating_add(other_now))
    };
    (fits || !charge, left_units)
}

/// The answer of a request refused before anything is applied, if it is.
fn refusal(
    shared: &Shared,
    faults: &Faults,
    authorized: bool,
    allowed: bool,
) -> Option<Response<Body>> {
    let rate_limited = || {
        Faulted(
            json_response(
                StatusCode::TOO_MANY_REQUESTS,
                &json!({"errors": {"rate_limit": "429 Too Many Requests"}}),
            ),
            Some("rate_limited"),
        )
    };
    let resp = if faults.deskie_down {
        // An outage looks like the proxy's page, not like an API answer.
        Faulted(
            proxy_error_page(StatusCode::SERVICE_UNAVAILABLE),
            Some("down"),
        )
    } else if faults.deskie_429_retry_after.is_some() {
        // A 429 storm: everything is refused, nothing is charged.
        rate_limited()
    } else if !authorized {
        Faulted(
            json_response(
                StatusCode::UNAUTHORIZED,
                &json!({"errors": {"authorization": "invalid staff_email or api_key"}}),
            ),
            None,
        )
    } else if !allowed {
        rate_limited()
    } else if shared.chance(faults.server_error_rate) {
        let status = shared.pick_5xx();
        let resp = if status == StatusCode::INTERNAL_SERVER_ERROR {
            json_response(status, &json!({"errors": {"server": "internal error"}}))
        } else {
            proxy_error_page(status) // 502/503: the proxy's HTML page
        };
        Faulted(resp, Some("5xx"))
    } else {
        return None;
    };
    Some(resp.into_response())
}

/// Reads the body, then runs the route's handler — held past the client's timeout under
/// `delayed_apply`, its answer lost under `drop_after_commit_rate`. Answers the response and
/// whether it was journaled already (a held write journals itself).
async fn serve(
    app: &App,
    per: PerRequest,
    req: Request,
    next: Next,
    is_write: bool,
    journal: &JournalEntry,
) -> (Response<Body>, bool) {
    let (parts, body) = req.into_parts();
    let payload = if parts.method == Method::GET {
        Payload::default()
    } else {
        match read_payload(Request::from_parts(parts.clone(), body)).await {
            Ok(mut payload) => {
                super::files::share_generated(&app.shared, &mut payload.uploads);
                payload
            }
            Err(answer) => return (Reply(answer).into_response(), false),
        }
    };
    let delay = if is_write {
        delayed(app, &per.faults, &payload.value)
    } else {
        None
    };
    let drop_rate = per.faults.drop_after_commit_rate;
    let mut req = Request::from_parts(parts, Body::empty());
    req.extensions_mut().insert(per);
    req.extensions_mut().insert(payload);
    if let Some(delay) = delay {
        return (held(app, req, next, delay, journal.clone()).await, true);
    }
    let resp = next.run(req).await;
    if is_write && resp.status().is_success() && app.shared.chance(drop_rate) {
        let mut dropped = dropped_response();
        dropped.extensions_mut().insert(Fault("dropped"));
        return (dropped, false);
    }
    (resp, false)
}

/// Runs a held write: after `delay`, applied, then answered (to a socket the client has
/// probably closed). The work runs in its own task so that a dropped connection cannot cancel
/// it, and it journals itself with the fault `"delayed"`.
async fn held(
    app: &App,
    req: Request,
    next: Next,
    delay: Duration,
    mut journal: JournalEntry,
) -> Response<Body> {
    let shared = app.shared.clone();
    let task = tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let resp = next.run(req).await;
        journal.status = resp.status().as_u16();
        journal.fault = Some("delayed".into());
        shared.record(journal);
        resp
    });
    let resp = match task.await {
        Ok(resp) => resp,
        Err(_) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"errors": {"server": "internal error"}}),
        ),
    };
    Faulted(resp, Some("delayed")).into_response()
}

/// Whether the `delayed_apply` fault holds this write, and for how long: the first write
/// carrying content (a `ref:` marker in `content`, `content_html` or `subject`) of each listed
/// ticket, then a drawn share of the other writes.
fn delayed(app: &App, faults: &Faults, payload: &Value) -> Option<Duration> {
    let d = faults.delayed_apply.as_ref()?;
    let tickets: Vec<(i64, i64)> = payload
        .as_object()
        .into_iter()
        .flat_map(|root| root.values())
        .filter_map(Value::as_object)
        .flat_map(|o| {
            ["content", "content_html", "subject"]
                .into_iter()
                .filter_map(|k| o.get(k).and_then(Value::as_str))
                .collect::<Vec<_>>()
        })
        .flat_map(parse_refs)
        .map(|(p, t, _)| (p, t))
        .filter(|key| d.tickets.contains(key))
        .collect();
    if !tickets.is_empty() {
        let mut seen = lock(&app.delayed_tickets);
        let mut first = false;
        for key in tickets {
            first |= seen.insert(key);
        }
        if first {
            return Some(d.delay);
        }
    }
    app.shared.chance(d.share).then_some(d.delay)
}
