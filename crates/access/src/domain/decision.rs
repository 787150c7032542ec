//! The authorization decision, as a pure function over a [`Snapshot`] of what the store knows
//! about one resource and one party. No I/O here: the service loads the snapshot, asks
//! [`decide`], and caches the answer.
//!
//! A request is permitted only when all of these hold, checked in this order (the first failing
//! one is the deny reason):
//! 1. the resource exists and is active;
//! 2. the principal acts for the party ([`acts_for`]);
//! 3. some policy rule lists the action and a subject matching the party: `any-organization`,
//!    the party's URN, or an access list the party is a member of;
//! 4. with `accessListMode` Enabled, the party is a member of a list connected to the resource
//!    whose action filters are empty or contain the action.

use broker_common::identity::OrgNumber;

use super::ids::{AccessListUrn, Action, PartyUrn};
use super::policy::{Policy, Subject};
use super::resource::AccessListMode;

/// Who asks: the authenticated caller, as the calling service saw it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    /// The organisation the caller acts for.
    pub org: OrgNumber,
    /// The system user, for system-user tokens (not yet used by [`acts_for`]).
    pub system_user_id: Option<String>,
}

/// What a decision needs of a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceState {
    /// Whether it is in service (see [`is_active`](super::resource::is_active)).
    pub active: bool,
    /// Whether access lists restrict it.
    pub access_list_mode: AccessListMode,
}

/// One access list the party is a member of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// The list.
    pub list: AccessListUrn,
    /// The list's connection to the resource in question with its action filters, texts as
    /// Altinn keeps them (empty =
    /// every action); `None` when the list is not connected to it.
    pub connection: Option<Vec<String>>,
}

/// What the store knows about one resource and one party.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The resource; `None` when it does not exist.
    pub resource: Option<ResourceState>,
    /// Its policy; `None` when it has none.
    pub policy: Option<Policy>,
    /// Every access list the party is a member of (of any owner).
    pub memberships: Vec<Membership>,
}

/// Why a request was denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// No such resource.
    ResourceNotFound,
    /// The resource is withdrawn or deprecated.
    ResourceInactive,
    /// The principal does not act for the party.
    NotActingForParty,
    /// No policy rule permits the action to the party.
    Policy,
    /// Access lists are enabled and no connected list admits the party for the action.
    NotOnAccessList,
}

/// The answer to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Allowed.
    Permit,
    /// Refused, and why.
    Deny(DenyReason),
}

impl Decision {
    /// Whether the request is allowed.
    pub fn is_permit(self) -> bool {
        self == Self::Permit
    }

    /// The machine-readable reason callers see.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Permit => "permit",
            Self::Deny(DenyReason::ResourceNotFound) => "resource-not-found",
            Self::Deny(DenyReason::ResourceInactive) => "resource-inactive",
            Self::Deny(DenyReason::NotActingForParty) => "not-acting-for-party",
            Self::Deny(DenyReason::Policy) => "policy",
            Self::Deny(DenyReason::NotOnAccessList) => "not-on-access-list",
        }
    }
}

/// Whether `principal` may act for `party`. Today an organisation acts only for itself; system
/// users and delegations will widen this one function.
pub fn acts_for(principal: &Principal, party: &PartyUrn) -> bool {
    principal.org == party.org()
}

