//! What the lifecycle jobs do to a transfer that is due, decided without I/O: the status it
//! moves to, the text of its history row and the events its parties hear of. The jobs
//! (`crate::jobs`) find the due transfers and apply these under a row lock.

use broker_common::transfer_event::TransferEvent;
use chrono::{DateTime, Utc};

use super::event::Happening;
use super::status::{RecipientStatus, TransferStatus};
use super::transfer::Transfer;

/// The move a job makes on one due transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// The status it moves to.
    pub to: TransferStatus,
    /// Text for the history row; `None`: the status's own text.
    pub detail: Option<String>,
    /// The events to publish with the move.
    pub events: Vec<TransferEvent>,
}

/// Purge: the bytes go, the status becomes Purged, the sender hears `filepurged`, and when some
/// recipients of a published transfer never confirmed their download (it expired first), the
/// sender and each of them hear `fileneverconfirmeddownloaded`, as Altinn tells them. A transfer
/// that expired before its upload had nothing for its recipients to confirm.
pub fn purge(transfer: &Transfer, now: DateTime<Utc>) -> Settlement {
    let was_available = transfer.published.is_some();
    let unconfirmed: Vec<_> = transfer
        .recipients
        .iter()
        .filter(|recipient| recipient.status != RecipientStatus::DownloadConfirmed)
        .map(|recipient| recipient.org_number)
        .collect();
    let mut events = vec![Happening::FilePurged.event(transfer, now)];
    if was_available && !unconfirmed.is_empty() {
        events.push(Happening::NeverConfirmed(unconfirmed).event(transfer, now));
    }
    Settlement {
        to: TransferStatus::Purged,
        detail: None,
        events,
    }
}

/// A stuck upload (UploadStarted or UploadProcessing for too long) fails with `uploadfailed`.
pub fn fail_stuck(transfer: &Transfer, now: DateTime<Utc>) -> Settlement {
    let detail = match transfer.status {
        TransferStatus::UploadProcessing => "Processing of the upload did not finish in time",
        _ => "The upload stopped before it was complete",
    };
    Settlement {
        to: TransferStatus::Failed,
        detail: Some(detail.to_owned()),
        events: vec![Happening::UploadFailed.event(transfer, now)],
    }
}

/// An upload whose process died (its lease lapsed) fails with `uploadfailed`, as one whose
/// client went away does.
pub fn upload_abandoned(transfer: &Transfer, now: DateTime<Utc>) -> Settlement {
    Settlement {
        to: TransferStatus::Failed,
        detail: Some("The upload was aborted: the broker process receiving it stopped".to_owned()),
        events: vec![Happening::UploadFailed.event(transfer, now)],
    }
}

/// A malware scanner found `threat` in the file: the transfer fails with `uploadfailed`.
pub fn malware_found(transfer: &Transfer, threat: &str, now: DateTime<Utc>) -> Settlement {
    let detail = if threat.is_empty() {
        "Malware detected in the uploaded file".to_owned()
    } else {
        format!("Malware detected in the uploaded file: {threat}")
    };
    Settlement {
        to: TransferStatus::Failed,
        detail: Some(detail),
        events: vec![Happening::UploadFailed.event(transfer, now)],
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use broker_common::identity::OrgNumber;
    use broker_common::transfer_event::TransferEventKind;
    use uuid::Uuid;

    use super::*;
    use crate::domain::transfer::NewTransfer;

    fn transfer(confirmed: &[bool]) -> Transfer {
        let now = Utc::now();
        let recipients = ["974760673", "910753614"];
        let mut transfer = NewTransfer {
            id: Uuid::now_v7(),
            resource_id: "res".into(),
            file_name: "a.txt".into(),
            senders_reference: None,
            sender: OrgNumber::parse("991825827").unwrap(),
            sender_party: "0192:991825827".into(),
            recipients: recipients
                .iter()
                .map(|r| OrgNumber::parse(r).unwrap())
                .collect(),
            property_list: BTreeMap::new(),
            checksum: None,
            use_virus_scan: false,
            created: now,
            expires: now,
            vendor: None,
        }
        .initialized();
        transfer.published = Some(now);
        for (recipient, &confirmed) in transfer.recipients.iter_mut().zip(confirmed) {
            if confirmed {
                recipient.status = RecipientStatus::DownloadConfirmed;
            }
        }
        transfer
    }

    #[test]
    fn an_expired_transfer_tells_the_unconfirmed_recipients() {
        let settlement = purge(&transfer(&[true, false]), Utc::now());
        assert_eq!(settlement.to, TransferStatus::Purged);
        let kinds: Vec<_> = settlement.events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                TransferEventKind::FilePurged,
                TransferEventKind::FileNeverConfirmedDownloaded
            ]
        );
        let told: Vec<_> = settlement.events[1]
            .parties
            .iter()
            .map(|p| p.org_number.as_str())
            .collect();
        assert_eq!(told, ["991825827", "910753614"]);
    }

    #[test]
    fn a_transfer_never_published_only_says_purged() {
        let mut never = transfer(&[false, false]);
        never.published = None;
        never.status = TransferStatus::Initialized;
        let settlement = purge(&never, Utc::now());
        assert_eq!(kinds_of(&settlement), [TransferEventKind::FilePurged]);
    }

    fn kinds_of(settlement: &Settlement) -> Vec<TransferEventKind> {
        settlement.events.iter().map(|e| e.kind).collect()
    }

    #[test]
    fn a_fully_confirmed_transfer_only_says_purged() {
        let settlement = purge(&transfer(&[true, true]), Utc::now());
        assert_eq!(settlement.events.len(), 1);
        assert_eq!(settlement.events[0].kind, TransferEventKind::FilePurged);
    }

    #[test]
    fn stuck_and_malicious_uploads_fail_with_uploadfailed() {
        let transfer = transfer(&[false, false]);
        for settlement in [
            fail_stuck(&transfer, Utc::now()),
            malware_found(&transfer, "Eicar-Signature", Utc::now()),
        ] {
            assert_eq!(settlement.to, TransferStatus::Failed);
            assert_eq!(settlement.events[0].kind, TransferEventKind::UploadFailed);
            assert!(settlement.detail.is_some());
        }
    }
}
