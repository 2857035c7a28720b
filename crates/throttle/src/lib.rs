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
//! * The window's *length* is learned too (issue #14.1): a server that says "per minute" but
//!   refreshes every 10 s shows it by the end it announces jumping by 10 s (Deskie's
//!   `retry_after` jumping up, Desk360's `X-RateLimit-Reset` epoch moving on). Ends announced
//!   late by whole-second rounding are corrected once an answer from the next window arrives
//!   before the announced end. An answer only says the end lies between its send time and its
//!   arrival plus the reset it carries (an upload can be served for a large part of a window),
//!   so a slow answer never starts a window, and a length is learned only between two ends the
//!   server told, from answers that came back quickly, never below a twentieth of the
//!   configured window (a misread would otherwise scale the budget down to nothing: the
//!   crash-loop hang).
//! * A request dearer than a whole window's budget (a write of 2 under a ceiling of 1) goes when
//!   the window is otherwise unspent, instead of waiting for budget that never comes.
//! * A request is metered only when it reaches the server: what is sent in the last moments of a
//!   window is counted in the next one. How long before the end that holds (the *lead*) is
//!   learned from which window each request's answer says it was metered in; the window's budget
//!   is spent by its end less the lead, and sends after that count in the next window, so a
//!   window is not left short by what is on the way at its end (issue #14.1). The lead is at
//!   most half the shortest "window end − send time" of a request metered in its window over two
//!   windows, and none after a 429, a request sent ahead that was metered in the old window
//!   anyway, or headers whose ends had to be corrected.
//! * What the account's *other* consumers spend shows as the server's remaining count dropping
//!   faster than our own spending; what they spent in the last window is kept back for them in
//!   the rest of the current one (spent at the window's start or spread over it alike).
//! * An explicit `rpm` is a ceiling ([`LimiterConfig::ceiling`]): headers may lower the limit,
//!   never raise it above.
//! * Every wait is bounded ([`LimiterConfig::max_wait`]: beyond it [`ThrottleError::WaitTooLong`]
//!   says when the budget returns) and ends at once when the limiter's cancellation token fires
//!   ([`Limiter::with_cancel`], [`ThrottleError::Cancelled`]: nothing was sent).
//! * [`call`] wraps one logical request: acquire budget, send, feed the headers back, and retry
//!   what is safe to retry with bounded exponential backoff and jitter ([`RetryPolicy`], built on
//!   `backon`; the `backoff` crate is unmaintained, RUSTSEC-2025-0012). Whether a failure is safe
//!   to retry is the caller's decision ([`Outcome`]): a write whose response was lost must not be
//!   sent again blindly, so clients report it as fatal and the engine reconciles it.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;
/// The token [`Limiter::with_cancel`] takes, re-exported so callers need no `tokio-util` import.
pub use tokio_util::sync::CancellationToken;

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
    /// Units allowed per window, from the configured plan. Headers may correct it either way,
    /// unless [`LimiterConfig::ceiling`] caps it.
    pub limit: u32,
    /// Length of the server's window as configured: 60 s for both vendors, shorter against the
    /// test sandbox. Only the first guess: the limiter learns the real length from the headers
    /// (see [`Limiter::window`]).
    pub window: Duration,
    /// An explicit ceiling, in units per `window` (so per minute for the vendors): the headers
    /// may lower the limit below it, never raise it above. Set it when the user chose an `rpm`
    /// to leave room for the account's other integrations (issue #11.7); `None` follows the
    /// headers both ways. When the server's window turns out shorter, the ceiling is scaled to
    /// it, so `120` stays 120 units a minute however the server slices its windows.
    pub ceiling: Option<u32>,
    /// The longest a single [`Limiter::acquire`] may wait. A wait the server imposes beyond it
    /// (a `Retry-After` of hours, a daily quota) fails with [`ThrottleError::WaitTooLong`]
    /// naming when the budget returns, instead of silently pausing the run.
    /// [`LimiterConfig::DEFAULT_MAX_WAIT`] unless the caller knows better.
    pub max_wait: Duration,
}

