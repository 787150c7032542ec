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

use crate::binding::{
    JsonBody, QueryBinding, QueryModel, ResourceId, Timestamp, null_as_default, nullable,
};

/// A file transfer status, in Altinn's order (`FileTransferStatusExt`: its number is the
/// position here, which a client may send instead of the name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
pub enum FileTransferStatus {
    /// 0.
    Initialized,
    /// 1.
    UploadStarted,
    /// 2.
    UploadProcessing,
    /// 3.
    Published,
    /// 4.
    Cancelled,
    /// 5.
    AllConfirmedDownloaded,
    /// 6.
    Purged,
    /// 7.
    Failed,
}

impl FileTransferStatus {
    /// The status's name, as the contract writes it.
    pub fn name(self) -> &'static str {
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
}

/// A recipient's status, in Altinn's order (`RecipientFileTransferStatusExt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
pub enum RecipientFileTransferStatus {
    /// 0.
    Initialized,
    /// 1.
    DownloadStarted,
    /// 2.
    DownloadConfirmed,
}

impl RecipientFileTransferStatus {
    /// The status's name, as the contract writes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Initialized => "Initialized",
            Self::DownloadStarted => "DownloadStarted",
            Self::DownloadConfirmed => "DownloadConfirmed",
        }
    }
}

/// The role a search takes, in Altinn's order (`RoleExt`: Recipient 0, Sender 1); absent means
/// both. `ServiceOwner` is ours: the resource owner's view of every transfer of the resource,
/// with the `altinn:serviceowner` scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
pub enum SearchRole {
    /// Transfers the caller receives.
    Recipient,
    /// Transfers the caller sends.
    Sender,
    /// Every transfer of a resource the caller owns (an extension).
    ServiceOwner,
}

impl SearchRole {
    /// The role's name, as the contract writes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Recipient => "Recipient",
            Self::Sender => "Sender",
            Self::ServiceOwner => "ServiceOwner",
        }
    }
}

/// The reference's error code for a negative maximum file transfer size.
const NEGATIVE_MAX_SIZE: u16 = 11;

/// `FileTransferInitialize`: what a sender declares before uploading. Every member binds as
/// Altinn's model does: one left out takes its empty default, one sent as `null` stays null,
/// and the file-transfer service validates them all with Altinn's messages.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileTransferInitialize {
    /// The resource the transfer belongs to (1–255 characters), with or without
    /// `urn:altinn:resource:`.
    #[serde(default = "left_out")]
    #[schema(value_type = String, example = "broker-demo", required = true, min_length = 1,
        max_length = 255)]
    pub resource_id: Option<String>,
    /// The file's name (1–255 characters).
    #[serde(default = "left_out")]
    #[schema(value_type = String, example = "report.xml", required = true, min_length = 1,
        max_length = 255)]
    pub file_name: Option<String>,
    /// The sender's own reference (1–4096 characters).
    #[serde(default = "left_out")]
    #[schema(value_type = String, example = "case-2026-042", required = true, min_length = 1,
        max_length = 4096)]
    pub senders_file_transfer_reference: Option<String>,
    /// The sending organisation, `0192:<orgnr>` or its party URN; the caller must be allowed to
    /// act for it.
    #[serde(default = "left_out")]
    #[schema(schema_with = organization_schema, example = "0192:991825827", required = true)]
    pub sender: Option<String>,
    /// The receiving organisations, at least one.
    #[serde(default = "no_recipients")]
    #[schema(schema_with = recipients_schema, example = json!(["0192:986252932"]),
        required = true)]
    pub recipients: Option<Vec<String>>,
    /// Up to 10 properties (key ≤ 50, value ≤ 3000 characters).
    #[serde(default, deserialize_with = "null_as_default")]
    pub property_list: HashMap<String, String>,
    /// The file's MD5 as 32 lowercase hex characters; the upload fails if it differs.
    #[serde(default = "left_out")]
    #[schema(value_type = Option<String>, pattern = "^[0-9a-f]{32}$")]
    pub checksum: Option<String>,
    /// Skips the malware scan, if the resource is approved for it.
    #[serde(default, deserialize_with = "null_as_default")]
    pub disable_virus_scan: bool,
}

/// An organisation as `sender` and `recipients` name one: `0192:` (or another ICD) or the
/// party URN, then the nine digits.
const ORGANIZATION: &str = "^([0-9]{4}:|urn:altinn:organization:identifier-no:)[0-9]{9}$";

