//! Byte ranges: the `Content-Range` of upload chunks and the `Range` header of blob reads.

/// An inclusive byte range `start..=end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("range {0:?} is malformed: expected `<start>-<end>` with start <= end")]
    Malformed(String),
    #[error("range {0:?} cannot be satisfied for a blob of {1} bytes")]
    Unsatisfiable(String, u64),
}

fn bounded(s: &str) -> String {
    s.chars().take(100).collect()
}

fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses an upload chunk's `Content-Range: <start>-<end>` (clients also send `bytes=` or
/// `bytes ` prefixes and a `/total` suffix, which are accepted).
pub fn parse_content_range(value: &str) -> Result<ByteRange, RangeError> {
    let v = value.trim();
    let v = v
        .strip_prefix("bytes=")
        .or_else(|| v.strip_prefix("bytes "))
        .unwrap_or(v);
    let v = v.split_once('/').map_or(v, |(r, _)| r);
    let (a, b) = v
        .split_once('-')
        .ok_or_else(|| RangeError::Malformed(bounded(value)))?;
    match (parse_u64(a.trim()), parse_u64(b.trim())) {
        // end == u64::MAX would make len() (end - start + 1) overflow; no blob is that big.
        (Some(start), Some(end)) if start <= end && end < u64::MAX => Ok(ByteRange { start, end }),
        _ => Err(RangeError::Malformed(bounded(value))),
    }
}

/// Parses a blob read's `Range: bytes=…` against a blob of `size` bytes. Only one range is
/// served; `bytes=a-`, `bytes=a-b` and the suffix form `bytes=-n` are accepted.
pub fn parse_range_header(value: &str, size: u64) -> Result<ByteRange, RangeError> {
    let spec = value
        .trim()
        .strip_prefix("bytes=")
        .ok_or_else(|| RangeError::Malformed(bounded(value)))?;
    if spec.contains(',') {
        return Err(RangeError::Malformed(bounded(value)));
    }
    let (a, b) = spec
        .split_once('-')
        .ok_or_else(|| RangeError::Malformed(bounded(value)))?;
    let (a, b) = (a.trim(), b.trim());
    let unsat = || RangeError::Unsatisfiable(bounded(value), size);
    let range = if a.is_empty() {
        let n = parse_u64(b).ok_or_else(|| RangeError::Malformed(bounded(value)))?;
        if n == 0 || size == 0 {
            return Err(unsat());
        }
        ByteRange {
            start: size.saturating_sub(n),
            end: size - 1,
        }
    } else {
        let start = parse_u64(a).ok_or_else(|| RangeError::Malformed(bounded(value)))?;
        let end = if b.is_empty() {
            size.checked_sub(1).ok_or_else(unsat)?
        } else {
            let e = parse_u64(b).ok_or_else(|| RangeError::Malformed(bounded(value)))?;
            if e < start {
                return Err(RangeError::Malformed(bounded(value)));
            }
            e.min(size.saturating_sub(1))
        };
        if start >= size {
            return Err(unsat());
        }
        ByteRange { start, end }
    };
    Ok(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_forms() {
        assert_eq!(
            parse_content_range("0-131071").unwrap(),
            ByteRange {
                start: 0,
                end: 131071
            }
        );
        assert_eq!(
            parse_content_range("bytes=5-9").unwrap(),
            ByteRange { start: 5, end: 9 }
        );
        assert_eq!(
            parse_content_range("bytes 5-9/100").unwrap(),
            ByteRange { start: 5, end: 9 }
        );
        for bad in [
            "",
            "5",
            "9-5",
            "-5",
            "a-b",
            "1-99999999999999999999999",
            "0-18446744073709551615",
        ] {
            assert!(parse_content_range(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn range_header_forms() {
        let r = |s| parse_range_header(s, 100);
        assert_eq!(r("bytes=0-9").unwrap(), ByteRange { start: 0, end: 9 });
        assert_eq!(r("bytes=90-").unwrap(), ByteRange { start: 90, end: 99 });
        assert_eq!(r("bytes=-10").unwrap(), ByteRange { start: 90, end: 99 });
        assert_eq!(r("bytes=95-200").unwrap(), ByteRange { start: 95, end: 99 });
        assert!(matches!(
            r("bytes=100-"),
            Err(RangeError::Unsatisfiable(..))
        ));
        assert!(matches!(r("bytes=0-1,5-6"), Err(RangeError::Malformed(..))));
        assert!(matches!(r("items=0-1"), Err(RangeError::Malformed(..))));
        assert!(parse_range_header("bytes=0-", 0).is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".{0,60}", size in 0u64..u64::MAX) {
            let _ = parse_content_range(&s);
            if let Ok(r) = parse_range_header(&s, size) {
                proptest::prop_assert!(r.start <= r.end && r.end < size);
            }
        }
    }
}
