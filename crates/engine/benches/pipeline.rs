//! Benchmarks of what DESIGN.md calls performance, against the in-process sandbox:
//!
//! 1. budget use — Deskie units per server window ÷ limit over the load phase, 429s, at 150 ms
//!    latency, Standard and Pro, 10 s and 60 s server windows the engine is not told, and another
//!    consumer spending 40 % of every window;
//! 2. requests per ticket — writes vs the recipe's minimum, reads;
//! 3. overlap — total time vs the larger of the extract-bound and load-bound times;
//! 4. local cost — tickets/s, CPU seconds and peak memory with no limit and no latency, at two
//!    sizes to show it is flat per ticket;
//!
//! Run with `cargo bench -p engine --bench pipeline` (add `-- quick` for smaller sizes and the 10 s
//! budget rows only, `-- local` for the in-process local-cost rows, `-- units` for the request
//! counts only, `-- budget=pro` (a substring of "plan window-seconds other-share", e.g. `standard 60 0.0`) for some budget
//! rows alone; per-window details of the budget rows go to stderr as `detail:` lines). Results are
//! printed as Markdown rows with their target; `scripts/benchmarks.sh` puts them in BENCHMARKS.md.
//! Windows are shortened (10 s) for most rows so a run takes seconds; the limiter learns the
//! server's window from the headers.

use std::time::{Duration, Instant};

use engine::config::{self, SecretOverrides, Settings};
use sandbox::{Sandbox, SandboxConfig, Server};

fn settings(
    sb: &Sandbox,
    dir: &std::path::Path,
    d_limit: u32,
    k_limit: u32,
    window: Duration,
    concurrency: usize,
) -> Settings {
    let w = window.as_secs_f64();
    configured(
        sb,
        dir,
        &format!("rpm = {d_limit}\nwindow_secs = {w}"),
        &format!("rpm = {k_limit}\nwindow_secs = {w}"),
        (concurrency, concurrency),
    )
}

/// Settings for the sandbox with the given extra `[source]` and `[target]` lines and
/// (cases, Desk360 requests) in flight.
fn configured(
    sb: &Sandbox,
    dir: &std::path::Path,
    source: &str,
    target: &str,
    (cases, extract): (usize, usize),
) -> Settings {
    let c = sb.credentials();
    let text = format!(
        r#"
[source]
base_url = "{d}"
token = "{t}"
{source}
[target]
base_url = "{k}"
staff_email = "{e}"
api_key = "{a}"
{target}
source_id_field = "cf_900"
[mapping]
default_staff_id = 100
channels = {{ "default" = "email", "Phone" = "calls", "Web" = "custom:481", "WhatsApp" = "custom:482", "Facebook" = "skip" }}
[store]
path = "{s}"
[run]
concurrency = {cases}
extract_concurrency = {extract}
"#,
        d = sb.desk360_url(),
        k = sb.deskie_url(),
        t = c.desk360_token,
        e = c.deskie_staff_email,
        a = c.deskie_api_key,
        s = dir.join("bench.sqlite").display(),
    );
    config::parse(&text, &dir.join("c.toml"), SecretOverrides::default()).expect("settings")
}

/// The "met?" column.
fn met(ok: bool) -> &'static str {
    if ok { "yes" } else { "**no**" }
}

/// CPU seconds (user + system) of this process so far, from /proc.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Resident memory now and at peak, MiB.
fn memory_mib() -> (f64, f64) {
    let Ok(s) = std::fs::read_to_string("/proc/self/status") else {
        return (f64::NAN, f64::NAN);
    };
    let get = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(f64::NAN)
    };
    (get("VmRSS:"), get("VmHWM:"))
}

async fn migrate(
    cfg: SandboxConfig,
    d_limit: u32,
    k_limit: u32,
    concurrency: usize,
) -> (Sandbox, engine::RunSummary, Duration) {
    let window = cfg.window;
    let sb = Sandbox::start(cfg).await.expect("sandbox");
    let (summary, elapsed, _) = run_engine(&sb, |sb, dir| {
        settings(sb, dir, d_limit, k_limit, window, concurrency)
    })
    .await;
    (sb, summary, elapsed)
}

