//! The file-transfer operations, free of any transport: who may do what (through the access
//! registry), which status moves each operation makes (through the store's compare-and-set),
//! and the bytes (through [`Storage`]). The gRPC layer only translates.
//!
//! A caller sees a transfer as its sender, as one of its recipients, or as the service owner of
//! its resource; anybody else gets the same "not found" as for a transfer that does not exist.

use std::ops::Range;
use std::sync::Arc;

use broker_common::Problem;
use broker_common::auth::Caller;
use broker_common::authz::Authorizer;
use broker_common::clock::Clock;
use broker_common::identity::OrgNumber;
use broker_proto::common::Principal;
use bytes::Bytes;
use futures::Stream;
use futures::stream::BoxStream;
use tracing::Instrument;
use uuid::Uuid;

use crate::domain::error::FileTransferError;
use crate::domain::event::Happening;
use crate::domain::settings::{ResourceSettings, ResourceSettingsChange, ServiceOwner, SizeLimits};
use crate::domain::statistics::{self, Projection, ReportMonth, StatisticsRow};
use crate::domain::status::{RecipientStatus, TransferStatus};
use crate::domain::transfer::{History, NewTransfer, Transfer};
use crate::domain::validation::{InitializeRequest, parse_party};
use crate::range::{self, ByteRange};
use crate::storage::{Storage, WriteError, Written};
use crate::store::{
    FileTransferStore, Inserted, RecipientTransitioned, SearchQuery, SearchRole, StatisticsQuery,
    Step, TransitionUpdate, Transitioned,
};

/// The access registry's action for sending.
const WRITE: &str = "write";
/// The access registry's action for receiving.
const READ: &str = "read";
/// The resource's `accessListMode` when its access lists restrict who may receive.
const ACCESS_LISTS_ENABLED: &str = "Enabled";

type Result<T, E = FileTransferError> = std::result::Result<T, E>;

pub use crate::scan::{NoScanner, Scanner, Verdict};

/// How the caller is related to a transfer it may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Sender,
    Recipient,
    ServiceOwner,
}

/// A download about to be streamed.
pub struct Download {
    /// The file's whole size.
    pub total_size: u64,
    /// The range served; `None` for the whole file.
    pub range: Option<ByteRange>,
    /// The file's name.
    pub file_name: String,
    /// The bytes.
    pub bytes: BoxStream<'static, Result<Bytes, object_store::Error>>,
}

/// The monthly statistics request as the client sent it (checked here).
#[derive(Debug, Clone, Default)]
pub struct StatisticsRequest {
    /// `year`.
    pub year: i32,
    /// `month`.
    pub month: i32,
    /// `resourceId`; blank for all the caller's resources.
    pub resource_id: String,
    /// Whether rows show the sender and the recipient.
    pub include_end_user: bool,
    /// Whether rows show the vendors.
    pub include_vendor: bool,
}

/// The monthly statistics as the report shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatisticsReport {
    /// The month.
    pub month: ReportMonth,
    /// The resource it is limited to (without a URN prefix), if any.
    pub resource_id: Option<String>,
    /// Its rows, in the report's order.
    pub rows: Vec<StatisticsRow>,
}

/// The search request as the client sent it (strings parsed here).
#[derive(Debug, Clone, Default)]
pub struct SearchInput {
    /// `resourceId`, required.
    pub resource_id: String,
    /// `status`, empty for any.
    pub status: String,
    /// `recipientStatus`, empty for any.
    pub recipient_status: String,
    /// RFC 3339, empty for none.
    pub from: String,
    /// RFC 3339, empty for none.
    pub to: String,
    /// Oldest first.
    pub ascending: bool,
    /// `Sender`, `Recipient`, `Both` or empty (both).
    pub role: String,
}

/// The file-transfer service's operations.
pub struct FileTransferCore {
    store: Arc<dyn FileTransferStore>,
    storage: Storage,
    authorizer: Arc<Authorizer>,
    clock: Arc<dyn Clock>,
    limits: SizeLimits,
    scanner: Arc<dyn Scanner>,
    /// The credential the external scanner presents with its verdicts; none accepted without.
    scan_token: Option<String>,
}

