//! The Resource Registry's access lists: `/resourceregistry/api/v1/access-lists/{owner}…`,
//! where `owner` is the service owner's org code.
//!
//! Reads need `altinn:resourceregistry/accesslist.read` (or `.write`), changes `.write`; both
//! are checked here before forwarding, and the access registry checks them again and that the
//! caller is the owner. Every answer about a list carries the list's version as `ETag`, and
//! every change honours `If-Match`. Shapes follow Altinn: pages are `{"data", "links"}`, with
//! the continuation in the next link's `token`.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use broker_common::Problem;
use broker_proto::access as pb;
use broker_proto::access::change_members_request::Mode;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authenticated;
use crate::binding::{ApiJson, ApiQuery, JsonBody, QueryBinding, QueryModel, null_as_default};
use crate::clients::forward;
use crate::conditional::{IfMatch, Tagged};
use crate::routes::openapi::ProblemDetails;
use crate::routes::paging::{Paginated, TokenQuery, encode, next_link, next_token, page_request};
use crate::state::AppState;

/// Scope for reading access lists.
const LIST_READ: &str = "altinn:resourceregistry/accesslist.read";
/// Scope for changing access lists.
const LIST_WRITE: &str = "altinn:resourceregistry/accesslist.write";
/// Either scope lets a caller read.
const READERS: &[&str] = &[LIST_READ, LIST_WRITE];
/// Only the write scope lets a caller change.
const WRITERS: &[&str] = &[LIST_WRITE];

/// Where access lists live.
const BASE: &str = "/resourceregistry/api/v1/access-lists";

/// The access-list routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(&format!("{BASE}/{{owner}}"), get(list_access_lists))
        .route(
            &format!("{BASE}/{{owner}}/{{identifier}}"),
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
}

/// The path of one list.
fn list_path(owner: &str, identifier: &str) -> String {
    format!("{BASE}/{}/{}", encode(owner), encode(identifier))
}

/// An access list.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessList {
    /// `urn:altinn:access-list:<owner>:<identifier>`, as policies name it.
    #[schema(example = "urn:altinn:access-list:digdir:allowed-senders")]
    urn: String,
    /// Unique among the owner's lists (lowercase letters, digits and `-`).
    #[schema(example = "allowed-senders")]
    identifier: String,
    /// A name for people.
    name: String,
    /// A description.
    description: String,
    /// The version, also sent as `ETag`.
    version: u64,
    /// When it was created (RFC 3339).
    created_at: String,
    /// When it last changed (RFC 3339).
    updated_at: String,
    /// The resources it is connected to, when asked for (`include=resources`).
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_connections: Option<Vec<ResourceConnection>>,
}

impl AccessList {
    /// The list, with its connections when `connections` is set.
    fn new(list: pb::AccessList, connections: bool) -> Self {
        Self {
            urn: format!("urn:altinn:access-list:{}:{}", list.owner, list.identifier),
            identifier: list.identifier,
            name: list.name,
            description: list.description,
            version: list.version,
            created_at: list.created,
            updated_at: list.updated,
            resource_connections: connections.then(|| {
                list.resource_connections
                    .into_iter()
                    .map(Into::into)
                    .collect()
            }),
        }
    }
}

/// A list's connection to a resource: its members may perform these actions on it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceConnection {
    /// The resource's identifier.
    resource_identifier: String,
    /// The actions members may perform; empty means every action.
    action_filters: Vec<String>,
    /// When it was made (RFC 3339).
    created_at: String,
    /// When its filters last changed (RFC 3339).
    modified_at: String,
}

impl From<pb::ResourceConnection> for ResourceConnection {
    fn from(connection: pb::ResourceConnection) -> Self {
        Self {
            resource_identifier: connection.resource_identifier,
            action_filters: connection.action_filters,
            created_at: connection.created,
            modified_at: connection.modified,
        }
    }
}

/// A member of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Member {
    /// The party, `urn:altinn:organization:identifier-no:<nine digits>`.
    #[schema(example = "urn:altinn:organization:identifier-no:991825827")]
    id: String,
    /// When it became a member (RFC 3339).
    since: String,
}

/// A list's name and description, to create or change it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ListDetails {
    /// A name for people, required.
    name: String,
    /// A description.
    #[serde(default, deserialize_with = "null_as_default")]
    description: String,
}

