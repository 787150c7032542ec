//! The tonic service: translates gRPC messages to [`FileTransferCore`] calls and back.
//!
//! Every call verifies the bearer token the gateway forwards and acts for the caller it names;
//! the request's `principal` field is ignored, so a forged principal changes nothing.

use std::pin::Pin;
use std::sync::Arc;

use broker_common::Problem;
use broker_common::auth::{Caller, TokenVerifier};
use broker_common::identity::OrgNumber;
use broker_common::metrics::{self, Direction};
use broker_proto::filetransfer as pb;
use broker_proto::filetransfer::file_transfer_service_server::FileTransferService;
use broker_proto::filetransfer::{download_message, upload_message};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use tokio::sync::oneshot;
use tonic::{Request, Response, Status, Streaming};
use uuid::Uuid;

use crate::domain::error::FileTransferError;
use crate::domain::settings::{
    ResourceSettings, ResourceSettingsChange, ServiceOwner, format_timespan,
};
use crate::domain::statistics::StatisticsRow;
use crate::domain::transfer::{History, Transfer};
use crate::domain::validation::InitializeRequest;
use crate::service::{FileTransferCore, SearchInput, StatisticsRequest};

mod tus;

/// Altinn's storage provider for transfers that are scanned for malware.
const SCANNED_STORAGE: &str = "AltinnAzure";
/// Altinn's storage provider for transfers that are not.
const UNSCANNED_STORAGE: &str = "AltinnAzureWithoutVirusScan";
/// The environment reported for the storage providers (Altinn names its host environment).
const DEPLOYMENT_ENVIRONMENT: &str = "production";

/// The gRPC face of the file-transfer service.
pub struct FileTransferGrpc {
    core: Arc<FileTransferCore>,
    verifier: Arc<TokenVerifier>,
}

impl FileTransferGrpc {
    /// Serves `core`, acting for callers whose tokens `verifier` accepts.
    pub fn new(core: Arc<FileTransferCore>, verifier: Arc<TokenVerifier>) -> Self {
        Self { core, verifier }
    }

    /// The caller named by the forwarded token.
    async fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        let token = broker_common::grpc::bearer(request)
            .ok_or_else(|| Problem::unauthorized("a bearer token is required"))?;
        Ok(self.verifier.verify(token).await?)
    }
}

/// A time as Altinn's `DateTimeOffset` values are written: UTC as `+00:00`, the fraction to
/// at most microseconds with its trailing zeros left out (`2026-08-18T11:40:51.12+00:00`).
fn date_time_offset(time: DateTime<Utc>) -> String {
    let micros = time.timestamp_subsec_micros();
    let fraction = if micros == 0 {
        String::new()
    } else {
        format!(".{micros:06}").trim_end_matches('0').to_owned()
    };
    format!("{}{fraction}+00:00", time.format("%Y-%m-%dT%H:%M:%S"))
}

/// A transfer id from the request; malformed ids cannot name a transfer.
fn transfer_id(text: &str) -> Result<Uuid, FileTransferError> {
    Uuid::parse_str(text)
        .map_err(|_| FileTransferError::invalid("fileTransferId", "must be a UUID"))
}

fn initialize_from_pb(request: pb::InitializeRequest) -> InitializeRequest {
    InitializeRequest {
        resource_id: request.resource_id,
        file_name: request.file_name,
        senders_file_transfer_reference: request.senders_file_transfer_reference,
        sender: request.sender,
        recipients: (!request.recipients_null).then_some(request.recipients),
        property_list: request.property_list.into_iter().collect(),
        checksum: request.checksum,
        disable_virus_scan: request.disable_virus_scan,
    }
}

fn statistics_row_to_pb(row: StatisticsRow) -> pb::MonthlyStatisticsRow {
    let party = |org: Option<OrgNumber>| org.map(|org| org.iso6523()).unwrap_or_default();
    pb::MonthlyStatisticsRow {
        resource_id: row.key.resource_id,
        sender_vendor: party(row.key.sender_vendor),
        recipient_vendor: party(row.key.recipient_vendor),
        sender: party(row.key.sender),
        recipient: party(row.key.recipient),
        total_file_transfers: row.counts.file_transfers,
        upload_count: row.counts.uploads,
        total_transfer_download_attempts: row.counts.download_attempts,
        transfers_with_download_confirmed: row.counts.downloads_confirmed,
    }
}

