//! The HTTP client: authentication, rate limiting, retry classification and the recipe's calls.
//!
//! Every request goes through [`throttle::call`] with the limiter the caller shares between all
//! tasks spending the account's budget (GET costs 1, POST/PUT cost 2), and every response feeds
//! its rate headers back. What may be retried is decided here, per attempt:
//!
//! | what happened                                  | read (GET)       | write (POST/PUT)         |
//! |------------------------------------------------|------------------|--------------------------|
//! | 429                                            | wait, retry      | wait, retry (not applied)|
//! | connection never established (`is_connect`)    | retry            | retry (never sent)       |
//! | timeout, reset, lost body, 5xx after sending   | retry            | [`Ambiguous`], no retry  |
//! | 401/403                                        | [`Unauthorized`] | [`Unauthorized`]         |
//! | 404 / other 4xx (Deskie's message kept)        | [`NotFound`] / [`Rejected`] | [`NotFound`] / [`Rejected`] |
//!
//! A write whose answer was lost may have been applied; sending it again could duplicate a case
//! or a message, so it is reported as [`Ambiguous`] and the engine reconciles by reading first.
//! A request still waiting for budget when the limiter is cancelled (Ctrl-C) is
//! [`DeskieError::Cancelled`]: it was never sent, so there is nothing to reconcile. One whose
//! budget returns later than the limiter's maximum wait is [`DeskieError::WaitTooLong`] (fatal,
//! naming when to resume).
//!
//! [`Ambiguous`]: DeskieError::Ambiguous
//! [`Unauthorized`]: DeskieError::Unauthorized
//! [`NotFound`]: DeskieError::NotFound
//! [`Rejected`]: DeskieError::Rejected

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, LOCATION};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use throttle::{Limiter, Observed, Outcome, RateInfo, RetryPolicy};
use tracing::{debug, warn};
use transport::{Answer, Safety};
use url::Url;

use crate::error::{DeskieError, Result, error_message};
use crate::requests::{
    CaseBody, CaseQuery, CaseUpdate, MessageBody, NewCase, NewMessage, NewNote, NoteBody,
};
use crate::responses::{
    Case, CaseList, CaseWrapper, MessageInfo, MessageList, MessageWrapper, Numbered, UserInfo,
    parse_entity,
};

/// Most cases or messages Deskie returns in one list page.
const MAX_LIMIT: u32 = 100;
/// Highest page number Deskie serves.
const MAX_PAGE: u32 = 500;
/// Pages a source-key lookup reads at most before it gives up proving absence (a filter that
/// works returns one or two cases; hundreds mean the server ignored it).
pub const LOOKUP_MAX_PAGES: u32 = 3;
/// Cases one bulk update may name (page 001: "No more than 10 cases in one request").
pub const BULK_MAX: usize = 10;

/// What a lookup of a case by its source key found.
#[derive(Debug, Clone)]
pub enum CaseLookup {
    /// Exactly one case carries the key.
    Found(Box<Case>),
    /// The server returned its whole result set and no case carries the key.
    Absent,
    /// Several cases carry the key (a duplicate made earlier, e.g. by another tool).
    Several(Vec<Case>),
    /// Absence could not be proven (the reason says why); never create on this answer.
    Unknown(String),
}

/// How to reach one Deskie account.
pub struct DeskieConfig {
    /// The account's address, e.g. `https://acme.deskie.io`; requests go to `{base_url}/api/…`.
    /// Must be `https://`, except loopback hosts (the sandbox).
    pub base_url: Url,
    /// Email of an active agent account (not the admin) with full access: the API acts as it.
    pub staff_email: String,
    /// The API key; never logged, never in an error or a `Debug` output.
    pub api_key: SecretString,
    /// Bound on one whole request (connect, send, answer). The connect phase alone is bounded
    /// by the smaller of this and 10 s.
    pub timeout: Duration,
    /// Bounds on retrying reads and never-sent writes.
    pub retry: RetryPolicy,
}

impl DeskieConfig {
    /// A configuration with a 30 s timeout and the default retry policy.
    pub fn new(base_url: Url, staff_email: impl Into<String>, api_key: SecretString) -> Self {
        Self {
            base_url,
            staff_email: staff_email.into(),
            api_key,
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
        }
    }
}

