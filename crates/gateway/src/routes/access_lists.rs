//! The Resource Registry's access lists: `/resourceregistry/api/v1/access-lists/{owner}…`,
//! answered as Altinn's `AccessListsController` answers.
//!
//! Reads need `altinn:resourceregistry/accesslist.read` (or `.write`, `resource.admin`,
//! `pdp:accesslist.read`), changes `.write` (or `resource.admin`): a refusal is ASP.NET's
//! empty 401 or 403. The access registry decides the rest in Altinn's order: the owner (403,
//! `RR-00010`), the list (404), the request's conditions (412, or 304 for a read), then the
//! operation's own rules (`RR-` problems). Pages are `{"links": {"next"}, "data"}` with an
//! absolute next link whose token carries the list's version; every answer about one list
//! carries its weak `ETag` and `Last-Modified`. Bodies and queries bind as ASP.NET binds them;
//! the controller's `[Consumes]` and `[Produces]` apply to every action.

use std::collections::BTreeMap;
use std::fmt;

use axum::extract::{Path, State};
use axum::handler::Handler;
use axum::middleware::from_fn;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use broker_common::Problem;
use broker_proto::access as pb;
use broker_proto::access::change_members_request::Mode;
use http::StatusCode;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Authorized, Policy};
use crate::binding::{ApiJson, ApiQuery, JsonBody, QueryBinding, QueryModel};
use crate::clients::forward;
use crate::conditional::{Conditions, PageParameter, Tagged, not_modified};
use crate::negotiation;
use crate::routes::openapi::ProblemDetails;
use crate::routes::paging::{Origin, Paginated, TokenQuery, encode, next_link, next_token};
use crate::state::AppState;

/// Scope for reading access lists.
const LIST_READ: &str = "altinn:resourceregistry/accesslist.read";
/// Scope for changing access lists.
const LIST_WRITE: &str = "altinn:resourceregistry/accesslist.write";
/// Scope of the registry's administrators.
const RESOURCE_ADMIN: &str = "altinn:resourceregistry/resource.admin";
/// Scope of a policy decision point reading any owner's lists.
const PDP_READ: &str = "altinn:resourceregistry/pdp:accesslist.read";

/// Altinn's `AccessListRead` policy.
pub struct ListReader;
impl Policy for ListReader {
    const SCOPES: &'static [&'static str] = &[RESOURCE_ADMIN, LIST_READ, LIST_WRITE, PDP_READ];
}

/// Altinn's `AccessListWrite` policy.
pub struct ListWriter;
impl Policy for ListWriter {
    const SCOPES: &'static [&'static str] = &[RESOURCE_ADMIN, LIST_WRITE];
}

/// Where access lists live.
const BASE: &str = "/resourceregistry/api/v1/access-lists";

/// The access-list routes.
pub fn routes() -> Router<AppState> {
    let list = format!("{BASE}/{{owner}}/{{identifier}}");
    let json = Router::new()
        .route(&format!("{BASE}/{{owner}}"), get(list_access_lists))
        .route(
            &list,
            get(get_access_list)
                .put(upsert_access_list)
                .delete(delete_access_list),
        )
        .route(
            &format!("{BASE}/{{owner}}/{{identifier}}/members"),
            get(list_members)
                .put(replace_members)
                .post(add_members)
                .delete(remove_members),
        )
        .route(
            &format!("{BASE}/{{owner}}/{{identifier}}/resource-connections"),
            get(list_connections),
        )
        .route(
            &format!("{BASE}/{{owner}}/{{identifier}}/resource-connections/{{resourceIdentifier}}"),
            put(connect_resource).delete(disconnect_resource),
        )
        .route_layer(from_fn(negotiation::consumes_json));
    // PATCH consumes JSON Patch instead; added after the JSON layer, so it does not get it.
    let patch = patch_access_list.layer(from_fn(negotiation::consumes_json_patch));
    json.route(&list, axum::routing::patch(patch))
        .route_layer(from_fn(negotiation::problems_as_json))
}

/// The path of one list.
fn list_path(owner: &str, identifier: &str) -> String {
    format!("{BASE}/{}/{}", encode(owner), encode(identifier))
}

/// A point in time as Altinn's `DateTimeOffset` is written (`2026-01-31T12:00:00+00:00`).
pub fn time(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S+00:00")
        .to_string()
}

/// An access list (Altinn's `AccessListInfoDto`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessList {
    /// `urn:altinn:access-list:<owner>:<identifier>`, as policies name it.
    #[schema(example = "urn:altinn:access-list:digdir:allowed-senders")]
    urn: String,
    /// Unique among the owner's lists.
    #[schema(example = "allowed-senders")]
    identifier: String,
    /// A name for people.
    name: String,
    /// A description.
    description: String,
    /// When it was created.
    created_at: String,
    /// When it last changed.
    updated_at: String,
    /// Its connections, when asked for (`include`).
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_connections: Option<Vec<ResourceConnection>>,
}

