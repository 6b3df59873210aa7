//! The filesystem backend: `blobs/<alg>/<ab>/<hex>` for content, `uploads/<id>` for sessions.
//! Blocking file I/O runs on tokio's blocking pool; body bytes cross over a bounded channel so
//! network reads, hashing and disk writes overlap without buffering a blob in memory.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use wharf_oci::{ByteRange, Digest, DigestAlgorithm, Hasher, UploadId};

use crate::append::Appender;
use crate::{Appended, ByteStream, StorageError};

/// Read buffer for re-hashing an upload's bytes.
const READ_BUFFER: usize = 256 * 1024;
const READ_CHUNK: usize = 512 * 1024;
/// Chunks in flight between the network and the disk/hash threads, per upload: bounds the
/// memory one upload holds to a few network reads.
const CHANNEL_CHUNKS: usize = 4;
/// A whole upload announced at most this large is gathered in memory, hashed as it arrives
/// and written once by the commit: one trip to a blocking thread instead of three. Hashing
/// 256 KiB takes about 0.15 ms, short enough to do on the async thread.
const HOLD_UPLOAD: u64 = 256 * 1024;
/// Uploads announced at most this large are hashed on the writer thread (a second thread
/// costs more than it saves) and written through the page cache (see `append`).
const SMALL_UPLOAD: u64 = 1 << 20;

#[derive(Debug, Clone)]
pub struct FsStore {
    root: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_owned(),
        source,
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(StorageError::Body(std::io::Error::other(e))))
}

