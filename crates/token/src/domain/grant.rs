//! The JWT-bearer grant (RFC 7523) as Maskinporten checks it: what an assertion must say, in
//! the order the checks run, each failure with its RFC 6749 error.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use broker_common::auth::{NumericDate, RsaJwk};
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::error::GrantError;
use super::jwk;

/// The only grant type the token endpoint serves.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Longest assertion lifetime accepted (`exp - iat`), seconds.
pub const MAX_ASSERTION_LIFETIME: i64 = 120;
/// How far `iat` may be from the service's clock, seconds.
pub const MAX_CLOCK_SKEW: i64 = 10;
/// Longest `jti` accepted.
pub const MAX_JTI_LEN: usize = 255;

/// An assertion whose header and issuer were read, but whose signature is not yet checked.
#[derive(Debug)]
pub struct UnverifiedAssertion<'a> {
    raw: &'a str,
    alg: Algorithm,
    /// The key id in the header.
    pub kid: String,
    /// The `iss` claim: the client id.
    pub client_id: String,
}

/// What makes an assertion single-use: recorded per client until the assertion expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayKey {
    /// The assertion's own `jti`, 1-255 characters, chosen by the client.
    Jti(String),
    /// For an assertion without `jti`: SHA-256 (lowercase hex) of its signed part.
    Digest(String),
}

impl ReplayKey {
    /// The refusal when this key was recorded before: the assertion is a replay (MP-012).
    pub fn replayed(&self) -> GrantError {
        let description = match self {
            Self::Jti(_) => "the assertion's jti was already used (MP-012)",
            Self::Digest(_) => {
                "the assertion was already used (MP-012); without a jti, every request needs \
                 a newly made assertion (another iat or exp)"
            }
        };
        GrantError::InvalidGrant(description.into())
    }
}

/// A grant that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedGrant {
    /// What to record against replay.
    pub replay_key: ReplayKey,
    /// Requested scopes, all granted to the client.
    pub scopes: Vec<String>,
    /// The assertion's expiry; its replay key must be remembered until then.
    pub expires_at: i64,
    /// RFC 8707 audience restriction requested with `resource`.
    pub resource: Option<Value>,
}

#[derive(Deserialize)]
struct Header {
    alg: Option<String>,
    kid: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    aud: Option<Value>,
    scope: Option<String>,
    // Read as any JSON value, so a date that is not a number is refused as a bad grant (like
    // a missing one), not as a malformed request.
    iat: Option<Value>,
    exp: Option<Value>,
    jti: Option<String>,
    resource: Option<Value>,
}

/// Reads the grant type and the assertion's header and issuer.
pub fn parse<'a>(
    grant_type: &str,
    assertion: &'a str,
) -> Result<UnverifiedAssertion<'a>, GrantError> {
    match grant_type {
        "" => return Err(GrantError::InvalidRequest("grant_type is required".into())),
        JWT_BEARER => {}
        other => {
            return Err(GrantError::UnsupportedGrantType(format!(
                "grant_type {other:?} is not supported; use {JWT_BEARER}"
            )));
        }
    }
    if assertion.is_empty() {
        return Err(GrantError::InvalidRequest("assertion is required".into()));
    }
    let not_jwt = || GrantError::InvalidRequest("assertion is not a JWT (MP-011)".into());
    let mut parts = assertion.split('.');
    let (Some(header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(not_jwt());
    };
    let header: Header = decode_segment(header).ok_or_else(not_jwt)?;
    let alg = match header.alg.as_deref() {
        Some("RS256") => Algorithm::RS256,
        Some("RS384") => Algorithm::RS384,
        Some("RS512") => Algorithm::RS512,
        Some(other) => {
            return Err(GrantError::InvalidGrant(format!(
                "alg {other:?} is not accepted; sign with RS256, RS384 or RS512"
            )));
        }
        None => return Err(not_jwt()),
    };
    let kid = header.kid.filter(|kid| !kid.is_empty()).ok_or_else(|| {
        GrantError::InvalidGrant("the assertion header has no kid (MP-100)".into())
    })?;
    let payload: Value = decode_segment(payload).ok_or_else(not_jwt)?;
    let client_id = payload["iss"]
        .as_str()
        .filter(|iss| !iss.is_empty())
        .ok_or_else(|| GrantError::InvalidGrant("iss (the client id) is missing (MP-100)".into()))?
        .to_owned();
    Ok(UnverifiedAssertion {
        raw: assertion,
        alg,
        kid,
        client_id,
    })
}

