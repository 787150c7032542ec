//! The Resource Registry's resources and their policies: `/resourceregistry/api/v1/resource…`,
//! answered as Altinn's `ResourceController` answers.
//!
//! Reads are public. Writes need `altinn:resourceregistry/resource.write` (or `.admin`): a
//! refusal is ASP.NET's empty 401 or 403. A resource is Altinn's whole `ServiceResource`,
//! bound the ASP.NET way (its enums by name in any case or by Altinn's numbers) and handed to
//! the access registry as one document, which applies Altinn's rules and answers as Altinn
//! does: `POST` 201 and `PUT` 200 with no body, Altinn's texts for its bare answers.
//!
//! Broker's additions: `ETag`/`Last-Modified` on every answer with a resource and the
//! conditional headers on its reads and writes; `pageSize`/`token` on `resourcelist`, which
//! otherwise answers every resource at once; and policies as JSON rules rather than XACML.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::handler::Handler;
use axum::middleware::from_fn;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use broker_common::Problem;
use broker_proto::access as pb;
use http::{StatusCode, header};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Authorized, Policy};
use crate::binding::{ApiJson, ApiQuery, JsonBody, QueryBinding, QueryModel};
use crate::clients::{call, forward};
use crate::conditional::{Conditions, Tagged, not_modified};
use crate::negotiation;
use crate::routes::openapi::ProblemDetails;
use crate::routes::paging::next_token;
use crate::state::AppState;

/// Scope for writing resources and their policies.
const RESOURCE_WRITE: &str = "altinn:resourceregistry/resource.write";
/// Scope of the registry's administrators.
const RESOURCE_ADMIN: &str = "altinn:resourceregistry/resource.admin";

/// Altinn's `ScopeResourceRegistryWrite` policy.
pub struct ResourceWriter;
impl Policy for ResourceWriter {
    const SCOPES: &'static [&'static str] = &[RESOURCE_ADMIN, RESOURCE_WRITE];
}

/// Where resources live.
const BASE: &str = "/resourceregistry/api/v1/resource";

/// Resources per call when `resourcelist` gathers them all.
const GATHER_PAGE: u32 = 1000;

/// The resource routes.
pub fn routes() -> Router<AppState> {
    let consumes_json = || from_fn(negotiation::consumes_json);
    let json = Router::new()
        .route(BASE, post(create_resource).route_layer(consumes_json()))
        .route(&format!("{BASE}/resourcelist"), get(list_resources))
        .route(
            &format!("{BASE}/{{id}}"),
            get(get_resource)
                .put(update_resource.layer(consumes_json()))
                .delete(delete_resource),
        )
        .route_layer(from_fn(negotiation::problems_as_json));
    // Altinn's policy actions have no `[Produces]`: their texts are plain.
    let policy = Router::new().route(
        &format!("{BASE}/{{id}}/policy"),
        get(get_policy).put(put_policy).post(put_policy),
    );
    json.merge(policy)
}

/// Text by language code, as Altinn's dictionaries hold it; a language whose text is `null`
/// counts as absent, as Altinn's rules count it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
#[serde(transparent)]
pub struct Texts(BTreeMap<String, String>);

impl<'de> Deserialize<'de> for Texts {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let texts = BTreeMap::<String, Option<String>>::deserialize(deserializer)?;
        Ok(Self(
            texts
                .into_iter()
                .filter_map(|(language, text)| Some((language, text?)))
                .collect(),
        ))
    }
}

/// Altinn's `ResourceType`, whose numbers are flags (`BrokerService` is 32): read by name in
/// any case or by number, as `JsonStringEnumConverter` reads it; written by name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ToSchema)]
pub enum ResourceType {
    /// 0: not set (refused by the registry's rules).
    #[default]
    Default,
    /// 1.
    Systemresource,
    /// 2.
    MaskinportenSchema,
    /// 4.
    Altinn2Service,
    /// 8.
    AltinnApp,
    /// 16.
    GenericAccessResource,
    /// 32.
    BrokerService,
    /// 64.
    CorrespondenceService,
    /// 128.
    Consent,
    /// 256.
    MigratedApp,
}