/// Parties to add, remove or make the only members.
#[derive(Debug, Deserialize, ToSchema)]
pub struct MemberParties {
    /// Party URNs, `urn:altinn:organization:identifier-no:<nine digits>`.
    data: Vec<String>,
}

/// The actions a connection allows.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionDetails {
    /// The actions members may perform; absent, `null` or empty means every action.
    #[serde(default, deserialize_with = "null_as_default")]
    action_filters: Vec<String>,
}

/// What a list's answer includes besides the list itself.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IncludeQuery {
    /// `resources` (or `resource-actions`) to include the list's resource connections.
    include: Option<String>,
}

/// Whether `include` (Altinn's comma-separated list) asks for resource connections; 400 for
/// anything this API cannot include.
fn includes_connections(include: Option<&str>) -> Result<bool, Problem> {
    let mut connections = false;
    for value in include.into_iter().flat_map(|include| include.split(',')) {
        match value.trim() {
            "" => {}
            "resources" | "resource-actions" => connections = true,
            other => {
                return Err(Problem::invalid_field(
                    "include",
                    format!("{other:?} cannot be included; use resources or resource-actions"),
                ));
            }
        }
    }
    Ok(connections)
}

/// The query of a listing of lists.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct ListsQuery {
    /// `resources` (or `resource-actions`) to include each list's resource connections.
    include: Option<String>,
    /// Only lists connected to this resource.
    resource: Option<String>,
    /// Continuation token, from the previous page's next link.
    token: Option<String>,
    /// Lists per page; the service caps it.
    page_size: Option<u32>,
}

/// The owner's access lists, a page at a time.
#[utoipa::path(get, path = "/resourceregistry/api/v1/access-lists/{owner}", tag = "access-lists",
    security(("bearer" = ["altinn:resourceregistry/accesslist.read"])),
    params(("owner" = String, Path, description = "The owner's org code"), ListsQuery),
    responses(
        (status = 200, description = "A page of lists, by identifier",
            body = Paginated<AccessList>),
        (status = 400, description = "A query parameter is invalid", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing or the caller is not the owner",
            body = ProblemDetails),
    ))]
pub async fn list_access_lists(
    State(state): State<AppState>,
    caller: Authenticated,
    Path(owner): Path<String>,
    ApiQuery(query): ApiQuery<ListsQuery>,
) -> Result<Json<Paginated<AccessList>>, Problem> {
    let connections = includes_connections(query.include.as_deref())?;
    let path = format!("{BASE}/{}", encode(&owner));
    let params = [
        ("include", query.include),
        ("resource", query.resource.clone()),
        ("pageSize", query.page_size.map(|size| size.to_string())),
    ];
    let mut access = state.clients.access();
    let listed = forward(
        &caller,
        READERS,
        |principal| pb::ListAccessListsRequest {
            principal: Some(principal),
            owner,
            resource: query.resource.unwrap_or_default(),
            include_resource_connections: connections,
            page: page_request(query.token, query.page_size),
        },
        |request| access.list_access_lists(request),
    )
    .await?;
    let next = next_link(&path, &params, next_token(listed.page));
    let lists = listed
        .lists
        .into_iter()
        .map(|list| AccessList::new(list, connections))
        .collect();
    Ok(Json(Paginated::new(lists, next)))
}

/// One access list.
#[utoipa::path(get, path = "/resourceregistry/api/v1/access-lists/{owner}/{identifier}",
    tag = "access-lists",
    security(("bearer" = ["altinn:resourceregistry/accesslist.read"])),
    params(
        ("owner" = String, Path, description = "The owner's org code"),
        ("identifier" = String, Path, description = "The list's identifier"),
        IncludeQuery,
    ),
    responses(
        (status = 200, description = "The list", body = AccessList,
            headers(("ETag" = String, description = "The list's version"))),
        (status = 401, description = "No, an expired, or an untrusted token",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing or the caller is not the owner",
            body = ProblemDetails),
        (status = 404, description = "No such list", body = ProblemDetails),
    ))]