impl UnverifiedAssertion<'_> {
    /// Verifies the signature with the client's key named by `kid`, then every claim.
    pub fn verify(
        self,
        client_keys: &[RsaJwk],
        granted_scopes: &[String],
        issuer: &str,
        now: i64,
    ) -> Result<VerifiedGrant, GrantError> {
        let key = client_keys
            .iter()
            .find(|key| key.kid == self.kid)
            .and_then(jwk::decoding_key)
            .ok_or_else(|| {
                GrantError::InvalidGrant(format!(
                    "kid {:?} is not registered on the client (MP-100)",
                    self.kid
                ))
            })?;
        let mut validation = Validation::new(self.alg);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<Claims>(self.raw, &key, &validation)
            .map_err(|error| match error.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    GrantError::InvalidGrant(format!(
                        "the signature does not verify with key {:?} (MP-124)",
                        self.kid
                    ))
                }
                _ => GrantError::InvalidRequest(format!(
                    "the assertion's claims are malformed: {error}"
                )),
            })?
            .claims;
        check_audience(claims.aud.as_ref(), issuer)?;
        let iat = numeric_date("iat", claims.iat)?;
        let now_seconds = now as f64;
        if iat.seconds() > now_seconds + MAX_CLOCK_SKEW as f64 {
            return Err(GrantError::InvalidGrant(
                "iat is in the future; check the clock (MP-130)".into(),
            ));
        }
        if iat.seconds() < now_seconds - MAX_CLOCK_SKEW as f64 {
            return Err(GrantError::InvalidGrant(format!(
                "iat is more than {MAX_CLOCK_SKEW} s old; make a fresh assertion (MP-130)"
            )));
        }
        let exp = numeric_date("exp", claims.exp)?;
        let lifetime = exp.seconds() - iat.seconds();
        if lifetime > MAX_ASSERTION_LIFETIME as f64 {
            return Err(GrantError::InvalidGrant(format!(
                "exp - iat is {lifetime} s; at most {MAX_ASSERTION_LIFETIME} s is accepted"
            )));
        }
        if exp.seconds() <= now_seconds {
            return Err(GrantError::InvalidGrant(
                "the assertion has expired (MP-130)".into(),
            ));
        }
        let replay_key = replay_key(claims.jti, self.raw)?;
        let scopes: Vec<String> = claims
            .scope
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if scopes.is_empty() {
            return Err(GrantError::InvalidScope("scope is required".into()));
        }
        if let Some(missing) = scopes.iter().find(|s| !granted_scopes.contains(s)) {
            return Err(GrantError::InvalidScope(format!(
                "scope {missing:?} is not granted to this client (MP-200)"
            )));
        }
        Ok(VerifiedGrant {
            replay_key,
            scopes,
            // Rounded up: the replay key is kept at least until the assertion expires.
            expires_at: exp.ceil(),
            resource: claims.resource,
        })
    }
}

/// The NumericDate claim `name` (RFC 7519: seconds since the epoch, fractions allowed); absent,
/// null or not a number is a bad grant.
fn numeric_date(name: &str, value: Option<Value>) -> Result<NumericDate, GrantError> {
    match value {
        None | Some(Value::Null) => Err(GrantError::InvalidGrant(format!("{name} is required"))),
        Some(value) => NumericDate::deserialize(value).map_err(|_| {
            GrantError::InvalidGrant(format!(
                "{name} must be a NumericDate: a number of seconds since 1970-01-01T00:00:00Z"
            ))
        }),
    }
}

/// Maskinporten only recommends `jti`, so an assertion without one (absent or null) is accepted
/// and kept single-use by the digest of what it signs. An empty `jti` is not absent but present
/// and invalid, as Maskinporten treats a claim it validates: refusing it tells a client whose id
/// generator broke, instead of quietly moving it to the digest rule.
fn replay_key(jti: Option<String>, assertion: &str) -> Result<ReplayKey, GrantError> {
    match jti {
        None => Ok(ReplayKey::Digest(signed_part_digest(assertion))),
        Some(jti) if (1..=MAX_JTI_LEN).contains(&jti.len()) => Ok(ReplayKey::Jti(jti)),
        Some(_) => Err(GrantError::InvalidGrant(format!(
            "jti must be 1-{MAX_JTI_LEN} characters when sent (it may be left out)"
        ))),
    }
}

