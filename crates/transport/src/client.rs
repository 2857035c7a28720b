//! The one `reqwest` client setup both API clients use.

use std::time::Duration;

/// Why the HTTP client could not be built (a TLS backend that fails to start, say).
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// `reqwest` refused the settings; nothing was sent.
    #[error("cannot build the HTTP client: {detail}")]
    Build {
        /// The error and its causes.
        detail: String,
    },
}

/// Longest wait for a connection: a dead host is noticed quickly even when a slow page may take
/// the whole request timeout.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client bounding each whole request by `timeout` (its connect phase by the smaller of that
/// and 10 s) that never follows a redirect and never retries on its own.
///
/// A redirect could carry a credential to another host, and a redirected POST is replayed as a
/// GET whose answer would be mistaken for the write's: both clients report a 3xx instead.
/// reqwest's own retries of protocol-level refusals would send an attempt the limiter never
/// counted and repeat writes behind the journal's back: every retry goes through
/// [`crate::call`] instead.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, TransportError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(MAX_CONNECT_TIMEOUT))
        .redirect(reqwest::redirect::Policy::none())
        .retry(reqwest::retry::never())
        .user_agent(concat!("deskie-import/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| TransportError::Build {
            detail: crate::describe(&e),
        })
}
