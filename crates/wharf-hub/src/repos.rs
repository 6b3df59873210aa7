//! Repositories as the hub shows them: information, archive state, logos, tags with their
//! platforms and sizes, storage used, copying and moving images, search, and pull counters.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use wharf_db::{RepoOrder, RepoPatch, RepoRow, SearchQuery, TagOrder, Viewer};
use wharf_oci::{Digest, OFFICIAL_NAMESPACE, Reference, RepoName, Tag};
use wharf_registry::Registry;

use crate::content::{check_categories, check_description, check_logo, check_overview};
use crate::{Actions, Hub, HubError, Principal, User};

/// A trusted-content badge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Badge {
    Official,
    VerifiedPublisher,
    OpenSource,
}

impl Badge {
    pub const ALL: [Badge; 3] = [Self::Official, Self::VerifiedPublisher, Self::OpenSource];

    pub fn slug(self) -> &'static str {
        match self {
            Self::Official => "official",
            Self::VerifiedPublisher => "verified_publisher",
            Self::OpenSource => "open_source",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Official => "Docker Official Image",
            Self::VerifiedPublisher => "Verified Publisher",
            Self::OpenSource => "Sponsored OSS",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.slug() == s)
    }

    /// The badge of a namespace: `library` is official; otherwise its approved program.
    pub fn of(namespace: &str, program: Option<&str>) -> Option<Self> {
        if namespace == OFFICIAL_NAMESPACE {
            return Some(Self::Official);
        }
        program.and_then(Self::parse)
    }
}

/// A repository as a caller sees it.
#[derive(Debug, Clone)]
pub struct RepoView {
    pub row: RepoRow,
    /// What the caller may do: pull, push, delete (which also means manage its settings).
    pub actions: Actions,
    pub badge: Option<Badge>,
}

impl RepoView {
    pub fn name(&self) -> &str {
        &self.row.name
    }

    /// The short name, after the namespace.
    pub fn short_name(&self) -> &str {
        self.row
            .name
            .split_once('/')
            .map_or(self.row.name.as_str(), |(_, r)| r)
    }

    /// The logo to show: the repository's (programs' members only), else the namespace's,
    /// else none (the default logo).
    pub fn logo(&self) -> Option<&str> {
        self.row
            .logo
            .as_deref()
            .filter(|_| self.badge.is_some())
            .or(self.row.namespace_logo.as_deref())
    }

    pub fn may_manage(&self) -> bool {
        self.actions.delete
    }
}

/// One platform of a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformView {
    pub digest: String,
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
    pub size: u64,
}

/// A tag in the tags view.
#[derive(Debug, Clone)]
pub struct TagView {
    pub name: String,
    pub digest: String,
    pub media_type: String,
    /// Everything the tag pulls: the manifest, its blobs, and for an index every platform.
    pub size: u64,
    pub images: Vec<PlatformView>,
    pub pushed_at: i64,
    pub pulled_at: Option<i64>,
    /// `image`, `index`, or the artifact type.
    pub content_type: String,
}

/// How a copy treats the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    Copy,
    Move,
}

pub(crate) fn viewer_of(who: &Principal) -> Viewer {
    match who {
        Principal::Anonymous => Viewer::Anonymous,
        // A token that may not pull sees what anyone sees.
        Principal::User(u) if !u.cap.pull => Viewer::Anonymous,
        Principal::User(u) => match &u.org_token {
            Some(org) => Viewer::Org(org.clone()),
            None if u.is_admin => Viewer::Admin,
            None => Viewer::User(u.id),
        },
    }
}

fn archived_error(name: &str) -> HubError {
    HubError::Conflict(format!(
        "the repository {name} is archived: it is read-only until an owner unarchives it in its settings"
    ))
}

/// Pulls counted on this node, flushed to the database every few seconds. Only counters:
/// a crash loses at most the last few seconds of pull counts, never a pull.
#[derive(Debug, Default)]
pub(crate) struct PullCounter {
    pending: Mutex<HashMap<PullKey, (i64, i64)>>,
}

/// (repository, tag if pulled by tag) → (pulls, last pull time).
type PullKey = (String, Option<String>);

const MAX_PENDING_PULL_KEYS: usize = 50_000;