impl ResourceType {
    /// Every type with its number.
    const ALL: [(Self, &'static str, u64); 10] = [
        (Self::Default, "Default", 0),
        (Self::Systemresource, "Systemresource", 1),
        (Self::MaskinportenSchema, "MaskinportenSchema", 2),
        (Self::Altinn2Service, "Altinn2Service", 4),
        (Self::AltinnApp, "AltinnApp", 8),
        (Self::GenericAccessResource, "GenericAccessResource", 16),
        (Self::BrokerService, "BrokerService", 32),
        (Self::CorrespondenceService, "CorrespondenceService", 64),
        (Self::Consent, "Consent", 128),
        (Self::MigratedApp, "MigratedApp", 256),
    ];

    fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(kind, _, _)| *kind == self)
            .map_or("Default", |(_, name, _)| name)
    }

    fn by_number(number: u64) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, _, flag)| *flag == number)
            .map(|(kind, _, _)| *kind)
    }
}

impl Serialize for ResourceType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for ResourceType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Kind;
        impl Visitor<'_> for Kind {
            type Value = ResourceType;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a resource type's name or number")
            }

            fn visit_u64<E: de::Error>(self, number: u64) -> Result<ResourceType, E> {
                ResourceType::by_number(number)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Unsigned(number), &self))
            }

            fn visit_i64<E: de::Error>(self, number: i64) -> Result<ResourceType, E> {
                Err(E::invalid_value(de::Unexpected::Signed(number), &self))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<ResourceType, E> {
                let trimmed = text.trim();
                ResourceType::ALL
                    .iter()
                    .find(|(_, name, _)| name.eq_ignore_ascii_case(trimmed))
                    .map(|(kind, _, _)| *kind)
                    .or_else(|| trimmed.parse().ok().and_then(ResourceType::by_number))
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Str(text), &self))
            }
        }
        deserializer.deserialize_any(Kind)
    }
}

/// Altinn's `ResourceAccessListMode` (0 and 1), by name in any case or number.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum AccessListMode {
    /// 0: the policy alone decides.
    #[default]
    Disabled,
    /// 1: only members of a connected access list may act.
    Enabled,
}

/// Altinn's `ReferenceSource`, in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum ReferenceSource {
    /// 0.
    Default,
    /// 1.
    Altinn1,
    /// 2.
    Altinn2,
    /// 3.
    Altinn3,
    /// 4.
    ExternalPlatform,
}

/// Altinn's `ReferenceType`, in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum ReferenceType {
    /// 0.
    Default,
    /// 1.
    Uri,
    /// 2.
    DelegationSchemeId,
    /// 3.
    MaskinportenScope,
    /// 4.
    ServiceCode,
    /// 5.
    ServiceEditionCode,
    /// 6.
    ApplicationId,
    /// 7.
    ServiceEditionVersion,
}

/// Altinn's `ResourcePartyType`, in its order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum ResourcePartyType {
    /// 0.
    PrivatePerson,
    /// 1.
    LegalEntityEnterprise,
    /// 2.
    Company,
    /// 3.
    BankruptcyEstate,
    /// 4.
    SelfRegisteredUser,
}

/// A way to reach the resource's owner.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContactPoint {
    /// Category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    category: Option<String>,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    /// Telephone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    telephone: Option<String>,
    /// Web page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    contact_page: Option<String>,
}

/// A reference from the resource to what it stands for.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceReference {
    /// Where it points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reference_source: Option<ReferenceSource>,
    /// The reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reference: Option<String>,
    /// What it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reference_type: Option<ReferenceType>,
}

