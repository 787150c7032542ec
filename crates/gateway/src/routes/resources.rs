//! The Resource Registry's resources and their policies: `/resourceregistry/api/v1/resource…`.
//!
//! Reads are public, as in Altinn. Writes need `altinn:resourceregistry/resource.write`, checked
//! here before forwarding; the access registry checks it again and decides ownership (only the
//! resource's competent authority may change it). Policies are JSON rules rather than Altinn's
//! XACML. Writes honour `If-Match` and every answer with a resource or policy carries its
//! `ETag`.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use broker_common::Problem;
use broker_proto::access as pb;
use broker_proto::common::LocalizedText as PbText;
use http::{StatusCode, header};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Authenticated;
use crate::binding::{ApiJson, ApiQuery, JsonBody, null_as_default};
use crate::clients::{call, forward};
use crate::conditional::{IfMatch, Tagged};
use crate::routes::openapi::ProblemDetails;
use crate::routes::paging::{TokenQuery, encode, next_link, next_token};
use crate::state::AppState;

/// Scope for writing resources and their policies.
const RESOURCE_WRITE: &str = "altinn:resourceregistry/resource.write";

/// Where resources live.
const BASE: &str = "/resourceregistry/api/v1/resource";

/// The resource routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(BASE, post(create_resource))
        .route(&format!("{BASE}/resourcelist"), get(list_resources))
        .route(
            &format!("{BASE}/{{id}}"),
            get(get_resource)
                .put(update_resource)
                .delete(delete_resource),
        )
        .route(
            &format!("{BASE}/{{id}}/policy"),
            get(get_policy).put(put_policy).post(put_policy),
        )
}

/// Text in Altinn's three languages; an absent or `null` language is empty.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct LocalizedText {
    /// Bokmål.
    #[serde(default, deserialize_with = "null_as_default")]
    nb: String,
    /// Nynorsk.
    #[serde(default, deserialize_with = "null_as_default")]
    nn: String,
    /// English.
    #[serde(default, deserialize_with = "null_as_default")]
    en: String,
}

impl From<Option<PbText>> for LocalizedText {
    fn from(text: Option<PbText>) -> Self {
        let text = text.unwrap_or_default();
        Self {
            nb: text.nb,
            nn: text.nn,
            en: text.en,
        }
    }
}

impl From<LocalizedText> for Option<PbText> {
    fn from(text: LocalizedText) -> Self {
        Some(PbText {
            nb: text.nb,
            nn: text.nn,
            en: text.en,
        })
    }
}

/// The organisation responsible for a resource: its owner.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct CompetentAuthority {
    /// Organisation number (nine digits).
    #[serde(default, deserialize_with = "null_as_default")]
    #[schema(example = "991825827")]
    organization: String,
    /// Org code.
    #[serde(default, deserialize_with = "null_as_default")]
    #[schema(example = "digdir")]
    orgcode: String,
    /// Name.
    #[serde(default, deserialize_with = "null_as_default")]
    name: LocalizedText,
}

/// A resource, as Altinn's Resource Registry writes it (the fields Broker keeps; others sent
/// are ignored).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceResource {
    /// Globally unique identifier (lowercase letters, digits and `-`).
    #[schema(example = "broker-demo")]
    identifier: String,
    /// Title, required in at least one language.
    #[serde(default, deserialize_with = "null_as_default")]
    title: LocalizedText,
    /// Description.
    #[serde(default, deserialize_with = "null_as_default")]
    description: LocalizedText,
    /// The owner; filled in from the caller's service owner when absent, and must name it
    /// when present.
    #[serde(default, deserialize_with = "null_as_default")]
    has_competent_authority: CompetentAuthority,
    /// `Default`, `GenericAccessResource`, `BrokerService`, …; empty means `Default`.
    #[serde(default, deserialize_with = "null_as_default")]
    #[schema(example = "BrokerService")]
    resource_type: String,
    /// `Enabled` (only members of a connected access list may act) or `Disabled` (default).
    #[serde(default, deserialize_with = "null_as_default")]
    #[schema(example = "Enabled")]
    access_list_mode: String,
    /// `Active` (default), `Deprecated`, `Withdrawn`, …
    #[serde(default, deserialize_with = "null_as_default")]
    status: String,
    /// Whether rights to it may be delegated; true when absent, as in Altinn.
    #[serde(default = "yes")]
    delegable: bool,
    /// Whether it is listed in public catalogues; true when absent, as in Altinn.
    #[serde(default = "yes")]
    visible: bool,
    /// The version, also sent as `ETag`; ignored in requests.
    #[serde(default)]
    #[schema(read_only)]
    version: u64,
}

