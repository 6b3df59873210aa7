//! Offline enrichment of a client IP: country (`IP_COUNTRY`, raw `Country`), cloud provider
//! (`CLOUD_SERVICE_PROVIDER`, raw `Host`), IP type (raw `Type`: `business`, `isp`, `hosting`,
//! `education` or null), ISP and domain (raw `Domain`: the organization's domain for a
//! `business` IP, else the ISP's or host's, as the seeds' Privacy section says). Sources are
//! MaxMind DB files (GeoIP2/GeoLite2) and the cloud providers' published IP ranges; nothing
//! is fetched.
//!
//! A lookup runs for every pull event: MaxMind trees are walked in memory and strings are
//! borrowed from the loaded files; cloud ranges are a binary search.

mod cloud;
#[cfg(test)]
pub(crate) mod mmdb_writer;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use maxminddb::{MaxMindDbError, Reader};
use serde::Deserialize;

pub use cloud::{CloudProvider, NO_CSP};

/// Where the enrichment data lives. Every file is optional: what is missing stays unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrichConfig {
    /// A GeoIP2/GeoLite2 Country or City database: the country.
    pub country_db: Option<PathBuf>,
    /// A GeoLite2/GeoIP2 ASN database: the autonomous system organization, the ISP name when
    /// no ISP database is given.
    pub asn_db: Option<PathBuf>,
    /// A GeoIP2 ISP database: ISP and AS organization.
    pub isp_db: Option<PathBuf>,
    /// A GeoIP2 Connection-Type database: the IP type when no user type is known.
    pub connection_type_db: Option<PathBuf>,
    /// A GeoIP2 Domain database: the domain.
    pub domain_db: Option<PathBuf>,
    /// A GeoIP2 Enterprise database: country, user type, connection type, ISP and domain.
    pub enterprise_db: Option<PathBuf>,
    /// AWS's `ip-ranges.json`.
    pub aws_ip_ranges: Option<PathBuf>,
    /// Google Cloud's `cloud.json`.
    pub gcp_ip_ranges: Option<PathBuf>,
    /// Azure's Service Tags JSON (`ServiceTags_Public_*.json`).
    pub azure_service_tags: Option<PathBuf>,
}

/// Why enrichment data could not be loaded or read.
#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a valid MaxMind DB file: {source}", path.display())]
    MaxMind {
        path: PathBuf,
        source: MaxMindDbError,
    },
    #[error(
        "{} is a {found:?} database, but {setting} needs a {expected} database; point {setting} at one",
        path.display()
    )]
    WrongDatabase {
        path: PathBuf,
        setting: &'static str,
        found: String,
        expected: &'static str,
    },
    #[error("{} is not valid {format} JSON: {source}", path.display())]
    Json {
        path: PathBuf,
        format: &'static str,
        source: serde_json::Error,
    },
    #[error("{} lists {prefix:?}, which is not an IP prefix such as 192.0.2.0/24", path.display())]
    BadPrefix { path: PathBuf, prefix: String },
    #[error("{} lists no IP prefixes; is it really {format}?", path.display())]
    NoPrefixes { path: PathBuf, format: &'static str },
    #[error("looking up an address in {}: {source}; the file may be corrupt", path.display())]
    Lookup {
        path: PathBuf,
        source: MaxMindDbError,
    },
}

