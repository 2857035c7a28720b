//! The Desk360 account's reference data (page 004): products, agents, the current agent, ticket
//! types and reasons — what an import reads once to map ids.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Response, StatusCode};
use axum::routing::get;
use serde_json::{Value, json};

use super::app::App;
use crate::respond::json_response;
use crate::state::Shared;

/// `/v1/products`, `/v1/agents`, `/v1/me` and `/v1/agents/me`, `/v1/types`, `/v1/reasons`.
pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/v1/products", get(products))
        .route("/v1/agents", get(agents))
        // Page 004 titles it `GET /v1/me` and its curl sample calls `/v1/agents/me`: both answer.
        .route("/v1/me", get(me))
        .route("/v1/agents/me", get(me))
        .route("/v1/types", get(types))
        .route("/v1/reasons", get(reasons))
}

fn ok(v: Value) -> Response<Body> {
    json_response(StatusCode::OK, &v)
}

async fn products(State(app): State<App>) -> Response<Body> {
    let ds = app.shared.dataset();
    ok(Value::Array(
        ds.products
            .iter()
            .map(|p| json!({"id": p.id, "name": p.name, "logo": p.logo}))
            .collect(),
    ))
}

async fn agents(State(app): State<App>) -> Response<Body> {
    let ds = app.shared.dataset();
    ok(Value::Array(
        ds.agents
            .iter()
            .map(|a| json!({"id": a.id, "name": a.name, "email": a.email, "avatar": a.avatar}))
            .collect(),
    ))
}

async fn me(State(app): State<App>) -> Response<Body> {
    ok(current_agent(&app.shared, &app.shared.dataset()))
}

async fn types(State(app): State<App>) -> Response<Body> {
    let ds = app.shared.dataset();
    ok(Value::Array(
        ds.types
            .iter()
            .map(|t| {
                json!({"id": t.id, "product_id": t.product_id, "title": t.title,
                    "description": t.title, "is_active": true, "is_custom": false,
                    "created_at": "2019-07-11 12:43:24", "updated_at": "2020-11-02 07:30:05"})
            })
            .collect(),
    ))
}

async fn reasons(State(app): State<App>) -> Response<Body> {
    let ds = app.shared.dataset();
    ok(Value::Array(
        ds.reasons
            .iter()
            .map(|r| {
                json!({"id": r.id, "product_id": r.product_id, "name": r.name,
                    "is_active": true, "created_at": "2019-07-09 13:40:00",
                    "updated_at": "2020-05-25 14:08:53"})
            })
            .collect(),
    ))
}

/// The agent the token belongs to (page 004, "Get Current Agent"): the account's first agent,
/// with its address in the account's own domain (`<local>@<account>.example`), so two sandboxes
/// serving different accounts ([`crate::SandboxConfig::desk360_account`]) answer differently
/// while the default account `acme` answers exactly the generated agent (`jane@acme.example`).
fn current_agent(shared: &Shared, ds: &crate::data::Dataset) -> Value {
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