fn yes() -> bool {
    true
}

impl From<pb::Resource> for ServiceResource {
    fn from(resource: pb::Resource) -> Self {
        let authority = resource.has_competent_authority.unwrap_or_default();
        Self {
            identifier: resource.identifier,
            title: resource.title.into(),
            description: resource.description.into(),
            has_competent_authority: CompetentAuthority {
                organization: authority.organization,
                orgcode: authority.orgcode,
                name: authority.name.into(),
            },
            resource_type: resource.resource_type,
            access_list_mode: resource.access_list_mode,
            status: resource.status,
            delegable: resource.delegable,
            visible: resource.visible,
            version: resource.version,
        }
    }
}

impl From<ServiceResource> for pb::Resource {
    fn from(resource: ServiceResource) -> Self {
        let authority = resource.has_competent_authority;
        Self {
            identifier: resource.identifier,
            title: resource.title.into(),
            description: resource.description.into(),
            has_competent_authority: Some(pb::CompetentAuthority {
                organization: authority.organization,
                orgcode: authority.orgcode,
                name: authority.name.into(),
            }),
            resource_type: resource.resource_type,
            access_list_mode: resource.access_list_mode,
            status: resource.status,
            // The registry versions resources itself; If-Match is how a client names one.
            version: 0,
            delegable: resource.delegable,
            visible: resource.visible,
        }
    }
}

/// A resource's policy: who may do what.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ResourcePolicy {
    /// The resource's identifier; when sent, it must be the one in the path.
    #[serde(default, deserialize_with = "null_as_default")]
    resource: String,
    /// The rules; any rule that matches permits.
    rules: Vec<PolicyRule>,
    /// The version, also sent as `ETag`; ignored in requests.
    #[serde(default)]
    #[schema(read_only)]
    version: u64,
}

/// One rule: these subjects may perform these actions.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PolicyRule {
    /// `any-organization`, a party URN (`urn:altinn:organization:identifier-no:<nine digits>`)
    /// or an access-list URN (`urn:altinn:access-list:<owner>:<identifier>`).
    subjects: Vec<String>,
    /// `read`, `write`, `subscribe`, …
    actions: Vec<String>,
}

impl From<pb::Policy> for ResourcePolicy {
    fn from(policy: pb::Policy) -> Self {
        Self {
            resource: policy.resource,
            rules: policy
                .rules
                .into_iter()
                .map(|rule| PolicyRule {
                    subjects: rule.subjects,
                    actions: rule.actions,
                })
                .collect(),
            version: policy.version,
        }
    }
}

/// 400 unless a body's identifier is the one in the path.
fn require_path_id(field: &str, body: &str, path: &str) -> Result<(), Problem> {
    if body == path {
        return Ok(());
    }
    Err(Problem::invalid_field(
        field,
        format!("must be the identifier in the path, {path:?}"),
    ))
}

/// One resource.
#[utoipa::path(get, path = "/resourceregistry/api/v1/resource/{id}", tag = "resources",
    params(("id" = String, Path, description = "The resource identifier")),
    responses(
        (status = 200, description = "The resource", body = ServiceResource,
            headers(("ETag" = String, description = "The resource's version"))),
        (status = 400, description = "The identifier is malformed", body = ProblemDetails),
        (status = 404, description = "No such resource", body = ProblemDetails),
    ))]
pub async fn get_resource(
    State(state): State<AppState>,
    Path(identifier): Path<String>,
) -> Result<Tagged<ServiceResource>, Problem> {
    let request = pb::GetResourceRequest { identifier };
    let resource = call(state.clients.access().get_resource(request)).await?;
    Ok(Tagged::ok(resource.version, resource.into()))
}