pub async fn get_access_list(
    State(state): State<AppState>,
    caller: Authenticated,
    Path((owner, identifier)): Path<(String, String)>,
    ApiQuery(include): ApiQuery<IncludeQuery>,
) -> Result<Tagged<AccessList>, Problem> {
    let connections = includes_connections(include.include.as_deref())?;
    let list = fetch_list(&state, &caller, owner, identifier).await?;
    Ok(Tagged::ok(list.version, AccessList::new(list, connections)))
}

/// Reads one list with its connections, for a reader.
async fn fetch_list(
    state: &AppState,
    caller: &Authenticated,
    owner: String,
    identifier: String,
) -> Result<pb::AccessList, Problem> {
    let mut access = state.clients.access();
    forward(
        caller,
        READERS,
        |principal| pb::GetAccessListRequest {
            principal: Some(principal),
            owner,
            identifier,
        },
        |request| access.get_access_list(request),
    )
    .await
}

/// Creates an access list, or changes its name and description.
#[utoipa::path(put, path = "/resourceregistry/api/v1/access-lists/{owner}/{identifier}",
    tag = "access-lists",
    security(("bearer" = ["altinn:resourceregistry/accesslist.write"])),
    params(
        ("owner" = String, Path, description = "The owner's org code"),
        ("identifier" = String, Path, description = "The list's identifier"),
        ("If-Match" = Option<String>, Header, description = "The version last seen, `\"<n>\"`"),
    ),
    request_body = ListDetails,
    responses(
        (status = 200, description = "The changed list", body = AccessList,
            headers(("ETag" = String, description = "The list's new version"))),
        (status = 201, description = "The created list", body = AccessList,
            headers(
                ("ETag" = String, description = "The list's version"),
                ("Location" = String, description = "The list's address"),
            )),
        (status = 400, description = "A field or If-Match is invalid", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing or the caller is not the owner",
            body = ProblemDetails),
        (status = 412, description = "If-Match names another version", body = ProblemDetails),
        (status = 413, description = "The body exceeds 1 MiB", body = ProblemDetails),
    ))]
pub async fn upsert_access_list(
    State(state): State<AppState>,
    caller: Authenticated,
    IfMatch(if_match): IfMatch,
    Path((owner, identifier)): Path<(String, String)>,
    ApiJson(details): ApiJson<ListDetails>,
) -> Result<Tagged<AccessList>, Problem> {
    let mut access = state.clients.access();
    let list = forward(
        &caller,
        WRITERS,
        |principal| pb::UpsertAccessListRequest {
            principal: Some(principal),
            owner,
            identifier,
            name: details.name,
            description: details.description,
            if_match,
        },
        |request| access.upsert_access_list(request),
    )
    .await?;
    let version = list.version;
    // Versions start at 1 and every change raises it: version 1 is a list just created.
    if version == 1 {
        let location = list_path(&list.owner, &list.identifier);
        return Ok(Tagged::created(
            version,
            location,
            AccessList::new(list, false),
        ));
    }
    Ok(Tagged::ok(version, AccessList::new(list, false)))
}

/// Deletes an access list with its members and connections.
#[utoipa::path(delete, path = "/resourceregistry/api/v1/access-lists/{owner}/{identifier}",
    tag = "access-lists",
    security(("bearer" = ["altinn:resourceregistry/accesslist.write"])),
    params(
        ("owner" = String, Path, description = "The owner's org code"),
        ("identifier" = String, Path, description = "The list's identifier"),
        ("If-Match" = Option<String>, Header, description = "The version last seen, `\"<n>\"`"),
    ),
    responses(
        (status = 200, description = "The list as it was", body = AccessList,
            headers(("ETag" = String, description = "The list's last version"))),
        (status = 204, description = "The list did not exist (as in Altinn)"),
        (status = 400, description = "If-Match is malformed", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing or the caller is not the owner",
            body = ProblemDetails),
        (status = 412, description = "If-Match names another version", body = ProblemDetails),
    ))]