/// `sender`, or one of `recipients`: an organisation.
fn organization_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .pattern(Some(ORGANIZATION))
        .build()
}

/// `recipients`: at least one organisation.
fn recipients_schema() -> utoipa::openapi::Array {
    utoipa::openapi::ArrayBuilder::new()
        .items(organization_schema())
        .min_items(Some(1))
        .build()
}

/// A text member left out of the body: Altinn's model starts it as `""`.
fn left_out() -> Option<String> {
    Some(String::new())
}

/// `recipients` left out: Altinn's model starts it as an empty list.
fn no_recipients() -> Option<Vec<String>> {
    Some(Vec::new())
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
            recipients_null: self.recipients.is_none(),
            recipients: self.recipients.unwrap_or_default(),
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
pub struct RecipientFileTransferStatusDetails {
    /// The recipient organisation.
    recipient: String,
    /// `Initialized`, `DownloadStarted` or `DownloadConfirmed`.
    #[schema(value_type = RecipientFileTransferStatus)]
    current_recipient_file_transfer_status_code: String,
    /// The status in words.
    current_recipient_file_transfer_status_text: String,
    /// When the status last changed (RFC 3339).
    #[schema(format = DateTime)]
    current_recipient_file_transfer_status_changed: String,
}

// Every field is written, `null` or not, so the `Option`s are `required` in the schema (utoipa
// would leave them optional); the statuses are text from the contract, always one of the enums.
/// What the overview and the details both show of a transfer (Altinn's
/// `FileTransferOverviewExt` without `published`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileTransferFields {
    /// The file transfer's id.
    file_transfer_id: String,
    /// Its resource.
    resource_id: String,
    /// The file's name.
    file_name: String,
    /// The sender's own reference.
    #[schema(required = true)]
    senders_file_transfer_reference: Option<String>,
    /// The file's MD5: as given at initialize (`""` when none was, `null` when it was sent as
    /// null), or the one computed at upload.
    #[schema(required = true)]
    checksum: Option<String>,
    /// Whether the file is scanned for malware.
    use_virus_scan: bool,
    /// The file's size in bytes (0 before upload).
    file_transfer_size: u64,
    /// One of the file transfer statuses (`Published`, …).
    #[schema(value_type = FileTransferStatus)]
    file_transfer_status: String,
    /// The status in words.
    file_transfer_status_text: String,
    /// When the status last changed.
    #[schema(format = DateTime)]
    file_transfer_status_changed: String,
    /// When the transfer was initialized.
    #[schema(format = DateTime)]
    created: String,
    /// When the transfer expires and its file is purged.
    #[schema(format = DateTime)]
    expiration_time: String,
    /// The sending organisation, as it was given at initialize.
    sender: String,
    /// The recipients (`0192:<orgnr>`) and their current statuses.
    recipients: Vec<RecipientFileTransferStatusDetails>,
    /// The sender's properties.
    property_list: BTreeMap<String, String>,
}

/// `FileTransferOverview`: a transfer and its recipients' current statuses.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileTransferOverview {
    /// The transfer.
    #[serde(flatten)]
    fields: FileTransferFields,
    /// When the transfer was published to its recipients; `null` until then.
    #[schema(required = true, format = DateTime)]
    published: Option<String>,
}

impl From<pb::FileTransferOverview> for FileTransferFields {
    fn from(overview: pb::FileTransferOverview) -> Self {
        Self {
            file_transfer_id: overview.file_transfer_id,
            resource_id: overview.resource_id,
            file_name: overview.file_name,
            senders_file_transfer_reference: overview.senders_file_transfer_reference,
            checksum: overview.checksum,
            use_virus_scan: overview.use_virus_scan,
            file_transfer_size: overview.file_transfer_size,
            file_transfer_status: overview.file_transfer_status,
            file_transfer_status_text: overview.file_transfer_status_text,
            file_transfer_status_changed: overview.file_transfer_status_changed,
            created: overview.created,
            expiration_time: overview.expiration_time,
            sender: overview.sender,
            recipients: overview
                .recipients
                .into_iter()
                .map(|r| RecipientFileTransferStatusDetails {
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
        }
    }
}

impl From<pb::FileTransferOverview> for FileTransferOverview {
    fn from(mut overview: pb::FileTransferOverview) -> Self {
        let published = overview.published.take();
        Self {
            fields: overview.into(),
            published,
        }
    }
}

/// One entry of a transfer's status history.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileTransferStatusEvent {
    /// The status entered.
    #[schema(value_type = FileTransferStatus)]
    file_transfer_status: String,
    /// The status in words.
    file_transfer_status_text: String,
    /// When it was entered (RFC 3339).
    #[schema(format = DateTime)]
    file_transfer_status_changed: String,
}

/// One entry of a recipient's status history.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecipientFileTransferStatusEvent {
    /// The recipient organisation.
    recipient: String,
    /// The status entered.
    #[schema(value_type = RecipientFileTransferStatus)]
    recipient_file_transfer_status_code: String,
    /// The status in words.
    recipient_file_transfer_status_text: String,
    /// When it was entered (RFC 3339).
    #[schema(format = DateTime)]
    recipient_file_transfer_status_changed: String,
}

