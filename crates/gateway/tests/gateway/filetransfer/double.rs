//! A stand-in for the file-transfer service at the gRPC boundary, on a real loopback server: it
//! records what the gateway sends (start messages, chunk sizes, bearer tokens, ranges, how an
//! upload stream ended) and serves a fixed file, so tests see what crosses the wire. The real
//! service is exercised by the end-to-end tests.

use std::pin::Pin;
use std::sync::{Arc, Mutex};

use axum::Router;
use broker_common::Problem;
use broker_gateway::AppState;
use broker_proto::filetransfer as pb;
use broker_proto::filetransfer::file_transfer_service_server::{
    FileTransferService, FileTransferServiceServer,
};
use bytes::Bytes;
use futures::Stream;
use http::StatusCode;
use tonic::{Request, Response, Status, Streaming};

use super::ID;
use crate::support::{serve_backend, state_with_filetransfer};

/// The file every download serves.
pub const FILE: &[u8] = b"0123456789";

/// The resources and counts of the statistics rows the double answers.
pub const STATISTICS_ROWS: [(&str, [u64; 4]); 2] = [
    ("broker-demo", [3, 2, 3, 2]),
    ("odd,\"name\"", [1, 0, 0, 0]),
];

/// The largest upload the transfer's resource allows (tus `Tus-Max-Size`).
pub const TUS_MAX_SIZE: u64 = 1000;
/// The length of the tus upload HEAD reports.
pub const TUS_LENGTH: u64 = 10;
/// The id the double gives a partial upload.
pub const PARTIAL_ID: &str = "00112233445566778899aabbccddeeff";
/// When the double's tus uploads expire: Wed, 19 Aug 2026 11:40:51 GMT.
pub const TUS_EXPIRES: i64 = 1_787_139_651;

/// The file's name, with characters that need encoding.
pub const FILE_NAME: &str = "årsrapport 2026.pdf";

/// How an upload stream ended at the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The client ended the stream: every byte arrived.
    Clean,
    /// The stream failed or the call was cancelled before its end.
    Aborted,
}

/// What the service saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// The bearer token of each call.
    pub bearers: Vec<String>,
    /// Initialize requests.
    pub initializes: Vec<pb::InitializeRequest>,
    /// The start message of each upload.
    pub starts: Vec<pb::UploadStart>,
    /// The size of each upload chunk, in order.
    pub chunk_sizes: Vec<usize>,
    /// Bytes received over all uploads.
    pub bytes: u64,
    /// How each upload ended.
    pub endings: Vec<Ending>,
    /// The `initialize` messages that followed a spooled upload's `end`.
    pub trailers: Vec<pb::InitializeRequest>,
    /// The `range` of each download request.
    pub ranges: Vec<String>,
    /// Search requests.
    pub searches: Vec<pb::SearchRequest>,
    /// Malware scan results.
    pub scan_results: Vec<pb::MalwareScanResult>,
    /// Monthly statistics requests.
    pub statistics: Vec<pb::MonthlyStatisticsRequest>,
    /// tus creations.
    pub tus_creates: Vec<pb::TusCreateRequest>,
    /// The `tus` part of each tus PATCH's start message.
    pub tus_patches: Vec<pb::TusPatchStart>,
    /// The durable offset of the one tus upload the double keeps.
    pub tus_offset: u64,
    /// tus terminations.
    pub tus_terminations: Vec<pb::TusUploadRef>,
}

/// The recording service.
#[derive(Clone, Default)]
pub struct Double {
    /// What it has seen so far.
    pub seen: Arc<Mutex<Seen>>,
}

impl Double {
    /// Serves the double on a loopback port; returns a gateway router forwarding to it.
    pub async fn start() -> (Self, Router) {
        Self::start_with(|state| state).await
    }

    /// [`Self::start`], with the gateway's state changed by `configure`.
    pub async fn start_with(configure: impl FnOnce(AppState) -> AppState) -> (Self, Router) {
        let double = Self::default();
        let url = serve_backend(tonic::service::Routes::new(FileTransferServiceServer::new(
            double.clone(),
        )))
        .await;
        let state = configure(state_with_filetransfer(url));
        (double, broker_gateway::router(state))
    }

    fn record(&self, change: impl FnOnce(&mut Seen)) {
        change(&mut self.seen.lock().expect("not poisoned"));
    }