pub async fn delete_access_list(
    State(state): State<AppState>,
    caller: Authenticated,
    IfMatch(if_match): IfMatch,
    Path((owner, identifier)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let mut access = state.clients.access();
    let deleted = forward(
        &caller,
        WRITERS,
        |principal| pb::DeleteAccessListRequest {
            principal: Some(principal),
            owner,
            identifier,
            if_match,
        },
        |request| access.delete_access_list(request),
    )
    .await;
    match deleted {
        Ok(list) => Ok(Tagged::ok(list.version, AccessList::new(list, false)).into_response()),
        // Scope and ownership were checked before the lookup, so 404 can only mean the list.
        Err(problem) if problem.status == StatusCode::NOT_FOUND.as_u16() => {
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Err(problem) => Err(problem),
    }
}

/// A page of members with the list's version as its `ETag`.
fn members_page(
    owner: &str,
    identifier: &str,
    page: &TokenQuery,
    members: pb::ListMembersResponse,
) -> Tagged<Paginated<Member>> {
    let next = next_link(
        &format!("{}/members", list_path(owner, identifier)),
        &page.params(),
        next_token(members.page),
    );
    let data = members
        .members
        .into_iter()
        .map(|member| Member {
            id: member.party,
            since: member.since,
        })
        .collect();
    Tagged::ok(members.version, Paginated::new(data, next))
}

/// A list's members, a page at a time.
#[utoipa::path(get, path = "/resourceregistry/api/v1/access-lists/{owner}/{identifier}/members",
    tag = "access-lists",
    security(("bearer" = ["altinn:resourceregistry/accesslist.read"])),
    params(
        ("owner" = String, Path, description = "The owner's org code"),
        ("identifier" = String, Path, description = "The list's identifier"),
        TokenQuery,
    ),
    responses(
        (status = 200, description = "A page of members", body = Paginated<Member>,
            headers(("ETag" = String, description = "The list's version"))),
        (status = 401, description = "No, an expired, or an untrusted token",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing or the caller is not the owner",
            body = ProblemDetails),
        (status = 404, description = "No such list", body = ProblemDetails),
    ))]
pub async fn list_members(
    State(state): State<AppState>,
    caller: Authenticated,
    Path((owner, identifier)): Path<(String, String)>,
    ApiQuery(page): ApiQuery<TokenQuery>,
) -> Result<Tagged<Paginated<Member>>, Problem> {
    let mut access = state.clients.access();
    let members = forward(
        &caller,
        READERS,
        |principal| pb::ListMembersRequest {
            principal: Some(principal),
            owner: owner.clone(),
            identifier: identifier.clone(),
            page: page.request(),
        },
        |request| access.list_members(request),
    )
    .await?;
    Ok(members_page(&owner, &identifier, &page, members))
}

/// The one member change every members route makes, in its `mode`.
async fn change_members(
    state: AppState,
    caller: Authenticated,
    IfMatch(if_match): IfMatch,
    (owner, identifier): (String, String),
    mode: Mode,
    parties: MemberParties,
) -> Result<Tagged<Paginated<Member>>, Problem> {
    let mut access = state.clients.access();
    let members = forward(
        &caller,
        WRITERS,
        |principal| pb::ChangeMembersRequest {
            principal: Some(principal),
            owner: owner.clone(),
            identifier: identifier.clone(),
            mode: mode.into(),
            parties: parties.data,
            if_match,
        },
        |request| access.change_members(request),
    )
    .await?;
    // The service answers the first page, at its default size.
    Ok(members_page(
        &owner,
        &identifier,
        &TokenQuery::default(),
        members,
    ))
}

/// Makes these parties the list's only members.
#[utoipa::path(put, path = "/resourceregistry/api/v1/access-lists/{owner}/{identifier}/members",
    tag = "access-lists",
    security(("bearer" = ["altinn:resourceregistry/accesslist.write"])),
    params(
        ("owner" = String, Path, description = "The owner's org code"),
        ("identifier" = String, Path, description = "The list's identifier"),
        ("If-Match" = Option<String>, Header, description = "The version last seen, `\"<n>\"`"),
    ),
    request_body = MemberParties,
    responses(
        (status = 200, description = "The first page of members after the change",
            body = Paginated<Member>,
            headers(("ETag" = String, description = "The list's new version"))),
        (status = 400, description = "A party or If-Match is invalid", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing or the caller is not the owner",
            body = ProblemDetails),
        (status = 404, description = "No such list", body = ProblemDetails),
        (status = 412, description = "If-Match names another version", body = ProblemDetails),
        (status = 413, description = "The body exceeds 1 MiB", body = ProblemDetails),
    ))]
