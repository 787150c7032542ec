//! The report's query as ASP.NET binds Altinn's `[FromQuery] GetMonthlyStatisticsReportRequest`,
//! so a query Altinn accepts means the same here and one it refuses is refused with the same
//! validation problem:
//!
//! - names in any case, all bare (`year`) or all prefixed with the parameter's name
//!   (`request.year`) when any name is;
//! - of a repeated name, the first value counts (the error message quotes them all, joined with
//!   `,`);
//! - an absent value is the default (`year`, `month`: 0, refused later as code 6003;
//!   `includeEndUser` true; `includeVendor` false), a blank one is "The value '' is invalid.";
//! - ints and bools parse as .NET's type converters parse them (below); anything else is "The
//!   value 'abc' is not valid for Year.", keyed by the property's name.

use std::collections::BTreeMap;

use broker_common::Problem;

/// The prefix ASP.NET binds the whole request under when the query uses it.
const PREFIX: &str = "request";

/// The report's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatisticsParams {
    /// `year`; 0 when absent.
    pub year: i32,
    /// `month`; 0 when absent.
    pub month: i32,
    /// `resourceId`, as sent; empty when absent.
    pub resource_id: String,
    /// `includeEndUser`; true when absent.
    pub include_end_user: bool,
    /// `includeVendor`; false when absent.
    pub include_vendor: bool,
}

impl StatisticsParams {
    /// Binds the query's `pairs` (decoded, in order), or a 400 naming every bad value.
    pub fn bind(pairs: &[(String, String)]) -> Result<Self, Problem> {
        let query = Query::new(pairs);
        let mut errors = BTreeMap::new();
        let year = query.bind("Year", 0, dotnet_int, &mut errors);
        let month = query.bind("Month", 0, dotnet_int, &mut errors);
        let include_end_user = query.bind("IncludeEndUser", true, dotnet_bool, &mut errors);
        let include_vendor = query.bind("IncludeVendor", false, dotnet_bool, &mut errors);
        if !errors.is_empty() {
            return Err(Problem::validation(errors));
        }
        Ok(Self {
            year,
            month,
            resource_id: query
                .values("ResourceId")
                .next()
                .unwrap_or_default()
                .to_owned(),
            include_end_user,
            include_vendor,
        })
    }
}

/// The query's pairs and the prefix its names carry.
struct Query<'a> {
    pairs: &'a [(String, String)],
    prefix: &'static str,
}

impl<'a> Query<'a> {
    fn new(pairs: &'a [(String, String)]) -> Self {
        // ASP.NET binds under the parameter's name when any key is it or starts with it.
        let prefixed = pairs.iter().any(|(name, _)| {
            let name = name.as_bytes();
            name.get(..PREFIX.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(PREFIX.as_bytes()))
                && matches!(name.get(PREFIX.len()), None | Some(b'.' | b'['))
        });
        Self {
            pairs,
            prefix: if prefixed { "request." } else { "" },
        }
    }

    /// The key ASP.NET files a property's errors under.
    fn key(&self, property: &str) -> String {
        format!("{}{property}", self.prefix)
    }

    /// Every value of `property`, in order.
    fn values(&self, property: &str) -> impl Iterator<Item = &'a str> {
        let key = self.key(property);
        self.pairs
            .iter()
            .filter(move |(name, _)| name.eq_ignore_ascii_case(&key))
            .map(|(_, value)| value.as_str())
    }

    /// The first value of `property` parsed by `parse`; `default` when absent; else an error
    /// recorded in `errors`.
    fn bind<T: Copy>(
        &self,
        property: &str,
        default: T,
        parse: fn(&str) -> Option<T>,
        errors: &mut BTreeMap<String, Vec<String>>,
    ) -> T {
        let Some(first) = self.values(property).next() else {
            return default;
        };
        let attempted = self.values(property).collect::<Vec<_>>().join(",");
        let message = if first.trim().is_empty() {
            format!("The value '{attempted}' is invalid.")
        } else if let Some(value) = parse(first) {
            return value;
        } else {
            format!("The value '{attempted}' is not valid for {property}.")
        };
        errors.entry(self.key(property)).or_default().push(message);
        default
    }
}

