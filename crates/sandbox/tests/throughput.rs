//! Throughput: the sandbox must not be the bottleneck of a benchmark. Generates a 100 000-ticket
//! account, then serves ticket details with no latency and a huge limit, and prints
//! requests/second (run with `-- --nocapture` to see the figures; `--release` for release numbers).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::bounded;
use sandbox::{Sandbox, SandboxConfig};

fn rss_mb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_ticket_details_of_100k_tickets() {
    let started = Instant::now();
    let sb = bounded(Sandbox::start(SandboxConfig {
        tickets: 100_000,
        desk360_limit: u32::MAX,
        deskie_limit: u32::MAX,
        ..SandboxConfig::default()
    }))
    .await
    .expect("sandbox starts");
    let generation = started.elapsed();
    assert_eq!(sb.dataset().tickets.len(), 100_000);
    assert!(
        generation < Duration::from_secs(60),
        "generation took {generation:?}"
    );
    let messages = sb.dataset().message_count();

    let keys: Arc<Vec<(i64, i64)>> = Arc::new(
        sb.dataset()
            .tickets
            .iter()
            .map(|t| (t.product_id, t.ticket_id))
            .collect(),
    );
    let client = reqwest::Client::new();
    let token = sb.credentials().desk360_token;
    let done = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let run_for = Duration::from_secs(3);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..16u64 {
        let (client, token, keys, done, bytes, base) = (
            client.clone(),
            token.clone(),
            keys.clone(),
            done.clone(),
            bytes.clone(),
            sb.desk360_url(),
        );
        tasks.push(tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(worker);
            while t0.elapsed() < run_for {
                let (p, t) = keys[rng.usize(..keys.len())];
                let resp = client
                    .get(format!("{base}/v1/products/{p}/tickets/{t}"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .expect("send");
                assert_eq!(resp.status(), 200);
                let body = resp.bytes().await.expect("body");
                bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        bounded(task).await.expect("worker");
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    let rps = n as f64 / elapsed;
    println!(
        "sandbox throughput: generated 100000 tickets ({messages} messages) in {:.2}s, RSS {} MB; \
         served {n} ticket details in {elapsed:.2}s = {rps:.0} req/s ({:.1} MB/s) with 16 concurrent clients",
        generation.as_secs_f64(),
        rss_mb().map_or("?".into(), |m| m.to_string()),
        bytes.load(Ordering::Relaxed) as f64 / elapsed / 1e6,
    );
    // Vendors allow 100 (Desk360) and 750/60 ≈ 12.5 (Deskie) requests a second: the sandbox must
    // be far above that.
    assert!(rps > 300.0, "{rps:.0} req/s");
    assert_eq!(sb.journal().len() as u64, n);
    sb.shutdown().await;
}