impl Hub {
    /// A repository the caller may see; a private one they may not see is "not found", as a
    /// missing one is.
    pub async fn repo_view(&self, who: &Principal, name: &RepoName) -> Result<RepoView, HubError> {
        let not_found = || HubError::NotFound(format!("repository {name}"));
        let actions = self.actions_for(who, name).await?;
        if !actions.pull {
            return Err(not_found());
        }
        let row = self
            .db
            .repo_row(name.as_str())
            .await?
            .ok_or_else(not_found)?;
        let badge = Badge::of(&row.namespace, row.program.as_deref());
        Ok(RepoView {
            row,
            actions,
            badge,
        })
    }

    /// The repository, for a caller who must be able to manage it.
    async fn managed_repo(&self, who: &Principal, name: &RepoName) -> Result<RepoView, HubError> {
        let view = self.repo_view(who, name).await?;
        if !view.may_manage() {
            return Err(HubError::Forbidden(format!(
                "only owners and editors of {}, or users granted admin on the repository, can change {name}",
                name.namespace()
            )));
        }
        Ok(view)
    }

    /// Creates a repository explicitly; the caller must be able to push to its namespace.
    pub async fn create_repo(
        &self,
        who: &Principal,
        name: &RepoName,
        description: &str,
        overview: &str,
        private: bool,
    ) -> Result<RepoView, HubError> {
        if who.user().is_none() {
            return Err(HubError::Forbidden("sign in to create repositories".into()));
        }
        let actions = self.actions_for(who, name).await?;
        if !actions.push {
            return Err(HubError::Forbidden(format!(
                "you cannot create repositories in the namespace {}",
                name.namespace()
            )));
        }
        check_description(description)?;
        check_overview(overview)?;
        if !self
            .db
            .create_repo(name, description, overview, private)
            .await?
        {
            return Err(HubError::Conflict(format!(
                "the repository {name} already exists"
            )));
        }
        self.decisions.clear();
        self.repo_view(who, name).await
    }

    /// Changes a repository's information, visibility or archive state. An archived repository
    /// accepts only being unarchived (with other changes in the same request).
    pub async fn update_repo(
        &self,
        who: &Principal,
        name: &RepoName,
        mut patch: RepoPatch,
    ) -> Result<RepoView, HubError> {
        let view = self.managed_repo(who, name).await?;
        if view.row.archived && patch.archived != Some(false) {
            return Err(archived_error(name.as_str()));
        }
        if let Some(d) = &patch.description {
            check_description(d)?;
        }
        if let Some(o) = &patch.overview {
            check_overview(o)?;
        }
        if let Some(c) = &patch.categories {
            patch.categories = Some(check_categories(c)?);
        }
        self.db.update_repo(name.as_str(), &patch).await?;
        if patch.private.is_some() {
            self.decisions.clear();
        }
        self.repo_view(who, name).await
    }

    /// Deletes a repository with all its tags and manifests.
    pub async fn delete_repo(
        &self,
        registry: &Registry,
        who: &Principal,
        name: &RepoName,
    ) -> Result<(), HubError> {
        self.managed_repo(who, name).await?;
        self.db.delete_repo(name.as_str()).await?;
        registry.forget_repo(name);
        self.decisions.clear();
        Ok(())
    }

    /// Refuses changes to an archived repository's content (pushes, deletes).
    pub async fn check_not_archived(&self, name: &RepoName) -> Result<(), HubError> {
        if self.db.repo_archived(name.as_str()).await? {
            return Err(archived_error(name.as_str()));
        }
        Ok(())
    }

    /// Sets (`Some`) or clears (`None`) a repository's logo. Only organizations in a program
    /// have repository logos, and only their owners and editors set them.
    pub async fn set_repo_logo(
        &self,
        who: &Principal,
        name: &RepoName,
        data: Option<Bytes>,
    ) -> Result<(), HubError> {
        let view = self.repo_view(who, name).await?;
        let user = who
            .user()
            .ok_or_else(|| HubError::Forbidden("sign in to change logos".into()))?;
        // The sign-in must also reach the repository (a token's scope, an organization
        // token's own organization): `actions.delete` carries both.
        let editor = view.actions.delete
            && (user.acts_as_admin()
                || matches!(
                    self.db.org_role(name.namespace(), user.id).await?,
                    Some(wharf_db::OrgRole::Owner | wharf_db::OrgRole::Editor)
                ));
        if !editor {
            return Err(HubError::Forbidden(format!(
                "only a user with an owner or editor role for the organization {} can change the repository logo",
                name.namespace()
            )));
        }
        if !matches!(
            view.badge,
            Some(Badge::VerifiedPublisher | Badge::OpenSource | Badge::Official)
        ) {
            return Err(HubError::Forbidden(format!(
                "repository logos are a perk of the Verified Publisher and Sponsored Open Source programs; {} is in neither (apply from the organization's page)",
                name.namespace()
            )));
        }
        if view.row.archived {
            return Err(archived_error(name.as_str()));
        }
        let digest = match data {
            Some(bytes) => {
                let logo = check_logo(&bytes)?;
                let digest = Digest::sha256_of(&bytes).to_string();
                self.db.put_logo(&digest, logo.media_type, &bytes).await?;
                Some(digest)
            }
            None => None,
        };
        self.db
            .set_repo_logo(name.as_str(), digest.as_deref())
            .await?;
        Ok(())
    }

