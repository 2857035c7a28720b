//! Desk360 tickets (page 004): the paged list (20 a page, `updated_at` order, filters, the
//! `Link: rel=next` header under [`crate::config::LinkReading`], `Link` loop faults), one ticket's detail
//! with its messages (signed attachment URLs, malformed / truncated bodies), its status logs.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::routing::get;
use serde_json::{Value, json};

use super::answers::{model_not_found, validation};
use super::app::App;
use super::files;
use crate::data::TicketData;
use crate::respond::{Faulted, QueryPairs, json_response, raw_response, set_header};
use crate::state::Shared;

/// Tickets per list page, fixed by Desk360.
const PAGE_SIZE: usize = 20;

/// The list, a detail and its logs, under `/v1/products/{product}/tickets`.
pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/v1/products/{product}/tickets", get(list_tickets))
        .route(
            "/v1/products/{product}/tickets/{ticket}",
            get(ticket_detail),
        )
        .route(
            "/v1/products/{product}/tickets/{ticket}/logs",
            get(ticket_logs),
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

/// One list request's parameters: page, order and filters, or the validation message.
fn parse_list_query(pairs: &[(String, String)]) -> Result<(usize, bool, Filters), String> {
    let mut page = 1usize;
    // Page 004, ticket list parameters: "Sort by updated date order (default descending) to make
    // ascending send query as "asc"". Anything but `asc` (or no `order`) is descending. Ties on
    // `updated_at` (one-second resolution: bulk actions stamp many tickets alike) are not
    // documented; we break them by id, in the same direction as the order, so every page is
    // deterministic and `asc` is exactly the reverse of the default.
    let mut ascending = false;
    let mut f = Filters::default();
    for (k, v) in pairs {
        let int = |name: &str| -> Result<Option<i64>, String> {
            if v.is_empty() {
                return Ok(None);
            }
            v.parse::<i64>()
                .map(Some)
                .map_err(|_| format!("The {name} must be an integer."))
        };
        match k.as_str() {
            "page" => match v.parse::<usize>() {
                Ok(p) if p >= 1 => page = p,
                _ => return Err("The page must be an integer of at least 1.".to_owned()),
            },
            "order" => ascending = v.eq_ignore_ascii_case("asc"),
            "start_date" | "end_date" if !is_date(v) => {
                return Err(format!("The {k} does not match the format Y-m-d."));
            }
            "start_date" => f.start_date = Some(v.clone()),
            "end_date" => f.end_date = Some(v.clone()),
            "status" => f.status = int("status")?,
            "priority" => f.priority = int("priority")?,
            "agent_id" => f.agent_id = int("agent id")?,
            "type_id" => f.type_id = int("type id")?,
            "reason_id" => f.reason_id = int("reason id")?,
            "id" => f.id = int("id")?,
            "platform" if !v.is_empty() => f.platform = Some(v.clone()),
            "email" if !v.is_empty() => f.searches.push(("email", v.to_lowercase())),
            "name" if !v.is_empty() => f.searches.push(("name", v.to_lowercase())),
            "subject" if !v.is_empty() => f.searches.push(("subject", v.to_lowercase())),
            _ => {}
        }
    }
    Ok((page, ascending, f))
}

/// One page of list items (the tickets' list shapes) and whether another page follows.
fn list_page<'a>(
    ds: &'a crate::data::Dataset,
    product_id: i64,
    page: usize,
    ascending: bool,
    f: &Filters,
) -> (Vec<&'a Value>, bool) {
    let skip = (page - 1).saturating_mul(PAGE_SIZE);
    let mut items: Vec<&Value> = Vec::with_capacity(PAGE_SIZE);
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
        return (items, false);
    }
    for t in matching.by_ref().take(PAGE_SIZE) {
        items.push(&t.list);
    }
    let has_more = items.len() == PAGE_SIZE && matching.next().is_some();
    (items, has_more)
}