impl FsStore {
    /// Opens (creating if needed) a store rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StorageError> {
        let root = root.into();
        for sub in ["blobs", "uploads", "tmp"] {
            let p = root.join(sub);
            std::fs::create_dir_all(&p).map_err(io_err(&p))?;
        }
        Ok(Self { root })
    }

    fn upload_path(&self, id: &UploadId) -> PathBuf {
        self.root.join("uploads").join(id.as_str())
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.root
            .join("blobs")
            .join(digest.algorithm().as_str())
            .join(&hex[..2])
            .join(hex)
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "mirrors BlobStore::upload_append, one argument per part of the request"
    )]
    pub(crate) async fn upload_append(
        &self,
        id: &UploadId,
        offset: u64,
        mut body: ByteStream,
        hasher: Option<Hasher>,
        limit: u64,
        size_hint: Option<u64>,
        last: bool,
    ) -> Result<Appended, StorageError> {
        if last
            && offset == 0
            && size_hint.is_some_and(|n| n <= HOLD_UPLOAD)
            && let Some(hasher) = hasher
        {
            return hold(body, hasher, limit.min(HOLD_UPLOAD)).await;
        }
        let path = self.upload_path(id);
        let id = id.clone();
        // Writing and hashing run on two blocking threads fed from the same chunks, so a
        // single upload uses two cores: copying into the page cache costs about as much as
        // SHA-256 does.
        let (tx, mut rx) = mpsc::channel::<Bytes>(CHANNEL_CHUNKS);
        let small = size_hint.is_some_and(|n| n <= SMALL_UPLOAD);
        let (inline_hasher, threaded_hasher) = if small {
            (hasher, None)
        } else {
            (None, hasher)
        };
        let writer =
            tokio::task::spawn_blocking(move || -> Result<(u64, Option<Hasher>), StorageError> {
                let mut file = open_for_write(&path, &id, offset == 0)?;
                let on_disk = file.metadata().map_err(io_err(&path))?.len();
                if on_disk < offset {
                    return Err(StorageError::UploadMissing(id));
                }
                if on_disk > offset {
                    file.set_len(offset).map_err(io_err(&path))?;
                }
                file.seek(SeekFrom::Start(offset)).map_err(io_err(&path))?;
                let mut out = if small {
                    Appender::buffered(file)
                } else {
                    Appender::direct(file, &path, offset)
                };
                let mut len = offset;
                let mut inline_hasher = inline_hasher;
                while let Some(chunk) = rx.blocking_recv() {
                    if let Some(h) = inline_hasher.as_mut() {
                        h.update(&chunk);
                    }
                    out.write(&chunk).map_err(io_err(&path))?;
                    len += chunk.len() as u64;
                }
                // The caller records the running hash of these bytes next, and a later request
                // trusts it instead of re-reading them: they must be on disk first. (The last
                // chunk of an upload is synced by the commit, before its rename.)
                out.finish(!last && len > offset).map_err(io_err(&path))?;
                Ok((len, inline_hasher))
            });
        let (hash_tx, hash_task) = match threaded_hasher {
            Some(mut h) => {
                let (htx, mut hrx) = mpsc::channel::<Bytes>(CHANNEL_CHUNKS);
                let task = tokio::task::spawn_blocking(move || {
                    while let Some(chunk) = hrx.blocking_recv() {
                        h.update(&chunk);
                    }
                    h
                });
                (Some(htx), Some(task))
            }
            None => (None, None),
        };
        let mut received = offset;
        let mut failure = None;
        while let Some(item) = body.next().await {
            match item {
                Ok(chunk) => {
                    received += chunk.len() as u64;
                    if received > limit {
                        failure = Some(StorageError::TooLarge(limit));
                        break;
                    }
                    if let Some(htx) = &hash_tx {
                        let _ = htx.send(chunk.clone()).await;
                    }
                    if tx.send(chunk).await.is_err() {
                        break; // the writer failed; its error is reported below
                    }
                }
                Err(e) => {
                    failure = Some(StorageError::Body(e));
                    break;
                }
            }
        }
        drop(tx);
        drop(hash_tx);
        let written = writer
            .await
            .unwrap_or_else(|e| Err(StorageError::Body(std::io::Error::other(e))));
        let threaded = match hash_task {
            Some(t) => Some(
                t.await
                    .map_err(|e| StorageError::Body(std::io::Error::other(e)))?,
            ),
            None => None,
        };
        match failure {
            Some(e) => Err(e),
            None => written.map(|(len, inline)| Appended {
                len,
                hasher: threaded.or(inline),
                state: None,
                held: None,
            }),
        }
    }

    pub(crate) async fn upload_digest(
        &self,
        id: &UploadId,
        len: u64,
        algorithm: DigestAlgorithm,
    ) -> Result<Digest, StorageError> {
        let path = self.upload_path(id);
        let id = id.clone();
        blocking(move || {
            let file = match File::open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && len == 0 => {
                    return Ok(Hasher::new(algorithm).finish());
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(StorageError::UploadMissing(id));
                }
                Err(e) => return Err(io_err(&path)(e)),
            };
            let mut reader = file.take(len);
            let mut hasher = Hasher::new(algorithm);
            let mut buf = vec![0u8; READ_BUFFER];
            let mut seen = 0u64;
            loop {
                let n = reader.read(&mut buf).map_err(io_err(&path))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                seen += n as u64;
            }
            if seen != len {
                return Err(StorageError::UploadMissing(id));
            }
            Ok(hasher.finish())
        })
        .await
    }

    /// Moves the upload's first `len` bytes (or `held`, the whole content kept in memory by
    /// the last append) to the blob's content address, durably.
    pub(crate) async fn upload_commit(
        &self,
        id: &UploadId,
        len: u64,
        held: Option<Bytes>,
        digest: &Digest,
    ) -> Result<(), StorageError> {
        let from = self.upload_path(id);
        let to = self.blob_path(digest);
        let id = id.clone();
        blocking(move || {
            if std::fs::metadata(&to).is_ok_and(|m| m.len() == len) {
                // Already stored by an earlier or concurrent push of the same content.
                let _ = std::fs::remove_file(&from);
                return Ok(());
            }
            let file = match held {
                Some(bytes) => {
                    let mut file = File::create(&from).map_err(io_err(&from))?;
                    file.write_all(&bytes).map_err(io_err(&from))?;
                    file
                }
                None => open_for_write(&from, &id, len == 0)?,
            };
            if file.metadata().map_err(io_err(&from))?.len() != len {
                file.set_len(len).map_err(io_err(&from))?;
            }
            file.sync_data().map_err(io_err(&from))?;
            drop(file);
            place(&from, &to)
        })
        .await
    }

    pub(crate) async fn upload_delete(&self, id: &UploadId) -> Result<(), StorageError> {
        let path = self.upload_path(id);
        blocking(move || match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&path)(e)),
        })
        .await
    }

    /// Writes, syncs and removes a probe file (for `wharf check`).
    pub(crate) async fn check(&self) -> Result<(), StorageError> {
        let probe = self
            .root
            .join("tmp")
            .join(format!("check-{}", std::process::id()));
        blocking(move || {
            let mut f = File::create(&probe).map_err(io_err(&probe))?;
            f.write_all(b"wharf check").map_err(io_err(&probe))?;
            f.sync_all().map_err(io_err(&probe))?;
            std::fs::remove_file(&probe).map_err(io_err(&probe))
        })
        .await
    }

    pub(crate) async fn upload_ids(&self) -> Result<Vec<UploadId>, StorageError> {
        let dir = self.root.join("uploads");
        blocking(move || {
            let mut ids = Vec::new();
            for entry in std::fs::read_dir(&dir).map_err(io_err(&dir))? {
                let entry = entry.map_err(io_err(&dir))?;
                if let Some(id) = entry.file_name().to_str().and_then(|s| s.parse().ok()) {
                    ids.push(id);
                }
            }
            Ok(ids)
        })
        .await
    }

    pub(crate) async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, StorageError> {
        match tokio::fs::metadata(self.blob_path(digest)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&self.blob_path(digest))(e)),
        }
    }

    pub(crate) async fn blob_read(
        &self,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> Result<ByteStream, StorageError> {
        let path = self.blob_path(digest);
        let missing = digest.clone();
        let (mut file, remaining) = blocking(move || {
            let mut file = File::open(&path).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => StorageError::BlobMissing(missing),
                _ => io_err(&path)(e),
            })?;
            let size = file.metadata().map_err(io_err(&path))?.len();
            let (start, len) = match range {
                Some(r) => (r.start, r.len().min(size.saturating_sub(r.start))),
                None => (0, size),
            };
            file.seek(SeekFrom::Start(start)).map_err(io_err(&path))?;
            advise_sequential(&file, start, len);
            Ok((file, len))
        })
        .await?;
        let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(4);
        tokio::task::spawn_blocking(move || {
            // A download reuses a few buffers: each comes back once hyper has sent its bytes,
            // so no chunk costs an allocation or a zeroing of fresh memory.
            let (give_back, returned) = std::sync::mpsc::channel::<Vec<u8>>();
            let mut remaining = remaining;
            while remaining > 0 {
                let want = remaining.min(READ_CHUNK as u64) as usize;
                let mut buf = returned
                    .try_recv()
                    .unwrap_or_else(|_| vec![0u8; READ_CHUNK.min(want.next_power_of_two())]);
                if buf.len() < want {
                    buf.resize(want, 0);
                }
                match file.read(&mut buf[..want]) {
                    Ok(0) => {
                        let _ = tx.blocking_send(Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "blob is shorter than recorded",
                        )));
                        return;
                    }
                    Ok(n) => {
                        remaining -= n as u64;
                        let chunk = Bytes::from_owner(Pooled {
                            buf,
                            len: n,
                            pool: give_back.clone(),
                        });
                        if tx.blocking_send(Ok(chunk)).is_err() {
                            return; // the client went away
                        }
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
        });
        Ok(Box::pin(futures_util::stream::unfold(rx, |mut rx| async {
            rx.recv().await.map(|item| (item, rx))
        })))
    }

    pub(crate) async fn blob_put(&self, digest: &Digest, bytes: Bytes) -> Result<(), StorageError> {
        let to = self.blob_path(digest);
        let tmp = self
            .root
            .join("tmp")
            .join(format!("{}-{}", digest.hex(), std::process::id()));
        blocking(move || {
            if std::fs::metadata(&to).is_ok_and(|m| m.len() == bytes.len() as u64) {
                return Ok(());
            }
            let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
            f.write_all(&bytes).map_err(io_err(&tmp))?;
            f.sync_all().map_err(io_err(&tmp))?;
            drop(f);
            place(&tmp, &to)
        })
        .await
    }

    pub(crate) async fn blob_delete(&self, digest: &Digest) -> Result<(), StorageError> {
        let path = self.blob_path(digest);
        blocking(move || match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&path)(e)),
        })
        .await
    }
}