impl fmt::Debug for DeskieConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeskieConfig")
            .field("base_url", &self.base_url.as_str())
            .field("staff_email", &self.staff_email)
            .field("api_key", &"[redacted]")
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    Get,
    Post,
    Put,
    /// Permanent deletes (page 001 "Delete permanently a case", page 000 "Delete permanently a
    /// user"); used by `manage.rs`.
    Delete,
}

impl Verb {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Put => "PUT",
            Verb::Delete => "DELETE",
        }
    }

    fn method(self) -> reqwest::Method {
        match self {
            Verb::Get => reqwest::Method::GET,
            Verb::Post => reqwest::Method::POST,
            Verb::Put => reqwest::Method::PUT,
            Verb::Delete => reqwest::Method::DELETE,
        }
    }

    /// Deskie counts writes twice against the rate limit.
    pub(crate) fn cost(self) -> u32 {
        match self {
            Verb::Get => 1,
            Verb::Post | Verb::Put | Verb::Delete => 2,
        }
    }

    fn is_write(self) -> bool {
        self != Verb::Get
    }

    /// Whether it may be sent again after it reached Deskie: only a read.
    pub(crate) fn safety(self) -> Safety {
        if self.is_write() {
            Safety::Write
        } else {
            Safety::Idempotent
        }
    }
}

struct Inner {
    http: reqwest::Client,
    api_base: Url,
    staff_email: String,
    api_key: SecretString,
    retry: RetryPolicy,
    limiter: Limiter,
}

/// A Deskie API client for one account. Cheap to clone: clones share the connection pool and
/// the limiter, so many cases can be loaded concurrently under one budget.
#[derive(Clone)]
pub struct DeskieClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for DeskieClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeskieClient")
            .field("api_base", &self.inner.api_base.as_str())
            .field("staff_email", &self.inner.staff_email)
            .field("api_key", &"[redacted]")
            .field("limiter", &self.inner.limiter.name())
            .finish()
    }
}

