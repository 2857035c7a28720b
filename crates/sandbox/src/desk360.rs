//! The Desk360 emulator (vendor page 004): bearer auth and `/v1/login`, products, agents, me,
//! types, reasons, the paged ticket list with its `Link` header, ticket details with embedded
//! messages, the per-IP fixed-window limit and the documented error bodies.
//!
//! Every request counts toward the caller's window, invalid ones too (401, 404, 405…), exactly as
//! the page warns. Routing is done by hand so 404 (`not_found_exception`) and 405
//! (`method_not_allowed_exception`) carry the documented bodies.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::server::{
    Shared, Window, entry_for, json_response, lock, peer, proxy_error_page, raw_response,
    set_header,
};
use crate::{ChurnEvent, Server, TicketData};

/// Tickets per list page, fixed by Desk360.
pub(crate) const PAGE_SIZE: usize = 20;
/// Wrong logins tolerated per window before `too_many_attempts`.
const MAX_LOGIN_FAILURES: u32 = 5;
const DOC_URL: &str = "https://docs.desk360.com/api";

/// Per-IP rate windows and login-failure windows.
#[derive(Debug, Default)]
pub(crate) struct Desk360State {
    windows: HashMap<IpAddr, Window>,
    login_failures: HashMap<IpAddr, Window>,
}

/// Where [`crate::Churn`] stands: Desk360 requests counted, changes made, and the generator the
/// changes are drawn from (seeded from the sandbox seed, so the sequence of changes is the same on
/// every run whatever the timing).
pub(crate) struct ChurnState {
    requests: u64,
    updates: u32,
    creates: u32,
    /// The kind of the next change while both kinds remain (they alternate).
    next_is_create: bool,
    rng: fastrand::Rng,
    pub log: Vec<ChurnEvent>,
}

impl ChurnState {
    pub fn new(seed: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed ^ 0xc4a2_9e5d_0b17_3f61);
        Self {
            requests: 0,
            updates: 0,
            creates: 0,
            next_is_create: rng.bool(),
            rng,
            log: Vec::new(),
        }
    }
}

/// Counts one Desk360 request (attachment downloads are not counted) and, when [`crate::Churn`]
/// says a change is due, applies it before the request is served: after `start_after` requests,
/// one change every `every` requests (on request `start_after + k·every`, k ≥ 1), alternating
/// updates and creations (the first kind drawn from the seed) until both counts are done.
fn churn_tick(shared: &Shared) {
    let Some(churn) = &shared.config.churn else {
        return;
    };
    let mut st = lock(&shared.churn);
    st.requests += 1;
    let n = st.requests;
    let every = churn.every.max(1);
    if n <= churn.start_after || !(n - churn.start_after).is_multiple_of(every) {
        return;
    }
    let updates_left = st.updates < churn.updates;
    let creates_left = st.creates < churn.creates;
    let create = match (updates_left, creates_left) {
        (false, false) => return,
        (true, true) => {
            let c = st.next_is_create;
            st.next_is_create = !c;
            c
        }
        (_, creates_left) => creates_left,
    };
    let seed = st.rng.u64(..);
    let key = if create {
        st.creates += 1;
        let products: Vec<i64> = shared.dataset().products.iter().map(|p| p.id).collect();
        if products.is_empty() {
            return;
        }
        let product_id = products[st.rng.usize(..products.len())];
        shared.change_dataset(|ds| ds.create_ticket(product_id, seed))
    } else {
        st.updates += 1;
        shared.change_dataset(|ds| ds.append_random_message(seed))
    };
    if let Some(key) = key {
        tracing::debug!(?key, create, at_request = n, "sandbox churn");
        st.log.push(ChurnEvent {
            key,
            created: create,
            at_request: n,
        });
    }
}