impl LimiterConfig {
    /// 15 minutes. Both vendors document per-minute windows, so every wait the limiter imposes
    /// by itself (pacing, the end of a spent window, a 429 until the window refreshes) is at
    /// most about a minute; 15 minutes leaves room for a server that is slow to refresh or a
    /// few consecutive 429 pauses, while a wait longer than that means something else (a daily
    /// quota, a suspended account, a misconfigured proxy): the user is better told when to come
    /// back than left with a run that looks hung.
    pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(15 * 60);

    /// A configuration with no ceiling and the default maximum wait.
    pub fn new(name: &'static str, limit: u32, window: Duration) -> Self {
        Self {
            name,
            limit,
            window,
            ceiling: None,
            max_wait: Self::DEFAULT_MAX_WAIT,
        }
    }
}

impl Default for LimiterConfig {
    /// 60 units a minute, no ceiling, the default maximum wait: a placeholder for
    /// `..LimiterConfig::default()` after the fields a caller sets.
    fn default() -> Self {
        Self::new("limiter", 60, Duration::from_secs(60))
    }
}

/// Why [`Limiter::acquire`] (and so [`call`]) gave up before sending: the crate's one error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThrottleError {
    /// The limiter's cancellation token fired (Ctrl-C) while waiting for budget, or before.
    /// Nothing was sent by this wait: a write that waited here can be forgotten, not reconciled.
    #[error("{limiter}: stopped while waiting for rate-limit budget; nothing was sent")]
    Cancelled {
        /// The limiter's name.
        limiter: &'static str,
    },
    /// The server's budget returns later than [`LimiterConfig::max_wait`] allows waiting.
    #[error(
        "{limiter}: the rate-limit budget returns only in {}s, at {resume_at}, longer than the \
         {}s this run may wait; nothing was sent: run again after {resume_at}",
        .wait.as_secs(), .max_wait.as_secs()
    )]
    WaitTooLong {
        /// The limiter's name.
        limiter: &'static str,
        /// How long the wait would have been.
        wait: Duration,
        /// When (wall clock, UTC) the budget returns: the time to resume.
        resume_at: jiff::Timestamp,
        /// The bound that was exceeded.
        max_wait: Duration,
    },
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
    /// The limit in force now, per server window (configured, corrected by headers, capped by
    /// the ceiling).
    pub limit: u32,
    /// Units the limiter believes it may still spend in the current window (never above
    /// `limit`; negative when the server says more was spent than assumed).
    pub remaining: i64,
    /// The server window length in force (configured, or learned from the headers).
    pub window: Duration,
    /// Units the limiter holds back in the current window for the account's other consumers.
    pub reserved: i64,
}

#[derive(Debug)]
struct State {
    /// The server's units per window (configured until a header says otherwise).
    limit: u32,
    /// Units the server has left in the current window, less our requests it has not counted
    /// yet: the budget of everyone sharing the scope.
    remaining: i64,
    /// Units we took in the current window (for the ceiling and the other-consumer estimate).
    spent: i64,
    /// Units we had in flight when the current window began (they may land in either window).
    carried: i64,
    /// Server window length in force.
    window: Duration,
    /// Whether `window` was learned from the headers (else it is the configured guess).
    window_learned: bool,
    window_end: Instant,
    /// Whether `window_end` came from the server for the current window (else it is a guess).
    window_known: bool,
    /// End of the previous window, to recognise late answers from it.
    prev_end: Option<Instant>,
    /// Whether `prev_end` is the server's own end (read from headers) rather than a guess or a
    /// bound: only a window length measured between two ends the server told is learned.
    prev_known: bool,
    /// How much later than the truth the headers put a window's end: learned when an answer
    /// from the next window arrives before the end they announced (a reset epoch rounded up
    /// to whole seconds is a constant fraction of a second late), subtracted from every reading.
    end_bias: Duration,
    /// Answers that agreed on the current window's end: only an end read several times is
    /// tight enough to learn `end_bias` from.
    end_readings: u32,
    /// Largest estimate, in this window, of what the account's other consumers spent.
    others_seen: i64,
    /// What the other consumers spent in the previous window: expected again in this one.
    others_last: i64,
    /// (when, estimate) at the first reading past the middle of the window and at the latest
    /// increase: if the others were still spending in the second half, what they spent after
    /// our last reading is extrapolated from that pace.
    others_mid: Option<(Instant, i64)>,
    others_latest: Option<(Instant, i64)>,
    paused_until: Option<Instant>,
    next_at: Instant,
    inflight: u32,
    /// How long before the server's window end a request may be sent and still be metered in
    /// the next window: the part of its latency before the server counts it. Budget of the
    /// current window is spent by `window_end - lead`, and from then on sends count in the next
    /// one, so the window is not left short by what is on the way at its end. Zero until two
    /// windows showed it; back to zero after a 429 or a request sent after that point that
    /// was metered in the old window anyway.
    lead: Duration,
    /// Smallest "window end − send time" of a request metered in that window, in this window
    /// and the previous one: no request is metered later after its sending than that, so it
    /// bounds the shortest way to the server from above.
    lag_seen: Option<Duration>,
    lag_last: Option<Duration>,
    /// Half the shortest lead that proved too long (a request sent after `window_end - lead`
    /// metered in the old window): the lead stays below it for the rest of the run.
    lead_cap: Duration,
    stats: LimiterStats,
}

