//! CloudEvents 1.0 exactly as Altinn Broker sends them: lowercase attribute names, one event per
//! party of a file-transfer event, each with the party's organisation as subject and its role
//! in `data`.

use broker_common::transfer_event::{EventParty, PartyRole, TransferEvent};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The only CloudEvents version we speak.
pub const SPEC_VERSION: &str = "1.0";
/// The prefix of an Altinn resource URN.
pub const RESOURCE_URN_PREFIX: &str = "urn:altinn:resource:";
/// The prefix of an organisation subject.
pub const ORGANIZATION_URN_PREFIX: &str = "urn:altinn:organization:identifier-no:";

/// A party's role, as `data.Role` carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventData {
    /// Sender or recipient.
    #[serde(rename = "Role")]
    pub role: PartyRole,
}

/// One CloudEvent of the broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudEvent {
    /// Always [`SPEC_VERSION`].
    pub specversion: String,
    /// Deterministic per (transfer event, party), so redeliveries keep it.
    pub id: Uuid,
    /// `no.altinn.broker.<name>`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// `<public url>broker/api/v1/filetransfer`.
    pub source: String,
    /// When it happened.
    pub time: DateTime<Utc>,
    /// `urn:altinn:resource:<id>`.
    pub resource: String,
    /// The file transfer id.
    pub resourceinstance: String,
    /// `urn:altinn:organization:identifier-no:<orgnr>`.
    pub subject: String,
    /// The party's role.
    pub data: EventData,
}

/// `urn:altinn:resource:<id>`.
pub fn resource_urn(resource_id: &str) -> String {
    format!("{RESOURCE_URN_PREFIX}{resource_id}")
}

/// The `source` of every file-transfer event of a broker reachable at `public_url`.
pub fn file_transfer_source(public_url: &str) -> String {
    // Altinn's source is `{gateway}broker/...`; tolerate a configured URL without the slash.
    let separator = if public_url.ends_with('/') { "" } else { "/" };
    format!("{public_url}{separator}broker/api/v1/filetransfer")
}

impl CloudEvent {
    /// The CloudEvent for one party of `event`.
    pub fn for_party(event: &TransferEvent, party: &EventParty, source: &str) -> Self {
        Self {
            specversion: SPEC_VERSION.to_owned(),
            id: event.cloud_event_id(party),
            event_type: event.kind.cloud_event_type(),
            source: source.to_owned(),
            time: event.time,
            resource: resource_urn(&event.resource_id),
            resourceinstance: event.file_transfer_id.to_string(),
            subject: format!("{ORGANIZATION_URN_PREFIX}{}", party.org_number),
            data: EventData { role: party.role },
        }
    }

    /// One CloudEvent per party of `event`, in the parties' order, as Altinn emits them.
    pub fn from_transfer_event(event: &TransferEvent, public_url: &str) -> Vec<Self> {
        let source = file_transfer_source(public_url);
        event
            .parties
            .iter()
            .map(|party| Self::for_party(event, party, &source))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use broker_common::transfer_event::TransferEventKind;
    use serde_json::json;

    use super::*;

    fn published() -> TransferEvent {
        TransferEvent {
            id: Uuid::now_v7(),
            kind: TransferEventKind::Published,
            resource_id: "my-resource".to_owned(),
            file_transfer_id: Uuid::now_v7(),
            time: DateTime::from_timestamp_millis(1_713_511_339_438).unwrap(),
            parties: vec![
                EventParty {
                    org_number: "991825827".to_owned(),
                    role: PartyRole::Sender,
                },
                EventParty {
                    org_number: "974760673".to_owned(),
                    role: PartyRole::Recipient,
                },
            ],
        }
    }

    #[test]
    fn one_event_per_party_with_altinn_attributes() {
        let event = published();
        let cloud = CloudEvent::from_transfer_event(&event, "https://broker.example/");
        assert_eq!(cloud.len(), 2);
        let value = serde_json::to_value(&cloud[1]).unwrap();
        assert_eq!(
            value,
            json!({
                "specversion": "1.0",
                "id": event.cloud_event_id(&event.parties[1]).to_string(),
                "type": "no.altinn.broker.published",
                "source": "https://broker.example/broker/api/v1/filetransfer",
                "time": "2024-04-19T07:22:19.438Z",
                "resource": "urn:altinn:resource:my-resource",
                "resourceinstance": event.file_transfer_id.to_string(),
                "subject": "urn:altinn:organization:identifier-no:974760673",
                "data": {"Role": "Recipient"},
            })
        );
        assert_eq!(cloud[0].data.role, PartyRole::Sender);
        assert_ne!(cloud[0].id, cloud[1].id);
    }

    #[test]
    fn ids_are_stable_across_redeliveries() {
        let event = published();
        let first = CloudEvent::from_transfer_event(&event, "https://broker.example");
        let again = CloudEvent::from_transfer_event(&event.clone(), "https://broker.example");
        assert_eq!(first, again);
        assert_eq!(
            first[0].source,
            "https://broker.example/broker/api/v1/filetransfer"
        );
    }

    #[test]
    fn serde_round_trip() {
        for event in CloudEvent::from_transfer_event(&published(), "https://b.example/") {
            let text = serde_json::to_string(&event).unwrap();
            let back: CloudEvent = serde_json::from_str(&text).unwrap();
            assert_eq!(back, event);
        }
    }
}
