//! The Desk360 error answers (page 004, "Errors"): the documented body
//! `{"error": {code, message, doc_url}}` for 401, 404, 405, 400 and the rest.

use axum::body::Body;
use axum::http::{Response, StatusCode};
use serde_json::json;

use crate::respond::{Faulted, json_response};

const DOC_URL: &str = "https://docs.desk360.com/api";

/// A documented error body (page 004, "Errors"): `{"error": {code, message, doc_url}}`.
pub(super) fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json_response(
        status,
        &json!({"error": {"code": code, "message": message, "doc_url": DOC_URL}}),
    )
}

/// The documented answer to a missing, wrong or expired token (page 004, error table: 401,
/// `authentication_exception`).
pub(super) fn unauthenticated() -> Response<Body> {
    error(
        StatusCode::UNAUTHORIZED,
        "authentication_exception",
        "Unauthenticated. The token is missing or invalid.",
    )
}

/// A path no route serves (page 004: `not_found_exception`).
pub(super) async fn unknown_route() -> Response<Body> {
    error(
        StatusCode::NOT_FOUND,
        "not_found_exception",
        "The requested URL was not found. Check the endpoint for a typo.",
    )
}

/// A known path with a method it does not serve (page 004: `method_not_allowed_exception`).
/// Creating tickets/types/reasons exists in the API but never matters to a migration: the
/// emulator serves reads only, and a POST to a list is reported as a wrong method.
pub(super) async fn wrong_method() -> Response<Body> {
    method_not_allowed()
}

fn method_not_allowed() -> Response<Body> {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed_exception",
        "The method is not supported for this route.",
    )
}

/// An unknown product or ticket (page 004: `model_not_found_exception`).
pub(super) fn model_not_found() -> Faulted {
    Faulted(
        error(
            StatusCode::NOT_FOUND,
            "model_not_found_exception",
            "No query results for model.",
        ),
        None,
    )
}

/// A parameter the API refuses (page 004: 400 `failed_validation`).
pub(super) fn validation(message: &str) -> Faulted {
    Faulted(
        error(StatusCode::BAD_REQUEST, "failed_validation", message),
        None,
    )
}
