//! `kill -9` at arbitrary points: the run is restarted until it finishes, and the result must
//! be exactly the same as an uninterrupted run — nothing fetched twice beyond what was in flight,
//! no case or message written twice, nothing missing.
//!
//! The process that gets killed is this test binary itself, re-executed to run only
//! `child_worker` with the configuration path in an environment variable; the sandbox lives in
//! the parent, so its state and journal survive every kill.
#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

mod common;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const CHILD_ENV: &str = "DESKIE_IMPORT_TEST_CHILD_CONFIG";

/// Runs a migration from the config file named in the environment; a no-op otherwise.
#[test]
fn child_worker() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let settings = engine::config::load(
            std::path::Path::new(&path),
            engine::config::SecretOverrides::default(),
        )
        .unwrap();
        let engine = engine::Engine::open(settings).await.unwrap();
        engine.run(engine::RunOptions::default()).await.unwrap();
    });
}

fn spawn_child(config: &std::path::Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_worker", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Which journal entries count as progress for deciding when to kill.
#[derive(Clone, Copy)]
enum Progress {
    /// Deskie writes answered.
    DeskieWrites,
    /// Desk360 requests answered.
    Desk360Requests,
}

fn progress_count(sb: &sandbox::Sandbox, what: Progress) -> usize {
    sb.journal()
        .iter()
        .filter(|e| match what {
            Progress::DeskieWrites => e.server == sandbox::Server::Deskie && e.method != "GET",
            Progress::Desk360Requests => e.server == sandbox::Server::Desk360,
        })
        .count()
}

/// Starts the child, SIGKILLs it every time `every` more requests of the given kind reached the
/// sandbox (so kills land mid-run however fast the machine is), at most `max_kills` times, then
/// lets the last start finish. Returns the number of kills.
async fn kill_until_done(
    sb: &sandbox::Sandbox,
    config: &std::path::Path,
    what: Progress,
    every: usize,
    max_kills: usize,
) -> usize {
    let mut kills = 0;
    loop {
        let mut child = spawn_child(config);
        let target = progress_count(sb, what) + every;
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "child failed: {status}");
                return kills;
            }
            if kills < max_kills && progress_count(sb, what) >= target {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "a run did not finish in time"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn write_config(h: &Harness) -> std::path::PathBuf {
    let path = h.dir.path().join("c.toml");
    std::fs::write(&path, &h.config_text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_during_loading_resumes_without_duplicates() {
    let mut cfg = pessimistic(small(150, 1000, 1000, 400));
    cfg.latency = Duration::from_millis(8);
    cfg.faults.drop_after_commit_rate = 0.02;
    let h = start(cfg, "").await;
    let config = write_config(&h);
    // About 900 writes in all: a kill every 120 writes, at most 6.
    let kills = kill_until_done(&h.sandbox, &config, Progress::DeskieWrites, 120, 6).await;
    assert!(
        kills >= 4,
        "the run was interrupted several times ({kills})"
    );
    let (cases, _) = assert_exact(&h);
    assert!(cases > 100);
    eprintln!("kills {kills}, cases {cases}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_during_extraction_resumes_without_refetching() {
    // Desk360 is the slow side here: 60 requests a second.
    let mut cfg = small(300, 1000, 60, 4000);
    cfg.latency = Duration::from_millis(5);
    let h = start(cfg, "").await;
    let config = write_config(&h);
    // About 320 Desk360 requests in all: a kill every 60, at most 4.
    let kills = kill_until_done(&h.sandbox, &config, Progress::Desk360Requests, 60, 4).await;
    assert!(kills >= 3, "interrupted several times ({kills})");
    assert_exact(&h);

    // Journal: each detail fetched once, except those in flight at a kill (at most the
    // fetchers' concurrency per kill); each list page fetched once per pass, plus at most one
    // more per kill.
    let journal = h.sandbox.journal();
    let mut details: HashMap<String, usize> = HashMap::new();
    let mut pages: HashMap<String, usize> = HashMap::new();
    for e in journal
        .iter()
        .filter(|e| e.server == sandbox::Server::Desk360 && e.status == 200)
    {
        let path = e.path.split('?').next().unwrap_or("");
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        match parts.as_slice() {
            ["v1", "products", _, "tickets", _] => {
                *details.entry(path.to_string()).or_default() += 1
            }
            ["v1", "products", _, "tickets"] => *pages.entry(e.path.clone()).or_default() += 1,
            _ => {}
        }
    }
    let refetched: usize = details.values().map(|n| n - 1).sum();
    let relisted: usize = pages.values().map(|n| n - 1).sum();
    eprintln!(
        "kills {kills}, details {}, refetched {refetched}, pages {}, relisted {relisted}",
        details.len(),
        pages.len()
    );
    assert_eq!(details.len(), 300);
    assert!(
        refetched <= kills * (4 + 2),
        "refetched {refetched} after {kills} kills"
    );
    // Each run resumes at the stored cursor (at most the page in flight is read again) and ends
    // with a catch-up from page 1 of every product: the cost of listing exactly while Desk360
    // changes.
    let products = h.sandbox.config().products;
    assert!(
        relisted <= products + kills * (1 + products),
        "relisted {relisted} after {kills} kills"
    );
}