    /// Waits (at most 5 s) until `ready` holds for what was seen.
    pub async fn wait_for(&self, ready: impl Fn(&Seen) -> bool) {
        for _ in 0..500 {
            if ready(&self.seen.lock().expect("not poisoned")) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the service never saw what the test waited for");
    }
}

fn bearer<T>(request: &Request<T>) -> String {
    broker_common::grpc::bearer(request)
        .unwrap_or_default()
        .to_owned()
}

/// Records an upload as aborted unless its `end` message arrived, counting every byte.
struct EndingGuard<'a> {
    double: &'a Double,
    clean: bool,
}

impl Drop for EndingGuard<'_> {
    fn drop(&mut self) {
        let ending = if self.clean {
            Ending::Clean
        } else {
            Ending::Aborted
        };
        self.double.record(|seen| seen.endings.push(ending));
    }
}

/// The service's 404 for any transfer but [`ID`], as it answers a transfer that does not exist
/// or is not the caller's.
fn known(file_transfer_id: &str) -> Result<(), Status> {
    if file_transfer_id == ID {
        return Ok(());
    }
    let problem = Problem::new(
        StatusCode::NOT_FOUND,
        "The requested file transfer was not found",
    );
    Err(problem.with_code(1).into())
}

impl Double {
    /// The one tus upload, as it stands.
    fn tus_upload(&self, partial_id: &str) -> pb::TusUpload {
        let offset = self.seen.lock().expect("not poisoned").tus_offset;
        pb::TusUpload {
            file_transfer_id: ID.to_owned(),
            partial_id: partial_id.to_owned(),
            length: TUS_LENGTH,
            offset,
            expires: if offset < TUS_LENGTH { TUS_EXPIRES } else { 0 },
            partial: !partial_id.is_empty(),
            final_partials: Vec::new(),
            metadata: "filename YS50eHQ=".to_owned(),
        }
    }
}

type DownloadStream = Pin<Box<dyn Stream<Item = Result<pb::DownloadMessage, Status>> + Send>>;

#[tonic::async_trait]
impl FileTransferService for Double {
    async fn initialize(
        &self,
        request: Request<pb::InitializeRequest>,
    ) -> Result<Response<pb::FileTransferId>, Status> {
        let token = bearer(&request);
        let message = request.into_inner();
        self.record(|seen| {
            seen.bearers.push(token);
            seen.initializes.push(message);
        });
        Ok(Response::new(pb::FileTransferId {
            file_transfer_id: "0b5a2d1c-8a61-4d5e-9d7e-1f2a3b4c5d6e".to_owned(),
        }))
    }

    async fn upload(
        &self,
        request: Request<Streaming<pb::UploadMessage>>,
    ) -> Result<Response<pb::FileTransferId>, Status> {
        let token = bearer(&request);
        self.record(|seen| seen.bearers.push(token));
        let mut guard = EndingGuard {
            double: self,
            clean: false,
        };
        let mut stream = request.into_inner();
        let mut id = String::new();
        let mut spool = false;
        let mut received = 0;
        while let Some(message) = stream.message().await? {
            match message.message {
                Some(pb::upload_message::Message::Start(start)) => {
                    id = start.file_transfer_id.clone();
                    spool = start.spool;
                    self.record(|seen| seen.starts.push(*start));
                }
                Some(pb::upload_message::Message::Chunk(chunk)) => {
                    received += chunk.len() as u64;
                    self.record(|seen| {
                        seen.chunk_sizes.push(chunk.len());
                        seen.bytes += chunk.len() as u64;
                    });
                }
                Some(pb::upload_message::Message::End(end)) => {
                    guard.clean = end.total_bytes == received;
                }
                Some(pb::upload_message::Message::Initialize(initialize)) => {
                    self.record(|seen| seen.trailers.push(*initialize));
                    spool = false;
                    id = ID.to_owned();
                }
                None => return Err(Status::invalid_argument("an empty message")),
            }
        }
        if !guard.clean {
            return Err(Status::aborted("the upload ended without its end message"));
        }
        if spool {
            return Err(Status::aborted(
                "the spooled upload ended without its initialize",
            ));
        }
        Ok(Response::new(pb::FileTransferId {
            file_transfer_id: id,
        }))
    }

    type DownloadStream = DownloadStream;

