//! The download's `Range` header, as Altinn Broker reads it: one `bytes=` range (`a-b`, `a-`
//! or `-n`); an end past the file is clamped; a start past the end is not satisfiable (416,
//! code 29); several ranges or anything malformed are ignored, so the whole file is sent (200).

/// An inclusive byte range of a file, never empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// The first byte sent.
    pub first: u64,
    /// The last byte sent.
    pub last: u64,
}

impl ByteRange {
    /// How many bytes the range holds.
    pub fn byte_count(&self) -> u64 {
        self.last - self.first + 1
    }
}

/// The requested range cannot be served from a file of this size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the requested range is not satisfiable for a file of {size} bytes")]
pub struct NotSatisfiable {
    /// The file's size, for the answer's `Content-Range: bytes */<size>`.
    pub size: u64,
}

/// The range to serve of a file of `size` bytes for the raw `header`: `Ok(None)` for the whole
/// file (no header, several ranges or a malformed one), `Ok(Some)` for a partial answer.
pub fn resolve(header: &str, size: u64) -> Result<Option<ByteRange>, NotSatisfiable> {
    let Some(spec) = parse(header) else {
        return Ok(None);
    };
    let range = match spec {
        Spec::From { first, last } => {
            if first >= size {
                return Err(NotSatisfiable { size });
            }
            ByteRange {
                first,
                last: last.map_or(size - 1, |last| last.min(size - 1)),
            }
        }
        // A zero-length suffix, or any suffix of an empty file, selects no byte.
        Spec::Suffix(0) => return Err(NotSatisfiable { size }),
        Spec::Suffix(_) if size == 0 => return Err(NotSatisfiable { size }),
        Spec::Suffix(length) => ByteRange {
            first: size - length.min(size),
            last: size - 1,
        },
    };
    Ok(Some(range))
}

/// One parsed range, before the file's size is known.
enum Spec {
    /// `a-b` or `a-`.
    From { first: u64, last: Option<u64> },
    /// `-n`: the last `n` bytes.
    Suffix(u64),
}

fn parse(header: &str) -> Option<Spec> {
    let set = header.trim().strip_prefix("bytes=")?.trim();
    if set.contains(',') {
        return None;
    }
    let (first, last) = set.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let number = |text: &str| -> Option<u64> {
        (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse().ok())
            .flatten()
    };
    if first.is_empty() {
        return Some(Spec::Suffix(number(last)?));
    }
    let first = number(first)?;
    if last.is_empty() {
        return Some(Spec::From { first, last: None });
    }
    let last = number(last)?;
    (last >= first).then_some(Spec::From {
        first,
        last: Some(last),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(first: u64, last: u64) -> Result<Option<ByteRange>, NotSatisfiable> {
        Ok(Some(ByteRange { first, last }))
    }

    #[test]
    fn serves_the_first_byte() {
        assert_eq!(resolve("bytes=0-0", 10), range(0, 0));
    }

    #[test]
    fn serves_the_last_byte() {
        assert_eq!(resolve("bytes=9-9", 10), range(9, 9));
        assert_eq!(resolve("bytes=-1", 10), range(9, 9));
    }

    #[test]
    fn serves_an_open_ended_range() {
        assert_eq!(resolve("bytes=4-", 10), range(4, 9));
    }

    #[test]
    fn serves_a_suffix() {
        assert_eq!(resolve("bytes=-3", 10), range(7, 9));
    }

    #[test]
    fn a_suffix_longer_than_the_file_is_the_whole_file_as_a_range() {
        assert_eq!(resolve("bytes=-100", 10), range(0, 9));
    }

    #[test]
    fn clamps_an_end_past_the_file() {
        assert_eq!(resolve("bytes=5-1000", 10), range(5, 9));
    }

    #[test]
    fn a_start_past_the_end_is_not_satisfiable() {
        assert_eq!(resolve("bytes=10-", 10), Err(NotSatisfiable { size: 10 }));
        assert_eq!(resolve("bytes=20-30", 10), Err(NotSatisfiable { size: 10 }));
    }

    #[test]
    fn no_range_of_an_empty_file_is_satisfiable() {
        assert_eq!(resolve("bytes=0-", 0), Err(NotSatisfiable { size: 0 }));
        assert_eq!(resolve("bytes=-5", 0), Err(NotSatisfiable { size: 0 }));
        assert_eq!(resolve("", 0), Ok(None));
    }

    #[test]
    fn a_zero_suffix_is_not_satisfiable() {
        assert_eq!(resolve("bytes=-0", 10), Err(NotSatisfiable { size: 10 }));
    }

    #[test]
    fn malformed_ranges_mean_the_whole_file() {
        for header in [
            "",
            "bytes=",
            "bytes=-",
            "bytes=a-b",
            "items=0-5",
            "bytes=5-2",
            "bytes=+1-2",
            "bytes=1-2-3",
            "bytes=99999999999999999999999-",
        ] {
            assert_eq!(resolve(header, 10), Ok(None), "{header}");
        }
    }

    #[test]
    fn several_ranges_mean_the_whole_file() {
        assert_eq!(resolve("bytes=0-1,4-5", 10), Ok(None));
    }

    #[test]
    fn counts_the_bytes_of_a_range() {
        assert_eq!(ByteRange { first: 2, last: 5 }.byte_count(), 4);
    }
}
