//! What a committed write announces to other replicas (through the outbox and the bus), so they
//! drop cached decisions: a routing key naming the entity and a JSON payload naming the change.

use serde_json::{Value, json};

use super::ids::{ListId, OrgCode, ResourceId};

/// A change to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceChange {
    /// Created.
    Created,
    /// Updated.
    Updated,
    /// Deleted, with its policy and list connections.
    Deleted,
    /// Its policy was written.
    Policy,
}

/// A change to an access list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListChange {
    /// Created or renamed.
    Upserted,
    /// Deleted, with its members and connections.
    Deleted,
    /// Members added, removed or replaced.
    Members,
    /// Connected to this resource (or its action filters changed).
    Connected(ResourceId),
    /// Disconnected from this resource.
    Disconnected(ResourceId),
}

/// One committed change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Of a resource.
    Resource {
        /// Which.
        identifier: ResourceId,
        /// What happened.
        change: ResourceChange,
    },
    /// Of an access list.
    List {
        /// Its owner.
        owner: OrgCode,
        /// Its identifier.
        identifier: ListId,
        /// What happened.
        change: ListChange,
    },
}

impl Change {
    /// `access.changed.<resource>` or `access.changed.list.<owner>.<identifier>`. Identifiers
    /// never contain dots, so each key has a fixed number of segments.
    pub fn routing_key(&self) -> String {
        match self {
            Self::Resource { identifier, .. } => format!("access.changed.{identifier}"),
            Self::List {
                owner, identifier, ..
            } => format!("access.changed.list.{owner}.{identifier}"),
        }
    }

    /// The payload: which entity, and what happened to it.
    pub fn payload(&self) -> Value {
        match self {
            Self::Resource { identifier, change } => json!({
                "entity": "resource",
                "resource": identifier.as_str(),
                "change": match change {
                    ResourceChange::Created => "created",
                    ResourceChange::Updated => "updated",
                    ResourceChange::Deleted => "deleted",
                    ResourceChange::Policy => "policy",
                },
            }),
            Self::List {
                owner,
                identifier,
                change,
            } => {
                let (change, resource) = match change {
                    ListChange::Upserted => ("upserted", None),
                    ListChange::Deleted => ("deleted", None),
                    ListChange::Members => ("members", None),
                    ListChange::Connected(resource) => ("connected", Some(resource.as_str())),
                    ListChange::Disconnected(resource) => ("disconnected", Some(resource.as_str())),
                };
                let mut payload = json!({
                    "entity": "access-list",
                    "owner": owner.as_str(),
                    "identifier": identifier.as_str(),
                    "change": change,
                });
                if let Some(resource) = resource {
                    payload["resource"] = resource.into();
                }
                payload
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_keys_and_payloads() {
        let resource = ResourceId::parse("my-resource").unwrap();
        let change = Change::Resource {
            identifier: resource.clone(),
            change: ResourceChange::Policy,
        };
        assert_eq!(change.routing_key(), "access.changed.my-resource");
        assert_eq!(change.payload()["change"], "policy");
        let change = Change::List {
            owner: OrgCode::parse("skd").unwrap(),
            identifier: ListId::parse("partners").unwrap(),
            change: ListChange::Connected(resource),
        };
        assert_eq!(change.routing_key(), "access.changed.list.skd.partners");
        assert_eq!(
            change.payload(),
            json!({"entity": "access-list", "owner": "skd", "identifier": "partners",
                   "change": "connected", "resource": "my-resource"})
        );
    }
}
