//! Rate limiting and retrying, shared by the Desk360 and Deskie clients.
//!
//! Both vendors count requests in a fixed server-side window (Desk360 per IP, Deskie per account,
//! where writes cost 2) and tell the client, in every response, how much of the window is left.
//! Their limits are the physical limit of a migration's speed, so the goal here is to spend nearly
//! the whole budget without ever provoking a 429 storm:
//!
//! * [`Limiter`] models the *server's* window: a budget of units that refills when the window
//!   ends. It spreads what is left of the budget evenly over what is left of the window, so it
//!   paces smoothly at the nominal rate when it is alone and speeds up or slows down when the
//!   headers say the budget is larger or smaller than assumed (another user of the same account,
//!   a wrong configured plan). It follows tokio's clock, so tests can run it on paused time.
//! * Every response corrects the model through [`Permit::finish`] with the parsed [`RateInfo`];
//!   a 429 pauses every task sharing the limiter until the server's time is up, then traffic
//!   resumes at the paced rate instead of all at once.
//! * [`call`] wraps one logical request: acquire budget, send, feed the headers back, and retry
//!   what is safe to retry with bounded exponential backoff and jitter ([`RetryPolicy`], built on
//!   `backon`; the `backoff` crate is unmaintained, RUSTSEC-2025-0012). Whether a failure is safe
//!   to retry is the caller's decision ([`Outcome`]): a write whose response was lost must not be
//!   sent again blindly, so clients report it as fatal and the engine reconciles it.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

/// What one response said about the server's rate-limit window. Every field is optional because
/// each vendor sends a different subset, and a lost or malformed header must not break a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateInfo {
    /// Units the server allows per window (`X-RateLimit-Limit`, `rate_limit_per_minute`).
    pub limit: Option<u32>,
    /// Units left in the current window (`X-RateLimit-Remaining`, `api_calls_left`).
    pub remaining: Option<u32>,
    /// Time until the current window ends (`X-RateLimit-Reset` minus now, Deskie's `retry_after`).
    pub reset_after: Option<Duration>,
    /// How long to wait before the next request after a 429 (`Retry-After`, `retry_after`).
    pub retry_after: Option<Duration>,
}

impl RateInfo {
    /// Parses a header value given in seconds. Vendors send whole seconds; the sandbox sends
    /// fractions for short test windows, so both are accepted. Garbage yields `None`.
    pub fn parse_seconds(value: &str) -> Option<Duration> {
        let secs: f64 = value.trim().parse().ok()?;
        if secs.is_finite() && secs >= 0.0 {
            Some(Duration::from_secs_f64(secs.min(86_400.0)))
        } else {
            None
        }
    }

    /// Parses a non-negative integer header value such as a limit or a remaining count.
    pub fn parse_count(value: &str) -> Option<u32> {
        let v = value.trim();
        v.parse::<u32>().ok().or_else(|| {
            v.parse::<f64>()
                .ok()
                .filter(|f| *f >= 0.0)
                .map(|f| f as u32)
        })
    }
}

/// How a limiter is set up before the first response corrects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimiterConfig {
    /// Short name for logs ("desk360", "deskie").
    pub name: &'static str,
    /// Units allowed per window, from the configured plan.
    pub limit: u32,
    /// Length of the server's window; 60 s for both vendors, shorter against the test sandbox.
    pub window: Duration,
}

/// Counters a progress display or report can read at any time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimiterStats {
    /// Requests handed a permit.
    pub requests: u64,
    /// Units handed out (a Deskie write counts 2).
    pub units: u64,
    /// 429 answers seen.
    pub throttled: u64,
    /// Transient failures retried by [`call`].
    pub transient_retries: u64,
    /// The limit in force now (configured, or corrected by headers).
    pub limit: u32,
    /// Units the limiter believes are left in the current window.
    pub remaining: i64,
}

#[derive(Debug)]
struct State {
    limit: u32,
    remaining: i64,
    window_end: Instant,
    /// Whether `window_end` came from the server (until the first response it is a guess).
    window_known: bool,
    paused_until: Option<Instant>,
    next_at: Instant,
    inflight: u32,
    stats: LimiterStats,
}

#[derive(Debug)]
struct Inner {
    name: &'static str,
    window: Duration,
    margin: Duration,
    state: Mutex<State>,
}

/// A weighted limiter for one server-side limit scope, shared (cheaply cloned) by every task that
/// spends that scope's budget. See the crate docs for the model.
#[derive(Debug, Clone)]
pub struct Limiter {
    inner: Arc<Inner>,
}

/// The right to send one request of a given cost. Report the response with [`Permit::finish`];
/// dropping it unfinished means no response arrived (connection error, timeout).
#[derive(Debug)]
#[must_use = "a permit must be finished with the response's headers or dropped"]
pub struct Permit {
    limiter: Limiter,
    cost: u32,
    done: bool,
}