/// The principal the access registry is asked about, from the verified caller.
fn principal(caller: &Caller) -> Principal {
    Principal {
        org_number: caller.org.to_string(),
        client_id: caller.client_id.clone(),
        scopes: caller.scopes.clone(),
        org_code: caller.org_code.clone().unwrap_or_default(),
        system_user_id: caller.system_user_id.clone().unwrap_or_default(),
    }
}

fn storage_error(error: object_store::Error) -> FileTransferError {
    FileTransferError::Storage(error.to_string())
}

impl FileTransferCore {
    /// The service over its store, storage and the access registry (through `authorizer`).
    pub fn new(
        store: Arc<dyn FileTransferStore>,
        storage: Storage,
        authorizer: Arc<Authorizer>,
        clock: Arc<dyn Clock>,
        limits: SizeLimits,
    ) -> Self {
        Self {
            store,
            storage,
            authorizer,
            clock,
            limits,
            scanner: Arc::new(NoScanner),
            scan_token: None,
        }
    }

    /// The same service scanning uploads with `scanner`, and accepting verdicts posted to the
    /// malware-scan-result webhook with `scan_token`.
    pub fn with_scanner(mut self, scanner: Arc<dyn Scanner>, scan_token: Option<String>) -> Self {
        self.scanner = scanner;
        self.scan_token = scan_token.filter(|token| !token.is_empty());
        self
    }

    /// Whether `principal` may do `action` on `resource` for `party`.
    async fn permits(
        &self,
        principal: &Principal,
        action: &str,
        resource: &str,
        party: OrgNumber,
        instance: &str,
    ) -> Result<bool> {
        let decision = self
            .authorizer
            .authorize(principal, action, resource, &party.urn(), instance)
            .await
            .map_err(FileTransferError::Upstream)?;
        Ok(decision.permit)
    }

    /// Refuses with code 6 unless the caller may do `action` for `party` on the transfer.
    async fn require(
        &self,
        caller: &Caller,
        action: &str,
        transfer: &Transfer,
        party: OrgNumber,
    ) -> Result<()> {
        let instance = transfer.id.to_string();
        let principal = principal(caller);
        if self
            .permits(&principal, action, &transfer.resource_id, party, &instance)
            .await?
        {
            Ok(())
        } else {
            Err(FileTransferError::NoAccessToResource)
        }
    }

    /// The resource as the access registry knows it; code 5 when it does not.
    async fn resource(&self, resource_id: &str) -> Result<broker_proto::access::Resource> {
        match self.authorizer.resource(resource_id).await {
            Ok(resource) => Ok(resource),
            Err(status) if status.code() == tonic::Code::NotFound => {
                Err(FileTransferError::InvalidResourceDefinition)
            }
            Err(status) => {
                let problem = Problem::from(status);
                if problem.status == 400 {
                    // A resource id the registry cannot even parse does not exist there.
                    Err(FileTransferError::InvalidResourceDefinition)
                } else {
                    Err(FileTransferError::Upstream(problem))
                }
            }
        }
    }

    /// The transfer and the caller's role in it; not found for anybody without one.
    async fn visible(&self, caller: &Caller, id: Uuid) -> Result<(Transfer, Role)> {
        let transfer = self
            .store
            .get(id)
            .await?
            .ok_or(FileTransferError::NotFound)?;
        let role = if transfer.sender == caller.org {
            Role::Sender
        } else if transfer.recipient(caller.org).is_some() {
            Role::Recipient
        } else if self
            .store
            .get_resource_settings(&transfer.resource_id)
            .await?
            .is_some_and(|settings| settings.service_owner == caller.org)
        {
            Role::ServiceOwner
        } else {
            return Err(FileTransferError::NotFound);
        };
        Ok((transfer, role))
    }

    /// The transfer as the caller may read it, checked with the access registry.
    async fn readable(&self, caller: &Caller, id: Uuid) -> Result<Transfer> {
        let (transfer, role) = self.visible(caller, id).await?;
        match role {
            Role::Sender => self.require(caller, WRITE, &transfer, caller.org).await?,
            Role::Recipient => self.require(caller, READ, &transfer, caller.org).await?,
            Role::ServiceOwner => {}
        }
        Ok(transfer)
    }

