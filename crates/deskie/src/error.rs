//! The one error type of the Deskie client, and how the engine should treat each case.
//!
//! Every variant exists because the engine must react differently to it: wait (rate limited),
//! try again later (transient), reconcile by reading before writing again (ambiguous), record the
//! item as failed with Deskie's own words (rejected, not found, malformed) or stop the run
//! (unauthorized, configuration). No variant ever carries the API key: messages are built from
//! status codes, Deskie's error bodies and our own descriptions, never from request headers.

use std::time::Duration;

pub use transport::ErrorClass;

/// Everything that can go wrong talking to Deskie.
#[derive(Debug, thiserror::Error)]
pub enum DeskieError {
    /// The limiter was cancelled (Ctrl-C) while this request waited for budget: nothing was
    /// sent, so even a write left nothing on Deskie. Not a failure of the item.
    #[error("{what} not sent: the run is stopping")]
    Cancelled {
        /// The request, e.g. `"POST cases.json"`.
        what: String,
    },

    /// Deskie's rate-limit budget returns later than the limiter may wait (a huge
    /// `retry_after`): nothing was sent; the run should stop and start again after `resume_at`.
    #[error(
        "{what} not sent: Deskie's rate limit allows the next request only in {}s, at \
         {resume_at} (longer than the {}s a run waits): run again after {resume_at}",
        .wait.as_secs(), .max_wait.as_secs()
    )]
    WaitTooLong {
        /// The request.
        what: String,
        /// How long the wait would have been.
        wait: Duration,
        /// When (UTC) the budget returns.
        resume_at: jiff::Timestamp,
        /// The limiter's maximum wait.
        max_wait: Duration,
    },

    /// 401/403: the staff email or API key is wrong, or the agent lacks access. Stops the run.
    #[error("Deskie refused the credentials (HTTP {status}): {message}")]
    Unauthorized {
        /// HTTP status (401 or 403).
        status: u16,
        /// Deskie's own message, if it sent one.
        message: String,
    },

    /// Still 429 after the retry policy's bound; the limiter has paused every request already.
    #[error("Deskie kept answering 429 Too Many Requests for {what}")]
    RateLimited {
        /// The request, e.g. `"GET cases/42.json"`.
        what: String,
        /// Deskie's `retry_after`, when it sent one.
        retry_after: Option<Duration>,
    },

    /// A failure known not to have changed anything (a read that failed, a write whose
    /// connection was never established), after the retry policy's bound.
    #[error("transient failure of {what}: {detail}")]
    Transient {
        /// The request, e.g. `"GET cases/42.json"`.
        what: String,
        /// The HTTP status, or `None` for an I/O failure (connect error, timeout, reset).
        status: Option<u16>,
        /// What happened.
        detail: String,
    },

    /// A write was sent and no usable answer came back (timeout, reset, 5xx, unreadable body):
    /// it may or may not have been applied. Never retried blindly; the engine reconciles.
    #[error("outcome unknown for {what}: {detail}")]
    Ambiguous {
        /// The request, e.g. `"POST cases.json"`.
        what: String,
        /// What happened after the request was sent.
        detail: String,
    },

    /// Deskie rejected the request (400, 409, 422 …) with this message: the payload or the
    /// mapping needs fixing; retrying the same request will fail the same way.
    #[error("Deskie rejected {what} (HTTP {status}): {message}")]
    Rejected {
        /// The request, e.g. `"POST cases.json"`.
        what: String,
        /// HTTP status.
        status: u16,
        /// Deskie's own message, flattened from whatever error body shape it used.
        message: String,
    },

    /// 404: the case, message or user does not exist (or the agent cannot see it).
    #[error("not found in Deskie: {what}")]
    NotFound {
        /// The request, e.g. `"GET cases/42.json"`.
        what: String,
        /// Deskie's own message, if any.
        message: String,
    },

    /// A read succeeded but its body is not the JSON we expect; not retried.
    #[error("unexpected response to {what}: {detail} (body starts: {excerpt:?})")]
    Malformed {
        /// The request, e.g. `"GET cases/42.json"`.
        what: String,
        /// The parse error.
        detail: String,
        /// The first ~200 characters of the body, to see what Deskie actually sent.
        excerpt: String,
    },

    /// The client cannot be built or a request cannot be formed from the configuration.
    /// Raised before any request is sent.
    #[error("Deskie configuration error: {message}")]
    Config {
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// Results of this crate.
pub type Result<T, E = DeskieError> = std::result::Result<T, E>;

impl DeskieError {
    /// How the engine should handle this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            DeskieError::RateLimited { .. } => ErrorClass::RateLimited,
            DeskieError::Transient { .. } => ErrorClass::Transient,
            DeskieError::Ambiguous { .. } => ErrorClass::Ambiguous,
            DeskieError::Rejected { .. }
            | DeskieError::NotFound { .. }
            | DeskieError::Malformed { .. } => ErrorClass::Permanent,
            DeskieError::Unauthorized { .. }
            | DeskieError::Config { .. }
            | DeskieError::WaitTooLong { .. } => ErrorClass::Fatal,
            DeskieError::Cancelled { .. } => ErrorClass::Cancelled,
        }
    }

    /// When the rate-limit budget returns, for [`DeskieError::WaitTooLong`]: the time the user
    /// should start the run again.
    pub fn resume_at(&self) -> Option<jiff::Timestamp> {
        match self {
            DeskieError::WaitTooLong { resume_at, .. } => Some(*resume_at),
            _ => None,
        }
    }

    /// The HTTP status Deskie answered with, when the error came from a response.
    pub fn status(&self) -> Option<u16> {
        match self {
            DeskieError::Unauthorized { status, .. } | DeskieError::Rejected { status, .. } => {
                Some(*status)
            }
            DeskieError::Transient { status, .. } => *status,
            DeskieError::RateLimited { .. } => Some(429),
            DeskieError::NotFound { .. } => Some(404),
            _ => None,
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        DeskieError::Config {
            message: message.into(),
        }
    }
}

