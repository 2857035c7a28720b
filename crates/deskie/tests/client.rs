//! The client against small in-test servers on 127.0.0.1:0: what goes on the wire, how each
//! answer is classified, what is retried (reads) and what never is (writes whose outcome is
//! unknown), rate headers, and that the API key never shows up anywhere.

// Tests may unwrap: a panic is the failure report (the helpers below are test code too).
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Response, Uri};
use base64::Engine as _;
use deskie::{
    CaseLookup, CaseQuery, CaseStatus, CaseUpdate, Content, DeskieClient, DeskieConfig,
    DeskieError, ErrorClass, NewCase, NewMessage, NewNote,
};
use jiff::Timestamp;
use secrecy::SecretString;
use serde_json::{Value, json};
use throttle::{Limiter, LimiterConfig, RetryPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use url::Url;

const KEY: &str = "sk-very-secret-deskie-key-0123456789";
const EMAIL: &str = "agent@acme.example";
const BOUND: Duration = Duration::from_secs(15);

/// What the test server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    auth: Option<String>,
    body: String,
}

impl Seen {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
    fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// What the test server answers.
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

impl Reply {
    fn new(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: vec![
                ("rate_limit_per_minute", "600".into()),
                ("api_calls_left", "590".into()),
                ("retry_after", "30".into()),
            ],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }
    fn json(status: u16, body: Value) -> Self {
        Self::new(status, body.to_string())
    }
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.into()));
        self
    }
    fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// Serves `answer(request, index)` on 127.0.0.1:0; returns the base URL and the request log.
async fn serve<F>(answer: F) -> (Url, Log)
where
    F: Fn(&Seen, usize) -> Reply + Send + Sync + 'static,
{
    let log: Log = Arc::default();
    let answer = Arc::new(answer);
    let app = Router::new().fallback({
        let log = log.clone();
        move |method: Method, uri: Uri, headers: HeaderMap, body: String| {
            let log = log.clone();
            let answer = answer.clone();
            async move {
                let seen = Seen {
                    method: method.to_string(),
                    path: uri.path().to_string(),
                    query: url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                        .into_owned()
                        .collect(),
                    auth: headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned),
                    body,
                };
                let index = {
                    let mut log = log.lock().unwrap();
                    log.push(seen.clone());
                    log.len() - 1
                };
                let reply = answer(&seen, index);
                if !reply.delay.is_zero() {
                    tokio::time::sleep(reply.delay).await;
                }
                let mut response = Response::builder().status(reply.status);
                for (name, value) in &reply.headers {
                    response = response.header(*name, value);
                }
                response.body(Body::from(reply.body)).unwrap()
            }
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (Url::parse(&format!("http://{addr}")).unwrap(), log)
}

/// A server that reads a whole request, counts it, then closes the connection unanswered:
/// the request reached the server and may have been applied.
async fn dropping_server() -> (Url, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = socket.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (name, value) = l.split_once(':')?;
                                name.eq_ignore_ascii_case("content-length")
                                    .then(|| value.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = socket.shutdown().await;
                drop(socket);
            });
        }
    });
    (Url::parse(&format!("http://{addr}")).unwrap(), count)
}

fn limiter() -> Limiter {
    Limiter::new(LimiterConfig {
        name: "deskie",
        limit: 10_000,
        window: Duration::from_secs(60),
        ..LimiterConfig::default()
    })
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_transient_retries: 2,
        max_rate_limited_retries: 3,
        min_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    }
}

fn config(base: Url) -> DeskieConfig {
    DeskieConfig {
        base_url: base,
        staff_email: EMAIL.into(),
        api_key: SecretString::from(KEY),
        timeout: Duration::from_secs(5),
        retry: policy(),
    }
}

fn client(base: Url) -> DeskieClient {
    DeskieClient::new(config(base), limiter()).unwrap()
}

