//! Background work: long-lived loops that stop on the shutdown signal. Each pass is idempotent
//! and safe to run on several nodes at once.

use std::time::Duration;

use tokio::sync::watch;
use wharf_registry::Registry;

/// Removes expired upload sessions every `interval`.
pub async fn sweep_uploads(
    registry: std::sync::Arc<Registry>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        match registry.sweep_uploads().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(uploads.removed = n, "expired upload sessions removed"),
            Err(e) => tracing::warn!(error = %e, "upload sweep failed; retrying next interval"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Writes the pulls counted on this node to the database every `interval`, and once more on
/// shutdown. Counters only: a crash loses at most one interval of pull counts.
pub async fn flush_pulls(
    hub: std::sync::Arc<wharf_hub::Hub>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let stop = tokio::select! {
            _ = tokio::time::sleep(interval) => false,
            _ = shutdown.changed() => true,
        };
        if let Err(e) = hub.flush_pulls().await {
            tracing::warn!(error = %e, "writing pull counts failed; they are dropped");
        }
        if stop {
            return;
        }
    }
}

/// Shares this node's rate limit counts with the other nodes every `interval` (and once more
/// on shutdown), and prunes counters of ended windows about once an hour.
pub async fn sync_rate_limits(
    hub: std::sync::Arc<wharf_hub::Hub>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    if !hub.limits_enabled() {
        return;
    }
    let mut last_prune = tokio::time::Instant::now();
    loop {
        let stop = tokio::select! {
            _ = tokio::time::sleep(interval) => false,
            _ = shutdown.changed() => true,
        };
        if let Err(e) = hub.sync_rate_limits().await {
            tracing::warn!(error = %e, "sharing rate limit counts failed; retrying next interval");
        }
        if last_prune.elapsed() >= Duration::from_secs(3600) {
            last_prune = tokio::time::Instant::now();
            match hub.prune_rate_counters().await {
                Ok(n) if n > 0 => {
                    tracing::info!(counters.removed = n, "old rate limit counters removed")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "pruning rate limit counters failed"),
            }
        }
        if stop {
            return;
        }
    }
}

/// Classifies pull events into actions every `interval` and deletes raw events past their
/// retention about once an hour. Safe on several nodes: the classifier's watermark moves by
/// compare-and-swap.
pub async fn classify_pulls(
    analytics: std::sync::Arc<wharf_hub::analytics::Analytics>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    if !analytics.enabled() {
        return;
    }
    let mut last_prune: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
        // A run stopped by shutdown stores nothing (its transaction is rolled back with the
        // watermark), so stopping does not wait for a backlog to be classified.
        let classified = tokio::select! {
            r = analytics.classify_pending() => r,
            _ = shutdown.changed() => return,
        };
        match classified {
            Ok(0) => {}
            Ok(n) => tracing::debug!(actions = n, "pull events classified"),
            Err(e) => {
                tracing::warn!(error = %e, "classifying pull events failed; retrying next interval")
            }
        }
        if last_prune.is_none_or(|t| t.elapsed() >= Duration::from_secs(3600)) {
            last_prune = Some(tokio::time::Instant::now());
            match analytics.prune().await {
                Ok(n) if n > 0 => tracing::info!(
                    events.removed = n,
                    "pull events past their retention removed"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "removing old pull events failed"),
            }
        }
    }
}
