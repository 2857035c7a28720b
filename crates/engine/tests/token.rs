//! Long runs outlive a Desk360 token: a token obtained by login is renewed by logging in again
//! when Desk360 answers 401 (expired), once per expiry, and the run finishes exactly once. A
//! configured (panel-made) token cannot be renewed: its 401 is fatal with a message naming the
//! fix, and so is a 401 right after a fresh login.
#![allow(clippy::unwrap_used, clippy::field_reassign_with_default)]

mod common;

use std::time::Duration;

use common::*;
use engine::config::{self, SecretOverrides, Settings};
use sandbox::{Sandbox, Server};

/// Settings that log in with the sandbox's email + password instead of its static token.
fn login_settings(h: &Harness) -> Settings {
    let creds = h.sandbox.credentials();
    let text = h.config_text.replace(
        &format!("token = \"{}\"", creds.desk360_token),
        &format!(
            "email = \"{}\"\npassword = \"{}\"",
            creds.desk360_email, creds.desk360_password
        ),
    );
    assert_ne!(text, h.config_text, "the token line was replaced");
    config::parse(
        &text,
        &h.dir.path().join("login.toml"),
        SecretOverrides::default(),
    )
    .unwrap()
}

fn is_detail(path: &str) -> bool {
    // `/v1/products/{p}/tickets/{t}`: a detail, not a list page.
    path.split('?')
        .next()
        .is_some_and(|p| p.matches('/').count() == 5 && p.contains("/tickets/"))
}

fn desk360_count(sandbox: &Sandbox, f: impl Fn(&sandbox::JournalEntry) -> bool) -> usize {
    sandbox
        .journal()
        .iter()
        .filter(|e| e.server == Server::Desk360 && f(e))
        .count()
}

/// Expires the Desk360 token each time the journal shows another `every` details answered,
/// `times` times in all; returns how many expiries it made.
async fn expire_during_run(sandbox: &Sandbox, every: usize, times: usize) -> usize {
    let mut done = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(200);
    while done < times && tokio::time::Instant::now() < deadline {
        let details = desk360_count(sandbox, |e| e.status == 200 && is_detail(&e.path));
        if details >= every * (done + 1) {
            sandbox.expire_desk360_token();
            done += 1;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    done
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_login_token_is_renewed_and_the_run_finishes_exactly_once() {
    let h = start(small(150, 1000, 600, 3000), "").await;
    let settings = login_settings(&h);
    let engine = engine::Engine::open(settings).await.unwrap();
    let run = engine.run(engine::RunOptions::default());
    let expiries = expire_during_run(&h.sandbox, 40, 2);
    let (summary, expired) = tokio::time::timeout(Duration::from_secs(240), async {
        tokio::join!(run, expiries)
    })
    .await
    .expect("the run finishes in time");
    let summary = summary.expect("the run survives the expiries");
    assert_eq!(
        expired, 2,
        "both expiries happened while the run fetched details"
    );
    assert!(!summary.interrupted, "{summary:?}");
    assert!(summary.stopped_reason.is_none(), "{summary:?}");

    let logins = desk360_count(&h.sandbox, |e| e.path.starts_with("/v1/login"));
    let refused = desk360_count(&h.sandbox, |e| e.status == 401);
    assert_eq!(
        logins,
        1 + expired,
        "one login at the start and exactly one per expiry, however many requests saw the 401"
    );
    assert!(refused >= expired, "each expiry was noticed by a 401");
    assert_eq!(
        summary.progress.extract_failed, 0,
        "no ticket failed extraction because of the expiry: {summary:?}"
    );
    let failures = engine.store().failures().await.unwrap();
    assert!(
        failures
            .iter()
            .all(|f| f.record.stage != store::Stage::Extract),
        "no extraction failure recorded: {failures:?}"
    );
    // Exactly once: one case per ticket, every message once, in order.
    let (cases, _) = assert_exact(&h);
    assert!(cases > 100, "most tickets migrated ({cases})");
    // Every ticket's detail was fetched once (plus the ones refused by the expiry, repeated).
    let details_ok = desk360_count(&h.sandbox, |e| e.status == 200 && is_detail(&e.path));
    eprintln!(
        "details answered {details_ok}, summary {:?}",
        summary.progress
    );
    assert_eq!(
        details_ok as u64, summary.progress.extracted,
        "every detail answered was stored once; a refused one was fetched again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_token_that_expires_is_fatal_with_the_fix_named() {
    let h = start(small(20, 1000, 600, 3000), "").await;
    let creds = h.sandbox.credentials();
    let desk360_limiter = limiter("desk360", 600, Duration::from_secs(1));
    let client = desk360_client(&h, token_auth(&h), desk360_limiter).await;
    client
        .me()
        .await
        .expect("the token works before it expires");
    h.sandbox.expire_desk360_token();
    let err = client
        .me()
        .await
        .expect_err("an expired panel token is refused");
    assert_eq!(err.class(), desk360::ErrorClass::Fatal);
    let text = err.to_string();
    assert!(
        text.contains("source.token") && text.contains("source.email"),
        "the message names both fixes: {text}"
    );
    assert!(
        !text.contains(&creds.desk360_token),
        "the token is never quoted"
    );
    assert_eq!(client.token_renewals(), 0);
    let logins = desk360_count(&h.sandbox, |e| e.path.starts_with("/v1/login"));
    assert_eq!(logins, 0, "a configured token never triggers a login");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_right_after_a_fresh_login_is_fatal() {
    // Tokens expire the instant they are issued: the renewal's own token is refused too.
    let mut cfg = small(20, 1000, 600, 3000);
    cfg.desk360_token_ttl = Some(Duration::from_nanos(1));
    let h = start(cfg, "").await;
    let desk360_limiter = limiter("desk360", 600, Duration::from_secs(1));
    let client = desk360_client(&h, login_auth(&h), desk360_limiter).await;
    let err = tokio::time::timeout(Duration::from_secs(30), client.me())
        .await
        .expect("no endless renewal loop")
        .expect_err("a token refused right after a login is fatal");
    assert_eq!(err.class(), desk360::ErrorClass::Fatal);
    assert!(
        err.to_string().contains("right after logging in again"),
        "{err}"
    );
    assert_eq!(client.token_renewals(), 1, "one renewal, then give up");
    let logins = desk360_count(&h.sandbox, |e| e.path.starts_with("/v1/login"));
    assert_eq!(logins, 2, "the first login and one renewal");
}
