//! What an error means for the engine, and what one attempt's ending means for retrying it.
//!
//! The rules, shared by both clients (the Deskie client's module doc has them as a table):
//!
//! | what happened                               | read ([`Safety::Idempotent`]) | write ([`Safety::Write`]) |
//! |---------------------------------------------|-------------------------------|---------------------------|
//! | 429                                         | wait, retry                   | wait, retry (not applied) |
//! | connection never established                | retry                         | retry (never sent)        |
//! | timeout, reset, lost body, 408 or 5xx       | retry                         | ambiguous, never repeated |
//! | any other refusal                           | the vendor's typed error      | the vendor's typed error  |

use std::future::Future;
use std::time::Duration;

use throttle::{CallError, Limiter, Observed, Outcome, RetryPolicy, ThrottleError};

/// What the engine should do about an error. Every vendor error maps onto one of these, so the
/// engine decides the same way whichever API failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The rate limit held through every allowed retry: slow down and try the item later.
    RateLimited,
    /// A failure that changed nothing (a 5xx or timeout on a read, a connection never made),
    /// after the retries: the item can be tried again as it is.
    Transient,
    /// The vendor answered and the answer will not change on retry (404, 400, 422, an
    /// unreadable body): record the item as failed with the vendor's words and go on.
    Permanent,
    /// A write was sent but its outcome is unknown: read before writing again.
    Ambiguous,
    /// Nothing will work (bad configuration, refused credentials, a link to a foreign host, a
    /// rate-limit wait longer than the limiter's maximum — the message says when to resume):
    /// stop the run.
    Fatal,
    /// The run is stopping (Ctrl-C) and this request was never sent: record nothing, stop
    /// quietly; the item is simply still to do (a journaled intent for it can be dropped).
    Cancelled,
}

/// Whether a request may be repeated after it reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Safety {
    /// Repeating it changes nothing on the server (reads, Desk360's login): retry after 5xx,
    /// timeouts and resets.
    Idempotent,
    /// It may change something: retried only when it provably never left this machine; any
    /// failure after sending is [`VendorError::ambiguous`], for the engine to reconcile.
    Write,
}

impl Safety {
    /// The outcome of an attempt that reached the server and then failed without a usable
    /// answer (408, 5xx, a timeout or reset after sending, a lost body): a read is retried as
    /// [`VendorError::transient`], a write is [`VendorError::ambiguous`] and never repeated.
    pub fn after_sending<T, E: VendorError>(
        self,
        what: &str,
        status: Option<u16>,
        detail: String,
    ) -> Outcome<T, E> {
        match self {
            Safety::Idempotent => Outcome::Retryable(E::transient(what, status, detail)),
            Safety::Write => Outcome::Fatal(E::ambiguous(what, status, detail)),
        }
    }
}

/// What an HTTP status says, before a vendor puts it into its own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 2xx.
    Success,
    /// 3xx: never followed (it could carry a credential to another host, or replay a POST as a
    /// GET); reported.
    Redirect,
    /// 401: the credentials were refused.
    Unauthorized,
    /// 403: refused for this caller (Deskie: the agent lacks access; Desk360: a refusal).
    Forbidden,
    /// 404: no such object, or not this account's.
    NotFound,
    /// 429: not applied; wait for the limiter and retry.
    RateLimited,
    /// 408 or 5xx: the server did not (or could not) answer; see [`Safety::after_sending`].
    NoAnswer,
    /// Any other status (400, 409, 422…): retrying the same request fails the same way.
    Refused,
}

impl Answer {
    /// Reads a status code.
    pub fn of(status: u16) -> Self {
        match status {
            200..=299 => Answer::Success,
            300..=399 => Answer::Redirect,
            401 => Answer::Unauthorized,
            403 => Answer::Forbidden,
            404 => Answer::NotFound,
            429 => Answer::RateLimited,
            408 | 500..=599 => Answer::NoAnswer,
            _ => Answer::Refused,
        }
    }
}

/// The cases every vendor error has, so the shared rules can build them. `what` names the
/// request (e.g. `ticket 1/42`, `POST cases.json`); the vendor words the message.
pub trait VendorError: Sized {
    /// The limiter was cancelled while this request waited: nothing was sent.
    fn cancelled(what: &str) -> Self;
    /// The vendor's budget returns later than the limiter may wait: nothing was sent; run again
    /// after `resume_at`.
    fn wait_too_long(
        what: &str,
        wait: Duration,
        resume_at: jiff::Timestamp,
        max_wait: Duration,
    ) -> Self;
    /// A failure that changed nothing (`status` when an answer arrived).
    fn transient(what: &str, status: Option<u16>, detail: String) -> Self;
    /// A write sent without a usable answer (`status` when an answer arrived).
    fn ambiguous(what: &str, status: Option<u16>, detail: String) -> Self;
    /// The request cannot be formed: a configuration problem, raised before anything is sent.
    fn config(reason: String) -> Self;
}