/// [`crate::Sandbox::create_ticket`]: one ticket created by hand, drawn from the churn generator
/// so by-hand creations are deterministic too.
pub(crate) fn create_ticket(shared: &Shared, product_id: i64) -> Option<(i64, i64)> {
    let mut st = lock(&shared.churn);
    let seed = st.rng.u64(..);
    shared.change_dataset(|ds| ds.create_ticket(product_id, seed))
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json_response(
        status,
        &json!({"error": {"code": code, "message": message, "doc_url": DOC_URL}}),
    )
}

/// Entry point of every Desk360 request.
pub(crate) async fn entry(State(shared): State<Arc<Shared>>, req: Request) -> Response<Body> {
    if req.uri().path().starts_with("/attachments/") {
        // The files behind the dataset's attachment URLs: served like a CDN (no token, no rate
        // limit, cost 0), with the declared size, so a client can HEAD or download them.
        let mut journal = entry_for(Server::Desk360, &req, 0);
        shared.delay().await;
        let resp = attachment(&shared, &req);
        journal.status = resp.status().as_u16();
        shared.record(journal);
        return resp;
    }
    let mut journal = entry_for(Server::Desk360, &req, 1);
    let ip = peer(&req);
    churn_tick(&shared);
    shared.delay().await;

    // Every request counts, whatever happens next.
    let (index, left) = shared.window_now();
    let limit = shared.config.desk360_limit;
    let (allowed, remaining) = {
        let mut st = lock(&shared.desk360);
        let w = st.windows.entry(ip).or_default();
        if w.index != index {
            *w = Window { index, used: 0 };
        }
        w.used = w.used.saturating_add(1);
        (w.used <= limit, limit.saturating_sub(w.used))
    };
    let (mut resp, fault) = if !allowed {
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests_exception",
            "Too Many Attempts.",
        );
        set_header(&mut r, "retry-after", &shared.fmt_secs(left));
        (r, Some("rate_limited"))
    } else if shared.chance(shared.faults().server_error_rate) {
        (server_error(shared.pick_5xx()), Some("5xx"))
    } else {
        handle(&shared, ip, req).await
    };
    set_header(&mut resp, "x-ratelimit-limit", &limit.to_string());
    set_header(&mut resp, "x-ratelimit-remaining", &remaining.to_string());
    set_header(
        &mut resp,
        "x-ratelimit-reset",
        &shared.fmt_window_end_epoch(index),
    );
    journal.status = resp.status().as_u16();
    journal.fault = fault.map(str::to_owned);
    shared.record(journal);
    resp
}

fn attachment(shared: &Shared, req: &Request) -> Response<Body> {
    let Some(size) = shared.dataset().attachment_size(req.uri().path()) else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found_exception",
            "No such attachment.",
        );
    };
    let body = if req.method() == Method::HEAD {
        Body::empty()
    } else {
        const CHUNK: u64 = 64 * 1024;
        let chunks = size.div_ceil(CHUNK);
        Body::from_stream(futures::stream::iter((0..chunks).map(move |i| {
            let len = CHUNK.min(size - i * CHUNK) as usize;
            Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![0u8; len]))
        })))
    };
    let mut resp = Response::new(body);
    set_header(&mut resp, "content-type", "application/octet-stream");
    set_header(&mut resp, "content-length", &size.to_string());
    resp
}

fn server_error(status: StatusCode) -> Response<Body> {
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        error(status, "internal_server_error", "Server Error")
    } else {
        proxy_error_page(status)
    }
}

