//! Upload sessions: start, append chunks, finish with a digest, cancel, sweep.
//!
//! The session row in the database and the bytes in storage are the session; any node can
//! continue it. This node also keeps, as a cache only, the running hash of sessions it
//! served, so finishing an upload does not re-read it; without the cache (after a restart, or
//! on another node) the digest is computed from storage.

use std::collections::HashMap;
use std::sync::Mutex;

use wharf_oci::{ByteRange, Digest, Hasher, RepoName, UploadId};
use wharf_storage::ByteStream;

use crate::{Registry, RegistryError, Result, new_upload_id};

const LOCK_STRIPES: usize = 1024;
const MAX_CACHED_HASHERS: usize = 10_000;

#[derive(Debug)]
pub(crate) struct UploadState {
    /// Serialises requests on one session within this node (other nodes are kept out by the
    /// compare-and-swap on the offset).
    locks: Vec<tokio::sync::Mutex<()>>,
    /// Running hash of a session at a given offset.
    hashers: Mutex<HashMap<UploadId, (u64, Hasher)>>,
}

impl Default for UploadState {
    fn default() -> Self {
        Self {
            locks: (0..LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            hashers: Mutex::new(HashMap::new()),
        }
    }
}

impl UploadState {
    fn lock(&self, id: &UploadId) -> &tokio::sync::Mutex<()> {
        use std::hash::{Hash, Hasher as _};
        let mut fixed = std::hash::DefaultHasher::new();
        id.hash(&mut fixed);
        &self.locks[(fixed.finish() as usize) % LOCK_STRIPES]
    }

    fn take_hasher(&self, id: &UploadId, offset: u64) -> Option<Hasher> {
        let mut map = self.hashers.lock().unwrap_or_else(|p| p.into_inner());
        match map.remove(id) {
            Some((at, h)) if at == offset => Some(h),
            _ => None,
        }
    }

    fn keep_hasher(&self, id: &UploadId, offset: u64, hasher: Hasher) {
        let mut map = self.hashers.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_CACHED_HASHERS {
            map.clear();
        }
        map.insert(id.clone(), (offset, hasher));
    }

    fn forget(&self, id: &UploadId) {
        let mut map = self.hashers.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(id);
    }
}

/// Outcome of finishing an upload.
#[derive(Debug, Clone)]
pub struct Finished {
    pub digest: Digest,
    pub size: u64,
}

impl Registry {
    /// Opens an upload session in `repo` (creating the repository on first push).
    pub async fn upload_start(&self, repo: &RepoName) -> Result<UploadId> {
        let repo_id = self.ensure_repo(repo).await?;
        let id = new_upload_id();
        // Row first, then bytes: a storage file without a row is an orphan the sweeper may take.
        self.db.upload_create(&id, repo_id).await?;
        self.store.upload_create(&id).await?;
        Ok(id)
    }

    async fn session(&self, repo: &RepoName, id: &UploadId) -> Result<u64> {
        let unknown = || RegistryError::BlobUploadUnknown(id.to_string());
        let row = self.db.upload_get(id).await?.ok_or_else(unknown)?;
        let repo_id = self.repo_id(repo).await?.ok_or_else(unknown)?;
        if row.repo != repo_id {
            return Err(unknown());
        }
        Ok(row.offset)
    }

    /// The number of bytes the session holds.
    pub async fn upload_status(&self, repo: &RepoName, id: &UploadId) -> Result<u64> {
        self.session(repo, id).await
    }

    /// Appends a chunk. `range` is the client's `Content-Range`, when it sent one; the chunk
    /// must start where the upload ends. Returns the new length.
    pub async fn upload_append(
        &self,
        repo: &RepoName,
        id: &UploadId,
        range: Option<ByteRange>,
        body: ByteStream,
        size_hint: Option<u64>,
    ) -> Result<u64> {
        let _guard = self.uploads.lock(id).lock().await;
        let offset = self.session(repo, id).await?;
        let (len, hasher) = self
            .append_locked(id, offset, range, body, size_hint)
            .await?;
        if len != offset {
            if !self.db.upload_advance(id, offset, len).await? {
                return Err(RegistryError::RangeInvalid {
                    offset,
                    got: offset,
                });
            }
            if let Some(h) = hasher {
                self.uploads.keep_hasher(id, len, h);
            }
        }
        Ok(len)
    }

