//! A node-local cache of resolved manifests, so a manifest GET/HEAD on a hit touches neither
//! disk nor database. It is only a cache: every write through this node drops the affected
//! repository's entries, and entries expire after a short time so that writes made by other
//! nodes (scale-out) become visible within that bound.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;

/// A manifest ready to serve.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub digest: String,
    pub media_type: String,
    pub payload: Bytes,
}

#[derive(Debug)]
struct Entry {
    manifest: Arc<Manifest>,
    at: Instant,
}

#[derive(Debug)]
pub(crate) struct ManifestCache {
    repos: RwLock<HashMap<String, HashMap<String, Entry>>>,
    ttl: Duration,
    max_entries: usize,
}

impl ManifestCache {
    pub(crate) fn new(ttl: Duration, max_entries: usize) -> Self {
        Self {
            repos: RwLock::new(HashMap::new()),
            ttl,
            max_entries,
        }
    }

    pub(crate) fn get(&self, repo: &str, reference: &str) -> Option<Arc<Manifest>> {
        if self.ttl.is_zero() {
            return None;
        }
        let repos = self.repos.read().unwrap_or_else(|p| p.into_inner());
        let e = repos.get(repo)?.get(reference)?;
        (e.at.elapsed() < self.ttl).then(|| e.manifest.clone())
    }

    pub(crate) fn put(&self, repo: &str, reference: &str, manifest: Arc<Manifest>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut repos = self.repos.write().unwrap_or_else(|p| p.into_inner());
        let total: usize = repos.values().map(HashMap::len).sum();
        if total >= self.max_entries {
            repos.clear();
        }
        repos.entry(repo.to_owned()).or_default().insert(
            reference.to_owned(),
            Entry {
                manifest,
                at: Instant::now(),
            },
        );
    }

    pub(crate) fn invalidate(&self, repo: &str) {
        let mut repos = self.repos.write().unwrap_or_else(|p| p.into_inner());
        repos.remove(repo);
    }
}
