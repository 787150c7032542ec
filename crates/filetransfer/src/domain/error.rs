//! Errors of the file-transfer service: Altinn's broker error codes 1–30, each with its HTTP
//! status and Altinn's wording, plus request validation and our own infrastructure failures.
//! Each maps once to the problem the client sees.
//! Altinn's statistics codes 6001–6005 and service-owner codes 7001–7004 complete the table.

use std::collections::BTreeMap;

use broker_common::Problem;
use http::StatusCode;

use crate::store::StoreError;

/// An error of any file-transfer operation, rendered as problem+json.
#[derive(Debug, thiserror::Error)]
pub enum FileTransferError {
    /// 1: no such transfer (or the caller may not know of it).
    #[error("The requested file transfer was not found")]
    NotFound,
    /// 2: the resource's service owner is not registered.
    #[error("Service owner needs to be configured to use the broker API")]
    ServiceOwnerNotConfigured,
    /// 3: nothing uploaded yet.
    #[error("No file uploaded yet")]
    NoFileUploaded,
    /// 4: an upload happened or was attempted already.
    #[error(
        "A file transfer has already been, or attempted to be, created. Create a new file transfer resource to try again."
    )]
    AlreadyUploaded,
    /// 5: the resource is unknown or has no service owner.
    #[error(
        "The resource needs to be registered as an Altinn 3 resource and it has to be associated with a service owner"
    )]
    InvalidResourceDefinition,
    /// 6: the access registry denied the caller.
    #[error(
        "You must use a bearer token that represents a system user with access to the resource in the Resource Rights Registry"
    )]
    NoAccessToResource,
    /// 7: the file is not published.
    #[error(
        "The requested file transfer's file is not ready for download. See file transfer status."
    )]
    NotAvailable,
    /// 8: the upload failed on our side.
    #[error("Error occurred while uploading file See /details for more information.")]
    UploadFailed,
    /// 9: the uploaded bytes' MD5 differs from the given checksum.
    #[error(
        "The checksum of uploaded file did not match the checksum specified in initialize call."
    )]
    ChecksumMismatch,
    /// 10: confirming a transfer that is not Published.
    #[error(
        "A file transfer can only be confirmed to be downloaded when it is published. See file transfer status."
    )]
    NotPublished,
    /// 11.
    #[error("Max file transfer size cannot be negative")]
    MaxSizeNegative,
    /// 12.
    #[error("Max file transfer size cannot be zero")]
    MaxSizeZero,
    /// 13.
    #[error(
        "Max file transfer size cannot be set higher than 50GB in production unless the resource has been pre-approved for disabled virus scan. Contact us @ Slack."
    )]
    MaxSizeOverVirusScanLimit,
    /// 14.
    #[error(
        "Invalid file transfer time to live format. Should follow ISO8601 standard for duration. Example: 'P30D' for 30 days."
    )]
    InvalidTimeToLiveFormat,
    /// 15.
    #[error("Time to live cannot exceed 365 days")]
    TimeToLiveOver365Days,
    /// 16: the file is larger than the resource allows.
    #[error("File size exceeds maximum")]
    FileTooBig,
    /// 17.
    #[error(
        "Invalid grace period format. Should follow ISO8601 standard for duration. Example: 'PT2H' for 2 hours."
    )]
    InvalidGracePeriodFormat,
    /// 18.
    #[error("Grace period cannot exceed 24 hours")]
    GracePeriodOver24Hours,
    /// 19: confirming before any download.
    #[error("Cannot confirm before the files have been downloaded")]
    ConfirmBeforeDownload,
    /// 20.
    #[error(
        "In order to use file transfers without virus scan the service resource needs to be approved by Altinn. Please contact us @ Slack."
    )]
    NotApprovedForDisabledVirusScan,
    /// 21.
    #[error("Storage provider is not ready yet. Please try again later.")]
    StorageProviderNotReady,
    /// 22.
    #[error(
        "Max file transfer size cannot be set higher than 100GB in production because it has not yet been tested for it. Contact us @ Slack if you need it."
    )]
    MaxSizeOverGlobal,
    /// 23.
    #[error(
        "In order to use manifest file shim you need to provide external service code and edition code"
    )]
    ManifestShimNeedsServiceCodes,
    /// 24: the resource's service owner is not registered.
    #[error("The service owner associated with the resource has not been configured.")]
    ServiceOwnerNotRegistered,
    /// 25: the resource has no broker settings yet.
    #[error("The resource has not been configured.")]
    ResourceNotConfigured,
    /// 26: the resource requires a party that is neither the sender nor the recipient.
    #[error(
        "The resource requires the service owner party to be present as part of the transaction."
    )]
    RequiredPartyMissing,
    /// 27: with a required party that is not the sender, there may be only one recipient.
    #[error(
        "When required party is specified and the required party is not the sender, the number of recipients can only be one."
    )]
    RequiredPartyNotOnlyRecipient,
    /// 28: a recipient is not on the resource's access list.
    #[error("All recipients need to be in the access list of the resource.")]
    RecipientNotOnAccessList,
    /// 29: the Range starts past the end of the file.
    #[error("The requested byte range is not satisfiable.")]
    RangeNotSatisfiable,
    /// 30: a malware scan result came before the upload was processing.
    #[error(
        "File transfer is not yet in UploadProcessing. Retry when upload completion has been recorded."
    )]
    ScanResultTooEarly,
    /// 6001: Altinn's daily summary found nothing to report (only the daily summary uses it; the
    /// monthly report of nothing is its header line).
    #[error("No file transfers found for report generation")]
    NoFileTransfersFound,
    /// 6002: Altinn's daily summary failed (only the daily summary uses it).
    #[error("Failed to generate statistics report")]
    ReportGenerationFailed,
    /// 6003: a report's year or month is out of range.
    #[error("Invalid year or month. Provide a valid year and a month between 1 and 12.")]
    InvalidReportMonth,
    /// 6004: defined by Altinn but answered nowhere; kept so the code table is complete.
    #[error("The requested report month is invalid.")]
    InvalidMonthRange,
    /// 6005: a report with neither the end users nor the vendors.
    #[error("At least one of includeEndUser or includeVendor must be true.")]
    EndUserAndVendorBothExcluded,
    /// 7001: the token names no organisation.
    #[error("Caller organization id could not be determined")]
    CallerOrganizationUnknown,
    /// 7002: the caller registered as a service owner already.
    #[error("Service owner already exists")]
    ServiceOwnerAlreadyExists,
    /// 7003: a registered service owner could not be read back.
    #[error("Service owner could not be initialized")]
    ServiceOwnerNotInitialized,
    /// 7004: the caller is not a registered service owner.
    #[error("Service owner not found")]
    ServiceOwnerNotFound,
    /// Request fields fail validation (field → messages).
    #[error("invalid request: {0:?}")]
    Invalid(BTreeMap<String, Vec<String>>),
    /// A problem from another service (the access registry), passed on as it came.
    #[error("{0}")]
    Upstream(Problem),
    /// Object storage failed.
    #[error("object storage: {0}")]
    Storage(String),
    /// The disk holding the files is full: 507, so clients stop retrying until it is not.
    #[error(
        "The file storage is full, so the file was not stored. Try again after the operator has freed space."
    )]
    StorageFull,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A resumable (tus) request refused as the tus protocol answers it.
    #[error(transparent)]
    Tus(#[from] TusRefusal),
}

