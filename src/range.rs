//! Byte-range arithmetic: the `Range` header we send, the `Content-Range` we accept, and the set
//! of byte ranges already on disk.
//!
//! Everything here is pure and synchronous. Ranges are half-open, `[start, end)`, everywhere in
//! fastdl; only the HTTP headers use the inclusive form (RFC 9110 §14.1.2).

use serde::{Deserialize, Serialize};

/// A half-open byte range `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl ByteRange {
    /// A range from `start` to `end` (exclusive).
    pub fn new(start: u64, end: u64) -> ByteRange {
        debug_assert!(start <= end);
        ByteRange { start, end }
    }

    /// Number of bytes in the range.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// True when the range holds no byte.
    pub fn is_empty(&self) -> bool {
        self.start >= self.end
    }
}

/// The `Range` header value asking for `start..end`, or `start..` to the end of the resource.
pub fn range_header(start: u64, end: Option<u64>) -> String {
    match end {
        Some(end) => format!("bytes={}-{}", start, end - 1),
        None => format!("bytes={start}-"),
    }
}

/// A parsed `Content-Range` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentRange {
    /// `bytes first-last/total` (`total` is `None` for `*`).
    Bytes {
        range: ByteRange,
        total: Option<u64>,
    },
    /// `bytes */total`, sent with 416.
    Unsatisfied { total: u64 },
}

/// Parses a `Content-Range` value; `None` if it is malformed.
pub fn parse_content_range(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes")?;
    // RFC 9110 puts exactly one space here, but be lenient about extra whitespace.
    let rest = rest.trim_start();
    let (range, total) = rest.split_once('/')?;
    let total = total.trim();
    if range.trim() == "*" {
        return Some(ContentRange::Unsatisfied {
            total: parse_u64(total)?,
        });
    }
    let (first, last) = range.trim().split_once('-')?;
    let (first, last) = (parse_u64(first)?, parse_u64(last)?);
    let total = if total == "*" {
        None
    } else {
        Some(parse_u64(total)?)
    };
    if last < first || total.is_some_and(|t| last >= t) {
        return None;
    }
    Some(ContentRange::Bytes {
        range: ByteRange::new(first, last + 1),
        total,
    })
}

fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Checks the `Content-Range` of a 206 reply against the request. Returns the total size.
///
/// `asked_end` is `None` for an open-ended request (`bytes=start-`), which must be answered up to
/// the last byte. `known_total`, if we already know the size, must match too: a different total
/// means a different file. The error names what was wrong, for the log.
pub fn check_content_range(
    header: Option<&str>,
    asked_start: u64,
    asked_end: Option<u64>,
    known_total: Option<u64>,
) -> Result<u64, String> {
    let header = header.ok_or("206 reply without Content-Range")?;
    let Some(ContentRange::Bytes { range, total }) = parse_content_range(header) else {
        return Err(format!("malformed Content-Range {header:?}"));
    };
    let total = total.ok_or_else(|| format!("Content-Range {header:?} has no total size"))?;
    if let Some(known) = known_total {
        if known != total {
            return Err(format!("size changed from {known} to {total}"));
        }
    }
    let want_end = asked_end.unwrap_or(total).min(total);
    if range.start != asked_start || range.end != want_end {
        return Err(format!(
            "asked for bytes {asked_start}-{}, got Content-Range {header:?}",
            want_end.saturating_sub(1)
        ));
    }
    Ok(total)
}

/// A set of disjoint, non-adjacent byte ranges kept in order: the bytes already on disk.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RangeSet {
    ranges: Vec<ByteRange>,
}

impl RangeSet {
    /// An empty set.
    pub fn new() -> RangeSet {
        RangeSet::default()
    }

    /// The ranges, sorted and merged.
    pub fn ranges(&self) -> &[ByteRange] {
        &self.ranges
    }

    /// Adds `r`, merging it with any range it touches.
    pub fn insert(&mut self, r: ByteRange) {
        if r.is_empty() {
            return;
        }
        let (mut start, mut end) = (r.start, r.end);
        // First range that ends at or after `start` may merge; all merging ranges are contiguous.
        let i = self.ranges.partition_point(|x| x.end < start);
        let mut j = i;
        while j < self.ranges.len() && self.ranges[j].start <= end {
            start = start.min(self.ranges[j].start);
            end = end.max(self.ranges[j].end);
            j += 1;
        }
        self.ranges
            .splice(i..j, std::iter::once(ByteRange::new(start, end)));
    }

    /// Total number of bytes in the set.
    pub fn len(&self) -> u64 {
        self.ranges.iter().map(ByteRange::len).sum()
    }

    /// True when `[0, size)` is entirely in the set.
    pub fn covers(&self, size: u64) -> bool {
        size == 0 || (self.ranges.len() == 1 && self.ranges[0] == ByteRange::new(0, size))
    }

    /// The ranges of `[0, size)` that are not in the set, in order.
    pub fn gaps(&self, size: u64) -> Vec<ByteRange> {
        let mut gaps = Vec::new();
        let mut at = 0;
        for r in &self.ranges {
            if r.start >= size {
                break;
            }
            if r.start > at {
                gaps.push(ByteRange::new(at, r.start));
            }
            at = at.max(r.end);
        }
        if at < size {
            gaps.push(ByteRange::new(at, size));
        }
        gaps
    }

