//! The operator's client registry: `/admin/v1/clients…`, guarded by the admin credential.
//!
//! Bodies are only checked for shape here; the token service validates their meaning
//! (organisation number check digits, scope syntax, key material) and its problems come back
//! as they were raised.

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use broker_common::Problem;
use broker_proto::token as pb;
use http::{StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::auth::Admin;
use crate::binding::{ApiJson, ApiQuery, JsonBody};
use crate::clients::call;
use crate::routes::openapi::ProblemDetails;
use crate::routes::paging::{PageQuery, next_token};
use crate::state::AppState;

/// A JWK as sent: any JSON object; the token service decides which keys it accepts.
type Jwk = Map<String, Value>;

/// The admin routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/clients", post(create_client).get(list_clients))
        .route(
            "/admin/v1/clients/{clientId}",
            get(get_client).delete(delete_client),
        )
        .route("/admin/v1/clients/{clientId}/keys", post(add_key))
        .route(
            "/admin/v1/clients/{clientId}/keys/{kid}",
            delete(remove_key),
        )
}

/// A JWK set: `{"keys": [...]}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JwkSet {
    /// Public keys, each with a `kid`.
    #[schema(value_type = Vec<Object>)]
    keys: Vec<Jwk>,
}

/// A client to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewClient {
    /// The organisation (nine digits) the client acts for.
    #[schema(example = "991825827", pattern = "^[0-9]{9}$")]
    org_number: String,
    /// Scopes the client may request (1 to 50).
    #[schema(min_items = 1, max_items = 50)]
    scopes: Vec<String>,
    /// The client's public keys.
    jwks: JwkSet,
    /// A name for people.
    name: Option<String>,
    /// The client id; generated when absent.
    client_id: Option<String>,
}

/// A registered client.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientView {
    /// The OAuth2 client id (the `iss` of its grants).
    client_id: String,
    /// The organisation the client acts for.
    org_number: String,
    /// A name for people.
    name: String,
    /// Scopes the client may request.
    scopes: Vec<String>,
    /// The client's public keys as a JWK set.
    #[schema(value_type = Object)]
    jwks: Value,
    /// When the client was registered (RFC 3339).
    created: String,
}

impl TryFrom<pb::Client> for ClientView {
    type Error = Problem;

    fn try_from(client: pb::Client) -> Result<Self, Problem> {
        let jwks = serde_json::from_str(&client.jwks_json).map_err(|error| {
            tracing::error!(%error, "token service sent a client with an unreadable JWK set");
            Problem::internal()
        })?;
        Ok(Self {
            client_id: client.client_id,
            org_number: client.org_number,
            name: client.name,
            scopes: client.scopes,
            jwks,
            created: client.created,
        })
    }
}

/// One page of clients.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientPage {
    /// The clients on this page.
    clients: Vec<ClientView>,
    /// Pass as `pageToken` for the next page; `null` on the last one.
    next_page_token: Option<String>,
}

/// Awaits a call answering with a client and renders it.
async fn client_answer(
    call_future: impl Future<Output = Result<tonic::Response<pb::Client>, tonic::Status>>,
) -> Result<Json<ClientView>, Problem> {
    call(call_future).await?.try_into().map(Json)
}

fn to_json(value: &impl Serialize) -> Result<String, Problem> {
    serde_json::to_string(value).map_err(|error| {
        tracing::error!(%error, "cannot serialise a JSON value");
        Problem::internal()
    })
}

/// Registers a client.
#[utoipa::path(post, path = "/admin/v1/clients", tag = "admin",
    security(("admin" = [])),
    request_body = NewClient,
    responses(
        (status = 201, description = "The registered client", body = ClientView,
            headers(("Location" = String, description = "The client's address"))),
        (status = 400, description = "A field is missing or invalid", body = ProblemDetails),
        (status = 401, description = "No or a wrong admin credential", body = ProblemDetails),
        (status = 409, description = "The client id is taken", body = ProblemDetails),
        (status = 415, description = "The body is not JSON", body = ProblemDetails),
    ))]
pub async fn create_client(
    State(state): State<AppState>,
    admin: Admin,
    ApiJson(client): ApiJson<NewClient>,
) -> Result<impl IntoResponse, Problem> {
    let request = admin.request(pb::CreateClientRequest {
        org_number: client.org_number,
        scopes: client.scopes,
        jwks_json: to_json(&client.jwks)?,
        name: client.name.unwrap_or_default(),
        client_id: client.client_id.unwrap_or_default(),
    });
    let Json(created) = client_answer(state.clients.token().create_client(request)).await?;
    let location = format!("/admin/v1/clients/{}", created.client_id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(created),
    ))
}

