//! The authorization server's public face: `POST /token` (RFC 7523 JWT-bearer grant), its
//! metadata and keys, and Altinn's token exchange.
//!
//! The token service decides every rule (grant types, assertions, scopes, trusted issuers);
//! this module only checks that the request is a readable HTTP request and forwards it. Errors
//! of `POST /token` are RFC 6749 JSON, whoever raises them.

use axum::extract::rejection::FormRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use broker_common::Problem;
use broker_proto::token as pb;
use http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::bearer_token;
use crate::binding::{ApiQuery, QueryBinding, QueryModel};
use crate::clients::call;
use crate::negotiation::media_types;
use crate::problem::Bare;
use crate::routes::openapi::{OAuthError, ProblemDetails};
use crate::state::AppState;

/// A token request is a short form; anything larger is refused before it is buffered.
const TOKEN_BODY_LIMIT: usize = 64 * 1024;

/// Altinn answers 410 Gone to this header: the Altinn 2 enterprise user no longer exists.
const ENTERPRISE_USER_HEADER: &str = "x-altinn-enterpriseuser-authentication";

/// The token routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/token",
            post(issue_token).layer(DefaultBodyLimit::max(TOKEN_BODY_LIMIT)),
        )
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/jwk", get(jwks))
        .route(
            "/authentication/api/v1/exchange/{tokenProvider}",
            get(exchange),
        )
}

/// The only token provider the exchange takes; Altinn also has ID-porten and Altinn Studio.
const MASKINPORTEN: &str = "maskinporten";

/// The token request form (RFC 7523 §2.1); a missing field is forwarded empty.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TokenForm {
    /// `urn:ietf:params:oauth:grant-type:jwt-bearer`.
    #[serde(default)]
    grant_type: String,
    /// The signed JWT grant.
    #[serde(default)]
    assertion: String,
}

/// A successful token answer (RFC 6749 §5.1).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// The access token (a JWT).
    access_token: String,
    /// Always `Bearer`.
    token_type: String,
    /// Seconds until the token expires.
    expires_in: u64,
    /// The granted scopes, space-separated; informational only.
    scope: String,
}

/// Query of the token exchange.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExchangeQuery {
    /// Altinn's `?test=true`: digdir tokens act as the test organisation.
    #[serde(default)]
    test: bool,
}

/// Issues an access token for a signed JWT grant.
#[utoipa::path(post, path = "/token", tag = "token",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The access token", body = TokenResponse),
        (status = 400, body = OAuthError, description =
            "`invalid_request`, `invalid_grant`, `invalid_scope` or `unsupported_grant_type`"),
        (status = 401, description = "`invalid_client`", body = OAuthError),
        (status = 413, description = "The body exceeds 64 KiB (`invalid_request`)",
            body = OAuthError),
    ))]
pub async fn issue_token(
    State(state): State<AppState>,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Result<Response, Problem> {
    let Form(form) = form.map_err(oauth_rejection)?;
    let request = pb::IssueTokenRequest {
        grant_type: form.grant_type,
        assertion: form.assertion,
    };
    let issued = call(state.clients.token().issue_token(request)).await?;
    let body = TokenResponse {
        access_token: issued.access_token,
        token_type: issued.token_type,
        expires_in: issued.expires_in,
        scope: issued.scope,
    };
    // RFC 6749 §5.1: token answers must not be cached.
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// An unreadable token request as RFC 6749 `invalid_request`, keeping 413 for an oversized one.
fn oauth_rejection(rejection: FormRejection) -> Problem {
    match rejection {
        FormRejection::InvalidFormContentType(_) => Problem::oauth(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the token request must be sent as application/x-www-form-urlencoded",
        ),
        rejection if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => Problem::oauth(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            format!("the token request exceeds {} KiB", TOKEN_BODY_LIMIT / 1024),
        ),
        rejection => Problem::oauth(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!(
                "the token request is not a readable form: {}",
                rejection.body_text()
            ),
        ),
    }
}

/// Authorization-server metadata (RFC 8414), as the token service publishes it.
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "token",
    responses((status = 200, description = "RFC 8414 metadata", body = Object)))]
pub async fn metadata(State(state): State<AppState>) -> Result<Response, Problem> {
    let metadata = call(
        state
            .clients
            .token()
            .get_metadata(pb::GetMetadataRequest {}),
    )
    .await?;
    Ok(json_text(metadata.json))
}