/// Every resource, a page at a time (Altinn answers a bare array; the next page is in `Link`).
#[utoipa::path(get, path = "/resourceregistry/api/v1/resource/resourcelist", tag = "resources",
    params(TokenQuery),
    responses(
        (status = 200, description = "A page of resources, by identifier",
            body = Vec<ServiceResource>,
            headers(("Link" = String, description = "`<next page>; rel=\"next\"`, unless last"))),
    ))]
pub async fn list_resources(
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<TokenQuery>,
) -> Result<Response, Problem> {
    let request = pb::ListResourcesRequest {
        page: page.request(),
    };
    let listed = call(state.clients.access().list_resources(request)).await?;
    let resources: Vec<ServiceResource> = listed.resources.into_iter().map(Into::into).collect();
    let next = next_link(
        &format!("{BASE}/resourcelist"),
        &page.params(),
        next_token(listed.page),
    );
    let mut response = Json(resources).into_response();
    if let Some(link) = next.and_then(|next| format!("<{next}>; rel=\"next\"").try_into().ok()) {
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}

/// Registers a resource owned by the caller's service owner.
#[utoipa::path(post, path = "/resourceregistry/api/v1/resource", tag = "resources",
    security(("bearer" = ["altinn:resourceregistry/resource.write"])),
    request_body = ServiceResource,
    responses(
        (status = 201, description = "The registered resource", body = ServiceResource,
            headers(
                ("ETag" = String, description = "The resource's version"),
                ("Location" = String, description = "The resource's address"),
            )),
        (status = 400, description = "A field is missing or invalid", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing, the caller is not a service owner, \
            or the competent authority names another", body = ProblemDetails),
        (status = 409, description = "The identifier is taken", body = ProblemDetails),
        (status = 413, description = "The body exceeds 1 MiB", body = ProblemDetails),
    ))]
pub async fn create_resource(
    State(state): State<AppState>,
    caller: Authenticated,
    IfMatch(if_match): IfMatch,
    ApiJson(resource): ApiJson<ServiceResource>,
) -> Result<Tagged<ServiceResource>, Problem> {
    let mut access = state.clients.access();
    let created = forward(
        &caller,
        &[RESOURCE_WRITE],
        |principal| pb::UpsertResourceRequest {
            principal: Some(principal),
            resource: Some(resource.into()),
            if_match,
        },
        |request| access.create_resource(request),
    )
    .await?;
    let location = format!("{BASE}/{}", encode(&created.identifier));
    Ok(Tagged::created(created.version, location, created.into()))
}

/// Replaces a resource the caller owns.
#[utoipa::path(put, path = "/resourceregistry/api/v1/resource/{id}", tag = "resources",
    security(("bearer" = ["altinn:resourceregistry/resource.write"])),
    params(
        ("id" = String, Path, description = "The resource identifier"),
        ("If-Match" = Option<String>, Header, description = "The version last seen, `\"<n>\"`"),
    ),
    request_body = ServiceResource,
    responses(
        (status = 200, description = "The resource as stored", body = ServiceResource,
            headers(("ETag" = String, description = "The resource's new version"))),
        (status = 400, description = "A field or If-Match is invalid, or the identifier is not \
            the path's", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing or the caller does not own it",
            body = ProblemDetails),
        (status = 404, description = "No such resource", body = ProblemDetails),
        (status = 412, description = "If-Match names another version", body = ProblemDetails),
        (status = 413, description = "The body exceeds 1 MiB", body = ProblemDetails),
    ))]
pub async fn update_resource(
    State(state): State<AppState>,
    caller: Authenticated,
    IfMatch(if_match): IfMatch,
    Path(identifier): Path<String>,
    ApiJson(resource): ApiJson<ServiceResource>,
) -> Result<Tagged<ServiceResource>, Problem> {
    require_path_id("identifier", &resource.identifier, &identifier)?;
    let mut access = state.clients.access();
    let updated = forward(
        &caller,
        &[RESOURCE_WRITE],
        |principal| pb::UpsertResourceRequest {
            principal: Some(principal),
            resource: Some(resource.into()),
            if_match,
        },
        |request| access.update_resource(request),
    )
    .await?;
    Ok(Tagged::ok(updated.version, updated.into()))
}