fn ts() -> Timestamp {
    "2024-03-05T09:04:05Z".parse().unwrap()
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// No error or debug output may contain the API key.
fn assert_redacted(err: &DeskieError) {
    for text in [format!("{err:?}"), err.to_string()] {
        assert!(!text.contains(KEY), "API key leaked: {text}");
    }
}

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(BOUND, f)
        .await
        .expect("test exceeded its time bound")
}

#[tokio::test]
async fn create_case_sends_the_recipe_payload_with_basic_auth() {
    bounded(async {
        let (base, log) = serve(|_, _| {
            Reply::new(200, fixture("create_case"))
                .header("rate_limit_per_minute", "500")
                .header("api_calls_left", "400")
        })
        .await;
        let client = client(base);
        let mut case = NewCase::email("ann@example.com", "Order", "<p>Hi</p>", ts(), Some(101));
        case.custom_fields
            .insert("cf_900".into(), "desk360:1:42".into());
        let created = client.create_case(&case).await.unwrap();
        assert_eq!((created.case_id, created.user_id), (2000, Some(123)));
        assert_eq!(created.case_number.as_deref(), Some("664-245651"));

        let seen = log.lock().unwrap()[0].clone();
        assert_eq!(
            (seen.method.as_str(), seen.path.as_str()),
            ("POST", "/api/cases.json")
        );
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{EMAIL}:{KEY}"))
        );
        assert_eq!(seen.auth.as_deref(), Some(expected.as_str()));
        assert_eq!(
            seen.json(),
            json!({"case": {
                "user_email": "ann@example.com",
                "initiator_id": 101,
                "case_email_id": -1,
                "subject": "Order",
                "content_html": "<p>Hi</p>",
                "created_at": "Tue, 05 Mar 2024 09:04:05 +0000",
                "custom_fields": {"cf_900": "desk360:1:42"},
                "do_not_send_email": true,
            }})
        );
        // A write costs 2 units, and the headers corrected the limiter.
        let stats = client.limiter().stats();
        assert_eq!((stats.requests, stats.units), (1, 2));
        assert_eq!(stats.limit, 500);
        assert!(stats.remaining <= 400, "{stats:?}");
    })
    .await;
}

#[tokio::test]
async fn messages_notes_and_updates_go_to_their_paths() {
    bounded(async {
        let (base, log) = serve(|seen, _| match seen.path.as_str() {
            "/api/cases/2000/messages.json" => Reply::new(200, fixture("add_message")),
            "/api/cases/2000/note.json" => Reply::new(200, fixture("add_note")),
            "/api/cases/2000.json" => Reply::new(200, fixture("update_case")),
            _ => Reply::new(404, ""),
        })
        .await;
        let client = client(base);
        let m = client
            .add_message(2000, &NewMessage::from_agent(101, Content::Html("<p>ok</p>".into()), ts()))
            .await
            .unwrap();
        assert_eq!(m.message_id, 2001);
        let n = client
            .add_note(
                2000,
                &NewNote::new(101, "internal", None),
            )
            .await
            .unwrap();
        assert!(n.is_note());
        let update = CaseUpdate {
            status: Some(deskie::CaseStatus::Closed),
            ..CaseUpdate::default()
        };
        let case = client.update_case(2000, &update).await.unwrap();
        assert_eq!(case.status_value(), Some(deskie::CaseStatus::Closed));

        let log = log.lock().unwrap();
        assert_eq!(log[0].method, "POST");
        assert_eq!(
            log[0].json(),
            json!({"message": {"content_html": "<p>ok</p>", "created_at": "Tue, 05 Mar 2024 09:04:05 +0000", "staff_id": 101, "do_not_send_email": true}})
        );
        assert_eq!(log[1].json(), json!({"note": {"staff_id": 101, "note_staff_id": 101, "content": "internal"}}));
        assert_eq!(log[2].method, "PUT");
        assert_eq!(log[2].json(), json!({"case": {"status": "closed"}}));
        assert_eq!(client.limiter().stats().units, 6);
    })
    .await;
}

