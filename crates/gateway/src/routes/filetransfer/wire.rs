//! The Altinn Broker v1 wire format and its one mapping to and from the file-transfer contract:
//! camelCase JSON field names as Altinn's, enums as strings, times as RFC 3339 text (the service
//! formats them), and absent optional text as `null` rather than `""`.

use std::collections::{BTreeMap, HashMap};

use broker_common::Problem;
use broker_proto::common::Principal;
use broker_proto::filetransfer as pb;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::extract::null_as_default;

/// The file transfer statuses of the reference, in lifecycle order.
pub const FILE_TRANSFER_STATUSES: [&str; 8] = [
    "Initialized",
    "UploadStarted",
    "UploadProcessing",
    "Published",
    "Cancelled",
    "AllConfirmedDownloaded",
    "Purged",
    "Failed",
];

/// The recipient statuses of the reference.
pub const RECIPIENT_STATUSES: [&str; 3] = ["Initialized", "DownloadStarted", "DownloadConfirmed"];

/// The roles a search may take; `ServiceOwner` (ours, not Altinn's) is the resource owner's
/// view of every transfer of the resource, with the `altinn:serviceowner` scope.
pub const SEARCH_ROLES: [&str; 4] = ["Sender", "Recipient", "Both", "ServiceOwner"];

/// The reference's error code for a negative maximum file transfer size.
const NEGATIVE_MAX_SIZE: u16 = 11;

/// `FileTransferInitialize`: what a sender declares before uploading.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileTransferInitialize {
    /// The resource the transfer belongs to (1–255 characters).
    #[schema(example = "broker-demo")]
    pub resource_id: String,
    /// The file's name (1–255 characters).
    #[schema(example = "report.xml")]
    pub file_name: String,
    /// The sender's own reference (1–4096 characters).
    #[serde(default, deserialize_with = "null_as_default")]
    pub senders_file_transfer_reference: String,
    /// The sending organisation, which must be the caller's: `0192:<orgnr>` or its party URN.
    #[schema(example = "0192:991825827")]
    pub sender: String,
    /// The receiving organisations, at least one.
    #[schema(example = json!(["0192:986252932"]))]
    pub recipients: Vec<String>,
    /// Up to 10 properties (key ≤ 50, value ≤ 3000 characters).
    #[serde(default, deserialize_with = "null_as_default")]
    pub property_list: HashMap<String, String>,
    /// The file's MD5 as 32 lowercase hex characters; the upload fails if it differs.
    #[serde(default, deserialize_with = "null_as_default")]
    pub checksum: String,
    /// Skips the malware scan, if the resource is approved for it.
    #[serde(default, deserialize_with = "null_as_default")]
    pub disable_virus_scan: bool,
}

impl FileTransferInitialize {
    /// The contract's message for this declaration, sent as `principal`.
    pub fn into_request(self, principal: Option<Principal>) -> pb::InitializeRequest {
        pb::InitializeRequest {
            principal,
            resource_id: self.resource_id,
            file_name: self.file_name,
            senders_file_transfer_reference: self.senders_file_transfer_reference,
            sender: self.sender,
            recipients: self.recipients,
            property_list: self.property_list,
            checksum: self.checksum,
            disable_virus_scan: self.disable_virus_scan,
        }
    }
}

/// The answer to initialize and upload.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileTransferIdBody {
    /// The file transfer's id (a UUID).
    pub file_transfer_id: String,
}

impl From<pb::FileTransferId> for FileTransferIdBody {
    fn from(id: pb::FileTransferId) -> Self {
        Self {
            file_transfer_id: id.file_transfer_id,
        }
    }
}

/// One recipient's current status.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecipientFileTransferStatus {
    /// The recipient organisation.
    recipient: String,
    /// `Initialized`, `DownloadStarted` or `DownloadConfirmed`.
    current_recipient_file_transfer_status_code: String,
    /// The status in words.
    current_recipient_file_transfer_status_text: String,
    /// When the status last changed (RFC 3339).
    current_recipient_file_transfer_status_changed: String,
}

