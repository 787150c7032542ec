//! The statuses of a file transfer and of each recipient, with the one table of moves between
//! them. The store refuses any move this table does not allow, so an illegal transition can
//! never be written, whatever the caller asks.

use std::fmt;
use std::str::FromStr;

/// A wire name that is not a known status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status {0:?}")]
pub struct UnknownStatus(pub String);

/// Where a file transfer is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransferStatus {
    /// Created; waiting for its file.
    Initialized,
    /// The file is being uploaded.
    UploadStarted,
    /// The file is uploaded and being checked (checksum, malware scan).
    UploadProcessing,
    /// Available to its recipients.
    Published,
    /// Cancelled; Altinn defines it but nothing sets it.
    Cancelled,
    /// Every recipient confirmed its download.
    AllConfirmedDownloaded,
    /// The file's bytes were removed.
    Purged,
    /// The upload failed, was aborted or got stuck.
    Failed,
}

impl TransferStatus {
    /// Every status, in wire order.
    pub const ALL: [Self; 8] = [
        Self::Initialized,
        Self::UploadStarted,
        Self::UploadProcessing,
        Self::Published,
        Self::Cancelled,
        Self::AllConfirmedDownloaded,
        Self::Purged,
        Self::Failed,
    ];

    /// The wire name (`UploadStarted`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initialized => "Initialized",
            Self::UploadStarted => "UploadStarted",
            Self::UploadProcessing => "UploadProcessing",
            Self::Published => "Published",
            Self::Cancelled => "Cancelled",
            Self::AllConfirmedDownloaded => "AllConfirmedDownloaded",
            Self::Purged => "Purged",
            Self::Failed => "Failed",
        }
    }

    /// The status text Altinn shows next to the status (`fileTransferStatusText`).
    pub fn text(self) -> &'static str {
        match self {
            Self::Initialized => "Ready for upload",
            Self::UploadStarted => "Upload started",
            Self::UploadProcessing => "Processing upload",
            Self::Published => "Ready for download",
            Self::Cancelled => "FileTransfer cancelled",
            Self::AllConfirmedDownloaded => "All downloaded",
            Self::Purged => "FileTransfer has been purged",
            Self::Failed => "Upload failed",
        }
    }

    /// Whether the transfer may move from `self` to `to`: the one table of legal moves.
    pub fn can_move_to(self, to: Self) -> bool {
        use TransferStatus::*;
        matches!(
            (self, to),
            (Initialized, UploadStarted)
                | (Initialized, Failed)
                // Expired before any upload: nothing to delete, but it is over.
                | (Initialized, Purged)
                | (UploadStarted, UploadProcessing)
                | (UploadStarted, Failed)
                | (UploadProcessing, Published)
                | (UploadProcessing, Failed)
                | (Published, AllConfirmedDownloaded)
                | (Published, Purged)
                | (AllConfirmedDownloaded, Purged)
        )
    }
}

impl fmt::Display for TransferStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TransferStatus {
    type Err = UnknownStatus;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| UnknownStatus(text.to_owned()))
    }
}

/// Where one recipient is with a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecipientStatus {
    /// Nothing downloaded yet.
    Initialized,
    /// The recipient has started at least one download.
    DownloadStarted,
    /// The recipient confirmed it has the file.
    DownloadConfirmed,
}

impl RecipientStatus {
    /// Every status, in wire order.
    pub const ALL: [Self; 3] = [
        Self::Initialized,
        Self::DownloadStarted,
        Self::DownloadConfirmed,
    ];

    /// The wire name (`DownloadStarted`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initialized => "Initialized",
            Self::DownloadStarted => "DownloadStarted",
            Self::DownloadConfirmed => "DownloadConfirmed",
        }
    }

    /// The status text Altinn shows (`currentRecipientFileTransferStatusText`).
    pub fn text(self) -> &'static str {
        match self {
            Self::Initialized => "Initialized",
            Self::DownloadStarted => "Recipient has attempted to download fileTransfer",
            Self::DownloadConfirmed => "Recipient has downloaded fileTransfer",
        }
    }

    /// Whether a recipient may move from `self` to `to`. DownloadStarted → DownloadStarted
    /// (a second download) is allowed and changes nothing; see [`Self::is_no_op`].
    pub fn can_move_to(self, to: Self) -> bool {
        use RecipientStatus::*;
        matches!(
            (self, to),
            (Initialized, DownloadStarted)
                | (DownloadStarted, DownloadStarted)
                | (DownloadStarted, DownloadConfirmed)
        )
    }

    /// Whether moving from `self` to `to` is allowed but records nothing.
    pub fn is_no_op(self, to: Self) -> bool {
        self == Self::DownloadStarted && to == Self::DownloadStarted
    }
}

impl fmt::Display for RecipientStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RecipientStatus {
    type Err = UnknownStatus;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| UnknownStatus(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_transfer_pair_is_legal_exactly_when_the_table_says() {
        use TransferStatus::*;
        let legal = [
            (Initialized, UploadStarted),
            (Initialized, Failed),
            (Initialized, Purged),
            (UploadStarted, UploadProcessing),
            (UploadStarted, Failed),
            (UploadProcessing, Published),
            (UploadProcessing, Failed),
            (Published, AllConfirmedDownloaded),
            (Published, Purged),
            (AllConfirmedDownloaded, Purged),
        ];
        for from in TransferStatus::ALL {
            for to in TransferStatus::ALL {
                assert_eq!(
                    from.can_move_to(to),
                    legal.contains(&(from, to)),
                    "{from} → {to}"
                );
            }
        }
        assert!(!Published.can_move_to(Failed));
        assert!(
            TransferStatus::ALL
                .iter()
                .all(|s| !s.can_move_to(Cancelled))
        );
    }

    #[test]
    fn every_recipient_pair_is_legal_exactly_when_the_table_says() {
        use RecipientStatus::*;
        let legal = [
            (Initialized, DownloadStarted),
            (DownloadStarted, DownloadStarted),
            (DownloadStarted, DownloadConfirmed),
        ];
        for from in RecipientStatus::ALL {
            for to in RecipientStatus::ALL {
                assert_eq!(
                    from.can_move_to(to),
                    legal.contains(&(from, to)),
                    "{from} → {to}"
                );
                assert_eq!(
                    from.is_no_op(to),
                    (from, to) == (DownloadStarted, DownloadStarted)
                );
            }
        }
    }

    #[test]
    fn wire_names_round_trip() {
        for status in TransferStatus::ALL {
            assert_eq!(status.as_str().parse::<TransferStatus>(), Ok(status));
        }
        for status in RecipientStatus::ALL {
            assert_eq!(status.as_str().parse::<RecipientStatus>(), Ok(status));
        }
        assert!("published".parse::<TransferStatus>().is_err());
        assert!("".parse::<RecipientStatus>().is_err());
        assert_eq!(TransferStatus::Published.text(), "Ready for download");
    }
}