#[derive(Debug)]
struct Inner {
    name: &'static str,
    config: LimiterConfig,
    cancel: Option<CancellationToken>,
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
    /// When it was handed out: how long before its window's end it was sent is what the
    /// limiter learns its [`State::lead`] from.
    sent_at: Instant,
    done: bool,
}

/// Largest gap between two readings of the same window end (whole-second header rounding plus
/// the answer's travel time); ends further apart belong to different windows.
const MAX_END_JITTER: Duration = Duration::from_millis(1500);

impl Limiter {
    /// Creates a limiter assuming a fresh window starts now with the configured budget. Its
    /// waits end only by themselves: use [`Limiter::with_cancel`] for a run that Ctrl-C stops.
    pub fn new(config: LimiterConfig) -> Self {
        Self::build(config, None)
    }

    /// Like [`Limiter::new`], with a cancellation token: once it fires, every wait of this
    /// limiter (pacing, a 429 pause, [`call`]'s backoff) ends at once with
    /// [`ThrottleError::Cancelled`], and no new permit is handed out, even with budget left —
    /// after Ctrl-C nothing new is sent, only what is already on the wire finishes.
    pub fn with_cancel(config: LimiterConfig, cancel: CancellationToken) -> Self {
        Self::build(config, Some(cancel))
    }

    fn build(config: LimiterConfig, cancel: Option<CancellationToken>) -> Self {
        let now = Instant::now();
        let window = config.window.max(Duration::from_millis(1));
        let config = LimiterConfig { window, ..config };
        let limit = config.limit.max(1);
        let mut state = State {
            limit,
            remaining: i64::from(limit),
            spent: 0,
            carried: 0,
            window,
            window_learned: false,
            window_end: now + window,
            window_known: false,
            prev_end: None,
            prev_known: false,
            end_bias: Duration::ZERO,
            end_readings: 0,
            others_seen: 0,
            others_last: 0,
            others_mid: None,
            others_latest: None,
            paused_until: None,
            next_at: now,
            inflight: 0,
            lead: Duration::ZERO,
            lag_seen: None,
            lag_last: None,
            lead_cap: Duration::MAX,
            stats: LimiterStats::default(),
        };
        state.stats = snapshot(&config, &state);
        Self {
            inner: Arc::new(Inner {
                name: config.name,
                config,
                cancel,
                state: Mutex::new(state),
            }),
        }
    }

