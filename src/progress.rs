//! Progress display of a run: indicatif bars on stderr when it is a terminal, a plain line every
//! ~10 s when it is not, nothing with `--quiet`. The engine never prints; this module polls its
//! atomic counters ([`engine::Progress`]) and the limiters' statistics about every 250 ms.
//!
//! For runs that last days, both sides show tickets per hour (this run's average), the ETA is
//! given in days and hours, and the line says up to which source time the migrated history is
//! complete ([`Display::set_history`], polled from the store every few seconds by the caller):
//! Desk360 lists newest first, so the recent months are usable before the archive finishes.
//!
//! The ETA of loading comes from the remaining Deskie budget (units still needed at the observed
//! units-per-ticket, divided by the limit), not from the recent speed: the limit is what bounds a
//! migration, so this stays right while the speed ramps up or dips.

use std::collections::VecDeque;
use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use engine::ProgressSnapshot;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Live bars (stderr is a terminal).
    Bars,
    /// One plain line every ~10 s (stderr is a file or a pipe).
    Lines,
    /// Nothing (`--quiet`).
    Quiet,
}

/// The terminal side of progress: owns the `MultiProgress` the log writer suspends, so log lines
/// and bars never tear each other.
#[derive(Clone)]
pub struct Ui {
    bars: MultiProgress,
    mode: Mode,
}

impl Ui {
    /// Chooses bars, lines or nothing from `--quiet` and whether stderr is a terminal.
    pub fn new(quiet: bool) -> Ui {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Lines
        };
        let target = if mode == Mode::Bars {
            ProgressDrawTarget::stderr_with_hz(8)
        } else {
            ProgressDrawTarget::hidden()
        };
        Ui {
            bars: MultiProgress::with_draw_target(target),
            mode,
        }
    }

    /// The bars' container, for the log writer.
    pub fn bars(&self) -> &MultiProgress {
        &self.bars
    }

    /// Prints a status line on stderr without tearing the bars. Shown even with `--quiet`:
    /// these lines are about what the user must do (stop, resume).
    pub fn note(&self, line: &str) {
        self.bars.suspend(|| eprintln!("{line}"));
    }

    /// Starts showing a run's progress.
    pub fn start(&self, baseline: Baseline) -> Display {
        let now = Instant::now();
        let mut display = Display {
            ui: self.clone(),
            baseline,
            extract_bar: None,
            load_bar: None,
            samples: VecDeque::new(),
            started: now,
            last_line: now,
            history: None,
        };
        if self.mode == Mode::Bars {
            let style = ProgressStyle::with_template(
                "{prefix:>8} [{bar:28.cyan/blue}] {pos:>7}/{len:7} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            if !display.baseline.skip_extract {
                let bar = self.bars.add(ProgressBar::new(0));
                bar.set_style(style.clone());
                bar.set_prefix("extract");
                display.extract_bar = Some(bar);
            }
            if !display.baseline.dry_run {
                let bar = self.bars.add(ProgressBar::new(display.baseline.to_load));
                bar.set_style(style);
                bar.set_prefix("load");
                display.load_bar = Some(bar);
            }
        }
        display
    }
}

/// What the store held when the run started, so the bars can show totals, not just this run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Baseline {
    /// Tickets waiting for the loader at the start (extracted, loading, transient failures, and
    /// the failures a retry re-queues).
    pub to_load: u64,
    /// No extraction in this run (`retry-failed`).
    pub skip_extract: bool,
    /// No loading in this run (`run --dry-run`).
    pub dry_run: bool,
    /// Deskie rate-limit window (60 s for the real service).
    pub deskie_window: Duration,
    /// Desk360 rate-limit window.
    pub desk360_window: Duration,
}

/// One side's limiter counters, as displayed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    /// Units spent.
    pub units: u64,
    /// 429s seen.
    pub throttled: u64,
    /// Limit in force (units per window).
    pub limit: u32,
}

/// Converts the engine's limiter statistics.
pub fn stats(s: &engine::LimiterStatsView) -> Stats {
    Stats {
        units: s.units,
        throttled: s.throttled,
        limit: s.limit,
    }
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    desk360_units: u64,
    deskie_units: u64,
    extracted: u64,
}

/// A run being displayed; call [`Display::update`] every ~250 ms and [`Display::finish`] at the end.
pub struct Display {
    ui: Ui,
    baseline: Baseline,
    extract_bar: Option<ProgressBar>,
    load_bar: Option<ProgressBar>,
    samples: VecDeque<Sample>,
    started: Instant,
    last_line: Instant,
    history: Option<String>,
}

/// How far back the request rate is measured.
const RATE_SPAN: Duration = Duration::from_secs(10);
/// Interval of the plain progress lines.
const LINE_EVERY: Duration = Duration::from_secs(10);

