//! Byte sizes as people write them (`64MiB`, `1GB`, `4096`), for flags and the configuration
//! file alike, so `--tus-threshold 64MiB` and `tus_threshold = "64MiB"` mean the same.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The units understood, largest first (for [`ByteSize`]'s display): IEC binary and SI decimal.
const UNITS: [(&str, u64); 8] = [
    ("TiB", 1 << 40),
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
    ("TB", 1_000_000_000_000),
    ("GB", 1_000_000_000),
    ("MB", 1_000_000),
    ("kB", 1_000),
];

/// A number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;

    /// A whole number, optionally followed by a unit (case-insensitive; `B` for bytes).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (number, unit) = text
            .find(|c: char| !c.is_ascii_digit())
            .map_or((text, ""), |at| text.split_at(at));
        let value: u64 = number
            .parse()
            .map_err(|_| format!("`{text}` is not a size like 64MiB or 1000000"))?;
        let unit = unit.trim();
        let multiplier = if unit.is_empty() || unit.eq_ignore_ascii_case("B") {
            1
        } else {
            UNITS
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(unit))
                .map(|(_, multiplier)| *multiplier)
                .ok_or_else(|| {
                    format!("`{text}`: the unit must be B, KiB, MiB, GiB, TiB, kB, MB, GB or TB")
                })?
        };
        value
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(|| format!("`{text}` is too large"))
    }
}

impl fmt::Display for ByteSize {
    /// In the largest binary unit that divides it exactly (`64MiB`), else in bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let binary = UNITS
            .iter()
            .filter(|(name, _)| name.ends_with("iB"))
            .find(|(_, multiplier)| self.0 > 0 && self.0.is_multiple_of(*multiplier));
        match binary {
            Some((name, multiplier)) => write!(f, "{}{name}", self.0 / multiplier),
            None => write!(f, "{}", self.0),
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    /// A TOML integer (bytes) or a string with a unit.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Bytes(u64),
            Text(String),
        }
        match Written::deserialize(deserializer)? {
            Written::Bytes(bytes) => Ok(ByteSize(bytes)),
            Written::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_with_and_without_units() {
        assert_eq!("4096".parse(), Ok(ByteSize(4096)));
        assert_eq!("12B".parse(), Ok(ByteSize(12)));
        assert_eq!("64MiB".parse(), Ok(ByteSize(64 << 20)));
        assert_eq!("64 mib".parse(), Ok(ByteSize(64 << 20)));
        assert_eq!("2GB".parse(), Ok(ByteSize(2_000_000_000)));
        assert_eq!("1KiB".parse(), Ok(ByteSize(1024)));
        assert!("".parse::<ByteSize>().is_err());
        assert!("MiB".parse::<ByteSize>().is_err());
        assert!("1.5GiB".parse::<ByteSize>().is_err());
        assert!("3 parsecs".parse::<ByteSize>().is_err());
        assert!("99999999TiB".parse::<ByteSize>().is_err());
    }

    #[test]
    fn sizes_print_in_the_largest_exact_binary_unit() {
        assert_eq!(ByteSize(64 << 20).to_string(), "64MiB");
        assert_eq!(ByteSize(1536).to_string(), "1536");
        assert_eq!(ByteSize(3 << 30).to_string(), "3GiB");
        assert_eq!(ByteSize(1000).to_string(), "1000");
        assert_eq!(ByteSize(0).to_string(), "0");
    }

    #[test]
    fn the_configuration_takes_integers_and_strings() {
        #[derive(Deserialize, Serialize)]
        struct Holder {
            size: ByteSize,
        }
        let number: Holder = toml::from_str("size = 1024").expect("an integer");
        assert_eq!(number.size, ByteSize(1024));
        let text: Holder = toml::from_str("size = \"8MiB\"").expect("a string");
        assert_eq!(text.size, ByteSize(8 << 20));
        assert!(toml::from_str::<Holder>("size = \"lots\"").is_err());
        let written = toml::to_string(&text).expect("serializes");
        assert_eq!(written.trim(), "size = \"8MiB\"");
    }
}
