//! Unit tests of the transport's retry classification against a raw TCP server that can drop a
//! connection right after reading a request, the case a write must never be repeated for.

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use throttle::LimiterConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the raw server does after reading a whole request.
#[derive(Clone, Copy)]
enum Then {
    Drop,
    Respond503,
}

/// Serves on 127.0.0.1:0, counting complete requests read.
async fn raw_server(then: Then) -> (Url, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let c = c.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read the head, then the body announced by Content-Length.
                loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                c.fetch_add(1, Ordering::SeqCst);
                match then {
                    Then::Drop => drop(sock),
                    Then::Respond503 => {
                        let body = r#"{"error":{"code":"internal_server_error","message":"boom"}}"#;
                        let resp = format!(
                            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = sock.write_all(resp.as_bytes()).await;
                    }
                }
            });
        }
    });
    (
        Url::parse(&format!("http://{addr}/v1/things")).unwrap(),
        count,
    )
}

fn transport() -> Transport {
    let mut config = Desk360Config::new(
        Url::parse("http://127.0.0.1:1").unwrap(),
        Auth::Token(SecretString::from("t")),
    );
    config.timeout = Duration::from_secs(2);
    config.retry = RetryPolicy {
        max_transient_retries: 3,
        max_rate_limited_retries: 2,
        min_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    };
    let limiter = Limiter::new(LimiterConfig {
        name: "desk360-unit",
        limit: 60_000,
        window: Duration::from_secs(60),
        ..LimiterConfig::default()
    });
    Transport::new(&config, limiter).unwrap()
}

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("test timed out")
}

/// A reply POSTed as a write (never repeated once sent), which must fail: its error.
async fn post_reply(t: &Transport, url: &Url) -> Desk360Error {
    let body = serde_json::json!({"message": "hi"});
    bounded(t.send(Method::POST, url, None, Some(&body), Safety::Write, "reply"))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn write_dropped_after_send_is_ambiguous_and_sent_once() {
    let (url, count) = raw_server(Then::Drop).await;
    let t = transport();
    let err = post_reply(&t, &url).await;
    assert!(matches!(err, Desk360Error::Ambiguous { .. }), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Ambiguous);
    // Give a (wrong) retry a chance to arrive before counting.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(t.limiter.stats().requests, 1);
}

#[tokio::test]
async fn write_answered_503_is_ambiguous_and_sent_once() {
    let (url, count) = raw_server(Then::Respond503).await;
    let t = transport();
    let err = post_reply(&t, &url).await;
    assert!(matches!(err, Desk360Error::Ambiguous { .. }), "{err:?}");
    assert!(err.to_string().contains("HTTP 503"), "{err}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn write_that_never_connected_is_retried() {
    // A port nobody listens on: every attempt is a connect error, so nothing was sent.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = Url::parse(&format!("http://{addr}/v1/things")).unwrap();
    let t = transport();
    let err = post_reply(&t, &url).await;
    assert!(
        matches!(err, Desk360Error::Transient { status: None, .. }),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::Transient);
    assert_eq!(t.limiter.stats().requests, 4, "1 attempt + 3 retries");
}

#[tokio::test]
async fn read_dropped_after_send_is_retried() {
    let (url, count) = raw_server(Then::Drop).await;
    let t = transport();
    let err = bounded(t.send(Method::GET, &url, None, None, Safety::Idempotent, "things"))
        .await
        .unwrap_err();
    assert!(matches!(err, Desk360Error::Transient { .. }), "{err:?}");
    assert_eq!(count.load(Ordering::SeqCst), 4, "1 attempt + 3 retries");
}
