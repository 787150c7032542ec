//! Resumable uploads (tus 1.0, issue 16) at `/broker/api/v1/filetransfer/upload/tus/{id}` (the
//! transfer's own upload: its tus id is the transfer id) and `…/{id}/partial/{partialId}` (the
//! parts of a concatenation), forwarded to the file-transfer service's `Tus*` calls; a PATCH's
//! bytes stream through [`upload::send`] as a one-shot upload's do.
//!
//! The gateway reads the tus headers ([`headers`]) and writes the answers; the service decides
//! everything about the upload (offsets, lengths, checksums, who may write, the transfer's
//! status). The answers are tusdotnet's, as Altinn's clients know them: each carries
//! `Tus-Resumable` (but a failed authentication's 401), and an error is the bare text of its
//! problem (`text/plain`, never problem+json; no body on HEAD).
//!
//! A request the gateway refuses itself (a missing `Tus-Resumable`, a header it cannot read) is
//! first checked against the transfer, as Altinn's authorization hook runs before tusdotnet
//! reads the request: a caller who may not see the transfer gets the service's 404 (or 401)
//! whatever else is wrong, and learns nothing else (DESIGN invariant 3). The check costs a call
//! only on a refusal.

mod headers;
#[cfg(test)]
mod proptests;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Response};
use axum::routing::options;
use broker_common::{Plain, Problem};
use broker_proto::common::Principal;
use broker_proto::filetransfer as pb;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use serde::Deserialize;

pub use headers::{
    BASE, CHECKSUM_PATTERN, NUMBER_PATTERN, VERSION, concat_pattern, metadata_pattern,
};

use self::headers::{
    Checksum, Concat, Refusal, TUS_CHECKSUM_ALGORITHM, TUS_EXTENSION, TUS_MAX_SIZE, TUS_RESUMABLE,
    TUS_VERSION, UPLOAD_CONCAT, UPLOAD_EXPIRES, UPLOAD_LENGTH, UPLOAD_METADATA, UPLOAD_OFFSET,
};
use super::{Sender, WRITE, refused, upload};
use crate::auth::{Authenticated, Authorized, ResumableAuthorized};
use crate::clients::forward;
use crate::problem::Bare;
use crate::state::AppState;

/// The tus routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            &format!("{BASE}/{{fileTransferId}}"),
            options(tus_options)
                .post(tus_create)
                .head(tus_head)
                .patch(tus_patch)
                .delete(tus_terminate),
        )
        .route(
            &format!("{BASE}/{{fileTransferId}}/partial/{{partialId}}"),
            options(tus_options)
                .head(tus_head)
                .patch(tus_patch)
                .delete(tus_terminate),
        )
        .route_layer(from_fn(tus_resumable))
        // The service enforces the upload's length while the bytes stream through.
        .layer(DefaultBodyLimit::disable())
        .layer(from_fn(refused::drain_refused))
}

/// Puts `Tus-Resumable` on every answer but a failed authentication's (which ASP.NET answers
/// before tusdotnet sees the request).
async fn tus_resumable(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let authentication = response.status() == StatusCode::UNAUTHORIZED
        && response.extensions().get::<Bare>().is_some();
    if !authentication {
        response
            .headers_mut()
            .insert(TUS_RESUMABLE, HeaderValue::from_static(VERSION));
    }
    response
}

/// The path's parameters as sent.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadPath {
    file_transfer_id: String,
    #[serde(default)]
    partial_id: String,
}

/// The upload a tus URL names: the transfer's own (`partial_id` empty), or a partial one.
#[derive(Debug, Clone)]
struct Target {
    transfer_id: String,
    partial_id: String,
}

impl Target {
    /// The service's name of the upload, for `principal`.
    fn reference(&self, principal: Principal) -> pb::TusUploadRef {
        pb::TusUploadRef {
            principal: Some(principal),
            file_transfer_id: self.transfer_id.clone(),
            partial_id: self.partial_id.clone(),
        }
    }
}