/// The organisation responsible for the resource: its owner.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct CompetentAuthority {
    /// Organisation number; must be the caller's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "991825827")]
    organization: Option<String>,
    /// Org code; filled in from the caller's service owner when absent (an extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "digdir")]
    orgcode: Option<String>,
    /// Name by language.
    #[serde(default)]
    name: Texts,
}

/// A keyword.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Keyword {
    /// The word.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    word: Option<String>,
    /// Its language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    language: Option<String>,
}

/// An attribute of the resource for authorization.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuthorizationReference {
    /// The attribute's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    /// Its value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
}

/// Metadata of a consent text's parameter.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConsentMetadata {
    /// Whether the parameter may be left out.
    #[serde(default)]
    optional: bool,
}

/// Altinn's `ServiceResource`, every member as its JSON type; absent members are left out of
/// answers (Altinn writes no `null`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceResource {
    /// Identifier: `^[a-z0-9_-]{4,}$` when created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "broker-demo")]
    identifier: Option<String>,
    /// The owner's own version text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "1.0")]
    version: Option<String>,
    /// Title in `en`, `nb` and `nn` at least.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    title: Option<Texts>,
    /// Description in `en`, `nb` and `nn` at least.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<Texts>,
    /// What a delegated right allows; required in `en`, `nb` and `nn` when delegable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    right_description: Option<Texts>,
    /// Home page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    homepage: Option<String>,
    /// `Completed`, `Deprecated`, `Withdrawn`, … (the last two stop every decision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    /// Spatial coverage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    spatial: Option<Vec<String>>,
    /// Contact points; required on `PUT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    contact_points: Option<Vec<ContactPoint>>,
    /// What it produces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    produces: Option<Vec<String>>,
    /// What it is part of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    is_part_of: Option<String>,
    /// Thematic areas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    thematic_areas: Option<Vec<String>>,
    /// References to what it stands for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resource_references: Option<Vec<ResourceReference>>,
    /// Whether rights to it may be delegated (default true).
    #[serde(default = "yes")]
    delegable: bool,
    /// Whether it is listed in public catalogues (default true).
    #[serde(default = "yes")]
    visible: bool,
    /// Its owner, the caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    has_competent_authority: Option<CompetentAuthority>,
    /// Keywords.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keywords: Option<Vec<Keyword>>,
    /// `Enabled` (only members of a connected access list may act) or `Disabled`.
    #[serde(default)]
    access_list_mode: AccessListMode,
    /// Whether self-identified users may use it.
    #[serde(default)]
    self_identified_user_enabled: bool,
    /// Whether enterprise users may use it.
    #[serde(default)]
    enterprise_user_enabled: bool,
    /// Its kind; required (`BrokerService` for file transfers).
    #[serde(default)]
    resource_type: ResourceType,
    /// The kinds of party it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    available_for_type: Option<Vec<ResourcePartyType>>,
    /// Attributes for authorization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    authorization_reference: Option<Vec<AuthorizationReference>>,
    /// Consent template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    consent_template: Option<String>,
    /// Consent text by language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    consent_text: Option<Texts>,
    /// Consent metadata by parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    consent_metadata: Option<BTreeMap<String, ConsentMetadata>>,
    /// Whether a consent is given once.
    #[serde(default)]
    is_one_time_consent: bool,
    /// The registry's version of the resource (also its `ETag`); ignored in requests.
    #[serde(default)]
    #[schema(read_only)]
    version_id: i64,
}

fn yes() -> bool {
    true
}

impl ServiceResource {
    /// The resource as the contract carries it.
    fn document(&self) -> Result<String, Problem> {
        serde_json::to_string(self).map_err(|error| {
            tracing::error!(%error, "a bound resource did not serialise");
            Problem::internal()
        })
    }

    /// The resource a registry answer holds, at its version.
    fn from_registry(resource: &pb::Resource) -> Result<Self, Problem> {
        let mut bound: Self = serde_json::from_str(&resource.document).map_err(|error| {
            tracing::error!(%error, "the registry answered a resource that does not read");
            Problem::internal()
        })?;
        bound.version_id = i64::try_from(resource.version).unwrap_or(i64::MAX);
        Ok(bound)
    }
}