/// Deletes a resource the caller owns, with its policy and access-list connections.
#[utoipa::path(delete, path = "/resourceregistry/api/v1/resource/{id}", tag = "resources",
    security(("bearer" = ["altinn:resourceregistry/resource.write"])),
    params(
        ("id" = String, Path, description = "The resource identifier"),
        ("If-Match" = Option<String>, Header, description = "The version last seen, `\"<n>\"`"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "If-Match is malformed", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing or the caller does not own it",
            body = ProblemDetails),
        (status = 404, description = "No such resource", body = ProblemDetails),
        (status = 412, description = "If-Match names another version", body = ProblemDetails),
    ))]
pub async fn delete_resource(
    State(state): State<AppState>,
    caller: Authenticated,
    IfMatch(if_match): IfMatch,
    Path(identifier): Path<String>,
) -> Result<StatusCode, Problem> {
    let mut access = state.clients.access();
    forward(
        &caller,
        &[RESOURCE_WRITE],
        |principal| pb::DeleteResourceRequest {
            principal: Some(principal),
            identifier,
            if_match,
        },
        |request| access.delete_resource(request),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A resource's policy.
#[utoipa::path(get, path = "/resourceregistry/api/v1/resource/{id}/policy", tag = "resources",
    params(("id" = String, Path, description = "The resource identifier")),
    responses(
        (status = 200, description = "The policy", body = ResourcePolicy,
            headers(("ETag" = String, description = "The policy's version"))),
        (status = 404, description = "No such resource, or it has no policy",
            body = ProblemDetails),
    ))]
pub async fn get_policy(
    State(state): State<AppState>,
    Path(resource): Path<String>,
) -> Result<Tagged<ResourcePolicy>, Problem> {
    let request = pb::GetPolicyRequest { resource };
    let policy = call(state.clients.access().get_policy(request)).await?;
    Ok(Tagged::ok(policy.version, policy.into()))
}

/// Writes the policy of a resource the caller owns (`POST` is the same, as in Altinn).
#[utoipa::path(method(put, post), path = "/resourceregistry/api/v1/resource/{id}/policy",
    tag = "resources",
    security(("bearer" = ["altinn:resourceregistry/resource.write"])),
    params(
        ("id" = String, Path, description = "The resource identifier"),
        ("If-Match" = Option<String>, Header, description = "The version last seen, `\"<n>\"`"),
    ),
    request_body = ResourcePolicy,
    responses(
        (status = 200, description = "The policy as stored", body = ResourcePolicy,
            headers(("ETag" = String, description = "The policy's new version"))),
        (status = 400, description = "A rule or If-Match is invalid, or `resource` is not the \
            path's", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing or the caller does not own it",
            body = ProblemDetails),
        (status = 404, description = "No such resource", body = ProblemDetails),
        (status = 412, description = "If-Match names another version", body = ProblemDetails),
        (status = 413, description = "The body exceeds 1 MiB", body = ProblemDetails),
    ))]
pub async fn put_policy(
    State(state): State<AppState>,
    caller: Authenticated,
    IfMatch(if_match): IfMatch,
    Path(resource): Path<String>,
    ApiJson(policy): ApiJson<ResourcePolicy>,
) -> Result<Tagged<ResourcePolicy>, Problem> {
    if !policy.resource.is_empty() {
        require_path_id("resource", &policy.resource, &resource)?;
    }
    let rules = policy
        .rules
        .into_iter()
        .map(|rule| pb::PolicyRule {
            subjects: rule.subjects,
            actions: rule.actions,
        })
        .collect();
    let mut access = state.clients.access();
    let stored = forward(
        &caller,
        &[RESOURCE_WRITE],
        |principal| pb::PutPolicyRequest {
            principal: Some(principal),
            policy: Some(pb::Policy {
                resource,
                rules,
                version: 0,
            }),
            if_match,
        },
        |request| access.put_policy(request),
    )
    .await?;
    Ok(Tagged::ok(stored.version, stored.into()))
}

impl JsonBody for ServiceResource {
    const PARAMETER: &'static str = "serviceResource";
    const TYPE: &'static str = "Altinn.ResourceRegistry.Core.Models.ServiceResource";
}

impl JsonBody for ResourcePolicy {
    const PARAMETER: &'static str = "policy";
    const TYPE: &'static str = "ResourcePolicy";
}