    /// Creates a transfer (Initialized) after every rule of Altinn's initialize.
    pub async fn initialize(
        &self,
        caller: &Caller,
        request: InitializeRequest,
    ) -> Result<Transfer> {
        let request = request.validate()?;
        if request.sender != caller.org {
            return Err(FileTransferError::NoAccessToResource);
        }
        let settings = self
            .store
            .get_resource_settings(&request.resource_id)
            .await?
            .ok_or(FileTransferError::ResourceNotConfigured)?;
        if self
            .store
            .get_service_owner(settings.service_owner)
            .await?
            .is_none()
        {
            return Err(FileTransferError::ServiceOwnerNotRegistered);
        }
        let principal = principal(caller);
        if !self
            .permits(&principal, WRITE, &request.resource_id, request.sender, "")
            .await?
        {
            return Err(FileTransferError::NoAccessToResource);
        }
        let resource = self.resource(&request.resource_id).await?;
        if resource.access_list_mode == ACCESS_LISTS_ENABLED {
            for &recipient in &request.recipients {
                let as_recipient = Principal {
                    org_number: recipient.to_string(),
                    ..Principal::default()
                };
                if !self
                    .permits(&as_recipient, READ, &request.resource_id, recipient, "")
                    .await?
                {
                    return Err(FileTransferError::RecipientNotOnAccessList(
                        recipient.to_string(),
                    ));
                }
            }
        }
        if let Some(required) = settings.required_party.as_deref().filter(|p| !p.is_empty()) {
            let required = parse_party(required)
                .or_else(|_| OrgNumber::parse_identifier(required).map_err(|e| e.to_string()))
                .map_err(|_| FileTransferError::RequiredPartyMissing)?;
            if !request.recipients.contains(&required) {
                return Err(FileTransferError::RequiredPartyMissing);
            }
            if request.recipients.len() > 1 {
                return Err(FileTransferError::RequiredPartyNotOnlyRecipient);
            }
        }
        if !request.use_virus_scan && !settings.approved_for_disabled_virus_scan {
            return Err(FileTransferError::NotApprovedForDisabledVirusScan);
        }
        let now = self.clock.now();
        let new = NewTransfer {
            id: Uuid::now_v7(),
            resource_id: request.resource_id,
            file_name: request.file_name,
            senders_reference: request.senders_reference,
            sender: request.sender,
            recipients: request.recipients,
            property_list: request.property_list,
            checksum: request.checksum,
            use_virus_scan: request.use_virus_scan,
            created: now,
            expires: now + settings.file_transfer_time_to_live,
            vendor: caller.consumer,
        };
        let event = Happening::Initialized.event(&new.initialized(), now);
        Ok(self.store.create(&new, &[event]).await?)
    }