impl From<pb::AccessList> for AccessList {
    fn from(list: pb::AccessList) -> Self {
        Self {
            urn: format!("urn:altinn:access-list:{}:{}", list.owner, list.identifier),
            identifier: list.identifier,
            name: list.name,
            description: list.description,
            created_at: time(list.created_at),
            updated_at: time(list.updated_at),
            resource_connections: list.connections_included.then(|| {
                list.resource_connections
                    .into_iter()
                    .map(Into::into)
                    .collect()
            }),
        }
    }
}

/// A list's connection to a resource (Altinn's `AccessListResourceConnectionDto`): its members
/// may perform these actions on it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceConnection {
    /// The resource's identifier.
    resource_identifier: String,
    /// The actions members may perform; left out when every action (or when not asked for).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    action_filters: Vec<String>,
    /// When it was made.
    created_at: String,
    /// When its actions last changed.
    updated_at: String,
}

impl From<pb::ResourceConnection> for ResourceConnection {
    fn from(connection: pb::ResourceConnection) -> Self {
        Self {
            resource_identifier: connection.resource_identifier,
            action_filters: connection.action_filters,
            created_at: time(connection.created_at),
            updated_at: time(connection.updated_at),
        }
    }
}

/// A member of a list (Altinn's `AccessListMembershipDto`). Altinn names members by their
/// Register party UUID; Broker has no Register and names them by organisation number.
#[derive(Debug, Serialize, ToSchema)]
pub struct Member {
    /// The party, `urn:altinn:organization:identifier-no:<nine digits>`.
    #[schema(example = "urn:altinn:organization:identifier-no:991825827")]
    id: String,
    /// When it became a member.
    since: String,
    /// The party's identifiers by URN prefix.
    identifiers: BTreeMap<&'static str, String>,
}

impl From<pb::Member> for Member {
    fn from(member: pb::Member) -> Self {
        let prefix = "urn:altinn:organization:identifier-no";
        let identifiers = member
            .party
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(|number| BTreeMap::from([(prefix, number.to_owned())]))
            .unwrap_or_default();
        Self {
            id: member.party,
            since: time(member.since),
            identifiers,
        }
    }
}

/// A list's name and description (Altinn's `CreateAccessListModel`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct ListDetails {
    /// A name for people, required.
    #[serde(default)]
    name: Option<String>,
    /// A description; absent or `null` is empty.
    #[serde(default)]
    description: Option<String>,
}

/// Parties to add, remove or make the only members (Altinn's
/// `UpsertAccessListPartyMembersListDto`): exactly `{"data": [...]}`, as its converter reads it.
#[derive(Debug, ToSchema)]
pub struct MemberParties {
    /// Party URNs: `urn:altinn:organization:identifier-no:<nine digits>` (Broker resolves only
    /// these; `urn:altinn:party:id:…` and `urn:altinn:party:uuid:…` name parties only Altinn's
    /// Register knows).
    data: Vec<String>,
}

impl<'de> Deserialize<'de> for MemberParties {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Body;
        impl<'de> Visitor<'de> for Body {
            type Value = MemberParties;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object holding only `data`")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MemberParties, A::Error> {
                // The name must be exactly `data`, and nothing may follow it.
                if map.next_key::<String>()?.as_deref() != Some("data") {
                    return Err(de::Error::custom("Expected property 'data'"));
                }
                let data = map.next_value()?;
                if map.next_key::<String>()?.is_some() {
                    return Err(de::Error::custom("Expected end of object"));
                }
                Ok(MemberParties { data })
            }
        }
        deserializer.deserialize_map(Body)
    }
}

/// The actions a connection allows (Altinn's `UpsertAccessListResourceConnectionDto`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionDetails {
    /// Any texts; absent, `null` or empty means every action.
    #[serde(default)]
    action_filters: Option<Vec<String>>,
}

/// What an answer about lists includes: Altinn's `include`, repeated or comma-separated.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IncludeQuery {
    /// `resources`, `resource-actions` (connections with their actions) or `members`.
    #[serde(default)]
    include: Vec<Option<String>>,
}

/// The includes `values` name, or ASP.NET's 400 naming every value Altinn's binder refuses
/// (the names are case-sensitive).
fn includes(values: &[Option<String>]) -> Result<pb::Includes, Problem> {
    let mut includes = pb::Includes::default();
    let mut errors = Vec::new();
    let names = values
        .iter()
        .flatten()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|name| !name.is_empty());
    for name in names {
        match name {
            "resources" => includes.connections = true,
            "resource-actions" => includes.actions = true,
            "members" => includes.members = true,
            other => errors.push(format!("Invalid value: '{other}'")),
        }
    }
    if errors.is_empty() {
        Ok(includes)
    } else {
        Err(Problem::validation([("include".to_owned(), errors)].into()))
    }
}

