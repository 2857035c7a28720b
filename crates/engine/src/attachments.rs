//! The bridge between the two clients for `[attachments] mode = "upload"`: a Desk360 file as a
//! [`deskie::FileSource`], so a multipart write streams it straight from the download into the
//! request (one chunk in memory at a time, no temp file), opening a fresh download for every
//! attempt of the write.
//!
//! For `mode = "urls"`, the dry run's check of a sample of links fetched without credentials
//! ([`check_links`]): links that need Desk360's credentials or expire break once the Desk360
//! account closes, which the report and the log say with the counts.

use std::io;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use throttle::Limiter;

use crate::ctx::{Ctx, FileClients};
use crate::error::Result;

/// Links the dry run checks at most (spread over the tickets that have files).
pub const LINK_SAMPLE: u32 = 20;

/// Query parameters that mark a link as signed or expiring (S3 v2/v4, CloudFront, Google Cloud
/// Storage, Azure SAS, and the generic names), compared case-insensitively.
const EXPIRY_PARAMS: [&str; 12] = [
    "expires",
    "x-amz-expires",
    "x-amz-signature",
    "x-amz-security-token",
    "x-goog-expires",
    "x-goog-signature",
    "signature",
    "sig",
    "se",
    "policy",
    "key-pair-id",
    "token",
];

/// One Desk360 attachment, downloaded when a Deskie write reaches its part.
#[derive(Clone)]
pub struct Desk360File {
    client: desk360::Desk360Client,
    url: String,
    name: String,
    storage: Limiter,
    /// A download opened ahead of the write ([`Desk360File::prefetch`]), used by the first
    /// attempt so a file is not requested twice.
    ready: Arc<Mutex<Option<desk360::Download>>>,
}

impl Desk360File {
    /// The file `name` at `url`; `storage` is the limiter of downloads from hosts other than
    /// the Desk360 API (see [`desk360::files`]).
    pub fn new(
        client: desk360::Desk360Client,
        url: impl Into<String>,
        name: impl Into<String>,
        storage: Limiter,
    ) -> Self {
        Self {
            client,
            url: url.into(),
            name: name.into(),
            storage,
            ready: Arc::new(Mutex::new(None)),
        }
    }

    /// Opens the download now, before the write's intent is journaled: a file its storage
    /// refuses is found here (and left out, reported) rather than halfway through a multipart
    /// request. Returns the size the storage declared. The opened body is kept (unread, so no
    /// more than the connection's buffers in memory) for the write's first attempt.
    pub async fn prefetch(&self) -> Result<Option<u64>, desk360::Desk360Error> {
        let download = self
            .client
            .download(&self.url, &self.name, &self.storage)
            .await?;
        let size = download.size;
        if let Ok(mut ready) = self.ready.lock() {
            *ready = Some(download);
        }
        Ok(size)
    }

    /// The file's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file as an upload part named `name`.
    pub fn into_upload(self, content_type: Option<String>) -> deskie::UploadFile {
        deskie::UploadFile {
            name: self.name.clone(),
            content_type,
            source: Arc::new(self),
        }
    }
}

impl deskie::FileSource for Desk360File {
    fn open(&self) -> deskie::OpenFile {
        let this = self.clone();
        let ready = self.ready.lock().ok().and_then(|mut r| r.take());
        Box::pin(async move {
            let download = match ready {
                Some(d) => d,
                None => this
                    .client
                    .download(&this.url, &this.name, &this.storage)
                    .await
                    .map_err(|e| io::Error::other(DownloadFailed(e)))?,
            };
            let body = download
                .body
                .map(|chunk| chunk.map_err(|e| io::Error::other(DownloadFailed(e))));
            Ok(Box::pin(body) as deskie::FileStream)
        })
    }
}

/// A download failure carried through the upload's I/O error, so the engine can tell a refused
/// file ([`desk360::Desk360Error::FileDenied`]) from a broken Deskie connection.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct DownloadFailed(pub desk360::Desk360Error);

