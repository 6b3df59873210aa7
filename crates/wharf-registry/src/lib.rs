//! OCI distribution semantics on top of storage and the database: uploads, blobs, manifests,
//! tags, referrers, mounts and deletes. Handlers call one method here per request.

mod cache;
mod error;
mod uploads;

pub use uploads::Finished;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use wharf_db::{Db, NewManifest, RepoId};
use wharf_oci::{
    ByteRange, Digest, Hasher, ManifestKind, MediaType, Reference, RepoName, UploadId,
    parse_manifest,
};
use wharf_storage::{BlobStore, ByteStream};

pub use cache::Manifest;
pub use error::RegistryError;

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// The digest of the OCI empty descriptor's content, `{}`.
const EMPTY_JSON_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

/// How long a repository's id is reused on a node without asking the database.
pub const REPO_ID_TTL: Duration = Duration::from_secs(2);

/// Tunables of the registry service.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Largest blob accepted, in bytes.
    pub max_blob_bytes: u64,
    /// How long a resolved manifest may be served from this node's memory.
    pub manifest_cache_ttl: Duration,
    /// Upload sessions idle this long are removed by the sweeper.
    pub upload_expiry: Duration,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            max_blob_bytes: 64 << 30,
            manifest_cache_ttl: Duration::from_secs(60),
            upload_expiry: Duration::from_secs(24 * 3600),
        }
    }
}

/// A blob ready to stream.
pub struct BlobBody {
    /// Size of the whole blob.
    pub size: u64,
    /// The range being served, if one was asked for.
    pub range: Option<ByteRange>,
    pub stream: ByteStream,
}

/// What a manifest PUT stored.
#[derive(Debug, Clone)]
pub struct PutManifest {
    pub digest: Digest,
    pub subject: Option<Digest>,
}

/// One page of a listing and whether more follows.
#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<String>,
    pub more: bool,
}

/// The registry service.
#[derive(Debug)]
pub struct Registry {
    db: Db,
    store: BlobStore,
    config: RegistryConfig,
    cache: cache::ManifestCache,
    uploads: uploads::UploadState,
    /// Repository name → id, kept for `REPO_ID_TTL`: a repository deleted (and created
    /// again under a new id) through another node is seen here within that time.
    repo_ids: std::sync::RwLock<std::collections::HashMap<String, (std::time::Instant, RepoId)>>,
}

impl Registry {
    pub fn new(db: Db, store: BlobStore, config: RegistryConfig) -> Arc<Self> {
        Arc::new(Self {
            cache: cache::ManifestCache::new(config.manifest_cache_ttl, 100_000),
            uploads: uploads::UploadState::default(),
            repo_ids: Default::default(),
            db,
            store,
            config,
        })
    }

    /// The blob store (for maintenance and tests).
    pub fn store(&self) -> &BlobStore {
        &self.store
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    async fn existing_repo(&self, name: &RepoName) -> Result<RepoId> {
        self.repo_id(name)
            .await?
            .ok_or_else(|| RegistryError::NameUnknown(name.to_string()))
    }

    /// The repository's id, if it exists.
    async fn repo_id(&self, name: &RepoName) -> Result<Option<RepoId>> {
        if let Some(id) = self.cached_repo_id(name) {
            return Ok(Some(id));
        }
        let id = self.db.repo_id(name).await?;
        if let Some(id) = id {
            self.remember_repo_id(name, id);
        }
        Ok(id)
    }

    /// The repository's id, creating the repository on first use.
    async fn ensure_repo(&self, name: &RepoName) -> Result<RepoId> {
        if let Some(id) = self.cached_repo_id(name) {
            return Ok(id);
        }
        let id = self.db.ensure_repo(name).await?;
        self.remember_repo_id(name, id);
        Ok(id)
    }

    fn cached_repo_id(&self, name: &RepoName) -> Option<RepoId> {
        let ids = self.repo_ids.read().unwrap_or_else(|p| p.into_inner());
        ids.get(name.as_str())
            .filter(|(at, _)| at.elapsed() < REPO_ID_TTL)
            .map(|(_, id)| *id)
    }

    fn remember_repo_id(&self, name: &RepoName, id: RepoId) {
        let mut ids = self.repo_ids.write().unwrap_or_else(|p| p.into_inner());
        if ids.len() >= 100_000 {
            ids.clear();
        }
        ids.insert(name.as_str().to_owned(), (std::time::Instant::now(), id));
    }

    /// Forgets what this node remembers of a deleted repository.
    pub fn forget_repo(&self, name: &RepoName) {
        self.repo_ids
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name.as_str());
        self.cache.invalidate(name.as_str());
    }

    /// The repository's id, creating the repository on first use.
    pub async fn ensure_repo_id(&self, name: &RepoName) -> Result<RepoId> {
        self.ensure_repo(name).await
    }