/// Runs one migration against `sb` with the settings `make` writes for a fresh store directory;
/// answers its summary, its wall time and the Deskie limiter's counters at the end.
async fn run_engine(
    sb: &Sandbox,
    make: impl FnOnce(&Sandbox, &std::path::Path) -> Settings,
) -> (engine::RunSummary, Duration, throttle::LimiterStats) {
    let dir = tempfile::tempdir().expect("tmp");
    let engine = engine::Engine::open(make(sb, dir.path()))
        .await
        .expect("engine");
    let t = Instant::now();
    let summary = engine
        .run(engine::RunOptions::default())
        .await
        .expect("run");
    let elapsed = t.elapsed();
    let deskie = engine.limiter_stats().1;
    drop(engine);
    drop(dir);
    (summary, elapsed, deskie)
}

async fn local_cost(tickets: usize) {
    let cfg = SandboxConfig {
        seed: 1,
        products: 4,
        tickets,
        // Not a 60 s window, so the plan's per-minute caps do not apply: no limit at all.
        window: Duration::from_secs(1),
        desk360_limit: 1_000_000_000,
        deskie_limit: 1_000_000_000,
        ..SandboxConfig::default()
    };
    let (rss0, _) = memory_mib();
    let cpu0 = cpu_seconds();
    let (sb, summary, elapsed) = migrate(cfg, 1_000_000_000, 1_000_000_000, 16).await;
    let cpu = cpu_seconds() - cpu0;
    let (rss, peak) = memory_mib();
    let journal = sb.journal();
    println!(
        "| local cost, engine and sandbox in one process | {tickets} tickets, no limit, no latency | {:.1} s, {:.0} tickets/s, {} requests ({:.0}/s), CPU {:.1} s ({:.2} ms/ticket, sandbox included), RSS {:.0} MiB → {:.0} MiB, peak {:.0} MiB | — (the engine alone is measured by `scripts/bench-engine-memory.sh`) | — |",
        elapsed.as_secs_f64(),
        tickets as f64 / elapsed.as_secs_f64(),
        journal.len(),
        journal.len() as f64 / elapsed.as_secs_f64(),
        cpu,
        cpu * 1000.0 / tickets as f64,
        rss0,
        rss,
        peak
    );
    let _ = summary;
    sb.shutdown().await;
}

/// One row of the budget matrix (issue 14): a Deskie plan against a sandbox whose window the
/// engine is not told.
struct BudgetRow {
    /// Plan name as a user writes it in `target.plan`.
    plan: &'static str,
    /// The plan's units "per minute" for the configured agents: the sandbox's units per window,
    /// whatever its window's length (its headers say `rate_limit_per_minute` either way).
    limit: u32,
    /// The sandbox's real window.
    window: Duration,
    /// Share of every window another consumer of the account spends at the window's start.
    other: f64,
    /// Full server windows the load phase should span.
    windows: u32,
}

/// Agents configured in `target.agents`: enough for the plan's maximum (Standard 5 × 150 = 750,
/// Pro 10 × 150 = 1 500 per minute, capped by the plan).
const AGENTS: u32 = 150;
/// Cases in flight and Desk360 requests in flight: what a user with a large plan would write
/// (`cases=N` on the command line overrides the cases).
const CASES_IN_FLIGHT: usize = 32;

/// The cases in flight of the budget rows: `cases=N` or [`CASES_IN_FLIGHT`].
fn cases_in_flight() -> usize {
    std::env::args()
        .find_map(|a| a.strip_prefix("cases=").and_then(|n| n.parse().ok()))
        .unwrap_or(CASES_IN_FLIGHT)
}
const EXTRACT_IN_FLIGHT: usize = 8;
/// Latency of every request, both servers: 150 ± 50 ms.
const LATENCY: Duration = Duration::from_millis(150);
const JITTER: Duration = Duration::from_millis(50);

/// The settings a user would write: the plan and the agents, no `rpm`, no `window_secs`.
fn plan_settings(sb: &Sandbox, dir: &std::path::Path, plan: &str) -> Settings {
    configured(
        sb,
        dir,
        "rpm = 100000",
        &format!("plan = \"{plan}\"\nagents = {AGENTS}"),
        (cases_in_flight(), EXTRACT_IN_FLIGHT),
    )
}