/// Whether `url` carries an expiry or a signature in its query: such a link stops working at
/// some point whatever the account does.
pub fn link_expires(url: &str) -> bool {
    let Ok(u) = url::Url::parse(url) else {
        return false;
    };
    u.query_pairs().any(|(k, _)| {
        let k = k.to_ascii_lowercase();
        EXPIRY_PARAMS.contains(&k.as_str())
    })
}

/// The warning the dry run gives for a link check, when some links are not public or expire.
pub fn link_warning(check: &store::LinkCheck) -> Option<String> {
    let bad = check.not_public.max(check.expiring);
    if bad == 0 {
        return None;
    }
    Some(format!(
        "{} of {} sampled attachment links need Desk360 credentials, {} expire; in urls mode they will break when the Desk360 account closes — use mode = \"upload\"",
        check.not_public, check.sampled, check.expiring
    ))
}

/// `mode = "urls"`, dry run: fetches a deterministic sample of attachment links (at most
/// [`LINK_SAMPLE`], the first file of tickets spread over the store) with no credential, under
/// the storage limiter (the Desk360 limiter for links on the API host), and counts those that
/// are refused (401/403/410) or carry an expiry. Recorded in the store for the report, and
/// logged as a warning when any is found. A link that cannot be reached at all is counted
/// neither way (logged).
pub(crate) async fn check_links(
    ctx: &Ctx,
    clients: &FileClients,
) -> Result<Option<store::LinkCheck>> {
    let sample = ctx.store.attachment_sample(LINK_SAMPLE).await?;
    if sample.is_empty() {
        return Ok(None);
    }
    let mut check = store::LinkCheck::default();
    for link in &sample {
        if ctx.cancel.is_cancelled() {
            return Ok(None);
        }
        let status = match clients
            .desk360
            .probe_link(&link.url, &clients.storage)
            .await
        {
            Ok(s) => s,
            Err(e) if e.class() == desk360::ErrorClass::Cancelled => return Ok(None),
            Err(e) => {
                tracing::warn!(ticket = %link.key, file = %link.name, error = %e, "attachment link could not be checked");
                continue;
            }
        };
        check.sampled += 1;
        let refused = matches!(status, 401 | 403 | 410);
        let expires = link_expires(&link.url);
        check.not_public += u64::from(refused);
        check.expiring += u64::from(expires);
        if refused || expires {
            let what = match (refused, expires) {
                (true, true) => format!("answers {status} without credentials and expires"),
                (true, false) => format!("answers {status} without credentials"),
                _ => "carries an expiry / signature".to_owned(),
            };
            check
                .detail
                .push(format!("{}: {:?} {what}", link.key, link.name));
        }
    }
    ctx.store.record_link_check(&check).await?;
    match link_warning(&check) {
        Some(w) => tracing::warn!("{w}"),
        None => tracing::info!(
            sampled = check.sampled,
            "sampled attachment links open without credentials and carry no expiry"
        ),
    }
    Ok(Some(check))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiring_links_are_recognised_by_their_query() {
        assert!(link_expires(
            "https://desk-360.s3.amazonaws.com/a.png?X-Amz-Expires=300&X-Amz-Signature=ab"
        ));
        assert!(link_expires(
            "http://127.0.0.1:9/f/a.pdf?expires=17&signature=x"
        ));
        assert!(link_expires(
            "https://cdn.example/a?Expires=1&Key-Pair-Id=K"
        ));
        assert!(!link_expires("https://api.desk360.com/attachments/a.pdf"));
        assert!(!link_expires("https://x/a.pdf?download=1"));
        assert!(!link_expires("not a url?expires=1"));
    }

    #[test]
    fn the_warning_counts_both_kinds_and_names_the_fix() {
        let mut c = store::LinkCheck {
            sampled: 20,
            ..store::LinkCheck::default()
        };
        assert_eq!(link_warning(&c), None);
        c.not_public = 3;
        c.expiring = 5;
        let w = link_warning(&c).unwrap();
        assert!(
            w.starts_with("3 of 20 sampled attachment links need Desk360 credentials, 5 expire"),
            "{w}"
        );
        assert!(w.contains("mode = \"upload\""), "{w}");
    }
}