/// Why a tus request was refused: tus's own answers, which have no Altinn code.
#[derive(Debug, thiserror::Error)]
pub enum TusRefusal {
    /// `Upload-Offset` is not the upload's offset: 409.
    #[error("Offset does not match file. File offset: {stored}. Request offset: {sent}")]
    Offset {
        /// The upload's durable offset.
        stored: u64,
        /// The request's.
        sent: u64,
    },
    /// Another request is writing the upload: 423.
    #[error("The upload is being written by another request")]
    Busy,
    /// The body is longer than the rest of the upload: 400.
    #[error("The request body is longer than the upload's remaining length")]
    TooLong,
    /// `Upload-Checksum` does not match the request's bytes: 460.
    #[error("Header Upload-Checksum does not match the checksum of the file")]
    ChecksumMismatch,
    /// A final upload names a partial upload of another transfer, or none: 400.
    #[error("Partial upload {partial} does not belong to file transfer {transfer}.")]
    ForeignPartial {
        /// The partial upload named.
        partial: String,
        /// The transfer.
        transfer: String,
    },
    /// A final upload names a partial upload that is not complete: 400.
    #[error("Partial upload {0} is not ready for concatenation.")]
    PartialNotReady(String),
    /// A final upload names no partial upload: 400.
    #[error(
        "Header Upload-Concat: Header is invalid. A final upload must name its partial uploads"
    )]
    NoPartials,
}