    /// Uploads the file of transfer `id` from `bytes`: Initialized → UploadStarted (once) →
    /// UploadProcessing → Published, or Failed with nothing left in storage.
    ///
    /// The work runs as its own task, so a caller that goes away mid-upload cannot leave the
    /// transfer in UploadStarted: the broken stream fails it and deletes the bytes.
    pub async fn upload<S, E>(
        self: &Arc<Self>,
        caller: &Caller,
        id: Uuid,
        declared_length: Option<u64>,
        bytes: S,
    ) -> Result<Uuid>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let (transfer, role) = self.visible(caller, id).await?;
        if role != Role::Sender {
            return Err(FileTransferError::NoAccessToResource);
        }
        self.require(caller, WRITE, &transfer, transfer.sender)
            .await?;
        let limit = self.size_limit(&transfer).await?;
        if declared_length.is_some_and(|length| length > limit) {
            return Err(FileTransferError::FileTooBig);
        }
        let uploader = TransitionUpdate {
            vendor: caller.consumer,
            ..TransitionUpdate::default()
        };
        let started = self
            .store
            .transition(
                id,
                &[TransferStatus::Initialized],
                TransferStatus::UploadStarted,
                self.clock.now(),
                &uploader,
                &[],
            )
            .await?;
        let transfer = match started {
            Transitioned::Applied(transfer) => transfer,
            Transitioned::Refused { .. } => return Err(FileTransferError::AlreadyUploaded),
            Transitioned::NotFound => return Err(FileTransferError::NotFound),
        };
        let this = self.clone();
        // The task stays in the caller's span, so the events it commits carry its trace.
        let task = async move {
            let written = this.storage.write(id, bytes, limit).await;
            this.finish_upload(transfer, declared_length, written).await
        };
        tokio::spawn(task.in_current_span())
            .await
            .map_err(|error| {
                tracing::error!(%error, %id, "upload task failed");
                FileTransferError::UploadFailed
            })?
    }

    /// The largest upload the transfer's resource allows.
    async fn size_limit(&self, transfer: &Transfer) -> Result<u64> {
        let settings = self
            .store
            .get_resource_settings(&transfer.resource_id)
            .await?
            .ok_or(FileTransferError::ResourceNotConfigured)?;
        let ceiling = if transfer.use_virus_scan {
            self.limits.virus_scan
        } else {
            self.limits.global
        };
        Ok(settings.max_file_transfer_size.unwrap_or(ceiling))
    }

    /// Records the outcome of writing the bytes of an upload that is in UploadStarted.
    async fn finish_upload(
        self: &Arc<Self>,
        transfer: Transfer,
        declared_length: Option<u64>,
        written: Result<Written, WriteError>,
    ) -> Result<Uuid> {
        let id = transfer.id;
        let written = match written {
            Ok(written) if declared_length.is_some_and(|length| length != written.size) => {
                self.delete_bytes(id).await;
                return self
                    .fail(
                        &transfer,
                        "The upload ended before its declared length",
                        FileTransferError::UploadFailed,
                    )
                    .await;
            }
            Ok(written) => written,
            Err(WriteError::TooLarge { .. }) => {
                return self
                    .fail(
                        &transfer,
                        "File size exceeds maximum",
                        FileTransferError::FileTooBig,
                    )
                    .await;
            }
            Err(WriteError::Source(cause)) => {
                tracing::info!(%id, %cause, "upload aborted by the client");
                return self
                    .fail(
                        &transfer,
                        "The upload was aborted",
                        FileTransferError::UploadFailed,
                    )
                    .await;
            }
            Err(error @ (WriteError::Storage(_) | WriteError::Disk(_) | WriteError::Hasher)) => {
                tracing::error!(%id, %error, "storing an upload failed");
                return self
                    .fail(
                        &transfer,
                        "Error occurred while storing the file",
                        FileTransferError::Storage(error.to_string()),
                    )
                    .await;
            }
        };
        if transfer
            .checksum
            .as_deref()
            .is_some_and(|expected| expected != written.md5)
        {
            self.delete_bytes(id).await;
            return self
                .fail(
                    &transfer,
                    "Checksum mismatch",
                    FileTransferError::ChecksumMismatch,
                )
                .await;
        }
        let now = self.clock.now();
        let update = TransitionUpdate {
            size: Some(written.size),
            checksum: Some(written.md5),
            storage_key: Some(id.to_string()),
            ..TransitionUpdate::default()
        };
        let processing_events = [Happening::UploadProcessing.event(&transfer, now)];
        let uploaded = Step {
            from: &[TransferStatus::UploadStarted],
            to: TransferStatus::UploadProcessing,
            at: now,
            update: &update,
            events: &processing_events,
        };
        if !self.scanner.scans(&transfer) {
            // Nothing to wait for: processing and publishing commit together, one commit
            // fewer on the hot path, and still a history row and an event for each.
            let published = TransitionUpdate {
                published: Some(now),
                ..TransitionUpdate::default()
            };
            let published_events = [Happening::Published.event(&transfer, now)];
            let publish = Step {
                from: &[TransferStatus::UploadProcessing],
                to: TransferStatus::Published,
                at: now,
                update: &published,
                events: &published_events,
            };
            self.settle_upload(id, &[uploaded, publish]).await?;
            return Ok(id);
        }
        let processing = self.settle_upload(id, &[uploaded]).await?;
        // The uploader is answered now (UploadProcessing) and polls, as with Altinn; should
        // this process stop before a verdict, the stuck-processing job fails the transfer.
        let this = self.clone();
        tokio::spawn(async move { this.scan(processing).await }.in_current_span());
        Ok(id)
    }

    /// Scans an upload in UploadProcessing and applies the verdict; a scan that fails leaves
    /// it there (for the stuck-processing job).
    async fn scan(&self, transfer: Transfer) {
        let bytes = if self.scanner.reads_bytes() {
            match self.storage.read(transfer.id, None).await {
                Ok(bytes) => Some(bytes),
                Err(error) => {
                    tracing::error!(id = %transfer.id, %error, "reading an upload to scan");
                    return;
                }
            }
        } else {
            None
        };
        match self.scanner.scan(&transfer, bytes).await {
            Ok(verdict) => {
                if let Err(error) = self.apply_verdict(&transfer, verdict).await {
                    tracing::error!(id = %transfer.id, %error, "applying a malware verdict");
                }
            }
            Err(error) => tracing::warn!(id = %transfer.id, %error, "no malware verdict"),
        }
    }

    /// Publishes a clean upload; fails a malicious one (`uploadfailed`) and deletes its bytes.
    async fn apply_verdict(&self, transfer: &Transfer, verdict: Verdict) -> Result<()> {
        match verdict {
            Verdict::Pending => Ok(()),
            Verdict::Clean => self.publish(transfer).await,
            Verdict::Malicious(threat) => {
                let now = self.clock.now();
                let settlement = crate::domain::lifecycle::malware_found(transfer, &threat, now);
                let update = TransitionUpdate {
                    detail: settlement.detail,
                    ..TransitionUpdate::default()
                };
                let failed = self
                    .store
                    .transition(
                        transfer.id,
                        &[TransferStatus::UploadProcessing],
                        settlement.to,
                        now,
                        &update,
                        &settlement.events,
                    )
                    .await?;
                if let Transitioned::Applied(_) = failed {
                    tracing::warn!(id = %transfer.id, %threat, "malware found; upload failed");
                    self.delete_bytes(transfer.id).await;
                }
                Ok(())
            }
        }
    }

    /// A verdict from the external scanner, posted to the malware-scan-result webhook with
    /// `credential`: 401 without the configured one, code 1 for an unknown transfer, code 30
    /// before the upload is processing; a verdict for a transfer that has moved on (a repeated
    /// result) changes nothing.
    pub async fn report_malware_scan(
        &self,
        credential: &str,
        file_transfer_id: &str,
        verdict: &str,
        threat: &str,
    ) -> Result<()> {
        let accepted = self
            .scan_token
            .as_deref()
            .is_some_and(|expected| crate::scan::credential_matches(credential, expected));
        if !accepted {
            return Err(FileTransferError::Upstream(Problem::new(
                http::StatusCode::UNAUTHORIZED,
                "the malware scan result's credential is not accepted",
            )));
        }
        let verdict = crate::scan::parse_verdict(verdict, threat).ok_or_else(|| {
            FileTransferError::invalid(
                "verdict",
                format!("{verdict:?} is not NoThreatsFound or Malicious"),
            )
        })?;
        let id = Uuid::parse_str(file_transfer_id).map_err(|_| {
            FileTransferError::invalid(
                "fileTransferId",
                format!("{file_transfer_id:?} is not a UUID"),
            )
        })?;
        let transfer = self
            .store
            .get(id)
            .await?
            .ok_or(FileTransferError::NotFound)?;
        match transfer.status {
            TransferStatus::Initialized | TransferStatus::UploadStarted => {
                Err(FileTransferError::ScanResultTooEarly)
            }
            TransferStatus::UploadProcessing => self.apply_verdict(&transfer, verdict).await,
            _ => Ok(()),
        }
    }

    /// Applies the transitions that end a stored upload; when they cannot be (the stuck-upload
    /// job failed it meanwhile, or the database failed), the bytes go.
    async fn settle_upload(&self, id: Uuid, steps: &[Step<'_>]) -> Result<Transfer> {
        match self.store.transition_steps(id, steps).await {
            Ok(Transitioned::Applied(transfer)) => Ok(transfer),
            Ok(_) => {
                self.delete_bytes(id).await;
                Err(FileTransferError::UploadFailed)
            }
            Err(error) => {
                self.delete_bytes(id).await;
                Err(error.into())
            }
        }
    }

    /// UploadProcessing → Published, once.
    async fn publish(&self, transfer: &Transfer) -> Result<()> {
        let now = self.clock.now();
        let update = TransitionUpdate {
            published: Some(now),
            ..TransitionUpdate::default()
        };
        let event = Happening::Published.event(transfer, now);
        self.store
            .transition(
                transfer.id,
                &[TransferStatus::UploadProcessing],
                TransferStatus::Published,
                now,
                &update,
                &[event],
            )
            .await?;
        Ok(())
    }

    /// UploadStarted → Failed with `detail`, then answers `error`.
    async fn fail<T>(
        &self,
        transfer: &Transfer,
        detail: &str,
        error: FileTransferError,
    ) -> Result<T> {
        let now = self.clock.now();
        let update = TransitionUpdate {
            detail: Some(detail.to_owned()),
            ..TransitionUpdate::default()
        };
        let event = Happening::UploadFailed.event(transfer, now);
        self.store
            .transition(
                transfer.id,
                &[
                    TransferStatus::UploadStarted,
                    TransferStatus::UploadProcessing,
                ],
                TransferStatus::Failed,
                now,
                &update,
                &[event],
            )
            .await?;
        Err(error)
    }

    /// Deletes the bytes of a failed upload; when that fails, the byte sweep of the lifecycle
    /// jobs tries again (the Failed status marked them).
    async fn delete_bytes(&self, id: Uuid) {
        match self.storage.delete(id).await {
            Ok(()) => {
                if let Err(error) = self.store.bytes_deleted(id).await {
                    tracing::warn!(%id, %error, "recording deleted bytes");
                }
            }
            Err(error) => tracing::error!(%id, %error, "deleting the bytes of a failed upload"),
        }
    }

    /// Initializes a transfer and uploads its file in one call.
    pub async fn initialize_and_upload<S, E>(
        self: &Arc<Self>,
        caller: &Caller,
        request: InitializeRequest,
        declared_length: Option<u64>,
        bytes: S,
    ) -> Result<Uuid>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let transfer = self.initialize(caller, request).await?;
        self.upload(caller, transfer.id, declared_length, bytes)
            .await
    }

    /// The transfer with its recipients' current statuses.
    pub async fn overview(&self, caller: &Caller, id: Uuid) -> Result<Transfer> {
        self.readable(caller, id).await
    }

    /// The transfer with its whole history.
    pub async fn details(&self, caller: &Caller, id: Uuid) -> Result<(Transfer, History)> {
        let transfer = self.readable(caller, id).await?;
        let history = self.store.history(id).await?;
        Ok((transfer, history))
    }

    /// Ids of the caller's transfers of one resource matching the filters (at most 100); with
    /// the role `ServiceOwner`, the resource's owner gets every transfer of it.
    pub async fn search(&self, caller: &Caller, input: SearchInput) -> Result<Vec<Uuid>> {
        let query = search_query(caller.org, input)?;
        if query.role == SearchRole::ServiceOwner {
            // The owner of the resource (as configured for the broker) sees all its transfers.
            let owns = self
                .store
                .get_resource_settings(&query.resource_id)
                .await?
                .is_some_and(|settings| settings.service_owner == caller.org);
            if !owns {
                return Err(FileTransferError::NoAccessToResource);
            }
            return Ok(self.store.search(&query).await?);
        }
        let principal = principal(caller);
        let may_read = self
            .permits(&principal, READ, &query.resource_id, caller.org, "")
            .await?;
        if !may_read
            && !self
                .permits(&principal, WRITE, &query.resource_id, caller.org, "")
                .await?
        {
            return Err(FileTransferError::NoAccessToResource);
        }
        Ok(self.store.search(&query).await?)
    }

    /// Starts streaming the file (or the range `range_header` asks for) to a recipient; the
    /// recipient's first download moves it to DownloadStarted.
    pub async fn download(
        &self,
        caller: &Caller,
        id: Uuid,
        range_header: &str,
    ) -> Result<Download> {
        let (transfer, role) = self.visible(caller, id).await?;
        if role != Role::Recipient {
            return Err(FileTransferError::NotFound);
        }
        self.require(caller, READ, &transfer, caller.org).await?;
        if transfer.status != TransferStatus::Published {
            return Err(FileTransferError::NotAvailable);
        }
        let total_size = transfer.size.unwrap_or(0);
        let range = range::resolve(range_header, total_size)
            .map_err(|_| FileTransferError::RangeNotSatisfiable)?;
        match self
            .store
            .set_recipient_status(
                id,
                caller.org,
                &[
                    RecipientStatus::Initialized,
                    RecipientStatus::DownloadStarted,
                ],
                RecipientStatus::DownloadStarted,
                self.clock.now(),
                caller.consumer,
                &[],
            )
            .await?
        {
            RecipientTransitioned::NotFound => return Err(FileTransferError::NotFound),
            // A recipient that already confirmed may download again.
            RecipientTransitioned::Applied { .. }
            | RecipientTransitioned::Unchanged
            | RecipientTransitioned::Refused { .. } => {}
        }
        let bytes = self
            .storage
            .read(
                id,
                range.map(|r| Range {
                    start: r.first,
                    end: r.last + 1,
                }),
            )
            .await
            .map_err(storage_error)?;
        Ok(Download {
            total_size,
            range,
            file_name: transfer.file_name,
            bytes,
        })
    }

    /// Confirms a recipient's download; the last confirmation moves the transfer to
    /// AllConfirmedDownloaded. Confirming again changes nothing.
    pub async fn confirm_download(&self, caller: &Caller, id: Uuid) -> Result<()> {
        let (transfer, role) = self.visible(caller, id).await?;
        if role != Role::Recipient {
            return Err(FileTransferError::NotFound);
        }
        self.require(caller, READ, &transfer, caller.org).await?;
        if transfer.status != TransferStatus::Published {
            return Err(FileTransferError::NotPublished);
        }
        let now = self.clock.now();
        let event = Happening::DownloadConfirmed(caller.org).event(&transfer, now);
        let confirmed = self
            .store
            .set_recipient_status(
                id,
                caller.org,
                &[RecipientStatus::DownloadStarted],
                RecipientStatus::DownloadConfirmed,
                now,
                caller.consumer,
                &[event],
            )
            .await?;
        match confirmed {
            RecipientTransitioned::Applied { all_confirmed } => {
                if all_confirmed {
                    let event = Happening::AllConfirmedDownloaded.event(&transfer, now);
                    self.store
                        .transition(
                            id,
                            &[TransferStatus::Published],
                            TransferStatus::AllConfirmedDownloaded,
                            now,
                            &TransitionUpdate::default(),
                            &[event],
                        )
                        .await?;
                }
                Ok(())
            }
            RecipientTransitioned::Unchanged
            | RecipientTransitioned::Refused {
                current: RecipientStatus::DownloadConfirmed,
            } => Ok(()),
            RecipientTransitioned::Refused { .. } => Err(FileTransferError::ConfirmBeforeDownload),
            RecipientTransitioned::NotFound => Err(FileTransferError::NotFound),
        }
    }

    /// Registers the calling service owner (its token carries its org code).
    pub async fn register_service_owner(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<ServiceOwner> {
        let org_code = caller
            .org_code
            .clone()
            .filter(|code| !code.is_empty())
            .ok_or(FileTransferError::NoAccessToResource)?;
        let name = name.trim();
        if name.is_empty() {
            return Err(FileTransferError::invalid(
                "name",
                "The name field is required.",
            ));
        }
        let owner = ServiceOwner {
            org_number: caller.org,
            org_code,
            name: name.to_owned(),
            created: self.clock.now(),
        };
        match self.store.register_service_owner(&owner).await? {
            Inserted::New => Ok(owner),
            Inserted::AlreadyExists => Err(FileTransferError::Upstream(Problem::new(
                http::StatusCode::CONFLICT,
                "the service owner is already registered",
            ))),
        }
    }

    /// The calling service owner; code 24 when it has not registered.
    pub async fn service_owner(&self, caller: &Caller) -> Result<ServiceOwner> {
        self.store
            .get_service_owner(caller.org)
            .await?
            .ok_or(FileTransferError::ServiceOwnerNotRegistered)
    }

    /// Refuses unless the caller is the resource's competent authority in the access registry.
    async fn require_resource_owner(&self, caller: &Caller, resource_id: &str) -> Result<()> {
        let resource = self.resource(resource_id).await?;
        let owner = resource
            .has_competent_authority
            .map(|authority| authority.organization)
            .unwrap_or_default();
        if OrgNumber::parse_identifier(&owner).ok() != Some(caller.org) {
            return Err(FileTransferError::NoAccessToResource);
        }
        Ok(())
    }

    /// Creates or changes a resource's broker settings; only its owner may.
    pub async fn put_resource_settings(
        &self,
        caller: &Caller,
        resource_id: &str,
        change: ResourceSettingsChange,
    ) -> Result<ResourceSettings> {
        self.require_resource_owner(caller, resource_id).await?;
        self.service_owner(caller).await?;
        let current = self
            .store
            .get_resource_settings(resource_id)
            .await?
            .unwrap_or_else(|| ResourceSettings::defaults(resource_id, caller.org));
        let settings = change.apply(current, self.limits)?;
        self.store
            .put_resource_settings(&settings, self.clock.now())
            .await?;
        Ok(settings)
    }

    /// A resource's broker settings, for its owner; code 25 before they are configured.
    pub async fn resource_settings(
        &self,
        caller: &Caller,
        resource_id: &str,
    ) -> Result<ResourceSettings> {
        self.require_resource_owner(caller, resource_id).await?;
        self.store
            .get_resource_settings(resource_id)
            .await?
            .ok_or(FileTransferError::ResourceNotConfigured)
    }

    /// Altinn's monthly statistics of the caller's resources (or of one of them), checked in
    /// Altinn's order: the month (6003), the projection (6005), the caller's organisation (6;
    /// a verified caller always has one), then a named resource must be configured (25) and
    /// be the caller's (6).
    pub async fn monthly_statistics(
        &self,
        caller: &Caller,
        request: StatisticsRequest,
    ) -> Result<StatisticsReport> {
        let month = ReportMonth::new(request.year, request.month)?;
        let projection = Projection::new(request.include_end_user, request.include_vendor)?;
        let resource_id = statistics::resource_filter(&request.resource_id);
        if let Some(resource_id) = &resource_id {
            let settings = self
                .store
                .get_resource_settings(resource_id)
                .await?
                .ok_or(FileTransferError::ResourceNotConfigured)?;
            if settings.service_owner != caller.org {
                return Err(FileTransferError::NoAccessToResource);
            }
        }
        let query = StatisticsQuery {
            service_owner: caller.org,
            from: month.from(),
            to: month.to(),
            resource_id,
        };
        let rows = self.store.monthly_statistics(&query).await?;
        Ok(StatisticsReport {
            month,
            resource_id: query.resource_id,
            rows: projection.apply(rows),
        })
    }
}

