//! The distribution-spec error codes as data: wire string, HTTP status, default message.

/// An error code from the OCI distribution specification (and the few Docker additions that
/// clients rely on). Each code has exactly one wire string and one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    TooManyRequests,
    /// `BLOB_UPLOAD_INVALID` answered with 416: a chunk that does not start where the upload ends.
    RangeInvalid,
    /// `MANIFEST_INVALID` answered with 413: a manifest larger than wharf accepts.
    ManifestTooLarge,
    /// `SIZE_INVALID` answered with 413: a blob larger than the configured maximum.
    BlobTooLarge,
    /// `UNSUPPORTED` answered with 405: the operation is disabled on this registry.
    MethodNotAllowed,
    /// `SIZE_INVALID` answered with 416: a blob read's `Range` lies outside the blob.
    RangeNotSatisfiable,
}

impl ErrorCode {
    /// The code as it appears in `{"errors":[{"code": …}]}`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BlobUnknown => "BLOB_UNKNOWN",
            Self::BlobUploadInvalid | Self::RangeInvalid => "BLOB_UPLOAD_INVALID",
            Self::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Self::DigestInvalid => "DIGEST_INVALID",
            Self::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Self::ManifestInvalid | Self::ManifestTooLarge => "MANIFEST_INVALID",
            Self::ManifestUnknown => "MANIFEST_UNKNOWN",
            Self::NameInvalid => "NAME_INVALID",
            Self::NameUnknown => "NAME_UNKNOWN",
            Self::SizeInvalid | Self::BlobTooLarge | Self::RangeNotSatisfiable => "SIZE_INVALID",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::Denied => "DENIED",
            Self::Unsupported | Self::MethodNotAllowed => "UNSUPPORTED",
            Self::TooManyRequests => "TOOMANYREQUESTS",
        }
    }

    /// The HTTP status the code is answered with.
    pub fn status(self) -> u16 {
        match self {
            Self::BlobUnknown
            | Self::BlobUploadUnknown
            | Self::ManifestUnknown
            | Self::NameUnknown => 404,
            Self::BlobUploadInvalid
            | Self::DigestInvalid
            | Self::ManifestBlobUnknown
            | Self::ManifestInvalid
            | Self::NameInvalid
            | Self::SizeInvalid => 400,
            Self::Unauthorized => 401,
            Self::Denied => 403,
            Self::MethodNotAllowed => 405,
            Self::ManifestTooLarge | Self::BlobTooLarge => 413,
            Self::Unsupported => 415,
            Self::RangeInvalid | Self::RangeNotSatisfiable => 416,
            Self::TooManyRequests => 429,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_spec_table() {
        assert_eq!(ErrorCode::BlobUnknown.status(), 404);
        assert_eq!(ErrorCode::ManifestBlobUnknown.status(), 400);
        assert_eq!(ErrorCode::RangeInvalid.status(), 416);
        assert_eq!(ErrorCode::RangeInvalid.as_str(), "BLOB_UPLOAD_INVALID");
        assert_eq!(ErrorCode::ManifestTooLarge.status(), 413);
        assert_eq!(ErrorCode::TooManyRequests.as_str(), "TOOMANYREQUESTS");
    }
}