/// Why a tus request failed.
enum Failure {
    /// The gateway refuses it (answered once the transfer is known to the caller).
    Refused(Refusal),
    /// The service did.
    Service(Problem),
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

impl From<Problem> for Failure {
    fn from(problem: Problem) -> Self {
        Self::Service(problem)
    }
}

/// An error answer as tusdotnet writes one: the text alone.
fn text(status: StatusCode, detail: String) -> Response {
    Problem {
        plain: Some(Plain::Text),
        ..Problem::new(status, detail)
    }
    .into_response()
}

/// The service's problem as tusdotnet would have answered it.
fn service_text(problem: Problem) -> Response {
    let status = problem.status_code();
    let detail = problem
        .detail
        .filter(|detail| !detail.is_empty())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("Error").to_owned());
    text(status, detail)
}

/// Runs `work` on the upload `path` names, and answers its failure as the module docs say.
async fn respond<W, F>(
    state: &AppState,
    caller: &Authenticated,
    path: Result<Path<UploadPath>, PathRejection>,
    work: W,
) -> Response
where
    W: FnOnce(Target) -> F,
    F: Future<Output = Result<Response, Failure>>,
{
    let not_found = || refusal_answer(&Refusal::NotFound);
    let Ok(Path(path)) = path else {
        return not_found();
    };
    let Ok(transfer_id) = headers::transfer_id(&path.file_transfer_id) else {
        return not_found();
    };
    let partial_id = match path.partial_id.as_str() {
        "" => Ok(String::new()),
        partial => headers::partial_id(partial),
    };
    let result = match partial_id {
        Ok(partial_id) => {
            let target = Target {
                transfer_id: transfer_id.clone(),
                partial_id,
            };
            work(target).await
        }
        Err(refusal) => Err(refusal.into()),
    };
    match result {
        Ok(response) => response,
        Err(Failure::Service(problem)) => service_text(problem),
        Err(Failure::Refused(refusal)) => match max_size(state, caller, &transfer_id).await {
            Err(problem) if matches!(problem.status, 401 | 403 | 404) => service_text(problem),
            _ => refusal_answer(&refusal),
        },
    }
}

/// The gateway's own refusal; a 412 names the version this server speaks.
fn refusal_answer(refusal: &Refusal) -> Response {
    let mut response = text(refusal.status(), refusal.to_string());
    if matches!(refusal, Refusal::Version(_)) {
        set(&mut response, TUS_VERSION, VERSION);
    }
    response
}

/// The largest upload the transfer's resource allows; fails as every call on a transfer the
/// caller may not see fails.
async fn max_size(
    state: &AppState,
    caller: &Authenticated,
    transfer_id: &str,
) -> Result<u64, Problem> {
    let target = Target {
        transfer_id: transfer_id.to_owned(),
        partial_id: String::new(),
    };
    let mut client = state.clients.filetransfer();
    forward(
        caller,
        &[WRITE],
        |principal| target.reference(principal),
        |request| client.tus_max_size(request),
    )
    .await
    .map(|answer| answer.max_size)
}

/// Sets header `name` to `value` (any value that is not header text is left out).
fn set(response: &mut Response, name: HeaderName, value: impl ToString) {
    if let Ok(value) = HeaderValue::try_from(value.to_string()) {
        response.headers_mut().insert(name, value);
    }
}

/// Sets `Upload-Expires` from the service's Unix seconds; an upload that no longer expires
/// (complete) has none.
fn set_expires(response: &mut Response, expires: i64) {
    if let Some(date) = (expires > 0).then(|| headers::http_date(expires)).flatten() {
        set(response, UPLOAD_EXPIRES, date);
    }
}