impl Display {
    /// Sets how far the migrated history is complete, from [`engine::HistoryMark`].
    pub fn set_history(&mut self, mark: &engine::HistoryMark) {
        self.history = Some(history_text(mark));
    }

    /// Redraws from the current counters.
    pub fn update(&mut self, p: ProgressSnapshot, desk360: Stats, deskie: Stats) {
        if self.ui.mode == Mode::Quiet {
            return;
        }
        let now = Instant::now();
        self.samples.push_back(Sample {
            at: now,
            desk360_units: desk360.units,
            deskie_units: deskie.units,
            extracted: p.extracted,
        });
        while self
            .samples
            .front()
            .is_some_and(|s| now.duration_since(s.at) > RATE_SPAN)
            && self.samples.len() > 2
        {
            self.samples.pop_front();
        }
        let view = self.view(p, desk360, deskie);
        match self.ui.mode {
            Mode::Bars => self.draw_bars(&p, &view),
            Mode::Lines => {
                if now.duration_since(self.last_line) >= LINE_EVERY {
                    self.last_line = now;
                    self.ui.note(&view.line(&self.baseline));
                }
            }
            Mode::Quiet => {}
        }
    }

    fn view(&self, p: ProgressSnapshot, desk360: Stats, deskie: Stats) -> View {
        let (first, last) = match (self.samples.front(), self.samples.back()) {
            (Some(f), Some(l)) => (*f, *l),
            _ => {
                let s = Sample {
                    at: self.started,
                    desk360_units: 0,
                    deskie_units: 0,
                    extracted: 0,
                };
                (s, s)
            }
        };
        let span = last.at.duration_since(first.at).as_secs_f64();
        let per = |a: u64, b: u64, window: Duration| {
            if span > 0.5 {
                (b.saturating_sub(a)) as f64 / span * window.as_secs_f64()
            } else {
                0.0
            }
        };
        let load_done = p.loaded + p.load_failed + p.skipped;
        // Everything extracted this run (or still to extract) goes to the loader too.
        let incoming = p.to_extract.max(p.extracted + p.extract_failed) - p.extract_failed;
        let load_total = (self.baseline.to_load + incoming).max(load_done);
        let remaining = load_total - load_done;
        // Budget-based ETA: the slower of the two sides at its limit. Deskie: units per finished
        // ticket so far × tickets left ÷ units per second. Desk360: one detail request per
        // ticket still to extract ÷ requests per second.
        let deskie_eta = (p.loaded >= 3 && deskie.limit > 0).then(|| {
            let per_ticket = deskie.units as f64 / p.loaded as f64;
            let per_sec = f64::from(deskie.limit) / self.baseline.deskie_window.as_secs_f64();
            remaining as f64 * per_ticket / per_sec
        });
        let to_fetch = p.to_extract.saturating_sub(p.extracted + p.extract_failed);
        let desk360_eta = (desk360.limit > 0).then(|| {
            to_fetch as f64
                / (f64::from(desk360.limit) / self.baseline.desk360_window.as_secs_f64())
        });
        let eta = match (deskie_eta, desk360_eta) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (Some(a), None) => Some(a),
            (None, _) if self.baseline.dry_run => desk360_eta,
            (None, _) => None,
        }
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64);
        let hours = now_hours(self.started);
        let per_hour = |n: u64| (hours > 0.0 && n > 0).then(|| n as f64 / hours);
        View {
            extract_per_hour: per_hour(p.extracted),
            load_per_hour: per_hour(p.loaded),
            history: self.history.clone(),
            extracted: p.extracted + p.extract_failed,
            to_extract: p.to_extract.max(p.extracted + p.extract_failed),
            listed: p.listed,
            extract_done: p.extract_done,
            extract_rate: per(first.extracted, last.extracted, Duration::from_secs(1)),
            desk360_rate: per(
                first.desk360_units,
                last.desk360_units,
                self.baseline.desk360_window,
            ),
            desk360,
            load_done,
            load_total,
            loaded: p.loaded,
            failed: p.load_failed,
            writes: p.writes,
            deskie_rate: per(
                first.deskie_units,
                last.deskie_units,
                self.baseline.deskie_window,
            ),
            deskie,
            eta,
            window_label: window_label(self.baseline.deskie_window),
        }
    }

    fn draw_bars(&self, p: &ProgressSnapshot, v: &View) {
        if let Some(bar) = &self.extract_bar {
            bar.set_length(v.to_extract);
            bar.set_position(v.extracted);
            if p.extract_done {
                bar.set_message(format!("listed {} · done", v.listed));
            } else {
                bar.set_message(format!(
                    "listed {} · {:.1}/s ({}/h) · Desk360 {:.0}/{} per {}",
                    v.listed,
                    v.extract_rate,
                    per_hour_text(v.extract_per_hour),
                    v.desk360_rate,
                    v.desk360.limit,
                    window_label(self.baseline.desk360_window)
                ));
            }
        }
        if let Some(bar) = &self.load_bar {
            bar.set_length(v.load_total);
            bar.set_position(v.load_done);
            bar.set_message(format!(
                "{}/h · writes {} · Deskie {:.0}/{} units per {} · 429s {} · failed {} · ETA {}{}",
                per_hour_text(v.load_per_hour),
                v.writes,
                v.deskie_rate,
                v.deskie.limit,
                v.window_label,
                v.deskie.throttled,
                v.failed,
                eta_text(v.eta, v.extract_done),
                v.history
                    .as_deref()
                    .map(|h| format!(" · {h}"))
                    .unwrap_or_default()
            ));
        }
    }

    /// Stops drawing and clears the bars (the summary printed next stands alone).
    pub fn finish(self) {
        for bar in [self.extract_bar, self.load_bar].into_iter().flatten() {
            bar.finish_and_clear();
        }
        let _ = self.ui.bars.clear();
    }
}