fn overview_to_pb(transfer: Transfer) -> pb::FileTransferOverview {
    pb::FileTransferOverview {
        file_transfer_id: transfer.id.to_string(),
        resource_id: transfer.resource_id,
        file_name: transfer.file_name,
        senders_file_transfer_reference: transfer.senders_reference,
        checksum: transfer.checksum,
        use_virus_scan: transfer.use_virus_scan,
        file_transfer_size: transfer.size.unwrap_or(0),
        file_transfer_status: transfer.status.as_str().to_owned(),
        file_transfer_status_text: transfer.status.text().to_owned(),
        file_transfer_status_changed: date_time_offset(transfer.status_changed),
        created: date_time_offset(transfer.created),
        expiration_time: date_time_offset(transfer.expires),
        sender: transfer.sender_party,
        recipients: transfer
            .recipients
            .into_iter()
            .map(|recipient| pb::RecipientStatus {
                recipient: recipient.org_number.iso6523(),
                current_recipient_file_transfer_status_code: recipient.status.as_str().to_owned(),
                current_recipient_file_transfer_status_text: recipient.status.text().to_owned(),
                current_recipient_file_transfer_status_changed: date_time_offset(recipient.changed),
            })
            .collect(),
        property_list: transfer.property_list.into_iter().collect(),
        published: transfer.published.map(date_time_offset),
    }
}

fn details_to_pb(transfer: Transfer, history: History) -> pb::FileTransferStatusDetails {
    pb::FileTransferStatusDetails {
        overview: Some(overview_to_pb(transfer)),
        file_transfer_status_history: history
            .transfer
            .iter()
            .map(|entry| pb::StatusHistoryEntry {
                file_transfer_status: entry.status.as_str().to_owned(),
                file_transfer_status_text: entry.text().to_owned(),
                file_transfer_status_changed: date_time_offset(entry.at),
            })
            .collect(),
        recipient_file_transfer_status_history: history
            .recipients
            .iter()
            .map(|entry| pb::RecipientHistoryEntry {
                recipient: entry.recipient.iso6523(),
                recipient_file_transfer_status_code: entry.status.as_str().to_owned(),
                recipient_file_transfer_status_text: entry.status.text().to_owned(),
                recipient_file_transfer_status_changed: date_time_offset(entry.at),
            })
            .collect(),
    }
}

/// A service owner as Altinn shows it: one storage provider for transfers without a malware
/// scan, and (newest first, as Altinn lists them) one for scanned transfers when a scanner is
/// configured.
fn owner_to_pb(owner: ServiceOwner, scanning: bool) -> pb::ServiceOwnerSettings {
    let kinds: &[&str] = if scanning {
        &[UNSCANNED_STORAGE, SCANNED_STORAGE]
    } else {
        &[UNSCANNED_STORAGE]
    };
    pb::ServiceOwnerSettings {
        name: owner.name,
        storage_providers: kinds
            .iter()
            .map(|kind| pb::StorageProvider {
                r#type: (*kind).to_owned(),
                deployment_status: "Ready".to_owned(),
                deployment_environment: DEPLOYMENT_ENVIRONMENT.to_owned(),
            })
            .collect(),
    }
}

fn settings_to_pb(settings: ResourceSettings) -> pb::ResourceSettings {
    pb::ResourceSettings {
        resource_id: settings.resource_id,
        max_file_transfer_size: settings.max_file_transfer_size,
        file_transfer_time_to_live: format_timespan(settings.file_transfer_time_to_live),
        purge_file_transfer_after_all_recipients_confirmed: settings.purge_after_all_confirmed,
        purge_file_transfer_grace_period: format_timespan(settings.purge_grace_period),
        use_manifest_file_shim: settings.use_manifest_file_shim,
        external_service_code_legacy: settings.external_service_code_legacy.unwrap_or_default(),
        external_service_edition_code_legacy: settings
            .external_service_edition_code_legacy
            .map(|code| code.to_string())
            .unwrap_or_default(),
        required_party: settings.required_party.unwrap_or_default(),
        approved_for_disabled_virus_scan: settings.approved_for_disabled_virus_scan,
    }
}

