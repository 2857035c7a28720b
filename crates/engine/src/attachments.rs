//! The bridge between the two clients for `[attachments] mode = "upload"`: a Desk360 file as a
//! [`deskie::FileSource`], so a multipart write streams it straight from the download into the
//! request (one chunk in memory at a time, no temp file), opening a fresh download for every
//! attempt of the write.

use std::io;
use std::sync::Arc;

use futures::StreamExt;
use throttle::Limiter;

/// One Desk360 attachment, downloaded when a Deskie write reaches its part.
#[derive(Clone)]
pub struct Desk360File {
    client: desk360::Desk360Client,
    url: String,
    name: String,
    storage: Limiter,
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
        }
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
        Box::pin(async move {
            let download = this
                .client
                .download(&this.url, &this.name, &this.storage)
                .await
                .map_err(|e| io::Error::other(DownloadFailed(e)))?;
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
