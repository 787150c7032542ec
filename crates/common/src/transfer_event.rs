//! The file-transfer service's domain events as they travel on the bus, the contract between
//! the service that writes them to its outbox and the event service that turns each into one
//! CloudEvent per party.
//!
//! Routing key `filetransfer.<kind>`; the bus message id is the event's `id`, stable across
//! redeliveries, so a consumer can deduplicate on it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The routing-key prefix of every file-transfer event.
pub const ROUTING_PREFIX: &str = "filetransfer.";
/// A binding that matches every file-transfer event.
pub const BINDING: &str = "filetransfer.#";

/// What happened to a file transfer; the names are Altinn's event type suffixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferEventKind {
    /// The transfer was initialized.
    FileTransferInitialized,
    /// The upload finished and is being processed.
    UploadProcessing,
    /// The transfer is available to its recipients.
    Published,
    /// The upload failed (checksum, size, malware, or stuck).
    UploadFailed,
    /// A recipient confirmed its download.
    DownloadConfirmed,
    /// Every recipient confirmed.
    AllConfirmedDownloaded,
    /// The bytes were purged.
    FilePurged,
    /// The transfer expired before every recipient confirmed.
    FileNeverConfirmedDownloaded,
}

impl TransferEventKind {
    /// The name used in routing keys and event types (`published`).
    pub fn name(self) -> &'static str {
        match self {
            Self::FileTransferInitialized => "filetransferinitialized",
            Self::UploadProcessing => "uploadprocessing",
            Self::Published => "published",
            Self::UploadFailed => "uploadfailed",
            Self::DownloadConfirmed => "downloadconfirmed",
            Self::AllConfirmedDownloaded => "allconfirmeddownloaded",
            Self::FilePurged => "filepurged",
            Self::FileNeverConfirmedDownloaded => "fileneverconfirmeddownloaded",
        }
    }

    /// The CloudEvent type, `no.altinn.broker.<name>`.
    pub fn cloud_event_type(self) -> String {
        format!("no.altinn.broker.{}", self.name())
    }

    /// The bus routing key, `filetransfer.<name>`.
    pub fn routing_key(self) -> String {
        format!("{ROUTING_PREFIX}{}", self.name())
    }
}

/// A party's part in a transfer, as the CloudEvent's `data.Role` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PartyRole {
    /// The sending organisation.
    Sender,
    /// A receiving organisation.
    Recipient,
}

/// One party that should hear of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventParty {
    /// Organisation number, 9 digits.
    pub org_number: String,
    /// Its role in the transfer.
    pub role: PartyRole,
}

/// One domain event of a file transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferEvent {
    /// Stable id (the outbox row's), equal across redeliveries.
    pub id: Uuid,
    /// What happened.
    pub kind: TransferEventKind,
    /// The broker resource (slug).
    pub resource_id: String,
    /// The file transfer.
    pub file_transfer_id: Uuid,
    /// When it happened.
    pub time: DateTime<Utc>,
    /// The parties that should each get a CloudEvent, with their roles, as Altinn chooses them.
    pub parties: Vec<EventParty>,
}

impl TransferEvent {
    /// The deterministic CloudEvent id for `party`: the same event for the same party always
    /// gets the same id, so a redelivered bus message cannot create a second CloudEvent.
    pub fn cloud_event_id(&self, party: &EventParty) -> Uuid {
        let role = match party.role {
            PartyRole::Sender => "sender",
            PartyRole::Recipient => "recipient",
        };
        Uuid::new_v5(&self.id, format!("{role}:{}", party.org_number).as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_altinn_event_types() {
        assert_eq!(
            TransferEventKind::FileNeverConfirmedDownloaded.cloud_event_type(),
            "no.altinn.broker.fileneverconfirmeddownloaded"
        );
        let json = serde_json::to_string(&TransferEventKind::AllConfirmedDownloaded).unwrap();
        assert_eq!(json, "\"allconfirmeddownloaded\"");
        assert_eq!(
            TransferEventKind::Published.routing_key(),
            "filetransfer.published"
        );
    }

    #[test]
    fn cloud_event_ids_are_stable_and_per_party() {
        let event = TransferEvent {
            id: Uuid::now_v7(),
            kind: TransferEventKind::Published,
            resource_id: "r".into(),
            file_transfer_id: Uuid::now_v7(),
            time: Utc::now(),
            parties: vec![],
        };
        let sender = EventParty {
            org_number: "910753614".into(),
            role: PartyRole::Sender,
        };
        let recipient = EventParty {
            org_number: "910753614".into(),
            role: PartyRole::Recipient,
        };
        assert_eq!(event.cloud_event_id(&sender), event.cloud_event_id(&sender));
        assert_ne!(
            event.cloud_event_id(&sender),
            event.cloud_event_id(&recipient)
        );
    }
}
