//! Values that Altinn's clients write in more than one way, bound once here as ASP.NET binds
//! them: points in time as `DateTimeOffset.Parse` reads them, and resource ids with or without
//! their `urn:altinn:resource:` prefix.

use std::fmt;

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The prefix that makes a resource id a resource URN.
pub const RESOURCE_URN_PREFIX: &str = "urn:altinn:resource:";

/// A point in time as a client sent it: RFC 3339, ISO 8601 without an offset (taken as UTC, the
/// zone Altinn's servers run in), with a space instead of `T`, or a bare date (its midnight).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    /// Parses `text` in any of the accepted forms.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if let Ok(time) = DateTime::parse_from_rfc3339(text) {
            return Some(Self(time.with_timezone(&Utc)));
        }
        // `2026-01-01 12:00:00Z`, `2026-01-01T12:00+02:00`, `…+0200`, `…+02`.
        let text = text.replacen(' ', "T", 1);
        let (local, offset) = split_offset(&text);
        let naive = NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M:%S%.f")
            .or_else(|_| NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M"))
            .ok()
            .or_else(|| {
                NaiveDate::parse_from_str(local, "%Y-%m-%d")
                    .ok()
                    .and_then(|date| date.and_hms_opt(0, 0, 0))
            })?;
        let seconds = match offset {
            None => 0,
            Some(offset) => parse_offset(offset)?,
        };
        let utc = naive.checked_sub_signed(chrono::TimeDelta::try_seconds(seconds.into())?)?;
        Some(Self(utc.and_utc()))
    }

    /// RFC 3339 in UTC, as the services take it.
    pub fn rfc3339(&self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }
}

/// The local part and the offset (`Z`, `+hh:mm`, `+hhmm`, `+hh`) of an ISO 8601 time.
fn split_offset(text: &str) -> (&str, Option<&str>) {
    if let Some(local) = text.strip_suffix(['Z', 'z']) {
        return (local, Some("+00:00"));
    }
    // A sign after the time part starts the offset (the date's hyphens come before the `T`).
    let time_start = text.find('T').map_or(text.len(), |t| t + 1);
    match text[time_start..].find(['+', '-']) {
        Some(at) => (&text[..time_start + at], Some(&text[time_start + at..])),
        None => (text, None),
    }
}

/// An offset as signed seconds east of UTC.
fn parse_offset(offset: &str) -> Option<i32> {
    let sign = match offset.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = offset[1..].chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (hours, minutes) = match digits.len() {
        1 | 2 => (digits.parse::<i32>().ok()?, 0),
        4 => (digits[..2].parse().ok()?, digits[2..].parse().ok()?),
        _ => return None,
    };
    (hours <= 14 && minutes < 60).then_some(sign * (hours * 3600 + minutes * 60))
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl Visitor<'_> for Text {
            type Value = Timestamp;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a date and time, such as 2026-01-31T12:00:00Z")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Timestamp, E> {
                Timestamp::parse(text)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Str(text), &self))
            }
        }
        deserializer.deserialize_str(Text)
    }
}

/// A resource id, with the `urn:altinn:resource:` prefix a client may put before it removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceId(pub String);

impl ResourceId {
    /// The id without its URN prefix.
    pub fn new(text: &str) -> Self {
        let bare = text
            .get(..RESOURCE_URN_PREFIX.len())
            .filter(|prefix| prefix.eq_ignore_ascii_case(RESOURCE_URN_PREFIX))
            .map_or(text, |_| &text[RESOURCE_URN_PREFIX.len()..]);
        Self(bare.to_owned())
    }
}

impl<'de> Deserialize<'de> for ResourceId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|text| Self::new(&text))
    }
}

impl Serialize for ResourceId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_date_time_offset_parses_them() {
        let utc = |text: &str| Timestamp::parse(text).map(|t| t.rfc3339());
        let noon = Some("2026-01-31T12:00:00Z".to_owned());
        for text in [
            "2026-01-31T12:00:00Z",
            "2026-01-31T12:00:00.000Z",
            "2026-01-31T13:00:00+01:00",
            "2026-01-31T13:00:00+0100",
            "2026-01-31T13:00:00+01",
            "2026-01-31T10:30:00-01:30",
            "2026-01-31T12:00:00",
            "2026-01-31 12:00:00",
            "2026-01-31 12:00",
            " 2026-01-31T12:00:00 ",
        ] {
            assert_eq!(utc(text), noon, "{text}");
        }
        assert_eq!(utc("2026-01-31"), Some("2026-01-31T00:00:00Z".to_owned()));
        assert_eq!(
            utc("2026-01-31T12:00:00.1234567"),
            Some("2026-01-31T12:00:00.123456700Z".to_owned())
        );
        for bad in [
            "yesterday",
            "2026-13-01",
            "2026-01-31T25:00:00",
            "2026-01-31T12:00:00+25:00",
            "",
        ] {
            assert_eq!(utc(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_resource_urn_is_its_id() {
        assert_eq!(
            ResourceId::new("urn:altinn:resource:broker-demo").0,
            "broker-demo"
        );
        assert_eq!(
            ResourceId::new("URN:ALTINN:RESOURCE:broker-demo").0,
            "broker-demo"
        );
        assert_eq!(ResourceId::new("broker-demo").0, "broker-demo");
        assert_eq!(
            ResourceId::new("urn:altinn:resource").0,
            "urn:altinn:resource"
        );
    }
}