/// The fields the client sent, as a change; `approvedForDisabledVirusScan` is the operator's
/// to set, so it is not taken from the owner.
fn settings_change(
    settings: pb::ResourceSettings,
    present: &[String],
) -> Result<ResourceSettingsChange, FileTransferError> {
    let sent = |field: &str| present.iter().any(|name| name == field);
    let edition = if sent("externalServiceEditionCodeLegacy") {
        Some(
            settings
                .external_service_edition_code_legacy
                .parse::<i64>()
                .map_err(|_| {
                    FileTransferError::invalid(
                        "externalServiceEditionCodeLegacy",
                        "must be a number",
                    )
                })?,
        )
    } else {
        None
    };
    let max_size = match settings.max_file_transfer_size {
        Some(size) if sent("maxFileTransferSize") => Some(i64::try_from(size).unwrap_or(i64::MAX)),
        _ => None,
    };
    Ok(ResourceSettingsChange {
        max_file_transfer_size: max_size,
        file_transfer_time_to_live: sent("fileTransferTimeToLive")
            .then_some(settings.file_transfer_time_to_live),
        purge_after_all_confirmed: sent("purgeFileTransferAfterAllRecipientsConfirmed")
            .then_some(settings.purge_file_transfer_after_all_recipients_confirmed),
        purge_grace_period: sent("purgeFileTransferGracePeriod")
            .then_some(settings.purge_file_transfer_grace_period),
        use_manifest_file_shim: sent("useManifestFileShim")
            .then_some(settings.use_manifest_file_shim),
        external_service_code_legacy: sent("externalServiceCodeLegacy")
            .then_some(settings.external_service_code_legacy),
        external_service_edition_code_legacy: edition,
        required_party: sent("requiredParty").then_some(settings.required_party),
    })
}

/// The upload's messages after `start`, as they are read.
type Messages = Streaming<pb::UploadMessage>;

/// The `start` an upload's stream begins with.
async fn upload_start(messages: &mut Messages) -> Result<pb::UploadStart, Status> {
    match messages.message().await? {
        Some(pb::UploadMessage {
            message: Some(upload_message::Message::Start(start)),
        }) => Ok(*start),
        _ => Err(Problem::invalid_field("start", "the first message must be a start").into()),
    }
}

/// The chunks after an upload's `start`, up to its `end`; once `end` arrived, `rest` gets the
/// messages after it. A stream that stops without `end`, or whose `end` counts other bytes
/// than arrived, is an error, so the upload is discarded: a cancelled client call can reach
/// the server as a clean end of the stream.
fn chunks(
    messages: Messages,
    rest: Option<oneshot::Sender<Messages>>,
) -> impl Stream<Item = Result<Bytes, Status>> + Send + Unpin + 'static {
    let state = (messages, 0u64, rest);
    Box::pin(futures::stream::unfold(Some(state), |state| async move {
        let (mut messages, received, rest) = state?;
        let message = match messages.message().await {
            Ok(Some(message)) => message.message,
            Ok(None) => {
                let error = Status::aborted("the upload stream ended without its end message");
                return Some((Err(error), None));
            }
            Err(status) => return Some((Err(status), None)),
        };
        match message {
            Some(upload_message::Message::Chunk(chunk)) => {
                metrics::file_bytes(Direction::Upload, chunk.len() as u64);
                let received = received + chunk.len() as u64;
                Some((Ok(chunk), Some((messages, received, rest))))
            }
            Some(upload_message::Message::End(end)) if end.total_bytes == received => {
                if let Some(rest) = rest {
                    // Nobody waits for the rest when the upload failed meanwhile.
                    let _ = rest.send(messages);
                }
                None
            }
            Some(upload_message::Message::End(end)) => {
                let error = Status::aborted(format!(
                    "the upload's end counts {} bytes but {received} arrived",
                    end.total_bytes
                ));
                Some((Err(error), None))
            }
            _ => Some((
                Err(Status::invalid_argument(
                    "every message after the first must be a chunk or the end",
                )),
                None,
            )),
        }
    }))
}

/// The `initialize` message a spooled upload sends after its `end` (see the contract).
async fn trailing_initialize(
    rest: oneshot::Receiver<Messages>,
) -> Result<InitializeRequest, Status> {
    let mut messages = rest
        .await
        .map_err(|_| Status::aborted("the upload stream ended before its end message"))?;
    match messages.message().await? {
        Some(pb::UploadMessage {
            message: Some(upload_message::Message::Initialize(request)),
        }) => Ok(initialize_from_pb(*request)),
        Some(_) => Err(Status::invalid_argument(
            "the message after a spooled upload's end must be its initialize",
        )),
        None => Err(Status::aborted(
            "the upload stream ended without the initialize of its spooled file",
        )),
    }
}

/// The download's message stream: the header, then the bytes.
type DownloadStream = Pin<Box<dyn Stream<Item = Result<pb::DownloadMessage, Status>> + Send>>;

