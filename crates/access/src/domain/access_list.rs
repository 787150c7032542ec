//! Access lists: what a valid list, member change and resource connection look like, within
//! the limits Altinn's Resource Registry sets (100 parties per change).

use super::error::{AccessError, FieldErrors, RegistryProblem, RegistryValidation, required};
use super::ids::{PartyRef, PartyUrn, ResourceId};

/// The URN prefix of a resource.
pub const RESOURCE_URN_PREFIX: &str = "urn:altinn:resource:";

/// Most parties in one member change, as Altinn allows.
pub const MAX_PARTIES_PER_CHANGE: usize = 100;

/// A list's name and description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListDetails {
    /// Display name, required.
    pub name: String,
    /// Description, may be empty.
    pub description: String,
}

impl ListDetails {
    /// Validates the texts: a name is required (`CreateAccessListModel.Name` is a non-nullable
    /// `string`, so ASP.NET requires it not to be blank); a missing description is empty.
    pub fn parse(name: Option<&str>, description: Option<&str>) -> Result<Self, AccessError> {
        match name {
            Some(name) if !name.trim().is_empty() => Ok(Self {
                name: name.to_owned(),
                description: description.unwrap_or_default().to_owned(),
            }),
            _ => Err(AccessError::invalid("Name", required("Name"))),
        }
    }
}

/// What an answer about lists includes besides the lists (Altinn's `include`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Includes {
    /// `resources`: resource connections, without their actions.
    pub connections: bool,
    /// `resource-actions`: resource connections with their actions.
    pub actions: bool,
    /// `members`.
    pub members: bool,
}

impl Includes {
    /// Whether resource connections are included, with or without actions.
    pub fn any_connections(self) -> bool {
        self.connections || self.actions
    }
}

/// How a member change applies its parties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    /// Replace every member with these.
    Replace,
    /// Add these.
    Add,
    /// Remove these.
    Remove,
}

/// The .NET type a member of the body binds to, which ASP.NET names when one does not.
const PARTY_URN_TYPE: &str = "Altinn.ResourceRegistry.Core.Register.PartyUrn";

/// Parses the parties of a member change: each in one of Altinn's party forms (one that is
/// not fails binding, as Altinn's `PartyUrn` converter fails, worded as ASP.NET words it for
/// the body `members`), then at most [`MAX_PARTIES_PER_CHANGE`] (Altinn's `RR-00000` for a
/// replacement, `RR-00001` otherwise).
pub fn parse_parties(
    parties: &[String],
    change: MemberChange,
) -> Result<Vec<PartyRef>, AccessError> {
    let mut errors = FieldErrors::default();
    let mut parsed = Vec::with_capacity(parties.len());
    for (index, text) in parties.iter().enumerate() {
        match PartyRef::parse(text) {
            Ok(party) => parsed.push(party),
            // System.Text.Json stops at the first value it cannot convert.
            Err(_) if errors.is_empty() => {
                let path = format!("$.data[{index}]");
                let message = format!(
                    "The JSON value could not be converted to {PARTY_URN_TYPE}. Path: {path}."
                );
                errors.add(path, message);
                errors.add("members", required("members"));
            }
            Err(_) => {}
        }
    }
    let parsed = errors.finish(|| Some(parsed))?;
    if parsed.len() > MAX_PARTIES_PER_CHANGE {
        let error = match change {
            MemberChange::Replace => RegistryValidation::ReplaceTooMany,
            MemberChange::Add | MemberChange::Remove => RegistryValidation::AddRemoveTooMany,
        };
        return Err(AccessError::RegistryInvalid(vec![error]));
    }
    Ok(parsed)
}

/// The organisations `parties` name, sorted and without duplicates; Altinn's `RR-00001` when
/// any is one Broker cannot resolve without Altinn's Register (a party id or UUID, or an
/// organisation number whose check digit is wrong, which no organisation has).
pub fn resolve_parties(parties: &[PartyRef]) -> Result<Vec<PartyUrn>, AccessError> {
    let mut resolved = parties
        .iter()
        .map(|party| party.resolve())
        .collect::<Option<Vec<_>>>()
        .ok_or(AccessError::Registry(RegistryProblem::PartyNotFound))?;
    resolved.sort_unstable();
    resolved.dedup();
    Ok(resolved)
}

/// The party and resource a memberships query names, from its `party` and `resource` values
/// (each repeatable and comma-separated), with Altinn's validation errors for every value that
/// is not one and for more than one of either.
pub fn membership_query(
    parties: &[String],
    resources: &[String],
) -> Result<(PartyRef, Option<ResourceId>), AccessError> {
    let mut errors = Vec::new();
    let mut party_refs = Vec::new();
    for text in parties.iter().flat_map(|value| value.split(',')) {
        match PartyRef::parse(text) {
            Ok(party) => party_refs.push(party),
            Err(_) => errors.push(RegistryValidation::InvalidPartyUrn),
        }
    }
    let mut resource_ids = Vec::new();
    for text in resources.iter().flat_map(|value| value.split(',')) {
        let id = text
            .strip_prefix(RESOURCE_URN_PREFIX)
            .and_then(|id| ResourceId::parse(id).ok());
        match id {
            Some(id) => resource_ids.push(id),
            None => errors.push(RegistryValidation::InvalidResourceUrn),
        }
    }
    match party_refs.len() {
        0 => errors.push(RegistryValidation::RequiresParty),
        1 => {}
        _ => errors.push(RegistryValidation::TooManyParties),
    }
    if resource_ids.len() > 1 {
        errors.push(RegistryValidation::TooManyResources);
    }
    match party_refs.first() {
        Some(party) if errors.is_empty() => Ok((*party, resource_ids.pop())),
        _ => Err(AccessError::RegistryInvalid(errors)),
    }
}

