//! Cloud providers' published IP ranges (AWS `ip-ranges.json`, Google `cloud.json`, Azure
//! Service Tags) as sorted, disjoint address spans, looked up by binary search: the raw data's
//! `Host` and the reports' `CLOUD_SERVICE_PROVIDER`.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;
use serde::Deserialize;

use super::EnrichError;

/// A cloud service provider, named as the seeds' `CLOUD_SERVICE_PROVIDER` examples do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CloudProvider {
    Aws,
    Gcp,
    Azure,
}

/// What reports write when a request came from no cloud provider.
pub const NO_CSP: &str = "no csp";

impl CloudProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aws => "aws",
            Self::Gcp => "gcp",
            Self::Azure => "azure",
        }
    }
}

impl fmt::Display for CloudProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span<T> {
    start: T,
    end: T,
    provider: CloudProvider,
}

/// Every provider's ranges, IPv4 and IPv6 apart.
#[derive(Debug, Default)]
pub(crate) struct CloudRanges {
    v4: Vec<Span<u32>>,
    v6: Vec<Span<u128>>,
}

impl CloudRanges {
    pub(crate) fn lookup(&self, ip: IpAddr) -> Option<CloudProvider> {
        match ip {
            IpAddr::V4(ip) => find(&self.v4, u32::from(ip)),
            IpAddr::V6(ip) => find(&self.v6, u128::from(ip)),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }
}

/// Collects prefixes, then sorts and flattens them once all files are read.
#[derive(Debug, Default)]
pub(crate) struct CloudRangesBuilder {
    v4: Vec<Span<u32>>,
    v6: Vec<Span<u128>>,
}

impl CloudRangesBuilder {
    /// Reads a provider's file in that provider's format.
    pub(crate) fn add_file(
        &mut self,
        provider: CloudProvider,
        path: &Path,
    ) -> Result<&mut Self, EnrichError> {
        let bytes = std::fs::read(path).map_err(|source| EnrichError::Read {
            path: path.to_owned(),
            source,
        })?;
        self.add_json(provider, path, &bytes)
    }

    pub(crate) fn add_json(
        &mut self,
        provider: CloudProvider,
        path: &Path,
        json: &[u8],
    ) -> Result<&mut Self, EnrichError> {
        let format = match provider {
            CloudProvider::Aws => "AWS ip-ranges.json",
            CloudProvider::Gcp => "Google Cloud cloud.json",
            CloudProvider::Azure => "Azure Service Tags",
        };
        let bad_json = |source| EnrichError::Json {
            path: path.to_owned(),
            format,
            source,
        };
        let prefixes: Vec<String> = match provider {
            CloudProvider::Aws => {
                let file: AwsRanges = serde_json::from_slice(json).map_err(bad_json)?;
                let v4 = file.prefixes.into_iter().map(|p| p.ip_prefix);
                v4.chain(file.ipv6_prefixes.into_iter().map(|p| p.ipv6_prefix))
                    .collect()
            }
            CloudProvider::Gcp => {
                let file: GcpRanges = serde_json::from_slice(json).map_err(bad_json)?;
                file.prefixes
                    .into_iter()
                    .filter_map(|p| p.ipv4_prefix.or(p.ipv6_prefix))
                    .collect()
            }
            CloudProvider::Azure => {
                let file: AzureServiceTags = serde_json::from_slice(json).map_err(bad_json)?;
                file.values
                    .into_iter()
                    .flat_map(|v| v.properties.address_prefixes)
                    .collect()
            }
        };
        if prefixes.is_empty() {
            return Err(EnrichError::NoPrefixes {
                path: path.to_owned(),
                format,
            });
        }
        for prefix in prefixes {
            let net: IpNet = prefix.trim().parse().map_err(|_| EnrichError::BadPrefix {
                path: path.to_owned(),
                prefix: prefix.clone(),
            })?;
            match net.trunc() {
                IpNet::V4(n) => self.v4.push(Span {
                    start: n.network().into(),
                    end: n.broadcast().into(),
                    provider,
                }),
                IpNet::V6(n) => self.v6.push(Span {
                    start: n.network().into(),
                    end: n.broadcast().into(),
                    provider,
                }),
            }
        }
        Ok(self)
    }