    /// The name given in the configuration.
    pub fn name(&self) -> &'static str {
        self.inner.name
    }

    /// The server window length in force: the configured one until the headers showed
    /// another (a server that says "per minute" but refreshes every 10 s is followed).
    pub fn window(&self) -> Duration {
        self.lock().window
    }

    /// The longest one [`Limiter::acquire`] waits before failing with
    /// [`ThrottleError::WaitTooLong`].
    pub fn max_wait(&self) -> Duration {
        self.inner.config.max_wait
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain numbers behind; keep going with them.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn cancelled(&self) -> ThrottleError {
        ThrottleError::Cancelled {
            limiter: self.inner.name,
        }
    }

    fn too_long(&self, wait: Duration) -> ThrottleError {
        let resume_at = jiff::SignedDuration::try_from(wait)
            .ok()
            .and_then(|d| jiff::Timestamp::now().checked_add(d).ok())
            .unwrap_or(jiff::Timestamp::MAX);
        ThrottleError::WaitTooLong {
            limiter: self.inner.name,
            wait,
            resume_at,
            max_wait: self.inner.config.max_wait,
        }
    }

    /// Sleeps until `at` unless the cancellation token fires first.
    async fn sleep_until(&self, at: Instant) -> Result<(), ThrottleError> {
        match &self.inner.cancel {
            Some(cancel) => tokio::select! {
                biased;
                () = cancel.cancelled() => Err(self.cancelled()),
                () = tokio::time::sleep_until(at) => Ok(()),
            },
            None => {
                tokio::time::sleep_until(at).await;
                Ok(())
            }
        }
    }

    /// A backoff sleep for [`call`]: bounded by the maximum wait, ended by cancellation.
    async fn backoff_sleep(&self, delay: Duration) -> Result<(), ThrottleError> {
        if self.inner.cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
            return Err(self.cancelled());
        }
        let delay = delay.min(self.inner.config.max_wait);
        self.sleep_until(Instant::now() + delay).await
    }

    /// Waits until a request of `cost` units can be sent without passing the server's window,
    /// paced so the budget is spread over the window. Cancel-safe: nothing is taken until it
    /// returns.
    ///
    /// Fails without sending anything when the limiter's token is cancelled
    /// ([`ThrottleError::Cancelled`]) or when the budget returns later than
    /// [`LimiterConfig::max_wait`] from the start of this call
    /// ([`ThrottleError::WaitTooLong`], which says when).
    pub async fn acquire(&self, cost: u32) -> Result<Permit, ThrottleError> {
        let cost = cost.max(1);
        let deadline = Instant::now() + self.inner.config.max_wait;
        loop {
            if self.inner.cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
                return Err(self.cancelled());
            }
            let wake_at = {
                let mut s = self.lock();
                let now = Instant::now();
                self.roll(&mut s, now);
                match self.try_take(&mut s, now, cost) {
                    Ok(()) => {
                        return Ok(Permit {
                            limiter: self.clone(),
                            cost,
                            sent_at: now,
                            done: false,
                        });
                    }
                    Err(at) if at > deadline => {
                        let wait = at.saturating_duration_since(now);
                        tracing::warn!(
                            limiter = self.inner.name,
                            wait_s = wait.as_secs(),
                            "rate-limit budget returns later than the maximum wait; giving up"
                        );
                        return Err(self.too_long(wait));
                    }
                    Err(at) => at,
                }
            };
            self.sleep_until(wake_at).await?;
        }
    }

    /// Starts a new local window when the estimated end of the current one has passed.
    fn roll(&self, s: &mut State, now: Instant) {
        // What is sent from `lead` before the end on is metered in the next window.
        let now = now + s.lead;
        if now >= s.window_end {
            let told_end = s.window_end;
            let mut last_end = s.window_end;
            while s.window_end <= now {
                last_end = s.window_end;
                s.window_end += s.window;
            }
            // The end the server told is known; one extrapolated past it is a guess.
            s.prev_known = s.window_known && last_end == told_end;
            s.prev_end = Some(last_end);
            s.window_known = false;
            Self::start_window(s, last_end);
        }
    }

    /// Resets the per-window counters at the start of a window; the previous one ended at
    /// `ended`.
    fn start_window(s: &mut State, ended: Instant) {
        s.remaining = i64::from(s.limit);
        s.spent = 0;
        s.carried = i64::from(s.inflight);
        let mut others = s.others_seen;
        if let (Some((mid_at, mid)), Some((last_at, last))) = (s.others_mid, s.others_latest)
            && last_at > mid_at
            && last > mid
        {
            let pace = (last - mid) as f64 / (last_at - mid_at).as_secs_f64();
            let tail = ended.saturating_duration_since(last_at).as_secs_f64();
            others = last + (pace * tail).ceil() as i64;
        }
        s.others_last = others.min(i64::from(s.limit));
        s.others_seen = 0;
        s.others_mid = None;
        s.others_latest = None;
        if s.lag_seen.is_some() {
            s.lag_last = s.lag_seen.take();
        }
        s.lead = Self::lead_from(s);
    }

    /// The lead two windows of sends show: half the bound on the shortest way to the server,
    /// less twice the nominal spacing between sends (the bound is only as tight as the sends
    /// near a window's end are dense), at most a twentieth of the window and a second.
    fn lead_from(s: &State) -> Duration {
        let (Some(seen), Some(last)) = (s.lag_seen.or(s.lag_last), s.lag_last) else {
            return Duration::ZERO;
        };
        if !s.end_bias.is_zero() {
            // The headers put ends late by an amount only estimated: a send-time bound
            // measured against them is not tight enough to send ahead on.
            return Duration::ZERO;
        }
        let bound = seen.min(last);
        let spacing = s.window.mul_f64(2.0 / f64::from(s.limit.max(1)));
        (bound / 2)
            .min(bound.saturating_sub(spacing * 2))
            .min(s.lead_cap)
            .min(s.window / 20)
            .min(Duration::from_secs(1))
    }

    /// Learns from one answer how long before its window's end a request can be sent and still
    /// be metered in it (see [`State::lead`]). `stale`: the answer is from the window that
    /// ended at `prev_end`.
    fn learn_lead(s: &mut State, sent_at: Instant, stale: bool) {
        let end = if stale {
            s.prev_end
        } else if s.window_known {
            Some(s.window_end)
        } else {
            None
        };
        let Some(end) = end else { return };
        let Some(before) = end.checked_duration_since(sent_at) else {
            return;
        };
        if stale && before < s.lead {
            // Sent as part of the next window, metered in the old one: the lead was too long,
            // and no later one may reach half of this.
            s.lead = Duration::ZERO;
            s.lead_cap = s.lead_cap.min(before / 2);
            s.lag_last = None;
        }
        s.lag_seen = Some(s.lag_seen.map_or(before, |b| b.min(before)));
    }

    /// A small safety margin after the estimated end of a window absorbs clock skew and the
    /// rounding of reset headers: never send into a window we think has ended before the
    /// server agrees.
    fn margin(s: &State) -> Duration {
        (s.window / 200).clamp(Duration::from_millis(2), Duration::from_millis(500))
    }

    /// Either takes `cost` units now or says when to look again.
    fn try_take(&self, s: &mut State, now: Instant, cost: u32) -> Result<(), Instant> {
        if let Some(until) = s.paused_until {
            if until > now {
                return Err(until);
            }
            s.paused_until = None;
        }
        let available = available(&self.inner.config, s);
        let send_end = s.window_end.checked_sub(s.lead).unwrap_or(s.window_end);
        // A request costing more than a whole window allows (a write of 2 under a ceiling of 1)
        // goes when the window is otherwise untouched, rather than never.
        let need = i64::from(cost).min(capacity(&self.inner.config, s));
        if available < need {
            // Budget spent: wait for the server's window to end (less the lead), with a margin.
            return Err(send_end + Self::margin(s));
        }
        if s.next_at > now {
            return Err(s.next_at);
        }
        s.remaining -= i64::from(cost);
        s.spent += i64::from(cost);
        s.inflight += cost;
        s.stats.requests += 1;
        s.stats.units += u64::from(cost);
        // Spread what is left over what is left of the window: the nominal rate when alone and
        // on schedule, faster when budget is left over, slower when the headers said others
        // are spending it too.
        let after = available - i64::from(cost);
        let left = send_end.saturating_duration_since(now);
        let mut spacing = if after > 0 {
            left.mul_f64(f64::from(cost) / (after as f64 + f64::from(cost)))
        } else {
            Duration::ZERO
        };
        if let Some(ceiling) = self.inner.config.ceiling {
            // Never faster than the ceiling's own pace, even before the window is learned.
            let pace = self
                .inner
                .config
                .window
                .mul_f64(f64::from(cost) / f64::from(ceiling.max(1)));
            spacing = spacing.max(pace);
        }
        s.next_at = now + spacing;
        s.stats = snapshot(&self.inner.config, s);
        Ok(())
    }

    /// Pauses every task sharing this limiter for `duration` from now (a 429, or a caller that
    /// knows better). Pauses only ever extend.
    pub fn pause_for(&self, duration: Duration) {
        let mut s = self.lock();
        let until = Instant::now() + duration + Self::margin(&s);
        s.paused_until = Some(s.paused_until.map_or(until, |p| p.max(until)));
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> LimiterStats {
        let s = self.lock();
        snapshot(&self.inner.config, &s)
    }

    fn note_transient(&self) {
        self.lock().stats.transient_retries += 1;
    }

    /// Follows a window length seen between two consecutive window ends told by the server,
    /// from answers that came back quickly: a shorter one at once (the server refreshes more
    /// often than assumed), a similar one smoothed. A much longer one is usually windows that
    /// passed unused and is ignored, unless the server says the window it is in lasts longer
    /// from now (`left`) than the length we hold: then ours was too short. Never below a
    /// twentieth of the configured window, whatever the headers seem to say: a misread there
    /// would scale the budget down to nothing.
    fn learn_window(&self, s: &mut State, jump: Duration, left: Duration) {
        let floor = (self.inner.config.window / 20).max(Duration::from_millis(1));
        if jump < floor {
            return;
        }
        let old = s.window;
        if !s.window_learned || jump < old.mul_f64(0.75) {
            s.window = jump;
        } else if jump <= old.mul_f64(1.5) {
            s.window = (old * 3 + jump) / 4;
        } else if left > old.mul_f64(1.25) {
            s.window = jump;
        } else {
            return;
        }
        s.window_learned = true;
        if s.window != old {
            tracing::debug!(
                limiter = self.inner.name,
                old_ms = old.as_millis() as u64,
                new_ms = s.window.as_millis() as u64,
                "server window length learned from the headers"
            );
        }
    }

    fn observe(&self, cost: u32, sent_at: Instant, status: Option<u16>, info: &RateInfo) {
        let mut s = self.lock();
        let now = Instant::now();
        s.inflight = s.inflight.saturating_sub(cost);
        self.follow_limit(&mut s, info);
        // Which server window this answer speaks of.
        let tolerance = (s.window / 4).min(MAX_END_JITTER);
        let (new_window, stale) = self.place_answer(&mut s, (sent_at, now), tolerance, info);
        if !stale {
            Self::count_remaining(&mut s, now, status, new_window, info);
        }
        if status.is_some_and(|st| st != 429) && info.reset_after.is_some() {
            Self::learn_lead(&mut s, sent_at, stale);
        }
        if status == Some(429) {
            self.pause_after_429(&mut s, now, tolerance, info);
        }
        s.stats = snapshot(&self.inner.config, &s);
    }

    /// Follows the limit the server states when it differs from ours.
    fn follow_limit(&self, s: &mut State, info: &RateInfo) {
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
    }

    /// Places an answer in the server's windows from its reset header: a later window starts
    /// ours (learning the window length from the jump), an earlier one is stale. Answers
    /// `(new_window, stale)`.
    ///
    /// The server read its clock somewhere between `sent_at` and `now` (an upload or a busy
    /// connection can keep an answer for a large part of a window), so an answer says only
    /// that the end lies between `sent_at + reset_after` and `now + reset_after`. An answer is
    /// placed in a later window only when even the earliest of those is past the current end,
    /// and it is stale when the end it may speak of is the previous one; a window length is
    /// learned only from answers that came back quickly.
    fn place_answer(
        &self,
        s: &mut State,
        (sent_at, now): (Instant, Instant),
        tolerance: Duration,
        info: &RateInfo,
    ) -> (bool, bool) {
        let Some(reset_after) = info.reset_after else {
            return (false, false);
        };
        // The latest the end can be (the server read its clock as the answer left), and the
        // earliest (it read it as the request arrived).
        let server_end = (now + reset_after)
            .checked_sub(s.end_bias)
            .unwrap_or(now)
            .max(now);
        let earliest_end = (sent_at + reset_after)
            .checked_sub(s.end_bias)
            .unwrap_or(sent_at);
        // Quick enough that where the server's clock was read hardly matters.
        let precise = now.saturating_duration_since(sent_at) <= tolerance / 2;
        if s.window_known {
            if earliest_end > s.window_end + tolerance {
                // The server is already in a later window than we assumed. If the end we
                // believed is still ahead, the headers put ends too late by at least that
                // much: the next window began no later than this answer was written.
                let late = if s.end_readings >= 3 && precise {
                    s.window_end.saturating_duration_since(now)
                } else {
                    Duration::ZERO
                };
                if !late.is_zero() {
                    s.end_bias = (s.end_bias + late).min(tolerance);
                }
                let server_end = server_end.checked_sub(late).unwrap_or(server_end);
                if precise {
                    // From an end the server told to the next one: one window, unless the
                    // end was still ahead (then `now` bounds it, and the jump is only a bound).
                    let jump = server_end - s.window_end.min(now);
                    self.learn_window(s, jump, server_end - now);
                }
                let ended = s.window_end.min(now);
                s.prev_known = s.window_end <= now;
                s.prev_end = Some(ended);
                s.window_end = server_end;
                s.end_readings = 1;
                Self::start_window(s, ended);
                return (true, false);
            }
            if server_end + tolerance < s.window_end {
                // A late answer from a window that already ended.
                return (false, true);
            }
            // Same window: the earliest end seen is the tightest (headers round up; a slow
            // answer's end is only later than the truth, never earlier). Only a quick one
            // counts as a reading that agrees.
            s.window_end = s.window_end.min(server_end).max(now);
            if precise {
                s.end_readings += 1;
            }
            return (false, false);
        }
        if let Some(prev) = s.prev_end
            && earliest_end <= prev + tolerance
            && server_end + tolerance >= prev
        {
            // An answer that may be from the window we have just left.
            return (false, true);
        }
        // Our first look at the server's clock in this window: its end, not our guess, is the
        // truth.
        if let Some(prev) = s.prev_end
            && s.prev_known
            && precise
            && server_end > prev
        {
            self.learn_window(s, server_end - prev, server_end - now);
        }
        s.window_known = true;
        s.window_end = server_end;
        s.end_readings = 1;
        (true, false)
    }

    /// Takes the server's remaining count (corrected for our requests in flight) and what it
    /// shows others spend in this window.
    fn count_remaining(
        s: &mut State,
        now: Instant,
        status: Option<u16>,
        new_window: bool,
        info: &RateInfo,
    ) {
        if let Some(remaining) = info.remaining {
            let remaining = i64::from(remaining.min(s.limit));
            // Assume none of our other in-flight requests were counted yet: conservative by at
            // most what is in flight, exact when nothing else is.
            let corrected = remaining - i64::from(s.inflight);
            if new_window || s.inflight == 0 {
                s.remaining = corrected;
            } else {
                s.remaining = s.remaining.min(corrected);
            }
            // What the server counted beyond our own spending came from someone else: a lower
            // bound (our in-flight units are assumed counted), kept as the window's maximum.
            // Only an ordinary answer in a window whose end the server told is clear enough.
            if s.window_known && status != Some(429) {
                let others = i64::from(s.limit) - remaining - s.spent - s.carried;
                let others = others.clamp(0, i64::from(s.limit));
                if others > s.others_seen {
                    s.others_seen = others;
                    s.others_latest = Some((now, others));
                }
                let middle = s.window_end.checked_sub(s.window / 2).unwrap_or(now);
                if s.others_mid.is_none() && now >= middle {
                    s.others_mid = Some((now, s.others_seen));
                }
            }
        }
    }

    /// A 429: pauses every request on this limit until the server refills, and moves our
    /// window end there.
    fn pause_after_429(&self, s: &mut State, now: Instant, tolerance: Duration, info: &RateInfo) {
        s.stats.throttled += 1;
        let window = s.window;
        let wait = info.retry_after.or(info.reset_after).unwrap_or(window / 10);
        let until = now + wait + Self::margin(s);
        s.paused_until = Some(s.paused_until.map_or(until, |p| p.max(until)));
        s.remaining = 0;
        // Whatever was learned about late window ends and the way to the server did not keep
        // us out of this one.
        s.end_bias = Duration::ZERO;
        s.lead = Duration::ZERO;
        s.lag_seen = None;
        s.lag_last = None;
        // The server refills when the pause ends: make our window end there too (the
        // earlier of the two when they speak of the same window: headers round up).
        let end = now + wait;
        if s.window_known && end.max(s.window_end) - end.min(s.window_end) <= tolerance {
            s.window_end = s.window_end.min(end).max(now);
        } else {
            s.window_end = end;
            s.window_known = true;
            s.end_readings = 1;
        }
        tracing::warn!(
            limiter = self.inner.name,
            wait_ms = wait.as_millis() as u64,
            "rate limited by the server; pausing every request on this limit"
        );
    }
}

