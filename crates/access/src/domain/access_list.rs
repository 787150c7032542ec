//! Access lists: what a valid list, member change and resource connection look like, within
//! the size limits that keep one request bounded.

use super::error::{AccessError, FieldErrors, check_len};
use super::ids::{Action, PartyUrn};
use super::resource::{MAX_DESCRIPTION, MAX_TEXT};

/// Most parties in one member change.
pub const MAX_PARTIES_PER_CHANGE: usize = 1000;
/// Most action filters on one connection.
pub const MAX_ACTION_FILTERS: usize = 100;

/// A list's name and description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListDetails {
    /// Display name, required.
    pub name: String,
    /// Description, may be empty.
    pub description: String,
}

impl ListDetails {
    /// Validates the texts.
    pub fn parse(name: &str, description: &str) -> Result<Self, AccessError> {
        let mut errors = FieldErrors::default();
        if name.trim().is_empty() {
            errors.add("name", "required");
        }
        check_len(&mut errors, "name", name, MAX_TEXT);
        check_len(&mut errors, "description", description, MAX_DESCRIPTION);
        errors.finish(|| {
            Some(Self {
                name: name.to_owned(),
                description: description.to_owned(),
            })
        })
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

/// Parses the parties of a member change (at most [`MAX_PARTIES_PER_CHANGE`]), sorted and
/// without duplicates.
pub fn parse_parties(parties: &[String]) -> Result<Vec<PartyUrn>, AccessError> {
    if parties.len() > MAX_PARTIES_PER_CHANGE {
        return Err(AccessError::invalid(
            "data",
            format!("at most {MAX_PARTIES_PER_CHANGE} parties per request"),
        ));
    }
    let mut errors = FieldErrors::default();
    let mut parsed: Vec<PartyUrn> = parties
        .iter()
        .enumerate()
        .filter_map(|(index, text)| errors.check(format!("data[{index}]"), PartyUrn::parse(text)))
        .collect();
    parsed.sort_unstable();
    parsed.dedup();
    errors.finish(|| Some(parsed))
}

/// Parses a connection's action filters (empty means every action), sorted and without
/// duplicates.
pub fn parse_action_filters(filters: &[String]) -> Result<Vec<Action>, AccessError> {
    if filters.len() > MAX_ACTION_FILTERS {
        return Err(AccessError::invalid(
            "actionFilters",
            format!("at most {MAX_ACTION_FILTERS} actions"),
        ));
    }
    let mut errors = FieldErrors::default();
    let mut parsed: Vec<Action> = filters
        .iter()
        .enumerate()
        .filter_map(|(index, text)| {
            errors.check(format!("actionFilters[{index}]"), Action::parse(text))
        })
        .collect();
    parsed.sort_unstable();
    parsed.dedup();
    errors.finish(|| Some(parsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details() {
        assert!(ListDetails::parse("Partners", "").is_ok());
        assert!(ListDetails::parse(" ", "").is_err());
        assert!(ListDetails::parse(&"n".repeat(MAX_TEXT + 1), "").is_err());
        assert!(ListDetails::parse("n", &"d".repeat(MAX_DESCRIPTION + 1)).is_err());
    }

    #[test]
    fn parties_are_validated_deduplicated_and_bounded() {
        let party = "urn:altinn:organization:identifier-no:991825827".to_owned();
        assert_eq!(
            parse_parties(&[party.clone(), party.clone()])
                .unwrap()
                .len(),
            1
        );
        let Err(AccessError::Invalid(errors)) = parse_parties(&[party.clone(), "nobody".into()])
        else {
            panic!("expected a validation error");
        };
        assert!(errors.contains_key("data[1]"));
        assert!(parse_parties(&vec![party.clone(); MAX_PARTIES_PER_CHANGE]).is_ok());
        assert!(parse_parties(&vec![party; MAX_PARTIES_PER_CHANGE + 1]).is_err());
    }

    #[test]
    fn action_filters() {
        let filters = parse_action_filters(&["write".into(), "read".into(), "read".into()]);
        assert_eq!(
            filters
                .unwrap()
                .iter()
                .map(Action::as_str)
                .collect::<Vec<_>>(),
            ["read", "write"]
        );
        assert!(parse_action_filters(&["Read".into()]).is_err());
        assert!(parse_action_filters(&vec!["read".into(); MAX_ACTION_FILTERS + 1]).is_err());
    }
}