    /// A small blob's bytes (at most `max`), e.g. an image config.
    pub async fn blob_bytes(&self, repo: &RepoName, digest: &Digest, max: u64) -> Result<Bytes> {
        use futures_util::StreamExt as _;
        let size = self.blob_stat(repo, digest).await?;
        if size > max {
            return Err(RegistryError::SizeInvalid(format!(
                "blob {digest} is {size} bytes; at most {max} are read whole"
            )));
        }
        let mut stream = self.store.blob_read(digest, None).await?;
        let mut out = Vec::with_capacity(size as usize);
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(
                &chunk
                    .map_err(|e| RegistryError::Internal(format!("reading blob {digest}: {e}")))?,
            );
            if out.len() as u64 > max {
                return Err(RegistryError::SizeInvalid(format!(
                    "blob {digest} grew past {max} bytes"
                )));
            }
        }
        Ok(Bytes::from(out))
    }

    // ---- blobs ----

    /// Size of a blob the repository may serve.
    pub async fn blob_stat(&self, repo: &RepoName, digest: &Digest) -> Result<u64> {
        let id = self
            .repo_id(repo)
            .await?
            .ok_or_else(|| RegistryError::BlobUnknown(digest.clone()))?;
        self.db
            .repo_blob_size(id, digest)
            .await?
            .ok_or_else(|| RegistryError::BlobUnknown(digest.clone()))
    }

    /// Opens a blob, or the part `range` selects, for streaming.
    pub async fn blob_get(
        &self,
        repo: &RepoName,
        digest: &Digest,
        range: impl FnOnce(u64) -> Result<Option<ByteRange>>,
    ) -> Result<BlobBody> {
        let size = self.blob_stat(repo, digest).await?;
        let range = range(size)?;
        let stream = self.store.blob_read(digest, range).await?;
        Ok(BlobBody {
            size,
            range,
            stream,
        })
    }

    /// Where the client may download the blob directly (a presigned object-store URL), when
    /// storage is configured to redirect downloads; after the repository check.
    pub async fn blob_redirect(&self, repo: &RepoName, digest: &Digest) -> Result<Option<String>> {
        if !self.store.redirects() {
            // Most stores serve through wharf: no second lookup on the pull path.
            return Ok(None);
        }
        self.blob_stat(repo, digest).await?;
        Ok(self.store.blob_url(digest).await?)
    }

    /// Removes a blob from a repository. Its bytes stay while other repositories hold it.
    pub async fn blob_delete(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        let id = self
            .repo_id(repo)
            .await?
            .ok_or_else(|| RegistryError::BlobUnknown(digest.clone()))?;
        if self.db.unlink_blob(id, digest).await? {
            Ok(())
        } else {
            Err(RegistryError::BlobUnknown(digest.clone()))
        }
    }

    /// Links a blob that `from` holds into `repo`. `None` when it cannot be mounted, in which
    /// case the client gets an ordinary upload session instead.
    pub async fn blob_mount(
        &self,
        repo: &RepoName,
        from: &RepoName,
        digest: &Digest,
    ) -> Result<Option<u64>> {
        let Some(from_id) = self.repo_id(from).await? else {
            return Ok(None);
        };
        let to = self.ensure_repo(repo).await?;
        Ok(self.db.mount_blob(to, from_id, digest).await?)
    }

    /// Makes sure the well-known empty blob `{}` is stored and linked, so artifacts with an
    /// empty config work even when the client skips uploading two bytes.
    async fn ensure_empty_blob(&self, repo: RepoId) -> Result<()> {
        let digest: Digest = EMPTY_JSON_DIGEST.parse().expect("constant digest is valid");
        if self.db.repo_blob_size(repo, &digest).await?.is_some() {
            return Ok(());
        }
        self.store
            .blob_put(&digest, Bytes::from_static(b"{}"))
            .await?;
        self.db.commit_blob(repo, &digest, 2, None).await?;
        Ok(())
    }

    // ---- manifests ----

    /// Validates and stores a manifest, tagging it when `reference` is a tag.
    pub async fn manifest_put(
        &self,
        repo: &RepoName,
        reference: &Reference,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<PutManifest> {
        let parsed = parse_manifest(content_type, &body)?;
        let digest = match reference {
            Reference::Digest(d) => {
                let actual = d.same_algorithm_of(&body);
                if &actual != d {
                    return Err(RegistryError::DigestInvalid(format!(
                        "manifest was pushed as {d} but its content has digest {actual}"
                    )));
                }
                actual
            }
            Reference::Tag(_) => Digest::sha256_of(&body),
        };
        let repo_id = self.ensure_repo(repo).await?;
        let mut blobs = Vec::new();
        let mut children = Vec::new();
        match parsed.kind {
            ManifestKind::Image => {
                for d in parsed.config.iter().chain(&parsed.layers) {
                    if d.is_foreign() {
                        continue;
                    }
                    if d.digest.to_string() == EMPTY_JSON_DIGEST {
                        self.ensure_empty_blob(repo_id).await?;
                    }
                    blobs.push(d.digest.to_string());
                }
            }
            ManifestKind::Index => {
                children.extend(parsed.manifests.iter().map(|d| d.digest.to_string()));
            }
        }
        let subject = parsed.subject.as_ref().map(|s| s.digest.clone());
        let annotations = parsed
            .annotations
            .as_ref()
            .filter(|a| !a.is_empty())
            .map(|a| serde_json::Value::Object(a.clone()).to_string());
        let tag = match reference {
            Reference::Tag(t) => Some(t.as_str()),
            Reference::Digest(_) => None,
        };
        self.db
            .put_manifest(
                repo_id,
                NewManifest {
                    digest: &digest,
                    media_type: &parsed.media_type,
                    artifact_type: parsed.artifact_type.as_deref(),
                    subject: subject.as_ref(),
                    annotations,
                    payload: &body,
                    blobs,
                    children,
                    tag,
                },
            )
            .await?;
        self.cache.invalidate(repo.as_str());
        Ok(PutManifest { digest, subject })
    }

    /// Resolves a manifest by tag or digest.
    pub async fn manifest_get(
        &self,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<Arc<Manifest>> {
        let key = reference.to_string();
        if let Some(m) = self.cache.get(repo.as_str(), &key) {
            return Ok(m);
        }
        let unknown = || RegistryError::ManifestUnknown(key.clone());
        let repo_id = self.repo_id(repo).await?.ok_or_else(unknown)?;
        let record = match reference {
            Reference::Tag(t) => self.db.manifest_by_tag(repo_id, t.as_str()).await?,
            Reference::Digest(d) => self.db.manifest_by_digest(repo_id, d).await?,
        }
        .ok_or_else(unknown)?;
        let m = Arc::new(Manifest {
            digest: record.digest,
            media_type: record.media_type,
            payload: Bytes::from(record.payload),
        });
        self.cache.put(repo.as_str(), &key, m.clone());
        Ok(m)
    }

    /// Deletes a manifest by digest (with its tags), or only a tag.
    pub async fn manifest_delete(&self, repo: &RepoName, reference: &Reference) -> Result<()> {
        let unknown = || RegistryError::ManifestUnknown(reference.to_string());
        let repo_id = self.repo_id(repo).await?.ok_or_else(unknown)?;
        let deleted = match reference {
            Reference::Digest(d) => self.db.delete_manifest(repo_id, d).await?,
            Reference::Tag(t) => self.db.delete_tag(repo_id, t.as_str()).await?,
        };
        self.cache.invalidate(repo.as_str());
        if deleted { Ok(()) } else { Err(unknown()) }
    }

    // ---- listings ----

    pub async fn tags(&self, repo: &RepoName, last: Option<&str>, n: u32) -> Result<Page> {
        let id = self.existing_repo(repo).await?;
        let mut items = self.db.tags(id, last, n.saturating_add(1)).await?;
        let more = items.len() > n as usize;
        items.truncate(n as usize);
        Ok(Page { items, more })
    }

    pub async fn catalog(&self, last: Option<&str>, n: u32) -> Result<Page> {
        let mut items = self.db.catalog(last, n.saturating_add(1)).await?;
        let more = items.len() > n as usize;
        items.truncate(n as usize);
        Ok(Page { items, more })
    }

    /// The referrers of `subject` as an OCI image index.
    pub async fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<serde_json::Value> {
        let id = self.existing_repo(repo).await?;
        let mut manifests = Vec::new();
        let mut after: Option<String> = None;
        // Bounded: a subject with an absurd number of referrers is cut at this many.
        const PAGE: u32 = 1000;
        const MAX: usize = 10_000;
        loop {
            let page = self
                .db
                .referrers(id, subject, artifact_type, after.as_deref(), PAGE)
                .await?;
            let full = page.len() == PAGE as usize;
            after = page.last().map(|r| r.digest.clone());
            for r in page {
                let mut d = serde_json::json!({
                    "mediaType": r.media_type,
                    "digest": r.digest,
                    "size": r.size,
                });
                if let Some(t) = r.artifact_type {
                    d["artifactType"] = t.into();
                }
                if let Some(a) = r
                    .annotations
                    .and_then(|a| serde_json::from_str::<serde_json::Value>(&a).ok())
                {
                    d["annotations"] = a;
                }
                manifests.push(d);
            }
            if !full || manifests.len() >= MAX {
                break;
            }
        }
        Ok(serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MediaType::OCI_INDEX,
            "manifests": manifests,
        }))
    }

    /// A fresh hasher for streamed uploads (SHA-256, the algorithm nearly every client uses).
    fn new_hasher() -> Hasher {
        Hasher::new(wharf_oci::DigestAlgorithm::Sha256)
    }
}

/// Generates a new upload id.
fn new_upload_id() -> UploadId {
    UploadId::from_uuid_string(uuid::Uuid::new_v4().to_string())
        .expect("uuid v4 is a valid upload id")
}
