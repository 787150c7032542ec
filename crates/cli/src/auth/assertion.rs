//! The JWT-bearer grant (RFC 7523) the client proves itself with, as the token service checks
//! it: RS256 with the registered `kid`, `aud` the issuer, `iss` the client id, a short life and
//! a single-use `jti`.

use jsonwebtoken::{Algorithm, Header};
use serde::Serialize;

use super::keys::ClientKey;
use crate::error::CliError;

/// Seconds an assertion is valid: it is used at once, and the broker allows at most 120.
const LIFETIME_SECONDS: i64 = 60;

#[derive(Serialize)]
struct Claims<'a> {
    aud: &'a str,
    iss: &'a str,
    scope: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
}

/// A signed assertion from `client_id` for `audience` (the issuer) asking for `scope`.
pub fn sign(
    key: &ClientKey,
    client_id: &str,
    audience: &str,
    scope: &str,
    now: i64,
) -> Result<String, CliError> {
    let claims = Claims {
        aud: audience,
        iss: client_id,
        scope,
        iat: now,
        exp: now + LIFETIME_SECONDS,
        jti: uuid::Uuid::new_v4().to_string(),
    };
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid().to_owned());
    jsonwebtoken::encode(&header, &claims, key.encoding())
        .map_err(|error| CliError::Key(format!("cannot sign the assertion: {error}")))
}
