//! The Altinn Broker v1 API: `/broker/api/v1/filetransfer…`, the service-owner and resource
//! settings, the monthly statistics and the malware-scan-result webhook, forwarded to the
//! file-transfer service.
//!
//! The gateway checks the token and its scope (write for senders, read for recipients, either for
//! overview, details and search, `altinn:serviceowner` for settings) and the shape of the
//! request; the service verifies the forwarded token again and decides everything else
//! (ownership, statuses, limits). Byte streams pass through without being buffered
//! (`upload`, `multipart`, `download`, and the resumable uploads of `tus`); the wire format
//! lives in `wire`.

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, State};
use axum::middleware::from_fn;
use axum::routing::{get, post};
use axum::{Json, extract::rejection::PathRejection};
use broker_common::Problem;
use broker_proto::filetransfer as pb;
use http::request::Parts;
use http::{HeaderValue, StatusCode};

use crate::auth::{Authorized, Policy};
use crate::binding::ApiJson;
use crate::clients::forward;
use crate::negotiation;
use crate::routes::openapi::ProblemDetails;
use crate::state::AppState;

pub mod download;
pub mod malware;
pub mod multipart;
mod refused;
pub mod search;
pub mod settings;
pub mod statistics;
pub mod tus;
pub mod upload;
pub mod wire;

use wire::{
    FileTransferIdBody, FileTransferInitialize, FileTransferOverview, FileTransferStatusDetails,
};

/// Scope of sender operations.
const WRITE: &str = "altinn:broker.write";
/// Scope of recipient operations.
const READ: &str = "altinn:broker.read";
/// Scope of service-owner and resource settings.
const SERVICE_OWNER: &str = "altinn:serviceowner";

/// Where file transfers live.
const BASE: &str = "/broker/api/v1/filetransfer";

/// Altinn's `Sender` policy.
pub struct Sender;
impl Policy for Sender {
    const SCOPES: &'static [&'static str] = &[WRITE];
}

/// Altinn's `Recipient` policy.
pub struct Recipient;
impl Policy for Recipient {
    const SCOPES: &'static [&'static str] = &[READ];
}

/// Altinn's `SenderOrRecipient` policy.
pub struct SenderOrRecipient;
impl Policy for SenderOrRecipient {
    const SCOPES: &'static [&'static str] = &[READ, WRITE];
}

/// Altinn's `ServiceOwner` policy.
pub struct ServiceOwner;
impl Policy for ServiceOwner {
    const SCOPES: &'static [&'static str] = &[SERVICE_OWNER];
}

/// The search: Altinn's `SenderOrRecipient`, and the service owner's view (ours,
/// `role=ServiceOwner`).
pub struct Searcher;
impl Policy for Searcher {
    const SCOPES: &'static [&'static str] = &[READ, WRITE, SERVICE_OWNER];
}

/// JSON bodies here are small; a larger one is refused (413) before it is buffered.
const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// The file transfer, settings and statistics routes.
pub fn routes() -> Router<AppState> {
    let produces_json = || from_fn(negotiation::produces_json);
    let json = Router::new()
        .route(
            BASE,
            post(initialize)
                .get(search::search)
                .route_layer(produces_json()),
        )
        .route(
            &format!("{BASE}/{{fileTransferId}}"),
            get(overview).route_layer(produces_json()),
        )
        .route(
            &format!("{BASE}/{{fileTransferId}}/details"),
            get(details).route_layer(produces_json()),
        )
        .route(
            &format!("{BASE}/{{fileTransferId}}/download"),
            get(download::download),
        )
        .route(
            &format!("{BASE}/{{fileTransferId}}/confirmdownload"),
            post(confirm_download).route_layer(produces_json()),
        )
        .route(
            "/broker/api/v1/webhooks/malwarescanresults",
            post(malware::malware_scan_result).route_layer(from_fn(negotiation::consumes_json)),
        )
        .merge(settings::routes())
        .merge(statistics::routes())
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT));
    // The service enforces each resource's size limit while the bytes stream through.
    let bytes = Router::new()
        .route(
            &format!("{BASE}/{{fileTransferId}}/upload"),
            post(upload::upload)
                .route_layer(produces_json())
                .route_layer(from_fn(negotiation::consumes_octet_stream)),
        )
        .route(
            &format!("{BASE}/upload"),
            post(multipart::initialize_and_upload)
                .route_layer(produces_json())
                .route_layer(from_fn(negotiation::consumes_form)),
        )
        .layer(DefaultBodyLimit::disable())
        .layer(from_fn(refused::drain_refused));
    json.merge(bytes).merge(tus::routes())
}