/// Our own budget per window under the ceiling, scaled to the window in force.
fn cap(config: &LimiterConfig, s: &State) -> Option<i64> {
    let ceiling = config.ceiling?;
    let scale = s.window.as_secs_f64() / config.window.as_secs_f64();
    Some(((f64::from(ceiling) * scale).floor() as i64).max(1))
}

/// The most one window can ever give us: the server's limit, under the ceiling.
fn capacity(config: &LimiterConfig, s: &State) -> i64 {
    let limit = i64::from(s.limit.max(1));
    cap(config, s).map_or(limit, |cap| cap.min(limit))
}

/// Units held back for the other consumers: what they spent last window, less what they have
/// already spent in this one. What they spent is a lower bound (read from answers, the last of
/// which comes a little before the window's end), so 2 % and a unit more are kept back while
/// they spend.
fn reserve(s: &State) -> i64 {
    if s.others_last <= 0 {
        return 0;
    }
    let expected = s.others_last + s.others_last / 50 + 1;
    (expected - s.others_seen).max(0)
}

/// What we may still spend in the current window.
fn available(config: &LimiterConfig, s: &State) -> i64 {
    let shared = s.remaining - reserve(s);
    match cap(config, s) {
        Some(cap) => shared.min(cap - s.spent),
        None => shared,
    }
}

