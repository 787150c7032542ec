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
    /// are free text, so each is written as one bounded segment ([`segment`]): every key has a
    /// fixed number of segments and fits AMQP's 255 bytes; the payload names them exactly.
    pub fn routing_key(&self) -> String {
        match self {
            Self::Resource { identifier, .. } => {
                format!("access.changed.{}", segment(identifier.as_str()))
            }
            Self::List {
                owner, identifier, ..
            } => format!(
                "access.changed.list.{owner}.{}",
                segment(identifier.as_str())
            ),
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

/// Longest identifier segment of a routing key.
const MAX_SEGMENT: usize = 100;

/// `text` as one routing-key segment: characters other than ASCII letters, digits, `_` and `-`
/// (dots, above all) become `_`, and it is cut to [`MAX_SEGMENT`] characters.
fn segment(text: &str) -> String {
    text.chars()
        .take(MAX_SEGMENT)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
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
        let dotted = Change::Resource {
            identifier: ResourceId::parse(&format!("a.b c{}", "x".repeat(200))).unwrap(),
            change: ResourceChange::Created,
        };
        let key = dotted.routing_key();
        assert!(key.starts_with("access.changed.a_b_cx"), "{key}");
        assert_eq!(key.matches('.').count(), 2, "{key}");
        assert!(key.len() <= 255);
        assert_eq!(
            change.payload(),
            json!({"entity": "access-list", "owner": "skd", "identifier": "partners",
                   "change": "connected", "resource": "my-resource"})
        );
    }
}