/// A file transfer id from the path, validated as a UUID and written in its hyphenated form.
#[derive(Debug)]
pub struct TransferId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for TransferId {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection: PathRejection| {
                Problem::new(rejection.status(), rejection.body_text())
            })?;
        uuid::Uuid::parse_str(&id)
            .map(|uuid| Self(uuid.hyphenated().to_string()))
            .map_err(|_| Problem::invalid_field("fileTransferId", format!("{id:?} is not a UUID")))
    }
}

/// Declares a file transfer; the file is uploaded next.
#[utoipa::path(post, path = "/broker/api/v1/filetransfer", tag = "filetransfer",
    security(("bearer" = ["altinn:broker.write"])),
    request_body = FileTransferInitialize,
    responses(
        (status = 200, description = "The new file transfer", body = FileTransferIdBody),
        (status = 400, description = "A field is missing or invalid", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token (no body); or the \
            caller may not act for the party (a problem, code 6)",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing, or the caller may not send on the \
            resource", body = ProblemDetails),
        (status = 413, description = "The body exceeds 1 MiB", body = ProblemDetails),
        (status = 415, description = "The body is not JSON", body = ProblemDetails),
    ))]
pub async fn initialize(
    State(state): State<AppState>,
    caller: Authorized<Sender>,
    ApiJson(body): ApiJson<FileTransferInitialize>,
) -> Result<Json<FileTransferIdBody>, Problem> {
    let mut client = state.clients.filetransfer();
    let id = forward(
        &caller,
        &[WRITE],
        |principal| body.into_request(Some(principal)),
        |request| client.initialize(request),
    )
    .await?;
    Ok(Json(id.into()))
}

/// A file transfer and its recipients' current statuses.
#[utoipa::path(get, path = "/broker/api/v1/filetransfer/{fileTransferId}", tag = "filetransfer",
    security(("bearer" = ["altinn:broker.read", "altinn:broker.write"])),
    params(("fileTransferId" = uuid::Uuid, Path, description = "The file transfer's id (a UUID)")),
    responses(
        (status = 200, description = "The file transfer", body = FileTransferOverview),
        (status = 400, description = "The id is not a UUID", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token (no body); or the \
            caller may not act for the party (a problem, code 6)",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing", body = ProblemDetails),
        (status = 404, description = "No such transfer, or the caller is not a party to it",
            body = ProblemDetails),
    ))]
pub async fn overview(
    State(state): State<AppState>,
    caller: Authorized<SenderOrRecipient>,
    TransferId(file_transfer_id): TransferId,
) -> Result<Json<FileTransferOverview>, Problem> {
    let mut client = state.clients.filetransfer();
    let overview = forward(
        &caller,
        &[READ, WRITE],
        |principal| pb::GetFileTransferRequest {
            principal: Some(principal),
            file_transfer_id,
        },
        |request| client.get_overview(request),
    )
    .await?;
    Ok(Json(overview.into()))
}

/// A file transfer with its status history and each recipient's.
#[utoipa::path(get, path = "/broker/api/v1/filetransfer/{fileTransferId}/details",
    tag = "filetransfer",
    security(("bearer" = ["altinn:broker.read", "altinn:broker.write"])),
    params(("fileTransferId" = uuid::Uuid, Path, description = "The file transfer's id (a UUID)")),
    responses(
        (status = 200, description = "The file transfer and its histories",
            body = FileTransferStatusDetails),
        (status = 400, description = "The id is not a UUID", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token (no body); or the \
            caller may not act for the party (a problem, code 6)",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing", body = ProblemDetails),
        (status = 404, description = "No such transfer, or the caller is not a party to it",
            body = ProblemDetails),
    ))]
pub async fn details(
    State(state): State<AppState>,
    caller: Authorized<SenderOrRecipient>,
    TransferId(file_transfer_id): TransferId,
) -> Result<Json<FileTransferStatusDetails>, Problem> {
    let mut client = state.clients.filetransfer();
    let details = forward(
        &caller,
        &[READ, WRITE],
        |principal| pb::GetFileTransferRequest {
            principal: Some(principal),
            file_transfer_id,
        },
        |request| client.get_details(request),
    )
    .await?;
    Ok(Json(details.into()))
}

