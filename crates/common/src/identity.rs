//! Identifiers of parties, parsed once at the edge so inner code never sees a raw string.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The URN prefix of an organisation party.
pub const ORGANIZATION_URN_PREFIX: &str = "urn:altinn:organization:identifier-no:";

/// Why a string is not an organisation number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrgNumberError {
    /// Not nine ASCII digits.
    #[error("an organisation number is nine digits")]
    Format,
    /// Nine digits whose mod-11 check digit is wrong.
    #[error("the organisation number's check digit is wrong")]
    CheckDigit,
    /// Neither `<9 digits>`, `<4 digits>:<9 digits>` nor an organisation URN.
    #[error(
        "an organisation is written as 0192:<9 digits> or urn:altinn:organization:identifier-no:<9 digits>"
    )]
    Identifier,
}

/// A Norwegian organisation number (Enhetsregisteret): nine digits with a mod-11 check digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrgNumber([u8; 9]);

impl OrgNumber {
    /// Parses exactly nine digits and verifies the check digit.
    pub fn parse(text: &str) -> Result<Self, OrgNumberError> {
        let bytes = text.as_bytes();
        if bytes.len() != 9 || !bytes.iter().all(u8::is_ascii_digit) {
            return Err(OrgNumberError::Format);
        }
        let mut digits = [0u8; 9];
        for (digit, byte) in digits.iter_mut().zip(bytes) {
            *digit = byte - b'0';
        }
        const WEIGHTS: [u32; 8] = [3, 2, 7, 6, 5, 4, 3, 2];
        let sum: u32 = WEIGHTS
            .iter()
            .zip(&digits)
            .map(|(weight, digit)| weight * u32::from(*digit))
            .sum();
        let check = match 11 - sum % 11 {
            11 => 0,
            10 => return Err(OrgNumberError::CheckDigit),
            check => check,
        };
        if u32::from(digits[8]) != check {
            return Err(OrgNumberError::CheckDigit);
        }
        Ok(Self(digits))
    }

    /// Parses an organisation identifier as the Broker API writes it: `0192:<9 digits>`, any
    /// four-digit ICD prefix, an organisation URN, or (leniently) the bare nine digits.
    pub fn parse_identifier(text: &str) -> Result<Self, OrgNumberError> {
        if let Some(rest) = text.strip_prefix(ORGANIZATION_URN_PREFIX) {
            return Self::parse(rest);
        }
        match text.split_once(':') {
            Some((icd, rest)) if icd.len() == 4 && icd.bytes().all(|b| b.is_ascii_digit()) => {
                Self::parse(rest)
            }
            Some(_) => Err(OrgNumberError::Identifier),
            None => Self::parse(text),
        }
    }

    /// The `0192:<orgnr>` form used in Maskinporten's `consumer.ID`.
    pub fn iso6523(&self) -> String {
        format!("0192:{self}")
    }

    /// The organisation's party URN.
    pub fn urn(&self) -> String {
        format!("{ORGANIZATION_URN_PREFIX}{self}")
    }
}

impl fmt::Display for OrgNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for digit in self.0 {
            write!(f, "{digit}")?;
        }
        Ok(())
    }
}

impl FromStr for OrgNumber {
    type Err = OrgNumberError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl Serialize for OrgNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for OrgNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_organisation_numbers() {
        for valid in ["991825827", "974760673", "910753614", "313367002"] {
            assert_eq!(OrgNumber::parse(valid).unwrap().to_string(), valid);
        }
    }

    #[test]
    fn rejects_wrong_check_digits_and_shapes() {
        assert_eq!(
            OrgNumber::parse("991825828"),
            Err(OrgNumberError::CheckDigit)
        );
        assert_eq!(OrgNumber::parse("99182582"), Err(OrgNumberError::Format));
        assert_eq!(OrgNumber::parse("99182582a"), Err(OrgNumberError::Format));
        assert_eq!(OrgNumber::parse("９91825827"), Err(OrgNumberError::Format));
    }

    #[test]
    fn parses_every_identifier_form() {
        let expected = OrgNumber::parse("991825827").unwrap();
        for form in [
            "991825827",
            "0192:991825827",
            "urn:altinn:organization:identifier-no:991825827",
        ] {
            assert_eq!(OrgNumber::parse_identifier(form), Ok(expected));
        }
        assert_eq!(
            OrgNumber::parse_identifier("urn:altinn:person:identifier-no:991825827"),
            Err(OrgNumberError::Identifier)
        );
        assert_eq!(
            expected.urn(),
            "urn:altinn:organization:identifier-no:991825827"
        );
        assert_eq!(expected.iso6523(), "0192:991825827");
    }
}