#[tonic::async_trait]
impl FileTransferService for FileTransferGrpc {
    async fn initialize(
        &self,
        request: Request<pb::InitializeRequest>,
    ) -> Result<Response<pb::FileTransferId>, Status> {
        let caller = self.caller(&request).await?;
        let transfer = self
            .core
            .initialize(&caller, initialize_from_pb(request.into_inner()))
            .await?;
        Ok(Response::new(pb::FileTransferId {
            file_transfer_id: transfer.id.to_string(),
        }))
    }

    async fn upload(
        &self,
        request: Request<Streaming<pb::UploadMessage>>,
    ) -> Result<Response<pb::FileTransferId>, Status> {
        let _in_flight = metrics::upload_in_flight();
        let caller = self.caller(&request).await?;
        let mut messages = request.into_inner();
        let start = upload_start(&mut messages).await?;
        let id = if start.spool {
            if start.initialize.is_some() || !start.file_transfer_id.is_empty() {
                return Err(Problem::invalid_field(
                    "spool",
                    "a spooled upload names no transfer: its initialize follows its end",
                )
                .into());
            }
            let (rest, after_end) = oneshot::channel();
            self.core
                .initialize_and_upload_spooled(
                    &caller,
                    chunks(messages, Some(rest)),
                    trailing_initialize(after_end),
                )
                .await?
        } else if let Some(initialize) = start.initialize
            && start.file_transfer_id.is_empty()
        {
            self.core
                .initialize_and_upload(
                    &caller,
                    initialize_from_pb(initialize),
                    start.declared_length,
                    chunks(messages, None),
                )
                .await?
        } else {
            let id = transfer_id(&start.file_transfer_id)?;
            self.core
                .upload(&caller, id, start.declared_length, chunks(messages, None))
                .await?
        };
        Ok(Response::new(pb::FileTransferId {
            file_transfer_id: id.to_string(),
        }))
    }

    async fn tus_create(
        &self,
        request: Request<pb::TusCreateRequest>,
    ) -> Result<Response<pb::TusUpload>, Status> {
        tus::create(self, request).await
    }

    async fn tus_get(
        &self,
        request: Request<pb::TusUploadRef>,
    ) -> Result<Response<pb::TusUpload>, Status> {
        tus::get(self, request).await
    }

    async fn tus_patch(
        &self,
        request: Request<Streaming<pb::UploadMessage>>,
    ) -> Result<Response<pb::TusUpload>, Status> {
        tus::patch(self, request).await
    }

    async fn tus_terminate(
        &self,
        request: Request<pb::TusUploadRef>,
    ) -> Result<Response<pb::TusTerminated>, Status> {
        tus::terminate(self, request).await
    }

    async fn tus_max_size(
        &self,
        request: Request<pb::TusUploadRef>,
    ) -> Result<Response<pb::TusMaxSizeResponse>, Status> {
        tus::max_size(self, request).await
    }

    type DownloadStream = DownloadStream;

    async fn download(
        &self,
        request: Request<pb::DownloadRequest>,
    ) -> Result<Response<Self::DownloadStream>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        let id = transfer_id(&request.file_transfer_id)?;
        let download = self.core.download(&caller, id, &request.range).await?;
        let (first_byte, last_byte) = match download.range {
            Some(range) => (range.first, range.last),
            None => (0, download.total_size.saturating_sub(1)),
        };
        let header = pb::DownloadMessage {
            message: Some(download_message::Message::Header(Box::new(
                pb::DownloadHeader {
                    total_size: download.total_size,
                    first_byte,
                    last_byte,
                    partial: download.range.is_some(),
                    file_name: download.file_name,
                },
            ))),
        };
        let chunks = download.bytes.map(|chunk| match chunk {
            Ok(chunk) => {
                metrics::file_bytes(Direction::Download, chunk.len() as u64);
                Ok(pb::DownloadMessage {
                    message: Some(download_message::Message::Chunk(chunk)),
                })
            }
            Err(error) => {
                tracing::error!(%error, "reading a file for download");
                Err(Problem::unavailable("the file storage is unavailable").into())
            }
        });
        let stream = futures::stream::once(async { Ok(header) }).chain(chunks);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_overview(
        &self,
        request: Request<pb::GetFileTransferRequest>,
    ) -> Result<Response<pb::FileTransferOverview>, Status> {
        let caller = self.caller(&request).await?;
        let id = transfer_id(&request.get_ref().file_transfer_id)?;
        let transfer = self.core.overview(&caller, id).await?;
        Ok(Response::new(overview_to_pb(transfer)))
    }

