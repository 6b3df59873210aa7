//! Pull analytics: what a pull request tells about its client (user agent, origin), how
//! request sequences become actions, and the reports built from them.

pub mod agent;
pub mod classify;
pub mod enrich;
pub mod privacy;
pub mod report;
