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
