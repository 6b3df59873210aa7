//! Configuration, layered and validated once: defaults → `wharf.toml` → `WHARF_*` environment
//! variables → command-line flags. Unknown keys are refused.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Keys accepted from the environment as `WHARF_<KEY>`.
const ENV_KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "tls_cert",
    "tls_key",
    "max_blob_bytes",
    "manifest_cache_ttl_secs",
    "upload_expiry_secs",
    "upload_sweep_interval_secs",
    "auth",
    "public_url",
    "token_ttl_secs",
    "database",
    "database_max_connections",
    "storage",
    "s3_access_key_id",
    "s3_secret_access_key",
    "trusted_proxies",
    "rate_limits",
    "anonymous_pull_limit",
    "authenticated_pull_limit",
    "pull_limit_window_secs",
    "api_request_limit",
    "api_limit_window_secs",
    "rate_limit_sync_ms",
    "analytics",
    "analytics_queue",
    "analytics_flush_ms",
    "analytics_retention_days",
    "analytics_country_db",
    "analytics_asn_db",
    "analytics_isp_db",
    "analytics_connection_type_db",
    "analytics_domain_db",
    "analytics_enterprise_db",
    "analytics_aws_ip_ranges",
    "analytics_gcp_ip_ranges",
    "analytics_azure_service_tags",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address and port to listen on; port 0 picks a free port (the ready line says which).
    pub listen: SocketAddr,
    /// Where wharf keeps its database and blobs.
    pub data_dir: PathBuf,
    /// PEM certificate chain; with `tls_key`, wharf serves HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Largest blob accepted, in bytes.
    pub max_blob_bytes: u64,
    /// How long a resolved manifest is served from memory (writes through this node drop it at
    /// once; other nodes see a change after this long); 0 disables the cache. Default: 60
    /// with SQLite (one node), 0 with PostgreSQL (many nodes, where a delete on one node must
    /// be seen at once on the others).
    pub manifest_cache_ttl_secs: Option<u64>,
    /// Upload sessions idle this long are removed.
    pub upload_expiry_secs: u64,
    /// How often the sweeper looks for expired uploads.
    pub upload_sweep_interval_secs: u64,
    /// Require accounts: anonymous users may only pull public repositories, pushes need a
    /// user with write access (docker login). Turn off only on a trusted network.
    pub auth: bool,
    /// The URL clients reach wharf at (for the token realm), when the Host header is not it.
    pub public_url: Option<String>,
    /// Lifetime of registry tokens, in seconds.
    pub token_ttl_secs: u64,
    /// Where the metadata lives: `postgres://USER:PASSWORD@HOST:PORT/DB` to share it among
    /// several nodes, or `sqlite://PATH`. Default: SQLite at `DATA_DIR/wharf.db`.
    pub database: Option<String>,
    /// Connections each node keeps to PostgreSQL at most.
    pub database_max_connections: u32,
    /// Where blobs live: `s3://BUCKET[/PREFIX]?endpoint=URL&region=R` for an S3-compatible
    /// store shared among nodes, or a directory. Default: `DATA_DIR/storage`.
    pub storage: Option<String>,
    /// S3 access key id (else `AWS_ACCESS_KEY_ID`).
    pub s3_access_key_id: Option<String>,
    /// S3 secret access key (else `AWS_SECRET_ACCESS_KEY`).
    pub s3_secret_access_key: Option<String>,
    /// Comma-separated IP addresses of load balancers in front of wharf; requests from them
    /// are attributed to the client their `X-Forwarded-For` names.
    pub trusted_proxies: Option<String>,
    /// Limit pulls (manifest GETs) and JSON API requests per client, as Docker Hub does.
    pub rate_limits: bool,
    /// Pulls per window for anonymous clients, per IPv4 address or IPv6 /64.
    pub anonymous_pull_limit: u64,
    /// Pulls per window for signed-in users (administrators can set other limits per user,
    /// organization or address range, or exempt them).
    pub authenticated_pull_limit: u64,
    /// The pull window, in seconds.
    pub pull_limit_window_secs: u64,
    /// JSON API requests per API window, per user or address.
    pub api_request_limit: u64,
    /// The JSON API's window, in seconds.
    pub api_limit_window_secs: u64,
    /// How often each node shares its counts with the others, in milliseconds: nodes can
    /// disagree by the pulls made in about this long.
    pub rate_limit_sync_ms: u64,
    /// Record every pull for the analytics reports (addresses only as keyed hashes).
    pub analytics: bool,
    /// Pull events waiting to be stored at most; more are dropped and counted
    /// (`wharf_analytics_events_dropped_total` on `/metrics`).
    pub analytics_queue: usize,
    /// How often captured pull events are stored, in milliseconds: a crash loses at most the
    /// events of about this long.
    pub analytics_flush_ms: u64,
    /// Days raw pull events are kept; the classified actions the reports read stay.
    pub analytics_retention_days: u64,
    /// MaxMind GeoIP2/GeoLite2 Country or City database (country).
    pub analytics_country_db: Option<PathBuf>,
    /// MaxMind GeoLite2/GeoIP2 ASN database.
    pub analytics_asn_db: Option<PathBuf>,
    /// MaxMind GeoIP2 ISP database.
    pub analytics_isp_db: Option<PathBuf>,
    /// MaxMind GeoIP2 Connection-Type database (IP type when no user type is known).
    pub analytics_connection_type_db: Option<PathBuf>,
    /// MaxMind GeoIP2 Domain database.
    pub analytics_domain_db: Option<PathBuf>,
    /// MaxMind GeoIP2 Enterprise database (country, IP type, ISP and domain).
    pub analytics_enterprise_db: Option<PathBuf>,
    /// AWS's published `ip-ranges.json`.
    pub analytics_aws_ip_ranges: Option<PathBuf>,
    /// Google Cloud's published `cloud.json`.
    pub analytics_gcp_ip_ranges: Option<PathBuf>,
    /// Azure's Service Tags JSON (`ServiceTags_Public_*.json`).
    pub analytics_azure_service_tags: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 5000)),
            data_dir: PathBuf::from("wharf-data"),
            tls_cert: None,
            tls_key: None,
            max_blob_bytes: 64 << 30,
            manifest_cache_ttl_secs: None,
            upload_expiry_secs: 24 * 3600,
            upload_sweep_interval_secs: 600,
            auth: true,
            public_url: None,
            token_ttl_secs: 300,
            database: None,
            database_max_connections: 16,
            storage: None,
            s3_access_key_id: None,
            s3_secret_access_key: None,
            trusted_proxies: None,
            rate_limits: false,
            anonymous_pull_limit: 100,
            authenticated_pull_limit: 200,
            pull_limit_window_secs: 6 * 3600,
            api_request_limit: 600,
            api_limit_window_secs: 60,
            rate_limit_sync_ms: 1000,
            analytics: true,
            analytics_queue: 65_536,
            analytics_flush_ms: 1000,
            analytics_retention_days: 90,
            analytics_country_db: None,
            analytics_asn_db: None,
            analytics_isp_db: None,
            analytics_connection_type_db: None,
            analytics_domain_db: None,
            analytics_enterprise_db: None,
            analytics_aws_ip_ranges: None,
            analytics_gcp_ip_ranges: None,
            analytics_azure_service_tags: None,
        }
    }
}

