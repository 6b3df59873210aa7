//! Upload sessions: start, append chunks, finish with a digest, cancel, sweep.
//!
//! The session row in the database is the session: its offset, the running hash of the bytes
//! so far and the blob store's state for it (an S3 multipart upload's parts). Any node can
//! continue a session another node began, and finishing never re-reads the bytes to hash
//! them (except for a digest algorithm other than the streamed SHA-256).

use bytes::Bytes;
use wharf_oci::{ByteRange, Digest, Hasher, RepoName, UploadId};
use wharf_storage::ByteStream;

use crate::{Registry, RegistryError, Result, new_upload_id};

const LOCK_STRIPES: usize = 1024;

#[derive(Debug)]
pub(crate) struct UploadState {
    /// Serialises requests on one session within this node (other nodes are kept out by the
    /// compare-and-swap on the offset).
    locks: Vec<tokio::sync::Mutex<()>>,
}

impl Default for UploadState {
    fn default() -> Self {
        Self {
            locks: (0..LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
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
}

/// A session as read from the database.
struct Session {
    offset: u64,
    hasher: Option<Hasher>,
    store_state: Option<String>,
}

/// What an append produced, not yet recorded.
struct Chunk {
    len: u64,
    hasher: Option<Hasher>,
    store_state: Option<String>,
    held: Option<Bytes>,
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
        // Row first, then bytes (the first append creates them in storage): a storage file
        // without a row is an orphan the sweeper may take.
        self.db.upload_create(&id, repo_id, None).await?;
        Ok(id)
    }

    async fn session(&self, repo: &RepoName, id: &UploadId) -> Result<Session> {
        let unknown = || RegistryError::BlobUploadUnknown(id.to_string());
        let row = self.db.upload_get(id).await?.ok_or_else(unknown)?;
        let repo_id = self.repo_id(repo).await?.ok_or_else(unknown)?;
        if row.repo != repo_id {
            return Err(unknown());
        }
        let hasher = match &row.hash_state {
            None if row.offset == 0 => Some(Registry::new_hasher()),
            None => None,
            // A state that does not restore is recomputed from storage at the end.
            Some(saved) => Hasher::restore(saved),
        };
        Ok(Session {
            offset: row.offset,
            hasher,
            store_state: row.store_state,
        })
    }

    /// The number of bytes the session holds.
    pub async fn upload_status(&self, repo: &RepoName, id: &UploadId) -> Result<u64> {
        Ok(self.session(repo, id).await?.offset)
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
        let session = self.session(repo, id).await?;
        let offset = session.offset;
        let previous = session.store_state.clone();
        let chunk = self
            .append_locked(id, session, range, body, size_hint, false)
            .await?;
        if chunk.len != offset {
            let saved = chunk.hasher.as_ref().map(Hasher::save);
            let progress = wharf_db::UploadProgress {
                offset: chunk.len,
                hash_state: saved.as_deref(),
                store_state: chunk.store_state.as_deref(),
            };
            if !self.db.upload_advance(id, offset, progress).await? {
                // Another request moved the session first: what this one wrote is garbage.
                let _ = self
                    .store
                    .upload_cleanup(id, previous.as_deref(), chunk.store_state.as_deref())
                    .await;
                return Err(RegistryError::RangeInvalid {
                    offset,
                    got: offset,
                });
            }
            // The progress is recorded; garbage left here is removed with the session.
            if let Err(e) = self
                .store
                .upload_cleanup(id, chunk.store_state.as_deref(), previous.as_deref())
                .await
            {
                tracing::warn!(upload = %id, "could not remove the previous upload tail: {e}");
            }
        }
        Ok(chunk.len)
    }

    /// Writes a chunk to storage at the session's offset; the caller records the result.
    async fn append_locked(
        &self,
        id: &UploadId,
        session: Session,
        range: Option<ByteRange>,
        body: ByteStream,
        size_hint: Option<u64>,
        last: bool,
    ) -> Result<Chunk> {
        let offset = session.offset;
        if let Some(r) = range
            && r.start != offset
        {
            return Err(RegistryError::RangeInvalid {
                offset,
                got: r.start,
            });
        }
        let appended = self
            .store
            .upload_append(
                id,
                offset,
                session.store_state.as_deref(),
                body,
                session.hasher,
                self.config.max_blob_bytes,
                size_hint.or(range.map(|r| r.len())),
                last,
            )
            .await?;
        if let Some(r) = range {
            let got = appended.len - offset;
            if got != r.len() {
                if !last {
                    let _ = self
                        .store
                        .upload_cleanup(
                            id,
                            session.store_state.as_deref(),
                            appended.state.as_deref(),
                        )
                        .await;
                }
                return Err(RegistryError::BlobUploadInvalid(format!(
                    "Content-Range {}-{} announces {} bytes but the body had {got}; nothing was stored, resend the chunk from byte {offset}",
                    r.start,
                    r.end,
                    r.len()
                )));
            }
        }
        Ok(Chunk {
            len: appended.len,
            hasher: appended.hasher,
            store_state: appended.state,
            held: appended.held,
        })
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
        let session = self.session(repo, id).await?;
        let recorded = session.offset;
        let recorded_state = session.store_state.clone();
        let chunk = match last_chunk {
            // The last chunk is not recorded as progress: the commit below ends the session.
            Some((body, size_hint)) => {
                self.append_locked(id, session, range, body, size_hint, true)
                    .await?
            }
            None => Chunk {
                len: recorded,
                hasher: session.hasher,
                store_state: session.store_state,
                held: None,
            },
        };
        let new_state = chunk.store_state.clone();
        let finished = self.finish_locked(repo, id, digest, recorded, chunk).await;
        if finished.is_err() && new_state != recorded_state {
            // The session stays where it was recorded; release what the last chunk wrote.
            let _ = self
                .store
                .upload_cleanup(id, recorded_state.as_deref(), new_state.as_deref())
                .await;
        }
        finished
    }

    /// Verifies, moves and links an upload whose bytes are all written.
    async fn finish_locked(
        &self,
        repo: &RepoName,
        id: &UploadId,
        digest: &Digest,
        recorded: u64,
        chunk: Chunk,
    ) -> Result<Finished> {
        let size = chunk.len;
        let state = chunk.store_state.as_deref();
        let mismatch = |actual: &Digest| {
            RegistryError::DigestInvalid(format!(
                "the uploaded content ({size} bytes) has digest {actual}, not {digest}; nothing was stored"
            ))
        };
        // The streamed hash covers exactly the recorded bytes plus this request's; without it
        // (another algorithm, or a session saved without one) the store verifies.
        let streamed = match chunk.hasher {
            Some(h) if h.algorithm() == digest.algorithm() => Some(h.finish()),
            _ => None,
        };
        if let Some(actual) = &streamed
            && actual != digest
        {
            return Err(mismatch(actual));
        }
        let repo_id = self
            .repo_id(repo)
            .await?
            .ok_or_else(|| RegistryError::BlobUploadUnknown(id.to_string()))?;
        // Order: validate → move → link → remove session. A blob already stored is never
        // written again: the upload's bytes are only released.
        if streamed.is_some()
            && !self.store.commit_finds_existing()
            && self.db.blob_size(digest).await? == Some(size)
        {
            self.store.upload_delete(id, state).await?;
        } else {
            let placed = self
                .store
                .upload_commit(id, size, state, chunk.held, digest, streamed.is_none())
                .await;
            if let Err(wharf_storage::StorageError::DigestMismatch(actual)) = &placed {
                // The store may have had to assemble the bytes to hash them: the session
                // cannot go on. End it.
                if let Some(state) = self.db.upload_delete(id, None).await? {
                    let _ = self.store.upload_delete(id, state.as_deref()).await;
                }
                return Err(mismatch(actual));
            }
            placed?;
        }
        self.db
            .commit_blob(repo_id, digest, size, Some((id, recorded)))
            .await?;
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
        if let Some(state) = self.db.upload_delete(id, None).await? {
            self.store.upload_delete(id, state.as_deref()).await?;
        }
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
                if let Some(state) = self.db.upload_delete(id, Some(cutoff)).await? {
                    self.store.upload_delete(id, state.as_deref()).await?;
                    removed += 1;
                }
            }
            if idle.len() < 500 {
                break;
            }
        }
        for id in self.store.upload_ids().await? {
            if !self.db.upload_exists(&id).await? {
                let _guard = self.uploads.lock(&id).lock().await;
                if !self.db.upload_exists(&id).await? {
                    self.store.upload_delete(&id, None).await?;
                }
            }
        }
        Ok(removed)
    }
}