#[tokio::test]
async fn reads_parse_the_page_samples() {
    bounded(async {
        let (base, log) = serve(|seen, _| match seen.path.as_str() {
            "/api/cases/2000.json" => Reply::new(200, fixture("view_case")),
            "/api/cases.json" => Reply::new(200, fixture("list_cases")),
            "/api/cases/2000/messages.json" => Reply::new(200, fixture("messages")),
            "/api/users/200.json" => Reply::new(200, fixture("view_user")),
            _ => Reply::new(404, ""),
        })
        .await;
        let client = client(base);
        assert_eq!(client.case(2000).await.unwrap().case_id, 2000);
        let list = client.list_cases(&CaseQuery::default()).await.unwrap();
        assert_eq!((list.cases.len(), list.total_count), (4, Some(17)));
        let page = client.messages(2000, 1, 500).await.unwrap();
        assert_eq!(page.messages.len(), 2);
        assert_eq!(client.user(200).await.unwrap().user_id, 200);
        client.check_credentials().await.unwrap();

        let log = log.lock().unwrap();
        assert!(log.iter().all(|s| s.method == "GET"));
        assert_eq!(
            log[2].param("limit"),
            Some("100"),
            "limit is clamped to 100"
        );
        assert_eq!(
            log[4].param("limit"),
            Some("1"),
            "credential check is the cheapest read"
        );
        assert_eq!(client.limiter().stats().units, 5, "reads cost 1");
    })
    .await;
}

#[tokio::test]
async fn get_is_retried_on_503() {
    bounded(async {
        let (base, log) = serve(|_, i| {
            if i < 2 {
                Reply::new(503, "Service Unavailable")
            } else {
                Reply::new(200, fixture("view_case"))
            }
        })
        .await;
        let client = client(base);
        assert_eq!(client.case(2000).await.unwrap().case_id, 2000);
        assert_eq!(log.lock().unwrap().len(), 3);
        assert_eq!(client.limiter().stats().transient_retries, 2);
    })
    .await;
}

#[tokio::test]
async fn get_gives_up_after_the_retry_bound_as_transient() {
    bounded(async {
        let (base, log) = serve(|_, _| Reply::json(502, json!({"error": "bad gateway"}))).await;
        let err = client(base).case(1).await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::Transient);
        assert!(
            matches!(
                err,
                DeskieError::Transient {
                    status: Some(502),
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            log.lock().unwrap().len(),
            1 + policy().max_transient_retries
        );
        assert_redacted(&err);
    })
    .await;
}

#[tokio::test]
async fn post_answered_503_is_ambiguous_and_sent_once() {
    bounded(async {
        let (base, log) = serve(|_, _| Reply::new(503, "")).await;
        let case = NewCase::email("a@example.com", "s", "c", ts(), None);
        let err = client(base).create_case(&case).await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::Ambiguous, "{err:?}");
        assert_eq!(
            log.lock().unwrap().len(),
            1,
            "a write is never retried blindly"
        );
        assert_redacted(&err);
    })
    .await;
}

#[tokio::test]
async fn post_dropped_after_the_server_read_it_is_ambiguous_and_sent_once() {
    bounded(async {
        let (base, count) = dropping_server().await;
        let client = client(base);
        let case = NewCase::email("a@example.com", "s", "c", ts(), None);
        let err = client.create_case(&case).await.unwrap_err();
        assert!(matches!(err, DeskieError::Ambiguous { .. }), "{err:?}");
        assert_eq!(count.load(Ordering::SeqCst), 1);
        assert_redacted(&err);

        // The same failure on a read is safe to repeat.
        let err = client.case(1).await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::Transient, "{err:?}");
        assert_eq!(
            count.load(Ordering::SeqCst),
            1 + 1 + policy().max_transient_retries
        );
    })
    .await;
}

