//! Which parties hear of each thing that happens to a transfer, as Altinn chooses them, and the
//! bus event (`broker_common::transfer_event`) that carries it.

use broker_common::identity::OrgNumber;
use broker_common::transfer_event::{EventParty, PartyRole, TransferEvent, TransferEventKind};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::transfer::Transfer;

/// Something that happened to a transfer that its parties are told of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Happening {
    /// The transfer was initialized (sender).
    Initialized,
    /// The upload is being processed (sender).
    UploadProcessing,
    /// The transfer was published (sender and every recipient).
    Published,
    /// The upload failed (sender).
    UploadFailed,
    /// One recipient confirmed its download (that recipient and the sender).
    DownloadConfirmed(OrgNumber),
    /// Every recipient confirmed (sender).
    AllConfirmedDownloaded,
    /// The bytes were purged (sender).
    FilePurged,
    /// The transfer expired with these recipients unconfirmed (sender and each of them).
    NeverConfirmed(Vec<OrgNumber>),
}

impl Happening {
    /// The event kind on the bus.
    pub fn kind(&self) -> TransferEventKind {
        match self {
            Self::Initialized => TransferEventKind::FileTransferInitialized,
            Self::UploadProcessing => TransferEventKind::UploadProcessing,
            Self::Published => TransferEventKind::Published,
            Self::UploadFailed => TransferEventKind::UploadFailed,
            Self::DownloadConfirmed(_) => TransferEventKind::DownloadConfirmed,
            Self::AllConfirmedDownloaded => TransferEventKind::AllConfirmedDownloaded,
            Self::FilePurged => TransferEventKind::FilePurged,
            Self::NeverConfirmed(_) => TransferEventKind::FileNeverConfirmedDownloaded,
        }
    }

    /// The parties that should hear of it, in Altinn's order.
    pub fn parties(&self, transfer: &Transfer) -> Vec<EventParty> {
        let party = |org: &OrgNumber, role| EventParty {
            org_number: org.to_string(),
            role,
        };
        let sender = party(&transfer.sender, PartyRole::Sender);
        match self {
            Self::Initialized
            | Self::UploadProcessing
            | Self::UploadFailed
            | Self::AllConfirmedDownloaded
            | Self::FilePurged => vec![sender],
            Self::Published => std::iter::once(sender)
                .chain(
                    transfer
                        .recipients
                        .iter()
                        .map(|r| party(&r.org_number, PartyRole::Recipient)),
                )
                .collect(),
            Self::DownloadConfirmed(recipient) => {
                vec![party(recipient, PartyRole::Recipient), sender]
            }
            Self::NeverConfirmed(recipients) => std::iter::once(sender)
                .chain(recipients.iter().map(|r| party(r, PartyRole::Recipient)))
                .collect(),
        }
    }

    /// The bus event, with a fresh UUIDv7 id (the outbox row's id, stable from then on).
    pub fn event(&self, transfer: &Transfer, time: DateTime<Utc>) -> TransferEvent {
        TransferEvent {
            id: Uuid::now_v7(),
            kind: self.kind(),
            resource_id: transfer.resource_id.clone(),
            file_transfer_id: transfer.id,
            time,
            parties: self.parties(transfer),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::transfer::NewTransfer;

    fn org(text: &str) -> OrgNumber {
        OrgNumber::parse(text).unwrap()
    }

    fn transfer() -> Transfer {
        let now = Utc::now();
        NewTransfer {
            id: Uuid::now_v7(),
            resource_id: "res".into(),
            file_name: "a.txt".into(),
            senders_reference: None,
            sender: org("991825827"),
            sender_party: "0192:991825827".into(),
            recipients: vec![org("974760673"), org("910753614")],
            property_list: BTreeMap::new(),
            checksum: None,
            use_virus_scan: true,
            created: now,
            expires: now,
            vendor: None,
        }
        .initialized()
    }

    fn roles(event: &TransferEvent) -> Vec<(String, PartyRole)> {
        event
            .parties
            .iter()
            .map(|p| (p.org_number.clone(), p.role))
            .collect()
    }

    #[test]
    fn parties_are_the_ones_altinn_tells() {
        let transfer = transfer();
        let now = Utc::now();
        let sender = ("991825827".to_owned(), PartyRole::Sender);
        let first = ("974760673".to_owned(), PartyRole::Recipient);
        let second = ("910753614".to_owned(), PartyRole::Recipient);
        for only_sender in [
            Happening::Initialized,
            Happening::UploadProcessing,
            Happening::UploadFailed,
            Happening::AllConfirmedDownloaded,
            Happening::FilePurged,
        ] {
            assert_eq!(
                roles(&only_sender.event(&transfer, now)),
                std::slice::from_ref(&sender)
            );
        }
        assert_eq!(
            roles(&Happening::Published.event(&transfer, now)),
            [sender.clone(), first.clone(), second.clone()]
        );
        assert_eq!(
            roles(&Happening::DownloadConfirmed(org("910753614")).event(&transfer, now)),
            [second.clone(), sender.clone()]
        );
        let event = Happening::NeverConfirmed(vec![org("974760673")]).event(&transfer, now);
        assert_eq!(roles(&event), [sender, first]);
        assert_eq!(event.kind, TransferEventKind::FileNeverConfirmedDownloaded);
        assert_eq!(event.file_transfer_id, transfer.id);
        assert_eq!(event.resource_id, "res");
    }
}