/// The includes as a next link repeats them.
fn include_text(includes: &pb::Includes) -> Option<String> {
    let names: Vec<&str> = [
        (includes.connections, "resources"),
        (includes.actions, "resource-actions"),
        (includes.members, "members"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect();
    (!names.is_empty()).then(|| names.join(","))
}

/// The query of a listing of lists.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct ListsQuery {
    /// Continuation token, from the previous page's next link.
    token: Option<String>,
    /// `resources`, `resource-actions` (both need `resource`) or `members` (Altinn: 501).
    #[serde(default)]
    include: Vec<Option<String>>,
    /// The resource whose connection each list includes (it does not filter the lists).
    resource: Option<String>,
    /// Lists per page (an extension; Altinn's pages hold 20, the default).
    page_size: Option<u32>,
}

/// The owner's access lists, 20 a page by identifier.
#[utoipa::path(get, path = "/resourceregistry/api/v1/access-lists/{owner}", tag = "access-lists",
    security(("bearer" = ["altinn:resourceregistry/accesslist.read"])),
    params(("owner" = String, Path, description = "The owner's org code",
            pattern = "^[A-Za-z0-9]{2,10}$"), ListsQuery),
    responses(
        (status = 200, description = "A page of lists", body = Paginated<AccessList>),
        (status = 400, description = "A query parameter is invalid, connections are included \
            without `resource` (RR-00002), or the owner is no org code (RR-00010)",
            body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token (no body)"),
        (status = 403, description = "The scope is missing or the caller is not the owner (no \
            body)"),
        (status = 501, description = "`include=members` (RR-00000)", body = ProblemDetails),
    ))]
pub async fn list_access_lists(
    State(state): State<AppState>,
    caller: Authorized<ListReader>,
    Path(owner): Path<String>,
    origin: Origin,
    ApiQuery(query): ApiQuery<ListsQuery>,
) -> Result<Json<Paginated<AccessList>>, Problem> {
    let includes = includes(&query.include)?;
    let mut access = state.clients.access();
    let listed = forward(
        &caller,
        ListReader::SCOPES,
        |principal| pb::ListAccessListsRequest {
            principal: Some(principal),
            owner,
            resource: query.resource.clone().unwrap_or_default(),
            includes: Some(includes),
            page: crate::routes::paging::page_request(query.token, query.page_size),
        },
        |request| access.list_access_lists(request),
    )
    .await?;
    let params = [
        ("include", include_text(&includes)),
        ("resource", query.resource),
        ("pageSize", query.page_size.map(|size| size.to_string())),
    ];
    let path = format!("{BASE}/{}", encode(&listed.owner));
    let next = next_link(&path, &params, next_token(listed.page)).map(|link| origin.url(&link));
    let lists = listed.lists.into_iter().map(Into::into).collect();
    Ok(Json(Paginated::new(lists, next)))
}

/// One access list.
#[utoipa::path(get, path = "/resourceregistry/api/v1/access-lists/{owner}/{identifier}",
    tag = "access-lists",
    security(("bearer" = ["altinn:resourceregistry/accesslist.read"])),
    params(
        ("owner" = String, Path, description = "The owner's org code",
            pattern = "^[A-Za-z0-9]{2,10}$"),
        ("identifier" = String, Path, description = "The list's identifier"),
        ("If-None-Match" = Option<String>, Header, description = "An `ETag` of the list"),
        IncludeQuery,
    ),
    responses(
        (status = 200, description = "The list", body = AccessList,
            headers(
                ("ETag" = String, description = "The list's version"),
                ("Last-Modified" = String, description = "The list's last change"),
            )),
        (status = 304, description = "The client's copy is current"),
        (status = 401, description = "No, an expired, or an untrusted token (no body)"),
        (status = 403, description = "The scope is missing or the caller is not the owner (no \
            body)"),
        (status = 404, description = "No such list", body = ProblemDetails),
        (status = 412, description = "A condition does not hold", body = ProblemDetails),
    ))]
pub async fn get_access_list(
    State(state): State<AppState>,
    caller: Authorized<ListReader>,
    Path((owner, identifier)): Path<(String, String)>,
    conditions: Conditions,
    ApiQuery(include): ApiQuery<IncludeQuery>,
) -> Result<Response, Problem> {
    let includes = includes(&include.include)?;
    let mut access = state.clients.access();
    let list = forward(
        &caller,
        ListReader::SCOPES,
        |principal| pb::GetAccessListRequest {
            principal: Some(principal),
            owner,
            identifier,
            includes: Some(includes),
            conditions: conditions.into_inner(),
        },
        |request| access.get_access_list(request),
    )
    .await?;
    Ok(list_answer(list))
}

