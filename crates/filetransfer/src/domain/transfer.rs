//! A file transfer as the service stores it, with its recipients and status history.

use std::collections::BTreeMap;

use broker_common::identity::OrgNumber;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::status::{RecipientStatus, TransferStatus};

/// A file transfer about to be created (status Initialized for it and every recipient).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTransfer {
    /// UUIDv7, chosen by the service.
    pub id: Uuid,
    /// The broker resource it belongs to.
    pub resource_id: String,
    /// The file's name.
    pub file_name: String,
    /// The sender's own reference.
    pub senders_reference: Option<String>,
    /// The sending organisation.
    pub sender: OrgNumber,
    /// The sender as the client wrote it, echoed back in that form.
    pub sender_party: String,
    /// The receiving organisations, distinct, in request order.
    pub recipients: Vec<OrgNumber>,
    /// Free metadata from the sender.
    pub property_list: BTreeMap<String, String>,
    /// The expected MD5 as the sender gave it: `""` when left out, `None` when sent as null.
    pub checksum: Option<String>,
    /// Whether the file is scanned for malware.
    pub use_virus_scan: bool,
    /// When it is created.
    pub created: DateTime<Utc>,
    /// When it expires (created + the resource's time to live).
    pub expires: DateTime<Utc>,
    /// The vendor of the initialize call (the token's consumer organisation), for the
    /// Initialized history row.
    pub vendor: Option<OrgNumber>,
}

impl NewTransfer {
    /// The transfer as it is stored right after creation.
    pub fn initialized(&self) -> Transfer {
        Transfer {
            id: self.id,
            resource_id: self.resource_id.clone(),
            file_name: self.file_name.clone(),
            senders_reference: self.senders_reference.clone(),
            sender: self.sender,
            sender_party: self.sender_party.clone(),
            recipients: self
                .recipients
                .iter()
                .map(|&org_number| RecipientState {
                    org_number,
                    status: RecipientStatus::Initialized,
                    changed: self.created,
                })
                .collect(),
            property_list: self.property_list.clone(),
            checksum: self.checksum.clone(),
            use_virus_scan: self.use_virus_scan,
            size: None,
            status: TransferStatus::Initialized,
            status_changed: self.created,
            created: self.created,
            expires: self.expires,
            published: None,
            upload_started: None,
            storage_key: None,
        }
    }
}

/// A recipient's current status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecipientState {
    /// The receiving organisation.
    pub org_number: OrgNumber,
    /// Its current status.
    pub status: RecipientStatus,
    /// When it entered that status.
    pub changed: DateTime<Utc>,
}

/// A stored file transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// UUIDv7.
    pub id: Uuid,
    /// The broker resource it belongs to.
    pub resource_id: String,
    /// The file's name.
    pub file_name: String,
    /// The sender's own reference.
    pub senders_reference: Option<String>,
    /// The sending organisation.
    pub sender: OrgNumber,
    /// The sender as the client wrote it (`0192:<orgnr>` or the organisation URN).
    pub sender_party: String,
    /// Every recipient with its current status, in creation order.
    pub recipients: Vec<RecipientState>,
    /// Free metadata from the sender.
    pub property_list: BTreeMap<String, String>,
    /// The expected MD5 as given at initialization (`""` when left out, `None` when sent as
    /// null), replaced by the file's own once uploaded without one.
    pub checksum: Option<String>,
    /// Whether the file is scanned for malware.
    pub use_virus_scan: bool,
    /// The file's size in bytes, once uploaded.
    pub size: Option<u64>,
    /// Current status.
    pub status: TransferStatus,
    /// When it entered the current status.
    pub status_changed: DateTime<Utc>,
    /// When it was created.
    pub created: DateTime<Utc>,
    /// When it expires.
    pub expires: DateTime<Utc>,
    /// When it was published.
    pub published: Option<DateTime<Utc>>,
    /// When its upload started, kept so stuck uploads can be found.
    pub upload_started: Option<DateTime<Utc>>,
    /// Where its bytes are in object storage.
    pub storage_key: Option<String>,
}

impl Transfer {
    /// The MD5 the upload must match, if the sender gave one (a blank one is none).
    pub fn expected_checksum(&self) -> Option<&str> {
        self.checksum.as_deref().filter(|c| !c.trim().is_empty())
    }

    /// The recipient's current state, if `org_number` is a recipient.
    pub fn recipient(&self, org_number: OrgNumber) -> Option<&RecipientState> {
        self.recipients
            .iter()
            .find(|recipient| recipient.org_number == org_number)
    }

    /// Whether every recipient confirmed its download.
    pub fn all_confirmed(&self) -> bool {
        self.recipients
            .iter()
            .all(|recipient| recipient.status == RecipientStatus::DownloadConfirmed)
    }
}

/// One entry of a transfer's status history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferHistoryEntry {
    /// The status entered.
    pub status: TransferStatus,
    /// Why, when there is more to say than the status (a failure's cause).
    pub detail: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

impl TransferHistoryEntry {
    /// The text shown for this entry: its detail, else the status's text (as Altinn does).
    pub fn text(&self) -> &str {
        self.detail.as_deref().unwrap_or(self.status.text())
    }
}

/// One entry of a recipient's status history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecipientHistoryEntry {
    /// The recipient.
    pub recipient: OrgNumber,
    /// The status entered.
    pub status: RecipientStatus,
    /// When.
    pub at: DateTime<Utc>,
}

/// A transfer's whole history, each list in the order it happened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// The transfer's statuses.
    pub transfer: Vec<TransferHistoryEntry>,
    /// Every recipient's statuses.
    pub recipients: Vec<RecipientHistoryEntry>,
}
