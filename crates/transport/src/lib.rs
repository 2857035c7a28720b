//! The HTTP plumbing the Desk360 and Deskie clients share, so both treat the network alike.
//!
//! Each API client keeps its own error enum (its variants carry its vendor's words and say what
//! the engine does about each case), but what those cases *are* is decided once, here:
//!
//! * [`ErrorClass`]: what the engine does about an error (wait, retry later, reconcile, record,
//!   stop, or nothing because the run is stopping).
//! * [`Safety`] and [`Answer`]: how one attempt ends — an HTTP status read as rate limited,
//!   no usable answer, a refusal…, and whether what failed after sending may be sent again
//!   (a read may, a write may not: it is [`VendorError::ambiguous`], reconciled by reading).
//! * [`call`]: one logical request through the limiter and the retry policy
//!   ([`throttle::call`]), the limiter's refusals mapped to the vendor's `Cancelled` /
//!   `WaitTooLong` ([`from_wait`]).
//! * [`http_client`]: the one `reqwest` client setup — timeouts, no redirects (they could carry
//!   credentials elsewhere), and none of reqwest's own retries (they would bypass the limiter).
//! * [`is_loopback`] / [`same_origin`]: where plain HTTP is allowed and which URLs may receive
//!   a credential.
//! * [`excerpt`] / [`describe`]: error text that is short and carries no URL query.
//! * [`lenient`]: serde helpers for fields a vendor sends in more than one shape.
//!
//! It depends on `throttle` only; the API crates depend on it and never on each other.

mod class;
mod client;
pub mod lenient;
mod loopback;
mod text;

pub use class::{Answer, ErrorClass, Safety, VendorError, call, from_wait, unanswered};
pub use client::{TransportError, http_client};
pub use loopback::{is_loopback, is_loopback_host, same_origin};
pub use text::{describe, excerpt};