impl TusRefusal {
    /// The status tus answers with.
    fn status(&self) -> StatusCode {
        match self {
            Self::Offset { .. } => StatusCode::CONFLICT,
            Self::Busy => StatusCode::LOCKED,
            // 460 is tus's own "Checksum Mismatch".
            Self::ChecksumMismatch => StatusCode::from_u16(460).unwrap_or(StatusCode::BAD_REQUEST),
            Self::TooLong
            | Self::ForeignPartial { .. }
            | Self::PartialNotReady(_)
            | Self::NoPartials => StatusCode::BAD_REQUEST,
        }
    }
}

impl FileTransferError {
    /// Altinn's broker error code, if the error has one.
    pub fn code(&self) -> Option<u16> {
        use FileTransferError::*;
        Some(match self {
            NotFound => 1,
            ServiceOwnerNotConfigured => 2,
            NoFileUploaded => 3,
            AlreadyUploaded => 4,
            InvalidResourceDefinition => 5,
            NoAccessToResource => 6,
            NotAvailable => 7,
            UploadFailed => 8,
            ChecksumMismatch => 9,
            NotPublished => 10,
            MaxSizeNegative => 11,
            MaxSizeZero => 12,
            MaxSizeOverVirusScanLimit => 13,
            InvalidTimeToLiveFormat => 14,
            TimeToLiveOver365Days => 15,
            FileTooBig => 16,
            InvalidGracePeriodFormat => 17,
            GracePeriodOver24Hours => 18,
            ConfirmBeforeDownload => 19,
            NotApprovedForDisabledVirusScan => 20,
            StorageProviderNotReady => 21,
            MaxSizeOverGlobal => 22,
            ManifestShimNeedsServiceCodes => 23,
            ServiceOwnerNotRegistered => 24,
            ResourceNotConfigured => 25,
            RequiredPartyMissing => 26,
            RequiredPartyNotOnlyRecipient => 27,
            RecipientNotOnAccessList => 28,
            RangeNotSatisfiable => 29,
            ScanResultTooEarly => 30,
            NoFileTransfersFound => 6001,
            ReportGenerationFailed => 6002,
            InvalidReportMonth => 6003,
            InvalidMonthRange => 6004,
            EndUserAndVendorBothExcluded => 6005,
            CallerOrganizationUnknown => 7001,
            ServiceOwnerAlreadyExists => 7002,
            ServiceOwnerNotInitialized => 7003,
            ServiceOwnerNotFound => 7004,
            Invalid(_) | Upstream(_) | Storage(_) | StorageFull | Store(_) | Tus(_) => {
                return None;
            }
        })
    }