    /// A stored logo's media type and bytes.
    pub async fn logo(&self, digest: &str) -> Result<Option<(String, Vec<u8>)>, HubError> {
        Ok(self.db.logo(digest).await?)
    }

    /// A namespace's repositories that the caller may see.
    pub async fn namespace_repos(
        &self,
        who: &Principal,
        namespace: &str,
        order: RepoOrder,
        offset: u32,
        limit: u32,
    ) -> Result<(u64, Vec<RepoView>), HubError> {
        let (count, rows) = self
            .db
            .namespace_repos(namespace, viewer_of(who), order, offset, limit)
            .await?;
        Ok((count, self.views(who, rows).await?))
    }

    async fn views(&self, who: &Principal, rows: Vec<RepoRow>) -> Result<Vec<RepoView>, HubError> {
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let actions = match row.name.parse::<RepoName>().ok() {
                Some(n) => self.actions_for(who, &n).await?,
                None => Actions::PULL,
            };
            let badge = Badge::of(&row.namespace, row.program.as_deref());
            out.push(RepoView {
                row,
                actions,
                badge,
            });
        }
        Ok(out)
    }

    /// Searches names, descriptions and overviews; `badges` and `categories` filter (any of
    /// each). Ranked by relevance, then trusted programs, then pulls.
    pub async fn search(
        &self,
        who: &Principal,
        query: &str,
        badges: &[Badge],
        categories: &[String],
        offset: u32,
        limit: u32,
    ) -> Result<(u64, Vec<RepoView>), HubError> {
        if query.chars().any(char::is_control) {
            return Err(HubError::InvalidInput(
                "the search contains control characters; search for words".into(),
            ));
        }
        let terms: Vec<String> = query
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|t| !t.is_empty())
            .take(8)
            .map(|t| t.chars().take(64).collect::<String>().to_lowercase())
            .collect();
        // Filtering may name any number of categories, each from the list.
        let mut slugs = Vec::new();
        for c in categories {
            slugs.extend(check_categories(std::slice::from_ref(c))?);
        }
        let categories = slugs;
        let q = SearchQuery {
            terms,
            badges: badges.iter().map(|b| b.slug().to_owned()).collect(),
            categories,
            viewer: viewer_of(who),
            offset,
            limit,
        };
        let (count, rows) = self.db.search_repos(&q).await?;
        // Search results are public information or visible to the caller already; the
        // per-repository actions are not needed there.
        let views = rows
            .into_iter()
            .map(|row| RepoView {
                badge: Badge::of(&row.namespace, row.program.as_deref()),
                row,
                actions: Actions::PULL,
            })
            .collect();
        Ok((count, views))
    }

    /// Bytes a repository uses (each blob once).
    pub async fn repo_storage(
        &self,
        registry: &Registry,
        name: &RepoName,
    ) -> Result<u64, HubError> {
        match registry.db().repo_id(name).await? {
            Some(id) => Ok(self.db.repo_storage(id).await?),
            None => Ok(0),
        }
    }

    /// Bytes a namespace uses (a blob shared by several repositories counts once).
    pub async fn namespace_storage(&self, namespace: &str) -> Result<u64, HubError> {
        Ok(self.db.namespace_storage(namespace).await?)
    }

    /// The tags view: one page of tags with digest, size, platforms, pushed and pulled times.
    pub async fn tags_view(
        &self,
        registry: &Registry,
        view: &RepoView,
        order: TagOrder,
        offset: u32,
        limit: u32,
    ) -> Result<(u64, Vec<TagView>), HubError> {
        let repo = wharf_db::RepoId(view.row.id);
        let (count, rows) = self.db.tag_rows(repo, order, offset, limit).await?;
        let (_, tags) = self.tags_of(registry, view, rows).await?;
        Ok((count, tags))
    }

    async fn tags_of(
        &self,
        registry: &Registry,
        view: &RepoView,
        rows: Vec<wharf_db::TagRow>,
    ) -> Result<(u64, Vec<TagView>), HubError> {
        let repo = wharf_db::RepoId(view.row.id);
        let count = rows.len() as u64;
        let parents: Vec<i64> = rows.iter().map(|t| t.manifest_id).collect();
        let children = self.db.index_children(repo, &parents).await?;
        let mut ids = parents.clone();
        ids.extend(children.iter().map(|c| c.id));
        let sizes: HashMap<i64, u64> = self.db.manifest_sizes(&ids).await?.into_iter().collect();
        let name = view
            .row
            .name
            .parse::<RepoName>()
            .map_err(|_| ())
            .ok()
            .ok_or_else(|| HubError::Internal(format!("stored name {:?}", view.row.name)))?;
        let mut out = Vec::with_capacity(rows.len());
        for t in rows {
            let parsed = wharf_oci::parse_manifest(Some(&t.media_type), &t.payload).ok();
            let mut images = Vec::new();
            let mut size = sizes.get(&t.manifest_id).copied().unwrap_or(0);
            let content_type;
            match &parsed {
                Some(m) if m.kind == wharf_oci::ManifestKind::Index => {
                    content_type = "index".to_owned();
                    for d in &m.manifests {
                        let digest = d.digest.to_string();
                        let child = children
                            .iter()
                            .find(|c| c.parent_id == t.manifest_id && c.digest == digest);
                        let child_size = child
                            .and_then(|c| sizes.get(&c.id).copied())
                            .unwrap_or(d.size.max(0) as u64);
                        size += child_size;
                        let p = d.platform.as_ref();
                        // Attestations (unknown/unknown) are not platforms.
                        if p.is_some_and(|p| p.os == "unknown") {
                            continue;
                        }
                        images.push(PlatformView {
                            digest,
                            os: p.map(|p| p.os.clone()).unwrap_or_default(),
                            architecture: p.map(|p| p.architecture.clone()).unwrap_or_default(),
                            variant: p.and_then(|p| p.variant.clone()),
                            size: child_size,
                        });
                    }
                }
                Some(m) => {
                    // Parsing gives artifacts their config's type when they name none.
                    content_type = m
                        .artifact_type
                        .clone()
                        .filter(|t| !is_image_config(t))
                        .unwrap_or_else(|| "image".to_owned());
                    let (os, architecture, variant) = match &m.config {
                        Some(c) if is_image_config(&c.media_type) && c.size <= 1 << 20 => {
                            image_platform(registry, &name, &c.digest).await
                        }
                        _ => (String::new(), String::new(), None),
                    };
                    images.push(PlatformView {
                        digest: t.digest.clone(),
                        os,
                        architecture,
                        variant,
                        size,
                    });
                }
                None => content_type = "unknown".to_owned(),
            }
            out.push(TagView {
                name: t.name,
                digest: t.digest,
                media_type: t.media_type,
                size,
                images,
                pushed_at: t.pushed_at,
                pulled_at: t.pulled_at,
                content_type,
            });
        }
        Ok((count, out))
    }

    /// Deletes tags (or one image by digest, with its tags); needs delete rights and a
    /// repository that is not archived. Returns the references that were not there.
    pub async fn delete_references(
        &self,
        registry: &Registry,
        who: &Principal,
        name: &RepoName,
        references: &[Reference],
    ) -> Result<Vec<String>, HubError> {
        let view = self.repo_view(who, name).await?;
        if !view.actions.delete {
            return Err(HubError::Forbidden(format!(
                "you cannot delete tags or images in {name}"
            )));
        }
        if view.row.archived {
            return Err(archived_error(name.as_str()));
        }
        let mut missing = Vec::new();
        for r in references {
            match registry.manifest_delete(name, r).await {
                Ok(()) => {}
                Err(wharf_registry::RegistryError::ManifestUnknown(_)) => {
                    missing.push(r.to_string())
                }
                Err(e) => return Err(HubError::Internal(e.to_string())),
            }
        }
        Ok(missing)
    }

    /// Copies (or moves) an image — a tag or a digest, with an index's platforms and every
    /// referrer — into another repository on the server, without moving bytes: blobs are
    /// linked, manifests recorded again. The caller must be able to pull the source and push
    /// the target (and delete in the source, to move).
    #[allow(clippy::too_many_arguments)]
    pub async fn transfer_image(
        &self,
        registry: &Registry,
        who: &Principal,
        from: &RepoName,
        reference: &Reference,
        to: &RepoName,
        to_tag: Option<&Tag>,
        mode: Transfer,
    ) -> Result<Digest, HubError> {
        let source = self.repo_view(who, from).await?;
        if mode == Transfer::Move {
            if !source.actions.delete {
                return Err(HubError::Forbidden(format!(
                    "moving needs delete rights on {from}; copy instead"
                )));
            }
            if source.row.archived {
                return Err(archived_error(from.as_str()));
            }
        }
        if from == to {
            // Within one repository only a tag can move (or be copied) to a new tag: moving
            // by digest would delete the image the new tag points at.
            let same_tag = match (reference, to_tag) {
                (_, None) => true,
                (Reference::Tag(t), Some(n)) => t == n,
                (Reference::Digest(_), Some(_)) => mode == Transfer::Move,
            };
            if same_tag {
                return Err(HubError::InvalidInput(
                    "the target is the source; name another repository, or a new tag (a digest can be copied to a new tag, not moved)".into(),
                ));
            }
        }
        if !self.actions_for(who, to).await?.push {
            return Err(HubError::Forbidden(format!(
                "you cannot push to {to}; the target must be writable by you"
            )));
        }
        self.check_not_archived(to).await?;
        let map = |e: wharf_registry::RegistryError| match e {
            wharf_registry::RegistryError::ManifestUnknown(r) => {
                HubError::NotFound(format!("{r} in {from}"))
            }
            other => HubError::Internal(other.to_string()),
        };
        let root = registry.manifest_get(from, reference).await.map_err(map)?;
        let from_id = registry
            .db()
            .repo_id(from)
            .await?
            .ok_or_else(|| HubError::NotFound(format!("repository {from}")))?;
        let to_id = registry
            .ensure_repo_id(to)
            .await
            .map_err(|e| HubError::Internal(e.to_string()))?;
        // Children first, then the root, then referrers of the root and of its children.
        let parsed = wharf_oci::parse_manifest(Some(&root.media_type), &root.payload)
            .map_err(|e| HubError::Internal(e.to_string()))?;
        let mut subjects = vec![root.digest.clone()];
        for child in &parsed.manifests {
            let d = child.digest.to_string();
            self.copy_one(registry, from, from_id, to, to_id, &d, None)
                .await?;
            subjects.push(d);
        }
        let target_ref = match to_tag {
            Some(t) => Some(t.clone()),
            None => match reference {
                Reference::Tag(t) => Some(t.clone()),
                Reference::Digest(_) => None,
            },
        };
        self.copy_one(registry, from, from_id, to, to_id, &root.digest, target_ref)
            .await?;
        for subject in subjects {
            let Ok(subject) = subject.parse::<Digest>() else {
                continue;
            };
            let index = registry
                .referrers(from, &subject, None)
                .await
                .map_err(map)?;
            for r in index["manifests"].as_array().into_iter().flatten() {
                if let Some(d) = r["digest"].as_str() {
                    self.copy_one(registry, from, from_id, to, to_id, d, None)
                        .await?;
                }
            }
        }
        if mode == Transfer::Move {
            registry
                .manifest_delete(from, reference)
                .await
                .map_err(map)?;
        }
        root.digest
            .parse()
            .map_err(|_| HubError::Internal(format!("stored digest {}", root.digest)))
    }

    #[allow(clippy::too_many_arguments)]
    async fn copy_one(
        &self,
        registry: &Registry,
        from: &RepoName,
        from_id: wharf_db::RepoId,
        to: &RepoName,
        to_id: wharf_db::RepoId,
        digest: &str,
        tag: Option<Tag>,
    ) -> Result<(), HubError> {
        let d: Digest = digest
            .parse()
            .map_err(|_| HubError::Internal(format!("stored digest {digest}")))?;
        let m = registry
            .manifest_get(from, &Reference::Digest(d.clone()))
            .await
            .map_err(|e| HubError::Internal(e.to_string()))?;
        self.db.link_manifest_blobs(from_id, to_id, digest).await?;
        let reference = match tag {
            Some(t) => Reference::Tag(t),
            None => Reference::Digest(d),
        };
        registry
            .manifest_put(to, &reference, Some(&m.media_type), m.payload.clone())
            .await
            .map_err(|e| HubError::Internal(format!("copying {digest}: {e}")))?;
        Ok(())
    }

    /// Counts a pull of `repo` (by `tag`, if pulled by tag). Never waits on the database.
    pub fn record_pull(&self, repo: &str, tag: Option<&str>) {
        let mut pending = self.pulls.pending.lock().unwrap_or_else(|p| p.into_inner());
        let key = (repo.to_owned(), tag.map(str::to_owned));
        if pending.len() >= MAX_PENDING_PULL_KEYS && !pending.contains_key(&key) {
            // Bounded: a flood of distinct keys between flushes is counted only in logs.
            tracing::warn!("pull counter full; a pull was not counted");
            return;
        }
        let e = pending.entry(key).or_insert((0, 0));
        e.0 += 1;
        e.1 = wharf_db::now();
    }

    /// Writes the pulls counted on this node since the last flush.
    pub async fn flush_pulls(&self) -> Result<(), HubError> {
        let batch: Vec<wharf_db::PullCount> = {
            let mut pending = self.pulls.pending.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut *pending)
                .into_iter()
                .map(|((repo, tag), (count, at))| wharf_db::PullCount {
                    repo,
                    tag,
                    count,
                    at,
                })
                .collect()
        };
        if batch.is_empty() {
            return Ok(());
        }
        for chunk in batch.chunks(500) {
            self.db.record_pulls(chunk).await?;
        }
        Ok(())
    }

    /// A user's own namespace and every organization they belong to, in any role.
    pub async fn member_namespaces(&self, user: &User) -> Result<Vec<String>, HubError> {
        let mut out = vec![user.name.clone()];
        out.extend(
            self.db
                .orgs_of_user(user.id)
                .await?
                .into_iter()
                .map(|(o, _)| o),
        );
        Ok(out)
    }

    /// The namespaces a user may create repositories in: their own and their organizations'
    /// where they are owner or editor.
    pub async fn writable_namespaces(&self, user: &User) -> Result<Vec<String>, HubError> {
        let mut out = vec![user.name.clone()];
        for (org, role) in self.db.orgs_of_user(user.id).await? {
            if matches!(role, wharf_db::OrgRole::Owner | wharf_db::OrgRole::Editor) {
                out.push(org);
            }
        }
        Ok(out)
    }
}

