//! The resumable-upload (tus) calls: requests to [`FileTransferCore`]'s tus operations, and
//! uploads back as messages. Tokens here may have expired within the grace period; the core
//! then accepts them only from the upload's own creator.

use broker_common::auth::{Caller, Expired};
use broker_proto::filetransfer as pb;
use tonic::{Request, Response, Status, Streaming};

use super::{FileTransferGrpc, chunks, transfer_id, upload_start};
use crate::domain::error::FileTransferError;
use crate::service::{NewUpload, Patch};
use crate::store::tus::{Concat, TusRecord};

impl FileTransferGrpc {
    /// The caller of a tus call, whose token may have expired within the grace period.
    async fn tus_caller<T>(&self, request: &Request<T>) -> Result<(Caller, Expired), Status> {
        let token = broker_common::grpc::bearer(request)
            .ok_or_else(|| broker_common::Problem::unauthorized("a bearer token is required"))?;
        Ok(self
            .verifier
            .verify_within_grace(token, self.core.tus_token_grace())
            .await?)
    }
}

/// `TusCreate`.
pub(super) async fn create(
    grpc: &FileTransferGrpc,
    request: Request<pb::TusCreateRequest>,
) -> Result<Response<pb::TusUpload>, Status> {
    let (caller, expired) = grpc.tus_caller(&request).await?;
    let request = request.into_inner();
    let id = transfer_id(&request.file_transfer_id)?;
    let upload = match (
        request.final_partials.is_empty(),
        request.partial,
        request.length,
    ) {
        (false, false, _) => NewUpload::Final(request.final_partials),
        (true, true, Some(length)) => NewUpload::Partial { length },
        (true, false, Some(length)) => NewUpload::Whole { length },
        _ => {
            return Err(FileTransferError::invalid(
                "Upload-Length",
                "an upload that is not final needs its Upload-Length, and a partial one names no partials",
            )
            .into());
        }
    };
    let record = grpc
        .core
        .tus_create(&caller, expired, id, upload, request.metadata)
        .await?;
    Ok(Response::new(upload_message_of(&record)))
}

/// `TusGet`.
pub(super) async fn get(
    grpc: &FileTransferGrpc,
    request: Request<pb::TusUploadRef>,
) -> Result<Response<pb::TusUpload>, Status> {
    let (caller, expired) = grpc.tus_caller(&request).await?;
    let request = request.into_inner();
    let id = transfer_id(&request.file_transfer_id)?;
    let record = grpc
        .core
        .tus_get(&caller, expired, id, &request.partial_id)
        .await?;
    Ok(Response::new(upload_message_of(&record)))
}

/// `TusPatch`: `start` with `tus` set, chunks, then `end`.
pub(super) async fn patch(
    grpc: &FileTransferGrpc,
    request: Request<Streaming<pb::UploadMessage>>,
) -> Result<Response<pb::TusUpload>, Status> {
    let _in_flight = broker_common::metrics::upload_in_flight();
    let (caller, expired) = grpc.tus_caller(&request).await?;
    let mut messages = request.into_inner();
    let start = upload_start(&mut messages).await?;
    let tus = start.tus.ok_or_else(|| {
        FileTransferError::invalid("tus", "a tus PATCH's start names where its bytes go")
    })?;
    let patch = Patch {
        transfer: transfer_id(&start.file_transfer_id)?,
        part: tus.partial_id,
        offset: tus.offset,
        checksum: (!tus.checksum_algorithm.is_empty())
            .then(|| (tus.checksum_algorithm, tus.checksum.to_vec())),
    };
    let record = grpc
        .core
        .tus_patch(&caller, expired, patch, chunks(messages, None))
        .await?;
    Ok(Response::new(upload_message_of(&record)))
}

/// `TusTerminate`.
pub(super) async fn terminate(
    grpc: &FileTransferGrpc,
    request: Request<pb::TusUploadRef>,
) -> Result<Response<pb::TusTerminated>, Status> {
    let (caller, expired) = grpc.tus_caller(&request).await?;
    let request = request.into_inner();
    let id = transfer_id(&request.file_transfer_id)?;
    grpc.core
        .tus_terminate(&caller, expired, id, &request.partial_id)
        .await?;
    Ok(Response::new(pb::TusTerminated {}))
}

/// `TusMaxSize`.
pub(super) async fn max_size(
    grpc: &FileTransferGrpc,
    request: Request<pb::TusUploadRef>,
) -> Result<Response<pb::TusMaxSizeResponse>, Status> {
    let (caller, _) = grpc.tus_caller(&request).await?;
    let id = transfer_id(&request.get_ref().file_transfer_id)?;
    let max_size = grpc.core.tus_max_size(&caller, id).await?;
    Ok(Response::new(pb::TusMaxSizeResponse { max_size }))
}

/// An upload as the gateway answers it.
fn upload_message_of(record: &TusRecord) -> pb::TusUpload {
    let complete = record.complete();
    pb::TusUpload {
        file_transfer_id: record.transfer_id.to_string(),
        partial_id: record.part.clone(),
        length: record.length,
        offset: record.offset,
        expires: if complete {
            0
        } else {
            record.expires.timestamp()
        },
        partial: record.concat == Concat::Partial,
        final_partials: match &record.concat {
            Concat::Final(partials) => partials.clone(),
            _ => Vec::new(),
        },
        metadata: record.metadata.clone(),
    }
}