/// Lists registered clients, a page at a time.
#[utoipa::path(get, path = "/admin/v1/clients", tag = "admin",
    security(("admin" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of clients", body = ClientPage),
        (status = 401, description = "No or a wrong admin credential", body = ProblemDetails),
    ))]
pub async fn list_clients(
    State(state): State<AppState>,
    admin: Admin,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> Result<Json<ClientPage>, Problem> {
    let request = admin.request(pb::ListClientsRequest {
        page: page.request(),
    });
    let listed = call(state.clients.token().list_clients(request)).await?;
    let clients = listed
        .clients
        .into_iter()
        .map(ClientView::try_from)
        .collect::<Result<_, _>>()?;
    Ok(Json(ClientPage {
        clients,
        next_page_token: next_token(listed.page),
    }))
}

/// One registered client.
#[utoipa::path(get, path = "/admin/v1/clients/{clientId}", tag = "admin",
    security(("admin" = [])),
    params(("clientId" = String, Path, description = "The client id")),
    responses(
        (status = 200, description = "The client", body = ClientView),
        (status = 401, description = "No or a wrong admin credential", body = ProblemDetails),
        (status = 404, description = "No such client", body = ProblemDetails),
    ))]
pub async fn get_client(
    State(state): State<AppState>,
    admin: Admin,
    Path(client_id): Path<String>,
) -> Result<Json<ClientView>, Problem> {
    let request = admin.request(pb::GetClientRequest { client_id });
    client_answer(state.clients.token().get_client(request)).await
}

/// Deletes a client; its tokens stay valid until they expire.
#[utoipa::path(delete, path = "/admin/v1/clients/{clientId}", tag = "admin",
    security(("admin" = [])),
    params(("clientId" = String, Path, description = "The client id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or a wrong admin credential", body = ProblemDetails),
        (status = 404, description = "No such client", body = ProblemDetails),
    ))]
pub async fn delete_client(
    State(state): State<AppState>,
    admin: Admin,
    Path(client_id): Path<String>,
) -> Result<StatusCode, Problem> {
    let request = admin.request(pb::DeleteClientRequest { client_id });
    call(state.clients.token().delete_client(request)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds a public key to a client (key rotation).
#[utoipa::path(post, path = "/admin/v1/clients/{clientId}/keys", tag = "admin",
    security(("admin" = [])),
    params(("clientId" = String, Path, description = "The client id")),
    request_body(content = Object, description = "One public JWK with a `kid`"),
    responses(
        (status = 200, description = "The client with the new key", body = ClientView),
        (status = 400, description = "The key is not acceptable", body = ProblemDetails),
        (status = 401, description = "No or a wrong admin credential", body = ProblemDetails),
        (status = 404, description = "No such client", body = ProblemDetails),
        (status = 409, description = "The client has a key with this `kid` already, or has \
            10 keys",
            body = ProblemDetails),
    ))]
pub async fn add_key(
    State(state): State<AppState>,
    admin: Admin,
    Path(client_id): Path<String>,
    ApiJson(jwk): ApiJson<Jwk>,
) -> Result<Json<ClientView>, Problem> {
    let request = admin.request(pb::AddClientKeyRequest {
        client_id,
        jwk_json: to_json(&jwk)?,
    });
    client_answer(state.clients.token().add_client_key(request)).await
}

/// Removes a public key from a client.
#[utoipa::path(delete, path = "/admin/v1/clients/{clientId}/keys/{kid}", tag = "admin",
    security(("admin" = [])),
    params(
        ("clientId" = String, Path, description = "The client id"),
        ("kid" = String, Path, description = "The key id"),
    ),
    responses(
        (status = 200, description = "The client without the key", body = ClientView),
        (status = 401, description = "No or a wrong admin credential", body = ProblemDetails),
        (status = 404, description = "No such client or key", body = ProblemDetails),
    ))]
pub async fn remove_key(
    State(state): State<AppState>,
    admin: Admin,
    Path((client_id, kid)): Path<(String, String)>,
) -> Result<Json<ClientView>, Problem> {
    let request = admin.request(pb::RemoveClientKeyRequest { client_id, kid });
    client_answer(state.clients.token().remove_client_key(request)).await
}

impl JsonBody for NewClient {
    const PARAMETER: &'static str = "client";
    const TYPE: &'static str = "NewClient";
}

impl JsonBody for Jwk {
    const PARAMETER: &'static str = "jwk";
    const TYPE: &'static str = "Jwk";
}
