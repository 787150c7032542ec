//! Client registrations: what an operator may register and how it is checked.

use std::collections::BTreeSet;

use broker_common::auth::{JwkSet, RsaJwk};
use broker_common::identity::OrgNumber;

use super::error::TokenError;
use super::jwk;

/// Most keys one client may have; enough for rotation with overlap.
pub const MAX_KEYS: usize = 10;
/// Most scopes one client may have.
pub const MAX_SCOPES: usize = 50;
/// Longest scope, client id and name accepted.
pub const MAX_TEXT_LEN: usize = 255;

/// A registration as the admin API received it.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    /// Nine digits.
    pub org_number: String,
    /// Scopes the client may ask for.
    pub scopes: Vec<String>,
    /// `{"keys": [...]}` as JSON.
    pub jwks_json: String,
    /// Display name; the client id when empty.
    pub name: String,
    /// Wanted client id; generated when empty.
    pub client_id: String,
}

/// A registration that passed every check.
#[derive(Debug, Clone)]
pub struct ValidClient {
    /// Client id.
    pub client_id: String,
    /// Organisation.
    pub org: OrgNumber,
    /// Display name.
    pub name: String,
    /// Scopes, deduplicated and sorted.
    pub scopes: Vec<String>,
    /// Public keys.
    pub keys: Vec<RsaJwk>,
}

/// Checks a registration; `new_id` makes a client id when none was asked for.
pub fn validate(
    registration: Registration,
    new_id: impl FnOnce() -> String,
) -> Result<ValidClient, TokenError> {
    let org = OrgNumber::parse(&registration.org_number)
        .map_err(|error| TokenError::invalid("orgNumber", error.to_string()))?;
    let scopes = validate_scopes(&registration.scopes)?;
    let keys = parse_jwks(&registration.jwks_json)?;
    let client_id = if registration.client_id.is_empty() {
        new_id()
    } else if is_client_id(&registration.client_id) {
        registration.client_id
    } else {
        return Err(TokenError::invalid(
            "clientId",
            "clientId is 1-255 characters of letters, digits and . _ - :",
        ));
    };
    let name = match registration.name.trim() {
        "" => client_id.clone(),
        name if name.chars().count() > MAX_TEXT_LEN => {
            return Err(TokenError::invalid(
                "name",
                "name is at most 255 characters",
            ));
        }
        name => name.to_owned(),
    };
    Ok(ValidClient {
        client_id,
        org,
        name,
        scopes,
        keys,
    })
}

/// Parses and checks a JWK set: one to [`MAX_KEYS`] RSA signing keys with distinct `kid`s.
pub fn parse_jwks(json: &str) -> Result<Vec<RsaJwk>, TokenError> {
    let set: JwkSet = serde_json::from_str(json).map_err(|error| {
        TokenError::invalid(
            "jwks",
            format!("jwks must be {{\"keys\": [RSA JWK, ...]}}: {error}"),
        )
    })?;
    if set.keys.is_empty() || set.keys.len() > MAX_KEYS {
        return Err(TokenError::invalid(
            "jwks.keys",
            format!("between 1 and {MAX_KEYS} keys are needed"),
        ));
    }
    let mut kids = BTreeSet::new();
    for (index, key) in set.keys.iter().enumerate() {
        let field = format!("jwks.keys[{index}]");
        jwk::validate(key, &field)?;
        if !kids.insert(key.kid.as_str()) {
            return Err(TokenError::invalid(
                format!("{field}.kid"),
                "kid is used twice",
            ));
        }
    }
    Ok(set.keys)
}

/// Parses one JWK for adding to a client.
pub fn parse_key(json: &str) -> Result<RsaJwk, TokenError> {
    let key: RsaJwk = serde_json::from_str(json)
        .map_err(|error| TokenError::invalid("jwk", format!("not an RSA JWK: {error}")))?;
    jwk::validate(&key, "jwk")?;
    Ok(key)
}

fn validate_scopes(scopes: &[String]) -> Result<Vec<String>, TokenError> {
    if scopes.is_empty() || scopes.len() > MAX_SCOPES {
        return Err(TokenError::invalid(
            "scopes",
            format!("between 1 and {MAX_SCOPES} scopes are needed"),
        ));
    }
    let mut unique = BTreeSet::new();
    for (index, scope) in scopes.iter().enumerate() {
        if !is_scope(scope) {
            return Err(TokenError::invalid(
                format!("scopes[{index}]"),
                "a scope is 1-255 characters of letters, digits and : . _ / -",
            ));
        }
        unique.insert(scope.clone());
    }
    Ok(unique.into_iter().collect())
}

/// Whether `scope` is a well-formed scope name such as `altinn:broker.write`.
pub fn is_scope(scope: &str) -> bool {
    !scope.is_empty()
        && scope.len() <= MAX_TEXT_LEN
        && scope
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'_' | b'/' | b'-'))
}

fn is_client_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_TEXT_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration() -> Registration {
        Registration {
            org_number: "991825827".into(),
            scopes: vec!["altinn:broker.write".into(), "altinn:broker.write".into()],
            jwks_json: r#"{"keys":[]}"#.into(),
            ..Registration::default()
        }
    }

    fn field_of(result: Result<ValidClient, TokenError>) -> String {
        match result {
            Err(TokenError::Invalid { field, .. }) => field,
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn names_the_failing_field() {
        let bad_org = Registration {
            org_number: "991825828".into(),
            ..registration()
        };
        assert_eq!(field_of(validate(bad_org, String::new)), "orgNumber");
        let bad_scope = Registration {
            scopes: vec!["has space".into()],
            ..registration()
        };
        assert_eq!(field_of(validate(bad_scope, String::new)), "scopes[0]");
        assert_eq!(field_of(validate(registration(), String::new)), "jwks.keys");
        let not_json = Registration {
            jwks_json: "[".into(),
            ..registration()
        };
        assert_eq!(field_of(validate(not_json, String::new)), "jwks");
    }
}
