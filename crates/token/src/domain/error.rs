//! Errors of the token service, each mapped once to what the client sees.

use broker_common::Problem;
use http::StatusCode;

use crate::store::StoreError;

/// An RFC 6749 §5.2 error from the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    /// Malformed request: a missing parameter, an assertion that is not a JWT.
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// The assertion is not acceptable: signature, audience, lifetime, replay.
    #[error("invalid_grant: {0}")]
    InvalidGrant(String),
    /// A requested scope is missing or not granted to the client.
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    /// The grant type is not the JWT-bearer grant.
    #[error("unsupported_grant_type: {0}")]
    UnsupportedGrantType(String),
    /// The assertion names no registered client.
    #[error("invalid_client: {0}")]
    InvalidClient(String),
}

impl From<GrantError> for Problem {
    fn from(error: GrantError) -> Self {
        let (status, code, description) = match error {
            GrantError::InvalidRequest(d) => (StatusCode::BAD_REQUEST, "invalid_request", d),
            GrantError::InvalidGrant(d) => (StatusCode::BAD_REQUEST, "invalid_grant", d),
            GrantError::InvalidScope(d) => (StatusCode::BAD_REQUEST, "invalid_scope", d),
            GrantError::UnsupportedGrantType(d) => {
                (StatusCode::BAD_REQUEST, "unsupported_grant_type", d)
            }
            // RFC 6749 §5.2: a failed client authentication may answer 401.
            GrantError::InvalidClient(d) => (StatusCode::UNAUTHORIZED, "invalid_client", d),
        };
        Problem::oauth(status, code, description)
    }
}

/// An error of the client registry or the exchange, rendered as problem+json.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// A registration field is invalid.
    #[error("{field}: {message}")]
    Invalid {
        /// The JSON path of the field, e.g. `jwks.keys[0].n`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// No such client or key.
    #[error("{0}")]
    NotFound(String),
    /// The client id or key id is taken.
    #[error("{0}")]
    Conflict(String),
    /// The admin credential is missing or wrong.
    #[error("the admin credential is missing or wrong")]
    NotAdmin,
    /// A token presented for exchange is not acceptable.
    #[error("{0}")]
    Unauthorized(String),
    /// The token endpoint's own errors.
    #[error(transparent)]
    Grant(#[from] GrantError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A service this one depends on answered with a problem.
    #[error("{0}")]
    Upstream(Problem),
    /// Signing failed (a broken key); never the client's fault.
    #[error("signing failed: {0}")]
    Signing(String),
}

impl TokenError {
    /// An invalid field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<TokenError> for Problem {
    fn from(error: TokenError) -> Self {
        match error {
            TokenError::Invalid { field, message } => Problem::invalid_field(&field, message),
            TokenError::NotFound(detail) => Problem::not_found(detail),
            TokenError::Conflict(detail) => Problem::new(StatusCode::CONFLICT, detail),
            TokenError::NotAdmin => {
                Problem::unauthorized("the admin credential is missing or wrong")
            }
            TokenError::Unauthorized(detail) => Problem::unauthorized(detail),
            TokenError::Grant(grant) => grant.into(),
            TokenError::Store(error) => {
                tracing::error!(%error, "token store failed");
                Problem::unavailable("the token service's database is unavailable")
            }
            TokenError::Upstream(problem) => problem,
            TokenError::Signing(error) => {
                tracing::error!(%error, "signing failed");
                Problem::internal()
            }
        }
    }
}

impl From<TokenError> for tonic::Status {
    fn from(error: TokenError) -> Self {
        Problem::from(error).into()
    }
}