/// `FileTransferOverview`: a transfer and its recipients' current statuses.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileTransferOverview {
    /// The file transfer's id.
    file_transfer_id: String,
    /// Its resource.
    resource_id: String,
    /// The file's name.
    file_name: String,
    /// The sender's own reference.
    senders_file_transfer_reference: Option<String>,
    /// The MD5 of the file, when known.
    checksum: Option<String>,
    /// Whether the file is scanned for malware.
    use_virus_scan: bool,
    /// The file's size in bytes (0 before upload).
    file_transfer_size: u64,
    /// One of the file transfer statuses (`Published`, …).
    file_transfer_status: String,
    /// The status in words.
    file_transfer_status_text: String,
    /// When the status last changed (RFC 3339).
    file_transfer_status_changed: String,
    /// When the transfer was initialized (RFC 3339).
    created: String,
    /// When the transfer expires and its file is purged (RFC 3339).
    expiration_time: Option<String>,
    /// The sending organisation.
    sender: String,
    /// The recipients and their current statuses.
    recipients: Vec<RecipientFileTransferStatus>,
    /// The sender's properties.
    property_list: BTreeMap<String, String>,
    /// Whether the transfer has been published to its recipients.
    published: bool,
}

/// `None` for empty text, which the contract uses for "absent".
fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

impl From<pb::FileTransferOverview> for FileTransferOverview {
    fn from(overview: pb::FileTransferOverview) -> Self {
        Self {
            file_transfer_id: overview.file_transfer_id,
            resource_id: overview.resource_id,
            file_name: overview.file_name,
            senders_file_transfer_reference: non_empty(overview.senders_file_transfer_reference),
            checksum: non_empty(overview.checksum),
            use_virus_scan: overview.use_virus_scan,
            file_transfer_size: overview.file_transfer_size,
            file_transfer_status: overview.file_transfer_status,
            file_transfer_status_text: overview.file_transfer_status_text,
            file_transfer_status_changed: overview.file_transfer_status_changed,
            created: overview.created,
            expiration_time: non_empty(overview.expiration_time),
            sender: overview.sender,
            recipients: overview
                .recipients
                .into_iter()
                .map(|r| RecipientFileTransferStatus {
                    recipient: r.recipient,
                    current_recipient_file_transfer_status_code: r
                        .current_recipient_file_transfer_status_code,
                    current_recipient_file_transfer_status_text: r
                        .current_recipient_file_transfer_status_text,
                    current_recipient_file_transfer_status_changed: r
                        .current_recipient_file_transfer_status_changed,
                })
                .collect(),
            property_list: overview.property_list.into_iter().collect(),
            published: overview.published,
        }
    }
}

/// One entry of a transfer's status history.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileTransferStatusEvent {
    /// The status entered.
    file_transfer_status: String,
    /// The status in words.
    file_transfer_status_text: String,
    /// When it was entered (RFC 3339).
    file_transfer_status_changed: String,
}

/// One entry of a recipient's status history.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecipientFileTransferStatusEvent {
    /// The recipient organisation.
    recipient: String,
    /// The status entered.
    recipient_file_transfer_status_code: String,
    /// The status in words.
    recipient_file_transfer_status_text: String,
    /// When it was entered (RFC 3339).
    recipient_file_transfer_status_changed: String,
}

/// `FileTransferStatusDetails`: the overview with the transfer's and recipients' histories.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileTransferStatusDetails {
    /// The overview's fields.
    #[serde(flatten)]
    overview: FileTransferOverview,
    /// Every status the transfer entered, oldest first.
    file_transfer_status_history: Vec<FileTransferStatusEvent>,
    /// Every status each recipient entered, oldest first.
    recipient_file_transfer_status_history: Vec<RecipientFileTransferStatusEvent>,
}

impl From<pb::FileTransferStatusDetails> for FileTransferStatusDetails {
    fn from(details: pb::FileTransferStatusDetails) -> Self {
        Self {
            overview: details.overview.unwrap_or_default().into(),
            file_transfer_status_history: details
                .file_transfer_status_history
                .into_iter()
                .map(|entry| FileTransferStatusEvent {
                    file_transfer_status: entry.file_transfer_status,
                    file_transfer_status_text: entry.file_transfer_status_text,
                    file_transfer_status_changed: entry.file_transfer_status_changed,
                })
                .collect(),
            recipient_file_transfer_status_history: details
                .recipient_file_transfer_status_history
                .into_iter()
                .map(|entry| RecipientFileTransferStatusEvent {
                    recipient: entry.recipient,
                    recipient_file_transfer_status_code: entry.recipient_file_transfer_status_code,
                    recipient_file_transfer_status_text: entry.recipient_file_transfer_status_text,
                    recipient_file_transfer_status_changed: entry
                        .recipient_file_transfer_status_changed,
                })
                .collect(),
        }
    }
}

/// The search's query string, as sent; validated by `search::validate`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// The resource to search (required).
    pub resource_id: Option<String>,
    /// Only transfers in this file transfer status.
    pub status: Option<String>,
    /// Only transfers where the caller's recipient status is this.
    pub recipient_status: Option<String>,
    /// Only transfers created (or, with `status`, entering it) at or after this RFC 3339 time.
    pub from: Option<String>,
    /// Only transfers created (or, with `status`, entering it) before this RFC 3339 time.
    pub to: Option<String>,
    /// Oldest first instead of newest first.
    pub order_ascending: Option<String>,
    /// `Sender`, `Recipient` or `Both`.
    pub role: Option<String>,
}