/// `GET /v1/products/{product}/tickets`: one page of the list, with `Link: rel=next` while more
/// follow (or, under a `link_loops` fault, back to an earlier page).
async fn list_tickets(
    State(app): State<App>,
    Path(pid): Path<String>,
    uri: Uri,
    QueryPairs(pairs): QueryPairs,
) -> Faulted {
    let shared = &app.shared;
    let ds = shared.dataset();
    let Some(product_id) = pid
        .parse::<i64>()
        .ok()
        .filter(|id| ds.products.iter().any(|p| p.id == *id))
    else {
        return model_not_found();
    };
    let (page, ascending, filters) = match parse_list_query(&pairs) {
        Ok(parsed) => parsed,
        Err(message) => return validation(&message),
    };
    let (items, has_more) = list_page(&ds, product_id, page, ascending, &filters);
    let body = serde_json::to_vec(&items).unwrap_or_default();
    let mut resp = raw_response(StatusCode::OK, "application/json", body);
    let path = uri.path();
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
        return Faulted(resp, Some("link_loop"));
    }
    if has_more {
        let link = next_link(shared, path, &pairs, page + 1, false);
        set_header(&mut resp, "link", &format!("<{link}>; rel=next"));
    }
    Faulted(resp, None)
}

/// The absolute URL of list page `page`, as this server spells it in `Link: rel=next`.
///
/// Page 004 ("Pagination") shows one example only, `…/tickets?page=2`, for a first request that
/// had no other parameter; whether a real server keeps the caller's `order` and filters is not
/// said. [`crate::config::LinkReading::KeepsQuery`] keeps every parameter (in the caller's order, `page`
/// last); [`crate::config::LinkReading::PageOnly`] carries `page` alone, and the next request is then
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
        crate::config::LinkReading::KeepsQuery => {
            pairs.iter().filter(|(k, _)| k != "page").cloned().collect()
        }
        crate::config::LinkReading::PageOnly => Vec::new(),
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
async fn ticket_logs(State(app): State<App>, Path((pid, tid)): Path<(String, String)>) -> Faulted {
    with_ticket(&app.shared, &pid, &tid, logs)
}

/// The logs of one ticket.
fn logs(_: &Shared, t: &TicketData) -> Faulted {
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
    Faulted(json_response(StatusCode::OK, &Value::Array(logs)), None)
}

/// One ticket with its messages; the `malformed_tickets` / `truncated_tickets` faults spoil the
/// body of a 200.
async fn ticket_detail(
    State(app): State<App>,
    Path((pid, tid)): Path<(String, String)>,
) -> Faulted {
    with_ticket(&app.shared, &pid, &tid, detail)
}

/// The detail of one ticket, spoilt by the faults that name it.
fn detail(shared: &Shared, t: &TicketData) -> Faulted {
    let key = (t.product_id, t.ticket_id);
    let signed = files::sign_detail(shared, &t.detail);
    let body = serde_json::to_vec(signed.as_ref().unwrap_or(&t.detail)).unwrap_or_default();
    let faults = shared.faults();
    if faults.malformed_tickets.contains(&key) {
        let mut bad = b"<br />\n<b>Warning</b>:  Undefined index: messages in <b>/var/www/app/Http/Resources/Ticket.php</b> on line <b>42</b><br />\n".to_vec();
        bad.extend_from_slice(&body);
        return Faulted(
            raw_response(StatusCode::OK, "application/json", bad),
            Some("malformed"),
        );
    }
    if faults.truncated_tickets.contains(&key) {
        let half = body[..body.len() / 2].to_vec();
        return Faulted(
            raw_response(StatusCode::OK, "application/json", half),
            Some("truncated"),
        );
    }
    Faulted(raw_response(StatusCode::OK, "application/json", body), None)
}

/// Answers for the ticket a `{product}/{ticket}` path names, or with Desk360's "model not found"
/// when an id is not a number or there is no such ticket.
fn with_ticket(
    shared: &Shared,
    pid: &str,
    tid: &str,
    answer: impl FnOnce(&Shared, &TicketData) -> Faulted,
) -> Faulted {
    let (Ok(pid), Ok(tid)) = (pid.parse::<i64>(), tid.parse::<i64>()) else {
        return model_not_found();
    };
    match shared.dataset().ticket(pid, tid) {
        Some(t) => answer(shared, t),
        None => model_not_found(),
    }
}