/// Writes `body` at `offset` of `target` (the service's `TusPatch`): the upload afterwards.
async fn write(
    state: &AppState,
    caller: &Authenticated,
    target: &Target,
    offset: u64,
    checksum: Option<Checksum>,
    headers: &HeaderMap,
    body: Body,
) -> Result<pb::TusUpload, Problem> {
    let declared_length = upload::declared_length(headers);
    let (checksum_algorithm, checksum) = checksum.map_or_else(Default::default, |checksum| {
        (checksum.algorithm.name().to_owned(), checksum.digest.into())
    });
    let messages = |principal| {
        let start = pb::UploadStart {
            principal: Some(principal),
            file_transfer_id: target.transfer_id.clone(),
            declared_length,
            tus: Some(pb::TusPatchStart {
                partial_id: target.partial_id.clone(),
                offset,
                checksum_algorithm,
                checksum,
            }),
            ..pb::UploadStart::default()
        };
        (start, futures::stream::empty())
    };
    upload::send(
        state,
        caller,
        messages,
        body.into_data_stream(),
        |mut client, request| async move { client.tus_patch(request).await },
    )
    .await
}

/// What the server supports (tus OPTIONS), with the largest upload the transfer allows.
#[utoipa::path(options, path = "/broker/api/v1/filetransfer/upload/tus/{fileTransferId}",
    tag = "filetransfer",
    security(("bearer" = ["altinn:broker.write"])),
    params(("fileTransferId" = uuid::Uuid, Path, description = "The file transfer's id")),
    responses(
        (status = 204, description = "What the server supports",
            headers(
                ("Tus-Version" = String, description = "`1.0.0`"),
                ("Tus-Extension" = String, description = "`creation,creation-with-upload,\
                    termination,checksum,concatenation,expiration`"),
                ("Tus-Checksum-Algorithm" = String, description = "`md5,sha1,sha256`"),
                ("Tus-Max-Size" = String, description = "The largest file the transfer's \
                    resource allows, in bytes (left out when the transfer is not the caller's)"),
                ("Tus-Resumable" = String, description = "`1.0.0`"),
            )),
        (status = 401, description = "No, an expired, or an untrusted token (no body)"),
        (status = 403, description = "The scope is missing (no body)"),
    ))]
pub async fn tus_options(
    State(state): State<AppState>,
    caller: Authorized<Sender>,
    path: Result<Path<UploadPath>, PathRejection>,
) -> Response {
    let transfer_id = path
        .ok()
        .and_then(|Path(path)| headers::transfer_id(&path.file_transfer_id).ok());
    let max_size = match transfer_id {
        Some(transfer_id) => max_size(&state, &caller, &transfer_id).await.ok(),
        None => None,
    };
    let mut response = StatusCode::NO_CONTENT.into_response();
    set(&mut response, TUS_VERSION, VERSION);
    set(&mut response, TUS_EXTENSION, headers::EXTENSIONS);
    set(
        &mut response,
        TUS_CHECKSUM_ALGORITHM,
        headers::CHECKSUM_ALGORITHMS,
    );
    if let Some(max_size) = max_size {
        set(&mut response, TUS_MAX_SIZE, max_size);
    }
    response
}

