//! Helpers shared by the sandbox's integration tests: start a sandbox, build clients, bound waits.
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use sandbox::{Sandbox, SandboxConfig};

/// Every wait in the tests is bounded by this.
pub const LIMIT: Duration = Duration::from_secs(30);

/// Runs a future with the test-wide timeout.
pub async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("test step timed out")
}

/// A small sandbox with the given tweaks.
pub async fn start(tweak: impl FnOnce(&mut SandboxConfig)) -> Sandbox {
    let mut config = SandboxConfig {
        tickets: 120,
        ..SandboxConfig::default()
    };
    tweak(&mut config);
    bounded(Sandbox::start(config))
        .await
        .expect("sandbox starts")
}

/// A plain HTTP client that never retries on its own.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// A header as a string (panics when absent: tests assert presence this way).
pub fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .unwrap_or_else(|| panic!("header {name} missing"))
        .to_str()
        .expect("ascii header")
        .to_owned()
}
