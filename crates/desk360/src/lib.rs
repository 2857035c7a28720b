//! The Desk360 (source) API client: login, products, ticket list pages followed by their
//! `Link: rel=next` header, ticket details with messages, agents, types and reasons.
//!
//! Every request goes through [`throttle::call`] with the caller's [`Limiter`] (one per Desk360
//! limit scope, shared by every task), costs 1 unit (Desk360 counts invalid requests too), and
//! feeds the response's `X-RateLimit-*` / `Retry-After` headers back to the limiter. Reads are
//! retried on 5xx, timeouts and connection errors; a write (none is used by the importer except
//! the login, see [`Desk360Client::connect`]) is retried only when it never left this machine.
//!
//! Responses are parsed leniently ([`models`]) and converted to the domain model by
//! [`TicketDetail::to_model`] ([`normalize`]); failures come back as [`Desk360Error`], whose
//! [`Desk360Error::class`] tells the engine what to do. A request still waiting for budget when
//! the limiter is cancelled is [`Desk360Error::Cancelled`] (never sent); one whose budget
//! returns later than the limiter's maximum wait is [`Desk360Error::WaitTooLong`] (fatal). Credentials never appear in a log line,
//! an error or a `Debug` output.

pub mod config;
pub mod error;
pub mod files;
mod headers;
pub mod models;
pub mod normalize;

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use reqwest::Method;
use reqwest::header::{ACCEPT, HeaderMap};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use throttle::{Limiter, Observed, Outcome, RetryPolicy};
use tracing::{debug, warn};
use transport::{Answer, Safety};
use url::Url;

pub use config::{Auth, Desk360Config};
pub use error::{Desk360Error, ErrorClass};
pub use files::{ByteStream, DOWNLOAD_TIMEOUT, Download};
pub use models::{
    AgentInfo, AttachmentDto, Attachments, InvalidEntry, MessageDto, ProductInfo, ReasonInfo,
    TicketDetail, TicketPage, TicketSummary, TypeInfo,
};
pub use normalize::{ModelTicket, parse_timestamp};

/// Shorthand for this crate's results.
pub type Result<T, E = Desk360Error> = std::result::Result<T, E>;

/// Longest chain of list pages followed for reference lists (agents, types, reasons, products);
/// a server whose `next` links never end must not keep a run busy forever.
const MAX_REFERENCE_PAGES: usize = 1_000;

/// One response, read completely.
#[derive(Debug)]
struct Reply {
    headers: HeaderMap,
    body: String,
}

/// The HTTP side shared by the login and the client: connection pool, limiter, retry bounds.
#[derive(Clone)]
struct Transport {
    http: reqwest::Client,
    limiter: Limiter,
    retry: RetryPolicy,
}

/// A connected Desk360 client. Cheap to clone; clones share the connection pool and limiter.
#[derive(Clone)]
pub struct Desk360Client {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    base: Url,
    base_str: String,
    token: TokenSlot,
}

/// The token in force and how to get a new one.
///
/// A run on a large account lives for days, longer than a Desk360 token obtained by login may
/// (page 004, "Authentication": a token is issued by `/v1/login`; an expired one answers 401
/// like an invalid one). With email + password configured, a request answered 401 logs in again
/// — once per expiry, however many tasks saw the 401 — and is retried with the new token. A
/// panel-made token cannot be renewed by this tool: its 401 stays fatal, with a message naming
/// the fix.
struct TokenSlot {
    /// The token and its generation (bumped by every renewal).
    current: std::sync::RwLock<(u64, SecretString)>,
    /// Email and password, when the token came from a login.
    login: Option<(String, SecretString)>,
    /// Held while logging in again, so concurrent 401s cause one login.
    renewing: tokio::sync::Mutex<()>,
    /// Logins done to renew an expired token (not counting the first).
    renewals: std::sync::atomic::AtomicU64,
    /// One more than the newest generation Desk360 accepted at least once (0: none yet). A 401
    /// to a token that has worked is an expiry, renewed again; a 401 to a token fresh from a
    /// login that never worked is fatal.
    accepted: std::sync::atomic::AtomicU64,
}