impl Limiter {
    /// Creates a limiter assuming a fresh window starts now with the configured budget.
    pub fn new(config: LimiterConfig) -> Self {
        let now = Instant::now();
        let window = config.window.max(Duration::from_millis(1));
        // A small safety margin after the estimated end of a window absorbs clock skew and the
        // whole-second rounding of reset headers: never send into a window we think has ended
        // before the server agrees.
        let margin = (window / 200).clamp(Duration::from_millis(2), Duration::from_millis(500));
        Self {
            inner: Arc::new(Inner {
                name: config.name,
                window,
                margin,
                state: Mutex::new(State {
                    limit: config.limit.max(1),
                    remaining: i64::from(config.limit.max(1)),
                    window_end: now + window,
                    window_known: false,
                    paused_until: None,
                    next_at: now,
                    inflight: 0,
                    stats: LimiterStats {
                        limit: config.limit.max(1),
                        remaining: i64::from(config.limit.max(1)),
                        ..LimiterStats::default()
                    },
                }),
            }),
        }
    }

    /// The name given in the configuration.
    pub fn name(&self) -> &'static str {
        self.inner.name
    }

    /// The server window length this limiter assumes.
    pub fn window(&self) -> Duration {
        self.inner.window
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain numbers behind; keep going with them.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits until a request of `cost` units can be sent without passing the server's window,
    /// paced so the budget is spread over the window. Cancel-safe: nothing is taken until it
    /// returns.
    pub async fn acquire(&self, cost: u32) -> Permit {
        let cost = cost.max(1);
        loop {
            let wake_at = {
                let mut s = self.lock();
                let now = Instant::now();
                self.roll(&mut s, now);
                match self.try_take(&mut s, now, cost) {
                    Ok(()) => {
                        return Permit {
                            limiter: self.clone(),
                            cost,
                            done: false,
                        };
                    }
                    Err(at) => at,
                }
            };
            tokio::time::sleep_until(wake_at).await;
        }
    }

    /// Starts a new local window when the estimated end of the current one has passed.
    fn roll(&self, s: &mut State, now: Instant) {
        if now >= s.window_end {
            while s.window_end <= now {
                s.window_end += self.inner.window;
            }
            s.remaining = i64::from(s.limit);
        }
    }

    /// Either takes `cost` units now or says when to look again.
    fn try_take(&self, s: &mut State, now: Instant, cost: u32) -> Result<(), Instant> {
        if let Some(until) = s.paused_until {
            if until > now {
                return Err(until);
            }
            s.paused_until = None;
        }
        if s.remaining < i64::from(cost) {
            // Budget spent: wait for the server's window to end, with a margin.
            return Err(s.window_end + self.inner.margin);
        }
        if s.next_at > now {
            return Err(s.next_at);
        }
        s.remaining -= i64::from(cost);
        s.inflight += cost;
        s.stats.requests += 1;
        s.stats.units += u64::from(cost);
        s.stats.remaining = s.remaining;
        // Spread what is left over what is left of the window: the nominal rate when alone and
        // on schedule, faster when budget is left over, slower when the headers said others
        // are spending it too.
        let left = s.window_end.saturating_duration_since(now);
        let spacing = if s.remaining > 0 {
            left.mul_f64(f64::from(cost) / (s.remaining as f64 + f64::from(cost)))
        } else {
            Duration::ZERO
        };
        s.next_at = now + spacing;
        Ok(())
    }

    /// Pauses every task sharing this limiter for `duration` from now (a 429, or a caller that
    /// knows better). Pauses only ever extend.
    pub fn pause_for(&self, duration: Duration) {
        let mut s = self.lock();
        let until = Instant::now() + duration + self.inner.margin;
        s.paused_until = Some(s.paused_until.map_or(until, |p| p.max(until)));
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> LimiterStats {
        let s = self.lock();
        LimiterStats {
            limit: s.limit,
            remaining: s.remaining,
            ..s.stats
        }
    }

    fn note_transient(&self) {
        self.lock().stats.transient_retries += 1;
    }

    fn observe(&self, cost: u32, status: Option<u16>, info: &RateInfo) {
        let mut s = self.lock();
        let now = Instant::now();
        s.inflight = s.inflight.saturating_sub(cost);
        if let Some(limit) = info.limit.filter(|l| *l > 0)
            && limit != s.limit
        {
            tracing::debug!(
                limiter = self.inner.name,
                old = s.limit,
                new = limit,
                "server limit differs; following it"
            );
            s.remaining += i64::from(limit) - i64::from(s.limit);
            s.limit = limit;
        }
        let window = self.inner.window;
        let mut new_window = false;
        if let Some(reset_after) = info.reset_after {
            let server_end = now + reset_after;
            if !s.window_known {
                // Our first look at the server's clock: its window, not our guess, is the truth.
                s.window_known = true;
                new_window = server_end > s.window_end + window / 2;
                s.window_end = server_end;
            } else if server_end > s.window_end + window / 2 {
                // The server is already in a later window than we assumed.
                s.window_end = server_end;
                new_window = true;
            } else if server_end + window / 2 > s.window_end {
                // Same window: the earliest end seen is the tightest (headers round up).
                s.window_end = s.window_end.min(server_end).max(now);
            }
        }
        if let Some(remaining) = info.remaining {
            // Assume none of our other in-flight requests were counted yet: conservative by at
            // most what is in flight, exact when nothing else is.
            let corrected = i64::from(remaining) - i64::from(s.inflight);
            if new_window || s.inflight == 0 {
                s.remaining = corrected;
            } else {
                s.remaining = s.remaining.min(corrected);
            }
        }
        if status == Some(429) {
            s.stats.throttled += 1;
            let wait = info.retry_after.or(info.reset_after).unwrap_or(window / 10);
            let until = now + wait + self.inner.margin;
            s.paused_until = Some(s.paused_until.map_or(until, |p| p.max(until)));
            s.remaining = 0;
            // The server refills when the pause ends: make our window end there too.
            s.window_end = now + wait;
            tracing::warn!(
                limiter = self.inner.name,
                wait_ms = wait.as_millis() as u64,
                "rate limited by the server; pausing every request on this limit"
            );
        }
        s.stats.remaining = s.remaining;
    }
}

impl Permit {
    /// Reports the response (any status) so the limiter follows the server's own accounting.
    pub fn finish(mut self, status: u16, info: &RateInfo) {
        self.done = true;
        self.limiter.observe(self.cost, Some(status), info);
    }

    /// The units this permit took.
    pub fn cost(&self) -> u32 {
        self.cost
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.done {
            self.limiter.observe(self.cost, None, &RateInfo::default());
        }
    }
}

/// Bounds for retrying one logical request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after transient failures (5xx, timeouts, resets) before giving up.
    pub max_transient_retries: usize,
    /// Retries after 429 answers before giving up (the limiter already waited the server's time).
    pub max_rate_limited_retries: usize,
    /// First backoff delay.
    pub min_delay: Duration,
    /// Longest backoff delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_transient_retries: 5,
            max_rate_limited_retries: 10,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The backoff delays: exponential with jitter, at most `max_transient_retries` of them.
    pub fn backoff(&self) -> impl Iterator<Item = Duration> + use<> {
        use backon::BackoffBuilder;
        backon::ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_transient_retries)
            .with_jitter()
            .build()
    }
}

