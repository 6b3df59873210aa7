//! Row types of every report, each serializing to its header's columns in order, and the CSV
//! writer. The database-backed jobs fill the same rows.

use std::io;

use serde::Serialize;

use super::columns;

/// A report row: its fields serialize in the order of `COLUMNS`.
pub trait Report: Serialize {
    const COLUMNS: &'static [&'static str];
}

/// Writes the header, then every row, as CSV; returns the writer.
pub fn write_csv<W: io::Write, R: Report>(
    out: W,
    rows: impl IntoIterator<Item = R>,
) -> Result<W, csv::Error> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(out);
    writer.write_record(R::COLUMNS)?;
    for row in rows {
        writer.serialize(row)?;
    }
    writer.flush()?;
    writer.into_inner().map_err(|e| e.into_error().into())
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryRow {
    pub date_granularity: String,
    pub date_reference: String,
    pub publisher_name: String,
    /// `repository`, `tag` or `digest`.
    pub level: String,
    pub reference: String,
    pub data_downloads: u64,
    pub version_checks: u64,
    pub event_count: u64,
}

impl Report for SummaryRow {
    const COLUMNS: &'static [&'static str] = columns::SUMMARY;
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendsRow {
    pub date_granularity: String,
    pub date_reference: String,
    pub publisher_name: String,
    pub image_repository: String,
    pub namespace: String,
    pub ip_country: String,
    pub cloud_service_provider: String,
    pub user_agent: String,
    pub tag: String,
    pub data_downloads: u64,
    pub version_checks: u64,
    pub pulls: u64,
    pub unique_authenticated_users: u64,
    pub unique_unauthenticated_users: u64,
}

impl Report for TrendsRow {
    const COLUMNS: &'static [&'static str] = columns::TRENDS;
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TechnographicRow {
    pub date_granularity: String,
    pub date_reference: String,
    pub publisher_id: String,
    pub publisher_name: String,
    pub dvpp_image: String,
    pub paired_image: String,
    pub users: u64,
    pub total_pullers: u64,
    /// A percentage, two decimals: 25.5 means a quarter and a bit.
    pub pct_users: f64,
    pub domains: u64,
    pub total_domains: u64,
    pub pct_domains: f64,
}

impl Report for TechnographicRow {
    const COLUMNS: &'static [&'static str] = columns::TECHNOGRAPHIC;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TechnographicCompanyRow {
    pub date_granularity: String,
    pub date_reference: String,
    pub publisher_name: String,
    pub domain: String,
    pub dvpp_image: String,
    pub paired_image: String,
}

impl Report for TechnographicCompanyRow {
    const COLUMNS: &'static [&'static str] = columns::TECHNOGRAPHIC_COMPANIES;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackedCompanyRow {
    pub date_granularity: String,
    pub date_reference: String,
    pub publisher_name: String,
    pub domain: String,
    pub ip_country: String,
    pub cloud_service_provider: String,
    pub user_agent: String,
    pub inferred_use_case: String,
    pub image_repository: String,
    pub data_downloads: u64,
    pub version_checks: u64,
    pub pulls: u64,
    pub unique_authenticated_users: u64,
}

impl Report for TrackedCompanyRow {
    const COLUMNS: &'static [&'static str] = columns::TRACKED_COMPANIES;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RawPullRow {
    pub action: String,
    pub action_day: String,
    pub country: String,
    pub digest: String,
    pub http_method: String,
    pub host: String,
    pub namespace: String,
    pub reference: String,
    pub repository: String,
    pub tag: String,
    pub timestamp: String,
    #[serde(rename = "type")]
    pub ip_type: String,
    pub user_agent_tool: String,
    pub user_agent_version: String,
    pub domain: String,
    pub owner: String,
}

impl Report for RawPullRow {
    const COLUMNS: &'static [&'static str] = columns::RAW_PULLS;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepositorySummaryRow {
    pub namespace: String,
    pub repository: String,
    pub unique_ip_addresses: u64,
    pub pull_by_tag: u64,
    pub pull_by_digest: u64,
    pub version_check: u64,
    pub owner: String,
}

impl Report for RepositorySummaryRow {
    const COLUMNS: &'static [&'static str] = columns::REPOSITORY_SUMMARY;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReferenceSummaryRow {
    pub namespace: String,
    pub repository: String,
    pub reference: String,
    pub unique_ip_addresses: u64,
    pub pull_by_tag: u64,
    pub pull_by_digest: u64,
    pub version_check: u64,
    pub owner: String,
}

impl Report for ReferenceSummaryRow {
    const COLUMNS: &'static [&'static str] = columns::REFERENCE_SUMMARY;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExtensionCoreRow {
    pub installs: u64,
    pub total_installs: u64,
    pub uninstalls: u64,
    pub total_uninstalls: u64,
    pub updates: u64,
}

impl Report for ExtensionCoreRow {
    const COLUMNS: &'static [&'static str] = columns::EXTENSION_CORE_SUMMARY;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExtensionPremiumRow {
    pub installs: u64,
    pub unique_installs: u64,
    pub uninstalls: u64,
    pub unique_uninstalls: u64,
    pub usage: u64,
    pub unique_users: u64,
}

impl Report for ExtensionPremiumRow {
    const COLUMNS: &'static [&'static str] = columns::EXTENSION_PREMIUM_SUMMARY;
}
