//! The Desk360 client against small in-test axum servers on 127.0.0.1:0: the page's sample
//! bodies, Link paging, retries, error bodies, rate headers, login and redaction.

#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use desk360::{Auth, Desk360Client, Desk360Config, Desk360Error, ErrorClass, TicketPage};
use secrecy::SecretString;
use throttle::{Limiter, LimiterConfig, RetryPolicy};
use url::Url;

const TOKEN: &str = "tok-SUPER-secret-4711";
const PASSWORD: &str = "pw-SUPER-secret-0815";

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    /// Path and query, exactly as received.
    target: String,
    auth: Option<String>,
    body: String,
}

/// A scripted answer.
struct Resp {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

fn ok(body: impl Into<String>) -> Resp {
    Resp {
        status: 200,
        headers: vec![],
        body: body.into(),
        delay: Duration::ZERO,
    }
}

fn status(status: u16, body: impl Into<String>) -> Resp {
    Resp { status, ..ok(body) }
}

impl Resp {
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

type Script = dyn Fn(&Seen, &str, usize) -> Resp + Send + Sync;

struct Server {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Serves `script(request, base_url, n)` where `n` counts requests from 0.
async fn serve(script: impl Fn(&Seen, &str, usize) -> Resp + Send + Sync + 'static) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let script: Arc<Script> = Arc::new(script);
    let counter = Arc::new(AtomicUsize::new(0));
    let (b, s) = (base.clone(), seen.clone());
    let app = Router::new().fallback(move |req: Request| {
        let (b, s, script, counter) = (b.clone(), s.clone(), script.clone(), counter.clone());
        async move {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            let seen = Seen {
                method: parts.method.to_string(),
                target: parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default(),
                auth: parts
                    .headers
                    .get("authorization")
                    .map(|v| v.to_str().unwrap().to_owned()),
                body: String::from_utf8_lossy(&body).into_owned(),
            };
            s.lock().unwrap().push(seen.clone());
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let resp = script(&seen, &b, n);
            if !resp.delay.is_zero() {
                tokio::time::sleep(resp.delay).await;
            }
            let mut builder = Response::builder()
                .status(resp.status)
                .header("content-type", "application/json");
            for (k, v) in resp.headers {
                builder = builder.header(k, v);
            }
            builder.body(Body::from(resp.body)).unwrap()
        }
    });
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server { base, seen }
}

fn limiter() -> Limiter {
    Limiter::new(LimiterConfig {
        name: "desk360-test",
        limit: 60_000,
        window: Duration::from_secs(60),
        ..LimiterConfig::default()
    })
}

fn config(base: &str, auth: Auth) -> Desk360Config {
    let mut c = Desk360Config::new(Url::parse(base).unwrap(), auth);
    c.timeout = Duration::from_secs(2);
    c.retry = RetryPolicy {
        max_transient_retries: 3,
        max_rate_limited_retries: 3,
        min_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    };
    c
}

async fn client(server: &Server) -> Desk360Client {
    Desk360Client::connect(
        config(&server.base, Auth::Token(SecretString::from(TOKEN))),
        limiter(),
    )
    .await
    .unwrap()
}

/// Serves `script` and connects a token client to it: how most tests here begin.
async fn connected(
    script: impl Fn(&Seen, &str, usize) -> Resp + Send + Sync + 'static,
) -> (Server, Desk360Client) {
    let server = serve(script).await;
    let c = client(&server).await;
    (server, c)
}

/// The first page of a product's ticket list, which the test expects to be readable.
async fn first_page(c: &Desk360Client, product: i64) -> TicketPage {
    c.ticket_page(&c.first_page_url(product)).await.unwrap()
}

/// The ids of a page's readable tickets, in the server's order.
fn ticket_ids(page: &TicketPage) -> Vec<i64> {
    page.tickets.iter().map(|t| t.id).collect()
}

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("test timed out")
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn path(target: &str) -> &str {
    target.split('?').next().unwrap()
}

#[tokio::test]
async fn reads_the_page_samples() {
    bounded(async {
        let (server, c) = connected(|req, base, _| match path(&req.target) {
            "/v1/products" => ok(fixture("products.json")),
            "/v1/agents" => ok(fixture("agents.json")),
            "/v1/me" => ok(fixture("me.json")),
            "/v1/types" => ok(fixture("types.json")),
            "/v1/reasons" => ok(fixture("reasons.json")),
            "/v1/products/11/tickets" if req.target.contains("page=2") => {
                ok(format!("[{}]", fixture("create_ticket_response.json")))
            }
            "/v1/products/11/tickets" => ok(fixture("ticket_list.json")).header(
                "Link",
                format!("<{base}/v1/products/11/tickets?order=asc&page=2>; rel=next"),
            ),
            "/v1/products/11/tickets/1" => ok(fixture("ticket_detail.json")),
            _ => status(404, fixture("error.json")),
        })
        .await;
        assert_eq!(server.count(), 0, "connecting with a token sends nothing");

        let products = c.products().await.unwrap();
        assert_eq!(products.len(), 3);
        assert_eq!(products[0].name.as_deref(), Some("YourApplication1"));
        assert_eq!(products[0].logo, None);
        assert!(products[2].logo.as_deref().unwrap().ends_with(".jpg"));

        let agents = c.agents().await.unwrap();
        assert_eq!(
            agents.iter().map(|a| a.id).collect::<Vec<_>>(),
            vec![11, 22, 33]
        );
        assert_eq!(agents[1].email.as_deref(), Some("richard@mail.com"));
        assert_eq!(c.me().await.unwrap().id, 11);

        let types = c.types().await.unwrap();
        assert_eq!(types[2].title.as_deref(), Some("Report a problem"));
        assert_eq!(types[0].product_id, Some(0));
        assert_eq!(types[0].is_custom, Some(false));

        let reasons = c.reasons().await.unwrap();
        assert_eq!(reasons[0].title.as_deref(), Some("Test1"));
        assert_eq!(reasons[0].is_active, Some(false));

        let first = c.first_page_url(11);
        assert_eq!(first, format!("{}/v1/products/11/tickets", server.base));
        let page = c.ticket_page(&first).await.unwrap();
        assert_eq!(page.tickets.len(), 2);
        assert!(page.invalid.is_empty());
        let t = &page.tickets[1];
        assert_eq!(
            (t.id, t.reason_id, t.type_id, t.agent_id),
            (2, Some(2), Some(3), Some(4))
        );
        assert_eq!(t.subject, None);
        assert_eq!(t.platform.as_deref(), Some("iOS"));
        assert_eq!(t.updated_at.as_deref(), Some("2021-01-17 15:58:41"));
        let next = page.next.clone().unwrap();
        assert_eq!(
            next,
            format!("{}/v1/products/11/tickets?order=asc&page=2", server.base)
        );

        let last = c.ticket_page(&next).await.unwrap();
        assert_eq!(last.next, None);
        let t = &last.tickets[0];
        assert_eq!((t.id, t.type_id, t.agent_id), (123, None, None));
        assert_eq!(t.channel.as_deref(), Some("Api"));

        let d = c.ticket(11, 1).await.unwrap();
        assert_eq!(d.raw, fixture("ticket_detail.json"));
        assert_eq!(
            (
                d.summary.id,
                d.summary.agent_id,
                d.summary.status,
                d.summary.priority
            ),
            (1, Some(72), Some(1), Some(1))
        );
        assert_eq!(d.country_code.as_deref(), Some("TR"));
        assert_eq!(d.settings, None);
        assert_eq!(d.star_rating, None);
        assert_eq!(d.custom_fields, Some(serde_json::json!([])));
        assert_eq!(d.messages.len(), 2);
        assert_eq!(d.messages[1].message.as_deref(), Some("Hello World2"));
        assert_eq!(
            d.messages[1].created_at.as_deref(),
            Some("2020-04-02 11:19:46")
        );
        assert!(!d.messages[0].is_from_customer() && !d.messages[0].is_note());
        assert!(d.messages[0].attachments.is_empty());

        // Every request carried the bearer token; the page list asked for ascending order.
        let seen = server.seen();
        assert!(
            seen.iter()
                .all(|s| s.auth.as_deref() == Some(&*format!("Bearer {TOKEN}")))
        );
        assert!(seen.iter().all(|s| s.method == "GET"));
        assert!(seen.iter().any(|s| s.target == "/v1/products/11/tickets"));
        assert!(
            seen.iter()
                .any(|s| s.target == "/v1/products/11/tickets?order=asc&page=2")
        );
        // Every GET cost one unit of the limiter.
        assert_eq!(c.limiter().stats().units, seen.len() as u64);
    })
    .await;
}

#[test]
fn other_samples_parse() {
    let note: desk360::MessageDto = serde_json::from_str(&fixture("note_response.json")).unwrap();
    assert!(note.is_note());
    assert_eq!(note.agent_id, Some(74));
    let reason: desk360::ReasonInfo =
        serde_json::from_str(&fixture("reason_created.json")).unwrap();
    assert_eq!(reason.title.as_deref(), Some("Test"));
    // Attachments given as a plain array (the WhatsApp auto-reply form), with a null body.
    let msg = format!(
        r#"{{"id": 5, "agent_id": 0, "message": null, "type": 0, "attachments": {}}}"#,
        fixture("webhook_attachments.json")
    );
    let msg: desk360::MessageDto = serde_json::from_str(&msg).unwrap();
    assert!(msg.is_from_customer());
    assert_eq!(msg.message, None);
    assert_eq!(msg.attachments.files.len(), 1);
    assert_eq!(msg.attachments.files[0].aws, Some(true));
    assert_eq!(
        msg.attachments.files[0].content_type.as_deref(),
        Some("application/pdf")
    );
}

#[tokio::test]
async fn surprising_fields_do_not_fail_a_page() {
    bounded(async {
        let (_server, c) = connected(|_, _, _| {
            ok(r#"[
                {"id": "7", "status": "2", "priority": 1.0, "agent_id": null, "subject": 42,
                 "extra": {"nested": true}, "created_at": null},
                {"name": "no id here"},
                "not an object",
                {"id": 8}
            ]"#)
        })
        .await;
        let page = first_page(&c, 1).await;
        assert_eq!(ticket_ids(&page), vec![7, 8]);
        assert_eq!(page.tickets[0].status, Some(2));
        assert_eq!(page.tickets[0].priority, Some(1));
        assert_eq!(page.tickets[0].subject.as_deref(), Some("42"));
        assert_eq!(page.invalid.len(), 2);
        assert!(page.invalid[0].detail.contains("no id"));
        assert!(page.invalid[1].detail.contains("a string"));
    })
    .await;
}

#[tokio::test]
async fn follows_the_next_link_exactly_as_given() {
    bounded(async {
        let (server, c) = connected(|req, base, _| {
            if req.target.contains("cursor") {
                ok("[]")
            } else {
                // Several links, quoting and odd spacing; the next one has a cursor we could
                // never compute.
                ok("[]").header(
                    "link",
                    format!(
                        r#"<{base}/v1/products/3/tickets?page=1>; rel="prev", <{base}/v1/products/3/tickets?order=asc&page=2&cursor=a%2Cb> ;REL = "next" ; title="x, y", <{base}/v1/products/3/tickets?page=9>; rel=last"#
                    ),
                )
            }
        }).await;
        let page = first_page(&c, 3).await;
        let next = page.next.unwrap();
        assert_eq!(
            next,
            format!("{}/v1/products/3/tickets?order=asc&page=2&cursor=a%2Cb", server.base)
        );
        let last = c.ticket_page(&next).await.unwrap();
        assert_eq!(last.next, None);
        assert_eq!(
            server.seen()[1].target,
            "/v1/products/3/tickets?order=asc&page=2&cursor=a%2Cb"
        );
    })
    .await;
}

#[tokio::test]
async fn relative_next_link_is_resolved_on_the_same_host() {
    bounded(async {
        let (server, c) = connected(|_, _, _| {
            ok("[]").header("Link", "</v1/products/3/tickets?page=2>; rel=next")
        })
        .await;
        let page = first_page(&c, 3).await;
        assert_eq!(
            page.next.unwrap(),
            format!("{}/v1/products/3/tickets?page=2", server.base)
        );
    })
    .await;
}

#[tokio::test]
async fn loopback_aliases_count_as_the_same_host() {
    bounded(async {
        let (server, c) = connected(|req, base, _| {
            if req.target.contains("page=2") {
                ok("[]")
            } else {
                let port = base.rsplit(':').next().unwrap().to_owned();
                ok("[]").header(
                    "Link",
                    format!("<http://localhost:{port}/v1/products/1/tickets?page=2>; rel=next"),
                )
            }
        })
        .await;
        let page = first_page(&c, 1).await;
        let next = page.next.unwrap();
        assert!(next.starts_with("http://localhost:"), "{next}");
        c.ticket_page(&next).await.unwrap();
        assert_eq!(server.count(), 2);
    })
    .await;
}

#[tokio::test]
async fn refuses_a_next_link_to_another_host() {
    bounded(async {
        let (server, c) = connected(|_, _, _| {
            ok("[]").header(
                "Link",
                "<https://evil.example/v1/products/1/tickets?page=2>; rel=next",
            )
        })
        .await;
        let err = c.ticket_page(&c.first_page_url(1)).await.unwrap_err();
        assert!(matches!(err, Desk360Error::UnexpectedUrl { .. }), "{err:?}");
        assert_eq!(err.class(), ErrorClass::Fatal);
        assert!(err.to_string().contains("evil.example"));

        // Nor is such a URL fetched when handed in directly; same host, other port neither.
        let before = server.count();
        let err = c
            .ticket_page("https://evil.example/v1/products/1/tickets?page=2")
            .await
            .unwrap_err();
        assert!(matches!(err, Desk360Error::UnexpectedUrl { .. }), "{err:?}");
        let err = c
            .ticket_page("http://127.0.0.1:1/v1/products/1/tickets")
            .await
            .unwrap_err();
        assert!(matches!(err, Desk360Error::UnexpectedUrl { .. }), "{err:?}");
        assert_eq!(server.count(), before);
    })
    .await;
}

#[tokio::test]
async fn get_is_retried_on_503_then_succeeds() {
    bounded(async {
        let (server, c) = connected(|_, _, n| {
            if n == 0 {
                status(
                    503,
                    r#"{"error":{"code":"internal_server_error","message":"down"}}"#,
                )
            } else {
                ok(fixture("products.json"))
            }
        })
        .await;
        assert_eq!(c.products().await.unwrap().len(), 3);
        assert_eq!(server.count(), 2);
        assert_eq!(c.limiter().stats().transient_retries, 1);
    })
    .await;
}

#[tokio::test]
async fn persistent_5xx_ends_as_transient_after_the_retries() {
    bounded(async {
        let (server, c) = connected(|_, _, _| {
            status(
                500,
                r#"{"error":{"code":"internal_server_error","message":"down"}}"#,
            )
        })
        .await;
        let err = c.ticket(1, 2).await.unwrap_err();
        assert!(
            matches!(
                err,
                Desk360Error::Transient {
                    status: Some(500),
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.class(), ErrorClass::Transient);
        assert!(
            err.to_string().contains("internal_server_error: down"),
            "{err}"
        );
        assert_eq!(server.count(), 4, "1 attempt + 3 retries");
    })
    .await;
}

#[tokio::test]
async fn a_slow_answer_times_out_and_is_retried() {
    bounded(async {
        let server = serve(|_, _, n| {
            let mut r = ok(fixture("agents.json"));
            if n == 0 {
                r.delay = Duration::from_millis(800);
            }
            r
        })
        .await;
        let mut cfg = config(&server.base, Auth::Token(SecretString::from(TOKEN)));
        cfg.timeout = Duration::from_millis(250);
        let c = Desk360Client::connect(cfg, limiter()).await.unwrap();
        assert_eq!(c.agents().await.unwrap().len(), 3);
        assert_eq!(server.count(), 2);
    })
    .await;
}

#[tokio::test]
async fn a_429_waits_for_retry_after_then_succeeds() {
    bounded(async {
        let server = serve(|_, _, n| {
            if n == 0 {
                status(
                    429,
                    r#"{"error":{"code":"too_many_requests_exception","message":"Check Rate Limit."}}"#,
                )
                .header("Retry-After", "0.2")
            } else {
                ok(fixture("types.json"))
            }
        })
        .await;
        let c = client(&server).await;
        let start = std::time::Instant::now();
        assert_eq!(c.types().await.unwrap().len(), 3);
        assert!(start.elapsed() >= Duration::from_millis(200));
        assert_eq!(server.count(), 2);
        assert_eq!(c.limiter().stats().throttled, 1);
    })
    .await;
}

#[tokio::test]
async fn rate_limited_beyond_the_retries_is_typed() {
    bounded(async {
        let (server, c) = connected(|_, _, _| status(429, "").header("Retry-After", "0.01")).await;
        let err = c.reasons().await.unwrap_err();
        assert!(matches!(err, Desk360Error::RateLimited { .. }), "{err:?}");
        assert_eq!(err.class(), ErrorClass::RateLimited);
        assert_eq!(server.count(), 4, "1 attempt + 3 rate-limited retries");
    })
    .await;
}

#[tokio::test]
async fn rate_headers_correct_the_limiter() {
    bounded(async {
        let (_server, c) = connected(|_, _, _| {
            let reset = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs_f64()
                + 30.0;
            ok(fixture("me.json"))
                .header("X-RateLimit-Limit", "7")
                .header("X-RateLimit-Remaining", "5")
                .header("X-RateLimit-Reset", format!("{reset:.3}"))
        })
        .await;
        c.me().await.unwrap();
        let stats = c.limiter().stats();
        assert_eq!(stats.limit, 7);
        assert_eq!(stats.remaining, 5);
    })
    .await;
}

#[tokio::test]
async fn error_bodies_become_typed_errors() {
    bounded(async {
        let (server, c) = connected(|req, _, _| match path(&req.target) {
            "/v1/products/1/tickets/404" => status(
                404,
                r#"{"error":{"code":"model_not_found_exception","message":"No query results.","doc_url":"https://docs.desk360.com/api"}}"#,
            ),
            "/v1/products/1/tickets/400" => status(400, fixture("error.json")),
            "/v1/products/1/tickets/401" => status(
                401,
                r#"{"error":{"code":"authentication_exception","message":"Unauthenticated."}}"#,
            ),
            "/v1/products/1/tickets/405" => status(405, "Method Not Allowed"),
            _ => status(302, "").header("Location", "https://evil.example/"),
        }).await;

        let err = c.ticket(1, 404).await.unwrap_err();
        match &err {
            Desk360Error::NotFound { what, code, message } => {
                assert_eq!(what, "ticket 1/404");
                assert_eq!(code.as_deref(), Some("model_not_found_exception"));
                assert_eq!(message, "No query results.");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(err.class(), ErrorClass::Permanent);

        let err = c.ticket(1, 400).await.unwrap_err();
        assert_eq!(err.status(), Some(400));
        assert_eq!(err.api_code(), Some("failed_validation"));
        assert!(err.to_string().contains("The status field is required."), "{err}");
        assert_eq!(err.class(), ErrorClass::Permanent);

        let err = c.ticket(1, 401).await.unwrap_err();
        assert!(matches!(err, Desk360Error::Unauthorized { .. }), "{err:?}");
        assert_eq!(err.api_code(), Some("authentication_exception"));
        assert_eq!(err.class(), ErrorClass::Fatal);

        let err = c.ticket(1, 405).await.unwrap_err();
        assert!(err.to_string().contains("Method Not Allowed"), "{err}");

        // A redirect is not followed (it could carry the token elsewhere).
        let err = c.ticket(1, 302).await.unwrap_err();
        assert_eq!(err.status(), Some(302));

        // None of these is retried.
        assert_eq!(server.count(), 5);
    })
    .await;
}

#[tokio::test]
async fn a_malformed_ticket_is_that_tickets_failure_and_not_retried() {
    bounded(async {
        let (server, c) = connected(|req, _, _| match path(&req.target) {
            "/v1/products/1/tickets/42" => {
                ok(r#"{"id": 42, "messages": [{"id": 1}, {"agent_id": 3"#)
            }
            "/v1/products/1/tickets/43" => ok(r#"{"id": 99, "messages": []}"#),
            _ => ok(r#"{"id": 44, "messages": [{"agent_id": 3}]}"#),
        })
        .await;
        let err = c.ticket(1, 42).await.unwrap_err();
        match &err {
            Desk360Error::Malformed {
                what,
                detail,
                excerpt,
            } => {
                assert_eq!(what, "ticket 1/42");
                assert!(detail.contains("not valid JSON"), "{detail}");
                assert!(excerpt.starts_with(r#"{"id": 42"#), "{excerpt}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(err.class(), ErrorClass::Permanent);
        let err = c.ticket(1, 43).await.unwrap_err();
        assert!(err.to_string().contains("ticket 99 instead"), "{err}");
        let err = c.ticket(1, 44).await.unwrap_err();
        assert!(
            err.to_string().contains("messages[0]: message has no id"),
            "{err}"
        );
        assert_eq!(server.count(), 3);
    })
    .await;
}

#[tokio::test]
async fn me_falls_back_to_agents_me() {
    bounded(async {
        let (server, c) = connected(|req, _, _| match path(&req.target) {
            "/v1/agents/me" => ok(fixture("me.json")),
            _ => status(
                404,
                r#"{"error":{"code":"not_found_exception","message":"typo?"}}"#,
            ),
        })
        .await;
        assert_eq!(
            c.me().await.unwrap().email.as_deref(),
            Some("john@mail.com")
        );
        assert_eq!(server.count(), 2);
    })
    .await;
}

#[tokio::test]
async fn login_posts_json_and_uses_the_token() {
    bounded(async {
        let server = serve(|req, _, _| match (req.method.as_str(), path(&req.target)) {
            ("POST", "/v1/login") => ok(fixture("login.json")),
            ("GET", "/v1/me") => ok(fixture("me.json")),
            _ => status(404, ""),
        })
        .await;
        let c = Desk360Client::connect(
            config(
                &server.base,
                Auth::Login {
                    email: "abc@example.com".into(),
                    password: SecretString::from(PASSWORD),
                },
            ),
            limiter(),
        )
        .await
        .unwrap();
        assert_eq!(server.count(), 1, "connect sends only the login");
        c.me().await.unwrap();
        let seen = server.seen();
        assert_eq!(seen[0].method, "POST");
        assert_eq!(seen[0].auth, None);
        let body: serde_json::Value = serde_json::from_str(&seen[0].body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"email": "abc@example.com", "password": PASSWORD})
        );
        assert_eq!(
            seen[1].auth.as_deref(),
            Some("Bearer WEFjiPUQo6FSV55RXx0T5uc5GKdmHxohsawEajAKyV1ZdUloZAExAhAAtPH1hMNbYUMsT2r7UpdN4gym")
        );
        let debug = format!("{c:?}");
        assert!(!debug.contains("WEFjiPUQ") && !debug.contains(PASSWORD), "{debug}");
    })
    .await;
}

#[tokio::test]
async fn failed_login_is_unauthorized_with_the_api_code() {
    bounded(async {
        let server = serve(|req, _, _| match req.body.contains("right") {
            true => ok(format!(r#"{{"token_type":"Bearer","access":"{TOKEN}"}}"#)),
            false => status(
                401,
                r#"{"error":{"code":"invalid_credentials","message":"You typed your email/password wrong."}}"#,
            ),
        })
        .await;
        let login = |pw: &str| {
            config(
                &server.base,
                Auth::Login {
                    email: "abc@example.com".into(),
                    password: SecretString::from(pw.to_owned()),
                },
            )
        };
        let err = Desk360Client::connect(login(PASSWORD), limiter()).await.unwrap_err();
        assert_eq!(err.api_code(), Some("invalid_credentials"));
        assert_eq!(err.class(), ErrorClass::Fatal);
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(!text.contains(PASSWORD), "{text}");
        }
        // A success without a recognisable token: the body (which holds a token) is not quoted.
        let err = Desk360Client::connect(login("right-password"), limiter())
            .await
            .unwrap_err();
        assert!(matches!(err, Desk360Error::Malformed { .. }), "{err:?}");
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(!text.contains(TOKEN) && !text.contains("right-password"), "{text}");
        }
    })
    .await;
}

#[tokio::test]
async fn secrets_never_appear_in_errors_or_debug() {
    bounded(async {
        let server = serve(|_, _, _| status(500, "<html>oops</html>")).await;
        let cfg = config(&server.base, Auth::Token(SecretString::from(TOKEN)));
        assert!(!format!("{cfg:?}").contains(TOKEN));
        let c = Desk360Client::connect(cfg, limiter()).await.unwrap();
        assert!(!format!("{c:?}").contains(TOKEN));
        let mut errors = vec![
            c.products().await.unwrap_err(),
            c.ticket(1, 1).await.unwrap_err(),
            c.ticket_page("https://elsewhere.example/x")
                .await
                .unwrap_err(),
        ];
        // A connection error too (nothing listens on port 1).
        let dead = Desk360Client::connect(
            config("http://127.0.0.1:1", Auth::Token(SecretString::from(TOKEN))),
            limiter(),
        )
        .await
        .unwrap();
        errors.push(dead.agents().await.unwrap_err());
        for err in errors {
            for text in [err.to_string(), format!("{err:?}")] {
                assert!(!text.contains(TOKEN), "{text}");
            }
        }
    })
    .await;
}

#[tokio::test]
async fn plain_http_to_a_remote_host_is_refused_before_any_request() {
    let err = Desk360Client::connect(
        config(
            "http://api.desk360.com",
            Auth::Login {
                email: "a@b.c".into(),
                password: SecretString::from(PASSWORD),
            },
        ),
        limiter(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Desk360Error::Config { .. }), "{err:?}");
    assert!(err.to_string().contains("loopback"), "{err}");
    assert_eq!(err.class(), ErrorClass::Fatal);
    let err = Desk360Client::connect(
        config(
            "https://api.desk360.com",
            Auth::Token(SecretString::from("  ")),
        ),
        limiter(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Desk360Error::Config { .. }), "{err:?}");
}

#[tokio::test]
async fn a_day_long_retry_after_stops_the_run_naming_when_to_resume() {
    bounded(async {
        let server = serve(|_, _, _| {
            status(429, "")
                .header("Retry-After", "86400")
                .header("X-RateLimit-Remaining", "0")
        })
        .await;
        let c = client(&server).await;
        let err = c.ticket(1, 42).await.unwrap_err();
        assert!(matches!(err, Desk360Error::WaitTooLong { .. }), "{err:?}");
        assert_eq!(err.class(), ErrorClass::Fatal);
        let resume_at = err.resume_at().expect("a resume time");
        assert!(err.to_string().contains(&resume_at.to_string()), "{err}");
        assert!(err.to_string().starts_with("ticket 1/42: "), "{err}");
        let ahead = resume_at.duration_since(jiff::Timestamp::now());
        assert!(ahead > jiff::SignedDuration::from_hours(23), "{ahead:?}");
        assert_eq!(server.count(), 1, "not resent");
    })
    .await;
}

#[tokio::test]
async fn a_cancelled_limiter_sends_nothing_and_says_so() {
    bounded(async {
        let server = serve(|_, _, _| ok("[]")).await;
        let cancel = throttle::CancellationToken::new();
        let limiter = Limiter::with_cancel(
            LimiterConfig {
                name: "desk360-test",
                limit: 60_000,
                window: Duration::from_secs(60),
                ..LimiterConfig::default()
            },
            cancel.clone(),
        );
        let c = Desk360Client::connect(
            config(&server.base, Auth::Token(SecretString::from(TOKEN))),
            limiter,
        )
        .await
        .unwrap();
        cancel.cancel();
        let err = c.ticket(1, 42).await.unwrap_err();
        assert!(matches!(err, Desk360Error::Cancelled { .. }), "{err:?}");
        assert_eq!(err.class(), ErrorClass::Cancelled);
        assert_eq!(server.count(), 0, "nothing reached the server");
    })
    .await;
}

#[tokio::test]
async fn list_entries_with_an_unusable_id_are_kept_as_unreadable() {
    bounded(async {
        let server = serve(|_, _, _| {
            ok(r#"[
                {"id": 7},
                {"id": "abc", "subject": "lost?"},
                {"id": 1.5},
                {"id": null},
                {"id": 8}
            ]"#)
        })
        .await;
        let c = client(&server).await;
        let page = first_page(&c, 1).await;
        assert_eq!(ticket_ids(&page), vec![7, 8]);
        assert_eq!(page.invalid.len(), 3, "{:?}", page.invalid);
        assert!(
            page.invalid[0].detail.contains("unusable id"),
            "{:?}",
            page.invalid
        );
        assert!(
            page.invalid[0].excerpt.contains("lost?"),
            "{:?}",
            page.invalid
        );
        assert!(page.invalid[1].detail.contains("1.5"), "{:?}", page.invalid);
    })
    .await;
}
