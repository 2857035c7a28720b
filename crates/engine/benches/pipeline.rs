//! Benchmarks of what DESIGN.md calls performance, against the in-process sandbox:
//!
//! 1. budget use — Deskie units per window ÷ limit over the load phase, 429s, at 100–300 ms latency;
//! 2. requests per ticket — writes vs the recipe's minimum, reads;
//! 3. overlap — total time vs the larger of the extract-bound and load-bound times;
//! 4. local cost — tickets/s, CPU seconds and peak memory with no limit and no latency, at two
//!    sizes to show it is flat per ticket;
//!
//! Run with `cargo bench -p engine --bench pipeline` (add `-- quick` for smaller sizes, `-- local`
//! for the in-process local-cost rows, `-- units` for the request counts only). Results are
//! printed as Markdown rows with their target; `scripts/benchmarks.sh` puts them in BENCHMARKS.md.
//! Windows are shortened (10 s) so a run takes seconds; the limiter and the sandbox scale with it.

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
    let c = sb.credentials();
    let text = format!(
        r#"
[source]
base_url = "{d}"
token = "{t}"
rpm = {d_limit}
window_secs = {w}
[target]
base_url = "{k}"
staff_email = "{e}"
api_key = "{a}"
rpm = {k_limit}
window_secs = {w}
source_id_field = "cf_900"
[mapping]
default_staff_id = 100
channels = {{ "default" = "email", "Phone" = "calls", "Web" = "custom:481", "WhatsApp" = "custom:482", "Facebook" = "skip" }}
[store]
path = "{s}"
[run]
concurrency = {concurrency}
extract_concurrency = {concurrency}
"#,
        d = sb.desk360_url(),
        k = sb.deskie_url(),
        t = c.desk360_token,
        e = c.deskie_staff_email,
        a = c.deskie_api_key,
        w = window.as_secs_f64(),
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
    let dir = tempfile::tempdir().expect("tmp");
    let s = settings(&sb, dir.path(), d_limit, k_limit, window, concurrency);
    let engine = engine::Engine::open(s).await.expect("engine");
    let t = Instant::now();
    let summary = engine
        .run(engine::RunOptions::default())
        .await
        .expect("run");
    let elapsed = t.elapsed();
    drop(engine);
    drop(dir);
    (sb, summary, elapsed)
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

async fn budget_use(tickets: usize) {
    let window = Duration::from_secs(10);
    let limit = 200; // units per 10 s window (= 1 200 a minute)
    let cfg = SandboxConfig {
        seed: 2,
        products: 3,
        tickets,
        window,
        desk360_limit: 100_000,
        deskie_limit: limit,
        latency: Duration::from_millis(200),
        jitter: Duration::from_millis(100),
        ..SandboxConfig::default()
    };
    let (sb, summary, elapsed) = migrate(cfg, 100_000, limit, 8).await;
    let journal = sb.journal();
    let deskie: Vec<_> = journal
        .iter()
        .filter(|e| e.server == Server::Deskie)
        .collect();
    let first = deskie.first().map(|e| e.at).expect("requests");
    let last = deskie.last().map(|e| e.at).expect("requests");
    let span = last.duration_since(first).as_secs_f64();
    let units: u64 = deskie
        .iter()
        .filter(|e| e.status < 400)
        .map(|e| u64::from(e.cost))
        .sum();
    // Use over full windows only: count units in every complete window of the load phase.
    let mut per_window = vec![0u64; (span / window.as_secs_f64()).ceil() as usize + 1];
    for e in &deskie {
        if e.status < 400 {
            let i = (e.at.duration_since(first).as_secs_f64() / window.as_secs_f64()) as usize;
            per_window[i] += u64::from(e.cost);
        }
    }
    let full: Vec<u64> = per_window[..per_window.len().saturating_sub(1)].to_vec();
    let avg_full = full.iter().sum::<u64>() as f64 / full.len().max(1) as f64;
    let throttled = deskie.iter().filter(|e| e.status == 429).count();
    let writes = deskie
        .iter()
        .filter(|e| e.method != "GET" && e.status < 400)
        .count();
    let reads = deskie
        .iter()
        .filter(|e| e.method == "GET" && e.status < 400)
        .count();
    let loaded = summary.progress.loaded.max(1);
    let use_pct = avg_full * 100.0 / f64::from(limit);
    println!(
        "| budget use | {tickets} tickets, limit {limit}/10 s, latency 200±100 ms, 8 cases in flight | {:.1}% of the limit over {} full windows (overall {:.1}%), {throttled} × 429, {units} units in {:.0} s | ≥ 97 %, 0 × 429 | {} |",
        use_pct,
        full.len(),
        units as f64 * 100.0 / (f64::from(limit) * span / window.as_secs_f64()),
        elapsed.as_secs_f64(),
        met(use_pct >= 97.0 && throttled == 0)
    );
    println!(
        "| requests per ticket | same run | {:.2} writes per loaded ticket ({} writes / {} cases), {:.3} reads per ticket ({reads} reads: 1 credential check + reconciliation) | the recipe's writes (`CasePlan::writes()`, equal to the journal in `tests/report.rs`), reads: only the credential check (no reconciliation without a crash) | {} |",
        writes as f64 / loaded as f64,
        writes,
        loaded,
        reads as f64 / loaded as f64,
        met(reads <= 1)
    );
    sb.shutdown().await;
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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        println!("| what | scenario | result | target | met? |");
        println!("|---|---|---|---|---|");
        if units_only {
            requests_per_ticket(300).await;
        } else if quick {
            budget_use(80).await;
            overlap(60).await;
            requests_per_ticket(100).await;
        } else {
            if local {
                local_cost(5_000).await;
                local_cost(20_000).await;
            }
            budget_use(300).await;
            overlap(200).await;
            requests_per_ticket(300).await;
        }
    });
}
