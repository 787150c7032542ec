//! Identifiers, parsed once at the edge: resource and access-list slugs, org codes, actions,
//! organisation party URNs and access-list URNs. Inner code never handles their raw strings.

use std::fmt;

use broker_common::identity::{ORGANIZATION_URN_PREFIX, OrgNumber, OrgNumberError};
use serde::{Deserialize, Serialize};

/// The URN prefix of an access list subject.
pub const ACCESS_LIST_URN_PREFIX: &str = "urn:altinn:access-list:";

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Not a slug.
    #[error(
        "an identifier is 2–100 characters of a-z, 0-9, '_' and '-', starting with a letter or digit"
    )]
    Slug,
    /// Not an org code.
    #[error("an org code is 2–10 characters of a-z and 0-9")]
    OrgCode,
    /// Not an action name.
    #[error("an action is 1–50 characters of a-z, 0-9, '_' and '-', starting with a letter")]
    Action,
    /// Not an organisation party URN.
    #[error("a party is written urn:altinn:organization:identifier-no:<9 digits>")]
    PartyUrn,
    /// The organisation number inside a party URN is wrong.
    #[error(transparent)]
    OrgNumber(#[from] OrgNumberError),
    /// Not an access list URN.
    #[error("an access list is written urn:altinn:access-list:<owner>:<identifier>")]
    AccessListUrn,
}

fn is_slug(text: &str) -> bool {
    let bytes = text.as_bytes();
    (2..=100).contains(&bytes.len())
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-')
}

fn is_org_code(text: &str) -> bool {
    (2..=10).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

fn is_action(text: &str) -> bool {
    let bytes = text.as_bytes();
    (1..=50).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-')
}

/// Defines a validated string newtype that serialises as its text.
macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident, $valid:path, $error:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses `text`, refusing anything outside the syntax.
            pub fn parse(text: &str) -> Result<Self, IdError> {
                if $valid(text) {
                    Ok(Self(text.to_owned()))
                } else {
                    Err($error)
                }
            }

            /// The identifier's text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;

            fn try_from(text: String) -> Result<Self, IdError> {
                Self::parse(&text)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_id!(
    /// A resource identifier: a slug such as `altinn-broker-test-resource-1`.
    ResourceId,
    is_slug,
    IdError::Slug
);
text_id!(
    /// An access list identifier, unique per owner: a slug.
    ListId,
    is_slug,
    IdError::Slug
);
text_id!(
    /// A service owner's org code such as `skd`, `digdir` or `ttd`.
    OrgCode,
    is_org_code,
    IdError::OrgCode
);
text_id!(
    /// An action such as `read`, `write` or `subscribe`.
    Action,
    is_action,
    IdError::Action
);

/// An organisation party: `urn:altinn:organization:identifier-no:<orgnr>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PartyUrn(OrgNumber);

impl PartyUrn {
    /// Parses an organisation party URN, verifying the organisation number.
    pub fn parse(text: &str) -> Result<Self, IdError> {
        let number = text
            .strip_prefix(ORGANIZATION_URN_PREFIX)
            .ok_or(IdError::PartyUrn)?;
        Ok(Self(OrgNumber::parse(number)?))
    }

    /// The party of an organisation.
    pub fn organization(org: OrgNumber) -> Self {
        Self(org)
    }

    /// The organisation this party is.
    pub fn org(&self) -> OrgNumber {
        self.0
    }
}

impl TryFrom<String> for PartyUrn {
    type Error = IdError;

    fn try_from(text: String) -> Result<Self, IdError> {
        Self::parse(&text)
    }
}

impl From<PartyUrn> for String {
    fn from(party: PartyUrn) -> String {
        party.to_string()
    }
}

impl fmt::Display for PartyUrn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{ORGANIZATION_URN_PREFIX}{}", self.0)
    }
}

/// An access list named as a policy subject: `urn:altinn:access-list:{owner}:{identifier}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccessListUrn {
    /// The owner's org code.
    pub owner: OrgCode,
    /// The list's identifier.
    pub identifier: ListId,
}

impl AccessListUrn {
    /// Parses an access-list URN.
    pub fn parse(text: &str) -> Result<Self, IdError> {
        let (owner, identifier) = text
            .strip_prefix(ACCESS_LIST_URN_PREFIX)
            .and_then(|rest| rest.split_once(':'))
            .ok_or(IdError::AccessListUrn)?;
        Ok(Self {
            owner: OrgCode::parse(owner).map_err(|_| IdError::AccessListUrn)?,
            identifier: ListId::parse(identifier).map_err(|_| IdError::AccessListUrn)?,
        })
    }
}

impl fmt::Display for AccessListUrn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{ACCESS_LIST_URN_PREFIX}{}:{}",
            self.owner, self.identifier
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for valid in [
            "ab",
            "altinn-broker-test-resource-1",
            "0_x",
            &"a".repeat(100),
        ] {
            assert!(ResourceId::parse(valid).is_ok(), "{valid}");
        }
        for invalid in [
            "a",
            "-ab",
            "_ab",
            "Ab",
            "a b",
            "æøå",
            "a.b",
            &"a".repeat(101),
        ] {
            assert_eq!(ResourceId::parse(invalid), Err(IdError::Slug), "{invalid}");
        }
    }

    #[test]
    fn org_codes_and_actions() {
        assert!(OrgCode::parse("skd").is_ok());
        assert!(OrgCode::parse("digdir").is_ok());
        for invalid in ["s", "SKD", "s-d", "abcdefghijk"] {
            assert_eq!(OrgCode::parse(invalid), Err(IdError::OrgCode), "{invalid}");
        }
        for valid in ["read", "write", "subscribe", "a", "x_1-y"] {
            assert!(Action::parse(valid).is_ok(), "{valid}");
        }
        for invalid in ["", "Read", "1read", "-r", "re ad", &"a".repeat(51)] {
            assert_eq!(Action::parse(invalid), Err(IdError::Action), "{invalid:?}");
        }
    }

    #[test]
    fn party_urns() {
        let party = PartyUrn::parse("urn:altinn:organization:identifier-no:991825827").unwrap();
        assert_eq!(party.org().to_string(), "991825827");
        assert_eq!(
            party.to_string(),
            "urn:altinn:organization:identifier-no:991825827"
        );
        assert_eq!(
            PartyUrn::parse("urn:altinn:organization:identifier-no:991825828"),
            Err(IdError::OrgNumber(OrgNumberError::CheckDigit))
        );
        assert_eq!(PartyUrn::parse("991825827"), Err(IdError::PartyUrn));
        assert_eq!(
            PartyUrn::parse("urn:altinn:person:identifier-no:991825827"),
            Err(IdError::PartyUrn)
        );
    }

    #[test]
    fn access_list_urns() {
        let urn = AccessListUrn::parse("urn:altinn:access-list:skd:my-list").unwrap();
        assert_eq!(urn.owner.as_str(), "skd");
        assert_eq!(urn.identifier.as_str(), "my-list");
        assert_eq!(urn.to_string(), "urn:altinn:access-list:skd:my-list");
        for invalid in [
            "urn:altinn:access-list:skd",
            "urn:altinn:access-list:SKD:list",
            "urn:altinn:access-list:skd:l",
            "urn:altinn:accesslist:skd:list",
        ] {
            assert_eq!(
                AccessListUrn::parse(invalid),
                Err(IdError::AccessListUrn),
                "{invalid}"
            );
        }
    }
}
