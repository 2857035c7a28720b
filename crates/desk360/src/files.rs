//! Streamed downloads of attachment files, so the importer can re-host them in Deskie before the
//! Desk360 account (and its storage) goes away.
//!
//! The bearer token goes only to the configured Desk360 API host (the same origin, or a loopback
//! alias of a loopback base, as the client's other checks): a file on any other host (page 004's
//! examples point at `desk-360.s3.amazonaws.com`, where signed URLs carry their own credentials)
//! is fetched with no `Authorization` header. A redirect is never followed (the client's policy),
//! so the token cannot travel to another host through one either.
//!
//! Rate limits: a download from the API host goes through the client's Desk360 limiter (cost 1,
//! like any request there, since the API's per-IP limit may count it). A file on another host is
//! not charged to the Desk360 API budget: it goes through the limiter the caller passes for
//! storage hosts (its own budget, so downloads from S3 do not slow the extraction down).
//!
//! Only the response head is awaited under the limiter and retry policy; the body is handed
//! back as a stream, read chunk by chunk by the caller (never a whole file in memory). A refusal
//! (401, 403, 410: behind credentials, an expired signature, a closed account) is
//! [`Desk360Error::FileDenied`] naming the file.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use secrecy::ExposeSecret;
use throttle::{Limiter, Observed, Outcome};
use tracing::debug;
use transport::Safety;
use url::Url;

use crate::{Desk360Client, Desk360Error, Result, headers};

/// Bound on one download (connect, head and the whole body): a 25 MB file on a slow link needs
/// more than the API's ordinary request timeout.
pub const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// A file's bytes as they arrive.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;

/// A download whose head has arrived: the size the server declared and the body as a stream.
pub struct Download {
    /// `Content-Length`, when the server sent one (learned here when Desk360's entry had none).
    pub size: Option<u64>,
    /// `Content-Type`, when sent.
    pub content_type: Option<String>,
    /// The body, chunk by chunk; an interrupted body ends with [`Desk360Error::Transient`].
    pub body: ByteStream,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("size", &self.size)
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}

impl Desk360Client {
    /// Whether `url` is on the Desk360 API host, i.e. whether a request to it may carry the
    /// token (and is charged to the Desk360 limiter).
    pub fn is_api_host(&self, url: &Url) -> bool {
        // Loopback aliases (127.0.0.1, ::1, localhost) are the same machine: the sandbox may
        // write its links with another spelling than the configuration.
        transport::same_origin(url, &self.inner.base)
    }

    /// Starts downloading the attachment `name` at `url`: on the API host with the token under
    /// the Desk360 limiter, elsewhere without any credential under `storage` (see the module
    /// doc). Retries the head like any read; a refused file is [`Desk360Error::FileDenied`].
    pub async fn download(&self, url: &str, name: &str, storage: &Limiter) -> Result<Download> {
        let what = format!("attachment {name:?}");
        let parsed = Url::parse(url).map_err(|e| Desk360Error::UnexpectedUrl {
            what: what.clone(),
            url: url.to_owned(),
            reason: format!("not an absolute URL: {e}"),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Desk360Error::UnexpectedUrl {
                what,
                url: url.to_owned(),
                reason: "not an http(s) URL".to_owned(),
            });
        }
        let api_host = self.is_api_host(&parsed);
        let transport = &self.inner.transport;
        let limiter = if api_host {
            &transport.limiter
        } else {
            storage
        };
        let (what_ref, parsed_ref, name_ref) = (what.as_str(), &parsed, name);
        let slot = &self.inner.token;
        let mut renewed = 0;
        let response = loop {
            // The token in force: a renewal by another request is picked up.
            let (generation, token) = slot.get();
            let token_ref = &token;
            let result = transport::call(limiter, &transport.retry, 1, &what, move || {
                self.download_attempt(
                    parsed_ref,
                    api_host.then_some(token_ref),
                    name_ref,
                    what_ref,
                )
            })
            .await;
            match result {
                // The API host refused the token (it expired during a long run): a token from a
                // login is renewed like for any other request, then the file is asked again. A
                // token fresh from a login that is refused at once stays a refused file.
                Err(e @ Desk360Error::FileDenied { status: 401, .. })
                    if api_host
                        && slot.login.is_some()
                        && renewed < crate::MAX_RENEWALS_PER_REQUEST
                        && (renewed == 0 || slot.was_accepted(generation)) =>
                {
                    self.renew_token(generation, e).await?;
                    renewed += 1;
                }
                Ok(response) => {
                    if api_host {
                        slot.accept(generation);
                    }
                    break response;
                }
                Err(e) => return Err(e),
            }
        };
        let headers = response.headers();
        let size = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body_what = what.clone();
        let body = response.bytes_stream().map(move |chunk| {
            chunk.map_err(|e| Desk360Error::Transient {
                what: body_what.clone(),
                status: None,
                detail: format!("the download broke off: {}", transport::describe(&e)),
            })
        });
        Ok(Download {
            size,
            content_type,
            body: Box::pin(body),
        })
    }