/// Creates the transfer's upload, a partial upload of it, or the final upload that joins its
/// partials and publishes the transfer (tus creation and concatenation); with bytes
/// (`application/offset+octet-stream`), writes them at offset 0 too (creation-with-upload).
#[utoipa::path(post, path = "/broker/api/v1/filetransfer/upload/tus/{fileTransferId}",
    tag = "filetransfer",
    security(("bearer" = ["altinn:broker.write"])),
    params(
        ("fileTransferId" = uuid::Uuid, Path, description = "The file transfer's id"),
        ("Tus-Resumable" = String, Header, description = "`1.0.0`"),
        ("Upload-Length" = Option<String>, Header, description = "The upload's length in bytes; \
            required but for `Upload-Concat: final;…`"),
        ("Upload-Metadata" = Option<String>, Header, description = "`key base64,key base64,…` \
            with unique keys; kept and answered by HEAD"),
        ("Upload-Concat" = Option<String>, Header, description = "`partial`, or `final;` and the \
            partial uploads' URLs (or paths) of this transfer, space-separated, in file order"),
        ("Upload-Checksum" = Option<String>, Header, description = "`<md5|sha1|sha256> \
            <base64 digest>` of the bytes sent with the creation"),
    ),
    request_body(content = inline(crate::routes::openapi::FileBytes),
        content_type = "application/offset+octet-stream",
        description = "Optional: the upload's first bytes (creation-with-upload)"),
    responses(
        (status = 201, description = "Created (a final upload: joined and the transfer \
            published)",
            headers(
                ("Location" = String, description = "The upload's URL path: \
                    `…/tus/{fileTransferId}`, or `…/tus/{fileTransferId}/partial/{partialId}`"),
                ("Upload-Expires" = String, description = "When the upload expires unless more \
                    bytes come (an HTTP-date); none once complete"),
                ("Upload-Offset" = String, description = "With bytes: how many are stored"),
                ("Tus-Resumable" = String, description = "`1.0.0`"),
            )),
        (status = 400, description = "A header is missing or malformed, the length exceeds the \
            resource's limit, or a partial is not complete", body = String,
            content_type = "text/plain"),
        (status = 401, description = "No, an untrusted, or a too long expired token (no body); \
            or the caller is not the transfer's sender"),
        (status = 403, description = "The scope is missing (no body)"),
        (status = 404, description = "No such transfer", body = String,
            content_type = "text/plain"),
        (status = 409, description = "The transfer is past its upload", body = String,
            content_type = "text/plain"),
        (status = 412, description = "`Tus-Resumable` is not `1.0.0`", body = String,
            content_type = "text/plain",
            headers(("Tus-Version" = String, description = "`1.0.0`"))),
    ))]
pub async fn tus_create(
    State(state): State<AppState>,
    caller: ResumableAuthorized<Sender>,
    path: Result<Path<UploadPath>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (state, caller) = (&state, &*caller);
    let headers = &headers;
    respond(state, caller, path, move |target| async move {
        let creation = headers::creation(headers, &target.transfer_id)?;
        let with_bytes = headers::carries_bytes(headers)
            && !matches!(creation.concat, Concat::Final(_))
            && upload::declared_length(headers) != Some(0);
        let (partial, final_partials) = match creation.concat {
            Concat::None => (false, Vec::new()),
            Concat::Partial => (true, Vec::new()),
            Concat::Final(partials) => (false, partials),
        };
        let mut client = state.clients.filetransfer();
        let created = forward(
            caller,
            &[WRITE],
            |principal| pb::TusCreateRequest {
                principal: Some(principal),
                file_transfer_id: target.transfer_id.clone(),
                length: creation.length,
                partial,
                final_partials,
                metadata: creation.metadata,
            },
            |request| client.tus_create(request),
        )
        .await?;
        let target = Target {
            partial_id: created.partial_id.clone(),
            ..target
        };
        let mut response = StatusCode::CREATED.into_response();
        let location = headers::location(&target.transfer_id, &target.partial_id);
        set(&mut response, header::LOCATION, location);
        let mut upload = created;
        if with_bytes {
            upload = written(
                state,
                caller,
                &target,
                &upload,
                creation.checksum,
                headers,
                body,
            )
            .await;
            set(&mut response, UPLOAD_OFFSET, upload.offset);
        } else if headers::carries_bytes(headers) {
            set(&mut response, UPLOAD_OFFSET, upload.offset);
        }
        set_expires(&mut response, upload.expires);
        Ok(response)
    })
    .await
}

/// Writes a creation's bytes: the upload afterwards. The upload exists whatever becomes of
/// them, so the client is told where it is and how far it got (and resumes from there); a
/// failed write is logged, and the offset is the durable one.
async fn written(
    state: &AppState,
    caller: &Authenticated,
    target: &Target,
    created: &pb::TusUpload,
    checksum: Option<Checksum>,
    headers: &HeaderMap,
    body: Body,
) -> pb::TusUpload {
    match write(state, caller, target, 0, checksum, headers, body).await {
        Ok(upload) => upload,
        Err(problem) => {
            tracing::info!(%problem, "the bytes of a tus creation were not all written");
            let mut client = state.clients.filetransfer();
            forward(
                caller,
                &[WRITE],
                |principal| target.reference(principal),
                |request| client.tus_get(request),
            )
            .await
            .unwrap_or_else(|_| created.clone())
        }
    }
}