type Answer = (Response<Body>, Option<&'static str>);

async fn handle(shared: &Shared, ip: IpAddr, req: Request) -> Answer {
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let method = req.method().clone();
    let query = req.uri().query().unwrap_or("").to_owned();

    // The page documents login as GET in one place and POST in the curl sample: accept both.
    if segments == ["v1", "login"] {
        if method != Method::GET && method != Method::POST {
            return (method_not_allowed(), None);
        }
        return login(shared, ip, req).await;
    }

    let token_ok = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| t.trim() == shared.credentials.desk360_token);
    if !token_ok {
        return (
            error(
                StatusCode::UNAUTHORIZED,
                "authentication_exception",
                "Unauthenticated. The token is missing or invalid.",
            ),
            None,
        );
    }

    let ds = shared.dataset();
    let known = matches!(
        segments.as_slice(),
        ["v1", "products"]
            | ["v1", "agents"]
            | ["v1", "me"]
            | ["v1", "agents", "me"]
            | ["v1", "types"]
            | ["v1", "reasons"]
            | ["v1", "products", _, "tickets"]
            | ["v1", "products", _, "tickets", _]
            | ["v1", "products", _, "tickets", _, "logs"]
    );
    if !known {
        return (
            error(
                StatusCode::NOT_FOUND,
                "not_found_exception",
                "The requested URL was not found. Check the endpoint for a typo.",
            ),
            None,
        );
    }
    if method != Method::GET {
        // Creating tickets/types/reasons exists in the API but never matters to a migration:
        // the emulator serves reads only, and a POST to a list is reported as a wrong method.
        return (method_not_allowed(), None);
    }
    let ok = |v: Value| (json_response(StatusCode::OK, &v), None);
    match segments.as_slice() {
        ["v1", "products"] => ok(Value::Array(
            ds.products
                .iter()
                .map(|p| json!({"id": p.id, "name": p.name, "logo": p.logo}))
                .collect(),
        )),
        ["v1", "agents"] => ok(Value::Array(
            ds.agents
                .iter()
                .map(|a| json!({"id": a.id, "name": a.name, "email": a.email, "avatar": a.avatar}))
                .collect(),
        )),
        // Page 004 titles it `GET /v1/me` and its curl sample calls `/v1/agents/me`: both answer.
        ["v1", "me"] | ["v1", "agents", "me"] => ok(current_agent(shared, &ds)),
        ["v1", "types"] => ok(Value::Array(
            ds.types
                .iter()
                .map(|t| {
                    json!({"id": t.id, "product_id": t.product_id, "title": t.title,
                        "description": t.title, "is_active": true, "is_custom": false,
                        "created_at": "2019-07-11 12:43:24", "updated_at": "2020-11-02 07:30:05"})
                })
                .collect(),
        )),
        ["v1", "reasons"] => ok(Value::Array(
            ds.reasons
                .iter()
                .map(|r| {
                    json!({"id": r.id, "product_id": r.product_id, "name": r.name,
                        "is_active": true, "created_at": "2019-07-09 13:40:00",
                        "updated_at": "2020-05-25 14:08:53"})
                })
                .collect(),
        )),
        ["v1", "products", pid, "tickets"] => list_tickets(shared, pid, &path, &query),
        ["v1", "products", pid, "tickets", tid] => ticket_detail(shared, pid, tid),
        ["v1", "products", pid, "tickets", tid, "logs"] => ticket_logs(shared, pid, tid),
        _ => (method_not_allowed(), None),
    }
}

/// The agent the token belongs to (page 004, "Get Current Agent"): the account's first agent,
/// with its address in the account's own domain (`<local>@<account>.example`), so two sandboxes
/// serving different accounts ([`crate::SandboxConfig::desk360_account`]) answer differently
/// while the default account `acme` answers exactly the generated agent (`jane@acme.example`).
fn current_agent(shared: &Shared, ds: &crate::Dataset) -> Value {
    let account = &shared.config.desk360_account;
    match ds.agents.first() {
        Some(a) => {
            let local = a.email.split('@').next().unwrap_or("api");
            json!({"id": a.id, "name": a.name, "email": format!("{local}@{account}.example"),
                "avatar": a.avatar})
        }
        None => json!({"id": 1, "name": format!("API ({account})"),
            "email": format!("api@{account}.example"), "avatar": null}),
    }
}

fn method_not_allowed() -> Response<Body> {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed_exception",
        "The method is not supported for this route.",
    )
}

fn model_not_found() -> Answer {
    (
        error(
            StatusCode::NOT_FOUND,
            "model_not_found_exception",
            "No query results for model.",
        ),
        None,
    )
}