    async fn download(
        &self,
        request: Request<pb::DownloadRequest>,
    ) -> Result<Response<DownloadStream>, Status> {
        let range = request.into_inner().range;
        self.record(|seen| seen.ranges.push(range.clone()));
        // Just enough range logic to answer each kind: the tests check the gateway's rendering.
        let (first, last, partial) = match range.as_str() {
            "" => (0, FILE.len() - 1, false),
            "bytes=2-5" => (2, 5, true),
            _ => {
                let problem = Problem::new(StatusCode::RANGE_NOT_SATISFIABLE, "beyond the end");
                return Err(problem.with_code(29).into());
            }
        };
        let header = pb::DownloadMessage {
            message: Some(pb::download_message::Message::Header(Box::new(
                pb::DownloadHeader {
                    total_size: FILE.len() as u64,
                    first_byte: first as u64,
                    last_byte: last as u64,
                    partial,
                    file_name: FILE_NAME.to_owned(),
                },
            ))),
        };
        let chunks = FILE[first..=last]
            .chunks(3)
            .map(|chunk| pb::DownloadMessage {
                message: Some(pb::download_message::Message::Chunk(
                    Bytes::copy_from_slice(chunk),
                )),
            });
        let messages: Vec<_> = std::iter::once(header).chain(chunks).map(Ok).collect();
        Ok(Response::new(Box::pin(futures::stream::iter(messages))))
    }

    async fn get_overview(
        &self,
        _: Request<pb::GetFileTransferRequest>,
    ) -> Result<Response<pb::FileTransferOverview>, Status> {
        Ok(Response::new(pb::FileTransferOverview {
            file_transfer_id: "0b5a2d1c-8a61-4d5e-9d7e-1f2a3b4c5d6e".to_owned(),
            resource_id: "broker-demo".to_owned(),
            file_transfer_status: "Published".to_owned(),
            recipients: vec![pb::RecipientStatus {
                recipient: "0192:986252932".to_owned(),
                current_recipient_file_transfer_status_code: "Initialized".to_owned(),
                ..Default::default()
            }],
            ..Default::default()
        }))
    }

    async fn get_details(
        &self,
        _: Request<pb::GetFileTransferRequest>,
    ) -> Result<Response<pb::FileTransferStatusDetails>, Status> {
        Err(Status::unimplemented("not needed"))
    }

    async fn search(
        &self,
        request: Request<pb::SearchRequest>,
    ) -> Result<Response<pb::SearchResponse>, Status> {
        self.record(|seen| seen.searches.push(request.into_inner()));
        Ok(Response::new(pb::SearchResponse {
            file_transfer_ids: vec![ID.to_owned()],
        }))
    }

    async fn confirm_download(
        &self,
        _: Request<pb::GetFileTransferRequest>,
    ) -> Result<Response<pb::ConfirmDownloadResponse>, Status> {
        Err(Status::unimplemented("not needed"))
    }

    async fn register_service_owner(
        &self,
        _: Request<pb::RegisterServiceOwnerRequest>,
    ) -> Result<Response<pb::ServiceOwnerSettings>, Status> {
        Err(Status::unimplemented("not needed"))
    }

    async fn get_service_owner(
        &self,
        _: Request<pb::GetServiceOwnerRequest>,
    ) -> Result<Response<pb::ServiceOwnerSettings>, Status> {
        Err(Status::unimplemented("not needed"))
    }

    async fn put_resource_settings(
        &self,
        _: Request<pb::PutResourceSettingsRequest>,
    ) -> Result<Response<pb::ResourceSettings>, Status> {
        Err(Status::unimplemented("not needed"))
    }

    async fn get_resource_settings(
        &self,
        _: Request<pb::GetResourceSettingsRequest>,
    ) -> Result<Response<pb::ResourceSettings>, Status> {
        Err(Status::unimplemented("not needed"))
    }

    async fn report_malware_scan(
        &self,
        request: Request<pb::MalwareScanResult>,
    ) -> Result<Response<pb::MalwareScanAck>, Status> {
        self.record(|seen| seen.scan_results.push(request.into_inner()));
        Ok(Response::new(pb::MalwareScanAck {}))
    }

    async fn tus_create(
        &self,
        request: Request<pb::TusCreateRequest>,
    ) -> Result<Response<pb::TusUpload>, Status> {
        let token = bearer(&request);
        let message = request.into_inner();
        known(&message.file_transfer_id)?;
        let partial_id = if message.partial { PARTIAL_ID } else { "" };
        self.record(|seen| {
            seen.bearers.push(token);
            seen.tus_creates.push(message);
        });
        Ok(Response::new(self.tus_upload(partial_id)))
    }