/// Maps the limiter's refusal to wait for the request `what`.
pub fn from_wait<E: VendorError>(error: ThrottleError, what: &str) -> E {
    match error {
        ThrottleError::Cancelled { .. } => E::cancelled(what),
        ThrottleError::WaitTooLong {
            wait,
            resume_at,
            max_wait,
            ..
        } => E::wait_too_long(what, wait, resume_at, max_wait),
    }
}

/// Sends one logical request `what` costing `cost` units through `limiter`, retrying what
/// `attempt` classifies as safe to retry within `policy` ([`throttle::call`]); the limiter's
/// refusals come back as the vendor's error ([`from_wait`]).
pub async fn call<T, E, F, Fut>(
    limiter: &Limiter,
    policy: &RetryPolicy,
    cost: u32,
    what: &str,
    attempt: F,
) -> Result<T, E>
where
    E: VendorError,
    F: FnMut() -> Fut,
    Fut: Future<Output = (Option<Observed>, Outcome<T, E>)>,
{
    throttle::call(limiter, policy, cost, attempt)
        .await
        .map_err(|e| match e {
            CallError::Request(e) => e,
            CallError::Wait(e) => from_wait(e, what),
        })
}

/// The outcome of an attempt that got no response at all (`error`, described by the caller as
/// `detail`, e.g. [`crate::describe`] with any secret removed): a request that could not be
/// built is a configuration error; one whose connection was never established was not sent and
/// is retried even when it is a write; anything else follows [`Safety::after_sending`].
pub fn unanswered<T, E: VendorError>(
    error: &reqwest::Error,
    detail: String,
    safety: Safety,
    what: &str,
) -> Outcome<T, E> {
    if error.is_builder() {
        return Outcome::Fatal(E::config(format!(
            "{what}: cannot build the request: {detail}"
        )));
    }
    if error.is_connect() {
        return Outcome::Retryable(E::transient(what, None, detail));
    }
    safety.after_sending(what, None, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum E {
        Cancelled(String),
        Wait(String, Duration),
        Transient(String, Option<u16>, String),
        Ambiguous(String, Option<u16>, String),
        Config(String),
    }

    impl VendorError for E {
        fn cancelled(what: &str) -> Self {
            E::Cancelled(what.into())
        }
        fn wait_too_long(what: &str, wait: Duration, _: jiff::Timestamp, _: Duration) -> Self {
            E::Wait(what.into(), wait)
        }
        fn transient(what: &str, status: Option<u16>, detail: String) -> Self {
            E::Transient(what.into(), status, detail)
        }
        fn ambiguous(what: &str, status: Option<u16>, detail: String) -> Self {
            E::Ambiguous(what.into(), status, detail)
        }
        fn config(reason: String) -> Self {
            E::Config(reason)
        }
    }

    #[test]
    fn statuses_are_read() {
        let expected = [
            (200, Answer::Success),
            (204, Answer::Success),
            (302, Answer::Redirect),
            (401, Answer::Unauthorized),
            (403, Answer::Forbidden),
            (404, Answer::NotFound),
            (429, Answer::RateLimited),
            (408, Answer::NoAnswer),
            (500, Answer::NoAnswer),
            (503, Answer::NoAnswer),
            (400, Answer::Refused),
            (422, Answer::Refused),
            (101, Answer::Refused),
        ];
        for (status, answer) in expected {
            assert_eq!(Answer::of(status), answer, "{status}");
        }
    }

    #[test]
    fn a_read_is_retried_and_a_write_is_ambiguous_after_sending() {
        match Safety::Idempotent.after_sending::<(), E>("GET x", Some(503), "boom".into()) {
            Outcome::Retryable(e) => {
                assert_eq!(e, E::Transient("GET x".into(), Some(503), "boom".into()))
            }
            other => panic!("{other:?}"),
        }
        match Safety::Write.after_sending::<(), E>("POST x", None, "reset".into()) {
            Outcome::Fatal(e) => assert_eq!(e, E::Ambiguous("POST x".into(), None, "reset".into())),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn limiter_refusals_become_the_vendor_error() {
        let e: E = from_wait(ThrottleError::Cancelled { limiter: "l" }, "GET x");
        assert_eq!(e, E::Cancelled("GET x".into()));
        let e: E = from_wait(
            ThrottleError::WaitTooLong {
                limiter: "l",
                wait: Duration::from_secs(7200),
                resume_at: jiff::Timestamp::UNIX_EPOCH,
                max_wait: Duration::from_secs(900),
            },
            "GET y",
        );
        assert_eq!(e, E::Wait("GET y".into(), Duration::from_secs(7200)));
    }

    #[tokio::test]
    async fn a_connection_never_made_is_retried_even_for_a_write() {
        // A port nobody listens on: the connection is refused, so nothing was sent.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let client = crate::http_client(Duration::from_secs(2)).unwrap();
        let error = client
            .post(format!("http://{addr}/x"))
            .send()
            .await
            .unwrap_err();
        match unanswered::<(), E>(&error, crate::describe(&error), Safety::Write, "POST x") {
            Outcome::Retryable(E::Transient(what, None, detail)) => {
                assert_eq!(what, "POST x");
                assert!(detail.starts_with("could not connect"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
    }
}
