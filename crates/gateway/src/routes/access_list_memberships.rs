//! The access-list routes outside `{owner}`, as Altinn's `AccessListMembershipsController`
//! answers them: `GET …/access-lists/memberships` (which resources a party reaches through its
//! lists, for platform components such as Altinn's own Broker) and `GET
//! …/access-lists/get-by-member`. Being literal paths, they win over `{owner}`.

use axum::extract::State;
use axum::middleware::from_fn;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use broker_common::Problem;
use broker_proto::access as pb;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Authorized, Policy};
use crate::binding::{ApiQuery, QueryBinding, QueryModel};
use crate::clients::forward;
use crate::negotiation;
use crate::routes::openapi::ProblemDetails;
use crate::state::AppState;

/// Altinn's `InternalOrPlatform` policy: the administrators' scope (Broker issues no platform
/// access tokens, the policy's other way in).
pub struct Internal;
impl Policy for Internal {
    const SCOPES: &'static [&'static str] = &["altinn:resourceregistry/resource.admin"];
}

/// Altinn's `PlatformComponentOnly` policy: only a platform access token, which Broker does not
/// issue, passes it; every caller is refused as Altinn refuses a caller without one.
pub struct PlatformComponent;
impl Policy for PlatformComponent {
    const SCOPES: &'static [&'static str] = &[];
}

/// The routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/resourceregistry/api/v1/access-lists/memberships",
            get(memberships),
        )
        .route(
            "/resourceregistry/api/v1/access-lists/get-by-member",
            get(get_by_member),
        )
        .route_layer(from_fn(negotiation::consumes_json))
        .route_layer(from_fn(negotiation::problems_as_json))
}

/// The query of memberships.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MembershipsQuery {
    /// The party (`urn:altinn:organization:identifier-no:<orgnr>`); exactly one.
    #[serde(default)]
    party: Vec<Option<String>>,
    /// The resource (`urn:altinn:resource:<identifier>`); at most one.
    #[serde(default)]
    resource: Vec<Option<String>>,
}

/// One membership (Altinn's `AccessListResourceMembershipWithActionFilterDto`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceMembership {
    /// The party, by organisation number (Altinn names it by its Register party UUID).
    #[schema(example = "urn:altinn:organization:identifier-no:991825827")]
    party: String,
    /// `urn:altinn:resource:<identifier>`.
    resource: String,
    /// When the party became a member of the list.
    since: String,
    /// The actions the list's connection allows; left out when every action.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    action_filters: Vec<String>,
}

/// A list of items (Altinn's `ListObject`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ListObject<T> {
    /// The items.
    data: Vec<T>,
}

/// The values of a repeatable parameter, as sent.
fn values(sent: Vec<Option<String>>) -> Vec<String> {
    sent.into_iter().map(Option::unwrap_or_default).collect()
}

/// The resources a party reaches through the lists it is a member of.
#[utoipa::path(get, path = "/resourceregistry/api/v1/access-lists/memberships",
    tag = "access-lists",
    security(("bearer" = ["altinn:resourceregistry/resource.admin"])),
    params(MembershipsQuery),
    responses(
        (status = 200, description = "The memberships", body = ListObject<ResourceMembership>),
        (status = 400, description = "No, several or malformed parties or resources \
            (RR-00003 to RR-00007), or a party Broker does not know (RR-00001)",
            body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token (no body)"),
        (status = 403, description = "The scope is missing (no body)"),
    ))]
pub async fn memberships(
    State(state): State<AppState>,
    caller: Authorized<Internal>,
    ApiQuery(query): ApiQuery<MembershipsQuery>,
) -> Result<Json<ListObject<ResourceMembership>>, Problem> {
    let mut access = state.clients.access();
    let answer = forward(
        &caller,
        Internal::SCOPES,
        |principal| pb::ListMembershipsRequest {
            principal: Some(principal),
            parties: values(query.party),
            resources: values(query.resource),
        },
        |request| access.list_memberships(request),
    )
    .await?;
    let data = answer
        .memberships
        .into_iter()
        .map(|membership| ResourceMembership {
            party: membership.party,
            resource: format!("urn:altinn:resource:{}", membership.resource),
            since: crate::routes::access_lists::time(membership.since),
            action_filters: membership.action_filters,
        })
        .collect();
    Ok(Json(ListObject { data }))
}

/// The lists a party is a member of, for Altinn's platform components only: every caller
/// Broker can authenticate is refused.
#[utoipa::path(get, path = "/resourceregistry/api/v1/access-lists/get-by-member",
    tag = "access-lists",
    responses(
        (status = 401, description = "No, an expired, or an untrusted token (no body)"),
        (status = 403, description = "Not a platform component (no body)"),
    ))]
pub async fn get_by_member(_caller: Authorized<PlatformComponent>) -> Response {
    // The policy admits no caller, so its refusal answers before this would.
    crate::problem::bare(StatusCode::FORBIDDEN)
}

impl QueryModel for MembershipsQuery {
    const BINDING: QueryBinding = QueryBinding::Parameters;
}
