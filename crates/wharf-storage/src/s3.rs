//! Blobs on an S3-compatible object store (Garage, MinIO, Ceph RGW, AWS S3), through the
//! `object_store` crate.
//!
//! Layout under the configured prefix: `blobs/<alg>/<ab>/<hex>` holds verified content;
//! `_uploads/<id>/…` holds an upload in progress. An upload is an S3 multipart upload whose
//! parts are all `part_size` bytes (the S3 minimum is 5 MiB, some stores want equal parts);
//! bytes that do not fill a part yet wait in a small `tail-…` object. The multipart id, the
//! part ETags and the tail's key are the upload's *state*, which the caller keeps in the
//! database with the session, so any node can continue an upload another node began.
//!
//! Correctness never relies on conditional writes (Garage ignores `If-None-Match`): a blob's
//! key is its digest, so writing it twice writes the same bytes; which blobs exist is decided
//! in the database.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::stream::FuturesOrdered;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use wharf_oci::{ByteRange, Digest, DigestAlgorithm, Hasher, UploadId};

use crate::{Appended, ByteStream, StorageError};

/// The smallest part S3 accepts (except the last).
const MIN_PART: u64 = 5 << 20;
/// Parts uploaded at once per upload.
const PARTS_IN_FLIGHT: usize = 2;
/// Buffers up to this size (small blobs, tails) need no share of `part_memory`.
const SMALL_BUFFER: usize = 1 << 20;

/// Where and how to reach the bucket.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    /// Key prefix inside the bucket (no leading or trailing `/`); empty for the whole bucket.
    pub prefix: String,
    /// `http(s)://host:port` of an S3-compatible service; AWS when absent.
    pub endpoint: Option<String>,
    pub region: String,
    /// From the config or `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// From the config or `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<String>,
    /// `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key`.
    pub path_style: bool,
    /// Bytes per multipart part.
    pub part_size: u64,
    /// When set, blob downloads are answered with a redirect to a URL presigned for this long.
    pub redirect: Option<Duration>,
    /// Bytes of part buffers all uploads on this node may hold at once; an upload whose
    /// buffer grows past `SMALL_BUFFER` waits for its share (back-pressure on its client)
    /// instead of growing the node's memory with the number of concurrent pushes.
    pub part_memory: u64,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "***"),
            )
            .field("path_style", &self.path_style)
            .field("part_size", &self.part_size)
            .field("redirect", &self.redirect)
            .field("part_memory", &self.part_memory)
            .finish()
    }
}

