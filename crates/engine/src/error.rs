//! The engine's error: what stops a whole run. Per-ticket problems never come here; they are
//! recorded in the store as that ticket's failure and the run goes on.

use crate::config::ConfigError;

/// A reason the run (or command) cannot go on. The binary maps these to exit codes: `Config`
/// and `WrongAccount` to 2, everything else to 1.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The configuration is invalid; nothing was sent.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The checkpoint store failed; the run stops with the store consistent.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// Desk360 refused something the whole run needs (credentials, the product list).
    #[error("Desk360: {0}")]
    Source(#[from] desk360::Desk360Error),
    /// Deskie refused something the whole run needs (credentials).
    #[error("Deskie: {0}")]
    Target(#[from] deskie::DeskieError),
    /// The store belongs to another Desk360 or Deskie account than the configuration points at
    /// (the message says which side and what to do); nothing was written. The binary exits 2.
    #[error("{0}")]
    WrongAccount(String),
    /// A preflight finding with no fallback forbids the run (exit 2: nothing was written); the
    /// line names the finding and the fix.
    #[error("{0}")]
    Refused(String),
    /// A task of the run panicked or was aborted: a bug; the store stays consistent.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Results of the engine.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// An API error as a ticket's (or page's) failure sees it: how to handle it, the code and the
/// words to show. Implemented for both clients' errors so [`failure_of`] is the one place that
/// turns an error into a failure record.
pub trait ItemError: std::fmt::Display {
    /// The client's classification ([`desk360::ErrorClass`], shared by both clients).
    fn class(&self) -> desk360::ErrorClass;
    /// The API's own error code, else the HTTP status, when there is one.
    fn code(&self) -> Option<String>;
    /// What to show the user: the vendor's own message where it is the whole story, else the
    /// error's text.
    fn message(&self) -> String {
        self.to_string()
    }
}

impl ItemError for desk360::Desk360Error {
    fn class(&self) -> desk360::ErrorClass {
        self.class()
    }

    fn code(&self) -> Option<String> {
        self.api_code()
            .map(str::to_owned)
            .or_else(|| self.status().map(|s| s.to_string()))
    }
}

impl ItemError for deskie::DeskieError {
    fn class(&self) -> desk360::ErrorClass {
        self.class()
    }

    fn code(&self) -> Option<String> {
        self.status().map(|s| s.to_string())
    }

    /// A refusal's message is Deskie's own words (the status is in the code).
    fn message(&self) -> String {
        match self {
            deskie::DeskieError::Rejected { message, .. }
            | deskie::DeskieError::NotFound { message, .. }
                if !message.is_empty() =>
            {
                message.clone()
            }
            other => other.to_string(),
        }
    }
}

/// Longest request kept in a failure record: enough to see the payload, bounded for the store.
const MAX_REQUEST_CHARS: usize = 2000;

/// The failure record of `err`, which stopped `step` of `stage` (sending `request`, already
/// redacted). What is worth retrying later (rate limited, transient, ambiguous) is transient;
/// the rest is permanent. Fatal and cancelled errors stop the run instead: callers handle them
/// before recording anything.
pub fn failure_of<E: ItemError>(
    err: &E,
    stage: store::Stage,
    step: impl Into<store::FailureStep>,
    request: Option<String>,
) -> store::FailureRecord {
    use desk360::ErrorClass;
    let class = match err.class() {
        ErrorClass::RateLimited | ErrorClass::Transient | ErrorClass::Ambiguous => {
            store::FailureClass::Transient
        }
        ErrorClass::Permanent | ErrorClass::Fatal | ErrorClass::Cancelled => {
            store::FailureClass::Permanent
        }
    };
    store::FailureRecord {
        stage,
        step: step.into(),
        class,
        code: err.code(),
        message: err.message(),
        request: request.map(|r| truncate(&r, MAX_REQUEST_CHARS)),
    }
}

/// `s` cut to at most `max` bytes on a character boundary, with `…` when cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::{FailureClass, FailureStep, IntentStep, Stage};

    #[test]
    fn both_clients_errors_become_one_kind_of_record() {
        let e = desk360::Desk360Error::NotFound {
            what: "ticket 1/2".into(),
            code: Some("model_not_found_exception".into()),
            message: "gone".into(),
        };
        let r = failure_of(
            &e,
            Stage::Extract,
            FailureStep::Detail,
            Some("GET x".into()),
        );
        assert_eq!(r.class, FailureClass::Permanent);
        assert_eq!(r.code.as_deref(), Some("model_not_found_exception"));
        assert_eq!(r.message, e.to_string());
        assert_eq!(r.step.to_string(), "detail");

        let e = desk360::Desk360Error::Transient {
            what: "ticket page".into(),
            status: Some(503),
            detail: "down".into(),
        };
        let r = failure_of(&e, Stage::Extract, FailureStep::List, None);
        assert_eq!(
            (r.class, r.code.as_deref()),
            (FailureClass::Transient, Some("503"))
        );

        let e = deskie::DeskieError::Rejected {
            what: "POST cases.json".into(),
            status: 422,
            message: "subject: can't be blank".into(),
        };
        let long = "x".repeat(5000);
        let r = failure_of(&e, Stage::Load, IntentStep::Create, Some(long));
        assert_eq!(r.class, FailureClass::Permanent);
        assert_eq!(r.code.as_deref(), Some("422"));
        assert_eq!(r.message, "subject: can't be blank");
        assert_eq!(r.step, "create");
        assert!(
            r.request
                .is_some_and(|q| q.chars().count() == MAX_REQUEST_CHARS + 1)
        );

        let e = deskie::DeskieError::Ambiguous {
            what: "POST cases/1/messages.json".into(),
            detail: "timed out".into(),
        };
        let r = failure_of(&e, Stage::Load, IntentStep::Message(9), None);
        assert_eq!(r.class, FailureClass::Transient);
        assert_eq!(r.step.to_string(), "message:9");
        assert_eq!(r.message, e.to_string());
    }
}
