//! Deskie users (page 000): list, view, delete (to the "Deleted" list), block, restore, and
//! delete permanently. Users are created by the cases sent for them (`deskie/cases.rs`).
//!
//! Choices where the page is silent: a permanently deleted user disappears from the user list
//! and snapshot; their cases stay (page 000 does not say), and a later case with the same address
//! creates a new user. A case created for a blocked user is marked spam (page 000, "Block a
//! user").

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use jiff::Timestamp;
use serde_json::json;

use super::account::{Account, FIRST_USER_ID, User};
use super::app::App;
use super::reply::{Answer, Reply, id_of, not_found};
use super::search::search_matches;
use super::shapes::{numbered, paging, user_json};
use crate::respond::QueryPairs;
use crate::state::lock;

/// `/api/users.json`, `/api/users/{user}` (view, delete) and
/// `PUT /api/users/{user}/{disable,block,restore}.json`.
pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/api/users.json", get(list))
        .route("/api/users/{user}", get(view).delete(delete))
        .route("/api/users/{user}/disable.json", put(disable))
        .route("/api/users/{user}/block.json", put(block))
        .route("/api/users/{user}/restore.json", put(restore))
}

/// The user id of a `/api/users/{user}` segment, which must end in `.json`: without it the path
/// is unknown (404 `path`).
fn user_id(segment: &str) -> Result<i64, Answer> {
    if !segment.ends_with(".json") {
        return Err(not_found("path"));
    }
    id_of(segment).ok_or_else(|| not_found("user"))
}

/// `GET /api/users/{id}.json`.
async fn view(State(app): State<App>, Path(segment): Path<String>) -> Reply {
    let id = match user_id(&segment) {
        Ok(id) => id,
        Err(a) => return Reply(a),
    };
    let mut st = lock(&app.account);
    Reply(match st.user_mut(id) {
        Some(u) => (StatusCode::OK, json!({"user": user_json(u)}), None),
        None => not_found("user"),
    })
}

/// `DELETE /api/users/{id}.json`.
async fn delete(State(app): State<App>, Path(segment): Path<String>) -> Reply {
    let id = match user_id(&segment) {
        Ok(id) => id,
        Err(a) => return Reply(a),
    };
    let mut st = lock(&app.account);
    Reply(delete_user(&mut st, id))
}

async fn disable(app: State<App>, segment: Path<String>) -> Reply {
    act(app, segment, UserAction::Disable)
}

async fn block(app: State<App>, segment: Path<String>) -> Reply {
    act(app, segment, UserAction::Block)
}

async fn restore(app: State<App>, segment: Path<String>) -> Reply {
    act(app, segment, UserAction::Restore)
}

/// The user of an action's segment (`.json` optional there) and the action.
fn act(State(app): State<App>, Path(segment): Path<String>, action: UserAction) -> Reply {
    let Some(id) = id_of(&segment) else {
        return Reply(not_found("user"));
    };
    let mut st = lock(&app.account);
    Reply(act_on_user(&mut st, id, action))
}

/// `GET /api/users.json` (page 000, "List users"): newest first; `user_email` (or `email`)
/// filters with Deskie's search rules.
async fn list(State(app): State<App>, QueryPairs(pairs): QueryPairs) -> Reply {
    let st = lock(&app.account);
    Reply(list_users(&st, &pairs))
}

fn list_users(st: &Account, pairs: &[(String, String)]) -> Answer {
    let (page, limit) = match paging(pairs) {
        Ok(x) => x,
        Err(a) => return a,
    };
    let email = pairs
        .iter()
        .find(|(k, _)| k == "user_email" || k == "email")
        .map(|(_, v)| v.clone());
    let mut users: Vec<&User> = st
        .users
        .iter()
        .filter(|u| !u.purged)
        .filter(|u| {
            email
                .as_deref()
                .is_none_or(|p| u.email.as_deref().is_some_and(|e| search_matches(p, e)))
        })
        .collect();
    users.sort_by_key(|u| std::cmp::Reverse((u.created_at, u.user_id)));
    let total = users.len();
    let limit = limit.unwrap_or(100);
    let page = page.unwrap_or(1);
    let items = users
        .into_iter()
        .skip((page - 1) * limit)
        .take(limit)
        .map(user_json)
        .collect();
    (StatusCode::OK, numbered("user", items, total), None)
}

/// What a user action does (page 000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UserAction {
    /// `PUT disable.json`, "Delete a user": moved to the "Deleted" list, restorable.
    Disable,
    /// `PUT block.json`: `active: false`; their new cases are marked spam.
    Block,
    /// `PUT restore.json`: unblocked and undeleted.
    Restore,
}

/// `PUT /api/users/[id]/{disable,block,restore}.json`: answers the user.
fn act_on_user(st: &mut Account, id: i64, action: UserAction) -> Answer {
    let Some(user) = st.user_mut(id) else {
        return not_found("user");
    };
    match action {
        UserAction::Disable => user.deleted = true,
        UserAction::Block => user.active = false,
        UserAction::Restore => {
            user.deleted = false;
            user.active = true;
        }
    }
    user.updated_at = Timestamp::now();
    (StatusCode::OK, json!({"user": user_json(user)}), None)
}

/// `DELETE /api/users/[id].json`: the user is gone for good (their cases stay).
fn delete_user(st: &mut Account, id: i64) -> Answer {
    let Some(user) = st.user_mut(id) else {
        return not_found("user");
    };
    user.purged = true;
    st.users_by_key
        .retain(|_, &mut i| i64::try_from(i).is_ok_and(|i| FIRST_USER_ID + i != id));
    (StatusCode::OK, json!({}), None)
}