impl S3Config {
    /// Parses `s3://BUCKET[/PREFIX][?endpoint=URL&region=R&path_style=true|false&part_size=BYTES&part_memory=BYTES&redirect_secs=N]`.
    /// Credentials are not part of the URL (they would end up in logs); the caller adds them.
    pub fn from_url(url: &str) -> Result<Self, String> {
        let rest = url.strip_prefix("s3://").ok_or_else(|| {
            format!("storage {url:?} is not an s3:// URL (s3://BUCKET/PREFIX?endpoint=…)")
        })?;
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
        if bucket.is_empty()
            || !bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b))
        {
            return Err(format!(
                "storage {url:?}: {bucket:?} is not a valid bucket name (lower-case letters, digits, '-' and '.')"
            ));
        }
        let prefix = prefix.trim_matches('/').to_owned();
        if prefix.split('/').any(|s| s == ".." || s == ".") {
            return Err(format!(
                "storage {url:?}: the prefix may not contain . or .."
            ));
        }
        let mut config = Self {
            bucket: bucket.to_owned(),
            prefix,
            endpoint: None,
            region: std::env::var("AWS_REGION")
                .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|_| "us-east-1".into()),
            access_key_id: None,
            secret_access_key: None,
            path_style: false,
            part_size: 8 << 20,
            redirect: None,
            part_memory: 128 << 20,
        };
        let mut path_style = None;
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let bad = |what: &str| format!("storage {url:?}: {key}={value:?} is not {what}");
            match &*key {
                "endpoint" => {
                    if !(value.starts_with("http://") || value.starts_with("https://")) {
                        return Err(bad("an http:// or https:// URL"));
                    }
                    config.endpoint = Some(value.trim_end_matches('/').to_owned());
                }
                "region" => config.region = value.into_owned(),
                "path_style" => {
                    path_style = Some(value.parse().map_err(|_| bad("true or false"))?);
                }
                "part_size" => {
                    let n: u64 = value.parse().map_err(|_| bad("a number of bytes"))?;
                    if !(MIN_PART..=(5 << 30)).contains(&n) {
                        return Err(bad("between 5 MiB (5242880) and 5 GiB"));
                    }
                    config.part_size = n;
                }
                "part_memory" => {
                    config.part_memory = value.parse().map_err(|_| bad("a number of bytes"))?;
                }
                "redirect_secs" => {
                    let n: u64 = value.parse().map_err(|_| bad("a number of seconds"))?;
                    config.redirect = (n > 0).then(|| Duration::from_secs(n.min(7 * 24 * 3600)));
                }
                _ => {
                    return Err(format!(
                        "storage {url:?}: unknown parameter {key:?} (known: endpoint, region, path_style, part_size, part_memory, redirect_secs)"
                    ));
                }
            }
        }
        if config.endpoint.is_none()
            && let Ok(ep) = std::env::var("AWS_ENDPOINT_URL")
        {
            config.endpoint = Some(ep);
        }
        // Self-hosted stores (Garage, MinIO) are addressed by path unless told otherwise.
        config.path_style = path_style.unwrap_or(config.endpoint.is_some());
        Ok(config)
    }
}

/// What an upload holds in the store, kept by the caller between requests.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
struct UploadState {
    /// Bytes per part for this upload (fixed when it began).
    ps: u64,
    /// The multipart upload, once the first part was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mp: Option<String>,
    /// ETags of the parts written, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    parts: Vec<String>,
    /// Key (under the upload's folder) of the bytes after the last part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tail: Option<String>,
    #[serde(default)]
    tail_len: u64,
}

impl UploadState {
    fn len(&self) -> u64 {
        self.parts.len() as u64 * self.ps + self.tail_len
    }
}

#[derive(Clone)]
pub struct S3Store {
    store: Arc<AmazonS3>,
    config: S3Config,
    /// One permit per part-sized buffer this node may hold (see `S3Config::part_memory`).
    part_memory: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store")
            .field("config", &self.config)
            .finish()
    }
}

fn s3_err(what: impl Into<String>) -> impl FnOnce(object_store::Error) -> StorageError {
    let what = what.into();
    move |e| StorageError::S3 {
        what,
        message: e.to_string(),
    }
}