/// Overrides given as flags; only the ones present are applied.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<bool>,
}

impl Config {
    /// Loads the layered configuration. `file` is an explicit config path; without it,
    /// `wharf.toml` in the working directory is read when present.
    pub fn load(file: Option<&Path>, overrides: Overrides) -> anyhow::Result<Self> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                if !path.exists() {
                    anyhow::bail!("config file {} does not exist", path.display());
                }
                fig = fig.merge(Toml::file(path));
            }
            None => fig = fig.merge(Toml::file("wharf.toml")),
        }
        let fig = fig
            .merge(Env::prefixed("WHARF_").only(ENV_KEYS))
            .merge(Serialized::globals(overrides));
        let config: Config = fig.extract().map_err(|e| {
            let msgs: Vec<String> = e.into_iter().map(|e| e.to_string()).collect();
            anyhow::anyhow!("invalid configuration: {}", msgs.join("; "))
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) | (None, Some(_)) => {
                anyhow::bail!(
                    "tls_cert and tls_key must be given together (--tls-cert and --tls-key)"
                )
            }
            _ => {}
        }
        if self.max_blob_bytes == 0 {
            anyhow::bail!("max_blob_bytes must be at least 1");
        }
        if let Some(u) = &self.public_url
            && (!(u.starts_with("http://") || u.starts_with("https://")) || u.contains(['"', ' ']))
        {
            anyhow::bail!("public_url {u:?} must be an http:// or https:// URL");
        }
        if !(10..=86_400).contains(&self.token_ttl_secs) {
            anyhow::bail!("token_ttl_secs must be between 10 and 86400");
        }
        if self.upload_sweep_interval_secs == 0 {
            anyhow::bail!("upload_sweep_interval_secs must be at least 1");
        }
        if let Some(db) = &self.database
            && !["postgres://", "postgresql://", "sqlite://"]
                .iter()
                .any(|p| db.starts_with(p))
        {
            anyhow::bail!(
                "database {:?} must be postgres://USER:PASSWORD@HOST:PORT/DB or sqlite://PATH (--database, WHARF_DATABASE)",
                wharf_db::redact_url(db)
            );
        }
        self.trusted_proxies()?;
        for (key, value) in [
            ("anonymous_pull_limit", self.anonymous_pull_limit),
            ("authenticated_pull_limit", self.authenticated_pull_limit),
            ("api_request_limit", self.api_request_limit),
        ] {
            if value == 0 {
                anyhow::bail!(
                    "{key} must be at least 1 (turn limits off with rate_limits = false)"
                );
            }
        }
        for (key, value) in [
            ("pull_limit_window_secs", self.pull_limit_window_secs),
            ("api_limit_window_secs", self.api_limit_window_secs),
        ] {
            if !(1..=31 * 86_400).contains(&value) {
                anyhow::bail!("{key} must be between 1 and 2678400 (31 days)");
            }
        }
        if !(1..=10_000_000).contains(&self.analytics_queue) {
            anyhow::bail!("analytics_queue must be between 1 and 10000000");
        }
        if !(10..=60_000).contains(&self.analytics_flush_ms) {
            anyhow::bail!("analytics_flush_ms must be between 10 and 60000");
        }
        if !(1..=36_500).contains(&self.analytics_retention_days) {
            anyhow::bail!("analytics_retention_days must be between 1 and 36500");
        }
        if !(10..=60_000).contains(&self.rate_limit_sync_ms) {
            anyhow::bail!("rate_limit_sync_ms must be between 10 and 60000");
        }
        if self.database_max_connections == 0 {
            anyhow::bail!("database_max_connections must be at least 1");
        }
        if let Some(st) = &self.storage {
            if st.starts_with("s3://") {
                if let Some(c) = self.s3_config()?
                    && c.part_size.saturating_mul(10_000) < self.max_blob_bytes
                {
                    anyhow::bail!(
                        "storage: part_size={} allows blobs of at most {} bytes (S3 takes 10000 parts), less than max_blob_bytes={}; raise part_size or lower max_blob_bytes",
                        c.part_size,
                        c.part_size * 10_000,
                        self.max_blob_bytes
                    );
                }
            } else if st.contains("://") {
                anyhow::bail!(
                    "storage {st:?} must be s3://BUCKET/PREFIX?endpoint=URL or a directory (--storage, WHARF_STORAGE)"
                );
            }
        }
        Ok(())
    }

    /// The parsed `trusted_proxies`.
    pub fn trusted_proxies(&self) -> anyhow::Result<Vec<std::net::IpAddr>> {
        self.trusted_proxies
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| {
                a.parse().map_err(|_| {
                    anyhow::anyhow!(
                        "trusted_proxies: {a:?} is not an IP address (WHARF_TRUSTED_PROXIES=10.0.0.1,10.0.0.2)"
                    )
                })
            })
            .collect()
    }

    /// The rate limit settings for the hub.
    pub fn limits(&self) -> wharf_hub::LimitConfig {
        use std::time::Duration;
        wharf_hub::LimitConfig {
            enabled: self.rate_limits,
            anonymous: self.anonymous_pull_limit,
            authenticated: self.authenticated_pull_limit,
            window: Duration::from_secs(self.pull_limit_window_secs),
            api_requests: self.api_request_limit,
            api_window: Duration::from_secs(self.api_limit_window_secs),
            sync_interval: Duration::from_millis(self.rate_limit_sync_ms),
        }
    }

    /// The analytics settings for the hub.
    pub fn analytics(&self) -> wharf_hub::analytics::AnalyticsConfig {
        use std::time::Duration;
        wharf_hub::analytics::AnalyticsConfig {
            enabled: self.analytics,
            queue: self.analytics_queue,
            flush_interval: Duration::from_millis(self.analytics_flush_ms),
            retention: Duration::from_secs(self.analytics_retention_days * 86_400),
            enrich: wharf_analytics::enrich::EnrichConfig {
                country_db: self.analytics_country_db.clone(),
                asn_db: self.analytics_asn_db.clone(),
                isp_db: self.analytics_isp_db.clone(),
                connection_type_db: self.analytics_connection_type_db.clone(),
                domain_db: self.analytics_domain_db.clone(),
                enterprise_db: self.analytics_enterprise_db.clone(),
                aws_ip_ranges: self.analytics_aws_ip_ranges.clone(),
                gcp_ip_ranges: self.analytics_gcp_ip_ranges.clone(),
                azure_service_tags: self.analytics_azure_service_tags.clone(),
            },
            ..Default::default()
        }
    }

    /// Whether the metadata is in PostgreSQL (shared by several nodes).
    pub fn shared_database(&self) -> bool {
        self.database
            .as_deref()
            .is_some_and(|d| d.starts_with("postgres"))
    }

    /// The manifest cache's lifetime: as configured, else 60 s for one node and off for many.
    pub fn manifest_cache_ttl(&self) -> std::time::Duration {
        let default = if self.shared_database() { 0 } else { 60 };
        std::time::Duration::from_secs(self.manifest_cache_ttl_secs.unwrap_or(default))
    }

    /// The S3 settings when `storage` is an `s3://` URL.
    pub fn s3_config(&self) -> anyhow::Result<Option<wharf_storage::S3Config>> {
        let Some(url) = self.storage.as_deref().filter(|s| s.starts_with("s3://")) else {
            return Ok(None);
        };
        let mut c = wharf_storage::S3Config::from_url(url)
            .map_err(|e| anyhow::anyhow!("{e} (--storage, WHARF_STORAGE)"))?;
        c.access_key_id = self
            .s3_access_key_id
            .clone()
            .or_else(|| std::env::var("AWS_ACCESS_KEY_ID").ok());
        c.secret_access_key = self
            .s3_secret_access_key
            .clone()
            .or_else(|| std::env::var("AWS_SECRET_ACCESS_KEY").ok());
        if c.access_key_id.is_some() != c.secret_access_key.is_some() {
            anyhow::bail!(
                "s3_access_key_id and s3_secret_access_key must be given together (WHARF_S3_ACCESS_KEY_ID, WHARF_S3_SECRET_ACCESS_KEY, or AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"
            );
        }
        Ok(Some(c))
    }
}

#[cfg(test)]
#[expect(
    clippy::result_large_err,
    reason = "figment::Jail's closures return figment::Error"
)]
mod tests {
    use super::*;

    #[test]
    fn defaults_files_env_and_flags_layer_in_order() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "wharf.toml",
                "listen = \"127.0.0.1:6000\"\ndata_dir = \"from-file\"\nupload_expiry_secs = 5\n",
            )?;
            jail.set_env("WHARF_DATA_DIR", "from-env");
            let c = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(c.listen.to_string(), "127.0.0.1:6000");
            assert_eq!(c.data_dir, PathBuf::from("from-env"));
            assert_eq!(c.upload_expiry_secs, 5);
            let c = Config::load(
                None,
                Overrides {
                    data_dir: Some("from-flag".into()),
                    ..Default::default()
                },
            )
            .map_err(|e| e.to_string())?;
            assert_eq!(c.data_dir, PathBuf::from("from-flag"));
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("wharf.toml", "lisen = \"127.0.0.1:1\"\n")?;
            let e = Config::load(None, Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains("lisen"), "{e}");
            jail.create_file("wharf.toml", "listen = \"nowhere\"\n")?;
            let e = Config::load(None, Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains("listen"), "{e}");
            Ok(())
        });
    }
}