    /// Writes a chunk to storage at `offset`; the caller records the new length.
    async fn append_locked(
        &self,
        id: &UploadId,
        offset: u64,
        range: Option<ByteRange>,
        body: ByteStream,
        size_hint: Option<u64>,
    ) -> Result<(u64, Option<Hasher>)> {
        if let Some(r) = range
            && r.start != offset
        {
            return Err(RegistryError::RangeInvalid {
                offset,
                got: r.start,
            });
        }
        let hasher = if offset == 0 {
            Some(Registry::new_hasher())
        } else {
            self.uploads.take_hasher(id, offset)
        };
        let appended = self
            .store
            .upload_append(
                id,
                offset,
                body,
                hasher,
                self.config.max_blob_bytes,
                size_hint.or(range.map(|r| r.len())),
            )
            .await?;
        if let Some(r) = range {
            let got = appended.len - offset;
            if got != r.len() {
                return Err(RegistryError::BlobUploadInvalid(format!(
                    "Content-Range {}-{} announces {} bytes but the body had {got}; nothing was stored, resend the chunk from byte {offset}",
                    r.start,
                    r.end,
                    r.len()
                )));
            }
        }
        Ok((appended.len, appended.hasher))
    }

    /// Finishes an upload: appends the last chunk (if any), verifies the digest against the
    /// bytes, moves them to their content address and links the blob to the repository.
    pub async fn upload_finish(
        &self,
        repo: &RepoName,
        id: &UploadId,
        digest: &Digest,
        range: Option<ByteRange>,
        last_chunk: Option<(ByteStream, Option<u64>)>,
    ) -> Result<Finished> {
        let _guard = self.uploads.lock(id).lock().await;
        let recorded = self.session(repo, id).await?;
        let mut size = recorded;
        let mut streamed = None;
        if let Some((body, size_hint)) = last_chunk {
            // The last chunk is not recorded as progress: the commit below ends the session.
            let (len, hasher) = self
                .append_locked(id, recorded, range, body, size_hint)
                .await?;
            size = len;
            streamed = hasher;
        }
        let cached = streamed.or_else(|| self.uploads.take_hasher(id, size));
        let actual = match cached {
            Some(h) if h.algorithm() == digest.algorithm() => h.finish(),
            _ if size == 0 => {
                let mut h = Hasher::new(digest.algorithm());
                h.update(b"");
                h.finish()
            }
            _ => {
                self.store
                    .upload_digest(id, size, digest.algorithm())
                    .await?
            }
        };
        if &actual != digest {
            return Err(RegistryError::DigestInvalid(format!(
                "the uploaded content ({size} bytes) has digest {actual}, not {digest}; nothing was stored"
            )));
        }
        let repo_id = self
            .repo_id(repo)
            .await?
            .ok_or_else(|| RegistryError::BlobUploadUnknown(id.to_string()))?;
        // Order: validate → move → link → remove session.
        self.store.upload_commit(id, size, digest).await?;
        self.db
            .commit_blob(repo_id, digest, size, Some((id, recorded)))
            .await?;
        self.uploads.forget(id);
        Ok(Finished {
            digest: digest.clone(),
            size,
        })
    }

    /// A whole blob in one request (`POST …/uploads/?digest=`).
    pub async fn blob_put_monolithic(
        &self,
        repo: &RepoName,
        digest: &Digest,
        body: ByteStream,
        size_hint: Option<u64>,
    ) -> Result<Finished> {
        let id = self.upload_start(repo).await?;
        let result = self
            .upload_finish(repo, &id, digest, None, Some((body, size_hint)))
            .await;
        if result.is_err() {
            let _ = self.upload_cancel(repo, &id).await;
        }
        result
    }

    /// Cancels a session and drops its bytes.
    pub async fn upload_cancel(&self, repo: &RepoName, id: &UploadId) -> Result<()> {
        let _guard = self.uploads.lock(id).lock().await;
        self.session(repo, id).await?;
        self.db.upload_delete(id).await?;
        self.store.upload_delete(id).await?;
        self.uploads.forget(id);
        Ok(())
    }

    /// Removes sessions idle longer than the configured expiry, and upload bytes that no session
    /// refers to. Safe to run on many nodes at once. Returns how many sessions were removed.
    pub async fn sweep_uploads(&self) -> Result<usize> {
        let cutoff = wharf_db::now() - self.config.upload_expiry.as_secs() as i64;
        let mut removed = 0;
        loop {
            let idle = self.db.uploads_idle_since(cutoff, 500).await?;
            if idle.is_empty() {
                break;
            }
            for id in &idle {
                let _guard = self.uploads.lock(id).lock().await;
                self.db.upload_delete(id).await?;
                self.store.upload_delete(id).await?;
                self.uploads.forget(id);
                removed += 1;
            }
            if idle.len() < 500 {
                break;
            }
        }
        for id in self.store.upload_ids().await? {
            if !self.db.upload_exists(&id).await? {
                let _guard = self.uploads.lock(&id).lock().await;
                if !self.db.upload_exists(&id).await? {
                    self.store.upload_delete(&id).await?;
                }
            }
        }
        Ok(removed)
    }
}