/// SHA-256, lowercase hex, of `header.payload`: the text the signature covers, so any change to
/// it breaks the signature. The signature's own text is left out because base64url can write
/// the same signature bytes more than one way (the unused low bits of its last character), and
/// a replay must not pass as new by being re-encoded.
fn signed_part_digest(assertion: &str) -> String {
    let signed = assertion
        .rsplit_once('.')
        .map_or(assertion, |(signed, _signature)| signed);
    Sha256::digest(signed.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn check_audience(aud: Option<&Value>, issuer: &str) -> Result<(), GrantError> {
    let matches = match aud {
        Some(Value::String(aud)) => aud == issuer,
        Some(Value::Array(auds)) => auds.len() == 1 && auds[0] == issuer,
        _ => false,
    };
    if matches {
        Ok(())
    } else {
        Err(GrantError::InvalidGrant(format!(
            "aud must be the issuer {issuer:?} (MP-110)"
        )))
    }
}

fn decode_segment<T: serde::de::DeserializeOwned>(segment: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(segment.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(value: Value) -> String {
        URL_SAFE_NO_PAD.encode(value.to_string())
    }

    #[test]
    fn checks_the_grant_type_first() {
        assert!(matches!(
            parse("", "a.b.c"),
            Err(GrantError::InvalidRequest(_))
        ));
        assert!(matches!(
            parse("password", "a.b.c"),
            Err(GrantError::UnsupportedGrantType(_))
        ));
        assert!(matches!(
            parse(JWT_BEARER, ""),
            Err(GrantError::InvalidRequest(_))
        ));
        assert!(matches!(
            parse(JWT_BEARER, "not-a-jwt"),
            Err(GrantError::InvalidRequest(_))
        ));
    }

    #[test]
    fn refuses_symmetric_and_unsigned_assertions() {
        for alg in ["HS256", "none", "ES256"] {
            let jwt = format!(
                "{}.{}.",
                segment(serde_json::json!({"alg": alg, "kid": "k"})),
                segment(serde_json::json!({"iss": "c"}))
            );
            assert!(
                matches!(parse(JWT_BEARER, &jwt), Err(GrantError::InvalidGrant(_))),
                "{alg}"
            );
        }
    }

    #[test]
    fn a_present_jti_is_the_replay_key() {
        assert_eq!(
            replay_key(Some("id-1".into()), "h.p.s"),
            Ok(ReplayKey::Jti("id-1".into()))
        );
        let longest = "j".repeat(MAX_JTI_LEN);
        assert_eq!(
            replay_key(Some(longest.clone()), "h.p.s"),
            Ok(ReplayKey::Jti(longest))
        );
    }

    #[test]
    fn an_empty_or_overlong_jti_is_invalid_grant() {
        for jti in [String::new(), "j".repeat(MAX_JTI_LEN + 1)] {
            let refused = replay_key(Some(jti.clone()), "h.p.s");
            assert!(
                matches!(&refused, Err(GrantError::InvalidGrant(d)) if d.contains("jti")),
                "{} characters: {refused:?}",
                jti.len()
            );
        }
    }

    #[test]
    fn without_jti_the_replay_key_is_the_sha256_of_header_and_payload() {
        // sha256("a.b"), as `printf a.b | sha256sum` prints it.
        assert_eq!(
            replay_key(None, "a.b.signature"),
            Ok(ReplayKey::Digest(
                "2e7336dc8eba87ef472df568c35482abf2575dc3e5eac0c5c62b8ffaeac2c934".into()
            ))
        );
    }

    #[test]
    fn the_digest_ignores_how_the_signature_is_written() {
        // The same signature bytes written another way (last character's spare bits set).
        assert_eq!(signed_part_digest("a.b.AQA"), signed_part_digest("a.b.AQB"));
        assert_ne!(signed_part_digest("a.b.AQA"), signed_part_digest("a.c.AQA"));
        assert_ne!(signed_part_digest("a.b.AQA"), signed_part_digest("b.b.AQA"));
    }

    #[test]
    fn a_replay_is_invalid_grant_naming_mp_012() {
        for key in [ReplayKey::Jti("j".into()), ReplayKey::Digest("d".into())] {
            let GrantError::InvalidGrant(description) = key.replayed() else {
                panic!("{key:?} is not refused as invalid_grant");
            };
            assert!(
                description.contains("already used") && description.contains("MP-012"),
                "{description}"
            );
        }
    }

    #[test]
    fn accepts_audience_as_string_or_single_element_array() {
        assert!(check_audience(Some(&serde_json::json!("https://b/")), "https://b/").is_ok());
        assert!(check_audience(Some(&serde_json::json!(["https://b/"])), "https://b/").is_ok());
        assert!(
            check_audience(Some(&serde_json::json!(["https://b/", "x"])), "https://b/").is_err()
        );
        assert!(check_audience(Some(&serde_json::json!("https://b/token")), "https://b/").is_err());
        assert!(check_audience(None, "https://b/").is_err());
    }
}
