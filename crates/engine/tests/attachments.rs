//! Attachments (#12) against the sandbox: the clients' streamed download and multipart upload,
//! the token kept to the Desk360 API host, refused files as typed errors naming the file.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use engine::attachments::Desk360File;
use sandbox::AttachmentSetup;
use throttle::Limiter;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn limiter(name: &'static str) -> Limiter {
    common::limiter(name, 100_000, Duration::from_secs(60))
}

async fn clients(h: &common::Harness) -> (desk360::Desk360Client, deskie::DeskieClient) {
    let source = common::desk360_client(h, common::token_auth(h), limiter("desk360")).await;
    let target = common::deskie_client(h, limiter("deskie"));
    (source, target)
}

/// Every attachment of a few tickets (public, behind the token, signed; two files of 12 and
/// 9 MB) is downloaded and sent with a multipart write, message or note, and arrives in Deskie
/// with its size and checksum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_stream_every_file_with_its_size_and_checksum() {
    let mut cfg = common::small(20, 60_000, 1_000, 1_500);
    // The dataset is deterministic: the first generated ticket gets two big files.
    let (big_p, big_t) = common::first_ticket(&cfg);
    cfg.attachments = AttachmentSetup {
        behind_token_share: 0.4,
        signed_share: 0.3,
        large: vec![(big_p, big_t, vec![12 << 20, 9 << 20])],
        ..AttachmentSetup::default()
    };
    let h = common::start(cfg, "").await;
    let keys: Vec<(i64, i64)> = h
        .sandbox
        .dataset()
        .tickets
        .iter()
        .map(|t| (t.product_id, t.ticket_id))
        .collect();
    let (source, target) = clients(&h).await;
    let storage = limiter("storage");
    let mut expected = Vec::new();
    let mut signed = 0;
    for (p, t) in &keys {
        let detail = source.ticket(*p, *t).await.unwrap();
        let case = target
            .create_case(&deskie::NewCase::email(
                "someone@example.com",
                format!("ticket {p}/{t}"),
                "<p>hello</p>",
                jiff::Timestamp::from_second(1_700_000_000).unwrap(),
                None,
            ))
            .await
            .unwrap();
        for (i, m) in detail.messages.iter().enumerate() {
            let a = &m.attachments;
            let all: Vec<_> = [&a.images, &a.videos, &a.files, &a.others]
                .into_iter()
                .flatten()
                .collect();
            if all.is_empty() {
                continue;
            }
            let files: Vec<_> = all
                .iter()
                .map(|f| {
                    let url = f.url.clone().unwrap();
                    signed += usize::from(url.contains("signature="));
                    let name = f.name.clone().unwrap_or_else(|| "file".into());
                    expected.push((
                        case.case_id,
                        name.clone(),
                        h.sandbox.dataset().attachment_size(&url).unwrap(),
                        h.sandbox.dataset().attachment_sha256(&url).unwrap(),
                    ));
                    Desk360File::new(source.clone(), url, name, storage.clone())
                        .into_upload(f.content_type.clone())
                })
                .collect();
            let at = jiff::Timestamp::from_second(1_700_000_100 + i as i64).unwrap();
            if i % 2 == 0 {
                let msg = deskie::NewMessage::from_customer(
                    case.user_id.unwrap(),
                    deskie::Content::Html(format!("<p>message {i}</p>")),
                    at,
                );
                target
                    .add_message_with_files(case.case_id, &msg, &files)
                    .await
                    .unwrap();
            } else {
                let note = deskie::NewNote::new(100, format!("note {i}"), Some(at));
                target
                    .add_note_with_files(case.case_id, &note, &files)
                    .await
                    .unwrap();
            }
        }
    }
    assert!(
        expected.len() >= 6,
        "the seeded tickets carry files: {expected:?}"
    );
    assert!(signed >= 1, "some URLs are signed");
    assert!(expected.iter().any(|e| e.2 == 12 << 20));
    let snapshot = h.sandbox.deskie_snapshot();
    let mut got: Vec<(i64, String, u64, String)> = snapshot
        .cases
        .iter()
        .flat_map(|c| {
            c.messages.iter().flat_map(move |m| {
                m.files
                    .iter()
                    .map(move |f| (c.case_id, f.name.clone(), f.size, f.sha256.clone()))
            })
        })
        .collect();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
}