/// The counters with the derived values filled in.
fn snapshot(config: &LimiterConfig, s: &State) -> LimiterStats {
    let limit = capacity(config, s);
    LimiterStats {
        limit: u32::try_from(limit).unwrap_or(u32::MAX),
        remaining: available(config, s).min(limit),
        window: s.window,
        reserved: reserve(s),
        ..s.stats
    }
}

impl Permit {
    /// Reports the response (any status) so the limiter follows the server's own accounting.
    pub fn finish(mut self, status: u16, info: &RateInfo) {
        self.done = true;
        self.limiter
            .observe(self.cost, self.sent_at, Some(status), info);
    }

    /// The units this permit took.
    pub fn cost(&self) -> u32 {
        self.cost
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.done {
            self.limiter
                .observe(self.cost, self.sent_at, None, &RateInfo::default());
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

/// Why [`call`] returned without a value.
#[derive(Debug, PartialEq, Eq)]
pub enum CallError<E> {
    /// The request's own failure, as `send` classified it (the last one when retries ran out).
    Request(E),
    /// The limiter gave up waiting (cancelled, or the budget returns too late). Nothing of this
    /// wait was sent; earlier attempts of the same call, if any, were ones `send` classified as
    /// not applied (a 429, or a failure it called safe to retry).
    Wait(ThrottleError),
}

/// Sends one logical request through `limiter`, retrying what `send` classifies as safe to retry
/// within `policy`'s bounds. `send` performs one attempt and reports the response's status and
/// headers (if a response arrived) with the outcome. Returns the last error when the bounds are
/// exhausted, so the caller can record it as a transient failure; every wait (for budget or a
/// backoff) ends with [`CallError::Wait`] when the limiter is cancelled or would wait longer than
/// its maximum.
pub async fn call<T, E, F, Fut>(
    limiter: &Limiter,
    policy: &RetryPolicy,
    cost: u32,
    mut send: F,
) -> Result<T, CallError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = (Option<Observed>, Outcome<T, E>)>,
{
    let mut backoff = policy.backoff();
    let mut rate_limited = 0usize;
    loop {
        let permit = limiter.acquire(cost).await.map_err(CallError::Wait)?;
        let (observed, outcome) = send().await;
        match observed {
            Some(o) => permit.finish(o.status, &o.info),
            None => drop(permit),
        }
        match outcome {
            Outcome::Done(value) => return Ok(value),
            Outcome::Fatal(error) => return Err(CallError::Request(error)),
            Outcome::RateLimited(error) => {
                rate_limited += 1;
                if rate_limited > policy.max_rate_limited_retries {
                    return Err(CallError::Request(error));
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
                    limiter
                        .backoff_sleep(delay)
                        .await
                        .map_err(CallError::Wait)?;
                }
                None => return Err(CallError::Request(error)),
            },
        }
    }
}

#[cfg(test)]
mod tests;