/// A connection's action filters as Altinn keeps them: any texts, a set (sorted, without
/// duplicates); empty means every action.
pub fn action_filters(filters: Vec<String>) -> Vec<String> {
    let mut filters = filters;
    filters.sort_unstable();
    filters.dedup();
    filters
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARTY: &str = "urn:altinn:organization:identifier-no:991825827";

    /// Mirrors `CanNot_Create_List_Without_Name` and `Can_Create_List_Without_Description`.
    #[test]
    fn details() {
        assert_eq!(
            ListDetails::parse(Some("Partners"), None)
                .unwrap()
                .description,
            ""
        );
        for blank in [None, Some(""), Some(" ")] {
            let Err(AccessError::Invalid(errors)) = ListDetails::parse(blank, Some("d")) else {
                panic!("a blank name is refused");
            };
            assert_eq!(errors["Name"], ["The Name field is required."]);
        }
        assert!(
            ListDetails::parse(Some(&"n".repeat(5000)), None).is_ok(),
            "no limit"
        );
    }

    /// Mirrors `DisallowsUpdatingTooManyMembers` (replace, add and remove).
    #[test]
    fn at_most_a_hundred_parties_per_change() {
        let hundred = vec![PARTY.to_owned(); MAX_PARTIES_PER_CHANGE];
        assert!(parse_parties(&hundred, MemberChange::Add).is_ok());
        let more = vec![PARTY.to_owned(); MAX_PARTIES_PER_CHANGE + 1];
        for (change, expected) in [
            (MemberChange::Replace, RegistryValidation::ReplaceTooMany),
            (MemberChange::Add, RegistryValidation::AddRemoveTooMany),
            (MemberChange::Remove, RegistryValidation::AddRemoveTooMany),
        ] {
            let Err(AccessError::RegistryInvalid(errors)) = parse_parties(&more, change) else {
                panic!("{change:?}: too many parties are refused");
            };
            assert_eq!(errors, [expected]);
        }
    }

    #[test]
    fn parties_are_resolved_deduplicated_or_not_found() {
        let parties = parse_parties(&[PARTY.into(), PARTY.into()], MemberChange::Add).unwrap();
        assert_eq!(resolve_parties(&parties).unwrap().len(), 1);
        let Err(AccessError::Invalid(errors)) =
            parse_parties(&[PARTY.into(), "nobody".into()], MemberChange::Add)
        else {
            panic!("expected a validation error");
        };
        assert_eq!(
            errors["$.data[1]"],
            ["The JSON value could not be converted to \
              Altinn.ResourceRegistry.Core.Register.PartyUrn. Path: $.data[1]."]
        );
        assert_eq!(errors["members"], ["The members field is required."]);
        for unknown in [
            "urn:altinn:party:id:50012345",
            "urn:altinn:party:uuid:e458014d-4d4f-49a1-96d5-a869d95e8715",
            "urn:altinn:organization:identifier-no:991825828",
        ] {
            let parties =
                parse_parties(&[PARTY.into(), unknown.into()], MemberChange::Add).unwrap();
            assert!(
                matches!(
                    resolve_parties(&parties),
                    Err(AccessError::Registry(RegistryProblem::PartyNotFound))
                ),
                "{unknown}"
            );
        }
    }

    /// Mirrors `AccessListMembershipsController`'s checks (`RR-00003` to `RR-00007`).
    #[test]
    fn a_memberships_query_names_one_party_and_at_most_one_resource() {
        let resource = "urn:altinn:resource:broker-demo".to_owned();
        let (party, id) =
            membership_query(&[PARTY.into()], std::slice::from_ref(&resource)).unwrap();
        assert_eq!(party.resolve().unwrap().to_string(), PARTY);
        assert_eq!(id.unwrap().as_str(), "broker-demo");
        let invalid = |parties: &[&str], resources: &[&str]| {
            let owned = |texts: &[&str]| texts.iter().map(|t| (*t).to_owned()).collect::<Vec<_>>();
            match membership_query(&owned(parties), &owned(resources)) {
                Err(AccessError::RegistryInvalid(errors)) => errors,
                other => panic!("expected validation errors, got {other:?}"),
            }
        };
        assert_eq!(invalid(&[], &[]), [RegistryValidation::RequiresParty]);
        assert_eq!(
            invalid(&["nobody"], &["broker-demo"]),
            [
                RegistryValidation::InvalidPartyUrn,
                RegistryValidation::InvalidResourceUrn,
                RegistryValidation::RequiresParty
            ]
        );
        let two = format!("{PARTY},{PARTY}");
        assert_eq!(
            invalid(&[&two], &[&resource, &resource]),
            [
                RegistryValidation::TooManyParties,
                RegistryValidation::TooManyResources
            ]
        );
    }

    #[test]
    fn action_filters_are_any_texts_kept_as_a_set() {
        let filters = action_filters(vec!["write".into(), "Read".into(), "write".into()]);
        assert_eq!(filters, ["Read", "write"]);
    }
}
