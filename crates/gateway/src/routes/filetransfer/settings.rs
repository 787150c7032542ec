//! Service-owner and resource settings (`/broker/api/v1/serviceowner`,
//! `/broker/api/v1/resource/{resourceId}`), for service owners (`altinn:serviceowner`). The
//! service checks ownership against the access registry.

use axum::extract::{Path, State};
use axum::handler::Handler;
use axum::middleware::from_fn;
use axum::routing::{get, post};
use axum::{Json, Router};
use broker_common::Problem;
use broker_proto::filetransfer as pb;
use http::StatusCode;

use super::wire::{
    ResourceSettingsOverview, ResourceSettingsUpdate, ServiceOwnerInitialize, ServiceOwnerOverview,
};
use super::{SERVICE_OWNER, ServiceOwner};
use crate::auth::Authorized;
use crate::binding::{ApiJson, ResourceId};
use crate::clients::forward;
use crate::negotiation;
use crate::routes::openapi::ProblemDetails;
use crate::state::AppState;

/// The settings routes.
pub fn routes() -> Router<AppState> {
    let produces_json = || from_fn(negotiation::produces_json);
    Router::new()
        .route(
            "/broker/api/v1/serviceowner",
            post(register_service_owner).get(get_service_owner.layer(produces_json())),
        )
        .route(
            "/broker/api/v1/resource/{resourceId}",
            get(get_resource_settings)
                .put(put_resource_settings.layer(from_fn(negotiation::consumes_json)))
                .route_layer(produces_json()),
        )
}

/// Registers the caller's organisation as a service owner and provisions its storage.
#[utoipa::path(post, path = "/broker/api/v1/serviceowner", tag = "broker-settings",
    security(("bearer" = ["altinn:serviceowner"])),
    request_body = ServiceOwnerInitialize,
    responses(
        (status = 200, description = "Registered (no body)"),
        (status = 400, description = "A field is missing or invalid", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing", body = ProblemDetails),
        (status = 409, description = "The caller is a service owner already (code 7002)",
            body = ProblemDetails),
    ))]
pub async fn register_service_owner(
    State(state): State<AppState>,
    caller: Authorized<ServiceOwner>,
    ApiJson(body): ApiJson<ServiceOwnerInitialize>,
) -> Result<StatusCode, Problem> {
    let mut client = state.clients.filetransfer();
    forward(
        &caller,
        &[SERVICE_OWNER],
        |principal| pb::RegisterServiceOwnerRequest {
            principal: Some(principal),
            name: body.name.unwrap_or_default(),
        },
        |request| client.register_service_owner(request),
    )
    .await?;
    Ok(StatusCode::OK)
}

/// The caller's service-owner settings and storage.
#[utoipa::path(get, path = "/broker/api/v1/serviceowner", tag = "broker-settings",
    security(("bearer" = ["altinn:serviceowner"])),
    responses(
        (status = 200, description = "The service owner", body = ServiceOwnerOverview),
        (status = 401, description = "No, an expired, or an untrusted token",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing", body = ProblemDetails),
        (status = 404, description = "The caller is not a service owner", body = ProblemDetails),
    ))]
pub async fn get_service_owner(
    State(state): State<AppState>,
    caller: Authorized<ServiceOwner>,
) -> Result<Json<ServiceOwnerOverview>, Problem> {
    let mut client = state.clients.filetransfer();
    let owner = forward(
        &caller,
        &[SERVICE_OWNER],
        |principal| pb::GetServiceOwnerRequest {
            principal: Some(principal),
        },
        |request| client.get_service_owner(request),
    )
    .await?;
    Ok(Json(owner.into()))
}

/// Configures a resource the caller owns for file transfers; absent fields keep their values.
#[utoipa::path(put, path = "/broker/api/v1/resource/{resourceId}", tag = "broker-settings",
    security(("bearer" = ["altinn:serviceowner"])),
    params(("resourceId" = String, Path, description = "The resource")),
    request_body = ResourceSettingsUpdate,
    responses(
        (status = 204, description = "Stored"),
        (status = 400, description = "A setting is invalid", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token (no body); or the \
            caller may not act for the party (a problem, code 6)",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing or the caller does not own it",
            body = ProblemDetails),
        (status = 404, description = "No such resource", body = ProblemDetails),
    ))]
pub async fn put_resource_settings(
    State(state): State<AppState>,
    caller: Authorized<ServiceOwner>,
    Path(resource_id): Path<String>,
    ApiJson(body): ApiJson<ResourceSettingsUpdate>,
) -> Result<StatusCode, Problem> {
    let (settings, present_fields) = body.into_settings(ResourceId::new(&resource_id).0)?;
    let mut client = state.clients.filetransfer();
    forward(
        &caller,
        &[SERVICE_OWNER],
        |principal| pb::PutResourceSettingsRequest {
            principal: Some(principal),
            settings: Some(settings),
            present_fields,
        },
        |request| client.put_resource_settings(request),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A resource's file-transfer settings.
#[utoipa::path(get, path = "/broker/api/v1/resource/{resourceId}", tag = "broker-settings",
    security(("bearer" = ["altinn:serviceowner"])),
    params(("resourceId" = String, Path, description = "The resource")),
    responses(
        (status = 200, description = "The settings", body = ResourceSettingsOverview),
        (status = 401, description = "No, an expired, or an untrusted token (no body); or the \
            caller may not act for the party (a problem, code 6)",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing or the caller does not own it",
            body = ProblemDetails),
        (status = 404, description = "No such resource", body = ProblemDetails),
    ))]
pub async fn get_resource_settings(
    State(state): State<AppState>,
    caller: Authorized<ServiceOwner>,
    Path(resource_id): Path<String>,
) -> Result<Json<ResourceSettingsOverview>, Problem> {
    let mut client = state.clients.filetransfer();
    let settings = forward(
        &caller,
        &[SERVICE_OWNER],
        |principal| pb::GetResourceSettingsRequest {
            principal: Some(principal),
            resource_id: ResourceId::new(&resource_id).0,
        },
        |request| client.get_resource_settings(request),
    )
    .await?;
    Ok(Json(settings.into()))
}