/// A resource's policy: who may do what (Broker's JSON rules rather than Altinn's XACML).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ResourcePolicy {
    /// The resource's identifier; when sent, it must be the one in the path.
    #[serde(default, skip_serializing_if = "String::is_empty")]
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

/// The query of one resource.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct ResourceQuery {
    /// That version (`versionId`); Broker keeps only the current one, so another is not found.
    version_id: Option<i32>,
}

/// One resource.
#[utoipa::path(get, path = "/resourceregistry/api/v1/resource/{id}", tag = "resources",
    params(
        ("id" = String, Path, description = "The resource identifier"),
        ResourceQuery,
        ("If-None-Match" = Option<String>, Header, description = "An `ETag` (an extension)"),
    ),
    responses(
        (status = 200, description = "The resource", body = ServiceResource,
            headers(
                ("ETag" = String, description = "Its version (an extension)"),
                ("Last-Modified" = String, description = "Its last change (an extension)"),
            )),
        (status = 304, description = "The client's copy is current"),
        (status = 400, description = "`versionId` is not an int, or `If-None-Match` holds no \
            entity tag", body = ProblemDetails),
        (status = 404, description = "No such resource", body = ProblemDetails),
    ))]
pub async fn get_resource(
    State(state): State<AppState>,
    Path(identifier): Path<String>,
    conditions: Conditions,
    ApiQuery(query): ApiQuery<ResourceQuery>,
) -> Result<Response, Problem> {
    let request = pb::GetResourceRequest {
        identifier,
        conditions: conditions.into_inner(),
        version_id: query.version_id.map(i64::from),
    };
    let resource = call(state.clients.access().get_resource(request)).await?;
    if resource.not_modified {
        return Ok(not_modified(resource.version, resource.updated_at));
    }
    let body = ServiceResource::from_registry(&resource)?;
    Ok(Tagged::ok(resource.version, resource.updated_at, body).into_response())
}

/// The query of `resourcelist`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct ResourceListQuery {
    /// Altinn's: include Altinn 3 apps (Broker has none).
    #[allow(dead_code)] // Bound for ASP.NET's errors; Broker registers no apps to include.
    include_apps: Option<bool>,
    /// Altinn's: include migrated apps (Broker has none).
    #[allow(dead_code)] // Bound for ASP.NET's errors; Broker registers no apps to include.
    include_migrated_apps: Option<bool>,
    /// Pages the answer (an extension): resources per page; the next is in `Link`.
    page_size: Option<u32>,
    /// The next page's token, from the previous page's `Link` (an extension).
    token: Option<String>,
}

/// Every resource, in one array by identifier, as Altinn answers it. With `pageSize` or
/// `token` (an extension) one page, the next linked in `Link`.
#[utoipa::path(get, path = "/resourceregistry/api/v1/resource/resourcelist", tag = "resources",
    params(ResourceListQuery),
    responses(
        (status = 200, description = "The resources, by identifier", body = Vec<ServiceResource>,
            headers(("Link" = String,
                description = "`<next page>; rel=\"next\"`, when paged and not the last"))),
        (status = 400, description = "A query parameter is invalid", body = ProblemDetails),
    ))]
pub async fn list_resources(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ResourceListQuery>,
) -> Result<Response, Problem> {
    let paged = query.page_size.is_some() || query.token.is_some();
    let mut token = query.token.clone().unwrap_or_default();
    let mut resources = Vec::new();
    loop {
        let request = pb::ListResourcesRequest {
            page: Some(broker_proto::common::PageRequest {
                token: token.clone(),
                size: if paged {
                    query.page_size.unwrap_or_default()
                } else {
                    GATHER_PAGE
                },
            }),
        };
        let listed = call(state.clients.access().list_resources(request)).await?;
        for resource in &listed.resources {
            resources.push(ServiceResource::from_registry(resource)?);
        }
        match next_token(listed.page) {
            Some(next) if !paged => token = next,
            next => return Ok(resource_page(resources, &query, next)),
        }
    }
}