/// The token service's signing keys as a JWK set.
#[utoipa::path(get, path = "/jwk", tag = "token",
    responses((status = 200, description = "The signing keys as a JWK set", body = Object)))]
pub async fn jwks(State(state): State<AppState>) -> Result<Response, Problem> {
    let jwks = call(state.clients.token().get_jwks(pb::GetJwksRequest {})).await?;
    Ok(json_text(jwks.json))
}

/// A JSON document the service serialised, sent on verbatim.
fn json_text(json: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], json).into_response()
}

/// Exchanges a Maskinporten-style token (ours or a trusted issuer's) for a platform token, as
/// Altinn Authentication answers it: the JWT as plain text, or as a JSON string to a client that
/// asks for JSON only.
#[utoipa::path(get, path = "/authentication/api/v1/exchange/{tokenProvider}", tag = "token",
    params(
        ("tokenProvider" = String, Path, description = "`maskinporten` (in any case)",
            pattern = "^[Mm][Aa][Ss][Kk][Ii][Nn][Pp][Oo][Rr][Tt][Ee][Nn]$"),
        ExchangeQuery,
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The platform token (a JWT): plain text, or a JSON string \
            when `Accept` asks for `application/json` and not `*/*`",
            content((String = "text/plain"), (String = "application/json"))),
        (status = 400, description = "Another token provider than Maskinporten (plain text), \
            or a query parameter that is not a boolean (a problem)",
            content((String = "text/plain"), (ProblemDetails = "application/problem+json"))),
        (status = 401, description = "No, an expired, or an untrusted token",
            body = ProblemDetails),
        (status = 410, body = ProblemDetails, description =
            "`X-Altinn-EnterpriseUser-Authentication` was sent; enterprise users no longer exist"),
    ))]
pub async fn exchange(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    ApiQuery(query): ApiQuery<ExchangeQuery>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    // Altinn reads the token before it looks at the provider.
    let token = bearer_token(&headers)?.to_owned();
    if !provider.eq_ignore_ascii_case(MASKINPORTEN) {
        let text = format!(
            "Invalid token provider: {provider}. Trusted token providers are 'Maskinporten', \
             'Id-porten' and 'AltinnStudio'."
        );
        return Ok(plain_text(StatusCode::BAD_REQUEST, text));
    }
    // Not verified here: tokens of trusted external issuers are valid for the exchange, and the
    // token service knows which those are.
    let request = pb::ExchangeRequest {
        token,
        test: query.test,
    };
    let exchanged = call(state.clients.token().exchange_maskinporten(request)).await?;
    // Altinn refuses the enterprise user only once the token is found valid.
    if headers.contains_key(ENTERPRISE_USER_HEADER) {
        return Ok(enterprise_user_gone());
    }
    if wants_json(&headers) {
        let json = serde_json::Value::String(exchanged.token).to_string();
        return Ok((
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            json,
        )
            .into_response());
    }
    Ok(plain_text(StatusCode::OK, exchanged.token))
}

/// Whether ASP.NET's content negotiation answers JSON to this `Accept`: it ignores a header
/// with `*/*`, and otherwise takes the first of the types it can write.
fn wants_json(headers: &HeaderMap) -> bool {
    let items = media_types(headers, header::ACCEPT);
    if items.iter().any(|item| item == "*/*") {
        return false;
    }
    items
        .iter()
        .find(|item| *item == "application/json" || *item == "text/plain")
        .is_some_and(|item| item == "application/json")
}

/// A plain-text answer, as ASP.NET writes a string.
fn plain_text(status: StatusCode, text: String) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response();
    response.extensions_mut().insert(Bare);
    response
}

/// Altinn Authentication's fixed answer to the Altinn 2 enterprise-user header.
fn enterprise_user_gone() -> Response {
    let body = serde_json::json!({
        "type": "https://docs.altinn.studio",
        "title": "Virksomhetsbruker is no longer available",
        "status": 410,
        "detail": "Virksomhetsbruker (enterprise user) is no longer available. It has been \
            replaced by Systembruker (system user) or ID-porten, depending on the use case. See \
            https://docs.altinn.studio for migration guidance.",
    });
    let mut response = (
        StatusCode::GONE,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response();
    response.extensions_mut().insert(Bare);
    response
}

impl QueryModel for ExchangeQuery {
    const BINDING: QueryBinding = QueryBinding::Parameters;
}