/// `POST /broker/api/v1/serviceowner`: registers the caller as a service owner.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceOwnerInitialize {
    /// The service owner's name.
    pub name: String,
}

/// A storage provider of a service owner.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageProvider {
    /// The kind of storage (`Altinn`, …).
    r#type: String,
    /// Whether it is ready (`Ready`, `DeploymentPending`, …).
    deployment_status: String,
    /// The environment it is deployed in.
    deployment_environment: String,
}

/// A service owner's settings.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceOwnerOverview {
    /// The service owner's name.
    name: String,
    /// Where its files are stored.
    storage_providers: Vec<StorageProvider>,
}

impl From<pb::ServiceOwnerSettings> for ServiceOwnerOverview {
    fn from(settings: pb::ServiceOwnerSettings) -> Self {
        Self {
            name: settings.name,
            storage_providers: settings
                .storage_providers
                .into_iter()
                .map(|provider| StorageProvider {
                    r#type: provider.r#type,
                    deployment_status: provider.deployment_status,
                    deployment_environment: provider.deployment_environment,
                })
                .collect(),
        }
    }
}

/// A resource's broker settings as written; an absent or `null` field keeps its stored value.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSettingsUpdate {
    /// The largest file a transfer of this resource may carry, in bytes (> 0).
    pub max_file_transfer_size: Option<i64>,
    /// How long a transfer lives, an ISO-8601 duration (default `P30D`, at most 365 days).
    #[schema(example = "P30D")]
    pub file_transfer_time_to_live: Option<String>,
    /// Purge the file once every recipient confirmed (default true).
    pub purge_file_transfer_after_all_recipients_confirmed: Option<bool>,
    /// How long after the last confirmation the file is purged, ISO-8601 (default `PT2H`, at
    /// most 24 hours).
    #[schema(example = "PT2H")]
    pub purge_file_transfer_grace_period: Option<String>,
    /// Serve Altinn 2 clients a manifest file (needs the legacy service codes).
    pub use_manifest_file_shim: Option<bool>,
    /// The Altinn 2 service code.
    pub external_service_code_legacy: Option<String>,
    /// The Altinn 2 service edition code.
    pub external_service_edition_code_legacy: Option<i64>,
    /// A party that must be the transfer's only recipient.
    pub required_party: Option<String>,
    /// Whether senders may disable the malware scan.
    pub approved_for_disabled_virus_scan: Option<bool>,
}

impl ResourceSettingsUpdate {
    /// The contract's settings for `resource_id`, and the wire names of the fields sent; a
    /// negative size (which the contract cannot carry) is refused here with the reference's
    /// code 11.
    pub fn into_settings(
        self,
        resource_id: String,
    ) -> Result<(pb::ResourceSettings, Vec<String>), Problem> {
        let max_file_transfer_size = self
            .max_file_transfer_size
            .map(u64::try_from)
            .transpose()
            .map_err(|_| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "Max file transfer size cannot be negative",
                )
                .with_code(NEGATIVE_MAX_SIZE)
            })?;
        let present = [
            ("maxFileTransferSize", self.max_file_transfer_size.is_some()),
            (
                "fileTransferTimeToLive",
                self.file_transfer_time_to_live.is_some(),
            ),
            (
                "purgeFileTransferAfterAllRecipientsConfirmed",
                self.purge_file_transfer_after_all_recipients_confirmed
                    .is_some(),
            ),
            (
                "purgeFileTransferGracePeriod",
                self.purge_file_transfer_grace_period.is_some(),
            ),
            ("useManifestFileShim", self.use_manifest_file_shim.is_some()),
            (
                "externalServiceCodeLegacy",
                self.external_service_code_legacy.is_some(),
            ),
            (
                "externalServiceEditionCodeLegacy",
                self.external_service_edition_code_legacy.is_some(),
            ),
            ("requiredParty", self.required_party.is_some()),
            (
                "approvedForDisabledVirusScan",
                self.approved_for_disabled_virus_scan.is_some(),
            ),
        ]
        .into_iter()
        .filter(|(_, sent)| *sent)
        .map(|(name, _)| name.to_owned())
        .collect();
        let settings = pb::ResourceSettings {
            resource_id,
            max_file_transfer_size,
            file_transfer_time_to_live: self.file_transfer_time_to_live.unwrap_or_default(),
            purge_file_transfer_after_all_recipients_confirmed: self
                .purge_file_transfer_after_all_recipients_confirmed
                .unwrap_or(true),
            purge_file_transfer_grace_period: self
                .purge_file_transfer_grace_period
                .unwrap_or_default(),
            use_manifest_file_shim: self.use_manifest_file_shim.unwrap_or_default(),
            external_service_code_legacy: self.external_service_code_legacy.unwrap_or_default(),
            external_service_edition_code_legacy: self
                .external_service_edition_code_legacy
                .map(|code| code.to_string())
                .unwrap_or_default(),
            required_party: self.required_party.unwrap_or_default(),
            approved_for_disabled_virus_scan: self
                .approved_for_disabled_virus_scan
                .unwrap_or_default(),
        };
        Ok((settings, present))
    }
}

