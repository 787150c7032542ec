//! Organisation numbers and the forms the broker names parties in.

use crate::error::CliError;

/// A Norwegian organisation number: nine digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgNumber(String);

impl OrgNumber {
    /// Parses `text`: nine digits, or the file-transfer API's `0192:<nine digits>`.
    pub fn parse(text: &str) -> Result<Self, CliError> {
        let digits = text.strip_prefix("0192:").unwrap_or(text);
        if digits.len() == 9 && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(digits.to_owned()))
        } else {
            Err(CliError::Config(format!(
                "`{text}` is not an organisation number (nine digits, optionally after `0192:`)"
            )))
        }
    }

    /// `0192:<orgnr>`, as the file-transfer API names senders and recipients.
    pub fn party(&self) -> String {
        format!("0192:{}", self.0)
    }

    /// `urn:altinn:organization:identifier-no:<orgnr>`, as events name their subject.
    pub fn urn(&self) -> String {
        format!("urn:altinn:organization:identifier-no:{}", self.0)
    }
}

/// `urn:altinn:resource:<id>`, as events name a resource.
pub fn resource_urn(resource: &str) -> String {
    format!("urn:altinn:resource:{resource}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_bare_and_prefixed_numbers() {
        assert_eq!(
            OrgNumber::parse("974760673").unwrap().party(),
            "0192:974760673"
        );
        assert_eq!(
            OrgNumber::parse("0192:310000000").unwrap().urn(),
            "urn:altinn:organization:identifier-no:310000000"
        );
    }

    #[test]
    fn refuses_anything_else() {
        for bad in ["", "97476067", "9747606731", "0192:abc", "0193:974760673"] {
            assert!(OrgNumber::parse(bad).is_err(), "{bad}");
        }
    }
}