/// Confirms the caller, a recipient, has downloaded the file (again 204 when confirmed already).
#[utoipa::path(post, path = "/broker/api/v1/filetransfer/{fileTransferId}/confirmdownload",
    tag = "filetransfer",
    security(("bearer" = ["altinn:broker.read"])),
    params(("fileTransferId" = uuid::Uuid, Path, description = "The file transfer's id (a UUID)")),
    responses(
        (status = 204, description = "Confirmed"),
        (status = 400, description = "The id is not a UUID, the transfer is not Published, or \
            the caller has not started a download", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token (no body); or the \
            caller may not act for the party (a problem, code 6)",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing", body = ProblemDetails),
        (status = 404, description = "No such transfer, or the caller is not a recipient",
            body = ProblemDetails),
    ))]
pub async fn confirm_download(
    State(state): State<AppState>,
    caller: Authorized<Recipient>,
    TransferId(file_transfer_id): TransferId,
) -> Result<StatusCode, Problem> {
    let mut client = state.clients.filetransfer();
    forward(
        &caller,
        &[READ],
        |principal| pb::GetFileTransferRequest {
            principal: Some(principal),
            file_transfer_id,
        },
        |request| client.confirm_download(request),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `Content-Disposition` of a file answer, written as ASP.NET's `File(…, fileName)` writes it
/// for Altinn's downloads and reports: `attachment; filename=<name>; filename*=UTF-8''<name>`,
/// where `filename` is the name with every character outside printable ASCII replaced by `_`
/// (one per UTF-16 unit), quoted only when it is not an HTTP token, and `filename*` is the exact
/// name in RFC 5987 encoding. Just `attachment` without a name.
pub(crate) fn attachment(file_name: &str) -> HeaderValue {
    if file_name.is_empty() {
        return HeaderValue::from_static("attachment");
    }
    let ascii: String = file_name
        .chars()
        .flat_map(|c| {
            let kept = if matches!(c, ' '..='~') { c } else { '_' };
            std::iter::repeat_n(kept, if kept == c { 1 } else { c.len_utf16() })
        })
        .collect();
    // ASP.NET keeps a name already in quotes as one quoted string.
    let (inner, quoted) = match ascii.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => (inner, true),
        None => (ascii.as_str(), false),
    };
    let fallback = if quoted || !is_token(inner) {
        format!("\"{}\"", inner.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        inner.to_owned()
    };
    let mut encoded = String::with_capacity(file_name.len() * 3);
    for byte in file_name.bytes() {
        // RFC 5987 §3.2.1 attr-char: letters, digits and `!#$&+-.^_`|~` stay as they are.
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    HeaderValue::try_from(format!(
        "attachment; filename={fallback}; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or(HeaderValue::from_static("attachment"))
}

/// Whether `text` is an HTTP token (RFC 9110 §5.6.2).
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_written_as_asp_net_writes_them() {
        assert_eq!(
            attachment("monthly_statistics_all-resources_2026-01.csv"),
            "attachment; filename=monthly_statistics_all-resources_2026-01.csv; \
             filename*=UTF-8''monthly_statistics_all-resources_2026-01.csv"
        );
        assert_eq!(
            attachment("rapport 2026 æøå.pdf"),
            "attachment; filename=\"rapport 2026 ___.pdf\"; \
             filename*=UTF-8''rapport%202026%20%C3%A6%C3%B8%C3%A5.pdf"
        );
        assert_eq!(
            attachment("a\"b\\c;d.txt"),
            "attachment; filename=\"a\\\"b\\\\c;d.txt\"; filename*=UTF-8''a%22b%5Cc%3Bd.txt"
        );
        assert_eq!(
            attachment("\"quoted\""),
            "attachment; filename=\"quoted\"; filename*=UTF-8''%22quoted%22"
        );
        assert_eq!(
            attachment("😀.txt"),
            "attachment; filename=__.txt; filename*=UTF-8''%F0%9F%98%80.txt"
        );
        assert_eq!(attachment(""), "attachment");
    }
}
