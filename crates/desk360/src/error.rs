//! The Desk360 client's errors, each saying how the engine should handle it ([`ErrorClass`],
//! shared with the Deskie client through the `transport` crate).
//!
//! Messages keep the API's own error `code` and `message` (so a report tells the user what
//! Desk360 said) and never contain a credential: tokens travel only in a request header, and the
//! login response, which holds one, is never quoted.

use std::time::Duration;

pub use transport::ErrorClass;

/// Everything that can go wrong talking to Desk360.
#[derive(Debug, thiserror::Error)]
pub enum Desk360Error {
    /// The limiter was cancelled (Ctrl-C) while this request waited for budget: nothing was
    /// sent. Not a failure of the item.
    #[error("{what}: not sent, the run is stopping")]
    Cancelled {
        /// The request, e.g. `ticket 1/42`.
        what: String,
    },

    /// Desk360's rate-limit budget returns later than the limiter may wait (a huge
    /// `Retry-After`): nothing was sent, and the run should stop and be started again after
    /// `resume_at`.
    #[error(
        "{what}: Desk360's rate limit allows the next request only in {}s, at {resume_at} \
         (longer than the {}s a run waits); nothing was sent: run again after {resume_at}",
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

    /// The configuration cannot work (bad URL, plain HTTP to a remote host, empty token).
    #[error("Desk360 configuration error: {reason}")]
    Config {
        /// What is wrong and how to fix it.
        reason: String,
    },

    /// Desk360 refused the credentials (401, or a failed login).
    #[error("Desk360 refused the credentials{}: {message}", code_suffix(.code))]
    Unauthorized {
        /// Desk360's error code, e.g. `authentication_exception`, `invalid_credentials`.
        code: Option<String>,
        /// Desk360's message.
        message: String,
    },

    /// Still rate limited after the policy's retries.
    #[error("{what}: rate limited by Desk360 (HTTP 429) after every allowed retry")]
    RateLimited {
        /// The request, e.g. `ticket 1/42`.
        what: String,
        /// The last `Retry-After`, if any.
        retry_after: Option<Duration>,
    },

    /// A failure worth retrying later: 5xx, timeout, connection error (retries exhausted).
    #[error("{what}: transient failure{}: {detail}", status_suffix(.status))]
    Transient {
        /// The request.
        what: String,
        /// HTTP status when a response arrived.
        status: Option<u16>,
        /// What happened.
        detail: String,
    },

    /// A write was sent and no usable answer came back: it may or may not have been applied.
    #[error("{what}: request sent but no usable answer; it may have been applied: {detail}")]
    Ambiguous {
        /// The request.
        what: String,
        /// What happened.
        detail: String,
    },

    /// 404: the object does not exist (any more) or is not this account's.
    #[error("{what}: not found (HTTP 404{}): {message}", code_inline(.code))]
    NotFound {
        /// The request.
        what: String,
        /// Desk360's error code, e.g. `model_not_found_exception`.
        code: Option<String>,
        /// Desk360's message.
        message: String,
    },

    /// Any other refusal (400, 403, 405, 406, 415, 422, a redirect…): retrying will not help.
    #[error("{what}: rejected by Desk360 (HTTP {status}{}): {message}", code_inline(.code))]
    Rejected {
        /// The request.
        what: String,
        /// HTTP status.
        status: u16,
        /// Desk360's error code, e.g. `failed_validation`.
        code: Option<String>,
        /// Desk360's message.
        message: String,
    },

    /// A 2xx body that is not JSON or not the expected shape. Not retried: the same body would
    /// come back.
    #[error("{what}: malformed response: {detail} (body starts: {excerpt:?})")]
    Malformed {
        /// The object, e.g. `ticket 1/42`.
        what: String,
        /// The parser's complaint.
        detail: String,
        /// The first ~200 characters of the body (withheld for bodies that carry credentials).
        excerpt: String,
    },

    /// A URL to fetch that is not on the configured Desk360 host (or that cannot be parsed).
    /// Following it would send the token elsewhere.
    #[error("{what}: refusing URL {url:?}: {reason}")]
    UnexpectedUrl {
        /// The request that produced or was given the URL.
        what: String,
        /// The URL.
        url: String,
        /// Why it is refused.
        reason: String,
    },

    /// An attachment file the storage refused (401 / 403: behind credentials we may not send
    /// there, a signed URL that expired, a closed account). Named, so the report can list the
    /// file; the ticket itself is still readable.
    #[error("attachment {name:?}: refused by its storage (HTTP {status}): {detail}")]
    FileDenied {
        /// The file's name.
        name: String,
        /// The HTTP status (401, 403 or 410).
        status: u16,
        /// The storage's message, or a hint (e.g. an expired signed URL).
        detail: String,
    },
}

fn code_suffix(code: &Option<String>) -> String {
    code.as_deref()
        .map(|c| format!(" ({c})"))
        .unwrap_or_default()
}

fn code_inline(code: &Option<String>) -> String {
    code.as_deref()
        .map(|c| format!(", {c}"))
        .unwrap_or_default()
}

fn status_suffix(status: &Option<u16>) -> String {
    status.map(|s| format!(" (HTTP {s})")).unwrap_or_default()
}

