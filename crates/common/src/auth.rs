//! Verifying Broker access tokens: Maskinporten-style tokens from our token service and the
//! platform tokens its exchange endpoint issues.
//!
//! The gateway verifies every request with a [`TokenVerifier`]; services verify the forwarded
//! token again with their own. Keys come from a [`JwksSource`] (the token service over gRPC) and
//! are cached; an unknown `kid` triggers one refresh, so rotated keys are picked up at once while
//! a flood of forged `kid`s cannot hammer the token service.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use crate::Problem;
use crate::identity::OrgNumber;

/// The RSA algorithms Broker signs and accepts, as Maskinporten does.
pub const RSA_ALGORITHMS: [Algorithm; 3] = [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512];

/// A public RSA key as published in a JWK set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RsaJwk {
    /// Always `RSA`.
    pub kty: String,
    /// Key id.
    pub kid: String,
    /// Modulus, base64url without padding.
    pub n: String,
    /// Exponent, base64url without padding.
    pub e: String,
    /// `sig` when present.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
    /// The algorithm the key is meant for, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
}

/// A JWK set of RSA keys: `{"keys": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    /// The keys.
    pub keys: Vec<RsaJwk>,
}

/// Maskinporten's `consumer` / `supplier` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgClaim {
    /// `iso6523-actorid-upis`.
    pub authority: String,
    /// `0192:<orgnr>`. Altinn's samples also write `id`.
    #[serde(rename = "ID", alias = "id")]
    pub id: String,
}

/// The claims Broker reads from an access token; the rest is ignored here.
#[derive(Debug, Clone, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// OAuth2 client.
    #[serde(default)]
    pub client_id: String,
    /// Space-separated scopes.
    #[serde(default)]
    pub scope: String,
    /// The legal consumer.
    pub consumer: Option<OrgClaim>,
    /// Platform tokens: the acting organisation.
    #[serde(rename = "urn:altinn:orgNumber")]
    pub org_number: Option<String>,
    /// Platform tokens: the org code of a service owner.
    #[serde(rename = "urn:altinn:org")]
    pub org_code: Option<String>,
    /// System-user tokens (RFC 9396 authorization details).
    pub authorization_details: Option<serde_json::Value>,
    /// Expiry.
    pub exp: NumericDate,
}

/// A JWT NumericDate (RFC 7519 §2): seconds since the epoch, which may have a fraction
/// (`1700000000.5`), so third-party issuers that write one are not refused.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct NumericDate(f64);

impl NumericDate {
    /// Whole seconds since the epoch, rounded down (the instant the date falls in).
    pub fn floor(self) -> i64 {
        // Saturating: a finite f64 beyond i64 is a date no check will accept anyway.
        self.0.floor() as i64
    }

    /// Whole seconds since the epoch, rounded up (the first whole second not before it).
    pub fn ceil(self) -> i64 {
        self.0.ceil() as i64
    }

    /// Seconds since the epoch, with the fraction.
    pub fn seconds(self) -> f64 {
        self.0
    }
}

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // serde_json yields integers as i64/u64 and fractions as f64; a string, a boolean or a
        // non-finite number is no NumericDate.
        let seconds = f64::deserialize(deserializer)?;
        if seconds.is_finite() {
            Ok(Self(seconds))
        } else {
            Err(serde::de::Error::custom(
                "a NumericDate must be a finite number",
            ))
        }
    }
}

impl From<i64> for NumericDate {
    fn from(seconds: i64) -> Self {
        Self(seconds as f64)
    }
}

/// Which issuer a verified token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TokenKind {
    /// A Maskinporten-style access token from `POST /token`.
    Maskinporten,
    /// A platform token from the exchange endpoint.
    Platform,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, Serialize)]
pub struct Caller {
    /// The organisation the caller acts for.
    pub org: OrgNumber,
    /// The OAuth2 client.
    pub client_id: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Org code, when the token says the caller is a service owner.
    pub org_code: Option<String>,
    /// System user id, for system-user tokens.
    pub system_user_id: Option<String>,
    /// The organisation of the Maskinporten client (`consumer.ID`): the acting organisation
    /// when it calls for itself, the system's vendor for a system-user token. Altinn records
    /// it as the vendor of each step a caller takes; `None` without a readable `consumer`.
    pub consumer: Option<OrgNumber>,
    /// Which issuer signed the token.
    pub kind: TokenKind,
    /// The raw token, forwarded to services so they can verify it again.
    #[serde(skip)]
    pub token: String,
}

