//! Durability under `kill -9`: a child process (this same test binary, selected by an environment
//! variable) writes pages, details, intents and loads in a loop; the parent SIGKILLs it after a
//! varying amount of progress, reopens the file and checks that it is intact and that no
//! transaction is half there. Each round resumes from the list cursor the previous one left.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{listed, ticket};
use store::{CaseRef, IntentResult, IntentStep, Store};

const CHILD_ENV: &str = "STORE_KILL_TEST_CHILD_PATH";
const PAGE: i64 = 20;
const MESSAGES: usize = 5;

/// The child's body; a no-op when run as an ordinary test.
#[tokio::test]
async fn child_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = Store::open(&path).await.unwrap();
    store.release_loading().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    for _ in 0..5_000 {
        if Instant::now() > deadline {
            break;
        }
        let page = store
            .list_cursor(1)
            .await
            .unwrap()
            .map(|c| c.next_page)
            .unwrap_or(1);
        let ids: Vec<i64> = ((page - 1) * PAGE..page * PAGE).collect();
        let listing: Vec<_> = ids
            .iter()
            .map(|&i| listed(i, "2024-01-01 00:00:00"))
            .collect();
        let next = format!("https://api.example/v1/tickets?page={}", page + 1);
        let out = store
            .record_page(1, page, &listing, Some(&next))
            .await
            .unwrap();
        let details: Vec<_> = out
            .to_fetch
            .iter()
            .map(|k| (ticket(1, k.ticket_id, MESSAGES), "{\"raw\":true}"))
            .collect();
        store.save_details(&details).await.unwrap();
        for key in store.claim_for_load(PAGE as u32).await.unwrap() {
            let state = store.load_ticket(key).await.unwrap();
            let id = store
                .open_intent(key, IntentStep::Create, "h")
                .await
                .unwrap();
            let case = CaseRef {
                case_id: key.ticket_id + 10_000,
                case_number: format!("1-{}", key.ticket_id),
                user_id: 5,
            };
            store
                .complete_intent(id, IntentResult::Case(case))
                .await
                .unwrap();
            for m in state.ticket.messages.iter().skip(1) {
                let step = IntentStep::Message(m.id);
                let id = store.open_intent(key, step, "h").await.unwrap();
                store
                    .complete_intent(
                        id,
                        IntentResult::Message {
                            source_id: m.id,
                            deskie_id: m.id + 1,
                        },
                    )
                    .await
                    .unwrap();
            }
            store.mark_loaded(key).await.unwrap();
        }
        println!("page {page}");
    }
}

#[test]
fn survives_sigkill_at_any_point() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed.sqlite");
    let exe = std::env::current_exe().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut last_pages = 0;

    for (round, kill_after) in [3_i64, 11, 2, 25].into_iter().enumerate() {
        let mut child = Command::new(&exe)
            .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("page ") && tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = 0;
        while seen < kill_after {
            rx.recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|e| panic!("round {round}: child made no progress: {e}"));
            seen += 1;
        }
        // let it get into its next transactions, then kill -9 (Child::kill is SIGKILL on unix)
        std::thread::sleep(Duration::from_millis(3 * round as u64));
        child.kill().unwrap();
        child.wait().unwrap();

        let pages = rt.block_on(check(&path));
        assert!(
            pages >= last_pages + kill_after,
            "round {round}: resumed from the cursor"
        );
        last_pages = pages;
    }
}

/// Reopens the store and checks every invariant; returns the number of pages recorded.
async fn check(path: &std::path::Path) -> i64 {
    let store = tokio::time::timeout(Duration::from_secs(60), Store::open(path))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.integrity_check().await.unwrap(), vec!["ok"]);
    let pool = sqlx::SqlitePool::connect_with(
        sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .read_only(true),
    )
    .await
    .unwrap();
    let q = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let pages = q("SELECT count(*) FROM batches").await;
    assert!(pages > 0);
    // pages are contiguous from 1 and the cursor points just after the last one
    assert_eq!(q("SELECT max(page) FROM batches").await, pages);
    assert_eq!(
        q("SELECT next_page FROM list_cursors WHERE product_id = 1").await,
        pages + 1
    );
    // no half page: every batch has all its tickets
    assert_eq!(
        q("SELECT count(*) FROM batches b WHERE ticket_count != 20
              OR (SELECT count(*) FROM tickets t WHERE t.batch_id = b.id) != 20")
        .await,
        0
    );
    // no half detail: every fetched ticket has all its messages and attachments
    assert_eq!(
        q(
            "SELECT count(*) FROM tickets t WHERE t.state != 'pending' AND (
              (SELECT count(*) FROM messages m WHERE m.product_id = t.product_id
                  AND m.ticket_id = t.ticket_id) != 5
              OR (SELECT count(*) FROM attachments a WHERE a.product_id = t.product_id
                  AND a.ticket_id = t.ticket_id) != 3
              OR message_count + note_count != 5)"
        )
        .await,
        0
    );
    // no map without its completed intent, nothing loaded without its case and messages
    assert_eq!(
        q(
            "SELECT count(*) FROM case_map c WHERE NOT EXISTS (SELECT 1 FROM intents i
              WHERE i.product_id = c.product_id AND i.ticket_id = c.ticket_id
                AND i.step = 'create' AND i.state = 'done' AND i.result_id = c.case_id)"
        )
        .await,
        0
    );
    assert_eq!(
        q(
            "SELECT count(*) FROM message_map m WHERE NOT EXISTS (SELECT 1 FROM intents i
              WHERE i.product_id = m.product_id AND i.ticket_id = m.ticket_id
                AND i.step = 'message:' || m.source_message_id AND i.state = 'done')"
        )
        .await,
        0
    );
    assert_eq!(
        q("SELECT count(*) FROM tickets t WHERE state = 'loaded' AND (
              NOT EXISTS (SELECT 1 FROM case_map c WHERE c.product_id = t.product_id
                  AND c.ticket_id = t.ticket_id)
              OR (SELECT count(*) FROM message_map m WHERE m.product_id = t.product_id
                  AND m.ticket_id = t.ticket_id) != 4)")
        .await,
        0
    );
    // never two open intents for one step
    assert_eq!(
        q(
            "SELECT count(*) FROM (SELECT 1 FROM intents WHERE state = 'open'
              GROUP BY product_id, ticket_id, step HAVING count(*) > 1)"
        )
        .await,
        0
    );
    pool.close().await;
    store.close().await;
    pages
}