#[tokio::test]
async fn post_that_times_out_is_ambiguous_and_sent_once() {
    bounded(async {
        let (base, log) =
            serve(|_, _| Reply::new(200, fixture("add_message")).delay(Duration::from_secs(3)))
                .await;
        let mut config = config(base);
        config.timeout = Duration::from_millis(300);
        let client = DeskieClient::new(config, limiter()).unwrap();
        let m = NewMessage::from_customer(1, Content::Html("x".into()), ts());
        let err = client.add_message(5, &m).await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::Ambiguous, "{err:?}");
        assert_eq!(log.lock().unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn post_that_cannot_connect_is_retried_then_transient() {
    bounded(async {
        // A port nobody listens on: the write provably never left.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let client = client(Url::parse(&format!("http://{addr}")).unwrap());
        let case = NewCase::email("a@example.com", "s", "c", ts(), None);
        let err = client.create_case(&case).await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::Transient, "{err:?}");
        assert!(matches!(err, DeskieError::Transient { status: None, .. }));
        assert_eq!(
            client.limiter().stats().requests as usize,
            1 + policy().max_transient_retries
        );
        assert_redacted(&err);
    })
    .await;
}

#[tokio::test]
async fn rate_limited_write_waits_retry_after_then_succeeds() {
    bounded(async {
        let (base, log) = serve(|_, i| {
            if i == 0 {
                Reply::json(429, json!({"message": "Too Many Requests"}))
                    .header("api_calls_left", "0")
                    .header("retry_after", "0.3")
            } else {
                Reply::new(200, fixture("create_case"))
            }
        })
        .await;
        let client = client(base);
        let started = Instant::now();
        let case = NewCase::email("a@example.com", "s", "c", ts(), None);
        client.create_case(&case).await.unwrap();
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            log.lock().unwrap().len(),
            2,
            "a 429 was not applied: resent once"
        );
        assert_eq!(client.limiter().stats().throttled, 1);
    })
    .await;
}

#[tokio::test]
async fn persistent_429_becomes_rate_limited() {
    bounded(async {
        let (base, log) = serve(|_, _| Reply::new(429, "").header("retry_after", "0.01")).await;
        let err = client(base).case(1).await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::RateLimited);
        assert!(matches!(
            err,
            DeskieError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_millis(10)
        ));
        assert_eq!(
            log.lock().unwrap().len(),
            1 + policy().max_rate_limited_retries
        );
    })
    .await;
}