/// The resources as a bare array, the next page (if any) in `Link`.
fn resource_page(
    resources: Vec<ServiceResource>,
    query: &ResourceListQuery,
    next: Option<String>,
) -> Response {
    let mut response = Json(resources).into_response();
    let params = [("pageSize", query.page_size.map(|size| size.to_string()))];
    let link = crate::routes::paging::next_link(&format!("{BASE}/resourcelist"), &params, next)
        .and_then(|next| format!("<{next}>; rel=\"next\"").try_into().ok());
    if let Some(link) = link {
        response.headers_mut().insert(header::LINK, link);
    }
    response
}

/// Registers a resource: 201 with its address and no body.
#[utoipa::path(post, path = "/resourceregistry/api/v1/resource", tag = "resources",
    security(("bearer" = ["altinn:resourceregistry/resource.write"])),
    request_body = ServiceResource,
    responses(
        (status = 201, description = "Registered (no body)",
            headers(
                ("Location" = String, description = "The resource's address"),
                ("ETag" = String, description = "Its version (an extension)"),
            )),
        (status = 400, description = "A rule of Altinn's is broken", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token (no body)"),
        (status = 403, description = "The scope is missing, or the resource names another \
            organisation (no body)"),
        (status = 409, description = "The identifier is taken (a JSON string)"),
        (status = 415, description = "The body is not JSON"),
    ))]
pub async fn create_resource(
    State(state): State<AppState>,
    caller: Authorized<ResourceWriter>,
    conditions: Conditions,
    ApiJson(resource): ApiJson<ServiceResource>,
) -> Result<Tagged<()>, Problem> {
    let document = resource.document()?;
    let mut access = state.clients.access();
    let created = forward(
        &caller,
        ResourceWriter::SCOPES,
        |principal| pb::UpsertResourceRequest {
            principal: Some(principal),
            document,
            conditions: conditions.into_inner(),
            identifier: String::new(),
        },
        |request| access.create_resource(request),
    )
    .await?;
    let location = format!("{BASE}/{}", created.identifier);
    Ok(Tagged::empty(StatusCode::CREATED, created.version, created.updated_at).at(location))
}

/// Replaces a resource the caller owns: 200 with no body.
#[utoipa::path(put, path = "/resourceregistry/api/v1/resource/{id}", tag = "resources",
    security(("bearer" = ["altinn:resourceregistry/resource.write"])),
    params(
        ("id" = String, Path, description = "The resource identifier"),
        ("If-Match" = Option<String>, Header, description = "An `ETag` (an extension)"),
    ),
    request_body = ServiceResource,
    responses(
        (status = 200, description = "Replaced (no body)",
            headers(("ETag" = String, description = "Its new version (an extension)"))),
        (status = 400, description = "A rule of Altinn's is broken, a required member is \
            missing, or the body names another resource (a JSON string)", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token (no body)"),
        (status = 403, description = "The scope is missing, or the caller does not own it (no \
            body)"),
        (status = 404, description = "No such resource", body = ProblemDetails),
        (status = 412, description = "A condition does not hold", body = ProblemDetails),
    ))]
pub async fn update_resource(
    State(state): State<AppState>,
    caller: Authorized<ResourceWriter>,
    Path(identifier): Path<String>,
    conditions: Conditions,
    ApiJson(resource): ApiJson<ServiceResource>,
) -> Result<Tagged<()>, Problem> {
    let document = resource.document()?;
    let mut access = state.clients.access();
    let updated = forward(
        &caller,
        ResourceWriter::SCOPES,
        |principal| pb::UpsertResourceRequest {
            principal: Some(principal),
            document,
            conditions: conditions.into_inner(),
            identifier,
        },
        |request| access.update_resource(request),
    )
    .await?;
    Ok(Tagged::empty(
        StatusCode::OK,
        updated.version,
        updated.updated_at,
    ))
}