pub async fn replace_members(
    State(state): State<AppState>,
    caller: Authenticated,
    if_match: IfMatch,
    Path(list): Path<(String, String)>,
    ApiJson(parties): ApiJson<MemberParties>,
) -> Result<Tagged<Paginated<Member>>, Problem> {
    change_members(state, caller, if_match, list, Mode::Replace, parties).await
}

/// Adds parties to the list (members already present stay as they are).
#[utoipa::path(post, path = "/resourceregistry/api/v1/access-lists/{owner}/{identifier}/members",
    tag = "access-lists",
    security(("bearer" = ["altinn:resourceregistry/accesslist.write"])),
    params(
        ("owner" = String, Path, description = "The owner's org code"),
        ("identifier" = String, Path, description = "The list's identifier"),
        ("If-Match" = Option<String>, Header, description = "The version last seen, `\"<n>\"`"),
    ),
    request_body = MemberParties,
    responses(
        (status = 200, description = "The first page of members after the change",
            body = Paginated<Member>,
            headers(("ETag" = String, description = "The list's new version"))),
        (status = 400, description = "A party or If-Match is invalid", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing or the caller is not the owner",
            body = ProblemDetails),
        (status = 404, description = "No such list", body = ProblemDetails),
        (status = 412, description = "If-Match names another version", body = ProblemDetails),
        (status = 413, description = "The body exceeds 1 MiB", body = ProblemDetails),
    ))]
pub async fn add_members(
    State(state): State<AppState>,
    caller: Authenticated,
    if_match: IfMatch,
    Path(list): Path<(String, String)>,
    ApiJson(parties): ApiJson<MemberParties>,
) -> Result<Tagged<Paginated<Member>>, Problem> {
    change_members(state, caller, if_match, list, Mode::Add, parties).await
}

/// Removes parties from the list (parties that are not members are ignored).
#[utoipa::path(delete, path = "/resourceregistry/api/v1/access-lists/{owner}/{identifier}/members",
    tag = "access-lists",
    security(("bearer" = ["altinn:resourceregistry/accesslist.write"])),
    params(
        ("owner" = String, Path, description = "The owner's org code"),
        ("identifier" = String, Path, description = "The list's identifier"),
        ("If-Match" = Option<String>, Header, description = "The version last seen, `\"<n>\"`"),
    ),
    request_body = MemberParties,
    responses(
        (status = 200, description = "The first page of members after the change",
            body = Paginated<Member>,
            headers(("ETag" = String, description = "The list's new version"))),
        (status = 400, description = "A party or If-Match is invalid", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing or the caller is not the owner",
            body = ProblemDetails),
        (status = 404, description = "No such list", body = ProblemDetails),
        (status = 412, description = "If-Match names another version", body = ProblemDetails),
        (status = 413, description = "The body exceeds 1 MiB", body = ProblemDetails),
    ))]
pub async fn remove_members(
    State(state): State<AppState>,
    caller: Authenticated,
    if_match: IfMatch,
    Path(list): Path<(String, String)>,
    ApiJson(parties): ApiJson<MemberParties>,
) -> Result<Tagged<Paginated<Member>>, Problem> {
    change_members(state, caller, if_match, list, Mode::Remove, parties).await
}

/// The resources a list is connected to (all on one page).
#[utoipa::path(get,
    path = "/resourceregistry/api/v1/access-lists/{owner}/{identifier}/resource-connections",
    tag = "access-lists",
    security(("bearer" = ["altinn:resourceregistry/accesslist.read"])),
    params(
        ("owner" = String, Path, description = "The owner's org code"),
        ("identifier" = String, Path, description = "The list's identifier"),
    ),
    responses(
        (status = 200, description = "The list's connections", body = Paginated<ResourceConnection>,
            headers(("ETag" = String, description = "The list's version"))),
        (status = 401, description = "No, an expired, or an untrusted token",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing or the caller is not the owner",
            body = ProblemDetails),
        (status = 404, description = "No such list", body = ProblemDetails),
    ))]
pub async fn list_connections(
    State(state): State<AppState>,
    caller: Authenticated,
    Path((owner, identifier)): Path<(String, String)>,
) -> Result<Tagged<Paginated<ResourceConnection>>, Problem> {
    let list = fetch_list(&state, &caller, owner, identifier).await?;
    let connections = list
        .resource_connections
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(Tagged::ok(list.version, Paginated::new(connections, None)))
}

