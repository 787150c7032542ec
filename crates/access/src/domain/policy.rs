//! A resource's policy: rules of (subjects, actions), validated within size limits. A rule
//! permits its actions to its subjects; a resource without a policy permits nothing.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::{AccessError, FieldErrors};
use super::ids::{AccessListUrn, Action, IdError, PartyUrn};

/// Most rules in one policy.
pub const MAX_RULES: usize = 100;
/// Most subjects, and most actions, in one rule.
pub const MAX_RULE_ITEMS: usize = 100;
/// The subject every organisation matches.
pub const ANY_ORGANIZATION: &str = "any-organization";

/// Who a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Subject {
    /// Every organisation.
    AnyOrganization,
    /// One organisation.
    Party(PartyUrn),
    /// The members of an access list.
    AccessList(AccessListUrn),
}

impl Subject {
    /// Parses `any-organization`, an organisation party URN or an access-list URN.
    pub fn parse(text: &str) -> Result<Self, IdError> {
        if text == ANY_ORGANIZATION {
            Ok(Self::AnyOrganization)
        } else if text.starts_with(super::ids::ACCESS_LIST_URN_PREFIX) {
            AccessListUrn::parse(text).map(Self::AccessList)
        } else {
            PartyUrn::parse(text).map(Self::Party)
        }
    }
}

impl TryFrom<String> for Subject {
    type Error = IdError;

    fn try_from(text: String) -> Result<Self, IdError> {
        Self::parse(&text)
    }
}

impl From<Subject> for String {
    fn from(subject: Subject) -> String {
        subject.to_string()
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AnyOrganization => f.write_str(ANY_ORGANIZATION),
            Self::Party(party) => party.fmt(f),
            Self::AccessList(list) => list.fmt(f),
        }
    }
}

/// One rule: these subjects may perform these actions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Who.
    pub subjects: Vec<Subject>,
    /// What.
    pub actions: Vec<Action>,
}

/// A resource's rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Policy {
    /// The rules; any one permitting is enough.
    pub rules: Vec<Rule>,
}

impl Policy {
    /// Validates rules given as (subjects, actions), reporting every failing entry by its path.
    pub fn parse<'a>(
        rules: impl ExactSizeIterator<Item = (&'a [String], &'a [String])>,
    ) -> Result<Self, AccessError> {
        if rules.len() > MAX_RULES {
            return Err(AccessError::invalid(
                "rules",
                format!("at most {MAX_RULES} rules"),
            ));
        }
        let mut errors = FieldErrors::default();
        let mut parsed = Vec::with_capacity(rules.len());
        for (index, (subjects, actions)) in rules.enumerate() {
            let subjects = items(&mut errors, index, "subjects", subjects, Subject::parse);
            let actions = items(&mut errors, index, "actions", actions, Action::parse);
            parsed.push(Rule { subjects, actions });
        }
        errors.finish(|| Some(Self { rules: parsed }))
    }
}

fn items<T>(
    errors: &mut FieldErrors,
    rule: usize,
    name: &str,
    texts: &[String],
    parse: impl Fn(&str) -> Result<T, IdError>,
) -> Vec<T> {
    let field = format!("rules[{rule}].{name}");
    if texts.is_empty() {
        errors.add(&field, "at least one is required");
    }
    if texts.len() > MAX_RULE_ITEMS {
        errors.add(&field, format!("at most {MAX_RULE_ITEMS}"));
        return Vec::new();
    }
    texts
        .iter()
        .enumerate()
        .filter_map(|(index, text)| errors.check(format!("{field}[{index}]"), parse(text)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn parse(rules: &[(Vec<String>, Vec<String>)]) -> Result<Policy, AccessError> {
        Policy::parse(rules.iter().map(|(s, a)| (s.as_slice(), a.as_slice())))
    }

    #[test]
    fn parses_every_subject_form_and_round_trips_as_json() {
        let policy = parse(&[(
            strings(&[
                "any-organization",
                "urn:altinn:organization:identifier-no:991825827",
                "urn:altinn:access-list:skd:my-list",
            ]),
            strings(&["read", "write", "subscribe"]),
        )])
        .unwrap();
        assert!(matches!(
            policy.rules[0].subjects.as_slice(),
            [
                Subject::AnyOrganization,
                Subject::Party(_),
                Subject::AccessList(_)
            ]
        ));
        let json = serde_json::to_string(&policy).unwrap();
        assert_eq!(serde_json::from_str::<Policy>(&json).unwrap(), policy);
    }

    #[test]
    fn reports_bad_entries_by_path() {
        let Err(AccessError::Invalid(errors)) = parse(&[
            (strings(&["anyone"]), strings(&["read"])),
            (strings(&["any-organization"]), strings(&[])),
            (strings(&["any-organization"]), strings(&["Read"])),
        ]) else {
            panic!("expected validation errors");
        };
        assert_eq!(
            errors.keys().collect::<Vec<_>>(),
            [
                "rules[0].subjects[0]",
                "rules[1].actions",
                "rules[2].actions[0]"
            ]
        );
    }

    #[test]
    fn refuses_oversized_policies() {
        let rule = (strings(&["any-organization"]), strings(&["read"]));
        assert!(parse(&vec![rule.clone(); MAX_RULES]).is_ok());
        assert!(parse(&vec![rule; MAX_RULES + 1]).is_err());
        let many = vec!["read".to_owned(); MAX_RULE_ITEMS + 1];
        assert!(parse(&[(strings(&["any-organization"]), many)]).is_err());
    }
}