/// How many times one request logs in again before giving up: each renewal needs a token that
/// worked in between, so this only bounds a token expiring again and again within one request.
pub(crate) const MAX_RENEWALS_PER_REQUEST: usize = 3;

impl TokenSlot {
    fn get(&self) -> (u64, SecretString) {
        let guard = self.current.read().unwrap_or_else(|p| p.into_inner());
        (guard.0, guard.1.clone())
    }

    /// Records that Desk360 accepted the token of this generation.
    fn accept(&self, generation: u64) {
        self.accepted
            .fetch_max(generation + 1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the token of this generation was accepted at least once.
    fn was_accepted(&self, generation: u64) -> bool {
        self.accepted.load(std::sync::atomic::Ordering::Relaxed) > generation
    }
}

impl fmt::Debug for Desk360Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Desk360Client")
            .field("base_url", &self.inner.base_str)
            .field("limiter", &self.inner.transport.limiter.name())
            .field("token", &"[redacted]")
            .finish()
    }
}

impl Transport {
    fn new(config: &Desk360Config, limiter: Limiter) -> Result<Self> {
        let http = transport::http_client(config.timeout).map_err(|e| Desk360Error::Config {
            reason: e.to_string(),
        })?;
        Ok(Self {
            http,
            limiter,
            retry: config.retry,
        })
    }

    /// Sends one logical request (retrying within the policy) and returns the 2xx reply.
    async fn send(
        &self,
        method: Method,
        url: &Url,
        token: Option<&SecretString>,
        body: Option<&Value>,
        safety: Safety,
        what: &str,
    ) -> Result<Reply> {
        let method = &method;
        transport::call(&self.limiter, &self.retry, 1, what, move || {
            self.attempt(method, url, token, body, safety, what)
        })
        .await
    }

    /// One attempt, classified for [`throttle::call`] by the shared rules
    /// ([`transport::Answer`], [`Safety::after_sending`]).
    async fn attempt(
        &self,
        method: &Method,
        url: &Url,
        token: Option<&SecretString>,
        body: Option<&Value>,
        safety: Safety,
        what: &str,
    ) -> (Option<Observed>, Outcome<Reply, Desk360Error>) {
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .header(ACCEPT, "application/json");
        if let Some(token) = token {
            request = request.bearer_auth(token.expose_secret());
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                let outcome = transport::unanswered(&e, transport::describe(&e), safety, what);
                return (None, outcome);
            }
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let info = headers::rate_info(&headers);
        let observed = Some(Observed { status, info });
        let answer = Answer::of(status);
        let body = match response.text().await {
            Ok(body) => body,
            Err(e) if matches!(answer, Answer::Success | Answer::NoAnswer) => {
                let detail = format!("the body was lost: {}", transport::describe(&e));
                return (observed, safety.after_sending(what, Some(status), detail));
            }
            // A refusal whose body got lost is still a refusal.
            Err(_) => String::new(),
        };
        debug!(%method, path = url.path(), status, what, "desk360 response");
        let outcome = match answer {
            Answer::Success => Outcome::Done(Reply { headers, body }),
            Answer::RateLimited => Outcome::RateLimited(Desk360Error::RateLimited {
                what: what.to_owned(),
                retry_after: info.retry_after.or(info.reset_after),
            }),
            Answer::NoAnswer => {
                warn!(%method, path = url.path(), status, what, "desk360 server error; retrying if allowed");
                let (api_code, message) = error::parse_error_body(&body, status);
                let detail = match api_code {
                    Some(c) => format!("{c}: {message}"),
                    None => message,
                };
                safety.after_sending(what, Some(status), detail)
            }
            refusal => Outcome::Fatal(refused(refusal, status, &body, what)),
        };
        (observed, outcome)
    }
}

