//! Content-addressed blob bytes and in-progress upload sessions. Storage knows nothing of
//! repositories: which repository may serve a blob is metadata, kept in the database.
//!
//! The backends are a closed set, so they are an enum (`BlobStore::Fs` today; S3 comes with
//! scale-out).

mod fs;

use std::path::PathBuf;

use bytes::Bytes;
use futures_util::Stream;
use wharf_oci::{ByteRange, Digest, Hasher, UploadId};

pub use fs::FsStore;

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
    #[error("upload is larger than the limit of {0} bytes")]
    TooLarge(u64),
    #[error("storage I/O failed on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What an append wrote: the new length of the upload and the running hash, when the caller
/// passed one in that was positioned at the append's start.
#[derive(Debug)]
pub struct Appended {
    pub len: u64,
    pub hasher: Option<Hasher>,
}

/// Where blob bytes live.
#[derive(Debug, Clone)]
pub enum BlobStore {
    Fs(FsStore),
}

impl BlobStore {
    pub async fn upload_create(&self, id: &UploadId) -> Result<(), StorageError> {
        match self {
            Self::Fs(s) => s.upload_create(id).await,
        }
    }

    /// Writes `body` into the upload starting at `offset` (anything stored past `offset` is
    /// dropped first), hashing as it goes when `hasher` is given. At most `limit` bytes in all.
    /// `size_hint` is the body's announced length, when known.
    pub async fn upload_append(
        &self,
        id: &UploadId,
        offset: u64,
        body: ByteStream,
        hasher: Option<Hasher>,
        limit: u64,
        size_hint: Option<u64>,
    ) -> Result<Appended, StorageError> {
        match self {
            Self::Fs(s) => {
                s.upload_append(id, offset, body, hasher, limit, size_hint)
                    .await
            }
        }
    }

    /// Hashes the first `len` bytes of the upload from storage (after a restart, or for an
    /// algorithm other than the streamed one).
    pub async fn upload_digest(
        &self,
        id: &UploadId,
        len: u64,
        algorithm: wharf_oci::DigestAlgorithm,
    ) -> Result<Digest, StorageError> {
        match self {
            Self::Fs(s) => s.upload_digest(id, len, algorithm).await,
        }
    }

    /// Moves the first `len` verified bytes of the upload to the blob's content address,
    /// durably. Idempotent: committing the same content twice is harmless.
    pub async fn upload_commit(
        &self,
        id: &UploadId,
        len: u64,
        digest: &Digest,
    ) -> Result<(), StorageError> {
        match self {
            Self::Fs(s) => s.upload_commit(id, len, digest).await,
        }
    }

    pub async fn upload_delete(&self, id: &UploadId) -> Result<(), StorageError> {
        match self {
            Self::Fs(s) => s.upload_delete(id).await,
        }
    }

    /// Upload ids present in storage (to sweep leftovers no database row refers to).
    pub async fn upload_ids(&self) -> Result<Vec<UploadId>, StorageError> {
        match self {
            Self::Fs(s) => s.upload_ids().await,
        }
    }

    pub async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, StorageError> {
        match self {
            Self::Fs(s) => s.blob_size(digest).await,
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
        }
    }

    /// Stores small content whose digest the caller has verified (manifests are not stored
    /// here, but the well-known empty config `{}` is).
    pub async fn blob_put(&self, digest: &Digest, bytes: Bytes) -> Result<(), StorageError> {
        match self {
            Self::Fs(s) => s.blob_put(digest, bytes).await,
        }
    }

    pub async fn blob_delete(&self, digest: &Digest) -> Result<(), StorageError> {
        match self {
            Self::Fs(s) => s.blob_delete(digest).await,
        }
    }
}