impl S3Store {
    pub fn open(config: S3Config) -> Result<Self, StorageError> {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_virtual_hosted_style_request(!config.path_style)
            .with_retry(object_store::RetryConfig {
                max_retries: 5,
                retry_timeout: Duration::from_secs(60),
                ..Default::default()
            })
            .with_client_options(
                object_store::ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(300)),
            );
        if let Some(ep) = &config.endpoint {
            builder = builder
                .with_endpoint(ep)
                .with_allow_http(ep.starts_with("http://"));
        }
        if let Some(k) = &config.access_key_id {
            builder = builder.with_access_key_id(k);
        }
        if let Some(s) = &config.secret_access_key {
            builder = builder.with_secret_access_key(s);
        }
        let store = builder.build().map_err(|e| StorageError::S3 {
            what: format!("configuring bucket {:?}", config.bucket),
            message: e.to_string(),
        })?;
        let permits = (config.part_memory / config.part_size).max(1) as usize;
        Ok(Self {
            store: Arc::new(store),
            config,
            part_memory: Arc::new(tokio::sync::Semaphore::new(permits)),
        })
    }

    fn key(&self, rest: &str) -> Path {
        if self.config.prefix.is_empty() {
            Path::from(rest)
        } else {
            Path::from(format!("{}/{rest}", self.config.prefix))
        }
    }

    fn blob_key(&self, digest: &Digest) -> Path {
        let hex = digest.hex();
        self.key(&format!(
            "blobs/{}/{}/{hex}",
            digest.algorithm().as_str(),
            &hex[..2]
        ))
    }

    fn upload_dir(&self, id: &UploadId) -> Path {
        self.key(&format!("_uploads/{id}"))
    }

    fn upload_key(&self, id: &UploadId, name: &str) -> Path {
        self.key(&format!("_uploads/{id}/{name}"))
    }

    fn state(&self, id: &UploadId, state: Option<&str>) -> Result<UploadState, StorageError> {
        match state {
            None => Ok(UploadState {
                ps: self.config.part_size,
                ..UploadState::default()
            }),
            Some(s) => serde_json::from_str(s)
                .ok()
                .filter(|st: &UploadState| st.ps >= MIN_PART)
                .ok_or_else(|| StorageError::UploadMissing(id.clone())),
        }
    }

    /// A whole (small) object; `None` when it does not exist.
    async fn read_all(&self, key: &Path) -> Result<Option<Bytes>, StorageError> {
        match self.store.get(key).await {
            Ok(r) => Ok(Some(
                r.bytes().await.map_err(s3_err(format!("reading {key}")))?,
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(s3_err(format!("reading {key}"))(e)),
        }
    }

    /// The bytes after the last part: what this request holds, or else the tail object.
    async fn tail(
        &self,
        id: &UploadId,
        st: &UploadState,
        held: Option<Bytes>,
    ) -> Result<Bytes, StorageError> {
        if let Some(h) = held {
            return Ok(h);
        }
        match &st.tail {
            Some(name) => {
                let bytes = self
                    .read_all(&self.upload_key(id, name))
                    .await?
                    .ok_or_else(|| StorageError::UploadMissing(id.clone()))?;
                if bytes.len() as u64 != st.tail_len {
                    return Err(StorageError::UploadMissing(id.clone()));
                }
                Ok(bytes)
            }
            None => Ok(Bytes::new()),
        }
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "mirrors BlobStore::upload_append, one argument per part of the request"
    )]
    pub(crate) async fn upload_append(
        &self,
        id: &UploadId,
        offset: u64,
        state: Option<&str>,
        mut body: ByteStream,
        mut hasher: Option<Hasher>,
        limit: u64,
        last: bool,
    ) -> Result<Appended, StorageError> {
        let mut st = self.state(id, state)?;
        if st.len() != offset {
            return Err(StorageError::UploadMissing(id.clone()));
        }
        // A multipart upload this request starts is aborted unless the request succeeds
        // (an error, or the client going away and the request being dropped).
        let mut created = AbortOnDrop {
            store: self.store.clone(),
            key: self.upload_key(id, "data"),
            mp: None,
        };
        let ps = st.ps as usize;
        let mut buf = BytesMut::new();
        let mut len = offset;
        let mut started = false;
        let mut in_flight = FuturesOrdered::new();
        let mut etags = Vec::new();
        let mut permit: Option<tokio::sync::OwnedSemaphorePermit> = None;
        let data_key = self.upload_key(id, "data");
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(StorageError::Body)?;
            if chunk.is_empty() {
                continue;
            }
            if !started {
                started = true;
                buf.extend_from_slice(&self.tail(id, &st, None).await?);
            }
            len += chunk.len() as u64;
            if len > limit {
                return Err(StorageError::TooLarge(limit));
            }
            if let Some(h) = hasher.as_mut() {
                h.update(&chunk);
            }
            let mut rest: &[u8] = &chunk;
            while !rest.is_empty() {
                if permit.is_none() && buf.len() + rest.len() > SMALL_BUFFER {
                    permit = Some(
                        self.part_memory
                            .clone()
                            .acquire_owned()
                            .await
                            .expect("the part memory semaphore is never closed"),
                    );
                    // From here the buffer is exactly one part: it never reallocates, and
                    // the part sent holds no more memory than its bytes.
                    let mut exact = BytesMut::with_capacity(ps);
                    exact.extend_from_slice(&buf);
                    buf = exact;
                }
                let take = (ps - buf.len()).min(rest.len());
                buf.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if buf.len() < ps {
                    continue;
                }
                let part = std::mem::take(&mut buf).freeze();
                // The part's share of memory is released when it is written.
                let share = permit.take();
                let mp = match &st.mp {
                    Some(mp) => mp.clone(),
                    None => {
                        let mp = self
                            .store
                            .create_multipart(&data_key)
                            .await
                            .map_err(s3_err(format!(
                                "starting a multipart upload at {data_key}"
                            )))?;
                        st.mp = Some(mp.clone());
                        created.mp = Some(mp.clone());
                        mp
                    }
                };
                let idx = st.parts.len() + etags.len() + in_flight.len();
                let store = self.store.clone();
                let key = data_key.clone();
                // A task of its own: it must finish (and release its share of memory) even
                // while this request waits for the share of its next buffer.
                in_flight.push_back(tokio::spawn(async move {
                    let written = store
                        .put_part(&key, &mp, idx, PutPayload::from_bytes(part))
                        .await
                        .map_err(s3_err(format!("writing part {} of {key}", idx + 1)));
                    drop(share);
                    written
                }));
                if in_flight.len() >= PARTS_IN_FLIGHT
                    && let Some(done) = in_flight.next().await
                {
                    etags.push(joined(done)?);
                }
            }
        }
        while let Some(done) = in_flight.next().await {
            etags.push(joined(done)?);
        }
        if !started {
            // Nothing came: the upload is as it was.
            return Ok(Appended {
                len,
                hasher,
                state: state.map(str::to_owned),
                held: None,
            });
        }
        st.parts
            .extend(etags.into_iter().map(|p: PartId| p.content_id));
        st.tail = None;
        st.tail_len = buf.len() as u64;
        let held = if last {
            // The caller finishes the upload with these bytes at once; nothing to keep.
            Some(buf.freeze())
        } else {
            if !buf.is_empty() {
                let name = format!("tail-{len}-{}", uuid::Uuid::new_v4().simple());
                let key = self.upload_key(id, &name);
                self.store
                    .put(&key, PutPayload::from_bytes(buf.freeze()))
                    .await
                    .map_err(s3_err(format!("writing {key}")))?;
                st.tail = Some(name);
            }
            None
        };
        // From here the caller owns the multipart upload through the state it records (and
        // releases it with `upload_cleanup` if it cannot record it).
        created.mp = None;
        Ok(Appended {
            len,
            hasher,
            state: Some(serde_json::to_string(&st).expect("upload state serializes")),
            held,
        })
    }

    /// Makes the upload's first `len` bytes one object: in memory when they fit in one part,
    /// else the completed multipart object `_uploads/<id>/data`.
    async fn finalize(
        &self,
        id: &UploadId,
        len: u64,
        state: Option<&str>,
        held: Option<Bytes>,
    ) -> Result<Finalized, StorageError> {
        let st = self.state(id, state)?;
        if st.len() != len {
            return Err(StorageError::UploadMissing(id.clone()));
        }
        let Some(mp) = &st.mp else {
            return Ok(Finalized::Small(self.tail(id, &st, held).await?));
        };
        // Always completed from the recorded parts and this request's bytes: an object left at
        // `data` by an earlier attempt is never trusted.
        let data_key = self.upload_key(id, "data");
        let mut parts: Vec<PartId> = st
            .parts
            .iter()
            .map(|e| PartId {
                content_id: e.clone(),
            })
            .collect();
        let tail = self.tail(id, &st, held).await?;
        if !tail.is_empty() {
            parts.push(
                self.store
                    .put_part(&data_key, mp, parts.len(), PutPayload::from_bytes(tail))
                    .await
                    .map_err(s3_err(format!("writing the last part of {data_key}")))?,
            );
        }
        self.store
            .complete_multipart(&data_key, mp, parts)
            .await
            .map_err(s3_err(format!(
                "completing {data_key} (another request may have changed this upload; start it again)"
            )))?;
        Ok(Finalized::Object(data_key))
    }

    /// Places the upload's first `len` bytes at `digest`'s key. With `verify`, hashes them
    /// first and places nothing when they do not match (the upload's bytes are then removed:
    /// its multipart upload is complete and cannot be continued).
    pub(crate) async fn upload_commit(
        &self,
        id: &UploadId,
        len: u64,
        state: Option<&str>,
        held: Option<Bytes>,
        digest: &Digest,
        verify: bool,
    ) -> Result<(), StorageError> {
        let to = self.blob_key(digest);
        match self.finalize(id, len, state, held).await? {
            Finalized::Small(bytes) => {
                if verify {
                    let mut h = Hasher::new(digest.algorithm());
                    h.update(&bytes);
                    let actual = h.finish();
                    if &actual != digest {
                        return Err(StorageError::DigestMismatch(actual));
                    }
                }
                self.store
                    .put(&to, PutPayload::from_bytes(bytes))
                    .await
                    .map_err(s3_err(format!("writing {to}")))?;
            }
            Finalized::Object(key) => {
                if verify {
                    let actual = self.hash_object(&key, digest.algorithm()).await?;
                    if &actual != digest {
                        self.remove_upload_objects(id).await?;
                        return Err(StorageError::DigestMismatch(actual));
                    }
                }
                // Server-side copy; on Garage it only links the data blocks.
                self.store
                    .copy(&key, &to)
                    .await
                    .map_err(s3_err(format!("copying {key} to {to}")))?;
            }
        }
        // The blob is in place; what remains of the upload is garbage.
        self.remove_upload_objects(id).await
    }

    async fn hash_object(
        &self,
        key: &Path,
        algorithm: DigestAlgorithm,
    ) -> Result<Digest, StorageError> {
        let mut h = Hasher::new(algorithm);
        let mut stream = self
            .store
            .get(key)
            .await
            .map_err(s3_err(format!("reading {key}")))?
            .into_stream();
        while let Some(chunk) = stream.next().await {
            h.update(&chunk.map_err(s3_err(format!("reading {key}")))?);
        }
        Ok(h.finish())
    }

    /// Deletes what `drop` references and `keep` does not: after the database recorded `keep`
    /// (the old tail is garbage) or refused it (what this request wrote is garbage).
    pub(crate) async fn upload_cleanup(
        &self,
        id: &UploadId,
        keep: Option<&str>,
        drop: Option<&str>,
    ) -> Result<(), StorageError> {
        let (Ok(keep), Ok(drop)) = (self.state(id, keep), self.state(id, drop)) else {
            return Ok(());
        };
        if let Some(tail) = &drop.tail
            && keep.tail.as_ref() != Some(tail)
        {
            let key = self.upload_key(id, tail);
            match self.store.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(s3_err(format!("deleting {key}"))(e)),
            }
        }
        if let Some(mp) = &drop.mp
            && keep.mp.as_ref() != Some(mp)
        {
            let _ = self
                .store
                .abort_multipart(&self.upload_key(id, "data"), mp)
                .await;
        }
        Ok(())
    }

    pub(crate) async fn upload_delete(
        &self,
        id: &UploadId,
        state: Option<&str>,
    ) -> Result<(), StorageError> {
        if let Ok(UploadState { mp: Some(mp), .. }) = self.state(id, state) {
            // Gone already when the upload was finished or aborted before.
            let _ = self
                .store
                .abort_multipart(&self.upload_key(id, "data"), &mp)
                .await;
        }
        self.remove_upload_objects(id).await
    }

    async fn remove_upload_objects(&self, id: &UploadId) -> Result<(), StorageError> {
        let dir = self.upload_dir(id);
        let keys: Vec<Path> = self
            .store
            .list(Some(&dir))
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .map_err(s3_err(format!("listing {dir}")))?;
        for key in keys {
            match self.store.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(s3_err(format!("deleting {key}"))(e)),
            }
        }
        Ok(())
    }

    pub(crate) async fn upload_ids(&self) -> Result<Vec<UploadId>, StorageError> {
        let dir = self.key("_uploads");
        let listed = self
            .store
            .list_with_delimiter(Some(&dir))
            .await
            .map_err(s3_err(format!("listing {dir}")))?;
        Ok(listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename()?.parse().ok())
            .collect())
    }

    pub(crate) async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, StorageError> {
        let key = self.blob_key(digest);
        match self.store.head(&key).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(s3_err(format!("looking up {key}"))(e)),
        }
    }

    pub(crate) async fn blob_read(
        &self,
        digest: &Digest,
        range: Option<ByteRange>,
    ) -> Result<ByteStream, StorageError> {
        let key = self.blob_key(digest);
        let opts = GetOptions {
            range: range.map(|r| GetRange::Bounded(r.start..r.end + 1)),
            ..Default::default()
        };
        let result = match self.store.get_opts(&key, opts).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(StorageError::BlobMissing(digest.clone()));
            }
            Err(e) => return Err(s3_err(format!("reading {key}"))(e)),
        };
        Ok(Box::pin(
            result
                .into_stream()
                .map_err(|e| std::io::Error::other(e.to_string())),
        ))
    }

    pub(crate) fn redirects(&self) -> bool {
        self.config.redirect.is_some()
    }

    /// A presigned GET URL for the blob, when redirects are configured.
    pub(crate) async fn blob_url(&self, digest: &Digest) -> Result<Option<String>, StorageError> {
        let Some(ttl) = self.config.redirect else {
            return Ok(None);
        };
        let key = self.blob_key(digest);
        let url = self
            .store
            .signed_url(http::Method::GET, &key, ttl)
            .await
            .map_err(s3_err(format!("signing a URL for {key}")))?;
        Ok(Some(url.to_string()))
    }

    pub(crate) async fn blob_put(&self, digest: &Digest, bytes: Bytes) -> Result<(), StorageError> {
        let key = self.blob_key(digest);
        self.store
            .put(&key, PutPayload::from_bytes(bytes))
            .await
            .map_err(s3_err(format!("writing {key}")))?;
        Ok(())
    }

    pub(crate) async fn blob_delete(&self, digest: &Digest) -> Result<(), StorageError> {
        let key = self.blob_key(digest);
        match self.store.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(s3_err(format!("deleting {key}"))(e)),
        }
    }

    /// Writes, reads back and deletes a probe object (for `wharf check`).
    pub(crate) async fn check(&self) -> Result<(), StorageError> {
        let key = self.key(&format!("_check/{}", uuid::Uuid::new_v4().simple()));
        let probe = Bytes::from_static(b"wharf check");
        self.store
            .put(&key, PutPayload::from_bytes(probe.clone()))
            .await
            .map_err(s3_err(format!("writing {key}")))?;
        let back = self.read_all(&key).await?.unwrap_or_default();
        self.store
            .delete(&key)
            .await
            .map_err(s3_err(format!("deleting {key}")))?;
        if back != probe {
            return Err(StorageError::S3 {
                what: format!("reading back {key}"),
                message: "the bytes read differ from the bytes written".into(),
            });
        }
        Ok(())
    }
}

/// A part-writing task's result.
fn joined(
    done: Result<Result<PartId, StorageError>, tokio::task::JoinError>,
) -> Result<PartId, StorageError> {
    done.map_err(|e| StorageError::S3 {
        what: "writing a part".into(),
        message: e.to_string(),
    })?
}

enum Finalized {
    Small(Bytes),
    Object(Path),
}

/// Aborts a multipart upload when dropped armed (`mp` set).
struct AbortOnDrop {
    store: Arc<AmazonS3>,
    key: Path,
    mp: Option<String>,
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(mp) = self.mp.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let (store, key) = (self.store.clone(), self.key.clone());
            rt.spawn(async move {
                if let Err(e) = store.abort_multipart(&key, &mp).await {
                    tracing::warn!(%key, "could not abort an unfinished multipart upload: {e}");
                }
            });
        }
    }
}