/// `FileTransferStatusDetails`: the overview with the transfer's and recipients' histories.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileTransferStatusDetails {
    /// The overview's fields, without `published` (the history says when).
    #[serde(flatten)]
    fields: FileTransferFields,
    /// Every status the transfer entered, oldest first.
    file_transfer_status_history: Vec<FileTransferStatusEvent>,
    /// Every status each recipient entered, oldest first.
    recipient_file_transfer_status_history: Vec<RecipientFileTransferStatusEvent>,
}

impl From<pb::FileTransferStatusDetails> for FileTransferStatusDetails {
    fn from(details: pb::FileTransferStatusDetails) -> Self {
        Self {
            fields: details.overview.unwrap_or_default().into(),
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

/// The search's query parameters, bound as Altinn's action binds them.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// The resource to search (required), with or without `urn:altinn:resource:`.
    // Blank is "required" in ASP.NET's binding, so the text must hold a non-blank character.
    #[param(value_type = String, min_length = 1, pattern = "\\S")]
    pub resource_id: ResourceId,
    /// Only transfers now in this status (by name in any case, or its number).
    #[param(value_type = Option<FileTransferStatus>)]
    pub status: Option<FileTransferStatus>,
    /// Only transfers where the caller's latest recipient status is this.
    #[param(value_type = Option<RecipientFileTransferStatus>)]
    pub recipient_status: Option<RecipientFileTransferStatus>,
    /// Only transfers created (or, with `status`, entering it) after this time; any ISO 8601
    /// form, UTC when it has no offset.
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<Timestamp>,
    /// Only transfers created (or, with `status`, entering it) before this time.
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<Timestamp>,
    /// Oldest first instead of newest first.
    pub order_ascending: Option<bool>,
    /// `Recipient` or `Sender` (both when absent), or our `ServiceOwner`.
    #[param(value_type = Option<SearchRole>)]
    pub role: Option<SearchRole>,
}

/// `POST /broker/api/v1/serviceowner`: registers the caller as a service owner.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceOwnerInitialize {
    /// The service owner's name (C# `required`: it must be sent, and null or blank is refused).
    #[serde(deserialize_with = "nullable")]
    #[schema(value_type = String, pattern = "\\S")]
    pub name: Option<String>,
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

/// `None` for empty text, which the contract uses for "absent".
fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

// Every field is written, `null` or not, so the `Option`s are `required` in the schema.
/// A resource's broker settings as stored.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSettingsOverview {
    /// The resource.
    resource_id: String,
    /// The largest file a transfer may carry, in bytes; `null` for the global limit.
    #[schema(required = true)]
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
    #[schema(required = true)]
    external_service_code_legacy: Option<String>,
    /// The Altinn 2 service edition code.
    #[schema(required = true)]
    external_service_edition_code_legacy: Option<i64>,
    /// A party that must be the only recipient.
    #[schema(required = true)]
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

impl JsonBody for FileTransferInitialize {
    const PARAMETER: &'static str = "initializeExt";
    const TYPE: &'static str = "Altinn.Broker.Models.FileTransferInitalizeExt";
}

impl JsonBody for ServiceOwnerInitialize {
    const PARAMETER: &'static str = "serviceOwnerInitializeExt";
    const TYPE: &'static str = "Altinn.Broker.Models.ServiceOwner.ServiceOwnerInitializeExt";
}

impl JsonBody for ResourceSettingsUpdate {
    const PARAMETER: &'static str = "resourceExt";
    const TYPE: &'static str = "Altinn.Broker.Models.ResourceExt";
}

impl QueryModel for SearchQuery {
    const BINDING: QueryBinding = QueryBinding::Parameters;
}
