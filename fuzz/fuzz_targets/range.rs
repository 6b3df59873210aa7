//! Both byte-range parsers. Input format: `<size>\n<header value>`; `<size>` is a decimal u64
//! (if it does not parse, or there is no newline, the whole input is the header value). Each
//! value is also tried against the edge sizes 0, 1 and u64::MAX.
//! Invariants: parse_range_header Ok => start <= end < size;
//!             parse_content_range Ok => start <= end; len() never overflows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wharf_oci::{parse_content_range, parse_range_header};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (size, value) = match text.split_once('\n') {
        Some((first, rest)) => match first.parse::<u64>() {
            Ok(n) => (Some(n), rest),
            Err(_) => (None, text.as_ref()),
        },
        None => (None, text.as_ref()),
    };

    if let Ok(r) = parse_content_range(value) {
        assert!(r.start <= r.end, "content range {value:?} gave {r:?}");
        assert_eq!(r.len(), r.end - r.start + 1);
    }

    for size in size.into_iter().chain([0, 1, u64::MAX]) {
        if let Ok(r) = parse_range_header(value, size) {
            assert!(
                r.start <= r.end && r.end < size,
                "range {value:?} against size {size} gave {r:?}"
            );
            assert!(r.len() <= size);
        }
    }
});