impl DeskieClient {
    /// Validates the configuration and builds the client; sends nothing. Refuses plain
    /// `http://` except to loopback hosts, URLs carrying credentials, an empty staff email or
    /// API key, and a zero timeout, each with a [`DeskieError::Config`] saying what to fix.
    pub fn new(config: DeskieConfig, limiter: Limiter) -> Result<Self> {
        let api_base = api_base(&config.base_url)?;
        if config.staff_email.trim().is_empty() {
            return Err(DeskieError::config(
                "target.staff_email is empty: set the email of an active agent account",
            ));
        }
        if config.api_key.expose_secret().trim().is_empty() {
            return Err(DeskieError::config(
                "target.api_key is empty: set it in the configuration or DESKIE_API_KEY",
            ));
        }
        if config.timeout.is_zero() {
            return Err(DeskieError::config(
                "the Deskie request timeout must be above zero",
            ));
        }
        let http = transport::http_client(config.timeout)
            .map_err(|e| DeskieError::config(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                api_base,
                staff_email: config.staff_email,
                api_key: config.api_key,
                retry: config.retry,
                limiter,
            }),
        })
    }

    /// The limiter this client spends, e.g. for progress displays.
    pub fn limiter(&self) -> &Limiter {
        &self.inner.limiter
    }

    /// Creates a case, and with it its user (`POST cases.json`, cost 2). The answer carries
    /// `case_id`, `case_number` and `user_id`, which the engine must record.
    pub async fn create_case(&self, case: &NewCase) -> Result<Case> {
        let path = "cases.json";
        let value = self.write(Verb::Post, path, &CaseBody { case }).await?;
        decode(value, &["case"], Verb::Post, path)
    }

    /// Adds a customer or agent response to a case (`POST cases/{id}/messages.json`, cost 2).
    pub async fn add_message(&self, case_id: i64, message: &NewMessage) -> Result<MessageInfo> {
        let path = format!("cases/{case_id}/messages.json");
        let value = self
            .write(Verb::Post, &path, &MessageBody { message })
            .await?;
        decode(value, &["message", "note"], Verb::Post, &path)
    }

    /// Adds an internal note to a case (`POST cases/{id}/note.json`, cost 2), sent as
    /// `{"note":{"staff_id",…}}` (see [`NewNote`] for why that form).
    pub async fn add_note(&self, case_id: i64, note: &NewNote) -> Result<MessageInfo> {
        let path = format!("cases/{case_id}/note.json");
        let value = self.write(Verb::Post, &path, &NoteBody { note }).await?;
        decode(value, &["message", "note"], Verb::Post, &path)
    }

    /// Changes a case's parameters (`PUT cases/{id}.json`, cost 2). Callers skip empty updates
    /// ([`CaseUpdate::is_empty`]) rather than spend 2 units on nothing.
    pub async fn update_case(&self, case_id: i64, update: &CaseUpdate) -> Result<Case> {
        let path = format!("cases/{case_id}.json");
        let value = self
            .write(Verb::Put, &path, &CaseBody { case: update })
            .await?;
        decode(value, &["case"], Verb::Put, &path)
    }

    /// Reads one case (`GET cases/{id}.json`, cost 1).
    pub async fn case(&self, case_id: i64) -> Result<Case> {
        let path = format!("cases/{case_id}.json");
        let value = self.read(&path, &[]).await?;
        decode(value, &["case"], Verb::Get, &path)
    }

    /// Reads one page of cases (`GET cases.json`, cost 1).
    pub async fn list_cases(&self, query: &CaseQuery) -> Result<CaseList> {
        let path = "cases.json";
        let value = self.read(path, &query.to_pairs()).await?;
        let list = decode_list::<Case, CaseWrapper>(value, path)?;
        Ok(CaseList {
            cases: list.items,
            total_count: list.total_count,
        })
    }

    /// Looks for the case whose custom field `field` holds exactly one of `values` (the source
    /// key written at creation, and its older spellings), to reconcile a create whose answer was
    /// lost. The answer must hold under every reading of Deskie's search (page 002: "the search
    /// option is used in many methods", `^…^` for exact; page 001 shows the filter without
    /// saying): each value is sent plainly, without `^` anchors, which an exact-only filter, a
    /// substring filter and the `^` syntax all answer with the case if it exists (the engine's
    /// keys end with a terminator, so no other key contains one), and every hit is checked
    /// exactly here. Absence is proven only when the server returned its whole result set
    /// (`total_count` reached) without an exact hit; a server that ignores the filter (a result
    /// set larger than [`LOOKUP_MAX_PAGES`] pages) leaves the answer [`CaseLookup::Unknown`].
    pub async fn lookup_case_by_custom_field(
        &self,
        field: &str,
        values: &[String],
    ) -> Result<CaseLookup> {
        let mut matches: Vec<Case> = Vec::new();
        for value in values {
            let mut query = CaseQuery {
                limit: Some(MAX_LIMIT),
                ..CaseQuery::default()
            };
            query.custom_fields.insert(field.to_string(), value.clone());
            let mut seen: u64 = 0;
            let mut complete = false;
            for page in 1..=LOOKUP_MAX_PAGES {
                query.page = Some(page);
                let list = self.list_cases(&query).await?;
                let count = list.cases.len() as u64;
                seen += count;
                matches.extend(list.cases.into_iter().filter(|case| {
                    case.custom_field_text(field)
                        .is_some_and(|v| v.trim() == value.trim())
                }));
                let more = match list.total_count {
                    Some(total) => seen < total,
                    None => count >= u64::from(MAX_LIMIT),
                };
                if count == 0 || !more {
                    complete = true;
                    break;
                }
            }
            if !matches.is_empty() {
                break;
            }
            if !complete {
                return Ok(CaseLookup::Unknown(format!(
                    "the search by custom field {field} returned more than {} cases without an exact match: the filter does not seem to apply",
                    LOOKUP_MAX_PAGES * MAX_LIMIT
                )));
            }
        }
        matches.sort_by_key(|case| case.case_id);
        matches.dedup_by_key(|case| case.case_id);
        Ok(match matches.len() {
            0 => CaseLookup::Absent,
            1 => CaseLookup::Found(Box::new(matches.remove(0))),
            _ => CaseLookup::Several(matches),
        })
    }

    /// Changes the same parameters of up to 10 cases in one request (`PUT cases/{id},{id}….json`,
    /// page 001 "Bulk update", cost 2). Returns the ids the server reports as updated
    /// (`case_success_id`); an id missing from it was not changed. More than 10 ids is a
    /// configuration error (the page's limit), never sent.
    pub async fn update_cases(&self, case_ids: &[i64], update: &CaseUpdate) -> Result<Vec<i64>> {
        if case_ids.is_empty() || case_ids.len() > BULK_MAX {
            return Err(DeskieError::config(format!(
                "a bulk update takes 1 to {BULK_MAX} cases, not {}",
                case_ids.len()
            )));
        }
        let ids: Vec<String> = case_ids.iter().map(i64::to_string).collect();
        let path = format!("cases/{}.json", ids.join(","));
        let value = self
            .write(Verb::Put, &path, &CaseBody { case: update })
            .await?;
        // One case: the page answers the case itself.
        if case_ids.len() == 1 && value.get("case").is_some() {
            let case: Case = decode(value, &["case"], Verb::Put, &path)?;
            return Ok(vec![case.case_id]);
        }
        let ids = value
            .get("case_success_id")
            .and_then(|v| v.as_array())
            .ok_or_else(|| DeskieError::Ambiguous {
                what: format!("PUT {path}"),
                detail: "the bulk update answer has no case_success_id".into(),
            })?;
        Ok(ids.iter().filter_map(transport::lenient::int).collect())
    }

    /// Reads one page of a case's messages (`GET cases/{id}/messages.json`, cost 1).
    /// `limit` is clamped to 1..=100, `page` to at least 1.
    pub async fn messages(&self, case_id: i64, page: u32, limit: u32) -> Result<MessageList> {
        let path = format!("cases/{case_id}/messages.json");
        let query = [
            ("page".to_string(), page.max(1).to_string()),
            ("limit".to_string(), limit.clamp(1, MAX_LIMIT).to_string()),
        ];
        let value = self.read(&path, &query).await?;
        let list = decode_list::<MessageInfo, MessageWrapper>(value, &path)?;
        Ok(MessageList {
            messages: list.items,
            total_count: list.total_count,
        })
    }

    /// Reads every message of a case, in pages of 100 until `total_count` (one request for
    /// most cases). Kept in the order Deskie returns them; a message seen on two pages (the
    /// case changed between reads) is kept once.
    pub async fn all_messages(&self, case_id: i64) -> Result<Vec<MessageInfo>> {
        let mut all: Vec<MessageInfo> = Vec::new();
        let mut ids = std::collections::HashSet::new();
        let mut seen: u64 = 0;
        for page in 1..=MAX_PAGE {
            let list = self.messages(case_id, page, MAX_LIMIT).await?;
            let count = list.messages.len() as u64;
            seen += count;
            for message in list.messages {
                if ids.insert(message.message_id) {
                    all.push(message);
                }
            }
            let more = match list.total_count {
                Some(total) => seen < total,
                None => count >= u64::from(MAX_LIMIT),
            };
            if count == 0 || !more {
                break;
            }
        }
        Ok(all)
    }

    /// Reads one user (`GET users/{id}.json`, cost 1).
    pub async fn user(&self, user_id: i64) -> Result<UserInfo> {
        let path = format!("users/{user_id}.json");
        let value = self.read(&path, &[]).await?;
        decode(value, &["user"], Verb::Get, &path)
    }

    /// Checks the credentials with the cheapest request there is (`GET cases.json?limit=1`,
    /// cost 1), so a wrong key stops the run before any work.
    pub async fn check_credentials(&self) -> Result<()> {
        let query = [("limit".to_string(), "1".to_string())];
        self.read("cases.json", &query).await.map(|_| ())
    }

    async fn read(&self, path: &str, query: &[(String, String)]) -> Result<Value> {
        self.execute(Verb::Get, path, query, None).await
    }

    pub(crate) async fn write<B: Serialize>(
        &self,
        verb: Verb,
        path: &str,
        body: &B,
    ) -> Result<Value> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| DeskieError::config(format!("cannot serialize the request: {e}")))?;
        self.execute(verb, path, &[], Some(bytes)).await
    }

    pub(crate) async fn execute(
        &self,
        verb: Verb,
        path: &str,
        query: &[(String, String)],
        body: Option<Vec<u8>>,
    ) -> Result<Value> {
        let mut url =
            self.inner.api_base.join(path).map_err(|e| {
                DeskieError::config(format!("cannot build the URL for {path}: {e}"))
            })?;
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (key, value) in query {
                pairs.append_pair(key, value);
            }
        }
        // The label names the request without its query (which may hold customer data).
        let what = format!("{} {path}", verb.as_str());
        let (url, what, body) = (&url, what.as_str(), body.as_deref());
        let inner = &self.inner;
        transport::call(&inner.limiter, &inner.retry, verb.cost(), what, move || {
            self.attempt(verb, url, body, what)
        })
        .await
    }

    /// One attempt: send, feed back the headers, classify.
    async fn attempt(
        &self,
        verb: Verb,
        url: &Url,
        body: Option<&[u8]>,
        what: &str,
    ) -> (Option<Observed>, Outcome<Value, DeskieError>) {
        let mut request = self.request(verb, url);
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        self.send_classified(verb, what, request).await
    }

    /// A request with the account's basic auth and `Accept: application/json`, no body yet.
    pub(crate) fn request(&self, verb: Verb, url: &Url) -> reqwest::RequestBuilder {
        self.inner
            .http
            .request(verb.method(), url.clone())
            .basic_auth(
                &self.inner.staff_email,
                Some(self.inner.api_key.expose_secret()),
            )
            .header(ACCEPT, "application/json")
    }

    /// The API URL of `path` (relative to `{base_url}/api/`).
    pub(crate) fn api_url(&self, path: &str) -> Result<Url> {
        self.inner
            .api_base
            .join(path)
            .map_err(|e| DeskieError::config(format!("cannot build the URL for {path}: {e}")))
    }

    /// The retry bounds and the limiter every request of this client goes through.
    pub(crate) fn budget(&self) -> (&Limiter, &RetryPolicy) {
        (&self.inner.limiter, &self.inner.retry)
    }

    /// Sends a built request once, feeds back the rate headers and classifies the answer with
    /// the table of the module doc (shared by the JSON and the multipart writes).
    pub(crate) async fn send_classified(
        &self,
        verb: Verb,
        what: &str,
        request: reqwest::RequestBuilder,
    ) -> (Option<Observed>, Outcome<Value, DeskieError>) {
        let started = Instant::now();
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return (None, self.send_failed(verb, what, &error)),
        };
        let status = response.status().as_u16();
        let info = rate_info(response.headers(), status);
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = match response.bytes().await {
            Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            Err(error) => Err(transport::describe(&error)),
        };
        debug!(
            request = what,
            status,
            elapsed_ms = started.elapsed().as_millis() as u64,
            calls_left = info.remaining,
            "deskie response"
        );
        let outcome = self.classify(verb, what, status, &info, location, text);
        (Some(Observed { status, info }), outcome)
    }

    /// No response arrived: only a request that provably never left, or a read, is retried
    /// ([`transport::unanswered`]).
    fn send_failed(
        &self,
        verb: Verb,
        what: &str,
        error: &reqwest::Error,
    ) -> Outcome<Value, DeskieError> {
        let detail = self.scrub(transport::describe(error));
        let outcome = transport::unanswered(error, detail, verb.safety(), what);
        if let Outcome::Fatal(DeskieError::Ambiguous { detail, .. }) = &outcome {
            warn!(request = what, error = %detail, "write sent but no answer; its outcome is unknown");
        }
        outcome
    }

    fn classify(
        &self,
        verb: Verb,
        what: &str,
        status: u16,
        info: &RateInfo,
        location: Option<String>,
        text: std::result::Result<String, String>,
    ) -> Outcome<Value, DeskieError> {
        let what_s = what.to_string();
        let message = |text: &std::result::Result<String, String>| {
            let m = text.as_deref().map(error_message).unwrap_or_default();
            let m = if m.is_empty() {
                reqwest::StatusCode::from_u16(status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("no message")
                    .to_string()
            } else {
                m
            };
            self.scrub(m)
        };
        let safety = verb.safety();
        match Answer::of(status) {
            Answer::Success => match text {
                Ok(text) => match parse_json(&text) {
                    Ok(value) => Outcome::Done(value),
                    Err(detail) if verb.is_write() => {
                        warn!(
                            request = what,
                            status, "write answered with an unreadable body"
                        );
                        Outcome::Fatal(DeskieError::Ambiguous {
                            what: what_s,
                            detail: format!("HTTP {status} with a body that is not JSON: {detail}"),
                        })
                    }
                    Err(detail) => Outcome::Fatal(DeskieError::Malformed {
                        what: what_s,
                        detail,
                        excerpt: self.scrub(transport::excerpt(&text, 200)),
                    }),
                },
                Err(detail) => {
                    let detail = self.scrub(format!("HTTP {status}, body lost: {detail}"));
                    safety.after_sending(what, Some(status), detail)
                }
            },
            Answer::RateLimited => Outcome::RateLimited(DeskieError::RateLimited {
                what: what_s,
                retry_after: info.retry_after,
            }),
            Answer::Unauthorized | Answer::Forbidden => Outcome::Fatal(DeskieError::Unauthorized {
                status,
                message: message(&text),
            }),
            Answer::NotFound => Outcome::Fatal(DeskieError::NotFound {
                what: what_s,
                message: message(&text),
            }),
            Answer::Redirect => Outcome::Fatal(DeskieError::config(format!(
                "Deskie redirected {what} (HTTP {status}) to {}: check target.base_url",
                location.as_deref().unwrap_or("an unknown location")
            ))),
            // 408 and 5xx: the server did not (or could not) answer. A read is repeated; a
            // write may have been applied before the failure, so it is left to reconciliation.
            Answer::NoAnswer => {
                if verb.is_write() {
                    warn!(
                        request = what,
                        status, "write failed on the server side; its outcome is unknown"
                    );
                }
                safety.after_sending(
                    what,
                    Some(status),
                    format!("HTTP {status}: {}", message(&text)),
                )
            }
            Answer::Refused => Outcome::Fatal(DeskieError::Rejected {
                what: what_s,
                status,
                message: message(&text),
            }),
        }
    }

    /// Removes the API key from text that came from the server or a library, in case it was
    /// echoed back. Defence in depth: nothing we build ever includes it.
    fn scrub(&self, text: String) -> String {
        let key = self.inner.api_key.expose_secret();
        if key.len() >= 4 && text.contains(key) {
            text.replace(key, "[redacted]")
        } else {
            text
        }
    }
}