    async fn get_details(
        &self,
        request: Request<pb::GetFileTransferRequest>,
    ) -> Result<Response<pb::FileTransferStatusDetails>, Status> {
        let caller = self.caller(&request).await?;
        let id = transfer_id(&request.get_ref().file_transfer_id)?;
        let (transfer, history) = self.core.details(&caller, id).await?;
        Ok(Response::new(details_to_pb(transfer, history)))
    }

    async fn search(
        &self,
        request: Request<pb::SearchRequest>,
    ) -> Result<Response<pb::SearchResponse>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        let ids = self
            .core
            .search(
                &caller,
                SearchInput {
                    resource_id: request.resource_id,
                    status: request.status,
                    recipient_status: request.recipient_status,
                    from: request.from,
                    to: request.to,
                    ascending: request.order_ascending,
                    role: request.role,
                },
            )
            .await?;
        Ok(Response::new(pb::SearchResponse {
            file_transfer_ids: ids.iter().map(Uuid::to_string).collect(),
        }))
    }

    async fn confirm_download(
        &self,
        request: Request<pb::GetFileTransferRequest>,
    ) -> Result<Response<pb::ConfirmDownloadResponse>, Status> {
        let caller = self.caller(&request).await?;
        let id = transfer_id(&request.get_ref().file_transfer_id)?;
        self.core.confirm_download(&caller, id).await?;
        Ok(Response::new(pb::ConfirmDownloadResponse {}))
    }

    async fn register_service_owner(
        &self,
        request: Request<pb::RegisterServiceOwnerRequest>,
    ) -> Result<Response<pb::ServiceOwnerSettings>, Status> {
        let caller = self.caller(&request).await?;
        let owner = self
            .core
            .register_service_owner(&caller, &request.get_ref().name)
            .await?;
        Ok(Response::new(owner_to_pb(owner, self.core.scans_uploads())))
    }

    async fn get_service_owner(
        &self,
        request: Request<pb::GetServiceOwnerRequest>,
    ) -> Result<Response<pb::ServiceOwnerSettings>, Status> {
        let caller = self.caller(&request).await?;
        let owner = self.core.service_owner(&caller).await?;
        Ok(Response::new(owner_to_pb(owner, self.core.scans_uploads())))
    }

    async fn put_resource_settings(
        &self,
        request: Request<pb::PutResourceSettingsRequest>,
    ) -> Result<Response<pb::ResourceSettings>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        let settings = request.settings.unwrap_or_default();
        let resource_id = settings.resource_id.clone();
        let change = settings_change(settings, &request.present_fields)?;
        let stored = self
            .core
            .put_resource_settings(&caller, &resource_id, change)
            .await?;
        Ok(Response::new(settings_to_pb(stored)))
    }

    async fn get_resource_settings(
        &self,
        request: Request<pb::GetResourceSettingsRequest>,
    ) -> Result<Response<pb::ResourceSettings>, Status> {
        let caller = self.caller(&request).await?;
        let settings = self
            .core
            .resource_settings(&caller, &request.get_ref().resource_id)
            .await?;
        Ok(Response::new(settings_to_pb(settings)))
    }

    async fn report_malware_scan(
        &self,
        request: Request<pb::MalwareScanResult>,
    ) -> Result<Response<pb::MalwareScanAck>, Status> {
        // Not a party's call: the scanner authenticates with its own credential, checked by
        // the service, not with a token.
        let result = request.into_inner();
        self.core
            .report_malware_scan(
                &result.credential,
                &result.file_transfer_id,
                &result.verdict,
                &result.malware_name,
            )
            .await?;
        Ok(Response::new(pb::MalwareScanAck {}))
    }

    async fn monthly_statistics(
        &self,
        request: Request<pb::MonthlyStatisticsRequest>,
    ) -> Result<Response<pb::MonthlyStatisticsResponse>, Status> {
        let caller = self.caller(&request).await?;
        let request = request.into_inner();
        let report = self
            .core
            .monthly_statistics(
                &caller,
                StatisticsRequest {
                    year: request.year,
                    month: request.month,
                    resource_id: request.resource_id,
                    include_end_user: request.include_end_user,
                    include_vendor: request.include_vendor,
                },
            )
            .await?;
        Ok(Response::new(pb::MonthlyStatisticsResponse {
            year: report.month.year(),
            month: report.month.month(),
            resource_id: report.resource_id.unwrap_or_default(),
            rows: report.rows.into_iter().map(statistics_row_to_pb).collect(),
        }))
    }
}
