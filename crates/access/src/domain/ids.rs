//! Identifiers, parsed once at the edge: resource and access-list identifiers, org codes,
//! actions, party URNs and access-list URNs. Inner code never handles their raw strings.
//!
//! Resource and list identifiers are as free as Altinn's (any text): an identifier nobody has
//! is simply not found. Only a new resource's identifier has a syntax
//! ([`ResourceId::is_valid_new`], checked with the resource's other rules).

use std::fmt;

use broker_common::identity::{ORGANIZATION_URN_PREFIX, OrgNumber, OrgNumberError};
use serde::{Deserialize, Serialize};

/// The URN prefix of an access list subject.
pub const ACCESS_LIST_URN_PREFIX: &str = "urn:altinn:access-list:";

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Empty, too long, or holding control characters.
    #[error("an identifier is 1–255 characters, none of them control characters")]
    Identifier,
    /// Not an org code.
    #[error("an org code is 2–10 characters of a-z and 0-9")]
    OrgCode,
    /// Not an action name.
    #[error("an action is 1–50 characters of a-z, 0-9, '_' and '-', starting with a letter")]
    Action,
    /// Not an organisation party URN.
    #[error("a party is written urn:altinn:organization:identifier-no:<9 digits>")]
    PartyUrn,
    /// Not one of the party URNs Altinn takes.
    #[error(
        "a party is written urn:altinn:organization:identifier-no:<9 digits>, \
         urn:altinn:party:id:<id> or urn:altinn:party:uuid:<uuid>"
    )]
    PartyRef,
    /// The organisation number inside a party URN is wrong.
    #[error(transparent)]
    OrgNumber(#[from] OrgNumberError),
    /// Not an access list URN.
    #[error("an access list is written urn:altinn:access-list:<owner>:<identifier>")]
    AccessListUrn,
}

/// Longest resource or access-list identifier (Altinn sets none; this keeps keys bounded).
pub const MAX_IDENTIFIER: usize = 255;

fn is_identifier(text: &str) -> bool {
    (1..=MAX_IDENTIFIER).contains(&text.chars().count()) && !text.chars().any(char::is_control)
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
    /// A resource identifier such as `altinn-broker-test-resource-1`.
    ResourceId,
    is_identifier,
    IdError::Identifier
);
text_id!(
    /// An access list identifier, unique per owner.
    ListId,
    is_identifier,
    IdError::Identifier
);

impl ResourceId {
    /// Whether a new resource may take this identifier: Altinn's `^[a-z0-9_-]{4,}$`.
    pub fn is_valid_new(&self) -> bool {
        self.0.len() >= 4
            && self
                .0
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    }
}

impl OrgCode {
    /// The org code `text` names in any case (Altinn matches owners case-insensitively).
    pub fn parse_any_case(text: &str) -> Result<Self, IdError> {
        Self::parse(&text.to_ascii_lowercase())
    }
}
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

/// The URN prefix of a party named by its Altinn party id.
pub const PARTY_ID_URN_PREFIX: &str = "urn:altinn:party:id:";
/// The URN prefix of a party named by its Altinn party UUID.
pub const PARTY_UUID_URN_PREFIX: &str = "urn:altinn:party:uuid:";

/// A party as Altinn's `PartyUrn` names one: by party id, party UUID or organisation number.
/// Only the last can be resolved without Altinn's Register; the others name parties Broker
/// cannot know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartyRef {
    /// `urn:altinn:organization:identifier-no:<9 digits>` (no check digit, as Altinn's
    /// `OrganizationNumber` takes it): the digits as sent.
    Organization([u8; 9]),
    /// `urn:altinn:party:id:<digits>`.
    PartyId(u32),
    /// `urn:altinn:party:uuid:<uuid>`.
    PartyUuid(uuid::Uuid),
}