/// Decides whether `principal` may perform `action` on the snapshot's resource for `party`;
/// `snapshot` must have been loaded for that resource and party.
pub fn decide(
    snapshot: &Snapshot,
    principal: &Principal,
    action: &Action,
    party: &PartyUrn,
) -> Decision {
    let Some(resource) = snapshot.resource else {
        return Decision::Deny(DenyReason::ResourceNotFound);
    };
    if !resource.active {
        return Decision::Deny(DenyReason::ResourceInactive);
    }
    if !acts_for(principal, party) {
        return Decision::Deny(DenyReason::NotActingForParty);
    }
    let member_of = |list: &AccessListUrn| snapshot.memberships.iter().any(|m| m.list == *list);
    let subject_matches = |subject: &Subject| match subject {
        Subject::AnyOrganization => true,
        Subject::Party(subject) => subject == party,
        Subject::AccessList(list) => member_of(list),
    };
    let permitted = snapshot.policy.as_ref().is_some_and(|policy| {
        policy
            .rules
            .iter()
            .any(|rule| rule.actions.contains(action) && rule.subjects.iter().any(subject_matches))
    });
    if !permitted {
        return Decision::Deny(DenyReason::Policy);
    }
    if resource.access_list_mode == AccessListMode::Enabled {
        let admitted = snapshot.memberships.iter().any(|membership| {
            membership.connection.as_ref().is_some_and(|filters| {
                filters.is_empty() || filters.iter().any(|filter| filter == action.as_str())
            })
        });
        if !admitted {
            return Decision::Deny(DenyReason::NotOnAccessList);
        }
    }
    Decision::Permit
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::policy::Rule;

    const ORG: &str = "991825827";
    const OTHER: &str = "974760673";

    fn party(org: &str) -> PartyUrn {
        PartyUrn::organization(OrgNumber::parse(org).unwrap())
    }

    fn principal(org: &str) -> Principal {
        Principal {
            org: OrgNumber::parse(org).unwrap(),
            system_user_id: None,
        }
    }

    fn action(name: &str) -> Action {
        Action::parse(name).unwrap()
    }

    fn actions(names: &[&str]) -> Vec<Action> {
        names.iter().map(|name| action(name)).collect()
    }

    fn filters(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    fn list(identifier: &str) -> AccessListUrn {
        AccessListUrn::parse(&format!("urn:altinn:access-list:skd:{identifier}")).unwrap()
    }

    fn policy(subjects: Vec<Subject>, names: &[&str]) -> Policy {
        Policy {
            rules: vec![Rule {
                subjects,
                actions: actions(names),
            }],
        }
    }

    fn active(mode: AccessListMode) -> Option<ResourceState> {
        Some(ResourceState {
            active: true,
            access_list_mode: mode,
        })
    }

    const ALL: [&str; 3] = ["read", "write", "subscribe"];

    fn open_snapshot(mode: AccessListMode) -> Snapshot {
        Snapshot {
            resource: active(mode),
            policy: Some(policy(vec![Subject::AnyOrganization], &ALL)),
            memberships: Vec::new(),
        }
    }

    fn decide_for_self(snapshot: &Snapshot, name: &str) -> Decision {
        decide(snapshot, &principal(ORG), &action(name), &party(ORG))
    }

    /// Members and non-members × every action filter × connected or not × both modes × every
    /// action, under a policy that permits every action to any organisation.
    #[test]
    fn access_list_matrix() {
        // (filters, actions they admit), written out rather than computed.
        let cases: [(&[&str], &[&str]); 4] = [
            (&[], &["read", "write", "subscribe"]),
            (&["read"], &["read"]),
            (&["write"], &["write"]),
            (&["read", "subscribe"], &["read", "subscribe"]),
        ];
        for mode in [AccessListMode::Disabled, AccessListMode::Enabled] {
            for member in [false, true] {
                for connected in [false, true] {
                    for (filter, admitted) in cases {
                        let mut snapshot = open_snapshot(mode);
                        if member {
                            snapshot.memberships.push(Membership {
                                list: list("partners"),
                                connection: connected.then(|| filters(filter)),
                            });
                        }
                        for name in ALL {
                            let expected = match mode {
                                AccessListMode::Disabled => Decision::Permit,
                                AccessListMode::Enabled
                                    if member && connected && admitted.contains(&name) =>
                                {
                                    Decision::Permit
                                }
                                AccessListMode::Enabled => {
                                    Decision::Deny(DenyReason::NotOnAccessList)
                                }
                            };
                            assert_eq!(
                                decide_for_self(&snapshot, name),
                                expected,
                                "mode {mode:?}, member {member}, connected {connected}, \
                                 filters {filter:?}, action {name}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn any_connected_list_admitting_the_action_is_enough() {
        let mut snapshot = open_snapshot(AccessListMode::Enabled);
        snapshot.memberships = vec![
            Membership {
                list: list("readers"),
                connection: Some(filters(&["read"])),
            },
            Membership {
                list: list("unconnected"),
                connection: None,
            },
            Membership {
                list: list("writers"),
                connection: Some(filters(&["write"])),
            },
        ];
        assert_eq!(decide_for_self(&snapshot, "read"), Decision::Permit);
        assert_eq!(decide_for_self(&snapshot, "write"), Decision::Permit);
        assert_eq!(
            decide_for_self(&snapshot, "subscribe"),
            Decision::Deny(DenyReason::NotOnAccessList)
        );
    }

    #[test]
    fn deleted_or_inactive_resources_deny_first() {
        for mode in [AccessListMode::Disabled, AccessListMode::Enabled] {
            let deleted = Snapshot {
                resource: None,
                ..open_snapshot(mode)
            };
            let inactive = Snapshot {
                resource: Some(ResourceState {
                    active: false,
                    access_list_mode: mode,
                }),
                ..open_snapshot(mode)
            };
            for name in ALL {
                assert_eq!(
                    decide_for_self(&deleted, name),
                    Decision::Deny(DenyReason::ResourceNotFound)
                );
                assert_eq!(
                    decide_for_self(&inactive, name),
                    Decision::Deny(DenyReason::ResourceInactive)
                );
                // Resource checks come before the acting check.
                assert_eq!(
                    decide(&inactive, &principal(OTHER), &action(name), &party(ORG)),
                    Decision::Deny(DenyReason::ResourceInactive)
                );
            }
        }
    }

    #[test]
    fn a_principal_acts_only_for_itself() {
        for mode in [AccessListMode::Disabled, AccessListMode::Enabled] {
            let snapshot = open_snapshot(mode);
            assert_eq!(
                decide(&snapshot, &principal(OTHER), &action("read"), &party(ORG)),
                Decision::Deny(DenyReason::NotActingForParty)
            );
        }
    }

    #[test]
    fn the_policy_must_list_the_action_for_a_matching_subject() {
        for mode in [AccessListMode::Disabled, AccessListMode::Enabled] {
            // Connected to an all-actions list, so only the policy can deny.
            let memberships = vec![Membership {
                list: list("partners"),
                connection: Some(Vec::new()),
            }];
            let with = |policy: Option<Policy>| Snapshot {
                resource: active(mode),
                policy,
                memberships: memberships.clone(),
            };
            let denied = Decision::Deny(DenyReason::Policy);
            let reader = with(Some(policy(vec![Subject::AnyOrganization], &["read"])));
            assert_eq!(decide_for_self(&reader, "read"), Decision::Permit);
            assert_eq!(decide_for_self(&reader, "write"), denied);
            assert_eq!(decide_for_self(&reader, "subscribe"), denied);
            assert_eq!(decide_for_self(&with(None), "read"), denied, "no policy");
            assert_eq!(
                decide_for_self(&with(Some(Policy::default())), "read"),
                denied,
                "no rules"
            );
            let by_party = |org: &str| with(Some(policy(vec![Subject::Party(party(org))], &ALL)));
            assert_eq!(decide_for_self(&by_party(ORG), "write"), Decision::Permit);
            assert_eq!(decide_for_self(&by_party(OTHER), "write"), denied);
            let by_list =
                |name: &str| with(Some(policy(vec![Subject::AccessList(list(name))], &ALL)));
            assert_eq!(
                decide_for_self(&by_list("partners"), "subscribe"),
                Decision::Permit
            );
            assert_eq!(decide_for_self(&by_list("strangers"), "read"), denied);
        }
    }

    #[test]
    fn a_policy_list_subject_needs_membership_not_a_connection() {
        let snapshot = Snapshot {
            resource: active(AccessListMode::Disabled),
            policy: Some(policy(vec![Subject::AccessList(list("partners"))], &ALL)),
            memberships: vec![Membership {
                list: list("partners"),
                connection: None,
            }],
        };
        assert_eq!(decide_for_self(&snapshot, "read"), Decision::Permit);
    }

    #[test]
    fn reasons() {
        assert_eq!(Decision::Permit.reason(), "permit");
        assert_eq!(
            Decision::Deny(DenyReason::NotOnAccessList).reason(),
            "not-on-access-list"
        );
    }
}