    pub(crate) fn build(self) -> CloudRanges {
        CloudRanges {
            v4: flatten(self.v4, |x| x.checked_add(1)),
            v6: flatten(self.v6, |x| x.checked_add(1)),
        }
    }
}

/// Sorts spans and makes them disjoint. Prefixes either nest or are disjoint, so a span that
/// starts inside the previous one lies inside it and is dropped (the outer, first-listed one
/// wins: AWS lists `AMAZON` and `EC2` for the same addresses). Touching spans of one provider
/// merge, which keeps the table small.
fn flatten<T: Copy + Ord>(mut spans: Vec<Span<T>>, succ: impl Fn(T) -> Option<T>) -> Vec<Span<T>> {
    spans.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut out: Vec<Span<T>> = Vec::with_capacity(spans.len());
    for span in spans {
        if let Some(last) = out.last_mut() {
            if span.start <= last.end {
                continue;
            }
            if last.provider == span.provider && succ(last.end) == Some(span.start) {
                last.end = span.end;
                continue;
            }
        }
        out.push(span);
    }
    out
}

fn find<T: Copy + Ord>(spans: &[Span<T>], ip: T) -> Option<CloudProvider> {
    let after = spans.partition_point(|s| s.start <= ip);
    let span = spans.get(after.checked_sub(1)?)?;
    (ip <= span.end).then_some(span.provider)
}

#[derive(Deserialize)]
struct AwsRanges {
    prefixes: Vec<AwsV4>,
    #[serde(default)]
    ipv6_prefixes: Vec<AwsV6>,
}

#[derive(Deserialize)]
struct AwsV4 {
    ip_prefix: String,
}

#[derive(Deserialize)]
struct AwsV6 {
    ipv6_prefix: String,
}

#[derive(Deserialize)]
struct GcpRanges {
    prefixes: Vec<GcpPrefix>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GcpPrefix {
    ipv4_prefix: Option<String>,
    ipv6_prefix: Option<String>,
}

#[derive(Deserialize)]
struct AzureServiceTags {
    values: Vec<AzureTag>,
}

#[derive(Deserialize)]
struct AzureTag {
    properties: AzureTagProperties,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AzureTagProperties {
    #[serde(default)]
    address_prefixes: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const AWS: &str = r#"{
      "syncToken": "1763000000", "createDate": "2026-11-13-00-00-00",
      "prefixes": [
        {"ip_prefix": "3.5.140.0/22", "region": "ap-northeast-2", "service": "AMAZON", "network_border_group": "ap-northeast-2"},
        {"ip_prefix": "3.5.140.0/24", "region": "ap-northeast-2", "service": "EC2", "network_border_group": "ap-northeast-2"},
        {"ip_prefix": "52.94.76.0/22", "region": "us-west-2", "service": "AMAZON", "network_border_group": "us-west-2"}
      ],
      "ipv6_prefixes": [
        {"ipv6_prefix": "2600:1f00::/40", "region": "us-east-1", "service": "AMAZON", "network_border_group": "us-east-1"}
      ]
    }"#;

    const GCP: &str = r#"{
      "syncToken": "1763000000000", "creationTime": "2026-11-13T00:00:00.000000",
      "prefixes": [
        {"ipv4Prefix": "34.1.208.0/20", "service": "Google Cloud", "scope": "africa-south1"},
        {"ipv6Prefix": "2600:1900:8000::/44", "service": "Google Cloud", "scope": "africa-south1"}
      ]
    }"#;

    const AZURE: &str = r#"{
      "changeNumber": 350, "cloud": "Public",
      "values": [
        {"name": "ActionGroup", "id": "ActionGroup", "properties": {
          "changeNumber": 40, "region": "", "regionId": 0, "platform": "Azure",
          "systemService": "ActionGroup",
          "addressPrefixes": ["4.145.74.52/30", "2603:1000:4::/120"],
          "networkFeatures": ["API", "NSG"]}},
        {"name": "AzureCloud.westeurope", "id": "AzureCloud.westeurope", "properties": {
          "changeNumber": 90, "region": "westeurope", "regionId": 18, "platform": "Azure",
          "systemService": "",
          "addressPrefixes": ["13.69.0.0/17", "13.69.128.0/17"]}}
      ]
    }"#;

