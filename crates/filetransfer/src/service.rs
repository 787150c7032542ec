//! The file-transfer operations, free of any transport: who may do what (through the access
//! registry), which status moves each operation makes (through the store's compare-and-set),
//! and the bytes (through [`Storage`]). The gRPC layer only translates.
//!
//! Who may do what is the access registry's decision, asked as Altinn asks its decision point:
//! `write` for the transfer's sender party, `read` for one of its recipient parties (with the
//! transfer as the instance) — never by comparing the caller's organisation with the parties,
//! so delegation needs no rule of its own here. A caller the registry does not let act for a
//! party gets 401 with code 6, as from Altinn; an unknown id 404 with code 1. The service owner
//! of a transfer's resource may also read it (an extension of ours).

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
use crate::domain::validation::{InitializeRequest, check_required_party};
use crate::lease::Leases;
use crate::range::{self, ByteRange};
use crate::storage::{Spool, Staging, Storage, WriteError, Written};
use crate::store::{
    DownloadRecorded, FileTransferStore, Inserted, LeaseChange, RecipientTransitioned, SearchQuery,
    SearchRole, StatisticsQuery, Step, TransitionUpdate, Transitioned,
};

/// The access registry's action for sending.
const WRITE: &str = "write";
/// The access registry's action for receiving.
const READ: &str = "read";
/// The resource's `accessListMode` when its access lists restrict who may receive.
const ACCESS_LISTS_ENABLED: &str = "Enabled";
/// The model the initialize-and-upload form's fields belong to (`Metadata.FileName`).
const FORM_METADATA: &str = "Metadata";
/// How long after a recipient's download a ranged download is not recorded again (Altinn's).
pub const RANGED_DOWNLOAD_DEBOUNCE: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

type Result<T, E = FileTransferError> = std::result::Result<T, E>;

pub use crate::scan::{NoScanner, Scanner, Verdict};
pub(crate) use tus::resumable;
pub use tus::{NewUpload, Patch, TusSettings};