/// `{base_url}/api/`, after checking the base URL is safe to send the API key to.
fn api_base(base: &Url) -> Result<Url> {
    if !base.username().is_empty() || base.password().is_some() {
        return Err(DeskieError::config(
            "target.base_url must not contain credentials: set staff_email and api_key instead",
        ));
    }
    let Some(host) = base.host() else {
        return Err(DeskieError::config("target.base_url has no host"));
    };
    match base.scheme() {
        "https" => {}
        "http" if transport::is_loopback_host(&host) => {}
        "http" => {
            return Err(DeskieError::config(format!(
                "target.base_url uses plain http:// to {host}: the API key would travel in clear; \
                 use https:// (plain http is allowed only to loopback hosts 127.0.0.1, ::1, \
                 localhost, i.e. the sandbox)"
            )));
        }
        other => {
            return Err(DeskieError::config(format!(
                "target.base_url has the scheme {other}:, expected https://"
            )));
        }
    }
    if base.query().is_some() || base.fragment().is_some() {
        return Err(DeskieError::config(
            "target.base_url must not have a query or fragment",
        ));
    }
    let mut url = base.clone();
    let mut path = url.path().trim_end_matches('/').to_string();
    // Accept a base URL that already names the API root.
    if !path.ends_with("/api") {
        path.push_str("/api");
    }
    path.push('/');
    url.set_path(&path);
    Ok(url)
}