    /// True when every range lies inside `[0, size)`.
    pub fn fits(&self, size: u64) -> bool {
        self.ranges.last().is_none_or(|r| r.end <= size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_header_is_inclusive() {
        assert_eq!(range_header(0, Some(100)), "bytes=0-99");
        assert_eq!(range_header(5, None), "bytes=5-");
    }

    #[test]
    fn content_range_parsing() {
        let b = |s, e, t| {
            Some(ContentRange::Bytes {
                range: ByteRange::new(s, e),
                total: t,
            })
        };
        let cases = [
            ("bytes 0-99/1000", b(0, 100, Some(1000))),
            ("bytes 10-10/11", b(10, 11, Some(11))),
            ("bytes 0-99/*", b(0, 100, None)),
            ("bytes  0-99/1000", b(0, 100, Some(1000))),
            (
                "bytes */1000",
                Some(ContentRange::Unsatisfied { total: 1000 }),
            ),
            ("bytes 0-1000/1000", None),
            ("bytes 5-4/1000", None),
            ("bytes -1-5/10", None),
            ("bytes 0-5", None),
            ("items 0-5/10", None),
            ("bytes 0-+5/10", None),
            ("", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_content_range(input), want, "{input:?}");
        }
    }

    #[test]
    fn content_range_checking() {
        // (header, asked start, asked end, known total, expected)
        type Case<'a> = (Option<&'a str>, u64, Option<u64>, Option<u64>, Option<u64>);
        let cases: [Case; 10] = [
            (Some("bytes 0-999/1000"), 0, None, None, Some(1000)),
            (
                Some("bytes 0-99/1000"),
                0,
                Some(100),
                Some(1000),
                Some(1000),
            ),
            (Some("bytes 100-199/1000"), 100, Some(200), None, Some(1000)),
            // Server answers a different range than asked: never accepted.
            (Some("bytes 0-99/1000"), 100, Some(200), None, None),
            (Some("bytes 100-150/1000"), 100, Some(200), None, None),
            // Open-ended request must be answered to the end.
            (Some("bytes 0-499/1000"), 0, None, None, None),
            // Size changed between requests.
            (Some("bytes 0-99/2000"), 0, Some(100), Some(1000), None),
            (Some("bytes 0-99/*"), 0, Some(100), None, None),
            (None, 0, Some(100), None, None),
            // Asking past the end of a shorter file is answered up to its end.
            (
                Some("bytes 900-999/1000"),
                900,
                Some(2000),
                None,
                Some(1000),
            ),
        ];
        for (header, start, end, known, want) in cases {
            let got = check_content_range(header, start, end, known).ok();
            assert_eq!(
                got, want,
                "{header:?} for {start}..{end:?} (known {known:?})"
            );
        }
    }

    #[test]
    fn range_set_merges_and_finds_gaps() {
        let mut s = RangeSet::new();
        s.insert(ByteRange::new(10, 20));
        s.insert(ByteRange::new(30, 40));
        assert_eq!(
            s.gaps(50),
            vec![
                ByteRange::new(0, 10),
                ByteRange::new(20, 30),
                ByteRange::new(40, 50)
            ]
        );
        s.insert(ByteRange::new(20, 30)); // adjacent on both sides
        assert_eq!(s.ranges(), &[ByteRange::new(10, 40)]);
        s.insert(ByteRange::new(0, 5));
        s.insert(ByteRange::new(3, 12)); // overlaps two
        assert_eq!(s.ranges(), &[ByteRange::new(0, 40)]);
        assert_eq!(s.len(), 40);
        assert!(!s.covers(50));
        s.insert(ByteRange::new(40, 50));
        assert!(s.covers(50));
        assert!(s.gaps(50).is_empty());
        assert!(s.fits(50) && !s.fits(49));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any text: a value or `None`, never a panic; what parses is consistent.
        #[test]
        fn content_range_never_panics(s in "\\PC{0,40}") {
            if let Some(ContentRange::Bytes { range, total }) = parse_content_range(&s) {
                prop_assert!(range.start < range.end);
                prop_assert!(total.is_none_or(|t| range.end <= t));
            }
        }

        /// A well-formed header round-trips, and checking it against its own request passes.
        #[test]
        fn content_range_round_trips(first in 0u64..1 << 50, len in 1u64..1 << 40, extra in 0u64..1 << 20) {
            let (last, total) = (first + len - 1, first + len + extra);
            let header = format!("bytes {first}-{last}/{total}");
            prop_assert_eq!(
                parse_content_range(&header),
                Some(ContentRange::Bytes { range: ByteRange::new(first, last + 1), total: Some(total) })
            );
            prop_assert_eq!(check_content_range(Some(&header), first, Some(last + 1), Some(total)), Ok(total));
            prop_assert!(check_content_range(Some(&header), first + 1, Some(last + 1), None).is_err());
        }

        /// The Range header asks for exactly the bytes given, for any non-empty range.
        #[test]
        fn range_header_round_trips(start in 0u64..1 << 60, len in 1u64..1 << 20) {
            let h = range_header(start, Some(start + len));
            prop_assert_eq!(h, format!("bytes={}-{}", start, start + len - 1));
        }

        /// Inserting ranges in any order gives disjoint, sorted, non-adjacent ranges that hold
        /// exactly the bytes inserted.
        #[test]
        fn range_sets_hold_what_was_inserted(ranges in proptest::collection::vec((0u64..500, 0u64..50), 0..30)) {
            let mut set = RangeSet::new();
            let mut bytes = std::collections::BTreeSet::new();
            for (start, len) in ranges {
                set.insert(ByteRange::new(start, start + len));
                bytes.extend(start..start + len);
            }
            prop_assert_eq!(set.len(), bytes.len() as u64);
            for w in set.ranges().windows(2) {
                prop_assert!(w[0].end < w[1].start);
            }
            let gaps: u64 = set.gaps(600).iter().map(ByteRange::len).sum();
            prop_assert_eq!(gaps + set.len(), 600);
        }
    }
}
