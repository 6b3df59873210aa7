//! The OCI vocabulary of wharf: names, tags, digests, references, byte ranges, media types,
//! manifest parsing and the distribution-spec error codes. No I/O and no async live here, so
//! everything can be unit-tested, property-tested and fuzzed on its own.

mod digest;
mod error;
mod manifest;
mod media;
mod name;
mod range;
mod sha;

pub use digest::{Digest, DigestAlgorithm, DigestError, Hasher};
pub use error::ErrorCode;
pub use manifest::{
    Descriptor, MAX_MANIFEST_BYTES, ManifestError, ManifestKind, ParsedManifest, Platform,
    parse_manifest,
};
pub use media::{MediaType, accepts};
pub use name::{MAX_NAME_LEN, NameError, OFFICIAL_NAMESPACE, Reference, RepoName, Tag, UploadId};
pub use range::{ByteRange, RangeError, parse_content_range, parse_range_header};