/// A file on another host is fetched without the Desk360 token and not charged to the
/// Desk360 limiter; a file refused by its storage is a typed error naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_goes_only_to_the_api_host_and_refusals_name_the_file() {
    let mut cfg = common::small(3, 60_000, 1_000, 1_500);
    cfg.attachments = AttachmentSetup {
        behind_token_share: 1.0,
        ..AttachmentSetup::default()
    };
    let h = common::start(cfg, "").await;
    let (source, _) = clients(&h).await;

    // A storage host: a one-request HTTP server that records what it was sent.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 8192];
        let mut head = Vec::new();
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = sock.read(&mut buf).await.unwrap();
            assert!(n > 0);
            head.extend_from_slice(&buf[..n]);
        }
        sock.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nhello")
            .await
            .unwrap();
        String::from_utf8_lossy(&head).to_lowercase()
    });
    let storage = limiter("storage");
    let before = source.limiter().stats();
    let url = format!("http://{addr}/bucket/file.txt");
    let download = source.download(&url, "file.txt", &storage).await.unwrap();
    assert_eq!(download.size, Some(5));
    let bytes: Vec<u8> = futures::StreamExt::collect::<Vec<_>>(download.body)
        .await
        .into_iter()
        .flat_map(|c| c.unwrap().to_vec())
        .collect();
    assert_eq!(bytes, b"hello");
    let head = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap();
    assert!(head.starts_with("get /bucket/file.txt"), "{head}");
    assert!(
        !head.contains("authorization"),
        "token sent to another host: {head}"
    );
    assert!(!head.contains(&h.sandbox.credentials().desk360_token.to_lowercase()));
    assert_eq!(
        source.limiter().stats().requests,
        before.requests,
        "a storage download is not charged to the Desk360 limiter"
    );
    assert_eq!(storage.stats().requests, 1);

    // A file behind the token, on the API host: fine with the token, refused once it expired.
    let (p, t) = {
        let ds = h.sandbox.dataset();
        ds.tickets
            .iter()
            .find(|t| {
                t.messages()
                    .iter()
                    .any(|m| m["attachments"].to_string().contains("/attachments/"))
            })
            .map(|t| (t.product_id, t.ticket_id))
            .unwrap()
    };
    let detail = source.ticket(p, t).await.unwrap();
    let file = detail
        .messages
        .iter()
        .flat_map(|m| {
            let a = &m.attachments;
            [&a.images, &a.videos, &a.files, &a.others]
                .into_iter()
                .flatten()
                .cloned()
                .collect::<Vec<_>>()
        })
        .next()
        .unwrap();
    let url = file.url.clone().unwrap();
    let ok = source.download(&url, "first", &storage).await.unwrap();
    assert_eq!(ok.size, h.sandbox.dataset().attachment_size(&url));
    drop(ok);
    h.sandbox.expire_desk360_token();
    let err = source
        .download(&url, "report.pdf", &storage)
        .await
        .unwrap_err();
    match &err {
        desk360::Desk360Error::FileDenied { name, status, .. } => {
            assert_eq!(name, "report.pdf");
            assert_eq!(*status, 401);
        }
        other => panic!("expected FileDenied, got {other:?}"),
    }
    assert!(err.to_string().contains("report.pdf"), "{err}");
}