mod tus;

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
    leases: Leases,
    scanner: Arc<dyn Scanner>,
    /// The credential the external scanner presents with its verdicts; none accepted without.
    scan_token: Option<String>,
    /// How resumable uploads behave.
    tus: TusSettings,
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
    /// The service over its store, storage and the access registry (through `authorizer`),
    /// holding its uploads' leases for `upload_lease` at a time.
    pub fn new(
        store: Arc<dyn FileTransferStore>,
        storage: Storage,
        authorizer: Arc<Authorizer>,
        clock: Arc<dyn Clock>,
        limits: SizeLimits,
        upload_lease: chrono::TimeDelta,
    ) -> Self {
        Self {
            leases: Leases::new(store.clone(), clock.clone(), upload_lease),
            store,
            storage,
            authorizer,
            clock,
            limits,
            scanner: Arc::new(NoScanner),
            scan_token: None,
            tus: TusSettings::default(),
        }
    }

    /// The same service scanning uploads with `scanner`, and accepting verdicts posted to the
    /// malware-scan-result webhook with `scan_token`.
    pub fn with_scanner(mut self, scanner: Arc<dyn Scanner>, scan_token: Option<String>) -> Self {
        self.scanner = scanner;
        self.scan_token = scan_token.filter(|token| !token.is_empty());
        self
    }

    /// Whether uploads that ask for a malware scan get one (a scanner is configured).
    pub fn scans_uploads(&self) -> bool {
        self.scanner.active()
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

    /// The transfer `id`; code 1 when there is none.
    async fn transfer(&self, id: Uuid) -> Result<Transfer> {
        self.store.get(id).await?.ok_or(FileTransferError::NotFound)
    }

    /// Whether the registry lets the caller act as the transfer's sender.
    async fn acts_as_sender(&self, principal: &Principal, transfer: &Transfer) -> Result<bool> {
        self.permits(principal, WRITE, &transfer.resource_id, transfer.sender, "")
            .await
    }

    /// The recipient party the registry lets the caller act for, if any; the caller's own
    /// organisation is asked about first, as it is the one that usually answers yes.
    async fn recipient_party(
        &self,
        caller: &Caller,
        principal: &Principal,
        transfer: &Transfer,
    ) -> Result<Option<OrgNumber>> {
        let instance = transfer.id.to_string();
        let own = transfer.recipient(caller.org).map(|r| r.org_number);
        let others = transfer
            .recipients
            .iter()
            .map(|r| r.org_number)
            .filter(|org| *org != caller.org);
        for party in own.into_iter().chain(others) {
            if self
                .permits(principal, READ, &transfer.resource_id, party, &instance)
                .await?
            {
                return Ok(Some(party));
            }
        }
        Ok(None)
    }

    /// The transfer, if the caller may read it: as its sender, as one of its recipients, or
    /// (ours) as the service owner of its resource; code 6 otherwise.
    async fn readable(&self, caller: &Caller, id: Uuid) -> Result<Transfer> {
        let transfer = self.transfer(id).await?;
        let principal = principal(caller);
        // The answer is the same in any order; the likely one is asked first.
        let sender_first = transfer.sender == caller.org;
        if sender_first && self.acts_as_sender(&principal, &transfer).await? {
            return Ok(transfer);
        }
        if self
            .recipient_party(caller, &principal, &transfer)
            .await?
            .is_some()
        {
            return Ok(transfer);
        }
        if !sender_first && self.acts_as_sender(&principal, &transfer).await? {
            return Ok(transfer);
        }
        let owns_resource = self
            .store
            .get_resource_settings(&transfer.resource_id)
            .await?
            .is_some_and(|settings| settings.service_owner == caller.org);
        if owns_resource {
            Ok(transfer)
        } else {
            Err(FileTransferError::NoAccessToResource)
        }
    }

    /// The recipient party of the transfer the caller may act for; code 6 when none.
    async fn as_recipient(&self, caller: &Caller, transfer: &Transfer) -> Result<OrgNumber> {
        self.recipient_party(caller, &principal(caller), transfer)
            .await?
            .ok_or(FileTransferError::NoAccessToResource)
    }

    /// Creates a transfer (Initialized) after every rule of Altinn's initialize, in its order:
    /// the sender's right (code 6, also for a resource the broker has no settings for, as
    /// Altinn's decision point answers), the service owner (2), the virus scan approval (20),
    /// the resource (5), the access lists (28) and the required party (27, 26).
    pub async fn initialize(
        &self,
        caller: &Caller,
        request: InitializeRequest,
    ) -> Result<Transfer> {
        let request = request.validate()?;
        let settings = self
            .store
            .get_resource_settings(&request.resource_id)
            .await?
            .ok_or(FileTransferError::NoAccessToResource)?;
        let principal = principal(caller);
        if !self
            .permits(&principal, WRITE, &request.resource_id, request.sender, "")
            .await?
        {
            return Err(FileTransferError::NoAccessToResource);
        }
        if self
            .store
            .get_service_owner(settings.service_owner)
            .await?
            .is_none()
        {
            return Err(FileTransferError::ServiceOwnerNotConfigured);
        }
        if !request.use_virus_scan && !settings.approved_for_disabled_virus_scan {
            return Err(FileTransferError::NotApprovedForDisabledVirusScan);
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
                    return Err(FileTransferError::RecipientNotOnAccessList);
                }
            }
        }
        if let Some(required) = settings.required_party.as_deref() {
            check_required_party(required, request.sender, &request.recipients)?;
        }
        let now = self.clock.now();
        let new = NewTransfer {
            id: Uuid::now_v7(),
            resource_id: request.resource_id,
            file_name: request.file_name,
            senders_reference: request.senders_reference,
            sender: request.sender,
            sender_party: request.sender_party,
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
    /// transfer in UploadStarted: the broken stream fails it and deletes the bytes. Should this
    /// process die instead, the upload's lease lapses and the lifecycle job does the same.
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
        let limit = self.check_upload(caller, id, declared_length).await?;
        let this = self.clone();
        let caller = caller.clone();
        // The task stays in the caller's span, so the events it commits carry its trace. It
        // begins before the staging exists: a caller that goes away while a multipart upload is
        // being created, or before the lease naming it commits, must not leave it open.
        let task = async move {
            let staging = this
                .storage
                .stage(id)
                .await
                .map_err(|error| write_failure(&id.to_string(), error).1)?;
            let transfer = match this.start_upload(&caller, id, staging.clone()).await {
                Ok(transfer) => transfer,
                Err(error) => {
                    if let Err(abandon) = this.storage.abandon(&staging).await {
                        tracing::warn!(%id, error = %abandon, "abandoning an upload never started");
                    }
                    return Err(error);
                }
            };
            let write = this.storage.write_staged(id, &staging, bytes, limit);
            let Ok(written) = this.leases.keep(id, write).await else {
                // The job that took the lease failed the transfer and removes what was staged.
                return Err(FileTransferError::UploadFailed);
            };
            this.finish_upload(transfer, declared_length, written).await
        };
        tokio::spawn(task.in_current_span())
            .await
            .map_err(|error| {
                tracing::error!(%error, %id, "upload task failed");
                FileTransferError::UploadFailed
            })?
    }

    /// Checks the caller may upload the file of transfer `id`, of `declared_length` bytes when
    /// known; the largest file its resource allows.
    async fn check_upload(
        &self,
        caller: &Caller,
        id: Uuid,
        declared_length: Option<u64>,
    ) -> Result<u64> {
        let transfer = self.transfer(id).await?;
        if !self.acts_as_sender(&principal(caller), &transfer).await? {
            return Err(FileTransferError::NoAccessToResource);
        }
        // Altinn refuses a second upload before it looks at the size.
        if transfer.status != TransferStatus::Initialized {
            return Err(FileTransferError::AlreadyUploaded);
        }
        let limit = self.size_limit(&transfer).await?;
        if declared_length.is_some_and(|length| length > limit) {
            return Err(FileTransferError::FileTooBig);
        }
        Ok(limit)
    }

    /// Moves transfer `id` to UploadStarted (once), with this process's lease on the upload
    /// staged at `staging`; the transfer.
    async fn start_upload(&self, caller: &Caller, id: Uuid, staging: Staging) -> Result<Transfer> {
        let uploader = TransitionUpdate {
            vendor: caller.consumer,
            lease: Some(self.leases.grant(staging)),
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
        match started {
            Transitioned::Applied(transfer) => Ok(transfer),
            Transitioned::Refused { .. } => Err(FileTransferError::AlreadyUploaded),
            Transitioned::NotFound => Err(FileTransferError::NotFound),
        }
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
                        LeaseChange::Release,
                    )
                    .await;
            }
            Ok(written) => written,
            Err(error) => {
                // Removing the staging may have failed with the storage: the job makes sure.
                let (detail, error) = write_failure(&id.to_string(), error);
                return self
                    .fail(&transfer, detail, error, LeaseChange::Surrender)
                    .await;
            }
        };
        if transfer
            .expected_checksum()
            .is_some_and(|expected| expected != written.md5)
        {
            self.delete_bytes(id).await;
            return self
                .fail(
                    &transfer,
                    "Checksum mismatch",
                    FileTransferError::ChecksumMismatch,
                    LeaseChange::Release,
                )
                .await;
        }
        let now = self.clock.now();
        let update = TransitionUpdate {
            size: Some(written.size),
            checksum: Some(written.md5),
            storage_key: Some(id.to_string()),
            lease: Some(LeaseChange::Release),
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

    /// UploadStarted → Failed with `detail` and `lease` done to the upload's lease, then
    /// answers `error`.
    async fn fail<T>(
        &self,
        transfer: &Transfer,
        detail: &str,
        error: FileTransferError,
        lease: LeaseChange,
    ) -> Result<T> {
        let now = self.clock.now();
        let update = TransitionUpdate {
            detail: Some(detail.to_owned()),
            lease: Some(lease),
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
        let transfer = self.initialize_form(caller, request).await?;
        self.upload(caller, transfer.id, declared_length, bytes)
            .await
    }

    /// [`initialize`](Self::initialize) for the form of initialize-and-upload, whose fields
    /// Altinn names under its `Metadata` model.
    async fn initialize_form(
        &self,
        caller: &Caller,
        request: InitializeRequest,
    ) -> Result<Transfer> {
        self.initialize(caller, request)
            .await
            .map_err(|error| error.within(FORM_METADATA))
    }

    /// Initializes a transfer and uploads its file in one call when the file comes first: the
    /// `bytes` are spooled (up to the largest size any resource may allow) while they arrive,
    /// then the `metadata` that follows them is initialized as [`initialize`](Self::initialize)
    /// does, and the spool checked as [`upload`](Self::upload) checks an upload (the resource's
    /// size limit, the checksum, the malware scan) before it becomes the transfer's bytes. On
    /// every failure the spool is deleted; a transfer, once initialized, fails as an upload
    /// would.
    ///
    /// The work runs as its own task, so a caller that goes away midway leaves no spool.
    pub async fn initialize_and_upload_spooled<S, E, M, F>(
        self: &Arc<Self>,
        caller: &Caller,
        bytes: S,
        metadata: M,
    ) -> Result<Uuid>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
        E: std::fmt::Display + Send + 'static,
        M: Future<Output = Result<InitializeRequest, F>> + Send + 'static,
        F: std::fmt::Display + Send + 'static,
    {
        let this = self.clone();
        let caller = caller.clone();
        let task = async move {
            let spool = match this.storage.spool(bytes, this.limits.largest()).await {
                Ok(spool) => spool,
                Err(error) => return Err(write_failure("spool", error).1),
            };
            let request = match metadata.await {
                Ok(request) => request,
                Err(cause) => {
                    this.storage.discard(spool).await;
                    return Err(FileTransferError::invalid(
                        "initialize",
                        format!("the metadata of the spooled file never came: {cause}"),
                    ));
                }
            };
            let transfer = match this.initialize_form(&caller, request).await {
                Ok(transfer) => transfer,
                Err(error) => {
                    this.storage.discard(spool).await;
                    return Err(error);
                }
            };
            this.upload_spooled(&caller, transfer.id, spool).await
        };
        tokio::spawn(task.in_current_span())
            .await
            .map_err(|error| {
                tracing::error!(%error, "spooled upload task failed");
                FileTransferError::UploadFailed
            })?
    }

    /// Uploads `spool` as the file of the just initialized transfer `id`, as
    /// [`upload`](Self::upload) would have streamed it.
    async fn upload_spooled(
        self: &Arc<Self>,
        caller: &Caller,
        id: Uuid,
        spool: Spool,
    ) -> Result<Uuid> {
        let started = match self.check_upload(caller, id, None).await {
            // The spool is the upload's staging: the job deletes it should this process die.
            Ok(limit) => self
                .start_upload(caller, id, spool.staging())
                .await
                .map(|transfer| (transfer, limit)),
            Err(error) => Err(error),
        };
        let (transfer, limit) = match started {
            Ok(started) => started,
            Err(error) => {
                self.storage.discard(spool).await;
                return Err(error);
            }
        };
        let written = if spool.written().size > limit {
            self.storage.discard(spool).await;
            Err(WriteError::TooLarge { limit })
        } else {
            self.storage.adopt(spool, id).await
        };
        self.finish_upload(transfer, None, written).await
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
        // Altinn's decision point denies a resource the broker has no settings for.
        if self
            .store
            .get_resource_settings(&query.resource_id)
            .await?
            .is_none()
        {
            return Err(FileTransferError::NoAccessToResource);
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

    /// Starts streaming the file (or the range `range_header` asks for) to a recipient, in
    /// Published or AllConfirmedDownloaded (code 7 otherwise), and records the download as
    /// Altinn does: every whole download, and ranged ones at most once per
    /// [`RANGED_DOWNLOAD_DEBOUNCE`] (a client fetching ranges in parallel is one download).
    pub async fn download(
        &self,
        caller: &Caller,
        id: Uuid,
        range_header: &str,
    ) -> Result<Download> {
        let transfer = self.transfer(id).await?;
        let party = self.as_recipient(caller, &transfer).await?;
        if !matches!(
            transfer.status,
            TransferStatus::Published | TransferStatus::AllConfirmedDownloaded
        ) {
            return Err(FileTransferError::NotAvailable);
        }
        if transfer.storage_key.is_none() {
            return Err(FileTransferError::NoFileUploaded);
        }
        let total_size = transfer.size.unwrap_or(0);
        let range = range::resolve(range_header, total_size)
            .map_err(|_| FileTransferError::RangeNotSatisfiable)?;
        let now = self.clock.now();
        let debounce_since = range.map(|_| now - RANGED_DOWNLOAD_DEBOUNCE);
        if let DownloadRecorded::NotFound = self
            .store
            .record_download(id, party, now, caller.consumer, debounce_since)
            .await?
        {
            return Err(FileTransferError::NotFound);
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

    /// Confirms a recipient's download, in Altinn's order: a file must have been uploaded (code
    /// 3), the transfer be Published (10; so also once AllConfirmedDownloaded), and the
    /// recipient have started a download (19). The last confirmation moves the transfer to
    /// AllConfirmedDownloaded; confirming again while it is Published changes nothing.
    pub async fn confirm_download(&self, caller: &Caller, id: Uuid) -> Result<()> {
        let transfer = self.transfer(id).await?;
        let party = self.as_recipient(caller, &transfer).await?;
        if transfer.storage_key.is_none() {
            return Err(FileTransferError::NoFileUploaded);
        }
        if transfer.status != TransferStatus::Published {
            return Err(FileTransferError::NotPublished);
        }
        let now = self.clock.now();
        let event = Happening::DownloadConfirmed(party).event(&transfer, now);
        let confirmed = self
            .store
            .set_recipient_status(
                id,
                party,
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
        if name.trim().is_empty() {
            return Err(FileTransferError::invalid(
                "Name",
                "The Name field is required.",
            ));
        }
        let owner = ServiceOwner {
            org_number: caller.org,
            // As Altinn, any organisation holding `altinn:serviceowner` may register; the org
            // code is kept when the token names one, else the number stands in for it.
            org_code: caller
                .org_code
                .clone()
                .filter(|code| !code.is_empty())
                .unwrap_or_else(|| caller.org.to_string()),
            name: name.to_owned(),
            created: self.clock.now(),
        };
        match self.store.register_service_owner(&owner).await? {
            Inserted::New => Ok(owner),
            Inserted::AlreadyExists => Err(FileTransferError::ServiceOwnerAlreadyExists),
        }
    }

    /// The calling service owner; code 7004 when it has not registered.
    pub async fn service_owner(&self, caller: &Caller) -> Result<ServiceOwner> {
        self.store
            .get_service_owner(caller.org)
            .await?
            .ok_or(FileTransferError::ServiceOwnerNotFound)
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

    /// Creates or changes a resource's broker settings, in Altinn's order: the body's own rule,
    /// then for a resource new to the broker the registry (code 5), its owner (6) and the
    /// owner's registration (24), for a known one its owner (6), then the values (11–18).
    pub async fn put_resource_settings(
        &self,
        caller: &Caller,
        resource_id: &str,
        change: ResourceSettingsChange,
    ) -> Result<ResourceSettings> {
        change.validate()?;
        let current = match self.store.get_resource_settings(resource_id).await? {
            Some(settings) if settings.service_owner == caller.org => settings,
            Some(_) => return Err(FileTransferError::NoAccessToResource),
            None => {
                self.require_resource_owner(caller, resource_id).await?;
                if self.store.get_service_owner(caller.org).await?.is_none() {
                    return Err(FileTransferError::ServiceOwnerNotRegistered);
                }
                ResourceSettings::defaults(resource_id, caller.org)
            }
        };
        let settings = change.apply(current, self.limits)?;
        self.store
            .put_resource_settings(&settings, self.clock.now())
            .await?;
        Ok(settings)
    }

    /// A resource's broker settings, for its owner: code 25 before they are configured (asked
    /// first, as Altinn does), 6 for anybody else.
    pub async fn resource_settings(
        &self,
        caller: &Caller,
        resource_id: &str,
    ) -> Result<ResourceSettings> {
        let settings = self
            .store
            .get_resource_settings(resource_id)
            .await?
            .ok_or(FileTransferError::ResourceNotConfigured)?;
        if settings.service_owner != caller.org {
            return Err(FileTransferError::NoAccessToResource);
        }
        Ok(settings)
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

/// The failure detail recorded for an upload that could not be stored, and the error answered;
/// `what` names the upload (its transfer id, or the spool) in the log.
fn write_failure(what: &str, error: WriteError) -> (&'static str, FileTransferError) {
    match error {
        WriteError::TooLarge { .. } => ("File size exceeds maximum", FileTransferError::FileTooBig),
        WriteError::Disk(cause) if crate::storage::is_storage_full(&cause) => {
            tracing::error!(id = what, %cause, "the file storage is full; an upload was refused");
            ("The file storage is full", FileTransferError::StorageFull)
        }
        WriteError::Source(cause) => {
            tracing::info!(id = what, %cause, "upload aborted by the client");
            ("The upload was aborted", FileTransferError::UploadFailed)
        }
        error @ (WriteError::Storage(_)
        | WriteError::Disk(_)
        | WriteError::Hasher
        | WriteError::SpoolChanged(_)) => {
            tracing::error!(id = what, %error, "storing an upload failed");
            (
                "Error occurred while storing the file",
                FileTransferError::Storage(error.to_string()),
            )
        }
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
        "" => Some(SearchRole::Both),
        "Sender" => Some(SearchRole::Sender),
        "Recipient" => Some(SearchRole::Recipient),
        "ServiceOwner" => Some(SearchRole::ServiceOwner),
        other => {
            fail("role", format!("The value '{other}' is not valid."));
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
