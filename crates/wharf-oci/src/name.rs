//! Repository names, tags, references and upload ids, validated by the distribution spec's
//! grammar.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

/// Longest repository name wharf accepts, counted after `library/` normalisation.
pub const MAX_NAME_LEN: usize = 255;
/// The namespace that holds official images: `nginx` means `library/nginx`.
pub const OFFICIAL_NAMESPACE: &str = "library";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("repository name is empty")]
    EmptyName,
    #[error("repository name is {0} characters long; the limit is {MAX_NAME_LEN}")]
    NameTooLong(usize),
    #[error(
        "repository name {name:?} is invalid: component {component:?} must be lowercase letters and digits, separated by '.', '_', '__' or '-' (for example `myorg/my-app`)"
    )]
    BadComponent { name: String, component: String },
    #[error(
        "tag {0:?} is invalid: a tag is 1 to 128 characters of letters, digits, '_', '.' and '-', and does not start with '.' or '-'"
    )]
    BadTag(String),
    #[error("reference {0:?} is neither a valid tag nor a digest")]
    BadReference(String),
    #[error(transparent)]
    Digest(#[from] DigestError),
    #[error("upload id {0:?} is not a wharf upload id")]
    BadUploadId(String),
}

fn bounded(s: &str) -> String {
    s.chars().take(100).collect()
}

/// A repository name such as `myorg/team/app`. One-segment names are official images and are
/// normalised to `library/<name>`, as Docker Hub does.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName(String);

fn valid_component(c: &str) -> bool {
    // [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
    let b = c.as_bytes();
    if b.is_empty() {
        return false;
    }
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

impl RepoName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first path component: the namespace that owns the repository.
    pub fn namespace(&self) -> &str {
        self.0.split('/').next().unwrap_or(&self.0)
    }
}

impl FromStr for RepoName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(NameError::EmptyName);
        }
        let normalised = if s.contains('/') {
            s.to_owned()
        } else {
            format!("{OFFICIAL_NAMESPACE}/{s}")
        };
        if normalised.len() > MAX_NAME_LEN {
            return Err(NameError::NameTooLong(normalised.len()));
        }
        if let Some(bad) = normalised.split('/').find(|c| !valid_component(c)) {
            return Err(NameError::BadComponent {
                name: bounded(s),
                component: bounded(bad),
            });
        }
        Ok(Self(normalised))
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Tag {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 128
            && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
            && b.iter()
                .all(|&x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(NameError::BadTag(bounded(s)))
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a manifest URL names: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

impl FromStr for Reference {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains(':') {
            Ok(Self::Digest(s.parse()?))
        } else {
            s.parse().map(Self::Tag).map_err(|e| match e {
                NameError::BadTag(_) => NameError::BadReference(bounded(s)),
                other => other,
            })
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tag(t) => t.fmt(f),
            Self::Digest(d) => d.fmt(f),
        }
    }
}

/// An upload session id: a lowercase hyphenated UUID.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UploadId(String);

impl UploadId {
    /// Wraps a freshly generated UUID string (from the caller's random source).
    pub fn from_uuid_string(s: String) -> Result<Self, NameError> {
        s.parse()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for UploadId {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        let ok = b.len() == 36
            && b.iter().enumerate().all(|(i, &x)| {
                if matches!(i, 8 | 13 | 18 | 23) {
                    x == b'-'
                } else {
                    x.is_ascii_digit() || (b'a'..=b'f').contains(&x)
                }
            });
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(NameError::BadUploadId(bounded(s)))
        }
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            "nginx".parse::<RepoName>().unwrap().as_str(),
            "library/nginx"
        );
        assert_eq!("me/app".parse::<RepoName>().unwrap().as_str(), "me/app");
        assert_eq!(
            "a/b.c/d__e/f-g--h/i_j"
                .parse::<RepoName>()
                .unwrap()
                .namespace(),
            "a"
        );
        for bad in [
            "", "Me/app", "me/App", "me//app", "me/app/", "/me", "me/..", "../etc", "me/.app",
            "me/app.", "me/a___b", "me/a..b", "me/a b", "me/a%2fb", "me/a:b",
        ] {
            assert!(bad.parse::<RepoName>().is_err(), "{bad:?} was accepted");
        }
        let long = format!("me/{}", "a".repeat(300));
        assert!(matches!(
            long.parse::<RepoName>(),
            Err(NameError::NameTooLong(_))
        ));
    }

    #[test]
    fn tags() {
        for ok in ["latest", "v1.0", "V1_2-3", "_x", &"a".repeat(128)] {
            assert!(ok.parse::<Tag>().is_ok(), "{ok:?}");
        }
        for bad in ["", ".hidden", "-x", "..", "a/b", "a:b", &"a".repeat(129)] {
            assert!(bad.parse::<Tag>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn references() {
        assert!(matches!("v1".parse::<Reference>(), Ok(Reference::Tag(_))));
        assert!(matches!(
            "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
                .parse::<Reference>(),
            Ok(Reference::Digest(_))
        ));
        assert!("sha256:zz".parse::<Reference>().is_err());
        assert!("..".parse::<Reference>().is_err());
    }

    #[test]
    fn upload_ids() {
        assert!(
            "123e4567-e89b-12d3-a456-426614174000"
                .parse::<UploadId>()
                .is_ok()
        );
        assert!("../../etc/passwd".parse::<UploadId>().is_err());
        assert!(
            "123E4567-E89B-12D3-A456-426614174000"
                .parse::<UploadId>()
                .is_err()
        );
    }

    proptest::proptest! {
        #[test]
        fn accepted_names_are_path_safe(s in "[a-z0-9._/-]{1,80}") {
            if let Ok(n) = s.parse::<RepoName>() {
                proptest::prop_assert!(!n.as_str().split('/').any(|c| c == ".." || c == "." || c.is_empty()));
            }
        }
    }
}