/// The typed error for an answer that refuses the request (a 401, 403, 404, a redirect, any
/// other 4xx), with Desk360's own code and message.
fn refused(answer: Answer, status: u16, body: &str, what: &str) -> Desk360Error {
    let what = what.to_owned();
    let (code, message) = error::parse_error_body(body, status);
    match answer {
        Answer::Unauthorized => Desk360Error::Unauthorized { code, message },
        Answer::NotFound => Desk360Error::NotFound {
            what,
            code,
            message,
        },
        // 403 (a refusal, not the credentials: page 004 uses it for disabled password access,
        // handled by the login), a redirect (never followed), 400, 405, 422…
        _ => Desk360Error::Rejected {
            what,
            status,
            code,
            message,
        },
    }
}

impl Desk360Client {
    /// Checks the configuration and, for [`Auth::Login`], trades the email and password for a
    /// token (one request). With a token it sends nothing: use [`Desk360Client::me`] to check it.
    ///
    /// The login page shows both `GET /v1/login` with a body and a `POST` curl sample; this
    /// sends `POST` with a JSON body, because a GET body is often dropped by proxies and a query
    /// string would put the password into access logs. The login is retried like a read: the page
    /// says it returns the existing token (creating one only the first time), so repeating it has
    /// no further effect, and only *wrong* attempts count towards the 5-a-minute lockout.
    pub async fn connect(config: Desk360Config, limiter: Limiter) -> Result<Self> {
        let base_str = config::normalize_base_url(&config.base_url)?;
        let base = Url::parse(&base_str).map_err(|e| Desk360Error::Config {
            reason: format!("source base_url: {e}"),
        })?;
        let transport = Transport::new(&config, limiter)?;
        let (token, renew_with) = match &config.auth {
            Auth::Token(token) => {
                if token.expose_secret().trim().is_empty() {
                    return Err(Desk360Error::Config {
                        reason: "the Desk360 token is empty (set source.token or DESK360_TOKEN)"
                            .to_owned(),
                    });
                }
                (
                    SecretString::from(token.expose_secret().trim().to_owned()),
                    None,
                )
            }
            Auth::Login { email, password } => (
                login(&transport, &base_str, email, password).await?,
                Some((email.clone(), password.clone())),
            ),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                transport,
                base,
                base_str,
                token: TokenSlot {
                    current: std::sync::RwLock::new((0, token)),
                    login: renew_with,
                    renewing: tokio::sync::Mutex::new(()),
                    renewals: std::sync::atomic::AtomicU64::new(0),
                    accepted: std::sync::atomic::AtomicU64::new(0),
                },
            }),
        })
    }

    /// How many times an expired token was renewed by logging in again since `connect`.
    pub fn token_renewals(&self) -> u64 {
        self.inner
            .token
            .renewals
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Replaces the token of generation `seen`, which Desk360 just refused, by logging in again.
    /// Returns at once when another task already renewed it (one login per expiry). A configured
    /// token cannot be renewed: the refusal is returned with the fix in its message.
    async fn renew_token(&self, seen: u64, refused: Desk360Error) -> Result<()> {
        let slot = &self.inner.token;
        let Some((email, password)) = &slot.login else {
            let (code, message) = match refused {
                Desk360Error::Unauthorized { code, message } => (code, message),
                other => return Err(other),
            };
            return Err(Desk360Error::Unauthorized {
                code,
                message: format!(
                    "{message} — the configured Desk360 token is wrong, expired or revoked, and a \
                     token made in the panel cannot be renewed by this tool: create a new one \
                     (Settings › API) and set source.token or DESK360_TOKEN, or configure \
                     source.email + source.password (DESK360_EMAIL / DESK360_PASSWORD) so an \
                     expired token is renewed by logging in again; then run the same command \
                     to continue"
                ),
            });
        };
        let _guard = slot.renewing.lock().await;
        if slot.get().0 != seen {
            return Ok(());
        }
        warn!("the Desk360 token was refused (expired); logging in again");
        let token = login(&self.inner.transport, &self.inner.base_str, email, password).await?;
        {
            let mut current = slot.current.write().unwrap_or_else(|p| p.into_inner());
            *current = (seen + 1, token);
        }
        slot.renewals
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// The limiter this client spends.
    pub fn limiter(&self) -> &Limiter {
        &self.inner.transport.limiter
    }

    /// The base URL, normalized (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.inner.base_str
    }

    fn endpoint(&self, path: &str) -> Result<Url> {
        let s = format!("{}/{}", self.inner.base_str, path.trim_start_matches('/'));
        Url::parse(&s).map_err(|e| Desk360Error::UnexpectedUrl {
            what: path.to_owned(),
            url: s,
            reason: e.to_string(),
        })
    }

    /// Parses a URL the server gave and refuses it unless it is on the configured host (same
    /// scheme, host and port): the bearer token must not be sent anywhere else.
    fn checked_url(&self, url: &str, what: &str) -> Result<Url> {
        let parsed = Url::parse(url).map_err(|e| Desk360Error::UnexpectedUrl {
            what: what.to_owned(),
            url: url.to_owned(),
            reason: format!("not an absolute URL: {e}"),
        })?;
        if !self.is_api_host(&parsed) {
            return Err(Desk360Error::UnexpectedUrl {
                what: what.to_owned(),
                url: url.to_owned(),
                reason: format!(
                    "not on the configured Desk360 host {}",
                    self.inner.base.origin().ascii_serialization()
                ),
            });
        }
        Ok(parsed)
    }

    /// One GET with the token in force. A 401 renews a token obtained by login (see
    /// [`TokenSlot`]) and repeats the request with the new token. A 401 to a token that has never
    /// been accepted since its login is returned (fatal): fresh credentials that are refused will
    /// not start working by retrying. A token that worked and is refused again (it expired once
    /// more while this request waited its turn) is renewed again, a bounded number of times.
    async fn get(&self, url: &Url, what: &str) -> Result<Reply> {
        let slot = &self.inner.token;
        let mut renewed = 0;
        loop {
            let (generation, token) = slot.get();
            match self.get_with(url, &token, what).await {
                Err(e @ Desk360Error::Unauthorized { .. }) => {
                    let fresh_and_refused = renewed > 0 && !slot.was_accepted(generation);
                    if fresh_and_refused || renewed >= MAX_RENEWALS_PER_REQUEST {
                        return Err(match e {
                            Desk360Error::Unauthorized { code, message } => {
                                Desk360Error::Unauthorized {
                                    code,
                                    message: format!(
                                        "{message} (refused right after logging in again: check \
                                         that the Desk360 user still has API access)"
                                    ),
                                }
                            }
                            other => other,
                        });
                    }
                    self.renew_token(generation, e).await?;
                    renewed += 1;
                }
                Ok(reply) => {
                    slot.accept(generation);
                    return Ok(reply);
                }
                other => return other,
            }
        }
    }

    async fn get_with(&self, url: &Url, token: &SecretString, what: &str) -> Result<Reply> {
        self.inner
            .transport
            .send(
                Method::GET,
                url,
                Some(token),
                None,
                Safety::Idempotent,
                what,
            )
            .await
    }

    async fn get_json(&self, url: &Url, what: &str) -> Result<(Value, Reply)> {
        let reply = self.get(url, what).await?;
        let value = serde_json::from_str(&reply.body).map_err(|e| Desk360Error::Malformed {
            what: what.to_owned(),
            detail: format!("not valid JSON: {e}"),
            excerpt: transport::excerpt(&reply.body, 200),
        })?;
        Ok((value, reply))
    }

    /// The `rel=next` link of a reply, resolved if relative and checked to be on our host.
    fn next_of(&self, current: &Url, reply: &Reply, what: &str) -> Result<Option<String>> {
        let Some(next) = headers::next_link(&reply.headers) else {
            return Ok(None);
        };
        // An absolute link is kept exactly as given; a relative one is resolved against the
        // page it came from (RFC 8288).
        let next =
            match Url::parse(&next) {
                Ok(_) => next,
                Err(_) => current.join(&next).map(String::from).map_err(|e| {
                    Desk360Error::UnexpectedUrl {
                        what: what.to_owned(),
                        url: next.clone(),
                        reason: format!("unreadable next link: {e}"),
                    }
                })?,
            };
        let parsed = self.checked_url(&next, what)?;
        if parsed == *current {
            return Err(Desk360Error::UnexpectedUrl {
                what: what.to_owned(),
                url: next,
                reason: "the next link points at the page itself".to_owned(),
            });
        }
        Ok(Some(next))
    }

    /// Every item of a (possibly paginated) reference list.
    async fn get_all<T>(
        &self,
        path: &str,
        what: &str,
        read: impl Fn(&Value) -> Result<T, String>,
    ) -> Result<Vec<T>> {
        let mut url = self.endpoint(path)?;
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for _ in 0..MAX_REFERENCE_PAGES {
            seen.insert(url.to_string());
            let (value, reply) = self.get_json(&url, what).await?;
            let items = models::list_items(value).map_err(|detail| Desk360Error::Malformed {
                what: what.to_owned(),
                detail,
                excerpt: transport::excerpt(&reply.body, 200),
            })?;
            let (items, invalid) = models::read_list(items, &read);
            for entry in &invalid {
                warn!(what, detail = %entry.detail, excerpt = %entry.excerpt, "skipping an unreadable desk360 list entry");
            }
            out.extend(items);
            match self.next_of(&url, &reply, what)? {
                Some(next) if !seen.contains(&next) => url = self.checked_url(&next, what)?,
                Some(next) => {
                    warn!(what, url = %next, "desk360 list links back to a page already read; stopping");
                    return Ok(out);
                }
                None => return Ok(out),
            }
        }
        warn!(
            what,
            pages = MAX_REFERENCE_PAGES,
            "desk360 list longer than the page bound; stopping"
        );
        Ok(out)
    }

    /// The agent the credentials belong to: the cheapest credential check (one GET).
    ///
    /// The page titles it `GET /v1/me` while its curl sample uses `/v1/agents/me`; `/v1/me` is
    /// tried first and `/v1/agents/me` only if that is a 404.
    pub async fn me(&self) -> Result<AgentInfo> {
        let what = "current agent";
        let value = match self.get_json(&self.endpoint("v1/me")?, what).await {
            Ok((value, _)) => value,
            Err(Desk360Error::NotFound { .. }) => {
                self.get_json(&self.endpoint("v1/agents/me")?, what)
                    .await?
                    .0
            }
            Err(e) => return Err(e),
        };
        let value = match value {
            Value::Object(mut o) if !o.contains_key("id") && o.contains_key("data") => {
                o.remove("data").unwrap_or(Value::Null)
            }
            other => other,
        };
        AgentInfo::from_value(&value).map_err(|detail| Desk360Error::Malformed {
            what: what.to_owned(),
            detail,
            excerpt: transport::excerpt(&value.to_string(), 200),
        })
    }

    /// Every product of the account (`GET /v1/products`).
    pub async fn products(&self) -> Result<Vec<ProductInfo>> {
        self.get_all("v1/products", "products", ProductInfo::from_value)
            .await
    }

    /// Every agent (`GET /v1/agents`).
    pub async fn agents(&self) -> Result<Vec<AgentInfo>> {
        self.get_all("v1/agents", "agents", AgentInfo::from_value)
            .await
    }

    /// Every ticket type (`GET /v1/types`).
    pub async fn types(&self) -> Result<Vec<TypeInfo>> {
        self.get_all("v1/types", "types", TypeInfo::from_value)
            .await
    }

    /// Every ticket reason (`GET /v1/reasons`).
    pub async fn reasons(&self) -> Result<Vec<ReasonInfo>> {
        self.get_all("v1/reasons", "reasons", ReasonInfo::from_value)
            .await
    }

    /// The first list page of a product, in the documented default order: newest update first
    /// (page 004, `order`: "default descending"). No query parameter is sent, so the list is the
    /// same whether the server's `Link: rel=next` keeps our parameters or carries only `page`
    /// (the page's only example); a ticket updated or created during the run moves to page 1,
    /// where the engine's catch-up finds it, and only shifts later pages down (seen twice, never
    /// skipped).
    pub fn first_page_url(&self, product_id: i64) -> String {
        format!("{}/v1/products/{product_id}/tickets", self.inner.base_str)
    }

    /// One list page. `url` is [`Desk360Client::first_page_url`] or a previous page's `next`;
    /// a URL on another host is refused. Page numbers are never computed here: the server's
    /// `Link: rel=next` is the only way forward.
    pub async fn ticket_page(&self, url: &str) -> Result<TicketPage> {
        let what = format!("ticket page {url}");
        let parsed = self.checked_url(url, &what)?;
        let (value, reply) = self.get_json(&parsed, &what).await?;
        let items = models::list_items(value).map_err(|detail| Desk360Error::Malformed {
            what: what.clone(),
            detail,
            excerpt: transport::excerpt(&reply.body, 200),
        })?;
        let (tickets, invalid) = models::read_list(items, TicketSummary::from_value);
        for entry in &invalid {
            warn!(page = %url, detail = %entry.detail, excerpt = %entry.excerpt, "unreadable ticket list entry");
        }
        let next = self.next_of(&parsed, &reply, &what)?;
        Ok(TicketPage {
            tickets,
            invalid,
            next,
        })
    }

    /// A ticket with its messages and the raw body. A body that is not JSON or not a ticket is
    /// [`Desk360Error::Malformed`] naming `ticket {product}/{ticket}` (not retried).
    pub async fn ticket(&self, product_id: i64, ticket_id: i64) -> Result<TicketDetail> {
        let what = format!("ticket {product_id}/{ticket_id}");
        let url = self.endpoint(&format!("v1/products/{product_id}/tickets/{ticket_id}"))?;
        let reply = self.get(&url, &what).await?;
        let detail = TicketDetail::from_json(&reply.body, &what)?;
        if detail.summary.id != ticket_id {
            return Err(Desk360Error::Malformed {
                what,
                detail: format!("the body is ticket {} instead", detail.summary.id),
                excerpt: transport::excerpt(&reply.body, 200),
            });
        }
        Ok(detail)
    }
}