/// Deletes a resource the caller owns, with its policy and access-list connections.
#[utoipa::path(delete, path = "/resourceregistry/api/v1/resource/{id}", tag = "resources",
    security(("bearer" = ["altinn:resourceregistry/resource.write"])),
    params(
        ("id" = String, Path, description = "The resource identifier"),
        ("If-Match" = Option<String>, Header, description = "An `ETag` (an extension)"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No, an expired, or an untrusted token (no body)"),
        (status = 403, description = "The scope is missing or the caller does not own it (no \
            body)"),
        (status = 404, description = "No such resource", body = ProblemDetails),
        (status = 412, description = "A condition does not hold", body = ProblemDetails),
    ))]
pub async fn delete_resource(
    State(state): State<AppState>,
    caller: Authorized<ResourceWriter>,
    Path(identifier): Path<String>,
    conditions: Conditions,
) -> Result<StatusCode, Problem> {
    let mut access = state.clients.access();
    forward(
        &caller,
        ResourceWriter::SCOPES,
        |principal| pb::DeleteResourceRequest {
            principal: Some(principal),
            identifier,
            conditions: conditions.into_inner(),
        },
        |request| access.delete_resource(request),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A resource's policy (Broker's JSON rules).
#[utoipa::path(get, path = "/resourceregistry/api/v1/resource/{id}/policy", tag = "resources",
    params(("id" = String, Path, description = "The resource identifier")),
    responses(
        (status = 200, description = "The policy", body = ResourcePolicy,
            headers(("ETag" = String, description = "The policy's version"))),
        (status = 404, description = "`Unable to find resource` or `Unable to find requested \
            policy` (text/plain)"),
    ))]
pub async fn get_policy(
    State(state): State<AppState>,
    Path(resource): Path<String>,
) -> Result<Tagged<ResourcePolicy>, Problem> {
    let request = pb::GetPolicyRequest { resource };
    let policy = call(state.clients.access().get_policy(request)).await?;
    Ok(Tagged::ok(policy.version, policy.updated_at, policy.into()))
}

/// Writes the policy of a resource the caller owns (`POST` is the same, as in Altinn).
#[utoipa::path(method(put, post), path = "/resourceregistry/api/v1/resource/{id}/policy",
    tag = "resources",
    security(("bearer" = ["altinn:resourceregistry/resource.write"])),
    params(
        ("id" = String, Path, description = "The resource identifier"),
        ("If-Match" = Option<String>, Header, description = "The policy's `ETag`"),
    ),
    request_body = ResourcePolicy,
    responses(
        (status = 200, description = "The policy as stored", body = ResourcePolicy,
            headers(("ETag" = String, description = "The policy's new version"))),
        (status = 400, description = "A rule is invalid, or `resource` is not the path's",
            body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token (no body)"),
        (status = 403, description = "The scope is missing or the caller does not own it (no \
            body)"),
        (status = 404, description = "No such resource", body = ProblemDetails),
        (status = 412, description = "A condition does not hold", body = ProblemDetails),
    ))]
pub async fn put_policy(
    State(state): State<AppState>,
    caller: Authorized<ResourceWriter>,
    Path(resource): Path<String>,
    conditions: Conditions,
    ApiJson(policy): ApiJson<ResourcePolicy>,
) -> Result<Tagged<ResourcePolicy>, Problem> {
    if !policy.resource.is_empty() && policy.resource != resource {
        return Err(Problem::invalid_field(
            "resource",
            format!("must be the identifier in the path, {resource:?}"),
        ));
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
        ResourceWriter::SCOPES,
        |principal| pb::PutPolicyRequest {
            principal: Some(principal),
            policy: Some(pb::Policy {
                resource,
                rules,
                ..pb::Policy::default()
            }),
            conditions: conditions.into_inner(),
        },
        |request| access.put_policy(request),
    )
    .await?;
    Ok(Tagged::ok(stored.version, stored.updated_at, stored.into()))
}