#[tokio::test]
async fn error_bodies_become_typed_errors() {
    bounded(async {
        let (base, log) = serve(|seen, _| match seen.path.as_str() {
            "/api/cases.json" if seen.method == "POST" => {
                Reply::json(422, json!({"errors": {"user_email": "is invalid"}}))
            }
            "/api/cases/1/messages.json" => Reply::new(400, "Bad staff_id\n"),
            "/api/cases/2.json" => Reply::json(404, json!({"error": "Case not found"})),
            "/api/cases/3.json" => Reply::new(200, "<html>maintenance</html>"),
            "/api/cases/4/note.json" => Reply::new(200, "{\"message\": {\"no_id\": true}}"),
            "/api/cases.json" => Reply::json(401, json!({"message": "Wrong API key"})),
            "/api/cases/5.json" => Reply::new(409, ""),
            "/api/cases/6.json" => Reply::new(302, "").header("location", "https://elsewhere/"),
            _ => Reply::new(500, ""),
        })
        .await;
        let client = client(base);
        let case = NewCase::email("bad", "s", "c", ts(), None);

        let err = client.create_case(&case).await.unwrap_err();
        match &err {
            DeskieError::Rejected { status, message, .. } => {
                assert_eq!(*status, 422);
                assert_eq!(message, "user_email: is invalid");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(err.class(), ErrorClass::Permanent);
        assert!(err.to_string().contains("user_email: is invalid"));

        let m = NewMessage::from_agent(9, Content::Html("x".into()), ts());
        let err = client.add_message(1, &m).await.unwrap_err();
        assert!(
            matches!(&err, DeskieError::Rejected { status: 400, message, .. } if message == "Bad staff_id"),
            "{err:?}"
        );

        let err = client.case(2).await.unwrap_err();
        assert!(matches!(&err, DeskieError::NotFound { message, .. } if message == "Case not found"));
        assert_eq!(err.class(), ErrorClass::Permanent);

        let err = client.case(3).await.unwrap_err();
        assert!(
            matches!(&err, DeskieError::Malformed { excerpt, .. } if excerpt.contains("maintenance")),
            "{err:?}"
        );

        // A write answered 200 whose answer cannot be read was applied: reconcile, not fail.
        let note = NewNote::new(1, "x", None);
        let err = client.add_note(4, &note).await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::Ambiguous, "{err:?}");

        let err = client.check_credentials().await.unwrap_err();
        assert!(
            matches!(&err, DeskieError::Unauthorized { status: 401, message } if message == "Wrong API key")
        );
        assert_eq!(err.class(), ErrorClass::Fatal);

        let err = client.case(5).await.unwrap_err();
        assert!(
            matches!(&err, DeskieError::Rejected { status: 409, message, .. } if message == "Conflict"),
            "{err:?}"
        );

        let err = client.case(6).await.unwrap_err();
        assert!(matches!(err, DeskieError::Config { .. }), "{err:?}");
        assert!(err.to_string().contains("https://elsewhere/"));

        // None of these was retried.
        assert_eq!(log.lock().unwrap().len(), 8);
    })
    .await;
}

/// A fake case list for `custom_fields[cf_900]` under one search reading.
fn search_server(reading: &'static str) -> impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static {
    move |seen, _| {
        let wanted = seen
            .param("custom_fields[cf_900]")
            .unwrap_or("")
            .to_string();
        let all = [
            "desk360:1:420;",
            "desk360:1:42;",
            "desk360:1:4;",
            "desk360:1:4",
        ];
        let hits: Vec<_> = all
            .iter()
            .filter(|v| match reading {
                "exact" => **v == wanted,
                "substring" => v.contains(&wanted),
                // `^x^` exact, otherwise substring.
                _ => match wanted.strip_prefix('^').and_then(|w| w.strip_suffix('^')) {
                    Some(exact) => **v == exact,
                    None => v.contains(&wanted),
                },
            })
            .collect();
        let mut body = serde_json::Map::new();
        for (i, v) in hits.iter().enumerate() {
            body.insert(
                i.to_string(),
                json!({"case": {"case_id": 700 + i, "custom_fields": {"cf_900": v}}}),
            );
        }
        body.insert("total_count".into(), json!(hits.len()));
        Reply::json(200, Value::Object(body))
    }
}

#[tokio::test]
async fn a_case_is_found_by_its_source_key_under_every_search_reading() {
    bounded(async {
        for reading in ["exact", "substring", "caret"] {
            let (base, log) = serve(search_server(reading)).await;
            let client = client(base);
            let key = vec!["desk360:1:42;".to_string()];
            let found = client
                .lookup_case_by_custom_field("cf_900", &key)
                .await
                .unwrap();
            let CaseLookup::Found(case) = found else {
                panic!("{reading}: {found:?}");
            };
            assert_eq!(
                case.custom_field_text("cf_900").as_deref(),
                Some("desk360:1:42;"),
                "{reading}"
            );
            let absent = client
                .lookup_case_by_custom_field("cf_900", &["desk360:9:9;".to_string()])
                .await
                .unwrap();
            assert!(
                matches!(absent, CaseLookup::Absent),
                "{reading}: {absent:?}"
            );
            // An older, unterminated spelling is looked up second and matched exactly.
            let legacy = client
                .lookup_case_by_custom_field(
                    "cf_900",
                    &["desk360:1:4;;".to_string(), "desk360:1:4".to_string()],
                )
                .await
                .unwrap();
            let CaseLookup::Found(case) = legacy else {
                panic!("{reading} legacy: {legacy:?}");
            };
            assert_eq!(
                case.custom_field_text("cf_900").as_deref(),
                Some("desk360:1:4")
            );
            let log = log.lock().unwrap();
            assert_eq!(
                log[0].param("custom_fields[cf_900]"),
                Some("desk360:1:42;"),
                "sent plainly, without anchors"
            );
            assert_eq!(log[0].param("limit"), Some("100"));
        }
    })
    .await;
}

#[tokio::test]
async fn a_search_that_ignores_the_filter_proves_nothing() {
    bounded(async {
        // Every lookup answers a full page of other cases and a large total.
        let (base, _log) = serve(|seen, _| {
            let page: i64 = seen.param("page").unwrap_or("1").parse().unwrap_or(1);
            let mut body = serde_json::Map::new();
            for i in 0..100 {
                let id = page * 1000 + i;
                body.insert(
                    i.to_string(),
                    json!({"case": {"case_id": id, "custom_fields": {"cf_900": format!("desk360:2:{id};")}}}),
                );
            }
            body.insert("total_count".into(), json!(50_000));
            Reply::json(200, Value::Object(body))
        })
        .await;
        let client = client(base);
        let found = client
            .lookup_case_by_custom_field("cf_900", &["desk360:1:1;".to_string()])
            .await
            .unwrap();
        assert!(matches!(found, CaseLookup::Unknown(_)), "{found:?}");
    })
    .await;
}

#[tokio::test]
async fn bulk_update_names_every_case_and_reads_the_success_list() {
    bounded(async {
        let (base, log) = serve(|seen, _| {
            if seen.path.contains("cases/5,6,7.json") {
                Reply::json(200, json!({"case_success_id": [5, 7]}))
            } else {
                Reply::json(200, json!({"case": {"case_id": 9, "status": "closed"}}))
            }
        })
        .await;
        let client = client(base);
        let update = CaseUpdate {
            status: Some(CaseStatus::Closed),
            ..CaseUpdate::default()
        };
        assert_eq!(
            client.update_cases(&[5, 6, 7], &update).await.unwrap(),
            vec![5, 7]
        );
        assert_eq!(client.update_cases(&[9], &update).await.unwrap(), vec![9]);
        let eleven: Vec<i64> = (1..=11).collect();
        assert!(
            client.update_cases(&eleven, &update).await.is_err(),
            "never more than 10"
        );
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 2);
        assert_eq!(log[0].method, "PUT");
        assert_eq!(log[0].json(), json!({"case": {"status": "closed"}}));
    })
    .await;
}