    /// The HTTP status Altinn answers with.
    pub fn status(&self) -> StatusCode {
        use FileTransferError::*;
        match self {
            NotFound | ServiceOwnerNotFound => StatusCode::NOT_FOUND,
            AlreadyUploaded | ServiceOwnerAlreadyExists => StatusCode::CONFLICT,
            InvalidResourceDefinition | NotAvailable => StatusCode::FORBIDDEN,
            NoAccessToResource => StatusCode::UNAUTHORIZED,
            UploadFailed | ServiceOwnerNotInitialized => StatusCode::INTERNAL_SERVER_ERROR,
            StorageProviderNotReady | ScanResultTooEarly => StatusCode::SERVICE_UNAVAILABLE,
            RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
            NoFileTransfersFound => StatusCode::NOT_FOUND,
            ReportGenerationFailed => StatusCode::INTERNAL_SERVER_ERROR,
            Upstream(problem) => problem.status_code(),
            Storage(_) | Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            StorageFull => StatusCode::INSUFFICIENT_STORAGE,
            Tus(refusal) => refusal.status(),
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// One invalid field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(BTreeMap::from([(field.into(), vec![message.into()])]))
    }

    /// The error with its invalid fields named under `model` (`Metadata.FileName`), as ASP.NET
    /// names the properties of a form's model.
    pub fn within(self, model: &str) -> Self {
        match self {
            Self::Invalid(errors) => Self::Invalid(
                errors
                    .into_iter()
                    .map(|(field, messages)| (format!("{model}.{field}"), messages))
                    .collect(),
            ),
            other => other,
        }
    }
}

impl From<FileTransferError> for Problem {
    fn from(error: FileTransferError) -> Self {
        let status = error.status();
        let code = error.code();
        let problem = match error {
            FileTransferError::Invalid(errors) => return Problem::validation(errors),
            FileTransferError::Upstream(problem) => return problem,
            FileTransferError::Storage(cause) => {
                tracing::error!(%cause, "object storage failed");
                Problem::unavailable("the file storage is unavailable")
            }
            FileTransferError::Store(cause) => {
                tracing::error!(%cause, "file-transfer store failed");
                Problem::unavailable("the file-transfer database is unavailable")
            }
            other => Problem::new(status, other.to_string()),
        };
        match code {
            Some(code) => problem.with_code(code),
            None => problem,
        }
    }
}

impl From<FileTransferError> for tonic::Status {
    fn from(error: FileTransferError) -> Self {
        Problem::from(error).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_carry_altinns_statuses() {
        use FileTransferError::*;
        let cases: [(FileTransferError, u16, u16); 39] = [
            (NotFound, 1, 404),
            (ServiceOwnerNotConfigured, 2, 400),
            (NoFileUploaded, 3, 400),
            (AlreadyUploaded, 4, 409),
            (InvalidResourceDefinition, 5, 403),
            (NoAccessToResource, 6, 401),
            (NotAvailable, 7, 403),
            (UploadFailed, 8, 500),
            (ChecksumMismatch, 9, 400),
            (NotPublished, 10, 400),
            (MaxSizeNegative, 11, 400),
            (MaxSizeZero, 12, 400),
            (MaxSizeOverVirusScanLimit, 13, 400),
            (InvalidTimeToLiveFormat, 14, 400),
            (TimeToLiveOver365Days, 15, 400),
            (FileTooBig, 16, 400),
            (InvalidGracePeriodFormat, 17, 400),
            (GracePeriodOver24Hours, 18, 400),
            (ConfirmBeforeDownload, 19, 400),
            (NotApprovedForDisabledVirusScan, 20, 400),
            (StorageProviderNotReady, 21, 503),
            (MaxSizeOverGlobal, 22, 400),
            (ManifestShimNeedsServiceCodes, 23, 400),
            (ServiceOwnerNotRegistered, 24, 400),
            (ResourceNotConfigured, 25, 400),
            (RequiredPartyMissing, 26, 400),
            (RequiredPartyNotOnlyRecipient, 27, 400),
            (RecipientNotOnAccessList, 28, 400),
            (RangeNotSatisfiable, 29, 416),
            (ScanResultTooEarly, 30, 503),
            (NoFileTransfersFound, 6001, 404),
            (ReportGenerationFailed, 6002, 500),
            (InvalidReportMonth, 6003, 400),
            (InvalidMonthRange, 6004, 400),
            (EndUserAndVendorBothExcluded, 6005, 400),
            (CallerOrganizationUnknown, 7001, 400),
            (ServiceOwnerAlreadyExists, 7002, 409),
            (ServiceOwnerNotInitialized, 7003, 500),
            (ServiceOwnerNotFound, 7004, 404),
        ];
        for (error, code, status) in cases {
            let message = error.to_string();
            let problem = Problem::from(error);
            assert_eq!(
                (problem.code, problem.status),
                (Some(code), status),
                "{message}"
            );
            assert_eq!(problem.detail.as_deref(), Some(message.as_str()));
        }
        assert_eq!(
            Problem::from(FileTransferError::ChecksumMismatch)
                .code_text()
                .as_deref(),
            Some("BRO-00009")
        );
        assert_eq!(
            Problem::from(FileTransferError::InvalidReportMonth)
                .code_text()
                .as_deref(),
            Some("BRO-06003")
        );
    }

    #[test]
    fn validation_lists_fields_and_infrastructure_hides_causes() {
        let problem = Problem::from(FileTransferError::invalid("fileName", "required"));
        assert_eq!(problem.status, 400);
        assert!(problem.errors.unwrap().contains_key("fileName"));
        let problem = Problem::from(FileTransferError::Storage("disk /secret full".into()));
        assert_eq!(problem.status, 503);
        assert!(!problem.detail.unwrap().contains("secret"));
        let problem = Problem::from(FileTransferError::StorageFull);
        assert_eq!((problem.status, problem.code), (507, None));
        assert!(problem.detail.unwrap().contains("storage is full"));
    }
}