/// `POST /v1/login` with the email and password; returns the token. The body of a successful
/// login holds the token, so it is never quoted in an error.
async fn login(
    transport: &Transport,
    base: &str,
    email: &str,
    password: &SecretString,
) -> Result<SecretString> {
    let what = "login";
    let url = Url::parse(&format!("{base}/v1/login")).map_err(|e| Desk360Error::Config {
        reason: format!("source base_url: {e}"),
    })?;
    let body = serde_json::json!({ "email": email, "password": password.expose_secret() });
    let reply = match transport
        .send(
            Method::POST,
            &url,
            None,
            Some(&body),
            Safety::Idempotent,
            what,
        )
        .await
    {
        Ok(reply) => reply,
        // Any refusal of a login (400 invalid_credentials, 403 password_access_disabled…) is a
        // credentials problem the user must fix.
        Err(Desk360Error::Rejected { code, message, .. })
        | Err(Desk360Error::NotFound { code, message, .. }) => {
            return Err(Desk360Error::Unauthorized { code, message });
        }
        Err(e) => return Err(e),
    };
    let withheld = || "(withheld: a login response may hold a token)".to_owned();
    let value: Value = serde_json::from_str(&reply.body).map_err(|e| Desk360Error::Malformed {
        what: what.to_owned(),
        detail: format!("not valid JSON at line {} column {}", e.line(), e.column()),
        excerpt: withheld(),
    })?;
    let token = value
        .get("access_token")
        .or_else(|| value.get("data").and_then(|d| d.get("access_token")))
        .or_else(|| value.get("token"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Desk360Error::Malformed {
            what: what.to_owned(),
            detail: "no access_token in the login response".to_owned(),
            excerpt: withheld(),
        })?;
    debug!("desk360 login succeeded");
    Ok(SecretString::from(token.to_owned()))
}

#[cfg(test)]
mod tests;