/// An ISO 3166-1 alpha-2 country code such as `US`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    pub fn as_str(&self) -> &str {
        // Only ASCII uppercase letters get in (see `FromStr`).
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl FromStr for CountryCode {
    type Err = BadCountryCode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.as_bytes() {
            &[a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Ok(Self([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => Err(BadCountryCode(s.chars().take(16).collect())),
        }
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a two-letter ISO 3166-1 country code such as US")]
pub struct BadCountryCode(String);

/// The raw data's `Type`: "the industry from which the event originates".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpType {
    Business,
    Isp,
    Hosting,
    Education,
}

impl IpType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Business => "business",
            Self::Isp => "isp",
            Self::Hosting => "hosting",
            Self::Education => "education",
        }
    }

    /// From a GeoIP2 `user_type`. Organizations (including government and military) are
    /// `business`; access networks are `isp`; data centres, CDNs, crawlers and anonymizers are
    /// `hosting`; schools, colleges and libraries are `education`.
    pub fn from_user_type(user_type: &str) -> Option<Self> {
        Some(match user_type {
            "business" | "government" | "military" => Self::Business,
            "residential" | "cellular" | "dialup" | "cafe" | "traveler" | "router" => Self::Isp,
            "hosting"
            | "content_delivery_network"
            | "search_engine_spider"
            | "consumer_privacy_network" => Self::Hosting,
            "college" | "school" | "library" => Self::Education,
            _ => return None,
        })
    }

    /// From a GeoIP2 Connection-Type value: `Corporate` is `business`, consumer access
    /// (`Cable/DSL`, `Cellular`, `Dialup`, `Satellite`) is `isp`.
    pub fn from_connection_type(connection_type: &str) -> Option<Self> {
        match connection_type {
            "Corporate" => Some(Self::Business),
            "Cable/DSL" | "Cellular" | "Dialup" | "Satellite" => Some(Self::Isp),
            _ => None,
        }
    }
}

impl fmt::Display for IpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is known about one client address. Strings borrow from the [`Enricher`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Enrichment<'a> {
    pub country: Option<CountryCode>,
    pub cloud: Option<CloudProvider>,
    pub ip_type: Option<IpType>,
    pub isp: Option<&'a str>,
    pub as_organization: Option<&'a str>,
    pub domain: Option<&'a str>,
}

/// The fields wharf reads from any GeoIP2/GeoLite2 record; each database fills some.
#[derive(Debug, Default, Deserialize)]
struct GeoRecord<'a> {
    #[serde(borrow, default)]
    country: Option<GeoCountry<'a>>,
    #[serde(borrow, default)]
    registered_country: Option<GeoCountry<'a>>,
    #[serde(borrow, default)]
    traits: Option<GeoTraits<'a>>,
    #[serde(borrow, default)]
    autonomous_system_organization: Option<&'a str>,
    #[serde(borrow, default)]
    isp: Option<&'a str>,
    #[serde(borrow, default)]
    connection_type: Option<&'a str>,
    #[serde(borrow, default)]
    user_type: Option<&'a str>,
    #[serde(borrow, default)]
    domain: Option<&'a str>,
}

#[derive(Debug, Default, Deserialize)]
struct GeoCountry<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

/// Enterprise and City-with-traits records keep these under `traits`.
#[derive(Debug, Default, Deserialize)]
struct GeoTraits<'a> {
    #[serde(borrow, default)]
    autonomous_system_organization: Option<&'a str>,
    #[serde(borrow, default)]
    isp: Option<&'a str>,
    #[serde(borrow, default)]
    connection_type: Option<&'a str>,
    #[serde(borrow, default)]
    user_type: Option<&'a str>,
    #[serde(borrow, default)]
    domain: Option<&'a str>,
}

struct GeoDb {
    path: PathBuf,
    reader: Reader<Vec<u8>>,
}

impl GeoDb {
    fn open(
        path: &Path,
        setting: &'static str,
        expected: &'static str,
        accepts: &[&str],
    ) -> Result<Self, EnrichError> {
        let bytes = std::fs::read(path).map_err(|source| EnrichError::Read {
            path: path.to_owned(),
            source,
        })?;
        let reader = Reader::from_source(bytes).map_err(|source| EnrichError::MaxMind {
            path: path.to_owned(),
            source,
        })?;
        let found = &reader.metadata().database_type;
        let lower = found.to_ascii_lowercase();
        if !accepts.iter().any(|a| lower.contains(a)) {
            return Err(EnrichError::WrongDatabase {
                path: path.to_owned(),
                setting,
                found: found.clone(),
                expected,
            });
        }
        Ok(Self {
            path: path.to_owned(),
            reader,
        })
    }

    fn lookup(&self, ip: IpAddr) -> Result<Option<GeoRecord<'_>>, EnrichError> {
        if ip.is_ipv6() && self.reader.metadata().ip_version == 4 {
            return Ok(None);
        }
        let lookup_error = |source| EnrichError::Lookup {
            path: self.path.clone(),
            source,
        };
        self.reader
            .lookup(ip)
            .map_err(lookup_error)?
            .decode()
            .map_err(lookup_error)
    }
}

impl fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeoDb")
            .field("path", &self.path)
            .field("database_type", &self.reader.metadata().database_type)
            .finish()
    }
}

/// Loaded enrichment data; cheap to share behind an `Arc`, read-only.
#[derive(Debug)]
pub struct Enricher {
    /// In precedence order: the first database that knows a field gives it.
    geo: Vec<GeoDb>,
    cloud: cloud::CloudRanges,
}