impl Desk360Error {
    /// How the engine should handle this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            Desk360Error::RateLimited { .. } => ErrorClass::RateLimited,
            Desk360Error::Transient { .. } => ErrorClass::Transient,
            Desk360Error::NotFound { .. }
            | Desk360Error::Rejected { .. }
            | Desk360Error::Malformed { .. }
            | Desk360Error::FileDenied { .. } => ErrorClass::Permanent,
            Desk360Error::Ambiguous { .. } => ErrorClass::Ambiguous,
            Desk360Error::Config { .. }
            | Desk360Error::Unauthorized { .. }
            | Desk360Error::UnexpectedUrl { .. }
            | Desk360Error::WaitTooLong { .. } => ErrorClass::Fatal,
            Desk360Error::Cancelled { .. } => ErrorClass::Cancelled,
        }
    }

    /// When the rate-limit budget returns, for [`Desk360Error::WaitTooLong`]: the time the
    /// user should start the run again.
    pub fn resume_at(&self) -> Option<jiff::Timestamp> {
        match self {
            Desk360Error::WaitTooLong { resume_at, .. } => Some(*resume_at),
            _ => None,
        }
    }

    /// The API's own error code, when it sent one.
    pub fn api_code(&self) -> Option<&str> {
        match self {
            Desk360Error::Unauthorized { code, .. }
            | Desk360Error::NotFound { code, .. }
            | Desk360Error::Rejected { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The HTTP status of the answer, when one arrived.
    pub fn status(&self) -> Option<u16> {
        match self {
            Desk360Error::Unauthorized { .. } => Some(401),
            Desk360Error::RateLimited { .. } => Some(429),
            Desk360Error::Transient { status, .. } => *status,
            Desk360Error::NotFound { .. } => Some(404),
            Desk360Error::Rejected { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl transport::VendorError for Desk360Error {
    fn cancelled(what: &str) -> Self {
        Desk360Error::Cancelled {
            what: what.to_owned(),
        }
    }

    fn wait_too_long(
        what: &str,
        wait: Duration,
        resume_at: jiff::Timestamp,
        max_wait: Duration,
    ) -> Self {
        Desk360Error::WaitTooLong {
            what: what.to_owned(),
            wait,
            resume_at,
            max_wait,
        }
    }

    fn transient(what: &str, status: Option<u16>, detail: String) -> Self {
        Desk360Error::Transient {
            what: what.to_owned(),
            status,
            detail,
        }
    }

    fn ambiguous(what: &str, status: Option<u16>, detail: String) -> Self {
        Desk360Error::Ambiguous {
            what: what.to_owned(),
            detail: match status {
                Some(status) => format!("HTTP {status}: {detail}"),
                None => detail,
            },
        }
    }

    fn config(reason: String) -> Self {
        Desk360Error::Config { reason }
    }
}

/// Reads Desk360's error body `{"error":{"code","message","doc_url"}}` leniently: also a bare
/// `{"message":…}`, `{"error":"…"}`, or plain text. Returns (code, message).
pub(crate) fn parse_error_body(body: &str, status: u16) -> (Option<String>, String) {
    use serde_json::Value;
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    };
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        let err = v.get("error");
        let code = err
            .and_then(|e| e.get("code"))
            .or_else(|| v.get("code"))
            .and_then(text);
        let message = err
            .and_then(|e| e.get("message"))
            .or_else(|| v.get("message"))
            .and_then(text)
            .or_else(|| err.filter(|e| e.is_string()).and_then(text))
            .or_else(|| v.get("errors").map(|e| e.to_string()));
        if code.is_some() || message.is_some() {
            return (
                code,
                message.unwrap_or_else(|| format!("HTTP {status} without a message")),
            );
        }
    }
    let trimmed = body.trim();
    if trimmed.is_empty() {
        (None, format!("HTTP {status} with an empty body"))
    } else {
        (None, transport::excerpt(trimmed, 200))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_error_body_is_read() {
        let body = r#"{"error":{"code":"failed_validation","message":"The status field is required.","doc_url":"https://docs.desk360.com/api"}}"#;
        let (code, message) = parse_error_body(body, 400);
        assert_eq!(code.as_deref(), Some("failed_validation"));
        assert_eq!(message, "The status field is required.");
    }

    #[test]
    fn other_error_shapes_are_read() {
        assert_eq!(
            parse_error_body(r#"{"message":"nope"}"#, 400),
            (None, "nope".to_owned())
        );
        assert_eq!(
            parse_error_body(r#"{"error":"bad thing"}"#, 400),
            (None, "bad thing".to_owned())
        );
        assert_eq!(
            parse_error_body("<html>Bad Gateway</html>", 502),
            (None, "<html>Bad Gateway</html>".to_owned())
        );
        assert_eq!(parse_error_body("", 500).1, "HTTP 500 with an empty body");
    }

    #[test]
    fn display_keeps_api_code_and_message() {
        let e = Desk360Error::Rejected {
            what: "ticket 1/2".into(),
            status: 400,
            code: Some("failed_validation".into()),
            message: "The status field is required.".into(),
        };
        assert_eq!(
            e.to_string(),
            "ticket 1/2: rejected by Desk360 (HTTP 400, failed_validation): The status field is required."
        );
        assert_eq!(e.class(), ErrorClass::Permanent);
        assert_eq!(e.api_code(), Some("failed_validation"));
    }
}
