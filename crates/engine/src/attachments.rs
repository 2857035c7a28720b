//! The bridge between the two clients for `[attachments] mode = "upload"`: a Desk360 file as a
//! [`deskie::FileSource`], so a multipart write streams it straight from the download into the
//! request (one chunk in memory at a time, no temp file), opening a fresh download for every
//! attempt of the write.

use std::io;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use throttle::Limiter;

/// The clients a loader needs to upload files: the Desk360 client (downloads on its API host,
/// with its token) and the limiter of downloads from other storage hosts.
#[derive(Clone)]
pub(crate) struct FileClients {
    pub desk360: desk360::Desk360Client,
    pub storage: Limiter,
}

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