impl JsonBody for ServiceResource {
    const PARAMETER: &'static str = "serviceResource";
    const TYPE: &'static str = "Altinn.ResourceRegistry.Core.Models.ServiceResource";
}

impl JsonBody for ResourcePolicy {
    const PARAMETER: &'static str = "policy";
    const TYPE: &'static str = "ResourcePolicy";
}

impl QueryModel for ResourceListQuery {
    const BINDING: QueryBinding = QueryBinding::Parameters;
}

impl QueryModel for ResourceQuery {
    const BINDING: QueryBinding = QueryBinding::Parameters;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::binding::parse_json;

    /// Mirrors `ResourceType`'s flag numbers and `JsonStringEnumConverter`'s reading.
    #[test]
    fn resource_types_bind_by_name_in_any_case_or_by_altinns_number() {
        for sent in [
            json!("BrokerService"),
            json!("brokerservice"),
            json!(32),
            json!("32"),
        ] {
            let body = json!({"resourceType": sent});
            let resource = parse_json::<ServiceResource>(body.to_string().as_bytes()).unwrap();
            assert_eq!(
                resource.resource_type,
                ResourceType::BrokerService,
                "{sent}"
            );
        }
        for refused in [json!(6), json!(3), json!("Broker"), json!(null)] {
            let body = json!({"resourceType": refused});
            let problem = parse_json::<ServiceResource>(body.to_string().as_bytes()).unwrap_err();
            assert!(
                problem.errors.unwrap().contains_key("$.resourceType"),
                "{refused}"
            );
        }
        let mode = json!({"accessListMode": 1, "AccessListMode": "enabled"});
        let resource = parse_json::<ServiceResource>(mode.to_string().as_bytes()).unwrap();
        assert_eq!(resource.access_list_mode, AccessListMode::Enabled);
    }

    /// Mirrors `ServiceResource`'s members: `version` is text, defaults are Altinn's, nothing
    /// sent is dropped, and nothing absent is written as `null`.
    #[test]
    fn every_member_of_altinns_model_is_kept() {
        let sent = json!({
            "identifier": "broker-demo", "version": "1.0",
            "title": {"en": "T", "nb": "T", "nn": null},
            "contactPoints": [{"category": "Support", "email": "a@b.no"}],
            "keywords": [{"word": "post", "language": "nb"}],
            "availableForType": ["Company", 1],
            "consentMetadata": {"x": {"optional": true}},
            "resourceReferences": [{"referenceType": "maskinportenscope", "reference": "a:b"}],
            "versionId": 99,
        });
        let bound = parse_json::<ServiceResource>(sent.to_string().as_bytes()).unwrap();
        let written = serde_json::to_value(&bound).unwrap();
        assert_eq!(written["version"], "1.0");
        assert_eq!(written["title"], json!({"en": "T", "nb": "T"}));
        assert_eq!(written["contactPoints"][0]["email"], "a@b.no");
        assert_eq!(
            written["availableForType"],
            json!(["Company", "LegalEntityEnterprise"])
        );
        assert_eq!(
            written["resourceReferences"][0]["referenceType"],
            "MaskinportenScope"
        );
        assert_eq!(written["delegable"], true);
        assert_eq!(written["resourceType"], "Default");
        assert_eq!(written["accessListMode"], "Disabled");
        assert_eq!(written["selfIdentifiedUserEnabled"], false);
        assert!(written.get("homepage").is_none(), "{written}");
        let wrong = json!({"version": 1});
        let problem = parse_json::<ServiceResource>(wrong.to_string().as_bytes()).unwrap_err();
        assert!(problem.errors.unwrap().contains_key("$.version"));
    }
}