/// The numbers one refresh shows.
struct View {
    extract_per_hour: Option<f64>,
    load_per_hour: Option<f64>,
    history: Option<String>,
    extracted: u64,
    to_extract: u64,
    listed: u64,
    extract_done: bool,
    extract_rate: f64,
    desk360_rate: f64,
    desk360: Stats,
    load_done: u64,
    load_total: u64,
    loaded: u64,
    failed: u64,
    writes: u64,
    deskie_rate: f64,
    deskie: Stats,
    eta: Option<Duration>,
    window_label: String,
}

impl View {
    /// The plain line for non-terminals.
    fn line(&self, b: &Baseline) -> String {
        let mut parts = Vec::new();
        if !b.skip_extract {
            parts.push(format!(
                "extract {}/{} (listed {}{}), {} tickets/h",
                self.extracted,
                self.to_extract,
                self.listed,
                if self.extract_done { ", done" } else { "" },
                per_hour_text(self.extract_per_hour)
            ));
        }
        if !b.dry_run {
            parts.push(format!(
                "load {}/{} (loaded {}, failed {}), {} tickets/h, writes {}, Deskie {:.0}/{} units per {}, 429s {}, ETA {}",
                self.load_done,
                self.load_total,
                self.loaded,
                self.failed,
                per_hour_text(self.load_per_hour),
                self.writes,
                self.deskie_rate,
                self.deskie.limit,
                self.window_label,
                self.deskie.throttled,
                eta_text(self.eta, self.extract_done)
            ));
        }
        if let Some(h) = &self.history {
            parts.push(h.clone());
        }
        format!("progress: {}", parts.join(" · "))
    }
}

fn window_label(w: Duration) -> String {
    if w == Duration::from_secs(60) {
        "min".to_string()
    } else {
        format!("{}s", w.as_secs_f64())
    }
}

fn eta_text(eta: Option<Duration>, extract_done: bool) -> String {
    match eta {
        None => "?".to_string(),
        // While extraction still lists tickets the total grows: the ETA is a lower bound.
        Some(d) if !extract_done => format!("≥{}", human(d)),
        Some(d) => human(d),
    }
}

/// Hours since `started`.
fn now_hours(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() / 3600.0
}

/// Tickets per hour, rounded; `?` until measurable.
fn per_hour_text(r: Option<f64>) -> String {
    match r {
        Some(r) if r.is_finite() => format!("{r:.0}"),
        _ => "?".to_string(),
    }
}

/// The progress line's words for how far the history is complete.
pub fn history_text(mark: &engine::HistoryMark) -> String {
    if mark.everything {
        return "history complete".to_string();
    }
    match &mark.complete_after {
        Some(t) => format!("history complete after {t}"),
        None => "history complete after ?".to_string(),
    }
}

/// `2d03h`, `1h02m`, `3m10s`, `42s`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 2 * 86_400 {
        format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600)
    } else if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(human(Duration::from_secs(42)), "42s");
        assert_eq!(human(Duration::from_secs(190)), "3m10s");
        assert_eq!(human(Duration::from_secs(3720)), "1h02m");
        assert_eq!(human(Duration::from_secs(30 * 3600)), "30h00m");
        assert_eq!(human(Duration::from_secs(15 * 86_400 + 7200)), "15d02h");
        let mut mark = engine::HistoryMark {
            complete_after: Some("2024-03-01 10:00:00".into()),
            ..engine::HistoryMark::default()
        };
        assert_eq!(
            history_text(&mark),
            "history complete after 2024-03-01 10:00:00"
        );
        mark.everything = true;
        assert_eq!(history_text(&mark), "history complete");
        assert_eq!(eta_text(None, true), "?");
        assert_eq!(eta_text(Some(Duration::from_secs(5)), false), "≥5s");
    }
}