/// A download from the API host whose login token expired renews it like any other request
/// (one login) and gets the file; a token fresh from that login is what the next request uses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_refused_for_an_expired_login_token_logs_in_again() {
    let mut cfg = common::small(3, 60_000, 1_000, 1_500);
    cfg.attachments = AttachmentSetup {
        behind_token_share: 1.0,
        ..AttachmentSetup::default()
    };
    let h = common::start(cfg, "").await;
    let source = common::desk360_client(&h, common::login_auth(&h), limiter("desk360")).await;
    let storage = limiter("storage");
    let url = h
        .sandbox
        .dataset()
        .tickets
        .iter()
        .flat_map(|t| t.messages())
        .flat_map(|m| {
            let text = m["attachments"].to_string();
            text.split('"')
                .filter(|s| s.contains("/attachments/"))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .next()
        .expect("a file behind the token");
    let size = h.sandbox.dataset().attachment_size(&url);
    let first = source.download(&url, "a.pdf", &storage).await.unwrap();
    assert_eq!(first.size, size);
    drop(first);
    h.sandbox.expire_desk360_token();
    let again = source
        .download(&url, "a.pdf", &storage)
        .await
        .expect("the expired token is renewed and the file fetched");
    assert_eq!(again.size, size);
    let bytes: u64 = futures::StreamExt::collect::<Vec<_>>(again.body)
        .await
        .into_iter()
        .map(|c| c.unwrap().len() as u64)
        .sum();
    assert_eq!(Some(bytes), size);
    assert_eq!(source.token_renewals(), 1, "one login for the one expiry");
}

/// The HTTP status of a plain GET of `url` (a loopback `http://` URL) with no credentials.
async fn status_without_token(url: &str) -> u16 {
    let u = url::Url::parse(url).unwrap();
    let addr = format!("{}:{}", u.host_str().unwrap(), u.port().unwrap());
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let path = match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_owned(),
    };
    sock.write_all(
        format!("HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut head = vec![0u8; 64];
    let n = sock.read(&mut head).await.unwrap();
    let line = String::from_utf8_lossy(&head[..n]).to_string();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// `mode = "upload"` end to end: every file of the account arrives in Deskie with its size and
/// checksum (public, behind the Desk360 token, signed), a ticket whose files exceed 50 MB
/// together gets a follow-up note, a file over 25 MB is left out and the rest of the case is
/// exact; under lost responses nothing is written twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_mode_migrates_every_file_with_its_checksum() {
    let mut cfg = common::small(16, 60_000, 1_000, 1_500);
    let (big_p, big_t) = common::first_ticket(&cfg);
    cfg.attachments = AttachmentSetup {
        behind_token_share: 0.3,
        signed_share: 0.3,
        large: vec![(big_p, big_t, vec![30 << 20, 20 << 20, 20 << 20, 15 << 20])],
        ..AttachmentSetup::default()
    };
    cfg.faults.drop_after_commit_rate = 0.03;
    let h = common::start(cfg, "[attachments]\nmode = \"upload\"\ninline = \"keep\"").await;
    common::run_without_failures(&h).await;
    common::assert_exact(&h);
    let snap = h.sandbox.deskie_snapshot();
    let mut files_seen = 0;
    for t in h.sandbox.dataset().tickets.iter() {
        let cases = snap.cases_of(t.product_id, t.ticket_id);
        if cases.is_empty() {
            continue;
        }
        // At most one case each (`assert_exact`): the files of that case.
        let got = common::files_in_deskie(&h, t.product_id, t.ticket_id);
        let want = common::expected_files(&h, t.product_id, t.ticket_id);
        assert_eq!(got, want, "ticket {}/{}", t.product_id, t.ticket_id);
        files_seen += got.len();
        for m in &cases[0].messages {
            assert!(
                m.attachment_urls
                    .iter()
                    .all(|u| u.starts_with("multipart:")),
                "{:?}",
                m.attachment_urls
            );
        }
    }
    assert!(files_seen >= 8, "{files_seen} files");
    // Some of those files could only be read with the Desk360 token.
    let mut behind_token = 0;
    for t in h.sandbox.dataset().tickets.iter() {
        for m in t.messages() {
            for g in m["attachments"]
                .as_object()
                .into_iter()
                .flat_map(|o| o.values())
            {
                for f in g.as_array().into_iter().flatten() {
                    let url = f["url"].as_str().unwrap();
                    if status_without_token(url).await == 401 {
                        behind_token += 1;
                    }
                }
            }
        }
    }
    assert!(
        behind_token >= 1,
        "no file behind the Desk360 token was migrated"
    );
    let big = snap.cases_of(big_p, big_t)[0];
    let follow_ups: Vec<_> = big
        .messages
        .iter()
        .filter(|m| m.note && m.content.contains("Files of the message of"))
        .collect();
    assert_eq!(
        follow_ups.len(),
        1,
        "55 MB of files need one follow-up note"
    );
    assert_eq!(follow_ups[0].files.len(), 1);
    assert_eq!(follow_ups[0].files[0].size, 15 << 20);
}

/// `inline = "rehost"`: an inline image on Desk360 storage in a reply and in a note is uploaded
/// with its message, and the message is then edited so no migrated message links to Desk360
/// storage any more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rehost_leaves_no_message_linking_to_desk360_storage() {
    let mut cfg = common::small(6, 60_000, 1_000, 1_500);
    cfg.attachments = AttachmentSetup {
        behind_token_share: 0.5,
        ..AttachmentSetup::default()
    };
    let h = common::start(cfg, "[attachments]\nmode = \"upload\"\ninline = \"rehost\"").await;
    // An image file the account has, shown inline in two new messages of one ticket.
    let (p, t, src) = {
        let ds = h.sandbox.dataset();
        let t = ds
            .tickets
            .iter()
            .find(|t| {
                t.messages()
                    .iter()
                    .any(|m| m["attachments"].to_string().contains("/attachments/"))
            })
            .unwrap();
        let url = t
            .messages()
            .iter()
            .flat_map(|m| m["attachments"].as_object().cloned().unwrap_or_default())
            .flat_map(|(_, g)| g.as_array().cloned().unwrap_or_default())
            .find_map(|f| f["url"].as_str().map(str::to_owned))
            .unwrap();
        (t.product_id, t.ticket_id, url)
    };
    let storage_prefix = src[..src.find("/attachments/").unwrap()].to_owned();
    common::add_inline_image(&h, p, t, &src);
    common::run_without_failures(&h).await;
    let snap = h.sandbox.deskie_snapshot();
    let sha = h.sandbox.dataset().attachment_sha256(&src).unwrap();
    let mut rehosted = 0;
    for case in &snap.cases {
        for m in &case.messages {
            for body in [&m.content_html, &m.content] {
                assert!(
                    !body.contains(&format!("{storage_prefix}/attachments/")),
                    "case {} message {} still links to Desk360 storage: {body}",
                    case.case_id,
                    m.message_id
                );
            }
            let body = if m.note { &m.content } else { &m.content_html };
            if body.contains("alt=\"shot\"") {
                rehosted += 1;
                let file = m.files.iter().find(|f| f.sha256 == sha).unwrap();
                assert!(
                    body.contains(&format!("src=\"{}\"", file.url)),
                    "{body} should point at {}",
                    file.url
                );
            }
        }
    }
    assert_eq!(rehosted, 2, "the reply and the note were rehosted");
}

async fn report_of(settings: &engine::config::Settings) -> engine::report::Report {
    let engine = engine::Engine::open(settings.clone()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(60), engine::report::build(&engine))
        .await
        .expect("report in time")
        .expect("report builds")
}

/// The report counts the files and bytes that went in upload mode, and lists every file that
/// could not go with its reason and what to do: signed links that expired (403) and a file
/// over 25 MB; nothing is counted twice, nothing is silently left out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_counts_files_per_mode_and_lists_each_file_that_could_not_go() {
    let mut cfg = common::small(10, 60_000, 1_000, 1_500);
    let (big_p, big_t) = common::first_ticket(&cfg);
    cfg.attachments = AttachmentSetup {
        behind_token_share: 0.3,
        signed_share: 0.4,
        // Expired by the time the loader downloads them.
        signed_ttl: Duration::ZERO,
        large: vec![(big_p, big_t, vec![30 << 20])],
    };
    let h = common::start(cfg, "[attachments]\nmode = \"upload\"\ninline = \"keep\"").await;
    // Extract first, then load once the signed links (valid to the end of the second they were
    // served in) have expired.
    common::dry_run(&h.settings).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    common::run_without_failures(&h).await;
    let snap = h.sandbox.deskie_snapshot();
    let (files, bytes) = snap
        .cases
        .iter()
        .flat_map(|c| c.messages.iter())
        .flat_map(|m| m.files.iter())
        .fold((0u64, 0u64), |(n, b), f| (n + 1, b + f.size));
    let all_files: u64 = h
        .sandbox
        .dataset()
        .tickets
        .iter()
        .flat_map(|t| t.messages())
        .map(|m| {
            m["attachments"]
                .as_object()
                .map(|o| {
                    o.values()
                        .filter_map(|g| g.as_array())
                        .map(|g| g.len() as u64)
                        .sum::<u64>()
                })
                .unwrap_or(0)
        })
        .sum();
    let r = report_of(&h.settings).await;
    let a = &r.attachments;
    assert_eq!(a.mode, "upload");
    assert_eq!(
        (a.uploaded.files, a.uploaded.bytes),
        (files, bytes),
        "{a:?}"
    );
    assert_eq!(
        a.linked.files + a.inline_uploaded.files + a.pending.files,
        0
    );
    assert_eq!(a.failures_total, all_files - files, "{:#?}", a.failures);
    assert!(
        a.failures
            .iter()
            .any(|f| f.reason.contains("HTTP 403") && !f.fix.is_empty()),
        "{:#?}",
        a.failures
    );
    assert!(
        a.failures
            .iter()
            .all(|f| !f.ticket.is_empty() && !f.file.is_empty() && !f.fix.is_empty())
    );
    assert!(r.alerts.iter().any(|x| x.code == "attachment_failures"));
    let md = r.to_markdown();
    assert!(md.contains("## Attachments"), "{md}");
    assert!(!md.contains("stay downloadable at their Desk360 URL"));
    assert!(r.to_html().contains("<h2>Attachments</h2>"));
    // A second run changes nothing: every count stays.
    let again = common::run(&h.settings, engine::RunOptions::default()).await;
    assert_eq!(again.failed, 0);
    let r2 = report_of(&h.settings).await;
    assert_eq!(r2.attachments.uploaded, a.uploaded);
    assert_eq!(r2.attachments.failures_total, a.failures_total);
}