/// A list as answered: 304 when the client's copy is current, else 200 with its tag.
fn list_answer(list: pb::AccessList) -> Response {
    if list.not_modified {
        return not_modified(list.version, list.updated_at);
    }
    Tagged::ok(list.version, list.updated_at, AccessList::from(list)).into_response()
}

/// Creates an access list, or changes its name and description; 200 either way.
#[utoipa::path(put, path = "/resourceregistry/api/v1/access-lists/{owner}/{identifier}",
    tag = "access-lists",
    security(("bearer" = ["altinn:resourceregistry/accesslist.write"])),
    params(
        ("owner" = String, Path, description = "The owner's org code",
            pattern = "^[A-Za-z0-9]{2,10}$"),
        ("identifier" = String, Path, description = "The list's identifier"),
        ("If-Match" = Option<String>, Header, description = "An `ETag` of the list, or `*`"),
        ("If-None-Match" = Option<String>, Header, description = "`*` to only create"),
    ),
    request_body = ListDetails,
    responses(
        (status = 200, description = "The list", body = AccessList,
            headers(("ETag" = String, description = "The list's version"))),
        (status = 400, description = "The name is missing, or a condition header is invalid",
            body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token (no body)"),
        (status = 403, description = "The scope is missing or the caller is not the owner (no \
            body)"),
        (status = 412, description = "A condition does not hold", body = ProblemDetails),
    ))]
pub async fn upsert_access_list(
    State(state): State<AppState>,
    caller: Authorized<ListWriter>,
    Path((owner, identifier)): Path<(String, String)>,
    conditions: Conditions,
    ApiJson(details): ApiJson<ListDetails>,
) -> Result<Response, Problem> {
    let mut access = state.clients.access();
    let list = forward(
        &caller,
        ListWriter::SCOPES,
        |principal| pb::UpsertAccessListRequest {
            principal: Some(principal),
            owner,
            identifier,
            name: details.name.unwrap_or_default(),
            description: details.description.unwrap_or_default(),
            conditions: conditions.into_inner(),
        },
        |request| access.upsert_access_list(request),
    )
    .await?;
    Ok(list_answer(list))
}

/// Deletes an access list with its members and connections; 204 when there is none.
#[utoipa::path(delete, path = "/resourceregistry/api/v1/access-lists/{owner}/{identifier}",
    tag = "access-lists",
    security(("bearer" = ["altinn:resourceregistry/accesslist.write"])),
    params(
        ("owner" = String, Path, description = "The owner's org code",
            pattern = "^[A-Za-z0-9]{2,10}$"),
        ("identifier" = String, Path, description = "The list's identifier"),
        ("If-Match" = Option<String>, Header, description = "An `ETag` of the list"),
    ),
    responses(
        (status = 200, description = "The list as it was", body = AccessList,
            headers(("ETag" = String, description = "The list's last version"))),
        (status = 204, description = "There was no such list"),
        (status = 401, description = "No, an expired, or an untrusted token (no body)"),
        (status = 403, description = "The scope is missing or the caller is not the owner (no \
            body)"),
        (status = 412, description = "A condition does not hold", body = ProblemDetails),
    ))]
pub async fn delete_access_list(
    State(state): State<AppState>,
    caller: Authorized<ListWriter>,
    Path((owner, identifier)): Path<(String, String)>,
    conditions: Conditions,
) -> Result<Response, Problem> {
    let mut access = state.clients.access();
    let deleted = forward(
        &caller,
        ListWriter::SCOPES,
        |principal| pb::DeleteAccessListRequest {
            principal: Some(principal),
            owner,
            identifier,
            conditions: conditions.into_inner(),
        },
        |request| access.delete_access_list(request),
    )
    .await;
    match deleted {
        Ok(list) => Ok(list_answer(list)),
        Err(problem) if problem.status == StatusCode::NOT_FOUND.as_u16() => {
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Err(problem) => Err(problem),
    }
}

/// JSON Patch of a list: Altinn's action throws `NotImplementedException`, answered 501 once
/// the caller is authorised for the owner.
#[utoipa::path(patch, path = "/resourceregistry/api/v1/access-lists/{owner}/{identifier}",
    tag = "access-lists",
    security(("bearer" = ["altinn:resourceregistry/accesslist.write"])),
    params(
        ("owner" = String, Path, description = "The owner's org code",
            pattern = "^[A-Za-z0-9]{2,10}$"),
        ("identifier" = String, Path, description = "The list's identifier"),
    ),
    responses(
        (status = 401, description = "No, an expired, or an untrusted token (no body)"),
        (status = 403, description = "The scope is missing or the caller is not the owner (no \
            body)"),
        (status = 415, description = "The body is not `application/json-patch+json`"),
        (status = 501, description = "Not implemented, as in Altinn", body = ProblemDetails),
    ))]