/// Reads Deskie's rate headers: `rate_limit_per_minute` (limit), `api_calls_left` (remaining)
/// and `retry_after` (seconds until the window refreshes), which is the window's end on every
/// response and also the wait on a 429 (falling back to a standard `Retry-After` there).
pub(crate) fn rate_info(headers: &HeaderMap, status: u16) -> RateInfo {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let refresh = get("retry_after").and_then(RateInfo::parse_seconds);
    let retry_after = if status == 429 {
        refresh.or_else(|| get("retry-after").and_then(RateInfo::parse_seconds))
    } else {
        None
    };
    RateInfo {
        limit: get("rate_limit_per_minute").and_then(RateInfo::parse_count),
        remaining: get("api_calls_left").and_then(RateInfo::parse_count),
        reset_after: refresh,
        retry_after,
    }
}

/// A success body as JSON; an empty body is `null` (some writes answer with no content).
fn parse_json(text: &str) -> std::result::Result<Value, String> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// Turns an answered body into `T`. For a write the request was applied (2xx), so a body we
/// cannot read is [`DeskieError::Ambiguous`]: the engine must reconcile to learn the new ids.
pub(crate) fn decode<T: DeserializeOwned>(
    value: Value,
    keys: &[&str],
    verb: Verb,
    path: &str,
) -> Result<T> {
    parse_entity::<T>(value.clone(), keys).map_err(|detail| {
        let what = format!("{} {path}", verb.as_str());
        if verb.is_write() {
            warn!(request = %what, %detail, "write applied but its answer cannot be read");
            DeskieError::Ambiguous {
                what,
                detail: format!("answered, but the answer cannot be read: {detail}"),
            }
        } else {
            DeskieError::Malformed {
                what,
                detail,
                excerpt: transport::excerpt(&value.to_string(), 200),
            }
        }
    })
}