/// `mode = "urls"`: the dry run fetches a sample of links with no credential and warns, with
/// the counts, about links behind the Desk360 token and signed (expiring) ones; the warning is
/// in the report, first, with the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_in_urls_mode_warns_about_links_that_are_not_public_or_expire() {
    let mut cfg = common::small(120, 60_000, 1_000, 1_500);
    cfg.attachments = AttachmentSetup {
        behind_token_share: 0.4,
        signed_share: 0.3,
        ..AttachmentSetup::default()
    };
    let h = common::start(cfg, "[attachments]\nmode = \"urls\"").await;
    let summary = common::dry_run(&h.settings).await;
    assert!(!summary.interrupted);
    // No write reached Deskie.
    assert!(h.sandbox.deskie_snapshot().cases.is_empty());
    let r = report_of(&h.settings).await;
    let check = r
        .attachments
        .link_check
        .clone()
        .expect("the dry run checked links");
    let with_files = h
        .sandbox
        .dataset()
        .tickets
        .iter()
        .filter(|t| {
            t.messages().iter().any(|m| {
                m["attachments"].as_object().is_some_and(|o| {
                    o.values()
                        .any(|g| g.as_array().is_some_and(|g| !g.is_empty()))
                })
            })
        })
        .count() as u64;
    // One link of each ticket with files, spread, at most the sample size.
    assert_eq!(
        check.sampled,
        with_files.min(u64::from(engine::attachments::LINK_SAMPLE)),
        "{check:?}"
    );
    // A link behind the token answers 401 only when no token is sent.
    assert!(check.not_public >= 1, "{check:?}");
    assert!(check.expiring >= 1, "{check:?}");
    assert_eq!(
        check.detail.len() as u64,
        check
            .detail
            .iter()
            .filter(|d| d.contains("without credentials") || d.contains("expiry"))
            .count() as u64
    );
    let alert = r
        .alerts
        .iter()
        .find(|a| a.code == "attachment_links_not_public")
        .expect("a warning");
    assert_eq!(alert.level, engine::report::Level::Warning);
    assert!(
        alert.message.starts_with(&format!(
            "{} of {} sampled attachment links need Desk360 credentials",
            check.not_public, check.sampled
        )),
        "{}",
        alert.message
    );
    assert!(alert.message.contains("mode = \"upload\""));
    // The same sample every time: a second dry run finds the same counts.
    common::dry_run(&h.settings).await;
    let again = report_of(&h.settings).await.attachments.link_check.unwrap();
    assert_eq!(
        (again.sampled, again.not_public, again.expiring),
        (check.sampled, check.not_public, check.expiring)
    );
}

