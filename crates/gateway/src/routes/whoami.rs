//! `GET /api/v1/whoami`: the smallest protected route. It answers with what the gateway
//! concluded from the caller's token, so clients (and tests) can prove the auth layer works.

use axum::routing::get;
use axum::{Json, Router};
use broker_common::auth::{Caller, TokenKind};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::schema::{ObjectBuilder, Type};

use crate::auth::Authenticated;
use crate::routes::openapi::ProblemDetails;
use crate::state::AppState;

/// The caller as its verified token describes it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WhoAmI {
    /// The organisation number (nine digits) the caller acts for.
    #[schema(example = "991825827")]
    organisation: String,
    /// The OAuth2 client the token was issued to.
    client_id: String,
    /// The token's scopes.
    scopes: Vec<String>,
    /// The service-owner org code (`skd`, `ttd`, …), for platform tokens of service owners.
    org_code: Option<String>,
    /// Which issuer signed the token.
    #[schema(schema_with = token_kind_schema)]
    token_kind: TokenKind,
}

impl From<Caller> for WhoAmI {
    fn from(caller: Caller) -> Self {
        Self {
            organisation: caller.org.to_string(),
            client_id: caller.client_id,
            scopes: caller.scopes,
            org_code: caller.org_code,
            token_kind: caller.kind,
        }
    }
}

/// `TokenKind` lives in `broker-common`, which does not depend on utoipa.
fn token_kind_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["Maskinporten", "Platform"]))
        .description(Some(
            "Which issuer signed the token: `POST /token` or the exchange",
        ))
}

/// The whoami route.
pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/whoami", get(whoami))
}

/// Who the bearer token says the caller is.
#[utoipa::path(get, path = "/api/v1/whoami", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The token is valid", body = WhoAmI),
        (status = 401, description = "No, an expired, or an untrusted token",
            body = ProblemDetails),
    ))]
pub async fn whoami(Authenticated(caller): Authenticated) -> Json<WhoAmI> {
    Json(caller.into())
}
