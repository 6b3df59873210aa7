//! A minimal MaxMind DB writer for tests: no real GeoIP file is available offline, so tests
//! build their own, following the MaxMind DB format spec 2.0 (binary search tree of 24-bit
//! records, 16-byte zero separator, data section in the MaxMind type encoding, then
//! `\xAB\xCD\xEFMaxMind.com` and the metadata map). Its output is checked with the
//! `maxminddb` reader's own `verify`.

use ipnet::IpNet;

/// A data-section value.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Str(String),
    U16(u16),
    U32(u32),
    U64(u64),
    Bool(bool),
    Map(Vec<(String, Value)>),
    Array(Vec<Value>),
}

/// Builds a `Value::Map` from `(key, value)` pairs.
pub(crate) fn map<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Map(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

pub(crate) fn s(text: &str) -> Value {
    Value::Str(text.to_owned())
}

#[derive(Debug, Clone, Copy)]
enum Record {
    Empty,
    Node(u32),
    Data(u32),
}

pub(crate) struct MmdbWriter {
    ip_version: u16,
    database_type: String,
    nodes: Vec<[Record; 2]>,
    data: Vec<u8>,
}

const SEPARATOR: usize = 16;
const METADATA_MARKER: &[u8] = b"\xAB\xCD\xEFMaxMind.com";

impl MmdbWriter {
    /// `ip_version` 6 stores IPv4 networks at `::/96`, as MaxMind's databases do.
    pub(crate) fn new(ip_version: u16, database_type: &str) -> Self {
        assert!(ip_version == 4 || ip_version == 6);
        Self {
            ip_version,
            database_type: database_type.to_owned(),
            nodes: vec![[Record::Empty; 2]],
            data: Vec::new(),
        }
    }

    /// Maps a network to a value. Networks must not overlap.
    pub(crate) fn insert(&mut self, net: &str, value: &Value) -> &mut Self {
        let net: IpNet = net.parse().expect("test network");
        let (bits, prefix): (u128, u8) = match (net, self.ip_version) {
            (IpNet::V4(n), 4) => (u128::from(u32::from(n.network())) << 96, n.prefix_len()),
            (IpNet::V4(n), _) => (u128::from(u32::from(n.network())), 96 + n.prefix_len()),
            (IpNet::V6(n), 6) => (u128::from(n.network()), n.prefix_len()),
            (IpNet::V6(_), _) => panic!("IPv6 network in an IPv4 database"),
        };
        assert!(prefix > 0, "a /0 network is not supported");
        let offset = u32::try_from(self.data.len()).unwrap();
        encode(value, &mut self.data);
        let mut node = 0usize;
        for depth in 0..prefix {
            let bit = ((bits >> (127 - depth)) & 1) as usize;
            if depth + 1 == prefix {
                assert!(
                    matches!(self.nodes[node][bit], Record::Empty),
                    "overlapping networks"
                );
                self.nodes[node][bit] = Record::Data(offset);
                break;
            }
            node = match self.nodes[node][bit] {
                Record::Node(n) => n as usize,
                Record::Empty => {
                    self.nodes.push([Record::Empty; 2]);
                    let n = self.nodes.len() - 1;
                    self.nodes[node][bit] = Record::Node(n as u32);
                    n
                }
                Record::Data(_) => panic!("overlapping networks"),
            };
        }
        self
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let node_count = self.nodes.len() as u32;
        let mut out = Vec::new();
        for node in &self.nodes {
            for record in node {
                let value = match *record {
                    Record::Node(n) => n,
                    Record::Empty => node_count,
                    Record::Data(offset) => node_count + SEPARATOR as u32 + offset,
                };
                assert!(
                    value < 1 << 24,
                    "test database too large for 24-bit records"
                );
                out.extend_from_slice(&value.to_be_bytes()[1..]);
            }
        }
        out.extend_from_slice(&[0; SEPARATOR]);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(METADATA_MARKER);
        let metadata = map([
            ("binary_format_major_version", Value::U16(2)),
            ("binary_format_minor_version", Value::U16(0)),
            ("build_epoch", Value::U64(1_763_000_000)),
            ("database_type", s(&self.database_type)),
            ("description", map([("en", s("wharf test database"))])),
            ("ip_version", Value::U16(self.ip_version)),
            ("languages", Value::Array(vec![s("en")])),
            ("node_count", Value::U32(node_count)),
            ("record_size", Value::U16(24)),
        ]);
        encode(&metadata, &mut out);
        out
    }

    pub(crate) fn write(&self, path: &std::path::Path) {
        std::fs::write(path, self.to_bytes()).expect("write test database");
    }
}

/// The control byte(s): type in the top 3 bits (extended types > 7 in a following byte), then
/// the payload size, with 29/30/31 meaning 1/2/3 more size bytes.
fn control(out: &mut Vec<u8>, type_number: u8, size: usize) {
    let (type_bits, extended) = if type_number <= 7 {
        (type_number << 5, None)
    } else {
        (0, Some(type_number - 7))
    };
    let (size_bits, extra): (u8, Vec<u8>) = if size < 29 {
        (size as u8, vec![])
    } else if size < 29 + 256 {
        (29, vec![(size - 29) as u8])
    } else if size < 285 + 65_536 {
        (30, ((size - 285) as u16).to_be_bytes().to_vec())
    } else {
        (31, ((size - 65_821) as u32).to_be_bytes()[1..].to_vec())
    };
    out.push(type_bits | size_bits);
    out.extend(extended);
    out.extend(extra);
}

fn encode_uint(out: &mut Vec<u8>, type_number: u8, value: u64) {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    control(out, type_number, 8 - skip);
    out.extend_from_slice(&bytes[skip..]);
}

fn encode(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Str(text) => {
            control(out, 2, text.len());
            out.extend_from_slice(text.as_bytes());
        }
        Value::U16(n) => encode_uint(out, 5, u64::from(*n)),
        Value::U32(n) => encode_uint(out, 6, u64::from(*n)),
        Value::U64(n) => encode_uint(out, 9, *n),
        Value::Bool(b) => control(out, 14, usize::from(*b)),
        Value::Map(pairs) => {
            control(out, 7, pairs.len());
            for (key, value) in pairs {
                encode(&Value::Str(key.clone()), out);
                encode(value, out);
            }
        }
        Value::Array(items) => {
            control(out, 11, items.len());
            for item in items {
                encode(item, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use maxminddb::{Reader, geoip2};
    use std::net::IpAddr;

    #[test]
    fn reader_verifies_and_reads_what_the_writer_wrote() {
        let long = "x".repeat(300);
        let mut writer = MmdbWriter::new(6, "GeoLite2-Country");
        writer
            .insert(
                "81.2.69.0/24",
                &map([("country", map([("iso_code", s("GB"))]))]),
            )
            .insert(
                "2001:db8::/32",
                &map([
                    ("country", map([("iso_code", s("DE"))])),
                    ("long", s(&long)),
                    ("flag", Value::Bool(true)),
                ]),
            );
        let reader = Reader::from_source(writer.to_bytes()).unwrap();
        reader.verify().unwrap();
        assert_eq!(reader.metadata().database_type, "GeoLite2-Country");

        let country = |ip: &str| {
            let ip: IpAddr = ip.parse().unwrap();
            reader
                .lookup(ip)
                .unwrap()
                .decode::<geoip2::Country<'_>>()
                .unwrap()
                .and_then(|c| c.country.iso_code.map(str::to_owned))
        };
        assert_eq!(country("81.2.69.142").as_deref(), Some("GB"));
        assert_eq!(country("2001:db8::1").as_deref(), Some("DE"));
        assert_eq!(country("81.2.70.1"), None);
        assert_eq!(country("2001:db9::1"), None);

        let ip: IpAddr = "81.2.69.1".parse().unwrap();
        let network = reader.lookup(ip).unwrap().network().unwrap();
        assert_eq!(network.to_string(), "81.2.69.0/24");
    }

    #[test]
    fn ipv4_database() {
        let mut writer = MmdbWriter::new(4, "GeoLite2-ASN");
        writer.insert(
            "1.0.0.0/24",
            &map([
                ("autonomous_system_number", Value::U32(13335)),
                ("autonomous_system_organization", s("CLOUDFLARENET")),
            ]),
        );
        let reader = Reader::from_source(writer.to_bytes()).unwrap();
        reader.verify().unwrap();
        let asn: geoip2::Asn<'_> = reader
            .lookup("1.0.0.1".parse().unwrap())
            .unwrap()
            .decode()
            .unwrap()
            .unwrap();
        assert_eq!(asn.autonomous_system_number, Some(13335));
        assert_eq!(asn.autonomous_system_organization, Some("CLOUDFLARENET"));
    }
}