impl Caller {
    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// Where verification keys come from.
#[async_trait::async_trait]
pub trait JwksSource: Send + Sync {
    /// The currently published keys.
    async fn fetch(&self) -> Result<JwkSet, Problem>;
}

/// The token service's keys over gRPC.
pub struct GrpcJwks(
    pub broker_proto::token::token_service_client::TokenServiceClient<crate::grpc::Channel>,
);

#[async_trait::async_trait]
impl JwksSource for GrpcJwks {
    async fn fetch(&self) -> Result<JwkSet, Problem> {
        let jwks = self
            .0
            .clone()
            .get_jwks(broker_proto::token::GetJwksRequest {})
            .await
            .map_err(Problem::from)?
            .into_inner();
        serde_json::from_str(&jwks.json).map_err(|error| {
            tracing::error!(%error, "token service published an unreadable JWK set");
            Problem::internal()
        })
    }
}

struct CachedKeys {
    keys: HashMap<String, DecodingKey>,
    fetched: Option<Instant>,
}

/// Verification keys of one issuer by `kid`, fetched from a [`JwksSource`] and refreshed when
/// stale or when an unknown `kid` shows up (at most once a second).
pub struct KeyCache {
    source: Arc<dyn JwksSource>,
    cache: RwLock<CachedKeys>,
    min_refresh: Duration,
    max_age: Duration,
}

impl KeyCache {
    /// An empty cache over `source`; the first lookup fetches.
    pub fn new(source: Arc<dyn JwksSource>) -> Self {
        Self {
            source,
            cache: RwLock::new(CachedKeys {
                keys: HashMap::new(),
                fetched: None,
            }),
            min_refresh: Duration::from_secs(1),
            max_age: Duration::from_secs(300),
        }
    }

    /// The key with `kid`; 401 when the issuer does not publish it.
    pub async fn key(&self, kid: &str) -> Result<DecodingKey, Problem> {
        {
            let cache = self.cache.read().await;
            let fresh = cache.fetched.is_some_and(|at| at.elapsed() < self.max_age);
            if fresh && let Some(key) = cache.keys.get(kid) {
                return Ok(key.clone());
            }
        }
        let mut cache = self.cache.write().await;
        // Another task may have refreshed while we waited for the lock.
        let recently = cache
            .fetched
            .is_some_and(|at| at.elapsed() < self.min_refresh);
        if !recently {
            let set = self.source.fetch().await?;
            cache.keys = set
                .keys
                .iter()
                .filter_map(|jwk| {
                    let key = DecodingKey::from_rsa_components(&jwk.n, &jwk.e).ok()?;
                    Some((jwk.kid.clone(), key))
                })
                .collect();
            cache.fetched = Some(Instant::now());
        }
        cache.keys.get(kid).cloned().ok_or_else(|| {
            Problem::unauthorized("the token was not signed by a key its issuer publishes")
        })
    }
}

/// Verifies bearer tokens from the configured issuers against cached keys.
pub struct TokenVerifier {
    issuers: Vec<(String, TokenKind)>,
    keys: KeyCache,
}

impl TokenVerifier {
    /// A verifier accepting tokens from our Maskinporten-style issuer and our platform issuer.
    pub fn new(issuer: String, platform_issuer: String, source: Arc<dyn JwksSource>) -> Self {
        Self {
            issuers: vec![
                (issuer, TokenKind::Maskinporten),
                (platform_issuer, TokenKind::Platform),
            ],
            keys: KeyCache::new(source),
        }
    }

    /// Verifies signature, issuer and lifetime, and resolves the caller's organisation.
    pub async fn verify(&self, token: &str) -> Result<Caller, Problem> {
        self.verify_with_leeway(token, 0)
            .await
            .map(|(caller, _)| caller)
    }

    /// [`verify`](Self::verify), but a token expired less than `grace` ago is accepted too
    /// (a running resumable upload's, see the tus routes); whether it has expired.
    pub async fn verify_within_grace(
        &self,
        token: &str,
        grace: std::time::Duration,
    ) -> Result<(Caller, Expired), Problem> {
        self.verify_with_leeway(token, grace.as_secs()).await
    }

    async fn verify_with_leeway(
        &self,
        token: &str,
        leeway: u64,
    ) -> Result<(Caller, Expired), Problem> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| Problem::unauthorized("the bearer token is not a JWT"))?;
        if !RSA_ALGORITHMS.contains(&header.alg) {
            return Err(Problem::unauthorized(
                "the token's algorithm is not accepted",
            ));
        }
        let kid = header
            .kid
            .ok_or_else(|| Problem::unauthorized("the token has no kid"))?;
        let key = self.keys.key(&kid).await?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = leeway;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "iss"]);
        validation.set_issuer(
            &self
                .issuers
                .iter()
                .map(|(i, _)| i.as_str())
                .collect::<Vec<_>>(),
        );
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &key, &validation)
            .map_err(|error| match error.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    Problem::unauthorized("the token has expired")
                }
                jsonwebtoken::errors::ErrorKind::InvalidIssuer => {
                    Problem::unauthorized("the token's issuer is not trusted")
                }
                jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    Problem::unauthorized("the token's signature is invalid")
                }
                _ => Problem::unauthorized("the token is invalid"),
            })?
            .claims;
        let kind = self
            .issuers
            .iter()
            .find(|(issuer, _)| *issuer == claims.iss)
            .map(|(_, kind)| *kind)
            .ok_or_else(|| Problem::unauthorized("the token's issuer is not trusted"))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |since| since.as_secs_f64());
        let expired = Expired(claims.exp.seconds() < now);
        Ok((caller_from_claims(claims, kind, token)?, expired))
    }
}

