//! Property-based tests of the registry's identifiers as callers send them: resource and
//! access-list identifiers, party URNs (`urn:altinn:organization:identifier-no:…`,
//! `urn:altinn:party:id:…`, `urn:altinn:party:uuid:…`) and access-list URNs. Valid ones
//! round-trip, invalid ones are refused with an error, and nothing panics.

use broker_access::domain::ids::{
    AccessListUrn, ListId, MAX_IDENTIFIER, OrgCode, PartyRef, PartyUrn, ResourceId,
};
use proptest::prelude::*;

/// Cases per property: the parsers are pure and fast.
const CASES: u32 = 4096;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Any text: a resource id is accepted exactly when it is 1–255 characters without a
    /// control character, and keeps its text; `is_valid_new` implies Altinn's new-id pattern.
    #[test]
    fn resource_ids_are_accepted_by_their_rule(text in "\\PC{0,300}|[\\x00-\\x1f a-z]{0,10}") {
        let length = text.chars().count();
        let valid = (1..=MAX_IDENTIFIER).contains(&length) && !text.chars().any(char::is_control);
        match ResourceId::parse(&text) {
            Ok(id) => {
                prop_assert!(valid, "{text:?} accepted");
                prop_assert_eq!(id.as_str(), text.as_str());
                let new_pattern = length >= 4
                    && text.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                    });
                prop_assert_eq!(id.is_valid_new(), new_pattern, "{:?}", text);
            }
            Err(_) => prop_assert!(!valid, "{text:?} refused"),
        }
    }

    /// An organisation party URN with any nine digits parses; it resolves to a party exactly
    /// when the check digit is right, and that party writes back as the URN.
    #[test]
    fn organisation_party_urns_round_trip(digits in "[0-9]{9}") {
        let text = format!("urn:altinn:organization:identifier-no:{digits}");
        let party = PartyRef::parse(&text).unwrap();
        prop_assert_eq!(party, PartyRef::Organization(digits.as_bytes().try_into().unwrap()));
        let strict = PartyUrn::parse(&text);
        prop_assert_eq!(party.resolve(), strict.clone().ok());
        if let Ok(urn) = strict {
            prop_assert_eq!(urn.to_string(), text);
        }
    }

    /// Party ids within .NET's `int` parse; others, and signs or blanks, do not.
    #[test]
    fn party_id_urns_parse_within_int(id in 0u64..(1 << 33), sign in "[+ -]?") {
        let parsed = PartyRef::parse(&format!("urn:altinn:party:id:{sign}{id}"));
        if sign.is_empty() && id <= i32::MAX as u64 {
            prop_assert_eq!(parsed, Ok(PartyRef::PartyId(id as u32)));
        } else {
            prop_assert!(parsed.is_err());
        }
    }

    /// Party UUID URNs round-trip.
    #[test]
    fn party_uuid_urns_round_trip(bytes in any::<[u8; 16]>()) {
        let id = uuid::Uuid::from_bytes(bytes);
        prop_assert_eq!(
            PartyRef::parse(&format!("urn:altinn:party:uuid:{id}")),
            Ok(PartyRef::PartyUuid(id))
        );
    }

    /// Any text: no panic in any of the party or list parsers.
    #[test]
    fn any_text_is_parsed_or_refused(text in "(urn:altinn:(organization:identifier-no|party:id|party:uuid|access-list):)?\\PC{0,60}") {
        let _ = PartyRef::parse(&text);
        let _ = PartyUrn::parse(&text);
        if let Ok(list) = AccessListUrn::parse(&text) {
            prop_assert_eq!(list.to_string(), text);
        }
    }

    /// An access-list URN built from a valid owner and identifier reads back as them.
    #[test]
    fn access_list_urns_round_trip(owner in "[a-z0-9]{2,10}", identifier in "[a-z0-9_-]{1,40}") {
        let urn = AccessListUrn::parse(&format!("urn:altinn:access-list:{owner}:{identifier}"))
            .unwrap();
        prop_assert_eq!(urn.owner, OrgCode::parse(&owner).unwrap());
        prop_assert_eq!(urn.identifier, ListId::parse(&identifier).unwrap());
    }
}