/// The upload's durable offset and length (tus HEAD).
#[utoipa::path(head, path = "/broker/api/v1/filetransfer/upload/tus/{fileTransferId}",
    tag = "filetransfer",
    security(("bearer" = ["altinn:broker.write"])),
    params(
        ("fileTransferId" = uuid::Uuid, Path, description = "The file transfer's id"),
        ("Tus-Resumable" = String, Header, description = "`1.0.0`"),
    ),
    responses(
        (status = 200, description = "The upload",
            headers(
                ("Upload-Offset" = String, description = "Bytes stored durably"),
                ("Upload-Length" = String, description = "The upload's length"),
                ("Upload-Concat" = String, description = "`partial`, or `final;` and the \
                    partials' paths, for concatenation uploads"),
                ("Upload-Metadata" = String, description = "As the creation sent it, if it did"),
                ("Cache-Control" = String, description = "`no-store`"),
                ("Tus-Resumable" = String, description = "`1.0.0`"),
            )),
        (status = 401, description = "No, an untrusted, or a too long expired token; or the \
            caller is not the transfer's sender (no body)"),
        (status = 403, description = "The scope is missing (no body)"),
        (status = 404, description = "No such transfer or upload (no body)", body = String,
            content_type = "text/plain"),
        (status = 409, description = "The transfer is past its upload (no body)", body = String,
            content_type = "text/plain"),
        (status = 412, description = "`Tus-Resumable` is not `1.0.0` (no body)", body = String,
            content_type = "text/plain",
            headers(("Tus-Version" = String, description = "`1.0.0`"))),
    ))]
pub async fn tus_head(
    State(state): State<AppState>,
    caller: ResumableAuthorized<Sender>,
    path: Result<Path<UploadPath>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let (state, caller) = (&state, &*caller);
    let headers = &headers;
    let response = respond(state, caller, path, move |target| async move {
        headers::tus_resumable(headers)?;
        let mut client = state.clients.filetransfer();
        let upload = forward(
            caller,
            &[WRITE],
            |principal| target.reference(principal),
            |request| client.tus_get(request),
        )
        .await?;
        let mut response = StatusCode::OK.into_response();
        set(&mut response, UPLOAD_OFFSET, upload.offset);
        set(&mut response, UPLOAD_LENGTH, upload.length);
        set(&mut response, header::CACHE_CONTROL, "no-store");
        let concat =
            headers::concat_answer(&target.transfer_id, upload.partial, &upload.final_partials);
        if let Some(concat) = concat {
            set(&mut response, UPLOAD_CONCAT, concat);
        }
        if !upload.metadata.is_empty() {
            set(&mut response, UPLOAD_METADATA, upload.metadata);
        }
        Ok(response)
    })
    .await;
    // A HEAD answer has no body, its errors' neither; the headers stay as they are.
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::empty())
}