fn validation(message: &str) -> Answer {
    (
        error(StatusCode::BAD_REQUEST, "failed_validation", message),
        None,
    )
}

async fn login(shared: &Shared, ip: IpAddr, req: Request) -> Answer {
    let query = req.uri().query().unwrap_or("").to_owned();
    let body = axum::body::to_bytes(req.into_body(), crate::server::MAX_BODY)
        .await
        .unwrap_or_default();
    let mut email = None;
    let mut password = None;
    if let Ok(v) = serde_json::from_slice::<Value>(&body) {
        email = v.get("email").and_then(Value::as_str).map(str::to_owned);
        password = v.get("password").and_then(Value::as_str).map(str::to_owned);
    }
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "email" if email.is_none() => email = Some(v.into_owned()),
            "password" if password.is_none() => password = Some(v.into_owned()),
            _ => {}
        }
    }
    let (index, left) = shared.window_now();
    let failures = {
        let mut st = lock(&shared.desk360);
        let w = st.login_failures.entry(ip).or_default();
        if w.index != index {
            *w = Window { index, used: 0 };
        }
        w.used
    };
    if failures >= MAX_LOGIN_FAILURES {
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            "Too many wrong login attempts; wait for a minute.",
        );
        set_header(&mut r, "retry-after", &shared.fmt_secs(left));
        return (r, Some("too_many_attempts"));
    }
    let (Some(email), Some(password)) = (email, password) else {
        return validation("The email and password fields are required.");
    };
    if email == shared.credentials.desk360_email && password == shared.credentials.desk360_password
    {
        return (
            json_response(
                StatusCode::OK,
                &json!({"access_token": shared.credentials.desk360_token, "token_type": "Bearer"}),
            ),
            None,
        );
    }
    {
        let mut st = lock(&shared.desk360);
        let w = st.login_failures.entry(ip).or_default();
        w.used += 1;
    }
    (
        error(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "The email or password is wrong.",
        ),
        None,
    )
}

/// Parsed list filters.
#[derive(Default)]
struct Filters {
    start_date: Option<String>,
    end_date: Option<String>,
    status: Option<i64>,
    priority: Option<i64>,
    agent_id: Option<i64>,
    type_id: Option<i64>,
    reason_id: Option<i64>,
    id: Option<i64>,
    /// Case-insensitive substring searches on list fields: (`email` | `name` | `subject`, text).
    searches: Vec<(&'static str, String)>,
    platform: Option<String>,
}

impl Filters {
    fn is_empty(&self) -> bool {
        self.start_date.is_none()
            && self.end_date.is_none()
            && self.status.is_none()
            && self.priority.is_none()
            && self.agent_id.is_none()
            && self.type_id.is_none()
            && self.reason_id.is_none()
            && self.id.is_none()
            && self.searches.is_empty()
            && self.platform.is_none()
    }

