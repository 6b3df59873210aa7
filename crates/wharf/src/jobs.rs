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