/// What the server answered, as far as the limiter cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// HTTP status code.
    pub status: u16,
    /// Parsed rate-limit headers.
    pub info: RateInfo,
}

/// How one attempt ended, as classified by the client that made it.
#[derive(Debug)]
pub enum Outcome<T, E> {
    /// Success: return the value.
    Done(T),
    /// 429: the request was not applied; retry after the limiter's pause.
    RateLimited(E),
    /// Safe to retry after a backoff (a read that failed, or a write known not to have reached
    /// the server).
    Retryable(E),
    /// Do not retry here: a permanent rejection, or a write whose outcome is unknown.
    Fatal(E),
}

/// Sends one logical request through `limiter`, retrying what `send` classifies as safe to retry
/// within `policy`'s bounds. `send` performs one attempt and reports the response's status and
/// headers (if a response arrived) with the outcome. Returns the last error when the bounds are
/// exhausted, so the caller can record it as a transient failure.
pub async fn call<T, E, F, Fut>(
    limiter: &Limiter,
    policy: &RetryPolicy,
    cost: u32,
    mut send: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = (Option<Observed>, Outcome<T, E>)>,
{
    let mut backoff = policy.backoff();
    let mut rate_limited = 0usize;
    loop {
        let permit = limiter.acquire(cost).await;
        let (observed, outcome) = send().await;
        match observed {
            Some(o) => permit.finish(o.status, &o.info),
            None => drop(permit),
        }
        match outcome {
            Outcome::Done(value) => return Ok(value),
            Outcome::Fatal(error) => return Err(error),
            Outcome::RateLimited(error) => {
                rate_limited += 1;
                if rate_limited > policy.max_rate_limited_retries {
                    return Err(error);
                }
                if observed.is_none_or(|o| o.status != 429) {
                    // Classified as rate limited without a 429 status: pause anyway.
                    limiter.pause_for(limiter.window() / 10);
                }
            }
            Outcome::Retryable(error) => match backoff.next() {
                Some(delay) => {
                    limiter.note_transient();
                    tracing::debug!(
                        limiter = limiter.name(),
                        delay_ms = delay.as_millis() as u64,
                        "transient failure; retrying"
                    );
                    tokio::time::sleep(delay).await;
                }
                None => return Err(error),
            },
        }
    }
}

#[cfg(test)]
mod tests;