    async fn tus_get(
        &self,
        request: Request<pb::TusUploadRef>,
    ) -> Result<Response<pb::TusUpload>, Status> {
        let reference = request.into_inner();
        known(&reference.file_transfer_id)?;
        Ok(Response::new(self.tus_upload(&reference.partial_id)))
    }

    /// Appends at the one upload's offset: another offset is Altinn's 409, and a digest of
    /// zeros stands for one that does not match the bytes (460, nothing kept).
    async fn tus_patch(
        &self,
        request: Request<Streaming<pb::UploadMessage>>,
    ) -> Result<Response<pb::TusUpload>, Status> {
        let token = bearer(&request);
        self.record(|seen| seen.bearers.push(token));
        let mut stream = request.into_inner();
        let Some(pb::upload_message::Message::Start(start)) =
            stream.message().await?.and_then(|message| message.message)
        else {
            return Err(Status::invalid_argument("no start message"));
        };
        known(&start.file_transfer_id)?;
        let tus = start.tus.unwrap_or_default();
        self.record(|seen| seen.tus_patches.push(tus.clone()));
        let offset = self.seen.lock().expect("not poisoned").tus_offset;
        if tus.offset != offset {
            let text = format!(
                "Offset does not match file. File offset: {offset}. Request offset: {}",
                tus.offset
            );
            return Err(Problem::new(StatusCode::CONFLICT, text).into());
        }
        let mut bytes = Vec::new();
        while let Some(message) = stream.message().await? {
            match message.message {
                Some(pb::upload_message::Message::Chunk(chunk)) => bytes.extend_from_slice(&chunk),
                Some(pb::upload_message::Message::End(_)) => break,
                _ => return Err(Status::invalid_argument("not a chunk")),
            }
        }
        if !tus.checksum.is_empty() && tus.checksum.iter().all(|byte| *byte == 0) {
            let problem = Problem::new(
                StatusCode::from_u16(460).expect("a status"),
                "Header Upload-Checksum does not match the checksum of the file",
            );
            return Err(problem.into());
        }
        self.record(|seen| seen.tus_offset += bytes.len() as u64);
        Ok(Response::new(self.tus_upload(&tus.partial_id)))
    }

    async fn tus_terminate(
        &self,
        request: Request<pb::TusUploadRef>,
    ) -> Result<Response<pb::TusTerminated>, Status> {
        let reference = request.into_inner();
        known(&reference.file_transfer_id)?;
        self.record(|seen| seen.tus_terminations.push(reference));
        Ok(Response::new(pb::TusTerminated {}))
    }

    async fn tus_max_size(
        &self,
        request: Request<pb::TusUploadRef>,
    ) -> Result<Response<pb::TusMaxSizeResponse>, Status> {
        known(&request.into_inner().file_transfer_id)?;
        Ok(Response::new(pb::TusMaxSizeResponse {
            max_size: TUS_MAX_SIZE,
        }))
    }

    /// Two rows of the month asked for; the second's resource needs quoting in a CSV.
    async fn monthly_statistics(
        &self,
        request: Request<pb::MonthlyStatisticsRequest>,
    ) -> Result<Response<pb::MonthlyStatisticsResponse>, Status> {
        let request = request.into_inner();
        let response = pb::MonthlyStatisticsResponse {
            year: request.year,
            month: u32::try_from(request.month).unwrap_or_default(),
            resource_id: request.resource_id.clone(),
            rows: STATISTICS_ROWS
                .iter()
                .map(|(resource_id, counts)| pb::MonthlyStatisticsRow {
                    resource_id: (*resource_id).to_owned(),
                    sender_vendor: String::new(),
                    recipient_vendor: "0192:986252932".to_owned(),
                    sender: "0192:991825827".to_owned(),
                    recipient: "0192:986252932".to_owned(),
                    total_file_transfers: counts[0],
                    upload_count: counts[1],
                    total_transfer_download_attempts: counts[2],
                    transfers_with_download_confirmed: counts[3],
                })
                .collect(),
        };
        self.record(|seen| seen.statistics.push(request));
        Ok(Response::new(response))
    }
}