#[tokio::test]
async fn all_messages_pages_until_total_count() {
    bounded(async {
        let (base, log) = serve(|seen, _| {
            let page: usize = seen.param("page").unwrap().parse().unwrap();
            let limit: usize = seen.param("limit").unwrap().parse().unwrap();
            let total = 250;
            let mut body = serde_json::Map::new();
            for (i, id) in ((page - 1) * limit..(page * limit).min(total)).enumerate() {
                body.insert(
                    i.to_string(),
                    json!({"message": {"message_id": id + 1, "content_html": format!("m{id}")}}),
                );
            }
            body.insert("total_count".into(), json!(total));
            Reply::json(200, Value::Object(body))
        })
        .await;
        let client = client(base);
        let messages = client.all_messages(77).await.unwrap();
        assert_eq!(messages.len(), 250);
        assert!(
            messages
                .iter()
                .enumerate()
                .all(|(i, m)| m.message_id == i as i64 + 1)
        );
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 3);
        assert!(log.iter().all(|s| s.path == "/api/cases/77/messages.json"));
    })
    .await;
}

#[tokio::test]
async fn the_api_key_never_shows() {
    bounded(async {
        // A server that echoes the key back in an error body.
        let (base, _) = serve(|_, _| {
            Reply::json(
                422,
                json!({"errors": {"api_key": format!("{KEY} is not allowed")}}),
            )
        })
        .await;
        let config = config(base.clone());
        assert!(!format!("{config:?}").contains(KEY));
        let client = DeskieClient::new(config, limiter()).unwrap();
        assert!(!format!("{client:?}").contains(KEY));
        let err = client
            .create_case(&NewCase::email("a@example.com", "s", "c", ts(), None))
            .await
            .unwrap_err();
        assert_redacted(&err);
        assert!(
            err.to_string().contains("[redacted] is not allowed"),
            "{err}"
        );

        // Configuration errors neither.
        let mut bad = config_for("http://deskie.example.com");
        bad.api_key = SecretString::from(KEY);
        let err = DeskieClient::new(bad, limiter()).unwrap_err();
        assert!(matches!(err, DeskieError::Config { .. }));
        assert!(err.to_string().contains("http://"), "{err}");
        assert_redacted(&err);
    })
    .await;
}