fn decode_list<T: DeserializeOwned, W: crate::responses::Wrapper>(
    value: Value,
    path: &str,
) -> Result<Numbered<T, W>> {
    let text = transport::excerpt(&value.to_string(), 200);
    Numbered::<T, W>::from_value(value).map_err(|detail| DeskieError::Malformed {
        what: format!("GET {path}"),
        detail,
        excerpt: text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn rate_headers_are_read() {
        let mut h = HeaderMap::new();
        h.insert("rate_limit_per_minute", HeaderValue::from_static("750"));
        h.insert("api_calls_left", HeaderValue::from_static("12"));
        h.insert("retry_after", HeaderValue::from_static("0.25"));
        let info = rate_info(&h, 200);
        assert_eq!(info.limit, Some(750));
        assert_eq!(info.remaining, Some(12));
        assert_eq!(info.reset_after, Some(Duration::from_millis(250)));
        assert_eq!(info.retry_after, None);
        let info = rate_info(&h, 429);
        assert_eq!(info.retry_after, Some(Duration::from_millis(250)));

        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("3"));
        h.insert("api_calls_left", HeaderValue::from_static("garbage"));
        let info = rate_info(&h, 429);
        assert_eq!(info.retry_after, Some(Duration::from_secs(3)));
        assert_eq!(info.reset_after, None);
        assert_eq!(info.remaining, None);
    }

    #[test]
    fn api_base_is_checked_and_built() {
        let ok = |s: &str| api_base(&Url::parse(s).unwrap()).map(|u| u.to_string());
        assert_eq!(
            ok("https://acme.deskie.io").unwrap(),
            "https://acme.deskie.io/api/"
        );
        assert_eq!(
            ok("https://acme.deskie.io/api").unwrap(),
            "https://acme.deskie.io/api/"
        );
        assert_eq!(
            ok("http://127.0.0.1:8080/deskie/").unwrap(),
            "http://127.0.0.1:8080/deskie/api/"
        );
        assert_eq!(ok("http://localhost:1").unwrap(), "http://localhost:1/api/");
        assert_eq!(ok("http://[::1]:1").unwrap(), "http://[::1]:1/api/");
        for bad in [
            "http://acme.deskie.io",
            "http://10.0.0.1",
            "ftp://acme.deskie.io",
            "https://me:pw@acme.deskie.io",
            "https://acme.deskie.io/?x=1",
        ] {
            let err = ok(bad).unwrap_err();
            assert!(matches!(err, DeskieError::Config { .. }), "{bad}: {err}");
            assert!(!err.to_string().contains("pw"), "{err}");
        }
        assert!(
            ok("http://acme.deskie.io")
                .unwrap_err()
                .to_string()
                .contains("https://")
        );
    }
}