pub async fn patch_access_list(
    State(state): State<AppState>,
    caller: Authorized<ListWriter>,
    Path((owner, _identifier)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let mut access = state.clients.access();
    forward(
        &caller,
        ListWriter::SCOPES,
        |principal| pb::ResolveOwnerRequest {
            principal: Some(principal),
            owner,
        },
        |request| access.resolve_owner(request),
    )
    .await?;
    Err(Problem::bare(StatusCode::NOT_IMPLEMENTED))
}

/// A page of members as answered: 304 when the client's copy is current, else the page with
/// the list's tag and the next page's absolute link.
fn members_answer(
    origin: &Origin,
    owner: &str,
    identifier: &str,
    page_size: Option<u32>,
    members: pb::ListMembersResponse,
) -> Response {
    if members.not_modified {
        return not_modified(members.version, members.updated_at);
    }
    let path = format!("{}/members", list_path(owner, identifier));
    let params = [("pageSize", page_size.map(|size| size.to_string()))];
    let data = members.members.into_iter().map(Member::from).collect();
    tagged_page(
        origin,
        &path,
        &params,
        (members.version, members.updated_at),
        members.page,
        data,
    )
}

/// A page of a list's members or connections at the list's version: its `ETag` and
/// `Last-Modified`, and a `next` link to the following page that repeats `params`.
fn tagged_page<T: Serialize>(
    origin: &Origin,
    path: &str,
    params: &[(&str, Option<String>)],
    (version, updated_at): (u64, i64),
    page: Option<broker_proto::common::PageInfo>,
    data: Vec<T>,
) -> Response {
    let next = next_link(path, params, next_token(page)).map(|link| origin.url(&link));
    Tagged::ok(version, updated_at, Paginated::new(data, next)).into_response()
}

/// A list's members, 100 a page; a list changed while paging is 412.
#[utoipa::path(get, path = "/resourceregistry/api/v1/access-lists/{owner}/{identifier}/members",
    tag = "access-lists",
    security(("bearer" = ["altinn:resourceregistry/accesslist.read"])),
    params(
        ("owner" = String, Path, description = "The owner's org code",
            pattern = "^[A-Za-z0-9]{2,10}$"),
        ("identifier" = String, Path, description = "The list's identifier"),
        ("If-None-Match" = Option<String>, Header, description = "An `ETag` of the list"),
        TokenQuery,
    ),
    responses(
        (status = 200, description = "A page of members", body = Paginated<Member>,
            headers(("ETag" = String, description = "The list's version"))),
        (status = 304, description = "The client's copy is current"),
        (status = 401, description = "No, an expired, or an untrusted token (no body)"),
        (status = 403, description = "The scope is missing or the caller is not the owner (no \
            body)"),
        (status = 404, description = "No such list", body = ProblemDetails),
        (status = 412, description = "A condition does not hold, or the list changed while \
            paging", body = ProblemDetails),
    ))]
pub async fn list_members(
    State(state): State<AppState>,
    caller: Authorized<ListReader>,
    Path((owner, identifier)): Path<(String, String)>,
    origin: Origin,
    conditions: Conditions<PageParameter>,
    ApiQuery(page): ApiQuery<TokenQuery>,
) -> Result<Response, Problem> {
    let mut access = state.clients.access();
    let members = forward(
        &caller,
        ListReader::SCOPES,
        |principal| pb::ListMembersRequest {
            principal: Some(principal),
            owner: owner.clone(),
            identifier: identifier.clone(),
            page: page.request(),
            conditions: conditions.into_inner(),
        },
        |request| access.list_members(request),
    )
    .await?;
    Ok(members_answer(
        &origin,
        &owner,
        &identifier,
        page.page_size,
        members,
    ))
}

/// The one member change every members route makes, in its `mode`.
async fn change_members(
    state: AppState,
    caller: &Authorized<ListWriter>,
    (owner, identifier): (String, String),
    origin: Origin,
    conditions: Conditions,
    mode: Mode,
    parties: MemberParties,
) -> Result<Response, Problem> {
    let mut access = state.clients.access();
    let members = forward(
        caller,
        ListWriter::SCOPES,
        |principal| pb::ChangeMembersRequest {
            principal: Some(principal),
            owner: owner.clone(),
            identifier: identifier.clone(),
            mode: mode.into(),
            parties: parties.data,
            conditions: conditions.into_inner(),
        },
        |request| access.change_members(request),
    )
    .await?;
    // The service answers the first page, at its default size.
    Ok(members_answer(&origin, &owner, &identifier, None, members))
}