/// Opens an upload's file for writing. An upload has no file until its first bytes arrive, so
/// a missing file is created when the upload is still `empty`; otherwise its bytes are gone.
fn open_for_write(path: &Path, id: &UploadId, empty: bool) -> Result<File, StorageError> {
    match OpenOptions::new().write(true).open(path) {
        Ok(file) => Ok(file),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && empty => {
            File::create(path).map_err(io_err(path))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(StorageError::UploadMissing(id.clone()))
        }
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Tells the kernel a download reads `len` bytes from `start` in order: it reads ahead in
/// larger steps (a blob written with `O_DIRECT` is not in the page cache until read once).
#[cfg(target_os = "linux")]
fn advise_sequential(file: &File, start: u64, len: u64) {
    use rustix::fs::{Advice, fadvise};
    let _ = fadvise(
        file,
        start,
        std::num::NonZeroU64::new(len),
        Advice::Sequential,
    );
}

#[cfg(not(target_os = "linux"))]
fn advise_sequential(_file: &File, _start: u64, _len: u64) {}

/// A download's read buffer: its first `len` bytes are a chunk of the blob; dropped (sent),
/// it goes back to the download that read it.
struct Pooled {
    buf: Vec<u8>,
    len: usize,
    pool: std::sync::mpsc::Sender<Vec<u8>>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        // The download may be over: then the buffer is freed.
        let _ = self.pool.send(std::mem::take(&mut self.buf));
    }
}

/// Gathers a small last append in memory, hashing it as it arrives; the commit writes it.
async fn hold(
    mut body: ByteStream,
    mut hasher: Hasher,
    limit: u64,
) -> Result<Appended, StorageError> {
    let mut held = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(StorageError::Body)?;
        if (held.len() + chunk.len()) as u64 > limit {
            return Err(StorageError::TooLarge(limit));
        }
        hasher.update(&chunk);
        held.extend_from_slice(&chunk);
    }
    Ok(Appended {
        len: held.len() as u64,
        hasher: Some(hasher),
        state: None,
        held: Some(held.freeze()),
    })
}

/// Renames a synced file into place and syncs the directories, so the name survives a crash.
fn place(from: &Path, to: &Path) -> Result<(), StorageError> {
    let shard = to.parent().expect("blob paths have a parent");
    let created = !shard.exists();
    std::fs::create_dir_all(shard).map_err(io_err(shard))?;
    std::fs::rename(from, to).map_err(io_err(to))?;
    sync_dir(shard)?;
    if let (true, Some(alg_dir)) = (created, shard.parent()) {
        sync_dir(alg_dir)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}
