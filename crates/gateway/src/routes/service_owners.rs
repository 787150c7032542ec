//! The operator's service-owner registry: `/admin/v1/service-owners…`, guarded by the admin
//! credential. A service owner is an organisation (with its org code) that may own resources
//! and access lists; the access registry validates registrations and keeps them.

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::{delete, post};
use axum::{Json, Router};
use broker_common::Problem;
use broker_proto::access as pb;
use http::{StatusCode, header};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Admin;
use crate::binding::{ApiJson, ApiQuery, JsonBody};
use crate::clients::call;
use crate::routes::openapi::ProblemDetails;
use crate::routes::paging::{PageQuery, encode, next_token};
use crate::state::AppState;

/// The service-owner routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/admin/v1/service-owners",
            post(create_service_owner).get(list_service_owners),
        )
        .route(
            "/admin/v1/service-owners/{orgCode}",
            delete(delete_service_owner),
        )
}

/// A service owner, as registered and as listed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceOwner {
    /// The organisation number (nine digits).
    #[schema(example = "991825827", pattern = "^[0-9]{9}$")]
    org_number: String,
    /// The org code, unique (`skd`, `ttd`, `digdir`, …).
    #[schema(example = "digdir")]
    org_code: String,
    /// A name for people, not blank.
    #[schema(pattern = "\\S")]
    name: String,
}

impl From<pb::ServiceOwner> for ServiceOwner {
    fn from(owner: pb::ServiceOwner) -> Self {
        Self {
            org_number: owner.org_number,
            org_code: owner.org_code,
            name: owner.name,
        }
    }
}

impl From<ServiceOwner> for pb::ServiceOwner {
    fn from(owner: ServiceOwner) -> Self {
        Self {
            org_number: owner.org_number,
            org_code: owner.org_code,
            name: owner.name,
        }
    }
}

/// One page of service owners.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceOwnerPage {
    /// The service owners on this page, by org code.
    service_owners: Vec<ServiceOwner>,
    /// Pass as `pageToken` for the next page; `null` on the last one.
    next_page_token: Option<String>,
}

/// Registers a service owner.
#[utoipa::path(post, path = "/admin/v1/service-owners", tag = "admin",
    security(("admin" = [])),
    request_body = ServiceOwner,
    responses(
        (status = 201, description = "The registered service owner", body = ServiceOwner,
            headers(("Location" = String, description = "The service owner's address"))),
        (status = 400, description = "A field is missing or invalid", body = ProblemDetails),
        (status = 401, description = "No or a wrong admin credential", body = ProblemDetails),
        (status = 409, description = "The org code or organisation is registered already",
            body = ProblemDetails),
        (status = 413, description = "The body exceeds 1 MiB", body = ProblemDetails),
        (status = 415, description = "The body is not JSON", body = ProblemDetails),
    ))]
pub async fn create_service_owner(
    State(state): State<AppState>,
    admin: Admin,
    ApiJson(owner): ApiJson<ServiceOwner>,
) -> Result<impl IntoResponse, Problem> {
    let request = admin.request(pb::CreateServiceOwnerRequest {
        owner: Some(owner.into()),
    });
    let created =
        ServiceOwner::from(call(state.clients.access().create_service_owner(request)).await?);
    let location = format!("/admin/v1/service-owners/{}", encode(&created.org_code));
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(created),
    ))
}

/// Lists service owners, a page at a time.
#[utoipa::path(get, path = "/admin/v1/service-owners", tag = "admin",
    security(("admin" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of service owners", body = ServiceOwnerPage),
        (status = 401, description = "No or a wrong admin credential", body = ProblemDetails),
    ))]
pub async fn list_service_owners(
    State(state): State<AppState>,
    admin: Admin,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<ServiceOwnerPage>, Problem> {
    let request = admin.request(pb::ListServiceOwnersRequest {
        page: page.request(),
    });
    let listed = call(state.clients.access().list_service_owners(request)).await?;
    Ok(Json(ServiceOwnerPage {
        service_owners: listed.owners.into_iter().map(Into::into).collect(),
        next_page_token: next_token(listed.page),
    }))
}

/// Deletes a service owner that no longer owns resources or access lists.
#[utoipa::path(delete, path = "/admin/v1/service-owners/{orgCode}", tag = "admin",
    security(("admin" = [])),
    params(("orgCode" = String, Path, description = "The service owner's org code",
        pattern = "^[a-z0-9]{2,10}$")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or a wrong admin credential", body = ProblemDetails),
        (status = 404, description = "No such service owner", body = ProblemDetails),
        (status = 409, description = "It still owns resources or access lists",
            body = ProblemDetails),
    ))]
pub async fn delete_service_owner(
    State(state): State<AppState>,
    admin: Admin,
    Path(org_code): Path<String>,
) -> Result<StatusCode, Problem> {
    let request = admin.request(pb::DeleteServiceOwnerRequest { org_code });
    call(state.clients.access().delete_service_owner(request)).await?;
    Ok(StatusCode::NO_CONTENT)
}

impl JsonBody for ServiceOwner {
    const PARAMETER: &'static str = "owner";
    const TYPE: &'static str = "ServiceOwner";
}
