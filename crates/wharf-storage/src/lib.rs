//! Content-addressed blob bytes and in-progress upload sessions. Storage knows nothing of
//! repositories: which repository may serve a blob is metadata, kept in the database.
//!
//! The backends are a closed set, so they are an enum: `BlobStore::Fs` (a directory, the
//! embedded default) and `BlobStore::S3` (a bucket shared by many nodes).

mod append;
mod fs;
mod s3;

use std::path::PathBuf;

use bytes::Bytes;
use futures_util::Stream;
use wharf_oci::{ByteRange, Digest, Hasher, UploadId};

pub use fs::FsStore;
pub use s3::{S3Config, S3Store};

/// A stream of body bytes coming in from a client.
pub type ByteStream = std::pin::Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("upload {0} has no data in storage")]
    UploadMissing(UploadId),
    #[error("blob {0} is not in storage")]
    BlobMissing(Digest),
    #[error("the request body ended early or could not be read: {0}")]
    Body(std::io::Error),
    #[error("the uploaded content has digest {0}")]
    DigestMismatch(Digest),
    #[error("upload is larger than the limit of {0} bytes")]
    TooLarge(u64),
    #[error("object storage failed {what}: {message}")]
    S3 { what: String, message: String },
    #[error("storage I/O failed on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What an append wrote: the new length of the upload, the running hash (when the caller
/// passed one in that was positioned at the append's start), and the store's new state for
/// the upload, which the caller records with the session.
#[derive(Debug)]
pub struct Appended {
    pub len: u64,
    pub hasher: Option<Hasher>,
    pub state: Option<String>,
    /// Bytes the store did not write because the append was the last (`last: true`): pass
    /// them to `upload_commit`.
    pub held: Option<Bytes>,
}

/// Where blob bytes live.
#[derive(Debug, Clone)]
pub enum BlobStore {
    /// The embedded default: a directory on this machine.
    Fs(FsStore),
    /// An S3-compatible bucket, shared by any number of nodes.
    S3(S3Store),
}

impl BlobStore {
    /// Writes `body` into the upload starting at `offset` (anything stored past `offset` is
    /// dropped first), hashing as it goes when `hasher` is given. At most `limit` bytes in all.
    /// `state` is what the previous append returned (`None` for the first: nothing is stored
    /// for an upload until its first bytes arrive); `size_hint` the
    /// body's announced length, when known; `last` says the caller finishes the upload next.
    #[expect(
        clippy::too_many_arguments,
        reason = "each argument is a distinct part of the request; a struct would only rename them"
    )]
    pub async fn upload_append(
        &self,
        id: &UploadId,
        offset: u64,
        state: Option<&str>,
        body: ByteStream,
        hasher: Option<Hasher>,
        limit: u64,
        size_hint: Option<u64>,
        last: bool,
    ) -> Result<Appended, StorageError> {
        match self {
            Self::Fs(s) => {
                s.upload_append(id, offset, body, hasher, limit, size_hint, last)
                    .await
            }
            Self::S3(s) => {
                s.upload_append(id, offset, state, body, hasher, limit, last)
                    .await
            }
        }
    }

    /// After the caller recorded (or failed to record) an append: releases what `drop`
    /// references and `keep` does not.
    pub async fn upload_cleanup(
        &self,
        id: &UploadId,
        keep: Option<&str>,
        drop: Option<&str>,
    ) -> Result<(), StorageError> {
        match self {
            Self::Fs(_) => Ok(()),
            Self::S3(s) => s.upload_cleanup(id, keep, drop).await,
        }
    }

    /// Moves the first `len` bytes of the upload to the blob's content address, durably.
    /// The caller has verified them (a streamed hash) or asks for `verify`: then the store
    /// hashes them first and answers `DigestMismatch` without placing anything. Idempotent:
    /// committing the same content twice is harmless.
    pub async fn upload_commit(
        &self,
        id: &UploadId,
        len: u64,
        state: Option<&str>,
        held: Option<Bytes>,
        digest: &Digest,
        verify: bool,
    ) -> Result<(), StorageError> {
        match self {
            Self::Fs(s) => {
                if verify {
                    let actual = match &held {
                        Some(bytes) => {
                            let mut h = Hasher::new(digest.algorithm());
                            h.update(bytes);
                            h.finish()
                        }
                        None => s.upload_digest(id, len, digest.algorithm()).await?,
                    };
                    if &actual != digest {
                        return Err(StorageError::DigestMismatch(actual));
                    }
                }
                s.upload_commit(id, len, held, digest).await
            }
            Self::S3(s) => s.upload_commit(id, len, state, held, digest, verify).await,
        }
    }

    /// Whether `upload_commit` itself notices content that is already stored (and then only
    /// releases the upload), so the caller need not ask the database first.
    pub fn commit_finds_existing(&self) -> bool {
        matches!(self, Self::Fs(_))
    }

    pub async fn upload_delete(
        &self,
        id: &UploadId,
        state: Option<&str>,
    ) -> Result<(), StorageError> {
        match self {
            Self::Fs(s) => s.upload_delete(id).await,
            Self::S3(s) => s.upload_delete(id, state).await,
        }
    }

    /// Upload ids present in storage (to sweep leftovers no database row refers to).
    pub async fn upload_ids(&self) -> Result<Vec<UploadId>, StorageError> {
        match self {
            Self::Fs(s) => s.upload_ids().await,
            Self::S3(s) => s.upload_ids().await,
        }
    }

    pub async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, StorageError> {
        match self {
            Self::Fs(s) => s.blob_size(digest).await,
            Self::S3(s) => s.blob_size(digest).await,
        }
    }

    /// Streams a blob, or a range of it.
    pub async fn blob_read(
        &self,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> Result<ByteStream, StorageError> {
        match self {
            Self::Fs(s) => s.blob_read(digest, range).await,
            Self::S3(s) => s.blob_read(digest, range).await,
        }
    }

    /// Whether blob downloads are redirected to the store (`blob_url` gives a URL).
    pub fn redirects(&self) -> bool {
        match self {
            Self::Fs(_) => false,
            Self::S3(s) => s.redirects(),
        }
    }

    /// A URL the client may fetch the blob from directly (a presigned S3 URL), when the store
    /// is configured to redirect downloads.
    pub async fn blob_url(&self, digest: &Digest) -> Result<Option<String>, StorageError> {
        match self {
            Self::Fs(_) => Ok(None),
            Self::S3(s) => s.blob_url(digest).await,
        }
    }

    /// Stores small content whose digest the caller has verified (manifests are not stored
    /// here, but the well-known empty config `{}` is).
    pub async fn blob_put(&self, digest: &Digest, bytes: Bytes) -> Result<(), StorageError> {
        match self {
            Self::Fs(s) => s.blob_put(digest, bytes).await,
            Self::S3(s) => s.blob_put(digest, bytes).await,
        }
    }

    pub async fn blob_delete(&self, digest: &Digest) -> Result<(), StorageError> {
        match self {
            Self::Fs(s) => s.blob_delete(digest).await,
            Self::S3(s) => s.blob_delete(digest).await,
        }
    }

    /// Verifies the store is reachable and writable (for `wharf check`).
    pub async fn check(&self) -> Result<(), StorageError> {
        match self {
            Self::Fs(s) => s.check().await,
            Self::S3(s) => s.check().await,
        }
    }
}