fn config_for(base: &str) -> DeskieConfig {
    config(Url::parse(base).unwrap())
}

#[test]
fn configuration_is_checked_before_any_request() {
    for bad in [
        "http://deskie.example.com",
        "http://192.168.1.10:8080",
        "https://user:pw@acme.deskie.io",
    ] {
        let err = DeskieClient::new(config_for(bad), limiter()).unwrap_err();
        assert_eq!(err.class(), ErrorClass::Fatal, "{bad}");
    }
    let mut c = config_for("https://acme.deskie.io");
    c.staff_email = " ".into();
    assert!(DeskieClient::new(c, limiter()).is_err());
    let mut c = config_for("https://acme.deskie.io");
    c.api_key = SecretString::from("");
    assert!(DeskieClient::new(c, limiter()).is_err());
    let mut c = config_for("https://acme.deskie.io");
    c.timeout = Duration::ZERO;
    assert!(DeskieClient::new(c, limiter()).is_err());
    for ok in [
        "https://acme.deskie.io",
        "http://127.0.0.1:9",
        "http://localhost:9",
        "http://[::1]:9",
    ] {
        DeskieClient::new(config_for(ok), limiter()).unwrap();
    }
}

#[tokio::test]
async fn a_day_long_retry_after_stops_the_write_naming_when_to_resume() {
    bounded(async {
        let (base, log) = serve(|_, _| {
            Reply::json(429, json!({"message": "Too Many Requests"}))
                .header("api_calls_left", "0")
                .header("retry_after", "86400")
        })
        .await;
        let client = client(base);
        let case = NewCase::email("a@example.com", "s", "c", ts(), None);
        let err = client.create_case(&case).await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::Fatal, "{err}");
        let resume_at = err.resume_at().expect("a resume time");
        assert!(matches!(err, DeskieError::WaitTooLong { .. }), "{err:?}");
        assert!(err.to_string().contains(&resume_at.to_string()), "{err}");
        let ahead = resume_at.duration_since(Timestamp::now());
        assert!(ahead > jiff::SignedDuration::from_hours(23), "{ahead:?}");
        assert_eq!(log.lock().unwrap().len(), 1, "the 429 only, never resent");
    })
    .await;
}

#[tokio::test]
async fn a_cancelled_limiter_sends_nothing_and_says_so() {
    bounded(async {
        let (base, log) = serve(|_, _| Reply::new(200, fixture("create_case"))).await;
        let cancel = throttle::CancellationToken::new();
        let limiter = Limiter::with_cancel(
            LimiterConfig {
                name: "deskie",
                limit: 10_000,
                window: Duration::from_secs(60),
                ..LimiterConfig::default()
            },
            cancel.clone(),
        );
        let client = DeskieClient::new(config(base), limiter).unwrap();
        cancel.cancel();
        let case = NewCase::email("a@example.com", "s", "c", ts(), None);
        let err = client.create_case(&case).await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::Cancelled, "{err}");
        assert!(
            matches!(&err, DeskieError::Cancelled { what } if what == "POST cases.json"),
            "{err:?}"
        );
        assert!(log.lock().unwrap().is_empty(), "nothing reached the server");
    })
    .await;
}