impl PartyRef {
    /// Parses one of the three forms; the prefixes are case-sensitive, as Altinn's are.
    pub fn parse(text: &str) -> Result<Self, IdError> {
        if let Some(digits) = text.strip_prefix(ORGANIZATION_URN_PREFIX) {
            let digits: [u8; 9] = digits
                .as_bytes()
                .try_into()
                .ok()
                .filter(|digits: &[u8; 9]| digits.iter().all(u8::is_ascii_digit))
                .ok_or(IdError::PartyRef)?;
            return Ok(Self::Organization(digits));
        }
        if let Some(id) = text.strip_prefix(PARTY_ID_URN_PREFIX) {
            // `int.TryParse` with `NumberStyles.None`: digits only, within an int.
            return id
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| id.parse::<i32>().ok())
                .flatten()
                .and_then(|id| u32::try_from(id).ok())
                .map(Self::PartyId)
                .ok_or(IdError::PartyRef);
        }
        if let Some(id) = text.strip_prefix(PARTY_UUID_URN_PREFIX) {
            return uuid::Uuid::parse_str(id)
                .map(Self::PartyUuid)
                .map_err(|_| IdError::PartyRef);
        }
        Err(IdError::PartyRef)
    }

    /// The organisation party this names, when Broker knows it: an organisation number whose
    /// check digit is right (one that is wrong names no organisation in Enhetsregisteret).
    pub fn resolve(self) -> Option<PartyUrn> {
        match self {
            Self::Organization(digits) => std::str::from_utf8(&digits)
                .ok()
                .and_then(|digits| OrgNumber::parse(digits).ok())
                .map(PartyUrn::organization),
            Self::PartyId(_) | Self::PartyUuid(_) => None,
        }
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

    /// Mirrors `ServiceResourceHelper.ResourceIdentifierRegex` (`^[a-z0-9_-]{4,}$`).
    #[test]
    fn identifiers_are_free_and_new_resources_follow_altinns_pattern() {
        for any in ["a", "Ab", "a b", "æøå", "a.b", &"a".repeat(MAX_IDENTIFIER)] {
            assert!(ResourceId::parse(any).is_ok(), "{any}");
        }
        for invalid in ["", "a\nb", &"a".repeat(MAX_IDENTIFIER + 1)] {
            assert_eq!(
                ResourceId::parse(invalid),
                Err(IdError::Identifier),
                "{invalid}"
            );
        }
        for new in ["abcd", "-ab_", "0000", "broker-demo"] {
            assert!(ResourceId::parse(new).unwrap().is_valid_new(), "{new}");
        }
        for refused in ["abc", "Abcd", "ab cd", "abcæ"] {
            assert!(
                !ResourceId::parse(refused).unwrap().is_valid_new(),
                "{refused}"
            );
        }
    }

    /// Mirrors Altinn's `PartyUrn`: three forms, case-sensitive prefixes, no check digit.
    #[test]
    fn party_references_take_altinns_three_forms() {
        let org = PartyRef::parse("urn:altinn:organization:identifier-no:991825827").unwrap();
        assert_eq!(
            org.resolve().unwrap().to_string(),
            "urn:altinn:organization:identifier-no:991825827"
        );
        let unchecked = PartyRef::parse("urn:altinn:organization:identifier-no:991825828").unwrap();
        assert_eq!(unchecked.resolve(), None, "no such organisation");
        assert!(matches!(
            PartyRef::parse("urn:altinn:party:id:50012345"),
            Ok(PartyRef::PartyId(50012345))
        ));
        let uuid =
            PartyRef::parse("urn:altinn:party:uuid:e458014d-4d4f-49a1-96d5-a869d95e8715").unwrap();
        assert_eq!(uuid.resolve(), None, "only Register knows it");
        for invalid in [
            "urn:altinn:organization:identifier-no:99182582",
            "URN:altinn:party:id:1",
            "urn:altinn:party:id:-1",
            "urn:altinn:party:id:+1",
            "urn:altinn:party:id:99999999999",
            "urn:altinn:party:uuid:nope",
            "urn:altinn:person:identifier-no:01017012345",
        ] {
            assert_eq!(
                PartyRef::parse(invalid),
                Err(IdError::PartyRef),
                "{invalid}"
            );
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
            "urn:altinn:access-list:skd:",
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