/// Connects the list to a resource of the same owner, or changes the connection's actions.
#[utoipa::path(put,
    path = "/resourceregistry/api/v1/access-lists/{owner}/{identifier}/resource-connections/{resourceIdentifier}",
    tag = "access-lists",
    security(("bearer" = ["altinn:resourceregistry/accesslist.write"])),
    params(
        ("owner" = String, Path, description = "The owner's org code"),
        ("identifier" = String, Path, description = "The list's identifier"),
        ("resourceIdentifier" = String, Path, description = "The resource's identifier"),
        ("If-Match" = Option<String>, Header, description = "The version last seen, `\"<n>\"`"),
    ),
    request_body = ConnectionDetails,
    responses(
        (status = 200, description = "The connection", body = ResourceConnection,
            headers(("ETag" = String, description = "The list's new version"))),
        (status = 400, description = "An action or If-Match is invalid", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing, or the caller owns not the list \
            or not the resource", body = ProblemDetails),
        (status = 404, description = "No such list or resource", body = ProblemDetails),
        (status = 412, description = "If-Match names another version", body = ProblemDetails),
        (status = 413, description = "The body exceeds 1 MiB", body = ProblemDetails),
    ))]
pub async fn connect_resource(
    State(state): State<AppState>,
    caller: Authenticated,
    IfMatch(if_match): IfMatch,
    Path((owner, identifier, resource_identifier)): Path<(String, String, String)>,
    ApiJson(details): ApiJson<ConnectionDetails>,
) -> Result<Tagged<ResourceConnection>, Problem> {
    let mut access = state.clients.access();
    let connection = forward(
        &caller,
        WRITERS,
        |principal| pb::ConnectResourceRequest {
            principal: Some(principal),
            owner,
            identifier,
            resource_identifier,
            action_filters: details.action_filters,
            if_match,
        },
        |request| access.connect_resource(request),
    )
    .await?;
    Ok(Tagged::ok(connection.list_version, connection.into()))
}

/// Removes the list's connection to a resource.
#[utoipa::path(delete,
    path = "/resourceregistry/api/v1/access-lists/{owner}/{identifier}/resource-connections/{resourceIdentifier}",
    tag = "access-lists",
    security(("bearer" = ["altinn:resourceregistry/accesslist.write"])),
    params(
        ("owner" = String, Path, description = "The owner's org code"),
        ("identifier" = String, Path, description = "The list's identifier"),
        ("resourceIdentifier" = String, Path, description = "The resource's identifier"),
        ("If-Match" = Option<String>, Header, description = "The version last seen, `\"<n>\"`"),
    ),
    responses(
        (status = 200, description = "The connection as it was", body = ResourceConnection,
            headers(("ETag" = String, description = "The list's new version"))),
        (status = 400, description = "If-Match is malformed", body = ProblemDetails),
        (status = 401, description = "No, an expired, or an untrusted token",
            body = ProblemDetails),
        (status = 403, description = "The scope is missing or the caller is not the owner",
            body = ProblemDetails),
        (status = 404, description = "No such list or connection", body = ProblemDetails),
        (status = 412, description = "If-Match names another version", body = ProblemDetails),
    ))]
pub async fn disconnect_resource(
    State(state): State<AppState>,
    caller: Authenticated,
    IfMatch(if_match): IfMatch,
    Path((owner, identifier, resource_identifier)): Path<(String, String, String)>,
) -> Result<Tagged<ResourceConnection>, Problem> {
    let mut access = state.clients.access();
    let connection = forward(
        &caller,
        WRITERS,
        |principal| pb::DisconnectResourceRequest {
            principal: Some(principal),
            owner,
            identifier,
            resource_identifier,
            if_match,
        },
        |request| access.disconnect_resource(request),
    )
    .await?;
    Ok(Tagged::ok(connection.list_version, connection.into()))
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

    #[test]
    fn include_takes_altinns_comma_separated_values() {
        assert!(!includes_connections(None).unwrap());
        assert!(!includes_connections(Some("")).unwrap());
        assert!(includes_connections(Some("resources")).unwrap());
        assert!(includes_connections(Some("resource-actions, resources")).unwrap());
        let problem = includes_connections(Some("resources,members")).unwrap_err();
        assert_eq!(problem.status, 400);
    }
}
