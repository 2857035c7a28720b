//! `/v1/login` (page 004, "Authentication", option 1): email and password for the account's
//! token, with a limit on wrong attempts per IP and window.

use axum::Router;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use super::answers::{error, validation};
use super::app::App;
use super::gate::ClientIp;
use crate::respond::{Faulted, QueryPairs, json_response, set_header};
use crate::state::{MAX_BODY, lock};

/// Wrong logins tolerated per window before `too_many_attempts`.
const MAX_LOGIN_FAILURES: u32 = 5;

/// `/v1/login`. The page documents login as GET in one place and POST in the curl sample:
/// both answer.
pub(super) fn routes() -> axum::Router<App> {
    Router::new().route("/v1/login", get(login).post(login))
}

/// `GET|POST /v1/login`: email and password from a JSON body or the query string; five wrong
/// attempts a window from one IP answer `too_many_attempts` until the window ends.
async fn login(
    State(app): State<App>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    QueryPairs(query): QueryPairs,
    body: Body,
) -> Faulted {
    let shared = &app.shared;
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default();
    let mut email = None;
    let mut password = None;
    if let Ok(v) = serde_json::from_slice::<Value>(&body) {
        email = v.get("email").and_then(Value::as_str).map(str::to_owned);
        password = v.get("password").and_then(Value::as_str).map(str::to_owned);
    }
    for (k, v) in query {
        match k.as_str() {
            "email" if email.is_none() => email = Some(v),
            "password" if password.is_none() => password = Some(v),
            _ => {}
        }
    }
    let (index, left) = shared.window_now();
    if lock(&app.auth).failures(ip, index) >= MAX_LOGIN_FAILURES {
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            "Too many wrong login attempts; wait for a minute.",
        );
        set_header(&mut r, "retry-after", &shared.fmt_secs(left));
        return Faulted(r, Some("too_many_attempts"));
    }
    let (Some(email), Some(password)) = (email, password) else {
        return validation("The email and password fields are required.");
    };
    if email == shared.credentials.desk360_email && password == shared.credentials.desk360_password
    {
        let token = lock(&app.auth).login_token(
            shared.config.desk360_token_ttl,
            &shared.credentials.desk360_token,
        );
        return Faulted(
            json_response(
                StatusCode::OK,
                &json!({"access_token": token, "token_type": "Bearer"}),
            ),
            None,
        );
    }
    lock(&app.auth).failed(ip);
    Faulted(
        error(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "The email or password is wrong.",
        ),
        None,
    )
}