    fn ranges() -> CloudRanges {
        let mut builder = CloudRangesBuilder::default();
        let path = Path::new("test.json");
        builder
            .add_json(CloudProvider::Aws, path, AWS.as_bytes())
            .unwrap();
        builder
            .add_json(CloudProvider::Gcp, path, GCP.as_bytes())
            .unwrap();
        builder
            .add_json(CloudProvider::Azure, path, AZURE.as_bytes())
            .unwrap();
        builder.build()
    }

    #[test]
    fn looks_up_each_provider() {
        let ranges = ranges();
        let cases = [
            ("3.5.140.0", Some(CloudProvider::Aws)),
            ("3.5.143.255", Some(CloudProvider::Aws)),
            ("3.5.144.0", None),
            ("3.5.139.255", None),
            ("52.94.77.1", Some(CloudProvider::Aws)),
            ("2600:1f00::1", Some(CloudProvider::Aws)),
            ("2600:1f01::1", None),
            ("34.1.223.255", Some(CloudProvider::Gcp)),
            ("34.1.224.0", None),
            ("2600:1900:8000::5", Some(CloudProvider::Gcp)),
            ("4.145.74.55", Some(CloudProvider::Azure)),
            ("4.145.74.56", None),
            ("13.69.200.1", Some(CloudProvider::Azure)),
            ("2603:1000:4::ff", Some(CloudProvider::Azure)),
            ("0.0.0.0", None),
            ("255.255.255.255", None),
            ("192.0.2.1", None),
        ];
        for (ip, provider) in cases {
            assert_eq!(ranges.lookup(ip.parse().unwrap()), provider, "{ip}");
        }
    }

    #[test]
    fn nested_prefixes_are_dropped_and_touching_ones_merged() {
        let ranges = ranges();
        // 3.5.140.0/24 lies inside 3.5.140.0/22; 13.69.0.0/17 and 13.69.128.0/17 touch.
        assert_eq!(ranges.v4.len(), 5, "{:?}", ranges.v4);
        assert!(ranges.v4.windows(2).all(|w| w[0].end < w[1].start));
    }

    #[test]
    fn edges_of_the_address_space() {
        let mut builder = CloudRangesBuilder::default();
        let json = r#"{"prefixes": [{"ip_prefix": "255.255.255.0/24"}, {"ip_prefix": "0.0.0.0/8"}],
            "ipv6_prefixes": [{"ipv6_prefix": "ffff::/16"}]}"#;
        builder
            .add_json(CloudProvider::Aws, Path::new("x"), json.as_bytes())
            .unwrap();
        let ranges = builder.build();
        for ip in [
            "255.255.255.255",
            "0.0.0.0",
            "0.255.255.255",
            "ffff:ffff::1",
        ] {
            assert_eq!(
                ranges.lookup(ip.parse().unwrap()),
                Some(CloudProvider::Aws),
                "{ip}"
            );
        }
        assert_eq!(ranges.lookup("1.0.0.0".parse().unwrap()), None);
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let path = Path::new("/etc/wharf/ip-ranges.json");
        let mut builder = CloudRangesBuilder::default();
        let err = builder
            .add_json(CloudProvider::Aws, path, br#"{"values": []}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/etc/wharf/ip-ranges.json"), "{err}");
        assert!(err.contains("AWS ip-ranges.json"), "{err}");

        let bad = br#"{"prefixes": [{"ip_prefix": "3.5.140.0/33"}]}"#;
        let err = builder
            .add_json(CloudProvider::Aws, path, bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"3.5.140.0/33\""), "{err}");

        let empty = br#"{"prefixes": []}"#;
        let err = builder
            .add_json(CloudProvider::Gcp, path, empty)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no IP prefixes"), "{err}");

        let err = builder
            .add_file(CloudProvider::Azure, Path::new("/nonexistent/tags.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/tags.json"), "{err}");
    }
}