impl Enricher {
    /// Loads every configured file, checking each is what its setting says.
    pub fn open(config: &EnrichConfig) -> Result<Self, EnrichError> {
        let databases: [(&Option<PathBuf>, &'static str, &'static str, &[&str]); 6] = [
            (
                &config.enterprise_db,
                "enterprise_db",
                "GeoIP2 Enterprise",
                &["enterprise"],
            ),
            (
                &config.country_db,
                "country_db",
                "GeoIP2/GeoLite2 Country or City",
                &["country", "city", "enterprise"],
            ),
            (&config.isp_db, "isp_db", "GeoIP2 ISP", &["isp"]),
            (
                &config.connection_type_db,
                "connection_type_db",
                "GeoIP2 Connection-Type",
                &["connection-type", "connection_type", "connectiontype"],
            ),
            (&config.domain_db, "domain_db", "GeoIP2 Domain", &["domain"]),
            (&config.asn_db, "asn_db", "GeoLite2/GeoIP2 ASN", &["asn"]),
        ];
        let mut geo = Vec::new();
        for (path, setting, expected, accepts) in databases {
            if let Some(path) = path {
                geo.push(GeoDb::open(path, setting, expected, accepts)?);
            }
        }
        let mut ranges = cloud::CloudRangesBuilder::default();
        for (path, provider) in [
            (&config.aws_ip_ranges, CloudProvider::Aws),
            (&config.gcp_ip_ranges, CloudProvider::Gcp),
            (&config.azure_service_tags, CloudProvider::Azure),
        ] {
            if let Some(path) = path {
                ranges.add_file(provider, path)?;
            }
        }
        Ok(Self {
            geo,
            cloud: ranges.build(),
        })
    }

    /// Whether any data was configured at all.
    pub fn is_empty(&self) -> bool {
        self.geo.is_empty() && self.cloud.is_empty()
    }

    /// Looks up one client address (IPv4-mapped IPv6 addresses are treated as IPv4).
    pub fn lookup(&self, ip: IpAddr) -> Result<Enrichment<'_>, EnrichError> {
        let ip = ip.to_canonical();
        let mut out = Enrichment {
            cloud: self.cloud.lookup(ip),
            ..Enrichment::default()
        };
        let mut user_type = None;
        let mut connection_type = None;
        for db in &self.geo {
            let Some(record) = db.lookup(ip)? else {
                continue;
            };
            let traits = record.traits.unwrap_or_default();
            let country = record
                .country
                .and_then(|c| c.iso_code)
                .or(record.registered_country.and_then(|c| c.iso_code));
            out.country = out.country.or(country.and_then(|c| c.parse().ok()));
            out.isp = out.isp.or(record.isp).or(traits.isp);
            out.as_organization = out
                .as_organization
                .or(record.autonomous_system_organization)
                .or(traits.autonomous_system_organization);
            out.domain = out.domain.or(record.domain).or(traits.domain);
            user_type = user_type.or(record.user_type).or(traits.user_type);
            connection_type = connection_type
                .or(record.connection_type)
                .or(traits.connection_type);
        }
        out.isp = out.isp.or(out.as_organization);
        out.ip_type = user_type
            .and_then(IpType::from_user_type)
            .or(connection_type.and_then(IpType::from_connection_type))
            // A cloud provider's address is hosting even where no database says so.
            .or(out.cloud.map(|_| IpType::Hosting));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::mmdb_writer::{MmdbWriter, Value, map, s};
    use super::*;

    struct Files {
        dir: tempfile::TempDir,
    }