/// Whether a token accepted within a grace period has expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired(pub bool);

/// Resolves the acting organisation as Altinn Broker does: system-user organisation, else
/// `urn:altinn:orgNumber`, else `consumer.ID`; and the consumer organisation (the vendor).
pub fn caller_from_claims(
    claims: AccessClaims,
    kind: TokenKind,
    token: &str,
) -> Result<Caller, Problem> {
    let system_user = claims
        .authorization_details
        .as_ref()
        .and_then(serde_json::Value::as_array)
        .and_then(|details| {
            details
                .iter()
                .find(|d| d["type"] == "urn:altinn:systemuser")
                .cloned()
        });
    let system_user_org = system_user.as_ref().and_then(|d| {
        let org = &d["systemuser_org"];
        org["ID"].as_str().or(org["id"].as_str()).map(str::to_owned)
    });
    let org_text = system_user_org
        .or(claims.org_number.clone())
        .or(claims.consumer.as_ref().map(|c| c.id.clone()))
        .ok_or_else(|| Problem::unauthorized("the token names no organisation"))?;
    let org = OrgNumber::parse_identifier(&org_text).map_err(|_| {
        Problem::unauthorized("the token's organisation is not a valid organisation number")
    })?;
    // As Altinn's vendor: an unreadable consumer is no vendor, never a refusal.
    let consumer = claims
        .consumer
        .as_ref()
        .and_then(|consumer| OrgNumber::parse_identifier(&consumer.id).ok());
    Ok(Caller {
        org,
        client_id: claims.client_id,
        scopes: claims.scope.split_whitespace().map(str::to_owned).collect(),
        org_code: claims.org_code,
        system_user_id: system_user.and_then(|d| d["systemuser_id"][0].as_str().map(str::to_owned)),
        consumer,
        kind,
        token: token.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_dates_may_have_fractions_but_must_be_numbers() {
        let date: NumericDate = serde_json::from_str("1700000000.5").unwrap();
        assert_eq!((date.floor(), date.ceil()), (1_700_000_000, 1_700_000_001));
        let whole: NumericDate = serde_json::from_str("1700000000").unwrap();
        assert_eq!(
            (whole.floor(), whole.ceil()),
            (1_700_000_000, 1_700_000_000)
        );
        assert!(serde_json::from_str::<NumericDate>("\"1700000000\"").is_err());
        assert!(serde_json::from_str::<NumericDate>("true").is_err());
    }

    fn claims(extra: serde_json::Value) -> AccessClaims {
        let mut claims = serde_json::json!({
            "iss": "https://broker.example",
            "client_id": "client",
            "scope": "altinn:broker.write",
            "exp": 4_000_000_000_i64,
        });
        if let (Some(claims), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
            claims.extend(extra.clone());
        }
        serde_json::from_value(claims).unwrap()
    }

    fn consumer(id: &str) -> serde_json::Value {
        serde_json::json!({"authority": "iso6523-actorid-upis", "ID": id})
    }

    #[test]
    fn a_self_acting_caller_is_its_own_consumer() {
        let caller = caller_from_claims(
            claims(serde_json::json!({"consumer": consumer("0192:991825827")})),
            TokenKind::Maskinporten,
            "token",
        )
        .unwrap();
        assert_eq!(caller.org.to_string(), "991825827");
        assert_eq!(caller.consumer, Some(caller.org));
    }

    #[test]
    fn a_system_users_consumer_is_the_vendor() {
        let details = serde_json::json!([{
            "type": "urn:altinn:systemuser",
            "systemuser_id": ["a0c8e7f2-0000-4000-8000-000000000001"],
            "systemuser_org": {"authority": "iso6523-actorid-upis", "ID": "0192:974760673"},
            "system_id": "vendor_system",
        }]);
        let caller = caller_from_claims(
            claims(serde_json::json!({
                "consumer": consumer("0192:991825827"),
                "authorization_details": details,
            })),
            TokenKind::Maskinporten,
            "token",
        )
        .unwrap();
        assert_eq!(caller.org.to_string(), "974760673");
        assert_eq!(
            caller.consumer.map(|org| org.to_string()).as_deref(),
            Some("991825827")
        );
    }

    #[test]
    fn no_or_an_unreadable_consumer_is_no_vendor() {
        let platform = caller_from_claims(
            claims(serde_json::json!({"urn:altinn:orgNumber": "991825827"})),
            TokenKind::Platform,
            "token",
        )
        .unwrap();
        assert_eq!(platform.consumer, None);
        let odd = caller_from_claims(
            claims(serde_json::json!({
                "urn:altinn:orgNumber": "991825827",
                "consumer": consumer("0192:12345"),
            })),
            TokenKind::Platform,
            "token",
        )
        .unwrap();
        assert_eq!(odd.consumer, None);
    }
}