    async fn download_attempt(
        &self,
        url: &Url,
        token: Option<&secrecy::SecretString>,
        name: &str,
        what: &str,
    ) -> (Option<Observed>, Outcome<reqwest::Response, Desk360Error>) {
        let api_host = token.is_some();
        let mut request = self
            .inner
            .transport
            .http
            .get(url.clone())
            .timeout(DOWNLOAD_TIMEOUT);
        if let Some(token) = token {
            request = request.bearer_auth(token.expose_secret());
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                let detail = transport::describe(&e);
                return (
                    None,
                    transport::unanswered(&e, detail, Safety::Idempotent, what),
                );
            }
        };
        let status = response.status();
        // Only the API host's rate headers speak for the Desk360 limiter; a storage host's
        // answer feeds the storage limiter with its status only.
        let info = if api_host {
            headers::rate_info(response.headers())
        } else {
            throttle::RateInfo::default()
        };
        let observed = Some(Observed {
            status: status.as_u16(),
            info,
        });
        debug!(
            what,
            status = status.as_u16(),
            api_host,
            "attachment download head"
        );
        if status.is_success() {
            return (observed, Outcome::Done(response));
        }
        let body = response.text().await.unwrap_or_default();
        let excerpt = transport::excerpt(&body, 200);
        let outcome = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::GONE => {
                Outcome::Fatal(Desk360Error::FileDenied {
                    name: name.to_owned(),
                    status: status.as_u16(),
                    detail: if url.query().is_some_and(|q| q.contains("expires")) {
                        format!("a signed URL that may have expired: {excerpt}")
                    } else if !api_host {
                        format!("on a storage host the Desk360 token is not sent to: {excerpt}")
                    } else {
                        excerpt
                    },
                })
            }
            StatusCode::TOO_MANY_REQUESTS => Outcome::RateLimited(Desk360Error::RateLimited {
                what: what.to_owned(),
                retry_after: info.retry_after.or(info.reset_after),
            }),
            s if s.is_server_error() => Outcome::Retryable(Desk360Error::Transient {
                what: what.to_owned(),
                status: Some(s.as_u16()),
                detail: excerpt,
            }),
            StatusCode::NOT_FOUND => Outcome::Fatal(Desk360Error::NotFound {
                what: what.to_owned(),
                code: None,
                message: excerpt,
            }),
            s => Outcome::Fatal(Desk360Error::Rejected {
                what: what.to_owned(),
                status: s.as_u16(),
                code: None,
                message: excerpt,
            }),
        };
        (observed, outcome)
    }
}

/// Bound on one link check: only the head (or one byte) is read.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

impl Desk360Client {
    /// The HTTP status `url` answers with no credential at all, as anyone holding only the link
    /// (Deskie fetching an `attachment_urls` entry, a person after the Desk360 account closed)
    /// would see it: the dry run's check of `[attachments] mode = "urls"`.
    ///
    /// Asks with `HEAD`; a storage that does not answer it with a success (405/501, or a signed
    /// URL valid for GET only, which S3 refuses for HEAD with 403) is asked again with a GET of
    /// its first byte (`Range: bytes=0-0`), whose status is the answer. No `Authorization`
    /// header is ever sent, whatever the host. Charged like a download: the Desk360 limiter on
    /// the API host, `storage` elsewhere; nothing is retried (a failure is the caller's to
    /// count).
    pub async fn probe_link(&self, url: &str, storage: &Limiter) -> Result<u16> {
        let what = "attachment link check";
        let parsed = Url::parse(url).map_err(|e| Desk360Error::UnexpectedUrl {
            what: what.to_owned(),
            url: url.to_owned(),
            reason: format!("not an absolute URL: {e}"),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Desk360Error::UnexpectedUrl {
                what: what.to_owned(),
                url: url.to_owned(),
                reason: "not an http(s) URL".to_owned(),
            });
        }
        let api_host = self.is_api_host(&parsed);
        let limiter = if api_host {
            &self.inner.transport.limiter
        } else {
            storage
        };
        let head = self
            .probe_once(limiter, api_host, reqwest::Method::HEAD, &parsed, what)
            .await?;
        if (200..300).contains(&head) {
            return Ok(head);
        }
        self.probe_once(limiter, api_host, reqwest::Method::GET, &parsed, what)
            .await
    }

    async fn probe_once(
        &self,
        limiter: &Limiter,
        api_host: bool,
        method: reqwest::Method,
        url: &Url,
        what: &str,
    ) -> Result<u16> {
        let permit = limiter
            .acquire(1)
            .await
            .map_err(|e| transport::from_wait::<Desk360Error>(e, what))?;
        let mut request = self
            .inner
            .transport
            .http
            .request(method.clone(), url.clone())
            .timeout(PROBE_TIMEOUT);
        if method == reqwest::Method::GET {
            request = request.header(reqwest::header::RANGE, "bytes=0-0");
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let info = if api_host {
                    headers::rate_info(response.headers())
                } else {
                    throttle::RateInfo::default()
                };
                permit.finish(status, &info);
                debug!(what, status, api_host, %method, "attachment link checked");
                Ok(status)
            }
            Err(e) => {
                drop(permit);
                Err(Desk360Error::Transient {
                    what: what.to_owned(),
                    status: None,
                    detail: transport::describe(&e),
                })
            }
        }
    }
}