    impl Files {
        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }
    }

    fn country(code: &str) -> Value {
        map([("iso_code", s(code))])
    }

    /// Writes a Country, an ASN, an ISP, a Connection-Type, a Domain and an Enterprise
    /// database and the three cloud range files.
    fn files() -> Files {
        let files = Files {
            dir: tempfile::tempdir().unwrap(),
        };
        MmdbWriter::new(6, "GeoLite2-Country")
            .insert("81.2.69.0/24", &map([("country", country("GB"))]))
            .insert(
                "2001:db8::/32",
                &map([("registered_country", country("DE"))]),
            )
            .insert("3.5.140.0/22", &map([("country", country("KR"))]))
            .write(&files.path("country.mmdb"));
        MmdbWriter::new(6, "GeoLite2-ASN")
            .insert(
                "81.2.69.0/24",
                &map([
                    ("autonomous_system_number", Value::U32(20712)),
                    ("autonomous_system_organization", s("Andrews & Arnold Ltd")),
                ]),
            )
            .insert(
                "3.5.140.0/22",
                &map([("autonomous_system_organization", s("AMAZON-02"))]),
            )
            .write(&files.path("asn.mmdb"));
        MmdbWriter::new(6, "GeoIP2-ISP")
            .insert(
                "81.2.69.0/24",
                &map([
                    ("isp", s("Andrews & Arnold")),
                    ("organization", s("Acme Widgets")),
                ]),
            )
            .write(&files.path("isp.mmdb"));
        MmdbWriter::new(6, "GeoIP2-Connection-Type")
            .insert("81.2.69.0/24", &map([("connection_type", s("Corporate"))]))
            .insert("2001:db8::/32", &map([("connection_type", s("Cable/DSL"))]))
            .write(&files.path("connection.mmdb"));
        MmdbWriter::new(6, "GeoIP2-Domain")
            .insert("81.2.69.0/24", &map([("domain", s("acme.example"))]))
            .write(&files.path("domain.mmdb"));
        MmdbWriter::new(6, "GeoIP2-Enterprise")
            .insert(
                "192.0.2.0/24",
                &map([
                    ("country", country("FR")),
                    (
                        "traits",
                        map([
                            ("user_type", s("college")),
                            ("domain", s("univ.example")),
                            ("isp", s("RENATER")),
                        ]),
                    ),
                ]),
            )
            .write(&files.path("enterprise.mmdb"));
        std::fs::write(
            files.path("aws.json"),
            r#"{"prefixes": [{"ip_prefix": "3.5.140.0/22", "service": "AMAZON"}],
                "ipv6_prefixes": []}"#,
        )
        .unwrap();
        std::fs::write(
            files.path("gcp.json"),
            r#"{"prefixes": [{"ipv4Prefix": "34.1.208.0/20"}]}"#,
        )
        .unwrap();
        std::fs::write(
            files.path("azure.json"),
            r#"{"values": [{"name": "AzureCloud", "properties": {"addressPrefixes": ["13.69.0.0/16"]}}]}"#,
        )
        .unwrap();
        files
    }

    fn full_config(files: &Files) -> EnrichConfig {
        EnrichConfig {
            country_db: Some(files.path("country.mmdb")),
            asn_db: Some(files.path("asn.mmdb")),
            isp_db: Some(files.path("isp.mmdb")),
            connection_type_db: Some(files.path("connection.mmdb")),
            domain_db: Some(files.path("domain.mmdb")),
            enterprise_db: Some(files.path("enterprise.mmdb")),
            aws_ip_ranges: Some(files.path("aws.json")),
            gcp_ip_ranges: Some(files.path("gcp.json")),
            azure_service_tags: Some(files.path("azure.json")),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn business_address_from_every_database() {
        let files = files();
        let enricher = Enricher::open(&full_config(&files)).unwrap();
        let e = enricher.lookup(ip("81.2.69.160")).unwrap();
        assert_eq!(
            e,
            Enrichment {
                country: Some("GB".parse().unwrap()),
                cloud: None,
                ip_type: Some(IpType::Business),
                isp: Some("Andrews & Arnold"),
                as_organization: Some("Andrews & Arnold Ltd"),
                domain: Some("acme.example"),
            }
        );
    }

    #[test]
    fn cloud_address_is_hosting_with_its_provider() {
        let files = files();
        let enricher = Enricher::open(&full_config(&files)).unwrap();
        let e = enricher.lookup(ip("3.5.141.7")).unwrap();
        assert_eq!(e.cloud, Some(CloudProvider::Aws));
        assert_eq!(e.country.map(|c| c.to_string()).as_deref(), Some("KR"));
        assert_eq!(e.ip_type, Some(IpType::Hosting));
        // No ISP database entry: the AS organization names the network.
        assert_eq!(e.isp, Some("AMAZON-02"));
        assert_eq!(
            enricher.lookup(ip("34.1.210.1")).unwrap().cloud,
            Some(CloudProvider::Gcp)
        );
        assert_eq!(
            enricher.lookup(ip("13.69.1.1")).unwrap().cloud,
            Some(CloudProvider::Azure)
        );
    }

    #[test]
    fn enterprise_traits_and_registered_country() {
        let files = files();
        let enricher = Enricher::open(&full_config(&files)).unwrap();
        let e = enricher.lookup(ip("192.0.2.9")).unwrap();
        assert_eq!(e.ip_type, Some(IpType::Education));
        assert_eq!(e.domain, Some("univ.example"));
        assert_eq!(e.isp, Some("RENATER"));
        assert_eq!(e.country.unwrap().as_str(), "FR");

        let e = enricher.lookup(ip("2001:db8::42")).unwrap();
        assert_eq!(e.country.unwrap().as_str(), "DE");
        assert_eq!(e.ip_type, Some(IpType::Isp));
    }

    #[test]
    fn ipv4_mapped_ipv6_is_looked_up_as_ipv4() {
        let files = files();
        let enricher = Enricher::open(&full_config(&files)).unwrap();
        let e = enricher.lookup(ip("::ffff:81.2.69.160")).unwrap();
        assert_eq!(e.country.unwrap().as_str(), "GB");
        assert_eq!(
            enricher.lookup(ip("::ffff:3.5.140.1")).unwrap().cloud,
            Some(CloudProvider::Aws)
        );
    }

    #[test]
    fn unknown_address_and_empty_config() {
        let files = files();
        let enricher = Enricher::open(&full_config(&files)).unwrap();
        assert_eq!(
            enricher.lookup(ip("198.51.100.1")).unwrap(),
            Enrichment::default()
        );
        let empty = Enricher::open(&EnrichConfig::default()).unwrap();
        assert!(empty.is_empty());
        assert_eq!(
            empty.lookup(ip("81.2.69.160")).unwrap(),
            Enrichment::default()
        );
    }

    #[test]
    fn ipv6_address_in_an_ipv4_database_is_unknown() {
        let files = files();
        MmdbWriter::new(4, "GeoLite2-Country")
            .insert("81.2.69.0/24", &map([("country", country("GB"))]))
            .write(&files.path("v4.mmdb"));
        let enricher = Enricher::open(&EnrichConfig {
            country_db: Some(files.path("v4.mmdb")),
            ..EnrichConfig::default()
        })
        .unwrap();
        assert_eq!(enricher.lookup(ip("2001:db8::1")).unwrap().country, None);
        assert_eq!(
            enricher
                .lookup(ip("81.2.69.1"))
                .unwrap()
                .country
                .unwrap()
                .as_str(),
            "GB"
        );
    }

    #[test]
    fn errors_name_the_file_and_what_is_wrong() {
        let files = files();
        // An ASN database given as the country database.
        let err = Enricher::open(&EnrichConfig {
            country_db: Some(files.path("asn.mmdb")),
            ..EnrichConfig::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("asn.mmdb"), "{err}");
        assert!(err.contains("\"GeoLite2-ASN\""), "{err}");
        assert!(err.contains("country_db"), "{err}");

        // Not a MaxMind DB at all.
        let err = Enricher::open(&EnrichConfig {
            asn_db: Some(files.path("aws.json")),
            ..EnrichConfig::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("aws.json is not a valid MaxMind DB file"),
            "{err}"
        );

        // Missing file.
        let err = Enricher::open(&EnrichConfig {
            domain_db: Some(files.path("missing.mmdb")),
            ..EnrichConfig::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("cannot read "), "{err}");
        assert!(err.contains("missing.mmdb"), "{err}");

        // A cloud file in the wrong format.
        let err = Enricher::open(&EnrichConfig {
            azure_service_tags: Some(files.path("aws.json")),
            ..EnrichConfig::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("aws.json is not valid Azure Service Tags JSON"),
            "{err}"
        );
    }

    #[test]
    fn ip_type_mapping() {
        assert_eq!(IpType::from_user_type("business"), Some(IpType::Business));
        assert_eq!(IpType::from_user_type("residential"), Some(IpType::Isp));
        assert_eq!(IpType::from_user_type("hosting"), Some(IpType::Hosting));
        assert_eq!(IpType::from_user_type("school"), Some(IpType::Education));
        assert_eq!(IpType::from_user_type("something-new"), None);
        assert_eq!(
            IpType::from_connection_type("Corporate"),
            Some(IpType::Business)
        );
        assert_eq!(IpType::from_connection_type("Cellular"), Some(IpType::Isp));
        assert_eq!(IpType::from_connection_type(""), None);
        let names: Vec<_> = [
            IpType::Business,
            IpType::Isp,
            IpType::Hosting,
            IpType::Education,
        ]
        .map(IpType::as_str)
        .to_vec();
        assert_eq!(names, ["business", "isp", "hosting", "education"]);
    }

    #[test]
    fn country_codes() {
        assert_eq!("us".parse::<CountryCode>().unwrap().as_str(), "US");
        assert!("USA".parse::<CountryCode>().is_err());
        assert!("U1".parse::<CountryCode>().is_err());
        assert!("".parse::<CountryCode>().is_err());
    }
}
