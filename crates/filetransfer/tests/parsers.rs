//! Property-based tests of the parsers a caller reaches in this crate: the download's `Range`
//! header and the ISO-8601 (xs:duration) time to live of resource settings. Thousands of cases
//! each: arbitrary text never panics, well-formed input is read exactly, and what comes out
//! stays within the file or the duration's bounds.

use broker_filetransfer::domain::settings::{format_timespan, parse_duration};
use broker_filetransfer::range::{ByteRange, NotSatisfiable, resolve};
use chrono::TimeDelta;
use proptest::prelude::*;

/// Cases per property: the parsers are pure and fast.
const CASES: u32 = 4096;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Any header and size: either the whole file, a range inside the file, or 416.
    #[test]
    fn any_range_header_stays_within_the_file(header in "\\PC{0,40}", size in 0u64..1 << 40) {
        match resolve(&header, size) {
            Ok(None) => {}
            Ok(Some(range)) => {
                prop_assert!(range.first <= range.last && range.last < size, "{range:?}");
                prop_assert_eq!(range.byte_count(), range.last - range.first + 1);
            }
            Err(error) => prop_assert_eq!(error, NotSatisfiable { size }),
        }
    }

    /// Headers that look like ranges (digits, dashes, commas, blanks): same bounds, no panic,
    /// digits past u64 included.
    #[test]
    fn range_shaped_headers_stay_within_the_file(
        header in "[ ]?bytes=[ ]?[0-9]{0,22}[ ]?-[ ]?[0-9]{0,22}(,[0-9]{0,3}-[0-9]{0,3})?",
        size in 0u64..u64::MAX,
    ) {
        if let Ok(Some(range)) = resolve(&header, size) {
            prop_assert!(range.first <= range.last && range.last < size, "{header} {range:?}");
        }
    }

    /// `bytes=a-b` is served as `a..=min(b, size-1)` when `a` is inside the file, 416 when not.
    #[test]
    fn a_closed_range_is_clamped_to_the_file(
        first in 0u64..1 << 40,
        length in 0u64..1 << 40,
        size in 0u64..1 << 41,
    ) {
        let last = first + length;
        let resolved = resolve(&format!("bytes={first}-{last}"), size);
        if first < size {
            prop_assert_eq!(resolved, Ok(Some(ByteRange { first, last: last.min(size - 1) })));
        } else {
            prop_assert_eq!(resolved, Err(NotSatisfiable { size }));
        }
    }

    /// `bytes=-n` is the last `min(n, size)` bytes; nothing to serve is 416.
    #[test]
    fn a_suffix_range_is_the_end_of_the_file(suffix in 0u64..1 << 41, size in 0u64..1 << 41) {
        let resolved = resolve(&format!("bytes=-{suffix}"), size);
        if suffix == 0 || size == 0 {
            prop_assert_eq!(resolved, Err(NotSatisfiable { size }));
        } else {
            let range = resolved.unwrap().unwrap();
            prop_assert_eq!(range.last, size - 1);
            prop_assert_eq!(range.byte_count(), suffix.min(size));
        }
    }

    /// Several ranges are not served partially: the whole file goes out.
    #[test]
    fn several_ranges_send_the_whole_file(a in 0u64..1000, b in 0u64..1000, size in 1u64..2000) {
        prop_assert_eq!(resolve(&format!("bytes={a}-{b},{b}-"), size), Ok(None));
    }

    /// Any text: no panic, and a duration read is never negative.
    #[test]
    fn any_duration_text_is_read_or_refused(text in "\\PC{0,30}") {
        if let Some(duration) = parse_duration(&text) {
            prop_assert!(duration >= TimeDelta::zero(), "{text} read as {duration}");
        }
    }

    /// Duration-shaped text, numbers past `int` included: no panic, never negative.
    #[test]
    fn duration_shaped_text_is_read_or_refused(
        text in "P([0-9]{1,11}Y)?([0-9]{1,11}M)?([0-9]{1,11}D)?(T([0-9]{1,11}H)?([0-9]{1,11}M)?([0-9]{0,11}(\\.[0-9]{0,12})?S)?)?",
    ) {
        if let Some(duration) = parse_duration(&text) {
            prop_assert!(duration >= TimeDelta::zero(), "{text} read as {duration}");
        }
    }

    /// `PnDTnHnMn.fS` is read as exactly that many days, hours, minutes, seconds and
    /// nanoseconds, and written back by `format_timespan` as .NET's `d.hh:mm:ss.fffffff`.
    #[test]
    fn a_written_duration_is_read_exactly(
        days in 0i64..100_000,
        hours in 0i64..24,
        minutes in 0i64..60,
        seconds in 0i64..60,
        ticks in 0i64..10_000_000,
    ) {
        let text = format!("P{days}DT{hours}H{minutes}M{seconds}.{ticks:07}S");
        let expected = TimeDelta::days(days)
            + TimeDelta::hours(hours)
            + TimeDelta::minutes(minutes)
            + TimeDelta::seconds(seconds)
            + TimeDelta::nanoseconds(ticks * 100);
        prop_assert_eq!(parse_duration(&text), Some(expected));
        let mut written = if days > 0 { format!("{days}.") } else { String::new() };
        written += &format!("{hours:02}:{minutes:02}:{seconds:02}");
        if ticks > 0 {
            written += &format!(".{ticks:07}");
        }
        prop_assert_eq!(format_timespan(expected), written);
    }

    /// Years and months count as .NET counts them: a year is 365 days, twelve months a year,
    /// any other month 30 days.
    #[test]
    fn years_and_months_count_as_dotnet_does(years in 0i64..1000, months in 0i64..1000) {
        let expected = TimeDelta::days(years * 365 + months / 12 * 365 + months % 12 * 30);
        prop_assert_eq!(parse_duration(&format!("P{years}Y{months}M")), Some(expected));
    }
}
