//! The routing both emulators do on axum `Router`s: the vendor path shapes a pattern cannot
//! express (`{id}.json`, bulk `{id},{id}.json`), unknown paths and wrong methods answered in the
//! vendor's error shape and still metered, empty path segments tolerated, the journal keeping
//! the path as sent.

mod common;

use common::{WHEN, bounded, client, deskie_request, start};
use sandbox::{Sandbox, Server};
use serde_json::{Value, json};

async fn send(rb: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = bounded(rb.send()).await.expect("send");
    let status = resp.status().as_u16();
    let body: Value = bounded(resp.json()).await.unwrap_or(Value::Null);
    (status, body)
}

/// A request without a body to the Deskie emulator at `path`: its status and body.
async fn request(sb: &Sandbox, method: reqwest::Method, path: &str) -> (u16, Value) {
    send(deskie_request(sb, method, path)).await
}

async fn new_case(sb: &Sandbox, email: &str) -> i64 {
    let body = json!({"case": {"user_email": email, "subject": "Help",
        "content_html": "<p>hi</p>", "created_at": WHEN}});
    let (s, b) =
        send(deskie_request(sb, reqwest::Method::POST, "/api/cases.json").json(&body)).await;
    assert_eq!(s, 200, "{b}");
    b["case"]["case_id"].as_i64().expect("case id")
}

#[tokio::test]
async fn deskie_vendor_path_shapes_unknown_paths_and_wrong_methods() {
    let sb = start(|_| {}).await;
    let a = new_case(&sb, "a@example.com").await;
    let b = new_case(&sb, "b@example.com").await;

    // Bulk form: one segment `{id},{id}.json`.
    let (s, body) = send(
        deskie_request(
            &sb,
            reqwest::Method::PUT,
            &format!("/api/cases/{a},{b}.json"),
        )
        .json(&json!({"case": {"status": "closed"}})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["case_success_id"], json!([a, b]));
    let (s, body) = request(&sb, reqwest::Method::GET, &format!("/api/cases/{a}.json")).await;
    assert_eq!((s, body["case"]["status"].as_str()), (200, Some("closed")));

    // The vendor's `.json` is required on a case path: without it the path is unknown.
    let (s, body) = request(&sb, reqwest::Method::GET, &format!("/api/cases/{a}")).await;
    assert_eq!(
        (s, body["errors"]["path"].as_str()),
        (404, Some("not found"))
    );
    // A segment that is not an id names no case.
    let (s, body) = request(&sb, reqwest::Method::GET, "/api/cases/abc.json").await;
    assert_eq!(
        (s, body["errors"]["case"].as_str()),
        (404, Some("not found"))
    );
    // Unknown path and wrong method: the vendor's error shape.
    let (s, body) = request(&sb, reqwest::Method::GET, "/api/nothing.json").await;
    assert_eq!(
        (s, body["errors"]["path"].as_str()),
        (404, Some("not found"))
    );
    let (s, body) = request(&sb, reqwest::Method::DELETE, "/api/cases.json").await;
    assert_eq!(s, 405, "{body}");
    assert!(body["errors"]["method"].is_string(), "{body}");

    // A trailing slash and a doubled one reach the same route; the journal keeps what was sent.
    let (s, body) = request(&sb, reqwest::Method::GET, "//api/cases.json/").await;
    assert_eq!((s, body["total_count"].as_u64()), (200, Some(2)), "{body}");

    let journal: Vec<_> = sb
        .journal()
        .into_iter()
        .filter(|e| e.server == Server::Deskie)
        .collect();
    let costs: Vec<(String, String, u32, u16)> = journal
        .iter()
        .map(|e| (e.method.clone(), e.path.clone(), e.cost, e.status))
        .collect();
    // Every answer was journaled once and charged by its method, refusals included.
    assert_eq!(costs.len(), 9, "{costs:?}");
    assert!(costs.contains(&("GET".into(), "/api/nothing.json".into(), 1, 404)));
    assert!(costs.contains(&("DELETE".into(), "/api/cases.json".into(), 2, 405)));
    assert!(costs.contains(&("GET".into(), "//api/cases.json/".into(), 1, 200)));
    sb.shutdown().await;
}

#[tokio::test]
async fn desk360_token_before_route_and_empty_segments() {
    let sb = start(|_| {}).await;
    let token = sb.credentials().desk360_token;
    let get = |path: &str, token: &str| {
        client()
            .get(format!("{}{path}", sb.desk360_url()))
            .bearer_auth(token)
    };
    // The token is checked before the route is known: a wrong token on an unknown path is 401.
    let (s, body) = send(get("/v1/nothing-here", "wrong")).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (401, Some("authentication_exception"))
    );
    let (s, body) = send(get("/v1/nothing-here", &token)).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (404, Some("not_found_exception"))
    );
    // A product id that is not a number is an unknown model, in the documented shape.
    let (s, body) = send(get("/v1/products/abc/tickets", &token)).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (404, Some("model_not_found_exception"))
    );
    // A trailing slash reaches the route.
    let (s, body) = send(get("/v1/products/", &token)).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.as_array().is_some_and(|a| !a.is_empty()), "{body}");
    // Every request counted, the journal keeps the path as sent.
    let journal = sb.journal();
    assert_eq!(journal.len(), 4);
    assert!(journal.iter().all(|e| e.cost == 1));
    assert_eq!(journal[3].path, "/v1/products/");
    sb.shutdown().await;
}
