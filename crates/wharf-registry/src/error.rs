//! The registry's one error enum: one variant per OCI error code, plus `Internal` for failures
//! of the layers below (answered as 500 and logged once, where handled).

use wharf_oci::{Digest, ErrorCode, ManifestError, NameError};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("blob {0} is not in this repository")]
    BlobUnknown(Digest),
    #[error("{0}")]
    BlobUploadInvalid(String),
    #[error(
        "upload {0} is unknown: it finished, was cancelled or expired; start a new upload with POST /v2/<name>/blobs/uploads/"
    )]
    BlobUploadUnknown(String),
    #[error(
        "chunk starts at byte {got} but the upload has {offset} bytes; send the next chunk from byte {offset}"
    )]
    RangeInvalid { offset: u64, got: u64 },
    #[error("{0}")]
    DigestInvalid(String),
    #[error("manifest references content that was not pushed to this repository first: {}", .0.join(", "))]
    ManifestBlobUnknown(Vec<String>),
    #[error("{0}")]
    ManifestInvalid(String),
    #[error("{0}")]
    ManifestTooLarge(String),
    #[error("manifest {0} is not in this repository")]
    ManifestUnknown(String),
    #[error("{0}")]
    NameInvalid(String),
    #[error("repository {0} does not exist")]
    NameUnknown(String),
    #[error("{0}")]
    SizeInvalid(String),
    #[error("{0}")]
    RangeNotSatisfiable(String),
    #[error("blob is larger than this registry's limit of {0} bytes")]
    BlobTooLarge(u64),
    #[error("{0}")]
    Unsupported(String),
    /// Refused by policy (an archived repository, for one).
    #[error("{0}")]
    Denied(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl RegistryError {
    /// The OCI code to answer with; `None` for internal failures (500).
    pub fn code(&self) -> Option<ErrorCode> {
        Some(match self {
            Self::BlobUnknown(_) => ErrorCode::BlobUnknown,
            Self::BlobUploadInvalid(_) => ErrorCode::BlobUploadInvalid,
            Self::BlobUploadUnknown(_) => ErrorCode::BlobUploadUnknown,
            Self::RangeInvalid { .. } => ErrorCode::RangeInvalid,
            Self::DigestInvalid(_) => ErrorCode::DigestInvalid,
            Self::ManifestBlobUnknown(_) => ErrorCode::ManifestBlobUnknown,
            Self::ManifestInvalid(_) => ErrorCode::ManifestInvalid,
            Self::ManifestTooLarge(_) => ErrorCode::ManifestTooLarge,
            Self::ManifestUnknown(_) => ErrorCode::ManifestUnknown,
            Self::NameInvalid(_) => ErrorCode::NameInvalid,
            Self::NameUnknown(_) => ErrorCode::NameUnknown,
            Self::SizeInvalid(_) => ErrorCode::SizeInvalid,
            Self::BlobTooLarge(_) => ErrorCode::BlobTooLarge,
            Self::RangeNotSatisfiable(_) => ErrorCode::RangeNotSatisfiable,
            Self::Unsupported(_) => ErrorCode::Unsupported,
            Self::Denied(_) => ErrorCode::Denied,
            Self::Internal(_) => return None,
        })
    }

    /// The upload offset to report in a `Range` header with a 416.
    pub fn upload_offset(&self) -> Option<u64> {
        match self {
            Self::RangeInvalid { offset, .. } => Some(*offset),
            _ => None,
        }
    }
}

impl From<wharf_db::DbError> for RegistryError {
    fn from(e: wharf_db::DbError) -> Self {
        match e {
            wharf_db::DbError::MissingReferences(missing) => Self::ManifestBlobUnknown(missing),
            wharf_db::DbError::UploadMoved(id) => Self::BlobUploadInvalid(format!(
                "upload {id} was changed by another request while this one finished it; check its status and retry"
            )),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<wharf_storage::StorageError> for RegistryError {
    fn from(e: wharf_storage::StorageError) -> Self {
        use wharf_storage::StorageError as S;
        match e {
            S::Body(err) => Self::BlobUploadInvalid(format!(
                "the request body could not be read to its end ({err}); nothing was stored, retry the chunk"
            )),
            S::TooLarge(limit) => Self::BlobTooLarge(limit),
            S::UploadMissing(id) => Self::BlobUploadUnknown(id.to_string()),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<ManifestError> for RegistryError {
    fn from(e: ManifestError) -> Self {
        match e {
            ManifestError::TooLarge(_) => Self::ManifestTooLarge(e.to_string()),
            other => Self::ManifestInvalid(other.to_string()),
        }
    }
}

impl From<NameError> for RegistryError {
    fn from(e: NameError) -> Self {
        match &e {
            NameError::Digest(d) => Self::DigestInvalid(d.to_string()),
            NameError::BadUploadId(s) => Self::BlobUploadUnknown(s.clone()),
            NameError::BadTag(_) | NameError::BadReference(_) => {
                Self::ManifestInvalid(e.to_string())
            }
            _ => Self::NameInvalid(e.to_string()),
        }
    }
}
