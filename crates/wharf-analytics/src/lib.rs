//! Pull analytics: what a pull request tells about its client (user agent, origin), how
//! request sequences become actions, and the reports built from them. Pure logic: the
//! registry records events, a background job classifies and enriches them and fills reports
//! with these types; nothing here touches the database or the network.
//!
//! - [`agent`]: user agent → tool and version; tool → `INFERRED_USE_CASE`.
//! - [`classify`]: manifest requests → `version_check` / `pull_by_tag` / `pull_by_digest`.
//! - [`enrich`]: IP → country, cloud provider, IP type, ISP, domain (MaxMind DB, cloud ranges).
//! - [`privacy`]: period-keyed IP hashes; personal/disposable/university domain exclusions.
//! - [`report`]: the seeds' CSV columns, periods, row types and in-memory report computation.

pub mod agent;
pub mod classify;
pub mod enrich;
pub mod privacy;
pub mod report;