/// Makes these parties (at most 100) the list's only members.
#[utoipa::path(put, path = "/resourceregistry/api/v1/access-lists/{owner}/{identifier}/members",
    tag = "access-lists",
    security(("bearer" = ["altinn:resourceregistry/accesslist.write"])),
    params(
        ("owner" = String, Path, description = "The owner's org code",
            pattern = "^[A-Za-z0-9]{2,10}$"),
        ("identifier" = String, Path, description = "The list's identifier"),
        ("If-Match" = Option<String>, Header, description = "An `ETag` of the list"),
    ),
    request_body = MemberParties,
    responses(
        (status = 200, description = "The first page of members after the change",
            body = Paginated<Member>,
            headers(("ETag" = String, description = "The list's version"))),
        (status = 400, description = "A party is malformed, more than 100 (RR-00000), or not \
            found (RR-00001)", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token (no body)"),
        (status = 403, description = "The scope is missing or the caller is not the owner (no \
            body)"),
        (status = 404, description = "No such list", body = ProblemDetails),
        (status = 412, description = "A condition does not hold", body = ProblemDetails),
    ))]
pub async fn replace_members(
    State(state): State<AppState>,
    caller: Authorized<ListWriter>,
    Path(list): Path<(String, String)>,
    origin: Origin,
    conditions: Conditions,
    ApiJson(parties): ApiJson<MemberParties>,
) -> Result<Response, Problem> {
    change_members(
        state,
        &caller,
        list,
        origin,
        conditions,
        Mode::Replace,
        parties,
    )
    .await
}

/// Adds parties (at most 100) to the list; members already there stay as they are.
#[utoipa::path(post, path = "/resourceregistry/api/v1/access-lists/{owner}/{identifier}/members",
    tag = "access-lists",
    security(("bearer" = ["altinn:resourceregistry/accesslist.write"])),
    params(
        ("owner" = String, Path, description = "The owner's org code",
            pattern = "^[A-Za-z0-9]{2,10}$"),
        ("identifier" = String, Path, description = "The list's identifier"),
        ("If-Match" = Option<String>, Header, description = "An `ETag` of the list"),
    ),
    request_body = MemberParties,
    responses(
        (status = 200, description = "The first page of members after the change",
            body = Paginated<Member>,
            headers(("ETag" = String, description = "The list's version"))),
        (status = 400, description = "A party is malformed, more than 100 or not found \
            (RR-00001)", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token (no body)"),
        (status = 403, description = "The scope is missing or the caller is not the owner (no \
            body)"),
        (status = 404, description = "No such list", body = ProblemDetails),
        (status = 412, description = "A condition does not hold", body = ProblemDetails),
    ))]
pub async fn add_members(
    State(state): State<AppState>,
    caller: Authorized<ListWriter>,
    Path(list): Path<(String, String)>,
    origin: Origin,
    conditions: Conditions,
    ApiJson(parties): ApiJson<MemberParties>,
) -> Result<Response, Problem> {
    change_members(state, &caller, list, origin, conditions, Mode::Add, parties).await
}

/// Removes parties (at most 100) from the list; parties that are not members are ignored.
#[utoipa::path(delete, path = "/resourceregistry/api/v1/access-lists/{owner}/{identifier}/members",
    tag = "access-lists",
    security(("bearer" = ["altinn:resourceregistry/accesslist.write"])),
    params(
        ("owner" = String, Path, description = "The owner's org code",
            pattern = "^[A-Za-z0-9]{2,10}$"),
        ("identifier" = String, Path, description = "The list's identifier"),
        ("If-Match" = Option<String>, Header, description = "An `ETag` of the list"),
    ),
    request_body = MemberParties,
    responses(
        (status = 200, description = "The first page of members after the change",
            body = Paginated<Member>,
            headers(("ETag" = String, description = "The list's version"))),
        (status = 400, description = "A party is malformed, more than 100 or not found \
            (RR-00001)", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token (no body)"),
        (status = 403, description = "The scope is missing or the caller is not the owner (no \
            body)"),
        (status = 404, description = "No such list", body = ProblemDetails),
        (status = 412, description = "A condition does not hold", body = ProblemDetails),
    ))]
pub async fn remove_members(
    State(state): State<AppState>,
    caller: Authorized<ListWriter>,
    Path(list): Path<(String, String)>,
    origin: Origin,
    conditions: Conditions,
    ApiJson(parties): ApiJson<MemberParties>,
) -> Result<Response, Problem> {
    change_members(
        state,
        &caller,
        list,
        origin,
        conditions,
        Mode::Remove,
        parties,
    )
    .await
}