/// Writes the body at `Upload-Offset` (tus PATCH); the last byte completes the upload, and (for
/// the transfer's own upload) publishes the transfer before the answer.
#[utoipa::path(patch, path = "/broker/api/v1/filetransfer/upload/tus/{fileTransferId}",
    tag = "filetransfer",
    security(("bearer" = ["altinn:broker.write"])),
    params(
        ("fileTransferId" = uuid::Uuid, Path, description = "The file transfer's id"),
        ("Tus-Resumable" = String, Header, description = "`1.0.0`"),
        ("Upload-Offset" = String, Header, description = "Where the bytes go: the upload's \
            offset as HEAD answers it"),
        ("Upload-Checksum" = Option<String>, Header, description = "`<md5|sha1|sha256> \
            <base64 digest>` of this request's bytes"),
    ),
    request_body(content = inline(crate::routes::openapi::FileBytes),
        content_type = "application/offset+octet-stream",
        description = "The bytes at `Upload-Offset`"),
    responses(
        (status = 204, description = "Written (at or past the end of a complete upload: \
            nothing more)",
            headers(
                ("Upload-Offset" = String, description = "Bytes stored durably now"),
                ("Upload-Expires" = String, description = "When the upload expires unless more \
                    bytes come (an HTTP-date); none once complete"),
                ("Tus-Resumable" = String, description = "`1.0.0`"),
            )),
        (status = 400, description = "A header is missing or malformed, the body goes past the \
            upload's length or was cut short, or the file's checksum differs from the one given \
            at initialize", body = String, content_type = "text/plain"),
        (status = 401, description = "No, an untrusted, or a too long expired token (no body); \
            or the caller is not the transfer's sender, or not the client that started the \
            upload with an expired token"),
        (status = 403, description = "The scope is missing (no body)"),
        (status = 404, description = "No such transfer or upload", body = String,
            content_type = "text/plain"),
        (status = 409, description = "`Upload-Offset` is not the upload's offset, or the \
            transfer is past its upload", body = String, content_type = "text/plain"),
        (status = 412, description = "`Tus-Resumable` is not `1.0.0`", body = String,
            content_type = "text/plain",
            headers(("Tus-Version" = String, description = "`1.0.0`"))),
        (status = 415, description = "The body is not `application/offset+octet-stream`",
            body = String, content_type = "text/plain"),
        (status = 423, description = "Another request is writing the upload", body = String,
            content_type = "text/plain"),
        (status = 460, description = "`Upload-Checksum` differs from the bytes' (which are \
            discarded)", body = String, content_type = "text/plain"),
    ))]
pub async fn tus_patch(
    State(state): State<AppState>,
    caller: ResumableAuthorized<Sender>,
    path: Result<Path<UploadPath>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (state, caller) = (&state, &*caller);
    let headers = &headers;
    respond(state, caller, path, move |target| async move {
        let patch = headers::patch(headers)?;
        let upload = write(
            state,
            caller,
            &target,
            patch.offset,
            patch.checksum,
            headers,
            body,
        )
        .await?;
        let mut response = StatusCode::NO_CONTENT.into_response();
        set(&mut response, UPLOAD_OFFSET, upload.offset);
        set_expires(&mut response, upload.expires);
        Ok(response)
    })
    .await
}

/// Terminates the upload (tus DELETE): its bytes are gone, and the transfer may be uploaded
/// anew.
#[utoipa::path(delete, path = "/broker/api/v1/filetransfer/upload/tus/{fileTransferId}",
    tag = "filetransfer",
    security(("bearer" = ["altinn:broker.write"])),
    params(
        ("fileTransferId" = uuid::Uuid, Path, description = "The file transfer's id"),
        ("Tus-Resumable" = String, Header, description = "`1.0.0`"),
    ),
    responses(
        (status = 204, description = "Terminated",
            headers(("Tus-Resumable" = String, description = "`1.0.0`"))),
        (status = 401, description = "No, an untrusted, or a too long expired token (no body); \
            or the caller is not the transfer's sender"),
        (status = 403, description = "The scope is missing (no body)"),
        (status = 404, description = "No such transfer or upload", body = String,
            content_type = "text/plain"),
        (status = 409, description = "The transfer is past its upload", body = String,
            content_type = "text/plain"),
        (status = 412, description = "`Tus-Resumable` is not `1.0.0`", body = String,
            content_type = "text/plain",
            headers(("Tus-Version" = String, description = "`1.0.0`"))),
    ))]
pub async fn tus_terminate(
    State(state): State<AppState>,
    caller: ResumableAuthorized<Sender>,
    path: Result<Path<UploadPath>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let (state, caller) = (&state, &*caller);
    let headers = &headers;
    respond(state, caller, path, move |target| async move {
        headers::tus_resumable(headers)?;
        let mut client = state.clients.filetransfer();
        forward(
            caller,
            &[WRITE],
            |principal| target.reference(principal),
            |request| client.tus_terminate(request),
        )
        .await?;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}
