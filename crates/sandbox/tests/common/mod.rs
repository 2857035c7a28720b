//! Helpers shared by the sandbox's integration tests: start a sandbox, build clients, bound waits,
//! call either emulator the way its vendor page says.
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};

/// Every wait in the tests is bounded by this.
pub const LIMIT: Duration = Duration::from_secs(30);

/// Runs a future with the test-wide timeout.
pub async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("test step timed out")
}

/// A small sandbox with the given tweaks.
pub async fn start(tweak: impl FnOnce(&mut SandboxConfig)) -> Sandbox {
    let mut config = SandboxConfig {
        tickets: 120,
        ..SandboxConfig::default()
    };
    tweak(&mut config);
    bounded(Sandbox::start(config))
        .await
        .expect("sandbox starts")
}

/// A plain HTTP client that never retries on its own.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// A header as a string (panics when absent: tests assert presence this way).
pub fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .unwrap_or_else(|| panic!("header {name} missing"))
        .to_str()
        .expect("ascii header")
        .to_owned()
}

/// A `created_at` in the form Deskie's pages show.
pub const WHEN: &str = "Mon, 05 May 2014 00:15:17 +0300";

/// A request to the Deskie emulator at `path` (from its root, as sent), with the staff's
/// credentials.
pub fn deskie_request(
    sb: &Sandbox,
    method: reqwest::Method,
    path: &str,
) -> reqwest::RequestBuilder {
    let creds = sb.credentials();
    client()
        .request(method, format!("{}{path}", sb.deskie_url()))
        .basic_auth(creds.deskie_staff_email, Some(creds.deskie_api_key))
}

/// A request to the Deskie API at `path` below `/api/`.
pub fn req(sb: &Sandbox, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    deskie_request(sb, method, &format!("/api/{path}"))
}

/// Sends a request: its status, its JSON body (`Null` when none) and its headers.
pub async fn send(rb: reqwest::RequestBuilder) -> (u16, Value, reqwest::header::HeaderMap) {
    let resp = bounded(rb.send()).await.expect("send");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body: Value = bounded(resp.json()).await.unwrap_or(Value::Null);
    (status, body, headers)
}

/// A Deskie API call with a JSON body: its status and body.
pub async fn call(sb: &Sandbox, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
    let (s, b, _) = send(req(sb, method, path).json(&body)).await;
    (s, b)
}

pub async fn post(sb: &Sandbox, path: &str, body: Value) -> (u16, Value) {
    call(sb, reqwest::Method::POST, path, body).await
}

pub async fn put(sb: &Sandbox, path: &str, body: Value) -> (u16, Value) {
    call(sb, reqwest::Method::PUT, path, body).await
}

pub async fn get(sb: &Sandbox, path: &str) -> (u16, Value) {
    let (s, b, _) = send(req(sb, reqwest::Method::GET, path)).await;
    (s, b)
}

/// The body of an email case created by the customer `email`.
pub fn email_case(email: &str, content: &str) -> Value {
    json!({"case": {"user_email": email, "subject": "Help", "content_html": content, "created_at": WHEN}})
}

/// Creates a case, asserting a 200: the case as answered.
pub async fn create(sb: &Sandbox, body: Value) -> Value {
    let (s, b) = post(sb, "cases.json", body).await;
    assert_eq!(s, 200, "{b}");
    b["case"].clone()
}

/// A GET from the Desk360 emulator with the static bearer token.
pub async fn desk360_get(sb: &Sandbox, url: &str) -> reqwest::Response {
    bounded(
        client()
            .get(url)
            .bearer_auth(sb.credentials().desk360_token)
            .send(),
    )
    .await
    .expect("request")
}

/// The Desk360 detail of ticket `ticket` of `product`, fetched with the static token.
pub async fn desk360_detail(sb: &Sandbox, product: i64, ticket: i64) -> reqwest::Response {
    let url = format!(
        "{}/v1/products/{product}/tickets/{ticket}",
        sb.desk360_url()
    );
    desk360_get(sb, &url).await
}

/// A sandbox of `tickets` tickets whose Desk360 window a listing test never spends.
pub async fn start_listing(tickets: usize) -> Sandbox {
    start(|c| {
        c.tickets = tickets;
        c.desk360_limit = 10_000;
    })
    .await
}

/// The Desk360 list URL of a product's tickets (no query).
pub fn tickets_url(sb: &Sandbox, product: i64) -> String {
    format!("{}/v1/products/{product}/tickets", sb.desk360_url())
}