/// Deskie units a loaded ticket costs on seed 2 (5.4 writes of 2 units, a few reads), to size
/// a run to the windows it should span.
const UNITS_PER_TICKET: f64 = 11.0;

/// One budget row: migrates enough tickets to keep the limiter busy for `row.windows` full
/// server windows and counts our units in each server window (as the sandbox metered them).
async fn budget_row(row: &BudgetRow, first: bool) {
    let ours = f64::from(row.limit) * (1.0 - row.other);
    let tickets = (ours * (f64::from(row.windows) + 2.0) / UNITS_PER_TICKET).ceil() as usize;
    let faults = sandbox::Faults {
        other_consumer_share: row.other,
        ..sandbox::Faults::default()
    };
    let cfg = SandboxConfig {
        seed: 2,
        products: 3,
        tickets,
        window: row.window,
        desk360_limit: 100_000,
        deskie_limit: row.limit,
        latency: LATENCY,
        jitter: JITTER,
        faults,
        ..SandboxConfig::default()
    };
    let sb = Sandbox::start(cfg).await.expect("sandbox");
    let (summary, elapsed, deskie_limiter) =
        run_engine(&sb, |sb, dir| plan_settings(sb, dir, row.plan)).await;
    let learned = deskie_limiter.window;
    let journal = sb.journal();
    let deskie: Vec<_> = journal
        .iter()
        .filter(|e| e.server == Server::Deskie && e.window.is_some())
        .collect();
    // Charged: everything the gate let through (429s and 401s are not charged).
    let charged = |e: &&&sandbox::JournalEntry| e.status != 429 && e.status != 401;
    let first_w = deskie
        .iter()
        .filter_map(|e| e.window)
        .min()
        .expect("requests");
    let last_w = deskie
        .iter()
        .filter_map(|e| e.window)
        .max()
        .expect("requests");
    let mut per_window = vec![0u64; (last_w - first_w + 1) as usize];
    let mut throttled_in = vec![0u64; per_window.len()];
    for e in &deskie {
        let i = (e.window.unwrap_or(first_w) - first_w) as usize;
        if charged(&e) {
            per_window[i] += u64::from(e.cost);
        } else if e.status == 429 {
            throttled_in[i] += 1;
        }
    }
    // Full windows: all but the first (the run starts in it) and the last (the run drains in it).
    let full = &per_window[1.min(per_window.len())..per_window.len().saturating_sub(1)];
    let avg_full = full.iter().sum::<u64>() as f64 / full.len().max(1) as f64;
    let min_full = full.iter().copied().min().unwrap_or(0);
    let throttled: u64 = throttled_in.iter().sum();
    let throttled_full: u64 = throttled_in
        [1.min(throttled_in.len())..throttled_in.len().saturating_sub(1)]
        .iter()
        .sum();
    let use_pct = avg_full * 100.0 / ours;
    // Where the rest went: per window, how long before its end our last request was metered
    // and how long after its start the first one (from arrival times, which precede metering
    // by the latency).
    let origin = sb.window_origin();
    for (i, units) in per_window.iter().enumerate() {
        let w = first_w + i as u64;
        let start = origin + row.window * w as u32;
        let end = start + row.window;
        let arrivals: Vec<_> = deskie.iter().filter(|e| e.window == Some(w)).collect();
        let first_at = arrivals.iter().map(|e| e.at).min();
        let last_at = arrivals.iter().map(|e| e.at).max();
        eprintln!(
            "detail: {} {:?} other {:.0}% window {w}: {units} units ({:.1}%), {} × 429, first arrival {:+.0} ms from start, last arrival {:.0} ms before end",
            row.plan,
            row.window,
            row.other * 100.0,
            *units as f64 * 100.0 / ours,
            throttled_in[i],
            first_at.map_or(f64::NAN, |a| signed_ms(a, start)),
            last_at.map_or(f64::NAN, |a| -signed_ms(a, end)),
        );
    }
    let (scenario, target, ok) = if row.other > 0.0 {
        let allowed = (full.len() as u64).div_ceil(10);
        (
            format!(
                "{} ({}/min), server window {} s, another consumer spends {:.0} % of every window",
                row.plan,
                row.limit,
                row.window.as_secs(),
                row.other * 100.0
            ),
            "≤ 1 × 429 per 10 windows".to_string(),
            throttled <= allowed,
        )
    } else {
        (
            format!(
                "{} ({}/min), server window {} s",
                row.plan,
                row.limit,
                row.window.as_secs()
            ),
            "≥ 97 %, 0 × 429".to_string(),
            use_pct >= 97.0 && throttled == 0,
        )
    };
    let of = if row.other > 0.0 {
        " of what the other leaves"
    } else {
        " of the limit"
    };
    println!(
        "| budget use | {scenario}; engine told only plan + agents; {tickets} tickets, latency 150±50 ms, {} cases in flight | {use_pct:.1}%{of} over {} full server windows (lowest {:.1}%), {throttled} × 429 ({throttled_full} in full windows), window learned {:.1} s, {} units in {:.0} s | {target} | {} |",
        cases_in_flight(),
        full.len(),
        min_full as f64 * 100.0 / ours,
        learned.as_secs_f64(),
        per_window.iter().sum::<u64>(),
        elapsed.as_secs_f64(),
        met(ok && full.len() >= row.windows.min(5) as usize)
    );
    if first {
        let writes = deskie
            .iter()
            .filter(|e| e.method != "GET" && e.status < 400)
            .count();
        let reads = deskie
            .iter()
            .filter(|e| e.method == "GET" && e.status < 400)
            .count();
        let loaded = summary.progress.loaded.max(1);
        println!(
            "| requests per ticket | same run | {:.2} writes per loaded ticket ({} writes / {} cases), {:.3} reads per ticket ({reads} reads: 1 credential check + reconciliation) | the recipe's writes (`CasePlan::writes()`, equal to the journal in `tests/report.rs`), reads: only the credential check (no reconciliation without a crash) | {} |",
            writes as f64 / loaded as f64,
            writes,
            loaded,
            reads as f64 / loaded as f64,
            met(reads <= 1)
        );
    }
    sb.shutdown().await;
}