/// A run stopped between a message write and the edit that re-points its inline images (every
/// edit refused as unavailable, Ctrl-C while it is retried) leaves the edit journaled; the next
/// run sends it, and then no message links to Desk360 storage, each image is in Deskie once,
/// and `verify` does not flag the rehosted messages (their `src` changed on purpose).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inline_edit_cut_off_from_its_message_write_is_sent_by_the_next_run() {
    let mut cfg = common::small(6, 60_000, 1_000, 1_500);
    cfg.attachments = AttachmentSetup {
        behind_token_share: 0.5,
        ..AttachmentSetup::default()
    };
    let h = common::start(cfg, "[attachments]\nmode = \"upload\"\ninline = \"rehost\"").await;
    let (p, t, src) = common::tickets_with_api_files(&h).remove(0);
    common::add_inline_image(&h, p, t, &src);
    h.sandbox.set_faults(sandbox::Faults {
        edits_unavailable: true,
        ..sandbox::Faults::default()
    });
    let engine = engine::Engine::open(h.settings.clone()).await.unwrap();
    let cancel = engine.cancel_token();
    let run = tokio::spawn(async move { engine.run(engine::RunOptions::default()).await });
    let refused_edit = |h: &common::Harness| {
        h.sandbox.journal().iter().any(|e| {
            e.server == sandbox::Server::Deskie
                && e.method == "PUT"
                && e.status == 503
                && (e.path.contains("/messages/") || e.path.contains("/note/"))
        })
    };
    tokio::time::timeout(Duration::from_secs(60), async {
        while !refused_edit(&h) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("an inline edit is tried");
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the run stops")
        .unwrap()
        .unwrap();
    let storage = format!("{}/attachments/", h.sandbox.desk360_url());
    let linked = h
        .sandbox
        .deskie_snapshot()
        .cases
        .iter()
        .flat_map(|c| c.messages.iter())
        .any(|m| m.content_html.contains(&storage) || m.content.contains(&storage));
    assert!(linked, "the stop came between a message write and its edit");

    h.sandbox.set_faults(sandbox::Faults::default());
    for _ in 0..3 {
        let s = common::run(&h.settings, engine::RunOptions::default()).await;
        if s.failed == 0 && !s.interrupted {
            break;
        }
    }
    common::assert_no_desk360_links(&h);
    common::assert_exact_rehosted(&h);
    let sha = h.sandbox.dataset().attachment_sha256(&src).unwrap();
    let copies: usize = h
        .sandbox
        .deskie_snapshot()
        .cases_of(p, t)
        .iter()
        .flat_map(|c| c.messages.iter())
        .map(|m| m.files.iter().filter(|f| f.sha256 == sha).count())
        .sum();
    // The file itself (where the ticket has it) and the image once in each of the two messages.
    let own = common::expected_files(&h, p, t)
        .iter()
        .filter(|f| f.2 == sha)
        .count();
    assert_eq!(copies, own + 2, "each inline image uploaded once");
    let r = report_of(&h.settings).await;
    assert_eq!(r.attachments.rehosted_messages, 2, "{:?}", r.attachments);
    assert_eq!(r.attachments.rehost_edits_open, 0);
    assert_eq!(r.attachments.inline_uploaded.files, 2);

    let engine = engine::Engine::open(h.settings.clone()).await.unwrap();
    let v = tokio::time::timeout(
        Duration::from_secs(120),
        engine::verify::run(&engine, &engine::verify::VerifyOptions::default()),
    )
    .await
    .expect("verify in time")
    .expect("verify runs");
    assert!(v.ok() && v.unexpected == 0, "{}", v.to_text());
}
