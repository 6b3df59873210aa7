//! Every report's CSV header, with exactly the seeds' column names and order.

/// DVP Summary report (levels `repository`, `tag`, `digest` in one file).
pub const SUMMARY: &[&str] = &[
    "DATE_GRANULARITY",
    "DATE_REFERENCE",
    "PUBLISHER_NAME",
    "LEVEL",
    "REFERENCE",
    "DATA_DOWNLOADS",
    "VERSION_CHECKS",
    "EVENT_COUNT",
];

/// DVP Trends report.
pub const TRENDS: &[&str] = &[
    "DATE_GRANULARITY",
    "DATE_REFERENCE",
    "PUBLISHER_NAME",
    "IMAGE_REPOSITORY",
    "NAMESPACE",
    "IP_COUNTRY",
    "CLOUD_SERVICE_PROVIDER",
    "USER_AGENT",
    "TAG",
    "DATA_DOWNLOADS",
    "VERSION_CHECKS",
    "PULLS",
    "UNIQUE_AUTHENTICATED_USERS",
    "UNIQUE_UNAUTHENTICATED_USERS",
];

/// DVP Technographic report.
pub const TECHNOGRAPHIC: &[&str] = &[
    "DATE_GRANULARITY",
    "DATE_REFERENCE",
    "PUBLISHER_ID",
    "PUBLISHER_NAME",
    "DVPP_IMAGE",
    "PAIRED_IMAGE",
    "USERS",
    "TOTAL_PULLERS",
    "PCT_USERS",
    "DOMAINS",
    "TOTAL_DOMAINS",
    "PCT_DOMAINS",
];

/// DVP Technographic companies report.
pub const TECHNOGRAPHIC_COMPANIES: &[&str] = &[
    "DATE_GRANULARITY",
    "DATE_REFERENCE",
    "PUBLISHER_NAME",
    "DOMAIN",
    "DVPP_IMAGE",
    "PAIRED_IMAGE",
];

/// DVP Tracked companies report.
pub const TRACKED_COMPANIES: &[&str] = &[
    "DATE_GRANULARITY",
    "DATE_REFERENCE",
    "PUBLISHER_NAME",
    "DOMAIN",
    "IP_COUNTRY",
    "CLOUD_SERVICE_PROVIDER",
    "USER_AGENT",
    "INFERRED_USE_CASE",
    "IMAGE_REPOSITORY",
    "DATA_DOWNLOADS",
    "VERSION_CHECKS",
    "PULLS",
    "UNIQUE_AUTHENTICATED_USERS",
];

/// Image pulls raw data (DSOS and legacy DVP): one row per pull. The seeds' data point
/// "Tag (included when available)" is the column `Tag`, empty when the pull named a digest.
pub const RAW_PULLS: &[&str] = &[
    "Action",
    "Action day",
    "Country",
    "Digest",
    "HTTP method",
    "Host",
    "Namespace",
    "Reference",
    "Repository",
    "Tag",
    "Timestamp",
    "Type",
    "User agent tool",
    "User agent version",
    "Domain",
    "Owner",
];

/// Image pulls summary data, repository level.
pub const REPOSITORY_SUMMARY: &[&str] = &[
    "Namespace",
    "Repository",
    "Unique IP address",
    "Pull by tag",
    "Pull by digest",
    "Version check",
    "Owner",
];

/// Image pulls summary data, tag or digest level.
pub const REFERENCE_SUMMARY: &[&str] = &[
    "Namespace",
    "Repository",
    "Reference",
    "Unique IP address",
    "Pull by tag",
    "Pull by digest",
    "Version check",
    "Owner",
];

/// Extension core summary data.
pub const EXTENSION_CORE_SUMMARY: &[&str] = &[
    "Installs",
    "TotalInstalls",
    "Uninstalls",
    "TotalUninstalls",
    "Updates",
];

/// Extension premium summary data.
pub const EXTENSION_PREMIUM_SUMMARY: &[&str] = &[
    "Installs",
    "UniqueInstalls",
    "Uninstalls",
    "UniqueUninstalls",
    "Usage",
    "UniqueUsers",
];

/// What the DVP reports write for a missing value (the seeds' `TAG`: "or `\N` if no specific
/// tag was used").
pub const NULL: &str = "\\N";