/// A resource's broker settings as stored.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSettingsOverview {
    /// The resource.
    resource_id: String,
    /// The largest file a transfer may carry, in bytes; `null` for the global limit.
    max_file_transfer_size: Option<u64>,
    /// How long a transfer lives (ISO-8601).
    file_transfer_time_to_live: String,
    /// Whether the file is purged once every recipient confirmed.
    purge_file_transfer_after_all_recipients_confirmed: bool,
    /// The grace period before that purge (ISO-8601).
    purge_file_transfer_grace_period: String,
    /// Whether Altinn 2 clients get a manifest file.
    use_manifest_file_shim: bool,
    /// The Altinn 2 service code.
    external_service_code_legacy: Option<String>,
    /// The Altinn 2 service edition code.
    external_service_edition_code_legacy: Option<i64>,
    /// A party that must be the only recipient.
    required_party: Option<String>,
    /// Whether senders may disable the malware scan.
    approved_for_disabled_virus_scan: bool,
}

impl From<pb::ResourceSettings> for ResourceSettingsOverview {
    fn from(settings: pb::ResourceSettings) -> Self {
        Self {
            resource_id: settings.resource_id,
            max_file_transfer_size: settings.max_file_transfer_size,
            file_transfer_time_to_live: settings.file_transfer_time_to_live,
            purge_file_transfer_after_all_recipients_confirmed: settings
                .purge_file_transfer_after_all_recipients_confirmed,
            purge_file_transfer_grace_period: settings.purge_file_transfer_grace_period,
            use_manifest_file_shim: settings.use_manifest_file_shim,
            external_service_code_legacy: non_empty(settings.external_service_code_legacy),
            external_service_edition_code_legacy: settings
                .external_service_edition_code_legacy
                .parse()
                .ok(),
            required_party: non_empty(settings.required_party),
            approved_for_disabled_virus_scan: settings.approved_for_disabled_virus_scan,
        }
    }
}

/// One row of Altinn's monthly statistics: the CSV's columns, in its order, under its names.
/// Parties are `0192:<orgnr>`, empty when the report leaves them out (or no vendor was
/// recorded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonthlyStatisticsRow {
    /// The report's year.
    #[schema(example = 2026)]
    pub year: i32,
    /// The report's month, 1–12.
    #[schema(example = 1)]
    pub month: u32,
    /// The resource.
    pub resource_id: String,
    /// The vendor of the sender's initialize call.
    #[schema(example = "0192:991825827")]
    pub sender_vendor: String,
    /// The vendor of the recipient's latest download or confirmation in the month.
    #[schema(example = "0192:986252932")]
    pub recipient_vendor: String,
    /// The sending organisation.
    #[schema(example = "0192:991825827")]
    pub sender: String,
    /// The receiving organisation.
    #[schema(example = "0192:986252932")]
    pub recipient: String,
    /// Transfers created in the month, once per recipient.
    pub total_file_transfers: u64,
    /// Transfers published in the month, once per recipient.
    pub upload_count: u64,
    /// Downloads started in the month.
    pub total_transfer_download_attempts: u64,
    /// Downloads confirmed in the month.
    pub transfers_with_download_confirmed: u64,
}

impl MonthlyStatisticsRow {
    /// The row of a report of `year`-`month`.
    pub fn new(year: i32, month: u32, row: pb::MonthlyStatisticsRow) -> Self {
        Self {
            year,
            month,
            resource_id: row.resource_id,
            sender_vendor: row.sender_vendor,
            recipient_vendor: row.recipient_vendor,
            sender: row.sender,
            recipient: row.recipient,
            total_file_transfers: row.total_file_transfers,
            upload_count: row.upload_count,
            total_transfer_download_attempts: row.total_transfer_download_attempts,
            transfers_with_download_confirmed: row.transfers_with_download_confirmed,
        }
    }
}