/// Parses the search's filters; every failing field in one 400.
fn search_query(caller: OrgNumber, input: SearchInput) -> Result<SearchQuery> {
    use crate::store::{SEARCH_LIMIT, SearchRole};
    let mut errors = std::collections::BTreeMap::<String, Vec<String>>::new();
    let mut fail = |field: &str, message: String| {
        errors.entry(field.to_owned()).or_default().push(message);
    };
    if input.resource_id.is_empty() {
        fail("resourceId", "The resourceId field is required.".to_owned());
    }
    let status = optional(&input.status, |text| text.parse::<TransferStatus>())
        .map_err(|error| fail("status", error.to_string()))
        .ok()
        .flatten();
    let recipient_status = optional(&input.recipient_status, |text| {
        text.parse::<RecipientStatus>()
    })
    .map_err(|error| fail("recipientStatus", error.to_string()))
    .ok()
    .flatten();
    let time = |text: &str| {
        chrono::DateTime::parse_from_rfc3339(text).map(|time| time.with_timezone(&chrono::Utc))
    };
    let from = optional(&input.from, time)
        .map_err(|error| fail("from", error.to_string()))
        .ok()
        .flatten();
    let to = optional(&input.to, time)
        .map_err(|error| fail("to", error.to_string()))
        .ok()
        .flatten();
    let role = match input.role.as_str() {
        "" | "Both" => Some(SearchRole::Both),
        "Sender" => Some(SearchRole::Sender),
        "Recipient" => Some(SearchRole::Recipient),
        "ServiceOwner" => Some(SearchRole::ServiceOwner),
        other => {
            fail(
                "role",
                format!("unknown role {other:?}: Sender, Recipient, Both or ServiceOwner"),
            );
            None
        }
    };
    match role {
        Some(role) if errors.is_empty() => Ok(SearchQuery {
            caller,
            resource_id: input.resource_id,
            status,
            recipient_status,
            from,
            to,
            ascending: input.ascending,
            role,
            limit: SEARCH_LIMIT,
        }),
        _ => Err(FileTransferError::Invalid(errors)),
    }
}

/// `None` for an empty text, else its parse.
fn optional<T, E>(text: &str, parse: impl FnOnce(&str) -> Result<T, E>) -> Result<Option<T>, E> {
    if text.is_empty() {
        Ok(None)
    } else {
        parse(text).map(Some)
    }
}