    fn matches(&self, t: &TicketData) -> bool {
        let day = &t.created_at[..10.min(t.created_at.len())];
        self.start_date.as_deref().is_none_or(|d| day >= d)
            && self.end_date.as_deref().is_none_or(|d| day <= d)
            && self.status.is_none_or(|v| t.status == v)
            && self.priority.is_none_or(|v| t.priority == v)
            && self.agent_id.is_none_or(|v| t.agent_id == v)
            && self.type_id.is_none_or(|v| t.type_id == v)
            && self.reason_id.is_none_or(|v| t.reason_id == v)
            && self.id.is_none_or(|v| t.ticket_id == v)
            && self
                .platform
                .as_deref()
                .is_none_or(|p| t.list["platform"].as_str() == Some(p))
            && self.searches.iter().all(|(field, needle)| {
                t.list[*field]
                    .as_str()
                    .is_some_and(|v| v.to_lowercase().contains(needle.as_str()))
            })
    }
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

fn list_tickets(shared: &Shared, pid: &str, path: &str, query: &str) -> Answer {
    let ds = shared.dataset();
    let Some(product_id) = pid
        .parse::<i64>()
        .ok()
        .filter(|id| ds.products.iter().any(|p| p.id == *id))
    else {
        return model_not_found();
    };
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut page = 1usize;
    // Page 004, ticket list parameters: "Sort by updated date order (default descending) to make
    // ascending send query as "asc"". Anything but `asc` (or no `order`) is descending. Ties on
    // `updated_at` (one-second resolution: bulk actions stamp many tickets alike) are not
    // documented; we break them by id, in the same direction as the order, so every page is
    // deterministic and `asc` is exactly the reverse of the default.
    let mut ascending = false;
    let mut f = Filters::default();
    for (k, v) in &pairs {
        let int = |name: &str| -> Result<Option<i64>, String> {
            if v.is_empty() {
                return Ok(None);
            }
            v.parse::<i64>()
                .map(Some)
                .map_err(|_| format!("The {name} must be an integer."))
        };
        let r = match k.as_str() {
            "page" => match v.parse::<usize>() {
                Ok(p) if p >= 1 => {
                    page = p;
                    Ok(())
                }
                _ => Err("The page must be an integer of at least 1.".to_owned()),
            },
            "order" => {
                ascending = v.eq_ignore_ascii_case("asc");
                Ok(())
            }
            "start_date" | "end_date" => {
                if !is_date(v) {
                    Err(format!("The {k} does not match the format Y-m-d."))
                } else {
                    if k == "start_date" {
                        f.start_date = Some(v.clone());
                    } else {
                        f.end_date = Some(v.clone());
                    }
                    Ok(())
                }
            }
            "status" => int("status").map(|x| f.status = x),
            "priority" => int("priority").map(|x| f.priority = x),
            "agent_id" => int("agent id").map(|x| f.agent_id = x),
            "type_id" => int("type id").map(|x| f.type_id = x),
            "reason_id" => int("reason id").map(|x| f.reason_id = x),
            "id" => int("id").map(|x| f.id = x),
            "platform" if !v.is_empty() => {
                f.platform = Some(v.clone());
                Ok(())
            }
            "email" | "name" | "subject" if !v.is_empty() => {
                let field = match k.as_str() {
                    "email" => "email",
                    "name" => "name",
                    _ => "subject",
                };
                f.searches.push((field, v.to_lowercase()));
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(message) = r {
            return validation(&message);
        }
    }

    let skip = (page - 1).saturating_mul(PAGE_SIZE);
    let mut items: Vec<&Value> = Vec::with_capacity(PAGE_SIZE);
    let mut has_more = false;
    {
        let all = ds.product_tickets_asc(product_id);
        let ordered: Box<dyn Iterator<Item = &TicketData>> = if ascending {
            Box::new(all)
        } else {
            Box::new(all.rev())
        };
        let mut matching: Box<dyn Iterator<Item = &TicketData>> = if f.is_empty() {
            ordered
        } else {
            Box::new(ordered.filter(|t| f.matches(t)))
        };
        if skip > 0 && matching.nth(skip - 1).is_none() {
            // page past the end: empty
        } else {
            for t in matching.by_ref().take(PAGE_SIZE) {
                items.push(&t.list);
            }
            has_more = items.len() == PAGE_SIZE && matching.next().is_some();
        }
    }
    let body = serde_json::to_vec(&items).unwrap_or_default();
    let mut resp = raw_response(StatusCode::OK, "application/json", body);
    // `Faults.link_loops`: this page's `Link` leads back to an earlier page (whether or not the
    // page is the last one), a server bug a client must survive without listing forever.
    let looped = shared
        .faults()
        .link_loops
        .iter()
        .find(|l| l.product_id == product_id && usize::try_from(l.from_page).ok() == Some(page))
        .map(|l| (l.to_page, l.respell));
    if let Some((to_page, respell)) = looped {
        let to_page = usize::try_from(to_page).unwrap_or(1).max(1);
        let link = next_link(shared, path, &pairs, to_page, respell);
        set_header(&mut resp, "link", &format!("<{link}>; rel=next"));
        return (resp, Some("link_loop"));
    }
    if has_more {
        let link = next_link(shared, path, &pairs, page + 1, false);
        set_header(&mut resp, "link", &format!("<{link}>; rel=next"));
    }
    (resp, None)
}

/// The absolute URL of list page `page`, as this server spells it in `Link: rel=next`.
///
/// Page 004 ("Pagination") shows one example only, `…/tickets?page=2`, for a first request that
/// had no other parameter; whether a real server keeps the caller's `order` and filters is not
/// said. [`crate::LinkReading::KeepsQuery`] keeps every parameter (in the caller's order, `page`
/// last); [`crate::LinkReading::PageOnly`] carries `page` alone, and the next request is then
/// served in the default order, unfiltered — exactly what a server that ignores what it did not
/// put in the link does. The reading is read per request, so a test can switch it at run time.
///
/// `respell` writes the same URL differently (host `localhost` for `127.0.0.1`, parameters in
/// reverse order): both resolve to this server, but a client comparing URL text does not see
/// that it was already there.
fn next_link(
    shared: &Shared,
    path: &str,
    pairs: &[(String, String)],
    page: usize,
    respell: bool,
) -> String {
    let mut next: Vec<(String, String)> = match shared.readings().link {
        crate::LinkReading::KeepsQuery => {
            pairs.iter().filter(|(k, _)| k != "page").cloned().collect()
        }
        crate::LinkReading::PageOnly => Vec::new(),
    };
    next.push(("page".into(), page.to_string()));
    let mut base = shared.desk360_url.clone();
    if respell {
        next.reverse();
        base = base.replacen("127.0.0.1", "localhost", 1);
    }
    let qs = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(next)
        .finish();
    format!("{base}{path}?{qs}")
}

/// Status changes of a ticket: one entry from 0 to its current status (none while still 0).
fn ticket_logs(shared: &Shared, pid: &str, tid: &str) -> Answer {
    let (Ok(pid), Ok(tid)) = (pid.parse::<i64>(), tid.parse::<i64>()) else {
        return model_not_found();
    };
    let ds = shared.dataset();
    let Some(t) = ds.ticket(pid, tid) else {
        return model_not_found();
    };
    let logs: Vec<Value> = if t.status == 0 {
        Vec::new()
    } else {
        vec![json!({
            "id": t.ticket_id * 10,
            "old_status_id": 0,
            "new_status_id": t.status,
            "reason_id": t.reason_id,
            "agent_id": t.agent_id,
            "created_at": t.updated_at,
        })]
    };
    (json_response(StatusCode::OK, &Value::Array(logs)), None)
}

fn ticket_detail(shared: &Shared, pid: &str, tid: &str) -> Answer {
    let (Ok(pid), Ok(tid)) = (pid.parse::<i64>(), tid.parse::<i64>()) else {
        return model_not_found();
    };
    let ds = shared.dataset();
    let Some(t) = ds.ticket(pid, tid) else {
        return model_not_found();
    };
    let body = serde_json::to_vec(&t.detail).unwrap_or_default();
    let faults = shared.faults();
    if faults.malformed_tickets.contains(&(pid, tid)) {
        let mut bad = b"<br />\n<b>Warning</b>:  Undefined index: messages in <b>/var/www/app/Http/Resources/Ticket.php</b> on line <b>42</b><br />\n".to_vec();
        bad.extend_from_slice(&body);
        return (
            raw_response(StatusCode::OK, "application/json", bad),
            Some("malformed"),
        );
    }
    if faults.truncated_tickets.contains(&(pid, tid)) {
        let half = body[..body.len() / 2].to_vec();
        return (
            raw_response(StatusCode::OK, "application/json", half),
            Some("truncated"),
        );
    }
    (raw_response(StatusCode::OK, "application/json", body), None)
}