/// `a - b` in milliseconds, signed.
fn signed_ms(a: Instant, b: Instant) -> f64 {
    if a >= b {
        (a - b).as_secs_f64() * 1000.0
    } else {
        -(b - a).as_secs_f64() * 1000.0
    }
}

/// The budget matrix: Standard and Pro at 10 s and 60 s server windows, and the 40 % other
/// consumer at both. `quick` keeps the 10 s rows only; `only` picks rows by a substring of
/// "plan window-seconds other-share" (e.g. `pro 60`, `standard 60 0.4`).
async fn budget_use(quick: bool, only: Option<&str>) {
    let ten = Duration::from_secs(10);
    let sixty = Duration::from_secs(60);
    let rows = [
        BudgetRow {
            plan: "standard",
            limit: 750,
            window: ten,
            other: 0.0,
            windows: 6,
        },
        BudgetRow {
            plan: "pro",
            limit: 1500,
            window: ten,
            other: 0.0,
            windows: 6,
        },
        BudgetRow {
            plan: "standard",
            limit: 750,
            window: ten,
            other: 0.4,
            windows: 11,
        },
        BudgetRow {
            plan: "standard",
            limit: 750,
            window: sixty,
            other: 0.0,
            windows: 5,
        },
        BudgetRow {
            plan: "pro",
            limit: 1500,
            window: sixty,
            other: 0.0,
            windows: 5,
        },
        BudgetRow {
            plan: "standard",
            limit: 750,
            window: sixty,
            other: 0.4,
            windows: 10,
        },
    ];
    let mut first = true;
    for row in &rows {
        if quick && row.window > ten {
            continue;
        }
        let name = format!("{} {} {:.1}", row.plan, row.window.as_secs(), row.other);
        if only.is_some_and(|o| !name.contains(o)) {
            continue;
        }
        budget_row(row, first).await;
        first = false;
    }
}