fn is_image_config(media_type: &str) -> bool {
    media_type == "application/vnd.oci.image.config.v1+json"
        || media_type == "application/vnd.docker.container.image.v1+json"
}

/// OS, architecture and variant from an image's config blob ("" when unreadable).
async fn image_platform(
    registry: &Registry,
    repo: &RepoName,
    config: &Digest,
) -> (String, String, Option<String>) {
    #[derive(serde::Deserialize, Default)]
    struct Config {
        #[serde(default)]
        os: String,
        #[serde(default)]
        architecture: String,
        #[serde(default)]
        variant: Option<String>,
    }
    let Ok(bytes) = registry.blob_bytes(repo, config, 1 << 20).await else {
        return (String::new(), String::new(), None);
    };
    let c: Config = serde_json::from_slice(&bytes).unwrap_or_default();
    (c.os, c.architecture, c.variant)
}

impl Hub {
    /// One tag of the tags view.
    pub async fn tag_view(
        &self,
        registry: &Registry,
        view: &RepoView,
        tag: &str,
    ) -> Result<Option<TagView>, HubError> {
        let repo = wharf_db::RepoId(view.row.id);
        let Some(row) = self.db.tag_row(repo, tag).await? else {
            return Ok(None);
        };
        // The page query orders by name; find the one tag by asking for it alone.
        let (_, tags) = self.tags_of(registry, view, vec![row]).await?;
        Ok(tags.into_iter().next())
    }

    /// Whether a namespace is a user or an organization.
    pub async fn namespace_kind(&self, ns: &str) -> Result<Option<&'static str>, HubError> {
        Ok(self.db.namespace_kind(ns).await?.map(|k| match k {
            wharf_db::NamespaceKind::User => "user",
            wharf_db::NamespaceKind::Org => "organization",
        }))
    }

    /// Whether `user` belongs to the organization `org`.
    pub async fn is_org_member(&self, org: &str, user: &User) -> Result<bool, HubError> {
        Ok(self.db.org_role(org, user.id).await?.is_some())
    }

    /// A user's role in an organization.
    pub async fn org_role_of(
        &self,
        org: &str,
        user: &User,
    ) -> Result<Option<wharf_db::OrgRole>, HubError> {
        Ok(self.db.org_role(org, user.id).await?)
    }

    /// The digest of a namespace's logo.
    pub async fn namespace_logo(&self, ns: &str) -> Result<Option<String>, HubError> {
        Ok(self.db.namespace_program(ns).await?.1)
    }
}