impl transport::VendorError for DeskieError {
    fn cancelled(what: &str) -> Self {
        DeskieError::Cancelled {
            what: what.to_owned(),
        }
    }

    fn wait_too_long(
        what: &str,
        wait: Duration,
        resume_at: jiff::Timestamp,
        max_wait: Duration,
    ) -> Self {
        DeskieError::WaitTooLong {
            what: what.to_owned(),
            wait,
            resume_at,
            max_wait,
        }
    }

    fn transient(what: &str, status: Option<u16>, detail: String) -> Self {
        DeskieError::Transient {
            what: what.to_owned(),
            status,
            detail,
        }
    }

    /// The client words `detail` with the status already in it (`HTTP 503: …`).
    fn ambiguous(what: &str, _status: Option<u16>, detail: String) -> Self {
        DeskieError::Ambiguous {
            what: what.to_owned(),
            detail,
        }
    }

    fn config(reason: String) -> Self {
        DeskieError::Config { message: reason }
    }
}

/// Turns whatever error body Deskie sent into one readable line. Its error shape is not
/// documented, so every common form is accepted: `{"errors":{field: msg}}`, `{"errors":[…]}`,
/// `{"error": …}`, `{"message": …}`, or plain text.
pub(crate) fn error_message(body: &str) -> String {
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return String::new();
    }
    match serde_json::from_str::<serde_json::Value>(trimmed) {
        Ok(value) => {
            let flat = flatten(&value);
            if flat.is_empty() {
                transport::excerpt(trimmed, 300)
            } else {
                transport::excerpt(&flat, 500)
            }
        }
        Err(_) => transport::excerpt(trimmed, 300),
    }
}

fn flatten(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.trim().to_string(),
        Value::Bool(_) | Value::Number(_) => value.to_string(),
        Value::Array(items) => items
            .iter()
            .map(flatten)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("; "),
        Value::Object(map) => {
            // The well-known wrappers first: their content is the message.
            for key in ["errors", "error", "message", "error_description", "detail"] {
                if let Some(inner) = map.get(key) {
                    let s = flatten(inner);
                    if !s.is_empty() {
                        // A `{"error":"x","message":"y"}` pair: keep both.
                        if key == "error"
                            && let Some(m) = map.get("message").map(flatten)
                            && !m.is_empty()
                            && m != s
                        {
                            return format!("{s}: {m}");
                        }
                        return s;
                    }
                }
            }
            // Otherwise a field → message map (the content of `errors`).
            map.iter()
                .map(|(k, v)| {
                    let s = flatten(v);
                    if s.is_empty() {
                        k.clone()
                    } else {
                        format!("{k}: {s}")
                    }
                })
                .collect::<Vec<_>>()
                .join("; ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_flatten_to_one_line() {
        assert_eq!(
            error_message(r#"{"errors":{"user_email":"is invalid","subject":["can't be blank"]}}"#),
            "subject: can't be blank; user_email: is invalid"
        );
        assert_eq!(
            error_message(r#"{"errors":["Case not found","try again"]}"#),
            "Case not found; try again"
        );
        assert_eq!(error_message(r#"{"error":"Forbidden"}"#), "Forbidden");
        assert_eq!(
            error_message(r#"{"error":{"code":"bad","message":"Bad staff_id"}}"#),
            "Bad staff_id"
        );
        assert_eq!(
            error_message(r#"{"error":"invalid_request","message":"staff_id 9 unknown"}"#),
            "invalid_request: staff_id 9 unknown"
        );
        assert_eq!(error_message(r#"{"message":"Too many"}"#), "Too many");
        assert_eq!(
            error_message("Internal Server Error\n"),
            "Internal Server Error"
        );
        assert_eq!(error_message(""), "");
        assert_eq!(error_message(r#"{"status":"fail"}"#), "status: fail");
        let long = "x".repeat(1000);
        assert!(error_message(&long).chars().count() <= 301);
    }

    #[test]
    fn classes() {
        let e = DeskieError::Ambiguous {
            what: "POST cases.json".into(),
            detail: "timeout".into(),
        };
        assert_eq!(e.class(), ErrorClass::Ambiguous);
        let e = DeskieError::Rejected {
            what: "POST cases.json".into(),
            status: 422,
            message: "bad".into(),
        };
        assert_eq!(e.class(), ErrorClass::Permanent);
        assert_eq!(e.status(), Some(422));
        assert_eq!(DeskieError::config("x").class(), ErrorClass::Fatal);
    }
}