async fn overlap(tickets: usize) {
    let window = Duration::from_secs(10);
    let (d_limit, k_limit) = (60, 300);
    let cfg = SandboxConfig {
        seed: 3,
        products: 3,
        tickets,
        window,
        desk360_limit: d_limit,
        deskie_limit: k_limit,
        latency: Duration::from_millis(100),
        jitter: Duration::from_millis(50),
        ..SandboxConfig::default()
    };
    let (sb, summary, elapsed) = migrate(cfg, d_limit, k_limit, 8).await;
    let journal = sb.journal();
    let d_requests = journal
        .iter()
        .filter(|e| e.server == Server::Desk360)
        .count() as f64;
    let k_units: f64 = journal
        .iter()
        .filter(|e| e.server == Server::Deskie)
        .map(|e| f64::from(e.cost))
        .sum();
    let extract_bound = d_requests / f64::from(d_limit) * window.as_secs_f64();
    let load_bound = k_units / f64::from(k_limit) * window.as_secs_f64();
    println!(
        "| overlap | {tickets} tickets, Desk360 {d_limit}/10 s, Deskie {k_limit}/10 s, latency 100±50 ms | total {:.0} s; extract-bound {:.0} s, load-bound {:.0} s, sum {:.0} s → total / max = {:.2} | total ≈ the larger side (÷ ≤ 1.10), not the sum | {} |",
        elapsed.as_secs_f64(),
        extract_bound,
        load_bound,
        extract_bound + load_bound,
        elapsed.as_secs_f64() / extract_bound.max(load_bound),
        met(elapsed.as_secs_f64() / extract_bound.max(load_bound) <= 1.10)
    );
    let _ = summary;
    sb.shutdown().await;
}

/// Deskie requests per ticket on the budget scenario's data (seed 2), without limits or latency:
/// the count does not depend on timing, so it is measured in seconds. Under both the default and
/// the pessimistic readings of the vendor pages.
async fn requests_per_ticket(tickets: usize) {
    for (name, readings) in [
        ("default readings", sandbox::Readings::default()),
        ("pessimistic readings", sandbox::Readings::pessimistic()),
    ] {
        let cfg = SandboxConfig {
            seed: 2,
            products: 3,
            tickets,
            window: Duration::from_secs(1),
            desk360_limit: 1_000_000_000,
            deskie_limit: 1_000_000_000,
            readings,
            ..SandboxConfig::default()
        };
        let (sb, summary, _) = migrate(cfg, 1_000_000_000, 1_000_000_000, 8).await;
        let deskie: Vec<_> = sb
            .journal()
            .into_iter()
            .filter(|e| e.server == Server::Deskie && e.status < 400)
            .collect();
        let writes = deskie.iter().filter(|e| e.method != "GET").count();
        let updates = deskie.iter().filter(|e| e.method == "PUT").count();
        let reads = deskie.iter().filter(|e| e.method == "GET").count();
        let loaded = summary.progress.loaded.max(1);
        println!(
            "| requests per ticket | {tickets} tickets (seed 2), {name}, no limit | {:.2} writes per loaded ticket ({writes} writes / {loaded} cases), of which {:.3} final updates per ticket ({updates} bulk or single PUTs), {:.3} reads per ticket | the recipe's writes, reads: only the credential check (no reconciliation without a crash) | {} |",
            writes as f64 / loaded as f64,
            updates as f64 / loaded as f64,
            reads as f64 / loaded as f64,
            met(reads <= 1)
        );
        sb.shutdown().await;
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let units_only = std::env::args().any(|a| a == "units");
    let local = std::env::args().any(|a| a == "local");
    // `budget=<substring>`: only the budget rows whose "plan window other" contains it.
    let only = std::env::args().find_map(|a| a.strip_prefix("budget=").map(str::to_owned));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        println!("| what | scenario | result | target | met? |");
        println!("|---|---|---|---|---|");
        if units_only {
            requests_per_ticket(300).await;
        } else if only.is_some() {
            budget_use(quick, only.as_deref()).await;
        } else if quick {
            budget_use(true, None).await;
            overlap(60).await;
            requests_per_ticket(100).await;
        } else {
            if local {
                local_cost(5_000).await;
                local_cost(20_000).await;
            }
            budget_use(false, None).await;
            overlap(200).await;
            requests_per_ticket(300).await;
        }
    });
}
