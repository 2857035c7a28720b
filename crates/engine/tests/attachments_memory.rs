//! Peak memory while uploading about 200 MB of attachments (#12: "peak memory stays flat"),
//! alone in its own test binary so no other test shares the process. Files are downloaded from
//! the Desk360 emulator (which produces their bytes chunk by chunk) and streamed by the real
//! clients into multipart writes to a sink that reads and discards them (the Deskie emulator
//! keeps uploaded bytes in memory, which would hide the figure). Prints the figure for
//! BENCHMARKS.md; asserts the growth stays under one file's worth (24 MiB).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use engine::attachments::Desk360File;
use sandbox::AttachmentSetup;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `VmHWM` (peak resident set) of this process in KiB.
fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// An HTTP/1.1 sink: reads each chunked request body to its end, counts it, answers a message.
async fn sink(listener: tokio::net::TcpListener) -> u64 {
    let mut total = 0u64;
    loop {
        let Ok(Ok((mut sock, _))) =
            tokio::time::timeout(Duration::from_secs(5), listener.accept()).await
        else {
            return total;
        };
        let mut buf = vec![0u8; 64 * 1024];
        let mut tail: Vec<u8> = Vec::new();
        loop {
            let n = sock.read(&mut buf).await.unwrap();
            assert!(n > 0, "client closed before the end of the body");
            total += n as u64;
            tail.extend_from_slice(&buf[..n]);
            if tail.len() > 16 {
                tail.drain(..tail.len() - 16);
            }
            if tail.ends_with(b"\r\n0\r\n\r\n") {
                break;
            }
        }
        let body = br#"{"message":{"message_id":1,"content":"x","note":false,"attachments":[]}}"#;
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        sock.write_all(head.as_bytes()).await.unwrap();
        sock.write_all(body).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peak_memory_stays_flat_while_uploading_200_mb() {
    const MIB: u64 = 1024 * 1024;
    let mut cfg = common::small(3, 60_000, 1_000, 1_500);
    let (p, t) = common::first_ticket(&cfg);
    cfg.attachments = AttachmentSetup {
        large: vec![(p, t, vec![24 * MIB; 8])],
        ..AttachmentSetup::default()
    };
    let h = common::start(cfg, "").await;
    let limiter = |name| common::limiter(name, 100_000, Duration::from_secs(60));
    let source = common::desk360_client(&h, common::token_auth(&h), limiter("desk360")).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sink = tokio::spawn(sink(listener));
    let mut target_config = deskie::DeskieConfig::new(
        url::Url::parse(&format!("http://{addr}")).unwrap(),
        "agent@example.com",
        "key".to_owned().into(),
    );
    target_config.timeout = Duration::from_secs(120);
    let target = deskie::DeskieClient::new(target_config, limiter("deskie")).unwrap();

    let detail = source.ticket(p, t).await.unwrap();
    let files: Vec<_> = detail.messages[0]
        .attachments
        .files
        .iter()
        .filter(|f| f.size == Some(24 * MIB))
        .map(|f| (f.url.clone().unwrap(), f.name.clone().unwrap()))
        .collect();
    assert_eq!(files.len(), 8);
    let storage = limiter("storage");
    let before = vm_hwm_kib();
    // Two 24 MiB files a request (48 MiB, under Deskie's 50 MB), four requests: 192 MiB.
    for pair in files.chunks(2) {
        let parts: Vec<_> = pair
            .iter()
            .map(|(url, name)| {
                Desk360File::new(source.clone(), url.clone(), name.clone(), storage.clone())
                    .into_upload(None)
            })
            .collect();
        let msg = deskie::NewMessage::from_customer(
            1,
            deskie::Content::Html("<p>files</p>".into()),
            jiff::Timestamp::from_second(1_700_000_000).unwrap(),
        );
        target
            .add_message_with_files(1, &msg, &parts)
            .await
            .unwrap();
    }
    let after = vm_hwm_kib();
    let sent = tokio::time::timeout(Duration::from_secs(30), sink)
        .await
        .unwrap()
        .unwrap();
    assert!(sent >= 192 * MIB, "the sink received {sent} bytes");
    let growth_mib = (after.saturating_sub(before)) as f64 / 1024.0;
    println!(
        "attachments memory: uploaded {:.0} MiB in 4 multipart requests; VmHWM before {:.1} MiB, after {:.1} MiB, growth {growth_mib:.1} MiB",
        sent as f64 / MIB as f64,
        before as f64 / 1024.0,
        after as f64 / 1024.0,
    );
    assert!(
        growth_mib < 24.0,
        "peak memory grew by {growth_mib:.1} MiB: more than one file's worth"
    );
}