/// An `int` as .NET's `Int32Converter` reads one: trimmed, then hexadecimal after `#`, `0x` or
/// `&h` (1–8 digits, the bits of an unsigned value), else decimal with an optional sign.
pub fn dotnet_int(text: &str) -> Option<i32> {
    let text = text.trim();
    let hex = text.strip_prefix('#').or_else(|| {
        let head = text.get(..2)?;
        ["0x", "&h"]
            .iter()
            .any(|prefix| head.eq_ignore_ascii_case(prefix))
            .then(|| &text[2..])
    });
    if let Some(hex) = hex {
        // `Convert.ToInt32(text, 16)` itself skips a `+`, then one more `0x`.
        let hex = hex.strip_prefix('+').unwrap_or(hex);
        let digits = hex
            .get(..2)
            .filter(|head| head.eq_ignore_ascii_case("0x"))
            .map_or(hex, |_| &hex[2..]);
        if !(1..=8).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        // Eight hex digits are a u32's bits: `FFFFFFFF` is -1.
        return u32::from_str_radix(digits, 16).ok().map(u32::cast_signed);
    }
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    // Leading zeros are allowed, however many.
    let significant = digits.trim_start_matches('0');
    let magnitude: i64 = if significant.is_empty() {
        0
    } else if significant.len() > 10 {
        return None;
    } else {
        significant.parse().ok()?
    };
    i32::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// A `bool` as .NET's `BooleanConverter` reads one: `true` or `false` in any case, trimmed.
pub fn dotnet_bool(text: &str) -> Option<bool> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &[(&str, &str)]) -> Vec<(String, String)> {
        query
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn errors(query: &[(&str, &str)]) -> BTreeMap<String, Vec<String>> {
        *StatisticsParams::bind(&pairs(query))
            .unwrap_err()
            .errors
            .unwrap()
    }

    #[test]
    fn ints_parse_as_dotnet_parses_them() {
        for (text, value) in [
            ("2026", Some(2026)),
            (" 0042 ", Some(42)),
            ("+7", Some(7)),
            ("-3", Some(-3)),
            ("000", Some(0)),
            ("0x7EA", Some(2026)),
            ("&H7ea", Some(2026)),
            ("#0x10", Some(16)),
            ("0x+10", Some(16)),
            ("0x-10", None),
            ("FFFFFFFF", None),
            ("0xFFFFFFFF", Some(-1)),
            ("0x100000000", None),
            ("2147483647", Some(i32::MAX)),
            ("-2147483648", Some(i32::MIN)),
            ("2147483648", None),
            ("00000000000000000001", Some(1)),
            ("1.0", None),
            ("1e3", None),
            ("- 1", None),
            ("", None),
            ("#", None),
            ("abc", None),
        ] {
            assert_eq!(dotnet_int(text), value, "{text:?}");
        }
    }

    #[test]
    fn bools_are_true_or_false_in_any_case() {
        assert_eq!(dotnet_bool(" TRUE "), Some(true));
        assert_eq!(dotnet_bool("False"), Some(false));
        assert_eq!(dotnet_bool("1"), None);
        assert_eq!(dotnet_bool("yes"), None);
    }

    #[test]
    fn names_bind_in_any_case_with_defaults() {
        let bound = StatisticsParams::bind(&pairs(&[
            ("YEAR", "2026"),
            ("month", "1"),
            ("ResourceID", "r"),
            ("year", "1999"),
        ]))
        .unwrap();
        assert_eq!(
            bound,
            StatisticsParams {
                year: 2026,
                month: 1,
                resource_id: "r".into(),
                include_end_user: true,
                include_vendor: false,
            }
        );
        let empty = StatisticsParams::bind(&[]).unwrap();
        assert_eq!((empty.year, empty.month), (0, 0));
        let prefixed =
            StatisticsParams::bind(&pairs(&[("request.Year", "2026"), ("month", "5")])).unwrap();
        assert_eq!(
            (prefixed.year, prefixed.month),
            (2026, 0),
            "all or none prefixed"
        );
    }

    #[test]
    fn bad_values_are_validation_errors_keyed_by_property() {
        assert_eq!(
            errors(&[("year", "abc"), ("month", ""), ("includeVendor", "1")]),
            BTreeMap::from([
                (
                    "IncludeVendor".into(),
                    vec!["The value '1' is not valid for IncludeVendor.".into()]
                ),
                ("Month".into(), vec!["The value '' is invalid.".into()]),
                (
                    "Year".into(),
                    vec!["The value 'abc' is not valid for Year.".into()]
                ),
            ])
        );
        assert_eq!(
            errors(&[("year", "x"), ("Year", "2026")]),
            BTreeMap::from([(
                "Year".into(),
                vec!["The value 'x,2026' is not valid for Year.".into()]
            )])
        );
        assert_eq!(
            errors(&[("request.month", "13x")]),
            BTreeMap::from([(
                "request.Month".into(),
                vec!["The value '13x' is not valid for Month.".into()]
            )])
        );
    }
}