/// The resources a list is connected to, 100 a page; a list changed while paging is 412.
#[utoipa::path(get,
    path = "/resourceregistry/api/v1/access-lists/{owner}/{identifier}/resource-connections",
    tag = "access-lists",
    security(("bearer" = ["altinn:resourceregistry/accesslist.read"])),
    params(
        ("owner" = String, Path, description = "The owner's org code",
            pattern = "^[A-Za-z0-9]{2,10}$"),
        ("identifier" = String, Path, description = "The list's identifier"),
        ("If-None-Match" = Option<String>, Header, description = "An `ETag` of the list"),
        TokenQuery,
    ),
    responses(
        (status = 200, description = "A page of connections", body = Paginated<ResourceConnection>,
            headers(("ETag" = String, description = "The list's version"))),
        (status = 304, description = "The client's copy is current"),
        (status = 401, description = "No, an expired, or an untrusted token (no body)"),
        (status = 403, description = "The scope is missing or the caller is not the owner (no \
            body)"),
        (status = 404, description = "No such list", body = ProblemDetails),
        (status = 412, description = "A condition does not hold, or the list changed while \
            paging", body = ProblemDetails),
    ))]
pub async fn list_connections(
    State(state): State<AppState>,
    caller: Authorized<ListReader>,
    Path((owner, identifier)): Path<(String, String)>,
    origin: Origin,
    conditions: Conditions<PageParameter>,
    ApiQuery(page): ApiQuery<TokenQuery>,
) -> Result<Response, Problem> {
    let mut access = state.clients.access();
    let listed = forward(
        &caller,
        ListReader::SCOPES,
        |principal| pb::ListConnectionsRequest {
            principal: Some(principal),
            owner: owner.clone(),
            identifier: identifier.clone(),
            page: page.request(),
            conditions: conditions.into_inner(),
        },
        |request| access.list_connections(request),
    )
    .await?;
    if listed.not_modified {
        return Ok(not_modified(listed.version, listed.updated_at));
    }
    let path = format!("{}/resource-connections", list_path(&owner, &identifier));
    let data: Vec<ResourceConnection> = listed.connections.into_iter().map(Into::into).collect();
    Ok(tagged_page(
        &origin,
        &path,
        &page.params(),
        (listed.version, listed.updated_at),
        listed.page,
        data,
    ))
}

/// A connection as answered after a write: the list's new tag and last change.
fn connection_answer(connection: pb::ResourceConnection) -> Response {
    let (version, updated_at) = (connection.list_version, connection.list_updated_at);
    Tagged::ok(version, updated_at, ResourceConnection::from(connection)).into_response()
}

/// Connects the list to a resource of the same owner, or changes the connection's actions.
#[utoipa::path(put,
    path = "/resourceregistry/api/v1/access-lists/{owner}/{identifier}/resource-connections/{resourceIdentifier}",
    tag = "access-lists",
    security(("bearer" = ["altinn:resourceregistry/accesslist.write"])),
    params(
        ("owner" = String, Path, description = "The owner's org code",
            pattern = "^[A-Za-z0-9]{2,10}$"),
        ("identifier" = String, Path, description = "The list's identifier"),
        ("resourceIdentifier" = String, Path, description = "The resource's identifier"),
        ("If-Match" = Option<String>, Header, description = "An `ETag` of the list"),
    ),
    request_body = ConnectionDetails,
    responses(
        (status = 200, description = "The connection", body = ResourceConnection,
            headers(("ETag" = String, description = "The list's version"))),
        (status = 400, description = "No such resource (RR-00002)", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token (no body)"),
        (status = 403, description = "The scope is missing or the caller is not the list's owner \
            (no body), or the resource is another owner's (RR-00004)", body = ProblemDetails),
        (status = 404, description = "No such list", body = ProblemDetails),
        (status = 412, description = "A condition does not hold", body = ProblemDetails),
    ))]
pub async fn connect_resource(
    State(state): State<AppState>,
    caller: Authorized<ListWriter>,
    Path((owner, identifier, resource_identifier)): Path<(String, String, String)>,
    conditions: Conditions,
    ApiJson(details): ApiJson<ConnectionDetails>,
) -> Result<Response, Problem> {
    let mut access = state.clients.access();
    let connection = forward(
        &caller,
        ListWriter::SCOPES,
        |principal| pb::ConnectResourceRequest {
            principal: Some(principal),
            owner,
            identifier,
            resource_identifier,
            action_filters: details.action_filters.unwrap_or_default(),
            conditions: conditions.into_inner(),
        },
        |request| access.connect_resource(request),
    )
    .await?;
    Ok(connection_answer(connection))
}

/// Removes the list's connection to a resource; 204 when there is none.
#[utoipa::path(delete,
    path = "/resourceregistry/api/v1/access-lists/{owner}/{identifier}/resource-connections/{resourceIdentifier}",
    tag = "access-lists",
    security(("bearer" = ["altinn:resourceregistry/accesslist.write"])),
    params(
        ("owner" = String, Path, description = "The owner's org code",
            pattern = "^[A-Za-z0-9]{2,10}$"),
        ("identifier" = String, Path, description = "The list's identifier"),
        ("resourceIdentifier" = String, Path, description = "The resource's identifier"),
        ("If-Match" = Option<String>, Header, description = "An `ETag` of the list"),
    ),
    responses(
        (status = 200, description = "The connection as it was", body = ResourceConnection,
            headers(("ETag" = String, description = "The list's new version"))),
        (status = 204, description = "The list was not connected to the resource"),
        (status = 401, description = "No, an expired, or an untrusted token (no body)"),
        (status = 403, description = "The scope is missing or the caller is not the owner (no \
            body)"),
        (status = 404, description = "No such list", body = ProblemDetails),
        (status = 412, description = "A condition does not hold", body = ProblemDetails),
    ))]
pub async fn disconnect_resource(
    State(state): State<AppState>,
    caller: Authorized<ListWriter>,
    Path((owner, identifier, resource_identifier)): Path<(String, String, String)>,
    conditions: Conditions,
) -> Result<Response, Problem> {
    let mut access = state.clients.access();
    let removed = forward(
        &caller,
        ListWriter::SCOPES,
        |principal| pb::DisconnectResourceRequest {
            principal: Some(principal),
            owner,
            identifier,
            resource_identifier,
            conditions: conditions.into_inner(),
        },
        |request| access.disconnect_resource(request),
    )
    .await?;
    Ok(match removed.connection {
        Some(connection) => connection_answer(connection),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

impl JsonBody for ListDetails {
    const PARAMETER: &'static str = "model";
    const TYPE: &'static str = "Altinn.ResourceRegistry.Models.CreateAccessListModel";
}

impl JsonBody for MemberParties {
    const PARAMETER: &'static str = "members";
    const TYPE: &'static str = "Altinn.ResourceRegistry.Models.UpsertAccessListPartyMembersListDto";
}

impl JsonBody for ConnectionDetails {
    const PARAMETER: &'static str = "model";
    const TYPE: &'static str =
        "Altinn.ResourceRegistry.Models.UpsertAccessListResourceConnectionDto";
}

impl QueryModel for IncludeQuery {
    const BINDING: QueryBinding = QueryBinding::Parameters;
}

impl QueryModel for ListsQuery {
    const BINDING: QueryBinding = QueryBinding::Parameters;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binding::{parse_json, parse_query};

    /// Mirrors `AccessListIncludesModelBinderTests`: repeated or comma-separated, case-sensitive.
    #[test]
    fn include_takes_altinns_values() {
        let query: ListsQuery =
            parse_query("include=resources&include=resource-actions,members&include=").unwrap();
        let bound = includes(&query.include).unwrap();
        assert!(bound.connections && bound.actions && bound.members);
        assert_eq!(
            include_text(&bound).as_deref(),
            Some("resources,resource-actions,members")
        );
        let problem = includes(&[Some("Resources, nope".into())]).unwrap_err();
        assert_eq!(
            problem.errors.unwrap()["include"],
            ["Invalid value: 'Resources'", "Invalid value: 'nope'"]
        );
    }

    /// Mirrors `UpsertAccessListPartyMembersListDto`'s converter: `data` and nothing else.
    #[test]
    fn a_members_body_is_exactly_data() {
        let body = br#"{"data": ["urn:altinn:party:id:1"]}"#;
        assert_eq!(parse_json::<MemberParties>(body).unwrap().data.len(), 1);
        for refused in [
            r#"{"Data": []}"#,
            r#"{"data": [], "extra": 1}"#,
            r#"{}"#,
            r#"{"data": "x"}"#,
        ] {
            assert!(
                parse_json::<MemberParties>(refused.as_bytes()).is_err(),
                "{refused}"
            );
        }
    }

    #[test]
    fn members_name_their_organisation_number_and_times_read_as_altinns() {
        let member = Member::from(pb::Member {
            party: "urn:altinn:organization:identifier-no:991825827".into(),
            since: 0,
        });
        assert_eq!(member.since, "1970-01-01T00:00:00+00:00");
        assert_eq!(
            serde_json::to_value(&member).unwrap()["identifiers"],
            serde_json::json!({"urn:altinn:organization:identifier-no": "991825827"})
        );
    }
}
